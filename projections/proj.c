/* proj.c - the runner that feeds a projection sink from the log, and
 * finding the position where a time starts in it.
 *
 * Owns the reading side of a catch-up: the log scan, decoding and hash
 * verification of each record, batching, and (for sinks that allow it, on
 * long catch-ups) a second thread that reads and decodes the log ahead of
 * the sink (see "decoding ahead" below). */
#include "proj.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct feed {
    proj_sink *sink;
    ev_dec *dec;
    proj_stats *st;
    uint64_t applied, skipped; /* in the batch under way */
    int failed;
    char *err;
    size_t errlen;
} feed;

/* Hands one decoded event to the sink (an unknown type is counted). */
static int feed_event(feed *f, const ev_event *ev)
{
    if (ev->env.type == EV_T_UNKNOWN) {
        f->skipped++;
        return 0;
    }
    if (f->sink->ops->apply(f->sink->ctx, ev) != 0) {
        snprintf(f->err, f->errlen, "%s projection, event at position %llu: %s",
                 f->sink->ops->name, (unsigned long long)ev->env.pos,
                 f->sink->ops->errmsg(f->sink->ctx));
        f->failed = 1;
        return 1;
    }
    f->applied++;
    return 0;
}

static void damaged(char *err, size_t errlen, uint64_t pos, int rc)
{
    snprintf(err, errlen, "log damaged at position %llu: %s", (unsigned long long)pos,
             ev_strerror(rc));
}

static int feed_one(void *ud, const log_rec *r)
{
    feed *f = ud;
    ev_event ev;
    int rc = ev_decode(f->dec, r->data, r->len, r->pos, &ev);
    if (rc) {
        damaged(f->err, f->errlen, r->pos, rc);
        f->failed = 1;
        return 1;
    }
    return feed_event(f, &ev);
}

/* From `from` to the log's end `end`, decoding on this thread; fn (may be
 * NULL) after each batch. */
static int catch_up_serial(log_t *log, proj_sink *sink, size_t batch, proj_progress_fn fn,
                           void *ud, proj_stats *st, uint64_t from, uint64_t end, char *err,
                           size_t errlen)
{
    const proj_sink_ops *ops = sink->ops;
    feed f = {sink, ev_dec_new(), st, 0, 0, 0, err, errlen};
    if (!f.dec) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    while (from < end) {
        if (ops->begin(sink->ctx, &from) != 0) {
            snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
            rc = -1;
            break;
        }
        if (from >= end) { /* someone else got there first */
            ops->abort(sink->ctx);
            st->next_pos = from;
            break;
        }
        uint64_t next = from;
        f.applied = f.skipped = 0;
        int src = log_scan(log, from, batch, feed_one, &f, &next);
        if (src != 0 || f.failed) {
            if (!f.failed)
                snprintf(err, errlen, "%s", log_errmsg(log));
            ops->abort(sink->ctx);
            rc = -1;
            break;
        }
        if (next == from) { /* nothing there after all */
            ops->abort(sink->ctx);
            break;
        }
        if (ops->commit(sink->ctx, next) != 0) {
            snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
            ops->abort(sink->ctx);
            rc = -1;
            break;
        }
        st->batches++;
        st->applied += f.applied;
        st->skipped += f.skipped;
        st->next_pos = from = next;
        if (fn && fn(ud, st, end)) {
            snprintf(err, errlen, "%s projection: stopped at position %llu", ops->name,
                     (unsigned long long)from);
            rc = -1;
            break;
        }
    }
    ev_dec_free(f.dec);
    return rc;
}

