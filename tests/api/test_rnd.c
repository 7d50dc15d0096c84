/* test_rnd.c - api/rnd.c: draws of every size across the buffer's
 * refills are never repeated and look random (each bit set about half the
 * time); large draws bypass the buffer. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/rnd.h"

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

Test(rnd, sixteen_byte_draws_never_repeat_across_refills)
{
    enum { N = 20000 }; /* 320 kB: about 80 refills */
    uint8_t(*ids)[16] = malloc(N * 16);
    cr_assert_not_null(ids);
    for (int i = 0; i < N; i++)
        rnd_bytes(ids[i], 16);
    qsort(ids, N, 16, cmp16);
    for (int i = 1; i < N; i++)
        cr_assert(memcmp(ids[i - 1], ids[i], 16) != 0, "draw repeated");
    /* Each of the 128 bit positions is set in about half the draws. */
    for (int bit = 0; bit < 128; bit++) {
        int set = 0;
        for (int i = 0; i < N; i++)
            set += (ids[i][bit / 8] >> (bit % 8)) & 1;
        cr_assert(set > N / 2 - N / 20 && set < N / 2 + N / 20, "bit %d set %d of %d", bit,
                  set, N);
    }
    free(ids);
}

Test(rnd, every_size_is_filled_whole)
{
    /* Sizes that straddle the buffer's end, and ones beyond a quarter of
     * it that go to OpenSSL directly. */
    for (size_t n = 1; n <= 3000; n += 7) {
        uint8_t a[3000], b[3000];
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        rnd_bytes(a, n);
        rnd_bytes(b, n);
        cr_assert(memcmp(a, b, n) != 0 || n < 4, "two draws of %zu bytes equal", n);
        size_t zero = 0;
        for (size_t i = 0; i < n; i++)
            zero += a[i] == 0;
        cr_assert(zero <= n / 64 + 3, "%zu of %zu bytes zero: not filled", zero, n);
        cr_assert_eq(a[n], 0, "wrote past the end");
    }
}

static void *draw(void *arg)
{
    uint8_t(*ids)[16] = arg;
    for (int i = 0; i < 1000; i++)
        rnd_bytes(ids[i], 16);
    return NULL;
}

Test(rnd, threads_draw_distinct_bytes)
{
    static uint8_t ids[4000][16];
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, draw, ids + 1000 * t);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    qsort(ids, 4000, 16, cmp16);
    for (int i = 1; i < 4000; i++)
        cr_assert(memcmp(ids[i - 1], ids[i], 16) != 0, "two threads drew the same bytes");
}
