/*
 * embed.c - one remote embeddings or rerank request end to end (what
 * cascade.c is for a chat): the tier is the one that declares the requested
 * model (gw_config_embed_tier); the request is refused when the gateway is
 * air-gapped, when the client's key may not use that tier or has spent its
 * budget, and when a text holds an entity whose action is block (no local
 * model can stand in for a remote one, so "on_block": "local" refuses too);
 * otherwise every text (and a rerank's query) is redacted with one
 * placeholder map, sent through cloud.c's transport (gw_cloud_post) and the
 * answer checked (cloud_embed.c).
 *
 * Nothing comes back to restore: vectors are of the redacted texts, and a
 * rerank's documents are given back by the server from the request itself,
 * by index (the tier is never asked to return them). Every call leaves an
 * audit row (entity counts and digests, never the text), a refusal by the
 * privacy guard one too, and every request exactly one ledger row, whose
 * endpoint column says which kind it was.
 */
#include "gateway.h"

#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ejob {
    gw_gateway *g;
    const gw_config *c;
    const gw_embed_request *rq;
    gw_embed_response *out;
    int tier;
    char blocked[96]; /* entity types found whose action is block */
    bool seen_blocked[GW_N_ENT];
    gw_redaction *red;
    char **red_texts; /* [n_texts] */
    char *red_query;
    int estimate; /* the texts' tokens, estimated */
} ejob;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gw_embed_response_free(gw_embed_response *r) { gw_embed_answer_free(&r->answer); }

static void refuse(ejob *j, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(ejob *j, int status, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->out->reason, sizeof j->out->reason, fmt, ap);
    va_end(ap);
    j->out->status = status;
    j->out->code = code;
    snprintf(j->out->error, sizeof j->out->error, "%s", j->out->reason);
}

/* Air gap and the client's key, before any text is read. */
static void decide(ejob *j) {
    const gw_tier *t = &j->c->tiers[j->tier];
    const gw_embed_request *r = j->rq;
    snprintf(j->out->reason, sizeof j->out->reason, "explicit: %s model %s is tier %s's",
             gw_embed_kind_name(r->kind), r->model, t->name);
    if (j->c->air_gapped) {
        refuse(j, 403, "air_gapped",
               "air-gapped: remote tier %s is never contacted (the %s model %.100s is served by "
               "it alone)",
               t->name, gw_embed_kind_name(r->kind), r->model);
        return;
    }
    if (!r->key) return;
    bool denied[GW_MAX_TIERS] = {0}, spent = false;
    const char *name = gw_key_spec_of(r->key)->name;
    gw_key_grant(r->key, gw_now_ms(), denied, &spent);
    if (spent)
        refuse(j, 429, "insufficient_quota", "key %.64s: its budget is spent (refused)", name);
    else if (denied[j->tier])
        refuse(j, 403, "tier_not_allowed", "key %.64s: may not use tier %s (refused)", name,
               t->name);
}

/* One text scanned and redacted into *out; entities to block noted. */
static hearth_err redact_one(ejob *j, const char *text, char **out) {
    gw_span *spans = NULL;
    size_t n = 0, len = strlen(text), out_len;
    hearth_err err = gw_pii_scan(gw_gateway_pii(j->g), text, len, &spans, &n);
    for (size_t k = 0; !err && k < n; k++) {
        const gw_entity e = spans[k].type;
        if (j->c->pii[e] != GW_PII_BLOCK || j->seen_blocked[e]) continue;
        j->seen_blocked[e] = true;
        const size_t used = strlen(j->blocked);
        snprintf(j->blocked + used, sizeof j->blocked - used, "%s%s", used ? "," : "",
                 gw_entity_name(e));
    }
    if (!err) err = gw_redact(j->red, text, len, spans, n, j->c->pii, out, &out_len);
    free(spans);
    return err;
}

/* Every text (and the query) redacted with one map; the estimate of their
 * tokens (bytes / 4, as for chats; a rerank reads the query with each
 * document). */
