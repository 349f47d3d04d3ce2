/*
 * clip.c - a vision projector file ("mmproj": llama.cpp's clip GGUF) and
 * its forward pass: the vision transformer (SigLIP's: patches by a strided
 * convolution, learned positions, pre-LN blocks with biases, GELU, a final
 * LayerNorm) and the projector into the language model's embedding space.
 * Projector types: gemma3 (Gemma 3 4B/12B/27B: the patch grid average-pooled
 * n_merge x n_merge, RMS-normed, projected).
 *
 * The arithmetic is llama.cpp's graph in the order it runs (tools/mtmd:
 * clip.cpp's build_inp and build_vit, models/siglip.cpp), through the
 * kernels the text model uses: in exact mode (HEARTH_EXACT) every product
 * goes through kern_matmul_ggml and attention through ggml's non-flash
 * order, so the embeddings are llama.cpp's bits with flash attention off.
 */
#include "kernels/kernels.h"
#include "model/gguf.h"
#include "vision.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct vis_matrix { /* a product's weight: [n_rows][n_cols] of type */
    kern_type type;
    const void *data;
    int64_t n_rows, n_cols;
} vis_matrix;

typedef struct vis_layer {
    vis_matrix q, k, v, o, up, down;
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *q_b, *k_b, *v_b, *o_b, *up_b, *down_b;
} vis_layer;

struct hearth_vision {
    gguf_file *f;
    hr_pool *pool;
    pthread_mutex_t mu;          /* one encode at a time: the pool runs one job */
    int image_size, patch, grid; /* grid: patches per side */
    int n_embd, n_head, n_ff, n_layer, n_merge, n_out, n_tokens;
    float eps, mean[3], std[3];
    vis_matrix patch_w;   /* the convolution's kernel in F16: [n_embd][3 patch patch] */
    uint16_t *patch_f16;  /* its rows, owned */
    float *patch_kernel;  /* the same as floats: exact mode's activations */
    float *patch_b, *pos; /* [n_embd] (may be NULL), [n_patch][n_embd] */
    vis_layer *layers;
    float *post_w, *post_b, *soft_norm;
    vis_matrix proj; /* mm.input_projection transposed: [n_out][n_embd] */
    void *proj_data; /* proj's rows, owned */
    float **owned;   /* the float copies of norms, biases and positions */
    int n_owned;
};

/* ---- loading ---- */

static hearth_err get_u32(const gguf_file *f, const char *key, uint32_t lo, uint32_t hi, bool need,
                          uint32_t *out) {
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) {
        if (!need) return HEARTH_OK;
        return hr_fail(HEARTH_ERR_FORMAT, "missing or mistyped key %s", key);
    }
    if (v < lo || v > hi)
        return hr_fail(HEARTH_ERR_FORMAT, "%s = %u is outside %u..%u", key, v, lo, hi);
    *out = v;
    return HEARTH_OK;
}

static hearth_err get_vec3(const gguf_file *f, const char *key, float out[3]) {
    gguf_arr a;
    if (!gguf_get_arr(f, key, &a) || a.n != 3 || (a.type != GGUF_F32 && a.type != GGUF_F64))
        return hr_fail(HEARTH_ERR_FORMAT, "%s must be an array of 3 floats", key);
    for (int i = 0; i < 3; i++) {
        out[i] = (float)gguf_arr_float(&a, (uint64_t)i);
        if (!isfinite(out[i]))
            return hr_fail(HEARTH_ERR_FORMAT, "%s holds a non-finite value", key);
    }
    return HEARTH_OK;
}

static hearth_err find(const gguf_file *f, const char *name, int64_t ne0, int64_t ne1, int64_t ne2,
                       int64_t ne3, const gguf_tensor **out) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return hr_fail(HEARTH_ERR_FORMAT, "tensor %s is missing", name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != ne3)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "tensor %s is [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld, %lld]",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)ne0, (long long)ne1, (long long)ne2,
                       (long long)ne3);
    *out = t;
    return HEARTH_OK;
}

