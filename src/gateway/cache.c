/*
 * cache.c - remote tiers' answers kept for identical requests, as
 * LiteLLM's response cache: a request the gateway would send to a remote
 * tier again, word for word, is answered from the ledger's table
 * `response_cache` instead, at no cost (the configuration's "cache").
 *
 * The key is the SHA-256 of what would be sent: the tier and its model,
 * every message as redacted (placeholders, never the raw entities), the
 * tools, every sampling field of the chat and its reasoning switches; and
 * the client's API key's name unless the cache is shared between keys. The
 * value is the answer (text, reasoning, calls) as the tier sent it,
 * placeholders and all: it is restored with the current
 * request's mapping (the same text redacts to the same placeholders), so
 * the table holds no more than the tier saw.
 */
#include "ledger_db.h"

#include "core/core.h"
#include "store/store.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A field of the key: its bytes and a separator no UTF-8 text holds. */
static void put(gw_sha256 *h, const char *s) {
    if (s) gw_sha256_update(h, s, strlen(s));
    gw_sha256_update(h, "\xff", 1);
}

static void put_num(gw_sha256 *h, double v) {
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    put(h, b);
}

void gw_cache_key(const gw_tier *t, const gw_chat *q, const char *ns, uint8_t out[32]) {
    gw_sha256 h;
    gw_sha256_init(&h);
    put(&h, "hearth-cache-1");
    put(&h, t->name);
    put(&h, t->model);
    put(&h, ns);
    put_num(&h, q->n_messages);
    for (int i = 0; i < q->n_messages; i++) {
        put(&h, q->messages[i].role);
        put(&h, q->messages[i].content);
        const gw_msg_tools *m = q->tools && q->tools->msgs ? &q->tools->msgs[i] : NULL;
        put(&h, m ? m->tool_calls : NULL);
        put(&h, m ? m->tool_call_id : NULL);
    }
    put(&h, q->tools ? q->tools->tools : NULL);
    put(&h, q->tools ? q->tools->tool_choice : NULL);
    put_num(&h, q->tools ? q->tools->parallel_tool_calls : -2);
    put_num(&h, q->max_tokens);
    put_num(&h, q->temperature);
    put_num(&h, q->top_p);
    put_num(&h, q->n_stop);
    for (int i = 0; i < q->n_stop; i++) put(&h, q->stop[i]);
    put_num(&h, q->json_object);
    put(&h, q->response_format);
    /* only when set, so that the keys of requests without them stay those
     * the cache had before they existed */
    if (q->reasoning_effort || q->thinking || q->thinking_budget) {
        put(&h, "reasoning");
        put(&h, q->reasoning_effort);
        put_num(&h, q->thinking);
        put_num(&h, q->thinking_budget);
    }
    for (int i = 0; q->thinking_blocks && i < q->n_messages; i++) /* replayed thinking blocks */
        for (int k = 0; k < q->thinking_blocks[i].n; k++) {
            const gw_thinking_block *b = &q->thinking_blocks[i].blocks[k];
            put(&h, "thinking");
            put_num(&h, i);
            put(&h, b->redacted ? NULL : b->thinking);
            put(&h, b->opaque);
        }
    gw_sha256_final(&h, out);
}

static void hex(const uint8_t key[32], char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", key[i]);
}

void gw_cache_entry_free(gw_cache_entry *e) {
    free(e->text);
    free(e->reasoning);
    gw_tool_calls_free(e->calls, e->n_calls);
    memset(e, 0, sizeof *e);
}

/* The stored calls ([{"id","name","arguments"}]) back as gw_tool_calls. */
static bool calls_from_json(const char *json, gw_cache_entry *e) {
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    const int n = cJSON_GetArraySize(a);
    bool ok = cJSON_IsArray(a) && (!n || (e->calls = calloc((size_t)n, sizeof *e->calls)));
    const cJSON *c;
    cJSON_ArrayForEach(c, a) {
        if (!ok) break;
        const char *f[3];
        static const char *const names[3] = {"id", "name", "arguments"};
        for (int k = 0; k < 3; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, names[k]);
            f[k] = cJSON_IsString(v) ? v->valuestring : NULL;
        }
        gw_tool_call *t = &e->calls[e->n_calls];
        ok = f[0] && f[1] && f[2] && (t->id = strdup(f[0])) && (t->name = strdup(f[1])) &&
             (t->arguments = strdup(f[2]));
        e->n_calls++;
    }
    cJSON_Delete(a);
    return ok;
}

