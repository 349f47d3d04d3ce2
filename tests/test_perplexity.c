/*
 * test_perplexity.c - `hearth perplexity` (llama-perplexity's method) on
 * stories260K and a conformance model: the perplexity it prints, per chunk
 * and final with its uncertainty, equals a plain computation here (whole
 * chunks through hearth_decode, BOS first, softmax in double over the
 * second half) to the printed precision, strided too; the base file's
 * layout; KL divergence of a model from itself ~0 with the same top token,
 * of Q8_0 from F32 small and of Q4_0 larger; clear errors on bad input.
 * The arithmetic pieces of src/eval are checked against double-precision
 * references on random rows.
 */
#include "eval/eval.h"
#include "golden.h"
#include "hearth.h"
#include "test.h"
#include "test_sh.h"

#include <stdarg.h>
#include <stdbool.h>
#include <unistd.h>

static char dir[64];
static char text_path[128];

/* A short text in stories260K's genre; ~580 tokens with its vocabulary. */
static const char story[] =
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with "
    "her red ball. One day, she saw a big dog under a tree. The dog was sad because he was lost. "
    "Lily said, \"Do not be sad, dog. I will help you find your home.\" The dog wagged his tail "
    "and they walked together. They saw a boy named Tom. Tom said, \"That is my dog! His name is "
    "Max.\" Lily was happy. Tom gave Lily a hug and said thank you. Max licked her hand. From "
    "that day on, Lily, Tom and Max played in the park every day.\n"
    "Once upon a time, there was a small bird who lived in a tall tree. The bird liked to sing in "
    "the morning. One day, it was very cold and the bird could not find any food. A kind old man "
    "saw the bird and gave it some bread. The bird was so happy that it sang a beautiful song for "
    "the man. The man smiled and came back every day with more bread. They became good friends, "
    "and the bird was never hungry again.\n"
    "One day, a boy named Ben went to the beach with his mom. He wanted to build a big sand "
    "castle. He dug and dug until he had a lot of sand. Then a big wave came and broke his "
    "castle. Ben was sad and started to cry. His mom said, \"Don't cry, Ben. We can build a new "
    "one together.\" They built a bigger castle far from the water. Ben was proud and happy. He "
    "learned that it is good to try again.\n";

static char *out_text, *err_text;

/* Runs `hearth perplexity ARGS`; its stdout and stderr land in out_text and
 * err_text. Returns the exit status. */
__attribute__((format(printf, 1, 2))) static int ppl_run(const char *fmt, ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const int rc = test_sh("%s perplexity %s > %s/out 2> %s/err", HEARTH_BINARY, args, dir, dir);
    char path[128];
    free(out_text);
    free(err_text);
    snprintf(path, sizeof path, "%s/out", dir);
    out_text = golden_read(path, NULL);
    snprintf(path, sizeof path, "%s/err", dir);
    err_text = golden_read(path, NULL);
    if (!out_text) out_text = calloc(1, 1);
    if (!err_text) err_text = calloc(1, 1);
    return rc;
}

/* The running estimates "[1]v,[2]v,..." of out into v; returns how many. */
static int running(const char *out, double *v, int cap) {
    int n = 0;
    for (const char *p = strchr(out, '['); p && n < cap; p = strchr(p + 1, '[')) {
        int k;
        double x;
        if (sscanf(p, "[%d]%lf,", &k, &x) == 2 && k == n + 1) v[n++] = x;
    }
    return n;
}

static bool final_estimate(const char *out, double *ppl, double *unc) {
    const char *p = strstr(out, "Final estimate: PPL = ");
    return p && sscanf(p, "Final estimate: PPL = %lf +/- %lf", ppl, unc) == 2;
}

/* The number after "label ... :" in out (NAN when absent). */
static double stat(const char *out, const char *label) {
    const char *p = strstr(out, label);
    double v;
    if (!p || !(p = strchr(p, ':')) || sscanf(p + 1, "%lf", &v) != 1) return NAN;
    return v;
}

static int32_t *text_tokens(const hearth_model *m, size_t *n) {
    size_t len = strlen(story) - 1; /* -f drops the final newline */
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    REQUIRE(ids && hearth_tokenize(m, story, len, true, false, ids, len + 2, n) == HEARTH_OK);
    return ids;
}

