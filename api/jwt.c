/* jwt.c - HS256 signing and HS256/RS256/ES256 verification (see jwt.h). */
#include "jwt.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "b64.h"

enum {
    HMAC_LEN = 32,
    MAX_SIG = 1024,  /* RSA 8192 */
    MAX_KID = 256,   /* characters */
    MIN_RSA_BITS = 2048,
    MAX_RSA_BYTES = 1024,
    MAX_E_BYTES = 8,
    EC_COORD = 32,   /* P-256 */
};

static const char KID_DOMAIN[] = "ws-jwt-kid";

typedef enum key_kind { KEY_HMAC, KEY_RSA, KEY_EC } key_kind;

/* One signing key of the OIDC provider. */
typedef struct jwks_key {
    char *kid;
    key_kind kind;
    EVP_PKEY *pkey;
} jwks_key;

typedef struct jwks_set {
    jwks_key *keys;
    size_t n;
} jwks_set;

struct jwt_verifier {
    pthread_rwlock_t lock; /* readers verify; set_* write */
    uint8_t *own_key;
    size_t own_len;
    char own_kid[JWT_KID_LEN + 1];
    char *iss;
    char *aud;
    uint8_t *legacy; /* NULL: legacy tokens refused */
    size_t legacy_len;
    char *oidc_iss; /* NULL: OIDC tokens refused */
    char *oidc_aud;
    jwks_set jwks;
};

/* The key chosen for a token. */
typedef struct chosen_key {
    jwt_source source;
    key_kind kind;
    const uint8_t *secret; /* KEY_HMAC */
    size_t secret_len;
    EVP_PKEY *pkey; /* KEY_RSA, KEY_EC */
} chosen_key;

/* A token split and decoded. */
typedef struct jws {
    const char *input; /* header "." payload: what is signed */
    size_t input_len;
    json_t *header;
    json_t *payload;
    const char *alg; /* borrowed from header */
    const char *kid; /* borrowed from header; NULL when absent */
    uint8_t sig[MAX_SIG];
    size_t sig_len;
} jws;

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *jwt_strerror(int code)
{
    switch (code) {
    case JWT_OK: return "ok";
    case JWT_EMALFORMED: return "malformed";
    case JWT_ESIGNATURE: return "bad signature";
    case JWT_EEXPIRED: return "expired";
    case JWT_ENOTYET: return "not yet valid";
    case JWT_EISSUER: return "wrong issuer";
    case JWT_EAUDIENCE: return "wrong audience";
    case JWT_EKID: return "unknown key id";
    case JWT_EALG: return "algorithm not allowed";
    case JWT_ECLAIM: return "bad claim";
    case JWT_ENOMEM: return "out of memory";
    case JWT_EKEY: return "key too short";
    default: return "unknown error";
    }
}

void jwt_claims_free(jwt_claims *c)
{
    free(c->email);
    free(c->sub);
    free(c->kid);
    for (size_t i = 0; i < c->n_roles; i++)
        free(c->roles[i]);
    free(c->roles);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ primitives */

static int hmac_sha256(const uint8_t *key, size_t keylen, const char *data, size_t len,
                       uint8_t out[HMAC_LEN])
{
    size_t outlen = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, (const uint8_t *)data,
                   len, out, HMAC_LEN, &outlen) ||
        outlen != HMAC_LEN)
        return -1;
    return 0;
}

int jwt_key_id(const uint8_t *key, size_t keylen, char *kid, size_t cap)
{
    uint8_t md[32];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, KID_DOMAIN, sizeof KID_DOMAIN - 1) == 1 &&
             EVP_DigestUpdate(ctx, key, keylen) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok || b64_encode(B64_URL, md, 12, kid, cap) != 0)
        return -1;
    return 0;
}

/* base64url of text, appended to buf at *pos (buf has cap bytes). */
static int append_b64(char *buf, size_t cap, size_t *pos, const uint8_t *data, size_t n)
{
    if (b64_encode(B64_URL, data, n, buf + *pos, cap - *pos) != 0)
        return -1;
    *pos += strlen(buf + *pos);
    return 0;
}

