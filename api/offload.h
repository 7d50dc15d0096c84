/* offload.h - slow work (password hashing) off the event loop.
 *
 * Owns a job's data and its tie to the request: the work runs on libuv's
 * thread pool, the completion on the request's loop, and only if the
 * request is still there (a client that left gets nothing, and the data is
 * freed all the same).
 */
#ifndef WS_OFFLOAD_H
#define WS_OFFLOAD_H

#include <stddef.h>

#include <h2o.h>

typedef struct off_job off_job;

typedef void (*off_work_fn)(void *data);                  /* on a pool thread */
typedef void (*off_done_fn)(h2o_req_t *req, void *data);  /* on the loop */

/* A job for request `req` with `size` bytes of zeroed data (off_data). */
off_job *off_new(h2o_req_t *req, size_t size);
void *off_data(off_job *j);
/* Frees a job that will not be started (NULL is fine). */
void off_discard(off_job *j);
/* Queues the work; done follows on the request's loop. The job and its
 * data are freed after done (or when the request has gone). 0, or -1 (the
 * job was freed). */
int off_start(off_job *j, off_work_fn work, off_done_fn done);

#endif
