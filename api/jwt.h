/* jwt.h - JSON Web Tokens: signing the server's own HS256 access tokens and
 * verifying tokens from three sources.
 *
 * Owns the verifier (jwt_verifier): the server's own HMAC key with its
 * issuer and audience, the old backend's legacy HS256 secret (optional),
 * and an OpenID Connect provider's issuer, audience and signing keys parsed
 * from its JWKS (optional; RSA keys for RS256, EC P-256 keys for ES256).
 * Fetching the JWKS is the caller's job; jwt_verifier_set_jwks replaces the
 * set while other threads verify (a read-write lock inside).
 *
 * Which key checks a token:
 *  - header kid equal to the own key id (jwt_key_id): the own key;
 *  - another kid: the JWKS key of that kid (else JWT_EKID);
 *  - no kid: the own key, then the legacy secret (HMAC only).
 * The key's type decides the algorithm; a header alg other than that key's
 * is JWT_EALG (so neither HS/RS confusion nor "none" can pass).
 *
 * Claims, after the signature: exp is required (JWT_LEEWAY_S of leeway), nbf
 * honoured, iat optional. Own tokens need iss and aud equal to the own ones
 * (aud a string or an array holding it) and an integer customer_id; legacy
 * tokens must have neither iss nor aud and carry customer_id as an integer
 * or a string of digits; OIDC tokens need the provider's issuer and audience,
 * and their roles come from realm_access.roles.
 */
#ifndef WS_JWT_H
#define WS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define JWT_MAX_TOKEN 8192 /* bytes; longer tokens are malformed */
#define JWT_LEEWAY_S 30    /* clock skew allowed on exp and nbf */
#define JWT_KID_LEN 16     /* characters of jwt_key_id */
#define JWT_MIN_KEY 32     /* bytes of the own HMAC key at least */

enum {
    JWT_OK = 0,
    JWT_EMALFORMED = -1, /* not three strict base64url parts of JSON objects, too long */
    JWT_ESIGNATURE = -2, /* the signature does not verify */
    JWT_EEXPIRED = -3,
    JWT_ENOTYET = -4, /* nbf in the future */
    JWT_EISSUER = -5,
    JWT_EAUDIENCE = -6,
    JWT_EKID = -7,   /* a kid no configured key has */
    JWT_EALG = -8,   /* none, unknown, or not the key's algorithm */
    JWT_ECLAIM = -9, /* a required claim missing, or a claim of the wrong type */
    JWT_ENOMEM = -10,
    JWT_EKEY = -11, /* signing: a key shorter than JWT_MIN_KEY */
};

typedef enum jwt_source {
    JWT_SRC_NONE = 0,
    JWT_SRC_OWN,
    JWT_SRC_LEGACY,
    JWT_SRC_OIDC,
} jwt_source;

/* What a verified token says. Strings and the roles array are owned by the
 * struct: release with jwt_claims_free. */
typedef struct jwt_claims {
    jwt_source source;
    bool has_customer_id;
    int64_t customer_id;
    char *email; /* NULL when absent (also sub, kid) */
    char *sub;
    char *kid;
    char **roles; /* n_roles strings */
    size_t n_roles;
    int64_t exp;
    bool has_iat;
    int64_t iat;
} jwt_claims;

void jwt_claims_free(jwt_claims *c);

/* The key id of an HMAC key: the first 12 bytes of SHA-256("ws-jwt-kid" ||
 * key) in base64url, written into kid (at least JWT_KID_LEN + 1 bytes).
 * Returns 0 or -1. */
int jwt_key_id(const uint8_t *key, size_t keylen, char *kid, size_t cap);

/* Signs claims (a JSON object, borrowed) with HS256 under key (at least
 * JWT_MIN_KEY bytes); the header carries jwt_key_id(key). *out gets a new
 * string (the caller frees it). Returns 0, JWT_EKEY, JWT_ECLAIM (claims not
 * an object) or JWT_ENOMEM. */
int jwt_sign_hs256(const uint8_t *key, size_t keylen, json_t *claims, char **out);

typedef struct jwt_verifier jwt_verifier;

/* A verifier of the own tokens: key (at least JWT_MIN_KEY bytes, copied),
 * issuer and audience (copied). NULL when an argument is unfit or memory
 * runs out. */
jwt_verifier *jwt_verifier_new(const uint8_t *key, size_t keylen, const char *iss,
                               const char *aud);
void jwt_verifier_free(jwt_verifier *v);
/* Accept the old backend's tokens signed with secret (copied; keylen >= 1).
 * Returns 0 or -1. */
int jwt_verifier_set_legacy(jwt_verifier *v, const uint8_t *secret, size_t len);
/* Accept an OpenID Connect provider's tokens with this issuer and audience
 * (copied). Its keys come from jwt_verifier_set_jwks. Returns 0 or -1. */
int jwt_verifier_set_oidc(jwt_verifier *v, const char *issuer, const char *audience);
/* Replaces the provider's keys with those of a JWKS document (JSON text of
 * len bytes). Keys with a kid, kty RSA (n, e; 2048 to 8192 bits) or kty EC
 * (crv P-256, x, y), no "use" other than "sig" and no "alg" other than their
 * own are kept; others are skipped. Returns 0, or -1 with a reason in err
 * (the old set stays) when the text is not a JWKS or has no usable key. */
int jwt_verifier_set_jwks(jwt_verifier *v, const char *jwks_json, size_t len, char *err,
                          size_t errlen);
/* How many provider keys the verifier holds. */
size_t jwt_verifier_key_count(jwt_verifier *v);

/* Verifies token[0..len) at time now_s (Unix seconds). On JWT_OK *out holds
 * the claims (release with jwt_claims_free); on an error *out is empty and
 * err (may be NULL) says why, for logs. */
int jwt_verify(jwt_verifier *v, const char *token, size_t len, int64_t now_s, jwt_claims *out,
               char *err, size_t errlen);

/* A short name of a JWT_* code ("expired"). */
const char *jwt_strerror(int code);

#endif
