/* proj_cache.c - the LMDB cache projection (see proj_cache.h).
 *
 * Owns: the cache environment's files (data.mdb, lock.mdb, writer.lock,
 * notify), the record formats of its databases, the writer sink that folds
 * events into them, and the reader calls the API serves requests from.
 *
 * Records are sequences of fixed-width native-endian integers and strings
 * (u32 length, UINT32_MAX for null, then the bytes); every reader bounds-
 * checks them. The cache is one machine's store (like the log), so native
 * byte order is fine for values; keys are big-endian for their order.
 */
#define _GNU_SOURCE
#include "proj_cache.h"
#include "cache_gen.h"

#include "core/civil.h"
#include "core/ht.h"
#include "core/mapmem.h"
#include "core/wlock.h"

#include "core/decide.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PC_LAYOUT 2u
#define PC_DEFAULT_MAPSIZE (64ull << 30)
#define PC_MAX_MAPSIZE (1ull << 40)
#define PC_NULL_LEN UINT32_MAX
#define PC_NAME_KEY_MAX 300  /* bytes of the folded name in name-order keys */
#define PC_BRAND_KEY_MAX 255 /* longer brands are not indexed by brand */
#define PC_KEY_MAX 511       /* LMDB's default maximum key size */

enum { DB_META, DB_WATCH, DB_WSORT, DB_BRAND, DB_ORDER, DB_CORDER, DB_CUSTOMER,
       DB_EMAIL, DB_TOKEN, DB_STOCK, DB_COUNT };
static const char *const pc_db_names[DB_COUNT] = {
    "meta", "watch", "wsort", "brand", "order", "corder", "customer", "email", "token",
    "stock"};
/* corder: a customer id with its order ids as sorted duplicates. */
static const unsigned pc_db_flags[DB_COUNT] = {[DB_CORDER] = MDB_DUPSORT | MDB_DUPFIXED};

enum { SCOPE_ALL = 0, SCOPE_BRAND = 0x10 };
static const char pc_sort_kinds[3] = {'n', 'p', 'a'};

/* The stats counters as stored in meta "stats": PC_NSTATS u64 values. */
#define PC_NSTATS (4 + EV_order_status_COUNT + 1)

/* ============================================================ small parts */

const char *proj_cache_strerror(int err)
{
    switch (err) {
    case PROJ_CACHE_OK: return "ok";
    case PROJ_CACHE_EINVAL: return "invalid argument";
    case PROJ_CACHE_EIO: return "storage error";
    case PROJ_CACHE_ELOCKED: return "the cache has another writer";
    case PROJ_CACHE_ENOENT: return "no cache there";
    case PROJ_CACHE_ENOTFOUND: return "not found";
    case PROJ_CACHE_ETIMEDOUT: return "timed out";
    case PROJ_CACHE_ENOMEM: return "out of memory";
    case PROJ_CACHE_ECORRUPT: return "a cache record is damaged";
    case PROJ_CACHE_EFULL: return "the cache map is full";
    case PROJ_CACHE_EMISMATCH: return "the cache was built with another layout or key";
    }
    return "unknown error";
}

static const char *const pc_categories[7] = {NULL,    "automatic", "chronograph", "diver",
                                             "sport", "classic",   "luxury"};

int proj_cache_category_code(ev_str name)
{
    if (!name.p)
        return 0;
    for (int i = 1; i <= 6; i++)
        if (strlen(pc_categories[i]) == name.n &&
            strncasecmp(pc_categories[i], name.p, name.n) == 0)
            return i;
    return 0;
}

const char *proj_cache_category_name(int code)
{
    return code >= 1 && code <= 6 ? pc_categories[code] : NULL;
}

/* Lower case of a code point below U+0800 (so it stays two bytes). */
static uint32_t pc_fold_cp(uint32_t c)
{
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 0x20;
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) ||
        (c >= 0x14A && c <= 0x177))
        return c % 2 == 0 ? c + 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return c % 2 == 1 ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 0x20;
    if (c >= 0x410 && c <= 0x42F)
        return c + 0x20;
    if (c >= 0x400 && c <= 0x40F)
        return c + 0x50;
    return c;
}

void proj_cache_fold(const char *in, size_t n, char *out)
{
    const uint8_t *p = (const uint8_t *)in;
    uint8_t *o = (uint8_t *)out;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            o[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
            i++;
        } else if (c >= 0xC2 && c <= 0xDF && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            uint32_t cp = pc_fold_cp((uint32_t)(c & 0x1F) << 6 | (p[i + 1] & 0x3F));
            o[i] = (uint8_t)(0xC0 | cp >> 6);
            o[i + 1] = (uint8_t)(0x80 | (cp & 0x3F));
            i += 2;
        } else {
            o[i] = c;
            i++;
        }
    }
}

void proj_cache_email_key(const uint8_t key[32], ev_str normalised, uint8_t out[16])
{
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, 32, (const uint8_t *)(normalised.p ? normalised.p : ""),
         normalised.n, h, &n);
    memcpy(out, h, 16);
}

static void pc_key_id(const uint8_t key[32], uint8_t out[16])
{
    proj_cache_email_key(key, EV_STR("watchstore cache e-mail key id"), out);
}

static void be64_put(uint8_t *k, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t be64_get(const uint8_t *k)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | k[i];
    return v;
}

static uint64_t pc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ================================================================ records */

static int put_raw(ev_buf *b, const void *p, size_t n) { return ev_buf_append(b, p, n); }
static int put_u8(ev_buf *b, uint8_t v) { return ev_buf_append(b, &v, 1); }
static int put_u32(ev_buf *b, uint32_t v) { return ev_buf_append(b, &v, 4); }
static int put_u64(ev_buf *b, uint64_t v) { return ev_buf_append(b, &v, 8); }
static int put_i64(ev_buf *b, int64_t v) { return ev_buf_append(b, &v, 8); }
static int put_str(ev_buf *b, ev_str s)
{
    if (!s.p)
        return put_u32(b, PC_NULL_LEN);
    int rc = put_u32(b, s.n);
    return rc ? rc : put_raw(b, s.p, s.n);
}

typedef struct pc_rd {
    const uint8_t *p, *end;
    bool bad;
} pc_rd;

static const uint8_t *rd_raw(pc_rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}
static uint8_t rd_u8(pc_rd *r)
{
    const uint8_t *p = rd_raw(r, 1);
    return p ? *p : 0;
}
static uint32_t rd_u32(pc_rd *r)
{
    uint32_t v = 0;
    const uint8_t *p = rd_raw(r, 4);
    if (p)
        memcpy(&v, p, 4);
    return v;
}
static uint64_t rd_u64(pc_rd *r)
{
    uint64_t v = 0;
    const uint8_t *p = rd_raw(r, 8);
    if (p)
        memcpy(&v, p, 8);
    return v;
}
static int64_t rd_i64(pc_rd *r) { return (int64_t)rd_u64(r); }
static ev_str rd_str(pc_rd *r)
{
    uint32_t n = rd_u32(r);
    if (r->bad || n == PC_NULL_LEN)
        return (ev_str){NULL, 0};
    const uint8_t *p = rd_raw(r, n);
    return p ? (ev_str){(const char *)p, n} : (ev_str){NULL, 0};
}

/* ------------------------------------------------------------------ JSON */

static int js_raw(ev_buf *b, const char *s) { return ev_buf_append(b, s, strlen(s)); }

/* A JSON string, or null; bytes that are not valid UTF-8 become U+FFFD. */
static int js_str(ev_buf *b, ev_str s) { return ev_format_json_str(s, b); }

/* The decimal digits of v, written backwards so that they end at `end`;
 * returns where they start. */
static char *dec_digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static int js_u64(ev_buf *b, uint64_t v)
{
    char t[24], *end = t + sizeof t;
    char *o = dec_digits(end, v);
    return ev_buf_append(b, o, (size_t)(end - o));
}

