/* routes.c - the route table: every route of API.md and its handler.
 * First match wins, so fixed paths come before ":id" ones. */
#include "api.h"
#include "health.h"
#include "watches.h"

#define R(m, p, h) {m, p, (void *)(h)}

const rt_route api_routes[] = {
    R("GET", "/health", health_live),
    R("GET", "/ready", health_ready),
    R("GET", "/metrics", health_metrics),
    R("GET", "/api/v1/watches", watches_list),
    R("GET", "/api/v1/watches/brands-summary", watches_brands_summary),
    R("GET", "/api/v1/watches/brands", watches_brands),
    R("GET", "/api/v1/watches/:id", watches_get),
    R("POST", "/api/v1/chat", health_not_implemented),
    R("GET", "/api/v1/chat/:runId", health_not_implemented),
    R("GET", "/api/v1/search", health_not_implemented),
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
