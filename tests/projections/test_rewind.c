/* test_rewind.c - partial re-projection of the PostgreSQL read models
 * (proj_pg_rewind, `replay --from P`): rewound to any position and caught
 * up again, the read models equal a clean projection of the same log, even
 * with rows tampered after P or a second projector running meanwhile; a
 * position not yet projected is refused. Also proj_pos_at_time, which turns
 * a time into the position `replay --from TIME` starts at. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/support.h"
#include "core/writer.h"
#include "pg_support.h"
#include "proj_pg.h"

#define T0 1764057600000000ull /* 2025-11-25T08:00:00Z */
#define STEP_US 1000ull        /* one command per millisecond */
#define N_WATCHES 30
#define PER_CALL 256

typedef struct world {
    char dir[256], uri[300];
    wr_writer *w;
    uint64_t end;
} world;

/* Strings a command borrows until it is appended, one set per slot. */
typedef struct slot {
    dec_line_in lines[3];
    char a[64], b[64];
} slot;

static wr_req reqs[PER_CALL];
static slot slots[PER_CALL];
static unsigned customers_made;

static const char *const categories[] = {"automatic", "chronograph", "diver", "sport",
                                         "classic",   "luxury"};

static void watch_id(unsigned i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x4e;
    id[15] = (uint8_t)i;
}

static void cmd_watch_add(dec_cmd *c, unsigned i)
{
    c->kind = DEC_WATCH_ADD;
    watch_id(i, c->u.watch.watch_id);
    c->u.watch.watch_name = EV_STR("Rewind watch");
    c->u.watch.brand = EV_STR("Oris");
    c->u.watch.price = 20000 + (int64_t)i * 150;
    c->u.watch.currency = EV_STR("USD");
    c->u.watch.category = ev_str_c(categories[i % 6]);
    c->u.watch.set_stock = true;
    c->u.watch.stock = 500;
}

static void cmd_watch_update(dec_cmd *c, slot *s, unsigned *seed, unsigned n_watches)
{
    c->kind = DEC_WATCH_UPDATE;
    watch_id((unsigned)rand_r(seed) % n_watches, c->u.watch.watch_id);
    c->u.watch.changed = EV_WF_PRICE;
    c->u.watch.price = 10000 + rand_r(seed) % 90000;
    if (rand_r(seed) % 2) {
        snprintf(s->a, sizeof s->a, "Revised\tdescription %d", rand_r(seed) % 1000);
        c->u.watch.description = ev_str_c(s->a);
        c->u.watch.category = ev_str_c(categories[rand_r(seed) % 6]);
        c->u.watch.changed |= EV_WF_DESCRIPTION | EV_WF_CATEGORY;
    }
}

static void cmd_order(dec_cmd *c, slot *s, unsigned *seed, unsigned n_watches)
{
    unsigned k = 1 + (unsigned)rand_r(seed) % 3;
    for (unsigned i = 0; i < k; i++) {
        watch_id((unsigned)rand_r(seed) % n_watches, s->lines[i].watch_id);
        s->lines[i].quantity = 1 + rand_r(seed) % 2;
        s->lines[i].has_price = false;
    }
    c->kind = DEC_ORDER_PLACE;
    c->u.order.lines = s->lines;
    c->u.order.n_lines = k;
    c->u.order.shipping_address = EV_STR("3 Quai des Bergues, Geneva");
    c->actor_system = false;
    c->actor = EV_STR("guest");
    if (customers_made && rand_r(seed) % 2) {
        c->actor_customer = 1 + (unsigned)rand_r(seed) % customers_made;
        snprintf(s->b, sizeof s->b, "customer:%llu", (unsigned long long)c->actor_customer);
        c->actor = ev_str_c(s->b);
    }
}

static void cmd_customer(dec_cmd *c, slot *s)
{
    c->kind = DEC_CUSTOMER_REGISTER;
    customers_made++;
    snprintf(s->a, sizeof s->a, "buyer%u@example.com", customers_made);
    c->u.reg.email = ev_str_c(s->a);
    c->u.reg.full_name = EV_STR("A Buyer");
    c->u.reg.city = EV_STR("Basel");
}

