/*
 * drift_report.c - has the traffic changed? The current window (default the
 * last 24 h) against the reference window just before it (default the 7 days
 * before), signal by signal. A signal is a number or a category read off each
 * ledger row; a row that does not carry it (a request the router did not
 * score, an answer that was not confidence-checked) does not count for it.
 *
 * A signal moved when its distribution both shifted by a useful amount
 * (PSI >= 0.1 warn, >= 0.25 drift: the usual credit-scoring bands) and could
 * not have shifted by chance (KS or chi-square p < alpha). Neither alone is
 * enough: on a busy gateway every tiny shift is significant, and on a quiet
 * one large PSI values come from luck.
 */
#include "drift.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the signals ---------------------------------------------------------- */

static bool answered(const gw_ledger_point *p) { return p->status < 400; }

static bool num_prompt(const gw_ledger_point *p, double *v) {
    *v = p->prompt_tokens;
    return answered(p);
}
static bool num_completion(const gw_ledger_point *p, double *v) {
    *v = p->completion_tokens;
    return answered(p);
}
static bool num_local_latency(const gw_ledger_point *p, double *v) {
    *v = (double)p->latency_ms;
    return answered(p) && !strcmp(p->tier, "local");
}
static bool num_router(const gw_ledger_point *p, double *v) {
    *v = p->router_score;
    return !isnan(*v);
}
static bool num_conf_mean(const gw_ledger_point *p, double *v) {
    *v = p->conf_mean;
    return !isnan(*v);
}
static bool num_conf_min(const gw_ledger_point *p, double *v) {
    *v = p->conf_min;
    return !isnan(*v);
}
static const char *cat_route(const gw_ledger_point *p) {
    return answered(p) ? gw_route_name(p->route) : NULL;
}
static const char *cat_outcome(const gw_ledger_point *p) {
    if (p->status >= 500) return "server_error";
    if (p->status >= 400) return "client_error";
    return p->degraded ? "degraded" : "ok";
}
static const char *cat_tier(const gw_ledger_point *p) { return answered(p) ? p->tier : NULL; }

typedef struct signal_def {
    const char *name, *what, *advice;
    bool (*num)(const gw_ledger_point *p, double *v); /* numbers: false when absent */
    const char *(*cat)(const gw_ledger_point *p);     /* categories: NULL when absent */
} signal_def;

static const signal_def signal_defs[DRIFT_SIGNALS] = {
    {"prompt_tokens", "prompt length in tokens (answered requests)",
     "Prompts changed length; the router and the context size were chosen for the old ones.",
     num_prompt, NULL},
    {"completion_tokens", "answer length in tokens (answered requests)",
     "Answers changed length; cost and latency move with it.", num_completion, NULL},
    {"local_latency_ms", "latency of the answers the local tier gave",
     "The local tier answers at another speed: load, longer prompts or answers, or the machine.",
     num_local_latency, NULL},
    {"router_score", "the pre-router's score (requests it scored)",
     "The queries changed as the pre-router sees them, so its threshold now keeps another share "
     "local: recalibrate it (hearth router calibrate).",
     num_router, NULL},
    {"conf_mean", "mean token log-probability of the confidence-checked local answers",
     "The local model's confidence moved (new kinds of questions, or another model or prompt), so "
     "the confidence check escalates another share: recalibrate it (hearth router calibrate "
     "--confidence).",
     num_conf_mean, NULL},
    {"conf_min", "lowest token log-probability of the confidence-checked local answers",
     "The local answers' weakest tokens moved; see conf_mean.", num_conf_min, NULL},
    {"route", "how answered requests were routed: local, escalated, explicit",
     "The share kept local moved, and the cost with it (hearth ledger report).", NULL, cat_route},
    {"outcome", "ok, degraded (remote tiers down), client_error (4xx), server_error (5xx)",
     "Failures or degraded answers changed: check the tiers' health (GET /health, the log).", NULL,
     cat_outcome},
    {"tier", "the tier that answered", "Traffic moved between tiers.", NULL, cat_tier},
};

const char *drift_status_name(drift_status s) {
    switch (s) {
    case DRIFT_INSUFFICIENT: return "insufficient";
    case DRIFT_STABLE: return "stable";
    case DRIFT_WARN: return "warn";
    case DRIFT_DRIFT: return "drift";
    }
    return "unknown";
}

drift_params drift_default_params(void) {
    drift_params p;
    memset(&p, 0, sizeof p);
    p.window_ms = 24LL * 3600 * 1000;
    p.reference_ms = 7LL * 24 * 3600 * 1000;
    p.bins = 10;
    p.min_samples = 30;
    p.alpha = 0.01;
    p.max_samples = 50000;
    return p;
}

