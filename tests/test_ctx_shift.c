/*
 * test_ctx_shift.c - context shift (hearth_session_shift, kv_shift.c) and the
 * generation that uses it (hearth_gen_params.ctx_shift, generate.c), on
 * every KV cache type (F32, F16, Q8_0).
 *
 * A shift keeps positions [0, KEEP), forgets [KEEP, KEEP + DISCARD) and
 * moves the rest down by DISCARD, rotating their keys back by DISCARD
 * positions. What is checked:
 *  A. every layer and kv head of the conformance models (llama, qwen2,
 *     qwen3, gemma3 with its local and global bases, phi3) and of synthetic
 *     ones (partial rotary with LongRoPE factors and attn_factor; SmolLM3,
 *     whose NoPE layers' keys move unrotated; Gemma 4, whose window layers
 *     have their own head size and whose third layer reads the first's
 *     keys): kept
 *     positions untouched, values moved byte for byte, each moved key equal
 *     to the original one rotated by -DISCARD in double precision (this
 *     test's own RoPE), within the cache type's rounding;
 *  B. layer 0 (whose keys and values depend on the token and its position
 *     only) against a fresh session that decoded only the kept tokens: the
 *     forward pass's own rotation at the new positions;
 *  C. the next token's logits against that fresh session on one-layer
 *     synthetic models, where nothing else differs (a deeper model's moved
 *     entries were computed by text that saw the discarded tokens, so no
 *     fresh session reproduces them: the forgotten text), per cache type;
 *     and the same keys left unrotated (the mutation "skip re-rotation",
 *     applied by this test) must fail that bound;
 *  D. bad ranges, encoders, no-ops, a shift that only truncates, and what
 *     a later prompt may reuse: only the kept start (hearth_session_tokens'
 *     n_exact), through copies, truncations and hearth_generate;
 *  E. hearth_generate with ctx_shift: a greedy generation longer than the
 *     context equals a loop of hearth_decode and hearth_session_shift with
 *     llama-server's rule, also with speculative decoding, and stops at the
 *     context without it.
 * The conformance models are skipped with a message when ../shared is
 * absent; the synthetic ones always run.
 */
#include "hearth.h"
#include "model/session.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

enum { N_CTX = 64, N_TOK = 48, KEEP = 5, DISCARD = 20, MAX_HD = 256 };

static const hearth_kv_type kv_types[3] = {HEARTH_KV_F32, HEARTH_KV_F16, HEARTH_KV_Q8_0};
static const char *const kv_names[3] = {"f32", "f16", "q8_0"};
/* Per cache type, relative to the largest element of the key or value:
 * A: a moved key against the exact rotation of the stored one (F32: the
 * float angles' error; F16: half an ulp, Q8_0: half a quantization step,
 * amax / 254, of an element a rotation can make up to sqrt(2) times the
 * head's largest); B: a moved key or value against the fresh session's,
 * each rounded on its own (F16: an ulp; Q8_0: the shifted key was
 * quantized twice, up to a step and a half). C: absolute, on logits that
 * span about -10..10. Measured worst cases are printed at the end. */
static const double tol_a[3] = {2e-5, 8e-4, 6.5e-3};
static const double tol_b[3] = {2e-5, 1.5e-3, 1.6e-2};
static const double tol_c[3] = {5e-5, 1e-2, 0.1};

static char tmp_dir[64];
static int32_t ids[N_TOK + 1];
static double worst_a[3], worst_b[3], worst_c[3], least_unrotated[3] = {1e30, 1e30, 1e30};

static const char *tmp_path(const char *name) {
    static char paths[32][128];
    static int n;
    REQUIRE(n < 32);
    snprintf(paths[n], sizeof paths[0], "%s/%s", tmp_dir, name);
    return paths[n++];
}

static hearth_session *new_session(hearth_model *m, hearth_kv_type t, int n_ctx) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    sp.kv_type = t;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

/* Layer il, kv head g's cache (K tiles or V rows) of s. */
static uint8_t *head_cache(const hearth_session *s, void *cache, int il, int g) {
    return (uint8_t *)cache + session_kv_head(s, s->model->layers[il].kv_slot, g);
}

/* Layer il's head size (Gemma 4's window layers have their own) and the
 * bytes of one of its cache rows. */
