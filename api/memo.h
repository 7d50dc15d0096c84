/* memo.h - a few rendered answers, kept per event-loop thread with the
 * cache position they were rendered at.
 *
 * An answer assembled from many cache records (the catalogue list: 53
 * watches, 26 kB) depends on nothing but the query and the cache's state,
 * and the cache's state changes only when its applied position does. So a
 * body rendered at position P for a query is the answer to that query for
 * as long as the cache stays at P. A memo holds MEMO_SLOTS such bodies; a
 * lookup with another position misses. One thread's: no locks.
 */
#ifndef WS_MEMO_H
#define WS_MEMO_H

#include <stddef.h>
#include <stdint.h>

#define MEMO_SLOTS 8
#define MEMO_KEY_MAX 256   /* longer keys are not kept */
#define MEMO_BODY_MAX (1u << 20)

typedef struct memo memo;

memo *memo_new(void);
void memo_free(memo *m);

/* The body kept for key at position pos, or NULL (*len then 0). The
 * pointer stays valid until the next memo_put on m. */
const char *memo_get(memo *m, const char *key, size_t klen, uint64_t pos, size_t *len);

/* Keeps a copy of body for key at pos, replacing the key's older body or
 * the least recently used one. Silently keeps nothing when the key or body
 * is too large or memory is short. */
void memo_put(memo *m, const char *key, size_t klen, uint64_t pos, const char *body,
              size_t len);

#endif
