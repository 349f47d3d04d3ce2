/*
 * gateway.h - the gateway layer: the cascade between the local model and
 * remote (cloud) tiers. This header is the folder's interface (prefix gw_);
 * the learned pre-router has its own (router.h, prefix rtr_).
 *
 *   buf.c      gw_buf: a growable byte buffer with a hard cap
 *   sha256.c   SHA-256 (FIPS 180-4), for audit hashes
 *   pii.c      the privacy guard's detectors (PCRE2 candidates + validators)
 *   redact.c   reversible redaction: placeholders, restore, streaming restore
 *   redact_json.c  the same over JSON (tool calls), string by string
 *   config.c   tiers and policy from a JSON file or the --cloud-* flags
 *   policy.c   the routing decision, a pure function of signals + config;
 *              confidence from token log-probabilities
 *   cloud.c    the remote tiers over libcurl: OpenAI chat completions and
 *              Anthropic Messages, SSE streaming, retries, circuit breaker
 *   cloud_embed.c  the bodies and answers of a tier's embeddings and rerank
 *              endpoints (OpenAI's, Cohere's / Jina's / vLLM's), read strictly
 *   embed.c    one remote embeddings or rerank request end to end
 *   ledger.c   one SQLite row per request, stats (p50/p95), the report
 *   audit.c    one SQLite row per escalation: tier, entity counts, hashes
 *
 * Threads: a gw_pii, a gw_config and a gw_ledger may be shared by any number
 * of threads (the ledger serializes its writes); a gw_redaction and a
 * gw_restorer belong to one request.
 */
#ifndef HEARTH_GATEWAY_H
#define HEARTH_GATEWAY_H

#include "hearth.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- buffers (buf.c) ------------------------------------------------------ */

/* A growable byte buffer, always NUL-terminated when data != NULL. Appends
 * past `cap_max` (0: 1 GiB) fail with HEARTH_ERR_NOMEM and change nothing. */
typedef struct gw_buf {
    char *data;
    size_t len, cap;
    size_t cap_max;
} gw_buf;

hearth_err gw_buf_put(gw_buf *b, const void *data, size_t n);
hearth_err gw_buf_puts(gw_buf *b, const char *s);
hearth_err gw_buf_printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the data over to the caller (malloc'd; "" when empty) and resets b. */
char *gw_buf_take(gw_buf *b, size_t *len);
void gw_buf_free(gw_buf *b);

/* ---- SHA-256 (sha256.c) ---------------------------------------------------- */

typedef struct gw_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t block[64];
    size_t n_block;
} gw_sha256;

void gw_sha256_init(gw_sha256 *s);
void gw_sha256_update(gw_sha256 *s, const void *data, size_t len);
void gw_sha256_final(gw_sha256 *s, uint8_t out[32]);
/* The digest of data[0..len) as 64 lowercase hex digits and a NUL. */
void gw_sha256_hex(const void *data, size_t len, char out[65]);
/* 64 hex digits (either case) into a digest; false when they are not. */
bool gw_sha256_parse(const char *hex, uint8_t out[32]);

/* ---- the privacy guard (pii.c) ---------------------------------------------- */

typedef enum gw_entity {
    GW_ENT_EMAIL = 0,
    GW_ENT_PHONE,
    GW_ENT_CREDIT_CARD,
    GW_ENT_IBAN,
    GW_ENT_SSN,
    GW_ENT_IP,
    GW_ENT_DOB,
    GW_N_ENT
} gw_entity;

/* The placeholder label: "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN",
 * "IP", "DOB". */
const char *gw_entity_name(gw_entity e);
/* Accepts a label or Presidio's name (EMAIL_ADDRESS, PHONE_NUMBER, IBAN_CODE,
 * US_SSN, IP_ADDRESS, DATE_OF_BIRTH), case-insensitively. */
bool gw_entity_parse(const char *name, gw_entity *out);

typedef enum gw_pii_action { GW_PII_REDACT = 0, GW_PII_BLOCK, GW_PII_ALLOW } gw_pii_action;
const char *gw_pii_action_name(gw_pii_action a);
bool gw_pii_action_parse(const char *name, gw_pii_action *out);

typedef enum gw_dob_mode {
    GW_DOB_CONTEXT = 0, /* dates within a few words after "born", "birth", "DOB" */
    GW_DOB_ALL          /* every date (day, month and year) */
} gw_dob_mode;

/* One detected entity: bytes [start, end) of the scanned text. */
typedef struct gw_span {
    gw_entity type;
    size_t start, end;
} gw_span;

typedef struct gw_pii gw_pii;

/* Compiles the detectors. On success *out is owned by the caller (free with
 * gw_pii_free) and may be used by several threads at once. */
hearth_err gw_pii_new(gw_dob_mode dob_mode, gw_pii **out);
void gw_pii_free(gw_pii *p);

/* Finds the entities in text[0..len) (UTF-8). *spans (malloc'd; NULL when
 * none) receives them sorted by start, never overlapping: where candidates
 * overlap, the more specific kind wins (e-mail, IBAN, card, SSN, IP, date,
 * phone). */
hearth_err gw_pii_scan(const gw_pii *p, const char *text, size_t len, gw_span **spans,
                       size_t *n_spans);

/* The validators, exposed for tests: digits of s[0..len) (other bytes are
 * skipped). */
bool gw_luhn_ok(const char *s, size_t len);
/* An IBAN without spaces: known country, its length, mod-97 == 1. */
bool gw_iban_ok(const char *s, size_t len);
/* area-group-serial: area not 000, 666 or 9xx; group not 00; serial not 0000. */
bool gw_ssn_ok(int area, int group, int serial);

/* ---- reversible redaction (redact.c) ---------------------------------------- */

/* Placeholders look like <EMAIL_1>: '<', a label, '_', a number, '>'. */
enum { GW_PLACEHOLDER_MAX = 32 };

/* The placeholder map of one request: the same value always gets the same
 * placeholder (numbered per type from 1), in every message of the request. */
typedef struct gw_redaction gw_redaction;

gw_redaction *gw_redaction_new(void); /* NULL when out of memory */
void gw_redaction_free(gw_redaction *r);

/* Copies text[0..len) into *out (malloc'd, NUL-terminated) with each span
 * whose action is GW_PII_REDACT replaced by its placeholder; spans must be
 * sorted and disjoint (as gw_pii_scan gives them). */
hearth_err gw_redact(gw_redaction *r, const char *text, size_t len, const gw_span *spans,
                     size_t n_spans, const gw_pii_action actions[GW_N_ENT], char **out,
                     size_t *out_len);
/* Occurrences replaced so far, per type, and distinct values mapped. */
int gw_redaction_count(const gw_redaction *r, gw_entity type);
size_t gw_redaction_size(const gw_redaction *r);
/* The i-th mapped value and its placeholder (i < gw_redaction_size). */
void gw_redaction_entry(const gw_redaction *r, size_t i, const char **value, size_t *value_len,
                        const char **placeholder);
/* "EMAIL:2,PHONE:1" (types with a count, in enum order; "" when none). */
void gw_redaction_summary(const gw_redaction *r, char *out, size_t cap);

/* Replaces every known placeholder in text[0..len) by its value, appending
 * to out. Unknown placeholders stay as they are. */
hearth_err gw_restore(const gw_redaction *r, const char *text, size_t len, gw_buf *out);

