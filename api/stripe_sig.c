/* stripe_sig.c - Stripe webhook signatures (see stripe_sig.h). */
#include "stripe_sig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SIG_LEN 32 /* HMAC-SHA256 */

const char *stripe_sig_strerror(stripe_sig_result r)
{
    switch (r) {
    case STRIPE_SIG_OK: return "the signature is valid";
    case STRIPE_SIG_MALFORMED: return "the Stripe-Signature header is malformed";
    case STRIPE_SIG_NO_TIMESTAMP: return "the Stripe-Signature header has no timestamp";
    case STRIPE_SIG_NO_V1: return "the Stripe-Signature header has no v1 signature";
    case STRIPE_SIG_MISMATCH: return "the signature does not match the payload";
    case STRIPE_SIG_TOO_OLD: return "the signature's timestamp is too old";
    case STRIPE_SIG_TOO_NEW: return "the signature's timestamp is in the future";
    default: return "the signature cannot be checked";
    }
}

/* HMAC-SHA256(secret, t "." payload). 0, or -1. */
static int sig_hmac(const char *secret, const char *t, size_t tn, const void *payload,
                    size_t plen, uint8_t out[SIG_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t n = 0;
    int ok = ctx &&
             EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) &&
             EVP_MAC_update(ctx, (const unsigned char *)t, tn) &&
             EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
             (plen == 0 || EVP_MAC_update(ctx, payload, plen)) &&
             EVP_MAC_final(ctx, out, &n, SIG_LEN) && n == SIG_LEN;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------ the header */

typedef struct sig_item {
    const char *k, *v;
    size_t kn, vn;
} sig_item;

typedef struct sig_cursor {
    const char *p, *end;
} sig_cursor;

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* The next non-empty item, trimmed: 1, 0 at the end, -1 for an item without
 * '=' or with an empty key. */
static int next_item(sig_cursor *c, sig_item *it)
{
    while (c->p < c->end) {
        const char *comma = memchr(c->p, ',', (size_t)(c->end - c->p));
        const char *s = c->p, *e = comma ? comma : c->end;
        c->p = comma ? comma + 1 : c->end;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        if (s == e)
            continue;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq || eq == s)
            return -1;
        it->k = s;
        it->kn = (size_t)(eq - s);
        it->v = eq + 1;
        it->vn = (size_t)(e - eq - 1);
        return 1;
    }
    return 0;
}

static bool key_is(const sig_item *it, const char *k)
{
    return it->kn == strlen(k) && memcmp(it->k, k, it->kn) == 0;
}

/* Unix seconds: 1 to 12 digits. */
static bool parse_time(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 12)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 64 hex digits into 32 bytes; false for anything else. */
static bool parse_sig(const char *s, size_t n, uint8_t out[SIG_LEN])
{
    if (n != 2 * SIG_LEN)
        return false;
    for (size_t i = 0; i < SIG_LEN; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

typedef struct sig_header {
    const char *t; /* the timestamp's digits */
    size_t tn;
    int64_t ts;
    unsigned n_v1;
} sig_header;

/* First pass: the one timestamp and the number of v1 values. */
static stripe_sig_result scan_header(const char *h, size_t n, sig_header *out)
{
    memset(out, 0, sizeof *out);
    sig_cursor c = {h, h + n};
    sig_item it;
    int rc;
    while ((rc = next_item(&c, &it)) > 0) {
        if (key_is(&it, "t")) {
            if (out->t || !parse_time(it.v, it.vn, &out->ts))
                return STRIPE_SIG_MALFORMED;
            out->t = it.v;
            out->tn = it.vn;
        } else if (key_is(&it, "v1")) {
            out->n_v1++;
        }
    }
    if (rc < 0)
        return STRIPE_SIG_MALFORMED;
    if (!out->t)
        return STRIPE_SIG_NO_TIMESTAMP;
    return out->n_v1 ? STRIPE_SIG_OK : STRIPE_SIG_NO_V1;
}

/* Second pass: whether any v1 value equals `want`, in constant time for
 * each value (every value is compared, a match does not stop the loop). */
static bool any_v1_matches(const char *h, size_t n, const uint8_t want[SIG_LEN])
{
    sig_cursor c = {h, h + n};
    sig_item it;
    bool match = false;
    while (next_item(&c, &it) > 0) {
        uint8_t got[SIG_LEN];
        if (key_is(&it, "v1") && parse_sig(it.v, it.vn, got))
            match |= CRYPTO_memcmp(got, want, SIG_LEN) == 0;
    }
    return match;
}

/* ------------------------------------------------------------ API */

stripe_sig_result stripe_sig_verify(const char *header, size_t hlen, const void *payload,
                                    size_t plen, const char *secret, int64_t now,
                                    unsigned tolerance_s)
{
    if (!secret || !*secret)
        return STRIPE_SIG_ERROR;
    if (!header || hlen == 0 || hlen > STRIPE_SIG_MAX_HEADER)
        return STRIPE_SIG_MALFORMED;
    sig_header sh;
    stripe_sig_result r = scan_header(header, hlen, &sh);
    if (r != STRIPE_SIG_OK)
        return r;
    uint8_t want[SIG_LEN];
    if (sig_hmac(secret, sh.t, sh.tn, payload, plen, want) != 0)
        return STRIPE_SIG_ERROR;
    bool ok = any_v1_matches(header, hlen, want);
    OPENSSL_cleanse(want, sizeof want);
    if (!ok)
        return STRIPE_SIG_MISMATCH;
    int64_t tol = tolerance_s ? (int64_t)tolerance_s : (int64_t)STRIPE_SIG_DEFAULT_TOLERANCE_S;
    if (sh.ts < now - tol)
        return STRIPE_SIG_TOO_OLD;
    if (sh.ts > now + tol)
        return STRIPE_SIG_TOO_NEW;
    return STRIPE_SIG_OK;
}

int stripe_sig_sign(const void *payload, size_t plen, const char *secret, int64_t t, char *out,
                    size_t cap)
{
    if (!secret || !*secret || t < 0)
        return -1;
    char ts[24];
    int tn = snprintf(ts, sizeof ts, "%lld", (long long)t);
    uint8_t mac[SIG_LEN];
    if (sig_hmac(secret, ts, (size_t)tn, payload, plen, mac) != 0)
        return -1;
    static const char digits[] = "0123456789abcdef";
    char hex[2 * SIG_LEN + 1];
    for (size_t i = 0; i < SIG_LEN; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[2 * SIG_LEN] = 0;
    int n = snprintf(out, cap, "t=%s,v1=%s", ts, hex);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
