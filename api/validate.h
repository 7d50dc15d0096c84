/* validate.h - field-by-field validation of JSON request bodies, with the
 * rules of API.md "Conventions": every failing field is reported (not only
 * the first), unknown fields are ignored, "" means "not given" for optional
 * strings, numbers come as JSON numbers or numeric strings.
 *
 * A handler parses the body with val_parse, reads each member with a reader
 * (val_str, val_int, val_money, ...), and when val_failed answers 400 with
 * val_error_json:
 *   {"error":"Validation failed","code":"validation_failed",
 *    "details":[{"path":["items",0,"watch_id"],"message":"...","code":"..."}]}
 *
 * Readers take an object and a member name; the detail's path is the
 * context's current path (val_enter_key / val_enter_index / val_leave, for
 * members of nested objects and array items) plus the name. Each returns
 * true when the value is present and valid and then writes *out; false when
 * it is absent (no detail unless VAL_REQUIRED) or invalid (a detail added;
 * *out is left alone). JSON null counts as absent.
 *
 * Detail codes: required, invalid_type, too_short, too_long, out_of_range,
 * invalid_format, invalid_value; for the body as a whole (path []):
 * invalid_json, invalid_utf8, not_an_object, too_deep, too_large.
 *
 * Coercions and decisions (API.md leaves them open):
 * - Numeric strings: exactly -?[0-9]+(\.[0-9]+)? ; no white space, "+",
 *   exponent, hex, "NaN" or "Infinity" (invalid_format).
 * - Integers: a JSON integer, a JSON number without fraction (2.0), or a
 *   numeric string whose fraction is zeros ("2", "2.00"). A fraction is
 *   invalid_format.
 * - Money: in minor units (cents), above 0 (unless VAL_ZERO_OK), at most
 *   99,999,999.99 (the read models' numeric(10,2)). A JSON number is
 *   rounded to cents, half away from zero, on the shortest decimal that
 *   reads back as the same double (395.005 -> 39501, 1.005 -> 101), which is
 *   what the old backend got from PostgreSQL for the same JSON. A string may
 *   not carry a non-zero digit beyond cents ("1.999" and "1.001" are
 *   invalid_format; "1.000" is 100).
 * - Strings: max in bytes, min in characters (code points), checked after
 *   VAL_TRIM. Refused (invalid_format): C0 controls, DEL and C1 controls,
 *   except tab, LF and CR in VAL_MULTILINE fields. \u0000 is a control too.
 * - Duplicate members: the last wins (as JSON.parse).
 * - A number too large for any field (1e400, 2^64) cannot be parsed: the
 *   body is refused with out_of_range at path [].
 */
#ifndef WS_VALIDATE_H
#define WS_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/event.h"

/* Reader flags. */
enum {
    VAL_OPTIONAL = 0,       /* absent, null or "" is fine (returns false) */
    VAL_REQUIRED = 1 << 0,  /* absent, null or "" is a "required" detail */
    VAL_TRIM = 1 << 1,      /* strings: surrounding spaces, tabs, CR, LF removed first */
    VAL_MULTILINE = 1 << 2, /* strings: tab, LF and CR allowed */
    VAL_EMPTY = 1 << 3,     /* optional strings: "" or null returns true, empty
                             * (to tell "clear it" from "leave it" in updates) */
    VAL_ZERO_OK = 1 << 4,   /* money: 0 allowed */
    VAL_NOCASE = 1 << 5,    /* enums: ASCII case ignored */
};

/* The body limits val_parse applies (the server's own body limit, 100 kB by
 * default, is the policy; this is a backstop). */
#define VAL_MAX_BODY (1024 * 1024)
#define VAL_MAX_DEPTH 32
/* Path segments recorded; deeper ones are left out of details. */
#define VAL_MAX_PATH 8
/* The largest amount in minor units: 99,999,999.99. */
#define VAL_MONEY_MAX INT64_C(9999999999)

typedef struct val_seg {
    const char *key; /* borrowed; NULL for an array index */
    size_t index;
} val_seg;

typedef struct val_ctx {
    json_t *details; /* owned; NULL until the first failure */
    bool failed;     /* set even when a detail could not be allocated */
    size_t depth;
    val_seg path[VAL_MAX_PATH];
} val_ctx;

void val_init(val_ctx *v);
void val_free(val_ctx *v);

/* Parses a request body that must be a JSON object. On success *root is a
 * new reference (the caller json_decref's it) and true is returned; else
 * *root is NULL and a detail with path [] is added. */
bool val_parse(const char *body, size_t len, json_t **root, val_ctx *v);

/* Whether any reader or val_parse added a detail. */
bool val_failed(const val_ctx *v);
/* The 400 body above, NUL-terminated, for the caller to free(); NULL only
 * when out of memory. */
char *val_error_json(const val_ctx *v);

/* The path: members read after val_enter_key(v, "customer") are reported
 * as ["customer", name]; every enter needs its val_leave. `key` is
 * borrowed until the matching val_leave. */
void val_enter_key(val_ctx *v, const char *key);
void val_enter_index(val_ctx *v, size_t index);
void val_leave(val_ctx *v);

/* A string of at least min_chars characters and at most max_bytes bytes;
 * *out borrows the JSON value's storage (valid while root lives). */
bool val_str(val_ctx *v, json_t *obj, const char *name, int flags, size_t min_chars,
             size_t max_bytes, ev_str *out);
/* An e-mail address, trimmed: one '@', a non-empty local part, a domain
 * with a dot inside and no empty label, no white space or control
 * characters, at most 255 bytes. Not lower-cased. */
bool val_email(val_ctx *v, json_t *obj, const char *name, int flags, ev_str *out);
/* A UUID, 8-4-4-4-12 hex digits in any case. */
bool val_uuid(val_ctx *v, json_t *obj, const char *name, int flags, uint8_t out[16]);
/* An absolute http or https URL with a host, no white space, control
 * characters, quotes, '<', '>' or '\', at most max_bytes. "" is "none". */
bool val_url(val_ctx *v, json_t *obj, const char *name, int flags, size_t max_bytes, ev_str *out);
/* Three ASCII letters, written lower-cased with a NUL ("usd"). */
bool val_currency(val_ctx *v, json_t *obj, const char *name, int flags, char out[4]);
/* An integer in [min, max]. */
bool val_int(val_ctx *v, json_t *obj, const char *name, int flags, int64_t min, int64_t max,
             int64_t *out);
/* An amount of money in minor units. */
bool val_money(val_ctx *v, json_t *obj, const char *name, int flags, int64_t *out);
/* One of `values` (NULL-terminated); *out is its index. */
bool val_enum(val_ctx *v, json_t *obj, const char *name, int flags, const char *const *values,
              size_t *out);
/* JSON true or false. */
bool val_bool(val_ctx *v, json_t *obj, const char *name, int flags, bool *out);

/* An array of min_items to max_items values (too_short / too_long);
 * *out is borrowed from obj. */
bool val_array(val_ctx *v, json_t *obj, const char *name, int flags, size_t min_items,
               size_t max_items, json_t **out);
/* An object; *out is borrowed from obj. */
bool val_object(val_ctx *v, json_t *obj, const char *name, int flags, json_t **out);
/* Whether `value` (an array item) is an object, reported at the current
 * path: val_enter_index(v, i) first. */
bool val_object_here(val_ctx *v, json_t *value, json_t **out);

#endif
