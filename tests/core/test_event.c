/* test_event.c - the event codec (core/event.c).
 *
 * Covers: a round trip of every catalogue type (minimal, generated and
 * hand-written payloads), the encoder's refusal of invalid events, a corpus
 * of malformed records (truncated, wrongly typed, oversized, tampered,
 * fuzzed), unknown types and newer versions, and the small helpers (record
 * accessors, UUIDs, ids, enum and type names).
 *
 * The tests keep their own view of the catalogue, generated from
 * schemas/events.def with the same X-macros, so that a type added to the
 * catalogue is round-tripped, truncated, mutated and fuzzed without touching
 * this file. Records with deliberate defects are built by hand with
 * msgpack-c's packer (tbuild) following the layout documented in
 * core/event.h and then sealed with a correct SHA-256 trailer, so that the
 * decoder's parser, and not only its hash check, sees them.
 *
 * Every input handed to ev_decode is first copied into a malloc'd buffer of
 * exactly its length, so that the AddressSanitizer build catches any read
 * outside the record.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"

#define NEL(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------ failure reporting */

/* Loops below make thousands of checks: report the first few failures in
 * full and count the rest (each Test runs in its own process). */
static int n_reported, n_unreported;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            if (n_reported < 30) {                                             \
                n_reported++;                                                  \
                cr_expect(0, __VA_ARGS__);                                     \
            } else {                                                           \
                n_unreported++;                                                \
            }                                                                  \
        }                                                                      \
    } while (0)
#define CHECK_DONE()                                                           \
    cr_expect_eq(n_unreported, 0, "%d further failures not shown",           \
                 n_unreported)

static bool known_rc(int rc)
{
    return rc <= EV_OK && rc >= EV_ETRAILING;
}

/* ------------------------------------------- the catalogue, test-side view */

enum { TK_U64, TK_OU64, TK_I64, TK_BOOL, TK_STR, TK_OSTR, TK_UUID, TK_ENUM,
       TK_LINES };
enum { TS_P, TS_S };

typedef struct tfield {
    const char *name;
    int kind, sec;
    size_t off;
    unsigned arg; /* max length, enum set or max count */
} tfield;

typedef struct ttype {
    const char *wire;
    unsigned version;
    const tfield *f;
    size_t nf;
    int n_pii;
} ttype;

#define TARG_U64(a) (a)
#define TARG_OU64(a) (a)
#define TARG_I64(a) (a)
#define TARG_BOOL(a) (a)
#define TARG_STR(a) (a)
#define TARG_OSTR(a) (a)
#define TARG_UUID(a) (a)
#define TARG_ENUM(a) EV_ENUMSET_##a
#define TARG_LINES(a) (a)
#define T_FIELD(kind, sec, name, arg)                                          \
    {#name, TK_##kind, TS_##sec, offsetof(TSTRUCT, name), TARG_##kind(arg)},
#define T_PII(kind, sec, name, arg) +(TS_##sec == TS_S)

static const tfield tline[] = {
#define TSTRUCT ev_line
    EV_LINE_FIELDS(T_FIELD)
#undef TSTRUCT
};
#define N_TLINE NEL(tline)

static const ttype *tdesc(int t)
{
    switch (t) {
#define T_TYPE(C, n, wire, ver, FIELDS)                                        \
    case EV_T_##C: {                                                           \
        typedef ev_##n TSTRUCT;                                                \
        static const tfield f[] = {FIELDS(T_FIELD)};                           \
        static const ttype d = {wire, ver, f, NEL(f), 0 FIELDS(T_PII)};        \
        return &d;                                                             \
    }
        EV_CATALOGUE(T_TYPE)
#undef T_TYPE
    default: return NULL;
    }
}

#define T_ENUM_NAME(set, C, name) name,
#define T_ENUM_ARR(set, LIST)                                                  \
    static const char *const tenum_##set[] = {LIST(T_ENUM_NAME)};
EV_ENUM_SETS(T_ENUM_ARR)
#undef T_ENUM_ARR
static const struct {
    const char *set;
    const char *const *names;
    int count;
} tenums[EV_ENUMSET_COUNT] = {
#define T_ENUM_SET(set, LIST)                                                  \
    [EV_ENUMSET_##set] = {#set, tenum_##set, (int)NEL(tenum_##set)},
    EV_ENUM_SETS(T_ENUM_SET)
#undef T_ENUM_SET
};

/* ------------------------------------------------------------- hashing */

static void sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int olen = 0;
    cr_assert(EVP_Digest(p, n, out, &olen, EVP_sha256(), NULL) == 1);
    cr_assert_eq(olen, 32u);
}

/* Recomputes the trailer of a record over the bytes before it. */
static void reseal(uint8_t *rec, size_t len)
{
    cr_assert_geq(len, (size_t)EV_HASH_LEN);
    sha256(rec, len - EV_HASH_LEN, rec + len - EV_HASH_LEN);
}

/* A copy of p[0..n) in a heap block of exactly n bytes. */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *r = malloc(n);
    if (!r && n == 0)
        r = malloc(1);
    cr_assert_not_null(r);
    if (n)
        memcpy(r, p, n);
    return r;
}

/* body[0..n) followed by its SHA-256, in an exact-size heap block. */
static uint8_t *seal(const void *body, size_t n, size_t *out_len)
{
    uint8_t *r = malloc(n + EV_HASH_LEN);
    cr_assert_not_null(r);
    if (n)
        memcpy(r, body, n);
    reseal(r, n + EV_HASH_LEN);
    *out_len = n + EV_HASH_LEN;
    return r;
}

/* Decodes a copy of p[0..n) held in an exact-size buffer. */
static int decode_copy(ev_dec *d, const uint8_t *p, size_t n)
{
    uint8_t *c = exact(p, n);
    ev_event ev;
    int rc = ev_decode(d, c, n, 0, &ev);
    free(c);
    return rc;
}

static bool in_buf(ev_str s, const uint8_t *rec, size_t len)
{
    if (!s.p)
        return true;
    const uint8_t *p = (const uint8_t *)s.p;
    return p >= rec && p + s.n <= rec + len;
}

/* ------------------------------------------------------------- samples */

typedef struct sample {
    ev_event ev;
    ev_line lines[EV_MAX_LINES + 2];
    size_t used;
    char arena[96 * 1024];
} sample;

static sample *sample_new(void)
{
    sample *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    return s;
}

/* A string of n distinctive printable bytes kept in the sample. */
static ev_str take_str(sample *s, size_t n, unsigned seed)
{
    cr_assert_leq(s->used + n + 1, sizeof s->arena, "sample arena too small");
    char *p = s->arena + s->used;
    for (size_t k = 0; k < n; k++)
        p[k] = (char)('!' + (seed * 31u + (unsigned)k * 7u + (unsigned)(k >> 6)) % 94u);
    s->used += n + 1;
    return (ev_str){p, (uint32_t)n};
}

static const uint64_t U64V[] = {
    0x0102030405060708ull, 0, 1, 127, 128, 255, 256, 65535, 65536,
    0xffffffffull, 0x100000000ull, UINT64_MAX, 1718000000123456ull,
};
static const int64_t I64V[] = {
    -0x0102030405060708ll, 0, -1, -32, -33, 127, 128, -128, -129, 255, 256,
    32767, -32768, -32769, 65536, INT32_MAX, INT32_MIN,
    (int64_t)INT32_MIN - 1, 0x100000000ll, INT64_MAX, INT64_MIN, 699000,
};

static size_t pick_len(unsigned max, size_t mix)
{
    static const size_t lens[] = {SIZE_MAX, 1, 31, 32, 0, 255, 256, 3, 2};
    size_t n = lens[mix % NEL(lens)];
    return n > max ? max : n;
}

/* Fills fields with values chosen by variant v: v == 0 puts every string
 * at its maximum length and every LINES field at its maximum count; v % 3
 * == 1 makes every optional string nil and every OU64 zero. */
static void fill_fields(sample *s, const tfield *f, size_t nf, void *base,
                        int v, unsigned seed)
{
    for (size_t i = 0; i < nf; i++) {
        uint8_t *p = (uint8_t *)base + f[i].off;
        size_t mix = (size_t)v * 5 + i + seed;
        switch (f[i].kind) {
        case TK_U64: *(uint64_t *)p = U64V[mix % NEL(U64V)]; break;
        case TK_OU64: {
            uint64_t x = U64V[mix % NEL(U64V)];
            *(uint64_t *)p = v % 3 == 1 ? 0 : x ? x : 4242;
            break;
        }
        case TK_I64: *(int64_t *)p = I64V[mix % NEL(I64V)]; break;
        case TK_BOOL: *(bool *)p = mix & 1; break;
        case TK_STR:
            *(ev_str *)p = take_str(s, v == 0 ? f[i].arg : pick_len(f[i].arg, mix),
                                    seed + (unsigned)i);
            break;
        case TK_OSTR:
            if (v % 3 == 1)
                *(ev_str *)p = (ev_str){NULL, 0};
            else
                *(ev_str *)p = take_str(
                    s, v == 0 ? f[i].arg : pick_len(f[i].arg, mix + 4),
                    seed + (unsigned)i);
            break;
        case TK_UUID:
            for (int k = 0; k < 16; k++)
                p[k] = (uint8_t)(0xa0 + mix * 16 + (size_t)k * 37);
            break;
        case TK_ENUM:
            *p = (uint8_t)(mix % (size_t)tenums[f[i].arg].count);
            break;
        case TK_LINES: {
            static const unsigned counts[] = {0, 0, 1, 3, 2, 5, 17, 1};
            unsigned n = v == 0 ? f[i].arg : counts[v % 8];
            if (n > f[i].arg)
                n = f[i].arg;
            for (unsigned j = 0; j < n; j++) {
                memset(&s->lines[j], 0, sizeof s->lines[j]);
                fill_fields(s, tline, N_TLINE, &s->lines[j], v,
                            seed + 100 + j * 7);
            }
            *(ev_lines *)p = (ev_lines){n ? s->lines : NULL, n};
            break;
        }
        }
    }
}

/* A distinctive envelope; v % 4 picks: maximum-length strings and an
 * idempotency key, short strings and none, empty strings and an empty key,
 * NULL strings (written as "") and none. prev_hash, hash and pos are set to
 * garbage: ev_encode must ignore them. */
static void fill_env(sample *s, int t, int v)
{
    ev_env *e = &s->ev.env;
    static const uint64_t rec_us[] = {1718000000123456ull, 0, 1, UINT64_MAX,
                                      0x7f, 0x80, 0xffffffffull};
    memset(e, 0, sizeof *e);
    e->type = (ev_type)t;
    for (int k = 0; k < 16; k++)
        e->id[k] = (uint8_t)((0x11 * (k + 1)) ^ (v * 29) ^ t);
    e->recorded_us = rec_us[(size_t)v % NEL(rec_us)];
    memset(e->prev_hash, 0xee, sizeof e->prev_hash);
    memset(e->hash, 0xdd, sizeof e->hash);
    e->pos = 999;
    switch (v % 4) {
    case 0:
        e->stream = take_str(s, EV_MAX_ID_STR, 1);
        e->correlation = take_str(s, EV_MAX_ID_STR, 2);
        e->causation = take_str(s, EV_MAX_ID_STR, 3);
        e->actor = take_str(s, EV_MAX_ID_STR, 4);
        e->idem_key = take_str(s, EV_MAX_ID_STR, 5);
        for (int k = 0; k < 16; k++)
            e->idem_fp[k] = (uint8_t)(0xf0 - k * 3);
        break;
    case 1:
        e->stream = take_str(s, 8, 11);
        e->correlation = take_str(s, 36, 12);
        e->causation = take_str(s, 5, 13);
        e->actor = take_str(s, 13, 14);
        break;
    case 2:
        e->stream = take_str(s, 0, 0);
        e->correlation = take_str(s, 0, 0);
        e->causation = take_str(s, 0, 0);
        e->actor = take_str(s, 0, 0);
        e->idem_key = take_str(s, 0, 0);
        for (int k = 0; k < 16; k++)
            e->idem_fp[k] = (uint8_t)(k + 1);
        break;
    default: break;
    }
}

/* A generated sample of type t, variant v. */
static sample *gen_sample(int t, int v)
{
    const ttype *td = tdesc(t);
    cr_assert_not_null(td, "type %d missing from the test's catalogue", t);
    sample *s = sample_new();
    fill_env(s, t, v);
    fill_fields(s, td->f, td->nf, &s->ev.u, v, (unsigned)t * 17);
    return s;
}

/* ---- hand-written samples: two of each type ---- */

#define S_(lit) {(lit), sizeof(lit) - 1}
#define NIL_ {NULL, 0}
#define ID16(a, b)                                                             \
    {0x01, 0x90, 0x4f, 0x2a, 0x7b, 0x3c, 0x7d, (a), 0x8a, 0x22, 0x33, 0x44,   \
     0x55, 0x66, 0x77, (b)}
#define LONG_DESC                                                              \
    "The watch that went to the Moon: a hand-wound chronograph with a "       \
    "Hesalite crystal, a step dial and a tachymeter bezel on aluminium. "      \
    "Co-Axial Master Chronometer calibre 3861, 50 hours of power reserve, "    \
    "anti-magnetic to 15,000 gauss, water resistant to 50 metres. Supplied "   \
    "with a steel bracelet, a strap-changing tool and a presentation box."

static const ev_line HAND_LINES[] = {
    {.watch_id = ID16(0x01, 0x01), .quantity = 1, .unit_price = 699000,
     .subtotal = 699000},
    {.watch_id = ID16(0x02, 0x02), .quantity = 2, .unit_price = 125050,
     .subtotal = 250100},
    {.watch_id = ID16(0x03, 0x03), .quantity = 40000,
     .unit_price = 4294967296ll, .subtotal = 171798691840000ll},
    {.watch_id = ID16(0x04, 0x04), .quantity = 130, .unit_price = -129,
     .subtotal = -16770},
};

