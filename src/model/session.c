/*
 * session.c - a session: one sequence's KV cache and every activation buffer,
 * sized once at creation so that decoding allocates nothing (llama2.c's
 * RunState), hearth_decode, which feeds tokens through forward.c in
 * batches of at most n_batch, hearth_decode_multi, one batch of tokens
 * from several sessions (continuous batching), and hearth_session_copy, one
 * session's prefix (KV cache, tokens, last logits) into another, so that
 * several generations from one prompt evaluate it once. The KV cache is
 * F32, F16 (the default, as llama.cpp's) or Q8_0 (hearth_kv_type); whatever
 * reads or moves it goes by its slot's row size per position and kv head
 * (session_kv_row, session_kv_head), the same for K and V.
 */
#include "session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* F16 by default: half F32's memory and faster from a few hundred positions
 * on, for about 0.006 in a logit (docs/kv-cache.md). A zero-initialised
 * hearth_session_params still means F32 (the enum's 0). */
hearth_session_params hearth_session_default_params(void) {
    return (hearth_session_params){
        .n_ctx = 0, .n_batch = 0, .kv_type = HEARTH_KV_F16, .n_seq_max = 1};
}

/* Bytes the matrix products need for converted activations: the largest over
 * every weight the forward pass multiplies. */
static size_t weight_scratch(const model_weight *w, int n_batch) {
    return w->data ? kern_matmul_scratch_bytes(w->type, w->n_cols, n_batch) : 0;
}

static size_t scratch_bytes(hearth_model *m, int n_batch) {
    size_t max = weight_scratch(&m->output, n_batch);
    const size_t d3 = weight_scratch(&m->dense_3, n_batch); /* EmbeddingGemma's 3072 inputs */
    max = d3 > max ? d3 : max;
    model_weight *ws[MODEL_LAYER_PRODUCTS + 3 * MODEL_MAX_EXPERTS];
    for (int il = 0; il < m->hp.n_layer; il++) {
        const int n = model_layer_products(&m->layers[il], m->hp.n_expert, ws);
        for (int i = 0; i < n; i++) {
            const size_t b = weight_scratch(ws[i], n_batch);
            max = b > max ? b : max;
        }
    }
    return max;
}

/* Allocates n floats (64-byte aligned), adding their size to *total, or
 * records failure in *err. */
static float *alloc_f32(size_t n, uint64_t *total, hearth_err *err) {
    if (*err) return NULL;
    uint64_t bytes;
    if (!hr_mul_ok(n, sizeof(float), &bytes) || bytes > SIZE_MAX / 2) {
        *err = hr_fail(HEARTH_ERR_NOMEM, "session: buffer of %zu floats is too large", n);
        return NULL;
    }
    float *p = hr_aligned_alloc((size_t)bytes);
    if (!p) *err = HEARTH_ERR_NOMEM;
    *total += bytes;
    return p;
}

/* The positions a window slot holds in a sliding-window cache: the batch,
 * the window before its first token, the spare and a tile (the base moves
 * in whole tiles); n_ctx_pad when that is no fewer, or the session keeps
 * every position (swa_full, an encoder's one layer). */
static int win_positions(const hearth_session *s, bool swa_full) {
    const hearth_model *m = s->model;
    if (swa_full || s->kv_one_layer || m->hp.swa_window <= 0) return s->n_ctx_pad;
    const int64_t need =
        (int64_t)s->n_batch + session_swa_reach(s) + KV_WIN_SPARE + 2 * KERN_KV_TILE - 1;
    const int64_t pad = need / KERN_KV_TILE * KERN_KV_TILE;
    return pad < s->n_ctx_pad ? (int)pad : s->n_ctx_pad;
}

/* Each cache slot's head size, whether it is a window slot, and where its
 * heads' blocks start (slots in order, the next slot's start past the last:
 * the cache's bytes). */
static hearth_err kv_slots(hearth_session *s, bool swa_full) {
    const hearth_model *m = s->model;
    const int n = s->kv_one_layer ? 1 : model_kv_layers(&m->hp);
    if (!(s->kv_slot_hd = hr_calloc((size_t)n + 1, sizeof *s->kv_slot_hd)) ||
        !(s->kv_slot_off = hr_calloc((size_t)n + 1, sizeof *s->kv_slot_off)))
        return HEARTH_ERR_NOMEM;
    s->win_pos = win_positions(s, swa_full);
    if (s->win_pos < s->n_ctx_pad && !(s->kv_slot_win = hr_calloc((size_t)n, 1)))
        return HEARTH_ERR_NOMEM;
    s->kv_slot_hd[0] = m->hp.head_dim; /* an encoder's one slot */
    for (int il = 0; il < m->hp.n_layer && !s->kv_one_layer; il++) {
        const model_layer *l = &m->layers[il];
        if (l->kv_slot < 0 || l->kv_shared) continue;
        s->kv_slot_hd[l->kv_slot] = l->head_dim;
        if (s->kv_slot_win) s->kv_slot_win[l->kv_slot] = l->swa;
    }
    for (int slot = 0; slot < n; slot++) {
        uint64_t head, bytes;
        if (!hr_mul_ok((size_t)session_kv_npos(s, slot), session_kv_row(s, slot), &head) ||
            !hr_mul_ok((size_t)head, (size_t)m->hp.n_head_kv, &bytes) ||
            bytes > SIZE_MAX / 8 - s->kv_slot_off[slot])
            return hr_fail(HEARTH_ERR_NOMEM, "session: a KV cache of %d positions is too large",
                           s->n_ctx);
        s->kv_slot_off[slot + 1] = s->kv_slot_off[slot] + (size_t)bytes;
    }
    return HEARTH_OK;
}

/* An encoder has no output layer and keeps no cache: it embeds
 * (hearth_embed), it does not decode. */
static hearth_err encoder_refuses(const hearth_model *m, const char *what) {
    return hr_fail(HEARTH_ERR_UNSUPPORTED,
                   "%s: '%s' is an embedding model (an encoder without an output layer): it "
                   "computes embeddings (hearth embed, /v1/embeddings), not text or logits",
                   what, m->arch->name);
}

hearth_err hearth_session_new(hearth_model *m, const hearth_session_params *params,
                              hearth_session **out) {
    hearth_session_params p = params ? *params : hearth_session_default_params();
    const model_hparams *hp = &m->hp;
    if (p.n_ctx <= 0) p.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (p.n_batch <= 0) p.n_batch = 512;
    if (m->arch->encoder) {
        /* A text's tokens all see each other: one pass takes a whole text.
         * K and V are the layer's activations, in F32 as llama.cpp keeps
         * them without a cache. */
        p.n_batch = p.n_ctx;
        p.kv_type = HEARTH_KV_F32;
        if (m->arch->learned_pos && p.n_ctx > hp->n_ctx_train)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "session: %s has learned positions for %d tokens, not a context of %d",
                           m->arch->name, hp->n_ctx_train, p.n_ctx);
    }
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    if (p.n_seq_max <= 0) p.n_seq_max = 1;
    if (p.n_seq_max > p.n_batch) p.n_seq_max = p.n_batch;
    if (p.n_ctx > (1 << 24))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "session: context of %d positions is over 2^24",
                       p.n_ctx);
    if (p.kv_type != HEARTH_KV_F32 && p.kv_type != HEARTH_KV_F16 && p.kv_type != HEARTH_KV_Q8_0)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session: unknown KV cache type %d (HEARTH_KV_F32, _F16 or _Q8_0)",
                       (int)p.kv_type);

    hearth_session *s = hr_calloc(1, sizeof *s);
    if (!s) return HEARTH_ERR_NOMEM;
    s->model = m;
    s->n_ctx = p.n_ctx;
    s->n_batch = p.n_batch;
    s->rope_factors = model_rope_factors(m, p.n_ctx);
    s->kv_type = p.kv_type == HEARTH_KV_F16    ? KERN_F16
                 : p.kv_type == HEARTH_KV_Q8_0 ? KERN_Q8_0
                                               : KERN_F32;
    /* a Q8_0 head that is no multiple of 32 is padded to whole blocks */
    /* the buffers that hold any layer's heads are sized for the widest
       (Gemma 4's global ones); each cache slot has its own rows (kv_slots) */
    const int hd = model_max_head_dim(hp);
    s->kv_row_bytes = kern_kv_row_bytes(s->kv_type, hd);
    s->n_q = hp->n_head * hd;
    s->n_kv = hp->n_head_kv * hd;
    s->n_threads = hr_pool_size(m->pool);
    s->n_seq_max = p.n_seq_max;
    s->moved_from = INT_MAX;

    const size_t nb = (size_t)p.n_batch;
    hearth_err err = HEARTH_OK;
    s->x = alloc_f32(nb * (size_t)hp->n_embd, &s->buffer_bytes, &err);
    s->xb = alloc_f32(nb * (size_t)hp->n_embd, &s->buffer_bytes, &err);
    s->qkv = alloc_f32(nb * (size_t)(s->n_q + 2 * s->n_kv), &s->buffer_bytes, &err);
    if (m->arch->attn_gate) s->qgate = alloc_f32(nb * 2 * (size_t)s->n_q, &s->buffer_bytes, &err);
    /* a short convolution's c * conv, a Mamba-2 layer's y go where the
       attention's output does */
    int att_cols = hp->n_conv && hp->n_embd > s->n_q ? hp->n_embd : s->n_q;
    if (hp->n_ssm && hp->ssm_inner > att_cols) att_cols = hp->ssm_inner;
    s->att = alloc_f32(nb * (size_t)att_cols, &s->buffer_bytes, &err);
    if (hp->n_conv) s->conv_bcx = alloc_f32(nb * 3 * (size_t)hp->n_embd, &s->buffer_bytes, &err);
    if (hp->ssm_parallel) s->ssm_x = alloc_f32(nb * (size_t)hp->n_embd, &s->buffer_bytes, &err);
    if (hp->n_ssm) {
        const size_t conv = (size_t)model_ssm_conv_dim(hp),
                     states = (size_t)hp->n_ssm * (size_t)model_ssm_state_floats(hp);
        const size_t heads = (size_t)hp->ssm_heads * (m->arch->gdn ? 2 : 1); /* dt; beta, alpha */
        s->ssm_zx = alloc_f32(nb * (conv + (size_t)hp->ssm_inner + heads), &s->buffer_bytes, &err);
        s->ssm_xbc = alloc_f32(nb * conv, &s->buffer_bytes, &err);
        s->ssm_rs = alloc_f32(states, &s->ssm_bytes, &err);
        s->ssm_cp = alloc_f32(states, &s->ssm_bytes, &err);
        s->rs_pos = s->cp_pos = -1;
    }
    /* a mixture of experts runs the FFN on each token's k choices at once,
       and its shared expert on the tokens, in the same buffers; hb also
       holds Gemma 4's per-layer embedding gates */
    size_t ffn_floats = nb * (size_t)(hp->n_expert ? hp->n_expert_used : 1) * (size_t)hp->n_ff;
    if (nb * (size_t)hp->n_ff_shexp > ffn_floats) ffn_floats = nb * (size_t)hp->n_ff_shexp;
    if (nb * (size_t)hp->n_ff_dense > ffn_floats) ffn_floats = nb * (size_t)hp->n_ff_dense;
    if (nb * (size_t)hp->n_embd_pl > ffn_floats) ffn_floats = nb * (size_t)hp->n_embd_pl;
    if (nb * (size_t)hp->laurel_rank > ffn_floats) ffn_floats = nb * (size_t)hp->laurel_rank;
    s->ffn = alloc_f32(2 * ffn_floats, &s->buffer_bytes, &err);
    s->hb = alloc_f32(ffn_floats, &s->buffer_bytes, &err);
    s->rope = alloc_f32(nb * (size_t)model_max_rot(hp), &s->buffer_bytes, &err);
    if (hp->n_embd_pl) {
        const size_t width = (size_t)hp->n_layer * (size_t)hp->n_embd_pl;
        s->pl_inp = alloc_f32(nb * width, &s->buffer_bytes, &err);
        s->pl_row = alloc_f32(nb * width, &s->buffer_bytes, &err);
    }
    if (m->arch->altup) {
        const size_t rows = nb * (size_t)hp->n_embd;
        s->alt = alloc_f32(MODEL_ALTUP * rows, &s->buffer_bytes, &err);
        s->alt_pred = alloc_f32(MODEL_ALTUP * rows, &s->buffer_bytes, &err);
        s->alt_laurel = alloc_f32(rows, &s->buffer_bytes, &err);
        s->alt_mod = alloc_f32(nb * MODEL_ALTUP, &s->buffer_bytes, &err);
        s->alt_coef = alloc_f32(nb * MODEL_ALTUP * MODEL_ALTUP, &s->buffer_bytes, &err);
    }
    if (hp->n_expert > 0) {
        const size_t k = (size_t)hp->n_expert_used, ne = (size_t)hp->n_expert;
        s->moe_logits = alloc_f32(nb * ne, &s->buffer_bytes, &err);
        s->moe_w = alloc_f32(nb * k, &s->buffer_bytes, &err);
        s->moe_x = alloc_f32(nb * k * (size_t)hp->n_embd, &s->buffer_bytes, &err);
        /* the chosen experts' rows, then the shared expert's */
        s->moe_y =
            alloc_f32(nb * (k + (hp->n_ff_shexp > 0)) * (size_t)hp->n_embd, &s->buffer_bytes, &err);
        if (!err && (!(s->moe_sel = hr_calloc(nb * k, sizeof *s->moe_sel)) ||
                     !(s->moe_pos = hr_calloc(nb * k, sizeof *s->moe_pos)) ||
                     !(s->moe_start = hr_calloc(2 * ne + 1, sizeof *s->moe_start))))
            err = HEARTH_ERR_NOMEM;
        s->buffer_bytes += (2 * nb * k + 2 * ne + 1) * sizeof(int32_t);
    }
    s->logits = alloc_f32((size_t)hp->n_vocab, &s->buffer_bytes, &err);
    if (p.n_seq_max > 1)
        s->out_rows = alloc_f32((size_t)p.n_seq_max * (size_t)hp->n_vocab, &s->buffer_bytes, &err);
    if (!err && !(s->runs = hr_calloc(nb, sizeof *s->runs))) err = HEARTH_ERR_NOMEM;
    if (!err && !(s->tokens = hr_calloc((size_t)p.n_ctx, sizeof *s->tokens)))
        err = HEARTH_ERR_NOMEM;
    /* K and V: [kv layers][n_head_kv][n_ctx_pad] positions of the layer's
     * row size each (K in transposed tiles, session.h); never read before
     * written. */
    s->n_ctx_pad = (p.n_ctx + KERN_KV_TILE - 1) / KERN_KV_TILE * KERN_KV_TILE;
    s->kv_one_layer = m->arch->encoder;
    uint64_t kv_one = 0;
    if (!err) err = kv_slots(s, p.swa_full);
    if (!err) kv_one = s->kv_slot_off[s->kv_one_layer ? 1 : model_kv_layers(hp)];
    if (!err) s->kv_bytes = 2 * kv_one; /* before mapping: free unmaps by it */
    /* Mapped pages, not zeroed heap: resident only as positions are written. */
    if (!err && !(s->k_cache = hr_pages_alloc((size_t)kv_one))) err = HEARTH_ERR_NOMEM;
    if (!err && !(s->v_cache = hr_pages_alloc((size_t)kv_one))) err = HEARTH_ERR_NOMEM;
    uint64_t conv_floats;
    if (!err && hp->n_conv &&
        (!hr_mul_ok((size_t)hp->n_conv * (size_t)s->n_ctx_pad, (size_t)hp->n_embd, &conv_floats) ||
         conv_floats > SIZE_MAX / 8))
        err = hr_fail(HEARTH_ERR_NOMEM, "session: convolution history of %d layers is too large",
                      hp->n_conv);
    if (!err && hp->n_conv) {
        s->conv_bytes = conv_floats * sizeof(float);
        if (!(s->conv_hist = hr_pages_alloc((size_t)s->conv_bytes))) err = HEARTH_ERR_NOMEM;
    }
    s->attn_work_floats = kern_attn_work_floats(hd, s->n_ctx_pad);
    if (s->kv_slot_win) { /* or a context shift's copy of a window slot (kv_shift.c) */
        const size_t shift = 2 * (size_t)hd + ((size_t)s->win_pos + 1) * s->kv_row_bytes / 4 + 1;
        if (shift > s->attn_work_floats) s->attn_work_floats = (shift + 15) / 16 * 16;
    }
    s->attn_work = alloc_f32((size_t)s->n_threads * s->attn_work_floats, &s->buffer_bytes, &err);
    size_t sb = scratch_bytes(m, p.n_batch), lora_sb, ax, bx;
    model_lora_sizes(m, p.n_batch, &lora_sb, &ax, &bx);
    if (lora_sb > sb) sb = lora_sb;
    if (ax) s->lora_ax = alloc_f32(ax, &s->buffer_bytes, &err);
    if (bx) s->lora_bx = alloc_f32(bx, &s->buffer_bytes, &err);
    if (!err && sb && !(s->scratch = hr_aligned_alloc(sb))) err = HEARTH_ERR_NOMEM;
    s->buffer_bytes += sb + (size_t)p.n_ctx * sizeof *s->tokens + nb * sizeof *s->runs;
    if (err) {
        hearth_session_free(s);
        return hr_wrap(err, "creating a session of %d positions: ", p.n_ctx);
    }
    *out = s;
    return HEARTH_OK;
}

