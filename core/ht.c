/* ht.c - open-addressing hash table (see ht.h). */
#include "ht.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const ht *t, const uint8_t key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    /* Every key bit reaches every slot bit (murmur3's 64-bit finaliser), so
     * ids that differ only in a few bytes, like converted legacy ids, still
     * spread over the table. */
    uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull + 0x7f4a7c159e3779b9ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (size_t)h & (t->cap - 1);
}

void ht_init(ht *t) { memset(t, 0, sizeof *t); }

void ht_free(ht *t)
{
    free(t->slots);
    free(t->used);
    memset(t, 0, sizeof *t);
}

static int grow(ht *t)
{
    ht n = {0};
    n.cap = t->cap ? t->cap * 2 : 64;
    n.slots = malloc(n.cap * sizeof *n.slots);
    n.used = calloc(n.cap, 1);
    if (!n.slots || !n.used) {
        free(n.slots);
        free(n.used);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->used[i])
            ht_put(&n, t->slots[i].key, t->slots[i].val);
    ht_free(t);
    *t = n;
    return 0;
}

int ht_put(ht *t, const uint8_t key[16], uint64_t val)
{
    if ((t->len + 1) * 4 > t->cap * 3 && grow(t) != 0)
        return -1;
    size_t i = slot_of(t, key);
    while (t->used[i]) {
        if (memcmp(t->slots[i].key, key, 16) == 0) {
            t->slots[i].val = val;
            return 0;
        }
        i = (i + 1) & (t->cap - 1);
    }
    memcpy(t->slots[i].key, key, 16);
    t->slots[i].val = val;
    t->used[i] = 1;
    t->len++;
    return 0;
}

static bool find(const ht *t, const uint8_t key[16], size_t *at)
{
    if (!t->cap)
        return false;
    size_t i = slot_of(t, key);
    while (t->used[i]) {
        if (memcmp(t->slots[i].key, key, 16) == 0) {
            *at = i;
            return true;
        }
        i = (i + 1) & (t->cap - 1);
    }
    return false;
}

bool ht_get(const ht *t, const uint8_t key[16], uint64_t *val)
{
    size_t i;
    if (!find(t, key, &i))
        return false;
    if (val)
        *val = t->slots[i].val;
    return true;
}

bool ht_del(ht *t, const uint8_t key[16])
{
    size_t i;
    if (!find(t, key, &i))
        return false;
    size_t mask = t->cap - 1, j = i;
    t->used[i] = 0;
    /* Shift back the entries of the cluster that probe past the hole. */
    for (;;) {
        j = (j + 1) & mask;
        if (!t->used[j])
            break;
        size_t home = slot_of(t, t->slots[j].key);
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        t->slots[i] = t->slots[j];
        t->used[i] = 1;
        t->used[j] = 0;
        i = j;
    }
    t->len--;
    return true;
}

bool ht_next(const ht *t, size_t *it, const uint8_t **key, uint64_t *val)
{
    for (size_t i = *it; i < t->cap; i++)
        if (t->used[i]) {
            *key = t->slots[i].key;
            *val = t->slots[i].val;
            *it = i + 1;
            return true;
        }
    *it = t->cap;
    return false;
}
