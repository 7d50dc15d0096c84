/* health.c - liveness, readiness and metrics (see health.h). */
#include "health.h"

#include <stdio.h>

#include "reply.h"

/* GET /health: the process answers. */
void health_live(api_req *r) { reply_json(r, 200, "{\"status\":\"ok\"}", 15); }

/* GET /ready: the cache the reads come from can be read. */
void health_ready(api_req *r)
{
    uint64_t pos;
    if (proj_cache_applied(r->app->cache, &pos) != 0) {
        static const char body[] = "{\"status\":\"unavailable\",\"reason\":\"the cache cannot be read\"}";
        reply_json(r, 503, body, sizeof body - 1);
        return;
    }
    reply_json(r, 200, "{\"status\":\"ready\"}", 18);
}

/* GET /metrics: Prometheus text format. */
void health_metrics(api_req *r)
{
    proj_cache_stats st;
    if (proj_cache_get_stats(r->app->cache, &st) == 0)
        met_set_low_stock(r->app->metrics, st.low_stock);
    cmd_stats cs;
    cmd_bus_stats(r->app->bus, &cs);
    met_set_writer(r->app->metrics, cs.batches, cs.commands, cs.wait_s);
    met_set_ryw(r->app->metrics, cs.ryw_waited, cs.ryw_wait_s);
    met_set_projection_lag(r->app->metrics,
                           cs.end_pos > cs.cache_pos ? cs.end_pos - cs.cache_pos : 0);
    ev_buf b = {0};
    if (met_render(r->app->metrics, &b) != 0) {
        ev_buf_free(&b);
        reply_error(r, 500, "internal_error", "Out of memory", NULL);
        return;
    }
    h2o_req_t *h = r->h;
    h->res.status = 200;
    h->res.reason = "OK";
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h->res.content_length = b.len;
    h2o_send_inline(h, (const char *)b.p, b.len);
    ev_buf_free(&b);
}

void health_not_implemented(api_req *r)
{
    reply_error(r, 501, "not_implemented", "The assistant is not available yet", NULL);
}
