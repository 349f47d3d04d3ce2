/*
 * ledger.c - the gateway's ledger: one SQLite row per request (time, route,
 * tier, reason, tokens, latency, cost at the tier's prices and at the
 * reference cloud tier's, degraded flag, scores; prompt and answers only
 * when the deployment opts in), and the aggregates GET /v1/hearth/stats and
 * `hearth ledger report` show. Money is integer micro-dollars throughout;
 * only the JSON and text outputs divide by 10^6.
 *
 * Schema (migrations 1-8; docs/gateway.md has the column meanings):
 *   requests(id, time_ms, route, tier, reason, model, status, prompt_tokens,
 *            completion_tokens, latency_ms, cost_usd_micro,
 *            cloud_only_cost_usd_micro, degraded, router_score, conf_mean,
 *            conf_min, prompt, local_answer, remote_answer, api_key,
 *            remote_reasoning, endpoint)
 *   audit(id, time_ms, tier, action, entities, sent_sha256, received_sha256)
 *   api_keys(id, name, key_sha256, settings, created_ms, revoked_ms)
 *   response_cache(key, created_ms, expires_ms, text, calls, prompt_tokens,
 *                  completion_tokens, finish_reason, reasoning,
 *                  reasoning_tokens)                                  (cache.c)
 */
#include "ledger_db.h"

#include "core/core.h"
#include "store/store.h"

#include <cjson/cJSON.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const migrations[] = {
    "CREATE TABLE requests ("
    " id INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " route TEXT NOT NULL,"
    " tier TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " model TEXT,"
    " status INTEGER NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " latency_ms INTEGER NOT NULL,"
    " cost_usd_micro INTEGER NOT NULL,"
    " cloud_only_cost_usd_micro INTEGER NOT NULL,"
    " degraded INTEGER NOT NULL,"
    " router_score REAL,"
    " conf_mean REAL,"
    " conf_min REAL,"
    " prompt TEXT,"
    " local_answer TEXT,"
    " remote_answer TEXT);"
    "CREATE INDEX requests_time ON requests(time_ms);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " tier TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " entities TEXT NOT NULL,"
    " sent_sha256 TEXT NOT NULL,"
    " received_sha256 TEXT NOT NULL);"
    "CREATE INDEX audit_time ON audit(time_ms);",
    /* 2: the client's API key (its name), for budgets and per-key reports */
    "ALTER TABLE requests ADD COLUMN api_key TEXT;"
    "CREATE INDEX requests_key ON requests(api_key, time_ms);",
    /* 3: API keys made at run time (POST /v1/hearth/keys): the secret's digest
     * and the settings as the request gave them */
    "CREATE TABLE api_keys ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " key_sha256 TEXT NOT NULL,"
    " settings TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER);"
    "CREATE INDEX api_keys_name ON api_keys(name);",
    /* 4: remote tiers' answers kept for identical requests (cache.c) */
    "CREATE TABLE response_cache ("
    " key TEXT PRIMARY KEY,"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " text TEXT NOT NULL,"
    " calls TEXT,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " finish_reason TEXT NOT NULL);"
    "CREATE INDEX response_cache_created ON response_cache(created_ms);"
    "CREATE INDEX response_cache_expires ON response_cache(expires_ms);",
    /* 5: a remote tier's reasoning, kept with its cached answer */
    "ALTER TABLE response_cache ADD COLUMN reasoning TEXT;",
    /* 6: and its token count (NULL in rows kept before: estimated) */
    "ALTER TABLE response_cache ADD COLUMN reasoning_tokens INTEGER;",
    /* 7: with ledger_prompts, a remote answer's reasoning beside it */
    "ALTER TABLE requests ADD COLUMN remote_reasoning TEXT;",
    /* 8: which endpoint a row is ("embeddings", "rerank"; NULL: a chat or a
     * completion, as every row before) */
    "ALTER TABLE requests ADD COLUMN endpoint TEXT;",
};