static const ev_event HAND[] = {
    {.env.type = EV_T_WATCH_ADDED,
     .u.watch_added = {.watch_id = ID16(0x10, 0x01),
                       .watch_name = S_("Speedmaster Professional Moonwatch"),
                       .brand = S_("Omega"),
                       .model_code = S_("310.30.42.50.01.001"),
                       .description = S_(LONG_DESC),
                       .price = 699000,
                       .currency = S_("EUR"),
                       .stock_quantity = 7,
                       .image_url = S_("https://img.example.com/w/speedy.jpg"),
                       .category = S_("chronograph")}},
    {.env.type = EV_T_WATCH_ADDED,
     .u.watch_added = {.watch_id = ID16(0x10, 0x02),
                       .watch_name = S_("Seamaster"),
                       .brand = NIL_,
                       .model_code = NIL_,
                       .description = S_(""),
                       .price = 0,
                       .currency = S_("CHF"),
                       .stock_quantity = 0,
                       .image_url = NIL_,
                       .category = NIL_}},
    {.env.type = EV_T_WATCH_UPDATED,
     .u.watch_updated = {.watch_id = ID16(0x11, 0x01),
                         .changed = EV_WF_NAME | EV_WF_PRICE,
                         .watch_name = S_("Speedmaster '57"),
                         .brand = NIL_,
                         .model_code = NIL_,
                         .description = NIL_,
                         .price = 650000,
                         .image_url = NIL_,
                         .category = NIL_}},
    {.env.type = EV_T_WATCH_UPDATED,
     .u.watch_updated = {.watch_id = ID16(0x11, 0x02),
                         .changed = EV_WF_ALL,
                         .watch_name = S_("Submariner Date"),
                         .brand = S_("Rolex"),
                         .model_code = S_("126610LN"),
                         .description = S_(LONG_DESC " (updated)"),
                         .price = 1045000,
                         .image_url = S_("https://img.example.com/w/sub.png"),
                         .category = S_("diver")}},
    {.env.type = EV_T_STOCK_ADJUSTED,
     .u.stock_adjusted = {.watch_id = ID16(0x12, 0x01),
                          .delta = -2,
                          .quantity = 5,
                          .reason = EV_stock_reason_SALE,
                          .order_id = 42,
                          .note = S_("order 42")}},
    {.env.type = EV_T_STOCK_ADJUSTED,
     .u.stock_adjusted = {.watch_id = ID16(0x12, 0x02),
                          .delta = 300,
                          .quantity = 307,
                          .reason = EV_stock_reason_RESTOCK,
                          .order_id = 0,
                          .note = NIL_}},
    {.env.type = EV_T_CUSTOMER_REGISTERED,
     .u.customer_registered = {
         .customer_id = 1001,
         .password_hash = S_("$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"),
         .role = EV_role_ADMIN,
         .email = S_("ada@example.org"),
         .full_name = S_("Ada Lovelace"),
         .phone = S_("+44 20 7946 0958"),
         .address = S_("12 St James's Square"),
         .city = S_("London"),
         .country = S_("GB")}},
    {.env.type = EV_T_CUSTOMER_REGISTERED,
     .u.customer_registered = {.customer_id = 70000,
                               .password_hash = NIL_,
                               .role = EV_role_USER,
                               .email = S_("grace@example.com"),
                               .full_name = S_("Grace Hopper"),
                               .phone = NIL_,
                               .address = NIL_,
                               .city = NIL_,
                               .country = S_("")}},
    {.env.type = EV_T_CUSTOMER_ROLE_CHANGED,
     .u.customer_role_changed = {.customer_id = 1001,
                                 .role = EV_role_AGENT}},
    {.env.type = EV_T_CUSTOMER_ROLE_CHANGED,
     .u.customer_role_changed = {.customer_id = UINT64_MAX,
                                 .role = EV_role_USER}},
    {.env.type = EV_T_ORDER_PLACED,
     .u.order_placed = {.order_id = 42,
                        .customer_id = 1001,
                        .currency = S_("EUR"),
                        .total = 949100,
                        .lines = {HAND_LINES, 3},
                        .guest_token_hash = NIL_,
                        .shipping_address = S_("12 St James's Square, "
                                               "London SW1Y 4JH, GB")}},
    {.env.type = EV_T_ORDER_PLACED,
     .u.order_placed = {.order_id = 43,
                        .customer_id = 0,
                        .currency = S_("USD"),
                        .total = 171798691823230ll,
                        .lines = {HAND_LINES + 2, 2},
                        .guest_token_hash = S_(
                            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"
                            "d15d6c15b0f00a08"),
                        .shipping_address = NIL_}},
    {.env.type = EV_T_ORDER_STATUS_CHANGED,
     .u.order_status_changed = {.order_id = 42,
                                .from = EV_order_status_PROCESSING,
                                .to = EV_order_status_SHIPPED}},
    {.env.type = EV_T_ORDER_STATUS_CHANGED,
     .u.order_status_changed = {.order_id = 43,
                                .from = EV_order_status_PENDING,
                                .to = EV_order_status_DELIVERED}},
    {.env.type = EV_T_ORDER_CANCELLED,
     .u.order_cancelled = {.order_id = 42,
                           .from = EV_order_status_PENDING,
                           .reason = S_("customer asked to cancel")}},
    {.env.type = EV_T_ORDER_CANCELLED,
     .u.order_cancelled = {.order_id = 44,
                           .from = EV_order_status_CANCELLED,
                           .reason = NIL_}},
    {.env.type = EV_T_PAYMENT_INTENT_CREATED,
     .u.payment_intent_created = {.order_id = 42,
                                  .provider = S_("stripe"),
                                  .intent_id = S_("pi_3N7xYz2eZvKYlo2C1a2b3c4d"),
                                  .amount = 949100,
                                  .currency = S_("EUR")}},
    {.env.type = EV_T_PAYMENT_INTENT_CREATED,
     .u.payment_intent_created = {.order_id = 43,
                                  .provider = S_("paypal"),
                                  .intent_id = S_("5O190127TN364715T"),
                                  .amount = 1,
                                  .currency = S_("USD")}},
    {.env.type = EV_T_PAYMENT_SUCCEEDED,
     .u.payment_succeeded = {.order_id = 42,
                             .provider = S_("stripe"),
                             .intent_id = S_("pi_3N7xYz2eZvKYlo2C1a2b3c4d"),
                             .provider_event_id = S_("evt_1NG8Du2eZvKYlo2CUI79vXWy"),
                             .amount = 949100,
                             .currency = S_("EUR")}},
    {.env.type = EV_T_PAYMENT_SUCCEEDED,
     .u.payment_succeeded = {.order_id = 43,
                             .provider = S_("paypal"),
                             .intent_id = S_("5O190127TN364715T"),
                             .provider_event_id = S_("WH-2WR32451HC0233532-67976317FL4543714"),
                             .amount = 70000,
                             .currency = S_("USD")}},
    {.env.type = EV_T_PAYMENT_MISMATCHED,
     .u.payment_mismatched = {.order_id = 42,
                              .provider = S_("stripe"),
                              .intent_id = S_("pi_mismatch"),
                              .provider_event_id = S_("evt_mismatch"),
                              .amount = 949000,
                              .currency = S_("EUR"),
                              .expected = 949100}},
    {.env.type = EV_T_PAYMENT_MISMATCHED,
     .u.payment_mismatched = {.order_id = 45,
                              .provider = S_("paypal"),
                              .intent_id = S_("8AB12345CD678901E"),
                              .provider_event_id = S_("WH-1"),
                              .amount = -5,
                              .currency = S_("GBP"),
                              .expected = INT64_MAX}},
    {.env.type = EV_T_PAYMENT_FAILED,
     .u.payment_failed = {.order_id = 42,
                          .provider = S_("stripe"),
                          .intent_id = S_("pi_failed"),
                          .provider_event_id = S_("evt_failed"),
                          .reason = S_("card_declined: insufficient_funds")}},
    {.env.type = EV_T_PAYMENT_FAILED,
     .u.payment_failed = {.order_id = 46,
                          .provider = S_("paypal"),
                          .intent_id = S_("X"),
                          .provider_event_id = S_("WH-9"),
                          .reason = NIL_}},
    {.env.type = EV_T_TOKEN_ISSUED,
     .u.token_issued = {.customer_id = 1001,
                        .token_hash = S_("2cf24dba5fb0a30e26e83b2ac5b9e29e"
                                         "1b161e5c1fa7425e73043362938b9824"),
                        .expires_at = 1720592000000000ull,
                        .replaces = S_("486ea46224d1bb4fb680f34f7c9ad96a"
                                       "8f24ec88be73ea8e5a6c65260e9cb8a7")}},
    {.env.type = EV_T_TOKEN_ISSUED,
     .u.token_issued = {.customer_id = 1002,
                        .token_hash = S_("a"),
                        .expires_at = 0,
                        .replaces = NIL_}},
    {.env.type = EV_T_TOKEN_REVOKED,
     .u.token_revoked = {.customer_id = 1001,
                         .token_hash = S_("486ea46224d1bb4fb680f34f7c9ad96a"
                                          "8f24ec88be73ea8e5a6c65260e9cb8a7"),
                         .reason = S_("rotated")}},
    {.env.type = EV_T_TOKEN_REVOKED,
     .u.token_revoked = {.customer_id = 1003,
                         .token_hash = S_("ff"),
                         .reason = S_("admin")}},
    {.env.type = EV_T_CUSTOMER_PASSWORD_CHANGED,
     .u.customer_password_changed = {
         .customer_id = 1001,
         .password_hash = S_("$scrypt$ln=13,r=8,p=10$c2FsdHNhbHRzYWx0c2FsdA$"
                             "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"),
         .reason = S_("rehash")}},
    {.env.type = EV_T_CUSTOMER_PASSWORD_CHANGED,
     .u.customer_password_changed = {.customer_id = UINT64_MAX,
                                     .password_hash = S_("$2b$"),
                                     .reason = S_("r")}},
};

/* Hand sample i with a hand-written envelope. */
static sample *hand_sample(size_t i)
{
    sample *s = sample_new();
    s->ev = HAND[i];
    ev_env *e = &s->ev.env;
    static const uint8_t id[16] = ID16(0xe0, 0x00);
    memcpy(e->id, id, 16);
    e->id[15] = (uint8_t)i;
    char *p = s->arena;
    int n;
    n = snprintf(p, 64, "%s-%zu", tdesc(e->type)->wire, 40 + i);
    e->stream = (ev_str){p, (uint32_t)n};
    p += 64;
    n = snprintf(p, 64, "0190f3a2-7b3c-7d11-8a22-%012zu", i);
    e->correlation = (ev_str){p, (uint32_t)n};
    p += 64;
    n = snprintf(p, 64, "cmd-%zu", i * 7);
    e->causation = (ev_str){p, (uint32_t)n};
    p += 64;
    n = snprintf(p, 64, i % 3 ? "customer:%zu" : "admin:%zu", 1000 + i);
    e->actor = (ev_str){p, (uint32_t)n};
    p += 64;
    if (i % 2 == 0) {
        n = snprintf(p, 64, "idem-%zu-Zq9", i);
        e->idem_key = (ev_str){p, (uint32_t)n};
        for (int k = 0; k < 16; k++)
            e->idem_fp[k] = (uint8_t)(0x5a ^ (k * 11) ^ (int)i);
    }
    p += 64;
    s->used = (size_t)(p - s->arena);
    e->recorded_us = 1718000000000000ull + i * 1111111ull;
    return s;
}

/* --------------------------------------------------------- comparisons */

static void expect_str(ev_str got, ev_str want, const char *what,
                       const char *ctx)
{
    CHECK(got.n == want.n, "%s: %s length %u, want %u", ctx, what, got.n,
          want.n);
    if (got.n == want.n && want.n) {
        CHECK(got.p != NULL, "%s: %s has a NULL pointer", ctx, what);
        if (got.p)
            CHECK(memcmp(got.p, want.p, want.n) == 0, "%s: %s bytes differ",
                  ctx, what);
    }
}

static void expect_fields(const tfield *f, size_t nf, const void *want,
                          const void *got, const char *ctx)
{
    char sub[256];
    for (size_t i = 0; i < nf; i++) {
        const uint8_t *a = (const uint8_t *)want + f[i].off;
        const uint8_t *b = (const uint8_t *)got + f[i].off;
        switch (f[i].kind) {
        case TK_U64:
        case TK_OU64:
            CHECK(*(const uint64_t *)a == *(const uint64_t *)b,
                  "%s: %s = %" PRIu64 ", want %" PRIu64, ctx, f[i].name,
                  *(const uint64_t *)b, *(const uint64_t *)a);
            break;
        case TK_I64:
            CHECK(*(const int64_t *)a == *(const int64_t *)b,
                  "%s: %s = %" PRId64 ", want %" PRId64, ctx, f[i].name,
                  *(const int64_t *)b, *(const int64_t *)a);
            break;
        case TK_BOOL:
            CHECK(*(const bool *)a == *(const bool *)b, "%s: %s differs", ctx,
                  f[i].name);
            break;
        case TK_OSTR:
            CHECK((((const ev_str *)a)->p == NULL) ==
                      (((const ev_str *)b)->p == NULL),
                  "%s: %s nil-ness differs (want %s)", ctx, f[i].name,
                  ((const ev_str *)a)->p ? "a string" : "nil");
            /* fall through */
        case TK_STR:
            expect_str(*(const ev_str *)b, *(const ev_str *)a, f[i].name, ctx);
            break;
        case TK_UUID:
            CHECK(memcmp(a, b, 16) == 0, "%s: %s differs", ctx, f[i].name);
            break;
        case TK_ENUM:
            CHECK(*a == *b, "%s: %s = %d, want %d", ctx, f[i].name, *b, *a);
            break;
        case TK_LINES: {
            const ev_lines *la = (const ev_lines *)a, *lb = (const ev_lines *)b;
            CHECK(la->n == lb->n, "%s: %s count %u, want %u", ctx, f[i].name,
                  lb->n, la->n);
            if (la->n != lb->n)
                break;
            CHECK(lb->n == 0 || lb->v != NULL, "%s: %s NULL", ctx, f[i].name);
            if (lb->n && !lb->v)
                break;
            for (uint32_t j = 0; j < la->n; j++) {
                snprintf(sub, sizeof sub, "%s, %s[%u]", ctx, f[i].name, j);
                expect_fields(tline, N_TLINE, &la->v[j], &lb->v[j], sub);
            }
            break;
        }
        }
    }
}

/* Envelope fields other than type, type_name and version. */
static void expect_env_common(const ev_env *w, const ev_env *got,
                              const uint8_t prev[32], const uint8_t *rec,
                              size_t len, uint64_t pos, const char *ctx)
{
    uint8_t h[32];
    CHECK(memcmp(got->id, w->id, 16) == 0, "%s: id differs", ctx);
    expect_str(got->stream, w->stream, "stream", ctx);
    CHECK(got->recorded_us == w->recorded_us,
          "%s: recorded_us %" PRIu64 ", want %" PRIu64, ctx, got->recorded_us,
          w->recorded_us);
    expect_str(got->correlation, w->correlation, "correlation", ctx);
    expect_str(got->causation, w->causation, "causation", ctx);
    expect_str(got->actor, w->actor, "actor", ctx);
    CHECK((got->idem_key.p == NULL) == (w->idem_key.p == NULL),
          "%s: idempotency key presence differs (want %s)", ctx,
          w->idem_key.p ? "a key" : "none");
    expect_str(got->idem_key, w->idem_key, "idem_key", ctx);
    if (w->idem_key.p)
        CHECK(memcmp(got->idem_fp, w->idem_fp, 16) == 0,
              "%s: idempotency fingerprint differs", ctx);
    CHECK(memcmp(got->prev_hash, prev, 32) == 0, "%s: prev_hash differs", ctx);
    CHECK(memcmp(got->hash, rec + len - 32, 32) == 0,
          "%s: hash is not the record's trailer", ctx);
    sha256(rec, len - 32, h);
    CHECK(memcmp(got->hash, h, 32) == 0,
          "%s: hash is not SHA-256 of the record", ctx);
    CHECK(got->pos == pos, "%s: pos %" PRIu64 ", want %" PRIu64, ctx, got->pos,
          pos);
    /* Decoded strings borrow from the record bytes. */
    CHECK(in_buf(got->type_name, rec, len) && in_buf(got->stream, rec, len) &&
              in_buf(got->correlation, rec, len) &&
              in_buf(got->causation, rec, len) && in_buf(got->actor, rec, len) &&
              in_buf(got->idem_key, rec, len),
          "%s: an envelope string points outside the record", ctx);
}

static void expect_type_name(const ev_env *got, const char *name,
                             size_t name_len, unsigned version, int type,
                             const char *ctx)
{
    CHECK((int)got->type == type, "%s: type %d, want %d", ctx, (int)got->type,
          type);
    CHECK(got->type_name.n == name_len && got->type_name.p &&
              memcmp(got->type_name.p, name, name_len) == 0,
          "%s: type_name '%.*s', want '%.*s'", ctx, (int)got->type_name.n,
          got->type_name.p ? got->type_name.p : "", (int)name_len, name);
    CHECK(got->version == version, "%s: version %u, want %u", ctx,
          (unsigned)got->version, version);
}

/* ------------------------------------------------- hand-built records */

enum mkind {
    M_NONE,
    M_ARRAY_HDR,    /* raw replaces the array header */
    M_SLOT,         /* raw replaces envelope element `slot` (0..11) */
    M_TRAILING,     /* raw follows the array */
    M_FIELD_RAW,    /* raw replaces the value of `field` */
    M_FIELD_RAWKEY, /* raw replaces the key of `field` */
    M_FIELD_RENAME, /* `name` replaces the key of `field` */
    M_FIELD_OMIT,
    M_FIELD_DUP,
    M_FIELD_MOVE,   /* `field` is written in the other section (P <-> pii) */
    M_EXTRA,        /* an extra entry name: raw (main map, or the line) */
    M_EXTRA_PII,    /* an extra entry name: raw in the pii map */
    M_PII_OMIT,
    M_PII_DUP,
    M_PII_RAW,      /* raw replaces the pii map */
    M_LINE_RAW,     /* raw replaces line `line` */
    M_REVERSE,      /* fields in reverse order, pii first (still valid) */
    M_SHUFFLE,      /* fields in an order chosen by seed `slot` (valid) */
};
enum { WHERE_MAIN, WHERE_PII, WHERE_LINE };

typedef struct mut {
    int kind;
    int slot;
    int field;
    int in_line; /* field mutations apply to line `line`, not the payload */
    uint32_t line;
    const uint8_t *raw;
    size_t rawlen;
    const char *name;
    const char *type_name; /* overrides the wire name */
    int has_version;
    uint64_t version;      /* overrides the version */
} mut;

static void sb_raw(msgpack_sbuffer *sb, const void *p, size_t n)
{
    if (n)
        msgpack_sbuffer_write(sb, (const char *)p, n);
}

static void tp_str(msgpack_packer *pk, const char *p, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, n ? p : "", n);
}

