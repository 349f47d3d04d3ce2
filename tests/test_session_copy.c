/*
 * test_session_copy.c - hearth_session_copy on models the test writes itself
 * (every architecture, F32 and Q8_0 weights, F32 and F16 KV caches, both
 * numeric modes): a copy of a whole session takes its logits bit for bit
 * and decodes on exactly as the original does (also into a session of a
 * larger context, and over stale content); a generation on the copy
 * evaluates nothing of its prompt and draws what a fresh session draws; a
 * copy of part of a session, or a truncated one, has no logits to sample
 * from, so a generation evaluates the prompt's last token again; bad calls
 * fail before anything changes.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/synth.h"
#include "test.h"

#include <unistd.h>

enum { N_CTX = 40, N_PROMPT = 21, N_NEXT = 4, N_GEN = 8 }; /* 21: a partial KV tile */

static int32_t tok(int i) { return (int32_t)(3 + (i * 29) % 250); }

static hearth_session *session(hearth_model *m, int n_ctx, hearth_kv_type kv) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = n_ctx;
    sp.kv_type = kv;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

/* Feeds the same N_NEXT tokens one at a time to a and b: their logits must
 * be equal bit for bit (same cache, same arithmetic). */
static void same_continuation(hearth_session *a, hearth_session *b, int nv, const char *what) {
    float *x = malloc(sizeof(float) * (size_t)nv), *y = malloc(sizeof(float) * (size_t)nv);
    REQUIRE(x && y);
    for (int i = 0; i < N_NEXT; i++) {
        const int32_t id = tok(100 + i);
        REQUIRE(hearth_decode(a, &id, 1, x, false) == HEARTH_OK);
        REQUIRE(hearth_decode(b, &id, 1, y, false) == HEARTH_OK);
        CHECKF(!memcmp(x, y, sizeof(float) * (size_t)nv), "%s: token %d after the copy differs",
               what, i);
    }
    free(x);
    free(y);
}

typedef struct gen_out {
    int32_t ids[N_GEN];
    int n;
} gen_out;

static bool collect(const hearth_token_event *ev, void *user) {
    gen_out *g = user;
    if (ev->id >= 0 && g->n < N_GEN) g->ids[g->n++] = ev->id;
    return true;
}

/* N_GEN tokens sampled (temperature 1, seed 7) from the prompt on s. */
static hearth_gen_result generate(hearth_model *m, hearth_session *s, const int32_t *prompt, int n,
                                  gen_out *out) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = 1.0f;
    sp.seed = 7;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(m, &sp, &smp) == HEARTH_OK);
    const hearth_gen_params gp = {.max_tokens = N_GEN};
    hearth_gen_result r = {0};
    memset(out, 0, sizeof *out);
    REQUIRE(hearth_generate(s, smp, prompt, n, &gp, collect, out, &r) == HEARTH_OK);
    hearth_sampler_free(smp);
    return r;
}

