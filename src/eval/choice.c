/*
 * choice.c - scoring a multiple-choice task as llama-perplexity does: each
 * candidate is tokenized with its context (BOS as the vocabulary adds it),
 * the tokens all candidates share are evaluated once, then each candidate's
 * own tokens from the same KV cache (truncated back to the shared prefix
 * between them), and its tokens' log-probabilities are averaged. The rows
 * of one task are laid out as llama-perplexity's batch holds them (row 0:
 * the prefix's last position; then each sequence's positions after it), so
 * its index arithmetic, quirk included, carries over. The per-token
 * log-softmax over the vocabulary is the costly part beside the model and
 * is spread over the model's threads.
 */
#include "eval.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- log-probabilities --------------------------------------------------- */

typedef struct lp_job {
    const float *rows;
    int n_vocab;
    const eval_pair *pairs;
    size_t n;
    float *out;
} lp_job;

static void lp_part(void *ctx, int ith, int nth) {
    const lp_job *j = ctx;
    const size_t a = j->n * (size_t)ith / (size_t)nth, b = j->n * (size_t)(ith + 1) / (size_t)nth;
    for (size_t i = a; i < b; i++) {
        const float *row = j->rows + j->pairs[i].row * (size_t)j->n_vocab;
        float max = row[0];
        for (int t = 1; t < j->n_vocab; t++)
            if (row[t] > max) max = row[t];
        /* in float, as llama-perplexity's compute_logprobs (its sum starts at
         * 0: 0 + the first term is that term) */
        float sum = expf(row[0] - max);
        for (int t = 1; t < j->n_vocab; t++) sum += expf(row[t] - max);
        j->out[i] = row[j->pairs[i].tok] - max - logf(sum);
    }
}

void eval_logprobs(const hearth_model *m, const float *rows, int n_vocab, const eval_pair *pairs,
                   size_t n, float *out) {
    lp_job j = {rows, n_vocab, pairs, n, out};
    eval_parallel(m, n, lp_part, &j);
}

float eval_softmax_logprob(const float *row, int n_vocab, int32_t tok) {
    float max = row[0];
    for (int t = 1; t < n_vocab; t++)
        if (row[t] > max) max = row[t];
    double sum = 0;
    for (int t = 0; t < n_vocab; t++) sum += expf(row[t] - max);
    const float p = (float)((double)expf(row[tok] - max) / sum);
    return logf(p);
}

/* ---- a task's sequences --------------------------------------------------- */

void eval_scorer_init(eval_scorer *sc, hearth_session *s, const hearth_model *m, int max_tokens) {
    *sc =
        (eval_scorer){.s = s, .m = m, .n_vocab = hearth_model_n_vocab(m), .max_tokens = max_tokens};
}

void eval_scorer_fini(eval_scorer *sc) {
    free(sc->rows);
    free(sc->pairs);
    free(sc->lp);
    *sc = (eval_scorer){0};
}

/* The token sequences of one task: seq[i] = ids[i][0..n[i]), sharing cp. */
typedef struct seqs {
    int32_t *ids[100];
    int n[100];
    int n_seq, cp;
} seqs;

static void seqs_free(seqs *q) {
    for (int i = 0; i < q->n_seq; i++) free(q->ids[i]);
}

/* The tokens of the concatenated parts[0..n), BOS as the vocabulary adds it. */
static hearth_err tokens_of(const hearth_model *m, const char *const *parts, int n_parts,
                            int32_t **ids, int *n) {
    size_t len = 0;
    for (int i = 0; i < n_parts; i++) len += strlen(parts[i]);
    char *text = malloc(len + 1);
    if (!text) return HEARTH_ERR_NOMEM;
    char *at = text;
    for (int i = 0; i < n_parts; i++) {
        const size_t l = strlen(parts[i]);
        memcpy(at, parts[i], l);
        at += l;
    }
    *at = 0;
    const size_t cap = len + 2; /* a token covers at least a byte; BOS, EOS */
    size_t got = 0;
    int32_t *buf = hr_calloc(cap, sizeof *buf);
    hearth_err err =
        buf ? hearth_tokenize(m, text, len, true, false, buf, cap, &got) : HEARTH_ERR_NOMEM;
    free(text);
    if (!err && got > (size_t)INT32_MAX / 2) err = hr_fail(HEARTH_ERR_INVALID_ARG, "too long");
    if (err) {
        free(buf);
        return err;
    }
    *ids = buf;
    *n = (int)got;
    return HEARTH_OK;
}

/* Tokenizes each candidate and finds the shared prefix; refuses a task
 * llama-perplexity could not score (it would read out of bounds there). */