bool gw_cache_get(gw_ledger *l, const uint8_t key[32], int64_t now_ms, gw_cache_entry *out) {
    memset(out, 0, sizeof *out);
    char k[65];
    hex(key, k);
    sqlite3_stmt *st = NULL;
    bool hit = false;
    char *calls = NULL;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db,
                           "SELECT text, calls, prompt_tokens, completion_tokens, finish_reason,"
                           " reasoning, reasoning_tokens FROM response_cache"
                           " WHERE key = ?1 AND expires_ms > ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *text = (const char *)sqlite3_column_text(st, 0);
            const char *c = (const char *)sqlite3_column_text(st, 1);
            out->text_len = (size_t)sqlite3_column_bytes(st, 0);
            out->text = text ? strndup(text, out->text_len) : strdup("");
            calls = c ? strdup(c) : NULL;
            out->prompt_tokens = sqlite3_column_int(st, 2);
            out->completion_tokens = sqlite3_column_int(st, 3);
            const char *fr = (const char *)sqlite3_column_text(st, 4);
            snprintf(out->finish_reason, sizeof out->finish_reason, "%s", fr ? fr : "stop");
            const char *rs = (const char *)sqlite3_column_text(st, 5);
            out->reasoning_len = (size_t)sqlite3_column_bytes(st, 5);
            out->reasoning = rs ? strndup(rs, out->reasoning_len) : strdup("");
            if (!rs) out->reasoning_len = 0;
            out->reasoning_tokens =
                sqlite3_column_type(st, 6) == SQLITE_NULL
                    ? gw_reasoning_tokens_estimate(out->reasoning_len, out->completion_tokens)
                    : sqlite3_column_int(st, 6);
            hit = out->text != NULL && out->reasoning != NULL;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->mu);
    if (hit && calls && !calls_from_json(calls, out)) hit = false;
    free(calls);
    if (!hit) gw_cache_entry_free(out); /* a row that cannot be read back is a miss */
    return hit;
}

/* The answer's calls as stored (NULL: none; "" when out of memory). */
static char *calls_to_json(const gw_cloud_result *r) {
    if (!r->n_calls) return NULL;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < r->n_calls; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", r->calls[i].id ? r->calls[i].id : "");
        cJSON_AddStringToObject(c, "name", r->calls[i].name ? r->calls[i].name : "");
        cJSON_AddStringToObject(c, "arguments", r->calls[i].arguments ? r->calls[i].arguments : "");
        cJSON_AddItemToArray(a, c);
    }
    char *json = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return json;
}

hearth_err gw_cache_put(gw_ledger *l, const uint8_t key[32], int64_t now_ms, int64_t ttl_ms,
                        int max_entries, const gw_cloud_result *r) {
    char k[65];
    hex(key, k);
    char *calls = calls_to_json(r);
    if (r->n_calls && !calls) return hr_fail(HEARTH_ERR_NOMEM, "cache: out of memory");
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&l->mu);
    if (sqlite3_prepare_v2(l->db,
                           "INSERT OR REPLACE INTO response_cache (key, created_ms, expires_ms,"
                           " text, calls, prompt_tokens, completion_tokens, finish_reason,"
                           " reasoning, reasoning_tokens)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &st, NULL) != SQLITE_OK) {
        err = store_fail(l->db, "cache: preparing the insert");
    } else {
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_int64(st, 3, ttl_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + ttl_ms);
        sqlite3_bind_text(st, 4, r->text ? r->text : "", (int)r->text_len, SQLITE_STATIC);
        if (calls)
            sqlite3_bind_text(st, 5, calls, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_int(st, 6, r->prompt_tokens);
        sqlite3_bind_int(st, 7, r->completion_tokens);
        sqlite3_bind_text(st, 8, r->finish_reason, -1, SQLITE_STATIC);
        if (r->reasoning_len)
            sqlite3_bind_text(st, 9, r->reasoning, (int)r->reasoning_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 9);
        sqlite3_bind_int(st, 10, r->reasoning_tokens);
        if (sqlite3_step(st) != SQLITE_DONE) err = store_fail(l->db, "cache: storing an answer");
    }
    sqlite3_finalize(st);
    /* the expired, then the oldest beyond max_entries */
    if (!err) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "DELETE FROM response_cache WHERE expires_ms <= %lld OR key IN (SELECT key FROM "
                 "response_cache ORDER BY created_ms DESC LIMIT -1 OFFSET %d)",
                 (long long)now_ms, max_entries > 0 ? max_entries : 0);
        if (sqlite3_exec(l->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            err = store_fail(l->db, "cache: trimming");
    }
    pthread_mutex_unlock(&l->mu);
    free(calls);
    return err;
}
