/*
 * tune_adapter.c - the trainable LoRA adapter: which matrices it covers,
 * its F32 parameters with their gradients and AdamW moments, the optimizer
 * step, and writing it in llama.cpp's GGUF adapter format (model/lora.c
 * reads it back).
 *
 * Initialisation as in the LoRA paper and PEFT: A uniform in
 * +-1/sqrt(n_in), B zero, so training starts from the base model exactly.
 */
#include "tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The matrices a target bit names, as tensor names and layer fields. */
static const struct {
    unsigned bit;
    const char *name; /* "blk.N.<name>.weight" */
    size_t offset;    /* of the model_weight in model_layer */
} TARGETS[] = {
    {TUNE_ATTN_Q, "attn_q", offsetof(model_layer, wq)},
    {TUNE_ATTN_K, "attn_k", offsetof(model_layer, wk)},
    {TUNE_ATTN_V, "attn_v", offsetof(model_layer, wv)},
    {TUNE_ATTN_QKV, "attn_qkv", offsetof(model_layer, wqkv)},
    {TUNE_ATTN_OUT, "attn_output", offsetof(model_layer, wo)},
    {TUNE_FFN_GATE, "ffn_gate", offsetof(model_layer, gate)},
    {TUNE_FFN_UP, "ffn_up", offsetof(model_layer, up)},
    {TUNE_FFN_UP, "ffn_up", offsetof(model_layer, gate_up)},
    {TUNE_FFN_DOWN, "ffn_down", offsetof(model_layer, down)},
};
enum { N_TARGETS = sizeof TARGETS / sizeof TARGETS[0] };

hearth_err tune_parse_targets(const char *list, unsigned *targets) {
    *targets = 0;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned bit = 0;
        if (len == 3 && !memcmp(p, "all", 3)) bit = TUNE_ALL;
        for (int i = 0; i < N_TARGETS && !bit; i++)
            if (strlen(TARGETS[i].name) == len && !memcmp(p, TARGETS[i].name, len))
                bit = TARGETS[i].bit;
        if (!bit)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "unknown target '%.*s' (attn_q, attn_k, attn_v, attn_qkv, attn_output, "
                           "ffn_gate, ffn_up, ffn_down or all)",
                           (int)(len > 64 ? 64 : len), p);
        *targets |= bit;
        p = end ? end + 1 : p + len;
    }
    if (!*targets) return hr_fail(HEARTH_ERR_INVALID_ARG, "no target named");
    return HEARTH_OK;
}

static const model_weight *layer_weight(const model_layer *l, size_t offset) {
    return (const model_weight *)((const char *)l + offset);
}

/* Every array of pair p, in one allocation: a, b, ga, gb, ma, va, mb, vb. */
static hearth_err pair_alloc(tune_pair *p, int rank, hr_rng *rng) {
    const size_t na = (size_t)rank * (size_t)p->w->n_cols, nb = (size_t)p->w->n_rows * (size_t)rank;
    float *mem = calloc(4 * (na + nb), sizeof(float));
    if (!mem) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory for the adapter");
    p->a = mem, p->b = p->a + na;
    p->ga = p->b + nb, p->gb = p->ga + na;
    p->ma = p->gb + nb, p->va = p->ma + na;
    p->mb = p->va + na, p->vb = p->mb + nb;
    const float bound = 1.0f / sqrtf((float)p->w->n_cols);
    for (size_t i = 0; i < na; i++) p->a[i] = bound * (2.0f * hr_rng_uniform_f(rng) - 1.0f);
    return HEARTH_OK;
}

hearth_err tune_adapter_new(const hearth_model *m, const tune_adapter_params *p,
                            tune_adapter **out) {
    *out = NULL;
    if (p->rank < 1 || p->rank > 1024)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "tune: rank must be 1..1024");
    if (!(p->alpha > 0.0f) || !isfinite(p->alpha))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "tune: alpha must be positive");
    tune_adapter *a = calloc(1, sizeof *a);
    if (a) a->pairs = calloc((size_t)m->hp.n_layer * N_TARGETS, sizeof *a->pairs);
    if (!a || !a->pairs) {
        free(a);
        return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory for the adapter");
    }
    a->rank = p->rank, a->alpha = p->alpha, a->scale = p->alpha / (float)p->rank;
    hr_rng rng;
    hr_rng_seed(&rng, p->seed);
    hearth_err err = HEARTH_OK;
    for (int il = 0; il < m->hp.n_layer && !err; il++)
        for (int i = 0; i < N_TARGETS && !err; i++) {
            const model_weight *w = layer_weight(&m->layers[il], TARGETS[i].offset);
            if (!(p->targets & TARGETS[i].bit) || !w->data) continue;
            if (p->rank > w->n_rows || p->rank > w->n_cols) {
                err = hr_fail(HEARTH_ERR_INVALID_ARG, "tune: rank %d exceeds %s's smaller side",
                              p->rank, TARGETS[i].name);
                break;
            }
            tune_pair *q = &a->pairs[a->n_pairs++];
            *q = (tune_pair){.w = w, .layer = il, .target = TARGETS[i].bit};
            err = pair_alloc(q, p->rank, &rng);
        }
    if (!err && !a->n_pairs)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "tune: this model has none of the target matrices");
    if (err) {
        tune_adapter_free(a);
        return err;
    }
    *out = a;
    return HEARTH_OK;
}

