/* test_api_accounts.c - accounts over real HTTP (API.md "Accounts"):
 * register (with the SPA's extra password2), log in, me, refresh with
 * rotation and the 30-second grace (two clients refreshing one token at
 * once both succeed), logout, and an account imported from the old
 * backend with a bcrypt hash. */
#define _GNU_SOURCE
#include <crypt.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "core/support.h"

static ta_store store;
static ta_server srv;

/* An account from the old backend: bcrypt hash of "legacy-pass". */
static void add_legacy_account(ta_store *s)
{
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    char *h = crypt_r("legacy-pass", "$2b$04$abcdefghijklmnopqrstuu", &cd);
    cr_assert(h && h[0] == '$', "bcrypt available");
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_CUSTOMER_REGISTER, 1764057700000000ull);
    r.cmd.causation = (ev_str){NULL, 0};
    r.cmd.u.reg.email = EV_STR("old@example.com");
    r.cmd.u.reg.full_name = EV_STR("Old Customer");
    r.cmd.u.reg.password_hash = ev_str_c(h);
    wr_req *p = &r;
    cr_assert_eq(wr_process(s->w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
}

static void setup(void)
{
    ta_store_init(&store);
    add_legacy_account(&store);
    ta_project(&store);
    ta_server_start(&srv, &store, NULL);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0, "the api stops cleanly on SIGTERM");
    ta_store_fini(&store);
}

TestSuite(api_accounts, .init = setup, .fini = teardown, .timeout = 120);

static json_t *call(const char *method, const char *path, const char *body,
                    const char *const *headers, long want)
{
    return ta_call(&srv, method, path, body, headers, want);
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static char *bearer_of(json_t *session)
{
    char *h = NULL;
    cr_assert_gt(asprintf(&h, "Authorization: Bearer %s", str(session, "token")), 0);
    return h;
}

Test(api_accounts, register_login_me)
{
    json_t *s = call("POST", "/api/v1/auth/register",
                     "{\"email\":\"  Anna@Example.COM \",\"full_name\":\"Anna Keller\","
                     "\"password\":\"secret1\",\"password2\":\"secret1\",\"phone\":\"\"}",
                     NULL, 201);
    cr_assert_not_null(str(s, "token"));
    cr_assert_not_null(str(s, "refreshToken"));
    json_t *c = json_object_get(s, "customer");
    cr_assert(json_is_integer(json_object_get(c, "customer_id")));
    cr_assert_str_eq(str(c, "email"), "anna@example.com", "normalised");
    cr_assert_str_eq(str(c, "full_name"), "Anna Keller");

    char *auth = bearer_of(s);
    const char *h[] = {auth, NULL};
    json_t *me = call("GET", "/api/v1/auth/me", NULL, h, 200);
    cr_assert_str_eq(str(me, "email"), "anna@example.com");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(me, "roles"), 0)), "user");
    json_decref(me);
    free(auth);
    json_decref(s);

    json_decref(call("POST", "/api/v1/auth/register",
                     "{\"email\":\"ANNA@example.com\",\"full_name\":\"Anna Two\","
                     "\"password\":\"secret2\"}",
                     NULL, 409));
    json_t *e = call("POST", "/api/v1/auth/register",
                     "{\"email\":\"not-an-email\",\"full_name\":\"A\",\"password\":\"123\"}", NULL,
                     400);
    cr_assert_eq(json_array_size(json_object_get(e, "details")), 3, "every failing field");
    json_decref(e);

    s = call("POST", "/api/v1/auth/login",
             "{\"email\":\"anna@example.com\",\"password\":\"secret1\"}", NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(s, "customer"), "customer_id")),
                 2);
    json_decref(s);
    json_t *bad = call("POST", "/api/v1/auth/login",
                       "{\"email\":\"anna@example.com\",\"password\":\"wrong\"}", NULL, 401);
    json_t *unknown = call("POST", "/api/v1/auth/login",
                           "{\"email\":\"nobody@example.com\",\"password\":\"wrong\"}", NULL, 401);
    cr_assert_str_eq(str(bad, "error"), str(unknown, "error"), "one message for both");
    json_decref(bad);
    json_decref(unknown);
    const char *junk[] = {"Authorization: Bearer a.b.c", NULL};
    json_decref(call("GET", "/api/v1/auth/me", NULL, junk, 401));
    json_decref(call("GET", "/api/v1/auth/me", NULL, NULL, 401));
}

Test(api_accounts, an_old_backend_bcrypt_account_logs_in)
{
    json_t *s = call("POST", "/api/v1/auth/login",
                     "{\"email\":\"old@example.com\",\"password\":\"legacy-pass\"}", NULL, 200);
    cr_assert_str_eq(str(json_object_get(s, "customer"), "full_name"), "Old Customer");
    json_decref(s);
    json_decref(call("POST", "/api/v1/auth/login",
                     "{\"email\":\"old@example.com\",\"password\":\"legacy-pasS\"}", NULL, 401));
}

typedef struct refresher {
    const char *body;
    long status;
    char token[128];
} refresher;

static void *refresh_once(void *arg)
{
    refresher *f = arg;
    ta_resp r;
    ta_request(&srv, "POST", "/api/v1/auth/refresh", f->body, NULL, &r);
    f->status = r.status;
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    const char *t = j ? str(j, "refreshToken") : NULL;
    snprintf(f->token, sizeof f->token, "%s", t ? t : "");
    json_decref(j);
    ta_resp_free(&r);
    return NULL;
}

Test(api_accounts, refresh_rotates_with_grace_and_logout_revokes)
{
    json_t *s = call("POST", "/api/v1/auth/register",
                     "{\"email\":\"rota@example.com\",\"full_name\":\"Rota Tion\","
                     "\"password\":\"secret1\"}",
                     NULL, 201);
    char body[256], body2[256];
    snprintf(body, sizeof body, "{\"refreshToken\":\"%s\"}", str(s, "refreshToken"));
    json_decref(s);

    /* Two clients refresh the same token at once: both succeed, alike. */
    refresher a = {body, 0, ""}, b = {body, 0, ""};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, refresh_once, &a);
    pthread_create(&tb, NULL, refresh_once, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.status, 200);
    cr_assert_eq(b.status, 200);
    cr_assert_str_eq(a.token, b.token, "the same new pair");
    cr_assert_str_neq(a.token, strstr(body, ":\"") + 2);

    /* Again within 30 s: still the same new token. */
    json_t *again = call("POST", "/api/v1/auth/refresh", body, NULL, 200);
    cr_assert_str_eq(str(again, "refreshToken"), a.token);
    json_decref(again);

    /* The new one works and rotates further. */
    snprintf(body2, sizeof body2, "{\"refreshToken\":\"%s\"}", a.token);
    json_t *next = call("POST", "/api/v1/auth/refresh", body2, NULL, 200);
    cr_assert_str_neq(str(next, "refreshToken"), a.token);
    char body3[256];
    snprintf(body3, sizeof body3, "{\"refreshToken\":\"%s\"}", str(next, "refreshToken"));
    json_decref(next);

    json_decref(call("POST", "/api/v1/auth/logout", body3, NULL, 204));
    json_t *e = call("POST", "/api/v1/auth/refresh", body3, NULL, 401);
    cr_assert_not_null(str(e, "error"), "refresh errors are JSON");
    json_decref(e);
    json_decref(call("POST", "/api/v1/auth/refresh", "{\"refreshToken\":\"nope\"}", NULL, 401));
    json_decref(call("POST", "/api/v1/auth/logout", NULL, NULL, 204));
}
