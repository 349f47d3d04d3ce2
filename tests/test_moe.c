/*
 * test_moe.c - mixture-of-experts models (qwen3moe, olmoe, Mixtral-style
 * llama), without ../shared: small random models written by synth, run in
 * exact mode against FNV-1a-64 hashes of llama.cpp's logits for the same
 * files (peer_logits.h; the same files from `hearth synth` with these
 * shapes), and in default mode against exact mode, one batch against one
 * token at a time. The routing (softmax, top-k,
 * the weights with and without renormalizing) is checked against a plain
 * double computation, files whose expert keys contradict their tensors are
 * refused, quantizing an 8-expert model gives llama-quantize's bytes (its
 * rules for 8 experts: Q8_0 attn_k/attn_v, Q5_K attn_output), and so do
 * `hearth imatrix` and quantizing with its matrix.
 */
#define _GNU_SOURCE /* memmem */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/quantize.h"
#include "model/session.h"
#include "model/synth.h"
#include "peer_logits.h"
#include "test.h"

#include <unistd.h>

static char tmp_dir[64];

typedef struct fixture {
    const char *name, *arch;
    kern_type type;
    int n_embd, n_ff, n_expert, n_used;
    uint64_t seed;
    uint64_t llama_hash; /* FNV-1a-64 of llama.cpp's 40 rows of logits */
    int n_head_kv;       /* 0: 2 (of 4 heads) */
} fixture;

static const fixture k_fixtures[] = {
    /* 8 experts: the router's softmax is all tail (expf), F32 products */
    {"qwen3moe-f32", "qwen3moe", KERN_F32, 128, 64, 8, 2, 7, 0x5b6dd00cb5987472ull, 0},
    /* 16 experts (one 16-lane group), Q4_K weights that llama.cpp repacks */
    {"qwen3moe-q4k", "qwen3moe", KERN_Q4_K, 256, 256, 16, 4, 11, 0xdf08216652023bf3ull, 0},
    /* Mixtral's layout in a llama file, Q8_0 */
    {"llama-moe-q8", "llama", KERN_Q8_0, 128, 128, 4, 2, 3, 0x0e33d2726b5059d2ull, 0},
    /* OLMoE: q and k normed whole, the choices' probabilities not renormalized, Q6_K; no GQA
       (llama.cpp sizes its k norm by n_embd) */
    {"olmoe-q6k", "olmoe", KERN_Q6_K, 256, 256, 8, 2, 5, 0xcc9b662ae6e34245ull, 4},
};

static void fixture_path(const fixture *f, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.gguf", tmp_dir, f->name);
}

static void write_fixture(const fixture *f) {
    synth_params p = synth_default_params();
    p.arch = f->arch;
    p.type = f->type;
    p.n_embd = f->n_embd;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_head_kv = f->n_head_kv ? f->n_head_kv : 2;
    p.head_dim = f->n_embd / 4;
    p.n_ff = f->n_ff;
    p.n_ctx = 128;
    p.n_expert = f->n_expert;
    p.n_expert_used = f->n_used;
    p.seed = f->seed;
    char path[128];
    fixture_path(f, path, sizeof path);
    const hearth_err err = synth_write(path, &p);
    if (err) fprintf(stderr, "%s: %s\n", f->name, hearth_last_error());
    REQUIRE(err == HEARTH_OK);
}

static void check_fixture(const fixture *f) {
    char path[128];
    fixture_path(f, path, sizeof path);
    const peer_result r = peer_measure(f->name, path, f->llama_hash);
    if (f->type == KERN_F32) { /* summation order only: no 8-bit code can move */
        CHECKF(r.d_exact < 1e-4, "%s: default mode differs from exact by %g", f->name, r.d_exact);
        CHECKF(r.d_incr < 1e-4, "%s: batch and one token at a time differ by %g", f->name,
               r.d_incr);
    } else { /* an activation's code, and then a near-tie of two experts, may move */
        CHECKF(r.agree >= PEER_N_IDS * 9 / 10, "%s: argmax agrees on %d of %d rows", f->name,
               r.agree, PEER_N_IDS);
        CHECKF(r.d_incr < 1.0, "%s: batch and one token at a time differ by %g", f->name, r.d_incr);
    }
}

/* moe_route against softmax or sigmoid, selection (with LFM2-MoE's bias)
 * and renormalization in double. */
