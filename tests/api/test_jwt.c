/* test_jwt.c - api/jwt.c: the server's own HS256 tokens, the old backend's
 * legacy tokens and an OpenID Connect provider's RS256/ES256 tokens, and
 * every way a token must be refused.
 *
 * Each test gets a verifier with all three sources configured, a fresh RSA
 * 2048 and EC P-256 key pair and a JWKS made from them. Tokens are signed
 * here by small helpers (HS256 with EVP_Q_mac, RS256 and ES256 with
 * EVP_DigestSign), so headers and payloads can be anything a forger sends.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "api/b64.h"
#include "api/jwt.h"
#include "jwt_support.h"

#define ISS "https://api.watchstore.test"
#define AUD "watchstore-api"
#define OIDC_ISS "https://sso.watchstore.test/realms/shop"
#define OIDC_AUD "watchstore-spa"
#define RSA_KID "rsa-1"
#define EC_KID "ec-1"
#define NOW 1800000000LL

static uint8_t OWN_KEY[32];
static const char LEGACY[] = "old-node-backend-secret";
static jwt_verifier *V;
static EVP_PKEY *RSA_K, *EC_K;
static char OWN_KID[JWT_KID_LEN + 1];

/* ------------------------------------------------------------ helpers */

/* Loads a JWKS of these keys (stolen) into V; returns how many V then
 * holds, or -1 when set_jwks refused the document. */
static int load_jwks(json_t *keys)
{
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(doc, JSON_COMPACT);
    char err[128];
    int rc = jwt_verifier_set_jwks(V, text, strlen(text), err, sizeof err);
    free(text);
    json_decref(doc);
    return rc == 0 ? (int)jwt_verifier_key_count(V) : rc;
}

static void setup(void)
{
    for (size_t i = 0; i < sizeof OWN_KEY; i++)
        OWN_KEY[i] = (uint8_t)(i * 7 + 3);
    V = jwt_verifier_new(OWN_KEY, sizeof OWN_KEY, ISS, AUD);
    cr_assert(V);
    cr_assert_eq(jwt_verifier_set_legacy(V, (const uint8_t *)LEGACY, strlen(LEGACY)), 0);
    cr_assert_eq(jwt_verifier_set_oidc(V, OIDC_ISS, OIDC_AUD), 0);
    cr_assert_eq(jwt_key_id(OWN_KEY, sizeof OWN_KEY, OWN_KID, sizeof OWN_KID), 0);
    RSA_K = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EC_K = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert(RSA_K && EC_K);
    cr_assert_eq(load_jwks(json_pack("[o, o]", tj_jwk_rsa(RSA_K, RSA_KID),
                                     tj_jwk_ec(EC_K, EC_KID, "P-256", 32))),
                 2);
}

static void teardown(void)
{
    jwt_verifier_free(V);
    EVP_PKEY_free(RSA_K);
    EVP_PKEY_free(EC_K);
}

TestSuite(jwt, .init = setup, .fini = teardown);

/* Verifies at NOW; returns the code, claims in *c (caller frees). */
static int verify(const char *tok, jwt_claims *c)
{
    char err[160];
    return jwt_verify(V, tok, strlen(tok), NOW, c, err, sizeof err);
}

/* The code alone. */
static int code_of(const char *tok)
{
    jwt_claims c;
    int rc = verify(tok, &c);
    jwt_claims_free(&c);
    return rc;
}

static int code_free(char *tok)
{
    int rc = code_of(tok);
    free(tok);
    return rc;
}

/* An own token from claims (stolen). */
static char *own_token(json_t *claims)
{
    char *tok = NULL;
    cr_assert_eq(jwt_sign_hs256(OWN_KEY, sizeof OWN_KEY, claims, &tok), JWT_OK);
    json_decref(claims);
    return tok;
}

static json_t *own_claims(void)
{
    return json_pack("{s:i, s:s, s:[s], s:s, s:s, s:I, s:I}", "customer_id", 42, "email",
                     "ann@example.com", "roles", "admin", "iss", ISS, "aud", AUD, "iat",
                     (json_int_t)(NOW - 60), "exp", (json_int_t)(NOW + 900));
}