/* The guard over JSON (redact_json.c): fn is called on each string of json
 * (object keys and string values; an "arguments" member's string that holds
 * a JSON object or array is walked as JSON in turn) and appends the
 * string's new text to out, setting *changed when it differs. *out_json
 * (malloc'd) receives json as it was when nothing changed, else the value
 * printed back compact: always valid JSON. HEARTH_ERR_INVALID_ARG when json
 * is not JSON. */
typedef hearth_err (*gw_json_str_fn)(void *ctx, const char *s, size_t len, gw_buf *out,
                                     bool *changed);
hearth_err gw_json_map_strings(const char *json, gw_json_str_fn fn, void *ctx, char **out_json);
/* gw_restore inside each string of json (a tier's call arguments), so a
 * restored value is escaped as JSON wants; text that is not JSON is
 * restored as text. *out malloc'd. */
hearth_err gw_restore_json(const gw_redaction *r, const char *json, char **out);

/* Streaming restore: chunks in, restored text out. A chunk that ends inside
 * what may be a placeholder holds those bytes back until the next chunk (or
 * the flush) decides. */
typedef struct gw_restorer {
    const gw_redaction *r;
    char hold[GW_PLACEHOLDER_MAX];
    size_t n_hold;
} gw_restorer;

void gw_restorer_init(gw_restorer *s, const gw_redaction *r);
hearth_err gw_restorer_feed(gw_restorer *s, const char *chunk, size_t len, gw_buf *out);
hearth_err gw_restorer_flush(gw_restorer *s, gw_buf *out);

/* ---- the ledger and the audit log (ledger.c, audit.c) ---------------------- */

/* How a request reached its tier: chosen by the policy and kept local,
 * escalated to a remote tier by the policy (pre-routing or the confidence
 * check), or forced by the client (model name or x-hearth-tier header). */
typedef enum gw_route { GW_ROUTE_LOCAL = 0, GW_ROUTE_ESCALATED, GW_ROUTE_EXPLICIT } gw_route;
const char *gw_route_name(gw_route r); /* "local", "escalated", "explicit" */

/* One request, as the ledger records it. Strings are borrowed for the call;
 * NULL text fields are stored as NULL. Scores are NAN when not computed. */
typedef struct gw_ledger_row {
    int64_t time_ms; /* Unix time in ms; 0: now */
    gw_route route;
    const char *tier;   /* the tier that answered ("local", a remote tier's name) */
    const char *reason; /* why (the x-hearth-reason header) */
    const char *model;  /* what the client asked for (may be NULL) */
    int status;         /* HTTP status of the answer (200 ok) */
    int prompt_tokens, completion_tokens;
    int64_t latency_ms;
    int64_t cost_usd_micro;            /* at the answering tier's prices */
    int64_t cloud_only_cost_usd_micro; /* the same tokens at the reference cloud tier's prices */
    bool degraded;                     /* answered locally because every remote tier was down */
    double router_score;               /* the learned pre-router's score */
    double conf_mean, conf_min;        /* the local answer's confidence (see gw_confidence) */
    const char *api_key;               /* the client's API key's name (NULL: none) */
    const char *endpoint;              /* "embeddings", "rerank" (NULL: a chat or completion) */
    /* only when the deployment opts in (--ledger-prompts): */
    const char *prompt, *local_answer, *remote_answer;
    const char *remote_reasoning; /* a remote tier's reasoning (NULL: none) */
} gw_ledger_row;

/* A ledger row with every score NAN and the rest zero. */
gw_ledger_row gw_ledger_row_init(void);

typedef struct gw_ledger gw_ledger;

/* Opens (creating) the SQLite database at path (":memory:": private, for a
 * server without --ledger). Thread-safe; several processes may share a file
 * (WAL). Free with gw_ledger_close. */
hearth_err gw_ledger_open(const char *path, gw_ledger **out);
void gw_ledger_close(gw_ledger *l);
/* Appends one row; *id (may be NULL) receives its rowid. */
hearth_err gw_ledger_add(gw_ledger *l, const gw_ledger_row *row, int64_t *id);
/* Rows in the ledger (all time). */
hearth_err gw_ledger_count(gw_ledger *l, int64_t *n);

/* One request as a scan returns it: a ledger row's numbers, without its texts.
 * Scores are NAN when the row has none. */
typedef struct gw_ledger_point {
    int64_t id, time_ms;
    gw_route route;
    char tier[64];
    int status;
    bool degraded;
    int prompt_tokens, completion_tokens;
    int64_t latency_ms, cost_usd_micro, cloud_only_cost_usd_micro;
    double router_score, conf_mean, conf_min;
} gw_ledger_point;

/* Receives a scan's rows n at a time; a non-zero return stops the scan and is
 * returned by it. */
typedef hearth_err (*gw_ledger_visit)(void *user, const gw_ledger_point *rows, size_t n);

/* Calls visit with every row whose time is in [since_ms, until_ms), in the
 * order they were recorded (rowid), a chunk at a time. The ledger's lock is
 * taken per chunk and released before visit runs, so a long scan never
 * stalls the writers; rows added meanwhile may or may not be seen. */
hearth_err gw_ledger_scan(gw_ledger *l, int64_t since_ms, int64_t until_ms, gw_ledger_visit visit,
                          void *user);

/* One escalation as the audit log records it: never the text, only what
 * kinds of entities were replaced and a digest of what was sent. */
typedef struct gw_audit_row {
    int64_t time_ms; /* 0: now */
    const char *tier;
    const char *action;          /* "sent", "blocked" (kept local by policy), "refused" */
    const char *entities;        /* gw_redaction_summary: "EMAIL:2,PHONE:1" ("" none) */
    const char *sent_sha256;     /* hex digest of the request body sent ("" if none) */
    const char *received_sha256; /* hex digest of the answer text received ("" if none) */
} gw_audit_row;

hearth_err gw_audit_add(gw_ledger *l, const gw_audit_row *row);
hearth_err gw_audit_count(gw_ledger *l, int64_t *n);

enum { GW_STATS_TIERS = 16 };

typedef struct gw_tier_stats {
    char tier[64];
    int64_t requests, prompt_tokens, completion_tokens, cost_usd_micro;
    double p50_ms, p95_ms; /* nearest-rank percentiles of latency_ms */
} gw_tier_stats;

/* The rows of one API key, or of one endpoint. */
typedef struct gw_group_stats {
    char name[64]; /* the key's name; the endpoint's: "chat" (chats, completions),
                      "embeddings", "rerank" */
    int64_t requests, local, escalated, errors, prompt_tokens, completion_tokens, cost_usd_micro;
} gw_group_stats;

typedef struct gw_stats {
    int64_t since_ms;
    char key[64];      /* only this API key's rows ("": every row) */
    int64_t requests;  /* rows: local + escalated + errors */
    int64_t local;     /* answered (status < 400) by the local tier */
    int64_t escalated; /* answered (status < 400) by a remote tier */
    int64_t errors;    /* status >= 400 */
    int64_t degraded;  /* answered locally because the remote tiers were down */
    int64_t cost_usd_micro, cloud_only_cost_usd_micro;
    double savings_pct; /* 100 (1 - cost / cloud_only); 0 when cloud_only is 0 */
    int n_tiers;        /* the busiest GW_STATS_TIERS tiers, by requests */
    gw_tier_stats tiers[GW_STATS_TIERS];
    int n_keys; /* the busiest GW_STATS_TIERS API keys, by requests (rows with a key) */
    gw_group_stats keys[GW_STATS_TIERS];
    int n_endpoints; /* by requests; 0 when every row is a chat's */
    gw_group_stats endpoints[4];
} gw_stats;

