/* proj_pg.c - the PostgreSQL read models (see proj_pg.h).
 *
 * A batch is one transaction. New rows are written into per-table COPY
 * buffers, and a buffer that grows past PROJ_PG_STREAM_AT is sent at once
 * without waiting for its outcome (PostgreSQL inserts it while the next
 * events are decoded and formatted); updates of rows (stock, order status
 * and payment) are coalesced per row and applied after the COPYs with one
 * UPDATE ... FROM a temporary table per kind. Rare events (a watch's fields, a role) flush what is
 * pending and run one parameterised statement, so the order of effects is
 * always the log's order. Values reach PostgreSQL only as COPY data or as
 * statement parameters, never spliced into SQL.
 *
 * After a rewind (proj_pg_rewind), batches that start below the mark it
 * left (projection_state.replay_until) write their new rows as upserts
 * through temporary staging tables, since those rows may be there already.
 */
#include "proj_pg.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/civil.h"
#include "core/ht.h"
#include "migrate.h"

/* A table's new rows are sent as soon as this many bytes are waiting. */
#define PROJ_PG_STREAM_AT (256 * 1024)

enum { T_WATCHES, T_CUSTOMERS, T_ORDERS, T_ITEMS, T_INVOICES, T_MOVES, T_PAYMENTS, T_COUNT };

/* Each table a batch adds rows to: its name, its key (the conflict target
 * of upserts) and the columns of its COPY data, in order. */
typedef struct table_def {
    const char *name, *key, *cols;
} table_def;

static const table_def tables[T_COUNT] = {
    [T_WATCHES] = {"watches", "watch_id",
                   "watch_id, watch_name, brand, model_code, description, price,"
                   " stock_quantity, image_url, category, created_at, updated_at, currency,"
                   " source_pos"},
    [T_CUSTOMERS] = {"customers", "customer_id",
                     "customer_id, email, full_name, phone, address, city, country, is_admin,"
                     " created_at, role, source_pos"},
    [T_ORDERS] = {"orders", "order_id",
                  "order_id, customer_id, order_date, total_amount, status,"
                  " payment_intent_id, shipping_address, invoice_url, currency, paid,"
                  " source_pos"},
    [T_ITEMS] = {"order_items", "item_id",
                 "item_id, order_id, watch_id, quantity, unit_price, subtotal, source_pos"},
    [T_INVOICES] = {"invoices", "invoice_id",
                    "invoice_id, order_id, invoice_number, issue_date, pdf_path, total,"
                    " source_pos"},
    [T_MOVES] = {"stock_movements", "movement_id",
                 "movement_id, watch_id, quantity_change, movement_type, reference_id, notes,"
                 " created_at, source_pos"},
    [T_PAYMENTS] = {"payments", "source_pos",
                    "source_pos, order_id, provider, intent_id, provider_event_id, outcome,"
                    " amount, currency, reason, created_at"},
};

/* The last stock of a watch changed in this batch. */
typedef struct stock_patch {
    uint8_t watch_id[16];
    int64_t quantity;
    uint64_t at_us, pos;
} stock_patch;

/* What this batch changed in an order that already existed. */
typedef struct order_patch {
    uint64_t order_id;
    int status; /* -1: unchanged */
    size_t intent_off, intent_len; /* into strings; len 0: unchanged */
    bool paid;
    uint64_t pos;
} order_patch;

struct proj_pg {
    PGconn *db;
    char conninfo[1024];
    char schema[64];
    char errmsg[1024];
    bool in_txn;
    bool async_commit; /* rebuilds: see proj_pg_set_async_commit */
    bool upsert;       /* this batch starts below replay_until: see proj_pg_rewind */
    const char *pending; /* a COPY sent whose outcome is not read yet */
    int64_t next_movement;
    ev_buf copy[T_COUNT];
    stock_patch *stock;
    size_t n_stock, cap_stock;
    ht stock_ix;
    order_patch *orders;
    size_t n_orders, cap_orders;
    ht order_ix;
    ev_buf strings; /* intent ids of order patches */
    ev_buf scratch;
    char sql_copy[T_COUNT][512];    /* COPY t (cols) FROM STDIN */
    char sql_stage[T_COUNT][512];   /* the same into ws_stage_t */
    char sql_upsert[T_COUNT][2048]; /* ws_stage_t into t, existing rows overwritten */
};

/* ------------------------------------------------------------ COPY text */

/* A string as a COPY text field: \N for null; backslash, tab, newline and
 * carriage return escaped; NUL and bytes that are not UTF-8 become U+FFFD
 * (the database is UTF-8, and one bad event must not stop the projection). */
