/* audit.c - end-to-end verification of a log (see audit.h). */
#include "audit.h"

#include <string.h>

typedef struct audit_ctx {
    ev_dec *dec;
    audit_result *res;
    audit_progress_fn fn;
    void *ud;
    uint64_t every;
    int stopped;
} audit_ctx;

static int check_one(void *ud, const log_rec *r)
{
    audit_ctx *a = ud;
    audit_result *res = a->res;
    ev_event ev;
    int rc = ev_decode(a->dec, r->data, r->len, r->pos, &ev);
    if (rc == 0 && memcmp(ev.env.prev_hash, res->last_hash, 32) != 0)
        rc = EV_ECHAIN;
    if (rc) {
        res->err = rc;
        res->bad_pos = r->pos;
        return 1;
    }
    if (ev.env.type == EV_T_UNKNOWN)
        res->unknown++;
    memcpy(res->last_hash, ev.env.hash, 32);
    res->records++;
    res->next = r->pos + 1;
    if (a->fn && a->every && res->records % a->every == 0 && a->fn(a->ud, res)) {
        a->stopped = 1;
        return 1;
    }
    return 0;
}

int audit_chain(log_t *log, uint64_t from, const uint8_t prev[32],
                audit_result *res, audit_progress_fn fn, void *ud,
                uint64_t every)
{
    memset(res, 0, sizeof *res);
    memcpy(res->last_hash, prev, 32);
    res->next = from;
    audit_ctx a = {ev_dec_new(), res, fn, ud, every, 0};
    if (!a.dec)
        return res->err = LOG_ENOMEM;
    uint64_t next;
    int rc = log_scan(log, from, 0, check_one, &a, &next);
    ev_dec_free(a.dec);
    if (rc == 1)
        return a.stopped ? 0 : res->err;
    if (rc)
        return res->err = rc;
    return 0;
}