static char *own_hdr(void)
{
    static char h[64];
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", OWN_KID);
    return h;
}

#define LEGACY_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define OIDC_PAYLOAD                                                                      \
    "{\"iss\":\"" OIDC_ISS "\",\"aud\":[\"account\",\"" OIDC_AUD "\"],\"sub\":\"f81d4fae\"," \
    "\"email\":\"kc@example.com\",\"realm_access\":{\"roles\":[\"agent\",\"offline_access\"]}," \
    "\"roles\":[\"admin\"],\"iat\":1799999990,\"exp\":1800000300}"

static char *legacy_token(const char *payload)
{
    return tj_sign_hs(LEGACY_HDR, payload, LEGACY, strlen(LEGACY));
}

static char *rs_token(const char *kid, const char *payload)
{
    char h[128];
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    return tj_sign_rs(h, payload, RSA_K);
}

static char *es_token(const char *kid, const char *payload, bool der)
{
    char h[128];
    snprintf(h, sizeof h, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    return tj_sign_es(h, payload, EC_K, der);
}

/* ------------------------------------------------------------ valid tokens */

Test(jwt, own_token_verifies)
{
    char *tok = own_token(own_claims());
    jwt_claims c;
    cr_assert_eq(verify(tok, &c), JWT_OK);
    cr_assert_eq(c.source, JWT_SRC_OWN);
    cr_assert(c.has_customer_id);
    cr_assert_eq(c.customer_id, 42);
    cr_assert_str_eq(c.email, "ann@example.com");
    cr_assert_eq(c.n_roles, 1);
    cr_assert_str_eq(c.roles[0], "admin");
    cr_assert_eq(c.exp, NOW + 900);
    cr_assert(c.has_iat);
    cr_assert_eq(c.iat, NOW - 60);
    cr_assert_str_eq(c.kid, OWN_KID);
    cr_assert_null(c.sub);
    jwt_claims_free(&c);
    free(tok);
}

Test(jwt, own_token_aud_array_and_no_roles)
{
    json_t *cl = own_claims();
    json_object_set_new(cl, "aud", json_pack("[s, s]", "other", AUD));
    json_object_del(cl, "roles");
    json_object_del(cl, "iat");
    char *tok = own_token(cl);
    jwt_claims c;
    cr_assert_eq(verify(tok, &c), JWT_OK);
    cr_assert_eq(c.n_roles, 0);
    cr_assert_not(c.has_iat);
    jwt_claims_free(&c);
    free(tok);
}

Test(jwt, legacy_token_verifies)
{
    char *tok = legacy_token("{\"customer_id\":7,\"email\":\"old@example.com\","
                             "\"iat\":1799990000,\"exp\":1800003600}");
    jwt_claims c;
    cr_assert_eq(verify(tok, &c), JWT_OK);
    cr_assert_eq(c.source, JWT_SRC_LEGACY);
    cr_assert_eq(c.customer_id, 7);
    cr_assert_str_eq(c.email, "old@example.com");
    cr_assert_null(c.kid);
    jwt_claims_free(&c);
    free(tok);
}

Test(jwt, legacy_customer_id_as_string)
{
    char *tok = legacy_token("{\"customer_id\":\"1234\",\"email\":\"o@example.com\","
                             "\"iat\":1799990000,\"exp\":1800003600}");
    jwt_claims c;
    cr_assert_eq(verify(tok, &c), JWT_OK);
    cr_assert_eq(c.customer_id, 1234);
    jwt_claims_free(&c);
    free(tok);
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":\"012\",\"exp\":1800003600}")),
                 JWT_ECLAIM);
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":\"12a\",\"exp\":1800003600}")),
                 JWT_ECLAIM);
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":-3,\"exp\":1800003600}")),
                 JWT_ECLAIM);
    cr_assert_eq(code_free(legacy_token("{\"email\":\"x@example.com\",\"exp\":1800003600}")),
                 JWT_ECLAIM);
}

