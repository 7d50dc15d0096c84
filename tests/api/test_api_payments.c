/* test_api_payments.c - the payment routes over real HTTP (API.md
 * "Payments") against tests/fakes/fake_stripe, a local stand-in for
 * Stripe's and PayPal's APIs: intents for the stored total with the order
 * id in their metadata, the signed webhook (paid once however often Stripe
 * retries, tampered and stale deliveries refused, failures and mismatched
 * amounts recorded without paying the order), confirmation after the
 * browser's payment, PayPal orders and captures, the provider's refusals
 * (502), and 503 from every route of a provider that is not configured.
 * What was recorded is counted in the log itself. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/stripe_sig.h"
#include "api_support.h"
#include "core/log.h"
#include "core/support.h"

static const char WHSEC[] = "whsec_test_payments_0123456789";
static const char SK[] = "sk_test_fake_0123456789";

static ta_store store;
static ta_server srv;
static ta_server fake; /* pid and base: the fake providers */
static char w0[37];

/* ------------------------------------------------------------ set-up */

static void start_fake(ta_server *f)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        close(out[0]);
        const char *bin = getenv("FAKE_STRIPE_BIN");
        execl(bin ? bin : "fake_stripe", "fake_stripe", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *fp = fdopen(out[0], "r");
    char line[64] = "";
    cr_assert_not_null(fgets(line, sizeof line, fp), "the fake printed its port");
    fclose(fp);
    memset(f, 0, sizeof *f);
    f->pid = pid;
    f->port = atoi(line);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

static void stop_fake(ta_server *f)
{
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
}

static void make_store(void)
{
    ta_store_init(&store);
    static wr_req r;
    memset(&r, 0, sizeof r);
    r.cmd = ts_cmd(DEC_WATCH_ADD, 1764057600000000ull);
    r.cmd.causation = (ev_str){NULL, 0};
    ts_watch_id(0, r.cmd.u.watch.watch_id);
    r.cmd.u.watch.watch_name = EV_STR("Longines Spirit");
    r.cmd.u.watch.brand = EV_STR("Longines");
    r.cmd.u.watch.price = 39500;
    r.cmd.u.watch.currency = EV_STR("USD");
    r.cmd.u.watch.set_stock = true;
    r.cmd.u.watch.stock = 1000;
    wr_req *p = &r;
    cr_assert_eq(wr_process(store.w, &p, 1), 0);
    cr_assert_eq(r.out.reason, DEC_OK);
    uint8_t id[16];
    ts_watch_id(0, id);
    ev_uuid_format(id, w0);
    ta_project(&store);
}

static void setup(void)
{
    make_store();
    start_fake(&fake);
    setenv("STRIPE_API_BASE", fake.base, 1);
    setenv("STRIPE_SECRET_KEY", SK, 1);
    setenv("STRIPE_WEBHOOK_SECRET", WHSEC, 1);
    setenv("PAYPAL_API_BASE", fake.base, 1);
    setenv("PAYPAL_CLIENT_ID", "test-client-id", 1);
    setenv("PAYPAL_CLIENT_SECRET", "test-client-secret", 1);
    const char *extra[] = {"--rate-limit=0", NULL};
    ta_server_start(&srv, &store, extra);
}

static void teardown(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0, "the api stops cleanly on SIGTERM");
    stop_fake(&fake);
    ta_store_fini(&store);
}

TestSuite(payments, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------ helpers */

static json_t *call_at(const ta_server *s, const char *method, const char *path,
                       const char *body, const char *const *headers, long want)
{
    return ta_call(s, method, path, body, headers, want);
}

static json_t *call(const char *method, const char *path, const char *body, long want)
{
    return call_at(&srv, method, path, body, NULL, want);
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

typedef struct order {
    uint64_t id;
    char token_header[160]; /* "X-Order-Token: ..." */
} order;

/* A guest order of `qty` watches at 395.00. */
static order place(int qty)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"items\":[{\"watch_id\":\"%s\",\"quantity\":%d,\"unit_price\":\"395.00\"}]}", w0,
             qty);
    json_t *o = call("POST", "/api/v1/orders", body, 201);
    order out;
    out.id = (uint64_t)json_integer_value(json_object_get(o, "order_id"));
    snprintf(out.token_header, sizeof out.token_header, "X-Order-Token: %s",
             str(o, "order_token"));
    json_decref(o);
    return out;
}