int jwt_sign_hs256(const uint8_t *key, size_t keylen, json_t *claims, char **out)
{
    *out = NULL;
    if (!key || keylen < JWT_MIN_KEY)
        return JWT_EKEY;
    if (!json_is_object(claims))
        return JWT_ECLAIM;
    char kid[JWT_KID_LEN + 1];
    if (jwt_key_id(key, keylen, kid, sizeof kid) != 0)
        return JWT_ENOMEM;
    json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "typ", "JWT", "kid", kid);
    char *htext = header ? json_dumps(header, JSON_COMPACT) : NULL;
    char *ptext = json_dumps(claims, JSON_COMPACT);
    json_decref(header);
    int rc = JWT_ENOMEM;
    char *tok = NULL;
    if (htext && ptext) {
        size_t hl = strlen(htext), pl = strlen(ptext);
        size_t cap = b64_encoded_len(hl) + b64_encoded_len(pl) + b64_encoded_len(HMAC_LEN) + 3;
        tok = malloc(cap);
        size_t pos = 0;
        uint8_t mac[HMAC_LEN];
        if (tok && append_b64(tok, cap, &pos, (const uint8_t *)htext, hl) == 0) {
            tok[pos++] = '.';
            if (append_b64(tok, cap, &pos, (const uint8_t *)ptext, pl) == 0 &&
                hmac_sha256(key, keylen, tok, pos, mac) == 0) {
                tok[pos++] = '.';
                if (append_b64(tok, cap, &pos, mac, sizeof mac) == 0)
                    rc = JWT_OK;
            }
        }
    }
    free(htext);
    free(ptext);
    if (rc != JWT_OK)
        free(tok);
    else
        *out = tok;
    return rc;
}

/* ------------------------------------------------------------ verifier */

static void jwks_clear(jwks_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i].kid);
        EVP_PKEY_free(s->keys[i].pkey);
    }
    free(s->keys);
    s->keys = NULL;
    s->n = 0;
}

jwt_verifier *jwt_verifier_new(const uint8_t *key, size_t keylen, const char *iss,
                               const char *aud)
{
    if (!key || keylen < JWT_MIN_KEY || !iss || !iss[0] || !aud || !aud[0])
        return NULL;
    jwt_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (pthread_rwlock_init(&v->lock, NULL) != 0) {
        free(v);
        return NULL;
    }
    v->own_key = malloc(keylen);
    v->iss = strdup(iss);
    v->aud = strdup(aud);
    if (!v->own_key || !v->iss || !v->aud || jwt_key_id(key, keylen, v->own_kid,
                                                         sizeof v->own_kid) != 0) {
        jwt_verifier_free(v);
        return NULL;
    }
    memcpy(v->own_key, key, keylen);
    v->own_len = keylen;
    return v;
}

void jwt_verifier_free(jwt_verifier *v)
{
    if (!v)
        return;
    if (v->own_key)
        OPENSSL_clear_free(v->own_key, v->own_len);
    if (v->legacy)
        OPENSSL_clear_free(v->legacy, v->legacy_len);
    free(v->iss);
    free(v->aud);
    free(v->oidc_iss);
    free(v->oidc_aud);
    jwks_clear(&v->jwks);
    pthread_rwlock_destroy(&v->lock);
    free(v);
}

int jwt_verifier_set_legacy(jwt_verifier *v, const uint8_t *secret, size_t len)
{
    if (!secret || len == 0)
        return -1;
    uint8_t *copy = malloc(len);
    if (!copy)
        return -1;
    memcpy(copy, secret, len);
    pthread_rwlock_wrlock(&v->lock);
    uint8_t *old = v->legacy;
    size_t old_len = v->legacy_len;
    v->legacy = copy;
    v->legacy_len = len;
    pthread_rwlock_unlock(&v->lock);
    if (old)
        OPENSSL_clear_free(old, old_len);
    return 0;
}

