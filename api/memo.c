/* memo.c - rendered answers by query and cache position (see memo.h). */
#include "memo.h"

#include <stdlib.h>
#include <string.h>

typedef struct memo_slot {
    char key[MEMO_KEY_MAX];
    size_t klen;
    uint64_t pos;
    char *body;
    size_t len;
    uint64_t used; /* the memo's clock when last read or written */
} memo_slot;

struct memo {
    memo_slot slot[MEMO_SLOTS];
    uint64_t clock;
};

memo *memo_new(void) { return calloc(1, sizeof(memo)); }

void memo_free(memo *m)
{
    if (!m)
        return;
    for (int i = 0; i < MEMO_SLOTS; i++)
        free(m->slot[i].body);
    free(m);
}

static memo_slot *find(memo *m, const char *key, size_t klen)
{
    for (int i = 0; i < MEMO_SLOTS; i++) {
        memo_slot *s = &m->slot[i];
        if (s->body && s->klen == klen && (klen == 0 || memcmp(s->key, key, klen) == 0))
            return s;
    }
    return NULL;
}

const char *memo_get(memo *m, const char *key, size_t klen, uint64_t pos, size_t *len)
{
    *len = 0;
    memo_slot *s = m && klen <= MEMO_KEY_MAX ? find(m, key, klen) : NULL;
    if (!s || s->pos != pos)
        return NULL;
    s->used = ++m->clock;
    *len = s->len;
    return s->body;
}

void memo_put(memo *m, const char *key, size_t klen, uint64_t pos, const char *body,
              size_t len)
{
    if (!m || klen > MEMO_KEY_MAX || len > MEMO_BODY_MAX)
        return;
    memo_slot *s = find(m, key, klen);
    if (!s) {
        s = &m->slot[0];
        for (int i = 1; i < MEMO_SLOTS; i++)
            if (m->slot[i].used < s->used)
                s = &m->slot[i];
    }
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    if (len)
        memcpy(copy, body, len);
    free(s->body);
    if (klen)
        memcpy(s->key, key, klen);
    s->klen = klen;
    s->pos = pos;
    s->body = copy;
    s->len = len;
    s->used = ++m->clock;
}
