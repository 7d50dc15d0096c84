/* health.h - the operational routes: liveness, readiness, metrics, the
 * API description, and routes answered 501 until they are built. */
#ifndef WS_HEALTH_H
#define WS_HEALTH_H

#include "api.h"

void health_live(api_req *r);
void health_ready(api_req *r);
void health_metrics(api_req *r);
void health_not_implemented(api_req *r);

#endif