static hearth_err seqs_make(const eval_scorer *sc, const eval_task *t, const char *sep, seqs *q) {
    *q = (seqs){.n_seq = 0};
    if (t->n_endings < 1 || t->n_endings > 100)
        return hr_fail(HEARTH_ERR_FORMAT, "%d endings", t->n_endings);
    hearth_err err = HEARTH_OK;
    for (int e = 0; e < t->n_endings && !err; e++) {
        /* WinoGrande's sentence goes on after the choice */
        const char *parts[] = {t->context, sep, t->endings[e], t->second ? t->second : ""};
        err = tokens_of(sc->m, parts, 4, &q->ids[e], &q->n[e]);
        if (!err) q->n_seq = e + 1;
    }
    if (err) {
        seqs_free(q);
        return err;
    }
    int min = q->n[0];
    for (int e = 1; e < q->n_seq; e++) min = q->n[e] < min ? q->n[e] : min;
    int cp = 0;
    for (bool same = true; cp < min && same; cp += same) {
        for (int e = 1; e < q->n_seq && same; e++) same = q->ids[e][cp] == q->ids[0][cp];
    }
    q->cp = cp;
    long need = cp;
    for (int e = 0; e < q->n_seq; e++) need += q->n[e] - cp;
    if (cp == 0)
        err = hr_fail(HEARTH_ERR_FORMAT, "its candidates share no first token (no BOS, and they "
                                         "differ from the start): nothing to condition on");
    else if (cp == min)
        err = hr_fail(HEARTH_ERR_FORMAT,
                      "a candidate adds no token to what all share (two candidates alike?)");
    else if (need > sc->max_tokens)
        err = hr_fail(HEARTH_ERR_CONTEXT_FULL,
                      "it does not fit in the context window (requires %ld tokens, the context "
                      "holds %d: 4 x -c)",
                      need, sc->max_tokens);
    if (err) seqs_free(q);
    return err;
}

static hearth_err grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return HEARTH_OK;
    void *n = realloc(*p, need * elem);
    if (!n) return hr_fail(HEARTH_ERR_NOMEM, "no memory for %zu logits rows", need);
    *p = n;
    *cap = need;
    return HEARTH_OK;
}

/* Evaluates a task's sequences into sc->rows: row 0 the prefix's last
 * position, then each sequence's positions cp.. its end (with `last`) or
 * its end - 1. */
static hearth_err seqs_rows(eval_scorer *sc, const seqs *q, bool last) {
    size_t n_rows = 1;
    for (int e = 0; e < q->n_seq; e++) n_rows += (size_t)(q->n[e] - q->cp - !last);
    size_t cap = sc->cap_rows, elem = (size_t)sc->n_vocab * sizeof(float);
    hearth_err err = grow((void **)&sc->rows, &cap, n_rows, elem);
    sc->cap_rows = cap;
    if (!err) err = hearth_session_truncate(sc->s, 0);
    if (!err) err = hearth_decode(sc->s, q->ids[0], q->cp, sc->rows, false);
    size_t at = 1;
    for (int e = 0; e < q->n_seq && !err; e++) {
        const int n = q->n[e] - q->cp - !last;
        /* a sliding-window cache that dropped part of the prefix's window
           (a long sequence before): the prefix again */
        const int keep = hearth_session_keepable(sc->s, q->cp);
        err = hearth_session_truncate(sc->s, keep);
        if (!err && keep < q->cp)
            err = hearth_decode(sc->s, q->ids[e] + keep, q->cp - keep, NULL, false);
        if (!err && n > 0)
            err = hearth_decode(sc->s, q->ids[e] + q->cp, n, sc->rows + at * (size_t)sc->n_vocab,
                                true);
        at += (size_t)n;
    }
    return err;
}

/* Room for n pairs and their log-probabilities. */
static hearth_err want_pairs(eval_scorer *sc, size_t n) {
    if (n <= sc->cap_pairs) return HEARTH_OK;
    eval_pair *pairs = realloc(sc->pairs, n * sizeof *pairs);
    if (pairs) sc->pairs = pairs;
    float *lp = pairs ? realloc(sc->lp, n * sizeof *lp) : NULL;
    if (!lp) return hr_fail(HEARTH_ERR_NOMEM, "no memory for %zu log-probabilities", n);
    sc->lp = lp;
    sc->cap_pairs = n;
    return HEARTH_OK;
}

