/*
 * test_lora.c - LoRA adapters applied at inference time (lora.c, forward.c)
 * against their definition, merging: W' = W + s B A computed here in double
 * from the scalar dequantization of W, A and B, written as an F32 model,
 * whose logits the adapter run must reproduce. Over every architecture,
 * F32 and quantized bases, F32/F16/BF16/Q8_0 adapters, odd ranks, alpha
 * present or not, several adapters at once with their own scales, token
 * embeddings, both numeric modes; scale 0 gives the base logits bit for
 * bit; a batch equals token by token; and every malformed adapter fails
 * the load with its own error (never a crash). The tiny models of
 * ../shared/conformance are used too when present.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <unistd.h>

enum { N_TOK = 20, N_CTX = 64 };

static char tmp_dir[64];
static int n_files;
static char files[512][160];

/* A path in the scratch directory, remembered for the clean-up. */
static const char *tmp(const char *name) {
    REQUIRE(n_files < 512);
    snprintf(files[n_files], sizeof files[0], "%s/%s", tmp_dir, name);
    return files[n_files++];
}

/* ---- the reference: merging ---- */

static float *dequant(const gguf_tensor *t) {
    const int64_t cols = t->ne[0], rows = t->n_elements / t->ne[0];
    float *f = malloc((size_t)t->n_elements * sizeof *f);
    REQUIRE(f);
    const size_t rb = kern_row_bytes((kern_type)t->type, cols);
    for (int64_t r = 0; r < rows; r++)
        kern_ref_dequantize_row((kern_type)t->type, (const uint8_t *)t->data + (size_t)r * rb,
                                f + r * cols, cols);
    return f;
}

static const gguf_tensor *find2(const gguf_file *f, const gguf_str base, const char *suffix) {
    char name[200];
    snprintf(name, sizeof name, "%.*s%s", (int)base.len, base.ptr, suffix);
    return gguf_find_tensor(f, name);
}

/* W += s B A for every adapter that names W (token_embd: A transposed). */
static void merge_into(float *w, const gguf_tensor *t, gguf_file *const *ad, const float *scales,
                       int n_ad) {
    const bool embd = gguf_str_eq(t->name, "token_embd.weight");
    const int64_t n_in = t->ne[0], n_out = t->ne[1];
    for (int k = 0; k < n_ad; k++) {
        const gguf_tensor *ta = find2(ad[k], t->name, ".lora_a"),
                          *tb = find2(ad[k], t->name, ".lora_b");
        if (!ta || !tb) continue;
        float alpha = 0.0f;
        gguf_get_f32(ad[k], "adapter.lora.alpha", &alpha);
        const int64_t r = tb->ne[0];
        const double s = alpha != 0.0f ? (double)scales[k] * alpha / (double)r : scales[k];
        float *a = dequant(ta), *b = dequant(tb);
        for (int64_t o = 0; o < n_out; o++)
            for (int64_t i = 0; i < n_in; i++) {
                double acc = 0.0;
                /* a and b: the adapter's tensors, dequantized whole */
                // NOLINTBEGIN(clang-analyzer-core.UndefinedBinaryOperatorResult)
                for (int64_t q = 0; q < r; q++)
                    acc += embd ? (double)b[i * r + q] * a[o * r + q]
                                : (double)b[o * r + q] * a[q * n_in + i];
                w[o * n_in + i] = (float)((double)w[o * n_in + i] + s * acc);
                // NOLINTEND(clang-analyzer-core.UndefinedBinaryOperatorResult)
            }
        free(a);
        free(b);
    }
}

/* `out`: the base model with every adapted matrix replaced by its merged F32
 * (all 2-D weights dequantized to F32 when `all_f32`). */