static int put_str(ev_buf *b, ev_str s)
{
    if (!s.p)
        return ev_buf_append(b, "\\N", 2);
    if (ev_buf_reserve(b, (size_t)s.n * 3 + 1))
        return -1;
    uint8_t *o = b->p + b->len;
    const uint8_t *p = (const uint8_t *)s.p, *end = p + s.n;
    while (p < end) {
        uint8_t c = *p;
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            *o++ = '\\';
            *o++ = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
            p++;
        } else if (c >= 0x01 && c < 0x80) {
            *o++ = c;
            p++;
        } else {
            int n = c ? ev_utf8_len(p, end) : 0;
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
    b->len = (size_t)(o - b->p);
    return 0;
}

static int put_c(ev_buf *b, const char *s) { return ev_buf_append(b, s, strlen(s)); }

/* Numbers and times are formatted by hand: glibc's snprintf, strftime and
 * gmtime_r were a quarter of the client's time in a rebuild. */

/* The decimal digits of v, at least `width` of them (zeros in front),
 * written backwards so that they end at `end`; returns the first. */
static char *digits(uint64_t v, int width, char *end)
{
    char *o = end;
    do {
        *--o = (char)('0' + v % 10);
        v /= 10;
    } while (v || end - o < width);
    return o;
}

static int put_i(ev_buf *b, int64_t v)
{
    char t[24], *end = t + sizeof t;
    char *o = digits(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 1, end);
    if (v < 0)
        *--o = '-';
    return ev_buf_append(b, o, (size_t)(end - o));
}

/* Integer minor units as a decimal with two places. */
static int put_money(ev_buf *b, int64_t minor)
{
    char t[32], *end = t + sizeof t;
    uint64_t a = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    char *o = digits(a % 100, 2, end);
    *--o = '.';
    o = digits(a / 100, 1, o);
    if (minor < 0)
        *--o = '-';
    return ev_buf_append(b, o, (size_t)(end - o));
}

size_t proj_pg_format_ts(uint64_t us, char out[PROJ_PG_TS_MAX])
{
    /* The date of the last day formatted: a batch's events mostly share it. */
    static _Thread_local struct {
        uint64_t day;
        bool set;
        size_t n;
        char date[24];
    } last;
    uint64_t sec = us / 1000000, day = sec / 86400;
    unsigned sod = (unsigned)(sec % 86400);
    if (!last.set || last.day != day) {
        uint64_t year;
        unsigned month, mday;
        civil_from_days(day, &year, &month, &mday);
        char *end = last.date + sizeof last.date;
        char *o = digits(mday, 2, end - 1);
        end[-1] = ' ';
        *--o = '-';
        o = digits(month, 2, o);
        *--o = '-';
        o = digits(year, 4, o);
        last.n = (size_t)(end - o);
        memmove(last.date, o, last.n);
        last.day = day;
        last.set = true;
    }
    memcpy(out, last.date, last.n);
    char t[24], *end = t + sizeof t;
    memcpy(end - 3, "+00", 3);
    char *o = digits(us % 1000000, 6, end - 3);
    *--o = '.';
    o = digits(sod % 60, 2, o);
    *--o = ':';
    o = digits(sod / 60 % 60, 2, o);
    *--o = ':';
    o = digits(sod / 3600, 2, o);
    memcpy(out + last.n, o, (size_t)(end - o));
    return last.n + (size_t)(end - o);
}

static int put_ts(ev_buf *b, uint64_t us)
{
    char t[PROJ_PG_TS_MAX];
    return ev_buf_append(b, t, proj_pg_format_ts(us, t));
}

static int put_uuid(ev_buf *b, const uint8_t id[16])
{
    char u[37];
    ev_uuid_format(id, u);
    return ev_buf_append(b, u, 36);
}

static int put_ch(ev_buf *b, char c)
{
    if (b->len == b->cap && ev_buf_reserve(b, 1))
        return -1;
    b->p[b->len++] = (uint8_t)c;
    return 0;
}

static int tab(ev_buf *b) { return put_ch(b, '\t'); }
static int eol(ev_buf *b) { return put_ch(b, '\n'); }

static const char *status_name(int s) { return ev_enum_name(EV_ENUMSET_order_status, s); }

/* ------------------------------------------------------------ statements */

/* Appends to `out` the columns of t other than its key, each behind
 * `prefix`, separated by ", ". Returns the length written. */
static size_t non_key_cols(const table_def *t, const char *prefix, char *out, size_t cap)
{
    size_t len = 0, klen = strlen(t->key);
    const char *c = t->cols;
    out[0] = 0;
    while (*c) {
        size_t n = strcspn(c, ",");
        if (!(n == klen && memcmp(c, t->key, n) == 0))
            len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s%.*s",
                                    len ? ", " : "", prefix, (int)n, c);
        c += n;
        c += strspn(c, ", ");
    }
    return len;
}

/* The statements of each table, made once. */
static void make_statements(proj_pg *p)
{
    for (int t = 0; t < T_COUNT; t++) {
        const table_def *d = &tables[t];
        char set[512], excluded[768];
        non_key_cols(d, "", set, sizeof set);
        non_key_cols(d, "EXCLUDED.", excluded, sizeof excluded);
        snprintf(p->sql_copy[t], sizeof p->sql_copy[t], "COPY %s (%s) FROM STDIN", d->name,
                 d->cols);
        snprintf(p->sql_stage[t], sizeof p->sql_stage[t], "COPY ws_stage_%s (%s) FROM STDIN",
                 d->name, d->cols);
        snprintf(p->sql_upsert[t], sizeof p->sql_upsert[t],
                 "INSERT INTO %s (%s) SELECT %s FROM ws_stage_%s ON CONFLICT (%s)"
                 " DO UPDATE SET (%s) = ROW(%s)",
                 d->name, d->cols, d->cols, d->name, d->key, set, excluded);
    }
}

