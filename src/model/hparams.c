/*
 * hparams.c - an architecture's hyper-parameters from GGUF metadata keys
 * "<arch>.<name>", with llama.cpp's defaults for the optional ones, checked
 * for consistency before anything is sized from them.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct hp_reader {
    const gguf_file *f;
    const char *arch;
    char key[160];
} hp_reader;

static const char *hp_key(hp_reader *r, const char *suffix) {
    snprintf(r->key, sizeof r->key, "%s.%s", r->arch, suffix);
    return r->key;
}

static hearth_err hp_int(hp_reader *r, const char *suffix, int *out, bool required, int dflt) {
    uint32_t v;
    const char *key = hp_key(r, suffix);
    if (gguf_get_u32(r->f, key, &v)) {
        if (v > (1u << 30))
            return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' = %u is out of range", key, v);
        *out = (int)v;
        return HEARTH_OK;
    }
    if (gguf_find(r->f, key))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' is not an unsigned integer", key);
    if (required) return hr_fail(HEARTH_ERR_FORMAT, "model: required key '%s' is missing", key);
    *out = dflt;
    return HEARTH_OK;
}

static hearth_err hp_float(hp_reader *r, const char *suffix, float *out, bool required,
                           float dflt) {
    const char *key = hp_key(r, suffix);
    if (gguf_get_f32(r->f, key, out)) return HEARTH_OK;
    if (gguf_find(r->f, key)) return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' is not a float", key);
    if (required) return hr_fail(HEARTH_ERR_FORMAT, "model: required key '%s' is missing", key);
    *out = dflt;
    return HEARTH_OK;
}

/* The experts, as llama.cpp reads them for the architectures that have
 * them: expert_count (required by one that is all MoE, a dense model
 * without it), expert_used_count, and the experts' width (arch_desc's
 * expert_ff). Grouped expert selection (DeepSeek V3's) is refused. */
static hearth_err moe_hparams(hp_reader *r, const arch_desc *arch, model_hparams *h) {
    hearth_err err;
    int groups;
    if (arch->moe == MOE_NEVER) return HEARTH_OK;
    if ((err = hp_int(r, "expert_count", &h->n_expert, arch->moe == MOE_ALWAYS, 0)) ||
        (err = hp_int(r, "expert_used_count", &h->n_expert_used, h->n_expert > 0, 0)) ||
        (err = hp_int(r, "expert_group_count", &groups, false, 0)) ||
        (err = hp_int(r, "moe_every_n_layers", &h->moe_every, false, 0)))
        return err;
    if (h->n_expert == 0) return HEARTH_OK;
    if (groups > 1)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "model: grouped expert selection is not supported");
    if (h->n_expert_used < 1)
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s.expert_used_count' is 0", r->arch);
    /* the shared expert, as llama.cpp reads it: Granite's when the file gives a width, a gated
       one always (feed_forward_length wide unless the file says) */
    if (arch->shexp != SHEXP_NONE &&
        (err = hp_int(r, "expert_shared_feed_forward_length", &h->n_ff_shexp, false,
                      arch->shexp == SHEXP_GATED ? h->n_ff : 0)))
        return err;
    if (arch->shexp == SHEXP_GATED && h->n_ff_shexp < 1)
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' has a shared expert of width 0", r->arch);
    if (arch->moe_gating) { /* llama.cpp's expert gating types: 1 softmax, 2 sigmoid */
        int gating;
        if ((err = hp_int(r, "expert_gating_func", &gating, true, 0)) ||
            (err = hp_int(r, "leading_dense_block_count", &h->n_dense_lead, false, 0)))
            return err;
        if (gating != 1 && gating != 2)
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "model: expert gating function %d is not supported (1 softmax, 2 "
                           "sigmoid)",
                           gating);
        if (h->n_dense_lead < 0 || h->n_dense_lead > h->n_layer)
            return hr_fail(HEARTH_ERR_FORMAT, "model: %d leading dense layers of %d",
                           h->n_dense_lead, h->n_layer);
        h->moe_sigmoid = gating == 2;
        h->n_ff_dense = h->n_ff; /* feed_forward_length: the dense layers' */
    }
    return arch->expert_ff ? hp_int(r, "expert_feed_forward_length", &h->n_ff, false,
                                    h->n_ff / h->n_expert_used)
                           : HEARTH_OK;
}

/* <arch>.hidden_activation, as llama.cpp maps it: gelu/geglu (also any name
 * it does not know), silu/swish/swiglu; relu is refused. */
