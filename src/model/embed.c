/*
 * embed.c - hearth_embed and hearth_embed_batch: texts' vectors from the
 * model's last hidden states. The forward pass runs without the output layer
 * (the costliest matrix of a small model); the rows are normalised as the
 * output layer would read them and pooled in double precision, so the mean
 * does not depend on how the tokens were split into batches (exact mode
 * takes the mean as llama.cpp does, in F32, for its bits).
 *
 * A batch of texts shares forward passes as separate sequences (runs,
 * session.h): a pass takes whole texts, in order, while their tokens fit in
 * n_batch rows, each text's keys and values in its own stretch of the
 * session's cache (a view from a KV-tile boundary, session_kv_view), where
 * they sit in the tiles they would occupy alone. A text runs in a pass with
 * the run, the positions and the tiles it has when embedded alone; only its
 * rows' places in the batch change. A text longer than n_batch runs alone,
 * in chunks, as hearth_embed runs it.
 */
#include "session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hearth_pooling hearth_model_pooling(const hearth_model *m) { return (hearth_pooling)m->hp.pooling; }

static const char *const pooling_names[] = {
    [HEARTH_POOL_MEAN] = "mean", [HEARTH_POOL_CLS] = "cls", [HEARTH_POOL_LAST] = "last"};

const char *hearth_pooling_name(hearth_pooling p) {
    return p >= HEARTH_POOL_MEAN && p <= HEARTH_POOL_LAST ? pooling_names[p] : "unknown";
}

bool hearth_pooling_parse(const char *name, hearth_pooling *out) {
    for (int p = HEARTH_POOL_MEAN; p <= HEARTH_POOL_LAST; p++)
        if (!strcmp(name, pooling_names[p])) {
            *out = (hearth_pooling)p;
            return true;
        }
    return false;
}

/* Checks text i (n tokens at ids) as hearth_embed would; the messages name
 * the text only in a batch of several. */
static hearth_err check_text(const hearth_session *s, const int32_t *ids, int n, int i,
                             int n_texts) {
    const int n_vocab = s->model->hp.n_vocab;
    char which[32] = "";
    if (n_texts > 1) snprintf(which, sizeof which, "text %d: ", i);
    if (n <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "embed: %sno tokens", which);
    if (n > s->n_ctx)
        return hr_fail(HEARTH_ERR_CONTEXT_FULL, "embed: %s%d tokens do not fit in a context of %d",
                       which, n, s->n_ctx);
    for (int k = 0; k < n; k++)
        if (ids[k] < 0 || ids[k] >= n_vocab)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "embed: %stoken id %d at index %d is outside the vocabulary (%d)", which,
                           ids[k], k, n_vocab);
    return HEARTH_OK;
}

/* What pooling reads of a text of n tokens: rows t0..t0+k-1 of the batch
 * just run, its positions at0..at0+k-1, added to acc ([n_embd]). */
typedef struct pool_acc {
    double *acc;
    float *row;
    float *mid;  /* [dense_2's rows], with dense projections */
    float *rows; /* exact mode's mean: the text's rows [n_ctx][n_embd], else NULL */
    float *w;    /* ... and its [n_ctx] weights 1/n */
    hearth_pooling pooling;
} pool_acc;

static void pool_rows(hearth_session *s, const pool_acc *p, int t0, int k, int at0, int n) {
    const size_t d = (size_t)s->model->hp.n_embd;
    for (int t = 0; t < k; t++) {
        const int at = at0 + t;
        if ((p->pooling == HEARTH_POOL_CLS && at != 0) ||
            (p->pooling == HEARTH_POOL_LAST && at != n - 1))
            continue;
        if (p->rows) { /* kept for exact_mean */
            forward_hidden_row(s, t0 + t, p->rows + (size_t)at * d);
            continue;
        }
        forward_hidden_row(s, t0 + t, p->row);
        for (size_t i = 0; i < d; i++) p->acc[i] += p->row[i];
    }
}

