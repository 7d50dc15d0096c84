/* test_decide.c - the domain rules of core/decide.c.
 *
 * Every test keeps an st_state, decides commands against it and, when a
 * command is accepted, encodes its events (chained, as the writer does) and
 * folds them back with st_apply at their coming log positions. The outcome of
 * each command is checked exactly: the reason and its detail fields, or the
 * events with their types and payload values.
 *
 * The last two tests run a long seeded random mix of commands against a
 * model of the store and check the stock and order-status invariants after
 * every step; then they decode the whole encoded log, fold it into a fresh
 * state and compare digests.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/decide.h"
#include "core/event.h"
#include "core/state.h"
#include "support.h"

/* ------------------------------------------------------------ harness */

/* A cheap check for hot loops. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            cr_assert_fail(__VA_ARGS__);                                       \
    } while (0)

#define ASSERT_STR(got, want)                                                  \
    do {                                                                       \
        ev_str g_ = (got);                                                     \
        const char *w_ = (want);                                               \
        cr_assert(g_.p && g_.n == strlen(w_) && memcmp(g_.p, w_, g_.n) == 0,   \
                  "%s is \"%.*s\"%s, want \"%s\"", #got, (int)g_.n,            \
                  g_.p ? g_.p : "", g_.p ? "" : " (null)", w_);                \
    } while (0)

#define ASSERT_NULL_STR(got)                                                   \
    do {                                                                       \
        ev_str g_ = (got);                                                     \
        cr_assert(g_.p == NULL && g_.n == 0, "%s should be null, is \"%.*s\"", \
                  #got, (int)g_.n, g_.p ? g_.p : "");                          \
    } while (0)

static st_state S;     /* the writer's state */
static dec_out *O;     /* the last command's outcome */
static ev_enc *ENC;
static ev_buf LOG;     /* every record encoded so far, chained */
static size_t *REC_LEN;
static uint8_t *REC_TYPE;
static size_t N_REC, CAP_REC;
static uint64_t CMD_N;
static char CAUSE[16][32]; /* causation ids of the latest commands */

struct r_model;
static struct r_model *M; /* the randomized run's model */
static void r_free(void);

static void setup(void)
{
    cr_assert_eq(st_init(&S, ts_email_key), 0);
    O = calloc(1, sizeof *O);
    ENC = ev_enc_new();
    cr_assert(O && ENC);
    N_REC = CAP_REC = 0;
    CMD_N = 0;
}

static void teardown(void)
{
    st_free(&S);
    free(O);
    O = NULL;
    ev_enc_free(ENC);
    ENC = NULL;
    ev_buf_free(&LOG);
    free(REC_LEN);
    free(REC_TYPE);
    REC_LEN = NULL;
    REC_TYPE = NULL;
    r_free();
}

TestSuite(decide, .init = setup, .fini = teardown);

/* A command from the system with its own causation id (the writer gives
 * every command one; the state ties an idempotent command's events together
 * by it). */
static dec_cmd cmd(dec_kind kind)
{
    dec_cmd c = ts_cmd(kind, 1767225600000000ull + CMD_N * 1000);
    char *b = CAUSE[CMD_N % 16];
    int n = snprintf(b, sizeof CAUSE[0], "cmd-%llu", (unsigned long long)CMD_N);
    c.causation = (ev_str){b, (uint32_t)n};
    CMD_N++;
    return c;
}

static void as_customer(dec_cmd *c, uint64_t id)
{
    c->actor_system = false;
    c->actor_customer = id;
    c->actor = EV_STR("customer");
}

static void as_guest(dec_cmd *c)
{
    c->actor_system = false;
    c->actor_customer = 0;
    c->actor = EV_STR("guest");
}

/* Encodes the outcome's events after the log so far, then folds them at
 * their positions, like the writer's stage(). */
static void commit(dec_out *o)
{
    uint8_t prev[32];
    memcpy(prev, S.last_hash, 32);
    for (size_t i = 0; i < o->n_ev; i++) {
        ev_event *e = &o->ev[i];
        if (N_REC == CAP_REC) {
            CAP_REC = CAP_REC ? CAP_REC * 2 : 1024;
            REC_LEN = realloc(REC_LEN, CAP_REC * sizeof *REC_LEN);
            REC_TYPE = realloc(REC_TYPE, CAP_REC);
            CHECK(REC_LEN && REC_TYPE, "out of memory");
        }
        ev_new_id(ENC, e->env.recorded_us, e->env.id);
        size_t before = LOG.len;
        int rc = ev_encode(ENC, e, prev, &LOG, e->env.hash);
        CHECK(rc == 0, "event %zu (%s) does not encode: %s", i,
              ev_type_name(e->env.type), ev_strerror(rc));
        memcpy(e->env.prev_hash, prev, 32);
        memcpy(prev, e->env.hash, 32);
        REC_LEN[N_REC] = LOG.len - before;
        REC_TYPE[N_REC] = (uint8_t)e->env.type;
        N_REC++;
    }
    for (size_t i = 0; i < o->n_ev; i++) {
        CHECK(S.next_pos == N_REC - o->n_ev + i, "positions are not dense");
        o->ev[i].env.pos = S.next_pos;
        int rc = st_apply(&S, &o->ev[i]);
        CHECK(rc == 0, "st_apply of event %zu (%s) failed: %s", i,
              ev_type_name(o->ev[i].env.type), ev_strerror(rc));
        CHECK(S.next_pos == o->ev[i].env.pos + 1, "next_pos not advanced");
    }
    if (o->n_ev) {
        o->first_pos = o->ev[0].env.pos;
        o->last_pos = o->ev[o->n_ev - 1].env.pos;
    }
}

/* Decides c into O and, when accepted, commits its events. */
static dec_reason run(const dec_cmd *c)
{
    dec_reason r = dec_decide(&S, c, O);
    CHECK(r == O->reason, "returned %d but out.reason %d", r, O->reason);
    if (r != DEC_OK) {
        CHECK(O->n_ev == 0, "refused (%s) but emitted %zu events",
              dec_reason_code(r), O->n_ev);
        return r;
    }
    if (O->noop || O->repeat)
        CHECK(O->n_ev == 0, "a noop or repeat emitted %zu events", O->n_ev);
    else
        CHECK(O->n_ev > 0, "accepted, not a noop, but no events");
    commit(O);
    return r;
}

/* A refusal: reason, field (NULL: none), no events, nothing appended. */
#define EXPECT(c, want, fld)                                                   \
    do {                                                                       \
        size_t nrec_ = N_REC;                                                  \
        dec_reason r_ = run(c);                                                \
        dec_reason wr_ = (want);                                               \
        cr_assert_eq(r_, wr_, "outcome %s (%s), want %s", dec_reason_code(r_), \
                     O->message ? O->message : "", dec_reason_code(wr_));      \
        const char *f_ = (fld);                                                \
        cr_assert(f_ ? (O->field && strcmp(O->field, f_) == 0)                 \
                     : O->field == NULL,                                       \
                  "field %s, want %s", O->field ? O->field : "(null)",         \
                  f_ ? f_ : "(null)");                                         \
        cr_assert_eq(O->n_ev, 0, "a refusal emitted %zu events", O->n_ev);     \
        cr_assert_eq(N_REC, nrec_);                                            \
    } while (0)

/* Accepted with exactly n events. */
#define ACCEPT(c, n)                                                           \
    do {                                                                       \
        dec_reason r_ = run(c);                                                \
        cr_assert_eq(r_, DEC_OK, "refused: %s field %s (%s)",                  \
                     dec_reason_code(r_), O->field ? O->field : "-",           \
                     O->message ? O->message : "");                            \
        cr_assert_not(O->noop, "accepted as a noop");                          \
        cr_assert_not(O->repeat, "accepted as a repeat");                      \
        cr_assert_eq(O->n_ev, (size_t)(n), "%zu events, want %d", O->n_ev,     \
                     (int)(n));                                                \
    } while (0)

/* Accepted, nothing to record. */
#define NOOP(c)                                                                \
    do {                                                                       \
        size_t nrec_ = N_REC;                                                  \
        dec_reason r_ = run(c);                                                \
        cr_assert_eq(r_, DEC_OK, "refused: %s (%s)", dec_reason_code(r_),      \
                     O->message ? O->message : "");                            \
        cr_assert(O->noop, "not a noop");                                      \
        cr_assert_eq(O->n_ev, 0);                                              \
        cr_assert_eq(N_REC, nrec_);                                            \
    } while (0)

/* ---------------------------------------------------------- fixtures */

/* Watch ids: n in the last 4 bytes, spread into bytes 8..11 as well. */
static void wid(uint32_t n, uint8_t id[16])
{
    static const uint8_t base[8] = {0x01, 0x8f, 0x3c, 0x2a, 0x9b, 0x10, 0x7d, 0x42};
    memcpy(id, base, 8);
    uint32_t h = n * 0x9E3779B1u;
    for (int i = 0; i < 4; i++) {
        id[8 + i] = (uint8_t)(h >> (8 * i));
        id[12 + i] = (uint8_t)(n >> (24 - 8 * i));
    }
}

static uint32_t wnum(const uint8_t id[16])
{
    return (uint32_t)id[12] << 24 | (uint32_t)id[13] << 16 | (uint32_t)id[14] << 8 | id[15];
}

static const st_watch *watch_of(uint32_t n)
{
    uint8_t id[16];
    wid(n, id);
    return st_watch_get(&S, id);
}

static int64_t stock_of(uint32_t n)
{
    const st_watch *w = watch_of(n);
    cr_assert_not_null(w, "watch %u missing", n);
    return w->stock;
}

static int64_t price_of(uint32_t n)
{
    const st_watch *w = watch_of(n);
    cr_assert_not_null(w, "watch %u missing", n);
    return w->price;
}

static void assert_watch_stream(const ev_event *e, uint32_t n)
{
    uint8_t id[16];
    char u[37], want[64];
    wid(n, id);
    ev_uuid_format(id, u);
    snprintf(want, sizeof want, "watch-%s", u);
    ASSERT_STR(e->env.stream, want);
}

static dec_cmd watch_cmd(uint32_t n, const char *name, int64_t price, int64_t stock)
{
    dec_cmd c = cmd(DEC_WATCH_ADD);
    wid(n, c.u.watch.watch_id);
    c.u.watch.watch_name = ev_str_c(name);
    c.u.watch.brand = EV_STR("Omega");
    c.u.watch.price = price;
    c.u.watch.currency = EV_STR("USD");
    c.u.watch.set_stock = true;
    c.u.watch.stock = stock;
    c.u.watch.category = EV_STR("diver");
    return c;
}

static void add_watch(uint32_t n, int64_t price, int64_t stock)
{
    dec_cmd c = watch_cmd(n, "Watch", price, stock);
    ACCEPT(&c, 1);
}

static dec_cmd reg_cmd(const char *email, const char *name)
{
    dec_cmd c = cmd(DEC_CUSTOMER_REGISTER);
    c.actor = EV_STR("guest");
    c.actor_system = false;
    c.u.reg.email = ev_str_c(email);
    c.u.reg.full_name = ev_str_c(name);
    c.u.reg.password_hash = EV_STR("$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA");
    return c;
}

static uint64_t add_customer(const char *email)
{
    dec_cmd c = reg_cmd(email, "Some Customer");
    ACCEPT(&c, 1);
    return O->id;
}

static void make_role(uint64_t customer, uint8_t role)
{
    dec_cmd c = cmd(DEC_ROLE_SET);
    c.u.role.customer_id = customer;
    c.u.role.role = role;
    ACCEPT(&c, 1);
}

static dec_line_in line(uint32_t watch, int64_t qty)
{
    dec_line_in l;
    memset(&l, 0, sizeof l);
    wid(watch, l.watch_id);
    l.quantity = qty;
    return l;
}

static dec_line_in line_p(uint32_t watch, int64_t qty, int64_t price)
{
    dec_line_in l = line(watch, qty);
    l.unit_price = price;
    l.has_price = true;
    return l;
}

static dec_cmd order_cmd(const dec_line_in *lines, uint32_t n)
{
    dec_cmd c = cmd(DEC_ORDER_PLACE);
    c.u.order.lines = lines;
    c.u.order.n_lines = n;
    return c;
}

/* A one-line order by the system; returns its id. */
static uint64_t place(uint32_t watch, int64_t qty)
{
    dec_line_in l = line(watch, qty);
    dec_cmd c = order_cmd(&l, 1);
    ACCEPT(&c, 2);
    return O->id;
}

static dec_cmd status_cmd(uint64_t order, uint8_t to)
{
    dec_cmd c = cmd(DEC_ORDER_SET_STATUS);
    c.u.status.order_id = order;
    c.u.status.status = to;
    return c;
}

static dec_cmd cancel_cmd(uint64_t order)
{
    dec_cmd c = cmd(DEC_ORDER_CANCEL);
    c.u.status.order_id = order;
    return c;
}

static void move_to(uint64_t order, uint8_t to)
{
    dec_cmd c = status_cmd(order, to);
    ACCEPT(&c, 1);
}

static uint8_t status_of(uint64_t order)
{
    const st_order *o = st_order_get(&S, order);
    cr_assert_not_null(o, "order %llu missing", (unsigned long long)order);
    return o->status;
}

static dec_cmd pay_cmd(dec_kind kind, uint64_t order, int64_t amount, const char *event_id)
{
    dec_cmd c = cmd(kind);
    c.actor = EV_STR("stripe");
    c.u.pay.order_id = order;
    c.u.pay.provider = EV_STR("stripe");
    c.u.pay.intent_id = EV_STR("pi_3Nabc");
    c.u.pay.provider_event_id = ev_str_c(event_id);
    c.u.pay.amount = amount;
    return c;
}

/* 64 lower-case hex digits. */
static void hexid(char out[65], uint32_t n) { snprintf(out, 65, "%064x", n); }

static dec_cmd token_cmd(dec_kind kind, uint64_t customer, const char *hash)
{
    dec_cmd c = cmd(kind);
    c.u.token.customer_id = customer;
    c.u.token.token_hash = ev_str_c(hash);
    c.u.token.expires_at = 1769817600;
    if (kind == DEC_TOKEN_REVOKE)
        c.u.token.reason = EV_STR("logout");
    return c;
}

/* ---------------------------------------------------------- watches */

Test(decide, watch_add_emits_watch_added)
{
    dec_cmd c = cmd(DEC_WATCH_ADD);
    wid(1, c.u.watch.watch_id);
    c.u.watch.watch_name = EV_STR("Seamaster 300");
    c.u.watch.brand = EV_STR("Omega");
    c.u.watch.model_code = EV_STR("");
    c.u.watch.description = EV_STR("A diver's watch");
    c.u.watch.price = 529900;
    c.u.watch.currency = EV_STR("USD");
    c.u.watch.set_stock = true;
    c.u.watch.stock = 7;
    c.u.watch.image_url = EV_STR("");
    c.u.watch.category = EV_STR("diver");
    ACCEPT(&c, 1);

    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_WATCH_ADDED);
    assert_watch_stream(e, 1);
    ASSERT_STR(e->env.actor, "system");
    ASSERT_STR(e->env.causation, "cmd-0");
    ASSERT_STR(e->env.correlation, "test-correlation");
    ASSERT_NULL_STR(e->env.idem_key);
    const ev_watch_added *p = &e->u.watch_added;
    cr_assert_arr_eq(p->watch_id, c.u.watch.watch_id, 16);
    ASSERT_STR(p->watch_name, "Seamaster 300");
    ASSERT_STR(p->brand, "Omega");
    ASSERT_NULL_STR(p->model_code);
    ASSERT_STR(p->description, "A diver's watch");
    cr_assert_eq(p->price, 529900);
    ASSERT_STR(p->currency, "USD");
    cr_assert_eq(p->stock_quantity, 7);
    ASSERT_NULL_STR(p->image_url);
    ASSERT_STR(p->category, "diver");

    const st_watch *w = watch_of(1);
    cr_assert_not_null(w);
    cr_assert_eq(w->stock, 7);
    cr_assert_eq(w->price, 529900);
    cr_assert_str_eq(w->currency, "USD");
    cr_assert_eq(S.n_watches, 1);
    cr_assert_eq(S.next_pos, 1);
}

