/*
 * ledger_scan.c - reading the ledger's rows back in time order, for what
 * looks at the traffic over windows (the drift layer, the dashboard's series).
 * The rows go out in chunks, each read under the ledger's lock and handed over
 * after it is released: a scan of a month of traffic must not hold up the
 * requests being written meanwhile.
 *
 * Rows are read in rowid order, not through the time index: the index would
 * cost a random lookup into the table per row (three times slower on a
 * large ledger), while rows are written nearly in time order anyway. The
 * index only bounds the scan: the smallest and largest rowid of the window's
 * rows, read from the index alone, so every row of the window lies between
 * them however out of order its time was written. (The unary + keeps the
 * planner off the index in the scan itself.)
 */
#include "ledger_db.h"

#include "core/core.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SCAN_CHUNK = 2048 };

static const char bounds_sql[] =
    "SELECT min(id), max(id) FROM requests WHERE time_ms >= ?1 AND time_ms < ?2";

static const char scan_sql[] =
    "SELECT id, time_ms, route, tier, status, degraded, prompt_tokens, completion_tokens,"
    " latency_ms, cost_usd_micro, cloud_only_cost_usd_micro, router_score, conf_mean, conf_min"
    " FROM requests WHERE id > ?3 AND id <= ?4 AND +time_ms >= ?1 AND +time_ms < ?2"
    " ORDER BY id LIMIT ?5";

static gw_route route_of(const char *s) {
    if (s && !strcmp(s, "escalated")) return GW_ROUTE_ESCALATED;
    if (s && !strcmp(s, "explicit")) return GW_ROUTE_EXPLICIT;
    return GW_ROUTE_LOCAL;
}

static double score_of(sqlite3_stmt *st, int col) {
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

/* The rowids of the window's rows lie in (*lo, *hi]; *hi < *lo when none. */
static hearth_err bounds(gw_ledger *l, int64_t since_ms, int64_t until_ms, int64_t *lo,
                         int64_t *hi) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    *lo = 0, *hi = -1;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db, bounds_sql, -1, &st, NULL) != SQLITE_OK) {
        err = store_fail(l->db, "ledger: preparing the scan");
    } else {
        sqlite3_bind_int64(st, 1, since_ms);
        sqlite3_bind_int64(st, 2, until_ms);
        if (sqlite3_step(st) != SQLITE_ROW)
            err = store_fail(l->db, "ledger: scanning");
        else if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *lo = sqlite3_column_int64(st, 0) - 1, *hi = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

/* Reads up to SCAN_CHUNK of the window's rows with rowids in (*last_id, hi]. */
static hearth_err read_chunk(gw_ledger *l, int64_t since_ms, int64_t until_ms, int64_t *last_id,
                             int64_t hi, gw_ledger_point *rows, size_t *n) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    *n = 0;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db, scan_sql, -1, &st, NULL) != SQLITE_OK) {
        err = store_fail(l->db, "ledger: preparing the scan");
        goto done;
    }
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, until_ms);
    sqlite3_bind_int64(st, 3, *last_id);
    sqlite3_bind_int64(st, 4, hi);
    sqlite3_bind_int(st, 5, SCAN_CHUNK);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gw_ledger_point *p = &rows[(*n)++];
        p->id = sqlite3_column_int64(st, 0);
        p->time_ms = sqlite3_column_int64(st, 1);
        p->route = route_of((const char *)sqlite3_column_text(st, 2));
        const char *tier = (const char *)sqlite3_column_text(st, 3);
        snprintf(p->tier, sizeof p->tier, "%s", tier ? tier : "");
        p->status = sqlite3_column_int(st, 4);
        p->degraded = sqlite3_column_int(st, 5) != 0;
        p->prompt_tokens = sqlite3_column_int(st, 6);
        p->completion_tokens = sqlite3_column_int(st, 7);
        p->latency_ms = sqlite3_column_int64(st, 8);
        p->cost_usd_micro = sqlite3_column_int64(st, 9);
        p->cloud_only_cost_usd_micro = sqlite3_column_int64(st, 10);
        p->router_score = score_of(st, 11);
        p->conf_mean = score_of(st, 12);
        p->conf_min = score_of(st, 13);
    }
    if (rc != SQLITE_DONE) err = store_fail(l->db, "ledger: scanning");
    if (*n) *last_id = rows[*n - 1].id;
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

hearth_err gw_ledger_scan(gw_ledger *l, int64_t since_ms, int64_t until_ms, gw_ledger_visit visit,
                          void *user) {
    gw_ledger_point *rows = malloc(SCAN_CHUNK * sizeof *rows);
    if (!rows) return hr_fail(HEARTH_ERR_NOMEM, "ledger: out of memory");
    int64_t last_id, hi;
    hearth_err err = bounds(l, since_ms, until_ms, &last_id, &hi);
    while (!err && last_id < hi) {
        size_t n;
        err = read_chunk(l, since_ms, until_ms, &last_id, hi, rows, &n);
        if (err || !n) break;
        err = visit(user, rows, n);
        if (err || n < SCAN_CHUNK) break;
    }
    free(rows);
    return err;
}
