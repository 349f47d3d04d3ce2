/*
 * test_encoders.c - the embedding models against llama.cpp, without
 * ../shared (it has no encoder files): EmbeddingGemma (gemma-embedding:
 * gemma3's blocks attending both ways, a centred sliding window on
 * pattern layers, the dense projections of the pooled vector), nomic-bert
 * and bert, and a decoder's pooled hidden states (qwen3, as Qwen3-Embedding
 * is run). Small random models written by synth run in exact mode against
 * FNV-1a-64 hashes of llama.cpp's pooled vectors for the same files and
 * token ids (cls, last and mean pooling, the mean in exact mode as
 * llama.cpp's F32 product with a column of 1/n; commit 34af94cd, CPU, no
 * flash attention, 2 threads, measured with a program linked against
 * libllama outside this repository). llama.cpp keeps no cache for an
 * encoder, so its rows are the text's length: the
 * lengths here take each of ggml's orders (a multiple of 16: tinyBLAS;
 * otherwise ggml_vec_dot with rests past its last SIMD group of 37, 51 and
 * 11). Also default mode against exact mode, the keys, and the files
 * refused; and files with XLM-RoBERTa's vocabulary from text (bert,
 * nomic-bert-moe, an XLM-RoBERTa reranker).
 */
#define _GNU_SOURCE /* memmem */
#include "hearth.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "peer_logits.h"
#include "test.h"

#include <math.h>
#include <unistd.h>

static char tmp_dir[64];

enum { MAX_IDS = 80, MAX_EMBD = 256 };

typedef struct fixture {
    const char *name, *arch;
    kern_type type;
    int n_layer, n_embd, n_head_kv, head_dim, n_ff, n_dense;
    uint64_t seed;
    int n_ids;
    int32_t first;    /* the text's first id (BOS, or bert's [CLS]) */
    uint64_t hash[3]; /* cls, last, mean */
} fixture;

static const fixture k_fixtures[] = {
    /* windows of 8 (4 either side) on layers 0, 2, 4, 6; dense 128 -> 384 -> 128 */
    {"ge-f32-dense",
     "gemma-embedding",
     KERN_F32,
     7,
     128,
     1,
     32,
     256,
     384,
     41,
     37,
     1,
     {0x3fb6a8f2414d8f24ull, 0xb83012af59dbd8abull, 0x184882bc25b50cc4ull}},
    {"ge-q8",
     "gemma-embedding",
     KERN_Q8_0,
     4,
     128,
     2,
     32,
     256,
     0,
     42,
     51,
     1,
     {0x91ac4ce300ed2455ull, 0xbd189e91acbcc8a1ull, 0x052951b1f7a6f6cfull}},
    /* Q4_K weights that llama.cpp repacks, a row of whole 16-lane groups */
    {"ge-q4k",
     "gemma-embedding",
     KERN_Q4_K,
     3,
     256,
     2,
     64,
     256,
     512,
     43,
     40,
     1,
     {0x2a987f90028a61f5ull, 0x45106d2911e16e74ull, 0x25d64ce6cf4c9704ull}},
    {"nomic-f32",
     "nomic-bert",
     KERN_F32,
     3,
     128,
     4,
     32,
     256,
     0,
     44,
     75,
     101,
     {0x32cf4846557ebac2ull, 0xd8fedb640ca7ad85ull, 0x004d9fa25021e3c5ull}},
    {"bert-q8",
     "bert",
     KERN_Q8_0,
     2,
     128,
     4,
     32,
     256,
     0,
     45,
     48,
     101,
     {0x06206e562d1d0758ull, 0x2cff12c0124d9867ull, 0xd48ba35f0c970ca8ull}},
    /* a decoder's normed hidden states (Qwen3-Embedding's layout: last pooling), causal */
    {"qwen3-f32",
     "qwen3",
     KERN_F32,
     3,
     128,
     2,
     32,
     256,
     0,
     46,
     44,
     1,
     {0x2d9b09c3536702deull, 0x7d26c8f0a03dfa06ull, 0x119f075f33efb03dull}},
};