Test(decide, watch_add_optional_fields_empty_are_null_and_stock_defaults_to_zero)
{
    dec_cmd c = cmd(DEC_WATCH_ADD);
    wid(2, c.u.watch.watch_id);
    c.u.watch.watch_name = EV_STR("Plain");
    c.u.watch.brand = EV_STR("");
    c.u.watch.model_code = EV_STR("");
    c.u.watch.description = EV_STR("");
    c.u.watch.image_url = EV_STR("");
    c.u.watch.category = EV_STR("");
    c.u.watch.price = 1;
    c.u.watch.currency = EV_STR("EUR");
    ACCEPT(&c, 1);
    const ev_watch_added *p = &O->ev[0].u.watch_added;
    ASSERT_NULL_STR(p->brand);
    ASSERT_NULL_STR(p->model_code);
    ASSERT_NULL_STR(p->description);
    ASSERT_NULL_STR(p->image_url);
    ASSERT_NULL_STR(p->category);
    cr_assert_eq(p->stock_quantity, 0);
    cr_assert_eq(p->price, 1);
    ASSERT_STR(p->currency, "EUR");
    cr_assert_eq(stock_of(2), 0);
    cr_assert_str_eq(watch_of(2)->currency, "EUR");

    /* Every category the catalogue knows. */
    static const char *const cats[] = {"automatic", "chronograph", "diver",
                                       "sport", "classic", "luxury"};
    for (uint32_t i = 0; i < 6; i++) {
        c = watch_cmd(10 + i, "W", 100, 1);
        c.u.watch.category = ev_str_c(cats[i]);
        ACCEPT(&c, 1);
        ASSERT_STR(O->ev[0].u.watch_added.category, cats[i]);
    }
}

Test(decide, watch_add_is_admin_only)
{
    uint64_t alice = add_customer("alice@example.com");
    cr_assert_eq(alice, 1);

    dec_cmd c = watch_cmd(1, "Speedmaster", 650000, 3);
    as_customer(&c, alice);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    c = watch_cmd(1, "Speedmaster", 650000, 3);
    as_guest(&c);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    cr_assert_null(watch_of(1));

    /* A customer may not promote themselves. */
    dec_cmd r = cmd(DEC_ROLE_SET);
    as_customer(&r, alice);
    r.u.role.customer_id = alice;
    r.u.role.role = EV_role_ADMIN;
    EXPECT(&r, DEC_FORBIDDEN, NULL);

    /* An agent is not an admin. */
    make_role(alice, EV_role_AGENT);
    cr_assert_eq(st_customer_get(&S, alice)->role, EV_role_AGENT);
    c = watch_cmd(1, "Speedmaster", 650000, 3);
    as_customer(&c, alice);
    EXPECT(&c, DEC_FORBIDDEN, NULL);

    /* The system grants admin: customer.role_changed. */
    r = cmd(DEC_ROLE_SET);
    r.u.role.customer_id = alice;
    r.u.role.role = EV_role_ADMIN;
    ACCEPT(&r, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_CUSTOMER_ROLE_CHANGED);
    ASSERT_STR(O->ev[0].env.stream, "customer-1");
    cr_assert_eq(O->ev[0].u.customer_role_changed.customer_id, alice);
    cr_assert_eq(O->ev[0].u.customer_role_changed.role, EV_role_ADMIN);
    cr_assert_eq(O->id, alice);
    cr_assert_eq(st_customer_get(&S, alice)->role, EV_role_ADMIN);

    /* Granting it again records nothing. */
    r = cmd(DEC_ROLE_SET);
    r.u.role.customer_id = alice;
    r.u.role.role = EV_role_ADMIN;
    NOOP(&r);

    /* Now the customer may add watches. */
    c = watch_cmd(1, "Speedmaster", 650000, 3);
    as_customer(&c, alice);
    ACCEPT(&c, 1);
    ASSERT_STR(O->ev[0].env.actor, "customer");
    cr_assert_eq(stock_of(1), 3);

    /* Roles of unknown customers, unknown roles. */
    r = cmd(DEC_ROLE_SET);
    r.u.role.customer_id = 99;
    r.u.role.role = EV_role_ADMIN;
    EXPECT(&r, DEC_NOT_FOUND, "customer_id");
    r = cmd(DEC_ROLE_SET);
    r.u.role.customer_id = alice;
    r.u.role.role = EV_role_COUNT;
    EXPECT(&r, DEC_INVALID, "role");
}

Test(decide, watch_add_refusals)
{
    dec_cmd c = watch_cmd(1, "", 1000, 1);
    EXPECT(&c, DEC_INVALID, "watch_name");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.watch_name = (ev_str){NULL, 0};
    EXPECT(&c, DEC_INVALID, "watch_name");
    c = watch_cmd(1, "X", 0, 1);
    EXPECT(&c, DEC_INVALID, "price");
    c = watch_cmd(1, "X", -500, 1);
    EXPECT(&c, DEC_INVALID, "price");
    c = watch_cmd(1, "X", DEC_MAX_PRICE + 1, 1);
    EXPECT(&c, DEC_INVALID, "price");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.category = EV_STR("smartwatch");
    EXPECT(&c, DEC_INVALID, "category");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.category = EV_STR("Diver");
    EXPECT(&c, DEC_INVALID, "category");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.currency = EV_STR("usd");
    EXPECT(&c, DEC_INVALID, "currency");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.currency = EV_STR("US");
    EXPECT(&c, DEC_INVALID, "currency");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.currency = EV_STR("USDT");
    EXPECT(&c, DEC_INVALID, "currency");
    c = watch_cmd(1, "X", 1000, 1);
    c.u.watch.currency = (ev_str){NULL, 0};
    EXPECT(&c, DEC_INVALID, "currency");
    c = watch_cmd(1, "X", 1000, -1);
    EXPECT(&c, DEC_INVALID, "stock_quantity");
    cr_assert_eq(S.n_watches, 0);

    /* Duplicate id. */
    c = watch_cmd(1, "First", 1000, 4);
    ACCEPT(&c, 1);
    c = watch_cmd(1, "Second", 2000, 9);
    EXPECT(&c, DEC_EXISTS, "watch_id");
    cr_assert_eq(S.n_watches, 1);
    cr_assert_eq(price_of(1), 1000);
    cr_assert_eq(stock_of(1), 4);
}

Test(decide, watch_update_emits_only_changed_fields)
{
    add_watch(1, 10000, 5);
    dec_cmd c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_NAME | EV_WF_PRICE | EV_WF_DESCRIPTION;
    c.u.watch.watch_name = EV_STR("Renamed");
    c.u.watch.price = 12500;
    c.u.watch.description = EV_STR("");
    c.u.watch.brand = EV_STR("Not changed");
    c.u.watch.category = EV_STR("not even valid");
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_WATCH_UPDATED);
    assert_watch_stream(e, 1);
    const ev_watch_updated *p = &e->u.watch_updated;
    cr_assert_arr_eq(p->watch_id, c.u.watch.watch_id, 16);
    cr_assert_eq(p->changed, EV_WF_NAME | EV_WF_PRICE | EV_WF_DESCRIPTION);
    ASSERT_STR(p->watch_name, "Renamed");
    cr_assert_eq(p->price, 12500);
    ASSERT_NULL_STR(p->description); /* "" stores null */
    ASSERT_NULL_STR(p->brand);
    ASSERT_NULL_STR(p->model_code);
    ASSERT_NULL_STR(p->image_url);
    ASSERT_NULL_STR(p->category);
    cr_assert_eq(price_of(1), 12500);
    cr_assert_eq(stock_of(1), 5);

    /* Only the brand: price stays. */
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_BRAND;
    c.u.watch.brand = EV_STR("Tudor");
    c.u.watch.price = 1; /* not in changed: ignored */
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.watch_updated.changed, EV_WF_BRAND);
    ASSERT_STR(O->ev[0].u.watch_updated.brand, "Tudor");
    cr_assert_eq(O->ev[0].u.watch_updated.price, 0);
    cr_assert_eq(price_of(1), 12500);

    /* Changed fields are validated. */
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_PRICE;
    c.u.watch.price = 0;
    EXPECT(&c, DEC_INVALID, "price");
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_NAME;
    c.u.watch.watch_name = EV_STR("");
    EXPECT(&c, DEC_INVALID, "watch_name");
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_CATEGORY;
    c.u.watch.category = EV_STR("pocket");
    EXPECT(&c, DEC_INVALID, "category");
}

Test(decide, watch_update_refusals)
{
    add_watch(1, 10000, 5);
    dec_cmd c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    EXPECT(&c, DEC_INVALID, NULL);
    cr_assert_str_eq(O->message, "No fields to update");
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = 1u << 20; /* no known field */
    EXPECT(&c, DEC_INVALID, NULL);
    cr_assert_str_eq(O->message, "No fields to update");

    c = cmd(DEC_WATCH_UPDATE);
    wid(2, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_PRICE;
    c.u.watch.price = 100;
    EXPECT(&c, DEC_NOT_FOUND, "watch_id");
    c = cmd(DEC_WATCH_UPDATE);
    wid(2, c.u.watch.watch_id);
    c.u.watch.set_stock = true;
    c.u.watch.stock = 4;
    EXPECT(&c, DEC_NOT_FOUND, "watch_id");

    uint64_t bob = add_customer("bob@example.com");
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_PRICE;
    c.u.watch.price = 100;
    as_customer(&c, bob);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    cr_assert_eq(price_of(1), 10000);
}

Test(decide, watch_update_with_stock_emits_stock_adjusted)
{
    add_watch(1, 10000, 5);
    dec_cmd c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_PRICE;
    c.u.watch.price = 11000;
    c.u.watch.set_stock = true;
    c.u.watch.stock = 12;
    ACCEPT(&c, 2);
    cr_assert_eq(O->ev[0].env.type, EV_T_WATCH_UPDATED);
    cr_assert_eq(O->ev[0].u.watch_updated.price, 11000);
    cr_assert_eq(O->ev[1].env.type, EV_T_STOCK_ADJUSTED);
    assert_watch_stream(&O->ev[1], 1);
    const ev_stock_adjusted *p = &O->ev[1].u.stock_adjusted;
    cr_assert_arr_eq(p->watch_id, c.u.watch.watch_id, 16);
    cr_assert_eq(p->delta, 7);
    cr_assert_eq(p->quantity, 12);
    cr_assert_eq(p->reason, EV_stock_reason_RESTOCK);
    cr_assert_eq(p->order_id, 0);
    ASSERT_NULL_STR(p->note);
    cr_assert_eq(stock_of(1), 12);
    cr_assert_eq(price_of(1), 11000);

    /* Stock only, down: a correction. */
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.set_stock = true;
    c.u.watch.stock = 3;
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_STOCK_ADJUSTED);
    cr_assert_eq(O->ev[0].u.stock_adjusted.delta, -9);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 3);
    cr_assert_eq(O->ev[0].u.stock_adjusted.reason, EV_stock_reason_CORRECTION);
    cr_assert_eq(stock_of(1), 3);

    /* The same stock again: nothing. */
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.set_stock = true;
    c.u.watch.stock = 3;
    NOOP(&c);

    /* A field plus the same stock: only watch.updated. */
    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_IMAGE_URL;
    c.u.watch.image_url = EV_STR("https://img.example.com/1.jpg");
    c.u.watch.set_stock = true;
    c.u.watch.stock = 3;
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_WATCH_UPDATED);
    ASSERT_STR(O->ev[0].u.watch_updated.image_url, "https://img.example.com/1.jpg");

    c = cmd(DEC_WATCH_UPDATE);
    wid(1, c.u.watch.watch_id);
    c.u.watch.set_stock = true;
    c.u.watch.stock = -1;
    EXPECT(&c, DEC_INVALID, "stock_quantity");
    cr_assert_eq(stock_of(1), 3);
}

/* ------------------------------------------------------------ stock */

static dec_cmd stock_cmd(dec_kind kind, uint32_t watch, int64_t q, uint8_t reason)
{
    dec_cmd c = cmd(kind);
    wid(watch, c.u.stock.watch_id);
    c.u.stock.quantity = q;
    c.u.stock.reason = reason;
    return c;
}

Test(decide, stock_set)
{
    add_watch(1, 5000, 4);
    dec_cmd c = stock_cmd(DEC_STOCK_SET, 1, 10, 0);
    c.u.stock.note = EV_STR("delivery 42");
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_STOCK_ADJUSTED);
    assert_watch_stream(e, 1);
    cr_assert_eq(e->u.stock_adjusted.delta, 6);
    cr_assert_eq(e->u.stock_adjusted.quantity, 10);
    cr_assert_eq(e->u.stock_adjusted.reason, EV_stock_reason_RESTOCK);
    cr_assert_eq(e->u.stock_adjusted.order_id, 0);
    ASSERT_STR(e->u.stock_adjusted.note, "delivery 42");
    cr_assert_eq(stock_of(1), 10);

    c = stock_cmd(DEC_STOCK_SET, 1, 2, 0);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.stock_adjusted.delta, -8);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 2);
    cr_assert_eq(O->ev[0].u.stock_adjusted.reason, EV_stock_reason_CORRECTION);
    ASSERT_NULL_STR(O->ev[0].u.stock_adjusted.note);
    cr_assert_eq(stock_of(1), 2);

    c = stock_cmd(DEC_STOCK_SET, 1, 2, 0);
    NOOP(&c);
    cr_assert_eq(stock_of(1), 2);

    c = stock_cmd(DEC_STOCK_SET, 1, 0, 0);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.stock_adjusted.delta, -2);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 0);
    cr_assert_eq(O->ev[0].u.stock_adjusted.reason, EV_stock_reason_CORRECTION);
    cr_assert_eq(stock_of(1), 0);

    c = stock_cmd(DEC_STOCK_SET, 1, -1, 0);
    EXPECT(&c, DEC_INVALID, "stock_quantity");
    c = stock_cmd(DEC_STOCK_SET, 1, DEC_MAX_STOCK + 1, 0);
    EXPECT(&c, DEC_INVALID, "stock_quantity");
    c = stock_cmd(DEC_STOCK_SET, 2, 5, 0);
    EXPECT(&c, DEC_NOT_FOUND, "watch_id");
    cr_assert_eq(stock_of(1), 0);

    uint64_t bob = add_customer("bob@example.com");
    c = stock_cmd(DEC_STOCK_SET, 1, 50, 0);
    as_customer(&c, bob);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    cr_assert_eq(stock_of(1), 0);
}

