/*
 * model_params.c - a model's generation defaults: the "parameters" of its
 * --models-file entry, as a Modelfile's PARAMETER lines give them to ollama
 * and a preset to llama-server:
 *
 *   "parameters": {"temperature": 0.7, "top_k": 40, "top_p": 0.9,
 *                  "min_p": 0.05, "repeat_penalty": 1.1, "repeat_last_n": 64,
 *                  "presence_penalty": 0, "frequency_penalty": 0,
 *                  "seed": 42, "stop": ["<|im_end|>"], "max_tokens": 256}
 *
 * (num_predict and n_predict are max_tokens under ollama's and
 * llama-server's names), and llama.cpp's other samplers under their request
 * names: typical_p, top_n_sigma, xtc_probability, xtc_threshold, mirostat,
 * mirostat_tau, mirostat_eta, dry_multiplier, dry_base (>= 1),
 * dry_allowed_length, dry_penalty_last_n (not dry_sequence_breakers),
 * min_keep, dynatemp_range, dynatemp_exponent and samplers (the chain's
 * order: names or letters, as a request gives it). Each applies where a request leaves its setting
 * out, whatever API the request came by: a request's own value always wins,
 * and a model's value wins over the API's own default (ollama's temperature
 * 0.8, llama-server's top_k 40, OpenAI's 16 tokens of a completion), as
 * ollama's Modelfile values win over its defaults.
 *
 * They are applied in one place, srv_model_settings, when a local
 * generation is built (srv_job_for) and when /props reports what a request
 * gets; the parsed request itself keeps what the client said, so that a
 * remote tier of the gateway is never sent a local model's defaults as if
 * the client had asked for them.
 */
#include "server.h"

#include "core/core.h"
#include "sampling/sampling.h"

#include <cjson/cJSON.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The settings: our name (a request's), ollama's (for /api/show), the range
 * a request may give (request.c's; seed and max_tokens also take -1:
 * random, and until the context is full), integers or not. */
static const struct {
    const char *name, *ollama;
    double lo, hi;
    bool integer;
} params[SRV_N_PARAMS] = {
    [SRV_P_TEMPERATURE] = {"temperature", "temperature", 0, 2, false},
    [SRV_P_TOP_K] = {"top_k", "top_k", 0, INT_MAX, true},
    [SRV_P_TOP_P] = {"top_p", "top_p", 0, 1, false},
    [SRV_P_MIN_P] = {"min_p", "min_p", 0, 1, false},
    [SRV_P_REPEAT_PENALTY] = {"repeat_penalty", "repeat_penalty", 0, 10, false},
    [SRV_P_REPEAT_LAST_N] = {"repeat_last_n", "repeat_last_n", -1, 1e9, true},
    [SRV_P_PRESENCE_PENALTY] = {"presence_penalty", "presence_penalty", -2, 2, false},
    [SRV_P_FREQUENCY_PENALTY] = {"frequency_penalty", "frequency_penalty", -2, 2, false},
    [SRV_P_SEED] = {"seed", "seed", -1, 9007199254740992.0, true},
    [SRV_P_STOP] = {"stop", "stop", 0, 0, false},
    [SRV_P_MAX_TOKENS] = {"max_tokens", "num_predict", -1, INT_MAX, true},
    [SRV_P_SAMPLERS] = {"samplers", "samplers", 0, 0, false},
    /* llama.cpp's other samplers (request_samplers.c's ranges; dry_base >= 1 here) */
    [SRV_P_TYPICAL_P] = {"typical_p", "typical_p", 0, 1, false},
    [SRV_P_TOP_N_SIGMA] = {"top_n_sigma", "top_n_sigma", -1e9, 1e9, false},
    [SRV_P_XTC_PROBABILITY] = {"xtc_probability", "xtc_probability", 0, 1, false},
    [SRV_P_XTC_THRESHOLD] = {"xtc_threshold", "xtc_threshold", 0, 1, false},
    [SRV_P_MIROSTAT] = {"mirostat", "mirostat", 0, 2, true},
    [SRV_P_MIROSTAT_TAU] = {"mirostat_tau", "mirostat_tau", 0, 1e6, false},
    [SRV_P_MIROSTAT_ETA] = {"mirostat_eta", "mirostat_eta", 0, 1e6, false},
    [SRV_P_DRY_MULTIPLIER] = {"dry_multiplier", "dry_multiplier", 0, 1e6, false},
    [SRV_P_DRY_BASE] = {"dry_base", "dry_base", 1, 1e6, false},
    [SRV_P_DRY_ALLOWED_LENGTH] = {"dry_allowed_length", "dry_allowed_length", 0, INT_MAX, true},
    [SRV_P_DRY_PENALTY_LAST_N] = {"dry_penalty_last_n", "dry_penalty_last_n", -1, INT_MAX, true},
    [SRV_P_MIN_KEEP] = {"min_keep", "min_keep", 0, INT_MAX, true},
    [SRV_P_DYNATEMP_RANGE] = {"dynatemp_range", "dynatemp_range", -1e9, 1e9, false},
    [SRV_P_DYNATEMP_EXPONENT] = {"dynatemp_exponent", "dynatemp_exponent", -1e9, 1e9, false},
};

