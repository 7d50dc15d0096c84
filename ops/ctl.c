/* ctl.c - the operator's commands through the writer (see ctl.h). */
#define _POSIX_C_SOURCE 200809L
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/secret.h"

/* Requests per append when seeding (a request carries a whole dec_out). */
#define CTL_SEED_CHUNK 512

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

ctl_status ctl_open(ctl_store *s, const ctl_config *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->log_uri, sizeof s->log_uri, "%s", cfg->log_uri);
    wr_config wc = {0};
    wc.log_uri = cfg->log_uri;
    wc.snapshot_path = cfg->snapshot_path;
    if (secret_read_hex(cfg->email_key_file, "e-mail key", wc.email_key, 32, err, errlen) != 0)
        return CTL_ERROR;
    if (!(s->enc = ev_enc_new())) {
        snprintf(err, errlen, "out of memory");
        return CTL_ERROR;
    }
    uint8_t id[16];
    ev_new_id(s->enc, wall_us(), id);
    ev_uuid_format(id, s->corr);
    int rc = wr_open(&wc, &s->w, err, errlen);
    if (rc == 0)
        return CTL_OK;
    ev_enc_free(s->enc);
    s->enc = NULL;
    return rc == LOG_ELOCKED ? CTL_LOCKED : CTL_ERROR;
}

void ctl_close(ctl_store *s)
{
    if (s->w)
        wr_close(s->w);
    ev_enc_free(s->enc);
    s->w = NULL;
    s->enc = NULL;
}

size_t ctl_watch_count(const ctl_store *s) { return wr_state(s->w)->n_watches; }

/* A command of the system at time now_us. */
static void ctl_cmd(const ctl_store *s, wr_req *r, dec_kind kind, uint64_t now_us)
{
    memset(r, 0, sizeof *r);
    r->cmd.kind = kind;
    r->cmd.now_us = now_us;
    r->cmd.correlation = (ev_str){s->corr, 36};
    r->cmd.actor = EV_STR("system");
    r->cmd.actor_system = true;
}

/* A refusal as a sentence: "<field>: <message>". */
static void refusal_text(const dec_out *o, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s%s%s (%s)", o->field ? o->field : "", o->field ? ": " : "",
             o->message ? o->message : "refused", dec_reason_code(o->reason));
}

/* wr_process and its failure as a status. */
static ctl_status ctl_process(ctl_store *s, wr_req **reqs, size_t n, char *err, size_t errlen)
{
    int rc = wr_process(s->w, reqs, n);
    if (rc) {
        snprintf(err, errlen, "the log %s could not be appended to: %s", s->log_uri,
                 log_strerror(rc));
        return CTL_ERROR;
    }
    return CTL_OK;
}

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, 16); }

/* Fixed ids must be new: neither in the store nor twice in the file. */
static ctl_status check_ids(const ctl_store *s, const catfile *cat, char *err, size_t errlen)
{
    uint8_t(*ids)[16] = malloc((cat->n ? cat->n : 1) * 16);
    size_t k = 0;
    if (!ids) {
        snprintf(err, errlen, "out of memory");
        return CTL_ERROR;
    }
    ctl_status st = CTL_OK;
    for (size_t i = 0; i < cat->n && st == CTL_OK; i++) {
        if (!cat->has_id[i])
            continue;
        memcpy(ids[k++], cat->watches[i].watch_id, 16);
        if (st_watch_get(wr_state(s->w), cat->watches[i].watch_id))
            st = CTL_REFUSED;
    }
    qsort(ids, k, 16, id_cmp);
    for (size_t i = 1; i < k && st == CTL_OK; i++)
        if (memcmp(ids[i - 1], ids[i], 16) == 0)
            st = CTL_REFUSED;
    free(ids);
    if (st)
        snprintf(err, errlen, "a watch_id of the catalog is in the store already or given twice");
    return st;
}

