/* jwt_support.c - signing JSON Web Tokens in tests the way a client, a
 * provider or a forger would (see jwt_support.h). */
#include "jwt_support.h"

#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/b64.h"

char *tj_b64url(const void *p, size_t n)
{
    size_t cap = b64_encoded_len(n) + 1;
    char *s = malloc(cap);
    cr_assert(s && b64_encode(B64_URL, p, n, s, cap) == 0);
    return s;
}

char *tj_b64url_str(const char *s) { return tj_b64url(s, strlen(s)); }

/* header "." payload, both JSON text, base64url'd (malloc). */
char *tj_signing_input(const char *header, const char *payload)
{
    char *h = tj_b64url_str(header), *p = tj_b64url_str(payload);
    char *in = malloc(strlen(h) + strlen(p) + 2);
    cr_assert(in);
    sprintf(in, "%s.%s", h, p);
    free(h);
    free(p);
    return in;
}

char *tj_join_sig(char *input, const uint8_t *sig, size_t n)
{
    char *s = tj_b64url(sig, n);
    char *tok = malloc(strlen(input) + strlen(s) + 2);
    cr_assert(tok);
    sprintf(tok, "%s.%s", input, s);
    free(s);
    free(input);
    return tok;
}

char *tj_sign_hs(const char *header, const char *payload, const void *key, size_t keylen)
{
    char *in = tj_signing_input(header, payload);
    uint8_t mac[32];
    size_t n = 0;
    cr_assert(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, (uint8_t *)in,
                        strlen(in), mac, sizeof mac, &n));
    return tj_join_sig(in, mac, n);
}

/* EVP_DigestSign with SHA-256: RSA PKCS#1 v1.5, or ECDSA in DER. */
size_t tj_digest_sign(EVP_PKEY *k, const char *in, uint8_t *sig, size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = cap;
    cr_assert(md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL) == 1);
    cr_assert(EVP_DigestSign(md, sig, &n, (const uint8_t *)in, strlen(in)) == 1);
    EVP_MD_CTX_free(md);
    return n;
}

char *tj_sign_rs(const char *header, const char *payload, EVP_PKEY *k)
{
    char *in = tj_signing_input(header, payload);
    uint8_t sig[512];
    size_t n = tj_digest_sign(k, in, sig, sizeof sig);
    return tj_join_sig(in, sig, n);
}

/* ES256: JWS wants r || s; der keeps OpenSSL's DER (which must fail). */
char *tj_sign_es(const char *header, const char *payload, EVP_PKEY *k, bool der)
{
    char *in = tj_signing_input(header, payload);
    uint8_t sig[128];
    size_t n = tj_digest_sign(k, in, sig, sizeof sig);
    if (der)
        return tj_join_sig(in, sig, n);
    const uint8_t *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    cr_assert(es);
    uint8_t raw[64];
    cr_assert(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32);
    cr_assert(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32);
    ECDSA_SIG_free(es);
    return tj_join_sig(in, raw, sizeof raw);
}

char *tj_bn_b64(EVP_PKEY *k, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    cr_assert(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
    uint8_t buf[1024];
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    cr_assert(n > 0);
    BN_free(bn);
    return tj_b64url(buf, (size_t)n);
}

json_t *tj_jwk_rsa(EVP_PKEY *k, const char *kid)
{
    char *n = tj_bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0), *e = tj_bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", kid, "use",
                          "sig", "alg", "RS256", "n", n, "e", e);
    free(n);
    free(e);
    return j;
}

json_t *tj_jwk_ec(EVP_PKEY *k, const char *kid, const char *crv, int coord)
{
    char *x = tj_bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, coord);
    char *y = tj_bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, coord);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", crv,
                          "x", x, "y", y);
    free(x);
    free(y);
    return j;
}

