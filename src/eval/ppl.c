/*
 * ppl.c - perplexity as llama-perplexity computes it: the text's tokens
 * (BOS as the vocabulary adds it), chunks evaluated from an empty KV cache
 * with BOS in place of their first token, each scored token's negative
 * log-likelihood from a float maximum and a double sum of expf, and the
 * final estimate with its uncertainty, exp(mean) +/- exp(mean) * the
 * standard error of the mean.
 */
#include "eval.h"

#include "core/core.h"
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

hearth_err eval_tokenize(const hearth_model *m, const char *text, size_t len, int32_t **ids,
                         size_t *n) {
    if (!hearth_model_generates(m))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "the model (%s) has no output layer: it gives no token probabilities",
                       hearth_model_arch(m));
    const tok_vocab *v = engine_vocab(m);
    if (!v) return HEARTH_ERR_FORMAT;
    if (tok_add_eos(v))
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "the vocabulary appends EOS to a text: "
                                               "llama-perplexity refuses such models too");
    /* a token never covers less than a byte: len + BOS + EOS is enough */
    size_t cap = len + 2, got = 0;
    int32_t *buf = hr_calloc(cap, sizeof *buf);
    if (!buf) return HEARTH_ERR_NOMEM;
    hearth_err err = hearth_tokenize(m, text, len, true, false, buf, cap, &got);
    if (err == HEARTH_ERR_INVALID_ARG && got > cap) { /* in case a tokenizer proves that wrong */
        int32_t *grown = realloc(buf, got * sizeof *buf);
        if (!grown)
            err = hr_fail(HEARTH_ERR_NOMEM, "no memory for %zu tokens", got);
        else {
            buf = grown;
            err = hearth_tokenize(m, text, len, true, false, buf, got, &got);
        }
    }
    if (err) {
        free(buf);
        return err;
    }
    *ids = buf;
    *n = got;
    return HEARTH_OK;
}

hearth_err eval_tokenize_file(const hearth_model *m, const char *path, bool binary, int32_t **ids,
                              size_t *n) {
    hr_map map;
    hearth_err err = hr_map_open(&map, path); /* refuses an empty file */
    if (err) return err;
    size_t len = (size_t)map.size;
    if (!binary && map.data[len - 1] == '\n') len--;
    err = eval_tokenize(m, (const char *)map.data, len, ids, n);
    hr_map_close(&map);
    return err;
}

int32_t eval_chunk_bos(const hearth_model *m) {
    const tok_vocab *v = engine_vocab(m);
    return v && tok_add_bos(v) ? tok_bos(v) : -1;
}

/* One decode call over ids[p..q): with rows (positions from `first` on)
 * into out, else none kept. */
static hearth_err decode_part(hearth_session *s, const int32_t *ids, int p, int q, int first,
                              float *out, size_t n_vocab) {
    const bool rows = p >= first;
    return hearth_decode(s, ids + p, q - p, rows ? out + (size_t)(p - first) * n_vocab : NULL,
                         rows);
}

hearth_err eval_chunk(hearth_session *s, int n_vocab, const int32_t *chunk, int n, int n_batch,
                      int first, int32_t bos, float *out) {
    if (n_vocab <= 0 || n <= 0 || n_batch <= 0 || first < 0 || first >= n)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "eval: a chunk of %d tokens, batch %d, scored from %d", n, n_batch, first);
    int32_t *ids = hr_calloc((size_t)n, sizeof *ids);
    if (!ids) return HEARTH_ERR_NOMEM;
    memcpy(ids, chunk, (size_t)n * sizeof *ids);
    if (bos >= 0) ids[0] = bos;
    hearth_err err = hearth_session_truncate(s, 0);
    for (int b0 = 0; b0 < n && !err; b0 += n_batch) {
        const int b1 = n - b0 < n_batch ? n : b0 + n_batch;
        /* llama-perplexity asks no logits before `first`: cut the call there */
        const int cut = b0 < first && first < b1 ? first : b0;
        if (cut > b0) err = decode_part(s, ids, b0, cut, first, out, (size_t)n_vocab);
        if (!err) err = decode_part(s, ids, cut, b1, first, out, (size_t)n_vocab);
    }
    free(ids);
    return err;
}

eval_norm eval_normalizer(const float *logits, int n_vocab) {
    eval_norm z = {logits[0], 0, 0};
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > z.max) {
            z.max = logits[i];
            z.top = i;
        }
    z.sum = expf(logits[0] - z.max); /* 0 + the first term, as a sum from 0 adds it */
    for (int i = 1; i < n_vocab; i++) z.sum += expf(logits[i] - z.max);
    return z;
}

double eval_nll(const float *logits, int n_vocab, int32_t tok) {
    const eval_norm z = eval_normalizer(logits, n_vocab);
    return -((double)(logits[tok] - z.max) - log(z.sum));
}

double eval_nll_strided(const float *logits, int n_vocab, int32_t tok) {
    const eval_norm z = eval_normalizer(logits, n_vocab);
    const float prob = (float)((double)expf(logits[tok] - z.max) / z.sum);
    return -(double)logf(prob);
}

bool eval_ppl_final(double sum_nll, double sum_nll2, size_t count, double *ppl, double *unc) {
    if (count < 2) return false;
    const double mean = sum_nll / (double)count;
    const double var = sum_nll2 / (double)count - mean * mean;
    if (!(var > 0)) return false;
    *ppl = exp(mean);
    *unc = sqrt(var / (double)(count - 1)) * *ppl;
    return true;
}
