/*
 * engine.c - hearth_model_load/free: the model (weights bound to their
 * architecture) plus its tokenizer, and the text functions of the public API.
 */
#include "engine.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What the engine hangs on hearth_model.vocab: the tokenizer and, built the
 * first time a sampler asks for a constraint, the table of the tokens' bytes
 * that every constrained sampler of the model shares (a reference each). */
typedef struct engine_text {
    tok_vocab *tok;
    pthread_mutex_t mu; /* guards the creation of `bytes` */
    smp_vocab *bytes;
} engine_text;

hearth_model_params hearth_model_default_params(void) {
    return (hearth_model_params){.n_threads = 0};
}

hearth_err hearth_model_load(const char *path, const hearth_model_params *params,
                             hearth_model **out) {
    hearth_model_params p = params ? *params : hearth_model_default_params();
    hearth_model *m = NULL;
    if (p.n_loras < 0 || p.n_loras > MODEL_LORA_MAX || (p.n_loras > 0 && !p.loras))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "model: %d adapters (at most %d, with a list)",
                       p.n_loras, MODEL_LORA_MAX);
    /* HEARTH_NO_REPACK=1 does it for every command (A/B measurements) */
    const char *env = getenv("HEARTH_NO_REPACK");
    const bool no_repack = p.no_repack || (env && strcmp(env, "0") != 0 && *env);
    hearth_err err = model_open(path, &p, no_repack, &m);
    if (err) return err;
    for (int i = 0; i < p.n_loras && !err; i++)
        err = p.loras[i].path ? model_lora_add(m, p.loras[i].path, p.loras[i].scale)
                              : hr_fail(HEARTH_ERR_INVALID_ARG, "model: adapter %d has no path", i);
    if (err) {
        model_close(m);
        return err;
    }
    /* A file without tokenizer metadata still evaluates token ids. */
    if (gguf_find(m->gguf, "tokenizer.ggml.model")) {
        engine_text *t = hr_calloc(1, sizeof *t);
        if (!t || (err = tok_vocab_load(m->gguf, &t->tok))) {
            const bool allocated = t != NULL;
            free(t);
            model_close(m);
            return allocated ? hr_wrap(err, "loading '%s': ", path) : HEARTH_ERR_NOMEM;
        }
        pthread_mutex_init(&t->mu, NULL);
        m->vocab = t;
    }
    *out = m;
    return HEARTH_OK;
}

void hearth_model_free(hearth_model *m) {
    if (!m) return;
    engine_text *t = m->vocab;
    if (t) {
        tok_vocab_free(t->tok);
        smp_vocab_free(t->bytes); /* samplers still alive hold their own reference */
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
    model_close(m);
}

const tok_vocab *engine_vocab(const hearth_model *m) {
    const engine_text *t = m->vocab;
    if (!t) hr_fail(HEARTH_ERR_UNSUPPORTED, "the model file has no tokenizer (tokenizer.ggml.*)");
    return t ? t->tok : NULL;
}

hearth_err hearth_tokenize(const hearth_model *m, const char *text, size_t len, bool add_special,
                           bool parse_special, int32_t *ids, size_t cap, size_t *n_out) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_UNSUPPORTED;
    return tok_encode(v, text, len, add_special, parse_special, ids, cap, n_out);
}

/* A growing list of token ids. */
typedef struct id_list {
    int32_t *ids;
    size_t n, cap;
} id_list;

/* Room for `more` ids after the n in use. */
static hearth_err reserve(id_list *l, size_t more) {
    assert(l->n <= l->cap);
    if (l->cap - l->n >= more) return HEARTH_OK;
    size_t cap = l->cap ? 2 * l->cap : 256;
    if (cap < l->n + more) cap = l->n + more;
    int32_t *p = realloc(l->ids, cap * sizeof *p);
    if (!p) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    l->ids = p;
    l->cap = cap;
    return HEARTH_OK;
}

static hearth_err put_id(id_list *l, int32_t id) {
    const hearth_err err = reserve(l, 1);
    if (!err) l->ids[l->n++] = id;
    return err;
}