static void cmd_payment(dec_cmd *c, slot *s, unsigned *seed, const st_state *st, unsigned x)
{
    uint64_t id = 1 + (uint64_t)rand_r(seed) % st->max_order_id;
    const st_order *o = st_order_get(st, id);
    c->u.pay.order_id = id;
    c->u.pay.provider = EV_STR("stripe");
    snprintf(s->a, sizeof s->a, "pi_%llu_%d", (unsigned long long)id, rand_r(seed) % 3);
    c->u.pay.intent_id = ev_str_c(s->a);
    snprintf(s->b, sizeof s->b, "evt_%u_%d", x, rand_r(seed));
    c->u.pay.provider_event_id = ev_str_c(s->b);
    c->kind = x < 3 ? DEC_PAYMENT_INTENT : x < 7 ? DEC_PAYMENT_SUCCEEDED : DEC_PAYMENT_FAILED;
    c->u.pay.amount = o ? o->total : 1;
    if (x == 6)
        c->u.pay.amount += 1; /* mismatched */
    if (c->kind == DEC_PAYMENT_FAILED)
        c->u.pay.reason = EV_STR("card_declined");
}

/* One command of the mix (some are refused, which is fine: they record
 * nothing). */
static void one_command(wr_req *r, slot *s, unsigned *seed, const st_state *st, unsigned step)
{
    memset(r, 0, sizeof *r);
    r->cmd = ts_cmd(DEC_STOCK_ADJUST, T0 + step * STEP_US);
    r->cmd.causation = (ev_str){NULL, 0};
    dec_cmd *c = &r->cmd;
    unsigned n_watches = (unsigned)st->n_watches, x = (unsigned)rand_r(seed) % 100;
    if (n_watches < N_WATCHES && (n_watches < 20 || x < 3))
        cmd_watch_add(c, n_watches);
    else if (x < 36)
        cmd_order(c, s, seed, n_watches);
    else if (x < 50 && st->max_order_id) {
        c->kind = DEC_ORDER_SET_STATUS;
        c->u.status.order_id = 1 + (uint64_t)rand_r(seed) % st->max_order_id;
        c->u.status.status = (uint8_t)(1 + rand_r(seed) % 3);
    } else if (x < 55 && st->max_order_id) {
        c->kind = DEC_ORDER_CANCEL;
        c->u.status.order_id = 1 + (uint64_t)rand_r(seed) % st->max_order_id;
        c->u.status.reason = EV_STR("changed my mind");
    } else if (x < 65) {
        watch_id((unsigned)rand_r(seed) % n_watches, c->u.stock.watch_id);
        c->kind = x < 62 ? DEC_STOCK_ADJUST : DEC_STOCK_SET;
        c->u.stock.quantity = x < 62 ? 5 + rand_r(seed) % 40 : 300 + rand_r(seed) % 300;
        c->u.stock.reason = x < 59 ? EV_stock_reason_RESTOCK : EV_stock_reason_CORRECTION;
    } else if (x < 74)
        cmd_watch_update(c, s, seed, n_watches);
    else if (x < 80)
        cmd_customer(c, s);
    else if (x < 84 && customers_made) {
        c->kind = DEC_ROLE_SET;
        c->u.role.customer_id = 1 + (unsigned)rand_r(seed) % customers_made;
        c->u.role.role = (uint8_t)(rand_r(seed) % 3);
    } else if (st->max_order_id)
        cmd_payment(c, s, seed, st, (x - 84) % 10);
    else
        cmd_order(c, s, seed, n_watches);
}

/* A log of at least `events` events of every kind the read models show. */
static void build_log(world *wd, unsigned events)
{
    ts_tmpdir(wd->dir, sizeof wd->dir);
    snprintf(wd->uri, sizeof wd->uri, "lmdb:%s/log", wd->dir);
    wr_config cfg = {0};
    cfg.log_uri = wd->uri;
    memcpy(cfg.email_key, ts_email_key, 32);
    char err[512];
    cr_assert_eq(wr_open(&cfg, &wd->w, err, sizeof err), 0, "%s", err);
    customers_made = 0;
    unsigned seed = 20261125, step = 0, made = 0;
    const st_state *st = wr_state(wd->w);
    while (made < events) {
        wr_req *ptr[PER_CALL];
        /* The watches first, one per call, so that each one's add is decided
         * before commands name it. */
        size_t n = st->n_watches < 20 ? 1 : PER_CALL;
        for (size_t i = 0; i < n; i++) {
            one_command(&reqs[i], &slots[i], &seed, st, step++);
            ptr[i] = &reqs[i];
        }
        cr_assert_eq(wr_process(wd->w, ptr, n), 0);
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].cmd.kind == DEC_CUSTOMER_REGISTER)
                cr_assert_eq(reqs[i].out.reason, DEC_OK, "registration refused: %s",
                             dec_reason_code(reqs[i].out.reason));
            made += (unsigned)reqs[i].out.n_ev;
        }
    }
    log_end(wr_log(wd->w), &wd->end);
}

