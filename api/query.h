/* query.h - query string parameters, as API.md treats them: decoded
 * (percent-escapes, '+' as a space), never refused for their values but
 * clamped or ignored; only bytes that are not UTF-8 are an error.
 */
#ifndef WS_QUERY_H
#define WS_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include <h2o.h>

/* Whether every name and value of the query string decodes to valid UTF-8
 * (a malformed percent-escape counts as its literal characters). */
bool query_valid(h2o_iovec_t query);

/* The first value of parameter `name`, decoded into the pool; returns
 * false when the parameter is absent. */
bool query_get(h2o_mem_pool_t *pool, h2o_iovec_t query, const char *name, h2o_iovec_t *out);

/* A decimal integer, or `dflt` when it does not parse; then clamped to
 * [min, max]. */
int64_t query_int(h2o_iovec_t v, int64_t dflt, int64_t min, int64_t max);

/* A price ("395", "395.5", "395.00") in minor units, or 0 when it does not
 * parse or is not positive (a price filter that is then ignored). */
int64_t query_money(h2o_iovec_t v);

#endif