/* ------------------------------------------------------------ errors */

static int fail_pg(proj_pg *p, const char *what, PGresult *r)
{
    snprintf(p->errmsg, sizeof p->errmsg, "%s: %s", what,
             r ? PQresultErrorMessage(r) : PQerrorMessage(p->db));
    if (r)
        PQclear(r);
    return -1;
}

/* Reads the outcome of the COPY that stream_rows left running, if any. */
static int settle(proj_pg *p)
{
    const char *sql = p->pending;
    if (!sql)
        return 0;
    p->pending = NULL;
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(p->db)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
            rc = fail_pg(p, sql, r);
            continue;
        }
        PQclear(r);
    }
    return rc;
}

static int run(proj_pg *p, const char *sql)
{
    if (settle(p))
        return -1;
    PGresult *r = PQexec(p->db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return fail_pg(p, sql, r);
    PQclear(r);
    return 0;
}

static int run_params(proj_pg *p, const char *sql, int n, const char *const *vals)
{
    if (settle(p))
        return -1;
    PGresult *r = PQexecParams(p->db, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail_pg(p, "statement", r);
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------ flushing */

/* Starts a COPY and sends the buffer and its end, without reading the
 * outcome: settle() does, before the connection's next statement. */
static int copy_send(proj_pg *p, const char *sql, ev_buf *b)
{
    if (settle(p))
        return -1;
    PGresult *r = PQexec(p->db, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return fail_pg(p, sql, r);
    PQclear(r);
    if (PQputCopyData(p->db, (const char *)b->p, (int)b->len) != 1 ||
        PQputCopyEnd(p->db, NULL) != 1)
        return fail_pg(p, "COPY", NULL);
    p->pending = sql;
    b->len = 0;
    return 0;
}

static int copy_in(proj_pg *p, const char *sql, ev_buf *b)
{
    if (b->len == 0)
        return 0;
    return copy_send(p, sql, b) || settle(p) ? -1 : 0;
}

/* Rows sent while the batch is still being read from the log, so that
 * PostgreSQL inserts them while this process decodes and formats the next
 * events (the plain path only: upserts wait for the batch's end). */
static int stream_rows(proj_pg *p)
{
    if (p->upsert)
        return 0;
    for (int t = 0; t < T_COUNT; t++)
        if (p->copy[t].len >= PROJ_PG_STREAM_AT)
            return copy_send(p, p->sql_copy[t], &p->copy[t]);
    return 0;
}

static int flush_stock(proj_pg *p)
{
    if (!p->n_stock)
        return 0;
    ev_buf *b = &p->scratch;
    b->len = 0;
    for (size_t i = 0; i < p->n_stock; i++) {
        stock_patch *s = &p->stock[i];
        if (put_uuid(b, s->watch_id) || tab(b) || put_i(b, s->quantity) || tab(b) ||
            put_ts(b, s->at_us) || tab(b) || put_i(b, (int64_t)s->pos) || eol(b))
            return -1;
    }
    if (copy_in(p, "COPY ws_stock_patch FROM STDIN", b) ||
        run(p, "UPDATE watches w SET stock_quantity = t.quantity, updated_at = t.at,"
               " source_pos = t.pos FROM ws_stock_patch t WHERE w.watch_id = t.watch_id") ||
        run(p, "TRUNCATE ws_stock_patch"))
        return -1;
    p->n_stock = 0;
    ht_free(&p->stock_ix);
    ht_init(&p->stock_ix);
    return 0;
}

static int flush_orders(proj_pg *p)
{
    if (!p->n_orders)
        return 0;
    ev_buf *b = &p->scratch;
    b->len = 0;
    for (size_t i = 0; i < p->n_orders; i++) {
        order_patch *o = &p->orders[i];
        ev_str intent = {o->intent_len ? (const char *)p->strings.p + o->intent_off : NULL,
                         (uint32_t)o->intent_len};
        if (put_i(b, (int64_t)o->order_id) || tab(b) ||
            (o->status >= 0 ? put_c(b, status_name(o->status)) : put_c(b, "\\N")) || tab(b) ||
            put_str(b, intent) || tab(b) || put_c(b, o->paid ? "t" : "f") || tab(b) ||
            put_i(b, (int64_t)o->pos) || eol(b))
            return -1;
    }
    if (copy_in(p, "COPY ws_order_patch FROM STDIN", b) ||
        run(p, "UPDATE orders o SET status = coalesce(t.status, o.status),"
               " payment_intent_id = coalesce(t.intent_id, o.payment_intent_id),"
               " paid = o.paid OR t.paid, source_pos = t.pos"
               " FROM ws_order_patch t WHERE o.order_id = t.order_id") ||
        run(p, "TRUNCATE ws_order_patch"))
        return -1;
    p->n_orders = 0;
    p->strings.len = 0;
    ht_free(&p->order_ix);
    ht_init(&p->order_ix);
    return 0;
}

/* Upsert mode: the rows go through a temporary staging table, then into
 * the table; a row that is already there (projected before a rewind) takes
 * the new values. */
static int upsert_rows(proj_pg *p, int t)
{
    if (p->copy[t].len == 0)
        return 0;
    const char *n = tables[t].name;
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE IF NOT EXISTS ws_stage_%s (LIKE %s) ON COMMIT DELETE ROWS", n,
             n);
    if (run(p, sql) || copy_in(p, p->sql_stage[t], &p->copy[t]) || run(p, p->sql_upsert[t]))
        return -1;
    snprintf(sql, sizeof sql, "DELETE FROM ws_stage_%s", n);
    return run(p, sql);
}

/* Everything pending, in an order that respects the log's: new rows first
 * (updates in the batch may touch them), then the coalesced updates. */
static int flush(proj_pg *p)
{
    for (int t = 0; t < T_COUNT; t++)
        if (p->upsert ? upsert_rows(p, t) : copy_in(p, p->sql_copy[t], &p->copy[t]))
            return -1;
    return flush_stock(p) || flush_orders(p) ? -1 : 0;
}

/* ------------------------------------------------------------ patches */

static stock_patch *stock_of(proj_pg *p, const uint8_t id[16])
{
    uint64_t ix;
    if (ht_get(&p->stock_ix, id, &ix))
        return &p->stock[ix];
    if (p->n_stock == p->cap_stock) {
        size_t n = p->cap_stock ? p->cap_stock * 2 : 256;
        stock_patch *s = realloc(p->stock, n * sizeof *s);
        if (!s)
            return NULL;
        p->stock = s;
        p->cap_stock = n;
    }
    if (ht_put(&p->stock_ix, id, p->n_stock))
        return NULL;
    stock_patch *s = &p->stock[p->n_stock++];
    memcpy(s->watch_id, id, 16);
    return s;
}

static order_patch *order_of(proj_pg *p, uint64_t id)
{
    uint8_t key[16] = {0};
    uint64_t ix;
    memcpy(key, &id, sizeof id);
    if (ht_get(&p->order_ix, key, &ix))
        return &p->orders[ix];
    if (p->n_orders == p->cap_orders) {
        size_t n = p->cap_orders ? p->cap_orders * 2 : 256;
        order_patch *o = realloc(p->orders, n * sizeof *o);
        if (!o)
            return NULL;
        p->orders = o;
        p->cap_orders = n;
    }
    if (ht_put(&p->order_ix, key, p->n_orders))
        return NULL;
    order_patch *o = &p->orders[p->n_orders++];
    memset(o, 0, sizeof *o);
    o->order_id = id;
    o->status = -1;
    return o;
}

static int patch_order(proj_pg *p, uint64_t id, int status, ev_str intent, bool paid,
                       uint64_t pos)
{
    order_patch *o = order_of(p, id);
    if (!o)
        return -1;
    if (status >= 0)
        o->status = status;
    if (intent.p && intent.n) {
        o->intent_off = p->strings.len;
        o->intent_len = intent.n;
        if (ev_buf_append(&p->strings, intent.p, intent.n))
            return -1;
    }
    o->paid = o->paid || paid;
    o->pos = pos;
    return 0;
}

/* ------------------------------------------------------------ events */

static int row_watch(proj_pg *p, const ev_event *ev)
{
    const ev_watch_added *w = &ev->u.watch_added;
    ev_buf *b = &p->copy[T_WATCHES];
    return put_uuid(b, w->watch_id) || tab(b) || put_str(b, w->watch_name) || tab(b) ||
           put_str(b, w->brand) || tab(b) || put_str(b, w->model_code) || tab(b) ||
           put_str(b, w->description) || tab(b) || put_money(b, w->price) || tab(b) ||
           put_i(b, w->stock_quantity) || tab(b) || put_str(b, w->image_url) || tab(b) ||
           put_str(b, w->category) || tab(b) || put_ts(b, ev->env.recorded_us) || tab(b) ||
           put_ts(b, ev->env.recorded_us) || tab(b) || put_str(b, w->currency) || tab(b) ||
           put_i(b, (int64_t)ev->env.pos) || eol(b);
}

static int row_customer(proj_pg *p, const ev_event *ev)
{
    const ev_customer_registered *c = &ev->u.customer_registered;
    ev_buf *b = &p->copy[T_CUSTOMERS];
    return put_i(b, (int64_t)c->customer_id) || tab(b) || put_str(b, c->email) || tab(b) ||
           put_str(b, c->full_name) || tab(b) || put_str(b, c->phone) || tab(b) ||
           put_str(b, c->address) || tab(b) || put_str(b, c->city) || tab(b) ||
           put_str(b, c->country) || tab(b) || put_c(b, c->role == EV_role_ADMIN ? "t" : "f") ||
           tab(b) || put_ts(b, ev->env.recorded_us) || tab(b) ||
           put_c(b, ev_enum_name(EV_ENUMSET_role, c->role)) || tab(b) ||
           put_i(b, (int64_t)ev->env.pos) || eol(b);
}

/* INV-<year>-<order id, at least 5 digits>. */
static void invoice_number(uint64_t at_us, uint64_t order_id, char out[48])
{
    uint64_t year;
    unsigned month, mday;
    civil_from_days(at_us / 1000000 / 86400, &year, &month, &mday);
    char *end = out + 47;
    *end = 0;
    char *o = digits(order_id, 5, end);
    *--o = '-';
    o = digits(year, 4, o);
    memcpy(o - 4, "INV-", 4);
    memmove(out, o - 4, (size_t)(end - o) + 5);
}

static int rows_order(proj_pg *p, const ev_event *ev)
{
    const ev_order_placed *o = &ev->u.order_placed;
    uint64_t pos = ev->env.pos;
    ev_buf *b = &p->copy[T_ORDERS];
    if (put_i(b, (int64_t)o->order_id) || tab(b) ||
        (o->customer_id ? put_i(b, (int64_t)o->customer_id) : put_c(b, "\\N")) || tab(b) ||
        put_ts(b, ev->env.recorded_us) || tab(b) || put_money(b, o->total) || tab(b) ||
        put_c(b, "pending") || tab(b) || put_c(b, "\\N") || tab(b) ||
        put_str(b, o->shipping_address) || tab(b) || put_c(b, "\\N") || tab(b) ||
        put_str(b, o->currency) || tab(b) || put_c(b, "f") || tab(b) || put_i(b, (int64_t)pos) ||
        eol(b))
        return -1;
    b = &p->copy[T_ITEMS];
    for (uint32_t i = 0; i < o->lines.n; i++) {
        const ev_line *l = &o->lines.v[i];
        if (put_i(b, (int64_t)(o->order_id * 100 + i)) || tab(b) ||
            put_i(b, (int64_t)o->order_id) || tab(b) || put_uuid(b, l->watch_id) || tab(b) ||
            put_i(b, l->quantity) || tab(b) || put_money(b, l->unit_price) || tab(b) ||
            put_money(b, l->subtotal) || tab(b) || put_i(b, (int64_t)pos) || eol(b))
            return -1;
    }
    b = &p->copy[T_INVOICES];
    char num[48];
    invoice_number(ev->env.recorded_us, o->order_id, num);
    return put_i(b, (int64_t)o->order_id) || tab(b) || put_i(b, (int64_t)o->order_id) ||
           tab(b) || put_c(b, num) || tab(b) || put_ts(b, ev->env.recorded_us) || tab(b) ||
           put_c(b, "\\N") || tab(b) || put_money(b, o->total) || tab(b) ||
           put_i(b, (int64_t)pos) || eol(b);
}

static int row_movement(proj_pg *p, const ev_event *ev)
{
    const ev_stock_adjusted *s = &ev->u.stock_adjusted;
    ev_buf *b = &p->copy[T_MOVES];
    if (put_i(b, p->next_movement++) || tab(b) || put_uuid(b, s->watch_id) || tab(b) ||
        put_i(b, s->delta) || tab(b) ||
        put_c(b, ev_enum_name(EV_ENUMSET_stock_reason, s->reason)) || tab(b) ||
        (s->order_id ? put_i(b, (int64_t)s->order_id) : put_c(b, "\\N")) || tab(b) ||
        put_str(b, s->note) || tab(b) || put_ts(b, ev->env.recorded_us) || tab(b) ||
        put_i(b, (int64_t)ev->env.pos) || eol(b))
        return -1;
    stock_patch *sp = stock_of(p, s->watch_id);
    if (!sp)
        return -1;
    sp->quantity = s->quantity;
    sp->at_us = ev->env.recorded_us;
    sp->pos = ev->env.pos;
    return 0;
}

static int row_payment(proj_pg *p, const ev_event *ev, uint64_t order_id, ev_str provider,
                       ev_str intent, ev_str event_id, const char *outcome, int64_t amount,
                       bool has_amount, ev_str currency, ev_str reason)
{
    ev_buf *b = &p->copy[T_PAYMENTS];
    return put_i(b, (int64_t)ev->env.pos) || tab(b) || put_i(b, (int64_t)order_id) || tab(b) ||
           put_str(b, provider) || tab(b) || put_str(b, intent) || tab(b) ||
           put_str(b, event_id) || tab(b) || put_c(b, outcome) || tab(b) ||
           (has_amount ? put_money(b, amount) : put_c(b, "\\N")) || tab(b) ||
           put_str(b, currency) || tab(b) || put_str(b, reason) || tab(b) ||
           put_ts(b, ev->env.recorded_us) || eol(b);
}

/* watch.updated: one UPDATE of the changed columns (names from this list
 * only; values as parameters). */
static int update_watch(proj_pg *p, const ev_event *ev)
{
    const ev_watch_updated *w = &ev->u.watch_updated;
    static const struct {
        uint32_t bit;
        const char *col;
    } cols[] = {{EV_WF_NAME, "watch_name"},   {EV_WF_BRAND, "brand"},
                {EV_WF_MODEL_CODE, "model_code"}, {EV_WF_DESCRIPTION, "description"},
                {EV_WF_PRICE, "price"},       {EV_WF_IMAGE_URL, "image_url"},
                {EV_WF_CATEGORY, "category"}};
    const ev_str vals_s[] = {w->watch_name, w->brand, w->model_code, w->description,
                             {NULL, 0},     w->image_url, w->category};
    if (flush(p))
        return -1;
    char sql[512], uuid[37], at[48], pos[24], price[32];
    const char *vals[10];
    char *owned[10] = {0};
    int n = 0, len = snprintf(sql, sizeof sql, "UPDATE watches SET updated_at = $1, source_pos = $2");
    ev_buf tb = {0};
    put_ts(&tb, ev->env.recorded_us);
    snprintf(at, sizeof at, "%.*s", (int)tb.len, (const char *)tb.p);
    ev_buf_free(&tb);
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)ev->env.pos);
    ev_uuid_format(w->watch_id, uuid);
    vals[n++] = at;
    vals[n++] = pos;
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        if (!(w->changed & cols[i].bit))
            continue;
        if (cols[i].bit == EV_WF_PRICE) {
            ev_buf mb = {0};
            put_money(&mb, w->price);
            snprintf(price, sizeof price, "%.*s", (int)mb.len, (const char *)mb.p);
            ev_buf_free(&mb);
            vals[n] = price;
        } else if (vals_s[i].p) {
            /* Parameters are C strings: NUL and invalid UTF-8 made safe. */
            ev_buf sb = {0};
            ev_str v = vals_s[i];
            for (uint32_t k = 0; k < v.n; k++)
                ev_buf_append(&sb, v.p[k] ? &v.p[k] : "\xef\xbf\xbd", v.p[k] ? 1 : 3);
            ev_buf_append(&sb, "", 1);
            owned[n] = (char *)sb.p;
            vals[n] = owned[n];
        } else {
            vals[n] = NULL;
        }
        n++;
        len += snprintf(sql + len, sizeof sql - (size_t)len, ", %s = $%d", cols[i].col, n);
    }
    snprintf(sql + len, sizeof sql - (size_t)len, " WHERE watch_id = $%d", n + 1);
    vals[n++] = uuid;
    int rc = run_params(p, sql, n, vals);
    for (int i = 0; i < 10; i++)
        free(owned[i]);
    return rc;
}

