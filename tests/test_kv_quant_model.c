/*
 * test_kv_quant_model.c - a Q8_0 KV cache (HEARTH_KV_Q8_0) end to end, on
 * ../shared/conformance's models (skipped without them):
 *  - the 32-token prompt as one batch and 16 tokens decoded one at a time
 *    (teacher-forced with the golden continuation), against llama.cpp's
 *    golden logits (F32 cache) and against Hearth's own F32 cache, in both
 *    modes, for the F32 and Q8_0 files of every tiny model and stories260K
 *    (head size 8: padded blocks). Tolerances below, from what llama.cpp's
 *    own q8_0 cache costs on the same models;
 *  - what must not change a bit: a truncation and re-decode (speculative
 *    decoding's path), hearth_session_copy into a session of another size,
 *    hearth_decode_multi beside another sequence, hearth_embed_batch against
 *    hearth_embed, speculative decoding (prompt lookup) against the plain
 *    loop;
 *  - stories260K's greedy story with a Q8_0 cache against an F32 cache
 *    (agreement reported; asserted only up to the first near tie).
 */
#include "golden.h"
#include "hearth.h"
#include "kernels/kernels.h"
#include "test.h"

#include <unistd.h>

enum { N_CTX = 256, N_PROMPT_MAX = 64, N_GEN_MAX = 16 };

/* What llama.cpp's own q8_0 cache costs (-ctk q8_0 -ctv q8_0, which needs
 * its flash attention), against its F32-cache golden logits, over the 32
 * prompt rows: measured with libllama of the fixtures' commit on this
 * machine (AVX-512 build, 2 threads, n_ctx 256). Hearth's Q8_0 cache must
 * stay within REF_RMS x and REF_MAX x these on the prompt and generation
 * rows (it measured 0.96..1.21 x the rms, 0.8..1.35 x the max); a cache
 * that quantized worse (rounding toward zero) or read a wrong scale would
 * not. The Q8_0 files' errors are twice the F32 files' in both engines. */
typedef struct ref_err {
    const char *file;
    double max, rms;
} ref_err;
static const ref_err k_ref[] = {
    {"tiny-llama.F32", 0.123, 0.0239},
    {"tiny-llama.Q8_0", 0.236, 0.0490},
    {"tiny-qwen2.F32", 0.106, 0.0229},
    {"tiny-qwen2.Q8_0", 0.231, 0.0483},
    {"tiny-qwen3.F32", 0.111, 0.0227},
    {"tiny-qwen3.Q8_0", 0.207, 0.0487},
    {"tiny-gemma3.F32", 0.0452, 0.00861},
    {"tiny-gemma3.Q8_0", 0.098, 0.0214},
    {"tiny-phi3.F32", 0.112, 0.0219},
    {"tiny-phi3.Q8_0", 0.257, 0.0487},
    /* stories260K (head size 8): llama.cpp refuses a q8_0 cache there (the
     * block does not divide the head); Hearth pads. llama.cpp's F16 cache
     * costs this model 8 to 25 times what it costs the tiny models (the
     * fixtures' README), so 8 times the tiny models' worst q8_0 figures
     * stand in (measured: max 0.93, rms 0.19). */
    {"stories260K.F32", 8 * 0.123, 8 * 0.0239},
};
#define REF_RMS 1.4
#define REF_MAX 1.8

typedef struct golden {
    int32_t prompt[N_PROMPT_MAX], gen[N_GEN_MAX + 1];
    int n_prompt, n_gen, n_vocab;
    float *logits, *gen_logits; /* [n_prompt][n_vocab], [n_gen][n_vocab] */
} golden;

