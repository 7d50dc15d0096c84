/* test_proj_pg.c - the PostgreSQL projection: every event type lands in the
 * old system's tables as analysts expect, positions make it exactly-once, and
 * the batch size never changes the result. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/support.h"
#include "core/writer.h"
#include "pg_support.h"
#include "proj_pg.h"

#define T0 1764057600000000ull /* 2025-11-25T08:00:00Z */

typedef struct world {
    char dir[256], uri[300];
    wr_writer *w;
} world;

static wr_req R;

static void wid(int i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x0a;
    id[15] = (uint8_t)i;
}

static dec_out *exec_cmd(world *wd, dec_cmd c)
{
    memset(&R, 0, sizeof R);
    R.cmd = c;
    wr_req *p = &R;
    cr_assert_eq(wr_process(wd->w, &p, 1), 0);
    cr_assert_eq(R.out.reason, DEC_OK, "command %d refused: %s (%s)", c.kind,
                 dec_reason_code(R.out.reason), R.out.message ? R.out.message : "");
    return &R.out;
}

static dec_cmd at(dec_kind k, int step)
{
    dec_cmd c = ts_cmd(k, T0 + (uint64_t)step * 1000000ull);
    c.causation = (ev_str){NULL, 0};
    return c;
}

/* A log with every event type. Returns the log's end. */
static uint64_t build_log(world *wd)
{
    ts_tmpdir(wd->dir, sizeof wd->dir);
    snprintf(wd->uri, sizeof wd->uri, "lmdb:%s/log", wd->dir);
    wr_config cfg = {0};
    cfg.log_uri = wd->uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    char err[512];
    cr_assert_eq(wr_open(&cfg, &wd->w, err, sizeof err), 0, "%s", err);
    int step = 0;

    dec_cmd c = at(DEC_WATCH_ADD, step++);
    wid(1, c.u.watch.watch_id);
    c.u.watch.watch_name = EV_STR("Prospex Diver");
    c.u.watch.brand = EV_STR("Seiko");
    c.u.watch.model_code = EV_STR("SPB143");
    c.u.watch.description = EV_STR("200 m water resistance, automatic movement");
    c.u.watch.price = 39500;
    c.u.watch.currency = EV_STR("USD");
    c.u.watch.category = EV_STR("diver");
    c.u.watch.set_stock = true;
    c.u.watch.stock = 5;
    exec_cmd(wd, c);

    c = at(DEC_WATCH_ADD, step++);
    wid(2, c.u.watch.watch_id);
    /* COPY's special characters, non-ASCII, and a byte that is not UTF-8. */
    c.u.watch.watch_name = EV_STR("Tab\there\nline \\ \xc3\xa9 \xff end");
    c.u.watch.price = 12050;
    c.u.watch.currency = EV_STR("USD");
    c.u.watch.set_stock = true;
    c.u.watch.stock = 20;
    exec_cmd(wd, c);

    c = at(DEC_WATCH_UPDATE, step++);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_PRICE | EV_WF_BRAND | EV_WF_MODEL_CODE;
    c.u.watch.price = 41000;
    c.u.watch.brand = EV_STR("Grand Seiko");
    c.u.watch.model_code = EV_STR(""); /* null */
    exec_cmd(wd, c);

    c = at(DEC_STOCK_SET, step++);
    wid(1, c.u.stock.watch_id);
    c.u.stock.quantity = 10;
    exec_cmd(wd, c);

    c = at(DEC_CUSTOMER_REGISTER, step++);
    c.u.reg.email = EV_STR(" Alice@Example.com ");
    c.u.reg.full_name = EV_STR("Alice Martin");
    c.u.reg.city = EV_STR("Lyon");
    c.u.reg.password_hash = EV_STR("$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA");
    cr_assert_eq(exec_cmd(wd, c)->id, 1);

    c = at(DEC_ROLE_SET, step++);
    c.u.role.customer_id = 1;
    c.u.role.role = EV_role_ADMIN;
    exec_cmd(wd, c);

    static dec_line_in l1[2];
    wid(1, l1[0].watch_id);
    l1[0].quantity = 2;
    l1[0].unit_price = 41000;
    l1[0].has_price = true;
    wid(2, l1[1].watch_id);
    l1[1].quantity = 1;
    c = at(DEC_ORDER_PLACE, step++);
    c.actor_system = false;
    c.actor_customer = 1;
    c.actor = EV_STR("customer:1");
    c.u.order.lines = l1;
    c.u.order.n_lines = 2;
    c.u.order.shipping_address = EV_STR("1 rue de la Paix, Lyon");
    cr_assert_eq(exec_cmd(wd, c)->id, 1);

    static dec_line_in l2[1];
    wid(2, l2[0].watch_id);
    l2[0].quantity = 3;
    c = at(DEC_ORDER_PLACE, step++);
    c.actor_system = false;
    c.actor = EV_STR("guest");
    c.u.order.lines = l2;
    c.u.order.n_lines = 1;
    cr_assert_eq(exec_cmd(wd, c)->id, 2);

    for (int s = EV_order_status_PROCESSING; s <= EV_order_status_SHIPPED; s++) {
        c = at(DEC_ORDER_SET_STATUS, step++);
        c.u.status.order_id = 1;
        c.u.status.status = (uint8_t)s;
        exec_cmd(wd, c);
    }
    c = at(DEC_ORDER_CANCEL, step++);
    c.u.status.order_id = 2;
    c.u.status.reason = EV_STR("changed my mind");
    exec_cmd(wd, c);

    c = at(DEC_ORDER_PLACE, step++);
    c.u.order.lines = l2;
    c.u.order.n_lines = 1;
    cr_assert_eq(exec_cmd(wd, c)->id, 3);
    c = at(DEC_PAYMENT_INTENT, step++);
    c.u.pay.order_id = 3;
    c.u.pay.provider = EV_STR("stripe");
    c.u.pay.intent_id = EV_STR("pi_3Abc");
    exec_cmd(wd, c);
    c = at(DEC_PAYMENT_FAILED, step++);
    c.u.pay.order_id = 3;
    c.u.pay.provider = EV_STR("stripe");
    c.u.pay.intent_id = EV_STR("pi_3Abc");
    c.u.pay.provider_event_id = EV_STR("evt_1");
    c.u.pay.reason = EV_STR("card_declined");
    exec_cmd(wd, c);
    c.kind = DEC_PAYMENT_SUCCEEDED;
    c.u.pay.provider_event_id = EV_STR("evt_2");
    c.u.pay.amount = 100; /* not the total */
    exec_cmd(wd, c);
    c.u.pay.provider_event_id = EV_STR("evt_3");
    c.u.pay.amount = 3 * 12050;
    exec_cmd(wd, c);

    c = at(DEC_TOKEN_ISSUE, step++);
    c.u.token.customer_id = 1;
    c.u.token.token_hash = EV_STR("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    c.u.token.expires_at = T0 / 1000000 + 86400;
    exec_cmd(wd, c);

    /* The last event: a secret the read models never see. */
    c = at(DEC_PASSWORD_SET, step++);
    c.u.password.customer_id = 1;
    c.u.password.password_hash = EV_STR("$scrypt$ln=13,r=8,p=10$bmV3c2FsdA$bmV3aGFzaA");
    c.u.password.reason = EV_STR("rehash");
    exec_cmd(wd, c);

    uint64_t end;
    log_end(wr_log(wd->w), &end);
    return end;
}

static void drop_world(world *wd)
{
    wr_close(wd->w);
    ts_rmtree(wd->dir);
}

static proj_stats project(world *wd, const char *conninfo, size_t batch)
{
    char err[1024] = "";
    proj_pg *p = proj_pg_open(conninfo, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    proj_sink sink = proj_pg_sink(p);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(wr_log(wd->w), &sink, batch, &st, err, sizeof err), 0, "%s", err);
    proj_pg_close(p);
    return st;
}

#define VALUE_EQ(db, sql, want)                                                \
    do {                                                                       \
        char *v_ = ts_pg_value(db, sql);                                       \
        cr_assert_str_eq(v_, want, "%s: got [%s]", sql, v_);                  \
        free(v_);                                                              \
    } while (0)

Test(proj_pg, every_event_type_lands_in_the_read_models)
{
    world wd;
    uint64_t end = build_log(&wd);
    char ci[512];
    ts_pg_fresh_db(ci, sizeof ci);
    proj_stats st = project(&wd, ci, 4);
    cr_assert_eq(st.next_pos, end);
    cr_assert_gt(st.batches, 3, "small batches: %llu", (unsigned long long)st.batches);
    PGconn *db = ts_pg_connect(ci);

    /* watches */
    VALUE_EQ(db, "SELECT watch_name || '|' || brand || '|' || coalesce(model_code, 'NULL') || '|'"
                 " || price || '|' || stock_quantity || '|' || category || '|' || currency"
                 " FROM watches WHERE watch_id = '0a000000-0000-0000-0000-000000000001'",
             "Prospex Diver|Grand Seiko|NULL|410.00|8|diver|USD");
    VALUE_EQ(db, "SELECT watch_name FROM watches WHERE watch_id = '0a000000-0000-0000-0000-000000000002'",
             "Tab\there\nline \\ \xc3\xa9 \xef\xbf\xbd end");
    VALUE_EQ(db, "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                 " FROM watches WHERE watch_id = '0a000000-0000-0000-0000-000000000001'",
             "2025-11-25 08:00:00");
    VALUE_EQ(db, "SELECT updated_at > created_at FROM watches"
                 " WHERE watch_id = '0a000000-0000-0000-0000-000000000001'", "t");
    /* W2: 20, then 1 sold (order 1), 3 sold (order 2), 3 back (cancel), 3 sold (order 3). */
    VALUE_EQ(db, "SELECT stock_quantity FROM watches WHERE watch_id = '0a000000-0000-0000-0000-000000000002'",
             "16");

    /* customers: normalised e-mail, the role, no password anywhere */
    VALUE_EQ(db, "SELECT email || '|' || full_name || '|' || city || '|' || is_admin || '|' || role"
                 " || '|' || (phone IS NULL) FROM customers WHERE customer_id = 1",
             "alice@example.com|Alice Martin|Lyon|true|admin|true");

    /* customer.password_changed is accepted (the position below passes it)
     * and its hash is nowhere: no table of the schema holds it or any hash. */
    VALUE_EQ(db, "SELECT count(*) FROM information_schema.tables t"
                 " WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                 " AND (query_to_xml(format('SELECT * FROM %I.%I', t.table_schema, t.table_name),"
                 " true, false, '')::text LIKE '%bmV3aGFzaA%'"
                 " OR query_to_xml(format('SELECT * FROM %I.%I', t.table_schema, t.table_name),"
                 " true, false, '')::text LIKE '%scrypt%')",
             "0");
    VALUE_EQ(db, "SELECT count(*) > 5 FROM information_schema.tables"
                 " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'", "t");

    /* orders */
    VALUE_EQ(db, "SELECT customer_id || '|' || total_amount || '|' || status || '|' || shipping_address"
                 " || '|' || (payment_intent_id IS NULL) FROM orders WHERE order_id = 1",
             "1|940.50|shipped|1 rue de la Paix, Lyon|true");
    VALUE_EQ(db, "SELECT (customer_id IS NULL) || '|' || status || '|' || shipping_address || '|'"
                 " FROM orders WHERE order_id = 2", "true|cancelled||");
    VALUE_EQ(db, "SELECT status || '|' || payment_intent_id || '|' || paid FROM orders"
                 " WHERE order_id = 3", "processing|pi_3Abc|true");

    /* items: order_id * 100 + line */
    VALUE_EQ(db, "SELECT string_agg(item_id || ':' || quantity || 'x' || unit_price || '=' || subtotal,"
                 " ',' ORDER BY item_id) FROM order_items WHERE order_id = 1",
             "100:2x410.00=820.00,101:1x120.50=120.50");
    VALUE_EQ(db, "SELECT count(*) FROM order_items", "4");

    /* invoices */
    VALUE_EQ(db, "SELECT string_agg(invoice_number || '=' || total, ',' ORDER BY invoice_id)"
                 " FROM invoices", "INV-2025-00001=940.50,INV-2025-00002=361.50,INV-2025-00003=361.50");

    /* stock movements: initial stock is no movement; restock, sales, cancellation */
    VALUE_EQ(db, "SELECT string_agg(movement_type || ':' || quantity_change || ':' ||"
                 " coalesce(reference_id::text, '-'), ',' ORDER BY movement_id) FROM stock_movements",
             "restock:5:-,sale:-2:1,sale:-1:1,sale:-3:2,cancellation:3:2,sale:-3:3");
    VALUE_EQ(db, "SELECT string_agg(movement_id::text, ',' ORDER BY movement_id) FROM stock_movements",
             "1,2,3,4,5,6");

    /* payments */
    VALUE_EQ(db, "SELECT string_agg(outcome || ':' || coalesce(amount::text, '-') || ':' ||"
                 " coalesce(provider_event_id, '-') || ':' || coalesce(reason, '-'), ','"
                 " ORDER BY source_pos) FROM payments",
             "intent:361.50:-:-,failed:-:evt_1:card_declined,mismatched:1.00:evt_2:-,"
             "succeeded:361.50:evt_3:-");

    /* every row points at a real event: source_pos below the end */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM orders WHERE source_pos >= %llu",
             (unsigned long long)end);
    VALUE_EQ(db, sql, "0");
    snprintf(sql, sizeof sql, "%llu", (unsigned long long)end);
    char *np = ts_pg_value(db, "SELECT next_pos FROM projection_state WHERE projection = 'pg'");
    cr_assert_str_eq(np, sql);
    free(np);
    PQfinish(db);
    drop_world(&wd);
}

Test(proj_pg, batch_size_and_restarts_do_not_change_the_result)
{
    world wd;
    build_log(&wd);
    char one[512], many[512];
    ts_pg_fresh_db(one, sizeof one);
    ts_pg_fresh_db(many, sizeof many);
    project(&wd, one, 100000);
    /* Event by event, restarting the projector (a fresh connection that reads
     * its position back) between batches. */
    uint64_t end;
    log_end(wr_log(wd.w), &end);
    proj_stats total = {0};
    for (int i = 0; i < 200; i++) {
        proj_stats st = project(&wd, many, 1);
        total.applied += st.applied;
        if (st.next_pos == end)
            break;
    }
    char *a = ts_pg_checksum(one), *b = ts_pg_checksum(many);
    cr_assert_str_eq(a, b);
    /* Caught up: running again applies nothing. */
    proj_stats again = project(&wd, many, 7);
    cr_assert_eq(again.applied, 0);
    cr_assert_eq(again.batches, 0);
    char *c = ts_pg_checksum(many);
    cr_assert_str_eq(a, c);
    free(a);
    free(b);
    free(c);
    drop_world(&wd);
}

Test(proj_pg, a_failed_batch_leaves_nothing_behind)
{
    world wd;
    uint64_t end = build_log(&wd);
    char ci[512];
    ts_pg_fresh_db(ci, sizeof ci);
    /* A row in the way of the order that position 8 or so inserts: the batch
     * that holds it fails whole, and what came before stays. */
    char err[1024];
    proj_pg *p = proj_pg_open(ci, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    PGconn *db = ts_pg_connect(ci);
    PQclear(PQexec(db, "INSERT INTO invoices (invoice_id, order_id, invoice_number, source_pos)"
                       " VALUES (99, 99, 'INV-2025-00002', 0)"));
    proj_sink sink = proj_pg_sink(p);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(wr_log(wd.w), &sink, 1, &st, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "invoice"), "%s", err);
    cr_assert_lt(st.next_pos, end);
    VALUE_EQ(db, "SELECT count(*) FROM orders WHERE order_id = 2", "0");
    char want[32];
    snprintf(want, sizeof want, "%llu", (unsigned long long)st.next_pos);
    VALUE_EQ(db, "SELECT next_pos FROM projection_state", want);
    /* Out of the way, it carries on where it stopped. */
    PQclear(PQexec(db, "DELETE FROM invoices WHERE invoice_id = 99"));
    cr_assert_eq(proj_catch_up(wr_log(wd.w), &sink, 1, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.next_pos, end);
    VALUE_EQ(db, "SELECT count(*) FROM orders", "3");
    PQfinish(db);
    proj_pg_close(p);
    drop_world(&wd);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

Test(proj_pg, a_reader_waits_for_a_position)
{
    world wd;
    uint64_t end = build_log(&wd);
    char ci[512], err[512];
    ts_pg_fresh_db(ci, sizeof ci);
    proj_pg *p = proj_pg_open(ci, "public", err, sizeof err); /* migrated, empty */
    cr_assert_not_null(p, "%s", err);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* The reader: its own connection, waiting for the last event. */
        PGconn *db = PQconnectdb(ci);
        double t0 = mono_ms();
        int rc = proj_pg_wait(db, "public", end - 1, 10000, err, sizeof err);
        double took = mono_ms() - t0;
        if (write(pfd[1], &took, sizeof took) != sizeof took)
            _exit(3);
        PQfinish(db);
        _exit(rc == 0 ? 0 : 1);
    }
    usleep(300000); /* the reader is waiting */
    double t_commit = mono_ms();
    proj_sink sink = proj_pg_sink(p);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(wr_log(wd.w), &sink, 1000, &st, err, sizeof err), 0, "%s", err);
    double done = mono_ms() - t_commit;
    int status;
    waitpid(pid, &status, 0);
    double took;
    cr_assert_eq(read(pfd[0], &took, sizeof took), (ssize_t)sizeof took);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the wait ended with the position");
    cr_assert_gt(took, 250, "it did wait for the projection (%.0f ms)", took);
    cr_assert_lt(took, 300 + done + 1000, "and woke when it was there (%.0f ms)", took);

    /* A position not reached: a timeout, after about the time given. */
    PGconn *db = ts_pg_connect(ci);
    double t0 = mono_ms();
    cr_assert_eq(proj_pg_wait(db, "public", end + 5, 300, err, sizeof err), 1);
    double waited = mono_ms() - t0;
    cr_assert(waited >= 290 && waited < 2000, "timed out after %.0f ms", waited);
    cr_assert_eq(proj_pg_wait(db, "public", end - 1, 300, err, sizeof err), 0);
    PQfinish(db);
    proj_pg_close(p);
    drop_world(&wd);
}

/* The reference: what the projector wrote before it formatted by hand. */
static size_t ts_reference(uint64_t us, char *out, size_t cap)
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    cr_assert_not_null(gmtime_r(&sec, &tm));
    size_t n = strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, cap - n, ".%06u+00", (unsigned)(us % 1000000));
    return n;
}

