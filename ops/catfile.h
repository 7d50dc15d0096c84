/* catfile.h - reading a catalog file (ops/demo/watches.json) into the watch
 * fields of DEC_WATCH_ADD commands.
 *
 * Owns the parsed file: the watches' strings borrow the JSON document's
 * storage and live until catfile_free. The file is a JSON object
 *   {"currency": "USD", "watches": [ {watch}, ... ]}
 * where each watch has the fields of POST /api/v1/admin/watches (API.md):
 * watch_name and price required; brand, model_code, description,
 * stock_quantity (default 0), image_url (an http(s) URL; null or "" for
 * none), category (one of the six, or null) optional; and an optional
 * watch_id (a UUID) for fixed ids. Fields are checked with the API's own
 * validators (api/validate.h), so a file the API would refuse is refused
 * here too, every failing field named. currency defaults to USD.
 */
#ifndef WS_CATFILE_H
#define WS_CATFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/decide.h"

typedef struct catfile {
    json_t *root;               /* the document the strings borrow from */
    dec_watch_fields *watches;  /* in the file's order */
    bool *has_id;               /* watches[i].watch_id came from the file */
    size_t n;
    char currency[4];           /* upper case */
} catfile;

/* Reads and checks the file at `path`. 0, or -1 with a sentence in err
 * (the file, and each failing entry and field). */
int catfile_load(const char *path, catfile *out, char *err, size_t errlen);
void catfile_free(catfile *c);

#endif
