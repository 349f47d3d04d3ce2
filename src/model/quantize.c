/*
 * quantize.c - llama-quantize's presets for Hearth: which type each tensor
 * gets (quant_plan) and the conversion itself (quant_model).
 *
 * Facts taken from llama.cpp's src/llama-quant.cpp (commit 34af94cd), which
 * the files in ../shared were made with; the aim is byte-identical output:
 *  - output order: llama_model_loader keeps tensors in a map ordered by the
 *    layer number parsed from "blk.%d." (-1 for the rest), then by name;
 *  - the per-layer counters of the *_K_M rules (i_attention_wv, i_ffn_down)
 *    advance in that order, and only for tensors the rules were asked about
 *    (not for 1-D ones, nor for tensors taken by an override);
 *  - metadata: every pair of the input, then general.quantization_version = 2
 *    and general.file_type = the preset, both moved to the end (ggml's
 *    gguf_set_val_* removes a key before appending it);
 *  - with an imatrix, quantize.imatrix.file, .dataset (the first one),
 *    .entries_count and .chunks_count (when known) after those, in that order;
 *  - data: each row quantized on its own by quantize_row_*_ref, or with an
 *    imatrix entry by ggml_quantize_chunk's weighted quantizers, which
 *    kern_ref_quantize_row and kern_ref_quantize_row_imatrix reproduce bit
 *    for bit.
 */
#include "quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { QUANT_QNT_VERSION = 2 }; /* ggml's GGML_QNT_VERSION */

typedef struct preset {
    quant_ftype ftype; /* named by gguf_ftype_name */
    kern_type base;
} preset;

/* llama_ftype_get_default_type: the type of the tensors no rule singles out. */
static const preset presets[] = {
    {QUANT_FTYPE_F16, KERN_F16},       {QUANT_FTYPE_Q8_0, KERN_Q8_0},
    {QUANT_FTYPE_Q4_0, KERN_Q4_0},     {QUANT_FTYPE_Q4_1, KERN_Q4_1},
    {QUANT_FTYPE_Q5_0, KERN_Q5_0},     {QUANT_FTYPE_Q5_1, KERN_Q5_1},
    {QUANT_FTYPE_Q2_K, KERN_Q2_K},     {QUANT_FTYPE_Q2_K_S, KERN_Q2_K},
    {QUANT_FTYPE_Q3_K_S, KERN_Q3_K},   {QUANT_FTYPE_Q3_K_M, KERN_Q3_K},
    {QUANT_FTYPE_Q3_K_L, KERN_Q3_K},   {QUANT_FTYPE_Q4_K_S, KERN_Q4_K},
    {QUANT_FTYPE_Q4_K_M, KERN_Q4_K},   {QUANT_FTYPE_Q5_K_S, KERN_Q5_K},
    {QUANT_FTYPE_Q5_K_M, KERN_Q5_K},   {QUANT_FTYPE_Q6_K, KERN_Q6_K},
    {QUANT_FTYPE_IQ4_NL, KERN_IQ4_NL}, {QUANT_FTYPE_IQ4_XS, KERN_IQ4_XS},
};
enum { N_PRESETS = sizeof presets / sizeof presets[0] };

/* llama-quantize's other names for presets. */
static const struct {
    const char *name;
    quant_ftype ftype;
} aliases[] = {
    {"Q3_K", QUANT_FTYPE_Q3_K_M},
    {"Q4_K", QUANT_FTYPE_Q4_K_M},
    {"Q5_K", QUANT_FTYPE_Q5_K_M},
};

static const preset *preset_find(quant_ftype ftype) {
    for (int i = 0; i < N_PRESETS; i++)
        if (presets[i].ftype == ftype) return &presets[i];
    return NULL;
}

bool quant_ftype_parse(const char *name, quant_ftype *out) {
    for (int i = 0; name && i < N_PRESETS; i++) {
        if (!strcasecmp(gguf_ftype_name(presets[i].ftype), name)) {
            *out = presets[i].ftype;
            return true;
        }
    }
    for (size_t i = 0; name && i < sizeof aliases / sizeof aliases[0]; i++) {
        if (!strcasecmp(aliases[i].name, name)) {
            *out = aliases[i].ftype;
            return true;
        }
    }
    return false;
}

const char *quant_ftype_name(quant_ftype ftype) {
    const preset *p = preset_find(ftype);
    return p ? gguf_ftype_name(p->ftype) : NULL;
}

