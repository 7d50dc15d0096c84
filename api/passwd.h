/* passwd.h - password hashes: making scrypt hashes, verifying scrypt and the
 * old backend's bcrypt hashes, and telling when a hash should be redone.
 *
 * Owns nothing beyond a call: hashes are PHC strings in caller buffers,
 *   $scrypt$ln=13,r=8,p=10$<salt>$<hash>
 * (salt 16 random bytes, hash 32 bytes, both standard base64 without
 * padding), at most PW_HASH_MAX - 1 characters. scrypt runs through
 * OpenSSL's EVP_KDF; bcrypt ($2a$, $2b$, $2y$) through libxcrypt's crypt_r.
 * Comparisons are constant-time. Passwords are bytes; longer than
 * PW_MAX_PASSWORD they are refused.
 */
#ifndef WS_PASSWD_H
#define WS_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PW_MAX_PASSWORD 1024
#define PW_HASH_MAX 256 /* a buffer for any hash pw_hash makes, NUL included */

/* scrypt's cost: N = 2^ln, block size r, parallelism p. */
typedef struct pw_params {
    unsigned ln;
    unsigned r;
    unsigned p;
} pw_params;

/* The current setting (ln=13, r=8, p=10: 8 MiB a hash; OWASP's equivalent
 * of N=2^17, r=8, p=1, which would take 128 MiB): pw_hash uses it and
 * pw_needs_rehash compares with it. Hashes of the earlier setting (ln=15,
 * r=8, p=1: 32 MiB) still verify. */
extern const pw_params pw_current;

typedef enum pw_result {
    PW_OK = 0,
    PW_MISMATCH = 1,    /* wrong password, no stored hash, password too long */
    PW_UNSUPPORTED = 2, /* stored is no hash this module can check (or malformed) */
} pw_result;

/* pw_hash errors. */
enum {
    PW_ELONG = -1,   /* password longer than PW_MAX_PASSWORD (or NULL with a length) */
    PW_ESPACE = -2,  /* out too small */
    PW_ECRYPTO = -3, /* OpenSSL failed (random bytes, scrypt) */
    PW_EPARAMS = -4, /* parameters outside what pw_verify accepts */
};

/* Hashes password[0..len) with pw_current into out (cap bytes, NUL
 * terminated). Returns 0 or a PW_E* code. */
int pw_hash(const char *password, size_t len, char *out, size_t cap);
/* The same with other parameters (tests use cheap ones). */
int pw_hash_with(const pw_params *prm, const char *password, size_t len, char *out,
                 size_t cap);

/* Checks password[0..len) against a stored hash (NUL-terminated; NULL or ""
 * is a mismatch). Stored scrypt hashes may have other parameters (within
 * limits on memory and work), 1 to 64 bytes of salt and 32 to 64 of hash;
 * bcrypt hashes a cost of 4 to 16. */
pw_result pw_verify(const char *password, size_t len, const char *stored);

/* True when stored is not a scrypt hash made with pw_current (bcrypt, other
 * scrypt parameters, or anything unreadable): after a successful login the
 * caller hashes the password again. */
bool pw_needs_rehash(const char *stored);
/* The same against another current setting. */
bool pw_needs_rehash_with(const pw_params *current, const char *stored);

/* Raw scrypt (RFC 7914) into out[0..outlen); exposed for tests. Returns 0,
 * PW_EPARAMS (beyond the memory and work limits) or PW_ECRYPTO. */
int pw_scrypt(const pw_params *prm, const uint8_t *pass, size_t passlen, const uint8_t *salt,
              size_t saltlen, uint8_t *out, size_t outlen);

#endif
