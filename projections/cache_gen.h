/* cache_gen.h - generations of the cache directory, so that a rebuilt cache
 * can be swapped in whole while the live one keeps serving.
 *
 * Owns the layout of a cache root directory ROOT:
 *   ROOT/current        symbolic link to the live generation ("gen-000001")
 *   ROOT/gen-NNNNNN/    one generation: an LMDB environment (proj_cache.c)
 *   ROOT/writer.lock    held by the live projector (core/wlock)
 *   ROOT/rebuild.lock   held by a rebuild while it builds the next generation
 * and the steps on it: finding the live generation, making the next one,
 * publishing it (an atomic rename of the link), and removing generations no
 * reader can still be opening. What is inside a generation is
 * proj_cache.c's business.
 *
 * Functions return 0 or a negative CGEN_E* code with a sentence in err.
 */
#ifndef WS_CACHE_GEN_H
#define WS_CACHE_GEN_H

#include <stdbool.h>
#include <stddef.h>

enum { CGEN_OK = 0, CGEN_EIO = -1, CGEN_ENOENT = -2 };

#define CGEN_PATH_MAX 4200

/* The live generation's directory into `dir` and its number into *gen.
 * CGEN_ENOENT when ROOT has no live generation yet. */
int cgen_current(const char *root, char *dir, size_t dirlen, unsigned *gen, char *err,
                 size_t errlen);

/* As cgen_current, but makes ROOT (private to its user) and a first, empty
 * generation when there is none. */
int cgen_ensure(const char *root, char *dir, size_t dirlen, unsigned *gen, char *err,
                size_t errlen);

/* Makes a new empty generation, numbered after every one present (a
 * leftover of an abandoned rebuild is removed first). */
int cgen_create_next(const char *root, char *dir, size_t dirlen, unsigned *gen, char *err,
                     size_t errlen);

/* Makes generation `gen` the live one: ROOT/current is replaced by a
 * rename, so a reader resolving it finds the old or the new, never none. */
int cgen_publish(const char *root, unsigned gen, char *err, size_t errlen);

/* Removes every generation numbered below `below` (never the live one). */
int cgen_prune(const char *root, unsigned below, char *err, size_t errlen);

/* ---- generations written without a sync per commit ----
 * The live projector commits to the cache without flushing to the disk (the
 * cache is derived: the log is what is durable). A crash of the process
 * loses nothing (the kernel still holds every write), but a crash of the
 * machine may leave the environment torn. So before the first such commit
 * the projector writes a marker holding this boot's id into the
 * generation's directory (synced), and removes it after a final sync on a
 * clean close. A marker from another boot means the machine stopped while
 * the generation had unflushed commits: it is not to be trusted, and is
 * rebuilt from the log. */

/* Writes dir/unsynced with this boot's id and syncs it and dir. */
int cgen_mark_unsynced(const char *dir, char *err, size_t errlen);
/* Removes the marker (after the caller has synced the environment). */
int cgen_clear_unsynced(const char *dir, char *err, size_t errlen);
/* True when dir/unsynced exists and was written during another boot (or
 * cannot be read). */
bool cgen_unsynced_stale(const char *dir);

/* ROOT/gen-NNNNNN for a number. */
void cgen_dir(const char *root, unsigned gen, char *dir, size_t dirlen);

#endif
