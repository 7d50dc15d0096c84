/* test_api_tokens.c - tokens over real HTTP: the server's own, the old
 * backend's (JWT_SECRET_LEGACY) and an OpenID Connect provider's
 * (OIDC_ISSUER, OIDC_AUDIENCE, OIDC_JWKS_FILE) are accepted, with the role
 * taken from the account for the store's own accounts (an old token without
 * roles whose account is admin is an admin); every forged or stale token is
 * a 401, also on routes where a token is optional. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_support.h"
#include "core/support.h"
#include "jwt.h"
#include "jwt_support.h"

#define LEGACY "old-node-backend-secret"
#define OIDC_ISS "https://sso.watchstore.test/realms/shop"
#define OIDC_AUD "watchstore-spa"

static ta_store store;
static ta_server srv;
static EVP_PKEY *ec_key;

/* Customer 1 an admin, customer 2 a user. */
static void accounts(void)
{
    cr_assert_eq(ta_add_customer(&store, "boss@example.com", "Token Tester", true), 1);
    cr_assert_eq(ta_add_customer(&store, "user@example.com", "Token Tester", false), 2);
}

static void setup(void)
{
    ta_store_init(&store);
    accounts();
    ta_project(&store);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cr_assert_not_null(ec_key);
    json_t *doc = json_pack("{s:[o]}", "keys", tj_jwk_ec(ec_key, "ec-1", "P-256", 32));
    char path[400];
    snprintf(path, sizeof path, "%s/jwks.json", store.dir);
    cr_assert_eq(json_dump_file(doc, path, 0), 0);
    json_decref(doc);
    setenv("JWT_SECRET_LEGACY", LEGACY, 1);
    setenv("OIDC_ISSUER", OIDC_ISS, 1);
    setenv("OIDC_AUDIENCE", OIDC_AUD, 1);
    setenv("OIDC_JWKS_FILE", path, 1);
    ta_server_start(&srv, &store, NULL);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0);
    EVP_PKEY_free(ec_key);
    ta_store_fini(&store);
}

TestSuite(api_tokens, .init = setup, .fini = teardown, .timeout = 120);

/* GET path with "Authorization: Bearer tok" (frees tok); the status, and
 * the first role of /auth/me's answer into role. */
static long get_with(const char *path, char *tok, char *role, size_t cap)
{
    char h[4096];
    snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
    free(tok);
    const char *hs[] = {h, NULL};
    ta_resp r;
    ta_request(&srv, "GET", path, NULL, hs, &r);
    long st = r.status;
    if (role) {
        json_error_t e;
        json_t *j = json_loads(r.body, 0, &e);
        const char *v = j ? json_string_value(json_array_get(json_object_get(j, "roles"), 0)) : NULL;
        snprintf(role, cap, "%s", v ? v : "");
        json_decref(j);
    }
    ta_resp_free(&r);
    return st;
}

static char *own(json_t *claims)
{
    char *tok = NULL;
    cr_assert_eq(jwt_sign_hs256(TA_JWT_KEY, 32, claims, &tok), 0);
    json_decref(claims);
    return tok;
}

static json_t *own_claims(int64_t customer, int64_t exp_in)
{
    int64_t now = (int64_t)time(NULL);
    return json_pack("{s:I,s:s,s:I,s:I,s:s,s:s}", "customer_id", (json_int_t)customer, "email",
                     "x@example.com", "iat", (json_int_t)now, "exp", (json_int_t)(now + exp_in),
                     "iss", "watchstore", "aud", "watchstore-api");
}

static char *payload_text(json_t *claims)
{
    char *t = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    return t;
}

static char *oidc_token(const char *kid, const char *iss, const char *aud, int64_t exp_in)
{
    int64_t now = (int64_t)time(NULL);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    char *pl = payload_text(json_pack("{s:s,s:s,s:s,s:I,s:I,s:{s:[s]}}", "sub", "kc-user-7",
                                      "iss", iss, "aud", aud, "iat", (json_int_t)now, "exp",
                                      (json_int_t)(now + exp_in), "realm_access", "roles",
                                      "agent"));
    char *tok = tj_sign_es(hdr, pl, ec_key, false);
    free(pl);
    return tok;
}

