/* ht.h - an open-addressing hash table from 16-byte keys to 64-bit values.
 *
 * Owns its slot array. Keys are UUIDs or truncated digests (already well
 * spread); linear probing with backward-shift deletion, so no tombstones.
 */
#ifndef WS_HT_H
#define WS_HT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ht_slot {
    uint8_t key[16];
    uint64_t val;
} ht_slot;

typedef struct ht {
    ht_slot *slots;
    uint8_t *used;
    size_t cap; /* a power of two, or 0 */
    size_t len;
} ht;

void ht_init(ht *t);
void ht_free(ht *t);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int ht_put(ht *t, const uint8_t key[16], uint64_t val);
bool ht_get(const ht *t, const uint8_t key[16], uint64_t *val);
bool ht_del(ht *t, const uint8_t key[16]);
/* Iteration: start with *it = 0; returns false at the end. */
bool ht_next(const ht *t, size_t *it, const uint8_t **key, uint64_t *val);

#endif
