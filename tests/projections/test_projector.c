/* test_projector.c - the projector process under faults, against its own
 * PostgreSQL cluster (these tests stop it):
 * - killed with SIGKILL at random moments 20+ times while projecting 200,000
 *   events (PostgreSQL and the cache), restarted each time: the tables and the
 *   cache equal a clean rebuild's;
 * - PostgreSQL stopped and started again while the projector follows a
 *   growing log: nothing lost, nothing applied twice. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/support.h"
#include "core/writer.h"
#include "pg_support.h"
#include "proj_cache.h"

#define N_WATCHES 50

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert_not_null(v, "%s is set by ctest", name);
    return v;
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A private cluster in dir/pg; conninfo of its `watchstore` database. */
static void cluster_start(const char *dir, char *conninfo, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s start %s/pg", env("PG_SH"), dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(conninfo, (int)cap, p));
    conninfo[strcspn(conninfo, "\n")] = 0;
    cr_assert_eq(pclose(p), 0);
}

static void cluster_stop(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pg", dir);
    sh("%s stop %s", env("PG_SH"), path);
}

/* The test's folder, so that a failed test still stops its cluster and
 * removes what it made (criterion runs .fini after a failed assertion). */
static char test_dir[256];

static void test_dir_make(char *dir, size_t cap)
{
    ts_tmpdir(dir, cap);
    snprintf(test_dir, sizeof test_dir, "%s", dir);
}

static void cleanup(void)
{
    if (!test_dir[0])
        return;
    char pid[400], cmd[1024];
    snprintf(pid, sizeof pid, "%s/pg/data/postmaster.pid", test_dir);
    if (access(pid, F_OK) == 0) {
        snprintf(cmd, sizeof cmd, "%s stop %s/pg >/dev/null 2>&1", env("PG_SH"), test_dir);
        if (system(cmd) != 0) {
            /* Nothing more to do here: the cluster's folder goes below. */
        }
    }
    ts_rmtree(test_dir);
    test_dir[0] = 0;
}

/* The projector on the log at `uri` into the database `conninfo` and, with
 * `cache` (a folder; its e-mail key file is beside it), the cache too. */
