/* fake_stripe.c - a local stand-in for Stripe's and PayPal's APIs, for the
 * payment tests: plain sockets, one connection at a time, a minimal
 * HTTP/1.1 parser (Content-Length bodies, Connection: close).
 *
 * Owns the fake providers' state (one struct in main, passed down): Stripe
 * PaymentIntents (POST /v1/payment_intents, form-encoded, Bearer sk_test_
 * checked, Idempotency-Key honoured; GET /v1/payment_intents/{id}; errors
 * as {"error":{"type","code","message"}}) and PayPal (POST
 * /v1/oauth2/token with HTTP basic; POST /v2/checkout/orders with
 * PayPal-Request-Id honoured; POST /v2/checkout/orders/{id}/capture; GET
 * /v2/checkout/orders/{id}), in their real shapes.
 *
 * Test controls:
 *   GET  /__requests     every provider request so far: [{"method","path",
 *                        "authorization","idempotency_key",
 *                        "paypal_request_id","content_type","body"}]
 *   POST /__set_status   {"id","status"[,"amount_received"]}: a Stripe
 *                        intent's status (succeeded sets amount_received to
 *                        the amount unless given), or a PayPal order's
 *                        capture outcome: COMPLETED (default), PENDING,
 *                        DECLINED, NOT_APPROVED (capture refused with 422)
 *   POST /__fail_next    {"status":N,"body":{...}}: the next provider
 *                        request gets this answer
 *
 * Usage: fake_stripe   (prints the port it listens on, then serves until
 * killed).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (1024 * 1024)

typedef struct fake {
    json_t *intents;    /* id -> intent */
    json_t *idem;       /* Idempotency-Key -> intent id */
    json_t *orders;     /* PayPal order id -> order */
    json_t *order_idem; /* PayPal-Request-Id -> order id */
    json_t *outcome;    /* PayPal order id -> capture outcome */
    json_t *tokens;     /* access token -> true */
    json_t *requests;   /* what was asked */
    json_t *fail_next;  /* {"status","body"} or NULL */
    unsigned seq;
} fake;

typedef struct http_req {
    char method[16];
    char path[1024];
    char auth[1024], idem[256], pp_rid[256], ctype[128];
    char *body;
    size_t body_len;
} http_req;

typedef struct http_resp {
    int status;
    char *body; /* malloc'd */
} http_resp;

/* ------------------------------------------------------------ HTTP */

static bool read_more(int fd, char *buf, size_t *len, size_t cap)
{
    if (*len >= cap)
        return false;
    ssize_t n = read(fd, buf + *len, cap - *len);
    if (n <= 0)
        return false;
    *len += (size_t)n;
    return true;
}

static void copy_header(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return;
    const char *v = line + k + 1;
    while (*v == ' ')
        v++;
    snprintf(out, cap, "%.*s", (int)(n - (size_t)(v - line)), v);
}

