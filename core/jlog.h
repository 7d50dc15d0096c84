/* jlog.h - structured log lines: one JSON object per line on a stream.
 *
 * Every line has "level", "time" (RFC 3339, milliseconds, UTC) and "msg";
 * callers add fields as already-encoded JSON ("\"pos\":42"). Never pass a
 * secret (password, token, key, card data) in a message or a field.
 */
#ifndef WS_JLOG_H
#define WS_JLOG_H

#include <stdio.h>

/* Writes one line: level is "debug", "info", "warn" or "error"; `fields`
 * (may be NULL) is a comma-separated list of JSON members. */
void jlog(FILE *out, const char *level, const char *msg, const char *fields);

#endif
