/*
 * lora.c - LoRA adapters in llama.cpp's GGUF format, applied at inference
 * time without merging: an adapter adds scale * B (A x) to the product W x
 * of every weight it names (forward.c applies it; this file checks and
 * binds).
 *
 * The format (llama.cpp's convert_lora_to_gguf.py, src/llama-adapter.cpp):
 * general.type = "adapter", adapter.type = "lora", general.architecture as
 * the base model's, adapter.lora.alpha (F32; absent reads as 0), and for
 * each adapted weight W (ne [n_in, n_out]) two tensors "<W's name>.lora_a"
 * with ne [n_in, rank] and "<W's name>.lora_b" with ne [rank, n_out]. For
 * token_embd.weight (ne [n_embd, n_vocab]) A is stored transposed, ne
 * [rank, n_vocab], so that a token's row of A is its low-rank code. The
 * scale is user_scale * alpha / rank, or user_scale alone when alpha is 0.
 * Tensors named "*_norm.weight" are ignored, as llama.cpp ignores them.
 *
 * Invariants after model_lora_bind: every pair's A and B are 2-D views into
 * the adapter's mapping with types the kernels multiply, shapes that match
 * the base weight, 1 <= rank <= min(n_in, n_out); a weight's chain lists its
 * pairs in the order the adapters were added, pairs at scale 0 left out.
 */
#include "model.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest tensor name this file looks up (GGML's own limit is 64). */
enum { LORA_NAME_MAX = 256 };

static const char SUFFIX_A[] = ".lora_a", SUFFIX_B[] = ".lora_b";

/* True when s ends with `suffix`; *base_len gets the length before it. */
static bool ends_with(gguf_str s, const char *suffix, size_t *base_len) {
    const size_t n = strlen(suffix);
    if (s.len < n || memcmp(s.ptr + s.len - n, suffix, n) != 0) return false;
    *base_len = (size_t)s.len - n;
    return true;
}

/* The tensor named base + suffix, or NULL. */
static const gguf_tensor *partner(const gguf_file *f, const char *base, size_t len,
                                  const char *suffix) {
    char name[LORA_NAME_MAX + 16];
    snprintf(name, sizeof name, "%.*s%s", (int)len, base, suffix); /* len <= LORA_NAME_MAX */
    return gguf_find_tensor(f, name);
}

static int name_len(gguf_str s) { return (int)(s.len > 96 ? 96 : s.len); }

/* A and B of one pair on their own: 2-D, a type the kernels multiply, one
 * rank. token_embd's A is transposed (header). */
static hearth_err check_pair(const gguf_tensor *a, const gguf_tensor *b, bool embd, int64_t *rank) {
    const gguf_tensor *ab[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        const gguf_tensor *t = ab[i];
        const kern_type_info *ti = kern_type_get(t->type);
        if (t->ne[2] != 1 || t->ne[3] != 1)
            return hr_fail(HEARTH_ERR_FORMAT, "adapter: tensor '%.*s' is not a matrix",
                           name_len(t->name), t->name.ptr);
        if (!ti || !ti->supported || !kern_get((kern_type)t->type) ||
            !kern_row_bytes((kern_type)t->type, t->ne[0]))
            return hr_fail(HEARTH_ERR_UNSUPPORTED,
                           "adapter: tensor '%.*s' has type %s, which Hearth cannot multiply "
                           "(use f32, f16, bf16 or q8_0)",
                           name_len(t->name), t->name.ptr, ti ? ti->name : "?");
    }
    const int64_t r = b->ne[0], ra = embd ? a->ne[0] : a->ne[1];
    if (ra != r)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "adapter: '%.*s' has rank %lld but '%.*s' has rank %lld (lora_a must be "
                       "[n_in, rank], lora_b [rank, n_out])",
                       name_len(a->name), a->name.ptr, (long long)ra, name_len(b->name),
                       b->name.ptr, (long long)r);
    *rank = r;
    return HEARTH_OK;
}

