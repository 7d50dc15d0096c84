/* apidocs.h - GET /api-docs: the OpenAPI 3 description of this API.
 *
 * Owns the route's answer: schemas/openapi.yaml, embedded in the binary at
 * build time (api/embed_file.cmake), sent as it is with Content-Type
 * application/yaml. YAML only: no JSON rendering of it is served.
 */
#ifndef WS_APIDOCS_H
#define WS_APIDOCS_H

#include <stddef.h>

#include "api.h"

/* The document's bytes (NUL-terminated) and length, generated from
 * schemas/openapi.yaml. */
extern const char apidocs_yaml[];
extern const size_t apidocs_yaml_len;

void apidocs_serve(api_req *r);

#endif