/* GET /api/v1/orders/:id with the guest's token. */
static json_t *read_order(const order *o)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/orders/%llu", (unsigned long long)o->id);
    const char *h[] = {o->token_header, NULL};
    return call_at(&srv, "GET", path, NULL, h, 200);
}

static void expect_order(const order *o, const char *status, const char *intent)
{
    json_t *got = read_order(o);
    cr_assert_str_eq(str(got, "status"), status);
    if (intent)
        cr_assert_str_eq(str(got, "payment_intent_id"), intent);
    else
        cr_assert(json_is_null(json_object_get(got, "payment_intent_id")));
    json_decref(got);
}

/* POST create-payment-intent; the intent's id (from its client secret). */
static void create_intent(const order *o, const char *amount, char id[64])
{
    char body[160];
    snprintf(body, sizeof body, "{\"amount\":%s,\"order_id\":%llu}", amount,
             (unsigned long long)o->id);
    json_t *j = call("POST", "/api/v1/stripe/create-payment-intent", body, 200);
    const char *secret = str(j, "clientSecret");
    cr_assert_not_null(secret);
    const char *cut = strstr(secret, "_secret_");
    cr_assert_not_null(cut, "%s", secret);
    snprintf(id, 64, "%.*s", (int)(cut - secret), secret);
    json_decref(j);
}

/* The fake's record of what the api asked it. */
static json_t *provider_requests(void) { return call_at(&fake, "GET", "/__requests", NULL, NULL, 200); }

static json_t *last_request(json_t *reqs, const char *method, const char *path_prefix)
{
    for (size_t i = json_array_size(reqs); i-- > 0;) {
        json_t *q = json_array_get(reqs, i);
        if (!strcmp(str(q, "method"), method) &&
            !strncmp(str(q, "path"), path_prefix, strlen(path_prefix)))
            return q;
    }
    return NULL;
}

static void fake_control(const char *path, const char *body)
{
    json_decref(call_at(&fake, "POST", path, body, NULL, 200));
}

/* ------------------------------------------------------------ the log */

typedef struct ev_count {
    ev_dec *d;
    ev_type type;
    uint64_t order_id;
    int n;
} ev_count;

static uint64_t order_of(const ev_event *e)
{
    switch (e->env.type) {
    case EV_T_PAYMENT_INTENT_CREATED: return e->u.payment_intent_created.order_id;
    case EV_T_PAYMENT_SUCCEEDED: return e->u.payment_succeeded.order_id;
    case EV_T_PAYMENT_MISMATCHED: return e->u.payment_mismatched.order_id;
    case EV_T_PAYMENT_FAILED: return e->u.payment_failed.order_id;
    case EV_T_ORDER_STATUS_CHANGED: return e->u.order_status_changed.order_id;
    default: return 0;
    }
}

static int count_visit(void *ud, const log_rec *rec)
{
    ev_count *c = ud;
    ev_event e;
    cr_assert_eq(ev_decode(c->d, rec->data, rec->len, rec->pos, &e), 0);
    if (e.env.type == c->type && order_of(&e) == c->order_id)
        c->n++;
    return 0;
}

/* Events of type t for order `order_id` in the log (the api answers once
 * they are durable). */
static int count_events(ev_type t, uint64_t order_id)
{
    log_t *log;
    char err[256];
    cr_assert_eq(log_open(store.uri, LOG_READ, &log, err, sizeof err), 0, "%s", err);
    ev_count c = {ev_dec_new(), t, order_id, 0};
    uint64_t next;
    cr_assert_eq(log_scan(log, 0, 0, count_visit, &c, &next), 0);
    ev_dec_free(c.d);
    log_close(log);
    return c.n;
}

/* ------------------------------------------------------------ webhook */

/* A Stripe event about intent `pi` of order `order_id`. */
static char *stripe_event(const char *evt, const char *type, const char *pi, uint64_t order_id,
                          long long amount_received)
{
    char oid[24];
    snprintf(oid, sizeof oid, "%llu", (unsigned long long)order_id);
    json_t *obj = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:{s:s}}", "id", pi, "object",
                            "payment_intent", "amount", (json_int_t)79000, "amount_received",
                            (json_int_t)amount_received, "currency", "usd", "status",
                            strcmp(type, "payment_intent.succeeded") ? "requires_payment_method"
                                                                     : "succeeded",
                            "metadata", "order_id", oid);
    if (!strcmp(type, "payment_intent.payment_failed"))
        json_object_set_new(obj, "last_payment_error",
                            json_pack("{s:s,s:s}", "code", "card_declined", "message",
                                      "Your card was declined."));
    json_t *ev = json_pack("{s:s,s:s,s:s,s:I,s:b,s:{s:o}}", "id", evt, "object", "event", "type",
                           type, "created", (json_int_t)time(NULL), "livemode", 0, "data",
                           "object", obj);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return s;
}

