/* passwd.c - scrypt and bcrypt password hashes (see passwd.h). */
#include "passwd.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "b64.h"

const pw_params pw_current = {.ln = 13, .r = 8, .p = 10};

enum {
    SALT_LEN = 16,            /* bytes of salt pw_hash makes */
    HASH_LEN = 32,            /* bytes of hash pw_hash makes */
    MAX_SALT = 64,            /* the most a stored scrypt hash may carry */
    MIN_HASH = 32,            /* so a cut-off stored hash is refused */
    MAX_HASH = 64,
    BCRYPT_LEN = 60,          /* $2b$10$ + 22 salt + 31 hash characters */
    BCRYPT_MAX_COST = 16,     /* 2^16 rounds already take seconds */
};

/* Limits on scrypt's cost, for hashes read back from storage too. */
#define MAX_LN 20
#define MAX_R 32
#define MAX_P 16
#define MAX_MEM (64ull << 20) /* bytes scrypt may use */
#define MAX_WORK (1ull << 20) /* N * r * p */

static const char SCRYPT_PREFIX[] = "$scrypt$";

/* ------------------------------------------------------------ scrypt */

/* Bytes OpenSSL's scrypt allocates for these parameters (its own formula). */
static uint64_t scrypt_mem(const pw_params *prm)
{
    uint64_t n = 1ull << prm->ln;
    return 128ull * prm->r * (n + 2) + 128ull * prm->r * prm->p;
}

static bool params_ok(const pw_params *prm)
{
    if (prm->ln < 1 || prm->ln > MAX_LN || prm->r < 1 || prm->r > MAX_R || prm->p < 1 ||
        prm->p > MAX_P)
        return false;
    return scrypt_mem(prm) <= MAX_MEM && (1ull << prm->ln) * prm->r * prm->p <= MAX_WORK;
}

int pw_scrypt(const pw_params *prm, const uint8_t *pass, size_t passlen, const uint8_t *salt,
              size_t saltlen, uint8_t *out, size_t outlen)
{
    if (!params_ok(prm))
        return PW_EPARAMS;
    static const uint8_t empty[1];
    uint64_t n = 1ull << prm->ln, maxmem = scrypt_mem(prm);
    uint32_t r = prm->r, p = prm->p;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                          (void *)(pass ? pass : empty), passlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                          (void *)(salt ? salt : empty), saltlen),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = ctx && EVP_KDF_derive(ctx, out, outlen, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : PW_ECRYPTO;
}

/* A stored scrypt hash, parsed. */
typedef struct phc {
    pw_params prm;
    uint8_t salt[MAX_SALT];
    size_t saltlen;
    uint8_t hash[MAX_HASH];
    size_t hashlen;
} phc;