static void write_merged(const char *base, const char *const *adapters, const float *scales,
                         int n_ad, bool all_f32, const char *out) {
    gguf_file *f, *ad[4] = {0};
    REQUIRE(n_ad <= 4 && gguf_open(base, &f) == HEARTH_OK);
    for (int k = 0; k < n_ad; k++) REQUIRE(gguf_open(adapters[k], &ad[k]) == HEARTH_OK);
    gguf_writer *w;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_copy_kv(w, f) == HEARTH_OK);
    float *bufs[512];
    int n_bufs = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[200];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        bool adapted = false;
        for (int k = 0; k < n_ad; k++) adapted = adapted || find2(ad[k], t->name, ".lora_a");
        if (t->n_dims == 2 && (adapted || all_f32)) {
            REQUIRE(n_bufs < 512);
            float *m = bufs[n_bufs++] = dequant(t);
            merge_into(m, t, ad, scales, n_ad);
            REQUIRE(gguf_writer_add_tensor(w, name, KERN_F32, 2, t->ne, m,
                                           (uint64_t)t->n_elements * 4) == HEARTH_OK);
        } else {
            REQUIRE(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data,
                                           t->n_bytes) == HEARTH_OK);
        }
    }
    REQUIRE(gguf_writer_write(w, out) == HEARTH_OK);
    gguf_writer_free(w);
    for (int k = 0; k < n_bufs; k++) free(bufs[k]);
    for (int k = 0; k < n_ad; k++) gguf_close(ad[k]);
    gguf_close(f);
}

/* ---- running ---- */

static int32_t ids[N_TOK];

/* All N_TOK rows of logits of `path` with adapters, or NULL with the error
 * in *err. one_by_one: hearth_decode token by token instead of one batch. */
static float *run(const char *path, const hearth_lora *loras, int n_loras, bool one_by_one,
                  hearth_err *err_out, int *n_vocab) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    mp.loras = loras;
    mp.n_loras = n_loras;
    hearth_model *m = NULL;
    hearth_err err = hearth_model_load(path, &mp, &m);
    if (err_out) *err_out = err;
    if (err) return NULL;
    REQUIRE(hearth_model_n_loras(m) == n_loras);
    const int nv = hearth_model_n_vocab(m);
    hearth_session_params sp = hearth_session_default_params();
    /* F32: adapters and merged weights are compared at float rounding, which
     * an F16 cache's rounding of K and V would magnify */
    sp.kv_type = HEARTH_KV_F32;
    sp.n_ctx = N_CTX;
    hearth_session *s;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    float *out = malloc((size_t)N_TOK * (size_t)nv * sizeof *out);
    REQUIRE(out);
    if (one_by_one)
        for (int t = 0; t < N_TOK; t++)
            REQUIRE(hearth_decode(s, ids + t, 1, out + (size_t)t * nv, false) == HEARTH_OK);
    else
        REQUIRE(hearth_decode(s, ids, N_TOK, out, true) == HEARTH_OK);
    hearth_session_free(s);
    hearth_model_free(m);
    *n_vocab = nv;
    return out;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs((double)a[i]) > m ? fabs((double)a[i]) : m;
    return m;
}

/* Relative tolerance (of the largest logit) of an adapter run against the
 * merged model with an F32 base. The products round their input to the
 * adapter's activation type, as llama.cpp's do: F32 keeps it (what is left
 * is summation order; gemma3's GELU goes through an F16 table, which
 * amplifies it), F16 rounds to 11 bits, BF16 to 8, Q8_0 to 8 per block of
 * 32 - and an update as large as W x (the test's) carries that through
 * every layer. */
static double type_tol(kern_type t) {
    switch (t) {
    case KERN_F32: return 1e-4;
    case KERN_F16: return 2e-3;
    case KERN_BF16: return 2.5e-2;
    default: return 1.5e-2;
    }
}

/* The adapters' run against the merged model: with an F32 base the two
 * differ by rounding only (rel_tol of the largest logit); with a quantized
 * base, also by about the base's own quantization error (the quantized
 * base against its dequantized F32 copy; the adapters move the activations
 * that error comes from, hence a factor). The adapters must also move the
 * logits well beyond the tolerance, so that a wrong scale, a dropped
 * product or a transposed factor cannot hide in it. */
