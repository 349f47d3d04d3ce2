/*
 * test_bert.c - the encoders (bert, nomic-bert: arch.c, loader.c,
 * forward.c, session.c) against a naive scalar forward pass written here
 * from the models' definition (BERT: Devlin et al.; nomic-bert: RoPE and
 * SwiGLU; llama.cpp's build_bert graph for the details), in plain loops
 * over weights dequantized with the scalar reference:
 *
 *   x_t = LN(tok[id_t] + type[0] + pos[t])         (pos: bert only)
 *   per layer: q, k, v = W x + b (nomic: RoPE on q and k, NeoX pairs)
 *              a = softmax(q k^T / sqrt(hd)) v over the WHOLE text
 *              x = LN(x + Wo a + bo)
 *              x = LN(x + Wd act(x) + bd)   bert: gelu(Wu x + bu), nomic: silu(Wg x) * Wu x
 *   pooled: mean of the rows or row 0 (cls), then L2-normalised.
 *
 * GELU is the tanh approximation on inputs and outputs rounded to FP16, as
 * ggml evaluates it on CPU (the semantics, computed here from the formula).
 * Checked: several texts of different lengths in one hearth_embed_batch,
 * mean and cls pooling, F32 and Q8_0 weights, each text alone equal to the
 * batch; [CLS] ... [SEP] around tokenized text; an encoder refuses to decode
 * or copy a session (an error, not a crash) and a context beyond its
 * learned positions.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "test.h"

#include "server/json_path.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N_TEXTS = 4, MAX_TOK = 40 };

static char tmp_dir[64];
static const int lens[N_TEXTS] = {7, 1, 33, 18};

/* ---- the reference ---- */

typedef struct ref_model {
    gguf_file *f;
    bool nomic;
    int d, n_layer, n_head, hd, n_ff;
    float eps, rope_base;
} ref_model;

/* Tensor `name` dequantized to F32 (caller frees), or NULL when absent. */
static float *get(const ref_model *r, const char *name) {
    const gguf_tensor *t = gguf_find_tensor(r->f, name);
    if (!t) return NULL;
    const int64_t cols = t->ne[0], rows = t->n_elements / cols;
    float *w = malloc((size_t)t->n_elements * sizeof *w);
    REQUIRE(w);
    const size_t rb = kern_row_bytes((kern_type)t->type, cols);
    for (int64_t i = 0; i < rows; i++)
        kern_ref_dequantize_row((kern_type)t->type, (const uint8_t *)t->data + (size_t)i * rb,
                                w + i * cols, cols);
    return w;
}

static float *lget(const ref_model *r, int il, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    return get(r, name);
}

/* y[o] = sum_i w[o][i] x[i] (+ b[o]) for n rows of x. */
static void linear(double *y, const float *w, const float *b, const double *x, int n, int n_in,
                   int n_out) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < n_out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < n_in; i++) s += (double)w[(size_t)o * n_in + i] * x[t * n_in + i];
            y[t * n_out + o] = s;
        }
}

static void layer_norm(double *x, const float *w, const float *b, int d, double eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; i++) mean += x[i];
    mean /= d;
    for (int i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= d;
    for (int i = 0; i < d; i++) x[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i];
}

static double f16(double v) { return kern_f16_to_f32(kern_f32_to_f16((float)v)); }

static double gelu(double v) {
    if (v <= -10.0) return 0.0;
    if (v >= 10.0) return v;
    const double x = f16(v);
    return f16(0.5 * x * (1.0 + tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x))));
}

/* RoPE, NeoX pairs (i, i + hd/2), on one head at position p. */
static void rope(double *h, int hd, int p, double base) {
    for (int i = 0; i < hd / 2; i++) {
        const double th = p * pow(base, -2.0 * i / hd), c = cos(th), s = sin(th);
        const double a = h[i], b = h[i + hd / 2];
        h[i] = a * c - b * s;
        h[i + hd / 2] = a * s + b * c;
    }
}

/* Self-attention of n rows of q, k, v ([n][d]) into out, every row seeing
 * every row. */
static void attend(const ref_model *r, const double *q, const double *k, const double *v, int n,
                   double *out) {
    double sc[MAX_TOK];
    for (int t = 0; t < n; t++)
        for (int h = 0; h < r->n_head; h++) {
            const int o = h * r->hd;
            double mx = -INFINITY, sum = 0;
            for (int u = 0; u < n; u++) {
                double s = 0;
                for (int i = 0; i < r->hd; i++) s += q[t * r->d + o + i] * k[u * r->d + o + i];
                sc[u] = s / sqrt((double)r->hd);
                mx = sc[u] > mx ? sc[u] : mx;
            }
            for (int u = 0; u < n; u++) sum += (sc[u] = exp(sc[u] - mx));
            for (int i = 0; i < r->hd; i++) {
                double a = 0;
                for (int u = 0; u < n; u++) a += sc[u] / sum * v[u * r->d + o + i];
                out[t * r->d + o + i] = a;
            }
        }
}

