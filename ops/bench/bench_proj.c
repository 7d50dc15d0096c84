/* bench_proj.c - rebuild rate of the PostgreSQL read models on this machine.
 *
 *   build/ops/bench/bench_proj [--dir DIR] [--runs N] [--events N] [--quick]
 *                              [--batches B1,B2,...]
 *
 * Figures (see ops/bench/README.md for what each one means):
 *   1. the log: --events events made through the real writer (wr_process):
 *      a 500-watch catalogue, then guest orders (1-3 lines), order status
 *      changes (some cancellations) and restocks; the mix and the rate
 *   2. full rebuild: a fresh database, proj_pg_open + proj_catch_up over the
 *      whole log, with batches of 5,000 (the projector's default), 1,000 and
 *      20,000 events
 *   3. the machine's limit: the final rows of every read-model table, dumped
 *      from a rebuilt database (COPY ... TO STDOUT, into memory), COPYed back
 *      into a fresh migrated database in one transaction; "events/s
 *      equivalent" = events in the log / seconds of that COPY
 *
 * It starts a private PostgreSQL cluster with ops/pg.sh in a fresh directory
 * (under $TMPDIR, else /var/tmp, or under --dir), and stops it and removes
 * the directory at the end, on an error and on Ctrl-C/SIGTERM. Progress goes
 * to stderr, figures to stdout.
 */
#define _GNU_SOURCE
#include "measure.h"
#include "core/event.h"
#include "core/log.h"
#include "core/writer.h"
#include "projections/migrate.h"
#include "projections/proj.h"
#include "projections/proj_pg.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
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

/* ------------------------------------------------------------- settings */

#define MAX_BATCHES 8

typedef struct cfg {
    char parent[2048]; /* where the fresh bench directory is made */
    int runs;
    bool quick;
    uint64_t events;   /* log size */
    size_t batches[MAX_BATCHES]; /* the first one is the one with targets */
    int n_batches;
} cfg;

static char g_root[4096];  /* the fresh bench directory */
static char g_pgdir[4200]; /* the cluster's folder, inside g_root */
static char g_pgsh[4200];  /* ops/pg.sh */
static volatile pid_t g_pm_pid; /* the postmaster, while it runs */
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
    cluster_stop();
    if (g_root[0])
        rmtree(g_root); /* leave nothing behind */
    exit(1);
}

/* Ctrl-C or kill: an immediate shutdown of the cluster (SIGQUIT to the
 * postmaster), then remove the bench directory (not strictly
 * async-signal-safe, but the process is about to die anyway). */