static void drop_world(world *wd)
{
    wr_close(wd->w);
    ts_rmtree(wd->dir);
}

/* ------------------------------------------------------------ the log */

typedef struct found {
    ev_dec *dec;
    uint64_t *pos;
    ev_type *type;
    size_t n, cap;
    ev_event last_price; /* the last watch.updated that set a price */
    uint64_t last_status_order, last_status_pos;
} found;

static int note(void *ud, const log_rec *r)
{
    found *f = ud;
    ev_event ev;
    cr_assert_eq(ev_decode(f->dec, r->data, r->len, r->pos, &ev), 0);
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 1024;
        f->pos = realloc(f->pos, f->cap * sizeof *f->pos);
        f->type = realloc(f->type, f->cap * sizeof *f->type);
    }
    f->pos[f->n] = r->pos;
    f->type[f->n++] = ev.env.type;
    if (ev.env.type == EV_T_WATCH_UPDATED && (ev.u.watch_updated.changed & EV_WF_PRICE))
        f->last_price = ev; /* only the envelope and the watch id are used */
    if (ev.env.type == EV_T_ORDER_STATUS_CHANGED) {
        f->last_status_order = ev.u.order_status_changed.order_id;
        f->last_status_pos = r->pos;
    }
    return 0;
}

/* Every event's position and type. */
static found scan_log(world *wd)
{
    found f = {0};
    f.dec = ev_dec_new();
    uint64_t next;
    cr_assert_eq(log_scan(wr_log(wd->w), 0, 0, note, &f, &next), 0);
    return f;
}

static void free_found(found *f)
{
    ev_dec_free(f->dec);
    free(f->pos);
    free(f->type);
}

/* The position of the middle one of the events of type t. */
static uint64_t middle_of(const found *f, ev_type t)
{
    size_t count = 0, k = 0;
    for (size_t i = 0; i < f->n; i++)
        count += f->type[i] == t;
    cr_assert_gt(count, 10, "the log has events of type %d", t);
    for (size_t i = 0; i < f->n; i++)
        if (f->type[i] == t && k++ == count / 2)
            return f->pos[i];
    return 0;
}

static size_t events_from(const found *f, uint64_t pos)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->pos[i] >= pos;
    return n;
}

/* ------------------------------------------------------------ the read models */