/* A float copy of an F32, F16 or BF16 tensor of n elements, owned by v. */
static hearth_err floats(hearth_vision *v, const gguf_tensor *t, float **out) {
    const kern_fns *fn = kern_get((kern_type)t->type);
    if (t->type != KERN_F32 && t->type != KERN_F16 && t->type != KERN_BF16)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "tensor %.*s: type %s, expected F32, F16 or BF16",
                       (int)t->name.len, t->name.ptr, kern_type_get(t->type)->name);
    float *p = hr_calloc((size_t)t->n_elements, sizeof *p);
    float **list = p ? realloc(v->owned, (size_t)(v->n_owned + 1) * sizeof *list) : NULL;
    if (!list) {
        free(p);
        return HEARTH_ERR_NOMEM;
    }
    v->owned = list;
    v->owned[v->n_owned++] = p;
    fn->to_float(t->data, p, t->n_elements);
    *out = p;
    return HEARTH_OK;
}

static hearth_err vec(hearth_vision *v, const char *name, int64_t n, bool need, float **out) {
    if (!need && !gguf_find_tensor(v->f, name)) return HEARTH_OK;
    const gguf_tensor *t;
    hearth_err err = find(v->f, name, n, 1, 1, 1, &t);
    return err ? err : floats(v, t, out);
}

static hearth_err matrix(const gguf_file *f, const char *name, int64_t n_cols, int64_t n_rows,
                         vis_matrix *out) {
    const gguf_tensor *t;
    hearth_err err = find(f, name, n_cols, n_rows, 1, 1, &t);
    if (err) return err;
    if (!kern_get((kern_type)t->type))
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "tensor %s: type %s has no product kernel", name,
                       kern_type_get(t->type)->name);
    *out = (vis_matrix){
        .type = (kern_type)t->type, .data = t->data, .n_rows = n_rows, .n_cols = n_cols};
    return HEARTH_OK;
}

static hearth_err load_hparams(hearth_vision *v) {
    const gguf_file *f = v->f;
    gguf_str s;
    if (!gguf_get_str(f, "general.architecture", &s) || !gguf_str_eq(s, "clip"))
        return hr_fail(HEARTH_ERR_FORMAT, "not a vision projector (general.architecture is not "
                                          "\"clip\")");
    bool has = false;
    if (!gguf_get_bool(f, "clip.has_vision_encoder", &has) || !has)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "the file has no vision encoder");
    if (!gguf_get_str(f, "clip.vision.projector_type", &s) &&
        !gguf_get_str(f, "clip.projector_type", &s))
        return hr_fail(HEARTH_ERR_FORMAT, "missing key clip.projector_type");
    if (!gguf_str_eq(s, "gemma3"))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "projector type \"%.*s\" is not supported (supported: gemma3)",
                       (int)(s.len < 64 ? s.len : 64), s.ptr);
    bool gelu = false;
    if (!gguf_get_bool(f, "clip.use_gelu", &gelu) || !gelu)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "only GELU vision towers are supported "
                                               "(clip.use_gelu)");
    uint32_t size = 0, patch = 0, embd = 0, ff = 0, layers = 0, heads = 0, merge = 4;
    hearth_err err = get_u32(f, "clip.vision.image_size", 1, 4096, true, &size);
    if (!err) err = get_u32(f, "clip.vision.patch_size", 1, 256, true, &patch);
    if (!err) err = get_u32(f, "clip.vision.embedding_length", 1, 16384, true, &embd);
    if (!err) err = get_u32(f, "clip.vision.feed_forward_length", 1, 65536, true, &ff);
    if (!err) err = get_u32(f, "clip.vision.block_count", 1, 256, true, &layers);
    if (!err) err = get_u32(f, "clip.vision.attention.head_count", 1, 256, true, &heads);
    if (!err) err = get_u32(f, "clip.vision.projector.scale_factor", 1, 64, false, &merge);
    if (err) return err;
    if (!gguf_get_f32(f, "clip.vision.attention.layer_norm_epsilon", &v->eps) ||
        !(v->eps >= 0 && v->eps < 1))
        return hr_fail(HEARTH_ERR_FORMAT, "clip.vision.attention.layer_norm_epsilon is missing "
                                          "or outside [0, 1)");
    if ((err = get_vec3(f, "clip.vision.image_mean", v->mean)) ||
        (err = get_vec3(f, "clip.vision.image_std", v->std)))
        return err;
    for (int c = 0; c < 3; c++)
        if (v->std[c] == 0) return hr_fail(HEARTH_ERR_FORMAT, "clip.vision.image_std holds 0");
    if (embd % heads || (embd / heads) > KERN_ATTN_MAX_HD)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "%u heads do not divide the width %u into heads of at "
                       "most %d",
                       heads, embd, KERN_ATTN_MAX_HD);
    if (size < patch || size / patch < merge)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "an image of %u pixels has no %ux%u patch group of %u "
                       "pixels",
                       size, merge, merge, patch);
    v->image_size = (int)size, v->patch = (int)patch, v->grid = (int)(size / patch);
    v->n_embd = (int)embd, v->n_ff = (int)ff, v->n_layer = (int)layers, v->n_head = (int)heads;
    v->n_merge = (int)merge;
    v->n_tokens = (v->grid / v->n_merge) * (v->grid / v->n_merge);
    return HEARTH_OK;
}