static void check_merge(const char *what, const char *base, const char *const *adapters,
                        const float *scales, int n_ad, bool quant_base, double rel_tol) {
    const char *merged = tmp("merged.gguf"), *deq = tmp("deq.gguf");
    write_merged(base, adapters, scales, n_ad, quant_base, merged);
    hearth_lora loras[4];
    for (int k = 0; k < n_ad; k++)
        loras[k] = (hearth_lora){.path = adapters[k], .scale = scales[k]};
    int nv = 0;
    hearth_err err;
    float *la = run(base, loras, n_ad, false, &err, &nv),
          *lm = run(merged, NULL, 0, false, NULL, &nv), *lb = run(base, NULL, 0, false, NULL, &nv);
    if (!la) {
        CHECKF(0, "%s: %s", what, hearth_last_error());
        free(lm);
        free(lb);
        return;
    }
    const size_t n = (size_t)N_TOK * (size_t)nv;
    const double scale = max_abs(lm, n), d = test_max_diff(la, lm, n),
                 moved = test_max_diff(lb, lm, n);
    double tol = rel_tol * scale;
    if (quant_base) {
        write_merged(base, NULL, NULL, 0, true, deq);
        float *ld = run(deq, NULL, 0, false, NULL, &nv);
        tol += 3.0 * test_max_diff(lb, ld, n);
        free(ld);
    }
    CHECKF(d <= tol, "%s: adapters vs merged differ by %.3g (tolerance %.3g, max |logit| %.3g)",
           what, d, tol, scale);
    CHECKF(moved > (quant_base ? 5 : 10) * tol,
           "%s: the adapters move the logits by %.3g only (tolerance %.3g)", what, moved, tol);
    if (getenv("TEST_LORA_VERBOSE"))
        printf("%-44s diff %.3g tol %.3g moved %.3g max %.3g\n", what, d, tol, moved, scale);
    free(la);
    free(lm);
    free(lb);
    unlink(merged);
    unlink(deq);
}

static const char *synth_model(const char *name, const char *arch, kern_type type, bool tied) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.type = type;
    p.tied = tied;
    p.n_ctx = N_CTX;
    if (!strcmp(arch, "qwen3")) p.n_head = 8; /* q dim 512 != n_embd */
    if (!strcmp(arch, "gemma3")) p.n_layer = 3;
    if (!strcmp(arch, "qwen35")) p.n_layer = 4; /* Gated DeltaNet on 0-2, attention on 3 */
    const char *path = tmp(name);
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    return path;
}

static const char *synth_adapter(const char *name, const char *base, kern_type type, int rank,
                                 float alpha, const char *targets, uint64_t seed) {
    synth_lora_params lp = synth_lora_default_params();
    lp.type = type;
    lp.rank = rank;
    lp.alpha = alpha;
    lp.targets = targets;
    lp.seed = seed;
    const char *path = tmp(name);
    const hearth_err err = synth_lora_write(path, base, &lp);
    CHECKF(err == HEARTH_OK, "%s: %s", name, hearth_last_error());
    return path;
}

/* ---- against merging ---- */

static void test_architectures(void) {
    static const char *const arches[] = {"llama", "qwen2", "qwen3",        "gemma3",
                                         "phi3",  "lfm2",  "granitehybrid"};
    static const struct {
        kern_type base, ad;
        int rank;
        float alpha;
    } cases[] = {
        {KERN_F32, KERN_F32, 5, 10.0f},  {KERN_F32, KERN_F16, 8, 0.0f},
        {KERN_F32, KERN_BF16, 3, 6.0f},  {KERN_F32, KERN_Q8_0, 32, 16.0f},
        {KERN_Q8_0, KERN_F16, 8, 16.0f}, {KERN_Q4_K, KERN_F32, 4, 4.0f},
    };
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            char what[128];
            const bool tied = a == 1; /* qwen2 tied, as its real files */
            snprintf(what, sizeof what, "%s %s base, %s adapter rank %d%s", arches[a],
                     kern_type_get(cases[c].base)->name, kern_type_get(cases[c].ad)->name,
                     cases[c].rank, cases[c].alpha != 0.0f ? "" : " no alpha");
            const char *base = synth_model("base.gguf", arches[a], cases[c].base, tied);
            const char *ad = synth_adapter("ad.gguf", base, cases[c].ad, cases[c].rank,
                                           cases[c].alpha, NULL, 100 + c);
            const double tol = type_tol(cases[c].ad);
            const float scale[1] = {c % 2 ? 0.75f : 1.0f};
            check_merge(what, base, &ad, scale, 1, cases[c].base != KERN_F32, tol);
            unlink(ad);
            unlink(base);
        }
}

/* Qwen3.5: adapters on every Gated DeltaNet product (attn_qkv, attn_gate, ssm_beta, ssm_alpha,
 * ssm_out) and the gated attention's. Its random model is sensitive (logits near 9, rounding
 * amplified through the state): an F16 or quantized adapter's rounding of its input, or a
 * quantized base's error, comes near the merge's margin, so the check takes F32 on F32, where
 * only summation order is left. */
