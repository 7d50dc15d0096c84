/* event.c - the event codec: catalogue tables, MessagePack encoding (with
 * msgpack-c's packer), bounded decoding of untrusted records, SHA-256 chain.
 *
 * Decoding uses a small cursor reader of its own instead of msgpack-c's
 * object unpacker: the unpacker allocates a container's storage from the
 * count the input claims before it has seen the elements (5 hostile bytes ask
 * for gigabytes), and building an object tree would cost the scan rate
 * (records are decoded in place, strings borrowed, nothing allocated).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init: see sha_digest */
#include "event.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tables */

enum { K_U64, K_OU64, K_I64, K_BOOL, K_STR, K_OSTR, K_UUID, K_ENUM, K_LINES };
enum { SEC_P, SEC_S };

typedef struct field_desc {
    const char *name;
    uint8_t name_len;
    uint8_t kind;
    uint8_t sec;
    uint16_t off;
    uint32_t arg; /* max length, enum set, or max count */
} field_desc;

typedef struct type_desc {
    const char *wire;
    uint8_t wire_len;
    uint16_t version;
    const field_desc *fields;
    uint8_t nfields;
    uint8_t n_plain, n_pii;
} type_desc;

/* ARG of ENUM fields names a set; everything else is a number. */
#define ARG_U64(a) (a)
#define ARG_OU64(a) (a)
#define ARG_I64(a) (a)
#define ARG_BOOL(a) (a)
#define ARG_STR(a) (a)
#define ARG_OSTR(a) (a)
#define ARG_UUID(a) (a)
#define ARG_ENUM(a) EV_ENUMSET_##a
#define ARG_LINES(a) (a)

#define X_FIELD_S(kind, sec, name, arg)                                        \
    {#name, sizeof(#name) - 1, K_##kind, SEC_##sec, offsetof(S, name),         \
     ARG_##kind(arg)},
#define X_COUNT_P(kind, sec, name, arg) +(SEC_##sec == SEC_P)
#define X_COUNT_S(kind, sec, name, arg) +(SEC_##sec == SEC_S)

static const field_desc line_fields[] = {
#define S ev_line
    EV_LINE_FIELDS(X_FIELD_S)
#undef S
};
#define N_LINE_FIELDS (sizeof line_fields / sizeof line_fields[0])

static const type_desc unknown_desc = {"unknown", 7, 0, NULL, 0, 0, 0};

/* The descriptor of each type: a block per type, in which S names its
 * payload struct so that the field macro can take offsets in it. */
static const type_desc *desc_of(ev_type t)
{
    switch (t) {
#define X_TYPE_DESC(C, n, wire, ver, FIELDS)                                   \
    case EV_T_##C: {                                                           \
        typedef ev_##n S;                                                      \
        static const field_desc f[] = {FIELDS(X_FIELD_S)};                     \
        static const type_desc d = {wire, sizeof(wire) - 1, ver, f,            \
                                    sizeof f / sizeof f[0],                    \
                                    0 FIELDS(X_COUNT_P), 0 FIELDS(X_COUNT_S)}; \
        return &d;                                                             \
    }
        EV_CATALOGUE(X_TYPE_DESC)
#undef X_TYPE_DESC
    default: return &unknown_desc;
    }
}

#define X_ENUM_NAME(set, C, name) name,
static const char *const enum_stock_reason[] = {EV_ENUM_STOCK_REASON(X_ENUM_NAME)};
static const char *const enum_order_status[] = {EV_ENUM_ORDER_STATUS(X_ENUM_NAME)};
static const char *const enum_role[] = {EV_ENUM_ROLE(X_ENUM_NAME)};
#define X_ENUM_LEN(set, C, name) sizeof(name) - 1,
static const uint8_t len_stock_reason[] = {EV_ENUM_STOCK_REASON(X_ENUM_LEN)};
static const uint8_t len_order_status[] = {EV_ENUM_ORDER_STATUS(X_ENUM_LEN)};
static const uint8_t len_role[] = {EV_ENUM_ROLE(X_ENUM_LEN)};
static const struct {
    const char *const *names;
    const uint8_t *lens;
    int count;
} enum_sets[EV_ENUMSET_COUNT] = {
    [EV_ENUMSET_stock_reason] = {enum_stock_reason, len_stock_reason, EV_stock_reason_COUNT},
    [EV_ENUMSET_order_status] = {enum_order_status, len_order_status, EV_order_status_COUNT},
    [EV_ENUMSET_role] = {enum_role, len_role, EV_role_COUNT},
};

const char *ev_enum_name(int set, int value)
{
    if (set < 0 || set >= EV_ENUMSET_COUNT || value < 0 ||
        value >= enum_sets[set].count)
        return NULL;
    return enum_sets[set].names[value];
}

int ev_enum_value(int set, const char *name, size_t len)
{
    if (set < 0 || set >= EV_ENUMSET_COUNT)
        return -1;
    for (int i = 0; i < enum_sets[set].count; i++)
        if (enum_sets[set].lens[i] == len && memcmp(enum_sets[set].names[i], name, len) == 0)
            return i;
    return -1;
}