static hearth_err load_layer(hearth_vision *v, int il, vis_layer *l) {
    char name[64];
    const int64_t d = v->n_embd, ff = v->n_ff;
    hearth_err err = HEARTH_OK;
#define VEC(field, what, n)                                                                        \
    if (!err) {                                                                                    \
        snprintf(name, sizeof name, "v.blk.%d.%s", il, what);                                      \
        err = vec(v, name, n, true, &l->field);                                                    \
    }
#define MAT(field, what, cols, rows)                                                               \
    if (!err) {                                                                                    \
        snprintf(name, sizeof name, "v.blk.%d.%s", il, what);                                      \
        err = matrix(v->f, name, cols, rows, &l->field);                                           \
    }
    VEC(ln1_w, "ln1.weight", d)
    VEC(ln1_b, "ln1.bias", d)
    VEC(ln2_w, "ln2.weight", d)
    VEC(ln2_b, "ln2.bias", d)
    MAT(q, "attn_q.weight", d, d)
    MAT(k, "attn_k.weight", d, d) MAT(v, "attn_v.weight", d, d) MAT(o, "attn_out.weight", d, d)
        VEC(q_b, "attn_q.bias", d) VEC(k_b, "attn_k.bias", d) VEC(v_b, "attn_v.bias", d)
            VEC(o_b, "attn_out.bias", d) if (err) return err;
    /* Gemma 3's converter names the MLP's first matrix ffn_down and its
     * second ffn_up; llama.cpp swaps them by shape, and so does Hearth. */
    snprintf(name, sizeof name, "v.blk.%d.ffn_down.weight", il);
    const gguf_tensor *t = gguf_find_tensor(v->f, name);
    const bool swapped = t && t->ne[0] == d;
    MAT(up, swapped ? "ffn_down.weight" : "ffn_up.weight", d, ff)
    MAT(down, swapped ? "ffn_up.weight" : "ffn_down.weight", ff, d)
    VEC(up_b, swapped ? "ffn_down.bias" : "ffn_up.bias", ff)
    VEC(down_b, swapped ? "ffn_up.bias" : "ffn_down.bias", d)
#undef VEC
#undef MAT
    return err;
}

/* The projection's rows as llama.cpp multiplies them: mm.input_projection
 * is [n_embd][n_out] (n_out columns), its transpose one row per output. */