static int update_role(proj_pg *p, const ev_event *ev)
{
    const ev_customer_role_changed *c = &ev->u.customer_role_changed;
    char id[24], pos[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)c->customer_id);
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)ev->env.pos);
    const char *vals[3] = {ev_enum_name(EV_ENUMSET_role, c->role), pos, id};
    if (flush(p))
        return -1;
    return run_params(p,
                      "UPDATE customers SET role = $1::text, is_admin = ($1::text = 'admin'),"
                      " source_pos = $2 WHERE customer_id = $3",
                      3, vals);
}

static int pg_apply(void *ctx, const ev_event *ev)
{
    proj_pg *p = ctx;
    const ev_str none = {NULL, 0};
    int rc = 0;
    switch (ev->env.type) {
    case EV_T_WATCH_ADDED: rc = row_watch(p, ev); break;
    case EV_T_WATCH_UPDATED: rc = update_watch(p, ev); break;
    case EV_T_STOCK_ADJUSTED: rc = row_movement(p, ev); break;
    case EV_T_CUSTOMER_REGISTERED: rc = row_customer(p, ev); break;
    case EV_T_CUSTOMER_ROLE_CHANGED: rc = update_role(p, ev); break;
    case EV_T_ORDER_PLACED: rc = rows_order(p, ev); break;
    case EV_T_ORDER_STATUS_CHANGED:
        rc = patch_order(p, ev->u.order_status_changed.order_id, ev->u.order_status_changed.to,
                         none, false, ev->env.pos);
        break;
    case EV_T_ORDER_CANCELLED:
        rc = patch_order(p, ev->u.order_cancelled.order_id, EV_order_status_CANCELLED, none,
                         false, ev->env.pos);
        break;
    case EV_T_PAYMENT_INTENT_CREATED: {
        const ev_payment_intent_created *e = &ev->u.payment_intent_created;
        rc = row_payment(p, ev, e->order_id, e->provider, e->intent_id, none, "intent",
                         e->amount, true, e->currency, none) ||
             patch_order(p, e->order_id, -1, e->intent_id, false, ev->env.pos);
        break;
    }
    case EV_T_PAYMENT_SUCCEEDED: {
        const ev_payment_succeeded *e = &ev->u.payment_succeeded;
        rc = row_payment(p, ev, e->order_id, e->provider, e->intent_id, e->provider_event_id,
                         "succeeded", e->amount, true, e->currency, none) ||
             patch_order(p, e->order_id, -1, e->intent_id, true, ev->env.pos);
        break;
    }
    case EV_T_PAYMENT_MISMATCHED: {
        const ev_payment_mismatched *e = &ev->u.payment_mismatched;
        rc = row_payment(p, ev, e->order_id, e->provider, e->intent_id, e->provider_event_id,
                         "mismatched", e->amount, true, e->currency, none);
        break;
    }
    case EV_T_PAYMENT_FAILED: {
        const ev_payment_failed *e = &ev->u.payment_failed;
        rc = row_payment(p, ev, e->order_id, e->provider, e->intent_id, e->provider_event_id,
                         "failed", 0, false, none, e->reason);
        break;
    }
    case EV_T_CUSTOMER_PASSWORD_CHANGED:
        break; /* a secret: password hashes stay out of analysts' tables */
    default: break; /* tokens are not analysts' data */
    }
    if (rc && !p->errmsg[0])
        snprintf(p->errmsg, sizeof p->errmsg, "out of memory");
    return rc || stream_rows(p) ? -1 : 0;
}

