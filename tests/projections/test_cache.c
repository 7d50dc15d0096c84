/* test_cache.c - the LMDB cache projection (projections/proj_cache.h).
 *
 * Events come from the real deciders through the real writer (core/writer.h)
 * into a temporary log, and are fed to the cache sink by a small local loop
 * (log_scan + ev_decode + begin/apply/commit), so the cache sees exactly
 * what production appends. In-process reads use a reader sharing the
 * writer's environment (LMDB allows one environment per process and path);
 * the cross-process tests fork helpers that open their own reader, report
 * through a pipe and leave with _exit(); every assertion runs in the test's
 * own process. The runner's reading ahead on a second thread
 * (projections/proj.c) is tested here too, with the cache as its sink.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/writer.h"
#include "projections/cache_rebuild.h"
#include "projections/proj_cache.h"
#include "core/support.h"

/* 2026-02-18T05:45:06.123456Z */
#define T0 1771393506123456ull
#define SEC 1000000ull

/* ------------------------------------------------------------ utilities */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool str_is(ev_str s, const char *c)
{
    if (!c)
        return s.p == NULL;
    return s.p && s.n == strlen(c) && memcmp(s.p, c, s.n) == 0;
}

/* A NUL-terminated copy of an ev_str for messages (static, one at a time). */
static const char *cs(ev_str s)
{
    static char buf[8192];
    if (!s.p)
        return "(null)";
    size_t n = s.n < sizeof buf - 1 ? s.n : sizeof buf - 1;
    memcpy(buf, s.p, n);
    buf[n] = 0;
    return buf;
}

static void wid(int i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x42;
    id[15] = (uint8_t)i;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms; -1 on EOF, error or timeout. */
static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    char *c = p;
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    while (n) {
        int64_t left = (deadline - mono_ns()) / 1000000;
        if (left <= 0)
            return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static pid_t fork_helper(void)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(99);
    }
    return pid;
}

static int reap(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (mono_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(5);
    }
}

/* -------------------------------------------------------------- fixture */

typedef struct fx {
    char dir[256];
    char log_uri[300];
    char cache[300];
    wr_writer *w;
    proj_sink sink;
    proj_cache_reader *r;
    ev_dec *dec;
    ev_buf buf;
} fx;

static void cache_open(fx *f)
{
    char err[512];
    int rc = proj_cache_open_writer(f->cache, ts_email_key, &f->sink, err, sizeof err);
    cr_assert_eq(rc, 0, "open writer: %s", err);
    rc = proj_cache_writer_reader(&f->sink, &f->r, err, sizeof err);
    cr_assert_eq(rc, 0, "writer reader: %s", err);
}

static void cache_close(fx *f)
{
    proj_cache_reader_close(f->r);
    f->r = NULL;
    proj_cache_close(&f->sink);
}

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    ts_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->log_uri, sizeof f->log_uri, "lmdb:%s/log", f->dir);
    snprintf(f->cache, sizeof f->cache, "%s/cache", f->dir);
    wr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log_uri = f->log_uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    char err[512];
    int rc = wr_open(&cfg, &f->w, err, sizeof err);
    cr_assert_eq(rc, 0, "wr_open: %s", err);
    f->dec = ev_dec_new();
    cr_assert_not_null(f->dec);
    cache_open(f);
}

static void fx_fini(fx *f)
{
    if (f->sink.ctx)
        cache_close(f);
    wr_close(f->w);
    ev_dec_free(f->dec);
    ev_buf_free(&f->buf);
    ts_rmtree(f->dir);
}

/* ------------------------------------------------ feeding the cache sink */

typedef struct feed_ctx {
    proj_sink *s;
    ev_dec *dec;
    int rc;
    uint64_t n;
    uint64_t types; /* bit per event type seen */
} feed_ctx;

static int feed_cb(void *ud, const log_rec *rec)
{
    feed_ctx *c = ud;
    ev_event ev;
    int rc = ev_decode(c->dec, rec->data, rec->len, rec->pos, &ev);
    if (rc)
        return c->rc = 1000 + rc;
    c->types |= 1ull << ev.env.type;
    c->n++;
    if ((rc = c->s->ops->apply(c->s->ctx, &ev)) != 0)
        return c->rc = rc;
    return 0;
}

/* Applies at most `max` events (0: all) from the sink's position in one
 * batch; `commit` false aborts it instead. Returns the events applied. */
static uint64_t feed_batch(proj_sink *s, log_t *log, ev_dec *dec, size_t max, bool commit,
                           uint64_t *types)
{
    uint64_t from = 0, stored = 0, next = 0;
    cr_assert_eq(s->ops->next_pos(s->ctx, &stored), 0, "%s", s->ops->errmsg(s->ctx));
    cr_assert_eq(s->ops->begin(s->ctx, &from), 0, "%s", s->ops->errmsg(s->ctx));
    cr_assert_eq(from, stored, "begin and next_pos disagree");
    feed_ctx c = {s, dec, 0, 0, 0};
    int rc = log_scan(log, from, max, feed_cb, &c, &next);
    cr_assert_eq(rc, 0, "scan/apply failed: %d (%s)", rc, s->ops->errmsg(s->ctx));
    if (types)
        *types |= c.types;
    if (!commit) {
        s->ops->abort(s->ctx);
        return c.n;
    }
    if (c.n == 0) {
        s->ops->abort(s->ctx);
        return 0;
    }
    rc = s->ops->commit(s->ctx, next);
    cr_assert_eq(rc, 0, "commit: %s", s->ops->errmsg(s->ctx));
    return c.n;
}

/* Feeds everything, `batch` events per commit. Returns the number of batches. */
static uint64_t feed_all(proj_sink *s, log_t *log, ev_dec *dec, size_t batch, uint64_t *types)
{
    uint64_t batches = 0;
    while (feed_batch(s, log, dec, batch, true, types) > 0)
        batches++;
    return batches;
}

static void sync_cache(fx *f) { feed_all(&f->sink, wr_log(f->w), f->dec, 0, NULL); }

/* ----------------------------------------------------------- commands */

static wr_req *req_new(dec_kind kind, uint64_t now)
{
    wr_req *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->cmd = ts_cmd(kind, now);
    return r;
}

/* Runs one command; it must be accepted. Returns the id it concerned. */
static uint64_t run(fx *f, wr_req *r)
{
    wr_req *p = r;
    cr_assert_eq(wr_process(f->w, &p, 1), 0);
    cr_assert_eq(r->err, 0);
    cr_assert_eq(r->out.reason, DEC_OK, "command %d refused: %s (%s)", r->cmd.kind,
                 dec_reason_code(r->out.reason), r->out.message ? r->out.message : "");
    uint64_t id = r->out.id;
    free(r);
    return id;
}

static void add_watch(fx *f, int i, const char *name, const char *brand, const char *model,
                      const char *desc, int64_t price, int64_t stock, const char *image,
                      const char *cat, uint64_t now)
{
    wr_req *r = req_new(DEC_WATCH_ADD, now);
    dec_watch_fields *w = &r->cmd.u.watch;
    wid(i, w->watch_id);
    w->watch_name = ev_str_c(name);
    w->brand = ev_str_c(brand);
    w->model_code = ev_str_c(model);
    w->description = ev_str_c(desc);
    w->image_url = ev_str_c(image);
    w->category = ev_str_c(cat);
    w->price = price;
    w->currency = EV_STR("USD");
    w->set_stock = true;
    w->stock = stock;
    run(f, r);
}

static void update_watch(fx *f, int i, uint32_t changed, const char *name, const char *brand,
                         int64_t price, const char *cat, uint64_t now)
{
    wr_req *r = req_new(DEC_WATCH_UPDATE, now);
    dec_watch_fields *w = &r->cmd.u.watch;
    wid(i, w->watch_id);
    w->changed = changed;
    w->watch_name = ev_str_c(name);
    w->brand = ev_str_c(brand);
    w->price = price;
    w->category = ev_str_c(cat);
    run(f, r);
}

static void set_stock(fx *f, int i, int64_t qty, uint64_t now)
{
    wr_req *r = req_new(DEC_STOCK_SET, now);
    wid(i, r->cmd.u.stock.watch_id);
    r->cmd.u.stock.quantity = qty;
    run(f, r);
}

static uint64_t register_customer(fx *f, const char *email, const char *name, const char *hash,
                                  uint64_t now)
{
    wr_req *r = req_new(DEC_CUSTOMER_REGISTER, now);
    r->cmd.actor = EV_STR("guest");
    r->cmd.actor_system = false;
    r->cmd.u.reg.email = ev_str_c(email);
    r->cmd.u.reg.full_name = ev_str_c(name);
    r->cmd.u.reg.password_hash = ev_str_c(hash);
    r->cmd.u.reg.phone = EV_STR("+1 555 0100");
    return run(f, r);
}

static void set_role(fx *f, uint64_t cid, uint8_t role, uint64_t now)
{
    wr_req *r = req_new(DEC_ROLE_SET, now);
    r->cmd.u.role.customer_id = cid;
    r->cmd.u.role.role = role;
    run(f, r);
}

/* Lines: watch numbers and quantities. cid 0: a guest order. */
static uint64_t place_order(fx *f, uint64_t cid, const int *watches, const int64_t *qty, int n,
                            const char *guest_token, const char *ship, uint64_t now)
{
    dec_line_in lines[EV_MAX_LINES];
    memset(lines, 0, sizeof lines);
    for (int i = 0; i < n; i++) {
        wid(watches[i], lines[i].watch_id);
        lines[i].quantity = qty[i];
    }
    wr_req *r = req_new(DEC_ORDER_PLACE, now);
    r->cmd.actor_system = false;
    r->cmd.actor_customer = cid;
    r->cmd.actor = cid ? EV_STR("customer") : EV_STR("guest");
    r->cmd.u.order.lines = lines;
    r->cmd.u.order.n_lines = (uint32_t)n;
    r->cmd.u.order.shipping_address = ev_str_c(ship);
    r->cmd.u.order.guest_token_hash = ev_str_c(guest_token);
    return run(f, r);
}

static void set_status(fx *f, uint64_t oid, uint8_t status, uint64_t now)
{
    wr_req *r = req_new(DEC_ORDER_SET_STATUS, now);
    r->cmd.u.status.order_id = oid;
    r->cmd.u.status.status = status;
    run(f, r);
}

static void cancel_order(fx *f, uint64_t oid, uint64_t now)
{
    wr_req *r = req_new(DEC_ORDER_CANCEL, now);
    r->cmd.u.status.order_id = oid;
    r->cmd.u.status.reason = EV_STR("customer asked");
    run(f, r);
}

static void pay(fx *f, dec_kind kind, uint64_t oid, const char *intent, const char *event_id,
                int64_t amount, uint64_t now)
{
    wr_req *r = req_new(kind, now);
    r->cmd.u.pay.order_id = oid;
    r->cmd.u.pay.provider = EV_STR("stripe");
    r->cmd.u.pay.intent_id = ev_str_c(intent);
    r->cmd.u.pay.provider_event_id = ev_str_c(event_id);
    r->cmd.u.pay.amount = amount;
    if (kind == DEC_PAYMENT_FAILED)
        r->cmd.u.pay.reason = EV_STR("card_declined");
    run(f, r);
}

