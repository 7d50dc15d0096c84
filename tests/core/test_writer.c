/* test_writer.c - the writer: group commit, answers, and rebuilding its
 * state from the log (with and without a snapshot) after a restart. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/writer.h"
#include "support.h"

#define N_WATCHES 20

typedef struct fixture {
    char dir[256];
    char uri[300];
    char snap[300];
    wr_config cfg;
} fixture;

static void fx_init(fixture *f, uint64_t snapshot_every)
{
    memset(f, 0, sizeof *f);
    ts_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->uri, sizeof f->uri, "lmdb:%s/log", f->dir);
    snprintf(f->snap, sizeof f->snap, "%s/log/writer.snap", f->dir);
    f->cfg.log_uri = f->uri;
    f->cfg.snapshot_path = f->snap;
    f->cfg.snapshot_every = snapshot_every;
    memcpy(f->cfg.email_key, ts_email_key, 32);
}

static wr_writer *fx_open(fixture *f)
{
    wr_writer *w = NULL;
    char err[512];
    int rc = wr_open(&f->cfg, &w, err, sizeof err);
    cr_assert_eq(rc, 0, "wr_open: %s", err);
    return w;
}

static void watch_id(int i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x42;
    id[15] = (uint8_t)i;
}

/* A deterministic mix of commands; request k of a run. All strings used are
 * static or live in the request. */
static void make_cmd(wr_req *r, dec_line_in *lines, unsigned k, unsigned *seed)
{
    memset(r, 0, sizeof *r);
    dec_cmd *c = &r->cmd;
    *c = ts_cmd(DEC_ORDER_PLACE, 1700000000000000ull + k * 1000ull);
    c->causation = (ev_str){NULL, 0}; /* the writer makes one */
    if (k < N_WATCHES) {
        c->kind = DEC_WATCH_ADD;
        watch_id((int)k, c->u.watch.watch_id);
        c->u.watch.watch_name = EV_STR("Test watch");
        c->u.watch.brand = EV_STR("Seiko");
        c->u.watch.price = 10000 + k * 100;
        c->u.watch.currency = EV_STR("USD");
        c->u.watch.set_stock = true;
        c->u.watch.stock = 50;
        return;
    }
    unsigned x = rand_r(seed) % 10;
    if (x < 6) {
        c->kind = DEC_ORDER_PLACE;
        c->actor_system = false;
        c->actor = EV_STR("guest");
        unsigned n = 1 + rand_r(seed) % 3;
        for (unsigned i = 0; i < n; i++) {
            watch_id((int)(rand_r(seed) % N_WATCHES), lines[i].watch_id);
            lines[i].quantity = 1 + rand_r(seed) % 3;
        }
        c->u.order.lines = lines;
        c->u.order.n_lines = n;
        c->u.order.shipping_address = EV_STR("1 Main St");
    } else if (x < 8) {
        c->kind = DEC_ORDER_SET_STATUS;
        c->u.status.order_id = 1 + rand_r(seed) % (k + 1);
        c->u.status.status = (uint8_t)(rand_r(seed) % EV_order_status_COUNT);
    } else {
        c->kind = DEC_STOCK_ADJUST;
        watch_id((int)(rand_r(seed) % N_WATCHES), c->u.stock.watch_id);
        c->u.stock.quantity = 1 + rand_r(seed) % 20;
        c->u.stock.reason = EV_stock_reason_RESTOCK;
    }
}

typedef struct batch {
    wr_req reqs[64];
    wr_req *ptrs[64];
    dec_line_in lines[64][3];
} batch;

/* Runs `total` commands starting at command number `from`, in batches of up
 * to 64. Returns how many were accepted with events. */
static unsigned run_cmds(wr_writer *w, unsigned from, unsigned total, unsigned *seed)
{
    static batch b;
    unsigned accepted = 0;
    for (unsigned done = 0; done < total;) {
        unsigned n = total - done < 64 ? total - done : 64;
        for (unsigned i = 0; i < n; i++) {
            make_cmd(&b.reqs[i], b.lines[i], from + done + i, seed);
            b.ptrs[i] = &b.reqs[i];
        }
        cr_assert_eq(wr_process(w, b.ptrs, n), 0);
        for (unsigned i = 0; i < n; i++) {
            cr_assert_eq(b.reqs[i].err, 0);
            if (b.reqs[i].out.reason == DEC_OK && b.reqs[i].out.n_ev)
                accepted++;
        }
        done += n;
    }
    return accepted;
}

