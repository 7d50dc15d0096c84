/* admin.c - the admin routes (API.md "Admin"): every order with its
 * customer (streamed in chunks of bounded memory, or a page of them), order
 * status moves, the catalog as admins see it (paged, by name), adding and
 * changing watches, setting stock, and the dashboard's counters.
 *
 * Owns the admin role rule: reads need an agent or an admin, changes an
 * admin (auth_require: 401 without a valid token, 403 without the role;
 * the role is the account's current one). Changes are commands to the
 * writer, answered once they are durable and in the cache, with what the
 * cache then holds; reads come from the cache.
 *
 * The full order list (no page or limit) is never built whole: it goes out
 * through an h2o generator, ADMIN_CHUNK orders at a time, each chunk read
 * in its own read transaction below the last order id sent, and its buffer
 * reused once h2o asks for the next one.
 */
#include "admin.h"

#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "orders.h"
#include "query.h"
#include "reply.h"
#include "rnd.h"
#include "validate.h"

#define ADMIN_CHUNK 500       /* orders per streamed chunk */
#define ADMIN_LIMIT_MAX 200   /* a page's largest size */
#define ADMIN_LIMIT_DEFAULT 50
#define ADMIN_FULL 1          /* a collector's "stop: no more room" */

/* ------------------------------------------------------------ helpers */

static h2o_iovec_t header_of(h2o_req_t *h, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&h->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : h->headers.entries[i].value;
}

/* The order id in the path: a positive decimal integer, else 0. */
static uint64_t path_order_id(const api_req *r)
{
    const char *p = r->params.v[0].p;
    size_t n = r->params.v[0].n;
    uint64_t id = 0;
    if (n == 0 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)p[i] - '0';
        if (d > 9)
            return 0;
        id = id * 10 + d;
    }
    return id;
}

/* An admin's request on the watch named in the path: false (answered 401,
 * 403 or 404) unless both hold. */
static bool admin_on_watch(api_req *r, auth_who *who, uint8_t id[16])
{
    if (!auth_require(r, AUTH_ADMIN, who))
        return false;
    if (ev_uuid_parse(r->params.v[0].p, r->params.v[0].n, id) != 0) {
        reply_error(r, 404, "not_found", "Watch not found", NULL);
        return false;
    }
    return true;
}

static void out_of_memory(api_req *r)
{
    reply_error(r, 500, "internal_error", "Out of memory", NULL);
}

static void unreadable(api_req *r)
{
    reply_error(r, 503, "unavailable", "The store cannot be read right now", NULL);
}

/* The page and limit of a paged list: page >= 1, limit 1..200 (`dflt`
 * when unparseable). False when neither was given. */
static bool paging(api_req *r, int64_t dflt, int64_t *page, int64_t *limit)
{
    h2o_iovec_t v;
    bool has_page = query_get(&r->h->pool, r->query, "page", &v);
    *page = has_page ? query_int(v, 1, 1, INT32_MAX) : 1;
    bool has_limit = query_get(&r->h->pool, r->query, "limit", &v);
    *limit = has_limit ? query_int(v, dflt, 1, ADMIN_LIMIT_MAX) : dflt;
    return has_page || has_limit;
}

/* `],"total":T,"page":P,"pages":K}` closing a paged list. */
static int paged_tail(ev_buf *b, uint64_t total, int64_t page, int64_t limit)
{
    char t[128];
    uint64_t pages = (total + (uint64_t)limit - 1) / (uint64_t)limit;
    int n = snprintf(t, sizeof t, "],\"total\":%llu,\"page\":%lld,\"pages\":%llu}",
                     (unsigned long long)total, (long long)page, (unsigned long long)pages);
    return ev_buf_append(b, t, (size_t)n);
}

/* ------------------------------------------------------------ commands */

/* The command's envelope (orders_envelope). An administrator known only
 * to the identity provider has no account the writer could check: the API
 * has checked the role, so the command goes as the system's. */
static void admin_envelope(api_req *r, cmd_call *c, const auth_who *who)
{
    orders_envelope(r, c, who);
    if (!who->customer_id) {
        dec_cmd *cmd = cmd_command(c);
        cmd->actor_system = true;
        cmd->actor = cmd_keep(c, "oidc:admin", 10);
    }
}

