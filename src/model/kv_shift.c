/*
 * kv_shift.c - context shift (llama.cpp's --context-shift, ollama's default
 * when a generation outgrows num_ctx): hearth_session_shift forgets the
 * positions [n_keep, n_keep + n_discard) of a session and moves every later
 * one down by n_discard, so that a generation that filled the context can go
 * on with the text it keeps.
 *
 * A cached key is RoPE(p) k (times attn_factor on its rotated dims); RoPE
 * rotations compose, so RoPE(-n_discard) of it is the key the same k would
 * have at p - n_discard. Each moved key is read back as floats
 * (kern_kv_load_k: F16 widened, Q8_0 dequantized), rotated by forward.c's
 * own rotation of its layer (base, scale, frequency factors, NORM or NEOX,
 * partial rotary) without attn_factor, which it holds already, and stored
 * again (a Q8_0 key is quantized again, as llama.cpp re-quantizes). Values
 * have no position: their bytes move as they are. The moved keys and values
 * keep what they were computed from: text that saw the discarded tokens, as
 * in llama.cpp.
 *
 * A sliding-window layer needs nothing more when its slot keeps every
 * position (--swa-full): the window is a distance between positions. In a
 * sliding-window cache (session.h) its slot holds positions from win_base
 * on: the shifted text's last positions are gathered into a copy of the
 * slot's rows, from a new base, and copied back. Kept positions below
 * win_first (dropped before the shift) stay missing: the window layers see
 * from the first position they still have, as llama.cpp's SWA cache does.
 * A short-convolution layer's history (LFM2) moves like values.
 */
#include "session.h"

#include <string.h>

typedef struct shift_job {
    hearth_session *s;
    int first, n_discard; /* the first position that moves, and by how much */
    /* a sliding-window cache's window slots after the shift: their base,
       and the first position they hold (session.h) */
    int win_base, win_first;
} shift_job;

/* Position p's place before the shift: kept, or moved down from there. */
static int shift_src(const shift_job *j, int p) {
    return p < j->first - j->n_discard ? p : p + j->n_discard;
}

/* One window slot's kv head (k and v: its tiles and rows from win_base):
 * positions win_first..pos'-1 after the shift into their rows from the new
 * base, through tmp (a block of the slot's layout, win_pos rows, then one
 * row of bytes). Kept keys move as their bytes, moved ones are rotated
 * (key: [head_dim] floats). */
static void shift_window(const shift_job *j, const model_layer *l, uint8_t *k, uint8_t *v,
                         uint8_t *tmp, float *key, const float *cs) {
    const hearth_session *s = j->s;
    const int hd = l->head_dim, n_keep = j->first - j->n_discard, end = s->pos - j->n_discard;
    const size_t row = session_kv_row(s, l->kv_slot);
    uint8_t *bytes = tmp + (size_t)s->win_pos * row;
    for (int p = j->win_first; p < end; p++) {
        const int from = shift_src(j, p) - s->win_base, to = p - j->win_base;
        if (p < n_keep) {
            session_k_row(s->kv_type, k, hd, from, bytes, false);
            session_k_row(s->kv_type, tmp, hd, to, bytes, true);
            continue;
        }
        kern_kv_load_k(s->kv_type, k, hd, from, key);
        if (l->rope) forward_rope_head(s, l, key, cs);
        kern_kv_store_k(s->kv_type, tmp, hd, to, key);
    }
    /* K in the tiles that hold them (the first one's rows before win_first
       and the last one's after the end are never read before written) */
    const int t0 = (j->win_first - j->win_base) / KERN_KV_TILE * KERN_KV_TILE;
    const int t1 = (end - j->win_base + KERN_KV_TILE - 1) / KERN_KV_TILE * KERN_KV_TILE;
    if (t1 > t0) memcpy(k + (size_t)t0 * row, tmp + (size_t)t0 * row, (size_t)(t1 - t0) * row);
    for (int p = j->win_first; p < end; p++)
        memcpy(tmp + (size_t)(p - j->win_base) * row,
               v + (size_t)(shift_src(j, p) - s->win_base) * row, row);
    if (end > j->win_first)
        memcpy(v + (size_t)(j->win_first - j->win_base) * row,
               tmp + (size_t)(j->win_first - j->win_base) * row,
               (size_t)(end - j->win_first) * row);
}

/* Units are (layer, kv head) pairs, dealt round-robin; each thread's key
 * and cos/sin live in its own attention work space (nothing is allocated). */