/* POSTs a webhook body with a signature made at time t with `secret`. */
static long deliver_signed(const char *body, const char *signed_body, const char *secret,
                           int64_t t, char *resp_body, size_t cap)
{
    char sig[200], header[240];
    cr_assert_gt(stripe_sig_sign(signed_body, strlen(signed_body), secret, t, sig, sizeof sig), 0);
    snprintf(header, sizeof header, "Stripe-Signature: %s", sig);
    const char *h[] = {header, NULL};
    ta_resp r;
    ta_request(&srv, "POST", "/api/v1/stripe/webhook", body, h, &r);
    long status = r.status;
    if (resp_body)
        snprintf(resp_body, cap, "%s", r.body);
    ta_resp_free(&r);
    return status;
}

static void deliver(const char *body)
{
    char got[256];
    long st = deliver_signed(body, body, WHSEC, time(NULL), got, sizeof got);
    cr_assert_eq(st, 200, "%s", got);
    json_t *j = json_loads(got, 0, NULL);
    cr_assert(json_is_true(json_object_get(j, "received")), "%s", got);
    json_decref(j);
}

/* ------------------------------------------------------------ Stripe */

Test(payments, an_intent_is_for_the_stored_total_with_the_order_in_its_metadata)
{
    order o = place(2); /* 790.00 */
    char pi[64];
    create_intent(&o, "10.00", pi);
    json_t *reqs = provider_requests();
    json_t *q = last_request(reqs, "POST", "/v1/payment_intents");
    cr_assert_not_null(q);
    const char *body = str(q, "body");
    char meta[64];
    snprintf(meta, sizeof meta, "metadata%%5Border_id%%5D=%llu", (unsigned long long)o.id);
    cr_assert_not_null(strstr(body, "amount=79000"), "the stored total, not 10.00: %s", body);
    cr_assert_not_null(strstr(body, "currency=usd"), "%s", body);
    cr_assert_not_null(strstr(body, meta), "%s", body);
    cr_assert_not_null(strstr(body, "automatic_payment_methods%5Benabled%5D=true"), "%s", body);
    char auth[80];
    snprintf(auth, sizeof auth, "Bearer %s", SK);
    cr_assert_str_eq(str(q, "authorization"), auth);
    cr_assert_str_eq(str(q, "content_type"), "application/x-www-form-urlencoded");
    cr_assert_neq(strlen(str(q, "idempotency_key")), 0, "an Idempotency-Key goes to Stripe");
    json_decref(reqs);
    expect_order(&o, "pending", pi);
    cr_assert_eq(count_events(EV_T_PAYMENT_INTENT_CREATED, o.id), 1);

    /* Asked again (another amount, a currency): the same intent, not recorded twice. */
    char again[64];
    create_intent(&o, "\"790.00\"", again);
    cr_assert_str_eq(again, pi);
    cr_assert_eq(count_events(EV_T_PAYMENT_INTENT_CREATED, o.id), 1);
}

Test(payments, create_intent_refusals)
{
    order o = place(1);
    char body[200];
    json_t *j = call("POST", "/api/v1/stripe/create-payment-intent",
                     "{\"amount\":10,\"order_id\":999999}", 404);
    cr_assert_str_eq(str(j, "code"), "not_found");
    json_decref(j);
    snprintf(body, sizeof body, "{\"order_id\":%llu}", (unsigned long long)o.id);
    j = call("POST", "/api/v1/stripe/create-payment-intent", body, 400);
    cr_assert_str_eq(str(j, "code"), "validation_failed");
    json_decref(j);
    snprintf(body, sizeof body, "{\"amount\":-5,\"order_id\":%llu}", (unsigned long long)o.id);
    json_decref(call("POST", "/api/v1/stripe/create-payment-intent", body, 400));
    json_decref(call("POST", "/api/v1/stripe/create-payment-intent",
                     "{\"amount\":10,\"order_id\":1.5}", 400));
    snprintf(body, sizeof body, "{\"amount\":10,\"order_id\":%llu,\"currency\":\"dollars\"}",
             (unsigned long long)o.id);
    json_decref(call("POST", "/api/v1/stripe/create-payment-intent", body, 400));
    json_decref(call("POST", "/api/v1/stripe/create-payment-intent", "not json", 400));

    /* Stripe refuses: 502 in the API's shape; nothing recorded. */
    fake_control("/__fail_next", "{\"status\":402,\"body\":{\"error\":{\"type\":\"card_error\","
                                 "\"code\":\"card_declined\",\"message\":\"Declined\"}}}");
    snprintf(body, sizeof body, "{\"amount\":395,\"order_id\":%llu}", (unsigned long long)o.id);
    j = call("POST", "/api/v1/stripe/create-payment-intent", body, 502);
    cr_assert_str_eq(str(j, "code"), "payment_provider_error");
    cr_assert_str_eq(str(j, "provider_code"), "card_declined");
    json_decref(j);
    cr_assert_eq(count_events(EV_T_PAYMENT_INTENT_CREATED, o.id), 0);

    /* A present but invalid token is 401 here too. */
    const char *h[] = {"Authorization: Bearer not.a.token", NULL};
    json_decref(call_at(&srv, "POST", "/api/v1/stripe/create-payment-intent", body, h, 401));
}

