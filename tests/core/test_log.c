/* test_log.c - the event log (core/log.h) through its LMDB backend.
 *
 * Every record written here is a real encoded event (stock.adjusted, about
 * 200 bytes) chained from the log's tail, so the log's chain check and the
 * auditor (core/audit.h) see exactly what production writes. Each record
 * carries where it came from: order_id = its batch's id, delta = the batch's
 * size, quantity = its index in the batch, note = "marker-NNNNNN ..." with a
 * number unique in the log.
 *
 * Several tests fork helper processes (a second writer, readers, a follower,
 * a writer that is killed). Helpers only use plain C and the core library,
 * report through pipes and leave with _exit(); every assertion runs in the
 * test's own process, after its helpers have been reaped.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/event.h"
#include "core/log.h"
#include "support.h"

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

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void sleep_until_ns(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t test_seed(void)
{
    const char *e = getenv("WS_TEST_SEED");
    uint64_t s = e && *e ? strtoull(e, NULL, 0) : (uint64_t)mono_ns() ^ (uint64_t)getpid();
    return s ? s : 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Writes all of buf (helpers' reports are small, so one write each). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms; 0 on success, -1 on EOF, error
 * or timeout. */
static int read_full(int fd, void *buf, size_t n, int timeout_ms)
{
    char *p = buf;
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
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Forks a helper that dies with the test process. Returns the pid (0 in the
 * helper). */
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

/* Waits for a helper; returns its exit status (128 + signal if killed, -1 if
 * it had to be killed after timeout_ms). */
static int reap(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -2;
        if (mono_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(2);
    }
}

/* True if text contains the decimal number n delimited by non-digits. */
static int mentions_number(const char *text, long n)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", n);
    size_t nl = strlen(num);
    for (const char *p = strstr(text, num); p; p = strstr(p + 1, num)) {
        int before = p > text && p[-1] >= '0' && p[-1] <= '9';
        int after = p[nl] >= '0' && p[nl] <= '9';
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------ records, batches */

/* A batch of encoded records: their bytes concatenated, their lengths. */
typedef struct batch {
    ev_buf buf;
    size_t *lens;
    size_t n, cap;
    uint8_t last_hash[EV_HASH_LEN]; /* hash of the last record added */
} batch;

static void batch_reset(batch *b)
{
    b->buf.len = 0;
    b->n = 0;
}

static void batch_free(batch *b)
{
    ev_buf_free(&b->buf);
    free(b->lens);
    memset(b, 0, sizeof *b);
}

/* Appends to b the encoded records of batch `batch_id` with indices
 * [from, to) of a batch of `size` records, the first chained to `prev`, the
 * others to each other; record i gets marker number marker0 + (i - from).
 * Returns 0 or an EV_E* code. */
static int add_records(ev_enc *enc, batch *b, const uint8_t prev[EV_HASH_LEN],
                       uint64_t batch_id, size_t size, size_t from, size_t to,
                       uint64_t marker0)
{
    uint8_t h[EV_HASH_LEN];
    memcpy(h, prev, EV_HASH_LEN);
    for (size_t i = from; i < to; i++) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 64;
            size_t *p = realloc(b->lens, cap * sizeof *p);
            if (!p)
                return EV_ENOMEM;
            b->lens = p;
            b->cap = cap;
        }
        char note[128];
        snprintf(note, sizeof note, "marker-%06" PRIu64 " %zu/%zu", marker0 + (i - from), i,
                 size);
        ev_event ev;
        memset(&ev, 0, sizeof ev);
        uint64_t now = wall_us();
        ev.env.type = EV_T_STOCK_ADJUSTED;
        ev_new_id(enc, now, ev.env.id);
        ev.env.stream = EV_STR("watch-7");
        ev.env.recorded_us = now;
        ev.env.correlation = EV_STR("corr-1");
        ev.env.causation = EV_STR("cmd-1");
        ev.env.actor = EV_STR("system");
        ev_stock_adjusted *sa = &ev.u.stock_adjusted;
        for (int k = 0; k < 16; k++)
            sa->watch_id[k] = (uint8_t)(0xa0 + k);
        sa->delta = (int64_t)size;
        sa->quantity = (int64_t)i;
        sa->reason = EV_stock_reason_RESTOCK;
        sa->order_id = batch_id;
        sa->note = ev_str_c(note);
        size_t before = b->buf.len;
        int rc = ev_encode(enc, &ev, h, &b->buf, h);
        if (rc)
            return rc;
        b->lens[b->n++] = b->buf.len - before;
    }
    memcpy(b->last_hash, h, EV_HASH_LEN);
    return 0;
}

/* Builds a whole batch chained from the log's tail and appends it. Returns
 * the log_append result (or an EV_E* code from encoding, offset by -100). */
static int append_batch(log_t *log, ev_enc *enc, batch *b, uint64_t batch_id,
                        size_t size, uint64_t marker0, uint64_t *first,
                        uint64_t *last)
{
    uint64_t tail;
    uint8_t h[EV_HASH_LEN];
    int rc = log_last(log, &tail, h);
    if (rc)
        return rc;
    batch_reset(b);
    if ((rc = add_records(enc, b, h, batch_id, size, 0, size, marker0)) != 0)
        return rc - 100;
    return log_append(log, b->buf.p, b->lens, b->n, first, last);
}

/* What a record says about itself. */
typedef struct rec_info {
    uint64_t batch_id;
    size_t size, index;
} rec_info;

static int rec_parse(ev_dec *d, const uint8_t *p, size_t len, uint64_t pos,
                     rec_info *ri)
{
    ev_event ev;
    int rc = ev_decode(d, p, len, pos, &ev);
    if (rc)
        return rc;
    if (ev.env.type != EV_T_STOCK_ADJUSTED)
        return EV_EFORMAT;
    const ev_stock_adjusted *sa = &ev.u.stock_adjusted;
    if (sa->delta < 1 || sa->quantity < 0 || sa->quantity >= sa->delta)
        return EV_ERANGE;
    ri->batch_id = sa->order_id;
    ri->size = (size_t)sa->delta;
    ri->index = (size_t)sa->quantity;
    return 0;
}

/* Every record a scan visited: positions, lengths, bytes. */
typedef struct collected {
    uint64_t *pos;
    size_t *off, *len;
    size_t n, cap;
    ev_buf bytes;
    size_t stop_after; /* return 7 from the visitor after this many (0: never) */
} collected;

static int collect_fn(void *ud, const log_rec *r)
{
    collected *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->pos = realloc(c->pos, c->cap * sizeof *c->pos);
        c->off = realloc(c->off, c->cap * sizeof *c->off);
        c->len = realloc(c->len, c->cap * sizeof *c->len);
        if (!c->pos || !c->off || !c->len)
            abort();
    }
    if (ev_buf_reserve(&c->bytes, r->len) != 0)
        abort();
    c->pos[c->n] = r->pos;
    c->off[c->n] = c->bytes.len;
    c->len[c->n] = r->len;
    memcpy(c->bytes.p + c->bytes.len, r->data, r->len);
    c->bytes.len += r->len;
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

static void collected_free(collected *c)
{
    free(c->pos);
    free(c->off);
    free(c->len);
    ev_buf_free(&c->bytes);
    memset(c, 0, sizeof *c);
}

static void open_ok(const char *dir, int mode, log_t **out)
{
    char uri[4200], err[512] = "";
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    int rc = log_open(uri, mode, out, err, sizeof err);
    cr_assert_eq(rc, LOG_OK, "log_open(%s, %s) = %d: %s", uri,
                 mode == LOG_WRITE ? "write" : "read", rc, err);
    cr_assert_not_null(*out);
}

static uint64_t end_of(log_t *log)
{
    uint64_t end = 12345;
    int rc = log_end(log, &end);
    cr_assert_eq(rc, LOG_OK, "log_end: %d %s", rc, log_errmsg(log));
    return end;
}