static void token_issue(fx *f, uint64_t cid, const char *hash, const char *replaces, uint64_t now)
{
    wr_req *r = req_new(DEC_TOKEN_ISSUE, now);
    r->cmd.u.token.customer_id = cid;
    r->cmd.u.token.token_hash = ev_str_c(hash);
    r->cmd.u.token.expires_at = 1769817600;
    r->cmd.u.token.replaces = ev_str_c(replaces);
    run(f, r);
}

static void token_revoke(fx *f, const char *hash, const char *reason, uint64_t now)
{
    wr_req *r = req_new(DEC_TOKEN_REVOKE, now);
    r->cmd.u.token.token_hash = ev_str_c(hash);
    r->cmd.u.token.reason = ev_str_c(reason);
    run(f, r);
}

static void password_set(fx *f, uint64_t cid, const char *hash, uint64_t now)
{
    wr_req *r = req_new(DEC_PASSWORD_SET, now);
    r->cmd.actor_system = false;
    r->cmd.actor_customer = cid;
    r->cmd.actor = EV_STR("customer");
    r->cmd.u.password.customer_id = cid;
    r->cmd.u.password.password_hash = ev_str_c(hash);
    r->cmd.u.password.reason = EV_STR("rehash");
    run(f, r);
}

static const char TOK1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char TOK2[] = "2222222222222222222222222222222222222222222222222222222222222222";
static const char TOK3[] = "3333333333333333333333333333333333333333333333333333333333333333";
static const char GUEST[] = "abababababababababababababababababababababababababababababababab";

/* The store's story: every event type of the catalogue at least once.
 * Watches 1 and 2, customers 1 (alice) and 2 (bob, made admin), orders 1
 * (alice: paid, shipped), 2 (alice: cancelled), 3 (guest: failed and
 * mismatched payments), tokens 1 (rotated into 2) and 3 (logged out);
 * alice's old scrypt hash re-hashed after a login. */
#define OLD_HASH "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA"
#define NEW_HASH "$scrypt$ln=13,r=8,p=10$bmV3c2FsdA$bmV3aGFzaA"

static void story(fx *f)
{
    add_watch(f, 1, "Prospex", "Seiko", "SRPD21", "Diver's \"200m\"\nwatch", 39550, 10,
              "https://img.example/a.jpg", "diver", T0);
    add_watch(f, 2, "Alpinist", "Seiko", NULL, NULL, 72000, 5, NULL, NULL, T0 + 1 * SEC);
    uint64_t alice = register_customer(f, "  Alice@Example.COM ", "Alice Doe", OLD_HASH,
                                       T0 + 2 * SEC);
    cr_assert_eq(alice, 1);
    uint64_t bob = register_customer(f, "bob@example.com", "Bob Roe", NULL, T0 + 2 * SEC + 500);
    cr_assert_eq(bob, 2);
    set_role(f, bob, EV_role_ADMIN, T0 + 3 * SEC);
    int w12[2] = {1, 2};
    int64_t q21[2] = {2, 1}, q1[1] = {1};
    cr_assert_eq(place_order(f, alice, w12, q21, 2, NULL, "1 Main St", T0 + 4 * SEC), 1);
    pay(f, DEC_PAYMENT_INTENT, 1, "pi_123", NULL, 0, T0 + 5 * SEC);
    pay(f, DEC_PAYMENT_SUCCEEDED, 1, "pi_123", "evt_1", 151100, T0 + 6 * SEC);
    set_status(f, 1, EV_order_status_SHIPPED, T0 + 7 * SEC);
    cr_assert_eq(place_order(f, alice, w12, q1, 1, NULL, NULL, T0 + 8 * SEC), 2);
    cancel_order(f, 2, T0 + 9 * SEC);
    cr_assert_eq(place_order(f, 0, w12 + 1, q1, 1, GUEST, "2 Side St", T0 + 10 * SEC), 3);
    pay(f, DEC_PAYMENT_FAILED, 3, "pi_3", "evt_f", 0, T0 + 11 * SEC);
    pay(f, DEC_PAYMENT_SUCCEEDED, 3, "pi_3", "evt_m", 1, T0 + 12 * SEC); /* mismatched */
    update_watch(f, 1, EV_WF_NAME, "Prospex II", NULL, 0, NULL, T0 + 13 * SEC);
    token_issue(f, alice, TOK1, NULL, T0 + 14 * SEC);
    token_issue(f, alice, TOK2, TOK1, T0 + 15 * SEC);
    token_revoke(f, TOK1, "rotated", T0 + 15 * SEC);
    token_issue(f, bob, TOK3, NULL, T0 + 16 * SEC);
    token_revoke(f, TOK3, "logout", T0 + 17 * SEC);
    password_set(f, alice, NEW_HASH, T0 + 18 * SEC);
}

/* ---------------------------------------------------------------- tests */

