/*
 * stages.c - three truncations of llama.cpp's chain (src/llama-sampler.cpp)
 * and its dynamic temperature, each with its semantics there, written from
 * the definitions:
 *
 *   top-n-sigma (Tang et al., 2024): over the candidates with a finite logit,
 *     max, mean and population standard deviation sigma; keeps the logits
 *     >= max - n * sigma. Runs on the raw (biased, penalized) logits, first.
 *   typical (Meister et al., 2022, "locally typical sampling"): with p the
 *     softmax over the candidates and H its entropy, orders them by
 *     |-log p - H| (closest to the entropy first) and keeps the shortest such
 *     prefix whose probability exceeds typical_p (strictly: llama.cpp's
 *     "cum > p"). It may drop the most likely token.
 *   XTC ("exclude top choices", from text-generation-webui): with chance
 *     xtc_probability per draw, when two or more candidates have p >=
 *     xtc_threshold, removes all of them but the least likely one.
 *   min_keep: typical keeps popping until it holds that many too; XTC does
 *     nothing when fewer would be left (top-n-sigma ignores it, as there).
 *   dynamic temperature (llama.cpp's temp-ext, from "Dynamic Temperature" of
 *     kalomaze): with H the entropy of the softmax over the n >= 2 kept
 *     candidates, the temperature is lo + (hi - lo) * (H / ln n)^exponent,
 *     lo = max(0, t - range), hi = t + range.
 *
 * Probabilities are computed in double. Where llama.cpp's float arithmetic
 * would produce NaN (0 * log 0 in the entropy of a candidate of probability
 * 0, e.g. one top-n-sigma set to -inf and left in its array), the
 * definition's limit is used (0), so typical after top-n-sigma is defined.
 * XTC's chance is a float uniform in [0, 1) from the sampler's XTC stream
 * (llama.cpp: a float from an mt19937 of its own); XTC applies when chance
 * <= xtc_probability, as there. Nothing allocates: typical's scratch is
 * sized n_vocab at creation.
 */
#include "sampler_impl.h"

#include <stdlib.h>

hearth_err smp_stages_init(smp_sampler *s) {
    if (s->params.typical_p >= 1.0f || s->params.mirostat) return HEARTH_OK;
    s->scored = calloc((size_t)s->n_vocab, sizeof *s->scored);
    if (!s->scored)
        return hr_wrap(HEARTH_ERR_NOMEM, "sampling: typical_p for %d tokens: ", (int)s->n_vocab);
    return HEARTH_OK;
}

void smp_stage_top_n_sigma(smp_sampler *s, float n) {
    const size_t m = s->n_sorted + s->n_rest;
    if (m <= 1) return;
    float max = -INFINITY;
    double sum = 0.0;
    size_t valid = 0;
    for (size_t i = 0; i < m; i++) {
        const float l = smp_walk(s, i)->logit;
        if (l == -INFINITY) continue;
        max = l > max ? l : max;
        sum += l;
        valid++;
    }
    if (valid == 0) return; /* all -inf: llama.cpp's threshold is -inf, nothing goes */
    const double mean = sum / (double)valid;
    double acc = 0.0;
    for (size_t i = 0; i < m; i++) {
        const float l = smp_walk(s, i)->logit;
        if (l != -INFINITY) acc += ((double)l - mean) * ((double)l - mean);
    }
    const double sigma = sqrt(acc / (double)valid);
    smp_keep_above(s, (float)((double)max - (double)n * sigma));
}

/* Typical's order: closer to the entropy first, then the candidates' own. */
static bool scored_before(const smp_scored *a, const smp_scored *b) {
    return a->score < b->score || (a->score == b->score && smp_better(a->c, b->c));
}

