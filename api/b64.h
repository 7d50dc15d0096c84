/* b64.h - base64 (RFC 4648 section 4) and base64url (section 5), unpadded.
 *
 * Owns nothing: pure functions over caller buffers. Encoding never writes
 * '=' padding. Decoding is strict, so one value has exactly one text: only
 * the alphabet's 64 characters (no padding, no white space), a length that
 * is not 1 modulo 4, and unused low bits of the last character zero.
 */
#ifndef WS_B64_H
#define WS_B64_H

#include <stddef.h>
#include <stdint.h>

typedef enum b64_alphabet {
    B64_STD, /* A-Z a-z 0-9 + / */
    B64_URL, /* A-Z a-z 0-9 - _ */
} b64_alphabet;

/* Characters that n bytes encode to (no terminating NUL counted). */
size_t b64_encoded_len(size_t n);
/* Bytes that n characters decode to at most. */
size_t b64_decoded_max(size_t n);

/* Writes the text of in[0..n) and a NUL into out (cap bytes). Returns 0, or
 * -1 when out is too small (out is then left empty if cap > 0). */
int b64_encode(b64_alphabet a, const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes text[0..n) into out (cap bytes); *outlen gets the byte count.
 * Returns 0, or -1 when the text is not strict unpadded base64 of this
 * alphabet or out is too small. */
int b64_decode(b64_alphabet a, const char *text, size_t n, uint8_t *out, size_t cap,
               size_t *outlen);

#endif
