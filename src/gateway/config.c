/*
 * config.c - the gateway's configuration: tiers, routing rules, confidence
 * thresholds and privacy actions, from a JSON file (cJSON; there is no YAML
 * library among Hearth's dependencies, and JSON is what every gateway config
 * converts to) or from the --cloud-* flags. docs/gateway.md describes the
 * format; in short:
 *
 *   {"tiers": [{"name": "cloud", "kind": "openai", "base_url": "...",
 *               "model": "...", "api_key_env": "OPENAI_API_KEY",
 *               "price_per_mtok": {"input": 0.15, "output": 0.60},
 *               "timeout_ms": 30000, "retries": 2,
 *               "embedding_models": ["text-embedding-3-small"],
 *               "rerank_models": ["rerank-v3.5"], "rerank_path": "/v2/rerank"}],
 *    "local": {"price_per_mtok": {"input": 0, "output": 0}},
 *    "routing": {"escalate_to": "cloud", "reference_tier": "cloud",
 *                "router_threshold": 0.6, "confidence_check": true,
 *                "confidence": {"mean_logprob": -1.0, "min_logprob": -6.0,
 *                               "min_tokens": 4},
 *                "rules": [{"name": "long", "min_chars": 8000, "route": "cloud"}]},
 *    "privacy": {"actions": {"SSN": "block", "IP": "allow"},
 *                "on_block": "local", "dates_of_birth": "context"},
 *    "air_gapped": false, "ledger_prompts": false}
 *
 * Unknown keys are errors (a typo must not silently change a policy). API
 * keys are never read from the file: only the name of the environment
 * variable that holds one. Money is parsed to integer micro-dollars.
 */
#include "gateway.h"

#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cjson/cJSON.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *gw_tier_kind_name(gw_tier_kind k) {
    switch (k) {
    case GW_TIER_LOCAL: return "local";
    case GW_TIER_OPENAI: return "openai";
    case GW_TIER_ANTHROPIC: return "anthropic";
    }
    return "unknown";
}

gw_tier gw_tier_default(void) {
    gw_tier t;
    memset(&t, 0, sizeof t);
    t.kind = GW_TIER_OPENAI;
    t.timeout_ms = 60000;
    t.retries = 2;
    t.backoff_ms = 500;
    t.backoff_max_ms = 8000;
    t.breaker_failures = 5;
    t.breaker_cooldown_ms = 30000;
    t.max_tokens = 1024;
    return t;
}

void gw_config_init(gw_config *c) {
    memset(c, 0, sizeof *c);
    c->n_tiers = 1;
    snprintf(c->tiers[0].name, sizeof c->tiers[0].name, "local");
    c->tiers[0].kind = GW_TIER_LOCAL;
    c->router_threshold = NAN;
    c->confidence_check = true;
    c->conf = (gw_conf_thresholds){-1.0, -6.0, 4};
    c->dob_mode = GW_DOB_CONTEXT;
    c->cache_ttl_ms = 3600 * 1000;
    c->cache_max_entries = 10000;
}

void gw_config_fini(gw_config *c) {
    for (int i = 0; i < c->n_rules; i++) {
        pcre2_code_free(c->rules[i].re);
        c->rules[i].re = NULL;
    }
    free(c->keys);
    c->keys = NULL;
    c->n_keys = 0;
}

int gw_config_tier(const gw_config *c, const char *name) {
    for (int i = 0; i < c->n_tiers; i++)
        if (!strcmp(c->tiers[i].name, name)) return i;
    return -1;
}

static bool ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

hearth_err gw_endpoint_url(gw_tier_kind kind, const char *base, char *out, size_t cap) {
    if (strncasecmp(base, "http://", 7) && strncasecmp(base, "https://", 8))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "'%s' is not an http:// or https:// URL", base);
    char b[512];
    const int n = snprintf(b, sizeof b, "%s", base);
    if (n < 0 || (size_t)n >= sizeof b)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "the URL '%.40s...' is too long", base);
    for (size_t k = strlen(b); k > 8 && b[k - 1] == '/'; k--) b[k - 1] = '\0';
    const char *suffix = kind == GW_TIER_ANTHROPIC ? "/messages" : "/chat/completions";
    const char *add = ends_with(b, suffix) ? "" : ends_with(b, "/v1") ? suffix : NULL;
    char v1[64];
    if (!add) {
        snprintf(v1, sizeof v1, "/v1%s", suffix);
        add = v1;
    }
    const int m = snprintf(out, cap, "%s%s", b, add);
    if (m < 0 || (size_t)m >= cap)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "the URL '%.40s...' is too long", base);
    return HEARTH_OK;
}