static void tp_cstr(msgpack_packer *pk, const char *s)
{
    tp_str(pk, s, strlen(s));
}

static uint32_t tp_section(msgpack_sbuffer *sb, const tfield *f, size_t nf,
                           int sec, const void *base, const mut *fm,
                           const mut *m, int where);

static void tp_value(msgpack_sbuffer *sb, const tfield *f, const uint8_t *v,
                     const mut *m)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    switch (f->kind) {
    case TK_U64: msgpack_pack_uint64(&pk, *(const uint64_t *)v); break;
    case TK_OU64:
        if (*(const uint64_t *)v)
            msgpack_pack_uint64(&pk, *(const uint64_t *)v);
        else
            msgpack_pack_nil(&pk);
        break;
    case TK_I64: msgpack_pack_int64(&pk, *(const int64_t *)v); break;
    case TK_BOOL:
        if (*(const bool *)v)
            msgpack_pack_true(&pk);
        else
            msgpack_pack_false(&pk);
        break;
    case TK_STR: {
        const ev_str *s = (const ev_str *)v;
        tp_str(&pk, s->p, s->n);
        break;
    }
    case TK_OSTR: {
        const ev_str *s = (const ev_str *)v;
        if (s->p)
            tp_str(&pk, s->p, s->n);
        else
            msgpack_pack_nil(&pk);
        break;
    }
    case TK_UUID:
        msgpack_pack_bin(&pk, 16);
        msgpack_pack_bin_body(&pk, v, 16);
        break;
    case TK_ENUM:
        tp_cstr(&pk, *v < tenums[f->arg].count ? tenums[f->arg].names[*v]
                                                : "out-of-range");
        break;
    case TK_LINES: {
        const ev_lines *l = (const ev_lines *)v;
        msgpack_pack_array(&pk, l->n);
        for (uint32_t j = 0; j < l->n; j++) {
            const mut *fm = m && m->in_line && m->line == j ? m : NULL;
            if (fm && fm->kind == M_LINE_RAW) {
                sb_raw(sb, fm->raw, fm->rawlen);
                continue;
            }
            msgpack_sbuffer sub;
            msgpack_sbuffer_init(&sub);
            uint32_t c = tp_section(&sub, tline, N_TLINE, TS_P, &l->v[j], fm,
                                    NULL, WHERE_LINE);
            msgpack_pack_map(&pk, c);
            sb_raw(sb, sub.data, sub.size);
            msgpack_sbuffer_destroy(&sub);
        }
        break;
    }
    }
}

/* Writes the entries of one map (section `sec` of fields f) into sb and
 * returns their count; fm is the field mutation that applies to this map. */
static uint32_t tp_section(msgpack_sbuffer *sb, const tfield *f, size_t nf,
                           int sec, const void *base, const mut *fm,
                           const mut *m, int where)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    uint32_t n = 0;
    size_t order[64];
    cr_assert_leq(nf, NEL(order));
    for (size_t k = 0; k < nf; k++)
        order[k] = fm && fm->kind == M_REVERSE ? nf - 1 - k : k;
    if (fm && fm->kind == M_SHUFFLE) {
        uint32_t x = (uint32_t)fm->slot * 2654435761u + (uint32_t)where + 1;
        for (size_t k = nf; k > 1; k--) {
            x = x * 1103515245u + 12345u;
            size_t j = (x >> 8) % k, tmp = order[k - 1];
            order[k - 1] = order[j];
            order[j] = tmp;
        }
    }
    for (size_t k = 0; k < nf; k++) {
        size_t i = order[k];
        bool target = fm && fm->field >= 0 && (size_t)fm->field == i;
        bool here = f[i].sec == sec;
        if (target && fm->kind == M_FIELD_MOVE)
            here = !here;
        if (!here || (target && fm->kind == M_FIELD_OMIT))
            continue;
        int reps = target && fm->kind == M_FIELD_DUP ? 2 : 1;
        for (int r = 0; r < reps; r++) {
            if (target && fm->kind == M_FIELD_RENAME)
                tp_cstr(&pk, fm->name);
            else if (target && fm->kind == M_FIELD_RAWKEY)
                sb_raw(sb, fm->raw, fm->rawlen);
            else
                tp_cstr(&pk, f[i].name);
            if (target && fm->kind == M_FIELD_RAW)
                sb_raw(sb, fm->raw, fm->rawlen);
            else
                tp_value(sb, &f[i], (const uint8_t *)base + f[i].off, m);
            n++;
        }
    }
    if (fm && ((fm->kind == M_EXTRA && where != WHERE_PII) ||
               (fm->kind == M_EXTRA_PII && where == WHERE_PII))) {
        tp_cstr(&pk, fm->name);
        sb_raw(sb, fm->raw, fm->rawlen);
        n++;
    }
    return n;
}

static void tp_payload(msgpack_sbuffer *sb, const ttype *td, const void *u,
                       const mut *m)
{
    const mut *fm = m && !m->in_line ? m : NULL;
    msgpack_sbuffer plain, pii;
    msgpack_sbuffer_init(&plain);
    msgpack_sbuffer_init(&pii);
    uint32_t n = tp_section(&plain, td->f, td->nf, TS_P, u, fm, m, WHERE_MAIN);
    if (td->n_pii && !(fm && fm->kind == M_PII_OMIT)) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &pii, msgpack_sbuffer_write);
        int reps = fm && fm->kind == M_PII_DUP ? 2 : 1;
        for (int r = 0; r < reps; r++) {
            tp_cstr(&pk, "pii");
            if (fm && fm->kind == M_PII_RAW) {
                sb_raw(&pii, fm->raw, fm->rawlen);
            } else {
                msgpack_sbuffer sub;
                msgpack_sbuffer_init(&sub);
                uint32_t c = tp_section(&sub, td->f, td->nf, TS_S, u, fm, m,
                                        WHERE_PII);
                msgpack_pack_map(&pk, c);
                sb_raw(&pii, sub.data, sub.size);
                msgpack_sbuffer_destroy(&sub);
            }
            n++;
        }
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    if (fm && (fm->kind == M_REVERSE ||
               (fm->kind == M_SHUFFLE && fm->slot % 2))) {
        sb_raw(sb, pii.data, pii.size);
        sb_raw(sb, plain.data, plain.size);
    } else {
        sb_raw(sb, plain.data, plain.size);
        sb_raw(sb, pii.data, pii.size);
    }
    msgpack_sbuffer_destroy(&plain);
    msgpack_sbuffer_destroy(&pii);
}

/* The body (everything before the trailer) of the record for ev, written
 * independently of ev_encode following the layout in core/event.h:
 *   [1, prev(bin32), id(bin16), type(str), version(uint), stream(str),
 *    recorded_us(uint), correlation(str), causation(str), actor(str),
 *    nil | [idem key(str), fingerprint(bin16)], payload(map)] */
static void tp_body(msgpack_sbuffer *sb, const ev_event *ev,
                    const uint8_t prev[32], const mut *m)
{
    const ttype *td = tdesc(ev->env.type);
    const ev_env *e = &ev->env;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (m && m->kind == M_ARRAY_HDR)
        sb_raw(sb, m->raw, m->rawlen);
    else
        msgpack_pack_array(&pk, 12);
    for (int slot = 0; slot < 12; slot++) {
        if (m && m->kind == M_SLOT && m->slot == slot) {
            sb_raw(sb, m->raw, m->rawlen);
            continue;
        }
        switch (slot) {
        case 0: msgpack_pack_uint64(&pk, EV_FORMAT); break;
        case 1:
            msgpack_pack_bin(&pk, 32);
            msgpack_pack_bin_body(&pk, prev, 32);
            break;
        case 2:
            msgpack_pack_bin(&pk, 16);
            msgpack_pack_bin_body(&pk, e->id, 16);
            break;
        case 3:
            cr_assert(td || (m && m->type_name));
            tp_cstr(&pk, m && m->type_name ? m->type_name : td->wire);
            break;
        case 4:
            cr_assert(td || (m && m->has_version));
            msgpack_pack_uint64(&pk, m && m->has_version ? m->version
                                                         : td->version);
            break;
        case 5: tp_str(&pk, e->stream.p, e->stream.n); break;
        case 6: msgpack_pack_uint64(&pk, e->recorded_us); break;
        case 7: tp_str(&pk, e->correlation.p, e->correlation.n); break;
        case 8: tp_str(&pk, e->causation.p, e->causation.n); break;
        case 9: tp_str(&pk, e->actor.p, e->actor.n); break;
        case 10:
            if (e->idem_key.p) {
                msgpack_pack_array(&pk, 2);
                tp_str(&pk, e->idem_key.p, e->idem_key.n);
                msgpack_pack_bin(&pk, 16);
                msgpack_pack_bin_body(&pk, e->idem_fp, 16);
            } else {
                msgpack_pack_nil(&pk);
            }
            break;
        case 11:
            cr_assert_not_null(td, "a payload for an unknown type must be raw");
            tp_payload(sb, td, &ev->u, m);
            break;
        }
    }
    if (m && m->kind == M_TRAILING)
        sb_raw(sb, m->raw, m->rawlen);
}

/* The sealed record (body + correct trailer), in an exact-size block. */
static uint8_t *tbuild(const ev_event *ev, const uint8_t prev[32],
                       const mut *m, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    tp_body(&sb, ev, prev, m);
    uint8_t *r = seal(sb.data, sb.size, len);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

static const uint8_t PREV[32] = {
    0xa5, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x5a,
};

/* Encodes ev with ev_encode into an exact-size block. */
static uint8_t *encode_exact(ev_enc *e, const ev_event *ev, size_t *len)
{
    ev_buf b = {0};
    uint8_t h[32];
    int rc = ev_encode(e, ev, PREV, &b, h);
    cr_assert_eq(rc, EV_OK, "ev_encode(%s): %d %s", ev_type_name(ev->env.type),
                 rc, ev_strerror(rc));
    cr_assert_eq(memcmp(h, b.p + b.len - 32, 32), 0,
                 "hash_out is not the trailer");
    uint8_t *r = exact(b.p, b.len);
    *len = b.len;
    ev_buf_free(&b);
    return r;
}

/* Decodes a hand-built (mutated) record, expecting one of two codes. */
static void expect_mut(ev_dec *d, const ev_event *ev, const mut *m, int want,
                       int want2, const char *ctx)
{
    size_t len;
    uint8_t *rec = tbuild(ev, PREV, m, &len);
    ev_event out;
    int rc = ev_decode(d, rec, len, 0, &out);
    CHECK(rc == want || (want2 && rc == want2), "%s: got %d (%s), want %d (%s)",
          ctx, rc, ev_strerror(rc), want, ev_strerror(want));
    free(rec);
}

/* --------------------------------------------------------- round trips */

/* ev_encode -> ev_decode and compare everything; also checks that the
 * test's own packer writes the same bytes, so that the hand-built corrupt
 * records below differ from real ones only where intended. */
static void roundtrip(ev_enc *e, ev_dec *d, const ev_event *src,
                      const char *ctx)
{
    const ttype *td = tdesc(src->env.type);
    cr_assert_not_null(td);
    size_t len, tlen;
    uint8_t *rec = encode_exact(e, src, &len);
    uint8_t *trec = tbuild(src, PREV, NULL, &tlen);
    CHECK(tlen == len && memcmp(rec, trec, len) == 0,
          "%s: ev_encode's bytes differ from the documented layout", ctx);
    free(trec);

    CHECK(ev_verify_hash(d, rec, len) == EV_OK, "%s: verify_hash", ctx);
    ev_event out;
    memset(&out, 0xa5, sizeof out);
    int rc = ev_decode(d, rec, len, 0x0102030405ull, &out);
    CHECK(rc == EV_OK, "%s: decode: %d %s", ctx, rc, ev_strerror(rc));
    if (rc == EV_OK) {
        expect_type_name(&out.env, td->wire, strlen(td->wire), td->version,
                         src->env.type, ctx);
        expect_env_common(&src->env, &out.env, PREV, rec, len, 0x0102030405ull,
                          ctx);
        expect_fields(td->f, td->nf, &src->u, &out.u, ctx);
    }
    free(rec);
}

Test(event, catalogue_view_matches_the_code)
{
    cr_assert_eq(EV_T_UNKNOWN, 0);
    cr_assert_eq(EV_T_WATCH_ADDED, 1);
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        cr_assert_not_null(td);
        cr_expect_str_eq(ev_type_name((ev_type)t), td->wire);
        cr_expect_eq(ev_type_version((ev_type)t), td->version);
        cr_expect_geq(td->version, 1u);
        for (int u = EV_T_WATCH_ADDED; u < t; u++)
            cr_expect_str_neq(tdesc(u)->wire, td->wire, "duplicate wire name");
    }
    cr_expect_str_eq(ev_type_name(EV_T_UNKNOWN), "unknown");
    cr_expect_str_eq(ev_type_name(EV_T_COUNT), "unknown");
    cr_expect_str_eq(ev_type_name((ev_type)1000), "unknown");
    cr_expect_eq(ev_type_version(EV_T_UNKNOWN), 0);
    cr_expect_eq(ev_type_version(EV_T_COUNT), 0);
}

Test(event, roundtrip_every_type_minimal_payload)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        sample *s = sample_new(); /* all zero: NULL strings, no lines */
        s->ev.env.type = (ev_type)t;
        char ctx[96];
        snprintf(ctx, sizeof ctx, "%s minimal", ev_type_name((ev_type)t));
        roundtrip(e, d, &s->ev, ctx);
        free(s);
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

Test(event, roundtrip_every_type_generated_payloads)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        for (int v = 0; v < 12; v++) {
            sample *s = gen_sample(t, v);
            char ctx[96];
            snprintf(ctx, sizeof ctx, "%s variant %d", ev_type_name((ev_type)t),
                     v);
            roundtrip(e, d, &s->ev, ctx);
            free(s);
        }
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

Test(event, roundtrip_handwritten_samples)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    int seen[EV_T_COUNT] = {0};
    for (size_t i = 0; i < NEL(HAND); i++) {
        sample *s = hand_sample(i);
        seen[s->ev.env.type]++;
        char ctx[96];
        snprintf(ctx, sizeof ctx, "hand sample %zu (%s)", i,
                 ev_type_name(s->ev.env.type));
        roundtrip(e, d, &s->ev, ctx);
        free(s);
    }
    /* The hand-written payloads name every field of every type. */
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++)
        cr_expect_geq(seen[t], 2, "no hand-written sample of %s",
                      ev_type_name((ev_type)t));
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

Test(event, roundtrip_every_enum_value)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        for (size_t i = 0; i < td->nf; i++) {
            if (td->f[i].kind != TK_ENUM)
                continue;
            for (int val = 0; val < tenums[td->f[i].arg].count; val++) {
                sample *s = gen_sample(t, 1);
                *((uint8_t *)&s->ev.u + td->f[i].off) = (uint8_t)val;
                char ctx[128];
                snprintf(ctx, sizeof ctx, "%s.%s = %s", td->wire, td->f[i].name,
                         tenums[td->f[i].arg].names[val]);
                roundtrip(e, d, &s->ev, ctx);
                free(s);
            }
        }
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

/* Records appended to one buffer: each is hashed over its own bytes and the
 * second chains to the first. */
Test(event, records_append_and_chain)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    sample *a = hand_sample(10), *b = hand_sample(4);
    ev_buf buf = {0};
    cr_assert_eq(ev_buf_reserve(&buf, 7), 0);
    memcpy(buf.p, "garbage", 7);
    buf.len = 7;
    uint8_t zero[32] = {0}, ha[32], hb[32];
    cr_assert_eq(ev_encode(e, &a->ev, zero, &buf, ha), EV_OK);
    size_t end_a = buf.len;
    cr_assert_eq(ev_encode(e, &b->ev, ha, &buf, hb), EV_OK);
    cr_expect_eq(memcmp(buf.p, "garbage", 7), 0, "bytes before were changed");

    uint8_t *ra = exact(buf.p + 7, end_a - 7);
    uint8_t *rb = exact(buf.p + end_a, buf.len - end_a);
    size_t la = end_a - 7, lb = buf.len - end_a;
    ev_event out;
    cr_assert_eq(ev_decode(d, ra, la, 1, &out), EV_OK);
    cr_expect_eq(memcmp(out.env.prev_hash, zero, 32), 0);
    cr_expect_eq(memcmp(out.env.hash, ha, 32), 0);
    cr_expect_eq(out.env.pos, 1u);
    cr_assert_eq(ev_decode(d, rb, lb, 2, &out), EV_OK);
    cr_expect_eq(memcmp(out.env.prev_hash, ha, 32), 0, "not chained");
    cr_expect_eq(memcmp(out.env.hash, hb, 32), 0);
    cr_expect_eq(out.env.pos, 2u);
    cr_expect_eq(memcmp(ev_rec_prev(rb, lb), ev_rec_hash(ra, la), 32), 0);

    /* The same event chained to another hash is another record. */
    size_t l1, l2;
    uint8_t *r1 = encode_exact(e, &b->ev, &l1);
    ev_buf b2 = {0};
    uint8_t h2[32];
    cr_assert_eq(ev_encode(e, &b->ev, zero, &b2, h2), EV_OK);
    l2 = b2.len;
    cr_expect_eq(l1, l2);
    cr_expect_neq(memcmp(r1 + l1 - 32, b2.p + l2 - 32, 32), 0,
                  "prev hash does not feed the record's hash");
    ev_buf_free(&b2);
    free(r1);
    free(ra);
    free(rb);
    ev_buf_free(&buf);
    free(a);
    free(b);
    ev_enc_free(e);
    ev_dec_free(d);
}

