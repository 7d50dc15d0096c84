/* projector.c - the `projector` process: follows the log and keeps the
 * PostgreSQL read models up to date.
 *
 * Batches of events are applied in one transaction each, with the position
 * (see proj_pg.h). When PostgreSQL is down the projector waits and retries
 * with backoff (0.1 s doubling to 5 s), loses nothing, and catches up when it
 * returns. It sleeps on the log's notification between batches, so an idle
 * projector takes no CPU. SIGTERM or SIGINT: it finishes the batch under way
 * and exits 0. Log lines are JSON on standard error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jlog.h"
#include "core/log.h"
#include "proj_pg.h"

static const char usage[] =
    "usage: projector [--log URI] [--db CONNINFO] [--schema NAME] [--batch N] [--once]\n"
    "\n"
    "Follows the watch store's event log and applies it to the PostgreSQL read\n"
    "models (migrating them first), exactly once: each batch and the position it\n"
    "reaches are one transaction, so the projector may be killed at any moment.\n"
    "\n"
    "  --log URI        the log (default: $WATCHSTORE_LOG, else lmdb:var/log)\n"
    "  --db CONNINFO    libpq connection string or URI (default: $WATCHSTORE_DB)\n"
    "  --schema NAME    the schema of the read models (default: public)\n"
    "  --batch N        events per transaction (default: 5000)\n"
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

int main(int argc, char **argv)
{
    const char *log_uri = getenv("WATCHSTORE_LOG") ? getenv("WATCHSTORE_LOG") : "lmdb:var/log";
    const char *conninfo = getenv("WATCHSTORE_DB"), *schema = "public";
    size_t batch = 5000;
    int once = 0, ch;
    static const struct option lo[] = {
        {"log", required_argument, 0, 'l'},   {"db", required_argument, 0, 'd'},
        {"schema", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
        {"once", no_argument, 0, 'o'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'l': log_uri = optarg; break;
        case 'd': conninfo = optarg; break;
        case 's': schema = optarg; break;
        case 'b': batch = strtoul(optarg, NULL, 10); break;
        case 'o': once = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc || !conninfo || batch == 0) {
        fputs(!conninfo ? "projector: no database: give --db or set WATCHSTORE_DB\n" : usage,
              stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char err[1024], fields[1536];
    log_t *log = NULL;
    /* The log may not exist yet: its writer creates it. */
    for (long wait = 100; !stop; wait = wait < 5000 ? wait * 2 : 5000) {
        if (log_open(log_uri, LOG_READ, &log, err, sizeof err) == 0)
            break;
        snprintf(fields, sizeof fields, "\"projection\":\"pg\",\"retry_ms\":%ld", wait);
        jlog(stderr, "warn", err, fields);
        if (once)
            return 1;
        backoff_sleep(wait);
    }
    proj_pg *pg = NULL;
    for (long wait = 100; !stop && !pg; wait = wait < 5000 ? wait * 2 : 5000) {
        pg = proj_pg_open(conninfo, schema, err, sizeof err);
        if (pg)
            break;
        snprintf(fields, sizeof fields, "\"projection\":\"pg\",\"retry_ms\":%ld", wait);
        jlog(stderr, "warn", err, fields);
        if (once) {
            log_close(log);
            return 1;
        }
        backoff_sleep(wait);
    }
    if (!pg) {
        log_close(log);
        return 0;
    }
    proj_sink sink = proj_pg_sink(pg);
    proj_stats st = {0};
    uint64_t reported_skips = 0;
    long wait = 100;
    int rc = 0;
    jlog(stderr, "info", "projector started", "\"projection\":\"pg\"");
    while (!stop) {
        uint64_t before = st.applied;
        if (proj_catch_up(log, &sink, batch, &st, err, sizeof err) != 0) {
            snprintf(fields, sizeof fields, "\"projection\":\"pg\",\"next_pos\":%llu,\"retry_ms\":%ld",
                     (unsigned long long)st.next_pos, wait);
            jlog(stderr, "error", err, fields);
            if (once) {
                rc = 1;
                break;
            }
            backoff_sleep(wait);
            wait = wait < 5000 ? wait * 2 : 5000;
            if (proj_pg_reconnect(pg, err, sizeof err) != 0)
                jlog(stderr, "warn", err, "\"projection\":\"pg\"");
            continue;
        }
        wait = 100;
        if (st.applied != before) {
            snprintf(fields, sizeof fields,
                     "\"projection\":\"pg\",\"next_pos\":%llu,\"applied\":%llu,\"batches\":%llu",
                     (unsigned long long)st.next_pos, (unsigned long long)st.applied,
                     (unsigned long long)st.batches);
            jlog(stderr, "info", "caught up", fields);
        }
        if (st.skipped != reported_skips) {
            snprintf(fields, sizeof fields, "\"projection\":\"pg\",\"skipped\":%llu",
                     (unsigned long long)st.skipped);
            jlog(stderr, "warn", "events of unknown types or versions skipped", fields);
            reported_skips = st.skipped;
        }
        if (once)
            break;
        /* Sleep until the log grows past what is applied (or a second). */
        log_wait(log, st.next_pos, 1000);
    }
    jlog(stderr, "info", "projector stopped", "\"projection\":\"pg\"");
    proj_pg_close(pg);
    log_close(log);
    return rc;
}