int jwt_verifier_set_oidc(jwt_verifier *v, const char *issuer, const char *audience)
{
    if (!issuer || !issuer[0] || !audience || !audience[0])
        return -1;
    char *iss = strdup(issuer), *aud = strdup(audience);
    if (!iss || !aud) {
        free(iss);
        free(aud);
        return -1;
    }
    pthread_rwlock_wrlock(&v->lock);
    char *old_iss = v->oidc_iss, *old_aud = v->oidc_aud;
    v->oidc_iss = iss;
    v->oidc_aud = aud;
    pthread_rwlock_unlock(&v->lock);
    free(old_iss);
    free(old_aud);
    return 0;
}

/* ------------------------------------------------------------ JWKS */

/* Decodes the base64url string member `name` of a JWK into buf. */
static bool jwk_bytes(json_t *jwk, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    json_t *s = json_object_get(jwk, name);
    if (!json_is_string(s))
        return false;
    return b64_decode(B64_URL, json_string_value(s), json_string_length(s), buf, cap, len) ==
           0;
}

/* A public key from OSSL_PARAMs built by bld. */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pkey = NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_from_jwk(json_t *jwk)
{
    uint8_t n[MAX_RSA_BYTES + 1], e[MAX_E_BYTES];
    size_t nl, el;
    if (!jwk_bytes(jwk, "n", n, sizeof n, &nl) || !jwk_bytes(jwk, "e", e, sizeof e, &el) ||
        nl == 0 || el == 0)
        return NULL;
    BIGNUM *bn_n = BN_bin2bn(n, (int)nl, NULL), *bn_e = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn_n && bn_e && bld && BN_num_bits(bn_n) >= MIN_RSA_BITS &&
        BN_num_bytes(bn_n) <= MAX_RSA_BYTES && BN_is_odd(bn_e) && !BN_is_one(bn_e) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        pkey = pkey_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

/* True when an EC key's point is valid on its curve. */
static bool ec_public_ok(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = ctx && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *ec_from_jwk(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    uint8_t pub[1 + 2 * EC_COORD];
    size_t xl, yl;
    if (!crv || strcmp(crv, "P-256") != 0 ||
        !jwk_bytes(jwk, "x", pub + 1, EC_COORD, &xl) ||
        !jwk_bytes(jwk, "y", pub + 1 + EC_COORD, EC_COORD, &yl) || xl != EC_COORD ||
        yl != EC_COORD)
        return NULL;
    pub[0] = 0x04; /* uncompressed point */
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
        pkey = pkey_from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (pkey && !ec_public_ok(pkey)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pkey;
}

/* True when an optional string member is absent or equal to want. */
static bool absent_or(json_t *obj, const char *name, const char *want)
{
    json_t *m = json_object_get(obj, name);
    return !m || (json_is_string(m) && strcmp(json_string_value(m), want) == 0);
}

/* Reads one JWK into *out; false when it is not a key this module uses. */
static bool jwk_parse(json_t *jwk, const char *own_kid, jwks_key *out)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    json_t *kid = json_object_get(jwk, "kid");
    if (!kty || !json_is_string(kid) || json_string_length(kid) == 0 ||
        json_string_length(kid) > MAX_KID || strcmp(json_string_value(kid), own_kid) == 0 ||
        !absent_or(jwk, "use", "sig"))
        return false;
    if (strcmp(kty, "RSA") == 0 && absent_or(jwk, "alg", "RS256")) {
        out->kind = KEY_RSA;
        out->pkey = rsa_from_jwk(jwk);
    } else if (strcmp(kty, "EC") == 0 && absent_or(jwk, "alg", "ES256")) {
        out->kind = KEY_EC;
        out->pkey = ec_from_jwk(jwk);
    } else
        return false;
    if (!out->pkey)
        return false;
    out->kid = strdup(json_string_value(kid));
    if (!out->kid) {
        EVP_PKEY_free(out->pkey);
        return false;
    }
    return true;
}

static const jwks_key *jwks_find(const jwks_set *s, const char *kid)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i].kid, kid) == 0)
            return &s->keys[i];
    return NULL;
}

/* Fills set from a JWKS's "keys" array; a later key with a kid already
 * seen is dropped. */
