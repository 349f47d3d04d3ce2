/*
 * loader.c - model_open: maps a GGUF file, finds its architecture,
 * reads the hyper-parameters and binds every tensor to a view in the mapping,
 * checking its type and shape. Nothing is copied.
 */
#include "model.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hearth_err find_tensor(hearth_model *m, const char *name, bool required,
                              const gguf_tensor **out) {
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t && required) return hr_fail(HEARTH_ERR_FORMAT, "model: tensor '%s' is missing", name);
    if (t) {
        m->bound[t - gguf_tensor_at(m->gguf, 0)] = 1;
        const kern_type_info *ti = kern_type_get(t->type);
        if (!ti || !ti->supported || !kern_get((kern_type)t->type))
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "model: tensor '%s' has type %s, which Hearth does not support", name,
                           ti ? ti->name : "?");
    }
    *out = t;
    return HEARTH_OK;
}

static hearth_err bind_matrix(hearth_model *m, const char *name, int64_t n_cols, int64_t n_rows,
                              bool required, model_weight *out) {
    const gguf_tensor *t;
    hearth_err err = find_tensor(m, name, required, &t);
    if (err || !t) return err;
    if (t->n_dims > 2 || t->ne[0] != n_cols || t->ne[1] != n_rows)
        return hr_fail(
            HEARTH_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
            name, (long long)t->ne[0], (long long)t->ne[1], (long long)n_cols, (long long)n_rows);
    *out = (model_weight){
        .type = (kern_type)t->type, .data = t->data, .n_rows = n_rows, .n_cols = n_cols};
    return HEARTH_OK;
}

static hearth_err bind_vector(hearth_model *m, const char *name, int64_t n, bool required,
                              const float **out) {
    const gguf_tensor *t;
    hearth_err err = find_tensor(m, name, required, &t);
    if (err || !t) return err;
    if (t->type != KERN_F32 || t->n_elements != n)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: tensor '%s' must be %lld F32 values (has %lld of type %s)", name,
                       (long long)n, (long long)t->n_elements, kern_type_get(t->type)->name);
    *out = t->data;
    if (m->vectors && n <= m->vectors_cap - m->vectors_used) {
        float *v = m->vectors + m->vectors_used;
        memcpy(v, t->data, (size_t)n * sizeof *v);
        m->vectors_used += n;
        *out = v;
    }
    return HEARTH_OK;
}

typedef struct layer_binder {
    hearth_model *m;
    int il;
    char name[96];
} layer_binder;

static const char *lname(layer_binder *b, const char *suffix) {
    snprintf(b->name, sizeof b->name, "blk.%d.%s", b->il, suffix);
    return b->name;
}

/* The n_expert matrices of n_rows x n_cols stacked in one 3-D tensor, as
 * n_expert views (out[e]: expert e's rows, contiguous in the file). */
static hearth_err bind_stacked(hearth_model *m, const char *name, int64_t n_cols, int64_t n_rows,
                               int n_expert, model_weight *out) {
    const gguf_tensor *t;
    hearth_err err = find_tensor(m, name, true, &t);
    if (err) return err;
    if (t->n_dims != 3 || t->ne[0] != n_cols || t->ne[1] != n_rows || t->ne[2] != n_expert)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld, %d]",
                       name, (long long)t->ne[0], (long long)t->ne[1],
                       (long long)(t->n_dims > 2 ? t->ne[2] : 1), (long long)n_cols,
                       (long long)n_rows, n_expert);
    const size_t bytes = kern_row_bytes((kern_type)t->type, n_cols) * (size_t)n_rows;
    for (int e = 0; e < n_expert; e++)
        out[e] = (model_weight){.type = (kern_type)t->type,
                                .data = (const uint8_t *)t->data + (size_t)e * bytes,
                                .n_rows = n_rows,
                                .n_cols = n_cols};
    return HEARTH_OK;
}

/* A mixture-of-experts FFN: the router, each expert's gate (none when the
 * architecture's FFN has no gate: nomic-bert-moe), up, down, and the shared
 * expert's when the file declares one. */
static hearth_err bind_experts(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const model_hparams *hp = &m->hp;
    const int n_expert = hp->n_expert;
    l->exps = m->exps + (size_t)b->il * 3 * (size_t)n_expert;
    hearth_err err;
    if ((err = bind_matrix(m, lname(b, "ffn_gate_inp.weight"), hp->n_embd, n_expert, true,
                           &l->gate_inp)) ||
        (m->arch->moe_gating &&
         (err = bind_vector(m, lname(b, "exp_probs_b.bias"), n_expert, true, &l->exp_probs_b))) ||
        (!m->arch->ffn_no_gate && (err = bind_stacked(m, lname(b, "ffn_gate_exps.weight"),
                                                      hp->n_embd, hp->n_ff, n_expert, l->exps))) ||
        (err = bind_stacked(m, lname(b, "ffn_up_exps.weight"), hp->n_embd, hp->n_ff, n_expert,
                            l->exps + n_expert)))
        return err;
    if ((err = bind_stacked(m, lname(b, "ffn_down_exps.weight"), hp->n_ff, hp->n_embd, n_expert,
                            l->exps + 2 * n_expert)) ||
        hp->n_ff_shexp == 0)
        return err;
    if ((err = bind_matrix(m, lname(b, "ffn_gate_shexp.weight"), hp->n_embd, hp->n_ff_shexp, true,
                           &l->gate_shexp)) ||
        (err = bind_matrix(m, lname(b, "ffn_up_shexp.weight"), hp->n_embd, hp->n_ff_shexp, true,
                           &l->up_shexp)))
        return err;
    if ((err = bind_matrix(m, lname(b, "ffn_down_shexp.weight"), hp->n_ff_shexp, hp->n_embd, true,
                           &l->down_shexp)))
        return err;
    return m->arch->shexp == SHEXP_GATED ? bind_matrix(m, lname(b, "ffn_gate_inp_shexp.weight"),
                                                       hp->n_embd, 1, true, &l->gate_inp_shexp)
                                         : HEARTH_OK;
}

