/* bench_core.c - throughput and latency of the event core on this machine.
 *
 *   build/ops/bench/bench_core [--dir DIR] [--runs N] [--quick]
 *                              [--producers P] [--inflight N] [--only F]
 *
 * Figures (see ops/bench/README.md for what each one means):
 *   1. raw fdatasync rate of the bench directory's disk (append 200 B + sync)
 *   2. durable log_append of 200-byte events in batches of 1, 100 and 1,000
 *      (encoding + SHA-256 chain inside the timed loop); lone-append latency
 *      against one raw fdatasync (batch 1 runs in slices alternating with
 *      figure 1's, so that both see the disk in the same state)
 *   3. full scan of a 1,000,000-event log: ev_decode (decode + hash verify)
 *      of every record and the prev-hash chain check
 *   4. the writer: place-order commands through wr_queue + wr_run (producer
 *      threads, group commit), and a direct wr_process loop (1,000 per batch)
 *
 * Everything is made in a fresh directory (under $TMPDIR, else /var/tmp, or
 * under --dir) which is removed at the end. Progress goes to stderr, figures
 * to stdout.
 */
#define _GNU_SOURCE
#include "measure.h"
#include "core/event.h"
#include "core/log.h"
#include "core/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- settings */

typedef struct cfg {
    char parent[2048];   /* where the fresh bench directory is made */
    int runs;
    bool quick;
    double sync_secs;    /* figure 1: seconds per run */
    double append_secs;  /* figure 2: seconds per batch size per run */
    uint64_t scan_events;/* figure 3: log size */
    uint64_t wr_cmds;    /* figure 4: commands per run (each variant) */
    int producers;
    int inflight;        /* requests in flight, all producers together */
} cfg;

static char g_root[4096]; /* the fresh bench directory */

/* ----------------------------------------------------------------- utils */

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void rmtree(const char *path);

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_core: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_root[0])
        rmtree(g_root); /* leave nothing behind */
    exit(1);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "bench_core: cannot remove %s: %s\n", path,
                strerror(errno));
    return 0;
}

static void rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Ctrl-C or kill: remove the bench directory before going (not strictly
 * async-signal-safe, but the process is about to die anyway). */
static void on_signal(int sig)
{
    if (g_root[0])
        rmtree(g_root);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A fresh sub-directory of the bench directory: <root>/<name>. */
static void subdir(char *buf, size_t cap, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(buf, cap, "%s/%s", g_root, name);
    rmtree(buf);
}

/* A growable array of doubles (latencies, per-run figures). */
typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static void dv_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->v = realloc(d->v, d->cap * sizeof *d->v);
        if (!d->v)
            die("out of memory");
    }
    d->v[d->n++] = x;
}

/* Nearest-rank percentile (p in 0..100) of d (sorted in place). */
static double pct(dvec *d, double p)
{
    if (!d->n)
        return 0;
    qsort(d->v, d->n, sizeof *d->v, bm_cmp_d);
    double x = p / 100.0 * (double)d->n;
    size_t k = (size_t)x;
    if ((double)k < x)
        k++;
    if (k < 1)
        k = 1;
    if (k > d->n)
        k = d->n;
    return d->v[k - 1];
}

/* median/min/max of a figure's runs */
typedef struct stat3 {
    double med, min, max;
} stat3;

static stat3 st3(const dvec *runs)
{
    dvec c = {0};
    for (size_t i = 0; i < runs->n; i++)
        dv_push(&c, runs->v[i]);
    stat3 s = {pct(&c, 50), c.n ? c.v[0] : 0, c.n ? c.v[c.n - 1] : 0};
    if (c.n && c.n % 2 == 0) /* even count: mean of the middle two */
        s.med = (c.v[c.n / 2 - 1] + c.v[c.n / 2]) / 2;
    free(c.v);
    return s;
}

static void print_stat(const char *label, const dvec *runs, const char *unit)
{
    stat3 s = st3(runs);
    char a[32], b[32], c[32];
    printf("  %-34s %10s %-9s (min %s, max %s, %zu runs)\n", label,
           bm_human(s.med, a, sizeof a), unit, bm_human(s.min, b, sizeof b),
           bm_human(s.max, c, sizeof c), runs->n);
}

static void print_ms(const char *label, const dvec *runs)
{
    stat3 s = st3(runs);
    printf("  %-34s %10.3f ms        (min %.3f, max %.3f)\n", label, s.med,
           s.min, s.max);
}

/* ------------------------------------------------------- bench catalogue */

#define N_WATCHES 500

static uint8_t g_watch_id[N_WATCHES][16];
static char g_watch_name[N_WATCHES][32];
static char g_watch_model[N_WATCHES][16];

static int64_t watch_price(int i) { return 10000 + 137 * (int64_t)i; }