hearth_err eval_score_endings(eval_scorer *sc, const eval_task *t, bool float_sum, double *score,
                              int *best) {
    seqs q;
    hearth_err err = seqs_make(sc, t, " ", &q);
    if (err) return err;
    const int cp = q.cp;
    size_t n_pairs = 0;
    for (int e = 0; e < q.n_seq; e++) n_pairs += (size_t)(q.n[e] - 1 - cp);
    err = seqs_rows(sc, &q, false);
    if (!err) err = want_pairs(sc, n_pairs ? n_pairs : 1);
    if (err) {
        seqs_free(&q);
        return err;
    }
    /* every token after an ending's first, from its own rows (row 1 on) */
    size_t k = 0;
    for (int e = 0; e < q.n_seq; e++)
        for (int j = cp; j < q.n[e] - 1; j++, k++)
            sc->pairs[k] = (eval_pair){k + 1, q.ids[e][j + 1]};
    eval_logprobs(sc->m, sc->rows, sc->n_vocab, sc->pairs, n_pairs, sc->lp);
    k = 0;
    *best = 0;
    for (int e = 0; e < q.n_seq; e++) {
        /* the ending's first token from the prefix's last row, by softmax */
        const float first = eval_softmax_logprob(sc->rows, sc->n_vocab, q.ids[e][cp]);
        const int count = q.n[e] - cp;
        if (float_sum) { /* multiple choice: a float sum and mean */
            float sum = first;
            for (int j = cp; j < q.n[e] - 1; j++) sum += sc->lp[k++];
            score[e] = (double)(sum / (float)count);
        } else { /* HellaSwag: in double */
            double sum = first;
            for (int j = cp; j < q.n[e] - 1; j++) sum += sc->lp[k++];
            score[e] = sum / count;
        }
        if (score[e] > score[*best]) *best = e;
    }
    seqs_free(&q);
    return HEARTH_OK;
}

/* WinoGrande's range of sequence e: tokens j+1 for j in [base - 1, end),
 * with base the tokens before the words scored. */
typedef struct wg_span {
    int base, end;
} wg_span;

hearth_err eval_score_winogrande(eval_scorer *sc, const eval_task *t, float score[2]) {
    if (t->n_endings != 2 || !t->second)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "not a WinoGrande task");
    seqs q;
    hearth_err err = seqs_make(sc, t, "", &q);
    if (err) return err;
    const int cp = q.cp;
    /* the words after the choice are scored when both sentences go on for
     * more than 3 tokens after the shared prefix; else all after it */
    const bool skip_choice = q.n[0] - cp > 3 && q.n[1] - cp > 3;
    wg_span sp[2];
    for (int e = 0; e < 2 && !err; e++) {
        int base = cp;
        if (skip_choice) {
            int32_t *ids = NULL;
            const char *parts[] = {t->context, t->endings[e]};
            err = tokens_of(sc->m, parts, 2, &ids, &base);
            free(ids);
        }
        if (!err && (base < cp || base >= q.n[e]))
            err = hr_fail(HEARTH_ERR_FORMAT,
                          "choice %d tokenizes with the sentence's start into %d tokens, not "
                          "between the shared %d and the sentence's %d",
                          e + 1, base, cp, q.n[e]);
        /* the sentence's last token is not scored unless it is the only one */
        sp[e] = (wg_span){base, q.n[e] - 1 - (q.n[e] - base > 1)};
    }
    if (!err) err = seqs_rows(sc, &q, true);
    if (!err) {
        const int n_scored = sp[0].end - sp[0].base + 1 + sp[1].end - sp[1].base + 1; /* < n_ctx */
        err = want_pairs(sc, (size_t)n_scored);
    }
    if (err) {
        seqs_free(&q);
        return err;
    }
    /* rows: 0 = position cp-1; sequence 0's positions cp.. at 1..; sequence
     * 1's after those. llama-perplexity's first row for sequence 1 is
     * n[0] - cp + base - cp, right when base > cp; when base = cp it is
     * sequence 0's last row, not row 0 (its FIXME), and so here */
    size_t k = 0;
    for (int e = 0; e < 2; e++) {
        size_t row = e == 0 ? (size_t)(sp[0].base - cp) : (size_t)(q.n[0] - cp + sp[1].base - cp);
        for (int j = sp[e].base - 1; j < sp[e].end; j++)
            sc->pairs[k++] = (eval_pair){row++, q.ids[e][j + 1]};
    }
    eval_logprobs(sc->m, sc->rows, sc->n_vocab, sc->pairs, k, sc->lp);
    k = 0;
    for (int e = 0; e < 2; e++) {
        float sum = 0;
        for (int j = sp[e].base - 1; j < sp[e].end; j++) sum += sc->lp[k++];
        score[e] = sum / (float)(sp[e].end - sp[e].base + 1);
    }
    seqs_free(&q);
    return HEARTH_OK;
}
