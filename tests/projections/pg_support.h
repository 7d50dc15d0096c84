/* pg_support.h - a fresh database per test in the throwaway cluster that
 * ctest's pg fixture starts (ops/pg.sh; $WATCHSTORE_TEST_DB points at it). */
#ifndef WS_TEST_PG_SUPPORT_H
#define WS_TEST_PG_SUPPORT_H

#include <libpq-fe.h>
#include <stddef.h>

/* Creates an empty database and writes its conninfo into buf. */
void ts_pg_fresh_db(char *buf, size_t cap);
/* Connects (asserting success). */
PGconn *ts_pg_connect(const char *conninfo);
/* Runs a query and returns its single value as a malloc'd string ("" for no
 * rows); asserts it succeeded. */
char *ts_pg_value(PGconn *db, const char *sql);

/* md5 of every read-model table's rows in key order, and of the position:
 * equal checksums mean identical read models. Caller frees. */
char *ts_pg_checksum(const char *conninfo);

#endif