static int layer_hd(const hearth_session *s, int il) { return s->model->layers[il].head_dim; }
static size_t row_bytes(const hearth_session *s, int il) {
    return kern_kv_row_bytes(s->kv_type, layer_hd(s, il));
}

static void load_key(const hearth_session *s, int il, int g, int p, float *out) {
    kern_kv_load_k(s->kv_type, head_cache(s, s->k_cache, il, g), layer_hd(s, il), p, out);
}

static const uint8_t *value_row(const hearth_session *s, int il, int g, int p) {
    return head_cache(s, s->v_cache, il, g) + (size_t)p * row_bytes(s, il);
}

static void load_value(const hearth_session *s, int il, int g, int p, float *out) {
    float buf[MAX_HD + 32];
    const int hd = layer_hd(s, il), padded = (hd + 31) / 32 * 32;
    kern_get(s->kv_type)
        ->to_float(value_row(s, il, g, p), buf, s->kv_type == KERN_Q8_0 ? padded : hd);
    memcpy(out, buf, (size_t)hd * sizeof *out);
}

static double max_abs(const float *x, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* This test's RoPE: x rotated by delta positions on layer il of s, in
 * double: theta_i = scale * delta * base^(-2i/n_rot) / factor_i, pairs
 * (2i, 2i+1) or (i, i + n_rot/2) for NEOX; dims past n_rot unchanged. */
static void ref_rotate(const hearth_session *s, int il, double delta, const float *x, double *y) {
    const hearth_model *m = s->model;
    const model_layer *l = &m->layers[il];
    const int n_rot = l->n_rot, half = n_rot / 2;
    const bool neox = m->arch->rope == ROPE_NEOX;
    for (int d = 0; d < l->head_dim; d++) y[d] = x[d];
    /* SmolLM3's every fourth layer has no RoPE: its keys carry no position */
    const bool nope = m->arch->nope_every && (il + 1) % m->arch->nope_every == 0;
    for (int i = 0; i < half && !nope; i++) {
        const double ff = s->rope_factors && l->rope_factors ? s->rope_factors[i] : 1.0;
        const double th =
            (double)l->rope_scale * delta * pow((double)l->rope_base, -2.0 * i / n_rot) / ff;
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        y[a] = x[a] * cos(th) - x[b] * sin(th);
        y[b] = x[a] * sin(th) + x[b] * cos(th);
    }
}

/* ---- A and B: the cache after a shift -------------------------------------- */

/* Each layer and head's keys and value rows of s at positions 0..n-1. */
typedef struct snapshot {
    float *keys; /* [n_layer][n_head_kv][n][head_dim] */
    uint8_t *values;
    int n;
} snapshot;

static snapshot take(const hearth_session *s, int n) {
    const model_hparams *hp = &s->model->hp;
    const size_t heads = (size_t)hp->n_layer * (size_t)hp->n_head_kv;
    snapshot sn = {.keys =
                       malloc(heads * (size_t)n * (size_t)model_max_head_dim(hp) * sizeof(float)),
                   .values = malloc(heads * (size_t)n * s->kv_row_bytes),
                   .n = n};
    REQUIRE(sn.keys && sn.values);
    for (int il = 0; il < hp->n_layer; il++)
        for (int g = 0; g < hp->n_head_kv; g++)
            for (int p = 0; p < n; p++) {
                const size_t at =
                    ((size_t)il * (size_t)hp->n_head_kv + (size_t)g) * (size_t)n + (size_t)p;
                load_key(s, il, g, p, sn.keys + at * (size_t)model_max_head_dim(hp));
                memcpy(sn.values + at * s->kv_row_bytes, value_row(s, il, g, p), row_bytes(s, il));
            }
    return sn;
}

static const float *snap_key(const hearth_session *s, const snapshot *sn, int il, int g, int p) {
    const model_hparams *hp = &s->model->hp;
    const size_t at = ((size_t)il * (size_t)hp->n_head_kv + (size_t)g) * (size_t)sn->n + (size_t)p;
    return sn->keys + at * (size_t)model_max_head_dim(hp);
}

static const uint8_t *snap_value(const hearth_session *s, const snapshot *sn, int il, int g,
                                 int p) {
    const size_t at =
        ((size_t)il * (size_t)s->model->hp.n_head_kv + (size_t)g) * (size_t)sn->n + (size_t)p;
    return sn->values + at * s->kv_row_bytes;
}

/* A: s (shifted) against its snapshot from before the shift. */
static void check_moved(const char *name, int t, const hearth_session *s, const snapshot *before) {
    const model_hparams *hp = &s->model->hp;
    float got[MAX_HD];
    double want[MAX_HD];
    int kept_bad = 0, value_bad = 0;
    double worst = 0;
    for (int il = 0; il < hp->n_layer; il++)
        for (int g = 0; g < hp->n_head_kv; g++)
            for (int q = 0; q < s->pos; q++) {
                const int p = q < KEEP ? q : q + DISCARD, hd = layer_hd(s, il);
                const float *orig = snap_key(s, before, il, g, p);
                load_key(s, il, g, q, got);
                value_bad += memcmp(value_row(s, il, g, q), snap_value(s, before, il, g, p),
                                    row_bytes(s, il)) != 0;
                if (q < KEEP) {
                    kept_bad += memcmp(got, orig, (size_t)hd * sizeof *got) != 0;
                    continue;
                }
                ref_rotate(s, il, -(double)DISCARD, orig, want);
                double e = 0;
                for (int d = 0; d < hd; d++) e = fmax(e, fabs(got[d] - want[d]));
                e /= max_abs(orig, hd);
                worst = e > worst || e != e ? e : worst;
            }
    CHECKF(kept_bad == 0, "%s %s: %d kept keys changed", name, kv_names[t], kept_bad);
    CHECKF(value_bad == 0, "%s %s: %d values not moved as they were", name, kv_names[t], value_bad);
    CHECKF(worst <= tol_a[t], "%s %s: a moved key is %.3g (relative) from the rotated original",
           name, kv_names[t], worst);
    worst_a[t] = fmax(worst_a[t], worst);
}

/* B: layer 0 of s (shifted) against fresh (the kept tokens only). */
static void check_layer0(const char *name, int t, const hearth_session *s,
                         const hearth_session *fresh) {
    const model_hparams *hp = &s->model->hp;
    const int hd = layer_hd(s, 0);
    float a[MAX_HD], b[MAX_HD];
    double worst = 0;
    for (int g = 0; g < hp->n_head_kv; g++)
        for (int q = 0; q < s->pos; q++)
            for (int kv = 0; kv < 2; kv++) {
                if (kv) {
                    load_value(s, 0, g, q, a);
                    load_value(fresh, 0, g, q, b);
                } else {
                    load_key(s, 0, g, q, a);
                    load_key(fresh, 0, g, q, b);
                }
                const double e = test_max_diff(a, b, (size_t)hd) / max_abs(b, hd);
                worst = e > worst || e != e ? e : worst;
            }
    CHECKF(worst <= tol_b[t], "%s %s: layer 0 is %.3g (relative) from a fresh session's", name,
           kv_names[t], worst);
    worst_b[t] = fmax(worst_b[t], worst);
}

/* The kept tokens: ids[0..KEEP) and ids[KEEP + DISCARD..N_TOK), then extra. */
static int kept_ids(int32_t *out, int extra) {
    int n = 0;
    for (int i = 0; i < N_TOK; i++)
        if (i < KEEP || i >= KEEP + DISCARD) out[n++] = ids[i];
    if (extra >= 0) out[n++] = extra;
    return n;
}

static void random_ids(hearth_model *m) {
    unsigned long long r = 0x5eed;
    const int nv = hearth_model_n_vocab(m);
    for (int i = 0; i <= N_TOK; i++) ids[i] = (int32_t)(test_rand_u64(&r) % (unsigned)(nv - 2)) + 1;
}

/* Parts A and B (layer0: B too) on one model file, every cache type. */
static void check_cache(const char *name, const char *path, bool layer0) {
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    random_ids(m);
    int32_t kept[N_TOK];
    const int n_kept = kept_ids(kept, -1);
    for (int t = 0; t < 3; t++) {
        hearth_session *s = new_session(m, kv_types[t], N_CTX);
        REQUIRE(hearth_decode(s, ids, N_TOK, NULL, false) == HEARTH_OK);
        snapshot before = take(s, N_TOK);
        REQUIRE(hearth_session_shift(s, KEEP, DISCARD) == HEARTH_OK);
        CHECK(hearth_session_pos(s) == N_TOK - DISCARD);
        CHECK(!memcmp(hearth_session_tokens(s, NULL), kept, (size_t)n_kept * sizeof *kept));
        check_moved(name, t, s, &before);
        if (layer0) {
            hearth_session *fresh = new_session(m, kv_types[t], N_CTX);
            REQUIRE(hearth_decode(fresh, kept, n_kept, NULL, false) == HEARTH_OK);
            check_layer0(name, t, s, fresh);
            hearth_session_free(fresh);
        }
        free(before.keys);
        free(before.values);
        hearth_session_free(s);
    }
    hearth_model_free(m);
}

/* ---- C: the next token's logits ---------------------------------------------- */

/* Rotates the moved keys of s by +DISCARD again (this test's rotation, then
 * stored as the cache stores): the cache a shift without re-rotation leaves. */
static void unrotate(hearth_session *s) {
    const model_hparams *hp = &s->model->hp;
    float k[MAX_HD];
    double y[MAX_HD];
    for (int il = 0; il < hp->n_layer; il++)
        for (int g = 0; g < hp->n_head_kv && !s->model->layers[il].kv_shared; g++)
            for (int q = KEEP; q < s->pos; q++) {
                load_key(s, il, g, q, k);
                ref_rotate(s, il, DISCARD, k, y);
                for (int d = 0; d < layer_hd(s, il); d++) k[d] = (float)y[d];
                kern_kv_store_k(s->kv_type, head_cache(s, s->k_cache, il, g), layer_hd(s, il), q,
                                k);
            }
}

static void check_logits(const char *name, const char *path) {
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    random_ids(m);
    const int nv = hearth_model_n_vocab(m);
    int32_t kept[N_TOK + 1];
    const int n_kept = kept_ids(kept, ids[N_TOK]);
    float *a = malloc((size_t)nv * 3 * sizeof *a), *b = a + nv, *c = b + nv;
    REQUIRE(a);
    for (int t = 0; t < 3; t++) {
        hearth_session *s = new_session(m, kv_types[t], N_CTX),
                       *fresh = new_session(m, kv_types[t], N_CTX),
                       *wrong = new_session(m, kv_types[t], N_CTX);
        REQUIRE(hearth_decode(s, ids, N_TOK, NULL, false) == HEARTH_OK);
        REQUIRE(hearth_session_shift(s, KEEP, DISCARD) == HEARTH_OK);
        CHECK(hearth_session_copy(wrong, s, hearth_session_pos(s)) == HEARTH_OK);
        unrotate(wrong);
        REQUIRE(hearth_decode(s, ids + N_TOK, 1, a, false) == HEARTH_OK);
        REQUIRE(hearth_decode(fresh, kept, n_kept, b, false) == HEARTH_OK);
        REQUIRE(hearth_decode(wrong, ids + N_TOK, 1, c, false) == HEARTH_OK);
        const double e = test_max_diff(a, b, (size_t)nv), u = test_max_diff(c, b, (size_t)nv);
        CHECKF(e <= tol_c[t], "%s %s: logits after the shift are %.3g from a fresh session's", name,
               kv_names[t], e);
        CHECKF(u > 4 * tol_c[t], "%s %s: unrotated keys give logits only %.3g away (no test)", name,
               kv_names[t], u);
        worst_c[t] = fmax(worst_c[t], e);
        least_unrotated[t] = fmin(least_unrotated[t], u);
        hearth_session_free(s);
        hearth_session_free(fresh);
        hearth_session_free(wrong);
    }
    free(a);
    hearth_model_free(m);
}

/* ---- synthetic models -------------------------------------------------------- */

static synth_params small(const char *arch, int n_layer) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.n_embd = 128;
    p.n_layer = n_layer;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.head_dim = 32;
    p.n_ff = 192;
    p.n_ctx = 512;
    p.seed = 7;
    return p;
}

