/*
 * policy.c - the routing decision, a pure function of the configuration and
 * the request's signals (no I/O, no clock: the circuit breakers' states come
 * in as signals), so every route the gateway takes can be replayed and
 * explained. The order of the steps and the reasons they give are in
 * gateway.h and docs/gateway.md.
 *
 * Confidence: the measure is the sampled tokens' log-probabilities. Their
 * mean is minus the log-perplexity of the answer under the model that wrote
 * it: a small model that knows the answer is fluent (mean near 0), one that
 * guesses spreads its probability (mean well below 0). The mean hides a
 * single guessed token in a long, otherwise fluent answer (a wrong number, a
 * name), so the minimum is tested too. Entropy would need every
 * alternative's probability; the sampled token's log-probability is what the
 * engine reports for every token at no cost, and both tests are thresholds
 * `hearth router calibrate` can set.
 */
#include "gateway.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool has_remote(const gw_config *c) { return c->n_tiers > 1 && !c->air_gapped; }

static bool contains(const char *text, size_t len, const char *word) {
    const size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (!strncasecmp(text + i, word, n)) return true;
    return false;
}

const char *gw_task_guess(const char *text, size_t len) {
    static const char *const code[] = {"```",     "#include",      "def ",        "function ",
                                       "class ",  "public static", "console.log", "SELECT ",
                                       "import ", "=> {",          "};",          NULL};
    static const char *const math[] = {"solve",      "calculate", "equation", "integral",
                                       "derivative", "how many",  "how much", NULL};
    for (const char *const *w = code; *w; w++)
        if (contains(text, len, *w)) return "code";
    for (const char *const *w = math; *w; w++)
        if (contains(text, len, *w)) return "math";
    int digits = 0, ops = 0;
    for (size_t i = 0; i < len; i++) {
        digits += isdigit((unsigned char)text[i]) != 0;
        ops += text[i] != '\0' && strchr("+*/=^", text[i]) != NULL;
    }
    if (digits >= 2 && ops >= 1) return "math";
    if (contains(text, len, "translate")) return "translate";
    if (contains(text, len, "summar") || contains(text, len, "tl;dr")) return "summarize";
    return "chat";
}

static bool rule_matches(const gw_rule *r, const gw_signals *s, const char *task) {
    if (r->min_chars && s->text_len < r->min_chars) return false;
    if (r->max_chars && s->text_len > r->max_chars) return false;
    if (r->task[0] && strcasecmp(r->task, task)) return false;
    if (r->re) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
        const int rc = md ? pcre2_match(r->re, (PCRE2_SPTR)(s->text ? s->text : ""), s->text_len, 0,
                                        0, md, NULL)
                          : -1;
        pcre2_match_data_free(md);
        if (rc < 0) return false;
    }
    return true;
}

static void why_rule(const gw_rule *r, const gw_signals *s, const char *task, char *out,
                     size_t cap) {
    int n = snprintf(out, cap, "rule %s:", r->name);
    if (n < 0 || (size_t)n >= cap) return;
    if (r->min_chars)
        n += snprintf(out + n, cap - (size_t)n, " prompt %zu chars >= %zu", s->text_len,
                      r->min_chars);
    if (r->max_chars && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, " prompt %zu chars <= %zu", s->text_len,
                      r->max_chars);
    if (r->task[0] && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, " task %s", task);
    if (r->pattern[0] && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, " pattern matched");
}

/* Whether the client's key keeps the request off remote tier t. */
static bool key_closed(const gw_signals *s, int t) {
    return s->key && t > 0 && (s->key_budget_spent || s->key_denied[t]);
}

/* Why, for a reason: "key NAME: its budget is spent" / "... may not use tier T". */
static void why_key(const gw_config *c, const gw_signals *s, int t, char *out, size_t cap) {
    if (s->key_budget_spent)
        snprintf(out, cap, "key %.64s: its budget is spent", s->key);
    else
        snprintf(out, cap, "key %.64s: may not use tier %s", s->key, c->tiers[t].name);
}

/* Local, with the confidence check when a remote tier could take over (and
 * the client's key lets it) and the configuration (or the rule, by giving
 * thresholds) asks for it. */
static void go_local(const gw_config *c, const gw_signals *s, gw_decision *d,
                     const gw_conf_thresholds *conf, bool rule_conf) {
    d->route = GW_ROUTE_LOCAL;
    d->tier = 0;
    d->escalate_tier = c->escalate_to[0] ? gw_config_tier(c, c->escalate_to) : -1;
    d->check_confidence = (c->confidence_check || rule_conf) && has_remote(c) &&
                          d->escalate_tier > 0 && !key_closed(s, d->escalate_tier);
    d->conf = *conf;
}

/* A remote choice meets the client's key, the privacy guard and the
 * breakers. */
static void go_remote(const gw_config *c, const gw_signals *s, gw_decision *d, gw_route route,
                      int tier) {
    char why[sizeof d->reason], key[128];
    snprintf(why, sizeof why, "%s", d->reason);
    if (key_closed(s, tier)) {
        why_key(c, s, tier, key, sizeof key);
        if (route == GW_ROUTE_EXPLICIT) {
            d->refuse = true;
            d->refuse_status = s->key_budget_spent ? 429 : 403;
            snprintf(d->reason, sizeof d->reason, "%s (refused)", key);
            return;
        }
        go_local(c, s, d, &c->conf, false);
        snprintf(d->reason, sizeof d->reason, "%s; answered locally (%.100s)", key, why);
        return;
    }
    if (s->blocked && s->blocked[0]) {
        d->pii_blocked = true;
        if (c->block_refuses) {
            d->refuse = true;
            d->refuse_status = 403;
            snprintf(d->reason, sizeof d->reason,
                     "privacy: the request holds %s, which may not leave (refused)", s->blocked);
            return;
        }
        go_local(c, s, d, &c->conf, false);
        d->check_confidence = false;
        snprintf(d->reason, sizeof d->reason,
                 "privacy: %s may not leave; answered locally (%.100s)", s->blocked, why);
        return;
    }
    if (!s->available[tier]) {
        go_local(c, s, d, &c->conf, false);
        d->check_confidence = false;
        d->degraded = true;
        snprintf(d->reason, sizeof d->reason, "degraded: tier %s %s; answered locally (%.100s)",
                 c->tiers[tier].name, s->limited[tier] ? "is at its rate limit" : "is down", why);
        return;
    }
    d->route = route;
    d->tier = tier;
    d->check_confidence = false;
}

