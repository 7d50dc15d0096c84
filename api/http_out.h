/* http_out.h - outbound HTTP requests to other services (payment
 * providers), blocking, with libcurl.
 *
 * Owns one exchange: a fresh easy handle per request (no state shared
 * between threads, so any pool thread may call it), limits (timeouts,
 * http/https only, no redirects, a bounded answer), and form encoding of
 * request bodies. It blocks: never call it on an HTTP loop; run it on
 * libuv's thread pool (offload.h). curl_global_init must have run before
 * the first call (the api's main does it).
 *
 * Nothing here logs: headers carry keys and tokens, bodies may carry card
 * data, so callers decide what may be written anywhere.
 */
#ifndef WS_HTTP_OUT_H
#define WS_HTTP_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/event.h"

#define HOUT_MAX_ANSWER (1024 * 1024)
#define HOUT_DEFAULT_TIMEOUT_MS 15000L

typedef struct hout_req {
    const char *method;         /* "GET", "POST" */
    const char *url;
    const char *const *headers; /* "Name: value" lines, NULL-ended; may be NULL */
    const char *body;           /* NULL: no body (a POST sends an empty one) */
    size_t body_len;
    const char *user, *password; /* HTTP basic authentication; NULL: none */
    long timeout_ms;            /* the whole exchange; 0: HOUT_DEFAULT_TIMEOUT_MS */
} hout_req;

typedef struct hout_resp {
    long status;    /* the HTTP status; 0 when there was no answer */
    char *body;     /* NUL-terminated, malloc'd (also when empty) */
    size_t len;
    char err[256];  /* why there was no answer */
} hout_resp;

/* How a call to a provider's JSON API went (the provider clients use it). */
typedef enum hout_outcome {
    HOUT_OK = 0,      /* a 2xx with the expected JSON */
    HOUT_UNREACHABLE, /* no HTTP answer */
    HOUT_REFUSED,     /* an error status (other than 404) */
    HOUT_NOT_FOUND,   /* 404: the object asked about does not exist */
    HOUT_BAD_ANSWER,  /* a 2xx, but not the JSON expected */
} hout_outcome;

/* Why a call did not give what was asked. Safe to log: no message text
 * from the provider (it may echo inputs), only its error type and code. */
typedef struct hout_error {
    long status;   /* the HTTP status, 0: none */
    char type[64]; /* the provider's error type or name ("card_error") */
    char code[64]; /* its error code ("amount_too_small"), "" if none */
    char why[256]; /* the transport's reason when there was no answer */
} hout_error;

/* The outcome of an answer's status: 2xx HOUT_OK, 404 HOUT_NOT_FOUND,
 * 0 HOUT_UNREACHABLE, else HOUT_REFUSED. */
hout_outcome hout_outcome_of(long status);

/* Performs the request. 0 when an HTTP answer came (whatever its status);
 * -1 when none did (connection, timeout, an answer over HOUT_MAX_ANSWER),
 * with out->err set. Call hout_resp_free either way. */
int hout_perform(const hout_req *q, hout_resp *out);
void hout_resp_free(hout_resp *r);

/* base (its trailing '/' dropped) followed by path ("/v1/x") into out.
 * false if it does not fit. */
bool hout_url(const char *base, const char *path, char *out, size_t cap);

/* Appends "key=value" to an application/x-www-form-urlencoded body (with
 * '&' before it unless it is the first): every byte but ALPHA, DIGIT and
 * "-._~" percent-encoded. 0, or -1 (out of memory). */
int hout_form_add(ev_buf *b, const char *key, const char *value);

/* String member `name` of a provider's JSON object copied into dst
 * (NUL-terminated) when it fits and holds no NUL; else dst is "". */
void hout_json_str(json_t *obj, const char *name, char *dst, size_t cap);

#endif
