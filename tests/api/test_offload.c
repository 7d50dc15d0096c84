/* test_offload.c - api/offload.c: at most OFF_MAX_RUNNING limited jobs
 * (password hashes) on the pool at once in the process, whatever loop made
 * them; the others wait their turn in the order they came and are never
 * refused; other jobs (payment providers' calls) wait for no turn and take
 * none; completions run on the loop that made the job, for a request only
 * while it is there; a loop that detaches drops its waiting jobs without
 * losing a turn.
 *
 * Jobs record what happened (in their own memory or in atomics) and the
 * test's own thread asserts afterwards: criterion's assertions belong on
 * the test's thread, not on the pool's or a second loop's.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "api/offload.h"

#define MAX_JOBS 32

/* A lost turn would leave jobs waiting for ever: fail instead. */
TestSuite(offload, .timeout = 30);

/* What every job shares. */
static atomic_int active, max_active, finished, finished_limited, works;

typedef struct rec {
    int idx;
    int sleep_ms;
    bool limited;
    int finished_at_start; /* limited jobs finished when this one started */
    int limited_finished_at_done; /* limited jobs finished when done ran */
    bool done;
    bool done_req_null;
    pthread_t done_thread;
} rec;

static rec recs[MAX_JOBS];

typedef struct job_data {
    rec *r;
} job_data;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void work(void *data)
{
    rec *r = ((job_data *)data)->r;
    int now = atomic_fetch_add(&active, 1) + 1;
    int m = atomic_load(&max_active);
    while (now > m && !atomic_compare_exchange_weak(&max_active, &m, now)) {
    }
    r->finished_at_start = atomic_load(&finished_limited);
    atomic_fetch_add(&works, 1);
    sleep_ms(r->sleep_ms);
    atomic_fetch_sub(&active, 1);
    atomic_fetch_add(&finished, 1);
    if (r->limited)
        atomic_fetch_add(&finished_limited, 1);
}

static void done(h2o_req_t *req, void *data)
{
    rec *r = ((job_data *)data)->r;
    r->done = true;
    r->done_req_null = req == NULL;
    r->done_thread = pthread_self();
}

static void reset(void)
{
    atomic_store(&active, 0);
    atomic_store(&max_active, 0);
    atomic_store(&finished, 0);
    atomic_store(&finished_limited, 0);
    atomic_store(&works, 0);
    memset(recs, 0, sizeof recs);
}

/* Starts limited jobs [from, to) on this thread's loop (made without a
 * request). */
static int start_jobs(int from, int to, int ms)
{
    int refused = 0;
    for (int i = from; i < to; i++) {
        recs[i].idx = i;
        recs[i].sleep_ms = ms;
        recs[i].limited = true;
        off_job *j = off_new(NULL, sizeof(job_data));
        if (!j) {
            refused++;
            continue;
        }
        ((job_data *)off_data(j))->r = &recs[i];
        if (off_start_limited(j, work, done) != 0)
            refused++;
    }
    return refused;
}

/* Closes a loop after off_detach. */
static void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0, "every handle of the loop closed");
}

Test(offload, two_at_a_time_in_the_order_they_came)
{
    reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    off_loop *l = off_attach(&loop);
    cr_assert_not_null(l);
    cr_assert_eq(start_jobs(0, 8, 30), 0, "never refused");
    cr_assert_eq(off_pending(l), 8);
    /* The loop stays alive while jobs wait or run, and no longer. */
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(atomic_load(&works), 8);
    cr_assert_eq(off_pending(l), 0);
    cr_assert_eq(atomic_load(&max_active), OFF_MAX_RUNNING, "at most %d at once, got %d",
                 OFF_MAX_RUNNING, atomic_load(&max_active));
    for (int i = 0; i < 8; i++) {
        cr_assert(recs[i].done, "job %d completed", i);
        cr_assert(recs[i].done_req_null, "a job without a request gets NULL");
        cr_assert(pthread_equal(recs[i].done_thread, pthread_self()), "on the loop's thread");
        /* First come, first served: job i waits for i - 1 jobs to finish. */
        if (i >= OFF_MAX_RUNNING)
            cr_assert_geq(recs[i].finished_at_start, i - OFF_MAX_RUNNING + 1,
                          "job %d started with %d finished", i, recs[i].finished_at_start);
    }
    off_detach(l);
    close_loop(&loop);
}

typedef struct side {
    uv_loop_t loop;
    int from, to, ms;
    int refused;
    bool detach_at_once; /* detach before running the loop */
    pthread_t self;
} side;

static void *side_main(void *arg)
{
    side *s = arg;
    s->self = pthread_self();
    uv_loop_init(&s->loop);
    off_loop *l = off_attach(&s->loop);
    if (!l) {
        s->refused = -1;
        return NULL;
    }
    s->refused = start_jobs(s->from, s->to, s->ms);
    if (!s->detach_at_once)
        uv_run(&s->loop, UV_RUN_DEFAULT);
    off_detach(l);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return NULL;
}

/* Turns are the process's: two loops on two threads share them, and a turn
 * given up on one loop's thread starts the other's next job. */
