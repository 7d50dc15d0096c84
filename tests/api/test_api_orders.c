/* test_api_orders.c - placing and reading orders over real HTTP, as the
 * single-page app and scripts do (API.md "Orders"): guest and customer
 * orders, read back at once, /orders/my with numeric prices, the refusals
 * (price changed, insufficient stock, unknown watch, validation), who may
 * read an order, idempotency keys, and concurrent orders for the last
 * unit. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_support.h"
#include "core/support.h"
#include "jwt.h"

/* Watches: 0 at 395.00 with 100 in stock; 1 at 120.50 with 1 in stock. */
static ta_store store;
static ta_server srv;
static char w0[37], w1[37];

static void process(ta_store *s, wr_req *r)
{
    wr_req *p = r;
    cr_assert_eq(wr_process(s->w, &p, 1), 0);
    cr_assert_eq(r->out.reason, DEC_OK, "%s", r->out.message ? r->out.message : "");
}

static void add_watch(ta_store *s, unsigned i, const char *name, int64_t price, int64_t stock)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull + i);
    r.cmd.causation = (ev_str){NULL, 0};
    ts_watch_id(i, r.cmd.u.watch.watch_id);
    r.cmd.u.watch.watch_name = ev_str_c(name);
    r.cmd.u.watch.brand = EV_STR("Longines");
    r.cmd.u.watch.price = price;
    r.cmd.u.watch.currency = EV_STR("USD");
    r.cmd.u.watch.set_stock = true;
    r.cmd.u.watch.stock = stock;
    process(s, &r);
}

/* Customers 1 and 2 (users) and 3 (an admin). */
static void add_customer(ta_store *s, const char *email, bool admin)
{
    ta_add_customer(s, email, "Test Customer", admin);
}

static void setup(void)
{
    ta_store_init(&store);
    add_watch(&store, 0, "Longines Spirit", 39500, 100);
    add_watch(&store, 1, "Longines Mini", 12050, 1);
    add_customer(&store, "one@example.com", false);
    add_customer(&store, "two@example.com", false);
    add_customer(&store, "boss@example.com", true);
    uint8_t id[16];
    ts_watch_id(0, id);
    ev_uuid_format(id, w0);
    ts_watch_id(1, id);
    ev_uuid_format(id, w1);
    ta_project(&store);
    ta_server_start(&srv, &store, NULL);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0, "the api stops cleanly on SIGTERM");
    ta_store_fini(&store);
}

TestSuite(api_orders, .init = setup, .fini = teardown, .timeout = 120);

/* "Authorization: Bearer <token for customer id>" (a static buffer). */
static const char *bearer(int64_t customer_id, const char *email)
{
    static char line[2][1024];
    static int k;
    int64_t now = (int64_t)time(NULL);
    json_t *c = json_pack("{s:I,s:s,s:I,s:I,s:s,s:s}", "customer_id", (json_int_t)customer_id,
                          "email", email, "iat", (json_int_t)now, "exp", (json_int_t)(now + 600),
                          "iss", "watchstore", "aud", "watchstore-api");
    char *tok = NULL;
    cr_assert_eq(jwt_sign_hs256(TA_JWT_KEY, 32, c, &tok), 0);
    json_decref(c);
    k ^= 1;
    snprintf(line[k], sizeof line[k], "Authorization: Bearer %s", tok);
    free(tok);
    return line[k];
}

