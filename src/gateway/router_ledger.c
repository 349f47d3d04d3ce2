/*
 * router_ledger.c - training labels from the gateway's own traffic: reads the
 * ledger's `requests` table (ledger.c owns the schema; this file only SELECTs
 * columns by name, read-only) and turns the rows that say something about
 * both tiers into (prompt, weak_ok, strong_ok) examples. Only deployments
 * that record prompts and answers (--ledger-prompts) have such rows. How the
 * labels are derived, and why they are only a proxy, is in docs/router.md
 * ("Learning from traffic").
 */
#include "router_impl.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lowercased alphanumeric tokens of s, as [start, end) pairs into s. */
static size_t tokens(const char *s, size_t n, size_t (*t)[2], size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap;) {
        unsigned char c = (unsigned char)s[i];
        bool w =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
        if (!w) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n) {
            unsigned char d = (unsigned char)s[j];
            if (!((d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') ||
                  d >= 0x80))
                break;
            j++;
        }
        t[k][0] = i, t[k][1] = j;
        k++;
        i = j;
    }
    return k;
}

static bool tok_eq(const char *a, const size_t ta[2], const char *b, const size_t tb[2]) {
    size_t n = ta[1] - ta[0];
    if (n != tb[1] - tb[0]) return false;
    for (size_t i = 0; i < n; i++) {
        char x = a[ta[0] + i], y = b[tb[0] + i];
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

enum { AGREE_MAX_TOKENS = 512 };

bool rtr_answers_agree(const char *a, size_t na, const char *b, size_t nb) {
    static _Thread_local size_t ta[AGREE_MAX_TOKENS][2], tb[AGREE_MAX_TOKENS][2];
    static _Thread_local bool used[AGREE_MAX_TOKENS];
    size_t ka = tokens(a, na, ta, AGREE_MAX_TOKENS), kb = tokens(b, nb, tb, AGREE_MAX_TOKENS);
    if (!ka || !kb) return ka == kb;
    /* the last number of each answer, when both have one, decides (worked
     * arithmetic answers differ in wording but end in the result) */
    long la = -1, lb = -1;
    for (size_t i = 0; i < ka; i++)
        if (a[ta[i][0]] >= '0' && a[ta[i][0]] <= '9') la = (long)i;
    for (size_t i = 0; i < kb; i++)
        if (b[tb[i][0]] >= '0' && b[tb[i][0]] <= '9') lb = (long)i;
    if (la >= 0 && lb >= 0) return tok_eq(a, ta[la], b, tb[lb]);
    /* otherwise the bag-of-tokens F1 */
    memset(used, 0, kb * sizeof used[0]);
    size_t common = 0;
    for (size_t i = 0; i < ka; i++)
        for (size_t j = 0; j < kb; j++)
            if (!used[j] && tok_eq(a, ta[i], b, tb[j])) {
                used[j] = true;
                common++;
                break;
            }
    return 2.0 * (double)common / (double)(ka + kb) >= 0.7;
}

static const char ledger_sql[] =
    "SELECT id, route, degraded, conf_mean IS NOT NULL, prompt, local_answer, remote_answer"
    " FROM requests WHERE prompt IS NOT NULL AND status < 400 ORDER BY id";

hearth_err rtr_dataset_from_ledger(rtr_dataset *d, const char *path, rtr_ledger_counts *counts) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    hearth_err e = HEARTH_OK;
    rtr_ledger_counts c = {0};
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        e = hr_fail(HEARTH_ERR_IO, "ledger %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000); /* a serving gateway may be writing (WAL) */
    if (sqlite3_prepare_v2(db, ledger_sql, -1, &st, NULL) != SQLITE_OK) {
        e = hr_fail(HEARTH_ERR_FORMAT, "ledger %s: not a Hearth ledger (%s)", path,
                    sqlite3_errmsg(db));
        goto done;
    }
    int rc;
    while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        c.rows++;
        const char *route = (const char *)sqlite3_column_text(st, 1);
        bool degraded = sqlite3_column_int(st, 2) != 0, checked = sqlite3_column_int(st, 3) != 0;
        const char *prompt = (const char *)sqlite3_column_text(st, 4);
        size_t plen = (size_t)sqlite3_column_bytes(st, 4);
        const char *la = (const char *)sqlite3_column_text(st, 5);
        size_t lal = (size_t)sqlite3_column_bytes(st, 5);
        const char *ra = (const char *)sqlite3_column_text(st, 6);
        size_t ral = (size_t)sqlite3_column_bytes(st, 6);
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)sqlite3_column_int64(st, 0));
        const bool usable = route && prompt && !degraded;
        if (usable && la && ra) {
            /* both answers (a confidence escalation): the cloud's is the reference */
            bool agree = rtr_answers_agree(la, lal, ra, ral);
            c.both++;
            c.weak_wrong += !agree;
            e = rtr_dataset_add(d, prompt, plen, agree, true, id, "ledger");
        } else if (usable && la && checked && !strcmp(route, "local")) {
            /* the local answer passed the confidence check: assumed good */
            c.kept_local++;
            e = rtr_dataset_add(d, prompt, plen, true, true, id, "ledger");
        } else
            c.skipped++;
    }
    if (!e && rc != SQLITE_DONE)
        e = hr_fail(HEARTH_ERR_IO, "ledger %s: %s", path, sqlite3_errmsg(db));
    if (!e && counts) *counts = c;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return e;
}

hearth_err rtr_ledger_confidences(const char *path, double **conf_mean, size_t *n) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    hearth_err e = HEARTH_OK;
    double *v = NULL;
    size_t k = 0, cap = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        e = hr_fail(HEARTH_ERR_IO, "ledger %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db,
                           "SELECT conf_mean FROM requests WHERE conf_mean IS NOT NULL AND "
                           "status < 400 AND degraded = 0 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        e = hr_fail(HEARTH_ERR_FORMAT, "ledger %s: not a Hearth ledger (%s)", path,
                    sqlite3_errmsg(db));
        goto done;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 1024;
            double *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                e = hr_fail(HEARTH_ERR_NOMEM, "ledger: out of memory");
                goto done;
            }
            v = nv;
        }
        v[k++] = sqlite3_column_double(st, 0);
    }
    if (rc != SQLITE_DONE) e = hr_fail(HEARTH_ERR_IO, "ledger %s: %s", path, sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (e)
        free(v);
    else
        *conf_mean = v, *n = k;
    return e;
}
