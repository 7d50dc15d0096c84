/* state.c - folding events into the writer's state; snapshots; digests. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int st_init(st_state *s, const uint8_t email_key[32])
{
    memset(s, 0, sizeof *s);
    ht_init(&s->watch_ix);
    ht_init(&s->emails);
    ht_init(&s->payments);
    ht_init(&s->tokens);
    ht_init(&s->idem_ix);
    s->open_idem = -1;
    memcpy(s->email_key, email_key, 32);
    return 0;
}

void st_free(st_state *s)
{
    free(s->watches);
    free(s->orders);
    free(s->lines);
    free(s->customers);
    free(s->idem);
    ht_free(&s->watch_ix);
    ht_free(&s->emails);
    ht_free(&s->payments);
    ht_free(&s->tokens);
    ht_free(&s->idem_ix);
    memset(s, 0, sizeof *s);
    s->open_idem = -1;
}

/* Grows *arr (elements of `size` bytes, zero-filled) to hold index `need`,
 * by half again each time: the arrays hold every order, so their slack is
 * a good part of the API's memory. */
static int grow(void **arr, uint64_t *cap, uint64_t need, size_t size)
{
    if (need < *cap)
        return 0;
    uint64_t n = *cap ? *cap : 64;
    while (n <= need)
        n += n / 2;
    void *p = realloc(*arr, (size_t)(n * size));
    if (!p)
        return EV_ENOMEM;
    memset((char *)p + *cap * size, 0, (size_t)((n - *cap) * size));
    *arr = p;
    *cap = n;
    return 0;
}

void st_key_of(ev_str str, uint8_t out[16])
{
    uint8_t h[32];
    unsigned int n = 0;
    EVP_Digest(str.p ? str.p : "", str.n, h, &n, EVP_sha256(), NULL);
    memcpy(out, h, 16);
}

void st_email_key(const st_state *s, ev_str normalised, uint8_t out[16])
{
    uint8_t h[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), s->email_key, 32, (const uint8_t *)normalised.p,
         normalised.n, h, &n);
    memcpy(out, h, 16);
}

st_watch *st_watch_get(const st_state *s, const uint8_t id[16])
{
    uint64_t ix;
    return ht_get(&s->watch_ix, id, &ix) ? &s->watches[ix] : NULL;
}

const st_order *st_order_get(const st_state *s, uint64_t id)
{
    return id && id <= s->max_order_id && s->orders[id].exists ? &s->orders[id]
                                                               : NULL;
}

const st_customer *st_customer_get(const st_state *s, uint64_t id)
{
    return id && id <= s->max_customer_id && s->customers[id].exists
               ? &s->customers[id]
               : NULL;
}

bool st_email_taken(const st_state *s, ev_str normalised, uint64_t *customer_id)
{
    uint8_t k[16];
    st_email_key(s, normalised, k);
    return ht_get(&s->emails, k, customer_id);
}

const st_idem *st_idem_get(const st_state *s, ev_str key)
{
    uint8_t k[16];
    uint64_t ix;
    st_key_of(key, k);
    return ht_get(&s->idem_ix, k, &ix) ? &s->idem[ix] : NULL;
}

bool st_payment_seen(const st_state *s, ev_str provider_event_id)
{
    uint8_t k[16];
    st_key_of(provider_event_id, k);
    return ht_get(&s->payments, k, NULL);
}

bool st_token_get(const st_state *s, ev_str token_hash, uint64_t *customer_id,
                  bool *revoked)
{
    uint8_t k[16];
    uint64_t v;
    st_key_of(token_hash, k);
    if (!ht_get(&s->tokens, k, &v))
        return false;
    if (customer_id)
        *customer_id = v & ~ST_TOKEN_REVOKED;
    if (revoked)
        *revoked = (v & ST_TOKEN_REVOKED) != 0;
    return true;
}

static int put_key(ht *t, ev_str str, uint64_t val)
{
    uint8_t k[16];
    st_key_of(str, k);
    return ht_put(t, k, val) ? EV_ENOMEM : 0;
}

