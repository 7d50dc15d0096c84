/* rebuild.h - rebuilding the PostgreSQL read models beside the live ones and
 * swapping them in.
 *
 * Owns: the shadow schema (`rm_shadow`), projecting the whole log into it
 * while the live projector keeps serving (with the shadow's secondary
 * indexes dropped during the bulk of it and built again, then analyzed,
 * before the swap), and the swap: one transaction that
 * moves the live tables out and the shadow tables in, so a reader sees either
 * the old tables or the new ones, never half of either. The swap waits for
 * its locks at most a moment and retries, so it never makes a reader fail
 * (it gives up its own locks before PostgreSQL's deadlock detector would
 * choose a victim).
 */
#ifndef WS_REBUILD_H
#define WS_REBUILD_H

#include "core/log.h"
#include "proj.h"

/* Rebuilds the read models of the database at `conninfo` from the whole log
 * and swaps them in. Returns 0, or -1 with a sentence in err. */
int proj_pg_rebuild(log_t *log, const char *conninfo, size_t batch, proj_progress_fn fn,
                    void *ud, proj_stats *st, char *err, size_t errlen);

#endif
