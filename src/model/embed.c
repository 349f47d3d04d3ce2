/*
 * embed.c - hearth_embed: a text's vector from the model's last hidden
 * states. The forward pass runs without the output layer (the costliest
 * matrix of a small model); the rows are normalised as the output layer
 * would read them and pooled in double precision, so the mean does not
 * depend on how the tokens were split into batches.
 */
#include "session.h"

#include <math.h>
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

hearth_err hearth_embed(hearth_session *s, const int32_t *ids, int n, hearth_pooling pooling,
                        bool normalize, float *out) {
    const model_hparams *hp = &s->model->hp;
    if (n <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "embed: no tokens");
    if (pooling != HEARTH_POOL_MEAN && pooling != HEARTH_POOL_CLS && pooling != HEARTH_POOL_LAST)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "embed: unknown pooling %d", (int)pooling);
    if (n > s->n_ctx)
        return hr_fail(HEARTH_ERR_CONTEXT_FULL, "embed: %d tokens do not fit in a context of %d", n,
                       s->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= hp->n_vocab)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "embed: token id %d at index %d is outside the vocabulary (%d)", ids[i],
                           i, hp->n_vocab);
    const size_t d = (size_t)hp->n_embd;
    double *acc = calloc(d, sizeof *acc);
    float *row = malloc(d * sizeof *row);
    if (!acc || !row) {
        free(acc);
        free(row);
        return hr_fail(HEARTH_ERR_NOMEM, "embed: out of memory");
    }
    s->pos = 0;
    s->logits_ok = false; /* the cache is overwritten; no logits are computed */
    for (int done = 0; done < n;) {
        const int nb = n - done < s->n_batch ? n - done : s->n_batch;
        forward_batch(s, ids + done, nb, NULL, 0);
        memcpy(s->tokens + s->pos, ids + done, (size_t)nb * sizeof *ids);
        s->pos += nb;
        for (int t = 0; t < nb; t++) {
            const int at = done + t;
            if ((pooling == HEARTH_POOL_CLS && at != 0) ||
                (pooling == HEARTH_POOL_LAST && at != n - 1))
                continue;
            forward_hidden_row(s, t, row);
            for (size_t i = 0; i < d; i++) acc[i] += row[i];
        }
        done += nb;
    }
    s->pos = 0; /* no logits were computed: nothing to continue from */
    const double scale = pooling == HEARTH_POOL_MEAN ? 1.0 / n : 1.0;
    double norm2 = 0.0;
    for (size_t i = 0; i < d; i++) {
        acc[i] *= scale;
        norm2 += acc[i] * acc[i];
    }
    const double inv = normalize && norm2 > 0.0 ? 1.0 / sqrt(norm2) : 1.0;
    for (size_t i = 0; i < d; i++) out[i] = (float)(acc[i] * inv);
    free(acc);
    free(row);
    return HEARTH_OK;
}