static void init_catalogue(void)
{
    uint64_t seed = 0x5DEECE66Dull;
    for (int i = 0; i < N_WATCHES; i++) {
        /* UUIDv7 as the API makes them: creation time (one watch a minute
         * from a fixed date), then random bits (here from a fixed seed, so
         * that every run adds the same catalogue). */
        uint8_t *id = g_watch_id[i];
        uint64_t ms = 1717200000000ull + (uint64_t)i * 60000u;
        for (int b = 0; b < 6; b++)
            id[b] = (uint8_t)(ms >> (40 - 8 * b));
        uint64_t r1 = bm_rnd(&seed), r2 = bm_rnd(&seed);
        id[6] = (uint8_t)(0x70 | (r1 & 0x0f));
        id[7] = (uint8_t)(r1 >> 8);
        for (int b = 8; b < 16; b++)
            id[b] = (uint8_t)(r2 >> (8 * (b - 8)));
        id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
        snprintf(g_watch_name[i], sizeof g_watch_name[i], "Bench Diver %03d", i);
        snprintf(g_watch_model[i], sizeof g_watch_model[i], "BD-%03d", i);
    }
}

/* The 200-byte-class event of figures 2 and 3: an order.status_changed
 * (pending -> processing) of order k, with the envelope an admin's command
 * gives it (correlation and causation ids, actor). A stock.adjusted record
 * is ~265 bytes here: its "watch-<uuid>" stream and 16-byte watch id alone
 * take 70. */
static void make_event(ev_event *ev, uint64_t k, uint64_t now)
{
    static char stream[32] = "order-";
    uint64_t id = 100000 + k % 900000; /* six digits, formatted by hand so
                                          that the harness costs little */
    for (int i = 11; i >= 6; i--, id /= 10)
        stream[i] = (char)('0' + id % 10);
    memset(&ev->env, 0, sizeof ev->env);
    ev->env.type = EV_T_ORDER_STATUS_CHANGED;
    ev->env.version = ev_type_version(EV_T_ORDER_STATUS_CHANGED);
    ev->env.stream = (ev_str){stream, 12};
    ev->env.recorded_us = now;
    ev->env.correlation = EV_STR("req-7f3a9c");
    ev->env.causation = EV_STR("cmd-7f3a9c");
    ev->env.actor = EV_STR("system");
    ev_order_status_changed *p = &ev->u.order_status_changed;
    p->order_id = 100000 + k % 900000;
    p->from = EV_order_status_PENDING;
    p->to = EV_order_status_PROCESSING;
}

/* ------------------------------------------------------ 1. raw fdatasync */

/* Figures 1 and 2 (batch 1) are measured in alternating slices of a run,
 * so that both see the disk in the same state: a shared machine's disk
 * latency drifts by 2x within minutes. */
#define SLICES 8

typedef struct sync_st {
    char path[4200];
    int fd;
    off_t off;
    uint64_t n;
    double busy; /* seconds spent in slices */
    dvec lat;    /* ms */
} sync_st;

typedef struct sync_res {
    double per_s, p50_ms, p99_ms;
} sync_res;

