/* accounts.h - the account routes (see accounts.c). */
#ifndef WS_ACCOUNTS_H
#define WS_ACCOUNTS_H

#include "api.h"

void accounts_register(api_req *r);
void accounts_login(api_req *r);
void accounts_refresh(api_req *r);
void accounts_logout(api_req *r);
void accounts_me(api_req *r);

#endif
