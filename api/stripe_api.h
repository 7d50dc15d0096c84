/* stripe_api.h - the calls the store makes to Stripe's API, and reading
 * the PaymentIntent objects it answers with (also a webhook event's
 * data.object).
 *
 * Owns the wire shapes: POST {base}/v1/payment_intents (form-encoded:
 * amount in minor units, currency, metadata[order_id],
 * automatic_payment_methods[enabled]=true; an Idempotency-Key derived from
 * the order, amount and currency, so a retry gets the same intent back),
 * GET {base}/v1/payment_intents/{id}, Stripe's error objects
 * ({"error":{"type","code","message"}}), and the secret key, which goes
 * into the Authorization header only and is wiped from the stack after.
 *
 * Blocking (http_out.h): call from libuv's thread pool, never a loop.
 */
#ifndef WS_STRIPE_API_H
#define WS_STRIPE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http_out.h"

typedef struct stripe_api {
    const char *base;       /* "https://api.stripe.com"; a trailing '/' is fine */
    const char *secret_key; /* sk_... */
    long timeout_ms;        /* 0: http_out's default */
} stripe_api;

typedef struct stripe_api_intent {
    char id[256];             /* "pi_..." */
    char client_secret[512];  /* for the browser; never logged */
    char status[40];          /* "succeeded", "requires_payment_method", ... */
    int64_t amount;           /* minor units; -1 when absent */
    int64_t amount_received;  /* minor units; -1 when absent */
    char currency[4];         /* lower case; "" when absent or not 3 letters */
    char order_id[24];        /* metadata.order_id; "" when absent or not digits */
    char failure[504];        /* last_payment_error as "code: message", "" if none */
} stripe_api_intent;

/* Whether id (n bytes) can be an object id: 1 to 255 of [A-Za-z0-9_], so
 * it is safe in a URL path. */
bool stripe_api_id_ok(const char *id, size_t n);

/* Creates a PaymentIntent for `amount` minor units of `currency` (3
 * letters) for store order `order_id`. */
hout_outcome stripe_api_create_intent(const stripe_api *s, uint64_t order_id, int64_t amount,
                                      const char *currency, stripe_api_intent *out,
                                      hout_error *err);

/* Retrieves PaymentIntent `id` (HOUT_NOT_FOUND: Stripe does not know it). */
hout_outcome stripe_api_get_intent(const stripe_api *s, const char *id, stripe_api_intent *out,
                                   hout_error *err);

/* Reads a PaymentIntent object; false if it is not one (no usable id). */
bool stripe_api_read_intent(json_t *obj, stripe_api_intent *out);

#endif
