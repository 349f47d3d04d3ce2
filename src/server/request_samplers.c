/*
 * request_samplers.c - the request fields of llama.cpp's other samplers, as
 * llama-server reads them from a body (/completion, and its OpenAI routes):
 *
 *   ignore_eos (boolean), typical_p [0, 1], top_n_sigma (<= 0: off),
 *   xtc_probability [0, 1], xtc_threshold [0, 1], mirostat 0/1/2,
 *   mirostat_tau >= 0, mirostat_eta >= 0, dry_multiplier >= 0, dry_base
 *   (below 1: the default 1.75, as llama-server replaces it),
 *   dry_allowed_length >= 0, dry_penalty_last_n >= -1 (-1: the context),
 *   dry_sequence_breakers (a non-empty array of 1 to 64 strings of 1 to 40
 *   bytes; llama-server cuts longer ones, Hearth refuses them), min_keep >= 0
 *   (an integer), dynatemp_range and dynatemp_exponent (numbers), samplers:
 *   the chain's order, an array of at most 32 of llama.cpp's sampler names
 *   or a string of their letters (llama-server's two forms; [] or "": no
 *   stage at all). llama-server skips a name it does not know; Hearth
 *   refuses it, and llama.cpp's infill and adaptive_p, with a 400 naming
 *   samplers[i].
 *
 * A value of the wrong type or out of range is a 400 naming the field;
 * absent or null leaves the default (off). The breakers are kept in one
 * block (the pointers, then the strings) that the request, and each job
 * made from it, owns: srv_breakers_own. /props reports them under the same
 * names (srv_samplers_props).
 */
#include "request_impl.h"

#include "core/core.h"
#include "sampling/sampling.h"

#include <cjson/cJSON.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BREAKERS_MAX = 64, BREAKER_BYTES_MAX = 40 };

bool srv_breakers_own(hearth_sampling *sp, void **block) {
    *block = NULL;
    if (!sp->dry_sequence_breakers) return true;
    const size_t n = sp->n_dry_sequence_breakers;
    size_t bytes = (n + 1) * sizeof(char *);
    // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): the n breakers are strings
    for (size_t i = 0; i < n; i++) bytes += strlen(sp->dry_sequence_breakers[i]) + 1;
    char **ptrs = malloc(bytes);
    if (!ptrs) return false;
    char *text = (char *)(ptrs + n + 1);
    for (size_t i = 0; i < n; i++) {
        const size_t len = strlen(sp->dry_sequence_breakers[i]) + 1;
        memcpy(text, sp->dry_sequence_breakers[i], len);
        ptrs[i] = text;
        text += len;
    }
    ptrs[n] = NULL;
    sp->dry_sequence_breakers = (const char *const *)ptrs;
    *block = ptrs;
    return true;
}

static bool parse_breakers(srv_error *e, const cJSON *v, srv_request *r) {
    const char *name = "dry_sequence_breakers";
    const int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > BREAKERS_MAX)
        return srv_fail(e, 400, name, NULL, "'%s' must be an array of 1 to %d strings", name,
                        BREAKERS_MAX);
    const char *strs[BREAKERS_MAX];
    int i = 0;
    for (const cJSON *s = v->child; s; s = s->next, i++) {
        size_t len = cJSON_IsString(s) ? strlen(s->valuestring) : 0, bad;
        if (len < 1 || len > BREAKER_BYTES_MAX || !hr_utf8_valid(s->valuestring, len, &bad)) {
            char item[48];
            snprintf(item, sizeof item, "%s[%d]", name, i);
            return srv_fail(e, 400, item, NULL, "'%s' must be a UTF-8 string of 1 to %d bytes",
                            item, BREAKER_BYTES_MAX);
        }
        strs[i] = s->valuestring;
    }
    r->sampling.dry_sequence_breakers = strs;
    r->sampling.n_dry_sequence_breakers = (size_t)n;
    if (!srv_breakers_own(&r->sampling, &r->dry_breakers)) {
        r->sampling.dry_sequence_breakers = NULL;
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    }
    return true;
}

/* One number: its range, and whether it must be whole (then it goes to an
 * int32 field, else to a float one); p: its srv_param, in fields' order. */
typedef struct num_field {
    const char *name;
    double lo, hi;
    float *f;
    int32_t *i;
} num_field;