/* 400 for a value the decider refused, in the validation shape. */
static void refused_value(api_req *r, const dec_out *o)
{
    json_t *path = json_array();
    if (path && o->field)
        json_array_append_new(path, json_string(o->field));
    json_t *body = json_pack("{s:s,s:s,s:[{s:o,s:s,s:s}]}", "error", "Validation failed", "code",
                             "validation_failed", "details", "path", path, "message",
                             o->message ? o->message : "is not allowed", "code", "invalid_value");
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (s)
        reply_json(r, 400, s, strlen(s));
    else
        out_of_memory(r);
    free(s);
    json_decref(body);
}

/* Whether the writer accepted the command; answers the refusal when not.
 * `missing` is the 404's sentence. */
static bool accepted(api_req *r, cmd_call *c, const char *missing)
{
    const dec_out *o = cmd_out(c);
    if (cmd_err(c)) {
        reply_error(r, 503, "unavailable", "The change could not be saved; please try again",
                    NULL);
        return false;
    }
    switch (o->reason) {
    case DEC_OK: return true;
    case DEC_NOT_FOUND: reply_error(r, 404, "not_found", missing, NULL); break;
    case DEC_INVALID: refused_value(r, o); break;
    case DEC_FORBIDDEN:
        reply_error(r, 403, "forbidden", "You do not have the rights for this", NULL);
        break;
    case DEC_IDEM_MISMATCH:
        reply_error(r, 422, "idempotency_key_reused",
                    "This Idempotency-Key was used for another request", NULL);
        break;
    default:
        reply_error(r, 409, dec_reason_code(o->reason),
                    o->message ? o->message : "The change was refused", NULL);
        break;
    }
    return false;
}

typedef void (*body_reader)(val_ctx *v, json_t *root, cmd_call *c);

/* A call of `kind` filled from the request body by `read` (which keeps
 * what it borrows in the call); NULL when it answered 400 or 500. */
static cmd_call *call_from_body(api_req *r, dec_kind kind, body_reader read)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    cmd_call *c = cmd_new(r->h, kind);
    if (c && val_parse(r->h->entity.base, r->h->entity.len, &root, &v))
        read(&v, root, c);
    json_decref(root);
    if (!c) {
        out_of_memory(r);
    } else if (val_failed(&v)) {
        char *body = val_error_json(&v);
        if (body)
            reply_json(r, 400, body, strlen(body));
        else
            out_of_memory(r);
        free(body);
        cmd_discard(c);
        c = NULL;
    }
    val_free(&v);
    return c;
}

/* ------------------------------------------------------------ order rows */

/* A chunk or page of orders as read (each order's JSON without its closing
 * brace, then its /orders/my items), before the customers are added. */
typedef struct order_row {
    uint64_t customer_id;
    size_t off, head_len, items_len;
} order_row;

typedef struct order_rows {
    ev_buf raw;
    order_row *v;
    size_t n, cap;
    uint64_t last_id;
} order_rows;

static int rows_init(order_rows *rs, size_t cap)
{
    memset(rs, 0, sizeof *rs);
    rs->cap = cap;
    rs->v = calloc(cap, sizeof *rs->v);
    return rs->v ? 0 : PROJ_CACHE_ENOMEM;
}

static void rows_free(order_rows *rs)
{
    ev_buf_free(&rs->raw);
    free(rs->v);
    rs->v = NULL;
}

static int rows_collect(void *ud, const proj_cache_order *o)
{
    order_rows *rs = ud;
    if (rs->n == rs->cap)
        return ADMIN_FULL;
    if (!o->json.p || o->json.n < 2)
        return PROJ_CACHE_ECORRUPT;
    order_row *row = &rs->v[rs->n];
    row->customer_id = o->customer_id;
    row->off = rs->raw.len;
    row->head_len = o->json.n - 1;
    row->items_len = o->my_items_json.n;
    if (ev_buf_append(&rs->raw, o->json.p, row->head_len) ||
        ev_buf_append(&rs->raw, o->my_items_json.p, row->items_len))
        return PROJ_CACHE_ENOMEM;
    rs->n++;
    rs->last_id = o->order_id;
    return rs->n == rs->cap ? ADMIN_FULL : 0;
}

