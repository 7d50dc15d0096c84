/* bench_proj.c - how fast the projections go on this machine: the
 * PostgreSQL read models, the LMDB cache, and the cache's lag behind the log.
 *
 *   build/ops/bench/bench_proj [--only pg,cache,lag] [--dir DIR] [--runs N]
 *       [--events N] [--quick] [--batches B1,B2,...] [--cache-batch N]
 *       [--lag-rate N] [--lag-seconds S] [--projector PATH]
 *
 * Figures (see ops/bench/README.md for what each one means):
 *   1. the log (pg, cache): --events events made through the real writer
 *      (wr_process): a 500-watch catalogue, then guest orders (1-3 lines),
 *      order status changes (some cancellations) and restocks
 *   2. (pg) full rebuild: a fresh database, proj_pg_open + proj_catch_up over
 *      the whole log, with batches of 5,000 (the projector's default), 1,000
 *      and 20,000 events
 *   3. (pg) the machine's limit: the final rows of every read-model table,
 *      COPYed back into a fresh migrated database in one transaction
 *   4. (cache) cache rebuild: proj_cache_open_writer on a fresh directory +
 *      proj_catch_up over the whole log with a large batch (what the
 *      projector does on an empty cache); every run must give the same
 *      proj_cache_digest. 4b: the same log through proj_cache_rebuild (a
 *      generation built beside the live one, synced once, swapped in)
 *   5. (cache) the machine's limit: a raw scan of the log (log_scan +
 *      ev_decode) and the rebuild's own LMDB writes replayed into a fresh
 *      environment (recorded through link-time wrappers of mdb_put, mdb_del
 *      and mdb_txn_commit, see CMakeLists.txt)
 *   6. (lag) append to cache visibility: this process appends the command mix
 *      through wr_process paced at --lag-rate events/s, the real projector
 *      process (--projection cache) follows the log, a reader thread here
 *      times each append from its commit to proj_cache_wait returning
 *
 * Everything lives in a fresh directory (under $TMPDIR, else /var/tmp, or
 * under --dir), removed at the end, on an error and on Ctrl-C/SIGTERM, as
 * are the PostgreSQL cluster (ops/pg.sh) and the projector process. Progress
 * goes to stderr, figures to stdout.
 */
#define _GNU_SOURCE
#include "measure.h"
#include "core/event.h"
#include "core/log.h"
#include "core/writer.h"
#include "projections/migrate.h"
#include "projections/cache_gen.h"
#include "projections/cache_rebuild.h"
#include "projections/proj.h"
#include "projections/proj_cache.h"
#include "projections/proj_pg.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WS_SOURCE_DIR
#error "WS_SOURCE_DIR (the source tree, for ops/pg.sh) is set by ops/bench/CMakeLists.txt"
#endif
#ifndef WS_PROJECTOR_BIN
#error "WS_PROJECTOR_BIN (the projector built beside the bench) is set by ops/bench/CMakeLists.txt"
#endif

/* ------------------------------------------------------------- settings */

#define MAX_BATCHES 8

enum { PART_PG = 1, PART_CACHE = 2, PART_LAG = 4 };

typedef struct cfg {
    char parent[2048]; /* where the fresh bench directory is made */
    int runs;
    bool quick;
    unsigned parts;    /* PART_*: what to run */
    uint64_t events;   /* log size (figures 1-5) */
    size_t batches[MAX_BATCHES]; /* the first one is the one with targets */
    int n_batches;
    size_t cache_batch;   /* figure 4 */
    long lag_rate;        /* figure 6: events/s */
    double lag_secs;      /* figure 6: seconds per run */
    char projector[4096]; /* figure 6 */
} cfg;

static char g_root[4096];  /* the fresh bench directory */
static char g_pgdir[4200]; /* the cluster's folder, inside g_root */
static char g_pgsh[4200];  /* ops/pg.sh */
static volatile pid_t g_pm_pid; /* the postmaster, while it runs */
static volatile pid_t g_proj_pid; /* figure 6's projector, while it runs */
static char g_conninfo[8192];   /* as printed by pg.sh */

/* ----------------------------------------------------------------- utils */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "bench_proj: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void rmtree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static bool alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

/* Waits up to `secs` for a process that is not our child to go. */
static bool wait_gone(pid_t pid, double secs)
{
    struct timespec ts = {0, 50 * 1000000L};
    for (int i = 0; i < (int)(secs * 20) && alive(pid); i++)
        nanosleep(&ts, NULL);
    return !alive(pid);
}

/* Runs `bash ops/pg.sh VERB <cluster folder>`; its standard output goes into
 * out (when given). Returns its exit status. */
static int pgsh(const char *verb, char *out, size_t cap)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execl("/bin/bash", "bash", g_pgsh, verb, g_pgdir, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    char tmp[512];
    for (;;) {
        ssize_t n = read(fd[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && out && len + 1 < cap; i++)
            out[len++] = tmp[i];
    }
    close(fd[0]);
    if (out && cap)
        out[len] = 0;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Fast shutdown through pg.sh; an immediate one if the server is still
 * there after that. */
static void cluster_stop(void)
{
    pid_t pm = g_pm_pid;
    if (!pm)
        return;
    pgsh("stop", NULL, 0);
    if (!wait_gone(pm, 10)) {
        kill(pm, SIGQUIT);
        wait_gone(pm, 10);
    }
    g_pm_pid = 0;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_proj: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_proj_pid > 0) {
        kill(g_proj_pid, SIGKILL);
        waitpid(g_proj_pid, NULL, 0);
    }
    cluster_stop();
    if (g_root[0])
        rmtree(g_root); /* leave nothing behind */
    exit(1);
}

/* Ctrl-C or kill: SIGKILL to figure 6's projector, an immediate shutdown of
 * the cluster (SIGQUIT to the postmaster), then remove the bench directory (not strictly
 * async-signal-safe, but the process is about to die anyway). */
static void on_signal(int sig)
{
    if (g_proj_pid > 0)
        kill(g_proj_pid, SIGKILL);
    pid_t pm = g_pm_pid;
    if (pm > 0) {
        kill(pm, SIGQUIT);
        wait_gone(pm, 10);
    }
    if (g_root[0])
        rmtree(g_root);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A growable array of doubles (per-run figures). */
typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static void dv_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = realloc(d->v, d->cap * sizeof *d->v);
        if (!d->v)
            die("out of memory");
    }
    d->v[d->n++] = x;
}

/* median/min/max of a figure's runs */
typedef struct stat3 {
    double med, min, max;
} stat3;

static stat3 st3(const dvec *runs)
{
    stat3 s = {0, 0, 0};
    if (!runs->n)
        return s;
    double *c = malloc(runs->n * sizeof *c);
    if (!c)
        die("out of memory");
    memcpy(c, runs->v, runs->n * sizeof *c);
    qsort(c, runs->n, sizeof *c, bm_cmp_d);
    size_t n = runs->n;
    s.med = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    s.min = c[0];
    s.max = c[n - 1];
    free(c);
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

/* A figure that is not a rate: seconds, shares, megabytes. */
static void print_num(const char *label, const dvec *runs, const char *fmt, const char *unit)
{
    stat3 s = st3(runs);
    char a[32], b[32], c[32];
    snprintf(a, sizeof a, fmt, s.med);
    snprintf(b, sizeof b, fmt, s.min);
    snprintf(c, sizeof c, fmt, s.max);
    printf("  %-34s %10s %-9s (min %s, max %s)\n", label, a, unit, b, c);
}

/* ------------------------------------------------------------ PostgreSQL */

static PGconn *pg_connect(const char *dbname)
{
    char ci[8400];
    /* In a conninfo string the last setting of a keyword wins. */
    snprintf(ci, sizeof ci, "%s dbname=%s", g_conninfo, dbname);
    PGconn *db = PQconnectdb(ci);
    if (PQstatus(db) != CONNECTION_OK)
        die("cannot connect to %s: %s", dbname, PQerrorMessage(db));
    PQclear(PQexec(db, "SET client_min_messages TO warning"));
    return db;
}

static void pg_exec(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* The first value of a query's first row, into buf. */
static const char *pg_val(PGconn *db, const char *sql, char *buf, size_t cap)
{
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQresultErrorMessage(r));
    snprintf(buf, cap, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return buf;
}

static void create_db(PGconn *admin, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_exec(admin, sql);
}

static void drop_db(PGconn *admin, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_exec(admin, sql);
}

/* The postmaster's pid, from the first line of data/postmaster.pid. */
static pid_t read_pm_pid(void)
{
    char path[4300], line[64] = "";
    snprintf(path, sizeof path, "%s/data/postmaster.pid", g_pgdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    return (pid_t)atol(line);
}

static void cluster_start(void)
{
    char out[8192];
    int rc = pgsh("start", out, sizeof out);
    g_pm_pid = read_pm_pid(); /* also after a failure: stop what started */
    if (rc != 0)
        die("ops/pg.sh start %s failed (exit %d)", g_pgdir, rc);
    /* The conninfo is pg.sh's last line of output. */
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = 0;
    char *last = strrchr(out, '\n');
    snprintf(g_conninfo, sizeof g_conninfo, "%s", last ? last + 1 : out);
    if (!strstr(g_conninfo, "host="))
        die("ops/pg.sh printed no conninfo: %s", out);
    if (!g_pm_pid)
        die("no postmaster.pid in %s/data", g_pgdir);
}

/* ------------------------------------------------- where the time goes */

/* CPU ticks of the cluster's processes (the postmaster and its children). */
#define MAX_PROCS 512

typedef struct psnap {
    int n;
    pid_t pid[MAX_PROCS];
    uint64_t ticks[MAX_PROCS];
} psnap;

static void snap_take(psnap *s)
{
    s->n = 0;
    pid_t pm = g_pm_pid;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && s->n < MAX_PROCS) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (!p)
            continue;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime stime */
        char state;
        long ppid;
        unsigned long skip[7], ut, st;
        if (sscanf(p + 1, " %c %ld %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", &state,
                   &ppid, &skip[0], &skip[1], &skip[2], &skip[3], &skip[4], &skip[5],
                   &skip[6], &skip[0], &skip[0], &ut, &st) != 13)
            continue;
        pid_t pid = (pid_t)atol(e->d_name);
        if (pid != pm && ppid != pm)
            continue;
        s->pid[s->n] = pid;
        s->ticks[s->n] = ut + st;
        s->n++;
    }
    closedir(d);
}

/* Does the process's title (a backend: "postgres: user db [local] ...")
 * name the database? */
static bool serves_db(pid_t pid, const char *db)
{
    char path[64], buf[512], pat[128];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    snprintf(pat, sizeof pat, " %s ", db);
    return strstr(buf, pat) != NULL;
}

/* One timed phase: wall time, this thread's CPU, the CPU of the database's
 * backend and of the cluster's other processes (WAL writer, checkpointer,
 * autovacuum...), and the WAL it wrote. */
typedef struct phase {
    double t0, c0;
    psnap s0;
    char lsn0[64];
    const char *db;
    /* results */
    double wall, client_cpu, backend_cpu, other_cpu, wal_mb;
} phase;

static void phase_begin(phase *ph, PGconn *admin, const char *db)
{
    memset(ph, 0, sizeof *ph);
    /* Every measurement starts with no dirty buffers left by the one
     * before, and no checkpoint under way. */
    pg_exec(admin, "CHECKPOINT");
    pg_val(admin, "SELECT pg_current_wal_lsn()", ph->lsn0, sizeof ph->lsn0);
    ph->db = db;
    snap_take(&ph->s0);
    ph->c0 = bm_cpu_s();
    ph->t0 = bm_now_s();
}

static void phase_end(phase *ph, PGconn *admin)
{
    ph->wall = bm_now_s() - ph->t0;
    ph->client_cpu = bm_cpu_s() - ph->c0;
    psnap *s1 = malloc(sizeof *s1);
    if (!s1)
        die("out of memory");
    snap_take(s1);
    double hz = (double)sysconf(_SC_CLK_TCK);
    for (int i = 0; i < s1->n; i++) {
        uint64_t before = 0;
        for (int k = 0; k < ph->s0.n; k++)
            if (ph->s0.pid[k] == s1->pid[i])
                before = ph->s0.ticks[k];
        double d = (double)(s1->ticks[i] - before) / hz;
        if (serves_db(s1->pid[i], ph->db))
            ph->backend_cpu += d;
        else
            ph->other_cpu += d;
    }
    free(s1);
    char sql[160], v[64];
    snprintf(sql, sizeof sql, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '%s')::bigint",
             ph->lsn0);
    ph->wal_mb = atof(pg_val(admin, sql, v, sizeof v)) / 1e6;
}