void hearth_session_free(hearth_session *s) {
    if (!s) return;
    free(s->x);
    free(s->xb);
    free(s->qkv);
    free(s->att);
    free(s->ffn);
    free(s->hb);
    free(s->attn_work);
    free(s->rope);
    free(s->pl_inp);
    free(s->pl_row);
    free(s->ssm_x);
    free(s->alt);
    free(s->alt_pred);
    free(s->alt_laurel);
    free(s->alt_mod);
    free(s->alt_coef);
    free(s->moe_logits);
    free(s->moe_sel);
    free(s->moe_w);
    free(s->moe_pos);
    free(s->moe_start);
    free(s->moe_x);
    free(s->moe_y);
    free(s->logits);
    free(s->out_rows);
    free(s->rows);
    free(s->runs);
    free(s->tokens);
    free(s->kv_slot_hd);
    free(s->kv_slot_off);
    free(s->kv_slot_win);
    hr_pages_free(s->k_cache, (size_t)s->kv_bytes / 2);
    hr_pages_free(s->v_cache, (size_t)s->kv_bytes / 2);
    hr_pages_free(s->conv_hist, (size_t)s->conv_bytes);
    free(s->conv_bcx);
    free(s->ssm_zx);
    free(s->qgate);
    free(s->ssm_xbc);
    free(s->ssm_rs);
    free(s->ssm_cp);
    free(s->scratch);
    free(s->lora_ax);
    free(s->lora_bx);
    free(s);
}

