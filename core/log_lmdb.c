/* log_lmdb.c - the embedded log backend: one LMDB environment on local disk.
 *
 * Owns: the environment in directory PATH (data.mdb, lock.mdb), the writer
 * lock file (writer.lock, held with flock by the one writer process) and the
 * notify file (notify), which the writer touches after every durable commit
 * so that readers in other processes, watching it with inotify, wake at once
 * without polling.
 *
 * The directory and its files are private to the user that runs the log
 * (0700/0600): events carry personal data and password hashes.
 *
 * Records are values of the main database under 8-byte big-endian position
 * keys (byte order = numeric order), appended with MDB_APPEND. A batch is one
 * write transaction; the environment syncs on commit, so a committed batch is
 * durable and a crash leaves only whole batches.
 *
 * The log is read in order and appended to; a page once passed is not
 * needed again soon. So that a long-running writer or reader does not keep
 * the whole file resident in its own memory (the map's pages count in its
 * RSS), the map's pages are released (core/mapmem.h) after every
 * LMDB_TRIM_BYTES read or written.
 */
#include "event.h"
#include "log.h"
#include "mapmem.h"
#include "wlock.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAPSIZE (64ull << 30)
#define LMDB_TRIM_BYTES (8u << 20)

typedef struct log_lmdb {
    log_t base;
    MDB_env *env;
    MDB_dbi dbi;
    int mode;
    int lock_fd;   /* writer only */
    int notify_fd; /* the notify file (writer writes, readers watch) */
    int inotify_fd;
    char path[4096];
    /* writer's cache of the tail */
    uint64_t end;
    uint8_t tail_hash[EV_HASH_LEN];
    _Atomic size_t since_trim; /* bytes read or written since the last trim */
} log_lmdb;

/* Counts bytes passed; releases the map's resident pages every
 * LMDB_TRIM_BYTES (advisory: a failure changes nothing). */
static void pass_bytes(log_lmdb *l, size_t n)
{
    if ((l->since_trim += n) < LMDB_TRIM_BYTES)
        return;
    l->since_trim = 0;
    int fd;
    if (mdb_env_get_fd(l->env, &fd) == 0)
        (void)mapmem_release(fd);
}

static void key_of(uint64_t pos, uint8_t k[8])
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(pos >> (56 - 8 * i));
}

static uint64_t pos_of(const MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    uint64_t v = 0;
    for (size_t i = 0; i < k->mv_size && i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int fail(log_lmdb *l, int code, const char *fmt, const char *what,
                int mdb_rc)
{
    snprintf(l->base.errmsg, sizeof l->base.errmsg, fmt, what,
             mdb_rc ? mdb_strerror(mdb_rc) : strerror(errno));
    return code;
}

/* Begins a read transaction, adopting a map grown by the writer. */
static int rd_begin(log_lmdb *l, MDB_txn **txn)
{
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(l->env, 0);
        rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn);
    }
    return rc;
}

static int take_writer_lock(log_lmdb *l, char *err, size_t errlen)
{
    int rc = wlock_take(l->path, "log", &l->lock_fd, err, errlen);
    return rc == WLOCK_OK ? 0 : rc == WLOCK_EBUSY ? LOG_ELOCKED : LOG_EIO;
}

static int lmdb_edge(log_lmdb *l, uint64_t *pos, uint8_t *hash, int *empty);
static void lmdb_close(log_t *base);

