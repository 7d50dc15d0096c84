/* app.c - the application behind the server: opening what the handlers
 * share, and the two hooks every request passes:
 *   on_req: correlation id, query check, CORS preflight, routing (404/405
 *           in the API's JSON), then the route's handler;
 *   on_response (every response, h2o's own too): security headers, CORS,
 *           metrics and the access log line.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "core/jlog.h"
#include "auth.h"
#include "ratelimit.h"
#include "core/secret.h"
#include "jwt.h"
#include "offload.h"
#include "passwd.h"
#include "query.h"
#include "reply.h"
#include "rnd.h"
#include "memo.h"

struct api_thread {
    uv_timer_t release; /* thread 0: releases the cache map's pages */
    api_app *app;
    memo *memo;         /* rendered answers of this thread's loop */
    off_loop *off;      /* the loop's offloaded work (password hashes) */
};

/* What the API once read from the cache (every order it answered, say)
 * need not stay resident in its memory: twice a second the map's pages
 * are released (they stay in the page cache; core/mapmem.h). */
#define RELEASE_PAGES_MS 500

/* The route index travels to on_response in this response header, which
 * on_response removes. */
static const char ROUTE_HDR[] = "x-ws-route";

/* ------------------------------------------------------------ helpers */

static h2o_iovec_t req_header_by_name(h2o_req_t *h, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&h->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : h->headers.entries[i].value;
}

/* A client's correlation id is kept if it is short printable ASCII;
 * otherwise (or without one) a random UUID is made. */
static h2o_iovec_t correlation_id(h2o_req_t *h)
{
    h2o_iovec_t v = req_header_by_name(h, "x-correlation-id");
    bool ok = v.len > 0 && v.len <= 64;
    for (size_t i = 0; ok && i < v.len; i++)
        ok = v.base[i] > 0x20 && v.base[i] < 0x7f && v.base[i] != '"' && v.base[i] != '\\';
    if (ok)
        return v;
    uint8_t id[16];
    rnd_bytes(id, sizeof id);
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    char *s = h2o_mem_alloc_pool(&h->pool, 37);
    ev_uuid_format(id, s);
    return h2o_iovec_init(s, 36);
}

bool api_origin_allowed(const api_app *app, h2o_iovec_t origin)
{
    if (!origin.len)
        return false;
    if (h2o_memis(origin.base, origin.len, H2O_STRLIT("http://localhost:3000")) ||
        h2o_memis(origin.base, origin.len, H2O_STRLIT("https://localhost:8443")))
        return true;
    const char *p = app->cfg.cors_origins;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t && p[t - 1] == ' ')
            t--;
        if (t && h2o_memis(origin.base, origin.len, p, t))
            return true;
        p += n;
    }
    return false;
}

/* ------------------------------------------------------------ limits */

/* The client's address: the peer, or X-Forwarded-For's first hop behind
 * a trusted proxy. */
static size_t client_address(api_app *app, h2o_req_t *h, char *out, size_t cap)
{
    if (app->cfg.trust_proxy) {
        h2o_iovec_t xff = req_header_by_name(h, "x-forwarded-for");
        size_t n = 0;
        while (n < xff.len && xff.base[n] != ',')
            n++;
        while (n && xff.base[n - 1] == ' ')
            n--;
        size_t start = 0;
        while (start < n && xff.base[start] == ' ')
            start++;
        if (n > start && n - start < cap) {
            memcpy(out, xff.base + start, n - start);
            return n - start;
        }
    }
    struct sockaddr_storage sa;
    socklen_t len = h->conn->callbacks->get_peername(h->conn, (struct sockaddr *)&sa);
    out[0] = 0;
    if (len && sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, out, (socklen_t)cap);
    else if (len && sa.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, out, (socklen_t)cap);
    return strlen(out);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void limit_headers(h2o_req_t *h, const rl_result *res)
{
    char v[64];
    int n = snprintf(v, sizeof v, "%u", res->limit);
    h2o_iovec_t a = h2o_strdup(&h->pool, v, (size_t)n);
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("ratelimit-limit"), 0, NULL,
                          a.base, a.len);
    n = snprintf(v, sizeof v, "%u", res->remaining);
    a = h2o_strdup(&h->pool, v, (size_t)n);
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("ratelimit-remaining"), 0, NULL,
                          a.base, a.len);
    n = snprintf(v, sizeof v, "%u", res->reset_s);
    a = h2o_strdup(&h->pool, v, (size_t)n);
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("ratelimit-reset"), 0, NULL,
                          a.base, a.len);
}

