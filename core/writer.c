/* writer.c - decide, group-commit, answer (see writer.h). */
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The records of one group commit and the requests they answer. */
typedef struct wr_batch {
    ev_buf buf;
    size_t *lens;
    size_t cap_lens, n_recs;
    wr_req **reqs;
    size_t n_reqs;
    uint64_t start; /* the position the state gave its first record */
} wr_batch;

struct wr_writer {
    wr_config cfg;
    char log_uri[4096];
    char snap_path[4096];
    log_t *log;
    st_state st;
    ev_enc *enc;
    ev_dec *dec;
    wr_batch batch[2]; /* one being decided while the other commits */
    uint64_t snap_pos; /* next_pos at the last snapshot */
    uint64_t batches;  /* appends made (for metrics and tests) */
};

typedef struct fold_ctx {
    wr_writer *w;
    int err;
    uint64_t bad_pos;
} fold_ctx;

static int fold_one(void *ud, const log_rec *r)
{
    fold_ctx *f = ud;
    ev_event ev;
    int rc = ev_decode(f->w->dec, r->data, r->len, r->pos, &ev);
    if (rc == 0 && memcmp(ev.env.prev_hash, f->w->st.last_hash, 32) != 0)
        rc = EV_ECHAIN;
    if (rc == 0)
        rc = st_apply(&f->w->st, &ev);
    if (rc) {
        f->err = rc;
        f->bad_pos = r->pos;
        return 1;
    }
    return 0;
}

/* Folds the log from the state's next position to its end. */
static int fold_tail(wr_writer *w, char *err, size_t errlen)
{
    fold_ctx f = {w, 0, 0};
    uint64_t next;
    int rc = log_scan(w->log, w->st.next_pos, 0, fold_one, &f, &next);
    if (rc == 1) {
        snprintf(err, errlen, "log %s is damaged at position %llu: %s",
                 w->cfg.log_uri, (unsigned long long)f.bad_pos,
                 ev_strerror(f.err));
        return LOG_ECORRUPT;
    }
    if (rc) {
        snprintf(err, errlen, "%s", log_errmsg(w->log));
        return rc;
    }
    return 0;
}

typedef struct hash_at {
    uint8_t hash[32];
    int found;
} hash_at;

static int take_hash(void *ud, const log_rec *r)
{
    hash_at *h = ud;
    const uint8_t *p = ev_rec_hash(r->data, r->len);
    if (p) {
        memcpy(h->hash, p, 32);
        h->found = 1;
    }
    return 1;
}

/* Loads the snapshot if it matches the log: the record just before its
 * position must be in the log with the hash the snapshot remembers. */
static void load_snapshot(wr_writer *w)
{
    if (!w->cfg.snapshot_path || st_load(&w->st, w->cfg.snapshot_path) != 0)
        goto fresh;
    if (w->st.next_pos == 0)
        goto fresh;
    hash_at h = {{0}, 0};
    uint64_t next;
    log_scan(w->log, w->st.next_pos - 1, 1, take_hash, &h, &next);
    if (h.found && next == w->st.next_pos && memcmp(h.hash, w->st.last_hash, 32) == 0) {
        w->snap_pos = w->st.next_pos;
        return;
    }
fresh:
    st_free(&w->st);
    st_init(&w->st, w->cfg.email_key);
    w->snap_pos = 0;
}

static int rebuild(wr_writer *w, char *err, size_t errlen)
{
    st_free(&w->st);
    st_init(&w->st, w->cfg.email_key);
    load_snapshot(w);
    return fold_tail(w, err, errlen);
}

int wr_open(const wr_config *cfg, wr_writer **out, char *err, size_t errlen)
{
    wr_writer *w = calloc(1, sizeof *w);
    if (!w)
        return LOG_ENOMEM;
    w->cfg = *cfg;
    snprintf(w->log_uri, sizeof w->log_uri, "%s", cfg->log_uri);
    w->cfg.log_uri = w->log_uri;
    if (cfg->snapshot_path) {
        snprintf(w->snap_path, sizeof w->snap_path, "%s", cfg->snapshot_path);
        w->cfg.snapshot_path = w->snap_path;
    }
    if (!w->cfg.snapshot_every)
        w->cfg.snapshot_every = 1000000;
    if (!w->cfg.max_batch)
        w->cfg.max_batch = 4096;
    st_init(&w->st, cfg->email_key);
    w->enc = ev_enc_new();
    w->dec = ev_dec_new();
    int rc = LOG_ENOMEM;
    if (!w->enc || !w->dec) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((rc = log_open(cfg->log_uri, LOG_WRITE, &w->log, err, errlen)) != 0)
        goto fail;
    if ((rc = rebuild(w, err, errlen)) != 0)
        goto fail;
    *out = w;
    return 0;
fail:
    wr_close(w);
    return rc;
}

