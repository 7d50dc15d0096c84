/* accounts.h - the account routes (see accounts.c). */
#ifndef WS_ACCOUNTS_H
#define WS_ACCOUNTS_H

#include "api.h"
#include "cmd.h"

/* A registration's optional fields (phone, address, city, country), copied
 * out of the request's JSON to outlive it (a password hash or the legacy
 * checkout's steps come in between). An absent field stays absent. */
typedef struct accounts_extra {
    ev_str phone, address, city, country; /* into room; .p NULL: absent */
    char room[1400];
} accounts_extra;

void accounts_extra_set(accounts_extra *x, ev_str phone, ev_str address, ev_str city,
                        ev_str country);
/* The registration command's personal fields, kept in c. */
void accounts_reg_keep(cmd_call *c, const char *email, const char *full_name,
                       const accounts_extra *x);

void accounts_register(api_req *r);
void accounts_login(api_req *r);
void accounts_refresh(api_req *r);
void accounts_logout(api_req *r);
void accounts_me(api_req *r);

#endif