static int lmdb_open(const char *rest, int mode, log_t **out, char *err,
                     size_t errlen)
{
    log_lmdb *l = calloc(1, sizeof *l);
    if (!l)
        return LOG_ENOMEM;
    l->base.ops = &log_lmdb_ops;
    l->lock_fd = l->notify_fd = l->inotify_fd = -1;
    l->mode = mode;
    unsigned long long mapsize = DEFAULT_MAPSIZE;
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen == 0 || plen >= sizeof l->path) {
        snprintf(err, errlen, "log URI 'lmdb:%s' needs a directory path", rest);
        free(l);
        return LOG_EINVAL;
    }
    memcpy(l->path, rest, plen);
    if (q) {
        char *end;
        const char *num = q + 9;
        errno = 0;
        if (strncmp(q + 1, "mapsize=", 8) != 0 || *num < '0' || *num > '9' ||
            (mapsize = strtoull(num, &end, 10)) < (1u << 20) || *end ||
            errno == ERANGE || mapsize > (1ull << 46)) {
            snprintf(err, errlen,
                     "log URI 'lmdb:%s': the only option is ?mapsize=BYTES "
                     "(from 1 MiB to 64 TiB)",
                     rest);
            free(l);
            return LOG_EINVAL;
        }
    }
    int rc = LOG_ENOENT;
    if (mode == LOG_READ) {
        char dp[4200];
        snprintf(dp, sizeof dp, "%s/data.mdb", l->path);
        if (access(dp, R_OK) != 0) {
            snprintf(err, errlen, "no log at %s (%s); a writer creates it",
                     l->path, strerror(errno));
            goto fail;
        }
    }
    rc = LOG_EIO;
    if (wlock_mkdir_private(l->path) != 0) {
        snprintf(err, errlen, "cannot create log directory %s: %s", l->path,
                 strerror(errno));
        goto fail;
    }
    if (mode == LOG_WRITE && (rc = take_writer_lock(l, err, errlen)) != 0)
        goto fail;
    rc = LOG_EIO;
    char np[4200];
    snprintf(np, sizeof np, "%s/notify", l->path);
    l->notify_fd = open(np, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l->notify_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", np, strerror(errno));
        goto fail;
    }
    if (mode == LOG_READ) {
        l->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (l->inotify_fd < 0 ||
            inotify_add_watch(l->inotify_fd, np, IN_MODIFY) < 0) {
            snprintf(err, errlen, "cannot watch %s: %s", np, strerror(errno));
            goto fail;
        }
    }
    int mrc;
    if ((mrc = mdb_env_create(&l->env)) != 0 ||
        (mrc = mdb_env_set_mapsize(l->env, (size_t)mapsize)) != 0 ||
        (mrc = mdb_env_set_maxreaders(l->env, 1022)) != 0 ||
        (mrc = mdb_env_open(l->env, l->path, MDB_NOTLS, 0600)) != 0) {
        snprintf(err, errlen, "cannot open log %s: %s", l->path,
                 mdb_strerror(mrc));
        goto fail;
    }
    if (mode == LOG_WRITE) {
        int dead = 0;
        mdb_reader_check(l->env, &dead); /* readers that died holding a slot */
    }
    MDB_txn *txn;
    if ((mrc = rd_begin(l, &txn)) != 0 ||
        (mrc = mdb_dbi_open(txn, NULL, 0, &l->dbi)) != 0) {
        snprintf(err, errlen, "cannot read log %s: %s", l->path,
                 mdb_strerror(mrc));
        goto fail;
    }
    mdb_txn_abort(txn);
    if (mode == LOG_WRITE) {
        uint64_t last = 0;
        int empty;
        if ((rc = lmdb_edge(l, &last, l->tail_hash, &empty)) != 0) {
            snprintf(err, errlen, "%s", l->base.errmsg);
            goto fail;
        }
        if (empty)
            memset(l->tail_hash, 0, EV_HASH_LEN);
        l->end = empty ? 0 : last + 1;
    }
    *out = &l->base;
    return 0;
fail:
    lmdb_close(&l->base);
    return rc;
}

static void lmdb_close(log_t *base)
{
    log_lmdb *l = (log_lmdb *)base;
    if (l->env)
        mdb_env_close(l->env);
    if (l->inotify_fd >= 0)
        close(l->inotify_fd);
    if (l->notify_fd >= 0)
        close(l->notify_fd);
    if (l->lock_fd >= 0)
        close(l->lock_fd); /* releases the flock */
    free(l);
}

