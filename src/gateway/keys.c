/*
 * keys.c - API keys at run time, as LiteLLM's virtual keys: the key a client
 * presented, its rate limits (requests and tokens per minute as token
 * buckets that refill continuously, requests in flight), its budget for the
 * current period (what the ledger says it spent since the period began, then
 * each ledger row's cost as the row is written) and what it may use. The
 * settings come from the configuration's "keys" (config.c). Each key's
 * counters are under its own mutex: clients of different keys never wait
 * for each other.
 *
 * Tokens are counted when a request ends (its size is unknown before), so a
 * request is admitted while the key has any tokens left this minute and may
 * take it below zero; the next one then waits until the bucket has refilled
 * past zero. Spending is the sum of the ledger's cost column: this process's
 * rows as they are written, other processes' only when this one starts.
 */
#include "gateway.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gw_key {
    gw_key_spec spec;
    pthread_mutex_t mu;
    double req_level, tok_level; /* what the buckets hold at refilled_ms */
    int64_t refilled_ms;
    int in_flight;
    int64_t spent_micro; /* in [period_start_ms, period_end_ms) */
    int64_t period_start_ms, period_end_ms;
};

struct gw_keys {
    gw_key *keys;
    int n;
};

enum { DAY_MS = 86400000 };

static int64_t floor_div(int64_t a, int64_t b) {
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void gw_budget_bounds(gw_budget_period p, int64_t now_ms, int64_t *start_ms, int64_t *end_ms) {
    const int64_t day = floor_div(now_ms, DAY_MS);
    switch (p) {
    case GW_BUDGET_TOTAL:
        *start_ms = 0;
        *end_ms = INT64_MAX;
        return;
    case GW_BUDGET_DAY:
        *start_ms = day * DAY_MS;
        *end_ms = *start_ms + DAY_MS;
        return;
    case GW_BUDGET_WEEK: {
        const int64_t monday = day - (day + 3) % 7; /* 1970-01-01 was a Thursday */
        *start_ms = monday * DAY_MS;
        *end_ms = *start_ms + 7 * (int64_t)DAY_MS;
        return;
    }
    case GW_BUDGET_MONTH: {
        const time_t t = (time_t)floor_div(now_ms, 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        const int64_t y = tm.tm_year + 1900;
        const int m = tm.tm_mon + 1;
        *start_ms = gw_days_from_civil(y, m, 1) * DAY_MS;
        *end_ms = gw_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * DAY_MS;
        return;
    }
    }
}

/* Brings the buckets and the budget period up to now (the key's lock held). */
static void catch_up(gw_key *k, int64_t now_ms) {
    const double dt = now_ms > k->refilled_ms ? (double)(now_ms - k->refilled_ms) : 0.0;
    k->req_level = fmin(k->spec.rpm, k->req_level + dt * k->spec.rpm / 60000.0);
    k->tok_level = fmin(k->spec.tpm, k->tok_level + dt * k->spec.tpm / 60000.0);
    if (now_ms > k->refilled_ms) k->refilled_ms = now_ms;
    if (now_ms >= k->period_end_ms) {
        gw_budget_bounds(k->spec.budget_period, now_ms, &k->period_start_ms, &k->period_end_ms);
        k->spent_micro = 0;
    }
}

static bool budget_spent(const gw_key *k) {
    return k->spec.budget_usd_micro >= 0 && k->spent_micro >= k->spec.budget_usd_micro;
}

hearth_err gw_keys_new(const gw_config *c, gw_ledger *ledger, int64_t now_ms, gw_keys **out) {
    gw_keys *ks = calloc(1, sizeof *ks);
    if (!ks || (c->n_keys && !(ks->keys = calloc((size_t)c->n_keys, sizeof *ks->keys)))) {
        free(ks);
        return hr_fail(HEARTH_ERR_NOMEM, "keys: out of memory");
    }
    hearth_err err = HEARTH_OK;
    for (; ks->n < c->n_keys; ks->n++) {
        gw_key *k = &ks->keys[ks->n];
        k->spec = c->keys[ks->n];
        pthread_mutex_init(&k->mu, NULL);
        k->req_level = k->spec.rpm;
        k->tok_level = k->spec.tpm;
        k->refilled_ms = now_ms;
        gw_budget_bounds(k->spec.budget_period, now_ms, &k->period_start_ms, &k->period_end_ms);
        if (!err && ledger && k->spec.budget_usd_micro >= 0)
            err = gw_ledger_key_spend(ledger, k->spec.name, k->period_start_ms, &k->spent_micro);
    }
    if (err) {
        gw_keys_free(ks);
        return hr_wrap(err, "keys: ");
    }
    *out = ks;
    return HEARTH_OK;
}

void gw_keys_free(gw_keys *ks) {
    if (!ks) return;
    for (int i = 0; i < ks->n; i++) pthread_mutex_destroy(&ks->keys[i].mu);
    free(ks->keys);
    free(ks);
}

int gw_keys_count(const gw_keys *ks) { return ks ? ks->n : 0; }

gw_key *gw_keys_at(gw_keys *ks, int i) { return ks && i >= 0 && i < ks->n ? &ks->keys[i] : NULL; }

const gw_key_spec *gw_key_spec_of(const gw_key *k) { return &k->spec; }

gw_key *gw_keys_find(gw_keys *ks, const char *secret, size_t len) {
    if (!ks || !ks->n) return NULL;
    uint8_t d[32];
    gw_sha256 h;
    gw_sha256_init(&h);
    gw_sha256_update(&h, secret, len);
    gw_sha256_final(&h, d);
    gw_key *found = NULL;
    for (int i = 0; i < ks->n; i++) {
        unsigned diff = 0;
        for (int b = 0; b < 32; b++) diff |= d[b] ^ ks->keys[i].spec.sha256[b];
        if (!diff) found = &ks->keys[i];
    }
    return found;
}

/* The x-ratelimit-* figures (the key's lock held, buckets caught up). */
static void limits(const gw_key *k, gw_key_verdict *v) {
    const gw_key_spec *s = &k->spec;
    v->limit_requests = s->rpm;
    v->limit_tokens = s->tpm;
    if (s->rpm) {
        v->remaining_requests = (int)fmax(0.0, floor(k->req_level));
        v->reset_requests_s = (s->rpm - k->req_level) * 60.0 / s->rpm;
    }
    if (s->tpm) {
        v->remaining_tokens = (int)fmax(0.0, floor(k->tok_level));
        v->reset_tokens_s = (s->tpm - k->tok_level) * 60.0 / s->tpm;
    }
}

static bool refuse(gw_key_verdict *v, int status, const char *code, double retry_s) {
    v->status = status;
    v->code = code;
    v->retry_after_s = retry_s > 0 ? (int)fmin(ceil(retry_s), 1e9) : 0;
    return false;
}

bool gw_key_admit(gw_key *k, int64_t now_ms, bool metered, gw_key_verdict *v) {
    memset(v, 0, sizeof *v);
    const gw_key_spec *s = &k->spec;
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    bool ok = true;
    if (s->expires_ms && now_ms >= s->expires_ms) {
        char when[32];
        gw_format_time(s->expires_ms, when, sizeof when);
        snprintf(v->message, sizeof v->message, "the API key '%s' expired at %s", s->name, when);
        ok = refuse(v, 401, "key_expired", 0);
    } else if (!metered) {
    } else if (s->max_parallel && k->in_flight >= s->max_parallel) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' has %d requests in flight, its limit (max_parallel)", s->name,
                 k->in_flight);
        ok = refuse(v, 429, "rate_limit_exceeded", 1);
    } else if (s->rpm && k->req_level < 1.0) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' is over its limit of %d requests per minute", s->name, s->rpm);
        ok = refuse(v, 429, "rate_limit_exceeded", (1.0 - k->req_level) * 60.0 / s->rpm);
    } else if (s->tpm && k->tok_level <= 0.0) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' is over its limit of %d tokens per minute", s->name, s->tpm);
        ok = refuse(v, 429, "rate_limit_exceeded", (1.0 - k->tok_level) * 60.0 / s->tpm);
    } else if (s->budget_refuses && budget_spent(k)) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' has spent its budget of $%.2f (%.6f this period)", s->name,
                 (double)s->budget_usd_micro / 1e6, (double)k->spent_micro / 1e6);
        const bool ends = k->period_end_ms != INT64_MAX;
        ok = refuse(v, 429, "insufficient_quota",
                    ends ? (double)(k->period_end_ms - now_ms) / 1e3 : 0.0);
    } else {
        if (s->rpm) k->req_level -= 1.0;
        k->in_flight++;
    }
    limits(k, v);
    pthread_mutex_unlock(&k->mu);
    return ok;
}

