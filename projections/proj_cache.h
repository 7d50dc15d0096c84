/* proj_cache.h - the LMDB cache projection that the HTTP API reads from.
 *
 * Owns: the LMDB environment of a cache generation (data.mdb, lock.mdb in
 * ROOT/gen-NNNNNN, see cache_gen.h; the writer lock is ROOT/writer.lock, an
 * flock by the one live writer process), its notify file (notify: the
 * writer writes it after every commit, readers in other processes watch it
 * with inotify), and everything inside: per-watch records
 * with the pre-rendered watch JSON, the catalog's sort indexes and brand
 * counts, orders with their lines as placed, each customer's orders,
 * customers by id and by keyed e-mail hash, refresh tokens, counters for the
 * admin stats, and the applied log position.
 *
 * Writer side: a proj_sink (projections/proj.h). One LMDB write transaction
 * per batch; begin reads the stored position inside it, commit stores the
 * position after the batch in the same transaction, so the cache is
 * exactly-once: killed anywhere, it restarts from the position it stored.
 * Events below the stored position are skipped, unknown types are not
 * applied. Commits are not fsynced twice
 * (MDB_NOMETASYNC): a machine crash may lose the last commits but never
 * breaks the cache's consistency, and the projector then re-applies them.
 *
 * Reader side: proj_cache_reader, usable from any number of threads (each
 * call is its own read transaction) and processes. Two ownership rules:
 *   - get functions copy what they find into a caller-provided ev_buf (its
 *     previous contents are replaced); the ev_str fields of the returned
 *     struct point into that buffer and stay valid until the buffer is
 *     changed or freed.
 *   - iteration functions call a callback with structs whose strings point
 *     into the database map (JSON texts into a buffer of the call); they
 *     are valid only during that callback.
 *
 * Layout (named databases; integers in keys are big-endian so that byte
 * order is numeric order; values are records of fixed-width native integers
 * and length-prefixed strings, see proj_cache.c):
 *   meta      "layout" -> u32; "key_id" -> 16 bytes (identifies the e-mail
 *             key); "next_pos" -> u64 BE; "stats" -> the admin counters
 *   watch     watch id (16) -> watch record, its API JSON included but for
 *             the stock and updated_at, which readers splice in
 *   stock     watch id (16) -> stock and updated time (what a sale changes:
 *             a stock change rewrites 16 bytes, not the watch record)
 *   wsort     sort kind ('n' newest, 'p' price, 'a' name) | scope (0 all,
 *             1..6 a category, 0x10 len brand: a brand) | sort key
 *             (created_us+id, price+id, folded name 0x00 id) -> empty
 *   brand     scope (0 all, 1..6 category) | 0 (null brand) or 1 brand
 *             -> u64 count of watches
 *   order     order id (u64 BE) -> order record (fields and the lines as
 *             placed; readers render the order's JSON from them), appended
 *             (MDB_APPEND) as order ids grow
 *   corder    customer id (u64 BE) -> order ids (u64 BE), sorted
 *             duplicates (MDB_DUPSORT), appended as orders come
 *   customer  customer id (u64 BE) -> customer record (password hash too)
 *   email     HMAC-SHA256(e-mail key, normalised e-mail)[0..16] -> id
 *   token     refresh token hash (hex, as in the event) -> token record
 *
 * The catalog is served from the sort indexes: a query walks the index of
 * its sort order within the narrowest scope its filters allow (a brand, else
 * a category, else all), reads each watch's compact record and applies the
 * remaining filters (price range, stock, search) in memory; no query ever
 * sorts. The total of a query whose only filter is its scope comes from the
 * brand counts (the walk stops after the page); with other filters, counting
 * visits every entry of the scope: for 10,000 watches about 1 to 10 ms
 * (tests/projections/test_cache.c measures it).
 *
 * Errors are the negative PROJ_CACHE_E* codes; writer-side details come from
 * the sink's errmsg, open errors are written into err.
 */
#ifndef WS_PROJ_CACHE_H
#define WS_PROJ_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event.h"
#include "proj.h"

enum {
    PROJ_CACHE_OK = 0,
    PROJ_CACHE_EINVAL = -1,    /* bad argument, or a call out of order */
    PROJ_CACHE_EIO = -2,       /* LMDB or the file system failed */
    PROJ_CACHE_ELOCKED = -3,   /* another process is this cache's writer */
    PROJ_CACHE_ENOENT = -4,    /* no cache there (readers never create one) */
    PROJ_CACHE_ENOTFOUND = -5, /* a look-up found nothing */
    PROJ_CACHE_ETIMEDOUT = -6,
    PROJ_CACHE_ENOMEM = -7,
    PROJ_CACHE_ECORRUPT = -8,  /* a stored record does not parse */
    PROJ_CACHE_EFULL = -9,     /* the map is full (grown on the next batch) */
    PROJ_CACHE_EMISMATCH = -10,/* another layout version or e-mail key */
};
const char *proj_cache_strerror(int err);

