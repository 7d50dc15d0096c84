/* accounts.c - the account routes (API.md "Accounts"): register, login,
 * refresh, logout, me.
 *
 * Passwords are hashed and verified on libuv's thread pool (scrypt costs
 * hundreds of milliseconds; api/offload runs two at a time), never on the
 * loop. Registering and issuing a refresh token are commands to the writer
 * (customer.registered, token.issued); their answers wait until the cache
 * has them, so the new account can log in and refresh at once.
 *
 * A login whose stored hash is bcrypt (the old backend's) or scrypt with
 * other parameters re-hashes the password with the current setting after
 * answering: fire and forget, a job of its own and then a command
 * (customer.password_changed) tied to no request. The answer never waits
 * for it, and a failure is a warning line (never the password or a hash);
 * the next login tries again.
 *
 * Refresh tokens are 32 random bytes (base64url); only their SHA-256 is
 * stored. A refresh rotates: the new token is derived from the old one
 * with the server's key (HMAC), so that two clients refreshing the same
 * token at once, or one retrying within 30 seconds, get the same new pair
 * instead of a 401; later, the old token no longer works.
 */
#include "accounts.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "core/jlog.h"
#include "digest.h"
#include "b64.h"
#include "offload.h"
#include "orders.h"
#include "passwd.h"
#include "reply.h"
#include "validate.h"

#define REFRESH_TTL_S (30 * 24 * 3600)
#define ROTATION_GRACE_US (30 * 1000000ull)

static void new_refresh_token(char out[48])
{
    uint8_t t[32];
    RAND_bytes(t, sizeof t);
    b64_encode(B64_URL, t, 32, out, 48);
}

/* The token a refresh of `old` rotates to. */
static void rotated_token(const api_app *app, const char *old, size_t n, char out[48])
{
    uint8_t t[32];
    unsigned tn = 32;
    uint8_t msg[600];
    size_t mn = n < sizeof msg - 8 ? n : sizeof msg - 8;
    memcpy(msg, "refresh|", 8);
    memcpy(msg + 8, old, mn);
    HMAC(EVP_sha256(), app->jwt_key, 32, msg, mn + 8, t, &tn);
    b64_encode(B64_URL, t, 32, out, 48);
}

/* ------------------------------------------------------------ replies */

typedef struct session {
    api_app *app;
    int thread;
    uint64_t customer_id;
    auth_role role;
    char email[256], full_name[256];
    char refresh[48];   /* the refresh token to return */
    char replaces[65];  /* rotation: the old token's hash */
    char corr[80];
    int status;         /* 200 or 201 */
    accounts_extra x;   /* register */
} session;

static void set_cookie(api_req *r, const char *token)
{
    char c[1600];
    bool tls = r->h->scheme == &H2O_URL_SCHEME_HTTPS;
    int n = token ? snprintf(c, sizeof c, "token=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%u%s",
                             token, r->app->cfg.access_ttl_s ? r->app->cfg.access_ttl_s : 900,
                             tls ? "; Secure" : "")
                  : snprintf(c, sizeof c, "token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
                             tls ? "; Secure" : "");
    /* h2o keeps the pointer: the value must live in the request's pool. */
    h2o_iovec_t v = h2o_strdup(&r->h->pool, c, (size_t)n);
    h2o_add_header(&r->h->pool, &r->h->res.headers, H2O_TOKEN_SET_COOKIE, NULL, v.base, v.len);
}

/* {"token","refreshToken","customer":{...}} with a fresh access token. */
static void reply_session(api_req *r, const session *s)
{
    char *access = auth_access_token(r->app, s->customer_id, s->email, s->role);
    json_t *body = json_pack("{s:s?,s:s,s:{s:I,s:s,s:s}}", "token", access, "refreshToken",
                             s->refresh, "customer", "customer_id", (json_int_t)s->customer_id,
                             "email", s->email, "full_name", s->full_name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!access || !text) {
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
    } else {
        set_cookie(r, access);
        reply_json(r, s->status, text, strlen(text));
    }
    free(text);
    json_decref(body);
    free(access);
}

static void unavailable(api_req *r)
{
    reply_error(r, 503, "unavailable", "The account could not be saved; please try again", NULL);
}

