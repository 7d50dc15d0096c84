/* stripe_sig.h - Stripe webhook signatures: checking the Stripe-Signature
 * header of a webhook request, and making one (tests, tools).
 *
 * Owns the header's grammar (comma-separated key=value items: exactly one
 * t=<unix seconds>, any number of v1=<64 hex digits>, other schemes such as
 * v0 ignored), the signed payload ("<t>.<raw body>"), HMAC-SHA256 keyed with
 * the whole webhook secret string (the "whsec_..." text itself, as Stripe
 * does), the constant-time comparison with every v1 value (one valid value
 * is enough: Stripe sends several while a secret is being rolled), and the
 * timestamp tolerance (both ways: too old is a replay, too far ahead is a
 * forged or badly clocked sender).
 */
#ifndef WS_STRIPE_SIG_H
#define WS_STRIPE_SIG_H

#include <stddef.h>
#include <stdint.h>

#define STRIPE_SIG_DEFAULT_TOLERANCE_S 300u
#define STRIPE_SIG_MAX_HEADER 4096

typedef enum stripe_sig_result {
    STRIPE_SIG_OK = 0,
    STRIPE_SIG_MALFORMED,    /* empty, too long, an item without '=', a bad or second t */
    STRIPE_SIG_NO_TIMESTAMP, /* no t= item */
    STRIPE_SIG_NO_V1,        /* no v1= item */
    STRIPE_SIG_MISMATCH,     /* no v1 value matches the payload and secret */
    STRIPE_SIG_TOO_OLD,      /* t is more than the tolerance before now */
    STRIPE_SIG_TOO_NEW,      /* t is more than the tolerance after now */
    STRIPE_SIG_ERROR,        /* no secret, or the crypto library failed */
} stripe_sig_result;

/* A sentence for a result ("the signature does not match"). */
const char *stripe_sig_strerror(stripe_sig_result r);

/* Checks header[0..hlen) against the raw body payload[0..plen), the webhook
 * secret (NUL-terminated) and the time `now` (unix seconds); tolerance_s 0
 * means STRIPE_SIG_DEFAULT_TOLERANCE_S. The signature is checked before the
 * time, so a stale but genuine event says TOO_OLD, not MISMATCH. */
stripe_sig_result stripe_sig_verify(const char *header, size_t hlen, const void *payload,
                                    size_t plen, const char *secret, int64_t now,
                                    unsigned tolerance_s);

/* Writes the header value "t=<t>,v1=<hex>" for payload signed at time t
 * into out (NUL-terminated). Returns its length, or -1 (no room, no secret,
 * crypto failure). */
int stripe_sig_sign(const void *payload, size_t plen, const char *secret, int64_t t, char *out,
                    size_t cap);

#endif
