/* ratelimit.c - token buckets (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 16
#define SLOTS 1024 /* hash chains per stripe */

typedef struct bucket {
    struct bucket *next;
    double tokens;
    uint64_t at_ms; /* when tokens was computed */
    size_t klen;
    char key[];
} bucket;

typedef struct stripe {
    pthread_mutex_t mu;
    bucket *slot[SLOTS];
    size_t n;
} stripe;

struct rl_table {
    size_t max_per_stripe;
    stripe s[STRIPES];
};

static uint64_t hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
    return h;
}

rl_table *rl_new(size_t max_keys)
{
    rl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->max_per_stripe = max_keys / STRIPES ? max_keys / STRIPES : 1;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&t->s[i].mu, NULL);
    return t;
}

void rl_free(rl_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < STRIPES; i++) {
        for (int j = 0; j < SLOTS; j++)
            for (bucket *b = t->s[i].slot[j], *n; b; b = n) {
                n = b->next;
                free(b);
            }
        pthread_mutex_destroy(&t->s[i].mu);
    }
    free(t);
}

static void refill(bucket *b, unsigned limit, unsigned window_s, uint64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->tokens += (double)(now_ms - b->at_ms) * limit / (window_s * 1000.0);
        if (b->tokens > limit)
            b->tokens = limit;
    }
    b->at_ms = now_ms;
}

/* Drops full buckets (their clients are idle); if none, the stalest. */
static void sweep(stripe *s, unsigned limit, unsigned window_s, uint64_t now_ms)
{
    bucket **oldest = NULL;
    for (int j = 0; j < SLOTS; j++)
        for (bucket **pp = &s->slot[j]; *pp;) {
            bucket *b = *pp;
            refill(b, limit, window_s, now_ms);
            if (b->tokens >= limit) {
                *pp = b->next;
                free(b);
                s->n--;
                continue;
            }
            if (!oldest || b->at_ms < (*oldest)->at_ms)
                oldest = pp;
            pp = &b->next;
        }
    if (oldest && s->n > 0) {
        bucket *b = *oldest;
        *oldest = b->next;
        free(b);
        s->n--;
    }
}

rl_result rl_take(rl_table *t, const char *key, size_t klen, unsigned limit, unsigned window_s,
                  uint64_t now_ms)
{
    rl_result r = {true, limit, limit, 0, 0};
    if (!limit || !window_s)
        return r;
    uint64_t h = hash(key, klen);
    stripe *s = &t->s[h % STRIPES];
    pthread_mutex_lock(&s->mu);
    bucket **slot = &s->slot[(h / STRIPES) % SLOTS], *b = *slot;
    while (b && !(b->klen == klen && memcmp(b->key, key, klen) == 0))
        b = b->next;
    if (!b) {
        if (s->n >= t->max_per_stripe)
            sweep(s, limit, window_s, now_ms);
        b = malloc(sizeof *b + klen);
        if (!b) { /* out of memory: let the request through */
            pthread_mutex_unlock(&s->mu);
            return r;
        }
        b->tokens = limit;
        b->at_ms = now_ms;
        b->klen = klen;
        memcpy(b->key, key, klen);
        b->next = *slot;
        *slot = b;
        s->n++;
    }
    refill(b, limit, window_s, now_ms);
    double per_token_ms = window_s * 1000.0 / limit;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        r.allowed = false;
        r.retry_after_s = (unsigned)(((1.0 - b->tokens) * per_token_ms + 999) / 1000);
        if (!r.retry_after_s)
            r.retry_after_s = 1;
    }
    r.remaining = (unsigned)b->tokens;
    r.reset_s = (unsigned)(((limit - b->tokens) * per_token_ms + 999) / 1000);
    pthread_mutex_unlock(&s->mu);
    return r;
}

size_t rl_size(rl_table *t)
{
    size_t n = 0;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&t->s[i].mu);
        n += t->s[i].n;
        pthread_mutex_unlock(&t->s[i].mu);
    }
    return n;
}