hearth_err gw_parse_usd(const char *s, int64_t *usd_micro) {
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    int64_t whole = 0, frac = 0;
    int n_whole = 0, n_frac = 0;
    for (; isdigit((unsigned char)*p) && n_whole < 10; p++, n_whole++)
        whole = whole * 10 + (*p - '0');
    bool too_precise = false;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            if (n_frac < 6)
                frac = frac * 10 + (*p - '0');
            else if (*p != '0')
                too_precise = true; /* finer than a micro-dollar */
            n_frac++;
        }
    }
    while (isspace((unsigned char)*p)) p++;
    if (*p || (!n_whole && !n_frac) || n_whole >= 10 || too_precise)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "'%s' is not a price in dollars (e.g. 0.15; at most 6 decimals)", s);
    for (int k = n_frac; k < 6; k++) frac *= 10;

    *usd_micro = whole * 1000000 + frac;
    return HEARTH_OK;
}

int64_t gw_cost_usd_micro(const gw_tier *t, int64_t prompt_tokens, int64_t completion_tokens) {
    __extension__ typedef __int128 wide;
    const wide v = (wide)prompt_tokens * t->price_in_usd_micro +
                   (wide)completion_tokens * t->price_out_usd_micro;
    const wide r = (v + 500000) / 1000000;
    return r > INT64_MAX ? INT64_MAX : (int64_t)r;
}

/* ---- JSON ------------------------------------------------------------------ */

typedef struct jctx {
    const char *what; /* the file, for messages */
    char path[128];   /* the field being read */
} jctx;

static hearth_err bad(const jctx *j, const char *field, const char *why) {
    return hr_fail(HEARTH_ERR_FORMAT, "%s: %s%s%s: %s", j->what, j->path, j->path[0] ? "." : "",
                   field, why);
}

/* bad() with the last error as the reason (copied first: the message is
 * written over the buffer it is read from). */
static hearth_err bad_last(const jctx *j, const char *field) {
    char why[256];
    snprintf(why, sizeof why, "%s", hearth_last_error());
    return bad(j, field, why);
}

/* Fails on a key of obj that is not in `known` (a NULL-terminated list). */
static hearth_err only_keys(const jctx *j, const cJSON *obj, const char *const *known) {
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = !strcmp(it->string, *k);
        if (!ok) return bad(j, it->string, "unknown key");
    }
    return HEARTH_OK;
}

static hearth_err get_string(const jctx *j, const cJSON *obj, const char *key, char *out,
                             size_t cap, bool required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? bad(j, key, "missing") : HEARTH_OK;
    if (!cJSON_IsString(v)) return bad(j, key, "must be a string");
    if (strlen(v->valuestring) >= cap) return bad(j, key, "too long");
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return HEARTH_OK;
}

static hearth_err get_int(const jctx *j, const cJSON *obj, const char *key, int lo, int hi,
                          int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return HEARTH_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        char why[64];
        snprintf(why, sizeof why, "must be an integer in %d..%d", lo, hi);
        return bad(j, key, why);
    }
    *out = (int)v->valuedouble;
    return HEARTH_OK;
}

static hearth_err get_double(const jctx *j, const cJSON *obj, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return HEARTH_OK;
    if (cJSON_IsNull(v)) {
        *out = -INFINITY; /* null switches a threshold off */
        return HEARTH_OK;
    }
    if (!cJSON_IsNumber(v)) return bad(j, key, "must be a number or null");
    *out = v->valuedouble;
    return HEARTH_OK;
}

static hearth_err get_bool(const jctx *j, const cJSON *obj, const char *key, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return HEARTH_OK;
    if (!cJSON_IsBool(v)) return bad(j, key, "must be true or false");
    *out = cJSON_IsTrue(v);
    return HEARTH_OK;
}

/* Dollars: a number or a decimal string; `what` says of what in errors. */
static hearth_err get_dollars(const jctx *j, const cJSON *obj, const char *key, const char *what,
                              int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return HEARTH_OK;
    char text[64];
    if (cJSON_IsString(v))
        snprintf(text, sizeof text, "%.63s", v->valuestring);
    else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9)
        snprintf(text, sizeof text, "%.6f", v->valuedouble);
    else
        return bad(j, key, what);
    if (gw_parse_usd(text, out)) return bad_last(j, key);
    return HEARTH_OK;
}

/* A price: dollars per million tokens. */
static hearth_err get_price(const jctx *j, const cJSON *obj, const char *key, int64_t *out) {
    return get_dollars(j, obj, key, "must be dollars per million tokens (a number or a string)",
                       out);
}

