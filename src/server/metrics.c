/*
 * metrics.c - what GET /metrics reports, in Prometheus' text exposition
 * format (version 0.0.4): requests by route and status, prompt / cached /
 * generated tokens, batched decode steps (how many slots' tokens each
 * forward pass carried), queue depth and busy slots, and a histogram of the
 * latency of generation requests (arrival to last byte). ollama's
 * generation and embedding routes and llama.cpp's utility routes (api_util.c)
 * count apart; ollama's other /api/ routes are "other".
 */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const routes[] = {"/v1/chat/completions",
                                     "/v1/completions",
                                     "/v1/models",
                                     "/health",
                                     "/metrics",
                                     "/v1/embeddings",
                                     "/api/chat",
                                     "/api/generate",
                                     "/api/embed",
                                     "/api/embeddings",
                                     "/tokenize",
                                     "/detokenize",
                                     "/apply-template",
                                     "/props",
                                     "/models",
                                     "/models/load",
                                     "/models/unload",
                                     "/v1/messages",
                                     "/v1/responses",
                                     "other"};
_Static_assert(sizeof routes / sizeof routes[0] == SRV_N_ROUTES, "SRV_N_ROUTES: one per route");
static const int statuses[SRV_N_STATUSES] = {200, 400, 401, 404, 405, 408, 409,
                                             413, 429, 499, 500, 503, 504, 0};
static const double buckets_s[SRV_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                1,     2.5,  5,     10,   30,  60,   120};

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void srv_metrics_fini(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

int srv_metrics_route(const char *path) {
    if (!strcmp(path, "/v1/models") || !strncmp(path, "/v1/models/", 11)) return 2;
    for (int i = 0; i < SRV_N_ROUTES - 1; i++)
        if (!strcmp(path, routes[i])) return i;
    return SRV_N_ROUTES - 1;
}

static int status_index(int status) {
    for (int i = 0; i < SRV_N_STATUSES - 1; i++)
        if (statuses[i] == status) return i;
    return SRV_N_STATUSES - 1; /* any other status */
}

void srv_metrics_request(srv_metrics *m, int route, int status, double seconds, bool generation) {
    if (route < 0 || route >= SRV_N_ROUTES) route = SRV_N_ROUTES - 1;
    pthread_mutex_lock(&m->mu);
    m->requests[route][status_index(status)]++;
    if (generation) {
        for (int b = 0; b < SRV_N_BUCKETS; b++)
            if (seconds <= buckets_s[b]) {
                m->latency_buckets[b]++;
                break;
            }
        m->latency_count++;
        m->latency_sum_s += seconds;
    }
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, int prompt, int cached, int generated) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)(prompt > 0 ? prompt : 0);
    m->cached_tokens += (uint64_t)(cached > 0 ? cached : 0);
    m->generated_tokens += (uint64_t)(generated > 0 ? generated : 0);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_spec(srv_metrics *m, int drafted, int accepted) {
    pthread_mutex_lock(&m->mu);
    m->spec_drafted += (uint64_t)(drafted > 0 ? drafted : 0);
    m->spec_accepted += (uint64_t)(accepted > 0 ? accepted : 0);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_step(srv_metrics *m, int tokens) {
    pthread_mutex_lock(&m->mu);
    m->decode_steps++;
    m->decode_step_tokens += (uint64_t)(tokens > 0 ? tokens : 0);
    if (tokens > 0 && (uint64_t)tokens > m->decode_step_max) m->decode_step_max = (uint64_t)tokens;
    pthread_mutex_unlock(&m->mu);
}

typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *b, const char *fmt, ...) {
    if (!b->p) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        const int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        char *np = realloc(b->p, b->cap * 2 + (size_t)k);
        if (!np) {
            free(b->p);
            b->p = NULL;
            return;
        }
        b->p = np;
        b->cap = b->cap * 2 + (size_t)k;
    }
}

/* One metric without labels: its HELP and TYPE lines and its value. */
static void metric(text_buf *b, const char *name, const char *type, const char *help,
                   uint64_t value) {
    tb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
              (unsigned long long)value);
}

char *srv_metrics_text(srv_metrics *m, int queue_depth, int slots_busy, int slots_total) {
    text_buf b = {.p = malloc(4096), .cap = 4096};
    if (b.p) b.p[0] = '\0';
    pthread_mutex_lock(&m->mu);
    tb_printf(&b, "# HELP hearth_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE hearth_requests_total counter\n");
    for (int r = 0; r < SRV_N_ROUTES; r++)
        for (int s = 0; s < SRV_N_STATUSES; s++)
            if (m->requests[r][s]) {
                char st[16];
                if (statuses[s])
                    snprintf(st, sizeof st, "%d", statuses[s]);
                else
                    snprintf(st, sizeof st, "other");
                tb_printf(&b, "hearth_requests_total{route=\"%s\",status=\"%s\"} %llu\n", routes[r],
                          st, (unsigned long long)m->requests[r][s]);
            }
    metric(&b, "hearth_prompt_tokens_total", "counter", "Prompt tokens of generation requests.",
           m->prompt_tokens);
    metric(&b, "hearth_prompt_tokens_cached_total", "counter",
           "Prompt tokens reused from a slot's KV cache.", m->cached_tokens);
    metric(&b, "hearth_generated_tokens_total", "counter", "Tokens generated.",
           m->generated_tokens);
    metric(&b, "hearth_decode_steps_total", "counter",
           "Batched decode steps (one forward pass for the next token of every busy slot).",
           m->decode_steps);
    metric(&b, "hearth_decode_step_tokens_total", "counter", "Tokens decoded in those steps.",
           m->decode_step_tokens);
    metric(&b, "hearth_decode_step_tokens_max", "gauge", "Most tokens one step has decoded.",
           m->decode_step_max);
    metric(&b, "hearth_spec_drafted_tokens_total", "counter",
           "Tokens proposed by speculative decoding and verified.", m->spec_drafted);
    metric(&b, "hearth_spec_accepted_tokens_total", "counter", "Proposed tokens the sampler drew.",
           m->spec_accepted);
    tb_printf(&b,
              "# HELP hearth_request_duration_seconds Latency of generation requests, arrival to "
              "last byte.\n# TYPE hearth_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < SRV_N_BUCKETS; i++) {
        cum += m->latency_buckets[i];
        tb_printf(&b, "hearth_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets_s[i],
                  (unsigned long long)cum);
    }
    tb_printf(&b,
              "hearth_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
              "hearth_request_duration_seconds_sum %.6f\n"
              "hearth_request_duration_seconds_count %llu\n",
              (unsigned long long)m->latency_count, m->latency_sum_s,
              (unsigned long long)m->latency_count);
    pthread_mutex_unlock(&m->mu);
    metric(&b, "hearth_queue_depth", "gauge", "Requests waiting for a free slot.",
           (uint64_t)queue_depth);
    metric(&b, "hearth_slots_busy", "gauge", "Slots generating.", (uint64_t)slots_busy);
    metric(&b, "hearth_slots", "gauge", "Slots (--parallel).", (uint64_t)slots_total);
    return b.p;
}
