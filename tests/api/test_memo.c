/* test_memo.c - api/memo.c: a body is returned only for its key at its
 * position; a key's newer body replaces its older one; the least recently
 * used slot goes first; keys and bodies over the limits are not kept. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "api/memo.h"

Test(memo, a_body_for_its_key_at_its_position_only)
{
    memo *m = memo_new();
    size_t n;
    cr_assert_null(memo_get(m, "limit=12", 8, 5, &n));
    memo_put(m, "limit=12", 8, 5, "[1]", 3);
    const char *b = memo_get(m, "limit=12", 8, 5, &n);
    cr_assert_not_null(b);
    cr_assert_eq(n, 3);
    cr_assert(!memcmp(b, "[1]", 3));
    cr_assert_null(memo_get(m, "limit=12", 8, 6, &n), "the cache moved on: a miss");
    cr_assert_eq(n, 0);
    cr_assert_null(memo_get(m, "limit=1", 7, 5, &n), "another key: a miss");
    memo_put(m, "limit=12", 8, 6, "[2,3]", 5);
    b = memo_get(m, "limit=12", 8, 6, &n);
    cr_assert(b && n == 5 && !memcmp(b, "[2,3]", 5), "the newer body replaced the older");
    cr_assert_null(memo_get(m, "limit=12", 8, 5, &n));
    memo_put(m, NULL, 0, 6, "[]", 2); /* h2o's empty query has no base */
    cr_assert_not_null(memo_get(m, NULL, 0, 6, &n), "the empty query is a key too");
    cr_assert_eq(n, 2);
    memo_free(m);
}

Test(memo, the_least_recently_used_slot_goes_first)
{
    memo *m = memo_new();
    char key[16];
    size_t n;
    for (int i = 0; i < MEMO_SLOTS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        memo_put(m, key, strlen(key), 1, key, strlen(key));
    }
    cr_assert_not_null(memo_get(m, "k0", 2, 1, &n)); /* k1 is now the oldest */
    memo_put(m, "new", 3, 1, "x", 1);
    cr_assert_not_null(memo_get(m, "k0", 2, 1, &n));
    cr_assert_null(memo_get(m, "k1", 2, 1, &n), "the least recently used was replaced");
    for (int i = 2; i < MEMO_SLOTS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_not_null(memo_get(m, key, strlen(key), 1, &n), "%s kept", key);
    }
    memo_free(m);
}

Test(memo, oversized_keys_and_bodies_are_not_kept)
{
    memo *m = memo_new();
    static char big[MEMO_BODY_MAX + 1];
    char key[MEMO_KEY_MAX + 1];
    memset(key, 'a', sizeof key);
    size_t n;
    memo_put(m, key, sizeof key, 1, "x", 1);
    cr_assert_null(memo_get(m, key, sizeof key, 1, &n));
    memo_put(m, "k", 1, 1, big, sizeof big);
    cr_assert_null(memo_get(m, "k", 1, 1, &n));
    memo_put(m, "k", 1, 1, big, MEMO_BODY_MAX);
    cr_assert_not_null(memo_get(m, "k", 1, 1, &n));
    cr_assert_eq(n, MEMO_BODY_MAX);
    memo_free(m);
    memo_free(NULL);
}