static const char *write_synth(const char *name, const synth_params *p) {
    const char *path = tmp_path(name);
    REQUIRE(synth_write(path, p) == HEARTH_OK);
    return path;
}

/* Phi-3.5-style: partial rotary (16 of 32), LongRoPE long factors (the
 * session of N_CTX is longer than the original context 32) and
 * attn_factor 1.3. */
static synth_params longrope(int n_layer) {
    synth_params p = small("phi3", n_layer);
    p.n_rot = 16;
    p.factors = SYNTH_ROPE_LONGROPE;
    p.rope_orig_ctx = 32;
    p.rope_attn_factor = 1.3f;
    p.tied = true;
    return p;
}

/* A copy of a gemma3 file whose global layers take base 1e6 and linear
 * scaling by 4 (the sliding-window ones keep base 10000 and no scaling);
 * pattern > 0: that sliding window pattern (1: every layer global). */
static const char *gemma3_variant(const char *src, const char *name, int pattern) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    const char *dst = tmp_path(name);
    hearth_err err = gguf_open(src, &f);
    if (!err) err = gguf_writer_new(&w);
    if (!err) err = gguf_writer_copy_kv(w, f);
    for (int64_t i = 0; !err && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char tn[256];
        snprintf(tn, sizeof tn, "%.*s", (int)t->name.len, t->name.ptr);
        err = gguf_writer_add_tensor(w, tn, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
    }
    if (!err) err = gguf_writer_set_f32(w, "gemma3.rope.freq_base", 1e6f);
    if (!err) err = gguf_writer_set_str(w, "gemma3.rope.scaling.type", "linear");
    if (!err) err = gguf_writer_set_f32(w, "gemma3.rope.scaling.factor", 4.0f);
    if (!err && pattern > 0)
        err = gguf_writer_set_u32(w, "gemma3.attention.sliding_window_pattern", (uint32_t)pattern);
    if (!err) err = gguf_writer_write(w, dst);
    gguf_writer_free(w);
    gguf_close(f);
    REQUIRE(err == HEARTH_OK);
    return dst;
}

