/* proj_pg.h - the PostgreSQL read models as a projection sink.
 *
 * Owns: one libpq connection, the rows a batch makes (buffered and sent with
 * COPY), the updates it makes (coalesced per row, applied with one UPDATE
 * ... FROM a temporary table per kind), and the `projection_state` row that
 * records the position applied, all in one transaction per batch.
 *
 * Rules that make rebuilds identical: every row carries the position of the
 * event that last wrote it (source_pos); order items are numbered
 * order_id * 100 + line index; invoices are INV-<year>-<order id, 5 digits>;
 * stock movements take the next number of a counter kept in
 * projection_state, in the same transaction. A rewind (proj_pg_rewind)
 * moves the position back; the rows from there on are then written again.
 */
#ifndef WS_PROJ_PG_H
#define WS_PROJ_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "proj.h"

typedef struct proj_pg proj_pg;

/* Connects and migrates `schema` ("public" for the live read models).
 * Returns NULL with a sentence in err. */
proj_pg *proj_pg_open(const char *conninfo, const char *schema, char *err,
                      size_t errlen);
void proj_pg_close(proj_pg *p);
/* The sink to give proj_catch_up. */
proj_sink proj_pg_sink(proj_pg *p);
/* Batches commit without waiting for PostgreSQL's WAL flush (for a rebuild
 * into a shadow schema: after a PostgreSQL crash the position rolls back
 * with the rows, and the batches are applied again). Off by default. */
void proj_pg_set_async_commit(proj_pg *p, bool on);

/* Partial re-projection (`replay --from P`): makes the read models in
 * `schema` re-apply the log from position from_pos on. In one transaction
 * that holds the projection_state row lock (as every batch does), it
 * deletes the append-only rows written by events at from_pos or later
 * (stock_movements and payments), sets the movement counter after the
 * movements left, records the position reached so far as the high-water
 * mark replay_until (the greater of it and the one already there; 0 when
 * that is not beyond from_pos), and sets the position to from_pos. Any sink on those tables (the live
 * projector, or the caller's own proj_catch_up) then carries on from
 * from_pos: batches that start below the mark upsert their new rows, and
 * the batch that reaches the mark clears it. Every event sets absolute
 * values, so the result equals a clean projection of the same log.
 * Refuses (returns -1, err says why, nothing changed) a from_pos beyond the
 * position the read models have reached. Returns 0 on success. */
int proj_pg_rewind(const char *conninfo, const char *schema, uint64_t from_pos, char *err,
                   size_t errlen);

/* A time (microseconds since 1970, UTC) as the read models' timestamptz
 * text, "YYYY-MM-DD HH:MM:SS.uuuuuu+00", into out; returns its length (no
 * NUL written). The same text as gmtime_r + strftime, made by hand (it
 * remembers the date of the last day it formatted, per thread). */
#define PROJ_PG_TS_MAX 48
size_t proj_pg_format_ts(uint64_t us, char out[PROJ_PG_TS_MAX]);

/* Drops the connection and connects again (after PostgreSQL came back). */
int proj_pg_reconnect(proj_pg *p, char *err, size_t errlen);

/* Read-your-writes for PostgreSQL readers: every batch's commit publishes
 * its position on the channel "ws_projection_pg" (NOTIFY, delivered at
 * commit). proj_pg_wait blocks on `db` (a reader's own connection) until the
 * read models in `schema` hold the event at `pos`, or timeout_ms passes.
 * Returns 0, 1 on timeout, -1 on error (err set). */
int proj_pg_wait(PGconn *db, const char *schema, uint64_t pos, int timeout_ms, char *err,
                 size_t errlen);

#endif
