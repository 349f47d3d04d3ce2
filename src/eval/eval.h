/*
 * eval.h - scoring a model on a text as llama-perplexity scores it
 * (llama.cpp's tools/perplexity): perplexity over chunks of the text, and
 * the KL divergence of a model's token distributions from a base model's,
 * saved in llama-perplexity's own base file ("_logits_").
 *
 * The arithmetic follows llama-perplexity's float/double choices operation
 * by operation (float logits and maximum, a double sum of expf, float
 * uint16 quantization), so that equal logits give equal results; its
 * multi-threaded sums add in another order, a difference in the last bits.
 * Nothing here prints; failures return hearth_err with hr_fail's message.
 */
#ifndef HEARTH_EVAL_H
#define HEARTH_EVAL_H

#include "hearth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- tokens and chunks (ppl.c) ------------------------------------------ */

/* The tokens of text[0..len) as llama-perplexity takes them: BOS as the
 * vocabulary adds it, special-token text left as text. *ids (malloc'd) and
 * *n on success. HEARTH_ERR_UNSUPPORTED for a model without an output layer
 * (an encoder) or a vocabulary that appends EOS (llama-perplexity refuses
 * both). */
hearth_err eval_tokenize(const hearth_model *m, const char *text, size_t len, int32_t **ids,
                         size_t *n);

/* The id that replaces each chunk's first token: BOS when the vocabulary
 * adds one, else -1 (the chunk is evaluated as it stands). */
int32_t eval_chunk_bos(const hearth_model *m);

/* Evaluates chunk[0..n) (with the session's model of n_vocab tokens) from an empty KV cache (the
 * session is truncated to 0), its first token replaced by bos when bos >= 0, in decode calls of at
 * most n_batch tokens counted from the chunk's start, as llama-perplexity's batches. Positions
 * before `first` produce no logits: a call that straddles `first` is cut there (in default mode a
 * row's logits do not depend on the batch it was in). out receives the logits of positions
 * first..n-1: [n - first][n_vocab] floats. The session needs n_ctx >= n. */
hearth_err eval_chunk(hearth_session *s, int n_vocab, const int32_t *chunk, int n, int n_batch,
                      int first, int32_t bos, float *out);

/* A row's largest logit (its first index) and the sum of expf(logit - max)
 * in double: llama-perplexity's softmax normaliser. n_vocab > 0. */
typedef struct eval_norm {
    float max;
    int top;
    double sum; /* >= 1: the top term is 1 */
} eval_norm;
eval_norm eval_normalizer(const float *logits, int n_vocab);

/* -log p(tok) from one row of logits, as llama-perplexity's plain run
 * computes it. */
double eval_nll(const float *logits, int n_vocab, int32_t tok);
/* The same as its strided run (--ppl-stride) computes it: through a float
 * probability. */
double eval_nll_strided(const float *logits, int n_vocab, int32_t tok);

/* llama-perplexity's final estimate from the sums of the scored tokens'
 * negative log-likelihoods and their squares: *ppl = exp(mean) and *unc =
 * ppl * sqrt(var / (count - 1)). false (nothing written) when the variance
 * is not positive (llama-perplexity then prints no estimate). */
bool eval_ppl_final(double sum_nll, double sum_nll2, size_t count, double *ppl, double *unc);

/* ---- the base file and KL divergence (kld.c) ----------------------------
 * llama-perplexity's --kl-divergence-base file, byte for byte: "_logits_",
 * n_ctx (uint32), n_vocab, n_chunk (int32), the n_chunk * n_ctx tokens
 * (int32) the chunks were cut from, then for each chunk one row per scored
 * position (n_ctx - 1 - n_ctx/2 of them): eval_base_row_len(n_vocab) uint16,
 * the first four holding two floats, scale and the lowest log-probability
 * kept, then each token's log-probability as round((lp - min) / scale),
 * floored at 16 below the best. Native byte order (little-endian). */
#define EVAL_BASE_MAGIC       "_logits_"
#define EVAL_BASE_HEADER_SIZE 20

/* uint16 per row: the vocabulary rounded up to even, plus the two floats. */
size_t eval_base_row_len(int n_vocab);
/* Positions scored in a chunk of n_ctx tokens: n_ctx - 1 - n_ctx/2. */
int eval_scored(int n_ctx);

/* The header's 20 bytes. */
void eval_base_header(uint8_t out[EVAL_BASE_HEADER_SIZE], int n_ctx, int n_vocab, int n_chunk);

/* A base file read in place (pointers into the caller's bytes). */
typedef struct eval_base {
    int n_ctx, n_vocab, n_chunk;
    const int32_t *tokens; /* [n_chunk * n_ctx] */
    const uint16_t *rows;  /* [n_chunk * eval_scored(n_ctx)][row_len] */
    size_t row_len;
} eval_base;

/* Checks data[0..size) (4-byte aligned, as a mapping is) is a whole base
 * file: the magic, sane counts, tokens within its vocabulary and a size
 * equal to what the header promises. HEARTH_ERR_FORMAT naming what is
 * wrong otherwise. */
hearth_err eval_base_parse(const uint8_t *data, uint64_t size, eval_base *out);

/* One scored position's row of a base file from the base model's logits
 * (row: eval_base_row_len(n_vocab) uint16). Returns -log p(tok) as
 * llama-perplexity's saving run computes it (in float). */
double eval_base_row(const float *logits, int n_vocab, int32_t tok, uint16_t *row);

/* Running sums over the scored positions of a --kl-divergence run. */
typedef struct eval_kld {
    double sum_nll, sum_nll2;           /* the model's -log p(tok) */
    double sum_nll_base, sum_nll_base2; /* the base's, from its row */
    double sum_nll_nll_base;
    double sum_kld, sum_kld2;                    /* KL(base || model) per position */
    double sum_p_diff, sum_p_diff2, sum_p_diff4; /* p(tok) - p_base(tok) */
    float max_p_diff;
    size_t n_same_top; /* positions where both rank the same token first */
    size_t count;
} eval_kld;

/* Adds one position: the model's logits against the base's row for the
 * token that follows, tok. *kld and *p_diff receive the position's KL
 * divergence and change in p(tok) (for the percentiles). */
void eval_kld_add(eval_kld *k, const float *logits, int n_vocab, const uint16_t *base_row,
                  int32_t tok, float *kld, float *p_diff);

/* llama-perplexity's mean with its uncertainty (0 for 10 values or fewer). */
typedef struct eval_stat {
    double val, unc;
} eval_stat;
eval_stat eval_mean(double sum, double sum2, size_t count);
/* Covariance of the means of a and b (0 under 10 values). */
double eval_cov(double sum_a, double sum_b, double sum_ab, size_t count);
/* The value at `fraction` of sorted[0..n), n > 0, interpolated as
 * llama-perplexity interpolates; and the median. */
float eval_percentile(const float *sorted, size_t n, float fraction);
float eval_median(const float *sorted, size_t n);

#endif
