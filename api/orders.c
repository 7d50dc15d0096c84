/* orders.c - the order routes (API.md "Orders"): placing an order (as a
 * customer or a guest), reading one back, and a customer's own orders.
 *
 * Placing is a command to the writer: the HTTP loop never waits on a disk;
 * the 201 goes out once the events are durable and the cache has them, so
 * the client can read the order at once. Reads come from the cache, whose
 * order records carry their JSON ready to send.
 */
#include "orders.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "digest.h"
#include "b64.h"
#include "reply.h"
#include "rnd.h"
#include "validate.h"

static h2o_iovec_t req_header(h2o_req_t *h, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&h->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : h->headers.entries[i].value;
}

/* A positive order id from a path segment; 0 for anything else. */
static uint64_t order_id_of(const char *p, size_t n)
{
    uint64_t v = 0;
    if (n == 0 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* The envelope every command from a request carries: correlation id,
 * actor, idempotency key and the request's fingerprint. */
void orders_envelope(api_req *r, cmd_call *c, const auth_who *who)
{
    dec_cmd *cmd = cmd_command(c);
    cmd->correlation = cmd_keep(c, r->corr.base, r->corr.len);
    char actor[48];
    if (who && who->present && who->customer_id) {
        snprintf(actor, sizeof actor, "customer:%llu", (unsigned long long)who->customer_id);
        cmd->actor_customer = who->customer_id;
    } else {
        snprintf(actor, sizeof actor, "guest");
    }
    cmd->actor = cmd_keep(c, actor, strlen(actor));
    h2o_iovec_t key = req_header(r->h, "idempotency-key");
    if (key.len && key.len <= 128) {
        cmd->idem_key = cmd_keep(c, key.base, key.len);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t d[32];
        unsigned dn = 0;
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        EVP_DigestUpdate(md, r->h->method.base, r->h->method.len);
        EVP_DigestUpdate(md, r->path.base, r->path.len);
        EVP_DigestUpdate(md, r->h->entity.base ? r->h->entity.base : "", r->h->entity.len);
        EVP_DigestFinal_ex(md, d, &dn);
        EVP_MD_CTX_free(md);
        memcpy(cmd->idem_fp, d, 16);
    }
}

/* A guest order's token: random, or derived from the idempotency key so
 * that a repeated request gets the same token back. */
static void guest_token(api_req *r, const dec_cmd *cmd, char out[48])
{
    uint8_t t[32];
    if (cmd->idem_key.p) {
        unsigned n = 32;
        HMAC(EVP_sha256(), r->app->jwt_key, 32, (const uint8_t *)cmd->idem_key.p,
             cmd->idem_key.n, t, &n);
    } else {
        rnd_bytes(t, sizeof t);
    }
    b64_encode(B64_URL, t, 32, out, 48);
}

/* ------------------------------------------------------------ POST */

typedef struct place_ctx {
    api_app *app;
    char token[48]; /* a guest's order token, "" for a customer */
} place_ctx;

static void refusal(api_req *r, const dec_out *o, const dec_cmd *cmd)
{
    char msg[512], extra[256], id[37] = "", price[32];
    const dec_line_in *line = o->index < cmd->u.order.n_lines ? &cmd->u.order.lines[o->index] : NULL;
    char name[300] = "this watch";
    if (line) {
        ev_uuid_format(line->watch_id, id);
        ev_buf buf = {0};
        proj_cache_watch w;
        if (proj_cache_get_watch(r->app->cache, line->watch_id, &buf, &w) == 0)
            snprintf(name, sizeof name, "%.*s", (int)w.watch_name.n, w.watch_name.p);
        ev_buf_free(&buf);
    }
    switch (o->reason) {
    case DEC_NOT_FOUND:
        snprintf(msg, sizeof msg, "Watch not found: %s", id);
        snprintf(extra, sizeof extra, "\"watch_id\":\"%s\"", id);
        reply_error(r, 404, "not_found", msg, extra);
        return;
    case DEC_OUT_OF_STOCK:
        snprintf(msg, sizeof msg, "Insufficient stock for %s: %lld available", name,
                 (long long)o->detail);
        snprintf(extra, sizeof extra, "\"watch_id\":\"%s\",\"available\":%lld", id,
                 (long long)o->detail);
        reply_error(r, 409, "insufficient_stock", msg, extra);
        return;
    case DEC_PRICE_CHANGED:
        reply_money(o->detail, false, price);
        snprintf(msg, sizeof msg,
                 "The price of %s is now %s: please remove it from your cart and add it again",
                 name, price);
        snprintf(extra, sizeof extra, "\"watch_id\":\"%s\",\"current_price\":\"%s\"", id, price);
        reply_error(r, 409, "price_changed", msg, extra);
        return;
    case DEC_IDEM_MISMATCH:
        reply_error(r, 422, "idempotency_key_reused",
                    "This Idempotency-Key was used for another request", NULL);
        return;
    case DEC_FORBIDDEN:
        reply_error(r, 403, "forbidden", o->message ? o->message : "Not allowed", NULL);
        return;
    default:
        snprintf(msg, sizeof msg, "%s", o->message ? o->message : "The order is not valid");
        reply_error(r, 400, "invalid_order", msg, NULL);
        return;
    }
}

static void placed(cmd_call *c, h2o_req_t *req, void *ud)
{
    place_ctx *p = ud;
    api_req *r = api_req_wrap(req, p->app);
    const dec_out *o = cmd_out(c);
    if (cmd_err(c)) {
        reply_error(r, 503, "unavailable", "The order could not be saved; please try again",
                    NULL);
        return;
    }
    if (o->reason != DEC_OK) {
        refusal(r, o, cmd_command(c));
        return;
    }
    if (!o->repeat)
        met_order_created(p->app->metrics, o->total);
    char total[32], body[256];
    reply_money(o->total, true, total);
    int n = snprintf(body, sizeof body,
                     "{\"order_id\":%llu,\"total_amount\":%s,\"status\":\"pending\"%s%s%s}",
                     (unsigned long long)o->id, total, p->token[0] ? ",\"order_token\":\"" : "",
                     p->token, p->token[0] ? "\"" : "");
    reply_json(r, 201, body, (size_t)n);
}

/* Reads the order lines of the body into the command. */
static bool read_lines(val_ctx *v, json_t *items, cmd_call *c)
{
    size_t n = json_array_size(items);
    dec_line_in *lines = cmd_lines(c, n);
    if (!lines)
        return false;
    val_enter_key(v, "items");
    for (size_t i = 0; i < n; i++) {
        json_t *item;
        val_enter_index(v, i);
        if (val_object_here(v, json_array_get(items, i), &item)) {
            val_uuid(v, item, "watch_id", VAL_REQUIRED, lines[i].watch_id);
            val_int(v, item, "quantity", VAL_REQUIRED, 1, DEC_MAX_QTY, &lines[i].quantity);
            lines[i].has_price = val_money(v, item, "unit_price", VAL_REQUIRED,
                                           &lines[i].unit_price);
        }
        val_leave(v);
    }
    val_leave(v);
    dec_cmd *cmd = cmd_command(c);
    cmd->u.order.lines = lines;
    cmd->u.order.n_lines = (uint32_t)n;
    return true;
}

/* POST /api/v1/orders */
void orders_place(api_req *r)
{
    auth_who who;
    if (!auth_optional(r, &who))
        return;
    val_ctx v;
    val_init(&v);
    json_t *root = NULL, *items = NULL;
    cmd_call *c = NULL;
    if (val_parse(r->h->entity.base, r->h->entity.len, &root, &v)) {
        c = cmd_new(r->h, DEC_ORDER_PLACE);
        if (c && val_array(&v, root, "items", VAL_REQUIRED, 1, EV_MAX_LINES, &items))
            read_lines(&v, items, c);
        ev_str addr = {NULL, 0};
        val_str(&v, root, "shipping_address", VAL_OPTIONAL | VAL_MULTILINE | VAL_TRIM, 0, 2000,
                &addr);
        if (c)
            cmd_command(c)->u.order.shipping_address =
                addr.p ? cmd_keep(c, addr.p, addr.n) : cmd_keep(c, "", 0);
    }
    if (val_failed(&v) || !c) {
        char *body = val_error_json(&v);
        if (body)
            reply_json(r, 400, body, strlen(body));
        else
            reply_error(r, 500, "internal_error", "Out of memory", NULL);
        free(body);
        if (c)
            cmd_discard(c);
        json_decref(root);
        val_free(&v);
        return;
    }
    json_decref(root);
    val_free(&v);
    orders_envelope(r, c, &who);
    place_ctx *p = h2o_mem_alloc_pool(&r->h->pool, sizeof *p);
    p->app = r->app;
    p->token[0] = 0;
    if (!who.present || !who.customer_id) {
        char hash[65];
        guest_token(r, cmd_command(c), p->token);
        digest_sha256_hex(p->token, strlen(p->token), hash);
        cmd_command(c)->u.order.guest_token_hash = cmd_keep(c, hash, 64);
    }
    cmd_submit(r->app->bus, r->thread, c, true, placed, p);
}

/* ------------------------------------------------------------ GET */

/* Whether the sender may read order o (API.md "Who may read an order");
 * answers 401/404 itself when not. The order token given when the order was
 * placed (guest orders, the legacy checkout) opens it too. */
bool orders_may_read(api_req *r, const auth_who *who, const proj_cache_order *o)
{
    if (who->present && who->role >= AUTH_AGENT)
        return true;
    if (o->customer_id && who->present && who->customer_id == o->customer_id)
        return true;
    h2o_iovec_t t = req_header(r->h, "x-order-token");
    if (t.len && o->guest_token_hash.n == 64) {
        char hash[65];
        digest_sha256_hex(t.base, t.len, hash);
        if (CRYPTO_memcmp(hash, o->guest_token_hash.p, 64) == 0)
            return true;
    }
    if (!who->present && !t.len) {
        reply_error(r, 401, "unauthorized", "Authentication required", NULL);
        return false;
    }
    reply_error(r, 404, "not_found", "Order not found", NULL);
    return false;
}

/* GET /api/v1/orders/:id */
void orders_get(api_req *r)
{
    auth_who who;
    if (!auth_optional(r, &who))
        return;
    uint64_t id = order_id_of(r->params.v[0].p, r->params.v[0].n);
    ev_buf buf = {0}, out = {0};
    proj_cache_order o;
    int rc = id ? proj_cache_get_order(r->app->cache, id, &buf, &o) : PROJ_CACHE_ENOTFOUND;
    if (rc == PROJ_CACHE_ENOTFOUND)
        reply_error(r, 404, "not_found", "Order not found", NULL);
    else if (rc)
        reply_error(r, 503, "unavailable", "Orders cannot be read right now", NULL);
    else if (orders_may_read(r, &who, &o)) {
        if (proj_cache_order_render(&o, false, &out) == 0)
            reply_json(r, 200, (const char *)out.p, out.len);
        else
            reply_error(r, 500, "internal_error", "Out of memory", NULL);
    }
    ev_buf_free(&buf);
    ev_buf_free(&out);
}

typedef struct my_ctx {
    ev_buf *b;
    bool first;
} my_ctx;

static int add_mine(void *ud, const proj_cache_order *o)
{
    my_ctx *m = ud;
    if (!m->first && ev_buf_append(m->b, ",", 1))
        return 1;
    m->first = false;
    return proj_cache_order_render(o, true, m->b) ? 1 : 0;
}

/* GET /api/v1/orders/my */
void orders_mine(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_USER, &who))
        return;
    ev_buf b = {0};
    my_ctx m = {&b, true};
    int rc = ev_buf_append(&b, "[", 1) ||
             (who.customer_id &&
              proj_cache_customer_orders(r->app->cache, who.customer_id, add_mine, &m)) ||
             ev_buf_append(&b, "]", 1);
    if (rc)
        reply_error(r, 503, "unavailable", "Orders cannot be read right now", NULL);
    else
        reply_json(r, 200, (const char *)b.p, b.len);
    ev_buf_free(&b);
}
