/*
 * keys.c - API keys at run time, as LiteLLM's virtual keys: the key a client
 * presented, its rate limits (requests and tokens per minute as token
 * buckets that refill continuously, requests in flight), its budget for the
 * current period (what the ledger says it spent since the period began, then
 * each ledger row's cost as the row is written) and what it may use. The
 * settings come from the configuration's "keys" (config.c), or from an
 * admin at run time (gw_keys_create: the secret made here, its digest and
 * the settings kept in the ledger, read back at start-up). Each key's
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct gw_key {
    gw_key_spec spec;
    bool from_config;   /* else made at run time (kept in the ledger) */
    int64_t created_ms; /* run-time keys */
    atomic_bool revoked;
    pthread_mutex_t mu;
    gw_bucket req, tok; /* rpm, tpm */
    int in_flight;
    int64_t admitted, refused; /* requests, for /metrics */
    int64_t spent_micro;       /* in [period_start_ms, period_end_ms) */
    int64_t period_start_ms, period_end_ms;
};

/* Keys are allocated one by one and freed only with the set, so a request
 * may hold one while others are made or revoked. */
struct gw_keys {
    const gw_config *cfg;
    gw_ledger *ledger;
    pthread_mutex_t mu; /* keys, n, cap */
    gw_key **keys;
    int n, cap;
    atomic_int active; /* keys not revoked: read on every request */
    int n_skipped;
    char skipped[256];
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
    gw_bucket_level(&k->req, now_ms);
    gw_bucket_level(&k->tok, now_ms);
    if (now_ms >= k->period_end_ms) {
        gw_budget_bounds(k->spec.budget_period, now_ms, &k->period_start_ms, &k->period_end_ms);
        k->spent_micro = 0;
    }
}

static bool budget_spent(const gw_key *k) {
    return k->spec.budget_usd_micro >= 0 && k->spent_micro >= k->spec.budget_usd_micro;
}

/* A key with full buckets and its spending this period from the ledger. */
static hearth_err key_new(const gw_key_spec *spec, gw_ledger *ledger, int64_t now_ms,
                          gw_key **out) {
    gw_key *k = calloc(1, sizeof *k);
    if (!k) return hr_fail(HEARTH_ERR_NOMEM, "keys: out of memory");
    k->spec = *spec;
    pthread_mutex_init(&k->mu, NULL);
    gw_bucket_init(&k->req, spec->rpm, now_ms);
    gw_bucket_init(&k->tok, spec->tpm, now_ms);
    gw_budget_bounds(spec->budget_period, now_ms, &k->period_start_ms, &k->period_end_ms);
    hearth_err err = HEARTH_OK;
    if (ledger) err = gw_ledger_key_spend(ledger, spec->name, k->period_start_ms, &k->spent_micro);
    if (err) {
        pthread_mutex_destroy(&k->mu);
        free(k);
        return err;
    }
    *out = k;
    return HEARTH_OK;
}