/* ---------------------------------------------------------- decoding ahead
 *
 * In proj_fill (rebuilds), for a sink whose ops allow it (decode_ahead)
 * and a catch-up of at least AHEAD_MIN positions, a reader thread scans the
 * log from where the sink is, copies each record into a chunk, decodes and
 * verifies it there, and hands full chunks to the caller's thread through a
 * ring of AHEAD_RING chunks. The caller applies them in batches as the
 * serial runner does (begin, apply..., commit, all on its own thread), so
 * the sink's position is still read inside each batch's transaction: when
 * it is not where the reader got to (a rebuild swapped another generation
 * in), the reader is stopped and started again from there. A chunk goes
 * back to the reader once the sink has applied all its events: an event is
 * valid during apply only, as with the serial runner. proj_catch_up stays
 * serial: the projector runs it for two projections side by side, and a
 * third busy thread would starve the other one on a two-core machine. */

#define AHEAD_MIN 16384        /* positions to catch up before a reader thread pays */
#define AHEAD_EVENTS 1024      /* events per chunk */
#define AHEAD_ARENA (1u << 20) /* bytes per chunk for records and order lines */
#define AHEAD_RING 4           /* chunks between the reader and the caller */
/* Arena room an event's order lines may need beyond its record: one LINES
 * field per event type, which the assertions below check. */
#define AHEAD_LINES_ROOM (EV_MAX_LINES * sizeof(ev_line) + 8)
#define AHEAD_IS_LINES_U64 0
#define AHEAD_IS_LINES_OU64 0
#define AHEAD_IS_LINES_I64 0
#define AHEAD_IS_LINES_BOOL 0
#define AHEAD_IS_LINES_STR 0
#define AHEAD_IS_LINES_OSTR 0
#define AHEAD_IS_LINES_UUID 0
#define AHEAD_IS_LINES_ENUM 0
#define AHEAD_IS_LINES_LINES 1
#define AHEAD_COUNT_LINES(kind, sec, name, arg) +AHEAD_IS_LINES_##kind
#define AHEAD_ONE_LINES(C, n, wire, ver, FIELDS)                                                   \
    _Static_assert(0 FIELDS(AHEAD_COUNT_LINES) <= 1, "ev_" #n ": more than one LINES field");
EV_CATALOGUE(AHEAD_ONE_LINES)

typedef struct ahead_chunk {
    ev_event ev[AHEAD_EVENTS];
    size_t n;
    uint64_t next;   /* the position after the chunk */
    bool last;       /* the reader stopped after it (the end, or an error) */
    bool failed;     /* the error, in errmsg, came after the n events */
    char errmsg[320];
    size_t used;     /* arena bytes in use */
    uint8_t *arena;  /* the records and order lines the events point into */
} ahead_chunk;

typedef struct ahead {
    log_t *log;
    uint64_t start, end; /* the reader starts at start and stops at end */
    ev_dec *dec;         /* the reader's decoder */
    pthread_t th;
    bool inited, running;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a chunk filled or given back, or cancel */
    bool cancel;
    ahead_chunk *ring[AHEAD_RING];
    uint64_t filled, taken; /* chunks the reader filled, the caller gave back */
    /* The caller's side: the chunk ring[taken % AHEAD_RING] once it has
     * it (cur), its next event, and the position of the next event it will
     * hand out. */
    ahead_chunk *cur;
    size_t idx;
    uint64_t pos;
} ahead;

/* The reader's scan of one chunk. */
typedef struct ahead_fill {
    ahead *a;
    ahead_chunk *c;
    bool full;       /* stopped at a record that does not fit ... */
    uint64_t resume; /* ... which is at this position */
} ahead_fill;

/* Moves order lines an event borrows from the decoder into the arena. */
static void ahead_keep_lines(ahead_chunk *c, ev_lines *l)
{
    if (!l->n)
        return;
    size_t at = (c->used + 7) & ~(size_t)7, n = l->n * sizeof(ev_line);
    memcpy(c->arena + at, l->v, n);
    l->v = (const ev_line *)(void *)(c->arena + at);
    c->used = at + n;
}

#define AHEAD_KEEP_U64(x)
#define AHEAD_KEEP_OU64(x)
#define AHEAD_KEEP_I64(x)
#define AHEAD_KEEP_BOOL(x)
#define AHEAD_KEEP_STR(x)
#define AHEAD_KEEP_OSTR(x)
#define AHEAD_KEEP_UUID(x)
#define AHEAD_KEEP_ENUM(x)
#define AHEAD_KEEP_LINES(x) ahead_keep_lines(c, &(x));
#define AHEAD_KEEP_FIELD(kind, sec, name, arg) AHEAD_KEEP_##kind(pl->name)
#define AHEAD_KEEP_TYPE(C, n, wire, ver, FIELDS)                                                   \
    case EV_T_##C: {                                                                               \
        ev_##n *pl = &ev->u.n;                                                                     \
        (void)pl;                                                                                  \
        FIELDS(AHEAD_KEEP_FIELD)                                                                   \
        break;                                                                                     \
    }