static const char insert_request_sql[] =
    "INSERT INTO requests (time_ms, route, tier, reason, model, status, prompt_tokens,"
    " completion_tokens, latency_ms, cost_usd_micro, cloud_only_cost_usd_micro, degraded,"
    " router_score, conf_mean, conf_min, prompt, local_answer, remote_answer, api_key,"
    " remote_reasoning, endpoint)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
    " ?19, ?20, ?21)";

static const char insert_audit_sql[] =
    "INSERT INTO audit (time_ms, tier, action, entities, sent_sha256, received_sha256)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const char *gw_route_name(gw_route r) {
    switch (r) {
    case GW_ROUTE_LOCAL: return "local";
    case GW_ROUTE_ESCALATED: return "escalated";
    case GW_ROUTE_EXPLICIT: return "explicit";
    }
    return "unknown";
}

int64_t gw_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

gw_ledger_row gw_ledger_row_init(void) {
    gw_ledger_row r;
    memset(&r, 0, sizeof r);
    r.router_score = r.conf_mean = r.conf_min = NAN;
    return r;
}

hearth_err gw_ledger_open(const char *path, gw_ledger **out) {
    gw_ledger *l = calloc(1, sizeof *l);
    if (!l) return hr_fail(HEARTH_ERR_NOMEM, "ledger: out of memory");
    hearth_err err =
        store_open(path, migrations, (int)(sizeof migrations / sizeof *migrations), &l->db);
    if (!err && (sqlite3_prepare_v2(l->db, insert_request_sql, -1, &l->insert_request, NULL) ||
                 sqlite3_prepare_v2(l->db, insert_audit_sql, -1, &l->insert_audit, NULL)))
        err = store_fail(l->db, "preparing the ledger's statements");
    if (err) {
        sqlite3_finalize(l->insert_request);
        sqlite3_close_v2(l->db);
        free(l);
        return hr_wrap(err, "ledger: ");
    }
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return HEARTH_OK;
}