static void test_qwen35(void) {
    const char *base = synth_model("q35.gguf", "qwen35", KERN_F32, false);
    const char *ad = synth_adapter("q35-ad.gguf", base, KERN_F32, 5, 10.0f, NULL, 30);
    const float scale[1] = {1.0f};
    check_merge("qwen35 f32 base, f32 adapter rank 5", base, &ad, scale, 1, false,
                type_tol(KERN_F32));
    unlink(ad);
    unlink(base);
}

/* Two adapters on overlapping weights with their own scales, one negative. */
static void test_two_adapters(void) {
    const char *base = synth_model("two.gguf", "llama", KERN_F32, false);
    const char *ads[2] = {
        synth_adapter("two-a.gguf", base, KERN_F32, 8, 16.0f, "attn_q,attn_v,ffn_down,output", 1),
        synth_adapter("two-b.gguf", base, KERN_F32, 4, 0.0f, "attn_q,ffn_up,token_embd", 2)};
    const float scales[2] = {0.6f, -1.3f};
    check_merge("two adapters", base, ads, scales, 2, false, type_tol(KERN_F32));
    /* the same file twice is two adapters: scales add up */
    const char *same[2] = {ads[0], ads[0]};
    const float halves[2] = {0.25f, 0.5f};
    check_merge("one adapter twice", base, same, halves, 2, false, type_tol(KERN_F32));
}

/* Scale 0 is the base, bit for bit; batch = token by token, with adapters;
 * exact mode (llama.cpp's arithmetic) against merging too. */
static void test_identities(void) {
    const char *base = synth_model("id.gguf", "gemma3", KERN_Q8_0, false);
    const char *ad = synth_adapter("id-ad.gguf", base, KERN_F16, 8, 16.0f, NULL, 3);
    int nv = 0;
    const hearth_lora off = {.path = ad, .scale = 0.0f}, on = {.path = ad, .scale = 1.0f};
    float *b = run(base, NULL, 0, false, NULL, &nv), *z = run(base, &off, 1, false, NULL, &nv);
    REQUIRE(b && z);
    const size_t n = (size_t)N_TOK * (size_t)nv;
    CHECK(memcmp(b, z, n * sizeof *b) == 0);
    float *x = run(base, &on, 1, false, NULL, &nv), *y = run(base, &on, 1, true, NULL, &nv);
    REQUIRE(x && y);
    CHECKF(memcmp(x, y, n * sizeof *x) == 0, "batch vs one by one: %.3g", test_max_diff(x, y, n));
    CHECK(test_max_diff(x, b, n) > 0.1);
    free(b);
    free(z);
    free(x);
    free(y);
    kern_set_exact(true);
    const char *base32 = synth_model("id32.gguf", "phi3", KERN_F32, false);
    const char *ad32 = synth_adapter("id32-ad.gguf", base32, KERN_F32, 8, 16.0f, NULL, 4);
    const float one = 1.0f;
    check_merge("exact mode phi3", base32, &ad32, &one, 1, false, type_tol(KERN_F32));
    kern_set_exact(false);
}

/* Embeddings go through the same products. */
static void test_embed(void) {
    const char *base = synth_model("emb.gguf", "qwen3", KERN_F32, true);
    const char *ad = synth_adapter("emb-ad.gguf", base, KERN_F32, 8, 16.0f, NULL, 5);
    float v[2][256];
    for (int k = 0; k < 2; k++) {
        hearth_model_params mp = hearth_model_default_params();
        const hearth_lora l = {.path = ad, .scale = 1.0f};
        mp.loras = k ? &l : NULL;
        mp.n_loras = k;
        hearth_model *m;
        hearth_session *s;
        REQUIRE(hearth_model_load(base, &mp, &m) == HEARTH_OK && hearth_model_n_embd(m) == 256);
        REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
        REQUIRE(hearth_embed(s, ids, N_TOK, HEARTH_POOL_MEAN, true, v[k]) == HEARTH_OK);
        hearth_session_free(s);
        hearth_model_free(m);
    }
    CHECK(test_max_diff(v[0], v[1], 256) > 1e-3);
}

/* ---- malformed adapters ---- */