void gw_policy_decide(const gw_config *c, const gw_signals *s, gw_decision *d) {
    memset(d, 0, sizeof *d);
    d->escalate_tier = -1;
    d->conf = c->conf;
    /* 1. explicit */
    const char *name = s->tier_header && s->tier_header[0] ? s->tier_header : s->model;
    const int named = name ? gw_config_tier(c, name) : -1;
    if (s->tier_header && s->tier_header[0] && named < 0) {
        d->refuse = true;
        d->refuse_status = 400;
        snprintf(d->reason, sizeof d->reason, "x-hearth-tier: no tier named '%.64s'",
                 s->tier_header);
        return;
    }
    if (named == 0) {
        d->route = GW_ROUTE_EXPLICIT;
        snprintf(d->reason, sizeof d->reason, "explicit: local requested");
        return;
    }
    if (named > 0) {
        if (c->air_gapped) {
            d->refuse = true;
            d->refuse_status = 403;
            snprintf(d->reason, sizeof d->reason, "air-gapped: remote tier %s is never contacted",
                     c->tiers[named].name);
            return;
        }
        snprintf(d->reason, sizeof d->reason, "explicit: %s requested", c->tiers[named].name);
        go_remote(c, s, d, GW_ROUTE_EXPLICIT, named);
        if (d->route == GW_ROUTE_LOCAL && !d->refuse) d->route = GW_ROUTE_EXPLICIT;
        return;
    }
    /* auto */
    if (!has_remote(c)) {
        go_local(c, s, d, &c->conf, false);
        snprintf(d->reason, sizeof d->reason, "%s",
                 c->air_gapped ? "air-gapped: local only" : "local: no remote tier");
        return;
    }
    const int esc = gw_config_tier(c, c->escalate_to);
    /* 2. rules */
    const char *task =
        s->task && s->task[0] ? s->task : gw_task_guess(s->text ? s->text : "", s->text_len);
    for (int i = 0; i < c->n_rules; i++) {
        const gw_rule *r = &c->rules[i];
        if (!rule_matches(r, s, task)) continue;
        why_rule(r, s, task, d->reason, sizeof d->reason);
        const int t = gw_config_tier(c, r->target);
        if (t <= 0)
            go_local(c, s, d, r->has_conf ? &r->conf : &c->conf, r->has_conf);
        else
            go_remote(c, s, d, GW_ROUTE_ESCALATED, t);
        return;
    }
    /* 3. the learned router */
    const double thr = !isnan(c->router_threshold) ? c->router_threshold : s->router_threshold;
    if (!isnan(s->router_score) && !isnan(thr)) {
        const bool strong = s->router_score >= thr;
        snprintf(d->reason, sizeof d->reason, "router: score %.3f %s %.3f", s->router_score,
                 strong ? ">=" : "<", thr);
        if (strong && esc > 0) {
            go_remote(c, s, d, GW_ROUTE_ESCALATED, esc);
            return;
        }
        go_local(c, s, d, &c->conf, false);
        return;
    }
    /* 4. local first */
    go_local(c, s, d, &c->conf, false);
    if (esc > 0 && key_closed(s, esc)) {
        char key[128];
        why_key(c, s, esc, key, sizeof key);
        snprintf(d->reason, sizeof d->reason, "local: %s", key);
    } else {
        snprintf(d->reason, sizeof d->reason, "%s",
                 d->check_confidence ? "local: confidence check" : "local");
    }
}

gw_confidence gw_confidence_of(const float *logprobs, int n) {
    gw_confidence c = {0, 0.0, 0.0};
    double sum = 0, min = INFINITY;
    for (int i = 0; i < n; i++) {
        const float x = logprobs[i];
        if (isnan(x) || x == INFINITY) continue;
        const double v = x == -INFINITY ? -1e9 : x; /* -inf: the model ruled the token out */
        sum += v;
        if (v < min) min = v;
        c.n_tokens++;
    }
    if (c.n_tokens) {
        c.mean_logprob = sum / c.n_tokens;
        c.min_logprob = min;
    }
    return c;
}

bool gw_should_escalate(const gw_confidence *c, const gw_conf_thresholds *t, char *why,
                        size_t cap) {
    if (c->n_tokens < t->min_tokens || c->n_tokens == 0) {
        snprintf(why, cap, "confidence: %d tokens, too few to judge", c->n_tokens);
        return false;
    }
    if (c->mean_logprob < t->mean_logprob) {
        snprintf(why, cap, "confidence: mean logprob %.3f < %.3f", c->mean_logprob,
                 t->mean_logprob);
        return true;
    }
    if (c->min_logprob < t->min_logprob) {
        snprintf(why, cap, "confidence: min logprob %.3f < %.3f", c->min_logprob, t->min_logprob);
        return true;
    }
    snprintf(why, cap, "confidence: mean %.3f, min %.3f", c->mean_logprob, c->min_logprob);
    return false;
}