/* API keys made at run time (POST /v1/hearth/keys) are kept in the ledger:
 * stored with the secret's SHA-256 (hex) and the settings' JSON, revoked by
 * name, and visited (the ones not revoked, oldest first) at start-up. The
 * visitor runs under the ledger's lock: it must not call the ledger. */
hearth_err gw_ledger_key_store(gw_ledger *l, const char *name, const char *sha256_hex,
                               const char *settings, int64_t created_ms);
hearth_err gw_ledger_key_revoke(gw_ledger *l, const char *name, int64_t revoked_ms);
typedef void (*gw_stored_key_visit)(void *user, const char *name, const char *sha256_hex,
                                    const char *settings, int64_t created_ms);
hearth_err gw_ledger_keys_load(gw_ledger *l, gw_stored_key_visit visit, void *user);
/* What the rows of the API key named key with time_ms >= since_ms cost. */
hearth_err gw_ledger_key_spend(gw_ledger *l, const char *key, int64_t since_ms, int64_t *usd_micro);
/* Aggregates the rows with time_ms >= since_ms (0: all). */
hearth_err gw_ledger_stats(gw_ledger *l, int64_t since_ms, gw_stats *out);
/* The same for one API key's rows (key NULL: every row). */
hearth_err gw_ledger_stats_key(gw_ledger *l, int64_t since_ms, const char *key, gw_stats *out);
/* {"requests":..,"local":..,"escalated":..,"cost_usd":..,"cloud_only_cost_usd":..,
 *  "savings_pct":..,"tiers":{"local":{"requests","p50_ms","p95_ms",..}}} (malloc'd) */
char *gw_stats_json(const gw_stats *s);
/* The human report `hearth ledger report` prints (malloc'd). */
char *gw_stats_text(const gw_stats *s);
/* --since: an ISO date/time ("2024-05-01", "2024-05-01T12:30:00Z", UTC) or a
 * duration back from now_ms ("90s", "30m", "24h", "7d"). */
hearth_err gw_parse_since(const char *s, int64_t now_ms, int64_t *since_ms);
/* A duration ("90s", "30m", "24h", "7d", "2w"; fractions allowed) in ms. */
hearth_err gw_parse_duration(const char *s, int64_t *ms);
/* Unix ms as "2024-05-01T12:30:00Z" (UTC) into buf; 21 bytes suffice. */
void gw_format_time(int64_t ms, char *buf, size_t size);
int64_t gw_now_ms(void); /* wall clock, Unix ms */
/* Days since 1970-01-01 of a proleptic Gregorian date (UTC, no time zone). */
int64_t gw_days_from_civil(int64_t y, int m, int d);

/* ---- tiers, policy and the configuration file (config.c) ------------------- */

enum { GW_MAX_TIERS = 16, GW_MAX_RULES = 32, GW_NAME_MAX = 64 };
/* Embedding and rerank models one tier may declare, and a name's size. */
enum { GW_TIER_MODELS = 16, GW_TIER_MODEL_MAX = 128 };

typedef enum gw_tier_kind { GW_TIER_LOCAL = 0, GW_TIER_OPENAI, GW_TIER_ANTHROPIC } gw_tier_kind;
const char *gw_tier_kind_name(gw_tier_kind k); /* "local", "openai", "anthropic" */

/* One tier. tiers[0] of a gw_config is always the local model ("local"). */
typedef struct gw_tier {
    char name[GW_NAME_MAX];
    gw_tier_kind kind;
    char url[512];               /* the endpoint POSTed to (gw_endpoint_url of base_url) */
    char model[128];             /* the remote model's name */
    char api_key_env[128];       /* the key is read from this environment variable ("": none) */
    int64_t price_in_usd_micro;  /* per million input (prompt) tokens */
    int64_t price_out_usd_micro; /* per million output (completion) tokens */
    int timeout_ms;              /* non-streaming: the whole call; streaming: the longest silence */
    int retries;                 /* attempts after the first on 429, 5xx and network errors */
    int backoff_ms;              /* the first retry waits up to this (full jitter), doubling */
    int backoff_max_ms;          /* cap of one wait (Retry-After included) */
    int breaker_failures;        /* consecutive failed calls that open the circuit */
    int breaker_cooldown_ms;     /* how long it stays open before one probe call */
    int max_tokens;              /* sent when the client gives none (Anthropic requires one) */
    int rpm, tpm; /* the tier's own limits (its provider's, or the deployment's share of them;
                     0: none): past one the tier counts as unavailable, like an open circuit */
    /* remote embeddings and rerank (embed.c): the model names the tier serves
     * on each endpoint (an OpenAI-compatible tier only) and the endpoints'
     * URLs (gw_service_url of base_url and embedding_path / rerank_path) */
    char embedding_models[GW_TIER_MODELS][GW_TIER_MODEL_MAX];
    int n_embedding_models;
    char rerank_models[GW_TIER_MODELS][GW_TIER_MODEL_MAX];
    int n_rerank_models;
    char embed_url[512], rerank_url[512]; /* "" when the tier declares no such model */
} gw_tier;

/* A remote tier with the defaults (timeout 60 s, 2 retries, backoff 500 ms
 * up to 8 s, breaker 5 failures / 30 s, max_tokens 1024). */
gw_tier gw_tier_default(void);

/* The endpoint for a base URL: an URL already ending in /chat/completions
 * (OpenAI) or /messages (Anthropic) is kept; one ending in /v1 gets that
 * suffix; anything else gets /v1 and the suffix. */
hearth_err gw_endpoint_url(gw_tier_kind kind, const char *base, char *out, size_t cap);

/* Confidence thresholds of the post-hoc check (see gw_confidence): escalate
 * when the local answer's mean token log-probability is below mean_logprob
 * or its lowest one is below min_logprob; -INFINITY switches a test off.
 * Answers shorter than min_tokens are never escalated on confidence. */
typedef struct gw_conf_thresholds {
    double mean_logprob;
    double min_logprob;
    int min_tokens;
} gw_conf_thresholds;

/* A pre-routing rule: when every condition given holds, the request goes to
 * `target` (a tier name, or "local"). Conditions: prompt length in bytes
 * (min_chars/max_chars, 0 = none), a PCRE2 pattern on the prompt text, a
 * task type (as gw_task_guess or the x-hearth-task header says). A rule that
 * routes local may carry its own confidence thresholds. */
typedef struct gw_rule {
    char name[GW_NAME_MAX];
    size_t min_chars, max_chars;
    char pattern[256];
    void *re; /* pcre2_code, compiled by gw_config_finish; owned by the config */
    char task[32];
    char target[GW_NAME_MAX];
    bool has_conf;
    gw_conf_thresholds conf;
} gw_rule;