/* A short-convolution layer's mixer (LFM2): in_proj, the depthwise kernel
 * (F32, one row of conv_l taps per channel, as ggml_ssm_conv reads it) and
 * out_proj. */
static hearth_err bind_shortconv(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const int64_t d = m->hp.n_embd;
    const gguf_tensor *t;
    hearth_err err = find_tensor(m, lname(b, "shortconv.conv.weight"), true, &t);
    if (!err &&
        (t->type != KERN_F32 || t->n_dims != 2 || t->ne[0] != m->hp.conv_l || t->ne[1] != d))
        err = hr_fail(HEARTH_ERR_FORMAT, "model: tensor '%s' must be F32 of shape [%d, %lld]",
                      b->name, m->hp.conv_l, (long long)d);
    if (err) return err;
    l->conv_w = t->data;
    if ((err = bind_matrix(m, lname(b, "shortconv.in_proj.weight"), d, 3 * d, true, &l->conv_in)))
        return err;
    return bind_matrix(m, lname(b, "shortconv.out_proj.weight"), d, d, true, &l->conv_out);
}

/* An F32 tensor of exactly these dimensions (ne[0], ne[1]; 1 for a vector's
 * second), as the Mamba-2 layer reads it. */
static hearth_err bind_f32(layer_binder *b, const char *suffix, int64_t ne0, int64_t ne1,
                           bool required, const float **out) {
    const gguf_tensor *t;
    hearth_err err = find_tensor(b->m, lname(b, suffix), required, &t);
    if (err || !t) return err;
    if (t->type != KERN_F32 || t->n_dims > 2 || t->ne[0] != ne0 ||
        (t->n_dims == 2 ? t->ne[1] : 1) != ne1)
        return hr_fail(HEARTH_ERR_FORMAT, "model: tensor '%s' must be F32 of shape [%lld, %lld]",
                       b->name, (long long)ne0, (long long)ne1);
    *out = t->data;
    return HEARTH_OK;
}

/* A Mamba-2 layer's mixer (Granite 4.0-H): in_proj, the depthwise
 * convolution over x, B and C (one row of ssm_conv taps per channel) and its
 * bias, the heads' dt bias, A and D, the grouped norm and out_proj. */
static hearth_err bind_ssm(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const model_hparams *hp = &m->hp;
    const int64_t d_inner = hp->ssm_inner, heads = hp->ssm_heads, conv = model_ssm_conv_dim(hp);
    const int64_t d_in = 2 * d_inner + 2 * (int64_t)hp->ssm_groups * hp->ssm_state + heads;
    hearth_err err;
    if ((err = bind_matrix(m, lname(b, "ssm_in.weight"), hp->n_embd, d_in, true, &l->ssm_in)) ||
        (err =
             bind_matrix(m, lname(b, "ssm_out.weight"), d_inner, hp->n_embd, true, &l->ssm_out)) ||
        (err = bind_f32(b, "ssm_conv1d.weight", hp->ssm_conv, conv, true, &l->ssm_conv_w)) ||
        (err = bind_f32(b, "ssm_conv1d.bias", conv, 1, false, &l->ssm_conv_b)) ||
        (err = bind_f32(b, "ssm_dt.bias", heads, 1, true, &l->ssm_dt_b)) ||
        (err = bind_f32(b, "ssm_a", 1, heads, true, &l->ssm_a)) ||
        (err = bind_f32(b, "ssm_d", 1, heads, true, &l->ssm_d)))
        return err;
    /* Falcon-H1's mixers may have no grouped norm (llama.cpp's is optional there) */
    return bind_f32(b, "ssm_norm.weight", d_inner / hp->ssm_groups, hp->ssm_groups,
                    !m->arch->ssm_parallel, &l->ssm_norm);
}

/* A Gated DeltaNet layer's mixer (Qwen3.5): q, k, v into the convolution,
 * the output gate z, the heads' beta and alpha, the convolution (F32, no
 * bias), the decay's bias and A, the heads' norm and the output. */