static void test_synthetic(void) {
    static const char *const archs[] = {"llama", "qwen2",   "qwen3",  "gemma3",
                                        "phi3",  "smollm3", "gemma4", "gemma3n"};
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        char name[64];
        synth_params p = small(archs[i], 1);
        snprintf(name, sizeof name, "%s-1.gguf", archs[i]);
        const char *one = write_synth(name, &p);
        check_logits(name, one);
        const bool smollm3 = !strcmp(archs[i], "smollm3"); /* layer 3 is its first NoPE one */
        p = small(archs[i], smollm3 ? 5 : 3);
        snprintf(name, sizeof name, "%s-%d.gguf", archs[i], p.n_layer);
        const char *three = write_synth(name, &p);
        check_cache(name, three, true);
        if (strcmp(archs[i], "gemma3") != 0) continue;
        check_logits("gemma3-1-global", gemma3_variant(one, "g1.gguf", 1));
        check_cache("gemma3-3-bases", gemma3_variant(three, "g3.gguf", 0), true);
    }
    synth_params p = longrope(1);
    check_logits("longrope-1", write_synth("longrope-1.gguf", &p));
    p = longrope(2);
    check_cache("longrope-2", write_synth("longrope-2.gguf", &p), true);
    p = small("llama", 1);
    p.factors = SYNTH_ROPE_FREQS_LONG;
    check_logits("rope_freqs-1", write_synth("freqs-1.gguf", &p));
}

