/* test_replay_projection.c - `replay --projection` as operators use it,
 * against a database in the throwaway cluster and a cache folder:
 * - `--projection all --rebuild` builds both read models from the log, with
 *   plain progress lines when not on a terminal, equal to a direct
 *   projection;
 * - `--projection pg --from TIME` re-projects from the first event at that
 *   time, repairs rows damaged after it, and leaves the tables equal;
 * - `--projection cache --from POS` rebuilds the cache into a new
 *   generation;
 * - bad input gets exit status 2 and a sentence. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cache_gen.h"
#include "core/support.h"
#include "pg_support.h"
#include "proj.h"
#include "proj_cache.h"
#include "proj_pg.h"

#define N_WATCHES 40

typedef struct fixture {
    char dir[256], uri[300], cache[300], keyfile[300], db[512];
} fixture;

static void fx_init(fixture *f, unsigned events)
{
    char err[512];
    ts_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->uri, sizeof f->uri, "lmdb:%s/log", f->dir);
    snprintf(f->cache, sizeof f->cache, "%s/cache", f->dir);
    snprintf(f->keyfile, sizeof f->keyfile, "%s/email.key", f->dir);
    FILE *kf = fopen(f->keyfile, "w");
    cr_assert_not_null(kf);
    for (int i = 0; i < 32; i++)
        fprintf(kf, "%02x", ts_email_key[i]);
    fprintf(kf, "\n");
    fclose(kf);
    wr_config cfg = {0};
    cfg.log_uri = f->uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w;
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    unsigned seed = 3;
    cr_assert_eq(ts_grow_log(w, events, &seed, 0, N_WATCHES), 0);
    wr_close(w);
    ts_pg_fresh_db(f->db, sizeof f->db);
}

/* Runs replay with `args`; stdout into out, stderr into err_out. */
static int replay(const fixture *f, const char *args, char *out, size_t cap, char *err_out,
                  size_t err_cap)
{
    char errfile[400], cmd[4096];
    snprintf(errfile, sizeof errfile, "%s/stderr", f->dir);
    snprintf(cmd, sizeof cmd,
             "%s --log '%s' --db '%s' --cache '%s' --email-key-file '%s' %s 2>'%s'",
             getenv("REPLAY_BIN"), f->uri, f->db, f->cache, f->keyfile, args, errfile);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    FILE *e = fopen(errfile, "r");
    n = e ? fread(err_out, 1, err_cap - 1, e) : 0;
    err_out[n] = 0;
    if (e)
        fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The checksum of a direct projection of the whole log into a fresh
 * database. */
static char *direct_checksum(const fixture *f)
{
    char db[512], err[512];
    ts_pg_fresh_db(db, sizeof db);
    proj_pg *p = proj_pg_open(db, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    proj_sink s = proj_pg_sink(p);
    log_t *log;
    cr_assert_eq(log_open(f->uri, LOG_READ, &log, err, sizeof err), 0, "%s", err);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(log, &s, 3000, &st, err, sizeof err), 0, "%s", err);
    log_close(log);
    proj_pg_close(p);
    return ts_pg_checksum(db);
}

static void cache_digest(const char *root, uint8_t out[32])
{
    char err[512];
    proj_cache_reader *r;
    cr_assert_eq(proj_cache_open_reader(root, ts_email_key, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(proj_cache_digest(r, out), 0);
    proj_cache_reader_close(r);
}

static void clean_cache_digest(const fixture *f, uint8_t out[32])
{
    char root[400], err[512];
    snprintf(root, sizeof root, "%s/clean-cache", f->dir);
    proj_sink s;
    cr_assert_eq(proj_cache_open_writer(root, ts_email_key, &s, err, sizeof err), 0, "%s", err);
    log_t *log;
    cr_assert_eq(log_open(f->uri, LOG_READ, &log, err, sizeof err), 0, "%s", err);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(log, &s, 5000, &st, err, sizeof err), 0, "%s", err);
    log_close(log);
    proj_cache_close(&s);
    cache_digest(root, out);
}

static int take_time(void *ud, const log_rec *r)
{
    ev_dec *d = ev_dec_new();
    ev_event ev;
    cr_assert_eq(ev_decode(d, r->data, r->len, r->pos, &ev), 0);
    *(uint64_t *)ud = ev.env.recorded_us;
    ev_dec_free(d);
    return 1;
}

/* The recorded time of the event at `pos`, as RFC 3339 with microseconds. */
static void time_at(log_t *log, uint64_t pos, char *out, size_t cap, uint64_t *us)
{
    uint64_t next;
    cr_assert_geq(log_scan(log, pos, 1, take_time, us, &next), 0);
    time_t sec = (time_t)(*us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%06uZ", (unsigned)(*us % 1000000));
}

static uint64_t events_in(const char *out)
{
    const char *p = strstr(out, " from ");
    cr_assert_not_null(p, "a count in: %s", out);
    return strtoull(p + 6, NULL, 10);
}

Test(replay_projection, all_rebuilds_both_then_pg_from_a_time_repairs_rows, .timeout = 300)
{
    fixture f;
    fx_init(&f, 20000);
    static char out[65536], err[65536];
    cr_assert_eq(replay(&f, "--projection all --rebuild", out, sizeof out, err, sizeof err), 0,
                 "%s%s", out, err);
    cr_assert_not_null(strstr(out, "OK: PostgreSQL read models rebuilt"), "%s", out);
    cr_assert_not_null(strstr(out, "OK: cache rebuilt"), "%s", out);
    /* Not a terminal: plain progress lines with rate and position. */
    cr_assert_not_null(strstr(err, "pg: projected"), "%s", err);
    cr_assert_not_null(strstr(err, "cache: projected"), "%s", err);
    cr_assert_not_null(strstr(err, "events/s"), "%s", err);
    cr_assert_null(strstr(err, "\r"), "no terminal control codes: %s", err);

    char *want = direct_checksum(&f), *got = ts_pg_checksum(f.db);
    cr_assert_str_eq(got, want);
    free(got);
    uint8_t d1[32], d2[32];
    cache_digest(f.cache, d1);
    clean_cache_digest(&f, d2);
    cr_assert_arr_eq(d1, d2, 32, "the rebuilt cache equals a clean one");

    /* Damage a row that later events wrote, then re-project from a time. */
    char errs[512];
    log_t *log;
    cr_assert_eq(log_open(f.uri, LOG_READ, &log, errs, sizeof errs), 0, "%s", errs);
    uint64_t at, end, us;
    char when[64], args[128];
    cr_assert_eq(log_end(log, &end), 0);
    time_at(log, end / 2, when, sizeof when, &us);
    cr_assert_eq(proj_pos_at_time(log, us, &at, errs, sizeof errs), 0, "%s", errs);
    log_close(log);
    cr_assert(at > 0 && at < end, "the time falls inside the log: %llu of %llu",
              (unsigned long long)at, (unsigned long long)end);
    PGconn *db = ts_pg_connect(f.db);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE watches SET stock_quantity = -1 WHERE source_pos >= %llu;"
             "UPDATE orders SET status = 'garbled' WHERE source_pos >= %llu",
             (unsigned long long)at, (unsigned long long)at);
    PQclear(PQexec(db, sql));
    char *n = ts_pg_value(db, "SELECT count(*) FROM orders WHERE status = 'garbled'");
    cr_assert_gt(atoi(n), 0, "some rows were damaged");
    free(n);
    snprintf(args, sizeof args, "--projection pg --from %s", when);
    cr_assert_eq(replay(&f, args, out, sizeof out, err, sizeof err), 0, "%s%s", out, err);
    cr_assert_not_null(strstr(out, "OK: PostgreSQL read models re-projected"), "%s", out);
    cr_assert_eq(events_in(out), end - at, "re-projected from the time's position: %s", out);
    got = ts_pg_checksum(f.db);
    cr_assert_str_eq(got, want, "the damaged rows are repaired");
    free(got);
    free(want);
    PQfinish(db);
    ts_rmtree(f.dir);
}

Test(replay_projection, cache_from_a_position_rebuilds_a_new_generation, .timeout = 120)
{
    fixture f;
    fx_init(&f, 5000);
    static char out[65536], err[65536];
    cr_assert_eq(replay(&f, "--projection cache --from 0 --quiet", out, sizeof out, err,
                        sizeof err),
                 0, "%s%s", out, err);
    cr_assert_str_empty(err, "--quiet: %s", err);
    char dir[CGEN_PATH_MAX], e[256];
    unsigned g1, g2;
    cr_assert_eq(cgen_current(f.cache, dir, sizeof dir, &g1, e, sizeof e), 0, "%s", e);
    cr_assert_eq(replay(&f, "--projection cache --from 1200", out, sizeof out, err, sizeof err),
                 0, "%s%s", out, err);
    cr_assert_eq(cgen_current(f.cache, dir, sizeof dir, &g2, e, sizeof e), 0, "%s", e);
    cr_assert_eq(g2, g1 + 1, "a new generation is live");
    uint8_t d1[32], d2[32];
    cache_digest(f.cache, d1);
    clean_cache_digest(&f, d2);
    cr_assert_arr_eq(d1, d2, 32);
    ts_rmtree(f.dir);
}

Test(replay_projection, bad_input_is_refused_with_a_sentence, .timeout = 60)
{
    fixture f;
    fx_init(&f, 100);
    static char out[65536], err[65536];
    struct {
        const char *args, *says;
    } cases[] = {
        {"--projection pg --from yesterday", "neither a position nor"},
        {"--projection mongo --rebuild", "pg, cache or all"},
        {"--projection pg", "needs --rebuild or --from"},
        {"--projection pg --from 999999", "past the log's end"},
        {"--projection cache --rebuild --email-key-file /nonexistent", "e-mail key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = replay(&f, cases[i].args, out, sizeof out, err, sizeof err);
        cr_assert(rc == 1 || rc == 2, "%s: exit %d", cases[i].args, rc);
        cr_assert_not_null(strstr(err, cases[i].says), "%s: %s", cases[i].args, err);
    }
    ts_rmtree(f.dir);
}