static json_t *call(const char *method, const char *path, const char *body,
                    const char *const *headers, long want)
{
    return ta_call(&srv, method, path, body, headers, want);
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

Test(api_orders, a_guest_orders_and_reads_it_back_at_once)
{
    char body[512], path[64], tok[128];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":\"2\",\"unit_price\":\"395.00\"}],"
             "\"shipping_address\":\"Bahnhofstrasse 1, Zurich\",\"extra\":true}",
             w0);
    json_t *o = call("POST", "/api/v1/orders", body, NULL, 201);
    cr_assert(json_is_integer(json_object_get(o, "order_id")));
    cr_assert(json_is_number(json_object_get(o, "total_amount")), "total_amount is a number");
    cr_assert_eq(json_number_value(json_object_get(o, "total_amount")), 790.0);
    cr_assert_str_eq(str(o, "status"), "pending");
    cr_assert_not_null(str(o, "order_token"), "a guest gets an order token");
    snprintf(path, sizeof path, "/api/v1/orders/%lld",
             (long long)json_integer_value(json_object_get(o, "order_id")));
    snprintf(tok, sizeof tok, "X-Order-Token: %s", str(o, "order_token"));
    json_decref(o);

    const char *h[] = {tok, NULL};
    json_t *got = call("GET", path, NULL, h, 200);
    cr_assert_str_eq(str(got, "status"), "pending");
    cr_assert(json_is_null(json_object_get(got, "customer_id")));
    cr_assert_str_eq(str(got, "total_amount"), "790.00");
    json_t *item = json_array_get(json_object_get(got, "items"), 0);
    cr_assert_str_eq(str(item, "unit_price"), "395.00", "GET /orders/:id: money as strings");
    cr_assert_str_eq(str(item, "watch_name"), "Longines Spirit");
    cr_assert_eq(json_integer_value(json_object_get(item, "quantity")), 2);
    json_decref(got);

    json_decref(call("GET", path, NULL, NULL, 401));
    const char *wrong[] = {"X-Order-Token: nope", NULL};
    json_decref(call("GET", path, NULL, wrong, 404));
    const char *admin[] = {bearer(3, "boss@example.com"), NULL};
    json_decref(call("GET", path, NULL, admin, 200));
    const char *user[] = {bearer(1, "one@example.com"), NULL};
    json_decref(call("GET", path, NULL, user, 404));
    json_decref(call("GET", "/api/v1/orders/abc", NULL, admin, 404));
    json_decref(call("GET", "/api/v1/orders/999999", NULL, admin, 404));
}

Test(api_orders, a_customer_orders_and_sees_it_in_orders_my)
{
    const char *me[] = {bearer(1, "one@example.com"), NULL};
    char body[512];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":1,\"unit_price\":395}]}", w0);
    json_t *o = call("POST", "/api/v1/orders", body, me, 201);
    cr_assert_null(json_object_get(o, "order_token"), "no token for a customer's order");
    long long id = (long long)json_integer_value(json_object_get(o, "order_id"));
    json_decref(o);

    json_t *mine = call("GET", "/api/v1/orders/my", NULL, me, 200);
    cr_assert_eq(json_array_size(mine), 1);
    json_t *first = json_array_get(mine, 0);
    cr_assert_eq(json_integer_value(json_object_get(first, "order_id")), id);
    cr_assert_eq(json_integer_value(json_object_get(first, "customer_id")), 1);
    json_t *item = json_array_get(json_object_get(first, "items"), 0);
    cr_assert(json_is_number(json_object_get(item, "unit_price")), "/orders/my: numbers");
    cr_assert_eq(json_number_value(json_object_get(item, "subtotal")), 395.0);
    cr_assert_null(json_object_get(item, "watch_id"), "no watch_id in /orders/my items");
    json_decref(mine);

    const char *other[] = {bearer(2, "two@example.com"), NULL};
    json_t *theirs = call("GET", "/api/v1/orders/my", NULL, other, 200);
    cr_assert_eq(json_array_size(theirs), 0);
    json_decref(theirs);
    json_decref(call("GET", "/api/v1/orders/my", NULL, NULL, 401));
    const char *bad[] = {"Authorization: Bearer not.a.token", NULL};
    json_decref(call("GET", "/api/v1/watches", NULL, bad, 401));
    json_decref(call("POST", "/api/v1/orders", body, bad, 401));
    const char *ghost[] = {bearer(77, "ghost@example.com"), NULL};
    json_decref(call("GET", "/api/v1/orders/my", NULL, ghost, 401));
}

Test(api_orders, refusals_say_what_is_wrong)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":1,\"unit_price\":\"400.00\"}]}", w0);
    json_t *e = call("POST", "/api/v1/orders", body, NULL, 409);
    cr_assert_str_eq(str(e, "code"), "price_changed");
    cr_assert_str_eq(str(e, "current_price"), "395.00");
    cr_assert_not_null(strstr(str(e, "error"), "Longines Spirit"));
    json_decref(e);

    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":2,\"unit_price\":120.5}]}", w1);
    e = call("POST", "/api/v1/orders", body, NULL, 409);
    cr_assert_str_eq(str(e, "code"), "insufficient_stock");
    cr_assert_eq(json_integer_value(json_object_get(e, "available")), 1);
    json_decref(e);

    e = call("POST", "/api/v1/orders",
             "{\"items\":[{\"watch_id\":\"00000000-0000-4000-8000-000000000001\",\"quantity\":1,"
             "\"unit_price\":1}]}",
             NULL, 404);
    json_decref(e);

    e = call("POST", "/api/v1/orders", "{\"items\":[]}", NULL, 400);
    cr_assert_str_eq(str(e, "code"), "validation_failed");
    json_decref(e);
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":0,\"unit_price\":\"x\"}]}", w0);
    e = call("POST", "/api/v1/orders", body, NULL, 400);
    json_t *d = json_object_get(e, "details");
    cr_assert_eq(json_array_size(d), 2, "both fields named: %s", json_dumps(e, 0));
    json_t *p = json_object_get(json_array_get(d, 0), "path");
    cr_assert_str_eq(json_string_value(json_array_get(p, 0)), "items");
    cr_assert_eq(json_integer_value(json_array_get(p, 1)), 0);
    json_decref(e);
    json_decref(call("POST", "/api/v1/orders", "{not json", NULL, 400));

    /* Nothing of the above took stock. */
    char path[96];
    snprintf(path, sizeof path, "/api/v1/watches/%s", w1);
    json_t *w = call("GET", path, NULL, NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(w, "stock_quantity")), 1);
    json_decref(w);
}