static bool golden_load(golden *g, const char *dir, const char *type) {
    char path[1024];
    memset(g, 0, sizeof *g);
    snprintf(path, sizeof path, "%s/golden/%s.json", dir, type);
    char *json = golden_read(path, NULL);
    if (!json) return false;
    double v[N_PROMPT_MAX + N_GEN_MAX + 1];
    g->n_prompt = golden_array(json, "prompt_ids", v, N_PROMPT_MAX);
    for (int i = 0; i < g->n_prompt && i < N_PROMPT_MAX; i++) g->prompt[i] = (int32_t)v[i];
    g->n_gen = golden_array(json, "gen_ids", v, N_GEN_MAX + 1);
    for (int i = 0; i < g->n_gen && i < N_GEN_MAX; i++) g->gen[i] = (int32_t)v[i];
    const char *nv = strstr(json, "\"n_vocab\": ");
    g->n_vocab = nv ? atoi(nv + strlen("\"n_vocab\": ")) : 0;
    free(json);
    REQUIRE(g->n_prompt > 0 && g->n_prompt <= N_PROMPT_MAX && g->n_gen == N_GEN_MAX &&
            g->n_vocab > 0);
    size_t len = 0;
    snprintf(path, sizeof path, "%s/golden/%s.logits.f32", dir, type);
    g->logits = (float *)golden_read(path, &len);
    REQUIRE(g->logits && len == (size_t)g->n_prompt * g->n_vocab * sizeof(float));
    snprintf(path, sizeof path, "%s/golden/%s.gen_logits.f32", dir, type);
    g->gen_logits = (float *)golden_read(path, &len);
    REQUIRE(g->gen_logits && len == (size_t)g->n_gen * g->n_vocab * sizeof(float));
    return true;
}

static void golden_free(golden *g) {
    free(g->logits);
    free(g->gen_logits);
}

static hearth_session *session_new(hearth_model *m, hearth_kv_type kv, int n_ctx, int n_batch) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    sp.n_batch = n_batch;
    sp.kv_type = kv;
    sp.n_seq_max = 2;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

/* The golden path: the prompt as one batch (every row's logits), then the
 * golden continuation one token at a time. out: [n_prompt + n_gen][n_vocab]. */
static void run_golden_path(hearth_model *m, hearth_kv_type kv, const golden *g, float *out) {
    hearth_session *s = session_new(m, kv, N_CTX, N_CTX);
    REQUIRE(hearth_decode(s, g->prompt, g->n_prompt, out, true) == HEARTH_OK);
    for (int i = 0; i < g->n_gen; i++)
        REQUIRE(hearth_decode(s, &g->gen[i], 1,
                              out + (size_t)(g->n_prompt + i) * (size_t)g->n_vocab,
                              false) == HEARTH_OK);
    hearth_session_free(s);
}

typedef struct err_stats {
    double max, rms;
    int agree, rows;
} err_stats;

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static err_stats compare(const float *a, const float *b, int rows, int n_vocab) {
    err_stats e = {.rows = rows};
    double se = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)n_vocab; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        e.max = d > e.max || d != d ? d : e.max;
        se += d * d;
    }
    e.rms = sqrt(se / ((double)rows * n_vocab));
    for (int r = 0; r < rows; r++)
        e.agree +=
            argmax(a + (size_t)r * n_vocab, n_vocab) == argmax(b + (size_t)r * n_vocab, n_vocab);
    return e;
}

/* The largest ratios to llama.cpp's errors seen (reported). */
static double g_worst_max, g_worst_rms;

/* One model file: the golden path with both caches, against each other and
 * the golden logits; then the bit-for-bit paths (default mode). */
