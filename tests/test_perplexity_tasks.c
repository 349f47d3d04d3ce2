/*
 * test_perplexity_tasks.c - `hearth perplexity --hellaswag / --winogrande /
 * --multiple-choice` (llama-perplexity's benchmarks) on task files this test
 * writes (made-up tasks): std::mt19937 and libstdc++'s draws against values
 * from a libstdc++ build, the three readers (the tasks they pick, the lines
 * they skip, their refusals), and, with ../shared/conformance, the printed
 * lines of two models against llama-perplexity's own output on the same
 * files (the choices made, recorded from llama.cpp's build) and against a
 * plain computation here (each candidate decoded whole, log-softmax in
 * double), the same output on 1 and 2 threads, and the CLI's errors.
 */
#include "eval/eval.h"
#include "golden.h"
#include "hearth.h"
#include "test.h"
#include "test_sh.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

/* 12 HellaSwag tasks: context, label, four endings */
static const char hs_text[] = "Baking: A girl puts flour in a bowl. She\n"
                              "0\n"
                              "puts a small tree in the hole.\n"
                              "swims to the other side fast.\n"
                              "falls asleep on the warm grass.\n"
                              "paints a big yellow sun.\n"
                              "Swimming: A boy jumps into the pool. He\n"
                              "0\n"
                              "says hello to the old man.\n"
                              "eats the bread with a big smile.\n"
                              "adds two eggs and mixes it well.\n"
                              "looks at the sky and sings a song.\n"
                              "Dog walk: Lily takes her dog to the park. The dog\n"
                              "0\n"
                              "falls asleep on the warm grass.\n"
                              "says hello to the old man.\n"
                              "eats the bread with a big smile.\n"
                              "plays with the red ball all day.\n"
                              "Painting: Tom holds a brush over the paper. He\n"
                              "3\n"
                              "puts a small tree in the hole.\n"
                              "eats the bread with a big smile.\n"
                              "adds two eggs and mixes it well.\n"
                              "blow out the candles and clap.\n"
                              "Gardening: Mom digs a hole in the garden. She\n"
                              "0\n"
                              "swims to the other side fast.\n"
                              "looks at the sky and sings a song.\n"
                              "plays with the red ball all day.\n"
                              "blow out the candles and clap.\n"
                              "Birthday: The kids sit around the cake. They\n"
                              "1\n"
                              "looks at the sky and sings a song.\n"
                              "puts a small tree in the hole.\n"
                              "blow out the candles and clap.\n"
                              "says hello to the old man.\n"
                              "Rain: Dark clouds fill the sky. The children\n"
                              "1\n"
                              "looks at the sky and sings a song.\n"
                              "adds two eggs and mixes it well.\n"
                              "blow out the candles and clap.\n"
                              "eats the bread with a big smile.\n"
                              "Reading: Ben opens a big book about birds. He\n"
                              "1\n"
                              "looks at the sky and sings a song.\n"
                              "run inside before the rain.\n"
                              "swims to the other side fast.\n"
                              "falls asleep on the warm grass.\n"
                              "Fishing: Dad throws the line into the lake. A fish\n"
                              "1\n"
                              "paints a big yellow sun.\n"
                              "blow out the candles and clap.\n"
                              "eats the bread with a big smile.\n"
                              "looks at the sky and sings a song.\n"
                              "Cooking: Sue cuts the carrots into small pieces. She\n"
                              "3\n"
                              "plays with the red ball all day.\n"
                              "swims to the other side fast.\n"
                              "adds two eggs and mixes it well.\n"
                              "falls asleep on the warm grass.\n"
                              "Snow: The yard is white and cold. Max\n"
                              "2\n"
                              "looks at the sky and sings a song.\n"
                              "run inside before the rain.\n"
                              "swims to the other side fast.\n"
                              "runs to the car and drives away.\n"
                              "Music: The girl sits at the piano. She\n"
                              "2\n"
                              "swims to the other side fast.\n"
                              "puts a small tree in the hole.\n"
                              "blow out the candles and clap.\n"
                              "adds two eggs and mixes it well.\n";

/* WinoGrande: line 5 is no task; -f drops the final newline, so llama-perplexity never reads the
 * last line */