void gw_ledger_close(gw_ledger *l) {
    if (!l) return;
    sqlite3_finalize(l->insert_request);
    sqlite3_finalize(l->insert_audit);
    sqlite3_close_v2(l->db);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_score(sqlite3_stmt *st, int i, double v) {
    if (isnan(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

hearth_err gw_ledger_add(gw_ledger *l, const gw_ledger_row *r, int64_t *id) {
    pthread_mutex_lock(&l->mu);
    sqlite3_stmt *st = l->insert_request;
    sqlite3_bind_int64(st, 1, r->time_ms ? r->time_ms : gw_now_ms());
    bind_text(st, 2, gw_route_name(r->route));
    bind_text(st, 3, r->tier ? r->tier : "");
    bind_text(st, 4, r->reason ? r->reason : "");
    bind_text(st, 5, r->model);
    sqlite3_bind_int(st, 6, r->status);
    sqlite3_bind_int(st, 7, r->prompt_tokens);
    sqlite3_bind_int(st, 8, r->completion_tokens);
    sqlite3_bind_int64(st, 9, r->latency_ms);
    sqlite3_bind_int64(st, 10, r->cost_usd_micro);
    sqlite3_bind_int64(st, 11, r->cloud_only_cost_usd_micro);
    sqlite3_bind_int(st, 12, r->degraded);
    bind_score(st, 13, r->router_score);
    bind_score(st, 14, r->conf_mean);
    bind_score(st, 15, r->conf_min);
    bind_text(st, 16, r->prompt);
    bind_text(st, 17, r->local_answer);
    bind_text(st, 18, r->remote_answer);
    bind_text(st, 19, r->api_key);
    bind_text(st, 20, r->remote_reasoning);
    bind_text(st, 21, r->endpoint);
    hearth_err err = HEARTH_OK;
    if (sqlite3_step(st) != SQLITE_DONE)
        err = store_fail(l->db, "ledger: adding a row");
    else if (id)
        *id = sqlite3_last_insert_rowid(l->db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

/* One integer from a query with an optional int64 parameter ?1. */
static hearth_err query_int(gw_ledger *l, const char *sql, int64_t param, int64_t *out) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK)
        err = store_fail(l->db, "ledger: preparing a query");
    else {
        if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int64(st, 1, param);
        if (sqlite3_step(st) == SQLITE_ROW)
            *out = sqlite3_column_int64(st, 0);
        else
            err = store_fail(l->db, "ledger: querying");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

hearth_err gw_ledger_count(gw_ledger *l, int64_t *n) {
    return query_int(l, "SELECT count(*) FROM requests", 0, n);
}

hearth_err gw_ledger_key_spend(gw_ledger *l, const char *key, int64_t since_ms,
                               int64_t *usd_micro) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db,
                           "SELECT coalesce(sum(cost_usd_micro), 0) FROM requests"
                           " WHERE api_key = ?1 AND time_ms >= ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        err = store_fail(l->db, "ledger: preparing the key's spending query");
    } else {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, since_ms);
        if (sqlite3_step(st) == SQLITE_ROW)
            *usd_micro = sqlite3_column_int64(st, 0);
        else
            err = store_fail(l->db, "ledger: reading a key's spending");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

/* ---- API keys made at run time ------------------------------------------- */

/* Runs sql with text ?1, ?2, ?3 (NULL: unbound) and integer ?4. */
static hearth_err exec4(gw_ledger *l, const char *sql, const char *a, const char *b, const char *c,
                        int64_t d, const char *what) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK) {
        err = store_fail(l->db, what);
    } else {
        const char *text[3] = {a, b, c};
        for (int i = 0; i < 3; i++)
            if (text[i]) sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, d);
        if (sqlite3_step(st) != SQLITE_DONE) err = store_fail(l->db, what);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

hearth_err gw_ledger_key_store(gw_ledger *l, const char *name, const char *sha256_hex,
                               const char *settings, int64_t created_ms) {
    return exec4(l,
                 "INSERT INTO api_keys (name, key_sha256, settings, created_ms)"
                 " VALUES (?1, ?2, ?3, ?4)",
                 name, sha256_hex, settings, created_ms, "ledger: storing an API key");
}

hearth_err gw_ledger_key_revoke(gw_ledger *l, const char *name, int64_t revoked_ms) {
    return exec4(l, "UPDATE api_keys SET revoked_ms = ?4 WHERE name = ?1 AND revoked_ms IS NULL",
                 name, NULL, NULL, revoked_ms, "ledger: revoking an API key");
}

hearth_err gw_ledger_keys_load(gw_ledger *l, gw_stored_key_visit visit, void *user) {
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db,
                           "SELECT name, key_sha256, settings, created_ms FROM api_keys"
                           " WHERE revoked_ms IS NULL ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        err = store_fail(l->db, "ledger: preparing the API keys query");
    } else {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            visit(user, (const char *)sqlite3_column_text(st, 0),
                  (const char *)sqlite3_column_text(st, 1),
                  (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
        if (rc != SQLITE_DONE) err = store_fail(l->db, "ledger: reading the API keys");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    return err;
}

/* ---- statistics ---------------------------------------------------------- */

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const int64_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    if (k < 1) k = 1;
    return (double)v[k - 1];
}

/* The statistics' queries take an optional API key as ?9 (NULL: every row). */
#define KEY_FILTER " AND (?9 IS NULL OR api_key = ?9)"

static void bind_key(sqlite3_stmt *st, const char *key) {
    if (key) sqlite3_bind_text(st, 9, key, -1, SQLITE_STATIC);
}

/* Per-tier latency percentiles: one ordered scan of the tier's rows. */
static hearth_err tier_latency(gw_ledger *l, gw_tier_stats *t, int64_t since_ms, const char *key) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            l->db,
            "SELECT latency_ms FROM requests WHERE tier = ?1 AND time_ms >= ?2" KEY_FILTER
            " ORDER BY latency_ms",
            -1, &st, NULL) != SQLITE_OK)
        return store_fail(l->db, "ledger: preparing the latency query");
    sqlite3_bind_text(st, 1, t->tier, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    bind_key(st, key);
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    hearth_err err = HEARTH_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            int64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                err = hr_fail(HEARTH_ERR_NOMEM, "ledger: out of memory");
                break;
            }
            v = nv;
        }
        v[n++] = sqlite3_column_int64(st, 0);
    }
    if (!err && rc != SQLITE_DONE) err = store_fail(l->db, "ledger: reading latencies");
    t->p50_ms = percentile(v, n, 50);
    t->p95_ms = percentile(v, n, 95);
    free(v);
    sqlite3_finalize(st);
    return err;
}

