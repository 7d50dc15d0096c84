/* event.h - the event envelope, the MessagePack codec and the hash chain.
 *
 * Owns: the in-memory form of every event (generated from
 * schemas/events.def), its encoding into a log record, and the decoding and
 * verification of untrusted record bytes.
 *
 * A log record is a MessagePack array followed by a 32-byte SHA-256 trailer:
 *
 *   [ 1, prev_hash(bin32), event_id(bin16), type(str), version(uint),
 *     stream(str), recorded_at_us(uint), correlation(str), causation(str),
 *     actor(str), idempotency(nil | [key(str), fingerprint(bin16)]),
 *     payload(map) ]  ||  sha256(everything before the trailer)
 *
 * prev_hash is the trailer of the record before it (zeroes for the first),
 * so the trailers chain the whole log: a changed byte anywhere breaks the
 * chain at that record. The log position is not inside the record: it is the
 * record's key in the log and is filled in by the reader.
 *
 * Decoded events borrow: strings and order lines point into the record bytes
 * and into the ev_dec that decoded them, and stay valid until that decoder
 * decodes again or the record bytes go away.
 */
#ifndef WS_EVENT_H
#define WS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../schemas/events.def"

#define EV_HASH_LEN 32
#define EV_ID_LEN 16
#define EV_FORMAT 1
#define EV_MAX_RECORD (256 * 1024) /* larger records are refused */
#define EV_MAX_LINES 100
#define EV_MAX_ID_STR 128 /* stream, correlation, causation, actor, idem key */

/* Error codes (negative); 0 is success. */
enum {
    EV_OK = 0,
    EV_ETRUNC = -1,    /* input ends inside a value */
    EV_ETOOBIG = -2,   /* record or value over its limit */
    EV_EWRONGTYPE = -3,/* a value of the wrong MessagePack type */
    EV_EFIELD = -4,    /* unknown, duplicate or missing payload field */
    EV_EFORMAT = -5,   /* not a record of this format */
    EV_EHASH = -6,     /* trailer does not match the content */
    EV_ECHAIN = -7,    /* prev_hash does not match the previous record */
    EV_ERANGE = -8,    /* a value out of its allowed range (enum, length) */
    EV_ENOMEM = -9,
    EV_ETRAILING = -10,/* bytes after the record's array */
};
const char *ev_strerror(int err);

/* A borrowed byte string (not NUL-terminated). */
typedef struct ev_str {
    const char *p;
    uint32_t n;
} ev_str;
#define EV_STR(lit) ((ev_str){(lit), sizeof(lit) - 1})
static inline ev_str ev_str_c(const char *s);

/* ---- enumerations ---- */
#define EV_X_ENUM_CONST(set, C, name) EV_##set##_##C,
enum { EV_ENUM_STOCK_REASON(EV_X_ENUM_CONST) EV_stock_reason_COUNT };
enum { EV_ENUM_ORDER_STATUS(EV_X_ENUM_CONST) EV_order_status_COUNT };
enum { EV_ENUM_ROLE(EV_X_ENUM_CONST) EV_role_COUNT };
#undef EV_X_ENUM_CONST
#define EV_X_ENUM_SET(set, LIST) EV_ENUMSET_##set,
enum { EV_ENUM_SETS(EV_X_ENUM_SET) EV_ENUMSET_COUNT };
#undef EV_X_ENUM_SET
/* Wire name of a value, or NULL when out of range. */
const char *ev_enum_name(int set, int value);
/* Value of a wire name, or -1. */
int ev_enum_value(int set, const char *name, size_t len);

/* ---- payload structs ---- */
typedef struct ev_line ev_line;
typedef struct ev_lines {
    const ev_line *v;
    uint32_t n;
} ev_lines;

#define EV_CT_U64 uint64_t
#define EV_CT_OU64 uint64_t
#define EV_CT_I64 int64_t
#define EV_CT_BOOL bool
#define EV_CT_STR ev_str
#define EV_CT_OSTR ev_str /* .p == NULL: nil */
#define EV_CT_UUID uint8_t
#define EV_CT_ENUM uint8_t
#define EV_CT_LINES ev_lines
#define EV_DIM_U64
#define EV_DIM_OU64
#define EV_DIM_I64
#define EV_DIM_BOOL
#define EV_DIM_STR
#define EV_DIM_OSTR
#define EV_DIM_UUID [16]
#define EV_DIM_ENUM
#define EV_DIM_LINES
#define EV_X_MEMBER(kind, sec, name, arg) EV_CT_##kind name EV_DIM_##kind;

struct ev_line { EV_LINE_FIELDS(EV_X_MEMBER) };

#define EV_X_STRUCT(C, n, wire, ver, FIELDS)                                   \
    typedef struct ev_##n { FIELDS(EV_X_MEMBER) } ev_##n;
EV_CATALOGUE(EV_X_STRUCT)
#undef EV_X_STRUCT

/* Bits of watch.updated's `changed`. */
enum {
    EV_WF_NAME = 1u << 0,
    EV_WF_BRAND = 1u << 1,
    EV_WF_MODEL_CODE = 1u << 2,
    EV_WF_DESCRIPTION = 1u << 3,
    EV_WF_PRICE = 1u << 4,
    EV_WF_IMAGE_URL = 1u << 5,
    EV_WF_CATEGORY = 1u << 6,
    EV_WF_ALL = (1u << 7) - 1,
};