/* ------------------------------------------------------------ issuing */

static void token_issued(cmd_call *c, h2o_req_t *h, void *ud)
{
    session *s = ud;
    api_req *r = api_req_wrap(h, s->app);
    const dec_out *o = cmd_out(c);
    if (cmd_err(c))
        unavailable(r);
    else if (o->reason == DEC_OK || (o->reason == DEC_EXISTS && s->replaces[0]))
        reply_session(r, s); /* EXISTS on a rotation: a concurrent refresh made it */
    else
        reply_error(r, 401, "unauthorized", "Invalid refresh token", NULL);
}

/* Issues s->refresh for s->customer_id (replacing s->replaces, if any),
 * then answers with the session. */
static void issue_refresh(h2o_req_t *h, session *s)
{
    cmd_call *c = cmd_new(h, DEC_TOKEN_ISSUE);
    if (!c) {
        unavailable(api_req_wrap(h, s->app));
        return;
    }
    dec_cmd *cmd = cmd_command(c);
    char hash[65];
    digest_sha256_hex(s->refresh, strlen(s->refresh), hash);
    cmd->correlation = cmd_keep(c, s->corr, strlen(s->corr));
    char actor[48];
    snprintf(actor, sizeof actor, "customer:%llu", (unsigned long long)s->customer_id);
    cmd->actor = cmd_keep(c, actor, strlen(actor));
    cmd->actor_customer = s->customer_id;
    cmd->u.token.customer_id = s->customer_id;
    cmd->u.token.token_hash = cmd_keep(c, hash, 64);
    cmd->u.token.expires_at = (uint64_t)time(NULL) + REFRESH_TTL_S;
    if (s->replaces[0])
        cmd->u.token.replaces = cmd_keep(c, s->replaces, 64);
    cmd_submit(s->app->bus, s->thread, c, true, token_issued, s);
}

static session *session_new(api_req *r, int status)
{
    session *s = h2o_mem_alloc_pool(&r->h->pool, sizeof *s);
    memset(s, 0, sizeof *s);
    s->app = r->app;
    s->thread = r->thread;
    s->status = status;
    snprintf(s->corr, sizeof s->corr, "%.*s", (int)r->corr.len, r->corr.base);
    return s;
}

/* ------------------------------------------------------------ register */

static void registered(cmd_call *c, h2o_req_t *h, void *ud)
{
    session *s = ud;
    const dec_out *o = cmd_out(c);
    if (cmd_err(c)) {
        unavailable(api_req_wrap(h, s->app));
        return;
    }
    if (o->reason == DEC_EMAIL_TAKEN) {
        reply_error(api_req_wrap(h, s->app), 409, "email_taken",
                    "An account with this e-mail already exists", NULL);
        return;
    }
    if (o->reason != DEC_OK) {
        reply_error(api_req_wrap(h, s->app), 400, "invalid_account",
                    o->message ? o->message : "The account is not valid", NULL);
        return;
    }
    s->customer_id = o->id;
    s->role = AUTH_USER;
    snprintf(s->email, sizeof s->email, "%s", o->email);
    new_refresh_token(s->refresh);
    issue_refresh(h, s);
}

/* The work on the pool uses only the job's data: the session is the
 * request's, gone if the client left while the hash waited or ran. */
typedef struct pw_work {
    char password[PW_MAX_PASSWORD + 1];
    size_t password_len;
    char hash[PW_HASH_MAX];
    int rc;
} pw_work;

typedef struct hash_job {
    pw_work w; /* first: hash_work's */
    session *s; /* on the loop only */
} hash_job;

/* On the pool: the job's password hashed (every job's data starts with a
 * pw_work), and the password wiped. */
static void hash_work(void *data)
{
    pw_work *w = data;
    w->rc = pw_hash(w->password, w->password_len, w->hash, sizeof w->hash);
    OPENSSL_cleanse(w->password, sizeof w->password);
}