Test(cache, watch_json_is_exactly_the_api_shape)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 7, "Seamaster", "", NULL, "", 39500, 12, NULL, NULL, T0);
    add_watch(&f, 8, "Ünïcode \"Quote\"\\", "Omega", "310.30", "line1\nline2\ttab\x01",
              123456789, 0, "https://img.example/8.jpg", "luxury", T0 + 1500);
    sync_cache(&f);

    uint8_t id[16];
    proj_cache_watch w;
    wid(7, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    const char *want7 =
        "{\"watch_id\":\"42000000-0000-0000-0000-000000000007\",\"watch_name\":\"Seamaster\","
        "\"brand\":null,\"model_code\":null,\"description\":null,\"price\":\"395.00\","
        "\"stock_quantity\":12,\"image_url\":null,\"category\":null,"
        "\"created_at\":\"2026-02-18T05:45:06.123Z\",\"updated_at\":\"2026-02-18T05:45:06.123Z\"}";
    cr_assert(str_is(w.json, want7), "watch 7 JSON:\n%s\nwanted\n%s", cs(w.json), want7);
    cr_assert_eq(w.price, 39500);
    cr_assert_eq(w.stock, 12);
    cr_assert_eq(w.category_code, PROJ_CACHE_CAT_NONE);
    cr_assert_str_eq(w.currency, "USD");

    wid(8, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    const char *want8 =
        "{\"watch_id\":\"42000000-0000-0000-0000-000000000008\",\"watch_name\":\"Ünïcode "
        "\\\"Quote\\\"\\\\\",\"brand\":\"Omega\",\"model_code\":\"310.30\",\"description\":"
        "\"line1\\u000aline2\\u0009tab\\u0001\",\"price\":\"1234567.89\",\"stock_quantity\":0,"
        "\"image_url\":\"https://img.example/8.jpg\",\"category\":\"luxury\","
        "\"created_at\":\"2026-02-18T05:45:06.124Z\",\"updated_at\":\"2026-02-18T05:45:06.124Z\"}";
    cr_assert(str_is(w.json, want8), "watch 8 JSON:\n%s\nwanted\n%s", cs(w.json), want8);
    cr_assert(str_is(w.name_lc, "ünïcode \"quote\"\\"), "folded name %s", cs(w.name_lc));
    cr_assert_eq(w.category_code, PROJ_CACHE_CAT_LUXURY);

    /* watch.updated changes only the fields in its mask, and updated_at. */
    update_watch(&f, 7, EV_WF_PRICE | EV_WF_CATEGORY | EV_WF_BRAND, "ignored", "Omega", 41050,
                 "diver", T0 + 60 * SEC);
    set_stock(&f, 7, 3, T0 + 120 * SEC + 7000);
    sync_cache(&f);
    wid(7, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    const char *want7b =
        "{\"watch_id\":\"42000000-0000-0000-0000-000000000007\",\"watch_name\":\"Seamaster\","
        "\"brand\":\"Omega\",\"model_code\":null,\"description\":null,\"price\":\"410.50\","
        "\"stock_quantity\":3,\"image_url\":null,\"category\":\"diver\","
        "\"created_at\":\"2026-02-18T05:45:06.123Z\",\"updated_at\":\"2026-02-18T05:47:06.130Z\"}";
    cr_assert(str_is(w.json, want7b), "watch 7 after update:\n%s\nwanted\n%s", cs(w.json),
              want7b);

    wid(9, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), PROJ_CACHE_ENOTFOUND);
    cr_assert_eq(proj_cache_inconsistent(&f.sink), 0);
    fx_fini(&f);
}

typedef struct ids {
    int v[64];
    int n;
} ids;

static int collect_order(void *ud, const proj_cache_order *o)
{
    ids *x = ud;
    x->v[x->n++] = (int)o->order_id;
    return 0;
}

Test(cache, every_event_type_lands_in_the_cache)
{
    fx f;
    fx_init(&f);
    story(&f);
    uint64_t types = 0;
    feed_all(&f.sink, wr_log(f.w), f.dec, 0, &types);
    for (int t = 1; t < EV_T_COUNT; t++)
        cr_assert(types & (1ull << t), "the story has no %s event", ev_type_name((ev_type)t));
    cr_assert_eq(proj_cache_inconsistent(&f.sink), 0);

    /* Watches: the rename and stock changes of every order and the cancel. */
    uint8_t id[16];
    proj_cache_watch w;
    wid(1, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    cr_assert(str_is(w.watch_name, "Prospex II"));
    cr_assert_eq(w.stock, 10 - 2 - 1 + 1, "stock %" PRId64, w.stock);
    cr_assert_eq(w.updated_us, T0 + 13 * SEC);
    wid(2, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    cr_assert_eq(w.stock, 5 - 1 - 1);

    /* Order 1: paid, then shipped; items as placed (name before the rename). */
    proj_cache_order o;
    cr_assert_eq(proj_cache_get_order(f.r, 1, &f.buf, &o), 0);
    const char *want1 =
        "{\"order_id\":1,\"customer_id\":1,\"order_date\":\"2026-02-18T05:45:10.123Z\","
        "\"total_amount\":\"1511.00\",\"status\":\"shipped\",\"shipping_address\":\"1 Main St\","
        "\"payment_intent_id\":\"pi_123\",\"invoice_url\":null}";
    cr_assert(str_is(o.json, want1), "order 1:\n%s\nwanted\n%s", cs(o.json), want1);
    const char *items1 =
        "[{\"item_id\":100,\"order_id\":1,\"watch_id\":\"42000000-0000-0000-0000-000000000001\","
        "\"quantity\":2,\"unit_price\":\"395.50\",\"subtotal\":\"791.00\",\"watch_name\":"
        "\"Prospex\",\"image_url\":\"https://img.example/a.jpg\"},"
        "{\"item_id\":101,\"order_id\":1,\"watch_id\":\"42000000-0000-0000-0000-000000000002\","
        "\"quantity\":1,\"unit_price\":\"720.00\",\"subtotal\":\"720.00\",\"watch_name\":"
        "\"Alpinist\",\"image_url\":null}]";
    cr_assert(str_is(o.items_json, items1), "items:\n%s\nwanted\n%s", cs(o.items_json), items1);
    const char *my1 = "[{\"watch_name\":\"Prospex\",\"quantity\":2,\"unit_price\":395.5,"
                      "\"subtotal\":791},{\"watch_name\":\"Alpinist\",\"quantity\":1,"
                      "\"unit_price\":720,\"subtotal\":720}]";
    cr_assert(str_is(o.my_items_json, my1), "my items:\n%s\nwanted\n%s", cs(o.my_items_json),
              my1);
    cr_assert_eq(o.status, EV_order_status_SHIPPED);
    cr_assert_eq(o.payment, PROJ_CACHE_PAY_SUCCEEDED);
    cr_assert_eq(o.total, 151100);
    cr_assert_null(o.guest_token_hash.p);
    cr_assert(str_is(o.payment_provider, "stripe"));
    cr_assert_eq(o.n_lines, 2);
    proj_cache_line l;
    cr_assert_eq(proj_cache_order_line(&o, 1, &l), 0);
    cr_assert_eq(l.item_id, 101);
    cr_assert_eq(l.quantity, 1);
    cr_assert_eq(l.unit_price, 72000);
    cr_assert(str_is(l.watch_name, "Alpinist") && str_is(l.brand, "Seiko") && !l.image_url.p);
    cr_assert_eq(proj_cache_order_line(&o, 0, &l), 0);
    cr_assert_eq(l.item_id, 100);
    cr_assert_eq(l.subtotal, 79100);
    cr_assert_eq(proj_cache_order_line(&o, 2, &l), PROJ_CACHE_ENOTFOUND);
    ev_buf out = {0};
    cr_assert_eq(proj_cache_order_render(&o, true, &out), 0);
    char want_render[2048];
    snprintf(want_render, sizeof want_render, "%.*s,\"items\":%s}", (int)strlen(want1) - 1,
             want1, my1);
    cr_assert(str_is((ev_str){(const char *)out.p, (uint32_t)out.len}, want_render),
              "render: %.*s", (int)out.len, (const char *)out.p);
    ev_buf_free(&out);

    /* Order 2: cancelled. */
    cr_assert_eq(proj_cache_get_order(f.r, 2, &f.buf, &o), 0);
    const char *want2 =
        "{\"order_id\":2,\"customer_id\":1,\"order_date\":\"2026-02-18T05:45:14.123Z\","
        "\"total_amount\":\"395.50\",\"status\":\"cancelled\",\"shipping_address\":\"\","
        "\"payment_intent_id\":null,\"invoice_url\":null}";
    cr_assert(str_is(o.json, want2), "order 2:\n%s\nwanted\n%s", cs(o.json), want2);
    cr_assert_eq(o.status, EV_order_status_CANCELLED);

    /* Order 3: a guest's, with its token hash; a failed and a mismatched payment. */
    cr_assert_eq(proj_cache_get_order(f.r, 3, &f.buf, &o), 0);
    const char *want3 =
        "{\"order_id\":3,\"customer_id\":null,\"order_date\":\"2026-02-18T05:45:16.123Z\","
        "\"total_amount\":\"720.00\",\"status\":\"pending\",\"shipping_address\":\"2 Side St\","
        "\"payment_intent_id\":null,\"invoice_url\":null}";
    cr_assert(str_is(o.json, want3), "order 3:\n%s\nwanted\n%s", cs(o.json), want3);
    cr_assert(str_is(o.guest_token_hash, GUEST));
    cr_assert_eq(o.customer_id, 0);
    cr_assert_eq(o.payment, PROJ_CACHE_PAY_MISMATCHED);
    cr_assert(str_is(o.items_json,
                     "[{\"item_id\":300,\"order_id\":3,\"watch_id\":"
                     "\"42000000-0000-0000-0000-000000000002\",\"quantity\":1,\"unit_price\":"
                     "\"720.00\",\"subtotal\":\"720.00\",\"watch_name\":\"Alpinist\","
                     "\"image_url\":null}]"),
              "%s", cs(o.items_json));
    cr_assert_eq(proj_cache_get_order(f.r, 4, &f.buf, &o), PROJ_CACHE_ENOTFOUND);

    /* A customer's orders newest first; guests' orders are nobody's. */
    ids x = {{0}, 0};
    cr_assert_eq(proj_cache_customer_orders(f.r, 1, collect_order, &x), 0);
    cr_assert_eq(x.n, 2);
    cr_assert(x.v[0] == 2 && x.v[1] == 1);
    x.n = 0;
    cr_assert_eq(proj_cache_customer_orders(f.r, 2, collect_order, &x), 0);
    cr_assert_eq(x.n, 0);
    x.n = 0;
    cr_assert_eq(proj_cache_orders(f.r, -1, 0, 0, collect_order, &x), 0);
    cr_assert(x.n == 3 && x.v[0] == 3 && x.v[1] == 2 && x.v[2] == 1);
    x.n = 0;
    cr_assert_eq(proj_cache_orders(f.r, EV_order_status_CANCELLED, 0, 0, collect_order, &x), 0);
    cr_assert(x.n == 1 && x.v[0] == 2);
    x.n = 0;
    cr_assert_eq(proj_cache_orders(f.r, -1, 3, 1, collect_order, &x), 0);
    cr_assert(x.n == 1 && x.v[0] == 1, "before 3, skip 1: %d orders", x.n);

    /* Customers: by id, by e-mail (normalised), with the role change. */
    proj_cache_customer c;
    cr_assert_eq(proj_cache_customer_by_email(f.r, EV_STR("  ALICE@example.com\t"), &f.buf, &c),
                 0);
    cr_assert_eq(c.customer_id, 1);
    cr_assert(str_is(c.email, "alice@example.com"));
    cr_assert(str_is(c.full_name, "Alice Doe"));
    cr_assert(str_is(c.phone, "+1 555 0100"));
    /* customer.password_changed: the e-mail look-up login uses finds the
     * new hash; the rest of the record is as registered. */
    cr_assert(str_is(c.password_hash, NEW_HASH), "hash %s", cs(c.password_hash));
    cr_assert_eq(c.role, EV_role_USER);
    cr_assert_eq(c.created_us, T0 + 2 * SEC);
    cr_assert_eq(c.updated_us, T0 + 18 * SEC);
    cr_assert_eq(proj_cache_get_customer(f.r, 1, &f.buf, &c), 0);
    cr_assert(str_is(c.password_hash, NEW_HASH));
    cr_assert(str_is(c.full_name, "Alice Doe") && str_is(c.phone, "+1 555 0100"));
    cr_assert_eq(proj_cache_get_customer(f.r, 2, &f.buf, &c), 0);
    cr_assert_eq(c.role, EV_role_ADMIN);
    cr_assert_null(c.password_hash.p);
    cr_assert_str_eq(ev_enum_name(EV_ENUMSET_role, c.role), "admin");
    cr_assert_eq(proj_cache_customer_by_email(f.r, EV_STR("Bob@Example.com"), &f.buf, &c), 0);
    cr_assert_eq(c.customer_id, 2);
    cr_assert_eq(proj_cache_customer_by_email(f.r, EV_STR("carol@example.com"), &f.buf, &c),
                 PROJ_CACHE_ENOTFOUND);
    cr_assert_eq(proj_cache_customer_by_email(f.r, EV_STR("not an address"), &f.buf, &c),
                 PROJ_CACHE_ENOTFOUND);
    cr_assert_eq(proj_cache_get_customer(f.r, 3, &f.buf, &c), PROJ_CACHE_ENOTFOUND);
    /* The index key is the writer's keyed hash, never the address. */
    uint8_t k1[16], k2[16];
    proj_cache_email_key(ts_email_key, EV_STR("alice@example.com"), k1);
    st_email_key(wr_state(f.w), EV_STR("alice@example.com"), k2);
    cr_assert_arr_eq(k1, k2, 16);

    /* Refresh tokens: issue, rotation, revocation. */
    proj_cache_token t;
    cr_assert_eq(proj_cache_get_token(f.r, ev_str_c(TOK1), &f.buf, &t), 0);
    cr_assert_eq(t.customer_id, 1);
    cr_assert(t.revoked);
    cr_assert(str_is(t.revoke_reason, "rotated"));
    cr_assert_eq(t.revoked_us, T0 + 15 * SEC);
    cr_assert(str_is(t.replaced_by, TOK2));
    cr_assert_null(t.replaces.p);
    cr_assert_eq(t.expires_at, 1769817600);
    cr_assert_eq(proj_cache_get_token(f.r, ev_str_c(TOK2), &f.buf, &t), 0);
    cr_assert_not(t.revoked);
    cr_assert(str_is(t.replaces, TOK1));
    cr_assert_null(t.replaced_by.p);
    cr_assert_eq(t.issued_us, T0 + 15 * SEC);
    cr_assert_eq(proj_cache_get_token(f.r, ev_str_c(TOK3), &f.buf, &t), 0);
    cr_assert(t.revoked && str_is(t.revoke_reason, "logout") && t.customer_id == 2);
    cr_assert_eq(proj_cache_get_token(f.r, EV_STR("44"), &f.buf, &t), PROJ_CACHE_ENOTFOUND);

    /* The admin counters. */
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.watches, 2);
    cr_assert_eq(s.customers, 2);
    cr_assert_eq(s.orders, 3);
    cr_assert_eq(s.orders_by_status[EV_order_status_SHIPPED], 1);
    cr_assert_eq(s.orders_by_status[EV_order_status_CANCELLED], 1);
    cr_assert_eq(s.orders_by_status[EV_order_status_PENDING], 1);
    cr_assert_eq(s.orders_by_status[EV_order_status_PROCESSING], 0);
    cr_assert_eq(s.revenue, 151100 + 72000);
    cr_assert_eq(s.low_stock, 0);
    fx_fini(&f);
}

static int collect_watch(void *ud, const proj_cache_watch *w)
{
    ids *x = ud;
    x->v[x->n++] = w->watch_id[15];
    return 0;
}

static void expect_ids(fx *f, proj_cache_sort sort, const proj_cache_filter *flt, uint64_t skip,
                       uint64_t limit, const int *want, int n, uint64_t want_total,
                       const char *what)
{
    ids x = {{0}, 0};
    uint64_t total = 12345;
    int rc = proj_cache_watches(f->r, sort, flt, skip, limit, collect_watch, &x, &total);
    cr_assert_eq(rc, 0, "%s: rc %d", what, rc);
    char got[256] = "";
    for (int i = 0; i < x.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %d", x.v[i]);
    cr_assert_eq(x.n, n, "%s: got%s", what, got);
    for (int i = 0; i < n; i++)
        cr_assert_eq(x.v[i], want[i], "%s: got%s", what, got);
    cr_assert_eq(total, want_total, "%s: total %" PRIu64, what, total);
    /* Without a total the walk stops after the page, with the same page. */
    ids y = {{0}, 0};
    cr_assert_eq(proj_cache_watches(f->r, sort, flt, skip, limit, collect_watch, &y, NULL), 0);
    cr_assert_eq(y.n, n, "%s (no total)", what);
    cr_assert_arr_eq(y.v, x.v, sizeof(int) * (size_t)n);
}

static void expect_brands(fx *f, int category, const char *const *names, const uint64_t *counts,
                          size_t n, const char *what)
{
    proj_cache_brand *b = NULL;
    size_t got = 99;
    cr_assert_eq(proj_cache_brands(f->r, category, &b, &got), 0, "%s", what);
    cr_assert_eq(got, n, "%s: %zu brands", what, got);
    for (size_t i = 0; i < n; i++) {
        cr_assert(str_is(b[i].brand, names[i]), "%s: brand %zu is %s", what, i, cs(b[i].brand));
        cr_assert_eq(b[i].count, counts[i], "%s: count of %s", what, names[i] ? names[i] : "null");
    }
    free(b);
}

Test(cache, catalog_orders_filters_pages_and_brand_counts)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 1, "Seamaster Diver", "Omega", "210.30", NULL, 450000, 5, NULL, "diver",
              T0 + 1);
    add_watch(&f, 2, "Speedmaster", "Omega", NULL, NULL, 650000, 0, NULL, "chronograph", T0 + 2);
    add_watch(&f, 3, "Prospex", "Seiko", "SRPD21", NULL, 39550, 2, NULL, "diver", T0 + 3);
    add_watch(&f, 4, "alpinist", "Seiko", NULL, NULL, 72000, 10, NULL, "sport", T0 + 3);
    add_watch(&f, 5, "Über Classic", "Nomos", NULL, "Hand-wound ÜBERRASCHUNG", 39550, 1, NULL,
              "classic", T0 + 4);
    add_watch(&f, 6, "Navitimer", NULL, NULL, NULL, 800000, 3, NULL, NULL, T0 + 5);
    sync_cache(&f);
    proj_cache_filter all = proj_cache_filter_all(), fl;

    /* Orders: newest (created desc, then id desc), price both ways (ties by
     * id in the walk's direction), name case-insensitively. */
    expect_ids(&f, PROJ_CACHE_NEWEST, &all, 0, 0, (int[]){6, 5, 4, 3, 2, 1}, 6, 6, "newest");
    expect_ids(&f, PROJ_CACHE_PRICE_ASC, &all, 0, 0, (int[]){3, 5, 4, 1, 2, 6}, 6, 6, "price asc");
    expect_ids(&f, PROJ_CACHE_PRICE_DESC, &all, 0, 0, (int[]){6, 2, 1, 4, 5, 3}, 6, 6,
               "price desc");
    expect_ids(&f, PROJ_CACHE_NAME_AZ, &all, 0, 0, (int[]){4, 6, 3, 1, 2, 5}, 6, 6, "name");
    expect_ids(&f, PROJ_CACHE_NEWEST, NULL, 0, 0, (int[]){6, 5, 4, 3, 2, 1}, 6, 6, "no filter");

    /* Pages: skip and limit over the matches, the total of all matches. */
    expect_ids(&f, PROJ_CACHE_NEWEST, &all, 2, 2, (int[]){4, 3}, 2, 6, "page 2 of 2");
    expect_ids(&f, PROJ_CACHE_NEWEST, &all, 4, 24, (int[]){2, 1}, 2, 6, "last page");
    expect_ids(&f, PROJ_CACHE_NEWEST, &all, 6, 24, NULL, 0, 6, "past the end");

    /* Filters. */
    fl = all;
    fl.category = PROJ_CACHE_CAT_DIVER;
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){3, 1}, 2, 2, "diver");
    expect_ids(&f, PROJ_CACHE_NAME_AZ, &fl, 0, 0, (int[]){3, 1}, 2, 2, "diver by name");
    fl.brand = EV_STR("Seiko");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){3}, 1, 1, "diver Seiko");
    fl = all;
    fl.brand = EV_STR("Omega");
    expect_ids(&f, PROJ_CACHE_PRICE_ASC, &fl, 0, 0, (int[]){1, 2}, 2, 2, "Omega by price");
    fl.brand = EV_STR("omega");
    expect_ids(&f, PROJ_CACHE_PRICE_ASC, &fl, 0, 0, NULL, 0, 0, "brand is exact");
    fl.brand = EV_STR("Omeg");
    expect_ids(&f, PROJ_CACHE_PRICE_ASC, &fl, 0, 0, NULL, 0, 0, "brand prefix");
    fl = all;
    fl.min_price = 40000;
    fl.max_price = 650000;
    expect_ids(&f, PROJ_CACHE_PRICE_ASC, &fl, 0, 0, (int[]){4, 1, 2}, 3, 3, "price range");
    fl = all;
    fl.in_stock = true;
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){6, 5, 4, 3, 1}, 5, 5, "in stock");
    fl = all;
    fl.search = EV_STR("über");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){5}, 1, 1, "search über");
    fl.search = EV_STR("RASCH");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){5}, 1, 1, "search description");
    fl.search = EV_STR("SEIKO");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){4, 3}, 2, 2, "search brand");
    fl.search = EV_STR("srpd");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){3}, 1, 1, "search model");
    fl.search = EV_STR("master");
    expect_ids(&f, PROJ_CACHE_NAME_AZ, &fl, 0, 1, (int[]){1}, 1, 2, "search name, one a page");
    fl.search = EV_STR("'; DROP TABLE watches; --");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, NULL, 0, 0, "search metacharacters");
    char longq[3000];
    memset(longq, 'a', sizeof longq);
    fl.search = (ev_str){longq, sizeof longq};
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, NULL, 0, 0, "a very long search");
    fl = all;
    fl.category = PROJ_CACHE_CAT_NONE;
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, NULL, 0, 0, "not a category");
    cr_assert_eq(proj_cache_category_code(EV_STR("Chronograph")), PROJ_CACHE_CAT_CHRONOGRAPH);
    cr_assert_eq(proj_cache_category_code(EV_STR("chrono")), 0);

    /* Brand counts: by count, then name, the null brand last. */
    expect_brands(&f, PROJ_CACHE_CAT_ANY, (const char *[]){"Omega", "Seiko", "Nomos", NULL},
                  (uint64_t[]){2, 2, 1, 1}, 4, "all brands");
    expect_brands(&f, PROJ_CACHE_CAT_DIVER, (const char *[]){"Omega", "Seiko"},
                  (uint64_t[]){1, 1}, 2, "diver brands");
    expect_brands(&f, PROJ_CACHE_CAT_LUXURY, NULL, NULL, 0, "no luxury");

    /* An update moves a watch between brands, categories and orders. */
    update_watch(&f, 2, EV_WF_NAME | EV_WF_BRAND | EV_WF_CATEGORY | EV_WF_PRICE, "Aardvark",
                 "Seiko", 30000, "diver", T0 + 10 * SEC);
    sync_cache(&f);
    expect_brands(&f, PROJ_CACHE_CAT_ANY, (const char *[]){"Seiko", "Nomos", "Omega", NULL},
                  (uint64_t[]){3, 1, 1, 1}, 4, "brands after the update");
    expect_brands(&f, PROJ_CACHE_CAT_DIVER, (const char *[]){"Seiko", "Omega"},
                  (uint64_t[]){2, 1}, 2, "diver brands after the update");
    expect_brands(&f, PROJ_CACHE_CAT_CHRONOGRAPH, NULL, NULL, 0, "no chronographs left");
    expect_ids(&f, PROJ_CACHE_NAME_AZ, &all, 0, 0, (int[]){2, 4, 6, 3, 1, 5}, 6, 6,
               "name after the update");
    expect_ids(&f, PROJ_CACHE_PRICE_ASC, &all, 0, 0, (int[]){2, 3, 5, 4, 1, 6}, 6, 6,
               "price after the update");
    expect_ids(&f, PROJ_CACHE_NEWEST, &all, 0, 0, (int[]){6, 5, 4, 3, 2, 1}, 6, 6,
               "created_at does not move");
    fl = all;
    fl.brand = EV_STR("Seiko");
    expect_ids(&f, PROJ_CACHE_PRICE_DESC, &fl, 0, 0, (int[]){4, 3, 2}, 3, 3, "Seiko by price");
    fl.brand = EV_STR("Omega");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, (int[]){1}, 1, 1, "Omega after the update");
    fl = all;
    fl.category = PROJ_CACHE_CAT_CHRONOGRAPH;
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, NULL, 0, 0, "chronograph after the update");

    /* A brand set to null leaves the brand indexes. */
    update_watch(&f, 1, EV_WF_BRAND, NULL, "", 0, NULL, T0 + 11 * SEC);
    sync_cache(&f);
    expect_brands(&f, PROJ_CACHE_CAT_ANY, (const char *[]){"Seiko", NULL, "Nomos"},
                  (uint64_t[]){3, 2, 1}, 3, "brands after the null brand");
    fl = all;
    fl.brand = EV_STR("Omega");
    expect_ids(&f, PROJ_CACHE_NEWEST, &fl, 0, 0, NULL, 0, 0, "no Omega left");

    /* The counters followed the stock. */
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.watches, 6);
    cr_assert_eq(s.low_stock, 3, "low stock %" PRIu64, s.low_stock); /* 2 (0), 3 (2), 5 (1) */
    fx_fini(&f);
}