/* ---- types ---- */
#define EV_X_TYPE_CONST(C, n, wire, ver, F) EV_T_##C,
typedef enum ev_type {
    EV_T_UNKNOWN = 0, /* a type or version this build does not know */
    EV_CATALOGUE(EV_X_TYPE_CONST) EV_T_COUNT
} ev_type;
#undef EV_X_TYPE_CONST

const char *ev_type_name(ev_type t); /* wire name, "unknown" for 0 */
uint16_t ev_type_version(ev_type t);

/* ---- the envelope and an event ---- */
typedef struct ev_env {
    uint8_t id[EV_ID_LEN];        /* UUIDv7 */
    ev_type type;
    ev_str type_name;             /* as written (useful for unknown types) */
    uint16_t version;
    ev_str stream;                /* e.g. "order-42" */
    uint64_t pos;                 /* log position (from the log, not hashed) */
    uint64_t recorded_us;         /* microseconds since the Unix epoch */
    ev_str correlation;
    ev_str causation;
    ev_str actor;
    ev_str idem_key;              /* .p == NULL: none */
    uint8_t idem_fp[16];
    uint8_t prev_hash[EV_HASH_LEN];
    uint8_t hash[EV_HASH_LEN];
} ev_env;

typedef struct ev_event {
    ev_env env;
    union {
#define EV_X_UNION(C, n, wire, ver, F) ev_##n n;
        EV_CATALOGUE(EV_X_UNION)
#undef EV_X_UNION
    } u;
} ev_event;

/* ---- encoding ---- */

/* A growable byte buffer that owns its memory. */
typedef struct ev_buf {
    uint8_t *p;
    size_t len, cap;
} ev_buf;
void ev_buf_free(ev_buf *b);
int ev_buf_reserve(ev_buf *b, size_t extra);
int ev_buf_append(ev_buf *b, const void *p, size_t n);

/* Reusable encoder state (a SHA-256 context, a random pool for ids). Not
 * thread-safe: one per thread. */
typedef struct ev_enc ev_enc;
ev_enc *ev_enc_new(void);
void ev_enc_free(ev_enc *e);

/* Fill env.id with a fresh UUIDv7 for time `now_us`. */
void ev_new_id(ev_enc *e, uint64_t now_us, uint8_t id[EV_ID_LEN]);

/* Validate `ev` against the catalogue (lengths, enum ranges, line count). */
int ev_validate(const ev_event *ev);

/* Append the record for `ev` to `out`, chained to `prev` (the previous
 * record's hash); `hash_out` receives this record's hash. env.prev_hash,
 * env.hash and env.pos of `ev` are ignored. */
int ev_encode(ev_enc *e, const ev_event *ev, const uint8_t prev[EV_HASH_LEN],
              ev_buf *out, uint8_t hash_out[EV_HASH_LEN]);

/* ---- decoding ---- */

typedef struct ev_dec ev_dec;
ev_dec *ev_dec_new(void);
void ev_dec_free(ev_dec *d);

/* Decode and hash-verify one record. Unknown types and newer versions give
 * EV_OK with env.type == EV_T_UNKNOWN (the envelope is filled, the payload
 * skipped). Never reads outside [rec, rec+len). */
int ev_decode(ev_dec *d, const uint8_t *rec, size_t len, uint64_t pos,
              ev_event *out);

/* Check only the trailer against the content (no MessagePack parsing). */
int ev_verify_hash(ev_dec *d, const uint8_t *rec, size_t len);

/* Cheap accessors on an encoded record (no verification): the previous
 * record's hash and this record's hash, or NULL if `len` is too short. */
const uint8_t *ev_rec_prev(const uint8_t *rec, size_t len);
const uint8_t *ev_rec_hash(const uint8_t *rec, size_t len);

/* ---- describing and printing ---- */

/* Field i of type t's payload (i from 0), for catalogues and tools. Returns
 * false past the last field. */
typedef struct ev_field_info {
    const char *name;
    const char *kind;  /* "U64", "STR", ... as in events.def */
    bool personal;     /* in the "pii" part */
    uint32_t max;      /* maximum length or count, 0 if none */
    int enum_set;      /* for ENUM: the set (ev_enum_name lists it), else -1 */
} ev_field_info;
bool ev_describe(ev_type t, size_t i, ev_field_info *out);

/* Appends the event as one line of JSON (no newline): the envelope with
 * hex hashes and the payload with its personal part under "pii". */
int ev_format_json(const ev_event *ev, ev_buf *out);

/* Appends a string as a JSON string literal (quotes, escapes; bytes that are
 * not UTF-8 become U+FFFD; a NULL string as null). */
int ev_format_json_str(ev_str s, ev_buf *out);

/* ---- helpers ---- */
void ev_uuid_format(const uint8_t id[16], char out[37]);
int ev_uuid_parse(const char *s, size_t len, uint8_t id[16]);
bool ev_str_eq(ev_str a, ev_str b);
/* Length (1-4) of the valid UTF-8 sequence at p (p < end), or 0 if the
 * bytes there are not UTF-8 (overlong two-byte forms included). */
int ev_utf8_len(const uint8_t *p, const uint8_t *end);

static inline ev_str ev_str_c(const char *s)
{
    size_t n = 0;
    if (!s)
        return (ev_str){NULL, 0};
    while (s[n])
        n++;
    return (ev_str){s, (uint32_t)n};
}

#endif