static void sync_open(sync_st *st, int run)
{
    memset(st, 0, sizeof *st);
    subdir(st->path, sizeof st->path, "fsync-%d", run);
    st->fd = open(st->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (st->fd < 0)
        die("cannot open %s: %s", st->path, strerror(errno));
}

/* pwrite 200 bytes at the end of the file, fdatasync; for `secs`. */
static void sync_slice(sync_st *st, double secs)
{
    uint8_t rec[200];
    memset(rec, 0xab, sizeof rec);
    double t0 = bm_now_s(), t = t0;
    while (t - t0 < secs) {
        double a = bm_now_s();
        if (pwrite(st->fd, rec, sizeof rec, st->off) != (ssize_t)sizeof rec)
            die("pwrite %s: %s", st->path, strerror(errno));
        if (fdatasync(st->fd) != 0)
            die("fdatasync %s: %s", st->path, strerror(errno));
        t = bm_now_s();
        dv_push(&st->lat, (t - a) * 1e3);
        st->off += (off_t)sizeof rec;
        st->n++;
    }
    st->busy += t - t0;
}

static sync_res sync_close(sync_st *st)
{
    close(st->fd);
    unlink(st->path);
    sync_res r = {(double)st->n / st->busy, pct(&st->lat, 50), pct(&st->lat, 99)};
    free(st->lat.v);
    return r;
}

/* ----------------------------------------------------- 2. durable appends */

typedef struct app_st {
    char dir[4200];
    log_t *log;
    ev_enc *enc;
    ev_buf buf;
    size_t *lens, batch;
    uint8_t prev[EV_HASH_LEN];
    uint64_t batches, events, bytes, k;
    double busy;
    dvec lat;
} app_st;

typedef struct append_res {
    double events_s, batches_s, p50_ms, p99_ms, avg_rec;
} append_res;

static log_t *open_log(const char *dir)
{
    char uri[4300], err[512];
    log_t *log;
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    if (log_open(uri, LOG_WRITE, &log, err, sizeof err) != 0)
        die("%s", err);
    return log;
}

static void app_open(app_st *st, size_t batch, int run)
{
    memset(st, 0, sizeof *st);
    subdir(st->dir, sizeof st->dir, "append-%zu-%d", batch, run);
    st->log = open_log(st->dir);
    st->enc = ev_enc_new();
    st->batch = batch;
    st->lens = malloc(batch * sizeof *st->lens);
    if (!st->enc || !st->lens)
        die("out of memory");
    uint64_t lastpos;
    log_last(st->log, &lastpos, st->prev);
}

/* Encode `batch` events (chained) and append them in one durable step; for
 * `secs`. The latency of a batch covers its encoding and its append. */
static void app_slice(app_st *st, double secs)
{
    ev_event ev;
    double t0 = bm_now_s(), t = t0;
    while (t - t0 < secs) {
        double a = bm_now_s();
        st->buf.len = 0;
        uint64_t now = wall_us();
        for (size_t i = 0; i < st->batch; i++, st->k++) {
            make_event(&ev, st->k, now);
            ev_new_id(st->enc, now, ev.env.id);
            size_t before = st->buf.len;
            int rc = ev_encode(st->enc, &ev, st->prev, &st->buf, st->prev);
            if (rc)
                die("ev_encode: %s", ev_strerror(rc));
            st->lens[i] = st->buf.len - before;
        }
        uint64_t first, last;
        if (log_append(st->log, st->buf.p, st->lens, st->batch, &first, &last) != 0)
            die("log_append: %s", log_errmsg(st->log));
        t = bm_now_s();
        dv_push(&st->lat, (t - a) * 1e3);
        st->batches++;
        st->events += st->batch;
        st->bytes += st->buf.len;
    }
    st->busy += t - t0;
}

static append_res app_close(app_st *st)
{
    append_res r = {(double)st->events / st->busy, (double)st->batches / st->busy,
                    pct(&st->lat, 50), pct(&st->lat, 99),
                    (double)st->bytes / (double)st->events};
    free(st->lat.v);
    free(st->lens);
    ev_buf_free(&st->buf);
    ev_enc_free(st->enc);
    log_close(st->log);
    rmtree(st->dir);
    return r;
}

/* ------------------------------------------------------------- 3. scan */

static void build_scan_log(const char *dir, uint64_t total, double *avg_rec)
{
    log_t *log = open_log(dir);
    ev_enc *enc = ev_enc_new();
    ev_buf buf = {0};
    size_t lens[1000];
    uint8_t prev[EV_HASH_LEN] = {0};
    ev_event ev;
    uint64_t k = 0, bytes = 0;
    double t0 = bm_now_s(), shown = t0;
    while (k < total) {
        size_t n = total - k < 1000 ? (size_t)(total - k) : 1000;
        buf.len = 0;
        uint64_t now = wall_us();
        for (size_t i = 0; i < n; i++, k++) {
            make_event(&ev, k, now);
            ev_new_id(enc, now, ev.env.id);
            size_t before = buf.len;
            int rc = ev_encode(enc, &ev, prev, &buf, prev);
            if (rc)
                die("ev_encode: %s", ev_strerror(rc));
            lens[i] = buf.len - before;
        }
        uint64_t first, last;
        if (log_append(log, buf.p, lens, n, &first, &last) != 0)
            die("log_append: %s", log_errmsg(log));
        bytes += buf.len;
        if (bm_now_s() - shown > 2) {
            shown = bm_now_s();
            bm_progress("built %llu of %llu events", (unsigned long long)k,
                     (unsigned long long)total);
        }
    }
    bm_progress("built %llu events in %.2f s", (unsigned long long)total, bm_now_s() - t0);
    *avg_rec = (double)bytes / (double)total;
    ev_buf_free(&buf);
    ev_enc_free(enc);
    log_close(log);
}

typedef struct scan_ctx {
    ev_dec *dec;
    uint8_t prev[EV_HASH_LEN];
    uint64_t n, bad;
    ev_event ev;
} scan_ctx;

static int scan_one(void *ud, const log_rec *r)
{
    scan_ctx *c = ud;
    int rc = ev_decode(c->dec, r->data, r->len, r->pos, &c->ev);
    if (rc == 0 && memcmp(c->ev.env.prev_hash, c->prev, EV_HASH_LEN) != 0)
        rc = EV_ECHAIN;
    if (rc) {
        fprintf(stderr, "bench_core: record %llu: %s\n",
                (unsigned long long)r->pos, ev_strerror(rc));
        c->bad++;
        return 1;
    }
    memcpy(c->prev, c->ev.env.hash, EV_HASH_LEN);
    c->n++;
    return 0;
}

static double bench_scan(const char *dir, uint64_t total, double *cpu_share)
{
    char uri[4300], err[512];
    log_t *log;
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    if (log_open(uri, LOG_READ, &log, err, sizeof err) != 0)
        die("%s", err);
    scan_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->dec = ev_dec_new()))
        die("out of memory");
    uint64_t next;
    double t0 = bm_now_s(), c0 = bm_cpu_s();
    int rc = log_scan(log, 0, 0, scan_one, c, &next);
    double el = bm_now_s() - t0;
    *cpu_share = (bm_cpu_s() - c0) / el;
    if (rc != 0 || c->bad)
        die("scan failed (%d): %s", rc, log_errmsg(log));
    if (c->n != total)
        die("scan saw %llu records, expected %llu", (unsigned long long)c->n,
            (unsigned long long)total);
    ev_dec_free(c->dec);
    free(c);
    log_close(log);
    return (double)total / el;
}

/* ----------------------------------------------------------- 4. writer */