/* --------------------------------------------------------- the catalogue */

#define N_WATCHES 500

static uint8_t g_watch_id[N_WATCHES][16];
static char g_watch_name[N_WATCHES][40];
static char g_watch_model[N_WATCHES][16];

static const char *const BRANDS[] = {"Seiko", "Citizen", "Tissot", "Hamilton", "Longines",
                                     "Oris", "Orient", "Sinn"};
static const char *const CATEGORIES[] = {"automatic", "chronograph", "diver",
                                         "sport", "classic", "luxury"};

/* The e-mail index key of the writer and of every cache (the projector of
 * figure 6 reads it from a file). */
static uint8_t g_email_key[32];

static int64_t watch_price(int i) { return 12900 + 1379 * (int64_t)(i % 97); }

static void init_catalogue(void)
{
    for (int i = 0; i < 32; i++)
        g_email_key[i] = (uint8_t)(i * 7 + 1);
    uint64_t seed = 0x5DEECE66Dull;
    for (int i = 0; i < N_WATCHES; i++) {
        /* UUIDv7 as the API makes them: creation time (one watch a minute
         * from a fixed date), then random bits from a fixed seed. */
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
        snprintf(g_watch_name[i], sizeof g_watch_name[i], "%s Field %03d",
                 BRANDS[i % 8], i);
        snprintf(g_watch_model[i], sizeof g_watch_model[i], "FL-%04d", 1000 + i);
    }
}

/* ------------------------------------------------------------- 1. the log */

/* The mix of commands, in percent: the rest of 100 are restocks. */
#define PCT_ORDERS 70
#define PCT_STATUS 20
/* Of the status changes of a pending or processing order: cancellations. */
#define PCT_CANCEL 8
/* A status change picks one of the oldest WINDOW open orders. */
#define WINDOW 2000

static const uint64_t T0_US = 1767603600000000ull; /* 2026-01-05 09:00 UTC */
#define US_PER_CMD 25000u /* 40 commands a second */