/* The busiest groups of rows (at most cap, by requests): grouped by the SQL
 * expression `by`, among the rows where `which` holds. */
static hearth_err group_stats(gw_ledger *l, int64_t since_ms, const char *key, const char *by,
                              const char *which, gw_group_stats *out, int cap, int *n) {
    char sql[640];
    snprintf(sql, sizeof sql,
             "SELECT %s, count(*), sum(tier = 'local' AND status < 400),"
             " sum(tier <> 'local' AND status < 400), sum(status >= 400), sum(prompt_tokens),"
             " sum(completion_tokens), sum(cost_usd_micro)"
             " FROM requests WHERE time_ms >= ?1 AND %s" KEY_FILTER
             " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?2",
             by, which);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK)
        return store_fail(l->db, "ledger: preparing a per-key or per-endpoint query");
    sqlite3_bind_int64(st, 1, since_ms);
    bind_key(st, key);
    sqlite3_bind_int(st, 2, cap);
    *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && *n < cap) {
        gw_group_stats *g = &out[(*n)++];
        snprintf(g->name, sizeof g->name, "%s", (const char *)sqlite3_column_text(st, 0));
        int64_t *const v[] = {&g->requests,      &g->local,         &g->escalated,
                              &g->errors,        &g->prompt_tokens, &g->completion_tokens,
                              &g->cost_usd_micro};
        for (int i = 0; i < (int)(sizeof v / sizeof v[0]); i++)
            *v[i] = sqlite3_column_int64(st, i + 1);
    }
    sqlite3_finalize(st);
    return HEARTH_OK;
}

/* Per API key (rows with one), and per endpoint when any row is not a
 * chat's (a chat's rows have none: the report stays as it was). */
static hearth_err groups(gw_ledger *l, int64_t since_ms, gw_stats *s) {
    const char *key = s->key[0] ? s->key : NULL;
    hearth_err err = group_stats(l, since_ms, key, "api_key", "api_key IS NOT NULL", s->keys,
                                 GW_STATS_TIERS, &s->n_keys);
    const int cap = (int)(sizeof s->endpoints / sizeof s->endpoints[0]);
    if (!err)
        err = group_stats(l, since_ms, key, "coalesce(endpoint, 'chat')", "1", s->endpoints, cap,
                          &s->n_endpoints);
    if (s->n_endpoints == 1 && !strcmp(s->endpoints[0].name, "chat")) s->n_endpoints = 0;
    return err;
}