/* ------------------------------------------------------------------ fold */

static int apply_watch_added(st_state *s, const ev_watch_added *e)
{
    if (st_watch_get(s, e->watch_id) || e->currency.n != 3)
        return EV_ERANGE;
    uint64_t cap = s->cap_watches;
    if (grow((void **)&s->watches, &cap, s->n_watches, sizeof *s->watches))
        return EV_ENOMEM;
    s->cap_watches = (size_t)cap;
    st_watch *w = &s->watches[s->n_watches];
    memcpy(w->id, e->watch_id, 16);
    w->price = e->price;
    w->stock = e->stock_quantity;
    memcpy(w->currency, e->currency.p, 3);
    w->currency[3] = 0;
    if (ht_put(&s->watch_ix, e->watch_id, s->n_watches))
        return EV_ENOMEM;
    s->n_watches++;
    return 0;
}

static int apply_order_placed(st_state *s, const ev_order_placed *e)
{
    if (e->order_id == 0 || e->order_id >= ST_MAX_ID ||
        st_order_get(s, e->order_id) || e->currency.n != 3)
        return EV_ERANGE;
    for (uint32_t i = 0; i < e->lines.n; i++)
        if (!st_watch_get(s, e->lines.v[i].watch_id))
            return EV_ERANGE;
    if (grow((void **)&s->orders, &s->cap_orders, e->order_id, sizeof *s->orders) ||
        grow((void **)&s->lines, &s->cap_lines, s->n_lines + e->lines.n,
             sizeof *s->lines))
        return EV_ENOMEM;
    st_order *o = &s->orders[e->order_id];
    o->exists = 1;
    o->customer_id = e->customer_id;
    o->total = e->total;
    o->status = EV_order_status_PENDING;
    o->paid = 0;
    memcpy(o->currency, e->currency.p, 3);
    o->currency[3] = 0;
    o->line_off = s->n_lines;
    o->n_lines = (uint16_t)e->lines.n;
    for (uint32_t i = 0; i < e->lines.n; i++) {
        uint64_t ix = 0;
        ht_get(&s->watch_ix, e->lines.v[i].watch_id, &ix);
        s->lines[s->n_lines].watch = (uint32_t)ix;
        s->lines[s->n_lines].qty = (int32_t)e->lines.v[i].quantity;
        s->n_lines++;
    }
    if (e->order_id > s->max_order_id)
        s->max_order_id = e->order_id;
    return 0;
}

static int apply_customer_registered(st_state *s, const ev_customer_registered *e)
{
    if (e->customer_id == 0 || e->customer_id >= ST_MAX_ID ||
        st_customer_get(s, e->customer_id))
        return EV_ERANGE;
    if (grow((void **)&s->customers, &s->cap_customers, e->customer_id,
             sizeof *s->customers))
        return EV_ENOMEM;
    uint8_t k[16];
    st_email_key(s, e->email, k);
    if (ht_put(&s->emails, k, e->customer_id))
        return EV_ENOMEM;
    s->customers[e->customer_id].exists = 1;
    s->customers[e->customer_id].role = e->role;
    s->customers[e->customer_id].has_password = e->password_hash.p != NULL;
    if (e->customer_id > s->max_customer_id)
        s->max_customer_id = e->customer_id;
    return 0;
}

static st_order *order_mut(st_state *s, uint64_t id)
{
    return (st_order *)st_order_get(s, id);
}

