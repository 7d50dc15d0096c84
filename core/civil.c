/* civil.c - calendar arithmetic for UTC times (see civil.h).
 *
 * Dates are counted in a calendar whose years begin on 1 March, so that the
 * leap day is the last day of a year: a year is then 365 days plus one
 * every 4 years, less one every 100, plus one every 400, and the months
 * from March have lengths that a linear formula gives. */
#include "civil.h"

#include <string.h>

#define CIVIL_DAYS_400Y 146097u /* days in 400 Gregorian years */
#define CIVIL_DAYS_100Y 36524u  /* in 100 years whose last is not leap */
#define CIVIL_DAYS_4Y 1461u     /* in 4 years whose last is leap */
/* Days from 0000-03-01 (a 400-year cycle's first day) to 1970-01-01. */
#define CIVIL_EPOCH_SHIFT 719468u

/* Splits `n` days into whole spans of `len` days (at most `max` of them, so
 * that a cycle's longer last span stays in it); *n keeps the rest. */
static unsigned civil_spans(unsigned *n, unsigned len, unsigned max)
{
    unsigned k = *n / len;
    if (k > max)
        k = max;
    *n -= k * len;
    return k;
}

void civil_from_days(uint64_t days, uint64_t *year, unsigned *month, unsigned *mday)
{
    uint64_t z = days + CIVIL_EPOCH_SHIFT;
    uint64_t y = z / CIVIL_DAYS_400Y * 400;
    unsigned d = (unsigned)(z % CIVIL_DAYS_400Y);
    y += civil_spans(&d, CIVIL_DAYS_100Y, 3) * 100u;
    y += civil_spans(&d, CIVIL_DAYS_4Y, 24) * 4u;
    y += civil_spans(&d, 365, 3);
    /* d: the day of a year starting on 1 March (0-365). The months from
     * March are 31 30 31 30 31 31 30 31 30 31 31 (29|28) days: month m
     * (0 = March) starts on day (153 m + 2) / 5. */
    unsigned m = (5 * d + 2) / 153;
    *mday = d - (153 * m + 2) / 5 + 1;
    *month = m < 10 ? m + 3 : m - 9;
    *year = y + (m >= 10); /* January and February close the March year */
}

static const char civil_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static char *civil_2(char *o, unsigned v)
{
    memcpy(o, civil_pairs + 2 * v, 2);
    return o + 2;
}

/* The year with at least four digits. */
static char *civil_year(char *o, uint64_t y)
{
    if (y < 10000) {
        o = civil_2(o, (unsigned)(y / 100));
        return civil_2(o, (unsigned)(y % 100));
    }
    char t[20];
    size_t n = 0;
    for (; y; y /= 10)
        t[n++] = (char)('0' + y % 10);
    while (n)
        *o++ = t[--n];
    return o;
}

size_t civil_rfc3339_ms(uint64_t us, char out[CIVIL_RFC3339_MAX])
{
    uint64_t secs = us / 1000000;
    unsigned sod = (unsigned)(secs % 86400), ms = (unsigned)(us / 1000 % 1000);
    uint64_t year;
    unsigned month, mday;
    civil_from_days(secs / 86400, &year, &month, &mday);
    char *o = civil_year(out, year);
    *o++ = '-';
    o = civil_2(o, month);
    *o++ = '-';
    o = civil_2(o, mday);
    *o++ = 'T';
    o = civil_2(o, sod / 3600);
    *o++ = ':';
    o = civil_2(o, sod / 60 % 60);
    *o++ = ':';
    o = civil_2(o, sod % 60);
    *o++ = '.';
    *o++ = (char)('0' + ms / 100);
    o = civil_2(o, ms % 100);
    *o++ = 'Z';
    return (size_t)(o - out);
}