static hearth_err stats_locked(gw_ledger *l, int64_t since_ms, gw_stats *s) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT count(*), coalesce(sum(tier = 'local' AND status < 400), 0),"
                           " coalesce(sum(tier <> 'local' AND status < 400), 0),"
                           " coalesce(sum(degraded), 0), coalesce(sum(status >= 400), 0),"
                           " coalesce(sum(cost_usd_micro), 0),"
                           " coalesce(sum(cloud_only_cost_usd_micro), 0)"
                           " FROM requests WHERE time_ms >= ?1" KEY_FILTER,
                           -1, &st, NULL) != SQLITE_OK)
        return store_fail(l->db, "ledger: preparing the totals query");
    sqlite3_bind_int64(st, 1, since_ms);
    bind_key(st, s->key[0] ? s->key : NULL);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return store_fail(l->db, "ledger: reading totals");
    }
    s->requests = sqlite3_column_int64(st, 0);
    s->local = sqlite3_column_int64(st, 1);
    s->escalated = sqlite3_column_int64(st, 2);
    s->degraded = sqlite3_column_int64(st, 3);
    s->errors = sqlite3_column_int64(st, 4);
    s->cost_usd_micro = sqlite3_column_int64(st, 5);
    s->cloud_only_cost_usd_micro = sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(l->db,
                           "SELECT tier, count(*), sum(prompt_tokens), sum(completion_tokens),"
                           " sum(cost_usd_micro) FROM requests WHERE time_ms >= ?1" KEY_FILTER
                           " GROUP BY tier ORDER BY count(*) DESC, tier LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return store_fail(l->db, "ledger: preparing the per-tier query");
    sqlite3_bind_int64(st, 1, since_ms);
    bind_key(st, s->key[0] ? s->key : NULL);
    sqlite3_bind_int(st, 2, GW_STATS_TIERS);
    while (sqlite3_step(st) == SQLITE_ROW && s->n_tiers < GW_STATS_TIERS) {
        gw_tier_stats *t = &s->tiers[s->n_tiers++];
        snprintf(t->tier, sizeof t->tier, "%s", (const char *)sqlite3_column_text(st, 0));
        t->requests = sqlite3_column_int64(st, 1);
        t->prompt_tokens = sqlite3_column_int64(st, 2);
        t->completion_tokens = sqlite3_column_int64(st, 3);
        t->cost_usd_micro = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    for (int i = 0; i < s->n_tiers; i++) {
        const hearth_err err = tier_latency(l, &s->tiers[i], since_ms, s->key[0] ? s->key : NULL);
        if (err) return err;
    }
    return groups(l, since_ms, s);
}

hearth_err gw_ledger_stats(gw_ledger *l, int64_t since_ms, gw_stats *out) {
    return gw_ledger_stats_key(l, since_ms, NULL, out);
}

hearth_err gw_ledger_stats_key(gw_ledger *l, int64_t since_ms, const char *key, gw_stats *out) {
    gw_stats s;
    memset(&s, 0, sizeof s);
    s.since_ms = since_ms;
    snprintf(s.key, sizeof s.key, "%s", key ? key : "");
    /* one read transaction: the totals and the tiers see the same rows */
    pthread_mutex_lock(&l->mu);
    sqlite3_exec(l->db, "BEGIN", NULL, NULL, NULL);
    const hearth_err err = stats_locked(l, since_ms, &s);
    sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&l->mu);
    if (err) return err;
    if (s.cloud_only_cost_usd_micro > 0)
        s.savings_pct =
            100.0 * (1.0 - (double)s.cost_usd_micro / (double)s.cloud_only_cost_usd_micro);
    *out = s;
    return HEARTH_OK;
}

/* o[name] = {group: {requests, local, escalated, errors, tokens, cost}} (none: nothing). */
static void add_groups(cJSON *o, const char *name, const gw_group_stats *g, int n) {
    cJSON *all = n ? cJSON_AddObjectToObject(o, name) : NULL;
    for (int i = 0; all && i < n; i++) {
        cJSON *j = cJSON_AddObjectToObject(all, g[i].name);
        if (!j) continue;
        cJSON_AddNumberToObject(j, "requests", (double)g[i].requests);
        cJSON_AddNumberToObject(j, "local", (double)g[i].local);
        cJSON_AddNumberToObject(j, "escalated", (double)g[i].escalated);
        cJSON_AddNumberToObject(j, "errors", (double)g[i].errors);
        cJSON_AddNumberToObject(j, "prompt_tokens", (double)g[i].prompt_tokens);
        cJSON_AddNumberToObject(j, "completion_tokens", (double)g[i].completion_tokens);
        cJSON_AddNumberToObject(j, "cost_usd", (double)g[i].cost_usd_micro / 1e6);
    }
}