static void ref_layer(const ref_model *r, int il, double *x, int n) {
    const int d = r->d, ff = r->n_ff;
    double *q = calloc((size_t)n * d, sizeof *q), *k = calloc((size_t)n * d, sizeof *k),
           *v = calloc((size_t)n * d, sizeof *v), *a = calloc((size_t)n * d, sizeof *a),
           *y = calloc((size_t)n * d, sizeof *y), *u = calloc((size_t)n * ff, sizeof *u),
           *g = calloc((size_t)n * ff, sizeof *g), *qkv = calloc((size_t)n * 3 * d, sizeof *qkv);
    REQUIRE(q && k && v && a && y && u && g && qkv);
    if (r->nomic) {
        float *w = lget(r, il, "attn_qkv.weight");
        linear(qkv, w, NULL, x, n, d, 3 * d);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < d; i++) {
                q[t * d + i] = qkv[t * 3 * d + i];
                k[t * d + i] = qkv[t * 3 * d + d + i];
                v[t * d + i] = qkv[t * 3 * d + 2 * d + i];
            }
        for (int t = 0; t < n; t++)
            for (int h = 0; h < r->n_head; h++) {
                rope(q + t * d + h * r->hd, r->hd, t, r->rope_base);
                rope(k + t * d + h * r->hd, r->hd, t, r->rope_base);
            }
        free(w);
    } else {
        static const char *const names[3][2] = {{"attn_q.weight", "attn_q.bias"},
                                                {"attn_k.weight", "attn_k.bias"},
                                                {"attn_v.weight", "attn_v.bias"}};
        double *outs[3] = {q, k, v};
        for (int j = 0; j < 3; j++) {
            float *w = lget(r, il, names[j][0]), *b = lget(r, il, names[j][1]);
            linear(outs[j], w, b, x, n, d, d);
            free(w);
            free(b);
        }
    }
    attend(r, q, k, v, n, a);
    float *wo = lget(r, il, "attn_output.weight"), *bo = lget(r, il, "attn_output.bias");
    float *n1w = lget(r, il, "attn_output_norm.weight"),
          *n1b = lget(r, il, "attn_output_norm.bias");
    linear(y, wo, bo, a, n, d, d);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < d; i++) x[t * d + i] += y[t * d + i];
        layer_norm(x + t * d, n1w, n1b, d, r->eps);
    }
    float *wu = lget(r, il, "ffn_up.weight"), *bu = lget(r, il, "ffn_up.bias"),
          *wg = lget(r, il, "ffn_gate.weight"), *wd = lget(r, il, "ffn_down.weight"),
          *bd = lget(r, il, "ffn_down.bias");
    float *n2w = lget(r, il, "layer_output_norm.weight"),
          *n2b = lget(r, il, "layer_output_norm.bias");
    linear(u, wu, bu, x, n, d, ff);
    if (r->nomic) {
        linear(g, wg, NULL, x, n, d, ff);
        for (int i = 0; i < n * ff; i++) u[i] *= g[i] / (1.0 + exp(-g[i]));
    } else {
        for (int i = 0; i < n * ff; i++) u[i] = gelu(u[i]);
    }
    linear(y, wd, bd, u, n, ff, d);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < d; i++) x[t * d + i] += y[t * d + i];
        layer_norm(x + t * d, n2w, n2b, d, r->eps);
    }
    free(wo), free(bo), free(n1w), free(n1b), free(wu), free(bu), free(wg), free(wd), free(bd);
    free(n2w), free(n2b);
    free(q), free(k), free(v), free(a), free(y), free(u), free(g), free(qkv);
}