/* Walks f's tensors; for each complete pair (from its lora_a) calls fn
 * unless fn is NULL. */
typedef hearth_err (*pair_fn)(void *ctx, gguf_str base, const gguf_tensor *a, const gguf_tensor *b,
                              int64_t rank);

static hearth_err walk_pairs(const gguf_file *f, model_lora_info *info, pair_fn fn, void *ctx) {
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        size_t len;
        const bool is_a = ends_with(t->name, SUFFIX_A, &len),
                   is_b = !is_a && ends_with(t->name, SUFFIX_B, &len);
        if (!is_a && !is_b) {
            if (ends_with(t->name, "_norm.weight", &len)) {
                info->n_ignored++;
                continue;
            }
            return hr_fail(HEARTH_ERR_FORMAT,
                           "adapter: tensor '%.*s' is neither a .lora_a nor a .lora_b",
                           name_len(t->name), t->name.ptr);
        }
        if (len == 0 || len > LORA_NAME_MAX || memchr(t->name.ptr, '\0', len))
            return hr_fail(HEARTH_ERR_FORMAT, "adapter: tensor name '%.*s' is not usable",
                           name_len(t->name), t->name.ptr);
        const gguf_tensor *other = partner(f, t->name.ptr, len, is_a ? SUFFIX_B : SUFFIX_A);
        if (!other)
            return hr_fail(HEARTH_ERR_FORMAT, "adapter: '%.*s' has no matching '%.*s%s'",
                           name_len(t->name), t->name.ptr, (int)(len > 96 ? 96 : len), t->name.ptr,
                           is_a ? SUFFIX_B : SUFFIX_A);
        if (is_b) continue; /* its pair is checked from the lora_a */
        const gguf_str base = {.ptr = t->name.ptr, .len = len};
        int64_t rank = 0;
        hearth_err err = check_pair(t, other, gguf_str_eq(base, "token_embd.weight"), &rank);
        if (err) return err;
        if (rank < info->rank_min || info->n_pairs == 0) info->rank_min = rank;
        if (rank > info->rank_max) info->rank_max = rank;
        info->n_pairs++;
        if (fn && (err = fn(ctx, base, t, other, rank))) return err;
    }
    return HEARTH_OK;
}

static hearth_err scan_meta(const gguf_file *f, model_lora_info *info) {
    gguf_str s;
    if (!gguf_get_str(f, "general.type", &s))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "adapter: key 'general.type' is missing (not a LoRA adapter file)");
    if (!gguf_str_eq(s, "adapter"))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "adapter: general.type is '%.*s', not 'adapter' (a model is loaded with "
                       "-m, not as an adapter)",
                       name_len(s), s.ptr);
    if (!gguf_get_str(f, "adapter.type", &s) || !gguf_str_eq(s, "lora"))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "adapter: adapter.type must be 'lora' (Hearth applies LoRA adapters only)");
    if (!gguf_get_str(f, "general.architecture", &info->arch))
        return hr_fail(HEARTH_ERR_FORMAT, "adapter: key 'general.architecture' is missing");
    info->alpha = 0.0f;
    if (gguf_find(f, "adapter.lora.alpha") && !gguf_get_f32(f, "adapter.lora.alpha", &info->alpha))
        return hr_fail(HEARTH_ERR_FORMAT, "adapter: adapter.lora.alpha is not a float");
    if (!isfinite(info->alpha))
        return hr_fail(HEARTH_ERR_FORMAT, "adapter: adapter.lora.alpha is not finite");
    return HEARTH_OK;
}

hearth_err model_lora_scan(const gguf_file *f, model_lora_info *out) {
    model_lora_info info = {0};
    hearth_err err = scan_meta(f, &info);
    if (!err) err = walk_pairs(f, &info, NULL, NULL);
    if (!err && info.n_pairs == 0)
        err = hr_fail(HEARTH_ERR_FORMAT, "adapter: no .lora_a/.lora_b tensor pairs");
    if (!err) *out = info;
    return err;
}

