/* test_passwd.c - api/passwd.c: scrypt hashes made and verified, the RFC 7914
 * vectors, the old backend's bcrypt hashes ($2a$, $2b$, $2y$), malformed
 * stored values, the password length limit and the re-hash rule.
 *
 * Most tests use a cheap scrypt setting; a few use the real one (and the one
 * before it). bcrypt hashes
 * are made here with crypt_r itself from known salts, plus one fixed
 * known-good hash.
 */
#include <criterion/criterion.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/b64.h"
#include "api/passwd.h"

static const pw_params CHEAP = {.ln = 4, .r = 8, .p = 1};

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
}

/* A bcrypt hash of password made by libxcrypt from a fixed setting. */
static void bcrypt_make(const char *password, const char *setting, char *out, size_t cap)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    cr_assert(cd);
    const char *h = crypt_r(password, setting, cd);
    cr_assert(h && h[0] == '$' && strlen(h) == 60, "crypt_r(%s) gave %s", setting,
              h ? h : "NULL");
    cr_assert(strlen(h) < cap);
    strcpy(out, h);
    free(cd);
}

static pw_result verify_str(const char *password, const char *stored)
{
    return pw_verify(password, strlen(password), stored);
}

/* ------------------------------------------------------------ scrypt */

Test(passwd, round_trip_cheap)
{
    char h[PW_HASH_MAX];
    cr_assert_eq(pw_hash_with(&CHEAP, "correct horse", 13, h, sizeof h), 0);
    cr_assert(strncmp(h, "$scrypt$ln=4,r=8,p=1$", 21) == 0, "%s", h);
    cr_assert_eq(verify_str("correct horse", h), PW_OK);
    cr_assert_eq(verify_str("correct horsE", h), PW_MISMATCH);
    cr_assert_eq(verify_str("correct hors", h), PW_MISMATCH);
    cr_assert_eq(verify_str("", h), PW_MISMATCH);
}

/* OWASP's scrypt setting with 8 MiB of memory (N=2^13, r=8, p=10), the
 * equivalent of N=2^17, r=8, p=1 at a sixteenth of the memory. */
Test(passwd, current_setting_is_owasps_8_mib_one)
{
    cr_assert_eq(pw_current.ln, 13);
    cr_assert_eq(pw_current.r, 8);
    cr_assert_eq(pw_current.p, 10);
    /* scrypt's memory is 128 * r * N bytes (plus 128 * r * p): 8 MiB. */
    uint64_t mem = 128ull * pw_current.r * (1ull << pw_current.ln);
    cr_assert_eq(mem, 8ull << 20);
}

Test(passwd, round_trip_current_setting)
{
    char h[PW_HASH_MAX];
    cr_assert_eq(pw_hash("s3cret-passw0rd", 15, h, sizeof h), 0);
    /* $scrypt$ln=13,r=8,p=10$ + 22 salt characters + $ + 43 hash characters */
    cr_assert(strncmp(h, "$scrypt$ln=13,r=8,p=10$", 23) == 0, "%s", h);
    cr_assert_eq(strlen(h), 23 + 22 + 1 + 43, "%s", h);
    cr_assert_null(strchr(h + 23, '='), "padding in %s", h);
    cr_assert_eq(verify_str("s3cret-passw0rd", h), PW_OK);
    cr_assert_eq(verify_str("s3cret-passw0rD", h), PW_MISMATCH);
    cr_assert_not(pw_needs_rehash(h));
}

/* Hashes of the setting before (ln=15, r=8, p=1) still verify, and are
 * re-hashed after a login. */
Test(passwd, the_previous_setting_still_verifies_and_needs_a_rehash)
{
    static const pw_params before = {.ln = 15, .r = 8, .p = 1};
    char h[PW_HASH_MAX];
    cr_assert_eq(pw_hash_with(&before, "s3cret-passw0rd", 15, h, sizeof h), 0);
    cr_assert(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22) == 0, "%s", h);
    cr_assert_eq(verify_str("s3cret-passw0rd", h), PW_OK);
    cr_assert_eq(verify_str("s3cret-passw0rD", h), PW_MISMATCH);
    cr_assert(pw_needs_rehash(h));
}

Test(passwd, salts_differ)
{
    char a[PW_HASH_MAX], b[PW_HASH_MAX];
    cr_assert_eq(pw_hash_with(&CHEAP, "same", 4, a, sizeof a), 0);
    cr_assert_eq(pw_hash_with(&CHEAP, "same", 4, b, sizeof b), 0);
    cr_assert_str_neq(a, b);
    cr_assert_eq(verify_str("same", a), PW_OK);
    cr_assert_eq(verify_str("same", b), PW_OK);
}

