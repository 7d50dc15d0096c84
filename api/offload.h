/* offload.h - slow work off the event loop (password hashes, payment
 * providers' APIs); password hashes at most OFF_MAX_RUNNING at a time in the
 * process.
 *
 * Owns a job's data and its tie to the request, and the turns. A job runs
 * on libuv's thread pool; one started with off_start_limited only when it
 * has one of the OFF_MAX_RUNNING turns (scrypt takes 8 MiB and a few
 * hundred milliseconds a hash, so a burst of logins must not run them all at
 * once): such jobs beyond that wait in a queue shared by every loop, first
 * come first served, and are never refused. Other jobs (off_start) take no
 * turn and wait for none. A job's completion runs on the loop it was made
 * on, and for a job made for a request only if the request is still there
 * (a client that left gets nothing, and the data is wiped and freed all the
 * same). Jobs made without a request always complete (fire and forget work,
 * e.g. a re-hash after a login). The work function may use only the job's
 * data (and what outlives every request): a request's memory can go while
 * its job waits or runs.
 *
 * Each event loop that makes jobs attaches on its own thread first; a turn
 * given up on one loop's thread wakes the loop whose job is next (a
 * uv_async). Job data is wiped before it is freed, so it may hold a
 * password.
 */
#ifndef WS_OFFLOAD_H
#define WS_OFFLOAD_H

#include <stddef.h>

#include <h2o.h>

#define OFF_MAX_RUNNING 2

typedef struct off_job off_job;
typedef struct off_loop off_loop;

typedef void (*off_work_fn)(void *data);                  /* on a pool thread */
typedef void (*off_done_fn)(h2o_req_t *req, void *data);  /* on the loop; req NULL
                                                             for a job without one */

/* On the thread that runs `loop`, before it makes jobs: jobs made on this
 * thread belong to it. NULL when out of memory. */
off_loop *off_attach(uv_loop_t *loop);
/* Jobs of the loop not finished (waiting for a turn or running). */
unsigned off_pending(const off_loop *l);
/* On the loop's thread, once it serves no more: its waiting jobs are
 * dropped, and from now on no job of it completes (those running finish on
 * the pool, give their turns on and are freed when the loop runs again to
 * close its handles). NULL is fine. */
void off_detach(off_loop *l);

/* A job with `size` bytes of zeroed data (off_data), for request `req` or,
 * with NULL, for none, on this thread's attached loop. NULL when out of
 * memory or no loop is attached on this thread. */
off_job *off_new(h2o_req_t *req, size_t size);
void *off_data(off_job *j);
/* Frees a job that will not be started (NULL is fine). */
void off_discard(off_job *j);
/* Queues the work on the pool at once; done follows on the job's loop. The
 * job and its data are freed after done (or when it will not be called). 0,
 * or -1 (the job was freed). */
int off_start(off_job *j, off_work_fn work, off_done_fn done);
/* The same for work that runs at most OFF_MAX_RUNNING at a time (password
 * hashes): it is queued on the pool when its turn comes. */
int off_start_limited(off_job *j, off_work_fn work, off_done_fn done);

#endif