/* ------------------------------------------------------------ the sink */

static void reset_batch(proj_pg *p)
{
    p->upsert = false;
    for (int t = 0; t < T_COUNT; t++)
        p->copy[t].len = 0;
    p->n_stock = p->n_orders = 0;
    p->strings.len = 0;
    ht_free(&p->stock_ix);
    ht_init(&p->stock_ix);
    ht_free(&p->order_ix);
    ht_init(&p->order_ix);
}

static int enter(proj_pg *p)
{
    char *id = PQescapeIdentifier(p->db, p->schema, strlen(p->schema));
    if (!id)
        return fail_pg(p, "schema name", NULL);
    char sql[1024];
    /* The patch updates touch a few rows of big tables: look them up by
     * key. Without this the planner, short of statistics early in a
     * rebuild, hash-joins the whole table every batch. A rebuild does not
     * wait for each commit's flush: if PostgreSQL crashes, its position
     * rolls back with its rows and the batches are simply applied again. */
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL search_path TO %s;"
             " SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;%s"
             " CREATE TEMP TABLE IF NOT EXISTS ws_stock_patch (watch_id uuid, quantity integer,"
             " at timestamptz, pos bigint);"
             " CREATE TEMP TABLE IF NOT EXISTS ws_order_patch (order_id integer, status text,"
             " intent_id text, paid boolean, pos bigint)",
             id, p->async_commit ? " SET LOCAL synchronous_commit = off;" : "");
    PQfreemem(id);
    return run(p, sql);
}

