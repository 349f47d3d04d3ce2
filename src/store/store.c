/*
 * store.c - opening SQLite databases: pragmas and migrations. Migration k
 * (0-based) brings a database from user_version k to k + 1; each runs in one
 * transaction with the version bump, so a crash leaves the database at a
 * whole version.
 */
#include "store.h"

#include "core/core.h"

#include <stdio.h>

static int user_version(sqlite3 *db) {
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static hearth_err migrate(sqlite3 *db, const char *const *migrations, int n) {
    const int v = user_version(db);
    if (v < 0) return store_fail(db, "reading user_version");
    if (v > n)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "store: the database is at schema version %d; this Hearth knows %d", v, n);
    for (int k = v; k < n; k++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", k + 1);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return store_fail(db, "starting a migration");
        if (user_version(db) > k) { /* another process migrated meanwhile */
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            continue;
        }
        if (sqlite3_exec(db, migrations[k], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, NULL) != SQLITE_OK) {
            const hearth_err err = store_fail(db, "migrating");
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return err;
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return store_fail(db, "committing a migration");
    }
    return HEARTH_OK;
}

hearth_err store_open(const char *path, const char *const *migrations, int n_migrations,
                      sqlite3 **out) {
    sqlite3 *db = NULL;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        const hearth_err err = hr_fail(HEARTH_ERR_IO, "store: cannot open '%s': %s", path,
                                       db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return err;
    }
    sqlite3_busy_timeout(db, 5000);
    hearth_err err = HEARTH_OK;
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                     "PRAGMA foreign_keys = ON;",
                     NULL, NULL, NULL) != SQLITE_OK)
        err = store_fail(db, "setting pragmas");
    if (!err) err = migrate(db, migrations, n_migrations);
    if (err) {
        hr_wrap(err, "'%s': ", path);
        sqlite3_close_v2(db);
        return err;
    }
    *out = db;
    return HEARTH_OK;
}
