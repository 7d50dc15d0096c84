/* test_stripe_sig.c - api/stripe_sig.c: a known answer (computed with
 * `openssl dgst -sha256 -hmac`), sign and verify, tampered bodies, wrong
 * secrets, stale and future timestamps, several v1 values, malformed
 * headers and a missing timestamp. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "api/stripe_sig.h"

static const char SECRET[] = "whsec_test_secret";
static const char BODY[] = "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}";
/* printf '1700000000.<BODY>' | openssl dgst -sha256 -hmac whsec_test_secret */
static const char KNOWN[] = "22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31";
static const int64_t T0 = 1700000000;

static stripe_sig_result check(const char *header, const char *body, const char *secret,
                               int64_t now, unsigned tol)
{
    return stripe_sig_verify(header, strlen(header), body, strlen(body), secret, now, tol);
}

Test(stripe_sig, known_answer)
{
    char h[200];
    cr_assert_gt(stripe_sig_sign(BODY, strlen(BODY), SECRET, T0, h, sizeof h), 0);
    char want[200];
    snprintf(want, sizeof want, "t=1700000000,v1=%s", KNOWN);
    cr_assert_str_eq(h, want);
    cr_assert_eq(check(want, BODY, SECRET, T0, 0), STRIPE_SIG_OK);
}

Test(stripe_sig, valid_with_spaces_upper_case_hex_and_other_schemes)
{
    char h[300];
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(KNOWN[i] >= 'a' ? KNOWN[i] - 32 : KNOWN[i]);
    upper[64] = 0;
    snprintf(h, sizeof h, " t=1700000000 , v0=abc, v1=%s ,", upper);
    cr_assert_eq(check(h, BODY, SECRET, T0 + 10, 0), STRIPE_SIG_OK);
}

Test(stripe_sig, empty_body_signs_and_verifies)
{
    char h[200];
    cr_assert_gt(stripe_sig_sign("", 0, SECRET, T0, h, sizeof h), 0);
    cr_assert_eq(check(h, "", SECRET, T0, 0), STRIPE_SIG_OK);
    cr_assert_eq(check(h, " ", SECRET, T0, 0), STRIPE_SIG_MISMATCH);
}

Test(stripe_sig, tampered_body)
{
    char h[200], body[sizeof BODY];
    stripe_sig_sign(BODY, strlen(BODY), SECRET, T0, h, sizeof h);
    for (size_t i = 0; i < strlen(BODY); i++) {
        memcpy(body, BODY, sizeof BODY);
        body[i] ^= 1;
        cr_assert_eq(check(h, body, SECRET, T0, 0), STRIPE_SIG_MISMATCH, "byte %zu", i);
    }
    memcpy(body, BODY, sizeof BODY);
    body[strlen(BODY) - 1] = 0; /* truncated */
    cr_assert_eq(check(h, body, SECRET, T0, 0), STRIPE_SIG_MISMATCH);
}

Test(stripe_sig, tampered_timestamp)
{
    char h[200];
    snprintf(h, sizeof h, "t=1700000001,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MISMATCH);
}

Test(stripe_sig, wrong_secret)
{
    char h[200];
    stripe_sig_sign(BODY, strlen(BODY), "whsec_other", T0, h, sizeof h);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MISMATCH);
    /* The whole string is the key: without the whsec_ prefix it differs. */
    stripe_sig_sign(BODY, strlen(BODY), "test_secret", T0, h, sizeof h);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MISMATCH);
    cr_assert_eq(check(h, BODY, "", T0, 0), STRIPE_SIG_ERROR);
    cr_assert_eq(check(h, BODY, NULL, T0, 0), STRIPE_SIG_ERROR);
}