static int lmdb_append(log_t *base, const uint8_t *data, const size_t *lens,
                       size_t n, uint64_t *first_pos, uint64_t *last_pos)
{
    log_lmdb *l = (log_lmdb *)base;
    if (l->mode != LOG_WRITE) {
        snprintf(base->errmsg, sizeof base->errmsg, "log %s is open for reading",
                 l->path);
        return LOG_ERDONLY;
    }
    if (n == 0)
        return LOG_EINVAL;
    /* The chain: each record's prev-hash is the hash of the one before. */
    const uint8_t *prev = l->tail_hash;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rp = ev_rec_prev(data + off, lens[i]);
        if (!rp || memcmp(rp, prev, EV_HASH_LEN) != 0) {
            snprintf(base->errmsg, sizeof base->errmsg,
                     "record %zu of the batch is not chained to the record "
                     "before it",
                     i);
            return LOG_ECHAIN;
        }
        prev = ev_rec_hash(data + off, lens[i]);
        off += lens[i];
    }
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        MDB_cursor *cur;
        int mrc = mdb_txn_begin(l->env, NULL, 0, &txn);
        if (mrc)
            return fail(l, LOG_EIO, "cannot begin append to %s: %s", l->path, mrc);
        if ((mrc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
            mdb_txn_abort(txn);
            return fail(l, LOG_EIO, "cannot append to %s: %s", l->path, mrc);
        }
        off = 0;
        uint64_t pos = l->end;
        for (size_t i = 0; i < n && mrc == 0; i++) {
            uint8_t kb[8];
            key_of(pos + i, kb);
            MDB_val k = {8, kb}, v = {lens[i], (void *)(data + off)};
            mrc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
            off += lens[i];
        }
        mdb_cursor_close(cur);
        if (mrc == 0)
            mrc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (mrc == MDB_MAP_FULL && attempt == 0) {
            MDB_envinfo info;
            mdb_env_info(l->env, &info);
            if (mdb_env_set_mapsize(l->env, info.me_mapsize * 2) == 0)
                continue;
        }
        if (mrc == MDB_MAP_FULL)
            return fail(l, LOG_EFULL, "log %s is full: %s", l->path, mrc);
        if (mrc)
            return fail(l, LOG_EIO, "append to %s failed: %s", l->path, mrc);
        *first_pos = pos;
        if (last_pos)
            *last_pos = pos + n - 1;
        l->end = pos + n;
        memcpy(l->tail_hash, prev, EV_HASH_LEN);
        break;
    }
    pass_bytes(l, off);
    /* Wake readers: any write to the notify file fires their inotify. */
    uint8_t eb[8];
    key_of(l->end, eb);
    if (pwrite(l->notify_fd, eb, sizeof eb, 0) < 0) {
        /* The batch is durable; readers still see it on their next look. */
    }
    return 0;
}