static hearth_err load_projection(hearth_vision *v) {
    const gguf_tensor *t = gguf_find_tensor(v->f, "mm.input_projection.weight");
    if (!t) return hr_fail(HEARTH_ERR_FORMAT, "tensor mm.input_projection.weight is missing");
    const int64_t n_out = t->ne[0], d = v->n_embd;
    hearth_err err = find(v->f, "mm.input_projection.weight", n_out, d, 1, 1, &t);
    if (err) return err;
    if (t->type != KERN_F32 && t->type != KERN_F16)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "mm.input_projection.weight: type %s, expected "
                       "F32 or F16",
                       kern_type_get(t->type)->name);
    if (n_out < 1 || n_out > 65536)
        return hr_fail(HEARTH_ERR_FORMAT, "the projection's width %lld is out of range",
                       (long long)n_out);
    const size_t el = t->type == KERN_F32 ? 4 : 2;
    uint8_t *dst = hr_calloc((size_t)(n_out * d), el);
    if (!dst) return HEARTH_ERR_NOMEM;
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < n_out; j++)
            memcpy(dst + (size_t)(j * d + i) * el, src + (size_t)(i * n_out + j) * el, el);
    v->proj_data = dst;
    v->proj = (vis_matrix){.type = (kern_type)t->type, .data = dst, .n_rows = n_out, .n_cols = d};
    v->n_out = (int)n_out;
    return HEARTH_OK;
}

static hearth_err load_tensors(hearth_vision *v) {
    const int64_t d = v->n_embd, p = v->patch, n_patch = (int64_t)v->grid * v->grid;
    const gguf_tensor *t;
    hearth_err err = find(v->f, "v.patch_embd.weight", p, p, 3, d, &t);
    if (!err && t->type != KERN_F32 && t->type != KERN_F16)
        err = hr_fail(HEARTH_ERR_UNSUPPORTED, "v.patch_embd.weight: type %s, expected F32 or F16",
                      kern_type_get(t->type)->name);
    if (err) return err;
    /* llama.cpp convolves in F16 whatever the kernel's type: the kernel and
     * the patches are rounded to F16 (ggml's im2col into F16) */
    if ((err = floats(v, t, &v->patch_kernel))) return err;
    const size_t k = (size_t)(3 * p * p);
    if (!(v->patch_f16 = hr_calloc((size_t)d * k, sizeof *v->patch_f16))) return HEARTH_ERR_NOMEM;
    for (size_t i = 0; i < (size_t)d * k; i++) {
        v->patch_f16[i] = kern_f32_to_f16(v->patch_kernel[i]);
        v->patch_kernel[i] = kern_f16_to_f32(v->patch_f16[i]);
    }
    v->patch_w =
        (vis_matrix){.type = KERN_F16, .data = v->patch_f16, .n_rows = d, .n_cols = (int64_t)k};
    if ((err = vec(v, "v.patch_embd.bias", d, false, &v->patch_b))) return err;
    if ((err = find(v->f, "v.position_embd.weight", d, n_patch, 1, 1, &t)) ||
        (err = floats(v, t, &v->pos)))
        return err;
    if ((err = vec(v, "v.post_ln.weight", d, true, &v->post_w)) ||
        (err = vec(v, "v.post_ln.bias", d, true, &v->post_b)) ||
        (err = vec(v, "mm.soft_emb_norm.weight", d, true, &v->soft_norm)))
        return err;
    if (!(v->layers = hr_calloc((size_t)v->n_layer, sizeof *v->layers))) return HEARTH_ERR_NOMEM;
    for (int il = 0; il < v->n_layer && !err; il++) err = load_layer(v, il, &v->layers[il]);
    if (!err) err = load_projection(v);
    return err;
}

