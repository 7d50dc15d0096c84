/* rnd.c - random bytes in chunks (see rnd.h). */
#include "rnd.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define RND_CHUNK 4096

static _Thread_local struct {
    unsigned char buf[RND_CHUNK];
    size_t used; /* bytes of buf handed out; starts "all used" */
    int filled;
} rnd;

void rnd_bytes(void *out, size_t n)
{
    if (n > RND_CHUNK / 4) {
        if (RAND_bytes(out, (int)n) != 1)
            abort();
        return;
    }
    if (!rnd.filled || RND_CHUNK - rnd.used < n) {
        if (RAND_bytes(rnd.buf, RND_CHUNK) != 1)
            abort();
        rnd.used = 0;
        rnd.filled = 1;
    }
    memcpy(out, rnd.buf + rnd.used, n);
    memset(rnd.buf + rnd.used, 0, n); /* not kept once given */
    rnd.used += n;
}