Test(jwt, oidc_rs256_verifies)
{
    char *tok = rs_token(RSA_KID, OIDC_PAYLOAD);
    jwt_claims c;
    cr_assert_eq(verify(tok, &c), JWT_OK);
    cr_assert_eq(c.source, JWT_SRC_OIDC);
    cr_assert_not(c.has_customer_id);
    cr_assert_str_eq(c.sub, "f81d4fae");
    cr_assert_str_eq(c.email, "kc@example.com");
    cr_assert_str_eq(c.kid, RSA_KID);
    /* realm_access.roles, not the top-level roles */
    cr_assert_eq(c.n_roles, 2);
    cr_assert_str_eq(c.roles[0], "agent");
    cr_assert_str_eq(c.roles[1], "offline_access");
    jwt_claims_free(&c);
    free(tok);
}

Test(jwt, oidc_es256_verifies)
{
    char *tok = es_token(EC_KID, OIDC_PAYLOAD, false);
    jwt_claims c;
    cr_assert_eq(verify(tok, &c), JWT_OK);
    cr_assert_eq(c.source, JWT_SRC_OIDC);
    cr_assert_str_eq(c.kid, EC_KID);
    jwt_claims_free(&c);
    free(tok);
}

/* ------------------------------------------------------------ algorithms */

Test(jwt, alg_none_refused)
{
    const char *hdrs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\",\"typ\":\"JWT\"}",
                          "{\"alg\":\"NONE\"}", "{\"alg\":\"nOnE\",\"kid\":\"rsa-1\"}"};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        char *in = tj_signing_input(hdrs[i], OIDC_PAYLOAD);
        char *tok = malloc(strlen(in) + 2);
        sprintf(tok, "%s.", in);
        cr_assert_eq(code_of(tok), JWT_EALG, "%s", hdrs[i]);
        free(tok);
        free(in);
    }
    char h[128];
    snprintf(h, sizeof h, "{\"alg\":\"none\",\"kid\":\"%s\"}", OWN_KID);
    char *tok = tj_sign_hs(h, "{\"customer_id\":1,\"iss\":\"" ISS "\",\"aud\":\"" AUD
                           "\",\"exp\":1800000900}",
                        OWN_KEY, sizeof OWN_KEY);
    cr_assert_eq(code_free(tok), JWT_EALG);
}

Test(jwt, other_algs_refused)
{
    const char *algs[] = {"HS512", "hs256", "RS384", "PS256", "ES384", "EdDSA", ""};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char h[96];
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"%s\"}", algs[i], OWN_KID);
        char *tok = tj_sign_hs(h, "{\"exp\":1800000900}", OWN_KEY, sizeof OWN_KEY);
        cr_assert_eq(code_free(tok), JWT_EALG, "%s", algs[i]);
    }
    char *tok = tj_sign_hs("{\"alg\":5}", "{\"exp\":1800000900}", OWN_KEY, sizeof OWN_KEY);
    cr_assert_eq(code_free(tok), JWT_EMALFORMED);
    tok = tj_sign_hs("{\"typ\":\"JWT\"}", "{\"exp\":1800000900}", OWN_KEY, sizeof OWN_KEY);
    cr_assert_eq(code_free(tok), JWT_EMALFORMED);
}

/* HS256 "signed" with the provider's public key as the HMAC secret. */
Test(jwt, hs256_with_public_key_as_secret_refused)
{
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert(bio && PEM_write_bio_PUBKEY(bio, RSA_K) == 1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data(bio, &pem);
    uint8_t *der = NULL;
    int der_len = i2d_PUBKEY(RSA_K, &der);
    cr_assert(der_len > 0);
    const struct {
        const void *key;
        size_t len;
    } keys[] = {{pem, (size_t)pem_len}, {der, (size_t)der_len}};
    for (size_t i = 0; i < 2; i++) {
        char *tok = tj_sign_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"" RSA_KID "\"}",
                            OIDC_PAYLOAD, keys[i].key, keys[i].len);
        cr_assert_eq(code_free(tok), JWT_EALG);
        tok = tj_sign_hs(LEGACY_HDR, OIDC_PAYLOAD, keys[i].key, keys[i].len);
        cr_assert_eq(code_free(tok), JWT_ESIGNATURE);
    }
    /* And the EC key's point. */
    uint8_t *ecder = NULL;
    int ecder_len = i2d_PUBKEY(EC_K, &ecder);
    char *tok = tj_sign_hs("{\"alg\":\"HS256\",\"kid\":\"" EC_KID "\"}", OIDC_PAYLOAD, ecder,
                        (size_t)ecder_len);
    cr_assert_eq(code_free(tok), JWT_EALG);
    OPENSSL_free(ecder);
    OPENSSL_free(der);
    BIO_free(bio);
}