static const char GUEST_TOKEN_HASH[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

typedef struct open_order {
    uint32_t id;
    uint8_t status;
} open_order;

enum { C_ORDER, C_STATUS, C_CANCEL, C_RESTOCK, C_KINDS };

typedef struct gen_res {
    uint64_t events, cmds, by_cmd[C_KINDS];
    uint64_t by_type[EV_T_COUNT], by_reason[EV_stock_reason_COUNT];
    uint64_t orders, delivered;
    double secs, avg_rec;
} gen_res;

static wr_writer *open_writer(const char *dir)
{
    char uri[4300], err[512];
    wr_config wc;
    memset(&wc, 0, sizeof wc);
    snprintf(uri, sizeof uri, "lmdb:%s", dir);
    wc.log_uri = uri;
    memcpy(wc.email_key, g_email_key, 32);
    wr_writer *w;
    if (wr_open(&wc, &w, err, sizeof err) != 0)
        die("wr_open: %s", err);
    return w;
}

static void count_events(gen_res *g, const dec_out *o)
{
    for (size_t k = 0; k < o->n_ev; k++) {
        const ev_event *e = &o->ev[k];
        g->by_type[e->env.type]++;
        if (e->env.type == EV_T_STOCK_ADJUSTED &&
            e->u.stock_adjusted.reason < EV_stock_reason_COUNT)
            g->by_reason[e->u.stock_adjusted.reason]++;
    }
    g->events += o->n_ev;
}

static void add_catalogue(wr_writer *w, gen_res *g)
{
    wr_req *reqs = calloc(N_WATCHES, sizeof *reqs);
    wr_req **pp = malloc(N_WATCHES * sizeof *pp);
    if (!reqs || !pp)
        die("out of memory");
    for (int i = 0; i < N_WATCHES; i++) {
        dec_cmd *c = &reqs[i].cmd;
        c->kind = DEC_WATCH_ADD;
        c->now_us = T0_US - 3600000000ull + (uint64_t)i * 1000000u;
        c->correlation = EV_STR("catalogue-import");
        c->actor = EV_STR("system");
        c->actor_system = true;
        dec_watch_fields *f = &c->u.watch;
        memcpy(f->watch_id, g_watch_id[i], 16);
        f->changed = EV_WF_ALL;
        f->watch_name = ev_str_c(g_watch_name[i]);
        f->brand = ev_str_c(BRANDS[i % 8]);
        f->model_code = ev_str_c(g_watch_model[i]);
        f->description = EV_STR("Stainless steel case, sapphire crystal, 100 m water "
                                "resistance, automatic movement with 40 h reserve.");
        f->image_url = EV_STR("https://cdn.example.com/watches/field.jpg");
        f->price = watch_price(i);
        f->currency = EV_STR("EUR");
        f->category = ev_str_c(CATEGORIES[i % 6]);
        f->set_stock = true;
        f->stock = 1000000;
        pp[i] = &reqs[i];
    }
    if (wr_process(w, pp, N_WATCHES) != 0)
        die("adding the catalogue failed: %s", log_errmsg(wr_log(w)));
    for (int i = 0; i < N_WATCHES; i++) {
        if (reqs[i].err || reqs[i].out.reason != DEC_OK)
            die("watch %d refused: %s (%s)", i, dec_reason_code(reqs[i].out.reason),
                reqs[i].out.message ? reqs[i].out.message : "");
        count_events(g, &reqs[i].out);
    }
    free(pp);
    free(reqs);
}

/* The command generator: the mix above, one command at a time, shared by
 * the log of figures 1-5 and the paced writer of figure 6. */
typedef struct cmdgen {
    uint64_t seed, t_us;
    open_order *open; /* open orders: open[head..tail), oldest first */
    size_t head, tail, cap;
    dec_line_in (*lines)[3]; /* per request slot */
    uint8_t *kind;           /* per request slot: C_* */
    gen_res *g;
} cmdgen;

enum { GEN_BATCH = 1000 }; /* commands per wr_process */

static void cg_init(cmdgen *cg, gen_res *g)
{
    memset(cg, 0, sizeof *cg);
    cg->seed = 0x9E3779B97F4A7C15ull;
    cg->t_us = T0_US;
    cg->g = g;
    cg->lines = calloc(GEN_BATCH, sizeof *cg->lines);
    cg->kind = malloc(GEN_BATCH);
    if (!cg->lines || !cg->kind)
        die("out of memory");
}

static void cg_free(cmdgen *cg)
{
    free(cg->open);
    free(cg->lines);
    free(cg->kind);
}

static void cg_order(cmdgen *cg, size_t i, dec_cmd *c)
{
    cg->kind[i] = C_ORDER;
    c->kind = DEC_ORDER_PLACE;
    c->correlation = EV_STR("req-web");
    c->actor = EV_STR("guest");
    uint32_t k = 1 + (uint32_t)(bm_rnd(&cg->seed) % 3);
    for (uint32_t l = 0; l < k; l++) {
        uint64_t y = bm_rnd(&cg->seed);
        int wi = (int)(y % N_WATCHES);
        memcpy(cg->lines[i][l].watch_id, g_watch_id[wi], 16);
        cg->lines[i][l].quantity = 1 + (int64_t)((y >> 32) % 2);
        cg->lines[i][l].unit_price = watch_price(wi);
        cg->lines[i][l].has_price = true;
    }
    c->u.order.lines = cg->lines[i];
    c->u.order.n_lines = k;
    c->u.order.shipping_address = EV_STR("Jane Doe, 12 Rue de la Paix, 75002 Paris, FR");
    c->u.order.guest_token_hash = EV_STR(GUEST_TOKEN_HASH);
}

/* One step of one of the oldest open orders, or its cancellation. */
static void cg_status(cmdgen *cg, size_t i, dec_cmd *c)
{
    size_t span = cg->tail - cg->head < WINDOW ? cg->tail - cg->head : WINDOW;
    size_t j = cg->head + (size_t)(bm_rnd(&cg->seed) % span);
    open_order *o = &cg->open[j];
    c->correlation = EV_STR("req-backoffice");
    c->actor = EV_STR("system");
    c->actor_system = true;
    c->u.status.order_id = o->id;
    bool done = false;
    if (o->status != EV_order_status_SHIPPED && bm_rnd(&cg->seed) % 100 < PCT_CANCEL) {
        cg->kind[i] = C_CANCEL;
        c->kind = DEC_ORDER_CANCEL;
        c->u.status.reason = EV_STR("customer asked");
        done = true;
    } else {
        cg->kind[i] = C_STATUS;
        c->kind = DEC_ORDER_SET_STATUS;
        o->status = o->status == EV_order_status_PENDING      ? EV_order_status_PROCESSING
                    : o->status == EV_order_status_PROCESSING ? EV_order_status_SHIPPED
                                                              : EV_order_status_DELIVERED;
        c->u.status.status = o->status;
        if (o->status == EV_order_status_DELIVERED) {
            done = true;
            cg->g->delivered++;
        }
    }
    if (done) /* out of the open orders: the oldest takes its place */
        cg->open[j] = cg->open[cg->head++];
}

static void cg_restock(cmdgen *cg, size_t i, dec_cmd *c)
{
    cg->kind[i] = C_RESTOCK;
    c->kind = DEC_STOCK_ADJUST;
    c->correlation = EV_STR("req-backoffice");
    c->actor = EV_STR("system");
    c->actor_system = true;
    uint64_t y = bm_rnd(&cg->seed);
    memcpy(c->u.stock.watch_id, g_watch_id[y % N_WATCHES], 16);
    c->u.stock.quantity = 10 + (int64_t)((y >> 32) % 41);
    c->u.stock.reason = EV_stock_reason_RESTOCK;
}

/* Fills request slot i (< GEN_BATCH) with the next command. Returns the
 * events it will make, about (a cancellation's stock lines are unknown). */
static unsigned cg_fill(cmdgen *cg, size_t i, wr_req *r)
{
    memset(&r->cmd, 0, sizeof r->cmd);
    dec_cmd *c = &r->cmd;
    c->now_us = (cg->t_us += US_PER_CMD);
    uint64_t x = bm_rnd(&cg->seed) % 100;
    if (x < PCT_ORDERS || cg->head == cg->tail) {
        cg_order(cg, i, c);
        return 1 + (unsigned)c->u.order.n_lines;
    }
    if (x < PCT_ORDERS + PCT_STATUS) {
        cg_status(cg, i, c);
        return cg->kind[i] == C_CANCEL ? 3 : 1;
    }
    cg_restock(cg, i, c);
    return 1;
}

/* After wr_process: every command must have been accepted; counts the
 * events and adds the new orders to the open ones. */
static void cg_done(cmdgen *cg, wr_req *reqs, size_t n)
{
    gen_res *g = cg->g;
    for (size_t i = 0; i < n; i++) {
        wr_req *r = &reqs[i];
        if (r->err || r->out.reason != DEC_OK || !r->out.n_ev)
            die("command %llu (kind %d) refused: %s (%s)", (unsigned long long)(g->cmds + i),
                (int)r->cmd.kind, dec_reason_code(r->out.reason),
                r->out.message ? r->out.message : "");
        count_events(g, &r->out);
        g->by_cmd[cg->kind[i]]++;
        if (cg->kind[i] != C_ORDER)
            continue;
        if (cg->tail == cg->cap) {
            cg->cap = cg->cap ? cg->cap * 2 : 4096;
            cg->open = realloc(cg->open, cg->cap * sizeof *cg->open);
            if (!cg->open)
                die("out of memory");
        }
        cg->open[cg->tail++] = (open_order){(uint32_t)r->out.id, EV_order_status_PENDING};
        g->orders++;
    }
    g->cmds += n;
}

/* Makes the log: the catalogue, then commands 1,000 per wr_process (one
 * durable append each) until `target` events. */
static void gen_log(const char *dir, uint64_t target, gen_res *g)
{
    memset(g, 0, sizeof *g);
    wr_writer *w = open_writer(dir);
    double t0 = bm_now_s(), shown = t0;
    add_catalogue(w, g);
    wr_req *reqs = calloc(GEN_BATCH, sizeof *reqs);
    wr_req **pp = malloc(GEN_BATCH * sizeof *pp);
    if (!reqs || !pp)
        die("out of memory");
    for (int i = 0; i < GEN_BATCH; i++)
        pp[i] = &reqs[i];
    cmdgen cg;
    cg_init(&cg, g);
    while (g->events < target) {
        /* Near the end, small batches: at most 4 events per command. */
        uint64_t left = (target - g->events) / 4;
        size_t n = left >= GEN_BATCH ? GEN_BATCH : left ? (size_t)left : 1;
        for (size_t i = 0; i < n; i++)
            cg_fill(&cg, i, &reqs[i]);
        if (wr_process(w, pp, n) != 0)
            die("wr_process: %s", log_errmsg(wr_log(w)));
        cg_done(&cg, reqs, n);
        if (bm_now_s() - shown > 2) {
            shown = bm_now_s();
            bm_progress("made %llu of %llu events", (unsigned long long)g->events,
                        (unsigned long long)target);
        }
    }
    g->secs = bm_now_s() - t0;
    uint64_t acc[2] = {0, 0}, next;
    if (log_scan(wr_log(w), 0, 0, bm_count_bytes, acc, &next) != 0 || acc[0] != g->events)
        die("the log holds %llu records, the writer made %llu events",
            (unsigned long long)acc[0], (unsigned long long)g->events);
    g->avg_rec = (double)acc[1] / (double)acc[0];
    cg_free(&cg);
    free(pp);
    free(reqs);
    wr_close(w);
}

/* --------------------------------------------- 2. and 3.: the read models */

/* Every table of the read models, with the order its rows are dumped in
 * (the order the projector makes them). */
typedef struct table {
    const char *name, *order;
    bool has_pos;
    char *data;
    size_t len, cap;
    uint64_t rows;
} table;

static table g_tables[] = {
    {"watches", "created_at, watch_id", true, NULL, 0, 0, 0},
    {"customers", "customer_id", true, NULL, 0, 0, 0},
    {"orders", "order_id", true, NULL, 0, 0, 0},
    {"order_items", "item_id", true, NULL, 0, 0, 0},
    {"invoices", "invoice_id", true, NULL, 0, 0, 0},
    {"stock_movements", "movement_id", true, NULL, 0, 0, 0},
    {"payments", "source_pos", true, NULL, 0, 0, 0},
    {"integration_logs", "log_id", true, NULL, 0, 0, 0},
    {"projection_state", "projection", false, NULL, 0, 0, 0},
};
#define N_TABLES (sizeof g_tables / sizeof g_tables[0])

/* Rows and sum(source_pos) of every table, and the position: equal for any
 * two databases that hold the same rows (a rebuild is deterministic). */
static void fingerprint(PGconn *db, char *out, size_t cap)
{
    char sql[2048];
    int n = snprintf(sql, sizeof sql, "SELECT concat_ws(' '");
    for (size_t i = 0; i < N_TABLES; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n,
                      ", (SELECT '%s=' || count(*) || '/' || %s FROM %s)", g_tables[i].name,
                      g_tables[i].has_pos ? "coalesce(sum(source_pos), 0)" : "max(next_pos)",
                      g_tables[i].name);
    snprintf(sql + n, sizeof sql - (size_t)n, ")");
    pg_val(db, sql, out, cap);
}

static double db_mb(PGconn *db)
{
    char v[64];
    return atof(pg_val(db, "SELECT pg_database_size(current_database())", v, sizeof v)) / 1e6;
}

/* COPY t TO STDOUT of every table, into memory. */
static void dump_tables(PGconn *db)
{
    for (size_t i = 0; i < N_TABLES; i++) {
        table *t = &g_tables[i];
        char sql[256];
        snprintf(sql, sizeof sql, "COPY (SELECT * FROM %s ORDER BY %s) TO STDOUT", t->name,
                 t->order);
        PGresult *r = PQexec(db, sql);
        if (PQresultStatus(r) != PGRES_COPY_OUT)
            die("%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        t->len = 0;
        t->rows = 0;
        char *row;
        int n;
        while ((n = PQgetCopyData(db, &row, 0)) > 0) {
            if (t->len + (size_t)n > t->cap) {
                t->cap = t->cap ? t->cap * 2 : 1 << 20;
                while (t->cap < t->len + (size_t)n)
                    t->cap *= 2;
                t->data = realloc(t->data, t->cap);
                if (!t->data)
                    die("out of memory");
            }
            memcpy(t->data + t->len, row, (size_t)n);
            t->len += (size_t)n;
            t->rows++;
            PQfreemem(row);
        }
        if (n == -2)
            die("%s: %s", sql, PQerrorMessage(db));
        while ((r = PQgetResult(db)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                die("%s: %s", sql, PQresultErrorMessage(r));
            PQclear(r);
        }
    }
}

typedef struct rb_res {
    phase ph;
    double events_s, open_s, db_mb;
    uint64_t batches;
    char fp[1024];
} rb_res;

/* Figure 2: a fresh database, proj_pg_open (connect + migrate), then
 * proj_catch_up over the whole log (timed). The database is dropped after,
 * unless keep. */
static rb_res bench_rebuild(log_t *log, uint64_t events, PGconn *admin, size_t batch, int run,
                            bool keep, char *dbname, size_t dbcap)
{
    rb_res r;
    memset(&r, 0, sizeof r);
    snprintf(dbname, dbcap, "rb_%zu_%d", batch, run);
    create_db(admin, dbname);
    char ci[8400], err[1024];
    snprintf(ci, sizeof ci, "%s dbname=%s", g_conninfo, dbname);
    double t0 = bm_now_s();
    proj_pg *p = proj_pg_open(ci, "public", err, sizeof err);
    if (!p)
        die("proj_pg_open: %s", err);
    r.open_s = bm_now_s() - t0;
    proj_sink sink = proj_pg_sink(p);
    proj_stats st;
    memset(&st, 0, sizeof st);
    phase_begin(&r.ph, admin, dbname);
    if (proj_catch_up(log, &sink, batch, &st, err, sizeof err) != 0)
        die("proj_catch_up (batch %zu): %s", batch, err);
    phase_end(&r.ph, admin);
    proj_pg_close(p);
    if (st.applied + st.skipped != events || st.skipped)
        die("the rebuild applied %llu and skipped %llu of %llu events",
            (unsigned long long)st.applied, (unsigned long long)st.skipped,
            (unsigned long long)events);
    r.events_s = (double)events / r.ph.wall;
    r.batches = st.batches;
    PGconn *db = pg_connect(dbname);
    fingerprint(db, r.fp, sizeof r.fp);
    r.db_mb = db_mb(db);
    PQfinish(db);
    if (!keep)
        drop_db(admin, dbname);
    return r;
}

typedef struct raw_res {
    phase ph;
    double events_s, rows_s, mb_s, db_mb;
    char fp[1024];
} raw_res;

/* Figure 3: the dumped rows into a fresh migrated database, one COPY per
 * table, in one transaction (timed). */
static raw_res bench_raw(uint64_t events, PGconn *admin, int run)
{
    raw_res r;
    memset(&r, 0, sizeof r);
    char name[64], err[1024];
    snprintf(name, sizeof name, "raw_%d", run);
    create_db(admin, name);
    PGconn *db = pg_connect(name);
    int applied;
    if (proj_migrate(db, "public", &applied, err, sizeof err) != 0)
        die("migrating %s: %s", name, err);
    uint64_t rows = 0, bytes = 0;
    phase_begin(&r.ph, admin, name);
    pg_exec(db, "BEGIN");
    for (size_t i = 0; i < N_TABLES; i++) {
        table *t = &g_tables[i];
        if (!t->rows)
            continue;
        char sql[128];
        snprintf(sql, sizeof sql, "COPY %s FROM STDIN", t->name);
        PGresult *res = PQexec(db, sql);
        if (PQresultStatus(res) != PGRES_COPY_IN)
            die("%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        for (size_t off = 0; off < t->len;) {
            size_t n = t->len - off < (1u << 20) ? t->len - off : (1u << 20);
            if (PQputCopyData(db, t->data + off, (int)n) != 1)
                die("%s: %s", sql, PQerrorMessage(db));
            off += n;
        }
        if (PQputCopyEnd(db, NULL) != 1)
            die("%s: %s", sql, PQerrorMessage(db));
        while ((res = PQgetResult(db)) != NULL) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                die("%s: %s", sql, PQresultErrorMessage(res));
            PQclear(res);
        }
        rows += t->rows;
        bytes += t->len;
    }
    pg_exec(db, "COMMIT");
    phase_end(&r.ph, admin);
    r.events_s = (double)events / r.ph.wall;
    r.rows_s = (double)rows / r.ph.wall;
    r.mb_s = (double)bytes / 1e6 / r.ph.wall;
    fingerprint(db, r.fp, sizeof r.fp);
    r.db_mb = db_mb(db);
    PQfinish(db);
    drop_db(admin, name);
    return r;
}

/* The per-run figures of one measurement. */
typedef struct series {
    dvec rate, wall, client, backend, other, wal, dbsize;
} series;

static void series_push(series *s, double rate, const phase *ph, double dbsize)
{
    dv_push(&s->rate, rate);
    dv_push(&s->wall, ph->wall);
    dv_push(&s->client, ph->client_cpu);
    dv_push(&s->backend, ph->backend_cpu);
    dv_push(&s->other, ph->other_cpu);
    dv_push(&s->wal, ph->wal_mb);
    dv_push(&s->dbsize, dbsize);
}

static void series_print(const series *s, const char *what)
{
    print_stat(what, &s->rate, "/s");
    print_num("  wall", &s->wall, "%.2f", "s");
    print_num("  CPU, this process (client)", &s->client, "%.2f", "s");
    print_num("  CPU, its PostgreSQL backend", &s->backend, "%.2f", "s");
    print_num("  CPU, other PostgreSQL processes", &s->other, "%.2f", "s");
    print_num("  WAL written", &s->wal, "%.0f", "MB");
    print_num("  database size after", &s->dbsize, "%.0f", "MB");
}

static void series_free(series *s)
{
    free(s->rate.v);
    free(s->wall.v);
    free(s->client.v);
    free(s->backend.v);
    free(s->other.v);
    free(s->wal.v);
    free(s->dbsize.v);
}

/* --------------------------------------------- 4. and 5.: the LMDB cache */

/* The rebuild's LMDB writes, recorded once (untimed) and replayed into a
 * fresh environment by figure 5b. The bench links with
 * -Wl,--wrap=mdb_put,--wrap=mdb_del,--wrap=mdb_txn_commit (CMakeLists.txt):
 * every call of those, from proj_cache.c too, comes through the wrappers
 * below, which note the write (operation, database, key, value length) when
 * recording is on and the transaction belongs to the environment being
 * recorded, then call LMDB. Off, they cost one test. With `timing` on, the
 * commit wrapper also adds up the wall time of that environment's commits
 * (the timed rebuilds of figure 4). */
enum { OP_PUT = 1, OP_DEL = 2, OP_COMMIT = 3 };

typedef struct wrec {
    bool on, timing;
    char path[4300];  /* the cache root: its generations' environments are
                         recorded (mdb_env_get_path under it) */
    double commit_s;  /* timing: seconds in its commits */
    uint8_t *buf;     /* entries: op u8, dbi u8, klen u16, vlen u32, key */
    size_t len, cap;
    uint64_t puts, dels, commits, key_bytes, val_bytes;
    size_t max_val;
    bool dbi_used[256];
    uint64_t dbi_puts[256], dbi_bytes[256]; /* per database: writes, key + value bytes */
} wrec;

static wrec g_rec;

int __real_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int __real_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __real_mdb_txn_commit(MDB_txn *txn);

static bool rec_env(MDB_txn *txn)
{
    const char *p = NULL;
    size_t n = strlen(g_rec.path);
    return mdb_env_get_path(mdb_txn_env(txn), &p) == 0 && p && strncmp(p, g_rec.path, n) == 0 &&
           p[n] == '/';
}

static bool rec_wanted(MDB_txn *txn) { return g_rec.on && rec_env(txn); }

static void rec_op(uint8_t op, MDB_dbi dbi, const MDB_val *key, size_t vlen)
{
    size_t klen = key ? key->mv_size : 0, need = 8 + klen;
    if (dbi > 255 || klen > 65535 || vlen > UINT32_MAX)
        die("recording: a write out of range (dbi %u, key %zu bytes)", (unsigned)dbi, klen);
    if (g_rec.len + need > g_rec.cap) {
        g_rec.cap = g_rec.cap ? g_rec.cap * 2 : 64u << 20;
        g_rec.buf = realloc(g_rec.buf, g_rec.cap);
        if (!g_rec.buf)
            die("out of memory recording the cache's writes");
    }
    uint8_t *e = g_rec.buf + g_rec.len;
    uint16_t k16 = (uint16_t)klen;
    uint32_t v32 = (uint32_t)vlen;
    e[0] = op;
    e[1] = (uint8_t)dbi;
    memcpy(e + 2, &k16, 2);
    memcpy(e + 4, &v32, 4);
    if (klen)
        memcpy(e + 8, key->mv_data, klen);
    g_rec.len += need;
    if (op != OP_COMMIT) {
        g_rec.dbi_used[dbi] = true;
        g_rec.dbi_puts[dbi]++;
        g_rec.dbi_bytes[dbi] += klen + vlen;
    }
    g_rec.key_bytes += klen;
    g_rec.val_bytes += vlen;
    if (vlen > g_rec.max_val)
        g_rec.max_val = vlen;
}

int __wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int __wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
    if (rec_wanted(txn)) {
        rec_op(OP_PUT, dbi, key, data->mv_size);
        g_rec.puts++;
    }
    return __real_mdb_put(txn, dbi, key, data, flags);
}

int __wrap_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __wrap_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    if (rec_wanted(txn)) {
        rec_op(OP_DEL, dbi, key, 0);
        g_rec.dels++;
    }
    return __real_mdb_del(txn, dbi, key, data);
}

