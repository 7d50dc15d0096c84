/* payments.c - the payment routes (API.md "Payments").
 *
 * Owns what the store does with a payment provider's answers: which order
 * a payment belongs to, what is charged (always the order's stored total,
 * whatever amount the client sends: a different one is written to the log
 * line, not charged), when an order counts as paid, and the payment
 * commands (DEC_PAYMENT_INTENT, _SUCCEEDED, _FAILED) sent to the writer.
 *
 * A call to Stripe or PayPal blocks (stripe_api.h, paypal_api.h), so it
 * runs on libuv's thread pool (offload.h); its outcome comes back on the
 * request's loop, becomes a command, and the answer goes out once the
 * events are durable and in the cache (read-your-writes). The deciders make
 * payments idempotent: a provider event id (Stripe's event id, or
 * "confirm:<intent>" / "capture:<capture>") is recorded once, and a paid
 * amount that differs from the total is recorded as a mismatch, not as
 * paid. A provider without its keys answers 503. Keys, client secrets,
 * tokens and provider messages are never logged.
 */
#include "payments.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "core/jlog.h"
#include "offload.h"
#include "orders.h"
#include "paypal_api.h"
#include "reply.h"
#include "stripe_api.h"
#include "stripe_sig.h"
#include "validate.h"

#define DEFAULT_STRIPE_BASE "https://api.stripe.com"
#define DEFAULT_PAYPAL_BASE "https://api-m.sandbox.paypal.com"
#define MAX_ORDER_ID INT64_C(999999999999999)
#define MAX_REF 200 /* a provider id from a client ("confirm:" + it fits 255) */

/* ------------------------------------------------------------ helpers */

static bool set(const char *s) { return s && *s; }

static h2o_iovec_t req_header(h2o_req_t *h, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&h->headers, name, strlen(name), -1);
    return i < 0 ? h2o_iovec_init(NULL, 0) : h->headers.entries[i].value;
}

/* A positive order id written in decimal ("42"); 0 for anything else. */
static uint64_t parse_id(const char *s)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* Appends ,"name":<s as a JSON string>. */
static int add_str(ev_buf *b, const char *name, const char *s)
{
    return ev_buf_append(b, ",\"", 2) || ev_buf_append(b, name, strlen(name)) ||
           ev_buf_append(b, "\":", 2) || ev_format_json_str(ev_str_c(s), b);
}

/* {"name": value} with value a string. */
static void reply_value(api_req *r, const char *name, const char *value)
{
    ev_buf b = {0};
    if (add_str(&b, name, value) || ev_buf_append(&b, "}", 1)) {
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
    } else {
        b.p[0] = '{'; /* the leading comma */
        reply_json(r, 200, (const char *)b.p, b.len);
    }
    ev_buf_free(&b);
}

static void reply_received(api_req *r)
{
    static const char body[] = "{\"received\":true}";
    reply_json(r, 200, body, sizeof body - 1);
}

static void reply_paid(api_req *r, uint64_t order_id, int status)
{
    const char *name = ev_enum_name(EV_ENUMSET_order_status, status);
    char body[160];
    int n = snprintf(body, sizeof body, "{\"success\":true,\"order_id\":%llu,\"status\":\"%s\"}",
                     (unsigned long long)order_id, name ? name : "processing");
    reply_json(r, 200, body, (size_t)n);
}

static void reply_unavailable(api_req *r)
{
    reply_error(r, 503, "unavailable", "The payment could not be recorded; please try again",
                NULL);
}

/* 503 when a provider lacks its keys. */
static bool configured(api_req *r, bool ok, const char *what)
{
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s payments are not configured", what);
        reply_error(r, 503, "payments_not_configured", msg, NULL);
    }
    return ok;
}

/* 400 "<what> not completed" with the provider's status. */
static void reply_not_completed(api_req *r, const char *msg, const char *status)
{
    ev_buf b = {0};
    if (add_str(&b, "payment_status", status))
        reply_error(r, 400, "payment_not_completed", msg, NULL);
    else if (ev_buf_append(&b, "", 1) == 0)
        reply_error(r, 400, "payment_not_completed", msg, (const char *)b.p + 1);
    ev_buf_free(&b);
}

/* ------------------------------------------------------------ the order */

