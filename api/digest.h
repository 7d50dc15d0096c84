/* digest.h - SHA-256 as lower-case hex, for the hashes the API stores in
 * place of secrets (refresh tokens, order tokens). */
#ifndef WS_DIGEST_H
#define WS_DIGEST_H

#include <stddef.h>

/* out receives 64 hex digits and a NUL. */
void digest_sha256_hex(const void *p, size_t n, char out[65]);

#endif