int __wrap_mdb_txn_commit(MDB_txn *txn);
int __wrap_mdb_txn_commit(MDB_txn *txn)
{
    if (rec_wanted(txn)) {
        rec_op(OP_COMMIT, 0, NULL, 0);
        g_rec.commits++;
    }
    if (!g_rec.timing || !rec_env(txn))
        return __real_mdb_txn_commit(txn);
    double t0 = bm_now_s();
    int rc = __real_mdb_txn_commit(txn);
    g_rec.commit_s += bm_now_s() - t0;
    return rc;
}

typedef struct cache_res {
    double wall, cpu, commit_s, events_s;
    uint64_t batches;
    double mb; /* data.mdb */
    uint8_t digest[32];
} cache_res;

/* The size of the live generation's data.mdb under cache root `root`. */
static double cache_mb(const char *root)
{
    char dir[CGEN_PATH_MAX], path[CGEN_PATH_MAX + 16], err[512];
    unsigned gen;
    struct stat sb;
    if (cgen_current(root, dir, sizeof dir, &gen, err, sizeof err) != 0)
        return 0;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : 0;
}

/* The digest of everything in the cache, through the writer's own reader. */
static void cache_digest(proj_sink *sink, uint8_t out[32])
{
    proj_cache_reader *r;
    char err[512];
    if (proj_cache_writer_reader(sink, &r, err, sizeof err) != 0)
        die("proj_cache_writer_reader: %s", err);
    int rc = proj_cache_digest(r, out);
    proj_cache_reader_close(r);
    if (rc != 0)
        die("proj_cache_digest: %s", proj_cache_strerror(rc));
}

/* Figure 4: proj_cache_open_writer on a fresh directory + proj_catch_up
 * over the whole log (both timed), then a digest (not timed). With `record`
 * the LMDB writes of the catch-up are recorded into g_rec. The directory is
 * removed after. */
static cache_res cache_rebuild(log_t *log, uint64_t events, const char *dir, size_t batch,
                               bool record)
{
    cache_res r;
    memset(&r, 0, sizeof r);
    proj_sink sink;
    proj_stats st;
    memset(&st, 0, sizeof st);
    char err[1024];
    double t0 = bm_now_s(), c0 = bm_cpu_s();
    if (proj_cache_open_writer(dir, g_email_key, &sink, err, sizeof err) != 0)
        die("proj_cache_open_writer: %s", err);
    snprintf(g_rec.path, sizeof g_rec.path, "%s", dir);
    g_rec.on = record;
    g_rec.timing = !record;
    g_rec.commit_s = 0;
    if (proj_catch_up(log, &sink, batch, &st, err, sizeof err) != 0)
        die("proj_catch_up into the cache (batch %zu): %s", batch, err);
    g_rec.on = g_rec.timing = false;
    r.commit_s = g_rec.commit_s;
    r.wall = bm_now_s() - t0;
    r.cpu = bm_cpu_s() - c0;
    if (st.applied + st.skipped != events || st.skipped)
        die("the cache rebuild applied %llu and skipped %llu of %llu events",
            (unsigned long long)st.applied, (unsigned long long)st.skipped,
            (unsigned long long)events);
    if (proj_cache_inconsistent(&sink))
        die("the cache rebuild found %llu events inconsistent with the cache",
            (unsigned long long)proj_cache_inconsistent(&sink));
    r.events_s = (double)events / r.wall;
    r.batches = st.batches;
    cache_digest(&sink, r.digest);
    r.mb = cache_mb(dir);
    proj_cache_close(&sink);
    rmtree(dir);
    return r;
}

/* Figure 4b: proj_cache_rebuild into a fresh root (timed whole: a first
 * empty generation, the build with no sync per commit, one sync, the
 * swap), then a digest through a reader (not timed). */
static cache_res cache_rebuild_gen(log_t *log, uint64_t events, const char *dir, size_t batch)
{
    cache_res r;
    memset(&r, 0, sizeof r);
    proj_stats st;
    char err[1024];
    double t0 = bm_now_s(), c0 = bm_cpu_s();
    if (proj_cache_rebuild(log, dir, g_email_key, batch, NULL, NULL, &st, err, sizeof err) != 0)
        die("proj_cache_rebuild (batch %zu): %s", batch, err);
    r.wall = bm_now_s() - t0;
    r.cpu = bm_cpu_s() - c0;
    if (err[0])
        die("proj_cache_rebuild: %s", err);
    if (st.applied + st.skipped != events || st.skipped)
        die("proj_cache_rebuild applied %llu and skipped %llu of %llu events",
            (unsigned long long)st.applied, (unsigned long long)st.skipped,
            (unsigned long long)events);
    r.events_s = (double)events / r.wall;
    r.batches = st.batches;
    proj_cache_reader *rd;
    if (proj_cache_open_reader(dir, NULL, &rd, err, sizeof err) != 0)
        die("proj_cache_open_reader: %s", err);
    int rc = proj_cache_digest(rd, r.digest);
    proj_cache_reader_close(rd);
    if (rc != 0)
        die("proj_cache_digest: %s", proj_cache_strerror(rc));
    r.mb = cache_mb(dir);
    rmtree(dir);
    return r;
}

/* Figure 5a: log_scan + ev_decode (decode and hash verify) of every record,
 * what proj_catch_up does before it hands an event to the sink. */
typedef struct scan_ctx {
    ev_dec *dec;
    ev_event ev;
    uint64_t n;
} scan_ctx;

static int scan_one(void *ud, const log_rec *r)
{
    scan_ctx *c = ud;
    int rc = ev_decode(c->dec, r->data, r->len, r->pos, &c->ev);
    if (rc)
        die("record %llu: %s", (unsigned long long)r->pos, ev_strerror(rc));
    c->n++;
    return 0;
}

static double raw_scan(log_t *log, uint64_t events)
{
    scan_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->dec = ev_dec_new()))
        die("out of memory");
    uint64_t next;
    double t0 = bm_now_s();
    if (log_scan(log, 0, 0, scan_one, c, &next) != 0)
        die("scan: %s", log_errmsg(log));
    double secs = bm_now_s() - t0;
    if (c->n != events)
        die("the scan saw %llu records, the log has %llu", (unsigned long long)c->n,
            (unsigned long long)events);
    ev_dec_free(c->dec);
    free(c);
    return secs;
}

/* The settings proj_cache.c opens its environment with. */
#define CACHE_MAPSIZE (64ull << 30)
#define CACHE_ENV_FLAGS (MDB_NOTLS | MDB_NOMETASYNC)

