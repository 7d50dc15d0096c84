/* migrate.c - applying the embedded migrations (see migrate.h). */
#include "migrate.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sha256_hex(const char *p, size_t n, char out[65])
{
    unsigned char h[32];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";
    EVP_Digest(p, n, h, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = 0;
}

/* Runs a statement without parameters; on failure writes err. */
static int exec(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* BEGIN; the schema and its migrations table; search_path set to it. */
static int enter_schema(PGconn *db, const char *schema, char *err, size_t errlen)
{
    char *id = PQescapeIdentifier(db, schema, strlen(schema));
    if (!id) {
        snprintf(err, errlen, "bad schema name: %s", PQerrorMessage(db));
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN;"
             "SET LOCAL client_min_messages TO warning;"
             "CREATE SCHEMA IF NOT EXISTS %s;"
             "SET LOCAL search_path TO %s;"
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             " version integer PRIMARY KEY, name text NOT NULL,"
             " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
             "LOCK TABLE schema_migrations IN EXCLUSIVE MODE;",
             id, id);
    PQfreemem(id);
    return exec(db, sql, err, errlen);
}

int proj_migrate(PGconn *db, const char *schema, int *applied, char *err,
                 size_t errlen)
{
    *applied = 0;
    if (enter_schema(db, schema, err, errlen) != 0)
        goto fail;
    PGresult *r = PQexec(db, "SELECT version, checksum, name FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        goto fail;
    }
    int rows = PQntuples(r), newest_db = 0;
    for (int i = 0; i < rows; i++) {
        int v = atoi(PQgetvalue(r, i, 0));
        if (v > newest_db)
            newest_db = v;
    }
    int newest_build = proj_n_migrations ? proj_migrations[proj_n_migrations - 1].version : 0;
    if (newest_db > newest_build) {
        snprintf(err, errlen,
                 "schema %s is at migration %d, newer than this build knows (%d): "
                 "run a newer build",
                 schema, newest_db, newest_build);
        PQclear(r);
        goto fail;
    }
    for (size_t m = 0; m < proj_n_migrations; m++) {
        const proj_migration *mg = &proj_migrations[m];
        char sum[65];
        sha256_hex(mg->sql, mg->len, sum);
        int done = 0;
        for (int i = 0; i < rows && !done; i++) {
            if (atoi(PQgetvalue(r, i, 0)) != mg->version)
                continue;
            done = 1;
            if (strcmp(PQgetvalue(r, i, 1), sum) != 0) {
                snprintf(err, errlen,
                         "migration %s was changed after it was applied to schema %s; "
                         "add a new migration instead of editing an applied one",
                         mg->name, schema);
                PQclear(r);
                goto fail;
            }
        }
        if (done)
            continue;
        char e2[1024];
        if (exec(db, mg->sql, e2, sizeof e2) != 0) {
            snprintf(err, errlen, "migration %s failed: %s", mg->name, e2);
            PQclear(r);
            goto fail;
        }
        char ver[16];
        snprintf(ver, sizeof ver, "%d", mg->version);
        const char *vals[3] = {ver, mg->name, sum};
        PGresult *ins = PQexecParams(
            db, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            3, NULL, vals, NULL, NULL, 0);
        int ok = PQresultStatus(ins) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "%s", PQresultErrorMessage(ins));
        PQclear(ins);
        if (!ok) {
            PQclear(r);
            goto fail;
        }
        (*applied)++;
    }
    PQclear(r);
    if (exec(db, "COMMIT", err, errlen) != 0)
        goto fail;
    return 0;
fail:
    {
        PGresult *rb = PQexec(db, "ROLLBACK");
        PQclear(rb);
    }
    *applied = 0;
    return -1;
}

int proj_schema_version(PGconn *db, const char *schema, char *err, size_t errlen)
{
    const char *vals[1] = {schema};
    PGresult *r = PQexecParams(
        db,
        "SELECT to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL",
        1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return 0;
    char *id = PQescapeIdentifier(db, schema, strlen(schema));
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT coalesce(max(version), 0) FROM %s.schema_migrations", id);
    PQfreemem(id);
    r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}
