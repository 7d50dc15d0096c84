/* main.c - the `api` program: the watch store's HTTP API on h2o.
 *
 * Reads its settings from options and WATCHSTORE_* variables, opens the
 * application, serves until SIGTERM or SIGINT, then stops gracefully: it
 * stops accepting, lets requests in flight finish, and exits 0.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/jlog.h"

static const char usage[] =
    "usage: api [--host ADDR] [--port N] [--threads N] [--log URI] [--cache DIR]\n"
    "           [--email-key-file FILE] [--tls-cert FILE --tls-key FILE] [--quiet]\n"
    "\n"
    "Serves the watch store's HTTP API (API.md) from the cache the projector\n"
    "keeps, until SIGTERM or SIGINT; then it stops accepting, finishes the\n"
    "requests in flight and exits 0.\n"
    "\n"
    "  --host ADDR      address to listen on (default: $WATCHSTORE_HOST, else 127.0.0.1)\n"
    "  --port N         port (default: $PORT, else 5001; 0: any free port)\n"
    "  --threads N      event loops (default: 1)\n"
    "  --log URI        the event log, which this process writes (default:\n"
    "                   $WATCHSTORE_LOG, else lmdb:var/log)\n"
    "  --snapshot FILE  the writer's state snapshots, for a fast start (default:\n"
    "                   $WATCHSTORE_SNAPSHOT, else var/writer.snapshot; \"\": none)\n"
    "  --cache DIR      the projector's cache (default: $WATCHSTORE_CACHE, else var/cache)\n"
    "  --email-key-file FILE  the cache's e-mail index key (default:\n"
    "                   $WATCHSTORE_EMAIL_KEY_FILE, else var/secrets/email.key)\n"
    "  --jwt-key-file FILE  the key the server signs its tokens with (64 hex\n"
    "                   digits; default: $WATCHSTORE_JWT_KEY_FILE, else\n"
    "                   var/secrets/jwt.key)\n"
    "  --tls-cert FILE, --tls-key FILE  serve HTTPS (and HTTP/2) with this PEM\n"
    "                   certificate and key\n"
    "  --quiet          no log line per request\n"
    "  --request-timeout-ms N  a client must send a request's headers and body\n"
    "                   within this time (default: 10000)\n"
    "  --max-connections N  open connections at most; more are closed at once\n"
    "                   (default: 10000)\n"
    "  --rate-limit N   requests per window per client address and per user on\n"
    "                   /api/v1 (default: $RATE_LIMIT, else 100; 0: no limit)\n"
    "  --rate-limit-auth N  the same for login and register (default:\n"
    "                   $RATE_LIMIT_AUTH, else 20)\n"
    "  --stripe-api-base URL  Stripe's API (default: $STRIPE_API_BASE, else\n"
    "                   https://api.stripe.com)\n"
    "  --stripe-webhook-tolerance S  how far a webhook signature's timestamp may\n"
    "                   be from now (default: $STRIPE_WEBHOOK_TOLERANCE_S, else 300)\n"
    "  --paypal-api-base URL  PayPal's API (default: $PAYPAL_API_BASE, else\n"
    "                   https://api-m.sandbox.paypal.com)\n"
    "  -h, --help       this text\n"
    "\n"
    "Environment: CORS_ORIGIN (comma-separated origins allowed besides\n"
    "http://localhost:3000 and https://localhost:8443); JWT_SECRET_LEGACY (the old\n"
    "backend's token secret: its tokens are accepted until they expire);\n"
    "OIDC_ISSUER, OIDC_AUDIENCE, OIDC_JWKS_FILE (an OpenID Connect provider whose\n"
    "RS256/ES256 tokens are accepted, roles from realm_access.roles);\n"
    "RATE_LIMIT_WINDOW_S (the rate limits' window, default 900); TRUST_PROXY=1\n"
    "(behind a proxy: the client is X-Forwarded-For's first hop).\n"
    "Payments, keys from the environment only (never options, which `ps` shows):\n"
    "STRIPE_SECRET_KEY (sk_...), STRIPE_WEBHOOK_SECRET (whsec_...), PAYPAL_CLIENT_ID\n"
    "and PAYPAL_CLIENT_SECRET; a provider without its keys answers 503.\n"
    "\n"
    "It prints `listening on http://ADDR:PORT` on standard output when ready;\n"
    "log lines are JSON on standard error.\n"
    "\n"
    "Example:\n"
    "  api --port 5001 --cache var/cache\n";

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* A positive number of seconds; 0 (the default) for anything else. */
static unsigned seconds(const char *s)
{
    long v = strtol(s, NULL, 10);
    return v > 0 && v < 86400 * 365 ? (unsigned)v : 0;
}