/* Makes an event decoded into chunk c independent of the decoder. */
static void ahead_keep(ahead_chunk *c, ev_event *ev)
{
    switch (ev->env.type) {
        EV_CATALOGUE(AHEAD_KEEP_TYPE)
    default: break;
    }
}

static int ahead_fail(ahead_chunk *c, uint64_t pos, int rc)
{
    damaged(c->errmsg, sizeof c->errmsg, pos, rc);
    c->failed = true;
    return 1;
}

/* log_scan's visitor: the record copied into the chunk, decoded there. */
static int ahead_one(void *ud, const log_rec *r)
{
    ahead_fill *f = ud;
    ahead_chunk *c = f->c;
    ev_event *ev = &c->ev[c->n];
    if (r->len + AHEAD_LINES_ROOM > AHEAD_ARENA) {
        /* Longer than any record the decoder takes: it says why. */
        int rc = ev_decode(f->a->dec, r->data, r->len, r->pos, ev);
        return ahead_fail(c, r->pos, rc ? rc : EV_ETOOBIG);
    }
    if (c->used + r->len + AHEAD_LINES_ROOM > AHEAD_ARENA) {
        f->full = true;
        f->resume = r->pos;
        return 1;
    }
    uint8_t *copy = c->arena + c->used;
    memcpy(copy, r->data, r->len);
    c->used += r->len;
    int rc = ev_decode(f->a->dec, copy, r->len, r->pos, ev);
    if (rc)
        return ahead_fail(c, r->pos, rc);
    ahead_keep(c, ev);
    c->n++;
    return 0;
}

/* Fills chunk c from position pos. */
static void ahead_fill_chunk(ahead *a, ahead_chunk *c, uint64_t pos)
{
    ahead_fill f = {a, c, false, 0};
    c->n = c->used = 0;
    c->failed = c->last = false;
    uint64_t next = pos;
    int rc = log_scan(a->log, pos, AHEAD_EVENTS, ahead_one, &f, &next);
    if (rc < 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "%s", log_errmsg(a->log));
        c->failed = true;
    }
    c->next = f.full ? f.resume : next;
    /* Fewer records than asked for, and not for want of room: the log's end. */
    bool ended = !f.full && !c->failed && c->n < AHEAD_EVENTS;
    c->last = c->failed || ended || c->next >= a->end;
}

static void *ahead_main(void *arg)
{
    ahead *a = arg;
    uint64_t pos = a->start;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->cancel && a->filled - a->taken >= AHEAD_RING)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->cancel)
            break;
        ahead_chunk *c = a->ring[a->filled % AHEAD_RING];
        pthread_mutex_unlock(&a->mu);
        ahead_fill_chunk(a, c, pos);
        pos = c->next;
        pthread_mutex_lock(&a->mu);
        a->filled++;
        pthread_cond_broadcast(&a->cv);
        if (c->last)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Stops the reader (if it runs) and frees everything; again: nothing. */
static void ahead_stop(ahead *a)
{
    if (!a->inited)
        return;
    a->inited = false;
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->cancel = true;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->th, NULL);
        a->running = false;
    }
    for (int i = 0; i < AHEAD_RING; i++) {
        if (a->ring[i])
            free(a->ring[i]->arena);
        free(a->ring[i]);
        a->ring[i] = NULL;
    }
    ev_dec_free(a->dec);
    a->dec = NULL;
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
}