/* Appends text's tokens (no BOS/EOS; special text parsed or kept as text):
 * one pass with room for a token a byte (and a leading space a
 * SentencePiece vocabulary adds), a second only if the tokenizer says it
 * needs more. */
static hearth_err put_text(const tok_vocab *v, const char *text, size_t len, bool special,
                           id_list *l) {
    size_t need = len + 2;
    for (int pass = 0; pass < 2; pass++) {
        hearth_err err = reserve(l, need);
        size_t got = 0;
        if (!err)
            err = tok_encode(v, text, len, false, special, l->ids + l->n, l->cap - l->n, &got);
        assert(err || got <= l->cap - l->n); /* it wrote at most what fits */
        if (!err) l->n += got;
        if (err != HEARTH_ERR_INVALID_ARG || got <= l->cap - l->n) return err;
        need = got; /* it did not fit: the count it needs */
    }
    return hr_fail(HEARTH_ERR_INVALID_ARG, "the tokenizer's count changed between two passes");
}

static hearth_err put_str(const tok_vocab *v, const char *s, id_list *l) {
    return put_text(v, s, strlen(s), false, l);
}

/* The repository context: <fim_repo>, the chunks, <fim_sep> "filename". */
static hearth_err put_extra(const tok_vocab *v, const hearth_infill *in, id_list *l) {
    const int rep = tok_fim_rep(v), sep = tok_fim_sep(v);
    hearth_err err = HEARTH_OK;
    if (rep >= 0 && !(err = put_id(l, rep))) err = put_str(v, "myproject\n", l);
    for (int i = 0; !err && i < in->n_extra; i++) {
        const hearth_infill_chunk *c = &in->extra[i];
        if (sep >= 0) {
            const char *name = c->filename ? c->filename : "tmp";
            if (!(err = put_id(l, sep)) && !(err = put_str(v, name, l))) err = put_str(v, "\n", l);
        } else {
            err = put_str(v, "\n\n--- snippet ---\n\n", l);
        }
        if (!err) err = put_str(v, c->text ? c->text : "", l);
    }
    if (!err && sep >= 0 && !(err = put_id(l, sep))) err = put_str(v, "filename\n", l);
    return err;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Copies src[from..from+n) (src may be NULL when n is 0); returns the end. */
static int32_t *copy_ids(int32_t *o, const int32_t *src, size_t from, size_t n) {
    if (n) memcpy(o, src + from, n * sizeof *o);
    return o + n;
}

hearth_err hearth_tokenize_infill(const hearth_model *m, const hearth_infill *in, int32_t *ids,
                                  size_t cap, size_t *n_out) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_UNSUPPORTED;
    const int pre = tok_fim_pre(v), suf = tok_fim_suf(v), mid = tok_fim_mid(v);
    if (pre < 0 || suf < 0 || mid < 0)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "this model's vocabulary has no fill-in-the-middle tokens (%s%s%s)",
                       pre < 0 ? "prefix " : "", suf < 0 ? "suffix " : "", mid < 0 ? "middle" : "");
    id_list extra = {0}, prefix = {0}, suffix = {0}, prompt = {0};
    hearth_err err = in->n_extra_max ? put_extra(v, in, &extra) : HEARTH_OK;
    if (!err) err = put_text(v, in->prefix, in->prefix_len, false, &prefix);
    if (!err) err = put_text(v, in->suffix, in->suffix_len, false, &suffix);
    if (!err && in->prompt) err = put_text(v, in->prompt, in->prompt_len, true, &prompt);
    size_t n = 0;
    if (!err) {
        /* llama-server's cuts: the prefix's end and the suffix's start, in a 3:1 ratio */
        size_t n_pre = prefix.n, n_suf = suffix.n, n_extra = extra.n;
        if (in->n_batch > 0) {
            const size_t quarter = (size_t)in->n_batch / 4;
            n_pre = min_size(n_pre, 3 * quarter);
            n_suf = min_size(n_suf, quarter > 2 + prompt.n ? quarter - 2 - prompt.n : 0);
        }
        if (in->n_extra_max >= 0) n_extra = min_size(n_extra, (size_t)in->n_extra_max);
        const bool bos = tok_add_bos(v) && tok_bos(v) >= 0;
        n = n_extra + bos + 1 + n_pre + prompt.n + 1 + n_suf + 1;
        if (ids && n <= cap) {
            int32_t *o = copy_ids(ids, extra.ids, extra.n - n_extra, n_extra);
            if (bos) *o++ = tok_bos(v);
            *o++ = pre;
            o = copy_ids(o, prefix.ids, prefix.n - n_pre, n_pre);
            o = copy_ids(o, prompt.ids, 0, prompt.n);
            *o++ = suf;
            o = copy_ids(o, suffix.ids, 0, n_suf);
            *o = mid;
        }
    }
    free(extra.ids);
    free(prefix.ids);
    free(suffix.ids);
    free(prompt.ids);
    if (err) return err;
    *n_out = n;
    return n <= cap ? HEARTH_OK
                    : hr_fail(HEARTH_ERR_INVALID_ARG, "%zu tokens do not fit in %zu", n, cap);
}

