/* cmd.c - commands to the writer and answers back to the loops, with
 * read-your-writes (see cmd.h). */
#include "cmd.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

struct cmd_call {
    wr_req wr;
    cmd_bus *bus;
    int loop;
    h2o_req_t *req;       /* NULL once the request is gone */
    cmd_call **req_slot;  /* in the request's pool: points back here */
    cmd_done_fn done;
    void *ud;
    bool wait_cache;
    bool own;             /* made without a request: done runs with req NULL */
    int refs;             /* the request's and the writer's (loop thread only) */
    uint64_t answered_ms;
    uint64_t submitted_us;
    uint64_t durable_us;  /* when the writer answered (mono_us) */
    cmd_call *next;
    arena_block *arena;
};
/* cmd_new zeroes the command, the outcome's head and all after wr.out. */
_Static_assert(offsetof(cmd_call, wr) == 0 && offsetof(wr_req, err) > offsetof(wr_req, out) &&
                   offsetof(wr_req, cmd) < offsetof(wr_req, out),
               "cmd_new's partial zeroing follows this layout");

typedef struct cmd_loop {
    cmd_bus *bus;
    int index;
    bool attached;
    uv_async_t async;
    uv_timer_t timer;
    uv_poll_t poll;       /* loop 0: the cache's notifications */
    bool polling;
    pthread_mutex_t mu;   /* guards the answered list (the writer's thread adds) */
    cmd_call *answered, *answered_tail;
    cmd_call *waiting;    /* loop thread only */
    unsigned in_flight;   /* loop thread only */
} cmd_loop;