static void check_logits(hearth_model *m, const golden *g, const char *what, bool exact) {
    const ref_err *ref = NULL;
    for (size_t i = 0; i < sizeof k_ref / sizeof k_ref[0]; i++)
        if (!strcmp(k_ref[i].file, what)) ref = &k_ref[i];
    REQUIRE(ref);
    const double tol_max = REF_MAX * ref->max, tol_rms = REF_RMS * ref->rms;
    const int rows = g->n_prompt + g->n_gen, nv = g->n_vocab;
    float *f32 = malloc((size_t)rows * nv * sizeof(float));
    float *q8 = malloc((size_t)rows * nv * sizeof(float));
    REQUIRE(f32 && q8);
    kern_set_exact(exact);
    run_golden_path(m, HEARTH_KV_F32, g, f32);
    run_golden_path(m, HEARTH_KV_Q8_0, g, q8);
    kern_set_exact(false);
    const size_t np = (size_t)g->n_prompt * nv;
    const err_stats gp = compare(q8, g->logits, g->n_prompt, nv);
    const err_stats gg = compare(q8 + np, g->gen_logits, g->n_gen, nv);
    const err_stats fp = compare(q8, f32, rows, nv);
    const err_stats f32g = compare(f32, g->logits, g->n_prompt, nv);
    printf("%-22s %-7s q8_0 cache vs golden: prompt max %.4f rms %.4f argmax %d/%d, gen max %.4f "
           "rms %.4f argmax %d/%d | vs f32 cache max %.4f rms %.4f | f32 cache vs golden %.2g | "
           "vs the reference: rms x%.2f max x%.2f\n",
           what, exact ? "exact" : "default", gp.max, gp.rms, gp.agree, gp.rows, gg.max, gg.rms,
           gg.agree, gg.rows, fp.max, fp.rms, f32g.max, fmax(gp.rms, gg.rms) / ref->rms,
           fmax(gp.max, gg.max) / ref->max);
    CHECKF(gp.max <= tol_max && gp.rms <= tol_rms && gg.max <= tol_max && gg.rms <= tol_rms,
           "%s: q8_0 cache vs golden: prompt max %g rms %g, gen max %g rms %g (tolerance %g, %g)",
           what, gp.max, gp.rms, gg.max, gg.rms, tol_max, tol_rms);
    CHECKF(fp.max <= tol_max && fp.rms <= tol_rms, "%s: q8_0 vs f32 cache: max %g rms %g", what,
           fp.max, fp.rms);
    /* a quantized cache costs something: equal logits would mean the
     * Q8_0 path was not taken */
    CHECKF(fp.max > 1e-4, "%s: q8_0 cache logits equal the f32 cache's (max %g)", what, fp.max);
    g_worst_rms = fmax(g_worst_rms, fmax(gp.rms, gg.rms) / ref->rms);
    g_worst_max = fmax(g_worst_max, fmax(gp.max, gg.max) / ref->max);
    free(f32);
    free(q8);
}

/* Truncation, copy into another size, a batch beside another sequence:
 * the same logits bit for bit as decoding straight through (default mode). */
static void check_paths(hearth_model *m, const golden *g, const char *what) {
    const int n = g->n_prompt, nv = g->n_vocab, cut = n * 5 / 8;
    float *all = malloc((size_t)n * nv * sizeof(float));
    float *again = malloc((size_t)n * nv * sizeof(float));
    float *two = malloc((size_t)2 * nv * sizeof(float));
    REQUIRE(all && again && two);
    hearth_session *s = session_new(m, HEARTH_KV_Q8_0, N_CTX, N_CTX);
    REQUIRE(hearth_decode(s, g->prompt, n, all, true) == HEARTH_OK);
    /* truncation (speculative decoding drops rejected proposals so) */
    REQUIRE(hearth_session_truncate(s, cut) == HEARTH_OK);
    REQUIRE(hearth_decode(s, g->prompt + cut, n - cut, again, true) == HEARTH_OK);
    CHECKF(memcmp(again, all + (size_t)cut * nv, (size_t)(n - cut) * nv * sizeof(float)) == 0,
           "%s: q8_0 logits after truncating to %d and decoding again differ", what, cut);
    /* copy into a session of another context size (other strides) */
    hearth_session *c = session_new(m, HEARTH_KV_Q8_0, 48, 48);
    REQUIRE(hearth_session_copy(c, s, cut) == HEARTH_OK);
    REQUIRE(hearth_decode(c, g->prompt + cut, n - cut, again, true) == HEARTH_OK);
    CHECKF(memcmp(again, all + (size_t)cut * nv, (size_t)(n - cut) * nv * sizeof(float)) == 0,
           "%s: q8_0 logits after hearth_session_copy differ", what);
    hearth_session *f = session_new(m, HEARTH_KV_F32, N_CTX, N_CTX);
    CHECK(hearth_session_copy(f, s, cut) == HEARTH_ERR_INVALID_ARG); /* types differ */
    /* two sequences in one batch (sessions of one context size): s at
     * cut + 1 tokens, c2 (a copy) at cut */
    hearth_session *c2 = session_new(m, HEARTH_KV_Q8_0, N_CTX, N_CTX);
    REQUIRE(hearth_session_truncate(s, cut) == HEARTH_OK);
    REQUIRE(hearth_session_copy(c2, s, cut) == HEARTH_OK);
    REQUIRE(hearth_decode(s, g->prompt + cut, 1, NULL, false) == HEARTH_OK);
    hearth_session *const pair[2] = {s, c2};
    const int32_t ids[2] = {g->prompt[cut + 1], g->prompt[cut]};
    REQUIRE(hearth_decode_multi(pair, ids, 2, two) == HEARTH_OK);
    CHECKF(memcmp(two, all + (size_t)(cut + 1) * nv, (size_t)nv * sizeof(float)) == 0 &&
               memcmp(two + nv, all + (size_t)cut * nv, (size_t)nv * sizeof(float)) == 0,
           "%s: q8_0 logits of hearth_decode_multi differ from one sequence's", what);
    CHECK(hearth_decode_multi((hearth_session *const[]){s, f}, ids, 2, two) ==
          HEARTH_ERR_INVALID_ARG);
    hearth_session_free(f);
    hearth_session_free(c2);
    hearth_session_free(c);
    hearth_session_free(s);
    free(all), free(again), free(two);
}