typedef struct pay_order {
    uint64_t id;
    int64_t total;        /* minor units */
    char currency[4];     /* lower case */
    int status;           /* EV_order_status_* */
    int payment;          /* PROJ_CACHE_PAY_* */
    char intent_id[256];  /* the last intent recorded, "" none */
} pay_order;

static int load_order(proj_cache_reader *cache, uint64_t id, pay_order *out)
{
    ev_buf buf = {0};
    proj_cache_order o;
    int rc = proj_cache_get_order(cache, id, &buf, &o);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->id = id;
        out->total = o.total;
        for (int i = 0; i < 3; i++)
            out->currency[i] = (char)(o.currency[i] | 0x20);
        out->status = o.status;
        out->payment = o.payment;
        if (o.payment_intent_id.p && o.payment_intent_id.n < sizeof out->intent_id)
            memcpy(out->intent_id, o.payment_intent_id.p, o.payment_intent_id.n);
    }
    ev_buf_free(&buf);
    return rc;
}

/* The order from the cache; 404 or 503 answered when false. */
static bool find_order(api_req *r, uint64_t id, pay_order *out)
{
    int rc = load_order(r->app->cache, id, out);
    if (rc == PROJ_CACHE_ENOTFOUND)
        reply_error(r, 404, "not_found", "Order not found", NULL);
    else if (rc)
        reply_error(r, 503, "unavailable", "Orders cannot be read right now", NULL);
    return rc == 0;
}

/* An order that can take a new payment: not cancelled, not paid (409). */
static bool payable(api_req *r, const pay_order *o)
{
    if (o->status == EV_order_status_CANCELLED)
        reply_error(r, 409, "order_cancelled", "The order is cancelled", NULL);
    else if (o->payment == PROJ_CACHE_PAY_SUCCEEDED)
        reply_error(r, 409, "already_paid", "The order is already paid", NULL);
    else
        return true;
    return false;
}

/* Whether the order is already paid by `ref` (a retried confirmation). */
static bool paid_by(const pay_order *o, const char *ref)
{
    return o->payment == PROJ_CACHE_PAY_SUCCEEDED && !strcmp(o->intent_id, ref);
}

/* ------------------------------------------------------------ bodies */

typedef struct pay_body {
    int64_t amount;   /* create: the client's amount (minor units) */
    int64_t order_id;
    char currency[4]; /* create: lower case, default usd */
    char ref[MAX_REF + 1]; /* confirm/capture: the provider's id */
} pay_body;

/* Reads a create body (ref_name NULL: amount, order_id, currency) or a
 * confirm body (ref_name and order_id). 400 answered when false. */
static bool read_body(api_req *r, const char *ref_name, pay_body *b)
{
    val_ctx v;
    val_init(&v);
    json_t *root = NULL;
    memset(b, 0, sizeof *b);
    memcpy(b->currency, "usd", 4);
    if (val_parse(r->h->entity.base, r->h->entity.len, &root, &v)) {
        ev_str ref;
        if (!ref_name) {
            val_money(&v, root, "amount", VAL_REQUIRED, &b->amount);
            val_currency(&v, root, "currency", VAL_OPTIONAL, b->currency);
        } else if (val_str(&v, root, ref_name, VAL_REQUIRED | VAL_TRIM, 1, MAX_REF, &ref)) {
            memcpy(b->ref, ref.p, ref.n);
        }
        val_int(&v, root, "order_id", VAL_REQUIRED, 1, MAX_ORDER_ID, &b->order_id);
    }
    bool ok = !val_failed(&v);
    if (!ok)
        reply_invalid(r, &v);
    json_decref(root);
    val_free(&v);
    return ok;
}

/* The amount charged is the stored total; a client that thought otherwise
 * is worth a log line (amounts only, no personal data). */
static void note_client_amount(api_req *r, const pay_body *b, const pay_order *o,
                               const char *provider)
{
    if (b->amount == o->total && !strcmp(b->currency, o->currency))
        return;
    char fields[320];
    snprintf(fields, sizeof fields,
             "\"correlation_id\":\"%.*s\",\"provider\":\"%s\",\"order_id\":%llu,"
             "\"client_amount\":%lld,\"client_currency\":\"%s\",\"total\":%lld,"
             "\"currency\":\"%s\"",
             (int)r->corr.len, r->corr.base, provider, (unsigned long long)o->id,
             (long long)b->amount, b->currency, (long long)o->total, o->currency);
    jlog(stderr, "info", "the client's amount differs from the order's total: the total is charged",
         fields);
}