typedef struct bad_meta {
    const char *type, *adapter_type, *arch;
    bool alpha_string, alpha_nan;
} bad_meta;

/* An adapter for the synthetic llama base (n_embd 256, 2 kv heads of 64,
 * n_ff 512) with the given metadata and tensors (name, type, ne0, ne1,
 * ne2; NULL name ends the list). */
typedef struct bad_tensor {
    const char *name;
    kern_type type;
    int64_t ne0, ne1, ne2;
} bad_tensor;

static const char *write_bad(const char *name, const bad_meta *m, const bad_tensor *ts) {
    gguf_writer *w;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    if (m->type) gguf_writer_set_str(w, "general.type", m->type);
    if (m->adapter_type) gguf_writer_set_str(w, "adapter.type", m->adapter_type);
    if (m->arch) gguf_writer_set_str(w, "general.architecture", m->arch);
    if (m->alpha_string) gguf_writer_set_str(w, "adapter.lora.alpha", "16");
    if (m->alpha_nan) gguf_writer_set_f32(w, "adapter.lora.alpha", NAN);
    static uint8_t zeros[1 << 22];
    for (const bad_tensor *t = ts; t->name; t++) {
        const int64_t ne[3] = {t->ne0, t->ne1, t->ne2 ? t->ne2 : 1};
        const uint64_t bytes = kern_row_bytes(t->type, t->ne0) * (uint64_t)t->ne1 * (uint64_t)ne[2];
        REQUIRE(bytes <= sizeof zeros);
        REQUIRE(gguf_writer_add_tensor(w, t->name, (uint32_t)t->type, t->ne2 ? 3 : 2, ne, zeros,
                                       bytes) == HEARTH_OK);
    }
    const char *path = tmp(name);
    REQUIRE(gguf_writer_write(w, path) == HEARTH_OK);
    gguf_writer_free(w);
    return path;
}

static void expect_fail(const char *base, const char *adapter, float scale, hearth_err code,
                        const char *needle) {
    const hearth_lora l = {.path = adapter, .scale = scale};
    int nv;
    hearth_err err;
    float *out = run(base, &l, 1, false, &err, &nv);
    const char *msg = hearth_last_error();
    CHECKF(!out && err == code && strstr(msg, needle), "%s: expected %s with '%s', got %s: %s",
           adapter, hearth_err_name(code), needle, hearth_err_name(err), out ? "(loaded)" : msg);
    free(out);
}

