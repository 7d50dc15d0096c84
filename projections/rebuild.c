/* rebuild.c - shadow rebuild and atomic swap of the read models (see
 * rebuild.h). */
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
                 " ALTER TABLE " SHADOW ".%s SET SCHEMA public",
                 id, id, id);
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
    if (exec_ok(db, "SET client_min_messages TO warning;"
                    " DROP SCHEMA IF EXISTS " SHADOW " CASCADE",
                err, errlen))
        goto out;
    if (!(shadow = proj_pg_open(conninfo, SHADOW, err, errlen)))
        goto out;
    proj_pg_set_async_commit(shadow, true);
    proj_sink sink = proj_pg_sink(shadow);
    if (proj_fill(log, &sink, batch, fn, ud, st, err, errlen))
        goto out;
    /* The live projector keeps going meanwhile; each attempt first catches
     * the shadow up again, then swaps. After the swap the live projector
     * carries on from the shadow's position. */
    for (int attempt = 0; attempt < 50; attempt++) {
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
    proj_pg_close(shadow);
    PQfinish(db);
    return rc;
}
