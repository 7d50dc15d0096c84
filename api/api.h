/* api.h - what every handler of the HTTP API shares: the application (its
 * configuration, the cache it reads, the writer it sends commands to, its
 * metrics) and a request's context.
 *
 * Threads: the server runs one event loop per thread; a request is handled
 * and answered on its loop's thread. The cache reader and the metrics are
 * safe from any thread; anything per loop lives in api_thread.
 */
#ifndef WS_API_H
#define WS_API_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd.h"
#include "core/event.h"
#include "metrics.h"
#include "projections/proj_cache.h"
#include "router.h"
#include "server.h"

typedef struct api_config {
    srv_config http;
    const char *log_uri;        /* the log the writer appends to */
    const char *snapshot_path;  /* the writer's state snapshots (NULL: none) */
    const char *cache_dir;      /* the projector's cache root */
    const char *email_key_file; /* the cache's e-mail index key */
    const char *cors_origins;   /* comma-separated, besides the two defaults */
    const char *jwt_key_file;   /* the server's token key (64 hex digits) */
    const char *jwt_issuer, *jwt_audience;
    unsigned access_ttl_s;      /* access tokens' lifetime (default 900) */
    const char *legacy_jwt_secret; /* the old backend's JWT_SECRET (NULL: none) */
    const char *oidc_issuer, *oidc_audience, *oidc_jwks_file; /* NULL: none */
    unsigned rate_limit;        /* requests per window per address and per user
                                   on /api/v1 (0: no limit) */
    unsigned rate_limit_auth;   /* the same for login and register */
    unsigned rate_window_s;     /* the window (default 900 s) */
    bool trust_proxy;           /* the client is X-Forwarded-For's first hop */
    bool log_requests;          /* a JSON line per request on stderr */
    /* Payments (api/payments.c); a provider without its keys answers 503. */
    const char *stripe_api_base;       /* NULL: https://api.stripe.com */
    const char *stripe_secret_key;     /* sk_...; NULL: Stripe not configured */
    const char *stripe_webhook_secret; /* whsec_...; NULL: no webhook */
    unsigned stripe_webhook_tolerance_s; /* 0: 300 */
    const char *paypal_api_base;       /* NULL: https://api-m.sandbox.paypal.com */
    const char *paypal_client_id, *paypal_client_secret; /* NULL: PayPal not configured */
} api_config;

typedef struct api_thread api_thread;

typedef struct api_app {
    api_config cfg;
    uint8_t email_key[32];
    proj_cache_reader *cache;
    cmd_bus *bus;
    struct jwt_verifier *jwt;
    uint8_t jwt_key[32];
    char dummy_hash[256]; /* logins of unknown e-mails verify against it */
    met_registry *metrics;
    struct rl_table *limits;
    api_thread *threads;
    int n_threads;
} api_app;

/* A request's context, allocated from the request's pool. */
typedef struct api_req {
    h2o_req_t *h;
    api_app *app;
    int thread;
    int route;          /* index in the route table, -1: none */
    rt_params params;
    h2o_iovec_t corr;   /* the correlation id */
    h2o_iovec_t path;   /* without the query string */
    h2o_iovec_t query;  /* after '?', or empty */
    bool who_known;     /* who is filled (auth.c) */
    struct auth_who *who;
} api_req;

typedef void (*api_handler)(api_req *r);

/* Route flags. API_NO_CREDENTIALS: the route does not look at an access
 * token, so one that came along is not checked (login, register, refresh,
 * logout: an expired cookie must not stop a refresh). */
#define API_NO_CREDENTIALS 1u
/* API_RL_EXEMPT: never rate limited (health, metrics, the chat poll,
 * refresh); API_RL_AUTH: the stricter login and register limit. */
#define API_RL_EXEMPT 2u
#define API_RL_AUTH 4u

/* The route table (api/routes.c) and its size; the metrics label of route i
 * is its pattern. */
extern const rt_route api_routes[];
extern const size_t api_n_routes;

/* A request's context for h2o request h (in its pool): what handlers get,
 * and what a later callback (a command's answer, pool work) makes again
 * from the request to answer it. */
api_req *api_req_wrap(h2o_req_t *h, api_app *app);

/* Whether a request's Origin is one the API allows (CORS, cookie auth). */
bool api_origin_allowed(const api_app *app, h2o_iovec_t origin);

/* The request's thread's memo of rendered answers (memo.h). */
struct memo *api_memo(api_req *r);

/* Opens the application (the cache, the keys) for the configuration. */
int api_app_open(const api_config *cfg, api_app **out, char *err, size_t errlen);
/* The server's hooks for this application. */
srv_hooks api_app_hooks(api_app *app);
void api_app_close(api_app *app);

#endif