static hearth_err redact_all(ejob *j) {
    const gw_embed_request *r = j->rq;
    j->red = gw_redaction_new();
    j->red_texts = calloc((size_t)r->n_texts, sizeof *j->red_texts);
    if (!j->red || !j->red_texts) return hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    size_t bytes = 0;
    hearth_err err = HEARTH_OK;
    if (r->kind == GW_EMBED_RERANK) {
        err = redact_one(j, r->query, &j->red_query);
        bytes = strlen(r->query) * (size_t)r->n_texts;
    }
    for (int i = 0; !err && i < r->n_texts; i++) {
        err = redact_one(j, r->texts[i], &j->red_texts[i]);
        bytes += strlen(r->texts[i]);
    }
    j->estimate = bytes / 4 + 1 < (size_t)1 << 30 ? (int)(bytes / 4 + 1) : 1 << 30;
    return err;
}

/* gw_body_fn: the tier's answer, checked. */
static bool read_answer(void *ctx, const char *body, size_t len, int *tokens, char *why,
                        size_t cap) {
    ejob *j = ctx;
    gw_embed_answer *a = &j->out->answer;
    const bool ok = gw_embed_read(j->rq->kind, body, len, a, why, cap);
    *tokens = ok && a->tokens >= 0 ? a->tokens : j->estimate;
    return ok;
}

static void audit(ejob *j, const char *action, const gw_cloud_result *res) {
    gw_ledger *l = gw_gateway_ledger(j->g);
    if (!l) return;
    char entities[160] = "";
    if (res && j->red) gw_redaction_summary(j->red, entities, sizeof entities);
    if (!res) snprintf(entities, sizeof entities, "%s", j->blocked);
    const gw_audit_row a = {.tier = j->c->tiers[j->tier].name,
                            .action = action,
                            .entities = entities,
                            .sent_sha256 = res ? res->sent_sha256 : "",
                            .received_sha256 = j->out->answer.received_sha256};
    (void)gw_audit_add(l, &a); /* the answer matters more than its audit row */
}

/* The call's outcome as the client's status. */
static void outcome(ejob *j, const gw_cloud_result *res) {
    gw_embed_response *o = j->out;
    const char *name = j->c->tiers[j->tier].name;
    switch (res->status) {
    case GW_CLOUD_OK:
        o->prompt_tokens = res->prompt_tokens;
        o->usage_estimated = o->answer.tokens < 0;
        if (o->usage_estimated) {
            const size_t n = strlen(o->reason);
            snprintf(o->reason + n, sizeof o->reason - n, "; usage estimated (bytes / 4)");
        }
        return;
    case GW_CLOUD_BREAKER_OPEN:
    case GW_CLOUD_RATE_LIMITED:
        o->status = 503;
        o->code = "tier_unavailable";
        break;
    case GW_CLOUD_UNREACHABLE:
        o->status = res->timed_out ? 504 : 502;
        o->code = res->timed_out ? "timeout" : "bad_gateway";
        break;
    default: /* rejected, or an answer that is not what was asked for */
        o->status = 502;
        o->code = "bad_gateway";
        break;
    }
    snprintf(o->error, sizeof o->error, "tier %s %s after %d attempt%s: %.180s", name,
             gw_cloud_status_name(res->status), res->attempts, res->attempts == 1 ? "" : "s",
             res->error);
    gw_embed_answer_free(&o->answer);
}

static hearth_err call(ejob *j) {
    const gw_embed_request *r = j->rq;
    const gw_tier *t = &j->c->tiers[j->tier];
    gw_embed_answer *a = &j->out->answer;
    a->n = r->n_texts;
    a->want_dim = r->kind == GW_EMBED_VECTORS ? r->dimensions : 0;
    a->top_n = r->kind == GW_EMBED_RERANK ? r->top_n : 0;
    const char *const *texts = (const char *const *)j->red_texts;
    char *body = r->kind == GW_EMBED_RERANK
                     ? gw_rerank_body(r->model, j->red_query, texts, r->n_texts, r->top_n)
                     : gw_embed_body(r->model, texts, r->n_texts, r->dimensions);
    if (!body) return hr_fail(HEARTH_ERR_NOMEM, "gateway: out of memory");
    gw_cloud_result res;
    const char *url = r->kind == GW_EMBED_RERANK ? t->rerank_url : t->embed_url;
    const hearth_err err =
        gw_cloud_post(gw_gateway_remote(j->g, j->tier), url, body, read_answer, j, &res);
    free(body);
    if (err) return err;
    snprintf(j->out->tier, sizeof j->out->tier, "%s", t->name);
    outcome(j, &res);
    if (res.attempts > 0) audit(j, res.status == GW_CLOUD_OK ? "sent" : "failed", &res);
    gw_cloud_result_free(&res);
    return HEARTH_OK;
}