static hearth_err get_prices(const jctx *j, const cJSON *obj, gw_tier *t) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "price_per_mtok");
    if (!p) return HEARTH_OK;
    if (!cJSON_IsObject(p))
        return bad(j, "price_per_mtok", "must be {\"input\": .., \"output\": ..}");
    jctx jj = *j;
    snprintf(jj.path, sizeof jj.path, "%s%sprice_per_mtok", j->path, j->path[0] ? "." : "");
    static const char *const keys[] = {"input", "output", NULL};
    hearth_err err = only_keys(&jj, p, keys);
    if (!err) err = get_price(&jj, p, "input", &t->price_in_usd_micro);
    if (!err) err = get_price(&jj, p, "output", &t->price_out_usd_micro);
    return err;
}

static hearth_err get_names(const jctx *j, const cJSON *obj, const char *key, char *slots,
                            size_t slot_size, int max, int *n, bool *given);

/* One endpoint besides chat (embeddings or rerank): the models the tier
 * serves on it and its URL (gw_service_url), set when it declares some. */
static hearth_err parse_service(const jctx *j, const cJSON *o, const char *base,
                                const char *models_key, const char *path_key, const char *suffix,
                                char (*models)[GW_TIER_MODEL_MAX], int *n, char *url, size_t cap) {
    bool given = false;
    char path[512] = "";
    hearth_err err =
        get_names(j, o, models_key, &models[0][0], GW_TIER_MODEL_MAX, GW_TIER_MODELS, n, &given);
    if (!err) err = get_string(j, o, path_key, path, sizeof path, false);
    if (err) return err;
    for (int i = 0; i < *n; i++)
        for (const char *p = models[i]; *p; p++)
            if (*p <= ' ' || *p > '~')
                return bad(j, models_key, "names must be printable ASCII without spaces");
    if (path[0] && !*n) return bad(j, path_key, "is given, but no model is declared for it");
    if (*n && gw_service_url(base, path[0] ? path : NULL, suffix, url, cap))
        return bad_last(j, path[0] ? path_key : "base_url");
    return HEARTH_OK;
}

/* "embedding_models", "rerank_models" and their paths: an OpenAI-compatible
 * tier's (Anthropic has neither endpoint). */
static hearth_err parse_services(const jctx *j, const cJSON *o, const char *base, gw_tier *t) {
    static const char *const keys[] = {"embedding_models", "rerank_models", "embedding_path",
                                       "rerank_path"};
    for (int k = 0; k < 4 && t->kind == GW_TIER_ANTHROPIC; k++)
        if (cJSON_GetObjectItemCaseSensitive(o, keys[k]))
            return bad(j, keys[k], "an anthropic tier has no embeddings or rerank endpoint");
    hearth_err err = parse_service(j, o, base, "embedding_models", "embedding_path", "/embeddings",
                                   t->embedding_models, &t->n_embedding_models, t->embed_url,
                                   sizeof t->embed_url);
    if (!err)
        err = parse_service(j, o, base, "rerank_models", "rerank_path", "/rerank", t->rerank_models,
                            &t->n_rerank_models, t->rerank_url, sizeof t->rerank_url);
    return err;
}

static hearth_err parse_tier(gw_config *c, const jctx *j, const cJSON *o) {
    static const char *const keys[] = {"name",
                                       "kind",
                                       "base_url",
                                       "model",
                                       "api_key_env",
                                       "price_per_mtok",
                                       "timeout_ms",
                                       "retries",
                                       "backoff_ms",
                                       "backoff_max_ms",
                                       "breaker_failures",
                                       "breaker_cooldown_ms",
                                       "max_tokens",
                                       "rpm",
                                       "tpm",
                                       "embedding_models",
                                       "rerank_models",
                                       "embedding_path",
                                       "rerank_path",
                                       NULL};
    if (!cJSON_IsObject(o)) return bad(j, "", "must be an object");
    if (c->n_tiers >= GW_MAX_TIERS) return bad(j, "", "too many tiers");
    gw_tier t = gw_tier_default();
    char kind[32] = "openai", base[512] = "";
    hearth_err err = only_keys(j, o, keys);
    if (!err) err = get_string(j, o, "name", t.name, sizeof t.name, true);
    if (!err) err = get_string(j, o, "kind", kind, sizeof kind, false);
    if (!err) err = get_string(j, o, "base_url", base, sizeof base, true);
    if (!err) err = get_string(j, o, "model", t.model, sizeof t.model, true);
    if (!err) err = get_string(j, o, "api_key_env", t.api_key_env, sizeof t.api_key_env, false);
    if (!err) err = get_prices(j, o, &t);
    if (!err) err = get_int(j, o, "timeout_ms", 1, 3600000, &t.timeout_ms);
    if (!err) err = get_int(j, o, "retries", 0, 10, &t.retries);
    if (!err) err = get_int(j, o, "backoff_ms", 0, 600000, &t.backoff_ms);
    if (!err) err = get_int(j, o, "backoff_max_ms", 0, 600000, &t.backoff_max_ms);
    if (!err) err = get_int(j, o, "breaker_failures", 1, 1000, &t.breaker_failures);
    if (!err) err = get_int(j, o, "breaker_cooldown_ms", 0, 86400000, &t.breaker_cooldown_ms);
    if (!err) err = get_int(j, o, "max_tokens", 1, 1 << 24, &t.max_tokens);
    if (!err) err = get_int(j, o, "rpm", 0, 100000000, &t.rpm);
    if (!err) err = get_int(j, o, "tpm", 0, 1000000000, &t.tpm);
    if (err) return err;
    if (!strcmp(kind, "openai"))
        t.kind = GW_TIER_OPENAI;
    else if (!strcmp(kind, "anthropic"))
        t.kind = GW_TIER_ANTHROPIC;
    else
        return bad(j, "kind", "must be \"openai\" or \"anthropic\"");
    if (gw_endpoint_url(t.kind, base, t.url, sizeof t.url)) return bad_last(j, "base_url");
    err = parse_services(j, o, base, &t);
    if (err) return err;
    c->tiers[c->n_tiers++] = t;
    return HEARTH_OK;
}