struct cmd_bus {
    cmd_config cfg;
    wr_writer *w;
    wr_queue q;
    pthread_t th;
    bool running;
    cmd_loop *loops;
    atomic_uint_fast64_t cache_pos; /* the cache's applied position, as last read */
    atomic_uint_fast64_t answered, wait_us, end_pos;
    atomic_uint_fast64_t ryw_n, ryw_us; /* answers that waited for the cache, and how long */
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------ calls */

static void call_free(cmd_call *c)
{
    for (arena_block *b = c->arena, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(c);
}

static void release(cmd_call *c)
{
    if (--c->refs == 0)
        call_free(c);
}

/* The request's pool is being freed: the call outlives it. */
static void on_req_gone(void *p)
{
    cmd_call *c = *(cmd_call **)p;
    if (!c)
        return;
    c->req = NULL;
    release(c);
}

cmd_call *cmd_new(h2o_req_t *req, dec_kind kind)
{
    /* Not calloc: the decider's outcome holds tens of kB of event slots
     * that only its n_ev first are read of; zeroing them per request was
     * the API's largest single cost under load. */
    cmd_call *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    memset(&c->wr.cmd, 0, sizeof c->wr.cmd);
    dec_out_clear(&c->wr.out);
    memset(&c->wr.err, 0, sizeof *c - offsetof(cmd_call, wr.err)); /* the rest */
    c->wr.cmd.kind = kind;
    c->wr.cmd.now_us = wall_us();
    c->refs = 1; /* the writer's, taken back when the answer is delivered */
    c->own = !req;
    if (req) {
        c->req = req;
        c->req_slot = h2o_mem_alloc_shared(&req->pool, sizeof *c->req_slot, on_req_gone);
        *c->req_slot = c;
        c->refs++;
    }
    return c;
}

void cmd_discard(cmd_call *c)
{
    if (!c)
        return;
    if (c->req)
        *c->req_slot = NULL; /* the request's pool no longer points here */
    call_free(c);
}

dec_cmd *cmd_command(cmd_call *c) { return &c->wr.cmd; }
const dec_out *cmd_out(const cmd_call *c) { return &c->wr.out; }
int cmd_err(const cmd_call *c) { return c->wr.err; }

static void *arena_alloc(cmd_call *c, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    arena_block *b = c->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 4000 ? n : 4000;
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->next = c->arena;
        nb->used = 0;
        nb->cap = cap;
        c->arena = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

ev_str cmd_keep(cmd_call *c, const char *p, size_t n)
{
    if (!p)
        return (ev_str){NULL, 0};
    char *q = arena_alloc(c, n + 1);
    if (!q)
        return (ev_str){NULL, 0};
    memcpy(q, p, n);
    q[n] = 0;
    return (ev_str){q, (uint32_t)n};
}

dec_line_in *cmd_lines(cmd_call *c, size_t n)
{
    dec_line_in *l = arena_alloc(c, n * sizeof *l);
    if (l)
        memset(l, 0, n * sizeof *l);
    return l;
}

/* ------------------------------------------------------------ answers */

/* The writer's commit thread: hand the answer to the request's loop. */
static void on_written(wr_req *w, void *ud)
{
    cmd_call *c = ud;
    cmd_bus *b = c->bus;
    cmd_loop *l = &b->loops[c->loop];
    c->durable_us = mono_us();
    atomic_fetch_add(&b->answered, 1);
    atomic_fetch_add(&b->wait_us, c->durable_us - c->submitted_us);
    if (w->err == 0 && w->out.n_ev) {
        uint64_t end = w->out.last_pos + 1, cur = atomic_load(&b->end_pos);
        while (end > cur && !atomic_compare_exchange_weak(&b->end_pos, &cur, end)) {
        }
    }
    pthread_mutex_lock(&l->mu);
    c->next = NULL;
    if (l->answered_tail)
        l->answered_tail->next = c;
    else
        l->answered = c;
    l->answered_tail = c;
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
}

static void deliver(cmd_loop *l, cmd_call *c)
{
    l->in_flight--;
    if (c->wait_cache && c->wr.err == 0 && c->wr.out.n_ev) {
        atomic_fetch_add(&l->bus->ryw_n, 1);
        atomic_fetch_add(&l->bus->ryw_us, mono_us() - c->durable_us);
    }
    if (c->req) {
        /* The request no longer needs to know about the call. */
        *c->req_slot = NULL;
        h2o_req_t *req = c->req;
        c->req = NULL;
        c->refs--;
        c->done(c, req, c->ud);
    } else if (c->own && c->done) {
        c->done(c, NULL, c->ud);
    }
    release(c);
}

static uint64_t refresh_cache_pos(cmd_bus *b)
{
    uint64_t pos = 0;
    if (b->cfg.cache && proj_cache_applied(b->cfg.cache, &pos) == 0)
        atomic_store(&b->cache_pos, pos);
    return atomic_load(&b->cache_pos);
}

static bool must_wait(const cmd_call *c, uint64_t cache_pos)
{
    return c->req && c->wait_cache && c->wr.err == 0 && c->wr.out.n_ev > 0 &&
           c->wr.out.last_pos >= cache_pos;
}

/* Delivers the waiting calls the cache has caught up with (or that waited
 * too long, or whose request is gone). */
static void check_waiting(cmd_loop *l)
{
    uint64_t pos = atomic_load(&l->bus->cache_pos), now = now_ms();
    unsigned timeout = l->bus->cfg.ryw_timeout_ms;
    cmd_call **pp = &l->waiting;
    while (*pp) {
        cmd_call *c = *pp;
        if (must_wait(c, pos) && now - c->answered_ms < timeout) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        deliver(l, c);
    }
    if (!l->waiting)
        uv_timer_stop(&l->timer);
}

/* A fallback for lost notifications, and the timeout. */
static void on_timer(uv_timer_t *t)
{
    cmd_loop *l = t->data;
    refresh_cache_pos(l->bus);
    check_waiting(l);
}

static void on_async(uv_async_t *a)
{
    cmd_loop *l = a->data;
    pthread_mutex_lock(&l->mu);
    cmd_call *list = l->answered;
    l->answered = l->answered_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    uint64_t pos = list ? refresh_cache_pos(l->bus) : atomic_load(&l->bus->cache_pos);
    uint64_t now = now_ms();
    for (cmd_call *c = list, *next; c; c = next) {
        next = c->next;
        if (!must_wait(c, pos)) {
            deliver(l, c);
            continue;
        }
        c->answered_ms = now;
        c->next = l->waiting;
        l->waiting = c;
    }
    check_waiting(l);
    if (l->waiting && !uv_is_active((uv_handle_t *)&l->timer))
        uv_timer_start(&l->timer, on_timer, 10, 10);
}

/* Loop 0: the cache applied something; tell every loop. */
static void on_cache_notify(uv_poll_t *p, int status, int events)
{
    cmd_loop *l = p->data;
    cmd_bus *b = l->bus;
    (void)status;
    (void)events;
    proj_cache_drain_notify(b->cfg.cache);
    refresh_cache_pos(b);
    for (int i = 0; i < b->cfg.n_loops; i++)
        if (b->loops[i].attached)
            uv_async_send(&b->loops[i].async);
}

/* ------------------------------------------------------------ the bus */

static void *writer_main(void *arg)
{
    cmd_bus *b = arg;
    wr_source src = wr_queue_source(&b->q);
    wr_run(b->w, &src);
    return NULL;
}

int cmd_bus_open(const cmd_config *cfg, cmd_bus **out, char *err, size_t errlen)
{
    cmd_bus *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->cfg = *cfg;
    if (b->cfg.n_loops <= 0)
        b->cfg.n_loops = 1;
    if (!b->cfg.ryw_timeout_ms)
        b->cfg.ryw_timeout_ms = 2000;
    b->loops = calloc((size_t)b->cfg.n_loops, sizeof *b->loops);
    if (!b->loops) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < b->cfg.n_loops; i++) {
        b->loops[i].bus = b;
        b->loops[i].index = i;
        pthread_mutex_init(&b->loops[i].mu, NULL);
    }
    wr_config wc = {0};
    wc.log_uri = cfg->log_uri;
    wc.snapshot_path = cfg->snapshot_path;
    memcpy(wc.email_key, cfg->email_key, 32);
    if (wr_open(&wc, &b->w, err, errlen) != 0) {
        cmd_bus_close(b);
        return -1;
    }
    wr_queue_init(&b->q);
    if (pthread_create(&b->th, NULL, writer_main, b) != 0) {
        snprintf(err, errlen, "cannot start the writer's thread");
        wr_queue_destroy(&b->q);
        cmd_bus_close(b);
        return -1;
    }
    b->running = true;
    refresh_cache_pos(b);
    *out = b;
    return 0;
}

void cmd_bus_set_cache(cmd_bus *b, proj_cache_reader *cache)
{
    b->cfg.cache = cache;
    refresh_cache_pos(b);
}

void cmd_bus_attach(cmd_bus *b, int index, uv_loop_t *loop)
{
    cmd_loop *l = &b->loops[index];
    uv_async_init(loop, &l->async, on_async);
    l->async.data = l;
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    if (index == 0 && b->cfg.cache && proj_cache_notify_fd(b->cfg.cache) >= 0 &&
        uv_poll_init(loop, &l->poll, proj_cache_notify_fd(b->cfg.cache)) == 0) {
        l->poll.data = l;
        uv_poll_start(&l->poll, UV_READABLE, on_cache_notify);
        l->polling = true;
    }
    l->attached = true;
}

void cmd_bus_detach(cmd_bus *b, int index)
{
    cmd_loop *l = &b->loops[index];
    if (!l->attached)
        return;
    /* Whatever still waits for the cache is answered now. */
    while (l->waiting) {
        cmd_call *c = l->waiting;
        l->waiting = c->next;
        deliver(l, c);
    }
    l->attached = false;
    uv_close((uv_handle_t *)&l->async, NULL);
    uv_close((uv_handle_t *)&l->timer, NULL);
    if (l->polling)
        uv_close((uv_handle_t *)&l->poll, NULL);
    l->polling = false;
}

bool cmd_bus_busy(cmd_bus *b, int index) { return b->loops[index].in_flight > 0; }

uint64_t cmd_bus_batches(cmd_bus *b) { return wr_batches(b->w); }

void cmd_bus_stats(cmd_bus *b, cmd_stats *out)
{
    out->batches = wr_batches(b->w);
    out->commands = atomic_load(&b->answered);
    out->wait_s = (double)atomic_load(&b->wait_us) / 1e6;
    out->ryw_waited = atomic_load(&b->ryw_n);
    out->ryw_wait_s = (double)atomic_load(&b->ryw_us) / 1e6;
    out->end_pos = atomic_load(&b->end_pos);
    out->cache_pos = refresh_cache_pos(b);
}

void cmd_bus_close(cmd_bus *b)
{
    if (!b)
        return;
    if (b->running) {
        wr_queue_close(&b->q);
        pthread_join(b->th, NULL);
        wr_queue_destroy(&b->q);
    }
    wr_close(b->w);
    for (int i = 0; i < b->cfg.n_loops; i++)
        pthread_mutex_destroy(&b->loops[i].mu);
    free(b->loops);
    free(b);
}

void cmd_submit(cmd_bus *b, int index, cmd_call *c, bool wait_cache, cmd_done_fn done, void *ud)
{
    c->bus = b;
    c->loop = index;
    c->done = done;
    c->ud = ud;
    c->wait_cache = wait_cache;
    c->wr.done = on_written;
    c->wr.ud = c;
    c->submitted_us = mono_us();
    b->loops[index].in_flight++;
    if (wr_queue_push(&b->q, &c->wr) != 0) {
        /* Closed: shutting down. Answer at once with an error. */
        c->wr.err = -1;
        on_written(&c->wr, c);
    }
}
