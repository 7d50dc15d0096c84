/* jlog.c - structured log lines (see jlog.h). */
#include "jlog.h"

#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "event.h"

void jlog(FILE *out, const char *level, const char *msg, const char *fields)
{
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    ev_buf line = {0};
    char head[128];
    int n = snprintf(head, sizeof head, "{\"level\":\"%s\",\"time\":\"%s.%03ldZ\",\"msg\":", level,
                     ts, (long)(tv.tv_usec / 1000));
    ev_buf_append(&line, head, (size_t)n);
    ev_format_json_str(ev_str_c(msg), &line);
    if (fields && *fields) {
        ev_buf_append(&line, ",", 1);
        ev_buf_append(&line, fields, strlen(fields));
    }
    ev_buf_append(&line, "}\n", 2);
    /* One write per line, so lines from several threads do not interleave. */
    fwrite(line.p, 1, line.len, out);
    fflush(out);
    ev_buf_free(&line);
}