/* ---- the conformance models ------------------------------------------------- */

static bool test_conformance(void) {
    static const char *const names[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3",
                                        "tiny-phi3"};
    int found = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        static const char *const types[] = {"F32", "Q8_0"};
        for (int k = 0; k < 2; k++) {
            char path[1024], name[64];
            snprintf(path, sizeof path, "%s/conformance/models/%s/%s.%s.gguf", HEARTH_SHARED_DIR,
                     names[i], names[i], types[k]);
            if (access(path, R_OK) != 0) continue;
            snprintf(name, sizeof name, "%s.%s", names[i], types[k]);
            check_cache(name, path, true);
            found++;
        }
    }
    return found > 0;
}

/* ---- D: arguments ------------------------------------------------------------- */

typedef struct collect_ids {
    int32_t ids[8];
    int n;
} collect_ids;

static bool collect_id(const hearth_token_event *ev, void *user) {
    collect_ids *c = user;
    if (ev->id >= 0 && c->n < 8) c->ids[c->n++] = ev->id;
    return true;
}

static void test_arguments(void) {
    synth_params p = small("llama", 2);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(write_synth("args.gguf", &p), NULL, &m) == HEARTH_OK);
    random_ids(m);
    hearth_session *s = new_session(m, HEARTH_KV_F32, N_CTX),
                   *t = new_session(m, HEARTH_KV_F32, N_CTX);
    REQUIRE(hearth_decode(s, ids, 20, NULL, false) == HEARTH_OK);
    const int bad[][2] = {{-1, 2}, {2, -1}, {21, 0}, {10, 11}, {0, 21}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(hearth_session_shift(s, bad[i][0], bad[i][1]) == HEARTH_ERR_INVALID_ARG,
               "keep %d discard %d", bad[i][0], bad[i][1]);
        CHECK(strstr(hearth_last_error(), "session_shift") != NULL);
        CHECK(hearth_session_pos(s) == 20);
    }
    CHECK(hearth_session_shift(s, 7, 0) == HEARTH_OK && hearth_session_pos(s) == 20);
    /* discarding the tail is a truncation: the same next logits, bit for bit */
    const int nv = hearth_model_n_vocab(m);
    float *a = malloc(2 * (size_t)nv * sizeof *a), *b = a + nv;
    REQUIRE(a);
    CHECK(hearth_session_copy(t, s, 20) == HEARTH_OK);
    CHECK(hearth_session_shift(s, 12, 8) == HEARTH_OK && hearth_session_pos(s) == 12);
    CHECK(hearth_session_truncate(t, 12) == HEARTH_OK);
    REQUIRE(hearth_decode(s, ids + 30, 1, a, false) == HEARTH_OK);
    REQUIRE(hearth_decode(t, ids + 30, 1, b, false) == HEARTH_OK);
    CHECK(!memcmp(a, b, (size_t)nv * sizeof *a));
    /* everything: an empty session */
    CHECK(hearth_session_shift(s, 0, 13) == HEARTH_OK && hearth_session_pos(s) == 0);
    /* only the kept start is exact: a prompt reuses no more of the cache */
    int n_exact = -1;
    REQUIRE(hearth_decode(s, ids, 20, NULL, false) == HEARTH_OK);
    hearth_session_tokens(s, &n_exact);
    CHECK(n_exact == 20);
    REQUIRE(hearth_session_shift(s, 3, 6) == HEARTH_OK);
    hearth_session_tokens(s, &n_exact);
    CHECK(n_exact == 3 && hearth_session_pos(s) == 14);
    REQUIRE(hearth_session_copy(t, s, 10) == HEARTH_OK);
    hearth_session_tokens(t, &n_exact);
    CHECK(n_exact == 3);
    REQUIRE(hearth_session_copy(t, s, 3) == HEARTH_OK);
    hearth_session_tokens(t, &n_exact);
    CHECK(n_exact == 3);
    REQUIRE(hearth_decode(t, ids + 30, 4, NULL, false) == HEARTH_OK);
    hearth_session_tokens(t, &n_exact);
    CHECK(n_exact == 7);
    int32_t again[15];
    memcpy(again, hearth_session_tokens(s, NULL), 14 * sizeof *again);
    again[14] = ids[40];
    hearth_sampling greedy = hearth_sampling_default_params();
    greedy.temperature = 0;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(m, &greedy, &smp) == HEARTH_OK);
    hearth_gen_params gp = {.max_tokens = 1};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, smp, again, 15, &gp, NULL, NULL, &r) == HEARTH_OK);
    CHECKF(r.n_cached == 3 && r.n_prompt == 12, "after a shift %d cached, %d evaluated", r.n_cached,
           r.n_prompt);
    hearth_session_tokens(s, &n_exact);
    CHECK(n_exact == hearth_session_pos(s));
    REQUIRE(hearth_session_shift(s, 2, 6) == HEARTH_OK);
    CHECK(hearth_session_truncate(s, 2) == HEARTH_OK);
    hearth_session_tokens(s, &n_exact);
    CHECK(n_exact == 2);
    /* a session whose exact start is the whole prompt still evaluates its
     * last token: the logits it holds are those of later text */
    CHECK(hearth_session_truncate(s, 0) == HEARTH_OK);
    REQUIRE(hearth_decode(s, ids, 20, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_shift(s, 10, 5) == HEARTH_OK);
    REQUIRE(hearth_decode(s, ids + 30, 1, NULL, false) == HEARTH_OK);
    gp.max_tokens = 4;
    collect_ids got = {0}, want = {0};
    REQUIRE(hearth_generate(s, smp, ids, 10, &gp, collect_id, &got, &r) == HEARTH_OK);
    CHECKF(r.n_cached == 9 && r.n_prompt == 1, "kept prompt: %d cached, %d evaluated", r.n_cached,
           r.n_prompt);
    CHECK(hearth_session_truncate(t, 0) == HEARTH_OK);
    REQUIRE(hearth_generate(t, smp, ids, 10, &gp, collect_id, &want, &r) == HEARTH_OK);
    CHECK(got.n == 4 && want.n == 4 && !memcmp(got.ids, want.ids, sizeof got.ids));
    hearth_sampler_free(smp);
    free(a);
    hearth_session_free(s);
    hearth_session_free(t);
    hearth_model_free(m);
    /* an encoder has no context to shift */
    p = small("bert", 1);
    REQUIRE(hearth_model_load(write_synth("bert.gguf", &p), NULL, &m) == HEARTH_OK);
    s = new_session(m, HEARTH_KV_F32, N_CTX);
    CHECK(hearth_session_shift(s, 0, 0) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "encoder") != NULL);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* ---- E: generation --------------------------------------------------------- */