hearth_err hearth_vision_load(const char *path, const hearth_model *model, int n_threads,
                              hearth_vision **out) {
    if (!path || !model || !out) return hr_fail(HEARTH_ERR_INVALID_ARG, "vision: no file or model");
    hearth_vision *v = hr_calloc(1, sizeof *v);
    if (!v) return HEARTH_ERR_NOMEM;
    hearth_err err = gguf_open(path, &v->f);
    if (!err) err = load_hparams(v);
    if (!err) err = load_tensors(v);
    if (!err && v->n_out != hearth_model_n_embd(model))
        err = hr_fail(HEARTH_ERR_INVALID_ARG,
                      "the projector makes rows of %d but the model's embeddings have %d: it was "
                      "made for another model",
                      v->n_out, hearth_model_n_embd(model));
    if (!err) err = hr_pool_new(n_threads > 0 ? n_threads : hr_cpu_cores(), &v->pool);
    if (!err) pthread_mutex_init(&v->mu, NULL);
    if (err) {
        hearth_vision_free(v);
        return hr_wrap(err, "vision projector %s: ", path);
    }
    *out = v;
    return HEARTH_OK;
}

void hearth_vision_free(hearth_vision *v) {
    if (!v) return;
    if (v->pool) pthread_mutex_destroy(&v->mu);
    hr_pool_free(v->pool);
    for (int i = 0; i < v->n_owned; i++) free(v->owned[i]);
    free(v->owned);
    free(v->layers);
    free(v->proj_data);
    free(v->patch_f16);
    gguf_close(v->f);
    free(v);
}

int hearth_vision_n_tokens(const hearth_vision *v) { return v->n_tokens; }
int hearth_vision_image_size(const hearth_vision *v) { return v->image_size; }
const char *hearth_vision_projector(const hearth_vision *v) {
    (void)v;
    return "gemma3";
}

void vis_wrap(const hearth_vision *v, const char **begin, const char **end) {
    (void)v;
    *begin = "<start_of_image>";
    *end = "<end_of_image>";
}

bool vis_bidirectional(const hearth_vision *v) {
    (void)v;
    return true;
}

/* ---- the forward pass ---- */

typedef struct vis_run {
    hearth_vision *v;
    int n; /* patches */
    float *x, *cur, *q, *k, *vv, *att, *hb;
    float *scores;  /* the default mode's attention: [n][n] */
    uint16_t *kv16; /* ... and a head's K and V in F16: [2][n][hd] */
    void *scratch;
    float *work; /* per thread: [n] scores */
} vis_run;

static void product(vis_run *r, const vis_matrix *w, const float *x, int n, float *y) {
    if (kern_exact())
        kern_matmul_ggml(r->v->pool, w->type, w->data, w->n_rows, w->n_cols, x, n, y, w->n_rows,
                         r->scratch, false);
    else
        kern_matmul(r->v->pool, w->type, w->data, w->n_rows, w->n_cols, x, n, y, w->n_rows,
                    r->scratch);
}

static void add_rows(float *y, const float *b, int n, int d) {
    if (!b) return;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d; i++) y[(size_t)t * d + i] += b[i];
}

/* The patches through the convolution: exact mode multiplies as ggml's
 * conv_2d does (im2col rows in the kernel's type times the kernel), the
 * default mode the other way round (the kernel as the weight). */