char *gw_stats_json(const gw_stats *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "requests", (double)s->requests);
    cJSON_AddNumberToObject(o, "local", (double)s->local);
    cJSON_AddNumberToObject(o, "escalated", (double)s->escalated);
    cJSON_AddNumberToObject(o, "degraded", (double)s->degraded);
    cJSON_AddNumberToObject(o, "errors", (double)s->errors);
    cJSON_AddNumberToObject(o, "local_share",
                            s->requests ? (double)s->local / (double)s->requests : 0.0);
    cJSON_AddNumberToObject(o, "cost_usd", (double)s->cost_usd_micro / 1e6);
    cJSON_AddNumberToObject(o, "cloud_only_cost_usd", (double)s->cloud_only_cost_usd_micro / 1e6);
    cJSON_AddNumberToObject(o, "savings_pct", s->savings_pct);
    cJSON_AddNumberToObject(o, "since_ms", (double)s->since_ms);
    if (s->key[0]) cJSON_AddStringToObject(o, "key", s->key);
    cJSON *tiers = cJSON_AddObjectToObject(o, "tiers");
    for (int i = 0; i < s->n_tiers; i++) {
        const gw_tier_stats *t = &s->tiers[i];
        cJSON *j = cJSON_AddObjectToObject(tiers, t->tier);
        if (!j) continue;
        cJSON_AddNumberToObject(j, "requests", (double)t->requests);
        cJSON_AddNumberToObject(j, "prompt_tokens", (double)t->prompt_tokens);
        cJSON_AddNumberToObject(j, "completion_tokens", (double)t->completion_tokens);
        cJSON_AddNumberToObject(j, "cost_usd", (double)t->cost_usd_micro / 1e6);
        cJSON_AddNumberToObject(j, "p50_ms", t->p50_ms);
        cJSON_AddNumberToObject(j, "p95_ms", t->p95_ms);
    }
    add_groups(o, "keys", s->keys, s->n_keys);
    add_groups(o, "endpoints", s->endpoints, s->n_endpoints);
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static double pct(int64_t a, int64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

/* A table of groups under its title column (none: nothing). */
static void group_table(gw_buf *b, const char *title, const gw_group_stats *g, int n) {
    if (n)
        gw_buf_printf(b, "\n%-20s %9s %9s %9s %7s %12s %12s %12s\n", title, "requests", "local",
                      "escalated", "errors", "prompt tok", "output tok", "cost $");
    for (int i = 0; i < n; i++)
        gw_buf_printf(b, "%-20s %9lld %9lld %9lld %7lld %12lld %12lld %12.6f\n", g[i].name,
                      (long long)g[i].requests, (long long)g[i].local, (long long)g[i].escalated,
                      (long long)g[i].errors, (long long)g[i].prompt_tokens,
                      (long long)g[i].completion_tokens, (double)g[i].cost_usd_micro / 1e6);
}

char *gw_stats_text(const gw_stats *s) {
    gw_buf b = {0};
    char since[40] = "the beginning";
    if (s->since_ms > 0) gw_format_time(s->since_ms, since, sizeof since);
    gw_buf_printf(&b, "requests%s%s since %s: %lld\n", s->key[0] ? " of API key " : "", s->key,
                  since, (long long)s->requests);
    gw_buf_printf(&b, "  local      %lld (%.1f %%)\n", (long long)s->local,
                  pct(s->local, s->requests));
    gw_buf_printf(&b, "  escalated  %lld (%.1f %%)\n", (long long)s->escalated,
                  pct(s->escalated, s->requests));
    gw_buf_printf(&b, "  degraded   %lld\n  errors     %lld\n", (long long)s->degraded,
                  (long long)s->errors);
    gw_buf_printf(&b, "cost            $%.6f\n", (double)s->cost_usd_micro / 1e6);
    gw_buf_printf(&b, "cloud-only cost $%.6f\n", (double)s->cloud_only_cost_usd_micro / 1e6);
    gw_buf_printf(&b, "savings         %.1f %%\n\n", s->savings_pct);
    gw_buf_printf(&b, "%-20s %9s %7s %9s %9s %12s %12s %12s\n", "tier", "requests", "share",
                  "p50 ms", "p95 ms", "prompt tok", "output tok", "cost $");
    for (int i = 0; i < s->n_tiers; i++) {
        const gw_tier_stats *t = &s->tiers[i];
        gw_buf_printf(&b, "%-20s %9lld %6.1f%% %9.0f %9.0f %12lld %12lld %12.6f\n", t->tier,
                      (long long)t->requests, pct(t->requests, s->requests), t->p50_ms, t->p95_ms,
                      (long long)t->prompt_tokens, (long long)t->completion_tokens,
                      (double)t->cost_usd_micro / 1e6);
    }
    group_table(&b, "API key", s->keys, s->n_keys);
    group_table(&b, "endpoint", s->endpoints, s->n_endpoints);
    return gw_buf_take(&b, NULL);
}

/* ---- --since ------------------------------------------------------------- */

int64_t gw_days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void gw_format_time(int64_t ms, char *buf, size_t size) {
    const time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "%lld ms", (long long)ms);
}