static void on_signal(int sig)
{
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

static int64_t watch_price(int i) { return 12900 + 1379 * (int64_t)(i % 97); }

static void init_catalogue(void)
{
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
    for (int i = 0; i < 32; i++)
        wc.email_key[i] = (uint8_t)(i * 7 + 1);
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

/* Makes the log: the catalogue, then commands 1,000 per wr_process (one
 * durable append each) until `target` events. */
static void gen_log(const char *dir, uint64_t target, gen_res *g)
{
    memset(g, 0, sizeof *g);
    wr_writer *w = open_writer(dir);
    double t0 = bm_now_s(), shown = t0;
    add_catalogue(w, g);
    enum { B = 1000 };
    wr_req *reqs = calloc(B, sizeof *reqs);
    wr_req **pp = malloc(B * sizeof *pp);
    dec_line_in(*lines)[3] = calloc(B, sizeof *lines);
    uint8_t *kind = malloc(B);
    size_t cap_open = (size_t)(target / 2 + 16);
    open_order *open = malloc(cap_open * sizeof *open);
    if (!reqs || !pp || !lines || !kind || !open)
        die("out of memory");
    size_t head = 0, tail = 0; /* open orders: open[head..tail), oldest first */
    for (int i = 0; i < B; i++)
        pp[i] = &reqs[i];
    uint64_t seed = 0x9E3779B97F4A7C15ull, t_us = T0_US;
    while (g->events < target) {
        /* Near the end, small batches: at most 4 events per command. */
        uint64_t left = (target - g->events) / 4;
        size_t n = left >= B ? B : left ? (size_t)left : 1;
        for (size_t i = 0; i < n; i++) {
            wr_req *r = &reqs[i];
            memset(&r->cmd, 0, sizeof r->cmd);
            dec_cmd *c = &r->cmd;
            c->now_us = (t_us += US_PER_CMD);
            uint64_t x = bm_rnd(&seed) % 100;
            if (x < PCT_ORDERS || head == tail) {
                kind[i] = C_ORDER;
                c->kind = DEC_ORDER_PLACE;
                c->correlation = EV_STR("req-web");
                c->actor = EV_STR("guest");
                uint32_t k = 1 + (uint32_t)(bm_rnd(&seed) % 3);
                for (uint32_t l = 0; l < k; l++) {
                    uint64_t y = bm_rnd(&seed);
                    int wi = (int)(y % N_WATCHES);
                    memcpy(lines[i][l].watch_id, g_watch_id[wi], 16);
                    lines[i][l].quantity = 1 + (int64_t)((y >> 32) % 2);
                    lines[i][l].unit_price = watch_price(wi);
                    lines[i][l].has_price = true;
                }
                c->u.order.lines = lines[i];
                c->u.order.n_lines = k;
                c->u.order.shipping_address =
                    EV_STR("Jane Doe, 12 Rue de la Paix, 75002 Paris, FR");
                c->u.order.guest_token_hash = EV_STR(GUEST_TOKEN_HASH);
            } else if (x < PCT_ORDERS + PCT_STATUS) {
                size_t span = tail - head < WINDOW ? tail - head : WINDOW;
                size_t j = head + (size_t)(bm_rnd(&seed) % span);
                open_order *o = &open[j];
                c->correlation = EV_STR("req-backoffice");
                c->actor = EV_STR("system");
                c->actor_system = true;
                c->u.status.order_id = o->id;
                bool done = false;
                if (o->status != EV_order_status_SHIPPED && bm_rnd(&seed) % 100 < PCT_CANCEL) {
                    kind[i] = C_CANCEL;
                    c->kind = DEC_ORDER_CANCEL;
                    c->u.status.reason = EV_STR("customer asked");
                    done = true;
                } else {
                    kind[i] = C_STATUS;
                    c->kind = DEC_ORDER_SET_STATUS;
                    o->status = o->status == EV_order_status_PENDING ? EV_order_status_PROCESSING
                                : o->status == EV_order_status_PROCESSING
                                    ? EV_order_status_SHIPPED
                                    : EV_order_status_DELIVERED;
                    c->u.status.status = o->status;
                    if (o->status == EV_order_status_DELIVERED) {
                        done = true;
                        g->delivered++;
                    }
                }
                if (done) /* out of the open orders: the oldest takes its place */
                    open[j] = open[head++];
            } else {
                kind[i] = C_RESTOCK;
                c->kind = DEC_STOCK_ADJUST;
                c->correlation = EV_STR("req-backoffice");
                c->actor = EV_STR("system");
                c->actor_system = true;
                uint64_t y = bm_rnd(&seed);
                memcpy(c->u.stock.watch_id, g_watch_id[y % N_WATCHES], 16);
                c->u.stock.quantity = 10 + (int64_t)((y >> 32) % 41);
                c->u.stock.reason = EV_stock_reason_RESTOCK;
            }
        }
        if (wr_process(w, pp, n) != 0)
            die("wr_process: %s", log_errmsg(wr_log(w)));
        for (size_t i = 0; i < n; i++) {
            wr_req *r = &reqs[i];
            if (r->err || r->out.reason != DEC_OK || !r->out.n_ev)
                die("command %llu (kind %d) refused: %s (%s)",
                    (unsigned long long)(g->cmds + i), (int)r->cmd.kind,
                    dec_reason_code(r->out.reason), r->out.message ? r->out.message : "");
            count_events(g, &r->out);
            g->by_cmd[kind[i]]++;
            if (kind[i] == C_ORDER) {
                if (tail == cap_open)
                    die("too many open orders");
                open[tail++] = (open_order){(uint32_t)r->out.id, EV_order_status_PENDING};
                g->orders++;
            }
        }
        g->cmds += n;
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
    free(open);
    free(kind);
    free(lines);
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

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_proj [--dir DIR] [--runs N] [--events N] [--quick]\n"
            "                  [--batches B1,B2,...]\n"
            "  --dir DIR       make the bench directory (log and PostgreSQL cluster)\n"
            "                  under DIR (default $TMPDIR or /var/tmp)\n"
            "  --runs N        repetitions of each measurement (default 3)\n"
            "  --events N      events in the log (default 1000000)\n"
            "  --quick         a 100,000-event log, for a smoke run\n"
            "  --batches LIST  rebuild batch sizes (default 5000,1000,20000; the\n"
            "                  first is the one compared with the targets)\n");
    exit(2);
}

static const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

static double share(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

int main(int argc, char **argv)
{
    cfg c;
    memset(&c, 0, sizeof c);
    const char *tmp = getenv("TMPDIR");
    snprintf(c.parent, sizeof c.parent, "%s", tmp && *tmp ? tmp : "/var/tmp");
    c.runs = 3;
    long long events = -1;
    const char *batches = "5000,1000,20000";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            snprintf(c.parent, sizeof c.parent, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            c.runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            c.quick = true;
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
            batches = argv[++i];
        else
            usage();
    }
    for (const char *p = batches; *p;) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b < 1 || c.n_batches == MAX_BATCHES)
            usage();
        c.batches[c.n_batches++] = (size_t)b;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            usage();
    }
    c.events = events >= 0 ? (uint64_t)events : c.quick ? 100000 : 1000000;
    if (c.runs < 1 || c.events < 10000 || !c.n_batches)
        usage();

    snprintf(g_pgsh, sizeof g_pgsh, "%s/ops/pg.sh", WS_SOURCE_DIR);
    if (access(g_pgsh, R_OK) != 0)
        die("cannot read %s: %s", g_pgsh, strerror(errno));
    snprintf(g_root, sizeof g_root, "%s/ws-benchproj-XXXXXX", c.parent);
    if (!mkdtemp(g_root))
        die("cannot make a directory under %s: %s", c.parent, strerror(errno));
    snprintf(g_pgdir, sizeof g_pgdir, "%s/pg", g_root);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN); /* `bench_proj | head` must still clean up */
    init_catalogue();

    char hostname[256] = "?";
    gethostname(hostname, sizeof hostname - 1);
    time_t tnow = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&tnow));
    printf("bench_proj  %s  host %s  cpus %ld  load %.2f  dir %s  runs %d  events %llu%s\n",
           date, hostname, sysconf(_SC_NPROCESSORS_ONLN), bm_loadavg(), g_root, c.runs,
           (unsigned long long)c.events, c.quick ? "  (--quick)" : "");
    fflush(stdout);

    /* ---- the cluster */
    fprintf(stderr, "[0/3] PostgreSQL: ops/pg.sh start %s\n", g_pgdir);
    cluster_start();
    PGconn *admin = pg_connect("postgres");
    {
        char v[6][128];
        pg_val(admin, "SHOW server_version", v[0], sizeof v[0]);
        pg_val(admin, "SHOW shared_buffers", v[1], sizeof v[1]);
        pg_val(admin, "SHOW max_wal_size", v[2], sizeof v[2]);
        pg_val(admin, "SHOW synchronous_commit", v[3], sizeof v[3]);
        pg_val(admin, "SHOW wal_level", v[4], sizeof v[4]);
        pg_val(admin, "SHOW fsync", v[5], sizeof v[5]);
        printf("PostgreSQL %s (ops/pg.sh defaults): shared_buffers %s, max_wal_size %s,\n"
               "  synchronous_commit %s, wal_level %s, fsync %s\n",
               v[0], v[1], v[2], v[3], v[4], v[5]);
        fflush(stdout);
    }

    /* ---- 1. the log */
    fprintf(stderr, "[1/3] the log: %llu events through wr_process\n",
            (unsigned long long)c.events);
    char logdir[4300], uri[4400], err[1024];
    snprintf(logdir, sizeof logdir, "%s/log", g_root);
    gen_res g;
    gen_log(logdir, c.events, &g);
    bm_progress("made %llu events (%llu commands) in %.2f s", (unsigned long long)g.events,
             (unsigned long long)g.cmds, g.secs);
    printf("\n1. the log: %llu events from %llu commands through wr_process (1,000 commands\n"
           "   per call, one durable append each; average record %.1f bytes)\n",
           (unsigned long long)g.events, (unsigned long long)(g.cmds + N_WATCHES), g.avg_rec);
    printf("  commands: %u watch.add, then %.1f%% place order (guest, 1-3 lines),\n"
           "            %.1f%% status change, %.1f%% cancellation, %.1f%% restock\n",
           N_WATCHES, share(g.by_cmd[C_ORDER], g.cmds), share(g.by_cmd[C_STATUS], g.cmds),
           share(g.by_cmd[C_CANCEL], g.cmds), share(g.by_cmd[C_RESTOCK], g.cmds));
    printf("  events:   ");
    int col = 0;
    for (int t = 1; t < EV_T_COUNT; t++) {
        if (!g.by_type[t])
            continue;
        if (t == EV_T_STOCK_ADJUSTED) {
            for (int k = 0; k < EV_stock_reason_COUNT; k++)
                if (g.by_reason[k]) {
                    printf("%s%s (%s) %.1f%%", col++ % 3 ? ", " : col > 1 ? ",\n            " : "",
                           ev_type_name((ev_type)t), ev_enum_name(EV_ENUMSET_stock_reason, k),
                           share(g.by_reason[k], g.events));
                }
            continue;
        }
        printf("%s%s %.1f%%", col++ % 3 ? ", " : col > 1 ? ",\n            " : "",
               ev_type_name((ev_type)t), share(g.by_type[t], g.events));
    }
    printf("\n  orders: %llu placed, %llu delivered, %llu cancelled; %.2f events per command\n",
           (unsigned long long)g.orders, (unsigned long long)g.delivered,
           (unsigned long long)g.by_cmd[C_CANCEL],
           (double)g.events / (double)(g.cmds + N_WATCHES));
    printf("  %-34s %10.0f events/s (%.0f commands/s; %.2f s)\n", "generation",
           (double)g.events / g.secs, (double)(g.cmds + N_WATCHES) / g.secs, g.secs);
    fflush(stdout);

    log_t *log;
    snprintf(uri, sizeof uri, "lmdb:%s", logdir);
    if (log_open(uri, LOG_READ, &log, err, sizeof err) != 0)
        die("%s", err);

    /* ---- 2. and 3., interleaved run by run */
    fprintf(stderr, "[2/3] rebuilds (batches %s) and [3/3] raw COPY, %d runs\n", batches,
            c.runs);
    series *rb = calloc((size_t)c.n_batches, sizeof *rb);
    dvec *rb_batches = calloc((size_t)c.n_batches, sizeof *rb_batches);
    dvec *rb_open = calloc((size_t)c.n_batches, sizeof *rb_open);
    series raw;
    memset(&raw, 0, sizeof raw);
    dvec raw_rows = {0}, raw_mbs = {0}, ratios = {0};
    if (!rb || !rb_batches || !rb_open)
        die("out of memory");
    char fp0[1024] = "";
    uint64_t dump_rows = 0, dump_bytes = 0;
    for (int r = 0; r < c.runs; r++) {
        for (int b = 0; b < c.n_batches; b++) {
            char dbname[64], fp[1024];
            bool keep = r == 0 && b == 0;
            rb_res x = bench_rebuild(log, g.events, admin, c.batches[b], r, keep, dbname,
                                     sizeof dbname);
            series_push(&rb[b], x.events_s, &x.ph, x.db_mb);
            dv_push(&rb_batches[b], (double)x.batches);
            dv_push(&rb_open[b], x.open_s);
            bm_progress("run %d, batch %zu: %.0f events/s (%.2f s; CPU: client %.2f s, backend "
                     "%.2f s, other pg %.2f s; WAL %.0f MB; %.0f MB)",
                     r + 1, c.batches[b], x.events_s, x.ph.wall, x.ph.client_cpu,
                     x.ph.backend_cpu, x.ph.other_cpu, x.ph.wal_mb, x.db_mb);
            snprintf(fp, sizeof fp, "%s", x.fp);
            if (!fp0[0])
                snprintf(fp0, sizeof fp0, "%s", fp);
            else if (strcmp(fp, fp0) != 0)
                die("the rebuild with batch %zu differs from the first one:\n  %s\n  %s",
                    c.batches[b], fp, fp0);
            if (keep) {
                PGconn *db = pg_connect(dbname);
                double t0 = bm_now_s();
                dump_tables(db);
                PQfinish(db);
                drop_db(admin, dbname);
                for (size_t i = 0; i < N_TABLES; i++) {
                    dump_rows += g_tables[i].rows;
                    dump_bytes += g_tables[i].len;
                }
                bm_progress("dumped %llu rows, %.1f MB of COPY text, in %.2f s",
                         (unsigned long long)dump_rows, (double)dump_bytes / 1e6,
                         bm_now_s() - t0);
            }
        }
        raw_res y = bench_raw(g.events, admin, r);
        if (strcmp(y.fp, fp0) != 0)
            die("the raw COPY's tables differ from the rebuild's:\n  %s\n  %s", y.fp, fp0);
        series_push(&raw, y.events_s, &y.ph, y.db_mb);
        /* Rebuild and raw COPY minutes apart: the ratio of each run is
         * steadier than the ratio of the medians when the host drifts. */
        dv_push(&ratios, rb[0].rate.v[rb[0].rate.n - 1] / y.events_s);
        dv_push(&raw_rows, y.rows_s);
        dv_push(&raw_mbs, y.mb_s);
        bm_progress("run %d, raw COPY: %.0f events/s equivalent (%.2f s; %.0f rows/s; CPU: "
                 "client %.2f s, backend %.2f s, other pg %.2f s; WAL %.0f MB; %.0f MB)",
                 r + 1, y.events_s, y.ph.wall, y.rows_s, y.ph.client_cpu, y.ph.backend_cpu,
                 y.ph.other_cpu, y.ph.wal_mb, y.db_mb);
    }
    log_close(log);

    printf("  final rows:");
    for (size_t i = 0; i < N_TABLES; i++)
        printf("%s%s %s %llu", i ? "," : "", i && i % 4 == 0 ? "\n             " : "",
               g_tables[i].name, (unsigned long long)g_tables[i].rows);
    printf("\n  (%llu rows, %.1f MB as COPY text; every rebuild and every raw COPY\n"
           "  gave the same row count and sum(source_pos) in every table)\n",
           (unsigned long long)dump_rows, (double)dump_bytes / 1e6);

    printf("\n2. full rebuild into a fresh database: proj_pg_open, then proj_catch_up\n"
           "   over the whole log (%llu events), the page cache warm\n",
           (unsigned long long)g.events);
    for (int b = 0; b < c.n_batches; b++) {
        printf("  batch %zu%s (%.0f transactions; proj_pg_open %.2f s, not timed):\n",
               c.batches[b], b == 0 ? " (the figure with targets)" : "",
               st3(&rb_batches[b]).med, st3(&rb_open[b]).med);
        series_print(&rb[b], "  events/s");
    }
    char label[64];
    printf("\n3. raw COPY of the final rows into a fresh migrated database (one\n"
           "   transaction, the same tables and indexes): the machine's limit\n");
    series_print(&raw, "events/s equivalent");
    print_stat("rows/s", &raw_rows, "/s");
    print_num("COPY text", &raw_mbs, "%.1f", "MB/s");
    snprintf(label, sizeof label, "rebuild (batch %zu) / raw COPY", c.batches[0]);
    print_num(label, &ratios, "%.2f", "per run");
    fflush(stdout);

    /* ---- summary */
    double gen_rate = (double)g.events / g.secs;
    double rb_med = st3(&rb[0].rate).med, raw_med = st3(&raw.rate).med;
    double ratio = st3(&ratios).med;
    char m[64], t[64], h[32];
    printf("\nsummary (median of %d runs; 1-minute load average now %.2f)\n", c.runs,
           bm_loadavg());
    printf("  %-34s | %-22s | %-24s | %s\n", "figure", "target", "measured",
           "ratio / verdict");
    printf("  %.34s-+-%.22s-+-%.24s-+-%.20s\n", "----------------------------------------",
           "----------------------------------------",
           "----------------------------------------",
           "----------------------------------------");
    snprintf(m, sizeof m, "%s events/s", bm_human(gen_rate, h, sizeof h));
    printf("  %-34s | %-22s | %-24s | %s\n", "log generation (wr_process)", "(reference)", m,
           "-");
    for (int b = 0; b < c.n_batches; b++) {
        double v = st3(&rb[b].rate).med;
        snprintf(t, sizeof t, "rebuild, batch %zu", c.batches[b]);
        snprintf(m, sizeof m, "%s events/s", bm_human(v, h, sizeof h));
        if (b == 0)
            printf("  %-34s | %-22s | %-24s | %.2fx  %s\n", t, ">= 100k events/s", m, v / 1e5,
                   verdict(v >= 1e5));
        else
            printf("  %-34s | %-22s | %-24s | %.2f of batch %zu\n", t, "(reference)", m,
                   v / rb_med, c.batches[0]);
    }
    snprintf(m, sizeof m, "%s events/s", bm_human(raw_med, h, sizeof h));
    printf("  %-34s | %-22s | %-24s | %s\n", "raw COPY of the final rows", "(machine limit)",
           m, "-");
    snprintf(t, sizeof t, "rebuild (batch %zu) / raw COPY", c.batches[0]);
    snprintf(m, sizeof m, "%.2f (runs %.2f-%.2f)", ratio, st3(&ratios).min, st3(&ratios).max);
    printf("  %-34s | %-22s | %-24s | %s\n", t, ">= 0.50", m, verdict(ratio >= 0.5));

    PQfinish(admin);
    fprintf(stderr, "stopping PostgreSQL and removing %s\n", g_root);
    cluster_stop();
    rmtree(g_root);
    for (int b = 0; b < c.n_batches; b++) {
        series_free(&rb[b]);
        free(rb_batches[b].v);
        free(rb_open[b].v);
    }
    free(rb);
    free(rb_batches);
    free(rb_open);
    series_free(&raw);
    free(raw_rows.v);
    free(raw_mbs.v);
    free(ratios.v);
    for (size_t i = 0; i < N_TABLES; i++)
        free(g_tables[i].data);
    return 0;
}