hearth_err hearth_tokenize_fim(const hearth_model *m, const char *prefix, size_t prefix_len,
                               const char *suffix, size_t suffix_len, int32_t *ids, size_t cap,
                               size_t *n_out) {
    const hearth_infill in = {.prefix = prefix,
                              .prefix_len = prefix_len,
                              .suffix = suffix,
                              .suffix_len = suffix_len,
                              .n_extra_max = 0};
    return hearth_tokenize_infill(m, &in, ids, cap, n_out);
}

/* The model's rerank prompt (tokenizer.chat_template.rerank: Qwen3-Reranker's)
 * with {query} and {document} filled in, in one pass over the template (a
 * query that contains "{document}" stays as written). */
static hearth_err put_rerank_prompt(const tok_vocab *v, const char *t, size_t t_len,
                                    const char *query, size_t q_len, const char *doc, size_t d_len,
                                    id_list *l) {
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i <= t_len;) {
        const char *part = t + i;
        size_t len = 1, skip = 1;
        if (i == t_len) {
            len = 0; /* the terminator: only make room */
        } else if (t_len - i >= 7 && !memcmp(part, "{query}", 7)) {
            part = query, len = q_len, skip = 7;
        } else if (t_len - i >= 10 && !memcmp(part, "{document}", 10)) {
            part = doc, len = d_len, skip = 10;
        }
        if (cap - n <= len) { /* room for len + 1 (no len + 1 to wrap) */
            cap = 2 * (n + len + 1);
            char *p = realloc(text, cap);
            if (!p) {
                free(text);
                return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
            }
            text = p;
        }
        if (len) memcpy(text + n, part, len);
        n += len;
        i += skip;
    }
    /* the prompt's control tokens are parsed, as llama-server parses them */
    const hearth_err err = put_text(v, text, n, true, l);
    free(text);
    return err;
}

hearth_err hearth_tokenize_rerank(const hearth_model *m, const char *query, size_t query_len,
                                  const char *doc, size_t doc_len, int32_t *ids, size_t cap,
                                  size_t *n_out) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_UNSUPPORTED;
    const char *tmpl;
    size_t tmpl_len;
    id_list l = {0};
    hearth_err err;
    if (hearth_model_meta_str(m, "tokenizer.chat_template.rerank", &tmpl, &tmpl_len) == HEARTH_OK) {
        err = put_rerank_prompt(v, tmpl, tmpl_len, query, query_len, doc, doc_len, &l);
    } else {
        /* [BOS] query [EOS] [SEP] document [EOS], each as the vocabulary asks
         * (BERT: [CLS] q [SEP] d [SEP]; RoBERTa: <s> q </s></s> d </s>) */
        const int eos = tok_eos(v) >= 0 ? tok_eos(v) : tok_sep(v), sep = tok_sep(v);
        const bool add_eos = tok_add_eos(v), add_sep = tok_add_sep(v);
        if ((add_eos && eos < 0) || (add_sep && sep < 0) || (tok_add_bos(v) && tok_bos(v) < 0))
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "rerank: the vocabulary lacks the special tokens a pair needs");
        err = tok_add_bos(v) ? put_id(&l, tok_bos(v)) : HEARTH_OK;
        if (!err) err = put_text(v, query, query_len, false, &l);
        if (!err && add_eos) err = put_id(&l, eos);
        if (!err && add_sep) err = put_id(&l, sep);
        if (!err) err = put_text(v, doc, doc_len, false, &l);
        if (!err && add_eos) err = put_id(&l, eos);
    }
    if (!err && ids && l.n <= cap) copy_ids(ids, l.ids, 0, l.n);
    free(l.ids);
    if (err) return err;
    *n_out = l.n;
    return l.n <= cap ? HEARTH_OK
                      : hr_fail(HEARTH_ERR_INVALID_ARG, "%zu tokens do not fit in %zu", l.n, cap);
}