hearth_memory hearth_session_memory(const hearth_session *s) {
    return (hearth_memory){.file_bytes = gguf_file_size(s->model->gguf),
                           .kv_bytes = s->kv_bytes + s->conv_bytes + s->ssm_bytes,
                           .buffer_bytes = s->buffer_bytes,
                           .packed_bytes = s->model->packed_bytes,
                           .packed_file_bytes = s->model->packed_file_bytes};
}

int hearth_session_pos(const hearth_session *s) { return s->pos; }
int hearth_session_n_ctx(const hearth_session *s) { return s->n_ctx; }
const int32_t *model_session_tokens(const hearth_session *s) { return s->tokens; }
const int32_t *hearth_session_tokens(const hearth_session *s, int *n_exact) {
    if (n_exact) *n_exact = s->pos < s->moved_from ? s->pos : s->moved_from;
    return s->tokens;
}
hearth_model *model_session_model(const hearth_session *s) { return s->model; }
const float *model_session_logits(const hearth_session *s) { return s->logits; }
bool model_session_has_logits(const hearth_session *s) { return s->logits_ok; }
int model_session_n_batch(const hearth_session *s) { return s->n_batch; }

hearth_err model_session_keep_rows(hearth_session *s, int k) {
    if (k < 1 || k > s->n_batch)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "session: cannot keep %d rows of logits", k);
    if (k > s->rows_cap) {
        const size_t row = (size_t)s->model->hp.n_vocab * sizeof(float);
        float *grown = realloc(s->rows, (size_t)k * row);
        if (!grown) return hr_fail(HEARTH_ERR_NOMEM, "session: %d rows of logits", k);
        s->buffer_bytes += (uint64_t)(k - s->rows_cap) * row;
        s->rows = grown;
        s->rows_cap = k;
    }
    s->keep_rows = k;
    return HEARTH_OK;
}

