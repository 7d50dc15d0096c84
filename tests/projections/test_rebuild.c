/* test_rebuild.c - a full rebuild beside the live read models, swapped in
 * while a reader queries in a loop: the reader never sees an error or a
 * partial catalogue, and the live projector carries on afterwards. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/support.h"
#include "core/writer.h"
#include "pg_support.h"
#include "proj_pg.h"
#include "rebuild.h"

#define N_WATCHES 40

static void wid(int i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x7b;
    id[15] = (uint8_t)i;
}

/* n commands: the catalogue first, then orders. */
static void commands(wr_writer *w, unsigned from, unsigned n)
{
    static wr_req r;
    static dec_line_in l;
    for (unsigned k = from; k < from + n; k++) {
        memset(&r, 0, sizeof r);
        r.cmd = ts_cmd(DEC_ORDER_PLACE, 1764057600000000ull + k * 1000ull);
        r.cmd.causation = (ev_str){NULL, 0};
        if (k < N_WATCHES) {
            r.cmd.kind = DEC_WATCH_ADD;
            wid((int)k, r.cmd.u.watch.watch_id);
            r.cmd.u.watch.watch_name = EV_STR("Shadow watch");
            r.cmd.u.watch.price = 9900;
            r.cmd.u.watch.currency = EV_STR("USD");
            r.cmd.u.watch.set_stock = true;
            r.cmd.u.watch.stock = 100000;
        } else {
            wid((int)(k % N_WATCHES), l.watch_id);
            l.quantity = 1;
            r.cmd.u.order.lines = &l;
            r.cmd.u.order.n_lines = 1;
        }
        wr_req *p = &r;
        cr_assert_eq(wr_process(w, &p, 1), 0);
        cr_assert_eq(r.out.reason, DEC_OK);
    }
}

/* The reader: queries until told to stop; exits 0 if every query worked
 * and always saw the whole catalogue, 1 otherwise, 2 if it ran no query. */
static void reader(const char *conninfo, int stop_fd)
{
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK)
        _exit(1);
    long queries = 0;
    for (;;) {
        char c;
        if (read(stop_fd, &c, 1) >= 0) /* told to stop, or the test is gone */
            break;
        PGresult *r = PQexec(db, "SELECT count(*), sum(stock_quantity) >= 0 FROM watches");
        if (PQresultStatus(r) != PGRES_TUPLES_OK || atoi(PQgetvalue(r, 0, 0)) != N_WATCHES) {
            fprintf(stderr, "reader: %s %s\n", PQresultErrorMessage(r),
                    PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "");
            _exit(1);
        }
        PQclear(r);
        r = PQexec(db, "SELECT count(*) FROM orders o JOIN order_items i USING (order_id)");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "reader: %s\n", PQresultErrorMessage(r));
            _exit(1);
        }
        PQclear(r);
        queries++;
    }
    PQfinish(db);
    _exit(queries > 0 ? 0 : 2);
}

Test(rebuild, swapped_in_while_a_reader_queries)
{
    char dir[256], uri[300], live[512], clean[512], err[1024];
    ts_tmpdir(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/log", dir);
    wr_config cfg = {0};
    cfg.log_uri = uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    wr_writer *w;
    cr_assert_eq(wr_open(&cfg, &w, err, sizeof err), 0, "%s", err);
    commands(w, 0, 8000);

    ts_pg_fresh_db(live, sizeof live);
    ts_pg_fresh_db(clean, sizeof clean);
    proj_pg *p = proj_pg_open(live, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    proj_sink sink = proj_pg_sink(p);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(wr_log(w), &sink, 1000, &st, err, sizeof err), 0, "%s", err);

    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        reader(live, pfd[0]);
    }
    close(pfd[0]);
    usleep(100000);

    /* More events arrive during the rebuild; the live projector follows. */
    commands(w, 8000, 2000);
    proj_stats rs;
    cr_assert_eq(proj_pg_rebuild(wr_log(w), live, 500, NULL, NULL, &rs, err, sizeof err), 0,
                 "%s", err);
    uint64_t end;
    log_end(wr_log(w), &end);
    cr_assert_eq(rs.next_pos, end);
    usleep(100000);
    cr_assert_eq(write(pfd[1], "x", 1), 1);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the reader saw an error or a partial catalogue (status %d)", status);

    /* The live projector carries on, on the swapped-in tables. */
    commands(w, 10000, 500);
    cr_assert_eq(proj_catch_up(wr_log(w), &sink, 1000, &st, err, sizeof err), 0, "%s", err);
    proj_pg_close(p);
    p = proj_pg_open(clean, "public", err, sizeof err);
    sink = proj_pg_sink(p);
    cr_assert_eq(proj_catch_up(wr_log(w), &sink, 100000, &st, err, sizeof err), 0, "%s", err);
    proj_pg_close(p);
    char *a = ts_pg_checksum(live), *b = ts_pg_checksum(clean);
    cr_assert_str_eq(a, b, "rebuilt and followed = clean");
    free(a);
    free(b);
    /* The indexes dropped for the fill are back, the same as a fresh
     * schema's, and the planner has statistics. */
    const char *ix_sql = "SELECT string_agg(indexname || ': ' || replace(indexdef, 'public.', ''),"
                         " '; ' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'";
    PGconn *db = ts_pg_connect(clean);
    char *want_ix = ts_pg_value(db, ix_sql);
    PQfinish(db);
    db = ts_pg_connect(live);
    char *got_ix = ts_pg_value(db, ix_sql);
    cr_assert_str_eq(got_ix, want_ix);
    cr_assert_not_null(strstr(got_ix, "orders_status: CREATE INDEX"), "%s", got_ix);
    free(got_ix);
    free(want_ix);
    char *stats = ts_pg_value(db, "SELECT count(DISTINCT tablename) FROM pg_stats"
                                  " WHERE schemaname = 'public' AND tablename IN"
                                  " ('watches', 'orders', 'order_items', 'invoices')");
    cr_assert_str_eq(stats, "4");
    free(stats);
    /* Nothing left behind. */
    char *left = ts_pg_value(db, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rm\\_%'");
    cr_assert_str_eq(left, "0");
    free(left);
    PQfinish(db);
    wr_close(w);
    ts_rmtree(dir);
}