kern_type quant_ftype_base_type(quant_ftype ftype) {
    const preset *p = preset_find(ftype);
    return p ? p->base : KERN_F32;
}

quant_params quant_default_params(void) {
    return (quant_params){.ftype = QUANT_FTYPE_Q8_0, .n_threads = 0};
}

/* ---- tensor names ---- */

typedef enum category {
    CAT_TOKEN_EMBD,
    CAT_OUTPUT,
    CAT_ATTN_V, /* attn_v, and the tensors llama.cpp treats like it: attn_qkv, attn_kv_b */
    CAT_ATTN_K,
    CAT_ATTN_OUTPUT,
    CAT_FFN_DOWN,
    CAT_OTHER
} category;

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

/* llama.cpp tests these in this order (a fused attn_qkv is attn_v-like). */
static category category_of(const char *name) {
    if (!strcmp(name, "output.weight")) return CAT_OUTPUT;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight"))
        return CAT_TOKEN_EMBD;
    if (has(name, "attn_qkv.weight") || has(name, "attn_kv_b.weight") || has(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (has(name, "attn_k.weight")) return CAT_ATTN_K;
    if (has(name, "attn_q.weight")) return CAT_OTHER;
    if (has(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (has(name, "ffn_up") || has(name, "ffn_gate")) return CAT_OTHER;
    if (has(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

/* Tensors llama-quantize never converts even when they are matrices: small
 * or precision-critical ones of various architectures (names they contain). */
static const char *const keep_substrings[] = {
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
};

/* ggml_n_dims: dimensions up to the last one that is not 1 (at least 1). */
static uint32_t n_dims_of(const gguf_tensor *t) {
    uint32_t n = 1;
    for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++)
        if (t->ne[d] > 1) n = d + 1;
    return n;
}

static bool allows_quantization(const char *name, const gguf_tensor *t) {
    if (n_dims_of(t) < 2 || !ends_with(name, "weight")) return false;
    if (!strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight")) return false;
    for (size_t i = 0; i < sizeof keep_substrings / sizeof keep_substrings[0]; i++)
        if (has(name, keep_substrings[i])) return false;
    return true;
}

/* ---- type choice ---- */

typedef struct plan_state {
    quant_ftype ftype;
    bool falcon;      /* llama.cpp has Falcon-only rules */
    bool has_imatrix; /* a few rules depend on it */
    bool tied;        /* no output.weight: token_embd is also the output */
    int n_layer;      /* <arch>.block_count */
    int n_gqa;        /* query heads per KV head in layer 0 (0 without KV heads) */
    int n_expert;     /* <arch>.expert_count (0: dense) */
    int n_attn_v, i_attn_v;
    int i_ffn_down;
} plan_state;

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third layer in between. */
static bool more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* attn_v and the tensors treated like it, the i-th of n. */
static kern_type attn_v_type(const plan_state *st, kern_type type, int i) {
    switch (st->ftype) {
    case QUANT_FTYPE_Q2_K: return st->n_gqa >= 4 ? KERN_Q4_K : KERN_Q3_K;
    case QUANT_FTYPE_Q2_K_S: return st->n_gqa >= 4 ? KERN_Q4_K : type;
    case QUANT_FTYPE_Q3_K_M: return i < 2 ? KERN_Q5_K : KERN_Q4_K;
    case QUANT_FTYPE_Q3_K_L: return KERN_Q5_K;
    case QUANT_FTYPE_IQ4_NL:
    case QUANT_FTYPE_IQ4_XS: return st->n_gqa >= 4 ? KERN_Q5_K : type;
    case QUANT_FTYPE_Q4_K_M:
    case QUANT_FTYPE_Q5_K_M: return more_bits(i, st->n_attn_v) ? KERN_Q6_K : type;
    case QUANT_FTYPE_Q4_K_S: return i < 4 ? KERN_Q5_K : type;
    default: return type;
    }
}

/* The N of a "blk.N." name, -1 for another name. */
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    if (end == name + 4 || v < -1 || v > 1000000) return -1;
    return (int)v;
}

/* Mixtral-shaped models (8 experts) get more bits in attention: little of
 * their size, much of their quality. */
static bool eight_experts(const plan_state *st) { return st->n_expert == 8; }

/* ffn_down of layer i (llama.cpp counts these tensors, not layers). */
static kern_type ffn_down_type(const plan_state *st, kern_type type, int i) {
    const int n = st->n_layer;
    switch (st->ftype) {
    case QUANT_FTYPE_Q2_K: return KERN_Q3_K;
    case QUANT_FTYPE_Q2_K_S: return i < n / 8 ? KERN_Q4_K : type;
    case QUANT_FTYPE_Q3_K_M:
        return i < n / 16 ? KERN_Q5_K : !st->falcon || more_bits(i, n) ? KERN_Q4_K : KERN_Q3_K;
    case QUANT_FTYPE_Q3_K_L: return st->falcon ? KERN_Q4_K : KERN_Q5_K;
    case QUANT_FTYPE_Q4_K_M:
        if (st->falcon) return i < n / 16 ? KERN_Q6_K : more_bits(i, n) ? KERN_Q5_K : KERN_Q4_K;
        return more_bits(i, n) ? KERN_Q6_K : type;
    case QUANT_FTYPE_IQ4_NL:
    case QUANT_FTYPE_IQ4_XS: return i < n / 8 && !st->has_imatrix ? KERN_Q5_K : type;
    case QUANT_FTYPE_Q5_K_M: return more_bits(i, n) ? KERN_Q6_K : type;
    case QUANT_FTYPE_Q4_K_S: return !st->falcon && i < n / 8 ? KERN_Q5_K : type;
    /* guards the first layers where the weighted 32-blocks go wrong */
    case QUANT_FTYPE_Q4_0: return st->has_imatrix && i < n / 8 ? KERN_Q4_1 : type;
    case QUANT_FTYPE_Q5_0: return st->has_imatrix && i < n / 8 ? KERN_Q5_1 : type;
    default: return type;
    }
}

static kern_type attn_output_type(const plan_state *st, kern_type type) {
    if (st->falcon) return st->ftype == QUANT_FTYPE_Q3_K_L ? KERN_Q4_K : type;
    if (eight_experts(st)) {
        switch (st->ftype) {
        case QUANT_FTYPE_Q2_K:
        case QUANT_FTYPE_Q3_K_S:
        case QUANT_FTYPE_Q3_K_M:
        case QUANT_FTYPE_IQ4_NL:
        case QUANT_FTYPE_Q4_K_S:
        case QUANT_FTYPE_Q4_K_M:
        case QUANT_FTYPE_IQ4_XS: return KERN_Q5_K;
        default: return type;
        }
    }
    switch (st->ftype) {
    case QUANT_FTYPE_Q2_K: return KERN_Q3_K;
    case QUANT_FTYPE_Q3_K_M: return KERN_Q4_K;
    case QUANT_FTYPE_Q3_K_L: return KERN_Q5_K;
    default: return type;
    }
}

/* llama_tensor_get_type_impl for the presets above (no 70B rule). With
 * experts, an ffn_down's layer is read from its name (a layer may have
 * several: shared experts). */
static kern_type rule_type(plan_state *st, kern_type type, const gguf_tensor *t, const char *name,
                           category cat) {
    if (cat == CAT_OUTPUT || (st->tied && cat == CAT_TOKEN_EMBD)) {
        if (st->falcon || t->ne[0] % (int64_t)kern_type_get(type)->block_size != 0)
            return KERN_Q8_0;
        return type == KERN_Q8_0 ? KERN_Q8_0 : KERN_Q6_K;
    }
    switch (cat) {
    case CAT_ATTN_V: {
        const kern_type v = attn_v_type(st, type, st->i_attn_v++);
        return eight_experts(st) ? KERN_Q8_0 : v;
    }
    case CAT_ATTN_K: return eight_experts(st) ? KERN_Q8_0 : type;
    case CAT_FFN_DOWN: {
        const int i = st->i_ffn_down++;
        return ffn_down_type(st, type, st->n_expert > 1 ? layer_of(name) : i);
    }
    case CAT_ATTN_OUTPUT: return attn_output_type(st, type);
    default: return type; /* an untied token_embd too: no preset here changes it */
    }
}

/* A type whose block does not divide the row length is replaced; false when
 * llama.cpp defines no replacement (it refuses to quantize then). */
static bool fallback_type(kern_type type, int64_t n_cols, kern_type *out, bool *changed) {
    *changed = false;
    *out = type;
    if (n_cols % (int64_t)kern_type_get(type)->block_size == 0) return true;
    *changed = true;
    switch (type) {
    case KERN_Q2_K:
    case KERN_Q3_K: *out = KERN_Q4_0; break;
    case KERN_Q4_K: *out = KERN_Q5_0; break;
    case KERN_Q5_K: *out = KERN_Q5_1; break;
    case KERN_Q6_K: *out = KERN_Q8_0; break;
    case KERN_IQ4_XS: *out = KERN_IQ4_NL; break;
    default: return false;
    }
    if (n_cols % (int64_t)kern_type_get(*out)->block_size != 0) *out = KERN_F16;
    return true;
}

static bool is_quantized(kern_type t) { return t != KERN_F32 && t != KERN_F16 && t != KERN_BF16; }

bool quant_type_writable(kern_type t) {
    switch (t) {
    case KERN_F32:
    case KERN_F16:
    case KERN_BF16:
    case KERN_Q4_0:
    case KERN_Q4_1:
    case KERN_Q5_0:
    case KERN_Q5_1:
    case KERN_Q8_0:
    case KERN_Q2_K:
    case KERN_Q3_K:
    case KERN_Q4_K:
    case KERN_Q5_K:
    case KERN_Q6_K:
    case KERN_IQ4_NL:
    case KERN_IQ4_XS: return true;
    default: return false;
    }
}

/* A tensor's name as a C string and its place in llama.cpp's order. */
typedef struct named {
    int64_t index;
    int layer;
    char *name;
} named;

static int cmp_named(const void *a, const void *b) {
    const named *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void free_names(named *v, int64_t n) {
    for (int64_t i = 0; v && i < n; i++) free(v[i].name);
    free(v);
}

/* Every tensor of f with its name, in output order. */
static hearth_err sorted_names(const gguf_file *f, named **out) {
    const int64_t n = gguf_n_tensors(f);
    named *v = hr_calloc(n > 0 ? (size_t)n : 1, sizeof *v);
    if (!v) return HEARTH_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        v[i].index = i;
        v[i].name = malloc((size_t)t->name.len + 1);
        if (!v[i].name) {
            free_names(v, n);
            return hr_fail(HEARTH_ERR_NOMEM, "quantize: out of memory for tensor names");
        }
        memcpy(v[i].name, t->name.ptr, (size_t)t->name.len);
        v[i].name[t->name.len] = '\0';
        v[i].layer = layer_of(v[i].name);
    }
    qsort(v, (size_t)n, sizeof *v, cmp_named);
    *out = v;
    return HEARTH_OK;
}

static bool is_int_vtype(gguf_vtype t) {
    return t <= GGUF_I32 || t == GGUF_U64 || t == GGUF_I64; /* F32 is 6, after I32 */
}

/* A per-layer hyper-parameter's value for layer 0: the key's integer, or the
 * first element of its per-layer array (llama.cpp's get_key_or_arr). False
 * when absent or not an integer. */
static bool layer0_int(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return false;
    if (kv->value.type == GGUF_ARRAY) {
        const gguf_arr *a = &kv->value.v.arr;
        if (a->n < 1 || !is_int_vtype(a->type)) return false;
        *out = gguf_arr_int(a, 0);
    } else if (is_int_vtype(kv->value.type)) {
        const bool is_signed = kv->value.type == GGUF_I8 || kv->value.type == GGUF_I16 ||
                               kv->value.type == GGUF_I32 || kv->value.type == GGUF_I64;
        *out = is_signed ? kv->value.v.i64
                         : (int64_t)(kv->value.v.u64 > INT32_MAX ? INT32_MAX : kv->value.v.u64);
    } else {
        return false;
    }
    return true;
}

static hearth_err plan_init(const gguf_file *f, const quant_params *p, const named *v, int64_t n,
                            plan_state *st) {
    *st = (plan_state){
        .ftype = p->ftype, .tied = true, .has_imatrix = p->imatrix && p->imatrix->n_entries > 0};
    gguf_str arch;
    if (!gguf_get_str(f, "general.architecture", &arch))
        return hr_fail(HEARTH_ERR_FORMAT, "quantize: no general.architecture");
    char key[160];
    if (arch.len > 100) return hr_fail(HEARTH_ERR_FORMAT, "quantize: architecture name too long");
    snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
    uint32_t n_layer;
    if (!gguf_get_u32(f, key, &n_layer) || n_layer > 1000000)
        return hr_fail(HEARTH_ERR_FORMAT, "quantize: no valid %s", key);
    st->n_layer = (int)n_layer;
    st->falcon = gguf_str_eq(arch, "falcon");
    int64_t n_head = 0, n_head_kv;
    snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
    layer0_int(f, key, &n_head);
    n_head_kv = n_head; /* llama.cpp's default */
    snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
    layer0_int(f, key, &n_head_kv);
    st->n_gqa = n_head_kv > 0 && n_head > 0 && n_head <= INT32_MAX ? (int)(n_head / n_head_kv) : 0;
    snprintf(key, sizeof key, "%.*s.expert_count", (int)arch.len, arch.ptr);
    uint32_t n_expert;
    if (gguf_get_u32(f, key, &n_expert)) st->n_expert = n_expert > 1024 ? 1024 : (int)n_expert;
    for (int64_t i = 0; i < n; i++) {
        category c = category_of(v[i].name);
        st->n_attn_v += c == CAT_ATTN_V;
        if (c == CAT_OUTPUT) st->tied = false;
    }
    return HEARTH_OK;
}

static const quant_override *find_override(const quant_params *p, const char *name) {
    for (int i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].pattern && has(name, p->overrides[i].pattern)) return &p->overrides[i];
    return NULL;
}

/* The type of one tensor (llama_tensor_get_type). */
static hearth_err choose(plan_state *st, const quant_params *p, const char *name,
                         const gguf_tensor *t, quant_choice *c) {
    c->type = (kern_type)t->type;
    if (!allows_quantization(name, t)) return HEARTH_OK;
    const kern_type base = quant_ftype_base_type(p->ftype);
    kern_type type = base;
    if (!is_quantized(base)) {
        c->type = base; /* float presets: no rules, no fall-backs */
        return HEARTH_OK;
    }
    const quant_override *o = find_override(p, name);
    if (o) {
        type = o->type;
        c->manual = true;
    } else {
        type = rule_type(st, type, t, name, category_of(name));
    }
    if (!fallback_type(type, t->ne[0], &c->type, &c->fallback))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "quantize: %s has rows of %lld, not a multiple of the %s block (%u), and "
                       "llama-quantize defines no fall-back for %s (override it, e.g. "
                       "--tensor-type %s=f16)",
                       name, (long long)t->ne[0], kern_type_get(type)->name,
                       kern_type_get(type)->block_size, kern_type_get(type)->name, name);
    return HEARTH_OK;
}

hearth_err quant_plan(const gguf_file *f, const quant_params *p, quant_choice **out) {
    if (!preset_find(p->ftype))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "quantize: unknown preset %d", (int)p->ftype);
    for (int i = 0; i < p->n_overrides; i++)
        if (!quant_type_writable(p->overrides[i].type))
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "quantize: cannot write type %u",
                           (unsigned)p->overrides[i].type);
    const int64_t n = gguf_n_tensors(f);
    named *v = NULL;
    hearth_err err = sorted_names(f, &v);
    if (err) return err;
    quant_choice *c = hr_calloc(n > 0 ? (size_t)n : 1, sizeof *c);
    plan_state st;
    if (!c) err = HEARTH_ERR_NOMEM;
    if (!err) err = plan_init(f, p, v, n, &st);
    for (int64_t i = 0; !err && i < n; i++) {
        c[i].src_index = v[i].index;
        err = choose(&st, p, v[i].name, gguf_tensor_at(f, v[i].index), &c[i]);
    }
    free_names(v, n);
    if (err) {
        free(c);
        return err;
    }
    *out = c;
    return HEARTH_OK;
}

/* ---- metadata ---- */

/* The key-value pairs of `src` except the keys in `drop`, as a parsed
 * metadata-only GGUF over *buf (which the caller frees after closing it), so
 * that gguf_writer_copy_kv copies them in their order. The pairs are copied
 * as bytes: in a GGUF file they are contiguous, each starting with its key's
 * u64 length just before the key text, and the tensor infos follow them (the
 * reader's strings point into the file, see gguf.h). */
static hearth_err kv_subset(const gguf_file *src, const char *const *drop, int n_drop,
                            uint8_t **buf, gguf_file **out) {
    const int64_t n_kv = gguf_n_kv(src);
    if (gguf_n_tensors(src) < 1)
        return hr_fail(HEARTH_ERR_FORMAT, "quantize: the file has no tensors");
    const uint8_t *kv_end = (const uint8_t *)gguf_tensor_at(src, 0)->name.ptr - 8;
    uint64_t total = 24, n_keep = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *w = pass ? *buf + 24 : NULL;
        for (int64_t i = 0; i < n_kv; i++) {
            const gguf_kv *kv = gguf_kv_at(src, i);
            const uint8_t *start = (const uint8_t *)kv->key.ptr - 8;
            const uint8_t *end =
                i + 1 < n_kv ? (const uint8_t *)gguf_kv_at(src, i + 1)->key.ptr - 8 : kv_end;
            if (end <= start)
                return hr_fail(HEARTH_ERR_FORMAT, "quantize: unexpected metadata layout");
            bool skip = false;
            for (int d = 0; d < n_drop; d++) skip |= gguf_str_eq(kv->key, drop[d]);
            if (skip) continue;
            if (!pass) {
                total += (uint64_t)(end - start);
                n_keep++;
            } else {
                memcpy(w, start, (size_t)(end - start));
                w += end - start;
            }
        }
        if (!pass) {
            *buf = malloc((size_t)total);
            if (!*buf) return hr_fail(HEARTH_ERR_NOMEM, "quantize: out of memory for metadata");
            /* magic, version 3, no tensors, n_keep pairs (GGUF is little-endian, as are
             * the hosts Hearth builds for) */
            const uint32_t version = 3;
            const uint64_t n_tensors = 0;
            memcpy(*buf, "GGUF", 4);
            memcpy(*buf + 4, &version, 4);
            memcpy(*buf + 8, &n_tensors, 8);
            memcpy(*buf + 16, &n_keep, 8);
        }
    }
    hearth_err err = gguf_open_memory(*buf, total, out);
    if (err) {
        free(*buf);
        *buf = NULL;
        return hr_wrap(err, "quantize: copying metadata: ");
    }
    return HEARTH_OK;
}

#define KEY_IM_FILE    "quantize.imatrix.file"
#define KEY_IM_DATASET "quantize.imatrix.dataset"
#define KEY_IM_ENTRIES "quantize.imatrix.entries_count"
#define KEY_IM_CHUNKS  "quantize.imatrix.chunks_count"

/* llama-quantize's string overrides hold at most 127 bytes. */
static hearth_err set_str127(gguf_writer *w, const char *key, const char *v) {
    char s[128];
    snprintf(s, sizeof s, "%s", v);
    return gguf_writer_set_str(w, key, s);
}

static hearth_err copy_metadata(gguf_writer *w, const gguf_file *src, const quant_params *p) {
    const imatrix *im = p->imatrix && p->imatrix->n_entries > 0 ? p->imatrix : NULL;
    /* keys set below are moved to the end (ggml removes a key before appending it) */
    const char *moved[9] = {"general.quantization_version", "general.file_type", "split.no",
                            "split.count", "split.tensors.count"};
    int n_moved = 5;
    if (im) {
        moved[n_moved++] = KEY_IM_FILE;
        if (im->n_datasets) moved[n_moved++] = KEY_IM_DATASET;
        moved[n_moved++] = KEY_IM_ENTRIES;
        if (im->chunk_count) moved[n_moved++] = KEY_IM_CHUNKS;
    }
    uint8_t *buf = NULL;
    gguf_file *sub = NULL;
    hearth_err err = kv_subset(src, moved, n_moved, &buf, &sub);
    if (err) return err;
    err = gguf_writer_copy_kv(w, sub);
    gguf_close(sub);
    free(buf);
    if (!err) err = gguf_writer_set_u32(w, "general.quantization_version", QUANT_QNT_VERSION);
    if (!err) err = gguf_writer_set_u32(w, "general.file_type", (uint32_t)p->ftype);
    if (!err && im) err = set_str127(w, KEY_IM_FILE, p->imatrix_file ? p->imatrix_file : "");
    if (!err && im && im->n_datasets) err = set_str127(w, KEY_IM_DATASET, im->datasets[0]);
    if (!err && im) err = gguf_writer_set_u32(w, KEY_IM_ENTRIES, (uint32_t)im->n_entries);
    if (!err && im && im->chunk_count) err = gguf_writer_set_u32(w, KEY_IM_CHUNKS, im->chunk_count);
    return err;
}

/* ---- conversion ---- */

typedef struct convert_job {
    const gguf_tensor *src;
    kern_type to;
    uint8_t *dst;
    int64_t n_rows, n_cols;
    size_t src_row, dst_row; /* bytes per row */
    float *rows;             /* one row of floats per thread */
    const float *qw;         /* importance weights per column, or NULL */
    int64_t qw_rows;         /* > 0: qw holds one set per matrix of this many rows (experts) */
} convert_job;

/* Rows [n_rows * ith / nth, n_rows * (ith + 1) / nth): each row goes to
 * floats (unless it is F32 already) and then to the new type. */
static void convert_rows(void *ctx, int ith, int nth) {
    const convert_job *j = ctx;
    const int64_t r0 = j->n_rows * ith / nth, r1 = j->n_rows * (ith + 1) / nth;
    float *tmp = j->rows + (size_t)ith * (size_t)j->n_cols;
    const uint8_t *src = j->src->data;
    for (int64_t r = r0; r < r1; r++) {
        const void *in = src + (size_t)r * j->src_row;
        const float *x = in;
        if (j->src->type != KERN_F32) {
            kern_ref_dequantize_row((kern_type)j->src->type, in, tmp, j->n_cols);
            x = tmp;
        }
        const float *qw = j->qw && j->qw_rows ? j->qw + (r / j->qw_rows) * j->n_cols : j->qw;
        kern_ref_quantize_row_imatrix(j->to, x, j->dst + (size_t)r * j->dst_row, j->n_cols, qw);
    }
}

typedef struct quant_run {
    const quant_params *p;
    gguf_file *in;
    gguf_writer *w;
    hr_pool *pool;
    quant_choice *plan;
    uint8_t **bufs; /* converted data, one per tensor (NULL when copied) */
    float *rows;
    size_t rows_cap; /* floats */
    float *qw;       /* the current tensor's importance weights */
    int64_t n;
} quant_run;

/* Tensor t's importance weights as llama-quantize takes them: NULL when the
 * matrix has no entry (or none at all) or for token_embd of another size
 * (never a product's input); an entry of another size is an error. Q2_K
 * under Q2_K_S cannot go without (but token_embd and output). An expert
 * tensor's entry has a set per expert (as sets of sums, or one legacy .dat
 * row of them all): *per_mat is then the rows each set weighs. */
static hearth_err tensor_weights(quant_run *q, const char *name, const gguf_tensor *t, kern_type to,
                                 const float **out, int64_t *per_mat) {
    const imatrix *im = q->p->imatrix;
    const imatrix_entry *e = im ? imatrix_find(im, name) : NULL;
    const bool embd = !strcmp(name, "token_embd.weight");
    *out = NULL;
    if (e && t->ne[3] > 1) /* the sets below are per 2-D slice: slice r / ne1 must be < ne2 */
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "quantize: %s has 4 dimensions; importance weights apply to 2-D and 3-D "
                       "tensors only",
                       name);
    if (e && e->n_cols * e->n_mat == t->ne[0] * t->ne[2]) {
        free(q->qw);
        if (!(q->qw = malloc((size_t)(e->n_cols * e->n_mat) * sizeof *q->qw)))
            return HEARTH_ERR_NOMEM;
        imatrix_weights(e, im->legacy, q->qw);
        *out = q->qw;
        *per_mat = t->ne[2] > 1 ? t->ne[1] : 0;
    } else if (e && !embd) {
        return hr_fail(HEARTH_ERR_FORMAT,
                       "quantize: the imatrix has %lld values for %s, which has %lld columns",
                       (long long)(e->n_cols * e->n_mat), name, (long long)t->ne[0]);
    }
    if (!*out && to == KERN_Q2_K && q->p->ftype == QUANT_FTYPE_Q2_K_S && !embd &&
        strcmp(name, "output.weight") != 0)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "quantize: Q2_K_S needs an importance matrix entry for %s (%s)", name,
                       im ? "the imatrix has none" : "give one with --imatrix");
    return HEARTH_OK;
}

