/* router.h - matching a request's method and path against the API's route
 * table.
 *
 * Owns the matching rules of API.md: literal segments compare without
 * regard to case (as Express did), a trailing slash is tolerated, ":name"
 * segments capture the segment as it was sent, HEAD is served by GET routes.
 * A path that matches a route under another method is a 405, not a 404. The
 * table itself (which handler serves what) belongs to the caller.
 */
#ifndef WS_ROUTER_H
#define WS_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#define RT_MAX_PARAMS 4

typedef struct rt_params {
    int n;
    struct {
        const char *p; /* into the path given to rt_match */
        size_t n;
    } v[RT_MAX_PARAMS];
} rt_params;

typedef struct rt_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/api/v1/watches/:id" */
    void *handler;       /* the caller's */
    unsigned flags;      /* the caller's */
} rt_route;

typedef enum rt_result {
    RT_FOUND = 0,
    RT_NOT_FOUND,     /* no route has this path */
    RT_BAD_METHOD,    /* a route has this path, under another method */
} rt_result;

/* Finds the route for method and path (the path without its query string).
 * On RT_FOUND *index is the route's and params holds its captures. With
 * RT_BAD_METHOD, `allow` (if not NULL) receives the methods that would match,
 * comma-separated, for an Allow header. */
rt_result rt_match(const rt_route *routes, size_t n_routes, const char *method, size_t mlen,
                   const char *path, size_t plen, size_t *index, rt_params *params,
                   char *allow, size_t allow_cap);

#endif
