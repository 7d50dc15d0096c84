/* http_out.c - outbound HTTP with libcurl (see http_out.h). */
#include "http_out.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hout_sink {
    ev_buf b;
    bool too_big;
} hout_sink;

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
    hout_sink *s = ud;
    size_t k = size * n;
    if (s->b.len + k > HOUT_MAX_ANSWER) {
        s->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return ev_buf_append(&s->b, data, k) == 0 ? k : 0;
}

/* The request's headers, plus "Expect:" (no 100-continue round trip). */
static struct curl_slist *header_list(const hout_req *q, bool *ok)
{
    struct curl_slist *l = NULL, *t;
    *ok = true;
    for (size_t i = 0; q->headers && q->headers[i] && *ok; i++) {
        if ((t = curl_slist_append(l, q->headers[i])))
            l = t;
        else
            *ok = false;
    }
    if (*ok && (t = curl_slist_append(l, "Expect:")))
        l = t;
    else
        *ok = false;
    return l;
}

static void set_method(CURL *c, const hout_req *q)
{
    if (!strcmp(q->method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (!strcmp(q->method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(q->body ? q->body_len : 0));
        return;
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    }
}

static void set_limits(CURL *c, const hout_req *q)
{
    long t = q->timeout_ms > 0 ? q->timeout_ms : HOUT_DEFAULT_TIMEOUT_MS;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* required off the main thread */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, t < 5000 ? t : 5000L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "watchstore-api");
}

int hout_perform(const hout_req *q, hout_resp *out)
{
    memset(out, 0, sizeof *out);
    hout_sink sink = {{0}, false};
    bool ok;
    CURL *c = curl_easy_init();
    struct curl_slist *hl = c ? header_list(q, &ok) : NULL;
    if (!c || !ok) {
        snprintf(out->err, sizeof out->err, "out of memory");
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        out->body = strdup("");
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, q->url);
    set_method(c, q);
    set_limits(c, q);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (q->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, q->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, q->password ? q->password : "");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        snprintf(out->err, sizeof out->err, "%s",
                 sink.too_big ? "the answer is too large" : curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (ev_buf_append(&sink.b, "", 1) == 0) {
        out->body = (char *)sink.b.p;
        out->len = sink.b.len - 1;
    } else {
        ev_buf_free(&sink.b);
        out->body = strdup("");
    }
    return rc == CURLE_OK ? 0 : -1;
}

hout_outcome hout_outcome_of(long status)
{
    if (status >= 200 && status < 300)
        return HOUT_OK;
    if (status == 404)
        return HOUT_NOT_FOUND;
    return status ? HOUT_REFUSED : HOUT_UNREACHABLE;
}

void hout_resp_free(hout_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

bool hout_url(const char *base, const char *path, char *out, size_t cap)
{
    size_t n = base ? strlen(base) : 0;
    while (n && base[n - 1] == '/')
        n--;
    int k = snprintf(out, cap, "%.*s%s", (int)n, base ? base : "", path);
    return n > 0 && k > 0 && (size_t)k < cap;
}

static bool unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static int form_encode(ev_buf *b, const char *s)
{
    static const char digits[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[3] = {'%', digits[*p >> 4], digits[*p & 15]};
        if (unreserved(*p) ? ev_buf_append(b, p, 1) : ev_buf_append(b, esc, 3))
            return -1;
    }
    return 0;
}

int hout_form_add(ev_buf *b, const char *key, const char *value)
{
    if (b->len && ev_buf_append(b, "&", 1))
        return -1;
    return form_encode(b, key) || ev_buf_append(b, "=", 1) || form_encode(b, value) ? -1 : 0;
}

void hout_json_str(json_t *obj, const char *name, char *dst, size_t cap)
{
    json_t *v = json_object_get(obj, name);
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    if (!s || n >= cap || memchr(s, 0, n)) {
        dst[0] = 0;
        return;
    }
    memcpy(dst, s, n + 1);
}