static hearth_err hidden_act(hp_reader *r, model_hparams *h) {
    gguf_str s;
    const char *key = hp_key(r, "hidden_activation");
    if (!gguf_find(r->f, key)) return HEARTH_OK;
    if (!gguf_get_str(r->f, key, &s))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' is not a string", key);
    if (gguf_str_eq(s, "silu") || gguf_str_eq(s, "swish") || gguf_str_eq(s, "swiglu"))
        h->act = FFN_SILU;
    else if (gguf_str_eq(s, "relu") || gguf_str_eq(s, "reglu"))
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "model: a %.*s FFN is not supported", (int)s.len,
                       s.ptr);
    return HEARTH_OK;
}

/* Granite's multipliers; 0 (or absent) is "none" for all but logit_scale,
 * which llama.cpp requires. rope.scaling.finetuned = false switches RoPE
 * off (Granite 4.0-H's attention layers have no positions: the Mamba-2
 * layers order the tokens). */
static hearth_err granite_hparams(hp_reader *r, model_hparams *h) {
    float embd, residual;
    hearth_err err;
    if ((err = hp_float(r, "logit_scale", &h->logit_scale, true, 0.0f)) ||
        (err = hp_float(r, "residual_scale", &residual, false, 0.0f)) ||
        (err = hp_float(r, "embedding_scale", &embd, false, 0.0f)) ||
        (err = hp_float(r, "attention.scale", &h->attn_scale, false, 0.0f)))
        return err;
    if (residual != 0.0f) h->residual_scale = residual;
    if (embd != 0.0f) h->embd_scale = embd;
    bool rope = true;
    if (gguf_find(r->f, hp_key(r, "rope.scaling.finetuned")) && !gguf_get_bool(r->f, r->key, &rope))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' is not a boolean", r->key);
    h->rope_off = !rope;
    return HEARTH_OK;
}

/* A Mamba-2 architecture's ssm.* keys, all required, checked so that every
 * size the layers and the session take from them is positive, divides as
 * the scan needs and stays far from overflow. */
static hearth_err ssm_hparams(hp_reader *r, bool gdn, model_hparams *h) {
    hearth_err err;
    if ((err = hp_int(r, "ssm.conv_kernel", &h->ssm_conv, true, 0)) ||
        (err = hp_int(r, "ssm.inner_size", &h->ssm_inner, true, 0)) ||
        (err = hp_int(r, "ssm.state_size", &h->ssm_state, true, 0)) ||
        (err = hp_int(r, "ssm.time_step_rank", &h->ssm_heads, true, 0)) ||
        (err = hp_int(r, "ssm.group_count", &h->ssm_groups, true, 0)))
        return err;
    if (h->ssm_conv < 2 || h->ssm_conv > 64 || h->ssm_inner < 1 || h->ssm_inner > (1 << 20) ||
        h->ssm_state < 1 || h->ssm_state > 4096 || h->ssm_heads < 1 || h->ssm_groups < 1 ||
        h->ssm_inner % h->ssm_heads || h->ssm_heads % h->ssm_groups ||
        model_ssm_conv_dim(h) > (1 << 24)) /* channels that an int counts with room */
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: %s sizes out of range (kernel %d, inner %d, state %d, %d "
                       "heads, %d groups; the heads must divide the inner size and the groups "
                       "the heads)",
                       gdn ? "Gated DeltaNet" : "Mamba-2", h->ssm_conv, h->ssm_inner, h->ssm_state,
                       h->ssm_heads, h->ssm_groups);
    /* Gated DeltaNet: value heads (time_step_rank) of state_size, each reading key head
       h % group_count */
    if (gdn && (h->ssm_inner != h->ssm_heads * h->ssm_state || h->ssm_state > 1024))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: Gated DeltaNet sizes out of range (inner %d is not %d heads of %d "
                       "states, or the heads are wider than 1024)",
                       h->ssm_inner, h->ssm_heads, h->ssm_state);
    return HEARTH_OK;
}

/* rope.dimension_sections, required as llama.cpp requires it: four counts
 * of rotary pairs, at least one in all. */
static hearth_err rope_sections(hp_reader *r, model_hparams *h) {
    gguf_arr a;
    if (!gguf_get_arr(r->f, hp_key(r, "rope.dimension_sections"), &a) || a.n < 3 || a.n > 4 ||
        (a.type != GGUF_U32 && a.type != GGUF_I32))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' must hold 3 or 4 integers", r->key);
    int64_t sum = 0;
    for (uint64_t i = 0; i < a.n; i++) {
        const int64_t v = gguf_arr_int(&a, i);
        if (v < 0 || v > 4096)
            return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' has a section of %lld", r->key,
                           (long long)v);
        h->rope_sections[i] = (int)v;
        sum += v;
    }
    return sum > 0 ? HEARTH_OK
                   : hr_fail(HEARTH_ERR_FORMAT, "model: '%s' has no rotary pairs", r->key);
}