static void ts_same(uint64_t us)
{
    char want[64], got[PROJ_PG_TS_MAX];
    size_t wn = ts_reference(us, want, sizeof want);
    size_t gn = proj_pg_format_ts(us, got);
    cr_assert(gn == wn && memcmp(got, want, wn) == 0, "%llu: [%.*s], want [%s]",
              (unsigned long long)us, (int)gn, got, want);
}

#define DAY_US 86400000000ull

Test(proj_pg, timestamps_are_formatted_like_gmtime_and_strftime)
{
    /* 1970; leap days (2000 is a leap year, 2100 is not, 2400 is); the
     * 32-bit time_t limit; the last microsecond of 9999. */
    const uint64_t edges[] = {0, 1, 999999, 1000000, 59999999, DAY_US - 1, DAY_US,
                              68169600000000ull,   /* 1972-02-29 */
                              951782400000000ull,  /* 2000-02-29 */
                              951868800000000ull,  /* 2000-03-01 */
                              978307199999999ull,  /* 2000-12-31 23:59:59.999999 */
                              2147483647000000ull, /* 2038-01-19 03:14:07 */
                              2147483648000000ull, 4107456000000000ull, /* 2100-02-28 */
                              4107542400000000ull,                      /* 2100-03-01 */
                              13574563200000000ull,                     /* 2400-02-29 */
                              T0, 253402300799999999ull};               /* 9999-12-31 */
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        ts_same(edges[i]);
        /* Around each one: the day before and after, the second before. */
        if (edges[i] >= DAY_US)
            ts_same(edges[i] - DAY_US);
        if (edges[i] >= 1000000)
            ts_same(edges[i] - 1000000);
        if (edges[i] + DAY_US <= 253402300799999999ull)
            ts_same(edges[i] + DAY_US);
    }
    /* Every day from 1970 to 2500 at a random time (the date cache sees a
     * new day each call), then runs of times within one day (it reuses the
     * date), then random times up to the end of 9999. */
    unsigned seed = 42;
    for (uint64_t d = 0; d < 193000; d++)
        ts_same(d * DAY_US + ((uint64_t)rand_r(&seed) << 16 | (uint64_t)rand_r(&seed)) % DAY_US);
    for (int run = 0; run < 2000; run++) {
        uint64_t day = (uint64_t)rand_r(&seed) % 2932896; /* days to 9999-12-31 */
        for (int k = 0; k < 8; k++)
            ts_same(day * DAY_US + ((uint64_t)rand_r(&seed) * 40503u) % DAY_US);
    }
    for (int i = 0; i < 200000; i++) {
        uint64_t r = (uint64_t)rand_r(&seed) << 42 ^ (uint64_t)rand_r(&seed) << 21 ^
                     (uint64_t)rand_r(&seed);
        ts_same(r % 253402300800000000ull);
    }
}