/* ---- collecting a window --------------------------------------------------- */

/* A uniform sample of at most cap values (Vitter's algorithm R), with the
 * exact count and sum of all of them. */
typedef struct reservoir {
    double *v;
    size_t n, cap_alloc, seen;
    double sum;
} reservoir;

typedef struct collector {
    drift_report *r;
    int side; /* 0: reference, 1: current */
    size_t max_samples;
    reservoir res[DRIFT_SIGNALS];
    hr_rng rng;
} collector;

static hearth_err reservoir_add(reservoir *s, double x, size_t cap, hr_rng *rng) {
    s->seen++;
    s->sum += x;
    if (s->n < cap) {
        if (s->n == s->cap_alloc) {
            size_t c = s->cap_alloc ? s->cap_alloc * 2 : 256;
            if (c > cap) c = cap;
            double *nv = realloc(s->v, c * sizeof *nv);
            if (!nv) return hr_fail(HEARTH_ERR_NOMEM, "drift: out of memory");
            s->v = nv;
            s->cap_alloc = c;
        }
        s->v[s->n++] = x;
        return HEARTH_OK;
    }
    const uint64_t j = hr_rng_next(rng) % s->seen;
    if (j < cap) s->v[j] = x;
    return HEARTH_OK;
}

/* The index of category name in sig (added when new; "other" past the last
 * slot but one). */
static int category(drift_signal *sig, const char *name) {
    for (int i = 0; i < sig->n_cats; i++)
        if (!strcmp(sig->cats[i], name)) return i;
    if (sig->n_cats == DRIFT_CATS - 1) name = "other";
    if (sig->n_cats == DRIFT_CATS) return DRIFT_CATS - 1;
    snprintf(sig->cats[sig->n_cats], sizeof sig->cats[0], "%s", name);
    return sig->n_cats++;
}

static hearth_err visit(void *user, const gw_ledger_point *rows, size_t n) {
    collector *c = user;
    drift_report *r = c->r;
    for (size_t i = 0; i < n; i++) {
        const gw_ledger_point *p = &rows[i];
        if (c->side)
            r->cur_requests++;
        else
            r->ref_requests++;
        for (int k = 0; k < DRIFT_SIGNALS; k++) {
            const signal_def *d = &signal_defs[k];
            drift_signal *sig = &r->signals[k];
            drift_side *side = c->side ? &sig->cur : &sig->ref;
            if (d->cat) {
                const char *name = d->cat(p);
                if (!name) continue;
                side->n++;
                side->counts[category(sig, name)]++;
                continue;
            }
            double v;
            if (!d->num(p, &v)) continue;
            const hearth_err err = reservoir_add(&c->res[k], v, c->max_samples, &c->rng);
            if (err) return err;
        }
    }
    return HEARTH_OK;
}