/* The plain computation: windows of `win` tokens every `step`, each decoded
 * whole from an empty cache (its first token BOS when `bos`), positions
 * first..win-2 scored with a double-precision softmax. */
typedef struct ref {
    double running[64];
    int n_chunk;
    double ppl, unc;
} ref;

/* One run of the command and the windows it should score. */
typedef struct ppl_case {
    const char *args; /* beside -m, -f, -t */
    int win, step, first;
    bool bos;
    hearth_kv_type kv;
} ppl_case;

static void reference(const char *model, const ppl_case *c, ref *r) {
    const int win = c->win, step = c->step, first = c->first;
    const bool bos = c->bos;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(model, NULL, &m) == HEARTH_OK);
    size_t n;
    int32_t *ids = text_tokens(m, &n);
    const int nv = hearth_model_n_vocab(m);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = sp.n_batch = win;
    sp.kv_type = c->kv;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    float *logits = malloc((size_t)win * nv * sizeof(float));
    float *cut = malloc((size_t)(win - first) * nv * sizeof(float));
    int32_t *chunk = malloc((size_t)win * sizeof *chunk);
    REQUIRE(logits && cut && chunk);
    r->n_chunk = step == win ? (int)(n / (size_t)win) : (int)((n - win + step - 1) / step);
    REQUIRE(r->n_chunk > 1 && r->n_chunk <= 64);
    double sum = 0, sum2 = 0;
    size_t count = 0;
    for (int i = 0; i < r->n_chunk; i++) {
        memcpy(chunk, ids + (size_t)i * step, (size_t)win * sizeof *chunk);
        /* eval_chunk's rows, in calls of 24 tokens cut at `first`, are the
         * whole decode's bit for bit */
        REQUIRE(eval_chunk(s, nv, chunk, win, 24, first, bos ? hearth_token_bos(m) : -1, cut) ==
                HEARTH_OK);
        if (bos) chunk[0] = hearth_token_bos(m);
        REQUIRE(hearth_session_truncate(s, 0) == HEARTH_OK);
        REQUIRE(hearth_decode(s, chunk, win, logits, true) == HEARTH_OK);
        CHECK(!memcmp(cut, logits + (size_t)first * nv, (size_t)(win - first) * nv * 4));
        for (int j = first; j < win - 1; j++) {
            const float *row = logits + (size_t)j * nv;
            double max = row[0], z = 0;
            for (int t = 1; t < nv; t++) max = row[t] > max ? row[t] : max;
            for (int t = 0; t < nv; t++) z += exp(row[t] - max);
            const double nll = max + log(z) - row[ids[(size_t)i * step + j + 1]];
            sum += nll;
            sum2 += nll * nll;
            count++;
        }
        r->running[i] = exp(sum / (double)count);
    }
    const double mean = sum / (double)count;
    r->ppl = exp(mean);
    r->unc = sqrt((sum2 / (double)count - mean * mean) / (double)(count - 1)) * r->ppl;
    free(chunk);
    free(cut);
    free(logits);
    free(ids);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* Equal to the printed precision (digits after the point) give or take the
 * last bits of float arithmetic on large values. */
static bool near(double printed, double want, int digits) {
    return fabs(printed - want) <= 0.6 * pow(10, -digits) + 2e-6 * fabs(want);
}