static pid_t start_projector(const char *uri, const char *conninfo, const char *cache, int once)
{
    char keyfile[512];
    if (cache) {
        snprintf(keyfile, sizeof keyfile, "%s.key", cache);
        FILE *kf = fopen(keyfile, "w");
        cr_assert_not_null(kf);
        for (int i = 0; i < 32; i++)
            fprintf(kf, "%02x", ts_email_key[i]);
        fclose(kf);
    }
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        const char *bin = getenv("PROJECTOR_BIN");
        char log_arg[512], db_arg[1024], cache_arg[600], key_arg[600];
        snprintf(log_arg, sizeof log_arg, "--log=%s", uri);
        snprintf(db_arg, sizeof db_arg, "--db=%s", conninfo);
        snprintf(cache_arg, sizeof cache_arg, "--cache=%s", cache ? cache : "");
        snprintf(key_arg, sizeof key_arg, "--email-key-file=%s", keyfile);
        if (cache)
            execl(bin, "projector", "--projection=all", log_arg, db_arg, cache_arg, key_arg,
                  "--batch=2000", once ? "--once" : NULL, (char *)NULL);
        else
            execl(bin, "projector", "--projection=pg", log_arg, db_arg, "--batch=2000",
                  once ? "--once" : NULL, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The cache's position (0 before it exists) and, with `digest`, its digest. */
static long long cache_position(const char *cache, uint8_t digest[32])
{
    char err[512];
    proj_cache_reader *r;
    if (proj_cache_open_reader(cache, NULL, &r, err, sizeof err) != 0)
        return 0;
    uint64_t pos = 0;
    cr_assert_eq(proj_cache_applied(r, &pos), 0);
    if (digest)
        cr_assert_eq(proj_cache_digest(r, digest), 0);
    proj_cache_reader_close(r);
    return (long long)pos;
}

static int wait_exit(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The projection's position (0 before the tables exist), or -1 when
 * PostgreSQL cannot be reached. */
static long long position(const char *conninfo)
{
    PGconn *db = PQconnectdb(conninfo);
    long long v = -1;
    if (PQstatus(db) == CONNECTION_OK) {
        PGresult *r = PQexec(db, "SELECT next_pos FROM projection_state WHERE projection = 'pg'");
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
        else if (state && strcmp(state, "42P01") == 0)
            v = 0; /* killed before its first migration committed */
        PQclear(r);
    }
    PQfinish(db);
    return v;
}

static void fresh_db_in(const char *conninfo, const char *name, char *out, size_t cap)
{
    PGconn *db = ts_pg_connect(conninfo);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQexec(db, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(db);
    snprintf(out, cap, "%s dbname=%s", conninfo, name);
}

Test(projector, killed_twenty_times_it_ends_like_a_clean_rebuild, .timeout = 300,
     .fini = cleanup)
{
    char dir[256], uri[300], base[512], live[768], clean[768], err[512];
    test_dir_make(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/log", dir);
    wr_config cfg = {0};
    cfg.log_uri = uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w;
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    unsigned seed = 20261125;
    cr_assert_eq(ts_grow_log(w, 200000, &seed, 0, N_WATCHES), 0);
    uint64_t end;
    log_end(wr_log(w), &end);
    wr_close(w);
    cr_assert_geq(end, 200000);

    cluster_start(dir, base, sizeof base);
    fresh_db_in(base, "live", live, sizeof live);
    fresh_db_in(base, "clean", clean, sizeof clean);

    srand(seed);
    int kills = 0;
    long long last = 0, progressed = 0;
    char live_cache[400], clean_cache[400];
    snprintf(live_cache, sizeof live_cache, "%s/live-cache", dir);
    snprintf(clean_cache, sizeof clean_cache, "%s/clean-cache", dir);
    long long cache_last = 0, cache_progressed = 0;
    /* A busy machine may take longer than the kill to start a projector:
     * after a run without progress, the next one lives a little longer. */
    long slack = 0;
    while (kills < 20 || position(live) < (long long)end ||
           cache_position(live_cache, NULL) < (long long)end) {
        pid_t pid = start_projector(uri, live, live_cache, 1);
        sleep_ms(20 + rand() % 150 + slack);
        if (kill(pid, SIGKILL) == 0 && wait_exit(pid) == 128 + SIGKILL)
            kills++;
        long long now = position(live), cnow = cache_position(live_cache, NULL);
        cr_assert_geq(now, last, "the position never goes back (%lld after %lld)", now, last);
        cr_assert_geq(cnow, cache_last, "the cache's position never goes back");
        progressed += now > last && now < (long long)end;
        cache_progressed += cnow > cache_last && cnow < (long long)end;
        slack = now > last || cnow > cache_last ? 0 : slack + 100;
        last = now;
        cache_last = cnow;
        if (kills > 200)
            break;
    }
    /* Whatever is left, without interruption. */
    cr_assert_eq(wait_exit(start_projector(uri, live, live_cache, 1)), 0);
    cr_assert_eq(position(live), (long long)end);
    cr_assert_geq(kills, 20);
    cr_assert_gt(progressed, 3, "kills landed in the middle of the work");
    cr_assert_gt(cache_progressed, 0, "kills landed in the middle of the cache's work");

    cr_assert_eq(wait_exit(start_projector(uri, clean, clean_cache, 1)), 0);
    char *a = ts_pg_checksum(live), *b = ts_pg_checksum(clean);
    cr_assert_str_eq(a, b, "killed %d times: tables differ from a clean rebuild", kills);
    free(a);
    free(b);
    uint8_t da[32], db[32];
    cr_assert_eq(cache_position(live_cache, da), (long long)end);
    cr_assert_eq(cache_position(clean_cache, db), (long long)end);
    cr_assert_arr_eq(da, db, 32, "killed %d times: the cache differs from a clean rebuild",
                     kills);
    cluster_stop(dir);
}

Test(projector, postgres_restarted_mid_projection_loses_nothing, .timeout = 300,
     .fini = cleanup)
{
    char dir[256], uri[300], base[512], live[768], clean[768], err[512];
    test_dir_make(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/log", dir);
    wr_config cfg = {0};
    cfg.log_uri = uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w;
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    unsigned seed = 7;
    cr_assert_eq(ts_grow_log(w, 20000, &seed, 0, N_WATCHES), 0);

    cluster_start(dir, base, sizeof base);
    fresh_db_in(base, "live", live, sizeof live);
    fresh_db_in(base, "clean", clean, sizeof clean);
    pid_t follower = start_projector(uri, live, NULL, 0);

    cr_assert_eq(ts_grow_log(w, 20000, &seed, 100000, N_WATCHES), 0);
    sleep_ms(300);
    cluster_stop(dir); /* while the projector follows */
    cr_assert_eq(ts_grow_log(w, 20000, &seed, 200000, N_WATCHES), 0);
    sleep_ms(1500);    /* it retries meanwhile */
    cluster_start(dir, base, sizeof base);
    cr_assert_eq(ts_grow_log(w, 20000, &seed, 300000, N_WATCHES), 0);
    uint64_t end;
    log_end(wr_log(w), &end);

    /* It catches up by itself. */
    long long pos = -1;
    for (int i = 0; i < 600 && pos != (long long)end; i++) {
        sleep_ms(100);
        pos = position(live);
    }
    cr_assert_eq(pos, (long long)end, "caught up after PostgreSQL came back");
    kill(follower, SIGTERM);
    cr_assert_eq(wait_exit(follower), 0, "SIGTERM: a clean exit");

    cr_assert_eq(wait_exit(start_projector(uri, clean, NULL, 1)), 0);
    char *a = ts_pg_checksum(live), *b = ts_pg_checksum(clean);
    cr_assert_str_eq(a, b, "tables differ from a clean rebuild");
    free(a);
    free(b);
    wr_close(w);
    cluster_stop(dir);
}
