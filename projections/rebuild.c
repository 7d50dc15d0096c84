/* rebuild.c - shadow rebuild and atomic swap of the read models (see
 * rebuild.h): the shadow's secondary indexes are dropped for the fill and
 * built again before the swap. */
#include "rebuild.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proj_pg.h"

#define SHADOW "rm_shadow"
#define RETIRED "rm_retired"

static int exec_ok(PGconn *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------ indexes */

/* The shadow's secondary indexes (not primary keys, not unique
 * constraints), kept as their CREATE INDEX statements while they are
 * dropped for the fill: building them once at the end costs a fraction of
 * maintaining them row by row. */
typedef struct deferred {
    char **defs;
    int n;
} deferred;

static void deferred_free(deferred *d)
{
    for (int i = 0; i < d->n; i++)
        free(d->defs[i]);
    free(d->defs);
    d->defs = NULL;
    d->n = 0;
}

static int drop_secondary(PGconn *db, deferred *d, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, "SELECT quote_ident(i.indexname), i.indexdef FROM pg_indexes i"
                             " JOIN pg_namespace n ON n.nspname = i.schemaname"
                             " JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = i.indexname"
                             " JOIN pg_index x ON x.indexrelid = c.oid"
                             " WHERE i.schemaname = '" SHADOW "' AND NOT x.indisunique"
                             " ORDER BY i.indexname");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading the shadow's indexes: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r), rc = 0;
    d->defs = calloc((size_t)n + 1, sizeof *d->defs);
    if (!d->defs) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char sql[256];
        if (!(d->defs[d->n] = strdup(PQgetvalue(r, i, 1)))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        d->n++;
        snprintf(sql, sizeof sql, "DROP INDEX " SHADOW ".%s", PQgetvalue(r, i, 0));
        rc = exec_ok(db, sql, err, errlen);
    }
    PQclear(r);
    return rc;
}

/* The dropped indexes built again, then statistics for the planner. */
static int restore_secondary(PGconn *db, deferred *d, char *err, size_t errlen)
{
    if (exec_ok(db, "SET maintenance_work_mem = '256MB'", err, errlen))
        return -1;
    for (int i = 0; i < d->n; i++)
        if (exec_ok(db, d->defs[i], err, errlen))
            return -1;
    PGresult *r = PQexec(db, "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables"
                             " WHERE schemaname = '" SHADOW "'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQgetisnull(r, 0, 0)) {
        snprintf(err, errlen, "listing the shadow's tables: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    char sql[1024];
    snprintf(sql, sizeof sql, "SET search_path TO " SHADOW "; ANALYZE %s; RESET search_path",
             PQgetvalue(r, 0, 0));
    PQclear(r);
    return exec_ok(db, sql, err, errlen);
}

/* ------------------------------------------------------------ swap */

/* The swap, in one transaction. Each table moves with its indexes. */
static int swap(PGconn *db, char *err, size_t errlen)
{
    PGresult *r = PQexec(db, "SELECT c.relname FROM pg_class c JOIN pg_namespace n"
                             " ON n.oid = c.relnamespace WHERE n.nspname = '" SHADOW "'"
                             " AND c.relkind = 'r' ORDER BY c.relname");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r), rc = 0;
    /* Short lock waits: better to retry the swap than to queue readers
     * behind it, or to let a deadlock make a reader the victim. */
    if (exec_ok(db, "BEGIN; SET LOCAL lock_timeout = '200ms';"
                    " DROP SCHEMA IF EXISTS " RETIRED " CASCADE; CREATE SCHEMA " RETIRED,
                err, errlen)) {
        PQclear(r);
        PQclear(PQexec(db, "ROLLBACK"));
        return -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const char *t = PQgetvalue(r, i, 0);
        char *id = PQescapeIdentifier(db, t, strlen(t));
        char sql[512];
        snprintf(sql, sizeof sql,
                 "DO $$ BEGIN IF to_regclass('public.%s') IS NOT NULL THEN"
                 " ALTER TABLE public.%s SET SCHEMA " RETIRED "; END IF; END $$;"
                 " ALTER TABLE " SHADOW ".%s SET SCHEMA public;"
                 " ALTER TABLE public.%s RESET (autovacuum_enabled)",
                 id, id, id, id);
        PQfreemem(id);
        rc = exec_ok(db, sql, err, errlen);
    }
    PQclear(r);
    if (rc == 0)
        rc = exec_ok(db, "COMMIT", err, errlen);
    if (rc) {
        PQclear(PQexec(db, "ROLLBACK"));
        return -1;
    }
    char ignore[256];
    exec_ok(db, "DROP SCHEMA IF EXISTS " RETIRED " CASCADE; DROP SCHEMA IF EXISTS " SHADOW " CASCADE",
            ignore, sizeof ignore);
    return 0;
}

int proj_pg_rebuild(log_t *log, const char *conninfo, size_t batch, proj_progress_fn fn,
                    void *ud, proj_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(db));
        PQfinish(db);
        return -1;
    }
    int rc = -1;
    proj_pg *shadow = NULL;
    deferred idx = {NULL, 0};
    if (exec_ok(db, "SET client_min_messages TO warning;"
                    " DROP SCHEMA IF EXISTS " SHADOW " CASCADE",
                err, errlen))
        goto out;
    if (!(shadow = proj_pg_open(conninfo, SHADOW, err, errlen)))
        goto out;
    proj_pg_set_async_commit(shadow, true);
    proj_sink sink = proj_pg_sink(shadow);
    /* No autovacuum on the shadow while it fills: the freshly loaded
     * tables would draw it at once, and its locks would stall the swap
     * (ANALYZE runs explicitly before the swap; the swap turns it back on). */
    if (exec_ok(db, "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables"
                    " WHERE schemaname = '" SHADOW "' LOOP EXECUTE format('ALTER TABLE "
                    SHADOW ".%I SET (autovacuum_enabled = false)', t); END LOOP; END $$",
                err, errlen) ||
        drop_secondary(db, &idx, err, errlen) ||
        proj_fill(log, &sink, batch, fn, ud, st, err, errlen) ||
        restore_secondary(db, &idx, err, errlen))
        goto out;
    /* The live projector keeps going meanwhile; each attempt first catches
     * the shadow up again, then swaps. After the swap the live projector
     * carries on from the shadow's position. */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int attempt = 0;; attempt++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (attempt > 0 && now.tv_sec - t0.tv_sec > 120)
            break; /* err holds the last attempt's reason */
        if (proj_fill(log, &sink, batch, fn, ud, st, err, errlen))
            goto out;
        if (swap(db, err, errlen) == 0) {
            rc = 0;
            goto out;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
out:
    deferred_free(&idx);
    proj_pg_close(shadow);
    PQfinish(db);
    return rc;
}
