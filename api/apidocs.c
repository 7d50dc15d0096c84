/* apidocs.c - the API's own description, as YAML (see apidocs.h). */
#include "apidocs.h"

/* GET /api-docs */
void apidocs_serve(api_req *r)
{
    h2o_req_t *h = r->h;
    h->res.status = 200;
    h->res.reason = "OK";
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/yaml; charset=utf-8"));
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_send_inline(h, apidocs_yaml, apidocs_yaml_len);
}
