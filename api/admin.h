/* admin.h - the admin routes (API.md "Admin"; see admin.c). Role admin;
 * an agent may use the GET routes. */
#ifndef WS_ADMIN_H
#define WS_ADMIN_H

#include "api.h"

void admin_orders(api_req *r);
void admin_order_status(api_req *r);
void admin_watches(api_req *r);
void admin_watch_create(api_req *r);
void admin_watch_update(api_req *r);
void admin_watch_stock(api_req *r);
void admin_stats(api_req *r);

#endif