/* Reads up to rs->cap orders (status -1: any) below before_id (0: from the
 * newest), after skipping `skip`. */
static int rows_fetch(api_app *app, order_rows *rs, int status, uint64_t before_id, uint64_t skip)
{
    rs->raw.len = 0;
    rs->n = 0;
    int rc = proj_cache_orders(app->cache, status, before_id, skip, rows_collect, rs);
    return rc == ADMIN_FULL ? 0 : rc;
}

/* `,"full_name":...,"email":...` of an order's customer (null, null for a
 * guest, or a customer the cache does not know). */
static int customer_members(api_app *app, uint64_t customer_id, ev_buf *tmp, ev_buf *out)
{
    proj_cache_customer cu;
    memset(&cu, 0, sizeof cu);
    int rc = customer_id ? proj_cache_get_customer(app->cache, customer_id, tmp, &cu)
                         : PROJ_CACHE_ENOTFOUND;
    if (rc && rc != PROJ_CACHE_ENOTFOUND)
        return rc;
    if (rc)
        return ev_buf_append(out, ",\"full_name\":null,\"email\":null", 30) ? PROJ_CACHE_ENOMEM
                                                                              : 0;
    int e = ev_buf_append(out, ",\"full_name\":", 13) || ev_format_json_str(cu.full_name, out) ||
            ev_buf_append(out, ",\"email\":", 9) || ev_format_json_str(cu.email, out);
    return e ? PROJ_CACHE_ENOMEM : 0;
}

/* Appends the rows as admin orders, a comma before each unless it is the
 * first of the list (*sent counts the orders written so far). */
static int rows_render(api_app *app, const order_rows *rs, ev_buf *out, uint64_t *sent)
{
    ev_buf tmp = {0};
    int rc = 0;
    for (size_t i = 0; i < rs->n && !rc; i++) {
        const order_row *row = &rs->v[i];
        const char *head = (const char *)rs->raw.p + row->off;
        if ((*sent && ev_buf_append(out, ",", 1)) || ev_buf_append(out, head, row->head_len)) {
            rc = PROJ_CACHE_ENOMEM;
            break;
        }
        rc = customer_members(app, row->customer_id, &tmp, out);
        if (!rc && (ev_buf_append(out, ",\"items\":", 9) ||
                    ev_buf_append(out, head + row->head_len, row->items_len) ||
                    ev_buf_append(out, "}", 1)))
            rc = PROJ_CACHE_ENOMEM;
        (*sent)++;
    }
    ev_buf_free(&tmp);
    return rc;
}

/* ------------------------------------------------------------ GET orders, streamed */

typedef struct order_stream {
    h2o_generator_t gen; /* first: h2o hands it back */
    api_app *app;
    int status;
    uint64_t before_id; /* the last order id sent (0: none yet) */
    uint64_t sent;
    bool done;
    order_rows rows;
    ev_buf out; /* the chunk being sent: alive until h2o asks for the next */
} order_stream;

static void stream_dispose(void *p)
{
    order_stream *s = p;
    rows_free(&s->rows);
    ev_buf_free(&s->out);
}

/* Replaces s->out with the next chunk: '[' before the first orders, ']'
 * after the last. */
static int stream_fill(order_stream *s)
{
    bool first = s->before_id == 0;
    s->out.len = 0;
    int rc = rows_fetch(s->app, &s->rows, s->status, s->before_id, 0);
    if (!rc && first && ev_buf_append(&s->out, "[", 1))
        rc = PROJ_CACHE_ENOMEM;
    if (!rc)
        rc = rows_render(s->app, &s->rows, &s->out, &s->sent);
    if (rc)
        return rc;
    s->before_id = s->rows.last_id;
    s->done = s->rows.n < s->rows.cap;
    return s->done && ev_buf_append(&s->out, "]", 1) ? PROJ_CACHE_ENOMEM : 0;
}

