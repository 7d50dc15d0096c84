/* watches.c - the catalog routes (API.md "Public"): the list with its
 * filters, sorting and paging, brand counts, the brands summary and one
 * watch. All answered from the LMDB cache, where each watch's JSON is
 * stored ready to send.
 */
#include "watches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memo.h"
#include "query.h"
#include "reply.h"

typedef struct list_ctx {
    ev_buf *b;
    bool first;
    int err;
} list_ctx;

static int add_watch(void *ud, const proj_cache_watch *w)
{
    list_ctx *c = ud;
    if ((!c->first && ev_buf_append(c->b, ",", 1)) || ev_buf_append(c->b, w->json.p, w->json.n))
        return c->err = 1;
    c->first = false;
    return 0;
}

static proj_cache_sort sort_of(h2o_iovec_t v)
{
    if (h2o_memis(v.base, v.len, H2O_STRLIT("preis-asc")))
        return PROJ_CACHE_PRICE_ASC;
    if (h2o_memis(v.base, v.len, H2O_STRLIT("preis-desc")))
        return PROJ_CACHE_PRICE_DESC;
    if (h2o_memis(v.base, v.len, H2O_STRLIT("name-az")))
        return PROJ_CACHE_NAME_AZ;
    return PROJ_CACHE_NEWEST;
}

/* The filters of API.md's catalog query, clamped, never refused. */
static proj_cache_filter filter_of(api_req *r)
{
    h2o_mem_pool_t *pool = &r->h->pool;
    proj_cache_filter f = proj_cache_filter_all();
    h2o_iovec_t v;
    if (query_get(pool, r->query, "category", &v) && v.len) {
        int code = proj_cache_category_code((ev_str){v.base, (uint32_t)v.len});
        f.category = code ? code : 99; /* unknown: matches nothing */
    }
    if (query_get(pool, r->query, "brand", &v) && v.len)
        f.brand = (ev_str){v.base, (uint32_t)v.len};
    if (query_get(pool, r->query, "search", &v) && v.len)
        f.search = (ev_str){v.base, (uint32_t)v.len};
    if (query_get(pool, r->query, "min_price", &v))
        f.min_price = query_money(v);
    if (query_get(pool, r->query, "max_price", &v))
        f.max_price = query_money(v);
    if (query_get(pool, r->query, "in_stock", &v))
        f.in_stock = h2o_memis(v.base, v.len, H2O_STRLIT("1"));
    return f;
}

static void reply_list(api_req *r, ev_buf *b, int rc)
{
    if (rc)
        reply_error(r, 503, "unavailable", "The catalog cannot be read right now", NULL);
    else
        reply_json(r, 200, (const char *)b->p, b->len);
}

/* GET /api/v1/watches */
void watches_list(api_req *r)
{
    h2o_mem_pool_t *pool = &r->h->pool;
    proj_cache_filter f = filter_of(r);
    h2o_iovec_t v;
    proj_cache_sort sort = query_get(pool, r->query, "sort", &v) ? sort_of(v) : PROJ_CACHE_NEWEST;
    bool has_page = query_get(pool, r->query, "page", &v);
    int64_t page = has_page ? query_int(v, 1, 1, INT32_MAX) : 1;
    bool has_limit = query_get(pool, r->query, "limit", &v);
    int64_t limit = has_limit ? query_int(v, 24, 1, 200) : 24;
    /* The same query at the same cache position: the same bytes. */
    uint64_t pos = 0;
    bool memo_ok = proj_cache_applied(r->app->cache, &pos) == 0;
    size_t memo_len;
    const char *memo_body =
        memo_ok ? memo_get(api_memo(r), r->query.base, r->query.len, pos, &memo_len) : NULL;
    if (memo_body) {
        reply_json(r, 200, memo_body, memo_len);
        return;
    }
    ev_buf b = {0};
    list_ctx c = {&b, true, 0};
    int rc;
    if (!has_page && !has_limit) {
        rc = ev_buf_append(&b, "[", 1) ||
             proj_cache_watches(r->app->cache, sort, &f, 0, 0, add_watch, &c, NULL) ||
             ev_buf_append(&b, "]", 1);
    } else {
        uint64_t total = 0;
        rc = ev_buf_append(&b, "{\"watches\":[", 12) ||
             proj_cache_watches(r->app->cache, sort, &f, (uint64_t)((page - 1) * limit),
                                (uint64_t)limit, add_watch, &c, &total);
        char tail[128];
        int n = snprintf(tail, sizeof tail, "],\"total\":%llu,\"page\":%lld,\"pages\":%llu}",
                         (unsigned long long)total, (long long)page,
                         (unsigned long long)((total + (uint64_t)limit - 1) / (uint64_t)limit));
        rc = rc || ev_buf_append(&b, tail, (size_t)n);
    }
    if (memo_ok && !rc && !c.err)
        memo_put(api_memo(r), r->query.base, r->query.len, pos, (const char *)b.p, b.len);
    reply_list(r, &b, rc || c.err);
    ev_buf_free(&b);
}

