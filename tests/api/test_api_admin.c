/* test_api_admin.c - the admin routes over real HTTP (API.md "Admin"): the
 * role matrix of every route (anonymous 401, user 403, agent reads only,
 * admin everything; the account's current role, not the token's claim),
 * the shapes of every answer with their JSON types, order status moves
 * (allowed, repeated without a new event, refused naming the status),
 * stock set through both PUTs as the same event, the order list paged and
 * streamed (several thousand orders, complete and valid JSON), and the
 * stats as strings. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "core/log.h"
#include "core/support.h"
#include "jwt.h"

/* Customers: 1 a user, 2 an admin, 3 an agent, 4 an admin whose role was
 * taken back. */
enum { USER = 1, ADMIN = 2, AGENT = 3, EX_ADMIN = 4 };

static ta_store store;
static ta_server srv;
static char w0[37], w1[37], w2[37];
static uint64_t clock_us = 1764057600000000ull;

/* ------------------------------------------------------------ the store */

static void process(wr_req *r)
{
    wr_req *p = r;
    r->cmd.now_us = clock_us += 1000;
    r->cmd.causation = (ev_str){NULL, 0};
    cr_assert_eq(wr_process(store.w, &p, 1), 0);
    cr_assert_eq(r->out.reason, DEC_OK, "%s", r->out.message ? r->out.message : "");
}

static void add_watch(unsigned i, const char *name, const char *brand, int64_t price,
                      int64_t stock, const char *category)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_WATCH_ADD, 0);
    ts_watch_id(i, r.cmd.u.watch.watch_id);
    r.cmd.u.watch.watch_name = ev_str_c(name);
    r.cmd.u.watch.brand = ev_str_c(brand);
    r.cmd.u.watch.price = price;
    r.cmd.u.watch.currency = EV_STR("USD");
    r.cmd.u.watch.category = category ? ev_str_c(category) : (ev_str){NULL, 0};
    r.cmd.u.watch.set_stock = true;
    r.cmd.u.watch.stock = stock;
    process(&r);
}

static void set_role(uint64_t id, int role)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_ROLE_SET, 0);
    r.cmd.u.role.customer_id = id;
    r.cmd.u.role.role = (uint8_t)role;
    process(&r);
}

static void add_customer(const char *email, const char *name, int role)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_CUSTOMER_REGISTER, 0);
    r.cmd.u.reg.email = ev_str_c(email);
    r.cmd.u.reg.full_name = ev_str_c(name);
    process(&r);
    if (role != EV_role_USER)
        set_role(r.out.id, role);
}

/* An order of qty of watch i by customer (0: a guest) into r (not
 * processed); `line` must outlive the processing. */
static void order_cmd(wr_req *r, dec_line_in *line, uint64_t customer, unsigned i, int64_t qty)
{
    memset(r, 0, sizeof *r);
    memset(line, 0, sizeof *line);
    r->cmd = ts_cmd(DEC_ORDER_PLACE, 0);
    if (customer) {
        r->cmd.actor_system = false;
        r->cmd.actor_customer = customer;
        r->cmd.actor = EV_STR("customer");
    }
    ts_watch_id(i, line->watch_id);
    line->quantity = qty;
    r->cmd.u.order.lines = line;
    r->cmd.u.order.n_lines = 1;
    r->cmd.u.order.shipping_address = EV_STR("Bahnhofstrasse 1, Zurich");
}

static void place(uint64_t customer, unsigned i, int64_t qty)
{
    static wr_req r;
    static dec_line_in line;
    order_cmd(&r, &line, customer, i, qty);
    process(&r);
}

static void move(uint64_t order, int status)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(status == EV_order_status_CANCELLED ? DEC_ORDER_CANCEL : DEC_ORDER_SET_STATUS,
                   0);
    r.cmd.u.status.order_id = order;
    r.cmd.u.status.status = (uint8_t)status;
    process(&r);
}

static void people(void)
{
    add_customer("one@example.com", "Una User", EV_role_USER);
    add_customer("boss@example.com", "Bea Boss", EV_role_ADMIN);
    add_customer("agent@example.com", "Al Agent", EV_role_AGENT);
    add_customer("ex@example.com", "Ex Admin", EV_role_ADMIN);
    set_role(EX_ADMIN, EV_role_USER);
}

static void names(void)
{
    uint8_t id[16];
    ts_watch_id(0, id);
    ev_uuid_format(id, w0);
    ts_watch_id(1, id);
    ev_uuid_format(id, w1);
    ts_watch_id(2, id);
    ev_uuid_format(id, w2);
}

/* Three watches; orders 1 (customer 1, pending), 2 (customer 1,
 * processing), 3 (a guest, pending), 4 (customer 1, cancelled). */
