/* server.c - h2o on libuv, one loop per thread (see server.h). */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o/http2.h>

typedef struct srv_thread {
    struct srv *s;
    int index;
    int listen_fd;
    uv_loop_t loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_timer_t drain;
    uint64_t deadline;
    pthread_t th;
    unsigned conns; /* this loop's open connections */
    bool started;
} srv_thread;

struct srv {
    srv_config cfg;
    srv_hooks hooks;
    h2o_globalconf_t config;
    SSL_CTX *ssl;
    srv_thread *th;
    int port;
    atomic_uint conns;
    atomic_bool stopping;
    unsigned grace_ms;
};

/* A connection: the libuv handle first, so the close callback finds it. */
typedef struct srv_conn {
    uv_tcp_t tcp;
    srv_thread *t;
} srv_conn;

typedef struct srv_handler {
    h2o_handler_t super;
    struct srv *s;
} srv_handler;

typedef struct srv_filter {
    h2o_filter_t super;
    struct srv *s;
} srv_filter;

/* ------------------------------------------------------------ requests */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    srv *s = ((srv_handler *)self)->s;
    return s->hooks.on_req(s->hooks.ud, req);
}

int srv_thread_of(const h2o_req_t *req)
{
    const srv_thread *t = (const srv_thread *)((const char *)req->conn->ctx -
                                               offsetof(srv_thread, ctx));
    return t->index;
}

/* ------------------------------------------------------------ the filter */

/* Replaces a response body (h2o's own error pages) with `body`. */
typedef struct body_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} body_ostream;

static void body_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                         h2o_send_state_t state)
{
    body_ostream *o = (body_ostream *)self;
    if (!o->sent) {
        o->sent = true;
        h2o_ostream_send_next(&o->super, req, &o->body, 1, state);
    } else {
        h2o_ostream_send_next(&o->super, req, NULL, 0, state);
    }
}

static bool is_json(const h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    return i >= 0 && req->res.headers.entries[i].value.len >= 16 &&
           memcmp(req->res.headers.entries[i].value.base, "application/json", 16) == 0;
}

static const char *code_of(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 417: return "expectation_failed";
    case 431: return "headers_too_large";
    case 503: return "unavailable";
    default: return status < 500 ? "bad_request" : "internal_error";
    }
}

static void jsonify_error(h2o_req_t *req, h2o_ostream_t **slot)
{
    const char *msg = req->res.status == 413 ? "Request body too large (the limit is 100 kB)"
                      : req->res.reason       ? req->res.reason
                                              : "Error";
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"error\":\"%s\",\"code\":\"%s\"}", msg,
                     code_of(req->res.status));
    body_ostream *o = (body_ostream *)h2o_add_ostream(req, sizeof *o, slot);
    o->super.do_send = body_do_send;
    o->body = h2o_strdup(&req->pool, buf, (size_t)n);
    o->sent = false;
    req->res.content_length = (size_t)n;
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                   H2O_STRLIT("application/json; charset=utf-8"), 1);
    slot = &o->super.next;
    h2o_setup_next_ostream(req, slot);
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    srv *s = ((srv_filter *)self)->s;
    if (s->hooks.on_response)
        s->hooks.on_response(s->hooks.ud, req);
    if (req->res.status >= 400 && !is_json(req)) {
        jsonify_error(req, slot);
        return;
    }
    h2o_setup_next_ostream(req, slot);
}

/* ------------------------------------------------------------ accepting */

static void on_conn_close(uv_handle_t *h)
{
    srv_conn *c = (srv_conn *)h;
    atomic_fetch_sub(&c->t->s->conns, 1);
    c->t->conns--;
    free(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    srv_thread *t = listener->data;
    if (status != 0)
        return;
    srv_conn *c = malloc(sizeof *c);
    if (!c)
        return;
    c->t = t;
    uv_tcp_init(listener->loop, &c->tcp);
    atomic_fetch_add(&t->s->conns, 1);
    t->conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        atomic_load(&t->s->conns) > t->s->cfg.max_conns) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
    h2o_accept(&t->accept, sock);
}