hearth_err gw_parse_duration(const char *s, int64_t *ms) {
    char *end;
    const double v = strtod(s, &end);
    double unit = 0;
    if (end != s && end[0] && !end[1] && v >= 0) {
        switch (end[0]) {
        case 's': unit = 1e3; break;
        case 'm': unit = 60e3; break;
        case 'h': unit = 3600e3; break;
        case 'd': unit = 86400e3; break;
        case 'w': unit = 7 * 86400e3; break;
        }
    }
    if (unit <= 0 || !(v * unit < 1e15))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "'%s' is not a duration (90s, 30m, 24h, 7d, 2w)", s);
    *ms = (int64_t)(v * unit);
    return HEARTH_OK;
}

/* Whether the time that ended at s[n] ends s, alone or with a Z. */
static bool ends_zulu(const char *s, size_t len, int n) {
    return (size_t)n == len || (len == (size_t)n + 1 && toupper((unsigned char)s[n]) == 'Z');
}

hearth_err gw_parse_since(const char *s, int64_t now_ms, int64_t *since_ms) {
    int64_t back;
    if (!strchr(s, '-') && !gw_parse_duration(s, &back)) {
        *since_ms = now_ms - back;
        return HEARTH_OK;
    }
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, n = 0;
    const size_t len = strlen(s);
    /* a date alone (midnight UTC), or with a time to the second or minute
     * and an optional Z; the field widths bound every value */
    // NOLINTBEGIN(cert-err34-c)
    const bool ok =
        (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && (size_t)n == len) ||
        (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
         ends_zulu(s, len, n)) ||
        (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) == 5 &&
         ends_zulu(s, len, n));
    // NOLINTEND(cert-err34-c)
    if (!ok)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "'%s' is neither a date (2024-05-01, 2024-05-01T12:00:00Z) nor a duration "
                       "(90s, 30m, 24h, 7d)",
                       s);
    /* %2d takes a sign too: "T-1:00" is no time */
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
        sec > 60)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "'%s' is not a valid date", s);
    const int64_t days = gw_days_from_civil(y, mo, d);
    *since_ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000;
    return HEARTH_OK;
}