void gw_key_done(gw_key *k, int64_t now_ms, int tokens) {
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    if (k->spec.tpm && tokens > 0) k->tok_level -= tokens;
    if (k->in_flight > 0) k->in_flight--;
    pthread_mutex_unlock(&k->mu);
}

void gw_key_spend(gw_key *k, int64_t now_ms, int64_t usd_micro) {
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    if (usd_micro > 0) k->spent_micro += usd_micro;
    pthread_mutex_unlock(&k->mu);
}

bool gw_key_allows_model(const gw_key *k, const char *id) {
    if (!k->spec.n_models) return true;
    for (int i = 0; i < k->spec.n_models; i++)
        if (!strcmp(k->spec.models[i], id)) return true;
    return false;
}

void gw_key_grant(gw_key *k, int64_t now_ms, bool tier_denied[GW_MAX_TIERS], bool *spent) {
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    *spent = budget_spent(k);
    pthread_mutex_unlock(&k->mu);
    tier_denied[0] = false;
    for (int t = 1; t < GW_MAX_TIERS; t++) tier_denied[t] = !k->spec.tier_ok[t];
}

static const char *period_name(gw_budget_period p) {
    static const char *const names[] = {"total", "day", "week", "month"};
    return names[p];
}

static void add_time(cJSON *o, const char *name, int64_t ms) {
    char when[32];
    gw_format_time(ms, when, sizeof when);
    cJSON_AddStringToObject(o, name, when);
}

