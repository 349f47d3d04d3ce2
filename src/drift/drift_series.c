/*
 * drift_series.c - the traffic over time: fixed-width buckets with the counts
 * gw_stats keeps for a whole span (requests, local, escalated, errors,
 * degraded, tokens, cost), the local tier's latency percentiles and the mean
 * confidence and router score. One pass over the ledger; memory is per
 * bucket, never per request, so a month of traffic costs what an hour does:
 * the latency percentiles come from a log-scale histogram rather than from
 * the sorted values.
 */
#include "drift.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency histogram: bin i holds ms with floor(16 log2(1 + ms)) = i. */
enum { HIST_PER_OCTAVE = 16, HIST_BINS = 40 * HIST_PER_OCTAVE };

typedef struct series_state {
    int64_t since_ms, bucket_ms;
    size_t n;
    drift_bucket *b;
    uint32_t (*hist)[HIST_BINS];
    double *conf_sum, *router_sum;
} series_state;

static int hist_bin(int64_t ms) {
    const double x = HIST_PER_OCTAVE * log2(1.0 + (double)(ms > 0 ? ms : 0));
    return x >= HIST_BINS - 1 ? HIST_BINS - 1 : (int)x;
}

/* Nearest-rank percentile from the histogram: the geometric middle of the bin
 * the rank falls in. */
static double hist_percentile(const uint32_t *h, int64_t n, double pct) {
    if (n <= 0) return NAN;
    int64_t rank = (int64_t)ceil(pct / 100.0 * (double)n), seen = 0;
    if (rank < 1) rank = 1;
    for (int i = 0; i < HIST_BINS; i++) {
        seen += h[i];
        if (seen >= rank) return exp2((i + 0.5) / HIST_PER_OCTAVE) - 1;
    }
    return NAN;
}

static hearth_err visit(void *user, const gw_ledger_point *rows, size_t n) {
    series_state *s = user;
    for (size_t i = 0; i < n; i++) {
        const gw_ledger_point *p = &rows[i];
        const int64_t k = (p->time_ms - s->since_ms) / s->bucket_ms;
        if (k < 0 || (size_t)k >= s->n) continue;
        drift_bucket *b = &s->b[k];
        const bool ok = p->status < 400, local = !strcmp(p->tier, "local");
        b->requests++;
        b->local += ok && local;
        b->escalated += ok && !local;
        b->errors += !ok;
        b->degraded += p->degraded;
        b->prompt_tokens += p->prompt_tokens;
        b->completion_tokens += p->completion_tokens;
        b->cost_usd_micro += p->cost_usd_micro;
        b->cloud_only_cost_usd_micro += p->cloud_only_cost_usd_micro;
        if (ok && local) s->hist[k][hist_bin(p->latency_ms)]++;
        if (!isnan(p->conf_mean)) s->conf_sum[k] += p->conf_mean, b->n_conf++;
        if (!isnan(p->router_score)) s->router_sum[k] += p->router_score, b->n_router++;
    }
    return HEARTH_OK;
}