Test(decide, stock_adjust)
{
    add_watch(1, 5000, 4);
    dec_cmd c = stock_cmd(DEC_STOCK_ADJUST, 1, 5, EV_stock_reason_RESTOCK);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_STOCK_ADJUSTED);
    cr_assert_eq(O->ev[0].u.stock_adjusted.delta, 5);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 9);
    cr_assert_eq(O->ev[0].u.stock_adjusted.reason, EV_stock_reason_RESTOCK);
    cr_assert_eq(stock_of(1), 9);

    c = stock_cmd(DEC_STOCK_ADJUST, 1, -3, EV_stock_reason_CORRECTION);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.stock_adjusted.delta, -3);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 6);
    cr_assert_eq(O->ev[0].u.stock_adjusted.reason, EV_stock_reason_CORRECTION);

    c = stock_cmd(DEC_STOCK_ADJUST, 1, 2, EV_stock_reason_CORRECTION);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.stock_adjusted.delta, 2);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 8);
    cr_assert_eq(O->ev[0].u.stock_adjusted.reason, EV_stock_reason_CORRECTION);

    /* Below zero: refused, with what is there. */
    c = stock_cmd(DEC_STOCK_ADJUST, 1, -9, EV_stock_reason_CORRECTION);
    EXPECT(&c, DEC_OUT_OF_STOCK, "quantity");
    cr_assert_eq(O->detail, 8);
    cr_assert_eq(stock_of(1), 8);

    c = stock_cmd(DEC_STOCK_ADJUST, 1, -8, EV_stock_reason_CORRECTION);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.stock_adjusted.quantity, 0);
    cr_assert_eq(stock_of(1), 0);

    c = stock_cmd(DEC_STOCK_ADJUST, 1, -1, EV_stock_reason_RESTOCK);
    EXPECT(&c, DEC_INVALID, "quantity");
    c = stock_cmd(DEC_STOCK_ADJUST, 1, 0, EV_stock_reason_CORRECTION);
    EXPECT(&c, DEC_INVALID, "quantity");
    c = stock_cmd(DEC_STOCK_ADJUST, 1, 3, EV_stock_reason_SALE);
    EXPECT(&c, DEC_INVALID, "reason");
    c = stock_cmd(DEC_STOCK_ADJUST, 1, 3, EV_stock_reason_CANCELLATION);
    EXPECT(&c, DEC_INVALID, "reason");
    c = stock_cmd(DEC_STOCK_ADJUST, 2, 3, EV_stock_reason_RESTOCK);
    EXPECT(&c, DEC_NOT_FOUND, "watch_id");

    uint64_t bob = add_customer("bob@example.com");
    c = stock_cmd(DEC_STOCK_ADJUST, 1, 3, EV_stock_reason_RESTOCK);
    as_customer(&c, bob);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    cr_assert_eq(stock_of(1), 0);
}

/* --------------------------------------------------------- accounts */

Test(decide, register_normalises_email_and_numbers_customers)
{
    dec_cmd c = reg_cmd("  Alice@Example.COM ", "Alice Liddell");
    c.u.reg.phone = EV_STR("");
    c.u.reg.address = EV_STR("1 Rabbit Hole");
    c.u.reg.city = EV_STR("Oxford");
    c.u.reg.country = EV_STR("");
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_CUSTOMER_REGISTERED);
    ASSERT_STR(e->env.stream, "customer-1");
    const ev_customer_registered *p = &e->u.customer_registered;
    cr_assert_eq(p->customer_id, 1);
    ASSERT_STR(p->email, "alice@example.com");
    ASSERT_STR(p->full_name, "Alice Liddell");
    cr_assert_eq(p->role, EV_role_USER);
    ASSERT_STR(p->password_hash, "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA");
    ASSERT_NULL_STR(p->phone);
    ASSERT_STR(p->address, "1 Rabbit Hole");
    ASSERT_STR(p->city, "Oxford");
    ASSERT_NULL_STR(p->country);
    cr_assert_eq(O->id, 1);
    cr_assert_str_eq(O->email, "alice@example.com");

    const st_customer *cu = st_customer_get(&S, 1);
    cr_assert_not_null(cu);
    cr_assert_eq(cu->role, EV_role_USER);
    uint64_t who = 0;
    cr_assert(st_email_taken(&S, EV_STR("alice@example.com"), &who));
    cr_assert_eq(who, 1);

    /* An account without a password (legacy checkout). */
    c = reg_cmd("bob@example.com", "Bob");
    c.u.reg.password_hash = (ev_str){NULL, 0};
    ACCEPT(&c, 1);
    cr_assert_eq(O->id, 2);
    cr_assert_eq(O->ev[0].u.customer_registered.customer_id, 2);
    ASSERT_NULL_STR(O->ev[0].u.customer_registered.password_hash);
    ASSERT_STR(O->ev[0].env.stream, "customer-2");

    cr_assert_eq(add_customer("carol@example.com"), 3);
    cr_assert_eq(S.max_customer_id, 3);

    /* An empty password hash is not "no password". */
    c = reg_cmd("dave@example.com", "Dave");
    c.u.reg.password_hash = EV_STR("");
    EXPECT(&c, DEC_INVALID, "password");
}

Test(decide, register_email_unique_after_normalisation)
{
    cr_assert_eq(add_customer("alice@example.com"), 1);
    static const char *const same[] = {"alice@example.com", "ALICE@example.com",
                                       " Alice@Example.Com\t", "\r\nalice@EXAMPLE.COM\n"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        dec_cmd c = reg_cmd(same[i], "Alice Again");
        EXPECT(&c, DEC_EMAIL_TAKEN, "email");
    }
    /* No id was used up. */
    cr_assert_eq(add_customer("dave@example.com"), 2);
}

Test(decide, register_refuses_invalid_emails)
{
    static const char *const bad[] = {
        "aliceexample.com",      /* no @ */
        "alice@bob@example.com", /* two @ */
        "alice@@example.com",    /* two @ */
        "alice@example",         /* no dot in the domain */
        "al ice@example.com",    /* space */
        "alice@exa mple.com",    /* space */
        "alice@example.com foo", /* space */
        "@example.com",          /* nothing before @ */
        "alice@",                /* nothing after @ */
        "alice@.com",            /* dot at the start of the domain */
        "alice@example.com.",    /* dot at the end */
        "alice@example..com",    /* empty label */
        "<alice@example.com>",
        "a@b",
        "",
        "   ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dec_cmd c = reg_cmd(bad[i], "Alice");
        dec_reason r = run(&c);
        cr_assert_eq(r, DEC_INVALID, "\"%s\": %s, want validation_failed", bad[i],
                     dec_reason_code(r));
        cr_assert_str_eq(O->field, "email", "\"%s\"", bad[i]);
        cr_assert_eq(O->n_ev, 0);
    }
    dec_cmd c = reg_cmd("x", "Alice");
    c.u.reg.email = (ev_str){NULL, 0};
    EXPECT(&c, DEC_INVALID, "email");
    cr_assert_eq(N_REC, 0);
    cr_assert_eq(S.max_customer_id, 0);
}

Test(decide, register_full_name_at_least_two_characters)
{
    dec_cmd c = reg_cmd("alice@example.com", "A");
    EXPECT(&c, DEC_INVALID, "full_name");
    c = reg_cmd("alice@example.com", " A ");
    EXPECT(&c, DEC_INVALID, "full_name");
    c = reg_cmd("alice@example.com", "\tA\t");
    EXPECT(&c, DEC_INVALID, "full_name");
    c = reg_cmd("alice@example.com", "");
    EXPECT(&c, DEC_INVALID, "full_name");
    c = reg_cmd("alice@example.com", "   ");
    EXPECT(&c, DEC_INVALID, "full_name");
    c = reg_cmd("alice@example.com", "x");
    c.u.reg.full_name = (ev_str){NULL, 0};
    EXPECT(&c, DEC_INVALID, "full_name");
    cr_assert_eq(S.max_customer_id, 0);

    c = reg_cmd("alice@example.com", "Al");
    ACCEPT(&c, 1);
    ASSERT_STR(O->ev[0].u.customer_registered.full_name, "Al");
    cr_assert_eq(O->id, 1);
}

/* "≥2 chars" (API.md): one character written with two UTF-8 bytes is still
 * one character. */
Test(decide, register_full_name_counts_characters_not_bytes)
{
    dec_cmd c = reg_cmd("alice@example.com", "\xC3\x89"); /* "É" */
    EXPECT(&c, DEC_INVALID, "full_name");
    c = reg_cmd("bob@example.com", "\xE6\x9D\x8E"); /* "李" */
    EXPECT(&c, DEC_INVALID, "full_name");
}

Test(decide, normalise_email)
{
    char buf[256];
    int n = dec_normalise_email(EV_STR("  Alice@Example.COM "), buf, sizeof buf);
    cr_assert_eq(n, 17);
    cr_assert_str_eq(buf, "alice@example.com");
    n = dec_normalise_email(EV_STR("\tBOB.Smith+tag@Mail.Example.ORG\r\n"), buf, sizeof buf);
    cr_assert_eq(n, 30);
    cr_assert_str_eq(buf, "bob.smith+tag@mail.example.org");
    n = dec_normalise_email(EV_STR("a@b.c"), buf, sizeof buf);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(buf, "a@b.c");

    static const char *const bad[] = {"alice", "alice@@example.com", "a@b@c.com",
                                      "alice@localhost", "al ice@x.com", "@x.com",
                                      "alice@", "alice@.com", "alice@x.com.",
                                      "alice@x..com", "", "  ", "alice\"@x.com",
                                      "ali,ce@x.com", "alice@x.com;", "ali\\ce@x.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(dec_normalise_email(ev_str_c(bad[i]), buf, sizeof buf), -1,
                     "\"%s\" accepted", bad[i]);
    cr_assert_eq(dec_normalise_email((ev_str){NULL, 0}, buf, sizeof buf), -1);

    /* The buffer must hold the address and its NUL. */
    cr_assert_eq(dec_normalise_email(EV_STR("alice@example.com"), buf, 17), -1);
    cr_assert_eq(dec_normalise_email(EV_STR("alice@example.com"), buf, 18), 17);
    cr_assert_str_eq(buf, "alice@example.com");

    /* Over 254 bytes. */
    char big[300];
    memset(big, 'a', sizeof big);
    memcpy(big + 250, "@x.com", 6);
    cr_assert_eq(dec_normalise_email((ev_str){big, 256}, buf, sizeof buf), -1);
    cr_assert_eq(dec_normalise_email((ev_str){big + 6, 250}, buf, sizeof buf), 250);
}

/* ----------------------------------------------------------- orders */

Test(decide, order_place_reserves_stock_and_totals_in_minor_units)
{
    add_watch(1, 10000, 5);
    add_watch(2, 2599, 10);
    uint64_t alice = add_customer("alice@example.com");
    dec_line_in ls[] = {line(1, 2), line_p(2, 3, 2599)};
    dec_cmd c = order_cmd(ls, 2);
    as_customer(&c, alice);
    ACCEPT(&c, 3);
    cr_assert_eq(O->id, 1);
    cr_assert_eq(O->total, 2 * 10000 + 3 * 2599);

    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_ORDER_PLACED);
    ASSERT_STR(e->env.stream, "order-1");
    const ev_order_placed *p = &e->u.order_placed;
    cr_assert_eq(p->order_id, 1);
    cr_assert_eq(p->customer_id, alice);
    ASSERT_STR(p->currency, "USD");
    cr_assert_eq(p->total, 27797);
    cr_assert_eq(p->lines.n, 2);
    uint8_t id1[16], id2[16];
    wid(1, id1);
    wid(2, id2);
    cr_assert_arr_eq(p->lines.v[0].watch_id, id1, 16);
    cr_assert_eq(p->lines.v[0].quantity, 2);
    cr_assert_eq(p->lines.v[0].unit_price, 10000);
    cr_assert_eq(p->lines.v[0].subtotal, 20000);
    cr_assert_arr_eq(p->lines.v[1].watch_id, id2, 16);
    cr_assert_eq(p->lines.v[1].quantity, 3);
    cr_assert_eq(p->lines.v[1].unit_price, 2599);
    cr_assert_eq(p->lines.v[1].subtotal, 7797);
    ASSERT_STR(p->shipping_address, ""); /* "" when absent */
    ASSERT_NULL_STR(p->guest_token_hash);

    /* One sale per line, with the resulting stock. */
    for (int i = 1; i <= 2; i++) {
        cr_assert_eq(O->ev[i].env.type, EV_T_STOCK_ADJUSTED);
        cr_assert_eq(O->ev[i].u.stock_adjusted.reason, EV_stock_reason_SALE);
        cr_assert_eq(O->ev[i].u.stock_adjusted.order_id, 1);
        cr_assert(ev_str_eq(O->ev[i].env.causation, c.causation), "causation");
    }
    assert_watch_stream(&O->ev[1], 1);
    cr_assert_arr_eq(O->ev[1].u.stock_adjusted.watch_id, id1, 16);
    cr_assert_eq(O->ev[1].u.stock_adjusted.delta, -2);
    cr_assert_eq(O->ev[1].u.stock_adjusted.quantity, 3);
    assert_watch_stream(&O->ev[2], 2);
    cr_assert_arr_eq(O->ev[2].u.stock_adjusted.watch_id, id2, 16);
    cr_assert_eq(O->ev[2].u.stock_adjusted.delta, -3);
    cr_assert_eq(O->ev[2].u.stock_adjusted.quantity, 7);

    cr_assert_eq(stock_of(1), 3);
    cr_assert_eq(stock_of(2), 7);
    const st_order *o = st_order_get(&S, 1);
    cr_assert_not_null(o);
    cr_assert_eq(o->status, EV_order_status_PENDING);
    cr_assert_eq(o->total, 27797);
    cr_assert_eq(o->customer_id, alice);
    cr_assert_eq(o->n_lines, 2);
    cr_assert_str_eq(o->currency, "USD");

    /* Large amounts stay exact, up to what numeric(10,2) holds. */
    add_watch(3, 1234567890, 100);
    dec_line_in big[] = {line(3, 7), line(1, 1)};
    c = order_cmd(big, 2);
    ACCEPT(&c, 3);
    cr_assert_eq(O->total, 1234567890LL * 7 + 10000);
    cr_assert_eq(O->ev[0].u.order_placed.lines.v[0].subtotal, 8641975230LL);
    cr_assert_eq(O->ev[0].u.order_placed.customer_id, 0); /* the system */
    /* A total over 99,999,999.99 is refused, and takes no stock. */
    dec_line_in huge[] = {line(3, 9)};
    c = order_cmd(huge, 1);
    EXPECT(&c, DEC_INVALID, "items");
    cr_assert_eq(stock_of(3), 93);

    /* An explicit currency must be the catalogue's. */
    dec_line_in one = line(1, 1);
    c = order_cmd(&one, 1);
    c.u.order.currency = EV_STR("EUR");
    EXPECT(&c, DEC_INVALID, "currency");
    c = order_cmd(&one, 1);
    c.u.order.currency = EV_STR("USD");
    ACCEPT(&c, 2);
    cr_assert_eq(O->id, 3);
}

Test(decide, order_ids_are_sequential)
{
    add_watch(1, 1000, 10);
    for (uint64_t i = 1; i <= 5; i++)
        cr_assert_eq(place(1, 1), i);
    cr_assert_eq(S.max_order_id, 5);
    cr_assert_eq(stock_of(1), 5);
}

Test(decide, order_guest_has_no_customer)
{
    add_watch(1, 1000, 10);
    char token[65];
    hexid(token, 0xabc);
    dec_line_in l = line(1, 2);
    dec_cmd c = order_cmd(&l, 1);
    as_guest(&c);
    c.u.order.guest_token_hash = ev_str_c(token);
    c.u.order.shipping_address = EV_STR("1 Main St, Springfield");
    ACCEPT(&c, 2);
    const ev_order_placed *p = &O->ev[0].u.order_placed;
    cr_assert_eq(p->customer_id, 0);
    ASSERT_STR(p->guest_token_hash, token);
    ASSERT_STR(p->shipping_address, "1 Main St, Springfield");
    ASSERT_STR(O->ev[0].env.actor, "guest");
    cr_assert_eq(st_order_get(&S, O->id)->customer_id, 0);
    cr_assert_eq(stock_of(1), 8);

    /* An actor claiming an unknown account. */
    c = order_cmd(&l, 1);
    as_customer(&c, 77);
    EXPECT(&c, DEC_NOT_FOUND, "customer_id");
}

