/* server.h - the HTTP server: h2o on libuv, one event loop per thread.
 *
 * Owns: the listening sockets (one per thread, SO_REUSEPORT, so the kernel
 * spreads connections), TLS (OpenSSL, HTTP/2 by ALPN) when a certificate is
 * configured, h2o's configuration (body size limit, request and idle
 * timeouts), the connection limit, the output filter every response passes
 * through, and graceful shutdown. What a request means is the application's
 * business (srv_hooks).
 *
 * Every response passes the filter, also those h2o makes itself (a body over
 * the limit, a malformed request): it calls on_response (headers, metrics,
 * the access log), and turns any error response that is not JSON into the
 * API's JSON error shape, so a client never sees a text or HTML page.
 */
#ifndef WS_SERVER_H
#define WS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

typedef struct srv_config {
    const char *host;        /* address to bind (default 127.0.0.1) */
    int port;                /* 0: any free port (see srv_port) */
    int threads;             /* event loops (default 1) */
    const char *tls_cert;    /* PEM files; both NULL: plain HTTP */
    const char *tls_key;
    size_t max_body;         /* bytes (default 100 kB); larger gets 413 */
    unsigned max_conns;      /* per server (default 10,000); more are closed at once */
    unsigned req_timeout_ms; /* a request's headers and body (default 10 s) */
    unsigned idle_timeout_ms;/* an idle connection (default 60 s) */
} srv_config;

typedef struct srv_hooks {
    /* A request (on its loop's thread). Respond now or later (on the same
     * thread); return 0. */
    int (*on_req)(void *ud, h2o_req_t *req);
    /* Just before a response's headers go out (any response). */
    void (*on_response)(void *ud, h2o_req_t *req);
    /* On each loop's thread, before it serves and after it stopped. */
    void (*on_thread_start)(void *ud, int index, h2o_context_t *ctx);
    void (*on_thread_stop)(void *ud, int index, h2o_context_t *ctx);
    /* Graceful shutdown waits while this says requests are still in
     * flight on thread `index` (NULL: never). */
    bool (*busy)(void *ud, int index);
    void *ud;
} srv_hooks;

typedef struct srv srv;

/* Binds, starts the loops' threads and serves. 0, or -1 with a sentence. */
int srv_start(const srv_config *cfg, const srv_hooks *hooks, srv **out, char *err,
              size_t errlen);
/* The port bound (when the configuration asked for 0). */
int srv_port(const srv *s);
/* The thread (0..threads-1) a request is served on. */
int srv_thread_of(const h2o_req_t *req);
/* Graceful stop: stops accepting, lets requests in flight finish (at most
 * `grace_ms`), closes the connections, joins the threads. */
void srv_stop(srv *s, unsigned grace_ms);
void srv_free(srv *s);

#endif
