/*
 * test_kv_window.c - the sliding-window cache (session.h, docs/kv-cache.md):
 * the slots of window layers keep their window, the batch and a spare
 * rather than every position, unless hearth_session_params.swa_full.
 *
 * On synthetic Gemma 2, Gemma 3 and Gemma 4 models (window 8, batches of 16,
 * 1,024 positions, so that the window slots hold 304 and move many times)
 * in every KV cache type, against a session that keeps every position:
 *  A. the cache's bytes: window slots of 304 positions, the others 1,024;
 *  B. logits bit for bit: a 520-token prompt in batches, then one token at
 *     a time, in default mode and (F16) exact mode; two windowed sessions
 *     decoded together (hearth_decode_multi) as alone;
 *  C. truncation: hearth_session_keepable, a refused truncation leaves the
 *     session unchanged, an allowed one goes on with the same bits;
 *  D. hearth_session_copy between windowed and full sessions, and its
 *     refusal; session files saved by one kind and loaded into the other;
 *  E. a context shift whose windows the cache holds gives the same bits; one
 *     whose kept part it dropped runs on with what it has (finite logits,
 *     nothing truncated below its kept start);
 *  F. hearth_generate reuses no prefix the window slots dropped (n_cached 0)
 *     and the same text as the full session.
 */
#include "hearth.h"
#include "model/session.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

enum { N_CTX = 1024, N_BATCH = 16, N_PROMPT = 520, N_STEPS = 16, WIN_POS = 304 };

static char dir[64];
static int32_t ids[N_CTX];

