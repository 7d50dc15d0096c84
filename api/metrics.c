/* metrics.c - the API's metrics (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                       "OTHER"};
#define N_METHODS 8
static const int statuses[] = {200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 409,
                               413, 415, 422, 429, 500, 501, 502, 503, 504, 0};
#define N_STATUS 21 /* the last: any other */
static const double buckets_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
#define N_BUCKETS 12

typedef struct route_series {
    atomic_uint_fast64_t count[N_METHODS][N_STATUS];
    atomic_uint_fast64_t other_status[N_METHODS]; /* code in `statuses` 0 slot */
    atomic_uint_fast64_t bucket[N_BUCKETS + 1];   /* the last: +Inf */
    atomic_uint_fast64_t sum_us;
} route_series;

struct met_registry {
    const char **routes; /* copied; the strings are the caller's (static) */
    size_t n_routes;
    route_series *series; /* n_routes + 1: the last is "none" */
    atomic_int_fast64_t in_flight;
    atomic_uint_fast64_t orders, revenue_cents;
    atomic_uint_fast64_t batches, batch_commands, append_us;
    atomic_uint_fast64_t ryw_n, ryw_us;
    atomic_uint_fast64_t low_stock, lag;
};

met_registry *met_new(const char *const *routes, size_t n_routes)
{
    met_registry *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->series = calloc(n_routes + 1, sizeof *m->series);
    m->routes = calloc(n_routes + 1, sizeof *m->routes);
    if (!m->series || !m->routes) {
        met_free(m);
        return NULL;
    }
    memcpy(m->routes, routes, n_routes * sizeof *routes);
    m->n_routes = n_routes;
    return m;
}

void met_free(met_registry *m)
{
    if (!m)
        return;
    free(m->series);
    free(m->routes);
    free(m);
}

static int method_index(const char *m, size_t n)
{
    for (int i = 0; i < N_METHODS - 1; i++)
        if (strlen(methods[i]) == n && memcmp(methods[i], m, n) == 0)
            return i;
    return N_METHODS - 1;
}

static int status_index(int status)
{
    for (int i = 0; i < N_STATUS - 1; i++)
        if (statuses[i] == status)
            return i;
    return N_STATUS - 1;
}

void met_request(met_registry *m, int route, const char *method, size_t mlen, int status,
                 double ms)
{
    route_series *s = &m->series[route >= 0 && (size_t)route < m->n_routes ? (size_t)route
                                                                            : m->n_routes];
    atomic_fetch_add_explicit(&s->count[method_index(method, mlen)][status_index(status)], 1,
                              memory_order_relaxed);
    int b = 0;
    while (b < N_BUCKETS && ms > buckets_ms[b])
        b++;
    atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint_fast64_t)(ms * 1000), memory_order_relaxed);
}

void met_in_flight(met_registry *m, int delta)
{
    atomic_fetch_add_explicit(&m->in_flight, delta, memory_order_relaxed);
}

void met_order_created(met_registry *m, int64_t total_minor)
{
    atomic_fetch_add_explicit(&m->orders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->revenue_cents, (uint_fast64_t)(total_minor > 0 ? total_minor : 0),
                              memory_order_relaxed);
}

