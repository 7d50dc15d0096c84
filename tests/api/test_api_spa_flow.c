/* test_api_spa_flow.c - the single-page app's flow over real HTTP, exactly
 * as API.md describes what it sends: the home page with limit=500, a
 * category page with paging and sort, register with the extra password2,
 * an order with unit_price as the string "395.00", the order read back at
 * once, /orders/my with numeric item prices, payment through Stripe's
 * webhook, the admin moving the order to shipped, and a user's token on
 * /admin/stats getting exactly 403. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/stripe_sig.h"
#include "api_support.h"
#include "core/support.h"
#include "jwt.h"

#define WHSEC "whsec_spa_flow_secret"

static ta_store store;
static ta_server srv;

static void process(wr_req *r)
{
    wr_req *p = r;
    cr_assert_eq(wr_process(store.w, &p, 1), 0);
    cr_assert_eq(r->out.reason, DEC_OK);
}

/* Six watches (two per category), the first at 395.00; customer 1 an
 * admin. */
static void catalog_and_admin(void)
{
    static const char *const cats[] = {"diver", "chronograph", "classic"};
    static wr_req r;
    for (unsigned i = 0; i < 6; i++) {
        memset(&r, 0, sizeof r);
        r.cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull + i);
        r.cmd.causation = (ev_str){NULL, 0};
        ts_watch_id(i, r.cmd.u.watch.watch_id);
        char name[32];
        snprintf(name, sizeof name, "Flow watch %u", i);
        r.cmd.u.watch.watch_name = ev_str_c(name);
        r.cmd.u.watch.brand = EV_STR("Oris");
        r.cmd.u.watch.category = ev_str_c(cats[i % 3]);
        r.cmd.u.watch.price = 39500 + (int64_t)i * 1000;
        r.cmd.u.watch.currency = EV_STR("USD");
        r.cmd.u.watch.set_stock = true;
        r.cmd.u.watch.stock = 5;
        process(&r);
    }
    cr_assert_eq(ta_add_customer(&store, "admin@example.com", "Shop Admin", true), 1);
}

static void setup(void)
{
    ta_store_init(&store);
    catalog_and_admin();
    ta_project(&store);
    setenv("STRIPE_WEBHOOK_SECRET", WHSEC, 1);
    ta_server_start(&srv, &store, NULL);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0);
    ta_store_fini(&store);
}

TestSuite(api_spa_flow, .init = setup, .fini = teardown, .timeout = 120);