/* Other names of a setting: ollama's and llama-server's. */
static const struct {
    const char *name;
    srv_param p;
} aliases[] = {{"num_predict", SRV_P_MAX_TOKENS}, {"n_predict", SRV_P_MAX_TOKENS}};

static int find(const char *key) {
    for (int p = 0; p < SRV_N_PARAMS; p++)
        if (!strcmp(key, params[p].name)) return p;
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (!strcmp(key, aliases[i].name)) return (int)aliases[i].p;
    return -1;
}

/* stop: a string or an array of strings, as a request's. */
static hearth_err parse_stop(srv_model *m, const cJSON *v, int i) {
    const cJSON *one = cJSON_IsString(v) ? v : NULL;
    if (!one && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > SRV_MAX_STOP))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "models[%d].parameters.stop must be a string or an array of at most %d "
                       "strings",
                       i, SRV_MAX_STOP);
    int k = 0;
    for (const cJSON *s = one ? one : v->child; s; s = one ? NULL : s->next, k++) {
        size_t bad;
        if (!cJSON_IsString(s) || strlen(s->valuestring) > SRV_MAX_STOP_BYTES ||
            !hr_utf8_valid(s->valuestring, strlen(s->valuestring), &bad))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "models[%d].parameters.stop[%d] must be a UTF-8 string of at most %d "
                           "bytes",
                           i, k, SRV_MAX_STOP_BYTES);
        if (s->valuestring[0]) m->params.stop[m->params.n_stop++] = s->valuestring; /* "": none */
    }
    return HEARTH_OK;
}

/* samplers: as a request's (srv_sampler_order). */
static hearth_err parse_samplers(srv_model *m, const cJSON *v, int i) {
    hearth_sampling sp = hearth_sampling_default_params();
    char where[16], msg[160];
    if (!srv_sampler_order(v, &sp, where, msg, sizeof msg))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].parameters.samplers%s %s", i, where,
                       msg);
    memcpy(m->params.samplers, sp.samplers, sizeof sp.samplers);
    m->params.n_samplers = sp.n_samplers;
    return HEARTH_OK;
}

/* What a setting's special values mean, for its range error. */
static const char *hint(int p) {
    if (p == SRV_P_MAX_TOKENS) return " but 0 (-1: until the context is full)";
    if (p == SRV_P_SEED) return " (-1: random)";
    if (p == SRV_P_REPEAT_LAST_N || p == SRV_P_DRY_PENALTY_LAST_N) return " (-1: the context)";
    return "";
}

hearth_err srv_model_params_parse(srv_model *m, const cJSON *obj, int i) {
    if (!cJSON_IsObject(obj))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "models[%d].parameters must be an object (temperature, top_k, ...)", i);
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        const int p = find(v->string);
        if (p < 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "models[%d].parameters.%s is not a setting (temperature, top_k, top_p, "
                           "min_p, repeat_penalty, repeat_last_n, presence_penalty, "
                           "frequency_penalty, seed, stop, max_tokens or num_predict; typical_p, "
                           "top_n_sigma, xtc_*, mirostat*, dry_* but dry_sequence_breakers, "
                           "min_keep, dynatemp_*, samplers)",
                           i, v->string);
        if (m->params.set & SRV_GIVEN(p))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "models[%d].parameters.%s: %s is given twice (num_predict and "
                           "n_predict are max_tokens)",
                           i, v->string, params[p].name);
        m->params.set |= SRV_GIVEN(p);
        if (p == SRV_P_STOP || p == SRV_P_SAMPLERS) {
            const hearth_err err = p == SRV_P_STOP ? parse_stop(m, v, i) : parse_samplers(m, v, i);
            if (err) return err;
            continue;
        }
        const double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        /* the range first (as models_file.c's integers): NAN fails it too */
        if (!(d >= params[p].lo && d <= params[p].hi) || (params[p].integer && d != floor(d)) ||
            (p == SRV_P_MAX_TOKENS && d == 0))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "models[%d].parameters.%s must be %s in %.17g..%.17g%s", i, v->string,
                           params[p].integer ? "an integer" : "a number", params[p].lo,
                           params[p].hi, hint(p));
        m->params.value[p] = d;
    }
    return HEARTH_OK;
}