/* One listening socket per thread on the same address and port. */
static int bind_listener(srv *s, int *port, char *err, size_t errlen)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)*port);
    if (inet_pton(AF_INET, s->cfg.host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "listen address '%s' is not an IPv4 address", s->cfg.host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", s->cfg.host, *port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ------------------------------------------------------------ threads */

static void on_closed(uv_handle_t *h) { (void)h; }

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

static void drain_check(uv_timer_t *tm)
{
    srv_thread *t = tm->data;
    srv *s = t->s;
    bool busy = (s->hooks.busy && s->hooks.busy(s->hooks.ud, t->index)) || t->conns > 0;
    if (!busy || uv_now(&t->loop) >= t->deadline) {
        uv_timer_stop(tm);
        uv_stop(&t->loop);
    }
}

static void on_wake(uv_async_t *a)
{
    srv_thread *t = a->data;
    if (!atomic_load(&t->s->stopping))
        return;
    /* Stop accepting; keep-alive connections close after their current
     * request; the drain timer waits for requests in flight. */
    uv_close((uv_handle_t *)&t->listener, on_closed);
    h2o_context_request_shutdown(&t->ctx);
    t->deadline = uv_now(&t->loop) + t->s->grace_ms;
    uv_timer_start(&t->drain, drain_check, 0, 10);
}

static void *thread_main(void *arg)
{
    srv_thread *t = arg;
    srv *s = t->s;
    if (s->hooks.on_thread_start)
        s->hooks.on_thread_start(s->hooks.ud, t->index, &t->ctx);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    if (s->hooks.on_thread_stop)
        s->hooks.on_thread_stop(s->hooks.ud, t->index, &t->ctx);
    /* With connections still open (clients that outlived the grace
     * period) h2o's context cannot be taken apart: the process is exiting
     * and takes it along. */
    if (t->conns == 0) {
        /* h2o 2.2 leaves the graceful-shutdown timer of HTTP/2 linked after
         * h2o_context_request_shutdown; the context cannot be disposed with
         * a timer pending. */
        if (h2o_timeout_is_linked(&t->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&t->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&t->ctx);
    }
    uv_walk(&t->loop, close_walk, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    return NULL;
}

static int thread_init(srv *s, srv_thread *t, int index, char *err, size_t errlen)
{
    t->s = s;
    t->index = index;
    uv_loop_init(&t->loop);
    h2o_context_init(&t->ctx, &t->loop, &s->config);
    t->accept.ctx = &t->ctx;
    t->accept.hosts = s->config.hosts;
    t->accept.ssl_ctx = s->ssl;
    uv_tcp_init(&t->loop, &t->listener);
    t->listener.data = t;
    if (uv_tcp_open(&t->listener, t->listen_fd) != 0) {
        snprintf(err, errlen, "cannot listen: %s", strerror(errno));
        return -1;
    }
    t->listen_fd = -1; /* the listener's now */
    if (uv_listen((uv_stream_t *)&t->listener, 1024, on_accept) != 0) {
        snprintf(err, errlen, "cannot listen: %s", strerror(errno));
        return -1;
    }
    uv_async_init(&t->loop, &t->wake, on_wake);
    t->wake.data = t;
    uv_timer_init(&t->loop, &t->drain);
    t->drain.data = t;
    return 0;
}

/* ------------------------------------------------------------ set-up */

static int setup_tls(srv *s, char *err, size_t errlen)
{
    if (!s->cfg.tls_cert && !s->cfg.tls_key)
        return 0;
    if (!s->cfg.tls_cert || !s->cfg.tls_key) {
        snprintf(err, errlen, "TLS needs both a certificate and a key file");
        return -1;
    }
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (!s->ssl || !SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION) ||
        SSL_CTX_use_certificate_chain_file(s->ssl, s->cfg.tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ssl, s->cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof e);
        snprintf(err, errlen, "TLS certificate %s or key %s: %s", s->cfg.tls_cert,
                 s->cfg.tls_key, e);
        return -1;
    }
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_COMPRESSION);
    h2o_ssl_register_alpn_protocols(s->ssl, h2o_http2_alpn_protocols);
    return 0;
}

static void setup_h2o(srv *s)
{
    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("watchstore"));
    s->config.max_request_entity_size = s->cfg.max_body;
    s->config.http1.req_timeout = s->cfg.req_timeout_ms;
    s->config.http2.idle_timeout = s->cfg.idle_timeout_ms;
    s->config.http2.graceful_shutdown_timeout = 2000;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    srv_handler *h = (srv_handler *)h2o_create_handler(path, sizeof *h);
    h->super.on_req = on_req;
    h->s = s;
    /* The filter on the fallback path too: h2o's own error responses for
     * requests it never routed go through it. */
    h2o_pathconf_t *paths[2] = {path, &host->fallback_path};
    for (int i = 0; i < 2; i++) {
        srv_filter *f = (srv_filter *)h2o_create_filter(paths[i], sizeof *f);
        f->super.on_setup_ostream = on_setup_ostream;
        f->s = s;
    }
}

static void defaults(srv_config *c)
{
    if (!c->host)
        c->host = "127.0.0.1";
    if (c->threads <= 0)
        c->threads = 1;
    if (!c->max_body)
        c->max_body = 100 * 1024;
    if (!c->max_conns)
        c->max_conns = 10000;
    if (!c->req_timeout_ms)
        c->req_timeout_ms = 10000;
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = 60000;
}

int srv_start(const srv_config *cfg, const srv_hooks *hooks, srv **out, char *err,
              size_t errlen)
{
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->hooks = *hooks;
    defaults(&s->cfg);
    s->th = calloc((size_t)s->cfg.threads, sizeof *s->th);
    if (!s->th || setup_tls(s, err, errlen) != 0)
        goto fail;
    setup_h2o(s);
    int port = s->cfg.port;
    for (int i = 0; i < s->cfg.threads; i++)
        s->th[i].listen_fd = -1;
    for (int i = 0; i < s->cfg.threads; i++)
        if ((s->th[i].listen_fd = bind_listener(s, &port, err, errlen)) < 0)
            goto fail;
    s->port = port;
    for (int i = 0; i < s->cfg.threads; i++)
        if (thread_init(s, &s->th[i], i, err, errlen) != 0)
            goto fail;
    for (int i = 0; i < s->cfg.threads; i++) {
        if (pthread_create(&s->th[i].th, NULL, thread_main, &s->th[i]) != 0) {
            snprintf(err, errlen, "cannot start a server thread");
            srv_stop(s, 0);
            srv_free(s);
            return -1;
        }
        s->th[i].started = true;
    }
    *out = s;
    return 0;
fail:
    srv_free(s);
    return -1;
}

int srv_port(const srv *s) { return s->port; }

void srv_stop(srv *s, unsigned grace_ms)
{
    if (!s || atomic_exchange(&s->stopping, true))
        return;
    s->grace_ms = grace_ms;
    for (int i = 0; i < s->cfg.threads; i++)
        if (s->th[i].started)
            uv_async_send(&s->th[i].wake);
    for (int i = 0; i < s->cfg.threads; i++)
        if (s->th[i].started) {
            pthread_join(s->th[i].th, NULL);
            s->th[i].started = false;
        }
}

void srv_free(srv *s)
{
    if (!s)
        return;
    srv_stop(s, 0);
    /* Connections still open at this point belong to a process that is
     * exiting; the loops and h2o's objects go with it. */
    for (int i = 0; s->th && i < s->cfg.threads; i++)
        if (s->th[i].listen_fd >= 0)
            close(s->th[i].listen_fd);
    if (s->config.hosts)
        h2o_config_dispose(&s->config);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    free(s->th);
    free(s);
}
