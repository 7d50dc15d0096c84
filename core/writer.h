/* writer.h - the single-writer command processor with group commit.
 *
 * Owns: the log opened as its one writer, the state folded from it, and the
 * loop that takes commands, decides them in order, appends all their events
 * in one durable append and then answers each command with the positions of
 * its events. The loop is pipelined: while one batch is being made durable
 * (on a second thread), the next is decided; a batch's answers go out once it
 * is durable, and a batch decided on top of one that failed fails too.
 *
 * Where commands come from and where answers go are interfaces (wr_source and
 * each request's `done`): in the embedded deployment the source is the
 * in-process queue below and answers go back to the waiting HTTP requests.
 *
 * Start-up: the state is loaded from the snapshot file (if any, and if it
 * matches the log) and the rest of the log is folded in.
 */
#ifndef WS_WRITER_H
#define WS_WRITER_H

#include <pthread.h>

#include "decide.h"
#include "log.h"
#include "state.h"

typedef struct wr_config {
    const char *log_uri;        /* e.g. "lmdb:var/log" */
    const char *snapshot_path;  /* NULL: no snapshots */
    uint64_t snapshot_every;    /* events between snapshots (0: 1,000,000) */
    size_t max_batch;           /* commands per group commit (0: 4096) */
    uint8_t email_key[32];
} wr_config;

typedef struct wr_req wr_req;
struct wr_req {
    dec_cmd cmd;
    dec_out out;
    int err; /* 0, or a LOG_E* code: the command's events are not durable */
    void (*done)(wr_req *req, void *ud); /* from the writer's commit thread */
    void *ud;
    wr_req *next; /* the queue's link */
    char cmd_id[40]; /* a command id made when cmd.causation is empty */
};

typedef struct wr_writer wr_writer;

/* Opens the log as its writer and rebuilds the state. */
int wr_open(const wr_config *cfg, wr_writer **out, char *err, size_t errlen);
/* Writes a snapshot (if configured) and closes the log. */
void wr_close(wr_writer *w);

/* Decides n requests in order, appends their events in one durable step and
 * fills each request's out (positions included) and err. Does not call
 * `done`. Returns 0, or the LOG_E* code of a failed append (every request of
 * the batch then has err set, and the state is rebuilt from the log). */
int wr_process(wr_writer *w, wr_req **reqs, size_t n);

/* The state (read it only from the writer's thread, or when stopped). */
const st_state *wr_state(const wr_writer *w);
log_t *wr_log(wr_writer *w);
uint64_t wr_batches(const wr_writer *w);

/* ---- command sources ---- */

/* take() blocks until at least one request is there, the source is closed,
 * or kick() was called since the last take(); it moves up to max waiting
 * requests into reqs and returns how many (0 after a kick), or -1 when the
 * source is closed and empty. kick() may be called from any thread. */
typedef struct wr_source {
    long (*take)(void *ctx, wr_req **reqs, size_t max);
    void (*kick)(void *ctx);
    void *ctx;
} wr_source;

/* Runs the pipelined loop until the source closes: while one batch commits
 * on a second thread, every command that arrives is decided into the next
 * batch, which is handed over the moment the commit ends (or when it is
 * full). A command thus waits for at most the commit in progress and its
 * own. Answers (`done`) go out as soon as their batch is durable. */
int wr_run(wr_writer *w, const wr_source *src);

/* The in-process queue (many producer threads, one writer thread). */
typedef struct wr_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wr_req *head, *tail;
    bool closed;
    bool kicked;
} wr_queue;
void wr_queue_init(wr_queue *q);
void wr_queue_destroy(wr_queue *q);
/* Returns -1 if the queue is closed (the request was not taken). */
int wr_queue_push(wr_queue *q, wr_req *r);
void wr_queue_close(wr_queue *q);
wr_source wr_queue_source(wr_queue *q);

#endif
