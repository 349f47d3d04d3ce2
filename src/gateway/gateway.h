/*
 * gateway.h - the gateway layer: the cascade between the local model and
 * remote (cloud) tiers. This header is the folder's interface (prefix gw_);
 * the learned pre-router has its own (router.h, prefix rtr_).
 *
 *   buf.c      gw_buf: a growable byte buffer with a hard cap
 *   sha256.c   SHA-256 (FIPS 180-4), for audit hashes
 *   pii.c      the privacy guard's detectors (PCRE2 candidates + validators)
 *   redact.c   reversible redaction: placeholders, restore, streaming restore
 *   config.c   tiers and policy from a JSON file or the --cloud-* flags
 *   policy.c   the routing decision, a pure function of signals + config;
 *              confidence from token log-probabilities
 *   cloud.c    the remote tiers over libcurl: OpenAI chat completions and
 *              Anthropic Messages, SSE streaming, retries, circuit breaker
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
    /* only when the deployment opts in (--ledger-prompts): */
    const char *prompt, *local_answer, *remote_answer;
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

typedef struct gw_stats {
    int64_t since_ms;
    int64_t requests;  /* rows: local + escalated + errors */
    int64_t local;     /* answered (status < 400) by the local tier */
    int64_t escalated; /* answered (status < 400) by a remote tier */
    int64_t errors;    /* status >= 400 */
    int64_t degraded;  /* answered locally because the remote tiers were down */
    int64_t cost_usd_micro, cloud_only_cost_usd_micro;
    double savings_pct; /* 100 (1 - cost / cloud_only); 0 when cloud_only is 0 */
    int n_tiers;        /* the busiest GW_STATS_TIERS tiers, by requests */
    gw_tier_stats tiers[GW_STATS_TIERS];
} gw_stats;

/* Aggregates the rows with time_ms >= since_ms (0: all). */
hearth_err gw_ledger_stats(gw_ledger *l, int64_t since_ms, gw_stats *out);
/* {"requests":..,"local":..,"escalated":..,"cost_usd":..,"cloud_only_cost_usd":..,
 *  "savings_pct":..,"tiers":{"local":{"requests","p50_ms","p95_ms",..}}} (malloc'd) */
char *gw_stats_json(const gw_stats *s);
/* The human report `hearth ledger report` prints (malloc'd). */
char *gw_stats_text(const gw_stats *s);
/* --since: an ISO date/time ("2024-05-01", "2024-05-01T12:30:00Z", UTC) or a
 * duration back from now_ms ("90s", "30m", "24h", "7d"). */
hearth_err gw_parse_since(const char *s, int64_t now_ms, int64_t *since_ms);
int64_t gw_now_ms(void); /* wall clock, Unix ms */

#endif