static proj_stats project(world *wd, const char *ci, size_t batch)
{
    char err[1024] = "";
    proj_pg *p = proj_pg_open(ci, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    proj_sink sink = proj_pg_sink(p);
    proj_stats st = {0};
    cr_assert_eq(proj_catch_up(wr_log(wd->w), &sink, batch, &st, err, sizeof err), 0, "%s", err);
    proj_pg_close(p);
    return st;
}

static uint64_t state_of(const char *ci, const char *col)
{
    PGconn *db = ts_pg_connect(ci);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM projection_state WHERE projection = 'pg'", col);
    char *v = ts_pg_value(db, sql);
    uint64_t n = strtoull(v, NULL, 10);
    free(v);
    PQfinish(db);
    return n;
}

static long long count_of(const char *ci, const char *sql)
{
    PGconn *db = ts_pg_connect(ci);
    char *v = ts_pg_value(db, sql);
    long long n = atoll(v);
    free(v);
    PQfinish(db);
    return n;
}

static void exec_sql(const char *ci, const char *sql)
{
    PGconn *db = ts_pg_connect(ci);
    PGresult *r = PQexec(db, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(db);
}

static void rewind_to(const char *ci, uint64_t pos)
{
    char err[1024] = "";
    cr_assert_eq(proj_pg_rewind(ci, "public", pos, err, sizeof err), 0, "rewind to %llu: %s",
                 (unsigned long long)pos, err);
}

static void assert_same(const char *ci, const char *want, const char *what)
{
    char *got = ts_pg_checksum(ci);
    cr_assert_str_eq(got, want, "%s: the read models differ from a clean projection", what);
    free(got);
}

typedef struct applier {
    proj_sink *s;
    ev_dec *dec;
} applier;

static int apply_one(void *ud, const log_rec *r)
{
    applier *a = ud;
    ev_event ev;
    cr_assert_eq(ev_decode(a->dec, r->data, r->len, r->pos, &ev), 0);
    if (ev.env.type != EV_T_UNKNOWN)
        cr_assert_eq(a->s->ops->apply(a->s->ctx, &ev), 0, "%s", a->s->ops->errmsg(a->s->ctx));
    return 0;
}

/* One batch of at most n events, as the runner makes it. */
static void one_batch(world *wd, proj_pg *p, size_t n)
{
    proj_sink s = proj_pg_sink(p);
    uint64_t from, next;
    cr_assert_eq(s.ops->begin(s.ctx, &from), 0, "%s", s.ops->errmsg(s.ctx));
    applier a = {&s, ev_dec_new()};
    cr_assert_eq(log_scan(wr_log(wd->w), from, n, apply_one, &a, &next), 0);
    ev_dec_free(a.dec);
    cr_assert_eq(s.ops->commit(s.ctx, next), 0, "%s", s.ops->errmsg(s.ctx));
}

/* A world with its log projected twice: `clean` (the reference) and `live`
 * (the one rewound). */
typedef struct fixture {
    world wd;
    found f;
    char clean[512], live[512];
    char *want; /* the clean projection's checksum */
} fixture;

static void setup_fixture(fixture *x, unsigned events)
{
    build_log(&x->wd, events);
    x->f = scan_log(&x->wd);
    ts_pg_fresh_db(x->clean, sizeof x->clean);
    ts_pg_fresh_db(x->live, sizeof x->live);
    project(&x->wd, x->clean, 100000);
    project(&x->wd, x->live, 50);
    x->want = ts_pg_checksum(x->clean);
    assert_same(x->live, x->want, "batch size");
}

static void teardown_fixture(fixture *x)
{
    free(x->want);
    free_found(&x->f);
    drop_world(&x->wd);
}

/* Rewinds the live read models to pos and checks what the rewind left. */
static void rewind_and_check(fixture *x, uint64_t pos)
{
    uint64_t before = state_of(x->live, "next_pos");
    uint64_t mark = state_of(x->live, "replay_until");
    rewind_to(x->live, pos);
    cr_assert_eq(state_of(x->live, "next_pos"), pos);
    uint64_t want = before > mark ? before : mark;
    cr_assert_eq(state_of(x->live, "replay_until"), want > pos ? want : 0);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM stock_movements WHERE source_pos >= %llu)"
             " + (SELECT count(*) FROM payments WHERE source_pos >= %llu)",
             (unsigned long long)pos, (unsigned long long)pos);
    cr_assert_eq(count_of(x->live, sql), 0, "the append-only rows after %llu are gone",
                 (unsigned long long)pos);
    cr_assert_eq(state_of(x->live, "next_movement_id"),
                 (uint64_t)count_of(x->live, "SELECT coalesce(max(movement_id), 0) + 1"
                                             " FROM stock_movements"));
}

static void catch_up_and_compare(fixture *x, uint64_t pos, size_t batch)
{
    proj_stats st = project(&x->wd, x->live, batch);
    cr_assert_eq(st.applied + st.skipped, events_from(&x->f, pos),
                 "every event from %llu applied again", (unsigned long long)pos);
    cr_assert_eq(st.next_pos, x->wd.end);
    cr_assert_eq(state_of(x->live, "replay_until"), 0, "the mark is cleared once passed");
    char what[64];
    snprintf(what, sizeof what, "rewound to %llu", (unsigned long long)pos);
    assert_same(x->live, x->want, what);
}

Test(rewind, any_position_then_catch_up_equals_a_clean_projection, .timeout = 300)
{
    fixture x;
    setup_fixture(&x, 4000);
    cr_assert_geq(x.f.n, 4000);
    uint64_t positions[] = {
        x.f.pos[1],                                /* just after the first event */
        x.f.pos[x.f.n / 2],                        /* the middle */
        x.f.pos[x.f.n - 1],                        /* the last event */
        middle_of(&x.f, EV_T_ORDER_PLACED),        /* an order with its lines */
        middle_of(&x.f, EV_T_STOCK_ADJUSTED),      /* a movement */
        middle_of(&x.f, EV_T_PAYMENT_SUCCEEDED),   /* a payment */
        middle_of(&x.f, EV_T_CUSTOMER_REGISTERED), /* a customer */
        x.wd.end,                                  /* nothing to do again */
    };
    size_t batches[] = {64, 1000, 7, 500, 333, 64, 128, 64};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        rewind_and_check(&x, positions[i]);
        catch_up_and_compare(&x, positions[i], batches[i]);
    }
    teardown_fixture(&x);
}