enum { G_CTX = 32, G_PROMPT = 10, G_MAX = 100 };

typedef struct collected {
    int32_t ids[G_MAX];
    int n;
} collected;

static bool collect(const hearth_token_event *ev, void *user) {
    collected *c = user;
    if (ev->id >= 0 && c->n < G_MAX) c->ids[c->n++] = ev->id;
    return true;
}

/* Greedy tokens of the prompt, EOS banned, ctx_shift as asked. */
static hearth_gen_result generate(hearth_model *m, hearth_kv_type t, const hearth_gen_params *gp,
                                  collected *out) {
    hearth_sampling sp = hearth_sampling_default_params();
    hearth_logit_bias ban = {.id = hearth_token_eos(m), .bias = -INFINITY};
    sp.temperature = 0;
    sp.logit_bias = &ban;
    sp.n_logit_bias = 1;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(m, &sp, &smp) == HEARTH_OK);
    hearth_session *s = new_session(m, t, G_CTX);
    hearth_gen_result r = {0};
    out->n = 0;
    CHECK(hearth_generate(s, smp, ids, G_PROMPT, gp, collect, out, &r) == HEARTH_OK);
    CHECK(hearth_session_pos(s) <= G_CTX);
    hearth_session_free(s);
    hearth_sampler_free(smp);
    return r;
}

