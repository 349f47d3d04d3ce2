/*
 * sampler_order_cases.h - min_keep, dynamic temperature and the chain's
 * order (samplers) as the server's JSON fields, `hearth run`'s options and
 * the library's hearth_sampling, for the tests that check the three mean
 * the same (test_server_sampler_order, test_cli_samplers). order_case_base
 * names each case's base, the same settings without the one tested (-1:
 * none), whose 10-token sampled text it must change.
 */
#ifndef HEARTH_TESTS_SAMPLER_ORDER_CASES_H
#define HEARTH_TESTS_SAMPLER_ORDER_CASES_H

#include "sampler_cases.h"

static inline void oc_plain(hearth_sampling *s) { s->temperature = 1.0f; }
static inline void oc_min_p(hearth_sampling *s) {
    s->temperature = 1.0f;
    s->min_p = 0.3f;
}
static inline void oc_min_keep(hearth_sampling *s) {
    oc_min_p(s);
    s->min_keep = 30;
}
static inline void oc_dynatemp(hearth_sampling *s) {
    s->temperature = 1.0f;
    s->dynatemp_range = 0.9f;
    s->dynatemp_exponent = 0.5f;
}
static inline void oc_greedy(hearth_sampling *s) { s->temperature = 0.0f; }
static inline void oc_greedy_dynatemp(hearth_sampling *s) {
    s->temperature = 0.0f;
    s->dynatemp_range = 1.5f;
}
static inline void oc_hot(hearth_sampling *s) {
    oc_min_p(s);
    s->temperature = 2.0f;
}
static inline void oc_hot_reordered(hearth_sampling *s) {
    oc_hot(s);
    s->n_samplers = 2;
    s->samplers[0] = HEARTH_SAMPLER_STAGE_TEMPERATURE;
    s->samplers[1] = HEARTH_SAMPLER_STAGE_MIN_P;
}
static inline void oc_no_temperature(hearth_sampling *s) {
    s->temperature = 0.0f;
    s->n_samplers = 1;
    s->samplers[0] = HEARTH_SAMPLER_STAGE_TOP_K;
}

enum {
    OC_PLAIN,
    OC_MIN_P,
    OC_MIN_KEEP,
    OC_DYNATEMP,
    OC_GREEDY,
    OC_GREEDY_DYN,
    OC_HOT,
    OC_NAMES,
    OC_LETTERS,
    OC_NO_TEMP
};
static const sampler_case order_cases[] = {
    [OC_PLAIN] = {"plain", "\"temperature\":1", "--temp 1", oc_plain, false},
    [OC_MIN_P] = {"min_p", "\"temperature\":1,\"min_p\":0.3", "--temp 1 --min-p 0.3", oc_min_p,
                  false},
    [OC_MIN_KEEP] = {"min_keep", "\"temperature\":1,\"min_p\":0.3,\"min_keep\":30",
                     "--temp 1 --min-p 0.3 --min-keep 30", oc_min_keep, false},
    [OC_DYNATEMP] = {"dynatemp",
                     "\"temperature\":1,\"dynatemp_range\":0.9,\"dynatemp_exponent\":0.5",
                     "--temp 1 --dynatemp-range 0.9 --dynatemp-exp 0.5", oc_dynatemp, false},
    [OC_GREEDY] = {"greedy", "\"temperature\":0", "--temp 0", oc_greedy, false},
    [OC_GREEDY_DYN] = {"temperature 0, dynatemp", "\"temperature\":0,\"dynatemp_range\":1.5",
                       "--temp 0 --dynatemp-range 1.5", oc_greedy_dynatemp, false},
    [OC_HOT] = {"temperature 2, min_p", "\"temperature\":2,\"min_p\":0.3", "--temp 2 --min-p 0.3",
                oc_hot, false},
    [OC_NAMES] = {"samplers by name",
                  "\"temperature\":2,\"min_p\":0.3,\"samplers\":[\"temperature\",\"min_p\"]",
                  "--temp 2 --min-p 0.3 --samplers 'temperature;min_p'", oc_hot_reordered, false},
    [OC_LETTERS] = {"samplers by letter", "\"temperature\":2,\"min_p\":0.3,\"samplers\":\"tm\"",
                    "--temp 2 --min-p 0.3 --sampler-seq tm", oc_hot_reordered, false},
    [OC_NO_TEMP] = {"no temperature stage", "\"temperature\":0,\"samplers\":[\"top_k\"]",
                    "--temp 0 --samplers top_k", oc_no_temperature, false},
};
enum { N_ORDER_CASES = sizeof order_cases / sizeof order_cases[0] };
static const int order_case_base[N_ORDER_CASES] = {
    [OC_PLAIN] = -1,
    [OC_MIN_P] = OC_PLAIN,
    [OC_MIN_KEEP] = OC_MIN_P,
    [OC_DYNATEMP] = OC_PLAIN,
    [OC_GREEDY] = -1,
    [OC_GREEDY_DYN] = OC_GREEDY,
    [OC_HOT] = -1,
    [OC_NAMES] = OC_HOT,
    [OC_LETTERS] = OC_HOT,
    [OC_NO_TEMP] = OC_GREEDY,
};

#endif