/* ---- judging a signal ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double nearest_rank(const double *v, size_t n, double pct) {
    size_t k = (size_t)ceil(pct / 100.0 * (double)n);
    return v[k ? k - 1 : 0];
}

static void summarize(drift_side *side, reservoir *s) {
    side->n = s->seen;
    side->mean = side->p50 = side->p95 = NAN;
    if (!s->n) return;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    side->mean = s->sum / (double)s->seen;
    side->p50 = nearest_rank(s->v, s->n, 50);
    side->p95 = nearest_rank(s->v, s->n, 95);
}

static void hint_numeric(drift_signal *sig, const char *advice) {
    snprintf(sig->hint, sizeof sig->hint,
             "mean %.4g -> %.4g, p50 %.4g -> %.4g, p95 %.4g -> %.4g. %s", sig->ref.mean,
             sig->cur.mean, sig->ref.p50, sig->cur.p50, sig->ref.p95, sig->cur.p95, advice);
}

static void hint_categorical(drift_signal *sig, const char *advice) {
    size_t off = 0;
    for (int i = 0; i < sig->n_cats && off < sizeof sig->hint; i++) {
        const int w =
            snprintf(sig->hint + off, sizeof sig->hint - off, "%s%s %.1f%% -> %.1f%%",
                     i ? ", " : "", sig->cats[i], 100.0 * sig->ref.counts[i] / (double)sig->ref.n,
                     100.0 * sig->cur.counts[i] / (double)sig->cur.n);
        if (w < 0) break;
        off += (size_t)w;
    }
    if (off < sizeof sig->hint) snprintf(sig->hint + off, sizeof sig->hint - off, ". %s", advice);
}

static void judge(drift_signal *sig, const signal_def *d, reservoir res[2], const drift_params *p) {
    if (!d->cat) {
        summarize(&sig->ref, &res[0]);
        summarize(&sig->cur, &res[1]);
    }
    sig->psi = sig->statistic = sig->p_value = NAN;
    if (sig->ref.n < p->min_samples || sig->cur.n < p->min_samples) {
        sig->status = DRIFT_INSUFFICIENT;
        return;
    }
    if (d->cat) {
        sig->psi = drift_psi_counts(sig->ref.counts, sig->cur.counts, (size_t)sig->n_cats);
        sig->statistic =
            drift_chi2(sig->ref.counts, sig->cur.counts, (size_t)sig->n_cats, &sig->df);
        sig->p_value = drift_chi2_pvalue(sig->statistic, sig->df);
    } else {
        sig->psi = drift_psi_numeric(res[0].v, res[0].n, res[1].v, res[1].n, p->bins);
        sig->statistic = drift_ks(res[0].v, res[0].n, res[1].v, res[1].n);
        sig->p_value = drift_ks_pvalue(sig->statistic, res[0].n, res[1].n);
    }
    const bool significant = sig->p_value < p->alpha;
    sig->status = significant && sig->psi >= 0.25  ? DRIFT_DRIFT
                  : significant && sig->psi >= 0.1 ? DRIFT_WARN
                                                   : DRIFT_STABLE;
    if (sig->status < DRIFT_WARN) return;
    if (d->cat)
        hint_categorical(sig, d->advice);
    else
        hint_numeric(sig, d->advice);
}

hearth_err drift_report_build(gw_ledger *l, const drift_params *params, drift_report *out) {
    const drift_params p = *params;
    if (p.window_ms <= 0 || p.reference_ms <= 0 || p.bins < 2 || p.min_samples < 1 ||
        !(p.alpha > 0 && p.alpha < 1) || p.max_samples < 2)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "drift: the windows must be positive, bins >= 2, min samples >= 1, "
                       "0 < alpha < 1, max samples >= 2");
    drift_report *r = calloc(1, sizeof *r);
    collector *c = calloc(1, sizeof *c);
    if (!r || !c) {
        free(r);
        free(c);
        return hr_fail(HEARTH_ERR_NOMEM, "drift: out of memory");
    }
    r->params = p;
    r->cur_until_ms = p.until_ms ? p.until_ms : gw_now_ms();
    r->cur_since_ms = r->cur_until_ms - p.window_ms;
    r->ref_until_ms = r->cur_since_ms;
    r->ref_since_ms = r->ref_until_ms - p.reference_ms;
    r->n_signals = DRIFT_SIGNALS;
    for (int k = 0; k < DRIFT_SIGNALS; k++) {
        r->signals[k].name = signal_defs[k].name;
        r->signals[k].what = signal_defs[k].what;
        r->signals[k].categorical = signal_defs[k].cat != NULL;
    }
    /* a reservoir per signal and window: the reference's are kept while the
     * current window is read, then both are judged */
    reservoir kept[DRIFT_SIGNALS];
    c->r = r;
    c->max_samples = p.max_samples;
    hr_rng_seed(&c->rng, 0x6472696674ULL); /* the same ledger gives the same report */
    hearth_err err = gw_ledger_scan(l, r->ref_since_ms, r->ref_until_ms, visit, c);
    memcpy(kept, c->res, sizeof kept);
    memset(c->res, 0, sizeof c->res);
    c->side = 1;
    if (!err) err = gw_ledger_scan(l, r->cur_since_ms, r->cur_until_ms, visit, c);
    r->status = DRIFT_INSUFFICIENT;
    for (int k = 0; k < DRIFT_SIGNALS && !err; k++) {
        reservoir both[2] = {kept[k], c->res[k]};
        r->sampled |= both[0].seen > both[0].n || both[1].seen > both[1].n;
        judge(&r->signals[k], &signal_defs[k], both, &p);
        if (r->signals[k].status > r->status) r->status = r->signals[k].status;
    }
    for (int k = 0; k < DRIFT_SIGNALS; k++) {
        free(kept[k].v);
        free(c->res[k].v);
    }
    free(c);
    if (!err) *out = *r;
    free(r);
    return err;
}

/* ---- output ----------------------------------------------------------------- */

