/* watches.h - the catalog routes (see watches.c). */
#ifndef WS_WATCHES_H
#define WS_WATCHES_H

#include "api.h"

void watches_list(api_req *r);
void watches_brands(api_req *r);
void watches_brands_summary(api_req *r);
void watches_get(api_req *r);

#endif