static void setup(void)
{
    ta_store_init(&store);
    add_watch(0, "Alpha Diver", "Longines", 39500, 100, "diver");
    add_watch(1, "Beta Chrono", "Omega", 120050, 2, "chronograph");
    add_watch(2, "Gamma Classic", "Tissot", 25000, 10, NULL);
    people();
    place(USER, 0, 1);
    place(USER, 2, 2);
    move(2, EV_order_status_PROCESSING);
    place(0, 1, 1);
    place(USER, 2, 1);
    move(4, EV_order_status_CANCELLED);
    names();
    ta_project(&store);
    ta_server_start(&srv, &store, NULL);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0, "the api stops cleanly on SIGTERM");
    ta_store_fini(&store);
}

TestSuite(api_admin, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------ HTTP */

static const char *const EMAILS[] = {"", "one@example.com", "boss@example.com",
                                     "agent@example.com", "ex@example.com"};

/* "Authorization: Bearer <token>" for customer id with a `roles` claim of
 * `role` (NULL: no roles claim, as the old tokens). Four rotating static
 * buffers. */
static const char *bearer(int id, const char *role)
{
    static char line[4][1024];
    static int k;
    int64_t now = (int64_t)time(NULL);
    json_t *c = json_pack("{s:i,s:s,s:I,s:I,s:s,s:s}", "customer_id", id, "email", EMAILS[id],
                          "iat", (json_int_t)now, "exp", (json_int_t)(now + 600), "iss",
                          "watchstore", "aud", "watchstore-api");
    if (role)
        json_object_set_new(c, "roles", json_pack("[s]", role));
    char *tok = NULL;
    cr_assert_eq(jwt_sign_hs256(TA_JWT_KEY, 32, c, &tok), 0);
    json_decref(c);
    k = (k + 1) % 4;
    snprintf(line[k], sizeof line[k], "Authorization: Bearer %s", tok);
    free(tok);
    return line[k];
}

/* The request as customer `who` (0: anonymous) with status `want`; the
 * parsed body (the caller json_decref's it). */
static json_t *call_as(int who, const char *method, const char *path, const char *body,
                       long want)
{
    const char *h[] = {who ? bearer(who, NULL) : NULL, NULL};
    ta_resp r;
    ta_request(&srv, method, path, body, h, &r);
    cr_assert_eq(r.status, want, "%s %s as %d: %ld %s", method, path, who, r.status, r.body);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    cr_assert_not_null(j, "%s %s: not JSON (%s): %.200s", method, path, e.text, r.body);
    ta_resp_free(&r);
    return j;
}

static json_t *admin(const char *method, const char *path, const char *body, long want)
{
    return call_as(ADMIN, method, path, body, want);
}

static json_t *get(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert_not_null(v, "member %s is there: %s", k, json_dumps(o, JSON_COMPACT));
    return v;
}

static const char *str(json_t *o, const char *k) { return json_string_value(get(o, k)); }
static json_int_t num(json_t *o, const char *k) { return json_integer_value(get(o, k)); }

static void assert_error(json_t *e, const char *code)
{
    cr_assert(json_is_string(json_object_get(e, "error")));
    cr_assert_str_eq(str(e, "code"), code);
}

/* ------------------------------------------------------------ roles */

typedef struct route {
    const char *method;
    char path[128];
    const char *body;
    bool change;
    long ok;
} route;

static size_t routes(route *r)
{
    size_t n = 0;
    r[n++] = (route){"GET", "/api/v1/admin/orders", NULL, false, 200};
    r[n++] = (route){"GET", "/api/v1/admin/orders?page=1&limit=2", NULL, false, 200};
    r[n++] = (route){"PUT", "/api/v1/admin/orders/1/status", "{\"status\":\"pending\"}", true, 200};
    r[n++] = (route){"GET", "/api/v1/admin/watches", NULL, false, 200};
    r[n++] = (route){"POST", "/api/v1/admin/watches",
                     "{\"brand\":\"Nomos\",\"watch_name\":\"Tangente\",\"price\":1500}", true, 201};
    r[n] = (route){"PUT", "", "{\"price\":\"395.00\"}", true, 200};
    snprintf(r[n++].path, sizeof r->path, "/api/v1/admin/watches/%s", w0);
    r[n] = (route){"PUT", "", "{\"stock_quantity\":99}", true, 200};
    snprintf(r[n++].path, sizeof r->path, "/api/v1/admin/watches/%s/stock", w0);
    r[n++] = (route){"GET", "/api/v1/admin/stats", NULL, false, 200};
    return n;
}

static void expect(const route *rt, const char *auth, long want, const char *who)
{
    const char *h[] = {auth, NULL};
    ta_resp r;
    ta_request(&srv, rt->method, rt->path, rt->body, h, &r);
    cr_assert_eq(r.status, want, "%s %s as %s: %ld %s", rt->method, rt->path, who, r.status,
                 r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j, "JSON: %s", r.body);
    if (want == 401)
        assert_error(j, "unauthorized");
    if (want == 403)
        assert_error(j, "forbidden");
    json_decref(j);
    ta_resp_free(&r);
}

Test(api_admin, every_route_has_the_role_matrix)
{
    route rt[16];
    size_t n = routes(rt);
    cr_assert_eq(n, 8, "every admin route (and the paged list)");
    for (size_t i = 0; i < n; i++) {
        expect(&rt[i], NULL, 401, "anonymous");
        expect(&rt[i], "Authorization: Bearer not.a.token", 401, "a bad token");
        expect(&rt[i], bearer(USER, NULL), 403, "a user");
        expect(&rt[i], bearer(USER, "admin"), 403, "a user whose token claims admin");
        expect(&rt[i], bearer(AGENT, "agent"), rt[i].change ? 403 : 200, "an agent");
        expect(&rt[i], bearer(EX_ADMIN, "admin"), 403, "an admin whose role was taken back");
        expect(&rt[i], bearer(ADMIN, NULL), rt[i].ok, "an admin, old token without roles");
        expect(&rt[i], bearer(ADMIN, "user"), rt[i].ok, "an admin whose token says user");
    }
}

/* ------------------------------------------------------------ orders */

static void assert_order_types(json_t *o)
{
    cr_assert(json_is_integer(get(o, "order_id")));
    cr_assert(json_is_integer(get(o, "customer_id")) || json_is_null(get(o, "customer_id")));
    cr_assert(json_is_string(get(o, "order_date")));
    cr_assert(json_is_string(get(o, "total_amount")), "the order's own total stays a string");
    cr_assert(json_is_string(get(o, "status")));
    cr_assert(json_is_string(get(o, "shipping_address")));
    get(o, "payment_intent_id");
    get(o, "invoice_url");
    cr_assert(json_is_array(get(o, "items")));
}

/* An admin list order: the order, its customer, /orders/my items. */
static void assert_admin_order(json_t *o)
{
    assert_order_types(o);
    bool guest = json_is_null(get(o, "customer_id"));
    cr_assert(guest ? json_is_null(get(o, "full_name")) : json_is_string(get(o, "full_name")));
    cr_assert(guest ? json_is_null(get(o, "email")) : json_is_string(get(o, "email")));
    size_t i;
    json_t *it;
    json_array_foreach(get(o, "items"), i, it) {
        cr_assert(json_is_string(get(it, "watch_name")));
        cr_assert(json_is_integer(get(it, "quantity")));
        cr_assert(json_is_number(get(it, "unit_price")), "money as numbers");
        cr_assert(json_is_number(get(it, "subtotal")));
        cr_assert_null(json_object_get(it, "watch_id"), "the /orders/my item shape");
    }
}

Test(api_admin, the_order_list_has_every_order_with_its_customer)
{
    json_t *all = admin("GET", "/api/v1/admin/orders", NULL, 200);
    cr_assert(json_is_array(all));
    cr_assert_eq(json_array_size(all), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *o = json_array_get(all, i);
        assert_admin_order(o);
        cr_assert_eq(num(o, "order_id"), (json_int_t)(4 - i), "newest first");
    }
    json_t *guest = json_array_get(all, 1);
    cr_assert(json_is_null(get(guest, "email")));
    json_t *mine = json_array_get(all, 3);
    cr_assert_str_eq(str(mine, "full_name"), "Una User");
    cr_assert_str_eq(str(mine, "email"), "one@example.com");
    cr_assert_str_eq(str(mine, "total_amount"), "395.00");
    json_t *item = json_array_get(get(mine, "items"), 0);
    cr_assert_str_eq(str(item, "watch_name"), "Alpha Diver");
    cr_assert_eq(json_number_value(get(item, "unit_price")), 395.0);
    cr_assert_str_eq(str(json_array_get(all, 0), "status"), "cancelled");
    json_decref(all);

    /* The agent reads it too. */
    json_decref(call_as(AGENT, "GET", "/api/v1/admin/orders", NULL, 200));
}

static json_t *paged(const char *query, json_int_t total, json_int_t page, json_int_t pages,
                     size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/admin/orders%s", query);
    json_t *p = admin("GET", path, NULL, 200);
    cr_assert(json_is_object(p), "%s: the paginated wrapper", query);
    cr_assert(json_is_integer(get(p, "total")) && json_is_integer(get(p, "page")) &&
              json_is_integer(get(p, "pages")), "integers");
    cr_assert_eq(num(p, "total"), total, "%s: total", query);
    cr_assert_eq(num(p, "page"), page, "%s: page", query);
    cr_assert_eq(num(p, "pages"), pages, "%s: pages", query);
    cr_assert_eq(json_array_size(get(p, "orders")), n, "%s: orders", query);
    return p;
}

Test(api_admin, the_order_list_pages_and_filters)
{
    json_t *p = paged("?page=1&limit=3", 4, 1, 2, 3);
    assert_admin_order(json_array_get(get(p, "orders"), 0));
    json_decref(p);
    p = paged("?page=2&limit=3", 4, 2, 2, 1);
    cr_assert_eq(num(json_array_get(get(p, "orders"), 0), "order_id"), 1);
    json_decref(p);
    json_decref(paged("?page=1", 4, 1, 1, 4));
    json_decref(paged("?limit=500", 4, 1, 1, 4));
    json_decref(paged("?limit=0&page=-3", 4, 1, 4, 1));
    json_decref(paged("?limit=abc&page=x", 4, 1, 1, 4));
    json_decref(paged("?page=9&limit=2", 4, 9, 2, 0));
    p = paged("?status=pending&page=1&limit=10", 2, 1, 1, 2);
    cr_assert_eq(num(json_array_get(get(p, "orders"), 0), "order_id"), 3);
    cr_assert_eq(num(json_array_get(get(p, "orders"), 1), "order_id"), 1);
    json_decref(p);
    json_decref(paged("?status=PROCESSING&limit=10", 1, 1, 1, 1));
    json_decref(paged("?status=lost&page=1", 0, 1, 0, 0));

    json_t *a = admin("GET", "/api/v1/admin/orders?status=pending", NULL, 200);
    cr_assert(json_is_array(a));
    cr_assert_eq(json_array_size(a), 2);
    json_decref(a);
    a = admin("GET", "/api/v1/admin/orders?status=delivered", NULL, 200);
    cr_assert(json_is_array(a));
    cr_assert_eq(json_array_size(a), 0, "a known status without orders");
    json_decref(a);
    a = admin("GET", "/api/v1/admin/orders?status=lost", NULL, 200);
    cr_assert(json_is_array(a));
    cr_assert_eq(json_array_size(a), 0, "an unknown status matches nothing");
    json_decref(a);
}

/* ------------------------------------------------------------ status */

static uint64_t log_end_now(void)
{
    log_t *l;
    char err[256];
    uint64_t end = 0;
    cr_assert_eq(log_open(store.uri, LOG_READ, &l, err, sizeof err), 0, "%s", err);
    cr_assert_eq(log_end(l, &end), 0);
    log_close(l);
    return end;
}

static json_t *set_status(const char *order, const char *status, long want)
{
    char path[96], body[96];
    snprintf(path, sizeof path, "/api/v1/admin/orders/%s/status", order);
    snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    return admin("PUT", path, body, want);
}

Test(api_admin, order_status_moves_follow_the_table)
{
    json_t *o = set_status("1", "processing", 200);
    assert_order_types(o);
    cr_assert_str_eq(str(o, "status"), "processing");
    cr_assert_eq(num(o, "order_id"), 1);
    json_t *item = json_array_get(get(o, "items"), 0);
    cr_assert_str_eq(str(item, "unit_price"), "395.00", "items as GET /orders/:id");
    cr_assert_str_eq(str(item, "watch_id"), w0);
    json_decref(o);

    uint64_t before = log_end_now();
    o = set_status("1", "processing", 200);
    cr_assert_str_eq(str(o, "status"), "processing");
    json_decref(o);
    cr_assert_eq(log_end_now(), before, "the same status again appends nothing");

    o = set_status("1", "pending", 409);
    assert_error(o, "invalid_status_transition");
    cr_assert_str_eq(str(o, "current_status"), "processing");
    cr_assert_not_null(strstr(str(o, "error"), "processing"), "names the status");
    json_decref(o);

    json_decref(set_status("1", "Shipped", 200));
    json_decref(set_status("1", "delivered", 200));
    o = set_status("1", "cancelled", 409);
    cr_assert_str_eq(str(o, "current_status"), "delivered");
    json_decref(o);

    /* Cancelling gives the stock back. */
    char wpath[96];
    snprintf(wpath, sizeof wpath, "/api/v1/watches/%s", w1);
    json_t *w = admin("GET", wpath, NULL, 200);
    cr_assert_eq(num(w, "stock_quantity"), 1);
    json_decref(w);
    o = set_status("3", "cancelled", 200);
    cr_assert_str_eq(str(o, "status"), "cancelled");
    json_decref(o);
    w = admin("GET", wpath, NULL, 200);
    cr_assert_eq(num(w, "stock_quantity"), 2);
    json_decref(w);

    json_decref(set_status("999", "shipped", 404));
    json_decref(set_status("abc", "shipped", 404));
    json_decref(set_status("0", "shipped", 404));
    json_decref(set_status("-1", "shipped", 404));
    o = set_status("2", "lost", 400);
    assert_error(o, "validation_failed");
    json_t *path = get(json_array_get(get(o, "details"), 0), "path");
    cr_assert_str_eq(json_string_value(json_array_get(path, 0)), "status");
    json_decref(o);
    json_decref(admin("PUT", "/api/v1/admin/orders/2/status", "{}", 400));
    json_decref(admin("PUT", "/api/v1/admin/orders/2/status", "not json", 400));
}

/* ------------------------------------------------------------ watches */

static void assert_watch_types(json_t *w)
{
    cr_assert(json_is_string(get(w, "watch_id")));
    cr_assert(json_is_string(get(w, "watch_name")));
    cr_assert(json_is_string(get(w, "price")), "price: a decimal string");
    cr_assert(json_is_integer(get(w, "stock_quantity")));
    cr_assert(json_is_string(get(w, "created_at")));
    cr_assert(json_is_string(get(w, "updated_at")));
    const char *opt[] = {"brand", "model_code", "description", "image_url", "category"};
    for (size_t i = 0; i < 5; i++)
        cr_assert(json_is_string(get(w, opt[i])) || json_is_null(get(w, opt[i])), "%s", opt[i]);
}

static json_t *watch_page(const char *query, json_int_t total, json_int_t page,
                          json_int_t pages, size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/admin/watches%s", query);
    json_t *p = admin("GET", path, NULL, 200);
    cr_assert(json_is_integer(get(p, "total")) && json_is_integer(get(p, "page")) &&
              json_is_integer(get(p, "pages")));
    cr_assert_eq(num(p, "total"), total, "%s: total", query);
    cr_assert_eq(num(p, "page"), page, "%s: page", query);
    cr_assert_eq(num(p, "pages"), pages, "%s: pages", query);
    cr_assert_eq(json_array_size(get(p, "watches")), n, "%s: watches", query);
    return p;
}

Test(api_admin, the_watch_list_pages_by_name)
{
    json_t *p = watch_page("", 3, 1, 1, 3);
    const char *order[] = {"Alpha Diver", "Beta Chrono", "Gamma Classic"};
    for (size_t i = 0; i < 3; i++) {
        json_t *w = json_array_get(get(p, "watches"), i);
        assert_watch_types(w);
        cr_assert_str_eq(str(w, "watch_name"), order[i], "by name");
    }
    json_decref(p);
    p = watch_page("?page=2&limit=2", 3, 2, 2, 1);
    cr_assert_str_eq(str(json_array_get(get(p, "watches"), 0), "watch_name"), "Gamma Classic");
    json_decref(p);
    json_decref(watch_page("?limit=0", 3, 1, 3, 1));
    json_decref(watch_page("?limit=9999&page=0", 3, 1, 1, 3));
    json_decref(watch_page("?search=CHRONO", 1, 1, 1, 1));
    json_decref(watch_page("?brand=Tissot", 1, 1, 1, 1));
    json_decref(watch_page("?brand=Nobody", 0, 1, 0, 0));
    json_decref(watch_page("?search=%27%3B%20drop%20table", 0, 1, 0, 0));
}

/* The watch at /api/v1/watches/:id, as text. */
static char *catalog_text(const char *id)
{
    char path[96];
    snprintf(path, sizeof path, "/api/v1/watches/%s", id);
    ta_resp r;
    ta_request(&srv, "GET", path, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    char *s = strdup(r.body);
    ta_resp_free(&r);
    return s;
}

Test(api_admin, adding_a_watch_answers_the_catalog_json)
{
    const char *h[] = {bearer(ADMIN, "admin"), NULL};
    ta_resp r;
    ta_request(&srv, "POST", "/api/v1/admin/watches",
               "{\"brand\":\" Nomos \",\"watch_name\":\"Tangente\",\"price\":\"1234.50\","
               "\"model_code\":\"\",\"stock_quantity\":\"4\",\"image_url\":\"\","
               "\"description\":\"Hand-wound\\nthin\",\"category\":\"Classic\",\"extra\":1}",
               h, &r);
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *w = json_loads(r.body, 0, NULL);
    cr_assert_not_null(w);
    assert_watch_types(w);
    const char *id = str(w, "watch_id");
    cr_assert_eq(strlen(id), 36);
    cr_assert_eq(id[14], '4', "a UUIDv4: %s", id);
    cr_assert_str_eq(str(w, "brand"), "Nomos");
    cr_assert_str_eq(str(w, "price"), "1234.50");
    cr_assert_eq(num(w, "stock_quantity"), 4);
    cr_assert(json_is_null(get(w, "model_code")), "\"\" stores null");
    cr_assert(json_is_null(get(w, "image_url")));
    cr_assert_str_eq(str(w, "description"), "Hand-wound\nthin");
    cr_assert_str_eq(str(w, "category"), "classic");
    char *cat = catalog_text(id);
    cr_assert_str_eq(r.body, cat, "exactly the catalog's JSON");
    free(cat);
    json_decref(w);
    ta_resp_free(&r);

    w = admin("POST", "/api/v1/admin/watches",
              "{\"brand\":\"Sinn\",\"watch_name\":\"556\",\"price\":99,\"category\":null,"
              "\"image_url\":\"https://img.example.com/556.jpg\"}",
              201);
    cr_assert_eq(num(w, "stock_quantity"), 0, "stock defaults to 0");
    cr_assert(json_is_null(get(w, "category")), "no category: null");
    cr_assert(json_is_null(get(w, "description")));
    cr_assert_str_eq(str(w, "price"), "99.00");
    cr_assert_str_eq(str(w, "image_url"), "https://img.example.com/556.jpg");
    json_decref(w);
    json_decref(watch_page("", 5, 1, 1, 5));
}

Test(api_admin, adding_a_watch_validates_every_field)
{
    json_t *e = admin("POST", "/api/v1/admin/watches",
                      "{\"brand\":\"Sinn\",\"price\":0,\"category\":\"pocket\","
                      "\"image_url\":\"not a url\",\"stock_quantity\":-1}",
                      400);
    assert_error(e, "validation_failed");
    json_t *d = get(e, "details");
    cr_assert_eq(json_array_size(d), 5, "every failing field: %s", json_dumps(e, 0));
    const char *want[] = {"watch_name", "image_url", "category", "price", "stock_quantity"};
    for (size_t i = 0; i < 5; i++) {
        bool found = false;
        for (size_t k = 0; k < json_array_size(d); k++) {
            json_t *p = get(json_array_get(d, k), "path");
            found |= !strcmp(json_string_value(json_array_get(p, 0)), want[i]);
        }
        cr_assert(found, "%s is named", want[i]);
    }
    json_decref(e);
    json_decref(admin("POST", "/api/v1/admin/watches", "[1]", 400));
    json_decref(watch_page("", 3, 1, 1, 3));
}

Test(api_admin, an_idempotency_key_adds_one_watch)
{
    const char *h[] = {bearer(ADMIN, NULL), "Idempotency-Key: watch-key-1", NULL};
    const char *body = "{\"brand\":\"Nomos\",\"watch_name\":\"Club\",\"price\":900}";
    ta_resp a, b;
    ta_request(&srv, "POST", "/api/v1/admin/watches", body, h, &a);
    ta_request(&srv, "POST", "/api/v1/admin/watches", body, h, &b);
    cr_assert_eq(a.status, 201, "%s", a.body);
    cr_assert_eq(b.status, 201, "%s", b.body);
    cr_assert_str_eq(a.body, b.body, "the same watch again");
    ta_resp_free(&a);
    ta_resp_free(&b);
    json_decref(watch_page("", 4, 1, 1, 4));
    ta_request(&srv, "POST", "/api/v1/admin/watches",
               "{\"brand\":\"Nomos\",\"watch_name\":\"Other\",\"price\":900}", h, &a);
    cr_assert_eq(a.status, 422, "%s", a.body);
    ta_resp_free(&a);
}

Test(api_admin, changing_a_watch_sets_what_is_given)
{
    char path[96];
    snprintf(path, sizeof path, "/api/v1/admin/watches/%s", w2);
    json_t *w = admin("PUT", path,
                      "{\"watch_name\":\"Gamma Classic II\",\"brand\":\"\",\"price\":\"450.00\","
                      "\"stock_quantity\":\"7\",\"model_code\":\"T-1\",\"description\":\"New\","
                      "\"category\":\"LUXURY\"}",
                      200);
    assert_watch_types(w);
    cr_assert_str_eq(str(w, "watch_name"), "Gamma Classic II");
    cr_assert_str_eq(str(w, "brand"), "Tissot", "\"\" for brand leaves it");
    cr_assert_str_eq(str(w, "price"), "450.00");
    cr_assert_eq(num(w, "stock_quantity"), 7);
    cr_assert_str_eq(str(w, "model_code"), "T-1");
    cr_assert_str_eq(str(w, "category"), "luxury");
    json_decref(w);

    w = admin("PUT", path, "{\"model_code\":\"\",\"description\":\"\",\"category\":\"\"}", 200);
    cr_assert(json_is_null(get(w, "model_code")), "\"\" stores null");
    cr_assert(json_is_null(get(w, "description")));
    cr_assert(json_is_null(get(w, "category")));
    cr_assert_str_eq(str(w, "price"), "450.00", "left alone");
    char *cat = catalog_text(w2);
    json_t *c = json_loads(cat, 0, NULL);
    cr_assert(json_equal(c, w), "the catalog has it at once");
    json_decref(c);
    free(cat);
    json_decref(w);

    json_t *e = admin("PUT", path, "{}", 400);
    cr_assert_str_eq(str(e, "error"), "No fields to update");
    json_decref(e);
    json_decref(admin("PUT", path, "{\"unknown\":1,\"brand\":\"\"}", 400));
    e = admin("PUT", path, "{\"price\":-5}", 400);
    assert_error(e, "validation_failed");
    json_decref(e);
    json_decref(admin("PUT", "/api/v1/admin/watches/5e000000-0000-0000-0000-00000000ffff",
                      "{\"price\":1}", 404));
    json_decref(admin("PUT", "/api/v1/admin/watches/not-a-uuid", "{\"price\":1}", 404));
}

/* The events appended from position `from` on: their types in `types`
 * (up to max), the last stock.adjusted's quantity and reason. */
typedef struct seen {
    ev_type types[8];
    size_t n;
    int64_t quantity;
    int reason;
} seen;

static int visit(void *ud, const log_rec *rec)
{
    seen *s = ud;
    ev_dec *d = ev_dec_new();
    ev_event ev;
    cr_assert_eq(ev_decode(d, rec->data, rec->len, rec->pos, &ev), 0);
    if (s->n < 8)
        s->types[s->n] = ev.env.type;
    s->n++;
    if (ev.env.type == EV_T_STOCK_ADJUSTED) {
        s->quantity = ev.u.stock_adjusted.quantity;
        s->reason = ev.u.stock_adjusted.reason;
    }
    ev_dec_free(d);
    return 0;
}

static seen events_from(uint64_t from)
{
    seen s = {0};
    log_t *l;
    char err[256];
    uint64_t next;
    cr_assert_eq(log_open(store.uri, LOG_READ, &l, err, sizeof err), 0, "%s", err);
    cr_assert_eq(log_scan(l, from, 0, visit, &s, &next), 0);
    log_close(l);
    return s;
}

Test(api_admin, stock_set_through_either_put_is_the_same_event)
{
    char path[96], spath[112];
    snprintf(path, sizeof path, "/api/v1/admin/watches/%s", w0);
    snprintf(spath, sizeof spath, "%s/stock", path);

    uint64_t at = log_end_now();
    json_t *w = admin("PUT", spath, "{\"stock_quantity\":5}", 200);
    assert_watch_types(w);
    cr_assert_eq(num(w, "stock_quantity"), 5);
    json_decref(w);
    seen a = events_from(at);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(a.types[0], EV_T_STOCK_ADJUSTED);
    cr_assert_eq(a.quantity, 5);
    cr_assert_eq(a.reason, EV_stock_reason_CORRECTION);

    at = log_end_now();
    w = admin("PUT", path, "{\"stock_quantity\":\"12\"}", 200);
    cr_assert_eq(num(w, "stock_quantity"), 12);
    json_decref(w);
    seen b = events_from(at);
    cr_assert_eq(b.n, 1, "only the stock event");
    cr_assert_eq(b.types[0], EV_T_STOCK_ADJUSTED);
    cr_assert_eq(b.quantity, 12);
    cr_assert_eq(b.reason, EV_stock_reason_RESTOCK);

    at = log_end_now();
    w = admin("PUT", spath, "{\"stock_quantity\":\"12\"}", 200);
    cr_assert_eq(num(w, "stock_quantity"), 12);
    json_decref(w);
    cr_assert_eq(log_end_now(), at, "the same stock again appends nothing");

    char cpath[96];
    snprintf(cpath, sizeof cpath, "/api/v1/watches/%s", w0);
    w = admin("GET", cpath, NULL, 200);
    cr_assert_eq(num(w, "stock_quantity"), 12);
    json_decref(w);

    json_t *e = admin("PUT", spath, "{\"stock_quantity\":-1}", 400);
    assert_error(e, "validation_failed");
    json_decref(e);
    json_decref(admin("PUT", spath, "{\"stock_quantity\":1.5}", 400));
    json_decref(admin("PUT", spath, "{}", 400));
    json_decref(admin("PUT", "/api/v1/admin/watches/5e000000-0000-0000-0000-00000000ffff/stock",
                      "{\"stock_quantity\":1}", 404));
    json_decref(admin("PUT", "/api/v1/admin/watches/nope/stock", "{\"stock_quantity\":1}", 404));
}

/* ------------------------------------------------------------ stats */

Test(api_admin, stats_are_strings_of_digits)
{
    json_t *s = call_as(AGENT, "GET", "/api/v1/admin/stats", NULL, 200);
    json_t *want = json_loads("{\"orders\":{\"total\":\"4\",\"pending\":\"2\"},"
                              "\"customers\":{\"total\":\"4\"},"
                              "\"revenue\":{\"total\":\"2095.50\"},"
                              "\"watches\":{\"total\":\"3\",\"low_stock\":\"1\"}}",
                              0, NULL);
    cr_assert(json_equal(s, want), "%s", json_dumps(s, JSON_COMPACT));
    json_decref(want);
    json_decref(s);

    /* A cancellation leaves the revenue and the pending count. */
    json_decref(set_status("3", "cancelled", 200));
    s = admin("GET", "/api/v1/admin/stats", NULL, 200);
    cr_assert_str_eq(str(get(s, "orders"), "pending"), "1");
    cr_assert_str_eq(str(get(s, "revenue"), "total"), "895.00");
    cr_assert_str_eq(str(get(s, "watches"), "low_stock"), "1");
    json_decref(s);
}

/* ------------------------------------------------------------ thousands */

enum { BULK = 5200, BATCH = 400 };

/* BULK orders, every third by customer 1, every seventh cancelled. */
static void bulk_setup(void)
{
    ta_store_init(&store);
    add_watch(0, "Alpha Diver", "Longines", 39500, 1000000, "diver");
    people();
    wr_req *reqs = calloc(BATCH, sizeof *reqs);
    dec_line_in *lines = calloc(BATCH, sizeof *lines);
    wr_req *ptr[BATCH];
    cr_assert(reqs && lines);
    for (unsigned done = 0; done < BULK; done += BATCH) {
        for (unsigned i = 0; i < BATCH; i++) {
            order_cmd(&reqs[i], &lines[i], (done + i) % 3 == 0 ? USER : 0, 0, 1 + (done + i) % 2);
            reqs[i].cmd.now_us = clock_us += 1000;
            reqs[i].cmd.causation = (ev_str){NULL, 0};
            ptr[i] = &reqs[i];
        }
        cr_assert_eq(wr_process(store.w, ptr, BATCH), 0);
        for (unsigned i = 0; i < BATCH; i++)
            cr_assert_eq(reqs[i].out.reason, DEC_OK);
    }
    free(reqs);
    free(lines);
    for (uint64_t id = 7; id <= BULK; id += 7)
        move(id, EV_order_status_CANCELLED);
    ta_project(&store);
    ta_server_start(&srv, &store, NULL);
}

TestSuite(api_admin_bulk, .init = bulk_setup, .fini = teardown, .timeout = 300);

static json_t *streamed(const char *path, char *headers, size_t cap)
{
    const char *h[] = {bearer(ADMIN, NULL), NULL};
    ta_resp r;
    ta_request(&srv, "GET", path, NULL, h, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    cr_assert_not_null(j, "valid JSON (%s at %d)", e.text, e.position);
    snprintf(headers, cap, "%s", r.headers);
    ta_resp_free(&r);
    return j;
}

Test(api_admin_bulk, the_whole_list_streams_complete)
{
    char headers[4096], ct[128];
    json_t *all = streamed("/api/v1/admin/orders", headers, sizeof headers);
    cr_assert(json_is_array(all));
    cr_assert_eq(json_array_size(all), BULK, "every order");
    for (size_t i = 0; i < BULK; i++) {
        json_t *o = json_array_get(all, i);
        cr_assert_eq(num(o, "order_id"), (json_int_t)(BULK - i), "newest first, none missing");
        if (i % 97 == 0)
            assert_admin_order(o);
        bool mine = (BULK - i - 1) % 3 == 0;
        cr_assert(mine ? json_is_string(get(o, "email")) : json_is_null(get(o, "email")));
    }
    json_decref(all);
    ta_resp r = {0};
    r.headers = headers;
    cr_assert(ta_header(&r, "content-type", ct, sizeof ct));
    cr_assert_str_eq(ct, "application/json; charset=utf-8");
    cr_assert(ta_header(&r, "transfer-encoding", ct, sizeof ct), "sent in chunks: %s", headers);
    cr_assert_str_eq(ct, "chunked");

    all = streamed("/api/v1/admin/orders?status=cancelled", headers, sizeof headers);
    cr_assert_eq(json_array_size(all), BULK / 7);
    for (size_t i = 0; i < json_array_size(all); i++)
        cr_assert_str_eq(str(json_array_get(all, i), "status"), "cancelled");
    json_decref(all);
}

Test(api_admin_bulk, pages_of_a_long_list)
{
    json_t *p = admin("GET", "/api/v1/admin/orders?page=3&limit=200", NULL, 200);
    cr_assert_eq(num(p, "total"), BULK);
    cr_assert_eq(num(p, "pages"), (BULK + 199) / 200);
    json_t *orders = get(p, "orders");
    cr_assert_eq(json_array_size(orders), 200);
    cr_assert_eq(num(json_array_get(orders, 0), "order_id"), BULK - 400);
    json_decref(p);
    p = admin("GET", "/api/v1/admin/orders?status=pending&page=2&limit=100", NULL, 200);
    cr_assert_eq(num(p, "total"), BULK - BULK / 7);
    json_decref(p);
    p = admin("GET", "/api/v1/admin/stats", NULL, 200);
    char want[32];
    snprintf(want, sizeof want, "%d", BULK);
    cr_assert_str_eq(str(get(p, "orders"), "total"), want);
    json_decref(p);
}

/* A client that reads the start of the streamed list and hangs up. */
static void read_a_little_and_leave(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)srv.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[1400];
    int n = snprintf(req, sizeof req, "GET /api/v1/admin/orders HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n",
                     bearer(ADMIN, NULL));
    cr_assert_eq(write(fd, req, (size_t)n), n);
    char buf[2048];
    cr_assert_gt(read(fd, buf, sizeof buf), 0);
    close(fd);
}

Test(api_admin_bulk, clients_that_leave_or_ask_for_the_head_only)
{
    for (int i = 0; i < 5; i++)
        read_a_little_and_leave();
    const char *h[] = {bearer(ADMIN, NULL), NULL};
    ta_resp r;
    ta_request(&srv, "HEAD", "/api/v1/admin/orders", NULL, h, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    ta_resp_free(&r);
    json_t *s = admin("GET", "/api/v1/admin/stats", NULL, 200);
    json_decref(s);
    char headers[4096];
    json_t *all = streamed("/api/v1/admin/orders?status=cancelled", headers, sizeof headers);
    cr_assert_eq(json_array_size(all), BULK / 7, "still serving whole lists");
    json_decref(all);
}