/* acc = dense_3 (dense_2 acc), in F32 as llama.cpp projects the pooled
 * vector. */
static void dense_project(hearth_session *s, const pool_acc *p) {
    const hearth_model *m = s->model;
    const size_t d = (size_t)m->hp.n_embd;
    for (size_t i = 0; i < d; i++) p->row[i] = (float)p->acc[i];
    forward_matmul(s, &m->dense_2, p->row, 1, p->mid, m->dense_2.n_rows);
    forward_matmul(s, &m->dense_3, p->mid, 1, p->row, (int64_t)d);
    for (size_t i = 0; i < d; i++) p->acc[i] = p->row[i];
}

/* Exact mode's mean of a text's n rows, as llama.cpp takes it: the rows'
 * product with a column of 1/n in F32, one sequence: ggml_vec_dot over the
 * text for each dimension (kern_attn_values' order for one token), into acc. */
static void exact_mean(const hearth_session *s, const pool_acc *p, int n) {
    const int d = s->model->hp.n_embd;
    for (int i = 0; i < n; i++) p->w[i] = 1.0f / (float)n;
    kern_attn_values(p->row, p->w, p->rows, (size_t)d, 0, n, n, d, false, false);
    for (int i = 0; i < d; i++) p->acc[i] = p->row[i];
}

/* The pooled vector of a text of n tokens into out, and acc cleared. */
static void pool_finish(hearth_session *s, const pool_acc *p, int n, bool normalize, float *out) {
    const size_t d = (size_t)s->model->hp.n_embd;
    const double scale = p->pooling == HEARTH_POOL_MEAN && !p->rows ? 1.0 / n : 1.0;
    if (p->rows) exact_mean(s, p, n);
    for (size_t i = 0; i < d; i++) p->acc[i] *= scale;
    if (s->model->dense_2.data) dense_project(s, p);
    double norm2 = 0.0;
    for (size_t i = 0; i < d; i++) norm2 += p->acc[i] * p->acc[i];
    const double inv = normalize && norm2 > 0.0 ? 1.0 / sqrt(norm2) : 1.0;
    for (size_t i = 0; i < d; i++) out[i] = (float)(p->acc[i] * inv);
    memset(p->acc, 0, d * sizeof *p->acc);
}

/* A text longer than a batch: alone, n_batch tokens per pass. */
static void embed_long(hearth_session *s, const pool_acc *p, const int32_t *ids, int n) {
    for (int done = 0; done < n;) {
        const int nb = n - done < s->n_batch ? n - done : s->n_batch;
        const fwd_run run = {.s = s, .t0 = 0, .n = nb, .pos0 = done};
        forward_multi(s, &run, 1, ids + done, nb, NULL, 0);
        pool_rows(s, p, 0, nb, done, n);
        done += nb;
    }
}

/* Cache positions a text takes beside others: whole KV tiles. */
static int kv_span(int n) { return (n + KERN_KV_TILE - 1) / KERN_KV_TILE * KERN_KV_TILE; }

/* One pass over texts first.. that fit (at least one; each <= n_batch):
 * their rows, their runs, their vectors. Returns how many it took. */
static int embed_pass(hearth_session *s, hearth_session *views, const pool_acc *p,
                      const int32_t *ids, const int *n_ids, int n_texts, bool normalize,
                      float *out) {
    const size_t d = (size_t)s->model->hp.n_embd;
    int k = 0, rows = 0, span = 0;
    while (k < n_texts && n_ids[k] <= s->n_batch - rows &&
           kv_span(n_ids[k]) <= s->n_ctx_pad - span) {
        hearth_session *kv = s; /* the first text: where it would be alone */
        if (span > 0) {
            session_kv_view(s, span, &views[k]);
            kv = &views[k];
        }
        s->runs[k] = (fwd_run){.s = kv, .t0 = rows, .n = n_ids[k], .pos0 = 0};
        rows += n_ids[k];
        span += kv_span(n_ids[k]);
        k++;
    }
    forward_multi(s, s->runs, k, ids, rows, NULL, 0);
    for (int i = 0; i < k; i++) {
        pool_rows(s, p, s->runs[i].t0, n_ids[i], 0, n_ids[i]);
        pool_finish(s, p, n_ids[i], normalize, out + (size_t)i * d);
    }
    return k;
}

