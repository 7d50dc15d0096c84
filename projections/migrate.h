/* migrate.h - versioned SQL migrations of the PostgreSQL read models.
 *
 * Owns: the migrations built into the binary (from schemas/migrations/, in
 * version order) and the `schema_migrations` table that records, per schema,
 * which were applied and the SHA-256 of the text applied. All pending
 * migrations of a schema are applied in one transaction, each once; a
 * migration whose text changed after it was applied, or a database newer
 * than this build, is refused rather than guessed at.
 */
#ifndef WS_MIGRATE_H
#define WS_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct proj_migration {
    int version;
    const char *name; /* file name, e.g. "0001_read_models.sql" */
    const char *sql;
    size_t len;
} proj_migration;

extern const proj_migration proj_migrations[];
extern const size_t proj_n_migrations;

/* Applies the pending migrations to `schema` (created if missing; "public"
 * for the live read models). *applied receives how many were applied.
 * Returns 0, or -1 with a sentence in err. */
int proj_migrate(PGconn *db, const char *schema, int *applied, char *err,
                 size_t errlen);

/* The highest version applied in `schema` (0: none, -1: error). */
int proj_schema_version(PGconn *db, const char *schema, char *err, size_t errlen);

#endif
