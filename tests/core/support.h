/* support.h - helpers shared by the core tests: temporary directories and
 * ready-made commands. */
#ifndef WS_TEST_SUPPORT_H
#define WS_TEST_SUPPORT_H

#include "core/decide.h"
#include "core/event.h"

/* Makes a fresh directory under $TMPDIR (or /tmp) and returns its path in
 * buf ("lmdb:" is not prepended). */
void ts_tmpdir(char *buf, size_t cap);
/* Removes a directory tree made by ts_tmpdir. */
void ts_rmtree(const char *path);
/* A fixed e-mail key for tests. */
extern const uint8_t ts_email_key[32];
/* A command skeleton: kind, the system as actor, time now_us. */
dec_cmd ts_cmd(dec_kind kind, uint64_t now_us);

#endif