/* ev_encode ignores env.prev_hash, env.hash and env.pos. */
Test(event, encode_ignores_stored_hashes_and_pos)
{
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    sample *s = hand_sample(6);
    size_t l1, l2;
    uint8_t *r1 = encode_exact(e, &s->ev, &l1);
    memset(s->ev.env.prev_hash, 0x77, 32);
    memset(s->ev.env.hash, 0x66, 32);
    s->ev.env.pos = 123456;
    uint8_t *r2 = encode_exact(e, &s->ev, &l2);
    cr_expect_eq(l1, l2);
    cr_expect_eq(memcmp(r1, r2, l1), 0);
    cr_expect_eq(memcmp(ev_rec_prev(r2, l2), PREV, 32), 0);
    free(r1);
    free(r2);
    free(s);
    ev_enc_free(e);
}

/* A decoder reused for another record leaves nothing of the first one. */
Test(event, decoder_reuse_resets_the_envelope)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    sample *a = hand_sample(10); /* idem key set */
    sample *b = hand_sample(11); /* none */
    cr_assert_not_null(a->ev.env.idem_key.p);
    cr_assert_null(b->ev.env.idem_key.p);
    size_t la, lb;
    uint8_t *ra = encode_exact(e, &a->ev, &la);
    uint8_t *rb = encode_exact(e, &b->ev, &lb);
    ev_event out;
    cr_assert_eq(ev_decode(d, ra, la, 0, &out), EV_OK);
    cr_expect_not_null(out.env.idem_key.p);
    cr_assert_eq(ev_decode(d, rb, lb, 0, &out), EV_OK);
    cr_expect_null(out.env.idem_key.p, "idempotency key left from before");
    cr_expect_eq(out.env.idem_key.n, 0u);
    expect_fields(tdesc(EV_T_ORDER_PLACED)->f, tdesc(EV_T_ORDER_PLACED)->nf,
                  &b->ev.u, &out.u, "second decode");
    free(ra);
    free(rb);
    free(a);
    free(b);
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

/* ------------------------------------------------- encoder refusals */

static char BIG[EV_MAX_RECORD + 64];

static void big_init(void)
{
    memset(BIG, 'x', sizeof BIG);
}

/* ev_encode(ev) must fail with `want` (or want2) and leave out untouched;
 * ev_validate must agree. */
static void expect_refused(ev_enc *e, const ev_event *ev, int want, int want2,
                           const char *ctx)
{
    ev_buf b = {0};
    cr_assert_eq(ev_buf_reserve(&b, 5), 0);
    memcpy(b.p, "keep!", 5);
    b.len = 5;
    uint8_t h[32];
    int rc = ev_encode(e, ev, PREV, &b, h);
    CHECK(rc == want || (want2 && rc == want2),
          "%s: ev_encode gave %d (%s), want %d (%s)", ctx, rc, ev_strerror(rc),
          want, ev_strerror(want));
    CHECK(b.len == 5 && memcmp(b.p, "keep!", 5) == 0,
          "%s: a refused event changed the output buffer", ctx);
    int vr = ev_validate(ev);
    CHECK(vr == rc, "%s: ev_validate %d, ev_encode %d", ctx, vr, rc);
    ev_buf_free(&b);
}

static void expect_accepted(ev_enc *e, const ev_event *ev, const char *ctx)
{
    ev_buf b = {0};
    uint8_t h[32];
    int rc = ev_encode(e, ev, PREV, &b, h);
    CHECK(rc == EV_OK, "%s: ev_encode gave %d (%s)", ctx, rc, ev_strerror(rc));
    CHECK(ev_validate(ev) == EV_OK, "%s: ev_validate refused", ctx);
    ev_buf_free(&b);
}

Test(event, encode_refuses_overlong_strings)
{
    big_init();
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    char ctx[160];
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        sample *s = gen_sample(t, 0); /* every string at its maximum */
        snprintf(ctx, sizeof ctx, "%s at maximum lengths", td->wire);
        expect_accepted(e, &s->ev, ctx);
        for (size_t i = 0; i < td->nf; i++) {
            if (td->f[i].kind != TK_STR && td->f[i].kind != TK_OSTR)
                continue;
            ev_str *f = (ev_str *)((uint8_t *)&s->ev.u + td->f[i].off);
            ev_str saved = *f;
            *f = (ev_str){BIG, td->f[i].arg + 1};
            snprintf(ctx, sizeof ctx, "%s.%s of %u bytes", td->wire,
                     td->f[i].name, td->f[i].arg + 1);
            expect_refused(e, &s->ev, EV_ETOOBIG, 0, ctx);
            *f = (ev_str){BIG, 40000};
            expect_refused(e, &s->ev, EV_ETOOBIG, 0, ctx);
            *f = (ev_str){NULL, 3};
            snprintf(ctx, sizeof ctx, "%s.%s NULL with length 3", td->wire,
                     td->f[i].name);
            expect_refused(e, &s->ev, EV_ERANGE, EV_ETOOBIG, ctx);
            *f = saved;
        }
        free(s);
    }
    /* envelope strings: at most EV_MAX_ID_STR bytes */
    sample *s = hand_sample(0);
    ev_str *env_strs[] = {&s->ev.env.stream, &s->ev.env.correlation,
                          &s->ev.env.causation, &s->ev.env.actor,
                          &s->ev.env.idem_key};
    const char *names[] = {"stream", "correlation", "causation", "actor",
                           "idem_key"};
    for (size_t k = 0; k < NEL(env_strs); k++) {
        ev_str saved = *env_strs[k];
        *env_strs[k] = (ev_str){BIG, EV_MAX_ID_STR};
        snprintf(ctx, sizeof ctx, "envelope %s of %d bytes", names[k],
                 EV_MAX_ID_STR);
        expect_accepted(e, &s->ev, ctx);
        *env_strs[k] = (ev_str){BIG, EV_MAX_ID_STR + 1};
        snprintf(ctx, sizeof ctx, "envelope %s of %d bytes", names[k],
                 EV_MAX_ID_STR + 1);
        expect_refused(e, &s->ev, EV_ETOOBIG, 0, ctx);
        *env_strs[k] = saved;
    }
    free(s);
    ev_enc_free(e);
    CHECK_DONE();
}

Test(event, encode_refuses_enum_out_of_range)
{
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    char ctx[160];
    int n_enum = 0;
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        for (size_t i = 0; i < td->nf; i++) {
            if (td->f[i].kind != TK_ENUM)
                continue;
            n_enum++;
            sample *s = gen_sample(t, 2);
            uint8_t *v = (uint8_t *)&s->ev.u + td->f[i].off;
            int count = tenums[td->f[i].arg].count;
            *v = (uint8_t)(count - 1);
            snprintf(ctx, sizeof ctx, "%s.%s = %d (last)", td->wire,
                     td->f[i].name, count - 1);
            expect_accepted(e, &s->ev, ctx);
            int bad[] = {count, count + 1, 255};
            for (size_t k = 0; k < NEL(bad); k++) {
                *v = (uint8_t)bad[k];
                snprintf(ctx, sizeof ctx, "%s.%s = %d", td->wire, td->f[i].name,
                         bad[k]);
                expect_refused(e, &s->ev, EV_ERANGE, 0, ctx);
            }
            free(s);
        }
    }
    cr_expect_geq(n_enum, 1);
    ev_enc_free(e);
    CHECK_DONE();
}

Test(event, encode_refuses_too_many_lines)
{
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    char ctx[160];
    int n_lines = 0;
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        for (size_t i = 0; i < td->nf; i++) {
            if (td->f[i].kind != TK_LINES)
                continue;
            n_lines++;
            sample *s = gen_sample(t, 0); /* lines at the maximum count */
            ev_lines *l = (ev_lines *)((uint8_t *)&s->ev.u + td->f[i].off);
            cr_assert_eq(l->n, td->f[i].arg);
            snprintf(ctx, sizeof ctx, "%s.%s with %u lines", td->wire,
                     td->f[i].name, l->n);
            expect_accepted(e, &s->ev, ctx);
            for (uint32_t j = l->n; j < EV_MAX_LINES + 2; j++)
                s->lines[j] = s->lines[0];
            uint32_t bad[] = {td->f[i].arg + 1, EV_MAX_LINES + 1,
                              EV_MAX_LINES + 2};
            for (size_t k = 0; k < NEL(bad); k++) {
                l->n = bad[k];
                snprintf(ctx, sizeof ctx, "%s.%s with %u lines", td->wire,
                         td->f[i].name, l->n);
                expect_refused(e, &s->ev, EV_ERANGE, EV_ETOOBIG, ctx);
            }
            *l = (ev_lines){NULL, 1};
            snprintf(ctx, sizeof ctx, "%s.%s NULL with count 1", td->wire,
                     td->f[i].name);
            expect_refused(e, &s->ev, EV_ERANGE, 0, ctx);
            free(s);
        }
    }
    cr_expect_geq(n_lines, 1);
    ev_enc_free(e);
    CHECK_DONE();
}

Test(event, encode_refuses_unknown_type)
{
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    sample *s = hand_sample(8);
    int bad[] = {EV_T_UNKNOWN, EV_T_COUNT, EV_T_COUNT + 1, 1000};
    for (size_t k = 0; k < NEL(bad); k++) {
        s->ev.env.type = (ev_type)bad[k];
        char ctx[64];
        snprintf(ctx, sizeof ctx, "type %d", bad[k]);
        expect_refused(e, &s->ev, EV_ERANGE, EV_EFORMAT, ctx);
    }
    free(s);
    ev_enc_free(e);
    CHECK_DONE();
}

/* ------------------------------------------------- malformed records */

/* A record cut short with its stale trailer: the hash no longer matches,
 * or it is too short to be a record. */
Test(event, truncated_records_are_rejected)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    for (size_t i = 0; i < NEL(HAND); i++) {
        sample *s = hand_sample(i);
        size_t len;
        uint8_t *rec = encode_exact(e, &s->ev, &len);
        for (size_t n = 0; n < len; n++) {
            int rc = decode_copy(d, rec, n);
            CHECK(rc == EV_ETRUNC || rc == EV_EHASH,
                  "hand %zu (%s) cut to %zu of %zu bytes: %d (%s)", i,
                  ev_type_name(s->ev.env.type), n, len, rc, ev_strerror(rc));
        }
        free(rec);
        free(s);
    }
    /* generated samples of every type, including the largest records */
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        sample *s = gen_sample(t, 3);
        size_t len;
        uint8_t *rec = encode_exact(e, &s->ev, &len);
        for (size_t n = 0; n < len; n++) {
            int rc = decode_copy(d, rec, n);
            CHECK(rc == EV_ETRUNC || rc == EV_EHASH,
                  "%s cut to %zu of %zu bytes: %d (%s)",
                  ev_type_name((ev_type)t), n, len, rc, ev_strerror(rc));
        }
        free(rec);
        free(s);
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

/* A prefix of the body with a correct trailer: the parser must find that
 * the MessagePack array ends early (MessagePack is prefix-free, so no
 * proper prefix of a record is a complete record). */
