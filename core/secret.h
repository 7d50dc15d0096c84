/* secret.h - reading the keys the services share (the e-mail index key,
 * later the token secrets) from files that hold them as hex digits.
 *
 * Errors name the file, never its contents. */
#ifndef WS_SECRET_H
#define WS_SECRET_H

#include <stddef.h>
#include <stdint.h>

/* Reads exactly 2*n hex digits (surrounding white space allowed) from the
 * file at `path` into out. `what` names the key in the error ("e-mail key").
 * 0, or -1 with a sentence in err. */
int secret_read_hex(const char *path, const char *what, uint8_t *out, size_t n, char *err,
                    size_t errlen);

#endif