static void add_number(cJSON *o, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static void side_json(cJSON *o, const char *key, const drift_signal *sig, const drift_side *s) {
    cJSON *j = cJSON_AddObjectToObject(o, key);
    if (!j) return;
    cJSON_AddNumberToObject(j, "n", (double)s->n);
    if (!sig->categorical) {
        add_number(j, "mean", s->mean);
        add_number(j, "p50", s->p50);
        add_number(j, "p95", s->p95);
        return;
    }
    cJSON *shares = cJSON_AddObjectToObject(j, "shares");
    for (int i = 0; i < sig->n_cats && shares; i++)
        cJSON_AddNumberToObject(shares, sig->cats[i], s->n ? s->counts[i] / (double)s->n : 0.0);
}

static void window_json(cJSON *o, const char *key, int64_t since, int64_t until, int64_t n) {
    cJSON *j = cJSON_AddObjectToObject(o, key);
    if (!j) return;
    cJSON_AddNumberToObject(j, "since_ms", (double)since);
    cJSON_AddNumberToObject(j, "until_ms", (double)until);
    cJSON_AddNumberToObject(j, "requests", (double)n);
}

char *drift_report_json(const drift_report *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "status", drift_status_name(r->status));
    window_json(o, "window", r->cur_since_ms, r->cur_until_ms, r->cur_requests);
    window_json(o, "reference", r->ref_since_ms, r->ref_until_ms, r->ref_requests);
    cJSON_AddBoolToObject(o, "sampled", r->sampled);
    cJSON *params = cJSON_AddObjectToObject(o, "params");
    if (params) {
        cJSON_AddNumberToObject(params, "bins", r->params.bins);
        cJSON_AddNumberToObject(params, "min_samples", (double)r->params.min_samples);
        cJSON_AddNumberToObject(params, "alpha", r->params.alpha);
        cJSON_AddNumberToObject(params, "max_samples", (double)r->params.max_samples);
    }
    cJSON *sigs = cJSON_AddArrayToObject(o, "signals");
    for (int k = 0; k < r->n_signals && sigs; k++) {
        const drift_signal *s = &r->signals[k];
        cJSON *j = cJSON_CreateObject();
        if (!j) break;
        cJSON_AddItemToArray(sigs, j);
        cJSON_AddStringToObject(j, "name", s->name);
        cJSON_AddStringToObject(j, "kind", s->categorical ? "categorical" : "numeric");
        cJSON_AddStringToObject(j, "what", s->what);
        cJSON_AddStringToObject(j, "status", drift_status_name(s->status));
        add_number(j, "psi", s->psi);
        cJSON_AddStringToObject(j, "test", s->categorical ? "chi2" : "ks");
        add_number(j, "statistic", s->statistic);
        if (s->categorical) cJSON_AddNumberToObject(j, "df", s->df);
        add_number(j, "p_value", s->p_value);
        side_json(j, "reference", s, &s->ref);
        side_json(j, "window", s, &s->cur);
        if (s->hint[0]) cJSON_AddStringToObject(j, "hint", s->hint);
    }
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

char *drift_report_text(const drift_report *r) {
    gw_buf b = {0};
    char t[4][32];
    gw_format_time(r->cur_since_ms, t[0], sizeof t[0]);
    gw_format_time(r->cur_until_ms, t[1], sizeof t[1]);
    gw_format_time(r->ref_since_ms, t[2], sizeof t[2]);
    gw_format_time(r->ref_until_ms, t[3], sizeof t[3]);
    gw_buf_printf(&b, "window     %s .. %s  %lld requests\n", t[0], t[1],
                  (long long)r->cur_requests);
    gw_buf_printf(&b, "reference  %s .. %s  %lld requests\n", t[2], t[3],
                  (long long)r->ref_requests);
    gw_buf_printf(&b, "status     %s%s\n\n", drift_status_name(r->status),
                  r->sampled ? " (some signals sampled)" : "");
    gw_buf_printf(&b, "%-18s %-12s %9s %9s %7s %5s %9s %9s\n", "signal", "status", "n ref",
                  "n window", "PSI", "test", "stat", "p-value");
    for (int k = 0; k < r->n_signals; k++) {
        const drift_signal *s = &r->signals[k];
        gw_buf_printf(&b, "%-18s %-12s %9zu %9zu %7.3f %5s %9.4g %9.3g\n", s->name,
                      drift_status_name(s->status), s->ref.n, s->cur.n, s->psi,
                      s->categorical ? "chi2" : "ks", s->statistic, s->p_value);
    }
    bool any = false;
    for (int k = 0; k < r->n_signals; k++) {
        const drift_signal *s = &r->signals[k];
        if (!s->hint[0]) continue;
        if (!any) gw_buf_puts(&b, "\n");
        any = true;
        gw_buf_printf(&b, "%s: %s\n", s->name, s->hint);
    }
    return gw_buf_take(&b, NULL);
}