static wr_writer *open_writer(const char *dir)
{
    char uri[4300], err[512];
    wr_config wc;
    memset(&wc, 0, sizeof wc);
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    wc.log_uri = uri;
    wc.snapshot_path = NULL;
    wc.max_batch = 0; /* the default, 4096 */
    for (int i = 0; i < 32; i++)
        wc.email_key[i] = (uint8_t)(i * 7 + 1);
    wr_writer *w;
    if (wr_open(&wc, &w, err, sizeof err) != 0)
        die("wr_open: %s", err);
    return w;
}

/* Adds the 500 watches (large stock) in one batch. */
static void add_catalogue(wr_writer *w)
{
    wr_req *reqs = calloc(N_WATCHES, sizeof *reqs);
    wr_req **pp = malloc(N_WATCHES * sizeof *pp);
    if (!reqs || !pp)
        die("out of memory");
    uint64_t now = wall_us();
    for (int i = 0; i < N_WATCHES; i++) {
        dec_cmd *c = &reqs[i].cmd;
        c->kind = DEC_WATCH_ADD;
        c->now_us = now;
        c->correlation = EV_STR("bench-setup");
        c->actor = EV_STR("system");
        c->actor_system = true;
        dec_watch_fields *f = &c->u.watch;
        memcpy(f->watch_id, g_watch_id[i], 16);
        f->changed = EV_WF_ALL;
        f->watch_name = ev_str_c(g_watch_name[i]);
        f->brand = EV_STR("Benchmark");
        f->model_code = ev_str_c(g_watch_model[i]);
        f->description = EV_STR("A steel diver made for measuring things.");
        f->price = watch_price(i);
        f->currency = EV_STR("EUR");
        f->category = EV_STR("diver");
        f->set_stock = true;
        f->stock = DEC_MAX_STOCK;
        pp[i] = &reqs[i];
    }
    if (wr_process(w, pp, N_WATCHES) != 0)
        die("adding the catalogue failed: %s", log_errmsg(wr_log(w)));
    for (int i = 0; i < N_WATCHES; i++)
        if (reqs[i].err || reqs[i].out.reason != DEC_OK)
            die("watch %d refused: %s (%s)", i, dec_reason_code(reqs[i].out.reason),
                reqs[i].out.message ? reqs[i].out.message : "");
    free(pp);
    free(reqs);
}

static const char GUEST_TOKEN_HASH[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/* A guest's place-order command of 1 to 3 lines at the catalogue prices. */
static void fill_order(wr_req *r, dec_line_in lines[3], uint64_t *seed)
{
    memset(&r->cmd, 0, sizeof r->cmd);
    dec_cmd *c = &r->cmd;
    c->kind = DEC_ORDER_PLACE;
    c->now_us = wall_us();
    c->correlation = EV_STR("req-bench");
    c->actor = EV_STR("guest");
    c->actor_customer = 0;
    uint64_t x = bm_rnd(seed);
    uint32_t n = 1 + (uint32_t)(x % 3);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t y = bm_rnd(seed);
        int k = (int)(y % N_WATCHES);
        memcpy(lines[i].watch_id, g_watch_id[k], 16);
        lines[i].quantity = 1 + (int64_t)((y >> 32) % 3);
        lines[i].unit_price = watch_price(k);
        lines[i].has_price = true;
    }
    c->u.order.lines = lines;
    c->u.order.n_lines = n;
    c->u.order.currency = (ev_str){NULL, 0};
    c->u.order.shipping_address = EV_STR("Jane Doe, 12 Rue de la Paix, 75002 Paris, FR");
    c->u.order.guest_token_hash = EV_STR(GUEST_TOKEN_HASH);
}

typedef struct wr_res {
    double cmds_s, events_s, avg_batch, avg_rec;
} wr_res;

/* Average record size of the log's records from position `from` (after the
 * timed part). */
static double avg_record(log_t *log, uint64_t from)
{
    uint64_t acc[2] = {0, 0}, next;
    if (log_scan(log, from, 0, bm_count_bytes, acc, &next) != 0 || !acc[0])
        return 0;
    return (double)acc[1] / (double)acc[0];
}

/* -- 4a. direct wr_process loop */

static wr_res bench_wr_direct(uint64_t total, int run)
{
    char dir[4200];
    subdir(dir, sizeof dir, "writer-direct-%d", run);
    wr_writer *w = open_writer(dir);
    add_catalogue(w);
    enum { B = 1000 };
    wr_req *reqs = calloc(B, sizeof *reqs);
    wr_req **pp = malloc(B * sizeof *pp);
    dec_line_in(*lines)[3] = calloc(B, sizeof *lines);
    if (!reqs || !pp || !lines)
        die("out of memory");
    for (int i = 0; i < B; i++)
        pp[i] = &reqs[i];
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)run;
    uint64_t done = 0, events = 0, b0 = wr_batches(w);
    uint64_t pos0 = wr_state(w)->next_pos;
    double t0 = bm_now_s();
    while (done < total) {
        size_t n = total - done < B ? (size_t)(total - done) : B;
        for (size_t i = 0; i < n; i++)
            fill_order(&reqs[i], lines[i], &seed);
        if (wr_process(w, pp, n) != 0)
            die("wr_process: %s", log_errmsg(wr_log(w)));
        for (size_t i = 0; i < n; i++)
            if (reqs[i].err || reqs[i].out.reason != DEC_OK)
                die("order refused: %s (%s)", dec_reason_code(reqs[i].out.reason),
                    reqs[i].out.message ? reqs[i].out.message : "");
        done += n;
    }
    double el = bm_now_s() - t0;
    events = wr_state(w)->next_pos - pos0;
    wr_res r = {(double)total / el, (double)events / el,
                (double)total / (double)(wr_batches(w) - b0),
                avg_record(wr_log(w), pos0)};
    free(lines);
    free(pp);
    free(reqs);
    wr_close(w);
    rmtree(dir);
    return r;
}