static void fixture_path(const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.gguf", tmp_dir, name);
}

static void write_fixture(const fixture *f) {
    synth_params p = synth_default_params();
    p.arch = f->arch;
    p.type = f->type;
    p.n_layer = f->n_layer;
    p.n_embd = f->n_embd;
    p.n_head = 4;
    p.n_head_kv = f->n_head_kv;
    p.head_dim = f->head_dim;
    p.n_ff = f->n_ff;
    p.n_dense = f->n_dense;
    p.n_ctx = 128;
    p.seed = f->seed;
    char path[128];
    fixture_path(f->name, path, sizeof path);
    const hearth_err err = synth_write(path, &p);
    if (err) fprintf(stderr, "%s: %s\n", f->name, hearth_last_error());
    REQUIRE(err == HEARTH_OK);
}

/* The fixture's text: its first id, then ids spread over the vocabulary. */
static void fixture_ids(const fixture *f, int32_t *ids) {
    ids[0] = f->first;
    for (int i = 1; i < f->n_ids; i++) ids[i] = 3 + (i * 37 + 11) % 250;
}

/* The text's vector under `pooling` (not normalized) into out. */
static void embed_one(const char *path, const fixture *f, hearth_pooling pooling, float *out) {
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 128;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    int32_t ids[MAX_IDS];
    fixture_ids(f, ids);
    REQUIRE(hearth_embed(s, ids, f->n_ids, pooling, false, out) == HEARTH_OK);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* max |a/|a| - b/|b||: unit vectors, as users get them */
static double unit_diff(const float *a, const float *b, int n) {
    double na = 0.0, nb = 0.0, worst = 0.0;
    for (int i = 0; i < n; i++) na += (double)a[i] * a[i], nb += (double)b[i] * b[i];
    na = sqrt(na), nb = sqrt(nb);
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] / na - b[i] / nb));
    return worst;
}

static void check_fixture(const fixture *f) {
    char path[128];
    fixture_path(f->name, path, sizeof path);
    static const hearth_pooling pools[3] = {HEARTH_POOL_CLS, HEARTH_POOL_LAST, HEARTH_POOL_MEAN};
    const size_t bytes = sizeof(float) * (size_t)f->n_embd;
    for (int k = 0; k < 3; k++) {
        float exact[MAX_EMBD], fast[MAX_EMBD];
        kern_set_exact(true);
        embed_one(path, f, pools[k], exact);
        kern_set_exact(false);
        embed_one(path, f, pools[k], fast);
        const uint64_t h = test_fnv1a(TEST_FNV_SEED, exact, bytes);
        CHECKF(h == f->hash[k], "%s %s: exact-mode hash %016llx, llama.cpp's %016llx", f->name,
               hearth_pooling_name(pools[k]), (unsigned long long)h,
               (unsigned long long)f->hash[k]);
        /* default mode: its own summation orders (and F32 activations where exact mode
           rounds them to 8 bits only when llama.cpp does: the same here) */
        const double d = unit_diff(fast, exact, f->n_embd);
        CHECKF(d < (f->type == KERN_F32 ? 1e-4 : 2e-2), "%s %s: default mode differs by %g",
               f->name, hearth_pooling_name(pools[k]), d);
    }
}

