/* test_civil.c - calendar arithmetic for UTC times (core/civil.c).
 *
 * Covers: known dates (the epoch, leap days, 2100 which is not leap, the
 * last millisecond of 9999), every day from 1970 to 9999 and a million
 * random times against gmtime_r + strftime, years past 9999, and the
 * truncation of microseconds to milliseconds.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/civil.h"

#define US 1000000ull
#define DAY_S 86400ull
/* 10000-01-01T00:00:00Z in seconds. */
#define Y10000_S 253402300800ull

/* What gmtime_r and strftime say about `us`, with ".mmmZ" appended. */
static size_t libc_rfc3339(uint64_t us, char *out, size_t cap)
{
    time_t s = (time_t)(us / US);
    struct tm tm;
    cr_assert_not_null(gmtime_r(&s, &tm), "gmtime_r(%lld)", (long long)s);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_gt(n, 0);
    n += (size_t)snprintf(out + n, cap - n, ".%03uZ", (unsigned)(us / 1000 % 1000));
    return n;
}

/* civil_rfc3339_ms(us) must equal libc's answer. */
static void expect_same(uint64_t us)
{
    char want[64], got[CIVIL_RFC3339_MAX + 1];
    size_t wn = libc_rfc3339(us, want, sizeof want);
    size_t gn = civil_rfc3339_ms(us, got);
    cr_assert_leq(gn, CIVIL_RFC3339_MAX);
    got[gn] = 0;
    cr_assert(gn == wn && memcmp(got, want, wn) == 0, "%llu us: civil %s, gmtime %s",
              (unsigned long long)us, got, want);
}

static void expect_str(uint64_t us, const char *want)
{
    char got[CIVIL_RFC3339_MAX + 1];
    size_t n = civil_rfc3339_ms(us, got);
    got[n] = 0;
    cr_assert_str_eq(got, want, "%llu us", (unsigned long long)us);
}

/* xorshift64*: reproducible random numbers. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

Test(civil, known_dates)
{
    expect_str(0, "1970-01-01T00:00:00.000Z");
    expect_str(999, "1970-01-01T00:00:00.000Z");
    expect_str(1000, "1970-01-01T00:00:00.001Z");
    expect_str(1771393506123456ull, "2026-02-18T05:45:06.123Z");
    expect_str(951782400ull * US, "2000-02-29T00:00:00.000Z");
    expect_str(951868799ull * US + 999999, "2000-02-29T23:59:59.999Z");
    expect_str(1709164800ull * US, "2024-02-29T00:00:00.000Z");
    expect_str(4107456000ull * US, "2100-02-28T00:00:00.000Z");
    expect_str(4107542400ull * US, "2100-03-01T00:00:00.000Z");
    expect_str(4102444799ull * US, "2099-12-31T23:59:59.000Z");
    expect_str(Y10000_S * US - 1, "9999-12-31T23:59:59.999Z");
    expect_str(Y10000_S * US, "10000-01-01T00:00:00.000Z");
}

Test(civil, every_day_from_1970_to_9999_matches_gmtime)
{
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (uint64_t day = 0; day < Y10000_S / DAY_S; day++) {
        uint64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        time_t s = (time_t)(day * DAY_S);
        struct tm tm;
        gmtime_r(&s, &tm);
        cr_assert(y == (uint64_t)tm.tm_year + 1900 && m == (unsigned)tm.tm_mon + 1 &&
                      d == (unsigned)tm.tm_mday,
                  "day %llu: civil %llu-%u-%u, gmtime %d-%d-%d", (unsigned long long)day,
                  (unsigned long long)y, m, d, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        /* One time in each day, at a random second and microsecond. */
        if (day % 7 == 0)
            expect_same(day * DAY_S * US + rnd(&seed) % (DAY_S * US));
    }
}

Test(civil, random_times_match_gmtime)
{
    uint64_t seed = 42;
    for (int i = 0; i < 1000000; i++)
        expect_same(rnd(&seed) % (Y10000_S * US));
    /* The edges of each day, and of the years around leap days. */
    for (uint64_t y = 0; y < 40; y++) {
        uint64_t s = (y * 365 + y / 4) * DAY_S; /* near each 1 January */
        for (uint64_t k = 0; k < 5; k++) {
            expect_same((s + k * DAY_S) * US);
            expect_same((s + k * DAY_S) * US - 1);
        }
    }
}

Test(civil, years_past_9999_have_all_their_digits)
{
    uint64_t seed = 7;
    for (int i = 0; i < 100000; i++)
        expect_same(Y10000_S * US + rnd(&seed) % (UINT64_MAX - Y10000_S * US));
    expect_same(UINT64_MAX);
    char out[CIVIL_RFC3339_MAX];
    cr_assert_eq(civil_rfc3339_ms(UINT64_MAX, out), 26);
}