static int pg_next_pos(void *ctx, uint64_t *pos)
{
    proj_pg *p = ctx;
    char *id = PQescapeIdentifier(p->db, p->schema, strlen(p->schema));
    if (!id)
        return fail_pg(p, "schema name", NULL);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT next_pos FROM %s.projection_state WHERE projection = 'pg'",
             id);
    PQfreemem(id);
    PGresult *r = PQexec(p->db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail_pg(p, "reading the projection's position", r);
    *pos = PQntuples(r) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

static int pg_begin(void *ctx, uint64_t *pos)
{
    proj_pg *p = ctx;
    p->errmsg[0] = 0;
    reset_batch(p);
    if (enter(p))
        return -1;
    p->in_txn = true;
    /* The row lock makes a second projector of the same database wait for
     * this batch, then start from where it ended. */
    PGresult *r = PQexec(p->db, "SELECT next_pos, next_movement_id, replay_until"
                                " FROM projection_state WHERE projection = 'pg' FOR UPDATE");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail_pg(p, "reading the projection's position", r);
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(p->errmsg, sizeof p->errmsg, "projection_state has no row for 'pg'");
        return -1;
    }
    *pos = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    p->next_movement = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    /* Below the mark a rewind left, rows may already be there. */
    p->upsert = *pos < strtoull(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    return 0;
}

static int pg_commit(void *ctx, uint64_t next_pos)
{
    proj_pg *p = ctx;
    if (flush(p))
        return -1;
    char pos[24], mv[24];
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)next_pos);
    snprintf(mv, sizeof mv, "%lld", (long long)p->next_movement);
    const char *vals[2] = {pos, mv};
    if (run_params(p,
                   "UPDATE projection_state SET next_pos = $1, next_movement_id = $2,"
                   " replay_until = CASE WHEN replay_until <= $1::bigint THEN 0"
                   " ELSE replay_until END, updated_at = now() WHERE projection = 'pg'",
                   2, vals) ||
        run_params(p, "SELECT pg_notify('ws_projection_pg', $1)", 1, vals) ||
        run(p, "COMMIT"))
        return -1;
    p->in_txn = false;
    return 0;
}