static hearth_err patch_embed(vis_run *r, const float *pix) {
    const hearth_vision *v = r->v;
    const int p = v->patch, g = v->grid, side = v->image_size, k = 3 * p * p, d = v->n_embd;
    float *col = hr_calloc((size_t)r->n * k, sizeof *col); /* [n][3 p p]: (c, ky, kx) */
    if (!col) return HEARTH_ERR_NOMEM;
    for (int py = 0; py < g; py++)
        for (int px = 0; px < g; px++)
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < p; ky++)
                    memcpy(col + (size_t)(py * g + px) * k + (size_t)(c * p + ky) * p,
                           pix + (size_t)c * side * side + (size_t)(py * p + ky) * side + px * p,
                           (size_t)p * sizeof *col);
    if (!kern_exact()) {
        product(r, &v->patch_w, col, r->n, r->x);
        free(col);
        return HEARTH_OK;
    }
    const size_t row = kern_row_bytes(v->patch_w.type, k);
    uint8_t *cols = hr_calloc((size_t)r->n, row);
    float *yt = cols ? hr_calloc((size_t)d * r->n, sizeof *yt) : NULL; /* [d][n] */
    if (!yt) {
        free(col), free(cols);
        return HEARTH_ERR_NOMEM;
    }
    const kern_fns *fn = kern_get(v->patch_w.type);
    for (int t = 0; t < r->n; t++) fn->from_float(col + (size_t)t * k, cols + (size_t)t * row, k);
    kern_matmul_ggml(v->pool, v->patch_w.type, cols, r->n, k, v->patch_kernel, d, yt, r->n,
                     r->scratch, false);
    for (int t = 0; t < r->n; t++)
        for (int i = 0; i < d; i++) r->x[(size_t)t * d + i] = yt[(size_t)i * r->n + t];
    free(col), free(cols), free(yt);
    return HEARTH_OK;
}

/* softmax(q k^T / sqrt(hd)) v over every patch, per (patch, head), in the
 * order of ggml's non-flash attention for a batch without a cache. */
static void attention_job(void *ctx, int ith, int nth) {
    vis_run *r = ctx;
    const hearth_vision *v = r->v;
    const int d = v->n_embd, hd = d / v->n_head;
    const float scale = 1.0f / sqrtf((float)hd);
    const bool batch = r->n > 1 && r->n % 16 == 0;
    float *sc = r->work + (size_t)ith * r->n;
    for (int unit = ith; unit < r->n * v->n_head; unit += nth) {
        const int t = unit / v->n_head, h = unit % v->n_head;
        kern_attn_scores(sc, r->q + (size_t)t * d + h * hd, r->k + h * hd, (size_t)d, r->n, hd,
                         false, batch);
        kern_attn_softmax(sc, 0, r->n, r->n, scale);
        kern_attn_values(r->att + (size_t)t * d + h * hd, sc, r->vv + h * hd, (size_t)d, 0, r->n,
                         r->n, hd, false, batch);
    }
}

/* The default mode's attention, a head at a time through the matrix
 * products: S = Q K^T, each row's softmax (across the pool), O = P V, with
 * K and V in F16 (as llama.cpp's flash attention, its default, has them):
 * ggml's per-pair order (above) is a hundred times slower over Gemma 3's
 * 4,096 patches, F32 products twice as slow. */
typedef struct softmax_job {
    float *s;
    int n;
    float scale;
} softmax_job;

static void softmax_rows(void *ctx, int ith, int nth) {
    const softmax_job *j = ctx;
    int lo, hi;
    hr_pool_part(j->n, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++)
        kern_attn_softmax(j->s + (size_t)t * j->n, 0, j->n, j->n, j->scale);
}

static void attention_heads(vis_run *r) {
    const hearth_vision *v = r->v;
    const int n = r->n, d = v->n_embd, hd = d / v->n_head;
    float *qh = r->hb, *oh = qh + (size_t)n * hd;      /* [n][hd] each, in hb */
    uint16_t *kh = r->kv16, *vt = kh + (size_t)n * hd; /* F16 [n][hd] and [hd][n] */
    softmax_job sj = {.s = r->scores, .n = n, .scale = 1.0f / sqrtf((float)hd)};
    for (int h = 0; h < v->n_head; h++) {
        for (int t = 0; t < n; t++) {
            memcpy(qh + (size_t)t * hd, r->q + (size_t)t * d + h * hd, (size_t)hd * sizeof *qh);
            for (int c = 0; c < hd; c++) {
                kh[(size_t)t * hd + c] = kern_f32_to_f16(r->k[(size_t)t * d + h * hd + c]);
                vt[(size_t)c * n + t] = kern_f32_to_f16(r->vv[(size_t)t * d + h * hd + c]);
            }
        }
        kern_matmul(v->pool, KERN_F16, kh, n, hd, qh, n, r->scores, n, r->scratch);
        hr_pool_run(v->pool, softmax_rows, &sj);
        kern_matmul(v->pool, KERN_F16, vt, hd, n, r->scores, n, oh, hd, r->scratch);
        for (int t = 0; t < n; t++)
            memcpy(r->att + (size_t)t * d + h * hd, oh + (size_t)t * hd, (size_t)hd * sizeof *oh);
    }
}

