/*
 * rank.c - hearth_rank_batch: a reranker's scores. A reranker (a
 * cross-encoder) reads a query and a document as one text; its
 * classification head turns the pooled row (hparams.c: an encoder's first,
 * ModernBERT's mean, a decoder's last) into label logits, as llama.cpp's
 * rank pooling does:
 *
 *   h = tanh(cls x + b)      when the file has cls (the pooler; ModernBERT's:
 *                            LayerNorm(gelu(cls x + b)) with cls.norm, over
 *                            the mean of the rows)
 *   y = cls.output h + b     when it has cls.output
 *   score = y[0], after a softmax over the labels for a decoder
 *
 * (a decoder's labels are Qwen3-Reranker's "yes" / "no" rows of its output
 * layer: the score is P(yes)). An encoder's score is its raw logit.
 */
#include "session.h"

#include <math.h>
#include <stdlib.h>

bool hearth_model_ranks(const hearth_model *m) { return m->hp.rank; }

/* The head over k pooled rows x ([k][n_embd]) into scores; h and y hold
 * [k][n_embd] and [k][n_labels]. */
static void head(hearth_session *s, const float *x, int k, float *h, float *y, float *scores) {
    const hearth_model *m = s->model;
    const int d = m->hp.n_embd;
    if (m->cls.data) {
        forward_matmul(s, &m->cls, x, k, h, d);
        for (int t = 0; t < k; t++) {
            float *v = h + (size_t)t * d;
            if (m->cls_b)
                for (int i = 0; i < d; i++) v[i] += m->cls_b[i];
            if (m->arch->layer_norm) {
                kern_geglu(v, v, NULL, d);
                if (m->cls_norm) kern_layer_norm(v, v, m->cls_norm, NULL, d, m->hp.rms_eps);
            } else {
                for (int i = 0; i < d; i++) v[i] = tanhf(v[i]);
            }
        }
        x = h;
    }
    int n_out = d;
    if (m->cls_out.data) {
        n_out = (int)m->cls_out.n_rows;
        forward_matmul(s, &m->cls_out, x, k, y, n_out);
        if (m->cls_out_b)
            for (int t = 0; t < k; t++)
                for (int i = 0; i < n_out; i++) y[(size_t)t * n_out + i] += m->cls_out_b[i];
        x = y;
    }
    for (int t = 0; t < k; t++) {
        const float *r = x + (size_t)t * n_out;
        if (m->arch->encoder) {
            scores[t] = r[0];
            continue;
        }
        float mx = r[0];
        for (int i = 1; i < n_out; i++) mx = r[i] > mx ? r[i] : mx;
        double sum = 0.0;
        for (int i = 0; i < n_out; i++) sum += exp((double)(r[i] - mx));
        scores[t] = (float)(exp((double)(r[0] - mx)) / sum);
    }
}

hearth_err hearth_rank_batch(hearth_session *s, const int32_t *ids, const int *n_ids, int n_texts,
                             float *scores) {
    const hearth_model *m = s->model;
    if (!m->hp.rank)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "rank: the model is not a reranker (its file has no pooling_type rank)");
    if (n_texts <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "rank: no texts");
    const size_t d = (size_t)m->hp.n_embd;
    const int chunk = n_texts < s->n_batch ? n_texts : s->n_batch;
    const size_t n_out = m->cls_out.data ? (size_t)m->cls_out.n_rows : d;
    float *x = malloc((size_t)n_texts * d * sizeof *x);
    float *h = malloc((size_t)chunk * d * sizeof *h);
    float *y = malloc((size_t)chunk * n_out * sizeof *y);
    hearth_err err = x && h && y ? HEARTH_OK : hr_fail(HEARTH_ERR_NOMEM, "rank: out of memory");
    if (!err)
        err = hearth_embed_batch(s, ids, n_ids, n_texts, (hearth_pooling)m->hp.pooling, false, x);
    for (int i = 0; !err && i < n_texts; i += chunk) {
        const int k = n_texts - i < chunk ? n_texts - i : chunk;
        head(s, x + (size_t)i * d, k, h, y, scores + i);
    }
    free(x);
    free(h);
    free(y);
    return err;
}

typedef struct ranked {
    float score;
    int index;
} ranked;

/* Best first; NaN last; equal scores in the order given. */
static int by_score(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    const bool xn = isnan(x->score), yn = isnan(y->score);
    if (xn != yn) return xn ? 1 : -1;
    if (!xn && x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

hearth_err hearth_rank_order(const float *scores, int n, int *order) {
    if (n <= 0) return HEARTH_OK;
    ranked *r = malloc((size_t)n * sizeof *r);
    if (!r) return hr_fail(HEARTH_ERR_NOMEM, "rank: out of memory");
    for (int i = 0; i < n; i++) r[i] = (ranked){scores[i], i};
    qsort(r, (size_t)n, sizeof *r, by_score);
    for (int i = 0; i < n; i++) order[i] = r[i].index;
    free(r);
    return HEARTH_OK;
}