Test(decide, order_out_of_stock_takes_nothing)
{
    add_watch(1, 1000, 5);
    add_watch(2, 2000, 1);
    dec_line_in ls[] = {line(1, 2), line(2, 2)};
    dec_cmd c = order_cmd(ls, 2);
    EXPECT(&c, DEC_OUT_OF_STOCK, "quantity");
    cr_assert_eq(O->index, 1);
    cr_assert_eq(O->detail, 1);
    cr_assert_eq(stock_of(1), 5);
    cr_assert_eq(stock_of(2), 1);
    cr_assert_eq(S.max_order_id, 0);

    dec_line_in first[] = {line(1, 6), line(2, 1)};
    c = order_cmd(first, 2);
    EXPECT(&c, DEC_OUT_OF_STOCK, "quantity");
    cr_assert_eq(O->index, 0);
    cr_assert_eq(O->detail, 5);

    /* Exactly what is there is fine, and the refusal used no id. */
    dec_line_in all[] = {line(1, 5), line(2, 1)};
    c = order_cmd(all, 2);
    ACCEPT(&c, 3);
    cr_assert_eq(O->id, 1);
    cr_assert_eq(O->ev[1].u.stock_adjusted.quantity, 0);
    cr_assert_eq(O->ev[2].u.stock_adjusted.quantity, 0);
    cr_assert_eq(stock_of(1), 0);
    cr_assert_eq(stock_of(2), 0);

    dec_line_in one = line(2, 1);
    c = order_cmd(&one, 1);
    EXPECT(&c, DEC_OUT_OF_STOCK, "quantity");
    cr_assert_eq(O->index, 0);
    cr_assert_eq(O->detail, 0);
}

Test(decide, order_lines_for_one_watch_count_together)
{
    add_watch(1, 1000, 5);
    add_watch(2, 1000, 5);
    dec_line_in ls[] = {line(1, 3), line(2, 1), line(1, 3)};
    dec_cmd c = order_cmd(ls, 3);
    EXPECT(&c, DEC_OUT_OF_STOCK, "quantity");
    cr_assert_eq(O->index, 2);
    cr_assert_eq(O->detail, 2); /* 5 minus the 3 of line 0 */
    cr_assert_eq(stock_of(1), 5);

    dec_line_in ok[] = {line(1, 3), line(2, 1), line(1, 2)};
    c = order_cmd(ok, 3);
    ACCEPT(&c, 4);
    cr_assert_eq(O->ev[1].u.stock_adjusted.delta, -3);
    cr_assert_eq(O->ev[1].u.stock_adjusted.quantity, 2);
    cr_assert_eq(O->ev[2].u.stock_adjusted.delta, -1);
    cr_assert_eq(O->ev[2].u.stock_adjusted.quantity, 4);
    cr_assert_eq(O->ev[3].u.stock_adjusted.delta, -2);
    cr_assert_eq(O->ev[3].u.stock_adjusted.quantity, 0);
    cr_assert_eq(O->total, 6000);
    cr_assert_eq(stock_of(1), 0);
    cr_assert_eq(stock_of(2), 4);
}

Test(decide, order_catalogue_price_is_the_truth)
{
    add_watch(1, 10000, 10);
    add_watch(2, 500, 10);
    dec_line_in ls[] = {line_p(1, 1, 9999)};
    dec_cmd c = order_cmd(ls, 1);
    EXPECT(&c, DEC_PRICE_CHANGED, "unit_price");
    cr_assert_eq(O->index, 0);
    cr_assert_eq(O->detail, 10000);

    dec_line_in second[] = {line_p(1, 1, 10000), line_p(2, 1, 501)};
    c = order_cmd(second, 2);
    EXPECT(&c, DEC_PRICE_CHANGED, "unit_price");
    cr_assert_eq(O->index, 1);
    cr_assert_eq(O->detail, 500);
    cr_assert_eq(stock_of(1), 10);

    dec_line_in zero[] = {line_p(1, 1, 0)};
    c = order_cmd(zero, 1);
    EXPECT(&c, DEC_INVALID, "unit_price");

    /* The catalogue price changes: the client's old price is refused. */
    dec_cmd u = cmd(DEC_WATCH_UPDATE);
    wid(1, u.u.watch.watch_id);
    u.u.watch.changed = EV_WF_PRICE;
    u.u.watch.price = 12000;
    ACCEPT(&u, 1);
    dec_line_in old[] = {line_p(1, 2, 10000)};
    c = order_cmd(old, 1);
    EXPECT(&c, DEC_PRICE_CHANGED, "unit_price");
    cr_assert_eq(O->detail, 12000);

    dec_line_in now[] = {line_p(1, 2, 12000), line(2, 3)};
    c = order_cmd(now, 2);
    ACCEPT(&c, 3);
    cr_assert_eq(O->total, 2 * 12000 + 3 * 500);
    cr_assert_eq(O->ev[0].u.order_placed.lines.v[0].unit_price, 12000);
    cr_assert_eq(O->ev[0].u.order_placed.lines.v[0].subtotal, 24000);
    cr_assert_eq(O->ev[0].u.order_placed.lines.v[1].unit_price, 500);
    cr_assert_eq(O->ev[0].u.order_placed.lines.v[1].subtotal, 1500);
}

Test(decide, order_unknown_watch_and_bad_quantities)
{
    add_watch(1, 1000, 10);
    dec_line_in ls[] = {line(1, 1), line(2, 1)};
    dec_cmd c = order_cmd(ls, 2);
    EXPECT(&c, DEC_NOT_FOUND, "watch_id");
    cr_assert_eq(O->index, 1);

    dec_line_in q0[] = {line(1, 1), line(1, 0)};
    c = order_cmd(q0, 2);
    EXPECT(&c, DEC_INVALID, "quantity");
    cr_assert_eq(O->index, 1);
    dec_line_in qn[] = {line(1, -2)};
    c = order_cmd(qn, 1);
    EXPECT(&c, DEC_INVALID, "quantity");
    cr_assert_eq(O->index, 0);
    dec_line_in qbig[] = {line(1, DEC_MAX_QTY + 1)};
    c = order_cmd(qbig, 1);
    EXPECT(&c, DEC_INVALID, "quantity");
    cr_assert_eq(stock_of(1), 10);
    cr_assert_eq(S.max_order_id, 0);
}

Test(decide, order_line_count_limits)
{
    add_watch(1, 100, 200);
    static dec_line_in ls[EV_MAX_LINES + 1];
    for (int i = 0; i <= EV_MAX_LINES; i++)
        ls[i] = line(1, 1);
    dec_cmd c = order_cmd(ls, 0);
    EXPECT(&c, DEC_INVALID, "items");
    c = order_cmd(NULL, 1);
    EXPECT(&c, DEC_INVALID, "items");
    c = order_cmd(ls, EV_MAX_LINES + 1);
    EXPECT(&c, DEC_INVALID, "items");
    cr_assert_eq(stock_of(1), 200);

    c = order_cmd(ls, EV_MAX_LINES);
    ACCEPT(&c, EV_MAX_LINES + 1);
    cr_assert_eq(O->total, 100 * EV_MAX_LINES);
    cr_assert_eq(O->ev[EV_MAX_LINES].u.stock_adjusted.quantity, 100);
    cr_assert_eq(stock_of(1), 100);
    cr_assert_eq(st_order_get(&S, 1)->n_lines, EV_MAX_LINES);
}

/* ----------------------------------------------------- order status */

Test(decide, order_status_forward_path)
{
    add_watch(1, 1000, 10);
    uint64_t id = place(1, 1);
    const uint8_t path[] = {EV_order_status_PENDING, EV_order_status_PROCESSING,
                            EV_order_status_SHIPPED, EV_order_status_DELIVERED};
    for (int i = 1; i < 4; i++) {
        dec_cmd c = status_cmd(id, path[i]);
        ACCEPT(&c, 1);
        const ev_event *e = &O->ev[0];
        cr_assert_eq(e->env.type, EV_T_ORDER_STATUS_CHANGED);
        ASSERT_STR(e->env.stream, "order-1");
        cr_assert_eq(e->u.order_status_changed.order_id, id);
        cr_assert_eq(e->u.order_status_changed.from, path[i - 1]);
        cr_assert_eq(e->u.order_status_changed.to, path[i]);
        cr_assert_eq(O->status, path[i]);
        cr_assert_eq(O->id, id);
        cr_assert_eq(O->total, 1000);
        cr_assert_eq(status_of(id), path[i]);

        /* The same status again: nothing. */
        c = status_cmd(id, path[i]);
        NOOP(&c);
        cr_assert_eq(O->status, path[i]);
    }
    dec_cmd c = status_cmd(id, EV_order_status_DELIVERED);
    NOOP(&c);
    /* Stock untouched by status moves. */
    cr_assert_eq(stock_of(1), 9);

    /* Pending again: a noop too. */
    uint64_t id2 = place(1, 1);
    c = status_cmd(id2, EV_order_status_PENDING);
    NOOP(&c);
    cr_assert_eq(O->status, EV_order_status_PENDING);
}

static void expect_bad_move(uint64_t id, uint8_t to, bool via_cancel)
{
    uint8_t before = status_of(id);
    dec_cmd c = via_cancel ? cancel_cmd(id) : status_cmd(id, to);
    EXPECT(&c, DEC_BAD_TRANSITION, "status");
    cr_assert_eq(O->status, before, "out.status %d, want %d", O->status, before);
    cr_assert_eq(status_of(id), before);
}

Test(decide, order_status_bad_transitions)
{
    add_watch(1, 1000, 10);
    uint64_t id = place(1, 1);
    expect_bad_move(id, EV_order_status_SHIPPED, false);
    expect_bad_move(id, EV_order_status_DELIVERED, false);
    move_to(id, EV_order_status_PROCESSING);
    expect_bad_move(id, EV_order_status_PENDING, false);
    expect_bad_move(id, EV_order_status_DELIVERED, false);
    move_to(id, EV_order_status_SHIPPED);
    expect_bad_move(id, EV_order_status_PENDING, false);
    expect_bad_move(id, EV_order_status_PROCESSING, false);
    expect_bad_move(id, EV_order_status_CANCELLED, false);
    expect_bad_move(id, EV_order_status_CANCELLED, true);
    move_to(id, EV_order_status_DELIVERED);
    expect_bad_move(id, EV_order_status_PENDING, false);
    expect_bad_move(id, EV_order_status_PROCESSING, false);
    expect_bad_move(id, EV_order_status_SHIPPED, false);
    expect_bad_move(id, EV_order_status_CANCELLED, false);
    expect_bad_move(id, EV_order_status_CANCELLED, true);
    cr_assert_eq(stock_of(1), 9); /* a delivered order keeps its stock */

    uint64_t id2 = place(1, 2);
    dec_cmd c = cancel_cmd(id2);
    ACCEPT(&c, 2);
    expect_bad_move(id2, EV_order_status_PENDING, false);
    expect_bad_move(id2, EV_order_status_PROCESSING, false);
    expect_bad_move(id2, EV_order_status_SHIPPED, false);
    expect_bad_move(id2, EV_order_status_DELIVERED, false);

    c = status_cmd(id, 9);
    EXPECT(&c, DEC_INVALID, "status");
    c = status_cmd(99, EV_order_status_PROCESSING);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = cancel_cmd(99);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = status_cmd(0, EV_order_status_PROCESSING);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
}

Test(decide, order_cancel_gives_stock_back)
{
    add_watch(1, 1000, 10);
    add_watch(2, 3000, 4);
    dec_line_in ls[] = {line(1, 2), line(2, 1), line(1, 3)};
    dec_cmd c = order_cmd(ls, 3);
    ACCEPT(&c, 4);
    uint64_t id = O->id;
    cr_assert_eq(stock_of(1), 5);
    cr_assert_eq(stock_of(2), 3);

    c = cancel_cmd(id);
    c.u.status.reason = EV_STR("changed my mind");
    ACCEPT(&c, 4);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_ORDER_CANCELLED);
    ASSERT_STR(e->env.stream, "order-1");
    cr_assert_eq(e->u.order_cancelled.order_id, id);
    cr_assert_eq(e->u.order_cancelled.from, EV_order_status_PENDING);
    ASSERT_STR(e->u.order_cancelled.reason, "changed my mind");
    const int64_t want_delta[] = {2, 1, 3}, want_qty[] = {7, 4, 10};
    const uint32_t want_watch[] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        const ev_stock_adjusted *p = &O->ev[1 + i].u.stock_adjusted;
        cr_assert_eq(O->ev[1 + i].env.type, EV_T_STOCK_ADJUSTED);
        assert_watch_stream(&O->ev[1 + i], want_watch[i]);
        cr_assert_eq(wnum(p->watch_id), want_watch[i]);
        cr_assert_eq(p->reason, EV_stock_reason_CANCELLATION);
        cr_assert_eq(p->order_id, id);
        cr_assert_eq(p->delta, want_delta[i], "line %d delta %lld", i, (long long)p->delta);
        cr_assert_eq(p->quantity, want_qty[i], "line %d quantity %lld", i, (long long)p->quantity);
    }
    cr_assert_eq(O->status, EV_order_status_CANCELLED);
    cr_assert_eq(status_of(id), EV_order_status_CANCELLED);
    cr_assert_eq(stock_of(1), 10);
    cr_assert_eq(stock_of(2), 4);

    /* Cancelling again gives nothing back twice. */
    c = cancel_cmd(id);
    NOOP(&c);
    c = status_cmd(id, EV_order_status_CANCELLED);
    NOOP(&c);
    cr_assert_eq(stock_of(1), 10);
}

Test(decide, order_cancel_from_processing)
{
    add_watch(1, 1000, 10);
    uint64_t id = place(1, 4);
    move_to(id, EV_order_status_PROCESSING);
    cr_assert_eq(stock_of(1), 6);
    /* Through set_status too: order.cancelled, not status_changed. */
    dec_cmd c = status_cmd(id, EV_order_status_CANCELLED);
    ACCEPT(&c, 2);
    cr_assert_eq(O->ev[0].env.type, EV_T_ORDER_CANCELLED);
    cr_assert_eq(O->ev[0].u.order_cancelled.from, EV_order_status_PROCESSING);
    ASSERT_NULL_STR(O->ev[0].u.order_cancelled.reason);
    cr_assert_eq(O->ev[1].u.stock_adjusted.reason, EV_stock_reason_CANCELLATION);
    cr_assert_eq(O->ev[1].u.stock_adjusted.delta, 4);
    cr_assert_eq(O->ev[1].u.stock_adjusted.quantity, 10);
    cr_assert_eq(stock_of(1), 10);
    cr_assert_eq(status_of(id), EV_order_status_CANCELLED);
}

Test(decide, order_customer_may_cancel_own_order_only)
{
    add_watch(1, 1000, 10);
    uint64_t alice = add_customer("alice@example.com");
    uint64_t bob = add_customer("bob@example.com");
    dec_line_in l = line(1, 2);
    dec_cmd c = order_cmd(&l, 1);
    as_customer(&c, alice);
    ACCEPT(&c, 2);
    uint64_t mine = O->id;
    c = order_cmd(&l, 1);
    as_guest(&c);
    ACCEPT(&c, 2);
    uint64_t guest = O->id;

    /* Alice may not move her order's status. */
    c = status_cmd(mine, EV_order_status_PROCESSING);
    as_customer(&c, alice);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    /* Bob does not see Alice's order, nor the guest's. */
    c = cancel_cmd(mine);
    as_customer(&c, bob);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = status_cmd(mine, EV_order_status_PROCESSING);
    as_customer(&c, bob);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    /* Cancelling an order that does not exist looks the same as another's. */
    c = cancel_cmd(9999);
    as_customer(&c, bob);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = cancel_cmd(guest);
    as_customer(&c, bob);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = cancel_cmd(guest);
    as_guest(&c);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    cr_assert_eq(status_of(mine), EV_order_status_PENDING);
    cr_assert_eq(stock_of(1), 6);

    /* Alice cancels hers. */
    c = cancel_cmd(mine);
    as_customer(&c, alice);
    ACCEPT(&c, 2);
    cr_assert_eq(O->ev[0].u.order_cancelled.from, EV_order_status_PENDING);
    cr_assert_eq(status_of(mine), EV_order_status_CANCELLED);
    cr_assert_eq(stock_of(1), 8);

    /* Once shipped, not even the owner may cancel. */
    c = order_cmd(&l, 1);
    as_customer(&c, alice);
    ACCEPT(&c, 2);
    uint64_t later = O->id;
    move_to(later, EV_order_status_PROCESSING);
    move_to(later, EV_order_status_SHIPPED);
    c = cancel_cmd(later);
    as_customer(&c, alice);
    EXPECT(&c, DEC_BAD_TRANSITION, "status");
    cr_assert_eq(O->status, EV_order_status_SHIPPED);

    /* An admin customer moves any order. */
    make_role(bob, EV_role_ADMIN);
    c = status_cmd(later, EV_order_status_DELIVERED);
    as_customer(&c, bob);
    ACCEPT(&c, 1);
    c = cancel_cmd(guest);
    as_customer(&c, bob);
    ACCEPT(&c, 2);
    cr_assert_eq(status_of(guest), EV_order_status_CANCELLED);
}