const char *ev_type_name(ev_type t)
{
    return (unsigned)t < EV_T_COUNT ? desc_of(t)->wire : "unknown";
}

uint16_t ev_type_version(ev_type t)
{
    return (unsigned)t < EV_T_COUNT ? desc_of(t)->version : 0;
}

const char *ev_strerror(int err)
{
    switch (err) {
    case EV_OK: return "ok";
    case EV_ETRUNC: return "record truncated";
    case EV_ETOOBIG: return "record or value too large";
    case EV_EWRONGTYPE: return "value of the wrong type";
    case EV_EFIELD: return "unknown, duplicate or missing field";
    case EV_EFORMAT: return "not an event record";
    case EV_EHASH: return "record hash does not match its content";
    case EV_ECHAIN: return "record is not chained to the one before it";
    case EV_ERANGE: return "value out of range";
    case EV_ENOMEM: return "out of memory";
    case EV_ETRAILING: return "bytes after the record";
    default: return "unknown error";
    }
}

int ev_utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = *p;
    if (c < 0x80)
        return 1;
    int n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || end - p < n || (n == 2 && c < 0xc2))
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

bool ev_str_eq(ev_str a, ev_str b)
{
    if ((a.p == NULL) != (b.p == NULL))
        return false;
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* ---------------------------------------------------------------- buffer */

void ev_buf_free(ev_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int ev_buf_reserve(ev_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return EV_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int ev_buf_append(ev_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (ev_buf_reserve(b, n) != 0)
        return EV_ENOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

/* msgpack-c's write callback: a failed write is remembered, since the
 * packer's callers do not all look at its return value. */
typedef struct pack_sink {
    ev_buf *buf;
    int failed;
} pack_sink;

static int buf_write(void *data, const char *src, size_t n)
{
    pack_sink *k = data;
    if (!k->failed && ev_buf_append(k->buf, src, n))
        k->failed = 1;
    return k->failed ? -1 : 0;
}

/* ------------------------------------------------------------------ hash */

/* SHA-256 of one record. OpenSSL's low-level SHA-256 (the same SHA-NI code as
 * EVP) is used on purpose: EVP's per-digest provider dispatch costs ~100 ns,
 * as much as hashing a 200-byte record, and the log is hashed on every read.
 * It is deprecated in OpenSSL 3 but kept by it; if it ever goes, EVP with a
 * reused context is the drop-in replacement. */
typedef struct sha {
    SHA256_CTX ctx;
} sha;

static int sha_init(sha *s)
{
    (void)s;
    return 0;
}

static void sha_free(sha *s) { (void)s; }

static int sha_digest(sha *s, const uint8_t *p, size_t n, uint8_t out[32])
{
    if (!SHA256_Init(&s->ctx) || !SHA256_Update(&s->ctx, p, n) ||
        !SHA256_Final(out, &s->ctx))
        return EV_ENOMEM;
    return 0;
}

/* --------------------------------------------------------------- encoder */

struct ev_enc {
    sha sha;
    uint8_t rnd[4096];
    size_t rnd_used;
};

ev_enc *ev_enc_new(void)
{
    ev_enc *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    if (sha_init(&e->sha) != 0) {
        ev_enc_free(e);
        return NULL;
    }
    e->rnd_used = sizeof e->rnd;
    return e;
}

void ev_enc_free(ev_enc *e)
{
    if (!e)
        return;
    sha_free(&e->sha);
    free(e);
}

void ev_new_id(ev_enc *e, uint64_t now_us, uint8_t id[EV_ID_LEN])
{
    if (e->rnd_used + 8 > sizeof e->rnd) {
        if (RAND_bytes(e->rnd, sizeof e->rnd) != 1)
            abort(); /* no randomness: nothing safe to do */
        e->rnd_used = 0;
    }
    uint64_t ms = now_us / 1000;
    /* rand_a: the sub-millisecond fraction (RFC 9562, method 3), so ids made
     * by one writer sort by time to the microsecond. */
    uint32_t frac = (uint32_t)((now_us % 1000) * 4096 / 1000);
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)(ms >> (40 - 8 * i));
    id[6] = (uint8_t)(0x70 | (frac >> 8));
    id[7] = (uint8_t)frac;
    memcpy(id + 8, e->rnd + e->rnd_used, 8);
    e->rnd_used += 8;
    id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
}

static int check_str(ev_str s, uint32_t max, bool nullable)
{
    if (!s.p && s.n)
        return EV_ERANGE;
    if (!s.p && !nullable)
        return 0; /* encoded as "" */
    return s.n <= max ? 0 : EV_ETOOBIG;
}

static int validate_fields(const field_desc *f, size_t n, const void *payload)
{
    const uint8_t *base = payload;
    for (size_t i = 0; i < n; i++) {
        const void *v = base + f[i].off;
        int rc = 0;
        switch (f[i].kind) {
        case K_STR: rc = check_str(*(const ev_str *)v, f[i].arg, false); break;
        case K_OSTR: rc = check_str(*(const ev_str *)v, f[i].arg, true); break;
        case K_ENUM:
            if (!ev_enum_name((int)f[i].arg, *(const uint8_t *)v))
                rc = EV_ERANGE;
            break;
        case K_LINES: {
            const ev_lines *l = v;
            if (l->n > f[i].arg || l->n > EV_MAX_LINES || (l->n && !l->v))
                rc = EV_ERANGE;
            break;
        }
        default: break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int ev_validate(const ev_event *ev)
{
    const ev_env *env = &ev->env;
    if (env->type <= EV_T_UNKNOWN || env->type >= EV_T_COUNT)
        return EV_ERANGE;
    ev_str ids[] = {env->stream, env->correlation, env->causation, env->actor,
                    env->idem_key};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (check_str(ids[i], EV_MAX_ID_STR, true))
            return EV_ETOOBIG;
    const type_desc *t = desc_of(env->type);
    return validate_fields(t->fields, t->nfields, &ev->u);
}

static void pack_str(msgpack_packer *pk, ev_str s)
{
    msgpack_pack_str(pk, s.n);
    msgpack_pack_str_body(pk, s.p ? s.p : "", s.n);
}

static void pack_key(msgpack_packer *pk, const field_desc *f)
{
    msgpack_pack_str(pk, f->name_len);
    msgpack_pack_str_body(pk, f->name, f->name_len);
}

static void pack_fields(msgpack_packer *pk, const field_desc *f, size_t n,
                        int sec, const void *payload);

static void pack_value(msgpack_packer *pk, const field_desc *f, const void *v)
{
    switch (f->kind) {
    case K_U64: msgpack_pack_uint64(pk, *(const uint64_t *)v); break;
    case K_OU64:
        if (*(const uint64_t *)v)
            msgpack_pack_uint64(pk, *(const uint64_t *)v);
        else
            msgpack_pack_nil(pk);
        break;
    case K_I64: msgpack_pack_int64(pk, *(const int64_t *)v); break;
    case K_BOOL:
        if (*(const bool *)v)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case K_STR: pack_str(pk, *(const ev_str *)v); break;
    case K_OSTR:
        if (((const ev_str *)v)->p)
            pack_str(pk, *(const ev_str *)v);
        else
            msgpack_pack_nil(pk);
        break;
    case K_UUID:
        msgpack_pack_bin(pk, 16);
        msgpack_pack_bin_body(pk, v, 16);
        break;
    case K_ENUM: {
        const char *name = ev_enum_name((int)f->arg, *(const uint8_t *)v);
        pack_str(pk, ev_str_c(name));
        break;
    }
    case K_LINES: {
        const ev_lines *l = v;
        msgpack_pack_array(pk, l->n);
        for (uint32_t i = 0; i < l->n; i++) {
            msgpack_pack_map(pk, N_LINE_FIELDS);
            pack_fields(pk, line_fields, N_LINE_FIELDS, SEC_P, &l->v[i]);
        }
        break;
    }
    }
}

static void pack_fields(msgpack_packer *pk, const field_desc *f, size_t n,
                        int sec, const void *payload)
{
    const uint8_t *base = payload;
    for (size_t i = 0; i < n; i++) {
        if (f[i].sec != sec)
            continue;
        pack_key(pk, &f[i]);
        pack_value(pk, &f[i], base + f[i].off);
    }
}

int ev_encode(ev_enc *e, const ev_event *ev, const uint8_t prev[EV_HASH_LEN],
              ev_buf *out, uint8_t hash_out[EV_HASH_LEN])
{
    int rc = ev_validate(ev);
    if (rc)
        return rc;
    const ev_env *env = &ev->env;
    const type_desc *t = desc_of(env->type);
    size_t start = out->len;
    pack_sink sink = {out, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, buf_write);

    msgpack_pack_array(&pk, 12);
    msgpack_pack_uint8(&pk, EV_FORMAT);
    msgpack_pack_bin(&pk, EV_HASH_LEN);
    msgpack_pack_bin_body(&pk, prev, EV_HASH_LEN);
    msgpack_pack_bin(&pk, EV_ID_LEN);
    msgpack_pack_bin_body(&pk, env->id, EV_ID_LEN);
    msgpack_pack_str(&pk, t->wire_len);
    msgpack_pack_str_body(&pk, t->wire, t->wire_len);
    msgpack_pack_uint16(&pk, t->version);
    pack_str(&pk, env->stream);
    msgpack_pack_uint64(&pk, env->recorded_us);
    pack_str(&pk, env->correlation);
    pack_str(&pk, env->causation);
    pack_str(&pk, env->actor);
    if (env->idem_key.p) {
        msgpack_pack_array(&pk, 2);
        pack_str(&pk, env->idem_key);
        msgpack_pack_bin(&pk, 16);
        msgpack_pack_bin_body(&pk, env->idem_fp, 16);
    } else {
        msgpack_pack_nil(&pk);
    }
    msgpack_pack_map(&pk, t->n_plain + (t->n_pii ? 1 : 0));
    pack_fields(&pk, t->fields, t->nfields, SEC_P, &ev->u);
    if (t->n_pii) {
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "pii", 3);
        msgpack_pack_map(&pk, t->n_pii);
        pack_fields(&pk, t->fields, t->nfields, SEC_S, &ev->u);
    }
    if (sink.failed || ev_buf_reserve(out, EV_HASH_LEN) != 0) {
        out->len = start;
        return EV_ENOMEM;
    }
    if (out->len - start + EV_HASH_LEN > EV_MAX_RECORD) {
        out->len = start;
        return EV_ETOOBIG;
    }
    rc = sha_digest(&e->sha, out->p + start, out->len - start, out->p + out->len);
    if (rc) {
        out->len = start;
        return rc;
    }
    if (hash_out)
        memcpy(hash_out, out->p + out->len, EV_HASH_LEN);
    out->len += EV_HASH_LEN;
    return 0;
}

/* ---------------------------------------------------------------- reader */

/* A bounded cursor over MessagePack bytes. Every read checks the bytes it
 * needs are there; nothing is allocated. */
typedef struct rd {
    const uint8_t *p, *end;
} rd;

static inline uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static inline int rd_need(rd *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n ? 0 : EV_ETRUNC;
}

static int rd_nil(rd *r)
{
    if (r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return 1;
    }
    return 0;
}

static int rd_uint(rd *r, uint64_t *v)
{
    if (rd_need(r, 1))
        return EV_ETRUNC;
    uint8_t b = *r->p;
    int n;
    if (b <= 0x7f) {
        *v = b;
        r->p++;
        return 0;
    }
    switch (b) {
    case 0xcc: n = 1; break;
    case 0xcd: n = 2; break;
    case 0xce: n = 4; break;
    case 0xcf: n = 8; break;
    default: return EV_EWRONGTYPE;
    }
    if (rd_need(r, 1 + (size_t)n))
        return EV_ETRUNC;
    *v = be(r->p + 1, n);
    r->p += 1 + n;
    return 0;
}

static int rd_int(rd *r, int64_t *v)
{
    if (rd_need(r, 1))
        return EV_ETRUNC;
    uint8_t b = *r->p;
    if (b >= 0xe0) {
        *v = (int8_t)b;
        r->p++;
        return 0;
    }
    int n;
    switch (b) {
    case 0xd0: n = 1; break;
    case 0xd1: n = 2; break;
    case 0xd2: n = 4; break;
    case 0xd3: n = 8; break;
    default: {
        uint64_t u;
        int rc = rd_uint(r, &u);
        if (rc)
            return rc;
        if (u > INT64_MAX)
            return EV_ERANGE;
        *v = (int64_t)u;
        return 0;
    }
    }
    if (rd_need(r, 1 + (size_t)n))
        return EV_ETRUNC;
    uint64_t u = be(r->p + 1, n);
    switch (n) {
    case 1: *v = (int8_t)u; break;
    case 2: *v = (int16_t)u; break;
    case 4: *v = (int32_t)u; break;
    default: *v = (int64_t)u; break;
    }
    r->p += 1 + n;
    return 0;
}

/* Reads a length-prefixed value of family str (is_bin 0) or bin (1). */
static int rd_bytes(rd *r, int is_bin, const uint8_t **p, uint32_t *len)
{
    if (rd_need(r, 1))
        return EV_ETRUNC;
    uint8_t b = *r->p;
    size_t hdr;
    uint64_t n;
    if (!is_bin && (b & 0xe0) == 0xa0) {
        hdr = 1;
        n = b & 0x1f;
    } else {
        int w;
        if (!is_bin && b == 0xd9) w = 1;
        else if (!is_bin && b == 0xda) w = 2;
        else if (!is_bin && b == 0xdb) w = 4;
        else if (is_bin && b == 0xc4) w = 1;
        else if (is_bin && b == 0xc5) w = 2;
        else if (is_bin && b == 0xc6) w = 4;
        else return EV_EWRONGTYPE;
        if (rd_need(r, 1 + (size_t)w))
            return EV_ETRUNC;
        hdr = 1 + (size_t)w;
        n = be(r->p + 1, w);
    }
    if (rd_need(r, hdr + n))
        return n > EV_MAX_RECORD ? EV_ETOOBIG : EV_ETRUNC;
    *p = r->p + hdr;
    *len = (uint32_t)n;
    r->p += hdr + n;
    return 0;
}

static int rd_str(rd *r, ev_str *s, uint32_t max)
{
    const uint8_t *p;
    uint32_t n;
    int rc = rd_bytes(r, 0, &p, &n);
    if (rc)
        return rc;
    if (n > max)
        return EV_ETOOBIG;
    s->p = (const char *)p;
    s->n = n;
    return 0;
}

static int rd_bin_exact(rd *r, uint8_t *out, uint32_t want)
{
    const uint8_t *p;
    uint32_t n;
    int rc = rd_bytes(r, 1, &p, &n);
    if (rc)
        return rc;
    if (n != want)
        return EV_ERANGE;
    memcpy(out, p, want);
    return 0;
}

/* Container header: map (is_map 1) or array (0). The count is checked
 * against the bytes left (every element takes at least one byte). */
static int rd_container(rd *r, int is_map, uint32_t *count)
{
    if (rd_need(r, 1))
        return EV_ETRUNC;
    uint8_t b = *r->p;
    size_t hdr = 1;
    uint64_t n;
    if (is_map && (b & 0xf0) == 0x80)
        n = b & 0x0f;
    else if (!is_map && (b & 0xf0) == 0x90)
        n = b & 0x0f;
    else {
        int w;
        if (b == (is_map ? 0xde : 0xdc)) w = 2;
        else if (b == (is_map ? 0xdf : 0xdd)) w = 4;
        else return EV_EWRONGTYPE;
        if (rd_need(r, 1 + (size_t)w))
            return EV_ETRUNC;
        hdr += (size_t)w;
        n = be(r->p + 1, w);
    }
    r->p += hdr;
    if (n * (is_map ? 2u : 1u) > (uint64_t)(r->end - r->p))
        return n > EV_MAX_RECORD ? EV_ETOOBIG : EV_ETRUNC;
    *count = (uint32_t)n;
    return 0;
}

/* Skips one value of any type, nesting at most `depth` deep. */
static int rd_skip(rd *r, int depth)
{
    if (depth <= 0)
        return EV_ETOOBIG;
    if (rd_need(r, 1))
        return EV_ETRUNC;
    uint8_t b = *r->p;
    size_t skip = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        r->p++;
        return 0;
    }
    const uint8_t *p;
    uint32_t n;
    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return rd_bytes(r, 0, &p, &n);
    if (b >= 0xc4 && b <= 0xc6)
        return rd_bytes(r, 1, &p, &n);
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90 || (b >= 0xdc && b <= 0xdf)) {
        int is_map = (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
        int rc = rd_container(r, is_map, &n);
        if (rc)
            return rc;
        uint64_t items = (uint64_t)n * (is_map ? 2 : 1);
        for (uint64_t i = 0; i < items; i++)
            if ((rc = rd_skip(r, depth - 1)) != 0)
                return rc;
        return 0;
    }
    switch (b) {
    case 0xcc: case 0xd0: skip = 2; break;
    case 0xcd: case 0xd1: skip = 3; break;
    case 0xce: case 0xd2: case 0xca: skip = 5; break;
    case 0xcf: case 0xd3: case 0xcb: skip = 9; break;
    case 0xd4: skip = 3; break;
    case 0xd5: skip = 4; break;
    case 0xd6: skip = 6; break;
    case 0xd7: skip = 10; break;
    case 0xd8: skip = 18; break;
    case 0xc7: case 0xc8: case 0xc9: {
        int w = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
        if (rd_need(r, 1 + (size_t)w))
            return EV_ETRUNC;
        skip = 1 + (size_t)w + 1 + be(r->p + 1, w);
        break;
    }
    default: return EV_EFORMAT; /* 0xc1 is never used */
    }
    if (rd_need(r, skip))
        return EV_ETRUNC;
    r->p += skip;
    return 0;
}

/* --------------------------------------------------------------- decoder */

struct ev_dec {
    sha sha;
    ev_type last_type;
    ev_line lines[EV_MAX_LINES];
};

ev_dec *ev_dec_new(void)
{
    ev_dec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    if (sha_init(&d->sha) != 0) {
        ev_dec_free(d);
        return NULL;
    }
    return d;
}

void ev_dec_free(ev_dec *d)
{
    if (!d)
        return;
    sha_free(&d->sha);
    free(d);
}

static int rd_fields(ev_dec *d, rd *r, const field_desc *f, size_t nf,
                     int sec, void *payload, uint32_t count, int depth);

static int rd_value(ev_dec *d, rd *r, const field_desc *f, void *v, int depth)
{
    int rc = 0;
    switch (f->kind) {
    case K_U64: return rd_uint(r, v);
    case K_OU64:
        if (rd_nil(r)) {
            *(uint64_t *)v = 0;
            return 0;
        }
        return rd_uint(r, v);
    case K_I64: return rd_int(r, v);
    case K_BOOL:
        if (rd_need(r, 1))
            return EV_ETRUNC;
        if (*r->p != 0xc2 && *r->p != 0xc3)
            return EV_EWRONGTYPE;
        *(bool *)v = *r->p++ == 0xc3;
        return 0;
    case K_OSTR:
        if (rd_nil(r)) {
            *(ev_str *)v = (ev_str){NULL, 0};
            return 0;
        }
        /* fall through */
    case K_STR: return rd_str(r, v, f->arg);
    case K_UUID: return rd_bin_exact(r, v, 16);
    case K_ENUM: {
        ev_str s;
        if ((rc = rd_str(r, &s, 64)) != 0)
            return rc;
        int val = ev_enum_value((int)f->arg, s.p, s.n);
        if (val < 0)
            return EV_ERANGE;
        *(uint8_t *)v = (uint8_t)val;
        return 0;
    }
    case K_LINES: {
        uint32_t n;
        if ((rc = rd_container(r, 0, &n)) != 0)
            return rc;
        if (n > f->arg || n > EV_MAX_LINES)
            return EV_ETOOBIG;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t m;
            if ((rc = rd_container(r, 1, &m)) != 0)
                return rc;
            rc = rd_fields(d, r, line_fields, N_LINE_FIELDS, SEC_P,
                           &d->lines[i], m, depth - 1);
            if (rc)
                return rc;
        }
        *(ev_lines *)v = (ev_lines){n ? d->lines : NULL, n};
        return 0;
    }
    }
    return EV_EFORMAT;
}

/* Reads `count` key/value pairs of section `sec` into `payload`; a "pii" key
 * (in section P of a type that has personal fields) opens section S. Every
 * field of the section must appear exactly once. */
static int rd_fields(ev_dec *d, rd *r, const field_desc *f, size_t nf,
                     int sec, void *payload, uint32_t count, int depth)
{
    uint64_t seen = 0, want = 0;
    int has_pii = 0, pii_seen = 0;
    size_t guess = 0;
    if (depth <= 0)
        return EV_ETOOBIG;
    for (size_t i = 0; i < nf; i++) {
        if (f[i].sec == sec)
            want |= 1ull << i;
        else
            has_pii = 1;
    }
    for (uint32_t k = 0; k < count; k++) {
        ev_str key;
        int rc = rd_str(r, &key, 64);
        if (rc)
            return rc;
        if (sec == SEC_P && has_pii && key.n == 3 && !memcmp(key.p, "pii", 3)) {
            uint32_t m;
            if (pii_seen++)
                return EV_EFIELD;
            if ((rc = rd_container(r, 1, &m)) != 0)
                return rc;
            rc = rd_fields(d, r, f, nf, SEC_S, payload, m, depth - 1);
            if (rc)
                return rc;
            continue;
        }
        /* Fields normally come in catalogue order: try the next one first. */
        size_t i = nf;
        for (size_t j = 0; j < nf; j++) {
            size_t c = (guess + j) % nf;
            if (f[c].sec == sec && f[c].name_len == key.n &&
                memcmp(f[c].name, key.p, key.n) == 0) {
                i = c;
                break;
            }
        }
        if (i == nf || (seen & (1ull << i)))
            return EV_EFIELD;
        seen |= 1ull << i;
        guess = i + 1;
        rc = rd_value(d, r, &f[i], (uint8_t *)payload + f[i].off, depth);
        if (rc)
            return rc;
    }
    if (seen != want || (has_pii && sec == SEC_P && !pii_seen))
        return EV_EFIELD;
    return 0;
}

const uint8_t *ev_rec_prev(const uint8_t *rec, size_t len)
{
    return len >= 4 + EV_HASH_LEN + EV_HASH_LEN ? rec + 4 : NULL;
}

const uint8_t *ev_rec_hash(const uint8_t *rec, size_t len)
{
    return len >= 4 + EV_HASH_LEN + EV_HASH_LEN ? rec + len - EV_HASH_LEN
                                                 : NULL;
}

int ev_verify_hash(ev_dec *d, const uint8_t *rec, size_t len)
{
    uint8_t h[EV_HASH_LEN];
    if (len > EV_MAX_RECORD)
        return EV_ETOOBIG;
    if (len < 4 + 2 * EV_HASH_LEN)
        return EV_ETRUNC;
    int rc = sha_digest(&d->sha, rec, len - EV_HASH_LEN, h);
    if (rc)
        return rc;
    return memcmp(h, rec + len - EV_HASH_LEN, EV_HASH_LEN) ? EV_EHASH : 0;
}

static const struct {
    const char *name;
    uint32_t len;
    uint16_t version;
} wire_names[EV_T_COUNT] = {
#define X_WIRE(C, n, wire, ver, F) [EV_T_##C] = {wire, sizeof(wire) - 1, ver},
    EV_CATALOGUE(X_WIRE)
#undef X_WIRE
};

/* The type of a wire name; `hint` (the type decoded last) is tried first,
 * since logs come in runs of the same types. */
static ev_type find_type(ev_str name, uint64_t version, ev_type hint)
{
    int t = hint;
    for (int i = 0; i < EV_T_COUNT; i++, t = t + 1 < EV_T_COUNT ? t + 1 : 1) {
        if (t == EV_T_UNKNOWN)
            continue;
        if (wire_names[t].len == name.n && memcmp(wire_names[t].name, name.p, name.n) == 0)
            return version == wire_names[t].version ? (ev_type)t : EV_T_UNKNOWN;
    }
    return EV_T_UNKNOWN;
}

int ev_decode(ev_dec *d, const uint8_t *rec, size_t len, uint64_t pos,
              ev_event *out)
{
    int rc = ev_verify_hash(d, rec, len);
    if (rc)
        return rc;
    /* Every envelope field is written below (the idempotency part only when
     * present, so it is cleared here); payload fields all must be present,
     * so a successful decode writes each of them. */
    ev_env *env = &out->env;
    env->idem_key = (ev_str){NULL, 0};
    memset(env->idem_fp, 0, sizeof env->idem_fp);
    static const uint8_t head[4] = {0x9c, EV_FORMAT, 0xc4, EV_HASH_LEN};
    if (memcmp(rec, head, 4) != 0)
        return EV_EFORMAT;
    memcpy(env->prev_hash, rec + 4, EV_HASH_LEN);
    memcpy(env->hash, rec + len - EV_HASH_LEN, EV_HASH_LEN);
    env->pos = pos;
    rd r = {rec + 4 + EV_HASH_LEN, rec + len - EV_HASH_LEN};
    uint64_t version;
    if ((rc = rd_bin_exact(&r, env->id, EV_ID_LEN)) ||
        (rc = rd_str(&r, &env->type_name, EV_MAX_ID_STR)) ||
        (rc = rd_uint(&r, &version)) ||
        (rc = rd_str(&r, &env->stream, EV_MAX_ID_STR)) ||
        (rc = rd_uint(&r, &env->recorded_us)) ||
        (rc = rd_str(&r, &env->correlation, EV_MAX_ID_STR)) ||
        (rc = rd_str(&r, &env->causation, EV_MAX_ID_STR)) ||
        (rc = rd_str(&r, &env->actor, EV_MAX_ID_STR)))
        return rc;
    if (version > UINT16_MAX)
        return EV_ERANGE;
    env->version = (uint16_t)version;
    if (!rd_nil(&r)) {
        uint32_t n;
        if ((rc = rd_container(&r, 0, &n)) != 0)
            return rc;
        if (n != 2)
            return EV_EFORMAT;
        if ((rc = rd_str(&r, &env->idem_key, EV_MAX_ID_STR)) ||
            (rc = rd_bin_exact(&r, env->idem_fp, 16)))
            return rc;
    }
    env->type = find_type(env->type_name, version, d->last_type);
    if (env->type != EV_T_UNKNOWN)
        d->last_type = env->type;
    if (env->type == EV_T_UNKNOWN) {
        if ((rc = rd_skip(&r, 8)) != 0)
            return rc;
    } else {
        const type_desc *t = desc_of(env->type);
        uint32_t n;
        if ((rc = rd_container(&r, 1, &n)) != 0)
            return rc;
        rc = rd_fields(d, &r, t->fields, t->nfields, SEC_P, &out->u, n, 4);
        if (rc)
            return rc;
    }
    return r.p == r.end ? 0 : EV_ETRAILING;
}

/* ---------------------------------------------------------------- uuids */

void ev_uuid_format(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[id[i] >> 4];
        *o++ = hex[id[i] & 15];
    }
    *o = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ev_uuid_parse(const char *s, size_t len, uint8_t id[16])
{
    if (len != 36)
        return EV_EFORMAT;
    size_t j = 0;
    for (int i = 0; i < 16; i++) {
        if (j == 8 || j == 13 || j == 18 || j == 23) {
            if (s[j] != '-')
                return EV_EFORMAT;
            j++;
        }
        int hi = hexval(s[j]), lo = hexval(s[j + 1]);
        if (hi < 0 || lo < 0)
            return EV_EFORMAT;
        id[i] = (uint8_t)(hi << 4 | lo);
        j += 2;
    }
    return 0;
}

/* -------------------------------------------------------------- describe */

static const char *const kind_names[] = {"U64",  "OU64", "I64",  "BOOL", "STR",
                                         "OSTR", "UUID", "ENUM", "LINES"};

bool ev_describe(ev_type t, size_t i, ev_field_info *out)
{
    const type_desc *d = desc_of(t);
    if (i >= d->nfields)
        return false;
    const field_desc *f = &d->fields[i];
    out->name = f->name;
    out->kind = kind_names[f->kind];
    out->personal = f->sec == SEC_S;
    out->max = f->kind == K_ENUM ? 0 : f->arg;
    out->enum_set = f->kind == K_ENUM ? (int)f->arg : -1;
    return true;
}

/* ------------------------------------------------------------------ json */


static int putf(ev_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int putf(ev_buf *b, const char *fmt, ...)
{
    char tmp[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n < 0 ? EV_ENOMEM : ev_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string; bytes that are not valid UTF-8 become U+FFFD. */
static int json_str(ev_buf *b, ev_str s)
{
    if (!s.p)
        return ev_buf_append(b, "null", 4);
    if (ev_buf_reserve(b, (size_t)s.n * 6 + 2))
        return EV_ENOMEM;
    uint8_t *o = b->p + b->len;
    *o++ = '"';
    const uint8_t *p = (const uint8_t *)s.p, *end = p + s.n;
    while (p < end) {
        uint8_t c = *p;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;
            p++;
        } else if (c < 0x20) {
            o += sprintf((char *)o, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            *o++ = c;
            p++;
        } else {
            int n = ev_utf8_len(p, end);
            if (n) {
                memcpy(o, p, (size_t)n);
                o += n;
                p += n;
            } else {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
                p++;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

int ev_format_json_str(ev_str s, ev_buf *out) { return json_str(out, s); }

static int put_hex(ev_buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (ev_buf_reserve(b, n * 2 + 2))
        return EV_ENOMEM;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = (uint8_t)hex[p[i] >> 4];
        b->p[b->len++] = (uint8_t)hex[p[i] & 15];
    }
    b->p[b->len++] = '"';
    return 0;
}

static int json_fields(ev_buf *b, const field_desc *f, size_t nf, int sec,
                       const void *payload);

static int json_value(ev_buf *b, const field_desc *f, const void *v)
{
    char u[37];
    switch (f->kind) {
    case K_U64: return putf(b, "%llu", (unsigned long long)*(const uint64_t *)v);
    case K_OU64:
        return *(const uint64_t *)v ? putf(b, "%llu", (unsigned long long)*(const uint64_t *)v)
                                    : ev_buf_append(b, "null", 4);
    case K_I64: return putf(b, "%lld", (long long)*(const int64_t *)v);
    case K_BOOL: return *(const bool *)v ? ev_buf_append(b, "true", 4) : ev_buf_append(b, "false", 5);
    case K_STR: {
        ev_str s = *(const ev_str *)v;
        return json_str(b, s.p ? s : (ev_str){"", 0});
    }
    case K_OSTR: return json_str(b, *(const ev_str *)v);
    case K_UUID:
        ev_uuid_format(v, u);
        return putf(b, "\"%s\"", u);
    case K_ENUM: return putf(b, "\"%s\"", ev_enum_name((int)f->arg, *(const uint8_t *)v));
    case K_LINES: {
        const ev_lines *l = v;
        int rc = ev_buf_append(b, "[", 1);
        for (uint32_t i = 0; rc == 0 && i < l->n; i++) {
            if (i)
                rc = ev_buf_append(b, ",", 1);
            if (!rc)
                rc = json_fields(b, line_fields, N_LINE_FIELDS, SEC_P, &l->v[i]);
        }
        return rc ? rc : ev_buf_append(b, "]", 1);
    }
    }
    return EV_EFORMAT;
}

static int json_fields(ev_buf *b, const field_desc *f, size_t nf, int sec,
                       const void *payload)
{
    int rc = ev_buf_append(b, "{", 1), first = 1;
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        if (f[i].sec != sec)
            continue;
        if (!first)
            rc = ev_buf_append(b, ",", 1);
        first = 0;
        if (!rc)
            rc = putf(b, "\"%s\":", f[i].name);
        if (!rc)
            rc = json_value(b, &f[i], (const uint8_t *)payload + f[i].off);
    }
    return rc ? rc : ev_buf_append(b, "}", 1);
}

int ev_format_json(const ev_event *ev, ev_buf *out)
{
    const ev_env *e = &ev->env;
    char id[37];
    ev_uuid_format(e->id, id);
    int rc = putf(out, "{\"pos\":%llu,\"id\":\"%s\",\"type\":", (unsigned long long)e->pos, id);
    if (!rc) rc = json_str(out, e->type_name.p ? e->type_name : ev_str_c(ev_type_name(e->type)));
    if (!rc) rc = putf(out, ",\"version\":%u,\"stream\":", e->version);
    if (!rc) rc = json_str(out, e->stream);
    if (!rc) rc = putf(out, ",\"recorded_us\":%llu,\"correlation\":", (unsigned long long)e->recorded_us);
    if (!rc) rc = json_str(out, e->correlation);
    if (!rc) rc = ev_buf_append(out, ",\"causation\":", 13);
    if (!rc) rc = json_str(out, e->causation);
    if (!rc) rc = ev_buf_append(out, ",\"actor\":", 9);
    if (!rc) rc = json_str(out, e->actor);
    if (!rc && e->idem_key.p) {
        rc = ev_buf_append(out, ",\"idempotency_key\":", 19);
        if (!rc) rc = json_str(out, e->idem_key);
    }
    if (!rc) rc = ev_buf_append(out, ",\"prev_hash\":", 13);
    if (!rc) rc = put_hex(out, e->prev_hash, EV_HASH_LEN);
    if (!rc) rc = ev_buf_append(out, ",\"hash\":", 8);
    if (!rc) rc = put_hex(out, e->hash, EV_HASH_LEN);
    if (!rc && e->type != EV_T_UNKNOWN) {
        const type_desc *t = desc_of(e->type);
        rc = ev_buf_append(out, ",\"payload\":", 11);
        if (!rc) rc = json_fields(out, t->fields, t->nfields, SEC_P, &ev->u);
        if (!rc && t->n_pii) {
            out->len--; /* reopen the payload object for its "pii" part */
            rc = ev_buf_append(out, ",\"pii\":", 7);
            if (!rc) rc = json_fields(out, t->fields, t->nfields, SEC_S, &ev->u);
            if (!rc) rc = ev_buf_append(out, "}", 1);
        }
    }
    return rc ? rc : ev_buf_append(out, "}", 1);
}