static const char wg_text[] =
    "0,Sarah was a much better cook than Maria so _ always made the cake.,Sarah,Maria,1\n"
    "1,The dog chased the cat up the tree because _ was very fast.,dog,cat,1\n"
    "2,\"Tom gave Ben his ball, since _ did not want to play any more.\",Tom,Ben,1\n"
    "3,Lily could not lift the box but Sue could because _ is weak.,Lily,Sue,1\n"
    "4,this line is not a task\n"
    "5,The bird sang to the fish and then the _ swam away.,bird,fish,2\n"
    "6,Max helped Dad in the garden so _ was happy.,Max,Dad,2\n"
    "7,Mom read a book to the girl until _ fell asleep on the bed.,Mom,girl,2\n"
    "8,The sun was hot and the snow was cold so the _ melted.,sun,snow,2\n"
    "9,Ben threw the ball to Tom and _ caught it.,Ben,Tom,2\n"
    "10,The car was faster than the bike so the _ won.,car,bike,1\n"
    "11,Sue gave the cake to Lily because _ was hungry.,Sue,Lily,2\n"
    "12,The cat sat on the hat and the dog sat on the _.,hat,box,1\n"
    "13,Dad made a kite for Max so _ could fly it at the park.,Dad,Max,2\n";

/* Multiple choice: questions, answers, the right one's index. */
static const struct {
    const char *q, *a[5];
    int n, right;
} mc_src[] = {
    {"What color is the sky on a sunny day?", {"Blue.", "Green.", "Red."}, 3, 0},
    {"Where do fish live?",
     {"In the water.", "In a tree.", "Under the bed.", "On the moon."},
     4,
     0},
    {"What does a dog say?", {"Moo.", "Woof."}, 2, 1},
    {"What do we eat for breakfast?",
     {"Eggs and bread.", "A rock.", "Green cheese.", "Shoes.", "Paper."},
     5,
     0},
    {"Who flies in the sky?", {"A fish.", "A bird.", "A cat."}, 3, 1},
    {"What is hot?", {"The sun.", "The snow.", "Ice."}, 3, 0},
    {"Where does a bird sleep?", {"In a nest.", "In a car."}, 2, 0},
    {"What do cows give us?", {"Milk.", "Cake.", "Rain.", "Books."}, 4, 0},
};
#define N_MC 8

static uint8_t mc_buf[4096];
static size_t mc_len;

static void put(const void *p, size_t n) {
    REQUIRE(mc_len + n <= sizeof mc_buf);
    memcpy(mc_buf + mc_len, p, n);
    mc_len += n;
}
static void put_u32(uint32_t v) { put(&v, 4); }
static void put_str(const char *s) {
    put_u32((uint32_t)strlen(s));
    put(s, strlen(s));
}

/* llama.cpp's binary layout: count, offsets, then each task (its second
 * answer set empty). */
static void build_mc(void) {
    mc_len = 0;
    put_u32(N_MC);
    const size_t pos = mc_len;
    for (int i = 0; i < N_MC; i++) put_u32(0);
    for (int i = 0; i < N_MC; i++) {
        const uint32_t at = (uint32_t)mc_len;
        memcpy(mc_buf + pos + 4 * (size_t)i, &at, 4);
        put_str(mc_src[i].q);
        put_u32((uint32_t)mc_src[i].n);
        for (int k = 0; k < mc_src[i].n; k++) put_str(mc_src[i].a[k]);
        for (int k = 0; k < mc_src[i].n; k++) put_u32(k == mc_src[i].right);
        put_u32(0);
    }
}

static char dir[64], hs_path[128], wg_path[128], mc_path[128];
static char *out_text, *err_text;

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static char last_args[2048]; /* the last command's arguments */

/* Runs `hearth perplexity ARGS` (env first when not empty); stdout and
 * stderr land in out_text and err_text. Returns the exit status. */
__attribute__((format(printf, 2, 0))) static int vppl_run(const char *env, const char *fmt,
                                                          va_list ap) {
    vsnprintf(last_args, sizeof last_args, fmt, ap);
    const char *args = last_args;
    const int rc =
        test_sh("%s %s perplexity %s > %s/out 2> %s/err", env, HEARTH_BINARY, args, dir, dir);
    char **texts[] = {&out_text, &err_text};
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, i ? "err" : "out");
        free(*texts[i]);
        *texts[i] = golden_read(path, NULL);
        if (!*texts[i]) *texts[i] = calloc(1, 1);
    }
    return rc;
}

