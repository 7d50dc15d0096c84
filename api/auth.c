/* auth.c - who sent a request (see auth.h). */
#include "auth.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jwt.h"
#include "reply.h"

const char *auth_role_name(auth_role role)
{
    switch (role) {
    case AUTH_ADMIN: return "admin";
    case AUTH_AGENT: return "agent";
    case AUTH_USER: return "user";
    default: return "anonymous";
    }
}

static auth_role role_of_account(int ev_role)
{
    return ev_role == EV_role_ADMIN ? AUTH_ADMIN : ev_role == EV_role_AGENT ? AUTH_AGENT : AUTH_USER;
}

static h2o_iovec_t header(h2o_req_t *h, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&h->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : h->headers.entries[i].value;
}

/* The value of cookie `name` in a Cookie header. */
static h2o_iovec_t cookie(h2o_req_t *h, const char *name)
{
    h2o_iovec_t c = header(h, "cookie");
    size_t n = strlen(name);
    const char *p = c.base, *end = c.base + c.len;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        if ((size_t)(e - p) > n && p[n] == '=' && memcmp(p, name, n) == 0)
            return h2o_iovec_init(p + n + 1, (size_t)(e - p - (ptrdiff_t)n - 1));
        p = semi ? semi + 1 : NULL;
    }
    return h2o_iovec_init(NULL, 0);
}

static bool identify(api_req *r, auth_who *who);

static bool unsafe_method(const h2o_req_t *h)
{
    return !h2o_memis(h->method.base, h->method.len, H2O_STRLIT("GET")) &&
           !h2o_memis(h->method.base, h->method.len, H2O_STRLIT("HEAD")) &&
           !h2o_memis(h->method.base, h->method.len, H2O_STRLIT("OPTIONS"));
}

static bool unauthorized(api_req *r, const char *msg)
{
    h2o_add_header(&r->h->pool, &r->h->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer"));
    reply_error(r, 401, "unauthorized", msg, NULL);
    return false;
}

/* Fills who from verified claims; false (and a 401) for an account the
 * store does not have. */
static bool who_from_claims(api_req *r, const jwt_claims *c, auth_who *who)
{
    who->present = true;
    if (c->source == JWT_SRC_OIDC) {
        who->role = AUTH_USER;
        for (size_t i = 0; i < c->n_roles; i++) {
            if (!strcmp(c->roles[i], "admin"))
                who->role = AUTH_ADMIN;
            else if (!strcmp(c->roles[i], "agent") && who->role < AUTH_AGENT)
                who->role = AUTH_AGENT;
        }
        who->customer_id = c->has_customer_id && c->customer_id > 0 ? (uint64_t)c->customer_id : 0;
        snprintf(who->email, sizeof who->email, "%s", c->email ? c->email : "");
        return true;
    }
    if (!c->has_customer_id || c->customer_id <= 0)
        return unauthorized(r, "Invalid token");
    ev_buf buf = {0};
    proj_cache_customer acct;
    int rc = proj_cache_get_customer(r->app->cache, (uint64_t)c->customer_id, &buf, &acct);
    if (rc == 0) {
        who->customer_id = acct.customer_id;
        who->role = role_of_account(acct.role);
        snprintf(who->email, sizeof who->email, "%.*s", (int)acct.email.n,
                 acct.email.p ? acct.email.p : "");
    }
    ev_buf_free(&buf);
    if (rc == PROJ_CACHE_ENOTFOUND)
        return unauthorized(r, "Invalid token");
    if (rc) {
        reply_error(r, 503, "unavailable", "Accounts cannot be read right now", NULL);
        return false;
    }
    return true;
}

bool auth_optional(api_req *r, auth_who *who)
{
    if (r->who_known) {
        *who = *r->who;
        return true;
    }
    if (!identify(r, who))
        return false;
    r->who = h2o_mem_alloc_pool(&r->h->pool, sizeof *r->who);
    *r->who = *who;
    r->who_known = true;
    return true;
}

bool auth_check_credentials(api_req *r)
{
    if (!header(r->h, "authorization").len && !cookie(r->h, "token").len)
        return true;
    auth_who who;
    return auth_optional(r, &who);
}

/* Reads and verifies the request's credential (see auth_optional). */
static bool identify(api_req *r, auth_who *who)
{
    memset(who, 0, sizeof *who);
    h2o_iovec_t a = header(r->h, "authorization");
    h2o_iovec_t token = h2o_iovec_init(NULL, 0);
    bool by_cookie = false;
    if (a.len) {
        if (a.len < 7 || strncasecmp(a.base, "Bearer ", 7) != 0)
            return unauthorized(r, "Invalid authorization header");
        token = h2o_iovec_init(a.base + 7, a.len - 7);
        while (token.len && token.base[0] == ' ') {
            token.base++;
            token.len--;
        }
    } else if ((token = cookie(r->h, "token")).len) {
        by_cookie = true;
    } else {
        return true; /* anonymous */
    }
    jwt_claims c;
    char err[256];
    int rc = jwt_verify(r->app->jwt, token.base, token.len, (int64_t)time(NULL), &c, err,
                        sizeof err);
    if (rc != JWT_OK)
        return unauthorized(r, rc == JWT_EEXPIRED ? "Token expired" : "Invalid token");
    bool ok = who_from_claims(r, &c, who);
    jwt_claims_free(&c);
    if (ok && by_cookie && unsafe_method(r->h)) {
        /* A cookie rides along with any cross-site request: only allowed
         * origins may use it to change things. */
        h2o_iovec_t origin = header(r->h, "origin");
        if (!api_origin_allowed(r->app, origin)) {
            reply_error(r, 403, "forbidden", "Cross-site request refused", NULL);
            return false;
        }
    }
    return ok;
}

bool auth_require(api_req *r, auth_role min, auth_who *who)
{
    if (!auth_optional(r, who))
        return false;
    if (!who->present)
        return unauthorized(r, "Authentication required");
    if (who->role < min) {
        reply_error(r, 403, "forbidden", "You do not have the rights for this", NULL);
        return false;
    }
    return true;
}

char *auth_access_token(api_app *app, uint64_t customer_id, const char *email, auth_role role)
{
    int64_t now = (int64_t)time(NULL);
    unsigned ttl = app->cfg.access_ttl_s ? app->cfg.access_ttl_s : 900;
    json_t *claims = json_pack("{s:I,s:s,s:[s],s:I,s:I,s:s,s:s}", "customer_id",
                               (json_int_t)customer_id, "email", email ? email : "", "roles",
                               auth_role_name(role), "iat", (json_int_t)now, "exp",
                               (json_int_t)(now + ttl), "iss", app->cfg.jwt_issuer, "aud",
                               app->cfg.jwt_audience);
    char *tok = NULL;
    if (claims && jwt_sign_hs256(app->jwt_key, sizeof app->jwt_key, claims, &tok) != 0)
        tok = NULL;
    json_decref(claims);
    return tok;
}