Test(stripe_sig, stale_and_future_timestamps)
{
    char h[200];
    stripe_sig_sign(BODY, strlen(BODY), SECRET, T0, h, sizeof h);
    cr_assert_eq(check(h, BODY, SECRET, T0 + 300, 0), STRIPE_SIG_OK, "at the edge");
    cr_assert_eq(check(h, BODY, SECRET, T0 + 301, 0), STRIPE_SIG_TOO_OLD);
    cr_assert_eq(check(h, BODY, SECRET, T0 - 300, 0), STRIPE_SIG_OK);
    cr_assert_eq(check(h, BODY, SECRET, T0 - 301, 0), STRIPE_SIG_TOO_NEW);
    /* Configurable tolerance. */
    cr_assert_eq(check(h, BODY, SECRET, T0 + 60, 30), STRIPE_SIG_TOO_OLD);
    cr_assert_eq(check(h, BODY, SECRET, T0 + 60, 3600), STRIPE_SIG_OK);
    cr_assert_eq(check(h, BODY, SECRET, T0 - 60, 30), STRIPE_SIG_TOO_NEW);
    /* A forged signature is reported as such, whatever the time. */
    char bad[200];
    stripe_sig_sign(BODY, strlen(BODY), "whsec_other", T0, bad, sizeof bad);
    cr_assert_eq(check(bad, BODY, SECRET, T0 + 10000, 0), STRIPE_SIG_MISMATCH);
}

Test(stripe_sig, several_v1_one_valid)
{
    char h[400];
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    snprintf(h, sizeof h, "t=1700000000,v1=%s,v1=nothex,v1=%s", zeros, KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_OK);
    snprintf(h, sizeof h, "t=1700000000,v1=%s,v1=%s", KNOWN, zeros);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_OK);
    snprintf(h, sizeof h, "t=1700000000,v1=%s,v1=%.63s", zeros, KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MISMATCH, "a short value");
    /* The valid value under another scheme does not count. */
    snprintf(h, sizeof h, "t=1700000000,v0=%s,v1=%s", KNOWN, zeros);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MISMATCH);
}

Test(stripe_sig, malformed_headers)
{
    char h[200];
    cr_assert_eq(check("", BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    cr_assert_eq(check("garbage", BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    snprintf(h, sizeof h, "t=1700000000,v1=%s,junk", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    snprintf(h, sizeof h, "t=1700000000,=x,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    snprintf(h, sizeof h, "t=17000x0000,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    snprintf(h, sizeof h, "t=,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    snprintf(h, sizeof h, "t=-1700000000,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED);
    snprintf(h, sizeof h, "t=1700000000,t=1700000000,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED, "two timestamps");
    snprintf(h, sizeof h, "t=1700000000000000,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED, "too many digits");
    cr_assert_eq(check("t=1700000000", BODY, SECRET, T0, 0), STRIPE_SIG_NO_V1);
    cr_assert_eq(check("t=1700000000,v0=abc", BODY, SECRET, T0, 0), STRIPE_SIG_NO_V1);
    char big[STRIPE_SIG_MAX_HEADER + 100];
    memset(big, ' ', sizeof big);
    snprintf(big + STRIPE_SIG_MAX_HEADER - 10, 100, "t=1700000000,v1=%s", KNOWN);
    cr_assert_eq(check(big, BODY, SECRET, T0, 0), STRIPE_SIG_MALFORMED, "too long");
    cr_assert_eq(stripe_sig_verify(NULL, 0, BODY, strlen(BODY), SECRET, T0, 0),
                 STRIPE_SIG_MALFORMED);
}

Test(stripe_sig, missing_timestamp)
{
    char h[200];
    snprintf(h, sizeof h, "v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_NO_TIMESTAMP);
    snprintf(h, sizeof h, "ts=1700000000,v1=%s", KNOWN);
    cr_assert_eq(check(h, BODY, SECRET, T0, 0), STRIPE_SIG_NO_TIMESTAMP);
    cr_assert_str_neq(stripe_sig_strerror(STRIPE_SIG_NO_TIMESTAMP), "");
}

Test(stripe_sig, signer_refuses_what_it_cannot_do)
{
    char h[20];
    cr_assert_eq(stripe_sig_sign(BODY, strlen(BODY), SECRET, T0, h, sizeof h), -1, "no room");
    char big[200];
    cr_assert_eq(stripe_sig_sign(BODY, strlen(BODY), "", T0, big, sizeof big), -1);
    cr_assert_eq(stripe_sig_sign(BODY, strlen(BODY), SECRET, -5, big, sizeof big), -1);
}