static void layer_norm_rows(float *y, const float *x, const float *w, const float *b, int n, int d,
                            float eps) {
    for (int t = 0; t < n; t++) kern_layer_norm(y + (size_t)t * d, x + (size_t)t * d, w, b, d, eps);
}

static void block(vis_run *r, const vis_layer *l) {
    const hearth_vision *v = r->v;
    const int n = r->n, d = v->n_embd, ff = v->n_ff;
    layer_norm_rows(r->cur, r->x, l->ln1_w, l->ln1_b, n, d, v->eps);
    product(r, &l->q, r->cur, n, r->q);
    add_rows(r->q, l->q_b, n, d);
    product(r, &l->k, r->cur, n, r->k);
    add_rows(r->k, l->k_b, n, d);
    product(r, &l->v, r->cur, n, r->vv);
    add_rows(r->vv, l->v_b, n, d);
    if (kern_exact())
        hr_pool_run(v->pool, attention_job, r);
    else
        attention_heads(r);
    product(r, &l->o, r->att, n, r->cur);
    add_rows(r->cur, l->o_b, n, d);
    for (size_t i = 0; i < (size_t)n * d; i++) r->x[i] += r->cur[i];
    layer_norm_rows(r->cur, r->x, l->ln2_w, l->ln2_b, n, d, v->eps);
    product(r, &l->up, r->cur, n, r->hb);
    add_rows(r->hb, l->up_b, n, ff);
    for (int t = 0; t < n; t++) {
        float *h = r->hb + (size_t)t * ff;
        kern_geglu(h, h, NULL, ff); /* ggml_gelu */
    }
    product(r, &l->down, r->hb, n, r->cur);
    add_rows(r->cur, l->down_b, n, d);
    for (size_t i = 0; i < (size_t)n * d; i++) r->x[i] += r->cur[i];
}

/* Gemma 3's projector: the grid average-pooled n_merge x n_merge (whole
 * groups; ggml's sum then division), RMS-normed, projected. */
static void project_gemma3(vis_run *r, float *out) {
    const hearth_vision *v = r->v;
    const int d = v->n_embd, g = v->grid, k = v->n_merge, side = g / k;
    float *pooled = r->cur; /* [n_tokens][d] */
    for (int oy = 0; oy < side; oy++)
        for (int ox = 0; ox < side; ox++)
            for (int i = 0; i < d; i++) {
                float s = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        s += r->x[(size_t)((oy * k + ky) * g + ox * k + kx) * d + i];
                pooled[(size_t)(oy * side + ox) * d + i] = s / (float)(k * k);
            }
    for (int t = 0; t < v->n_tokens; t++)
        kern_rms_norm(pooled + (size_t)t * d, pooled + (size_t)t * d, v->soft_norm, d, v->eps);
    product(r, &v->proj, pooled, v->n_tokens, out);
}

static size_t scratch_of(const vis_matrix *w, int n) {
    return kern_matmul_scratch_bytes(w->type, w->n_cols, n);
}

/* The bytes the products need for converted activations: the largest
 * over every product of a pass over n patches. */
