/*
 * test_sampler_bias.c - logit_bias in the sampling layer: every stage of the
 * chain after the biases against a full-sort reference run on logits biased
 * here; bans (<= -100, -inf) under greedy, sampling and a constraint; a
 * large positive bias forcing a token; duplicates adding up; the order with
 * the penalties; the caller's array copied; invalid entries refused with a
 * message; and the public API on a small model (hearth_sampler_new checks
 * ids against the vocabulary; a generation with a forced token emits it).
 */
#include "model/synth.h"
#include "sampling/sampling.h"
#include "sampler_fixture.h"
#include "test.h"

#include <float.h>
#include <unistd.h>

/* ---- the reference: biases applied literally, then a full sort ----------- */

/* Each token's summed bias (0 when none) and whether it is banned. */
static void ref_bias(const hearth_logit_bias *b, size_t nb, int n, float *sum, bool *ban) {
    for (int i = 0; i < n; i++) sum[i] = 0.0f;
    /* summed in the array's order per id, as a left fold would (the sampler
     * sums in id-sorted order; qsort is not stable, but the sums compared
     * below use values exact in float) */
    for (size_t k = 0; k < nb; k++) sum[b[k].id] += b[k].bias;
    for (int i = 0; i < n; i++) ban[i] = sum[i] <= -100.0f;
}

/* The chain's survivors, best first, logits / temperature; returns the count. */
static int ref_chain(const float *logits, int n, const smp_params *p, const float *bias,
                     const bool *ban, smp_cand *out) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!ban[i]) out[m++] = (smp_cand){i, logits[i] + bias[i]};
    return ref_truncate(out, m, p);
}

/* Random logits (quarter steps, so ties happen) and random biases: integers
 * in [-8, 8] (exact sums), some bans (-100, -150, -inf), some duplicates. */
static void test_vs_reference(void) {
    enum { N = 300, NB = 60, ROUNDS = 40 };
    unsigned long long rs = 77;
    float lg[N], sum[N];
    bool ban[N];
    hearth_logit_bias b[NB];
    smp_cand got[N], want[N];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) lg[i] = roundf(test_rand_f(&rs) * 24.0f) / 4.0f;
        const size_t nb = (size_t)(round % NB) + 1;
        for (size_t k = 0; k < nb; k++) {
            const uint32_t r = (uint32_t)test_rand_u64(&rs);
            b[k].id = (int32_t)(r % (round % 3 == 0 ? 10u : (uint32_t)N)); /* dense: duplicates */
            const uint32_t kind = (r >> 16) % 10;
            b[k].bias = kind == 0   ? -100.0f
                        : kind == 1 ? -INFINITY
                        : kind == 2 ? -150.0f
                                    : (float)((int)((r >> 20) % 17) - 8);
        }
        ref_bias(b, nb, N, sum, ban);
        smp_params p = plain_params(5);
        p.top_k = round % 4 == 0 ? 0 : 1 + (int)((uint32_t)test_rand_u64(&rs) % 50);
        p.top_p =
            round % 3 == 0 ? 1.0f : 0.5f + 0.5f * (float)((uint32_t)test_rand_u64(&rs) % 100) / 100;
        p.min_p = round % 5 == 0 ? 0.0f : 0.01f * (float)((uint32_t)test_rand_u64(&rs) % 20);
        p.temperature = 0.5f + (float)(round % 4) * 0.25f;
        p.logit_bias = b;
        p.n_logit_bias = nb;
        smp_sampler *s = make(N, &p);
        const int m = ref_chain(lg, N, &p, sum, ban, want);
        const int k = smp_candidates(s, lg, got, N);
        CHECKF(k == m, "round %d: %d candidates, reference %d", round, k, m);
        for (int i = 0; i < k && i < m; i++)
            CHECKF(got[i].id == want[i].id && fabsf(got[i].logit - want[i].logit) < 1e-5f,
                   "round %d [%d]: %d %g vs %d %g", round, i, (int)got[i].id, (double)got[i].logit,
                   (int)want[i].id, (double)want[i].logit);
        /* draws only ever give survivors, never a banned token */
        for (int d = 0; d < 50; d++) {
            const int32_t id = smp_sample(s, lg);
            CHECKF(id >= 0 && id < N && !ban[id], "round %d: drew %d", round, (int)id);
        }
        smp_free(s);
        /* greedy: the reference's best */
        p.temperature = 0.0f;
        s = make(N, &p);
        const smp_params pt = {.temperature = 1.0f, .top_p = 1.0f};
        ref_chain(lg, N, &pt, sum, ban, want);
        CHECKF(smp_sample(s, lg) == want[0].id, "round %d: greedy", round);
        smp_free(s);
    }
}