/* Big batches send their rows while they are still being read (see
 * PROJ_PG_STREAM_AT): a row in the way of one of those sent early fails the
 * batch whole all the same, and once out of the way the result is the
 * same as event by event. */
Test(proj_pg, a_failed_streamed_copy_fails_its_batch_whole)
{
    world wd;
    ts_tmpdir(wd.dir, sizeof wd.dir);
    snprintf(wd.uri, sizeof wd.uri, "lmdb:%s/log", wd.dir);
    wr_config cfg = {0};
    cfg.log_uri = wd.uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    char err[1024] = "";
    cr_assert_eq(wr_open(&cfg, &wd.w, err, sizeof err), 0, "%s", err);
    unsigned seed = 3;
    cr_assert_eq(ts_grow_log(wd.w, 20000, &seed, 0, 50), 0);
    char big[512], small[512];
    ts_pg_fresh_db(big, sizeof big);
    ts_pg_fresh_db(small, sizeof small);
    proj_pg *p = proj_pg_open(big, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    PGconn *db = ts_pg_connect(big);
    /* Order 2000's invoice number, taken: about 6,000 events in, far past
     * the first rows sent early. */
    PQclear(PQexec(db, "INSERT INTO invoices (invoice_id, order_id, invoice_number, source_pos)"
                       " VALUES (999999, 999999, 'INV-2025-02000', 0)"));
    proj_sink sink = proj_pg_sink(p);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(wr_log(wd.w), &sink, 100000, &st, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "invoice"), "%s", err);
    VALUE_EQ(db, "SELECT count(*) FROM orders", "0");
    VALUE_EQ(db, "SELECT count(*) FROM stock_movements", "0");
    VALUE_EQ(db, "SELECT next_pos FROM projection_state", "0");
    PQclear(PQexec(db, "DELETE FROM invoices"));
    cr_assert_eq(proj_catch_up(wr_log(wd.w), &sink, 100000, &st, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st.batches, 1);
    PQfinish(db);
    proj_pg_close(p);
    project(&wd, small, 97);
    char *a = ts_pg_checksum(big), *b = ts_pg_checksum(small);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    drop_world(&wd);
}
