/* state.h - the writer's state: what the deciders need, folded from events.
 *
 * Owns: stock and price per watch, each order's status, total and lines,
 * accounts (role, e-mail taken, whether they have a password; never the
 * hash), payment provider events seen, refresh
 * tokens, and the idempotency keys of accepted commands. Folding the same
 * events always gives the same state; st_digest() proves it. Snapshots
 * (st_save/st_load) let a writer start without re-reading the whole log.
 *
 * E-mails are held only as a keyed hash (HMAC-SHA256 of the normalised
 * address with the state's key, first 16 bytes), never as text.
 */
#ifndef WS_STATE_H
#define WS_STATE_H

#include "event.h"
#include "ht.h"

#define ST_MAX_ID (1ull << 31) /* order and customer ids stay below this */

typedef struct st_watch {
    uint8_t id[16];
    int64_t price;
    int64_t stock;
    char currency[4];
} st_watch;

typedef struct st_line {
    uint32_t watch; /* index into watches */
    int32_t qty;
} st_line;

typedef struct st_order {
    uint64_t customer_id; /* 0: guest */
    int64_t total;
    uint64_t line_off;    /* into lines */
    uint16_t n_lines;
    uint8_t exists;
    uint8_t status;       /* EV_order_status_* */
    uint8_t paid;
    char currency[4];
} st_order;

typedef struct st_customer {
    uint8_t exists;
    uint8_t role;         /* EV_role_* */
    uint8_t has_password; /* registered with a hash, or given one since */
} st_customer;

typedef struct st_idem {
    uint8_t key[16]; /* digest of the idempotency key */
    uint8_t fp[16];
    uint64_t first_pos, last_pos;
    uint64_t result_id; /* order or customer id the command made, or 0 */
    int64_t total;
    uint64_t recorded_us;
} st_idem;

typedef struct st_state {
    st_watch *watches;
    size_t n_watches, cap_watches;
    ht watch_ix; /* watch id -> index */

    st_order *orders; /* indexed by order id */
    uint64_t cap_orders, max_order_id;
    st_line *lines;
    uint64_t n_lines, cap_lines;

    st_customer *customers; /* indexed by customer id */
    uint64_t cap_customers, max_customer_id;
    ht emails;   /* keyed e-mail hash -> customer id */
    ht payments; /* provider event id digest -> 1 */
    ht tokens;   /* refresh token digest -> customer id | ST_TOKEN_REVOKED */

    st_idem *idem;
    size_t n_idem, cap_idem;
    ht idem_ix; /* idempotency key digest -> index into idem */
    int64_t open_idem; /* the record the last event extended, or -1 */
    char open_cause[EV_MAX_ID_STR]; /* that event's causation id */
    uint32_t open_cause_len;

    uint64_t next_pos;      /* every event with position < next_pos folded */
    uint8_t last_hash[32];  /* hash of the last folded record */
    uint8_t email_key[32];
} st_state;

#define ST_TOKEN_REVOKED (1ull << 63)

/* A fresh, empty state whose e-mail hashes use `email_key` (32 bytes). */
int st_init(st_state *s, const uint8_t email_key[32]);
void st_free(st_state *s);

/* Folds one event (decoded from the log, or just decided: env.pos must be
 * its position). Unknown types only advance next_pos. Returns 0, or EV_ERANGE
 * for an event that contradicts the state (it is then not applied). */
int st_apply(st_state *s, const ev_event *ev);

/* Look-ups. */
st_watch *st_watch_get(const st_state *s, const uint8_t id[16]);
const st_order *st_order_get(const st_state *s, uint64_t order_id);
const st_customer *st_customer_get(const st_state *s, uint64_t customer_id);
bool st_email_taken(const st_state *s, ev_str normalised, uint64_t *customer_id);
const st_idem *st_idem_get(const st_state *s, ev_str key);
bool st_payment_seen(const st_state *s, ev_str provider_event_id);
/* Customer id of a refresh token (by its hex digest); *revoked set. */
bool st_token_get(const st_state *s, ev_str token_hash, uint64_t *customer_id,
                  bool *revoked);

/* 16-byte digest of a string (SHA-256, truncated): keys for the tables. */
void st_key_of(ev_str s, uint8_t out[16]);
void st_email_key(const st_state *s, ev_str normalised, uint8_t out[16]);

/* A digest of the whole state, independent of hash-table layout. */
void st_digest(const st_state *s, uint8_t out[32]);

/* Snapshots: written atomically (temporary file, fsync, rename); a snapshot
 * whose checksum, version or e-mail key does not match is refused with
 * EV_EFORMAT, and the caller folds the log from the start instead. */
int st_save(const st_state *s, const char *path);
int st_load(st_state *s, const char *path);

#endif