static void shift_heads(void *ctx, int ith, int nth) {
    const shift_job *j = ctx;
    hearth_session *s = j->s;
    const model_hparams *hp = &s->model->hp;
    float *key = s->attn_work + (size_t)ith * s->attn_work_floats; /* [head_dim] */
    float *cs = key + model_max_head_dim(hp);                      /* [n_rot] */
    /* a window slot's rows (shift_window; the work space is sized for them) */
    uint8_t *tmp = (uint8_t *)(cs + model_max_head_dim(hp));
    for (int u = ith; u < hp->n_layer * hp->n_head_kv; u += nth) {
        const model_layer *l = &s->model->layers[u / hp->n_head_kv];
        /* a convolution: its history moves below; a layer that reads
           another's keys: they move with that one */
        if (l->kv_slot < 0 || l->kv_shared) continue;
        const int hd = l->head_dim;
        const size_t row = session_kv_row(s, l->kv_slot),
                     h = session_kv_head(s, l->kv_slot, u % hp->n_head_kv);
        uint8_t *k = (uint8_t *)s->k_cache + h;
        uint8_t *v = (uint8_t *)s->v_cache + h;
        if (l->rope) model_rope_cs(s->model, l, s->rope_factors, -(float)j->n_discard, false, cs);
        if (session_kv_win(s, l->kv_slot)) {
            shift_window(j, l, k, v, tmp, key, cs);
            continue;
        }
        /* upwards: position p - n_discard was read before it is written; a
           NoPE layer's keys only move */
        for (int p = j->first; p < s->pos; p++) {
            kern_kv_load_k(s->kv_type, k, hd, p, key);
            if (l->rope) forward_rope_head(s, l, key, cs);
            kern_kv_store_k(s->kv_type, k, hd, p - j->n_discard, key);
            memcpy(v + (size_t)(p - j->n_discard) * row, v + (size_t)p * row, row);
        }
    }
}

hearth_err hearth_session_shift(hearth_session *s, int n_keep, int n_discard) {
    const hearth_model *m = s->model;
    if (m->arch->encoder)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "session_shift: '%s' is an embedding model (an encoder): it keeps no "
                       "context to shift",
                       m->arch->name);
    if (m->hp.n_ssm)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "session_shift: '%s' has Mamba-2 layers, whose recurrent state holds "
                       "every token before it: no part of it can be discarded (llama.cpp cannot "
                       "shift such a model either)",
                       m->arch->name);
    if (m->arch->rope == ROPE_NONE)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "session_shift: '%s' has no rotary position embedding: its cached keys "
                       "cannot be moved to other positions",
                       m->arch->name);
    if (n_keep < 0 || n_discard < 0 || n_keep > s->pos || n_discard > s->pos - n_keep)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "session_shift: cannot keep %d positions and discard %d after them in a "
                       "session at position %d",
                       n_keep, n_discard, s->pos);
    if (n_discard == 0) return HEARTH_OK;
    shift_job job = {.s = s, .first = n_keep + n_discard, .n_discard = n_discard};
    /* what the window layers hold after the shift: the kept positions they
       still had, the moved ones they had (all those a window reaches), from
       the base session_win_room would leave */
    const int end = s->pos - n_discard, had = s->win_first;
    job.win_first = had < n_keep ? had : had - n_discard > n_keep ? had - n_discard : n_keep;
    job.win_base = session_win_base(s, end);
    if (job.win_first < job.win_base) job.win_first = job.win_base;
    if (job.first < s->pos || s->kv_slot_win) hr_pool_run(m->pool, shift_heads, &job);
    s->win_base = job.win_base;
    s->win_first = job.win_first;
    /* a short convolution's inputs have no position either: they move, and
       the kernel of the first moved ones reads the kept ones before them */
    for (int slot = 0; slot < m->hp.n_conv; slot++)
        memmove(session_conv_row(s, slot, n_keep), session_conv_row(s, slot, job.first),
                (size_t)(s->pos - job.first) * (size_t)m->hp.n_embd * sizeof(float));
    memmove(s->tokens + n_keep, s->tokens + job.first,
            (size_t)(s->pos - job.first) * sizeof *s->tokens);
    s->pos -= n_discard;
    if (job.first < s->pos + n_discard && n_keep < s->moved_from) s->moved_from = n_keep;
    if (s->pos <= s->moved_from) s->moved_from = INT_MAX; /* a shift of the tail truncates */
    /* the last logits saw the discarded text: no longer those of this cache */
    s->logits_ok = false;
    s->n_rows = 0;
    return HEARTH_OK;
}