static int apply_payload(st_state *s, const ev_event *ev)
{
    st_order *o;
    st_watch *w;
    switch (ev->env.type) {
    case EV_T_WATCH_ADDED: return apply_watch_added(s, &ev->u.watch_added);
    case EV_T_WATCH_UPDATED:
        if (!(w = st_watch_get(s, ev->u.watch_updated.watch_id)))
            return EV_ERANGE;
        if (ev->u.watch_updated.changed & EV_WF_PRICE)
            w->price = ev->u.watch_updated.price;
        return 0;
    case EV_T_STOCK_ADJUSTED:
        if (!(w = st_watch_get(s, ev->u.stock_adjusted.watch_id)))
            return EV_ERANGE;
        w->stock = ev->u.stock_adjusted.quantity;
        return 0;
    case EV_T_CUSTOMER_REGISTERED:
        return apply_customer_registered(s, &ev->u.customer_registered);
    case EV_T_CUSTOMER_ROLE_CHANGED:
        if (!st_customer_get(s, ev->u.customer_role_changed.customer_id))
            return EV_ERANGE;
        s->customers[ev->u.customer_role_changed.customer_id].role =
            ev->u.customer_role_changed.role;
        return 0;
    case EV_T_CUSTOMER_PASSWORD_CHANGED:
        if (!st_customer_get(s, ev->u.customer_password_changed.customer_id))
            return EV_ERANGE;
        s->customers[ev->u.customer_password_changed.customer_id].has_password = 1;
        return 0;
    case EV_T_ORDER_PLACED: return apply_order_placed(s, &ev->u.order_placed);
    case EV_T_ORDER_STATUS_CHANGED:
        if (!(o = order_mut(s, ev->u.order_status_changed.order_id)))
            return EV_ERANGE;
        o->status = ev->u.order_status_changed.to;
        return 0;
    case EV_T_ORDER_CANCELLED:
        if (!(o = order_mut(s, ev->u.order_cancelled.order_id)))
            return EV_ERANGE;
        o->status = EV_order_status_CANCELLED;
        return 0;
    case EV_T_PAYMENT_INTENT_CREATED:
        return st_order_get(s, ev->u.payment_intent_created.order_id) ? 0 : EV_ERANGE;
    case EV_T_PAYMENT_SUCCEEDED:
        if (!(o = order_mut(s, ev->u.payment_succeeded.order_id)))
            return EV_ERANGE;
        o->paid = 1;
        return put_key(&s->payments, ev->u.payment_succeeded.provider_event_id, 1);
    case EV_T_PAYMENT_MISMATCHED:
        return put_key(&s->payments, ev->u.payment_mismatched.provider_event_id, 1);
    case EV_T_PAYMENT_FAILED:
        return put_key(&s->payments, ev->u.payment_failed.provider_event_id, 1);
    case EV_T_TOKEN_ISSUED:
        return put_key(&s->tokens, ev->u.token_issued.token_hash,
                       ev->u.token_issued.customer_id);
    case EV_T_TOKEN_REVOKED:
        return put_key(&s->tokens, ev->u.token_revoked.token_hash,
                       ev->u.token_revoked.customer_id | ST_TOKEN_REVOKED);
    default: return 0; /* unknown: skipped */
    }
}

/* The order or customer id an event makes, for idempotent replies. */
static void result_of(const ev_event *ev, uint64_t *id, int64_t *total)
{
    switch (ev->env.type) {
    case EV_T_ORDER_PLACED:
        *id = ev->u.order_placed.order_id;
        *total = ev->u.order_placed.total;
        break;
    case EV_T_CUSTOMER_REGISTERED: *id = ev->u.customer_registered.customer_id; break;
    case EV_T_CUSTOMER_ROLE_CHANGED: *id = ev->u.customer_role_changed.customer_id; break;
    case EV_T_CUSTOMER_PASSWORD_CHANGED:
        *id = ev->u.customer_password_changed.customer_id;
        break;
    case EV_T_ORDER_STATUS_CHANGED: *id = ev->u.order_status_changed.order_id; break;
    case EV_T_ORDER_CANCELLED: *id = ev->u.order_cancelled.order_id; break;
    case EV_T_PAYMENT_INTENT_CREATED: *id = ev->u.payment_intent_created.order_id; break;
    case EV_T_PAYMENT_SUCCEEDED: *id = ev->u.payment_succeeded.order_id; break;
    case EV_T_PAYMENT_MISMATCHED: *id = ev->u.payment_mismatched.order_id; break;
    case EV_T_PAYMENT_FAILED: *id = ev->u.payment_failed.order_id; break;
    case EV_T_TOKEN_ISSUED: *id = ev->u.token_issued.customer_id; break;
    case EV_T_TOKEN_REVOKED: *id = ev->u.token_revoked.customer_id; break;
    default: break;
    }
}

