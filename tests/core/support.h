/* support.h - helpers shared by the core tests: temporary directories and
 * ready-made commands. */
#ifndef WS_TEST_SUPPORT_H
#define WS_TEST_SUPPORT_H

#include "core/decide.h"
#include "core/event.h"
#include "core/writer.h"

/* A factor for the upper bounds of timing checks: the sanitizer build runs
 * several times slower (the real figures come from ops/bench). */
#ifdef __SANITIZE_ADDRESS__
#define TS_SLOW 10
#else
#define TS_SLOW 1
#endif

/* Makes a fresh directory under $TMPDIR (or /tmp) and returns its path in
 * buf ("lmdb:" is not prepended). */
void ts_tmpdir(char *buf, size_t cap);
/* Removes a directory tree made by ts_tmpdir. */
void ts_rmtree(const char *path);
/* A fixed e-mail key for tests. */
extern const uint8_t ts_email_key[32];
/* A command skeleton: kind, the system as actor, time now_us. */
dec_cmd ts_cmd(dec_kind kind, uint64_t now_us);

/* Watch number i's id (a fixed pattern, so tests can name watches). */
void ts_watch_id(unsigned i, uint8_t id[16]);
/* Appends about `events` events through the writer: first a catalogue of
 * n_watches watches (those not there yet), then orders of 1-3 lines, status
 * changes, cancellations and restocks, chosen with rand_r(seed); `step0`
 * spaces the commands' times. 0, or -1 if the writer failed. */
int ts_grow_log(wr_writer *w, unsigned events, unsigned *seed, unsigned step0,
                unsigned n_watches);

#endif
