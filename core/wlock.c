/* wlock.c - one writer per store directory (see wlock.h). */
#include "wlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int wlock_take(const char *dir, const char *what, int *fd, char *err, size_t errlen)
{
    char lp[4200];
    snprintf(lp, sizeof lp, "%s/writer.lock", dir);
    return wlock_take_file(lp, what, fd, err, errlen);
}

int wlock_take_file(const char *lp, const char *what, int *fd, char *err, size_t errlen)
{
    *fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", lp, strerror(errno));
        return WLOCK_EIO;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t n = pread(*fd, pid, sizeof pid - 1, 0);
        if (n > 0)
            pid[strcspn(pid, "\n")] = 0;
        snprintf(err, errlen,
                 "%s already has a writer (process %s, holding %s); a %s takes one writer"
                 " at a time",
                 what, n > 0 ? pid : "?", lp, what);
        close(*fd);
        *fd = -1;
        return WLOCK_EBUSY;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(*fd, 0) != 0 || pwrite(*fd, pid, (size_t)n, 0) != n) {
        snprintf(err, errlen, "cannot write %s: %s", lp, strerror(errno));
        close(*fd);
        *fd = -1;
        return WLOCK_EIO;
    }
    return WLOCK_OK;
}

int wlock_mkdir_private(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}