hearth_err hearth_detokenize(const hearth_model *m, const int32_t *ids, size_t n, bool special,
                             char *out, size_t cap, size_t *n_out) {
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_UNSUPPORTED;
    return tok_detokenize(v, ids, n, false, special, out, cap, n_out);
}

int32_t hearth_token_bos(const hearth_model *m) {
    const engine_text *t = m->vocab;
    return t ? tok_bos(t->tok) : -1;
}
int32_t hearth_token_eos(const hearth_model *m) {
    const engine_text *t = m->vocab;
    return t ? tok_eos(t->tok) : -1;
}
bool hearth_token_is_eog(const hearth_model *m, int32_t id) {
    const engine_text *t = m->vocab;
    return t && tok_is_eog(t->tok, id);
}

/* ---- sampler wrappers --------------------------------------------------- */

hearth_sampling hearth_sampling_default_params(void) {
    smp_params d = smp_default_params();
    hearth_sampling p = {.temperature = d.temperature,
                         .top_k = d.top_k,
                         .top_p = d.top_p,
                         .min_p = d.min_p,
                         .penalty_last_n = d.penalty_last_n,
                         .repeat_penalty = d.repeat_penalty,
                         .frequency_penalty = d.frequency_penalty,
                         .presence_penalty = d.presence_penalty,
                         .seed = HEARTH_SEED_RANDOM};
    engine_sampling_defaults(&p);
    return p;
}

/* The table a constraint reads: the model's, built on first use, with a
 * reference for the caller; and the schema, compiled first so that a bad
 * one fails before the table is built (*schema: the caller's, given to
 * smp_new). */
static hearth_err constraint_vocab(const hearth_model *m, const hearth_sampling *p, smp_vocab **out,
                                   smp_schema **schema, smp_grammar **gbnf) {
    *out = NULL;
    *schema = NULL;
    *gbnf = NULL;
    /* none, or an unknown one: smp_new refuses that, before any table */
    if (p->constraint != HEARTH_CONSTRAINT_JSON_OBJECT &&
        p->constraint != HEARTH_CONSTRAINT_JSON_SCHEMA &&
        p->constraint != HEARTH_CONSTRAINT_GRAMMAR)
        return HEARTH_OK;
    if (p->constraint == HEARTH_CONSTRAINT_JSON_SCHEMA) {
        hearth_err err = smp_schema_compile(p->json_schema, schema);
        if (err) return err;
    }
    if (p->constraint == HEARTH_CONSTRAINT_GRAMMAR) {
        hearth_err err = smp_grammar_compile(p->grammar, gbnf);
        if (err) return err;
    }
    if (!engine_vocab(m)) {
        smp_schema_free(*schema);
        *schema = NULL;
        smp_grammar_free(*gbnf);
        *gbnf = NULL;
        return hr_wrap(HEARTH_ERR_UNSUPPORTED, "%s: ",
                       p->constraint == HEARTH_CONSTRAINT_GRAMMAR ? "grammar" : "json mode");
    }
    engine_text *t = m->vocab;
    hearth_err err = HEARTH_OK;
    pthread_mutex_lock(&t->mu);
    if (!t->bytes) err = smp_vocab_new(m->hp.n_vocab, tok_piece_shown, t->tok, &t->bytes);
    if (!err) *out = smp_vocab_ref(t->bytes);
    pthread_mutex_unlock(&t->mu);
    if (err) {
        smp_schema_free(*schema);
        *schema = NULL;
        smp_grammar_free(*gbnf);
        *gbnf = NULL;
    }
    return err;
}

