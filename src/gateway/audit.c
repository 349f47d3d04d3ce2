/*
 * audit.c - the audit log of escalations: when, to which tier, what was done
 * (sent, blocked, refused), which entity types were replaced and how often,
 * and SHA-256 digests of the body sent and the answer received. The raw text
 * is never stored: a digest lets an auditor check a transcript someone
 * produces later without the log itself holding personal data.
 */
#include "ledger_db.h"

#include "core/core.h"
#include "store/store.h"

hearth_err gw_audit_add(gw_ledger *l, const gw_audit_row *r) {
    pthread_mutex_lock(&l->mu);
    sqlite3_stmt *st = l->insert_audit;
    sqlite3_bind_int64(st, 1, r->time_ms ? r->time_ms : gw_now_ms());
    sqlite3_bind_text(st, 2, r->tier ? r->tier : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, r->action ? r->action : "sent", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->entities ? r->entities : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->sent_sha256 ? r->sent_sha256 : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, r->received_sha256 ? r->received_sha256 : "", -1, SQLITE_TRANSIENT);
    const hearth_err err =
        sqlite3_step(st) == SQLITE_DONE ? HEARTH_OK : store_fail(l->db, "audit: adding a row");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

hearth_err gw_audit_count(gw_ledger *l, int64_t *n) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db, "SELECT count(*) FROM audit", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        err = store_fail(l->db, "audit: counting");
    else
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}
