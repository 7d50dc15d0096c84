/* stripe_api.c - calls to Stripe's API (see stripe_api.h). */
#include "stripe_api.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ reading */

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool stripe_api_id_ok(const char *id, size_t n)
{
    if (!id || n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_char(id[i]))
            return false;
    return true;
}

/* Text copied whole characters at a time while it fits (jansson's strings
 * are valid UTF-8; a NUL inside ends it). */
static void append_text(char *dst, size_t cap, const char *s)
{
    size_t used = strlen(dst);
    const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
    while (p < end) {
        int k = ev_utf8_len(p, end);
        if (k <= 0 || used + (size_t)k >= cap)
            break;
        memcpy(dst + used, p, (size_t)k);
        used += (size_t)k;
        p += k;
    }
    dst[used] = 0;
}

static int64_t get_amount(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v)
                                                            : -1;
}

static void get_currency(json_t *obj, char out[4])
{
    hout_json_str(obj, "currency", out, 4);
    bool ok = strlen(out) == 3;
    for (int i = 0; ok && i < 3; i++) {
        char c = out[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        out[i] = (char)(c | 0x20);
    }
    if (!ok)
        out[0] = 0;
}

/* metadata.order_id: digits only (the store writes it as a string). */
static void get_order_id(json_t *obj, char *out, size_t cap)
{
    hout_json_str(json_object_get(obj, "metadata"), "order_id", out, cap);
    size_t n = strlen(out);
    for (size_t i = 0; i < n; i++)
        if (out[i] < '0' || out[i] > '9')
            n = 0;
    if (n == 0)
        out[0] = 0;
}

static void get_failure(json_t *obj, char *out, size_t cap)
{
    json_t *e = json_object_get(obj, "last_payment_error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    out[0] = 0;
    if (code)
        append_text(out, cap, code);
    if (code && msg)
        append_text(out, cap, ": ");
    if (msg)
        append_text(out, cap, msg);
}

bool stripe_api_read_intent(json_t *obj, stripe_api_intent *out)
{
    memset(out, 0, sizeof *out);
    out->amount = out->amount_received = -1;
    if (!json_is_object(obj))
        return false;
    hout_json_str(obj, "id", out->id, sizeof out->id);
    if (!stripe_api_id_ok(out->id, strlen(out->id))) {
        out->id[0] = 0;
        return false;
    }
    hout_json_str(obj, "client_secret", out->client_secret, sizeof out->client_secret);
    hout_json_str(obj, "status", out->status, sizeof out->status);
    out->amount = get_amount(obj, "amount");
    out->amount_received = get_amount(obj, "amount_received");
    get_currency(obj, out->currency);
    get_order_id(obj, out->order_id, sizeof out->order_id);
    get_failure(obj, out->failure, sizeof out->failure);
    return true;
}

/* ------------------------------------------------------------ calling */

/* Stripe's error object: its type and code (never its message, which may
 * echo what was sent). */
static void read_error(const hout_resp *resp, hout_error *err)
{
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    hout_json_str(e, "type", err->type, sizeof err->type);
    hout_json_str(e, "code", err->code, sizeof err->code);
    json_decref(j);
}

/* The outcome of an exchange that should answer with a PaymentIntent. */
static hout_outcome finish(int rc, const hout_resp *resp, stripe_api_intent *out,
                           hout_error *err)
{
    if (rc != 0) {
        snprintf(err->why, sizeof err->why, "%s", resp->err);
        return HOUT_UNREACHABLE;
    }
    err->status = resp->status;
    hout_outcome o = hout_outcome_of(resp->status);
    if (o != HOUT_OK) {
        read_error(resp, err);
        return o;
    }
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    bool ok = stripe_api_read_intent(j, out);
    json_decref(j);
    return ok ? HOUT_OK : HOUT_BAD_ANSWER;
}

/* One authenticated exchange; idem_key may be NULL. 0, or -1 (no answer,
 * resp->err says why). */
static int exchange(const stripe_api *s, const char *method, const char *url,
                    const char *idem_key, const ev_buf *form, hout_resp *resp)
{
    char auth[1100], idem[200];
    int n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->secret_key);
    if (n < 0 || (size_t)n >= sizeof auth) {
        OPENSSL_cleanse(auth, sizeof auth);
        memset(resp, 0, sizeof *resp);
        snprintf(resp->err, sizeof resp->err, "the secret key is too long");
        return -1;
    }
    const char *headers[4] = {auth, NULL, NULL, NULL};
    size_t k = 1;
    if (form)
        headers[k++] = "Content-Type: application/x-www-form-urlencoded";
    if (idem_key) {
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", idem_key);
        headers[k++] = idem;
    }
    hout_req q = {0};
    q.method = method;
    q.url = url;
    q.headers = headers;
    q.body = form ? (const char *)form->p : NULL;
    q.body_len = form ? form->len : 0;
    q.timeout_ms = s->timeout_ms;
    int rc = hout_perform(&q, resp);
    OPENSSL_cleanse(auth, sizeof auth);
    return rc;
}

static int intent_form(uint64_t order_id, int64_t amount, const char *currency, ev_buf *form)
{
    char a[24], o[24];
    snprintf(a, sizeof a, "%lld", (long long)amount);
    snprintf(o, sizeof o, "%llu", (unsigned long long)order_id);
    return hout_form_add(form, "amount", a) || hout_form_add(form, "currency", currency) ||
           hout_form_add(form, "metadata[order_id]", o) ||
           hout_form_add(form, "automatic_payment_methods[enabled]", "true");
}

hout_outcome stripe_api_create_intent(const stripe_api *s, uint64_t order_id, int64_t amount,
                                      const char *currency, stripe_api_intent *out,
                                      hout_error *err)
{
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    char url[1024], idem[128];
    ev_buf form = {0};
    if (!hout_url(s->base, "/v1/payment_intents", url, sizeof url) ||
        intent_form(order_id, amount, currency, &form) != 0) {
        ev_buf_free(&form);
        snprintf(err->why, sizeof err->why, "bad base URL, or out of memory");
        return HOUT_UNREACHABLE;
    }
    /* Same order, amount and currency: same key, so a retry (ours or the
     * client's) gets the intent Stripe already made. */
    snprintf(idem, sizeof idem, "watchstore-pi-%llu-%lld-%s", (unsigned long long)order_id,
             (long long)amount, currency);
    hout_resp resp;
    int rc = exchange(s, "POST", url, idem, &form, &resp);
    hout_outcome o = finish(rc, &resp, out, err);
    hout_resp_free(&resp);
    ev_buf_free(&form);
    return o;
}

hout_outcome stripe_api_get_intent(const stripe_api *s, const char *id, stripe_api_intent *out,
                                   hout_error *err)
{
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    char path[300], url[1024];
    if (!stripe_api_id_ok(id, strlen(id)))
        return HOUT_NOT_FOUND;
    snprintf(path, sizeof path, "/v1/payment_intents/%s", id);
    if (!hout_url(s->base, path, url, sizeof url)) {
        snprintf(err->why, sizeof err->why, "bad base URL");
        return HOUT_UNREACHABLE;
    }
    hout_resp resp;
    int rc = exchange(s, "GET", url, NULL, NULL, &resp);
    hout_outcome o = finish(rc, &resp, out, err);
    hout_resp_free(&resp);
    return o;
}