__attribute__((format(printf, 2, 3))) static int ppl_run(const char *env, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int rc = vppl_run(env, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- without a model ------------------------------------------------------ */

static void check_rng(void) {
    eval_mt mt;
    eval_mt_seed(&mt, 5489); /* the standard's check: the 10000th value */
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = eval_mt_next(&mt);
    CHECK(v == 4123659995u);
    eval_mt_seed(&mt, 1);
    CHECK(eval_mt_next(&mt) == 1791095845u);
    /* std::uniform_int_distribution<size_t>(0, n - 1) on std::mt19937(1),
     * one new distribution per draw, from libstdc++ (GCC 12) */
    static const uint64_t n[] = {12, 11, 10, 9, 5, 3, 2, 1, 1000, 10042, 7};
    static const uint32_t want[] = {5, 10, 7, 8, 0, 0, 0, 0, 146, 2370, 0};
    eval_mt_seed(&mt, 1);
    for (int i = 0; i < 11; i++) CHECKF(eval_mt_below(&mt, n[i]) == want[i], "draw %d", i);
}

/* The context line of HellaSwag task i (0-based) in hs_text. */
static bool hs_is(const eval_task *t, int i) {
    const char *p = hs_text;
    for (int k = 0; k < 6 * i; k++) p = strchr(p, '\n') + 1;
    return !strncmp(p, t->context, strlen(t->context)) && p[strlen(t->context)] == '\n';
}

static void check_readers(void) {
    eval_tasks t = {0};
    const size_t hs_len = strlen(hs_text) - 1; /* as -f reads it */
    /* libstdc++'s picks from 12, 11, 10, 9 left: 5, 10, 7, 8 -> tasks 5, 11, 8, 10 */
    REQUIRE(eval_hellaswag_read(hs_text, hs_len, 4, &t) == HEARTH_OK);
    CHECK(t.n == 4 && t.n_total == 12 && hs_is(&t.v[0], 5) && hs_is(&t.v[1], 11) &&
          hs_is(&t.v[2], 8) && hs_is(&t.v[3], 10));
    CHECK(t.v[0].n_endings == 4 && t.v[0].gold == 1 &&
          !strcmp(t.v[0].endings[3], "says hello to the old man."));
    eval_tasks_free(&t);
    REQUIRE(eval_hellaswag_read(hs_text, hs_len, 400, &t) == HEARTH_OK);
    int seen = 0;
    for (size_t i = 0; i < t.n; i++)
        for (int k = 0; k < 12; k++) seen |= hs_is(&t.v[i], k) << k;
    CHECK(t.n == 12 && seen == 0xfff);
    eval_tasks_free(&t);
    /* 7 lines; a label out of range */
    const char *last_lines = strstr(hs_text, "Music:");
    CHECK(eval_hellaswag_read(hs_text, (size_t)(last_lines - hs_text) + 3, 10, &t) ==
              HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "a multiple of 6"));
    char *bad = strdup(hs_text);
    REQUIRE(bad);
    bad[strchr(bad, '\n') + 1 - bad] = '7';
    CHECK(eval_hellaswag_read(bad, hs_len, 10, &t) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "line 2: task 1's label is not a number from 0 to 3"));
    free(bad);
    CHECK(eval_hellaswag_read("", 0, 10, &t) == HEARTH_ERR_FORMAT);

    const size_t wg_len = strlen(wg_text) - 1;
    REQUIRE(eval_winogrande_read(wg_text, wg_len, 0, &t) == HEARTH_OK);
    CHECK(t.n == 12 && t.n_skipped == 1 && t.first_skipped == 5); /* 14 lines, the last unread */
    CHECK(!strcmp(t.v[2].context, "Tom gave Ben his ball, since ") &&
          !strcmp(t.v[2].second, " did not want to play any more.") &&
          !strcmp(t.v[2].endings[1], "Ben") && t.v[2].gold == 1);
    CHECK(!strcmp(t.v[4].endings[0], "bird") && t.v[4].gold == 2);
    eval_tasks_free(&t);
    REQUIRE(eval_winogrande_read(wg_text, wg_len + 1, 0, &t) == HEARTH_OK);
    CHECK(t.n == 13); /* with its newline the last line is read */
    eval_tasks_free(&t);
    /* llama-perplexity's picks from 12, 11, 10 left: 5, 10, 7 -> tasks 5, 10, 7 */
    REQUIRE(eval_winogrande_read(wg_text, wg_len, 3, &t) == HEARTH_OK);
    CHECK(t.n == 3 && !strcmp(t.v[0].endings[0], "Max") && !strcmp(t.v[1].endings[0], "Sue") &&
          !strcmp(t.v[2].endings[0], "sun"));
    eval_tasks_free(&t);
    CHECK(eval_winogrande_read("0,no blank here,a,b,1\n1,x,y\n", 27, 0, &t) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "no _ in the sentence"));

    build_mc();
    REQUIRE(eval_mc_read(mc_buf, mc_len, 0, &t) == HEARTH_OK);
    CHECK(t.n == N_MC && t.v[3].n_endings == 5 && t.v[2].labels[1] == 1 && t.v[2].labels[0] == 0 &&
          !strcmp(t.v[7].endings[3], "Books."));
    eval_tasks_free(&t);
    /* picks from 8, 7, 6 left: 3, 6, 4 -> tasks 3, 6, 4, read at their offsets */
    REQUIRE(eval_mc_read(mc_buf, mc_len, 3, &t) == HEARTH_OK);
    CHECK(t.n == 3 && !strcmp(t.v[0].context, mc_src[3].q) &&
          !strcmp(t.v[1].context, mc_src[6].q) && !strcmp(t.v[2].context, mc_src[4].q));
    eval_tasks_free(&t);
    CHECK(eval_mc_read(mc_buf, mc_len - 1, 0, &t) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "task 8") && strstr(hearth_last_error(), "cut short"));
    uint8_t head[8] = {0xff, 0xff, 0xff, 0x0f};
    CHECK(eval_mc_read(head, 8, 0, &t) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "cannot hold"));
    uint8_t *cp = malloc(mc_len);
    REQUIRE(cp);
    memcpy(cp, mc_buf, mc_len);
    const uint32_t far = 1u << 30;
    memcpy(cp + 4 + 4 * 3, &far, 4); /* task 4's offset */
    CHECK(eval_mc_read(cp, mc_len, 3, &t) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "past the end"));
    memcpy(cp, mc_buf, mc_len);
    uint32_t at, n_ans = 101;
    memcpy(&at, cp + 4, 4);
    memcpy(cp + at + 4 + strlen(mc_src[0].q), &n_ans, 4); /* task 1: 101 answers */
    CHECK(eval_mc_read(cp, mc_len, 0, &t) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "task 1 "));
    memcpy(cp, mc_buf, mc_len);
    const uint32_t zero = 0;
    memcpy(cp + at + 4 + strlen(mc_src[0].q) + 4, &zero, 4); /* answer 1 empty: shorter */
    CHECK(eval_mc_read(cp, mc_len, 0, &t) == HEARTH_ERR_FORMAT);
    free(cp);
    CHECK(eval_mc_read(head, 3, 0, &t) == HEARTH_ERR_FORMAT);
}

