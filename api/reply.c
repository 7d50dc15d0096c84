/* reply.c - answering requests (see reply.h). */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *reply_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

void reply_json(api_req *r, int status, const char *body, size_t len)
{
    h2o_req_t *h = r->h;
    h->res.status = status;
    h->res.reason = reply_reason(status);
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json; charset=utf-8"));
    /* A known length keeps the connection alive: h2o 2.2 closes it after a
     * chunked answer whose status is not 200. */
    h->res.content_length = len;
    h2o_send_inline(h, body, len);
}

void reply_error(api_req *r, int status, const char *code, const char *msg, const char *extra)
{
    ev_buf b = {0};
    ev_str m = {msg, (uint32_t)strlen(msg)};
    int rc = ev_buf_append(&b, "{\"error\":", 9) || ev_format_json_str(m, &b) ||
             ev_buf_append(&b, ",\"code\":\"", 9) || ev_buf_append(&b, code, strlen(code)) ||
             ev_buf_append(&b, "\"", 1);
    if (!rc && extra && *extra)
        rc = (*extra != ',' && ev_buf_append(&b, ",", 1)) ||
             ev_buf_append(&b, extra, strlen(extra));
    if (!rc)
        rc = ev_buf_append(&b, "}", 1);
    static const char oom[] = "{\"error\":\"Out of memory\",\"code\":\"internal_error\"}";
    if (rc)
        reply_json(r, 500, oom, sizeof oom - 1);
    else
        reply_json(r, status, (const char *)b.p, b.len);
    ev_buf_free(&b);
}

void reply_empty(api_req *r, int status)
{
    h2o_req_t *h = r->h;
    h->res.status = status;
    h->res.reason = reply_reason(status);
    h->res.content_length = 0;
    h2o_send_inline(h, "", 0);
}

int reply_money(int64_t minor, bool as_number, char out[32])
{
    uint64_t a = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    unsigned cents = (unsigned)(a % 100);
    const char *sign = minor < 0 ? "-" : "";
    unsigned long long units = (unsigned long long)(a / 100);
    if (!as_number)
        return snprintf(out, 32, "%s%llu.%02u", sign, units, cents);
    if (cents == 0)
        return snprintf(out, 32, "%s%llu", sign, units);
    if (cents % 10 == 0)
        return snprintf(out, 32, "%s%llu.%u", sign, units, cents / 10);
    return snprintf(out, 32, "%s%llu.%02u", sign, units, cents);
}

void reply_invalid(api_req *r, const val_ctx *v)
{
    char *body = val_error_json(v);
    if (body)
        reply_json(r, 400, body, strlen(body));
    else
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
    free(body);
}