void wr_close(wr_writer *w)
{
    if (!w)
        return;
    if (w->log && w->cfg.snapshot_path && w->st.next_pos > w->snap_pos)
        st_save(&w->st, w->cfg.snapshot_path);
    log_close(w->log);
    st_free(&w->st);
    ev_enc_free(w->enc);
    ev_dec_free(w->dec);
    for (int i = 0; i < 2; i++) {
        ev_buf_free(&w->batch[i].buf);
        free(w->batch[i].lens);
    }
    free(w);
}

const st_state *wr_state(const wr_writer *w) { return &w->st; }
log_t *wr_log(wr_writer *w) { return w->log; }
uint64_t wr_batches(const wr_writer *w) { return w->batches; }

static int push_len(wr_batch *b, size_t len)
{
    if (b->n_recs >= b->cap_lens) {
        size_t n = b->cap_lens ? b->cap_lens * 2 : 1024;
        size_t *p = realloc(b->lens, n * sizeof *p);
        if (!p)
            return -1;
        b->lens = p;
        b->cap_lens = n;
    }
    b->lens[b->n_recs++] = len;
    return 0;
}

/* Encodes one request's events after the batch so far, then folds them into
 * the state at their coming positions. An event the codec refuses turns the
 * request into a refusal and leaves batch and state as they were. */
static int stage(wr_writer *w, wr_batch *b, wr_req *r)
{
    dec_out *o = &r->out;
    size_t mark = b->buf.len, recs = b->n_recs;
    uint8_t prev[32];
    memcpy(prev, w->st.last_hash, 32);
    for (size_t i = 0; i < o->n_ev; i++) {
        ev_event *e = &o->ev[i];
        ev_new_id(w->enc, e->env.recorded_us, e->env.id);
        size_t before = b->buf.len;
        int rc = ev_encode(w->enc, e, prev, &b->buf, e->env.hash);
        if (rc || push_len(b, b->buf.len - before)) {
            b->buf.len = mark;
            b->n_recs = recs;
            o->reason = DEC_INVALID;
            o->message = rc ? ev_strerror(rc) : "out of memory";
            o->n_ev = 0;
            return -1;
        }
        memcpy(e->env.prev_hash, prev, 32);
        memcpy(prev, e->env.hash, 32);
    }
    for (size_t i = 0; i < o->n_ev; i++) {
        o->ev[i].env.pos = w->st.next_pos;
        st_apply(&w->st, &o->ev[i]);
    }
    if (o->n_ev) {
        o->first_pos = o->ev[0].env.pos;
        o->last_pos = o->ev[o->n_ev - 1].env.pos;
    }
    return 0;
}

/* Decides the requests in order into batch b (the state runs ahead of the
 * log by the batch's events until it commits). */
/* Starts batch b on the request slots reqs (empty). */
static void batch_begin(wr_writer *w, wr_batch *b, wr_req **reqs)
{
    b->buf.len = 0;
    b->n_recs = 0;
    b->reqs = reqs;
    b->n_reqs = 0;
    b->start = w->st.next_pos;
}

/* Decides the n requests placed after b's last one into b. */
static void decide_more(wr_writer *w, wr_batch *b, size_t n)
{
    for (size_t i = b->n_reqs; i < b->n_reqs + n; i++) {
        wr_req *r = b->reqs[i];
        r->err = 0;
        if (!r->cmd.causation.n) {
            /* Every command needs its own id: it ties its events together. */
            uint8_t id[16];
            ev_new_id(w->enc, r->cmd.now_us, id);
            ev_uuid_format(id, r->cmd_id);
            r->cmd.causation = (ev_str){r->cmd_id, 36};
        }
        if (dec_decide(&w->st, &r->cmd, &r->out) == DEC_OK && r->out.n_ev)
            stage(w, b, r);
    }
    b->n_reqs += n;
}

/* Every request with events in b gets error rc. */
static void fail_batch(wr_batch *b, int rc)
{
    for (size_t i = 0; i < b->n_reqs; i++)
        if (b->reqs[i]->out.n_ev)
            b->reqs[i]->err = rc;
}

/* Appends batch b in one durable step; on failure its requests get the
 * error (the caller then rebuilds the state). */
static int commit_batch(wr_writer *w, wr_batch *b)
{
    if (b->n_recs == 0)
        return 0;
    uint64_t first = 0, last = 0;
    int rc = log_append(w->log, b->buf.p, b->lens, b->n_recs, &first, &last);
    if (rc == 0 && first != b->start)
        rc = LOG_ECHAIN; /* the log placed them elsewhere than the state */
    w->batches++;
    if (rc)
        fail_batch(b, rc);
    return rc;
}

static void maybe_snapshot(wr_writer *w)
{
    /* Safe even while a batch is still committing: a snapshot is only
     * believed if the log holds its last record with its hash. */
    if (w->cfg.snapshot_path && w->st.next_pos - w->snap_pos >= w->cfg.snapshot_every &&
        st_save(&w->st, w->cfg.snapshot_path) == 0)
        w->snap_pos = w->st.next_pos;
}

