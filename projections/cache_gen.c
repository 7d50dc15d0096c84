/* cache_gen.c - generations of the cache directory (see cache_gen.h). */
#include "cache_gen.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/wlock.h"

#define GEN_FMT "gen-%06u"

void cgen_dir(const char *root, unsigned gen, char *dir, size_t dirlen)
{
    snprintf(dir, dirlen, "%s/" GEN_FMT, root, gen);
}

/* The number in a name "gen-NNNNNN", or 0 if it is not one. */
static unsigned gen_number(const char *name)
{
    if (strncmp(name, "gen-", 4) != 0 || !name[4])
        return 0;
    char *end;
    unsigned long v = strtoul(name + 4, &end, 10);
    return *end || v == 0 || v > 999999 ? 0 : (unsigned)v;
}

int cgen_current(const char *root, char *dir, size_t dirlen, unsigned *gen, char *err,
                 size_t errlen)
{
    char link[CGEN_PATH_MAX], target[256];
    snprintf(link, sizeof link, "%s/current", root);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) {
        snprintf(err, errlen, "no cache at %s (%s); its projector creates it", root,
                 strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? CGEN_ENOENT : CGEN_EIO;
    }
    target[n] = 0;
    unsigned g = gen_number(target);
    if (!g) {
        snprintf(err, errlen, "%s points to '%s', not to a cache generation", link, target);
        return CGEN_EIO;
    }
    cgen_dir(root, g, dir, dirlen);
    *gen = g;
    return 0;
}

static int make_gen(const char *root, unsigned gen, char *dir, size_t dirlen, char *err,
                    size_t errlen)
{
    cgen_dir(root, gen, dir, dirlen);
    if (mkdir(dir, 0700) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
        errno = e;
        return CGEN_EIO;
    }
    return 0;
}

/* Removes a generation's directory and the files in it (it has no
 * subdirectories). */
static int remove_gen(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        return CGEN_EIO;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && rc == 0) {
            snprintf(err, errlen, "cannot remove %s/%s: %s", dir, e->d_name, strerror(errno));
            rc = CGEN_EIO;
        }
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) {
        snprintf(err, errlen, "cannot remove %s: %s", dir, strerror(errno));
        rc = CGEN_EIO;
    }
    return rc;
}

/* The highest generation number present in ROOT (0: none). */
static int highest_gen(const char *root, unsigned *top, char *err, size_t errlen)
{
    DIR *d = opendir(root);
    if (!d) {
        snprintf(err, errlen, "cannot open %s: %s", root, strerror(errno));
        return CGEN_EIO;
    }
    struct dirent *e;
    *top = 0;
    while ((e = readdir(d)) != NULL) {
        unsigned g = gen_number(e->d_name);
        if (g > *top)
            *top = g;
    }
    closedir(d);
    return 0;
}

int cgen_ensure(const char *root, char *dir, size_t dirlen, unsigned *gen, char *err,
                size_t errlen)
{
    int rc = cgen_current(root, dir, dirlen, gen, err, errlen);
    if (rc != CGEN_ENOENT)
        return rc;
    if (wlock_mkdir_private(root) != 0) {
        snprintf(err, errlen, "cannot create cache directory %s: %s", root, strerror(errno));
        return CGEN_EIO;
    }
    /* Two processes may get here at once: each makes its own empty
     * generation, the first link wins, the other generation is never used. */
    unsigned top;
    if ((rc = highest_gen(root, &top, err, errlen)) != 0)
        return rc;
    for (;;) {
        *gen = ++top;
        if ((rc = make_gen(root, *gen, dir, dirlen, err, errlen)) == 0)
            break;
        if (errno != EEXIST || top > 999990)
            return rc;
    }
    char link[CGEN_PATH_MAX], target[32];
    snprintf(link, sizeof link, "%s/current", root);
    snprintf(target, sizeof target, GEN_FMT, *gen);
    if (symlink(target, link) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", link, strerror(errno));
        return CGEN_EIO;
    }
    return cgen_current(root, dir, dirlen, gen, err, errlen);
}