/* EmbeddingGemma's keys, the window, and the files refused. */
static void hparams_test(void) {
    char src[128], dst[128], err[512];
    fixture_path("ge-f32-dense", src, sizeof src);
    snprintf(dst, sizeof dst, "%s/patched.gguf", tmp_dir);
    hearth_model *m = peer_load(src, err, sizeof err);
    REQUIRE(m);
    CHECK(m->arch->encoder && !m->arch->post_ln && m->arch->swa_symmetric);
    CHECK(m->hp.swa_window == 8 && m->hp.swa_pattern == 2); /* synth's */
    CHECK(m->layers[0].swa && !m->layers[1].swa && m->layers[6].swa);
    CHECK(m->layers[0].rope_base == 10000.0f);
    CHECK(m->hp.attn_scale == 1.0f / sqrtf(32.0f) && m->hp.embd_scale == sqrtf(128.0f));
    CHECK(m->dense_2.n_rows == 384 && m->dense_2.n_cols == 128);
    CHECK(m->dense_3.n_rows == 128 && m->dense_3.n_cols == 384);
    CHECK(hearth_model_pooling(m) == HEARTH_POOL_MEAN && !hearth_model_generates(m));
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    const int32_t one = 1;
    float logits[512];
    CHECK(hearth_decode(s, &one, 1, logits, false) == HEARTH_ERR_UNSUPPORTED);
    hearth_session_free(s);
    hearth_model_free(m);

    /* the window is required, as llama.cpp requires it */
    peer_patch(src, dst, "attention.sliding_window", "X", 1, 0);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "sliding_window"), "%s", err);
    hearth_model_free(m);
    /* one dense projection without the other */
    peer_patch(src, dst, "dense_3.weight", "X", 1, 0);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "dense_2.weight and dense_3.weight"), "%s", err);
    hearth_model_free(m);
    /* a causal gemma-embedding file is a variant Hearth does not run */
    const unsigned char yes = 1;
    peer_patch(src, dst, "attention.causal", &yes, 1, strlen("attention.causal") + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "causal attention is not supported"), "%s", err);
    hearth_model_free(m);
    unlink(dst);
}

/* Encoders run from text. Files with XLM-RoBERTa's unigram vocabulary: bert
 * as bge-m3 and multilingual-e5 are (CLS pooling), nomic-bert-moe as
 * nomic-embed-text-v2-moe is (experts on odd layers, mean pooling). And
 * with synth's SentencePiece vocabulary modern-bert (ModernBERT: pre-LN
 * LayerNorms, a centred window of 4 on odd layers, global RoPE base 160000
 * on even ones, GeGLU; the SiLU variant by its hidden_activation key) and
 * eurobert (EuroBERT: llama's blocks attending both ways, GQA). The ids (of
 * <s> text </s> for the unigram files) and the pooled vector's hash in exact
 * mode are llama.cpp's for the same files (34af94cd, its tokenizer). */
typedef struct text_case {
    const char *name, *arch;
    kern_type type;
    int n_layer, n_head_kv, n_expert, pooling;
    uint64_t seed, hash;
    const char *act; /* non-NULL: hidden_activation patched to this ("silu") */
} text_case;

static const text_case k_text_cases[] = {
    {"xlmr-cls", "bert", KERN_F32, 2, 4, 0, 2, 5, 0xbe8ad9be8136470cull, NULL},
    {"nomic-moe-f32", "nomic-bert-moe", KERN_F32, 4, 4, 8, 1, 7, 0xfe4be0593cf12ba4ull, NULL},
    {"nomic-moe-q8", "nomic-bert-moe", KERN_Q8_0, 4, 4, 8, 1, 8, 0xd02ba969abb67ff3ull, NULL},
    {"modern-f32", "modern-bert", KERN_F32, 4, 4, 0, 1, 11, 0x3fe15b262175d1d8ull, NULL},
    {"modern-q8-cls", "modern-bert", KERN_Q8_0, 4, 4, 0, 2, 12, 0xbbc110d2217dd163ull, NULL},
    {"modern-silu", "modern-bert", KERN_F32, 4, 4, 0, 1, 11, 0xdad522f3f8cc66c7ull, "silu"},
    {"eurobert-f32", "eurobert", KERN_F32, 3, 2, 0, 1, 21, 0xaad413a11963fc0eull, NULL},
    {"eurobert-q8-cls", "eurobert", KERN_Q8_0, 3, 2, 0, 2, 22, 0xe08629b551db2917ull, NULL},
};