int wr_process(wr_writer *w, wr_req **reqs, size_t n)
{
    wr_batch *b = &w->batch[0];
    batch_begin(w, b, reqs);
    decide_more(w, b, n);
    int rc = commit_batch(w, b);
    if (rc) {
        char err[512];
        rebuild(w, err, sizeof err); /* the state ran ahead of the log */
        return rc;
    }
    maybe_snapshot(w);
    return 0;
}

/* ---- the pipelined loop: batch N commits on a second thread while the
 * commands arriving meanwhile are decided into batch N+1; N's answers go
 * out as soon as N is durable. ---- */

typedef struct committer {
    wr_writer *w;
    const wr_source *src; /* kicked when a commit ends */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wr_batch *todo; /* handed over, being committed */
    bool quit;
    int failed; /* a commit's error, until the decider has seen it */
} committer;

static void answer(wr_batch *b)
{
    for (size_t i = 0; i < b->n_reqs; i++)
        if (b->reqs[i]->done)
            b->reqs[i]->done(b->reqs[i], b->reqs[i]->ud);
}

static void *commit_loop(void *arg)
{
    committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->todo && !c->quit)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->todo)
            break;
        wr_batch *b = c->todo;
        pthread_mutex_unlock(&c->mu);
        int rc = commit_batch(c->w, b);
        answer(b);
        pthread_mutex_lock(&c->mu);
        if (rc)
            c->failed = rc;
        c->todo = NULL;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        c->src->kick(c->src->ctx); /* the decider hands over the next batch */
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Waits until the committer is idle; returns the error of a failed commit
 * since the last call, and clears it. */
static int wait_idle(committer *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->todo)
        pthread_cond_wait(&c->cv, &c->mu);
    int rc = c->failed;
    c->failed = 0;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static bool is_idle(committer *c)
{
    pthread_mutex_lock(&c->mu);
    bool idle = !c->todo;
    pthread_mutex_unlock(&c->mu);
    return idle;
}

static void hand_over(committer *c, wr_batch *b)
{
    pthread_mutex_lock(&c->mu);
    c->todo = b;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int wr_run(wr_writer *w, const wr_source *src)
{
    size_t max = w->cfg.max_batch;
    wr_req **reqs = malloc(2 * max * sizeof *reqs);
    committer c = {.w = w, .src = src};
    if (!reqs)
        return LOG_ENOMEM;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    if (pthread_create(&c.th, NULL, commit_loop, &c) != 0) {
        free(reqs);
        return LOG_ENOMEM;
    }
    int k = 0;
    bool closed = false;
    char err[512];
    wr_batch *b = &w->batch[0];
    batch_begin(w, b, reqs);
    for (;;) {
        if (b->n_reqs && (closed || b->n_reqs == max || is_idle(&c))) {
            int rc = wait_idle(&c); /* the other batch is durable, or failed */
            if (rc) {
                /* b was decided on top of a batch that did not commit: fail
                 * it too, and go on from what the log holds. */
                fail_batch(b, rc);
                answer(b);
                rebuild(w, err, sizeof err);
            } else {
                maybe_snapshot(w);
                hand_over(&c, b);
                k ^= 1;
                b = &w->batch[k];
            }
            batch_begin(w, b, reqs + (size_t)k * max);
            continue;
        }
        if (closed)
            break;
        /* Blocks until commands arrive or the commit in progress ends. */
        long n = src->take(src->ctx, b->reqs + b->n_reqs, max - b->n_reqs);
        if (n < 0)
            closed = true;
        else if (n > 0)
            decide_more(w, b, (size_t)n);
    }
    if (wait_idle(&c))
        rebuild(w, err, sizeof err);
    pthread_mutex_lock(&c.mu);
    c.quit = true;
    pthread_cond_signal(&c.cv);
    pthread_mutex_unlock(&c.mu);
    pthread_join(c.th, NULL);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
    free(reqs);
    return 0;
}

/* ---------------------------------------------------------------- queue */

void wr_queue_init(wr_queue *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
}

void wr_queue_destroy(wr_queue *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

int wr_queue_push(wr_queue *q, wr_req *r)
{
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void wr_queue_close(wr_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static long queue_take(void *ctx, wr_req **reqs, size_t max)
{
    wr_queue *q = ctx;
    long n = 0;
    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->closed && !q->kicked)
        pthread_cond_wait(&q->cv, &q->mu);
    q->kicked = false;
    while (q->head && (size_t)n < max) {
        reqs[n++] = q->head;
        q->head = q->head->next;
    }
    if (!q->head)
        q->tail = NULL;
    if (n == 0 && q->closed)
        n = -1;
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void queue_kick(void *ctx)
{
    wr_queue *q = ctx;
    pthread_mutex_lock(&q->mu);
    q->kicked = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

wr_source wr_queue_source(wr_queue *q) { return (wr_source){queue_take, queue_kick, q}; }
