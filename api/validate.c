/* validate.c - validation of JSON request bodies (see validate.h): the
 * details collected, the body parsed with its guards, and one reader per
 * kind of field. */
#include "validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------- details */

void val_init(val_ctx *v)
{
    memset(v, 0, sizeof *v);
}

void val_free(val_ctx *v)
{
    json_decref(v->details);
    val_init(v);
}

bool val_failed(const val_ctx *v)
{
    return v->failed;
}

void val_enter_key(val_ctx *v, const char *key)
{
    if (v->depth < VAL_MAX_PATH)
        v->path[v->depth] = (val_seg){key, 0};
    v->depth++;
}

void val_enter_index(val_ctx *v, size_t index)
{
    if (v->depth < VAL_MAX_PATH)
        v->path[v->depth] = (val_seg){NULL, index};
    v->depth++;
}

void val_leave(val_ctx *v)
{
    if (v->depth)
        v->depth--;
}

/* The current path plus `name` (when not NULL), as a new JSON array. */
static json_t *path_json(const val_ctx *v, const char *name)
{
    json_t *a = json_array();
    size_t n = v->depth < VAL_MAX_PATH ? v->depth : VAL_MAX_PATH;
    for (size_t i = 0; a && i < n; i++) {
        const val_seg *s = &v->path[i];
        json_t *seg = s->key ? json_string(s->key) : json_integer((json_int_t)s->index);
        if (json_array_append_new(a, seg) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    if (a && name && json_array_append_new(a, json_string(name)) != 0) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

/* Adds a detail for member `name` of the current path (NULL: the current
 * path itself). */
__attribute__((format(printf, 4, 5))) static void fail(val_ctx *v, const char *name,
                                                      const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->failed = true;
    if (!v->details && !(v->details = json_array()))
        return;
    json_t *d = json_pack("{s:o,s:s,s:s}", "path", path_json(v, name), "message", msg, "code",
                          code);
    if (d)
        json_array_append_new(v->details, d);
}

char *val_error_json(const val_ctx *v)
{
    json_t *details = v->details ? json_incref(v->details) : json_array();
    json_t *body = json_pack("{s:s,s:s,s:o}", "error", "Validation failed", "code",
                             "validation_failed", "details", details);
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    return s;
}

/* ------------------------------------------------------------- the body */

/* Whether brackets nest deeper than VAL_MAX_DEPTH (outside strings). */
static bool too_deep(const char *s, size_t n)
{
    size_t depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > VAL_MAX_DEPTH)
                return true;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return false;
}

static void fail_parse(val_ctx *v, const json_error_t *err, size_t len)
{
    switch (json_error_code(err)) {
    case json_error_invalid_utf8:
        fail(v, NULL, "invalid_utf8", "The body is not valid UTF-8");
        break;
    case json_error_numeric_overflow:
        fail(v, NULL, "out_of_range", "A number in the body is too large (line %d, column %d)",
             err->line, err->column);
        break;
    default:
        if (len == 0)
            fail(v, NULL, "invalid_json", "The body is empty; a JSON object is expected");
        else
            fail(v, NULL, "invalid_json", "The body is not valid JSON (line %d, column %d)",
                 err->line, err->column);
    }
}

bool val_parse(const char *body, size_t len, json_t **root, val_ctx *v)
{
    *root = NULL;
    if (!body)
        body = "", len = 0;
    if (len > VAL_MAX_BODY) {
        fail(v, NULL, "too_large", "The body is larger than %d bytes", VAL_MAX_BODY);
        return false;
    }
    if (too_deep(body, len)) {
        fail(v, NULL, "too_deep", "The body nests deeper than %d levels", VAL_MAX_DEPTH);
        return false;
    }
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j) {
        fail_parse(v, &err, len);
        return false;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(v, NULL, "not_an_object", "The body must be a JSON object");
        return false;
    }
    *root = j;
    return true;
}

/* ------------------------------------------------------------- members */

/* Member `name` of obj, or NULL when absent or null (with a "required"
 * detail when the flags say so). A parent that is not an object (one that
 * failed its own check) has no members and no details. */
static json_t *member(val_ctx *v, json_t *obj, const char *name, int flags)
{
    if (!json_is_object(obj))
        return NULL;
    json_t *j = json_object_get(obj, name);
    if (j && !json_is_null(j))
        return j;
    if (flags & VAL_REQUIRED)
        fail(v, name, "required", "is required");
    return NULL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static ev_str trim(ev_str s)
{
    while (s.n && is_space(s.p[0]))
        s.p++, s.n--;
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

enum text_state { TEXT_ABSENT, TEXT_EMPTY, TEXT_OK, TEXT_BAD };

/* A string member: TEXT_OK with *s set, TEXT_EMPTY for "" or null under
 * VAL_EMPTY, TEXT_ABSENT (a detail if required) or TEXT_BAD (detailed). */
static enum text_state text(val_ctx *v, json_t *obj, const char *name, int flags, ev_str *s)
{
    json_t *j = json_is_object(obj) ? json_object_get(obj, name) : NULL;
    bool given = j && !json_is_null(j);
    if (given && !json_is_string(j)) {
        fail(v, name, "invalid_type", "must be a string");
        return TEXT_BAD;
    }
    if (given) {
        s->p = json_string_value(j);
        s->n = (uint32_t)json_string_length(j);
        if (flags & VAL_TRIM)
            *s = trim(*s);
        if (s->n)
            return TEXT_OK;
    }
    if (json_is_object(obj) && (flags & VAL_REQUIRED))
        fail(v, name, "required", "is required");
    else if ((flags & VAL_EMPTY) && json_is_object(obj) && j)
        return TEXT_EMPTY;
    return TEXT_ABSENT;
}

/* Whether s holds a control character: C0 (tab, LF, CR allowed when
 * multiline), DEL, or C1 (U+0080..U+009F, UTF-8 C2 80..C2 9F). */
static bool has_control(ev_str s, bool multiline)
{
    const unsigned char *p = (const unsigned char *)s.p;
    for (uint32_t i = 0; i < s.n; i++) {
        unsigned char c = p[i];
        if (c < 0x20 && !(multiline && (c == '\t' || c == '\n' || c == '\r')))
            return true;
        if (c == 0x7f || (c == 0xc2 && i + 1 < s.n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
            return true;
    }
    return false;
}

/* Code points in valid UTF-8. */
static size_t utf8_chars(ev_str s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s.n; i++)
        n += ((unsigned char)s.p[i] & 0xc0) != 0x80;
    return n;
}

bool val_str(val_ctx *v, json_t *obj, const char *name, int flags, size_t min_chars,
             size_t max_bytes, ev_str *out)
{
    ev_str s;
    switch (text(v, obj, name, flags, &s)) {
    case TEXT_EMPTY: *out = (ev_str){"", 0}; return true;
    case TEXT_OK: break;
    default: return false;
    }
    if (has_control(s, flags & VAL_MULTILINE)) {
        fail(v, name, "invalid_format", "must not contain control characters");
        return false;
    }
    if (s.n > max_bytes) {
        fail(v, name, "too_long", "must be at most %zu bytes long", max_bytes);
        return false;
    }
    if (utf8_chars(s) < min_chars) {
        fail(v, name, "too_short", "must be at least %zu characters long", min_chars);
        return false;
    }
    *out = s;
    return true;
}

/* ------------------------------------------------------ formatted text */

#define EMAIL_MAX 255

static bool email_ok(ev_str s)
{
    const char *at = memchr(s.p, '@', s.n);
    if (!at || at == s.p || memchr(at + 1, '@', s.n - (size_t)(at + 1 - s.p)))
        return false;
    for (uint32_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= ' ' || c == 0x7f)
            return false;
    }
    const char *d = at + 1, *end = s.p + s.n;
    if (d == end || *d == '.' || end[-1] == '.' || !memchr(d, '.', (size_t)(end - d)))
        return false;
    for (const char *p = d; p + 1 < end; p++)
        if (p[0] == '.' && p[1] == '.')
            return false;
    return !has_control(s, false);
}

bool val_email(val_ctx *v, json_t *obj, const char *name, int flags, ev_str *out)
{
    ev_str s;
    switch (text(v, obj, name, flags | VAL_TRIM, &s)) {
    case TEXT_EMPTY: *out = (ev_str){"", 0}; return true;
    case TEXT_OK: break;
    default: return false;
    }
    if (s.n > EMAIL_MAX) {
        fail(v, name, "too_long", "must be at most %d bytes long", EMAIL_MAX);
        return false;
    }
    if (!email_ok(s)) {
        fail(v, name, "invalid_format", "must be a valid e-mail address");
        return false;
    }
    *out = s;
    return true;
}

bool val_uuid(val_ctx *v, json_t *obj, const char *name, int flags, uint8_t out[16])
{
    ev_str s;
    if (text(v, obj, name, flags & ~VAL_EMPTY, &s) != TEXT_OK)
        return false;
    uint8_t id[16];
    if (ev_uuid_parse(s.p, s.n, id) != 0) {
        fail(v, name, "invalid_format", "must be a UUID (8-4-4-4-12 hexadecimal digits)");
        return false;
    }
    memcpy(out, id, 16);
    return true;
}

static bool url_ok(ev_str s)
{
    size_t skip = s.n >= 7 && strncasecmp(s.p, "http://", 7) == 0    ? 7
                  : s.n >= 8 && strncasecmp(s.p, "https://", 8) == 0 ? 8
                                                                     : 0;
    if (!skip || skip == s.n || strchr("/?#", s.p[skip]))
        return false;
    for (uint32_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= ' ' || c == 0x7f || strchr("\"<>\\", c))
            return false;
    }
    return !has_control(s, false);
}

bool val_url(val_ctx *v, json_t *obj, const char *name, int flags, size_t max_bytes, ev_str *out)
{
    ev_str s;
    switch (text(v, obj, name, flags, &s)) {
    case TEXT_EMPTY: *out = (ev_str){"", 0}; return true;
    case TEXT_OK: break;
    default: return false;
    }
    if (s.n > max_bytes) {
        fail(v, name, "too_long", "must be at most %zu bytes long", max_bytes);
        return false;
    }
    if (!url_ok(s)) {
        fail(v, name, "invalid_format", "must be an http or https URL");
        return false;
    }
    *out = s;
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool val_currency(val_ctx *v, json_t *obj, const char *name, int flags, char out[4])
{
    ev_str s;
    if (text(v, obj, name, flags & ~VAL_EMPTY, &s) != TEXT_OK)
        return false;
    if (s.n != 3 || !is_alpha(s.p[0]) || !is_alpha(s.p[1]) || !is_alpha(s.p[2])) {
        fail(v, name, "invalid_format", "must be a three-letter currency code");
        return false;
    }
    for (int i = 0; i < 3; i++)
        out[i] = (char)(s.p[i] | 0x20);
    out[3] = '\0';
    return true;
}

static bool enum_match(ev_str s, const char *value, bool nocase)
{
    size_t n = strlen(value);
    return n == s.n && (nocase ? strncasecmp(s.p, value, n) : memcmp(s.p, value, n)) == 0;
}

/* "a, b, c" into buf (truncated when long). */
static void enum_list(const char *const *values, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; values[i] && o < cap; i++) {
        int k = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", values[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

bool val_enum(val_ctx *v, json_t *obj, const char *name, int flags, const char *const *values,
              size_t *out)
{
    ev_str s;
    switch (text(v, obj, name, flags, &s)) {
    case TEXT_EMPTY: *out = SIZE_MAX; return true;
    case TEXT_OK: break;
    default: return false;
    }
    for (size_t i = 0; values[i]; i++) {
        if (enum_match(s, values[i], flags & VAL_NOCASE)) {
            *out = i;
            return true;
        }
    }
    char list[192];
    enum_list(values, list, sizeof list);
    fail(v, name, "invalid_value", "must be one of: %s", list);
    return false;
}

/* ------------------------------------------------------------- numbers */

/* A decimal number -?[0-9]+(\.[0-9]+)? taken apart. */
typedef struct num {
    bool neg;
    bool huge;         /* the whole part does not fit 64 bits */
    uint64_t whole;
    int cents;         /* the first two fraction digits, as 0..99 */
    int third;         /* the third fraction digit */
    bool fraction;     /* some fraction digit is not zero */
    bool past_cents;   /* some fraction digit after the second is not zero */
} num;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool num_parse(const char *s, size_t n, num *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    if (i < n && s[i] == '-')
        out->neg = true, i++;
    size_t start = i;
    for (; i < n && is_digit(s[i]); i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (out->whole > (UINT64_MAX - d) / 10)
            out->huge = true;
        else
            out->whole = out->whole * 10 + d;
    }
    if (i == start)
        return false;
    if (i == n)
        return true;
    if (s[i++] != '.' || i == n)
        return false;
    for (size_t k = 0; i < n; i++, k++) {
        if (!is_digit(s[i]))
            return false;
        int d = s[i] - '0';
        if (k < 2)
            out->cents += d * (k == 0 ? 10 : 1);
        else if (k == 2)
            out->third = d;
        out->fraction |= d != 0;
        out->past_cents |= k >= 2 && d != 0;
    }
    return true;
}

/* A numeric string member's text, "" being absent; NULL when absent. */
static const json_t *numeric_string_given(val_ctx *v, json_t *j, const char *name, int flags)
{
    if (json_string_length(j))
        return j;
    if (flags & VAL_REQUIRED)
        fail(v, name, "required", "is required");
    return NULL;
}

static void fail_int_range(val_ctx *v, const char *name, int64_t min, int64_t max)
{
    if (max == INT64_MAX)
        fail(v, name, "out_of_range", "must be at least %lld", (long long)min);
    else
        fail(v, name, "out_of_range", "must be between %lld and %lld", (long long)min,
             (long long)max);
}

/* The integer in a JSON value; 0 ok, else the detail to give: 1 wrong
 * type, 2 bad format, 3 out of 64 bits. */
static int int_of(json_t *j, int64_t *out)
{
    if (json_is_integer(j)) {
        *out = json_integer_value(j);
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (d != trunc(d))
            return 2;
        if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
            return 3;
        *out = (int64_t)d;
        return 0;
    }
    if (!json_is_string(j))
        return 1;
    num n;
    if (!num_parse(json_string_value(j), json_string_length(j), &n) || n.fraction)
        return 2;
    if (n.huge || n.whole > (uint64_t)INT64_MAX + n.neg)
        return 3;
    *out = n.neg ? (int64_t)(0 - n.whole) : (int64_t)n.whole;
    return 0;
}

bool val_int(val_ctx *v, json_t *obj, const char *name, int flags, int64_t min, int64_t max,
             int64_t *out)
{
    json_t *j = member(v, obj, name, flags);
    if (!j || (json_is_string(j) && !numeric_string_given(v, j, name, flags)))
        return false;
    int64_t x = 0;
    switch (int_of(j, &x)) {
    case 1: fail(v, name, "invalid_type", "must be an integer"); return false;
    case 2: fail(v, name, "invalid_format", "must be a whole number"); return false;
    case 3: fail_int_range(v, name, min, max); return false;
    }
    if (x < min || x > max) {
        fail_int_range(v, name, min, max);
        return false;
    }
    *out = x;
    return true;
}

/* The shortest "%.Ng" of d that reads back as d (no exponent for
 * 1e-4 <= |d| < 1e15). */
static void shortest_decimal(double d, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* Minor units of a decimal, rounded half away from zero on the third
 * decimal when `round`; false when it is beyond any amount. */
static bool minor_of(const num *n, bool round, int64_t *out)
{
    if (n->huge || n->whole > (uint64_t)(VAL_MONEY_MAX / 100))
        return false;
    int64_t m = (int64_t)n->whole * 100 + n->cents + (round && n->third >= 5);
    *out = n->neg ? -m : m;
    return true;
}

enum money_state { MONEY_OK, MONEY_TYPE, MONEY_FORMAT, MONEY_RANGE };

static enum money_state money_of(json_t *j, int64_t *out)
{
    num n;
    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        if (i > VAL_MONEY_MAX / 100 || i < -VAL_MONEY_MAX / 100)
            return MONEY_RANGE;
        *out = (int64_t)i * 100;
        return MONEY_OK;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!(fabs(d) < 1e11))
            return MONEY_RANGE;
        if (fabs(d) < 1e-3) {
            *out = 0;
            return MONEY_OK;
        }
        char buf[40];
        shortest_decimal(d, buf, sizeof buf);
        if (!num_parse(buf, strlen(buf), &n))
            return MONEY_FORMAT;
        return minor_of(&n, true, out) ? MONEY_OK : MONEY_RANGE;
    }
    if (!json_is_string(j))
        return MONEY_TYPE;
    if (!num_parse(json_string_value(j), json_string_length(j), &n) || n.past_cents)
        return MONEY_FORMAT;
    return minor_of(&n, false, out) ? MONEY_OK : MONEY_RANGE;
}

bool val_money(val_ctx *v, json_t *obj, const char *name, int flags, int64_t *out)
{
    json_t *j = member(v, obj, name, flags);
    if (!j || (json_is_string(j) && !numeric_string_given(v, j, name, flags)))
        return false;
    int64_t m = 0;
    enum money_state st = money_of(j, &m);
    int64_t min = flags & VAL_ZERO_OK ? 0 : 1;
    if (st == MONEY_OK && (m < min || m > VAL_MONEY_MAX))
        st = MONEY_RANGE;
    switch (st) {
    case MONEY_OK: *out = m; return true;
    case MONEY_TYPE:
        fail(v, name, "invalid_type", "must be an amount (a number or a decimal string)");
        break;
    case MONEY_FORMAT:
        fail(v, name, "invalid_format", "must be an amount with at most two decimals");
        break;
    case MONEY_RANGE:
        fail(v, name, "out_of_range", "must be an amount %s 0 and at most 99999999.99",
             min ? "above" : "of at least");
        break;
    }
    return false;
}

bool val_bool(val_ctx *v, json_t *obj, const char *name, int flags, bool *out)
{
    json_t *j = member(v, obj, name, flags);
    if (!j)
        return false;
    if (!json_is_boolean(j)) {
        fail(v, name, "invalid_type", "must be true or false");
        return false;
    }
    *out = json_is_true(j);
    return true;
}

/* ------------------------------------------------------------- nesting */

bool val_array(val_ctx *v, json_t *obj, const char *name, int flags, size_t min_items,
               size_t max_items, json_t **out)
{
    json_t *j = member(v, obj, name, flags);
    if (!j)
        return false;
    if (!json_is_array(j)) {
        fail(v, name, "invalid_type", "must be an array");
        return false;
    }
    size_t n = json_array_size(j);
    if (n < min_items) {
        fail(v, name, "too_short", "must have at least %zu item%s", min_items,
             min_items == 1 ? "" : "s");
        return false;
    }
    if (n > max_items) {
        fail(v, name, "too_long", "must have at most %zu item%s", max_items,
             max_items == 1 ? "" : "s");
        return false;
    }
    *out = j;
    return true;
}

bool val_object(val_ctx *v, json_t *obj, const char *name, int flags, json_t **out)
{
    json_t *j = member(v, obj, name, flags);
    if (!j)
        return false;
    if (!json_is_object(j)) {
        fail(v, name, "invalid_type", "must be an object");
        return false;
    }
    *out = j;
    return true;
}

bool val_object_here(val_ctx *v, json_t *value, json_t **out)
{
    if (!json_is_object(value)) {
        fail(v, NULL, "invalid_type", "must be an object");
        return false;
    }
    *out = value;
    return true;
}
