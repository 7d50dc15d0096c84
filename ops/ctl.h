/* ctl.h - the operator's commands on the store, written to the log through
 * its writer (core/writer.h), as the system.
 *
 * Owns an open writer (so the log's writer lock: the API must not run) and
 * the envelope of the commands it sends: actor "system" (actor_system), one
 * correlation id per ctl_store, the wall clock. Every operation is one
 * durable append of all its events, or none. Results and refusals are
 * returned with a sentence; printing is the caller's.
 *
 * Statuses double as storectl's exit codes.
 */
#ifndef WS_CTL_H
#define WS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catfile.h"
#include "core/writer.h"

typedef enum ctl_status {
    CTL_OK = 0,      /* done, or nothing to do */
    CTL_REFUSED = 1, /* the store refused the command, or no such account */
    CTL_USAGE = 2,   /* an argument is not valid */
    CTL_LOCKED = 3,  /* another process is the log's writer */
    CTL_ERROR = 4,   /* a file, the key or the log could not be read or written */
} ctl_status;

typedef struct ctl_store {
    wr_writer *w;
    ev_enc *enc;        /* ids: watch ids, the correlation id */
    char corr[37];      /* this run's correlation id */
    char log_uri[4096];
} ctl_store;

typedef struct ctl_config {
    const char *log_uri;
    const char *snapshot_path; /* NULL: none */
    const char *email_key_file;
} ctl_config;

/* Opens the log as its writer (reading the e-mail key first). CTL_LOCKED
 * when another process holds the log: err then names it. */
ctl_status ctl_open(ctl_store *s, const ctl_config *cfg, char *err, size_t errlen);
void ctl_close(ctl_store *s);

/* Watches in the store. */
size_t ctl_watch_count(const ctl_store *s);

/* Adds every watch of the catalog in one append (the file's first entry
 * recorded last, so it is the newest). Watches without a fixed id get a
 * fresh UUIDv7. *added: how many were added. */
ctl_status ctl_seed(ctl_store *s, const catfile *cat, size_t *added, char *err, size_t errlen);

/* The account of an e-mail address: true with *customer_id and *role
 * (EV_role_*). CTL_USAGE in *st when the address is not valid. */
bool ctl_find(const ctl_store *s, const char *email, uint64_t *customer_id, uint8_t *role,
              ctl_status *st);

/* Registers an account (password_hash: a PHC string) and sets its role, in
 * one append. *customer_id: the new account's id. */
ctl_status ctl_register(ctl_store *s, const char *email, const char *full_name,
                        const char *password_hash, uint8_t role, uint64_t *customer_id,
                        char *err, size_t errlen);

/* Sets an account's role; *changed false when it had that role already. */
ctl_status ctl_set_role(ctl_store *s, uint64_t customer_id, uint8_t role, bool *changed,
                        char *err, size_t errlen);

#endif
