/*
 * store.h - the store layer: SQLite databases opened the one way Hearth uses
 * them (WAL journal, a busy timeout, foreign keys) and brought up to date by
 * numbered migrations. What must later be shared by several gateway
 * replicas goes through the gateway's own interfaces, so another database
 * can stand in for SQLite there.
 */
#ifndef HEARTH_STORE_H
#define HEARTH_STORE_H

#include "hearth.h"

#include "core/core.h"

#include <sqlite3.h>

/* Opens (creating) the database at path (":memory:" for a private one),
 * sets WAL mode, synchronous=NORMAL, busy_timeout 5 s and foreign keys, then
 * applies migrations[user_version .. n) each in its own transaction,
 * recording the count in PRAGMA user_version. A database newer than the
 * migrations known here is refused. On success *out is owned by the caller
 * (sqlite3_close_v2). The handle is opened without SQLite's own mutex: its
 * user serializes access. */
hearth_err store_open(const char *path, const char *const *migrations, int n_migrations,
                      sqlite3 **out);

/* Records the database's last error as a hearth_err (HEARTH_ERR_IO) with
 * "store: <what>: <sqlite message>" and returns it. Inline so that callers
 * (and the static analyzer) see that it never returns HEARTH_OK. */
static inline hearth_err store_fail(sqlite3 *db, const char *what) {
    return hr_fail(HEARTH_ERR_IO, "store: %s: %s", what,
                   db ? sqlite3_errmsg(db) : "cannot allocate a database handle");
}

#endif