static MDB_env *raw_env(const char *dir, MDB_dbi map[256])
{
    MDB_env *env;
    MDB_txn *txn;
    int mrc;
    if (mkdir(dir, 0700) != 0)
        die("mkdir %s: %s", dir, strerror(errno));
    if ((mrc = mdb_env_create(&env)) != 0 || (mrc = mdb_env_set_maxdbs(env, 256)) != 0 ||
        (mrc = mdb_env_set_mapsize(env, (size_t)CACHE_MAPSIZE)) != 0 ||
        (mrc = mdb_env_open(env, dir, CACHE_ENV_FLAGS, 0600)) != 0 ||
        (mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        die("raw LMDB environment %s: %s", dir, mdb_strerror(mrc));
    for (int d = 0; d < 256; d++) {
        char name[16];
        snprintf(name, sizeof name, "db%d", d);
        if (g_rec.dbi_used[d] && (mrc = mdb_dbi_open(txn, name, MDB_CREATE, &map[d])) != 0)
            die("raw LMDB database %s: %s", name, mdb_strerror(mrc));
    }
    if ((mrc = mdb_txn_commit(txn)) != 0)
        die("raw LMDB environment %s: %s", dir, mdb_strerror(mrc));
    return env;
}

/* Figure 5b: the recorded writes into a fresh environment with the cache's
 * settings: the same databases, keys, value sizes (the bytes are filler),
 * order and transactions, each commit synced as the cache's are. No reads,
 * no decoding, no rendering: what LMDB alone costs for this rebuild. */
static double raw_writes(const char *dir, double *commit_s)
{
    MDB_dbi map[256];
    MDB_env *env = raw_env(dir, map);
    uint8_t *filler = malloc(g_rec.max_val + 1);
    if (!filler)
        die("out of memory");
    for (size_t i = 0; i <= g_rec.max_val; i++)
        filler[i] = (uint8_t)(i * 131 + 7);
    MDB_txn *txn;
    size_t ops = 0;
    int mrc;
    *commit_s = 0;
    double t0 = bm_now_s();
    if ((mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        die("raw LMDB: %s", mdb_strerror(mrc));
    for (size_t off = 0; off < g_rec.len;) {
        const uint8_t *e = g_rec.buf + off;
        uint16_t klen;
        uint32_t vlen;
        memcpy(&klen, e + 2, 2);
        memcpy(&vlen, e + 4, 4);
        MDB_val k = {klen, (void *)(e + 8)}, v = {vlen, filler};
        off += 8 + (size_t)klen;
        if (e[0] == OP_COMMIT) {
            double tc = bm_now_s();
            if (ops && ((mrc = mdb_txn_commit(txn)) != 0 ||
                        (mrc = mdb_txn_begin(env, NULL, 0, &txn)) != 0))
                die("raw LMDB commit: %s", mdb_strerror(mrc));
            *commit_s += bm_now_s() - tc;
            ops = 0;
            continue;
        }
        mrc = e[0] == OP_PUT ? mdb_put(txn, map[e[1]], &k, &v, 0)
                             : mdb_del(txn, map[e[1]], &k, NULL);
        if (mrc && mrc != MDB_NOTFOUND)
            die("raw LMDB write: %s", mdb_strerror(mrc));
        ops++;
    }
    double tc = bm_now_s();
    if (ops)
        mrc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    *commit_s += bm_now_s() - tc;
    if (mrc)
        die("raw LMDB commit: %s", mdb_strerror(mrc));
    double secs = bm_now_s() - t0;
    mdb_env_close(env);
    free(filler);
    return secs;
}

/* Figures 4 and 5 over --runs runs: the rebuild, then its two limits. */
typedef struct cache_fig {
    dvec rate, wall, cpu, commit, gen_rate, gen_wall, scan, puts, puts_commit, limit, ratio;
    uint64_t batches;
    double mb;
} cache_fig;

static void cache_record(log_t *log, uint64_t events, const char *dir, size_t batch,
                         uint8_t digest[32])
{
    memset(&g_rec, 0, sizeof g_rec);
    double t0 = bm_now_s();
    cache_res x = cache_rebuild(log, events, dir, batch, true);
    memcpy(digest, x.digest, 32);
    bm_progress("recorded the rebuild's LMDB writes (untimed, %.2f s): %llu puts, %llu "
                "deletes, %llu commits, %.0f MB of keys and values",
                bm_now_s() - t0, (unsigned long long)g_rec.puts,
                (unsigned long long)g_rec.dels, (unsigned long long)g_rec.commits,
                (double)(g_rec.key_bytes + g_rec.val_bytes) / 1e6);
    /* dbi numbers: LMDB's, 2 upwards in the order proj_cache.c opens its
     * databases (meta, watch, wsort, brand, order, ...). */
    for (int d = 0; d < 256; d++)
        if (g_rec.dbi_used[d])
            bm_progress("  dbi %d: %llu writes, %.1f MB", d,
                        (unsigned long long)g_rec.dbi_puts[d], (double)g_rec.dbi_bytes[d] / 1e6);
}

/* One run's figures: the rebuild x, proj_cache_rebuild y, the scan and the
 * raw writes (seconds), into f. */
static void cache_push(cache_fig *f, uint64_t events, const cache_res *x, const cache_res *y,
                       double scan, double puts, double commit_s)
{
    double limit = (double)events / (scan + puts);
    dv_push(&f->rate, x->events_s);
    dv_push(&f->wall, x->wall);
    dv_push(&f->cpu, x->cpu);
    dv_push(&f->commit, x->commit_s);
    dv_push(&f->gen_rate, y->events_s);
    dv_push(&f->gen_wall, y->wall);
    dv_push(&f->scan, (double)events / scan);
    dv_push(&f->puts, (double)(g_rec.puts + g_rec.dels) / puts);
    dv_push(&f->puts_commit, 100 * commit_s / puts);
    dv_push(&f->limit, limit);
    dv_push(&f->ratio, x->events_s / limit);
    f->batches = x->batches;
    f->mb = x->mb;
    bm_progress("run %zu, cache: rebuild %.0f events/s (%.2f s, CPU %.2f s, commits %.2f s, "
                "%.0f MB); proj_cache_rebuild %.0f events/s (%.2f s); scan %.2f s; LMDB "
                "writes %.2f s (commits %.2f s); rebuild / limit %.2f",
                f->rate.n, x->events_s, x->wall, x->cpu, x->commit_s, x->mb, y->events_s,
                y->wall, scan, puts, commit_s, x->events_s / limit);
}

static void cache_runs(const cfg *c, log_t *log, uint64_t events, cache_fig *f)
{
    char dir[4400], rawdir[4400];
    snprintf(dir, sizeof dir, "%s/cache", g_root);
    snprintf(rawdir, sizeof rawdir, "%s/rawlmdb", g_root);
    uint8_t d0[32];
    cache_record(log, events, dir, c->cache_batch, d0);
    for (int r = 0; r < c->runs; r++) {
        cache_res x = cache_rebuild(log, events, dir, c->cache_batch, false);
        if (memcmp(x.digest, d0, 32) != 0)
            die("cache rebuild %d differs from the first one (proj_cache_digest)", r + 1);
        cache_res y = cache_rebuild_gen(log, events, dir, c->cache_batch);
        if (memcmp(y.digest, d0, 32) != 0)
            die("proj_cache_rebuild %d differs from proj_catch_up's (proj_cache_digest)", r + 1);
        double scan = raw_scan(log, events), commit_s;
        double puts = raw_writes(rawdir, &commit_s);
        rmtree(rawdir);
        cache_push(f, events, &x, &y, scan, puts, commit_s);
    }
}

static void cache_fig_free(cache_fig *f)
{
    dvec *v[] = {&f->rate,     &f->wall, &f->cpu,  &f->commit,      &f->gen_rate, &f->gen_wall,
                 &f->scan,     &f->puts, &f->puts_commit, &f->limit,    &f->ratio};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        free(v[i]->v);
}

static void cache_print(const cfg *c, uint64_t events, const cache_fig *f)
{
    printf("\n4. cache rebuild into a fresh LMDB directory: proj_cache_open_writer, then\n"
           "   proj_catch_up over the whole log (%llu events), batch %zu (%llu\n"
           "   transactions), the page cache warm\n",
           (unsigned long long)events, c->cache_batch, (unsigned long long)f->batches);
    print_stat("events/s", &f->rate, "/s");
    print_num("  wall", &f->wall, "%.2f", "s");
    print_num("  CPU, this thread", &f->cpu, "%.2f", "s");
    print_num("  in LMDB commits (write + sync)", &f->commit, "%.2f", "s");
    printf("  %-34s %10.0f MB\n", "  data.mdb after", f->mb);
    printf("\n4b. the same through proj_cache_rebuild (the operator's rebuild: a new\n"
           "   generation beside the live one, no sync per commit, one sync at the end,\n"
           "   published and the old one retired), same batch, timed whole\n");
    print_stat("events/s", &f->gen_rate, "/s");
    print_num("  wall", &f->gen_wall, "%.2f", "s");
    printf("\n5. the machine's limit for it, measured in the same runs:\n"
           "   a. raw scan: log_scan + ev_decode (decode + hash verify) of the log\n"
           "   b. raw LMDB writes: the rebuild's own writes (recorded once: %llu puts,\n"
           "      %llu deletes, %llu commits, %.0f MB of keys and values), replayed\n"
           "      into a fresh environment with the cache's settings\n",
           (unsigned long long)g_rec.puts, (unsigned long long)g_rec.dels,
           (unsigned long long)g_rec.commits,
           (double)(g_rec.key_bytes + g_rec.val_bytes) / 1e6);
    print_stat("a. raw scan, events/s", &f->scan, "/s");
    print_stat("b. raw LMDB writes/s", &f->puts, "/s");
    print_num("   of which in commits (write+sync)", &f->puts_commit, "%.0f", "%");
    printf("  %-34s %10.2f per event\n", "   (writes per event)",
           (double)(g_rec.puts + g_rec.dels) / (double)events);
    print_stat("a + b in series, events/s", &f->limit, "/s");
    print_num("rebuild / (a + b), per run", &f->ratio, "%.2f", "");
    fflush(stdout);
}

/* -------------------------------------------- 6. lag, append to cache */

#define LAG_TICK_S 0.001     /* at most one append a millisecond */
#define LAG_TIMEOUT_MS 10000 /* a wait longer than this counts as lost */

/* One append of the paced writer, as the reader thread sees it. */
typedef struct lag_sample {
    uint64_t pos;     /* the append's last position */
    double t_commit;  /* when wr_process returned (durable) */
    double append_ms; /* how long wr_process took */
    double lag_ms;    /* commit -> proj_cache_wait returned; < 0: timed out */
} lag_sample;

/* The writer publishes samples; the reader thread waits for each. */
typedef struct lag_run {
    lag_sample *s;
    size_t n, cap; /* published, room */
    bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    proj_cache_reader *r;
} lag_run;

static void *lag_reader(void *arg)
{
    lag_run *lr = arg;
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&lr->mu);
        while (i >= lr->n && !lr->done)
            pthread_cond_wait(&lr->cv, &lr->mu);
        bool have = i < lr->n;
        pthread_mutex_unlock(&lr->mu);
        if (!have)
            return NULL;
        lag_sample *x = &lr->s[i];
        int rc = proj_cache_wait(lr->r, x->pos, LAG_TIMEOUT_MS);
        x->lag_ms = rc == 0 ? (bm_now_s() - x->t_commit) * 1e3 : -1;
    }
}

static void lag_publish(lag_run *lr, const lag_sample *x)
{
    pthread_mutex_lock(&lr->mu);
    if (lr->n < lr->cap)
        lr->s[lr->n++] = *x;
    pthread_cond_signal(&lr->cv);
    pthread_mutex_unlock(&lr->mu);
}

static void lag_finish(lag_run *lr)
{
    pthread_mutex_lock(&lr->mu);
    lr->done = true;
    pthread_cond_signal(&lr->cv);
    pthread_mutex_unlock(&lr->mu);
}

/* The last ~1.5 kB of the projector's standard error, to explain a failure. */
static void show_tail(const char *path)
{
    char buf[1600];
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    fprintf(stderr, "bench_proj: the projector's last words (%s):\n%s\n", path, buf);
}

static void write_key_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s: %s", path, strerror(errno));
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", g_email_key[i]);
    fputc('\n', f);
    if (fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

/* The real projector process, cache projection only, its defaults
 * otherwise (batch 1,000, following the log on inotify). */
static pid_t projector_start(const char *bin, const char *dir)
{
    char a1[4400], a2[4400], a3[4400], errlog[4400];
    snprintf(a1, sizeof a1, "--log=lmdb:%s/log", dir);
    snprintf(a2, sizeof a2, "--cache=%s/cache", dir);
    snprintf(a3, sizeof a3, "--email-key-file=%s/email.key", dir);
    snprintf(errlog, sizeof errlog, "%s/projector.log", dir);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int nul = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 2);
        if (nul >= 0)
            dup2(nul, 1);
        execl(bin, "projector", "--projection=cache", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    g_proj_pid = pid;
    return pid;
}

/* SIGTERM, as an operator would; SIGKILL after 10 s. Returns the exit
 * status as a shell shows it. */
static int projector_stop(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_proj_pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    g_proj_pid = 0;
    return 128 + SIGKILL;
}

/* Waits (10 s at most) for the projector to make the cache. */
static proj_cache_reader *open_cache_reader(const char *dir, pid_t pid)
{
    char cache[4400], errlog[4400], err[512] = "";
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(errlog, sizeof errlog, "%s/projector.log", dir);
    for (int i = 0; i < 500; i++) {
        proj_cache_reader *r;
        if (proj_cache_open_reader(cache, NULL, &r, err, sizeof err) == 0)
            return r;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_proj_pid = 0;
            show_tail(errlog);
            die("the projector exited (status %d) before making the cache", st);
        }
        usleep(20000);
    }
    show_tail(errlog);
    die("no cache in %s after 10 s: %s", cache, err);
    return NULL;
}

/* The paced writer: an append starts LAG_TICK_S after the one before
 * started, or at once if that one took longer, and carries every command due
 * by then at `rate` events/s (a slow append makes the next one bigger, as
 * group commit does). Each append is published to the reader. */
static void lag_drive(wr_writer *w, cmdgen *cg, lag_run *lr, double rate, double secs,
                      double *elapsed)
{
    wr_req *reqs = calloc(GEN_BATCH, sizeof *reqs);
    wr_req **pp = malloc(GEN_BATCH * sizeof *pp);
    if (!reqs || !pp)
        die("out of memory");
    for (int i = 0; i < GEN_BATCH; i++)
        pp[i] = &reqs[i];
    uint64_t ev0 = cg->g->events;
    double t0 = bm_now_s(), start = t0, last = t0;
    while ((start += LAG_TICK_S) - t0 <= secs) {
        bm_sleep_until(start);
        double ta = bm_now_s();
        start = ta;
        double due = rate * (ta - t0) - (double)(cg->g->events - ev0);
        size_t n = 0;
        for (double est = 0; est < due && n < GEN_BATCH; n++)
            est += cg_fill(cg, n, &reqs[n]);
        if (!n)
            continue;
        if (wr_process(w, pp, n) != 0)
            die("wr_process: %s", log_errmsg(wr_log(w)));
        last = bm_now_s();
        cg_done(cg, reqs, n);
        lag_sample x = {reqs[n - 1].out.last_pos, last, (last - ta) * 1e3, 0};
        lag_publish(lr, &x);
    }
    *elapsed = last - t0;
    free(pp);
    free(reqs);
}

/* One run's figures. */
typedef struct lag_res {
    double events_s, cmds_s, appends_s, ev_per_append;
    double app_p50, app_p99;                 /* wr_process, ms */
    double p50, p90, p99, p999, max;         /* lag, ms */
    double proj_cpu;                         /* share of one core */
    size_t samples, lost;
    int proj_exit;
} lag_res;

static void lag_stats(const lag_run *lr, lag_res *o)
{
    double *lag = malloc((lr->n + 1) * sizeof *lag), *app = malloc((lr->n + 1) * sizeof *app);
    if (!lag || !app)
        die("out of memory");
    size_t m = 0;
    for (size_t i = 0; i < lr->n; i++) {
        app[i] = lr->s[i].append_ms;
        if (lr->s[i].lag_ms >= 0)
            lag[m++] = lr->s[i].lag_ms;
    }
    o->samples = lr->n;
    o->lost = lr->n - m;
    o->app_p50 = bm_percentile(app, lr->n, 0.50);
    o->app_p99 = bm_percentile(app, lr->n, 0.99);
    o->p50 = bm_percentile(lag, m, 0.50);
    o->p90 = bm_percentile(lag, m, 0.90);
    o->p99 = bm_percentile(lag, m, 0.99);
    o->p999 = bm_percentile(lag, m, 0.999);
    o->max = m ? lag[m - 1] : 0;
    free(lag);
    free(app);
}

/* A run's set-up: a fresh directory, a log with the catalogue (its writer
 * stays open in *w), the projector started on it, and a reader that has
 * seen the catalogue in the cache. */
static proj_cache_reader *lag_setup(const cfg *c, const char *dir, gen_res *g, wr_writer **w,
                                    pid_t *pid)
{
    char logdir[4500], keyfile[4500];
    snprintf(logdir, sizeof logdir, "%s/log", dir);
    snprintf(keyfile, sizeof keyfile, "%s/email.key", dir);
    if (mkdir(dir, 0700) != 0)
        die("mkdir %s: %s", dir, strerror(errno));
    write_key_file(keyfile);
    memset(g, 0, sizeof *g);
    *w = open_writer(logdir);
    add_catalogue(*w, g);
    uint64_t end;
    if (log_end(wr_log(*w), &end) != 0)
        die("log_end: %s", log_errmsg(wr_log(*w)));
    *pid = projector_start(c->projector, dir);
    proj_cache_reader *r = open_cache_reader(dir, *pid);
    if (proj_cache_wait(r, end - 1, 30000) != 0)
        die("the projector did not apply the catalogue within 30 s");
    return r;
}

/* Figure 6, one run: the set-up, then `lag_secs` of paced appends with the
 * reader thread timing each one. */
static lag_res lag_once(const cfg *c, int run)
{
    lag_res o;
    memset(&o, 0, sizeof o);
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/lag-%d", g_root, run + 1);
    gen_res g;
    wr_writer *w;
    pid_t pid;
    lag_run lr;
    memset(&lr, 0, sizeof lr);
    lr.r = lag_setup(c, dir, &g, &w, &pid);
    lr.cap = (size_t)(c->lag_secs / LAG_TICK_S) + 16;
    if (!(lr.s = calloc(lr.cap, sizeof *lr.s)))
        die("out of memory");
    pthread_mutex_init(&lr.mu, NULL);
    pthread_cond_init(&lr.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, lag_reader, &lr) != 0)
        die("pthread_create failed");
    cmdgen cg;
    cg_init(&cg, &g);
    uint64_t ev0 = g.events, cmd0 = g.cmds;
    double cpu0 = bm_proc_cpu_s(pid), secs;
    lag_drive(w, &cg, &lr, (double)c->lag_rate, c->lag_secs, &secs);
    lag_finish(&lr);
    pthread_join(th, NULL);
    o.proj_cpu = (bm_proc_cpu_s(pid) - cpu0) / secs;
    o.proj_exit = projector_stop(pid);
    o.events_s = (double)(g.events - ev0) / secs;
    o.cmds_s = (double)(g.cmds - cmd0) / secs;
    o.appends_s = (double)lr.n / secs;
    o.ev_per_append = lr.n ? (double)(g.events - ev0) / (double)lr.n : 0;
    lag_stats(&lr, &o);
    proj_cache_reader_close(lr.r);
    pthread_mutex_destroy(&lr.mu);
    pthread_cond_destroy(&lr.cv);
    free(lr.s);
    cg_free(&cg);
    wr_close(w);
    rmtree(dir);
    return o;
}

/* Figure 6 over --runs runs. */
typedef struct lag_fig {
    dvec events_s, cmds_s, appends_s, per_append, app_p50, app_p99;
    dvec p50, p90, p99, p999, max, proj_cpu;
    size_t samples, lost;
    int bad_exits;
} lag_fig;

static void lag_runs(const cfg *c, lag_fig *f)
{
    if (access(c->projector, X_OK) != 0)
        die("no projector at %s (build the projector target, or give --projector PATH)",
            c->projector);
    for (int r = 0; r < c->runs; r++) {
        lag_res x = lag_once(c, r);
        dv_push(&f->events_s, x.events_s);
        dv_push(&f->cmds_s, x.cmds_s);
        dv_push(&f->appends_s, x.appends_s);
        dv_push(&f->per_append, x.ev_per_append);
        dv_push(&f->app_p50, x.app_p50);
        dv_push(&f->app_p99, x.app_p99);
        dv_push(&f->p50, x.p50);
        dv_push(&f->p90, x.p90);
        dv_push(&f->p99, x.p99);
        dv_push(&f->p999, x.p999);
        dv_push(&f->max, x.max);
        dv_push(&f->proj_cpu, 100 * x.proj_cpu);
        f->samples += x.samples;
        f->lost += x.lost;
        f->bad_exits += x.proj_exit != 0;
        bm_progress("run %d, lag: %.0f events/s in %zu appends; lag p50 %.2f ms, p99 %.2f "
                    "ms, max %.2f ms%s; projector CPU %.0f%%, exit %d",
                    r + 1, x.events_s, x.samples, x.p50, x.p99, x.max,
                    x.lost ? " (some lost!)" : "", 100 * x.proj_cpu, x.proj_exit);
    }
}

static void lag_fig_free(lag_fig *f)
{
    dvec *v[] = {&f->events_s, &f->cmds_s, &f->appends_s, &f->per_append, &f->app_p50,
                 &f->app_p99, &f->p50, &f->p90, &f->p99, &f->p999, &f->max, &f->proj_cpu};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        free(v[i]->v);
}

static void lag_print(const cfg *c, const lag_fig *f)
{
    printf("\n6. end-to-end lag, append to cache visibility: %d runs of %.0f s. This\n"
           "   process appends the command mix through wr_process, paced at %ld\n"
           "   events/s (every 1 ms, the commands due in one durable append); the\n"
           "   projector process (--projection cache, batch 1,000) follows the log; a\n"
           "   reader thread here waits (proj_cache_wait) for each append's last\n"
           "   position. Lag = wr_process returned -> proj_cache_wait returned.\n",
           c->runs, c->lag_secs, c->lag_rate);
    print_stat("appended events/s", &f->events_s, "/s");
    print_stat("  commands/s", &f->cmds_s, "/s");
    print_num("  appends/s", &f->appends_s, "%.0f", "/s");
    print_num("  events per append", &f->per_append, "%.1f", "");
    print_num("  append (wr_process) p50", &f->app_p50, "%.2f", "ms");
    print_num("  append (wr_process) p99", &f->app_p99, "%.2f", "ms");
    print_num("lag p50", &f->p50, "%.2f", "ms");
    print_num("lag p90", &f->p90, "%.2f", "ms");
    print_num("lag p99", &f->p99, "%.2f", "ms");
    print_num("lag p99.9", &f->p999, "%.2f", "ms");
    print_num("lag max", &f->max, "%.2f", "ms");
    print_num("projector CPU (% of one core)", &f->proj_cpu, "%.0f", "%");
    printf("  %zu appends measured, %zu not visible within %d ms; projector exits: %s\n",
           f->samples, f->lost, LAG_TIMEOUT_MS, f->bad_exits ? "SOME NOT CLEAN" : "all 0");
    fflush(stdout);
}

/* --------------------------------------------------------------- summary */

typedef struct srow {
    char fig[48], target[32], meas[48], verdict[64];
} srow;

#define MAX_ROWS 32
static srow g_rows[MAX_ROWS];
static int g_nrows;

static void add_row(const char *fig, const char *target, const char *meas, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_row(const char *fig, const char *target, const char *meas, const char *fmt, ...)
{
    if (g_nrows == MAX_ROWS)
        return;
    srow *r = &g_rows[g_nrows++];
    snprintf(r->fig, sizeof r->fig, "%s", fig);
    snprintf(r->target, sizeof r->target, "%s", target);
    snprintf(r->meas, sizeof r->meas, "%s", meas);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->verdict, sizeof r->verdict, fmt, ap);
    va_end(ap);
}

static void print_summary(int runs)
{
    static const char dash[] = "----------------------------------------";
    printf("\nsummary (median of %d runs; 1-minute load average now %.2f)\n", runs,
           bm_loadavg());
    printf("  %-34s | %-22s | %-24s | %s\n", "figure", "target", "measured",
           "ratio / verdict");
    printf("  %.34s-+-%.22s-+-%.24s-+-%.20s\n", dash, dash, dash, dash);
    for (int i = 0; i < g_nrows; i++)
        printf("  %-34s | %-22s | %-24s | %s\n", g_rows[i].fig, g_rows[i].target,
               g_rows[i].meas, g_rows[i].verdict);
}

static const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

/* A rate as "123.4k events/s". */
static const char *rate_str(double v, const char *unit, char *buf, size_t cap)
{
    char h[32];
    snprintf(buf, cap, "%s %s", bm_human(v, h, sizeof h), unit);
    return buf;
}

static void cache_rows(const cfg *c, const cache_fig *f)
{
    char m[64], t[64];
    double v = st3(&f->rate).med;
    snprintf(t, sizeof t, "cache rebuild, batch %zu", c->cache_batch);
    add_row(t, ">= 500k events/s", rate_str(v, "events/s", m, sizeof m), "%.2fx  %s",
            v / 5e5, verdict(v >= 5e5));
    v = st3(&f->gen_rate).med;
    add_row("cache rebuild, proj_cache_rebuild", ">= 500k events/s",
            rate_str(v, "events/s", m, sizeof m), "%.2fx  %s", v / 5e5, verdict(v >= 5e5));
    add_row("raw scan (decode + verify)", "(machine limit)",
            rate_str(st3(&f->scan).med, "events/s", m, sizeof m), "-");
    add_row("raw LMDB writes of the rebuild", "(machine limit)",
            rate_str(st3(&f->puts).med, "writes/s", m, sizeof m), "-");
    add_row("scan + writes in series", "(machine limit)",
            rate_str(st3(&f->limit).med, "events/s", m, sizeof m), "-");
    snprintf(m, sizeof m, "%.2f (runs %.2f-%.2f)", st3(&f->ratio).med, st3(&f->ratio).min,
             st3(&f->ratio).max);
    add_row("cache rebuild / (scan + writes)", "(reference)", m, "-");
}

static void lag_rows(const cfg *c, const lag_fig *f)
{
    char m[64], t[64];
    double rate = st3(&f->events_s).med;
    snprintf(t, sizeof t, "%s events/s", bm_human((double)c->lag_rate, m, sizeof m));
    add_row("append rate under the lag test", t, rate_str(rate, "events/s", m, sizeof m),
            "%s", rate >= 0.98 * (double)c->lag_rate ? "held" : "NOT HELD");
    double p99 = st3(&f->p99).med;
    snprintf(m, sizeof m, "%.1f / %.1f / %.1f ms", st3(&f->p50).med, p99, st3(&f->max).med);
    add_row("append -> cache: p50 / p99 / max", "p99 <= 50 ms", m, "%s%s",
            verdict(p99 <= 50 && !f->lost), f->lost ? " (appends lost)" : "");
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *out, int code)
{
    fprintf(out,
            "usage: bench_proj [--only PARTS] [--dir DIR] [--runs N] [--events N] [--quick]\n"
            "                  [--batches B1,B2,...] [--cache-batch N] [--lag-rate N]\n"
            "                  [--lag-seconds S] [--projector PATH]\n"
            "  --only PARTS     comma-separated, of: pg (figures 1-3: PostgreSQL\n"
            "                   rebuilds and raw COPY), cache (figures 1, 4, 5: cache\n"
            "                   rebuild and its limits), lag (figure 6: append to cache\n"
            "                   under load, its own log); default pg,cache,lag\n"
            "  --dir DIR        make the bench directory (logs, caches, PostgreSQL\n"
            "                   cluster) under DIR (default $TMPDIR or /var/tmp)\n"
            "  --runs N         repetitions of each measurement (default 3)\n"
            "  --events N       events in the log of figures 1-5 (default 1000000)\n"
            "  --quick          a 100,000-event log and 3 s lag runs, for a smoke run\n"
            "  --batches LIST   PostgreSQL rebuild batch sizes (default 5000,1000,20000;\n"
            "                   the first is the one compared with the targets)\n"
            "  --cache-batch N  cache rebuild batch (events per LMDB transaction,\n"
            "                   default 100000)\n"
            "  --lag-rate N     events/s the writer appends in figure 6 (default 20000)\n"
            "  --lag-seconds S  length of each lag run (default 10)\n"
            "  --projector PATH the projector binary for figure 6 (default: the one\n"
            "                   built beside this bench, %s)\n"
            "  -h, --help       this text\n",
            WS_PROJECTOR_BIN);
    exit(code);
}

static double share(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

static long parse_long(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end)
        usage(stderr, 2);
    return v;
}

static void parse_batches(cfg *c, const char *list)
{
    for (const char *p = list; *p;) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || c->n_batches == MAX_BATCHES)
            usage(stderr, 2);
        c->batches[c->n_batches++] = (size_t)b;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            usage(stderr, 2);
    }
}

