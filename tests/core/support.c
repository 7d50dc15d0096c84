/* support.c - helpers shared by the core tests. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const uint8_t ts_email_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

void ts_tmpdir(char *buf, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, cap, "%s/wstest.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf))
        abort();
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void ts_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

dec_cmd ts_cmd(dec_kind kind, uint64_t now_us)
{
    dec_cmd c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.now_us = now_us;
    c.correlation = EV_STR("test-correlation");
    c.causation = EV_STR("test-command");
    c.actor = EV_STR("system");
    c.actor_system = true;
    return c;
}
