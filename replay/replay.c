/* replay.c - the `replay` command: the log for auditors and operators.
 *
 * Reads the log directly (never the read models): verifies its hash chain,
 * prints events as JSON lines, and prints the event catalogue; and, for
 * operators, re-projects the read models from a position or time
 * (`--projection` with `--from` or `--rebuild`), beside the live projector.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/event.h"
#include "core/log.h"
#include "core/secret.h"
#include "projections/cache_rebuild.h"
#include "projections/proj_pg.h"
#include "projections/rebuild.h"

static const char usage[] =
    "usage: replay [--log URI] --verify [--from POS]\n"
    "       replay [--log URI] --dump [--from POS|TIME] [--limit N] [--type TYPE]\n"
    "       replay [--log URI] --projection pg|cache|all --rebuild|--from POS|TIME\n"
    "              [--db CONNINFO] [--cache DIR] [--email-key-file FILE]\n"
    "       replay --catalogue\n"
    "\n"
    "Reads the watch store's event log directly, for auditors and operators.\n"
    "\n"
    "  --log URI        the log to read (default: $WATCHSTORE_LOG, else lmdb:var/log)\n"
    "  --verify         decode every event, check its SHA-256 and that it is chained\n"
    "                   to the one before it; prints the first damaged position and\n"
    "                   exits 1 if any byte of the log was changed\n"
    "  --dump           print events as JSON lines (envelope, payload, personal part\n"
    "                   under \"pii\")\n"
    "  --from POS|TIME  start at a log position (a number) or at the first event\n"
    "                   recorded at or after an RFC 3339 time (2026-02-18T05:45:06Z)\n"
    "  --limit N        print at most N events\n"
    "  --type TYPE      print only events of this type (e.g. order.placed)\n"
    "  --catalogue      list every event type, its version and its fields\n"
    "  --projection P   re-project read models from the log while the live\n"
    "                   projector and the API keep running: pg (the PostgreSQL\n"
    "                   tables), cache (the API's LMDB cache) or all\n"
    "                   pg, --rebuild or --from 0: the whole log is projected into a\n"
    "                   shadow schema beside the live tables, then swapped in in one\n"
    "                   transaction: readers never see half a table\n"
    "                   pg, --from POS|TIME: the rows written by events from there\n"
    "                   on are projected again over the live tables (use it after\n"
    "                   fixing a projection bug that hit events from a known time);\n"
    "                   the live projector takes part, one batch at a time\n"
    "                   cache: always rebuilt whole (it holds running totals), into\n"
    "                   a new generation beside the live one, then swapped in; the\n"
    "                   projector and the API move to it on their next read\n"
    "  --rebuild        the same as --from 0\n"
    "  --db CONNINFO    the read models' database (default: $WATCHSTORE_DB)\n"
    "  --cache DIR      the cache's folder (default: $WATCHSTORE_CACHE, else var/cache)\n"
    "  --email-key-file FILE  the cache's e-mail index key (default:\n"
    "                   $WATCHSTORE_EMAIL_KEY_FILE, else var/secrets/email.key)\n"
    "  --quiet          no progress display\n"
    "  -h, --help       this text\n"
    "\n"
    "Progress (events/s, position, ETA) goes to standard error: a live line on a\n"
    "terminal, a plain line every few seconds otherwise.\n"
    "\n"
    "Examples:\n"
    "  replay --verify                          audit the whole local log\n"
    "  replay --dump --from 1200 --limit 10     ten events from position 1200\n"
    "  replay --dump --from 2026-11-25T08:00:00Z --type order.placed\n"
    "  replay --projection pg --rebuild --db 'host=var/pg/run dbname=watchstore user=postgres'\n"
    "  replay --projection pg --from 2026-11-25T08:00:00Z     after a projection fix\n"
    "  replay --projection all --rebuild                       both, e.g. after an upgrade\n"
    "\n"
    "Exit status: 0 sound, 1 damaged log, 2 usage or I/O error.\n";

typedef struct opts {
    const char *log_uri;
    int verify, dump, catalogue, quiet, rebuild;
    const char *projection, *db, *cache, *key_file;
    const char *from;
    uint64_t limit;
    const char *type;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- progress ---- */

typedef struct progress {
    const char *what;
    int tty, quiet;
    double start, last;
    uint64_t from, end;
} progress;