static void stream_send(order_stream *s, h2o_req_t *req)
{
    h2o_iovec_t b = h2o_iovec_init(s->out.p, s->out.len);
    h2o_send(req, &b, 1, s->done ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    order_stream *s = (order_stream *)g;
    if (stream_fill(s) != 0) {
        /* The head is out: all that is left is to break the response off. */
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    stream_send(s, req);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)g;
    (void)req; /* the pool's dispose frees the buffers */
}

static void orders_streamed(api_req *r, int status)
{
    h2o_req_t *h = r->h;
    order_stream *s = h2o_mem_alloc_shared(&h->pool, sizeof *s, stream_dispose);
    memset(s, 0, sizeof *s);
    s->gen.proceed = stream_proceed;
    s->gen.stop = stream_stop;
    s->app = r->app;
    s->status = status;
    if (rows_init(&s->rows, ADMIN_CHUNK) != 0 || stream_fill(s) != 0) {
        unreadable(r);
        return;
    }
    h->res.status = 200;
    h->res.reason = reply_reason(200);
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json; charset=utf-8"));
    h2o_start_response(h, &s->gen);
    stream_send(s, h);
}

/* ------------------------------------------------------------ GET orders, paged */

static uint64_t orders_total(const proj_cache_stats *st, int status)
{
    return status < 0 ? st->orders : st->orders_by_status[status];
}

static void orders_paged(api_req *r, int status, int64_t page, int64_t limit)
{
    order_rows rs;
    proj_cache_stats st;
    ev_buf b = {0};
    uint64_t sent = 0;
    int rc = rows_init(&rs, (size_t)limit);
    if (!rc)
        rc = proj_cache_get_stats(r->app->cache, &st);
    if (!rc)
        rc = rows_fetch(r->app, &rs, status, 0, (uint64_t)((page - 1) * limit));
    if (!rc && (ev_buf_append(&b, "{\"orders\":[", 11) != 0))
        rc = PROJ_CACHE_ENOMEM;
    if (!rc)
        rc = rows_render(r->app, &rs, &b, &sent);
    if (!rc && paged_tail(&b, orders_total(&st, status), page, limit))
        rc = PROJ_CACHE_ENOMEM;
    if (rc)
        unreadable(r);
    else
        reply_json(r, 200, (const char *)b.p, b.len);
    ev_buf_free(&b);
    rows_free(&rs);
}

/* The `status` filter: -1 for none; *known false for a name that is no
 * status (which matches nothing). Case is ignored. */
static int status_filter(api_req *r, bool *known)
{
    h2o_iovec_t v;
    *known = true;
    if (!query_get(&r->h->pool, r->query, "status", &v) || !v.len)
        return -1;
    for (size_t i = 0; i < v.len; i++)
        if (v.base[i] >= 'A' && v.base[i] <= 'Z')
            v.base[i] = (char)(v.base[i] + 32);
    int s = ev_enum_value(EV_ENUMSET_order_status, v.base, v.len);
    *known = s >= 0 && s < EV_order_status_COUNT;
    return *known ? s : -1;
}

/* GET /api/v1/admin/orders */
void admin_orders(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_AGENT, &who))
        return;
    bool known;
    int status = status_filter(r, &known);
    int64_t page, limit;
    bool paged = paging(r, ADMIN_LIMIT_DEFAULT, &page, &limit);
    if (known && paged) {
        orders_paged(r, status, page, limit);
    } else if (known) {
        orders_streamed(r, status);
    } else if (paged) {
        char body[96];
        int n = snprintf(body, sizeof body, "{\"orders\":[],\"total\":0,\"page\":%lld,\"pages\":0}",
                         (long long)page);
        reply_json(r, 200, body, (size_t)n);
    } else {
        reply_json(r, 200, "[]", 2);
    }
}

/* ------------------------------------------------------------ PUT order status */

