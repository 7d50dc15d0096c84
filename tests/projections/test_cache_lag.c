/* test_cache_lag.c - end to end: a writer appends orders under load while
 * the real projector process (cache projection) follows the log; a reader in
 * this process waits for each batch's position in the cache. The p99 delay
 * from the append's return to the event being readable must stay under
 * 50 ms. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/support.h"
#include "core/writer.h"
#include "proj_cache.h"

#define N_WATCHES 100
#define SECONDS 3
#define BATCHES_PER_S 200
#define ORDERS_PER_BATCH 20 /* ~3 events each: ~12,000 events/s */
/* The requirement (50 ms) holds for the Release build; the sanitizer build
 * runs everything several times slower and only has to stay in bounds
 * (ops/bench measures the real figure). */
#ifdef __SANITIZE_ADDRESS__
#define P99_LIMIT_MS 500.0
#else
#define P99_LIMIT_MS 50.0
#endif

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void wid(int i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x1a;
    id[15] = (uint8_t)i;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

Test(cache_lag, events_are_readable_within_50ms_p99, .timeout = 120)
{
    char dir[256], uri[300], cache[300], keyfile[300], err[512];
    ts_tmpdir(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/log", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(keyfile, sizeof keyfile, "%s/email.key", dir);
    FILE *kf = fopen(keyfile, "w");
    cr_assert_not_null(kf);
    for (int i = 0; i < 32; i++)
        fprintf(kf, "%02x", ts_email_key[i]);
    fclose(kf);

    wr_config cfg = {0};
    cfg.log_uri = uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w;
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    static wr_req reqs[ORDERS_PER_BATCH];
    static dec_line_in lines[ORDERS_PER_BATCH][3];
    wr_req *ptr[ORDERS_PER_BATCH];
    for (int i = 0; i < N_WATCHES; i++) {
        memset(&reqs[0], 0, sizeof reqs[0]);
        reqs[0].cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull + (uint64_t)i);
        wid(i, reqs[0].cmd.u.watch.watch_id);
        reqs[0].cmd.u.watch.watch_name = EV_STR("Lag watch");
        reqs[0].cmd.u.watch.price = 25000;
        reqs[0].cmd.u.watch.currency = EV_STR("USD");
        reqs[0].cmd.u.watch.set_stock = true;
        reqs[0].cmd.u.watch.stock = 10000000;
        ptr[0] = &reqs[0];
        cr_assert_eq(wr_process(w, ptr, 1), 0);
    }

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves nothing behind */
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        char a1[400], a2[400], a3[400];
        snprintf(a1, sizeof a1, "--log=%s", uri);
        snprintf(a2, sizeof a2, "--cache=%s", cache);
        snprintf(a3, sizeof a3, "--email-key-file=%s", keyfile);
        execl(getenv("PROJECTOR_BIN"), "projector", "--projection=cache", a1, a2, a3,
              (char *)NULL);
        _exit(127);
    }
    /* Wait for the cache to appear and catch up with the catalogue. */
    proj_cache_reader *r = NULL;
    for (int i = 0; i < 200 && !r; i++) {
        if (proj_cache_open_reader(cache, NULL, &r, err, sizeof err) != 0) {
            r = NULL;
            usleep(50000);
        }
    }
    cr_assert_not_null(r, "the projector made the cache: %s", err);
    cr_assert_eq(proj_cache_wait(r, N_WATCHES - 1, 10000), 0);

    int n = SECONDS * BATCHES_PER_S;
    double *lag = calloc((size_t)n, sizeof *lag);
    unsigned seed = 42;
    double period = 1000.0 / BATCHES_PER_S, t0 = now_ms();
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < ORDERS_PER_BATCH; k++) {
            memset(&reqs[k], 0, sizeof reqs[k]);
            reqs[k].cmd = ts_cmd(DEC_ORDER_PLACE, 1764060000000000ull + (uint64_t)b * 1000 + (uint64_t)k);
            reqs[k].cmd.causation = (ev_str){NULL, 0};
            unsigned m = 1 + rand_r(&seed) % 3;
            for (unsigned i = 0; i < m; i++) {
                wid((int)(rand_r(&seed) % N_WATCHES), lines[k][i].watch_id);
                lines[k][i].quantity = 1;
            }
            reqs[k].cmd.u.order.lines = lines[k];
            reqs[k].cmd.u.order.n_lines = m;
            ptr[k] = &reqs[k];
        }
        cr_assert_eq(wr_process(w, ptr, ORDERS_PER_BATCH), 0);
        double appended = now_ms();
        uint64_t last = reqs[ORDERS_PER_BATCH - 1].out.last_pos;
        cr_assert_eq(proj_cache_wait(r, last, 5000), 0, "batch %d visible", b);
        lag[b] = now_ms() - appended;
        /* Keep the pace: the next batch at its time, not after the wait. */
        double next = t0 + (b + 1) * period, left = next - now_ms();
        if (left > 0)
            usleep((useconds_t)(left * 1000));
    }
    double secs = (now_ms() - t0) / 1000.0;
    uint64_t end;
    log_end(wr_log(w), &end);
    qsort(lag, (size_t)n, sizeof *lag, cmp_d);
    double p50 = lag[n / 2], p99 = lag[n * 99 / 100], max = lag[n - 1];
    fprintf(stderr, "cache lag under %.0f events/s: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
            (double)(end - N_WATCHES) / secs, p50, p99, max);
    cr_assert_lt(p99, P99_LIMIT_MS, "p99 append-to-cache %.2f ms", p99);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "projector stops cleanly");
    free(lag);
    proj_cache_reader_close(r);
    wr_close(w);
    ts_rmtree(dir);
}