static void test_greedy_force_ban(void) {
    const float lg[] = {1.0f, 5.0f, 3.0f, -2.0f, 4.5f};
    const int n = 5;
    smp_params p = smp_default_params();
    p.temperature = 0.0f;
    p.seed = 1;
    smp_sampler *s = make(n, &p);
    CHECK(smp_sample(s, lg) == 1);
    smp_free(s);

    hearth_logit_bias force = {3, 100.0f}; /* the worst token, forced */
    p.logit_bias = &force;
    p.n_logit_bias = 1;
    s = make(n, &p);
    CHECK(smp_sample(s, lg) == 3);
    smp_cand c[4];
    CHECK(smp_candidates(s, lg, c, 4) == 1 && c[0].id == 3 && c[0].logit == 98.0f);
    smp_free(s);

    hearth_logit_bias ban[] = {{1, -100.0f}}; /* the argmax banned: the next best */
    p.logit_bias = ban;
    s = make(n, &p);
    CHECK(smp_sample(s, lg) == 4);
    smp_free(s);
    ban[0].bias = -99.5f; /* above the ban: just a bias */
    s = make(n, &p);
    CHECK(smp_sample(s, lg) == 4);
    smp_free(s);
    smp_params q = plain_params(1); /* no truncation */
    q.logit_bias = ban;
    q.n_logit_bias = 1;
    s = make(n, &q);
    CHECK(smp_candidates(s, lg, c, 4) == 5); /* still a candidate */
    smp_free(s);

    /* duplicates add up: +1 and +2.5 on token 2 make 6.5, above token 1's 5 */
    hearth_logit_bias dup[] = {{2, 1.0f}, {0, 0.0f}, {2, 2.5f}};
    p.temperature = 0.0f;
    p.logit_bias = dup;
    p.n_logit_bias = 3;
    s = make(n, &p);
    CHECK(smp_candidates(s, lg, c, 4) == 1 && c[0].id == 2 && c[0].logit == 6.5f);
    smp_free(s);
    /* a ban and a positive entry for one id: the sum decides (-inf stays a ban) */
    hearth_logit_bias mix[] = {{1, -INFINITY}, {1, 1000.0f}};
    p.logit_bias = mix;
    p.n_logit_bias = 2;
    s = make(n, &p);
    CHECK(smp_sample(s, lg) == 4);
    smp_free(s);

    /* the caller's array need not outlive smp_new */
    hearth_logit_bias *heap = malloc(sizeof *heap);
    REQUIRE(heap);
    *heap = (hearth_logit_bias){0, 50.0f};
    p.logit_bias = heap;
    p.n_logit_bias = 1;
    s = make(n, &p);
    heap->id = 3;
    heap->bias = -100.0f;
    free(heap);
    CHECK(smp_sample(s, lg) == 0);
    smp_free(s);
}

/* Sampling: a banned token is never drawn, a +100 one always is (its
 * competitors' probabilities are below e^-90). */
static void test_sampled(void) {
    enum { N = 50 };
    float lg[N];
    for (int i = 0; i < N; i++) lg[i] = (float)(i % 7) * 0.5f; /* several tokens likely */
    hearth_logit_bias b[] = {{6, -100.0f}, {13, -100.0f}, {20, -INFINITY}};
    smp_params p = plain_params(123);
    p.logit_bias = b;
    p.n_logit_bias = 3;
    smp_sampler *s = make(N, &p);
    int seen[N] = {0};
    for (int d = 0; d < 4000; d++) {
        const int32_t id = smp_sample(s, lg);
        REQUIRE(id >= 0 && id < N);
        seen[id]++;
    }
    CHECK(seen[6] == 0 && seen[13] == 0 && seen[20] == 0);
    CHECKF(seen[27] > 0 && seen[34] > 0, "the best unbanned tokens: %d %d", seen[27], seen[34]);
    smp_free(s);

    hearth_logit_bias f = {0, 100.0f}; /* token 0 has the lowest logit */
    p.logit_bias = &f;
    p.n_logit_bias = 1;
    p.temperature = 1.5f;
    s = make(N, &p);
    for (int d = 0; d < 2000; d++) CHECK(smp_sample(s, lg) == 0);
    smp_free(s);
}