static unsigned parse_parts(const char *list)
{
    unsigned parts = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "pg"))
            parts |= PART_PG;
        else if (!strcmp(t, "cache"))
            parts |= PART_CACHE;
        else if (!strcmp(t, "lag"))
            parts |= PART_LAG;
        else
            usage(stderr, 2);
    }
    return parts;
}

static void parse_args(cfg *c, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    const char *tmp = getenv("TMPDIR");
    snprintf(c->parent, sizeof c->parent, "%s", tmp && *tmp ? tmp : "/var/tmp");
    snprintf(c->projector, sizeof c->projector, "%s", WS_PROJECTOR_BIN);
    c->runs = 3;
    c->parts = PART_PG | PART_CACHE | PART_LAG;
    c->cache_batch = 100000;
    c->lag_rate = 20000;
    long long events = -1;
    double lag_secs = -1;
    const char *batches = "5000,1000,20000";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            c->quick = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            usage(stdout, 0);
        if (!v)
            usage(stderr, 2);
        i++;
        if (!strcmp(a, "--dir"))
            snprintf(c->parent, sizeof c->parent, "%s", v);
        else if (!strcmp(a, "--runs"))
            c->runs = (int)parse_long(v);
        else if (!strcmp(a, "--events"))
            events = parse_long(v);
        else if (!strcmp(a, "--batches"))
            batches = v;
        else if (!strcmp(a, "--only"))
            c->parts = parse_parts(v);
        else if (!strcmp(a, "--cache-batch"))
            c->cache_batch = (size_t)parse_long(v);
        else if (!strcmp(a, "--lag-rate"))
            c->lag_rate = parse_long(v);
        else if (!strcmp(a, "--lag-seconds"))
            lag_secs = (double)parse_long(v);
        else if (!strcmp(a, "--projector"))
            snprintf(c->projector, sizeof c->projector, "%s", v);
        else
            usage(stderr, 2);
    }
    parse_batches(c, batches);
    c->events = events >= 0 ? (uint64_t)events : c->quick ? 100000 : 1000000;
    c->lag_secs = lag_secs > 0 ? lag_secs : c->quick ? 3 : 10;
    if (c->runs < 1 || c->events < 10000 || !c->n_batches || !c->parts ||
        c->cache_batch < 1 || c->lag_rate < 100 || c->lag_rate > 2000000)
        usage(stderr, 2);
}