static hearth_err parse_conf(const jctx *j, const cJSON *o, gw_conf_thresholds *t) {
    if (!cJSON_IsObject(o)) return bad(j, "confidence", "must be an object");
    jctx jj = *j;
    snprintf(jj.path, sizeof jj.path, "%s%sconfidence", j->path, j->path[0] ? "." : "");
    static const char *const keys[] = {"mean_logprob", "min_logprob", "min_tokens", NULL};
    hearth_err err = only_keys(&jj, o, keys);
    if (!err) err = get_double(&jj, o, "mean_logprob", &t->mean_logprob);
    if (!err) err = get_double(&jj, o, "min_logprob", &t->min_logprob);
    if (!err) err = get_int(&jj, o, "min_tokens", 0, 1 << 20, &t->min_tokens);
    return err;
}

static hearth_err parse_rule(gw_config *c, const jctx *j, const cJSON *o) {
    static const char *const keys[] = {"name", "min_chars", "max_chars",  "pattern",
                                       "task", "route",     "confidence", NULL};
    if (!cJSON_IsObject(o)) return bad(j, "", "must be an object");
    if (c->n_rules >= GW_MAX_RULES) return bad(j, "", "too many rules");
    gw_rule r;
    memset(&r, 0, sizeof r);
    int min_chars = 0, max_chars = 0;
    r.conf = c->conf;
    hearth_err err = only_keys(j, o, keys);
    if (!err) err = get_string(j, o, "name", r.name, sizeof r.name, false);
    if (!err) err = get_int(j, o, "min_chars", 0, INT32_MAX, &min_chars);
    if (!err) err = get_int(j, o, "max_chars", 0, INT32_MAX, &max_chars);
    if (!err) err = get_string(j, o, "pattern", r.pattern, sizeof r.pattern, false);
    if (!err) err = get_string(j, o, "task", r.task, sizeof r.task, false);
    if (!err) err = get_string(j, o, "route", r.target, sizeof r.target, true);
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(o, "confidence");
    if (!err && conf) {
        r.has_conf = true;
        err = parse_conf(j, conf, &r.conf);
    }
    if (err) return err;
    r.min_chars = (size_t)min_chars;
    r.max_chars = (size_t)max_chars;
    if (!r.name[0]) snprintf(r.name, sizeof r.name, "rule%d", c->n_rules + 1);
    c->rules[c->n_rules++] = r;
    return HEARTH_OK;
}

static hearth_err parse_routing(gw_config *c, const jctx *j0, const cJSON *o) {
    jctx j = *j0;
    snprintf(j.path, sizeof j.path, "routing");
    static const char *const keys[] = {"escalate_to",
                                       "reference_tier",
                                       "router_threshold",
                                       "confidence_check",
                                       "confidence",
                                       "rules",
                                       NULL};
    if (!cJSON_IsObject(o)) return bad(j0, "routing", "must be an object");
    hearth_err err = only_keys(&j, o, keys);
    if (!err) err = get_string(&j, o, "escalate_to", c->escalate_to, sizeof c->escalate_to, false);
    if (!err)
        err =
            get_string(&j, o, "reference_tier", c->reference_tier, sizeof c->reference_tier, false);
    if (!err) err = get_double(&j, o, "router_threshold", &c->router_threshold);
    if (!err) err = get_bool(&j, o, "confidence_check", &c->confidence_check);
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(o, "confidence");
    if (!err && conf) err = parse_conf(&j, conf, &c->conf);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(o, "rules");
    if (!err && rules && !cJSON_IsArray(rules)) err = bad(&j, "rules", "must be an array");
    const cJSON *r;
    int k = 0;
    cJSON_ArrayForEach(r, rules) {
        if (err) break;
        jctx jr = j;
        snprintf(jr.path, sizeof jr.path, "routing.rules[%d]", k++);
        err = parse_rule(c, &jr, r);
    }
    return err;
}

