/* decide.h - the domain deciders: state + command -> events, or a refusal.
 *
 * Pure: dec_decide() reads the state and the command and writes only into
 * the dec_out it is given; it never touches a clock, a random source or the
 * disk (times and ids arrive in the command). The writer appends the events
 * and folds them into the state with st_apply().
 *
 * Events in a dec_out borrow strings from the command and from the dec_out
 * itself; both must outlive their encoding.
 */
#ifndef WS_DECIDE_H
#define WS_DECIDE_H

#include "event.h"
#include "state.h"

#define DEC_MAX_EVENTS (EV_MAX_LINES + 2)
#define DEC_MAX_QTY 10000           /* per order line */
/* Money limits in minor units: the read models keep the old numeric(10,2)
 * columns, so no price or total may exceed 99,999,999.99. */
#define DEC_MAX_PRICE 9999999999LL
#define DEC_MAX_TOTAL 9999999999LL
#define DEC_MAX_STOCK 1000000000

typedef enum dec_kind {
    DEC_WATCH_ADD = 1,
    DEC_WATCH_UPDATE,
    DEC_STOCK_SET,
    DEC_STOCK_ADJUST,
    DEC_CUSTOMER_REGISTER,
    DEC_ROLE_SET,
    DEC_ORDER_PLACE,
    DEC_ORDER_SET_STATUS,
    DEC_ORDER_CANCEL,
    DEC_PAYMENT_INTENT,
    DEC_PAYMENT_SUCCEEDED,
    DEC_PAYMENT_FAILED,
    DEC_TOKEN_ISSUE,
    DEC_TOKEN_REVOKE,
    DEC_PASSWORD_SET,
} dec_kind;

typedef enum dec_reason {
    DEC_OK = 0,
    DEC_INVALID,        /* a field's value is not allowed: see field, index */
    DEC_FORBIDDEN,      /* the actor may not do this */
    DEC_NOT_FOUND,      /* watch, order, customer or token unknown: see field */
    DEC_EXISTS,         /* a watch or token with that id exists */
    DEC_EMAIL_TAKEN,
    DEC_OUT_OF_STOCK,   /* line `index`: only `detail` available */
    DEC_PRICE_CHANGED,  /* line `index`: the catalogue price is `detail` */
    DEC_BAD_TRANSITION, /* the order is in `status` */
    DEC_IDEM_MISMATCH,  /* the idempotency key was used for another command */
} dec_reason;
const char *dec_reason_code(dec_reason r); /* "out_of_stock", ... */

typedef struct dec_line_in {
    uint8_t watch_id[16];
    int64_t quantity;
    int64_t unit_price; /* minor units, as the client saw it */
    bool has_price;
} dec_line_in;

/* Watch fields for add and update (which of them an update sets: `changed`,
 * EV_WF_* bits). An empty optional string means null. */
typedef struct dec_watch_fields {
    uint8_t watch_id[16];
    uint32_t changed;
    ev_str watch_name, brand, model_code, description, image_url, category;
    int64_t price;
    ev_str currency; /* add only */
    bool set_stock;  /* add: initial stock; update: set stock too */
    int64_t stock;
} dec_watch_fields;

typedef struct dec_cmd {
    dec_kind kind;
    uint64_t now_us;        /* the command's time, from the writer */
    ev_str correlation;     /* from the request */
    ev_str causation;       /* the command's own id */
    ev_str actor;           /* e.g. "customer:42", "system", "guest" */
    uint64_t actor_customer;/* 0: not a customer */
    bool actor_system;      /* operators' tools and internal processes */
    ev_str idem_key;        /* .p NULL: none */
    uint8_t idem_fp[16];    /* digest of the request, set by the caller */
    union {
        dec_watch_fields watch;
        struct {
            uint8_t watch_id[16];
            int64_t quantity; /* set: the new stock; adjust: the change */
            uint8_t reason;   /* adjust: restock or correction */
            ev_str note;
        } stock;
        struct {
            ev_str email, full_name, phone, address, city, country;
            ev_str password_hash; /* .p NULL: an account without password */
        } reg;
        struct {
            uint64_t customer_id;
            uint8_t role;
        } role;
        struct {
            const dec_line_in *lines;
            uint32_t n_lines;
            ev_str currency;         /* .p NULL: the catalogue's */
            ev_str shipping_address; /* "" when absent */
            ev_str guest_token_hash; /* guest orders: digest of their token */
        } order;
        struct {
            uint64_t order_id;
            uint8_t status; /* set_status: the target */
            ev_str reason;  /* cancel */
        } status;
        struct {
            uint64_t order_id;
            ev_str provider, intent_id, provider_event_id, currency, reason;
            int64_t amount;
        } pay;
        struct {
            uint64_t customer_id;
            ev_str token_hash; /* hex SHA-256 of the refresh token */
            uint64_t expires_at;
            ev_str replaces; /* issue: the token it rotates */
            ev_str reason;   /* revoke */
        } token;
        /* A new password hash for an account that has a password: by the
         * system, or by the customer (after proving the password). */
        struct {
            uint64_t customer_id;
            ev_str password_hash; /* PHC string, 1 to 255 bytes */
            ev_str reason;        /* 1 to 20 bytes, e.g. "rehash" */
        } password;
    } u;
} dec_cmd;

typedef struct dec_out {
    dec_reason reason;
    const char *field;  /* refusal detail: the field concerned */
    const char *message;/* refusal detail: a sentence for people */
    uint32_t index;     /* the order line concerned */
    int64_t detail;     /* available stock, or catalogue price */
    uint8_t status;     /* the order's status (BAD_TRANSITION) */
    bool repeat;        /* an idempotent repeat: the first outcome again */
    bool noop;          /* accepted, nothing to record */
    uint64_t id;        /* the order or customer id concerned */
    int64_t total;      /* the order's total */
    uint64_t first_pos, last_pos; /* positions of the events (set by the writer) */
    size_t n_ev;
    ev_event ev[DEC_MAX_EVENTS];
    char streams[DEC_MAX_EVENTS][48];
    ev_line lines[EV_MAX_LINES];
    char email[256]; /* the normalised e-mail of a registration */
} dec_out;

/* Resets out's outcome to "accepted, no events" without touching its
 * event arrays (tens of kB that only n_ev of are ever read). */
void dec_out_clear(dec_out *out);

/* Decides `c` against `s` into `out` (which it resets first). */
dec_reason dec_decide(const st_state *s, const dec_cmd *c, dec_out *out);

/* Normalises an e-mail address (trim, lower case) into buf; returns its
 * length, or -1 if it is not a plausible address. */
int dec_normalise_email(ev_str in, char *buf, size_t cap);

#endif