void tune_adapter_free(tune_adapter *a) {
    if (!a) return;
    for (int i = 0; i < a->n_pairs; i++) free(a->pairs[i].a);
    free(a->pairs);
    free(a);
}

const tune_pair *tune_adapter_find(const tune_adapter *a, const model_weight *w) {
    for (int i = 0; a && i < a->n_pairs; i++)
        if (a->pairs[i].w == w) return &a->pairs[i];
    return NULL;
}

static size_t pair_na(const tune_pair *p, int rank) { return (size_t)rank * (size_t)p->w->n_cols; }
static size_t pair_nb(const tune_pair *p, int rank) { return (size_t)p->w->n_rows * (size_t)rank; }

void tune_adapter_zero_grad(tune_adapter *a) {
    for (int i = 0; i < a->n_pairs; i++) {
        tune_pair *p = &a->pairs[i];
        memset(p->ga, 0, (pair_na(p, a->rank) + pair_nb(p, a->rank)) * sizeof(float));
    }
}

size_t tune_adapter_n_params(const tune_adapter *a) {
    size_t n = 0;
    for (int i = 0; i < a->n_pairs; i++)
        n += pair_na(&a->pairs[i], a->rank) + pair_nb(&a->pairs[i], a->rank);
    return n;
}

/* AdamW on n parameters x with gradient g (already scaled and clipped). */
static void adamw(float *x, const float *g, float *m, float *v, size_t n, const tune_adamw *o,
                  float c1, float c2) {
    for (size_t i = 0; i < n; i++) {
        m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g[i];
        v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g[i] * g[i];
        const float step = (m[i] / c1) / (sqrtf(v[i] / c2) + o->eps);
        x[i] -= o->lr * (step + o->weight_decay * x[i]);
    }
}

double tune_adamw_step(tune_adapter *a, const tune_adamw *opt, int step, float grad_scale) {
    /* the gradient in one array per pair: ga then gb */
    double sq = 0.0;
    for (int i = 0; i < a->n_pairs; i++) {
        tune_pair *p = &a->pairs[i];
        const size_t n = pair_na(p, a->rank) + pair_nb(p, a->rank);
        for (size_t k = 0; k < n; k++) {
            p->ga[k] *= grad_scale;
            sq += (double)p->ga[k] * p->ga[k];
        }
    }
    const double norm = sqrt(sq);
    const float clip = opt->clip > 0.0f && norm > opt->clip ? (float)(opt->clip / norm) : 1.0f;
    const float c1 = 1.0f - powf(opt->beta1, (float)step),
                c2 = 1.0f - powf(opt->beta2, (float)step);
    for (int i = 0; i < a->n_pairs; i++) {
        tune_pair *p = &a->pairs[i];
        const size_t na = pair_na(p, a->rank), nb = pair_nb(p, a->rank);
        if (clip != 1.0f)
            for (size_t k = 0; k < na + nb; k++) p->ga[k] *= clip;
        adamw(p->a, p->ga, p->ma, p->va, na, opt, c1, c2);
        adamw(p->b, p->gb, p->mb, p->vb, nb, opt, c1, c2);
    }
    return norm;
}

static const char *target_name(const tune_pair *p) {
    for (int i = 0; i < N_TARGETS; i++)
        if (TARGETS[i].bit == p->target) return TARGETS[i].name;
    return "?";
}