static void key_free(gw_key *k) {
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* Appends k (the set's lock held, or the set not shared yet). */
static hearth_err push(gw_keys *ks, gw_key *k) {
    if (ks->n == ks->cap) {
        const int cap = ks->cap ? 2 * ks->cap : 16;
        gw_key **p = realloc(ks->keys, (size_t)cap * sizeof *p);
        if (!p) return hr_fail(HEARTH_ERR_NOMEM, "keys: out of memory");
        ks->keys = p;
        ks->cap = cap;
    }
    ks->keys[ks->n++] = k;
    atomic_fetch_add(&ks->active, 1);
    return HEARTH_OK;
}

/* A key the ledger kept, copied out of the visit (which holds its lock). */
typedef struct stored {
    char *name, *sha256, *settings;
    int64_t created_ms;
} stored;

typedef struct stored_list {
    stored *v;
    int n, cap;
    bool nomem;
} stored_list;

static void collect(void *user, const char *name, const char *sha256_hex, const char *settings,
                    int64_t created_ms) {
    stored_list *l = user;
    if (l->n == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 16;
        stored *p = realloc(l->v, (size_t)cap * sizeof *p);
        if (!p) {
            l->nomem = true;
            return;
        }
        l->v = p;
        l->cap = cap;
    }
    stored *s = &l->v[l->n];
    s->name = strdup(name ? name : "");
    s->sha256 = strdup(sha256_hex ? sha256_hex : "");
    s->settings = strdup(settings ? settings : "");
    s->created_ms = created_ms;
    l->n++;
    l->nomem |= !s->name || !s->sha256 || !s->settings;
}

/* A stored key as a set member; left out (why in ks->skipped) when its
 * settings no longer fit the configuration or its name is taken. */
static hearth_err add_stored(gw_keys *ks, const stored *s, int64_t now_ms) {
    gw_key_spec spec;
    hearth_err why = gw_key_spec_parse(ks->cfg, s->settings, strlen(s->settings), s->name, &spec);
    if (!why && !gw_sha256_parse(s->sha256, spec.sha256))
        why = hr_fail(HEARTH_ERR_FORMAT, "its digest is not 64 hex digits");
    if (!why && gw_keys_by_name(ks, spec.name))
        why = hr_fail(HEARTH_ERR_INVALID_ARG, "the name is taken by a key of the configuration");
    if (why) {
        if (!ks->n_skipped++)
            snprintf(ks->skipped, sizeof ks->skipped, "key '%s' in the ledger: %s", s->name,
                     hearth_last_error());
        return HEARTH_OK;
    }
    gw_key *k;
    hearth_err err = key_new(&spec, ks->ledger, now_ms, &k);
    if (!err) {
        k->created_ms = s->created_ms;
        if ((err = push(ks, k))) key_free(k);
    }
    return err;
}

hearth_err gw_keys_new(const gw_config *c, gw_ledger *ledger, int64_t now_ms, gw_keys **out) {
    gw_keys *ks = calloc(1, sizeof *ks);
    if (!ks) return hr_fail(HEARTH_ERR_NOMEM, "keys: out of memory");
    ks->cfg = c;
    ks->ledger = ledger;
    pthread_mutex_init(&ks->mu, NULL);
    hearth_err err = HEARTH_OK;
    for (int i = 0; !err && i < c->n_keys; i++) {
        gw_key *k;
        if (!(err = key_new(&c->keys[i], ledger, now_ms, &k))) {
            k->from_config = true;
            if ((err = push(ks, k))) key_free(k);
        }
    }
    stored_list l = {0};
    if (!err && ledger) err = gw_ledger_keys_load(ledger, collect, &l);
    if (!err && l.nomem) err = hr_fail(HEARTH_ERR_NOMEM, "keys: out of memory");
    for (int i = 0; !err && i < l.n; i++) err = add_stored(ks, &l.v[i], now_ms);
    for (int i = 0; i < l.n; i++) {
        free(l.v[i].name);
        free(l.v[i].sha256);
        free(l.v[i].settings);
    }
    free(l.v);
    if (err) {
        gw_keys_free(ks);
        return hr_wrap(err, "keys: ");
    }
    *out = ks;
    return HEARTH_OK;
}

void gw_keys_free(gw_keys *ks) {
    if (!ks) return;
    for (int i = 0; i < ks->n; i++) key_free(ks->keys[i]);
    pthread_mutex_destroy(&ks->mu);
    free(ks->keys);
    free(ks);
}

int gw_keys_count(gw_keys *ks) { return ks ? atomic_load(&ks->active) : 0; }

gw_key **gw_keys_snapshot(gw_keys *ks, int *n) {
    *n = 0;
    if (!ks) return NULL;
    pthread_mutex_lock(&ks->mu);
    gw_key **v = malloc((size_t)(ks->n ? ks->n : 1) * sizeof *v);
    for (int i = 0; v && i < ks->n; i++)
        if (!atomic_load(&ks->keys[i]->revoked)) v[(*n)++] = ks->keys[i];
    pthread_mutex_unlock(&ks->mu);
    return v;
}

int gw_keys_skipped(const gw_keys *ks, const char **why) {
    *why = ks->skipped;
    return ks->n_skipped;
}

gw_key *gw_keys_by_name(gw_keys *ks, const char *name) {
    gw_key *found = NULL;
    pthread_mutex_lock(&ks->mu);
    for (int i = 0; i < ks->n && !found; i++)
        if (!atomic_load(&ks->keys[i]->revoked) && !strcmp(ks->keys[i]->spec.name, name))
            found = ks->keys[i];
    pthread_mutex_unlock(&ks->mu);
    return found;
}

hearth_err gw_key_secret_new(char out[GW_KEY_SECRET_LEN + 1]) {
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[24]; /* 192 bits: 32 characters */
    size_t got = 0;
    while (got < sizeof raw) {
        const ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n <= 0) return hr_fail(HEARTH_ERR_IO, "keys: the system gave no random bytes");
        got += (size_t)n;
    }
    memcpy(out, "hk-", 3);
    for (size_t i = 0; i < sizeof raw; i += 3) {
        const unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 0; k < 4; k++) out[3 + i / 3 * 4 + (size_t)k] = b64url[v >> (18 - 6 * k) & 63];
    }
    out[GW_KEY_SECRET_LEN] = '\0';
    return HEARTH_OK;
}