/* ---- binding to a model ---- */

typedef struct bind_ctx {
    hearth_model *m;
    model_lora *lora;
    model_weight **targets; /* [n_pairs]: the weight of lora->ab[i] */
} bind_ctx;

static model_weight view(const gguf_tensor *t) {
    return (model_weight){
        .type = (kern_type)t->type, .data = t->data, .n_rows = t->ne[1], .n_cols = t->ne[0]};
}

static hearth_err bind_pair(void *ctx, gguf_str base, const gguf_tensor *a, const gguf_tensor *b,
                            int64_t rank) {
    bind_ctx *c = ctx;
    const int nl = name_len(base);
    model_weight *w = model_weight_named(c->m, base);
    if (!w)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "adapter: '%.*s' is not a weight matrix of this %s model (wrong base "
                       "model?)",
                       nl, base.ptr, c->m->arch->name);
    const bool embd = w == &c->m->tok_embd;
    if (embd && c->m->output.data == c->m->tok_embd.data)
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "adapter: it changes token_embd.weight, which this model also uses as its "
                       "output layer; Hearth cannot apply that without merging");
    /* W's ne is [n_cols, n_rows]: in = n_cols, out = n_rows; token_embd's
     * "input" is a token id, its A row count the vocabulary. */
    const int64_t a_rows = embd ? a->ne[1] : a->ne[0], b_out = b->ne[1];
    if (a_rows != (embd ? w->n_rows : w->n_cols) || b_out != (embd ? w->n_cols : w->n_rows))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "adapter: '%.*s' is [%lld, %lld] in the model but the adapter's lora_a is "
                       "[%lld, %lld] and lora_b [%lld, %lld] (wrong base model?)",
                       nl, base.ptr, (long long)w->n_cols, (long long)w->n_rows,
                       (long long)a->ne[0], (long long)a->ne[1], (long long)b->ne[0],
                       (long long)b->ne[1]);
    const int64_t n_in = embd ? w->n_rows : w->n_cols, n_out = embd ? w->n_cols : w->n_rows;
    const int64_t lim = n_in < n_out ? n_in : n_out;
    if (rank < 1 || rank > lim)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "adapter: '%.*s' has rank %lld; a low-rank update of a [%lld, %lld] weight "
                       "has rank 1..%lld",
                       nl, base.ptr, (long long)rank, (long long)w->n_cols, (long long)w->n_rows,
                       (long long)lim);
    model_lora *l = c->lora;
    for (int i = 0; i < l->n_ab; i++) /* the reader refuses duplicate names; be sure */
        if (c->targets[i] == w)
            return hr_fail(HEARTH_ERR_FORMAT, "adapter: '%.*s' is adapted twice", nl, base.ptr);
    const float scale = l->alpha != 0.0f ? l->scale * l->alpha / (float)rank : l->scale;
    if (!isfinite(scale))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "adapter: the scale of '%.*s' is not finite", nl,
                       base.ptr);
    c->targets[l->n_ab] = w;
    l->ab[l->n_ab++] = (model_lora_ab){.a = view(a), .b = view(b), .scale = scale, .gather = embd};
    return HEARTH_OK;
}

