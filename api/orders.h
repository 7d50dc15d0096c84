/* orders.h - the order routes (see orders.c). */
#ifndef WS_ORDERS_H
#define WS_ORDERS_H

#include "api.h"
#include "auth.h"

void orders_place(api_req *r);
void orders_get(api_req *r);
void orders_mine(api_req *r);

/* Whether the sender may read order o; answers 401/404 itself when not. */
bool orders_may_read(api_req *r, const auth_who *who, const proj_cache_order *o);

/* The envelope of a command made for a request (correlation id, actor,
 * idempotency key and fingerprint); `who` may be NULL (a guest). */
void orders_envelope(api_req *r, cmd_call *c, const auth_who *who);

#endif