/* --------------------------------------------------------- payments */

Test(decide, payment_intent_uses_stored_total)
{
    add_watch(1, 12345, 10);
    uint64_t id = place(1, 2);
    dec_cmd c = pay_cmd(DEC_PAYMENT_INTENT, id, 1, NULL);
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_PAYMENT_INTENT_CREATED);
    ASSERT_STR(e->env.stream, "order-1");
    const ev_payment_intent_created *p = &e->u.payment_intent_created;
    cr_assert_eq(p->order_id, id);
    ASSERT_STR(p->provider, "stripe");
    ASSERT_STR(p->intent_id, "pi_3Nabc");
    cr_assert_eq(p->amount, 24690);
    ASSERT_STR(p->currency, "USD");
    cr_assert_eq(O->total, 24690);
    cr_assert_eq(O->id, id);
    cr_assert_eq(status_of(id), EV_order_status_PENDING);

    c = pay_cmd(DEC_PAYMENT_INTENT, id, 24690, NULL);
    c.u.pay.intent_id = EV_STR("");
    EXPECT(&c, DEC_INVALID, "payment_intent_id");
    c = pay_cmd(DEC_PAYMENT_INTENT, id, 24690, NULL);
    c.u.pay.provider = EV_STR("");
    EXPECT(&c, DEC_INVALID, "provider");

    /* No intent for a cancelled order. */
    c = cancel_cmd(id);
    ACCEPT(&c, 2);
    c = pay_cmd(DEC_PAYMENT_INTENT, id, 24690, NULL);
    EXPECT(&c, DEC_BAD_TRANSITION, "order_id");
}

Test(decide, payment_succeeded_moves_order_to_processing_once)
{
    add_watch(1, 12345, 10);
    uint64_t id = place(1, 2);
    dec_cmd c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24690, "evt_1");
    ACCEPT(&c, 2);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_PAYMENT_SUCCEEDED);
    ASSERT_STR(e->env.stream, "order-1");
    const ev_payment_succeeded *p = &e->u.payment_succeeded;
    cr_assert_eq(p->order_id, id);
    ASSERT_STR(p->provider, "stripe");
    ASSERT_STR(p->intent_id, "pi_3Nabc");
    ASSERT_STR(p->provider_event_id, "evt_1");
    cr_assert_eq(p->amount, 24690);
    ASSERT_STR(p->currency, "USD");
    cr_assert_eq(O->ev[1].env.type, EV_T_ORDER_STATUS_CHANGED);
    cr_assert_eq(O->ev[1].u.order_status_changed.order_id, id);
    cr_assert_eq(O->ev[1].u.order_status_changed.from, EV_order_status_PENDING);
    cr_assert_eq(O->ev[1].u.order_status_changed.to, EV_order_status_PROCESSING);
    cr_assert_eq(O->status, EV_order_status_PROCESSING);
    cr_assert_eq(status_of(id), EV_order_status_PROCESSING);
    cr_assert_eq(st_order_get(&S, id)->paid, 1);
    cr_assert(st_payment_seen(&S, EV_STR("evt_1")));

    /* The provider retries: nothing. */
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24690, "evt_1");
    NOOP(&c);
    cr_assert_eq(status_of(id), EV_order_status_PROCESSING);

    /* Another success event on a processing order: recorded, no move. */
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24690, "evt_2");
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_PAYMENT_SUCCEEDED);

    /* The provider's currency in lower case is the same currency. */
    uint64_t id2 = place(1, 1);
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id2, 12345, "evt_3");
    c.u.pay.currency = EV_STR("usd");
    ACCEPT(&c, 2);
    ASSERT_STR(O->ev[0].u.payment_succeeded.currency, "USD");
    cr_assert_eq(status_of(id2), EV_order_status_PROCESSING);

    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id2, 12345, "");
    EXPECT(&c, DEC_INVALID, "provider_event_id");
}

Test(decide, payment_mismatch_is_recorded_not_accepted)
{
    add_watch(1, 12345, 10);
    uint64_t id = place(1, 2);
    dec_cmd c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24689, "evt_1");
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_PAYMENT_MISMATCHED);
    ASSERT_STR(e->env.stream, "order-1");
    const ev_payment_mismatched *p = &e->u.payment_mismatched;
    cr_assert_eq(p->order_id, id);
    ASSERT_STR(p->provider, "stripe");
    ASSERT_STR(p->intent_id, "pi_3Nabc");
    ASSERT_STR(p->provider_event_id, "evt_1");
    cr_assert_eq(p->amount, 24689);
    cr_assert_eq(p->expected, 24690);
    ASSERT_STR(p->currency, "USD");
    cr_assert_eq(status_of(id), EV_order_status_PENDING);
    cr_assert_eq(st_order_get(&S, id)->paid, 0);

    /* The same provider event again: nothing. */
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24689, "evt_1");
    NOOP(&c);

    /* The right amount in another currency. */
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24690, "evt_2");
    c.u.pay.currency = EV_STR("EUR");
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_PAYMENT_MISMATCHED);
    ASSERT_STR(O->ev[0].u.payment_mismatched.currency, "EUR");
    cr_assert_eq(O->ev[0].u.payment_mismatched.amount, 24690);
    cr_assert_eq(O->ev[0].u.payment_mismatched.expected, 24690);
    cr_assert_eq(status_of(id), EV_order_status_PENDING);

    /* Over-payment is a mismatch too. */
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24691, "evt_3");
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].env.type, EV_T_PAYMENT_MISMATCHED);
    cr_assert_eq(status_of(id), EV_order_status_PENDING);

    /* Then the right payment. */
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, id, 24690, "evt_4");
    ACCEPT(&c, 2);
    cr_assert_eq(status_of(id), EV_order_status_PROCESSING);
}

Test(decide, payment_failed_and_unknown_orders)
{
    add_watch(1, 12345, 10);
    uint64_t id = place(1, 2);
    dec_cmd c = pay_cmd(DEC_PAYMENT_FAILED, id, 0, "evt_9");
    c.u.pay.reason = EV_STR("card_declined");
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_PAYMENT_FAILED);
    ASSERT_STR(e->env.stream, "order-1");
    cr_assert_eq(e->u.payment_failed.order_id, id);
    ASSERT_STR(e->u.payment_failed.provider, "stripe");
    ASSERT_STR(e->u.payment_failed.intent_id, "pi_3Nabc");
    ASSERT_STR(e->u.payment_failed.provider_event_id, "evt_9");
    ASSERT_STR(e->u.payment_failed.reason, "card_declined");
    cr_assert_eq(status_of(id), EV_order_status_PENDING);
    cr_assert_eq(st_order_get(&S, id)->paid, 0);

    c = pay_cmd(DEC_PAYMENT_FAILED, id, 0, "evt_9");
    NOOP(&c);

    c = pay_cmd(DEC_PAYMENT_FAILED, id, 0, "evt_10");
    ACCEPT(&c, 1);
    ASSERT_NULL_STR(O->ev[0].u.payment_failed.reason);

    c = pay_cmd(DEC_PAYMENT_INTENT, 42, 100, NULL);
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, 42, 100, "evt_11");
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = pay_cmd(DEC_PAYMENT_FAILED, 42, 100, "evt_12");
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    c = pay_cmd(DEC_PAYMENT_SUCCEEDED, 0, 100, "evt_13");
    EXPECT(&c, DEC_NOT_FOUND, "order_id");
    cr_assert_not(st_payment_seen(&S, EV_STR("evt_11")));
}

/* ----------------------------------------------------------- tokens */

Test(decide, tokens_issue_and_revoke)
{
    uint64_t alice = add_customer("alice@example.com");
    char a[65], b[65], unknown[65];
    hexid(a, 0xa1);
    hexid(b, 0xb2);
    hexid(unknown, 0xdead);

    dec_cmd c = token_cmd(DEC_TOKEN_ISSUE, alice, a);
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_TOKEN_ISSUED);
    ASSERT_STR(e->env.stream, "customer-1");
    cr_assert_eq(e->u.token_issued.customer_id, alice);
    ASSERT_STR(e->u.token_issued.token_hash, a);
    cr_assert_eq(e->u.token_issued.expires_at, 1769817600);
    ASSERT_NULL_STR(e->u.token_issued.replaces);
    cr_assert_eq(O->id, alice);
    uint64_t owner = 0;
    bool revoked = true;
    cr_assert(st_token_get(&S, ev_str_c(a), &owner, &revoked));
    cr_assert_eq(owner, alice);
    cr_assert_not(revoked);

    c = token_cmd(DEC_TOKEN_ISSUE, alice, a);
    EXPECT(&c, DEC_EXISTS, "token_hash");

    /* Rotation: the new token names the old one. */
    c = token_cmd(DEC_TOKEN_ISSUE, alice, b);
    c.u.token.replaces = ev_str_c(a);
    ACCEPT(&c, 1);
    ASSERT_STR(O->ev[0].u.token_issued.replaces, a);
    c = token_cmd(DEC_TOKEN_ISSUE, alice, unknown);
    c.u.token.replaces = EV_STR("not-hex");
    EXPECT(&c, DEC_INVALID, "replaces");

    c = token_cmd(DEC_TOKEN_REVOKE, 0, a);
    c.u.token.reason = EV_STR("rotated");
    ACCEPT(&c, 1);
    e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_TOKEN_REVOKED);
    ASSERT_STR(e->env.stream, "customer-1");
    cr_assert_eq(e->u.token_revoked.customer_id, alice);
    ASSERT_STR(e->u.token_revoked.token_hash, a);
    ASSERT_STR(e->u.token_revoked.reason, "rotated");
    cr_assert_eq(O->id, alice);
    cr_assert(st_token_get(&S, ev_str_c(a), &owner, &revoked));
    cr_assert_eq(owner, alice);
    cr_assert(revoked);

    c = token_cmd(DEC_TOKEN_REVOKE, 0, a);
    NOOP(&c);
    cr_assert_eq(O->id, alice);

    /* A revoked token's hash is not issued again. */
    c = token_cmd(DEC_TOKEN_ISSUE, alice, a);
    EXPECT(&c, DEC_EXISTS, "token_hash");

    c = token_cmd(DEC_TOKEN_REVOKE, 0, unknown);
    EXPECT(&c, DEC_NOT_FOUND, "token_hash");
    c = token_cmd(DEC_TOKEN_REVOKE, 0, b);
    c.u.token.reason = EV_STR("");
    EXPECT(&c, DEC_INVALID, "reason");
    c = token_cmd(DEC_TOKEN_ISSUE, 42, unknown);
    EXPECT(&c, DEC_NOT_FOUND, "customer_id");
}

Test(decide, tokens_malformed_hash)
{
    uint64_t alice = add_customer("alice@example.com");
    char upper[65], h63[65], h65[66], nonhex[65];
    hexid(upper, 0xabc);
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(upper[i] >= 'a' ? upper[i] - 32 : upper[i]);
    hexid(h63, 1);
    h63[63] = 0;
    memset(h65, 'a', 65);
    h65[65] = 0;
    hexid(nonhex, 2);
    nonhex[10] = 'g';
    const char *const bad[] = {upper, h63, h65, nonhex, ""};
    for (size_t i = 0; i < 5; i++) {
        dec_cmd c = token_cmd(DEC_TOKEN_ISSUE, alice, bad[i]);
        EXPECT(&c, DEC_INVALID, "token_hash");
        c = token_cmd(DEC_TOKEN_REVOKE, alice, bad[i]);
        EXPECT(&c, DEC_INVALID, "token_hash");
    }
    dec_cmd c = token_cmd(DEC_TOKEN_ISSUE, alice, "x");
    c.u.token.token_hash = (ev_str){NULL, 0};
    EXPECT(&c, DEC_INVALID, "token_hash");
}

/* ------------------------------------------------------ idempotency */

static void fp_of(uint8_t fp[16], uint8_t v) { memset(fp, v, 16); }

Test(decide, idempotent_repeat_returns_first_outcome)
{
    add_watch(1, 5000, 10);
    add_watch(2, 2500, 10);
    dec_line_in ls[] = {line(1, 2), line(2, 1)};
    dec_cmd c = order_cmd(ls, 2);
    c.idem_key = EV_STR("key-1");
    fp_of(c.idem_fp, 0x11);
    ACCEPT(&c, 3);
    uint64_t id = O->id, first = O->first_pos, last = O->last_pos;
    int64_t total = O->total;
    cr_assert_eq(id, 1);
    cr_assert_eq(total, 12500);
    cr_assert_eq(first, 2); /* after the two watch.added */
    cr_assert_eq(last, 4);
    /* Only the first event carries the key. */
    ASSERT_STR(O->ev[0].env.idem_key, "key-1");
    uint8_t fp[16];
    fp_of(fp, 0x11);
    cr_assert_arr_eq(O->ev[0].env.idem_fp, fp, 16);
    ASSERT_NULL_STR(O->ev[1].env.idem_key);
    ASSERT_NULL_STR(O->ev[2].env.idem_key);
    const st_idem *r = st_idem_get(&S, EV_STR("key-1"));
    cr_assert_not_null(r);
    cr_assert_eq(r->first_pos, first);
    cr_assert_eq(r->last_pos, last);
    cr_assert_eq(r->result_id, id);
    cr_assert_eq(r->total, total);

    /* Other commands in between. */
    cr_assert_eq(place(1, 1), 2);
    add_customer("alice@example.com");

    /* The retry (a new command id, same key and request). */
    c = order_cmd(ls, 2);
    c.idem_key = EV_STR("key-1");
    fp_of(c.idem_fp, 0x11);
    size_t nrec = N_REC;
    cr_assert_eq(run(&c), DEC_OK);
    cr_assert(O->repeat);
    cr_assert_eq(O->id, id);
    cr_assert_eq(O->total, total);
    cr_assert_eq(O->first_pos, first);
    cr_assert_eq(O->last_pos, last);
    cr_assert_eq(O->n_ev, 0);
    cr_assert_eq(N_REC, nrec);
    cr_assert_eq(stock_of(1), 7);
    cr_assert_eq(stock_of(2), 9);
    cr_assert_eq(S.max_order_id, 2);

    /* The same key for another request. */
    c = order_cmd(ls, 1);
    c.idem_key = EV_STR("key-1");
    fp_of(c.idem_fp, 0x12);
    EXPECT(&c, DEC_IDEM_MISMATCH, "Idempotency-Key");
    cr_assert_eq(S.max_order_id, 2);

    /* The record was not touched by the later commands. */
    r = st_idem_get(&S, EV_STR("key-1"));
    cr_assert_eq(r->last_pos, last);
    cr_assert_eq(place(1, 1), 3);
}