/* hearth_embed_batch's vectors are hearth_embed's, bit for bit, and close
 * to an F32 cache's. */
static void check_embed(hearth_model *m, const golden *g, const char *what) {
    const int d = hearth_model_n_embd(m);
    static const int lens[4] = {5, 17, 3, 7}; /* within the 32-token prompt */
    float *batch = malloc((size_t)4 * d * sizeof(float)), *one = malloc((size_t)d * sizeof(float));
    float *f32 = malloc((size_t)d * sizeof(float));
    REQUIRE(batch && one && f32);
    hearth_session *s = session_new(m, HEARTH_KV_Q8_0, 64, 32);
    hearth_session *t = session_new(m, HEARTH_KV_F32, 64, 32);
    REQUIRE(hearth_embed_batch(s, g->prompt, lens, 4, HEARTH_POOL_MEAN, true, batch) == HEARTH_OK);
    double worst_cos = 1;
    for (int i = 0, off = 0; i < 4; off += lens[i++]) {
        REQUIRE(hearth_embed(s, g->prompt + off, lens[i], HEARTH_POOL_MEAN, true, one) ==
                HEARTH_OK);
        CHECKF(memcmp(one, batch + (size_t)i * d, (size_t)d * sizeof(float)) == 0,
               "%s: q8_0 embedding of text %d: batch and alone differ", what, i);
        REQUIRE(hearth_embed(t, g->prompt + off, lens[i], HEARTH_POOL_MEAN, true, f32) ==
                HEARTH_OK);
        double cos = 0;
        for (int k = 0; k < d; k++) cos += (double)one[k] * f32[k];
        worst_cos = fmin(worst_cos, cos);
    }
    CHECKF(worst_cos > 0.999, "%s: q8_0 vs f32 cache embeddings: cosine %g", what, worst_cos);
    hearth_session_free(s);
    hearth_session_free(t);
    free(batch), free(one), free(f32);
}

typedef struct gen_out {
    int32_t ids[128];
    int n;
} gen_out;

static bool keep_id(const hearth_token_event *ev, void *user) {
    gen_out *o = user;
    if (ev->id >= 0 && o->n < 128) o->ids[o->n++] = ev->id;
    return true;
}

/* Greedy generation with prompt lookup (speculative: a pass over 1 + k
 * tokens, rejected ones truncated) equals the plain loop on a Q8_0 cache. */
static int check_spec(hearth_model *m, const int32_t *prompt, int n_prompt, int n_gen,
                      const char *what) {
    gen_out out[2] = {0};
    hearth_gen_result res[2];
    for (int k = 0; k < 2; k++) {
        hearth_session *s = session_new(m, HEARTH_KV_Q8_0, N_CTX, 64);
        hearth_sampling sp = hearth_sampling_default_params();
        sp.temperature = 0;
        hearth_sampler *smp = NULL;
        REQUIRE(hearth_sampler_new(m, &sp, &smp) == HEARTH_OK);
        hearth_gen_params gp = {.max_tokens = n_gen};
        if (k) gp.spec_n_max = 3, gp.spec_ngram_n = 2;
        REQUIRE(hearth_generate(s, smp, prompt, n_prompt, &gp, keep_id, &out[k], &res[k]) ==
                HEARTH_OK);
        hearth_sampler_free(smp);
        hearth_session_free(s);
    }
    CHECKF(out[0].n == out[1].n && memcmp(out[0].ids, out[1].ids, out[0].n * sizeof(int32_t)) == 0,
           "%s: q8_0 cache: speculative (prompt lookup) and plain greedy tokens differ", what);
    return res[1].n_accepted;
}

/* stories260K's greedy story (64 tokens after "Once upon a time") with a
 * Q8_0 cache against an F32 cache: where they agree, and up to where they
 * must (the F32 run's top-2 margin above twice the logit tolerance; this
 * model's margins are small, so that is reported more than asserted). */
