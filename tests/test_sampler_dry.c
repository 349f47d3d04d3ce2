/*
 * test_sampler_dry.c - DRY ("Don't Repeat Yourself") in the sampling layer
 * against a naive reference written here from its definition (every earlier
 * position's common suffix with the window's end, compared token by token,
 * capped at the latest sequence breaker), on random histories over a small
 * alphabet so that repetitions abound: windows shorter and longer than the
 * history (the ring wraps), breakers of one token and with tails, allowed
 * lengths 0 to 3, bases whose power needs the exponent cap; a hand-worked
 * example; reset; the chain around it (penalties before, truncation after);
 * and the engine's breakers built from strings on a synthetic vocabulary
 * (llama.cpp's rules: a token holding the string is a breaker alone, one
 * ending in a prefix of it needs the rest as its tail).
 */
#include "engine/engine.h"
#include "sampler_fixture.h"
#include "sampling/sampling.h"
#include "synth_model.h"
#include "test.h"

enum { MAX_N = 64, MAX_H = 400 };

/* ---- the reference ------------------------------------------------------------- */

typedef struct dry_case {
    float mult, base;
    int allowed, last_n;
    const smp_dry_breaker *brk;
    int n_brk;
} dry_case;

static bool lone(const dry_case *c, int tok) {
    for (int b = 0; b < c->n_brk; b++)
        if (c->brk[b].head == tok && c->brk[b].n_tail == 0) return true;
    return false;
}

/* Subtracts DRY's penalties from lg[0..n) for the history h[0..n_h). */
static void ref_dry(const dry_case *c, const int32_t *all, int n_all, float *lg, int n) {
    const int L = n_all < c->last_n ? n_all : c->last_n;
    const int32_t *h = all + (n_all - L);
    if (L <= c->allowed) return;
    int limit = L;
    for (int i = 0; i < L && limit == L; i++) { /* the latest complete breaker */
        int longest = -1;
        for (int b = 0; b < c->n_brk; b++) {
            const smp_dry_breaker *k = &c->brk[b];
            if (k->head != h[L - 1 - i] || k->n_tail > i || k->n_tail <= longest) continue;
            bool match = true;
            for (int o = 0; o < k->n_tail; o++) match &= k->tail[o] == h[L - i + o];
            if (match) longest = k->n_tail;
        }
        if (longest >= 0) limit = i - longest;
    }
    if (limit < c->allowed) return;
    int best[MAX_N];
    for (int t = 0; t < n; t++) best[t] = -1;
    for (int pos = 0; pos + 1 < L; pos++) {
        int m = 0;
        while (m <= pos && h[pos - m] == h[L - 1 - m]) m++;
        if (m > limit) m = limit;
        if (m >= c->allowed && m > best[h[pos + 1]]) best[h[pos + 1]] = m;
    }
    const int max_exp = c->base > 1.000001f ? (int)(88.7228391f / logf(c->base)) : 0;
    for (int t = 0; t < n; t++) {
        if (best[t] < 0 || lone(c, t)) continue;
        int e = best[t] - c->allowed;
        if (max_exp > 0 && e > max_exp) e = max_exp;
        lg[t] -= (float)((double)c->mult * pow((double)c->base, e));
    }
}

static smp_sampler *dry_sampler(const dry_case *c, int n) {
    smp_params p = plain_params(1);
    p.dry_multiplier = c->mult;
    p.dry_base = c->base;
    p.dry_allowed_length = c->allowed;
    p.dry_penalty_last_n = c->last_n;
    p.dry_breakers = c->brk;
    p.n_dry_breakers = (size_t)c->n_brk;
    return make(n, &p);
}