hearth_err gw_keys_create(gw_keys *ks, const char *json, size_t len, int64_t now_ms,
                          char secret[GW_KEY_SECRET_LEN + 1], gw_key **out, int *status) {
    gw_key_spec spec;
    *status = 400;
    hearth_err err = gw_key_spec_parse(ks->cfg, json, len, "the key", &spec);
    if (err) return err;
    *status = 500;
    if ((err = gw_key_secret_new(secret))) return err;
    gw_sha256 h;
    gw_sha256_init(&h);
    gw_sha256_update(&h, secret, strlen(secret));
    gw_sha256_final(&h, spec.sha256);
    char hex[65];
    gw_sha256_hex(secret, strlen(secret), hex);
    gw_key *k;
    if ((err = key_new(&spec, ks->ledger, now_ms, &k))) return err;
    k->created_ms = now_ms;
    pthread_mutex_lock(&ks->mu); /* the name check and the insertion, as one */
    for (int i = 0; i < ks->n; i++)
        if (!atomic_load(&ks->keys[i]->revoked) && !strcmp(ks->keys[i]->spec.name, spec.name)) {
            *status = 409;
            err = hr_fail(HEARTH_ERR_INVALID_ARG, "a key named '%s' exists", spec.name);
        }
    if (!err && ks->ledger) err = gw_ledger_key_store(ks->ledger, spec.name, hex, json, now_ms);
    if (!err) err = push(ks, k);
    pthread_mutex_unlock(&ks->mu);
    if (err) {
        key_free(k);
        return err;
    }
    *out = k;
    return HEARTH_OK;
}

hearth_err gw_keys_revoke(gw_keys *ks, const char *name, int64_t now_ms, int *status) {
    gw_key *k = gw_keys_by_name(ks, name);
    if (!k) {
        *status = 404;
        return hr_fail(HEARTH_ERR_INVALID_ARG, "no key named '%s'", name);
    }
    if (k->from_config) {
        *status = 409;
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "the key '%s' is the configuration's: remove it from the file", name);
    }
    *status = 500;
    const hearth_err err = ks->ledger ? gw_ledger_key_revoke(ks->ledger, name, now_ms) : HEARTH_OK;
    if (!err && !atomic_exchange(&k->revoked, true)) atomic_fetch_sub(&ks->active, 1);
    return err;
}

const gw_key_spec *gw_key_spec_of(const gw_key *k) { return &k->spec; }

gw_key *gw_keys_find(gw_keys *ks, const char *secret, size_t len) {
    if (!ks) return NULL;
    uint8_t d[32];
    gw_sha256 h;
    gw_sha256_init(&h);
    gw_sha256_update(&h, secret, len);
    gw_sha256_final(&h, d);
    gw_key *found = NULL;
    pthread_mutex_lock(&ks->mu);
    for (int i = 0; i < ks->n; i++) {
        unsigned diff = 0;
        for (int b = 0; b < 32; b++) diff |= d[b] ^ ks->keys[i]->spec.sha256[b];
        if (!diff && !atomic_load(&ks->keys[i]->revoked)) found = ks->keys[i];
    }
    pthread_mutex_unlock(&ks->mu);
    return found;
}