hearth_err model_lora_bind(hearth_model *m, gguf_file *f, float scale) {
    model_lora_info info;
    hearth_err err = model_lora_scan(f, &info);
    model_lora *l = NULL;
    if (!err && !gguf_str_eq(info.arch, m->arch->name))
        err = hr_fail(HEARTH_ERR_FORMAT, "adapter: it is for architecture '%.*s', the model is %s",
                      name_len(info.arch), info.arch.ptr, m->arch->name);
    if (!err && !isfinite(scale))
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "adapter: scale %g is not finite", (double)scale);
    if (!err && m->n_loras >= MODEL_LORA_MAX)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "adapter: at most %d adapters per model",
                      MODEL_LORA_MAX);
    if (!err) {
        model_lora *grown = realloc(m->loras, (size_t)(m->n_loras + 1) * sizeof *grown);
        if (!grown)
            err = hr_fail(HEARTH_ERR_NOMEM, "adapter: out of memory");
        else
            m->loras = grown;
    }
    if (!err) {
        l = &m->loras[m->n_loras];
        *l = (model_lora){.gguf = f, .alpha = info.alpha, .scale = scale};
        if (!(l->ab = hr_calloc((size_t)info.n_pairs, sizeof *l->ab))) err = HEARTH_ERR_NOMEM;
    }
    bind_ctx c = {.m = m, .lora = l};
    if (!err && !(c.targets = hr_calloc((size_t)info.n_pairs, sizeof *c.targets)))
        err = HEARTH_ERR_NOMEM;
    if (!err) {
        model_lora_info again = {0};
        err = walk_pairs(f, &again, bind_pair, &c);
    }
    if (err) {
        if (l) free(l->ab);
        free(c.targets);
        gguf_close(f);
        return err;
    }
    /* Every pair checked: chain them onto their weights, at the end. */
    for (int i = 0; i < l->n_ab; i++) {
        if (l->ab[i].scale == 0.0f) continue; /* checked, never applied */
        assert(c.targets[i]);                 /* bind_pair found every pair's weight */
        const model_lora_ab **tail = &c.targets[i]->lora;
        while (*tail) tail = (const model_lora_ab **)&(*tail)->next;
        *tail = &l->ab[i];
    }
    free(c.targets);
    m->n_loras++;
    return HEARTH_OK;
}

hearth_err model_lora_add(hearth_model *m, const char *path, float scale) {
    gguf_file *f;
    hearth_err err = gguf_open(path, &f);
    if (!err) err = model_lora_bind(m, f, scale);
    return err ? hr_wrap(err, "adapter '%s': ", path) : HEARTH_OK;
}

void model_lora_free_all(hearth_model *m) {
    m->tok_embd.lora = m->output.lora = NULL;
    for (int il = 0; m->n_loras && m->layers && il < m->hp.n_layer; il++) {
        model_layer *l = &m->layers[il];
        model_weight *ws[] = {&l->wq,   &l->wk, &l->wv,   &l->wqkv,   &l->wo,
                              &l->gate, &l->up, &l->down, &l->gate_up};
        for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) ws[k]->lora = NULL;
    }
    for (int i = 0; i < m->n_loras; i++) {
        free(m->loras[i].ab);
        gguf_close(m->loras[i].gguf);
    }
    free(m->loras);
    m->loras = NULL;
    m->n_loras = 0;
}

void model_lora_sizes(const hearth_model *m, int n_batch, size_t *scratch_bytes, size_t *ax_floats,
                      size_t *bx_floats) {
    size_t sb = 0, ax = 0, bx = 0;
    for (int i = 0; i < m->n_loras; i++)
        for (int k = 0; k < m->loras[i].n_ab; k++) {
            const model_lora_ab *p = &m->loras[i].ab[k];
            const int64_t rank = p->b.n_cols;
            const size_t sa = p->gather
                                  ? 0
                                  : kern_matmul_scratch_bytes(p->a.type, p->a.n_cols, n_batch),
                         sbb = kern_matmul_scratch_bytes(p->b.type, rank, n_batch);
            sb = sa > sb ? sa : sb;
            sb = sbb > sb ? sbb : sb;
            ax = (size_t)rank > ax ? (size_t)rank : ax;
            bx = (size_t)p->b.n_rows > bx ? (size_t)p->b.n_rows : bx;
        }
    *scratch_bytes = sb;
    *ax_floats = ax * (size_t)n_batch;
    *bx_floats = bx * (size_t)n_batch;
}
