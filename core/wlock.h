/* wlock.h - the one-writer rule for a store kept in a directory (the log,
 * the cache): a lock file `writer.lock` held with flock by the writer
 * process, holding its process id so that a refused second writer can be
 * told who holds it. The kernel drops the lock when the holder exits, however
 * it exits. Also makes such a directory: private to its user, since the
 * stores hold personal data and password hashes. */
#ifndef WS_WLOCK_H
#define WS_WLOCK_H

#include <stddef.h>

enum { WLOCK_OK = 0, WLOCK_EIO = -1, WLOCK_EBUSY = -2 };

/* Takes DIR/writer.lock; on success *fd holds it (close it to let go).
 * `what` names the store in the refusal ("log", "cache"). */
int wlock_take(const char *dir, const char *what, int *fd, char *err, size_t errlen);

/* The same with a lock file of another name (e.g. DIR/rebuild.lock). */
int wlock_take_file(const char *path, const char *what, int *fd, char *err, size_t errlen);

/* mkdir -p DIR; missing parents 0755, DIR itself 0700. 0, or -1 (errno). */
int wlock_mkdir_private(const char *dir);

#endif
