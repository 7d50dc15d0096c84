/* test_api_accounts.c - accounts over real HTTP (API.md "Accounts"):
 * register (with the SPA's extra password2), log in, me, refresh with
 * rotation and the 30-second grace (two clients refreshing one token at
 * once both succeed), logout, an account imported from the old backend with
 * a bcrypt hash, and the re-hash of old hashes (bcrypt, the earlier scrypt
 * setting) after a login: one customer.password_changed in the log, the new
 * hash in the cache, nothing for a wrong password or a current hash. */
#define _GNU_SOURCE
#include <crypt.h>
#include <curl/curl.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/passwd.h"
#include "api_support.h"
#include "core/log.h"
#include "core/support.h"
#include "projections/proj_cache.h"

static ta_store store;
static ta_server srv;

/* A hash of "older-pass" with the scrypt setting before the current one
 * (ln=15, r=8, p=1), made with Python's hashlib.scrypt (salt
 * "old-setting-salt"), not with api/passwd. */
static const char OLD_SCRYPT[] = "$scrypt$ln=15,r=8,p=1$b2xkLXNldHRpbmctc2FsdA$"
                                 "gJ9AE9j7Ku2KQ1bQUugLBDZ3oRef9llEewcZWIBieIw";
static const char CURRENT_PREFIX[] = "$scrypt$ln=13,r=8,p=10$";

