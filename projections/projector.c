/* projector.c - the `projector` process: follows the log and keeps the
 * read models up to date: the PostgreSQL tables and the LMDB cache the API
 * reads, each on its own thread with its own position.
 *
 * Batches of events are applied in one transaction each, with the position
 * (see proj.h). When PostgreSQL is down the projector waits and retries with
 * backoff (0.1 s doubling to 5 s), loses nothing, and catches up when it
 * returns. It sleeps on the log's notification between batches, so an idle
 * projector takes no CPU. SIGTERM or SIGINT: it finishes the batches under
 * way and exits 0. Log lines are JSON on standard error.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jlog.h"
#include "core/log.h"
#include "core/secret.h"
#include "cache_rebuild.h"
#include "proj_cache.h"
#include "proj_pg.h"

static const char usage[] =
    "usage: projector [--projection pg|cache|all] [--log URI] [--db CONNINFO]\n"
    "                 [--cache DIR] [--email-key-file FILE] [--schema NAME]\n"
    "                 [--batch N] [--once]\n"
    "\n"
    "Follows the watch store's event log and applies it to the PostgreSQL read\n"
    "models (migrating them first) and to the LMDB cache the API reads, exactly\n"
    "once: each batch and the position it reaches are one transaction, so the\n"
    "projector may be killed at any moment.\n"
    "\n"
    "  --projection P   pg, cache or all (default: all)\n"
    "  --log URI        the log (default: $WATCHSTORE_LOG, else lmdb:var/log)\n"
    "  --db CONNINFO    libpq connection string or URI (default: $WATCHSTORE_DB)\n"
    "  --cache DIR      the cache's folder (default: $WATCHSTORE_CACHE, else var/cache)\n"
    "  --email-key-file FILE  64 hex digits: the key of the cache's e-mail index\n"
    "                   (default: $WATCHSTORE_EMAIL_KEY_FILE, else\n"
    "                   var/secrets/email.key); the writer uses the same key\n"
    "  --schema NAME    the schema of the read models (default: public)\n"
    "  --batch N        events per transaction (default: 5000 for pg, 1000 for\n"
    "                   the cache)\n"
    "  --once           catch up with the log, then exit (default: follow it)\n"
    "  -h, --help       this text\n"
    "\n"
    "Examples:\n"
    "  projector --db 'host=var/pg/run dbname=watchstore user=postgres'\n"
    "  WATCHSTORE_DB=postgresql://127.0.0.1:5433/watchstore projector --once\n"
    "\n"
    "Rebuilding from an earlier position is `replay --from`.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleeps `ms` in short steps, so that a signal ends the wait soon. */
static void backoff_sleep(long ms)
{
    for (long left = ms; left > 0 && !stop; left -= 100)
        sleep_ms(left < 100 ? left : 100);
}

/* One projection followed by one thread. */
typedef struct runner {
    const char *name;
    log_t *log;
    proj_sink sink;
    proj_pg *pg; /* for reconnecting; NULL for the cache */
    size_t batch;
    int once;
    int rc;
} runner;

static void *follow(void *arg)
{
    runner *r = arg;
    char err[1024], fields[1536];
    proj_stats st = {0};
    uint64_t reported_skips = 0;
    long wait = 100;
    snprintf(fields, sizeof fields, "\"projection\":\"%s\"", r->name);
    jlog(stderr, "info", "projection started", fields);
    while (!stop) {
        uint64_t before = st.applied;
        if (proj_catch_up(r->log, &r->sink, r->batch, &st, err, sizeof err) != 0) {
            snprintf(fields, sizeof fields,
                     "\"projection\":\"%s\",\"next_pos\":%llu,\"retry_ms\":%ld", r->name,
                     (unsigned long long)st.next_pos, wait);
            jlog(stderr, "error", err, fields);
            if (r->once) {
                r->rc = 1;
                break;
            }
            backoff_sleep(wait);
            wait = wait < 5000 ? wait * 2 : 5000;
            if (r->pg && proj_pg_reconnect(r->pg, err, sizeof err) != 0) {
                snprintf(fields, sizeof fields, "\"projection\":\"%s\"", r->name);
                jlog(stderr, "warn", err, fields);
            }
            continue;
        }
        wait = 100;
        if (st.applied != before) {
            snprintf(fields, sizeof fields,
                     "\"projection\":\"%s\",\"next_pos\":%llu,\"applied\":%llu,\"batches\":%llu",
                     r->name, (unsigned long long)st.next_pos, (unsigned long long)st.applied,
                     (unsigned long long)st.batches);
            jlog(stderr, "info", "caught up", fields);
        }
        if (st.skipped != reported_skips) {
            snprintf(fields, sizeof fields, "\"projection\":\"%s\",\"skipped\":%llu", r->name,
                     (unsigned long long)st.skipped);
            jlog(stderr, "warn", "events of unknown types or versions skipped", fields);
            reported_skips = st.skipped;
        }
        if (r->once)
            break;
        /* Sleep until the log grows past what is applied (or a second). */
        log_wait(r->log, st.next_pos, 1000);
    }
    snprintf(fields, sizeof fields, "\"projection\":\"%s\"", r->name);
    jlog(stderr, "info", "projection stopped", fields);
    return NULL;
}

