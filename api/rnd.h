/* rnd.h - random bytes for the request path, from OpenSSL's DRBG in chunks.
 *
 * RAND_bytes costs about as much per call for 16 bytes as for 4 kB (locks,
 * the DRBG's bookkeeping); under load it was 8% of the API's CPU, called
 * once or twice per request (correlation ids, order tokens). rnd_bytes
 * hands out a per-thread buffer refilled 4 kB at a time. What it gives is
 * OpenSSL's output unchanged, fit for secrets; a byte is never handed out
 * twice.
 */
#ifndef WS_RND_H
#define WS_RND_H

#include <stddef.h>

/* Fills out with n random bytes (aborts when OpenSSL has no randomness:
 * nothing safe could follow). */
void rnd_bytes(void *out, size_t n);

#endif