static int stop_at_two(void *ud, const proj_cache_watch *w)
{
    int *n = ud;
    (void)w;
    return ++*n == 2 ? 7 : 0;
}

Test(cache, a_callback_stops_the_walk)
{
    fx f;
    fx_init(&f);
    for (int i = 1; i <= 5; i++)
        add_watch(&f, i, "W", "B", NULL, NULL, 1000 * i, 1, NULL, NULL, T0 + (uint64_t)i);
    sync_cache(&f);
    int n = 0;
    uint64_t total = 99;
    proj_cache_filter all = proj_cache_filter_all();
    cr_assert_eq(proj_cache_watches(f.r, PROJ_CACHE_NEWEST, &all, 0, 0, stop_at_two, &n, &total),
                 7);
    cr_assert_eq(n, 2);
    fx_fini(&f);
}

/* Applies the story in batches of `batch` events into a fresh cache at
 * `path` and returns its digest. */
static void rebuild_digest(fx *f, const char *path, size_t batch, uint8_t d[32])
{
    proj_sink s;
    proj_cache_reader *r;
    char err[512];
    cr_assert_eq(proj_cache_open_writer(path, ts_email_key, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(proj_cache_writer_reader(&s, &r, err, sizeof err), 0, "%s", err);
    feed_all(&s, wr_log(f->w), f->dec, batch, NULL);
    cr_assert_eq(proj_cache_digest(r, d), 0);
    proj_cache_reader_close(r);
    proj_cache_close(&s);
}

Test(cache, position_is_stored_and_a_reopened_writer_resumes)
{
    fx f;
    fx_init(&f);
    uint64_t pos = 77;
    cr_assert_eq(f.sink.ops->next_pos(f.sink.ctx, &pos), 0);
    cr_assert_eq(pos, 0);
    cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
    cr_assert_eq(pos, 0);
    cr_assert_str_eq(f.sink.ops->name, "cache");

    story(&f);
    uint64_t end;
    cr_assert_eq(log_end(wr_log(f.w), &end), 0);
    cr_assert_gt(end, 20);
    uint64_t batches = feed_all(&f.sink, wr_log(f.w), f.dec, 7, NULL);
    cr_assert_eq(batches, (end + 6) / 7);
    cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
    cr_assert_eq(pos, end);
    uint8_t before[32], after[32];
    cr_assert_eq(proj_cache_digest(f.r, before), 0);

    /* Reopen: the stored position, the same content, and nothing to redo. */
    cache_close(&f);
    cache_open(&f);
    cr_assert_eq(f.sink.ops->next_pos(f.sink.ctx, &pos), 0);
    cr_assert_eq(pos, end);
    cr_assert_eq(proj_cache_digest(f.r, after), 0);
    cr_assert_arr_eq(before, after, 32);
    cr_assert_eq(feed_all(&f.sink, wr_log(f.w), f.dec, 0, NULL), 0);

    /* More events: only they are applied, and the result equals a fresh
     * rebuild, whatever the batch size. */
    add_watch(&f, 9, "Late", "Tudor", NULL, NULL, 5000, 1, NULL, "sport", T0 + 100 * SEC);
    int w9[1] = {9};
    int64_t q1[1] = {1};
    place_order(&f, 1, w9, q1, 1, NULL, "3 Last St", T0 + 101 * SEC);
    cr_assert_eq(feed_all(&f.sink, wr_log(f.w), f.dec, 0, NULL), 1);
    uint64_t end2;
    cr_assert_eq(log_end(wr_log(f.w), &end2), 0);
    cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
    cr_assert_eq(pos, end2);
    cr_assert_eq(proj_cache_digest(f.r, after), 0);
    uint8_t fresh[32];
    char other[400];
    snprintf(other, sizeof other, "%s/fresh1", f.dir);
    rebuild_digest(&f, other, 1, fresh);
    cr_assert_arr_eq(after, fresh, 32, "one event a batch differs from resumed");
    snprintf(other, sizeof other, "%s/fresh1000", f.dir);
    rebuild_digest(&f, other, 1000, fresh);
    cr_assert_arr_eq(after, fresh, 32, "one batch differs from resumed");

    /* A position may not go back. */
    cr_assert_eq(f.sink.ops->begin(f.sink.ctx, &(uint64_t){0}), 0);
    cr_assert_neq(f.sink.ops->commit(f.sink.ctx, end2 - 1), 0);
    cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
    cr_assert_eq(pos, end2);
    fx_fini(&f);
}

Test(cache, an_aborted_batch_leaves_the_cache_as_it_was)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 1, "Prospex", "Seiko", NULL, NULL, 39550, 10, NULL, "diver", T0);
    register_customer(&f, "alice@example.com", "Alice Doe", "$scrypt$x", T0 + 1);
    sync_cache(&f);
    uint64_t p1, pos;
    cr_assert_eq(proj_cache_applied(f.r, &p1), 0);
    uint8_t d1[32], d[32];
    cr_assert_eq(proj_cache_digest(f.r, d1), 0);

    /* More events of every kind, applied and then aborted, cut after every
     * event. */
    add_watch(&f, 2, "Alpinist", "Seiko", NULL, NULL, 72000, 5, NULL, NULL, T0 + 2);
    int w12[2] = {1, 2};
    int64_t q[2] = {2, 1};
    place_order(&f, 1, w12, q, 2, NULL, "1 Main St", T0 + 3);
    cancel_order(&f, 1, T0 + 4);
    set_role(&f, 1, EV_role_AGENT, T0 + 5);
    token_issue(&f, 1, TOK1, NULL, T0 + 6);
    token_revoke(&f, TOK1, "logout", T0 + 7);
    update_watch(&f, 1, EV_WF_BRAND | EV_WF_CATEGORY, NULL, "Grand Seiko", 0, "luxury", T0 + 8);
    uint64_t end;
    cr_assert_eq(log_end(wr_log(f.w), &end), 0);
    for (uint64_t cut = 1; cut <= end - p1; cut++) {
        uint64_t n = feed_batch(&f.sink, wr_log(f.w), f.dec, cut, false, NULL);
        cr_assert_eq(n, cut);
        cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
        cr_assert_eq(pos, p1, "cut %" PRIu64, cut);
        cr_assert_eq(proj_cache_digest(f.r, d), 0);
        cr_assert_arr_eq(d, d1, 32, "an aborted batch of %" PRIu64 " events changed the cache",
                         cut);
    }
    proj_cache_customer c;
    cr_assert_eq(proj_cache_get_customer(f.r, 1, &f.buf, &c), 0);
    cr_assert_eq(c.role, EV_role_USER);
    cr_assert_eq(proj_cache_get_order(f.r, 1, &f.buf, &(proj_cache_order){0}),
                 PROJ_CACHE_ENOTFOUND);

    /* Then committed: equal to a fresh rebuild. */
    feed_all(&f.sink, wr_log(f.w), f.dec, 3, NULL);
    cr_assert_eq(proj_cache_digest(f.r, d), 0);
    uint8_t fresh[32];
    char other[400];
    snprintf(other, sizeof other, "%s/fresh", f.dir);
    rebuild_digest(&f, other, 0, fresh);
    cr_assert_arr_eq(d, fresh, 32);

    /* Events below the stored position are skipped, not applied twice: a
     * replay of all but the last event (applied, it would undo the brand
     * change and the cancellation) changes nothing. */
    cr_assert_eq(f.sink.ops->begin(f.sink.ctx, &(uint64_t){0}), 0);
    feed_ctx fc = {&f.sink, f.dec, 0, 0, 0};
    uint64_t next;
    cr_assert_eq(log_scan(wr_log(f.w), 0, (size_t)end - 1, feed_cb, &fc, &next), 0);
    cr_assert_eq(next, end - 1);
    cr_assert_eq(f.sink.ops->commit(f.sink.ctx, end), 0);
    cr_assert_eq(proj_cache_digest(f.r, d), 0);
    cr_assert_arr_eq(d, fresh, 32, "replaying applied events changed the cache");
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.orders, 1);
    cr_assert_eq(s.orders_by_status[EV_order_status_CANCELLED], 1);
    cr_assert_eq(s.revenue, 0);
    fx_fini(&f);
}