typedef struct gw_config {
    gw_tier tiers[GW_MAX_TIERS];
    int n_tiers; /* >= 1: tiers[0] is the local tier */
    /* routing */
    char escalate_to[GW_NAME_MAX];    /* the remote tier auto requests escalate to */
    char reference_tier[GW_NAME_MAX]; /* the tier whose prices give cloud_only_cost */
    gw_rule rules[GW_MAX_RULES];
    int n_rules;
    double router_threshold; /* escalate when the router's score >= this; NAN: the router file's */
    bool confidence_check;   /* generate locally first and escalate on low confidence */
    gw_conf_thresholds conf;
    /* privacy */
    gw_pii_action pii[GW_N_ENT];
    bool block_refuses; /* a "block" entity: refuse (403) rather than answer locally */
    gw_dob_mode dob_mode;
    bool air_gapped;     /* never contact a remote tier */
    bool ledger_prompts; /* store prompt and answer texts in the ledger */
    /* the response cache ("cache"; cache.c) */
    bool cache;            /* keep remote answers for identical requests */
    int64_t cache_ttl_ms;  /* how long an answer is served [1 h] */
    int cache_max_entries; /* the newest kept [10000] */
    bool cache_shared;     /* one cache for every API key (else one per key) */
    bool cache_sampled;    /* also requests without temperature 0 */
    /* API keys ("keys"; keys.c enforces them): owned, freed by gw_config_fini */
    struct gw_key_spec *keys;
    int n_keys;
} gw_config;

/* The configuration with only the local tier: everything redacted, dates of
 * birth by context, blocked entities answered locally, confidence check on
 * (mean log-prob < -1.0 or min < -6.0, at least 4 tokens). */
void gw_config_init(gw_config *c);
/* Releases the compiled patterns. */
void gw_config_fini(gw_config *c);
/* Reads a JSON configuration file (format in docs/gateway.md) over c (which
 * gw_config_init prepared). Errors name the file and the field. */
hearth_err gw_config_load(gw_config *c, const char *path);
/* Parses the same JSON from memory; `what` names it in errors. */
hearth_err gw_config_parse(gw_config *c, const char *json, size_t len, const char *what);
/* --cloud-url URL --cloud-model NAME [--cloud-key-env VAR] [--cloud-price IN,OUT]:
 * adds an OpenAI-compatible tier named "cloud" (price: dollars per million
 * input and output tokens, e.g. "0.15,0.60"; key_env and price may be NULL). */
hearth_err gw_config_add_cloud(gw_config *c, const char *url, const char *model,
                               const char *key_env, const char *price);
/* Checks the whole (names unique, targets exist, patterns compile) and fills
 * the defaults that depend on the tiers (escalate_to, reference_tier). Call
 * once after loading and adding, before use. */
hearth_err gw_config_finish(gw_config *c);
/* The index of the tier named name, or -1. */
int gw_config_tier(const gw_config *c, const char *name);
/* "0.15" or "2.5" (dollars, at most 6 decimals) -> micro-dollars. */
hearth_err gw_parse_usd(const char *s, int64_t *usd_micro);
/* What tokens cost at a tier's prices, micro-dollars, rounded half up. */
int64_t gw_cost_usd_micro(const gw_tier *t, int64_t prompt_tokens, int64_t completion_tokens);

/* ---- rate limits (bucket.c) --------------------------------------------------- */

/* A token bucket of per_minute units (0: no limit) refilled continuously;
 * callers hold their own lock. */
typedef struct gw_bucket {
    double level; /* at at_ms; may be below zero */
    int64_t at_ms;
    int per_minute;
} gw_bucket;

void gw_bucket_init(gw_bucket *b, int per_minute, int64_t now_ms); /* full */
/* Refilled up to now_ms; the level. */
double gw_bucket_level(gw_bucket *b, int64_t now_ms);
/* Seconds until the level reaches need (0: it has), and until it is full. */
double gw_bucket_wait_s(const gw_bucket *b, double need);
double gw_bucket_full_s(const gw_bucket *b);

/* ---- API keys (keys.c) ---------------------------------------------------------- */

/* A key of the configuration's "keys" (docs/gateway.md, "API keys"), as
 * LiteLLM's virtual keys: who is calling, what they may use, how fast, and
 * how much they may spend on remote tiers. Only the secret's SHA-256 is kept. */
typedef enum gw_budget_period {
    GW_BUDGET_TOTAL, /* never resets */
    GW_BUDGET_DAY,   /* UTC calendar day */
    GW_BUDGET_WEEK,  /* from Monday 00:00 UTC */
    GW_BUDGET_MONTH  /* UTC calendar month */
} gw_budget_period;

enum { GW_KEY_MODELS = 16, GW_KEY_MODEL_MAX = 128 };

typedef struct gw_key_spec {
    char name[GW_NAME_MAX];
    uint8_t sha256[32];       /* of the secret the client sends */
    bool admin;               /* may read the ledger's totals, every key, load models */
    int rpm, tpm;             /* requests / tokens per minute (0: no limit) */
    int max_parallel;         /* requests in flight at once (0: no limit) */
    int64_t budget_usd_micro; /* < 0: no budget */
    gw_budget_period budget_period;
    bool budget_refuses;                   /* spent: refuse (429) rather than answer locally */
    bool tiers_given;                      /* "tiers" restricts the remote tiers ... */
    char tiers[GW_MAX_TIERS][GW_NAME_MAX]; /* ... to these (checked by gw_config_finish) */
    int n_tiers;
    bool tier_ok[GW_MAX_TIERS]; /* per tier index, from tiers (gw_config_finish) */
    char models[GW_KEY_MODELS][GW_KEY_MODEL_MAX]; /* the local models it may name (none: all) */
    int n_models;
    int64_t expires_ms; /* Unix ms (0: never) */
} gw_key_spec;

typedef struct gw_keys gw_keys; /* every key's counters; thread-safe */
typedef struct gw_key gw_key;   /* one key; lives as long as its gw_keys */

/* The keys of c and those made at run time that the ledger keeps (ledger
 * may be NULL: none kept), their spending this period summed from the
 * ledger at now_ms. c must outlive the set (keys made later are checked
 * against its tiers). */
hearth_err gw_keys_new(const gw_config *c, gw_ledger *ledger, int64_t now_ms, gw_keys **out);
void gw_keys_free(gw_keys *ks);
/* Keys in use (not revoked): how many, and a copy of the list (malloc'd,
 * the caller frees it; the keys stay the set's). */
int gw_keys_count(gw_keys *ks);
gw_key **gw_keys_snapshot(gw_keys *ks, int *n);
/* Keys the ledger kept that no longer fit the configuration (a tier gone):
 * they are left out; how many, and why the first one was. */
int gw_keys_skipped(const gw_keys *ks, const char **why);

/* Keys made at run time (POST /v1/hearth/keys), as LiteLLM's /key/generate:
 * settings are a key's JSON object as in the configuration, without the
 * secret, which is made here ("hk-" and 32 base64url characters from the
 * system's random source) and only its digest kept, in the ledger. *status
 * says what failed: 400 (the settings), 409 (the name is taken), 500. */
enum { GW_KEY_SECRET_LEN = 35 };
hearth_err gw_key_secret_new(char out[GW_KEY_SECRET_LEN + 1]);
hearth_err gw_keys_create(gw_keys *ks, const char *json, size_t len, int64_t now_ms,
                          char secret[GW_KEY_SECRET_LEN + 1], gw_key **out, int *status);
