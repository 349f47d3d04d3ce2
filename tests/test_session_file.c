/*
 * test_session_file.c - hearth_session_save / hearth_session_load (session
 * files: llama.cpp's prompt cache and slot save/restore). On ../shared's
 * tiny conformance models when present, else models the test writes, of
 * several architectures, with F32, F16 and Q8_0 KV caches: a session saved
 * and loaded into a fresh one (of the same context, and of a larger one)
 * gives the next logits and a greedy continuation bit for bit as the
 * original does, and the loaded session samples at once from the saved
 * logits; the file does not depend on the context (saved again from the
 * larger session it is the same bytes but for the context field); a
 * session without logits, or one a context shift moved, stays so. Every
 * refusal says why and leaves the session as it was: another model (other
 * shape, other weights of the same shape, a LoRA adapter), another KV type,
 * too many positions for the context, LongRoPE factors that differ, a
 * truncated file, corrupted size fields, a token id outside the vocabulary,
 * a missing file.
 */
#include "gen_collect.h"
#include "hearth.h"
#include "model/model.h"
#include "model/synth.h"
#include "test.h"

#include <unistd.h>

enum { N_CTX = 48, N_PROMPT = 21, N_NEXT = 3, N_GEN = 12 }; /* 21: a partial KV tile */

static char dir[] = "/tmp/hearth_session_file_XXXXXX";

static int32_t tok(int i) { return (int32_t)(3 + (i * 29) % 250); }

static hearth_session *session(hearth_model *m, int n_ctx, hearth_kv_type kv) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    sp.kv_type = kv;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

static hearth_model *load(const char *path, const char *lora) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    const hearth_lora l = {.path = lora, .scale = 1.0f};
    if (lora) {
        mp.loras = &l;
        mp.n_loras = 1;
    }
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    return m;
}

/* N_GEN greedy tokens after prompt on s. */
static hearth_gen_result greedy(hearth_model *m, hearth_session *s, const int32_t *prompt, int n,
                                collected *out) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = 0.0f;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(m, &sp, &smp) == HEARTH_OK);
    const hearth_gen_params gp = {.max_tokens = N_GEN};
    hearth_gen_result r = {0};
    memset(out, 0, sizeof *out);
    REQUIRE(hearth_generate(s, smp, prompt, n, &gp, collect, out, &r) == HEARTH_OK);
    hearth_sampler_free(smp);
    return r;
}

/* The last logits of a and b, then those of N_NEXT more tokens fed to
 * both in one batch (every row), equal bit for bit. */
static void same_logits(hearth_session *a, hearth_session *b, int nv, const char *what) {
    CHECKF(!memcmp(model_session_logits(a), model_session_logits(b), sizeof(float) * (size_t)nv),
           "%s: the loaded logits differ", what);
    const size_t bytes = sizeof(float) * (size_t)nv * N_NEXT;
    float *rows_a = malloc(bytes), *rows_b = malloc(bytes);
    const int32_t next[N_NEXT] = {tok(100), tok(101), tok(102)};
    REQUIRE(rows_a && rows_b && hearth_decode(a, next, N_NEXT, rows_a, true) == HEARTH_OK &&
            hearth_decode(b, next, N_NEXT, rows_b, true) == HEARTH_OK);
    CHECKF(!memcmp(rows_a, rows_b, bytes), "%s: the tokens after the load differ", what);
    free(rows_a);
    free(rows_b);
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len ? *len : 1);
    REQUIRE(b && fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static void spill(const char *path, const uint8_t *b, size_t len) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(b, 1, len, f) == len);
    fclose(f);
}

/* Loading path into s fails with err, a message, and s unchanged. */
static void refused(hearth_session *s, const char *path, hearth_err err, const char *needle,
                    const char *what) {
    const int pos = hearth_session_pos(s);
    const int32_t first = pos ? hearth_session_tokens(s, NULL)[0] : -1;
    const hearth_err got = hearth_session_load(s, path, NULL);
    CHECKF(got == err, "%s: %s instead of %s (%s)", what, hearth_err_name(got),
           hearth_err_name(err), hearth_last_error());
    CHECKF(strstr(hearth_last_error(), needle), "%s: message '%s' lacks '%s'", what,
           hearth_last_error(), needle);
    CHECKF(hearth_session_pos(s) == pos && (!pos || hearth_session_tokens(s, NULL)[0] == first),
           "%s: the session changed", what);
}

