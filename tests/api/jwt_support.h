/* jwt_support.h - test helpers that sign JSON Web Tokens by hand (HS256,
 * RS256, ES256 in JWS r||s or, wrongly, DER) from any header and payload
 * text, and make JWKS entries of keys; shared by the JWT unit tests and the
 * API's integration tests. Strings returned are malloc'd. */
#ifndef WS_TEST_JWT_SUPPORT_H
#define WS_TEST_JWT_SUPPORT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

char *tj_b64url(const void *p, size_t n);
char *tj_b64url_str(const char *s);
/* header "." payload, both JSON text, base64url'd. */
char *tj_signing_input(const char *header, const char *payload);
/* input "." base64url(sig); frees input. */
char *tj_join_sig(char *input, const uint8_t *sig, size_t n);
char *tj_sign_hs(const char *header, const char *payload, const void *key, size_t keylen);
size_t tj_digest_sign(EVP_PKEY *k, const char *in, uint8_t *sig, size_t cap);
char *tj_sign_rs(const char *header, const char *payload, EVP_PKEY *k);
char *tj_sign_es(const char *header, const char *payload, EVP_PKEY *k, bool der);
char *tj_bn_b64(EVP_PKEY *k, const char *param, int pad);
json_t *tj_jwk_rsa(EVP_PKEY *k, const char *kid);
json_t *tj_jwk_ec(EVP_PKEY *k, const char *kid, const char *crv, int coord);

#endif
