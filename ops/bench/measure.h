/* measure.h - what the benchmarks share: clocks, the load average, number
 * formatting, progress lines, a fast PRNG, a log scan that counts,
 * percentiles and another process's CPU time. */
#ifndef WS_BENCH_MEASURE_H
#define WS_BENCH_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

double bm_now_s(void);  /* monotonic seconds */
double bm_cpu_s(void);  /* this thread's CPU seconds */
void bm_sleep_until(double t); /* sleeps until bm_now_s() >= t */
double bm_loadavg(void); /* 1-minute load average, -1 if unknown */
/* x as "1.23M", "45.6k" or "789" in buf. */
const char *bm_human(double x, char *buf, size_t cap);
/* A progress line on standard error ("  .. <text>"). */
void bm_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* xorshift64*: the next number of the sequence in *s. */
uint64_t bm_rnd(uint64_t *s);
/* qsort comparator for doubles. */
int bm_cmp_d(const void *a, const void *b);
/* log_scan callback: ud is uint64_t[2] += {records, bytes}. */
int bm_count_bytes(void *ud, const log_rec *r);
/* The p-th percentile (0 < p <= 1, nearest rank) of v[0..n), which it
 * sorts; 0 when n is 0. */
double bm_percentile(double *v, size_t n, double p);
/* User + system CPU seconds of process pid (from /proc), -1 if unknown. */
double bm_proc_cpu_s(long pid);

#endif