/* Every test gets a fresh directory for its log, removed after the test
 * (also when an assertion fails). */
static char g_dir[512];

static void log_dir_init(void) { ts_tmpdir(g_dir, sizeof g_dir); }

static void log_dir_fini(void)
{
    if (g_dir[0])
        ts_rmtree(g_dir);
}

TestSuite(log, .init = log_dir_init, .fini = log_dir_fini);

/* ------------------------------------------------- 1. append and read */

Test(log, append_and_read)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    cr_assert_not_null(enc);
    log_t *w, *r;
    open_ok(dir, LOG_WRITE, &w);
    open_ok(dir, LOG_READ, &r);

    /* Empty: end 0, zero hash, scans see nothing. */
    static const uint8_t zero[EV_HASH_LEN];
    uint8_t h[EV_HASH_LEN];
    uint64_t p = 99;
    cr_assert_eq(end_of(w), 0);
    cr_assert_eq(end_of(r), 0);
    memset(h, 0xee, sizeof h);
    cr_assert_eq(log_last(r, &p, h), LOG_OK);
    cr_assert_eq(p, 0);
    cr_assert_arr_eq(h, zero, EV_HASH_LEN, "an empty log's last hash is zero");
    memset(h, 0xee, sizeof h);
    cr_assert_eq(log_last(w, &p, h), LOG_OK);
    cr_assert_arr_eq(h, zero, EV_HASH_LEN);
    collected c = {0};
    uint64_t next = 77;
    cr_assert_eq(log_scan(r, 0, 0, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(next, 0);

    /* Batches of 1, 10 and 1000; keep every record's bytes. */
    static const size_t sizes[] = {1, 10, 1000};
    ev_buf all = {0};
    size_t lens[1011], nall = 0;
    batch b = {0};
    uint64_t expect_first = 0, marker = 0;
    for (size_t k = 0; k < 3; k++) {
        uint64_t first = 555, last = 555;
        int rc = append_batch(w, enc, &b, k + 1, sizes[k], marker, &first, &last);
        cr_assert_eq(rc, LOG_OK, "append of %zu: %d %s", sizes[k], rc, log_errmsg(w));
        cr_assert_eq(first, expect_first, "batch %zu starts at %" PRIu64 ", not %" PRIu64,
                     k, first, expect_first);
        cr_assert_eq(last, expect_first + sizes[k] - 1);
        expect_first += sizes[k];
        marker += sizes[k];
        cr_assert_eq(end_of(w), last + 1, "the writer's end follows the append");
        cr_assert_eq(end_of(r), last + 1, "a reader's end follows the append");
        cr_assert_eq(ev_buf_reserve(&all, b.buf.len), 0);
        memcpy(all.p + all.len, b.buf.p, b.buf.len);
        all.len += b.buf.len;
        memcpy(lens + nall, b.lens, b.n * sizeof *lens);
        nall += b.n;
        uint64_t lp;
        cr_assert_eq(log_last(r, &lp, h), LOG_OK);
        cr_assert_eq(lp, last);
        cr_assert_arr_eq(h, b.last_hash, EV_HASH_LEN, "log_last gives the last record's hash");
    }
    cr_assert_eq(nall, 1011);
    size_t offs[1011];
    for (size_t i = 0, o = 0; i < nall; o += lens[i], i++)
        offs[i] = o;

    /* log_last without passing the (zero-filled) hash is exactly the record. */
    cr_assert_eq(log_last(w, &p, h), LOG_OK);
    cr_assert_eq(p, 1010);
    cr_assert_arr_eq(h, all.p + all.len - EV_HASH_LEN, EV_HASH_LEN);

    /* Whole scan, from the reader and the writer. */
    log_t *both[2] = {r, w};
    for (int li = 0; li < 2; li++) {
        collected_free(&c);
        cr_assert_eq(log_scan(both[li], 0, 0, collect_fn, &c, &next), LOG_OK);
        cr_assert_eq(c.n, 1011, "scan from 0 saw %zu records", c.n);
        cr_assert_eq(next, 1011);
        cr_assert_eq(c.bytes.len, all.len);
        for (size_t i = 0; i < c.n; i++) {
            cr_assert_eq(c.pos[i], i, "record %zu has position %" PRIu64, i, c.pos[i]);
            cr_assert_eq(c.len[i], lens[i]);
        }
        cr_assert_arr_eq(c.bytes.p, all.p, all.len, "scanned bytes differ from appended");
    }

    /* From the middle. */
    collected_free(&c);
    cr_assert_eq(log_scan(r, 517, 0, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 1011 - 517);
    cr_assert_eq(next, 1011);
    cr_assert_eq(c.pos[0], 517);
    cr_assert_eq(c.pos[c.n - 1], 1010);
    cr_assert_arr_eq(c.bytes.p, all.p + offs[517], all.len - offs[517]);

    /* With max: exactly max records, next continues. */
    collected_free(&c);
    cr_assert_eq(log_scan(r, 3, 7, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 7);
    cr_assert_eq(c.pos[0], 3);
    cr_assert_eq(c.pos[6], 9);
    cr_assert_eq(next, 10);
    cr_assert_arr_eq(c.bytes.p, all.p + offs[3], offs[10] - offs[3]);
    collected_free(&c);
    cr_assert_eq(log_scan(r, next, 1, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.pos[0], 10);
    cr_assert_eq(next, 11);
    collected_free(&c);
    cr_assert_eq(log_scan(r, 1000, 50, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 11, "max beyond the end gives the rest");
    cr_assert_eq(next, 1011);

    /* At and past the end: nothing, next stays. */
    collected_free(&c);
    cr_assert_eq(log_scan(r, 1011, 0, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(next, 1011);
    cr_assert_eq(log_scan(r, 5000, 0, collect_fn, &c, &next), LOG_OK);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(next, 5000);

    /* A visitor's non-zero return stops the scan and is returned. */
    collected_free(&c);
    c.stop_after = 4;
    int rc = log_scan(r, 20, 0, collect_fn, &c, &next);
    cr_assert_eq(rc, 7, "log_scan returns the visitor's value, got %d", rc);
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.pos[3], 23);

    /* Closed and reopened, the writer continues the chain. */
    log_close(w);
    open_ok(dir, LOG_WRITE, &w);
    cr_assert_eq(end_of(w), 1011);
    uint64_t first, last;
    rc = append_batch(w, enc, &b, 4, 5, marker, &first, &last);
    cr_assert_eq(rc, LOG_OK, "append after reopen: %d %s", rc, log_errmsg(w));
    cr_assert_eq(first, 1011);
    cr_assert_eq(last, 1015);
    cr_assert_eq(end_of(r), 1016);
    audit_result res;
    rc = audit_chain(r, 0, zero, &res, NULL, NULL, 0);
    cr_assert_eq(rc, 0, "audit: %d at %" PRIu64, rc, res.bad_pos);
    cr_assert_eq(res.records, 1016);
    cr_assert_eq(res.next, 1016);
    cr_assert_arr_eq(res.last_hash, b.last_hash, EV_HASH_LEN);

    collected_free(&c);
    batch_free(&b);
    ev_buf_free(&all);
    log_close(w);
    log_close(r);
    ev_enc_free(enc);
}

/* ------------------------------------------------- 2. the chain check */

Test(log, append_checks_chain)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    log_t *w, *r;
    open_ok(dir, LOG_WRITE, &w);
    open_ok(dir, LOG_READ, &r);
    static const uint8_t zero[EV_HASH_LEN];
    batch b = {0}, stale = {0};
    uint64_t first, last;

    /* On an empty log, the first record must chain to zeroes. */
    uint8_t junk[EV_HASH_LEN];
    memset(junk, 0x5a, sizeof junk);
    cr_assert_eq(add_records(enc, &b, junk, 1, 3, 0, 3, 0), 0);
    int rc = log_append(w, b.buf.p, b.lens, b.n, &first, &last);
    cr_assert_eq(rc, LOG_ECHAIN, "unchained first batch: %d", rc);
    cr_assert_eq(end_of(w), 0);
    cr_assert_eq(end_of(r), 0);

    cr_assert_eq(append_batch(w, enc, &b, 1, 5, 0, &first, &last), LOG_OK);
    cr_assert_eq(last, 4);
    uint8_t tail[EV_HASH_LEN];
    memcpy(tail, b.last_hash, sizeof tail);

    /* First record's prev is not the tail: zeroes, junk, an older record. */
    const uint8_t *wrong[3] = {zero, junk, b.buf.p + b.lens[0] - EV_HASH_LEN};
    for (int k = 0; k < 3; k++) {
        batch_reset(&b);
        cr_assert_eq(add_records(enc, &b, wrong[k], 2, 4, 0, 4, 100), 0);
        rc = log_append(w, b.buf.p, b.lens, b.n, &first, &last);
        cr_assert_eq(rc, LOG_ECHAIN, "case %d: %d", k, rc);
        cr_assert_eq(end_of(w), 5, "a refused batch appends nothing");
        cr_assert_eq(end_of(r), 5);
    }

    /* A writer with a stale idea of the tail: two batches built from the
     * same tail; the second is refused after the first went in. */
    batch_reset(&b);
    cr_assert_eq(add_records(enc, &b, tail, 3, 2, 0, 2, 200), 0);
    cr_assert_eq(add_records(enc, &stale, tail, 4, 2, 0, 2, 300), 0);
    cr_assert_eq(log_append(w, b.buf.p, b.lens, b.n, &first, &last), LOG_OK);
    cr_assert_eq(first, 5);
    rc = log_append(w, stale.buf.p, stale.lens, stale.n, &first, &last);
    cr_assert_eq(rc, LOG_ECHAIN, "stale batch: %d", rc);
    cr_assert_eq(end_of(w), 7);
    memcpy(tail, b.last_hash, sizeof tail);

    /* A break in the middle: records 0-1 chain to the tail, record 2 chains
     * to record 0 instead of record 1, 3-4 chain to 2. */
    for (size_t brk = 1; brk < 5; brk++) {
        batch_reset(&b);
        cr_assert_eq(add_records(enc, &b, tail, 5, 5, 0, brk, 400), 0);
        cr_assert_eq(add_records(enc, &b, junk, 5, 5, brk, 5, 400 + brk), 0);
        rc = log_append(w, b.buf.p, b.lens, b.n, &first, &last);
        cr_assert_eq(rc, LOG_ECHAIN, "break before record %zu: %d", brk, rc);
        char want[64];
        snprintf(want, sizeof want, "record %zu", brk);
        cr_assert(strstr(log_errmsg(w), want), "message names the record: '%s'",
                  log_errmsg(w));
        cr_assert_eq(end_of(w), 7, "nothing of a broken batch is appended");
        cr_assert_eq(end_of(r), 7);
    }
    /* The break chains to an earlier record of the same batch. */
    batch_reset(&b);
    cr_assert_eq(add_records(enc, &b, tail, 6, 5, 0, 2, 500), 0);
    uint8_t rec0[EV_HASH_LEN];
    memcpy(rec0, b.buf.p + b.lens[0] - EV_HASH_LEN, EV_HASH_LEN);
    cr_assert_eq(add_records(enc, &b, rec0, 6, 5, 2, 5, 502), 0);
    rc = log_append(w, b.buf.p, b.lens, b.n, &first, &last);
    cr_assert_eq(rc, LOG_ECHAIN);
    cr_assert_eq(end_of(r), 7);

    /* A record too short to carry a chain is refused too. */
    batch_reset(&b);
    cr_assert_eq(add_records(enc, &b, tail, 7, 2, 0, 2, 600), 0);
    size_t short_lens[3] = {b.lens[0], b.lens[1], 10};
    uint8_t *data = malloc(b.buf.len + 10);
    memcpy(data, b.buf.p, b.buf.len);
    memset(data + b.buf.len, 0, 10);
    rc = log_append(w, data, short_lens, 3, &first, &last);
    free(data);
    cr_assert_neq(rc, LOG_OK, "a 10-byte record was accepted");
    cr_assert_eq(end_of(r), 7);

    /* After all the refusals the writer still appends at the right place,
     * and the whole log verifies. */
    cr_assert_eq(append_batch(w, enc, &b, 8, 3, 700, &first, &last), LOG_OK);
    cr_assert_eq(first, 7);
    cr_assert_eq(last, 9);
    audit_result res;
    cr_assert_eq(audit_chain(r, 0, zero, &res, NULL, NULL, 0), 0);
    cr_assert_eq(res.records, 10);

    batch_free(&b);
    batch_free(&stale);
    log_close(w);
    log_close(r);
    ev_enc_free(enc);
}

/* ------------------------------------------------- 3. readers can't write */

Test(log, reader_cannot_append)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    log_t *w, *r;
    batch b = {0};
    uint64_t first = 0, last = 0;
    open_ok(dir, LOG_WRITE, &w);
    cr_assert_eq(append_batch(w, enc, &b, 1, 3, 0, &first, &last), LOG_OK);

    /* With and without a writer open. */
    for (int k = 0; k < 2; k++) {
        open_ok(dir, LOG_READ, &r);
        uint8_t h[EV_HASH_LEN];
        uint64_t tail;
        cr_assert_eq(log_last(r, &tail, h), LOG_OK);
        batch_reset(&b);
        cr_assert_eq(add_records(enc, &b, h, 2, 2, 0, 2, 10), 0);
        int rc = log_append(r, b.buf.p, b.lens, b.n, &first, &last);
        cr_assert_eq(rc, LOG_ERDONLY, "append on a reader: %d", rc);
        cr_assert(strlen(log_errmsg(r)) > 0);
        cr_assert_eq(end_of(r), 3);
        log_close(r);
        if (k == 0) {
            cr_assert_eq(end_of(w), 3);
            log_close(w);
        }
    }
    open_ok(dir, LOG_WRITE, &w);
    cr_assert_eq(end_of(w), 3);
    log_close(w);
    batch_free(&b);
    ev_enc_free(enc);
}

/* ------------------------------------------------- 4. one writer */

typedef struct open_report {
    int rc;
    int rc2;
    uint64_t first, last;
    char msg[480];
} open_report;

/* Helper: tries to open as writer; if it can, appends a batch of 4. */
static void helper_writer_try(const char *dir, int fd)
{
    open_report rep;
    memset(&rep, 0, sizeof rep);
    char uri[4200];
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    log_t *w = NULL;
    rep.rc = log_open(uri, LOG_WRITE, &w, rep.msg, sizeof rep.msg);
    if (rep.rc == 0) {
        ev_enc *enc = ev_enc_new();
        batch b = {0};
        rep.rc2 = append_batch(w, enc, &b, 900, 4, 9000, &rep.first, &rep.last);
        log_close(w);
    }
    write_all(fd, &rep, sizeof rep);
    _exit(0);
}

typedef struct reader_report {
    int rc;         /* first failure (LOG_E* / EV_E*), 0 if none */
    int fail_line;  /* where it failed */
    uint64_t count; /* records seen */
    uint64_t next;
    uint8_t last_hash[EV_HASH_LEN];
} reader_report;

/* Helper: opens a reader, says 'R', follows the log from 0 until it has
 * `target` records (or 5 s without progress), checking positions, hashes
 * and the chain of everything it sees. */
static void helper_reader(const char *dir, int fd, uint64_t target)
{
    reader_report rep;
    memset(&rep, 0, sizeof rep);
    char uri[4200], err[512];
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    log_t *r = NULL;
    rep.rc = log_open(uri, LOG_READ, &r, err, sizeof err);
    if (rep.rc) {
        rep.fail_line = __LINE__;
        write_all(fd, "X", 1);
        write_all(fd, &rep, sizeof rep);
        _exit(0);
    }
    write_all(fd, "R", 1);
    ev_dec *dec = ev_dec_new();
    collected c = {0};
    int64_t last_progress = mono_ns();
    while (rep.count < target && mono_ns() - last_progress < 5000000000LL) {
        int rc = log_wait(r, rep.next, 500);
        if (rc == LOG_ETIMEDOUT)
            continue;
        if (rc) {
            rep.rc = rc;
            rep.fail_line = __LINE__;
            break;
        }
        c.n = 0;
        c.bytes.len = 0;
        if ((rc = log_scan(r, rep.next, 0, collect_fn, &c, &rep.next)) != 0) {
            rep.rc = rc;
            rep.fail_line = __LINE__;
            break;
        }
        for (size_t i = 0; i < c.n && !rep.rc; i++) {
            ev_event ev;
            const uint8_t *p = c.bytes.p + c.off[i];
            if (c.pos[i] != rep.count) {
                rep.rc = -1000;
                rep.fail_line = __LINE__;
            } else if ((rc = ev_decode(dec, p, c.len[i], c.pos[i], &ev)) != 0) {
                rep.rc = rc;
                rep.fail_line = __LINE__;
            } else if (memcmp(ev.env.prev_hash, rep.last_hash, EV_HASH_LEN) != 0) {
                rep.rc = EV_ECHAIN;
                rep.fail_line = __LINE__;
            } else {
                memcpy(rep.last_hash, ev.env.hash, EV_HASH_LEN);
                rep.count++;
            }
        }
        if (rep.rc)
            break;
        if (c.n)
            last_progress = mono_ns();
    }
    write_all(fd, &rep, sizeof rep);
    _exit(0);
}

Test(log, one_writer_many_readers)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    batch b = {0};
    uint64_t first, last;
    log_t *w;
    open_ok(dir, LOG_WRITE, &w);
    cr_assert_eq(append_batch(w, enc, &b, 1, 3, 0, &first, &last), LOG_OK);
    long me = (long)getpid();

    /* A second writer in this process is refused as well. */
    {
        char uri[4200], err[512] = "";
        snprintf(uri, sizeof uri, "lmdb:%s", dir);
        log_t *w2 = (log_t *)&w2;
        int rc = log_open(uri, LOG_WRITE, &w2, err, sizeof err);
        cr_assert_eq(rc, LOG_ELOCKED, "second writer in-process: %d %s", rc, err);
        cr_assert_null(w2);
        cr_assert(mentions_number(err, me), "message names pid %ld: '%s'", me, err);
    }

    /* A second writer in another process: refused, told who the writer is. */
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork_helper();
    if (pid == 0) {
        close(pfd[0]);
        helper_writer_try(dir, pfd[1]);
    }
    close(pfd[1]);
    open_report rep;
    int got = read_full(pfd[0], &rep, sizeof rep, 10000);
    close(pfd[0]);
    int st = reap(pid, 5000);
    cr_assert_eq(got, 0, "no report from the second writer (status %d)", st);
    cr_assert_eq(st, 0);
    cr_assert_eq(rep.rc, LOG_ELOCKED, "second writer got %d: %s", rep.rc, rep.msg);
    cr_assert(mentions_number(rep.msg, me), "message should name the writer's pid %ld: '%s'",
              me, rep.msg);
    cr_assert(strstr(rep.msg, "writer"), "message: '%s'", rep.msg);
    cr_assert_eq(end_of(w), 3);

    /* Several readers in other processes while the writer appends. */
    enum { NREADERS = 5, NBATCH = 20, BSIZE = 10 };
    const uint64_t target = 3 + NBATCH * BSIZE;
    int rfd[NREADERS];
    pid_t rpid[NREADERS];
    for (int i = 0; i < NREADERS; i++) {
        cr_assert_eq(pipe(pfd), 0);
        rpid[i] = fork_helper();
        if (rpid[i] == 0) {
            close(pfd[0]);
            helper_reader(dir, pfd[1], target);
        }
        close(pfd[1]);
        rfd[i] = pfd[0];
    }
    char ready[NREADERS];
    int all_ready = 1;
    for (int i = 0; i < NREADERS; i++)
        if (read_full(rfd[i], &ready[i], 1, 10000) != 0 || ready[i] != 'R')
            all_ready = 0;
    int app_rc = 0;
    for (int k = 0; k < NBATCH && !app_rc; k++) {
        app_rc = append_batch(w, enc, &b, 10 + k, BSIZE, 100 + k * BSIZE, &first, &last);
        sleep_ms(2);
    }
    reader_report rr[NREADERS];
    int rgot[NREADERS], rst[NREADERS];
    for (int i = 0; i < NREADERS; i++) {
        rgot[i] = read_full(rfd[i], &rr[i], sizeof rr[i], 15000);
        close(rfd[i]);
        rst[i] = reap(rpid[i], 5000);
    }
    cr_assert_eq(app_rc, LOG_OK, "append with readers: %d %s", app_rc, log_errmsg(w));
    cr_assert(all_ready, "not every reader could open");
    uint64_t tp;
    uint8_t th[EV_HASH_LEN];
    cr_assert_eq(log_last(w, &tp, th), LOG_OK);
    cr_assert_eq(tp + 1, target);
    for (int i = 0; i < NREADERS; i++) {
        cr_assert_eq(rgot[i], 0, "reader %d sent no report (status %d)", i, rst[i]);
        cr_assert_eq(rst[i], 0);
        cr_assert_eq(rr[i].rc, 0, "reader %d failed: %d at line %d", i, rr[i].rc,
                     rr[i].fail_line);
        cr_assert_eq(rr[i].count, target, "reader %d saw %" PRIu64 " of %" PRIu64, i,
                     rr[i].count, target);
        cr_assert_arr_eq(rr[i].last_hash, th, EV_HASH_LEN);
    }

    /* Once the writer closes (and no process holds it), another process can
     * become the writer, and append after what is there. */
    log_close(w);
    cr_assert_eq(pipe(pfd), 0);
    pid = fork_helper();
    if (pid == 0) {
        close(pfd[0]);
        helper_writer_try(dir, pfd[1]);
    }
    close(pfd[1]);
    got = read_full(pfd[0], &rep, sizeof rep, 10000);
    close(pfd[0]);
    st = reap(pid, 5000);
    cr_assert_eq(got, 0);
    cr_assert_eq(rep.rc, LOG_OK, "writer after close: %d %s", rep.rc, rep.msg);
    cr_assert_eq(rep.rc2, LOG_OK, "its append: %d", rep.rc2);
    cr_assert_eq(rep.first, target);
    cr_assert_eq(rep.last, target + 3);

    /* And then this process again. */
    open_ok(dir, LOG_WRITE, &w);
    cr_assert_eq(end_of(w), target + 4);
    cr_assert_eq(append_batch(w, enc, &b, 999, 1, 99999, &first, &last), LOG_OK);
    cr_assert_eq(first, target + 4);
    log_t *r;
    open_ok(dir, LOG_READ, &r);
    audit_result res;
    static const uint8_t zero[EV_HASH_LEN];
    cr_assert_eq(audit_chain(r, 0, zero, &res, NULL, NULL, 0), 0);
    cr_assert_eq(res.records, target + 5);
    log_close(r);
    log_close(w);
    batch_free(&b);
    ev_enc_free(enc);
}

/* ------------------------------------------------- 5. following */

typedef struct idle_report {
    int rc;
    int64_t elapsed_ns, cpu_ns;
} idle_report;

typedef struct seen_report {
    uint64_t batch_id; /* 0: the end (then t_ns is the follower's CPU time) */
    int64_t t_ns;
    int rc;
} seen_report;

/* Helper: measures an idle 500 ms wait, says 'R', then follows the log,
 * reporting (batch id, monotonic time) for every batch it completes. */
static void helper_follower(const char *dir, int fd, uint64_t nbatches)
{
    char uri[4200], err[512];
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    log_t *r = NULL;
    idle_report idle = {0, 0, 0};
    int rc = log_open(uri, LOG_READ, &r, err, sizeof err);
    uint64_t next = 0;
    if (rc == 0)
        rc = log_end(r, &next);
    if (rc) {
        idle.rc = rc;
        write_all(fd, &idle, sizeof idle);
        _exit(0);
    }
    int64_t t0 = mono_ns(), c0 = cpu_ns();
    idle.rc = log_wait(r, next, 500);
    idle.elapsed_ns = mono_ns() - t0;
    idle.cpu_ns = cpu_ns() - c0;
    write_all(fd, &idle, sizeof idle);

    ev_dec *dec = ev_dec_new();
    collected c = {0};
    uint64_t done = 0;
    int64_t cstart = cpu_ns();
    seen_report s = {0, 0, 0};
    while (done < nbatches) {
        rc = log_wait(r, next, 3000);
        if (rc)
            break;
        c.n = 0;
        c.bytes.len = 0;
        if ((rc = log_scan(r, next, 0, collect_fn, &c, &next)) != 0)
            break;
        int64_t now = mono_ns();
        for (size_t i = 0; i < c.n && !rc; i++) {
            rec_info ri;
            rc = rec_parse(dec, c.bytes.p + c.off[i], c.len[i], c.pos[i], &ri);
            if (rc == 0 && ri.index == ri.size - 1) {
                s.batch_id = ri.batch_id;
                s.t_ns = now;
                write_all(fd, &s, sizeof s);
                done++;
            }
        }
        if (rc)
            break;
    }
    s.batch_id = 0;
    s.t_ns = cpu_ns() - cstart;
    s.rc = rc;
    write_all(fd, &s, sizeof s);
    _exit(0);
}

Test(log, follow_across_processes)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    batch b = {0};
    uint64_t first, last;
    log_t *w;
    /* Create the log, then fork before the writer holds it again. */
    open_ok(dir, LOG_WRITE, &w);
    cr_assert_eq(append_batch(w, enc, &b, 1, 1, 0, &first, &last), LOG_OK);
    log_close(w);

    enum { NB = 100, GAP_MS = 20 };
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork_helper();
    if (pid == 0) {
        close(pfd[0]);
        helper_follower(dir, pfd[1], NB);
    }
    close(pfd[1]);
    open_ok(dir, LOG_WRITE, &w);

    /* The follower first sits 500 ms on the idle log. */
    idle_report idle;
    int got_idle = read_full(pfd[0], &idle, sizeof idle, 10000);

    int64_t t_app[NB + 2];
    int app_rc = 0;
    uint64_t seed = test_seed();
    int64_t start = mono_ns();
    for (int k = 0; k < NB && got_idle == 0 && !app_rc; k++) {
        sleep_until_ns(start + (int64_t)(k + 1) * GAP_MS * 1000000);
        app_rc = append_batch(w, enc, &b, 2 + (uint64_t)k, 1 + rng_next(&seed) % 5,
                              100 + 10 * (uint64_t)k, &first, &last);
        t_app[k] = mono_ns();
    }
    int64_t t_seen[NB + 2];
    int seen_n = 0, bad_id = 0, order_ok = 1;
    seen_report s = {0, 0, 0}, fin = {0, -1, 0};
    while (read_full(pfd[0], &s, sizeof s, 10000) == 0) {
        if (s.batch_id == 0) {
            fin = s;
            break;
        }
        if (s.batch_id < 2 || s.batch_id >= 2 + NB) {
            bad_id = 1;
            continue;
        }
        if (s.batch_id != 2 + (uint64_t)seen_n)
            order_ok = 0;
        t_seen[s.batch_id - 2] = s.t_ns;
        seen_n++;
    }
    close(pfd[0]);
    int st = reap(pid, 5000);
    log_close(w);

    cr_assert_eq(got_idle, 0, "the follower sent no idle report (status %d)", st);
    cr_assert_eq(idle.rc, LOG_ETIMEDOUT, "idle log_wait returned %d", idle.rc);
    fprintf(stderr, "test_log: idle log_wait(500 ms) took %.1f ms wall, %.3f ms CPU\n",
            idle.elapsed_ns / 1e6, idle.cpu_ns / 1e6);
    cr_assert_geq(idle.elapsed_ns, 495000000, "timed out early: %.1f ms", idle.elapsed_ns / 1e6);
    /* Late only by scheduling: a loaded machine (CI, the sanitizer build)
     * may run the follower seconds late; what must not happen is a wait
     * that never times out. */
    cr_assert_lt(idle.elapsed_ns, 5000000000LL, "timed out late: %.1f ms", idle.elapsed_ns / 1e6);
    cr_assert_lt(idle.cpu_ns, 50000000, "a waiting reader used %.1f ms CPU in 500 ms",
                 idle.cpu_ns / 1e6);
    cr_assert_eq(app_rc, LOG_OK, "append: %d", app_rc);
    cr_assert_eq(st, 0, "follower status %d", st);
    cr_assert_not(bad_id, "the follower reported a batch that was never appended");
    cr_assert(order_ok, "the follower saw batches out of order");
    cr_assert_eq(seen_n, NB, "the follower saw %d of %d batches (its rc %d)", seen_n, NB,
                 fin.rc);
    cr_assert_eq(fin.rc, 0, "follower error %d", fin.rc);

    int64_t d[NB];
    for (int k = 0; k < NB; k++) {
        d[k] = t_seen[k] - t_app[k];
        if (d[k] < 0) /* seen before the append call returned: no delay */
            d[k] = 0;
    }
    qsort(d, NB, sizeof d[0], cmp_i64);
    double med = d[NB / 2] / 1e6, p90 = d[NB * 9 / 10] / 1e6,
           p99 = d[(NB * 99 + 99) / 100 - 1] / 1e6, mx = d[NB - 1] / 1e6;
    fprintf(stderr,
            "test_log: follow delay over %d batches: min %.3f median %.3f p90 %.3f "
            "p99 %.3f max %.3f ms; follower CPU %.1f ms\n",
            NB, d[0] / 1e6, med, p90, p99, mx, fin.t_ns / 1e6);
    cr_assert_lt(med, 10.0, "median follow delay %.3f ms", med);
    cr_assert_lt(p99, 10.0, "p99 follow delay %.3f ms", p99);
    cr_assert_lt(mx, 100.0, "max follow delay %.3f ms", mx);

    batch_free(&b);
    ev_enc_free(enc);
}

/* log_wait returns at once when the log already has the position, times out
 * near its timeout otherwise; the notify fd fires on an append. */
Test(log, wait_and_notify)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    batch b = {0};
    uint64_t first, last;
    log_t *w, *r;
    open_ok(dir, LOG_WRITE, &w);
    open_ok(dir, LOG_READ, &r);
    cr_assert_eq(append_batch(w, enc, &b, 1, 3, 0, &first, &last), LOG_OK);

    int64_t t0 = mono_ns();
    cr_assert_eq(log_wait(r, 2, 1000), 0, "position 2 exists");
    cr_assert_eq(log_wait(r, 0, 0), 0);
    cr_assert_lt(mono_ns() - t0, 50000000LL * TS_SLOW, "waiting for what is there returns at once");

    t0 = mono_ns();
    int rc = log_wait(r, 3, 200);
    int64_t el = mono_ns() - t0;
    cr_assert_eq(rc, LOG_ETIMEDOUT);
    cr_assert_geq(el, 195000000, "timed out after %.1f ms", el / 1e6);
    cr_assert_lt(el, 600000000LL * TS_SLOW, "timed out after %.1f ms", el / 1e6);
    cr_assert_eq(log_wait(r, 3, 0), LOG_ETIMEDOUT);

    int nfd = log_notify_fd(r);
    cr_assert_geq(nfd, 0, "a reader has a notify fd");
    log_drain_notify(r);
    struct pollfd pf = {nfd, POLLIN, 0};
    cr_assert_eq(poll(&pf, 1, 0), 0, "nothing to report after a drain");
    cr_assert_eq(append_batch(w, enc, &b, 2, 2, 10, &first, &last), LOG_OK);
    pf.revents = 0;
    cr_assert_eq(poll(&pf, 1, 1000), 1, "the notify fd fires after an append");
    log_drain_notify(r);
    pf.revents = 0;
    cr_assert_eq(poll(&pf, 1, 0), 0, "drained");
    cr_assert_eq(end_of(r), 5);

    log_close(r);
    log_close(w);
    batch_free(&b);
    ev_enc_free(enc);
}

/* ------------------------------------------------- 6. crash durability */

#define READY_MARK UINT64_MAX

/* Helper: the writer that gets killed. Appends batches of 1..200 records
 * with ids id0, id0+1, ... forever, writing each batch's last position to
 * fd once log_append has returned. */
static void helper_crash_writer(const char *dir, int fd, uint64_t id0, uint64_t seed)
{
    char uri[4200], err[512];
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    log_t *w = NULL;
    int rc = log_open(uri, LOG_WRITE, &w, err, sizeof err);
    if (rc)
        _exit(10);
    uint64_t m = READY_MARK;
    if (write_all(fd, &m, sizeof m))
        _exit(11);
    ev_enc *enc = ev_enc_new();
    batch b = {0};
    for (uint64_t id = id0;; id++) {
        uint64_t first, last;
        size_t n = 1 + (size_t)(rng_next(&seed) % 200);
        rc = append_batch(w, enc, &b, id, n, id * 1000, &first, &last);
        if (rc)
            _exit(12);
        if (last - first + 1 != n)
            _exit(13);
        if (write_all(fd, &last, sizeof last))
            _exit(14);
    }
}

typedef struct crash_check {
    uint64_t *pos;
    size_t n, cap;
    ev_dec *dec;
    int rc;
    uint64_t bad_pos;
    char why[200];
    uint64_t cur_id;
    size_t cur_size, cur_next; /* next expected index in the current batch */
    uint64_t batches;
    uint8_t *is_end; /* per record: last of its batch */
} crash_check;

static int crash_visit(void *ud, const log_rec *r)
{
    crash_check *cc = ud;
    if (cc->n == cc->cap) {
        cc->cap = cc->cap ? cc->cap * 2 : 4096;
        cc->pos = realloc(cc->pos, cc->cap * sizeof *cc->pos);
        cc->is_end = realloc(cc->is_end, cc->cap);
        if (!cc->pos || !cc->is_end)
            abort();
    }
    rec_info ri;
    int rc = rec_parse(cc->dec, r->data, r->len, r->pos, &ri);
    if (rc) {
        snprintf(cc->why, sizeof cc->why, "record does not decode: %s", ev_strerror(rc));
        goto bad;
    }
    if (cc->cur_next < cc->cur_size) {
        /* inside a batch: must be its next record */
        if (ri.batch_id != cc->cur_id || ri.size != cc->cur_size || ri.index != cc->cur_next) {
            snprintf(cc->why, sizeof cc->why,
                     "batch %" PRIu64 " (size %zu) stops after %zu records; next is "
                     "batch %" PRIu64 " record %zu of %zu",
                     cc->cur_id, cc->cur_size, cc->cur_next, ri.batch_id, ri.index, ri.size);
            goto bad;
        }
    } else {
        /* a new batch: starts at index 0, a later id than the last */
        if (ri.index != 0 || (cc->batches && ri.batch_id <= cc->cur_id)) {
            snprintf(cc->why, sizeof cc->why,
                     "after batch %" PRIu64 " comes batch %" PRIu64 " record %zu of %zu",
                     cc->cur_id, ri.batch_id, ri.index, ri.size);
            goto bad;
        }
        cc->cur_id = ri.batch_id;
        cc->cur_size = ri.size;
        cc->cur_next = 0;
        cc->batches++;
    }
    cc->cur_next++;
    cc->pos[cc->n] = r->pos;
    cc->is_end[cc->n] = cc->cur_next == cc->cur_size;
    cc->n++;
    return 0;
bad:
    cc->rc = 1;
    cc->bad_pos = r->pos;
    return 1;
}

Test(log, crash_leaves_whole_durable_batches)
{
    const char *dir = g_dir;
    uint64_t seed = test_seed();
    fprintf(stderr, "test_log: crash test seed %" PRIu64 " (WS_TEST_SEED)\n", seed);
    enum { ROUNDS = 40 };
    static const uint8_t zero[EV_HASH_LEN];
    uint64_t prev_end = 0, total_reported = 0, mid_batch_kills = 0;
    uint8_t prev_tail[EV_HASH_LEN] = {0};
    uint64_t *rep = NULL;
    size_t nrep = 0, caprep = 0;
    ev_dec *dec = ev_dec_new();
    int64_t t_begin = mono_ns();

    for (int round = 0; round < ROUNDS; round++) {
        int pfd[2];
        cr_assert_eq(pipe(pfd), 0);
        uint64_t wseed = rng_next(&seed) | 1;
        pid_t pid = fork_helper();
        if (pid == 0) {
            close(pfd[0]);
            helper_crash_writer(dir, pfd[1], (uint64_t)(round + 1) * 1000000, wseed);
        }
        close(pfd[1]);

        /* Read positions until the delay after READY passes, then kill. */
        int delay_ms = round < 2 ? round : 2 + (int)(rng_next(&seed) % 48);
        nrep = 0;
        int ready = 0, eof = 0;
        uint8_t part[8];
        size_t partn = 0;
        int64_t ready_at = 0, deadline = mono_ns() + 10000000000LL;
        for (;;) {
            int64_t now = mono_ns();
            if (ready && now >= ready_at + (int64_t)delay_ms * 1000000)
                break;
            if (now >= deadline || eof)
                break;
            int64_t until = ready ? ready_at + (int64_t)delay_ms * 1000000 : deadline;
            int tmo = (int)((until - now + 999999) / 1000000);
            struct pollfd pf = {pfd[0], POLLIN, 0};
            if (poll(&pf, 1, tmo) <= 0)
                continue;
            uint8_t buf[4096];
            ssize_t got = read(pfd[0], buf, sizeof buf);
            if (got <= 0) {
                eof = 1;
                break;
            }
            for (ssize_t i = 0; i < got; i++) {
                part[partn++] = buf[i];
                if (partn < 8)
                    continue;
                partn = 0;
                uint64_t v;
                memcpy(&v, part, 8);
                if (v == READY_MARK) {
                    ready = 1;
                    ready_at = mono_ns();
                } else {
                    if (nrep == caprep) {
                        caprep = caprep ? caprep * 2 : 1024;
                        rep = realloc(rep, caprep * sizeof *rep);
                    }
                    rep[nrep++] = v;
                }
            }
        }
        kill(pid, SIGKILL);
        int st;
        pid_t wr = waitpid(pid, &st, 0);
        /* Everything the writer said before it died counts as durable. */
        for (;;) {
            uint8_t buf[4096];
            ssize_t got = read(pfd[0], buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            for (ssize_t i = 0; i < got; i++) {
                part[partn++] = buf[i];
                if (partn < 8)
                    continue;
                partn = 0;
                uint64_t v;
                memcpy(&v, part, 8);
                if (v == READY_MARK) {
                    ready = 1;
                    continue;
                }
                if (nrep == caprep) {
                    caprep = caprep ? caprep * 2 : 1024;
                    rep = realloc(rep, caprep * sizeof *rep);
                }
                rep[nrep++] = v;
            }
        }
        close(pfd[0]);
        cr_assert_eq(wr, pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "round %d: the writer did not run until killed (exit %d)", round,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        cr_assert(ready, "round %d: the writer never opened the log", round);
        total_reported += nrep;

        /* Check the log. */
        log_t *r;
        open_ok(dir, LOG_READ, &r);
        crash_check cc;
        memset(&cc, 0, sizeof cc);
        cc.dec = dec;
        uint64_t next;
        int rc = log_scan(r, 0, 0, crash_visit, &cc, &next);
        cr_assert(rc == 0 || (rc == 1 && cc.rc),
                  "round %d: scan failed: %d %s", round, rc, log_errmsg(r));
        cr_assert_eq(cc.rc, 0, "round %d (delay %d ms): at position %" PRIu64 ": %s", round,
                     delay_ms, cc.bad_pos, cc.why);
        /* (b) the last batch is whole too */
        cr_assert_eq(cc.cur_next, cc.cur_size,
                     "round %d: the last batch (%" PRIu64 ") has %zu of its %zu records", round,
                     cc.cur_id, cc.cur_next, cc.cur_size);
        uint64_t end = end_of(r);
        cr_assert_eq(end, cc.n ? cc.pos[cc.n - 1] + 1 : 0);
        /* (a) every position reported durable is there, and ends a batch */
        for (size_t i = 0; i < nrep; i++) {
            uint64_t *hit = bsearch(&rep[i], cc.pos, cc.n, sizeof *cc.pos, cmp_u64);
            cr_assert_not_null(hit,
                               "round %d (delay %d ms): position %" PRIu64 " was reported "
                               "durable but the log ends at %" PRIu64,
                               round, delay_ms, rep[i], end);
            cr_assert(cc.is_end[hit - cc.pos],
                      "round %d: reported position %" PRIu64 " does not end a batch", round,
                      rep[i]);
        }
        /* nothing from earlier rounds went missing or changed */
        cr_assert_geq(end, prev_end, "round %d: the log shrank from %" PRIu64 " to %" PRIu64,
                      round, prev_end, end);
        if (prev_end) {
            collected c = {0};
            cr_assert_eq(log_scan(r, prev_end - 1, 1, collect_fn, &c, &next), 0);
            cr_assert_eq(c.n, 1);
            cr_assert_arr_eq(ev_rec_hash(c.bytes.p, c.len[0]), prev_tail, EV_HASH_LEN,
                             "round %d: the previous round's last record changed", round);
            collected_free(&c);
        }
        /* (c) the chain verifies */
        audit_result res;
        rc = audit_chain(r, 0, zero, &res, NULL, NULL, 0);
        cr_assert_eq(rc, 0, "round %d: audit_chain = %d at position %" PRIu64, round, rc,
                     res.bad_pos);
        cr_assert_eq(res.records, cc.n);
        uint64_t lp;
        cr_assert_eq(log_last(r, &lp, prev_tail), 0);
        cr_assert_arr_eq(prev_tail, res.last_hash, EV_HASH_LEN);
        /* Did the kill land after the last reported batch was committed but
         * before it was reported (or in a later, unreported batch)? */
        if (nrep == 0 ? end > prev_end : end > rep[nrep - 1] + 1)
            mid_batch_kills++;
        prev_end = end;
        log_close(r);
        free(cc.pos);
        free(cc.is_end);
    }
    fprintf(stderr,
            "test_log: crash test: %d rounds, %" PRIu64 " records, %" PRIu64
            " batches reported durable, %" PRIu64 " rounds with unreported commits, %.1f s\n",
            ROUNDS, prev_end, total_reported, mid_batch_kills, (mono_ns() - t_begin) / 1e9);
    cr_assert_gt(total_reported, (uint64_t)ROUNDS, "the writers hardly wrote anything");
    free(rep);
    ev_dec_free(dec);
}

/* ------------------------------------------------- 7. tamper detection */

static size_t count_occurrences(const uint8_t *p, size_t n, const char *s, size_t *first)
{
    size_t k = 0, sl = strlen(s);
    const uint8_t *q = p;
    while ((q = memmem(q, n - (size_t)(q - p), s, sl)) != NULL) {
        if (k++ == 0)
            *first = (size_t)(q - p);
        q++;
    }
    return k;
}

static void flip_byte(const char *file, size_t off, uint8_t mask)
{
    int fd = open(file, O_RDWR);
    cr_assert_geq(fd, 0, "open %s: %s", file, strerror(errno));
    uint8_t c;
    cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= mask;
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

Test(log, audit_names_tampered_record)
{
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    batch b = {0};
    uint64_t first, last;
    log_t *w;
    enum { N = 1000 };
    open_ok(dir, LOG_WRITE, &w);
    /* One batch (one transaction): each record's bytes are in the file once. */
    cr_assert_eq(append_batch(w, enc, &b, 1, N, 0, &first, &last), LOG_OK);
    cr_assert_eq(last, N - 1);
    log_close(w);
    size_t avg = b.buf.len / N;
    fprintf(stderr, "test_log: records are %zu..%zu bytes (avg %zu)\n", b.lens[0],
            b.lens[N - 1], avg);
    cr_assert(avg >= 150 && avg <= 300);

    char file[700];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    static const uint8_t zero[EV_HASH_LEN];
    static const uint64_t targets[] = {0, 1, 517, 998, 999};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        uint64_t pos = targets[t];
        /* The intact log verifies. */
        log_t *r;
        open_ok(dir, LOG_READ, &r);
        audit_result res;
        cr_assert_eq(audit_chain(r, 0, zero, &res, NULL, NULL, 0), 0,
                     "before tampering with %" PRIu64 ": bad at %" PRIu64, pos, res.bad_pos);
        cr_assert_eq(res.records, N);
        log_close(r);

        /* Find the record's marker in the file and change one byte. */
        int fd = open(file, O_RDONLY);
        cr_assert_geq(fd, 0);
        struct stat sb;
        cr_assert_eq(fstat(fd, &sb), 0);
        uint8_t *img = malloc((size_t)sb.st_size);
        cr_assert_eq(pread(fd, img, (size_t)sb.st_size, 0), sb.st_size);
        close(fd);
        char marker[32];
        snprintf(marker, sizeof marker, "marker-%06" PRIu64 " ", pos);
        size_t at = 0;
        size_t k = count_occurrences(img, (size_t)sb.st_size, marker, &at);
        free(img);
        cr_assert_eq(k, 1, "marker %s found %zu times in data.mdb", marker, k);
        size_t off = at + strlen(marker) - 2; /* the last digit */
        flip_byte(file, off, 0x01);

        open_ok(dir, LOG_READ, &r);
        int rc = audit_chain(r, 0, zero, &res, NULL, NULL, 0);
        cr_assert_neq(rc, 0, "a changed byte in record %" PRIu64 " went unnoticed", pos);
        cr_assert_eq(res.err, rc);
        cr_assert_eq(res.bad_pos, pos, "byte changed in record %" PRIu64 ", audit blames %" PRIu64
                                       " (%d)",
                     pos, res.bad_pos, rc);
        cr_assert_eq(res.records, pos, "records before the damage all pass");
        /* From just after it, with the right prev hash, the rest verifies:
         * the damage is exactly one record. */
        if (pos + 1 < N) {
            size_t o = 0;
            for (uint64_t i = 0; i <= pos; i++)
                o += b.lens[i];
            rc = audit_chain(r, pos + 1, b.buf.p + o - EV_HASH_LEN, &res, NULL, NULL, 0);
            cr_assert_eq(rc, 0, "after record %" PRIu64 ": %d at %" PRIu64, pos, rc,
                         res.bad_pos);
            cr_assert_eq(res.records, N - pos - 1);
        }
        log_close(r);

        /* Put it back: the log verifies again. */
        flip_byte(file, off, 0x01);
    }
    log_t *r;
    open_ok(dir, LOG_READ, &r);
    audit_result res;
    cr_assert_eq(audit_chain(r, 0, zero, &res, NULL, NULL, 0), 0);
    log_close(r);
    batch_free(&b);
    ev_enc_free(enc);
}

/* ------------------------------------------------- 8. bad URIs */

static void expect_einval(const char *uri, const char *must_mention)
{
    char err[512] = "";
    log_t *l = (log_t *)&l;
    int rc = log_open(uri, LOG_READ, &l, err, sizeof err);
    cr_assert_eq(rc, LOG_EINVAL, "log_open('%s') = %d (%s)", uri, rc, err);
    cr_assert_null(l, "no log on failure for '%s'", uri);
    cr_assert(strlen(err) > 10, "no message for '%s'", uri);
    cr_assert(strstr(err, must_mention), "message for '%s' should mention '%s': '%s'", uri,
              must_mention, err);
    rc = log_open(uri, LOG_WRITE, &l, err, sizeof err);
    cr_assert_eq(rc, LOG_EINVAL, "log_open('%s', write) = %d (%s)", uri, rc, err);
}

Test(log, bad_uris)
{
    const char *dir = g_dir;
    char uri[700];
    expect_einval(dir, "scheme");            /* a bare path */
    expect_einval("", "scheme");
    snprintf(uri, sizeof uri, "kafka://broker:9092/topic");
    expect_einval(uri, "kafka");             /* not in this build */
    snprintf(uri, sizeof uri, "lmbd:%s", dir);
    expect_einval(uri, "unknown scheme");
    expect_einval("lmdb:", "path");
    expect_einval("lmdb:?mapsize=1048576", "path");
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=abc", dir);
    expect_einval(uri, "mapsize");
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=", dir);
    expect_einval(uri, "mapsize");
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=64MB", dir);
    expect_einval(uri, "mapsize");
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=1000", dir);
    expect_einval(uri, "mapsize");
    snprintf(uri, sizeof uri, "lmdb:%s?size=1048576", dir);
    expect_einval(uri, "mapsize");
    /* None of that touched the directory. */
    char f[800];
    snprintf(f, sizeof f, "%s/data.mdb", dir);
    cr_assert_neq(access(f, F_OK), 0, "a refused URI created %s", f);

    /* A path that cannot be a directory: an I/O error for a writer, no log
     * for a reader; both say where. */
    char err[512] = "";
    log_t *l;
    int rc = log_open("lmdb:/dev/null/log", LOG_WRITE, &l, err, sizeof err);
    cr_assert_eq(rc, LOG_EIO, "%d %s", rc, err);
    cr_assert(strstr(err, "/dev/null"), "message: '%s'", err);
    rc = log_open("lmdb:/dev/null/log", LOG_READ, &l, err, sizeof err);
    cr_assert_eq(rc, LOG_ENOENT, "%d %s", rc, err);
    cr_assert(strstr(err, "/dev/null"), "message: '%s'", err);

    /* A reader never creates a log: a missing one is LOG_ENOENT and stays
     * missing. */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/not-yet", dir);
    snprintf(uri, sizeof uri, "lmdb:%s", missing);
    l = (log_t *)&l;
    rc = log_open(uri, LOG_READ, &l, err, sizeof err);
    cr_assert_eq(rc, LOG_ENOENT, "reader of a missing log: %d %s", rc, err);
    cr_assert_null(l);
    cr_assert(strstr(err, missing), "message: '%s'", err);
    cr_assert_neq(access(missing, F_OK), 0, "a reader created %s", missing);

    /* And the good forms open. */
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=1048576", dir);
    rc = log_open(uri, LOG_WRITE, &l, err, sizeof err);
    cr_assert_eq(rc, LOG_OK, "%s: %d %s", uri, rc, err);
    log_close(l);
    for (int e = LOG_ENOENT; e <= 0; e++)
        cr_assert(strlen(log_strerror(e)) > 0);
}

/* ?mapsize takes a byte count: a negative or overflowing number is not one
 * and must be refused like any other bad value, by readers and writers. */
Test(log, bad_uris_mapsize_range)
{
    const char *dir = g_dir;
    char uri[700];
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=-5", dir);
    expect_einval(uri, "mapsize");
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=-1048576", dir);
    expect_einval(uri, "mapsize");
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=99999999999999999999999", dir);
    expect_einval(uri, "mapsize");
}

/* A log opened with a small map grows past it; readers follow. */
Test(log, grows_past_mapsize)
{
    const char *dir = g_dir;
    char uri[700], err[512] = "";
    snprintf(uri, sizeof uri, "lmdb:%s?mapsize=1048576", dir);
    log_t *w, *r;
    cr_assert_eq(log_open(uri, LOG_WRITE, &w, err, sizeof err), LOG_OK, "%s", err);
    cr_assert_eq(log_open(uri, LOG_READ, &r, err, sizeof err), LOG_OK, "%s", err);
    ev_enc *enc = ev_enc_new();
    batch b = {0};
    uint64_t first, last, total = 0;
    for (int k = 0; k < 60; k++) {
        int rc = append_batch(w, enc, &b, 1 + (uint64_t)k, 250, total, &first, &last);
        cr_assert_eq(rc, LOG_OK, "batch %d (%" PRIu64 " records so far): %d %s", k, total, rc,
                     log_errmsg(w));
        total += 250;
        cr_assert_eq(end_of(r), total, "the reader follows at batch %d", k);
    }
    static const uint8_t zero[EV_HASH_LEN];
    audit_result res;
    cr_assert_eq(audit_chain(r, 0, zero, &res, NULL, NULL, 0), 0, "bad at %" PRIu64,
                 res.bad_pos);
    cr_assert_eq(res.records, total);
    log_close(r);
    log_close(w);
    batch_free(&b);
    ev_enc_free(enc);
}

/* Resident kB of this process's mappings of files under dir named
 * data.mdb (from /proc/self/smaps). */
static long resident_kb_of(const char *dir)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[4600];
    bool in = false;
    long kb = 0;
    size_t dl = strlen(dir);
    while (fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (strchr(line, '-') && strchr(line, ':') && line[0] != 'R' && line[0] != 'S')
            in = path && !strncmp(path, dir, dl) && strstr(path, "/data.mdb");
        long v;
        if (in && sscanf(line, "Rss: %ld kB", &v) == 1)
            kb += v;
    }
    fclose(f);
    return kb;
}

static int count_bytes_fn(void *ud, const log_rec *r)
{
    *(uint64_t *)ud += r->len;
    return 0;
}

Test(log, streaming_through_a_large_log_does_not_keep_it_resident, .timeout = 120)
{
    /* 48 MB appended by one handle and scanned by another in this
     * process: the map's pages are released every 8 MB passed, so
     * neither keeps the file in its resident memory. */
    const char *dir = g_dir;
    ev_enc *enc = ev_enc_new();
    log_t *w, *r;
    open_ok(dir, LOG_WRITE, &w);
    open_ok(dir, LOG_READ, &r);
    batch b = {0};
    uint64_t first, last, bytes = 0;
    while (bytes < (48u << 20)) {
        cr_assert_eq(append_batch(w, enc, &b, 1, 2000, 0, &first, &last), LOG_OK);
        bytes += b.buf.len;
    }
    uint64_t scanned = 0, next;
    cr_assert_eq(log_scan(r, 0, 0, count_bytes_fn, &scanned, &next), LOG_OK);
    cr_assert_geq(scanned, 48u << 20);
    long kb = resident_kb_of(dir);
    cr_assert_lt(kb, 24 * 1024, "%ld kB of the log resident after 48 MB appended and read", kb);
    batch_free(&b);
    log_close(r);
    log_close(w);
    ev_enc_free(enc);
}