Test(cache, unknown_event_types_are_not_applied)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 1, "Prospex", "Seiko", NULL, NULL, 39550, 10, NULL, "diver", T0);
    sync_cache(&f);
    uint8_t d1[32], d2[32];
    cr_assert_eq(proj_cache_digest(f.r, d1), 0);
    ev_event ev;
    memset(&ev, 0, sizeof ev);
    ev.env.type = EV_T_UNKNOWN;
    ev.env.type_name = EV_STR("integration.future");
    ev.env.pos = 1;
    ev.env.recorded_us = T0 + 1;
    cr_assert_eq(f.sink.ops->begin(f.sink.ctx, &(uint64_t){0}), 0);
    cr_assert_eq(f.sink.ops->apply(f.sink.ctx, &ev), 0);
    cr_assert_eq(f.sink.ops->commit(f.sink.ctx, 2), 0);
    uint64_t pos;
    cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
    cr_assert_eq(pos, 2);
    /* Only the position moved. */
    uint8_t id[16];
    proj_cache_watch w;
    wid(1, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    cr_assert_eq(w.updated_us, T0);
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.watches, 1);
    cr_assert_eq(proj_cache_digest(f.r, d2), 0);
    cr_assert(memcmp(d1, d2, 32) != 0, "the position is part of the digest");
    /* Apply outside a batch is refused. */
    cr_assert_neq(f.sink.ops->apply(f.sink.ctx, &ev), 0);
    cr_assert(strstr(f.sink.ops->errmsg(f.sink.ctx), "outside a batch"));
    fx_fini(&f);
}