/* ---- the plain computation ------------------------------------------------ */

typedef struct ref_seq {
    int32_t ids[256];
    int n;
    double lp[256]; /* lp[j] = log p(ids[j + 1] | ids[0..j]) */
} ref_seq;

/* Tokenizes a + b + c + d and decodes it whole from an empty cache; the
 * log-probabilities in double. rows_out (when not NULL) keeps the logits. */
static void ref_decode(hearth_session *s, const hearth_model *m, const char *a, const char *b,
                       const char *c, const char *d, ref_seq *q, float **rows_out) {
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s%s", a, b, c, d);
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, text, strlen(text), true, false, q->ids, 256, &n) == HEARTH_OK);
    q->n = (int)n;
    const int nv = hearth_model_n_vocab(m);
    float *rows = malloc(n * (size_t)nv * sizeof *rows);
    REQUIRE(rows);
    REQUIRE(hearth_session_truncate(s, 0) == HEARTH_OK);
    REQUIRE(hearth_decode(s, q->ids, (int)n, rows, true) == HEARTH_OK);
    for (int j = 0; j + 1 < q->n; j++) {
        const float *r = rows + (size_t)j * nv;
        double max = r[0], z = 0;
        for (int t = 1; t < nv; t++) max = r[t] > max ? r[t] : max;
        for (int t = 0; t < nv; t++) z += exp(r[t] - max);
        q->lp[j] = r[q->ids[j + 1]] - max - log(z);
    }
    if (rows_out)
        *rows_out = rows;
    else
        free(rows);
}

static int common_prefix(const ref_seq *q, int n) {
    int cp = 0;
    for (;; cp++) {
        for (int e = 0; e < n; e++)
            if (cp >= q[e].n || q[e].ids[cp] != q[0].ids[cp]) return cp;
    }
}

/* HellaSwag and multiple choice: the first best mean log-probability of
 * the tokens after the shared prefix; the library's scores (eval_score_endings
 * on a session of its own) equal these. */