/* -- 4b. producers -> wr_queue -> wr_run */

typedef struct producer producer;

typedef struct breq {
    wr_req r; /* first: done() gets &r */
    dec_line_in lines[3];
    producer *owner;
} breq;

struct producer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    breq **free_list;
    size_t n_free, pool;
    bool waiting;
    uint64_t quota;
    uint64_t seed;
    wr_queue *q;
    pthread_barrier_t *start;
    breq *reqs;
};

static atomic_uint_fast64_t g_completed, g_failed;

static void on_done(wr_req *r, void *ud)
{
    breq *b = ud;
    if (r->err || r->out.reason != DEC_OK)
        atomic_fetch_add_explicit(&g_failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_completed, 1, memory_order_relaxed);
    producer *p = b->owner;
    pthread_mutex_lock(&p->mu);
    p->free_list[p->n_free++] = b;
    if (p->waiting)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *producer_main(void *arg)
{
    producer *p = arg;
    breq **local = malloc(p->pool * sizeof *local);
    if (!local)
        die("out of memory");
    pthread_barrier_wait(p->start);
    uint64_t sent = 0;
    while (sent < p->quota) {
        pthread_mutex_lock(&p->mu);
        while (p->n_free == 0) {
            p->waiting = true;
            pthread_cond_wait(&p->cv, &p->mu);
            p->waiting = false;
        }
        size_t n = p->n_free;
        if (n > p->quota - sent)
            n = (size_t)(p->quota - sent);
        p->n_free -= n;
        memcpy(local, p->free_list + p->n_free, n * sizeof *local);
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < n; i++) {
            breq *b = local[i];
            fill_order(&b->r, b->lines, &p->seed);
            b->r.done = on_done;
            b->r.ud = b;
            if (wr_queue_push(p->q, &b->r) != 0)
                die("the queue closed early");
        }
        sent += n;
    }
    /* Wait until every request of this producer is answered. */
    pthread_mutex_lock(&p->mu);
    while (p->n_free < p->pool) {
        p->waiting = true;
        pthread_cond_wait(&p->cv, &p->mu);
        p->waiting = false;
    }
    pthread_mutex_unlock(&p->mu);
    free(local);
    return NULL;
}

typedef struct run_arg {
    wr_writer *w;
    wr_source src;
    int rc;
} run_arg;

static void *writer_main(void *arg)
{
    run_arg *a = arg;
    a->rc = wr_run(a->w, &a->src);
    return NULL;
}

static wr_res bench_wr_queue(uint64_t total, int n_prod, int inflight, int run)
{
    char dir[4200];
    subdir(dir, sizeof dir, "writer-queue-%d", run);
    wr_writer *w = open_writer(dir);
    add_catalogue(w);
    wr_queue q;
    wr_queue_init(&q);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n_prod + 1);
    producer *ps = calloc((size_t)n_prod, sizeof *ps);
    if (!ps)
        die("out of memory");
    atomic_store(&g_completed, 0);
    atomic_store(&g_failed, 0);
    size_t pool = (size_t)(inflight / n_prod);
    if (pool < 1)
        pool = 1;
    for (int i = 0; i < n_prod; i++) {
        producer *p = &ps[i];
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        p->pool = pool;
        p->reqs = calloc(pool, sizeof *p->reqs);
        p->free_list = malloc(pool * sizeof *p->free_list);
        if (!p->reqs || !p->free_list)
            die("out of memory");
        for (size_t k = 0; k < pool; k++) {
            p->reqs[k].owner = p;
            p->free_list[k] = &p->reqs[k];
        }
        p->n_free = pool;
        p->quota = total / (uint64_t)n_prod + (i < (int)(total % (uint64_t)n_prod));
        p->seed = 0xD1B54A32D192ED03ull * (uint64_t)(i + 1) ^ (uint64_t)run;
        p->q = &q;
        p->start = &start;
        if (pthread_create(&p->th, NULL, producer_main, p) != 0)
            die("pthread_create failed");
    }
    run_arg ra = {w, wr_queue_source(&q), 0};
    pthread_t wt;
    if (pthread_create(&wt, NULL, writer_main, &ra) != 0)
        die("pthread_create failed");
    uint64_t b0 = wr_batches(w);
    uint64_t pos0 = wr_state(w)->next_pos;
    pthread_barrier_wait(&start);
    double t0 = bm_now_s();
    for (int i = 0; i < n_prod; i++)
        pthread_join(ps[i].th, NULL);
    double el = bm_now_s() - t0;
    wr_queue_close(&q);
    pthread_join(wt, NULL);
    uint64_t done = atomic_load(&g_completed), bad = atomic_load(&g_failed);
    if (done != total || bad)
        die("writer answered %llu of %llu commands, %llu refused or failed",
            (unsigned long long)done, (unsigned long long)total,
            (unsigned long long)bad);
    uint64_t events = wr_state(w)->next_pos - pos0;
    wr_res r = {(double)total / el, (double)events / el,
                (double)total / (double)(wr_batches(w) - b0),
                avg_record(wr_log(w), pos0)};
    for (int i = 0; i < n_prod; i++) {
        free(ps[i].reqs);
        free(ps[i].free_list);
        pthread_mutex_destroy(&ps[i].mu);
        pthread_cond_destroy(&ps[i].cv);
    }
    free(ps);
    pthread_barrier_destroy(&start);
    wr_queue_destroy(&q);
    wr_close(w);
    rmtree(dir);
    return r;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_core [--dir DIR] [--runs N] [--quick] [--producers P]\n"
            "                  "
            "[--inflight N] [--only F]\n"
            "  --dir DIR       make the bench directory under DIR (default "
            "$TMPDIR or /var/tmp)\n"
            "  --runs N        repetitions of each measurement (default 3)\n"
            "  --quick         small sizes, for a smoke run\n"
            "  --producers P   producer threads of the writer figure (default 2)\n"
            "  --inflight N    requests in flight, all producers together "
            "(default 4096)\n"
            "  --only F        run only figure F (1-4; 2 runs 1 as well, for its "
            "ratios)\n");
    exit(2);
}