void met_set_writer(met_registry *m, uint64_t batches, uint64_t commands, double seconds)
{
    atomic_store_explicit(&m->batches, batches, memory_order_relaxed);
    atomic_store_explicit(&m->batch_commands, commands, memory_order_relaxed);
    atomic_store_explicit(&m->append_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

void met_set_ryw(met_registry *m, uint64_t answers, double seconds)
{
    atomic_store_explicit(&m->ryw_n, answers, memory_order_relaxed);
    atomic_store_explicit(&m->ryw_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

void met_set_low_stock(met_registry *m, uint64_t n)
{
    atomic_store_explicit(&m->low_stock, n, memory_order_relaxed);
}

void met_set_projection_lag(met_registry *m, uint64_t events)
{
    atomic_store_explicit(&m->lag, events, memory_order_relaxed);
}

/* ------------------------------------------------------------ rendering */

static int put(ev_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(ev_buf *b, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return n < 0 ? -1 : ev_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static const char *route_name(const met_registry *m, size_t i)
{
    return i < m->n_routes ? m->routes[i] : "none";
}

static int render_requests(met_registry *m, ev_buf *out)
{
    int rc = put(out, "# HELP http_requests_total HTTP requests by method, route and status.\n"
                      "# TYPE http_requests_total counter\n");
    for (size_t r = 0; r <= m->n_routes && !rc; r++)
        for (int mi = 0; mi < N_METHODS && !rc; mi++)
            for (int si = 0; si < N_STATUS && !rc; si++) {
                unsigned long long v = LOAD(m->series[r].count[mi][si]);
                if (!v)
                    continue;
                char code[8];
                snprintf(code, sizeof code, "%d", statuses[si]);
                rc = put(out,
                         "http_requests_total{method=\"%s\",route=\"%s\",status_code=\"%s\"} %llu\n",
                         methods[mi], route_name(m, r), si == N_STATUS - 1 ? "other" : code, v);
            }
    return rc;
}

static int render_durations(met_registry *m, ev_buf *out)
{
    int rc = put(out, "# HELP http_request_duration_ms HTTP request duration in milliseconds.\n"
                      "# TYPE http_request_duration_ms histogram\n");
    for (size_t r = 0; r <= m->n_routes && !rc; r++) {
        unsigned long long cum = 0, total = 0;
        for (int b = 0; b <= N_BUCKETS; b++)
            total += LOAD(m->series[r].bucket[b]);
        if (!total)
            continue;
        for (int b = 0; b <= N_BUCKETS && !rc; b++) {
            cum += LOAD(m->series[r].bucket[b]);
            char le[16];
            if (b < N_BUCKETS)
                snprintf(le, sizeof le, "%g", buckets_ms[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            rc = put(out, "http_request_duration_ms_bucket{route=\"%s\",le=\"%s\"} %llu\n",
                     route_name(m, r), le, cum);
        }
        if (!rc)
            rc = put(out,
                     "http_request_duration_ms_sum{route=\"%s\"} %.3f\n"
                     "http_request_duration_ms_count{route=\"%s\"} %llu\n",
                     route_name(m, r), LOAD(m->series[r].sum_us) / 1000.0, route_name(m, r),
                     total);
    }
    return rc;
}

int met_render(met_registry *m, ev_buf *out)
{
    if (render_requests(m, out) || render_durations(m, out))
        return -1;
    return put(out,
               "# HELP http_requests_in_flight Requests being handled.\n"
               "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight %lld\n"
               "# HELP orders_created_total Orders placed through this instance.\n"
               "# TYPE orders_created_total counter\norders_created_total %llu\n"
               "# HELP orders_revenue_dollars_total Total of the orders placed.\n"
               "# TYPE orders_revenue_dollars_total counter\n"
               "orders_revenue_dollars_total %llu.%02llu\n"
               "# HELP watches_low_stock_total Watches with fewer than 3 in stock.\n"
               "# TYPE watches_low_stock_total gauge\nwatches_low_stock_total %llu\n"
               "# HELP writer_batches_total Group commits of the writer.\n"
               "# TYPE writer_batches_total counter\nwriter_batches_total %llu\n"
               "# HELP writer_batch_commands_total Commands in those group commits.\n"
               "# TYPE writer_batch_commands_total counter\nwriter_batch_commands_total %llu\n"
               "# HELP writer_append_seconds_total Time commands waited from submission until\n"
               "# durable, summed (divide by writer_batch_commands_total for the mean).\n"
               "# TYPE writer_append_seconds_total counter\nwriter_append_seconds_total %.6f\n"
               "# HELP read_your_writes_total Answers held until the cache had their events.\n"
               "# TYPE read_your_writes_total counter\nread_your_writes_total %llu\n"
               "# HELP read_your_writes_wait_seconds_total Time those answers waited from\n"
               "# durable until the cache had them, summed.\n"
               "# TYPE read_your_writes_wait_seconds_total counter\n"
               "read_your_writes_wait_seconds_total %.6f\n"
               "# HELP projection_lag_events Events appended but not yet in the cache.\n"
               "# TYPE projection_lag_events gauge\nprojection_lag_events %llu\n",
               (long long)atomic_load(&m->in_flight), LOAD(m->orders),
               LOAD(m->revenue_cents) / 100, LOAD(m->revenue_cents) % 100, LOAD(m->low_stock),
               LOAD(m->batches), LOAD(m->batch_commands), LOAD(m->append_us) / 1e6,
               LOAD(m->ryw_n), LOAD(m->ryw_us) / 1e6, LOAD(m->lag));
}
