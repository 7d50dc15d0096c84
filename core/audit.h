/* audit.h - verifying a log end to end: every record decodes, its hash
 * matches its bytes, and it is chained to the record before it.
 *
 * Used by `replay --verify` (auditors) and the tests. Reports the first bad
 * position, so a changed byte anywhere in the log is named by position.
 */
#ifndef WS_AUDIT_H
#define WS_AUDIT_H

#include "event.h"
#include "log.h"

typedef struct audit_result {
    uint64_t records;   /* records checked */
    uint64_t unknown;   /* records of types/versions this build does not know */
    uint64_t next;      /* position after the last record checked */
    uint64_t bad_pos;   /* first damaged record (when err != 0) */
    int err;            /* 0, an EV_E* code for a damaged record, or LOG_E* */
    uint8_t last_hash[32];
} audit_result;

/* Called every `every` records with the progress so far; return non-zero to
 * stop early. */
typedef int (*audit_progress_fn)(void *ud, const audit_result *sofar);

/* Verifies records from position `from` (whose predecessor must have hash
 * `prev`, zeroes for the start of the log). Returns 0 when all is sound, or
 * the error also stored in res->err. */
int audit_chain(log_t *log, uint64_t from, const uint8_t prev[32],
                audit_result *res, audit_progress_fn fn, void *ud,
                uint64_t every);

#endif