static hearth_err bind_gdn(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const model_hparams *hp = &m->hp;
    const int64_t d_inner = hp->ssm_inner, heads = hp->ssm_heads, conv = model_ssm_conv_dim(hp);
    hearth_err err;
    if ((err = bind_matrix(m, lname(b, "attn_qkv.weight"), hp->n_embd, conv, true, &l->wqkv)) ||
        (err =
             bind_matrix(m, lname(b, "attn_gate.weight"), hp->n_embd, d_inner, true, &l->ssm_z)) ||
        (err =
             bind_matrix(m, lname(b, "ssm_beta.weight"), hp->n_embd, heads, true, &l->ssm_beta)) ||
        (err = bind_matrix(m, lname(b, "ssm_alpha.weight"), hp->n_embd, heads, true,
                           &l->ssm_alpha)) ||
        (err =
             bind_matrix(m, lname(b, "ssm_out.weight"), d_inner, hp->n_embd, true, &l->ssm_out)) ||
        (err = bind_f32(b, "ssm_conv1d.weight", hp->ssm_conv, conv, true, &l->ssm_conv_w)) ||
        (err = bind_f32(b, "ssm_dt.bias", heads, 1, true, &l->ssm_dt_b)) ||
        (err = bind_f32(b, "ssm_a", heads, 1, true, &l->ssm_a)))
        return err;
    return bind_f32(b, "ssm_norm.weight", hp->ssm_state, 1, true, &l->ssm_norm);
}

/* The attention's projections: fused or apart, with their optional biases.
 * A layer that reads another's keys and values (kv_shared) may carry K and V
 * projections that nothing reads, as llama.cpp accepts them; without
 * attn_v, an arch v_norm layer's values are its keys' projection. */
static hearth_err bind_attention(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const model_hparams *hp = &m->hp;
    const int64_t n_q = (int64_t)hp->n_head * l->head_dim,
                  n_kv = (int64_t)hp->n_head_kv * l->head_dim;
    model_weight unused = {0};
    model_weight *wk = l->kv_shared ? &unused : &l->wk, *wv = l->kv_shared ? &unused : &l->wv;
    hearth_err err = bind_matrix(m, lname(b, "attn_output.weight"), n_q, hp->n_embd, true, &l->wo);
    if (err) return err;
    if (m->arch->fused_qkv) {
        err =
            bind_matrix(m, lname(b, "attn_qkv.weight"), hp->n_embd, n_q + 2 * n_kv, true, &l->wqkv);
        /* llama.cpp adds it to the fused product whenever a file has it */
        if (!err) err = bind_vector(m, lname(b, "attn_qkv.bias"), n_q + 2 * n_kv, false, &l->bqkv);
    } else if (!(err = bind_matrix(m, lname(b, "attn_q.weight"), hp->n_embd,
                                   m->arch->attn_gate ? 2 * n_q : n_q, true, &l->wq)) &&
               !(err = bind_matrix(m, lname(b, "attn_k.weight"), hp->n_embd, n_kv, !l->kv_shared,
                                   wk)) &&
               !(err = bind_matrix(m, lname(b, "attn_v.weight"), hp->n_embd, n_kv, !m->arch->v_norm,
                                   wv)) &&
               !(err = bind_vector(m, lname(b, "attn_q.bias"), n_q, false, &l->bq)) &&
               !(err = bind_vector(m, lname(b, "attn_k.bias"), n_kv, false, &l->bk))) {
        err = bind_vector(m, lname(b, "attn_v.bias"), n_kv, false, &l->bv);
    }
    if (err || m->arch->qk_norm == QK_NORM_NONE) return err;
    const bool full = m->arch->qk_norm == QK_NORM_FULL;
    const float *k_norm;
    if ((err = bind_vector(m, lname(b, "attn_q_norm.weight"), full ? n_q : l->head_dim, true,
                           &l->q_norm)) ||
        (err = bind_vector(m, lname(b, "attn_k_norm.weight"), full ? n_kv : l->head_dim,
                           !l->kv_shared, &k_norm)))
        return err;
    if (!l->kv_shared) l->k_norm = k_norm;
    return HEARTH_OK;
}

/* Gemma 3n's AltUp router and coefficients, LAuReL branch and FFN
 * sparsity. */
static hearth_err bind_altup(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const int64_t d = m->hp.n_embd, rank = m->hp.laurel_rank, k = MODEL_ALTUP;
    hearth_err err;
    if ((err = bind_matrix(m, lname(b, "altup_router.weight"), d, k, true, &l->alt_router)) ||
        (err =
             bind_vector(m, lname(b, "altup_router_norm.weight"), d, true, &l->alt_router_norm)) ||
        (err = bind_matrix(m, lname(b, "altup_predict_coef.weight"), k, k * k, true,
                           &l->alt_predict)) ||
        (err =
             bind_matrix(m, lname(b, "altup_correct_coef.weight"), k, k, true, &l->alt_correct)) ||
        (err = bind_vector(m, lname(b, "altup_correct_scale.weight"), d, true,
                           &l->alt_correct_scale)) ||
        (err = bind_matrix(m, lname(b, "laurel_l.weight"), d, rank, true, &l->laurel_l)) ||
        (err = bind_matrix(m, lname(b, "laurel_r.weight"), rank, d, true, &l->laurel_r)))
        return err;
    l->sparse = model_layer_sparsity(m->gguf, m->arch, b->il, &l->sparsity);
    return bind_vector(m, lname(b, "laurel_post_norm.weight"), d, true, &l->laurel_norm);
}