/* Figure 1: the log, made and described. */
static void log_part(const cfg *c, const char *logdir, gen_res *g)
{
    fprintf(stderr, "[log] %llu events through wr_process\n", (unsigned long long)c->events);
    gen_log(logdir, c->events, g);
    bm_progress("made %llu events (%llu commands) in %.2f s", (unsigned long long)g->events,
                (unsigned long long)g->cmds, g->secs);
    printf("\n1. the log: %llu events from %llu commands through wr_process (1,000 commands\n"
           "   per call, one durable append each; average record %.1f bytes)\n",
           (unsigned long long)g->events, (unsigned long long)(g->cmds + N_WATCHES),
           g->avg_rec);
    printf("  commands: %u watch.add, then %.1f%% place order (guest, 1-3 lines),\n"
           "            %.1f%% status change, %.1f%% cancellation, %.1f%% restock\n",
           N_WATCHES, share(g->by_cmd[C_ORDER], g->cmds), share(g->by_cmd[C_STATUS], g->cmds),
           share(g->by_cmd[C_CANCEL], g->cmds), share(g->by_cmd[C_RESTOCK], g->cmds));
    printf("  events:   ");
    int col = 0;
    for (int t = 1; t < EV_T_COUNT; t++) {
        if (!g->by_type[t])
            continue;
        if (t == EV_T_STOCK_ADJUSTED) {
            for (int k = 0; k < EV_stock_reason_COUNT; k++)
                if (g->by_reason[k]) {
                    printf("%s%s (%s) %.1f%%", col++ % 3 ? ", " : col > 1 ? ",\n            " : "",
                           ev_type_name((ev_type)t), ev_enum_name(EV_ENUMSET_stock_reason, k),
                           share(g->by_reason[k], g->events));
                }
            continue;
        }
        printf("%s%s %.1f%%", col++ % 3 ? ", " : col > 1 ? ",\n            " : "",
               ev_type_name((ev_type)t), share(g->by_type[t], g->events));
    }
    printf("\n  orders: %llu placed, %llu delivered, %llu cancelled; %.2f events per command\n",
           (unsigned long long)g->orders, (unsigned long long)g->delivered,
           (unsigned long long)g->by_cmd[C_CANCEL],
           (double)g->events / (double)(g->cmds + N_WATCHES));
    printf("  %-34s %10.0f events/s (%.0f commands/s; %.2f s)\n", "generation",
           (double)g->events / g->secs, (double)(g->cmds + N_WATCHES) / g->secs, g->secs);
    fflush(stdout);
    char m[64];
    add_row("log generation (wr_process)", "(reference)",
            rate_str((double)g->events / g->secs, "events/s", m, sizeof m), "-");
}

static void pg_settings(PGconn *admin)
{
    char v[6][128];
    pg_val(admin, "SHOW server_version", v[0], sizeof v[0]);
    pg_val(admin, "SHOW shared_buffers", v[1], sizeof v[1]);
    pg_val(admin, "SHOW max_wal_size", v[2], sizeof v[2]);
    pg_val(admin, "SHOW synchronous_commit", v[3], sizeof v[3]);
    pg_val(admin, "SHOW wal_level", v[4], sizeof v[4]);
    pg_val(admin, "SHOW fsync", v[5], sizeof v[5]);
    printf("\nPostgreSQL %s (ops/pg.sh defaults): shared_buffers %s, max_wal_size %s,\n"
           "  synchronous_commit %s, wal_level %s, fsync %s\n",
           v[0], v[1], v[2], v[3], v[4], v[5]);
    fflush(stdout);
}

