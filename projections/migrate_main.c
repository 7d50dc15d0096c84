/* migrate_main.c - the `migrate` command: applies the read models' SQL
 * migrations (built into this binary from schemas/migrations/). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

static const char usage[] =
    "usage: migrate [--db CONNINFO] [--schema NAME] [--status]\n"
    "\n"
    "Applies the pending SQL migrations of the watch store's PostgreSQL read\n"
    "models, each once and all in one transaction. The projector does the same\n"
    "when it starts, so this is for operators who want it done (or checked)\n"
    "beforehand.\n"
    "\n"
    "  --db CONNINFO   libpq connection string or URI (default: $WATCHSTORE_DB)\n"
    "  --schema NAME   the schema to migrate (default: public)\n"
    "  --status        print the applied and the built-in versions; change nothing\n"
    "  -h, --help      this text\n"
    "\n"
    "Examples:\n"
    "  migrate --db 'host=var/pg/run dbname=watchstore user=postgres'\n"
    "  WATCHSTORE_DB=postgresql://127.0.0.1:5433/watchstore migrate --status\n"
    "\n"
    "Exit status: 0 up to date, 1 a migration failed or was refused, 2 usage or\n"
    "connection error.\n";

int main(int argc, char **argv)
{
    const char *conninfo = getenv("WATCHSTORE_DB"), *schema = "public";
    int status = 0, ch;
    static const struct option lo[] = {{"db", required_argument, 0, 'd'},
                                       {"schema", required_argument, 0, 's'},
                                       {"status", no_argument, 0, 't'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': conninfo = optarg; break;
        case 's': schema = optarg; break;
        case 't': status = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc || !conninfo) {
        fputs(conninfo ? usage : "migrate: no database: give --db or set WATCHSTORE_DB\n", stderr);
        return 2;
    }
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        /* libpq's message names host and reason, never the password. */
        fprintf(stderr, "migrate: cannot connect: %s", PQerrorMessage(db));
        PQfinish(db);
        return 2;
    }
    char err[1024];
    int rc = 0;
    if (status) {
        int v = proj_schema_version(db, schema, err, sizeof err);
        int built = proj_n_migrations ? proj_migrations[proj_n_migrations - 1].version : 0;
        if (v < 0) {
            fprintf(stderr, "migrate: %s", err);
            rc = 2;
        } else {
            printf("schema %s: at version %d; this build has up to %d (%s)\n", schema, v,
                   built, v == built ? "up to date" : v < built ? "pending" : "database is newer");
        }
    } else {
        int applied;
        if (proj_migrate(db, schema, &applied, err, sizeof err) != 0) {
            fprintf(stderr, "migrate: %s\n", err);
            rc = 1;
        } else {
            printf("schema %s: %d migration%s applied, up to date at version %d\n", schema,
                   applied, applied == 1 ? "" : "s",
                   proj_n_migrations ? proj_migrations[proj_n_migrations - 1].version : 0);
        }
    }
    PQfinish(db);
    return rc;
}