static int js_i64(ev_buf *b, int64_t v)
{
    char t[24], *end = t + sizeof t;
    char *o = dec_digits(end, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--o = '-';
    return ev_buf_append(b, o, (size_t)(end - o));
}

/* Minor units as "395.00" (quoted) or as a JSON number 395 / 395.5. */
static int js_money(ev_buf *b, int64_t minor, bool number)
{
    uint64_t m = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    unsigned cents = (unsigned)(m % 100);
    char t[32], *end = t + sizeof t, *o = end;
    if (!number)
        *--o = '"';
    if (!number || cents % 10)
        *--o = (char)('0' + cents % 10);
    if (!number || cents) {
        *--o = (char)('0' + cents / 10);
        *--o = '.';
    }
    o = dec_digits(o, m / 100);
    if (minor < 0)
        *--o = '-';
    if (!number)
        *--o = '"';
    return ev_buf_append(b, o, (size_t)(end - o));
}

/* RFC 3339 UTC with milliseconds: "2026-02-18T05:45:06.123Z" (quoted). */
static int js_time(ev_buf *b, uint64_t us)
{
    char t[CIVIL_RFC3339_MAX + 2];
    t[0] = '"';
    size_t n = civil_rfc3339_ms(us, t + 1);
    t[n + 1] = '"';
    return ev_buf_append(b, t, n + 2);
}

static int js_uuid(ev_buf *b, const uint8_t id[16])
{
    char u[37];
    ev_uuid_format(id, u);
    int rc = js_raw(b, "\"");
    rc |= ev_buf_append(b, u, 36);
    return rc | js_raw(b, "\"");
}

/* ---------------------------------------------------------------- watches
 * watch: u8 layout, u8 category code, id[16], i64 price, u64 created,
 * currency[4], str name brand model description image category, str
 * name_lc brand_lc model_lc description_lc, str json_head json_tail.
 * stock: i64 stock, u64 updated (what every sale changes: a small record,
 * so a stock change never rewrites the watch record).
 * The API JSON is json_head, the stock, json_tail, updated_at and "}":
 * json_head ends with "stock_quantity": and json_tail with "updated_at":. */

#define PC_STOCK_REC 16
/* What the JSON adds to json_head and json_tail: a stock (20 bytes at
 * most), a quoted time (28 at most) and "}". */
#define PC_WATCH_JSON_EXTRA 64

/* The JSON before the stock, into b; *head_len its length; then the JSON
 * between the stock and updated_at's value. */
static int watch_json_parts(ev_buf *b, const proj_cache_watch *w, size_t *head_len)
{
    int rc = js_raw(b, "{\"watch_id\":");
    rc |= js_uuid(b, w->watch_id);
    rc |= js_raw(b, ",\"watch_name\":");
    rc |= js_str(b, w->watch_name);
    rc |= js_raw(b, ",\"brand\":");
    rc |= js_str(b, w->brand);
    rc |= js_raw(b, ",\"model_code\":");
    rc |= js_str(b, w->model_code);
    rc |= js_raw(b, ",\"description\":");
    rc |= js_str(b, w->description);
    rc |= js_raw(b, ",\"price\":");
    rc |= js_money(b, w->price, false);
    rc |= js_raw(b, ",\"stock_quantity\":");
    *head_len = b->len;
    rc |= js_raw(b, ",\"image_url\":");
    rc |= js_str(b, w->image_url);
    rc |= js_raw(b, ",\"category\":");
    rc |= js_str(b, w->category);
    rc |= js_raw(b, ",\"created_at\":");
    rc |= js_time(b, w->created_us);
    rc |= js_raw(b, ",\"updated_at\":");
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

/* The API JSON from the record's two parts and the stock record's fields. */
static int watch_render(ev_buf *b, ev_str head, ev_str tail, const proj_cache_watch *w)
{
    int rc = ev_buf_append(b, head.p, head.n);
    rc |= js_i64(b, w->stock);
    rc |= ev_buf_append(b, tail.p, tail.n);
    rc |= js_time(b, w->updated_us);
    rc |= js_raw(b, "}");
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

/* The watch record into *w (all but stock, updated_us and json) and its two
 * JSON parts into parts[0..1]. */
static int watch_decode(const void *p, size_t n, proj_cache_watch *w, ev_str parts[2])
{
    pc_rd r = {p, (const uint8_t *)p + n, false};
    if (rd_u8(&r) != PC_LAYOUT)
        return PROJ_CACHE_ECORRUPT;
    w->category_code = rd_u8(&r);
    const uint8_t *id = rd_raw(&r, 16);
    if (id)
        memcpy(w->watch_id, id, 16);
    w->price = rd_i64(&r);
    w->created_us = rd_u64(&r);
    const uint8_t *cur = rd_raw(&r, 4);
    if (cur) {
        memcpy(w->currency, cur, 3);
        w->currency[3] = 0;
    }
    w->watch_name = rd_str(&r);
    w->brand = rd_str(&r);
    w->model_code = rd_str(&r);
    w->description = rd_str(&r);
    w->image_url = rd_str(&r);
    w->category = rd_str(&r);
    w->name_lc = rd_str(&r);
    w->brand_lc = rd_str(&r);
    w->model_lc = rd_str(&r);
    w->description_lc = rd_str(&r);
    parts[0] = rd_str(&r);
    parts[1] = rd_str(&r);
    w->json = (ev_str){NULL, 0};
    return r.bad || r.p != r.end || !parts[0].p || !parts[1].p ? PROJ_CACHE_ECORRUPT : 0;
}

static void stock_encode(uint8_t out[PC_STOCK_REC], int64_t stock, uint64_t updated_us)
{
    memcpy(out, &stock, 8);
    memcpy(out + 8, &updated_us, 8);
}

static int stock_decode(const MDB_val *v, proj_cache_watch *w)
{
    if (v->mv_size != PC_STOCK_REC)
        return PROJ_CACHE_ECORRUPT;
    memcpy(&w->stock, v->mv_data, 8);
    memcpy(&w->updated_us, (const uint8_t *)v->mv_data + 8, 8);
    return 0;
}

/* ----------------------------------------------------------------- orders
 * u8 layout, u8 status, u8 payment, u8 0, u64 order_id, u64 customer_id,
 * i64 total, u64 order_date, u64 updated, currency[4], u32 n_lines, str
 * shipping intent provider guest_token lines.
 * A line: id[16], i64 quantity unit_price subtotal, str name brand image.
 * The JSON texts readers get (the order, its items in both shapes) are
 * rendered from these when read: a microsecond of formatting, against a
 * record three times as large to write, and rewrite on every change. */

static int order_json(ev_buf *b, const proj_cache_order *o)
{
    int rc = js_raw(b, "{\"order_id\":");
    rc |= js_u64(b, o->order_id);
    rc |= js_raw(b, ",\"customer_id\":");
    rc |= o->customer_id ? js_u64(b, o->customer_id) : js_raw(b, "null");
    rc |= js_raw(b, ",\"order_date\":");
    rc |= js_time(b, o->order_date_us);
    rc |= js_raw(b, ",\"total_amount\":");
    rc |= js_money(b, o->total, false);
    rc |= js_raw(b, ",\"status\":");
    const char *st = ev_enum_name(EV_ENUMSET_order_status, o->status);
    rc |= js_str(b, st ? ev_str_c(st) : (ev_str){NULL, 0});
    rc |= js_raw(b, ",\"shipping_address\":");
    rc |= js_str(b, o->shipping_address);
    rc |= js_raw(b, ",\"payment_intent_id\":");
    rc |= js_str(b, o->payment_intent_id);
    rc |= js_raw(b, ",\"invoice_url\":null}");
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

/* The next line of a lines record (item_id not set). */
static void line_read(pc_rd *r, proj_cache_line *out)
{
    const uint8_t *id = rd_raw(r, 16);
    if (id)
        memcpy(out->watch_id, id, 16);
    out->quantity = rd_i64(r);
    out->unit_price = rd_i64(r);
    out->subtotal = rd_i64(r);
    out->watch_name = rd_str(r);
    out->brand = rd_str(r);
    out->image_url = rd_str(r);
}

/* One item of GET /orders/:id. */
static int item_json(ev_buf *b, const proj_cache_line *l, uint64_t order_id)
{
    int rc = js_raw(b, "{\"item_id\":");
    rc |= js_u64(b, l->item_id);
    rc |= js_raw(b, ",\"order_id\":");
    rc |= js_u64(b, order_id);
    rc |= js_raw(b, ",\"watch_id\":");
    rc |= js_uuid(b, l->watch_id);
    rc |= js_raw(b, ",\"quantity\":");
    rc |= js_i64(b, l->quantity);
    rc |= js_raw(b, ",\"unit_price\":");
    rc |= js_money(b, l->unit_price, false);
    rc |= js_raw(b, ",\"subtotal\":");
    rc |= js_money(b, l->subtotal, false);
    rc |= js_raw(b, ",\"watch_name\":");
    rc |= js_str(b, l->watch_name);
    rc |= js_raw(b, ",\"image_url\":");
    rc |= js_str(b, l->image_url);
    return rc | js_raw(b, "}");
}

/* One item of /orders/my (money as numbers). */
static int my_item_json(ev_buf *b, const proj_cache_line *l)
{
    int rc = js_raw(b, "{\"watch_name\":");
    rc |= js_str(b, l->watch_name);
    rc |= js_raw(b, ",\"quantity\":");
    rc |= js_i64(b, l->quantity);
    rc |= js_raw(b, ",\"unit_price\":");
    rc |= js_money(b, l->unit_price, true);
    rc |= js_raw(b, ",\"subtotal\":");
    rc |= js_money(b, l->subtotal, true);
    return rc | js_raw(b, "}");
}

/* The items array of an order, in the /orders/my shape or the other. */
static int order_items_json(ev_buf *b, const proj_cache_order *o, bool my)
{
    pc_rd r = {(const uint8_t *)o->lines_.p, (const uint8_t *)o->lines_.p + o->lines_.n, false};
    int rc = js_raw(b, "[");
    for (uint32_t i = 0; i < o->n_lines && !rc; i++) {
        proj_cache_line l;
        line_read(&r, &l);
        if (r.bad)
            return PROJ_CACHE_ECORRUPT;
        l.item_id = o->order_id * 100 + i;
        if (i)
            rc |= js_raw(b, ",");
        rc |= my ? my_item_json(b, &l) : item_json(b, &l, o->order_id);
    }
    rc |= js_raw(b, "]");
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

/* Renders the order's JSON texts at the end of b: *at receives where they
 * start, lens their lengths (the order, its items, its /orders/my items).
 * The order's strings must not point into b. */
static int order_render_parts(ev_buf *b, const proj_cache_order *o, size_t *at, size_t lens[3])
{
    *at = b->len;
    for (int k = 0; k < 3; k++) {
        size_t start = b->len;
        int rc = k == 0 ? order_json(b, o) : order_items_json(b, o, k == 2);
        if (rc)
            return rc;
        lens[k] = b->len - start;
    }
    return 0;
}

/* Points the order's json, items_json and my_items_json at texts that
 * order_render_parts left in b. */
static void order_point_parts(proj_cache_order *o, const ev_buf *b, size_t at,
                              const size_t lens[3])
{
    const char *p = (const char *)b->p + at;
    o->json = (ev_str){p, (uint32_t)lens[0]};
    o->items_json = (ev_str){p + lens[0], (uint32_t)lens[1]};
    o->my_items_json = (ev_str){p + lens[0] + lens[1], (uint32_t)lens[2]};
}

static int order_encode(ev_buf *b, const proj_cache_order *o)
{
    b->len = 0;
    int rc = put_u8(b, PC_LAYOUT);
    rc |= put_u8(b, (uint8_t)o->status);
    rc |= put_u8(b, (uint8_t)o->payment);
    rc |= put_u8(b, 0);
    rc |= put_u64(b, o->order_id);
    rc |= put_u64(b, o->customer_id);
    rc |= put_i64(b, o->total);
    rc |= put_u64(b, o->order_date_us);
    rc |= put_u64(b, o->updated_us);
    rc |= put_raw(b, o->currency, 4);
    rc |= put_u32(b, o->n_lines);
    rc |= put_str(b, o->shipping_address);
    rc |= put_str(b, o->payment_intent_id);
    rc |= put_str(b, o->payment_provider);
    rc |= put_str(b, o->guest_token_hash);
    rc |= put_str(b, o->lines_);
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

/* The order record into *o (its JSON texts left null). */
static int order_decode(const void *p, size_t n, proj_cache_order *o)
{
    pc_rd r = {p, (const uint8_t *)p + n, false};
    if (rd_u8(&r) != PC_LAYOUT)
        return PROJ_CACHE_ECORRUPT;
    o->status = rd_u8(&r);
    o->payment = rd_u8(&r);
    rd_u8(&r);
    o->order_id = rd_u64(&r);
    o->customer_id = rd_u64(&r);
    o->total = rd_i64(&r);
    o->order_date_us = rd_u64(&r);
    o->updated_us = rd_u64(&r);
    const uint8_t *cur = rd_raw(&r, 4);
    if (cur) {
        memcpy(o->currency, cur, 3);
        o->currency[3] = 0;
    }
    o->n_lines = rd_u32(&r);
    o->shipping_address = rd_str(&r);
    o->payment_intent_id = rd_str(&r);
    o->payment_provider = rd_str(&r);
    o->guest_token_hash = rd_str(&r);
    o->lines_ = rd_str(&r);
    o->json = o->items_json = o->my_items_json = (ev_str){NULL, 0};
    if (r.bad || r.p != r.end || !o->lines_.p || o->n_lines > EV_MAX_LINES)
        return PROJ_CACHE_ECORRUPT;
    return 0;
}

int proj_cache_order_line(const proj_cache_order *o, uint32_t i, proj_cache_line *out)
{
    if (!o || !out)
        return PROJ_CACHE_EINVAL;
    if (i >= o->n_lines || !o->lines_.p)
        return PROJ_CACHE_ENOTFOUND;
    pc_rd r = {(const uint8_t *)o->lines_.p, (const uint8_t *)o->lines_.p + o->lines_.n, false};
    for (uint32_t k = 0; k <= i && !r.bad; k++)
        line_read(&r, out);
    if (r.bad)
        return PROJ_CACHE_ECORRUPT;
    out->item_id = o->order_id * 100 + i;
    return 0;
}

int proj_cache_order_render(const proj_cache_order *o, bool my_items, ev_buf *out)
{
    if (!o || !out || !o->json.p || o->json.n < 2)
        return PROJ_CACHE_EINVAL;
    ev_str items = my_items ? o->my_items_json : o->items_json;
    int rc = ev_buf_append(out, o->json.p, o->json.n - 1); /* without its '}' */
    rc |= js_raw(out, ",\"items\":");
    rc |= ev_buf_append(out, items.p, items.n);
    rc |= js_raw(out, "}");
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

/* -------------------------------------------------------------- customers
 * u8 layout, u8 role, u64 id, u64 created, u64 updated, str email
 * full_name phone password_hash */

static int customer_encode(ev_buf *b, const proj_cache_customer *c)
{
    b->len = 0;
    int rc = put_u8(b, PC_LAYOUT);
    rc |= put_u8(b, (uint8_t)c->role);
    rc |= put_u64(b, c->customer_id);
    rc |= put_u64(b, c->created_us);
    rc |= put_u64(b, c->updated_us);
    rc |= put_str(b, c->email);
    rc |= put_str(b, c->full_name);
    rc |= put_str(b, c->phone);
    rc |= put_str(b, c->password_hash);
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

static int customer_decode(const void *p, size_t n, proj_cache_customer *c)
{
    pc_rd r = {p, (const uint8_t *)p + n, false};
    if (rd_u8(&r) != PC_LAYOUT)
        return PROJ_CACHE_ECORRUPT;
    c->role = rd_u8(&r);
    c->customer_id = rd_u64(&r);
    c->created_us = rd_u64(&r);
    c->updated_us = rd_u64(&r);
    c->email = rd_str(&r);
    c->full_name = rd_str(&r);
    c->phone = rd_str(&r);
    c->password_hash = rd_str(&r);
    return r.bad || r.p != r.end ? PROJ_CACHE_ECORRUPT : 0;
}

/* ----------------------------------------------------------------- tokens
 * u8 layout, u8 revoked, u64 customer_id, u64 expires_at, u64 issued,
 * u64 revoked_us, str reason replaces replaced_by */

static int token_encode(ev_buf *b, const proj_cache_token *t)
{
    b->len = 0;
    int rc = put_u8(b, PC_LAYOUT);
    rc |= put_u8(b, t->revoked ? 1 : 0);
    rc |= put_u64(b, t->customer_id);
    rc |= put_u64(b, t->expires_at);
    rc |= put_u64(b, t->issued_us);
    rc |= put_u64(b, t->revoked_us);
    rc |= put_str(b, t->revoke_reason);
    rc |= put_str(b, t->replaces);
    rc |= put_str(b, t->replaced_by);
    return rc ? PROJ_CACHE_ENOMEM : 0;
}

static int token_decode(const void *p, size_t n, proj_cache_token *t)
{
    pc_rd r = {p, (const uint8_t *)p + n, false};
    if (rd_u8(&r) != PC_LAYOUT)
        return PROJ_CACHE_ECORRUPT;
    t->revoked = rd_u8(&r) != 0;
    t->customer_id = rd_u64(&r);
    t->expires_at = rd_u64(&r);
    t->issued_us = rd_u64(&r);
    t->revoked_us = rd_u64(&r);
    t->revoke_reason = rd_str(&r);
    t->replaces = rd_str(&r);
    t->replaced_by = rd_str(&r);
    return r.bad || r.p != r.end ? PROJ_CACHE_ECORRUPT : 0;
}

/* ------------------------------------------------------------------ stats */

static void stats_to_arr(const proj_cache_stats *s, uint64_t a[PC_NSTATS])
{
    a[0] = s->watches;
    a[1] = s->low_stock;
    a[2] = s->customers;
    a[3] = s->orders;
    for (int i = 0; i < EV_order_status_COUNT; i++)
        a[4 + i] = s->orders_by_status[i];
    a[4 + EV_order_status_COUNT] = (uint64_t)s->revenue;
}

static void stats_from_arr(proj_cache_stats *s, const uint64_t a[PC_NSTATS])
{
    s->watches = a[0];
    s->low_stock = a[1];
    s->customers = a[2];
    s->orders = a[3];
    for (int i = 0; i < EV_order_status_COUNT; i++)
        s->orders_by_status[i] = a[4 + i];
    s->revenue = (int64_t)a[4 + EV_order_status_COUNT];
}

/* ------------------------------------------------------------- index keys */

/* [kind][scope] (+ [len][brand] for a brand scope). Returns the length, or
 * 0 when the brand is too long to be indexed. */
static size_t sort_prefix(uint8_t *k, char kind, int scope, ev_str brand)
{
    k[0] = (uint8_t)kind;
    k[1] = (uint8_t)scope;
    if (scope != SCOPE_BRAND)
        return 2;
    if (!brand.p || brand.n > PC_BRAND_KEY_MAX)
        return 0;
    k[2] = (uint8_t)brand.n;
    memcpy(k + 3, brand.p, brand.n);
    return 3 + brand.n;
}

/* The sort part of a watch's key for `kind`, appended at k + off. */
static size_t sort_suffix(uint8_t *k, size_t off, char kind, const proj_cache_watch *w)
{
    if (kind == 'n') {
        be64_put(k + off, w->created_us);
        off += 8;
    } else if (kind == 'p') {
        be64_put(k + off, (uint64_t)w->price ^ (1ull << 63));
        off += 8;
    } else {
        size_t n = w->watch_name.n < PC_NAME_KEY_MAX ? w->watch_name.n : PC_NAME_KEY_MAX;
        if (n)
            proj_cache_fold(w->watch_name.p, n, (char *)k + off);
        off += n;
        k[off++] = 0;
    }
    memcpy(k + off, w->watch_id, 16);
    return off + 16;
}

/* [scope][0 | 1 brand] */
static size_t brand_count_key(uint8_t *k, int scope, ev_str brand)
{
    k[0] = (uint8_t)scope;
    if (!brand.p) {
        k[1] = 0;
        return 2;
    }
    size_t n = brand.n < PC_KEY_MAX - 2 ? brand.n : PC_KEY_MAX - 2;
    k[1] = 1;
    memcpy(k + 2, brand.p, n);
    return 2 + n;
}

static bool has_prefix(const MDB_val *k, const uint8_t *pre, size_t n)
{
    return k->mv_size >= n && memcmp(k->mv_data, pre, n) == 0;
}

/* Cursor on the first (or last) key starting with pre; MDB_NOTFOUND if none. */
static int cur_first_prefix(MDB_cursor *c, const uint8_t *pre, size_t n, MDB_val *k, MDB_val *v)
{
    *k = (MDB_val){n, (void *)pre};
    int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    if (rc == 0 && !has_prefix(k, pre, n))
        rc = MDB_NOTFOUND;
    return rc;
}

static int cur_last_prefix(MDB_cursor *c, const uint8_t *pre, size_t n, MDB_val *k, MDB_val *v)
{
    uint8_t succ[PC_KEY_MAX + 1];
    size_t m = n;
    memcpy(succ, pre, n);
    while (m > 0 && succ[m - 1] == 0xFF)
        m--;
    int rc;
    if (m == 0) {
        rc = mdb_cursor_get(c, k, v, MDB_LAST);
    } else {
        succ[m - 1]++;
        *k = (MDB_val){m, succ};
        rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
        if (rc == 0)
            rc = mdb_cursor_get(c, k, v, MDB_PREV);
        else if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(c, k, v, MDB_LAST);
    }
    if (rc == 0 && !has_prefix(k, pre, n))
        rc = MDB_NOTFOUND;
    return rc;
}

/* ================================================================= writer */

typedef struct pc_stock_ent {
    uint8_t id[16];
    int64_t stock;
    uint64_t updated_us;
} pc_stock_ent;

/* The part of an order line that comes from its watch (name, brand and
 * image, put_str each), in the writer's linfo_bytes at off. */
typedef struct pc_linfo {
    size_t off;
    uint32_t n;
} pc_linfo;

typedef struct pc_writer {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    MDB_txn *txn;
    uint64_t base_pos; /* the stored position when the batch began */
    proj_cache_stats stats;
    int lock_fd, notify_fd;
    bool builder;      /* builds a generation for a rebuild (no lock, no sync) */
    bool grow;         /* the last batch ran out of map */
    int n_readers;     /* readers sharing this environment */
    uint64_t inconsistent;       /* committed batches' */
    uint64_t batch_inconsistent; /* this batch's, added on commit */
    ht stock_ix;          /* watch id -> index in stock_v */
    pc_stock_ent *stock_v; /* the stock records this batch changed */
    size_t stock_n, stock_cap;
    uint8_t email_key[32];
    char root[4096];  /* the cache root (cache_gen.h) */
    char path[4200];  /* the generation written to */
    char errmsg[512];
    ev_buf rec, json, old, fold, lines;
    /* What an order line takes from its watch, per watch, for this batch
     * (forgotten when a watch changes): see w_line_info. */
    ht linfo_ix;           /* watch id -> index in linfo */
    pc_linfo *linfo;
    size_t linfo_n, linfo_cap;
    ev_buf linfo_bytes;
} pc_writer;

static int wfail(pc_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int wfail(pc_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

static int wmdb(pc_writer *w, int mrc, const char *what)
{
    if (mrc == MDB_MAP_FULL) {
        w->grow = true;
        return wfail(w, PROJ_CACHE_EFULL,
                     "cache %s is full while %s (the map grows for the next try)", w->path,
                     what);
    }
    return wfail(w, PROJ_CACHE_EIO, "cache %s: %s: %s", w->path, what, mdb_strerror(mrc));
}

static int w_put(pc_writer *w, int db, const void *k, size_t kn, const void *v, size_t vn)
{
    MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
    int mrc = mdb_put(w->txn, w->dbi[db], &key, &val, 0);
    return mrc ? wmdb(w, mrc, "writing") : 0;
}

static int w_del(pc_writer *w, int db, const void *k, size_t kn)
{
    MDB_val key = {kn, (void *)k};
    int mrc = mdb_del(w->txn, w->dbi[db], &key, NULL);
    return mrc && mrc != MDB_NOTFOUND ? wmdb(w, mrc, "deleting") : 0;
}

/* 1 found (v points into the map until the next write), 0 not, < 0 error. */
static int w_get(pc_writer *w, int db, const void *k, size_t kn, MDB_val *v)
{
    MDB_val key = {kn, (void *)k};
    int mrc = mdb_get(w->txn, w->dbi[db], &key, v);
    if (mrc == MDB_NOTFOUND)
        return 0;
    return mrc ? wmdb(w, mrc, "reading") : 1;
}

/* Like w_get, but copies the value into w->old (safe across writes). */
static int w_load(pc_writer *w, int db, const void *k, size_t kn)
{
    MDB_val v;
    int rc = w_get(w, db, k, kn, &v);
    if (rc <= 0)
        return rc;
    w->old.len = 0;
    if (ev_buf_append(&w->old, v.mv_data, v.mv_size))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    return 1;
}

static int w_corrupt(pc_writer *w, const char *what)
{
    return wfail(w, PROJ_CACHE_ECORRUPT, "cache %s: a stored %s record is damaged", w->path, what);
}

/* ---------------------------------------------------------------- watches */

/* Adds (delta +1) or removes (-1) a watch's index entries and brand counts. */
static int w_index(pc_writer *w, const proj_cache_watch *wa, int delta)
{
    uint8_t k[PC_KEY_MAX + 1];
    int scopes[3], ns = 0;
    scopes[ns++] = SCOPE_ALL;
    if (wa->category_code >= 1 && wa->category_code <= 6)
        scopes[ns++] = wa->category_code;
    if (wa->brand.p)
        scopes[ns++] = SCOPE_BRAND;
    int rc = 0;
    for (int s = 0; s < 3 && !rc; s++)
        for (int i = 0; i < ns && !rc; i++) {
            size_t n = sort_prefix(k, pc_sort_kinds[s], scopes[i], wa->brand);
            if (!n)
                continue;
            n = sort_suffix(k, n, pc_sort_kinds[s], wa);
            rc = delta > 0 ? w_put(w, DB_WSORT, k, n, "", 0) : w_del(w, DB_WSORT, k, n);
        }
    /* brand counts: overall and within the category */
    for (int i = 0; i < ns && !rc; i++) {
        if (scopes[i] == SCOPE_BRAND)
            continue;
        size_t n = brand_count_key(k, scopes[i], wa->brand);
        MDB_val v;
        uint64_t count = 0;
        rc = w_get(w, DB_BRAND, k, n, &v);
        if (rc < 0)
            break;
        if (rc == 1 && v.mv_size == 8)
            memcpy(&count, v.mv_data, 8);
        rc = 0;
        if (delta > 0)
            count++;
        else if (count > 0)
            count--;
        rc = count ? w_put(w, DB_BRAND, k, n, &count, 8) : w_del(w, DB_BRAND, k, n);
    }
    return rc;
}

/* Folds the four searchable fields of *wa into w->fold; lc receives them. */
static int w_watch_fold(pc_writer *w, const proj_cache_watch *wa, ev_str lc[4])
{
    ev_str src[4] = {wa->watch_name, wa->brand, wa->model_code, wa->description};
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += src[i].n;
    w->fold.len = 0;
    if (ev_buf_reserve(&w->fold, total + 1))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    for (int i = 0; i < 4; i++) {
        char *o = (char *)w->fold.p + w->fold.len;
        if (src[i].n)
            proj_cache_fold(src[i].p, src[i].n, o);
        lc[i] = src[i].p ? (ev_str){o, src[i].n} : (ev_str){NULL, 0};
        w->fold.len += src[i].n;
    }
    return 0;
}

/* A new entry for watch `id` in the batch's stock records: *out. */
static int w_stock_add(pc_writer *w, const uint8_t id[16], pc_stock_ent **out)
{
    if (w->stock_n == w->stock_cap) {
        size_t cap = w->stock_cap ? 2 * w->stock_cap : 256;
        pc_stock_ent *v = realloc(w->stock_v, cap * sizeof *v);
        if (!v)
            return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
        w->stock_v = v;
        w->stock_cap = cap;
    }
    if (ht_put(&w->stock_ix, id, w->stock_n))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    *out = &w->stock_v[w->stock_n++];
    memcpy((*out)->id, id, 16);
    return 0;
}

/* Watch `id`'s stock record as the batch left it (the changes of a batch
 * are kept here and written once, at its commit): *out, valid until the
 * next entry is added. 1 found, 0 not (no such watch), < 0 error. */
static int w_stock_entry(pc_writer *w, const uint8_t id[16], pc_stock_ent **out)
{
    uint64_t i;
    if (ht_get(&w->stock_ix, id, &i)) {
        *out = &w->stock_v[i];
        return 1;
    }
    MDB_val v;
    proj_cache_watch wa;
    int rc = w_get(w, DB_STOCK, id, 16, &v);
    if (rc <= 0)
        return rc;
    if (stock_decode(&v, &wa))
        return w_corrupt(w, "stock");
    if ((rc = w_stock_add(w, id, out)) != 0)
        return rc;
    (*out)->stock = wa.stock;
    (*out)->updated_us = wa.updated_us;
    return 1;
}

/* A watch's stock and updated time as the batch left them. 1 found, 0 not,
 * < 0 error. */
static int w_stock_get(pc_writer *w, const uint8_t id[16], int64_t *stock, uint64_t *updated_us)
{
    pc_stock_ent *e;
    int rc = w_stock_entry(w, id, &e);
    if (rc == 1) {
        *stock = e->stock;
        *updated_us = e->updated_us;
    }
    return rc;
}

/* Sets a watch's stock record for this batch's commit. */
static int w_stock_set(pc_writer *w, const uint8_t id[16], int64_t stock, uint64_t updated_us)
{
    uint64_t i;
    pc_stock_ent *e;
    if (ht_get(&w->stock_ix, id, &i))
        e = &w->stock_v[i];
    else if (w_stock_add(w, id, &e) != 0)
        return PROJ_CACHE_ENOMEM;
    e->stock = stock;
    e->updated_us = updated_us;
    return 0;
}

/* Writes the batch's stock records. */
static int w_stock_flush(pc_writer *w)
{
    for (size_t i = 0; i < w->stock_n; i++) {
        uint8_t v[PC_STOCK_REC];
        stock_encode(v, w->stock_v[i].stock, w->stock_v[i].updated_us);
        int rc = w_put(w, DB_STOCK, w->stock_v[i].id, 16, v, sizeof v);
        if (rc)
            return rc;
    }
    return 0;
}

/* Forgets the batch's stock changes (written, or abandoned with it). */
static void w_stock_reset(pc_writer *w)
{
    ht_free(&w->stock_ix);
    w->stock_n = 0;
}

/* Forgets the order-line pieces of every watch (a watch changed, or the
 * batch ended). */
static void w_lines_forget(pc_writer *w)
{
    ht_free(&w->linfo_ix);
    w->linfo_n = 0;
    w->linfo_bytes.len = 0;
}

/* Encodes (folding, rendering the JSON) and stores a watch record and its
 * stock record. */
static int w_watch_store(pc_writer *w, proj_cache_watch *wa)
{
    ev_str lc[4];
    w_lines_forget(w);
    if (w_watch_fold(w, wa, lc))
        return PROJ_CACHE_ENOMEM;
    wa->category_code = proj_cache_category_code(wa->category);
    if (wa->category.p && !wa->category_code)
        wa->category_code = PROJ_CACHE_CAT_OTHER;
    size_t head = 0;
    w->json.len = 0;
    if (watch_json_parts(&w->json, wa, &head))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    ev_buf *b = &w->rec;
    b->len = 0;
    int rc = put_u8(b, PC_LAYOUT);
    rc |= put_u8(b, (uint8_t)wa->category_code);
    rc |= put_raw(b, wa->watch_id, 16);
    rc |= put_i64(b, wa->price);
    rc |= put_u64(b, wa->created_us);
    rc |= put_raw(b, wa->currency, 4);
    rc |= put_str(b, wa->watch_name);
    rc |= put_str(b, wa->brand);
    rc |= put_str(b, wa->model_code);
    rc |= put_str(b, wa->description);
    rc |= put_str(b, wa->image_url);
    rc |= put_str(b, wa->category);
    for (int i = 0; i < 4; i++)
        rc |= put_str(b, lc[i]);
    rc |= put_str(b, (ev_str){(const char *)w->json.p, (uint32_t)head});
    rc |= put_str(b, (ev_str){(const char *)w->json.p + head, (uint32_t)(w->json.len - head)});
    if (rc)
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    if ((rc = w_put(w, DB_WATCH, wa->watch_id, 16, b->p, b->len)) != 0)
        return rc;
    return w_stock_set(w, wa->watch_id, wa->stock, wa->updated_us);
}

/* Loads a watch into *wa (strings in w->old), its stock too. 1 found, 0
 * not, < 0 error. */
static int w_watch_load(pc_writer *w, const uint8_t id[16], proj_cache_watch *wa)
{
    int rc = w_load(w, DB_WATCH, id, 16);
    if (rc <= 0)
        return rc;
    ev_str parts[2];
    if (watch_decode(w->old.p, w->old.len, wa, parts))
        return w_corrupt(w, "watch");
    rc = w_stock_get(w, id, &wa->stock, &wa->updated_us);
    return rc == 0 ? w_corrupt(w, "stock") : rc;
}

static void stats_low(pc_writer *w, int64_t stock, int delta)
{
    if (stock < PROJ_CACHE_LOW_STOCK) {
        if (delta > 0)
            w->stats.low_stock++;
        else if (w->stats.low_stock)
            w->stats.low_stock--;
    }
}

static void set_currency(char out[4], ev_str cur)
{
    memset(out, 0, 4);
    if (cur.p)
        memcpy(out, cur.p, cur.n < 3 ? cur.n : 3);
}

static int w_watch_added(pc_writer *w, const ev_event *ev)
{
    const ev_watch_added *p = &ev->u.watch_added;
    proj_cache_watch old;
    int rc = w_watch_load(w, p->watch_id, &old);
    if (rc < 0)
        return rc;
    if (rc == 1) { /* added twice: the later one wins */
        w->batch_inconsistent++;
        if ((rc = w_index(w, &old, -1)) != 0)
            return rc;
        if (w->stats.watches)
            w->stats.watches--;
        stats_low(w, old.stock, -1);
    }
    proj_cache_watch n;
    memset(&n, 0, sizeof n);
    memcpy(n.watch_id, p->watch_id, 16);
    n.watch_name = p->watch_name;
    n.brand = p->brand;
    n.model_code = p->model_code;
    n.description = p->description;
    n.image_url = p->image_url;
    n.category = p->category;
    n.price = p->price;
    n.stock = p->stock_quantity;
    set_currency(n.currency, p->currency);
    n.created_us = n.updated_us = ev->env.recorded_us;
    if ((rc = w_watch_store(w, &n)) != 0 || (rc = w_index(w, &n, +1)) != 0)
        return rc;
    w->stats.watches++;
    stats_low(w, n.stock, +1);
    return 0;
}

static int w_watch_updated(pc_writer *w, const ev_event *ev)
{
    const ev_watch_updated *p = &ev->u.watch_updated;
    proj_cache_watch o;
    int rc = w_watch_load(w, p->watch_id, &o);
    if (rc <= 0) {
        w->batch_inconsistent += rc == 0;
        return rc;
    }
    uint64_t ch = p->changed;
    bool reindex = ch & (EV_WF_NAME | EV_WF_BRAND | EV_WF_PRICE | EV_WF_CATEGORY);
    if (reindex && (rc = w_index(w, &o, -1)) != 0)
        return rc;
    proj_cache_watch n = o;
    if (ch & EV_WF_NAME)
        n.watch_name = p->watch_name.p ? p->watch_name : EV_STR("");
    if (ch & EV_WF_BRAND)
        n.brand = p->brand;
    if (ch & EV_WF_MODEL_CODE)
        n.model_code = p->model_code;
    if (ch & EV_WF_DESCRIPTION)
        n.description = p->description;
    if (ch & EV_WF_PRICE)
        n.price = p->price;
    if (ch & EV_WF_IMAGE_URL)
        n.image_url = p->image_url;
    if (ch & EV_WF_CATEGORY)
        n.category = p->category;
    n.updated_us = ev->env.recorded_us;
    if ((rc = w_watch_store(w, &n)) != 0)
        return rc;
    return reindex ? w_index(w, &n, +1) : 0;
}

static int w_stock_adjusted(pc_writer *w, const ev_event *ev)
{
    const ev_stock_adjusted *p = &ev->u.stock_adjusted;
    pc_stock_ent *e;
    int rc = w_stock_entry(w, p->watch_id, &e);
    if (rc <= 0) {
        w->batch_inconsistent += rc == 0;
        return rc;
    }
    stats_low(w, e->stock, -1);
    stats_low(w, p->quantity, +1);
    e->stock = p->quantity;
    e->updated_us = ev->env.recorded_us;
    return 0;
}

/* -------------------------------------------------------------- customers */

static int w_email_key(pc_writer *w, ev_str email, uint8_t k[16])
{
    char norm[256];
    int n = dec_normalise_email(email, norm, sizeof norm);
    /* Events carry normalised addresses; one that does not normalise (an
     * import) is indexed as it is. */
    proj_cache_email_key(w->email_key, n >= 0 ? (ev_str){norm, (uint32_t)n} : email, k);
    return 0;
}

static int w_customer_registered(pc_writer *w, const ev_event *ev)
{
    const ev_customer_registered *p = &ev->u.customer_registered;
    uint8_t id[8], ek[16];
    be64_put(id, p->customer_id);
    int rc = w_load(w, DB_CUSTOMER, id, 8);
    if (rc < 0)
        return rc;
    if (rc == 1) { /* registered twice: the later one wins */
        proj_cache_customer old;
        w->batch_inconsistent++;
        if (customer_decode(w->old.p, w->old.len, &old))
            return w_corrupt(w, "customer");
        w_email_key(w, old.email, ek);
        if ((rc = w_del(w, DB_EMAIL, ek, 16)) != 0)
            return rc;
        if (w->stats.customers)
            w->stats.customers--;
    }
    proj_cache_customer c = {
        .customer_id = p->customer_id,
        .role = p->role,
        .created_us = ev->env.recorded_us,
        .updated_us = ev->env.recorded_us,
        .email = p->email,
        .full_name = p->full_name,
        .phone = p->phone,
        .password_hash = p->password_hash,
    };
    if (customer_encode(&w->rec, &c))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    if ((rc = w_put(w, DB_CUSTOMER, id, 8, w->rec.p, w->rec.len)) != 0)
        return rc;
    w_email_key(w, p->email, ek);
    if ((rc = w_put(w, DB_EMAIL, ek, 16, id, 8)) != 0)
        return rc;
    w->stats.customers++;
    return 0;
}

/* Changes one field of customer `id`'s record (the role or the password
 * hash, which login reads through the e-mail index) and its update time;
 * the rest of the record stays. An unknown customer is counted and
 * skipped. */
static int w_customer_edit(pc_writer *w, uint64_t customer_id, const ev_event *ev,
                           const uint8_t *role, const ev_str *password_hash)
{
    uint8_t id[8];
    be64_put(id, customer_id);
    int rc = w_load(w, DB_CUSTOMER, id, 8);
    if (rc <= 0) {
        w->batch_inconsistent += rc == 0;
        return rc;
    }
    proj_cache_customer c;
    if (customer_decode(w->old.p, w->old.len, &c))
        return w_corrupt(w, "customer");
    if (role)
        c.role = *role;
    if (password_hash)
        c.password_hash = *password_hash;
    c.updated_us = ev->env.recorded_us;
    if (customer_encode(&w->rec, &c))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    return w_put(w, DB_CUSTOMER, id, 8, w->rec.p, w->rec.len);
}

static int w_customer_role_changed(pc_writer *w, const ev_event *ev)
{
    const ev_customer_role_changed *p = &ev->u.customer_role_changed;
    return w_customer_edit(w, p->customer_id, ev, &p->role, NULL);
}

static int w_customer_password_changed(pc_writer *w, const ev_event *ev)
{
    const ev_customer_password_changed *p = &ev->u.customer_password_changed;
    return w_customer_edit(w, p->customer_id, ev, NULL, &p->password_hash);
}

/* ----------------------------------------------------------------- orders */

static void stats_order(pc_writer *w, const proj_cache_order *o, int delta)
{
    proj_cache_stats *s = &w->stats;
    bool counts = o->status != EV_order_status_CANCELLED;
    if (delta > 0) {
        s->orders++;
        if (o->status >= 0 && o->status < EV_order_status_COUNT)
            s->orders_by_status[o->status]++;
        if (counts)
            s->revenue += o->total;
    } else {
        if (s->orders)
            s->orders--;
        if (o->status >= 0 && o->status < EV_order_status_COUNT && s->orders_by_status[o->status])
            s->orders_by_status[o->status]--;
        if (counts)
            s->revenue -= o->total;
    }
}

/* Encodes an order's record into w->rec. */
static int w_order_encode(pc_writer *w, const proj_cache_order *o)
{
    return order_encode(&w->rec, o) ? wfail(w, PROJ_CACHE_ENOMEM, "out of memory") : 0;
}

static int w_order_store(pc_writer *w, proj_cache_order *o)
{
    int rc = w_order_encode(w, o);
    if (rc)
        return rc;
    uint8_t id[8];
    be64_put(id, o->order_id);
    return w_put(w, DB_ORDER, id, 8, w->rec.p, w->rec.len);
}

/* Loads an order into *o (strings in w->old). 1 found, 0 not, < 0 error. */
static int w_order_load(pc_writer *w, uint64_t order_id, proj_cache_order *o)
{
    uint8_t id[8];
    be64_put(id, order_id);
    int rc = w_load(w, DB_ORDER, id, 8);
    if (rc <= 0)
        return rc;
    if (order_decode(w->old.p, w->old.len, o))
        return w_corrupt(w, "order");
    return 1;
}

/* Appends watch wa's part of an order line (see pc_linfo) to linfo_bytes. */
static int w_line_render(pc_writer *w, const proj_cache_watch *wa, pc_linfo *li)
{
    ev_buf *b = &w->linfo_bytes;
    li->off = b->len;
    int e = put_str(b, wa->watch_name) | put_str(b, wa->brand) | put_str(b, wa->image_url);
    li->n = (uint32_t)(b->len - li->off);
    return e ? wfail(w, PROJ_CACHE_ENOMEM, "out of memory") : 0;
}

/* Watch `id`'s part of an order line into *li: known this batch, or read
 * from its record. 1 found, 0 a watch the cache does not have (null
 * strings, not remembered), < 0 error. */
static int w_line_info(pc_writer *w, const uint8_t id[16], pc_linfo *li)
{
    uint64_t i;
    if (ht_get(&w->linfo_ix, id, &i)) {
        *li = w->linfo[i];
        return 1;
    }
    proj_cache_watch wa;
    ev_str parts[2];
    MDB_val v;
    memset(&wa, 0, sizeof wa);
    int rc = w_get(w, DB_WATCH, id, 16, &v);
    if (rc < 0)
        return rc;
    if (rc == 1 && watch_decode(v.mv_data, v.mv_size, &wa, parts))
        return w_corrupt(w, "watch");
    bool found = rc == 1;
    if ((rc = w_line_render(w, &wa, li)) != 0 || !found)
        return rc;
    if (w->linfo_n == w->linfo_cap) {
        size_t cap = w->linfo_cap ? 2 * w->linfo_cap : 256;
        pc_linfo *n = realloc(w->linfo, cap * sizeof *n);
        if (!n)
            return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
        w->linfo = n;
        w->linfo_cap = cap;
    }
    if (ht_put(&w->linfo_ix, id, w->linfo_n))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    w->linfo[w->linfo_n++] = *li;
    return 1;
}

/* The lines of an order as placed, each with its watch's name, brand and
 * image now, into w->lines. */
static int w_order_lines(pc_writer *w, const ev_order_placed *p)
{
    ev_buf *L = &w->lines;
    L->len = 0;
    for (uint32_t i = 0; i < p->lines.n; i++) {
        const ev_line *l = &p->lines.v[i];
        pc_linfo li;
        int rc = w_line_info(w, l->watch_id, &li);
        if (rc < 0)
            return rc;
        w->batch_inconsistent += rc == 0;
        int e = put_raw(L, l->watch_id, 16);
        e |= put_i64(L, l->quantity);
        e |= put_i64(L, l->unit_price);
        e |= put_i64(L, l->subtotal);
        e |= put_raw(L, w->linfo_bytes.p + li.off, li.n);
        if (e)
            return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    }
    return 0;
}

/* The corder entry of a customer's order: put (delta +1) or deleted (-1).
 * A customer's orders come in increasing order ids, so they are appended
 * to the customer's list; one that does not (a contradicting log) is put in
 * its place. */
static int w_corder(pc_writer *w, uint64_t customer_id, uint64_t order_id, int delta)
{
    uint8_t ck[8], ok[8];
    be64_put(ck, customer_id);
    be64_put(ok, order_id);
    MDB_val key = {8, ck}, val = {8, ok};
    int mrc = delta > 0 ? mdb_put(w->txn, w->dbi[DB_CORDER], &key, &val, MDB_APPENDDUP)
                        : mdb_del(w->txn, w->dbi[DB_CORDER], &key, &val);
    if (delta > 0 && mrc == MDB_KEYEXIST)
        mrc = mdb_put(w->txn, w->dbi[DB_CORDER], &key, &val, 0);
    if (delta < 0 && mrc == MDB_NOTFOUND)
        mrc = 0;
    return mrc ? wmdb(w, mrc, delta > 0 ? "writing" : "deleting") : 0;
}

/* Stores a new order's record (encoded in w->rec). Order ids only grow, so
 * the record is appended at the end of the database (its pages fill up
 * instead of splitting half-empty); an id that is not past the last one is
 * an order placed twice or out of order, put in its place, and one placed
 * twice leaves the counters and corder of its first placing. */
static int w_order_insert(pc_writer *w, uint64_t order_id)
{
    uint8_t id[8];
    be64_put(id, order_id);
    MDB_val key = {8, id}, val = {w->rec.len, w->rec.p};
    int mrc = mdb_put(w->txn, w->dbi[DB_ORDER], &key, &val, MDB_APPEND);
    if (mrc != MDB_KEYEXIST)
        return mrc ? wmdb(w, mrc, "writing") : 0;
    proj_cache_order old;
    int rc = w_order_load(w, order_id, &old);
    if (rc < 0)
        return rc;
    if (rc == 1) { /* placed twice: the later one wins */
        w->batch_inconsistent++;
        stats_order(w, &old, -1);
        if (old.customer_id && (rc = w_corder(w, old.customer_id, old.order_id, -1)) != 0)
            return rc;
    }
    return w_put(w, DB_ORDER, id, 8, w->rec.p, w->rec.len);
}

static int w_order_placed(pc_writer *w, const ev_event *ev)
{
    const ev_order_placed *p = &ev->u.order_placed;
    int rc = w_order_lines(w, p);
    if (rc)
        return rc;
    proj_cache_order o;
    memset(&o, 0, sizeof o);
    o.order_id = p->order_id;
    o.customer_id = p->customer_id;
    o.total = p->total;
    set_currency(o.currency, p->currency);
    o.status = EV_order_status_PENDING;
    o.payment = PROJ_CACHE_PAY_NONE;
    o.order_date_us = o.updated_us = ev->env.recorded_us;
    o.shipping_address = p->shipping_address;
    o.guest_token_hash = p->guest_token_hash;
    o.lines_ = (ev_str){w->lines.len ? (const char *)w->lines.p : "", (uint32_t)w->lines.len};
    o.n_lines = p->lines.n;
    if ((rc = w_order_encode(w, &o)) != 0 || (rc = w_order_insert(w, o.order_id)) != 0)
        return rc;
    if (o.customer_id && (rc = w_corder(w, o.customer_id, o.order_id, +1)) != 0)
        return rc;
    stats_order(w, &o, +1);
    return 0;
}

/* Status (or -1: unchanged), payment state (or -1) and intent id (.p NULL:
 * unchanged) of an order. */
static int w_order_change(pc_writer *w, const ev_event *ev, uint64_t order_id, int status,
                          int payment, ev_str intent, ev_str provider)
{
    proj_cache_order o;
    int rc = w_order_load(w, order_id, &o);
    if (rc <= 0) {
        w->batch_inconsistent += rc == 0;
        return rc;
    }
    if (status >= 0 && status != o.status) {
        stats_order(w, &o, -1);
        o.status = status;
        stats_order(w, &o, +1);
    }
    if (payment >= 0)
        o.payment = payment;
    if (intent.p) {
        o.payment_intent_id = intent;
        o.payment_provider = provider;
    }
    o.updated_us = ev->env.recorded_us;
    return w_order_store(w, &o);
}

/* ----------------------------------------------------------------- tokens */

static int w_token_key_ok(pc_writer *w, ev_str h)
{
    if (!h.p || h.n == 0 || h.n > PC_KEY_MAX) {
        w->batch_inconsistent++;
        return 0;
    }
    return 1;
}

static int w_token_issued(pc_writer *w, const ev_event *ev)
{
    const ev_token_issued *p = &ev->u.token_issued;
    if (!w_token_key_ok(w, p->token_hash))
        return 0;
    proj_cache_token t = {
        .customer_id = p->customer_id,
        .expires_at = p->expires_at,
        .issued_us = ev->env.recorded_us,
        .replaces = p->replaces,
    };
    if (token_encode(&w->rec, &t))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    int rc = w_put(w, DB_TOKEN, p->token_hash.p, p->token_hash.n, w->rec.p, w->rec.len);
    if (rc || !p->replaces.p || !p->replaces.n || p->replaces.n > PC_KEY_MAX)
        return rc;
    /* The token it rotates learns its successor. */
    if ((rc = w_load(w, DB_TOKEN, p->replaces.p, p->replaces.n)) <= 0) {
        w->batch_inconsistent += rc == 0;
        return rc;
    }
    proj_cache_token old;
    if (token_decode(w->old.p, w->old.len, &old))
        return w_corrupt(w, "token");
    old.replaced_by = p->token_hash;
    if (token_encode(&w->rec, &old))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    return w_put(w, DB_TOKEN, p->replaces.p, p->replaces.n, w->rec.p, w->rec.len);
}

static int w_token_revoked(pc_writer *w, const ev_event *ev)
{
    const ev_token_revoked *p = &ev->u.token_revoked;
    if (!w_token_key_ok(w, p->token_hash))
        return 0;
    int rc = w_load(w, DB_TOKEN, p->token_hash.p, p->token_hash.n);
    if (rc <= 0) {
        w->batch_inconsistent += rc == 0;
        return rc;
    }
    proj_cache_token t;
    if (token_decode(w->old.p, w->old.len, &t))
        return w_corrupt(w, "token");
    t.revoked = true;
    t.revoked_us = ev->env.recorded_us;
    t.revoke_reason = p->reason;
    if (token_encode(&w->rec, &t))
        return wfail(w, PROJ_CACHE_ENOMEM, "out of memory");
    return w_put(w, DB_TOKEN, p->token_hash.p, p->token_hash.n, w->rec.p, w->rec.len);
}

/* ------------------------------------------------------------- sink ops */

static int w_meta_get(pc_writer *w, MDB_txn *txn, const char *name, MDB_val *v)
{
    MDB_val k = {strlen(name), (void *)name};
    return mdb_get(txn, w->dbi[DB_META], &k, v);
}

static int w_meta_put(pc_writer *w, const char *name, const void *p, size_t n)
{
    return w_put(w, DB_META, name, strlen(name), p, n);
}

static int w_read_pos(pc_writer *w, MDB_txn *txn, uint64_t *pos)
{
    MDB_val v;
    int mrc = w_meta_get(w, txn, "next_pos", &v);
    if (mrc == MDB_NOTFOUND) {
        *pos = 0;
        return 0;
    }
    if (mrc)
        return wmdb(w, mrc, "reading its position");
    if (v.mv_size != 8)
        return w_corrupt(w, "position");
    *pos = be64_get(v.mv_data);
    return 0;
}

static int w_next_pos(void *ctx, uint64_t *pos)
{
    pc_writer *w = ctx;
    if (w->txn)
        return w_read_pos(w, w->txn, pos);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(w->env, NULL, MDB_RDONLY, &txn);
    if (mrc)
        return wmdb(w, mrc, "beginning a read");
    int rc = w_read_pos(w, txn, pos);
    mdb_txn_abort(txn);
    return rc;
}

static int w_open_env(pc_writer *w, const char *dir, char *err, size_t errlen);
static void w_close_env(pc_writer *w);

/* A rebuild swapped another generation in and retired ours: carry on in the
 * live one from the position stored there. */
static int w_follow_swap(pc_writer *w)
{
    if (w->n_readers)
        return wfail(w, PROJ_CACHE_EINVAL,
                     "cache %s was replaced by a rebuild; close this writer's readers and "
                     "reopen the writer",
                     w->path);
    char dir[CGEN_PATH_MAX], err[512];
    unsigned gen;
    w_close_env(w);
    if (cgen_current(w->root, dir, sizeof dir, &gen, err, sizeof err) != 0 ||
        w_open_env(w, dir, err, sizeof err) != 0)
        return wfail(w, PROJ_CACHE_EIO, "%s", err);
    return 0;
}

static bool pc_retired(MDB_txn *txn, MDB_dbi meta)
{
    MDB_val k = {7, "retired"}, v;
    return mdb_get(txn, meta, &k, &v) == 0;
}

static int w_begin(void *ctx, uint64_t *pos)
{
    pc_writer *w = ctx;
    if (w->txn)
        return wfail(w, PROJ_CACHE_EINVAL, "cache %s: begin inside a batch", w->path);
    if (!w->env)
        return w_follow_swap(w) ? PROJ_CACHE_EIO : w_begin(ctx, pos);
    int mrc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    if (mrc) {
        w->txn = NULL;
        return wmdb(w, mrc, "beginning a batch");
    }
    if (!w->builder && pc_retired(w->txn, w->dbi[DB_META])) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
        int rc = w_follow_swap(w);
        return rc ? rc : w_begin(ctx, pos);
    }
    int rc = w_read_pos(w, w->txn, &w->base_pos);
    MDB_val v;
    w_stock_reset(w);
    w_lines_forget(w);
    memset(&w->stats, 0, sizeof w->stats);
    w->batch_inconsistent = 0;
    if (!rc) {
        mrc = w_meta_get(w, w->txn, "stats", &v);
        if (mrc == 0 && v.mv_size == PC_NSTATS * 8) {
            uint64_t a[PC_NSTATS];
            memcpy(a, v.mv_data, sizeof a);
            stats_from_arr(&w->stats, a);
        } else if (mrc == 0) {
            rc = w_corrupt(w, "stats");
        } else if (mrc != MDB_NOTFOUND) {
            rc = wmdb(w, mrc, "reading its counters");
        }
    }
    if (rc) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    } else if (pos) {
        *pos = w->base_pos; /* read inside the batch's own transaction */
    }
    return rc;
}

static int w_apply(void *ctx, const ev_event *ev)
{
    pc_writer *w = ctx;
    if (!w->txn)
        return wfail(w, PROJ_CACHE_EINVAL, "cache %s: apply outside a batch", w->path);
    if (ev->env.pos < w->base_pos)
        return 0; /* applied before: exactly once */
    switch (ev->env.type) {
    case EV_T_WATCH_ADDED: return w_watch_added(w, ev);
    case EV_T_WATCH_UPDATED: return w_watch_updated(w, ev);
    case EV_T_STOCK_ADJUSTED: return w_stock_adjusted(w, ev);
    case EV_T_CUSTOMER_REGISTERED: return w_customer_registered(w, ev);
    case EV_T_CUSTOMER_ROLE_CHANGED: return w_customer_role_changed(w, ev);
    case EV_T_CUSTOMER_PASSWORD_CHANGED: return w_customer_password_changed(w, ev);
    case EV_T_ORDER_PLACED: return w_order_placed(w, ev);
    case EV_T_ORDER_STATUS_CHANGED:
        return w_order_change(w, ev, ev->u.order_status_changed.order_id,
                              ev->u.order_status_changed.to, -1, (ev_str){NULL, 0},
                              (ev_str){NULL, 0});
    case EV_T_ORDER_CANCELLED:
        return w_order_change(w, ev, ev->u.order_cancelled.order_id,
                              EV_order_status_CANCELLED, -1, (ev_str){NULL, 0},
                              (ev_str){NULL, 0});
    case EV_T_PAYMENT_INTENT_CREATED:
        return w_order_change(w, ev, ev->u.payment_intent_created.order_id, -1,
                              PROJ_CACHE_PAY_INTENT, ev->u.payment_intent_created.intent_id,
                              ev->u.payment_intent_created.provider);
    case EV_T_PAYMENT_SUCCEEDED:
        return w_order_change(w, ev, ev->u.payment_succeeded.order_id, -1,
                              PROJ_CACHE_PAY_SUCCEEDED, ev->u.payment_succeeded.intent_id,
                              ev->u.payment_succeeded.provider);
    case EV_T_PAYMENT_MISMATCHED:
        return w_order_change(w, ev, ev->u.payment_mismatched.order_id, -1,
                              PROJ_CACHE_PAY_MISMATCHED, (ev_str){NULL, 0}, (ev_str){NULL, 0});
    case EV_T_PAYMENT_FAILED:
        return w_order_change(w, ev, ev->u.payment_failed.order_id, -1, PROJ_CACHE_PAY_FAILED,
                              (ev_str){NULL, 0}, (ev_str){NULL, 0});
    case EV_T_TOKEN_ISSUED: return w_token_issued(w, ev);
    case EV_T_TOKEN_REVOKED: return w_token_revoked(w, ev);
    case EV_T_UNKNOWN:
    case EV_T_COUNT: break;
    }
    return 0; /* unknown types and versions are not applied */
}

static void w_abort(void *ctx)
{
    pc_writer *w = ctx;
    if (w->txn) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    }
    w_stock_reset(w);
    w_lines_forget(w);
    if (w->grow && w->n_readers == 0) {
        MDB_envinfo info;
        mdb_env_info(w->env, &info);
        if (info.me_mapsize < PC_MAX_MAPSIZE)
            mdb_env_set_mapsize(w->env, info.me_mapsize * 2);
    }
    w->grow = false;
}

/* A builder's commits are not synced: this starts writing the batch's
 * pages to disk in the background, so that the one sync at the end
 * (proj_cache_sync) finds little left to write. Advisory: errors show up
 * at that sync. */
static void w_start_writeback(pc_writer *w)
{
    int fd = -1;
    if (mdb_env_get_fd(w->env, &fd) == 0 && fd >= 0)
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static int w_commit(void *ctx, uint64_t next_pos)
{
    pc_writer *w = ctx;
    if (!w->txn)
        return wfail(w, PROJ_CACHE_EINVAL, "cache %s: commit outside a batch", w->path);
    if (next_pos < w->base_pos) {
        w_abort(w);
        return wfail(w, PROJ_CACHE_EINVAL,
                     "cache %s: commit of position %llu below the stored %llu", w->path,
                     (unsigned long long)next_pos, (unsigned long long)w->base_pos);
    }
    uint8_t pb[8];
    uint64_t a[PC_NSTATS];
    be64_put(pb, next_pos);
    stats_to_arr(&w->stats, a);
    int rc = w_stock_flush(w);
    if (!rc)
        rc = w_meta_put(w, "next_pos", pb, 8);
    if (!rc)
        rc = w_meta_put(w, "stats", a, sizeof a);
    if (rc) {
        w_abort(w);
        return rc;
    }
    int mrc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (mrc) {
        rc = wmdb(w, mrc, "committing");
        w_abort(w);
        return rc;
    }
    w->inconsistent += w->batch_inconsistent;
    w->batch_inconsistent = 0;
    w_stock_reset(w);
    if (w->builder)
        w_start_writeback(w);
    /* Wake readers: any write to the notify file fires their inotify. */
    if (pwrite(w->notify_fd, pb, sizeof pb, 0) < 0) {
        /* Committed; readers still see it on their next look. */
    }
    return 0;
}

static const char *w_errmsg(void *ctx)
{
    pc_writer *w = ctx;
    return w->errmsg;
}

static const proj_sink_ops pc_sink_ops = {
    .name = "cache",
    .next_pos = w_next_pos,
    .begin = w_begin,
    .apply = w_apply,
    .commit = w_commit,
    .abort = w_abort,
    .errmsg = w_errmsg,
    .decode_ahead = true,
};

/* -------------------------------------------------------- open and close */

static int take_writer_lock(pc_writer *w, char *err, size_t errlen)
{
    int rc = wlock_take(w->root, "cache", &w->lock_fd, err, errlen);
    return rc == WLOCK_OK ? 0 : rc == WLOCK_EBUSY ? PROJ_CACHE_ELOCKED : PROJ_CACHE_EIO;
}

static void w_close_env(pc_writer *w)
{
    if (w->txn)
        mdb_txn_abort(w->txn);
    w->txn = NULL;
    /* A clean close: everything on disk, so the generation is trusted
     * after any restart (a builder's is synced by proj_cache_sync). */
    char err[256];
    if (w->env && !w->builder && mdb_env_sync(w->env, 1) == 0)
        cgen_clear_unsynced(w->path, err, sizeof err);
    if (w->env)
        mdb_env_close(w->env);
    w->env = NULL;
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    w->notify_fd = -1;
}

static void pc_writer_free(pc_writer *w)
{
    w_close_env(w);
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    ev_buf *bufs[] = {&w->rec, &w->json, &w->old, &w->fold, &w->lines, &w->linfo_bytes};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        ev_buf_free(bufs[i]);
    ht_free(&w->stock_ix);
    free(w->stock_v);
    ht_free(&w->linfo_ix);
    free(w->linfo);
    free(w);
}

/* Creates the databases (writer) and checks layout and key. */
static int w_init_dbs(pc_writer *w, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(w->env, NULL, 0, &txn);
    if (mrc)
        txn = NULL;
    for (int i = 0; i < DB_COUNT && !mrc; i++)
        mrc = mdb_dbi_open(txn, pc_db_names[i], MDB_CREATE | pc_db_flags[i], &w->dbi[i]);
    if (mrc) {
        if (txn)
            mdb_txn_abort(txn);
        snprintf(err, errlen, "cannot create cache databases in %s: %s", w->path,
                 mdb_strerror(mrc));
        return PROJ_CACHE_EIO;
    }
    uint8_t kid[16];
    pc_key_id(w->email_key, kid);
    MDB_val v;
    int rc = 0;
    mrc = w_meta_get(w, txn, "layout", &v);
    if (mrc == MDB_NOTFOUND) {
        uint32_t layout = PC_LAYOUT;
        uint8_t zero[8] = {0};
        MDB_val k1 = {6, "layout"}, v1 = {4, &layout};
        MDB_val k2 = {6, "key_id"}, v2 = {16, kid};
        MDB_val k3 = {8, "next_pos"}, v3 = {8, zero};
        if ((mrc = mdb_put(txn, w->dbi[DB_META], &k1, &v1, 0)) == 0 &&
            (mrc = mdb_put(txn, w->dbi[DB_META], &k2, &v2, 0)) == 0)
            mrc = mdb_put(txn, w->dbi[DB_META], &k3, &v3, 0);
    } else if (mrc == 0) {
        uint32_t layout = 0;
        if (v.mv_size == 4)
            memcpy(&layout, v.mv_data, 4);
        if (layout != PC_LAYOUT) {
            snprintf(err, errlen,
                     "cache %s has layout %u and this build writes layout %u: rebuild it "
                     "from the log (replay --projection cache --rebuild), or delete the "
                     "directory and let the projector rebuild it",
                     w->path, layout, PC_LAYOUT);
            rc = PROJ_CACHE_EMISMATCH;
        } else if ((mrc = w_meta_get(w, txn, "key_id", &v)) == 0 &&
                   (v.mv_size != 16 || memcmp(v.mv_data, kid, 16) != 0)) {
            snprintf(err, errlen,
                     "cache %s was built with another e-mail key: delete the directory and "
                     "let the projector rebuild it from the log",
                     w->path);
            rc = PROJ_CACHE_EMISMATCH;
        }
    }
    if (!rc && mrc) {
        snprintf(err, errlen, "cannot initialise cache %s: %s", w->path, mdb_strerror(mrc));
        rc = PROJ_CACHE_EIO;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((mrc = mdb_txn_commit(txn)) != 0) {
        snprintf(err, errlen, "cannot initialise cache %s: %s", w->path, mdb_strerror(mrc));
        return PROJ_CACHE_EIO;
    }
    return 0;
}

/* Opens the generation in `dir` (its environment and notify file). */
static int w_open_env(pc_writer *w, const char *dir, char *err, size_t errlen)
{
    snprintf(w->path, sizeof w->path, "%s", dir);
    char np[4300];
    snprintf(np, sizeof np, "%s/notify", w->path);
    w->notify_fd = open(np, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->notify_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", np, strerror(errno));
        return PROJ_CACHE_EIO;
    }
    /* No commit is synced one by one. A builder's: a crash abandons the
     * whole build, and proj_cache_sync makes it durable before the swap.
     * The live writer's: the cache is derived from the durable log, a crash
     * of the process loses nothing, and one of the machine is caught by the
     * generation's unsynced marker (cache_gen.h), which makes the projector
     * rebuild it. */
    if (!w->builder) {
        if (cgen_unsynced_stale(w->path)) {
            snprintf(err, errlen,
                     "cache %s had commits not yet on disk when the machine stopped: it is "
                     "rebuilt from the log",
                     w->path);
            w_close_env(w);
            return PROJ_CACHE_EMISMATCH;
        }
        if (cgen_mark_unsynced(w->path, err, errlen) != 0) {
            w_close_env(w);
            return PROJ_CACHE_EIO;
        }
    }
    unsigned flags = MDB_NOTLS | MDB_NOSYNC;
    int mrc;
    if ((mrc = mdb_env_create(&w->env)) != 0 ||
        (mrc = mdb_env_set_maxdbs(w->env, 16)) != 0 ||
        (mrc = mdb_env_set_mapsize(w->env, (size_t)PC_DEFAULT_MAPSIZE)) != 0 ||
        (mrc = mdb_env_set_maxreaders(w->env, 1022)) != 0 ||
        (mrc = mdb_env_open(w->env, w->path, flags, 0600)) != 0) {
        snprintf(err, errlen, "cannot open cache %s: %s", w->path, mdb_strerror(mrc));
        w_close_env(w);
        return PROJ_CACHE_EIO;
    }
    int dead = 0;
    mdb_reader_check(w->env, &dead); /* readers that died holding a slot */
    int rc = w_init_dbs(w, err, errlen);
    if (rc)
        w_close_env(w);
    return rc;
}

static pc_writer *w_new(const char *root, const uint8_t email_key[32], char *err, size_t errlen)
{
    pc_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->lock_fd = w->notify_fd = -1;
    ht_init(&w->stock_ix);
    memcpy(w->email_key, email_key, 32);
    snprintf(w->root, sizeof w->root, "%s", root);
    return w;
}

int proj_cache_open_writer(const char *path, const uint8_t email_key[32], proj_sink *out,
                           char *err, size_t errlen)
{
    if (!path || !*path || !email_key || !out || strlen(path) >= 4000) {
        snprintf(err, errlen, "proj_cache_open_writer needs a path, a key and a sink");
        return PROJ_CACHE_EINVAL;
    }
    pc_writer *w = w_new(path, email_key, err, errlen);
    if (!w)
        return PROJ_CACHE_ENOMEM;
    int rc = PROJ_CACHE_EIO;
    char dir[CGEN_PATH_MAX];
    unsigned gen;
    if (wlock_mkdir_private(w->root) != 0) {
        snprintf(err, errlen, "cannot create cache directory %s: %s", w->root, strerror(errno));
        goto fail;
    }
    if ((rc = take_writer_lock(w, err, errlen)) != 0)
        goto fail;
    rc = PROJ_CACHE_EIO;
    if (cgen_ensure(w->root, dir, sizeof dir, &gen, err, errlen) != 0)
        goto fail;
    if ((rc = w_open_env(w, dir, err, errlen)) != 0)
        goto fail;
    out->ops = &pc_sink_ops;
    out->ctx = w;
    return 0;
fail:
    pc_writer_free(w);
    return rc;
}

int proj_cache_open_builder(const char *gen_dir, const uint8_t email_key[32], proj_sink *out,
                            char *err, size_t errlen)
{
    if (!gen_dir || !*gen_dir || !email_key || !out || strlen(gen_dir) >= 4000) {
        snprintf(err, errlen, "proj_cache_open_builder needs a directory, a key and a sink");
        return PROJ_CACHE_EINVAL;
    }
    pc_writer *w = w_new(gen_dir, email_key, err, errlen);
    if (!w)
        return PROJ_CACHE_ENOMEM;
    w->builder = true;
    int rc = w_open_env(w, gen_dir, err, errlen);
    if (rc) {
        pc_writer_free(w);
        return rc;
    }
    out->ops = &pc_sink_ops;
    out->ctx = w;
    return 0;
}

int proj_cache_sync(proj_sink *sink, char *err, size_t errlen)
{
    if (!sink || sink->ops != &pc_sink_ops || !sink->ctx) {
        snprintf(err, errlen, "proj_cache_sync needs a cache writer's sink");
        return PROJ_CACHE_EINVAL;
    }
    pc_writer *w = sink->ctx;
    int mrc = w->env ? mdb_env_sync(w->env, 1) : 0;
    if (mrc) {
        snprintf(err, errlen, "cannot sync cache %s: %s", w->path, mdb_strerror(mrc));
        return PROJ_CACHE_EIO;
    }
    return 0;
}

int proj_cache_retire(const char *gen_dir, char *err, size_t errlen)
{
    if (cgen_unsynced_stale(gen_dir))
        return 0; /* no reader opens it; not to be written either */
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    uint8_t one = 1;
    MDB_val k = {7, "retired"}, v = {1, &one};
    int mrc;
    if ((mrc = mdb_env_create(&env)) != 0 || (mrc = mdb_env_set_maxdbs(env, 16)) != 0 ||
        (mrc = mdb_env_set_mapsize(env, (size_t)PC_DEFAULT_MAPSIZE)) != 0 ||
        (mrc = mdb_env_set_maxreaders(env, 1022)) != 0 ||
        (mrc = mdb_env_open(env, gen_dir, MDB_NOTLS, 0600)) != 0 ||
        (mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) != 0 ||
        (mrc = mdb_put(txn, meta, &k, &v, 0)) != 0) {
        if (txn)
            mdb_txn_abort(txn);
        txn = NULL;
    }
    if (txn)
        mrc = mdb_txn_commit(txn);
    if (env)
        mdb_env_close(env);
    if (mrc) {
        snprintf(err, errlen, "cannot retire cache generation %s: %s", gen_dir,
                 mdb_strerror(mrc));
        return PROJ_CACHE_EIO;
    }
    /* Wake its readers and writer: they look, find it retired, move on. */
    char np[4300];
    snprintf(np, sizeof np, "%s/notify", gen_dir);
    int fd = open(np, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "retired\n", 8) < 0) {
            /* readers still see it on their next read */
        }
        close(fd);
    }
    return 0;
}

void proj_cache_close(proj_sink *sink)
{
    if (!sink || sink->ops != &pc_sink_ops || !sink->ctx)
        return;
    pc_writer_free(sink->ctx);
    sink->ctx = NULL;
    sink->ops = NULL;
}

uint64_t proj_cache_inconsistent(const proj_sink *sink)
{
    if (!sink || sink->ops != &pc_sink_ops || !sink->ctx)
        return 0;
    return ((const pc_writer *)sink->ctx)->inconsistent;
}

/* ================================================================= reader */

struct proj_cache_reader {
    MDB_env *env;
    pc_writer *writer; /* a reader sharing the writer's environment */
    MDB_dbi dbi[DB_COUNT];
    bool has_key;
    uint8_t email_key[32];
    int wait_fd, loop_fd; /* inotify on the notify file: waiters, event loops */
    int wait_wd, loop_wd; /* their watches of the current generation's file */
    unsigned gen;         /* the generation open (cache_gen.h) */
    char root[4096];
    pthread_mutex_t mu;   /* guards seq and polling */
    pthread_cond_t cv;
    uint64_t seq;         /* bumped each time a poll returns */
    bool polling;         /* one waiter polls wait_fd, the others sleep on cv */
    pthread_rwlock_t map; /* read txns hold it shared; adopting a resized map or
                             another generation exclusive */
    char path[4200];      /* the generation open */
};

static int r_follow_swap(proj_cache_reader *r);

static int r_begin(proj_cache_reader *r, MDB_txn **txn)
{
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&r->map);
        int mrc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, txn);
        if (mrc == 0 && !r->writer && pc_retired(*txn, r->dbi[DB_META])) {
            /* A rebuild swapped in another generation: move to it. */
            mdb_txn_abort(*txn);
            pthread_rwlock_unlock(&r->map);
            if (attempt > 2 || r_follow_swap(r) != 0)
                return PROJ_CACHE_EIO;
            continue;
        }
        if (mrc == 0)
            return 0;
        pthread_rwlock_unlock(&r->map);
        if (mrc != MDB_MAP_RESIZED || r->writer || attempt > 2)
            return mrc == ENOMEM ? PROJ_CACHE_ENOMEM : PROJ_CACHE_EIO;
        /* The writer grew the map: adopt its size while no read runs here. */
        pthread_rwlock_wrlock(&r->map);
        mdb_env_set_mapsize(r->env, 0);
        pthread_rwlock_unlock(&r->map);
    }
}

static void r_end(proj_cache_reader *r, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&r->map);
}

/* Points the reader's two inotify descriptors (made on first use) at the
 * notify file of generation directory `dir`; the descriptors stay the same,
 * so an event loop watching loop_fd never needs to know. */
static int r_watch(proj_cache_reader *r, const char *dir, char *err, size_t errlen)
{
    char np[4300];
    snprintf(np, sizeof np, "%s/notify", dir);
    int *fds[2] = {&r->wait_fd, &r->loop_fd}, *wds[2] = {&r->wait_wd, &r->loop_wd};
    for (int i = 0; i < 2; i++) {
        if (*fds[i] < 0 && (*fds[i] = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
            snprintf(err, errlen, "cannot watch %s: %s", np, strerror(errno));
            return PROJ_CACHE_EIO;
        }
        int wd = inotify_add_watch(*fds[i], np, IN_MODIFY);
        if (wd < 0) {
            snprintf(err, errlen, "cannot watch %s: %s", np, strerror(errno));
            return PROJ_CACHE_EIO;
        }
        if (*wds[i] >= 0 && *wds[i] != wd)
            inotify_rm_watch(*fds[i], *wds[i]);
        *wds[i] = wd;
    }
    return 0;
}

static proj_cache_reader *r_new(const char *root, const char *path)
{
    proj_cache_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->wait_fd = r->loop_fd = r->wait_wd = r->loop_wd = -1;
    snprintf(r->root, sizeof r->root, "%s", root);
    snprintf(r->path, sizeof r->path, "%s", path);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    pthread_rwlock_init(&r->map, NULL);
    return r;
}

void proj_cache_release_pages(proj_cache_reader *r)
{
    if (!r)
        return;
    pthread_rwlock_rdlock(&r->map);
    MDB_env *env = r->writer ? r->writer->env : r->env;
    int fd;
    if (env && mdb_env_get_fd(env, &fd) == 0)
        (void)mapmem_release(fd);
    pthread_rwlock_unlock(&r->map);
}

void proj_cache_reader_close(proj_cache_reader *r)
{
    if (!r)
        return;
    if (r->writer)
        r->writer->n_readers--;
    else if (r->env)
        mdb_env_close(r->env);
    if (r->wait_fd >= 0)
        close(r->wait_fd);
    if (r->loop_fd >= 0)
        close(r->loop_fd);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    pthread_rwlock_destroy(&r->map);
    free(r);
}

/* Checks the layout and, with a key, that it is the cache's key. */
static int r_check(proj_cache_reader *r, MDB_txn *txn, MDB_dbi meta, const char *dir, char *err,
                   size_t errlen)
{
    MDB_val k = {6, "layout"}, v;
    int mrc = mdb_get(txn, meta, &k, &v);
    uint32_t layout = 0;
    if (mrc == 0 && v.mv_size == 4)
        memcpy(&layout, v.mv_data, 4);
    if (mrc || layout != PC_LAYOUT) {
        snprintf(err, errlen,
                 "cache %s has layout %u, this build reads layout %u: rebuild it "
                 "(replay --projection cache --rebuild)",
                 dir, layout, PC_LAYOUT);
        return PROJ_CACHE_EMISMATCH;
    }
    if (!r->has_key)
        return 0;
    uint8_t kid[16];
    pc_key_id(r->email_key, kid);
    k = (MDB_val){6, "key_id"};
    mrc = mdb_get(txn, meta, &k, &v);
    if (mrc || v.mv_size != 16 || memcmp(v.mv_data, kid, 16) != 0) {
        snprintf(err, errlen, "cache %s was built with another e-mail key", dir);
        return PROJ_CACHE_EMISMATCH;
    }
    return 0;
}

/* Opens generation `dir` read-only into env and dbi, checking its layout
 * and key. */
static int r_open_env(proj_cache_reader *r, const char *dir, MDB_env **envp, MDB_dbi *dbi,
                      char *err, size_t errlen)
{
    char dp[4300];
    snprintf(dp, sizeof dp, "%s/data.mdb", dir);
    if (access(dp, R_OK) != 0) {
        snprintf(err, errlen, "no cache at %s (%s); its projector creates it", dir,
                 strerror(errno));
        return PROJ_CACHE_ENOENT;
    }
    if (cgen_unsynced_stale(dir)) {
        snprintf(err, errlen,
                 "cache %s is not trusted after the machine stopped; its projector rebuilds it",
                 dir);
        return PROJ_CACHE_ENOENT;
    }
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    int mrc, rc = PROJ_CACHE_EIO;
    if ((mrc = mdb_env_create(&env)) != 0 || (mrc = mdb_env_set_maxdbs(env, 16)) != 0 ||
        (mrc = mdb_env_set_maxreaders(env, 1022)) != 0 ||
        (mrc = mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600)) != 0 ||
        (mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
        snprintf(err, errlen, "cannot open cache %s: %s", dir, mdb_strerror(mrc));
        txn = NULL;
        goto fail;
    }
    for (int i = 0; i < DB_COUNT && !mrc; i++)
        mrc = mdb_dbi_open(txn, pc_db_names[i], pc_db_flags[i], &dbi[i]);
    if (mrc) {
        snprintf(err, errlen, "cache %s is not initialised yet (%s); its projector creates it",
                 dir, mdb_strerror(mrc));
        rc = mrc == MDB_NOTFOUND ? PROJ_CACHE_ENOENT : PROJ_CACHE_EIO;
        goto fail;
    }
    if ((rc = r_check(r, txn, dbi[DB_META], dir, err, errlen)) != 0)
        goto fail;
    /* Committing keeps the database handles for the environment. */
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc) {
        snprintf(err, errlen, "cannot read cache %s: %s", dir, mdb_strerror(mrc));
        rc = PROJ_CACHE_EIO;
        goto fail;
    }
    *envp = env;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc;
}

/* Moves the reader to the live generation (its own is retired). Waits for
 * the reader's read transactions to end first. */
static int r_follow_swap(proj_cache_reader *r)
{
    char dir[CGEN_PATH_MAX], err[512];
    unsigned gen;
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    int rc = 0;
    pthread_rwlock_wrlock(&r->map);
    if (cgen_current(r->root, dir, sizeof dir, &gen, err, sizeof err) != 0)
        rc = PROJ_CACHE_EIO;
    else if (gen != r->gen) { /* else another thread moved it already */
        if ((rc = r_open_env(r, dir, &env, dbi, err, sizeof err)) == 0 &&
            (rc = r_watch(r, dir, err, sizeof err)) == 0) {
            mdb_env_close(r->env);
            r->env = env;
            memcpy(r->dbi, dbi, sizeof dbi);
            r->gen = gen;
            snprintf(r->path, sizeof r->path, "%s", dir);
        } else if (rc == 0) {
            mdb_env_close(env);
        }
    }
    pthread_rwlock_unlock(&r->map);
    return rc;
}

int proj_cache_open_reader(const char *path, const uint8_t email_key[32],
                           proj_cache_reader **out, char *err, size_t errlen)
{
    if (!path || !*path || !out || strlen(path) >= 4000) {
        snprintf(err, errlen, "proj_cache_open_reader needs a path (and a place for the reader)");
        return PROJ_CACHE_EINVAL;
    }
    char dir[CGEN_PATH_MAX];
    unsigned gen;
    int rc = cgen_current(path, dir, sizeof dir, &gen, err, errlen);
    if (rc)
        return rc == CGEN_ENOENT ? PROJ_CACHE_ENOENT : PROJ_CACHE_EIO;
    proj_cache_reader *r = r_new(path, dir);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return PROJ_CACHE_ENOMEM;
    }
    r->gen = gen;
    if (email_key) {
        r->has_key = true;
        memcpy(r->email_key, email_key, 32);
    }
    if ((rc = r_watch(r, dir, err, errlen)) == 0 &&
        (rc = r_open_env(r, dir, &r->env, r->dbi, err, errlen)) == 0) {
        *out = r;
        return 0;
    }
    proj_cache_reader_close(r);
    return rc;
}

int proj_cache_writer_reader(proj_sink *sink, proj_cache_reader **out, char *err,
                             size_t errlen)
{
    if (!sink || sink->ops != &pc_sink_ops || !sink->ctx || !out) {
        snprintf(err, errlen, "proj_cache_writer_reader needs a cache writer's sink");
        return PROJ_CACHE_EINVAL;
    }
    pc_writer *w = sink->ctx;
    proj_cache_reader *r = r_new(w->root, w->path);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return PROJ_CACHE_ENOMEM;
    }
    r->has_key = true;
    memcpy(r->email_key, w->email_key, 32);
    int rc = r_watch(r, w->path, err, errlen);
    if (rc) {
        proj_cache_reader_close(r);
        return rc;
    }
    r->env = w->env;
    r->writer = w;
    memcpy(r->dbi, w->dbi, sizeof r->dbi);
    w->n_readers++;
    *out = r;
    return 0;
}

/* ------------------------------------------------------ position and wait */

static int r_pos(proj_cache_reader *r, MDB_txn *txn, uint64_t *pos)
{
    MDB_val k = {8, "next_pos"}, v;
    int mrc = mdb_get(txn, r->dbi[DB_META], &k, &v);
    if (mrc == MDB_NOTFOUND) {
        *pos = 0;
        return 0;
    }
    if (mrc)
        return PROJ_CACHE_EIO;
    if (v.mv_size != 8)
        return PROJ_CACHE_ECORRUPT;
    *pos = be64_get(v.mv_data);
    return 0;
}

int proj_cache_applied(proj_cache_reader *r, uint64_t *next_pos)
{
    MDB_txn *txn;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    rc = r_pos(r, txn, next_pos);
    r_end(r, txn);
    return rc;
}

static void drain_fd(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

int proj_cache_wait(proj_cache_reader *r, uint64_t pos, int timeout_ms)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : pc_now_ms() + (uint64_t)timeout_ms;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        uint64_t seq = r->seq;
        pthread_mutex_unlock(&r->mu);
        uint64_t applied = 0;
        if ((rc = proj_cache_applied(r, &applied)) != 0)
            return rc;
        if (applied > pos)
            return 0;
        pthread_mutex_lock(&r->mu);
        if (r->seq != seq)
            continue; /* a notification came meanwhile: look again */
        uint64_t now = pc_now_ms();
        if (now >= deadline) {
            rc = PROJ_CACHE_ETIMEDOUT;
            break;
        }
        /* Wake at least once a second, in case a notification was lost. */
        uint64_t left = deadline - now;
        if (left > 1000)
            left = 1000;
        if (!r->polling) {
            r->polling = true;
            pthread_mutex_unlock(&r->mu);
            struct pollfd p = {r->wait_fd, POLLIN, 0};
            int pr = poll(&p, 1, (int)left);
            int perr = errno;
            drain_fd(r->wait_fd);
            pthread_mutex_lock(&r->mu);
            r->polling = false;
            r->seq++;
            pthread_cond_broadcast(&r->cv);
            if (pr < 0 && perr != EINTR) {
                rc = PROJ_CACHE_EIO;
                break;
            }
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(left / 1000);
            ts.tv_nsec += (long)(left % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int proj_cache_notify_fd(proj_cache_reader *r) { return r ? r->loop_fd : -1; }

void proj_cache_drain_notify(proj_cache_reader *r)
{
    if (r && r->loop_fd >= 0)
        drain_fd(r->loop_fd);
}

/* ----------------------------------------------------------- look-ups */

/* Copies the value at key into buf (replacing its contents). */
static int r_copy(proj_cache_reader *r, int db, const void *k, size_t kn, ev_buf *buf)
{
    if (!buf)
        return PROJ_CACHE_EINVAL;
    MDB_txn *txn;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    MDB_val key = {kn, (void *)k}, v;
    int mrc = mdb_get(txn, r->dbi[db], &key, &v);
    buf->len = 0;
    if (mrc == MDB_NOTFOUND)
        rc = PROJ_CACHE_ENOTFOUND;
    else if (mrc)
        rc = PROJ_CACHE_EIO;
    else if (ev_buf_append(buf, v.mv_data, v.mv_size))
        rc = PROJ_CACHE_ENOMEM;
    r_end(r, txn);
    return rc;
}

/* A watch's records found in txn: the watch record in *wv, the stock
 * record's fields in *out. */
static int r_watch_recs(proj_cache_reader *r, MDB_txn *txn, const uint8_t id[16], MDB_val *wv,
                        proj_cache_watch *out)
{
    MDB_val k = {16, (void *)id}, sv;
    int mrc = mdb_get(txn, r->dbi[DB_WATCH], &k, wv);
    if (mrc == 0)
        mrc = mdb_get(txn, r->dbi[DB_STOCK], &k, &sv);
    else if (mrc == MDB_NOTFOUND)
        return PROJ_CACHE_ENOTFOUND;
    if (mrc)
        return mrc == MDB_NOTFOUND ? PROJ_CACHE_ECORRUPT : PROJ_CACHE_EIO;
    return stock_decode(&sv, out);
}

/* The record of watch `id` copied into buf, decoded into *out, with its
 * JSON rendered after it in the same buffer. */
static int r_watch_copy(proj_cache_reader *r, MDB_txn *txn, const uint8_t id[16], ev_buf *buf,
                        proj_cache_watch *out)
{
    MDB_val wv;
    int rc = r_watch_recs(r, txn, id, &wv, out);
    if (rc)
        return rc;
    /* The JSON is shorter than the record plus its extra: one reservation,
     * so the strings decoded below never move. */
    buf->len = 0;
    if (ev_buf_reserve(buf, 2 * wv.mv_size + PC_WATCH_JSON_EXTRA) ||
        ev_buf_append(buf, wv.mv_data, wv.mv_size))
        return PROJ_CACHE_ENOMEM;
    ev_str parts[2];
    size_t at = buf->len;
    if ((rc = watch_decode(buf->p, wv.mv_size, out, parts)) != 0 ||
        (rc = watch_render(buf, parts[0], parts[1], out)) != 0)
        return rc;
    out->json = (ev_str){(const char *)buf->p + at, (uint32_t)(buf->len - at)};
    return 0;
}

int proj_cache_get_watch(proj_cache_reader *r, const uint8_t id[16], ev_buf *buf,
                         proj_cache_watch *out)
{
    if (!r || !id || !out || !buf)
        return PROJ_CACHE_EINVAL;
    MDB_txn *txn;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    rc = r_watch_copy(r, txn, id, buf, out);
    r_end(r, txn);
    return rc;
}

/* Renders the JSON texts of an order decoded from the map into scratch
 * (its previous contents replaced) and points the order at them. */
static int r_order_render(ev_buf *scratch, proj_cache_order *o)
{
    size_t at, lens[3];
    scratch->len = 0;
    int rc = order_render_parts(scratch, o, &at, lens);
    if (!rc)
        order_point_parts(o, scratch, at, lens);
    return rc;
}

/* Order `order_id` found in txn: its JSON texts, then a copy of its record,
 * into buf, and *out decoded from them. */
static int r_order_copy(proj_cache_reader *r, MDB_txn *txn, uint64_t order_id, ev_buf *buf,
                        proj_cache_order *out)
{
    uint8_t k[8];
    be64_put(k, order_id);
    MDB_val key = {8, k}, v;
    int mrc = mdb_get(txn, r->dbi[DB_ORDER], &key, &v);
    if (mrc)
        return mrc == MDB_NOTFOUND ? PROJ_CACHE_ENOTFOUND : PROJ_CACHE_EIO;
    size_t at, lens[3];
    buf->len = 0;
    int rc = order_decode(v.mv_data, v.mv_size, out);
    if (!rc)
        rc = order_render_parts(buf, out, &at, lens);
    size_t rec = buf->len;
    if (!rc && ev_buf_append(buf, v.mv_data, v.mv_size))
        rc = PROJ_CACHE_ENOMEM;
    if (!rc)
        rc = order_decode(buf->p + rec, v.mv_size, out);
    if (!rc)
        order_point_parts(out, buf, at, lens);
    return rc;
}

int proj_cache_get_order(proj_cache_reader *r, uint64_t order_id, ev_buf *buf,
                         proj_cache_order *out)
{
    if (!r || !out || !buf)
        return PROJ_CACHE_EINVAL;
    MDB_txn *txn;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    rc = r_order_copy(r, txn, order_id, buf, out);
    r_end(r, txn);
    return rc;
}

int proj_cache_get_customer(proj_cache_reader *r, uint64_t customer_id, ev_buf *buf,
                            proj_cache_customer *out)
{
    if (!r || !out)
        return PROJ_CACHE_EINVAL;
    uint8_t k[8];
    be64_put(k, customer_id);
    int rc = r_copy(r, DB_CUSTOMER, k, 8, buf);
    return rc ? rc : customer_decode(buf->p, buf->len, out);
}

int proj_cache_customer_by_email(proj_cache_reader *r, ev_str email, ev_buf *buf,
                                 proj_cache_customer *out)
{
    if (!r || !out || !buf)
        return PROJ_CACHE_EINVAL;
    if (!r->has_key)
        return PROJ_CACHE_EINVAL;
    char norm[256];
    int n = dec_normalise_email(email, norm, sizeof norm);
    if (n < 0)
        return PROJ_CACHE_ENOTFOUND;
    uint8_t ek[16];
    proj_cache_email_key(r->email_key, (ev_str){norm, (uint32_t)n}, ek);
    int rc = r_copy(r, DB_EMAIL, ek, 16, buf);
    if (rc)
        return rc;
    if (buf->len != 8)
        return PROJ_CACHE_ECORRUPT;
    return proj_cache_get_customer(r, be64_get(buf->p), buf, out);
}

int proj_cache_get_token(proj_cache_reader *r, ev_str token_hash, ev_buf *buf,
                         proj_cache_token *out)
{
    if (!r || !out)
        return PROJ_CACHE_EINVAL;
    if (!token_hash.p || !token_hash.n || token_hash.n > PC_KEY_MAX)
        return PROJ_CACHE_ENOTFOUND;
    int rc = r_copy(r, DB_TOKEN, token_hash.p, token_hash.n, buf);
    return rc ? rc : token_decode(buf->p, buf->len, out);
}

int proj_cache_get_stats(proj_cache_reader *r, proj_cache_stats *out)
{
    if (!r || !out)
        return PROJ_CACHE_EINVAL;
    MDB_txn *txn;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    MDB_val k = {5, "stats"}, v;
    int mrc = mdb_get(txn, r->dbi[DB_META], &k, &v);
    memset(out, 0, sizeof *out);
    if (mrc == 0 && v.mv_size == PC_NSTATS * 8) {
        uint64_t a[PC_NSTATS];
        memcpy(a, v.mv_data, sizeof a);
        stats_from_arr(out, a);
    } else if (mrc == 0) {
        rc = PROJ_CACHE_ECORRUPT;
    } else if (mrc != MDB_NOTFOUND) {
        rc = PROJ_CACHE_EIO;
    }
    r_end(r, txn);
    return rc;
}

/* ---------------------------------------------------------------- catalog */

proj_cache_filter proj_cache_filter_all(void)
{
    proj_cache_filter f;
    memset(&f, 0, sizeof f);
    f.category = PROJ_CACHE_CAT_ANY;
    return f;
}

static bool r_contains(ev_str hay, const char *needle, size_t n)
{
    return hay.p && hay.n >= n && memmem(hay.p, hay.n, needle, n) != NULL;
}

static bool r_match(const proj_cache_watch *w, const proj_cache_filter *f, const char *needle,
                    size_t nn)
{
    if (f->category != PROJ_CACHE_CAT_ANY && w->category_code != f->category)
        return false;
    if (f->brand.p && (!w->brand.p || !ev_str_eq(w->brand, f->brand)))
        return false;
    if (f->min_price > 0 && w->price < f->min_price)
        return false;
    if (f->max_price > 0 && w->price > f->max_price)
        return false;
    if (f->in_stock && w->stock <= 0)
        return false;
    if (nn && !r_contains(w->name_lc, needle, nn) && !r_contains(w->brand_lc, needle, nn) &&
        !r_contains(w->model_lc, needle, nn) && !r_contains(w->description_lc, needle, nn))
        return false;
    return true;
}

/* The number of watches in a query's scope, from the brand counts, for
 * queries whose only filter is the scope itself (no scan needed). */
static int r_scope_count(proj_cache_reader *r, MDB_txn *txn, const proj_cache_filter *f,
                         uint64_t *count)
{
    uint8_t k[PC_KEY_MAX + 1];
    MDB_val key, v;
    *count = 0;
    if (f->brand.p) {
        key = (MDB_val){brand_count_key(k, SCOPE_ALL, f->brand), k};
        int mrc = mdb_get(txn, r->dbi[DB_BRAND], &key, &v);
        if (mrc == MDB_NOTFOUND)
            return 0;
        if (mrc || v.mv_size != 8)
            return -1;
        memcpy(count, v.mv_data, 8);
        return 0;
    }
    if (f->category == PROJ_CACHE_CAT_ANY) {
        key = (MDB_val){5, "stats"};
        if (mdb_get(txn, r->dbi[DB_META], &key, &v) != 0 || v.mv_size != PC_NSTATS * 8)
            return -1;
        memcpy(count, v.mv_data, 8); /* the first counter: watches */
        return 0;
    }
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, r->dbi[DB_BRAND], &cur) != 0)
        return -1;
    k[0] = (uint8_t)f->category;
    int mrc;
    for (mrc = cur_first_prefix(cur, k, 1, &key, &v); mrc == 0 && has_prefix(&key, k, 1);
         mrc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        uint64_t c = 0;
        if (v.mv_size == 8)
            memcpy(&c, v.mv_data, 8);
        *count += c;
    }
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : -1;
}

int proj_cache_watches(proj_cache_reader *r, proj_cache_sort sort, const proj_cache_filter *f,
                       uint64_t skip, uint64_t limit, proj_cache_watch_fn fn, void *ud,
                       uint64_t *total)
{
    if (!r || !fn || (int)sort < (int)PROJ_CACHE_NEWEST || (int)sort > (int)PROJ_CACHE_NAME_AZ)
        return PROJ_CACHE_EINVAL;
    proj_cache_filter all = proj_cache_filter_all();
    if (!f)
        f = &all;
    if (total)
        *total = 0;
    if (f->category != PROJ_CACHE_CAT_ANY && (f->category < 1 || f->category > 6))
        return 0; /* an unknown category matches nothing */
    if (f->brand.p && f->brand.n > PC_BRAND_KEY_MAX)
        return 0; /* longer than any stored brand */
    char small[256], *needle = small;
    size_t nn = f->search.p ? f->search.n : 0;
    if (nn > sizeof small && !(needle = malloc(nn)))
        return PROJ_CACHE_ENOMEM;
    if (nn)
        proj_cache_fold(f->search.p, nn, needle);

    char kind = sort == PROJ_CACHE_NEWEST ? 'n' : sort == PROJ_CACHE_NAME_AZ ? 'a' : 'p';
    bool desc = sort == PROJ_CACHE_NEWEST || sort == PROJ_CACHE_PRICE_DESC;
    int scope = f->brand.p ? SCOPE_BRAND : f->category != PROJ_CACHE_CAT_ANY ? f->category
                                                                             : SCOPE_ALL;
    uint8_t pre[PC_KEY_MAX + 1];
    size_t pn = sort_prefix(pre, kind, scope, f->brand);

    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = r_begin(r, &txn);
    if (rc) {
        if (needle != small)
            free(needle);
        return rc;
    }
    uint64_t matched = 0, emitted = 0, counted = 0;
    ev_buf json = {0}; /* the JSON of the watch handed to fn */
    /* Only a scope (all, a brand or a category): the total is counted
     * already, and the walk can stop after the page. */
    bool have_count = total && f->min_price <= 0 && f->max_price <= 0 && !f->in_stock &&
                      nn == 0 && !(f->brand.p && f->category != PROJ_CACHE_CAT_ANY) &&
                      r_scope_count(r, txn, f, &counted) == 0;
    if (mdb_cursor_open(txn, r->dbi[DB_WSORT], &cur) != 0) {
        rc = PROJ_CACHE_EIO;
        goto done;
    }
    MDB_val k, v;
    int mrc = desc ? cur_last_prefix(cur, pre, pn, &k, &v) : cur_first_prefix(cur, pre, pn, &k, &v);
    while (mrc == 0) {
        if (!has_prefix(&k, pre, pn))
            break;
        if (k.mv_size < pn + 16) {
            rc = PROJ_CACHE_ECORRUPT;
            break;
        }
        const uint8_t *id = (const uint8_t *)k.mv_data + k.mv_size - 16;
        MDB_val wv;
        proj_cache_watch w;
        ev_str parts[2];
        if ((rc = r_watch_recs(r, txn, id, &wv, &w)) != 0) {
            rc = rc == PROJ_CACHE_ENOTFOUND ? PROJ_CACHE_ECORRUPT : rc;
            break;
        }
        if ((rc = watch_decode(wv.mv_data, wv.mv_size, &w, parts)) != 0)
            break;
        if (r_match(&w, f, needle, nn)) {
            if (matched >= skip && (limit == 0 || emitted < limit)) {
                emitted++;
                json.len = 0;
                if ((rc = watch_render(&json, parts[0], parts[1], &w)) != 0)
                    break;
                w.json = (ev_str){(const char *)json.p, (uint32_t)json.len};
                if ((rc = fn(ud, &w)) != 0)
                    break;
            }
            matched++;
            if ((!total || have_count) && limit && emitted >= limit)
                break;
        }
        mrc = mdb_cursor_get(cur, &k, &v, desc ? MDB_PREV : MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = PROJ_CACHE_EIO;
done:
    if (cur)
        mdb_cursor_close(cur);
    r_end(r, txn);
    ev_buf_free(&json);
    if (needle != small)
        free(needle);
    if (!rc && total)
        *total = have_count ? counted : matched;
    return rc;
}

static int brand_cmp(const void *a, const void *b)
{
    const proj_cache_brand *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (!x->brand.p || !y->brand.p)
        return !x->brand.p - !y->brand.p; /* the null brand last */
    size_t n = x->brand.n < y->brand.n ? x->brand.n : y->brand.n;
    int c = memcmp(x->brand.p, y->brand.p, n);
    return c ? c : (x->brand.n > y->brand.n) - (x->brand.n < y->brand.n);
}

int proj_cache_brands(proj_cache_reader *r, int category, proj_cache_brand **out, size_t *n)
{
    if (!r || !out || !n)
        return PROJ_CACHE_EINVAL;
    *out = NULL;
    *n = 0;
    if (category != PROJ_CACHE_CAT_ANY && (category < 1 || category > 6))
        return 0;
    uint8_t pre[1] = {(uint8_t)(category == PROJ_CACHE_CAT_ANY ? SCOPE_ALL : category)};
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    if (mdb_cursor_open(txn, r->dbi[DB_BRAND], &cur) != 0) {
        r_end(r, txn);
        return PROJ_CACHE_EIO;
    }
    size_t count = 0, bytes = 0;
    MDB_val k, v;
    int mrc;
    for (mrc = cur_first_prefix(cur, pre, 1, &k, &v); mrc == 0 && has_prefix(&k, pre, 1);
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        count++;
        bytes += k.mv_size;
    }
    proj_cache_brand *arr = NULL;
    if (mrc && mrc != MDB_NOTFOUND)
        rc = PROJ_CACHE_EIO;
    else if (count && !(arr = malloc(count * sizeof *arr + bytes + 1)))
        rc = PROJ_CACHE_ENOMEM;
    size_t i = 0;
    char *s = arr ? (char *)(arr + count) : NULL;
    if (arr) {
        for (mrc = cur_first_prefix(cur, pre, 1, &k, &v);
             mrc == 0 && has_prefix(&k, pre, 1) && i < count;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            const uint8_t *kb = k.mv_data;
            if (k.mv_size < 2 || v.mv_size != 8) {
                rc = PROJ_CACHE_ECORRUPT;
                break;
            }
            proj_cache_brand *b = &arr[i++];
            memcpy(&b->count, v.mv_data, 8);
            if (kb[1] == 0) {
                b->brand = (ev_str){NULL, 0};
            } else {
                size_t bn = k.mv_size - 2;
                memcpy(s, kb + 2, bn);
                b->brand = (ev_str){s, (uint32_t)bn};
                s += bn;
            }
        }
    }
    mdb_cursor_close(cur);
    r_end(r, txn);
    if (rc) {
        free(arr);
        return rc;
    }
    if (arr)
        qsort(arr, i, sizeof *arr, brand_cmp);
    *out = arr;
    *n = i;
    return 0;
}

/* ----------------------------------------------------------------- orders */

int proj_cache_customer_orders(proj_cache_reader *r, uint64_t customer_id,
                               proj_cache_order_fn fn, void *ud)
{
    if (!r || !fn)
        return PROJ_CACHE_EINVAL;
    uint8_t ck[8];
    be64_put(ck, customer_id);
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    if (mdb_cursor_open(txn, r->dbi[DB_CORDER], &cur) != 0) {
        r_end(r, txn);
        return PROJ_CACHE_EIO;
    }
    MDB_val k = {8, ck}, v;
    ev_buf json = {0}; /* the JSON texts of the order handed to fn */
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    if (mrc == 0)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP)) {
        if (v.mv_size != 8) {
            rc = PROJ_CACHE_ECORRUPT;
            break;
        }
        MDB_val ok = {8, v.mv_data}, ov;
        int grc = mdb_get(txn, r->dbi[DB_ORDER], &ok, &ov);
        if (grc) {
            rc = grc == MDB_NOTFOUND ? PROJ_CACHE_ECORRUPT : PROJ_CACHE_EIO;
            break;
        }
        proj_cache_order o;
        if ((rc = order_decode(ov.mv_data, ov.mv_size, &o)) != 0 ||
            (rc = r_order_render(&json, &o)) != 0 || (rc = fn(ud, &o)) != 0)
            break;
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = PROJ_CACHE_EIO;
    mdb_cursor_close(cur);
    r_end(r, txn);
    ev_buf_free(&json);
    return rc;
}

int proj_cache_orders(proj_cache_reader *r, int status, uint64_t before_id, uint64_t skip,
                      proj_cache_order_fn fn, void *ud)
{
    if (!r || !fn)
        return PROJ_CACHE_EINVAL;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = r_begin(r, &txn);
    if (rc)
        return rc;
    if (mdb_cursor_open(txn, r->dbi[DB_ORDER], &cur) != 0) {
        r_end(r, txn);
        return PROJ_CACHE_EIO;
    }
    MDB_val k, v;
    int mrc;
    uint8_t kb[8];
    if (before_id == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else {
        be64_put(kb, before_id);
        k = (MDB_val){8, kb};
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrc == 0)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        else if (mrc == MDB_NOTFOUND)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    uint64_t matched = 0;
    ev_buf json = {0}; /* the JSON texts of the order handed to fn */
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        proj_cache_order o;
        if ((rc = order_decode(v.mv_data, v.mv_size, &o)) != 0)
            break;
        if (status >= 0 && o.status != status)
            continue;
        if (matched++ < skip)
            continue;
        if ((rc = r_order_render(&json, &o)) != 0 || (rc = fn(ud, &o)) != 0)
            break;
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = PROJ_CACHE_EIO;
    mdb_cursor_close(cur);
    r_end(r, txn);
    ev_buf_free(&json);
    return rc;
}

/* ----------------------------------------------------------------- digest */

int proj_cache_digest(proj_cache_reader *r, uint8_t out[32])
{
    if (!r || !out)
        return PROJ_CACHE_EINVAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return PROJ_CACHE_ENOMEM;
    }
    MDB_txn *txn;
    int rc = r_begin(r, &txn);
    if (rc) {
        EVP_MD_CTX_free(md);
        return rc;
    }
    for (int d = 0; d < DB_COUNT && !rc; d++) {
        MDB_cursor *cur;
        if (mdb_cursor_open(txn, r->dbi[d], &cur) != 0) {
            rc = PROJ_CACHE_EIO;
            break;
        }
        uint8_t tag = (uint8_t)d;
        EVP_DigestUpdate(md, &tag, 1);
        MDB_val k, v;
        int mrc;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t kn = k.mv_size, vn = v.mv_size;
            EVP_DigestUpdate(md, &kn, 8);
            EVP_DigestUpdate(md, k.mv_data, k.mv_size);
            EVP_DigestUpdate(md, &vn, 8);
            EVP_DigestUpdate(md, v.mv_data, v.mv_size);
        }
        if (mrc != MDB_NOTFOUND)
            rc = PROJ_CACHE_EIO;
        mdb_cursor_close(cur);
    }
    r_end(r, txn);
    unsigned int len = 0;
    if (!rc && EVP_DigestFinal_ex(md, out, &len) != 1)
        rc = PROJ_CACHE_EIO;
    EVP_MD_CTX_free(md);
    return rc;
}