/* The file at `good` with 4 bytes at `at` replaced by v, at path. */
static void patched(const char *good, const char *path, size_t at, uint32_t v) {
    size_t len;
    uint8_t *b = slurp(good, &len);
    memcpy(b + at, &v, 4);
    spill(path, b, len);
    free(b);
}

static void check_round_trip(const char *path, hearth_kv_type kv, const char *what) {
    hearth_model *m = load(path, NULL);
    const int nv = hearth_model_n_vocab(m);
    int32_t prompt[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++) prompt[i] = tok(i);
    char file[128], file2[128];
    snprintf(file, sizeof file, "%s/a.session", dir);
    snprintf(file2, sizeof file2, "%s/b.session", dir);

    hearth_session *a = session(m, N_CTX, kv), *b = session(m, N_CTX, kv);
    hearth_session *big = session(m, 2 * N_CTX, kv), *a2 = session(m, N_CTX, kv);
    REQUIRE(hearth_decode(a, prompt, N_PROMPT, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(a2, prompt, N_PROMPT, NULL, false) == HEARTH_OK);
    uint64_t wrote = 0, read = 0, read2 = 0;
    REQUIRE(hearth_session_save(a, file, &wrote) == HEARTH_OK);
    REQUIRE(hearth_session_load(b, file, &read) == HEARTH_OK);
    REQUIRE(hearth_session_load(big, file, &read2) == HEARTH_OK);
    CHECKF(wrote > 0 && read == wrote && read2 == wrote, "%s: %llu written, %llu read", what,
           (unsigned long long)wrote, (unsigned long long)read);
    int exact = -1;
    const int32_t *held = hearth_session_tokens(b, &exact);
    CHECK(hearth_session_pos(b) == N_PROMPT && exact == N_PROMPT &&
          !memcmp(held, prompt, sizeof prompt));

    /* the file does not depend on the context: saved again from the larger
     * session, only the context field (bytes 76..79) differs */
    REQUIRE(hearth_session_save(big, file2, NULL) == HEARTH_OK);
    size_t la, lb;
    uint8_t *fa = slurp(file, &la), *fb = slurp(file2, &lb);
    CHECKF(la == lb && !memcmp(fa, fb, 76) && !memcmp(fa + 80, fb + 80, la - 80),
           "%s: the file saved from a larger context differs", what);
    free(fa);
    free(fb);

    /* generation: the loaded session samples at once, the original's tokens */
    collected want, got;
    hearth_session *fresh = session(m, N_CTX, kv);
    const hearth_gen_result rf = greedy(m, fresh, prompt, N_PROMPT, &want);
    const hearth_gen_result rb = greedy(m, b, prompt, N_PROMPT, &got);
    CHECKF(rb.n_cached == N_PROMPT && rb.n_prompt == 0, "%s: %d cached, %d evaluated", what,
           rb.n_cached, rb.n_prompt);
    CHECKF(rf.n_prompt == N_PROMPT && got.n == want.n &&
               !memcmp(got.ids, want.ids, sizeof(int32_t) * (size_t)want.n),
           "%s: the loaded session's continuation differs", what);
    /* logits: the saved ones, then the next tokens' */
    same_logits(a2, big, nv, what);
    REQUIRE(hearth_session_load(b, file, NULL) == HEARTH_OK); /* over what it held */
    REQUIRE(hearth_session_truncate(a2, N_PROMPT) == HEARTH_OK);
    REQUIRE(hearth_session_load(a2, file, NULL) == HEARTH_OK);
    same_logits(a2, b, nv, what);

    /* a session without its last logits saves none: the last token is
     * evaluated again */
    REQUIRE(hearth_session_truncate(a2, N_PROMPT) == HEARTH_OK);
    REQUIRE(hearth_session_save(a2, file2, NULL) == HEARTH_OK);
    REQUIRE(hearth_session_load(b, file2, NULL) == HEARTH_OK);
    const hearth_gen_result rn = greedy(m, b, prompt, N_PROMPT, &got);
    CHECKF(rn.n_cached == N_PROMPT - 1 && rn.n_prompt == 1 && got.n == want.n &&
               !memcmp(got.ids, want.ids, sizeof(int32_t) * (size_t)want.n),
           "%s: without logits: %d cached", what, rn.n_cached);
    /* an empty session */
    hearth_session *empty = session(m, N_CTX, kv);
    REQUIRE(hearth_session_save(empty, file2, NULL) == HEARTH_OK);
    REQUIRE(hearth_session_load(b, file2, NULL) == HEARTH_OK);
    CHECK(hearth_session_pos(b) == 0);

    /* refusals: too small a context, another KV type */
    hearth_session *small = session(m, 16, kv);
    REQUIRE(hearth_decode(small, prompt, 3, NULL, false) == HEARTH_OK);
    refused(small, file, HEARTH_ERR_CONTEXT_FULL, "more than this session's context", what);
    hearth_session *other_kv =
        session(m, N_CTX, kv == HEARTH_KV_F16 ? HEARTH_KV_Q8_0 : HEARTH_KV_F16);
    refused(other_kv, file, HEARTH_ERR_INVALID_ARG, "--kv-type must match", what);

    hearth_session *all[] = {a, b, big, a2, fresh, empty, small, other_kv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hearth_session_free(all[i]);
    hearth_model_free(m);
}

/* Every way a file is refused, on one model with an F16 cache. */
static void check_refusals(const char *path, const char *other_path, const char *same_shape) {
    hearth_model *m = load(path, NULL), *other = load(other_path, NULL);
    hearth_model *twin = load(same_shape, NULL);
    int32_t prompt[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++) prompt[i] = tok(i);
    char good[128], bad[128], lora[128];
    snprintf(good, sizeof good, "%s/good.session", dir);
    snprintf(bad, sizeof bad, "%s/bad.session", dir);
    snprintf(lora, sizeof lora, "%s/adapter.gguf", dir);
    hearth_session *a = session(m, N_CTX, HEARTH_KV_F16), *s = session(m, N_CTX, HEARTH_KV_F16);
    REQUIRE(hearth_decode(a, prompt, N_PROMPT, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_save(a, good, NULL) == HEARTH_OK);
    REQUIRE(hearth_decode(s, prompt + 5, 4, NULL, false) == HEARTH_OK); /* something to keep */

    hearth_session *so = session(other, N_CTX, HEARTH_KV_F16);
    refused(so, good, HEARTH_ERR_INVALID_ARG, "for another model", "other shape");
    hearth_session *st = session(twin, N_CTX, HEARTH_KV_F16);
    refused(st, good, HEARTH_ERR_INVALID_ARG, "same shape", "other weights");
    /* an adapter changes every key: its model refuses the base's file */
    synth_lora_params lp = synth_lora_default_params();
    REQUIRE(synth_lora_write(lora, path, &lp) == HEARTH_OK);
    hearth_model *adapted = load(path, lora);
    hearth_session *sl = session(adapted, N_CTX, HEARTH_KV_F16);
    refused(sl, good, HEARTH_ERR_INVALID_ARG, "LoRA", "adapter");

    size_t len;
    uint8_t *b = slurp(good, &len);
    const size_t cuts[] = {len - 1, len - 4096, 110, 100, 95, 8, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spill(bad, b, cuts[i]);
        refused(s, bad, HEARTH_ERR_FORMAT,
                cuts[i] > 103  ? "truncated"
                : cuts[i] > 95 ? "shorter than its header"
                : cuts[i]      ? "Hearth"
                               : "empty",
                "truncated");
    }
    /* version 1 (a header of 96 bytes, no win_first) still loads */
    uint8_t *v1 = malloc(len - 8);
    REQUIRE(v1);
    memcpy(v1, b, 96);
    memcpy(v1 + 96, b + 104, len - 104);
    v1[8] = 1;
    spill(bad, v1, len - 8);
    free(v1);
    CHECK(hearth_session_load(s, bad, NULL) == HEARTH_OK && hearth_session_pos(s) == N_PROMPT);
    spill(bad, b, len);
    FILE *f = fopen(bad, "ab");
    REQUIRE(f && fputc(0, f) == 0);
    fclose(f);
    refused(s, bad, HEARTH_ERR_FORMAT, "truncated or corrupted", "a byte too many");
    free(b);
    /* size fields: header offsets in docs/kv-cache.md */
    const struct {
        size_t at;
        uint32_t v;
        hearth_err err;
        const char *needle;
    } cases[] = {
        {0, 0x41524548, HEARTH_ERR_FORMAT, "magic"},
        {8, 3, HEARTH_ERR_UNSUPPORTED, "version 3"},
        {8, 1, HEARTH_ERR_FORMAT, "truncated or corrupted"}, /* a shorter header */
        {12, 7, HEARTH_ERR_INVALID_ARG, "KV cache is ?"},
        {12, HEARTH_KV_Q8_0, HEARTH_ERR_INVALID_ARG, "q8_0"},
        {16, 12345, HEARTH_ERR_INVALID_ARG, "same shape"},
        {56, 1000000, HEARTH_ERR_INVALID_ARG, "another model"},
        {60, 0xffffffffu, HEARTH_ERR_INVALID_ARG, "another model"},
        {68, 7, HEARTH_ERR_INVALID_ARG, "another model"},
        {72, 4096, HEARTH_ERR_FORMAT, "inconsistent"},
        {76, 1, HEARTH_ERR_FORMAT, "inconsistent"},
        {80, N_PROMPT - 1, HEARTH_ERR_FORMAT, "inconsistent"},
        {80, N_PROMPT + 1, HEARTH_ERR_FORMAT, "truncated or corrupted"},
        {80, 0x7fffffffu, HEARTH_ERR_FORMAT, "inconsistent"},
        {84, N_PROMPT + 1, HEARTH_ERR_FORMAT, "inconsistent"},
        {88, 2, HEARTH_ERR_FORMAT, "malformed"},
        {88, 0, HEARTH_ERR_FORMAT, "truncated or corrupted"},  /* logits said absent */
        {92, 1, HEARTH_ERR_INVALID_ARG, "another model"},      /* convolution layers */
        {92, 3, HEARTH_ERR_FORMAT, "malformed"},               /* more than the layers */
        {96, N_PROMPT + 1, HEARTH_ERR_FORMAT, "inconsistent"}, /* win_first */
        {100, 1, HEARTH_ERR_FORMAT, "malformed"},              /* reserved */
        {104 + 4 * 3, 0xffffffffu, HEARTH_ERR_FORMAT, "outside the vocabulary"},
        {104 + 4 * 20, 1u << 30, HEARTH_ERR_FORMAT, "outside the vocabulary"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        patched(good, bad, cases[i].at, cases[i].v);
        char what[64];
        snprintf(what, sizeof what, "field at %zu = %u", cases[i].at, cases[i].v);
        refused(s, bad, cases[i].err, cases[i].needle, what);
    }
    /* the n_ctx field past the positions, within reason: still fine */
    patched(good, bad, 76, 4096);
    CHECK(hearth_session_load(s, bad, NULL) == HEARTH_OK && hearth_session_pos(s) == N_PROMPT);
    REQUIRE(hearth_session_truncate(s, 2) == HEARTH_OK);
    snprintf(bad, sizeof bad, "%s/missing.session", dir);
    refused(s, bad, HEARTH_ERR_IO, "cannot open", "missing");
    snprintf(bad, sizeof bad, "%s/no/such/dir.session", dir);
    CHECK(hearth_session_save(a, bad, NULL) == HEARTH_ERR_IO && strstr(hearth_last_error(), bad));

    hearth_session *all[] = {a, s, so, st, sl};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hearth_session_free(all[i]);
    hearth_model_free(adapted);
    hearth_model_free(twin);
    hearth_model_free(other);
    hearth_model_free(m);
    unlink(lora);
}

/* A context shift: the loaded session knows which positions moved. */
static void check_shifted(const char *path) {
    hearth_model *m = load(path, NULL);
    int32_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = tok(i);
    char file[128];
    snprintf(file, sizeof file, "%s/shift.session", dir);
    hearth_session *a = session(m, N_CTX, HEARTH_KV_F16), *b = session(m, N_CTX, HEARTH_KV_F16);
    REQUIRE(hearth_decode(a, ids, 40, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_shift(a, 4, 10) == HEARTH_OK);
    REQUIRE(hearth_decode(a, ids, 2, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_save(a, file, NULL) == HEARTH_OK);
    REQUIRE(hearth_session_load(b, file, NULL) == HEARTH_OK);
    int ea = -1, eb = -1;
    const int32_t *ta = hearth_session_tokens(a, &ea), *tb = hearth_session_tokens(b, &eb);
    CHECKF(ea == 4 && eb == 4 && hearth_session_pos(b) == 32 && !memcmp(ta, tb, 32 * sizeof *ta),
           "shifted: n_exact %d and %d", ea, eb);
    same_logits(a, b, hearth_model_n_vocab(m), "shifted");
    hearth_session_free(a);
    hearth_session_free(b);
    hearth_model_free(m);
}

/* LongRoPE (phi3): keys rotated with the short factors are refused by a
 * session long enough to take the long ones. */
static void check_longrope(const char *path) {
    synth_params p = synth_default_params();
    p.arch = "phi3";
    p.type = KERN_F32;
    p.factors = SYNTH_ROPE_LONGROPE;
    p.rope_orig_ctx = 256; /* a context over it (rounded up to 256) takes the long ones */
    p.n_ctx = 4096;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = load(path, NULL);
    int32_t ids[8];
    for (int i = 0; i < 8; i++) ids[i] = tok(i);
    char file[128];
    snprintf(file, sizeof file, "%s/longrope.session", dir);
    hearth_session *a = session(m, 32, HEARTH_KV_F16), *b = session(m, 1024, HEARTH_KV_F16);
    hearth_session *c = session(m, 16, HEARTH_KV_F16);
    REQUIRE(hearth_decode(a, ids, 8, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_save(a, file, NULL) == HEARTH_OK);
    refused(b, file, HEARTH_ERR_INVALID_ARG, "RoPE factors", "longrope");
    CHECK(hearth_session_load(c, file, NULL) == HEARTH_OK); /* short factors too */
    hearth_session_free(a);
    hearth_session_free(b);
    hearth_session_free(c);
    hearth_model_free(m);
}

static void synth(const char *path, const char *arch, kern_type type, uint64_t seed) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.type = type;
    p.seed = seed;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    static const char *const names[] = {"llama", "qwen2", "gemma3", "phi3"};
    char paths[4][512], other[256], twin[256];
    char shared[512];
    snprintf(shared, sizeof shared, "%s/conformance/models/tiny-llama/tiny-llama.Q8_0.gguf",
             HEARTH_SHARED_DIR);
    const bool have_shared = access(shared, R_OK) == 0;
    for (int a = 0; a < 4; a++) {
        snprintf(paths[a], sizeof paths[a], "%s/conformance/models/tiny-%s/tiny-%s.Q8_0.gguf",
                 HEARTH_SHARED_DIR, names[a], names[a]);
        if (have_shared && access(paths[a], R_OK) == 0) continue;
        snprintf(paths[a], sizeof paths[a], "%s/%s.gguf", dir, names[a]);
        synth(paths[a], names[a], KERN_Q8_0, 4000 + (uint64_t)a);
    }
    printf("session_file: %s models\n", have_shared ? "../shared's" : "synthetic");
    static const hearth_kv_type kvs[] = {HEARTH_KV_F32, HEARTH_KV_F16, HEARTH_KV_Q8_0};
    static const char *const kv_names[] = {"f32", "f16", "q8_0"};
    for (int mode = 0; mode < 2; mode++) {
        kern_set_exact(mode == 1);
        for (int a = 0; a < 4; a++)
            for (int k = 0; k < 3; k++) {
                if (mode == 1 && k == 2) continue; /* exact mode reads Q8_0 as default mode */
                char what[96];
                snprintf(what, sizeof what, "%s/kv %s/%s", names[a], kv_names[k],
                         mode ? "exact" : "default");
                check_round_trip(paths[a], kvs[k], what);
            }
    }
    kern_set_exact(false);
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    snprintf(twin, sizeof twin, "%s/twin.gguf", dir);
    synth(other, "qwen3", KERN_F32, 1);
    synth(twin, "llama", KERN_Q8_0, 99);
    char base[256];
    snprintf(base, sizeof base, "%s/base.gguf", dir);
    synth(base, "llama", KERN_Q8_0, 4000);
    check_refusals(base, other, twin);
    check_shifted(paths[0]);
    /* Gemma 4: window layers with half the global ones' head size in rows sized for the
       global ones, layers 2 and 3 reading layers 0 and 1's keys and values (no unit of
       their own in the file) */
    char g4[256];
    snprintf(g4, sizeof g4, "%s/gemma4.gguf", dir);
    synth_params p = synth_default_params();
    p.arch = "gemma4";
    p.type = KERN_Q8_0;
    p.n_layer = 4;
    REQUIRE(synth_write(g4, &p) == HEARTH_OK);
    for (int k = 0; k < 3; k++) {
        char what[64];
        snprintf(what, sizeof what, "gemma4/kv %s", kv_names[k]);
        check_round_trip(g4, kvs[k], what);
    }
    snprintf(base, sizeof base, "%s/longrope.gguf", dir);
    check_longrope(base);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0) printf("could not remove %s\n", dir);
    return test_done("session_file");
}