static size_t tower_scratch(const hearth_vision *v, int n) {
    const int hd = v->n_embd / v->n_head;
    size_t max = kern_matmul_scratch_bytes(v->patch_w.type, v->patch_w.n_cols, v->n_embd);
    const size_t more[] = {scratch_of(&v->patch_w, n), scratch_of(&v->proj, v->n_tokens),
                           kern_matmul_scratch_bytes(KERN_F16, hd, n),
                           kern_matmul_scratch_bytes(KERN_F16, n, n)};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) max = more[i] > max ? more[i] : max;
    for (int il = 0; il < v->n_layer; il++) {
        const vis_layer *l = &v->layers[il];
        const vis_matrix *all[] = {&l->q, &l->k, &l->v, &l->o, &l->up, &l->down};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
            const size_t b = scratch_of(all[i], n);
            max = b > max ? b : max;
        }
    }
    return max;
}

static hearth_err run_tower(hearth_vision *v, const float *pix, float *out) {
    const int n = v->grid * v->grid, d = v->n_embd, hd = d / v->n_head;
    const bool exact = kern_exact();
    vis_run r = {.v = v, .n = n};
    const size_t nd = (size_t)n * d, scratch = tower_scratch(v, n);
    /* hb: the FFN's rows, or a head's Q and output (attention_heads) */
    const size_t hb = (size_t)n * (size_t)(v->n_ff > 2 * hd ? v->n_ff : 2 * hd);
    r.x = hr_calloc(nd, sizeof(float));
    r.cur = hr_calloc(nd, sizeof(float));
    r.q = hr_calloc(nd, sizeof(float));
    r.k = hr_calloc(nd, sizeof(float));
    r.vv = hr_calloc(nd, sizeof(float));
    r.att = hr_calloc(nd, sizeof(float));
    r.hb = hr_calloc(hb, sizeof(float));
    r.scratch = hr_calloc(scratch ? scratch : 1, 1);
    if (exact)
        r.work = hr_calloc((size_t)hr_pool_size(v->pool) * n, sizeof(float));
    else if ((r.scores = hr_calloc((size_t)n * n, sizeof(float))))
        r.kv16 = hr_calloc((size_t)2 * n * hd, sizeof *r.kv16);
    hearth_err err = r.x && r.cur && r.q && r.k && r.vv && r.att && r.hb && r.scratch &&
                             (exact ? r.work != NULL : r.kv16 != NULL)
                         ? HEARTH_OK
                         : HEARTH_ERR_NOMEM;
    if (!err) err = patch_embed(&r, pix);
    if (!err) {
        add_rows(r.x, v->patch_b, n, d);
        for (size_t i = 0; i < nd; i++) r.x[i] += v->pos[i];
        for (int il = 0; il < v->n_layer; il++) block(&r, &v->layers[il]);
        layer_norm_rows(r.x, r.x, v->post_w, v->post_b, n, d, v->eps);
        project_gemma3(&r, out);
    }
    free(r.x), free(r.cur), free(r.q), free(r.k), free(r.vv), free(r.att), free(r.hb);
    free(r.scratch), free(r.work), free(r.scores), free(r.kv16);
    return err;
}

hearth_err hearth_vision_encode(hearth_vision *v, const void *image, size_t len, float *out) {
    if (!v || !image || !out) return hr_fail(HEARTH_ERR_INVALID_ARG, "vision: no image");
    vis_image img = {0};
    hearth_err err = vis_image_decode(image, len, &img);
    if (err) return err;
    const size_t side = (size_t)v->image_size;
    float *pix = hr_calloc(3 * side * side, sizeof *pix);
    err = pix ? vis_preprocess_fit(&img, v->image_size, v->mean, v->std, pix) : HEARTH_ERR_NOMEM;
    vis_image_free(&img);
    if (!err) {
        pthread_mutex_lock(&v->mu);
        err = run_tower(v, pix, out);
        pthread_mutex_unlock(&v->mu);
    }
    free(pix);
    return err;
}