/* Revokes a key made at run time (in the ledger too); requests in flight
 * finish. *status: 404 (no such key), 409 (the configuration's: edit the
 * file), 500. */
hearth_err gw_keys_revoke(gw_keys *ks, const char *name, int64_t now_ms, int *status);
/* The key in use named name, or NULL. */
gw_key *gw_keys_by_name(gw_keys *ks, const char *name);
/* Per key, in Prometheus' text format appended to out: requests admitted
 * and refused, in flight, dollars spent this period (nothing without keys). */
void gw_keys_metrics(gw_keys *ks, int64_t now_ms, gw_buf *out);
/* Every key in use as gw_key_info_json shows it, a JSON array (malloc'd). */
char *gw_keys_list_json(gw_keys *ks, int64_t now_ms);
/* One key's settings (the configuration's fields but the secret) checked
 * against c; what names the text in errors. */
hearth_err gw_key_spec_parse(const gw_config *c, const char *json, size_t len, const char *what,
                             gw_key_spec *out);
/* The key whose secret is secret[0..len), or NULL. Compares digests, every
 * key's, so the time taken says nothing about which one nearly matched. */
gw_key *gw_keys_find(gw_keys *ks, const char *secret, size_t len);
const gw_key_spec *gw_key_spec_of(const gw_key *k);

/* Whether a request may start, and what the rate-limit headers say. */
typedef struct gw_key_verdict {
    int status;       /* 0: admitted; 401 (expired) or 429 (a limit, or the budget) */
    const char *code; /* OpenAI's error code: "key_expired", "rate_limit_exceeded",
                         "insufficient_quota" */
    char message[192];
    int retry_after_s; /* with 429: when one more request would be admitted */
    /* OpenAI's x-ratelimit-* headers (limit 0: that limit is off) */
    int limit_requests, remaining_requests;
    int limit_tokens, remaining_tokens;
    double reset_requests_s, reset_tokens_s; /* until the bucket is full again */
} gw_key_verdict;

/* Admits a request at now_ms or says why not. A metered request (one that
 * runs a model) counts against rpm, tpm and max_parallel and must be ended
 * with gw_key_done; others are only checked for expiry. */
bool gw_key_admit(gw_key *k, int64_t now_ms, bool metered, gw_key_verdict *v);
/* A metered request ended: its tokens count against tpm. */
void gw_key_done(gw_key *k, int64_t now_ms, int tokens);
/* Money spent by the key (a ledger row's cost). */
void gw_key_spend(gw_key *k, int64_t now_ms, int64_t usd_micro);
/* Whether the key may use the local model named id. */
bool gw_key_allows_model(const gw_key *k, const char *id);
/* What the key may use now, for the policy (gw_signals). */
void gw_key_grant(gw_key *k, int64_t now_ms, bool tier_denied[GW_MAX_TIERS], bool *budget_spent);
/* The key as GET /v1/hearth/key shows it: limits, what is left of them,
 * budget, spending, expiry (malloc'd JSON object). */
char *gw_key_info_json(gw_key *k, int64_t now_ms);
/* Start and end (Unix ms) of the budget period holding now_ms. */
void gw_budget_bounds(gw_budget_period p, int64_t now_ms, int64_t *start_ms, int64_t *end_ms);

/* ---- remote tiers (cloud.c) -------------------------------------------------- */

/* An Anthropic thinking block as the tier sent it (docs/gateway.md,
 * "Reasoning"): Anthropic signs the text, and a tool loop with thinking must
 * send the block back byte for byte, so the text keeps the tier's
 * placeholders (never restored) and the signature, or a redacted block's
 * data, is opaque (never scanned, restored or changed). Strings malloc'd and
 * owned by whoever holds the block, except in a gw_msg_thinking (borrowed). */
typedef struct gw_thinking_block {
    bool redacted;  /* redacted_thinking: only `opaque` (its data) */
    char *thinking; /* a thinking block's text (NULL when redacted) */
    char *opaque;   /* a thinking block's signature, a redacted block's data */
} gw_thinking_block;

/* Thinking blocks one answer or one replayed assistant message may hold:
 * more fail the answer (a tier's) or the request (a client's). */
enum { GW_THINKING_MAX = 64 };

/* thinking.c: the strings and the array. */
void gw_thinking_free(gw_thinking_block *b, int n);
/* Appends a copy of b to (*arr)[*n] (realloc'd); NOMEM. */
hearth_err gw_thinking_push(gw_thinking_block **arr, int *n, const gw_thinking_block *b);
/* The block as Anthropic's content block and LiteLLM's thinking_blocks
 * entry write it: {"type":"thinking","thinking","signature"} or
 * {"type":"redacted_thinking","data"}; NULL when out of memory. */
struct cJSON *gw_thinking_json(const gw_thinking_block *b);
/* One such object into *out (strings malloc'd): false, with why (a field
 * and what it must be), when it is not one. */
bool gw_thinking_parse(const struct cJSON *o, gw_thinking_block *out, char *why, size_t cap);

/* Receives one thinking block of an answer once it is complete, in order
 * (borrowed for the callback). Return false to cancel. */
typedef bool (*gw_thinking_cb)(const gw_thinking_block *b, void *user);

typedef struct gw_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content; /* NUL-terminated UTF-8 */
} gw_message;

/* The thinking blocks an assistant message replays (the client sent back
 * what the tier gave it), borrowed; n 0: none. */
typedef struct gw_msg_thinking {
    const gw_thinking_block *blocks;
    int n;
} gw_msg_thinking;

/* Tool calling (OpenAI's function calling) on a chat: JSON texts as the
 * client sent them (cloud_tools.c passes them through or translates them). */
typedef struct gw_msg_tools {
    const char *tool_calls;   /* assistant: OpenAI's tool_calls array as JSON (NULL: none) */
    const char *tool_call_id; /* role "tool": the call answered (NULL: none) */
} gw_msg_tools;

typedef struct gw_chat_tools {
    const char *tools;        /* OpenAI's "tools" array as JSON (NULL: none) */
    const char *tool_choice;  /* "none", "auto", "required" or a function's name (NULL: not sent) */
    bool named_choice;        /* tool_choice names a function */
    int parallel_tool_calls;  /* -1: not sent; 0 or 1 */
    const gw_msg_tools *msgs; /* one per message of the gw_chat, or NULL */
} gw_chat_tools;

/* One tool call of a remote tier's answer, carried as data (never as text
 * to parse): the tier's id ("" when it gave none), the function's name and
 * its arguments as JSON text as the tier sent them ("{}" when it sent
 * none; OpenAI's arguments may be malformed, and are passed on as they
 * are). Strings malloc'd, owned by whoever holds the call. */
typedef struct gw_tool_call {
    char *id, *name, *arguments;
} gw_tool_call;

void gw_tool_calls_free(gw_tool_call *calls, int n); /* the strings and the array */

/* Receives one tool call of an answer once it is complete, in order (the
 * call is borrowed for the callback). Return false to cancel. */
typedef bool (*gw_call_cb)(const gw_tool_call *call, void *user);

/* Receives answer text as it arrives (the whole text once when not
 * streaming). Return false to cancel the call. */
typedef bool (*gw_text_cb)(const char *text, size_t len, void *user);