static const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

int main(int argc, char **argv)
{
    cfg c;
    memset(&c, 0, sizeof c);
    const char *tmp = getenv("TMPDIR");
    snprintf(c.parent, sizeof c.parent, "%s", tmp && *tmp ? tmp : "/var/tmp");
    c.runs = 3;
    c.producers = 2;
    c.inflight = 4096;
    int only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            snprintf(c.parent, sizeof c.parent, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            c.runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            c.quick = true;
        else if (!strcmp(argv[i], "--producers") && i + 1 < argc)
            c.producers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
            c.inflight = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = atoi(argv[++i]);
        else
            usage();
    }
    bool do1 = !only || only == 1 || only == 2, do2 = !only || only == 2,
         do3 = !only || only == 3, do4 = !only || only == 4;
    if (c.runs < 1 || c.producers < 1 || c.inflight < 1 || only < 0 || only > 4)
        usage();
    if (c.quick) {
        c.sync_secs = 0.5;
        c.append_secs = 0.5;
        c.scan_events = 100000;
        c.wr_cmds = 20000;
    } else {
        c.sync_secs = 2;
        c.append_secs = 2;
        c.scan_events = 1000000;
        c.wr_cmds = 300000;
    }
    snprintf(g_root, sizeof g_root, "%s/ws-bench-XXXXXX", c.parent);
    if (!mkdtemp(g_root))
        die("cannot make a directory under %s: %s", c.parent, strerror(errno));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN); /* `bench_core | head` must still clean up */
    init_catalogue();

    char hostname[256] = "?";
    gethostname(hostname, sizeof hostname - 1);
    time_t tnow = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&tnow));
    printf("bench_core  %s  host %s  cpus %ld  load %.2f  dir %s  runs %d%s\n",
           date, hostname, sysconf(_SC_NPROCESSORS_ONLN), bm_loadavg(), g_root, c.runs,
           c.quick ? "  (--quick)" : "");
    fflush(stdout);

    /* ---- 1 and 2 */
    static const size_t sizes[3] = {1, 100, 1000};
    dvec sy_rate = {0}, sy_p50 = {0}, sy_p99 = {0};
    dvec ap_ev[3] = {{0}}, ap_b[3] = {{0}}, ap_p50[3] = {{0}}, ap_p99[3] = {{0}};
    double avg_rec = 0;
    if (do1)
        fprintf(stderr, "[1/4] raw fdatasync%s, %.1f s x %d\n",
                do2 ? " and lone appends (alternating slices)" : "", c.sync_secs,
                c.runs);
    for (int r = 0; do1 && r < c.runs; r++) {
        sync_st ss;
        app_st as;
        sync_open(&ss, r);
        if (do2)
            app_open(&as, 1, r);
        for (int i = 0; i < SLICES; i++) {
            sync_slice(&ss, c.sync_secs / SLICES);
            if (do2)
                app_slice(&as, c.sync_secs / SLICES);
        }
        sync_res s = sync_close(&ss);
        dv_push(&sy_rate, s.per_s);
        dv_push(&sy_p50, s.p50_ms);
        dv_push(&sy_p99, s.p99_ms);
        bm_progress("run %d: raw %.0f syncs/s, p50 %.3f ms, p99 %.3f ms", r + 1,
                 s.per_s, s.p50_ms, s.p99_ms);
        if (do2) {
            append_res a = app_close(&as);
            dv_push(&ap_ev[0], a.events_s);
            dv_push(&ap_b[0], a.batches_s);
            dv_push(&ap_p50[0], a.p50_ms);
            dv_push(&ap_p99[0], a.p99_ms);
            bm_progress("run %d: lone appends %.0f/s, p50 %.3f ms, p99 %.3f ms", r + 1,
                     a.batches_s, a.p50_ms, a.p99_ms);
        }
    }
    if (do1) {
        printf("\n1. raw fdatasync (pwrite 200 B appended + fdatasync)\n");
        print_stat("syncs/s", &sy_rate, "/s");
        print_ms("latency p50", &sy_p50);
        print_ms("latency p99", &sy_p99);
        fflush(stdout);
    }
    double raw_rate = st3(&sy_rate).med, raw_p50 = st3(&sy_p50).med,
           raw_p99 = st3(&sy_p99).med;

    if (do2)
        fprintf(stderr, "[2/4] durable appends, batches of 100/1000, %.1f s each x %d\n",
                c.append_secs, c.runs);
    for (int r = 0; do2 && r < c.runs; r++)
        for (int s = 1; s < 3; s++) {
            app_st as;
            app_open(&as, sizes[s], r);
            app_slice(&as, c.append_secs);
            append_res a = app_close(&as);
            dv_push(&ap_ev[s], a.events_s);
            dv_push(&ap_b[s], a.batches_s);
            dv_push(&ap_p50[s], a.p50_ms);
            dv_push(&ap_p99[s], a.p99_ms);
            avg_rec = a.avg_rec;
            bm_progress("run %d, batch %zu: %.0f events/s, %.0f batches/s, p50 %.3f ms",
                     r + 1, sizes[s], a.events_s, a.batches_s, a.p50_ms);
        }
    double lone_p50 = 0, lone_p99 = 0;
    if (do2) {
        printf("\n2. durable log_append (order.status_changed, average record %.1f bytes;\n"
               "   encode + SHA-256 chain + one synced LMDB transaction per batch)\n",
               avg_rec);
        for (int s = 0; s < 3; s++) {
            char label[64];
            printf("  batch %zu:\n", sizes[s]);
            snprintf(label, sizeof label, "  events/s");
            print_stat(label, &ap_ev[s], "/s");
            snprintf(label, sizeof label, "  batches/s");
            print_stat(label, &ap_b[s], "/s");
            printf("  %-34s %10.3f\n", "  batches/s / raw syncs/s",
                   st3(&ap_b[s]).med / raw_rate);
            print_ms("  batch latency p50", &ap_p50[s]);
            print_ms("  batch latency p99", &ap_p99[s]);
        }
        lone_p50 = st3(&ap_p50[0]).med;
        lone_p99 = st3(&ap_p99[0]).med;
        printf("  lone append vs one raw fdatasync:  p50 %.3f ms vs %.3f ms (%.2fx), "
               "p99 %.3f ms vs %.3f ms (%.2fx)\n",
               lone_p50, raw_p50, lone_p50 / raw_p50, lone_p99, raw_p99,
               lone_p99 / raw_p99);
        fflush(stdout);
    }

    /* ---- 3 */
    dvec sc = {0};
    if (do3) {
        fprintf(stderr, "[3/4] scan: building a %llu-event log (batches of 1000)\n",
                (unsigned long long)c.scan_events);
        char scan_dir[4200];
        subdir(scan_dir, sizeof scan_dir, "scan");
        double scan_rec = 0;
        build_scan_log(scan_dir, c.scan_events, &scan_rec);
        for (int r = 0; r < c.runs; r++) {
            double share;
            double x = bench_scan(scan_dir, c.scan_events, &share);
            dv_push(&sc, x);
            bm_progress("scan run %d: %.0f events/s (on a CPU %.0f%% of the time)", r + 1,
                     x, share * 100);
        }
        rmtree(scan_dir);
        printf("\n3. full scan of %llu events (average record %.1f bytes; log_scan +\n"
               "   ev_decode with hash verify + prev-hash chain check; warm page cache)\n",
               (unsigned long long)c.scan_events, scan_rec);
        print_stat("events/s", &sc, "/s");
        fflush(stdout);
    }

    /* ---- 4 */
    dvec wq_c = {0}, wq_e = {0}, wq_b = {0}, wd_c = {0}, wd_e = {0}, wd_b = {0};
    double wr_rec = 0;
    if (do4) {
        fprintf(stderr, "[4/4] writer: %llu place-order commands per run, %d producers, "
                        "%d in flight\n",
                (unsigned long long)c.wr_cmds, c.producers, c.inflight);
        for (int r = 0; r < c.runs; r++) {
            wr_res a = bench_wr_queue(c.wr_cmds, c.producers, c.inflight, r);
            dv_push(&wq_c, a.cmds_s);
            dv_push(&wq_e, a.events_s);
            dv_push(&wq_b, a.avg_batch);
            wr_rec = a.avg_rec;
            bm_progress("queue run %d: %.0f commands/s, %.0f events/s, %.1f commands/commit",
                     r + 1, a.cmds_s, a.events_s, a.avg_batch);
            wr_res d = bench_wr_direct(c.wr_cmds, r);
            dv_push(&wd_c, d.cmds_s);
            dv_push(&wd_e, d.events_s);
            dv_push(&wd_b, d.avg_batch);
            bm_progress("direct run %d: %.0f commands/s, %.0f events/s", r + 1, d.cmds_s,
                     d.events_s);
        }
        printf("\n4. writer: guest place-order commands (1-3 lines), decided and durably\n"
               "   appended (500-watch catalogue, fresh log per run; %.2f events per\n"
               "   command, average record %.1f bytes)\n",
               st3(&wq_e).med / st3(&wq_c).med, wr_rec);
        printf("  via wr_queue + wr_run (%d producer threads, %d in flight):\n",
               c.producers, c.inflight);
        print_stat("  commands/s", &wq_c, "/s");
        print_stat("  events/s", &wq_e, "/s");
        printf("  %-34s %10.1f commands (min %.1f, max %.1f)\n", "  group-commit batch",
               st3(&wq_b).med, st3(&wq_b).min, st3(&wq_b).max);
        printf("  direct wr_process loop (1000 commands per call):\n");
        print_stat("  commands/s", &wd_c, "/s");
        print_stat("  events/s", &wd_e, "/s");
    }

    /* ---- summary */
    double b1_ratio = do2 ? st3(&ap_b[0]).med / raw_rate : 0;
    double scan_med = st3(&sc).med, wq_med = st3(&wq_c).med, wd_med = st3(&wd_c).med;
    char m[64], t[64];
    printf("\nsummary (median of %d runs; 1-minute load average now %.2f)\n", c.runs,
           bm_loadavg());
    printf("  %-34s | %-22s | %-24s | %s\n", "figure", "target", "measured",
           "ratio / verdict");
    printf("  %.34s-+-%.22s-+-%.24s-+-%.20s\n",
           "----------------------------------------",
           "----------------------------------------",
           "----------------------------------------",
           "----------------------------------------");
    if (do1) {
        snprintf(m, sizeof m, "%.0f/s, p50 %.3f ms", raw_rate, raw_p50);
        printf("  %-34s | %-22s | %-24s | %s\n", "raw fdatasync (200 B append)",
               "(reference)", m, "-");
    }
    if (do2) {
        snprintf(m, sizeof m, "p50 %.3f ms", lone_p50);
        snprintf(t, sizeof t, "<= 1.5x raw (%.3f ms)", 1.5 * raw_p50);
        printf("  %-34s | %-22s | %-24s | %.2fx  %s\n", "lone append latency (batch 1)",
               t, m, lone_p50 / raw_p50, verdict(lone_p50 <= 1.5 * raw_p50));
        snprintf(m, sizeof m, "%.0f appends/s", st3(&ap_b[0]).med);
        printf("  %-34s | %-22s | %-24s | %.2f  %s\n", "batch 1 rate / raw sync rate",
               ">= 0.67 (= 1/1.5)", m, b1_ratio, verdict(b1_ratio >= 1 / 1.5));
        for (int s = 1; s < 3; s++) {
            char lab[64], h[32];
            snprintf(lab, sizeof lab, "appends, batch %zu", sizes[s]);
            snprintf(m, sizeof m, "%s events/s", bm_human(st3(&ap_ev[s]).med, h, sizeof h));
            if (sizes[s] == 1000)
                printf("  %-34s | %-22s | %-24s | %.2fx  %s\n", lab, ">= 500k events/s", m,
                       st3(&ap_ev[s]).med / 5e5, verdict(st3(&ap_ev[s]).med >= 5e5));
            else
                printf("  %-34s | %-22s | %-24s | %.2f of raw sync rate\n", lab,
                       "(reference)", m, st3(&ap_b[s]).med / raw_rate);
        }
    }
    if (do3) {
        snprintf(m, sizeof m, "%s events/s", bm_human(scan_med, t, sizeof t));
        printf("  %-34s | %-22s | %-24s | %.2fx  %s\n", "full scan, decode + verify",
               ">= 2.00M events/s", m, scan_med / 2e6, verdict(scan_med >= 2e6));
    }
    if (do4) {
        snprintf(m, sizeof m, "%s cmds/s", bm_human(wq_med, t, sizeof t));
        printf("  %-34s | %-22s | %-24s | %.2fx  %s\n", "writer, queue + wr_run",
               ">= 100k cmds/s", m, wq_med / 1e5, verdict(wq_med >= 1e5));
        snprintf(m, sizeof m, "%.1f cmds/commit", st3(&wq_b).med);
        printf("  %-34s | %-22s | %-24s | %s\n", "  group-commit batch size",
               "(reference)", m, "-");
        snprintf(m, sizeof m, "%s cmds/s", bm_human(wd_med, t, sizeof t));
        /* Not the target path (no pipelining): the writer's serial capacity. */
        printf("  %-34s | %-22s | %-24s | %.2f of the target\n", "writer, direct wr_process",
               "(reference)", m, wd_med / 1e5);
    }

    rmtree(g_root);
    free(sy_rate.v);
    free(sy_p50.v);
    free(sy_p99.v);
    for (int s = 0; s < 3; s++) {
        free(ap_ev[s].v);
        free(ap_b[s].v);
        free(ap_p50[s].v);
        free(ap_p99[s].v);
    }
    free(sc.v);
    free(wq_c.v);
    free(wq_e.v);
    free(wq_b.v);
    free(wd_c.v);
    free(wd_e.v);
    free(wd_b.v);
    return 0;
}