Test(payments, a_signed_success_pays_the_order_once)
{
    order o = place(2);
    char pi[64];
    create_intent(&o, "790", pi);
    char *ev = stripe_event("evt_success_1", "payment_intent.succeeded", pi, o.id, 79000);
    deliver(ev);
    expect_order(&o, "processing", pi);
    deliver(ev); /* Stripe retries */
    deliver(ev);
    expect_order(&o, "processing", pi);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, o.id), 1, "one change");
    cr_assert_eq(count_events(EV_T_ORDER_STATUS_CHANGED, o.id), 1);
    free(ev);
}

Test(payments, tampered_stale_and_unsigned_deliveries_are_refused)
{
    order o = place(2);
    char pi[64], got[512];
    create_intent(&o, "790", pi);
    char *ev = stripe_event("evt_tamper_1", "payment_intent.succeeded", pi, o.id, 79000);
    char *forged = strdup(ev);
    char *amt = strstr(forged, "\"amount_received\":79000");
    cr_assert_not_null(amt);
    memcpy(amt + 18, "79001", 5); /* one cent more */
    time_t now = time(NULL);

    cr_assert_eq(deliver_signed(forged, ev, WHSEC, now, got, sizeof got), 400, "%s", got);
    cr_assert_not_null(strstr(got, "invalid_signature"), "%s", got);
    cr_assert_eq(deliver_signed(ev, ev, "whsec_someone_else", now, got, sizeof got), 400);
    cr_assert_eq(deliver_signed(ev, ev, WHSEC, now - 400, got, sizeof got), 400, "stale");
    cr_assert_not_null(strstr(got, "signature_expired"), "%s", got);
    cr_assert_eq(deliver_signed(ev, ev, WHSEC, now + 400, got, sizeof got), 400, "future");
    json_decref(call("POST", "/api/v1/stripe/webhook", ev, 400)); /* no header */
    const char *junk[] = {"Stripe-Signature: garbage", NULL};
    json_decref(call_at(&srv, "POST", "/api/v1/stripe/webhook", ev, junk, 400));

    expect_order(&o, "pending", pi);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, o.id), 0);
    cr_assert_eq(count_events(EV_T_PAYMENT_MISMATCHED, o.id), 0);
    free(forged);
    free(ev);
}

Test(payments, a_failed_payment_is_recorded_and_the_order_stays_pending)
{
    order o = place(2);
    char pi[64];
    create_intent(&o, "790", pi);
    char *ev = stripe_event("evt_failed_1", "payment_intent.payment_failed", pi, o.id, 0);
    deliver(ev);
    deliver(ev);
    cr_assert_eq(count_events(EV_T_PAYMENT_FAILED, o.id), 1);
    expect_order(&o, "pending", pi);
    free(ev);
}

Test(payments, a_mismatched_amount_is_recorded_but_not_paid)
{
    order o = place(2);
    char pi[64];
    create_intent(&o, "790", pi);
    char *ev = stripe_event("evt_short_1", "payment_intent.succeeded", pi, o.id, 100);
    deliver(ev);
    cr_assert_eq(count_events(EV_T_PAYMENT_MISMATCHED, o.id), 1);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, o.id), 0);
    json_t *got = read_order(&o);
    cr_assert_str_eq(str(got, "status"), "pending");
    json_decref(got);
    free(ev);
}

