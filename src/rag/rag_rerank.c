/*
 * rag_rerank.c - the second stage of retrieval: the first stage (BM25,
 * vectors or both) hands over its best candidates, a reranker scores each
 * (question, chunk) pair, and its k best are kept in its order. The pairs
 * are built here for both callers, `hearth rag query|ask --rerank` (a
 * session of its own) and `hearth serve --rag-rerank` (its scheduler), so a
 * chunk is judged the same way by both: whole when the pair fits the
 * reranker's context, else by its head.
 */
#include "rag_impl.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int rag_rerank_depth(int k, int depth) {
    int n = depth > 0 ? depth : 4 * k < 20 ? 20 : 4 * k > 100 ? 100 : 4 * k;
    return n < k ? k : n;
}

hearth_err rag_rerank_pair(const hearth_model *m, const char *question, size_t question_len,
                           const char *doc, int32_t *ids, size_t cap, size_t *n_out, bool *cut) {
    const size_t whole = strlen(doc);
    size_t len = whole;
    *cut = false;
    for (;;) {
        size_t n = 0;
        const hearth_err err =
            hearth_tokenize_rerank(m, question, question_len, doc, len, ids, cap, &n);
        if (!err) {
            *n_out = n;
            *cut = len < whole;
            return HEARTH_OK;
        }
        if (err != HEARTH_ERR_INVALID_ARG || n <= cap) return err; /* not a matter of room */
        if (len == 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "rerank: the question alone takes %zu tokens of the reranker's %zu", n,
                           cap);
        /* the document's share of the tokens, shrunk by a margin: a cut
         * rarely needs more than two tries */
        size_t keep = (size_t)((double)len * (double)cap / (double)n * 0.95);
        if (keep >= len) keep = len - 1;
        while (keep > 0 && ((unsigned char)doc[keep] & 0xC0) == 0x80) keep--;
        len = keep;
    }
}

hearth_err rag_rerank(rag_hits *h, const float *scores, size_t k) {
    if (h->n == 0) return HEARTH_OK;
    int *order = malloc(h->n * sizeof *order);
    rag_hit *hit = malloc(h->n * sizeof *hit);
    if (!order || !hit || hearth_rank_order(scores, (int)h->n, order)) {
        free(order);
        free(hit);
        return hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory");
    }
    for (size_t i = 0; i < h->n; i++) {
        hit[i] = h->hit[order[i]];
        hit[i].retrieval_score = hit[i].score;
        hit[i].score = scores[order[i]];
        hit[i].reranked = true;
    }
    free(h->hit);
    free(order);
    h->hit = hit;
    for (size_t i = k; i < h->n; i++) rag_hit_fini(&hit[i]);
    if (k < h->n) h->n = k;
    return HEARTH_OK;
}