/* Reads "<name>=<decimal>" at *s (1 to 3 digits, no leading zero). */
static bool parse_param(const char **s, const char *name, unsigned *val)
{
    size_t nl = strlen(name);
    if (strncmp(*s, name, nl) != 0 || (*s)[nl] != '=')
        return false;
    const char *d = *s + nl + 1;
    unsigned v = 0;
    size_t i = 0;
    for (; d[i] >= '0' && d[i] <= '9'; i++) {
        if (i == 3)
            return false;
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    if (i == 0 || (i > 1 && d[0] == '0'))
        return false;
    *val = v;
    *s = d + i;
    return true;
}

/* Decodes the base64 field from s up to stop (a '$' or the end). */
static bool parse_b64(const char *s, const char *stop, uint8_t *out, size_t cap, size_t *len)
{
    return b64_decode(B64_STD, s, (size_t)(stop - s), out, cap, len) == 0;
}

/* Parses $scrypt$ln=..,r=..,p=..$salt$hash; false when malformed. */
static bool parse_scrypt(const char *s, phc *out)
{
    if (strncmp(s, SCRYPT_PREFIX, sizeof SCRYPT_PREFIX - 1) != 0)
        return false;
    s += sizeof SCRYPT_PREFIX - 1;
    if (!parse_param(&s, "ln", &out->prm.ln) || *s++ != ',' ||
        !parse_param(&s, "r", &out->prm.r) || *s++ != ',' ||
        !parse_param(&s, "p", &out->prm.p) || *s++ != '$')
        return false;
    const char *dollar = strchr(s, '$');
    if (!dollar || !parse_b64(s, dollar, out->salt, sizeof out->salt, &out->saltlen))
        return false;
    s = dollar + 1;
    if (!parse_b64(s, s + strlen(s), out->hash, sizeof out->hash, &out->hashlen))
        return false;
    return out->saltlen >= 1 && out->hashlen >= MIN_HASH;
}

static pw_result verify_scrypt(const char *password, size_t len, const char *stored)
{
    phc h;
    if (!parse_scrypt(stored, &h) || !params_ok(&h.prm))
        return PW_UNSUPPORTED;
    uint8_t got[MAX_HASH];
    if (pw_scrypt(&h.prm, (const uint8_t *)password, len, h.salt, h.saltlen, got, h.hashlen))
        return PW_UNSUPPORTED;
    pw_result r = CRYPTO_memcmp(got, h.hash, h.hashlen) == 0 ? PW_OK : PW_MISMATCH;
    OPENSSL_cleanse(got, sizeof got);
    return r;
}

/* Writes the PHC string of a hash into out. */
static int format_phc(const pw_params *prm, const uint8_t *salt, size_t saltlen,
                      const uint8_t *hash, size_t hashlen, char *out, size_t cap)
{
    char salt64[MAX_SALT * 2], hash64[MAX_HASH * 2];
    if (b64_encode(B64_STD, salt, saltlen, salt64, sizeof salt64) != 0 ||
        b64_encode(B64_STD, hash, hashlen, hash64, sizeof hash64) != 0)
        return PW_ESPACE;
    int n = snprintf(out, cap, "%sln=%u,r=%u,p=%u$%s$%s", SCRYPT_PREFIX, prm->ln, prm->r,
                     prm->p, salt64, hash64);
    OPENSSL_cleanse(hash64, sizeof hash64);
    return n < 0 || (size_t)n >= cap ? PW_ESPACE : 0;
}

int pw_hash_with(const pw_params *prm, const char *password, size_t len, char *out,
                 size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    if (len > PW_MAX_PASSWORD || (!password && len))
        return PW_ELONG;
    if (!params_ok(prm))
        return PW_EPARAMS;
    uint8_t salt[SALT_LEN], hash[HASH_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return PW_ECRYPTO;
    int rc = pw_scrypt(prm, (const uint8_t *)password, len, salt, sizeof salt, hash,
                       sizeof hash);
    if (rc == 0)
        rc = format_phc(prm, salt, sizeof salt, hash, sizeof hash, out, cap);
    OPENSSL_cleanse(hash, sizeof hash);
    if (rc != 0 && cap > 0)
        out[0] = '\0';
    return rc;
}

int pw_hash(const char *password, size_t len, char *out, size_t cap)
{
    return pw_hash_with(&pw_current, password, len, out, cap);
}

/* ------------------------------------------------------------ bcrypt */

static bool is_bcrypt_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/';
}

/* True for $2a$, $2b$ and $2y$ (the only ones), the prefix alone. */
static bool is_bcrypt_prefix(const char *s)
{
    return s[0] == '$' && s[1] == '2' && (s[2] == 'a' || s[2] == 'b' || s[2] == 'y') &&
           s[3] == '$';
}

/* $2x$NN$ and 53 characters of bcrypt's alphabet, cost 4..BCRYPT_MAX_COST. */
static bool bcrypt_shape_ok(const char *s)
{
    if (strlen(s) != BCRYPT_LEN || !is_bcrypt_prefix(s))
        return false;
    if (s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$')
        return false;
    int cost = (s[4] - '0') * 10 + (s[5] - '0');
    if (cost < 4 || cost > BCRYPT_MAX_COST)
        return false;
    for (size_t i = 7; i < BCRYPT_LEN; i++)
        if (!is_bcrypt_char(s[i]))
            return false;
    return true;
}

static pw_result verify_bcrypt(const char *password, size_t len, const char *stored)
{
    if (!bcrypt_shape_ok(stored))
        return PW_UNSUPPORTED;
    /* crypt_r reads a C string: a NUL inside cannot be what was hashed. */
    if (len && memchr(password, '\0', len))
        return PW_MISMATCH;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    char *phrase = malloc(len + 1);
    pw_result r = PW_UNSUPPORTED;
    if (cd && phrase) {
        if (len)
            memcpy(phrase, password, len);
        phrase[len] = '\0';
        const char *got = crypt_r(phrase, stored, cd);
        if (got && got[0] != '*' && strlen(got) == BCRYPT_LEN)
            r = CRYPTO_memcmp(got, stored, BCRYPT_LEN) == 0 ? PW_OK : PW_MISMATCH;
    }
    if (phrase)
        OPENSSL_clear_free(phrase, len + 1);
    if (cd)
        OPENSSL_clear_free(cd, sizeof *cd);
    return r;
}

/* ------------------------------------------------------------ public */

pw_result pw_verify(const char *password, size_t len, const char *stored)
{
    if (!stored || !stored[0] || len > PW_MAX_PASSWORD || (!password && len))
        return PW_MISMATCH;
    if (!password)
        password = "";
    if (strncmp(stored, SCRYPT_PREFIX, sizeof SCRYPT_PREFIX - 1) == 0)
        return verify_scrypt(password, len, stored);
    if (is_bcrypt_prefix(stored))
        return verify_bcrypt(password, len, stored);
    return PW_UNSUPPORTED;
}

bool pw_needs_rehash_with(const pw_params *current, const char *stored)
{
    phc h;
    if (!stored || !parse_scrypt(stored, &h))
        return true;
    return h.prm.ln != current->ln || h.prm.r != current->r || h.prm.p != current->p ||
           h.saltlen != SALT_LEN || h.hashlen != HASH_LEN;
}

bool pw_needs_rehash(const char *stored) { return pw_needs_rehash_with(&pw_current, stored); }