/* ------------------------------------------------------------ recording */

typedef enum pay_answer {
    ANS_CLIENT_SECRET, /* {"clientSecret"} */
    ANS_ORDER_ID,      /* {"orderId"} */
    ANS_RECEIVED,      /* {"received":true}: a webhook */
    ANS_PAID,          /* {"success":true,"order_id","status"} */
} pay_answer;

/* A payment command and how to answer it; in the request's pool. */
typedef struct pay_rec {
    api_req *r;
    pay_answer answer;
    dec_kind kind;
    const char *provider; /* "stripe", "paypal" */
    const char *actor;    /* NULL: the request's sender */
    uint64_t order_id;
    int64_t amount;
    char currency[4];
    char intent_id[256];
    char event_id[300];
    char reason[504];
    char value[512];      /* the answer's clientSecret or orderId */
} pay_rec;

static pay_rec *rec_new(api_req *r, pay_answer answer, dec_kind kind, const char *provider,
                        uint64_t order_id)
{
    pay_rec *p = h2o_mem_alloc_pool(&r->h->pool, sizeof *p);
    memset(p, 0, sizeof *p);
    p->r = r;
    p->answer = answer;
    p->kind = kind;
    p->provider = provider;
    p->order_id = order_id;
    return p;
}

static ev_str keep_opt(cmd_call *c, const char *s)
{
    return *s ? cmd_keep(c, s, strlen(s)) : (ev_str){NULL, 0};
}

static void log_refusal(const pay_rec *p, const dec_out *o)
{
    char fields[600];
    snprintf(fields, sizeof fields,
             "\"correlation_id\":\"%.*s\",\"provider\":\"%s\",\"order_id\":%llu,"
             "\"reason\":\"%s\",\"field\":\"%s\"",
             (int)p->r->corr.len, p->r->corr.base, p->provider,
             (unsigned long long)p->order_id, dec_reason_code(o->reason),
             o->field ? o->field : "");
    jlog(stderr, "warn", "a payment event was not recorded", fields);
}

static void refused(const pay_rec *p, const dec_out *o)
{
    api_req *r = p->r;
    log_refusal(p, o);
    if (p->answer == ANS_RECEIVED) {
        reply_received(r); /* Stripe's retries would not change it */
        return;
    }
    switch (o->reason) {
    case DEC_NOT_FOUND: reply_error(r, 404, "not_found", "Order not found", NULL); return;
    case DEC_BAD_TRANSITION:
        reply_error(r, 409, "order_cancelled", "The order is cancelled", NULL);
        return;
    case DEC_IDEM_MISMATCH:
        reply_error(r, 422, "idempotency_key_reused",
                    "This Idempotency-Key was used for another request", NULL);
        return;
    default:
        reply_error(r, 502, "payment_provider_error",
                    "The payment provider's answer cannot be recorded", NULL);
    }
}

/* A payment the provider reported as completed: paid, or recorded as a
 * mismatch (the amount or currency differs from the order's). */
static void answer_paid(const pay_rec *p, const dec_out *o)
{
    bool mismatched;
    pay_order cur;
    if (o->noop || o->repeat)
        mismatched = load_order(p->r->app->cache, p->order_id, &cur) == 0 &&
                     cur.payment == PROJ_CACHE_PAY_MISMATCHED;
    else
        mismatched = o->n_ev && o->ev[0].env.type == EV_T_PAYMENT_MISMATCHED;
    if (mismatched)
        reply_error(p->r, 409, "payment_mismatch",
                    "The amount paid does not match the order's total; the order is not paid",
                    NULL);
    else
        reply_paid(p->r, p->order_id, o->status);
}

static void recorded(cmd_call *c, h2o_req_t *h, void *ud)
{
    pay_rec *p = ud;
    const dec_out *o = cmd_out(c);
    (void)h;
    if (cmd_err(c))
        reply_unavailable(p->r); /* a webhook: Stripe retries */
    else if (o->reason != DEC_OK)
        refused(p, o);
    else if (p->answer == ANS_CLIENT_SECRET)
        reply_value(p->r, "clientSecret", p->value);
    else if (p->answer == ANS_ORDER_ID)
        reply_value(p->r, "orderId", p->value);
    else if (p->answer == ANS_RECEIVED)
        reply_received(p->r);
    else
        answer_paid(p, o);
}