/* Sift-down of a heap whose root comes first in scored_before's order. */
static void scored_sift(smp_scored *h, size_t n, size_t i) {
    const smp_scored x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && scored_before(&h[c + 1], &h[c])) c++;
        if (!scored_before(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

void smp_stage_typical(smp_sampler *s, float p, size_t min_keep) {
    const float max = smp_best_logit(s);
    const size_t m = s->n_sorted + s->n_rest;
    if (max == -INFINITY || m == 0) return; /* no probabilities to compare */
    smp_scored *h = s->scored;
    double sum = 0.0;
    for (size_t i = 0; i < m; i++) {
        h[i].c = *smp_walk(s, i);
        h[i].score = exp((double)h[i].c.logit - (double)max); /* the weight, for now */
        sum += h[i].score;
    }
    double entropy = 0.0;
    for (size_t i = 0; i < m; i++) {
        const double q = h[i].score / sum;
        if (q > 0.0) entropy -= q * log(q);
    }
    for (size_t i = 0; i < m; i++) {
        const double q = h[i].score / sum;
        h[i].score = q > 0.0 ? fabs(-log(q) - entropy) : INFINITY;
    }
    /* Pop the most typical until their probability exceeds p; the popped
     * ones collect at the heap's end. */
    for (size_t i = m / 2; i-- > 0;) scored_sift(h, m, i);
    double cum = 0.0;
    size_t n = m;
    while (n > 0) {
        const smp_scored top = h[0];
        h[0] = h[n - 1];
        h[n - 1] = top;
        n--;
        scored_sift(h, n, 0);
        cum += exp((double)top.c.logit - (double)max) / sum;
        if (cum > (double)p && m - n >= min_keep) break;
    }
    for (size_t i = n; i < m; i++) s->rest[i - n] = h[i].c;
    s->n_rest = m - n;
    s->n_sorted = 0;
    s->rest_is_heap = false;
    s->rest_by_id = false;
}

/* Without sorting: when XTC applies, the candidates with p >= threshold
 * are the best ones; all go but the worst of them. When it does not, the
 * candidates are left exactly as they were, so that the draw's walk (and a
 * seed's tokens) is the same as without XTC. */
void smp_stage_xtc(smp_sampler *s, float probability, float threshold, size_t min_keep) {
    const size_t m = s->n_sorted + s->n_rest;
    if (m < 2) return; /* llama.cpp draws no chance then */
    if (hr_rng_uniform_f(&s->xtc_rng) > probability) return;
    const float max = smp_best_logit(s);
    if (max == -INFINITY) return;
    double sum = 0.0;
    for (size_t i = 0; i < m; i++) sum += exp((double)smp_walk(s, i)->logit - (double)max);
    /* p >= threshold  <=>  logit - max >= log(threshold * sum) */
    const double cut = log((double)threshold * sum);
    size_t above = 0;
    smp_cand last = {-1, 0.0f}; /* the worst of those above */
    for (size_t i = 0; i < m; i++) {
        const smp_cand c = *smp_walk(s, i);
        if ((double)c.logit - (double)max < cut) continue;
        if (above++ == 0 || smp_better(last, c)) last = c;
    }
    if (above < 2 || m - (above - 1) < min_keep) return; /* all but one go */
    size_t w = 0;
    for (size_t i = 0; i < s->n_sorted; i++) /* a sorted prefix stays sorted */
        if ((double)s->sorted[i].logit - (double)max < cut || s->sorted[i].id == last.id)
            s->sorted[w++] = s->sorted[i];
    s->n_sorted = w;
    w = 0;
    for (size_t i = 0; i < s->n_rest; i++)
        if ((double)s->rest[i].logit - (double)max < cut || s->rest[i].id == last.id)
            s->rest[w++] = s->rest[i];
    s->n_rest = w;
    s->rest_is_heap = false;
}

double smp_dynatemp(smp_sampler *s) {
    const smp_params *p = &s->params;
    const double t = p->temperature, r = p->dynatemp_range;
    const double lo = t - r > 0.0 ? t - r : 0.0, hi = t + r;
    const size_t m = s->n_sorted + s->n_rest;
    const float max = smp_best_logit(s);
    double sum = 0.0, wl = 0.0; /* sum of w and of w * (logit - max), w = exp(logit - max) */
    for (size_t i = 0; i < m; i++) {
        const double d = (double)smp_walk(s, i)->logit - (double)max;
        const double w = exp(d);
        sum += w;
        if (w > 0.0) wl += w * d;
    }
    /* H = -sum q ln q with q = w / sum: ln sum - wl / sum */
    // cppcheck-suppress invalidFunctionArg
    double h = log(sum) - wl / sum;
    if (h < 0.0) h = 0.0; /* rounding, for a one-hot distribution */
    return lo + (hi - lo) * pow(h / log((double)m), (double)p->dynatemp_exponent);
}