/* Categories: codes 1..6 in API order; 0 none (null); 7 any other string. */
enum {
    PROJ_CACHE_CAT_ANY = -1, /* filters only: no category filter */
    PROJ_CACHE_CAT_NONE = 0,
    PROJ_CACHE_CAT_AUTOMATIC = 1,
    PROJ_CACHE_CAT_CHRONOGRAPH,
    PROJ_CACHE_CAT_DIVER,
    PROJ_CACHE_CAT_SPORT,
    PROJ_CACHE_CAT_CLASSIC,
    PROJ_CACHE_CAT_LUXURY,
    PROJ_CACHE_CAT_OTHER,
};
/* 1..6 for a known category name (case-insensitive), else 0. */
int proj_cache_category_code(ev_str name);
/* "automatic" ... "luxury" for 1..6, else NULL. */
const char *proj_cache_category_name(int code);

/* Case folding used for search and name order: ASCII, Latin-1, Latin
 * Extended-A, Greek and Cyrillic capitals to lower case, byte length
 * unchanged (out receives n bytes; it may equal in). Other bytes are copied.
 * Readers fold search text with this too (proj_cache_watches does). */
void proj_cache_fold(const char *in, size_t n, char *out);

/* ------------------------------------------------------------- writer */

/* Opens (creating it if needed, mkdir -p) the cache with root directory
 * `path` as its one writer and fills `out` with its sink. `email_key` (32 bytes) keys
 * the e-mail index; a cache built with another key, or by a build with
 * another layout, is refused (PROJ_CACHE_EMISMATCH: delete it and rebuild
 * from the log). A second writer is refused with PROJ_CACHE_ELOCKED, naming
 * the first's process id. */
int proj_cache_open_writer(const char *path, const uint8_t email_key[32],
                           proj_sink *out, char *err, size_t errlen);
/* Generations (cache_rebuild.h swaps a rebuilt cache in whole): a writer
 * and readers open ROOT's live generation. When a rebuild retires it, the
 * writer's next batch and each reader's next read transaction find the
 * mark and move to the live generation (a reader waits for its own read
 * transactions to end; its notify descriptors stay the same). A writer with
 * readers made by proj_cache_writer_reader cannot move and fails its
 * batches until it is reopened. */

/* A writer for a rebuild: fills the new generation in directory `gen_dir`
 * (cgen_create_next made it), with no lock and no sync per commit (each
 * commit only starts writing its pages out); proj_cache_sync makes it
 * durable before it is published. */
int proj_cache_open_builder(const char *gen_dir, const uint8_t email_key[32],
                            proj_sink *out, char *err, size_t errlen);
int proj_cache_sync(proj_sink *sink, char *err, size_t errlen);
/* Marks the generation in `gen_dir` retired and wakes its users. Its
 * environment must not be open in this process. */
int proj_cache_retire(const char *gen_dir, char *err, size_t errlen);

/* Aborts a batch in progress and closes. Close readers made with
 * proj_cache_writer_reader first. */
void proj_cache_close(proj_sink *sink);

/* Events the writer skipped because they contradict the cache (an update of
 * a watch, order, customer or token it does not have): 0 in a cache built
 * from the start of a well-formed log. */
uint64_t proj_cache_inconsistent(const proj_sink *sink);

/* ------------------------------------------------------------- reader */

typedef struct proj_cache_reader proj_cache_reader;

/* Opens an existing cache for reading (another process, or this one if it
 * has no writer on the same cache: LMDB allows one environment per process
 * and path; in the writer's process use proj_cache_writer_reader).
 * `email_key` may be NULL when e-mail look-ups are not needed; otherwise it
 * must be the writer's key (PROJ_CACHE_EMISMATCH). PROJ_CACHE_ENOENT: no
 * cache there yet. */
int proj_cache_open_reader(const char *path, const uint8_t email_key[32],
                           proj_cache_reader **out, char *err, size_t errlen);
/* A reader sharing the writer's environment, for the writer's process
 * (open and close it on the thread that owns the sink; use it from any). */
int proj_cache_writer_reader(proj_sink *sink, proj_cache_reader **out,
                             char *err, size_t errlen);
/* Releases the reader's map pages from this process's resident memory
 * (MADV_DONTNEED: they stay in the page cache, the next read maps them
 * again). A long-running reader calls it now and then so that what it once
 * read (every order placed, say) does not stay in its RSS. */
void proj_cache_release_pages(proj_cache_reader *r);
void proj_cache_reader_close(proj_cache_reader *r);

/* The position the cache has applied up to: every event with position <
 * *next_pos is in it (0 for an empty cache). */
