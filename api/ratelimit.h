/* ratelimit.h - token buckets per client address and per user.
 *
 * Owns the buckets: one per key (an address, "user:<id>", with a class
 * prefix such as "auth:" for the stricter login limit), each holding up to
 * `limit` tokens refilled evenly over `window_s` seconds. Safe from every
 * loop thread (striped locks). Memory is bounded: past `max_keys`, buckets
 * that have refilled completely (idle clients) are dropped first, and
 * when none has, the oldest.
 */
#ifndef WS_RATELIMIT_H
#define WS_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rl_table rl_table;

typedef struct rl_result {
    bool allowed;
    unsigned limit;
    unsigned remaining;     /* whole tokens left after this request */
    unsigned reset_s;       /* until the bucket is full again */
    unsigned retry_after_s; /* when refused: until one token is back */
} rl_result;

rl_table *rl_new(size_t max_keys);
void rl_free(rl_table *t);

/* Takes one token from key's bucket (made full on first use). */
rl_result rl_take(rl_table *t, const char *key, size_t klen, unsigned limit, unsigned window_s,
                  uint64_t now_ms);

/* Buckets held (tests). */
size_t rl_size(rl_table *t);

#endif