static void progress_show(progress *p, uint64_t done, uint64_t pos, int final)
{
    double t = now_s();
    if (p->quiet || (!final && t - p->last < (p->tty ? 0.2 : 5.0)))
        return;
    p->last = t;
    double el = t - p->start, rate = el > 0 ? done / el : 0;
    uint64_t left = p->end > pos ? p->end - pos : 0;
    char eta[32] = "-";
    if (rate > 0 && !final)
        snprintf(eta, sizeof eta, "%.1fs", left / rate);
    fprintf(stderr, "%s%s %llu events  %.0f events/s  position %llu/%llu  ETA %s%s",
            p->tty ? "\r\033[K" : "", p->what, (unsigned long long)done, rate,
            (unsigned long long)pos, (unsigned long long)p->end, eta,
            p->tty && !final ? "" : "\n");
    fflush(stderr);
}

/* ---- --verify ---- */

static int on_audit(void *ud, const audit_result *r)
{
    progress_show(ud, r->records, r->next, 0);
    return 0;
}

static int take_hash(void *ud, const log_rec *r)
{
    const uint8_t *h = ev_rec_hash(r->data, r->len);
    if (h)
        memcpy(ud, h, 32);
    return 1;
}

static int do_verify(log_t *log, const opts *o, progress *pg)
{
    uint8_t prev[32] = {0};
    uint64_t from = o->from ? strtoull(o->from, NULL, 10) : 0;
    if (from) {
        /* Links are checked from `from` on, starting from the hash of the
         * record before it (itself checked only by a full --verify). */
        uint64_t next;
        if (log_scan(log, from - 1, 1, take_hash, prev, &next) < 0) {
            fprintf(stderr, "replay: %s\n", log_errmsg(log));
            return 2;
        }
    }
    audit_result r;
    int rc = audit_chain(log, from, prev, &r, on_audit, pg, 10000);
    progress_show(pg, r.records, r.next, 1);
    if (rc && r.err >= EV_ETRAILING && r.err < 0) {
        printf("DAMAGED at position %llu: %s (%llu events before it are sound)\n",
               (unsigned long long)r.bad_pos, ev_strerror(r.err),
               (unsigned long long)r.records);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "replay: %s\n", log_errmsg(log));
        return 2;
    }
    printf("OK: %llu events verified, chain intact", (unsigned long long)r.records);
    if (r.unknown)
        printf(" (%llu of types this build does not know, skipped)",
               (unsigned long long)r.unknown);
    printf("\n");
    return 0;
}

/* ---- --dump ---- */

typedef struct dump_ctx {
    ev_dec *dec;
    ev_buf line;
    const opts *o;
    uint64_t from_us; /* 0: by position */
    uint64_t printed, seen;
    progress *pg;
    int err;
} dump_ctx;

static int on_record(void *ud, const log_rec *r)
{
    dump_ctx *d = ud;
    ev_event ev;
    int rc = ev_decode(d->dec, r->data, r->len, r->pos, &ev);
    d->seen++;
    if (rc) {
        fprintf(stderr, "replay: position %llu: %s\n", (unsigned long long)r->pos,
                ev_strerror(rc));
        d->err = 1;
        return 1;
    }
    progress_show(d->pg, d->seen, r->pos, 0);
    if (d->from_us && ev.env.recorded_us < d->from_us)
        return 0;
    if (d->o->type && !ev_str_eq(ev.env.type_name, ev_str_c(d->o->type)))
        return 0;
    d->line.len = 0;
    if (ev_format_json(&ev, &d->line) || ev_buf_reserve(&d->line, 1))
        return d->err = 2;
    d->line.p[d->line.len++] = '\n';
    fwrite(d->line.p, 1, d->line.len, stdout);
    return ++d->printed == d->o->limit;
}

static int parse_time(const char *s, uint64_t *us)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    double frac = 0;
    if (*rest == '.') {
        char *e;
        frac = strtod(rest, &e);
        rest = e;
    }
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    time_t t = timegm(&tm);
    *us = (uint64_t)t * 1000000ull + (uint64_t)(frac * 1e6);
    return 0;
}

static int do_dump(log_t *log, const opts *o, progress *pg)
{
    dump_ctx d = {ev_dec_new(), {0}, o, 0, 0, 0, pg, 0};
    uint64_t from = 0;
    if (o->from) {
        char *end;
        errno = 0;
        from = strtoull(o->from, &end, 10);
        if (*end || errno) {
            from = 0;
            if (parse_time(o->from, &d.from_us) != 0) {
                fprintf(stderr, "replay: --from '%s' is neither a position nor an "
                                "RFC 3339 UTC time\n", o->from);
                return 2;
            }
        }
    }
    uint64_t next;
    int rc = log_scan(log, from, 0, on_record, &d, &next);
    progress_show(pg, d.seen, next, 1);
    ev_dec_free(d.dec);
    ev_buf_free(&d.line);
    if (rc < 0) {
        fprintf(stderr, "replay: %s\n", log_errmsg(log));
        return 2;
    }
    return d.err;
}