/* A chat request in the gateway's terms; the client builds the tier's body. */
typedef struct gw_chat {
    const gw_message *messages;
    int n_messages;
    int max_tokens;          /* <= 0: the tier's default (Anthropic), absent (OpenAI) */
    double temperature;      /* NAN: not sent */
    double top_p;            /* NAN: not sent */
    const char *const *stop; /* stop strings; may be NULL */
    int n_stop;
    bool json_object;            /* JSON mode: OpenAI's response_format json_object (Anthropic
                                    has none: not sent there) */
    const char *response_format; /* a json_schema response_format object as JSON text: sent
                                    to OpenAI-compatible tiers as it is (NULL: none) */
    bool stream;                 /* ask for SSE and hand text over as it comes */
    const gw_chat_tools *tools;  /* NULL: none; its msgs[] is one per message */
    /* NULL, or one per message: its replayed thinking blocks (an Anthropic
     * tier gets them first in the message's turn; others never) */
    const gw_msg_thinking *thinking_blocks;
    gw_call_cb on_call; /* the tier's tool calls as they complete, with gw_cloud_chat's user
                           (NULL: in the result only) */
    /* reasoning models (docs/gateway.md, "Reasoning"): the client's switches,
     * translated per tier kind by cloud.c */
    const char *reasoning_effort; /* OpenAI's reasoning_effort as the client sent it (NULL: not
                                     sent); to Anthropic, thinking unless "none" */
    bool thinking;                /* the client switched thinking on (Anthropic's thinking) */
    int thinking_budget;          /* its tokens (0: not given: the effort's, else 2048) */
    /* the tier's reasoning as it arrives (the whole of it once when not
     * streaming), with gw_cloud_chat's user; never mixed into the text
     * (NULL: in the result only). Return false to cancel. */
    gw_text_cb on_reasoning;
    /* an Anthropic tier's thinking blocks as each completes (NULL: in the
     * result only); their text also went to on_reasoning */
    gw_thinking_cb on_thinking;
    const atomic_bool *cancel; /* when set (may be NULL): stop as soon as possible */
} gw_chat;

typedef enum gw_cloud_status {
    GW_CLOUD_OK = 0,
    GW_CLOUD_BREAKER_OPEN, /* the circuit is open: not called */
    GW_CLOUD_UNREACHABLE,  /* network errors, timeouts, 429 or 5xx on every attempt */
    GW_CLOUD_REJECTED,     /* another 4xx (bad request, key): not retried */
    GW_CLOUD_BAD_RESPONSE, /* 2xx with a body that is not the expected JSON/SSE */
    GW_CLOUD_BROKEN,       /* the stream broke after text was handed over */
    GW_CLOUD_CANCELLED,    /* the callback asked to stop */
    GW_CLOUD_RATE_LIMITED  /* the tier's own rpm / tpm is used up: not called */
} gw_cloud_status;
const char *gw_cloud_status_name(gw_cloud_status s);

typedef struct gw_cloud_result {
    gw_cloud_status status;
    int http_status; /* of the last attempt (0: no HTTP answer) */
    int attempts;
    char *text; /* the whole answer's text as the tier sent it (malloc'd, NUL-terminated) */
    size_t text_len;
    char *reasoning; /* the tier's reasoning as it sent it (malloc'd, NUL-terminated; "": none) */
    size_t reasoning_len;
    gw_tool_call *calls; /* the answer's tool calls (malloc'd), as the tier sent them */
    int n_calls;
    gw_thinking_block *thinking; /* an Anthropic tier's thinking blocks (malloc'd) */
    int n_thinking;
    int prompt_tokens, completion_tokens; /* completion: the reasoning's tokens included */
    int reasoning_tokens;                 /* of completion_tokens: as the tier reported them, else
                                             gw_reasoning_tokens_estimate */
    bool usage_estimated;                 /* the tier reported no usage: bytes / 4 */
    char finish_reason[16];               /* "stop" or "length" */
    char sent_sha256[65];                 /* digest of the request body sent */
    char error[256];                      /* what went wrong, for logs and error bodies */
    bool timed_out;                       /* UNREACHABLE: the last attempt ran out of time */
    int64_t latency_ms;
} gw_cloud_result;

void gw_cloud_result_free(gw_cloud_result *r);
/* Tokens of a reasoning of len bytes that a tier did not count: bytes / 4
 * (rounded up, as the usage when a tier reports none), at most completion. */
int gw_reasoning_tokens_estimate(size_t len, int completion);

/* A remote tier at run time: its configuration and its circuit breaker
 * (closed -> open after breaker_failures consecutive failed calls -> after
 * breaker_cooldown_ms one probe call -> closed on success, open again on
 * failure). Thread-safe. */
typedef struct gw_remote gw_remote;

hearth_err gw_remote_new(const gw_tier *tier, gw_remote **out);
void gw_remote_free(gw_remote *r);
const gw_tier *gw_remote_tier(const gw_remote *r);
/* False while the circuit is open (before its cooldown has passed) or the
 * tier's own rpm / tpm is used up (gw_remote_limited). */
bool gw_remote_available(gw_remote *r);
bool gw_remote_limited(gw_remote *r);

/* Calls the tier: builds the body, POSTs it, retries 429/5xx/network
 * failures that happened before any text was handed over (exponential
 * backoff with full jitter, Retry-After honoured up to backoff_max_ms),
 * parses JSON or SSE. Returns HEARTH_OK whenever it produced a result;
 * out->status says whether the call succeeded. Free out with
 * gw_cloud_result_free. */
hearth_err gw_cloud_chat(gw_remote *r, const gw_chat *req, gw_text_cb cb, void *user,
                         gw_cloud_result *out);

/* Reads a 2xx answer's whole body for gw_cloud_post: false (why filled)
 * makes it a bad response (not retried; it counts against the circuit);
 * *tokens: what the call cost, for the tier's tpm and out->prompt_tokens. */
typedef bool (*gw_body_fn)(void *ctx, const char *body, size_t len, int *tokens, char *why,
                           size_t cap);

/* POSTs body (JSON) to url, another endpoint of the tier, through the same
 * transport as gw_cloud_chat (its key, timeout, retries with backoff and
 * Retry-After, circuit breaker, rpm and tpm; never streaming) and hands a
 * 2xx answer to reader (called at most once). out: status, attempts,
 * error, sent_sha256, prompt_tokens (reader's), latency; no text. */
hearth_err gw_cloud_post(gw_remote *r, const char *url, const char *body, gw_body_fn reader,
                         void *ctx, gw_cloud_result *out);

/* ---- the response cache (cache.c) ------------------------------------------- */

/* A kept answer as the tier sent it (placeholders unrestored). */
typedef struct gw_cache_entry {
    char *text;
    size_t text_len;
    char *reasoning; /* "": none */
    size_t reasoning_len;
    gw_tool_call *calls;
    int n_calls;
    int prompt_tokens, completion_tokens, reasoning_tokens;
    char finish_reason[16];
} gw_cache_entry;

/* The key of q (a redacted chat) for tier t; ns: the API key's name ("" or
 * NULL: shared). */
void gw_cache_key(const gw_tier *t, const gw_chat *q, const char *ns, uint8_t out[32]);
/* The answer kept under key, unexpired at now_ms; false: none. */
bool gw_cache_get(gw_ledger *l, const uint8_t key[32], int64_t now_ms, gw_cache_entry *out);
void gw_cache_entry_free(gw_cache_entry *e);
/* Keeps r under key for ttl_ms; drops the expired and the oldest past
 * max_entries. */