/* attention.head_count_kv: one count for every layer, or an array of one per
 * layer (llama.cpp's get_key_or_arr), whose entries must then agree (Hearth
 * sizes every attention layer alike) but for zeros in an architecture whose
 * layers without attention are short convolutions (kernel length
 * shortconv.l_cache) or Mamba-2 layers (ssm.*). */
static hearth_err kv_heads(hp_reader *r, const arch_desc *arch, model_hparams *h) {
    gguf_arr a;
    if (!gguf_get_arr(r->f, hp_key(r, "attention.head_count_kv"), &a))
        return hp_int(r, "attention.head_count_kv", &h->n_head_kv, false, h->n_head);
    if (h->n_layer < 1 ||
        (a.n != (uint64_t)h->n_layer && a.n != (uint64_t)h->n_layer + h->n_nextn) ||
        (a.type != GGUF_U32 && a.type != GGUF_I32))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' must hold one integer per layer (%d)",
                       r->key, h->n_layer);
    h->n_head_kv = 0;
    for (int il = 0; il < h->n_layer; il++) {
        const int64_t v = gguf_arr_int(&a, (uint64_t)il);
        if (v == 0 && (arch->shortconv || arch->ssm)) {
            *(arch->ssm ? &h->n_ssm : &h->n_conv) += 1;
        } else if (v < 1 || (h->n_head_kv && v != h->n_head_kv)) {
            return hr_fail(v < 1 || v > (1 << 30) ? HEARTH_ERR_FORMAT : HEARTH_ERR_UNSUPPORTED,
                           "model: layer %d has %lld kv heads (%s); Hearth runs layers of one "
                           "count%s",
                           il, (long long)v, r->key,
                           arch->shortconv ? ", or 0 for a short convolution"
                           : arch->ssm     ? ", or 0 for a Mamba-2 layer"
                                           : "");
        } else {
            h->n_head_kv = (int)v;
        }
    }
    if (h->n_head_kv == 0) h->n_head_kv = h->n_head; /* no attention layer at all */
    if (h->n_ssm) return ssm_hparams(r, false, h);
    if (!h->n_conv) return HEARTH_OK;
    hearth_err err = hp_int(r, "shortconv.l_cache", &h->conv_l, true, 0);
    if (!err && (h->conv_l < 2 || h->conv_l > 64))
        err = hr_fail(HEARTH_ERR_FORMAT, "model: '%s' = %d is not a kernel of 2 to 64 tokens",
                      r->key, h->conv_l);
    return err;
}

/* The key "<arch>.<suffix>" when it is an array of one integer per layer
 * (the first n_layer entries of a longer one), else false. */
static bool layer_array(const gguf_file *f, const char *arch, const char *suffix, gguf_arr *a) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_arr(f, key, a) && (a->type == GGUF_U32 || a->type == GGUF_I32 ||
                                       a->type == GGUF_BOOL || a->type == GGUF_U8);
}

/* feed_forward_length as llama.cpp's get_key_or_arr reads it: one width for
 * every layer, or (arch layer_dims) one per layer, n_ff then the widest. */
static hearth_err ff_widths(hp_reader *r, const arch_desc *arch, model_hparams *h) {
    gguf_arr a;
    if (!gguf_get_arr(r->f, hp_key(r, "feed_forward_length"), &a))
        return hp_int(r, "feed_forward_length", &h->n_ff, !arch->expert_ff, 0);
    if (!arch->layer_dims || a.n < (uint64_t)h->n_layer ||
        (a.type != GGUF_U32 && a.type != GGUF_I32))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' must be one integer%s", r->key,
                       arch->layer_dims ? " or one per layer" : " for this architecture");
    h->n_ff = 0;
    for (int il = 0; il < h->n_layer; il++) {
        const int64_t v = gguf_arr_int(&a, (uint64_t)il);
        if (v < 1 || v > (1 << 30))
            return hr_fail(HEARTH_ERR_FORMAT, "model: layer %d has a feed-forward width of %lld",
                           il, (long long)v);
        if (v > h->n_ff) h->n_ff = (int)v;
    }
    return HEARTH_OK;
}

/* llama.cpp's Gemma 3n graph sparsifies the first 10 layers' gates at the
 * normal distribution's 95th percentile, which is what the converter
 * writes (activation_sparsity_scale: icdf(0.95) there, icdf(0) = -inf on
 * the layers without). */
enum { SPARSE_LAYERS_DEFAULT = 10 };
static const float SPARSE_STD_DEFAULT = 1.6448533535003662f;

bool model_layer_sparsity(const gguf_file *f, const arch_desc *arch, int il, float *std_mul) {
    char key[160];
    gguf_arr a;
    if (!arch->altup) return false;
    snprintf(key, sizeof key, "%s.activation_sparsity_scale", arch->name);
    if (!gguf_get_arr(f, key, &a)) {
        *std_mul = SPARSE_STD_DEFAULT;
        return il < SPARSE_LAYERS_DEFAULT;
    }
    *std_mul = (float)gguf_arr_float(&a, (uint64_t)il); /* altup_hparams checked the array */
    return isfinite(*std_mul);
}

