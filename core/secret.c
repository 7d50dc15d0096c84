/* secret.c - keys from hex files (see secret.h). */
#include "secret.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int hex_val(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int secret_read_hex(const char *path, const char *what, uint8_t *out, size_t n, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the %s file %s (%zu hex digits; ops/run.sh makes one)",
                 what, path, 2 * n);
        return -1;
    }
    char text[1024];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    size_t i = 0;
    for (; i < n; i++) {
        int hi = hex_val(p[2 * i]), lo = hi < 0 ? -1 : hex_val(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            break;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    const char *rest = p + 2 * i;
    while (i == n && isspace((unsigned char)*rest))
        rest++;
    if (i != n || *rest) {
        memset(out, 0, n);
        snprintf(err, errlen, "the %s file %s must hold %zu hex digits", what, path, 2 * n);
        return -1;
    }
    return 0;
}