Test(cache, a_second_writer_is_refused)
{
    fx f;
    fx_init(&f);
    proj_sink second;
    char err[512] = "";
    int rc = proj_cache_open_writer(f.cache, ts_email_key, &second, err, sizeof err);
    cr_assert_eq(rc, PROJ_CACHE_ELOCKED, "second writer: %d %s", rc, err);
    char pid[64];
    snprintf(pid, sizeof pid, "(process %ld,", (long)getpid());
    cr_assert(strstr(err, pid), "the refusal names the writer: %s", err);

    /* Also from another process. */
    pid_t child = fork_helper();
    if (child == 0) {
        proj_sink s2;
        char e2[512];
        int r2 = proj_cache_open_writer(f.cache, ts_email_key, &s2, e2, sizeof e2);
        _exit(r2 == PROJ_CACHE_ELOCKED ? 0 : 10 - r2);
    }
    cr_assert_eq(reap(child, 10000), 0, "a writer in another process was not refused");

    /* Once the first closes, a new writer may open; a wrong key is refused. */
    cache_close(&f);
    uint8_t other_key[32];
    memcpy(other_key, ts_email_key, 32);
    other_key[0] ^= 1;
    rc = proj_cache_open_writer(f.cache, other_key, &second, err, sizeof err);
    cr_assert_eq(rc, PROJ_CACHE_EMISMATCH, "wrong key: %d %s", rc, err);
    rc = proj_cache_open_writer(f.cache, ts_email_key, &second, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    proj_cache_close(&second);
    fx_fini(&f);
}

Test(cache, readers_refuse_a_missing_cache_and_a_wrong_key)
{
    char dir[256], path[400], err[512];
    ts_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/nothing", dir);
    proj_cache_reader *r = NULL;
    cr_assert_eq(proj_cache_open_reader(path, ts_email_key, &r, err, sizeof err),
                 PROJ_CACHE_ENOENT);
    /* Create it, close it, then read it from this process. */
    proj_sink s;
    cr_assert_eq(proj_cache_open_writer(path, ts_email_key, &s, err, sizeof err), 0, "%s", err);
    proj_cache_close(&s);
    uint8_t other_key[32] = {9};
    cr_assert_eq(proj_cache_open_reader(path, other_key, &r, err, sizeof err),
                 PROJ_CACHE_EMISMATCH);
    cr_assert_eq(proj_cache_open_reader(path, NULL, &r, err, sizeof err), 0, "%s", err);
    proj_cache_customer c;
    ev_buf b = {0};
    cr_assert_eq(proj_cache_customer_by_email(r, EV_STR("a@b.cd"), &b, &c), PROJ_CACHE_EINVAL);
    uint64_t pos = 9;
    cr_assert_eq(proj_cache_applied(r, &pos), 0);
    cr_assert_eq(pos, 0);
    int64_t t0 = mono_ns();
    cr_assert_eq(proj_cache_wait(r, 0, 100), PROJ_CACHE_ETIMEDOUT);
    int64_t took = mono_ns() - t0;
    cr_assert(took >= 95000000 && took < 600000000, "wait(100 ms) took %.1f ms", took / 1e6);
    proj_cache_reader_close(r);
    ev_buf_free(&b);
    ts_rmtree(dir);
}

/* ---------------------------------------- waking readers on a commit */

typedef struct idle_report {
    int rc;
    int64_t elapsed_ns, cpu_ns;
    uint64_t pos;
} idle_report;

typedef struct seen_report {
    int rc;
    int64_t t_ns;
    uint64_t pos;
} seen_report;

/* Helper process: opens its own reader, times an idle 200 ms wait, then
 * reports every position it wakes to. */
static void helper_waiter(const char *path, int fd, uint64_t last)
{
    char err[512];
    proj_cache_reader *r = NULL;
    idle_report idle = {0, 0, 0, 0};
    idle.rc = proj_cache_open_reader(path, ts_email_key, &r, err, sizeof err);
    if (!idle.rc)
        idle.rc = proj_cache_applied(r, &idle.pos);
    if (idle.rc) {
        write_all(fd, &idle, sizeof idle);
        _exit(0);
    }
    int64_t t0 = mono_ns(), c0 = cpu_ns();
    int rc = proj_cache_wait(r, idle.pos, 200);
    idle.elapsed_ns = mono_ns() - t0;
    idle.cpu_ns = cpu_ns() - c0;
    idle.rc = rc == PROJ_CACHE_ETIMEDOUT ? 0 : rc == 0 ? 1 : rc;
    write_all(fd, &idle, sizeof idle);
    uint64_t pos = idle.pos;
    while (pos < last) {
        seen_report s = {0, 0, 0};
        s.rc = proj_cache_wait(r, pos, 5000);
        s.t_ns = mono_ns();
        if (!s.rc)
            s.rc = proj_cache_applied(r, &s.pos);
        write_all(fd, &s, sizeof s);
        if (s.rc)
            break;
        pos = s.pos;
    }
    proj_cache_reader_close(r);
    _exit(0);
}

Test(cache, a_reader_in_another_process_wakes_on_commit)
{
    enum { ROUNDS = 10, GAP_MS = 60 };
    fx f;
    fx_init(&f);
    for (int i = 0; i <= ROUNDS; i++)
        add_watch(&f, i + 1, "W", "B", NULL, NULL, 1000, 1, NULL, NULL, T0 + (uint64_t)i);
    feed_batch(&f.sink, wr_log(f.w), f.dec, 1, true, NULL);
    /* Fork with the cache closed: the helper must not inherit its lock. */
    cache_close(&f);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork_helper();
    if (pid == 0) {
        close(pfd[0]);
        helper_waiter(f.cache, pfd[1], ROUNDS + 1);
    }
    close(pfd[1]);
    cache_open(&f);

    idle_report idle;
    int got_idle = read_full(pfd[0], &idle, sizeof idle, 10000);
    int64_t t_commit[ROUNDS];
    seen_report s[ROUNDS];
    int n = 0;
    /* In lockstep: each commit, then the helper's report of it, so that a
     * busy machine cannot fold two commits into one wake-up. */
    for (int k = 0; k < ROUNDS && got_idle == 0; k++) {
        sleep_ms(GAP_MS);
        feed_batch(&f.sink, wr_log(f.w), f.dec, 1, true, NULL);
        t_commit[k] = mono_ns();
        if (read_full(pfd[0], &s[n], sizeof s[n], 10000) != 0)
            break;
        n++;
    }
    close(pfd[0]);
    int st = reap(pid, 10000);

    cr_assert_eq(got_idle, 0, "the helper sent no report (status %d)", st);
    cr_assert_eq(idle.rc, 0, "idle wait: %d (1: woke without a commit)", idle.rc);
    cr_assert_eq(idle.pos, 1);
    fprintf(stderr, "test_cache: idle proj_cache_wait(200 ms) took %.1f ms wall, %.3f ms CPU\n",
            idle.elapsed_ns / 1e6, idle.cpu_ns / 1e6);
    cr_assert_geq(idle.elapsed_ns, 195000000, "timed out early: %.1f ms", idle.elapsed_ns / 1e6);
    /* Late only by scheduling on a loaded machine; never unbounded. */
    cr_assert_lt(idle.elapsed_ns, 5000000000LL, "timed out late: %.1f ms", idle.elapsed_ns / 1e6);
    cr_assert_lt(idle.cpu_ns, 20000000, "a waiting reader used %.1f ms CPU in 200 ms",
                 idle.cpu_ns / 1e6);
    cr_assert_eq(st, 0, "helper status %d", st);
    cr_assert_eq(n, ROUNDS, "the helper saw %d of %d commits", n, ROUNDS);
    int64_t worst = 0;
    for (int k = 0; k < ROUNDS; k++) {
        cr_assert_eq(s[k].rc, 0, "round %d: %d", k, s[k].rc);
        cr_assert_eq(s[k].pos, (uint64_t)k + 2, "round %d woke at position %" PRIu64, k,
                     s[k].pos);
        int64_t d = s[k].t_ns - t_commit[k];
        if (d > worst)
            worst = d;
        cr_assert_lt(d, 50000000LL * TS_SLOW, "round %d: woke %.3f ms after the commit", k,
                     d / 1e6);
    }
    fprintf(stderr, "test_cache: cross-process wake-up after commit: worst %.3f ms of %d\n",
            worst / 1e6, ROUNDS);
    fx_fini(&f);
}

typedef struct waiter {
    proj_cache_reader *r;
    uint64_t pos;
    int timeout_ms;
    int rc;
    int64_t t_ns, took_ns;
} waiter;

static void *waiter_main(void *ud)
{
    waiter *w = ud;
    int64_t t0 = mono_ns();
    w->rc = proj_cache_wait(w->r, w->pos, w->timeout_ms);
    w->t_ns = mono_ns();
    w->took_ns = w->t_ns - t0;
    return NULL;
}

Test(cache, many_threads_wait_on_one_reader)
{
    enum { N = 5 };
    fx f;
    fx_init(&f);
    add_watch(&f, 1, "W", "B", NULL, NULL, 1000, 1, NULL, NULL, T0);
    add_watch(&f, 2, "W", "B", NULL, NULL, 1000, 1, NULL, NULL, T0 + 1);
    feed_batch(&f.sink, wr_log(f.w), f.dec, 1, true, NULL);
    uint64_t pos;
    cr_assert_eq(proj_cache_applied(f.r, &pos), 0);
    cr_assert_eq(pos, 1);
    /* Already there: at once. */
    cr_assert_eq(proj_cache_wait(f.r, 0, 0), 0);
    cr_assert_eq(proj_cache_wait(f.r, 1, 0), PROJ_CACHE_ETIMEDOUT);

    /* Four long waiters and one short one that times out first (handing the
     * poll over), then one commit wakes the four. */
    waiter w[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        w[i] = (waiter){f.r, 1, i == 0 ? 100 : 3000, -99, 0, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
    }
    sleep_ms(250);
    feed_batch(&f.sink, wr_log(f.w), f.dec, 1, true, NULL);
    int64_t t_commit = mono_ns();
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(w[0].rc, PROJ_CACHE_ETIMEDOUT, "the short waiter: %d", w[0].rc);
    cr_assert(w[0].took_ns >= 95000000 && w[0].took_ns < 240000000LL * TS_SLOW,
              "short wait took %.1f ms",
              w[0].took_ns / 1e6);
    for (int i = 1; i < N; i++) {
        cr_assert_eq(w[i].rc, 0, "waiter %d: %d", i, w[i].rc);
        int64_t d = w[i].t_ns - t_commit;
        cr_assert_lt(d, 50000000LL * TS_SLOW, "waiter %d woke %.3f ms after the commit", i,
                     d / 1e6);
        cr_assert_gt(w[i].took_ns, 200000000, "waiter %d returned before the commit", i);
    }
    /* The event-loop descriptor fires too. */
    struct pollfd p = {proj_cache_notify_fd(f.r), POLLIN, 0};
    cr_assert_geq(p.fd, 0);
    cr_assert_eq(poll(&p, 1, 0), 1);
    proj_cache_drain_notify(f.r);
    cr_assert_eq(poll(&p, 1, 0), 0);
    fx_fini(&f);
}

/* ------------------------------------------- a catalog of 10,000 watches */

enum { BIG = 10000, BIG_BRANDS = 50 };

typedef struct big_watch {
    int brand, category; /* category 0: none */
    int64_t price, stock;
} big_watch;

static big_watch big_at(int i)
{
    big_watch b = {i % BIG_BRANDS, i % 7, 10000 + (int64_t)((uint64_t)i * 7919 % 500000),
                   i % 5};
    return b;
}

typedef struct page {
    int n;
    int64_t last_price;
    bool ordered;
} page;

static int page_fn(void *ud, const proj_cache_watch *w)
{
    page *p = ud;
    if (p->n && w->price < p->last_price)
        p->ordered = false;
    p->last_price = w->price;
    p->n++;
    return 0;
}

static double best_ms(proj_cache_reader *r, proj_cache_sort sort, const proj_cache_filter *fl,
                      uint64_t skip, uint64_t limit, uint64_t *total, page *pg)
{
    double best = 1e9;
    for (int k = 0; k < 5; k++) {
        *pg = (page){0, 0, true};
        int64_t t0 = mono_ns();
        cr_assert_eq(proj_cache_watches(r, sort, fl, skip, limit, page_fn, pg, total), 0);
        double ms = (mono_ns() - t0) / 1e6;
        if (ms < best)
            best = ms;
    }
    return best;
}

Test(cache, a_catalog_of_10000_watches_answers_quickly)
{
    fx f;
    fx_init(&f);
    /* Encoded directly: 10,000 watch.added events in one batch. */
    int64_t t0 = mono_ns();
    cr_assert_eq(f.sink.ops->begin(f.sink.ctx, &(uint64_t){0}), 0);
    for (int i = 0; i < BIG; i++) {
        big_watch b = big_at(i);
        char name[64], brand[32], desc[128];
        snprintf(name, sizeof name, "Watch %05d Model", i);
        snprintf(brand, sizeof brand, "Brand%02d", b.brand);
        snprintf(desc, sizeof desc, "A fine watch, number %d, with sapphire glass", i);
        ev_event ev;
        memset(&ev, 0, sizeof ev);
        ev.env.type = EV_T_WATCH_ADDED;
        ev.env.version = 1;
        ev.env.pos = (uint64_t)i;
        ev.env.recorded_us = T0 + (uint64_t)i * 1000;
        ev_watch_added *p = &ev.u.watch_added;
        p->watch_id[0] = 0x42;
        p->watch_id[14] = (uint8_t)(i >> 8);
        p->watch_id[15] = (uint8_t)i;
        p->watch_name = ev_str_c(name);
        p->brand = ev_str_c(brand);
        p->description = ev_str_c(desc);
        p->price = b.price;
        p->currency = EV_STR("USD");
        p->stock_quantity = b.stock;
        p->category = b.category ? ev_str_c(proj_cache_category_name(b.category)) : (ev_str){0};
        cr_assert_eq(f.sink.ops->apply(f.sink.ctx, &ev), 0, "%s", f.sink.ops->errmsg(f.sink.ctx));
    }
    cr_assert_eq(f.sink.ops->commit(f.sink.ctx, BIG), 0);
    double load_ms = (mono_ns() - t0) / 1e6;

    /* The expected counts, by brute force. */
    uint64_t want_diver = 0, want_brand7 = 0;
    for (int i = 0; i < BIG; i++) {
        big_watch b = big_at(i);
        want_diver += b.category == PROJ_CACHE_CAT_DIVER && b.stock > 0 && b.price >= 100000 &&
                      b.price <= 300000;
        want_brand7 += b.brand == 7;
    }

    proj_cache_filter all = proj_cache_filter_all(), fl;
    uint64_t total;
    page pg;
    double home = best_ms(f.r, PROJ_CACHE_NEWEST, &all, 0, 24, &total, &pg);
    cr_assert_eq(total, BIG);
    cr_assert_eq(pg.n, 24);
    fl = all;
    fl.search = EV_STR("SAPPHIRE");
    double search = best_ms(f.r, PROJ_CACHE_PRICE_ASC, &fl, 48, 24, &total, &pg);
    cr_assert_eq(total, BIG);
    cr_assert_eq(pg.n, 24);
    cr_assert(pg.ordered, "not in price order");
    fl = all;
    fl.category = PROJ_CACHE_CAT_DIVER;
    fl.in_stock = true;
    fl.min_price = 100000;
    fl.max_price = 300000;
    double filtered = best_ms(f.r, PROJ_CACHE_NAME_AZ, &fl, 0, 24, &total, &pg);
    cr_assert_eq(total, want_diver);
    cr_assert_eq(pg.n, 24);
    fl = all;
    fl.brand = EV_STR("Brand07");
    double brand = best_ms(f.r, PROJ_CACHE_NEWEST, &fl, 0, 6, NULL, &pg);
    cr_assert_eq(pg.n, 6);
    best_ms(f.r, PROJ_CACHE_NEWEST, &fl, 0, 0, &total, &pg);
    cr_assert_eq(total, want_brand7);
    int64_t b0 = mono_ns();
    proj_cache_brand *br;
    size_t nb;
    cr_assert_eq(proj_cache_brands(f.r, PROJ_CACHE_CAT_ANY, &br, &nb), 0);
    double brands_ms = (mono_ns() - b0) / 1e6;
    cr_assert_eq(nb, BIG_BRANDS);
    cr_assert_eq(br[0].count, BIG / BIG_BRANDS);
    cr_assert(str_is(br[0].brand, "Brand00") && str_is(br[49].brand, "Brand49"));
    free(br);
    fprintf(stderr,
            "test_cache: 10,000 watches: load %.1f ms; home page with total %.2f ms; search "
            "page 3 %.2f ms; category+stock+price by name %.2f ms; brand top 6 %.3f ms; brand "
            "counts %.3f ms\n",
            load_ms, home, search, filtered, brand, brands_ms);
    /* Generous bounds (sanitizer builds, a busy machine): a full scan with
     * search stays well under a request's budget. */
    cr_assert_lt(home, 250.0);
    cr_assert_lt(search, 250.0);
    cr_assert_lt(filtered, 250.0);
    cr_assert_lt(brand, 20.0);
    fx_fini(&f);
}

Test(cache, contradicting_events_are_skipped_and_counted_once_and_files_are_private)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 1, "Prospex", "Seiko", NULL, NULL, 39550, 10, NULL, "diver", T0);
    sync_cache(&f);
    uint8_t d1[32], d2[32];
    cr_assert_eq(proj_cache_digest(f.r, d1), 0);
    /* A stock change, an order status and a password for things the cache
     * never saw. */
    ev_event a, b, c;
    memset(&a, 0, sizeof a);
    a.env.type = EV_T_STOCK_ADJUSTED;
    a.env.pos = 1;
    wid(99, a.u.stock_adjusted.watch_id);
    a.u.stock_adjusted.quantity = 5;
    memset(&b, 0, sizeof b);
    b.env.type = EV_T_ORDER_STATUS_CHANGED;
    b.env.pos = 2;
    b.u.order_status_changed.order_id = 77;
    b.u.order_status_changed.to = EV_order_status_SHIPPED;
    memset(&c, 0, sizeof c);
    c.env.type = EV_T_CUSTOMER_PASSWORD_CHANGED;
    c.env.pos = 3;
    c.u.customer_password_changed.customer_id = 55;
    c.u.customer_password_changed.password_hash = EV_STR(NEW_HASH);
    c.u.customer_password_changed.reason = EV_STR("rehash");
    for (int attempt = 0; attempt < 2; attempt++) {
        cr_assert_eq(f.sink.ops->begin(f.sink.ctx, &(uint64_t){0}), 0);
        cr_assert_eq(f.sink.ops->apply(f.sink.ctx, &a), 0);
        cr_assert_eq(f.sink.ops->apply(f.sink.ctx, &b), 0);
        cr_assert_eq(f.sink.ops->apply(f.sink.ctx, &c), 0);
        if (attempt == 0)
            f.sink.ops->abort(f.sink.ctx); /* retried below */
        else
            cr_assert_eq(f.sink.ops->commit(f.sink.ctx, 4), 0);
    }
    cr_assert_eq(proj_cache_inconsistent(&f.sink), 3);
    cr_assert_eq(proj_cache_get_customer(f.r, 55, &f.buf, &(proj_cache_customer){0}),
                 PROJ_CACHE_ENOTFOUND);
    cr_assert_eq(proj_cache_get_order(f.r, 77, &f.buf, &(proj_cache_order){0}),
                 PROJ_CACHE_ENOTFOUND);
    uint8_t id[16];
    wid(99, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &(proj_cache_watch){0}),
                 PROJ_CACHE_ENOTFOUND);
    cr_assert_eq(proj_cache_digest(f.r, d2), 0);
    cr_assert(memcmp(d1, d2, 32) != 0); /* the position moved, nothing else: */
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert(s.watches == 1 && s.orders == 0);

    /* Password hashes and personal data: the cache is its user's alone. */
    struct stat st;
    cr_assert_eq(stat(f.cache, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "cache directory mode %o", st.st_mode & 0777);
    char gen[400];
    snprintf(gen, sizeof gen, "%s/current/", f.cache);
    cr_assert_eq(stat(gen, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "generation directory mode %o", st.st_mode & 0777);
    const char *files[] = {"current/data.mdb", "current/lock.mdb", "current/notify",
                           "writer.lock"};
    for (size_t i = 0; i < 4; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", f.cache, files[i]);
        cr_assert_eq(stat(p, &st), 0, "%s", p);
        cr_assert_eq(st.st_mode & 0777, 0600, "%s mode %o", files[i], st.st_mode & 0777);
    }
    fx_fini(&f);
}

/* ------------------------------------------- stock changes and the JSON */

static int json_of(void *ud, const proj_cache_watch *w)
{
    ev_buf *b = ud;
    b->len = 0;
    cr_assert_eq(ev_buf_append(b, w->json.p, w->json.n), 0);
    return 0;
}

Test(cache, a_watch_whose_stock_changed_many_times_keeps_its_exact_json)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 7, "Seamaster", "", NULL, "", 39500, 12, NULL, NULL, T0);
    sync_cache(&f);
    /* 300 stock changes: some batches of one, the rest in batches of 64;
     * the watch record is written once (stock and its time are a record of
     * their own, kept in memory until the batch commits). */
    int64_t stock = 12;
    uint64_t at = T0;
    for (int i = 0; i < 300; i++) {
        stock = i == 299 ? 1 : (int64_t)((uint64_t)i * 7919 % 100000) * 9973;
        at = T0 + (uint64_t)(i + 1) * 61 * SEC + (uint64_t)i * 1001;
        set_stock(&f, 7, stock, at);
        if (i < 5)
            sync_cache(&f);
    }
    feed_all(&f.sink, wr_log(f.w), f.dec, 64, NULL);
    uint8_t id[16];
    proj_cache_watch w;
    wid(7, id);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    const char *want =
        "{\"watch_id\":\"42000000-0000-0000-0000-000000000007\",\"watch_name\":\"Seamaster\","
        "\"brand\":null,\"model_code\":null,\"description\":null,\"price\":\"395.00\","
        "\"stock_quantity\":1,\"image_url\":null,\"category\":null,"
        "\"created_at\":\"2026-02-18T05:45:06.123Z\",\"updated_at\":\"2026-02-18T10:50:06.422Z\"}";
    cr_assert(str_is(w.json, want), "after 300 changes:\n%s\nwanted\n%s", cs(w.json), want);
    cr_assert_eq(w.stock, 1);
    cr_assert_eq(w.updated_us, at);
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.low_stock, 1);

    /* A large stock, then a rename in the same batch: both in the JSON, and
     * the catalogue walk gives the same bytes as the look-up. */
    set_stock(&f, 7, DEC_MAX_STOCK, T0 + 400 * 61 * SEC);
    update_watch(&f, 7, EV_WF_NAME, "Seamaster 300", NULL, 0, NULL, T0 + 401 * 61 * SEC + 5000);
    set_stock(&f, 7, 1234567, T0 + 402 * 61 * SEC + 999);
    sync_cache(&f);
    cr_assert_eq(proj_cache_get_watch(f.r, id, &f.buf, &w), 0);
    const char *want2 =
        "{\"watch_id\":\"42000000-0000-0000-0000-000000000007\",\"watch_name\":\"Seamaster 300\","
        "\"brand\":null,\"model_code\":null,\"description\":null,\"price\":\"395.00\","
        "\"stock_quantity\":1234567,\"image_url\":null,\"category\":null,"
        "\"created_at\":\"2026-02-18T05:45:06.123Z\",\"updated_at\":\"2026-02-18T12:33:48.124Z\"}";
    cr_assert(str_is(w.json, want2), "after a rename:\n%s\nwanted\n%s", cs(w.json), want2);
    ev_buf walked = {0};
    proj_cache_filter all = proj_cache_filter_all();
    cr_assert_eq(proj_cache_watches(f.r, PROJ_CACHE_NAME_AZ, &all, 0, 0, json_of, &walked, NULL),
                 0);
    cr_assert(str_is((ev_str){(const char *)walked.p, (uint32_t)walked.len}, want2),
              "walked: %.*s", (int)walked.len, (const char *)walked.p);
    ev_buf_free(&walked);
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.low_stock, 0);
    cr_assert_eq(proj_cache_inconsistent(&f.sink), 0);

    /* The same log in one batch and one event a batch: the same cache. */
    uint8_t d[32], d1[32], dn[32];
    char other[400];
    cr_assert_eq(proj_cache_digest(f.r, d), 0);
    snprintf(other, sizeof other, "%s/one", f.dir);
    rebuild_digest(&f, other, 0, d1);
    snprintf(other, sizeof other, "%s/each", f.dir);
    rebuild_digest(&f, other, 1, dn);
    cr_assert_arr_eq(d, d1, 32);
    cr_assert_arr_eq(d, dn, 32);
    fx_fini(&f);
}