/* Sends p's command to the writer; the answer follows in `recorded`. */
static void record(pay_rec *p)
{
    api_req *r = p->r;
    cmd_call *c = cmd_new(r->h, p->kind);
    if (!c) {
        reply_unavailable(r);
        return;
    }
    auth_who who;
    bool known = auth_optional(r, &who); /* checked before the handler: no reply here */
    orders_envelope(r, c, known ? &who : NULL);
    dec_cmd *cmd = cmd_command(c);
    if (p->actor)
        cmd->actor = cmd_keep(c, p->actor, strlen(p->actor));
    cmd->u.pay.order_id = p->order_id;
    cmd->u.pay.provider = cmd_keep(c, p->provider, strlen(p->provider));
    cmd->u.pay.intent_id = keep_opt(c, p->intent_id);
    cmd->u.pay.provider_event_id = keep_opt(c, p->event_id);
    cmd->u.pay.amount = p->amount;
    cmd->u.pay.currency = keep_opt(c, p->currency);
    cmd->u.pay.reason = keep_opt(c, p->reason);
    cmd_submit(r->app->bus, r->thread, c, true, recorded, p);
}

/* ------------------------------------------------------------ provider calls */

typedef enum pay_op { OP_STRIPE_CREATE, OP_STRIPE_GET, OP_PAYPAL_CREATE, OP_PAYPAL_CAPTURE } pay_op;

/* A provider call on the thread pool: inputs copied in, outputs filled by
 * the pool thread, read back on the loop. */
typedef struct pay_job {
    api_req *r; /* the loop's: never touched on the pool */
    pay_op op;
    pay_order order;
    char ref[MAX_REF + 1];
    stripe_api stripe; /* strings: the app's configuration */
    paypal_api paypal;
    hout_outcome outcome;
    hout_error err;
    stripe_api_intent intent;
    paypal_api_order pp;
} pay_job;

static const char *op_name(pay_op op)
{
    switch (op) {
    case OP_STRIPE_CREATE: return "stripe.create_intent";
    case OP_STRIPE_GET: return "stripe.get_intent";
    case OP_PAYPAL_CREATE: return "paypal.create_order";
    default: return "paypal.capture";
    }
}

static const char *outcome_name(hout_outcome o)
{
    switch (o) {
    case HOUT_OK: return "ok";
    case HOUT_UNREACHABLE: return "unreachable";
    case HOUT_REFUSED: return "refused";
    case HOUT_NOT_FOUND: return "not_found";
    default: return "bad_answer";
    }
}

static void log_failure(const pay_job *j)
{
    ev_buf b = {0};
    char head[256];
    int n = snprintf(head, sizeof head,
                     "\"correlation_id\":\"%.*s\",\"call\":\"%s\",\"order_id\":%llu,"
                     "\"outcome\":\"%s\",\"http_status\":%ld",
                     (int)j->r->corr.len, j->r->corr.base, op_name(j->op),
                     (unsigned long long)j->order.id, outcome_name(j->outcome), j->err.status);
    if (!ev_buf_append(&b, head, (size_t)n) && !add_str(&b, "error_type", j->err.type) &&
        !add_str(&b, "error_code", j->err.code) && !add_str(&b, "why", j->err.why) &&
        !ev_buf_append(&b, "", 1))
        jlog(stderr, "warn", "a payment provider call failed", (const char *)b.p);
    ev_buf_free(&b);
}

/* Answers a failed call: 404 `not_found` when the route has one for an
 * unknown object, else 502. */
static void provider_failed(const pay_job *j, const char *not_found)
{
    api_req *r = j->r;
    log_failure(j);
    if (j->outcome == HOUT_NOT_FOUND && not_found) {
        reply_error(r, 404, "not_found", not_found, NULL);
        return;
    }
    const char *provider = j->op <= OP_STRIPE_GET ? "stripe" : "paypal";
    ev_buf b = {0};
    int rc = add_str(&b, "provider", provider) ||
             (j->err.code[0] && add_str(&b, "provider_code", j->err.code)) ||
             ev_buf_append(&b, "", 1);
    const char *extra = rc ? NULL : (const char *)b.p + 1;
    if (j->outcome == HOUT_UNREACHABLE)
        reply_error(r, 502, "payment_provider_unreachable",
                    "The payment provider could not be reached; please try again", extra);
    else
        reply_error(r, 502, "payment_provider_error", "The payment provider refused the request",
                    extra);
    ev_buf_free(&b);
}