/* The normalised pooled vector of ids[0..n) into out[d]. */
static void ref_embed(const ref_model *r, const int32_t *ids, int n, bool cls, float *out) {
    const int d = r->d;
    float *tok = get(r, "token_embd.weight"), *type = get(r, "token_types.weight"),
          *pos = get(r, "position_embd.weight"), *nw = get(r, "token_embd_norm.weight"),
          *nb = get(r, "token_embd_norm.bias");
    double *x = calloc((size_t)n * d, sizeof *x);
    REQUIRE(tok && type && nw && nb && x && (r->nomic || pos));
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < d; i++)
            // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): the file's data
            x[t * d + i] = (double)tok[(size_t)ids[t] * d + i] + type[i] +
                           (pos ? pos[(size_t)t * d + i] : 0.0);
        layer_norm(x + t * d, nw, nb, d, r->eps);
    }
    for (int il = 0; il < r->n_layer; il++) ref_layer(r, il, x, n);
    double norm = 0;
    for (int i = 0; i < d; i++) {
        double s = 0;
        for (int t = 0; t < (cls ? 1 : n); t++) s += x[t * d + i];
        x[i] = cls ? s : s / n;
        norm += x[i] * x[i];
    }
    for (int i = 0; i < d; i++) out[i] = (float)(x[i] / sqrt(norm));
    free(tok), free(type), free(pos), free(nw), free(nb), free(x);
}

/* ---- the checks ---- */

static synth_params encoder(const char *arch, kern_type type, int pooling) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.type = type;
    p.n_embd = 128;
    p.n_head = 4;
    p.n_head_kv = 4;
    p.head_dim = 32;
    p.n_ff = 256;
    p.n_layer = 2;
    p.n_ctx = 64;
    p.pooling = pooling;
    p.seed = 17;
    return p;
}

static double cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static void check_model(const char *arch, kern_type type, int pooling, double tol) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s_%d_%d.gguf", tmp_dir, arch, (int)type, pooling);
    const synth_params p = encoder(arch, type, pooling);
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    const int d = hearth_model_n_embd(m), nv = hearth_model_n_vocab(m);
    CHECK(strcmp(hearth_model_arch(m), arch) == 0);
    CHECK((int)hearth_model_pooling(m) == (pooling == 2 ? HEARTH_POOL_CLS : HEARTH_POOL_MEAN));
    const bool cls = hearth_model_pooling(m) == HEARTH_POOL_CLS;

    int32_t ids[N_TEXTS * MAX_TOK];
    int n_all = 0;
    unsigned long long seed = 99;
    for (int i = 0; i < N_TEXTS; i++)
        for (int t = 0; t < lens[i]; t++)
            ids[n_all++] =
                t == 0 ? 101 : (int32_t)(104 + test_rand_u64(&seed) % (uint64_t)(nv - 104));
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    float *got = malloc((size_t)N_TEXTS * d * sizeof *got), *one = malloc((size_t)d * sizeof *one),
          *want = malloc((size_t)d * sizeof *want);
    REQUIRE(got && one && want);
    REQUIRE(hearth_embed_batch(s, ids, lens, N_TEXTS, hearth_model_pooling(m), true, got) ==
            HEARTH_OK);

    ref_model r = {.nomic = !strcmp(arch, "nomic-bert"),
                   .d = d,
                   .n_layer = p.n_layer,
                   .n_head = p.n_head,
                   .hd = p.head_dim,
                   .n_ff = p.n_ff,
                   .eps = 1e-12f,
                   .rope_base = 10000.0f};
    REQUIRE(gguf_open(path, &r.f) == HEARTH_OK);
    const int32_t *text = ids;
    for (int i = 0; i < N_TEXTS; text += lens[i], i++) {
        ref_embed(&r, text, lens[i], cls, want);
        const float *g = got + (size_t)i * d;
        const double diff = test_max_diff(g, want, (size_t)d);
        if (getenv("TEST_BERT_VERBOSE"))
            printf("%s %s %s text %d: %g\n", arch, kern_type_get(type)->name, cls ? "cls" : "mean",
                   i, diff);
        CHECKF(diff <= tol, "%s %s %s: text %d (%d tokens) differs from the reference by %g", arch,
               kern_type_get(type)->name, cls ? "cls" : "mean", i, lens[i], diff);
        CHECKF(cosine(g, want, d) > 0.9999, "%s: text %d cosine %g", arch, i, cosine(g, want, d));
        REQUIRE(hearth_embed(s, text, lens[i], hearth_model_pooling(m), true, one) == HEARTH_OK);
        CHECKF(test_max_diff(one, g, (size_t)d) <= 1e-6, "%s: text %d alone differs by %g", arch, i,
               test_max_diff(one, g, (size_t)d));
    }
    /* the tolerance is far below what tells two texts apart */
    CHECKF(test_max_diff(got, got + d, (size_t)d) > 0.05, "texts 0 and 1 differ by only %g",
           test_max_diff(got, got + d, (size_t)d));
    gguf_close(r.f);

    /* an encoder neither decodes nor copies, and says why */
    float *logits = malloc((size_t)nv * sizeof *logits);
    REQUIRE(logits);
    CHECK(hearth_decode(s, ids, 3, logits, false) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "embedding model") != NULL);
    hearth_session *s2 = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s2) == HEARTH_OK);
    CHECK(hearth_session_copy(s2, s, 0) == HEARTH_ERR_UNSUPPORTED);
    hearth_session *const pair[2] = {s, s2};
    const int32_t two[2] = {101, 102};
    CHECK(hearth_decode_multi(pair, two, 2, NULL) == HEARTH_ERR_UNSUPPORTED);

    /* tokenized text is [CLS] ... [SEP] */
    int32_t tok[16];
    size_t n_tok = 0;
    REQUIRE(hearth_tokenize(m, "hello world", 11, true, false, tok, 16, &n_tok) == HEARTH_OK);
    CHECK(n_tok >= 3 && tok[0] == 101 && tok[n_tok - 1] == 102);

    /* learned positions: no context beyond them */
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 2 * p.n_ctx;
    hearth_session *big = NULL;
    const hearth_err err = hearth_session_new(m, &sp, &big);
    CHECK(r.nomic ? err == HEARTH_OK : err == HEARTH_ERR_INVALID_ARG);
    hearth_session_free(big);

    free(logits);
    free(got), free(one), free(want);
    hearth_session_free(s2);
    hearth_session_free(s);
    hearth_model_free(m);
    unlink(path);
}

