/* cmd.h - commands from the HTTP loops to the writer, and their answers
 * back, with read-your-writes.
 *
 * Owns: the writer (core/writer.h) on its own thread with its in-process
 * queue; per event loop, the answers that came back (a uv_async wakes the
 * loop) and the requests waiting for the cache; the watch on the cache's
 * notifications. A command's answer is handed to its request on the loop
 * the request came from, once its events are durable and, when asked, once
 * the cache has applied them (so the client reads back what it just wrote),
 * or after a timeout (the events are durable either way).
 *
 * Ownership: a cmd_call is made for one request and owns copies of
 * everything its command borrows (cmd_keep, cmd_lines), because the writer
 * may still be reading the command after the client has gone. If the
 * request is gone when the answer arrives, the answer is dropped: the
 * command still took effect, as any other durable command.
 */
#ifndef WS_CMD_H
#define WS_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include <h2o.h>

#include "core/writer.h"
#include "projections/proj_cache.h"

typedef struct cmd_bus cmd_bus;
typedef struct cmd_call cmd_call;

/* Called on the request's loop with the answer (see cmd_out, cmd_err).
 * For a call made without a request (cmd_new(NULL, ...)) req is NULL; a
 * call whose request went away before the answer gets no call. */
typedef void (*cmd_done_fn)(cmd_call *c, h2o_req_t *req, void *ud);

typedef struct cmd_config {
    const char *log_uri;
    const char *snapshot_path; /* NULL: none */
    uint8_t email_key[32];
    int n_loops;
    proj_cache_reader *cache;  /* read-your-writes waits on it */
    unsigned ryw_timeout_ms;   /* default 2000 */
} cmd_config;

/* Opens the log as its writer (rebuilding its state) and starts its
 * thread. 0, or -1 with a sentence. */
int cmd_bus_open(const cmd_config *cfg, cmd_bus **out, char *err, size_t errlen);
/* The cache read-your-writes waits on (before the loops attach). */
void cmd_bus_set_cache(cmd_bus *b, proj_cache_reader *cache);
/* On loop `index`'s thread, before it serves / after it stopped. */
void cmd_bus_attach(cmd_bus *b, int index, uv_loop_t *loop);
void cmd_bus_detach(cmd_bus *b, int index);
/* Commands submitted on loop `index` and not yet answered. */
bool cmd_bus_busy(cmd_bus *b, int index);
/* Stops taking commands, lets the writer finish, closes the log. */
void cmd_bus_close(cmd_bus *b);
typedef struct cmd_stats {
    uint64_t batches;       /* group commits */
    uint64_t commands;      /* commands answered */
    double wait_s;          /* their time from submission until durable, summed */
    uint64_t ryw_waited;    /* answers held until the cache had their events */
    double ryw_wait_s;      /* their time from durable until answered, summed */
    uint64_t end_pos;       /* after the last event appended (0: none yet) */
    uint64_t cache_pos;     /* the cache's applied position, as last read */
} cmd_stats;
void cmd_bus_stats(cmd_bus *b, cmd_stats *out);

/* The writer's state, for reads that need it (the writer's thread owns
 * it: only from that thread, or for values that are set once). */
uint64_t cmd_bus_batches(cmd_bus *b);

/* A call for request `req` (NULL for calls without a request, e.g. tests).
 * The command is zeroed except kind and now_us (wall clock). */
cmd_call *cmd_new(h2o_req_t *req, dec_kind kind);
dec_cmd *cmd_command(cmd_call *c);
/* A copy of p[0..n) owned by the call (n == 0 and p NULL: none). */
ev_str cmd_keep(cmd_call *c, const char *p, size_t n);
/* Room for n order lines owned by the call (zeroed). */
dec_line_in *cmd_lines(cmd_call *c, size_t n);

/* Frees a call that will not be submitted. */
void cmd_discard(cmd_call *c);

/* Sends the call's command to the writer from loop `index`; done runs on
 * that loop. wait_cache: answer only once the cache has the events. */
void cmd_submit(cmd_bus *b, int index, cmd_call *c, bool wait_cache, cmd_done_fn done,
                void *ud);

const dec_out *cmd_out(const cmd_call *c);
/* 0, or the LOG_E* code of a failed append (the command did not happen). */
int cmd_err(const cmd_call *c);

#endif