Test(api_orders, an_idempotency_key_makes_one_order)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":3,\"unit_price\":\"395.00\"}]}", w0);
    const char *h[] = {"Idempotency-Key: order-key-1", NULL};
    json_t *a = call("POST", "/api/v1/orders", body, h, 201);
    json_t *b = call("POST", "/api/v1/orders", body, h, 201);
    cr_assert_eq(json_integer_value(json_object_get(a, "order_id")),
                 json_integer_value(json_object_get(b, "order_id")));
    cr_assert_str_eq(str(a, "order_token"), str(b, "order_token"), "the same token again");
    json_decref(a);
    json_decref(b);
    char path[96];
    snprintf(path, sizeof path, "/api/v1/watches/%s", w0);
    json_t *w = call("GET", path, NULL, NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(w, "stock_quantity")), 97, "stock taken once");
    json_decref(w);
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":1,\"unit_price\":\"395.00\"}]}", w0);
    json_decref(call("POST", "/api/v1/orders", body, h, 422));
}

typedef struct racer {
    long status;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char body[512];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":1,\"unit_price\":\"120.50\"}]}", w1);
    ta_resp resp;
    ta_request(&srv, "POST", "/api/v1/orders", body, NULL, &resp);
    r->status = resp.status;
    ta_resp_free(&resp);
    return NULL;
}

Test(api_orders, concurrent_orders_for_the_last_unit_one_wins)
{
    enum { N = 12 };
    pthread_t th[N];
    racer r[N];
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, race, &r[i]);
    int won = 0, lost = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        won += r[i].status == 201;
        lost += r[i].status == 409;
    }
    cr_assert_eq(won, 1, "exactly one order gets the last unit");
    cr_assert_eq(lost, N - 1);
}

