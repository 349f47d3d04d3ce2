/*
 * test_lfm2.c - LFM2's short-convolution layers through the session
 * operations that move positions. A session keeps each convolution
 * layer's inputs (b * x) per position (session.h), so that what a
 * truncation, a context shift or a reused prefix leaves behind is what the
 * positions it keeps computed. Checked on a synthetic LFM2 (convolutions on
 * layers 0, 1 and 3, attention on 2 and 4), F32 and Q8_0 weights, in both
 * numeric modes:
 *  - truncation: 12 tokens decoded, the session truncated to 7 and 9 more
 *    decoded give the logits of a session that decoded the 7 and then the
 *    9, bit for bit (a state of only the last conv_l - 1 inputs would read
 *    those of positions 10 and 11 instead);
 *  - context shift: the kept rows of every convolution history stay, the
 *    moved ones are the old rows byte for byte, and the next token's
 *    logits are those of a session whose histories and caches were given
 *    the same content (here: the copy of the shifted one, decoded on);
 *  - the memory reported: K and V of the attention layers plus the
 *    histories;
 *  - hearth_generate's reuse of a prompt prefix gives the same tokens as a
 *    fresh session.
 * Copies, session files, continuous batching, speculative decoding,
 * embeddings and LoRA run LFM2 in their own tests' architecture lists;
 * llama.cpp's logits for it are in test_archs.
 */
#include "hybrid_test.h"
#include "model/session.h"

#include <math.h>

static void truncation(hearth_model *m, const char *what) {
    const size_t nv = (size_t)hearth_model_n_vocab(m);
    float *a = malloc(nv * sizeof *a), *b = malloc(nv * sizeof *b);
    REQUIRE(a && b);
    hearth_session *s = session(m), *t = session(m);
    feed(s, 0, N_FIRST, a);
    REQUIRE(hearth_session_truncate(s, N_KEEP_T) == HEARTH_OK);
    feed(s, N_KEEP_T, N_MORE, a);
    feed(t, 0, N_KEEP_T, b);
    feed(t, N_KEEP_T, N_MORE, b);
    CHECKF(!memcmp(a, b, nv * sizeof *a), "%s: decoding on after a truncation differs", what);
    /* the same one token at a time after the truncation (the kernel's rows within a batch) */
    REQUIRE(hearth_session_truncate(s, N_KEEP_T) == HEARTH_OK);
    for (int i = 0; i < N_MORE; i++) feed(s, N_KEEP_T + i, 1, a);
    float d = 0.0f;
    for (size_t i = 0; i < nv; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    CHECKF(d < 1e-3f, "%s: one token at a time differs from the batch by %g", what, (double)d);
    hearth_session_free(s);
    hearth_session_free(t);
    free(a);
    free(b);
}

static void shift(hearth_model *m, const char *what) {
    const model_hparams *hp = &m->hp;
    const size_t nv = (size_t)hp->n_vocab, row = (size_t)hp->n_embd * sizeof(float);
    enum { KEEP = 3, DISCARD = 5 };
    hearth_session *s = session(m);
    float *a = malloc(nv * sizeof *a), *b = malloc(nv * sizeof *b);
    float *before = malloc((size_t)hp->n_conv * N_FIRST * row);
    REQUIRE(a && b && before);
    feed(s, 0, N_FIRST, a);
    for (int slot = 0; slot < hp->n_conv; slot++)
        memcpy(before + (size_t)slot * N_FIRST * (size_t)hp->n_embd, session_conv_row(s, slot, 0),
               N_FIRST * row);
    REQUIRE(hearth_session_shift(s, KEEP, DISCARD) == HEARTH_OK);
    CHECK(hearth_session_pos(s) == N_FIRST - DISCARD);
    for (int slot = 0; slot < hp->n_conv; slot++) {
        const float *old = before + (size_t)slot * N_FIRST * (size_t)hp->n_embd;
        CHECKF(!memcmp(session_conv_row(s, slot, 0), old, KEEP * row), "%s: slot %d's kept rows",
               what, slot);
        CHECKF(!memcmp(session_conv_row(s, slot, KEEP), old + (size_t)(KEEP + DISCARD) * hp->n_embd,
                       (N_FIRST - KEEP - DISCARD) * row),
               "%s: slot %d's moved rows", what, slot);
    }
    /* decoding on reads the moved rows: a copy of the shifted session decodes alike */
    hearth_session *t = session(m);
    REQUIRE(hearth_session_copy(t, s, hearth_session_pos(s)) == HEARTH_OK);
    feed(s, 50, 4, a);
    feed(t, 50, 4, b);
    CHECKF(!memcmp(a, b, nv * sizeof *a), "%s: decoding after the shift", what);
    /* and the moved rows matter: zeroing one changes the next logits */
    REQUIRE(hearth_session_copy(t, s, hearth_session_pos(s)) == HEARTH_OK);
    memset(session_conv_row(t, 0, hearth_session_pos(t) - 1), 0, row);
    feed(s, 60, 1, a);
    feed(t, 60, 1, b);
    CHECKF(memcmp(a, b, nv * sizeof *a) != 0, "%s: the history is not read", what);
    hearth_session_free(s);
    hearth_session_free(t);
    free(before);
    free(a);
    free(b);
}

static void memory(hearth_model *m, const char *what) {
    const model_hparams *hp = &m->hp;
    hearth_session *s = session(m);
    const hearth_memory mem = hearth_session_memory(s);
    const uint64_t pad = (uint64_t)s->n_ctx_pad,
                   kv = 2 * (uint64_t)(hp->n_layer - hp->n_conv) * (uint64_t)hp->n_head_kv * pad *
                        s->kv_row_bytes,
                   conv = (uint64_t)hp->n_conv * pad * (uint64_t)hp->n_embd * sizeof(float);
    CHECKF(mem.kv_bytes == kv + conv, "%s: kv_bytes %llu, expected %llu", what,
           (unsigned long long)mem.kv_bytes, (unsigned long long)(kv + conv));
    hearth_session_free(s);
}

static void checks(hearth_model *m, const char *what) {
    truncation(m, what);
    shift(m, what);
    memory(m, what);
    reuse(m, what);
}

int main(void) {
    hybrid_each("lfm2", 256, 3, 77, checks);
    return test_done("lfm2");
}