static void job_work(void *data)
{
    pay_job *j = data;
    const pay_order *o = &j->order;
    switch (j->op) {
    case OP_STRIPE_CREATE:
        j->outcome = stripe_api_create_intent(&j->stripe, o->id, o->total, o->currency,
                                              &j->intent, &j->err);
        if (j->outcome == HOUT_OK && !j->intent.client_secret[0])
            j->outcome = HOUT_BAD_ANSWER;
        break;
    case OP_STRIPE_GET:
        j->outcome = stripe_api_get_intent(&j->stripe, j->ref, &j->intent, &j->err);
        break;
    case OP_PAYPAL_CREATE:
        j->outcome = paypal_api_create_order(&j->paypal, o->id, o->total, o->currency, &j->pp,
                                             &j->err);
        break;
    case OP_PAYPAL_CAPTURE:
        j->outcome = paypal_api_capture(&j->paypal, j->ref, &j->pp, &j->err);
        break;
    }
}

static void stripe_created(pay_job *j);
static void stripe_fetched(pay_job *j);
static void paypal_created(pay_job *j);
static void paypal_captured(pay_job *j);

static void job_done(h2o_req_t *h, void *data)
{
    pay_job *j = data;
    (void)h;
    switch (j->op) {
    case OP_STRIPE_CREATE: stripe_created(j); break;
    case OP_STRIPE_GET: stripe_fetched(j); break;
    case OP_PAYPAL_CREATE: paypal_created(j); break;
    case OP_PAYPAL_CAPTURE: paypal_captured(j); break;
    }
}

/* Starts a provider call for the request; the route's follow-up runs on
 * its loop when the call is done. */
static void start_job(api_req *r, pay_op op, const pay_order *o, const char *ref)
{
    off_job *oj = off_new(r->h, sizeof(pay_job));
    if (!oj) {
        reply_unavailable(r);
        return;
    }
    const api_config *c = &r->app->cfg;
    pay_job *j = off_data(oj);
    j->r = r;
    j->op = op;
    j->order = *o;
    snprintf(j->ref, sizeof j->ref, "%s", ref ? ref : "");
    j->stripe.base = set(c->stripe_api_base) ? c->stripe_api_base : DEFAULT_STRIPE_BASE;
    j->stripe.secret_key = c->stripe_secret_key;
    j->paypal.base = set(c->paypal_api_base) ? c->paypal_api_base : DEFAULT_PAYPAL_BASE;
    j->paypal.client_id = c->paypal_client_id;
    j->paypal.client_secret = c->paypal_client_secret;
    if (off_start(oj, job_work, job_done) != 0)
        reply_unavailable(r);
}

/* ------------------------------------------------------------ Stripe */

static bool stripe_ready(api_req *r)
{
    return configured(r, set(r->app->cfg.stripe_secret_key), "Stripe");
}

void pay_stripe_create_intent(api_req *r)
{
    pay_body b;
    pay_order o;
    if (!stripe_ready(r) || !read_body(r, NULL, &b) || !find_order(r, (uint64_t)b.order_id, &o) ||
        !payable(r, &o))
        return;
    note_client_amount(r, &b, &o, "stripe");
    start_job(r, OP_STRIPE_CREATE, &o, NULL);
}

static void stripe_created(pay_job *j)
{
    if (j->outcome != HOUT_OK) {
        provider_failed(j, NULL);
        return;
    }
    if (!strcmp(j->order.intent_id, j->intent.id)) {
        /* Stripe gave back the intent already recorded (same key). */
        reply_value(j->r, "clientSecret", j->intent.client_secret);
        return;
    }
    pay_rec *p = rec_new(j->r, ANS_CLIENT_SECRET, DEC_PAYMENT_INTENT, "stripe", j->order.id);
    snprintf(p->intent_id, sizeof p->intent_id, "%s", j->intent.id);
    snprintf(p->value, sizeof p->value, "%s", j->intent.client_secret);
    record(p);
}

/* The Stripe-Signature header against the raw body; 400 answered when
 * false. */
