/*
 * sampler_cases.h - settings of llama.cpp's other samplers as the server's
 * JSON fields, `hearth run`'s options and the library's hearth_sampling, for
 * the tests that check the three mean the same (test_server_samplers,
 * test_cli_samplers). Each is strong enough to change a 10-token sampled
 * text, but ignore_eos (nothing to ignore without an end-of-generation
 * token).
 */
#ifndef HEARTH_TESTS_SAMPLER_CASES_H
#define HEARTH_TESTS_SAMPLER_CASES_H

#include "hearth.h"

#include <stdbool.h>
#include <string.h>

typedef struct sampler_case {
    const char *name, *json, *cli;
    void (*set)(hearth_sampling *);
    bool may_keep_text;
} sampler_case;

static const char *const sampler_case_newline[] = {"\n"};

static inline void sc_typical(hearth_sampling *s) { s->typical_p = 0.3f; }
static inline void sc_sigma(hearth_sampling *s) { s->top_n_sigma = 0.5f; }
static inline void sc_xtc(hearth_sampling *s) {
    s->xtc_probability = 1.0f;
    s->xtc_threshold = 0.02f;
}
static inline void sc_miro1(hearth_sampling *s) {
    s->mirostat = 1;
    s->mirostat_tau = 1.0f;
}
static inline void sc_miro2(hearth_sampling *s) {
    s->mirostat = 2;
    s->mirostat_tau = 1.5f;
    s->mirostat_eta = 0.2f;
}
static inline void sc_dry(hearth_sampling *s) {
    s->dry_multiplier = 4.0f;
    s->dry_base = 2.0f;
    s->dry_allowed_length = 0;
    s->dry_penalty_last_n = -1;
    s->dry_sequence_breakers = sampler_case_newline;
    s->n_dry_sequence_breakers = 1;
}
static inline void sc_ignore_eos(hearth_sampling *s) { s->ignore_eos = true; }

static const sampler_case sampler_cases[] = {
    {"typical_p", "\"typical_p\":0.3", "--typical 0.3", sc_typical, false},
    {"top_n_sigma", "\"top_n_sigma\":0.5", "--top-n-sigma 0.5", sc_sigma, false},
    {"xtc", "\"xtc_probability\":1,\"xtc_threshold\":0.02",
     "--xtc-probability 1 --xtc-threshold 0.02", sc_xtc, false},
    {"mirostat 1", "\"mirostat\":1,\"mirostat_tau\":1", "--mirostat 1 --mirostat-ent 1", sc_miro1,
     false},
    {"mirostat 2", "\"mirostat\":2,\"mirostat_tau\":1.5,\"mirostat_eta\":0.2",
     "--mirostat 2 --mirostat-ent 1.5 --mirostat-lr 0.2", sc_miro2, false},
    {"dry",
     "\"dry_multiplier\":4,\"dry_base\":2,\"dry_allowed_length\":0,\"dry_penalty_last_n\":-1,"
     "\"dry_sequence_breakers\":[\"\\n\"]",
     "--dry-multiplier 4 --dry-base 2 --dry-allowed-length 0 --dry-penalty-last-n -1 "
     "--dry-sequence-breaker '\n'",
     sc_dry, false},
    {"ignore_eos", "\"ignore_eos\":true", "--ignore-eos", sc_ignore_eos, true},
};
enum { N_SAMPLER_CASES = sizeof sampler_cases / sizeof sampler_cases[0] };

static inline const sampler_case *sampler_case_named(const char *name) {
    for (int i = 0; i < N_SAMPLER_CASES; i++)
        if (!strcmp(sampler_cases[i].name, name)) return &sampler_cases[i];
    return NULL;
}

#endif