/* Takes a token from the address's bucket and, for a signed-in user, from
 * the user's; false (and a 429) when either is empty. */
static bool within_limits(api_req *r, unsigned flags)
{
    api_app *app = r->app;
    bool auth = flags & API_RL_AUTH;
    unsigned limit = auth ? app->cfg.rate_limit_auth : app->cfg.rate_limit;
    if ((flags & API_RL_EXEMPT) || !limit || !app->limits ||
        !(r->path.len >= 7 && strncasecmp(r->path.base, "/api/v1", 7) == 0))
        return true;
    unsigned window = app->cfg.rate_window_s ? app->cfg.rate_window_s : 900;
    char key[128];
    int n = snprintf(key, sizeof key, "%s:ip:", auth ? "auth" : "api");
    n += (int)client_address(app, r->h, key + n, sizeof key - (size_t)n);
    uint64_t now = mono_ms();
    rl_result res = rl_take(app->limits, key, (size_t)n, limit, window, now);
    if (res.allowed && r->who_known && r->who->customer_id) {
        n = snprintf(key, sizeof key, "%s:user:%llu", auth ? "auth" : "api",
                     (unsigned long long)r->who->customer_id);
        rl_result ures = rl_take(app->limits, key, (size_t)n, limit, window, now);
        if (!ures.allowed || ures.remaining < res.remaining)
            res = ures;
    }
    limit_headers(r->h, &res);
    if (res.allowed)
        return true;
    char v[32];
    int k = snprintf(v, sizeof v, "%u", res.retry_after_s);
    h2o_iovec_t a = h2o_strdup(&r->h->pool, v, (size_t)k);
    h2o_add_header(&r->h->pool, &r->h->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, a.base, a.len);
    reply_error(r, 429, "rate_limited", "Too many requests; please wait and try again", NULL);
    return false;
}

/* ------------------------------------------------------------ on_req */

api_req *api_req_wrap(h2o_req_t *h, api_app *app)
{
    api_req *r = h2o_mem_alloc_pool(&h->pool, sizeof *r);
    memset(r, 0, sizeof *r);
    r->h = h;
    r->app = app;
    r->thread = srv_thread_of(h);
    r->route = -1;
    return r;
}

static void preflight(api_req *r)
{
    h2o_req_t *h = r->h;
    h2o_iovec_t origin = req_header_by_name(h, "origin");
    if (api_origin_allowed(r->app, origin)) {
        h2o_iovec_t want = req_header_by_name(h, "access-control-request-headers");
        static const char dflt[] = "Authorization, Content-Type, Idempotency-Key, X-Correlation-Id";
        h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("access-control-allow-methods"),
                              0, NULL, H2O_STRLIT("GET,HEAD,PUT,PATCH,POST,DELETE"));
        h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("access-control-allow-headers"),
                              0, NULL, want.len ? want.base : dflt,
                              want.len ? want.len : sizeof dflt - 1);
        h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("access-control-max-age"), 0,
                              NULL, H2O_STRLIT("600"));
    }
    reply_empty(r, 204);
}