static void hashed(h2o_req_t *h, void *data)
{
    hash_job *j = data;
    session *s = j->s;
    if (j->w.rc != 0) {
        reply_error(api_req_wrap(h, s->app), 500, "internal_error", "The password could not be hashed",
                    NULL);
        return;
    }
    cmd_call *c = cmd_new(h, DEC_CUSTOMER_REGISTER);
    if (!c) {
        unavailable(api_req_wrap(h, s->app));
        return;
    }
    dec_cmd *cmd = cmd_command(c);
    cmd->correlation = cmd_keep(c, s->corr, strlen(s->corr));
    cmd->actor = cmd_keep(c, "guest", 5);
    accounts_reg_keep(c, s->email, s->full_name, &s->x);
    cmd->u.reg.password_hash = cmd_keep(c, j->w.hash, strlen(j->w.hash));
    cmd_submit(s->app->bus, s->thread, c, true, registered, s);
}

/* Copies an optional string into x's room. */
static ev_str stash(accounts_extra *x, size_t *used, ev_str v)
{
    if (!v.p || *used + v.n + 1 > sizeof x->room)
        return (ev_str){NULL, 0};
    char *p = x->room + *used;
    memcpy(p, v.p, v.n);
    p[v.n] = 0;
    *used += v.n + 1;
    return (ev_str){p, v.n};
}

void accounts_extra_set(accounts_extra *x, ev_str phone, ev_str address, ev_str city,
                        ev_str country)
{
    size_t used = 0;
    x->phone = stash(x, &used, phone);
    x->address = stash(x, &used, address);
    x->city = stash(x, &used, city);
    x->country = stash(x, &used, country);
}

void accounts_reg_keep(cmd_call *c, const char *email, const char *full_name,
                       const accounts_extra *x)
{
    dec_cmd *cmd = cmd_command(c);
    cmd->u.reg.email = cmd_keep(c, email, strlen(email));
    cmd->u.reg.full_name = cmd_keep(c, full_name, strlen(full_name));
    cmd->u.reg.phone = cmd_keep(c, x->phone.p, x->phone.n);
    cmd->u.reg.address = cmd_keep(c, x->address.p, x->address.n);
    cmd->u.reg.city = cmd_keep(c, x->city.p, x->city.n);
    cmd->u.reg.country = cmd_keep(c, x->country.p, x->country.n);
}

/* POST /api/v1/auth/register */
void accounts_register(api_req *r)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    ev_str email = {0}, name = {0}, pw = {0}, phone = {0}, address = {0}, city = {0},
           country = {0};
    if (val_parse(r->h->entity.base, r->h->entity.len, &root, &v)) {
        val_email(&v, root, "email", VAL_REQUIRED | VAL_TRIM, &email);
        val_str(&v, root, "full_name", VAL_REQUIRED | VAL_TRIM, 2, 255, &name);
        val_str(&v, root, "password", VAL_REQUIRED, 6, PW_MAX_PASSWORD, &pw);
        val_str(&v, root, "phone", VAL_OPTIONAL | VAL_TRIM, 0, 50, &phone);
        val_str(&v, root, "address", VAL_OPTIONAL | VAL_TRIM | VAL_MULTILINE, 0, 1000, &address);
        val_str(&v, root, "city", VAL_OPTIONAL | VAL_TRIM, 0, 100, &city);
        val_str(&v, root, "country", VAL_OPTIONAL | VAL_TRIM, 0, 100, &country);
    }
    if (val_failed(&v)) {
        reply_invalid(r, &v);
        json_decref(root);
        val_free(&v);
        return;
    }
    session *s = session_new(r, 201);
    snprintf(s->email, sizeof s->email, "%.*s", (int)email.n, email.p);
    snprintf(s->full_name, sizeof s->full_name, "%.*s", (int)name.n, name.p);
    off_job *j = off_new(r->h, sizeof(hash_job));
    hash_job *hj = j ? off_data(j) : NULL;
    if (hj) {
        hj->s = s;
        memcpy(hj->w.password, pw.p, pw.n);
        hj->w.password_len = pw.n;
    }
    accounts_extra_set(&s->x, phone, address, city, country);
    json_decref(root);
    val_free(&v);
    if (!j) {
        unavailable(r);
        return;
    }
    if (off_start_limited(j, hash_work, hashed) != 0)
        unavailable(r);
}

/* ------------------------------------------------------------ login */

