/* test_migrate.c - the read models' migrations against a real PostgreSQL:
 * applied in order, each once, recorded; the old system's tables and columns
 * exactly; edited or newer migrations refused; a shadow schema beside the
 * live one. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "pg_support.h"

static PGconn *fresh(void)
{
    char ci[512];
    ts_pg_fresh_db(ci, sizeof ci);
    return ts_pg_connect(ci);
}

static int migrate(PGconn *db, const char *schema, char *err)
{
    int applied = -1;
    int rc = proj_migrate(db, schema, &applied, err, 1024);
    return rc == 0 ? applied : -1;
}

Test(migrate, applies_each_migration_once_and_records_it)
{
    PGconn *db = fresh();
    char err[1024] = "";
    cr_assert_eq(migrate(db, "public", err), (int)proj_n_migrations, "%s", err);
    cr_assert_eq(migrate(db, "public", err), 0, "a second run applies nothing: %s", err);
    char *n = ts_pg_value(db, "SELECT count(*) FROM public.schema_migrations");
    cr_assert_eq(atoi(n), (int)proj_n_migrations);
    free(n);
    char *name = ts_pg_value(db, "SELECT name FROM schema_migrations WHERE version = 1");
    cr_assert_str_eq(name, "0001_read_models.sql");
    free(name);
    char *sum = ts_pg_value(db, "SELECT checksum FROM schema_migrations WHERE version = 1");
    cr_assert_eq(strlen(sum), 64);
    free(sum);
    cr_assert_eq(proj_schema_version(db, "public", err, sizeof err),
                 proj_migrations[proj_n_migrations - 1].version);
    PQfinish(db);
}

/* The old system's columns, as analysts' SQL uses them (DESIGN.md). */
static const struct {
    const char *table, *column, *type;
    int not_null;
} columns[] = {
    {"watches", "watch_id", "uuid", 1},
    {"watches", "watch_name", "character varying(255)", 1},
    {"watches", "brand", "character varying(100)", 0},
    {"watches", "model_code", "character varying(50)", 0},
    {"watches", "description", "text", 0},
    {"watches", "price", "numeric(10,2)", 1},
    {"watches", "stock_quantity", "integer", 0},
    {"watches", "image_url", "text", 0},
    {"watches", "category", "character varying(50)", 0},
    {"watches", "created_at", "timestamp with time zone", 0},
    {"watches", "updated_at", "timestamp with time zone", 1},
    {"watches", "source_pos", "bigint", 1},
    {"customers", "customer_id", "integer", 1},
    {"customers", "email", "character varying(255)", 1},
    {"customers", "full_name", "character varying(255)", 1},
    {"customers", "phone", "character varying(50)", 0},
    {"customers", "address", "text", 0},
    {"customers", "city", "character varying(100)", 0},
    {"customers", "country", "character varying(100)", 0},
    {"customers", "is_admin", "boolean", 1},
    {"customers", "created_at", "timestamp with time zone", 0},
    {"orders", "order_id", "integer", 1},
    {"orders", "customer_id", "integer", 0},
    {"orders", "order_date", "timestamp with time zone", 0},
    {"orders", "total_amount", "numeric(10,2)", 1},
    {"orders", "status", "character varying(50)", 0},
    {"orders", "payment_intent_id", "character varying(255)", 0},
    {"orders", "shipping_address", "text", 0},
    {"orders", "invoice_url", "character varying(500)", 0},
    {"order_items", "item_id", "integer", 1},
    {"order_items", "order_id", "integer", 1},
    {"order_items", "watch_id", "uuid", 0},
    {"order_items", "quantity", "integer", 1},
    {"order_items", "unit_price", "numeric(10,2)", 1},
    {"order_items", "subtotal", "numeric(10,2)", 1},
    {"invoices", "invoice_id", "integer", 1},
    {"invoices", "order_id", "integer", 0},
    {"invoices", "invoice_number", "character varying(50)", 1},
    {"invoices", "issue_date", "timestamp with time zone", 0},
    {"invoices", "pdf_path", "character varying(500)", 0},
    {"invoices", "total", "numeric(10,2)", 0},
    {"stock_movements", "movement_id", "integer", 1},
    {"stock_movements", "watch_id", "uuid", 0},
    {"stock_movements", "quantity_change", "integer", 1},
    {"stock_movements", "movement_type", "character varying(50)", 0},
    {"stock_movements", "reference_id", "integer", 0},
    {"stock_movements", "notes", "text", 0},
    {"stock_movements", "created_at", "timestamp with time zone", 0},
    {"integration_logs", "log_id", "integer", 1},
    {"integration_logs", "order_id", "integer", 0},
    {"integration_logs", "service", "character varying(100)", 1},
    {"integration_logs", "status", "character varying(50)", 1},
    {"integration_logs", "payload", "jsonb", 0},
    {"integration_logs", "error_message", "text", 0},
    {"integration_logs", "created_at", "timestamp with time zone", 0},
};

