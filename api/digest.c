/* digest.c - SHA-256 as hex (see digest.h). */
#include "digest.h"

#include <openssl/evp.h>
#include <stdint.h>

void digest_sha256_hex(const void *p, size_t n, char out[65])
{
    static const char d[] = "0123456789abcdef";
    uint8_t h[32];
    unsigned hn = 0;
    EVP_Digest(p, n, h, &hn, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[64] = 0;
}
