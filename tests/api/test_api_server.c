/* test_api_server.c - the server's behaviour as a deployment sees it:
 * graceful stop (commands in flight finish, nothing accepted is cut), TLS
 * with HTTP/2 by ALPN and HSTS, a slow client timed out, the connection
 * limit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_support.h"
#include "core/support.h"

static void add_watch(ta_store *s)
{
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull);
    r.cmd.causation = (ev_str){NULL, 0};
    ts_watch_id(0, r.cmd.u.watch.watch_id);
    r.cmd.u.watch.watch_name = EV_STR("Server watch");
    r.cmd.u.watch.price = 10000;
    r.cmd.u.watch.currency = EV_STR("USD");
    r.cmd.u.watch.set_stock = true;
    r.cmd.u.watch.stock = 1000000;
    wr_req *p = &r;
    cr_assert_eq(wr_process(s->w, &p, 1), 0);
}

typedef struct poster {
    const ta_server *srv;
    long status;   /* 0: could not connect */
    long order_id;
} poster;

static void *post_orders(void *arg)
{
    poster *p = arg;
    char id[37], body[256];
    uint8_t raw[16];
    ts_watch_id(0, raw);
    ev_uuid_format(raw, id);
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":1,\"unit_price\":\"100.00\"}]}", id);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/api/v1/orders", p->srv->base);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->status);
    else
        p->status = rc == CURLE_COULDNT_CONNECT ? 0 : -(long)rc;
    fclose(sink);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

Test(api_server, sigterm_lets_commands_in_flight_finish, .timeout = 120)
{
    ta_store s;
    ta_server srv;
    ta_store_init(&s);
    add_watch(&s);
    ta_project(&s);
    ta_server_start(&srv, &s, NULL);
    /* With the projector paused, every order waits in the API for the
     * cache (read-your-writes): all of them are in flight at the SIGTERM. */
    kill(srv.projector, SIGSTOP);
    enum { N = 16 };
    pthread_t th[N];
    poster p[N];
    for (int i = 0; i < N; i++) {
        p[i] = (poster){&srv, -1, 0};
        pthread_create(&th[i], NULL, post_orders, &p[i]);
    }
    usleep(500000);
    kill(srv.pid, SIGTERM);
    int ok = 0;
    char seen[512] = "";
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += p[i].status == 201;
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %ld", p[i].status);
    }
    int st;
    cr_assert_eq(waitpid(srv.pid, &st, 0), srv.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit 0 after SIGTERM (status %d)", st);
    kill(srv.projector, SIGCONT);
    kill(srv.projector, SIGTERM);
    waitpid(srv.projector, &st, 0);
    cr_assert_eq(ok, N, "every command in flight was answered 201:%s", seen);
    /* And every one is in the log: order.placed and stock.adjusted each. */
    char err[256];
    log_t *log;
    cr_assert_eq(log_open(s.uri, LOG_READ, &log, err, sizeof err), 0, "%s", err);
    uint64_t end;
    log_end(log, &end);
    log_close(log);
    cr_assert_eq(end, 1 + 2 * (uint64_t)N);
    ta_store_fini(&s);
}

static size_t discard(char *p, size_t a, size_t b, void *ud)
{
    (void)p;
    (void)ud;
    return a * b;
}

static size_t keep_header(char *p, size_t a, size_t b, void *ud)
{
    if (strncasecmp(p, "strict-transport-security:", 26) == 0)
        *(int *)ud = 1;
    return a * b;
}

Test(api_server, tls_with_http2_and_hsts, .timeout = 120)
{
    ta_store s;
    ta_server srv;
    ta_store_init(&s);
    ta_project(&s);
    char cmd[1024], cert[400], key[400];
    snprintf(cert, sizeof cert, "%s/cert.pem", s.dir);
    snprintf(key, sizeof key, "%s/key.pem", s.dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -keyout %s -out %s 2>/dev/null",
             key, cert);
    cr_assert_eq(system(cmd), 0, "a self-signed certificate");
    char a1[450], a2[450];
    snprintf(a1, sizeof a1, "--tls-cert=%s", cert);
    snprintf(a2, sizeof a2, "--tls-key=%s", key);
    const char *extra[] = {a1, a2, NULL};
    ta_server_start(&srv, &s, extra);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/health", srv.port);
    int hsts = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, keep_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hsts);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0, version = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    curl_easy_cleanup(c);
    cr_assert_eq(status, 200);
    cr_assert_eq(version, CURL_HTTP_VERSION_2_0, "HTTP/2 by ALPN (got %ld)", version);
    cr_assert(hsts, "Strict-Transport-Security over TLS");
    cr_assert_eq(ta_server_stop(&srv), 0);
    ta_store_fini(&s);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

Test(api_server, a_slow_client_is_timed_out_and_connections_are_limited, .timeout = 120)
{
    ta_store s;
    ta_server srv;
    ta_store_init(&s);
    ta_project(&s);
    const char *extra[] = {"--request-timeout-ms=500", "--max-connections=3", NULL};
    ta_server_start(&srv, &s, extra);

    /* Half a request, then nothing: the server closes the connection. */
    int fd = connect_to(srv.port);
    const char part[] = "GET /health HTTP/1.1\r\nHost: x\r\n";
    cr_assert_eq(write(fd, part, sizeof part - 1), (ssize_t)(sizeof part - 1));
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
    }
    cr_assert_eq(n, 0, "closed by the server within its timeout");
    close(fd);
    usleep(200000); /* the server counts it closed on its next loop turn */

    /* Three idle connections fill the limit; a fourth is closed at once. */
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = connect_to(srv.port);
    usleep(100000);
    int extra_fd = connect_to(srv.port);
    setsockopt(extra_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!write(extra_fd, req, sizeof req - 1);
    n = read(extra_fd, buf, sizeof buf);
    cr_assert_leq(n, 0, "over the limit: closed without an answer (%zd: %.*s)", n, (int)(n > 0 ? n : 0), buf);
    close(extra_fd);
    for (int i = 0; i < 3; i++)
        close(held[i]);
    usleep(200000);
    ta_resp r;
    ta_request(&srv, "GET", "/health", NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "served again once connections closed");
    ta_resp_free(&r);
    cr_assert_eq(ta_server_stop(&srv), 0);
    ta_store_fini(&s);
}