/* Gemma 4's per-layer embedding step and output scale (a scalar, kept as
 * a float); Gemma 3n's AltUp. */
static hearth_err bind_layer_extras(layer_binder *b, model_layer *l) {
    hearth_model *m = b->m;
    const model_hparams *hp = &m->hp;
    const float *scale = NULL;
    hearth_err err;
    l->out_scale = 1.0f;
    if (m->arch->out_scale &&
        (err = bind_vector(m, lname(b, "layer_output_scale.weight"), 1, false, &scale)))
        return err;
    if (scale) l->out_scale = *scale;
    if (hp->n_embd_pl == 0) return HEARTH_OK;
    if ((err = bind_matrix(m, lname(b, "inp_gate.weight"), hp->n_embd, hp->n_embd_pl, true,
                           &l->pl_gate)) ||
        (err =
             bind_matrix(m, lname(b, "proj.weight"), hp->n_embd_pl, hp->n_embd, true, &l->pl_proj)))
        return err;
    err = bind_vector(m, lname(b, "post_norm.weight"), hp->n_embd, true, &l->pl_post_norm);
    return err || !m->arch->altup ? err : bind_altup(b, l);
}

static hearth_err bind_layer(hearth_model *m, int il) {
    const model_hparams *hp = &m->hp;
    const arch_desc *a = m->arch;
    model_layer *l = &m->layers[il];
    layer_binder b = {.m = m, .il = il};
    hearth_err err;
    l->swa = model_swa_layer(m->gguf, a, hp, il);
    l->head_dim = l->swa ? hp->head_dim_swa : hp->head_dim;
    l->n_rot = l->swa ? hp->n_rot_swa : hp->n_rot;
    l->n_ff = model_layer_n_ff(m->gguf, a, hp, il);
    l->rope_factors = !(a->layer_dims && l->swa); /* Gemma 4: the global layers' */
    if (a->post_ln) {                             /* norms of the sums, with biases */
        if ((err = bind_vector(m, lname(&b, "attn_output_norm.weight"), hp->n_embd, true,
                               &l->attn_out_norm)) ||
            (err = bind_vector(m, lname(&b, "attn_output_norm.bias"), hp->n_embd, true,
                               &l->attn_out_norm_b)) ||
            (err = bind_vector(m, lname(&b, "layer_output_norm.weight"), hp->n_embd, true,
                               &l->out_norm)) ||
            (err = bind_vector(m, lname(&b, "layer_output_norm.bias"), hp->n_embd, true,
                               &l->out_norm_b)))
            return err;
    } else if (!a->no_pre_norms &&
               ((err = bind_vector(m, lname(&b, "attn_norm.weight"), hp->n_embd,
                                   !(a->layer_norm && il == 0), &l->attn_norm)) ||
                (err = bind_vector(m, lname(&b, a->ffn_norm ? a->ffn_norm : "ffn_norm.weight"),
                                   hp->n_embd, true, &l->ffn_norm)))) {
        return err;
    }
    if (a->biases &&
        ((err = bind_vector(m, lname(&b, "attn_output.bias"), hp->n_embd, false, &l->bo)) ||
         (err = bind_vector(m, lname(&b, "ffn_up.bias"), l->n_ff, false, &l->b_up)) ||
         (err = bind_vector(m, lname(&b, "ffn_down.bias"), hp->n_embd, false, &l->b_down))))
        return err;
    /* each kind of layer numbers its own slots in a session's state */
    int n_conv_before = 0, n_ssm_before = 0;
    for (int j = 0; j < il; j++) {
        n_conv_before += m->layers[j].conv_w != NULL;
        n_ssm_before += m->layers[j].ssm_slot >= 0;
    }
    l->conv_slot = l->kv_slot = l->ssm_slot = -1;
    if (il >= hp->n_kv_from_start) { /* hparams.c checked these layers' kinds */
        l->kv_shared = true;
        l->kv_slot = m->layers[hp->n_kv_from_start - (l->swa ? 2 : 1)].kv_slot;
        err = bind_attention(&b, l);
    } else if (a->ssm_parallel) { /* both, each with its own slot */
        l->kv_slot = l->ssm_slot = il;
        err = bind_attention(&b, l);
        if (!err) err = bind_ssm(&b, l);
    } else if (!model_kv_free_layer(m->gguf, a, il)) {
        l->kv_slot = il - n_conv_before - n_ssm_before;
        err = bind_attention(&b, l);
    } else if (a->ssm || a->gdn) {
        l->ssm_slot = n_ssm_before;
        err = a->gdn ? bind_gdn(&b, l) : bind_ssm(&b, l);
    } else {
        l->conv_slot = n_conv_before;
        err = bind_shortconv(&b, l);
    }
    if (err) return err;
    const bool experts = model_layer_experts(hp, il);
    if (experts) {
        err = bind_experts(&b, l);
    } else if (a->fused_gate_up) {
        err = bind_matrix(m, lname(&b, "ffn_up.weight"), hp->n_embd, 2 * (int64_t)l->n_ff, true,
                          &l->gate_up);
    } else {
        if (!a->ffn_no_gate)
            err = bind_matrix(m, lname(&b, "ffn_gate.weight"), hp->n_embd, l->n_ff, true, &l->gate);
        if (!err)
            err = bind_matrix(m, lname(&b, "ffn_up.weight"), hp->n_embd, l->n_ff, true, &l->up);
    }
    if (!err && !experts)
        err = bind_matrix(m, lname(&b, "ffn_down.weight"), l->n_ff, hp->n_embd, true, &l->down);
    if (!err) err = bind_layer_extras(&b, l);
    if (err) return err;
    if (a->post_norms && ((err = bind_vector(m, lname(&b, "post_attention_norm.weight"), hp->n_embd,
                                             true, &l->post_attn_norm)) ||
                          (err = bind_vector(m, lname(&b, "post_ffw_norm.weight"), hp->n_embd, true,
                                             &l->post_ffn_norm))))
        return err;
    l->rope = a->rope != ROPE_NONE && !hp->rope_off &&
              !(a->nope_every && (il + 1) % a->nope_every == 0) && l->kv_slot >= 0;
    l->rope_base = l->swa ? hp->rope_base_swa : hp->rope_base;
    l->rope_scale = l->swa ? hp->rope_scale_swa : hp->rope_scale;
    /* ggml's rope_yarn multiplies the magnitude by 1 + 0.1 ln(1 / freq_scale),
       its compiler fusing the add */
    const bool plain = l->swa && a->swa_plain_rope;
    l->yarn = hp->yarn && !plain;
    l->rope_mscale = l->yarn ? fmaf(0.1f, logf(1.0f / l->rope_scale), 1.0f) * hp->rope_attn_factor
                     : plain ? 1.0f
                             : hp->rope_attn_factor;
    if (l->yarn)
        kern_rope_yarn_dims(l->n_rot, hp->n_ctx_orig, l->rope_base, hp->yarn_beta_fast,
                            hp->yarn_beta_slow, l->yarn_dims);
    return HEARTH_OK;
}