/* Gemma 3n's AltUp and LAuReL: four streams with the first one run (what
 * llama.cpp's graph and converter fix), LAuReL's rank from its tensor, and
 * the sparsity array (one float per layer, finite or -inf) checked. */
static hearth_err altup_hparams(hp_reader *r, model_hparams *h) {
    int n_inputs, active;
    hearth_err err;
    if (h->n_embd_pl < 1) /* the corrected stream feeds the per-layer embedding */
        return hr_fail(HEARTH_ERR_FORMAT, "model: AltUp needs per-layer embeddings (%s is %d)",
                       hp_key(r, "embedding_length_per_layer_input"), h->n_embd_pl);
    if ((err = hp_int(r, "altup.num_inputs", &n_inputs, false, MODEL_ALTUP)) ||
        (err = hp_int(r, "altup.active_idx", &active, false, 0)))
        return err;
    if (n_inputs != MODEL_ALTUP || active != 0)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "model: AltUp with %d streams and stream %d active is not supported "
                       "(Gemma 3n and llama.cpp: %d streams, the first active)",
                       n_inputs, active, MODEL_ALTUP);
    const gguf_tensor *t = gguf_find_tensor(r->f, "blk.0.laurel_l.weight");
    if (!t || t->n_dims != 2 || t->ne[0] != h->n_embd || t->ne[1] < 1 || t->ne[1] > h->n_embd)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: blk.0.laurel_l.weight is missing or not [%d, rank <= %d]", h->n_embd,
                       h->n_embd);
    h->laurel_rank = (int)t->ne[1];
    gguf_arr a;
    const char *key = hp_key(r, "activation_sparsity_scale");
    if (!gguf_find(r->f, key)) return HEARTH_OK;
    if (!gguf_get_arr(r->f, key, &a) || a.type != GGUF_F32 || a.n < (uint64_t)h->n_layer)
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' must be %d floats", key, h->n_layer);
    for (int il = 0; il < h->n_layer; il++) {
        const double v = gguf_arr_float(&a, (uint64_t)il);
        if (!(isfinite(v) && fabs(v) < 1e3) && !(isinf(v) && v < 0))
            return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' of layer %d is %g", key, il, v);
    }
    return HEARTH_OK;
}

float model_attn_temp(const model_hparams *hp, int pos) {
    /* a float position over the floor, the logarithm in double (llm_graph_input_attn_temp) */
    const float q = floorf((float)pos / (float)hp->attn_temp_floor);
    return (float)(log((double)q + 1.0) * (double)hp->attn_temp_scale + 1.0);
}

int model_layer_n_ff(const gguf_file *f, const arch_desc *arch, const model_hparams *hp, int il) {
    gguf_arr a;
    if (il < hp->n_dense_lead) return hp->n_ff_dense;
    return arch->layer_dims && layer_array(f, arch->name, "feed_forward_length", &a)
               ? (int)gguf_arr_int(&a, (uint64_t)il)
               : hp->n_ff;
}

bool model_layer_experts(const model_hparams *hp, int il) {
    return hp->n_expert > 0 && il >= hp->n_dense_lead &&
           (hp->moe_every == 0 || il % hp->moe_every == 1);
}

bool model_swa_layer(const gguf_file *f, const arch_desc *arch, const model_hparams *hp, int il) {
    gguf_arr a;
    if (hp->swa_window == 0) return false;
    if (hp->swa_by_layer && layer_array(f, arch->name, "attention.sliding_window_pattern", &a))
        return gguf_arr_int(&a, (uint64_t)il) != 0;
    if (arch->swa_dense_first) return hp->swa_pattern == 0 || il % hp->swa_pattern != 0;
    return hp->swa_pattern > 0 && il % hp->swa_pattern < hp->swa_pattern - 1;
}

/* attention.sliding_window_pattern: every how many layers one is global (the
 * others window layers), or an array that marks each window layer. */
static hearth_err swa_pattern(hp_reader *r, const arch_desc *arch, model_hparams *h) {
    gguf_arr a;
    if (!gguf_get_arr(r->f, hp_key(r, "attention.sliding_window_pattern"), &a))
        return hp_int(r, "attention.sliding_window_pattern", &h->swa_pattern, false,
                      arch->swa_pattern);
    if (a.n < (uint64_t)h->n_layer ||
        (a.type != GGUF_BOOL && a.type != GGUF_U8 && a.type != GGUF_U32 && a.type != GGUF_I32))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' must mark each of the %d layers", r->key,
                       h->n_layer);
    h->swa_by_layer = true;
    return HEARTH_OK;
}

