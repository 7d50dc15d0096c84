/* checkout.h - the legacy checkout routes (see checkout.c). */
#ifndef WS_CHECKOUT_H
#define WS_CHECKOUT_H

#include "api.h"

void checkout_place(api_req *r);
void checkout_get(api_req *r);

#endif