static void route_test(void) {
    unsigned long long r = 0x9e3779b97f4a7c15ull;
    for (int trial = 0; trial < 400; trial++) {
        const int n = 1 + (int)(test_rand_u64(&r) % 40);
        const int k = 1 + (int)(test_rand_u64(&r) % (unsigned)n);
        float logits[40], probs[40], w[40], bias[40];
        int32_t sel[40];
        for (int i = 0; i < n; i++) logits[i] = 4.0f * test_rand_f(&r);
        for (int i = 0; i < n; i++) bias[i] = 0.5f * test_rand_f(&r);
        if (trial % 5 == 0 && n > 2) { /* a tie: the lower index first */
            logits[1] = logits[2];
            bias[1] = bias[2];
        }
        const moe_gate g = {.renorm = trial % 3 != 0,
                            .sigmoid = trial % 2 != 0,
                            .bias = trial % 4 == 1 ? bias : NULL};
        moe_route(logits, n, k, &g, probs, sel, w);
        double mx = logits[0], z = 0.0, p[40], score[40];
        for (int i = 1; i < n; i++) mx = fmax(mx, logits[i]);
        for (int i = 0; i < n; i++) z += p[i] = exp((double)logits[i] - mx);
        for (int i = 0; i < n; i++) {
            p[i] = g.sigmoid ? 1.0 / (1.0 + exp(-(double)logits[i])) : p[i] / z;
            score[i] = g.bias ? (double)(probs[i] + bias[i]) : (double)probs[i];
        }
        double wsum = 0.0;
        for (int j = 0; j < k; j++) wsum += p[sel[j]];
        for (int j = 0; j < k; j++) {
            const int e = sel[j];
            REQUIRE(e >= 0 && e < n);
            CHECK(fabs(probs[e] - p[e]) < 1e-5);
            CHECK(fabs(w[j] - (g.renorm ? p[e] / wsum : p[e])) < 1e-5);
            for (int i = 0; i < j; i++) CHECK(sel[i] != e);
            /* nothing left out scores higher, nor equal with a lower index */
            for (int i = 0; i < n; i++) {
                bool in = false;
                for (int jj = 0; jj < k; jj++) in = in || sel[jj] == i;
                if (!in) CHECK(score[i] < score[e] || (score[i] == score[e] && i > e));
            }
            if (j > 0) CHECK(score[sel[j - 1]] >= score[e]);
        }
    }
    /* one expert of one: weight 1 */
    const float one = 3.0f;
    float pr, w1;
    int32_t s1;
    const moe_gate plain = {.renorm = true};
    moe_route(&one, 1, 1, &plain, &pr, &s1, &w1);
    CHECK(s1 == 0 && pr == 1.0f && w1 == 1.0f);
}

static void patch_u32(const char *src, const char *dst, const char *key, uint32_t value) {
    peer_patch(src, dst, key, &value, sizeof value, strlen(key) + 4);
}

static void refusal_test(void) {
    char src[128], dst[128];
    fixture_path(&k_fixtures[0], src, sizeof src);
    snprintf(dst, sizeof dst, "%s/bad.gguf", tmp_dir);
    hearth_model *m = NULL;
    patch_u32(src, dst, "qwen3moe.expert_used_count", 9); /* more than the 8 experts */
    CHECK(hearth_model_load(dst, NULL, &m) != HEARTH_OK && !m);
    CHECK(strstr(hearth_last_error(), "9 used per token") != NULL);
    patch_u32(src, dst, "qwen3moe.expert_count", 4); /* the tensors hold 8 */
    CHECK(hearth_model_load(dst, NULL, &m) != HEARTH_OK && !m);
    CHECK(strstr(hearth_last_error(), "ffn_gate_inp") != NULL);
    patch_u32(src, dst, "qwen3moe.expert_feed_forward_length", 32); /* they are 64 wide */
    CHECK(hearth_model_load(dst, NULL, &m) != HEARTH_OK && !m);
    CHECK(strstr(hearth_last_error(), "ffn_gate_exps") != NULL);
    patch_u32(src, dst, "qwen3moe.block_count", 4000); /* refused before sizing by it */
    CHECK(hearth_model_load(dst, NULL, &m) != HEARTH_OK && !m);
    CHECK(strstr(hearth_last_error(), "4000 layers of experts") != NULL);
    unlink(dst);

    synth_params p = synth_default_params();
    p.arch = "qwen3moe"; /* all MoE: experts required */
    CHECK(synth_write(dst, &p) != HEARTH_OK);
    p.n_expert = 4;
    p.n_expert_used = 5;
    CHECK(synth_write(dst, &p) != HEARTH_OK);
    p.arch = "qwen2"; /* a dense architecture has no experts */
    p.n_expert_used = 2;
    CHECK(synth_write(dst, &p) != HEARTH_OK);
}