/* Tensor `name` of f as n_rows x n_cols floats into dst. */
static hearth_err read_matrix(const gguf_file *f, const char *path, const char *name,
                              int64_t n_rows, int64_t n_cols, float *dst) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "tune: %s has no %s (train with the --targets it was trained with)", path,
                       name);
    if (t->ne[0] != n_cols || t->ne[1] != n_rows)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "tune: %s: %s is %lldx%lld, not %lldx%lld", path,
                       name, (long long)t->ne[1], (long long)t->ne[0], (long long)n_rows,
                       (long long)n_cols);
    const kern_fns *fn = kern_get((kern_type)t->type);
    const size_t row_bytes = kern_row_bytes((kern_type)t->type, n_cols);
    for (int64_t r = 0; r < n_rows; r++)
        fn->to_float((const uint8_t *)t->data + (size_t)r * row_bytes, dst + (size_t)r * n_cols,
                     n_cols);
    return HEARTH_OK;
}

hearth_err tune_adapter_init_from(tune_adapter *a, const hearth_model *m, const char *path) {
    gguf_file *f;
    hearth_err err = gguf_open(path, &f);
    if (err) return err;
    model_lora_info info;
    err = model_lora_scan(f, &info);
    if (!err && !gguf_str_eq(info.arch, m->arch->name))
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "tune: %s is an adapter for '%.*s', not '%s'", path,
                      (int)info.arch.len, info.arch.ptr, m->arch->name);
    if (!err && (info.rank_min != a->rank || info.rank_max != a->rank))
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "tune: %s has rank %lld, not %d (--rank)", path,
                      (long long)info.rank_max, a->rank);
    if (!err && info.alpha != a->alpha)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "tune: %s has alpha %g, not %g (--alpha)", path,
                      (double)info.alpha, (double)a->alpha);
    if (!err && info.n_pairs != a->n_pairs)
        err = hr_fail(HEARTH_ERR_INVALID_ARG,
                      "tune: %s adapts %d matrices, these --targets %d (train with the same ones)",
                      path, info.n_pairs, a->n_pairs);
    for (int i = 0; i < a->n_pairs && !err; i++) {
        tune_pair *p = &a->pairs[i];
        char name[96];
        snprintf(name, sizeof name, "blk.%d.%s.weight.lora_a", p->layer, target_name(p));
        err = read_matrix(f, path, name, a->rank, p->w->n_cols, p->a);
        snprintf(name, sizeof name, "blk.%d.%s.weight.lora_b", p->layer, target_name(p));
        if (!err) err = read_matrix(f, path, name, p->w->n_rows, a->rank, p->b);
    }
    gguf_close(f);
    return err;
}

hearth_err tune_adapter_save(const tune_adapter *a, const hearth_model *m, const char *path,
                             const char *name) {
    gguf_writer *w;
    hearth_err err = gguf_writer_new(&w);
    if (err) return err;
    err = gguf_writer_set_str(w, "general.architecture", m->arch->name);
    if (!err) err = gguf_writer_set_str(w, "general.type", "adapter");
    if (!err) err = gguf_writer_set_str(w, "general.name", name ? name : "hearth tune LoRA");
    if (!err) err = gguf_writer_set_str(w, "adapter.type", "lora");
    if (!err) err = gguf_writer_set_f32(w, "adapter.lora.alpha", a->alpha);
    for (int i = 0; i < a->n_pairs && !err; i++) {
        const tune_pair *p = &a->pairs[i];
        char tname[96];
        /* A: ne [n_in, rank]; B: ne [rank, n_out] (model/lora.c) */
        const int64_t ne_a[2] = {p->w->n_cols, a->rank}, ne_b[2] = {a->rank, p->w->n_rows};
        snprintf(tname, sizeof tname, "blk.%d.%s.weight.lora_a", p->layer, target_name(p));
        err = gguf_writer_add_tensor(w, tname, KERN_F32, 2, ne_a, p->a,
                                     pair_na(p, a->rank) * sizeof(float));
        snprintf(tname, sizeof tname, "blk.%d.%s.weight.lora_b", p->layer, target_name(p));
        if (!err)
            err = gguf_writer_add_tensor(w, tname, KERN_F32, 2, ne_b, p->b,
                                         pair_nb(p, a->rank) * sizeof(float));
    }
    /* written beside the target, then renamed over it: a checkpoint being
     * replaced is never left half-written */
    char *tmp = NULL;
    const size_t len = strlen(path) + sizeof ".tmp";
    if (!err && !(tmp = malloc(len))) err = hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    if (!err) {
        snprintf(tmp, len, "%s.tmp", path);
        err = gguf_writer_write(w, tmp);
    }
    if (!err && rename(tmp, path) != 0) {
        err = hr_fail(HEARTH_ERR_IO, "tune: cannot rename '%s' to '%s'", tmp, path);
        remove(tmp);
    }
    free(tmp);
    gguf_writer_free(w);
    return err;
}
