/* checkout.c - the old backend's guest checkout, kept for its scripts (API.md
 * "Orders": POST /api/v1/checkout, GET /api/v1/checkout/orders/:id).
 *
 * The same deciders as /orders and nothing written outside the log: the
 * buyer's e-mail is looked up (an existing account is used) or an account
 * without a password is registered for it, as the old backend kept a
 * customer row per e-mail; then the order is placed at the catalog's
 * prices for that customer. The reply carries an order token (an addition)
 * with which the buyer, who has no password, can read the order back.
 */
#include "checkout.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "auth.h"
#include "digest.h"
#include "b64.h"
#include "orders.h"
#include "reply.h"
#include "rnd.h"
#include "validate.h"

typedef struct checkout {
    api_app *app;
    int thread;
    char corr[80];
    char email[256], full_name[256];
    accounts_extra x;
    size_t n_lines;
    dec_line_in lines[EV_MAX_LINES];
    uint64_t customer_id;
    char token[48], token_hash[65];
} checkout;

static void unavailable(api_req *r)
{
    reply_error(r, 503, "unavailable", "The order could not be saved; please try again", NULL);
}

/* ------------------------------------------------------------ the reply */

/* {"success":true,"order_id",...,"items":[...]} from the order as placed. */
static void reply_created(api_req *r, const checkout *k, const dec_out *o)
{
    ev_buf b = {0};
    char head[256], money[32];
    time_t sec = (time_t)time(NULL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    reply_money(o->total, true, money);
    int n = snprintf(head, sizeof head,
                     "{\"success\":true,\"order_id\":%llu,\"invoice_number\":\"INV-%04d-%05llu\","
                     "\"total\":%s,\"order_token\":\"%s\",\"items\":[",
                     (unsigned long long)o->id, tm.tm_year + 1900, (unsigned long long)o->id,
                     money, k->token);
    int rc = ev_buf_append(&b, head, (size_t)n);
    for (size_t i = 0; i < k->n_lines && !rc; i++) {
        char id[37], line[256], price[32], sub[32];
        ev_uuid_format(k->lines[i].watch_id, id);
        ev_buf wb = {0};
        proj_cache_watch w;
        ev_str name = {"", 0};
        if (proj_cache_get_watch(r->app->cache, k->lines[i].watch_id, &wb, &w) == 0)
            name = w.watch_name;
        reply_money(k->lines[i].unit_price, false, price);
        reply_money(k->lines[i].unit_price * k->lines[i].quantity, true, sub);
        n = snprintf(line, sizeof line, "%s{\"watch_id\":\"%s\",\"watch_name\":", i ? "," : "", id);
        rc = ev_buf_append(&b, line, (size_t)n) || ev_format_json_str(name, &b);
        n = snprintf(line, sizeof line, ",\"quantity\":%lld,\"unit_price\":\"%s\",\"subtotal\":%s}",
                     (long long)k->lines[i].quantity, price, sub);
        rc = rc || ev_buf_append(&b, line, (size_t)n);
        ev_buf_free(&wb);
    }
    static const char tail[] = "],\"message\":\"Order created successfully\"}";
    rc = rc || ev_buf_append(&b, tail, sizeof tail - 1);
    if (rc)
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
    else
        reply_json(r, 201, (const char *)b.p, b.len);
    ev_buf_free(&b);
}

static void order_refused(api_req *r, const checkout *k, const dec_out *o)
{
    char msg[512], id[37] = "";
    if (o->index < k->n_lines)
        ev_uuid_format(k->lines[o->index].watch_id, id);
    switch (o->reason) {
    case DEC_NOT_FOUND:
        snprintf(msg, sizeof msg, "Watch not found: %s", id);
        reply_error(r, 404, "not_found", msg, NULL);
        return;
    case DEC_OUT_OF_STOCK:
        /* The old backend answered 400 here. */
        snprintf(msg, sizeof msg, "Insufficient stock for watch %s: %lld available", id,
                 (long long)o->detail);
        reply_error(r, 400, "insufficient_stock", msg, NULL);
        return;
    default:
        reply_error(r, 400, "invalid_order", o->message ? o->message : "The order is not valid",
                    NULL);
    }
}

static void placed(cmd_call *c, h2o_req_t *h, void *ud)
{
    checkout *k = ud;
    api_req *r = api_req_wrap(h, k->app);
    const dec_out *o = cmd_out(c);
    if (cmd_err(c))
        unavailable(r);
    else if (o->reason != DEC_OK)
        order_refused(r, k, o);
    else
        reply_created(r, k, o);
}

/* ------------------------------------------------------------ the steps */

static void place(h2o_req_t *h, checkout *k)
{
    cmd_call *c = cmd_new(h, DEC_ORDER_PLACE);
    dec_line_in *lines = c ? cmd_lines(c, k->n_lines) : NULL;
    if (!lines) {
        cmd_discard(c);
        unavailable(api_req_wrap(h, k->app));
        return;
    }
    memcpy(lines, k->lines, k->n_lines * sizeof *lines);
    dec_cmd *cmd = cmd_command(c);
    cmd->correlation = cmd_keep(c, k->corr, strlen(k->corr));
    char actor[48];
    snprintf(actor, sizeof actor, "checkout:%llu", (unsigned long long)k->customer_id);
    cmd->actor = cmd_keep(c, actor, strlen(actor));
    cmd->actor_customer = k->customer_id;
    cmd->u.order.lines = lines;
    cmd->u.order.n_lines = (uint32_t)k->n_lines;
    cmd->u.order.shipping_address =
        k->x.address.p ? cmd_keep(c, k->x.address.p, k->x.address.n) : cmd_keep(c, "", 0);
    cmd->u.order.guest_token_hash = cmd_keep(c, k->token_hash, 64);
    cmd_submit(k->app->bus, k->thread, c, true, placed, k);
}

static void registered(cmd_call *c, h2o_req_t *h, void *ud)
{
    checkout *k = ud;
    const dec_out *o = cmd_out(c);
    if (cmd_err(c) || (o->reason != DEC_OK && o->reason != DEC_EMAIL_TAKEN)) {
        if (cmd_err(c))
            unavailable(api_req_wrap(h, k->app));
        else
            reply_error(api_req_wrap(h, k->app), 400, "invalid_customer",
                        o->message ? o->message : "The customer is not valid", NULL);
        return;
    }
    if (o->reason == DEC_EMAIL_TAKEN) {
        /* Registered meanwhile by someone else: use that account. */
        ev_buf buf = {0};
        proj_cache_customer acct;
        int rc = proj_cache_customer_by_email(k->app->cache, ev_str_c(k->email), &buf, &acct);
        k->customer_id = rc == 0 ? acct.customer_id : 0;
        ev_buf_free(&buf);
        if (!k->customer_id) {
            unavailable(api_req_wrap(h, k->app));
            return;
        }
    } else {
        k->customer_id = o->id;
    }
    place(h, k);
}

static void register_buyer(h2o_req_t *h, checkout *k)
{
    cmd_call *c = cmd_new(h, DEC_CUSTOMER_REGISTER);
    if (!c) {
        unavailable(api_req_wrap(h, k->app));
        return;
    }
    dec_cmd *cmd = cmd_command(c);
    cmd->correlation = cmd_keep(c, k->corr, strlen(k->corr));
    cmd->actor = cmd_keep(c, "checkout", 8);
    accounts_reg_keep(c, k->email, k->full_name, &k->x);
    cmd_submit(k->app->bus, k->thread, c, true, registered, k);
}

/* Reads the body into k; false when it is not valid (v holds why). */
static bool read_body(api_req *r, val_ctx *v, json_t **root, checkout *k)
{
    json_t *cust = NULL, *items = NULL;
    ev_str email = {0}, name = {0}, phone = {0}, address = {0}, city = {0}, country = {0};
    if (!val_parse(r->h->entity.base, r->h->entity.len, root, v))
        return false;
    if (val_object(v, *root, "customer", VAL_REQUIRED, &cust)) {
        val_enter_key(v, "customer");
        val_email(v, cust, "email", VAL_REQUIRED | VAL_TRIM, &email);
        val_str(v, cust, "full_name", VAL_REQUIRED | VAL_TRIM, 2, 255, &name);
        val_str(v, cust, "phone", VAL_OPTIONAL | VAL_TRIM, 0, 50, &phone);
        val_str(v, cust, "address", VAL_OPTIONAL | VAL_TRIM | VAL_MULTILINE, 0, 1000, &address);
        val_str(v, cust, "city", VAL_OPTIONAL | VAL_TRIM, 0, 100, &city);
        val_str(v, cust, "country", VAL_OPTIONAL | VAL_TRIM, 0, 100, &country);
        val_leave(v);
    }
    if (val_array(v, *root, "items", VAL_REQUIRED, 1, EV_MAX_LINES, &items)) {
        val_enter_key(v, "items");
        k->n_lines = json_array_size(items);
        for (size_t i = 0; i < k->n_lines; i++) {
            json_t *item;
            val_enter_index(v, i);
            if (val_object_here(v, json_array_get(items, i), &item)) {
                val_uuid(v, item, "watch_id", VAL_REQUIRED, k->lines[i].watch_id);
                val_int(v, item, "quantity", VAL_REQUIRED, 1, DEC_MAX_QTY, &k->lines[i].quantity);
            }
            val_leave(v);
        }
        val_leave(v);
    }
    if (val_failed(v))
        return false;
    snprintf(k->email, sizeof k->email, "%.*s", (int)email.n, email.p);
    snprintf(k->full_name, sizeof k->full_name, "%.*s", (int)name.n, name.p);
    accounts_extra_set(&k->x, phone, address, city, country);
    return true;
}

/* The catalog's price for each line (the legacy body has none). */
static bool price_lines(api_req *r, checkout *k)
{
    for (size_t i = 0; i < k->n_lines; i++) {
        ev_buf buf = {0};
        proj_cache_watch w;
        int rc = proj_cache_get_watch(r->app->cache, k->lines[i].watch_id, &buf, &w);
        ev_buf_free(&buf);
        if (rc) {
            char id[37], msg[96];
            ev_uuid_format(k->lines[i].watch_id, id);
            snprintf(msg, sizeof msg, "Watch not found: %s", id);
            reply_error(r, 404, "not_found", msg, NULL);
            return false;
        }
        k->lines[i].unit_price = w.price;
        k->lines[i].has_price = true;
    }
    return true;
}

/* POST /api/v1/checkout */
void checkout_place(api_req *r)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    checkout *k = h2o_mem_alloc_pool(&r->h->pool, sizeof *k);
    memset(k, 0, sizeof *k);
    k->app = r->app;
    k->thread = r->thread;
    snprintf(k->corr, sizeof k->corr, "%.*s", (int)r->corr.len, r->corr.base);
    bool ok = read_body(r, &v, &root, k);
    if (!ok) {
        char *body = val_error_json(&v);
        if (body)
            reply_json(r, 400, body, strlen(body));
        else
            reply_error(r, 500, "internal_error", "Out of memory", NULL);
        free(body);
    }
    json_decref(root);
    val_free(&v);
    if (!ok || !price_lines(r, k))
        return;
    uint8_t t[32];
    rnd_bytes(t, sizeof t);
    b64_encode(B64_URL, t, 32, k->token, sizeof k->token);
    digest_sha256_hex(k->token, strlen(k->token), k->token_hash);
    ev_buf buf = {0};
    proj_cache_customer acct;
    int rc = proj_cache_customer_by_email(r->app->cache, ev_str_c(k->email), &buf, &acct);
    k->customer_id = rc == 0 ? acct.customer_id : 0;
    ev_buf_free(&buf);
    if (rc != 0 && rc != PROJ_CACHE_ENOTFOUND)
        unavailable(r);
    else if (k->customer_id)
        place(r->h, k);
    else
        register_buyer(r->h, k);
}