/* Whether `name` is a tensor of the layers past n_layer that only predict
 * further tokens (nextn_predict_layers), which Hearth leaves unread. */
static bool nextn_tensor(const hearth_model *m, gguf_str name) {
    if (!m->hp.n_nextn || name.len < 5 || memcmp(name.ptr, "blk.", 4) != 0) return false;
    int64_t il = 0;
    for (uint64_t i = 4; i < name.len && name.ptr[i] != '.'; i++) {
        if (name.ptr[i] < '0' || name.ptr[i] > '9' || il > (1 << 20)) return false;
        il = il * 10 + (name.ptr[i] - '0');
    }
    return il >= m->hp.n_layer && il < (int64_t)m->hp.n_layer + m->hp.n_nextn;
}

/* The first tensor the binding did not take, named in a refusal: llama.cpp
 * refuses such a file ("wrong number of tensors"), and running without the
 * tensor would compute other logits silently. */
static hearth_err check_all_bound(const hearth_model *m) {
    for (int64_t i = 0; i < gguf_n_tensors(m->gguf); i++)
        if (!m->bound[i]) {
            const gguf_str n = gguf_tensor_at(m->gguf, i)->name;
            if (nextn_tensor(m, n)) continue;
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "model: tensor '%.*s' is not part of architecture '%s' as Hearth runs "
                           "it (a variant Hearth does not support; llama.cpp refuses such a file "
                           "too)",
                           (int)(n.len > 96 ? 96 : n.len), n.ptr, m->arch->name);
        }
    return HEARTH_OK;
}

/* A decoder's final norm and output layer (token_embd when tied). */
static hearth_err bind_output(hearth_model *m) {
    const model_hparams *hp = &m->hp;
    hearth_err err;
    const char *norm = m->arch->output_norm ? m->arch->output_norm : "output_norm.weight";
    if ((err = bind_vector(m, norm, hp->n_embd, true, &m->output_norm)) ||
        (err = bind_matrix(m, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output)))
        return err;
    if (m->output.data && m->arch->tied_only)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: '%s' ties its output layer to token_embd, but the file has an "
                       "output.weight",
                       m->arch->name);
    if (!m->output.data) m->output = m->tok_embd; /* tied */
    return HEARTH_OK;
}

/* An RMS-normed encoder's last steps: the final norm, and the dense
 * projections of the pooled vector when the file has them (llama.cpp's
 * converter writes them with --sentence-transformers-dense-modules). Its
 * output.weight, when present, is accepted as llama.cpp accepts it and never
 * read: an encoder has no logits. */