hearth_err drift_series(gw_ledger *l, int64_t since_ms, int64_t until_ms, int64_t bucket_ms,
                        drift_bucket **out, size_t *n) {
    if (bucket_ms <= 0 || until_ms <= since_ms)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "drift: series: an empty span or bucket");
    /* buckets start at multiples of bucket_ms, so hourly buckets start on the hour */
    since_ms -= ((since_ms % bucket_ms) + bucket_ms) % bucket_ms;
    const int64_t count = (until_ms - since_ms + bucket_ms - 1) / bucket_ms;
    if (count > DRIFT_MAX_BUCKETS)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "drift: series: %lld buckets; at most %d (use wider buckets or a shorter "
                       "span)",
                       (long long)count, DRIFT_MAX_BUCKETS);
    series_state s = {.since_ms = since_ms, .bucket_ms = bucket_ms, .n = (size_t)count};
    s.b = calloc(s.n, sizeof *s.b);
    s.hist = calloc(s.n, sizeof *s.hist);
    s.conf_sum = calloc(s.n, sizeof *s.conf_sum);
    s.router_sum = calloc(s.n, sizeof *s.router_sum);
    hearth_err err = HEARTH_OK;
    if (!s.b || !s.hist || !s.conf_sum || !s.router_sum)
        err = hr_fail(HEARTH_ERR_NOMEM, "drift: out of memory");
    if (!err) err = gw_ledger_scan(l, since_ms, until_ms, visit, &s);
    for (size_t k = 0; k < s.n && !err; k++) {
        drift_bucket *b = &s.b[k];
        b->start_ms = since_ms + (int64_t)k * bucket_ms;
        b->local_p50_ms = hist_percentile(s.hist[k], b->local, 50);
        b->local_p95_ms = hist_percentile(s.hist[k], b->local, 95);
        b->conf_mean = b->n_conf ? s.conf_sum[k] / (double)b->n_conf : NAN;
        b->router_score = b->n_router ? s.router_sum[k] / (double)b->n_router : NAN;
    }
    free(s.hist);
    free(s.conf_sum);
    free(s.router_sum);
    if (err) {
        free(s.b);
        return err;
    }
    *out = s.b;
    *n = s.n;
    return HEARTH_OK;
}

static void add_number(cJSON *o, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

char *drift_series_json(const drift_bucket *b, size_t n, int64_t bucket_ms) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "bucket_ms", (double)bucket_ms);
    cJSON *arr = cJSON_AddArrayToObject(o, "buckets");
    for (size_t k = 0; k < n && arr; k++) {
        cJSON *j = cJSON_CreateObject();
        if (!j) break;
        cJSON_AddItemToArray(arr, j);
        cJSON_AddNumberToObject(j, "start_ms", (double)b[k].start_ms);
        cJSON_AddNumberToObject(j, "requests", (double)b[k].requests);
        cJSON_AddNumberToObject(j, "local", (double)b[k].local);
        cJSON_AddNumberToObject(j, "escalated", (double)b[k].escalated);
        cJSON_AddNumberToObject(j, "errors", (double)b[k].errors);
        cJSON_AddNumberToObject(j, "degraded", (double)b[k].degraded);
        cJSON_AddNumberToObject(j, "prompt_tokens", (double)b[k].prompt_tokens);
        cJSON_AddNumberToObject(j, "completion_tokens", (double)b[k].completion_tokens);
        cJSON_AddNumberToObject(j, "cost_usd", (double)b[k].cost_usd_micro / 1e6);
        cJSON_AddNumberToObject(j, "cloud_only_cost_usd",
                                (double)b[k].cloud_only_cost_usd_micro / 1e6);
        add_number(j, "local_p50_ms", b[k].local_p50_ms);
        add_number(j, "local_p95_ms", b[k].local_p95_ms);
        add_number(j, "conf_mean", b[k].conf_mean);
        add_number(j, "router_score", b[k].router_score);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *drift_series_text(const drift_bucket *b, size_t n) {
    gw_buf out = {0};
    gw_buf_printf(&out, "%-20s %8s %7s %9s %6s %8s %10s %10s %10s %9s %8s\n", "start (UTC)",
                  "requests", "local", "escalated", "errors", "degraded", "cost $", "p50 ms",
                  "p95 ms", "conf", "router");
    for (size_t k = 0; k < n; k++) {
        char t[32];
        gw_format_time(b[k].start_ms, t, sizeof t);
        gw_buf_printf(
            &out, "%-20s %8lld %7lld %9lld %6lld %8lld %10.6f %10.0f %10.0f %9.3f %8.3f\n", t,
            (long long)b[k].requests, (long long)b[k].local, (long long)b[k].escalated,
            (long long)b[k].errors, (long long)b[k].degraded, (double)b[k].cost_usd_micro / 1e6,
            b[k].local_p50_ms, b[k].local_p95_ms, b[k].conf_mean, b[k].router_score);
    }
    return gw_buf_take(&out, NULL);
}