/* The bias comes before the penalties (llama.cpp's chain order): a token
 * with logit 1, bias +3 and repeat penalty 2 ends at (1 + 3) / 2 = 2, not
 * 1 / 2 + 3. */
static void test_before_penalties(void) {
    const float lg[] = {1.0f, 0.0f, -1.0f};
    hearth_logit_bias b = {0, 3.0f};
    smp_params p = plain_params(1);
    p.penalty_last_n = 8;
    p.repeat_penalty = 2.0f;
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    smp_sampler *s = make(3, &p);
    CHECK(smp_accept(s, 0) == HEARTH_OK);
    smp_cand c[3];
    CHECK(smp_candidates(s, lg, c, 3) == 3);
    CHECKF(c[0].id == 0 && c[0].logit == 2.0f, "%d %g", (int)c[0].id, (double)c[0].logit);
    smp_free(s);
}

/* Every token banned: -1 / 0 with a message, not a banned token. */
static void test_all_banned(void) {
    const float lg[] = {1.0f, 2.0f};
    hearth_logit_bias b[] = {{0, -100.0f}, {1, -INFINITY}};
    for (int greedy = 0; greedy < 2; greedy++) {
        smp_params p = plain_params(1);
        p.temperature = greedy ? 0.0f : 1.0f;
        p.logit_bias = b;
        p.n_logit_bias = 2;
        smp_sampler *s = make(2, &p);
        CHECK(smp_sample(s, lg) == -1);
        CHECKF(strstr(hearth_last_error(), "logit_bias bans every token") != NULL, "%s",
               hearth_last_error());
        smp_cand c[2];
        CHECK(smp_candidates(s, lg, c, 2) == 0);
        smp_free(s);
    }
}

/* A toy vocabulary for JSON mode: "{", "}", " ", "a", "\"", and an
 * end-of-generation token. */
static const char *const toy[] = {"{", "}", " ", "a", "\"", ""};

static size_t toy_piece(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog) {
    (void)ctx;
    const size_t n = strlen(toy[id]);
    memcpy(buf, toy[id], n < cap ? n : cap);
    *eog = id == 5;
    return n;
}

/* With a constraint: the bias bans among what the constraint allows; a
 * bias never brings back a token the constraint refuses. */
static void test_with_constraint(void) {
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(6, toy_piece, NULL, &v) == HEARTH_OK);
    const float lg[] = {2.0f, 9.0f, 1.0f, 8.0f, 7.0f, 6.0f};
    hearth_logit_bias b[] = {{0, -100.0f}, {3, 100.0f}};
    smp_params p = plain_params(1);
    p.temperature = 0.0f;
    p.constraint = SMP_CONSTRAINT_JSON_OBJECT;
    p.vocab = v;
    p.logit_bias = b;
    p.n_logit_bias = 1;
    smp_sampler *s = make(6, &p);
    CHECK(smp_sample(s, lg) == 2); /* "{" banned: the white space */
    smp_free(s);
    p.n_logit_bias = 2; /* "a" forced by the bias, but refused by the constraint */
    s = make(6, &p);
    CHECK(smp_sample(s, lg) == 2);
    smp_free(s);
    hearth_logit_bias both[] = {{0, -100.0f}, {2, -100.0f}};
    p.logit_bias = both;
    p.n_logit_bias = 2;
    s = make(6, &p);
    CHECK(smp_sample(s, lg) == -1);
    CHECKF(strstr(hearth_last_error(), "constraint allows") != NULL, "%s", hearth_last_error());
    smp_free(s);
    smp_vocab_free(v);
}