static const char k_text[] = "Hello world, the little girl named Lily";
static const char k_text_long[] =
    "Hello world, the little girl named Lily played in the warm home by the fire";

static synth_params text_params(const char *arch, kern_type type, uint64_t seed) {
    synth_params p = synth_default_params();
    /* XLM-RoBERTa's vocabulary for the post-LN families, synth's own for the others */
    p.arch = arch, p.type = type, p.seed = seed;
    p.unigram = arch_find(arch, strlen(arch))->post_ln;
    p.n_embd = 128, p.n_head = p.n_head_kv = 4, p.head_dim = 32, p.n_ff = 256;
    return p;
}

static void check_text_case(const text_case *c) {
    static const int32_t want_ids[] = {0, 104, 105, 32, 40, 88, 89, 90, 91, 2};
    char path[128];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, c->name);
    synth_params p = text_params(c->arch, c->type, c->seed);
    p.n_layer = c->n_layer, p.n_head_kv = c->n_head_kv, p.pooling = c->pooling;
    p.n_expert = c->n_expert, p.n_expert_used = c->n_expert ? 2 : 0;
    p.swa_window = 4; /* modern-bert's; the others have no window */
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    if (c->act) { /* "gelu" -> c->act: after the key, its type and the string's length */
        char patched[140];
        snprintf(patched, sizeof patched, "%s.act", path);
        static const char key[] = "modern-bert.hidden_activation";
        peer_patch(path, patched, key, c->act, 4, strlen(key) + 4 + 8);
        REQUIRE(rename(patched, path) == 0);
    }
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    int32_t ids[MAX_IDS];
    size_t n = 0;
    const char *text = p.unigram ? k_text : k_text_long;
    CHECK(hearth_tokenize(m, text, strlen(text), true, false, ids, MAX_IDS, &n) == HEARTH_OK);
    CHECKF(p.unigram ? n == 10 && !memcmp(ids, want_ids, sizeof want_ids) : n == 56, "%s: ids",
           c->name);
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    float e[128], fast[128];
    kern_set_exact(true);
    CHECK(hearth_embed(s, ids, (int)n, hearth_model_pooling(m), false, e) == HEARTH_OK);
    kern_set_exact(false);
    CHECK(hearth_embed(s, ids, (int)n, hearth_model_pooling(m), false, fast) == HEARTH_OK);
    const uint64_t h = test_fnv1a(TEST_FNV_SEED, e, sizeof e);
    CHECKF(h == c->hash, "%s: exact-mode hash %016llx, llama.cpp's %016llx", c->name,
           (unsigned long long)h, (unsigned long long)c->hash);
    const double d = unit_diff(fast, e, 128);
    CHECKF(d < (c->type == KERN_F32 ? 1e-4 : 2e-2), "%s: default mode differs by %g", c->name, d);
    hearth_session_free(s);
    hearth_model_free(m);
    if (c->type == KERN_F32 && p.unigram) { /* a single type row becomes a vector, as
                                                llama-quantize writes it */
        char q8[140];
        snprintf(q8, sizeof q8, "%s.q8", path);
        quant_params qp = quant_default_params();
        qp.ftype = QUANT_FTYPE_Q8_0;
        CHECK(quant_model(path, q8, &qp, NULL) == HEARTH_OK);
        CHECKF(hearth_model_load(q8, NULL, &m) == HEARTH_OK, "%s Q8_0: %s", c->name,
               hearth_last_error());
        hearth_model_free(m);
        unlink(q8);
    }
    unlink(path);
}

/* ModernBERT's layers and keys: global layers first in each pattern with
 * the global RoPE base, no norm before layer 0, the activation's key, and
 * no window without attention.sliding_window (as llama.cpp reads them). */