Test(offload, two_loops_share_the_turns)
{
    reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    off_loop *l = off_attach(&loop);
    cr_assert_not_null(l);
    side b = {.from = 8, .to = 16, .ms = 20};
    pthread_t th;
    cr_assert_eq(start_jobs(0, 8, 20), 0);
    cr_assert_eq(pthread_create(&th, NULL, side_main, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    cr_assert_eq(b.refused, 0);
    cr_assert_eq(atomic_load(&works), 16);
    cr_assert_eq(atomic_load(&max_active), OFF_MAX_RUNNING, "at most %d at once, got %d",
                 OFF_MAX_RUNNING, atomic_load(&max_active));
    for (int i = 0; i < 16; i++) {
        cr_assert(recs[i].done, "job %d completed", i);
        pthread_t want = i < 8 ? pthread_self() : b.self;
        cr_assert(pthread_equal(recs[i].done_thread, want), "job %d completed on its loop", i);
    }
    off_detach(l);
    close_loop(&loop);
}

static void unlimited_done(h2o_req_t *req, void *data)
{
    rec *r = ((job_data *)data)->r;
    r->done = true;
    r->done_req_null = req == NULL;
    r->limited_finished_at_done = atomic_load(&finished_limited);
}

/* Other work (a payment provider's API) waits for no turn and takes none:
 * with both turns held by slow hashes, it runs and completes at once, and
 * the hashes still run two at a time. */
Test(offload, unlimited_jobs_take_no_turn)
{
    reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    off_loop *l = off_attach(&loop);
    cr_assert_not_null(l);
    cr_assert_eq(start_jobs(0, OFF_MAX_RUNNING + 1, 150), 0);
    for (int i = 8; i < 10; i++) {
        recs[i].idx = i;
        recs[i].sleep_ms = 0;
        off_job *j = off_new(NULL, sizeof(job_data));
        cr_assert_not_null(j);
        ((job_data *)off_data(j))->r = &recs[i];
        cr_assert_eq(off_start(j, work, unlimited_done), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(atomic_load(&works), OFF_MAX_RUNNING + 3);
    for (int i = 8; i < 10; i++) {
        cr_assert(recs[i].done, "unlimited job %d completed", i);
        cr_assert_eq(recs[i].limited_finished_at_done, 0,
                     "job %d waited for a hash: %d finished before it", i,
                     recs[i].limited_finished_at_done);
    }
    /* The hashes: two at a time (the others did not count). */
    cr_assert_geq(recs[OFF_MAX_RUNNING].finished_at_start, 1, "the third hash waited");
    off_detach(l);
    close_loop(&loop);
}

/* A loop that stops while its jobs wait: they never run or complete, and
 * the turns they would have had are still there for the others. */
Test(offload, a_detached_loop_drops_its_waiting_jobs_and_keeps_the_turns)
{
    reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    off_loop *l = off_attach(&loop);
    cr_assert_not_null(l);
    cr_assert_eq(start_jobs(0, OFF_MAX_RUNNING, 150), 0); /* both turns, for a while */
    side b = {.from = 8, .to = 12, .ms = 1, .detach_at_once = true};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, side_main, &b), 0);
    pthread_join(th, NULL);
    cr_assert_eq(b.refused, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(atomic_load(&works), OFF_MAX_RUNNING);
    for (int i = 8; i < 12; i++)
        cr_assert_not(recs[i].done, "job %d of the stopped loop completed", i);
    /* More jobs: they all run, two at a time (no turn lost, none extra). */
    atomic_store(&max_active, 0);
    cr_assert_eq(start_jobs(16, 22, 20), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(atomic_load(&works), OFF_MAX_RUNNING + 6);
    cr_assert_eq(atomic_load(&max_active), OFF_MAX_RUNNING);
    for (int i = 16; i < 22; i++)
        cr_assert(recs[i].done, "job %d completed", i);
    off_detach(l);
    close_loop(&loop);
}

/* Jobs for a request: done runs with the request while it is there; a
 * request gone before its job finished gets nothing (the job's data is
 * freed all the same: the sanitizer build would see a leak). */
Test(offload, a_request_that_left_gets_no_completion)
{
    reset();
    uv_loop_t loop;
    uv_loop_init(&loop);
    off_loop *l = off_attach(&loop);
    cr_assert_not_null(l);
    static h2o_req_t stays, leaves;
    memset(&stays, 0, sizeof stays);
    memset(&leaves, 0, sizeof leaves);
    h2o_mem_init_pool(&stays.pool);
    h2o_mem_init_pool(&leaves.pool);
    h2o_req_t *reqs[2] = {&stays, &leaves};
    for (int i = 0; i < 2; i++) {
        recs[i].idx = i;
        recs[i].sleep_ms = 30;
        recs[i].limited = true;
        off_job *j = off_new(reqs[i], sizeof(job_data));
        cr_assert_not_null(j);
        ((job_data *)off_data(j))->r = &recs[i];
        cr_assert_eq(off_start_limited(j, work, done), 0);
    }
    h2o_mem_clear_pool(&leaves.pool); /* the client left */
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(atomic_load(&works), 2, "the work runs either way");
    cr_assert(recs[0].done && !recs[0].done_req_null, "done with its request");
    cr_assert_not(recs[1].done, "no completion for a request that left");
    h2o_mem_clear_pool(&stays.pool);

    /* Discarded jobs hold no turn. */
    off_discard(off_new(NULL, 16));
    off_discard(NULL);
    cr_assert_eq(off_pending(l), 0);
    cr_assert_eq(start_jobs(4, 4 + OFF_MAX_RUNNING + 1, 5), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(atomic_load(&works), 2 + OFF_MAX_RUNNING + 1);
    off_detach(l);
    close_loop(&loop);

    /* No loop attached on this thread: no job. */
    cr_assert_null(off_new(NULL, 8));
}