static hearth_session *session(hearth_model *m, hearth_kv_type t, bool full) {
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = N_CTX;
    sp.n_batch = N_BATCH;
    sp.kv_type = t;
    sp.swa_full = full;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

/* The next token's logits of a and b after feeding tok to both are
 * identical (what = the step, for the message). */
static bool same_step(hearth_session *a, hearth_session *b, int32_t tok, const char *what) {
    const int nv = hearth_model_n_vocab(a->model);
    REQUIRE(hearth_decode(a, &tok, 1, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(b, &tok, 1, NULL, false) == HEARTH_OK);
    const bool same = !memcmp(a->logits, b->logits, (size_t)nv * sizeof(float));
    CHECKF(same, "%s: logits differ by %g", what, test_max_diff(a->logits, b->logits, (size_t)nv));
    return same;
}

static int32_t argmax(const hearth_session *s) {
    int32_t best = 0;
    for (int i = 1; i < s->model->hp.n_vocab; i++)
        if (s->logits[i] > s->logits[best]) best = i;
    return best;
}

/* A: K and V bytes of s's model with window slots of `win` positions. */
static uint64_t cache_bytes(const hearth_session *s, int win) {
    const hearth_model *m = s->model;
    uint64_t total = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        if (l->kv_slot < 0 || l->kv_shared) continue;
        total += 2 * (uint64_t)(l->swa ? win : N_CTX) * (uint64_t)m->hp.n_head_kv *
                 kern_kv_row_bytes(s->kv_type, l->head_dim);
    }
    return total;
}

/* B and C for one model and cache type; leaves w and f holding the same
 * N_PROMPT + N_STEPS tokens. */
static void check_decode(const char *name, hearth_session *w, hearth_session *f) {
    REQUIRE(hearth_decode(w, ids, N_PROMPT, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(f, ids, N_PROMPT, NULL, false) == HEARTH_OK);
    char what[96];
    snprintf(what, sizeof what, "%s prompt", name);
    CHECKF(!memcmp(w->logits, f->logits, (size_t)w->model->hp.n_vocab * sizeof(float)),
           "%s: logits differ", what);
    CHECKF(w->win_base > 0 && w->win_first == w->win_base && f->win_base == 0,
           "%s: the window slots moved to %d (first %d)", what, w->win_base, w->win_first);
    for (int i = 0; i < N_STEPS; i++) {
        snprintf(what, sizeof what, "%s step %d", name, i);
        if (!same_step(w, f, argmax(f), what)) break;
    }
    /* C: what can be kept */
    const int pos = hearth_session_pos(w), keep = w->win_first + w->model->hp.swa_window - 1;
    CHECKF(hearth_session_keepable(w, keep) == keep && hearth_session_keepable(w, keep - 1) == 0 &&
               hearth_session_keepable(w, 0) == 0 && hearth_session_keepable(w, pos) == pos,
           "%s: keepable around %d", name, keep);
    CHECK(hearth_session_keepable(f, 5) == 5);
    CHECK(hearth_session_truncate(w, keep - 1) == HEARTH_ERR_INVALID_ARG &&
          strstr(hearth_last_error(), "--swa-full") && hearth_session_pos(w) == pos);
    REQUIRE(hearth_session_truncate(w, keep) == HEARTH_OK);
    REQUIRE(hearth_session_truncate(f, keep) == HEARTH_OK);
    snprintf(what, sizeof what, "%s after truncating to %d", name, keep);
    same_step(w, f, ids[keep], what);
    int32_t rest[N_CTX];
    const int n_rest = pos - keep - 1;
    for (int i = 0; i < n_rest; i++) rest[i] = ids[keep + 1 + i];
    REQUIRE(hearth_decode(w, rest, n_rest, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(f, rest, n_rest, NULL, false) == HEARTH_OK);
    /* ids now hold what both sessions hold */
    memcpy(ids, f->tokens, (size_t)pos * sizeof *ids);
}

/* B: two windowed sessions at different positions decoded together. */
static void check_multi(const char *name, hearth_model *m, hearth_kv_type t,
                        const hearth_session *w) {
    hearth_session *a = session(m, t, false), *b = session(m, t, false);
    hearth_session *a1 = session(m, t, false), *b1 = session(m, t, false);
    REQUIRE(hearth_session_copy(a, w, hearth_session_pos(w)) == HEARTH_OK);
    REQUIRE(hearth_session_copy(a1, w, hearth_session_pos(w)) == HEARTH_OK);
    REQUIRE(hearth_decode(b, ids, 400, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(b1, ids, 400, NULL, false) == HEARTH_OK);
    bool same = true;
    for (int step = 0; step < 8 && same; step++) {
        hearth_session *both[4] = {a, a, b, b};
        const int32_t toks[4] = {ids[step], ids[step + 1], ids[step + 2], ids[step + 3]};
        REQUIRE(hearth_decode_multi(both, toks, 4, NULL) == HEARTH_OK);
        REQUIRE(hearth_decode(a1, toks, 2, NULL, false) == HEARTH_OK);
        REQUIRE(hearth_decode(b1, toks + 2, 2, NULL, false) == HEARTH_OK);
        const size_t bytes = (size_t)m->hp.n_vocab * sizeof(float);
        same = !memcmp(a->logits, a1->logits, bytes) && !memcmp(b->logits, b1->logits, bytes);
    }
    CHECKF(same, "%s: decode_multi differs from decoding alone", name);
    hearth_session_free(a);
    hearth_session_free(b);
    hearth_session_free(a1);
    hearth_session_free(b1);
}

/* D: copies and session files between the two kinds. */
static void check_copies(const char *name, hearth_model *m, hearth_kv_type t, hearth_session *w,
                         hearth_session *f) {
    const int pos = hearth_session_pos(w);
    hearth_session *to[2] = {session(m, t, false), session(m, t, true)};
    hearth_session *from[2] = {w, f};
    char what[96], path[128];
    snprintf(path, sizeof path, "%s/s.session", dir);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            const char *kind[2] = {"windowed", "full"};
            REQUIRE(hearth_session_copy(to[k], from[i], pos) == HEARTH_OK);
            snprintf(what, sizeof what, "%s copy %s -> %s", name, kind[i], kind[k]);
            same_step(to[k], f, ids[3], what);
            REQUIRE(hearth_session_truncate(f, pos) == HEARTH_OK);
            REQUIRE(hearth_session_save(from[i], path, NULL) == HEARTH_OK);
            REQUIRE(hearth_session_load(to[k], path, NULL) == HEARTH_OK);
            snprintf(what, sizeof what, "%s file %s -> %s", name, kind[i], kind[k]);
            same_step(to[k], f, ids[4], what);
            REQUIRE(hearth_session_truncate(f, pos) == HEARTH_OK);
            /* a full session loaded from a windowed file keeps its limits, a
       windowed one has its own */
            CHECKF(hearth_session_keepable(to[k], 100) == (i == 1 && k == 1 ? 100 : 0),
                   "%s: keepable(100) after loading", what);
        }
    CHECK(hearth_session_copy(to[1], w, 100) == HEARTH_ERR_INVALID_ARG &&
          strstr(hearth_last_error(), "window"));
    REQUIRE(hearth_session_copy(to[0], f, 100) == HEARTH_OK);
    REQUIRE(hearth_session_truncate(f, 100) == HEARTH_OK);
    snprintf(what, sizeof what, "%s copy of 100 positions full -> windowed", name);
    same_step(to[0], f, ids[100], what);
    REQUIRE(hearth_session_truncate(f, 0) == HEARTH_OK);
    REQUIRE(hearth_decode(f, ids, pos, NULL, false) == HEARTH_OK);
    unlink(path);
    hearth_session_free(to[0]);
    hearth_session_free(to[1]);
}

/* E: context shifts. */
static void check_shift(const char *name, hearth_model *m, hearth_kv_type t, hearth_session *w,
                        hearth_session *f) {
    const int pos = hearth_session_pos(w);
    char what[96];
    /* the windows after the shift lie in what the cache holds */
    REQUIRE(hearth_session_shift(w, 4, 300) == HEARTH_OK);
    REQUIRE(hearth_session_shift(f, 4, 300) == HEARTH_OK);
    snprintf(what, sizeof what, "%s after a shift", name);
    for (int i = 0; i < 4; i++)
        if (!same_step(w, f, ids[i], what)) break;
    CHECK(hearth_session_keepable(w, 4) == 4 && hearth_session_keepable(w, 3) == 0);
    /* the kept part reaches into the windows: the dropped part stays missing */
    hearth_session *w2 = session(m, t, false);
    REQUIRE(hearth_decode(w2, ids, pos, NULL, false) == HEARTH_OK);
    const int n_keep = w2->win_first - 20, n_discard = pos - n_keep - 5; /* 20 kept ones dropped */
    REQUIRE(hearth_session_shift(w2, n_keep, n_discard) == HEARTH_OK);
    CHECKF(w2->win_first == n_keep && hearth_session_pos(w2) == n_keep + 5,
           "%s: after the deep shift the window slots hold from %d", name, w2->win_first);
    CHECK(hearth_session_keepable(w2, n_keep) == n_keep &&
          hearth_session_keepable(w2, n_keep - 1) == 0);
    int32_t tok = ids[0];
    REQUIRE(hearth_decode(w2, &tok, 1, NULL, false) == HEARTH_OK);
    bool finite = true;
    for (int i = 0; i < m->hp.n_vocab; i++) finite = finite && isfinite(w2->logits[i]);
    CHECKF(finite, "%s: logits after the deep shift are not finite", name);
    hearth_session_free(w2);
}

/* F: hearth_generate's prefix reuse. */
static int generate(hearth_session *s, const int32_t *prompt, int n, int32_t *out,
                    hearth_gen_result *r) {
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = 0.0f;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(s->model, &sp, &smp) == HEARTH_OK);
    hearth_gen_params gp = {.max_tokens = 6};
    REQUIRE(hearth_generate(s, smp, prompt, n, &gp, NULL, NULL, r) == HEARTH_OK);
    hearth_sampler_free(smp);
    const int n_gen = r->n_gen;
    memcpy(out, s->tokens + hearth_session_pos(s) - n_gen, (size_t)n_gen * sizeof *out);
    return n_gen;
}

static void check_generate(const char *name, hearth_model *m, hearth_kv_type t) {
    hearth_session *w = session(m, t, false), *f = session(m, t, true);
    REQUIRE(hearth_decode(w, ids, N_PROMPT, NULL, false) == HEARTH_OK);
    REQUIRE(hearth_decode(f, ids, N_PROMPT, NULL, false) == HEARTH_OK);
    const int lens[2] = {200, N_PROMPT + 2};
    for (int i = 0; i < 2; i++) {
        int32_t prompt[N_PROMPT + 2], gw[8], gf[8];
        memcpy(prompt, ids, (size_t)lens[i] * sizeof *prompt);
        prompt[lens[i] - 1] = ids[N_PROMPT + 7]; /* the prompts part from what is held */
        hearth_gen_result rw, rf;
        const int nw = generate(w, prompt, lens[i], gw, &rw),
                  nf = generate(f, prompt, lens[i], gf, &rf);
        CHECKF(nw == nf && !memcmp(gw, gf, (size_t)nw * sizeof *gw),
               "%s: generations from %d tokens differ", name, lens[i]);
        const int want = i == 0 ? 0 : N_PROMPT;
        CHECKF(rw.n_cached == want && rf.n_cached == (i == 0 ? lens[i] - 1 : want),
               "%s: %d tokens: %d cached (full: %d)", name, lens[i], rw.n_cached, rf.n_cached);
        /* the next prompt is compared with what the sessions hold now */
        REQUIRE(hearth_session_truncate(w, 0) == HEARTH_OK);
        REQUIRE(hearth_session_truncate(f, 0) == HEARTH_OK);
        REQUIRE(hearth_decode(w, ids, N_PROMPT, NULL, false) == HEARTH_OK);
        REQUIRE(hearth_decode(f, ids, N_PROMPT, NULL, false) == HEARTH_OK);
    }
    hearth_session_free(w);
    hearth_session_free(f);
}

static void check_model(const char *arch) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.n_embd = 64;
    p.n_layer = 6;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.head_dim = 16;
    p.n_ff = 128;
    p.n_ctx = 4096;
    p.swa_window = 8;
    char path[128];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, arch);
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    unsigned long long r = 0x77;
    for (int i = 0; i < N_CTX; i++)
        ids[i] = (int32_t)(test_rand_u64(&r) % (unsigned)(m->hp.n_vocab - 2)) + 1;
    static const hearth_kv_type types[3] = {HEARTH_KV_F32, HEARTH_KV_F16, HEARTH_KV_Q8_0};
    static const char *const type_names[3] = {"f32", "f16", "q8_0"};
    for (int t = 0; t < 3; t++) {
        for (int exact = 0; exact < 2; exact++) {
            /* exact mode's attention reads F32 and F16 alike (Q8_0 has one arithmetic) */
            if (exact && types[t] != HEARTH_KV_F16) continue;
            kern_set_exact(exact);
            char name[64];
            snprintf(name, sizeof name, "%s %s%s", arch, type_names[t], exact ? " exact" : "");
            hearth_session *w = session(m, types[t], false), *f = session(m, types[t], true);
            CHECKF(w->win_pos == WIN_POS && w->kv_bytes == cache_bytes(w, WIN_POS) &&
                       f->kv_bytes == cache_bytes(f, N_CTX) && w->kv_bytes < f->kv_bytes,
                   "%s: cache of %llu bytes (full: %llu)", name, (unsigned long long)w->kv_bytes,
                   (unsigned long long)f->kv_bytes);
            check_decode(name, w, f);
            if (!exact) {
                check_multi(name, m, types[t], w);
                check_copies(name, m, types[t], w, f);
                check_shift(name, m, types[t], w, f);
                check_generate(name, m, types[t]);
            }
            hearth_session_free(w);
            hearth_session_free(f);
        }
    }
    kern_set_exact(false);
    hearth_model_free(m);
    unlink(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hearth_kv_window_XXXXXX");
    REQUIRE(mkdtemp(dir));
    check_model("gemma3");
    check_model("gemma2");
    check_model("gemma4");
    check_model("gemma3n");
    rmdir(dir);
    return test_done("kv_window");
}