static void read_status(val_ctx *v, json_t *root, cmd_call *c)
{
    const char *names[EV_order_status_COUNT + 1];
    for (int i = 0; i < EV_order_status_COUNT; i++)
        names[i] = ev_enum_name(EV_ENUMSET_order_status, i);
    names[EV_order_status_COUNT] = NULL;
    size_t to;
    if (!val_enum(v, root, "status", VAL_REQUIRED | VAL_NOCASE, names, &to))
        return;
    dec_cmd *cmd = cmd_command(c);
    cmd->u.status.status = (uint8_t)to;
    if (to == EV_order_status_CANCELLED)
        cmd->kind = DEC_ORDER_CANCEL;
}

static void bad_move(api_req *r, const dec_out *o, const dec_cmd *cmd)
{
    const char *cur = ev_enum_name(EV_ENUMSET_order_status, o->status);
    const char *to = cmd->kind == DEC_ORDER_CANCEL
                         ? "cancelled"
                         : ev_enum_name(EV_ENUMSET_order_status, cmd->u.status.status);
    char msg[160], extra[64];
    snprintf(msg, sizeof msg, "The order is %s: it cannot be moved to %s", cur ? cur : "?",
             to ? to : "?");
    snprintf(extra, sizeof extra, "\"current_status\":\"%s\"", cur ? cur : "");
    reply_error(r, 409, "invalid_status_transition", msg, extra);
}

static void status_answered(cmd_call *c, h2o_req_t *req, void *ud)
{
    api_req *r = ud;
    (void)req;
    const dec_out *o = cmd_out(c);
    if (!cmd_err(c) && o->reason == DEC_BAD_TRANSITION) {
        bad_move(r, o, cmd_command(c));
        return;
    }
    if (!accepted(r, c, "Order not found"))
        return;
    ev_buf buf = {0}, out = {0};
    proj_cache_order ord;
    int rc = proj_cache_get_order(r->app->cache, cmd_command(c)->u.status.order_id, &buf, &ord);
    if (!rc)
        rc = proj_cache_order_render(&ord, false, &out);
    if (rc)
        reply_error(r, 503, "unavailable", "The change is saved but cannot be read back yet",
                    NULL);
    else
        reply_json(r, 200, (const char *)out.p, out.len);
    ev_buf_free(&buf);
    ev_buf_free(&out);
}

/* PUT /api/v1/admin/orders/:id/status */
void admin_order_status(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_ADMIN, &who))
        return;
    uint64_t id = path_order_id(r);
    if (!id) {
        reply_error(r, 404, "not_found", "Order not found", NULL);
        return;
    }
    cmd_call *c = call_from_body(r, DEC_ORDER_SET_STATUS, read_status);
    if (!c)
        return;
    cmd_command(c)->u.status.order_id = id;
    admin_envelope(r, c, &who);
    cmd_submit(r->app->bus, r->thread, c, true, status_answered, r);
}

/* ------------------------------------------------------------ GET watches */

typedef struct watch_list {
    ev_buf *b;
    bool first;
} watch_list;

static int watch_collect(void *ud, const proj_cache_watch *w)
{
    watch_list *l = ud;
    if ((!l->first && ev_buf_append(l->b, ",", 1)) || ev_buf_append(l->b, w->json.p, w->json.n))
        return PROJ_CACHE_ENOMEM;
    l->first = false;
    return 0;
}

/* GET /api/v1/admin/watches?page&limit&search&brand */
void admin_watches(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_AGENT, &who))
        return;
    int64_t page, limit;
    paging(r, ADMIN_LIMIT_DEFAULT, &page, &limit);
    proj_cache_filter f = proj_cache_filter_all();
    h2o_iovec_t v;
    if (query_get(&r->h->pool, r->query, "brand", &v) && v.len)
        f.brand = (ev_str){v.base, (uint32_t)v.len};
    if (query_get(&r->h->pool, r->query, "search", &v) && v.len)
        f.search = (ev_str){v.base, (uint32_t)v.len};
    ev_buf b = {0};
    watch_list l = {&b, true};
    uint64_t total = 0;
    int rc = ev_buf_append(&b, "{\"watches\":[", 12) ? PROJ_CACHE_ENOMEM : 0;
    if (!rc)
        rc = proj_cache_watches(r->app->cache, PROJ_CACHE_NAME_AZ, &f,
                                (uint64_t)((page - 1) * limit), (uint64_t)limit, watch_collect, &l,
                                &total);
    if (!rc && paged_tail(&b, total, page, limit))
        rc = PROJ_CACHE_ENOMEM;
    if (rc)
        unreadable(r);
    else
        reply_json(r, 200, (const char *)b.p, b.len);
    ev_buf_free(&b);
}