static void check_ppl(const char *model, const ppl_case *c) {
    const char *extra = c->args;
    ref r;
    reference(model, c, &r);
    CHECKF(ppl_run("-m %s -f %s -t 2 %s", model, text_path, extra) == 0, "%s", err_text);
    double v[64], ppl = 0, unc = 0;
    const int n = running(out_text, v, 64);
    CHECKF(n == r.n_chunk, "%s %s: %d chunks printed, %d expected", model, extra, n, r.n_chunk);
    for (int i = 0; i < n && i < r.n_chunk; i++)
        CHECKF(near(v[i], r.running[i], 4), "%s %s: chunk %d: %.4f, plain %.6f", model, extra,
               i + 1, v[i], r.running[i]);
    const bool fin = final_estimate(out_text, &ppl, &unc);
    if (c->step != c->win) { /* strided: no uncertainty */
        const char *p = strstr(out_text, "Final estimate: PPL = ");
        CHECK(p && sscanf(p, "Final estimate: PPL = %lf", &ppl) == 1);
        CHECKF(near(ppl, r.ppl, 4), "%s %s: %.4f, plain %.6f", model, extra, ppl, r.ppl);
        return;
    }
    CHECKF(fin && near(ppl, r.ppl, 4) && near(unc, r.unc, 5),
           "%s %s: %.4f +/- %.5f, plain %.6f +/- %.6f", model, extra, ppl, unc, r.ppl, r.unc);
    /* --chunks 2: the first two chunks only */
    CHECK(ppl_run("-m %s -f %s -t 2 %s --chunks 2", model, text_path, extra) == 0);
    CHECK(running(out_text, v, 64) == 2 && near(v[1], r.running[1], 4));
}

/* KL divergence of test from base (both on the text, chunks of n_ctx):
 * its mean and same-top share. */
static void kld_of(const char *base, const char *test, int n_ctx, double *kld, double *top,
                   double *ppl_q) {
    char kf[128];
    snprintf(kf, sizeof kf, "%s/base.kld", dir);
    CHECKF(ppl_run("-m %s -f %s -c %d -t 2 --kl-divergence-base %s", base, text_path, n_ctx, kf) ==
               0,
           "%s", err_text);
    CHECKF(ppl_run("-m %s -t 2 --kl-divergence-base %s --kl-divergence", test, kf) == 0, "%s",
           err_text);
    *kld = stat(out_text, "Mean    KLD");
    *top = stat(out_text, "Same top p");
    *ppl_q = stat(out_text, "Mean PPL(Q)");
}

static void check_kld(const char *family, int n_ctx) {
    char f32[256], q8[256], q4[256];
    snprintf(f32, sizeof f32, "%s.F32.gguf", family);
    snprintf(q8, sizeof q8, "%s.Q8_0.gguf", family);
    snprintf(q4, sizeof q4, "%s.Q4_0.gguf", family);
    double kld, top, ppl_q, kld8, top8, kld4, top4, ppl = 0, unc;
    kld_of(f32, f32, n_ctx, &kld, &top, &ppl_q);
    CHECKF(fabs(kld) < 1e-5 && top >= 99.0, "%s against itself: KLD %g, same top %g %%", f32, kld,
           top);
    kld_of(f32, q8, n_ctx, &kld8, &top8, &ppl_q);
    kld_of(f32, q4, n_ctx, &kld4, &top4, &ppl_q);
    CHECKF(kld8 > 1e-4 && kld8 < 0.2 && kld4 > 10 * kld8 && top8 > top4,
           "%s: KLD Q8_0 %g (same top %g %%), Q4_0 %g (%g %%)", family, kld8, top8, kld4, top4);
    /* the KL run's PPL(Q) is the plain run's */
    CHECK(ppl_run("-m %s -f %s -c %d -t 2", q4, text_path, n_ctx) == 0);
    CHECKF(final_estimate(out_text, &ppl, &unc) && fabs(ppl_q - ppl) <= 1e-5 * ppl,
           "%s: PPL(Q) %f, plain run %f", q4, ppl_q, ppl);
}

/* The base file: its size and header, its tokens the text's. */
static void check_base_file(const char *model) {
    char kf[128];
    snprintf(kf, sizeof kf, "%s/layout.kld", dir);
    REQUIRE(ppl_run("-m %s -f %s -c 64 -t 2 --kl-divergence-base %s", model, text_path, kf) == 0);
    size_t len;
    char *data = golden_read(kf, &len);
    hearth_model *m = NULL;
    REQUIRE(data && hearth_model_load(model, NULL, &m) == HEARTH_OK);
    size_t n;
    int32_t *ids = text_tokens(m, &n);
    const int nv = hearth_model_n_vocab(m), n_chunk = (int)(n / 64);
    CHECK(len == EVAL_BASE_HEADER_SIZE + 4 * (size_t)n_chunk * 64 +
                     2 * (2 * (((size_t)nv + 1) / 2) + 4) * (size_t)n_chunk * 31);
    eval_base b;
    CHECK(eval_base_parse((const uint8_t *)data, len, &b) == HEARTH_OK && b.n_ctx == 64 &&
          b.n_vocab == nv && b.n_chunk == n_chunk &&
          !memcmp(b.tokens, ids, (size_t)n_chunk * 64 * sizeof *ids));
    CHECK(eval_base_parse((const uint8_t *)data, len - 2, &b) == HEARTH_ERR_FORMAT);
    free(ids);
    free(data);
    hearth_model_free(m);
}