static void test_invalid(void) {
    smp_sampler *s = NULL;
    smp_params p = plain_params(1);
    hearth_logit_bias b[] = {{0, 1.0f}, {10, 1.0f}};
    p.logit_bias = b;
    p.n_logit_bias = 2;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    CHECKF(strstr(hearth_last_error(), "logit_bias[1]") &&
               strstr(hearth_last_error(), "token 10 is outside [0, 10)"),
           "%s", hearth_last_error());
    b[1].id = -1;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    b[1] = (hearth_logit_bias){9, NAN};
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    CHECK(strstr(hearth_last_error(), "logit_bias[1]") != NULL);
    b[1].bias = INFINITY;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    b[1].bias = -INFINITY; /* a ban */
    CHECK(smp_new(10, &p, &s) == HEARTH_OK && s);
    smp_free(s);
    s = NULL;
    p.logit_bias = NULL;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    p.n_logit_bias = 0; /* NULL and 0: none */
    CHECK(smp_new(10, &p, &s) == HEARTH_OK && s);
    smp_free(s);
    s = NULL;
    p.logit_bias = b;
    p.n_logit_bias = (size_t)SMP_BIAS_MAX + 1;
    CHECK(smp_new(10, &p, &s) == HEARTH_ERR_INVALID_ARG && !s);
    smp_params d = smp_default_params();
    CHECK(d.logit_bias == NULL && d.n_logit_bias == 0);
}

/* ---- the public API on a small model ------------------------------------------ */

static bool first_token(const hearth_token_event *ev, void *user) {
    int32_t *out = user;
    if (*out < 0) *out = ev->id;
    return false; /* one token is enough */
}

static int32_t generate_one(hearth_model *m, const hearth_sampling *sp) {
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(m, sp, &smp) == HEARTH_OK);
    const int32_t prompt[] = {1, 5, 9, 12};
    int32_t first = -1;
    hearth_gen_params gp = {.max_tokens = 1};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, smp, prompt, 4, &gp, first_token, &first, &r) == HEARTH_OK);
    hearth_sampler_free(smp);
    hearth_session_free(s);
    return first;
}

static void test_public_api(void) {
    char dir[] = "/tmp/hearth_bias_XXXXXX", path[256];
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/synth.gguf", dir);
    synth_params sp = synth_default_params();
    sp.arch = "llama";
    sp.n_ctx = 64;
    REQUIRE(synth_write(path, &sp) == HEARTH_OK);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    const int32_t n_vocab = hearth_model_n_vocab(m);

    hearth_sampling d = hearth_sampling_default_params();
    CHECK(d.logit_bias == NULL && d.n_logit_bias == 0);
    d.temperature = 0.0f;
    const int32_t plain = generate_one(m, &d);
    REQUIRE(plain >= 0);
    /* ban the greedy token: another comes; force one that is not an
     * end-of-generation token: it comes */
    hearth_logit_bias ban = {plain, -100.0f};
    d.logit_bias = &ban;
    d.n_logit_bias = 1;
    const int32_t other = generate_one(m, &d);
    CHECKF(other != plain, "banned %d, got %d", (int)plain, (int)other);
    int32_t want = (plain + 7) % n_vocab;
    while (hearth_token_is_eog(m, want)) want = (want + 1) % n_vocab;
    hearth_logit_bias force = {want, 100.0f};
    d.logit_bias = &force;
    CHECK(generate_one(m, &d) == want);
    d.temperature = 1.0f;
    d.seed = 9;
    CHECK(generate_one(m, &d) == want);

    hearth_sampler *smp = NULL;
    force.id = n_vocab;
    CHECK(hearth_sampler_new(m, &d, &smp) == HEARTH_ERR_INVALID_ARG && !smp);
    CHECKF(strstr(hearth_last_error(), "logit_bias[0]") != NULL, "%s", hearth_last_error());
    hearth_model_free(m);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    test_vs_reference();
    test_greedy_force_ban();
    test_sampled();
    test_before_penalties();
    test_all_banned();
    test_with_constraint();
    test_invalid();
    test_public_api();
    return test_done("test_sampler_bias");
}
