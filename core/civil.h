/* civil.h - calendar arithmetic for UTC times.
 *
 * Owns: turning a count of days since 1970-01-01 into a date of the
 * proleptic Gregorian calendar, and writing a time in microseconds since
 * 1970 as RFC 3339 UTC with milliseconds ("2026-02-18T05:45:06.123Z"), the
 * form the API's JSON uses. UTC only, no leap seconds: the same answers as
 * gmtime_r. No allocation, no locale, no errors (every uint64_t input has
 * an answer).
 */
#ifndef WS_CIVIL_H
#define WS_CIVIL_H

#include <stddef.h>
#include <stdint.h>

/* The longest civil_rfc3339_ms output: a 6-digit year (UINT64_MAX
 * microseconds is in year 586912) and 20 more characters. */
#define CIVIL_RFC3339_MAX 32

/* The date `days` days after 1970-01-01: *year (1970 or later), *month
 * (1-12), *mday (1-31). */
void civil_from_days(uint64_t days, uint64_t *year, unsigned *month, unsigned *mday);

/* Writes `us` (microseconds since 1970, UTC) as "YYYY-MM-DDTHH:MM:SS.mmmZ"
 * into out (the year has at least four digits; no NUL) and returns the
 * length written (24 up to year 9999). The milliseconds are truncated. */
size_t civil_rfc3339_ms(uint64_t us, char out[CIVIL_RFC3339_MAX]);

#endif