/* RS256 (or ES256) under the server's own key id: the own key is HMAC. */
Test(jwt, rs256_with_own_kid_refused)
{
    const char *payload = "{\"customer_id\":1,\"iss\":\"" ISS "\",\"aud\":\"" AUD
                          "\",\"exp\":1800000900}";
    cr_assert_eq(code_free(rs_token(OWN_KID, payload)), JWT_EALG);
    cr_assert_eq(code_free(es_token(OWN_KID, payload, false)), JWT_EALG);
    /* An RS256 token under the EC key's kid, and the reverse. */
    cr_assert_eq(code_free(rs_token(EC_KID, OIDC_PAYLOAD)), JWT_EALG);
    cr_assert_eq(code_free(es_token(RSA_KID, OIDC_PAYLOAD, false)), JWT_EALG);
}

Test(jwt, es256_der_signature_refused)
{
    cr_assert_eq(code_free(es_token(EC_KID, OIDC_PAYLOAD, true)), JWT_ESIGNATURE);
}

/* ------------------------------------------------------------ keys */

Test(jwt, unknown_kid)
{
    cr_assert_eq(code_free(rs_token("rsa-2", OIDC_PAYLOAD)), JWT_EKID);
    char *tok = tj_sign_hs("{\"alg\":\"HS256\",\"kid\":\"nope\"}", OIDC_PAYLOAD, OWN_KEY,
                        sizeof OWN_KEY);
    cr_assert_eq(code_free(tok), JWT_EKID);
    /* RS256 without a kid: no key to choose. */
    tok = tj_sign_rs("{\"alg\":\"RS256\"}", OIDC_PAYLOAD, RSA_K);
    cr_assert_eq(code_free(tok), JWT_EKID);
}

Test(jwt, jwks_refresh_replaces_the_set)
{
    EVP_PKEY *rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    cr_assert(rsa2);
    cr_assert_eq(load_jwks(json_pack("[o]", tj_jwk_rsa(rsa2, "rsa-2"))), 1);
    cr_assert_eq(code_free(rs_token(RSA_KID, OIDC_PAYLOAD)), JWT_EKID);
    cr_assert_eq(code_free(es_token(EC_KID, OIDC_PAYLOAD, false)), JWT_EKID);
    char *tok = tj_sign_rs("{\"alg\":\"RS256\",\"kid\":\"rsa-2\"}", OIDC_PAYLOAD, rsa2);
    cr_assert_eq(code_free(tok), JWT_OK);
    /* A bad document keeps the old set. */
    char err[128];
    cr_assert_eq(jwt_verifier_set_jwks(V, "not json", 8, err, sizeof err), -1);
    cr_assert(err[0]);
    cr_assert_eq(jwt_verifier_set_jwks(V, "{\"keys\":{}}", 11, err, sizeof err), -1);
    cr_assert_eq(jwt_verifier_set_jwks(V, "[]", 2, err, sizeof err), -1);
    cr_assert_eq(jwt_verifier_set_jwks(V, "{\"keys\":[]}", 11, err, sizeof err), -1);
    cr_assert_str_eq(err, "JWKS: no usable key");
    cr_assert_eq(load_jwks(json_pack("[{s:s, s:s, s:s}]", "kty", "oct", "kid", "h", "k",
                                     "c2VjcmV0")),
                 -1);
    cr_assert_eq(jwt_verifier_key_count(V), 1);
    tok = tj_sign_rs("{\"alg\":\"RS256\",\"kid\":\"rsa-2\"}", OIDC_PAYLOAD, rsa2);
    cr_assert_eq(code_free(tok), JWT_OK);
    EVP_PKEY_free(rsa2);
}