int main(int argc, char **argv)
{
    api_config cfg = {0};
    cfg.http.host = env_or("WATCHSTORE_HOST", "127.0.0.1");
    cfg.http.port = atoi(env_or("PORT", "5001"));
    cfg.log_uri = env_or("WATCHSTORE_LOG", "lmdb:var/log");
    cfg.snapshot_path = env_or("WATCHSTORE_SNAPSHOT", "var/writer.snapshot");
    cfg.cache_dir = env_or("WATCHSTORE_CACHE", "var/cache");
    cfg.email_key_file = env_or("WATCHSTORE_EMAIL_KEY_FILE", "var/secrets/email.key");
    cfg.cors_origins = getenv("CORS_ORIGIN");
    cfg.jwt_key_file = env_or("WATCHSTORE_JWT_KEY_FILE", "var/secrets/jwt.key");
    cfg.legacy_jwt_secret = getenv("JWT_SECRET_LEGACY");
    cfg.oidc_issuer = getenv("OIDC_ISSUER");
    cfg.oidc_audience = getenv("OIDC_AUDIENCE");
    cfg.oidc_jwks_file = getenv("OIDC_JWKS_FILE");
    cfg.rate_limit = (unsigned)atoi(env_or("RATE_LIMIT", "100"));
    cfg.rate_limit_auth = (unsigned)atoi(env_or("RATE_LIMIT_AUTH", "20"));
    cfg.rate_window_s = (unsigned)atoi(env_or("RATE_LIMIT_WINDOW_S", "900"));
    cfg.trust_proxy = atoi(env_or("TRUST_PROXY", "0")) != 0;
    cfg.log_requests = true;
    cfg.stripe_api_base = env_or("STRIPE_API_BASE", "https://api.stripe.com");
    cfg.stripe_secret_key = env_or("STRIPE_SECRET_KEY", NULL);
    cfg.stripe_webhook_secret = env_or("STRIPE_WEBHOOK_SECRET", NULL);
    cfg.stripe_webhook_tolerance_s = seconds(env_or("STRIPE_WEBHOOK_TOLERANCE_S", "300"));
    cfg.paypal_api_base = env_or("PAYPAL_API_BASE", "https://api-m.sandbox.paypal.com");
    cfg.paypal_client_id = env_or("PAYPAL_CLIENT_ID", NULL);
    cfg.paypal_client_secret = env_or("PAYPAL_CLIENT_SECRET", NULL);
    static const struct option lo[] = {
        {"host", required_argument, 0, 'H'},     {"port", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'},  {"cache", required_argument, 0, 'c'},
        {"log", required_argument, 0, 'l'},      {"snapshot", required_argument, 0, 's'},
        {"email-key-file", required_argument, 0, 'k'},
        {"jwt-key-file", required_argument, 0, 'j'},
        {"tls-cert", required_argument, 0, 'C'}, {"tls-key", required_argument, 0, 'K'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {"rate-limit", required_argument, 0, 'r'},
        {"request-timeout-ms", required_argument, 0, 'T'},
        {"max-connections", required_argument, 0, 'M'},
        {"rate-limit-auth", required_argument, 0, 'R'},
        {"stripe-api-base", required_argument, 0, 1001},
        {"stripe-webhook-tolerance", required_argument, 0, 1002},
        {"paypal-api-base", required_argument, 0, 1003},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': cfg.http.host = optarg; break;
        case 'p': cfg.http.port = atoi(optarg); break;
        case 't': cfg.http.threads = atoi(optarg); break;
        case 'c': cfg.cache_dir = optarg; break;
        case 'l': cfg.log_uri = optarg; break;
        case 's': cfg.snapshot_path = *optarg ? optarg : NULL; break;
        case 'k': cfg.email_key_file = optarg; break;
        case 'j': cfg.jwt_key_file = optarg; break;
        case 'C': cfg.http.tls_cert = optarg; break;
        case 'K': cfg.http.tls_key = optarg; break;
        case 'q': cfg.log_requests = false; break;
        case 'r': cfg.rate_limit = (unsigned)atoi(optarg); break;
        case 'T': cfg.http.req_timeout_ms = (unsigned)atoi(optarg); break;
        case 'M': cfg.http.max_conns = (unsigned)atoi(optarg); break;
        case 'R': cfg.rate_limit_auth = (unsigned)atoi(optarg); break;
        case 1001: cfg.stripe_api_base = optarg; break;
        case 1002: cfg.stripe_webhook_tolerance_s = seconds(optarg); break;
        case 1003: cfg.paypal_api_base = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc || cfg.http.port < 0 || cfg.http.port > 65535) {
        fputs(usage, stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The loops' threads inherit a mask without SIGTERM and SIGINT: only
     * this thread takes them, in sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: payments call out */
    char err[1024];
    api_app *app;
    if (api_app_open(&cfg, &app, err, sizeof err) != 0) {
        jlog(stderr, "error", err, NULL);
        return 1;
    }
    srv_hooks hooks = api_app_hooks(app);
    srv *s;
    if (srv_start(&cfg.http, &hooks, &s, err, sizeof err) != 0) {
        jlog(stderr, "error", err, NULL);
        api_app_close(app);
        return 1;
    }
    printf("listening on %s://%s:%d\n", cfg.http.tls_cert ? "https" : "http", cfg.http.host,
           srv_port(s));
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    jlog(stderr, "info", "stopping: finishing the requests in flight", NULL);
    srv_stop(s, 10000);
    srv_free(s);
    api_app_close(app);
    curl_global_cleanup();
    jlog(stderr, "info", "stopped", NULL);
    return 0;
}
