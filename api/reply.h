/* reply.h - answering a request: JSON bodies, the API's error shape, the
 * status lines.
 *
 * Every body the API sends is JSON (API.md): errors are
 * {"error": "<sentence>", "code": "<machine code>"} plus extra members
 * where useful. Bodies are copied into the request's pool, so callers may
 * free theirs at once.
 */
#ifndef WS_REPLY_H
#define WS_REPLY_H

#include "api.h"
#include "validate.h"

/* The reason phrase of a status ("Not Found"). */
const char *reply_reason(int status);

/* Sends `body` (JSON) with `status`. */
void reply_json(api_req *r, int status, const char *body, size_t len);
/* {"error": msg, "code": code}; `extra` (may be NULL) is more members,
 * already encoded (",\"available\":3" without the leading comma is fine
 * too: it is added). */
void reply_error(api_req *r, int status, const char *code, const char *msg, const char *extra);
/* Money in minor units as API.md writes it: as_number false: a two-place
 * decimal string's text ("395.00", no quotes); true: a JSON number with
 * the cents it needs (395, 395.5, 395.25). Returns the length. */
int reply_money(int64_t minor, bool as_number, char out[32]);

/* 400 with the validation errors of v (every failing field by path). */
void reply_invalid(api_req *r, const val_ctx *v);

/* 204, no body. */
void reply_empty(api_req *r, int status);

#endif