static int on_req(void *ud, h2o_req_t *h)
{
    api_app *app = ud;
    api_req *r = api_req_wrap(h, app);
    size_t plen = h->query_at == SIZE_MAX ? h->path.len : h->query_at;
    r->path = h2o_iovec_init(h->path.base, plen);
    r->query = h->query_at == SIZE_MAX
                   ? h2o_iovec_init(NULL, 0)
                   : h2o_iovec_init(h->path.base + h->query_at + 1, h->path.len - h->query_at - 1);
    r->corr = correlation_id(h);
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("x-correlation-id"), 0, NULL,
                          r->corr.base, r->corr.len);
    met_in_flight(app->metrics, 1);

    if (h2o_memis(h->method.base, h->method.len, H2O_STRLIT("OPTIONS"))) {
        preflight(r);
        return 0;
    }
    if (!query_valid(r->query)) {
        reply_error(r, 400, "bad_request", "The query string is not valid UTF-8", NULL);
        return 0;
    }
    size_t i;
    char allow[128];
    rt_result m = rt_match(api_routes, api_n_routes, h->method.base, h->method.len, r->path.base,
                           r->path.len, &i, &r->params, allow, sizeof allow);
    if (m == RT_NOT_FOUND) {
        reply_error(r, 404, "not_found", "No such route", NULL);
        return 0;
    }
    if (m == RT_BAD_METHOD) {
        h2o_iovec_t a = h2o_strdup(&h->pool, allow, strlen(allow)); /* h2o keeps the pointer */
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_ALLOW, NULL, a.base, a.len);
        reply_error(r, 405, "method_not_allowed", "Method not allowed on this route", NULL);
        return 0;
    }
    r->route = (int)i;
    if (!(api_routes[i].flags & API_NO_CREDENTIALS) && !auth_check_credentials(r))
        return 0;
    if (!within_limits(r, api_routes[i].flags))
        return 0;
    char *idx = h2o_mem_alloc_pool(&h->pool, 8);
    int n = snprintf(idx, 8, "%d", r->route);
    h2o_add_header_by_str(&h->pool, &h->res.headers, ROUTE_HDR, sizeof ROUTE_HDR - 1, 0, NULL,
                          idx, (size_t)n);
    ((api_handler)api_routes[i].handler)(r);
    return 0;
}

/* ------------------------------------------------------------ on_response */

static void add(h2o_req_t *h, const char *name, size_t nlen, const char *v, size_t vlen)
{
    h2o_add_header_by_str(&h->pool, &h->res.headers, name, nlen, 0, NULL, v, vlen);
}

static void security_headers(h2o_req_t *h)
{
    add(h, H2O_STRLIT("content-security-policy"),
        H2O_STRLIT("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"));
    add(h, H2O_STRLIT("x-frame-options"), H2O_STRLIT("DENY"));
    add(h, H2O_STRLIT("x-content-type-options"), H2O_STRLIT("nosniff"));
    add(h, H2O_STRLIT("referrer-policy"), H2O_STRLIT("no-referrer"));
    if (h->scheme == &H2O_URL_SCHEME_HTTPS)
        add(h, H2O_STRLIT("strict-transport-security"),
            H2O_STRLIT("max-age=31536000; includeSubDomains"));
}

static void cors_headers(api_app *app, h2o_req_t *h)
{
    h2o_iovec_t origin = req_header_by_name(h, "origin");
    if (!api_origin_allowed(app, origin))
        return;
    add(h, H2O_STRLIT("access-control-allow-origin"), origin.base, origin.len);
    add(h, H2O_STRLIT("access-control-allow-credentials"), H2O_STRLIT("true"));
    add(h, H2O_STRLIT("access-control-expose-headers"),
        H2O_STRLIT("X-Correlation-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
                   "RateLimit-Reset"));
    add(h, H2O_STRLIT("vary"), H2O_STRLIT("Origin"));
}

/* Takes the route index out of the response headers (-1: none). */
static int take_route(h2o_req_t *h)
{
    ssize_t i = h2o_find_header_by_str(&h->res.headers, ROUTE_HDR, sizeof ROUTE_HDR - 1, -1);
    if (i < 0)
        return -1;
    int route = atoi(h->res.headers.entries[i].value.base);
    h2o_delete_header(&h->res.headers, i);
    return route;
}

static double ms_since(const struct timeval *t0)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_usec - t0->tv_usec) / 1e3;
}

