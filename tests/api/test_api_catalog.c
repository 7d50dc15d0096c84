/* test_api_catalog.c - the public catalog over real HTTP: the api program
 * on a cache the projector made, requests through libcurl. Shapes and JSON
 * types as API.md gives them, the clamping rules, 404/405/413 as JSON,
 * security headers, CORS, correlation ids, metrics, graceful stop. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api_support.h"
#include "core/support.h"

#define N_WATCHES 30

static const char *const brands[] = {"Omega", "Seiko", "Tissot"};
static const char *const cats[] = {"diver", "chronograph", "classic"};

/* 30 watches: Omega 10, Seiko 10, Tissot 9, one without a brand; prices
 * 100.00 .. 390.00 (watch i: 100 + 10 i); stock i % 4. */
static void add_catalog(ta_store *s)
{
    for (int i = 0; i < N_WATCHES; i++) {
        static wr_req r;
        memset(&r, 0, sizeof r);
        r.cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull + (uint64_t)i * 1000000);
        r.cmd.causation = (ev_str){NULL, 0};
        ts_watch_id((unsigned)i, r.cmd.u.watch.watch_id);
        char name[64];
        snprintf(name, sizeof name, "Catalog watch %02d", i);
        r.cmd.u.watch.watch_name = ev_str_c(name);
        if (i != 29)
            r.cmd.u.watch.brand = ev_str_c(brands[i % 3]);
        r.cmd.u.watch.category = ev_str_c(cats[i % 3]);
        r.cmd.u.watch.description = EV_STR("Water resistant to 200 m, automatic movement");
        r.cmd.u.watch.price = 10000 + i * 1000;
        r.cmd.u.watch.currency = EV_STR("USD");
        r.cmd.u.watch.set_stock = true;
        r.cmd.u.watch.stock = i % 4;
        wr_req *p = &r;
        cr_assert_eq(wr_process(s->w, &p, 1), 0);
        cr_assert_eq(r.out.reason, DEC_OK);
    }
}

static ta_store store;
static ta_server srv;

static void setup(void)
{
    ta_store_init(&store);
    add_catalog(&store);
    ta_project(&store);
    ta_server_start(&srv, &store, NULL);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0, "the api stops cleanly on SIGTERM");
    ta_store_fini(&store);
}

static json_t *get_json(const char *path, long want_status)
{
    ta_resp r;
    ta_request(&srv, "GET", path, NULL, NULL, &r);
    cr_assert_eq(r.status, want_status, "GET %s: %ld %s", path, r.status, r.body);
    char ct[128];
    cr_assert(ta_header(&r, "content-type", ct, sizeof ct), "GET %s has a content type", path);
    cr_assert(strncmp(ct, "application/json", 16) == 0, "GET %s: %s", path, ct);
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    cr_assert_not_null(j, "GET %s: not JSON: %s", path, r.body);
    ta_resp_free(&r);
    return j;
}

TestSuite(api_catalog, .init = setup, .fini = teardown, .timeout = 120);

Test(api_catalog, the_list_with_and_without_paging)
{
    json_t *all = get_json("/api/v1/watches", 200);
    cr_assert(json_is_array(all));
    cr_assert_eq(json_array_size(all), N_WATCHES, "no page or limit: every watch, bare array");
    /* Newest first. */
    json_t *first = json_array_get(all, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "watch_name")), "Catalog watch 29");
    cr_assert(json_is_string(json_object_get(first, "price")), "price is a string");
    cr_assert_str_eq(json_string_value(json_object_get(first, "price")), "390.00");
    cr_assert(json_is_integer(json_object_get(first, "stock_quantity")));
    cr_assert(json_is_null(json_object_get(first, "brand")));
    json_decref(all);

    json_t *page = get_json("/api/v1/watches?limit=500", 200);
    cr_assert(json_is_integer(json_object_get(page, "total")), "total is a JSON integer");
    cr_assert_eq(json_integer_value(json_object_get(page, "total")), N_WATCHES);
    cr_assert_eq(json_integer_value(json_object_get(page, "page")), 1);
    cr_assert_eq(json_integer_value(json_object_get(page, "pages")), 1, "limit 500 means 200");
    cr_assert_eq(json_array_size(json_object_get(page, "watches")), N_WATCHES);
    json_decref(page);

    page = get_json("/api/v1/watches?page=0&limit=abc", 200);
    cr_assert_eq(json_integer_value(json_object_get(page, "page")), 1, "page 0 means 1");
    cr_assert_eq(json_array_size(json_object_get(page, "watches")), 24, "limit abc means 24");
    cr_assert_eq(json_integer_value(json_object_get(page, "pages")), 2);
    json_decref(page);

    page = get_json("/api/v1/watches?page=3&limit=10&sort=preis-asc", 200);
    json_t *w = json_array_get(json_object_get(page, "watches"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(w, "price")), "300.00");
    json_decref(page);

    page = get_json("/api/v1/watches?page=9&limit=10", 200);
    cr_assert_eq(json_array_size(json_object_get(page, "watches")), 0, "past the end: empty");
    cr_assert(json_is_array(json_object_get(page, "watches")));
    json_decref(page);
}