hearth_err gw_cache_put(gw_ledger *l, const uint8_t key[32], int64_t now_ms, int64_t ttl_ms,
                        int max_entries, const gw_cloud_result *r);

/* ---- the routing policy (policy.c) ------------------------------------------ */

/* What the policy looks at for one request. */
typedef struct gw_signals {
    const char *model;       /* the request's "model" (NULL, "" or "auto": the policy decides) */
    const char *tier_header; /* x-hearth-tier (NULL: none) */
    const char *task;        /* x-hearth-task, or NULL: gw_task_guess(text) */
    const char *text;        /* the prompt: every message's content, joined */
    size_t text_len;
    double router_score;          /* the learned pre-router's score; NAN: none */
    double router_threshold;      /* the router file's threshold (used when the config has none) */
    const char *blocked;          /* entity types found whose action is block ("SSN"); NULL: none */
    bool available[GW_MAX_TIERS]; /* per tier: not behind an open circuit, not rate-limited */
    bool limited[GW_MAX_TIERS];   /* per tier: its own rpm / tpm is used up */
    /* the client's API key (gw_key_grant; key NULL: no key, nothing denied) */
    const char *key;
    bool key_denied[GW_MAX_TIERS]; /* remote tiers the key may not use */
    bool key_budget_spent;         /* the key's budget is spent: no remote tier */
} gw_signals;

typedef struct gw_decision {
    gw_route route;
    int tier;              /* index into the config's tiers (0: local) */
    bool refuse;           /* answer with an error instead */
    int refuse_status;     /* 400 (unknown tier), 403 (privacy, air gap, key), 429 (budget) */
    bool degraded;         /* a remote tier was wanted but is down: local */
    bool pii_blocked;      /* a remote tier was wanted, but a blocked entity kept it local */
    bool check_confidence; /* answer locally first; escalate on low confidence */
    int escalate_tier;     /* where a low-confidence answer goes (-1: nowhere) */
    gw_conf_thresholds conf;
    char reason[192]; /* the x-hearth-reason header */
} gw_decision;

/* The routing decision as a pure function of the configuration and the
 * signals, in this order: (1) explicit: x-hearth-tier or a model naming a
 * tier; (2) rules, the first that matches; (3) the learned router's score
 * against its threshold; (4) local with the confidence check. A remote
 * choice then meets the client's key (a tier it may not use, or a spent
 * budget, keeps the request local; asked for by name, 403 / 429), the
 * privacy guard (a blocked entity keeps the request local, or refuses it)
 * and the circuit breakers (a tier that is down makes the answer local and
 * degraded). Air-gapped or without remote tiers, everything is local. */
void gw_policy_decide(const gw_config *c, const gw_signals *s, gw_decision *d);

/* A coarse task type for rules: "code" (fences, code keywords), "math"
 * (equations, "solve", "calculate"), "translate", "summarize", else "chat". */
const char *gw_task_guess(const char *text, size_t len);

/* The confidence of a locally generated answer from its tokens' log-
 * probabilities (the sampled token's log-softmax): the mean (log of the
 * geometric-mean probability, i.e. minus the log-perplexity) and the
 * minimum (the least certain token, where a small model guesses a fact). */
typedef struct gw_confidence {
    int n_tokens;
    double mean_logprob, min_logprob; /* 0 when n_tokens is 0 */
} gw_confidence;

gw_confidence gw_confidence_of(const float *logprobs, int n);
/* Whether the answer should be escalated under t; *why says which test. */
bool gw_should_escalate(const gw_confidence *c, const gw_conf_thresholds *t, char *why, size_t cap);

/* ---- the cascade (cascade.c) ------------------------------------------------- */

/* What the local tier produced for one request. */
typedef struct gw_local_result {
    bool ok;
    int status; /* on failure: the HTTP status to answer with (400, 503, 500, ...) */
    char error[256];
    char *text; /* malloc'd (the gateway frees it) */
    size_t text_len;
    int prompt_tokens, completion_tokens;
    float *logprobs; /* malloc'd: the sampled token's log-probability, per token */
    int n_logprobs;
    char finish_reason[16];
} gw_local_result;

/* Generates req's answer with the local model, handing text to cb as it
 * comes when cb is not NULL (stop when it returns false); fills *out. */
typedef void (*gw_local_fn)(void *ctx, const gw_chat *req, gw_text_cb cb, void *user,
                            gw_local_result *out);

/* The learned pre-router: the score of a prompt (higher: needs the strong
 * tier). False when it cannot score. */
typedef bool (*gw_score_fn)(void *ctx, const char *text, size_t len, double *score);

/* The answer to one request, as the server turns it into HTTP. */
typedef struct gw_response {
    int status; /* 200, or the error's HTTP status */
    char error[256];
    gw_route route;
    char tier[GW_NAME_MAX]; /* x-hearth-route */
    char reason[256];       /* x-hearth-reason */
    bool degraded;
    char *text; /* the whole answer, placeholders restored (malloc'd) */
    size_t text_len;
    char *reasoning; /* a remote tier's reasoning, placeholders restored (malloc'd; "": none) */
    size_t reasoning_len;
    gw_tool_call *calls; /* a remote answer's tool calls, placeholders restored (malloc'd) */
    int n_calls;
    gw_thinking_block *thinking; /* an Anthropic tier's thinking blocks as it sent them
                                    (placeholders kept: gw_thinking_block; malloc'd) */
    int n_thinking;
    int prompt_tokens, completion_tokens;
    int reasoning_tokens; /* of completion_tokens, a remote answer's reasoning (a local one's
                             thought tokens are counted by whoever reads its events) */
    char finish_reason[16];
    bool streamed; /* text went to the request's cb (a later error cannot change the status) */
    bool cached;   /* a remote tier's earlier answer to the same request, from the cache */
    int64_t ledger_id;
} gw_response;

void gw_response_free(gw_response *r);

typedef struct gw_request {
    const gw_chat *chat; /* as the client sent it */
    const char *model, *tier_header, *task_header;
    gw_key *key; /* the client's API key (NULL: none): its limits, ledger column, spending */
    bool no_cache, no_store; /* Cache-Control: do not answer from the cache / do not keep */
    /* Streaming (cb NULL: the whole answer comes back in the response):
     * text to cb, a remote tier's tool calls to on_call and its reasoning to
     * on_reasoning (restored; NULL: in the response only). */
    gw_text_cb cb;
    gw_call_cb on_call;
    gw_text_cb on_reasoning;
    gw_thinking_cb on_thinking; /* an Anthropic tier's thinking blocks, as it sent them */
    void *user;
    /* Called once before the first text goes to cb (or before gw_handle
     * returns a success without text), with route, tier, reason and degraded
     * filled: the moment to send the response headers. May be NULL. */
    void (*on_start)(const gw_response *head, void *user);
} gw_request;

typedef struct gw_gateway gw_gateway;

/* Builds the gateway: takes over *c (its compiled patterns; c is left
 * empty), compiles the privacy guard, opens a gw_remote per remote tier.
 * The ledger is borrowed (may be NULL) and must outlive the gateway. */