static hearth_err convert_tensor(quant_run *q, const quant_choice *c, const char *name,
                                 quant_stats *st) {
    const gguf_tensor *t = gguf_tensor_at(q->in, c->src_index);
    const kern_type from = (kern_type)t->type;
    const uint32_t n_dims = n_dims_of(t);
    const void *data = t->data;
    uint64_t n_bytes = t->n_bytes;
    if (from != c->type) {
        const kern_type_info *fi = kern_type_get(from);
        if (!fi->supported || !quant_type_writable(c->type))
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "quantize: %s: cannot convert %s to %s", name,
                           fi->name, kern_type_get(c->type)->name);
        convert_job j = {.src = t, .to = c->type, .n_cols = t->ne[0]};
        hearth_err err = tensor_weights(q, name, t, c->type, &j.qw, &j.qw_rows);
        if (err) return err;
        j.n_rows = t->n_elements / t->ne[0];
        j.src_row = kern_row_bytes(from, j.n_cols);
        j.dst_row = kern_row_bytes(c->type, j.n_cols);
        const int nth = hr_pool_size(q->pool);
        uint64_t need, floats;
        if (!j.dst_row || !hr_mul_ok((uint64_t)j.n_rows, j.dst_row, &n_bytes) ||
            !hr_mul_ok((uint64_t)nth, (uint64_t)j.n_cols, &floats) || n_bytes > SIZE_MAX ||
            !hr_mul_ok(floats, sizeof(float), &need) || need > SIZE_MAX)
            return hr_fail(HEARTH_ERR_NOMEM, "quantize: %s: size overflow", name);
        if (floats > q->rows_cap) {
            free(q->rows);
            q->rows = hr_aligned_alloc((size_t)need);
            q->rows_cap = q->rows ? (size_t)floats : 0;
            if (!q->rows) return HEARTH_ERR_NOMEM;
        }
        j.rows = q->rows;
        j.dst = hr_aligned_alloc(n_bytes ? (size_t)n_bytes : 1);
        if (!j.dst) return HEARTH_ERR_NOMEM;
        q->bufs[q->n] = j.dst;
        hr_pool_run(q->pool, convert_rows, &j);
        data = j.dst;
        st->n_converted++;
        st->n_requantized += is_quantized(from);
    }
    st->n_fallback += c->fallback;
    st->bytes_in += t->n_bytes;
    st->bytes_out += n_bytes;
    return gguf_writer_add_tensor(q->w, name, (uint32_t)c->type, n_dims, t->ne, data, n_bytes);
}