/* ---- --projection ---- */

static int on_rebuild(void *ud, const proj_stats *st, uint64_t end)
{
    progress *pg = ud;
    pg->end = end;
    progress_show(pg, st->applied + st->skipped, st->next_pos, 0);
    return 0;
}

/* --from as a log position: a number, or the first event at or after a
 * time. */
static int from_position(log_t *log, const char *from, uint64_t *pos)
{
    char *end, err[512];
    errno = 0;
    *pos = strtoull(from, &end, 10);
    if (!*end && !errno && *from >= '0' && *from <= '9')
        return 0;
    uint64_t us;
    if (parse_time(from, &us) != 0) {
        fprintf(stderr, "replay: --from '%s' is neither a position nor an RFC 3339 UTC time\n",
                from);
        return -1;
    }
    if (proj_pos_at_time(log, us, pos, err, sizeof err) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        return -1;
    }
    return 0;
}

static void report(const char *what, const proj_stats *st)
{
    printf("OK: %s from %llu events", what, (unsigned long long)(st->applied + st->skipped));
    if (st->skipped)
        printf(" (%llu of unknown types skipped)", (unsigned long long)st->skipped);
    printf("\n");
}

/* The whole log into a shadow schema, swapped in. */
static int pg_rebuild(log_t *log, const opts *o, progress *pg)
{
    proj_stats st;
    char err[1024];
    pg->what = "pg: projected";
    if (proj_pg_rebuild(log, o->db, 10000, on_rebuild, pg, &st, err, sizeof err) != 0) {
        progress_show(pg, st.applied + st.skipped, st.next_pos, 1);
        fprintf(stderr, "replay: rebuild failed, the live read models are unchanged: %s\n", err);
        return 1;
    }
    progress_show(pg, st.applied + st.skipped, st.next_pos, 1);
    report("PostgreSQL read models rebuilt and swapped in", &st);
    return 0;
}

/* Rewinds the live read models to `from` and projects from there. */
static int pg_from(log_t *log, const opts *o, uint64_t from, progress *pg)
{
    char err[1024];
    proj_stats st = {0};
    if (proj_pg_rewind(o->db, "public", from, err, sizeof err) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        return 1;
    }
    proj_pg *p = proj_pg_open(o->db, "public", err, sizeof err);
    if (!p) {
        fprintf(stderr, "replay: %s (the live projector carries on from position %llu)\n", err,
                (unsigned long long)from);
        return 1;
    }
    proj_sink sink = proj_pg_sink(p);
    pg->what = "pg: re-projected";
    int rc = proj_fill(log, &sink, 10000, on_rebuild, pg, &st, err, sizeof err);
    progress_show(pg, st.applied + st.skipped, st.next_pos, 1);
    proj_pg_close(p);
    if (rc) {
        fprintf(stderr, "replay: %s (the live projector carries on from where this stopped)\n",
                err);
        return 1;
    }
    report("PostgreSQL read models re-projected", &st);
    return 0;
}

static int cache_rebuild(log_t *log, const opts *o, progress *pg)
{
    uint8_t key[32];
    char err[1024];
    proj_stats st = {0};
    if (secret_read_hex(o->key_file, "e-mail key", key, 32, err, sizeof err) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        return 2;
    }
    pg->start = now_s();
    pg->what = "cache: projected";
    int rc = proj_cache_rebuild(log, o->cache, key, 50000, on_rebuild, pg, &st, err, sizeof err);
    progress_show(pg, st.applied + st.skipped, st.next_pos, 1);
    if (rc) {
        fprintf(stderr, "replay: cache rebuild failed, the live cache is unchanged: %s\n", err);
        return 1;
    }
    if (err[0])
        fprintf(stderr, "replay: warning: %s\n", err);
    report("cache rebuilt and swapped in", &st);
    return 0;
}