static int track_idem(st_state *s, const ev_event *ev)
{
    const ev_env *env = &ev->env;
    if (env->idem_key.p) {
        uint8_t k[16];
        uint64_t ix;
        st_key_of(env->idem_key, k);
        if (!ht_get(&s->idem_ix, k, &ix)) {
            uint64_t cap = s->cap_idem;
            if (grow((void **)&s->idem, &cap, s->n_idem, sizeof *s->idem))
                return EV_ENOMEM;
            s->cap_idem = (size_t)cap;
            ix = s->n_idem++;
            if (ht_put(&s->idem_ix, k, ix))
                return EV_ENOMEM;
        }
        st_idem *r = &s->idem[ix];
        memcpy(r->key, k, 16);
        memcpy(r->fp, env->idem_fp, 16);
        r->first_pos = r->last_pos = env->pos;
        r->result_id = 0;
        r->total = 0;
        r->recorded_us = env->recorded_us;
        result_of(ev, &r->result_id, &r->total);
        s->open_idem = (int64_t)ix;
        s->open_cause_len = env->causation.n;
        if (env->causation.n)
            memcpy(s->open_cause, env->causation.p, env->causation.n);
    } else if (s->open_idem >= 0 && env->causation.n == s->open_cause_len &&
               (!env->causation.n ||
                memcmp(env->causation.p, s->open_cause, env->causation.n) == 0)) {
        st_idem *r = &s->idem[s->open_idem];
        r->last_pos = env->pos;
        if (!r->result_id)
            result_of(ev, &r->result_id, &r->total);
    } else {
        s->open_idem = -1;
    }
    return 0;
}

int st_apply(st_state *s, const ev_event *ev)
{
    int rc = apply_payload(s, ev);
    if (rc)
        return rc;
    if ((rc = track_idem(s, ev)) != 0)
        return rc;
    s->next_pos = ev->env.pos + 1;
    memcpy(s->last_hash, ev->env.hash, 32);
    return 0;
}

/* ---------------------------------------------------------------- digest */

typedef struct feed {
    EVP_MD_CTX *ctx;
} feed;

static void feed_u64(feed *f, uint64_t v) { EVP_DigestUpdate(f->ctx, &v, sizeof v); }

static uint64_t ht_sum(const ht *t)
{
    uint64_t sum = t->len, a, b, val;
    size_t it = 0;
    const uint8_t *key;
    while (ht_next(t, &it, &key, &val)) {
        memcpy(&a, key, 8);
        memcpy(&b, key + 8, 8);
        uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full) ^
                     (val * 0x165667b19e3779f9ull);
        h ^= h >> 29;
        sum += h * 0xbf58476d1ce4e5b9ull;
    }
    return sum;
}