static int cmp_id(const void *a, const void *b) {
    const smp_cand *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* The sampler's candidates (all kept: no truncation) against the reference;
 * returns how many tokens the reference penalized. */
static int compare(smp_sampler *s, const dry_case *c, const int32_t *h, int n_h, const float *lg,
                   int n, const char *what) {
    float want[MAX_N];
    memcpy(want, lg, (size_t)n * sizeof *lg);
    ref_dry(c, h, n_h, want, n);
    smp_cand got[MAX_N];
    REQUIRE(smp_candidates(s, lg, got, n) == n);
    qsort(got, (size_t)n, sizeof *got, cmp_id);
    bool ok = true;
    int penalized = 0;
    for (int t = 0; t < n; t++) {
        ok &= got[t].id == t && got[t].logit == want[t];
        penalized += want[t] != lg[t];
    }
    CHECKF(ok, "%s: history of %d, window %d, allowed %d, base %g", what, n_h, c->last_n,
           c->allowed, (double)c->base);
    return penalized;
}

/* ---- hand-worked ---------------------------------------------------------------- */

static void test_example(void) {
    /* a b c c b c y a b c (0 1 2 2 1 2 3 0 1 2): the end "a b c" also ends
     * at the first c, so c (after it) would make a repetition of 3; "c" ends
     * at the second c, so b would make 2 ("c b"); "b c" ends at the third
     * c: y would make 3. Allowed 2: c gets mult * base, y mult, b none. */
    const int32_t h[] = {0, 1, 2, 2, 1, 2, 3, 0, 1, 2};
    const dry_case c = {.mult = 0.8f, .base = 1.75f, .allowed = 2, .last_n = 64};
    smp_sampler *s = dry_sampler(&c, 6);
    for (int i = 0; i < 10; i++) smp_accept(s, h[i]);
    const float zero[6] = {0};
    smp_cand got[6];
    REQUIRE(smp_candidates(s, zero, got, 6) == 6);
    qsort(got, 6, sizeof *got, cmp_id);
    CHECK(got[0].logit == 0 && got[1].logit == 0 && got[4].logit == 0 && got[5].logit == 0);
    CHECKF(got[2].logit == -0.8f * 1.75f, "c: %g", (double)got[2].logit);
    CHECKF(got[3].logit == -0.8f, "y: %g", (double)got[3].logit);
    compare(s, &c, h, 10, zero, 6, "example");
    /* a breaker (y) between: the repetition "a b c" now spans it, so only
     * what follows it counts: limit 3 ("a b c"), c still gets its penalty */
    smp_free(s);
    const smp_dry_breaker y = {.head = 3};
    const dry_case cb = {.mult = 0.8f, .base = 1.75f, .allowed = 2, .last_n = 64, &y, 1};
    s = dry_sampler(&cb, 6);
    for (int i = 0; i < 10; i++) smp_accept(s, h[i]);
    REQUIRE(smp_candidates(s, zero, got, 6) == 6);
    qsort(got, 6, sizeof *got, cmp_id);
    CHECK(got[3].logit == 0);             /* y is a breaker alone: never penalized */
    CHECK(got[2].logit == -0.8f * 1.75f); /* "a b c" after y: 3 long, within the limit */
    compare(s, &cb, h, 10, zero, 6, "example with a breaker");
    /* window 3: "a b c" alone, nothing repeats in it */
    smp_free(s);
    const dry_case c3 = {.mult = 0.8f, .base = 1.75f, .allowed = 2, .last_n = 3};
    s = dry_sampler(&c3, 6);
    for (int i = 0; i < 10; i++) smp_accept(s, h[i]);
    CHECK(compare(s, &c3, h, 10, zero, 6, "window 3") == 0);
    /* reset forgets the history */
    smp_free(s);
    s = dry_sampler(&c, 6);
    for (int i = 0; i < 10; i++) smp_accept(s, h[i]);
    smp_reset(s);
    CHECK(compare(s, &c, h, 0, zero, 6, "after reset") == 0);
    smp_free(s);
}

/* ---- random histories against the reference --------------------------------------- */

static void test_random(void) {
    enum { N = 24 };
    unsigned long long rs = 42;
    const smp_dry_breaker brks[] = {
        {.head = 5},
        {.head = 6, .n_tail = 1, .tail = {7}},
        {.head = 6, .n_tail = 2, .tail = {7, 8}},
        {.head = 9, .n_tail = 1, .tail = {0}},
    };
    const float bases[] = {1.0f, 1.75f, 3.0f};
    const int lasts[] = {1, 5, 64, 1000};
    int cases = 0, penalized = 0;
    for (int round = 0; round < 400; round++) {
        dry_case c = {.mult = (round % 3) ? 0.8f : 2.5f,
                      .base = bases[round % 3],
                      .allowed = round % 4,
                      .last_n = lasts[(round / 3) % 4],
                      .brk = brks,
                      .n_brk = (round / 12) % 2 ? 4 : 0};
        const int alphabet = 2 + round % 9; /* few symbols: long repetitions */
        const int n_h = (int)(test_rand_u64(&rs) % MAX_H);
        int32_t h[MAX_H];
        for (int i = 0; i < n_h; i++) {
            /* mostly a copy of an earlier stretch, sometimes a new symbol */
            const bool copy = i > 8 && test_rand_u64(&rs) % 5;
            h[i] = copy ? h[i - 1 - (int)(test_rand_u64(&rs) % 8)]
                        : (int32_t)(test_rand_u64(&rs) % (unsigned)alphabet);
            if (test_rand_u64(&rs) % 40 == 0) h[i] = 5 + (int32_t)(test_rand_u64(&rs) % 5);
        }
        float lg[N];
        for (int t = 0; t < N; t++) lg[t] = test_rand_f(&rs) * 3.0f;
        smp_sampler *s = dry_sampler(&c, N);
        for (int i = 0; i < n_h; i++) smp_accept(s, h[i]);
        penalized += compare(s, &c, h, n_h, lg, N, "random") > 0;
        cases++;
        smp_free(s);
    }
    printf("DRY vs reference: %d histories, %d with penalties\n", cases, penalized);
    CHECK(penalized > cases / 2);

    /* one symbol repeated 300 times: the exponent is capped (1.75^158 fits a float) */
    dry_case c = {.mult = 1.0f, .base = 1.75f, .allowed = 2, .last_n = 400};
    int32_t h[300];
    for (int i = 0; i < 300; i++) h[i] = 1;
    float lg[N] = {0};
    smp_sampler *s = dry_sampler(&c, N);
    for (int i = 0; i < 300; i++) smp_accept(s, h[i]);
    compare(s, &c, h, 300, lg, N, "capped exponent");
    smp_cand got[N];
    smp_candidates(s, lg, got, N);
    qsort(got, N, sizeof *got, cmp_id);
    CHECKF(isfinite(got[1].logit) && got[1].logit < -1e38f, "%g", (double)got[1].logit);
    smp_free(s);
}

/* DRY after the penalties and before the truncations, as llama.cpp's chain. */
static void test_chain(void) {
    const int32_t h[] = {0, 1, 2, 0, 1};
    smp_params p = plain_params(3);
    p.dry_multiplier = 3.0f;
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 8;
    p.top_k = 2;
    smp_sampler *s = make(4, &p);
    for (int i = 0; i < 5; i++) smp_accept(s, h[i]);
    /* token 2: repeated once (4 / 2 = 2), then DRY's 3: -1; token 3: 1.5 */
    const float lg[] = {1.0f, 1.2f, 4.0f, 1.5f};
    smp_cand got[4];
    CHECK(smp_candidates(s, lg, got, 4) == 2);
    CHECK(got[0].id == 3 && got[0].logit == 1.5f && got[1].id == 1 && got[1].logit == 0.6f);
    smp_free(s);
    /* under Mirostat there is no DRY (nor penalties), as in llama.cpp */
    p.mirostat = 2;
    p.top_k = 0;
    s = make(4, &p);
    for (int i = 0; i < 5; i++) smp_accept(s, h[i]);
    CHECK(smp_candidates(s, lg, got, 4) >= 1 && got[0].id == 2 && got[0].logit == 4.0f);
    smp_free(s);
}

/* ---- the engine: breakers from strings ------------------------------------------------ */

static int32_t find_piece(const tok_vocab *v, const char *text) {
    return tok_find(v, text, strlen(text));
}

static bool has_entry(const smp_params *sp, int32_t head, const int32_t *tail, int n_tail) {
    for (size_t i = 0; i < sp->n_dry_breakers; i++) {
        const smp_dry_breaker *b = &sp->dry_breakers[i];
        if (b->head == head && b->n_tail == n_tail &&
            (n_tail == 0 || !memcmp(b->tail, tail, (size_t)n_tail * sizeof *tail)))
            return true;
    }
    return false;
}

static void test_engine(void) {
    synth_model sm;
    hearth_model *m = synth_model_open(&sm);
    const tok_vocab *v = engine_vocab(m);
    REQUIRE(v);

    hearth_sampling hs = hearth_sampling_default_params();
    hs.dry_multiplier = 0.8f;
    const char *brk[] = {"he", ":"};
    hs.dry_sequence_breakers = brk;
    hs.n_dry_sequence_breakers = 2;
    smp_params sp = smp_default_params();
    engine_smp_extra x;
    REQUIRE(engine_smp_extra_fill(m, &hs, &sp, &x) == HEARTH_OK);
    const int32_t the = find_piece(v, "\xe2\x96\x81the"), h = find_piece(v, "h"),
                  th = find_piece(v, "\xe2\x96\x81th"), e = find_piece(v, "e"),
                  colon = find_piece(v, "<0x3A>"), he = find_piece(v, "he");
    REQUIRE(the >= 0 && h >= 0 && th >= 0 && e >= 0 && colon >= 0 && he >= 0);
    int32_t tail[8];
    size_t n_tail = 0;
    REQUIRE(tok_encode(v, "e", 1, false, false, tail, 8, &n_tail) == HEARTH_OK);
    CHECK(has_entry(&sp, the, NULL, 0) && has_entry(&sp, he, NULL, 0)); /* hold "he" */
    CHECK(has_entry(&sp, colon, NULL, 0));                              /* the byte ':' */
    CHECK(has_entry(&sp, h, tail, (int)n_tail) && has_entry(&sp, th, tail, (int)n_tail));
    bool e_listed = false;
    for (size_t i = 0; i < sp.n_dry_breakers; i++) e_listed |= sp.dry_breakers[i].head == e;
    CHECK(!e_listed);
    engine_smp_extra_free(&x);

    /* the defaults ("\n", ":", "\"", "*") through hearth_sampler_new:
     * "▁the ▁and" ends the text and also ends earlier twice, followed once
     * by "\n" (a breaker alone: never penalized) and once by "▁to" (the
     * repetition would be 3 long: 0.8 * 1.75^0) */
    hs.dry_sequence_breakers = NULL;
    hs.n_dry_sequence_breakers = 0;
    hs.temperature = 1.0f;
    hs.top_k = 0, hs.top_p = 1.0f, hs.min_p = 0.0f;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_sampler_new(m, &hs, &smp) == HEARTH_OK);
    const int32_t nl = find_piece(v, "<0x0A>"),
                  and = find_piece(v, "\xe2\x96\x81"
                                      "and"),
                  to = find_piece(v, "\xe2\x96\x81to"), of = find_piece(v, "\xe2\x96\x81of");
    REQUIRE(nl >= 0 && and >= 0 && to >= 0 && of >= 0);
    const int32_t hist[] = {the, and, nl, of, the, and, to, the, and};
    for (int i = 0; i < 9; i++) REQUIRE(smp_accept(smp->smp, hist[i]) == HEARTH_OK);
    const int32_t n_vocab = hearth_model_n_vocab(m);
    static float zero[4096];
    static smp_cand got[4096];
    REQUIRE(n_vocab <= 4096);
    REQUIRE(smp_candidates(smp->smp, zero, got, n_vocab) == n_vocab);
    float l_nl = 1, l_the = 1, l_to = 1;
    int n_penalized = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (got[i].id == nl) l_nl = got[i].logit;
        if (got[i].id == the) l_the = got[i].logit;
        if (got[i].id == to) l_to = got[i].logit;
        n_penalized += got[i].logit != 0.0f;
    }
    CHECKF(l_nl == 0.0f && l_the == 0.0f && l_to == -0.8f && n_penalized == 1,
           "newline %g, the %g, to %g, %d penalized", (double)l_nl, (double)l_the, (double)l_to,
           n_penalized);
    hearth_sampler_free(smp);
    synth_model_close(&sm);
}

int main(void) {
    (void)ref_truncate; /* the fixture's, for the other sampler tests */
    test_example();
    test_random();
    test_chain();
    test_engine();
    return test_done("test_sampler_dry");
}