static hearth_err parse_privacy(gw_config *c, const jctx *j0, const cJSON *o) {
    jctx j = *j0;
    snprintf(j.path, sizeof j.path, "privacy");
    static const char *const keys[] = {"actions", "on_block", "dates_of_birth", NULL};
    if (!cJSON_IsObject(o)) return bad(j0, "privacy", "must be an object");
    hearth_err err = only_keys(&j, o, keys);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "actions"), *it;
    if (!err && a && !cJSON_IsObject(a)) err = bad(&j, "actions", "must be an object");
    cJSON_ArrayForEach(it, a) {
        if (err) break;
        gw_entity e;
        gw_pii_action act;
        if (!gw_entity_parse(it->string, &e))
            err = bad(&j, it->string,
                      "is not an entity (EMAIL, PHONE, CREDIT_CARD, IBAN, SSN, IP, DOB)");
        else if (!cJSON_IsString(it) || !gw_pii_action_parse(it->valuestring, &act))
            err = bad(&j, it->string, "must be \"redact\", \"block\" or \"allow\"");
        else
            c->pii[e] = act;
    }
    char on_block[16] = "", dob[16] = "";
    if (!err) err = get_string(&j, o, "on_block", on_block, sizeof on_block, false);
    if (!err) err = get_string(&j, o, "dates_of_birth", dob, sizeof dob, false);
    if (err) return err;
    if (on_block[0] && strcmp(on_block, "local") && strcmp(on_block, "refuse"))
        return bad(&j, "on_block", "must be \"local\" or \"refuse\"");
    if (on_block[0]) c->block_refuses = !strcmp(on_block, "refuse");
    if (dob[0] && strcmp(dob, "context") && strcmp(dob, "all"))
        return bad(&j, "dates_of_birth", "must be \"context\" or \"all\"");
    if (dob[0]) c->dob_mode = !strcmp(dob, "all") ? GW_DOB_ALL : GW_DOB_CONTEXT;
    return HEARTH_OK;
}

/* An array of strings into fixed slots; errors name the array. */
static hearth_err get_names(const jctx *j, const cJSON *obj, const char *key, char *slots,
                            size_t slot_size, int max, int *n, bool *given) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
    if (!a) return HEARTH_OK;
    if (!cJSON_IsArray(a)) return bad(j, key, "must be an array of strings");
    *given = true;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) >= slot_size)
            return bad(j, key, "must hold non-empty strings of reasonable length");
        if (*n >= max) return bad(j, key, "too many entries");
        snprintf(slots + (size_t)(*n)++ * slot_size, slot_size, "%s", it->valuestring);
    }
    return HEARTH_OK;
}

/* The key's secret: its SHA-256 in hex ("key_sha256"), or the name of the
 * environment variable that holds it ("key_env"), exactly one of them. */
static hearth_err get_secret(const jctx *j, const cJSON *o, gw_key_spec *k) {
    char hex[80] = "", env[GW_NAME_MAX] = "";
    hearth_err err = get_string(j, o, "key_sha256", hex, sizeof hex, false);
    if (!err) err = get_string(j, o, "key_env", env, sizeof env, false);
    if (err) return err;
    if (!hex[0] == !env[0]) return bad(j, "key_sha256", "give it or key_env (exactly one)");
    if (env[0]) {
        const char *secret = getenv(env);
        if (!secret || !secret[0]) return bad(j, "key_env", "names an unset or empty variable");
        gw_sha256 h;
        gw_sha256_init(&h);
        gw_sha256_update(&h, secret, strlen(secret));
        gw_sha256_final(&h, k->sha256);
        return HEARTH_OK;
    }
    if (!gw_sha256_parse(hex, k->sha256)) return bad(j, "key_sha256", "must be 64 hex digits");
    return HEARTH_OK;
}

/* One key's settings into *k; with_secret: the secret (key_sha256 or
 * key_env) is required, else refused (the server makes it). */