static hearth_err bind_embedding_output(hearth_model *m) {
    const int64_t d = m->hp.n_embd;
    model_weight unused;
    hearth_err err;
    if ((err = bind_vector(m, "output_norm.weight", d, true, &m->output_norm)) ||
        (err = bind_matrix(m, "output.weight", d, m->hp.n_vocab, false, &unused)))
        return err;
    const gguf_tensor *d2 = gguf_find_tensor(m->gguf, "dense_2.weight"),
                      *d3 = gguf_find_tensor(m->gguf, "dense_3.weight");
    if (!d2 && !d3) return HEARTH_OK;
    if (!d2 || !d3 || d2->n_dims != 2 || d2->ne[1] < 1 || d2->ne[1] > (1 << 20))
        return hr_fail(HEARTH_ERR_FORMAT, "model: dense_2.weight and dense_3.weight come "
                                          "together, dense_2 a matrix of 1 to 2^20 rows");
    if ((err = bind_matrix(m, "dense_2.weight", d, d2->ne[1], true, &m->dense_2))) return err;
    return bind_matrix(m, "dense_3.weight", d2->ne[1], d, true, &m->dense_3);
}

/* A post-LN encoder's input side: token type rows, learned positions (one per
 * position of the training context), the embedding LayerNorm. A single type
 * row may be a vector: llama-quantize writes XLM-RoBERTa's [n_embd, 1] so. */
static hearth_err bind_encoder_inputs(hearth_model *m) {
    const model_hparams *hp = &m->hp;
    const gguf_tensor *types = gguf_find_tensor(m->gguf, "token_types.weight");
    hearth_err err = HEARTH_OK;
    if (types && (types->n_dims > 2 || types->ne[1] < 1 || types->ne[1] > 1024))
        return hr_fail(HEARTH_ERR_FORMAT, "model: token_types.weight must be a matrix of 1 to "
                                          "1024 rows");
    if (types)
        err = bind_matrix(m, "token_types.weight", hp->n_embd, types->ne[1], true, &m->type_embd);
    if (!err && m->arch->learned_pos)
        err =
            bind_matrix(m, "position_embd.weight", hp->n_embd, hp->n_ctx_train, true, &m->pos_embd);
    if (!err) err = bind_vector(m, "token_embd_norm.weight", hp->n_embd, true, &m->tok_norm);
    if (!err) err = bind_vector(m, "token_embd_norm.bias", hp->n_embd, true, &m->tok_norm_b);
    return err;
}

/* A reranker's classification head, both parts optional as llama.cpp loads
 * them (jina-reranker-v1 has no cls, Qwen3-Reranker only cls.output): cls
 * [n_embd][n_embd] with its bias (the pooler; ModernBERT's with a norm),
 * cls.output [n_labels][n_embd] with its bias. Tensors of other files are
 * refused as unknown. */
static hearth_err bind_classifier(hearth_model *m) {
    const int64_t d = m->hp.n_embd;
    hearth_err err = bind_matrix(m, "cls.weight", d, d, false, &m->cls);
    if (!err) err = bind_vector(m, "cls.bias", d, false, &m->cls_b);
    if (!err && m->arch->layer_norm)
        err = bind_vector(m, "cls.norm.weight", d, false, &m->cls_norm);
    const gguf_tensor *o = gguf_find_tensor(m->gguf, "cls.output.weight");
    if (err || !o) return err;
    if (o->n_dims != 2 || o->ne[1] < 1 || o->ne[1] > 4096)
        return hr_fail(HEARTH_ERR_FORMAT, "model: cls.output.weight must be a matrix of 1 to "
                                          "4096 rows");
    err = bind_matrix(m, "cls.output.weight", d, o->ne[1], true, &m->cls_out);
    if (!err) err = bind_vector(m, "cls.output.bias", o->ne[1], false, &m->cls_out_b);
    return err;
}

static hearth_err bind_all(hearth_model *m) {
    model_hparams *hp = &m->hp;
    const gguf_tensor *embd = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!embd) return hr_fail(HEARTH_ERR_FORMAT, "model: tensor 'token_embd.weight' is missing");
    if (embd->n_dims != 2 || embd->ne[1] < 1 || embd->ne[1] > (1 << 24))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: token_embd.weight must be a matrix of at most 2^24 rows");
    hp->n_vocab = (int)embd->ne[1];
    hearth_err err;
    if ((err = bind_matrix(m, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->tok_embd)) ||
        (err = m->arch->post_ln   ? bind_encoder_inputs(m)
               : m->arch->encoder ? bind_embedding_output(m)
                                  : bind_output(m)) ||
        (m->arch->layer_norm && /* ModernBERT's embedding norm, without bias */
         (err = bind_vector(m, "token_embd_norm.weight", hp->n_embd, true, &m->tok_norm))) ||
        (err = bind_classifier(m)) ||
        (err = bind_vector(m, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs)) ||
        (err = bind_vector(m, "rope_factors_long.weight", hp->n_rot / 2, false, &m->rope_long)) ||
        (err = bind_vector(m, "rope_factors_short.weight", hp->n_rot / 2, false, &m->rope_short)))
        return err;
    if (hp->n_embd_pl > 0) {
        const int64_t pl = (int64_t)hp->n_embd_pl * hp->n_layer;
        if ((err = bind_matrix(m, "per_layer_token_embd.weight", pl, hp->n_vocab, true,
                               &m->pl_tok_embd)) ||
            (err = bind_matrix(m, "per_layer_model_proj.weight", hp->n_embd, pl, true,
                               &m->pl_model_proj)) ||
            (err = bind_vector(m, "per_layer_proj_norm.weight", hp->n_embd_pl, true,
                               &m->pl_proj_norm)))
            return err;
    }
    if (m->arch->altup && ((err = bind_stacked(m, "altup_proj.weight", hp->n_embd, hp->n_embd,
                                               MODEL_ALTUP - 1, m->alt_proj)) ||
                           (err = bind_stacked(m, "altup_unembd_proj.weight", hp->n_embd,
                                               hp->n_embd, MODEL_ALTUP - 1, m->alt_unembd))))
        return err;
    m->layers = hr_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return HEARTH_ERR_NOMEM;
    /* sized by the header: a file that cannot hold a router and three expert
       tensors per layer is refused before, not after, the allocation */
    if (hp->n_expert > 0 && gguf_n_tensors(m->gguf) < 4 * (int64_t)hp->n_layer)
        return hr_fail(HEARTH_ERR_FORMAT, "model: %d layers of experts in %lld tensors",
                       hp->n_layer, (long long)gguf_n_tensors(m->gguf));
    if (hp->n_expert > 0 &&
        !(m->exps = hr_calloc((size_t)hp->n_layer * 3 * (size_t)hp->n_expert, sizeof *m->exps)))
        return HEARTH_ERR_NOMEM;
    for (int il = 0; il < hp->n_layer; il++)
        if ((err = bind_layer(m, il))) return err;
    return check_all_bound(m);
}