static int ref_endings(hearth_session *s, const hearth_model *m, const eval_task *t) {
    ref_seq *q = calloc((size_t)t->n_endings, sizeof *q);
    REQUIRE(q);
    for (int e = 0; e < t->n_endings; e++)
        ref_decode(s, m, t->context, " ", t->endings[e], "", &q[e], NULL);
    const int cp = common_prefix(q, t->n_endings);
    int best = 0;
    double best_v = -INFINITY;
    hearth_session *own = NULL;
    REQUIRE(hearth_session_new((hearth_model *)m, NULL, &own) == HEARTH_OK);
    eval_scorer sc;
    eval_scorer_init(&sc, own, m, 4 * 512);
    double lib[100];
    int lib_best = -1;
    for (int pass = 0; pass < 2; pass++) { /* HellaSwag's double sums, then MC's float ones */
        REQUIRE(eval_score_endings(&sc, t, pass == 1, lib, &lib_best) == HEARTH_OK);
        for (int e = 0; e < t->n_endings; e++) {
            double sum = 0;
            for (int j = cp - 1; j < q[e].n - 1; j++) sum += q[e].lp[j];
            const double v = sum / (q[e].n - cp);
            CHECKF(fabs(lib[e] - v) < 1e-5, "'%s' + '%s': %f, plain %f", t->context, t->endings[e],
                   lib[e], v);
            if (v > best_v) {
                best_v = v;
                best = e;
            }
        }
    }
    CHECK(lib_best == best);
    eval_scorer_fini(&sc);
    hearth_session_free(own);
    free(q);
    return best;
}

/* WinoGrande: the words after the choice (the whole rest when either
 * sentence has 3 tokens or fewer after the shared prefix), the last token
 * left out; where the rest is scored, the second sentence's first token
 * comes from the first sentence's last row (llama-perplexity's FIXME). */
static void ref_winogrande(hearth_session *s, const hearth_model *m, const eval_task *t,
                           double score[2], bool *quirk) {
    ref_seq q[2], base;
    float *rows0 = NULL;
    ref_decode(s, m, t->context, "", t->endings[0], t->second, &q[0], &rows0);
    ref_decode(s, m, t->context, "", t->endings[1], t->second, &q[1], NULL);
    const int cp = common_prefix(q, 2);
    const bool skip = q[0].n - cp > 3 && q[1].n - cp > 3;
    *quirk = !skip;
    const int nv = hearth_model_n_vocab(m);
    for (int e = 0; e < 2; e++) {
        int b = cp;
        if (skip) {
            size_t n = 0;
            char text[512];
            snprintf(text, sizeof text, "%s%s", t->context, t->endings[e]);
            REQUIRE(hearth_tokenize(m, text, strlen(text), true, false, base.ids, 256, &n) == 0);
            b = (int)n;
        }
        const int last = q[e].n - b > 1, count = q[e].n - b - last;
        double sum = 0;
        for (int j = b - 1; j < q[e].n - 1 - last; j++) {
            double lp = q[e].lp[j];
            if (e == 1 && !skip && j == b - 1) { /* from sequence 0's last row */
                const float *r = rows0 + (size_t)(q[0].n - 1) * nv;
                double max = r[0], z = 0;
                for (int k = 1; k < nv; k++) max = r[k] > max ? r[k] : max;
                for (int k = 0; k < nv; k++) z += exp(r[k] - max);
                lp = r[q[1].ids[j + 1]] - max - log(z);
            }
            sum += lp;
        }
        score[e] = sum / count;
    }
    free(rows0);
}

/* The model and a session of it. */
static void open_model(const char *path, hearth_model **m, hearth_session **s) {
    REQUIRE(hearth_model_load(path, NULL, m) == HEARTH_OK);
    REQUIRE(hearth_session_new(*m, NULL, s) == HEARTH_OK);
}

/* ---- the command on a model ------------------------------------------------ */

/* The running accuracies printed "N\tA..." after the header, into v. */
static int running(const char *out, double *v, int cap) {
    int n = 0;
    for (const char *p = out; p && *p && n < cap; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        int k;
        double a;
        if (sscanf(p, "%d\t%lf", &k, &a) == 2 && k == n + 1) v[n++] = a;
    }
    return n;
}

/* llama-perplexity's choices on the test's files (-fa off, -np 8 for
 * multiple choice), recorded from its output: the number right after each
 * task, and WinoGrande's choices. */
