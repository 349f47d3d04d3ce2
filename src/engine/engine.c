/*
 * engine.c - hearth_model_load/free: the model (weights bound to their
 * architecture) plus its tokenizer, and the text functions of the public API.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

hearth_model_params hearth_model_default_params(void) {
    return (hearth_model_params){.n_threads = 0};
}

hearth_err hearth_model_load(const char *path, const hearth_model_params *params,
                             hearth_model **out) {
    hearth_model_params p = params ? *params : hearth_model_default_params();
    hearth_model *m = NULL;
    hearth_err err = model_open(path, p.n_threads, &m);
    if (err) return err;
    /* A file without tokenizer metadata still evaluates token ids. */
    if (gguf_find(m->gguf, "tokenizer.ggml.model")) {
        tok_vocab *v = NULL;
        if ((err = tok_vocab_load(m->gguf, &v))) {
            model_close(m);
            return hr_wrap(err, "loading '%s': ", path);
        }
        m->vocab = v;
    }
    *out = m;
    return HEARTH_OK;
}

void hearth_model_free(hearth_model *m) {
    if (!m) return;
    tok_vocab_free(m->vocab);
    model_close(m);
}

const tok_vocab *engine_vocab(const hearth_model *m) {
    if (!m->vocab)
        hr_fail(HEARTH_ERR_UNSUPPORTED, "the model file has no tokenizer (tokenizer.ggml.*)");
    return m->vocab;
}

hearth_err hearth_tokenize(const hearth_model *m, const char *text, size_t len, bool add_special,
                           bool parse_special, int32_t *ids, size_t cap, size_t *n_out) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_UNSUPPORTED;
    return tok_encode(v, text, len, add_special, parse_special, ids, cap, n_out);
}

hearth_err hearth_detokenize(const hearth_model *m, const int32_t *ids, size_t n, bool special,
                             char *out, size_t cap, size_t *n_out) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_UNSUPPORTED;
    return tok_detokenize(v, ids, n, false, special, out, cap, n_out);
}

int32_t hearth_token_bos(const hearth_model *m) { return m->vocab ? tok_bos(m->vocab) : -1; }
int32_t hearth_token_eos(const hearth_model *m) { return m->vocab ? tok_eos(m->vocab) : -1; }
bool hearth_token_is_eog(const hearth_model *m, int32_t id) {
    return m->vocab && tok_is_eog(m->vocab, id);
}

/* ---- sampler wrappers --------------------------------------------------- */

hearth_sampling hearth_sampling_default_params(void) {
    smp_params d = smp_default_params();
    return (hearth_sampling){.temperature = d.temperature,
                             .top_k = d.top_k,
                             .top_p = d.top_p,
                             .min_p = d.min_p,
                             .penalty_last_n = d.penalty_last_n,
                             .repeat_penalty = d.repeat_penalty,
                             .frequency_penalty = d.frequency_penalty,
                             .presence_penalty = d.presence_penalty,
                             .seed = HEARTH_SEED_RANDOM};
}

hearth_err hearth_sampler_new(const hearth_model *m, const hearth_sampling *params,
                              hearth_sampler **out) {
    hearth_sampling p = params ? *params : hearth_sampling_default_params();
    smp_params sp = {.temperature = p.temperature,
                     .top_k = p.top_k,
                     .top_p = p.top_p,
                     .min_p = p.min_p,
                     .penalty_last_n = p.penalty_last_n < 0 ? m->hp.n_ctx_train : p.penalty_last_n,
                     .repeat_penalty = p.repeat_penalty,
                     .frequency_penalty = p.frequency_penalty,
                     .presence_penalty = p.presence_penalty,
                     .seed = p.seed == HEARTH_SEED_RANDOM ? SMP_SEED_RANDOM : p.seed};
    hearth_sampler *s = hr_calloc(1, sizeof *s);
    if (!s) return HEARTH_ERR_NOMEM;
    hearth_err err = smp_new(m->hp.n_vocab, &sp, &s->smp);
    if (err) {
        free(s);
        return err;
    }
    *out = s;
    return HEARTH_OK;
}

void hearth_sampler_free(hearth_sampler *s) {
    if (!s) return;
    smp_free(s->smp);
    free(s);
}

void hearth_sampler_reset(hearth_sampler *s) { smp_reset(s->smp); }
uint64_t hearth_sampler_seed(const hearth_sampler *s) { return smp_seed(s->smp); }