/* Reads one request; false on a broken one. */
static bool read_request(int fd, http_req *q)
{
    static char head[MAX_HEAD + 1]; /* one connection at a time */
    size_t len = 0;
    char *end = NULL;
    memset(q, 0, sizeof *q);
    while (!end) {
        if (!read_more(fd, head, &len, MAX_HEAD))
            return false;
        head[len] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    if (sscanf(head, "%15s %1023s", q->method, q->path) != 2)
        return false;
    size_t clen = 0;
    char cl[32] = "";
    for (char *l = strstr(head, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2) {
        size_t n = (size_t)(strstr(l, "\r\n") - l);
        copy_header(l, n, "content-length", cl, sizeof cl);
        copy_header(l, n, "authorization", q->auth, sizeof q->auth);
        copy_header(l, n, "idempotency-key", q->idem, sizeof q->idem);
        copy_header(l, n, "paypal-request-id", q->pp_rid, sizeof q->pp_rid);
        copy_header(l, n, "content-type", q->ctype, sizeof q->ctype);
    }
    clen = (size_t)strtoul(cl, NULL, 10);
    if (clen > MAX_BODY)
        return false;
    q->body = calloc(1, clen + 1);
    size_t have = len - (size_t)(end + 4 - head);
    if (have > clen)
        have = clen;
    memcpy(q->body, end + 4, have);
    while (have < clen) {
        ssize_t n = read(fd, q->body + have, clen - have);
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    q->body_len = clen;
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 404: return "Not Found";
    case 422: return "Unprocessable Entity";
    default: return "Error";
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static void send_response(int fd, const http_resp *r)
{
    char head[256];
    size_t n = strlen(r->body);
    int k = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     r->status, reason(r->status), n);
    write_all(fd, head, (size_t)k);
    write_all(fd, r->body, n);
}

/* Sets the response to JSON j (stolen). */
static void answer(http_resp *r, int status, json_t *j)
{
    r->status = status;
    r->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
}

static void stripe_error(http_resp *r, int status, const char *type, const char *code,
                         const char *msg)
{
    answer(r, status,
           json_pack("{s:{s:s,s:s,s:s}}", "error", "type", type, "code", code, "message", msg));
}

static void paypal_error(http_resp *r, int status, const char *name, const char *issue)
{
    answer(r, status,
           json_pack("{s:s,s:s,s:[{s:s}],s:s}", "name", name, "message", "fake PayPal error",
                     "details", "issue", issue, "debug_id", "f00dfeed"));
}

/* ------------------------------------------------------------ forms */

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            *o++ = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = 0;
    return out;
}

/* An object of the form's fields. */
static json_t *parse_form(const char *body)
{
    json_t *f = json_object();
    for (const char *p = body; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        if (eq) {
            char *k = form_decode(p, (size_t)(eq - p));
            char *v = form_decode(eq + 1, n - (size_t)(eq + 1 - p));
            json_object_set_new(f, k, json_string(v));
            free(k);
            free(v);
        }
        p += n;
        if (*p)
            p++;
    }
    return f;
}

/* ------------------------------------------------------------ Stripe */

static bool stripe_auth(const http_req *q, http_resp *r)
{
    if (!strncmp(q->auth, "Bearer sk_test_", 15))
        return true;
    stripe_error(r, 401, "invalid_request_error", "invalid_api_key",
                 "Invalid API Key provided");
    return false;
}

static void stripe_create(fake *f, const http_req *q, http_resp *r)
{
    const char *prev = q->idem[0] ? json_string_value(json_object_get(f->idem, q->idem)) : NULL;
    if (prev) {
        answer(r, 200, json_incref(json_object_get(f->intents, prev)));
        return;
    }
    json_t *form = parse_form(q->body);
    const char *amount = json_string_value(json_object_get(form, "amount"));
    const char *cur = json_string_value(json_object_get(form, "currency"));
    const char *order = json_string_value(json_object_get(form, "metadata[order_id]"));
    long long a = amount ? atoll(amount) : 0;
    if (!amount || !cur)
        stripe_error(r, 400, "invalid_request_error", "parameter_missing",
                     "Missing required param: amount or currency.");
    else if (a < 50)
        stripe_error(r, 400, "invalid_request_error", "amount_too_small",
                     "Amount must be at least $0.50 usd");
    else {
        char id[64], secret[128];
        snprintf(id, sizeof id, "pi_fake%06u", ++f->seq);
        snprintf(secret, sizeof secret, "%s_secret_fake%u", id, f->seq * 7919u);
        json_t *pi = json_pack(
            "{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:{s:s},s:{s:b},s:n}", "id", id, "object",
            "payment_intent", "client_secret", secret, "amount", (json_int_t)a, "amount_received",
            (json_int_t)0, "currency", cur, "status", "requires_payment_method", "metadata",
            "order_id", order ? order : "", "automatic_payment_methods", "enabled",
            json_is_string(json_object_get(form, "automatic_payment_methods[enabled]")),
            "last_payment_error");
        json_object_set(f->intents, id, pi);
        if (q->idem[0])
            json_object_set_new(f->idem, q->idem, json_string(id));
        answer(r, 200, pi);
    }
    json_decref(form);
}

static void stripe_get(fake *f, const char *id, http_resp *r)
{
    json_t *pi = json_object_get(f->intents, id);
    if (pi) {
        answer(r, 200, json_incref(pi));
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "No such payment_intent: '%s'", id);
    stripe_error(r, 404, "invalid_request_error", "resource_missing", msg);
}

/* ------------------------------------------------------------ PayPal */

static void paypal_token(fake *f, const http_req *q, http_resp *r)
{
    unsigned char plain[512] = {0};
    const char *b64 = q->auth + 6;
    size_t n = strlen(b64);
    if (strncmp(q->auth, "Basic ", 6) || n == 0 || n > 600 ||
        EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n) <= 0 ||
        !strchr((char *)plain, ':') || plain[0] == ':' ||
        strcmp(q->body, "grant_type=client_credentials")) {
        answer(r, 401, json_pack("{s:s,s:s}", "error", "invalid_client", "error_description",
                                 "Client Authentication failed"));
        return;
    }
    char tok[64];
    snprintf(tok, sizeof tok, "A21AAfake%u", ++f->seq);
    json_object_set_new(f->tokens, tok, json_true());
    answer(r, 200, json_pack("{s:s,s:s,s:s,s:i}", "scope", "https://uri.paypal.com/services",
                             "access_token", tok, "token_type", "Bearer", "expires_in", 32400));
}

static bool paypal_auth(fake *f, const http_req *q, http_resp *r)
{
    if (!strncmp(q->auth, "Bearer ", 7) && json_object_get(f->tokens, q->auth + 7))
        return true;
    paypal_error(r, 401, "AUTHENTICATION_FAILURE", "INVALID_TOKEN");
    return false;
}

static void paypal_create(fake *f, const http_req *q, http_resp *r)
{
    const char *prev =
        q->pp_rid[0] ? json_string_value(json_object_get(f->order_idem, q->pp_rid)) : NULL;
    if (prev) {
        answer(r, 201, json_incref(json_object_get(f->orders, prev)));
        return;
    }
    json_t *b = json_loads(q->body, 0, NULL);
    json_t *unit = json_array_get(json_object_get(b, "purchase_units"), 0);
    json_t *amount = json_object_get(unit, "amount");
    const char *intent = json_string_value(json_object_get(b, "intent"));
    if (!intent || strcmp(intent, "CAPTURE") || !json_string_value(json_object_get(amount, "value")) ||
        !json_string_value(json_object_get(amount, "currency_code"))) {
        paypal_error(r, 400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER");
        json_decref(b);
        return;
    }
    char id[32];
    snprintf(id, sizeof id, "5O190127TN%07u", ++f->seq);
    json_t *order = json_pack("{s:s,s:s,s:s,s:[{s:s,s:O,s:O}]}", "id", id, "intent", "CAPTURE",
                              "status", "CREATED", "purchase_units", "reference_id", "default",
                              "custom_id", json_object_get(unit, "custom_id") ?: json_null(),
                              "amount", amount);
    json_object_set(f->orders, id, order);
    if (q->pp_rid[0])
        json_object_set_new(f->order_idem, q->pp_rid, json_string(id));
    answer(r, 201, json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "id", id, "status", "CREATED", "links",
                             "rel", "approve", "href", "https://www.sandbox.paypal.com/x"));
    json_decref(order);
    json_decref(b);
}

static void paypal_capture(fake *f, const char *id, http_resp *r)
{
    json_t *order = json_object_get(f->orders, id);
    const char *how = json_string_value(json_object_get(f->outcome, id));
    if (!how)
        how = "COMPLETED";
    if (!order) {
        paypal_error(r, 404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID");
        return;
    }
    if (!strcmp(json_string_value(json_object_get(order, "status")), "COMPLETED")) {
        paypal_error(r, 422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED");
        return;
    }
    if (!strcmp(how, "NOT_APPROVED")) {
        paypal_error(r, 422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED");
        return;
    }
    json_t *unit = json_array_get(json_object_get(order, "purchase_units"), 0);
    char cap[32];
    snprintf(cap, sizeof cap, "3C679366HH%07u", ++f->seq);
    json_object_set_new(unit, "payments",
                        json_pack("{s:[{s:s,s:s,s:O,s:O,s:b}]}", "captures", "id", cap, "status",
                                  how, "amount", json_object_get(unit, "amount"), "custom_id",
                                  json_object_get(unit, "custom_id") ?: json_null(),
                                  "final_capture", 1));
    json_object_set_new(order, "status", json_string("COMPLETED"));
    answer(r, 201, json_incref(order));
}

static void paypal_get(fake *f, const char *id, http_resp *r)
{
    json_t *order = json_object_get(f->orders, id);
    if (order)
        answer(r, 200, json_incref(order));
    else
        paypal_error(r, 404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID");
}

/* ------------------------------------------------------------ controls */

static void set_status(fake *f, const http_req *q, http_resp *r)
{
    json_t *b = json_loads(q->body, 0, NULL);
    const char *id = json_string_value(json_object_get(b, "id"));
    const char *st = json_string_value(json_object_get(b, "status"));
    json_t *pi = id ? json_object_get(f->intents, id) : NULL;
    if (pi && st) {
        json_object_set_new(pi, "status", json_string(st));
        json_t *got = json_object_get(b, "amount_received");
        if (got)
            json_object_set(pi, "amount_received", got);
        else if (!strcmp(st, "succeeded"))
            json_object_set(pi, "amount_received", json_object_get(pi, "amount"));
        answer(r, 200, json_incref(pi));
    } else if (id && st && json_object_get(f->orders, id)) {
        json_object_set_new(f->outcome, id, json_string(st));
        answer(r, 200, json_pack("{s:b}", "ok", 1));
    } else {
        answer(r, 404, json_pack("{s:s}", "error", "unknown id"));
    }
    json_decref(b);
}

static void record(fake *f, const http_req *q)
{
    json_array_append_new(f->requests,
                          json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "method", q->method, "path",
                                    q->path, "authorization", q->auth, "idempotency_key", q->idem,
                                    "paypal_request_id", q->pp_rid, "content_type", q->ctype,
                                    "body", q->body));
}

/* ------------------------------------------------------------ routing */

static bool has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static void route_provider(fake *f, const http_req *q, http_resp *r)
{
    const char *m = q->method, *p = q->path;
    static const char pis[] = "/v1/payment_intents", ords[] = "/v2/checkout/orders/";
    if (!strcmp(m, "POST") && !strcmp(p, pis)) {
        if (stripe_auth(q, r))
            stripe_create(f, q, r);
    } else if (!strcmp(m, "GET") && has_prefix(p, "/v1/payment_intents/")) {
        if (stripe_auth(q, r))
            stripe_get(f, p + sizeof pis, r);
    } else if (!strcmp(m, "POST") && !strcmp(p, "/v1/oauth2/token")) {
        paypal_token(f, q, r);
    } else if (!strcmp(m, "POST") && !strcmp(p, "/v2/checkout/orders")) {
        if (paypal_auth(f, q, r))
            paypal_create(f, q, r);
    } else if (has_prefix(p, ords)) {
        char id[256];
        snprintf(id, sizeof id, "%s", p + sizeof ords - 1);
        char *slash = strchr(id, '/');
        bool capture = slash && !strcmp(slash, "/capture");
        if (slash)
            *slash = 0;
        if (!paypal_auth(f, q, r))
            return;
        if (!strcmp(m, "POST") && capture)
            paypal_capture(f, id, r);
        else if (!strcmp(m, "GET") && !slash)
            paypal_get(f, id, r);
        else
            paypal_error(r, 404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID");
    } else {
        stripe_error(r, 404, "invalid_request_error", "resource_missing", "Unrecognized request URL");
    }
}

static void route(fake *f, const http_req *q, http_resp *r)
{
    if (!strcmp(q->path, "/__requests")) {
        answer(r, 200, json_incref(f->requests));
    } else if (!strcmp(q->path, "/__set_status")) {
        set_status(f, q, r);
    } else if (!strcmp(q->path, "/__fail_next")) {
        json_decref(f->fail_next);
        f->fail_next = json_loads(q->body, 0, NULL);
        answer(r, 200, json_pack("{s:b}", "ok", 1));
    } else {
        record(f, q);
        if (f->fail_next) {
            json_t *fail = f->fail_next;
            f->fail_next = NULL;
            answer(r, (int)json_integer_value(json_object_get(fail, "status")),
                   json_incref(json_object_get(fail, "body")));
            json_decref(fail);
        } else {
            route_provider(f, q, r);
        }
    }
}

static void serve(fake *f, int fd)
{
    http_req q;
    http_resp r = {500, NULL};
    if (read_request(fd, &q)) {
        route(f, &q, &r);
        if (!r.body)
            r.body = strdup("{}");
        send_response(fd, &r);
    }
    free(r.body);
    free(q.body);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
        perror("fake_stripe");
        return 1;
    }
    fake f = {json_object(), json_object(), json_object(), json_object(),
              json_object(), json_object(), json_array(),  NULL,
              0};
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        serve(&f, c);
        close(c);
    }
}
