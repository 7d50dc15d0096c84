/* query.c - query string parameters (see query.h). */
#include "query.h"

#include <stdlib.h>
#include <string.h>

#include "core/event.h"

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes src into dst (room for len bytes); returns the decoded length. */
static size_t decode(const char *src, size_t len, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (src[i] == '+') {
            dst[o++] = ' ';
        } else if (src[i] == '%' && i + 2 < len && (hi = hexval(src[i + 1])) >= 0 &&
                   (lo = hexval(src[i + 2])) >= 0) {
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

static bool utf8_ok(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int k = ev_utf8_len(p, end);
        if (k <= 0)
            return false;
        p += k;
    }
    return true;
}

/* Calls fn for each name=value pair (raw, undecoded); stops when it
 * returns true. */
static bool each_pair(h2o_iovec_t q, bool (*fn)(void *ud, const char *name, size_t nlen,
                                               const char *val, size_t vlen),
                      void *ud)
{
    const char *p = q.base, *end = q.base + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        const char *v = eq ? eq + 1 : pe;
        if (fn(ud, p, (size_t)(ne - p), v, (size_t)(pe - v)))
            return true;
        p = pe + (amp ? 1 : 0);
    }
    return false;
}

/* Whether raw (undecoded) bytes decode to invalid UTF-8. */
static bool bad_bytes(const char *raw, size_t n)
{
    char stack[4096];
    char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf)
        return true;
    bool bad = !utf8_ok(buf, decode(raw, n, buf));
    if (buf != stack)
        free(buf);
    return bad;
}

static bool bad_pair(void *ud, const char *name, size_t nlen, const char *val, size_t vlen)
{
    (void)ud;
    return bad_bytes(name, nlen) || bad_bytes(val, vlen);
}

bool query_valid(h2o_iovec_t query)
{
    return !each_pair(query, bad_pair, NULL);
}

typedef struct finder {
    const char *name;
    size_t nlen;
    const char *val;
    size_t vlen;
    bool found;
} finder;

static bool find_pair(void *ud, const char *name, size_t nlen, const char *val, size_t vlen)
{
    finder *f = ud;
    if (nlen != f->nlen || memcmp(name, f->name, nlen) != 0)
        return false;
    f->val = val;
    f->vlen = vlen;
    f->found = true;
    return true;
}

bool query_get(h2o_mem_pool_t *pool, h2o_iovec_t query, const char *name, h2o_iovec_t *out)
{
    finder f = {name, strlen(name), NULL, 0, false};
    each_pair(query, find_pair, &f);
    if (!f.found)
        return false;
    char *dst = h2o_mem_alloc_pool(pool, f.vlen + 1);
    size_t n = decode(f.val, f.vlen, dst);
    dst[n] = 0;
    *out = h2o_iovec_init(dst, n);
    return true;
}

int64_t query_int(h2o_iovec_t v, int64_t dflt, int64_t min, int64_t max)
{
    size_t i = 0;
    while (i < v.len && v.base[i] == ' ')
        i++;
    bool neg = i < v.len && v.base[i] == '-';
    if (neg || (i < v.len && v.base[i] == '+'))
        i++;
    if (i >= v.len || v.base[i] < '0' || v.base[i] > '9')
        return dflt;
    int64_t x = 0;
    for (; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++)
        x = x > (INT64_MAX - 9) / 10 ? INT64_MAX : x * 10 + (v.base[i] - '0');
    /* "2abc" parses as 2, as parseInt did. */
    if (neg)
        x = -x;
    return x < min ? min : x > max ? max : x;
}

int64_t query_money(h2o_iovec_t v)
{
    size_t i = 0;
    int64_t units = 0, cents = 0;
    int frac = 0;
    if (v.len == 0 || v.base[0] < '0' || v.base[0] > '9')
        return 0;
    for (; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++)
        if ((units = units * 10 + (v.base[i] - '0')) > 100000000000LL)
            return 0;
    if (i < v.len && v.base[i] == '.')
        for (i++; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++, frac++)
            if (frac < 2)
                cents = cents * 10 + (v.base[i] - '0');
    if (i != v.len)
        return 0;
    if (frac == 1)
        cents *= 10;
    int64_t minor = units * 100 + cents;
    return minor > 0 ? minor : 0;
}