Test(api_catalog, filters_are_clamped_or_ignored_never_refused)
{
    json_t *j = get_json("/api/v1/watches?category=DIVER", 200);
    cr_assert_eq(json_array_size(j), 10, "category is case-insensitive");
    json_decref(j);
    j = get_json("/api/v1/watches?category=pocket", 200);
    cr_assert_eq(json_array_size(j), 0, "unknown category: empty");
    json_decref(j);
    j = get_json("/api/v1/watches?brand=Omega&min_price=150&max_price=250.00", 200);
    cr_assert_eq(json_array_size(j), 4, "Omega 150..250: watches 6, 9, 12, 15");
    json_decref(j);
    j = get_json("/api/v1/watches?min_price=-5&max_price=abc&in_stock=1", 200);
    cr_assert_eq(json_array_size(j), 22, "bad prices ignored; in stock only");
    json_decref(j);
    j = get_json("/api/v1/watches?in_stock=true", 200);
    cr_assert_eq(json_array_size(j), N_WATCHES, "in_stock filters only when exactly 1");
    json_decref(j);
    j = get_json("/api/v1/watches?search=%27%3B%20DROP%20TABLE%20watches%3B--", 200);
    cr_assert_eq(json_array_size(j), 0, "SQL metacharacters are just a search");
    json_decref(j);
    j = get_json("/api/v1/watches?search=WATCH%2005", 200);
    cr_assert_eq(json_array_size(j), 1);
    json_decref(j);
    j = get_json("/api/v1/watches?sort=bogus", 200);
    cr_assert_eq(json_array_size(j), N_WATCHES, "unknown sort: the default");
    json_decref(j);
    j = get_json("/api/v1/watches?search=%FF%FE", 400);
    cr_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_request");
    json_decref(j);
}

Test(api_catalog, one_watch_brands_and_the_summary)
{
    char id[37], path[128];
    uint8_t raw[16];
    ts_watch_id(7, raw);
    ev_uuid_format(raw, id);
    snprintf(path, sizeof path, "/api/v1/watches/%s", id);
    json_t *w = get_json(path, 200);
    cr_assert_str_eq(json_string_value(json_object_get(w, "watch_id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(w, "category")), "chronograph");
    json_decref(w);
    json_t *e = get_json("/api/v1/watches/not-a-uuid", 404);
    cr_assert_str_eq(json_string_value(json_object_get(e, "error")), "Watch not found");
    json_decref(e);
    e = get_json("/api/v1/watches/00000000-0000-4000-8000-000000000000", 404);
    json_decref(e);

    json_t *b = get_json("/api/v1/watches/brands", 200);
    cr_assert_eq(json_array_size(b), 4);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(b, 0), "brand")), "Omega");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(b, 0), "count")), 10);
    json_decref(b);
    b = get_json("/api/v1/watches/brands?category=classic", 200);
    cr_assert_eq(json_array_size(b), 2, "classic: Tissot 9 and the unbranded one... %s",
                 json_dumps(b, 0));
    json_decref(b);

    json_t *s = get_json("/api/v1/watches/brands-summary", 200);
    json_t *omega = json_array_get(s, 0);
    cr_assert_str_eq(json_string_value(json_object_get(omega, "brand")), "Omega");
    cr_assert_eq(json_array_size(json_object_get(omega, "watches")), 6, "up to 6 watches");
    json_decref(s);
}