static int do_projection(log_t *log, const opts *o, progress *pg)
{
    int want_pg = !strcmp(o->projection, "pg") || !strcmp(o->projection, "all");
    int want_cache = !strcmp(o->projection, "cache") || !strcmp(o->projection, "all");
    if (!want_pg && !want_cache) {
        fprintf(stderr, "replay: --projection is pg, cache or all, not '%s'\n", o->projection);
        return 2;
    }
    if (!o->rebuild && !o->from) {
        fprintf(stderr, "replay: --projection needs --rebuild or --from POS|TIME\n");
        return 2;
    }
    if (want_pg && !o->db) {
        fprintf(stderr, "replay: no database: give --db or set WATCHSTORE_DB\n");
        return 2;
    }
    uint64_t from = 0;
    if (!o->rebuild && from_position(log, o->from, &from) != 0)
        return 2;
    uint64_t end = 0;
    log_end(log, &end);
    if (from > end) {
        fprintf(stderr, "replay: position %llu is past the log's end (%llu)\n",
                (unsigned long long)from, (unsigned long long)end);
        return 2;
    }
    int rc = 0;
    if (want_pg)
        rc = from ? pg_from(log, o, from, pg) : pg_rebuild(log, o, pg);
    if (want_cache && rc == 0)
        rc = cache_rebuild(log, o, pg);
    return rc;
}

static void do_catalogue(void)
{
    for (int t = 1; t < EV_T_COUNT; t++) {
        printf("%s v%u\n", ev_type_name((ev_type)t), ev_type_version((ev_type)t));
        ev_field_info fi;
        for (size_t i = 0; ev_describe((ev_type)t, i, &fi); i++) {
            printf("  %-20s %-5s", fi.name, fi.kind);
            if (fi.max)
                printf(" max %u", fi.max);
            for (int v = 0; fi.enum_set >= 0 && ev_enum_name(fi.enum_set, v); v++)
                printf("%s%s", v ? "," : " one of ", ev_enum_name(fi.enum_set, v));
            if (fi.personal)
                printf(" (personal)");
            printf("\n");
        }
    }
}

int main(int argc, char **argv)
{
    opts o = {0};
    o.log_uri = getenv("WATCHSTORE_LOG") ? getenv("WATCHSTORE_LOG") : "lmdb:var/log";
    static const struct option lo[] = {
        {"log", required_argument, 0, 'l'},  {"verify", no_argument, 0, 'v'},
        {"dump", no_argument, 0, 'd'},       {"catalogue", no_argument, 0, 'c'},
        {"from", required_argument, 0, 'f'}, {"limit", required_argument, 0, 'n'},
        {"type", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"projection", required_argument, 0, 'p'}, {"rebuild", no_argument, 0, 'r'},
        {"db", required_argument, 0, 'D'},   {"cache", required_argument, 0, 'C'},
        {"email-key-file", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'l': o.log_uri = optarg; break;
        case 'v': o.verify = 1; break;
        case 'd': o.dump = 1; break;
        case 'c': o.catalogue = 1; break;
        case 'f': o.from = optarg; break;
        case 'n': o.limit = strtoull(optarg, NULL, 10); break;
        case 't': o.type = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'p': o.projection = optarg; break;
        case 'r': o.rebuild = 1; break;
        case 'D': o.db = optarg; break;
        case 'C': o.cache = optarg; break;
        case 'k': o.key_file = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!o.db)
        o.db = getenv("WATCHSTORE_DB");
    if (!o.cache)
        o.cache = getenv("WATCHSTORE_CACHE") ? getenv("WATCHSTORE_CACHE") : "var/cache";
    if (!o.key_file)
        o.key_file = getenv("WATCHSTORE_EMAIL_KEY_FILE") ? getenv("WATCHSTORE_EMAIL_KEY_FILE")
                                                         : "var/secrets/email.key";
    if (optind < argc || o.verify + o.dump + o.catalogue + (o.projection != NULL) != 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (o.catalogue) {
        do_catalogue();
        return 0;
    }
    log_t *log;
    char err[512];
    if (log_open(o.log_uri, LOG_READ, &log, err, sizeof err) != 0) {
        fprintf(stderr, "replay: %s\n", err);
        return 2;
    }
    /* Dumping to a terminal: the events are the display. */
    int quiet = o.quiet || (o.dump && isatty(1));
    double t0 = now_s();
    progress pg = {o.verify ? "verified" : o.projection ? "projected" : "read", isatty(2), quiet,
                   t0, t0, 0, 0};
    log_end(log, &pg.end);
    int rc = o.verify ? do_verify(log, &o, &pg)
             : o.dump ? do_dump(log, &o, &pg)
                      : do_projection(log, &o, &pg);
    log_close(log);
    return rc;
}