int cgen_create_next(const char *root, char *dir, size_t dirlen, unsigned *gen, char *err,
                     size_t errlen)
{
    unsigned top, live = 0;
    char live_dir[CGEN_PATH_MAX];
    int rc = highest_gen(root, &top, err, errlen);
    if (rc)
        return rc;
    if (cgen_current(root, live_dir, sizeof live_dir, &live, err, errlen) != 0)
        live = 0;
    /* Generations above the live one are abandoned builds. */
    for (; top > live; top--) {
        cgen_dir(root, top, dir, dirlen);
        if ((rc = remove_gen(dir, err, errlen)) != 0)
            return rc;
    }
    if ((rc = make_gen(root, live + 1, dir, dirlen, err, errlen)) != 0)
        return rc;
    *gen = live + 1;
    return 0;
}

int cgen_publish(const char *root, unsigned gen, char *err, size_t errlen)
{
    char link[CGEN_PATH_MAX], tmp[CGEN_PATH_MAX], target[32];
    snprintf(link, sizeof link, "%s/current", root);
    snprintf(tmp, sizeof tmp, "%s/current.new", root);
    snprintf(target, sizeof target, GEN_FMT, gen);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        snprintf(err, errlen, "cannot point %s to %s: %s", link, target, strerror(errno));
        unlink(tmp);
        return CGEN_EIO;
    }
    /* The rename reaches the disk before anyone is told about it. */
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", root, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CGEN_EIO;
    }
    close(fd);
    return 0;
}

int cgen_prune(const char *root, unsigned below, char *err, size_t errlen)
{
    char live_dir[CGEN_PATH_MAX];
    unsigned live = 0;
    int rc = cgen_current(root, live_dir, sizeof live_dir, &live, err, errlen);
    if (rc)
        return rc;
    DIR *d = opendir(root);
    if (!d) {
        snprintf(err, errlen, "cannot open %s: %s", root, strerror(errno));
        return CGEN_EIO;
    }
    unsigned *old = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        unsigned g = gen_number(e->d_name);
        if (!g || g >= below || g == live)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            unsigned *t = realloc(old, cap * sizeof *t);
            if (!t) {
                snprintf(err, errlen, "out of memory");
                rc = CGEN_EIO;
                break;
            }
            old = t;
        }
        old[n++] = g;
    }
    closedir(d);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char dir[CGEN_PATH_MAX];
        cgen_dir(root, old[i], dir, sizeof dir);
        rc = remove_gen(dir, err, errlen);
    }
    free(old);
    return rc;
}

/* ------------------------------------------------------ unsynced marker */

#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_LEN 36

/* This boot's id (36 characters) into id; false if it cannot be read. */
static bool read_boot_id(char id[BOOT_ID_LEN + 1])
{
    int fd = open(BOOT_ID_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, id, BOOT_ID_LEN);
    close(fd);
    id[n > 0 ? n : 0] = 0;
    return n == BOOT_ID_LEN;
}

static int sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int cgen_mark_unsynced(const char *dir, char *err, size_t errlen)
{
    char path[CGEN_PATH_MAX + 16], tmp[CGEN_PATH_MAX + 16], id[BOOT_ID_LEN + 1];
    snprintf(path, sizeof path, "%s/unsynced", dir);
    snprintf(tmp, sizeof tmp, "%s/unsynced.new", dir);
    if (!read_boot_id(id)) {
        snprintf(err, errlen, "cannot read %s: %s", BOOT_ID_FILE, strerror(errno));
        return CGEN_EIO;
    }
    /* Written beside and renamed over: a crash never leaves it half. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, id, BOOT_ID_LEN) != BOOT_ID_LEN || fsync(fd) != 0 ||
        rename(tmp, path) != 0 || sync_path(dir, O_RDONLY | O_DIRECTORY) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return CGEN_EIO;
    }
    close(fd);
    return 0;
}

int cgen_clear_unsynced(const char *dir, char *err, size_t errlen)
{
    char path[CGEN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/unsynced", dir);
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
        return CGEN_EIO;
    }
    return 0;
}

bool cgen_unsynced_stale(const char *dir)
{
    char path[CGEN_PATH_MAX + 16], mine[BOOT_ID_LEN + 1], got[BOOT_ID_LEN + 1];
    snprintf(path, sizeof path, "%s/unsynced", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT;
    ssize_t n = read(fd, got, BOOT_ID_LEN);
    close(fd);
    got[n > 0 ? n : 0] = 0;
    return n != BOOT_ID_LEN || !read_boot_id(mine) || strcmp(got, mine) != 0;
}