/* The same by hand: decode, argmax without EOS, and when the next token
 * does not fit, hearth_session_shift(keep, discard or (pos - keep) / 2). */
static void by_hand(hearth_model *m, hearth_kv_type t, int keep, int discard, collected *out) {
    const int nv = hearth_model_n_vocab(m), eos = hearth_token_eos(m);
    float *lg = malloc((size_t)nv * sizeof *lg);
    REQUIRE(lg);
    hearth_session *s = new_session(m, t, G_CTX);
    REQUIRE(hearth_decode(s, ids, G_PROMPT, lg, false) == HEARTH_OK);
    for (out->n = 0; out->n < G_MAX;) {
        int best = eos == 0 ? 1 : 0;
        for (int i = 0; i < nv; i++)
            if (i != eos && lg[i] > lg[best]) best = i;
        out->ids[out->n++] = best;
        if (out->n == G_MAX) break;
        if (hearth_session_pos(s) == G_CTX) {
            const int pos = hearth_session_pos(s);
            CHECK(hearth_session_shift(s, keep, discard ? discard : (pos - keep) / 2) == HEARTH_OK);
        }
        REQUIRE(hearth_decode(s, &out->ids[out->n - 1], 1, lg, false) == HEARTH_OK);
    }
    hearth_session_free(s);
    free(lg);
}