static void pg_abort(void *ctx)
{
    proj_pg *p = ctx;
    reset_batch(p);
    if (p->pending) {
        p->pending = NULL;
        PGresult *r;
        while ((r = PQgetResult(p->db)) != NULL)
            PQclear(r);
    }
    if (p->in_txn && PQstatus(p->db) == CONNECTION_OK) {
        PGresult *r = PQexec(p->db, "ROLLBACK");
        PQclear(r);
    }
    p->in_txn = false;
}

static const char *pg_errmsg(void *ctx) { return ((proj_pg *)ctx)->errmsg; }

static const proj_sink_ops pg_ops = {
    .name = "pg",
    .next_pos = pg_next_pos,
    .begin = pg_begin,
    .apply = pg_apply,
    .commit = pg_commit,
    .abort = pg_abort,
    .errmsg = pg_errmsg,
};

proj_sink proj_pg_sink(proj_pg *p) { return (proj_sink){&pg_ops, p}; }

static int connect_and_migrate(proj_pg *p, char *err, size_t errlen)
{
    if (p->db)
        PQfinish(p->db);
    p->db = PQconnectdb(p->conninfo);
    if (PQstatus(p->db) != CONNECTION_OK) {
        /* libpq names host and reason, never the password. */
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(p->db));
        return -1;
    }
    PGresult *r = PQexec(p->db, "SET client_min_messages TO warning");
    PQclear(r);
    int applied;
    if (proj_migrate(p->db, p->schema, &applied, err, errlen) != 0)
        return -1;
    /* The position row exists from the start, so that batches can lock it. */
    char *id = PQescapeIdentifier(p->db, p->schema, strlen(p->schema));
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.projection_state (projection) VALUES ('pg') ON CONFLICT DO NOTHING",
             id);
    PQfreemem(id);
    r = PQexec(p->db, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

proj_pg *proj_pg_open(const char *conninfo, const char *schema, char *err, size_t errlen)
{
    proj_pg *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(p->conninfo, sizeof p->conninfo, "%s", conninfo);
    snprintf(p->schema, sizeof p->schema, "%s", schema);
    ht_init(&p->stock_ix);
    ht_init(&p->order_ix);
    make_statements(p);
    if (connect_and_migrate(p, err, errlen) != 0) {
        proj_pg_close(p);
        return NULL;
    }
    return p;
}

void proj_pg_set_async_commit(proj_pg *p, bool on) { p->async_commit = on; }

int proj_pg_reconnect(proj_pg *p, char *err, size_t errlen)
{
    p->in_txn = false;
    p->pending = NULL;
    return connect_and_migrate(p, err, errlen);
}

void proj_pg_close(proj_pg *p)
{
    if (!p)
        return;
    if (p->db)
        PQfinish(p->db);
    for (int t = 0; t < T_COUNT; t++)
        ev_buf_free(&p->copy[t]);
    ev_buf_free(&p->strings);
    ev_buf_free(&p->scratch);
    free(p->stock);
    free(p->orders);
    ht_free(&p->stock_ix);
    ht_free(&p->order_ix);
    free(p);
}

/* ------------------------------------------------------------ rewinding */

/* Reads the position under the row lock; refuses a position not reached. */
static int rewind_check(proj_pg *p, uint64_t from_pos)
{
    PGresult *r = PQexec(p->db, "SELECT next_pos FROM projection_state"
                                " WHERE projection = 'pg' FOR UPDATE");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail_pg(p, "reading the projection's position", r);
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(p->errmsg, sizeof p->errmsg, "projection_state has no row for 'pg'");
        return -1;
    }
    uint64_t next = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (from_pos <= next)
        return 0;
    snprintf(p->errmsg, sizeof p->errmsg,
             "cannot re-project from position %llu: the read models hold the events before"
             " position %llu only, and events not yet projected cannot be re-projected",
             (unsigned long long)from_pos, (unsigned long long)next);
    return -1;
}