hearth_err gw_gateway_new(gw_config *c, gw_ledger *ledger, gw_gateway **out);
void gw_gateway_free(gw_gateway *g);
const gw_config *gw_gateway_config(const gw_gateway *g);
gw_remote *gw_gateway_remote(gw_gateway *g, int tier); /* NULL for the local tier */
gw_keys *gw_gateway_keys(gw_gateway *g);               /* the configuration's API keys */
/* Uses fn for auto requests; threshold is the router's own (NAN: none). */
void gw_gateway_set_router(gw_gateway *g, gw_score_fn fn, void *ctx, double threshold);

/* One request in flight, for callers that run some paths themselves (the
 * server answers direct local requests on its own path, with logprobs and
 * echo): gw_call_new scans and decides; gw_call_run answers; gw_call_finish
 * writes the ledger row (once; the latency runs from gw_call_new). The
 * request r must outlive the call. */
typedef struct gw_call gw_call;

hearth_err gw_call_new(gw_gateway *g, const gw_request *r, gw_call **out);
void gw_call_free(gw_call *j);
const gw_decision *gw_call_decision(const gw_call *j);
/* True when the answer is the local model's alone (no remote tier, no
 * confidence check): the caller may generate it itself and report the
 * outcome to gw_call_finish. */
bool gw_call_direct_local(const gw_call *j);
/* The response's head as decided: route, tier, reason, degraded (and the
 * status and error of a refusal). */
void gw_call_head(const gw_call *j, gw_response *out);
void gw_call_run(gw_call *j, gw_local_fn local, void *local_ctx, gw_response *out);
/* The ledger row from resp (status, tier, route, reason, tokens, degraded);
 * returns its id (0 without a ledger). Only the first call writes. */
int64_t gw_call_finish(gw_call *j, const gw_response *resp);

/* Answers one request: privacy scan, policy, then the tiers (remote with
 * redaction and restore; failover to the other remote tiers and then to the
 * local model, marked degraded; local with the confidence check and
 * escalation), the audit rows and exactly one ledger row. HEARTH_OK whenever
 * *out holds an answer or an error to send; free it with gw_response_free. */
hearth_err gw_handle(gw_gateway *g, const gw_request *r, gw_local_fn local, void *local_ctx,
                     gw_response *out);
gw_pii *gw_gateway_pii(gw_gateway *g);       /* the privacy guard's detectors */
gw_ledger *gw_gateway_ledger(gw_gateway *g); /* NULL: none */

/* ---- remote embeddings and rerank (cloud_embed.c, embed.c) ------------------ */

/* A tier may serve embeddings (OpenAI's POST /embeddings) and reranking
 * (Cohere's, Jina's and vLLM's POST /rerank) for the model names it
 * declares (docs/gateway.md, "Remote embeddings and rerank"). */
typedef enum gw_embed_kind {
    GW_EMBED_VECTORS = 0, /* /v1/embeddings, ollama's /api/embed and /api/embeddings */
    GW_EMBED_RERANK       /* /v1/rerank and its aliases */
} gw_embed_kind;
const char *gw_embed_kind_name(gw_embed_kind k); /* "embeddings", "rerank" */

/* The remote tier that declares model for kind, or -1. */
int gw_config_embed_tier(const gw_config *c, gw_embed_kind kind, const char *model);

/* The URL of a tier's endpoint: path when given (an http:// or https:// URL
 * as it is, or "/..." on base's scheme and host: Cohere's "/v2/rerank"),
 * else base, less a trailing "/chat/completions", with suffix ("/embeddings",
 * "/rerank") after "/v1" unless base ends in a version ("/v1", "/v2"). */
hearth_err gw_service_url(const char *base, const char *path, const char *suffix, char *out,
                          size_t cap);

/* The bodies a tier receives (malloc'd; NULL when out of memory):
 * {"model", "input": [texts], "dimensions"?} and {"model", "query",
 * "documents": [docs], "top_n"?} (dimensions, top_n: 0 not sent). */
char *gw_embed_body(const char *model, const char *const *texts, int n, int dimensions);
char *gw_rerank_body(const char *model, const char *query, const char *const *docs, int n,
                     int top_n);

/* A tier's answer, checked strictly (gw_embed_read). */
typedef struct gw_embed_answer {
    /* what was asked: texts or documents sent, the dimensions asked for (0:
     * any), at most top_n results (0: n) */
    int n, want_dim, top_n;
    float *vectors; /* embeddings: [n][dim] in the inputs' order (malloc'd) */
    int dim;
    int *order;    /* rerank: the results' document indices, best first (malloc'd) */
    float *scores; /* rerank: their relevance scores, in that order (malloc'd) */
    int n_results;
    int tokens;               /* as the tier counted them; -1: it did not say */
    char received_sha256[65]; /* of the answer's body */
} gw_embed_answer;

/* Reads an embeddings answer ({"data": [{"embedding": [numbers], "index"?}],
 * "usage"?}: n vectors of one size, want_dim when asked, finite numbers,
 * indices each once) or a rerank answer ({"results" or "data": [{"index",
 * "relevance_score"}]}: 1..min(n, top_n) results, indices in range and
 * each once, finite scores; sorted best first here). Tokens from
 * usage.prompt_tokens, usage.total_tokens or Cohere's meta.billed_units /
 * meta.tokens input_tokens. False with why filled when anything is off. */
bool gw_embed_read(gw_embed_kind kind, const char *body, size_t len, gw_embed_answer *a, char *why,
                   size_t cap);
void gw_embed_answer_free(gw_embed_answer *a);

typedef struct gw_embed_request {
    gw_embed_kind kind;
    const char *model;        /* the name the client asked for, which a tier declares */
    const char *const *texts; /* the inputs (embeddings) or the documents (rerank) */
    int n_texts;              /* >= 1 */
    const char *query;        /* rerank */
    int top_n;                /* rerank: 0 all */
    int dimensions;           /* embeddings: 0 the model's own */
    gw_key *key;              /* the client's API key (NULL: none) */
} gw_embed_request;

typedef struct gw_embed_response {
    int status;       /* 200, or the error's HTTP status */
    const char *code; /* the error's OpenAI code (NULL: none) */
    char error[256];
    char tier[GW_NAME_MAX]; /* x-hearth-route ("none": refused before any tier) */
    char reason[256];       /* x-hearth-reason */
    gw_embed_answer answer; /* on success */
    int prompt_tokens;      /* the tier's count, else estimated (bytes / 4) */
    bool usage_estimated;
    int64_t ledger_id;
} gw_embed_response;

/* Sends one embeddings or rerank request to the tier that declares its
 * model, with the gateway's guarantees: refused when air-gapped (403), when
 * the client's key may not use the tier (403) or its budget is spent (429),
 * when a text holds an entity whose action is block (403: no local model
 * can stand in for a remote one); the texts (and the query) redacted with
 * one placeholder map; the tier called through gw_cloud_post and its
 * answer checked (a bad one, a refusal or a failure is a 502, a timeout a
 * 504, a tier down or at its own rate limit a 503); an audit row for each
 * call or refusal by the privacy guard, and exactly one ledger row.
 * HEARTH_OK whenever out holds an answer or an error to send; free it with
 * gw_embed_response_free. */
hearth_err gw_embed(gw_gateway *g, const gw_embed_request *r, gw_embed_response *out);
void gw_embed_response_free(gw_embed_response *r);

#endif