Test(jwt, jwks_skips_unusable_keys)
{
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    cr_assert(small && p384);
    json_t *enc = tj_jwk_rsa(RSA_K, "enc-1");
    json_object_set_new(enc, "use", json_string("enc"));
    json_t *rs384 = tj_jwk_rsa(RSA_K, "rs384");
    json_object_set_new(rs384, "alg", json_string("RS384"));
    json_t *nokid = tj_jwk_rsa(RSA_K, "x");
    json_object_del(nokid, "kid");
    json_t *offcurve = tj_jwk_ec(EC_K, "off", "P-256", 32);
    json_object_set_new(offcurve, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
    json_t *badb64 = tj_jwk_rsa(RSA_K, "pad");
    json_object_set_new(badb64, "e", json_string("AQAB="));
    json_t *keys = json_pack(
        "[o, o, o, o, o, o, o, {s:s, s:s, s:s}, o, o]", tj_jwk_rsa(small, "small"),
        tj_jwk_ec(p384, "p384", "P-384", 48), tj_jwk_ec(p384, "p384b", "P-256", 48), enc, rs384,
        nokid, offcurve, "kty", "oct", "kid", "hmac", "k", "c2VjcmV0", badb64,
        tj_jwk_ec(EC_K, "ec-ok", "P-256", 32));
    cr_assert(keys);
    cr_assert_eq(load_jwks(keys), 1);
    cr_assert_eq(code_free(es_token("ec-ok", OIDC_PAYLOAD, false)), JWT_OK);
    cr_assert_eq(code_free(rs_token("enc-1", OIDC_PAYLOAD)), JWT_EKID);
    cr_assert_eq(code_free(rs_token("rs384", OIDC_PAYLOAD)), JWT_EKID);
    char *tok = tj_sign_hs("{\"alg\":\"HS256\",\"kid\":\"hmac\"}", OIDC_PAYLOAD, "secret", 6);
    cr_assert_eq(code_free(tok), JWT_EKID);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p384);
}

Test(jwt, oidc_refused_when_not_configured)
{
    jwt_verifier *own_only = jwt_verifier_new(OWN_KEY, sizeof OWN_KEY, ISS, AUD);
    cr_assert(own_only);
    jwt_verifier *saved = V;
    V = own_only;
    cr_assert_eq(load_jwks(json_pack("[o]", tj_jwk_rsa(RSA_K, RSA_KID))), 1);
    cr_assert_eq(code_free(rs_token(RSA_KID, OIDC_PAYLOAD)), JWT_EKID);
    V = saved;
    jwt_verifier_free(own_only);
}

Test(jwt, legacy_refused_without_secret)
{
    jwt_verifier *own_only = jwt_verifier_new(OWN_KEY, sizeof OWN_KEY, ISS, AUD);
    cr_assert(own_only);
    char *tok = legacy_token("{\"customer_id\":7,\"email\":\"old@example.com\","
                             "\"iat\":1799990000,\"exp\":1800003600}");
    jwt_claims c;
    char err[128];
    cr_assert_eq(jwt_verify(own_only, tok, strlen(tok), NOW, &c, err, sizeof err),
                 JWT_ESIGNATURE);
    cr_assert_eq(c.source, JWT_SRC_NONE);
    cr_assert(err[0]);
    jwt_verifier_free(own_only);
    free(tok);
}

Test(jwt, verifier_arguments)
{
    cr_assert_null(jwt_verifier_new(OWN_KEY, 31, ISS, AUD));
    cr_assert_null(jwt_verifier_new(OWN_KEY, sizeof OWN_KEY, "", AUD));
    cr_assert_null(jwt_verifier_new(OWN_KEY, sizeof OWN_KEY, ISS, NULL));
    cr_assert_eq(jwt_verifier_set_legacy(V, NULL, 0), -1);
    cr_assert_eq(jwt_verifier_set_oidc(V, OIDC_ISS, ""), -1);
    json_t *arr = json_array();
    char *out = (char *)1;
    cr_assert_eq(jwt_sign_hs256(OWN_KEY, sizeof OWN_KEY, arr, &out), JWT_ECLAIM);
    cr_assert_null(out);
    json_t *obj = json_object();
    cr_assert_eq(jwt_sign_hs256(OWN_KEY, 16, obj, &out), JWT_EKEY);
    cr_assert_null(out);
    json_decref(obj);
    json_decref(arr);
    cr_assert_str_eq(jwt_strerror(JWT_EEXPIRED), "expired");
}