/* `hearth serve` with an embedding model: vectors on both embeddings APIs,
 * a 400 naming the model (not a 500 from the engine) for generation. */
static void serve(void) {
    if (system("curl --version > /dev/null 2>&1") != 0) {
        printf("test_bert: curl is not installed; the server part is skipped\n");
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/serve.gguf", tmp_dir);
    synth_params p = synth_default_params();
    p.arch = "bert";
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    test_server sv;
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, path, tmp_dir, "-t 1"));
    int st;
    cJSON *j = post(&sv, "/v1/embeddings", "{\"input\":[\"a cat\",\"a dog\"]}", &st);
    CHECK(st == 200 && cJSON_GetArraySize(jget(j, "data.1.embedding")) == p.n_embd);
    cJSON_Delete(j);
    j = post(&sv, "/api/embed", "{\"model\":\"m\",\"input\":\"a cat\"}", &st);
    CHECK(st == 200 && cJSON_GetArraySize(jget(j, "embeddings.0")) == p.n_embd);
    cJSON_Delete(j);
    /* ollama's capabilities: an embedding model, not a completion one */
    j = post(&sv, "/api/show", "{\"model\":\"m\"}", &st);
    const char *cap = jstr(j, "capabilities.0");
    CHECK(st == 200 && cJSON_GetArraySize(jget(j, "capabilities")) == 1 && cap &&
          !strcmp(cap, "embedding"));
    cJSON_Delete(j);
    static const char *const gen[][2] = {
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"},
        {"/v1/completions", "{\"prompt\":\"hi\"}"},
        {"/completion", "{\"prompt\":\"hi\"}"},
        {"/api/generate", "{\"model\":\"m\",\"prompt\":\"hi\",\"stream\":false}"},
    };
    for (size_t i = 0; i < sizeof gen / sizeof *gen; i++) {
        j = post(&sv, gen[i][0], gen[i][1], &st);
        const char *msg = jstr(j, i == 3 ? "error" : "error.message");
        CHECKF(st == 400 && msg && strstr(msg, "is an embedding model"), "%s: %d %s", gen[i][0], st,
               msg ? msg : "(none)");
        cJSON_Delete(j);
    }
    CHECK(test_server_stop(&sv) == 0);
    unlink(path);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_bert.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    /* F32: only float rounding apart (GELU's FP16 rounding is in the
     * reference); Q8_0: the activations are quantized too */
    check_model("bert", KERN_F32, 1, 2e-5);
    check_model("bert", KERN_F32, 2, 2e-5);
    check_model("bert", KERN_Q8_0, 2, 6e-3);
    check_model("nomic-bert", KERN_F32, 1, 2e-5);
    check_model("nomic-bert", KERN_Q8_0, 1, 6e-3);
    serve();
    if (test_failures == 0) {
        char rm[600];
        snprintf(rm, sizeof rm, "rm -rf '%s'", tmp_dir);
        CHECK(system(rm) == 0);
    }
    return test_done("test_bert");
}