Test(payments, other_events_and_events_without_an_order_are_acknowledged)
{
    order o = place(1);
    char *ev = stripe_event("evt_charge_1", "charge.succeeded", "pi_x", o.id, 39500);
    deliver(ev);
    free(ev);
    ev = stripe_event("evt_other_1", "payment_intent.succeeded", "pi_x", 0, 39500);
    deliver(ev); /* metadata.order_id "0": no order */
    free(ev);
    expect_order(&o, "pending", NULL);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, o.id), 0);
}

Test(payments, confirm_order)
{
    order o = place(2), other = place(1);
    char pi[64], body[200];
    create_intent(&o, "790", pi);
    snprintf(body, sizeof body, "{\"payment_intent_id\":\"%s\",\"order_id\":%llu}", pi,
             (unsigned long long)o.id);
    json_t *j = call("POST", "/api/v1/stripe/confirm-order", body, 400);
    cr_assert_str_eq(str(j, "error"), "Payment not completed");
    cr_assert_str_eq(str(j, "payment_status"), "requires_payment_method");
    json_decref(j);

    char set[200];
    snprintf(set, sizeof set, "{\"id\":\"%s\",\"status\":\"succeeded\"}", pi);
    fake_control("/__set_status", set);
    for (int i = 0; i < 2; i++) {
        j = call("POST", "/api/v1/stripe/confirm-order", body, 200);
        cr_assert(json_is_true(json_object_get(j, "success")));
        cr_assert_eq(json_integer_value(json_object_get(j, "order_id")), (json_int_t)o.id);
        cr_assert_str_eq(str(j, "status"), "processing");
        json_decref(j);
    }
    expect_order(&o, "processing", pi);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, o.id), 1, "confirmed once");

    /* The intent of another order; an unknown intent; an unknown order. */
    snprintf(body, sizeof body, "{\"payment_intent_id\":\"%s\",\"order_id\":%llu}", pi,
             (unsigned long long)other.id);
    json_decref(call("POST", "/api/v1/stripe/confirm-order", body, 404));
    expect_order(&other, "pending", NULL);
    snprintf(body, sizeof body, "{\"payment_intent_id\":\"pi_nope\",\"order_id\":%llu}",
             (unsigned long long)o.id);
    json_decref(call("POST", "/api/v1/stripe/confirm-order", body, 404));
    snprintf(body, sizeof body, "{\"payment_intent_id\":\"../x\",\"order_id\":%llu}",
             (unsigned long long)o.id);
    json_decref(call("POST", "/api/v1/stripe/confirm-order", body, 404));
    snprintf(body, sizeof body, "{\"payment_intent_id\":\"%s\",\"order_id\":999999}", pi);
    json_decref(call("POST", "/api/v1/stripe/confirm-order", body, 404));
    json_decref(call("POST", "/api/v1/stripe/confirm-order", "{\"order_id\":1}", 400));
}

/* ------------------------------------------------------------ PayPal */

static void paypal_create(const order *o, char id[64])
{
    char body[160];
    snprintf(body, sizeof body, "{\"amount\":1,\"order_id\":%llu,\"currency\":\"usd\"}",
             (unsigned long long)o->id);
    json_t *j = call("POST", "/api/v1/paypal/create-order", body, 200);
    cr_assert_not_null(str(j, "orderId"));
    snprintf(id, 64, "%s", str(j, "orderId"));
    json_decref(j);
}

static json_t *paypal_capture(const order *o, const char *id, long want)
{
    char body[160];
    snprintf(body, sizeof body, "{\"paypal_order_id\":\"%s\",\"order_id\":%llu}", id,
             (unsigned long long)o->id);
    return call("POST", "/api/v1/paypal/capture-order", body, want);
}