/* A re-hash after a login: the job's data (wiped when it is freed). */
typedef struct rehash_job {
    pw_work w; /* first: hash_work's */
    api_app *app;
    int thread;
    uint64_t customer_id;
    char corr[80];
} rehash_job;

/* A warning line: the account and why, never the password or a hash (the
 * correlation id is printable ASCII without quotes, see app.c). */
static void rehash_warn(const char *corr, uint64_t customer_id, const char *msg, const char *why)
{
    char fields[300];
    snprintf(fields, sizeof fields,
             "\"correlation_id\":\"%s\",\"customer_id\":%llu,\"reason\":\"%s\"", corr,
             (unsigned long long)customer_id, why);
    jlog(stderr, "warn", msg, fields);
}

/* The writer's answer, for a call that had a request: calls made without
 * one (this one) get no answer from api/cmd today, so a refusal or a failed
 * append is not seen here; the next login tries again. */
static void rehash_recorded(cmd_call *c, h2o_req_t *h, void *ud)
{
    (void)h;
    (void)ud;
    const dec_out *o = cmd_out(c);
    if (cmd_err(c) || o->reason != DEC_OK) {
        char fields[120];
        snprintf(fields, sizeof fields, "\"reason\":\"%s\"",
                 cmd_err(c) ? "append_failed" : dec_reason_code(o->reason));
        jlog(stderr, "warn", "a password re-hash was not recorded", fields);
    }
}

/* On the login's loop, the new hash made: customer.password_changed. */
static void rehashed(h2o_req_t *none, void *data)
{
    rehash_job *j = data;
    (void)none;
    if (j->w.rc != 0) {
        rehash_warn(j->corr, j->customer_id, "a password could not be re-hashed",
                    "hash_failed");
        return;
    }
    cmd_call *c = cmd_new(NULL, DEC_PASSWORD_SET);
    if (!c) {
        rehash_warn(j->corr, j->customer_id, "a password re-hash was not recorded",
                    "out_of_memory");
        return;
    }
    dec_cmd *cmd = cmd_command(c);
    char actor[48];
    snprintf(actor, sizeof actor, "customer:%llu", (unsigned long long)j->customer_id);
    cmd->correlation = cmd_keep(c, j->corr, strlen(j->corr));
    cmd->actor = cmd_keep(c, actor, strlen(actor));
    cmd->actor_customer = j->customer_id;
    cmd->u.password.customer_id = j->customer_id;
    cmd->u.password.password_hash = cmd_keep(c, j->w.hash, strlen(j->w.hash));
    cmd->u.password.reason = cmd_keep(c, "rehash", 6);
    cmd_submit(j->app->bus, j->thread, c, false, rehash_recorded, NULL);
}

/* Starts the re-hash of a password that just verified (fire and forget). */
static void rehash_start(const session *s, const char *password, size_t len)
{
    off_job *oj = off_new(NULL, sizeof(rehash_job));
    if (!oj) {
        rehash_warn(s->corr, s->customer_id, "a password could not be re-hashed",
                    "out_of_memory");
        return;
    }
    rehash_job *j = off_data(oj);
    j->app = s->app;
    j->thread = s->thread;
    j->customer_id = s->customer_id;
    snprintf(j->corr, sizeof j->corr, "%s", s->corr);
    memcpy(j->w.password, password, len);
    j->w.password_len = len;
    if (off_start_limited(oj, hash_work, rehashed) != 0) /* the job is gone */
        rehash_warn(s->corr, s->customer_id, "a password could not be re-hashed",
                    "not_started");
}

/* As for registering, the work uses only the job's data. */
typedef struct login_job {
    session *s;          /* on the loop only */
    const char *dummy;   /* the app's dummy hash */
    char stored[PW_HASH_MAX];
    int result;
    bool rehash; /* verified against a hash of an older kind or setting */
    char password[PW_MAX_PASSWORD + 1]; /* wiped once used (and when freed) */
    size_t password_len;
} login_job;