Test(api_catalog, paths_errors_headers_cors_and_metrics)
{
    json_t *j = get_json("/API/V1/WATCHES/", 200);
    cr_assert_eq(json_array_size(j), N_WATCHES, "case and a trailing slash are tolerated");
    json_decref(j);
    j = get_json("/api/v1/nothing-here", 404);
    cr_assert_str_eq(json_string_value(json_object_get(j, "code")), "not_found");
    json_decref(j);

    ta_resp r;
    ta_request(&srv, "DELETE", "/api/v1/watches", NULL, NULL, &r);
    cr_assert_eq(r.status, 405);
    char v[256];
    cr_assert(ta_header(&r, "allow", v, sizeof v) && strstr(v, "GET"), "Allow: %s", v);
    cr_assert_not_null(strstr(r.body, "\"code\":\"method_not_allowed\""), "%s", r.body);
    ta_resp_free(&r);

    /* A body over 100 kB: h2o refuses it, still as JSON. */
    static char big[200 * 1024];
    memset(big, 'a', sizeof big - 1);
    ta_request(&srv, "POST", "/api/v1/chat", big, NULL, &r);
    cr_assert_eq(r.status, 413);
    cr_assert_not_null(strstr(r.body, "\"code\":\"payload_too_large\""), "%s", r.body);
    ta_resp_free(&r);

    const char *h1[] = {"X-Correlation-Id: test-corr-42", "Origin: http://localhost:3000", NULL};
    ta_request(&srv, "GET", "/health", NULL, h1, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    cr_assert(ta_header(&r, "x-correlation-id", v, sizeof v));
    cr_assert_str_eq(v, "test-corr-42");
    cr_assert(ta_header(&r, "access-control-allow-origin", v, sizeof v));
    cr_assert_str_eq(v, "http://localhost:3000");
    cr_assert(ta_header(&r, "access-control-allow-credentials", v, sizeof v));
    cr_assert(ta_header(&r, "x-frame-options", v, sizeof v));
    cr_assert_str_eq(v, "DENY");
    cr_assert(ta_header(&r, "x-content-type-options", v, sizeof v));
    cr_assert(ta_header(&r, "content-security-policy", v, sizeof v));
    cr_assert(ta_header(&r, "referrer-policy", v, sizeof v));
    cr_assert(!ta_header(&r, "x-ws-route", v, sizeof v), "internal header stripped");
    ta_resp_free(&r);

    ta_request(&srv, "GET", "/health", NULL, NULL, &r);
    cr_assert(ta_header(&r, "x-correlation-id", v, sizeof v) && strlen(v) == 36,
              "a correlation id is made: %s", v);
    ta_resp_free(&r);

    const char *h2[] = {"Origin: https://evil.example", NULL};
    ta_request(&srv, "GET", "/health", NULL, h2, &r);
    cr_assert(!ta_header(&r, "access-control-allow-origin", v, sizeof v));
    ta_resp_free(&r);

    const char *h3[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                        "Access-Control-Request-Headers: authorization, content-type", NULL};
    ta_request(&srv, "OPTIONS", "/api/v1/orders", NULL, h3, &r);
    cr_assert_eq(r.status, 204);
    cr_assert(ta_header(&r, "access-control-allow-methods", v, sizeof v));
    cr_assert_str_eq(v, "GET,HEAD,PUT,PATCH,POST,DELETE");
    cr_assert(ta_header(&r, "access-control-allow-headers", v, sizeof v) &&
              strstr(v, "authorization"));
    ta_resp_free(&r);

    ta_request(&srv, "GET", "/metrics", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "http_requests_total{method=\"GET\",route=\"/health\","
                                      "status_code=\"200\"}"),
                       "%s", r.body);
    cr_assert_not_null(strstr(r.body, "http_request_duration_ms_bucket{route=\"/health\""));
    cr_assert_not_null(strstr(r.body, "watches_low_stock_total 23"), "stock 0..2: %s", r.body);
    ta_resp_free(&r);

    ta_request(&srv, "POST", "/api/v1/chat", "{}", NULL, &r);
    cr_assert_eq(r.status, 501);
    ta_resp_free(&r);
}

/* The stock of watch "Catalog watch NN" in a bare-array list. */
static long long listed_stock(json_t *list, const char *name)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *w = json_array_get(list, i);
        if (!strcmp(json_string_value(json_object_get(w, "watch_name")), name))
            return json_integer_value(json_object_get(w, "stock_quantity"));
    }
    cr_assert_fail("%s is not listed", name);
    return -1;
}

Test(api_catalog, a_repeated_list_follows_every_change_of_the_cache)
{
    /* The same query is answered from the rendered bytes while the cache
     * stays where it was; an order changes the cache, and the next
     * answer to the same query shows the new stock at once. */
    json_t *a = get_json("/api/v1/watches", 200), *b = get_json("/api/v1/watches", 200);
    cr_assert(json_equal(a, b));
    cr_assert_eq(listed_stock(a, "Catalog watch 03"), 3);
    json_decref(a);
    json_decref(b);
    char id[37], body[256];
    uint8_t raw[16];
    ts_watch_id(3, raw);
    ev_uuid_format(raw, id);
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":2,\"unit_price\":\"130.00\"}]}", id);
    ta_resp r;
    ta_request(&srv, "POST", "/api/v1/orders", body, NULL, &r);
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    ta_resp_free(&r);
    a = get_json("/api/v1/watches", 200);
    cr_assert_eq(listed_stock(a, "Catalog watch 03"), 1, "the order's stock shows at once");
    json_decref(a);
}
