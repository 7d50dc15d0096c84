/* cache_rebuild.h - rebuilding the LMDB cache beside the live one and
 * swapping it in.
 *
 * Owns the sequence: take ROOT/rebuild.lock, build the next generation from
 * the whole log (cache_gen.h, proj_cache_open_builder) while the live
 * projector and the API keep using the live one, make it durable, publish
 * it, retire the old generation (its writer and readers move to the new one
 * on their next batch or read) and remove the generations before the old
 * one. A reader never sees a half-built cache: it reads the old generation
 * or the new one. The old generation stays on disk until the next rebuild,
 * since a reader may still be opening it.
 */
#ifndef WS_CACHE_REBUILD_H
#define WS_CACHE_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "proj.h"

/* Rebuilds the cache whose root is `root` from the whole log with the
 * e-mail key `email_key`. fn (may be NULL) after every batch; returning
 * non-zero abandons the rebuild (the live cache stays). Returns 0 (err then
 * holds a warning or is empty), or -1 with a sentence in err. */
int proj_cache_rebuild(log_t *log, const char *root, const uint8_t email_key[32], size_t batch,
                       proj_progress_fn fn, void *ud, proj_stats *st, char *err,
                       size_t errlen);

#endif