static void verify_work(void *data)
{
    login_job *j = data;
    /* An unknown e-mail is checked against the app's dummy hash, so that
     * it takes as long as a wrong password. */
    j->result = pw_verify(j->password, j->password_len, j->stored[0] ? j->stored : j->dummy);
    if (!j->stored[0])
        j->result = PW_MISMATCH;
    j->rehash = j->result == PW_OK && pw_needs_rehash(j->stored);
    if (!j->rehash)
        OPENSSL_cleanse(j->password, sizeof j->password);
}

static void verified(h2o_req_t *h, void *data)
{
    login_job *j = data;
    session *s = j->s;
    if (j->result != PW_OK) {
        reply_error(api_req_wrap(h, s->app), 401, "invalid_credentials", "Invalid email or password",
                    NULL);
        return;
    }
    if (j->rehash) {
        rehash_start(s, j->password, j->password_len);
        OPENSSL_cleanse(j->password, sizeof j->password);
    }
    new_refresh_token(s->refresh);
    issue_refresh(h, s);
}

/* POST /api/v1/auth/login */
void accounts_login(api_req *r)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    ev_str email = {0}, pw = {0};
    if (val_parse(r->h->entity.base, r->h->entity.len, &root, &v)) {
        val_str(&v, root, "email", VAL_REQUIRED | VAL_TRIM, 1, 255, &email);
        val_str(&v, root, "password", VAL_REQUIRED, 1, PW_MAX_PASSWORD, &pw);
    }
    if (val_failed(&v)) {
        reply_invalid(r, &v);
        json_decref(root);
        val_free(&v);
        return;
    }
    session *s = session_new(r, 200);
    off_job *j = off_new(r->h, sizeof(login_job));
    login_job *lj = j ? off_data(j) : NULL;
    if (lj) {
        lj->dummy = r->app->dummy_hash;
        memcpy(lj->password, pw.p, pw.n);
        lj->password_len = pw.n;
    }
    ev_buf buf = {0};
    proj_cache_customer acct;
    int rc = proj_cache_customer_by_email(r->app->cache, email, &buf, &acct);
    json_decref(root);
    val_free(&v);
    if (!j || (rc != 0 && rc != PROJ_CACHE_ENOTFOUND)) {
        ev_buf_free(&buf);
        off_discard(j);
        unavailable(r);
        return;
    }
    lj->s = s;
    if (rc == 0) {
        s->customer_id = acct.customer_id;
        s->role = acct.role == EV_role_ADMIN   ? AUTH_ADMIN
                  : acct.role == EV_role_AGENT ? AUTH_AGENT
                                               : AUTH_USER;
        snprintf(s->email, sizeof s->email, "%.*s", (int)acct.email.n, acct.email.p);
        snprintf(s->full_name, sizeof s->full_name, "%.*s", (int)acct.full_name.n,
                 acct.full_name.p ? acct.full_name.p : "");
        if (acct.password_hash.p && acct.password_hash.n < sizeof lj->stored)
            memcpy(lj->stored, acct.password_hash.p, acct.password_hash.n);
    }
    ev_buf_free(&buf);
    if (off_start_limited(j, verify_work, verified) != 0)
        unavailable(r);
}

/* ------------------------------------------------------------ refresh */

static bool load_token(api_app *app, const char *hash, proj_cache_token *t, ev_buf *buf)
{
    return proj_cache_get_token(app->cache, (ev_str){hash, 64}, buf, t) == 0;
}

