/* cache_rebuild.c - rebuild the cache beside the live one and swap it in
 * (see cache_rebuild.h). */
#include "cache_rebuild.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache_gen.h"
#include "core/wlock.h"
#include "proj_cache.h"

/* Fills the generation in `dir` from the log and makes it durable. */
static int build(log_t *log, const char *dir, const uint8_t key[32], size_t batch,
                 proj_progress_fn fn, void *ud, proj_stats *st, uint64_t *inconsistent,
                 char *err, size_t errlen)
{
    proj_sink sink;
    if (proj_cache_open_builder(dir, key, &sink, err, errlen) != 0)
        return -1;
    int rc = proj_fill(log, &sink, batch, fn, ud, st, err, errlen);
    *inconsistent = proj_cache_inconsistent(&sink);
    if (rc == 0)
        rc = proj_cache_sync(&sink, err, errlen) ? -1 : 0;
    proj_cache_close(&sink);
    return rc;
}

int proj_cache_rebuild(log_t *log, const char *root, const uint8_t email_key[32], size_t batch,
                       proj_progress_fn fn, void *ud, proj_stats *st, char *err,
                       size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (wlock_mkdir_private(root) != 0) {
        snprintf(err, errlen, "cannot create cache directory %s: %s", root, strerror(errno));
        return -1;
    }
    char lock[CGEN_PATH_MAX], live[CGEN_PATH_MAX], next[CGEN_PATH_MAX];
    snprintf(lock, sizeof lock, "%s/rebuild.lock", root);
    int lock_fd, rc = -1;
    if (wlock_take_file(lock, "cache rebuild", &lock_fd, err, errlen) != WLOCK_OK)
        return -1;
    unsigned live_gen, next_gen;
    if (cgen_ensure(root, live, sizeof live, &live_gen, err, errlen) != 0 ||
        cgen_create_next(root, next, sizeof next, &next_gen, err, errlen) != 0)
        goto out;
    uint64_t inconsistent = 0;
    if (build(log, next, email_key, batch, fn, ud, st, &inconsistent, err, errlen) != 0)
        goto out;
    /* Published first, retired second: whoever finds the old generation
     * retired finds the new one live. */
    if (cgen_publish(root, next_gen, err, errlen) != 0 ||
        proj_cache_retire(live, err, errlen) != 0 ||
        cgen_prune(root, live_gen, err, errlen) != 0)
        goto out;
    /* Not a failure (the live projector applies the log the same way), but
     * worth telling the operator. */
    if (inconsistent)
        snprintf(err, errlen,
                 "%llu events contradict the state before them and were skipped, as the "
                 "live projector skips them",
                 (unsigned long long)inconsistent);
    else
        err[0] = 0;
    rc = 0;
out:
    close(lock_fd);
    return rc;
}