static void check_model(const char *path, hearth_kv_type kv, const char *what) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    const int nv = hearth_model_n_vocab(m);
    int32_t prompt[N_PROMPT], other[N_CTX];
    for (int i = 0; i < N_PROMPT; i++) prompt[i] = tok(i);
    for (int i = 0; i < N_CTX; i++) other[i] = tok(300 + i);

    /* a whole session, into one holding something else (stale positions) */
    hearth_session *a = session(m, N_CTX, kv), *b = session(m, N_CTX, kv);
    hearth_session *big = session(m, 2 * N_CTX, kv);
    REQUIRE(hearth_decode(a, prompt, N_PROMPT, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(b, other, N_CTX - 2, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_copy(b, a, N_PROMPT) == HEARTH_OK);
    CHECK(hearth_session_pos(b) == N_PROMPT);
    REQUIRE(hearth_session_copy(big, a, N_PROMPT) == HEARTH_OK);
    /* the cache: the next tokens give the same logits on the copy (the
     * copied logits themselves are sampled from below) */
    same_continuation(a, b, nv, what);
    hearth_session *a2 = session(m, N_CTX, kv);
    REQUIRE(hearth_decode(a2, prompt, N_PROMPT, NULL, false) == HEARTH_OK);
    same_continuation(a2, big, nv, what);

    /* a generation on a copy: nothing evaluated, the fresh session's draw */
    hearth_session *fresh = session(m, N_CTX, kv), *c = session(m, N_CTX, kv);
    gen_out want, got;
    const hearth_gen_result rf = generate(m, fresh, prompt, N_PROMPT, &want);
    CHECK(rf.n_cached == 0 && rf.n_prompt == N_PROMPT);
    REQUIRE(hearth_session_truncate(a2, 0) == HEARTH_OK);
    REQUIRE(hearth_decode(a2, prompt, N_PROMPT, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_session_copy(c, a2, N_PROMPT) == HEARTH_OK);
    const hearth_gen_result rc = generate(m, c, prompt, N_PROMPT, &got);
    CHECKF(rc.n_cached == N_PROMPT && rc.n_prompt == 0, "%s: copy: %d cached, %d evaluated", what,
           rc.n_cached, rc.n_prompt);
    CHECKF(got.n == want.n && !memcmp(got.ids, want.ids, sizeof(int32_t) * (size_t)want.n),
           "%s: the copy's generation differs from a fresh session's", what);

    /* part of a session: no logits, so the last prompt token is evaluated */
    REQUIRE(hearth_session_copy(c, a, N_PROMPT - 1) == HEARTH_OK);
    hearth_gen_result rp = generate(m, c, prompt, N_PROMPT, &got);
    CHECKF(rp.n_cached == N_PROMPT - 1 && rp.n_prompt == 1, "%s: part: %d cached", what,
           rp.n_cached);
    /* a session truncated back to the prompt: its logits are a later token's */
    REQUIRE(hearth_session_truncate(c, N_PROMPT) == HEARTH_OK);
    rp = generate(m, c, prompt, N_PROMPT, &got);
    CHECKF(rp.n_cached == N_PROMPT - 1 && rp.n_prompt == 1, "%s: truncated: %d cached", what,
           rp.n_cached);
    /* nor does a copy of such a session have them */
    REQUIRE(hearth_session_truncate(c, N_PROMPT) == HEARTH_OK);
    REQUIRE(hearth_session_copy(b, c, N_PROMPT) == HEARTH_OK);
    rp = generate(m, b, prompt, N_PROMPT, &got);
    CHECK(rp.n_cached == N_PROMPT - 1 && rp.n_prompt == 1);

    /* failures change nothing */
    hearth_session *small = session(m, 16, kv);
    hearth_session *other_kv =
        session(m, N_CTX, kv == HEARTH_KV_F32 ? HEARTH_KV_F16 : HEARTH_KV_F32);
    hearth_model *m2 = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m2) == HEARTH_OK);
    hearth_session *other_model = session(m2, N_CTX, kv);
    const int pa = hearth_session_pos(a);
    REQUIRE(hearth_decode(small, prompt, 3, NULL, false) == HEARTH_OK);
    CHECK(hearth_session_copy(b, a, pa + 1) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_copy(b, a, -1) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_copy(small, a, N_PROMPT) == HEARTH_ERR_CONTEXT_FULL);
    CHECK(hearth_session_pos(small) == 3);
    CHECK(hearth_session_copy(other_kv, a, 4) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_copy(other_model, a, 4) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_pos(other_kv) == 0 && hearth_session_pos(other_model) == 0);
    /* onto itself: a truncation */
    CHECK(hearth_session_copy(a, a, 5) == HEARTH_OK && hearth_session_pos(a) == 5);

    hearth_session *all[] = {a, b, big, a2, fresh, c, small, other_kv, other_model};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hearth_session_free(all[i]);
    hearth_model_free(m2);
    hearth_model_free(m);
}

int main(void) {
    static const char *const arches[] = {"llama", "qwen2",         "qwen3",  "gemma3", "phi3",
                                         "lfm2",  "granitehybrid", "qwen35", "gemma4", "gemma3n"};
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-copy-%d.gguf", (int)getpid());
    const kern_type types[] = {KERN_F32, KERN_Q8_0};
    for (int mode = 0; mode < 2; mode++) {
        kern_set_exact(mode == 1);
        for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
            for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
                synth_params p = synth_default_params();
                p.arch = arches[a];
                p.type = types[t];
                p.seed = 3000 + a;
                REQUIRE(synth_write(path, &p) == HEARTH_OK);
                for (int kv = 0; kv < 2; kv++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s/%s/%s/kv %s", arches[a],
                             kern_type_get(types[t])->name, mode ? "exact" : "default",
                             kv ? "f16" : "f32");
                    check_model(path, kv ? HEARTH_KV_F16 : HEARTH_KV_F32, what);
                }
            }
        }
    }
    unlink(path);
    return test_done("session_copy");
}