Test(rewind, a_second_rewind_before_the_first_is_done, .timeout = 300)
{
    fixture x;
    setup_fixture(&x, 3000);
    char err[1024];
    proj_pg *p = proj_pg_open(x.live, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    uint64_t p1 = x.f.pos[x.f.n / 2], p2 = x.f.pos[x.f.n / 4];
    rewind_and_check(&x, p1);
    one_batch(&x.wd, p, 200); /* part of the way back */
    cr_assert_gt(state_of(x.live, "next_pos"), p1);
    cr_assert_eq(state_of(x.live, "replay_until"), x.wd.end);
    rewind_and_check(&x, p2); /* the mark stays the furthest position reached */
    cr_assert_eq(state_of(x.live, "replay_until"), x.wd.end);
    one_batch(&x.wd, p, 100);
    proj_pg_close(p);
    catch_up_and_compare(&x, x.f.pos[x.f.n / 4 + 100], 256);
    teardown_fixture(&x);
}

Test(rewind, a_position_not_yet_projected_is_refused)
{
    fixture x;
    setup_fixture(&x, 1000);
    char err[1024] = "";
    cr_assert_eq(proj_pg_rewind(x.live, "public", x.wd.end + 1, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "not yet projected"), "%s", err);
    cr_assert_eq(state_of(x.live, "next_pos"), x.wd.end, "nothing changed");
    cr_assert_eq(state_of(x.live, "replay_until"), 0);
    assert_same(x.live, x.want, "after a refused rewind");
    /* Read models that have projected nothing yet. */
    char empty[512];
    ts_pg_fresh_db(empty, sizeof empty);
    err[0] = 0;
    cr_assert_eq(proj_pg_rewind(empty, "public", 1, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "position 1"), "%s", err);
    cr_assert_eq(proj_pg_rewind(empty, "public", 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(state_of(empty, "next_pos"), 0);
    teardown_fixture(&x);
}

Test(rewind, rows_tampered_after_the_position_are_repaired, .timeout = 300)
{
    fixture x;
    setup_fixture(&x, 3000);
    /* A watch whose price last changed at price_pos, an order whose status
     * last changed at status_pos: rewind to before both. */
    uint64_t price_pos = x.f.last_price.env.pos, status_pos = x.f.last_status_pos;
    cr_assert(price_pos > 0 && status_pos > 0, "the log has price and status changes");
    uint64_t pos = (price_pos < status_pos ? price_pos : status_pos) - 1;
    char wid[37], sql[512];
    ev_uuid_format(x.f.last_price.u.watch_updated.watch_id, wid);
    snprintf(sql, sizeof sql, "UPDATE watches SET price = 0 WHERE watch_id = '%s'",
             wid);
    exec_sql(x.live, sql);
    snprintf(sql, sizeof sql, "UPDATE orders SET status = 'lost'"
                              " WHERE order_id = %llu",
             (unsigned long long)x.f.last_status_order);
    exec_sql(x.live, sql);
    snprintf(sql, sizeof sql, "UPDATE stock_movements SET quantity_change = 999"
                              " WHERE source_pos >= %llu",
             (unsigned long long)pos);
    exec_sql(x.live, sql);
    snprintf(sql, sizeof sql, "DELETE FROM order_items WHERE source_pos >= %llu",
             (unsigned long long)pos);
    exec_sql(x.live, sql);
    char *tampered = ts_pg_checksum(x.live);
    cr_assert_str_neq(tampered, x.want, "the tampering shows");
    free(tampered);
    rewind_and_check(&x, pos);
    catch_up_and_compare(&x, pos, 200);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM watches WHERE watch_id = '%s' AND price > 0",
             wid);
    cr_assert_eq(count_of(x.live, sql), 1);
    teardown_fixture(&x);
}

/* The live projector, following in a loop on its own connection until told
 * to stop (then once more). */
typedef struct follower {
    world *wd;
    const char *ci;
    atomic_int stop;
    int failed, rounds;
    char err[1024];
} follower;

static void *follow(void *ud)
{
    follower *fw = ud;
    proj_pg *p = proj_pg_open(fw->ci, "public", fw->err, sizeof fw->err);
    if (!p) {
        fw->failed = 1;
        return NULL;
    }
    proj_sink sink = proj_pg_sink(p);
    for (int last = 0; !last && !fw->failed; fw->rounds++) {
        last = atomic_load(&fw->stop);
        proj_stats st = {0};
        if (proj_catch_up(wr_log(fw->wd->w), &sink, 29, &st, fw->err, sizeof fw->err))
            fw->failed = 1;
    }
    proj_pg_close(p);
    return NULL;
}

Test(rewind, with_the_live_projector_catching_up_meanwhile, .timeout = 300)
{
    fixture x;
    setup_fixture(&x, 3000);
    follower fw = {&x.wd, x.live, 0, 0, 0, ""};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, follow, &fw), 0);
    uint64_t targets[] = {x.f.pos[x.f.n / 3], middle_of(&x.f, EV_T_ORDER_PLACED),
                          x.f.pos[x.f.n / 5]};
    char err[1024];
    proj_pg *p = proj_pg_open(x.live, "public", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    proj_sink sink = proj_pg_sink(p);
    for (size_t i = 0; i < 3; i++) {
        uint64_t at = state_of(x.live, "next_pos"), pos = targets[i];
        if (pos > at) /* the follower is still on its way back */
            pos = at;
        rewind_to(x.live, pos);
        /* replay's own sink drives it too; the two take turns per batch. */
        proj_stats st = {0};
        cr_assert_eq(proj_catch_up(wr_log(x.wd.w), &sink, 41, &st, err, sizeof err), 0, "%s",
                     err);
        cr_assert_eq(st.next_pos, x.wd.end);
    }
    proj_pg_close(p);
    atomic_store(&fw.stop, 1);
    pthread_join(t, NULL);
    cr_assert_eq(fw.failed, 0, "the follower failed: %s", fw.err);
    cr_assert_gt(fw.rounds, 1);
    cr_assert_eq(state_of(x.live, "replay_until"), 0);
    assert_same(x.live, x.want, "two projectors after rewinds");
    teardown_fixture(&x);
}

/* ------------------------------------------------------------ time */

/* The first position at or after at_us, the slow way. */
typedef struct oracle {
    ev_dec *dec;
    uint64_t at_us, pos;
    int found;
} oracle;

static int oracle_one(void *ud, const log_rec *r)
{
    oracle *o = ud;
    ev_event ev;
    cr_assert_eq(ev_decode(o->dec, r->data, r->len, r->pos, &ev), 0);
    if (!o->found && ev.env.recorded_us >= o->at_us) {
        o->pos = r->pos;
        o->found = 1;
    }
    return 0;
}

Test(rewind, a_time_becomes_the_first_position_recorded_at_or_after_it)
{
    world wd;
    build_log(&wd, 1500);
    log_t *log = wr_log(wd.w);
    char err[512] = "";
    uint64_t pos = 12345, first, next;
    cr_assert_eq(proj_pos_at_time(log, 0, &pos, err, sizeof err), 0, "%s", err);
    found f = scan_log(&wd);
    first = f.pos[0];
    cr_assert_eq(pos, first, "before the log: its first position");
    cr_assert_eq(proj_pos_at_time(log, T0 + 100000000ull * STEP_US, &pos, err, sizeof err), 0);
    cr_assert_eq(pos, wd.end, "after the last event: the log's end");
    unsigned seed = 7;
    for (int i = 0; i < 40; i++) {
        uint64_t at = T0 + (uint64_t)(rand_r(&seed) % 2000) * STEP_US + (i % 3 ? 0 : 1);
        oracle o = {ev_dec_new(), at, wd.end, 0};
        cr_assert_eq(log_scan(log, 0, 0, oracle_one, &o, &next), 0);
        ev_dec_free(o.dec);
        cr_assert_eq(proj_pos_at_time(log, at, &pos, err, sizeof err), 0, "%s", err);
        cr_assert_eq(pos, o.pos, "at %llu: %llu, want %llu", (unsigned long long)at,
                     (unsigned long long)pos, (unsigned long long)o.pos);
    }
    free_found(&f);
    drop_world(&wd);
}