Test(payments, paypal_create_and_capture)
{
    order o = place(2);
    char id[64];
    paypal_create(&o, id);
    json_t *reqs = provider_requests();
    json_t *tok = last_request(reqs, "POST", "/v1/oauth2/token");
    cr_assert_not_null(tok);
    cr_assert_eq(strncmp(str(tok, "authorization"), "Basic ", 6), 0);
    json_t *q = last_request(reqs, "POST", "/v2/checkout/orders");
    cr_assert_not_null(q);
    cr_assert_eq(strncmp(str(q, "authorization"), "Bearer A21AA", 12), 0);
    cr_assert_neq(strlen(str(q, "paypal_request_id")), 0);
    json_t *b = json_loads(str(q, "body"), 0, NULL);
    cr_assert_str_eq(str(b, "intent"), "CAPTURE");
    json_t *unit = json_array_get(json_object_get(b, "purchase_units"), 0);
    json_t *amount = json_object_get(unit, "amount");
    cr_assert_str_eq(str(amount, "currency_code"), "USD");
    cr_assert_str_eq(str(amount, "value"), "790.00", "the stored total, not 1");
    char oid[24];
    snprintf(oid, sizeof oid, "%llu", (unsigned long long)o.id);
    cr_assert_str_eq(str(unit, "custom_id"), oid);
    json_decref(b);
    json_decref(reqs);
    expect_order(&o, "pending", id);

    for (int i = 0; i < 2; i++) {
        json_t *j = paypal_capture(&o, id, 200);
        cr_assert(json_is_true(json_object_get(j, "success")));
        cr_assert_eq(json_integer_value(json_object_get(j, "order_id")), (json_int_t)o.id);
        cr_assert_str_eq(str(j, "status"), "processing");
        json_decref(j);
    }
    expect_order(&o, "processing", id);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, o.id), 1);
}

Test(payments, paypal_not_completed_unknown_and_refused)
{
    order o = place(1), n = place(1);
    char id[64], set[200];
    paypal_create(&o, id);
    snprintf(set, sizeof set, "{\"id\":\"%s\",\"status\":\"NOT_APPROVED\"}", id);
    fake_control("/__set_status", set);
    json_t *j = paypal_capture(&o, id, 400);
    cr_assert_str_eq(str(j, "error"), "PayPal payment not completed");
    json_decref(j);

    paypal_create(&n, id);
    snprintf(set, sizeof set, "{\"id\":\"%s\",\"status\":\"PENDING\"}", id);
    fake_control("/__set_status", set);
    j = paypal_capture(&n, id, 400);
    cr_assert_str_eq(str(j, "error"), "PayPal payment not completed");
    cr_assert_str_eq(str(j, "payment_status"), "PENDING");
    json_decref(j);
    expect_order(&n, "pending", id);
    cr_assert_eq(count_events(EV_T_PAYMENT_SUCCEEDED, n.id), 0);

    json_decref(paypal_capture(&o, "UNKNOWN123", 404));

    fake_control("/__fail_next", "{\"status\":500,\"body\":{\"name\":\"INTERNAL_SERVER_ERROR\"}}");
    char body[160];
    snprintf(body, sizeof body, "{\"amount\":395,\"order_id\":%llu}", (unsigned long long)o.id);
    j = call("POST", "/api/v1/paypal/create-order", body, 502);
    cr_assert_str_eq(str(j, "code"), "payment_provider_error");
    json_decref(j);
}

/* ------------------------------------------------------------ not configured */

static void setup_bare(void)
{
    make_store();
    unsetenv("STRIPE_SECRET_KEY");
    unsetenv("STRIPE_WEBHOOK_SECRET");
    unsetenv("PAYPAL_CLIENT_ID");
    unsetenv("PAYPAL_CLIENT_SECRET");
    const char *extra[] = {"--rate-limit=0", NULL};
    ta_server_start(&srv, &store, extra);
}

static void teardown_bare(void)
{
    cr_assert_eq(ta_server_stop(&srv), 0);
    ta_store_fini(&store);
}

TestSuite(payments_unconfigured, .init = setup_bare, .fini = teardown_bare, .timeout = 120);

Test(payments_unconfigured, every_route_answers_503)
{
    order o = place(1);
    char body[200];
    static const char *const paths[] = {
        "/api/v1/stripe/create-payment-intent", "/api/v1/stripe/confirm-order",
        "/api/v1/paypal/create-order", "/api/v1/paypal/capture-order"};
    snprintf(body, sizeof body,
             "{\"amount\":395,\"order_id\":%llu,\"payment_intent_id\":\"pi_1\","
             "\"paypal_order_id\":\"X1\"}",
             (unsigned long long)o.id);
    for (size_t i = 0; i < 4; i++) {
        json_t *j = call("POST", paths[i], body, 503);
        cr_assert_str_eq(str(j, "code"), "payments_not_configured", "%s", paths[i]);
        json_decref(j);
    }
    char *ev = stripe_event("evt_bare_1", "payment_intent.succeeded", "pi_1", o.id, 39500);
    cr_assert_eq(deliver_signed(ev, ev, WHSEC, time(NULL), NULL, 0), 503);
    free(ev);
    expect_order(&o, "pending", NULL);
}