/* The texts as the ledger keeps them with ledger_prompts: the query, then
 * each text, a line each. */
static char *prompt_text(const gw_embed_request *r) {
    gw_buf b = {0};
    if (r->kind == GW_EMBED_RERANK) gw_buf_printf(&b, "%s\n", r->query);
    for (int i = 0; i < r->n_texts; i++) gw_buf_printf(&b, "%s%s", i ? "\n" : "", r->texts[i]);
    return gw_buf_take(&b, NULL);
}

static void ledger_row(ejob *j, int64_t latency_ms) {
    const gw_embed_response *o = j->out;
    const gw_embed_request *r = j->rq;
    gw_ledger_row row = gw_ledger_row_init();
    row.route = GW_ROUTE_EXPLICIT; /* the model's name chose the tier */
    row.tier = o->tier;
    row.reason = o->status < 400 ? o->reason : o->error;
    row.model = r->model;
    row.status = o->status;
    row.prompt_tokens = o->status < 400 ? o->prompt_tokens : 0;
    row.latency_ms = latency_ms;
    row.endpoint = gw_embed_kind_name(r->kind);
    if (o->status < 400) /* no local model could answer it: its cloud-only cost is its cost */
        row.cost_usd_micro = row.cloud_only_cost_usd_micro =
            gw_cost_usd_micro(&j->c->tiers[j->tier], o->prompt_tokens, 0);
    if (r->key) {
        row.api_key = gw_key_spec_of(r->key)->name;
        gw_key_spend(r->key, gw_now_ms(), row.cost_usd_micro);
    }
    char *prompt = j->c->ledger_prompts ? prompt_text(r) : NULL;
    row.prompt = prompt;
    int64_t id = 0;
    gw_ledger *l = gw_gateway_ledger(j->g);
    if (l && gw_ledger_add(l, &row, &id) == HEARTH_OK) j->out->ledger_id = id;
    free(prompt);
}

hearth_err gw_embed(gw_gateway *g, const gw_embed_request *r, gw_embed_response *out) {
    const int64_t t0 = mono_ms();
    memset(out, 0, sizeof *out);
    ejob j = {.g = g, .c = gw_gateway_config(g), .rq = r, .out = out};
    j.tier = gw_config_embed_tier(j.c, r->kind, r->model);
    if (j.tier <= 0 || r->n_texts < 1 || (r->kind == GW_EMBED_RERANK && !r->query))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "gateway: no tier serves the %s model '%s'",
                       gw_embed_kind_name(r->kind), r->model ? r->model : "");
    out->status = 200;
    snprintf(out->tier, sizeof out->tier, "none");
    decide(&j);
    hearth_err err = out->status == 200 ? redact_all(&j) : HEARTH_OK;
    if (!err && out->status == 200 && j.blocked[0]) {
        refuse(&j, 403, "privacy_blocked",
               "privacy: the request holds %s, which may not leave "
               "(refused: no local model serves it)",
               j.blocked);
        audit(&j, "refused", NULL);
    }
    if (!err && out->status == 200) err = call(&j);
    if (!err) ledger_row(&j, mono_ms() - t0);
    for (int i = 0; j.red_texts && i < r->n_texts; i++) free(j.red_texts[i]);
    free(j.red_texts);
    free(j.red_query);
    gw_redaction_free(j.red);
    if (err) gw_embed_response_free(out);
    return err;
}
