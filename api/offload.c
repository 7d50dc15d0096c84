/* offload.c - work on libuv's thread pool for a request (see offload.h). */
#include "offload.h"

#include <stdlib.h>
#include <string.h>

struct off_job {
    uv_work_t work;
    h2o_req_t *req;     /* NULL once the request is gone */
    off_job **slot;     /* in the request's pool */
    off_work_fn fn;
    off_done_fn done;
    max_align_t data[]; /* the caller's */
};

static void on_req_gone(void *p)
{
    off_job *j = *(off_job **)p;
    if (j)
        j->req = NULL;
}

off_job *off_new(h2o_req_t *req, size_t size)
{
    off_job *j = calloc(1, sizeof *j + size);
    if (!j)
        return NULL;
    j->req = req;
    j->slot = h2o_mem_alloc_shared(&req->pool, sizeof *j->slot, on_req_gone);
    *j->slot = j;
    return j;
}

void *off_data(off_job *j) { return j->data; }

void off_discard(off_job *j)
{
    if (!j)
        return;
    if (j->req)
        *j->slot = NULL;
    free(j);
}

static void run(uv_work_t *w)
{
    off_job *j = (off_job *)w;
    j->fn(j->data);
}

static void after(uv_work_t *w, int status)
{
    off_job *j = (off_job *)w;
    (void)status;
    if (j->req) {
        *j->slot = NULL;
        j->done(j->req, j->data);
    }
    free(j);
}

int off_start(off_job *j, off_work_fn work, off_done_fn done)
{
    j->fn = work;
    j->done = done;
    if (uv_queue_work(j->req->conn->ctx->loop, &j->work, run, after) != 0) {
        *j->slot = NULL;
        free(j);
        return -1;
    }
    return 0;
}