hearth_err hearth_logprobs(const hearth_model *m, const float *logits, int32_t id, int n_top,
                           float *logprob, hearth_token_logprob *top, int *n_out) {
    const int32_t n_vocab = hearth_model_n_vocab(m);
    if (!logits || !logprob || id < 0 || id >= n_vocab || n_top < 0 ||
        n_top > HEARTH_TOP_LOGPROBS_MAX || (n_top > 0 && (!top || !n_out)))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "logprobs: token %d of a vocabulary of %d, %d alternatives (at most %d)",
                       (int)id, (int)n_vocab, n_top, (int)HEARTH_TOP_LOGPROBS_MAX);
    smp_info info = {.id = id};
    smp_logprobs(logits, n_vocab, n_top, &info);
    *logprob = info.logprob;
    for (int i = 0; i < info.n_top; i++)
        top[i] = (hearth_token_logprob){.id = info.top[i].id, .logprob = info.top[i].logprob};
    if (n_out) *n_out = info.n_top;
    return HEARTH_OK;
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
                     .seed = p.seed == HEARTH_SEED_RANDOM ? SMP_SEED_RANDOM : p.seed,
                     .logit_bias = p.logit_bias,
                     .n_logit_bias = p.n_logit_bias};
    if (p.reasoning_budget != 0) {
        const tok_vocab *v = engine_vocab(m);
        sp.think_on = true;
        sp.think_open = p.reasoning_open;
        sp.think_budget = p.reasoning_budget > 0 ? p.reasoning_budget : 0;
        sp.think_start = sp.think_end = -1;
        if (v) tok_think_pair(v, &sp.think_start, &sp.think_end);
        if (sp.think_start < 0 || p.reasoning_budget < -1)
            return hr_fail(p.reasoning_budget < -1 ? HEARTH_ERR_INVALID_ARG
                                                   : HEARTH_ERR_UNSUPPORTED,
                           p.reasoning_budget < -1
                               ? "sampling: reasoning budget %d (0: none, -1: zero tokens)"
                               : "sampling: a reasoning budget needs <think> and </think> (or "
                                 "<|channel> and <channel|>) tokens in the vocabulary (budget %d)",
                           (int)p.reasoning_budget);
    }
    hearth_sampler *s = hr_calloc(1, sizeof *s);
    if (!s) return HEARTH_ERR_NOMEM;
    engine_smp_extra x;
    hearth_err err = engine_smp_extra_fill(m, &p, &sp, &x);
    if (!err) err = constraint_vocab(m, &p, &s->vocab, &sp.schema, &sp.gbnf);
    if (!err) {
        /* an unknown value stays unknown (the four known ones are 0..3 in both) */
        sp.constraint = p.constraint == HEARTH_CONSTRAINT_GRAMMAR       ? SMP_CONSTRAINT_GRAMMAR
                        : p.constraint == HEARTH_CONSTRAINT_JSON_SCHEMA ? SMP_CONSTRAINT_JSON_SCHEMA
                        : p.constraint == HEARTH_CONSTRAINT_JSON_OBJECT ? SMP_CONSTRAINT_JSON_OBJECT
                        : p.constraint == HEARTH_CONSTRAINT_NONE        ? SMP_CONSTRAINT_NONE
                                                                 : (smp_constraint)p.constraint;
        sp.vocab = s->vocab;
    }
    if (!err) err = smp_new(m->hp.n_vocab, &sp, &s->smp); /* takes sp.schema and sp.gbnf over */
    engine_smp_extra_free(&x);
    if (err) {
        smp_vocab_free(s->vocab);
        free(s);
        return err;
    }
    *out = s;
    return HEARTH_OK;
}

void hearth_sampler_free(hearth_sampler *s) {
    if (!s) return;
    smp_free(s->smp);
    smp_vocab_free(s->vocab);
    free(s);
}

void hearth_sampler_reset(hearth_sampler *s) { smp_reset(s->smp); }
uint64_t hearth_sampler_seed(const hearth_sampler *s) { return smp_seed(s->smp); }