static hearth_err parse_key(const jctx *j, const cJSON *o, bool with_secret, gw_key_spec *k) {
    static const char *const keys[] = {
        "name",       "key_sha256",    "key_env",   "admin", "rpm",    "tpm",     "max_parallel",
        "budget_usd", "budget_period", "on_budget", "tiers", "models", "expires", NULL};
    if (!cJSON_IsObject(o)) return bad(j, "", "must be an object");
    memset(k, 0, sizeof *k);
    k->budget_usd_micro = -1;
    k->budget_period = GW_BUDGET_MONTH;
    char period[16] = "", on_budget[16] = "", expires[40] = "";
    bool models_given = false;
    hearth_err err = only_keys(j, o, keys);
    if (!err) err = get_string(j, o, "name", k->name, sizeof k->name, true);
    if (!err && with_secret) err = get_secret(j, o, k);
    if (!err && !with_secret &&
        (cJSON_GetObjectItemCaseSensitive(o, "key_sha256") ||
         cJSON_GetObjectItemCaseSensitive(o, "key_env")))
        err = bad(j, "key_sha256", "is made by the server for a key created at run time");
    if (!err) err = get_bool(j, o, "admin", &k->admin);
    if (!err) err = get_int(j, o, "rpm", 0, 100000000, &k->rpm);
    if (!err) err = get_int(j, o, "tpm", 0, 1000000000, &k->tpm);
    if (!err) err = get_int(j, o, "max_parallel", 0, 1000000, &k->max_parallel);
    if (!err)
        err = get_dollars(j, o, "budget_usd", "must be dollars (a number or a string)",
                          &k->budget_usd_micro);
    if (!err) err = get_string(j, o, "budget_period", period, sizeof period, false);
    if (!err) err = get_string(j, o, "on_budget", on_budget, sizeof on_budget, false);
    if (!err)
        err = get_names(j, o, "tiers", &k->tiers[0][0], sizeof k->tiers[0], GW_MAX_TIERS,
                        &k->n_tiers, &k->tiers_given);
    if (!err)
        err = get_names(j, o, "models", &k->models[0][0], sizeof k->models[0], GW_KEY_MODELS,
                        &k->n_models, &models_given);
    if (!err) err = get_string(j, o, "expires", expires, sizeof expires, false);
    if (err) return err;
    static const char *const periods[] = {"total", "day", "week", "month"};
    if (period[0]) {
        int p = 0;
        while (p < 4 && strcmp(period, periods[p])) p++;
        if (p == 4)
            return bad(j, "budget_period", "must be \"total\", \"day\", \"week\" or \"month\"");
        k->budget_period = (gw_budget_period)p;
    }
    if (on_budget[0] && strcmp(on_budget, "local") && strcmp(on_budget, "refuse"))
        return bad(j, "on_budget", "must be \"local\" or \"refuse\"");
    k->budget_refuses = !strcmp(on_budget, "refuse");
    if (expires[0] && (!strchr(expires, '-') || gw_parse_since(expires, 0, &k->expires_ms)))
        return bad(j, "expires", "must be a UTC date or time (2027-01-31, 2027-01-31T12:00:00Z)");
    return HEARTH_OK;
}

static hearth_err parse_keys(gw_config *c, const jctx *j0, const cJSON *a) {
    if (!cJSON_IsArray(a)) return bad(j0, "keys", "must be an array");
    const int n = cJSON_GetArraySize(a);
    gw_key_spec *grown = n ? realloc(c->keys, (size_t)(c->n_keys + n) * sizeof *grown) : c->keys;
    if (n && !grown) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    c->keys = grown;
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, a) {
        jctx j = *j0;
        snprintf(j.path, sizeof j.path, "keys[%d]", i++);
        const hearth_err err = parse_key(&j, it, true, &c->keys[c->n_keys]);
        if (err) return err;
        c->n_keys++;
    }
    return HEARTH_OK;
}

/* "cache": {"ttl": "1h", "max_entries": 10000, "shared": false, "sampled": false} */
static hearth_err parse_cache(gw_config *c, const jctx *j0, const cJSON *o) {
    jctx j = *j0;
    snprintf(j.path, sizeof j.path, "cache");
    static const char *const keys[] = {"ttl", "max_entries", "shared", "sampled", NULL};
    if (!cJSON_IsObject(o)) return bad(j0, "cache", "must be an object");
    char ttl[32] = "1h";
    hearth_err err = only_keys(&j, o, keys);
    if (!err) err = get_string(&j, o, "ttl", ttl, sizeof ttl, false);
    if (!err) err = get_int(&j, o, "max_entries", 1, 100000000, &c->cache_max_entries);
    if (!err) err = get_bool(&j, o, "shared", &c->cache_shared);
    if (!err) err = get_bool(&j, o, "sampled", &c->cache_sampled);
    if (!err && (gw_parse_duration(ttl, &c->cache_ttl_ms) || c->cache_ttl_ms <= 0))
        err = bad(&j, "ttl", "must be a duration (90s, 30m, 1h, 7d)");
    c->cache = !err;
    return err;
}

