/* auth.h - who sent a request, and what they may do.
 *
 * Owns the reading of credentials (Authorization: Bearer, else the `token`
 * cookie), their verification (api/jwt.h: the server's own tokens, the old
 * backend's when its secret is configured, an OpenID Connect provider's),
 * and the role rule of API.md: for the store's own accounts the role comes
 * from the account's current state in the cache on every request, never
 * from the token; for a provider's tokens from its realm roles. A token
 * that is present but invalid is a 401 on every route, also where auth is
 * optional. A POST/PUT/PATCH/DELETE authenticated by the cookie alone must
 * come from an allowed Origin (403 otherwise, against CSRF).
 */
#ifndef WS_AUTH_H
#define WS_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"

typedef enum auth_role { AUTH_ANON = 0, AUTH_USER, AUTH_AGENT, AUTH_ADMIN } auth_role;

typedef struct auth_who {
    bool present;          /* a valid token came with the request */
    uint64_t customer_id;  /* 0: none (a provider's user without an account) */
    auth_role role;
    char email[256];
} auth_who;

/* Identifies the sender. True with *who filled (present false: anonymous);
 * false when the request had an invalid credential: a 401 (or 403) has
 * been sent. */
bool auth_optional(api_req *r, auth_who *who);
/* As auth_optional, and requires a sender with at least role `min`: 401
 * without one, 403 with too small a role. False when it answered. */
bool auth_require(api_req *r, auth_role min, auth_who *who);

/* For every request before its handler: a credential that came with it
 * must be valid, whatever the route (a 401 has been sent when false). */
bool auth_check_credentials(api_req *r);

/* The name of a role as in tokens and /auth/me ("admin"). */
const char *auth_role_name(auth_role role);

/* A new access token for an account (caller frees). */
char *auth_access_token(api_app *app, uint64_t customer_id, const char *email, auth_role role);

#endif