/* ------------------------------------------------------------ watch changes */

/* Sets one optional string field: its bit, and a copy owned by the call. */
static void set_text(cmd_call *c, uint32_t bit, ev_str *field, ev_str value)
{
    dec_watch_fields *w = &cmd_command(c)->u.watch;
    *field = value.n ? cmd_keep(c, value.p, value.n) : (ev_str){"", 0};
    w->changed |= bit;
}

/* The watch fields of a body: for a new watch the required ones must be
 * there and "" means "none"; for a change every field is optional, and ""
 * (or null) for model_code, description, image_url or category clears it. */
static void read_watch(val_ctx *v, json_t *root, cmd_call *c, bool create)
{
    dec_watch_fields *w = &cmd_command(c)->u.watch;
    int need = create ? VAL_REQUIRED : VAL_OPTIONAL;
    int clear = create ? VAL_OPTIONAL : VAL_EMPTY;
    ev_str s;
    if (val_str(v, root, "watch_name", need | VAL_TRIM, 1, 255, &s))
        set_text(c, EV_WF_NAME, &w->watch_name, s);
    if (val_str(v, root, "brand", need | VAL_TRIM, 1, 100, &s))
        set_text(c, EV_WF_BRAND, &w->brand, s);
    if (val_str(v, root, "model_code", clear | VAL_TRIM, 0, 50, &s))
        set_text(c, EV_WF_MODEL_CODE, &w->model_code, s);
    if (val_str(v, root, "description", clear | VAL_MULTILINE, 0, 10000, &s))
        set_text(c, EV_WF_DESCRIPTION, &w->description, s);
    if (val_url(v, root, "image_url", clear, 2000, &s))
        set_text(c, EV_WF_IMAGE_URL, &w->image_url, s);
    const char *cats[PROJ_CACHE_CAT_LUXURY + 1];
    for (int i = PROJ_CACHE_CAT_AUTOMATIC; i <= PROJ_CACHE_CAT_LUXURY; i++)
        cats[i - 1] = proj_cache_category_name(i);
    cats[PROJ_CACHE_CAT_LUXURY] = NULL;
    size_t cat;
    if (val_enum(v, root, "category", clear | VAL_NOCASE, cats, &cat))
        set_text(c, EV_WF_CATEGORY, &w->category,
                 cat == SIZE_MAX ? (ev_str){"", 0} : ev_str_c(cats[cat]));
    if (val_money(v, root, "price", need, &w->price))
        w->changed |= EV_WF_PRICE;
    if (val_int(v, root, "stock_quantity", VAL_OPTIONAL, 0, DEC_MAX_STOCK, &w->stock))
        w->set_stock = true;
}

static void read_new_watch(val_ctx *v, json_t *root, cmd_call *c) { read_watch(v, root, c, true); }

static void read_watch_change(val_ctx *v, json_t *root, cmd_call *c)
{
    read_watch(v, root, c, false);
}

static void read_stock(val_ctx *v, json_t *root, cmd_call *c)
{
    val_int(v, root, "stock_quantity", VAL_REQUIRED, 0, DEC_MAX_STOCK,
            &cmd_command(c)->u.stock.quantity);
}

/* A new watch's id: random (UUIDv4), or with an Idempotency-Key derived
 * from it, so that a repeat reads back the watch the first request made. */