/* Opens the log for one runner, waiting for its writer to create it. */
static log_t *open_log(const char *uri, const char *name, int once)
{
    char err[1024], fields[256];
    log_t *log = NULL;
    for (long wait = 100; !stop; wait = wait < 5000 ? wait * 2 : 5000) {
        if (log_open(uri, LOG_READ, &log, err, sizeof err) == 0)
            return log;
        snprintf(fields, sizeof fields, "\"projection\":\"%s\",\"retry_ms\":%ld", name, wait);
        jlog(stderr, "warn", err, fields);
        if (once)
            return NULL;
        backoff_sleep(wait);
    }
    return NULL;
}

/* Opens the cache as its writer. A cache of another layout (an upgrade) or
 * made with another e-mail key cannot be used as it is; it is derived data,
 * so a new generation is built from the log beside it and swapped in
 * (readers of the old one move over), and then opened. */
static int open_cache(runner *r, const char *dir, const uint8_t key[32], char *err,
                      size_t errlen)
{
    int rc = proj_cache_open_writer(dir, key, &r->sink, err, errlen);
    if (rc != PROJ_CACHE_EMISMATCH)
        return rc;
    jlog(stderr, "warn", err, "\"projection\":\"cache\",\"action\":\"rebuilding it from the log\"");
    proj_stats st;
    if (proj_cache_rebuild(r->log, dir, key, 50000, NULL, NULL, &st, err, errlen) != 0)
        return -1;
    char fields[96];
    snprintf(fields, sizeof fields, "\"projection\":\"cache\",\"events\":%llu",
             (unsigned long long)(st.applied + st.skipped));
    jlog(stderr, "info", "cache rebuilt from the log", fields);
    return proj_cache_open_writer(dir, key, &r->sink, err, errlen);
}

int main(int argc, char **argv)
{
    const char *log_uri = getenv("WATCHSTORE_LOG") ? getenv("WATCHSTORE_LOG") : "lmdb:var/log";
    const char *conninfo = getenv("WATCHSTORE_DB"), *schema = "public";
    const char *cache_dir = getenv("WATCHSTORE_CACHE") ? getenv("WATCHSTORE_CACHE") : "var/cache";
    const char *key_file = getenv("WATCHSTORE_EMAIL_KEY_FILE") ? getenv("WATCHSTORE_EMAIL_KEY_FILE")
                                                                 : "var/secrets/email.key";
    const char *which = "all";
    size_t batch = 0;
    int once = 0, ch;
    static const struct option lo[] = {
        {"log", required_argument, 0, 'l'},       {"db", required_argument, 0, 'd'},
        {"schema", required_argument, 0, 's'},     {"batch", required_argument, 0, 'b'},
        {"once", no_argument, 0, 'o'},             {"projection", required_argument, 0, 'p'},
        {"cache", required_argument, 0, 'c'},      {"email-key-file", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'l': log_uri = optarg; break;
        case 'd': conninfo = optarg; break;
        case 's': schema = optarg; break;
        case 'b': batch = strtoul(optarg, NULL, 10); break;
        case 'o': once = 1; break;
        case 'p': which = optarg; break;
        case 'c': cache_dir = optarg; break;
        case 'k': key_file = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    int want_pg = !strcmp(which, "pg") || !strcmp(which, "all");
    int want_cache = !strcmp(which, "cache") || !strcmp(which, "all");
    if (optind < argc || (!want_pg && !want_cache)) {
        fputs(usage, stderr);
        return 2;
    }
    if (want_pg && !conninfo) {
        fputs("projector: no database: give --db or set WATCHSTORE_DB (or --projection cache)\n",
              stderr);
        return 2;
    }
    char err[1024], fields[256];
    uint8_t key[32];
    if (want_cache && secret_read_hex(key_file, "e-mail key", key, 32, err, sizeof err) != 0) {
        fprintf(stderr, "projector: %s\n", err);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    runner rs[2];
    int n = 0, rc = 0;
    memset(rs, 0, sizeof rs);
    if (want_pg) {
        runner *r = &rs[n];
        r->name = "pg";
        r->batch = batch ? batch : 5000;
        r->once = once;
        if (!(r->log = open_log(log_uri, "pg", once)))
            goto out;
        for (long wait = 100; !stop; wait = wait < 5000 ? wait * 2 : 5000) {
            if ((r->pg = proj_pg_open(conninfo, schema, err, sizeof err)))
                break;
            snprintf(fields, sizeof fields, "\"projection\":\"pg\",\"retry_ms\":%ld", wait);
            jlog(stderr, "warn", err, fields);
            if (once) {
                rc = 1;
                goto out;
            }
            backoff_sleep(wait);
        }
        if (!r->pg)
            goto out;
        r->sink = proj_pg_sink(r->pg);
        n++;
    }
    if (want_cache) {
        runner *r = &rs[n];
        r->name = "cache";
        r->batch = batch ? batch : 1000;
        r->once = once;
        if (!(r->log = open_log(log_uri, "cache", once)))
            goto out;
        if (open_cache(r, cache_dir, key, err, sizeof err) != 0) {
            jlog(stderr, "error", err, "\"projection\":\"cache\"");
            rc = 1;
            goto out;
        }
        n++;
    }
    pthread_t th[2];
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, follow, &rs[i]);
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        rc |= rs[i].rc;
    }
out:
    for (int i = 0; i < 2; i++) {
        if (rs[i].pg)
            proj_pg_close(rs[i].pg);
        else if (rs[i].sink.ops)
            proj_cache_close(&rs[i].sink);
        log_close(rs[i].log);
    }
    return rc;
}