static int lmdb_scan(log_t *base, uint64_t from, size_t max, log_visit_fn fn,
                     void *ud, uint64_t *next)
{
    log_lmdb *l = (log_lmdb *)base;
    MDB_txn *txn;
    MDB_cursor *cur;
    int mrc = rd_begin(l, &txn);
    if (mrc)
        return fail(l, LOG_EIO, "cannot read %s: %s", l->path, mrc);
    if ((mrc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        return fail(l, LOG_EIO, "cannot read %s: %s", l->path, mrc);
    }
    uint8_t kb[8];
    key_of(from, kb);
    MDB_val k = {8, kb}, v;
    uint64_t nx = from;
    size_t count = 0, bytes = 0;
    int rc = 0;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && (max == 0 || count < max)) {
        if (k.mv_size != 8) {
            rc = LOG_ECORRUPT;
            snprintf(base->errmsg, sizeof base->errmsg,
                     "log %s: a key of %zu bytes after position %llu", l->path,
                     k.mv_size, (unsigned long long)nx);
            break;
        }
        log_rec r = {pos_of(&k), v.mv_data, v.mv_size};
        nx = r.pos + 1;
        count++;
        bytes += v.mv_size;
        if ((rc = fn(ud, &r)) != 0)
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    pass_bytes(l, bytes);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = fail(l, LOG_EIO, "reading %s failed: %s", l->path, mrc);
    if (next)
        *next = nx;
    return rc;
}

static int lmdb_edge(log_lmdb *l, uint64_t *pos, uint8_t *hash, int *empty)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = rd_begin(l, &txn);
    if (mrc)
        return fail(l, LOG_EIO, "cannot read %s: %s", l->path, mrc);
    if ((mrc = mdb_cursor_open(txn, l->dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        return fail(l, LOG_EIO, "cannot read %s: %s", l->path, mrc);
    }
    int rc = 0;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *empty = mrc == MDB_NOTFOUND;
    if (mrc == 0) {
        *pos = pos_of(&k);
        if (hash) {
            const uint8_t *h = ev_rec_hash(v.mv_data, v.mv_size);
            if (h)
                memcpy(hash, h, EV_HASH_LEN);
            else {
                rc = LOG_ECORRUPT;
                snprintf(l->base.errmsg, sizeof l->base.errmsg,
                         "log %s: record at position %llu is too short",
                         l->path, (unsigned long long)*pos);
            }
        }
    } else if (mrc != MDB_NOTFOUND) {
        rc = fail(l, LOG_EIO, "cannot read %s: %s", l->path, mrc);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

static int lmdb_end(log_t *base, uint64_t *end)
{
    log_lmdb *l = (log_lmdb *)base;
    if (l->mode == LOG_WRITE) {
        *end = l->end;
        return 0;
    }
    uint64_t pos = 0;
    int empty;
    int rc = lmdb_edge(l, &pos, NULL, &empty);
    if (rc == 0)
        *end = empty ? 0 : pos + 1;
    return rc;
}

static int lmdb_last(log_t *base, uint64_t *pos, uint8_t hash[32])
{
    log_lmdb *l = (log_lmdb *)base;
    int empty;
    *pos = 0;
    memset(hash, 0, EV_HASH_LEN);
    return lmdb_edge(l, pos, hash, &empty);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void lmdb_drain_notify(log_t *base)
{
    log_lmdb *l = (log_lmdb *)base;
    char buf[4096];
    if (l->inotify_fd >= 0)
        while (read(l->inotify_fd, buf, sizeof buf) > 0) {
        }
}

static int lmdb_wait(log_t *base, uint64_t pos, int timeout_ms)
{
    log_lmdb *l = (log_lmdb *)base;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t end;
        int rc = lmdb_end(base, &end);
        if (rc)
            return rc;
        if (end > pos)
            return 0;
        uint64_t now = now_ms();
        if (now >= deadline)
            return LOG_ETIMEDOUT;
        if (l->inotify_fd < 0) /* the writer waits on nobody but itself */
            return LOG_ETIMEDOUT;
        /* Wake at least once a second, in case a notification was lost. */
        uint64_t left = deadline - now;
        struct pollfd p = {l->inotify_fd, POLLIN, 0};
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return fail(l, LOG_EIO, "waiting on %s: %s", l->path, 0);
        lmdb_drain_notify(base);
    }
}

static int lmdb_notify_fd(log_t *base) { return ((log_lmdb *)base)->inotify_fd; }

const log_ops log_lmdb_ops = {
    .scheme = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .append = lmdb_append,
    .scan = lmdb_scan,
    .end = lmdb_end,
    .last = lmdb_last,
    .wait = lmdb_wait,
    .notify_fd = lmdb_notify_fd,
    .drain_notify = lmdb_drain_notify,
};
