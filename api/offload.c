/* offload.c - work on libuv's thread pool for a request or for none; the
 * limited kind a few jobs at a time (see offload.h).
 *
 * The turns: `running` counts the limited jobs that hold one (on the pool,
 * or given one and about to be queued by their loop). A limited job that
 * finishes hands its turn straight to the oldest waiting one, so `running`
 * only goes down when nobody waits; the queue is never longer than it must
 * be. A job's loop and everything about it except the queue links are its
 * loop thread's.
 */
#include "offload.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct off_loop {
    uv_loop_t *loop;
    uv_async_t wake;              /* another thread gave a job of ours a turn */
    off_job *ready, *ready_tail;  /* those jobs, oldest first (under mu) */
    bool detached;
    bool closed;                  /* wake's close callback ran */
    unsigned jobs;                /* made and not yet freed */
};

struct off_job {
    uv_work_t work;
    off_loop *owner;
    h2o_req_t *req;     /* NULL once the request is gone, or for none */
    off_job **slot;     /* in the request's pool; NULL: made without one */
    off_work_fn fn;
    off_done_fn done;
    off_job *next;      /* in the queue or a loop's ready list */
    bool limited;       /* takes a turn */
    size_t size;
    max_align_t data[]; /* the caller's */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned running;                  /* turns taken (under mu) */
static off_job *queue_head, *queue_tail;  /* waiting for a turn (under mu) */

static _Thread_local off_loop *this_loop;

static void loop_maybe_free(off_loop *l)
{
    if (l->detached && l->closed && l->jobs == 0)
        free(l);
}

static void job_free(off_job *j)
{
    off_loop *l = j->owner;
    if (j->req)
        *j->slot = NULL; /* the request's pool no longer points here */
    OPENSSL_cleanse(j->data, j->size);
    free(j);
    /* The loop stays alive while it has jobs, waiting ones included. */
    if (--l->jobs == 0 && !l->detached)
        uv_unref((uv_handle_t *)&l->wake);
    loop_maybe_free(l);
}

static void on_req_gone(void *p)
{
    off_job *j = *(off_job **)p;
    if (j)
        j->req = NULL;
}

static void on_work(uv_work_t *w)
{
    off_job *j = (off_job *)w;
    j->fn(j->data);
}

static void on_after(uv_work_t *w, int status);
static void turn_over(off_loop *cur);

/* Hands a job (that holds a turn, if it is limited) to the pool. */
static int queue_job(off_job *j)
{
    if (uv_queue_work(j->owner->loop, &j->work, on_work, on_after) == 0)
        return 0;
    /* libuv refuses only a missing work function: give the turn on. */
    off_loop *l = j->owner;
    bool limited = j->limited;
    job_free(j);
    if (limited)
        turn_over(l);
    return -1;
}

/* The turn of a job of loop `cur` (on cur's thread) goes to the oldest
 * waiting job: queued here at once, or handed to its own loop. */
static void turn_over(off_loop *cur)
{
    pthread_mutex_lock(&mu);
    off_job *j = queue_head;
    if (!j) {
        running--;
        pthread_mutex_unlock(&mu);
        return;
    }
    queue_head = j->next;
    if (!queue_head)
        queue_tail = NULL;
    j->next = NULL;
    if (j->owner != cur) {
        off_loop *l = j->owner; /* not detached: detaching empties the queue of its jobs */
        if (l->ready_tail)
            l->ready_tail->next = j;
        else
            l->ready = j;
        l->ready_tail = j;
        uv_async_send(&l->wake);
        pthread_mutex_unlock(&mu);
        return;
    }
    pthread_mutex_unlock(&mu);
    queue_job(j);
}

static void on_wake(uv_async_t *a)
{
    off_loop *l = a->data;
    pthread_mutex_lock(&mu);
    off_job *j = l->ready;
    l->ready = l->ready_tail = NULL;
    pthread_mutex_unlock(&mu);
    while (j) {
        off_job *next = j->next;
        j->next = NULL;
        queue_job(j);
        j = next;
    }
}

static void on_after(uv_work_t *w, int status)
{
    off_job *j = (off_job *)w;
    off_loop *l = j->owner;
    (void)status;
    if (j->limited)
        turn_over(l);
    /* A job without a request always completes; one with a request only
     * while the request is there; none once the loop has detached. */
    if (!l->detached && (j->req || !j->slot)) {
        h2o_req_t *req = j->req;
        if (req) {
            *j->slot = NULL;
            j->req = NULL;
        }
        j->done(req, j->data);
    }
    job_free(j);
}

off_loop *off_attach(uv_loop_t *loop)
{
    off_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->loop = loop;
    if (uv_async_init(loop, &l->wake, on_wake) != 0) {
        free(l);
        return NULL;
    }
    l->wake.data = l;
    uv_unref((uv_handle_t *)&l->wake);
    this_loop = l;
    return l;
}

unsigned off_pending(const off_loop *l) { return l ? l->jobs : 0; }

static void on_wake_closed(uv_handle_t *h)
{
    off_loop *l = h->data;
    l->closed = true;
    loop_maybe_free(l);
}

void off_detach(off_loop *l)
{
    if (!l)
        return;
    off_job *mine = NULL, *ready;
    pthread_mutex_lock(&mu);
    l->detached = true;
    for (off_job **pp = &queue_head; *pp;) {
        off_job *j = *pp;
        if (j->owner == l) {
            *pp = j->next;
            j->next = mine;
            mine = j;
        } else {
            pp = &j->next;
        }
    }
    queue_tail = NULL;
    for (off_job *j = queue_head; j; j = j->next)
        queue_tail = j;
    ready = l->ready;
    l->ready = l->ready_tail = NULL;
    pthread_mutex_unlock(&mu);
    while (mine) { /* waiting: they hold no turn */
        off_job *next = mine->next;
        job_free(mine);
        mine = next;
    }
    while (ready) { /* given a turn: it goes on */
        off_job *next = ready->next;
        job_free(ready);
        turn_over(l);
        ready = next;
    }
    if (this_loop == l)
        this_loop = NULL;
    uv_close((uv_handle_t *)&l->wake, on_wake_closed);
}

off_job *off_new(h2o_req_t *req, size_t size)
{
    off_loop *l = this_loop;
    if (!l)
        return NULL;
    off_job *j = calloc(1, sizeof *j + size);
    if (!j)
        return NULL;
    j->owner = l;
    j->size = size;
    if (req) {
        j->req = req;
        j->slot = h2o_mem_alloc_shared(&req->pool, sizeof *j->slot, on_req_gone);
        *j->slot = j;
    }
    if (l->jobs++ == 0)
        uv_ref((uv_handle_t *)&l->wake);
    return j;
}

void *off_data(off_job *j) { return j->data; }

void off_discard(off_job *j)
{
    if (j)
        job_free(j);
}

int off_start(off_job *j, off_work_fn work, off_done_fn done)
{
    j->fn = work;
    j->done = done;
    return queue_job(j);
}

int off_start_limited(off_job *j, off_work_fn work, off_done_fn done)
{
    j->fn = work;
    j->done = done;
    j->limited = true;
    pthread_mutex_lock(&mu);
    if (running < OFF_MAX_RUNNING) {
        running++;
        pthread_mutex_unlock(&mu);
        return queue_job(j);
    }
    j->next = NULL;
    if (queue_tail)
        queue_tail->next = j;
    else
        queue_head = j;
    queue_tail = j;
    pthread_mutex_unlock(&mu);
    return 0;
}
