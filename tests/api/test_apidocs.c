/* test_apidocs.c - the OpenAPI description embedded in the API
 * (schemas/openapi.yaml) against the route table: every route the server
 * has (api_routes) is in the document's `paths` with its method, so a route
 * added without being described fails here. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "apidocs.h"

/* The route pattern as an OpenAPI path: ":id" segments become "{id}". */
static void openapi_path(const char *pattern, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 2 < cap; p++) {
        if (*p == ':' && p > pattern && p[-1] == '/') {
            size_t n = strcspn(p + 1, "/");
            o += (size_t)snprintf(out + o, cap - o, "{%.*s}", (int)n, p + 1);
            p += n;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

/* The document's text from its top-level `paths:` to the next top-level
 * key; *len its length. */
static const char *paths_section(size_t *len)
{
    const char *doc = apidocs_yaml;
    const char *p = strstr(doc, "\npaths:\n");
    cr_assert_not_null(p, "the document has a paths: section");
    p += 8;
    const char *e = p;
    while (*e && !(e[0] == '\n' && e[1] && e[1] != ' ' && e[1] != '\n' && e[1] != '#'))
        e++;
    *len = (size_t)(e - p);
    return p;
}

/* Whether `path` is a key of paths (two spaces in) with `method` (four
 * spaces in) under it. */
static bool documented(const char *path, const char *method)
{
    size_t len;
    const char *sec = paths_section(&len);
    char key[300], m[16] = "";
    int kn = snprintf(key, sizeof key, "\n  %s:\n", path);
    for (size_t i = 0; method[i] && i < sizeof m - 1; i++) {
        m[i] = (char)tolower((unsigned char)method[i]);
        m[i + 1] = 0;
    }
    const char *at = memmem(sec - 1, len + 1, key, (size_t)kn);
    if (!at)
        return false;
    const char *body = at + kn - 1, *end = sec + len;
    /* This path's block ends where the next two-space key starts. */
    for (const char *q = body; q < end; q++) {
        if (q[0] == '\n' && q[1] == ' ' && q[2] == ' ' && q[3] != ' ' && q[3] != '\n') {
            end = q;
            break;
        }
    }
    char mk[32];
    int mn = snprintf(mk, sizeof mk, "\n    %s:\n", m);
    return memmem(body, (size_t)(end - body), mk, (size_t)mn) != NULL;
}

Test(apidocs, is_an_openapi_3_document)
{
    cr_assert_eq(strlen(apidocs_yaml), apidocs_yaml_len, "the length matches, no NUL inside");
    cr_assert(strncmp(apidocs_yaml, "openapi: 3.0.", 13) == 0);
    cr_assert_not_null(strstr(apidocs_yaml, "\ncomponents:\n"));
    cr_assert_not_null(strstr(apidocs_yaml, "\n    bearerAuth:\n"));
    cr_assert_not_null(strstr(apidocs_yaml, "\n    cookieAuth:\n"));
    cr_assert_not_null(strstr(apidocs_yaml, "\n    ValidationError:\n"));
    cr_assert_not_null(strstr(apidocs_yaml, "\n    Error:\n"));
}

Test(apidocs, the_lookup_finds_only_what_is_there)
{
    cr_assert(documented("/api/v1/watches/{id}", "GET"));
    cr_assert_not(documented("/api/v1/watches/{id}", "DELETE"));
    cr_assert_not(documented("/api/v1/watches/{watchId}", "GET"));
    cr_assert_not(documented("/api/v1/nowhere", "GET"));
    cr_assert(documented("/api/v1/admin/watches", "POST"));
    cr_assert_not(documented("/api/v1/auth/me", "POST"), "a method of the next path is not this one's");
}

Test(apidocs, documents_every_route_of_the_server)
{
    char path[300];
    openapi_path("/api/v1/admin/orders/:id/status", path, sizeof path);
    cr_assert_str_eq(path, "/api/v1/admin/orders/{id}/status");
    size_t missing = 0;
    for (size_t i = 0; i < api_n_routes; i++) {
        openapi_path(api_routes[i].pattern, path, sizeof path);
        if (!documented(path, api_routes[i].method)) {
            cr_log_error("%s %s is served but not in schemas/openapi.yaml", api_routes[i].method,
                         path);
            missing++;
        }
    }
    cr_assert_eq(missing, 0, "%zu routes are not documented", missing);
}

Test(apidocs, is_served_by_the_route_table)
{
    bool found = false;
    for (size_t i = 0; i < api_n_routes; i++)
        found |= strcmp(api_routes[i].pattern, "/api-docs") == 0 &&
                 strcmp(api_routes[i].method, "GET") == 0 &&
                 api_routes[i].handler == (void *)apidocs_serve;
    cr_assert(found, "GET /api-docs serves the document");
}