static void test_generation(void) {
    synth_params p = small("qwen2", 2);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(write_synth("gen.gguf", &p), NULL, &m) == HEARTH_OK);
    random_ids(m);
    for (int t = 0; t < 3; t++) {
        collected got, want;
        hearth_gen_params gp = {.max_tokens = G_MAX};
        hearth_gen_result r = generate(m, kv_types[t], &gp, &got);
        /* the last token is sampled from the full context's logits */
        CHECKF(r.finish == HEARTH_FINISH_LENGTH && r.n_gen == G_CTX - G_PROMPT + 1 &&
                   r.n_discarded == 0,
               "%s without shifting: finish %d after %d tokens", kv_names[t], r.finish, r.n_gen);
        for (int keep = -1; keep <= 4; keep += 5) {
            gp.ctx_shift = true;
            gp.n_keep = keep;
            r = generate(m, kv_types[t], &gp, &got);
            CHECKF(r.finish == HEARTH_FINISH_LENGTH && r.n_gen == G_MAX && r.n_discarded > 0,
                   "%s keep %d: finish %d after %d tokens, %d discarded", kv_names[t], keep,
                   r.finish, r.n_gen, r.n_discarded);
            by_hand(m, kv_types[t], keep < 0 ? G_PROMPT : keep, 0, &want);
            CHECKF(got.n == G_MAX && !memcmp(got.ids, want.ids, sizeof want.ids),
                   "%s keep %d: the generation is not the loop of decode and shift", kv_names[t],
                   keep);
            /* speculative decoding (prompt lookup) changes nothing */
            gp.spec_n_max = 3;
            gp.spec_ngram_n = 2;
            collected spec;
            generate(m, kv_types[t], &gp, &spec);
            CHECKF(spec.n == G_MAX && !memcmp(spec.ids, got.ids, sizeof got.ids),
                   "%s keep %d: speculative decoding changed the shifted generation", kv_names[t],
                   keep);
            /* and a draft model's (the same model: every proposal drawn) */
            gp.spec_ngram_n = 0;
            gp.draft = new_session(m, kv_types[t], G_CTX);
            r = generate(m, kv_types[t], &gp, &spec);
            CHECKF(spec.n == G_MAX && !memcmp(spec.ids, got.ids, sizeof got.ids) &&
                       r.n_accepted > G_MAX / 2,
                   "%s keep %d: a draft changed the shifted generation (%d of %d accepted)",
                   kv_names[t], keep, r.n_accepted, r.n_drafted);
            hearth_session_free(gp.draft);
            gp.draft = NULL;
            gp.spec_n_max = 0;
        }
        /* llama-server's n_discard: each shift forgets that many */
        gp = (hearth_gen_params){
            .max_tokens = G_MAX, .ctx_shift = true, .n_keep = 4, .n_discard = 3};
        r = generate(m, kv_types[t], &gp, &got);
        by_hand(m, kv_types[t], 4, 3, &want);
        CHECKF(r.n_gen == G_MAX && r.n_discarded > 0 && r.n_discarded % 3 == 0 &&
                   !memcmp(got.ids, want.ids, sizeof want.ids),
               "%s n_discard 3: %d discarded, or not the loop of decode and shift", kv_names[t],
               r.n_discarded);
        /* more than there is: all but the last token after the kept ones */
        gp.n_discard = 1 << 20;
        r = generate(m, kv_types[t], &gp, &got);
        by_hand(m, kv_types[t], 4, G_CTX - 4 - 1, &want);
        CHECKF(r.n_gen == G_MAX && r.n_discarded % (G_CTX - 5) == 0 &&
                   !memcmp(got.ids, want.ids, sizeof want.ids),
               "%s n_discard clamped: %d discarded", kv_names[t], r.n_discarded);
    }
    hearth_model_free(m);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hearth_ctx_shift_XXXXXX");
    REQUIRE(mkdtemp(tmp_dir));
    test_arguments();
    test_generation();
    test_synthetic();
    if (!test_conformance())
        printf("test_ctx_shift: %s/conformance/models not found; conformance models skipped\n",
               HEARTH_SHARED_DIR);
    for (int t = 0; t < 3; t++)
        printf("%s: A worst %.3g (bound %.3g), B worst %.3g (%.3g), C worst %.3g (%.3g), "
               "unrotated at least %.3g\n",
               kv_names[t], worst_a[t], tol_a[t], worst_b[t], tol_b[t], worst_c[t], tol_c[t],
               least_unrotated[t]);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmp_dir);
    if (system(rm) != 0) printf("could not remove %s\n", tmp_dir);
    return test_done("test_ctx_shift");
}
