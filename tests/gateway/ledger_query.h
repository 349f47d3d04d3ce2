/*
 * ledger_query.h - what the gateway's tests read back from a ledger (or any
 * SQLite file): one integer. Opened read-only, so that a query never creates
 * the file or writes to a database a running server owns. Header-only.
 */
#ifndef HEARTH_LEDGER_QUERY_H
#define HEARTH_LEDGER_QUERY_H

#include <sqlite3.h>
#include <stdint.h>

/* The first column of the first row `sql` returns on the database at path;
 * -1 when it cannot be opened, the statement fails or there is no row. */
static inline int64_t db_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

#endif