static void test_errors(void) {
    const char *base = synth_model("err.gguf", "llama", KERN_F32, false);
    const char *tied = synth_model("err-tied.gguf", "llama", KERN_F32, true);
    const bad_meta ok = {.type = "adapter", .adapter_type = "lora", .arch = "llama"};
    const bad_tensor q_ok[] = {{"blk.0.attn_q.weight.lora_a", KERN_F32, 256, 8, 0},
                               {"blk.0.attn_q.weight.lora_b", KERN_F32, 8, 256, 0},
                               {0}};
    /* the well-formed reference loads */
    int nv;
    const hearth_lora good = {.path = write_bad("good.gguf", &ok, q_ok), .scale = 1.0f};
    float *out = run(base, &good, 1, false, NULL, &nv);
    CHECKF(out != NULL, "good adapter: %s", hearth_last_error());
    free(out);
    struct {
        const char *file;
        bad_meta meta;
        bad_tensor t[3];
        hearth_err code;
        const char *needle;
    } cases[] = {
        {"arch.gguf",
         {"adapter", "lora", "qwen2", false, false},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_FORMAT,
         "architecture 'qwen2'"},
        {"no-type.gguf",
         {NULL, "lora", "llama", false, false},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_FORMAT,
         "general.type"},
        {"model-type.gguf",
         {"model", "lora", "llama", false, false},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_FORMAT,
         "not 'adapter'"},
        {"cvec.gguf",
         {"adapter", "control_vector", "llama", false, false},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_UNSUPPORTED,
         "adapter.type"},
        {"no-arch.gguf",
         {"adapter", "lora", NULL, false, false},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_FORMAT,
         "general.architecture"},
        {"alpha-str.gguf",
         {"adapter", "lora", "llama", true, false},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_FORMAT,
         "alpha is not a float"},
        {"alpha-nan.gguf",
         {"adapter", "lora", "llama", false, true},
         {q_ok[0], q_ok[1]},
         HEARTH_ERR_FORMAT,
         "not finite"},
        {"a-only.gguf", ok, {q_ok[0]}, HEARTH_ERR_FORMAT, "no matching"},
        {"b-only.gguf", ok, {q_ok[1]}, HEARTH_ERR_FORMAT, "no matching"},
        {"n-in.gguf",
         ok,
         {{"blk.0.attn_q.weight.lora_a", KERN_F32, 128, 8, 0}, q_ok[1]},
         HEARTH_ERR_FORMAT,
         "wrong base model"},
        {"n-out.gguf",
         ok,
         {q_ok[0], {"blk.0.attn_k.weight.lora_b", KERN_F32, 8, 256, 0}},
         HEARTH_ERR_FORMAT,
         "no matching"},
        {"n-out2.gguf",
         ok,
         {{"blk.0.attn_k.weight.lora_a", KERN_F32, 256, 8, 0},
          {"blk.0.attn_k.weight.lora_b", KERN_F32, 8, 256, 0}},
         HEARTH_ERR_FORMAT,
         "wrong base model"},
        {"rank-mismatch.gguf",
         ok,
         {q_ok[0], {"blk.0.attn_q.weight.lora_b", KERN_F32, 4, 256, 0}},
         HEARTH_ERR_FORMAT,
         "has rank 8 but"},
        {"rank-huge.gguf",
         ok,
         {{"blk.0.attn_k.weight.lora_a", KERN_F32, 256, 200, 0},
          {"blk.0.attn_k.weight.lora_b", KERN_F32, 200, 128, 0}},
         HEARTH_ERR_FORMAT,
         "rank 1..128"},
        {"unknown.gguf",
         ok,
         {{"blk.0.attn_x.weight.lora_a", KERN_F32, 256, 8, 0},
          {"blk.0.attn_x.weight.lora_b", KERN_F32, 8, 256, 0}},
         HEARTH_ERR_FORMAT,
         "not a weight matrix"},
        {"layer.gguf",
         ok,
         {{"blk.2.attn_q.weight.lora_a", KERN_F32, 256, 8, 0},
          {"blk.2.attn_q.weight.lora_b", KERN_F32, 8, 256, 0}},
         HEARTH_ERR_FORMAT,
         "not a weight matrix"},
        {"leading-zero.gguf",
         ok,
         {{"blk.01.attn_q.weight.lora_a", KERN_F32, 256, 8, 0},
          {"blk.01.attn_q.weight.lora_b", KERN_F32, 8, 256, 0}},
         HEARTH_ERR_FORMAT,
         "not a weight matrix"},
        {"norm-target.gguf",
         ok,
         {{"blk.0.attn_norm.weight.lora_a", KERN_F32, 256, 8, 0},
          {"blk.0.attn_norm.weight.lora_b", KERN_F32, 8, 256, 0}},
         HEARTH_ERR_FORMAT,
         "not a weight matrix"},
        {"type.gguf",
         ok,
         {{"blk.0.attn_q.weight.lora_a", (kern_type)26, 256, 8, 0}, q_ok[1]},
         HEARTH_ERR_UNSUPPORTED,
         "type i32"},
        {"type-iq2.gguf", /* a type GGML knows that Hearth does not run */
         ok,
         {{"blk.0.attn_q.weight.lora_a", (kern_type)16, 256, 8, 0}, q_ok[1]},
         HEARTH_ERR_UNSUPPORTED,
         "type iq2_xxs"},
        {"3d.gguf",
         ok,
         {{"blk.0.attn_q.weight.lora_a", KERN_F32, 256, 8, 2}, q_ok[1]},
         HEARTH_ERR_FORMAT,
         "not a matrix"},
        {"suffix.gguf",
         ok,
         {{"blk.0.attn_q.weight", KERN_F32, 256, 256, 0}},
         HEARTH_ERR_FORMAT,
         "neither a .lora_a nor"},
        {"empty.gguf",
         ok,
         {{"blk.0.attn_norm.weight", KERN_F32, 256, 1, 0}},
         HEARTH_ERR_FORMAT,
         "no .lora_a/.lora_b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_bad(cases[i].file, &cases[i].meta, cases[i].t);
        expect_fail(base, path, 1.0f, cases[i].code, cases[i].needle);
        expect_fail(base, path, 0.0f, cases[i].code, cases[i].needle); /* checked at 0 too */
    }
    /* token_embd on a model whose output is token_embd */
    const char *te = synth_adapter("te.gguf", base, KERN_F32, 8, 8.0f, "token_embd", 9);
    expect_fail(tied, te, 1.0f, HEARTH_ERR_UNSUPPORTED, "output layer");
    /* output.weight does not exist in a tied model */
    const char *outw = synth_adapter("outw.gguf", base, KERN_F32, 8, 8.0f, "output", 9);
    expect_fail(tied, outw, 1.0f, HEARTH_ERR_FORMAT, "not a weight matrix");
    /* the scale */
    expect_fail(base, good.path, NAN, HEARTH_ERR_INVALID_ARG, "not finite");
    expect_fail(base, good.path, INFINITY, HEARTH_ERR_INVALID_ARG, "not finite");
    /* files: a model given as adapter, missing, truncated */
    expect_fail(base, base, 1.0f, HEARTH_ERR_FORMAT, "general.type");
    expect_fail(base, tmp("missing.gguf"), 1.0f, HEARTH_ERR_IO, "missing.gguf");
    const char *cut = tmp("cut.gguf");
    {
        FILE *in = fopen(good.path, "rb"), *o = fopen(cut, "wb");
        REQUIRE(in && o);
        char buf[4096];
        size_t got = fread(buf, 1, sizeof buf, in);
        fwrite(buf, 1, got > 300 ? got - 300 : got / 2, o);
        fclose(in);
        fclose(o);
    }
    expect_fail(base, cut, 1.0f, HEARTH_ERR_FORMAT, "cut.gguf");
    /* the list itself */
    hearth_model_params mp = hearth_model_default_params();
    hearth_model *m = NULL;
    hearth_lora many[65];
    for (int i = 0; i < 65; i++) many[i] = good;
    mp.loras = many;
    mp.n_loras = 65;
    CHECK(hearth_model_load(base, &mp, &m) == HEARTH_ERR_INVALID_ARG && !m);
    mp.n_loras = 64; /* the limit itself loads */
    CHECKF(hearth_model_load(base, &mp, &m) == HEARTH_OK, "%s", hearth_last_error());
    hearth_model_free(m);
    m = NULL;
    const hearth_lora nopath = {.path = NULL, .scale = 1.0f};
    mp.loras = &nopath;
    mp.n_loras = 1;
    CHECK(hearth_model_load(base, &mp, &m) == HEARTH_ERR_INVALID_ARG && !m);
    mp.loras = NULL;
    CHECK(hearth_model_load(base, &mp, &m) == HEARTH_ERR_INVALID_ARG && !m);
}

/* ---- the conformance fixtures ---- */

static int test_shared(void) {
#ifdef HEARTH_SHARED_DIR
    static const char *const names[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3",
                                        "tiny-phi3"};
    static const char *const types[] = {"F32", "Q8_0", "Q4_K_M"};
    int done = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            char path[512], what[96];
            snprintf(path, sizeof path, "%s/conformance/models/%s/%s.%s.gguf", HEARTH_SHARED_DIR,
                     names[i], names[i], types[t]);
            if (access(path, R_OK) != 0) continue;
            const kern_type at = t == 0 ? KERN_BF16 : KERN_F32;
            const char *ad = synth_adapter("shared-ad.gguf", path, at, 8, 16.0f, NULL, 11 + i);
            snprintf(what, sizeof what, "%s.%s, %s adapter", names[i], types[t],
                     kern_type_get(at)->name);
            const float scale = 1.0f;
            check_merge(what, path, &ad, &scale, 1, t != 0, type_tol(at));
            unlink(ad);
            done++;
        }
    if (done) return done;
#endif
    printf("test_lora: ../shared/conformance not found; the tiny conformance models are skipped "
           "(synthetic models only)\n");
    return 0;
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_lora.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    unsigned long long seed = 5;
    for (int t = 0; t < N_TOK; t++) ids[t] = (int32_t)(3 + test_rand_u64(&seed) % 300);
    test_errors();
    test_architectures();
    test_qwen35();
    test_two_adapters();
    test_identities();
    test_embed();
    test_shared();
    for (int i = 0; i < n_files; i++) unlink(files[i]);
    rmdir(tmp_dir);
    return test_done("test_lora");
}