static void new_watch_id(api_req *r, uint8_t id[16])
{
    h2o_iovec_t key = header_of(r->h, "idempotency-key");
    if (key.len && key.len <= 128) {
        static const char domain[] = "admin-watch-id:";
        uint8_t msg[sizeof domain + 128], mac[32];
        unsigned n = sizeof mac;
        memcpy(msg, domain, sizeof domain - 1);
        memcpy(msg + sizeof domain - 1, key.base, key.len);
        HMAC(EVP_sha256(), r->app->jwt_key, sizeof r->app->jwt_key, msg,
             sizeof domain - 1 + key.len, mac, &n);
        memcpy(id, mac, 16);
    } else {
        rnd_bytes(id, 16);
    }
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

typedef struct watch_call {
    api_req *r;
    uint8_t id[16];
    int status; /* the success status */
} watch_call;

static void watch_answered(cmd_call *c, h2o_req_t *req, void *ud)
{
    watch_call *w = ud;
    (void)req;
    if (!accepted(w->r, c, "Watch not found"))
        return;
    ev_buf buf = {0};
    proj_cache_watch pw;
    if (proj_cache_get_watch(w->r->app->cache, w->id, &buf, &pw) == 0)
        reply_json(w->r, w->status, pw.json.p, pw.json.n);
    else
        reply_error(w->r, 503, "unavailable", "The change is saved but cannot be read back yet",
                    NULL);
    ev_buf_free(&buf);
}

static void submit_watch(api_req *r, cmd_call *c, const auth_who *who, const uint8_t id[16],
                         int status)
{
    watch_call *w = h2o_mem_alloc_pool(&r->h->pool, sizeof *w);
    w->r = r;
    memcpy(w->id, id, 16);
    w->status = status;
    admin_envelope(r, c, who);
    cmd_submit(r->app->bus, r->thread, c, true, watch_answered, w);
}

/* POST /api/v1/admin/watches */
void admin_watch_create(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_ADMIN, &who))
        return;
    cmd_call *c = call_from_body(r, DEC_WATCH_ADD, read_new_watch);
    if (!c)
        return;
    dec_watch_fields *w = &cmd_command(c)->u.watch;
    new_watch_id(r, w->watch_id);
    w->currency = EV_STR("USD");
    submit_watch(r, c, &who, w->watch_id, 201);
}

/* PUT /api/v1/admin/watches/:id */
void admin_watch_update(api_req *r)
{
    auth_who who;
    uint8_t id[16];
    if (!admin_on_watch(r, &who, id))
        return;
    cmd_call *c = call_from_body(r, DEC_WATCH_UPDATE, read_watch_change);
    if (!c)
        return;
    dec_watch_fields *w = &cmd_command(c)->u.watch;
    if (!w->changed && !w->set_stock) {
        cmd_discard(c);
        reply_error(r, 400, "no_fields_to_update", "No fields to update", NULL);
        return;
    }
    memcpy(w->watch_id, id, 16);
    submit_watch(r, c, &who, id, 200);
}

/* PUT /api/v1/admin/watches/:id/stock */
void admin_watch_stock(api_req *r)
{
    auth_who who;
    uint8_t id[16];
    if (!admin_on_watch(r, &who, id))
        return;
    cmd_call *c = call_from_body(r, DEC_STOCK_SET, read_stock);
    if (!c)
        return;
    memcpy(cmd_command(c)->u.stock.watch_id, id, 16);
    submit_watch(r, c, &who, id, 200);
}

/* ------------------------------------------------------------ GET stats */

/* GET /api/v1/admin/stats: every value a string of digits, as the old
 * backend's PostgreSQL counts were. */
void admin_stats(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_AGENT, &who))
        return;
    proj_cache_stats st;
    if (proj_cache_get_stats(r->app->cache, &st) != 0) {
        unreadable(r);
        return;
    }
    char revenue[32], body[512];
    reply_money(st.revenue, false, revenue);
    int n = snprintf(body, sizeof body,
                     "{\"orders\":{\"total\":\"%llu\",\"pending\":\"%llu\"},"
                     "\"customers\":{\"total\":\"%llu\"},\"revenue\":{\"total\":\"%s\"},"
                     "\"watches\":{\"total\":\"%llu\",\"low_stock\":\"%llu\"}}",
                     (unsigned long long)st.orders,
                     (unsigned long long)st.orders_by_status[EV_order_status_PENDING],
                     (unsigned long long)st.customers, revenue, (unsigned long long)st.watches,
                     (unsigned long long)st.low_stock);
    reply_json(r, 200, body, (size_t)n);
}