static hearth_err run_all(quant_run *q, const quant_params *p, const char *out_path,
                          quant_stats *st) {
    const int64_t n = gguf_n_tensors(q->in);
    hearth_err err = copy_metadata(q->w, q->in, p);
    char name[256];
    for (q->n = 0; !err && q->n < n; q->n++) {
        const quant_choice *c = &q->plan[q->n];
        const gguf_tensor *t = gguf_tensor_at(q->in, c->src_index);
        if (t->name.len >= sizeof name)
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "quantize: tensor name over %zu bytes",
                           sizeof name - 1);
        memcpy(name, t->name.ptr, (size_t)t->name.len);
        name[t->name.len] = '\0';
        err = convert_tensor(q, c, name, st);
        st->n_tensors++;
        if (!err && p->progress)
            p->progress(p->progress_user, q->n + 1, n, name, (kern_type)t->type, c->type);
    }
    if (!err) err = gguf_writer_write(q->w, out_path);
    return err;
}

hearth_err quant_model(const char *in_path, const char *out_path, const quant_params *p,
                       quant_stats *stats) {
    quant_run q = {.p = p};
    quant_stats st = {0};
    hearth_err err = gguf_open(in_path, &q.in);
    if (!err) err = quant_plan(q.in, p, &q.plan);
    if (!err) {
        int64_t n = gguf_n_tensors(q.in);
        q.bufs = hr_calloc(n > 0 ? (size_t)n : 1, sizeof *q.bufs);
        if (!q.bufs) err = HEARTH_ERR_NOMEM;
    }
    if (!err) err = hr_pool_new(p->n_threads, &q.pool);
    if (!err) err = gguf_writer_new(&q.w);
    if (!err) err = run_all(&q, p, out_path, &st);
    for (int64_t i = 0; q.bufs && q.in && i < gguf_n_tensors(q.in); i++) free(q.bufs[i]);
    free(q.bufs);
    free(q.rows);
    free(q.qw);
    free(q.plan);
    gguf_writer_free(q.w);
    hr_pool_free(q.pool);
    gguf_close(q.in);
    if (err) return hr_wrap(err, "quantizing '%s' to '%s': ", in_path, out_path);
    if (stats) *stats = st;
    return HEARTH_OK;
}
