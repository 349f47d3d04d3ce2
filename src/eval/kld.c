/*
 * kld.c - KL divergence from a base model, as llama-perplexity's
 * --kl-divergence-base / --kl-divergence compute it: the base run keeps
 * each scored position's log-probabilities over the whole vocabulary as
 * uint16 (a float scale and minimum per row; anything more than 16 below
 * the best is floored there and counts as probability 0), and the second
 * run compares its own distribution with that row: KL(base || model),
 * the change in the next token's probability, whether both rank the same
 * token first, and both models' perplexities. The file layout is in
 * eval.h.
 */
#include "eval.h"

#include "core/core.h"

#include <math.h>
#include <string.h>

size_t eval_base_row_len(int n_vocab) { return 2 * (((size_t)n_vocab + 1) / 2) + 4; }

int eval_scored(int n_ctx) { return n_ctx - 1 - n_ctx / 2; }

void eval_base_header(uint8_t out[EVAL_BASE_HEADER_SIZE], int n_ctx, int n_vocab, int n_chunk) {
    const uint32_t ctx = (uint32_t)n_ctx;
    const int32_t nv = n_vocab, nc = n_chunk;
    memcpy(out, EVAL_BASE_MAGIC, 8); // NOLINT(bugprone-not-null-terminated-result): 8 bytes, no NUL
    memcpy(out + 8, &ctx, 4);
    memcpy(out + 12, &nv, 4);
    memcpy(out + 16, &nc, 4);
}

/* Bytes a file with this header holds, or 0 when it would overflow. */
static uint64_t base_bytes(uint64_t n_ctx, uint64_t n_vocab, uint64_t n_chunk) {
    uint64_t tokens, rows, row_bytes, body, total;
    const uint64_t scored = (uint64_t)eval_scored((int)n_ctx);
    if (!hr_mul_ok(n_chunk, n_ctx, &tokens) || !hr_mul_ok(tokens, 4, &tokens) ||
        !hr_mul_ok(n_chunk, scored, &rows) ||
        !hr_mul_ok(eval_base_row_len((int)n_vocab), 2, &row_bytes) ||
        !hr_mul_ok(rows, row_bytes, &body) || !hr_add_ok(tokens, body, &total) ||
        !hr_add_ok(total, EVAL_BASE_HEADER_SIZE, &total))
        return 0;
    return total;
}

hearth_err eval_base_parse(const uint8_t *data, uint64_t size, eval_base *out) {
    if (size < EVAL_BASE_HEADER_SIZE || memcmp(data, EVAL_BASE_MAGIC, 8) != 0)
        return hr_fail(HEARTH_ERR_FORMAT, "not a file of log-probabilities (no \"%s\" header)",
                       EVAL_BASE_MAGIC);
    uint32_t n_ctx;
    int32_t n_vocab, n_chunk;
    memcpy(&n_ctx, data + 8, 4);
    memcpy(&n_vocab, data + 12, 4);
    memcpy(&n_chunk, data + 16, 4);
    if (n_ctx < 3 || n_ctx > (1u << 24) || n_vocab <= 0 || n_vocab > (1 << 24) || n_chunk <= 0)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "the header's counts make no sense: context %u, vocabulary %d, %d chunks",
                       n_ctx, n_vocab, n_chunk);
    const uint64_t want = base_bytes(n_ctx, (uint64_t)n_vocab, (uint64_t)n_chunk);
    if (want != size)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "%llu bytes, but a context of %u, a vocabulary of %d and %d chunks make "
                       "%llu: the file is cut short or is not one run's",
                       (unsigned long long)size, n_ctx, n_vocab, n_chunk, (unsigned long long)want);
    const int32_t *tokens = (const int32_t *)(const void *)(data + EVAL_BASE_HEADER_SIZE);
    const size_t n_tokens = (size_t)n_chunk * n_ctx;
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return hr_fail(HEARTH_ERR_FORMAT, "token %zu is %d, outside its vocabulary of %d", i,
                           tokens[i], n_vocab);
    *out = (eval_base){.n_ctx = (int)n_ctx,
                       .n_vocab = n_vocab,
                       .n_chunk = n_chunk,
                       .tokens = tokens,
                       .rows = (const uint16_t *)(const void *)(tokens + n_tokens),
                       .row_len = eval_base_row_len(n_vocab)};
    return HEARTH_OK;
}