/* src/eval's arithmetic on random rows against double-precision references. */
static void check_rows(void) {
    enum { NV = 1001 };
    static float a[NV], b[NV];
    static uint16_t row[2 * ((NV + 1) / 2) + 4];
    CHECK(eval_base_row_len(NV) == sizeof row / sizeof row[0]);
    unsigned long long seed = 75;
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < NV; i++) {
            a[i] = 8 * test_rand_f(&seed);
            b[i] = a[i] + 0.5f * test_rand_f(&seed);
        }
        double za = 0, zb = 0, kl = 0;
        for (int i = 0; i < NV; i++) za += exp(a[i]), zb += exp(b[i]);
        for (int i = 0; i < NV; i++) {
            const double lpa = a[i] - log(za), lpb = b[i] - log(zb);
            kl += exp(lpa) * (lpa - lpb);
        }
        const int32_t tok = (int32_t)(test_rand_u64(&seed) % NV);
        const double nll = log(za) - a[tok];
        CHECK(fabs(eval_nll(a, NV, tok) - nll) < 1e-5);
        CHECK(fabs(eval_nll_strided(a, NV, tok) - nll) < 1e-5);
        CHECK(fabs(eval_base_row(a, NV, tok, row) - nll) < 1e-5);
        eval_kld k = {0};
        float d, dp;
        eval_kld_add(&k, a, NV, row, tok, &d, &dp); /* against itself */
        /* the uint16 rounding alone (a step of 16/65535 in a log-probability) */
        CHECKF(fabs(d) < 1e-4 && k.n_same_top == 1 && fabs(dp) < 1e-4, "self KLD %g", d);
        eval_kld_add(&k, b, NV, row, tok, &d, &dp);
        CHECKF(fabs(d - kl) < 1e-4 * (1 + kl), "KLD %g, reference %g", d, kl);
        CHECK(k.count == 2 && fabs(k.sum_nll_base - 2 * nll) < 1e-3);
    }
    const float sorted[] = {1, 2, 3, 4, 5};
    CHECK(eval_median(sorted, 5) == 3 && eval_median(sorted, 4) == 2.5f);
    CHECK(eval_percentile(sorted, 5, 0.25f) == 2 &&
          fabsf(eval_percentile(sorted, 5, 0.1f) - 1.4f) < 1e-6f);
    CHECK(eval_percentile(sorted, 5, 0) == 1 && eval_percentile(sorted, 5, 1) == 5);
    const eval_stat s = eval_mean(55, 385, 10); /* 1..10: 10 values, no uncertainty yet */
    CHECK(s.val == 5.5 && s.unc == 0);
}

/* `hearth perplexity ARGS` exits with rc and says msg on stderr. */
__attribute__((format(printf, 3, 4))) static void fails(int rc, const char *msg, const char *fmt,
                                                        ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const int got = ppl_run("%s", args);
    CHECKF(got == rc && strstr(err_text, msg), "%s: exit %d, wanted %d and '%s': %s", args, got, rc,
           msg, err_text);
}