const float *model_session_row(const hearth_session *s, int i) {
    return s->rows + (size_t)i * (size_t)s->model->hp.n_vocab;
}

/* Moves each window slot's rows [from - win_base, ...) of n positions to
 * its start (from: a multiple of KERN_KV_TILE, so K's tiles move whole). */
static void win_move(hearth_session *s, int from, int n) {
    const size_t d = (size_t)(from - s->win_base);
    const size_t rows = ((size_t)n + KERN_KV_TILE - 1) / KERN_KV_TILE * KERN_KV_TILE;
    for (int slot = 0; slot < model_kv_layers(&s->model->hp); slot++) {
        if (!s->kv_slot_win[slot]) continue;
        const size_t row = session_kv_row(s, slot);
        for (int g = 0; g < s->model->hp.n_head_kv; g++) {
            const size_t h = session_kv_head(s, slot, g);
            memmove((uint8_t *)s->k_cache + h, (uint8_t *)s->k_cache + h + d * row, rows * row);
            memmove((uint8_t *)s->v_cache + h, (uint8_t *)s->v_cache + h + d * row, rows * row);
        }
    }
}

int session_win_base(const hearth_session *s, int pos) {
    const int base = pos - session_swa_reach(s) - KV_WIN_SPARE;
    return s->kv_slot_win && base > 0 ? base / KERN_KV_TILE * KERN_KV_TILE : 0;
}