/* The x-ratelimit-* figures (the key's lock held, buckets caught up). */
static void limits(const gw_key *k, gw_key_verdict *v) {
    v->limit_requests = k->spec.rpm;
    v->limit_tokens = k->spec.tpm;
    v->remaining_requests = (int)fmax(0.0, floor(k->req.level));
    v->remaining_tokens = (int)fmax(0.0, floor(k->tok.level));
    v->reset_requests_s = gw_bucket_full_s(&k->req);
    v->reset_tokens_s = gw_bucket_full_s(&k->tok);
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
    } else if (s->rpm && k->req.level < 1.0) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' is over its limit of %d requests per minute", s->name, s->rpm);
        ok = refuse(v, 429, "rate_limit_exceeded", gw_bucket_wait_s(&k->req, 1.0));
    } else if (s->tpm && k->tok.level <= 0.0) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' is over its limit of %d tokens per minute", s->name, s->tpm);
        ok = refuse(v, 429, "rate_limit_exceeded", gw_bucket_wait_s(&k->tok, 1.0));
    } else if (s->budget_refuses && budget_spent(k)) {
        snprintf(v->message, sizeof v->message,
                 "the API key '%s' has spent its budget of $%.2f (%.6f this period)", s->name,
                 (double)s->budget_usd_micro / 1e6, (double)k->spent_micro / 1e6);
        const bool ends = k->period_end_ms != INT64_MAX;
        ok = refuse(v, 429, "insufficient_quota",
                    ends ? (double)(k->period_end_ms - now_ms) / 1e3 : 0.0);
    } else {
        if (s->rpm) k->req.level -= 1.0;
        k->in_flight++;
        k->admitted++;
    }
    k->refused += !ok;
    limits(k, v);
    pthread_mutex_unlock(&k->mu);
    return ok;
}

void gw_key_done(gw_key *k, int64_t now_ms, int tokens) {
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    if (k->spec.tpm && tokens > 0) k->tok.level -= tokens;
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

/* The key as gw_key_info_json shows it (NULL when out of memory). */
static cJSON *key_info(gw_key *k, int64_t now_ms) {
    const gw_key_spec *s = &k->spec;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    pthread_mutex_lock(&k->mu);
    catch_up(k, now_ms);
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddStringToObject(o, "source", k->from_config ? "config" : "api");
    if (k->from_config)
        cJSON_AddNullToObject(o, "created_at");
    else
        add_time(o, "created_at", k->created_ms);
    cJSON_AddBoolToObject(o, "admin", s->admin);
    if (s->expires_ms)
        add_time(o, "expires_at", s->expires_ms);
    else
        cJSON_AddNullToObject(o, "expires_at");
    add_limit(o, "rpm", "remaining_requests", s->rpm, k->req.level);
    add_limit(o, "tpm", "remaining_tokens", s->tpm, k->tok.level);
    if (s->max_parallel)
        cJSON_AddNumberToObject(o, "max_parallel", s->max_parallel);
    else
        cJSON_AddNullToObject(o, "max_parallel");
    cJSON_AddNumberToObject(o, "in_flight", k->in_flight);
    cJSON_AddNumberToObject(o, "spent_usd", (double)k->spent_micro / 1e6); /* this period */
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
    return o;
}

char *gw_key_info_json(gw_key *k, int64_t now_ms) {
    cJSON *o = key_info(k, now_ms);
    char *json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return json;
}

char *gw_keys_list_json(gw_keys *ks, int64_t now_ms) {
    int n;
    gw_key **keys = gw_keys_snapshot(ks, &n);
    cJSON *a = keys ? cJSON_CreateArray() : NULL;
    bool ok = a != NULL;
    for (int i = 0; ok && i < n; i++) {
        cJSON *item = key_info(keys[i], now_ms);
        ok = item && cJSON_AddItemToArray(a, item);
        if (!ok) cJSON_Delete(item);
    }
    free(keys);
    char *out = ok ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return out;
}

void gw_keys_metrics(gw_keys *ks, int64_t now_ms, gw_buf *out) {
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"hearth_key_requests_total", "counter",
         "Requests an API key was admitted for (those that run a model)."},
        {"hearth_key_refused_total", "counter",
         "Requests an API key's limits, budget or expiry refused (429, 401)."},
        {"hearth_key_in_flight", "gauge", "An API key's requests running now."},
        {"hearth_key_spend_usd", "gauge", "Dollars an API key spent in its budget period."},
    };
    int n_keys;
    gw_key **keys = gw_keys_snapshot(ks, &n_keys);
    for (size_t i = 0; n_keys && i < sizeof m / sizeof m[0]; i++) {
        gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help, m[i].name,
                      m[i].type);
        for (int n = 0; n < n_keys; n++) {
            gw_key *k = keys[n];
            pthread_mutex_lock(&k->mu);
            catch_up(k, now_ms);
            const double v[] = {(double)k->admitted, (double)k->refused, k->in_flight,
                                (double)k->spent_micro / 1e6};
            pthread_mutex_unlock(&k->mu);
            /* names are letters, digits, '-', '_', '.': nothing to escape */
            gw_buf_printf(out, "%s{key=\"%s\"} %.17g\n", m[i].name, k->spec.name, v[i]);
        }
    }
    free(keys);
}