static int jwks_build(json_t *keys, const char *own_kid, jwks_set *set)
{
    set->keys = calloc(json_array_size(keys) + 1, sizeof *set->keys);
    if (!set->keys)
        return -1;
    size_t i;
    json_t *jwk;
    json_array_foreach(keys, i, jwk) {
        jwks_key k;
        if (!json_is_object(jwk) || !jwk_parse(jwk, own_kid, &k))
            continue;
        if (jwks_find(set, k.kid)) {
            free(k.kid);
            EVP_PKEY_free(k.pkey);
            continue;
        }
        set->keys[set->n++] = k;
    }
    return 0;
}

int jwt_verifier_set_jwks(jwt_verifier *v, const char *jwks_json, size_t len, char *err,
                          size_t errlen)
{
    seterr(err, errlen, "%s", "");
    json_error_t je;
    json_t *doc = jwks_json ? json_loadb(jwks_json, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        seterr(err, errlen, "JWKS: %s", doc ? "no \"keys\" array" : "not JSON");
        json_decref(doc);
        return -1;
    }
    jwks_set set = {0};
    int rc = jwks_build(keys, v->own_kid, &set);
    json_decref(doc);
    if (rc != 0 || set.n == 0) {
        jwks_clear(&set);
        seterr(err, errlen, "JWKS: %s", rc ? "out of memory" : "no usable key");
        return -1;
    }
    pthread_rwlock_wrlock(&v->lock);
    jwks_set old = v->jwks;
    v->jwks = set;
    pthread_rwlock_unlock(&v->lock);
    jwks_clear(&old);
    return 0;
}

size_t jwt_verifier_key_count(jwt_verifier *v)
{
    pthread_rwlock_rdlock(&v->lock);
    size_t n = v->jwks.n;
    pthread_rwlock_unlock(&v->lock);
    return n;
}

/* ------------------------------------------------------------ parsing */

/* Decodes one base64url part holding a JSON object. */
static int decode_json_part(const char *p, size_t n, json_t **out)
{
    uint8_t buf[JWT_MAX_TOKEN];
    size_t len;
    *out = NULL;
    if (n == 0 || b64_decode(B64_URL, p, n, buf, sizeof buf, &len) != 0)
        return JWT_EMALFORMED;
    json_error_t je;
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return JWT_EMALFORMED;
    }
    *out = j;
    return JWT_OK;
}

static bool alg_known(const char *alg)
{
    return strcmp(alg, "HS256") == 0 || strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0;
}

/* Reads alg, kid and crit from the header. */
static int check_header(jws *t, char *err, size_t errlen)
{
    json_t *alg = json_object_get(t->header, "alg");
    if (!json_is_string(alg)) {
        seterr(err, errlen, "header without alg");
        return JWT_EMALFORMED;
    }
    t->alg = json_string_value(alg);
    if (strcasecmp(t->alg, "none") == 0 || !alg_known(t->alg)) {
        seterr(err, errlen, "alg \"%.32s\" not allowed", t->alg);
        return JWT_EALG;
    }
    if (json_object_get(t->header, "crit")) {
        seterr(err, errlen, "header has crit");
        return JWT_EMALFORMED;
    }
    json_t *kid = json_object_get(t->header, "kid");
    if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                json_string_length(kid) > MAX_KID)) {
        seterr(err, errlen, "bad kid");
        return JWT_EMALFORMED;
    }
    t->kid = kid ? json_string_value(kid) : NULL;
    return JWT_OK;
}

/* Splits and decodes token into t (header checked first, so a refused alg
 * is named as such whatever follows). */