static void access_log(h2o_req_t *h, int route, double ms)
{
    ssize_t ci = h2o_find_header_by_str(&h->res.headers, H2O_STRLIT("x-correlation-id"), -1);
    h2o_iovec_t corr = ci < 0 ? h2o_iovec_init("", 0) : h->res.headers.entries[ci].value;
    const char *pattern = route >= 0 ? api_routes[route].pattern : "none";
    char fields[512];
    snprintf(fields, sizeof fields,
             "\"correlation_id\":\"%.*s\",\"method\":\"%.*s\",\"route\":\"%s\","
             "\"status\":%d,\"duration_ms\":%.3f",
             (int)corr.len, corr.base, (int)(h->method.len < 16 ? h->method.len : 16),
             h->method.base, pattern, h->res.status, ms);
    jlog(stderr, h->res.status >= 500 ? "error" : "info", "request", fields);
}

static void on_response(void *ud, h2o_req_t *h)
{
    api_app *app = ud;
    int route = take_route(h);
    security_headers(h);
    cors_headers(app, h);
    double ms = ms_since(&h->timestamps.request_begin_at);
    met_request(app->metrics, route, h->method.base, h->method.len, h->res.status, ms);
    if (h2o_find_header_by_str(&h->res.headers, H2O_STRLIT("x-correlation-id"), -1) >= 0)
        met_in_flight(app->metrics, -1); /* counted in on_req */
    if (app->cfg.log_requests)
        access_log(h, route, ms);
}

/* ------------------------------------------------------------ the app */

/* The token verifier: the server's key, and the old backend's secret and
 * an OpenID Connect provider when configured. */
static int open_jwt(api_app *app, char *err, size_t errlen)
{
    const api_config *c = &app->cfg;
    if (!c->jwt_issuer)
        app->cfg.jwt_issuer = "watchstore";
    if (!c->jwt_audience)
        app->cfg.jwt_audience = "watchstore-api";
    if (secret_read_hex(c->jwt_key_file, "token key", app->jwt_key, 32, err, errlen) != 0)
        return -1;
    app->jwt = jwt_verifier_new(app->jwt_key, 32, app->cfg.jwt_issuer, app->cfg.jwt_audience);
    if (!app->jwt) {
        snprintf(err, errlen, "cannot set up token verification");
        return -1;
    }
    if (c->legacy_jwt_secret && *c->legacy_jwt_secret &&
        jwt_verifier_set_legacy(app->jwt, (const uint8_t *)c->legacy_jwt_secret,
                                strlen(c->legacy_jwt_secret)) != 0) {
        snprintf(err, errlen, "the legacy token secret is not usable");
        return -1;
    }
    if (!c->oidc_issuer || !*c->oidc_issuer)
        return 0;
    if (!c->oidc_audience || !c->oidc_jwks_file ||
        jwt_verifier_set_oidc(app->jwt, c->oidc_issuer, c->oidc_audience) != 0) {
        snprintf(err, errlen, "OpenID Connect needs an issuer, an audience and a JWKS file");
        return -1;
    }
    FILE *f = fopen(c->oidc_jwks_file, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the JWKS file %s", c->oidc_jwks_file);
        return -1;
    }
    size_t cap = 256 * 1024;
    char *jwks = malloc(cap);
    size_t n = jwks ? fread(jwks, 1, cap, f) : 0;
    fclose(f);
    int rc = jwks && jwt_verifier_set_jwks(app->jwt, jwks, n, err, errlen) == 0 ? 0 : -1;
    if (!jwks)
        snprintf(err, errlen, "out of memory");
    free(jwks);
    return rc;
}

