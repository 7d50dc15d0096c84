/* pg_support.c - fresh databases for tests (see pg_support.h). */
#include "pg_support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *base(void)
{
    const char *b = getenv("WATCHSTORE_TEST_DB");
    cr_assert_not_null(b, "WATCHSTORE_TEST_DB is set by ctest's pg fixture");
    return b;
}

PGconn *ts_pg_connect(const char *conninfo)
{
    PGconn *db = PQconnectdb(conninfo);
    cr_assert_eq(PQstatus(db), CONNECTION_OK, "connect: %s", PQerrorMessage(db));
    PGresult *r = PQexec(db, "SET client_min_messages TO warning");
    PQclear(r);
    return db;
}

void ts_pg_fresh_db(char *buf, size_t cap)
{
    static int n;
    char name[64], sql[128];
    snprintf(name, sizeof name, "t_%ld_%d", (long)getpid(), n++);
    PGconn *db = ts_pg_connect(base());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
    PQclear(PQexec(db, sql));
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQexec(db, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(db);
    /* In a conninfo string the last setting of a keyword wins. */
    snprintf(buf, cap, "%s dbname=%s", base(), name);
}

char *ts_pg_value(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    char *v = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return v;
}

char *ts_pg_checksum(const char *conninfo)
{
    PGconn *db = ts_pg_connect(conninfo);
    char *v = ts_pg_value(
        db, "SELECT md5(concat_ws('#',"
            " (SELECT string_agg(t::text, '|' ORDER BY watch_id) FROM watches t),"
            " (SELECT string_agg(t::text, '|' ORDER BY customer_id) FROM customers t),"
            " (SELECT string_agg(t::text, '|' ORDER BY order_id) FROM orders t),"
            " (SELECT string_agg(t::text, '|' ORDER BY item_id) FROM order_items t),"
            " (SELECT string_agg(t::text, '|' ORDER BY invoice_id) FROM invoices t),"
            " (SELECT string_agg(t::text, '|' ORDER BY movement_id) FROM stock_movements t),"
            " (SELECT string_agg(t::text, '|' ORDER BY source_pos) FROM payments t),"
            " (SELECT next_pos || ':' || next_movement_id FROM projection_state)))");
    PQfinish(db);
    return v;
}