Test(decide, idempotency_of_registrations_and_refusals)
{
    add_watch(1, 5000, 1);
    dec_cmd c = reg_cmd("alice@example.com", "Alice");
    c.idem_key = EV_STR("reg-1");
    fp_of(c.idem_fp, 7);
    ACCEPT(&c, 1);
    uint64_t pos = O->first_pos;
    cr_assert_eq(O->id, 1);
    cr_assert_eq(O->last_pos, pos);

    c = reg_cmd("alice@example.com", "Alice");
    c.idem_key = EV_STR("reg-1");
    fp_of(c.idem_fp, 7);
    cr_assert_eq(run(&c), DEC_OK); /* not email_taken: the first outcome */
    cr_assert(O->repeat);
    cr_assert_eq(O->id, 1);
    cr_assert_eq(O->total, 0);
    cr_assert_eq(O->first_pos, pos);
    cr_assert_eq(O->last_pos, pos);
    cr_assert_eq(O->n_ev, 0);

    /* A refused command records nothing under its key. */
    dec_line_in l = line(1, 2);
    c = order_cmd(&l, 1);
    c.idem_key = EV_STR("order-1");
    fp_of(c.idem_fp, 9);
    EXPECT(&c, DEC_OUT_OF_STOCK, "quantity");
    cr_assert_null(st_idem_get(&S, EV_STR("order-1")));
    dec_cmd s = stock_cmd(DEC_STOCK_ADJUST, 1, 5, EV_stock_reason_RESTOCK);
    ACCEPT(&s, 1);
    c = order_cmd(&l, 1);
    c.idem_key = EV_STR("order-1");
    fp_of(c.idem_fp, 9);
    ACCEPT(&c, 2);
    cr_assert_eq(O->id, 1);
    cr_assert_eq(O->total, 10000);
    cr_assert_not_null(st_idem_get(&S, EV_STR("order-1")));
    cr_assert_eq(stock_of(1), 4);
}

/* ----------------------------------------------------------- passwords */

#define NEW_HASH "$scrypt$ln=13,r=8,p=10$bmV3c2FsdA$bmV3aGFzaA"

/* The customer replaces their own hash (what the API sends after a login). */
static dec_cmd password_cmd(uint64_t customer, const char *hash)
{
    dec_cmd c = cmd(DEC_PASSWORD_SET);
    as_customer(&c, customer);
    c.u.password.customer_id = customer;
    c.u.password.password_hash = ev_str_c(hash);
    c.u.password.reason = EV_STR("rehash");
    return c;
}

/* A legacy checkout's account: registered without a password. */
static uint64_t add_passwordless(const char *email)
{
    dec_cmd c = reg_cmd(email, "No Password");
    c.u.reg.password_hash = (ev_str){NULL, 0};
    ACCEPT(&c, 1);
    return O->id;
}

Test(decide, password_set_records_the_new_hash)
{
    add_customer("first@example.com");
    uint64_t alice = add_customer("alice@example.com");
    cr_assert(st_customer_get(&S, alice)->has_password);
    dec_cmd c = password_cmd(alice, NEW_HASH);
    ACCEPT(&c, 1);
    const ev_event *e = &O->ev[0];
    cr_assert_eq(e->env.type, EV_T_CUSTOMER_PASSWORD_CHANGED);
    cr_assert_eq(e->env.version, 1);
    ASSERT_STR(e->env.stream, "customer-2");
    ASSERT_STR(e->env.actor, "customer");
    cr_assert_eq(e->u.customer_password_changed.customer_id, alice);
    ASSERT_STR(e->u.customer_password_changed.password_hash, NEW_HASH);
    ASSERT_STR(e->u.customer_password_changed.reason, "rehash");
    cr_assert_eq(O->id, alice);
    cr_assert(st_customer_get(&S, alice)->has_password);

    /* The state holds no hashes: every change is recorded, and the
     * system (operators' tools) may record one too. */
    c = password_cmd(alice, NEW_HASH);
    ACCEPT(&c, 1);
    c = password_cmd(alice, "$2b$04$abcdefghijklmnopqrstuu0123456789abcdefghijklmnopqrstu");
    c.actor_system = true;
    c.actor_customer = 0;
    c.actor = EV_STR("system");
    ACCEPT(&c, 1);
    ASSERT_STR(O->ev[0].env.stream, "customer-2");
    /* 255 bytes is the most a hash may have (the catalogue's limit). */
    char longest[256];
    memset(longest, 'h', 255);
    longest[255] = 0;
    c = password_cmd(alice, longest);
    ACCEPT(&c, 1);
    cr_assert_eq(O->ev[0].u.customer_password_changed.password_hash.n, 255);
}

Test(decide, password_set_refusals)
{
    uint64_t alice = add_customer("alice@example.com");
    uint64_t bob = add_passwordless("bob@example.com");
    cr_assert_not(st_customer_get(&S, bob)->has_password);

    /* An account without a password is not given one, not even by the
     * system. */
    dec_cmd c = password_cmd(bob, NEW_HASH);
    EXPECT(&c, DEC_FORBIDDEN, "password_hash");
    c.actor_system = true;
    EXPECT(&c, DEC_FORBIDDEN, "password_hash");
    cr_assert_not(st_customer_get(&S, bob)->has_password);

    /* Unknown customers. */
    c = password_cmd(42, NEW_HASH);
    EXPECT(&c, DEC_NOT_FOUND, "customer_id");
    c = password_cmd(42, NEW_HASH);
    c.actor_system = true;
    EXPECT(&c, DEC_NOT_FOUND, "customer_id");

    /* Only the customer (or the system): not another customer, not a guest
     * (not even for customer 0). */
    c = password_cmd(alice, NEW_HASH);
    as_customer(&c, bob);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    c = password_cmd(alice, NEW_HASH);
    as_guest(&c);
    EXPECT(&c, DEC_FORBIDDEN, NULL);
    c = password_cmd(0, NEW_HASH);
    as_guest(&c);
    EXPECT(&c, DEC_FORBIDDEN, NULL);

    /* The hash and the reason. */
    c = password_cmd(alice, "");
    EXPECT(&c, DEC_INVALID, "password_hash");
    c = password_cmd(alice, NEW_HASH);
    c.u.password.password_hash = (ev_str){NULL, 0};
    EXPECT(&c, DEC_INVALID, "password_hash");
    char too_long[257];
    memset(too_long, 'h', 256);
    too_long[256] = 0;
    c = password_cmd(alice, too_long);
    EXPECT(&c, DEC_INVALID, "password_hash");
    c = password_cmd(alice, NEW_HASH);
    c.u.password.reason = EV_STR("");
    EXPECT(&c, DEC_INVALID, "reason");
    c.u.password.reason = EV_STR("a reason of 21 bytes.");
    EXPECT(&c, DEC_INVALID, "reason");
    cr_assert_eq(N_REC, 2, "only the two registrations were recorded");
}

/* Whether an account has a password is part of the state: folded from the
 * log, kept by snapshots, and in the digest. */
Test(decide, the_state_knows_who_has_a_password)
{
    char dir[256], path[300];
    ts_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/state.snap", dir);
    uint64_t alice = add_customer("alice@example.com");
    uint64_t bob = add_passwordless("bob@example.com");
    uint8_t d1[32], d2[32];
    st_digest(&S, d1);
    cr_assert_eq(st_save(&S, path), 0);
    st_state L;
    cr_assert_eq(st_init(&L, ts_email_key), 0);
    cr_assert_eq(st_load(&L, path), 0);
    cr_assert(st_customer_get(&L, alice)->has_password);
    cr_assert_not(st_customer_get(&L, bob)->has_password);
    st_digest(&L, d2);
    cr_assert_arr_eq(d1, d2, 32);
    /* Only the flag differs: the digest sees it. */
    L.customers[bob].has_password = 1;
    st_digest(&L, d2);
    cr_assert_arr_neq(d1, d2, 32);
    st_free(&L);
    ts_rmtree(dir);

    /* A password_changed event for an account the state does not know
     * contradicts it. */
    ev_event e;
    memset(&e, 0, sizeof e);
    e.env.type = EV_T_CUSTOMER_PASSWORD_CHANGED;
    e.env.pos = S.next_pos;
    e.u.customer_password_changed.customer_id = 77;
    e.u.customer_password_changed.password_hash = EV_STR(NEW_HASH);
    e.u.customer_password_changed.reason = EV_STR("rehash");
    cr_assert_eq(st_apply(&S, &e), EV_ERANGE);
}

/* ------------------------------------------------------- randomized */

#define R_WATCHES 24
#define R_POOL 150     /* e-mail addresses */
#define R_TOKENS 200
#define R_EVIDS 3000   /* provider event ids */
#define R_KEYS 400     /* idempotency keys */
#define R_STEPS 20000

typedef struct r_order {
    uint64_t customer;
    int64_t total;
    int64_t returned;
    uint8_t status;
    uint8_t n;
    uint32_t w[3];
    int64_t q[3];
} r_order;

typedef struct r_key {
    bool used;
    uint8_t fp;
    uint64_t id, first_pos, last_pos;
    int64_t total;
} r_key;

typedef struct r_model {
    uint64_t step;
    uint32_t nw;
    int64_t price[R_WATCHES], stock[R_WATCHES], init[R_WATCHES];
    int64_t restock[R_WATCHES], correction[R_WATCHES], cancelled[R_WATCHES],
        sold[R_WATCHES];
    uint64_t ncust;
    bool email_taken[R_POOL];
    bool no_password[R_POOL + 1]; /* by customer id */
    r_order *orders; /* by id; [0] unused */
    uint64_t norders, cap_orders;
    bool evid_seen[R_EVIDS];
    uint8_t token_state[R_TOKENS]; /* 0 none, 1 issued, 2 revoked */
    uint64_t token_owner[R_TOKENS];
    r_key keys[R_KEYS];
    /* what happened */
    uint64_t orders_ok, order_stock_refused, price_changed, order_not_found,
        order_invalid, repeats, idem_mismatch, status_moves, cancellations,
        bad_transitions, status_noops, forbidden, not_found, adjust_refused,
        email_taken_n, registered, pay_ok, pay_mismatch, pay_failed,
        pay_noop, intents, tokens_issued, tokens_revoked, passwords_set, password_refused,
        refusals;
} r_model;

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static uint32_t rn(uint32_t n) { return (uint32_t)(rnd() % n); }

static void r_free(void)
{
    if (M) {
        free(M->orders);
        free(M);
        M = NULL;
    }
}

static bool r_allowed(uint8_t from, uint8_t to)
{
    switch (from) {
    case EV_order_status_PENDING:
        return to == EV_order_status_PROCESSING || to == EV_order_status_CANCELLED;
    case EV_order_status_PROCESSING:
        return to == EV_order_status_SHIPPED || to == EV_order_status_CANCELLED;
    case EV_order_status_SHIPPED: return to == EV_order_status_DELIVERED;
    default: return false;
    }
}

static void r_expect(dec_reason got, dec_reason want, const char *what)
{
    CHECK(got == want, "step %llu %s: got %s (%s %s), want %s",
          (unsigned long long)M->step, what, dec_reason_code(got),
          O->field ? O->field : "-", O->message ? O->message : "",
          dec_reason_code(want));
    if (got != DEC_OK)
        M->refusals++;
}

/* Folds the committed outcome's events into the model, checking each. */
static void r_events(void)
{
    uint64_t placing = 0, cancelling = 0;
    uint32_t sale_i = 0, cancel_i = 0;
    unsigned long long st = (unsigned long long)M->step;
    for (size_t i = 0; i < O->n_ev; i++) {
        const ev_event *e = &O->ev[i];
        switch (e->env.type) {
        case EV_T_WATCH_ADDED: {
            const ev_watch_added *p = &e->u.watch_added;
            uint32_t w = wnum(p->watch_id);
            CHECK(w == M->nw && w < R_WATCHES, "step %llu: unexpected watch %u", st, w);
            M->nw++;
            M->price[w] = p->price;
            M->init[w] = M->stock[w] = p->stock_quantity;
            break;
        }
        case EV_T_WATCH_UPDATED: {
            uint32_t w = wnum(e->u.watch_updated.watch_id);
            CHECK(w < M->nw, "step %llu: update of unknown watch", st);
            if (e->u.watch_updated.changed & EV_WF_PRICE)
                M->price[w] = e->u.watch_updated.price;
            break;
        }
        case EV_T_STOCK_ADJUSTED: {
            const ev_stock_adjusted *p = &e->u.stock_adjusted;
            uint32_t w = wnum(p->watch_id);
            CHECK(w < M->nw, "step %llu: stock of unknown watch", st);
            CHECK(p->delta != 0, "step %llu: stock.adjusted with delta 0", st);
            M->stock[w] += p->delta;
            CHECK(p->quantity == M->stock[w],
                  "step %llu: watch %u stock.adjusted quantity %lld, model %lld", st,
                  w, (long long)p->quantity, (long long)M->stock[w]);
            CHECK(M->stock[w] >= 0, "step %llu: watch %u stock below zero", st, w);
            switch (p->reason) {
            case EV_stock_reason_RESTOCK:
                CHECK(p->delta > 0 && p->order_id == 0, "step %llu: bad restock", st);
                M->restock[w] += p->delta;
                break;
            case EV_stock_reason_CORRECTION:
                CHECK(p->order_id == 0, "step %llu: correction with an order", st);
                M->correction[w] += p->delta;
                break;
            case EV_stock_reason_SALE: {
                CHECK(placing && p->order_id == placing, "step %llu: sale outside its order", st);
                const r_order *o = &M->orders[placing];
                CHECK(sale_i < o->n && o->w[sale_i] == w && -p->delta == o->q[sale_i],
                      "step %llu: sale %u does not match its line", st, sale_i);
                sale_i++;
                M->sold[w] -= p->delta;
                break;
            }
            case EV_stock_reason_CANCELLATION: {
                CHECK(cancelling && p->order_id == cancelling,
                      "step %llu: cancellation outside its order", st);
                r_order *o = &M->orders[cancelling];
                CHECK(cancel_i < o->n && o->w[cancel_i] == w && p->delta == o->q[cancel_i],
                      "step %llu: cancellation %u does not match its line", st, cancel_i);
                cancel_i++;
                o->returned += p->delta;
                M->cancelled[w] += p->delta;
                break;
            }
            default: CHECK(0, "step %llu: stock reason %d", st, p->reason);
            }
            break;
        }
        case EV_T_CUSTOMER_REGISTERED:
            CHECK(e->u.customer_registered.customer_id == M->ncust + 1,
                  "step %llu: customer id %llu, want %llu", st,
                  (unsigned long long)e->u.customer_registered.customer_id,
                  (unsigned long long)M->ncust + 1);
            M->ncust++;
            break;
        case EV_T_ORDER_PLACED: {
            const ev_order_placed *p = &e->u.order_placed;
            CHECK(i == 0, "step %llu: order.placed not first", st);
            CHECK(p->order_id == M->norders + 1, "step %llu: order id %llu, want %llu", st,
                  (unsigned long long)p->order_id, (unsigned long long)M->norders + 1);
            CHECK(p->lines.n >= 1 && p->lines.n <= 3, "step %llu: %u lines", st, p->lines.n);
            if (p->order_id >= M->cap_orders) {
                M->cap_orders = M->cap_orders ? M->cap_orders * 2 : 1024;
                M->orders = realloc(M->orders, M->cap_orders * sizeof *M->orders);
                CHECK(M->orders, "out of memory");
            }
            r_order *o = &M->orders[p->order_id];
            memset(o, 0, sizeof *o);
            o->customer = p->customer_id;
            o->total = p->total;
            o->status = EV_order_status_PENDING;
            o->n = (uint8_t)p->lines.n;
            int64_t sum = 0;
            for (uint32_t k = 0; k < p->lines.n; k++) {
                const ev_line *l = &p->lines.v[k];
                o->w[k] = wnum(l->watch_id);
                o->q[k] = l->quantity;
                CHECK(o->w[k] < M->nw, "step %llu: line of unknown watch", st);
                CHECK(l->unit_price == M->price[o->w[k]],
                      "step %llu: unit price %lld, catalogue %lld", st,
                      (long long)l->unit_price, (long long)M->price[o->w[k]]);
                CHECK(l->subtotal == l->unit_price * l->quantity, "step %llu: subtotal", st);
                sum += l->subtotal;
            }
            CHECK(sum == p->total, "step %llu: total %lld, lines %lld", st,
                  (long long)p->total, (long long)sum);
            M->norders = p->order_id;
            placing = p->order_id;
            break;
        }
        case EV_T_ORDER_STATUS_CHANGED: {
            const ev_order_status_changed *p = &e->u.order_status_changed;
            CHECK(p->order_id >= 1 && p->order_id <= M->norders, "step %llu: unknown order", st);
            r_order *o = &M->orders[p->order_id];
            CHECK(p->from == o->status, "step %llu: order %llu from %d, model %d", st,
                  (unsigned long long)p->order_id, p->from, o->status);
            CHECK(p->to != EV_order_status_CANCELLED && r_allowed(p->from, p->to),
                  "step %llu: order %llu moved %d -> %d", st,
                  (unsigned long long)p->order_id, p->from, p->to);
            o->status = p->to;
            M->status_moves++;
            break;
        }
        case EV_T_ORDER_CANCELLED: {
            const ev_order_cancelled *p = &e->u.order_cancelled;
            CHECK(i == 0, "step %llu: order.cancelled not first", st);
            CHECK(p->order_id >= 1 && p->order_id <= M->norders, "step %llu: unknown order", st);
            r_order *o = &M->orders[p->order_id];
            CHECK(p->from == o->status, "step %llu: order %llu cancelled from %d, model %d",
                  st, (unsigned long long)p->order_id, p->from, o->status);
            CHECK(r_allowed(p->from, EV_order_status_CANCELLED),
                  "step %llu: order %llu cancelled from %d", st,
                  (unsigned long long)p->order_id, p->from);
            o->status = EV_order_status_CANCELLED;
            cancelling = p->order_id;
            M->cancellations++;
            break;
        }
        case EV_T_PAYMENT_SUCCEEDED:
        case EV_T_PAYMENT_MISMATCHED:
        case EV_T_PAYMENT_FAILED:
        case EV_T_PAYMENT_INTENT_CREATED:
        case EV_T_TOKEN_ISSUED:
        case EV_T_TOKEN_REVOKED:
        case EV_T_CUSTOMER_PASSWORD_CHANGED:
        case EV_T_CUSTOMER_ROLE_CHANGED: break; /* checked by the step */
        default: CHECK(0, "step %llu: event type %d", st, e->env.type);
        }
    }
    if (placing)
        CHECK(sale_i == M->orders[placing].n, "step %llu: %u sales for %u lines", st,
              sale_i, M->orders[placing].n);
    if (cancelling) {
        const r_order *o = &M->orders[cancelling];
        int64_t q = 0;
        for (uint32_t k = 0; k < o->n; k++)
            q += o->q[k];
        CHECK(cancel_i == o->n && o->returned == q,
              "step %llu: order %llu gave back %lld of %lld", st,
              (unsigned long long)cancelling, (long long)o->returned, (long long)q);
    }
}

