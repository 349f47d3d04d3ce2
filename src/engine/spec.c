/*
 * spec.c - what speculative decoding proposes (generate.c verifies it): the
 * greedy continuation of a draft model, or prompt lookup (the tokens that
 * followed the last earlier occurrence of the text's final n-gram), and the
 * check that a draft model can propose tokens for a target at all.
 *
 * A text here is hist[0..n_hist) followed by one more token, `last` (the
 * session's tokens and the token just sampled), so that nothing is copied
 * on every step.
 */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Vocabulary sizes further apart than this are not the same tokenizer (the
 * padding of one family's larger models stays well under it). */
enum { SPEC_VOCAB_SLACK = 128 };

static int32_t text_at(const int32_t *hist, int n_hist, int32_t last, int i) {
    return i < n_hist ? hist[i] : last;
}

int spec_ngram(const int32_t *hist, int n_hist, int32_t last, int size_n, int max, int32_t *out) {
    const int n = n_hist + 1;
    if (size_n < 1 || n <= size_n || max < 1) return 0;
    /* The latest i < n - size_n whose n-gram equals the final one and is
     * followed by at least one token. */
    for (int i = n - size_n - 1; i >= 0; i--) {
        int j = 0;
        while (j < size_n &&
               text_at(hist, n_hist, last, i + j) == text_at(hist, n_hist, last, n - size_n + j))
            j++;
        if (j < size_n) continue;
        int k = 0;
        for (; k < max && i + size_n + k < n; k++)
            out[k] = text_at(hist, n_hist, last, i + size_n + k);
        return k;
    }
    return 0;
}

/* The most likely token under logits[0..n), or -1 when its probability is
 * under p_min. */
static int32_t draft_pick(const float *logits, int n, float p_min) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (p_min <= 0) return best;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - (double)logits[best]);
    return 1.0 / sum < (double)p_min ? -1 : best;
}

hearth_err spec_draft(hearth_session *draft, const int32_t *hist, int n_hist, int32_t last, int max,
                      float p_min, int n_vocab, int32_t *out, int *n_out) {
    *n_out = 0;
    const int n = n_hist + 1, room = hearth_session_n_ctx(draft) - n;
    if (room < 1) return HEARTH_OK; /* the draft's context is full: no proposals */
    if (max > room) max = room;
    /* Keep the longest prefix the draft already holds, with at least one
     * token to evaluate: its logits start the proposals. */
    const int32_t *held = model_session_tokens(draft);
    int c = 0;
    const int pos = hearth_session_pos(draft);
    while (c < pos && c < n - 1 && held[c] == text_at(hist, n_hist, last, c)) c++;
    c = hearth_session_keepable(draft, c); /* a sliding-window cache keeps less */
    hearth_err err = hearth_session_truncate(draft, c);
    /* Usually a token or two (what was drawn since the last proposals); the
     * whole prompt the first time. */
    int32_t small[16], *tail = n - c <= 16 ? small : malloc((size_t)(n - c) * sizeof *tail);
    if (!err && !tail) err = hr_fail(HEARTH_ERR_NOMEM, "speculative: %d tokens", n - c);
    if (!err) {
        for (int i = c; i < n; i++) tail[i - c] = text_at(hist, n_hist, last, i);
        err = hearth_decode(draft, tail, n - c, NULL, false);
    }
    if (tail != small) free(tail);
    const int nv = hearth_model_n_vocab(model_session_model(draft));
    for (int k = 0; !err && k < max; k++) {
        int32_t id = draft_pick(model_session_logits(draft), nv, p_min);
        if (id < 0 || id >= n_vocab) break;
        out[(*n_out)++] = id;
        if (k + 1 < max) err = hearth_decode(draft, &id, 1, NULL, false);
    }
    return err;
}

hearth_err hearth_draft_check(const hearth_model *target, const hearth_model *draft) {
    const tok_vocab *t = engine_vocab(target), *d = engine_vocab(draft);
    if (!t || !d) return hr_wrap(HEARTH_ERR_INVALID_ARG, "draft model: ");
    if (tok_vocab_type(t) != tok_vocab_type(d))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "draft model: its tokenizer is not the target's (%s, not %s)",
                       tok_model_name(d), tok_model_name(t));
    const int nt = tok_n_vocab(t), nd = tok_n_vocab(d);
    if (abs(nt - nd) > SPEC_VOCAB_SLACK)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "draft model: %d tokens against the target's %d (more than %d apart)", nd,
                       nt, SPEC_VOCAB_SLACK);
    const int n = nt < nd ? nt : nd;
    for (int32_t id = 0; id < n; id++) {
        size_t lt, ld;
        const char *a = tok_text(t, id, &lt), *b = tok_text(d, id, &ld);
        if (lt != ld || memcmp(a, b, lt) != 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "draft model: token %d is '%.*s' in the target and '%.*s' in the draft",
                           (int)id, (int)(lt < 40 ? lt : 40), a, (int)(ld < 40 ? ld : 40), b);
    }
    return HEARTH_OK;
}