int proj_cache_applied(proj_cache_reader *r, uint64_t *next_pos);

/* Blocks until the applied position is > pos (that is, the event at `pos`
 * is in the cache) or timeout_ms passes (PROJ_CACHE_ETIMEDOUT; < 0: no
 * timeout). Sleeps on inotify, never spins; any number of threads may wait
 * at once. */
int proj_cache_wait(proj_cache_reader *r, uint64_t pos, int timeout_ms);

/* For event loops: an fd that becomes readable when the cache may have
 * changed; call proj_cache_drain_notify after it fires (one loop thread). */
int proj_cache_notify_fd(proj_cache_reader *r);
void proj_cache_drain_notify(proj_cache_reader *r);

/* ---- watches ---- */

typedef struct proj_cache_watch {
    uint8_t watch_id[16];
    ev_str json; /* the API's watch object, exactly */
    /* The fields (.p NULL: null). Folded (lower-case) copies for search. */
    ev_str watch_name, brand, model_code, description, image_url, category;
    ev_str name_lc, brand_lc, model_lc, description_lc;
    int category_code; /* PROJ_CACHE_CAT_* */
    int64_t price;     /* minor units */
    int64_t stock;
    char currency[4];
    uint64_t created_us, updated_us;
} proj_cache_watch;

/* One watch by id. */
int proj_cache_get_watch(proj_cache_reader *r, const uint8_t id[16],
                         ev_buf *buf, proj_cache_watch *out);

typedef enum proj_cache_sort {
    PROJ_CACHE_NEWEST = 0, /* created_at descending, then watch_id descending */
    PROJ_CACHE_PRICE_ASC,  /* price, then watch_id (bytes) ascending */
    PROJ_CACHE_PRICE_DESC, /* price, then watch_id descending */
    PROJ_CACHE_NAME_AZ,    /* folded name, then watch_id ascending */
} proj_cache_sort;

typedef struct proj_cache_filter {
    int category;      /* PROJ_CACHE_CAT_ANY or 1..6; anything else matches
                          nothing */
    ev_str brand;      /* exact; .p NULL: any brand */
    int64_t min_price; /* minor units, inclusive; <= 0: no bound */
    int64_t max_price; /* minor units, inclusive; <= 0: no bound */
    bool in_stock;     /* stock > 0 only */
    ev_str search;     /* case-insensitive substring of name, brand, model
                          code or description; .n == 0: none */
} proj_cache_filter;
/* A filter that matches everything. */
proj_cache_filter proj_cache_filter_all(void);

/* Returns non-zero to stop the iteration. `w` is valid during the call. */
typedef int (*proj_cache_watch_fn)(void *ud, const proj_cache_watch *w);

/* The catalog: the watches matching `f` in order `sort`; skips the first
 * `skip` matches and calls fn for the next `limit` (0: all of them). With
 * `total` non-NULL the walk goes on to count every match into *total
 * (pagination); with NULL it stops after the page. Returns 0, an error, or
 * the non-zero value fn returned (then *total is not set). One read
 * transaction: the whole answer is from one committed state. */
int proj_cache_watches(proj_cache_reader *r, proj_cache_sort sort,
                       const proj_cache_filter *f, uint64_t skip,
                       uint64_t limit, proj_cache_watch_fn fn, void *ud,
                       uint64_t *total);

typedef struct proj_cache_brand {
    ev_str brand; /* .p NULL: the watches without a brand */
    uint64_t count;
} proj_cache_brand;

/* Brand counts over all watches (category PROJ_CACHE_CAT_ANY) or within a
 * category (1..6), sorted by count descending, then name (bytes; the null
 * brand last). *out is one malloc'd block (free(*out)), strings inside;
 * *n receives the number of brands. */
int proj_cache_brands(proj_cache_reader *r, int category,
                      proj_cache_brand **out, size_t *n);

/* ---- orders ---- */

enum {
    PROJ_CACHE_PAY_NONE = 0,
    PROJ_CACHE_PAY_INTENT,     /* payment.intent_created */
    PROJ_CACHE_PAY_SUCCEEDED,  /* payment.succeeded */
    PROJ_CACHE_PAY_MISMATCHED, /* payment.mismatched (last event) */
    PROJ_CACHE_PAY_FAILED,     /* payment.failed (last event) */
};

typedef struct proj_cache_order {
    uint64_t order_id;
    uint64_t customer_id; /* 0: a guest order */
    int64_t total;        /* minor units */
    char currency[4];
    int status;           /* EV_order_status_* */
    int payment;          /* PROJ_CACHE_PAY_* */
    uint64_t order_date_us, updated_us;
    ev_str shipping_address, payment_intent_id, payment_provider;
    ev_str guest_token_hash; /* as in order.placed; .p NULL: none */
    /* JSON, rendered by the get or iteration call: the order object
     * (API.md "An order"), the items array of GET /orders/:id and the items
     * array of /orders/my (money as numbers). */
    ev_str json, items_json, my_items_json;
    uint32_t n_lines;
    ev_str lines_; /* internal: read with proj_cache_order_line */
} proj_cache_order;