/* Gemma 4's shared keys and values: the layers from n_kv_from_start on
 * read those of the last window layer (n_kv_from_start - 2) or the last
 * global one (- 1), as llama.cpp maps them; a file whose layers there are
 * not of those kinds is refused. */
static hearth_err shared_kv(hp_reader *r, const arch_desc *arch, model_hparams *h) {
    int shared;
    const int from_default = arch->kv_from_default;
    hearth_err err =
        hp_int(r, "attention.shared_kv_layers", &shared, false,
               from_default > 0 && h->n_layer > from_default ? h->n_layer - from_default : 0);
    if (err || shared == 0) return err;
    const int from = h->n_layer - shared;
    if (shared >= h->n_layer - 1 || model_swa_layer(r->f, arch, h, from - 1) ||
        !model_swa_layer(r->f, arch, h, from - 2))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: %d of %d layers share keys and values, but the two layers "
                       "before them are not a window layer and a global one",
                       shared, h->n_layer);
    h->n_kv_from_start = from;
    return HEARTH_OK;
}

bool model_kv_free_layer(const gguf_file *f, const arch_desc *arch, int il) {
    char key[160];
    gguf_arr a;
    if (arch->gdn) { /* llama.cpp's pattern when the file marks no layers */
        snprintf(key, sizeof key, "%s.attention.recurrent_layers", arch->name);
        if (gguf_get_arr(f, key, &a)) return (uint64_t)il < a.n && gguf_arr_int(&a, (uint64_t)il);
        snprintf(key, sizeof key, "%s.full_attention_interval", arch->name);
        uint32_t every = 4;
        if (gguf_find(f, key)) gguf_get_u32(f, key, &every);
        return every == 0 || (il + 1) % (int64_t)every != 0;
    }
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch->name);
    return (arch->shortconv || arch->ssm) && gguf_get_arr(f, key, &a) && (uint64_t)il < a.n &&
           gguf_arr_int(&a, (uint64_t)il) == 0;
}

static hearth_err hp_check(const model_hparams *hp) {
    if (hp->n_embd < 1 || hp->n_layer < 1 || hp->n_ff < 1 || hp->n_head < 1 || hp->n_head_kv < 1 ||
        hp->head_dim < 2 || hp->n_ctx_train < 1)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: a dimension is zero (n_embd %d, n_layer %d, n_ff %d, "
                       "n_head %d, n_head_kv %d, head_dim %d, context %d)",
                       hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv, hp->head_dim,
                       hp->n_ctx_train);
    if (hp->n_layer > 4096 || hp->n_head > 4096 || hp->head_dim > 4096)
        return hr_fail(HEARTH_ERR_FORMAT, "model: implausible shape (%d layers, %d heads of %d)",
                       hp->n_layer, hp->n_head, hp->head_dim);
    if (hp->n_head % hp->n_head_kv)
        return hr_fail(HEARTH_ERR_FORMAT, "model: %d heads are not a multiple of %d kv heads",
                       hp->n_head, hp->n_head_kv);
    if (hp->n_rot < 2 || hp->n_rot % 2 || hp->n_rot > hp->head_dim || hp->head_dim_swa < 2 ||
        hp->head_dim_swa > 4096 || hp->n_rot_swa < 2 || hp->n_rot_swa % 2 ||
        hp->n_rot_swa > hp->head_dim_swa)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: rope dimensions %d and %d do not fit head sizes %d and %d",
                       hp->n_rot, hp->n_rot_swa, hp->head_dim, hp->head_dim_swa);
    if (hp->n_embd_pl < 0 || hp->n_embd_pl > 65536 ||
        (int64_t)hp->n_embd_pl * hp->n_layer > (1 << 24))
        return hr_fail(HEARTH_ERR_FORMAT, "model: per-layer embeddings of %d are out of range",
                       hp->n_embd_pl);
    if (!(hp->rms_eps > 0.0f) || !(hp->rope_base > 0.0f) || !(hp->rope_base_swa > 0.0f) ||
        !(hp->rope_scale > 0.0f))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: norm epsilon and rope base/scale must be positive");
    if (hp->n_ctx_orig < 1 || !(hp->rope_attn_factor > 0.0f) ||
        !(hp->rope_attn_factor < 1e3f)) /* NaN fails both */
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: rope original context %d and attention factor %g must be positive",
                       hp->n_ctx_orig, (double)hp->rope_attn_factor);
    if (!(hp->logit_scale > 0.0f && hp->logit_scale < 1e30f) ||
        !(hp->embd_scale > 0.0f && hp->embd_scale < 1e30f) ||
        !(hp->residual_scale > 0.0f && hp->residual_scale < 1e30f) ||
        !(hp->attn_scale >= 0.0f && hp->attn_scale < 1e30f)) /* NaN fails */
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: scales must be positive and finite (logits %g, embeddings %g, "
                       "residuals %g, attention %g)",
                       (double)hp->logit_scale, (double)hp->embd_scale, (double)hp->residual_scale,
                       (double)hp->attn_scale);
    if (!(hp->attn_softcap >= 0.0f && hp->attn_softcap < 1e30f) ||
        !(hp->final_softcap >= 0.0f && hp->final_softcap < 1e30f)) /* NaN fails */
        return hr_fail(HEARTH_ERR_FORMAT, "model: soft-capping values %g and %g must be >= 0",
                       (double)hp->attn_softcap, (double)hp->final_softcap);
    if (hp->swa_window < 0 || hp->swa_pattern < 0)
        return hr_fail(HEARTH_ERR_FORMAT, "model: negative sliding window");
    if (hp->n_expert > 0 &&
        (hp->n_expert > MODEL_MAX_EXPERTS || hp->n_expert_used < 1 ||
         hp->n_expert_used > hp->n_expert || hp->n_expert_used > MODEL_MAX_EXPERTS_USED))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: %d experts with %d used per token (at most %d experts and %d used)",
                       hp->n_expert, hp->n_expert_used, MODEL_MAX_EXPERTS, MODEL_MAX_EXPERTS_USED);
    return HEARTH_OK;
}