int api_app_open(const api_config *cfg, api_app **out, char *err, size_t errlen)
{
    api_app *app = calloc(1, sizeof *app);
    if (!app) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    app->cfg = *cfg;
    app->n_threads = cfg->http.threads > 0 ? cfg->http.threads : 1;
    const char *labels[64];
    size_t n = api_n_routes < 64 ? api_n_routes : 64;
    for (size_t i = 0; i < n; i++)
        labels[i] = api_routes[i].pattern;
    if (!(app->metrics = met_new(labels, n)) || !(app->limits = rl_new(100000)) ||
        !(app->threads = calloc((size_t)app->n_threads, sizeof *app->threads))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < app->n_threads; i++)
        if (!(app->threads[i].memo = memo_new())) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    if (secret_read_hex(cfg->email_key_file, "e-mail key", app->email_key, 32, err, errlen) != 0 ||
        open_jwt(app, err, errlen) != 0)
        goto fail;
    if (pw_hash("not a password", 14, app->dummy_hash, sizeof app->dummy_hash) != 0) {
        snprintf(err, errlen, "cannot compute a password hash (scrypt)");
        goto fail;
    }
    /* The writer first: it creates the log on a first run, which the
     * projector needs before it can make the cache. */
    cmd_config cc = {0};
    cc.log_uri = cfg->log_uri;
    cc.snapshot_path = cfg->snapshot_path;
    memcpy(cc.email_key, app->email_key, 32);
    cc.n_loops = app->n_threads;
    if (cmd_bus_open(&cc, &app->bus, err, errlen) != 0)
        goto fail;
    /* The projector makes the cache; wait for it at start-up. */
    int rc = PROJ_CACHE_ENOENT;
    for (int i = 0; i < 600 && rc == PROJ_CACHE_ENOENT; i++) {
        rc = proj_cache_open_reader(cfg->cache_dir, app->email_key, &app->cache, err, errlen);
        if (rc == PROJ_CACHE_ENOENT) {
            if (i == 20)
                jlog(stderr, "info", "waiting for the projector to make the cache", NULL);
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != 0)
        goto fail;
    cmd_bus_set_cache(app->bus, app->cache);
    *out = app;
    return 0;
fail:
    api_app_close(app);
    return -1;
}

static void on_release_pages(uv_timer_t *t)
{
    api_thread *th = t->data;
    proj_cache_release_pages(th->app->cache);
}

static void on_thread_start(void *ud, int index, h2o_context_t *ctx)
{
    api_app *app = ud;
    cmd_bus_attach(app->bus, index, ctx->loop);
    if (index == 0) {
        api_thread *th = &app->threads[0];
        th->app = app;
        uv_timer_init(ctx->loop, &th->release);
        th->release.data = th;
        uv_timer_start(&th->release, on_release_pages, RELEASE_PAGES_MS, RELEASE_PAGES_MS);
    }
    /* Without it (out of memory) hashing answers 503. */
    app->threads[index].off = off_attach(ctx->loop);
}

static void on_thread_stop(void *ud, int index, h2o_context_t *ctx)
{
    api_app *app = ud;
    (void)ctx;
    cmd_bus_detach(app->bus, index);
    if (index == 0) {
        uv_timer_stop(&app->threads[0].release);
        uv_close((uv_handle_t *)&app->threads[0].release, NULL);
    }
    off_detach(app->threads[index].off);
    app->threads[index].off = NULL;
}

/* Commands in flight, and hashes still to do (a re-hash after a login
 * becomes a command when it is done). */
static bool busy(void *ud, int index)
{
    api_app *app = ud;
    return cmd_bus_busy(app->bus, index) || off_pending(app->threads[index].off) > 0;
}

srv_hooks api_app_hooks(api_app *app)
{
    srv_hooks h = {0};
    h.on_req = on_req;
    h.on_response = on_response;
    h.on_thread_start = on_thread_start;
    h.on_thread_stop = on_thread_stop;
    h.busy = busy;
    h.ud = app;
    return h;
}

memo *api_memo(api_req *r) { return r->app->threads[r->thread].memo; }

void api_app_close(api_app *app)
{
    if (!app)
        return;
    cmd_bus_close(app->bus);
    jwt_verifier_free(app->jwt);
    proj_cache_reader_close(app->cache);
    met_free(app->metrics);
    rl_free(app->limits);
    for (int i = 0; app->threads && i < app->n_threads; i++)
        memo_free(app->threads[i].memo);
    free(app->threads);
    free(app);
}