hearth_err model_bind_tensors(hearth_model *m) {
    const int64_t n = gguf_n_tensors(m->gguf);
    if (!(m->bound = hr_calloc(n > 0 ? (size_t)n : 1, 1))) return HEARTH_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) { /* room for every vector bind_vector may take */
        const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
        if (t->type == KERN_F32 && t->n_dims == 1) m->vectors_cap += t->n_elements;
    }
    if (m->vectors_cap && !(m->vectors = hr_calloc((size_t)m->vectors_cap, sizeof(float)))) {
        free(m->bound);
        return HEARTH_ERR_NOMEM;
    }
    const hearth_err err = bind_all(m);
    free(m->bound);
    m->bound = NULL;
    return err;
}

const float *model_rope_factors(const hearth_model *m, int n_ctx) {
    if (m->rope_freqs) return m->rope_freqs;
    const int64_t padded = ((int64_t)n_ctx + 255) / 256 * 256;
    return padded > m->hp.n_ctx_orig ? m->rope_long : m->rope_short;
}

hearth_err model_open(const char *path, const hearth_model_params *p, bool no_repack,
                      hearth_model **out) {
    hearth_model *m = hr_calloc(1, sizeof *m);
    if (!m) return HEARTH_ERR_NOMEM;
    hearth_err err = gguf_open(path, &m->gguf);
    gguf_str arch;
    if (!err && !gguf_get_str(m->gguf, "general.architecture", &arch))
        err = hr_fail(HEARTH_ERR_FORMAT, "model: key 'general.architecture' is missing");
    if (!err && !(m->arch = arch_find(arch.ptr, arch.len))) {
        char names[768];
        arch_names(names, sizeof names);
        err = hr_fail(HEARTH_ERR_UNSUPPORTED,
                      "model: architecture '%.*s' is not supported (Hearth runs %s)",
                      (int)(arch.len > 64 ? 64 : arch.len), arch.ptr, names);
    }
    if (!err) err = model_load_hparams(m->gguf, m->arch, p, &m->hp);
    if (!err) err = model_bind_tensors(m);
    if (!err) err = hr_pool_new(p->n_threads, &m->pool);
    if (!err && !no_repack) err = model_pack(m);
    if (err) {
        hr_wrap(err, "loading '%s': ", path);
        model_close(m);
        return err;
    }
    *out = m;
    return HEARTH_OK;
}

void model_close(hearth_model *m) {
    if (!m) return;
    hr_pool_free(m->pool);
    model_lora_free_all(m); /* before the layers: nothing reads the chains after this */
    free(m->layers);
    free(m->exps);
    free(m->vectors);
    hr_pages_free(m->packed, m->packed_bytes);
    gguf_close(m->gguf);
    free(m);
}

int hearth_model_n_vocab(const hearth_model *m) { return m->hp.n_vocab; }
int hearth_model_n_ctx_train(const hearth_model *m) { return m->hp.n_ctx_train; }
int hearth_model_n_embd(const hearth_model *m) { return m->hp.n_embd; }
const char *hearth_model_arch(const hearth_model *m) { return m->arch->name; }
int hearth_model_n_loras(const hearth_model *m) { return m->n_loras; }
bool model_is_encoder(const hearth_model *m) { return m->arch->encoder; }
bool hearth_model_generates(const hearth_model *m) { return !m->arch->encoder; }