/* POST /api/v1/auth/refresh */
void accounts_refresh(api_req *r)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    ev_str tok = {0};
    if (val_parse(r->h->entity.base, r->h->entity.len, &root, &v))
        val_str(&v, root, "refreshToken", VAL_REQUIRED, 1, 512, &tok);
    if (val_failed(&v)) {
        reply_invalid(r, &v);
        json_decref(root);
        val_free(&v);
        return;
    }
    session *s = session_new(r, 200);
    char hash[65], next[48];
    digest_sha256_hex(tok.p, tok.n, hash);
    rotated_token(r->app, tok.p, tok.n, next);
    json_decref(root);
    val_free(&v);

    ev_buf buf = {0}, cbuf = {0};
    proj_cache_token t;
    proj_cache_customer acct;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    bool ok = load_token(r->app, hash, &t, &buf) && t.expires_at > (uint64_t)time(NULL) &&
              !t.revoked;
    if (ok && t.replaced_by.p) {
        /* Rotated already: within the grace period the same new token. */
        char next_hash[65];
        digest_sha256_hex(next, strlen(next), next_hash);
        proj_cache_token nt;
        ev_buf nbuf = {0};
        ok = t.replaced_by.n == 64 && memcmp(t.replaced_by.p, next_hash, 64) == 0 &&
             load_token(r->app, next_hash, &nt, &nbuf) &&
             (now_us <= nt.issued_us || now_us - nt.issued_us <= ROTATION_GRACE_US);
        ev_buf_free(&nbuf);
    }
    if (ok)
        ok = proj_cache_get_customer(r->app->cache, t.customer_id, &cbuf, &acct) == 0;
    if (!ok) {
        ev_buf_free(&buf);
        ev_buf_free(&cbuf);
        reply_error(r, 401, "unauthorized", "Invalid or expired refresh token", NULL);
        return;
    }
    s->customer_id = acct.customer_id;
    s->role = acct.role == EV_role_ADMIN ? AUTH_ADMIN : acct.role == EV_role_AGENT ? AUTH_AGENT : AUTH_USER;
    snprintf(s->email, sizeof s->email, "%.*s", (int)acct.email.n, acct.email.p);
    snprintf(s->full_name, sizeof s->full_name, "%.*s", (int)acct.full_name.n,
             acct.full_name.p ? acct.full_name.p : "");
    memcpy(s->refresh, next, sizeof next);
    bool rotated = t.replaced_by.p != NULL;
    ev_buf_free(&buf);
    ev_buf_free(&cbuf);
    if (rotated) {
        reply_session(r, s);
        return;
    }
    memcpy(s->replaces, hash, 65);
    issue_refresh(r->h, s);
}

/* ------------------------------------------------------------ logout, me */

static void logged_out(cmd_call *c, h2o_req_t *h, void *ud)
{
    (void)c;
    api_req *r = api_req_wrap(h, ud);
    set_cookie(r, NULL);
    reply_empty(r, 204);
}

/* POST /api/v1/auth/logout */
void accounts_logout(api_req *r)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    ev_str tok = {0};
    if (r->h->entity.len && val_parse(r->h->entity.base, r->h->entity.len, &root, &v))
        val_str(&v, root, "refreshToken", VAL_OPTIONAL, 0, 512, &tok);
    char hash[65] = "";
    if (tok.p && tok.n)
        digest_sha256_hex(tok.p, tok.n, hash);
    json_decref(root);
    val_free(&v);
    cmd_call *c = hash[0] ? cmd_new(r->h, DEC_TOKEN_REVOKE) : NULL;
    if (!c) {
        set_cookie(r, NULL);
        reply_empty(r, 204);
        return;
    }
    orders_envelope(r, c, NULL);
    dec_cmd *cmd = cmd_command(c);
    cmd->u.token.token_hash = cmd_keep(c, hash, 64);
    cmd->u.token.reason = cmd_keep(c, "logout", 6);
    cmd_submit(r->app->bus, r->thread, c, true, logged_out, r->app);
}

/* GET /api/v1/auth/me */
void accounts_me(api_req *r)
{
    auth_who who;
    if (!auth_require(r, AUTH_USER, &who))
        return;
    ev_buf buf = {0};
    proj_cache_customer acct;
    const char *name = "";
    int name_len = 0;
    if (who.customer_id &&
        proj_cache_get_customer(r->app->cache, who.customer_id, &buf, &acct) == 0 &&
        acct.full_name.p) {
        name = acct.full_name.p;
        name_len = (int)acct.full_name.n;
    }
    char full[300];
    snprintf(full, sizeof full, "%.*s", name_len, name);
    json_t *body = json_pack("{s:o,s:s,s:s,s:[s]}", "customer_id",
                             who.customer_id ? json_integer((json_int_t)who.customer_id)
                                             : json_null(),
                             "email", who.email, "full_name", full, "roles",
                             auth_role_name(who.role));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text)
        reply_json(r, 200, text, strlen(text));
    else
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
    free(text);
    json_decref(body);
    ev_buf_free(&buf);
}