static int jws_parse(const char *token, size_t len, jws *t, char *err, size_t errlen)
{
    if (!token || len == 0 || len > JWT_MAX_TOKEN) {
        seterr(err, errlen, "token length %zu", len);
        return JWT_EMALFORMED;
    }
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    const char *end = token + len;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1))) {
        seterr(err, errlen, "not three parts");
        return JWT_EMALFORMED;
    }
    int rc = decode_json_part(token, (size_t)(d1 - token), &t->header);
    if (rc != JWT_OK) {
        seterr(err, errlen, "header is not base64url JSON object");
        return rc;
    }
    if ((rc = check_header(t, err, errlen)) != JWT_OK)
        return rc;
    rc = decode_json_part(d1 + 1, (size_t)(d2 - d1 - 1), &t->payload);
    if (rc != JWT_OK) {
        seterr(err, errlen, "payload is not base64url JSON object");
        return rc;
    }
    size_t sl = (size_t)(end - d2 - 1);
    if (b64_decoded_max(sl) > sizeof t->sig) {
        seterr(err, errlen, "signature too long");
        return JWT_ESIGNATURE;
    }
    if (b64_decode(B64_URL, d2 + 1, sl, t->sig, sizeof t->sig, &t->sig_len) != 0) {
        seterr(err, errlen, "signature is not base64url");
        return JWT_EMALFORMED;
    }
    t->input = token;
    t->input_len = (size_t)(d2 - token);
    return JWT_OK;
}

/* ------------------------------------------------------------ signatures */

static bool hmac_ok(const chosen_key *k, const jws *t)
{
    uint8_t mac[HMAC_LEN];
    if (t->sig_len != HMAC_LEN || hmac_sha256(k->secret, k->secret_len, t->input,
                                              t->input_len, mac) != 0)
        return false;
    return CRYPTO_memcmp(mac, t->sig, HMAC_LEN) == 0;
}

static bool digest_verify(EVP_PKEY *pkey, const uint8_t *sig, size_t siglen, const jws *t)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md &&
              EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
              EVP_DigestVerify(md, sig, siglen, (const uint8_t *)t->input, t->input_len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* JWS carries ES256 as r || s (32 bytes each); OpenSSL wants DER. Returns
 * the DER length and *der (OPENSSL_free), or -1. */
static int es256_to_der(const uint8_t raw[2 * EC_COORD], uint8_t **der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, EC_COORD, NULL), *s = BN_bin2bn(raw + EC_COORD, EC_COORD, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return -1;
    }
    *der = NULL;
    int n = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return n > 0 ? n : -1;
}

static bool signature_ok(const chosen_key *k, const jws *t)
{
    switch (k->kind) {
    case KEY_HMAC:
        return hmac_ok(k, t);
    case KEY_RSA:
        return t->sig_len == (size_t)EVP_PKEY_get_size(k->pkey) &&
               digest_verify(k->pkey, t->sig, t->sig_len, t);
    case KEY_EC: {
        if (t->sig_len != 2 * EC_COORD)
            return false;
        uint8_t *der = NULL;
        int n = es256_to_der(t->sig, &der);
        bool ok = n > 0 && digest_verify(k->pkey, der, (size_t)n, t);
        OPENSSL_free(der);
        return ok;
    }
    }
    return false;
}

static const char *kind_alg(key_kind kind)
{
    return kind == KEY_HMAC ? "HS256" : kind == KEY_RSA ? "RS256" : "ES256";
}

/* Picks the key by kid and checks the signature with it: see jwt.h. */
static int check_signature(const jwt_verifier *v, const jws *t, jwt_source *source,
                           char *err, size_t errlen)
{
    chosen_key own = {JWT_SRC_OWN, KEY_HMAC, v->own_key, v->own_len, NULL};
    if (t->kid) {
        chosen_key k = own;
        const jwks_key *jk = NULL;
        if (strcmp(t->kid, v->own_kid) != 0) {
            jk = v->oidc_iss ? jwks_find(&v->jwks, t->kid) : NULL;
            if (!jk) {
                seterr(err, errlen, "unknown kid \"%.64s\"", t->kid);
                return JWT_EKID;
            }
            k = (chosen_key){JWT_SRC_OIDC, jk->kind, NULL, 0, jk->pkey};
        }
        if (strcmp(t->alg, kind_alg(k.kind)) != 0) {
            seterr(err, errlen, "alg %s with a %s key", t->alg, kind_alg(k.kind));
            return JWT_EALG;
        }
        if (!signature_ok(&k, t)) {
            seterr(err, errlen, "bad %s signature", t->alg);
            return JWT_ESIGNATURE;
        }
        *source = k.source;
        return JWT_OK;
    }
    if (strcmp(t->alg, "HS256") != 0) {
        seterr(err, errlen, "%s token without kid", t->alg);
        return JWT_EKID;
    }
    if (signature_ok(&own, t)) {
        *source = JWT_SRC_OWN;
        return JWT_OK;
    }
    chosen_key legacy = {JWT_SRC_LEGACY, KEY_HMAC, v->legacy, v->legacy_len, NULL};
    if (v->legacy && signature_ok(&legacy, t)) {
        *source = JWT_SRC_LEGACY;
        return JWT_OK;
    }
    seterr(err, errlen, "bad HS256 signature");
    return JWT_ESIGNATURE;
}