void session_win_room(hearth_session *s, int pos0, int n) {
    if (!s->kv_slot_win || pos0 + n - s->win_base <= s->win_pos) return;
    /* past the old base, since win_pos exceeds n, the reach and the spare
       by a tile */
    const int base = session_win_base(s, pos0);
    win_move(s, base, pos0 - base);
    s->win_base = base;
    if (s->win_first < base) s->win_first = base;
}

int session_win_keep(const hearth_session *s) {
    if (s->win_first == 0) return 0;
    /* past a context shift's moved positions the cache is approximate
       anyway (a truncation there stays so): only what is exact must see
       its whole window */
    const int64_t keep = (int64_t)s->win_first + session_swa_reach(s);
    return keep < s->moved_from ? (int)keep : s->moved_from;
}

void session_win_reset(hearth_session *s) { s->win_base = s->win_first = 0; }

int hearth_session_keepable(const hearth_session *s, int n) {
    return n <= 0 || n >= s->pos || n >= session_win_keep(s) ? n : 0;
}

hearth_err hearth_session_truncate(hearth_session *s, int pos) {
    if (pos < 0 || pos > s->pos)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "session: cannot truncate to %d (position is %d)",
                       pos, s->pos);
    if (hearth_session_keepable(s, pos) != pos)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session: cannot truncate to %d: the sliding-window layers keep "
                       "positions from %d on, and position %d's window starts before that (0 "
                       "or %d and later can be kept; --swa-full keeps every position)",
                       pos, s->win_first, pos, session_win_keep(s));
    if (pos == 0) session_win_reset(s);
    if (pos < s->pos) s->logits_ok = false;
    if (pos <= s->moved_from) s->moved_from = INT_MAX; /* what is left was never moved */
    s->pos = pos;
    if (s->ssm_rs) ssm_truncate(s, pos);
    return HEARTH_OK;
}