hearth_err gw_config_parse(gw_config *c, const char *json, size_t len, const char *what) {
    jctx j = {.what = what};
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return hr_fail(HEARTH_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", what,
                       (size_t)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : 0));
    static const char *const keys[] = {"tiers",   "local",      "routing",
                                       "privacy", "air_gapped", "ledger_prompts",
                                       "keys",    "cache",      NULL};
    hearth_err err = cJSON_IsObject(root) ? only_keys(&j, root, keys)
                                          : bad(&j, "(top level)", "must be an object");
    const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(root, "tiers"), *t;
    if (!err && tiers && !cJSON_IsArray(tiers)) err = bad(&j, "tiers", "must be an array");
    int k = 0;
    cJSON_ArrayForEach(t, tiers) {
        if (err) break;
        jctx jt = j;
        snprintf(jt.path, sizeof jt.path, "tiers[%d]", k++);
        err = parse_tier(c, &jt, t);
    }
    const cJSON *local = cJSON_GetObjectItemCaseSensitive(root, "local");
    if (!err && local) {
        jctx jl = j;
        snprintf(jl.path, sizeof jl.path, "local");
        static const char *const lkeys[] = {"price_per_mtok", NULL};
        err = cJSON_IsObject(local) ? only_keys(&jl, local, lkeys)
                                    : bad(&j, "local", "must be an object");
        if (!err) err = get_prices(&jl, local, &c->tiers[0]);
    }
    const cJSON *routing = cJSON_GetObjectItemCaseSensitive(root, "routing");
    if (!err && routing) err = parse_routing(c, &j, routing);
    const cJSON *privacy = cJSON_GetObjectItemCaseSensitive(root, "privacy");
    if (!err && privacy) err = parse_privacy(c, &j, privacy);
    if (!err) err = get_bool(&j, root, "air_gapped", &c->air_gapped);
    if (!err) err = get_bool(&j, root, "ledger_prompts", &c->ledger_prompts);
    const cJSON *cache = cJSON_GetObjectItemCaseSensitive(root, "cache");
    if (!err && cache) err = parse_cache(c, &j, cache);
    const cJSON *keys_json = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!err && keys_json) err = parse_keys(c, &j, keys_json);
    cJSON_Delete(root);
    return err;
}

hearth_err gw_config_load(gw_config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return hr_fail(HEARTH_ERR_IO, "cannot open the configuration '%s'", path);
    enum { MAX = 1 << 20 };
    char *buf = malloc(MAX + 1);
    const size_t n = buf ? fread(buf, 1, MAX + 1, f) : 0;
    fclose(f);
    hearth_err err = HEARTH_OK;
    if (!buf)
        err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    else if (n > MAX)
        err = hr_fail(HEARTH_ERR_FORMAT, "%s: larger than 1 MiB", path);
    else
        err = gw_config_parse(c, buf, n, path);
    free(buf);
    return err;
}

hearth_err gw_config_add_cloud(gw_config *c, const char *url, const char *model,
                               const char *key_env, const char *price) {
    if (gw_config_tier(c, "cloud") >= 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "--cloud-url: a tier named \"cloud\" exists already");
    if (c->n_tiers >= GW_MAX_TIERS) return hr_fail(HEARTH_ERR_INVALID_ARG, "too many tiers");
    if (!model || !*model)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "--cloud-url needs --cloud-model");
    gw_tier t = gw_tier_default();
    snprintf(t.name, sizeof t.name, "cloud");
    if (gw_endpoint_url(GW_TIER_OPENAI, url, t.url, sizeof t.url))
        return hr_wrap(HEARTH_ERR_INVALID_ARG, "--cloud-url: ");
    if (strlen(model) >= sizeof t.model)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "--cloud-model: too long");
    snprintf(t.model, sizeof t.model, "%s", model);
    if (key_env) {
        if (strlen(key_env) >= sizeof t.api_key_env)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "--cloud-key-env: too long");
        snprintf(t.api_key_env, sizeof t.api_key_env, "%s", key_env);
    }
    if (price) {
        const char *comma = strchr(price, ',');
        char in[64];
        if (!comma || (size_t)(comma - price) >= sizeof in)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "--cloud-price: want IN,OUT (dollars per million tokens), got '%s'",
                           price);
        memcpy(in, price, (size_t)(comma - price));
        in[comma - price] = '\0';
        if (gw_parse_usd(in, &t.price_in_usd_micro) ||
            gw_parse_usd(comma + 1, &t.price_out_usd_micro))
            return hr_wrap(HEARTH_ERR_INVALID_ARG, "--cloud-price: ");
    }
    c->tiers[c->n_tiers++] = t;
    return HEARTH_OK;
}

static bool valid_name(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return false;
    return true;
}