/* Entries [from, from+n) of the catalog's log order: entry n-1 first. */
static ctl_status seed_chunk(ctl_store *s, const catfile *cat, size_t from, size_t n,
                             uint64_t t0, size_t *added, char *err, size_t errlen)
{
    wr_req *reqs = calloc(n, sizeof *reqs);
    wr_req **ptr = calloc(n, sizeof *ptr);
    ctl_status st = reqs && ptr ? CTL_OK : CTL_ERROR;
    if (st)
        snprintf(err, errlen, "out of memory");
    for (size_t i = 0; i < n && st == CTL_OK; i++) {
        size_t k = from + i, entry = cat->n - 1 - k;
        uint64_t t = t0 + k * 1000u; /* a millisecond apart, in log order */
        ctl_cmd(s, &reqs[i], DEC_WATCH_ADD, t);
        reqs[i].cmd.u.watch = cat->watches[entry];
        if (!cat->has_id[entry])
            ev_new_id(s->enc, t, reqs[i].cmd.u.watch.watch_id);
        ptr[i] = &reqs[i];
    }
    if (st == CTL_OK)
        st = ctl_process(s, ptr, n, err, errlen);
    for (size_t i = 0; i < n && st == CTL_OK; i++) {
        if (reqs[i].out.reason == DEC_OK) {
            (*added)++;
            continue;
        }
        char why[300];
        refusal_text(&reqs[i].out, why, sizeof why);
        snprintf(err, errlen, "watch %zu of the catalog was refused: %s", cat->n - from - i, why);
        st = CTL_REFUSED;
    }
    free(reqs);
    free(ptr);
    return st;
}

ctl_status ctl_seed(ctl_store *s, const catfile *cat, size_t *added, char *err, size_t errlen)
{
    *added = 0;
    ctl_status st = check_ids(s, cat, err, errlen);
    /* Times a millisecond apart, ending now: the catalog's first entry is
     * the newest and comes first in the catalog's default order. */
    uint64_t t0 = wall_us() - (uint64_t)cat->n * 1000u;
    for (size_t from = 0; from < cat->n && st == CTL_OK; from += CTL_SEED_CHUNK) {
        size_t n = cat->n - from < CTL_SEED_CHUNK ? cat->n - from : CTL_SEED_CHUNK;
        st = seed_chunk(s, cat, from, n, t0, added, err, errlen);
    }
    return st;
}

bool ctl_find(const ctl_store *s, const char *email, uint64_t *customer_id, uint8_t *role,
              ctl_status *st)
{
    char norm[256];
    int n = dec_normalise_email(ev_str_c(email), norm, sizeof norm);
    *st = n < 0 ? CTL_USAGE : CTL_OK;
    if (n < 0 || !st_email_taken(wr_state(s->w), (ev_str){norm, (uint32_t)n}, customer_id))
        return false;
    const st_customer *c = st_customer_get(wr_state(s->w), *customer_id);
    *role = c ? c->role : EV_role_USER;
    return c != NULL;
}

ctl_status ctl_register(ctl_store *s, const char *email, const char *full_name,
                        const char *password_hash, uint8_t role, uint64_t *customer_id,
                        char *err, size_t errlen)
{
    wr_req *r = calloc(2, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return CTL_ERROR;
    }
    uint64_t now = wall_us();
    ctl_cmd(s, &r[0], DEC_CUSTOMER_REGISTER, now);
    r[0].cmd.u.reg.email = ev_str_c(email);
    r[0].cmd.u.reg.full_name = ev_str_c(full_name);
    r[0].cmd.u.reg.password_hash = ev_str_c(password_hash);
    /* The writer decides the two in order: the account exists for the
     * second, under the next id. */
    *customer_id = wr_state(s->w)->max_customer_id + 1;
    ctl_cmd(s, &r[1], DEC_ROLE_SET, now);
    r[1].cmd.u.role.customer_id = *customer_id;
    r[1].cmd.u.role.role = role;
    wr_req *ptr[2] = {&r[0], &r[1]};
    ctl_status st = ctl_process(s, ptr, 2, err, errlen);
    if (st == CTL_OK && (r[0].out.reason != DEC_OK || r[1].out.reason != DEC_OK)) {
        refusal_text(r[0].out.reason != DEC_OK ? &r[0].out : &r[1].out, err, errlen);
        st = CTL_REFUSED;
    }
    if (st == CTL_OK && r[0].out.id != *customer_id) {
        snprintf(err, errlen, "the account got id %llu, not %llu as expected",
                 (unsigned long long)r[0].out.id, (unsigned long long)*customer_id);
        st = CTL_ERROR;
    }
    free(r);
    return st;
}

ctl_status ctl_set_role(ctl_store *s, uint64_t customer_id, uint8_t role, bool *changed,
                        char *err, size_t errlen)
{
    wr_req *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return CTL_ERROR;
    }
    ctl_cmd(s, r, DEC_ROLE_SET, wall_us());
    r->cmd.u.role.customer_id = customer_id;
    r->cmd.u.role.role = role;
    ctl_status st = ctl_process(s, &r, 1, err, errlen);
    if (st == CTL_OK && r->out.reason != DEC_OK) {
        refusal_text(&r->out, err, errlen);
        st = CTL_REFUSED;
    }
    *changed = st == CTL_OK && !r->out.noop;
    free(r);
    return st;
}
