/* test_b64.c - api/b64.c: the RFC 4648 vectors without padding, both
 * alphabets, and the strict decoder's refusals. */
#include <criterion/criterion.h>

#include <string.h>

#include "api/b64.h"

Test(b64, rfc4648_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char buf[16];
        uint8_t back[16];
        size_t n;
        cr_assert_eq(b64_encode(B64_STD, (const uint8_t *)in[i], strlen(in[i]), buf, sizeof buf),
                     0);
        cr_assert_str_eq(buf, out[i]);
        cr_assert_eq(b64_encoded_len(strlen(in[i])), strlen(out[i]));
        cr_assert_eq(b64_decode(B64_STD, out[i], strlen(out[i]), back, sizeof back, &n), 0);
        cr_assert_eq(n, strlen(in[i]));
        cr_assert_arr_eq(back, in[i], n);
    }
}

Test(b64, alphabets)
{
    const uint8_t v[] = {0xfb, 0xff, 0xbf};
    char buf[8];
    uint8_t back[4];
    size_t n;
    cr_assert_eq(b64_encode(B64_STD, v, 3, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "+/+/");
    cr_assert_eq(b64_encode(B64_URL, v, 3, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "-_-_");
    cr_assert_eq(b64_decode(B64_URL, "-_-_", 4, back, sizeof back, &n), 0);
    cr_assert_arr_eq(back, v, 3);
    cr_assert_eq(b64_decode(B64_URL, "+/+/", 4, back, sizeof back, &n), -1);
    cr_assert_eq(b64_decode(B64_STD, "-_-_", 4, back, sizeof back, &n), -1);
}

Test(b64, strict_decoding)
{
    uint8_t out[16];
    size_t n;
    const char *bad[] = {"Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm 9v", "Zm9v\n", "Zm\0v"};
    const size_t len[] = {4, 4, 1, 5, 2, 3, 5, 5, 4};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(b64_decode(B64_STD, bad[i], len[i], out, sizeof out, &n), -1, "%zu", i);
    /* "Zh" and "Zm9" carry stray low bits; "Zg" and "Zm8" are the canonical texts. */
    cr_assert_eq(b64_decode(B64_STD, "Zg", 2, out, sizeof out, &n), 0);
    cr_assert_eq(b64_decode(B64_STD, "Zm8", 3, out, sizeof out, &n), 0);
}

Test(b64, buffers)
{
    char small[4];
    cr_assert_eq(b64_encode(B64_STD, (const uint8_t *)"foo", 3, small, sizeof small), -1);
    cr_assert_str_empty(small);
    uint8_t out[2];
    size_t n;
    cr_assert_eq(b64_decode(B64_STD, "Zm9v", 4, out, sizeof out, &n), -1);
    cr_assert_eq(b64_decoded_max(4), 3);
    cr_assert_eq(b64_decoded_max(6), 4);
    cr_assert_eq(b64_decoded_max(7), 5);
}