typedef struct proj_cache_line {
    uint64_t item_id; /* order_id * 100 + index */
    uint8_t watch_id[16];
    int64_t quantity, unit_price, subtotal; /* minor units */
    ev_str watch_name, brand, image_url;   /* as when the order was placed */
} proj_cache_line;

/* Line i (from 0) of an order; PROJ_CACHE_ENOTFOUND past the last. The
 * strings point where the order's do. */
int proj_cache_order_line(const proj_cache_order *o, uint32_t i,
                          proj_cache_line *out);

/* Appends `{...the order..., "items": [...]}`: with my_items the /orders/my
 * item shape (money as numbers), else the GET /orders/:id shape. */
int proj_cache_order_render(const proj_cache_order *o, bool my_items,
                            ev_buf *out);

/* One order by id. */
int proj_cache_get_order(proj_cache_reader *r, uint64_t order_id, ev_buf *buf,
                         proj_cache_order *out);

/* `o` is valid during the call; return non-zero to stop. */
typedef int (*proj_cache_order_fn)(void *ud, const proj_cache_order *o);

/* A customer's orders, newest (highest id) first, in one read transaction.
 * Returns 0, an error, or what fn returned. */
int proj_cache_customer_orders(proj_cache_reader *r, uint64_t customer_id,
                               proj_cache_order_fn fn, void *ud);

/* All orders newest first, those with id < before_id (0: from the newest),
 * with status `status` (EV_order_status_*, or -1 for any), skipping the
 * first `skip` matches; stops when fn returns non-zero. Stream a long list
 * in chunks by passing the last id seen as before_id. */
int proj_cache_orders(proj_cache_reader *r, int status, uint64_t before_id,
                      uint64_t skip, proj_cache_order_fn fn, void *ud);

/* ---- customers and tokens ---- */

typedef struct proj_cache_customer {
    uint64_t customer_id;
    int role; /* EV_role_*; ev_enum_name(EV_ENUMSET_role, role) names it */
    uint64_t created_us, updated_us;
    ev_str email, full_name, phone; /* .p NULL: none */
    ev_str password_hash;           /* .p NULL: an account without one */
} proj_cache_customer;

int proj_cache_get_customer(proj_cache_reader *r, uint64_t customer_id,
                            ev_buf *buf, proj_cache_customer *out);
/* By e-mail: normalised (trimmed, lower case; dec_normalise_email) and
 * looked up by its keyed hash. PROJ_CACHE_ENOTFOUND also for an address
 * that does not normalise; PROJ_CACHE_EINVAL for a reader without key. */
int proj_cache_customer_by_email(proj_cache_reader *r, ev_str email,
                                 ev_buf *buf, proj_cache_customer *out);

typedef struct proj_cache_token {
    uint64_t customer_id;
    uint64_t expires_at;  /* as in token.issued */
    uint64_t issued_us;   /* recorded time of token.issued */
    bool revoked;
    uint64_t revoked_us;  /* recorded time of token.revoked (0: not) */
    ev_str revoke_reason; /* "logout", "rotated", "admin"; .p NULL: not */
    ev_str replaces;      /* the token this one rotated; .p NULL: none */
    ev_str replaced_by;   /* the token issued to replace this one, if any */
} proj_cache_token;

/* A refresh token by its hash (hex SHA-256, as in the events). */
int proj_cache_get_token(proj_cache_reader *r, ev_str token_hash, ev_buf *buf,
                         proj_cache_token *out);

/* ---- counters and checks ---- */

#define PROJ_CACHE_LOW_STOCK 3 /* a watch with stock below this is low */

typedef struct proj_cache_stats {
    uint64_t watches, low_stock, customers, orders;
    uint64_t orders_by_status[EV_order_status_COUNT];
    int64_t revenue; /* minor units, over orders not cancelled (summed
                        across currencies: the store has one) */
} proj_cache_stats;
int proj_cache_get_stats(proj_cache_reader *r, proj_cache_stats *out);

/* SHA-256 over every key and value of every database, in a fixed order: two
 * caches holding the same thing have the same digest (tests, rebuild
 * checks). */
int proj_cache_digest(proj_cache_reader *r, uint8_t out[32]);

/* The e-mail index key of a normalised address (HMAC-SHA256 with `key`,
 * first 16 bytes: the same value as st_email_key with that key). */
void proj_cache_email_key(const uint8_t key[32], ev_str normalised,
                          uint8_t out[16]);

#endif
