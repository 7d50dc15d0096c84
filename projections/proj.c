/* proj.c - the runner that feeds a projection sink from the log, and
 * finding the position where a time starts in it. */
#include "proj.h"

#include <stdio.h>
#include <string.h>

typedef struct feed {
    proj_sink *sink;
    ev_dec *dec;
    proj_stats *st;
    uint64_t applied, skipped; /* in the batch under way */
    int failed;
    char *err;
    size_t errlen;
} feed;

static int feed_one(void *ud, const log_rec *r)
{
    feed *f = ud;
    ev_event ev;
    int rc = ev_decode(f->dec, r->data, r->len, r->pos, &ev);
    if (rc) {
        snprintf(f->err, f->errlen, "log damaged at position %llu: %s",
                 (unsigned long long)r->pos, ev_strerror(rc));
        f->failed = 1;
        return 1;
    }
    if (ev.env.type == EV_T_UNKNOWN) {
        f->skipped++;
        return 0;
    }
    if (f->sink->ops->apply(f->sink->ctx, &ev) != 0) {
        snprintf(f->err, f->errlen, "%s projection, event at position %llu: %s",
                 f->sink->ops->name, (unsigned long long)r->pos,
                 f->sink->ops->errmsg(f->sink->ctx));
        f->failed = 1;
        return 1;
    }
    f->applied++;
    return 0;
}

/* Up to the log's end as it is now; fn (may be NULL) after each batch. */
static int catch_up(log_t *log, proj_sink *sink, size_t batch, proj_progress_fn fn, void *ud,
                    proj_stats *st, char *err, size_t errlen)
{
    const proj_sink_ops *ops = sink->ops;
    uint64_t from, end;
    if (ops->next_pos(sink->ctx, &from) != 0) {
        snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
        return -1;
    }
    st->next_pos = from;
    if (log_end(log, &end) != 0) {
        snprintf(err, errlen, "%s", log_errmsg(log));
        return -1;
    }
    feed f = {sink, ev_dec_new(), st, 0, 0, 0, err, errlen};
    if (!f.dec) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    while (from < end) {
        if (ops->begin(sink->ctx, &from) != 0) {
            snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
            rc = -1;
            break;
        }
        if (from >= end) { /* someone else got there first */
            ops->abort(sink->ctx);
            st->next_pos = from;
            break;
        }
        uint64_t next = from;
        f.applied = f.skipped = 0;
        int src = log_scan(log, from, batch, feed_one, &f, &next);
        if (src != 0 || f.failed) {
            if (!f.failed)
                snprintf(err, errlen, "%s", log_errmsg(log));
            ops->abort(sink->ctx);
            rc = -1;
            break;
        }
        if (next == from) /* nothing there after all */
            break;
        if (ops->commit(sink->ctx, next) != 0) {
            snprintf(err, errlen, "%s projection: %s", ops->name, ops->errmsg(sink->ctx));
            ops->abort(sink->ctx);
            rc = -1;
            break;
        }
        st->batches++;
        st->applied += f.applied;
        st->skipped += f.skipped;
        st->next_pos = from = next;
        if (fn && fn(ud, st, end)) {
            snprintf(err, errlen, "%s projection: stopped at position %llu", ops->name,
                     (unsigned long long)from);
            rc = -1;
            break;
        }
    }
    ev_dec_free(f.dec);
    return rc;
}

int proj_catch_up(log_t *log, proj_sink *sink, size_t batch, proj_stats *st,
                  char *err, size_t errlen)
{
    return catch_up(log, sink, batch, NULL, NULL, st, err, errlen);
}

int proj_fill(log_t *log, proj_sink *sink, size_t batch, proj_progress_fn fn, void *ud,
              proj_stats *st, char *err, size_t errlen)
{
    for (;;) {
        uint64_t end;
        if (log_end(log, &end) != 0) {
            snprintf(err, errlen, "%s", log_errmsg(log));
            return -1;
        }
        if (catch_up(log, sink, batch, fn, ud, st, err, errlen) != 0)
            return -1;
        if (st->next_pos >= end)
            return 0;
    }
}

/* ------------------------------------------------------------ time */

typedef struct time_seek {
    ev_dec *dec;
    uint64_t at_us, found;
    int found_it, failed;
    char *err;
    size_t errlen;
} time_seek;

static int seek_one(void *ud, const log_rec *r)
{
    time_seek *t = ud;
    ev_event ev;
    int rc = ev_decode(t->dec, r->data, r->len, r->pos, &ev);
    if (rc) {
        snprintf(t->err, t->errlen, "log damaged at position %llu: %s",
                 (unsigned long long)r->pos, ev_strerror(rc));
        t->failed = 1;
        return 1;
    }
    if (ev.env.recorded_us < t->at_us)
        return 0;
    t->found = r->pos;
    t->found_it = 1;
    return 1;
}

int proj_pos_at_time(log_t *log, uint64_t at_us, uint64_t *pos, char *err, size_t errlen)
{
    time_seek t = {ev_dec_new(), at_us, 0, 0, 0, err, errlen};
    if (!t.dec) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t next;
    int rc = log_scan(log, 0, 0, seek_one, &t, &next);
    ev_dec_free(t.dec);
    if (t.failed)
        return -1;
    if (rc < 0) {
        snprintf(err, errlen, "%s", log_errmsg(log));
        return -1;
    }
    if (t.found_it) {
        *pos = t.found;
        return 0;
    }
    if (log_end(log, pos) != 0) {
        snprintf(err, errlen, "%s", log_errmsg(log));
        return -1;
    }
    return 0;
}