/* ------------------------------------------------------------ times */

Test(jwt, expired)
{
    json_t *cl = own_claims();
    json_object_set_new(cl, "exp", json_integer(NOW - JWT_LEEWAY_S));
    cr_assert_eq(code_free(own_token(cl)), JWT_EEXPIRED);
    cl = own_claims();
    json_object_set_new(cl, "exp", json_integer(NOW - JWT_LEEWAY_S + 1));
    cr_assert_eq(code_free(own_token(cl)), JWT_OK);
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":7,\"exp\":1799990000}")),
                 JWT_EEXPIRED);
    cr_assert_eq(code_free(rs_token(RSA_KID, "{\"iss\":\"" OIDC_ISS "\",\"aud\":\"" OIDC_AUD
                                             "\",\"exp\":1799999000}")),
                 JWT_EEXPIRED);
}

Test(jwt, exp_required)
{
    json_t *cl = own_claims();
    json_object_del(cl, "exp");
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
    cl = own_claims();
    json_object_set_new(cl, "exp", json_string("1800000900"));
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
    cl = own_claims();
    json_object_set_new(cl, "exp", json_real(1800000900.5));
    cr_assert_eq(code_free(own_token(cl)), JWT_OK);
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":7}")), JWT_ECLAIM);
}

Test(jwt, not_yet_valid)
{
    json_t *cl = own_claims();
    json_object_set_new(cl, "nbf", json_integer(NOW + JWT_LEEWAY_S + 1));
    cr_assert_eq(code_free(own_token(cl)), JWT_ENOTYET);
    cl = own_claims();
    json_object_set_new(cl, "nbf", json_integer(NOW + JWT_LEEWAY_S));
    cr_assert_eq(code_free(own_token(cl)), JWT_OK);
    cl = own_claims();
    json_object_set_new(cl, "nbf", json_string("soon"));
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
}

/* ------------------------------------------------------------ iss, aud */

Test(jwt, wrong_issuer)
{
    json_t *cl = own_claims();
    json_object_set_new(cl, "iss", json_string("https://evil.test"));
    cr_assert_eq(code_free(own_token(cl)), JWT_EISSUER);
    cl = own_claims();
    json_object_del(cl, "iss");
    cr_assert_eq(code_free(own_token(cl)), JWT_EISSUER);
    /* The provider's token with the server's issuer, and the reverse. */
    cr_assert_eq(code_free(rs_token(RSA_KID, "{\"iss\":\"" ISS "\",\"aud\":\"" OIDC_AUD
                                             "\",\"exp\":1800000900}")),
                 JWT_EISSUER);
    cl = own_claims();
    json_object_set_new(cl, "iss", json_string(OIDC_ISS));
    cr_assert_eq(code_free(own_token(cl)), JWT_EISSUER);
    /* A legacy token must have no iss. */
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":7,\"iss\":\"" ISS
                                        "\",\"exp\":1800003600}")),
                 JWT_EISSUER);
}