/* GET /api/v1/watches/brands?category=X */
void watches_brands(api_req *r)
{
    h2o_iovec_t v;
    int category = PROJ_CACHE_CAT_ANY;
    if (query_get(&r->h->pool, r->query, "category", &v) && v.len) {
        int code = proj_cache_category_code((ev_str){v.base, (uint32_t)v.len});
        if (!code) {
            reply_json(r, 200, "[]", 2);
            return;
        }
        category = code;
    }
    proj_cache_brand *brands = NULL;
    size_t n = 0;
    ev_buf b = {0};
    int rc = proj_cache_brands(r->app->cache, category, &brands, &n) ||
             ev_buf_append(&b, "[", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        char cnt[48];
        int k = snprintf(cnt, sizeof cnt, ",\"count\":%llu}", (unsigned long long)brands[i].count);
        rc = (i && ev_buf_append(&b, ",", 1)) || ev_buf_append(&b, "{\"brand\":", 9) ||
             (brands[i].brand.p ? ev_format_json_str(brands[i].brand, &b)
                                : ev_buf_append(&b, "null", 4)) ||
             ev_buf_append(&b, cnt, (size_t)k);
    }
    rc = rc || ev_buf_append(&b, "]", 1);
    free(brands);
    reply_list(r, &b, rc);
    ev_buf_free(&b);
}

/* GET /api/v1/watches/brands-summary */
void watches_brands_summary(api_req *r)
{
    proj_cache_brand *brands = NULL;
    size_t n = 0;
    ev_buf b = {0};
    int rc = proj_cache_brands(r->app->cache, PROJ_CACHE_CAT_ANY, &brands, &n) ||
             ev_buf_append(&b, "[", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        char cnt[48];
        int k = snprintf(cnt, sizeof cnt, ",\"count\":%llu,\"watches\":[",
                         (unsigned long long)brands[i].count);
        rc = (i && ev_buf_append(&b, ",", 1)) || ev_buf_append(&b, "{\"brand\":", 9) ||
             (brands[i].brand.p ? ev_format_json_str(brands[i].brand, &b)
                                : ev_buf_append(&b, "null", 4)) ||
             ev_buf_append(&b, cnt, (size_t)k);
        if (rc)
            break;
        /* Up to 6 watches of the brand in the default order. The watches
         * without a brand have no brand filter to walk: they get none. */
        if (brands[i].brand.p) {
            proj_cache_filter f = proj_cache_filter_all();
            f.brand = brands[i].brand;
            list_ctx c = {&b, true, 0};
            rc = proj_cache_watches(r->app->cache, PROJ_CACHE_NEWEST, &f, 0, 6, add_watch, &c,
                                    NULL) ||
                 c.err;
        }
        rc = rc || ev_buf_append(&b, "]}", 2);
    }
    rc = rc || ev_buf_append(&b, "]", 1);
    free(brands);
    reply_list(r, &b, rc);
    ev_buf_free(&b);
}

/* GET /api/v1/watches/:id */
void watches_get(api_req *r)
{
    uint8_t id[16];
    if (ev_uuid_parse(r->params.v[0].p, r->params.v[0].n, id) != 0) {
        reply_error(r, 404, "not_found", "Watch not found", NULL);
        return;
    }
    ev_buf buf = {0};
    proj_cache_watch w;
    int rc = proj_cache_get_watch(r->app->cache, id, &buf, &w);
    if (rc == PROJ_CACHE_ENOTFOUND)
        reply_error(r, 404, "not_found", "Watch not found", NULL);
    else if (rc)
        reply_error(r, 503, "unavailable", "The catalog cannot be read right now", NULL);
    else
        reply_json(r, 200, w.json.p, w.json.n);
    ev_buf_free(&buf);
}