Test(api_tokens, own_legacy_and_provider_tokens_are_accepted)
{
    char role[32];
    /* No roles in the token: the account's role counts. */
    cr_assert_eq(get_with("/api/v1/auth/me", own(own_claims(1, 600)), role, sizeof role), 200);
    cr_assert_str_eq(role, "admin");
    cr_assert_eq(get_with("/api/v1/auth/me", own(own_claims(2, 600)), role, sizeof role), 200);
    cr_assert_str_eq(role, "user");

    int64_t now = (int64_t)time(NULL);
    char pl[256];
    snprintf(pl, sizeof pl, "{\"customer_id\":1,\"email\":\"boss@example.com\",\"iat\":%lld,"
                            "\"exp\":%lld}",
             (long long)now, (long long)now + 600);
    char *legacy = tj_sign_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pl, LEGACY, strlen(LEGACY));
    cr_assert_eq(get_with("/api/v1/auth/me", legacy, role, sizeof role), 200);
    cr_assert_str_eq(role, "admin", "an old token whose account is admin");

    cr_assert_eq(get_with("/api/v1/auth/me", oidc_token("ec-1", OIDC_ISS, OIDC_AUD, 600), role,
                          sizeof role),
                 200);
    cr_assert_str_eq(role, "agent", "a provider's realm role");
}

Test(api_tokens, forged_and_stale_tokens_get_401_everywhere)
{
    int64_t now = (int64_t)time(NULL);
    char *pl = payload_text(own_claims(1, 600));
    char *none_tok = NULL;
    {
        char *in = tj_signing_input("{\"alg\":\"none\",\"typ\":\"JWT\"}", pl);
        size_t n = strlen(in);
        none_tok = malloc(n + 2);
        snprintf(none_tok, n + 2, "%s.", in);
        free(in);
    }
    /* HS256 keyed with the provider's public key, under its kid. */
    uint8_t *pub = NULL;
    size_t publen = (size_t)i2d_PUBKEY(ec_key, &pub);
    char *confused = tj_sign_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"ec-1\"}", pl, pub,
                                publen);
    OPENSSL_free(pub);
    char *tampered = own(own_claims(2, 600));
    char *dot = strchr(tampered, '.');
    char *dot2 = strchr(dot + 1, '.');
    char *evil = tj_b64url_str("{\"customer_id\":1,\"email\":\"x@example.com\",\"iat\":1,"
                               "\"exp\":9999999999,\"iss\":\"watchstore\",\"aud\":\"watchstore-api\"}");
    char *forged = malloc(strlen(tampered) + strlen(evil) + 4);
    sprintf(forged, "%.*s.%s%s", (int)(dot - tampered), tampered, evil, dot2);
    free(evil);
    free(tampered);
    char legacy_pl[256];
    snprintf(legacy_pl, sizeof legacy_pl, "{\"customer_id\":1,\"iat\":%lld,\"exp\":%lld}",
             (long long)now - 7200, (long long)now - 3600);

    struct {
        const char *what;
        char *tok;
    } cases[] = {
        {"alg none", none_tok},
        {"HS/ES confusion", confused},
        {"tampered payload", forged},
        {"expired", own(own_claims(1, -600))},
        {"wrong issuer", oidc_token("ec-1", "https://evil.example/realms/shop", OIDC_AUD, 600)},
        {"wrong audience", oidc_token("ec-1", OIDC_ISS, "someone-else", 600)},
        {"unknown kid", oidc_token("ec-9", OIDC_ISS, OIDC_AUD, 600)},
        {"expired legacy", tj_sign_hs("{\"alg\":\"HS256\"}", legacy_pl, LEGACY, strlen(LEGACY))},
        {"garbage", strdup("not-a-token")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *copy = strdup(cases[i].tok);
        cr_assert_eq(get_with("/api/v1/auth/me", cases[i].tok, NULL, 0), 401, "%s on /auth/me",
                     cases[i].what);
        cr_assert_eq(get_with("/api/v1/watches", copy, NULL, 0), 401,
                     "%s where a token is optional", cases[i].what);
    }
    free(pl);
}