/* Bad input: each a clear message and exit status 1 (2: usage). */
static void check_errors(const char *stories, const char *other) {
    char kf[128], cut[128], bert[128];
    snprintf(kf, sizeof kf, "%s/err.kld", dir);
    snprintf(cut, sizeof cut, "%s/cut.kld", dir);
    snprintf(bert, sizeof bert, "%s/bert.gguf", dir);
    const char *kl = "--kl-divergence";
    fails(1, "cannot open", "-m %s -f %s/none.txt", stories, dir);
    fails(1, "at least 1024 are needed to evaluate perplexity with a context of 512",
          "-m %s -f %s -c 512", stories, text_path);
    REQUIRE(test_sh("%s synth -o %s --arch bert > /dev/null 2>&1", HEARTH_BINARY, bert) == 0);
    fails(1, "no output layer", "-m %s -f %s", bert, text_path);
    REQUIRE(ppl_run("-m %s -f %s -c 64 --chunks 4 %s-base %s", stories, text_path, kl, kf) == 0);
    fails(1, "vocabulary has 512 tokens", "-m %s %s-base %s %s", other, kl, kf, kl);
    fails(1, "context of 64, not 32", "-m %s -c 32 %s-base %s %s", stories, kl, kf, kl);
    REQUIRE(test_sh("head -c -10 %s > %s", kf, cut) == 0);
    fails(1, "cut short", "-m %s %s-base %s %s", stories, kl, cut, kl);
    fails(1, "not a file of log-probabilities", "-m %s %s-base %s %s", stories, kl, text_path, kl);
    fails(1, "another text or tokenizer", "-m %s -f %s/README.md %s-base %s %s", stories,
          HEARTH_SOURCE_DIR, kl, kf, kl);
    CHECK(ppl_run("-m %s -f %s %s-base %s %s", stories, text_path, kl, kf, kl) == 0);
    fails(2, "-m MODEL is required", "-f %s", text_path);
    fails(2, "needs --kl-divergence-base", "-m %s %s", stories, kl);
    fails(2, "-c wants a whole number", "-m %s -f %s -c 2", stories, text_path);
    fails(2, "too long", "-m %s -f %s --ppl-stride 600 -c 64", stories, text_path);
}

int main(void) {
    check_rows();
    char stories[512], llama[512], fam[512];
    snprintf(stories, sizeof stories, "%s/conformance/stories260K/stories260K", HEARTH_SHARED_DIR);
    snprintf(llama, sizeof llama, "%s/conformance/models/tiny-llama/tiny-llama", HEARTH_SHARED_DIR);
    snprintf(fam, sizeof fam, "%s.F32.gguf", stories);
    if (access(fam, R_OK) != 0) {
        printf("test_perplexity: %s is absent: only the arithmetic was checked (%d checks, %d "
               "failures); skipping the models\n",
               fam, test_checks, test_failures);
        return test_failures ? 1 : TEST_SKIP;
    }
    snprintf(dir, sizeof dir, "/tmp/hearth_ppl_XXXXXX");
    REQUIRE(mkdtemp(dir));
    snprintf(text_path, sizeof text_path, "%s/story.txt", dir);
    FILE *f = fopen(text_path, "w");
    REQUIRE(f && fputs(story, f) >= 0 && fclose(f) == 0);

    char path[600];
    const ppl_case small = {"-c 64 -b 24", 64, 64, 32, true, HEARTH_KV_F16};
    for (int i = 0; i < 3; i++) {
        static const char *const types[] = {"F32", "Q8_0", "Q4_K_M"};
        snprintf(path, sizeof path, "%s.%s.gguf", stories, types[i]);
        check_ppl(path, &small);
    }
    static const ppl_case cases[] = {
        {"-c 128", 128, 128, 64, true, HEARTH_KV_F16},
        {"-c 100 -b 7 --kv-type f32", 100, 100, 50, true, HEARTH_KV_F32},
        /* strided: windows of 64 + 32/2 tokens rounded up to 256, every 32, the
         * last 32 scored */
        {"-c 64 --ppl-stride 32 -b 24", 256, 32, 223, false, HEARTH_KV_F16},
    };
    snprintf(path, sizeof path, "%s.F32.gguf", llama);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_ppl(path, &cases[i]);
    snprintf(path, sizeof path, "%s.F32.gguf", stories);
    check_base_file(path);
    check_kld(stories, 64);
    check_kld(llama, 128);
    snprintf(fam, sizeof fam, "%s.F32.gguf", llama);
    check_errors(path, fam);

    free(out_text);
    free(err_text);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_done("test_perplexity");
}