/* ------------------------------------------------------------ claims */

/* A NumericDate (integer or real seconds). */
static bool numeric_date(json_t *j, int64_t *out)
{
    if (json_is_integer(j)) {
        *out = (int64_t)json_integer_value(j);
        return true;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!(d > -9.0e18 && d < 9.0e18))
            return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

static int check_times(const jws *t, int64_t now, jwt_claims *out, char *err, size_t errlen)
{
    json_t *exp = json_object_get(t->payload, "exp");
    if (!exp || !numeric_date(exp, &out->exp)) {
        seterr(err, errlen, "%s exp", exp ? "bad" : "no");
        return JWT_ECLAIM;
    }
    if (now - JWT_LEEWAY_S >= out->exp) {
        seterr(err, errlen, "expired at %lld", (long long)out->exp);
        return JWT_EEXPIRED;
    }
    json_t *nbf = json_object_get(t->payload, "nbf");
    int64_t nbf_s = 0;
    if (nbf && !numeric_date(nbf, &nbf_s)) {
        seterr(err, errlen, "bad nbf");
        return JWT_ECLAIM;
    }
    if (nbf && now + JWT_LEEWAY_S < nbf_s) {
        seterr(err, errlen, "not valid before %lld", (long long)nbf_s);
        return JWT_ENOTYET;
    }
    json_t *iat = json_object_get(t->payload, "iat");
    if (iat && !numeric_date(iat, &out->iat)) {
        seterr(err, errlen, "bad iat");
        return JWT_ECLAIM;
    }
    out->has_iat = iat != NULL;
    return JWT_OK;
}

/* True when aud (a string or an array of strings) names want. */
static bool aud_has(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a) {
        if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
            return true;
    }
    return false;
}

/* True when the claim is as wanted: absent when want is NULL, else a
 * string equal to want. */
static bool iss_ok(json_t *iss, const char *want)
{
    if (!want)
        return iss == NULL;
    return json_is_string(iss) && strcmp(json_string_value(iss), want) == 0;
}

/* The same for aud, which may also be an array. */
static bool aud_ok(json_t *aud, const char *want)
{
    return want ? aud_has(aud, want) : aud == NULL;
}

/* iss and aud as the source requires (legacy: neither). */
static int check_iss_aud(const jws *t, const char *iss, const char *aud, char *err,
                         size_t errlen)
{
    json_t *ti = json_object_get(t->payload, "iss"), *ta = json_object_get(t->payload, "aud");
    if (!iss_ok(ti, iss)) {
        seterr(err, errlen, "issuer %s", ti ? "not accepted" : "missing");
        return JWT_EISSUER;
    }
    if (!aud_ok(ta, aud)) {
        seterr(err, errlen, "audience %s", ta ? "not accepted" : "missing");
        return JWT_EAUDIENCE;
    }
    return JWT_OK;
}