/* A key's name is valid and its "tiers" name tiers of c (tier_ok filled). */
static hearth_err finish_key(const gw_config *c, gw_key_spec *k) {
    if (!valid_name(k->name))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "key name '%s': use letters, digits, '-', '_', '.'",
                       k->name);
    for (int t = 1; t < c->n_tiers; t++) k->tier_ok[t] = !k->tiers_given;
    for (int n = 0; n < k->n_tiers; n++) {
        const int t = gw_config_tier(c, k->tiers[n]); /* "local" is always allowed */
        if (t < 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "key '%s': tiers: no tier '%s'", k->name,
                           k->tiers[n]);
        k->tier_ok[t] = true;
    }
    return HEARTH_OK;
}

/* Every key finished; names and secrets unique. */
static hearth_err finish_keys(gw_config *c) {
    for (int i = 0; i < c->n_keys; i++) {
        gw_key_spec *k = &c->keys[i];
        const hearth_err err = finish_key(c, k);
        if (err) return hr_wrap(err, "keys[%d]: ", i);
        for (int p = 0; p < i; p++) {
            if (!strcmp(c->keys[p].name, k->name))
                return hr_fail(HEARTH_ERR_INVALID_ARG, "two keys are named '%s'", k->name);
            if (!memcmp(c->keys[p].sha256, k->sha256, sizeof k->sha256))
                return hr_fail(HEARTH_ERR_INVALID_ARG, "keys '%s' and '%s' have the same secret",
                               c->keys[p].name, k->name);
        }
    }
    return HEARTH_OK;
}

hearth_err gw_key_spec_parse(const gw_config *c, const char *json, size_t len, const char *what,
                             gw_key_spec *out) {
    const jctx j = {.what = what};
    cJSON *o = cJSON_ParseWithLength(json, len);
    hearth_err err =
        o ? parse_key(&j, o, false, out) : hr_fail(HEARTH_ERR_FORMAT, "%s: not valid JSON", what);
    cJSON_Delete(o);
    return err ? err : finish_key(c, out);
}

/* An embedding or rerank model is one tier's: the route is never ambiguous. */
static hearth_err finish_services(const gw_config *c) {
    for (int t = 1; t < c->n_tiers; t++) {
        const gw_tier *a = &c->tiers[t];
        for (int k = 0; k < 2; k++) {
            const gw_embed_kind kind = k ? GW_EMBED_RERANK : GW_EMBED_VECTORS;
            const int n = k ? a->n_rerank_models : a->n_embedding_models;
            for (int i = 0; i < n; i++) {
                const char *m = k ? a->rerank_models[i] : a->embedding_models[i];
                const int first = gw_config_embed_tier(c, kind, m);
                if (first != t)
                    return hr_fail(HEARTH_ERR_INVALID_ARG,
                                   "the %s model '%s' is declared by tiers '%s' and '%s'",
                                   gw_embed_kind_name(kind), m, c->tiers[first].name, a->name);
            }
        }
    }
    return HEARTH_OK;
}

hearth_err gw_config_finish(gw_config *c) {
    for (int i = 1; i < c->n_tiers; i++) {
        const char *n = c->tiers[i].name;
        if (!valid_name(n) || !strcmp(n, "local") || !strcmp(n, "auto"))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "tier name '%s': use letters, digits, '-', '_', '.'; not local or auto",
                           n);
        if (gw_config_tier(c, n) != i)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "two tiers are named '%s'", n);
    }
    const char *first_remote = c->n_tiers > 1 ? c->tiers[1].name : "";
    if (!c->escalate_to[0]) snprintf(c->escalate_to, sizeof c->escalate_to, "%s", first_remote);
    if (!c->reference_tier[0])
        snprintf(c->reference_tier, sizeof c->reference_tier, "%s", c->escalate_to);
    if (c->escalate_to[0] && gw_config_tier(c, c->escalate_to) <= 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "routing.escalate_to: no remote tier '%s'",
                       c->escalate_to);
    if (c->reference_tier[0] && gw_config_tier(c, c->reference_tier) < 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "routing.reference_tier: no tier '%s'",
                       c->reference_tier);
    hearth_err err = finish_keys(c);
    if (!err) err = finish_services(c);
    if (err) return err;
    for (int i = 0; i < c->n_rules; i++) {
        gw_rule *r = &c->rules[i];
        if (gw_config_tier(c, r->target) < 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "rule '%s': route '%s' is not a tier", r->name,
                           r->target);
        if (r->pattern[0] && !r->re) {
            int code;
            PCRE2_SIZE at;
            r->re = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
            if (!r->re) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(code, msg, sizeof msg);
                return hr_fail(HEARTH_ERR_INVALID_ARG, "rule '%s': pattern at %zu: %s", r->name,
                               (size_t)at, (const char *)msg);
            }
            (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
        }
    }
    return HEARTH_OK;
}