static json_t *call(const char *method, const char *path, const char *body,
                    const char *const *headers, long want)
{
    return ta_call(&srv, method, path, body, headers, want);
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static char *admin_header(void)
{
    int64_t now = (int64_t)time(NULL);
    json_t *c = json_pack("{s:I,s:s,s:I,s:I,s:s,s:s}", "customer_id", (json_int_t)1, "email",
                          "admin@example.com", "iat", (json_int_t)now, "exp",
                          (json_int_t)(now + 600), "iss", "watchstore", "aud", "watchstore-api");
    char *tok = NULL, *h = NULL;
    cr_assert_eq(jwt_sign_hs256(TA_JWT_KEY, 32, c, &tok), 0);
    json_decref(c);
    h = malloc(strlen(tok) + 32);
    sprintf(h, "Authorization: Bearer %s", tok);
    free(tok);
    return h;
}

Test(api_spa_flow, browse_register_order_pay_ship)
{
    /* The home page asks for 500: it gets the wrapper, limit clamped. */
    json_t *home = call("GET", "/api/v1/watches?limit=500", NULL, NULL, 200);
    cr_assert(json_is_integer(json_object_get(home, "total")), "typeof total === number");
    cr_assert_eq(json_integer_value(json_object_get(home, "total")), 6);
    cr_assert_eq(json_array_size(json_object_get(home, "watches")), 6);
    json_decref(home);

    /* A category page: paging and sort. */
    json_t *cat = call("GET", "/api/v1/watches?category=Diver&page=2&limit=1&sort=preis-asc", NULL,
                       NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(cat, "total")), 2);
    cr_assert_eq(json_integer_value(json_object_get(cat, "pages")), 2);
    cr_assert_eq(json_integer_value(json_object_get(cat, "page")), 2);
    json_t *w = json_array_get(json_object_get(cat, "watches"), 0);
    cr_assert_str_eq(str(w, "watch_name"), "Flow watch 3", "the dearer diver on page 2");
    json_decref(cat);

    /* Register as the app does, password2 and all. */
    json_t *s = call("POST", "/api/v1/auth/register",
                     "{\"email\":\"spa@example.com\",\"full_name\":\"Sam Pa\",\"password\":"
                     "\"secret1\",\"password2\":\"secret1\",\"phone\":\"\",\"address\":\"\"}",
                     NULL, 201);
    char auth[2048];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", str(s, "token"));
    json_decref(s);
    const char *me[] = {auth, NULL};

    /* The cart's order: unit_price a string, quantity a numeric string. */
    char body[512], id[37];
    uint8_t raw[16];
    ts_watch_id(0, raw);
    ev_uuid_format(raw, id);
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":\"2\",\"unit_price\":\"395.00\"}],"
             "\"shipping_address\":\"Seefeldstrasse 5, Zurich\"}",
             id);
    json_t *o = call("POST", "/api/v1/orders", body, me, 201);
    cr_assert_eq(json_number_value(json_object_get(o, "total_amount")), 790.0);
    long long order_id = (long long)json_integer_value(json_object_get(o, "order_id"));
    json_decref(o);

    /* Read back at once, then in the list with numeric prices. */
    char path[96];
    snprintf(path, sizeof path, "/api/v1/orders/%lld", order_id);
    json_t *got = call("GET", path, NULL, me, 200);
    cr_assert_str_eq(str(got, "status"), "pending");
    json_decref(got);
    json_t *mine = call("GET", "/api/v1/orders/my", NULL, me, 200);
    json_t *item = json_array_get(json_object_get(json_array_get(mine, 0), "items"), 0);
    cr_assert(json_is_number(json_object_get(item, "unit_price")));
    cr_assert_eq(json_number_value(json_object_get(item, "unit_price")), 395.0);
    json_decref(mine);

    /* Stripe tells us it is paid. */
    char ev[1024], oid[24];
    snprintf(oid, sizeof oid, "%lld", order_id);
    snprintf(ev, sizeof ev,
             "{\"id\":\"evt_spa_1\",\"object\":\"event\",\"type\":\"payment_intent.succeeded\","
             "\"created\":%lld,\"livemode\":false,\"data\":{\"object\":{\"id\":\"pi_spa_1\","
             "\"object\":\"payment_intent\",\"amount\":79000,\"amount_received\":79000,"
             "\"currency\":\"usd\",\"status\":\"succeeded\",\"metadata\":{\"order_id\":\"%s\"}}}}",
             (long long)time(NULL), oid);
    char sig[256], header[300];
    cr_assert_gt(stripe_sig_sign(ev, strlen(ev), WHSEC, (int64_t)time(NULL), sig, sizeof sig), 0);
    snprintf(header, sizeof header, "Stripe-Signature: %s", sig);
    const char *wh[] = {header, NULL};
    json_t *ack = call("POST", "/api/v1/stripe/webhook", ev, wh, 200);
    cr_assert(json_is_true(json_object_get(ack, "received")));
    json_decref(ack);
    got = call("GET", path, NULL, me, 200);
    cr_assert_str_eq(str(got, "status"), "processing", "paid: processing");
    cr_assert_str_eq(str(got, "payment_intent_id"), "pi_spa_1");
    json_decref(got);

    /* The admin ships it; the customer's token on the admin page: 403. */
    char *admin = admin_header();
    const char *ah[] = {admin, NULL};
    snprintf(path, sizeof path, "/api/v1/admin/orders/%lld/status", order_id);
    json_t *shipped = call("PUT", path, "{\"status\":\"shipped\"}", ah, 200);
    cr_assert_str_eq(str(shipped, "status"), "shipped");
    json_decref(shipped);
    free(admin);
    json_t *forbidden = call("GET", "/api/v1/admin/stats", NULL, me, 403);
    cr_assert_not_null(str(forbidden, "error"));
    json_decref(forbidden);
}