Test(event, resealed_truncations_are_rejected_by_the_parser)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    for (int pass = 0; pass < 2; pass++) {
        size_t count = pass == 0 ? NEL(HAND) : (size_t)(EV_T_COUNT - 1);
        for (size_t i = 0; i < count; i++) {
            sample *s = pass == 0 ? hand_sample(i)
                                  : gen_sample((int)i + 1, (int)i % 4 + 2);
            size_t len;
            uint8_t *rec = encode_exact(e, &s->ev, &len);
            size_t body = len - EV_HASH_LEN;
            for (size_t k = 0; k < body; k++) {
                size_t rlen;
                uint8_t *r = seal(rec, k, &rlen);
                ev_event out;
                int rc = ev_decode(d, r, rlen, 0, &out);
                CHECK(rc == EV_ETRUNC,
                      "%s (sample %zu) body cut to %zu of %zu bytes and "
                      "resealed: %d (%s)",
                      ev_type_name(s->ev.env.type), i, k, body, rc,
                      ev_strerror(rc));
                free(r);
            }
            free(rec);
            free(s);
        }
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

/* One flipped bit anywhere, trailer included, breaks the hash. */
Test(event, every_flipped_bit_breaks_the_hash)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    for (size_t i = 0; i < NEL(HAND); i++) {
        sample *s = hand_sample(i);
        size_t len;
        uint8_t *rec = encode_exact(e, &s->ev, &len);
        uint8_t *c = exact(rec, len);
        for (size_t bit = 0; bit < len * 8; bit++) {
            c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            ev_event out;
            int rc = ev_decode(d, c, len, 0, &out);
            CHECK(rc == EV_EHASH, "%s: bit %zu of %zu flipped: %d (%s)",
                  ev_type_name(s->ev.env.type), bit, len * 8, rc,
                  ev_strerror(rc));
            rc = ev_verify_hash(d, c, len);
            CHECK(rc == EV_EHASH, "%s: bit %zu flipped: verify_hash %d",
                  ev_type_name(s->ev.env.type), bit, rc);
            c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        cr_expect_eq(ev_decode(d, c, len, 0, &(ev_event){0}), EV_OK,
                     "restored record no longer decodes");
        free(c);
        free(rec);
        free(s);
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1
#define FP16 "0123456789abcdef"

typedef struct rawcase {
    const char *desc;
    int slot; /* envelope element, or -1 for the array header */
    const uint8_t *p;
    size_t n;
    int want, want2;
} rawcase;

static const rawcase ENV_CASES[] = {
    {"array of 11", -1, RAW("\x9b"), EV_EFORMAT, 0},
    {"array of 13", -1, RAW("\x9d"), EV_EFORMAT, 0},
    {"map instead of the array", -1, RAW("\x8c"), EV_EFORMAT, 0},
    {"nil instead of the array", -1, RAW("\xc0"), EV_EFORMAT, 0},
    {"format 2", 0, RAW("\x02"), EV_EFORMAT, 0},
    {"format 0", 0, RAW("\x00"), EV_EFORMAT, 0},
    {"format as str", 0, RAW("\xa1" "1"), EV_EFORMAT, 0},
    {"prev_hash as bin31", 1, RAW("\xc4\x1f" "0123456789012345678901234567890"),
     EV_EFORMAT, 0},
    {"prev_hash as str32", 1,
     RAW("\xd9\x20" "01234567890123456789012345678901"), EV_EFORMAT, 0},
    {"id as bin15", 2, RAW("\xc4\x0f" "0123456789abcde"), EV_ERANGE, 0},
    {"id as bin17", 2, RAW("\xc4\x11" "0123456789abcdefg"), EV_ERANGE, 0},
    {"id as bin0", 2, RAW("\xc4\x00"), EV_ERANGE, 0},
    {"id as str16", 2, RAW("\xb0" FP16), EV_EWRONGTYPE, 0},
    {"id as nil", 2, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"id as uint", 2, RAW("\x07"), EV_EWRONGTYPE, 0},
    {"id as array", 2, RAW("\x90"), EV_EWRONGTYPE, 0},
    {"id as bin32 claiming 4 GiB", 2, RAW("\xc6\xff\xff\xff\xff"), EV_ETOOBIG,
     EV_ETRUNC},
    {"type as int", 3, RAW("\x07"), EV_EWRONGTYPE, 0},
    {"type as bin", 3, RAW("\xc4\x0b" "watch.added"), EV_EWRONGTYPE, 0},
    {"type as nil", 3, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"type as str32 claiming 4 GiB", 3, RAW("\xdb\xff\xff\xff\xff"),
     EV_ETOOBIG, EV_ETRUNC},
    {"version as str", 4, RAW("\xa1" "1"), EV_EWRONGTYPE, 0},
    {"version -1", 4, RAW("\xff"), EV_EWRONGTYPE, 0},
    {"version 65536", 4, RAW("\xce\x00\x01\x00\x00"), EV_ERANGE, 0},
    {"version 2^64-1", 4, RAW("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
     EV_ERANGE, 0},
    {"version as float", 4, RAW("\xca\x3f\x80\x00\x00"), EV_EWRONGTYPE, 0},
    {"version as nil", 4, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"stream as int", 5, RAW("\x2a"), EV_EWRONGTYPE, 0},
    {"stream as nil", 5, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"stream as bin", 5, RAW("\xc4\x01" "s"), EV_EWRONGTYPE, 0},
    {"stream as str32 claiming 4 GiB", 5, RAW("\xdb\xff\xff\xff\xff"),
     EV_ETOOBIG, EV_ETRUNC},
    {"stream as str16 claiming 65535 bytes", 5, RAW("\xda\xff\xff"),
     EV_ETRUNC, EV_ETOOBIG},
    {"recorded_at as str", 6, RAW("\xa3" "now"), EV_EWRONGTYPE, 0},
    {"recorded_at -1", 6, RAW("\xff"), EV_EWRONGTYPE, 0},
    {"recorded_at as int64 min", 6,
     RAW("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), EV_EWRONGTYPE, 0},
    {"recorded_at as float64", 6, RAW("\xcb\x41\xd9\x00\x00\x00\x00\x00\x00"),
     EV_EWRONGTYPE, 0},
    {"recorded_at as nil", 6, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"correlation as int", 7, RAW("\x01"), EV_EWRONGTYPE, 0},
    {"correlation as nil", 7, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"causation as int", 8, RAW("\x01"), EV_EWRONGTYPE, 0},
    {"causation as nil", 8, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"actor as int", 9, RAW("\x01"), EV_EWRONGTYPE, 0},
    {"actor as nil", 9, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"actor as array", 9, RAW("\x90"), EV_EWRONGTYPE, 0},
    {"idempotency as map", 10, RAW("\x80"), EV_EWRONGTYPE, 0},
    {"idempotency as str", 10, RAW("\xa1" "k"), EV_EWRONGTYPE, 0},
    {"idempotency as true", 10, RAW("\xc3"), EV_EWRONGTYPE, 0},
    {"idempotency []", 10, RAW("\x90"), EV_EFORMAT, 0},
    {"idempotency [key]", 10, RAW("\x91\xa1" "k"), EV_EFORMAT, 0},
    {"idempotency [key, fp, nil]", 10,
     RAW("\x93\xa1" "k" "\xc4\x10" FP16 "\xc0"), EV_EFORMAT, 0},
    {"idempotency [int, fp]", 10, RAW("\x92\x01\xc4\x10" FP16),
     EV_EWRONGTYPE, 0},
    {"idempotency [nil, fp]", 10, RAW("\x92\xc0\xc4\x10" FP16),
     EV_EWRONGTYPE, 0},
    {"idempotency [key, bin15]", 10,
     RAW("\x92\xa1" "k" "\xc4\x0f" "0123456789abcde"), EV_ERANGE, 0},
    {"idempotency [key, str16]", 10, RAW("\x92\xa1" "k" "\xb0" FP16),
     EV_EWRONGTYPE, 0},
    {"idempotency [key, nil]", 10, RAW("\x92\xa1" "k" "\xc0"), EV_EWRONGTYPE,
     0},
    {"idempotency as array32 claiming 4 Gi elements", 10,
     RAW("\xdd\xff\xff\xff\xff"), EV_ETOOBIG, EV_ETRUNC},
    {"idempotency as array16 claiming 65535 elements", 10,
     RAW("\xdc\xff\xff"), EV_ETRUNC, EV_ETOOBIG},
    {"payload as array", 11, RAW("\x90"), EV_EWRONGTYPE, 0},
    {"payload as nil", 11, RAW("\xc0"), EV_EWRONGTYPE, 0},
    {"payload as str", 11, RAW("\xa1" "p"), EV_EWRONGTYPE, 0},
    {"payload {}", 11, RAW("\x80"), EV_EFIELD, 0},
    {"payload as map32 claiming 4 Gi entries", 11,
     RAW("\xdf\xff\xff\xff\xff"), EV_ETOOBIG, EV_ETRUNC},
    {"payload as map16 claiming 65535 entries", 11, RAW("\xde\xff\xff"),
     EV_ETRUNC, EV_ETOOBIG},
    {"payload missing", 11, RAW(""), EV_ETRUNC, 0},
};

/* Envelope elements of the wrong type, size or shape (resealed). */
Test(event, malformed_envelopes_are_rejected)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    for (size_t i = 0; i < NEL(HAND); i += 3) {
        sample *s = hand_sample(i);
        for (size_t k = 0; k < NEL(ENV_CASES); k++) {
            const rawcase *c = &ENV_CASES[k];
            mut m = {.kind = c->slot < 0 ? M_ARRAY_HDR : M_SLOT,
                     .slot = c->slot, .field = -1, .raw = c->p,
                     .rawlen = c->n};
            char ctx[160];
            snprintf(ctx, sizeof ctx, "%s: %s", ev_type_name(s->ev.env.type),
                     c->desc);
            expect_mut(d, &s->ev, &m, c->want, c->want2, ctx);
        }
        free(s);
    }
    ev_dec_free(d);
    CHECK_DONE();
}

typedef struct wrongcase {
    int kind;
    const char *desc;
    const uint8_t *p;
    size_t n;
    int want, want2;
} wrongcase;

static const wrongcase WRONG[] = {
    {TK_U64, "str", RAW("\xa1" "x"), EV_EWRONGTYPE, 0},
    {TK_U64, "negative fixint", RAW("\xff"), EV_EWRONGTYPE, 0},
    {TK_U64, "int8 -5", RAW("\xd0\xfb"), EV_EWRONGTYPE, 0},
    {TK_U64, "nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
    {TK_U64, "true", RAW("\xc3"), EV_EWRONGTYPE, 0},
    {TK_U64, "float64", RAW("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
     EV_EWRONGTYPE, 0},
    {TK_U64, "bin", RAW("\xc4\x01\x00"), EV_EWRONGTYPE, 0},
    {TK_U64, "array", RAW("\x91\x01"), EV_EWRONGTYPE, 0},
    {TK_U64, "map", RAW("\x80"), EV_EWRONGTYPE, 0},
    {TK_OU64, "str", RAW("\xa1" "x"), EV_EWRONGTYPE, 0},
    {TK_OU64, "negative fixint", RAW("\xff"), EV_EWRONGTYPE, 0},
    {TK_OU64, "false", RAW("\xc2"), EV_EWRONGTYPE, 0},
    {TK_OU64, "float32", RAW("\xca\x00\x00\x00\x00"), EV_EWRONGTYPE, 0},
    {TK_I64, "str", RAW("\xa1" "x"), EV_EWRONGTYPE, 0},
    {TK_I64, "nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
    {TK_I64, "uint64 2^63", RAW("\xcf\x80\x00\x00\x00\x00\x00\x00\x00"),
     EV_ERANGE, 0},
    {TK_I64, "uint64 max", RAW("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
     EV_ERANGE, 0},
    {TK_I64, "float32", RAW("\xca\x00\x00\x00\x00"), EV_EWRONGTYPE, 0},
    {TK_I64, "true", RAW("\xc3"), EV_EWRONGTYPE, 0},
    {TK_I64, "map", RAW("\x80"), EV_EWRONGTYPE, 0},
    {TK_I64, "ext", RAW("\xd4\x01\x00"), EV_EWRONGTYPE, 0},
    {TK_STR, "fixint", RAW("\x05"), EV_EWRONGTYPE, 0},
    {TK_STR, "nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
    {TK_STR, "bin", RAW("\xc4\x01" "a"), EV_EWRONGTYPE, 0},
    {TK_STR, "array", RAW("\x91\xa1" "a"), EV_EWRONGTYPE, 0},
    {TK_STR, "str32 claiming 4 GiB", RAW("\xdb\xff\xff\xff\xff"), EV_ETOOBIG,
     EV_ETRUNC},
    {TK_STR, "str16 claiming 65535 bytes", RAW("\xda\xff\xff"), EV_ETRUNC,
     EV_ETOOBIG},
    {TK_OSTR, "fixint", RAW("\x05"), EV_EWRONGTYPE, 0},
    {TK_OSTR, "bin", RAW("\xc4\x01" "a"), EV_EWRONGTYPE, 0},
    {TK_OSTR, "true", RAW("\xc3"), EV_EWRONGTYPE, 0},
    {TK_OSTR, "map", RAW("\x80"), EV_EWRONGTYPE, 0},
    {TK_OSTR, "str32 claiming 4 GiB", RAW("\xdb\xff\xff\xff\xff"), EV_ETOOBIG,
     EV_ETRUNC},
    {TK_UUID, "bin15", RAW("\xc4\x0f" "0123456789abcde"), EV_ERANGE, 0},
    {TK_UUID, "bin17", RAW("\xc4\x11" "0123456789abcdefg"), EV_ERANGE, 0},
    {TK_UUID, "bin0", RAW("\xc4\x00"), EV_ERANGE, 0},
    {TK_UUID, "str16", RAW("\xb0" FP16), EV_EWRONGTYPE, 0},
    {TK_UUID, "nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
    {TK_UUID, "uint", RAW("\x01"), EV_EWRONGTYPE, 0},
    {TK_UUID, "bin32 claiming 4 GiB", RAW("\xc6\xff\xff\xff\xff"), EV_ETOOBIG,
     EV_ETRUNC},
    {TK_UUID, "bin16 claiming 65535 bytes", RAW("\xc5\xff\xff"), EV_ETRUNC,
     EV_ETOOBIG},
    {TK_ENUM, "unknown name", RAW("\xa5" "bogus"), EV_ERANGE, 0},
    {TK_ENUM, "empty name", RAW("\xa0"), EV_ERANGE, 0},
    {TK_ENUM, "int 0", RAW("\x00"), EV_EWRONGTYPE, 0},
    {TK_ENUM, "nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
    {TK_ENUM, "bin", RAW("\xc4\x04" "user"), EV_EWRONGTYPE, 0},
    {TK_ENUM, "str32 claiming 4 GiB", RAW("\xdb\xff\xff\xff\xff"), EV_ETOOBIG,
     EV_ETRUNC},
    {TK_LINES, "map", RAW("\x80"), EV_EWRONGTYPE, 0},
    {TK_LINES, "nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
    {TK_LINES, "str", RAW("\xa1" "l"), EV_EWRONGTYPE, 0},
    {TK_LINES, "array of ints", RAW("\x91\x01"), EV_EWRONGTYPE, 0},
    {TK_LINES, "array of arrays", RAW("\x91\x90"), EV_EWRONGTYPE, 0},
    {TK_LINES, "array of empty maps", RAW("\x91\x80"), EV_EFIELD, 0},
    {TK_LINES, "array32 claiming 4 Gi lines", RAW("\xdd\xff\xff\xff\xff"),
     EV_ETOOBIG, EV_ETRUNC},
    {TK_LINES, "array16 claiming 65535 lines", RAW("\xdc\xff\xff"), EV_ETRUNC,
     EV_ETOOBIG},
};

/* Builds a str16 of n 'x' bytes into buf (which must hold n + 3). */
static size_t str16_of(uint8_t *buf, size_t n)
{
    buf[0] = 0xda;
    buf[1] = (uint8_t)(n >> 8);
    buf[2] = (uint8_t)n;
    memset(buf + 3, 'x', n);
    return n + 3;
}

/* Payload values of the wrong type (resealed): every field of every type
 * and every field of an order line. */
Test(event, payload_values_of_the_wrong_type_are_rejected)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    static uint8_t buf[70000];
    char ctx[200];
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        sample *s = gen_sample(t, 3); /* optional values set, 3 lines */
        for (size_t i = 0; i < td->nf; i++) {
            const tfield *f = &td->f[i];
            for (size_t k = 0; k < NEL(WRONG); k++) {
                if (WRONG[k].kind != f->kind)
                    continue;
                mut m = {.kind = M_FIELD_RAW, .field = (int)i,
                         .raw = WRONG[k].p, .rawlen = WRONG[k].n};
                snprintf(ctx, sizeof ctx, "%s.%s as %s", td->wire, f->name,
                         WRONG[k].desc);
                expect_mut(d, &s->ev, &m, WRONG[k].want, WRONG[k].want2, ctx);
            }
            if (f->kind == TK_STR || f->kind == TK_OSTR) {
                /* one byte over the catalogue's maximum */
                mut m = {.kind = M_FIELD_RAW, .field = (int)i, .raw = buf,
                         .rawlen = str16_of(buf, f->arg + 1)};
                snprintf(ctx, sizeof ctx, "%s.%s of %u bytes", td->wire,
                         f->name, f->arg + 1);
                expect_mut(d, &s->ev, &m, EV_ETOOBIG, 0, ctx);
                m.rawlen = str16_of(buf, f->arg);
                snprintf(ctx, sizeof ctx, "%s.%s of %u bytes", td->wire,
                         f->name, f->arg);
                expect_mut(d, &s->ev, &m, EV_OK, 0, ctx);
            }
            if (f->kind == TK_ENUM) {
                /* a name from another set */
                int other = ((int)f->arg + 1) % EV_ENUMSET_COUNT;
                if (other != (int)f->arg) {
                    const char *nm = tenums[other].names[0];
                    buf[0] = (uint8_t)(0xa0 | strlen(nm));
                    memcpy(buf + 1, nm, strlen(nm));
                    mut m = {.kind = M_FIELD_RAW, .field = (int)i, .raw = buf,
                             .rawlen = 1 + strlen(nm)};
                    snprintf(ctx, sizeof ctx, "%s.%s as '%s'", td->wire,
                             f->name, nm);
                    expect_mut(d, &s->ev, &m, EV_ERANGE, 0, ctx);
                }
                /* a valid name with different case */
                const char *nm = tenums[f->arg].names[0];
                buf[0] = (uint8_t)(0xa0 | strlen(nm));
                for (size_t j = 0; j < strlen(nm); j++)
                    buf[1 + j] = (uint8_t)(nm[j] >= 'a' && nm[j] <= 'z'
                                               ? nm[j] - 32 : nm[j]);
                mut m = {.kind = M_FIELD_RAW, .field = (int)i, .raw = buf,
                         .rawlen = 1 + strlen(nm)};
                snprintf(ctx, sizeof ctx, "%s.%s in upper case", td->wire,
                         f->name);
                expect_mut(d, &s->ev, &m, EV_ERANGE, 0, ctx);
            }
            if (f->kind == TK_OU64) {
                /* nil is this kind's zero */
                mut m = {.kind = M_FIELD_RAW, .field = (int)i,
                         .raw = (const uint8_t *)"\xc0", .rawlen = 1};
                snprintf(ctx, sizeof ctx, "%s.%s as nil", td->wire, f->name);
                expect_mut(d, &s->ev, &m, EV_OK, 0, ctx);
            }
            if (f->kind == TK_LINES) {
                const ev_lines *l =
                    (const ev_lines *)((uint8_t *)&s->ev.u + f->off);
                cr_assert_geq(l->n, 2u);
                for (size_t j = 0; j < N_TLINE; j++) {
                    for (size_t k = 0; k < NEL(WRONG); k++) {
                        if (WRONG[k].kind != tline[j].kind)
                            continue;
                        mut m = {.kind = M_FIELD_RAW, .field = (int)j,
                                 .in_line = 1, .line = 1, .raw = WRONG[k].p,
                                 .rawlen = WRONG[k].n};
                        snprintf(ctx, sizeof ctx, "%s.%s[1].%s as %s",
                                 td->wire, f->name, tline[j].name,
                                 WRONG[k].desc);
                        expect_mut(d, &s->ev, &m, WRONG[k].want,
                                   WRONG[k].want2, ctx);
                    }
                }
                static const struct {
                    const char *desc;
                    const uint8_t *p;
                    size_t n;
                    int want, want2;
                } LINE_CASES[] = {
                    {"array", RAW("\x94\x00\x00\x00\x00"), EV_EWRONGTYPE, 0},
                    {"nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
                    {"empty map", RAW("\x80"), EV_EFIELD, 0},
                    {"map32 claiming 4 Gi entries",
                     RAW("\xdf\xff\xff\xff\xff"), EV_ETOOBIG, EV_ETRUNC},
                };
                for (size_t k = 0; k < NEL(LINE_CASES); k++) {
                    mut m = {.kind = M_LINE_RAW, .field = -1, .in_line = 1,
                             .line = 1, .raw = LINE_CASES[k].p,
                             .rawlen = LINE_CASES[k].n};
                    snprintf(ctx, sizeof ctx, "%s.%s[1] as %s", td->wire,
                             f->name, LINE_CASES[k].desc);
                    expect_mut(d, &s->ev, &m, LINE_CASES[k].want,
                               LINE_CASES[k].want2, ctx);
                }
            }
        }
        free(s);
    }
    ev_dec_free(d);
    CHECK_DONE();
}

/* Unknown, duplicate and missing payload fields, the pii map's shape, and
 * the same for the fields of an order line (resealed). */
Test(event, unknown_duplicate_and_missing_fields_are_rejected)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    char ctx[200];
    const uint8_t *nil = (const uint8_t *)"\xc0";
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        sample *s = gen_sample(t, 3);
        for (size_t i = 0; i < td->nf; i++) {
            const char *fn = td->f[i].name;
            mut m = {.field = (int)i};
            m.kind = M_FIELD_OMIT;
            snprintf(ctx, sizeof ctx, "%s without %s", td->wire, fn);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            m.kind = M_FIELD_DUP;
            snprintf(ctx, sizeof ctx, "%s with %s twice", td->wire, fn);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            m.kind = M_FIELD_RENAME;
            m.name = "zz_unknown";
            snprintf(ctx, sizeof ctx, "%s with %s renamed", td->wire, fn);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            char upper[64];
            snprintf(upper, sizeof upper, "%s", fn);
            upper[0] = (char)(upper[0] - 32);
            m.name = upper;
            snprintf(ctx, sizeof ctx, "%s with %s capitalised", td->wire, fn);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            char longer[72];
            snprintf(longer, sizeof longer, "%sx", fn);
            m.name = longer;
            snprintf(ctx, sizeof ctx, "%s with %s + 'x'", td->wire, fn);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            char shorter[64];
            snprintf(shorter, sizeof shorter, "%.*s", (int)strlen(fn) - 1, fn);
            m.name = shorter;
            snprintf(ctx, sizeof ctx, "%s with %s cut by one", td->wire, fn);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            if (td->n_pii) {
                m.kind = M_FIELD_MOVE;
                snprintf(ctx, sizeof ctx, "%s with %s in the wrong section",
                         td->wire, fn);
                expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            }
            static const struct {
                const char *desc;
                const uint8_t *p;
                size_t n;
                int want, want2;
            } KEYS[] = {
                {"int", RAW("\x01"), EV_EWRONGTYPE, 0},
                {"nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
                {"bin", RAW("\xc4\x02" "id"), EV_EWRONGTYPE, 0},
                {"str32 claiming 4 GiB", RAW("\xdb\xff\xff\xff\xff"),
                 EV_ETOOBIG, EV_ETRUNC},
            };
            for (size_t k = 0; k < NEL(KEYS); k++) {
                mut mk = {.kind = M_FIELD_RAWKEY, .field = (int)i,
                          .raw = KEYS[k].p, .rawlen = KEYS[k].n};
                snprintf(ctx, sizeof ctx, "%s with the key of %s as %s",
                         td->wire, fn, KEYS[k].desc);
                expect_mut(d, &s->ev, &mk, KEYS[k].want, KEYS[k].want2, ctx);
            }
        }
        mut m = {.kind = M_EXTRA, .field = -1, .name = "zz_extra", .raw = nil,
                 .rawlen = 1};
        snprintf(ctx, sizeof ctx, "%s with an extra field", td->wire);
        expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
        m.name = "";
        snprintf(ctx, sizeof ctx, "%s with an empty key", td->wire);
        expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
        m = (mut){.kind = M_REVERSE, .field = -1};
        snprintf(ctx, sizeof ctx, "%s with fields in reverse order", td->wire);
        expect_mut(d, &s->ev, &m, EV_OK, 0, ctx);
        {
            /* and the values still land in the right fields */
            size_t len;
            uint8_t *rec = tbuild(&s->ev, PREV, &m, &len);
            ev_event out;
            if (ev_decode(d, rec, len, 0, &out) == EV_OK)
                expect_fields(td->f, td->nf, &s->ev.u, &out.u, ctx);
            free(rec);
        }
        for (int seed = 0; seed < 24; seed++) {
            m = (mut){.kind = M_SHUFFLE, .slot = seed, .field = -1};
            snprintf(ctx, sizeof ctx, "%s with fields shuffled (seed %d)",
                     td->wire, seed);
            size_t len;
            uint8_t *rec = tbuild(&s->ev, PREV, &m, &len);
            ev_event out;
            int rc = ev_decode(d, rec, len, 0, &out);
            CHECK(rc == EV_OK, "%s: %d (%s)", ctx, rc, ev_strerror(rc));
            if (rc == EV_OK)
                expect_fields(td->f, td->nf, &s->ev.u, &out.u, ctx);
            free(rec);
        }
        if (td->n_pii) {
            m = (mut){.kind = M_PII_OMIT, .field = -1};
            snprintf(ctx, sizeof ctx, "%s without pii", td->wire);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            m.kind = M_PII_DUP;
            snprintf(ctx, sizeof ctx, "%s with pii twice", td->wire);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            m = (mut){.kind = M_EXTRA_PII, .field = -1, .name = "zz_extra",
                      .raw = nil, .rawlen = 1};
            snprintf(ctx, sizeof ctx, "%s with an extra pii field", td->wire);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            m.name = "pii";
            m.raw = (const uint8_t *)"\x80";
            snprintf(ctx, sizeof ctx, "%s with pii inside pii", td->wire);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
            static const struct {
                const char *desc;
                const uint8_t *p;
                size_t n;
                int want, want2;
            } PII[] = {
                {"an array", RAW("\x90"), EV_EWRONGTYPE, 0},
                {"nil", RAW("\xc0"), EV_EWRONGTYPE, 0},
                {"a string", RAW("\xa1" "x"), EV_EWRONGTYPE, 0},
                {"an empty map", RAW("\x80"), EV_EFIELD, 0},
                {"map32 claiming 4 Gi entries", RAW("\xdf\xff\xff\xff\xff"),
                 EV_ETOOBIG, EV_ETRUNC},
                {"map16 claiming 65535 entries", RAW("\xde\xff\xff"),
                 EV_ETRUNC, EV_ETOOBIG},
            };
            for (size_t k = 0; k < NEL(PII); k++) {
                m = (mut){.kind = M_PII_RAW, .field = -1, .raw = PII[k].p,
                          .rawlen = PII[k].n};
                snprintf(ctx, sizeof ctx, "%s with pii as %s", td->wire,
                         PII[k].desc);
                expect_mut(d, &s->ev, &m, PII[k].want, PII[k].want2, ctx);
            }
        } else {
            m = (mut){.kind = M_EXTRA, .field = -1, .name = "pii",
                      .raw = (const uint8_t *)"\x80", .rawlen = 1};
            snprintf(ctx, sizeof ctx, "%s (no personal data) with pii",
                     td->wire);
            expect_mut(d, &s->ev, &m, EV_EFIELD, 0, ctx);
        }
        /* order lines */
        for (size_t i = 0; i < td->nf; i++) {
            if (td->f[i].kind != TK_LINES)
                continue;
            for (size_t j = 0; j < N_TLINE; j++) {
                mut ml = {.field = (int)j, .in_line = 1, .line = 1};
                ml.kind = M_FIELD_OMIT;
                snprintf(ctx, sizeof ctx, "%s line without %s", td->wire,
                         tline[j].name);
                expect_mut(d, &s->ev, &ml, EV_EFIELD, 0, ctx);
                ml.kind = M_FIELD_DUP;
                snprintf(ctx, sizeof ctx, "%s line with %s twice", td->wire,
                         tline[j].name);
                expect_mut(d, &s->ev, &ml, EV_EFIELD, 0, ctx);
                ml.kind = M_FIELD_RENAME;
                ml.name = "zz_unknown";
                snprintf(ctx, sizeof ctx, "%s line with %s renamed", td->wire,
                         tline[j].name);
                expect_mut(d, &s->ev, &ml, EV_EFIELD, 0, ctx);
            }
            mut ml = {.kind = M_EXTRA, .field = -1, .in_line = 1, .line = 2,
                      .name = "zz_extra", .raw = nil, .rawlen = 1};
            snprintf(ctx, sizeof ctx, "%s line with an extra field", td->wire);
            expect_mut(d, &s->ev, &ml, EV_EFIELD, 0, ctx);
            ml = (mut){.kind = M_REVERSE, .field = -1, .in_line = 1, .line = 0};
            snprintf(ctx, sizeof ctx, "%s line in reverse order", td->wire);
            expect_mut(d, &s->ev, &ml, EV_OK, 0, ctx);
            for (int seed = 0; seed < 8; seed++) {
                ml = (mut){.kind = M_SHUFFLE, .slot = seed, .field = -1,
                           .in_line = 1, .line = 2};
                snprintf(ctx, sizeof ctx, "%s line shuffled (seed %d)",
                         td->wire, seed);
                expect_mut(d, &s->ev, &ml, EV_OK, 0, ctx);
            }

            /* more lines than the catalogue allows */
            ev_lines *l = (ev_lines *)((uint8_t *)&s->ev.u + td->f[i].off);
            ev_lines saved = *l;
            for (uint32_t j = l->n; j < EV_MAX_LINES + 2; j++)
                s->lines[j] = s->lines[0];
            l->v = s->lines;
            l->n = td->f[i].arg;
            snprintf(ctx, sizeof ctx, "%s with %u lines", td->wire, l->n);
            expect_mut(d, &s->ev, NULL, EV_OK, 0, ctx);
            l->n = td->f[i].arg + 1;
            snprintf(ctx, sizeof ctx, "%s with %u lines", td->wire, l->n);
            expect_mut(d, &s->ev, NULL, EV_ETOOBIG, EV_ERANGE, ctx);
            *l = saved;
        }
        free(s);
    }
    ev_dec_free(d);
    CHECK_DONE();
}

/* A value header cut short at the very end of the body (resealed): the
 * count or length bytes it needs are missing. The record's trailer follows,
 * so a reader that takes them anyway reads the hash as MessagePack. */
Test(event, headers_cut_at_the_end_of_the_body)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    static const struct {
        int kind; /* -1: any payload position (unknown type) */
        const uint8_t *p;
        size_t n;
    } CUT[] = {
        {TK_STR, RAW("\xd9")},          {TK_STR, RAW("\xda")},
        {TK_STR, RAW("\xda\x00")},      {TK_STR, RAW("\xdb")},
        {TK_STR, RAW("\xdb\x00\x00\x00")},
        {TK_STR, RAW("\xd9\x05" "abc")}, {TK_OSTR, RAW("\xd9")},
        {TK_OSTR, RAW("\xdb\x00\x00")},  {TK_ENUM, RAW("\xda\x00")},
        {TK_ENUM, RAW("\xa5" "sal")},    {TK_UUID, RAW("\xc4")},
        {TK_UUID, RAW("\xc5\x00")},      {TK_UUID, RAW("\xc6\x00\x00\x00")},
        {TK_UUID, RAW("\xc4\x10" "0123")},
        {TK_U64, RAW("\xcc")},           {TK_U64, RAW("\xcd\x00")},
        {TK_U64, RAW("\xce\x00\x00\x00")},
        {TK_U64, RAW("\xcf\x00\x00\x00\x00\x00\x00\x00")},
        {TK_OU64, RAW("\xcd")},          {TK_I64, RAW("\xd0")},
        {TK_I64, RAW("\xd1\x00")},       {TK_I64, RAW("\xd2\x00\x00")},
        {TK_I64, RAW("\xd3\x00\x00\x00\x00\x00\x00\x00")},
        {TK_I64, RAW("\xcf\x00")},       {TK_LINES, RAW("\xdc")},
        {TK_LINES, RAW("\xdc\x00")},     {TK_LINES, RAW("\xdd\x00\x00\x00")},
        {TK_LINES, RAW("\x91\xde")},     {TK_LINES, RAW("\x91\xdf\x00")},
        {-1, RAW("\xde")},               {-1, RAW("\xde\x00")},
        {-1, RAW("\xdf")},               {-1, RAW("\xdf\x00\x00\x00")},
        {-1, RAW("\xdc")},               {-1, RAW("\xdd\x00\x00")},
        {-1, RAW("\xd9")},               {-1, RAW("\xdb\x00")},
        {-1, RAW("\xc4")},               {-1, RAW("\xc6\x00\x00\x00")},
        {-1, RAW("\xc7")},               {-1, RAW("\xc8\x00")},
        {-1, RAW("\xc9\x00\x00\x00")},   {-1, RAW("\xc7\x01")},
        {-1, RAW("\xd4")},               {-1, RAW("\xd8\x01")},
        {-1, RAW("\xcb\x00")},           {-1, RAW("\xca")},
        {-1, RAW("\xcf")},               {-1, RAW("\x81\xa1" "k" "\xde")},
        {-1, RAW("\x81\xa1" "k" "\xdd\x00")},
    };
    char ctx[200];
    for (size_t k = 0; k < NEL(CUT); k++) {
        if (CUT[k].kind >= 0)
            continue;
        sample *s = hand_sample(k % NEL(HAND));
        mut m = {.kind = M_SLOT, .slot = 11, .field = -1, .raw = CUT[k].p,
                 .rawlen = CUT[k].n};
        if (CUT[k].p[0] == 0xde || CUT[k].p[0] == 0xdf) {
            /* a known type's payload must be a map */
            snprintf(ctx, sizeof ctx, "%s payload cut to %zu bytes (0x%02x...)",
                     ev_type_name(s->ev.env.type), CUT[k].n, CUT[k].p[0]);
            expect_mut(d, &s->ev, &m, EV_ETRUNC, 0, ctx);
        }
        m.type_name = "integration.cut";
        m.has_version = 1;
        m.version = 1;
        snprintf(ctx, sizeof ctx, "unknown payload cut to %zu bytes (0x%02x...)",
                 CUT[k].n, CUT[k].p[0]);
        expect_mut(d, &s->ev, &m, EV_ETRUNC, 0, ctx);
        free(s);
    }
    /* the value of the last field written (the last one of the pii map,
     * or of the payload), cut short */
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        sample *s = gen_sample(t, 2);
        for (size_t i = 0; i < td->nf; i++) {
            const tfield *f = &td->f[i];
            bool last = true;
            for (size_t j = i + 1; j < td->nf; j++)
                if (td->f[j].sec == f->sec)
                    last = false;
            if (!last || (td->n_pii && f->sec == TS_P))
                continue;
            for (size_t k = 0; k < NEL(CUT); k++) {
                if (CUT[k].kind != f->kind &&
                    !(f->kind == TK_OU64 && CUT[k].kind == TK_U64) &&
                    !(f->kind == TK_OSTR && CUT[k].kind == TK_STR))
                    continue;
                if (f->kind == TK_U64 && CUT[k].kind == TK_I64)
                    continue;
                mut m = {.kind = M_FIELD_RAW, .field = (int)i,
                         .raw = CUT[k].p, .rawlen = CUT[k].n};
                snprintf(ctx, sizeof ctx, "%s.%s (last) cut to %zu bytes "
                         "(0x%02x...)", td->wire, f->name, CUT[k].n,
                         CUT[k].p[0]);
                expect_mut(d, &s->ev, &m, EV_ETRUNC, 0, ctx);
            }
        }
        /* a type whose last field is not of the kinds above still gets an
         * unfinished extra entry */
        static const uint8_t *cuts[] = {(const uint8_t *)"\xde",
                                        (const uint8_t *)"\xdc",
                                        (const uint8_t *)"\xda"};
        for (size_t k = 0; k < NEL(cuts); k++) {
            mut m = {.kind = td->n_pii ? M_EXTRA_PII : M_EXTRA, .field = -1,
                     .name = "zz", .raw = cuts[k], .rawlen = 1};
            snprintf(ctx, sizeof ctx, "%s extra entry cut (0x%02x)", td->wire,
                     cuts[k][0]);
            expect_mut(d, &s->ev, &m, EV_ETRUNC, EV_EFIELD, ctx);
        }
        free(s);
    }
    ev_dec_free(d);
    CHECK_DONE();
}

/* Bytes after the record's array. */
Test(event, trailing_bytes_are_rejected)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    static uint8_t zeros[100];
    for (size_t i = 0; i < NEL(HAND); i++) {
        sample *s = hand_sample(i);
        size_t len;
        uint8_t *rec = encode_exact(e, &s->ev, &len);
        const struct {
            const char *desc;
            const uint8_t *p;
            size_t n;
        } tails[] = {
            {"nil", (const uint8_t *)"\xc0", 1},
            {"100 zero bytes", zeros, sizeof zeros},
            {"a copy of the record", rec, len - 32},
            {"the reserved byte", (const uint8_t *)"\xc1", 1},
        };
        for (size_t k = 0; k < NEL(tails); k++) {
            mut m = {.kind = M_TRAILING, .field = -1, .raw = tails[k].p,
                     .rawlen = tails[k].n};
            char ctx[128];
            snprintf(ctx, sizeof ctx, "%s followed by %s",
                     ev_type_name(s->ev.env.type), tails[k].desc);
            expect_mut(d, &s->ev, &m, EV_ETRAILING, 0, ctx);
        }
        free(rec);
        free(s);
    }
    ev_enc_free(e);
    ev_dec_free(d);
    CHECK_DONE();
}

/* An unknown-type record whose payload is a bin32 of `payload` bytes. */
static uint8_t *unknown_with_bin(size_t payload, size_t *len)
{
    sample *s = hand_sample(2);
    uint8_t *raw = malloc(5 + payload);
    cr_assert_not_null(raw);
    raw[0] = 0xc6;
    raw[1] = (uint8_t)(payload >> 24);
    raw[2] = (uint8_t)(payload >> 16);
    raw[3] = (uint8_t)(payload >> 8);
    raw[4] = (uint8_t)payload;
    memset(raw + 5, 0x42, payload);
    mut m = {.kind = M_SLOT, .slot = 11, .field = -1, .raw = raw,
             .rawlen = 5 + payload, .type_name = "integration.blob",
             .has_version = 1, .version = 1};
    uint8_t *rec = tbuild(&s->ev, PREV, &m, len);
    free(raw);
    free(s);
    return rec;
}

Test(event, records_over_the_size_limit_are_rejected)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    size_t base;
    uint8_t *r0 = unknown_with_bin(0, &base);
    free(r0);
    size_t fill = EV_MAX_RECORD - base;
    size_t len;
    uint8_t *rec = unknown_with_bin(fill, &len);
    cr_assert_eq(len, (size_t)EV_MAX_RECORD);
    ev_event out;
    cr_expect_eq(ev_decode(d, rec, len, 0, &out), EV_OK,
                 "a record of exactly EV_MAX_RECORD bytes is allowed");
    free(rec);
    rec = unknown_with_bin(fill + 1, &len);
    cr_assert_eq(len, (size_t)EV_MAX_RECORD + 1);
    cr_expect_eq(ev_decode(d, rec, len, 0, &out), EV_ETOOBIG);
    cr_expect_eq(ev_verify_hash(d, rec, len), EV_ETOOBIG);
    free(rec);
    rec = unknown_with_bin(3 * EV_MAX_RECORD, &len);
    cr_expect_eq(ev_decode(d, rec, len, 0, &out), EV_ETOOBIG);
    free(rec);
    ev_dec_free(d);
}

/* Unknown types, and known types at a version this build does not know,
 * decode as EV_T_UNKNOWN with the envelope filled. */
static void pack_odd_payload(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 10);
    tp_cstr(&pk, "issue");
    tp_cstr(&pk, "WS-17");
    tp_cstr(&pk, "values");
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_int64(&pk, -2);
    msgpack_pack_double(&pk, 3.5);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_float(&pk, 0.25f);
    msgpack_pack_map(&pk, 1);
    tp_cstr(&pk, "deep");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    tp_cstr(&pk, "bin");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\x00\x01\x02", 3);
    tp_cstr(&pk, "fixext4");
    msgpack_pack_ext(&pk, 4, 7);
    msgpack_pack_ext_body(&pk, "abcd", 4);
    tp_cstr(&pk, "ext8");
    msgpack_pack_ext(&pk, 5, -1);
    msgpack_pack_ext_body(&pk, "abcde", 5);
    tp_cstr(&pk, "ext16");
    msgpack_pack_ext(&pk, 300, 1);
    char big[300];
    memset(big, 'e', sizeof big);
    msgpack_pack_ext_body(&pk, big, sizeof big);
    tp_cstr(&pk, "exts");
    /* every fixext size, ext8/16/32 and both floats, then a marker: a
     * wrong skip length for any of them misplaces everything after it */
    static const size_t ext_sizes[] = {1, 2, 4, 8, 16, 0, 3, 255, 256};
    msgpack_pack_array(&pk, NEL(ext_sizes) + 4);
    for (size_t k = 0; k < NEL(ext_sizes); k++) {
        msgpack_pack_ext(&pk, ext_sizes[k], (int8_t)k);
        if (ext_sizes[k])
            msgpack_pack_ext_body(&pk, big, ext_sizes[k]);
    }
    msgpack_sbuffer_write(sb, "\xc9\x00\x00\x00\x02\x05" "ab", 8); /* ext32 */
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, -2.25);
    tp_cstr(&pk, "end");
    tp_cstr(&pk, "big");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    tp_cstr(&pk, "neg");
    msgpack_pack_int64(&pk, INT64_MIN);
    tp_cstr(&pk, "str16");
    tp_str(&pk, big, sizeof big);
    msgpack_pack_uint64(&pk, 5); /* a non-string key */
    msgpack_pack_array(&pk, 0);
}

static void expect_unknown(ev_dec *d, const sample *s, const mut *m,
                           const char *name, unsigned version, const char *ctx)
{
    size_t len;
    uint8_t *rec = tbuild(&s->ev, PREV, m, &len);
    uint8_t *c = exact(rec, len);
    free(rec);
    ev_event out;
    memset(&out, 0xa5, sizeof out);
    int rc = ev_decode(d, c, len, 777, &out);
    CHECK(rc == EV_OK, "%s: %d (%s)", ctx, rc, ev_strerror(rc));
    if (rc == EV_OK) {
        expect_type_name(&out.env, name, strlen(name), version, EV_T_UNKNOWN,
                         ctx);
        expect_env_common(&s->ev.env, &out.env, PREV, c, len, 777, ctx);
    }
    free(c);
}

Test(event, unknown_types_and_newer_versions_decode_as_unknown)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    msgpack_sbuffer odd;
    msgpack_sbuffer_init(&odd);
    pack_odd_payload(&odd);
    char ctx[200];

    for (size_t i = 0; i < 4; i++) {
        sample *s = hand_sample(i * 5);
        const char *names[] = {"integration.jira_created", "", "order.place",
                               "order.placedx", "ORDER.PLACED", "watch",
                               "x.y.z.w"};
        for (size_t k = 0; k < NEL(names); k++) {
            mut m = {.kind = M_SLOT, .slot = 11, .field = -1,
                     .raw = (const uint8_t *)odd.data, .rawlen = odd.size,
                     .type_name = names[k], .has_version = 1, .version = 1};
            snprintf(ctx, sizeof ctx, "type '%s'", names[k]);
            expect_unknown(d, s, &m, names[k], 1, ctx);
            m.version = 3;
            expect_unknown(d, s, &m, names[k], 3, ctx);
        }
        free(s);
    }

    /* every known type at a newer version: with its own (v1) payload, an
     * unrelated one, and an empty map */
    for (int t = EV_T_WATCH_ADDED; t < EV_T_COUNT; t++) {
        const ttype *td = tdesc(t);
        sample *s = gen_sample(t, 2);
        unsigned versions[] = {td->version + 1, 99, UINT16_MAX};
        for (size_t k = 0; k < NEL(versions); k++) {
            mut m = {.kind = M_NONE, .field = -1, .has_version = 1,
                     .version = versions[k]};
            snprintf(ctx, sizeof ctx, "%s v%u", td->wire, versions[k]);
            expect_unknown(d, s, &m, td->wire, versions[k], ctx);
            m.kind = M_SLOT;
            m.slot = 11;
            m.raw = (const uint8_t *)odd.data;
            m.rawlen = odd.size;
            snprintf(ctx, sizeof ctx, "%s v%u, other payload", td->wire,
                     versions[k]);
            expect_unknown(d, s, &m, td->wire, versions[k], ctx);
            m.raw = (const uint8_t *)"\x80";
            m.rawlen = 1;
            snprintf(ctx, sizeof ctx, "%s v%u, empty payload", td->wire,
                     versions[k]);
            expect_unknown(d, s, &m, td->wire, versions[k], ctx);
        }
        free(s);
    }

    /* A skipped payload is still checked: it must be one complete value
     * inside the record. */
    sample *s = hand_sample(1);
    static const rawcase BAD[] = {
        {"a map claiming one more entry", 11, RAW("\x82\xa1" "a" "\x01"),
         EV_ETRUNC, 0},
        {"a str cut short", 11, RAW("\x81\xa1" "a" "\xa5" "ab"), EV_ETRUNC,
         0},
        {"the reserved byte 0xc1", 11, RAW("\x81\xa1" "a" "\xc1"), EV_EFORMAT,
         0},
        {"an ext32 claiming 4 GiB", 11,
         RAW("\x81\xa1" "a" "\xc9\xff\xff\xff\xff\x01"), EV_ETRUNC,
         EV_ETOOBIG},
        {"a bin32 claiming 4 GiB", 11, RAW("\x81\xa1" "a" "\xc6\xff\xff\xff\xff"),
         EV_ETOOBIG, EV_ETRUNC},
        {"a str32 claiming 4 GiB", 11, RAW("\x81\xa1" "a" "\xdb\xff\xff\xff\xff"),
         EV_ETOOBIG, EV_ETRUNC},
        {"an array32 claiming 4 Gi elements", 11,
         RAW("\x81\xa1" "a" "\xdd\xff\xff\xff\xff"), EV_ETOOBIG, EV_ETRUNC},
        {"a map32 claiming 4 Gi entries", 11, RAW("\xdf\xff\xff\xff\xff"),
         EV_ETOOBIG, EV_ETRUNC},
        {"a fixext16 cut short", 11, RAW("\x81\xa1" "a" "\xd8\x01" "abc"),
         EV_ETRUNC, 0},
        {"a float64 cut short", 11, RAW("\x81\xa1" "a" "\xcb\x00\x00"),
         EV_ETRUNC, 0},
        {"a value followed by another", 11, RAW("\x80\x80"), EV_ETRAILING, 0},
        {"nothing", 11, RAW(""), EV_ETRUNC, 0},
    };
    for (size_t k = 0; k < NEL(BAD); k++) {
        mut m = {.kind = M_SLOT, .slot = 11, .field = -1, .raw = BAD[k].p,
                 .rawlen = BAD[k].n, .type_name = "integration.x",
                 .has_version = 1, .version = 1};
        snprintf(ctx, sizeof ctx, "unknown type with %s", BAD[k].desc);
        expect_mut(d, &s->ev, &m, BAD[k].want, BAD[k].want2, ctx);
        m.type_name = NULL;
        m.version = 99;
        snprintf(ctx, sizeof ctx, "newer version with %s", BAD[k].desc);
        expect_mut(d, &s->ev, &m, BAD[k].want, BAD[k].want2, ctx);
    }
    /* envelope errors are still errors for unknown types */
    mut m = {.kind = M_SLOT, .slot = 5, .field = -1,
             .raw = (const uint8_t *)"\x2a", .rawlen = 1,
             .type_name = "integration.x", .has_version = 1, .version = 1};
    expect_mut(d, &s->ev, &m, EV_EWRONGTYPE, 0, "unknown type, stream as int");
    m = (mut){.kind = M_TRAILING, .field = -1, .raw = (const uint8_t *)"\xc0",
              .rawlen = 1, .type_name = "integration.x", .has_version = 1,
              .version = 1};
    expect_mut(d, &s->ev, &m, EV_ETRAILING, 0, "unknown type, trailing nil");
    free(s);
    msgpack_sbuffer_destroy(&odd);
    ev_dec_free(d);
    CHECK_DONE();
}

/* Nesting: moderate nesting in an unknown payload is skipped; absurd
 * nesting (200,000 levels) is refused or skipped but never overflows the
 * stack; a nested value where a known field expects a scalar is refused. */
Test(event, deeply_nested_unknown_payloads)
{
    ev_dec *d = ev_dec_new();
    cr_assert(d);
    sample *s = hand_sample(3);
    size_t depth = 200000;
    uint8_t *raw = malloc(depth + 8);
    cr_assert_not_null(raw);
    /* {"a": [[[ ... nil ... ]]]} */
    size_t n = 0;
    raw[n++] = 0x81;
    raw[n++] = 0xa1;
    raw[n++] = 'a';
    size_t nest[] = {4, depth};
    for (size_t k = 0; k < NEL(nest); k++) {
        size_t m0 = n;
        memset(raw + m0, 0x91, nest[k]);
        raw[m0 + nest[k]] = 0xc0;
        mut m = {.kind = M_SLOT, .slot = 11, .field = -1, .raw = raw,
                 .rawlen = m0 + nest[k] + 1, .type_name = "integration.deep",
                 .has_version = 1, .version = 1};
        size_t len;
        uint8_t *rec = tbuild(&s->ev, PREV, &m, &len);
        ev_event out;
        int rc = ev_decode(d, rec, len, 0, &out);
        if (k == 0)
            cr_expect_eq(rc, EV_OK, "nesting %zu: %d", nest[k], rc);
        else
            cr_expect(known_rc(rc), "nesting %zu: %d", nest[k], rc);
        free(rec);
        /* and as the value of a known field */
        mut mf = {.kind = M_FIELD_RAW, .field = 1, .raw = raw + m0,
                  .rawlen = nest[k] + 1};
        rec = tbuild(&s->ev, PREV, &mf, &len);
        rc = ev_decode(d, rec, len, 0, &out);
        cr_expect(rc != EV_OK && known_rc(rc), "nested field %zu: %d",
                  nest[k], rc);
        free(rec);
    }
    free(raw);
    free(s);
    ev_dec_free(d);
}

/* ------------------------------------------------------------ fuzzing */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

/* Random mutations of valid records, resealed: the decoder either refuses
 * with one of its error codes, or accepts a record whose content is valid
 * (it re-encodes, and the re-encoded record decodes to the same event). */
Test(event, fuzz_resealed_mutations)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new(), *d2 = ev_dec_new();
    cr_assert(e && d && d2);
    blob bases[NEL(HAND) + 1];
    size_t nb = 0, maxn = 0;
    for (size_t i = 0; i < NEL(HAND); i++) {
        sample *s = hand_sample(i);
        size_t len;
        uint8_t *rec = encode_exact(e, &s->ev, &len);
        bases[nb++] = (blob){rec, len - 32};
        free(s);
    }
    {
        msgpack_sbuffer odd;
        msgpack_sbuffer_init(&odd);
        pack_odd_payload(&odd);
        sample *s = hand_sample(0);
        mut m = {.kind = M_SLOT, .slot = 11, .field = -1,
                 .raw = (const uint8_t *)odd.data, .rawlen = odd.size,
                 .type_name = "integration.odd", .has_version = 1,
                 .version = 1};
        size_t len;
        uint8_t *rec = tbuild(&s->ev, PREV, &m, &len);
        bases[nb++] = (blob){rec, len - 32};
        msgpack_sbuffer_destroy(&odd);
        free(s);
    }
    for (size_t i = 0; i < nb; i++)
        if (bases[i].n > maxn)
            maxn = bases[i].n;
    static const uint8_t interesting[] = {
        0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
        0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcc, 0xcf,
        0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        0xe0, 0xff, 0x10, 0x20};
    uint8_t *work = malloc(maxn + 64);
    cr_assert_not_null(work);
    int n_ok = 0, n_err = 0, n_unknown = 0;
    int codes[16] = {0};
    for (int it = 0; it < 20000; it++) {
        const blob *b = &bases[rnd() % nb];
        size_t n = b->n;
        memcpy(work, b->p, n);
        int ops = 1 + (int)(rnd() % 3);
        for (int op = 0; op < ops && n > 0; op++) {
            size_t pos = (size_t)(rnd() % n);
            switch (rnd() % 8) {
            case 0: work[pos] = (uint8_t)rnd(); break;
            case 1: work[pos] = interesting[rnd() % NEL(interesting)]; break;
            case 2: work[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 3:
                if (n < maxn + 60) {
                    memmove(work + pos + 1, work + pos, n - pos);
                    work[pos] = interesting[rnd() % NEL(interesting)];
                    n++;
                }
                break;
            case 4:
                memmove(work + pos, work + pos + 1, n - pos - 1);
                n--;
                break;
            case 5:
                for (size_t k = pos; k < pos + 4 && k < n; k++)
                    work[k] = 0xff;
                break;
            case 6: n = pos; break;
            default: {
                size_t from = (size_t)(rnd() % n), cnt = 1 + rnd() % 16;
                if (from + cnt > n)
                    cnt = n - from;
                if (pos + cnt > n)
                    cnt = n - pos;
                memmove(work + pos, work + from, cnt);
                break;
            }
            }
        }
        size_t len;
        uint8_t *rec = seal(work, n, &len);
        ev_event ev;
        int rc = ev_decode(d, rec, len, (uint64_t)it, &ev);
        CHECK(known_rc(rc), "iteration %d: unexpected result %d", it, rc);
        if (known_rc(rc))
            codes[-rc]++;
        if (rc != EV_OK) {
            n_err++;
            free(rec);
            continue;
        }
        n_ok++;
        const ev_env *env = &ev.env;
        CHECK(env->pos == (uint64_t)it, "iteration %d: pos", it);
        CHECK(in_buf(env->type_name, rec, len) && in_buf(env->stream, rec, len) &&
                  in_buf(env->correlation, rec, len) &&
                  in_buf(env->causation, rec, len) &&
                  in_buf(env->actor, rec, len) && in_buf(env->idem_key, rec, len),
              "iteration %d: an envelope string outside the record", it);
        CHECK(env->stream.n <= EV_MAX_ID_STR && env->correlation.n <= EV_MAX_ID_STR &&
                  env->causation.n <= EV_MAX_ID_STR &&
                  env->actor.n <= EV_MAX_ID_STR &&
                  env->idem_key.n <= EV_MAX_ID_STR,
              "iteration %d: an envelope string over its limit", it);
        if (env->type == EV_T_UNKNOWN) {
            n_unknown++;
            free(rec);
            continue;
        }
        CHECK(env->type > EV_T_UNKNOWN && env->type < EV_T_COUNT,
              "iteration %d: type %d", it, (int)env->type);
        const ttype *td = tdesc(env->type);
        if (!td) {
            free(rec);
            continue;
        }
        CHECK(env->version == td->version, "iteration %d: version", it);
        for (size_t i = 0; i < td->nf; i++) {
            const ev_str *sv = (const ev_str *)((const uint8_t *)&ev.u + td->f[i].off);
            if (td->f[i].kind == TK_STR || td->f[i].kind == TK_OSTR)
                CHECK(in_buf(*sv, rec, len) && sv->n <= td->f[i].arg,
                      "iteration %d: %s.%s outside the record or too long", it,
                      td->wire, td->f[i].name);
        }
        ev_buf out = {0};
        uint8_t h2[32];
        int rc2 = ev_encode(e, &ev, env->prev_hash, &out, h2);
        CHECK(rc2 == EV_OK, "iteration %d: an accepted %s does not re-encode: %d",
              it, td->wire, rc2);
        if (rc2 == EV_OK) {
            uint8_t *again = exact(out.p, out.len);
            ev_event ev2;
            int rc3 = ev_decode(d2, again, out.len, (uint64_t)it, &ev2);
            CHECK(rc3 == EV_OK, "iteration %d: re-encoded %s does not decode: %d",
                  it, td->wire, rc3);
            if (rc3 == EV_OK) {
                char ctx[64];
                snprintf(ctx, sizeof ctx, "iteration %d re-encoded", it);
                expect_type_name(&ev2.env, td->wire, strlen(td->wire),
                                 td->version, env->type, ctx);
                expect_env_common(env, &ev2.env, env->prev_hash, again, out.len,
                                  (uint64_t)it, ctx);
                expect_fields(td->f, td->nf, &ev.u, &ev2.u, ctx);
            }
            free(again);
        }
        ev_buf_free(&out);
        free(rec);
    }
    cr_log_info("fuzz: %d accepted (%d unknown), %d rejected; trunc %d toobig "
                "%d wrongtype %d field %d format %d range %d trailing %d",
                n_ok, n_unknown, n_err, codes[1], codes[2], codes[3], codes[4],
                codes[5], codes[8], codes[10]);
    cr_expect_gt(n_ok, 100, "too few mutated records accepted to be useful");
    cr_expect_gt(n_err, 100, "too few mutated records rejected");
    cr_expect_eq(codes[-EV_EHASH], 0, "resealed records failed the hash");
    free(work);
    for (size_t i = 0; i < nb; i++)
        free(bases[i].p);
    ev_enc_free(e);
    ev_dec_free(d);
    ev_dec_free(d2);
    CHECK_DONE();
}

/* ------------------------------------------------------------ helpers */

Test(event, record_accessors)
{
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    sample *s = hand_sample(12);
    ev_buf b = {0};
    uint8_t h[32];
    cr_assert_eq(ev_encode(e, &s->ev, PREV, &b, h), EV_OK);
    uint8_t *rec = exact(b.p, b.len);
    size_t len = b.len;
    ev_buf_free(&b);
    const uint8_t *p = ev_rec_prev(rec, len), *q = ev_rec_hash(rec, len);
    cr_assert_eq(p, rec + 4);
    cr_expect_eq(memcmp(p, PREV, 32), 0);
    cr_assert_eq(q, rec + len - 32);
    cr_expect_eq(memcmp(q, h, 32), 0);
    uint8_t want[32];
    sha256(rec, len - 32, want);
    cr_expect_eq(memcmp(q, want, 32), 0);
    /* too short to hold a header, a prev hash and a trailer */
    for (size_t n = 0; n < 4 + 2 * EV_HASH_LEN; n++) {
        cr_expect_null(ev_rec_prev(rec, n), "prev, length %zu", n);
        cr_expect_null(ev_rec_hash(rec, n), "hash, length %zu", n);
    }
    cr_expect_eq(ev_rec_prev(rec, 68), rec + 4);
    cr_expect_eq(ev_rec_hash(rec, 68), rec + 36);
    /* the first record of a log chains to zeroes */
    uint8_t zero[32] = {0};
    cr_assert_eq(ev_encode(e, &s->ev, zero, &b, h), EV_OK);
    cr_expect_eq(memcmp(ev_rec_prev(b.p, b.len), zero, 32), 0);
    cr_expect_eq(memcmp(ev_rec_hash(b.p, b.len), h, 32), 0);
    ev_buf_free(&b);
    free(rec);
    free(s);
    ev_enc_free(e);
}

Test(event, verify_hash)
{
    ev_enc *e = ev_enc_new();
    ev_dec *d = ev_dec_new();
    cr_assert(e && d);
    sample *s = hand_sample(5);
    size_t len;
    uint8_t *rec = encode_exact(e, &s->ev, &len);
    cr_expect_eq(ev_verify_hash(d, rec, len), EV_OK);
    rec[len / 2] ^= 0x10;
    cr_expect_eq(ev_verify_hash(d, rec, len), EV_EHASH);
    reseal(rec, len); /* a valid trailer over different content */
    cr_expect_eq(ev_verify_hash(d, rec, len), EV_OK);
    uint8_t *short_rec = exact(rec, 40);
    cr_expect_eq(ev_verify_hash(d, short_rec, 40), EV_ETRUNC);
    free(short_rec);
    free(rec);
    free(s);
    ev_enc_free(e);
    ev_dec_free(d);
}

Test(event, uuid_format_and_parse)
{
    static const uint8_t id[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                   0xcd, 0xef, 0x00, 0x11, 0x22, 0x33,
                                   0x44, 0x55, 0x66, 0xff};
    char s[37];
    memset(s, '#', sizeof s);
    ev_uuid_format(id, s);
    cr_expect_str_eq(s, "01234567-89ab-cdef-0011-2233445566ff");
    uint8_t back[16];
    char *c = (char *)exact(s, 36); /* no terminator: a read past is caught */
    cr_expect_eq(ev_uuid_parse(c, 36, back), EV_OK);
    cr_expect_eq(memcmp(back, id, 16), 0);
    free(c);
    c = (char *)exact("01234567-89AB-CDEF-0011-2233445566FF", 36);
    memset(back, 0, 16);
    cr_expect_eq(ev_uuid_parse(c, 36, back), EV_OK, "upper case");
    cr_expect_eq(memcmp(back, id, 16), 0);
    free(c);

    for (int i = 0; i < 300; i++) {
        uint8_t r[16], r2[16];
        for (int k = 0; k < 16; k++)
            r[k] = (uint8_t)(i * 16 + k * 97 + (i >> 2));
        ev_uuid_format(r, s);
        cr_assert_eq(strlen(s), 36u);
        c = (char *)exact(s, 36);
        cr_expect_eq(ev_uuid_parse(c, 36, r2), EV_OK);
        cr_expect_eq(memcmp(r, r2, 16), 0);
        free(c);
    }

    static const char *const bad[] = {
        "",
        "01234567-89ab-cdef-0011-2233445566f",
        "01234567-89ab-cdef-0011-2233445566ff0",
        "0123456789abcdef00112233445566ff",
        "0123456789abcdef00112233445566ff0000",
        "01234567-89ab-cdef-0011-2233445566fg",
        "g1234567-89ab-cdef-0011-2233445566ff",
        "01234567089ab-cdef-0011-2233445566ff",
        "01234567-89ab0cdef-0011-2233445566ff",
        "01234567-89ab-cdef00011-2233445566ff",
        "01234567-89ab-cdef-001102233445566ff",
        "0123456-789ab-cdef-0011-2233445566ff",
        "01234567-89ab-cdef-0011-2233445566-f",
        "-1234567-89ab-cdef-0011-2233445566ff",
        "01234567-89ab-cdef-0011-22334455 6ff",
        "{1234567-89ab-cdef-0011-2233445566f}",
        "01234567-89ab-cdef-0011-+233445566ff",
        "01234567-89ab-cdef-0011-2233445566\xff" "f",
        "{01234567-89ab-cdef-0011-2233445566ff}",
    };
    for (size_t k = 0; k < NEL(bad); k++) {
        size_t n = strlen(bad[k]);
        c = (char *)exact(bad[k], n);
        cr_expect_neq(ev_uuid_parse(c, n, back), EV_OK, "accepted '%s'",
                      bad[k]);
        free(c);
    }
    /* an embedded NUL */
    c = (char *)exact("01234567-89ab-cdef-0011-2233445566f\0", 36);
    cr_expect_neq(ev_uuid_parse(c, 36, back), EV_OK, "accepted a NUL");
    free(c);
}

static uint64_t id_ms(const uint8_t id[16])
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = v << 8 | id[i];
    return v;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

Test(event, new_ids_are_uuidv7_and_sort_by_time)
{
    ev_enc *e = ev_enc_new();
    cr_assert(e);
    uint8_t prev[16], id[16];
    /* microsecond steps across several milliseconds, and larger steps;
     * more ids than one refill of the random pool */
    uint64_t t = 1718000000000000ull - 3;
    for (int i = 0; i < 3000; i++) {
        t += i < 2000 ? 1 : 337;
        ev_new_id(e, t, id);
        CHECK(id[6] >> 4 == 7, "version nibble %x", id[6] >> 4);
        CHECK((id[8] & 0xc0) == 0x80, "variant bits %x", id[8] >> 6);
        CHECK(id_ms(id) == t / 1000, "timestamp %" PRIu64 " for %" PRIu64,
              id_ms(id), t);
        if (i > 0)
            CHECK(memcmp(prev, id, 16) < 0,
                  "id for t=%" PRIu64 " does not sort after the one before", t);
        memcpy(prev, id, 16);
    }
    ev_new_id(e, 0, id);
    cr_expect_eq(id_ms(id), 0u);
    cr_expect_eq(id[6] >> 4, 7);
    ev_new_id(e, 0xffffffffffffull * 1000 + 999, id);
    cr_expect_eq(id_ms(id), 0xffffffffffffull);
    cr_expect_eq(id[6] >> 4, 7);
    cr_expect_eq(id[8] & 0xc0, 0x80);

    /* ids for the same instant differ (random bits) */
    enum { N = 1200 };
    uint8_t (*ids)[16] = malloc(N * 16);
    cr_assert_not_null(ids);
    for (int i = 0; i < N; i++) {
        ev_new_id(e, 1718000000000123ull, ids[i]);
        CHECK(memcmp(ids[i], ids[0], 6) == 0, "timestamp changed");
    }
    qsort(ids, N, 16, cmp_id);
    for (int i = 1; i < N; i++)
        CHECK(memcmp(ids[i - 1], ids[i], 16) != 0, "duplicate id");
    free(ids);
    ev_enc_free(e);
    CHECK_DONE();
}

Test(event, enum_names_and_values)
{
    /* every constant of every set maps to its wire name and back */
#define T_ENUM_CHECK(set, C, name)                                             \
    cr_expect_str_eq(ev_enum_name(EV_ENUMSET_##set, EV_##set##_##C), name);    \
    cr_expect_eq(ev_enum_value(EV_ENUMSET_##set, name, strlen(name)),          \
                 EV_##set##_##C);
#define T_ENUM_SET_CHECK(set, LIST)                                            \
    LIST(T_ENUM_CHECK)                                                         \
    cr_expect_null(ev_enum_name(EV_ENUMSET_##set, EV_##set##_COUNT));          \
    cr_expect_eq(tenums[EV_ENUMSET_##set].count, EV_##set##_COUNT);
    EV_ENUM_SETS(T_ENUM_SET_CHECK)
#undef T_ENUM_SET_CHECK
#undef T_ENUM_CHECK
    for (int set = 0; set < EV_ENUMSET_COUNT; set++) {
        cr_expect_null(ev_enum_name(set, -1));
        cr_expect_null(ev_enum_name(set, tenums[set].count));
        cr_expect_null(ev_enum_name(set, 1000));
        cr_expect_eq(ev_enum_value(set, "bogus", 5), -1);
        cr_expect_eq(ev_enum_value(set, "", 0), -1);
        for (int v = 0; v < tenums[set].count; v++) {
            const char *nm = tenums[set].names[v];
            size_t n = strlen(nm);
            /* bounded by len: a longer buffer is fine */
            char buf[64];
            snprintf(buf, sizeof buf, "%sXYZ", nm);
            cr_expect_eq(ev_enum_value(set, buf, n), v);
            cr_expect_eq(ev_enum_value(set, nm, n - 1), -1, "prefix of %s", nm);
            cr_expect_eq(ev_enum_value(set, buf, n + 1), -1, "%s + X", nm);
            /* names of other sets are not names of this one */
            for (int o = 0; o < EV_ENUMSET_COUNT; o++)
                if (o != set)
                    cr_expect_eq(ev_enum_value(o, nm, n), -1, "%s in set %d",
                                 nm, o);
        }
    }
    cr_expect_null(ev_enum_name(-1, 0));
    cr_expect_null(ev_enum_name(EV_ENUMSET_COUNT, 0));
    cr_expect_eq(ev_enum_value(-1, "sale", 4), -1);
    cr_expect_eq(ev_enum_value(EV_ENUMSET_COUNT, "sale", 4), -1);
}

Test(event, error_strings)
{
    const char *seen[12] = {0};
    for (int rc = EV_OK; rc >= EV_ETRAILING; rc--) {
        const char *s = ev_strerror(rc);
        cr_assert_not_null(s);
        cr_expect_neq(strlen(s), 0u);
        for (int k = 0; k < -rc; k++)
            cr_expect_str_neq(seen[k], s, "codes %d and %d share a message",
                              -k, rc);
        seen[-rc] = s;
    }
    cr_expect_not_null(ev_strerror(-1000));
    cr_expect_not_null(ev_strerror(5));
}

Test(event, str_eq)
{
    cr_expect(ev_str_eq(EV_STR("abc"), ev_str_c("abc")));
    cr_expect_not(ev_str_eq(EV_STR("abc"), EV_STR("abd")));
    cr_expect_not(ev_str_eq(EV_STR("abc"), EV_STR("ab")));
    cr_expect(ev_str_eq((ev_str){NULL, 0}, ev_str_c(NULL)));
    cr_expect_not(ev_str_eq((ev_str){NULL, 0}, EV_STR("")), "nil is not \"\"");
    cr_expect(ev_str_eq(EV_STR(""), (ev_str){"x", 0}));
}