void srv_model_settings(const srv_model *m, const srv_request *r, srv_settings *out) {
    out->sampling = r->sampling;
    out->max_tokens = srv_max_tokens(r);
    out->stop = (const char *const *)r->stop;
    out->n_stop = r->n_stop;
    const unsigned use = m->params.set & ~r->given;
    const double *v = m->params.value;
    hearth_sampling *sp = &out->sampling;
    if (use & SRV_GIVEN(SRV_P_TEMPERATURE)) sp->temperature = (float)v[SRV_P_TEMPERATURE];
    if (use & SRV_GIVEN(SRV_P_TOP_K)) sp->top_k = (int32_t)v[SRV_P_TOP_K];
    if (use & SRV_GIVEN(SRV_P_TOP_P)) sp->top_p = (float)v[SRV_P_TOP_P];
    if (use & SRV_GIVEN(SRV_P_MIN_P)) sp->min_p = (float)v[SRV_P_MIN_P];
    if (use & SRV_GIVEN(SRV_P_REPEAT_PENALTY)) sp->repeat_penalty = (float)v[SRV_P_REPEAT_PENALTY];
    if (use & SRV_GIVEN(SRV_P_REPEAT_LAST_N))
        sp->penalty_last_n = v[SRV_P_REPEAT_LAST_N] < 0 ? srv_sched_n_ctx(m->sched)
                                                        : (int32_t)v[SRV_P_REPEAT_LAST_N];
    if (use & SRV_GIVEN(SRV_P_PRESENCE_PENALTY))
        sp->presence_penalty = (float)v[SRV_P_PRESENCE_PENALTY];
    if (use & SRV_GIVEN(SRV_P_FREQUENCY_PENALTY))
        sp->frequency_penalty = (float)v[SRV_P_FREQUENCY_PENALTY];
    if (use & SRV_GIVEN(SRV_P_SEED)) /* 2^53 at most: never the reserved value */
        sp->seed = v[SRV_P_SEED] < 0 ? HEARTH_SEED_RANDOM : (uint64_t)v[SRV_P_SEED];
    if (use & SRV_GIVEN(SRV_P_MAX_TOKENS))
        out->max_tokens = v[SRV_P_MAX_TOKENS] < 0 ? 0 : (int)v[SRV_P_MAX_TOKENS];
    if (use & SRV_GIVEN(SRV_P_STOP)) {
        out->stop = m->params.stop;
        out->n_stop = m->params.n_stop;
    }
    if (use & SRV_GIVEN(SRV_P_SAMPLERS)) {
        memcpy(sp->samplers, m->params.samplers, sizeof sp->samplers);
        sp->n_samplers = m->params.n_samplers;
    }
    srv_samplers_apply(sp, use, v);
    /* DRY's window of -1 is the slot's context, as repeat_last_n's */
    if (sp->dry_penalty_last_n < 0) sp->dry_penalty_last_n = srv_sched_n_ctx(m->sched);
}

/* v as Go's %#v writes a float64 that ollama read from JSON: the shortest
 * decimal that reads back as v. */
static void shortest(double v, char *out, size_t cap) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* One "name value" line: the name padded to 30 columns, as ollama's show. */
static bool add_line(gw_buf *b, const char *name, const char *value) {
    return gw_buf_printf(b, "%s%-30s %s", b->len ? "\n" : "", name, value) == HEARTH_OK;
}

char *srv_model_params_text(const srv_model *m) {
    gw_buf b = {0};
    bool ok = true;
    for (int p = 0; ok && p < SRV_N_PARAMS; p++) {
        if (!(m->params.set & SRV_GIVEN(p))) continue;
        if (p == SRV_P_SAMPLERS) { /* llama.cpp's --samplers form: "top_k;temperature" */
            char names[HEARTH_SAMPLERS_MAX * 16] = "";
            size_t at = 0;
            for (int32_t k = 0; k < m->params.n_samplers; k++)
                at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", k ? ";" : "",
                                       smp_stage_name((int)m->params.samplers[k]));
            ok = add_line(&b, params[p].ollama, m->params.n_samplers > 0 ? names : "\"\"");
            continue;
        }
        if (p != SRV_P_STOP) {
            char num[64];
            shortest(m->params.value[p], num, sizeof num);
            ok = add_line(&b, params[p].ollama, num);
            continue;
        }
        for (int k = 0; ok && k < m->params.n_stop; k++) {
            cJSON *s = cJSON_CreateString(m->params.stop[k]); /* quoted and escaped */
            char *q = s ? cJSON_PrintUnformatted(s) : NULL;
            ok = q && add_line(&b, params[p].ollama, q);
            free(q);
            cJSON_Delete(s);
        }
    }
    if (!ok) {
        gw_buf_free(&b);
        return NULL;
    }
    return gw_buf_take(&b, NULL);
}