static void modern_hparams_test(void) {
    char src[128], dst[128], err[512];
    snprintf(src, sizeof src, "%s/modern.gguf", tmp_dir);
    snprintf(dst, sizeof dst, "%s/modern-patched.gguf", tmp_dir);
    synth_params p = text_params("modern-bert", KERN_F32, 3);
    p.n_layer = 4, p.swa_window = 4;
    REQUIRE(synth_write(src, &p) == HEARTH_OK);
    hearth_model *m = peer_load(src, err, sizeof err);
    REQUIRE(m);
    CHECK(!m->layers[0].swa && m->layers[1].swa && !m->layers[2].swa && m->layers[3].swa);
    CHECK(m->layers[0].rope_base == 160000.0f && m->layers[1].rope_base == 10000.0f);
    CHECK(!m->layers[0].attn_norm && m->layers[1].attn_norm && m->tok_norm && !m->tok_norm_b);
    CHECK(m->hp.act == FFN_GELU && m->hp.swa_window == 4 && m->hp.rms_eps == 1e-5f);
    hearth_model_free(m);
    static const char act[] = "modern-bert.hidden_activation";
    peer_patch(src, dst, act, "relu", 4, strlen(act) + 4 + 8);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "relu FFN is not supported"), "%s", err);
    hearth_model_free(m);
    peer_patch(src, dst, "attention.sliding_window", "X", 1, 0); /* the key renamed away */
    m = peer_load(dst, err, sizeof err);
    CHECKF(m && !m->layers[1].swa && m->hp.swa_window == 0, "%s", err);
    hearth_model_free(m);
    unlink(dst);
    unlink(src);
}

/* Rerankers from text: XLM-RoBERTa's (bge-reranker-v2-m3: the pair as
 * llama-server's format_prompt_rerank builds it, <s> query </s></s>
 * document </s>) and ModernBERT's (gte-reranker-modernbert: the head over
 * the rows' mean, GELU and its norm). The pairs' lengths (and the XLM-R
 * ids) and the scores in exact mode are llama.cpp's for the same files. */
static void rerank_test(const char *arch, int n_layer, uint64_t seed, size_t want_n,
                        const int32_t *want_ids, float want) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s-rerank.gguf", tmp_dir, arch);
    synth_params p = text_params(arch, KERN_F32, seed);
    p.rerank = 1, p.n_layer = n_layer, p.swa_window = 4;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    int32_t ids[MAX_IDS];
    size_t n = 0;
    CHECK(hearth_tokenize_rerank(m, "Hello world", 11, "the little girl named Lily", 26, ids,
                                 MAX_IDS, &n) == HEARTH_OK);
    CHECKF(n == want_n && (!want_ids || !memcmp(ids, want_ids, n * sizeof *ids)), "%s: pair ids",
           arch);
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    const int n_ids = (int)n;
    float score = 0.0f;
    kern_set_exact(true);
    CHECK(hearth_rank_batch(s, ids, &n_ids, 1, &score) == HEARTH_OK);
    kern_set_exact(false);
    CHECKF(score == want, "%s: rerank score %.9g, llama.cpp's %.9g", arch, score, want);
    hearth_session_free(s);
    hearth_model_free(m);
    unlink(path);
}

int main(void) {
    peer_tmpdir(tmp_dir, sizeof tmp_dir, "encoders");
    for (size_t i = 0; i < sizeof k_text_cases / sizeof k_text_cases[0]; i++)
        check_text_case(&k_text_cases[i]);
    static const int32_t xlmr_pair[] = {0, 104, 105, 2, 2, 40, 88, 89, 90, 91, 2};
    rerank_test("bert", 2, 6, 11, xlmr_pair, -2.3812623f);
    rerank_test("modern-bert", 3, 3, 33, NULL, 1.5238657f);
    modern_hparams_test();
    const int n = (int)(sizeof k_fixtures / sizeof k_fixtures[0]);
    for (int i = 0; i < n; i++) write_fixture(&k_fixtures[i]);
    for (int i = 0; i < n; i++) check_fixture(&k_fixtures[i]);
    hparams_test();
    peer_tmpdir_remove(tmp_dir);
    return test_done("test_encoders");
}
