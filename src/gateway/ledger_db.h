/*
 * ledger_db.h - private to the gateway folder: the database behind
 * gw_ledger, which ledger.c (requests, stats) and audit.c (escalations)
 * share. One connection, serialized by mu.
 */
#ifndef HEARTH_GATEWAY_LEDGER_DB_H
#define HEARTH_GATEWAY_LEDGER_DB_H

#include "gateway.h"

#include <pthread.h>
#include <sqlite3.h>

struct gw_ledger {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *insert_request; /* prepared once, used under mu */
    sqlite3_stmt *insert_audit;
};

#endif