void st_digest(const st_state *s, uint8_t out[32])
{
    feed f = {EVP_MD_CTX_new()};
    EVP_DigestInit_ex(f.ctx, EVP_sha256(), NULL);
    feed_u64(&f, s->n_watches);
    for (size_t i = 0; i < s->n_watches; i++) {
        const st_watch *w = &s->watches[i];
        EVP_DigestUpdate(f.ctx, w->id, 16);
        feed_u64(&f, (uint64_t)w->price);
        feed_u64(&f, (uint64_t)w->stock);
        EVP_DigestUpdate(f.ctx, w->currency, 3);
    }
    feed_u64(&f, s->max_order_id);
    for (uint64_t i = 1; i <= s->max_order_id; i++) {
        const st_order *o = &s->orders[i];
        feed_u64(&f, o->exists);
        feed_u64(&f, o->customer_id);
        feed_u64(&f, (uint64_t)o->total);
        feed_u64(&f, o->status);
        feed_u64(&f, o->paid);
        EVP_DigestUpdate(f.ctx, o->currency, 3);
        for (uint16_t k = 0; k < o->n_lines; k++) {
            feed_u64(&f, s->lines[o->line_off + k].watch);
            feed_u64(&f, (uint64_t)s->lines[o->line_off + k].qty);
        }
    }
    feed_u64(&f, s->max_customer_id);
    for (uint64_t i = 1; i <= s->max_customer_id; i++)
        feed_u64(&f, (uint64_t)s->customers[i].has_password << 16 |
                         (uint64_t)s->customers[i].exists << 8 | s->customers[i].role);
    feed_u64(&f, s->n_idem);
    for (size_t i = 0; i < s->n_idem; i++) {
        const st_idem *r = &s->idem[i];
        EVP_DigestUpdate(f.ctx, r->key, 16);
        EVP_DigestUpdate(f.ctx, r->fp, 16);
        feed_u64(&f, r->first_pos);
        feed_u64(&f, r->last_pos);
        feed_u64(&f, r->result_id);
        feed_u64(&f, (uint64_t)r->total);
        feed_u64(&f, r->recorded_us);
    }
    feed_u64(&f, ht_sum(&s->watch_ix));
    feed_u64(&f, ht_sum(&s->emails));
    feed_u64(&f, ht_sum(&s->payments));
    feed_u64(&f, ht_sum(&s->tokens));
    feed_u64(&f, ht_sum(&s->idem_ix));
    feed_u64(&f, s->next_pos);
    EVP_DigestUpdate(f.ctx, s->last_hash, 32);
    unsigned int n = 0;
    EVP_DigestFinal_ex(f.ctx, out, &n);
    EVP_MD_CTX_free(f.ctx);
}

/* ------------------------------------------------------------- snapshots */

/* 03: accounts know whether they have a password (an 02 snapshot is
 * ignored: the writer folds the log from the start once). */
#define SNAP_MAGIC "WSSNAP03"

typedef struct snap_head {
    char magic[8];
    uint8_t key_digest[32]; /* SHA-256 of the e-mail key, never the key */
    uint64_t next_pos;
    uint8_t last_hash[32];
    uint64_t n_watches, max_order_id, n_lines, max_customer_id, n_idem;
    uint64_t n_emails, n_payments, n_tokens;
    int64_t open_idem;
    uint32_t open_cause_len;
    char open_cause[EV_MAX_ID_STR];
} snap_head;

static void key_digest(const uint8_t key[32], uint8_t out[32])
{
    unsigned int n = 0;
    EVP_Digest(key, 32, out, &n, EVP_sha256(), NULL);
}


/* The snapshot is written as it is made, through a 64 kB buffer and a
 * running SHA-256, never copied whole: a copy would double the writer's
 * memory (the state holds every order) for the moment of the save. */
typedef struct snap_out {
    int fd;
    EVP_MD_CTX *md;
    uint8_t buf[1 << 16];
    size_t len;
    int err;
} snap_out;