/* ------------------------------------------- a customer's orders, appended */

/* An order.placed applied straight to the sink (no decider): one line of
 * watch 1. */
static void apply_placed(fx *f, uint64_t pos, uint64_t oid, uint64_t cid)
{
    ev_line line;
    memset(&line, 0, sizeof line);
    wid(1, line.watch_id);
    line.quantity = 1;
    line.unit_price = line.subtotal = 39550;
    ev_event ev;
    memset(&ev, 0, sizeof ev);
    ev.env.type = EV_T_ORDER_PLACED;
    ev.env.version = 1;
    ev.env.pos = pos;
    ev.env.recorded_us = T0 + pos * SEC;
    ev_order_placed *p = &ev.u.order_placed;
    p->order_id = oid;
    p->customer_id = cid;
    p->currency = EV_STR("USD");
    p->total = 39550;
    p->lines = (ev_lines){&line, 1};
    p->shipping_address = EV_STR("1 Main St");
    cr_assert_eq(f->sink.ops->apply(f->sink.ctx, &ev), 0, "%s", f->sink.ops->errmsg(f->sink.ctx));
}

Test(cache, orders_out_of_order_or_placed_twice_land_in_their_place)
{
    fx f;
    fx_init(&f);
    add_watch(&f, 1, "Prospex", "Seiko", NULL, NULL, 39550, 10, NULL, "diver", T0);
    sync_cache(&f);
    uint64_t pos;
    cr_assert_eq(f.sink.ops->begin(f.sink.ctx, &pos), 0);
    apply_placed(&f, pos, 5, 1);      /* appended */
    apply_placed(&f, pos + 1, 9, 2);  /* appended */
    apply_placed(&f, pos + 2, 3, 1);  /* below the last order and customer 1's last */
    apply_placed(&f, pos + 3, 7, 1);  /* below the last order, after customer 1's */
    apply_placed(&f, pos + 4, 9, 1);  /* placed twice: now customer 1's */
    cr_assert_eq(f.sink.ops->commit(f.sink.ctx, pos + 5), 0);
    ids x = {{0}, 0};
    cr_assert_eq(proj_cache_customer_orders(f.r, 1, collect_order, &x), 0);
    cr_assert(x.n == 4 && x.v[0] == 9 && x.v[1] == 7 && x.v[2] == 5 && x.v[3] == 3,
              "customer 1: %d orders", x.n);
    x.n = 0;
    cr_assert_eq(proj_cache_customer_orders(f.r, 2, collect_order, &x), 0);
    cr_assert_eq(x.n, 0);
    x.n = 0;
    cr_assert_eq(proj_cache_orders(f.r, -1, 0, 0, collect_order, &x), 0);
    cr_assert(x.n == 4 && x.v[0] == 9 && x.v[1] == 7 && x.v[2] == 5 && x.v[3] == 3);
    proj_cache_order o;
    cr_assert_eq(proj_cache_get_order(f.r, 9, &f.buf, &o), 0);
    cr_assert_eq(o.customer_id, 1);
    proj_cache_stats s;
    cr_assert_eq(proj_cache_get_stats(f.r, &s), 0);
    cr_assert_eq(s.orders, 4);
    cr_assert_eq(s.revenue, 4 * 39550);
    cr_assert_eq(proj_cache_inconsistent(&f.sink), 1);
    fx_fini(&f);
}