hearth_err hearth_embed_batch(hearth_session *s, const int32_t *ids, const int *n_ids, int n_texts,
                              hearth_pooling pooling, bool normalize, float *out) {
    if (n_texts <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "embed: no texts");
    if (pooling != HEARTH_POOL_MEAN && pooling != HEARTH_POOL_CLS && pooling != HEARTH_POOL_LAST)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "embed: unknown pooling %d", (int)pooling);
    size_t off = 0;
    for (int i = 0; i < n_texts; i++) {
        const hearth_err err = check_text(s, ids + off, n_ids[i], i, n_texts);
        if (err) return err;
        off += (size_t)n_ids[i];
    }
    const size_t d = (size_t)s->model->hp.n_embd;
    /* a pass holds at most one text per KV tile and per row */
    int max_pass =
        s->n_ctx_pad / KERN_KV_TILE < s->n_batch ? s->n_ctx_pad / KERN_KV_TILE : s->n_batch;
    /* one recurrent state, or window slots that hold one text's positions:
       texts side by side would share them */
    if (s->ssm_rs || s->kv_slot_win) max_pass = 1;
    if (max_pass > n_texts) max_pass = n_texts;
    const size_t n_dense = (size_t)s->model->dense_2.n_rows, n_ctx = (size_t)s->n_ctx;
    const bool exact = kern_exact() && pooling == HEARTH_POOL_MEAN;
    const pool_acc p = {.acc = calloc(d, sizeof(double)),
                        .row = malloc(d * sizeof(float)),
                        .mid = n_dense ? malloc(n_dense * sizeof(float)) : NULL,
                        .rows = exact ? malloc(n_ctx * d * sizeof(float)) : NULL,
                        .w = exact ? malloc(n_ctx * sizeof(float)) : NULL,
                        .pooling = pooling};
    hearth_session *views = malloc((size_t)max_pass * sizeof *views);
    if (!p.acc || !p.row || (n_dense && !p.mid) || (exact && (!p.rows || !p.w)) || !views) {
        free(p.acc);
        free(p.row);
        free(p.mid);
        free(p.rows);
        free(p.w);
        free(views);
        return hr_fail(HEARTH_ERR_NOMEM, "embed: out of memory");
    }
    s->pos = 0;
    s->moved_from = INT_MAX;
    s->logits_ok = false; /* the cache is overwritten; no logits are computed */
    off = 0;
    for (int i = 0; i < n_texts;) {
        int k = 1;
        session_win_reset(s); /* each text from position 0 */
        if (n_ids[i] > s->n_batch) {
            embed_long(s, &p, ids + off, n_ids[i]);
            pool_finish(s, &p, n_ids[i], normalize, out + (size_t)i * d);
        } else {
            k = embed_pass(s, views, &p, ids + off, n_ids + i,
                           n_texts - i < max_pass ? n_texts - i : max_pass, normalize,
                           out + (size_t)i * d);
        }
        for (int j = i; j < i + k; j++) off += (size_t)n_ids[j];
        i += k;
    }
    free(p.acc);
    free(p.row);
    free(p.mid);
    free(p.rows);
    free(p.w);
    free(views);
    return HEARTH_OK;
}

hearth_err hearth_embed(hearth_session *s, const int32_t *ids, int n, hearth_pooling pooling,
                        bool normalize, float *out) {
    return hearth_embed_batch(s, ids, &n, 1, pooling, normalize, out);
}