Test(api_orders, the_legacy_checkout_and_its_read_route)
{
    char body[768], path[96], tok[128];
    snprintf(body, sizeof body,
             "{\"customer\":{\"email\":\"buyer@example.com\",\"full_name\":\"Bea Buyer\","
             "\"phone\":\"+41 44 000 00 00\",\"address\":\"Limmatquai 2\"},"
             "\"items\":[{\"watch_id\":\"%s\",\"quantity\":2}]}",
             w0);
    json_t *o = call("POST", "/api/v1/checkout", body, NULL, 201);
    cr_assert(json_is_true(json_object_get(o, "success")));
    cr_assert_str_eq(str(o, "message"), "Order created successfully");
    cr_assert(json_is_number(json_object_get(o, "total")));
    cr_assert_eq(json_number_value(json_object_get(o, "total")), 790.0);
    long long id = (long long)json_integer_value(json_object_get(o, "order_id"));
    char inv[32];
    snprintf(inv, sizeof inv, "-%05lld", id);
    cr_assert_not_null(strstr(str(o, "invoice_number"), inv), "%s", str(o, "invoice_number"));
    cr_assert_eq(strncmp(str(o, "invoice_number"), "INV-20", 6), 0);
    json_t *item = json_array_get(json_object_get(o, "items"), 0);
    cr_assert_str_eq(str(item, "watch_name"), "Longines Spirit");
    cr_assert(json_is_number(json_object_get(item, "subtotal")));
    snprintf(tok, sizeof tok, "X-Order-Token: %s", str(o, "order_token"));
    json_decref(o);

    snprintf(path, sizeof path, "/api/v1/checkout/orders/%lld", id);
    json_decref(call("GET", path, NULL, NULL, 401));
    const char *h[] = {tok, NULL};
    json_t *got = call("GET", path, NULL, h, 200);
    json_t *order = json_object_get(got, "order");
    cr_assert_str_eq(str(order, "email"), "buyer@example.com");
    cr_assert_str_eq(str(order, "full_name"), "Bea Buyer");
    cr_assert_str_eq(str(order, "phone"), "+41 44 000 00 00");
    cr_assert_str_eq(str(order, "total_amount"), "790.00");
    json_t *gi = json_array_get(json_object_get(got, "items"), 0);
    cr_assert_str_eq(str(gi, "brand"), "Longines");
    cr_assert_str_eq(str(gi, "unit_price"), "395.00");
    long long customer = (long long)json_integer_value(json_object_get(order, "customer_id"));
    json_decref(got);

    /* The same buyer again: the same customer, no second account. */
    o = call("POST", "/api/v1/checkout", body, NULL, 201);
    snprintf(path, sizeof path, "/api/v1/checkout/orders/%lld",
             (long long)json_integer_value(json_object_get(o, "order_id")));
    json_decref(o);
    const char *admin[] = {bearer(3, "boss@example.com"), NULL};
    got = call("GET", path, NULL, admin, 200);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(got, "order"), "customer_id")),
                 customer);
    json_decref(got);

    snprintf(body, sizeof body,
             "{\"customer\":{\"email\":\"buyer@example.com\",\"full_name\":\"Bea Buyer\"},"
             "\"items\":[{\"watch_id\":\"%s\",\"quantity\":5}]}",
             w1);
    json_t *e = call("POST", "/api/v1/checkout", body, NULL, 400);
    cr_assert_str_eq(str(e, "code"), "insufficient_stock");
    json_decref(e);
    e = call("POST", "/api/v1/checkout",
             "{\"customer\":{\"email\":\"buyer@example.com\",\"full_name\":\"Bea Buyer\"},"
             "\"items\":[{\"watch_id\":\"00000000-0000-4000-8000-00000000000a\",\"quantity\":1}]}",
             NULL, 404);
    cr_assert_str_eq(str(e, "error"), "Watch not found: 00000000-0000-4000-8000-00000000000a");
    json_decref(e);
    json_decref(call("POST", "/api/v1/checkout", "{\"items\":[]}", NULL, 400));
}

typedef struct find_corr {
    const char *corr;
    int found;
} find_corr;

static int match_corr(void *ud, const log_rec *rec)
{
    find_corr *f = ud;
    ev_dec *d = ev_dec_new();
    ev_event ev;
    if (ev_decode(d, rec->data, rec->len, rec->pos, &ev) == 0 &&
        ev.env.type == EV_T_ORDER_PLACED && ev.env.correlation.n == strlen(f->corr) &&
        memcmp(ev.env.correlation.p, f->corr, ev.env.correlation.n) == 0 &&
        ev.env.actor.n == 10 && memcmp(ev.env.actor.p, "customer:1", 10) == 0)
        f->found++;
    ev_dec_free(d);
    return 0;
}

Test(api_orders, the_correlation_id_reaches_the_events_and_metrics_count)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":1,\"unit_price\":\"395.00\"}]}", w0);
    const char *h[] = {"X-Correlation-Id: corr-order-77", bearer(1, "one@example.com"), NULL};
    json_decref(call("POST", "/api/v1/orders", body, h, 201));
    char err[256];
    log_t *log;
    cr_assert_eq(log_open(store.uri, LOG_READ, &log, err, sizeof err), 0, "%s", err);
    find_corr f = {"corr-order-77", 0};
    uint64_t next;
    cr_assert_geq(log_scan(log, 0, 0, match_corr, &f, &next), 0);
    log_close(log);
    cr_assert_eq(f.found, 1, "order.placed carries the request's correlation id and actor");

    ta_resp r;
    ta_request(&srv, "GET", "/metrics", NULL, NULL, &r);
    cr_assert_not_null(strstr(r.body, "orders_created_total 1\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "orders_revenue_dollars_total 395.00\n"), "%s", r.body);
    cr_assert_null(strstr(r.body, "writer_batches_total 0\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "projection_lag_events 0\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\nread_your_writes_total 1\n"),
                       "the order's 201 waited for the cache: %s", r.body);
    cr_assert_not_null(strstr(r.body, "\nread_your_writes_wait_seconds_total 0."), "%s",
                       r.body);
    ta_resp_free(&r);
}