hearth_err model_load_hparams(const gguf_file *f, const arch_desc *arch,
                              const hearth_model_params *p, model_hparams *hp) {
    hp_reader r = {.f = f, .arch = arch->name};
    model_hparams h = {0};
    hearth_err err;
    if ((err = hp_int(&r, "context_length", &h.n_ctx_train, true, 0)) ||
        (err = hp_int(&r, "embedding_length", &h.n_embd, true, 0)) ||
        (err = hp_int(&r, "block_count", &h.n_layer, true, 0)) ||
        (err = hp_int(&r, "attention.head_count", &h.n_head, true, 0)))
        return err;
    if (h.n_head < 1) return hr_fail(HEARTH_ERR_FORMAT, "model: attention.head_count is 0");
    /* Qwen3.5's MTP block is counted in block_count, after the layers that run */
    if (arch->gdn && (err = hp_int(&r, "nextn_predict_layers", &h.n_nextn, false, 0))) return err;
    if (h.n_nextn >= h.n_layer)
        return hr_fail(HEARTH_ERR_FORMAT, "model: %d of %d layers predict further tokens",
                       h.n_nextn, h.n_layer);
    h.n_layer -= h.n_nextn;
    h.n_kv_from_start = h.n_layer;
    if ((err = ff_widths(&r, arch, &h)) || (err = kv_heads(&r, arch, &h))) return err;
    if ((arch->imrope || arch->mrope) && (err = rope_sections(&r, &h))) return err;
    if (arch->gdn) {
        int every; /* read by model_kv_free_layer; a key of another type is refused here */
        if ((err = hp_int(&r, "full_attention_interval", &every, false, 4))) return err;
        for (int il = 0; il < h.n_layer; il++) h.n_ssm += model_kv_free_layer(f, arch, il);
        if (h.n_ssm && (err = ssm_hparams(&r, true, &h))) return err;
    }
    if (arch->ssm_parallel) { /* every layer: attention beside Mamba-2 */
        h.n_ssm = h.n_layer;
        h.ssm_parallel = true;
        if ((err = ssm_hparams(&r, false, &h))) return err;
    }
    if ((err = moe_hparams(&r, arch, &h))) return err;
    if ((err = hp_int(&r, "attention.key_length", &h.head_dim, false, h.n_embd / h.n_head)) ||
        (err = hp_int(&r, "rope.dimension_count", &h.n_rot, false, h.head_dim)) ||
        (err = hp_float(&r,
                        arch->post_ln || arch->layer_norm ? "attention.layer_norm_epsilon"
                                                          : "attention.layer_norm_rms_epsilon",
                        &h.rms_eps, true, 0)) ||
        (err = hp_float(&r, "rope.freq_base", &h.rope_base, false, 10000.0f)) ||
        (err = hp_float(&r, "final_logit_softcapping", &h.final_softcap, false,
                        arch->softcap || arch->final_softcap ? 30.0f : 0.0f)) ||
        (arch->softcap &&
         (err = hp_float(&r, "attn_logit_softcapping", &h.attn_softcap, false, 50.0f))))
        return err;
    int value_length;
    if ((err = hp_int(&r, "attention.value_length", &value_length, false, h.head_dim))) return err;
    if (value_length != h.head_dim)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "model: value length %d differs from key length %d",
                       value_length, h.head_dim);
    h.head_dim_swa = h.head_dim;
    h.n_rot_swa = h.n_rot;
    if (arch->layer_dims &&
        ((err = hp_int(&r, "attention.key_length_swa", &h.head_dim_swa, false, h.head_dim)) ||
         (err = hp_int(&r, "attention.value_length_swa", &value_length, false, h.head_dim_swa)) ||
         (err = hp_int(&r, "rope.dimension_count_swa", &h.n_rot_swa, false, h.n_rot))))
        return err;
    if (value_length != h.head_dim_swa)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "model: window layers' value length %d differs from their key length %d",
                       value_length, h.head_dim_swa);
    /* Gemma 3n without the key: llama.cpp's n_embd_altup, 256 */
    if (arch->per_layer_embd && (err = hp_int(&r, "embedding_length_per_layer_input", &h.n_embd_pl,
                                              false, arch->altup ? 256 : 0)))
        return err;
    if (arch->altup && (err = altup_hparams(&r, &h))) return err;

    /* The scaling type and factor: the file's, or the caller's (llama.cpp's
     * --rope-scaling and --rope-scale; a factor without a type scales
     * linearly, as there) */
    h.rope_scale = 1.0f;
    gguf_str scaling = {0};
    const bool typed = gguf_get_str(f, hp_key(&r, "rope.scaling.type"), &scaling);
    if (p && p->rope_scaling) scaling = (gguf_str){p->rope_scaling, strlen(p->rope_scaling)};
    if (p && p->rope_scaling && !gguf_str_eq(scaling, "none") && !gguf_str_eq(scaling, "linear") &&
        !gguf_str_eq(scaling, "yarn"))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "model: rope scaling '%.64s' is not one of none, linear, yarn",
                       p->rope_scaling);
    if (!(typed || (p && p->rope_scaling)) || !gguf_str_eq(scaling, "none")) {
        h.yarn = gguf_str_eq(scaling, "yarn");
        if (typed && !h.yarn && !gguf_str_eq(scaling, "linear"))
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "model: rope scaling '%.*s' is not supported",
                           (int)(scaling.len > 64 ? 64 : scaling.len), scaling.ptr);
        float factor;
        if ((err = hp_float(&r, "rope.scaling.factor", &factor, false, 1.0f))) return err;
        if (p && p->rope_scale != 0.0f) factor = p->rope_scale;
        if (!(factor > 0.0f) || !(factor < 1e6f))
            return hr_fail(HEARTH_ERR_FORMAT, "model: rope scaling factor %g is not in (0, 1e6)",
                           (double)factor);
        h.rope_scale = 1.0f / factor;
    }

    /* An encoder attends both ways, a decoder causally; a file saying
     * otherwise is a variant Hearth does not run. */
    bool causal = !arch->encoder;
    const gguf_kv *ckv = gguf_find(f, hp_key(&r, "attention.causal"));
    if (ckv && !gguf_get_bool(f, r.key, &causal))
        return hr_fail(HEARTH_ERR_FORMAT, "model: '%s' is not a boolean", r.key);
    if (causal == arch->encoder)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "model: %s attention is not supported for architecture '%s'",
                       causal ? "causal" : "non-causal", arch->name);

    /* LongRoPE (phi3): which factors a session takes, and the magnitude
     * factor llama.cpp hands ggml_rope_ext as attn_factor whatever the
     * scaling type (its YaRN part is 1 without YaRN; with it, below).
     * YaRN's original context is the same key. */
    if ((err = hp_int(&r, "rope.scaling.original_context_length", &h.n_ctx_orig, false,
                      h.n_ctx_train)) ||
        (err = hp_float(&r, "rope.scaling.attn_factor", &h.rope_attn_factor, false, 1.0f)))
        return err;
    float log_mul = 0.0f;
    h.yarn_beta_fast = 32.0f;
    h.yarn_beta_slow = 1.0f;
    if (arch->yarn_keys &&
        ((err = hp_float(&r, "rope.scaling.yarn_beta_fast", &h.yarn_beta_fast, false, 32.0f)) ||
         (err = hp_float(&r, "rope.scaling.yarn_beta_slow", &h.yarn_beta_slow, false, 1.0f)) ||
         (err = hp_float(&r, "rope.scaling.yarn_log_multiplier", &log_mul, false, 0.0f)) ||
         (err = hp_float(&r, "attention.temperature_scale", &h.attn_temp_scale, false, 0.0f))))
        return err;
    if (!(h.yarn_beta_fast > 0.0f && h.yarn_beta_fast < 1e6f && h.yarn_beta_slow > 0.0f &&
          h.yarn_beta_slow < 1e6f && log_mul >= 0.0f && log_mul < 1e6f &&
          fabsf(h.attn_temp_scale) < 1e6f))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: YaRN's beta_fast %g, beta_slow %g, log multiplier %g or the "
                       "attention temperature %g is out of range",
                       (double)h.yarn_beta_fast, (double)h.yarn_beta_slow, (double)log_mul,
                       (double)h.attn_temp_scale);
    h.attn_temp_floor = h.n_ctx_orig; /* the file's, whatever --yarn-orig-ctx says */
    if (h.attn_temp_scale != 0.0f && h.attn_temp_floor < 1)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "model: an attention temperature needs an original context length");
    if (p && p->yarn_orig_ctx > 0) h.n_ctx_orig = p->yarn_orig_ctx;
    if (h.yarn && h.rope_scale < 1.0f) {
        /* llama.cpp's yarn_attn_factor: get_mscale(factor), or with a log multiplier
           get_mscale(factor) / get_mscale(factor, log_mul), times the inverse of the
           1 + 0.1 ln(factor) ggml's rope multiplies in; each 0.1 m ln(factor) + 1 fused by
           its compiler. Without the multiplier not quite 1 in F32; with Ministral 3's
           (1) the magnitude is 1 / (1 + 0.1 ln(factor)), as Hugging Face's YaRN has it. */
        const float factor = 1.0f / h.rope_scale, m = fmaf(0.1f, logf(factor), 1.0f);
        const float mscale = log_mul != 0.0f ? m / fmaf(0.1f * log_mul, logf(factor), 1.0f) : m;
        h.rope_attn_factor *= mscale * (1.0f / m);
    }

    int window = 0;
    if (arch->refuse_swa && (err = hp_int(&r, "attention.sliding_window", &window, false, 0)))
        return err;
    if (window > 0 || (arch->refuse_swa_layers && h.n_layer == arch->refuse_swa_layers))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "model: '%s' with sliding-window layers (as EXAONE 4.0 32B's) is not "
                       "supported",
                       arch->name);

    h.rope_base_swa = h.rope_base;
    h.rope_scale_swa = h.rope_scale;
    /* --rope-freq-base replaces the global base only: llama.cpp's window
       layers keep the file's */
    if (p && p->rope_freq_base > 0.0f) h.rope_base = p->rope_freq_base;
    if (arch->swa) {
        if (!arch->swa_global_rope) {
            h.rope_scale_swa = 1.0f;
            if (!arch->swa_plain_rope) h.rope_base_swa = 10000.0f;
        }
        const bool window_required =
            (arch->swa_symmetric && !arch->swa_dense_first) || arch->shared_kv;
        if ((err = hp_int(&r, "attention.sliding_window", &h.swa_window, window_required,
                          arch->swa_window)) ||
            (err = swa_pattern(&r, arch, &h)) ||
            (err = hp_float(&r, "rope.freq_base_swa", &h.rope_base_swa, false, h.rope_base_swa)))
            return err;
        if (h.swa_window == 0) h.swa_pattern = 0;
    }
    if (arch->shared_kv && (err = shared_kv(&r, arch, &h))) return err;

    /* GGUF's pooling_type: 0 none, 1 mean, 2 cls, 3 last, 4 rank. Hearth always
     * pools (a causal LM has no pooling of its own): mean unless cls or last.
     * A reranker's head reads the first row of an encoder (what attends to
     * the whole pair) and the last of a decoder, as llama.cpp's does. */
    int pooling;
    if ((err = hp_int(&r, "pooling_type", &pooling, false, 0))) return err;
    h.rank = pooling == 4;
    if (h.rank) /* ModernBERT's head reads the mean (layer_norm) */
        pooling = !arch->encoder     ? HEARTH_POOL_LAST
                  : arch->layer_norm ? HEARTH_POOL_MEAN
                                     : HEARTH_POOL_CLS;
    h.pooling =
        pooling == HEARTH_POOL_CLS || pooling == HEARTH_POOL_LAST ? pooling : HEARTH_POOL_MEAN;
    h.embd_scale = arch->scale_embd ? sqrtf((float)h.n_embd) : 1.0f;
    h.residual_scale = h.logit_scale = 1.0f;
    h.attn_scale = arch->unit_scale ? 1.0f : 0.0f;
    if (arch->granite_scales && (err = granite_hparams(&r, &h))) return err;
    h.act = arch->act;
    if (arch->hidden_act && (err = hidden_act(&r, &h))) return err;
    if ((err = hp_check(&h))) return err;
    if (h.attn_scale == 0.0f) { /* 1/sqrt(head_dim), or 1/sqrt(n_embd / n_head) for the
                                   wide-headed gemma 27B models, which llama.cpp tells by
                                   their layer count */
        const int dim = h.n_layer == arch->wide_scale_layers ? h.n_embd / h.n_head : h.head_dim;
        if (dim < 1)
            return hr_fail(HEARTH_ERR_FORMAT, "model: %d heads in %d dimensions", h.n_head,
                           h.n_embd);
        h.attn_scale = 1.0f / sqrtf((float)dim);
    }
    *hp = h;
    return HEARTH_OK;
}
