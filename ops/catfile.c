/* catfile.c - catalog files for storectl (see catfile.h). */
#include "catfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"

static const char *const cat_names[] = {"automatic", "chronograph", "diver", "sport",
                                        "classic",   "luxury",      NULL};

/* One path of a validation detail as text: watches[3].price. */
static void path_text(json_t *path, char *out, size_t cap)
{
    size_t o = 0, i;
    json_t *seg;
    out[0] = 0;
    json_array_foreach(path, i, seg) {
        int n = json_is_integer(seg)
                    ? snprintf(out + o, cap - o, "[%lld]", (long long)json_integer_value(seg))
                    : snprintf(out + o, cap - o, "%s%s", o ? "." : "", json_string_value(seg));
        if (n < 0 || (size_t)n >= cap - o)
            return;
        o += (size_t)n;
    }
}

/* The validation details as one sentence into err. */
static void details_text(const char *file, const val_ctx *v, char *err, size_t errlen)
{
    size_t o = (size_t)snprintf(err, errlen, "%s is not a valid catalog:", file), i;
    json_t *d;
    json_array_foreach(v->details, i, d) {
        char path[160];
        path_text(json_object_get(d, "path"), path, sizeof path);
        if (o >= errlen)
            return;
        o += (size_t)snprintf(err + o, errlen - o, "%s %s %s", i ? ";" : "",
                              path[0] ? path : "(the file)",
                              json_string_value(json_object_get(d, "message")));
    }
}

/* Reads entry i (an object) into w. */
static void read_watch(val_ctx *v, json_t *item, dec_watch_fields *w, bool *has_id)
{
    memset(w, 0, sizeof *w);
    val_str(v, item, "watch_name", VAL_REQUIRED | VAL_TRIM, 1, 255, &w->watch_name);
    val_str(v, item, "brand", VAL_OPTIONAL | VAL_TRIM, 0, 100, &w->brand);
    val_str(v, item, "model_code", VAL_OPTIONAL | VAL_TRIM, 0, 50, &w->model_code);
    val_str(v, item, "description", VAL_OPTIONAL | VAL_MULTILINE, 0, 10000, &w->description);
    val_url(v, item, "image_url", VAL_OPTIONAL, 2000, &w->image_url);
    val_money(v, item, "price", VAL_REQUIRED, &w->price);
    w->set_stock = true;
    val_int(v, item, "stock_quantity", VAL_OPTIONAL, 0, DEC_MAX_STOCK, &w->stock);
    size_t cat;
    if (val_enum(v, item, "category", VAL_OPTIONAL | VAL_NOCASE, cat_names, &cat))
        w->category = ev_str_c(cat_names[cat]);
    *has_id = val_uuid(v, item, "watch_id", VAL_OPTIONAL, w->watch_id);
    w->changed = EV_WF_ALL;
}

/* Reads the members of the document into c (details into v). */
static void read_doc(val_ctx *v, catfile *c)
{
    json_t *list = NULL;
    char cur[4] = "usd";
    val_currency(v, c->root, "currency", VAL_OPTIONAL, cur);
    for (int i = 0; i < 3; i++)
        c->currency[i] = (char)(cur[i] - 'a' + 'A');
    c->currency[3] = 0;
    if (!val_array(v, c->root, "watches", VAL_REQUIRED, 1, 100000, &list))
        return;
    c->n = json_array_size(list);
    c->watches = calloc(c->n, sizeof *c->watches);
    c->has_id = calloc(c->n, sizeof *c->has_id);
    if (!c->watches || !c->has_id) {
        c->n = 0;
        return;
    }
    val_enter_key(v, "watches");
    for (size_t i = 0; i < c->n; i++) {
        json_t *item;
        val_enter_index(v, i);
        if (val_object_here(v, json_array_get(list, i), &item))
            read_watch(v, item, &c->watches[i], &c->has_id[i]);
        val_leave(v);
    }
    val_leave(v);
    for (size_t i = 0; i < c->n; i++)
        c->watches[i].currency = (ev_str){c->currency, 3};
}

int catfile_load(const char *path, catfile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    out->root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!out->root) {
        snprintf(err, errlen, "cannot read the catalog %s: %s (line %d, column %d)", path,
                 je.text, je.line, je.column);
        return -1;
    }
    if (!json_is_object(out->root)) {
        snprintf(err, errlen, "%s is not a valid catalog: a JSON object with \"watches\" is expected",
                 path);
        catfile_free(out);
        return -1;
    }
    val_ctx v;
    val_init(&v);
    read_doc(&v, out);
    int rc = 0;
    if (val_failed(&v)) {
        details_text(path, &v, err, errlen);
        rc = -1;
    } else if (!out->watches) {
        snprintf(err, errlen, "out of memory reading %s", path);
        rc = -1;
    }
    val_free(&v);
    if (rc)
        catfile_free(out);
    return rc;
}

void catfile_free(catfile *c)
{
    if (!c)
        return;
    free(c->watches);
    free(c->has_id);
    json_decref(c->root);
    memset(c, 0, sizeof *c);
}
