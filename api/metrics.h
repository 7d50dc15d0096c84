/* metrics.h - the API's metrics, rendered in Prometheus text format.
 *
 * Owns the counters, gauges and histograms of GET /metrics, under the names
 * the existing dashboards and alerts query (API.md): http_requests_total
 * {method,route,status_code}, http_request_duration_ms (a histogram by
 * route), orders_created_total, orders_revenue_dollars_total,
 * watches_low_stock_total; and the server's own: requests in flight, writer
 * batch sizes, append latency, projection lag.
 *
 * Every series is a fixed slot (routes are known when the registry is made),
 * updated with relaxed atomics: recording never locks or allocates, from any
 * thread.
 */
#ifndef WS_METRICS_H
#define WS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/event.h"

typedef struct met_registry met_registry;

/* `routes`: the route labels (patterns; the array is copied, the strings
 * must outlive the registry); requests that matched none are counted under
 * route "none". */
met_registry *met_new(const char *const *routes, size_t n_routes);
void met_free(met_registry *m);

/* A finished request: route index (-1: none), method, status, duration. */
void met_request(met_registry *m, int route, const char *method, size_t mlen, int status,
                 double ms);
void met_in_flight(met_registry *m, int delta);
void met_order_created(met_registry *m, int64_t total_minor);
/* The writer's totals so far (set before rendering by their owner):
 * group commits, commands in them, and the seconds commands spent from
 * submission until durable, summed. */
void met_set_writer(met_registry *m, uint64_t batches, uint64_t commands, double seconds);
/* Read-your-writes (set before rendering by its owner): answers held until
 * the cache had their events, and the seconds from durable to answered,
 * summed. */
void met_set_ryw(met_registry *m, uint64_t answers, double seconds);
/* Gauges read when rendering (set by their owners). */
void met_set_low_stock(met_registry *m, uint64_t n);
void met_set_projection_lag(met_registry *m, uint64_t events);

/* Appends the text exposition format to out. */
int met_render(met_registry *m, ev_buf *out);

#endif