/* The invariants, after every step. */
static void r_invariants(uint64_t touched_order)
{
    unsigned long long st = (unsigned long long)M->step;
    CHECK(S.n_watches == M->nw, "step %llu: %zu watches, model %u", st, S.n_watches, M->nw);
    CHECK(S.max_order_id == M->norders, "step %llu: max order id", st);
    CHECK(S.max_customer_id == M->ncust, "step %llu: max customer id", st);
    for (uint32_t w = 0; w < M->nw; w++) {
        const st_watch *sw = watch_of(w);
        CHECK(sw, "step %llu: watch %u missing", st, w);
        CHECK(sw->stock >= 0, "step %llu: watch %u stock %lld below zero", st, w,
              (long long)sw->stock);
        CHECK(sw->stock == M->stock[w], "step %llu: watch %u stock %lld, model %lld", st,
              w, (long long)sw->stock, (long long)M->stock[w]);
        int64_t sum = M->init[w] + M->restock[w] + M->correction[w] + M->cancelled[w] -
                      M->sold[w];
        CHECK(sum == sw->stock,
              "step %llu: watch %u: initial %lld + restock %lld + correction %lld + "
              "cancellation %lld - sold %lld = %lld, stock %lld",
              st, w, (long long)M->init[w], (long long)M->restock[w],
              (long long)M->correction[w], (long long)M->cancelled[w],
              (long long)M->sold[w], (long long)sum, (long long)sw->stock);
        CHECK(sw->price == M->price[w], "step %llu: watch %u price", st, w);
    }
    uint64_t from = touched_order, to = touched_order;
    if (M->step % 1000 == 999) {
        from = 1;
        to = M->norders;
    }
    for (uint64_t id = from; id && id <= to && id <= M->norders; id++) {
        const st_order *o = st_order_get(&S, id);
        CHECK(o, "step %llu: order %llu missing", st, (unsigned long long)id);
        CHECK(o->status == M->orders[id].status, "step %llu: order %llu status %d, model %d",
              st, (unsigned long long)id, o->status, M->orders[id].status);
        CHECK(o->total == M->orders[id].total && o->customer_id == M->orders[id].customer,
              "step %llu: order %llu total or customer", st, (unsigned long long)id);
    }
}

static void r_watch_add(bool force_new)
{
    bool fresh = force_new || (M->nw < R_WATCHES && rn(3) == 0);
    uint32_t w = fresh ? M->nw : rn(M->nw);
    dec_cmd c = cmd(DEC_WATCH_ADD);
    wid(w, c.u.watch.watch_id);
    c.u.watch.watch_name = EV_STR("Random watch");
    c.u.watch.price = 1000 + rn(200000);
    c.u.watch.currency = EV_STR("USD");
    c.u.watch.set_stock = rn(5) != 0;
    c.u.watch.stock = rn(21);
    c.u.watch.category = EV_STR("sport");
    dec_reason r = run(&c);
    r_expect(r, fresh ? DEC_OK : DEC_EXISTS, "watch add");
    if (r == DEC_OK) {
        CHECK(O->n_ev == 1, "watch add: %zu events", O->n_ev);
        r_events();
        CHECK(M->init[w] == (c.u.watch.set_stock ? c.u.watch.stock : 0), "initial stock");
    }
}

static void r_watch_update(void)
{
    uint32_t w = rn(M->nw);
    dec_cmd c = cmd(DEC_WATCH_UPDATE);
    wid(w, c.u.watch.watch_id);
    c.u.watch.changed = EV_WF_PRICE;
    c.u.watch.price = 1000 + rn(200000);
    if (rn(3) == 0) {
        c.u.watch.set_stock = true;
        c.u.watch.stock = rn(40);
    }
    int64_t before = M->stock[w];
    dec_reason r = run(&c);
    r_expect(r, DEC_OK, "watch update");
    size_t want = 1 + (c.u.watch.set_stock && c.u.watch.stock != before);
    CHECK(O->n_ev == want, "watch update: %zu events, want %zu", O->n_ev, want);
    if (want == 2)
        CHECK(O->ev[1].u.stock_adjusted.reason == (c.u.watch.stock > before
                                                       ? EV_stock_reason_RESTOCK
                                                       : EV_stock_reason_CORRECTION),
              "watch update stock reason");
    r_events();
}

static void r_stock(bool set)
{
    uint32_t w = rn(M->nw);
    int64_t before = M->stock[w], q;
    uint8_t reason = 0;
    if (set) {
        q = rn(50);
    } else if (rn(2)) {
        reason = EV_stock_reason_RESTOCK;
        q = 1 + rn(30);
    } else {
        reason = EV_stock_reason_CORRECTION;
        q = (int64_t)rn(21) - 15;
        if (q == 0)
            q = -1;
    }
    dec_cmd c = stock_cmd(set ? DEC_STOCK_SET : DEC_STOCK_ADJUST, w, q, reason);
    dec_reason r = run(&c);
    if (!set && before + q < 0) {
        r_expect(r, DEC_OUT_OF_STOCK, "stock adjust");
        CHECK(O->detail == before, "stock adjust detail %lld, want %lld",
              (long long)O->detail, (long long)before);
        M->adjust_refused++;
        return;
    }
    r_expect(r, DEC_OK, set ? "stock set" : "stock adjust");
    if (set && q == before) {
        CHECK(O->noop && O->n_ev == 0, "stock set to the same value emitted events");
        return;
    }
    CHECK(O->n_ev == 1, "stock: %zu events", O->n_ev);
    const ev_stock_adjusted *p = &O->ev[0].u.stock_adjusted;
    int64_t target = set ? q : before + q;
    CHECK(p->quantity == target && p->delta == target - before, "stock: wrong event");
    if (set)
        CHECK(p->reason == (q > before ? EV_stock_reason_RESTOCK : EV_stock_reason_CORRECTION),
              "stock set reason");
    else
        CHECK(p->reason == reason, "stock adjust reason");
    r_events();
}

static void r_register(void)
{
    uint32_t k = rn(R_POOL);
    char email[64], want[64];
    bool bad = rn(40) == 0;
    switch (rn(3)) {
    case 0: snprintf(email, sizeof email, "user%u@example.com", k); break;
    case 1: snprintf(email, sizeof email, "  User%u@Example.COM ", k); break;
    default: snprintf(email, sizeof email, "USER%u@EXAMPLE.com\t", k); break;
    }
    if (bad)
        snprintf(email, sizeof email, "user%u.example.com", k);
    snprintf(want, sizeof want, "user%u@example.com", k);
    dec_cmd c = reg_cmd(email, "Random Customer");
    bool no_password = rn(8) == 0; /* a legacy checkout's account */
    if (no_password)
        c.u.reg.password_hash = (ev_str){NULL, 0};
    dec_reason r = run(&c);
    if (bad) {
        r_expect(r, DEC_INVALID, "register bad e-mail");
        return;
    }
    if (M->email_taken[k]) {
        r_expect(r, DEC_EMAIL_TAKEN, "register");
        M->email_taken_n++;
        return;
    }
    r_expect(r, DEC_OK, "register");
    CHECK(O->n_ev == 1 && strcmp(O->email, want) == 0, "register: e-mail %s, want %s",
          O->email, want);
    ASSERT_STR(O->ev[0].u.customer_registered.email, want);
    M->email_taken[k] = true;
    M->registered++;
    r_events();
    CHECK(O->id == M->ncust, "register: id");
    CHECK(O->id <= R_POOL, "register: more customers than addresses");
    M->no_password[O->id] = no_password;
}

static void r_order_place(void)
{
    dec_line_in ls[3];
    uint32_t n = 1 + rn(3), lw[3];
    bool unknown[3];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = rn(M->nw);
        unknown[i] = rn(150) == 0;
        lw[i] = w;
        uint32_t r = rn(100);
        int64_t q = r < 2 ? (int64_t)rn(2) - 1 : r < 10 ? 5 + rn(15) : 1 + rn(3);
        uint32_t pr = rn(100);
        ls[i] = pr < 55   ? line(unknown[i] ? 9999 : w, q)
                : pr < 97 ? line_p(unknown[i] ? 9999 : w, q, M->price[w])
                          : line_p(unknown[i] ? 9999 : w, q, M->price[w] + 1 + rn(50));
    }
    dec_cmd c = order_cmd(ls, n);
    uint32_t a = rn(100);
    uint64_t customer = 0;
    if (a < 40 || !M->ncust) {
        as_guest(&c);
    } else if (a < 95) {
        customer = 1 + rn((uint32_t)M->ncust);
        as_customer(&c, customer);
    } /* else the system */
    char key[32];
    int k = -1;
    uint8_t fpv = 0;
    if (rn(10) == 0) {
        k = (int)rn(R_KEYS);
        snprintf(key, sizeof key, "order-key-%d", k);
        c.idem_key = ev_str_c(key);
        const r_key *rk = &M->keys[k];
        fpv = rk->used ? (rn(2) ? rk->fp : (uint8_t)(rk->fp + 1)) : (uint8_t)(1 + rn(200));
        fp_of(c.idem_fp, fpv);
    }

    /* What the rules say. */
    dec_reason want = DEC_OK;
    uint32_t at = 0;
    int64_t detail = 0;
    bool repeat = false;
    if (k >= 0 && M->keys[k].used) {
        repeat = M->keys[k].fp == fpv;
        want = repeat ? DEC_OK : DEC_IDEM_MISMATCH;
    } else {
        for (uint32_t i = 0; i < n && want == DEC_OK; i++) {
            at = i;
            int64_t q = ls[i].quantity;
            if (q < 1 || q > DEC_MAX_QTY) {
                want = DEC_INVALID;
            } else if (unknown[i]) {
                want = DEC_NOT_FOUND;
            } else if (ls[i].has_price && ls[i].unit_price != M->price[lw[i]]) {
                want = DEC_PRICE_CHANGED;
                detail = M->price[lw[i]];
            } else {
                int64_t earlier = 0;
                for (uint32_t j = 0; j < i; j++)
                    if (lw[j] == lw[i])
                        earlier += ls[j].quantity;
                if (earlier + q > M->stock[lw[i]]) {
                    want = DEC_OUT_OF_STOCK;
                    detail = M->stock[lw[i]] - earlier;
                }
            }
        }
    }
    dec_reason r = run(&c);
    r_expect(r, want, "order");
    switch (want) {
    case DEC_IDEM_MISMATCH: M->idem_mismatch++; return;
    case DEC_INVALID: M->order_invalid++; break;
    case DEC_NOT_FOUND: M->order_not_found++; break;
    case DEC_PRICE_CHANGED: M->price_changed++; break;
    case DEC_OUT_OF_STOCK: M->order_stock_refused++; break;
    default: break;
    }
    if (want != DEC_OK) {
        CHECK(O->index == at, "order: refusal at line %u, want %u", O->index, at);
        if (want == DEC_PRICE_CHANGED || want == DEC_OUT_OF_STOCK)
            CHECK(O->detail == detail, "order: detail %lld, want %lld",
                  (long long)O->detail, (long long)detail);
        return;
    }
    if (repeat) {
        const r_key *rk = &M->keys[k];
        CHECK(O->repeat && O->n_ev == 0 && O->id == rk->id && O->total == rk->total &&
                  O->first_pos == rk->first_pos && O->last_pos == rk->last_pos,
              "order: repeat of key %d is not the first outcome", k);
        M->repeats++;
        return;
    }
    CHECK(!O->repeat && O->n_ev == 1 + n, "order: %zu events for %u lines", O->n_ev, n);
    r_events();
    const r_order *o = &M->orders[M->norders];
    CHECK(O->id == M->norders && O->total == o->total, "order: out id/total");
    CHECK(o->customer == customer, "order: customer %llu, want %llu",
          (unsigned long long)o->customer, (unsigned long long)customer);
    for (uint32_t i = 0; i < n; i++)
        CHECK(o->w[i] == lw[i] && o->q[i] == ls[i].quantity, "order: line %u", i);
    M->orders_ok++;
    if (k >= 0) {
        r_key *rk = &M->keys[k];
        rk->used = true;
        rk->fp = fpv;
        rk->id = O->id;
        rk->total = O->total;
        rk->first_pos = O->first_pos;
        rk->last_pos = O->last_pos;
        CHECK(O->last_pos == O->first_pos + n, "order: positions");
        const st_idem *rec = st_idem_get(&S, c.idem_key);
        CHECK(rec && rec->first_pos == O->first_pos && rec->last_pos == O->last_pos &&
                  rec->result_id == O->id && rec->total == O->total,
              "order: idempotency record");
    }
}

static uint64_t r_pick_order(void)
{
    return rn(50) == 0 ? M->norders + 1 + rn(3) : 1 + rn((uint32_t)M->norders);
}