static void add_names(cJSON *o, const char *name, const char *slots, size_t size, int n,
                      bool given) {
    cJSON *a = given ? cJSON_AddArrayToObject(o, name) : cJSON_AddNullToObject(o, name);
    for (int i = 0; given && a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(slots + (size_t)i * size));
}

/* A limit and what is left of it; null when the limit is off. */
static void add_limit(cJSON *o, const char *limit, const char *left, int value, double level) {
    if (!value) {
        cJSON_AddNullToObject(o, limit);
        cJSON_AddNullToObject(o, left);
        return;
    }
    cJSON_AddNumberToObject(o, limit, value);
    cJSON_AddNumberToObject(o, left, fmax(0.0, floor(level)));
}

char *gw_key_info_json(gw_key *k, int64_t now_ms) {
    const gw_key_spec *s = &k->spec;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddBoolToObject(o, "admin", s->admin);
    if (s->expires_ms)
        add_time(o, "expires_at", s->expires_ms);
    else
        cJSON_AddNullToObject(o, "expires_at");
    add_limit(o, "rpm", "remaining_requests", s->rpm, k->req_level);
    add_limit(o, "tpm", "remaining_tokens", s->tpm, k->tok_level);
    if (s->max_parallel)
        cJSON_AddNumberToObject(o, "max_parallel", s->max_parallel);
    else
        cJSON_AddNullToObject(o, "max_parallel");
    cJSON_AddNumberToObject(o, "in_flight", k->in_flight);
    cJSON *b = s->budget_usd_micro >= 0 ? cJSON_AddObjectToObject(o, "budget")
                                        : cJSON_AddNullToObject(o, "budget");
    if (s->budget_usd_micro >= 0 && b) {
        cJSON_AddNumberToObject(b, "usd", (double)s->budget_usd_micro / 1e6);
        cJSON_AddStringToObject(b, "period", period_name(s->budget_period));
        cJSON_AddNumberToObject(b, "spent_usd", (double)k->spent_micro / 1e6);
        cJSON_AddNumberToObject(b, "remaining_usd",
                                (double)(k->spent_micro < s->budget_usd_micro
                                             ? s->budget_usd_micro - k->spent_micro
                                             : 0) /
                                    1e6);
        if (k->period_end_ms != INT64_MAX)
            add_time(b, "resets_at", k->period_end_ms);
        else
            cJSON_AddNullToObject(b, "resets_at");
        cJSON_AddStringToObject(b, "on_budget", s->budget_refuses ? "refuse" : "local");
    }
    pthread_mutex_unlock(&k->mu);
    add_names(o, "tiers", &s->tiers[0][0], sizeof s->tiers[0], s->n_tiers, s->tiers_given);
    add_names(o, "models", &s->models[0][0], sizeof s->models[0], s->n_models, s->n_models > 0);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}