/* The rewind's transaction (see proj_pg_rewind). */
static int rewind_txn(proj_pg *p, uint64_t from_pos)
{
    char pos[24];
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)from_pos);
    const char *vals[1] = {pos};
    if (enter(p))
        return -1;
    p->in_txn = true;
    if (rewind_check(p, from_pos) ||
        run_params(p, "DELETE FROM stock_movements WHERE source_pos >= $1", 1, vals) ||
        run_params(p, "DELETE FROM payments WHERE source_pos >= $1", 1, vals) ||
        run_params(p,
                   "UPDATE projection_state SET next_movement_id ="
                   " 1 + coalesce((SELECT max(movement_id) FROM stock_movements), 0),"
                   " replay_until = CASE WHEN greatest(replay_until, next_pos) > $1::bigint"
                   " THEN greatest(replay_until, next_pos) ELSE 0 END, next_pos = $1,"
                   " updated_at = now() WHERE projection = 'pg'",
                   1, vals) ||
        run(p, "COMMIT"))
        return -1;
    p->in_txn = false;
    return 0;
}

int proj_pg_rewind(const char *conninfo, const char *schema, uint64_t from_pos, char *err,
                   size_t errlen)
{
    proj_pg *p = proj_pg_open(conninfo, schema, err, errlen);
    if (!p)
        return -1;
    int rc = rewind_txn(p, from_pos);
    if (rc) {
        snprintf(err, errlen, "%s", p->errmsg);
        pg_abort(p);
    }
    proj_pg_close(p);
    return rc;
}

/* ------------------------------------------------------------ waiting */

static long long applied_pos(PGconn *db, const char *schema, char *err, size_t errlen)
{
    char *id = PQescapeIdentifier(db, schema, strlen(schema));
    if (!id) {
        snprintf(err, errlen, "%s", PQerrorMessage(db));
        return -1;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT next_pos FROM %s.projection_state WHERE projection = 'pg'",
             id);
    PQfreemem(id);
    PGresult *r = PQexec(db, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    else
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int proj_pg_wait(PGconn *db, const char *schema, uint64_t pos, int timeout_ms, char *err,
                 size_t errlen)
{
    PGresult *r = PQexec(db, "LISTEN ws_projection_pg");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
        return -1;
    long long deadline = now_ms() + timeout_ms, at;
    int rc = 1;
    /* Listening first, then reading the position: a commit in between is
     * seen by one or the other. */
    while ((at = applied_pos(db, schema, err, errlen)) >= 0) {
        if ((uint64_t)at > pos) {
            rc = 0;
            break;
        }
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pf = {PQsocket(db), POLLIN, 0};
        if (poll(&pf, 1, (int)left) < 0 || !PQconsumeInput(db)) {
            snprintf(err, errlen, "%s", PQerrorMessage(db));
            rc = -1;
            break;
        }
        PGnotify *n;
        while ((n = PQnotifies(db)) != NULL)
            PQfreemem(n);
    }
    if (at < 0)
        rc = -1;
    r = PQexec(db, "UNLISTEN ws_projection_pg");
    PQclear(r);
    return rc;
}