static void out_flush(snap_out *o)
{
    size_t off = 0;
    while (!o->err && off < o->len) {
        ssize_t w = write(o->fd, o->buf + off, o->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            o->err = -1;
        else
            off += (size_t)w;
    }
    o->len = 0;
}

/* Appends bytes to the file; hash: whether the digest covers them. */
static void out_raw(snap_out *o, const void *p, size_t n, bool hash)
{
    if (o->err || !n)
        return;
    if (hash && EVP_DigestUpdate(o->md, p, n) != 1) {
        o->err = -1;
        return;
    }
    const uint8_t *c = p;
    while (n) {
        size_t room = sizeof o->buf - o->len, k = room < n ? room : n;
        memcpy(o->buf + o->len, c, k);
        o->len += k;
        c += k;
        n -= k;
        if (o->len == sizeof o->buf)
            out_flush(o);
    }
}

static void out_put(snap_out *o, const void *p, size_t n) { out_raw(o, p, n, true); }

static void put_ht(snap_out *o, const ht *t)
{
    size_t it = 0;
    const uint8_t *key;
    uint64_t val;
    while (ht_next(t, &it, &key, &val)) {
        out_put(o, key, 16);
        out_put(o, &val, 8);
    }
}

/* Syncs the directory holding path (after a rename into it). */
static void sync_dir_of(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int st_save(const st_state *s, const char *path)
{
    snap_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SNAP_MAGIC, 8);
    key_digest(s->email_key, h.key_digest);
    h.next_pos = s->next_pos;
    memcpy(h.last_hash, s->last_hash, 32);
    h.n_watches = s->n_watches;
    h.max_order_id = s->max_order_id;
    h.n_lines = s->n_lines;
    h.max_customer_id = s->max_customer_id;
    h.n_idem = s->n_idem;
    h.n_emails = s->emails.len;
    h.n_payments = s->payments.len;
    h.n_tokens = s->tokens.len;
    h.open_idem = s->open_idem;
    h.open_cause_len = s->open_cause_len;
    memcpy(h.open_cause, s->open_cause, s->open_cause_len);
    snap_out *o = malloc(sizeof *o);
    if (!o)
        return EV_ENOMEM;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    o->len = 0;
    o->err = 0;
    o->md = EVP_MD_CTX_new();
    o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!o->md || o->fd < 0 || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1)
        o->err = -1;
    out_put(o, &h, sizeof h);
    out_put(o, s->watches, s->n_watches * sizeof *s->watches);
    if (s->max_order_id)
        out_put(o, s->orders, (s->max_order_id + 1) * sizeof *s->orders);
    out_put(o, s->lines, s->n_lines * sizeof *s->lines);
    if (s->max_customer_id)
        out_put(o, s->customers, (s->max_customer_id + 1) * sizeof *s->customers);
    out_put(o, s->idem, s->n_idem * sizeof *s->idem);
    put_ht(o, &s->emails);
    put_ht(o, &s->payments);
    put_ht(o, &s->tokens);
    uint8_t digest[32];
    unsigned int n = 0;
    if (!o->err && EVP_DigestFinal_ex(o->md, digest, &n) != 1)
        o->err = -1;
    out_raw(o, digest, sizeof digest, false); /* the digest of all before it */
    out_flush(o);
    int rc = o->err;
    if (o->fd >= 0) {
        if (rc == 0 && fsync(o->fd) != 0)
            rc = -1;
        if (close(o->fd) != 0)
            rc = -1;
    }
    EVP_MD_CTX_free(o->md);
    free(o);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc) {
        unlink(tmp);
        return EV_EFORMAT;
    }
    sync_dir_of(path);
    return 0;
}

typedef struct rdr {
    const uint8_t *p, *end;
} rdr;

static const void *take(rdr *r, uint64_t n)
{
    if ((uint64_t)(r->end - r->p) < n)
        return NULL;
    const void *p = r->p;
    r->p += n;
    return p;
}

static int take_ht(rdr *r, ht *t, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = take(r, 24);
        uint64_t v;
        if (!e)
            return EV_EFORMAT;
        memcpy(&v, e + 16, 8);
        if (ht_put(t, e, v))
            return EV_ENOMEM;
    }
    return 0;
}

