/* b64.c - strict unpadded base64 and base64url (see b64.h). */
#include "b64.h"

static const char STD_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n) { return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0); }

size_t b64_decoded_max(size_t n) { return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0); }

/* The 6-bit value of c in alphabet a, or -1. */
static int sextet(b64_alphabet a, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (a == B64_STD)
        return c == '+' ? 62 : c == '/' ? 63 : -1;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int b64_encode(b64_alphabet a, const uint8_t *in, size_t n, char *out, size_t cap)
{
    const char *chars = a == B64_STD ? STD_CHARS : URL_CHARS;
    size_t need = b64_encoded_len(n);
    if (cap == 0)
        return -1;
    if (need >= cap) {
        out[0] = '\0';
        return -1;
    }
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = chars[v >> 18 & 63];
        out[o++] = chars[v >> 12 & 63];
        out[o++] = chars[v >> 6 & 63];
        out[o++] = chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = chars[v >> 18 & 63];
        out[o++] = chars[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = chars[v >> 18 & 63];
        out[o++] = chars[v >> 12 & 63];
        out[o++] = chars[v >> 6 & 63];
    }
    out[o] = '\0';
    return 0;
}

int b64_decode(b64_alphabet a, const char *text, size_t n, uint8_t *out, size_t cap,
               size_t *outlen)
{
    *outlen = 0;
    if (n % 4 == 1 || b64_decoded_max(n) > cap)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int s = sextet(a, (unsigned char)text[i]);
        if (s < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)s) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Left-over bits (2 or 4) must be zero: one text per value. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    *outlen = o;
    return 0;
}