hearth_err hearth_session_copy(hearth_session *dst, const hearth_session *src, int n) {
    if (n < 0 || n > src->pos)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session_copy: cannot copy %d positions of a session at position %d", n,
                       src->pos);
    if (model_is_encoder(src->model)) return encoder_refuses(src->model, "session_copy");
    if (dst == src) return hearth_session_truncate(dst, n);
    if (dst->model != src->model || dst->kv_type != src->kv_type)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session_copy: the sessions differ in model or KV cache type");
    if (dst->rope_factors != src->rope_factors) /* LongRoPE: their keys rotate differently */
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session_copy: the sessions' contexts (%d and %d) take different RoPE "
                       "factors (LongRoPE's short and long)",
                       src->n_ctx, dst->n_ctx);
    if (n > dst->n_ctx)
        return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                       "session_copy: %d positions do not fit in a context of %d", n, dst->n_ctx);
    if (hearth_session_keepable(src, n) != n)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session_copy: the source's sliding-window layers no longer hold the "
                       "window of position %d (they keep positions from %d on)",
                       n, src->win_first);
    /* A window slot of dst keeps what session_win_room would leave there. */
    session_win_reset(dst);
    dst->win_base = session_win_base(dst, n);
    /* Per attention layer and kv head (session.h), the positions both hold
     * from a tile's start c0 on: K in whole tiles (the last one's columns
     * past n are stale in src as they would be in dst: never read before
     * written), V as rows; the two sessions' heads may lie at different
     * strides and bases when their contexts and batches differ. */
    const model_hparams *hp = &src->model->hp;
    for (int slot = 0; slot < model_kv_layers(hp); slot++) {
        const int bs = session_kv_base(src, slot), bd = session_kv_base(dst, slot);
        const int c0 = bs > bd ? bs : bd;
        if (n <= c0) continue;
        const size_t row = session_kv_row(src, slot);
        const size_t k_bytes =
            (size_t)((n - c0 + KERN_KV_TILE - 1) / KERN_KV_TILE) * KERN_KV_TILE * row;
        for (int g = 0; g < hp->n_head_kv; g++) {
            const size_t d = session_kv_head(dst, slot, g) + (size_t)(c0 - bd) * row,
                         o = session_kv_head(src, slot, g) + (size_t)(c0 - bs) * row;
            memcpy((uint8_t *)dst->k_cache + d, (const uint8_t *)src->k_cache + o, k_bytes);
            memcpy((uint8_t *)dst->v_cache + d, (const uint8_t *)src->v_cache + o,
                   (size_t)(n - c0) * row);
        }
    }
    if (n > 0) dst->win_first = src->win_first > dst->win_base ? src->win_first : dst->win_base;
    for (int slot = 0; slot < hp->n_conv; slot++)
        memcpy(session_conv_row(dst, slot, 0), session_conv_row(src, slot, 0),
               (size_t)n * (size_t)hp->n_embd * sizeof(float));
    if (src->ssm_rs) ssm_copy(dst, src, n);
    memcpy(dst->tokens, src->tokens, (size_t)n * sizeof *src->tokens);
    dst->pos = n;
    dst->moved_from = n > src->moved_from ? src->moved_from : INT_MAX;
    dst->logits_ok = n == src->pos && src->logits_ok;
    if (dst->logits_ok) memcpy(dst->logits, src->logits, (size_t)hp->n_vocab * sizeof *src->logits);
    return HEARTH_OK;
}