typedef struct expect {
    const char *model;
    int hs_right[12];
    int wg_choice[12];
    int mc_right[8];
    const char *wg_first; /* task 1's first score, HEARTH_EXACT=1 */
} expect;

static const expect expects[] = {
    {"stories260K/stories260K.F32.gguf",
     {0, 0, 1, 2, 3, 3, 4, 4, 4, 5, 5, 5},
     {2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2},
     {0, 0, 1, 1, 2, 3, 3, 3},
     "-11.731088"},
    {"models/tiny-llama/tiny-llama.Q8_0.gguf",
     {0, 0, 1, 2, 2, 3, 4, 5, 5, 6, 6, 7},
     {1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 1, 2},
     {0, 0, 1, 1, 1, 2, 3, 3},
     "-9.265942"},
};

static void check_hellaswag(const char *model, const expect *x) {
    CHECKF(ppl_run("", "-m %s -f %s --hellaswag -t 2", model, hs_path) == 0, "%s", err_text);
    CHECK(strstr(out_text, "\ntask\tacc_norm\t95% confidence interval\n1\t"));
    double v[16];
    REQUIRE(running(out_text, v, 16) == 12);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    open_model(model, &m, &s);
    eval_tasks t;
    REQUIRE(eval_hellaswag_read(hs_text, strlen(hs_text) - 1, 400, &t) == HEARTH_OK);
    int right = 0;
    for (int i = 0; i < 12; i++) {
        right += ref_endings(s, m, &t.v[i]) == t.v[i].gold;
        CHECKF(fabs(v[i] - 100.0 * right / (i + 1)) < 1e-6, "%s: task %d: %.8f%%, plain %d right",
               model, i + 1, v[i], right);
        CHECKF(fabs(v[i] - 100.0 * x->hs_right[i] / (i + 1)) < 1e-6,
               "%s: task %d: %.8f%%, llama-perplexity %d right", model, i + 1, v[i],
               x->hs_right[i]);
    }
    /* the last line's Wilson interval at 95%, in its textbook form */
    const double n = 12, p = right / n, z = 1.95996398454;
    const double mid = (p + z * z / (2 * n)) / (1 + z * z / n);
    const double half = z / (1 + z * z / n) * sqrt(p * (1 - p) / n + z * z / (4 * n * n));
    char want[64];
    snprintf(want, sizeof want, "[%.4f%%, %.4f%%]", 100 * (mid - half), 100 * (mid + half));
    CHECKF(strstr(out_text, want), "%s: no %s", model, want);
    snprintf(want, sizeof want, "Final HellaSwag score(12 tasks): %.4f +/- %.4f", 100 * p,
             100 * sqrt(p * (1 - p) / 11));
    CHECKF(strstr(out_text, want), "%s: no '%s' in %s", model, want, out_text);
    /* --hellaswag-tasks 5: the first five of the same order; -t 1 prints the same */
    char *all = strdup(out_text);
    REQUIRE(all);
    CHECK(ppl_run("", "-m %s -f %s --hellaswag -t 1", model, hs_path) == 0 &&
          !strcmp(all, out_text));
    CHECK(ppl_run("", "-m %s -f %s --hellaswag --hellaswag-tasks 5", model, hs_path) == 0 &&
          running(out_text, v, 16) == 5 && fabs(v[4] - 100.0 * x->hs_right[4] / 5) < 1e-6);
    free(all);
    eval_tasks_free(&t);
    hearth_session_free(s);
    hearth_model_free(m);
}