/* Figures 2 and 3 over --runs runs, interleaved run by run. */
typedef struct pg_fig {
    series *rb, raw;
    dvec *rb_batches, *rb_open;
    dvec raw_rows, raw_mbs, ratios;
    uint64_t dump_rows, dump_bytes;
} pg_fig;

/* The first rebuild's tables, into memory for figure 3. */
static void keep_dump(pg_fig *f, PGconn *admin, const char *dbname)
{
    PGconn *db = pg_connect(dbname);
    double t0 = bm_now_s();
    dump_tables(db);
    PQfinish(db);
    drop_db(admin, dbname);
    for (size_t i = 0; i < N_TABLES; i++) {
        f->dump_rows += g_tables[i].rows;
        f->dump_bytes += g_tables[i].len;
    }
    bm_progress("dumped %llu rows, %.1f MB of COPY text, in %.2f s",
                (unsigned long long)f->dump_rows, (double)f->dump_bytes / 1e6,
                bm_now_s() - t0);
}

static void pg_runs(const cfg *c, log_t *log, uint64_t events, PGconn *admin, pg_fig *f)
{
    char fp0[1024] = "";
    for (int r = 0; r < c->runs; r++) {
        for (int b = 0; b < c->n_batches; b++) {
            char dbname[64];
            bool keep = r == 0 && b == 0;
            rb_res x = bench_rebuild(log, events, admin, c->batches[b], r, keep, dbname,
                                     sizeof dbname);
            series_push(&f->rb[b], x.events_s, &x.ph, x.db_mb);
            dv_push(&f->rb_batches[b], (double)x.batches);
            dv_push(&f->rb_open[b], x.open_s);
            bm_progress("run %d, batch %zu: %.0f events/s (%.2f s; CPU: client %.2f s, "
                        "backend %.2f s, other pg %.2f s; WAL %.0f MB; %.0f MB)",
                        r + 1, c->batches[b], x.events_s, x.ph.wall, x.ph.client_cpu,
                        x.ph.backend_cpu, x.ph.other_cpu, x.ph.wal_mb, x.db_mb);
            if (!fp0[0])
                snprintf(fp0, sizeof fp0, "%s", x.fp);
            else if (strcmp(x.fp, fp0) != 0)
                die("the rebuild with batch %zu differs from the first one:\n  %s\n  %s",
                    c->batches[b], x.fp, fp0);
            if (keep)
                keep_dump(f, admin, dbname);
        }
        raw_res y = bench_raw(events, admin, r);
        if (strcmp(y.fp, fp0) != 0)
            die("the raw COPY's tables differ from the rebuild's:\n  %s\n  %s", y.fp, fp0);
        series_push(&f->raw, y.events_s, &y.ph, y.db_mb);
        /* Rebuild and raw COPY minutes apart: the ratio of each run is
         * steadier than the ratio of the medians when the host drifts. */
        dv_push(&f->ratios, f->rb[0].rate.v[f->rb[0].rate.n - 1] / y.events_s);
        dv_push(&f->raw_rows, y.rows_s);
        dv_push(&f->raw_mbs, y.mb_s);
        bm_progress("run %d, raw COPY: %.0f events/s equivalent (%.2f s; %.0f rows/s; CPU: "
                    "client %.2f s, backend %.2f s, other pg %.2f s; WAL %.0f MB; %.0f MB)",
                    r + 1, y.events_s, y.ph.wall, y.rows_s, y.ph.client_cpu,
                    y.ph.backend_cpu, y.ph.other_cpu, y.ph.wal_mb, y.db_mb);
    }
}

static void pg_print(const cfg *c, uint64_t events, const pg_fig *f)
{
    printf("  final rows:");
    for (size_t i = 0; i < N_TABLES; i++)
        printf("%s%s %s %llu", i ? "," : "", i && i % 4 == 0 ? "\n             " : "",
               g_tables[i].name, (unsigned long long)g_tables[i].rows);
    printf("\n  (%llu rows, %.1f MB as COPY text; every rebuild and every raw COPY\n"
           "  gave the same row count and sum(source_pos) in every table)\n",
           (unsigned long long)f->dump_rows, (double)f->dump_bytes / 1e6);
    printf("\n2. full rebuild into a fresh database: proj_pg_open, then proj_catch_up\n"
           "   over the whole log (%llu events), the page cache warm\n",
           (unsigned long long)events);
    for (int b = 0; b < c->n_batches; b++) {
        printf("  batch %zu%s (%.0f transactions; proj_pg_open %.2f s, not timed):\n",
               c->batches[b], b == 0 ? " (the figure with targets)" : "",
               st3(&f->rb_batches[b]).med, st3(&f->rb_open[b]).med);
        series_print(&f->rb[b], "  events/s");
    }
    char label[64];
    printf("\n3. raw COPY of the final rows into a fresh migrated database (one\n"
           "   transaction, the same tables and indexes): the machine's limit\n");
    series_print(&f->raw, "events/s equivalent");
    print_stat("rows/s", &f->raw_rows, "/s");
    print_num("COPY text", &f->raw_mbs, "%.1f", "MB/s");
    snprintf(label, sizeof label, "rebuild (batch %zu) / raw COPY", c->batches[0]);
    print_num(label, &f->ratios, "%.2f", "per run");
    fflush(stdout);
}

static void pg_rows(const cfg *c, const pg_fig *f)
{
    char m[64], t[64];
    double rb_med = st3(&f->rb[0].rate).med, ratio = st3(&f->ratios).med;
    for (int b = 0; b < c->n_batches; b++) {
        double v = st3(&f->rb[b].rate).med;
        snprintf(t, sizeof t, "rebuild, batch %zu", c->batches[b]);
        rate_str(v, "events/s", m, sizeof m);
        if (b == 0)
            add_row(t, ">= 100k events/s", m, "%.2fx  %s", v / 1e5, verdict(v >= 1e5));
        else
            add_row(t, "(reference)", m, "%.2f of batch %zu", v / rb_med, c->batches[0]);
    }
    add_row("raw COPY of the final rows", "(machine limit)",
            rate_str(st3(&f->raw.rate).med, "events/s", m, sizeof m), "-");
    snprintf(t, sizeof t, "rebuild (batch %zu) / raw COPY", c->batches[0]);
    snprintf(m, sizeof m, "%.2f (runs %.2f-%.2f)", ratio, st3(&f->ratios).min,
             st3(&f->ratios).max);
    add_row(t, ">= 0.50", m, "%s", verdict(ratio >= 0.5));
}

static void pg_fig_free(const cfg *c, pg_fig *f)
{
    for (int b = 0; b < c->n_batches; b++) {
        series_free(&f->rb[b]);
        free(f->rb_batches[b].v);
        free(f->rb_open[b].v);
    }
    free(f->rb);
    free(f->rb_batches);
    free(f->rb_open);
    series_free(&f->raw);
    free(f->raw_rows.v);
    free(f->raw_mbs.v);
    free(f->ratios.v);
    for (size_t i = 0; i < N_TABLES; i++)
        free(g_tables[i].data);
}

/* Figures 2 and 3: a private cluster, the rebuilds and raw COPYs, stopped. */
static void pg_part(const cfg *c, log_t *log, uint64_t events)
{
    fprintf(stderr, "[pg] PostgreSQL: ops/pg.sh start %s\n", g_pgdir);
    cluster_start();
    PGconn *admin = pg_connect("postgres");
    pg_settings(admin);
    fprintf(stderr, "[pg] rebuilds (%d batch sizes) and raw COPY, %d runs\n", c->n_batches,
            c->runs);
    pg_fig f;
    memset(&f, 0, sizeof f);
    f.rb = calloc((size_t)c->n_batches, sizeof *f.rb);
    f.rb_batches = calloc((size_t)c->n_batches, sizeof *f.rb_batches);
    f.rb_open = calloc((size_t)c->n_batches, sizeof *f.rb_open);
    if (!f.rb || !f.rb_batches || !f.rb_open)
        die("out of memory");
    pg_runs(c, log, events, admin, &f);
    pg_print(c, events, &f);
    pg_rows(c, &f);
    PQfinish(admin);
    fprintf(stderr, "[pg] stopping PostgreSQL\n");
    cluster_stop();
    pg_fig_free(c, &f);
}

/* Figures 4 and 5. */
static void cache_part(const cfg *c, log_t *log, uint64_t events)
{
    fprintf(stderr, "[cache] rebuilds (batch %zu), raw scan and raw LMDB writes, %d runs\n",
            c->cache_batch, c->runs);
    cache_fig f;
    memset(&f, 0, sizeof f);
    cache_runs(c, log, events, &f);
    cache_print(c, events, &f);
    cache_rows(c, &f);
    cache_fig_free(&f);
    free(g_rec.buf);
    memset(&g_rec, 0, sizeof g_rec);
}

/* Figure 6. */
static void lag_part(const cfg *c)
{
    fprintf(stderr, "[lag] %ld events/s for %.0f s, %d runs, projector %s\n", c->lag_rate,
            c->lag_secs, c->runs, c->projector);
    lag_fig f;
    memset(&f, 0, sizeof f);
    lag_runs(c, &f);
    lag_print(c, &f);
    lag_rows(c, &f);
    lag_fig_free(&f);
}

static void make_root(const cfg *c)
{
    snprintf(g_pgsh, sizeof g_pgsh, "%s/ops/pg.sh", WS_SOURCE_DIR);
    if ((c->parts & PART_PG) && access(g_pgsh, R_OK) != 0)
        die("cannot read %s: %s", g_pgsh, strerror(errno));
    snprintf(g_root, sizeof g_root, "%s/ws-benchproj-XXXXXX", c->parent);
    if (!mkdtemp(g_root)) {
        g_root[0] = 0;
        die("cannot make a directory under %s: %s", c->parent, strerror(errno));
    }
    snprintf(g_pgdir, sizeof g_pgdir, "%s/pg", g_root);
}

static void print_header(const cfg *c)
{
    char hostname[256] = "?";
    gethostname(hostname, sizeof hostname - 1);
    time_t tnow = time(NULL);
    char date[64], parts[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&tnow));
    snprintf(parts, sizeof parts, "%s%s%s", c->parts & PART_PG ? " pg" : "",
             c->parts & PART_CACHE ? " cache" : "", c->parts & PART_LAG ? " lag" : "");
    printf("bench_proj  %s  host %s  cpus %ld  load %.2f  dir %s  runs %d  events %llu%s\n"
           "  parts:%s\n",
           date, hostname, sysconf(_SC_NPROCESSORS_ONLN), bm_loadavg(), g_root, c->runs,
           (unsigned long long)c->events, c->quick ? "  (--quick)" : "", parts);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    cfg c;
    parse_args(&c, argc, argv);
    make_root(&c);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN); /* `bench_proj | head` must still clean up */
    init_catalogue();
    print_header(&c);

    if (c.parts & (PART_PG | PART_CACHE)) {
        char logdir[4300], uri[4400], err[1024];
        snprintf(logdir, sizeof logdir, "%s/log", g_root);
        gen_res g;
        log_part(&c, logdir, &g);
        log_t *log;
        snprintf(uri, sizeof uri, "lmdb:%s", logdir);
        if (log_open(uri, LOG_READ, &log, err, sizeof err) != 0)
            die("%s", err);
        if (c.parts & PART_PG)
            pg_part(&c, log, g.events);
        if (c.parts & PART_CACHE)
            cache_part(&c, log, g.events);
        log_close(log);
    }
    if (c.parts & PART_LAG)
        lag_part(&c);

    print_summary(c.runs);
    fprintf(stderr, "removing %s\n", g_root);
    rmtree(g_root);
    return 0;
}