Test(migrate, the_old_tables_and_columns_exactly)
{
    PGconn *db = fresh();
    char err[1024] = "";
    cr_assert_geq(migrate(db, "public", err), 1, "%s", err);
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++) {
        const char *vals[2] = {columns[i].table, columns[i].column};
        PGresult *r = PQexecParams(
            db,
            "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a"
            " WHERE a.attrelid = ('public.' || $1)::regclass AND a.attname = $2"
            " AND NOT a.attisdropped",
            2, NULL, vals, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
        cr_assert_eq(PQntuples(r), 1, "%s.%s exists", columns[i].table, columns[i].column);
        cr_assert_str_eq(PQgetvalue(r, 0, 0), columns[i].type, "%s.%s type",
                         columns[i].table, columns[i].column);
        cr_assert_eq(strcmp(PQgetvalue(r, 0, 1), "t") == 0, columns[i].not_null,
                     "%s.%s nullability", columns[i].table, columns[i].column);
        PQclear(r);
    }
    /* No secret in analysts' tables. */
    char *pw = ts_pg_value(db, "SELECT count(*) FROM information_schema.columns"
                               " WHERE table_schema = 'public' AND column_name LIKE '%password%'");
    cr_assert_str_eq(pw, "0");
    free(pw);
    /* Every read-model row names the event that wrote it. */
    char *missing = ts_pg_value(
        db, "SELECT count(*) FROM information_schema.tables t WHERE t.table_schema = 'public'"
            " AND t.table_name NOT IN ('schema_migrations', 'projection_state', 'payments')"
            " AND NOT EXISTS (SELECT 1 FROM information_schema.columns c WHERE"
            " c.table_schema = 'public' AND c.table_name = t.table_name AND c.column_name = 'source_pos')");
    cr_assert_str_eq(missing, "0");
    free(missing);
    PQfinish(db);
}

Test(migrate, an_edited_migration_is_refused)
{
    PGconn *db = fresh();
    char err[1024] = "";
    cr_assert_geq(migrate(db, "public", err), 1, "%s", err);
    PQclear(PQexec(db, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1"));
    cr_assert_eq(migrate(db, "public", err), -1);
    cr_assert_not_null(strstr(err, "0001_read_models.sql was changed"), "%s", err);
    PQfinish(db);
}

Test(migrate, a_database_newer_than_the_build_is_refused)
{
    PGconn *db = fresh();
    char err[1024] = "";
    cr_assert_geq(migrate(db, "public", err), 1, "%s", err);
    PQclear(PQexec(db, "INSERT INTO schema_migrations (version, name, checksum)"
                       " VALUES (9999, '9999_future.sql', 'x')"));
    cr_assert_eq(migrate(db, "public", err), -1);
    cr_assert_not_null(strstr(err, "newer than this build"), "%s", err);
    PQfinish(db);
}

Test(migrate, a_shadow_schema_beside_the_live_one)
{
    PGconn *db = fresh();
    char err[1024] = "";
    cr_assert_geq(migrate(db, "public", err), 1, "%s", err);
    PQclear(PQexec(db, "INSERT INTO public.projection_state (projection, next_pos)"
                       " VALUES ('pg', 42)"));
    cr_assert_eq(migrate(db, "rm_shadow", err), (int)proj_n_migrations, "%s", err);
    char *live = ts_pg_value(db, "SELECT next_pos FROM public.projection_state");
    char *shadow = ts_pg_value(db, "SELECT count(*) FROM rm_shadow.projection_state");
    cr_assert_str_eq(live, "42");
    cr_assert_str_eq(shadow, "0");
    free(live);
    free(shadow);
    /* Both are tracked separately. */
    cr_assert_eq(proj_schema_version(db, "rm_shadow", err, sizeof err),
                 proj_migrations[proj_n_migrations - 1].version);
    cr_assert_eq(proj_schema_version(db, "no_such_schema", err, sizeof err), 0);
    PQfinish(db);
}