static bool signature_ok(api_req *r)
{
    const api_config *c = &r->app->cfg;
    h2o_iovec_t sig = req_header(r->h, "stripe-signature");
    stripe_sig_result s =
        sig.len ? stripe_sig_verify(sig.base, sig.len, r->h->entity.base, r->h->entity.len,
                                    c->stripe_webhook_secret, (int64_t)time(NULL),
                                    c->stripe_webhook_tolerance_s)
                : STRIPE_SIG_MALFORMED;
    if (s == STRIPE_SIG_OK)
        return true;
    char fields[200];
    snprintf(fields, sizeof fields, "\"correlation_id\":\"%.*s\",\"why\":\"%s\"",
             (int)r->corr.len, r->corr.base, sig.len ? stripe_sig_strerror(s) : "no header");
    jlog(stderr, "warn", "a Stripe webhook was refused", fields);
    if (s == STRIPE_SIG_ERROR)
        reply_error(r, 500, "internal_error", "The signature cannot be checked", NULL);
    else if (s == STRIPE_SIG_TOO_OLD || s == STRIPE_SIG_TOO_NEW)
        reply_error(r, 400, "signature_expired",
                    "The signature's timestamp is outside the tolerance", NULL);
    else
        reply_error(r, 400, "invalid_signature",
                    sig.len ? "Invalid Stripe signature" : "Missing Stripe-Signature header",
                    NULL);
    return false;
}

static void log_unusable_event(api_req *r, const char *id, const char *type)
{
    ev_buf b = {0};
    char head[128];
    int n = snprintf(head, sizeof head, "\"correlation_id\":\"%.*s\"", (int)r->corr.len,
                     r->corr.base);
    if (!ev_buf_append(&b, head, (size_t)n) && !add_str(&b, "event_id", id) &&
        !add_str(&b, "type", type) && !ev_buf_append(&b, "", 1))
        jlog(stderr, "warn", "a Stripe event names no intent or order: acknowledged, ignored",
             (const char *)b.p);
    ev_buf_free(&b);
}

/* A verified event: the payment events are recorded, others ignored. */
static void webhook_event(api_req *r, json_t *ev)
{
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!id || !*id || strlen(id) > 255 || !type) {
        reply_error(r, 400, "invalid_event", "Not a Stripe event", NULL);
        return;
    }
    bool ok = !strcmp(type, "payment_intent.succeeded");
    if (!ok && strcmp(type, "payment_intent.payment_failed")) {
        reply_received(r); /* a type the store does not act on */
        return;
    }
    stripe_api_intent in;
    json_t *obj = json_object_get(json_object_get(ev, "data"), "object");
    uint64_t order_id = stripe_api_read_intent(obj, &in) ? parse_id(in.order_id) : 0;
    if (!order_id) {
        log_unusable_event(r, id, type);
        reply_received(r);
        return;
    }
    pay_rec *p = rec_new(r, ANS_RECEIVED, ok ? DEC_PAYMENT_SUCCEEDED : DEC_PAYMENT_FAILED,
                         "stripe", order_id);
    p->actor = "stripe";
    snprintf(p->intent_id, sizeof p->intent_id, "%s", in.id);
    snprintf(p->event_id, sizeof p->event_id, "%s", id);
    p->amount = in.amount_received >= 0 ? in.amount_received : in.amount;
    memcpy(p->currency, in.currency, sizeof p->currency);
    if (!ok)
        memcpy(p->reason, in.failure, sizeof p->reason);
    record(p);
}

void pay_stripe_webhook(api_req *r)
{
    if (!configured(r, set(r->app->cfg.stripe_webhook_secret), "Stripe webhook") ||
        !signature_ok(r))
        return;
    json_t *ev = json_loadb(r->h->entity.base ? r->h->entity.base : "", r->h->entity.len, 0,
                            NULL);
    if (!json_is_object(ev))
        reply_error(r, 400, "invalid_json", "The event is not a JSON object", NULL);
    else
        webhook_event(r, ev);
    json_decref(ev);
}

/* What confirming a payment with one provider needs: confirm-order and
 * capture-order are the same steps with other names. */
typedef struct confirm_kind {
    bool (*ready)(api_req *r);
    const char *ref_name;                     /* the body's provider id */
    bool (*id_ok)(const char *id, size_t n);  /* its form */
    const char *not_found;
    pay_op op;
} confirm_kind;

/* Reads {ref, order_id}; answers at once when the order is paid by that
 * reference already, else asks the provider. */