Test(jwt, wrong_audience)
{
    json_t *cl = own_claims();
    json_object_set_new(cl, "aud", json_string("someone-else"));
    cr_assert_eq(code_free(own_token(cl)), JWT_EAUDIENCE);
    cl = own_claims();
    json_object_set_new(cl, "aud", json_pack("[s, s]", "a", "b"));
    cr_assert_eq(code_free(own_token(cl)), JWT_EAUDIENCE);
    cl = own_claims();
    json_object_set_new(cl, "aud", json_array());
    cr_assert_eq(code_free(own_token(cl)), JWT_EAUDIENCE);
    cl = own_claims();
    json_object_del(cl, "aud");
    cr_assert_eq(code_free(own_token(cl)), JWT_EAUDIENCE);
    cr_assert_eq(code_free(rs_token(RSA_KID, "{\"iss\":\"" OIDC_ISS "\",\"aud\":\"account\","
                                             "\"exp\":1800000900}")),
                 JWT_EAUDIENCE);
    cr_assert_eq(code_free(es_token(EC_KID, "{\"iss\":\"" OIDC_ISS "\",\"aud\":[\"account\","
                                            "\"" AUD "\"],\"exp\":1800000900}",
                                    false)),
                 JWT_EAUDIENCE);
    cr_assert_eq(code_free(legacy_token("{\"customer_id\":7,\"aud\":\"" AUD
                                        "\",\"exp\":1800003600}")),
                 JWT_EAUDIENCE);
}

/* ------------------------------------------------------------ claim types */

Test(jwt, claim_types)
{
    json_t *cl = own_claims();
    json_object_set_new(cl, "customer_id", json_string("42"));
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
    cl = own_claims();
    json_object_del(cl, "customer_id");
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
    cl = own_claims();
    json_object_set_new(cl, "roles", json_string("admin"));
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
    cl = own_claims();
    json_object_set_new(cl, "roles", json_pack("[s, i]", "admin", 1));
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
    cl = own_claims();
    json_object_set_new(cl, "email", json_integer(5));
    cr_assert_eq(code_free(own_token(cl)), JWT_ECLAIM);
}

/* ------------------------------------------------------------ tampering */

/* Replaces part `which` (0 header, 1 payload, 2 signature) of tok. */
static char *swap_part(const char *tok, int which, const char *part)
{
    const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    char *out = malloc(strlen(tok) + strlen(part) + 1);
    cr_assert(out);
    if (which == 0)
        sprintf(out, "%s%s", part, d1);
    else if (which == 1)
        sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, part, d2);
    else
        sprintf(out, "%.*s.%s", (int)(d2 - tok), tok, part);
    return out;
}

Test(jwt, tampered_payload)
{
    char *tok = own_token(own_claims());
    json_t *cl = own_claims();
    json_object_set_new(cl, "customer_id", json_integer(1));
    char *text = json_dumps(cl, JSON_COMPACT);
    char *p = tj_b64url_str(text);
    cr_assert_eq(code_free(swap_part(tok, 1, p)), JWT_ESIGNATURE);
    free(p);
    free(text);
    json_decref(cl);
    free(tok);

    char *rs = rs_token(RSA_KID, OIDC_PAYLOAD);
    p = tj_b64url_str("{\"iss\":\"" OIDC_ISS "\",\"aud\":\"" OIDC_AUD "\",\"exp\":1900000000}");
    cr_assert_eq(code_free(swap_part(rs, 1, p)), JWT_ESIGNATURE);
    free(p);
    free(rs);
}

/* Changes the first character of the signature to another valid one. */
static char *flip_sig(const char *tok)
{
    char *t = strdup(tok);
    char *s = strrchr(t, '.') + 1;
    s[0] = s[0] == 'A' ? 'B' : 'A';
    return t;
}

Test(jwt, tampered_signature)
{
    char *toks[] = {own_token(own_claims()), rs_token(RSA_KID, OIDC_PAYLOAD),
                    es_token(EC_KID, OIDC_PAYLOAD, false),
                    legacy_token("{\"customer_id\":7,\"exp\":1800003600}")};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(code_of(toks[i]), JWT_OK, "token %zu", i);
        cr_assert_eq(code_free(flip_sig(toks[i])), JWT_ESIGNATURE, "token %zu", i);
        /* Truncated (the last character may then carry stray bits: malformed)
         * or empty. */
        char *t = strdup(toks[i]);
        t[strlen(t) - 4] = '\0';
        int rc = code_free(t);
        cr_assert(rc == JWT_ESIGNATURE || rc == JWT_EMALFORMED, "token %zu: %d", i, rc);
        cr_assert_eq(code_free(swap_part(toks[i], 2, "")), JWT_ESIGNATURE, "token %zu", i);
        free(toks[i]);
    }
}

