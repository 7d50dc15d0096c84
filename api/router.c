/* router.c - route matching (see router.h). */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Whether `path` matches `pattern`, capturing ":name" segments. */
static bool path_matches(const char *pattern, const char *path, size_t plen, rt_params *params)
{
    /* A trailing slash is tolerated ("/api/v1/watches/"). */
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    const char *pp = pattern, *end = path + plen;
    const char *s = path;
    params->n = 0;
    while (*pp && s < end) {
        if (*pp != '/' || *s != '/')
            return false;
        pp++;
        s++;
        size_t pl = strcspn(pp, "/");
        const char *seg_end = memchr(s, '/', (size_t)(end - s));
        size_t sl = seg_end ? (size_t)(seg_end - s) : (size_t)(end - s);
        if (pp[0] == ':') {
            if (sl == 0 || params->n == RT_MAX_PARAMS)
                return false;
            params->v[params->n].p = s;
            params->v[params->n].n = sl;
            params->n++;
        } else if (pl != sl || strncasecmp(pp, s, pl) != 0) {
            return false;
        }
        pp += pl;
        s += sl;
    }
    return *pp == 0 && s == end;
}

static bool method_is(const char *want, const char *m, size_t mlen)
{
    return strlen(want) == mlen && memcmp(want, m, mlen) == 0;
}

rt_result rt_match(const rt_route *routes, size_t n_routes, const char *method, size_t mlen,
                   const char *path, size_t plen, size_t *index, rt_params *params,
                   char *allow, size_t allow_cap)
{
    bool head = method_is("HEAD", method, mlen), other_method = false;
    size_t alen = 0;
    if (allow && allow_cap)
        allow[0] = 0;
    for (size_t i = 0; i < n_routes; i++) {
        rt_params p;
        if (!path_matches(routes[i].pattern, path, plen, &p))
            continue;
        if (method_is(routes[i].method, method, mlen) ||
            (head && strcmp(routes[i].method, "GET") == 0)) {
            *index = i;
            *params = p;
            return RT_FOUND;
        }
        other_method = true;
        if (allow && alen < allow_cap)
            alen += (size_t)snprintf(allow + alen, allow_cap - alen, "%s%s", alen ? ", " : "",
                                     routes[i].method);
    }
    return other_method ? RT_BAD_METHOD : RT_NOT_FOUND;
}
