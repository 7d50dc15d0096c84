/* api_support.h - what the API's integration tests share: a store made in
 * a temporary folder (a log written through the writer, the cache made by
 * the real projector), the real `api` program started on a free port, and
 * HTTP requests over libcurl with status, headers and body captured. */
#ifndef WS_TEST_API_SUPPORT_H
#define WS_TEST_API_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/writer.h"

typedef struct ta_store {
    char dir[256], uri[300], cache[300], keyfile[300], jwtkey[300];
    wr_writer *w; /* open until ta_project */
} ta_store;

/* The server's token key in the tests (tests sign tokens with it). */
extern const uint8_t TA_JWT_KEY[32];

/* A fresh folder with a log (the writer open in s->w) and a key file. */
void ta_store_init(ta_store *s);
/* Closes the writer and runs `projector --once --projection cache`. */
void ta_project(ta_store *s);
void ta_store_fini(ta_store *s);
/* Registers a customer without password through s->w (before ta_project)
 * and, with admin, grants it the admin role; returns its id. */
uint64_t ta_add_customer(ta_store *s, const char *email, const char *full_name, bool admin);

typedef struct ta_server {
    pid_t pid;
    pid_t projector; /* following the log into the cache */
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
} ta_server;

/* Starts the projector (cache, following the log) and `api` ($API_BIN) on
 * the store (its log, written by the api from
 * now on, and its cache) with extra arguments (NULL-ended); returns when it
 * listens. Its log lines go to dir/api.log. Call ta_project first. */
void ta_server_start(ta_server *srv, const ta_store *s, const char *const *extra);
/* SIGTERM to both, and the api's exit status, else 100 + the projector's
 * (0 expected). */
int ta_server_stop(ta_server *srv);

typedef struct ta_resp {
    long status;
    char *body;    /* NUL-terminated, malloc'd */
    size_t len;
    char *headers; /* the raw response headers, malloc'd */
} ta_resp;

/* A request: method, path (appended to base), body (NULL: none), extra
 * header lines (NULL-ended, may be NULL). */
void ta_request(const ta_server *srv, const char *method, const char *path, const char *body,
                const char *const *headers, ta_resp *out);
void ta_resp_free(ta_resp *r);
/* A request whose status must be `want` and whose body must be JSON (an
 * empty body counts as {}); returns the parsed body (json_decref it). */
json_t *ta_call(const ta_server *srv, const char *method, const char *path, const char *body,
                const char *const *headers, long want);
/* A response header's value (case-insensitive name) into buf; false if
 * absent. */
bool ta_header(const ta_resp *r, const char *name, char *buf, size_t cap);

#endif
