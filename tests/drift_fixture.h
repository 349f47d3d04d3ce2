/*
 * drift_fixture.h - traffic for the drift tests: ledger rows drawn from
 * known distributions, so a test knows what a report must find.
 */
#ifndef HEARTH_TEST_DRIFT_FIXTURE_H
#define HEARTH_TEST_DRIFT_FIXTURE_H

#include "test.h"

#include "drift/drift.h"

enum { HOUR = 3600 * 1000, DAY = 24 * HOUR };

static inline double normal(unsigned long long *s) { /* Box-Muller */
    double u = ((double)(test_rand_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(test_rand_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(2 * 3.14159265358979323846 * v);
}

typedef struct traffic {
    int n;
    double conf_mu, escalate, router_mu;
    int prompt_lo, prompt_hi;
    int64_t latency_lo, latency_hi;
} traffic;

/* n requests a day: 20 % escalated, confidence around -0.6, prompts of 20 to
 * 400 tokens, local answers in 100 to 900 ms. */
static inline traffic traffic_default(int n) {
    return (traffic){.n = n,
                     .conf_mu = -0.6,
                     .escalate = 0.2,
                     .router_mu = 0.3,
                     .prompt_lo = 20,
                     .prompt_hi = 400,
                     .latency_lo = 100,
                     .latency_hi = 900};
}

/* n requests spread over [t0, t0 + span): a share escalate escalated, the
 * rest answered locally and confidence-checked. */
static inline void write_traffic(gw_ledger *l, int64_t t0, int64_t span, const traffic *t,
                                 unsigned long long *s, double *conf_sum, int64_t *n_conf) {
    for (int i = 0; i < t->n; i++) {
        gw_ledger_row r = gw_ledger_row_init();
        r.time_ms = t0 + (int64_t)(test_rand_u64(s) % (unsigned long long)span);
        const bool esc = (double)(test_rand_u64(s) >> 11) / 9007199254740992.0 < t->escalate;
        r.route = esc ? GW_ROUTE_ESCALATED : GW_ROUTE_LOCAL;
        r.tier = esc ? "cloud" : "local";
        r.status = 200;
        r.prompt_tokens =
            t->prompt_lo + (int)(test_rand_u64(s) % (unsigned)(t->prompt_hi - t->prompt_lo + 1));
        r.completion_tokens = 20 + (int)(test_rand_u64(s) % 50);
        r.latency_ms =
            t->latency_lo +
            (int64_t)(test_rand_u64(s) % (unsigned long long)(t->latency_hi - t->latency_lo + 1));
        r.router_score = t->router_mu + 0.1 * normal(s);
        if (!esc) {
            r.conf_mean = t->conf_mu + 0.2 * normal(s);
            r.conf_min = r.conf_mean - 1.5;
            if (conf_sum) *conf_sum += r.conf_mean, (*n_conf)++;
        }
        REQUIRE(gw_ledger_add(l, &r, NULL) == HEARTH_OK);
    }
}

#endif