/* ----------------------------------- proj_fill decoding ahead of the sink */

/* A cache sink with faults: its position rewound once (as when a rebuild
 * swaps in a generation that is behind), an apply that fails once. */
typedef struct faulty {
    proj_sink inner;
    int begins;
    int rewind_at;       /* this begin reports a position 3,000 back (0: never) */
    uint64_t fail_pos;   /* apply fails at this position, once (0: never) */
    uint64_t min_batch_from, max_batch_from;
} faulty;

static int fy_next_pos(void *ctx, uint64_t *pos)
{
    faulty *y = ctx;
    return y->inner.ops->next_pos(y->inner.ctx, pos);
}

static int fy_begin(void *ctx, uint64_t *pos)
{
    faulty *y = ctx;
    int rc = y->inner.ops->begin(y->inner.ctx, pos);
    if (rc == 0 && ++y->begins == y->rewind_at)
        *pos = *pos > 3000 ? *pos - 3000 : 0;
    return rc;
}

static int fy_apply(void *ctx, const ev_event *ev)
{
    faulty *y = ctx;
    if (y->fail_pos && ev->env.pos == y->fail_pos) {
        y->fail_pos = 0;
        return -1;
    }
    return y->inner.ops->apply(y->inner.ctx, ev);
}

static int fy_commit(void *ctx, uint64_t next)
{
    faulty *y = ctx;
    return y->inner.ops->commit(y->inner.ctx, next);
}

static void fy_abort(void *ctx)
{
    faulty *y = ctx;
    y->inner.ops->abort(y->inner.ctx);
}

static const char *fy_errmsg(void *ctx)
{
    faulty *y = ctx;
    return y->fail_pos == 0 ? "injected failure" : y->inner.ops->errmsg(y->inner.ctx);
}

static const proj_sink_ops fy_ops = {"faulty", fy_next_pos, fy_begin, fy_apply,
                                     fy_commit, fy_abort,   fy_errmsg, true};

static int stop_after_two(void *ud, const proj_stats *st, uint64_t end)
{
    (void)ud;
    (void)end;
    return st->batches >= 2;
}

/* Opens a fresh cache at dir/name (as f's second writer). */
static void open_other(fx *f, const char *name, proj_sink *s, proj_cache_reader **r)
{
    char path[400], err[512];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    cr_assert_eq(proj_cache_open_writer(path, ts_email_key, s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(proj_cache_writer_reader(s, r, err, sizeof err), 0, "%s", err);
}

static void digest_close(proj_sink *s, proj_cache_reader *r, uint8_t d[32])
{
    cr_assert_eq(proj_cache_digest(r, d), 0);
    proj_cache_reader_close(r);
    proj_cache_close(s);
}

Test(cache, a_long_fill_decoded_ahead_equals_the_plain_feed, .timeout = 300)
{
    fx f;
    fx_init(&f);
    unsigned seed = 11;
    cr_assert_eq(ts_grow_log(f.w, 40000, &seed, 0, 300), 0);
    uint64_t end;
    cr_assert_eq(log_end(wr_log(f.w), &end), 0);
    feed_all(&f.sink, wr_log(f.w), f.dec, 5000, NULL); /* the test's own serial loop */
    uint8_t want[32], d[32];
    cr_assert_eq(proj_cache_digest(f.r, want), 0);
    cr_assert_eq(proj_cache_inconsistent(&f.sink), 0);
    char err[512];
    proj_stats st;

    /* proj_fill reads ahead on a second thread: batches of 4,999 over
     * chunks of 1,024 events. */
    proj_sink s;
    proj_cache_reader *r;
    open_other(&f, "plain", &s, &r);
    memset(&st, 0, sizeof st);
    cr_assert_eq(proj_fill(wr_log(f.w), &s, 4999, NULL, NULL, &st, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(st.applied, end);
    cr_assert_eq(st.next_pos, end);
    cr_assert_eq(st.batches, (end + 4998) / 4999);
    digest_close(&s, r, d);
    cr_assert_arr_eq(d, want, 32, "decoded ahead differs from the serial feed");

    /* The sink's position moves back under the runner (a swapped-in
     * generation behind it): it reads again from there. */
    faulty y;
    memset(&y, 0, sizeof y);
    open_other(&f, "rewound", &y.inner, &r);
    y.rewind_at = 3;
    proj_sink fs = {&fy_ops, &y};
    memset(&st, 0, sizeof st);
    cr_assert_eq(proj_fill(wr_log(f.w), &fs, 7000, NULL, NULL, &st, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(st.next_pos, end);
    digest_close(&y.inner, r, d);
    cr_assert_arr_eq(d, want, 32, "a rewound position changed the result");

    /* An apply fails in the middle: the batch is abandoned, the batches
     * before it stay; the next catch-up finishes. Then stopped by the
     * progress callback while the reader waits for room. */
    memset(&y, 0, sizeof y);
    open_other(&f, "failed", &y.inner, &r);
    y.fail_pos = end / 2;
    fs = (proj_sink){&fy_ops, &y};
    memset(&st, 0, sizeof st);
    cr_assert_eq(proj_fill(wr_log(f.w), &fs, 3000, NULL, NULL, &st, err, sizeof err), -1);
    cr_assert(strstr(err, "injected failure"), "%s", err);
    uint64_t pos;
    cr_assert_eq(y.inner.ops->next_pos(y.inner.ctx, &pos), 0);
    cr_assert(pos <= end / 2 && pos + 3000 > end / 2, "stored %" PRIu64, pos);
    memset(&st, 0, sizeof st);
    cr_assert_eq(proj_fill(wr_log(f.w), &fs, 3000, NULL, NULL, &st, err, sizeof err), 0, "%s",
                 err);
    digest_close(&y.inner, r, d);
    cr_assert_arr_eq(d, want, 32, "a failed batch left a trace");

    open_other(&f, "stopped", &s, &r);
    memset(&st, 0, sizeof st);
    cr_assert_eq(proj_fill(wr_log(f.w), &s, 1000, stop_after_two, NULL, &st, err, sizeof err), -1);
    cr_assert(strstr(err, "stopped at position"), "%s", err);
    cr_assert_eq(st.batches, 2);
    memset(&st, 0, sizeof st);
    cr_assert_eq(proj_fill(wr_log(f.w), &s, 20000, NULL, NULL, &st, err, sizeof err), 0, "%s",
                 err);
    digest_close(&s, r, d);
    cr_assert_arr_eq(d, want, 32, "a stopped fill left a trace");
    fx_fini(&f);
}

/* ------------------------------------------- a cache of an older layout */

/* Rewrites the layout number stored in the cache generation `dir` to the
 * one before it (as a cache written by an older build). */
static void downgrade_layout(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val k = {6, "layout"}, v;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 16), 0);
    cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0, "%s", dir);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
    uint32_t layout;
    cr_assert_eq(v.mv_size, 4);
    memcpy(&layout, v.mv_data, 4);
    layout--;
    v = (MDB_val){4, &layout};
    cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(cache, an_older_layout_is_refused_until_rebuilt)
{
    fx f;
    fx_init(&f);
    story(&f);
    sync_cache(&f);
    uint8_t want[32], d[32];
    cr_assert_eq(proj_cache_digest(f.r, want), 0);
    cache_close(&f);
    char gen[400], err[512];
    snprintf(gen, sizeof gen, "%s/current", f.cache);
    downgrade_layout(gen);

    /* The projector and the API are told to rebuild it. */
    proj_sink s;
    int rc = proj_cache_open_writer(f.cache, ts_email_key, &s, err, sizeof err);
    cr_assert_eq(rc, PROJ_CACHE_EMISMATCH, "%d %s", rc, err);
    cr_assert(strstr(err, "replay --projection cache --rebuild"), "%s", err);
    proj_cache_reader *r;
    rc = proj_cache_open_reader(f.cache, ts_email_key, &r, err, sizeof err);
    cr_assert_eq(rc, PROJ_CACHE_EMISMATCH, "%d %s", rc, err);
    cr_assert(strstr(err, "rebuild"), "%s", err);

    /* A rebuild replaces it, and writer and readers open again. */
    proj_stats st;
    cr_assert_eq(proj_cache_rebuild(wr_log(f.w), f.cache, ts_email_key, 7, NULL, NULL, &st, err,
                                    sizeof err),
                 0, "%s", err);
    cr_assert_eq(proj_cache_open_reader(f.cache, ts_email_key, &r, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(proj_cache_digest(r, d), 0);
    proj_cache_reader_close(r);
    cr_assert_arr_eq(d, want, 32, "the rebuilt cache differs");
    cache_open(&f);
    cr_assert_eq(proj_cache_digest(f.r, d), 0);
    cr_assert_arr_eq(d, want, 32);
    fx_fini(&f);
}