int model_layer_products(model_layer *l, int n_expert, model_weight **out) {
    model_weight *ws[MODEL_LAYER_PRODUCTS] = {&l->wq,          &l->wk,          &l->wv,
                                              &l->wqkv,        &l->wo,          &l->gate,
                                              &l->up,          &l->gate_up,     &l->down,
                                              &l->conv_in,     &l->conv_out,    &l->ssm_in,
                                              &l->ssm_out,     &l->gate_inp,    &l->gate_shexp,
                                              &l->up_shexp,    &l->down_shexp,  &l->ssm_z,
                                              &l->ssm_beta,    &l->ssm_alpha,   &l->gate_inp_shexp,
                                              &l->pl_gate,     &l->pl_proj,     &l->alt_router,
                                              &l->alt_predict, &l->alt_correct, &l->laurel_l,
                                              &l->laurel_r};
    int n = 0;
    for (int i = 0; i < MODEL_LAYER_PRODUCTS; i++)
        if (ws[i]->data) out[n++] = ws[i];
    for (int e = 0; l->exps && e < 3 * n_expert; e++)
        if (l->exps[e].data) out[n++] = &l->exps[e]; /* no gates: nomic-bert-moe */
    return n;
}

/* ---- weights by name ---- */

static const struct {
    const char *suffix;
    size_t off;
} layer_weights[] = {
    {"attn_q.weight", offsetof(model_layer, wq)},
    {"attn_k.weight", offsetof(model_layer, wk)},
    {"attn_v.weight", offsetof(model_layer, wv)},
    {"attn_qkv.weight", offsetof(model_layer, wqkv)},
    {"attn_output.weight", offsetof(model_layer, wo)},
    {"ffn_gate.weight", offsetof(model_layer, gate)},
    {"ffn_up.weight", offsetof(model_layer, up)},
    {"ffn_down.weight", offsetof(model_layer, down)},
    {"ffn_gate_inp.weight", offsetof(model_layer, gate_inp)},
    {"ffn_gate_shexp.weight", offsetof(model_layer, gate_shexp)},
    {"ffn_up_shexp.weight", offsetof(model_layer, up_shexp)},
    {"ffn_down_shexp.weight", offsetof(model_layer, down_shexp)},
    {"ffn_gate_inp_shexp.weight", offsetof(model_layer, gate_inp_shexp)},
    {"shortconv.in_proj.weight", offsetof(model_layer, conv_in)},
    {"shortconv.out_proj.weight", offsetof(model_layer, conv_out)},
    {"ssm_in.weight", offsetof(model_layer, ssm_in)},
    {"ssm_out.weight", offsetof(model_layer, ssm_out)},
    {"attn_gate.weight", offsetof(model_layer, ssm_z)},
    {"ssm_beta.weight", offsetof(model_layer, ssm_beta)},
    {"ssm_alpha.weight", offsetof(model_layer, ssm_alpha)},
    {"inp_gate.weight", offsetof(model_layer, pl_gate)},
    {"proj.weight", offsetof(model_layer, pl_proj)},
    {"altup_router.weight", offsetof(model_layer, alt_router)},
    {"altup_predict_coef.weight", offsetof(model_layer, alt_predict)},
    {"altup_correct_coef.weight", offsetof(model_layer, alt_correct)},
    {"laurel_l.weight", offsetof(model_layer, laurel_l)},
    {"laurel_r.weight", offsetof(model_layer, laurel_r)},
};

/* The layer of a "blk.N.SUFFIX" name in the model's own spelling ("blk.01"
 * is not "blk.1") and its suffix; NULL for another name. */
static model_layer *layer_named(hearth_model *m, gguf_str name, gguf_str *suffix) {
    if (name.len < 5 || memcmp(name.ptr, "blk.", 4) != 0) return NULL;
    uint64_t i = 4, il = 0;
    while (i < name.len && name.ptr[i] >= '0' && name.ptr[i] <= '9' && i < 12)
        il = il * 10 + (uint64_t)(name.ptr[i++] - '0');
    if (i == 4 || i >= name.len || name.ptr[i] != '.' || (name.ptr[4] == '0' && i > 5) ||
        il >= (uint64_t)m->hp.n_layer)
        return NULL;
    *suffix = (gguf_str){.ptr = name.ptr + i + 1, .len = name.len - i - 1};
    return &m->layers[il];
}

model_weight *model_weight_named(hearth_model *m, gguf_str name) {
    if (gguf_str_eq(name, "token_embd.weight")) return &m->tok_embd;
    if (gguf_str_eq(name, "output.weight"))
        return m->output.data != m->tok_embd.data ? &m->output : NULL;
    gguf_str suffix;
    model_layer *l = layer_named(m, name, &suffix);
    if (!l) return NULL;
    for (size_t k = 0; k < sizeof layer_weights / sizeof layer_weights[0]; k++) {
        if (!gguf_str_eq(suffix, layer_weights[k].suffix)) continue;
        model_weight *w = (model_weight *)((char *)l + layer_weights[k].off);
        if (!w->data && l->gate_up.data && !strcmp(layer_weights[k].suffix, "ffn_up.weight"))
            w = &l->gate_up;
        return w->data ? w : NULL;
    }
    return NULL;
}

const model_weight *model_experts_named(hearth_model *m, gguf_str name) {
    static const char *const suffixes[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight",
                                            "ffn_down_exps.weight"};
    gguf_str suffix;
    const model_layer *l = layer_named(m, name, &suffix);
    for (int k = 0; l && l->exps && k < 3; k++)
        if (gguf_str_eq(suffix, suffixes[k])) return l->exps + (size_t)k * (size_t)m->hp.n_expert;
    return NULL;
}