/* ------------------------------------------------------------ malformed */

Test(jwt, malformed)
{
    char *good = own_token(own_claims());
    const char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
    char buf[4096];

    snprintf(buf, sizeof buf, "%.*s", (int)(d2 - good), good); /* two parts */
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    snprintf(buf, sizeof buf, "%s.", good); /* four parts */
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    snprintf(buf, sizeof buf, "%s.AAAA", good);
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    cr_assert_eq(code_of(""), JWT_EMALFORMED);
    cr_assert_eq(code_of(".."), JWT_EMALFORMED);
    cr_assert_eq(code_of("abc"), JWT_EMALFORMED);

    /* Bad base64url: padding, the standard alphabet, white space. */
    snprintf(buf, sizeof buf, "%.*s=%s", (int)(d1 - good), good, d1);
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    snprintf(buf, sizeof buf, "%s=", good);
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    snprintf(buf, sizeof buf, "%s", good);
    buf[d2 - good + 3] = '+';
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    snprintf(buf, sizeof buf, " %s", good);
    cr_assert_eq(code_of(buf), JWT_EMALFORMED);
    snprintf(buf, sizeof buf, "%.*s.%s", (int)(d1 - good), good, d1 + 2); /* 1 mod 4 maybe */
    cr_assert_neq(code_of(buf), JWT_OK);

    /* Not JSON, not an object, trailing bytes, duplicate members. */
    const char *bad_payloads[] = {"not json", "[1,2]", "\"str\"", "{\"exp\":1} x",
                                  "{\"exp\":1800000900,\"exp\":1800000900}", ""};
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        char *t = tj_sign_hs(own_hdr(), bad_payloads[i], OWN_KEY, sizeof OWN_KEY);
        cr_assert_eq(code_free(t), JWT_EMALFORMED, "%s", bad_payloads[i]);
    }
    const char *bad_headers[] = {"[\"HS256\"]", "{\"alg\":\"HS256\"", "null",
                                 "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
                                 "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}",
                                 "{\"alg\":\"HS256\",\"kid\":7}"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        char *t = tj_sign_hs(bad_headers[i], "{\"exp\":1800000900}", OWN_KEY, sizeof OWN_KEY);
        cr_assert_eq(code_free(t), JWT_EMALFORMED, "%s", bad_headers[i]);
    }
    free(good);
}

Test(jwt, huge_token)
{
    json_t *cl = own_claims();
    char *pad = malloc(7000);
    memset(pad, 'x', 6999);
    pad[6999] = '\0';
    json_object_set_new(cl, "pad", json_string(pad));
    char *tok = own_token(cl);
    cr_assert_gt(strlen(tok), JWT_MAX_TOKEN);
    cr_assert_eq(code_free(tok), JWT_EMALFORMED);
    /* Just under the cap is fine. */
    cl = own_claims();
    pad[5000] = '\0';
    json_object_set_new(cl, "pad", json_string(pad));
    tok = own_token(cl);
    cr_assert_leq(strlen(tok), JWT_MAX_TOKEN);
    cr_assert_eq(code_free(tok), JWT_OK);
    free(pad);
}

Test(jwt, length_is_honoured)
{
    char *tok = own_token(own_claims());
    size_t n = strlen(tok);
    jwt_claims c;
    /* Not NUL-terminated where len ends: the rest is not read. */
    char *longer = malloc(n + 8);
    memcpy(longer, tok, n);
    memcpy(longer + n, "garbage", 8);
    cr_assert_eq(jwt_verify(V, longer, n, NOW, &c, NULL, 0), JWT_OK);
    jwt_claims_free(&c);
    cr_assert_neq(jwt_verify(V, longer, n - 1, NOW, &c, NULL, 0), JWT_OK);
    /* A NUL inside. */
    longer[10] = '\0';
    cr_assert_eq(jwt_verify(V, longer, n, NOW, &c, NULL, 0), JWT_EMALFORMED);
    cr_assert_eq(jwt_verify(V, NULL, 0, NOW, &c, NULL, 0), JWT_EMALFORMED);
    free(longer);
    free(tok);
}
