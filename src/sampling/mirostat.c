/*
 * mirostat.c - Mirostat (Basu et al., 2021, "Mirostat: a neural text decoding
 * algorithm that directly controls perplexity"), versions 1 and 2, with the
 * semantics of llama.cpp's samplers of those names, written from the paper:
 *
 *   Both keep a threshold mu (2 tau at the start and after smp_reset) and,
 *   after each draw, move it by the error of the drawn token's surprise
 *   -log2 p (p among the kept candidates) against the target tau:
 *   mu -= eta * (surprise - tau).
 *   v1 estimates the Zipf exponent s from the 100 most likely candidates
 *     (least squares of log(p_i / p_i+1) against log((i + 2) / (i + 1))),
 *     keeps the k = ((e * 2^mu) / (1 - N^-e))^(1/s) best (e = s - 1, N the
 *     vocabulary's size; at least 1), and draws among them.
 *   v2 keeps the candidates whose surprise is at most mu (at least the best)
 *     and draws among them.
 *
 * llama.cpp runs it after logit bias and temperature only: no penalties, DRY
 * or other truncation (sampler.c's run_chain does the same). Arithmetic is in
 * double (llama.cpp: float); log(p_i / p_i+1) is taken as the difference of
 * the logits, which is the same number without the quotient's underflow. At
 * e = 0 exactly, where llama.cpp's formula is 0 / 0, its limit 2^mu / ln N
 * is used. Greedy (temperature <= 0) takes the argmax and leaves mu alone.
 */
#include "sampler_impl.h"

/* The candidates v1 fits the exponent on (llama.cpp's m). */
enum { MIROSTAT_M = 100 };

/* v1's k for the sorted candidates (at least 2 are kept). */
static double zipf_k(smp_sampler *s) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i + 1 < MIROSTAT_M && smp_have_rank(s, i + 1); i++) {
        const double t = log((double)(i + 2) / (double)(i + 1));
        const double b = (double)s->sorted[i].logit - (double)s->sorted[i + 1].logit;
        num += t * b;
        den += t * t;
    }
    if (den == 0.0) return 1.0; /* one candidate */
    const double shat = num / den, e = shat - 1.0;
    const double two_mu = exp2(s->mu), n = (double)s->n_vocab;
    const double base = e == 0.0 ? two_mu / log(n) : e * two_mu / (1.0 - pow(n, -e));
    return pow(base, 1.0 / shat);
}

static void truncate_v1(smp_sampler *s) {
    const size_t m = s->n_sorted + s->n_rest;
    const double k = zipf_k(s);
    /* at least 1 (NaN too); llama.cpp's int(k) truncates */
    const size_t keep = !(k >= 1.0) ? 1 : k >= (double)m ? m : (size_t)k;
    while (s->n_sorted < keep && smp_have_rank(s, s->n_sorted)) {
    }
    s->n_sorted = keep;
    s->n_rest = 0;
}

/* p >= 2^-mu, i.e. logit >= max + ln(sum of exp(logit - max)) - mu ln 2. */
static void truncate_v2(smp_sampler *s) {
    const float max = smp_best_logit(s);
    if (max == -INFINITY) return;
    double sum = 0.0;
    for (size_t i = 0; i < s->n_sorted + s->n_rest; i++)
        sum += exp((double)smp_walk(s, i)->logit - (double)max);
    /* the best candidate adds exp(0) = 1: sum >= 1 */
    // cppcheck-suppress invalidFunctionArg
    smp_keep_above(s, (float)((double)max + log(sum) - s->mu * log(2.0)));
}

void smp_mirostat_truncate(smp_sampler *s) {
    if (s->n_sorted + s->n_rest == 0) return;
    if (s->params.mirostat == 1)
        truncate_v1(s);
    else
        truncate_v2(s);
}

int32_t smp_mirostat_draw(smp_sampler *s) {
    double p;
    const int32_t id = smp_draw(s, &p);
    const double surprise = -log2(p);
    s->mu -= (double)s->params.mirostat_eta * (surprise - (double)s->params.mirostat_tau);
    return id;
}