/* ------------------------------------------------------------ GET */

/* GET /api/v1/checkout/orders/:id: the order with the buyer's contact and
 * items with brand; the same access rule as GET /orders/:id, the checkout's
 * order token included. */
void checkout_get(api_req *r)
{
    auth_who who;
    if (!auth_optional(r, &who))
        return;
    const char *p = r->params.v[0].p;
    size_t n = r->params.v[0].n;
    uint64_t id = 0;
    for (size_t i = 0; i < n && n <= 15; i++)
        id = p[i] >= '0' && p[i] <= '9' ? id * 10 + (uint64_t)(p[i] - '0') : 0;
    if (n > 15)
        id = 0;
    ev_buf buf = {0}, cbuf = {0}, out = {0};
    proj_cache_order o;
    int rc = id ? proj_cache_get_order(r->app->cache, id, &buf, &o) : PROJ_CACHE_ENOTFOUND;
    if (rc) {
        if (rc == PROJ_CACHE_ENOTFOUND)
            reply_error(r, 404, "not_found", "Order not found", NULL);
        else
            reply_error(r, 503, "unavailable", "Orders cannot be read right now", NULL);
        ev_buf_free(&buf);
        return;
    }
    if (!orders_may_read(r, &who, &o)) {
        ev_buf_free(&buf);
        return;
    }
    proj_cache_customer acct;
    bool has_acct = o.customer_id &&
                    proj_cache_get_customer(r->app->cache, o.customer_id, &cbuf, &acct) == 0;
    ev_str none = {NULL, 0};
    int e = ev_buf_append(&out, "{\"order\":", 9) ||
            ev_buf_append(&out, o.json.p, o.json.n - 1) ||
            ev_buf_append(&out, ",\"email\":", 9) ||
            ev_format_json_str(has_acct ? acct.email : none, &out) ||
            ev_buf_append(&out, ",\"full_name\":", 13) ||
            ev_format_json_str(has_acct ? acct.full_name : none, &out) ||
            ev_buf_append(&out, ",\"phone\":", 9) ||
            ev_format_json_str(has_acct ? acct.phone : none, &out) ||
            ev_buf_append(&out, "},\"items\":[", 11);
    for (uint32_t i = 0; i < o.n_lines && !e; i++) {
        proj_cache_line l;
        if (proj_cache_order_line(&o, i, &l) != 0)
            break;
        char wid[37], head[160], price[32], sub[32];
        ev_uuid_format(l.watch_id, wid);
        reply_money(l.unit_price, false, price);
        reply_money(l.subtotal, false, sub);
        int k = snprintf(head, sizeof head,
                         "%s{\"item_id\":%llu,\"order_id\":%llu,\"watch_id\":\"%s\",\"quantity\":%lld,"
                         "\"unit_price\":\"%s\",\"subtotal\":\"%s\",\"watch_name\":",
                         i ? "," : "", (unsigned long long)l.item_id,
                         (unsigned long long)o.order_id, wid, (long long)l.quantity, price, sub);
        e = ev_buf_append(&out, head, (size_t)k) || ev_format_json_str(l.watch_name, &out) ||
            ev_buf_append(&out, ",\"image_url\":", 13) || ev_format_json_str(l.image_url, &out) ||
            ev_buf_append(&out, ",\"brand\":", 9) || ev_format_json_str(l.brand, &out) ||
            ev_buf_append(&out, "}", 1);
    }
    e = e || ev_buf_append(&out, "]}", 2);
    if (e)
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
    else
        reply_json(r, 200, (const char *)out.p, out.len);
    ev_buf_free(&buf);
    ev_buf_free(&cbuf);
    ev_buf_free(&out);
}