static void check_winogrande(const char *model, const expect *x) {
    CHECKF(ppl_run("", "-m %s -f %s --winogrande -t 2", model, wg_path) == 0, "%s", err_text);
    CHECK(strstr(err_text, "1 lines skipped") && strstr(err_text, "line 5"));
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    open_model(model, &m, &s);
    eval_tasks t;
    REQUIRE(eval_winogrande_read(wg_text, strlen(wg_text) - 1, 0, &t) == HEARTH_OK);
    int right = 0, n_quirk = 0;
    const char *p = out_text;
    for (int i = 0; i < 12; i++) {
        int k, choice, answer;
        double acc;
        float s1, s2;
        REQUIRE(p && sscanf(p, "%d\t%lf\t%f %f %d %d", &k, &acc, &s1, &s2, &choice, &answer) == 6);
        double ref[2];
        bool quirk;
        ref_winogrande(s, m, &t.v[i], ref, &quirk);
        n_quirk += quirk;
        right += choice == answer;
        CHECKF(k == i + 1 && answer == t.v[i].gold && fabs(acc - 100.0 * right / (i + 1)) < 1e-4,
               "%s: line %d", model, i + 1);
        CHECKF(fabs(s1 - ref[0]) < 2e-4 && fabs(s2 - ref[1]) < 2e-4,
               "%s: task %d: %f %f, plain %f %f", model, i + 1, s1, s2, ref[0], ref[1]);
        CHECKF(choice == x->wg_choice[i], "%s: task %d: choice %d, llama-perplexity's %d", model,
               i + 1, choice, x->wg_choice[i]);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    CHECK(n_quirk >= 1);               /* the file has sentences that end right after the blank */
    CHECK(!strstr(out_text, "Final")); /* under 100 tasks, as llama-perplexity */
    char *all = strdup(out_text);
    REQUIRE(all);
    CHECK(ppl_run("", "-m %s -f %s --winogrande -t 1", model, wg_path) == 0 &&
          !strcmp(all, out_text));
    free(all);
    /* exact mode: the first task's first score is llama-perplexity -fa off's, digit for digit */
    CHECK(ppl_run("HEARTH_EXACT=1", "-m %s -f %s --winogrande --winogrande-tasks 0", model,
                  wg_path) == 0);
    CHECKF(strstr(out_text, x->wg_first) == strchr(out_text, '-'), "%s: %s", model, out_text);
    eval_tasks_free(&t);
    hearth_session_free(s);
    hearth_model_free(m);
}

static void check_mc(const char *model, const expect *x) {
    CHECKF(ppl_run("", "-m %s -bf %s --multiple-choice -t 2", model, mc_path) == 0, "%s", err_text);
    CHECK(strstr(out_text, "\ntask\tacc_norm\n1\t"));
    double v[16];
    REQUIRE(running(out_text, v, 16) == N_MC);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    open_model(model, &m, &s);
    eval_tasks t;
    REQUIRE(eval_mc_read(mc_buf, mc_len, 0, &t) == HEARTH_OK);
    int right = 0, n_answers = 0;
    for (int i = 0; i < N_MC; i++) {
        right += ref_endings(s, m, &t.v[i]) == mc_src[i].right;
        n_answers += mc_src[i].n;
        CHECKF(fabs(v[i] - 100.0 * right / (i + 1)) < 1e-6, "%s: task %d", model, i + 1);
        CHECKF(fabs(v[i] - 100.0 * x->mc_right[i] / (i + 1)) < 1e-6,
               "%s: task %d: %.8f, llama-perplexity %d right", model, i + 1, v[i], x->mc_right[i]);
    }
    char want[96];
    const double p = right / 8.0, r = 8.0 / n_answers;
    snprintf(want, sizeof want, "Final result: %.4f +/- %.4f\nRandom chance: %.4f +/- %.4f\n",
             100 * p, 100 * sqrt(p * (1 - p) / 7), 100 * r, 100 * sqrt(r * (1 - r) / 7));
    CHECKF(strstr(out_text, want), "%s: no '%s' in %s", model, want, out_text);
    eval_tasks_free(&t);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* *acc (malloc'd) with out_text appended. */
static void append_out(char **acc) {
    const size_t have = *acc ? strlen(*acc) : 0;
    char *grown = realloc(*acc, have + strlen(out_text) + 1);
    REQUIRE(grown);
    memcpy(grown + have, out_text, strlen(out_text) + 1);
    *acc = grown;
}

/* The perplexity run's per-row scoring on the model's threads: stdout and
 * the base file are the same on 1 and 2 threads (the rows summed in order). */
static void check_threads(const char *model) {
    char *out[2] = {NULL, NULL}, path[2][160];
    for (int t = 0; t < 2; t++) {
        snprintf(path[t], sizeof path[t], "%s/base%d.kld", dir, t);
        CHECKF(ppl_run("", "-m %s -f %s -c 128 -t %d --kl-divergence-base %s", model, hs_path,
                       t + 1, path[t]) == 0 &&
                   strstr(out_text, "Final estimate"),
               "%s", err_text);
        append_out(&out[t]);
        CHECK(ppl_run("", "-m %s -t %d --kl-divergence-base %s --kl-divergence", model, t + 1,
                      path[0]) == 0 &&
              strstr(out_text, "Mean    KLD"));
        append_out(&out[t]);
        /* six windows of 256 tokens: enough for the threads to split rows */
        CHECK(ppl_run("", "-m %s -f %s -c 64 --ppl-stride 32 --chunks 6 -t %d", model, hs_path,
                      t + 1) == 0 &&
              strstr(out_text, "[6]") && !strstr(out_text, "[7]"));
        append_out(&out[t]);
    }
    CHECKF(!strcmp(out[0], out[1]), "-t 1:\n%s\n-t 2:\n%s", out[0], out[1]);
    CHECK(test_sh("cmp -s %s %s", path[0], path[1]) == 0);
    free(out[0]);
    free(out[1]);
}

/* `hearth perplexity ARGS` exits with rc and says msg on stderr. */
__attribute__((format(printf, 3, 4))) static void fails(int rc, const char *msg, const char *fmt,
                                                        ...) {
    va_list ap;
    va_start(ap, fmt);
    const int got = vppl_run("", fmt, ap);
    va_end(ap);
    CHECKF(got == rc && strstr(err_text, msg), "%s: exit %d, wanted %d and '%s': %s", last_args,
           got, rc, msg, err_text);
}

static void check_errors(const char *model) {
    char path[160];
    fails(1, "none.txt", "-m %s -f %s/none.txt --hellaswag", model, dir);
    snprintf(path, sizeof path, "%s/seven.txt", dir);
    write_file(path, hs_text, (size_t)(strstr(hs_text, "Swimming:") - hs_text) + 2);
    fails(1, "is not a HellaSwag task file: 7 lines", "-m %s -f %s --hellaswag", model, path);
    fails(1, "not a WinoGrande task file: no WinoGrande task", "-m %s -f %s --winogrande", model,
          hs_path);
    fails(1, "not a multiple choice task file", "-m %s -bf %s --multiple-choice", model, hs_path);
    /* -c 8: a task may hold 32 tokens */
    fails(1, "does not fit in the context window", "-m %s -f %s --hellaswag -c 8", model, hs_path);
    CHECK(ppl_run("", "-m %s -f %s --hellaswag -c 8 -np 16", model, hs_path) == 0);
    /* two endings alike add nothing the others lack */
    snprintf(path, sizeof path, "%s/same.txt", dir);
    const char same[] = "A: b\n0\nsame end.\nsame end.\nsame end.\nsame end.\n";
    write_file(path, same, sizeof same - 1);
    fails(1, "task 1 of 1: a candidate adds no token", "-m %s -f %s --hellaswag", model, path);
    fails(2, "one benchmark at a time", "-m %s -f %s --hellaswag --winogrande", model, hs_path);
    fails(2, "a benchmark has no KL divergence", "-m %s -f %s --hellaswag --kl-divergence-base x",
          model, hs_path);
    fails(2, "--hellaswag-tasks wants a whole number",
          "-m %s -f %s --hellaswag --hellaswag-tasks -1", model, hs_path);
}

int main(void) {
    check_rng();
    check_readers();
    snprintf(dir, sizeof dir, "/tmp/hearth-ppl-tasks-XXXXXX");
    REQUIRE(mkdtemp(dir));
    snprintf(hs_path, sizeof hs_path, "%s/hs.txt", dir);
    snprintf(wg_path, sizeof wg_path, "%s/wg.csv", dir);
    snprintf(mc_path, sizeof mc_path, "%s/mc.bin", dir);
    write_file(hs_path, hs_text, strlen(hs_text));
    write_file(wg_path, wg_text, strlen(wg_text));
    write_file(mc_path, mc_buf, mc_len);
    char model[512];
    snprintf(model, sizeof model, "%s/conformance/%s", HEARTH_SHARED_DIR, expects[0].model);
    const bool have = access(model, R_OK) == 0;
    if (!have)
        fprintf(stderr,
                "test_perplexity_tasks: %s absent (../shared/conformance): skipping the "
                "models, after the readers' checks\n",
                model);
    for (size_t i = 0; have && i < sizeof expects / sizeof expects[0]; i++) {
        snprintf(model, sizeof model, "%s/conformance/%s", HEARTH_SHARED_DIR, expects[i].model);
        check_hellaswag(model, &expects[i]);
        check_winogrande(model, &expects[i]);
        check_mc(model, &expects[i]);
    }
    if (have) {
        snprintf(model, sizeof model, "%s/conformance/%s", HEARTH_SHARED_DIR, expects[0].model);
        check_errors(model);
        check_threads(model);
    }
    test_sh("rm -rf %s", dir);
    free(out_text);
    free(err_text);
    if (!have && !test_failures) return TEST_SKIP;
    return test_done("test_perplexity_tasks");
}
