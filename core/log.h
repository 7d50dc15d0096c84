/* log.h - the append-only event log: the interface every backend implements.
 *
 * Owns: opening a log by URI, atomic durable batch appends, reading from a
 * position, following the tail, the end position, the one-writer rule.
 *
 *   lmdb:PATH      embedded LMDB environment in directory PATH (default)
 *   (kafka://...   the distributed backend, behind this same interface)
 *
 * Positions only increase; they are not dense, so nothing may assume that
 * position + 1 exists. log_end() is the position after the last record (the
 * next to be written), 0 for an empty log: "applied up to P" in this project
 * always means every record with position < P.
 *
 * Records are opaque bytes to the log except for their chain: an append
 * checks that each record's prev-hash (ev_rec_prev) is the hash of the record
 * before it, so a writer with a stale idea of the tail is refused.
 *
 * A log_t may be used by several threads for reading; appends come from one
 * thread. Errors are negative LOG_E* codes; log_errmsg() has the detail.
 */
#ifndef WS_LOG_H
#define WS_LOG_H

#include <stddef.h>
#include <stdint.h>

enum {
    LOG_OK = 0,
    LOG_EINVAL = -1,   /* bad URI or argument */
    LOG_EIO = -2,      /* the storage failed */
    LOG_ELOCKED = -3,  /* another process is this log's writer */
    LOG_ECHAIN = -4,   /* records not chained to the tail */
    LOG_EFULL = -5,    /* out of space */
    LOG_ERDONLY = -6,  /* append on a log opened for reading */
    LOG_ETIMEDOUT = -7,
    LOG_ENOMEM = -8,
    LOG_ECORRUPT = -9, /* a stored record is damaged */
    LOG_ENOENT = -10,  /* no log there (readers never create one) */
};

enum { LOG_READ = 0, LOG_WRITE = 1 };

typedef struct log log_t;

/* One record as seen by a reader; the bytes are valid during the callback. */
typedef struct log_rec {
    uint64_t pos;
    const uint8_t *data;
    size_t len;
} log_rec;

/* Returns 0 to go on, anything else to stop the scan (and log_scan returns
 * it). */
typedef int (*log_visit_fn)(void *ud, const log_rec *rec);

/* Opens the log at `uri` for reading or as its one writer. On failure,
 * returns a LOG_E* code and writes a sentence into err. */
int log_open(const char *uri, int mode, log_t **out, char *err, size_t errlen);
void log_close(log_t *log);

/* Appends n records (their bytes concatenated in `data`, their lengths in
 * `lens`) in one atomic, durable step. On success *first_pos receives the
 * first record's position; the others follow in order. */
int log_append(log_t *log, const uint8_t *data, const size_t *lens, size_t n,
               uint64_t *first_pos, uint64_t *last_pos);

/* Calls fn for each record with position >= from, in order, at most max
 * records (0: no limit). *next receives the position to continue from. */
int log_scan(log_t *log, uint64_t from, size_t max, log_visit_fn fn, void *ud,
             uint64_t *next);

/* The position after the last record (0 when empty). */
int log_end(log_t *log, uint64_t *end);

/* The last record's position and hash (zero hash when empty). */
int log_last(log_t *log, uint64_t *pos, uint8_t hash[32]);

/* Blocks until log_end() > pos or timeout_ms passes (LOG_ETIMEDOUT).
 * Sleeps on a notification, never spins. timeout_ms < 0: no timeout.
 * One waiting thread per log_t: threads that wait on one handle share its
 * notifications, and one may consume another's wake-up (it then wakes by
 * the one-second fallback). Give each waiting thread its own handle. */
int log_wait(log_t *log, uint64_t pos, int timeout_ms);

/* A file descriptor that becomes readable when the log may have grown, for
 * event loops; call log_drain_notify() after it fires. -1 if none. */
int log_notify_fd(log_t *log);
void log_drain_notify(log_t *log);

/* The last error's detail, for the log_t (never NULL). */
const char *log_errmsg(const log_t *log);
const char *log_strerror(int err);

/* Backend vtable: each backend fills one (see log.c). */
typedef struct log_ops {
    const char *scheme; /* "lmdb" */
    int (*open)(const char *rest, int mode, log_t **out, char *err,
                size_t errlen);
    void (*close)(log_t *);
    int (*append)(log_t *, const uint8_t *, const size_t *, size_t,
                  uint64_t *, uint64_t *);
    int (*scan)(log_t *, uint64_t, size_t, log_visit_fn, void *, uint64_t *);
    int (*end)(log_t *, uint64_t *);
    int (*last)(log_t *, uint64_t *, uint8_t *);
    int (*wait)(log_t *, uint64_t, int);
    int (*notify_fd)(log_t *);
    void (*drain_notify)(log_t *);
} log_ops;

/* Every backend's log_t starts with this header. */
struct log {
    const log_ops *ops;
    char errmsg[256];
};

extern const log_ops log_lmdb_ops;

#endif