/* The fields of s, in srv_param's order from SRV_P_TYPICAL_P. */
static void sampler_fields(hearth_sampling *s, num_field out[SRV_N_PARAMS - SRV_P_TYPICAL_P]) {
    const num_field fields[] = {
        {"typical_p", 0, 1, &s->typical_p, NULL},
        {"top_n_sigma", -1e9, 1e9, &s->top_n_sigma, NULL},
        {"xtc_probability", 0, 1, &s->xtc_probability, NULL},
        {"xtc_threshold", 0, 1, &s->xtc_threshold, NULL},
        {"mirostat", 0, 2, NULL, &s->mirostat},
        {"mirostat_tau", 0, 1e6, &s->mirostat_tau, NULL},
        {"mirostat_eta", 0, 1e6, &s->mirostat_eta, NULL},
        {"dry_multiplier", 0, 1e6, &s->dry_multiplier, NULL},
        {"dry_base", -1e6, 1e6, &s->dry_base, NULL},
        {"dry_allowed_length", 0, INT_MAX, NULL, &s->dry_allowed_length},
        {"dry_penalty_last_n", -1, INT_MAX, NULL, &s->dry_penalty_last_n},
        {"min_keep", 0, INT_MAX, NULL, &s->min_keep},
        {"dynatemp_range", -1e9, 1e9, &s->dynatemp_range, NULL},
        {"dynatemp_exponent", -1e9, 1e9, &s->dynatemp_exponent, NULL},
    };
    _Static_assert(sizeof fields / sizeof *fields == SRV_N_PARAMS - SRV_P_TYPICAL_P,
                   "a field for each srv_param of the samplers");
    _Static_assert(SRV_N_PARAMS <= 32, "srv_request.given has a bit for each srv_param");
    memcpy(out, fields, sizeof fields);
}

void srv_samplers_apply(hearth_sampling *sp, unsigned use, const double *value) {
    num_field f[SRV_N_PARAMS - SRV_P_TYPICAL_P];
    sampler_fields(sp, f);
    for (int p = SRV_P_TYPICAL_P; p < SRV_N_PARAMS; p++) {
        if (!(use & SRV_GIVEN(p))) continue;
        const num_field *x = &f[p - SRV_P_TYPICAL_P];
        if (x->i)
            *x->i = (int32_t)value[p];
        else
            *x->f = (float)value[p];
    }
}

static bool read_number(srv_error *e, const cJSON *root, const num_field *f) {
    const cJSON *v = srv_req_field(root, f->name);
    if (!v) return true;
    const double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !isfinite(d) || (f->i && d != floor(d)))
        return srv_req_bad_type(e, f->name, f->i ? "an integer" : "a number");
    if (d < f->lo || d > f->hi)
        return srv_fail(e, 400, f->name, NULL, "'%s' must be between %g and %g (got %g)", f->name,
                        f->lo, f->hi, d);
    if (f->i)
        *f->i = (int32_t)d;
    else
        *f->f = (float)d;
    return true;
}

bool srv_sampler_order(const cJSON *v, hearth_sampling *sp, char where[16], char *msg, size_t cap) {
    where[0] = '\0';
    const bool letters = cJSON_IsString(v);
    const int n = letters            ? (int)strlen(v->valuestring)
                  : cJSON_IsArray(v) ? cJSON_GetArraySize(v)
                                     : -1;
    if (n < 0) {
        snprintf(msg, cap, "must be an array of sampler names or a string of their letters");
        return false;
    }
    if (n > HEARTH_SAMPLERS_MAX) {
        snprintf(msg, cap, "lists %d samplers (at most %d)", n, HEARTH_SAMPLERS_MAX);
        return false;
    }
    const cJSON *item = letters ? NULL : v->child;
    for (int i = 0; i < n; i++, item = item ? item->next : NULL) {
        if (letters) { /* llama-server names the field; the message, the letter */
            const int st = smp_stage_parse(v->valuestring + i, 1, true, msg, cap);
            if (!st) return false;
            sp->samplers[i] = (hearth_sampler_stage)st;
            continue;
        }
        snprintf(where, 16, "[%d]", i);
        if (!cJSON_IsString(item)) {
            snprintf(msg, cap, "must be a string (a sampler's name)");
            return false;
        }
        const int st =
            smp_stage_parse(item->valuestring, strlen(item->valuestring), false, msg, cap);
        if (!st) return false;
        sp->samplers[i] = (hearth_sampler_stage)st;
    }
    where[0] = '\0';
    sp->n_samplers = n > 0 ? n : HEARTH_SAMPLERS_NONE;
    return true;
}