static uint64_t file_hash(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    uint64_t h = TEST_FNV_SEED;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) h = test_fnv1a(h, buf, n);
    fclose(fp);
    return h;
}

/* `hearth imatrix` on an 8-expert model (one entry of 8 sums and counts per
 * expert tensor, every expert's rows observed however few) and quantizing
 * with its matrix (each expert's rows weighted by its own sums; a legacy
 * .dat holds them as one row), in the test directory, against FNV-1a-64
 * hashes of the files llama.cpp made there with the same arguments
 * (llama-imatrix with -fa off, llama-quantize). */
static void imatrix_test(void) {
    static const char text[] =
        "Once upon a time there was a little girl named Lily. She went to play with her friend "
        "in the big warm home by the fire. They saw a very happy model, and it said hello to "
        "the world. The day was long, and the girl and her friend had fun on the hearth. ";
    static const struct {
        const char *args, *out;
        uint64_t hash;
    } steps[] = {
        {"imatrix -m quant-f32.gguf -f text.txt -o im.gguf -c 64 -b 64 -t 2", "im.gguf",
         0x162423da70a1d2deull},
        {"imatrix -m quant-f32.gguf -f text.txt -o im.dat --output-format dat -c 64 -b 64 -t 2",
         "im.dat", 0x942ae2adaaa32d5bull},
        {"quantize --imatrix im.gguf quant-f32.gguf q.gguf Q4_K_M", "q.gguf",
         0x0372b5f400053ea4ull},
        {"quantize --imatrix im.gguf quant-f32.gguf q.gguf IQ4_XS", "q.gguf",
         0x1ea962f75069e7aeull},
        {"quantize --imatrix im.dat quant-f32.gguf q.gguf Q4_K_M", "q.gguf", 0x4c828378bc224111ull},
    };
    char path[160], cmd[512];
    snprintf(path, sizeof path, "%s/text.txt", tmp_dir);
    FILE *fp = fopen(path, "w");
    REQUIRE(fp);
    for (int i = 0; i < 4; i++) fputs(text, fp);
    fclose(fp);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd %s && HEARTH_EXACT=1 %s %s >/dev/null 2>&1", tmp_dir,
                 HEARTH_BINARY, steps[i].args);
        CHECKF(system(cmd) == 0, "%s", cmd);
        snprintf(path, sizeof path, "%s/%s", tmp_dir, steps[i].out);
        const uint64_t h = file_hash(path);
        CHECKF(h == steps[i].hash, "%s: %016llx, llama.cpp's %016llx", steps[i].args,
               (unsigned long long)h, (unsigned long long)steps[i].hash);
    }
    static const char *const files[] = {"text.txt", "im.gguf", "im.dat", "q.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
        unlink(path);
    }
}

/* An 8-expert F32 model quantized to three presets, against FNV-1a-64
 * hashes of llama-quantize's files from the same input (34af94cd). */
static void quantize_test(void) {
    static const struct {
        const char *ftype;
        uint64_t hash;
    } presets[] = {{"Q4_K_M", 0x162ad8d994596f8aull},
                   {"Q3_K_M", 0xa78d184d8016baa5ull},
                   {"Q2_K", 0xe3060633c64079a9ull}};
    const fixture f = {"quant-f32", "qwen3moe", KERN_F32, 256, 256, 8, 2, 7, 0, 0};
    write_fixture(&f);
    char in[128], out[128];
    fixture_path(&f, in, sizeof in);
    snprintf(out, sizeof out, "%s/quant.gguf", tmp_dir);
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        quant_params qp = quant_default_params();
        REQUIRE(quant_ftype_parse(presets[i].ftype, &qp.ftype));
        qp.n_threads = 2;
        quant_stats st;
        REQUIRE(quant_model(in, out, &qp, &st) == HEARTH_OK);
        const uint64_t h = file_hash(out);
        CHECKF(h == presets[i].hash, "%s: %016llx, llama-quantize's %016llx", presets[i].ftype,
               (unsigned long long)h, (unsigned long long)presets[i].hash);
    }
    unlink(out);
    imatrix_test();
    unlink(in);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hearth-moe-XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    const int n = (int)(sizeof k_fixtures / sizeof k_fixtures[0]);
    for (int i = 0; i < n; i++) write_fixture(&k_fixtures[i]);
    route_test();
    for (int i = 0; i < n; i++) check_fixture(&k_fixtures[i]);
    refusal_test();
    quantize_test();
    for (int i = 0; i < n; i++) {
        char path[128];
        fixture_path(&k_fixtures[i], path, sizeof path);
        unlink(path);
    }
    rmdir(tmp_dir);
    return test_done("test_moe");
}