Test(writer, answers_carry_positions_of_their_events)
{
    fixture f;
    fx_init(&f, 0);
    wr_writer *w = fx_open(&f);
    unsigned seed = 1;
    run_cmds(w, 0, N_WATCHES, &seed);
    static wr_req r;
    static dec_line_in l[3];
    make_cmd(&r, l, 1000, &seed);
    r.cmd.kind = DEC_ORDER_PLACE;
    r.cmd.actor_system = false;
    watch_id(3, l[0].watch_id);
    l[0].quantity = 2;
    watch_id(4, l[1].watch_id);
    l[1].quantity = 1;
    memset(&r.cmd.u, 0, sizeof r.cmd.u);
    r.cmd.u.order.lines = l;
    r.cmd.u.order.n_lines = 2;
    wr_req *p = &r;
    cr_assert_eq(wr_process(w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
    cr_assert_eq(r.out.n_ev, 3); /* order.placed + 2 stock.adjusted */
    cr_assert_eq(r.out.first_pos, N_WATCHES);
    cr_assert_eq(r.out.last_pos, N_WATCHES + 2);
    cr_assert_eq(r.out.id, 1);
    cr_assert_eq(r.out.total, 2 * (10000 + 300) + (10000 + 400));
    uint64_t end;
    cr_assert_eq(log_end(wr_log(w), &end), 0);
    cr_assert_eq(end, N_WATCHES + 3);
    /* A refusal appends nothing. */
    l[0].quantity = 1000;
    r.cmd.u.order.n_lines = 1;
    cr_assert_eq(wr_process(w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OUT_OF_STOCK);
    cr_assert_eq(log_end(wr_log(w), &end), 0);
    cr_assert_eq(end, N_WATCHES + 3);
    wr_close(w);
    ts_rmtree(f.dir);
}

static void digest_of(wr_writer *w, uint8_t d[32]) { st_digest(wr_state(w), d); }

Test(writer, restart_rebuilds_exactly_the_same_state)
{
    fixture f;
    fx_init(&f, 700); /* snapshots along the way */
    wr_writer *w = fx_open(&f);
    unsigned seed = 7;
    unsigned accepted = run_cmds(w, 0, 3000, &seed);
    cr_assert_gt(accepted, 1500);
    uint8_t before[32], after[32];
    digest_of(w, before);
    uint64_t next = wr_state(w)->next_pos;
    wr_close(w);

    /* From the snapshot written at close. */
    w = fx_open(&f);
    digest_of(w, after);
    cr_assert_eq(wr_state(w)->next_pos, next);
    cr_assert_arr_eq(before, after, 32);
    wr_close(w);

    /* From the log alone. */
    cr_assert_eq(unlink(f.snap), 0);
    w = fx_open(&f);
    digest_of(w, after);
    cr_assert_arr_eq(before, after, 32);
    /* And the state keeps deciding the same way: more commands on both. */
    run_cmds(w, 3000, 500, &seed);
    wr_close(w);
    ts_rmtree(f.dir);
}

Test(writer, crash_after_snapshot_rebuilds_snapshot_plus_tail)
{
    fixture f;
    fx_init(&f, 500);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        wr_writer *w = NULL;
        char err[512];
        if (wr_open(&f.cfg, &w, err, sizeof err))
            _exit(2);
        unsigned seed = 11;
        run_cmds(w, 0, 2000, &seed);
        uint8_t d[32];
        st_digest(wr_state(w), d);
        if (write(pfd[1], d, 32) != 32)
            _exit(3);
        raise(SIGKILL); /* no close, no final snapshot */
        _exit(4);
    }
    close(pfd[1]);
    uint8_t child[32], got[32];
    cr_assert_eq(read(pfd[0], child, 32), 32);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st));
    cr_assert_eq(access(f.snap, F_OK), 0, "a snapshot was written on the way");

    wr_writer *w = fx_open(&f);
    digest_of(w, got);
    cr_assert_arr_eq(child, got, 32);
    wr_close(w);
    ts_rmtree(f.dir);
}

