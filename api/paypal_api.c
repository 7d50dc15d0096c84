/* paypal_api.c - calls to PayPal's Orders v2 API (see paypal_api.h). */
#include "paypal_api.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 2048

/* ------------------------------------------------------------ reading */

bool paypal_api_id_ok(const char *id, size_t n)
{
    if (!id || n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool paypal_api_parse_value(const char *s, int64_t *out)
{
    int64_t units = 0, cents = 0;
    size_t i = 0, digits = 0, frac = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++, digits++)
        if (digits < 12)
            units = units * 10 + (s[i] - '0');
    if (digits == 0 || digits > 12)
        return false;
    if (s[i] == '.') {
        for (i++; s[i] >= '0' && s[i] <= '9' && frac < 2; i++, frac++)
            cents = cents * 10 + (s[i] - '0');
        if (frac == 0)
            return false;
    }
    if (s[i])
        return false;
    *out = units * 100 + (frac == 1 ? cents * 10 : cents);
    return true;
}

/* {"currency_code","value"} into the order's amount and currency. */
static void read_amount(json_t *amount, paypal_api_order *out)
{
    const char *value = json_string_value(json_object_get(amount, "value"));
    char cur[4];
    hout_json_str(amount, "currency_code", cur, sizeof cur);
    if (!value || strlen(cur) != 3 || !paypal_api_parse_value(value, &out->amount)) {
        out->amount = -1;
        return;
    }
    memcpy(out->currency, cur, 4);
}

static void read_capture(json_t *cap, paypal_api_order *out)
{
    hout_json_str(cap, "id", out->capture_id, sizeof out->capture_id);
    hout_json_str(cap, "status", out->capture_status, sizeof out->capture_status);
    if (json_object_get(cap, "amount"))
        read_amount(json_object_get(cap, "amount"), out);
    char custom[128];
    hout_json_str(cap, "custom_id", custom, sizeof custom);
    if (custom[0])
        memcpy(out->custom_id, custom, sizeof custom);
}

bool paypal_api_read_order(json_t *obj, paypal_api_order *out)
{
    memset(out, 0, sizeof *out);
    out->amount = -1;
    if (!json_is_object(obj))
        return false;
    hout_json_str(obj, "id", out->id, sizeof out->id);
    if (!paypal_api_id_ok(out->id, strlen(out->id))) {
        out->id[0] = 0;
        return false;
    }
    hout_json_str(obj, "status", out->status, sizeof out->status);
    json_t *unit = json_array_get(json_object_get(obj, "purchase_units"), 0);
    hout_json_str(unit, "custom_id", out->custom_id, sizeof out->custom_id);
    if (json_object_get(unit, "amount"))
        read_amount(json_object_get(unit, "amount"), out);
    json_t *captures = json_object_get(json_object_get(unit, "payments"), "captures");
    if (json_array_size(captures))
        read_capture(json_array_get(captures, 0), out);
    return true;
}

bool paypal_api_completed(const paypal_api_order *o)
{
    return !strcmp(o->status, "COMPLETED") &&
           (!o->capture_status[0] || !strcmp(o->capture_status, "COMPLETED"));
}

/* ------------------------------------------------------------ calling */

/* PayPal's error object: its name (or OAuth's "error") and first issue. */
static void read_error(const hout_resp *resp, hout_error *err)
{
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    hout_json_str(j, "name", err->type, sizeof err->type);
    if (!err->type[0])
        hout_json_str(j, "error", err->type, sizeof err->type);
    hout_json_str(json_array_get(json_object_get(j, "details"), 0), "issue", err->code,
            sizeof err->code);
    json_decref(j);
}

/* The outcome of an answer's status; sets err for a failure. */
static hout_outcome outcome(int rc, const hout_resp *resp, hout_error *err)
{
    memset(err, 0, sizeof *err);
    if (rc != 0) {
        snprintf(err->why, sizeof err->why, "%s", resp->err);
        return HOUT_UNREACHABLE;
    }
    err->status = resp->status;
    hout_outcome o = hout_outcome_of(resp->status);
    if (o != HOUT_OK)
        read_error(resp, err);
    return o;
}

/* An access token into tok (wiped by the caller). */
static hout_outcome get_token(const paypal_api *p, char tok[TOKEN_MAX], hout_error *err)
{
    char url[1024];
    if (!hout_url(p->base, "/v1/oauth2/token", url, sizeof url)) {
        memset(err, 0, sizeof *err);
        snprintf(err->why, sizeof err->why, "bad base URL");
        return HOUT_UNREACHABLE;
    }
    static const char body[] = "grant_type=client_credentials";
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    hout_req q = {0};
    q.method = "POST";
    q.url = url;
    q.headers = headers;
    q.body = body;
    q.body_len = sizeof body - 1;
    q.user = p->client_id;
    q.password = p->client_secret;
    q.timeout_ms = p->timeout_ms;
    hout_resp resp;
    hout_outcome o = outcome(hout_perform(&q, &resp), &resp, err);
    if (o == HOUT_NOT_FOUND)
        o = HOUT_REFUSED; /* no token endpoint: a refusal, not an unknown order */
    if (o == HOUT_OK) {
        json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
        hout_json_str(j, "access_token", tok, TOKEN_MAX);
        json_decref(j);
        if (!tok[0])
            o = HOUT_BAD_ANSWER;
    }
    if (resp.body)
        OPENSSL_cleanse(resp.body, resp.len);
    hout_resp_free(&resp);
    return o;
}

/* One exchange with a bearer token; body NULL: a GET. */
static int exchange(const paypal_api *p, const char *tok, const char *method, const char *url,
                    const char *request_id, const char *body, hout_resp *resp)
{
    char auth[TOKEN_MAX + 40], rid[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    const char *headers[5] = {auth, "Accept: application/json", NULL, NULL, NULL};
    size_t k = 2;
    if (body)
        headers[k++] = "Content-Type: application/json";
    if (request_id) {
        snprintf(rid, sizeof rid, "PayPal-Request-Id: %s", request_id);
        headers[k++] = rid;
    }
    hout_req q = {0};
    q.method = method;
    q.url = url;
    q.headers = headers;
    q.body = body;
    q.body_len = body ? strlen(body) : 0;
    q.timeout_ms = p->timeout_ms;
    int rc = hout_perform(&q, resp);
    OPENSSL_cleanse(auth, sizeof auth);
    return rc;
}

/* An exchange that should answer with an order object. */
static hout_outcome order_call(const paypal_api *p, const char *tok, const char *method,
                               const char *path, const char *request_id, const char *body,
                               paypal_api_order *out, hout_error *err)
{
    char url[1024];
    if (!hout_url(p->base, path, url, sizeof url)) {
        memset(err, 0, sizeof *err);
        snprintf(err->why, sizeof err->why, "bad base URL");
        return HOUT_UNREACHABLE;
    }
    hout_resp resp;
    hout_outcome o = outcome(exchange(p, tok, method, url, request_id, body, &resp), &resp, err);
    if (o == HOUT_OK) {
        json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
        if (!paypal_api_read_order(j, out))
            o = HOUT_BAD_ANSWER;
        json_decref(j);
    }
    hout_resp_free(&resp);
    return o;
}

static char *create_body(uint64_t order_id, int64_t amount, const char *currency)
{
    char value[32], custom[24], cur[4];
    snprintf(value, sizeof value, "%lld.%02lld", (long long)(amount / 100),
             (long long)(amount % 100));
    snprintf(custom, sizeof custom, "%llu", (unsigned long long)order_id);
    for (int i = 0; i < 3; i++)
        cur[i] = (char)(currency[i] >= 'a' && currency[i] <= 'z' ? currency[i] - 32 : currency[i]);
    cur[3] = 0;
    json_t *j = json_pack("{s:s,s:[{s:s,s:{s:s,s:s}}]}", "intent", "CAPTURE", "purchase_units",
                          "custom_id", custom, "amount", "currency_code", cur, "value", value);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

hout_outcome paypal_api_create_order(const paypal_api *p, uint64_t order_id, int64_t amount,
                                     const char *currency, paypal_api_order *out,
                                     hout_error *err)
{
    memset(out, 0, sizeof *out);
    char *tok = calloc(1, TOKEN_MAX);
    char *body = create_body(order_id, amount, currency);
    hout_outcome o = HOUT_UNREACHABLE;
    memset(err, 0, sizeof *err);
    if (!tok || !body)
        snprintf(err->why, sizeof err->why, "out of memory");
    else if ((o = get_token(p, tok, err)) == HOUT_OK) {
        char rid[128];
        snprintf(rid, sizeof rid, "watchstore-order-%llu-%lld-%s", (unsigned long long)order_id,
                 (long long)amount, currency);
        o = order_call(p, tok, "POST", "/v2/checkout/orders", rid, body, out, err);
        if (o == HOUT_NOT_FOUND)
            o = HOUT_REFUSED;
    }
    if (tok)
        OPENSSL_cleanse(tok, TOKEN_MAX);
    free(tok);
    free(body);
    return o;
}

hout_outcome paypal_api_capture(const paypal_api *p, const char *id, paypal_api_order *out,
                                hout_error *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (!paypal_api_id_ok(id, strlen(id)))
        return HOUT_NOT_FOUND;
    char path[320], rid[300];
    char *tok = calloc(1, TOKEN_MAX);
    if (!tok) {
        snprintf(err->why, sizeof err->why, "out of memory");
        return HOUT_UNREACHABLE;
    }
    hout_outcome o = get_token(p, tok, err);
    if (o == HOUT_OK) {
        snprintf(path, sizeof path, "/v2/checkout/orders/%s/capture", id);
        snprintf(rid, sizeof rid, "watchstore-capture-%s", id);
        o = order_call(p, tok, "POST", path, rid, "", out, err);
        if (o == HOUT_REFUSED && err->status == 422) {
            /* Already captured, or not approved: where does it stand? */
            snprintf(path, sizeof path, "/v2/checkout/orders/%s", id);
            o = order_call(p, tok, "GET", path, NULL, NULL, out, err);
        }
    }
    OPENSSL_cleanse(tok, TOKEN_MAX);
    free(tok);
    return o;
}