static void check_story(hearth_model *m, const char *dir) {
    golden g;
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/F32.story.json", dir);
    char *json = golden_read(path, NULL);
    REQUIRE(json);
    double v[64];
    const int n_prompt = golden_array(json, "prompt_ids", v, 64);
    REQUIRE(n_prompt > 0 && n_prompt < 64);
    for (int i = 0; i < n_prompt; i++) g.prompt[i] = (int32_t)v[i];
    free(json);
    enum { N = 64 };
    const int nv = hearth_model_n_vocab(m);
    int32_t toks[2][N];
    float margin[N];
    float *logits = malloc((size_t)nv * sizeof(float));
    REQUIRE(logits);
    for (int k = 0; k < 2; k++) {
        hearth_session *s = session_new(m, k ? HEARTH_KV_Q8_0 : HEARTH_KV_F32, N_CTX, 64);
        REQUIRE(hearth_decode(s, g.prompt, n_prompt, logits, false) == HEARTH_OK);
        for (int i = 0; i < N; i++) {
            const int a = argmax(logits, nv);
            toks[k][i] = a;
            if (!k) {
                float second = -INFINITY;
                for (int j = 0; j < nv; j++)
                    if (j != a && logits[j] > second) second = logits[j];
                margin[i] = logits[a] - second;
            }
            REQUIRE(hearth_decode(s, &toks[k][i], 1, logits, false) == HEARTH_OK);
        }
        hearth_session_free(s);
    }
    int same = 0, prefix = 0, sure = 0;
    const double tol = k_ref[sizeof k_ref / sizeof k_ref[0] - 1].max * REF_MAX;
    while (sure < N && margin[sure] > 2 * tol) sure++;
    for (int i = 0; i < N; i++) same += toks[0][i] == toks[1][i];
    while (prefix < N && toks[0][prefix] == toks[1][prefix]) prefix++;
    printf("stories260K greedy story, q8_0 vs f32 cache: %d of %d tokens equal, first %d in a row "
           "(the f32 run's margins stay above %.1f for %d tokens)\n",
           same, N, prefix, 2 * tol, sure);
    CHECKF(prefix >= sure, "stories260K: q8_0 cache's greedy story leaves the f32 one at %d",
           prefix);
    free(logits);
    /* the story repeats itself: prompt lookup's proposals get accepted */
    const int acc = check_spec(m, g.prompt, n_prompt, N, "stories260K story");
    printf("stories260K: prompt lookup accepted %d proposals\n", acc);
    CHECK(acc > 0);
}

static void check_file(const char *dir, const char *name, const char *type, bool stories,
                       bool all) {
    char path[1024], what[64];
    snprintf(path, sizeof path, "%s/%s.%s.gguf", dir, name, type);
    snprintf(what, sizeof what, "%s.%s", name, type);
    golden g;
    REQUIRE(golden_load(&g, dir, type));
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    for (int exact = 0; exact < (all ? 2 : 1); exact++) check_logits(m, &g, what, exact);
    if (all) {
        check_paths(m, &g, what);
        check_embed(m, &g, what);
        check_spec(m, g.prompt, g.n_prompt, 24, what);
    }
    if (stories) check_story(m, dir);
    hearth_model_free(m);
    golden_free(&g);
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/conformance/models", HEARTH_SHARED_DIR);
    if (access(dir, R_OK) != 0) {
        printf("test_kv_quant_model: %s not found, skipped\n", dir);
        return TEST_SKIP;
    }
    static const char *models[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3",
                                   "tiny-phi3"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        snprintf(dir, sizeof dir, "%s/conformance/models/%s", HEARTH_SHARED_DIR, models[i]);
        check_file(dir, models[i], "F32", false, true);
        check_file(dir, models[i], "Q8_0", false, false);
    }
    snprintf(dir, sizeof dir, "%s/conformance/stories260K", HEARTH_SHARED_DIR);
    check_file(dir, "stories260K", "F32", true, true);
    printf("q8_0 cache errors / llama.cpp's: rms up to x%.2f (tolerance x%.1f), max up to x%.2f "
           "(x%.1f)\n",
           g_worst_rms, REF_RMS, g_worst_max, REF_MAX);
    return test_done("test_kv_quant_model");
}