/* Starts a reader at `from` that stops at `end`. 0, or -1 (nothing runs
 * and nothing is held). */
static int ahead_start(ahead *a, log_t *log, uint64_t from, uint64_t end)
{
    memset(a, 0, sizeof *a);
    a->log = log;
    a->start = a->pos = from;
    a->end = end;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->inited = true;
    bool ok = (a->dec = ev_dec_new()) != NULL;
    for (int i = 0; i < AHEAD_RING && ok; i++) {
        ok = (a->ring[i] = calloc(1, sizeof *a->ring[i])) != NULL &&
             (a->ring[i]->arena = malloc(AHEAD_ARENA)) != NULL;
    }
    if (ok && pthread_create(&a->th, NULL, ahead_main, a) == 0)
        a->running = true;
    if (!a->running)
        ahead_stop(a);
    return a->running ? 0 : -1;
}

/* The chunk the caller is on, once the reader has filled it. */
static ahead_chunk *ahead_current(ahead *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->filled == a->taken)
        pthread_cond_wait(&a->cv, &a->mu);
    ahead_chunk *c = a->ring[a->taken % AHEAD_RING];
    pthread_mutex_unlock(&a->mu);
    return c;
}

/* Gives the caller's chunk back to the reader. */
static void ahead_release(ahead *a)
{
    pthread_mutex_lock(&a->mu);
    a->taken++;
    a->idx = 0;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* The next event, or NULL at the end of what the reader read; *end_chunk
 * then says why (failed: errmsg). */
static const ev_event *ahead_next(ahead *a, ahead_chunk **end_chunk)
{
    for (;;) {
        if (!a->cur)
            a->cur = ahead_current(a);
        ahead_chunk *c = a->cur;
        if (a->idx < c->n) {
            const ev_event *ev = &c->ev[a->idx++];
            a->pos = a->idx < c->n ? c->ev[a->idx].env.pos : c->next;
            return ev;
        }
        if (c->last) {
            *end_chunk = c;
            return NULL;
        }
        ahead_release(a);
        a->cur = NULL;
    }
}

/* Applies up to `batch` records (0: no limit) from the reader; *next
 * receives the position after the last. */
static int ahead_batch(ahead *a, feed *f, size_t batch, uint64_t *next)
{
    for (size_t count = 0; batch == 0 || count < batch; count++) {
        ahead_chunk *end_chunk = NULL;
        const ev_event *ev = ahead_next(a, &end_chunk);
        if (!ev && end_chunk->failed) {
            snprintf(f->err, f->errlen, "%s", end_chunk->errmsg);
            f->failed = 1;
            return -1;
        }
        if (!ev)
            break;
        if (feed_event(f, ev) != 0)
            return -1;
    }
    *next = a->pos;
    return 0;
}

/* catch_up_serial's loop with a reader thread decoding ahead. */
static int catch_up_ahead(ahead *a, proj_sink *sink, size_t batch, proj_progress_fn fn,
                          void *ud, proj_stats *st, uint64_t from, uint64_t end, char *err,
                          size_t errlen)
{
    const proj_sink_ops *ops = sink->ops;
    feed f = {sink, NULL, st, 0, 0, 0, err, errlen};
    while (from < end) {
        if (ops->begin(sink->ctx, &from) != 0) {
            snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
            return -1;
        }
        if (from >= end) { /* someone else got there first */
            ops->abort(sink->ctx);
            st->next_pos = from;
            return 0;
        }
        if (from != a->pos) { /* the sink moved: read from where it is */
            log_t *log = a->log;
            ahead_stop(a);
            if (ahead_start(a, log, from, end) != 0) {
                ops->abort(sink->ctx);
                snprintf(err, errlen, "%s projection: cannot start the log reader",
                         ops->name);
                return -1;
            }
        }
        uint64_t next = from;
        f.applied = f.skipped = 0;
        if (ahead_batch(a, &f, batch, &next) != 0) {
            ops->abort(sink->ctx);
            return -1;
        }
        if (next == from) { /* nothing there after all */
            ops->abort(sink->ctx);
            return 0;
        }
        if (ops->commit(sink->ctx, next) != 0) {
            snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
            ops->abort(sink->ctx);
            return -1;
        }
        st->batches++;
        st->applied += f.applied;
        st->skipped += f.skipped;
        st->next_pos = from = next;
        if (fn && fn(ud, st, end)) {
            snprintf(err, errlen, "%s projection: stopped at position %llu", ops->name,
                     (unsigned long long)from);
            return -1;
        }
    }
    return 0;
}

/* Up to the log's end as it is now; fn (may be NULL) after each batch.
 * `may_read_ahead`: a long catch-up may decode on a second thread. */
static int catch_up(log_t *log, proj_sink *sink, size_t batch, bool may_read_ahead,
                    proj_progress_fn fn, void *ud, proj_stats *st, char *err, size_t errlen)
{
    const proj_sink_ops *ops = sink->ops;
    uint64_t from, end;
    if (ops->next_pos(sink->ctx, &from) != 0) {
        snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
        return -1;
    }
    st->next_pos = from;
    if (log_end(log, &end) != 0) {
        snprintf(err, errlen, "%s", log_errmsg(log));
        return -1;
    }
    ahead a;
    if (!may_read_ahead || !ops->decode_ahead || from >= end || end - from < AHEAD_MIN ||
        ahead_start(&a, log, from, end) != 0)
        return catch_up_serial(log, sink, batch, fn, ud, st, from, end, err, errlen);
    int rc = catch_up_ahead(&a, sink, batch, fn, ud, st, from, end, err, errlen);
    ahead_stop(&a);
    return rc;
}

int proj_catch_up(log_t *log, proj_sink *sink, size_t batch, proj_stats *st,
                  char *err, size_t errlen)
{
    return catch_up(log, sink, batch, false, NULL, NULL, st, err, errlen);
}

int proj_fill(log_t *log, proj_sink *sink, size_t batch, proj_progress_fn fn, void *ud,
              proj_stats *st, char *err, size_t errlen)
{
    for (;;) {
        uint64_t end;
        if (log_end(log, &end) != 0) {
            snprintf(err, errlen, "%s", log_errmsg(log));
            return -1;
        }
        if (catch_up(log, sink, batch, true, fn, ud, st, err, errlen) != 0)
            return -1;
        if (st->next_pos >= end)
            return 0;
    }
}

/* ------------------------------------------------------------ time */

typedef struct time_seek {
    ev_dec *dec;
    uint64_t at_us, found;
    int found_it, failed;
    char *err;
    size_t errlen;
} time_seek;

static int seek_one(void *ud, const log_rec *r)
{
    time_seek *t = ud;
    ev_event ev;
    int rc = ev_decode(t->dec, r->data, r->len, r->pos, &ev);
    if (rc) {
        snprintf(t->err, t->errlen, "log damaged at position %llu: %s",
                 (unsigned long long)r->pos, ev_strerror(rc));
        t->failed = 1;
        return 1;
    }
    if (ev.env.recorded_us < t->at_us)
        return 0;
    t->found = r->pos;
    t->found_it = 1;
    return 1;
}

int proj_pos_at_time(log_t *log, uint64_t at_us, uint64_t *pos, char *err, size_t errlen)
{
    time_seek t = {ev_dec_new(), at_us, 0, 0, 0, err, errlen};
    if (!t.dec) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t next;
    int rc = log_scan(log, 0, 0, seek_one, &t, &next);
    ev_dec_free(t.dec);
    if (t.failed)
        return -1;
    if (rc < 0) {
        snprintf(err, errlen, "%s", log_errmsg(log));
        return -1;
    }
    if (t.found_it) {
        *pos = t.found;
        return 0;
    }
    if (log_end(log, pos) != 0) {
        snprintf(err, errlen, "%s", log_errmsg(log));
        return -1;
    }
    return 0;
}