static void r_status(bool cancel)
{
    if (!M->norders)
        return;
    uint64_t id = r_pick_order();
    const r_order *o = id <= M->norders ? &M->orders[id] : NULL;
    uint8_t to = cancel ? EV_order_status_CANCELLED : (uint8_t)rn(EV_order_status_COUNT);
    dec_cmd c = cancel ? cancel_cmd(id) : status_cmd(id, to);
    uint32_t a = rn(100);
    if (M->ncust && (cancel ? a >= 45 : a >= 92)) {
        uint64_t who = 1 + rn((uint32_t)M->ncust);
        if (cancel && a < 90 && o && o->customer)
            who = o->customer;
        as_customer(&c, who);
    }
    bool admin = c.actor_system;
    bool owner = o && o->customer && o->customer == c.actor_customer;
    dec_reason want;
    size_t n_ev = 0;
    bool noop = false;
    if (!admin && !cancel)
        want = DEC_FORBIDDEN; /* moving a status is for admins */
    else if (!admin && !owner)
        want = DEC_NOT_FOUND; /* nothing about others' orders */
    else if (!o)
        want = DEC_NOT_FOUND;
    else if (o->status == to)
        want = DEC_OK, noop = true;
    else if (!r_allowed(o->status, to))
        want = DEC_BAD_TRANSITION;
    else
        want = DEC_OK, n_ev = to == EV_order_status_CANCELLED ? 1u + o->n : 1u;
    uint8_t before = o ? o->status : 0;
    dec_reason r = run(&c);
    r_expect(r, want, cancel ? "cancel" : "set status");
    switch (want) {
    case DEC_NOT_FOUND: M->not_found++; return;
    case DEC_FORBIDDEN: M->forbidden++; return;
    case DEC_BAD_TRANSITION:
        CHECK(O->status == before, "bad transition: out.status %d, want %d", O->status, before);
        M->bad_transitions++;
        return;
    default: break;
    }
    if (noop) {
        CHECK(O->noop && O->n_ev == 0, "same status emitted events");
        M->status_noops++;
        return;
    }
    CHECK(O->n_ev == n_ev, "status: %zu events, want %zu", O->n_ev, n_ev);
    r_events();
    CHECK(M->orders[id].status == to, "status: order %llu not moved", (unsigned long long)id);
}

static void r_payment(void)
{
    if (!M->norders)
        return;
    uint64_t id = r_pick_order();
    const r_order *o = id <= M->norders ? &M->orders[id] : NULL;
    uint32_t kind = rn(100);
    dec_kind dk = kind < 30 ? DEC_PAYMENT_INTENT
                  : kind < 80 ? DEC_PAYMENT_SUCCEEDED
                              : DEC_PAYMENT_FAILED;
    uint32_t ev = rn(R_EVIDS);
    char evid[32];
    snprintf(evid, sizeof evid, "evt_%u", ev);
    int64_t total = o ? o->total : 100;
    int64_t amount = dk == DEC_PAYMENT_INTENT ? (int64_t)rn(100000)
                     : rn(7) == 0             ? total + 1 + rn(100)
                                              : total;
    dec_cmd c = pay_cmd(dk, id, amount, evid);
    uint8_t before = o ? o->status : 0;
    dec_reason r = run(&c);
    if (!o) {
        r_expect(r, DEC_NOT_FOUND, "payment");
        return;
    }
    if (dk != DEC_PAYMENT_INTENT && M->evid_seen[ev]) {
        r_expect(r, DEC_OK, "payment retry");
        CHECK(O->noop && O->n_ev == 0, "payment retry emitted events");
        M->pay_noop++;
        return;
    }
    if (dk == DEC_PAYMENT_INTENT) {
        if (before == EV_order_status_CANCELLED) {
            r_expect(r, DEC_BAD_TRANSITION, "intent on a cancelled order");
            return;
        }
        r_expect(r, DEC_OK, "intent");
        CHECK(O->n_ev == 1 && O->ev[0].env.type == EV_T_PAYMENT_INTENT_CREATED &&
                  O->ev[0].u.payment_intent_created.amount == total,
              "intent: not for the stored total");
        M->intents++;
        return;
    }
    r_expect(r, DEC_OK, "payment");
    M->evid_seen[ev] = true;
    if (dk == DEC_PAYMENT_FAILED) {
        CHECK(O->n_ev == 1 && O->ev[0].env.type == EV_T_PAYMENT_FAILED, "payment failed");
        M->pay_failed++;
    } else if (amount != total) {
        CHECK(O->n_ev == 1 && O->ev[0].env.type == EV_T_PAYMENT_MISMATCHED &&
                  O->ev[0].u.payment_mismatched.expected == total &&
                  O->ev[0].u.payment_mismatched.amount == amount,
              "payment mismatch");
        M->pay_mismatch++;
    } else {
        size_t want = before == EV_order_status_PENDING ? 2 : 1;
        CHECK(O->n_ev == want && O->ev[0].env.type == EV_T_PAYMENT_SUCCEEDED,
              "payment succeeded: %zu events, want %zu", O->n_ev, want);
        if (want == 2)
            CHECK(O->ev[1].env.type == EV_T_ORDER_STATUS_CHANGED &&
                      O->ev[1].u.order_status_changed.to == EV_order_status_PROCESSING,
                  "payment succeeded: no move to processing");
        M->pay_ok++;
    }
    r_events();
    CHECK(M->orders[id].status ==
              (dk == DEC_PAYMENT_SUCCEEDED && amount == total &&
                       before == EV_order_status_PENDING
                   ? EV_order_status_PROCESSING
                   : before),
          "payment: order status");
}

static void r_token(bool issue)
{
    if (!M->ncust)
        return;
    uint32_t t = rn(R_TOKENS);
    char h[65], rep[65];
    hexid(h, 0x7000 + t);
    if (issue) {
        bool stranger = rn(30) == 0;
        uint64_t who = stranger ? M->ncust + 5 : 1 + rn((uint32_t)M->ncust);
        dec_cmd c = token_cmd(DEC_TOKEN_ISSUE, who, h);
        if (rn(3) == 0) {
            hexid(rep, 0x7000 + rn(R_TOKENS));
            c.u.token.replaces = ev_str_c(rep);
        }
        dec_reason r = run(&c);
        if (stranger) {
            r_expect(r, DEC_NOT_FOUND, "token for unknown customer");
        } else if (M->token_state[t]) {
            r_expect(r, DEC_EXISTS, "token issue");
        } else {
            r_expect(r, DEC_OK, "token issue");
            CHECK(O->n_ev == 1 && O->ev[0].u.token_issued.customer_id == who, "token issued");
            M->token_state[t] = 1;
            M->token_owner[t] = who;
            M->tokens_issued++;
        }
        return;
    }
    dec_cmd c = token_cmd(DEC_TOKEN_REVOKE, 0, h);
    dec_reason r = run(&c);
    if (!M->token_state[t]) {
        r_expect(r, DEC_NOT_FOUND, "token revoke");
    } else if (M->token_state[t] == 2) {
        r_expect(r, DEC_OK, "token revoke again");
        CHECK(O->noop && O->n_ev == 0, "revoking twice emitted events");
    } else {
        r_expect(r, DEC_OK, "token revoke");
        CHECK(O->n_ev == 1 && O->ev[0].u.token_revoked.customer_id == M->token_owner[t],
              "token revoked");
        M->token_state[t] = 2;
        M->tokens_revoked++;
    }
}

static void r_password(void)
{
    if (!M->ncust)
        return;
    bool stranger = rn(30) == 0;
    uint64_t who = stranger ? M->ncust + 1 + rn(3) : 1 + rn((uint32_t)M->ncust);
    dec_cmd c = password_cmd(who, NEW_HASH);
    uint32_t a = rn(10);
    if (a >= 7 && a < 9) {
        as_customer(&c, 1 + rn((uint32_t)M->ncust)); /* maybe someone else */
    } else if (a == 9) {
        c.actor_system = true;
        c.actor_customer = 0;
    }
    bool allowed = c.actor_system || c.actor_customer == who;
    dec_reason r = run(&c);
    if (!allowed) {
        r_expect(r, DEC_FORBIDDEN, "password set by another customer");
        M->password_refused++;
    } else if (stranger) {
        r_expect(r, DEC_NOT_FOUND, "password set for an unknown customer");
        M->password_refused++;
    } else if (M->no_password[who]) {
        r_expect(r, DEC_FORBIDDEN, "password set for an account without one");
        M->password_refused++;
    } else {
        r_expect(r, DEC_OK, "password set");
        CHECK(O->n_ev == 1 && O->ev[0].env.type == EV_T_CUSTOMER_PASSWORD_CHANGED &&
                  O->ev[0].u.customer_password_changed.customer_id == who,
              "password set: the event");
        M->passwords_set++;
    }
}

static void random_run(uint64_t seed)
{
    M = calloc(1, sizeof *M);
    cr_assert_not_null(M);
    rng_state = seed;
    for (int i = 0; i < 20; i++) {
        r_watch_add(true);
        r_invariants(0);
    }
    for (int i = 0; i < 10; i++)
        r_register();
    for (M->step = 0; M->step < R_STEPS; M->step++) {
        uint32_t op = rn(100);
        uint64_t norders = M->norders;
        uint64_t touched = 0;
        size_t nrec = N_REC;
        if (op < 2)
            r_watch_add(false);
        else if (op < 4)
            r_watch_update();
        else if (op < 9)
            r_stock(true);
        else if (op < 16)
            r_stock(false);
        else if (op < 19)
            r_register();
        else if (op < 60)
            r_order_place();
        else if (op < 73)
            r_status(false);
        else if (op < 85)
            r_status(true);
        else if (op < 95)
            r_payment();
        else if (op < 97)
            r_token(true);
        else if (op < 99)
            r_token(false);
        else
            r_password();
        if (O->reason != DEC_OK)
            CHECK(N_REC == nrec, "step %llu: a refusal appended events",
                  (unsigned long long)M->step);
        if (O->id && O->id <= M->norders)
            touched = O->id;
        if (M->norders > norders)
            touched = M->norders;
        r_invariants(touched);
    }
    cr_log_info("random run: %llu orders placed, %llu out of stock, %llu price changed, "
                "%llu cancellations, %llu status moves, %llu bad transitions, %llu "
                "repeats, %llu idem mismatches, %llu payments ok, %llu mismatched, %llu "
                "provider retries, %llu refusals, %zu events",
                (unsigned long long)M->orders_ok, (unsigned long long)M->order_stock_refused,
                (unsigned long long)M->price_changed, (unsigned long long)M->cancellations,
                (unsigned long long)M->status_moves, (unsigned long long)M->bad_transitions,
                (unsigned long long)M->repeats, (unsigned long long)M->idem_mismatch,
                (unsigned long long)M->pay_ok, (unsigned long long)M->pay_mismatch,
                (unsigned long long)M->pay_noop, (unsigned long long)M->refusals, N_REC);
}

Test(decide, randomized_invariants, .timeout = 120)
{
    random_run(0x5EEDC0FFEE123457ull);
    /* A meaningful mix. */
    cr_assert_gt(M->orders_ok, 1000, "orders placed: %llu", (unsigned long long)M->orders_ok);
    cr_assert_gt(M->order_stock_refused, 100, "out of stock: %llu",
                 (unsigned long long)M->order_stock_refused);
    cr_assert_gt(M->cancellations, 100, "cancellations: %llu",
                 (unsigned long long)M->cancellations);
    cr_assert_gt(M->status_moves, 100);
    cr_assert_gt(M->bad_transitions, 100);
    cr_assert_gt(M->status_noops, 20);
    cr_assert_gt(M->price_changed, 20);
    cr_assert_gt(M->order_invalid, 20);
    cr_assert_gt(M->order_not_found, 10);
    cr_assert_gt(M->repeats, 20);
    cr_assert_gt(M->idem_mismatch, 20);
    cr_assert_gt(M->adjust_refused, 20);
    cr_assert_gt(M->email_taken_n, 20);
    cr_assert_gt(M->registered, 100);
    cr_assert_gt(M->pay_ok, 100);
    cr_assert_gt(M->pay_mismatch, 20);
    cr_assert_gt(M->pay_failed, 20);
    cr_assert_gt(M->pay_noop, 10);
    cr_assert_gt(M->intents, 100);
    cr_assert_gt(M->forbidden, 5);
    cr_assert_gt(M->not_found, 50);
    cr_assert_gt(M->tokens_issued, 50);
    cr_assert_gt(M->tokens_revoked, 20);
    cr_assert_gt(M->passwords_set, 50);
    cr_assert_gt(M->password_refused, 10);
    cr_assert_gt(M->refusals, 1000);
}

Test(decide, randomized_log_folds_to_the_same_state, .timeout = 120)
{
    random_run(0xD1CE5EED42ull);
    cr_assert_gt(N_REC, 10000);
    cr_assert_eq(S.next_pos, N_REC);

    st_state F;
    cr_assert_eq(st_init(&F, ts_email_key), 0);
    ev_dec *d = ev_dec_new();
    cr_assert_not_null(d);
    size_t off = 0;
    uint8_t prev[32] = {0};
    ev_buf again = {0}; /* every decoded event encoded once more */
    for (size_t i = 0; i < N_REC; i++) {
        const uint8_t *rec = LOG.p + off;
        ev_event ev;
        int rc = ev_decode(d, rec, REC_LEN[i], i, &ev);
        CHECK(rc == 0, "record %zu: %s", i, ev_strerror(rc));
        CHECK(ev.env.type == REC_TYPE[i], "record %zu: type %d, encoded %d", i,
              ev.env.type, REC_TYPE[i]);
        CHECK(ev.env.pos == i, "record %zu: position %llu", i,
              (unsigned long long)ev.env.pos);
        CHECK(memcmp(ev.env.prev_hash, prev, 32) == 0, "record %zu: chain broken", i);
        CHECK(memcmp(ev_rec_prev(rec, REC_LEN[i]), prev, 32) == 0, "record %zu: prev", i);
        /* Decoding then encoding gives the same bytes and hash. */
        uint8_t h[32];
        size_t before = again.len;
        rc = ev_encode(ENC, &ev, prev, &again, h);
        CHECK(rc == 0, "record %zu: re-encoding: %s", i, ev_strerror(rc));
        CHECK(again.len - before == REC_LEN[i] &&
                  memcmp(again.p + before, rec, REC_LEN[i]) == 0 &&
                  memcmp(h, ev.env.hash, 32) == 0,
              "record %zu (%s): re-encoded bytes differ", i, ev_type_name(ev.env.type));
        memcpy(prev, ev.env.hash, 32);
        rc = st_apply(&F, &ev);
        CHECK(rc == 0, "record %zu (%s): st_apply %s", i, ev_type_name(ev.env.type),
              ev_strerror(rc));
        off += REC_LEN[i];
    }
    cr_assert_eq(off, LOG.len);
    cr_assert_eq(again.len, LOG.len);
    ev_buf_free(&again);
    ev_dec_free(d);
    cr_assert_arr_eq(prev, S.last_hash, 32);

    cr_assert_eq(F.next_pos, S.next_pos);
    cr_assert_eq(F.n_watches, S.n_watches);
    cr_assert_eq(F.max_order_id, S.max_order_id);
    cr_assert_eq(F.max_customer_id, S.max_customer_id);
    cr_assert_eq(F.n_idem, S.n_idem);
    for (size_t w = 0; w < S.n_watches; w++)
        cr_assert_eq(F.watches[w].stock, S.watches[w].stock);
    uint8_t a[32], b[32];
    st_digest(&S, a);
    st_digest(&F, b);
    cr_assert_arr_eq(a, b, 32, "the folded state's digest differs");

    /* And the digest does see a difference. */
    F.watches[0].stock++;
    st_digest(&F, b);
    cr_assert_arr_neq(a, b, 32);
    st_free(&F);
}