Test(passwd, binary_password_with_nul)
{
    char h[PW_HASH_MAX];
    const char pw[] = {'a', '\0', 'b'};
    cr_assert_eq(pw_hash_with(&CHEAP, pw, sizeof pw, h, sizeof h), 0);
    cr_assert_eq(pw_verify(pw, sizeof pw, h), PW_OK);
    cr_assert_eq(pw_verify(pw, 1, h), PW_MISMATCH);
}

Test(passwd, buffer_too_small)
{
    char h[40];
    cr_assert_eq(pw_hash_with(&CHEAP, "pw", 2, h, sizeof h), PW_ESPACE);
    cr_assert_str_empty(h);
}

Test(passwd, bad_parameters_refused)
{
    char h[PW_HASH_MAX];
    pw_params zero = {0, 8, 1}, huge = {22, 8, 1}, wide = {15, 64, 1};
    cr_assert_eq(pw_hash_with(&zero, "pw", 2, h, sizeof h), PW_EPARAMS);
    cr_assert_eq(pw_hash_with(&huge, "pw", 2, h, sizeof h), PW_EPARAMS);
    cr_assert_eq(pw_hash_with(&wide, "pw", 2, h, sizeof h), PW_EPARAMS);
}

Test(passwd, length_limit)
{
    char *pw = malloc(PW_MAX_PASSWORD + 1);
    cr_assert(pw);
    memset(pw, 'x', PW_MAX_PASSWORD + 1);
    char h[PW_HASH_MAX];
    cr_assert_eq(pw_hash_with(&CHEAP, pw, PW_MAX_PASSWORD + 1, h, sizeof h), PW_ELONG);
    cr_assert_eq(pw_hash_with(&CHEAP, pw, PW_MAX_PASSWORD, h, sizeof h), 0);
    cr_assert_eq(pw_verify(pw, PW_MAX_PASSWORD, h), PW_OK);
    cr_assert_eq(pw_verify(pw, PW_MAX_PASSWORD + 1, h), PW_MISMATCH);
    free(pw);
}

