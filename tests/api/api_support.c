/* api_support.c - the API's integration-test harness (see api_support.h). */
#define _GNU_SOURCE
#include "api_support.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/support.h"

const uint8_t TA_JWT_KEY[32] = {0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b,
                                0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is set by ctest", name);
    return v;
}

void ta_store_init(ta_store *s)
{
    char err[512];
    memset(s, 0, sizeof *s);
    ts_tmpdir(s->dir, sizeof s->dir);
    snprintf(s->uri, sizeof s->uri, "lmdb:%s/log", s->dir);
    snprintf(s->cache, sizeof s->cache, "%s/cache", s->dir);
    snprintf(s->keyfile, sizeof s->keyfile, "%s/email.key", s->dir);
    snprintf(s->jwtkey, sizeof s->jwtkey, "%s/jwt.key", s->dir);
    FILE *kf = fopen(s->keyfile, "w");
    cr_assert_not_null(kf);
    for (int i = 0; i < 32; i++)
        fprintf(kf, "%02x", ts_email_key[i]);
    fclose(kf);
    kf = fopen(s->jwtkey, "w");
    cr_assert_not_null(kf);
    for (int i = 0; i < 32; i++)
        fprintf(kf, "%02x", TA_JWT_KEY[i]);
    fclose(kf);
    wr_config cfg = {0};
    cfg.log_uri = s->uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    cr_assert_eq(wr_open(&cfg, &s->w, err, sizeof err), 0, "%s", err);
}

static int run_wait(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void ta_project(ta_store *s)
{
    if (s->w) {
        wr_close(s->w);
        s->w = NULL;
    }
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        char a1[400], a2[400], a3[400];
        snprintf(a1, sizeof a1, "--log=%s", s->uri);
        snprintf(a2, sizeof a2, "--cache=%s", s->cache);
        snprintf(a3, sizeof a3, "--email-key-file=%s", s->keyfile);
        execl(env("PROJECTOR_BIN"), "projector", "--projection=cache", "--once", a1, a2, a3,
              (char *)NULL);
        _exit(127);
    }
    cr_assert_eq(run_wait(pid), 0, "the projector made the cache");
}

uint64_t ta_add_customer(ta_store *s, const char *email, const char *full_name, bool admin)
{
    static wr_req r;
    wr_req *p = &r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_CUSTOMER_REGISTER, 1764057700000000ull);
    r.cmd.causation = (ev_str){NULL, 0};
    r.cmd.u.reg.email = ev_str_c(email);
    r.cmd.u.reg.full_name = ev_str_c(full_name);
    cr_assert_eq(wr_process(s->w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK, "registering %s", email);
    uint64_t id = r.out.id;
    if (admin) {
        memset(&r, 0, sizeof r);
        r.cmd = ts_cmd(DEC_ROLE_SET, 1764057700000001ull);
        r.cmd.causation = (ev_str){NULL, 0};
        r.cmd.u.role.customer_id = id;
        r.cmd.u.role.role = EV_role_ADMIN;
        cr_assert_eq(wr_process(s->w, &p, 1), 0);
        cr_assert_eq(r.out.reason, DEC_OK, "making %s an admin", email);
    }
    return id;
}

void ta_store_fini(ta_store *s)
{
    if (s->w)
        wr_close(s->w);
    if (getenv("TA_KEEP"))
        fprintf(stderr, "kept %s\n", s->dir); /* to look at api.log */
    else
        ts_rmtree(s->dir);
}

static pid_t start_projector(const ta_store *s)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        freopen("/dev/null", "w", stderr);
        char a1[400], a2[400], a3[400];
        snprintf(a1, sizeof a1, "--log=%s", s->uri);
        snprintf(a2, sizeof a2, "--cache=%s", s->cache);
        snprintf(a3, sizeof a3, "--email-key-file=%s", s->keyfile);
        execl(env("PROJECTOR_BIN"), "projector", "--projection=cache", a1, a2, a3,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

void ta_server_start(ta_server *srv, const ta_store *s, const char *const *extra)
{
    srv->projector = start_projector(s);
    int out[2];
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves nothing behind */
        char logp[400];
        snprintf(logp, sizeof logp, "%s/api.log", s->dir);
        freopen(logp, "a", stderr);
        dup2(out[1], 1);
        close(out[0]);
        const char *argv[32] = {"api", "--port=0"};
        int n = 2;
        static char a1[400], a2[400], a3[400], a4[400], a5[400];
        snprintf(a5, sizeof a5, "--jwt-key-file=%s", s->jwtkey);
        argv[n++] = a5;
        snprintf(a1, sizeof a1, "--cache=%s", s->cache);
        snprintf(a2, sizeof a2, "--email-key-file=%s", s->keyfile);
        snprintf(a3, sizeof a3, "--log=%s", s->uri);
        snprintf(a4, sizeof a4, "--snapshot=%s/writer.snapshot", s->dir);
        argv[n++] = a1;
        argv[n++] = a2;
        argv[n++] = a3;
        argv[n++] = a4;
        /* Tests make many requests from one address; limits are tested
         * with their own (later arguments win). */
        argv[n++] = "--rate-limit=1000000";
        argv[n++] = "--rate-limit-auth=1000000";
        for (int i = 0; extra && extra[i] && n < 31; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        execv(env("API_BIN"), (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "the api printed where it listens");
    fclose(f);
    char *colon = strrchr(line, ':');
    cr_assert_not_null(colon, "%s", line);
    srv->pid = pid;
    srv->port = atoi(colon + 1);
    snprintf(srv->base, sizeof srv->base, "http://127.0.0.1:%d", srv->port);
}

int ta_server_stop(ta_server *srv)
{
    kill(srv->pid, SIGTERM);
    int rc = run_wait(srv->pid);
    kill(srv->projector, SIGTERM);
    int prc = run_wait(srv->projector);
    return rc ? rc : prc ? 100 + prc : 0;
}

typedef struct sink {
    char *p;
    size_t len;
} sink;

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t k = size * n;
    char *q = realloc(s->p, s->len + k + 1);
    cr_assert_not_null(q);
    memcpy(q + s->len, data, k);
    s->p = q;
    s->len += k;
    s->p[s->len] = 0;
    return k;
}

void ta_request(const ta_server *srv, const char *method, const char *path, const char *body,
                const char *const *headers, ta_resp *out)
{
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[4096];
    snprintf(url, sizeof url, "%s%s", srv->base, path);
    sink b = {NULL, 0}, h = {NULL, 0};
    struct curl_slist *hl = NULL;
    if (body)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    out->body = b.p ? b.p : strdup("");
    out->len = b.len;
    out->headers = h.p ? h.p : strdup("");
}

void ta_resp_free(ta_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

bool ta_header(const ta_resp *r, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, cap, "%.*s", (int)(len - (size_t)(v - p)), v);
            return true;
        }
        p = eol ? eol + 2 : p + len;
    }
    return false;
}

json_t *ta_call(const ta_server *srv, const char *method, const char *path, const char *body,
                const char *const *headers, long want)
{
    ta_resp r;
    ta_request(srv, method, path, body, headers, &r);
    cr_assert_eq(r.status, want, "%s %s: %ld %.300s", method, path, r.status, r.body);
    json_error_t e;
    json_t *j = r.len ? json_loads(r.body, 0, &e) : json_object();
    cr_assert_not_null(j, "%s %s: not JSON: %.300s", method, path, r.body);
    ta_resp_free(&r);
    return j;
}