static void confirm_payment(api_req *r, const confirm_kind *k)
{
    pay_body b;
    pay_order o;
    if (!k->ready(r) || !read_body(r, k->ref_name, &b))
        return;
    if (!k->id_ok(b.ref, strlen(b.ref))) {
        reply_error(r, 404, "not_found", k->not_found, NULL);
        return;
    }
    if (!find_order(r, (uint64_t)b.order_id, &o))
        return;
    if (paid_by(&o, b.ref))
        reply_paid(r, o.id, o.status);
    else
        start_job(r, k->op, &o, b.ref);
}

void pay_stripe_confirm(api_req *r)
{
    static const confirm_kind k = {stripe_ready, "payment_intent_id", stripe_api_id_ok,
                                   "Payment intent not found", OP_STRIPE_GET};
    confirm_payment(r, &k);
}

static void stripe_fetched(pay_job *j)
{
    if (j->outcome != HOUT_OK) {
        provider_failed(j, "Payment intent not found");
        return;
    }
    if (parse_id(j->intent.order_id) != j->order.id) {
        reply_error(j->r, 404, "not_found", "Payment intent not found for this order", NULL);
        return;
    }
    if (strcmp(j->intent.status, "succeeded")) {
        reply_not_completed(j->r, "Payment not completed", j->intent.status);
        return;
    }
    pay_rec *p = rec_new(j->r, ANS_PAID, DEC_PAYMENT_SUCCEEDED, "stripe", j->order.id);
    snprintf(p->intent_id, sizeof p->intent_id, "%s", j->intent.id);
    snprintf(p->event_id, sizeof p->event_id, "confirm:%s", j->intent.id);
    p->amount = j->intent.amount_received >= 0 ? j->intent.amount_received : j->intent.amount;
    memcpy(p->currency, j->intent.currency, sizeof p->currency);
    record(p);
}

/* ------------------------------------------------------------ PayPal */

static bool paypal_ready(api_req *r)
{
    const api_config *c = &r->app->cfg;
    return configured(r, set(c->paypal_client_id) && set(c->paypal_client_secret), "PayPal");
}

void pay_paypal_create(api_req *r)
{
    pay_body b;
    pay_order o;
    if (!paypal_ready(r) || !read_body(r, NULL, &b) || !find_order(r, (uint64_t)b.order_id, &o) ||
        !payable(r, &o))
        return;
    note_client_amount(r, &b, &o, "paypal");
    start_job(r, OP_PAYPAL_CREATE, &o, NULL);
}

static void paypal_created(pay_job *j)
{
    if (j->outcome != HOUT_OK) {
        provider_failed(j, NULL);
        return;
    }
    if (!strcmp(j->order.intent_id, j->pp.id)) {
        reply_value(j->r, "orderId", j->pp.id); /* PayPal's answer to a retry */
        return;
    }
    pay_rec *p = rec_new(j->r, ANS_ORDER_ID, DEC_PAYMENT_INTENT, "paypal", j->order.id);
    snprintf(p->intent_id, sizeof p->intent_id, "%s", j->pp.id);
    snprintf(p->value, sizeof p->value, "%s", j->pp.id);
    record(p);
}

void pay_paypal_capture(api_req *r)
{
    static const confirm_kind k = {paypal_ready, "paypal_order_id", paypal_api_id_ok,
                                   "PayPal order not found", OP_PAYPAL_CAPTURE};
    confirm_payment(r, &k);
}

static void paypal_captured(pay_job *j)
{
    if (j->outcome != HOUT_OK) {
        provider_failed(j, "PayPal order not found");
        return;
    }
    if (j->pp.custom_id[0] && parse_id(j->pp.custom_id) != j->order.id) {
        reply_error(j->r, 404, "not_found", "PayPal order not found for this order", NULL);
        return;
    }
    if (!paypal_api_completed(&j->pp)) {
        reply_not_completed(j->r, "PayPal payment not completed",
                            j->pp.capture_status[0] ? j->pp.capture_status : j->pp.status);
        return;
    }
    pay_rec *p = rec_new(j->r, ANS_PAID, DEC_PAYMENT_SUCCEEDED, "paypal", j->order.id);
    snprintf(p->intent_id, sizeof p->intent_id, "%s", j->pp.id);
    snprintf(p->event_id, sizeof p->event_id, "capture:%s",
             j->pp.capture_id[0] ? j->pp.capture_id : j->pp.id);
    p->amount = j->pp.amount;
    for (int i = 0; i < 3 && j->pp.currency[i]; i++)
        p->currency[i] = (char)(j->pp.currency[i] | 0x20);
    record(p);
}