void session_kv_view(const hearth_session *s, int kv0, hearth_session *view) {
    /* K's tiles and V's rows both start kv0 rows of the layer's head size
     * into each head's block when kv0 is a whole number of tiles (for every
     * cache type): forward.c's kv_head_off adds them */
    *view = *s;
    view->kv_pos0 = s->kv_pos0 + kv0;
    if (s->conv_hist) view->conv_hist = session_conv_row(s, 0, kv0);
}

hearth_err hearth_decode(hearth_session *s, const int32_t *ids, int n, float *logits,
                         bool all_logits) {
    const int n_vocab = s->model->hp.n_vocab;
    if (model_is_encoder(s->model)) return encoder_refuses(s->model, "decode");
    if (n <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "decode: no tokens");
    if (n > s->n_ctx - s->pos)
        return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                       "decode: %d tokens do not fit: %d of %d positions are used", n, s->pos,
                       s->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "decode: token id %d at index %d is outside the vocabulary (%d)", ids[i],
                           i, n_vocab);
    for (int done = 0; done < n;) {
        const int nb = n - done < s->n_batch ? n - done : s->n_batch;
        const bool last = done + nb == n;
        float *out = NULL;
        int out_first = 0;
        if (all_logits && logits) {
            out = logits + (size_t)done * (size_t)n_vocab;
        } else if (last) {
            out = s->logits; /* only the final row is wanted */
            out_first = nb - 1;
        }
        forward_batch(s, ids + done, nb, out, out_first);
        memcpy(s->tokens + s->pos, ids + done, (size_t)nb * sizeof *ids);
        s->pos += nb;
        done += nb;
    }
    if (logits && !all_logits) memcpy(logits, s->logits, (size_t)n_vocab * sizeof(float));
    if (all_logits && logits)
        memcpy(s->logits, logits + (size_t)(n - 1) * (size_t)n_vocab,
               (size_t)n_vocab * sizeof(float));
    s->logits_ok = true;
    return HEARTH_OK;
}

hearth_err hearth_decode_embd(hearth_session *s, const float *embd, const int32_t *ids, int n,
                              bool bidirectional, float *logits) {
    const hearth_model *m = s->model;
    if (model_is_encoder(m)) return encoder_refuses(m, "decode_embd");
    if (m->hp.n_embd_pl)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "decode_embd: %s takes per-layer inputs from token ids, not embeddings",
                       m->arch->name);
    if (!embd || !ids || n <= 0 || n > s->n_batch)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "decode_embd: %d rows; 1 to n_batch (%d) wanted", n,
                       s->n_batch);
    if (n > s->n_ctx - s->pos)
        return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                       "decode_embd: %d rows do not fit: %d of %d positions are used", n, s->pos,
                       s->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0)
            return hr_fail(HEARTH_ERR_INVALID_ARG, "decode_embd: id %d at index %d is not negative",
                           ids[i], i);
    const size_t rows = (size_t)n * (size_t)m->hp.n_embd;
    for (size_t i = 0; i < rows; i++)
        if (!isfinite(embd[i]))
            return hr_fail(HEARTH_ERR_INVALID_ARG, "decode_embd: row %zu holds a non-finite value",
                           i / (size_t)m->hp.n_embd);
    memcpy(s->x, embd, rows * sizeof *embd);
    const fwd_run run = {.s = s, .t0 = 0, .n = n, .pos0 = s->pos, .bidir = bidirectional};
    forward_multi(s, &run, 1, NULL, n, s->logits, n - 1);
    memcpy(s->tokens + s->pos, ids, (size_t)n * sizeof *ids);
    s->pos += n;
    s->logits_ok = true;
    if (logits) memcpy(logits, s->logits, (size_t)m->hp.n_vocab * sizeof *logits);
    return HEARTH_OK;
}

/* Groups entries into runs in b->runs (one per session, whose entries must
 * be consecutive) and checks them; *n_runs receives how many. */