static void add_account(ta_store *s, const char *email, const char *name, const char *hash,
                        uint64_t at)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_CUSTOMER_REGISTER, at);
    r.cmd.causation = (ev_str){NULL, 0};
    r.cmd.u.reg.email = ev_str_c(email);
    r.cmd.u.reg.full_name = ev_str_c(name);
    r.cmd.u.reg.password_hash = ev_str_c(hash);
    wr_req *p = &r;
    cr_assert_eq(wr_process(s->w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
}

/* Customer 1, from the old backend: bcrypt hash of "legacy-pass".
 * Customer 2: OLD_SCRYPT. */
static void add_old_accounts(ta_store *s)
{
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    char *h = crypt_r("legacy-pass", "$2b$04$abcdefghijklmnopqrstuu", &cd);
    cr_assert(h && strncmp(h, "$2b$04$", 7) == 0, "bcrypt available");
    add_account(s, "old@example.com", "Old Customer", h, 1764057700000000ull);
    add_account(s, "older@example.com", "Older Customer", OLD_SCRYPT, 1764057700000001ull);
}

static void setup(void)
{
    ta_store_init(&store);
    add_old_accounts(&store);
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
                 3);
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

/* ------------------------------------------------------------ re-hash */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static proj_cache_reader *open_cache(void)
{
    proj_cache_reader *r;
    char err[512];
    cr_assert_eq(proj_cache_open_reader(store.cache, ts_email_key, &r, err, sizeof err), 0, "%s",
                 err);
    return r;
}

/* The account's password hash as the cache has it now. */
static void cached_hash(proj_cache_reader *r, const char *email, char *out, size_t cap)
{
    ev_buf buf = {0};
    proj_cache_customer c;
    cr_assert_eq(proj_cache_customer_by_email(r, ev_str_c(email), &buf, &c), 0, "%s", email);
    cr_assert_not_null(c.password_hash.p, "%s has a password", email);
    snprintf(out, cap, "%.*s", (int)c.password_hash.n, c.password_hash.p);
    ev_buf_free(&buf);
}

/* Polls the cache (at most a minute: the sanitizer build hashes slowly)
 * until the account's hash has the current setting. */
static void wait_for_current_hash(proj_cache_reader *r, const char *email, char *out, size_t cap)
{
    int64_t deadline = mono_ms() + 60000;
    for (;;) {
        cached_hash(r, email, out, cap);
        if (strncmp(out, CURRENT_PREFIX, strlen(CURRENT_PREFIX)) == 0)
            return;
        cr_assert_lt(mono_ms(), deadline, "%s: still a %.7s... hash after a minute", email, out);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The customer.password_changed events of the whole log. */
typedef struct pw_events {
    int n;
    uint64_t customer_id;
    char hash[PW_HASH_MAX];
    char reason[32];
    ev_dec *dec;
} pw_events;

static int collect_pw(void *ud, const log_rec *rec)
{
    pw_events *x = ud;
    ev_event ev;
    cr_assert_eq(ev_decode(x->dec, rec->data, rec->len, rec->pos, &ev), 0);
    if (ev.env.type != EV_T_CUSTOMER_PASSWORD_CHANGED)
        return 0;
    const ev_customer_password_changed *p = &ev.u.customer_password_changed;
    x->n++;
    x->customer_id = p->customer_id;
    snprintf(x->hash, sizeof x->hash, "%.*s", (int)p->password_hash.n, p->password_hash.p);
    snprintf(x->reason, sizeof x->reason, "%.*s", (int)p->reason.n, p->reason.p);
    return 0;
}

static pw_events password_events(void)
{
    pw_events x;
    memset(&x, 0, sizeof x);
    log_t *l;
    char err[256];
    uint64_t next;
    cr_assert_eq(log_open(store.uri, LOG_READ, &l, err, sizeof err), 0, "%s", err);
    x.dec = ev_dec_new();
    cr_assert_not_null(x.dec);
    cr_assert_eq(log_scan(l, 0, 0, collect_pw, &x, &next), 0);
    ev_dec_free(x.dec);
    x.dec = NULL;
    log_close(l);
    return x;
}

/* The api's log lines hold neither `a` nor `b`. */
static void log_lacks(const char *a, const char *b)
{
    char path[400];
    snprintf(path, sizeof path, "%s/api.log", store.dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert_gt(n, 0, "the api logged something");
    cr_assert_null(strstr(text, a), "the api's log holds a secret");
    cr_assert_null(strstr(text, b), "the api's log holds a secret");
}

/* A graceful stop finishes the hashes and commands in flight (a re-hash
 * too): what the log holds afterwards is all there will be. */
static void stop_api(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0, "the api stops cleanly on SIGTERM");
}

/* Logs in with an old hash's password: once the login has answered, the
 * cache gets a hash of the current setting; one event records it; logging
 * in again works and records nothing more. */
static void rehashed_once(const char *email, const char *password, const char *old_prefix,
                          uint64_t customer_id)
{
    char body[256], h[PW_HASH_MAX];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    proj_cache_reader *r = open_cache();
    cached_hash(r, email, h, sizeof h);
    cr_assert(strncmp(h, old_prefix, strlen(old_prefix)) == 0, "%s starts as %s", email,
              old_prefix);

    json_t *s = call("POST", "/api/v1/auth/login", body, NULL, 200);
    json_t *c = json_object_get(s, "customer");
    cr_assert_eq(json_integer_value(json_object_get(c, "customer_id")), (json_int_t)customer_id);
    cr_assert_str_eq(str(c, "email"), email);
    cr_assert_not_null(str(s, "token"));
    json_decref(s);

    wait_for_current_hash(r, email, h, sizeof h);
    cr_assert_not(pw_needs_rehash(h));
    cr_assert_eq(pw_verify(password, strlen(password), h), PW_OK, "the new hash is the password's");

    /* Again: the same password, against the new hash, and no second re-hash. */
    json_decref(call("POST", "/api/v1/auth/login", body, NULL, 200));
    stop_api();
    pw_events e = password_events();
    cr_assert_eq(e.n, 1, "%d customer.password_changed events, want 1", e.n);
    cr_assert_eq(e.customer_id, customer_id);
    cr_assert_str_eq(e.reason, "rehash");
    cr_assert_str_eq(e.hash, h, "the log's hash is the one the cache has");
    log_lacks(password, h + strlen(CURRENT_PREFIX));
    proj_cache_reader_close(r);

    /* And after a restart. */
    ta_server_start(&srv, &store, NULL);
    json_decref(call("POST", "/api/v1/auth/login", body, NULL, 200));
}

Test(api_accounts, a_bcrypt_hash_is_rehashed_with_scrypt_after_login)
{
    rehashed_once("old@example.com", "legacy-pass", "$2b$04$", 1);
}

Test(api_accounts, an_earlier_scrypt_setting_is_rehashed_after_login)
{
    rehashed_once("older@example.com", "older-pass", "$scrypt$ln=15,r=8,p=1$", 2);
}

/* Wrong passwords re-hash nothing, and neither does a current hash. */
Test(api_accounts, only_a_successful_login_with_an_old_hash_rehashes)
{
    json_decref(call("POST", "/api/v1/auth/login",
                     "{\"email\":\"old@example.com\",\"password\":\"legacy-pasS\"}", NULL, 401));
    json_decref(call("POST", "/api/v1/auth/login",
                     "{\"email\":\"older@example.com\",\"password\":\"older-pasS\"}", NULL, 401));
    json_decref(call("POST", "/api/v1/auth/register",
                     "{\"email\":\"new@example.com\",\"full_name\":\"New Customer\","
                     "\"password\":\"secret1\"}",
                     NULL, 201));
    json_decref(call("POST", "/api/v1/auth/login",
                     "{\"email\":\"new@example.com\",\"password\":\"secret1\"}", NULL, 200));
    stop_api();
    cr_assert_eq(password_events().n, 0, "nothing re-hashed");
    proj_cache_reader *r = open_cache();
    char h[PW_HASH_MAX];
    cached_hash(r, "old@example.com", h, sizeof h);
    cr_assert(strncmp(h, "$2b$04$", 7) == 0, "the bcrypt hash stays");
    cached_hash(r, "older@example.com", h, sizeof h);
    cr_assert_str_eq(h, OLD_SCRYPT);
    cached_hash(r, "new@example.com", h, sizeof h);
    cr_assert(strncmp(h, CURRENT_PREFIX, strlen(CURRENT_PREFIX)) == 0, "registered: %.24s", h);
    proj_cache_reader_close(r);
    ta_server_start(&srv, &store, NULL);
}

typedef struct login_try {
    const char *body;
    long status;
} login_try;

static void *login_once(void *arg)
{
    login_try *t = arg;
    ta_resp r;
    ta_request(&srv, "POST", "/api/v1/auth/login", t->body, NULL, &r);
    t->status = r.status;
    ta_resp_free(&r);
    return NULL;
}

/* Hashing runs two at a time in the api: a burst of logins waits its turn,
 * none is refused. */
Test(api_accounts, a_burst_of_logins_waits_its_turn)
{
    json_decref(call("POST", "/api/v1/auth/register",
                     "{\"email\":\"burst@example.com\",\"full_name\":\"Burst Customer\","
                     "\"password\":\"secret1\"}",
                     NULL, 201));
    enum { N = 7 };
    login_try t[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        t[i].body = i % 3 == 2 ? "{\"email\":\"burst@example.com\",\"password\":\"wrong1\"}"
                               : "{\"email\":\"burst@example.com\",\"password\":\"secret1\"}";
        t[i].status = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, login_once, &t[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        cr_assert_eq(t[i].status, i % 3 == 2 ? 401 : 200, "login %d: %ld", i, t[i].status);
}

typedef struct leaver {
    char body[256];
    const char *path;
} leaver;

static size_t discard(char *data, size_t size, size_t n, void *ud)
{
    (void)data;
    (void)ud;
    return size * n;
}

/* Sends a request over HTTP/2 (a stream the server drops, with the
 * request's memory, when the client goes) and hangs up after 50 ms, before
 * the answer. */
static void *leave_early(void *arg)
{
    leaver *l = arg;
    CURL *c = curl_easy_init();
    char url[300];
    snprintf(url, sizeof url, "%s%s", srv.base, l->path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, l->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 50L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_perform(c); /* times out: the client has left */
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return NULL;
}

/* Clients that leave while their hash waits for its turn (or runs): the
 * api hashes in memory of its own, not the gone request's (the sanitizer
 * build would see a use after free), answers the next ones, and stops
 * cleanly (teardown). */
Test(api_accounts, clients_that_leave_while_their_hash_waits)
{
    enum { N = 8 };
    leaver l[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            l[i].path = "/api/v1/auth/login";
            snprintf(l[i].body, sizeof l[i].body,
                     "{\"email\":\"old@example.com\",\"password\":\"legacy-pasS%d\"}", i);
        } else {
            l[i].path = "/api/v1/auth/register";
            snprintf(l[i].body, sizeof l[i].body,
                     "{\"email\":\"gone%d@example.com\",\"full_name\":\"Gone Client\","
                     "\"password\":\"secret%d\"}",
                     i, i);
        }
        cr_assert_eq(pthread_create(&th[i], NULL, leave_early, &l[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    json_decref(call("POST", "/api/v1/auth/login",
                     "{\"email\":\"older@example.com\",\"password\":\"older-pass\"}", NULL, 200));
}