double eval_base_row(const float *logits, int n_vocab, int32_t tok, uint16_t *row) {
    const eval_norm z = eval_normalizer(logits, n_vocab);
    const float max = z.max;
    float min = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] < min) min = logits[i];
    if (min < max - 16) min = max - 16; /* lower log-probabilities are kept as the floor */
    const float log_sum = (float)log(z.sum);
    const float min_lp = min - max - log_sum;
    const float scale = (max - min) / 65535.f;
    memcpy(row, &scale, 4);
    memcpy(row + 2, &min_lp, 4);
    uint16_t *q = row + 4;
    memset(q, 0, (eval_base_row_len(n_vocab) - 4) * sizeof *q);
    if (scale != 0) {
        const float inv = 1 / scale;
        for (int i = 0; i < n_vocab; i++) {
            if (!(logits[i] > min)) continue;
            const long v = lrintf(inv * (logits[i] - min)); /* nearest, ties to even */
            q[i] = (uint16_t)(v > 65535 ? 65535 : v);
        }
    }
    return (double)(max + log_sum - logits[tok]);
}

eval_kld_pos eval_kld_row(const float *logits, int n_vocab, const uint16_t *base_row, int32_t tok) {
    const eval_norm z = eval_normalizer(logits, n_vocab);
    const float max = z.max, log_sum = (float)log(z.sum);
    float scale, min_lp;
    memcpy(&scale, base_row, 4);
    memcpy(&min_lp, base_row + 2, 4);
    const uint16_t *q = base_row + 4;
    eval_kld_pos r;
    r.nll = max + log_sum - logits[tok];
    r.nll_base = -(scale * q[tok] + min_lp);

    /* sum over the base's tokens of p_base * (log p_base - log p) */
    const float log_norm = max + log_sum;
    double div = 0;
    int top_base = 0;
    float lp_top = 0;
    for (int i = 0; i < n_vocab; i++) {
        const float lp = scale * q[i] + min_lp;
        if (i == 0 || lp > lp_top) {
            lp_top = lp;
            top_base = i;
        }
        if (lp > -16.f) div += expf(lp) * (lp - logits[i] + log_norm);
    }
    r.kld = div;
    r.same_top = z.top == top_base;
    r.p_diff = expf(-r.nll) - expf(-r.nll_base);
    return r;
}

void eval_kld_accum(eval_kld *k, const eval_kld_pos *r) {
    const float nll = r->nll, nll_base = r->nll_base, d = r->p_diff;
    k->sum_nll += nll;
    k->sum_nll2 += nll * nll;
    k->sum_nll_base += nll_base;
    k->sum_nll_base2 += nll_base * nll_base;
    k->sum_nll_nll_base += nll * nll_base;
    k->sum_kld += r->kld;
    k->sum_kld2 += r->kld * r->kld;
    k->count++;
    if (r->same_top) k->n_same_top++;
    const double d2 = d * d;
    k->sum_p_diff += d;
    k->sum_p_diff2 += d2;
    k->sum_p_diff4 += d2 * d2;
    if (fabsf(d) > k->max_p_diff) k->max_p_diff = fabsf(d);
}

void eval_kld_add(eval_kld *k, const float *logits, int n_vocab, const uint16_t *base_row,
                  int32_t tok, float *kld, float *p_diff) {
    const eval_kld_pos r = eval_kld_row(logits, n_vocab, base_row, tok);
    eval_kld_accum(k, &r);
    *kld = (float)r.kld;
    *p_diff = r.p_diff;
}

eval_stat eval_mean(double sum, double sum2, size_t count) {
    if (count < 1) return (eval_stat){0, 0};
    const double f = sum / (double)count;
    const double var = sum2 / (double)count - f * f;
    return (eval_stat){f, var > 0 && count > 10 ? sqrt(var / (double)(count - 1)) : 0.};
}

double eval_cov(double sum_a, double sum_b, double sum_ab, size_t count) {
    if (count < 10) return 0;
    const double n = (double)count;
    return (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1);
}

float eval_percentile(const float *sorted, size_t n, float fraction) {
    if (fraction <= 0) return sorted[0];
    if (fraction >= 1) return sorted[n - 1];
    float p = fraction * (float)(n - 1);
    const size_t ip = (size_t)p;
    p -= (float)ip;
    return (1 - p) * sorted[ip] + p * sorted[ip + 1 < n ? ip + 1 : n - 1];
}

float eval_median(const float *sorted, size_t n) {
    return n % 2 == 0 ? 0.5f * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
}
