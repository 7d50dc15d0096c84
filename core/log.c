/* log.c - opens a log by URI and dispatches to its backend. */
#include "log.h"

#include <stdio.h>
#include <string.h>

static const log_ops *const backends[] = {&log_lmdb_ops};

int log_open(const char *uri, int mode, log_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *colon = uri ? strchr(uri, ':') : NULL;
    if (!colon) {
        snprintf(err, errlen, "log URI '%s' has no scheme (try lmdb:PATH)",
                 uri ? uri : "");
        return LOG_EINVAL;
    }
    size_t n = (size_t)(colon - uri);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strlen(backends[i]->scheme) == n &&
            memcmp(backends[i]->scheme, uri, n) == 0)
            return backends[i]->open(colon + 1, mode, out, err, errlen);
    snprintf(err, errlen, "log URI '%s': unknown scheme '%.*s'", uri, (int)n,
             uri);
    return LOG_EINVAL;
}

void log_close(log_t *log)
{
    if (log)
        log->ops->close(log);
}

int log_append(log_t *log, const uint8_t *data, const size_t *lens, size_t n,
               uint64_t *first_pos, uint64_t *last_pos)
{
    return log->ops->append(log, data, lens, n, first_pos, last_pos);
}

int log_scan(log_t *log, uint64_t from, size_t max, log_visit_fn fn, void *ud,
             uint64_t *next)
{
    return log->ops->scan(log, from, max, fn, ud, next);
}

int log_end(log_t *log, uint64_t *end) { return log->ops->end(log, end); }

int log_last(log_t *log, uint64_t *pos, uint8_t hash[32])
{
    return log->ops->last(log, pos, hash);
}

int log_wait(log_t *log, uint64_t pos, int timeout_ms)
{
    return log->ops->wait(log, pos, timeout_ms);
}

int log_notify_fd(log_t *log) { return log->ops->notify_fd(log); }

void log_drain_notify(log_t *log) { log->ops->drain_notify(log); }

const char *log_errmsg(const log_t *log) { return log->errmsg; }

const char *log_strerror(int err)
{
    switch (err) {
    case LOG_OK: return "ok";
    case LOG_EINVAL: return "invalid argument";
    case LOG_EIO: return "storage error";
    case LOG_ELOCKED: return "the log has another writer";
    case LOG_ECHAIN: return "records are not chained to the log's tail";
    case LOG_EFULL: return "the log is full";
    case LOG_ERDONLY: return "the log is open for reading only";
    case LOG_ETIMEDOUT: return "timed out";
    case LOG_ENOMEM: return "out of memory";
    case LOG_ECORRUPT: return "a stored record is damaged";
    case LOG_ENOENT: return "no log there";
    default: return "unknown error";
    }
}