bool srv_parse_samplers(srv_error *e, const cJSON *root, srv_request *r) {
    hearth_sampling *s = &r->sampling;
    num_field fields[SRV_N_PARAMS - SRV_P_TYPICAL_P];
    sampler_fields(s, fields);
    for (int p = SRV_P_TYPICAL_P; p < SRV_N_PARAMS; p++) {
        const num_field *f = &fields[p - SRV_P_TYPICAL_P];
        if (!read_number(e, root, f)) return false;
        if (srv_req_field(root, f->name)) r->given |= SRV_GIVEN(p); /* over a model's */
    }
    if (s->dry_base < 1.0f) s->dry_base = hearth_sampling_default_params().dry_base;
    const cJSON *v = srv_req_field(root, "ignore_eos");
    if (v && !cJSON_IsBool(v)) return srv_req_bad_type(e, "ignore_eos", "a boolean");
    if (v) s->ignore_eos = cJSON_IsTrue(v);
    v = srv_req_field(root, "samplers");
    if (v) {
        char where[16], msg[160], field[32];
        if (!srv_sampler_order(v, s, where, msg, sizeof msg)) {
            snprintf(field, sizeof field, "samplers%s", where);
            return srv_fail(e, 400, field, NULL, "'%s' %s", field, msg);
        }
        r->given |= SRV_GIVEN(SRV_P_SAMPLERS);
    }
    v = srv_req_field(root, "dry_sequence_breakers");
    return !v || parse_breakers(e, v, r);
}

bool srv_samplers_props(cJSON *p, const hearth_sampling *s) {
    bool ok = cJSON_AddNumberToObject(p, "typical_p", s->typical_p) &&
              cJSON_AddNumberToObject(p, "top_n_sigma", s->top_n_sigma) &&
              cJSON_AddNumberToObject(p, "xtc_probability", s->xtc_probability) &&
              cJSON_AddNumberToObject(p, "xtc_threshold", s->xtc_threshold) &&
              cJSON_AddNumberToObject(p, "mirostat", s->mirostat) &&
              cJSON_AddNumberToObject(p, "mirostat_tau", s->mirostat_tau) &&
              cJSON_AddNumberToObject(p, "mirostat_eta", s->mirostat_eta) &&
              cJSON_AddNumberToObject(p, "dry_multiplier", s->dry_multiplier) &&
              cJSON_AddNumberToObject(p, "dry_base", s->dry_base) &&
              cJSON_AddNumberToObject(p, "dry_allowed_length", s->dry_allowed_length) &&
              cJSON_AddNumberToObject(p, "dry_penalty_last_n", s->dry_penalty_last_n) &&
              cJSON_AddBoolToObject(p, "ignore_eos", s->ignore_eos) &&
              cJSON_AddNumberToObject(p, "min_keep", s->min_keep) &&
              cJSON_AddNumberToObject(p, "dynatemp_range", s->dynatemp_range) &&
              cJSON_AddNumberToObject(p, "dynatemp_exponent", s->dynatemp_exponent);
    /* the chain in use under llama.cpp's canonical names, as llama-server's */
    cJSON *chain = ok ? cJSON_AddArrayToObject(p, "samplers") : NULL;
    const uint8_t *def;
    const size_t n_def = smp_default_stages(&def);
    const size_t n_chain = s->n_samplers == 0  ? n_def
                           : s->n_samplers > 0 ? (size_t)s->n_samplers
                                               : 0;
    for (size_t i = 0; chain && i < n_chain; i++)
        cJSON_AddItemToArray(chain, cJSON_CreateString(smp_stage_name(
                                        s->n_samplers == 0 ? def[i] : (int)s->samplers[i])));
    ok = chain != NULL;
    cJSON *brk = ok ? cJSON_AddArrayToObject(p, "dry_sequence_breakers") : NULL;
    static const char *const defaults[] = {"\n", ":", "\"", "*"};
    const char *const *b = s->dry_sequence_breakers ? s->dry_sequence_breakers : defaults;
    const size_t n = s->dry_sequence_breakers ? s->n_dry_sequence_breakers : 4;
    for (size_t i = 0; brk && i < n; i++) cJSON_AddItemToArray(brk, cJSON_CreateString(b[i]));
    return brk != NULL;
}
