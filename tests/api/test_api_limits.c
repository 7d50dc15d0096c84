/* test_api_limits.c - rate limits over real HTTP (API.md Conventions): per
 * client address on /api/v1, stricter on login and register, 429 as JSON
 * with Retry-After and the RateLimit-* headers; health, metrics, refresh
 * and preflights are never limited. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"

static ta_store store;
static ta_server srv;

static void setup(void)
{
    ta_store_init(&store);
    ta_project(&store);
    const char *extra[] = {"--rate-limit=5", "--rate-limit-auth=2", NULL};
    ta_server_start(&srv, &store, extra);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0);
    ta_store_fini(&store);
}

TestSuite(api_limits, .init = setup, .fini = teardown, .timeout = 60);

static long status_of(const char *method, const char *path, const char *body,
                      const char *const *h, ta_resp *keep)
{
    ta_resp r;
    ta_request(&srv, method, path, body, h, &r);
    long st = r.status;
    if (keep)
        *keep = r;
    else
        ta_resp_free(&r);
    return st;
}

Test(api_limits, the_sixth_request_in_the_window_is_429)
{
    char v[64];
    for (int i = 0; i < 5; i++) {
        ta_resp r;
        cr_assert_eq(status_of("GET", "/api/v1/watches", NULL, NULL, &r), 200, "request %d", i);
        cr_assert(ta_header(&r, "ratelimit-limit", v, sizeof v));
        cr_assert_str_eq(v, "5");
        cr_assert(ta_header(&r, "ratelimit-remaining", v, sizeof v));
        cr_assert_eq(atoi(v), 4 - i);
        ta_resp_free(&r);
    }
    /* Another address claimed in X-Forwarded-For changes nothing without a
     * trusted proxy. */
    const char *xff[] = {"X-Forwarded-For: 203.0.113.9", NULL};
    ta_resp r;
    cr_assert_eq(status_of("GET", "/api/v1/watches", NULL, xff, &r), 429);
    cr_assert_not_null(strstr(r.body, "\"code\":\"rate_limited\""), "%s", r.body);
    cr_assert(ta_header(&r, "retry-after", v, sizeof v) && atoi(v) >= 1, "Retry-After: %s", v);
    cr_assert(ta_header(&r, "content-type", v, sizeof v) && !strncmp(v, "application/json", 16));
    ta_resp_free(&r);

    for (int i = 0; i < 10; i++) {
        cr_assert_eq(status_of("GET", "/health", NULL, NULL, NULL), 200, "health is not limited");
        cr_assert_eq(status_of("GET", "/metrics", NULL, NULL, NULL), 200);
    }
    const char *pre[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: GET", NULL};
    cr_assert_eq(status_of("OPTIONS", "/api/v1/watches", NULL, pre, NULL), 204);
    cr_assert_eq(status_of("POST", "/api/v1/auth/refresh", "{\"refreshToken\":\"x\"}", NULL, NULL),
                 401, "refresh is not limited per address");
}

Test(api_limits, login_and_register_have_their_own_stricter_limit)
{
    const char *body = "{\"email\":\"nobody@example.com\",\"password\":\"wrong\"}";
    cr_assert_eq(status_of("POST", "/api/v1/auth/login", body, NULL, NULL), 401);
    cr_assert_eq(status_of("POST", "/api/v1/auth/login", body, NULL, NULL), 401);
    cr_assert_eq(status_of("POST", "/api/v1/auth/login", body, NULL, NULL), 429);
    cr_assert_eq(status_of("POST", "/api/v1/auth/register", "{}", NULL, NULL), 429);
    cr_assert_eq(status_of("GET", "/api/v1/watches", NULL, NULL, NULL), 200,
                 "the general limit is separate");
}