static hearth_err multi_runs(hearth_session *b, hearth_session *const *sessions, const int32_t *ids,
                             int n, int *n_runs) {
    const int n_vocab = b->model->hp.n_vocab;
    int nr = 0;
    for (int i = 0; i < n; i++) {
        hearth_session *s = sessions[i];
        if (!s || s->model != b->model || s->n_ctx != b->n_ctx || s->kv_type != b->kv_type)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "decode_multi: entry %d's session does not match the first one's "
                           "model, context size and KV cache type",
                           i);
        if (ids[i] < 0 || ids[i] >= n_vocab)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "decode_multi: token id %d at index %d is outside the vocabulary (%d)",
                           ids[i], i, n_vocab);
        if (nr > 0 && b->runs[nr - 1].s == s) {
            b->runs[nr - 1].n++;
            continue;
        }
        for (int r = 0; r < nr; r++)
            if (b->runs[r].s == s)
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "decode_multi: entry %d's session has entries before another "
                               "session's (a session's entries must be consecutive)",
                               i);
        b->runs[nr++] = (fwd_run){.s = s, .t0 = i, .n = 1, .pos0 = s->pos};
    }
    for (int r = 0; r < nr; r++) {
        const hearth_session *s = b->runs[r].s;
        if (b->runs[r].n > s->n_ctx - s->pos)
            return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                           "decode_multi: %d tokens (from entry %d) do not fit in their session: "
                           "%d of %d positions are used",
                           b->runs[r].n, b->runs[r].t0, s->pos, s->n_ctx);
    }
    *n_runs = nr;
    return HEARTH_OK;
}

hearth_err hearth_decode_multi(hearth_session *const *sessions, const int32_t *ids, int n,
                               float *logits) {
    if (n <= 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "decode_multi: no tokens");
    hearth_session *b = sessions[0]; /* its buffers hold the batch */
    if (model_is_encoder(b->model)) return encoder_refuses(b->model, "decode_multi");
    if (n > b->n_batch)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "decode_multi: %d tokens exceed the first session's batch of %d", n,
                       b->n_batch);
    int n_runs = 0;
    hearth_err err = multi_runs(b, sessions, ids, n, &n_runs);
    if (err) return err;
    const fwd_run *runs = b->runs;
    const size_t n_vocab = (size_t)b->model->hp.n_vocab, row = n_vocab * sizeof(float);
    if (logits) {
        forward_multi(b, runs, n_runs, ids, n, logits, 0);
        for (int r = 0; r < n_runs; r++)
            memcpy(runs[r].s->logits, logits + (size_t)(runs[r].t0 + runs[r].n - 1) * n_vocab, row);
    } else if (n_runs == 1) { /* hearth_decode's arithmetic, bit for bit */
        forward_multi(b, runs, 1, ids, n, b->keep_rows > 1 && n > 1 ? NULL : b->logits, n - 1);
    } else {
        /* Each session's last logits, b->n_seq_max rows per product. */
        forward_multi(b, runs, n_runs, ids, n, NULL, 0);
        for (int r0 = 0; r0 < n_runs; r0 += b->n_seq_max) {
            const int k = n_runs - r0 < b->n_seq_max ? n_runs - r0 : b->n_seq_max;
            if (!b->out_rows) {
                forward_run_logits(b, runs + r0, 1, runs[r0].s->logits);
                continue;
            }
            forward_run_logits(b, runs + r0, k, b->out_rows);
            for (int i = 0; i < k; i++)
                memcpy(runs[r0 + i].s->logits, b->out_rows + (size_t)i * n_vocab, row);
        }
    }
    /* The rows a session asked to keep; its last logits are its last row's. */
    for (int r = 0; r < n_runs; r++) {
        hearth_session *s = runs[r].s;
        const int k = s->keep_rows < runs[r].n ? s->keep_rows : runs[r].n;
        s->keep_rows = 0;
        s->n_rows = k;
        if (k < 1) continue;
        const int t0 = runs[r].t0 + runs[r].n - k;
        if (k == 1) {
            memcpy(s->rows, s->logits, row);
            continue;
        }
        if (logits)
            memcpy(s->rows, logits + (size_t)t0 * n_vocab, (size_t)k * row);
        else
            forward_rows_logits(b, t0, k, s->rows);
        memcpy(s->logits, s->rows + (size_t)(k - 1) * n_vocab, row);
    }
    for (int r = 0; r < n_runs; r++) {
        hearth_session *s = runs[r].s;
        memcpy(s->tokens + s->pos, ids + runs[r].t0, (size_t)runs[r].n * sizeof *ids);
        s->pos += runs[r].n;
        s->logits_ok = true;
    }
    return HEARTH_OK;
}