static int load_body(st_state *s, rdr *r, const snap_head *h)
{
    const void *p;
    if (h->n_watches > ST_MAX_ID || h->max_order_id >= ST_MAX_ID ||
        h->max_customer_id >= ST_MAX_ID || h->n_lines > (1ull << 40) ||
        h->n_idem > ST_MAX_ID || h->open_cause_len > EV_MAX_ID_STR ||
        h->open_idem >= (int64_t)h->n_idem || h->open_idem < -1)
        return EV_EFORMAT;
    uint64_t cap = 0;
    if (h->n_watches) {
        if (!(p = take(r, h->n_watches * sizeof *s->watches)) ||
            grow((void **)&s->watches, &cap, h->n_watches, sizeof *s->watches))
            return EV_EFORMAT;
        memcpy(s->watches, p, h->n_watches * sizeof *s->watches);
        s->cap_watches = (size_t)cap;
        s->n_watches = (size_t)h->n_watches;
        for (size_t i = 0; i < s->n_watches; i++)
            if (ht_put(&s->watch_ix, s->watches[i].id, i))
                return EV_ENOMEM;
    }
    if (h->max_order_id) {
        uint64_t n = h->max_order_id + 1;
        if (!(p = take(r, n * sizeof *s->orders)) ||
            grow((void **)&s->orders, &s->cap_orders, h->max_order_id,
                 sizeof *s->orders))
            return EV_EFORMAT;
        memcpy(s->orders, p, n * sizeof *s->orders);
        s->max_order_id = h->max_order_id;
    }
    if (h->n_lines) {
        if (!(p = take(r, h->n_lines * sizeof *s->lines)) ||
            grow((void **)&s->lines, &s->cap_lines, h->n_lines, sizeof *s->lines))
            return EV_EFORMAT;
        memcpy(s->lines, p, h->n_lines * sizeof *s->lines);
        s->n_lines = h->n_lines;
    }
    if (h->max_customer_id) {
        uint64_t n = h->max_customer_id + 1;
        if (!(p = take(r, n * sizeof *s->customers)) ||
            grow((void **)&s->customers, &s->cap_customers, h->max_customer_id,
                 sizeof *s->customers))
            return EV_EFORMAT;
        memcpy(s->customers, p, n * sizeof *s->customers);
        s->max_customer_id = h->max_customer_id;
    }
    if (h->n_idem) {
        cap = 0;
        if (!(p = take(r, h->n_idem * sizeof *s->idem)) ||
            grow((void **)&s->idem, &cap, h->n_idem, sizeof *s->idem))
            return EV_EFORMAT;
        memcpy(s->idem, p, h->n_idem * sizeof *s->idem);
        s->cap_idem = (size_t)cap;
        s->n_idem = (size_t)h->n_idem;
        for (size_t i = 0; i < s->n_idem; i++)
            if (ht_put(&s->idem_ix, s->idem[i].key, i))
                return EV_ENOMEM;
    }
    int rc;
    if ((rc = take_ht(r, &s->emails, h->n_emails)) ||
        (rc = take_ht(r, &s->payments, h->n_payments)) ||
        (rc = take_ht(r, &s->tokens, h->n_tokens)))
        return rc;
    return 0;
}

int st_load(st_state *s, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? EV_ETRUNC : EV_EFORMAT;
    ev_buf b = {0};
    int rc = EV_EFORMAT;
    for (;;) {
        if (ev_buf_reserve(&b, 1 << 20)) {
            rc = EV_ENOMEM;
            goto out;
        }
        size_t n = fread(b.p + b.len, 1, b.cap - b.len, f);
        b.len += n;
        if (n == 0)
            break;
    }
    if (ferror(f) || b.len < sizeof(snap_head) + 32)
        goto out;
    uint8_t h32[32];
    unsigned int hn = 0;
    EVP_Digest(b.p, b.len - 32, h32, &hn, EVP_sha256(), NULL);
    if (memcmp(h32, b.p + b.len - 32, 32) != 0)
        goto out;
    snap_head h;
    memcpy(&h, b.p, sizeof h);
    uint8_t kd[32];
    key_digest(s->email_key, kd);
    if (memcmp(h.magic, SNAP_MAGIC, 8) != 0 || memcmp(h.key_digest, kd, 32) != 0)
        goto out;
    uint8_t key[32];
    memcpy(key, s->email_key, 32);
    st_free(s);
    st_init(s, key);
    rdr r = {b.p + sizeof h, b.p + b.len - 32};
    if ((rc = load_body(s, &r, &h)) != 0 || r.p != r.end) {
        st_free(s);
        st_init(s, key);
        rc = rc ? rc : EV_EFORMAT;
        goto out;
    }
    s->next_pos = h.next_pos;
    memcpy(s->last_hash, h.last_hash, 32);
    s->open_idem = h.open_idem;
    s->open_cause_len = h.open_cause_len;
    memcpy(s->open_cause, h.open_cause, h.open_cause_len);
    rc = 0;
out:
    fclose(f);
    ev_buf_free(&b);
    return rc;
}
