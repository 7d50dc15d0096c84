/* proj.h - projections: read models folded from the log.
 *
 * Owns: the sink interface every projection implements, and the runner that
 * follows the log and feeds a sink in batches. A sink applies a batch of
 * events and stores the position after it in the same atomic step (one
 * PostgreSQL transaction, one LMDB write transaction), so a projection is
 * exactly-once by construction: killed anywhere, it restarts from the
 * position it stored, and the result equals a fresh rebuild.
 *
 * Unknown event types or versions are counted and skipped, never fatal.
 */
#ifndef WS_PROJ_H
#define WS_PROJ_H

#include <stdbool.h>
#include <stdint.h>

#include "core/event.h"
#include "core/log.h"

typedef struct proj_sink_ops {
    const char *name; /* "pg", "cache" */
    /* The position the sink has applied up to (0 for a fresh one). */
    int (*next_pos)(void *ctx, uint64_t *pos);
    /* A batch: begin (which reads the position inside the batch's own
     * transaction, so that another writer of the same projection, or a
     * rebuild swapped in meanwhile, is never skipped or applied twice),
     * apply each event in log order from there, commit with the position
     * after the batch's last event. On any error the runner calls abort and
     * the whole batch is retried later. */
    int (*begin)(void *ctx, uint64_t *pos);
    int (*apply)(void *ctx, const ev_event *ev);
    int (*commit)(void *ctx, uint64_t next_pos);
    void (*abort)(void *ctx);
    /* The last error, as a sentence (never NULL). */
    const char *(*errmsg)(void *ctx);
    /* true: on a long fill (proj_fill) the runner may read, decode and
     * verify the log on a second thread ahead of the sink. Every call of
     * the sink stays on the caller's thread either way, and an event is
     * valid during apply only, as always. */
    bool decode_ahead;
} proj_sink_ops;

typedef struct proj_sink {
    const proj_sink_ops *ops;
    void *ctx;
} proj_sink;

typedef struct proj_stats {
    uint64_t applied;  /* events applied */
    uint64_t skipped;  /* unknown types or versions */
    uint64_t batches;
    uint64_t next_pos; /* where the sink is */
} proj_stats;

/* Applies the log to the sink from the sink's position, batches of at most
 * `batch` events, until the log's end. Returns 0, or -1 with err set (the
 * sink then holds every batch that committed before the error). */
int proj_catch_up(log_t *log, proj_sink *sink, size_t batch, proj_stats *st,
                  char *err, size_t errlen);

/* Called after each batch with the progress so far and the log's end as
 * last read; return non-zero to stop (the batches so far stay applied). */
typedef int (*proj_progress_fn)(void *ud, const proj_stats *st, uint64_t end);

/* proj_catch_up until the sink is at the log's end even while the log
 * grows (it returns when a catch-up finds nothing more), calling fn (may be
 * NULL) after every batch. Rebuilds and `replay` use it. For a sink with
 * decode_ahead and a long way to go, a second thread reads and decodes the
 * log ahead of the sink (proj_catch_up, which the live projector uses
 * beside another projection, stays on the caller's thread). */
int proj_fill(log_t *log, proj_sink *sink, size_t batch, proj_progress_fn fn, void *ud,
              proj_stats *st, char *err, size_t errlen);

/* The first position whose event was recorded at or after at_us
 * (microseconds since 1970, UTC): where `replay --from TIME` starts. Reads
 * the log from its start and stops at the first such event; *pos is the
 * log's end if no event is that late. Returns 0, or -1 with err set (a
 * damaged record, a log error). */
int proj_pos_at_time(log_t *log, uint64_t at_us, uint64_t *pos, char *err, size_t errlen);

#endif