/* A string of 1 to 18 digits, not starting with 0. */
static bool digits_id(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0')
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

/* customer_id: a positive integer (legacy: also a string of digits);
 * required for own and legacy tokens. */
static int read_customer_id(const jws *t, jwt_source src, jwt_claims *out, char *err,
                            size_t errlen)
{
    json_t *c = json_object_get(t->payload, "customer_id");
    bool ok = false;
    if (json_is_integer(c) && json_integer_value(c) > 0) {
        out->customer_id = (int64_t)json_integer_value(c);
        ok = true;
    } else if (json_is_string(c) && src == JWT_SRC_LEGACY)
        ok = digits_id(json_string_value(c), &out->customer_id);
    if (!c && src == JWT_SRC_OIDC)
        return JWT_OK;
    if (!ok) {
        seterr(err, errlen, "%s customer_id", c ? "bad" : "no");
        return JWT_ECLAIM;
    }
    out->has_customer_id = true;
    return JWT_OK;
}

/* Copies an optional string claim; JWT_ECLAIM when it is not a string. */
static int read_string(json_t *obj, const char *name, char **out, char *err, size_t errlen)
{
    json_t *s = json_object_get(obj, name);
    if (!s)
        return JWT_OK;
    if (!json_is_string(s)) {
        seterr(err, errlen, "%s is not a string", name);
        return JWT_ECLAIM;
    }
    *out = strdup(json_string_value(s));
    return *out ? JWT_OK : JWT_ENOMEM;
}

/* Copies an optional array of strings. */
static int read_roles(json_t *roles, jwt_claims *out, char *err, size_t errlen)
{
    if (!roles)
        return JWT_OK;
    if (!json_is_array(roles)) {
        seterr(err, errlen, "roles is not an array");
        return JWT_ECLAIM;
    }
    out->roles = calloc(json_array_size(roles) + 1, sizeof *out->roles);
    if (!out->roles)
        return JWT_ENOMEM;
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r) {
        if (!json_is_string(r)) {
            seterr(err, errlen, "a role is not a string");
            return JWT_ECLAIM;
        }
        if (!(out->roles[out->n_roles] = strdup(json_string_value(r))))
            return JWT_ENOMEM;
        out->n_roles++;
    }
    return JWT_OK;
}

static json_t *roles_of(const jws *t, jwt_source src)
{
    if (src != JWT_SRC_OIDC)
        return json_object_get(t->payload, "roles");
    json_t *ra = json_object_get(t->payload, "realm_access");
    return json_is_object(ra) ? json_object_get(ra, "roles") : NULL;
}

static int read_claims(const jwt_verifier *v, const jws *t, jwt_source src, int64_t now,
                       jwt_claims *out, char *err, size_t errlen)
{
    int rc = check_times(t, now, out, err, errlen);
    if (rc == JWT_OK) {
        if (src == JWT_SRC_OWN)
            rc = check_iss_aud(t, v->iss, v->aud, err, errlen);
        else if (src == JWT_SRC_OIDC)
            rc = check_iss_aud(t, v->oidc_iss, v->oidc_aud, err, errlen);
        else
            rc = check_iss_aud(t, NULL, NULL, err, errlen);
    }
    if (rc == JWT_OK)
        rc = read_customer_id(t, src, out, err, errlen);
    if (rc == JWT_OK)
        rc = read_string(t->payload, "email", &out->email, err, errlen);
    if (rc == JWT_OK)
        rc = read_string(t->payload, "sub", &out->sub, err, errlen);
    if (rc == JWT_OK)
        rc = read_string(t->header, "kid", &out->kid, err, errlen);
    if (rc == JWT_OK)
        rc = read_roles(roles_of(t, src), out, err, errlen);
    return rc;
}

/* ------------------------------------------------------------ verify */

int jwt_verify(jwt_verifier *v, const char *token, size_t len, int64_t now_s, jwt_claims *out,
               char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    seterr(err, errlen, "%s", "");
    jws *t = calloc(1, sizeof *t);
    if (!t)
        return JWT_ENOMEM;
    int rc = jws_parse(token, len, t, err, errlen);
    jwt_source src = JWT_SRC_NONE;
    if (rc == JWT_OK) {
        pthread_rwlock_rdlock(&v->lock);
        rc = check_signature(v, t, &src, err, errlen);
        if (rc == JWT_OK)
            rc = read_claims(v, t, src, now_s, out, err, errlen);
        pthread_rwlock_unlock(&v->lock);
    }
    json_decref(t->header);
    json_decref(t->payload);
    free(t);
    if (rc != JWT_OK)
        jwt_claims_free(out);
    else
        out->source = src;
    return rc;
}