Test(writer, a_snapshot_that_does_not_match_the_log_is_ignored)
{
    fixture a, b;
    fx_init(&a, 0);
    fx_init(&b, 0);
    unsigned seed = 3;
    wr_writer *w = fx_open(&a);
    run_cmds(w, 0, 400, &seed);
    wr_close(w); /* writes a's snapshot */
    w = fx_open(&b);
    seed = 5;
    run_cmds(w, 0, 300, &seed);
    uint8_t want[32], got[32];
    digest_of(w, want);
    wr_close(w);

    /* b's snapshot replaced by a's: must not be believed. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", a.snap, b.snap);
    cr_assert_eq(system(cmd), 0);
    w = fx_open(&b);
    digest_of(w, got);
    cr_assert_arr_eq(want, got, 32);
    wr_close(w);

    /* A damaged snapshot: likewise. */
    FILE *fp = fopen(b.snap, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, 100, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, 100, SEEK_SET);
    fputc(ch ^ 0x20, fp);
    fclose(fp);
    w = fx_open(&b);
    digest_of(w, got);
    cr_assert_arr_eq(want, got, 32);
    wr_close(w);
    ts_rmtree(a.dir);
    ts_rmtree(b.dir);
}

Test(writer, idempotency_key_survives_a_restart)
{
    fixture f;
    fx_init(&f, 0);
    wr_writer *w = fx_open(&f);
    unsigned seed = 9;
    run_cmds(w, 0, N_WATCHES, &seed);
    static wr_req r;
    static dec_line_in l[1];
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_ORDER_PLACE, 1700000001000000ull);
    r.cmd.idem_key = EV_STR("guest:order-key-1");
    memset(r.cmd.idem_fp, 0xab, 16);
    watch_id(2, l[0].watch_id);
    l[0].quantity = 1;
    r.cmd.u.order.lines = l;
    r.cmd.u.order.n_lines = 1;
    wr_req *p = &r;
    cr_assert_eq(wr_process(w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
    cr_assert_not(r.out.repeat);
    uint64_t id = r.out.id, first = r.out.first_pos, last = r.out.last_pos;
    wr_close(w);
    cr_assert_eq(unlink(f.snap), 0); /* from the log alone */

    w = fx_open(&f);
    uint64_t end0, end1;
    log_end(wr_log(w), &end0);
    cr_assert_eq(wr_process(w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
    cr_assert(r.out.repeat);
    cr_assert_eq(r.out.id, id);
    cr_assert_eq(r.out.first_pos, first);
    cr_assert_eq(r.out.last_pos, last);
    log_end(wr_log(w), &end1);
    cr_assert_eq(end0, end1, "a repeat appends nothing");
    memset(r.cmd.idem_fp, 0xcd, 16);
    cr_assert_eq(wr_process(w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_IDEM_MISMATCH);
    wr_close(w);
    ts_rmtree(f.dir);
}

Test(writer, a_second_writer_is_refused)
{
    fixture f;
    fx_init(&f, 0);
    wr_writer *w = fx_open(&f), *w2 = NULL;
    char err[512] = "";
    cr_assert_eq(wr_open(&f.cfg, &w2, err, sizeof err), LOG_ELOCKED);
    cr_assert_null(w2);
    cr_assert_not_null(strstr(err, "already has a writer"), "message: %s", err);
    wr_close(w);
    w = fx_open(&f);
    wr_close(w);
    ts_rmtree(f.dir);
}

/* ---- group commit through the in-process queue ---- */

#define PRODUCERS 4
#define PER_PRODUCER 1500

typedef struct prod {
    wr_queue *q;
    int id;
    wr_req *reqs;
    dec_line_in *lines;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *done;
} prod;

static void on_done(wr_req *r, void *ud)
{
    prod *p = ud;
    (void)r;
    pthread_mutex_lock(p->mu);
    (*p->done)++;
    pthread_cond_broadcast(p->cv);
    pthread_mutex_unlock(p->mu);
}

static void *producer(void *arg)
{
    prod *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        wr_req *r = &p->reqs[i];
        memset(r, 0, sizeof *r);
        r->cmd = ts_cmd(DEC_ORDER_PLACE, 1700000002000000ull + (uint64_t)i);
        r->cmd.causation = (ev_str){NULL, 0};
        r->cmd.actor_system = false;
        watch_id((p->id * 5 + i) % N_WATCHES, p->lines[i].watch_id);
        p->lines[i].quantity = 1;
        r->cmd.u.order.lines = &p->lines[i];
        r->cmd.u.order.n_lines = 1;
        r->done = on_done;
        r->ud = p;
        wr_queue_push(p->q, r);
    }
    return NULL;
}

static void *writer_thread(void *arg)
{
    void **a = arg;
    wr_source src = wr_queue_source(a[1]);
    wr_run(a[0], &src);
    return NULL;
}

Test(writer, group_commit_through_the_queue)
{
    fixture f;
    fx_init(&f, 0);
    wr_writer *w = fx_open(&f);
    unsigned seed = 1;
    run_cmds(w, 0, N_WATCHES, &seed);
    /* Plenty of stock for every order. */
    for (int i = 0; i < N_WATCHES; i++) {
        static wr_req r;
        memset(&r, 0, sizeof r);
        r.cmd = ts_cmd(DEC_STOCK_SET, 1700000001500000ull);
        watch_id(i, r.cmd.u.stock.watch_id);
        r.cmd.u.stock.quantity = 100000;
        wr_req *p = &r;
        cr_assert_eq(wr_process(w, &p, 1), 0);
        cr_assert_eq(r.out.reason, DEC_OK);
    }
    uint64_t batches0 = wr_batches(w), end0;
    log_end(wr_log(w), &end0);

    wr_queue q;
    wr_queue_init(&q);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int done = 0;
    void *wa[2] = {w, &q};
    pthread_t wt, pt[PRODUCERS];
    prod ps[PRODUCERS];
    cr_assert_eq(pthread_create(&wt, NULL, writer_thread, wa), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (prod){&q, i, calloc(PER_PRODUCER, sizeof(wr_req)),
                       calloc(PER_PRODUCER, sizeof(dec_line_in)), &mu, &cv, &done};
        pthread_create(&pt[i], NULL, producer, &ps[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    pthread_mutex_lock(&mu);
    while (done < PRODUCERS * PER_PRODUCER)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    wr_queue_close(&q);
    pthread_join(wt, NULL);
    wr_queue_destroy(&q);

    /* Every order accepted, with its own two positions, none shared. */
    uint64_t seen = 0;
    for (int i = 0; i < PRODUCERS; i++)
        for (int k = 0; k < PER_PRODUCER; k++) {
            wr_req *r = &ps[i].reqs[k];
            cr_assert_eq(r->err, 0);
            cr_assert_eq(r->out.reason, DEC_OK);
            cr_assert_eq(r->out.last_pos, r->out.first_pos + 1);
            seen += r->out.n_ev;
        }
    uint64_t end1;
    log_end(wr_log(w), &end1);
    cr_assert_eq(end1 - end0, seen);
    cr_assert_eq(seen, 2ull * PRODUCERS * PER_PRODUCER);
    uint64_t batches = wr_batches(w) - batches0;
    cr_assert_lt(batches, (uint64_t)PRODUCERS * PER_PRODUCER,
                 "commands were grouped into fewer appends (%llu)",
                 (unsigned long long)batches);
    audit_result ar;
    uint8_t zero[32] = {0};
    cr_assert_eq(audit_chain(wr_log(w), 0, zero, &ar, NULL, NULL, 0), 0);
    cr_assert_eq(ar.records, end1);
    for (int i = 0; i < PRODUCERS; i++) {
        free(ps[i].reqs);
        free(ps[i].lines);
    }
    wr_close(w);
    ts_rmtree(f.dir);
}

/* A command source the test scripts: take() hands out the requests of the
 * next step at once; after the last step it blocks until kicked (counting
 * kicks) or closed. */
typedef struct scripted {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wr_req **reqs;
    const size_t *steps; /* requests per take() */
    size_t n_steps, step, next;
    bool kicked, closed;
    int kicks, answered;
} scripted;

static long scripted_take(void *ctx, wr_req **out, size_t max)
{
    scripted *s = ctx;
    pthread_mutex_lock(&s->mu);
    while (s->step == s->n_steps && !s->kicked && !s->closed)
        pthread_cond_wait(&s->cv, &s->mu);
    long n = 0;
    if (s->step < s->n_steps) {
        for (size_t i = 0; i < s->steps[s->step] && (size_t)n < max; i++)
            out[n++] = s->reqs[s->next++];
        s->step++;
    } else if (s->closed) {
        n = -1;
    }
    s->kicked = false;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void scripted_kick(void *ctx)
{
    scripted *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    s->kicks++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void scripted_done(wr_req *r, void *ud)
{
    scripted *s = ud;
    (void)r;
    pthread_mutex_lock(&s->mu);
    s->answered++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *scripted_writer(void *arg)
{
    void **a = arg;
    wr_run(a[0], a[1]);
    return NULL;
}

Test(writer, commands_arriving_during_a_commit_share_the_next_batch)
{
    /* One command, then 50 handed over in 5 takes while its commit runs
     * (a durable LMDB commit takes a millisecond; five takes take
     * microseconds), then nothing more: the 50 are decided into one batch
     * (two at the most, should the commit end between two takes) and are
     * answered without any further arrival, because the end of the commit
     * wakes the decider. */
    fixture f;
    fx_init(&f, 0);
    wr_writer *w = fx_open(&f);
    unsigned seed = 1;
    run_cmds(w, 0, N_WATCHES, &seed);
    enum { N = 51 };
    wr_req *reqs = calloc(N, sizeof *reqs), *ptrs[N];
    for (int i = 0; i < N; i++) {
        reqs[i].cmd = ts_cmd(DEC_WATCH_UPDATE, 1700000003000000ull + (uint64_t)i);
        reqs[i].cmd.causation = (ev_str){NULL, 0};
        watch_id(i % N_WATCHES, reqs[i].cmd.u.watch.watch_id);
        reqs[i].cmd.u.watch.changed = EV_WF_DESCRIPTION;
        reqs[i].cmd.u.watch.description = EV_STR("Water resistant to 100 m");
        ptrs[i] = &reqs[i];
    }
    static const size_t steps[] = {1, 10, 10, 10, 10, 10};
    scripted s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, ptrs, steps, 6, 0, 0,
                  false, false, 0, 0};
    for (int i = 0; i < N; i++) {
        reqs[i].done = scripted_done;
        reqs[i].ud = &s;
    }
    wr_source src = {scripted_take, scripted_kick, &s};
    uint64_t batches0 = wr_batches(w);
    pthread_t th;
    void *arg[2] = {w, &src};
    cr_assert_eq(pthread_create(&th, NULL, scripted_writer, arg), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&s.mu);
    while (s.answered < N && pthread_cond_timedwait(&s.cv, &s.mu, &until) == 0) {
    }
    int answered = s.answered, kicks = s.kicks;
    s.closed = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(th, NULL);
    cr_assert_eq(answered, N, "every command answered with nothing more arriving (%d)",
                 answered);
    cr_assert_geq(kicks, 2, "each commit's end woke the decider");
    uint64_t batches = wr_batches(w) - batches0;
    cr_assert(batches >= 2 && batches <= 3,
              "the 50 arriving during the first commit went in one or two batches, not one "
              "per take (%llu appends)",
              (unsigned long long)batches);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(reqs[i].err, 0);
        cr_assert_eq(reqs[i].out.reason, DEC_OK, "request %d: %d", i, reqs[i].out.reason);
    }
    free(reqs);
    wr_close(w);
    ts_rmtree(f.dir);
}