/* RFC 7914 section 12, the first three vectors (the fourth needs 1 GiB). */
Test(passwd, rfc7914_vectors_raw)
{
    static const struct {
        const char *pass, *salt;
        pw_params prm;
        const char *hex;
    } v[] = {
        {"", "", {4, 1, 1},
         "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
         "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
        {"password", "NaCl", {10, 8, 16},
         "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
         "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
        {"pleaseletmein", "SodiumChloride", {14, 8, 1},
         "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
         "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t want[64], got[64];
        hex_to_bytes(v[i].hex, want, sizeof want);
        cr_assert_eq(pw_scrypt(&v[i].prm, (const uint8_t *)v[i].pass, strlen(v[i].pass),
                               (const uint8_t *)v[i].salt, strlen(v[i].salt), got, sizeof got),
                     0, "vector %zu", i);
        cr_assert_arr_eq(got, want, sizeof want, "vector %zu", i);
    }
}

/* The RFC's second vector as a stored PHC string: verify reads foreign
 * parameters, salt and hash length. */
Test(passwd, rfc7914_vector_as_phc)
{
    uint8_t dk[64];
    hex_to_bytes("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
                 "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
                 dk, sizeof dk);
    char salt64[16], dk64[100], phc[200];
    cr_assert_eq(b64_encode(B64_STD, (const uint8_t *)"NaCl", 4, salt64, sizeof salt64), 0);
    cr_assert_eq(b64_encode(B64_STD, dk, sizeof dk, dk64, sizeof dk64), 0);
    snprintf(phc, sizeof phc, "$scrypt$ln=10,r=8,p=16$%s$%s", salt64, dk64);
    cr_assert_str_eq(salt64, "TmFDbA");
    cr_assert_eq(verify_str("password", phc), PW_OK);
    cr_assert_eq(verify_str("Password", phc), PW_MISMATCH);
    cr_assert(pw_needs_rehash(phc));
}

/* ------------------------------------------------------------ bcrypt */

/* The Openwall crypt_blowfish test vector, with the $2b$ prefix (the same
 * hash as $2a$ for passwords this short). */
Test(passwd, bcrypt_known_good)
{
    const char *h = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    cr_assert_eq(verify_str("U*U", h), PW_OK);
    cr_assert_eq(verify_str("U*V", h), PW_MISMATCH);
    cr_assert_eq(verify_str("", h), PW_MISMATCH);
    cr_assert(pw_needs_rehash(h));
}

Test(passwd, bcrypt_made_with_crypt_r)
{
    static const char *settings[] = {
        "$2b$04$abcdefghijklmnopqrstuu",
        "$2a$04$abcdefghijklmnopqrstuu",
        "$2y$04$abcdefghijklmnopqrstuu",
        "$2b$10$0123456789ABCDEFGHIJKO",
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        char h[128];
        bcrypt_make("hunter2!", settings[i], h, sizeof h);
        cr_assert(strncmp(h, settings[i], 7) == 0);
        cr_assert_eq(verify_str("hunter2!", h), PW_OK, "%s", h);
        cr_assert_eq(verify_str("hunter2?", h), PW_MISMATCH, "%s", h);
        cr_assert_eq(verify_str("hunter2", h), PW_MISMATCH, "%s", h);
        cr_assert(pw_needs_rehash(h));
    }
}

Test(passwd, bcrypt_prefixes_share_the_hash)
{
    char a[128], b[128], y[128];
    bcrypt_make("pw", "$2a$04$abcdefghijklmnopqrstuu", a, sizeof a);
    bcrypt_make("pw", "$2b$04$abcdefghijklmnopqrstuu", b, sizeof b);
    bcrypt_make("pw", "$2y$04$abcdefghijklmnopqrstuu", y, sizeof y);
    cr_assert_str_eq(a + 4, b + 4);
    cr_assert_str_eq(b + 4, y + 4);
}

Test(passwd, bcrypt_password_with_nul_is_mismatch)
{
    char h[128];
    bcrypt_make("ab", "$2b$04$abcdefghijklmnopqrstuu", h, sizeof h);
    cr_assert_eq(pw_verify("ab\0c", 4, h), PW_MISMATCH);
    cr_assert_eq(pw_verify("ab\0c", 2, h), PW_OK);
}

Test(passwd, bcrypt_malformed_or_unsupported)
{
    char h[128];
    bcrypt_make("pw", "$2b$04$abcdefghijklmnopqrstuu", h, sizeof h);
    char bad[128];
    strcpy(bad, h);
    bad[59] = '\0'; /* one character short */
    cr_assert_eq(verify_str("pw", bad), PW_UNSUPPORTED);
    strcpy(bad, h);
    bad[20] = '!'; /* outside the alphabet */
    cr_assert_eq(verify_str("pw", bad), PW_UNSUPPORTED);
    strcpy(bad, h);
    bad[4] = '0', bad[5] = '3'; /* cost 3 */
    cr_assert_eq(verify_str("pw", bad), PW_UNSUPPORTED);
    strcpy(bad, h);
    bad[4] = '3', bad[5] = '1'; /* cost 31 would take days */
    cr_assert_eq(verify_str("pw", bad), PW_UNSUPPORTED);
    strcpy(bad, h);
    bad[2] = 'x'; /* $2x$ is not accepted */
    cr_assert_eq(verify_str("pw", bad), PW_UNSUPPORTED);
    cr_assert_eq(verify_str("pw", "$2b$"), PW_UNSUPPORTED);
    cr_assert_eq(verify_str("pw", "$2b$04$"), PW_UNSUPPORTED);
}

/* ------------------------------------------------------------ stored values */

Test(passwd, empty_or_null_stored_is_mismatch)
{
    cr_assert_eq(pw_verify("pw", 2, NULL), PW_MISMATCH);
    cr_assert_eq(pw_verify("pw", 2, ""), PW_MISMATCH);
    cr_assert_eq(pw_verify(NULL, 0, ""), PW_MISMATCH);
}

Test(passwd, other_schemes_unsupported)
{
    cr_assert_eq(verify_str("pw", "plaintext"), PW_UNSUPPORTED);
    cr_assert_eq(verify_str("pw", "$1$abc$def"), PW_UNSUPPORTED);
    cr_assert_eq(verify_str("pw", "$6$salt$hash"), PW_UNSUPPORTED);
    cr_assert_eq(verify_str("pw", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"),
                 PW_UNSUPPORTED);
    cr_assert_eq(verify_str("pw", "$"), PW_UNSUPPORTED);
}

Test(passwd, malformed_scrypt_refused)
{
    char good[PW_HASH_MAX], S[64], H[128], Hpad[130], Hdollar[130], Hspace[130];
    cr_assert_eq(pw_hash_with(&CHEAP, "pw", 2, good, sizeof good), 0);
    const char *salt = good + strlen("$scrypt$ln=4,r=8,p=1$");
    const char *hash = strchr(salt, '$') + 1;
    snprintf(S, sizeof S, "%.*s", (int)(hash - salt - 1), salt);
    snprintf(H, sizeof H, "%s", hash);
    snprintf(Hpad, sizeof Hpad, "%s=", hash);
    snprintf(Hdollar, sizeof Hdollar, "%s$", hash);
    snprintf(Hspace, sizeof Hspace, "%s ", hash);
    const struct {
        const char *prm, *salt, *hash;
    } bad[] = {
        {"ln=4,r=8,p=1", S, H}, /* the good one, rebuilt: must verify */
        {"ln=4,r=8", S, H},
        {"r=8,ln=4,p=1", S, H},
        {"ln=04,r=8,p=1", S, H},
        {"ln=,r=8,p=1", S, H},
        {"ln=4, r=8,p=1", S, H},
        {"ln=4,r=8,p=1,x=1", S, H},
        {"ln=99,r=8,p=1", S, H},  /* too costly */
        {"ln=4,r=999,p=1", S, H},
        {"ln=4,r=8,p=0", S, H},
        {"ln=4,r=8,p=1", "", H},  /* no salt */
        {"ln=4,r=8,p=1", S, ""},  /* no hash */
        {"ln=4,r=8,p=1", S, "aGFzaGhhc2hoYXNoaGFzaA"}, /* 16 bytes: cut off */
        {"ln=4,r=8,p=1", "c2FsdHNhbHQ=", H},          /* padding */
        {"ln=4,r=8,p=1", "c2Fsd-NhbHQ", H},           /* base64url alphabet */
        {"ln=4,r=8,p=1", "c2FsdHNhbHR", H},           /* stray low bits */
        {"ln=4,r=8,p=1", S, Hpad},
        {"ln=4,r=8,p=1", S, Hdollar},
        {"ln=4,r=8,p=1", S, Hspace},
    };
    char s[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(s, sizeof s, "$scrypt$%s$%s$%s", bad[i].prm, bad[i].salt, bad[i].hash);
        cr_assert_eq(verify_str("pw", s), i == 0 ? PW_OK : PW_UNSUPPORTED, "%s", s);
        if (i > 0)
            cr_assert(pw_needs_rehash_with(&CHEAP, s), "%s", s);
    }
    const char *cut[] = {"$scrypt$", "$scrypt$ln=4,r=8,p=1", "$scrypt$ln=4,r=8,p=1$",
                         "$scrypt$ln=4,r=8,p=1$$", "$SCRYPT$ln=4,r=8,p=1$$"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
        cr_assert_eq(verify_str("pw", cut[i]), PW_UNSUPPORTED, "%s", cut[i]);
    /* Well formed but other parameters: a plain mismatch. */
    snprintf(s, sizeof s, "$scrypt$ln=5,r=8,p=1$%s$%s", S, H);
    cr_assert_eq(verify_str("pw", s), PW_MISMATCH, "%s", s);
}

Test(passwd, truncated_prefixes_never_crash)
{
    char good[PW_HASH_MAX];
    cr_assert_eq(pw_hash_with(&CHEAP, "pw", 2, good, sizeof good), 0);
    char s[PW_HASH_MAX];
    for (size_t n = 0; n < strlen(good); n++) {
        memcpy(s, good, n);
        s[n] = '\0';
        cr_assert_neq(verify_str("pw", s), PW_OK, "%s", s);
    }
    char b[128];
    bcrypt_make("pw", "$2b$04$abcdefghijklmnopqrstuu", b, sizeof b);
    for (size_t n = 0; n < strlen(b); n++) {
        memcpy(s, b, n);
        s[n] = '\0';
        cr_assert_neq(verify_str("pw", s), PW_OK, "%s", s);
    }
}

/* ------------------------------------------------------------ re-hash */

Test(passwd, rehash_rule)
{
    char h[PW_HASH_MAX];
    cr_assert_eq(pw_hash_with(&CHEAP, "pw", 2, h, sizeof h), 0);
    cr_assert(pw_needs_rehash(h));
    cr_assert_not(pw_needs_rehash_with(&CHEAP, h));
    pw_params other = {.ln = 4, .r = 8, .p = 2};
    cr_assert(pw_needs_rehash_with(&other, h));
    cr_assert(pw_needs_rehash("$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
    cr_assert(pw_needs_rehash("$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
    cr_assert(pw_needs_rehash(""));
    cr_assert(pw_needs_rehash(NULL));
    cr_assert(pw_needs_rehash("$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                              "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    cr_assert(pw_needs_rehash("$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                              "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    cr_assert(pw_needs_rehash("$scrypt$ln=13,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                              "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    cr_assert_not(pw_needs_rehash("$scrypt$ln=13,r=8,p=10$c2FsdHNhbHRzYWx0c2FsdA$"
                                  "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
}
