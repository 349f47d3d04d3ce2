/*
 * test_router.c - the learned pre-router (src/gateway/router*.c): the CSV and
 * JSONL readers on tricky and broken input, RouteLLM's metrics on a tiny
 * example computed by hand, calibration, training on a synthetic set where a
 * keyword decides the label, the file format's round trip and its rejection
 * of damaged files, the `hearth router` commands end to end, and (when
 * ../shared/data is present) a quick train + eval on RouteLLM's MMLU outcomes.
 */
#include "gateway/gateway.h"
#include "gateway/router.h"
#include "test.h"

#include <glob.h>
#include <stdint.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/hearth_router_XXXXXX";

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmp_dir, name);
    return p;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(text, 1, strlen(text), f) == strlen(text));
    REQUIRE(fclose(f) == 0);
}

static bool has(const char *haystack, const char *needle) { return strstr(haystack, needle); }

/* ------------------------------------------------------------------- CSV */

/* Reads all records of `text`; returns the number, or -1 on error. Fields of
 * record r are joined with '|' into out[r]. */
static int csv_all(const char *text, char out[][128], int cap) {
    rtr_csv c;
    bool got;
    int n = 0;
    rtr_csv_init(&c, text, strlen(text));
    for (;;) {
        if (rtr_csv_next(&c, &got)) {
            n = -1;
            break;
        }
        if (!got) break;
        if (n < cap) {
            out[n][0] = '\0';
            for (size_t i = 0; i < c.n_fields; i++) {
                if (i) strcat(out[n], "|");
                strcat(out[n], rtr_csv_field(&c, i, NULL));
            }
        }
        n++;
    }
    rtr_csv_fini(&c);
    return n;
}

static void test_csv(void) {
    char r[8][128];
    CHECK(csv_all("a,b,c\n1,2,3\n", r, 8) == 2);
    CHECK(!strcmp(r[0], "a|b|c") && !strcmp(r[1], "1|2|3"));
    /* quoted commas, a line break inside quotes, doubled quotes, CRLF */
    CHECK(csv_all("\"x, y\",\"line1\nline2\",\"say \"\"hi\"\"\"\r\nlast,,\"\"", r, 8) == 2);
    CHECK(!strcmp(r[0], "x, y|line1\nline2|say \"hi\""));
    CHECK(!strcmp(r[1], "last||"));
    CHECK(csv_all("\xEF\xBB\xBFprompt,w\n", r, 8) == 1 && !strcmp(r[0], "prompt|w"));
    CHECK(csv_all("no newline at end", r, 8) == 1 && !strcmp(r[0], "no newline at end"));
    CHECK(csv_all("", r, 8) == 0);

    /* the line counter follows quoted line breaks */
    rtr_csv c;
    bool got;
    const char *t = "\"a\nb\nc\",1\nx,2\n";
    rtr_csv_init(&c, t, strlen(t));
    CHECK(!rtr_csv_next(&c, &got) && got && c.line == 4);
    size_t len;
    CHECK(!strcmp(rtr_csv_field(&c, 0, &len), "a\nb\nc") && len == 5);
    CHECK(rtr_csv_field(&c, 2, NULL) == NULL);
    rtr_csv_fini(&c);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"a,\"unterminated\n", "not closed"},
        {"ok\n\"abc\"x,1\n", "line 2: text after a closing quote"},
        {"ab\"c,1\n", "quote inside an unquoted field"},
        {"a\rb\n", "bare carriage return"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(csv_all(bad[i].text, r, 8) == -1);
        CHECKF(has(hearth_last_error(), bad[i].msg), "%s", hearth_last_error());
    }
}

/* ------------------------------------------------------------- datasets */

static void test_load(void) {
    rtr_dataset d;
    rtr_dataset_init(&d);
    /* RouteLLM's GSM8K layout: extra columns with commas, quotes, newlines */
    const char *csv_path = tmp_path("mmlu_toy.csv");
    write_file(csv_path, "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview,resp\n"
                         "\"What is 2+2?\nA. 3\nB. 4\",True,True,\"It is \"\"4\"\", clearly\"\n"
                         "\"Hard, very hard\",False,True,x\n"
                         "\n"
                         "plain,false,FALSE,y\n");
    CHECK(!rtr_dataset_load(&d, csv_path, NULL));
    REQUIRE(d.n == 3);
    CHECK(!strcmp(d.ex[0].prompt, "What is 2+2?\nA. 3\nB. 4") && d.ex[0].weak_ok &&
          d.ex[0].strong_ok);
    CHECK(!strcmp(d.ex[1].prompt, "Hard, very hard") && !d.ex[1].weak_ok && d.ex[1].strong_ok);
    CHECK(!d.ex[2].weak_ok && !d.ex[2].strong_ok && d.ex[2].labeled);
    CHECK(!strcmp(d.groups[d.ex[0].group], "mmlu_toy"));
    CHECK(!strcmp(d.ex[1].id, "2"));

    /* column names from options; broken rows name their line */
    const char *p2 = tmp_path("named.csv");
    write_file(p2, "text,cheap,dear\nhello,1,0\n");
    rtr_load_opts o = {
        .prompt_col = "text", .weak_col = "cheap", .strong_col = "dear", .require_labels = true};
    CHECK(!rtr_dataset_load(&d, p2, &o) && d.n == 4 && d.ex[3].weak_ok && !d.ex[3].strong_ok);
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"prompt,weak_ok,strong_ok\na,True,True\nb,True\n", "line 3: 2 fields, the header has 3"},
        {"prompt,weak_ok,strong_ok\na,yes,True\n", "line 2: 'weak_ok' or 'strong_ok' is not"},
        {"prompt,weak_ok\na,True\n", "no column named 'gpt-4-1106-preview'"},
        {"question,weak_ok,strong_ok\n", "no column named 'prompt'"},
        {"prompt,weak_ok,strong_ok\n\"a,True,True\n", "not closed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = tmp_path("bad.csv");
        write_file(p, bad[i].text);
        size_t before = d.n;
        CHECK(rtr_dataset_load(&d, p, NULL) == HEARTH_ERR_FORMAT);
        CHECKF(has(hearth_last_error(), bad[i].msg) && has(hearth_last_error(), "bad.csv"), "%s",
               hearth_last_error());
        CHECK(d.n == before); /* all of a file or none of it */
    }

    /* JSONL: ids kept as JSON, blank lines skipped, numbers 0/1 as flags */
    const char *jp = tmp_path("set.jsonl");
    write_file(jp, "{\"id\":\"q-1\",\"prompt\":\"say \\\"hi\\\"\\nnow\",\"weak_ok\":true,"
                   "\"strong_ok\":false,\"group\":\"g1\"}\n"
                   "\n"
                   "{\"prompt\":\"second\",\"weak_ok\":0,\"strong_ok\":1,\"id\":17}\r\n"
                   "{\"prompt\":\"third\",\"weak_ok\":false,\"strong_ok\":true}");
    size_t base = d.n;
    CHECK(!rtr_dataset_load(&d, jp, NULL));
    REQUIRE(d.n == base + 3);
    CHECK(!strcmp(d.ex[base].id, "\"q-1\"") && !strcmp(d.ex[base].prompt, "say \"hi\"\nnow"));
    CHECK(d.ex[base].weak_ok && !d.ex[base].strong_ok);
    CHECK(!strcmp(d.groups[d.ex[base].group], "g1"));
    CHECK(!strcmp(d.ex[base + 1].id, "17") && d.ex[base + 1].strong_ok);
    CHECK(!strcmp(d.ex[base + 2].id, "4")); /* no id: its line number */
    static const struct {
        const char *text, *msg;
    } jbad[] = {
        {"{\"prompt\":\"a\",\"weak_ok\":true,\"strong_ok\":true}\n{\"prompt\":", "line 2: not a"},
        {"{\"weak_ok\":true,\"strong_ok\":true}\n", "line 1: no string field \"prompt\""},
        {"{\"prompt\":\"a\",\"weak_ok\":\"yes\",\"strong_ok\":true}\n", "must be true or false"},
        {"{\"prompt\":\"a\",\"weak_ok\":true}\n", "missing \"strong_ok\""},
        {"{\"prompt\":\"a\",\"weak_ok\":true,\"strong_ok\":true} x\n", "text after the JSON"},
        {"[1,2]\n", "not a JSON object"},
        {"{\"prompt\":\"a\",\"id\":[1],\"weak_ok\":true,\"strong_ok\":true}\n", "\"id\" must be"},
    };
    for (size_t i = 0; i < sizeof jbad / sizeof jbad[0]; i++) {
        const char *p = tmp_path("bad.jsonl");
        write_file(p, jbad[i].text);
        size_t before = d.n;
        CHECK(rtr_dataset_load(&d, p, NULL) == HEARTH_ERR_FORMAT);
        CHECKF(has(hearth_last_error(), jbad[i].msg), "%s", hearth_last_error());
        CHECK(d.n == before);
    }
    /* unlabeled input is fine for scoring */
    const char *up = tmp_path("unlabeled.jsonl");
    write_file(up, "{\"prompt\":\"a\"}\n");
    rtr_load_opts ol = {.require_labels = false};
    CHECK(!rtr_dataset_load(&d, up, &ol) && !d.ex[d.n - 1].labeled);

    /* decontamination matches modulo whitespace */
    const char *cp = tmp_path("contaminated.jsonl");
    write_file(cp, "{\"train_prompt\":\"x\",\"eval_prompt\":\"Hard,   very\\nhard \"}\n");
    size_t removed = 0, n0 = d.n;
    CHECK(!rtr_dataset_decontaminate(&d, cp, &removed) && removed == 1 && d.n == n0 - 1);
    for (size_t i = 0; i < d.n; i++) CHECK(strcmp(d.ex[i].prompt, "Hard, very hard"));
    rtr_dataset_fini(&d);

    /* the hash split: deterministic, blind to spacing, about pct percent */
    CHECK(rtr_split_pick("s", "a  b\n", 5, 50) == rtr_split_pick("s", "a b", 3, 50));
    int in = 0;
    char text[64];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(text, sizeof text, "prompt number %d", i);
        in += rtr_split_pick("salt", text, (size_t)n, 20);
        CHECK(rtr_split_pick("salt", text, (size_t)n, 20) <=
              rtr_split_pick("salt", text, (size_t)n, 21));
    }
    CHECKF(in > 1800 && in < 2200, "%d of 10000 picked at 20 %%", in);
}

/* -------------------------------------------------------------- metrics */

static bool near(double a, double b) { return fabs(a - b) < 1e-9; }

static void test_metrics(void) {
    /* q1, q2: only the strong tier right; q3: both; q4: only the weak one.
     * weak quality 0.5, strong 0.75, gap 0.25. Sending q1, q2, q3, q4 in that
     * order gives PGR 0, 1, 2, 2, 1 at shares 0, .25, .5, .75, 1. */
    bool w[4] = {false, false, true, true}, s[4] = {true, true, true, false};
    double perfect[4] = {4, 3, 2, 1}, reverse[4] = {1, 2, 3, 4}, ties[4] = {7, 7, 7, 7};
    rtr_metrics m;
    REQUIRE(!rtr_metrics_compute(perfect, w, s, 4, &m));
    CHECK(near(m.weak_quality, 0.5) && near(m.strong_quality, 0.75));
    CHECKF(near(m.apgr, 1.375), "%g", m.apgr); /* .25 * (.5 + 1.5 + 2 + 1.5) */
    CHECK(near(m.apgr_routellm, 1.375));
    CHECK(near(m.cpt50, 0.125) && near(m.cpt80, 0.2));
    CHECK(near(m.local_at_95, 1 - 0.2125)); /* PGR (0.95 * .75 - .5) / .25 = .85 */
    CHECK(near(m.pgr_at[0], 0) && near(m.pgr_at[10], 1) && near(m.pgr_at[5], 2));
    CHECK(near(m.pgr_at[1], 0.4));
    rtr_metrics o;
    CHECK(!rtr_metrics_oracle(w, s, 4, &o) && near(o.apgr, m.apgr));

    REQUIRE(!rtr_metrics_compute(reverse, w, s, 4, &m));
    CHECKF(near(m.apgr, -0.375), "%g", m.apgr);
    CHECK(near(m.cpt50, 0.875) && near(m.cpt80, 0.95));

    /* one tie group: the straight line of a random router */
    REQUIRE(!rtr_metrics_compute(ties, w, s, 4, &m));
    CHECK(near(m.apgr, 0.5) && near(m.cpt50, 0.5) && near(m.cpt80, 0.8));

    rtr_metrics r;
    rtr_metrics_random(w, s, 4, &r);
    CHECK(near(r.apgr, 0.5) && near(r.cpt50, 0.5) && near(r.local_at_95, 1 - 0.85));

    /* a strong tier no better than the weak one has no PGR */
    bool same[4] = {true, true, false, false};
    CHECK(rtr_metrics_compute(perfect, same, same, 4, &m) == HEARTH_ERR_INVALID_ARG);

    /* scores unrelated to the outcomes: APGR near 0.5 */
    enum { N = 20000 };
    static double sc[N];
    static bool ww[N], ss[N];
    unsigned long long seed = 42;
    for (int i = 0; i < N; i++) {
        ww[i] = test_rand_u64(&seed) % 100 < 68;
        ss[i] = test_rand_u64(&seed) % 100 < 80;
        sc[i] = test_rand_f(&seed);
    }
    REQUIRE(!rtr_metrics_compute(sc, ww, ss, N, &m));
    CHECKF(fabs(m.apgr - 0.5) < 0.04, "random-order APGR %g", m.apgr);
    CHECKF(fabs(m.apgr_routellm - 0.5) < 0.04, "%g", m.apgr_routellm);
    CHECKF(fabs(m.cpt50 - 0.5) < 0.08, "random-order CPT(50%%) %g", m.cpt50);
}

static void test_calibrate(void) {
    double s[10], t, got;
    for (int i = 0; i < 10; i++) s[i] = (i + 1) / 10.0;
    REQUIRE(!rtr_calibrate(s, 10, 0.8, &t, &got));
    CHECK(near(got, 0.8) && t > 0.8 && t <= 0.9);
    REQUIRE(!rtr_calibrate(s, 10, 1.0, &t, &got));
    CHECK(near(got, 1.0) && t > 1.0);
    REQUIRE(!rtr_calibrate(s, 10, 0.0, &t, &got));
    CHECK(near(got, 0.0) && t <= 0.1);
    /* a tie across the cut: the whole group goes one way */
    double tie[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    REQUIRE(!rtr_calibrate(tie, 10, 0.8, &t, &got));
    int local = 0;
    for (int i = 0; i < 10; i++) local += tie[i] < t;
    CHECK(near(got, local / 10.0) && (near(got, 0.6) || near(got, 1.0)));
    CHECK(rtr_calibrate(s, 10, 1.5, &t, &got) == HEARTH_ERR_INVALID_ARG);
}

/* ---------------------------------------------------- training and files */

static const char *const filler[] = {"the",   "report",  "about",  "weather", "market", "river",
                                     "quick", "summary", "please", "write",   "table",  "list"};

/* Synthetic prompts: the keyword "zorblax" means only the strong tier
 * answers; otherwise both do. */
static void synth(rtr_dataset *d, int n, unsigned long long seed) {
    char text[256];
    for (int i = 0; i < n; i++) {
        bool hard = i % 2;
        int k = 0;
        for (int j = 0; j < 8; j++) {
            k += snprintf(text + k, sizeof text - (size_t)k, "%s ",
                          filler[test_rand_u64(&seed) % (sizeof filler / sizeof filler[0])]);
            if (j == 3 && hard) k += snprintf(text + k, sizeof text - (size_t)k, "zorblax ");
        }
        REQUIRE(!rtr_dataset_add(d, text, (size_t)k, !hard, true, NULL, "synthetic"));
    }
}

static rtr_train_params small_params(void) {
    rtr_train_params p = rtr_train_default_params();
    p.hash_bits = 16;
    p.max_iter = 100;
    p.n_threads = 2;
    return p;
}

static rtr_model *train_synthetic(void) {
    rtr_dataset d;
    rtr_dataset_init(&d);
    synth(&d, 200, 1);
    rtr_train_params p = small_params();
    rtr_model *m = NULL;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    rtr_dataset_fini(&d);
    return m;
}

static void test_train(rtr_model *m) {
    rtr_dataset t;
    rtr_dataset_init(&t);
    synth(&t, 100, 99); /* unseen filler orders */
    double lo_hard = 1e9, hi_easy = -1e9;
    for (size_t i = 0; i < t.n; i++) {
        double s;
        REQUIRE(!rtr_score(m, t.ex[i].prompt, t.ex[i].prompt_len, &s));
        CHECK(isfinite(s) && s >= -1 && s <= 1);
        if (t.ex[i].weak_ok)
            hi_easy = fmax(hi_easy, s);
        else
            lo_hard = fmin(lo_hard, s);
    }
    CHECKF(lo_hard > hi_easy + 0.3, "keyword prompts %g vs others %g", lo_hard, hi_easy);
    rtr_dataset_fini(&t);
    /* scoring the same text twice, or an empty one, works */
    double a, b;
    CHECK(!rtr_score(m, "", 0, &a) && isfinite(a));
    CHECK(!rtr_score(m, "zorblax", 7, &a) && !rtr_score(m, "zorblax", 7, &b) && a == b);
    CHECK(isinf(rtr_threshold(m)) && isnan(rtr_calibrated_local_share(m)));

    /* the fit does not depend on the thread count */
    rtr_dataset d1;
    rtr_dataset_init(&d1);
    synth(&d1, 200, 1);
    uint8_t *b1 = NULL, *b3 = NULL;
    size_t n1 = 0, n3 = 0;
    rtr_model *m1 = NULL, *m3 = NULL;
    rtr_train_params p1 = small_params(), p3 = small_params();
    p1.n_threads = 1, p3.n_threads = 3;
    REQUIRE(!rtr_train(&d1, NULL, 0, &p1, &m1) && !rtr_train(&d1, NULL, 0, &p3, &m3));
    REQUIRE(!rtr_save_mem(m1, &b1, &n1) && !rtr_save_mem(m3, &b3, &n3));
    CHECK(n1 == n3 && !memcmp(b1, b3, n1));
    free(b1), free(b3);
    rtr_free(m1), rtr_free(m3);
    rtr_dataset_fini(&d1);

    /* parameters are checked */
    rtr_dataset d;
    rtr_dataset_init(&d);
    synth(&d, 10, 3);
    rtr_train_params p = small_params();
    rtr_model *bad = NULL;
    p.hash_bits = 30;
    CHECK(rtr_train(&d, NULL, 0, &p, &bad) == HEARTH_ERR_INVALID_ARG && !bad);
    p = small_params();
    p.char_min = 5, p.char_max = 3;
    CHECK(rtr_train(&d, NULL, 0, &p, &bad) == HEARTH_ERR_INVALID_ARG && !bad);
    rtr_dataset_fini(&d);
}

static uint32_t fnv32(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Rewrites the trailing checksum after an edit (docs/router.md's format). */
static void reseal(uint8_t *b, size_t n) {
    uint32_t h = fnv32(b, n - 4);
    for (int i = 0; i < 4; i++) b[n - 4 + (size_t)i] = (uint8_t)(h >> (8 * i));
}

static void put32(uint8_t *b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++) b[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void test_file(rtr_model *m) {
    const char *probe[] = {"zorblax report", "the weather", "", "A. 1\nB. 2\nC. 3\nD. 4"};
    rtr_set_threshold(m, 0.25, 0.8);
    uint8_t *data;
    size_t size;
    REQUIRE(!rtr_save_mem(m, &data, &size));
    rtr_model *m2 = NULL;
    REQUIRE(!rtr_load_mem(data, size, &m2));
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        double a, b;
        CHECK(!rtr_score(m, probe[i], strlen(probe[i]), &a));
        CHECK(!rtr_score(m2, probe[i], strlen(probe[i]), &b));
        CHECK(a == b);
    }
    CHECK(rtr_threshold(m2) == 0.25 && rtr_calibrated_local_share(m2) == 0.8);
    rtr_free(m2);
    /* through a file */
    const char *path = tmp_path("toy.rtr");
    REQUIRE(!rtr_save(m, path));
    m2 = NULL;
    REQUIRE(!rtr_load(path, &m2));
    char d1[512], d2[512];
    rtr_describe(m, d1, sizeof d1);
    rtr_describe(m2, d2, sizeof d2);
    CHECK(!strcmp(d1, d2));
    rtr_free(m2);

    /* every truncation fails cleanly */
    for (size_t n = 0; n < size; n += (n < 400 ? 1 : 997)) {
        m2 = NULL;
        CHECK(rtr_load_mem(data, n, &m2) == HEARTH_ERR_FORMAT && !m2);
    }
    uint8_t *b = malloc(size);
    REQUIRE(b);
    /* a flipped byte anywhere is caught by the checksum */
    memcpy(b, data, size);
    b[size / 2] ^= 0x40;
    CHECK(rtr_load_mem(b, size, &m2) == HEARTH_ERR_FORMAT);
    CHECKF(has(hearth_last_error(), "checksum"), "%s", hearth_last_error());
    memcpy(b, data, size);
    b[0] = 'X';
    CHECK(rtr_load_mem(b, size, &m2) == HEARTH_ERR_FORMAT && has(hearth_last_error(), "magic"));
    /* edits with a valid checksum are caught by the checks themselves */
    enum { OFF_VERSION = 8, OFF_BITS = 12, OFF_HEADS = 36, OFF_HEAD0 = 188 };
    /* head: label, coef, smooth, bias, 16 dense weights, layout, count */
    enum { OFF_LAYOUT = OFF_HEAD0 + 16 + 4 * 16, OFF_NSPARSE = OFF_LAYOUT + 4 };
    static const struct {
        size_t off;
        uint32_t v;
        const char *msg;
    } edits[] = {
        {OFF_VERSION, 99, "version 99"},
        {OFF_BITS, 40, "hash_bits 40"},
        {OFF_HEADS, 9, "9 heads"},
        {OFF_HEAD0, 7, "bad label"},
        {OFF_LAYOUT, 7, "bad weight layout"},
        {OFF_LAYOUT, 1, "a table of 65536 weights needs"},
        {OFF_NSPARSE, 0xFFFFFFF0u, "weights"},
        {OFF_NSPARSE, 0, "router file: "}, /* the rest no longer parses */
        {OFF_NSPARSE + 4, 0xFFFFFFFFu, "out of order or range"},
        {OFF_HEAD0 + 4, 0x7fc00000u, "not finite"},              /* a NaN coefficient */
        {OFF_HEAD0 + 4, 0x7149f2cau, "too big"},                 /* 1e30 */
        {OFF_NSPARSE + 8, 0x80000000u, "out of order or range"}, /* an index past the buckets */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, data, size);
        put32(b, edits[i].off, edits[i].v);
        reseal(b, size);
        m2 = NULL;
        CHECK(rtr_load_mem(b, size, &m2) == HEARTH_ERR_FORMAT && !m2);
        CHECKF(has(hearth_last_error(), edits[i].msg), "edit %zu: %s", i, hearth_last_error());
    }
    free(b);
    free(data);
    /* a small hash space fills up: the file holds the whole table instead */
    rtr_dataset d;
    rtr_dataset_init(&d);
    unsigned long long seed = 7;
    for (int i = 0; i < 200; i++) { /* random words: many distinct n-grams */
        char text[128];
        for (int j = 0; j < 100; j++)
            text[j] = j % 6 == 5 ? ' ' : (char)('a' + test_rand_u64(&seed) % 26);
        REQUIRE(!rtr_dataset_add(&d, text, 100, i % 2, true, NULL, NULL));
    }
    rtr_train_params p = small_params();
    p.hash_bits = 12;
    rtr_model *t = NULL;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &t));
    REQUIRE(!rtr_save_mem(t, &data, &size));
    CHECKF(size > 2 * 4096 * 4, "%zu bytes", size); /* two heads' tables */
    REQUIRE(!rtr_load_mem(data, size, &m2));
    for (size_t i = 0; i < d.n; i += 7) {
        double a, c;
        CHECK(!rtr_score(t, d.ex[i].prompt, d.ex[i].prompt_len, &a));
        CHECK(!rtr_score(m2, d.ex[i].prompt, d.ex[i].prompt_len, &c) && a == c);
    }
    rtr_free(m2);
    for (size_t n = size - 1; n > size - 70000 && n < size; n -= 4099) {
        m2 = NULL;
        CHECK(rtr_load_mem(data, n, &m2) == HEARTH_ERR_FORMAT && !m2);
    }
    free(data);
    rtr_free(t);
    rtr_dataset_fini(&d);

    const char *empty = tmp_path("empty.rtr");
    write_file(empty, "");
    CHECK(rtr_load(empty, &m2) != HEARTH_OK);
    CHECK(rtr_load(tmp_path("missing.rtr"), &m2) == HEARTH_ERR_IO);
}

/* A file data[size] with bytes after its last part, and with the header of
 * the older version `older` over its body: both refused. */
static void check_extra_bytes(const uint8_t *data, size_t size, uint32_t older) {
    rtr_model *m = NULL;
    uint8_t *b = malloc(size + 4);
    REQUIRE(b);
    memcpy(b, data, size - 4);
    put32(b, size - 4, 0);
    put32(b, size, 0);
    reseal(b, size + 4);
    CHECK(rtr_load_mem(b, size + 4, &m) == HEARTH_ERR_FORMAT && has(hearth_last_error(), "after"));
    memcpy(b, data, size);
    put32(b, 8, older);
    reseal(b, size);
    CHECK(rtr_load_mem(b, size, &m) == HEARTH_ERR_FORMAT && has(hearth_last_error(), "after"));
    CHECK(!m);
    free(b);
}

/* ------------------------------------------------------- the subject part */

/* Three groups: two "mmlu" subjects told apart by their words (mmlu_astro:
 * only the strong tier right, gain +1; mmlu_cook: both right, gain 0) and a
 * benchmark of one group (gsm_word) where the keyword "zorblax" marks the
 * prompts only the strong tier answers. */
static void synth_subjects(rtr_dataset *d, int n, unsigned long long seed) {
    static const char *const astro[] = {"planet", "orbit", "comet", "stellar", "galaxy"};
    static const char *const cook[] = {"recipe", "oven", "flour", "simmer", "butter"};
    char text[256];
    for (int i = 0; i < n; i++) {
        int g = i % 3, k = 0;
        bool hard = g == 2 && (i / 3) % 2;
        for (int j = 0; j < 8; j++) {
            const char *w = filler[test_rand_u64(&seed) % (sizeof filler / sizeof filler[0])];
            if (j % 2 == 0 && g < 2) w = (g ? cook : astro)[test_rand_u64(&seed) % 5];
            k += snprintf(text + k, sizeof text - (size_t)k, "%s ", w);
            if (j == 3 && hard) k += snprintf(text + k, sizeof text - (size_t)k, "zorblax ");
        }
        static const char *const gname[] = {"mmlu_astro", "mmlu_cook", "gsm_word"};
        bool weak = g == 1 || (g == 2 && !hard);
        REQUIRE(!rtr_dataset_add(d, text, (size_t)k, weak, true, NULL, gname[g]));
    }
}

static rtr_train_params subject_params(void) {
    rtr_train_params p = small_params();
    p.subject_weight = 1;
    p.subject_bits = 12;
    p.subject_l2 = 1e-3;
    p.subject_iter = 100;
    p.subject_head_weight = 0.25;
    p.knn_k = 0; /* version 2: the neighbours part has its own tests */
    return p;
}

static void test_subject(void) {
    /* the classifier alone, where the answer is known: one text for every
     * row, groups in the proportions 3:2:1, so P(group | text) must come out
     * as those proportions (the text says nothing else) */
    rtr_dataset c;
    rtr_dataset_init(&c);
    static const char *const gname[] = {"a_x", "a_y", "a_z"};
    for (int i = 0; i < 60; i++)
        REQUIRE(!rtr_dataset_add(&c, "same words here", 15, i % 2, true, NULL,
                                 gname[i % 6 < 3   ? 0
                                       : i % 6 < 5 ? 1
                                                   : 2]));
    rtr_train_params p = subject_params();
    p.subject_iter = 300;
    rtr_model *m = NULL;
    REQUIRE(!rtr_train(&c, NULL, 0, &p, &m));
    REQUIRE(rtr_subject_classes(m) == 3);
    double pr[3], parts[4];
    REQUIRE(!rtr_subject_probs(m, "same words here", 15, pr));
    CHECKF(fabs(pr[0] - 0.5) < 1e-3 && fabs(pr[1] - 1.0 / 3) < 1e-3 && fabs(pr[2] - 1.0 / 6) < 1e-3,
           "P = %g %g %g", pr[0], pr[1], pr[2]);
    /* the rates: the even rows gain 1 (only the strong tier right), the odd
     * ones 0, so the groups' gains are 20/30, 10/20 and 0/10, shrunk toward
     * the mean 0.5 by 20 rows: 0.6, 0.5, 1/3, weighted by P */
    REQUIRE(!rtr_score_parts(m, "same words here", 15, parts));
    double want = 0.5 * 0.6 + 0.5 / 3 + 1.0 / 18;
    CHECKF(fabs(parts[0] - want) < 2e-3, "expected rate %g, want %g", parts[0], want);
    CHECKF(fabs(parts[3] - 0.25) < 1e-6, "head multiplier %g", parts[3]); /* all of benchmark a */
    rtr_free(m);
    rtr_dataset_fini(&c);

    /* subjects told apart by their words */
    rtr_dataset d, t;
    rtr_dataset_init(&d);
    rtr_dataset_init(&t);
    synth_subjects(&d, 300, 5);
    synth_subjects(&t, 60, 77); /* unseen word orders */
    p = subject_params();
    m = NULL;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    REQUIRE(rtr_subject_classes(m) == 3);
    CHECK(rtr_subject_weight(m) == 1);
    double s_hard = 1e9, s_easy = -1e9;
    int right = 0;
    for (size_t i = 0; i < t.n; i++) {
        const rtr_example *x = &t.ex[i];
        double s;
        REQUIRE(!rtr_subject_probs(m, x->prompt, x->prompt_len, pr));
        CHECK(fabs(pr[0] + pr[1] + pr[2] - 1) < 1e-9);
        right += pr[x->group] > 0.5;
        REQUIRE(!rtr_score(m, x->prompt, x->prompt_len, &s) && isfinite(s));
        REQUIRE(!rtr_score_parts(m, x->prompt, x->prompt_len, parts));
        CHECK(fabs(s - (parts[0] + parts[3] * (parts[1] + parts[2]))) < 1e-9);
        if (x->group == 0) CHECKF(parts[0] > 0.7, "astro expected gain %g", parts[0]);
        if (x->group == 1) CHECKF(fabs(parts[0]) < 0.3, "cook expected gain %g", parts[0]);
        if (x->group < 2) CHECKF(parts[3] < 0.4, "head multiplier %g", parts[3]);
        if (x->group == 2) CHECKF(parts[3] > 0.9, "head multiplier %g", parts[3]);
        if (x->group == 2 && !x->weak_ok) s_hard = fmin(s_hard, s);
        if (x->group == 2 && x->weak_ok) s_easy = fmax(s_easy, s);
    }
    CHECKF(right == (int)t.n, "%d of %zu classified", right, t.n);
    CHECKF(s_hard > s_easy, "the heads still rank inside gsm: %g vs %g", s_hard, s_easy);

    /* the file: version 2 with the subject part, read back to the same scores */
    uint8_t *data, *data3;
    size_t size, size3;
    REQUIRE(!rtr_save_mem(m, &data, &size));
    CHECK(data[8] == 2);
    rtr_model *m2 = NULL;
    REQUIRE(!rtr_load_mem(data, size, &m2));
    for (size_t i = 0; i < t.n; i += 5) {
        double a, b;
        CHECK(!rtr_score(m, t.ex[i].prompt, t.ex[i].prompt_len, &a));
        CHECK(!rtr_score(m2, t.ex[i].prompt, t.ex[i].prompt_len, &b) && a == b);
    }
    char d1[1024], d2[1024];
    rtr_describe(m, d1, sizeof d1);
    rtr_describe(m2, d2, sizeof d2);
    CHECKF(!strcmp(d1, d2) && has(d1, "subject part"), "%s", d1);
    rtr_free(m2);
    /* the fit does not depend on the thread count */
    rtr_train_params p3 = subject_params();
    p3.n_threads = 3;
    REQUIRE(!rtr_train(&d, NULL, 0, &p3, &m2));
    REQUIRE(!rtr_save_mem(m2, &data3, &size3));
    CHECK(size3 == size && !memcmp(data, data3, size));
    free(data3);
    rtr_free(m2);
    /* a model without a subject part is still written as version 1 */
    rtr_train_params p0 = small_params();
    p0.subject_weight = 0;
    REQUIRE(!rtr_train(&d, NULL, 0, &p0, &m2));
    CHECK(rtr_subject_classes(m2) == 0 && rtr_subject_weight(m2) == 0);
    REQUIRE(!rtr_save_mem(m2, &data3, &size3));
    CHECK(data3[8] == 1);
    CHECK(rtr_subject_probs(m2, "x", 1, pr) == HEARTH_ERR_INVALID_ARG);
    free(data3);
    rtr_free(m2);

    /* corrupted subject parts: every truncation, and edits with a valid checksum */
    size_t sub = size - 4 - (4096u * 3 + 3 * 3) * 4 - 6 * 4; /* the section's start */
    uint32_t n_read = (uint32_t)data[sub] | (uint32_t)data[sub + 1] << 8;
    REQUIRE(n_read == 3);
    for (size_t n = sub - 8; n < size; n += (n < sub + 100 ? 1 : 1999)) {
        m2 = NULL;
        CHECK(rtr_load_mem(data, n, &m2) == HEARTH_ERR_FORMAT && !m2);
    }
    uint8_t *b = malloc(size + 4);
    REQUIRE(b);
    static const struct {
        size_t off;
        uint32_t v;
        const char *msg;
    } edits[] = {
        {0, 1, "1 classes"},
        {0, 300, "300 classes"},
        {0, 4, "bytes"},         /* more classes than the bytes hold */
        {4, 30, "hash bits 30"}, /* bits */
        {4, 13, "bytes"},        /* a bigger table than is there */
        {8, 7, "word n-grams"},  /* the subject features' settings */
        {12, 9, "char n-grams"}, /* char_min */
        {20, 0x7fc00000u, "coefficient"},
        {24, 0x40000000u, "rate 0"},           /* 2.0: not a gain */
        {24 + 12, 0x7f800000u, "bias 0"},      /* +inf */
        {24 + 24, 0xff800000u, "head weight"}, /* -inf */
        {24 + 36 + 4 * 100, 0x7fc00000u, "weight 100"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, data, size);
        put32(b, sub + edits[i].off, edits[i].v);
        reseal(b, size);
        m2 = NULL;
        CHECK(rtr_load_mem(b, size, &m2) == HEARTH_ERR_FORMAT && !m2);
        CHECKF(has(hearth_last_error(), edits[i].msg), "subject edit %zu: %s", i,
               hearth_last_error());
    }
    free(b);
    check_extra_bytes(data, size, 1);
    free(data);
    /* bad settings are refused */
    p = subject_params();
    p.subject_bits = 30;
    m2 = NULL;
    CHECK(rtr_train(&d, NULL, 0, &p, &m2) == HEARTH_ERR_INVALID_ARG && !m2);
    p = subject_params();
    p.subject_chars = 9;
    CHECK(rtr_train(&d, NULL, 0, &p, &m2) == HEARTH_ERR_INVALID_ARG && !m2);
    rtr_free(m);
    rtr_dataset_fini(&d);
    rtr_dataset_fini(&t);
}

/* ------------------------------------------------------ the neighbours part */

static rtr_train_params knn_params(void) {
    rtr_train_params p = subject_params();
    p.knn_k = 2;
    p.knn_weight = 0.5;
    p.knn_bits = 24;
    return p;
}

/* Six rows in two groups; every word but "fish" is in exactly two rows, so
 * every idf is ln(6/2) and a row's two words weigh 1/sqrt(2) each. */
static void knn_rows(rtr_dataset *d) {
    static const struct {
        const char *text;
        bool weak, strong;
    } rows[] = {
        {"apple banana", false, true}, /* gain +1 */
        {"apple cherry", true, false}, /* -1 */
        {"banana cherry", true, true}, /* 0 */
        {"dog cat", false, true},      /* +1 */
        {"Dog, CAT!", false, false},   /* 0: case and punctuation do not count */
        {"fish", true, true},          /* no word in two rows: not stored */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        REQUIRE(!rtr_dataset_add(d, rows[i].text, strlen(rows[i].text), rows[i].weak,
                                 rows[i].strong, NULL, i % 2 ? "k_b" : "k_a"));
}

/* The scores by hand on the six rows. */
static void knn_by_hand(const rtr_model *m) {
    static const uint32_t ks[] = {1, 2, 3, 100};
    double e, kn[4], parts[4], s;
    /* "apple banana banana": query weights (1, 1 + ln 2) normalized (the idf
     * is the same for both); similarities row 0 (qa + qb)/sqrt(2), row 1
     * qa/sqrt(2), row 2 qb/sqrt(2), the rest 0 */
    const char *q = "apple banana banana";
    REQUIRE(!rtr_knn_parts(m, q, strlen(q), ks, 4, &e, kn));
    double b = 1 + log(2.0), qa = 1 / sqrt(1 + b * b), qb = b * qa;
    double s0 = qa + qb, s1 = qa, s2 = qb; /* the common 1/sqrt(2) cancels */
    CHECKF(kn[0] == 1, "K=1: %g", kn[0]);
    CHECKF(fabs(kn[1] - s0 / (s0 + s2)) < 1e-6, "K=2: %g, want %g", kn[1], s0 / (s0 + s2));
    CHECKF(fabs(kn[2] - (s0 - s1) / (s0 + s1 + s2)) < 1e-6, "K=3: %g", kn[2]);
    CHECK(kn[3] == kn[2]); /* only three rows have a positive similarity */
    /* the score: E + 0.5 * (kn over the model's 2 nearest - E) */
    REQUIRE(!rtr_score_parts(m, q, strlen(q), parts) && !rtr_score(m, q, strlen(q), &s));
    CHECKF(fabs(parts[0] - (e + 0.5 * (kn[1] - e))) < 1e-12, "%g vs E %g", parts[0], e);
    CHECK(fabs(s - (parts[0] + parts[3] * (parts[1] + parts[2]))) < 1e-12);
    /* ties: rows 0, 1 and 2 are equally similar, the earlier rows win */
    q = "cherry banana apple";
    REQUIRE(!rtr_knn_parts(m, q, strlen(q), ks, 4, &e, kn));
    CHECKF(kn[0] == 1 && kn[1] == 0 && kn[2] == 0, "%g %g %g", kn[0], kn[1], kn[2]);
    /* "DOG dog": rows 3 and 4 alike (+1 and 0) */
    q = "DOG dog";
    REQUIRE(!rtr_knn_parts(m, q, strlen(q), ks, 4, &e, kn));
    CHECKF(kn[0] == 1 && fabs(kn[1] - 0.5) < 1e-12, "%g %g", kn[0], kn[1]);
    /* no neighbour: the subject part's rate stands */
    q = "zebra fish";
    REQUIRE(!rtr_knn_parts(m, q, strlen(q), ks, 4, &e, kn));
    CHECK(kn[0] == e && kn[3] == e);
    REQUIRE(!rtr_score_parts(m, q, strlen(q), parts));
    CHECK(parts[0] == e);
}

/* An edit of a file's bytes: `width` little-endian bytes of v at section
 * offset `off`, and what the reader's error must say. */
typedef struct file_edit {
    size_t off;
    int width;
    uint32_t v;
    const char *msg;
} file_edit;

/* Each edit of data[size] at sec, resealed, is refused with its message. */
static void check_edits(const uint8_t *data, size_t size, size_t sec, const file_edit *edits,
                        size_t n, const char *what) {
    uint8_t *b = malloc(size);
    REQUIRE(b);
    for (size_t i = 0; i < n; i++) {
        rtr_model *m = NULL;
        memcpy(b, data, size);
        for (int k = 0; k < edits[i].width; k++)
            b[sec + edits[i].off + (size_t)k] = (uint8_t)(edits[i].v >> (8 * k));
        reseal(b, size);
        CHECK(rtr_load_mem(b, size, &m) == HEARTH_ERR_FORMAT && !m);
        CHECKF(has(hearth_last_error(), edits[i].msg), "%s edit %zu: %s", what, i,
               hearth_last_error());
    }
    free(b);
}

/* Damaged neighbours parts: sec is where the part starts in the version 3
 * file data[size] (the last 4 bytes are the checksum). */
static void knn_damaged(const uint8_t *data, size_t size, size_t sec) {
    rtr_model *m = NULL;
    uint8_t *b = malloc(size + 8);
    REQUIRE(b);
    /* every truncation, resealed so that the reader's own checks see it, and not */
    for (size_t n = sec - 8; n < size - 4; n++) {
        memcpy(b, data, n);
        reseal(b, n + 4);
        CHECKF(rtr_load_mem(b, n + 4, &m) == HEARTH_ERR_FORMAT && !m, "cut at %zu", n);
        CHECK(rtr_load_mem(data, n, &m) == HEARTH_ERR_FORMAT && !m);
    }
    uint32_t T = (uint32_t)data[sec + 12] | (uint32_t)data[sec + 13] << 8;
    size_t rows = sec + 16 + 8 * T, counts = rows + 4;
    uint32_t R = (uint32_t)data[rows] | (uint32_t)data[rows + 1] << 8, nnz = 0;
    for (uint32_t r = 0; r < R; r++) nnz += data[counts + 4 * r];
    size_t gains = counts + 4 * R, terms = gains + R, weights = terms + 4 * nnz;
    REQUIRE(T == 5 && R == 5 && nnz == 10 && weights + 2 * nnz == size - 4);
    static const file_edit edits[] = {
        {0, 4, 0, "k 0"},
        {0, 4, 1001, "k 1001"},
        {4, 4, 0x7fc00000u, "neighbours part"}, /* a NaN weight */
        {4, 4, 0x40000000u, "weight 2 outside"},
        {8, 4, 11, "bucket bits 11"},
        {8, 4, 25, "bucket bits 25"},
        {12, 4, 0xFFFFFFF0u, "terms in 2^24"},
        {12, 4, 1000, "1000 terms need"},
        {16, 4, 0x00FFFFFFu, "out of order"}, /* bucket 0 above bucket 1 */
        {16 + 4 * 4, 4, 1u << 24, "out of order or range"},
        {16 + 4 * 5, 4, 0, "idf 0"},
        {16 + 4 * 5, 4, 0x7f800000u, "idf 0"}, /* +inf */
        {16 + 4 * 9, 4, 0x42c80000u, "idf 4"}, /* 100 */
        {16 + 8 * 5, 4, 0xFFFFFFFFu, "rows need"},
        {16 + 8 * 5 + 4, 4, 0, "row 0 has 0 terms"},
        {16 + 8 * 5 + 4, 4, 6, "row 0 has 6 terms"},
        {16 + 8 * 5 + 4 + 16, 4, 5, "terms need"}, /* row 4 claims all 5 */
        {16 + 8 * 5 + 4 + 20, 1, 2, "gain 2"},
        {16 + 8 * 5 + 4 + 24, 1, 0x80, "gain -128"},
        {16 + 8 * 5 + 4 + 25 + 4, 4, 0, "out of order"}, /* row 0's second term */
        {16 + 8 * 5 + 4 + 25, 4, 5, "out of order or range"},
        {16 + 8 * 5 + 4 + 25 + 40, 2, 0, "weight 0 not within"},
        {16 + 8 * 5 + 4 + 25 + 40, 2, 0x3C01, "weight 0 not within"}, /* just above 1 */
        {16 + 8 * 5 + 4 + 25 + 42, 2, 0x7C00, "weight 1 not within"}, /* +inf */
        {16 + 8 * 5 + 4 + 25 + 58, 2, 0xFE00, "weight 9 not within"}, /* NaN */
        {16 + 8 * 5 + 4 + 25 + 58, 2, 0x8001, "weight 9 not within"}, /* negative */
    };
    check_edits(data, size, sec, edits, sizeof edits / sizeof edits[0], "knn");
    free(b);
    check_extra_bytes(data, size, 2);
}

/* Loads m's file data[size] back: the same description and, written again,
 * the same bytes. Returns the loaded model. */
static rtr_model *reload_same(const rtr_model *m, const uint8_t *data, size_t size) {
    rtr_model *m2 = NULL;
    uint8_t *again;
    size_t n;
    char d1[1024], d2[1024];
    REQUIRE(!rtr_load_mem(data, size, &m2));
    rtr_describe(m, d1, sizeof d1);
    rtr_describe(m2, d2, sizeof d2);
    CHECKF(!strcmp(d1, d2), "%s\n%s", d1, d2);
    REQUIRE(!rtr_save_mem(m2, &again, &n));
    CHECK(n == size && !memcmp(data, again, size));
    free(again);
    return m2;
}

static void test_knn(void) {
    rtr_dataset d;
    rtr_dataset_init(&d);
    knn_rows(&d);
    rtr_train_params p = knn_params();
    rtr_model *m = NULL, *m2 = NULL;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    CHECK(rtr_knn_k(m) == 2 && rtr_knn_weight(m) == 0.5);
    char d1[1024];
    rtr_describe(m, d1, sizeof d1);
    CHECKF(has(d1, "2 most similar of 5 training prompts (tf-idf of words, 5 terms"), "%s", d1);
    knn_by_hand(m);

    /* version 3: read back to the same scores and the same bytes */
    uint8_t *data, *data2, *data3;
    size_t size, size2, size3;
    REQUIRE(!rtr_save_mem(m, &data, &size));
    CHECK(data[8] == 3);
    m2 = reload_same(m, data, size);
    knn_by_hand(m2);
    static const char *const probe[] = {"apple banana", "dog", "", "fish apple cherry cherry"};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        double a, c;
        CHECK(!rtr_score(m, probe[i], strlen(probe[i]), &a));
        CHECK(!rtr_score(m2, probe[i], strlen(probe[i]), &c) && a == c);
    }
    rtr_free(m2);
    /* the same with three threads */
    p.n_threads = 3;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m2));
    REQUIRE(!rtr_save_mem(m2, &data3, &size3));
    CHECK(size3 == size && !memcmp(data, data3, size));
    free(data3);
    rtr_free(m2);

    /* k 0: version 2, the same bytes but the version and without the part */
    p = knn_params();
    p.knn_k = 0;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m2));
    CHECK(rtr_knn_k(m2) == 0 && rtr_knn_weight(m2) == 0);
    uint32_t one = 1;
    double e, kn;
    CHECK(rtr_knn_parts(m2, "x", 1, &one, 1, &e, &kn) == HEARTH_ERR_INVALID_ARG);
    REQUIRE(!rtr_save_mem(m2, &data2, &size2));
    CHECK(data2[8] == 2 && size2 < size && !memcmp(data2 + 12, data + 12, size2 - 16));
    rtr_free(m2);
    knn_damaged(data, size, size2 - 4);
    free(data2);
    free(data);

    /* bad settings are refused */
    p = knn_params();
    p.knn_k = 1001;
    CHECK(rtr_train(&d, NULL, 0, &p, &m2) == HEARTH_ERR_INVALID_ARG);
    p = knn_params();
    p.knn_weight = 1.5;
    CHECK(rtr_train(&d, NULL, 0, &p, &m2) == HEARTH_ERR_INVALID_ARG);
    p = knn_params();
    p.knn_bits = 25;
    CHECK(rtr_train(&d, NULL, 0, &p, &m2) == HEARTH_ERR_INVALID_ARG);
    rtr_free(m);
    rtr_dataset_fini(&d);
}

/* ------------------------------------- the neighbour-based subject estimate */

/* The six rows of knn_rows alternate groups k_a (0, 2, 4) and k_b (1, 3, 5),
 * one benchmark: each group's rate is its mean gain shrunk toward the
 * benchmark's (1/6) by 20 pseudo-rows; "fish" (k_b) counts there, though it is
 * not stored as a neighbour. */
static const double RATE_A = (1 + 20.0 / 6) / 23, RATE_B = (0 + 20.0 / 6) / 23;

/* The estimates by hand under a model trained on knn_rows with group weight
 * b (a = 0.5, K = 2). */
static void knn_subject_by_hand(const rtr_model *m, double b) {
    static const uint32_t ks[] = {1, 2, 3};
    double e, h, rate[3], hw[3], kn[3], e2, parts[4];
    const char *q = "apple banana banana"; /* rows 0 (k_a), 1 (k_b), 2 (k_a) as in knn_by_hand */
    REQUIRE(!rtr_knn_subject_parts(m, q, strlen(q), ks, 3, &e, &h, rate, hw));
    double bb = 1 + log(2.0), qa = 1 / sqrt(1 + bb * bb), qb = bb * qa;
    double s0 = qa + qb, s1 = qa, s2 = qb;
    CHECKF(fabs(rate[0] - RATE_A) < 1e-6 && fabs(rate[1] - RATE_A) < 1e-6, "%g %g, want %g",
           rate[0], rate[1], RATE_A);
    double want = ((s0 + s2) * RATE_A + s1 * RATE_B) / (s0 + s1 + s2);
    CHECKF(fabs(rate[2] - want) < 1e-6, "K=3: %g, want %g", rate[2], want);
    /* one benchmark of two groups: both heads' weights are subject_head_weight */
    CHECKF(fabs(hw[0] - 0.25) < 1e-7 && fabs(hw[2] - 0.25) < 1e-7 && fabs(h - 0.25) < 1e-7,
           "%g %g %g", hw[0], hw[2], h);
    /* the score: E' = E + b (rate over the model's 2 nearest - E), then
     * E' + 0.5 (kn - E') */
    REQUIRE(!rtr_knn_parts(m, q, strlen(q), ks, 3, &e2, kn) && e2 == e);
    REQUIRE(!rtr_score_parts(m, q, strlen(q), parts));
    double ep = e + b * (rate[1] - e);
    CHECKF(fabs(parts[0] - (ep + 0.5 * (kn[1] - ep))) < 1e-12, "%g", parts[0]);
    CHECK(fabs(parts[3] - (h + b * (hw[1] - h))) < 1e-12);
    /* "DOG dog": rows 3 (k_b) and 4 (k_a) tie, the earlier wins K = 1 */
    q = "DOG dog";
    REQUIRE(!rtr_knn_subject_parts(m, q, strlen(q), ks, 3, &e, &h, rate, hw));
    CHECKF(fabs(rate[0] - RATE_B) < 1e-6 && fabs(rate[1] - (RATE_A + RATE_B) / 2) < 1e-6, "%g %g",
           rate[0], rate[1]);
    /* no neighbour: the classifier's expectations stand */
    q = "zebra fish";
    REQUIRE(!rtr_knn_subject_parts(m, q, strlen(q), ks, 3, &e, &h, rate, hw));
    CHECK(rate[0] == e && rate[2] == e && hw[1] == h);
    REQUIRE(!rtr_score_parts(m, q, strlen(q), parts));
    CHECK(parts[0] == e && parts[3] == h);
}

/* Damaged group sections: sec is where it starts in the version 4 file
 * data[size] (its weight, then 5 group bytes, then the checksum). */
static void knn_groups_damaged(const uint8_t *data, size_t size, size_t sec) {
    rtr_model *m = NULL;
    uint8_t *b = malloc(size + 8);
    REQUIRE(b && sec + 4 + 5 + 4 == size);
    for (size_t n = sec; n < size - 4; n++) {
        memcpy(b, data, n);
        reseal(b, n + 4);
        CHECKF(rtr_load_mem(b, n + 4, &m) == HEARTH_ERR_FORMAT && !m, "cut at %zu", n);
        CHECKF(has(hearth_last_error(), "groups"), "cut at %zu: %s", n, hearth_last_error());
    }
    static const file_edit edits[] = {
        {0, 4, 0, "weight truncated or outside"},           /* 0: a version 3 file */
        {0, 4, 0x3f800001u, "weight truncated or outside"}, /* just above 1 */
        {0, 4, 0xbe800000u, "weight truncated or outside"}, /* -0.25 */
        {0, 4, 0x7fc00000u, "weight truncated or outside"}, /* NaN */
        {4, 1, 2, "row 0's group 2 (2 classes)"},           {8, 1, 255, "row 4's group 255"},
    };
    check_edits(data, size, sec, edits, sizeof edits / sizeof edits[0], "group");
    /* a version 5 is refused by name */
    memcpy(b, data, size);
    b[8] = 5;
    reseal(b, size);
    CHECK(rtr_load_mem(b, size, &m) == HEARTH_ERR_FORMAT && has(hearth_last_error(), "version 5"));
    free(b);
    check_extra_bytes(data, size, 3);
}

static void test_knn_subject(void) {
    rtr_dataset d;
    rtr_dataset_init(&d);
    knn_rows(&d);
    rtr_train_params p = knn_params();
    p.knn_subject_weight = 0.5;
    p.subject_l2 = 1; /* a classifier unsure of the group, P(k_a | text) near 1/2 */
    rtr_model *m = NULL, *m2 = NULL, *m0 = NULL;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    CHECK(rtr_knn_subject_weight(m) == 0.5);
    char d1[1024];
    rtr_describe(m, d1, sizeof d1);
    CHECKF(has(d1, "moved 0.5 of the way to its groups"), "%s", d1);
    knn_subject_by_hand(m, 0.5);

    /* version 4: read back to the same scores and bytes */
    uint8_t *data, *data0;
    size_t size, size0;
    REQUIRE(!rtr_save_mem(m, &data, &size));
    CHECK(data[8] == 4);
    m2 = reload_same(m, data, size);
    knn_subject_by_hand(m2, 0.5);
    rtr_free(m2);

    /* weight 0: today's model, written as version 3 byte for byte as before
     * (the groups are not written), and the same but for the section */
    p.knn_subject_weight = 0;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m0));
    knn_subject_by_hand(m0, 0); /* the groups are known in memory */
    REQUIRE(!rtr_save_mem(m0, &data0, &size0));
    CHECK(data0[8] == 3 && size0 + 4 + 5 == size && !memcmp(data0 + 12, data + 12, size0 - 16));
    REQUIRE(!rtr_load_mem(data0, size0, &m2));
    uint32_t one = 1;
    double e, h, rate, hw;
    CHECK(rtr_knn_subject_parts(m2, "dog", 3, &one, 1, &e, &h, &rate, &hw) ==
              HEARTH_ERR_INVALID_ARG &&
          has(hearth_last_error(), "no groups"));
    CHECK(rtr_knn_subject_weight(m2) == 0);
    knn_by_hand(m2); /* a version 3 file still scores as before */

    /* the direction: "apple banana banana"'s two nearest are both k_a, whose
     * rate is above the classifier's mixture E, so its score rises with b */
    const char *q = "apple banana banana";
    double s0, s5;
    REQUIRE(!rtr_knn_subject_parts(m, q, strlen(q), &one, 1, &e, &h, &rate, &hw));
    REQUIRE(!rtr_score(m2, q, strlen(q), &s0) && !rtr_score(m, q, strlen(q), &s5));
    CHECKF(rate > e + 0.01 && s5 > s0, "E %g, rate %g: %g -> %g", e, rate, s0, s5);
    CHECK(fabs((s5 - s0) - 1.0 * 0.5 * 0.5 * (rate - e)) < 1e-12); /* coef (1 - a) b (rate - E) */
    rtr_free(m2);
    rtr_free(m0);

    knn_groups_damaged(data, size, size0 - 4);
    free(data0);
    free(data);
    p = knn_params();
    p.knn_subject_weight = 1.5;
    CHECK(rtr_train(&d, NULL, 0, &p, &m2) == HEARTH_ERR_INVALID_ARG &&
          has(hearth_last_error(), "subject weight 1.5"));
    rtr_free(m);
    rtr_dataset_fini(&d);
}

/* ------------------------------------------------------------ the ledger */

static void test_ledger(void) {
    CHECK(rtr_answers_agree("So the total is $1,250.", 23, "#### 250", 8)); /* last numbers */
    CHECK(!rtr_answers_agree("It takes 3 bolts", 16, "3 bolts, so 5 in all", 20));
    CHECK(rtr_answers_agree("The capital is Paris", 20, "the capital is paris.", 21));
    CHECK(!rtr_answers_agree("The capital is Paris", 20, "Lyon", 4));
    CHECK(rtr_answers_agree("", 0, "", 0) && !rtr_answers_agree("a", 1, "", 0));

    const char *db = tmp_path("ledger.db");
    gw_ledger *l = NULL;
    REQUIRE(!gw_ledger_open(db, &l));
    static const struct {
        gw_route route;
        int status;
        bool degraded, checked;
        const char *prompt, *local, *remote;
    } rows[] = {
        {GW_ROUTE_ESCALATED, 200, false, true, "add 40 and 2", "It is 42.", "40 + 2 = 42"},
        {GW_ROUTE_ESCALATED, 200, false, true, "capital of France?", "Lyon", "Paris"},
        {GW_ROUTE_LOCAL, 200, false, true, "say hello", "hello", NULL},
        {GW_ROUTE_LOCAL, 200, false, false, "no check ran", "hi", NULL},
        {GW_ROUTE_LOCAL, 200, true, true, "cloud was down", "maybe", NULL},
        {GW_ROUTE_ESCALATED, 502, false, true, "failed", "x", "y"},
        {GW_ROUTE_ESCALATED, 200, false, false, NULL, NULL, "not recorded"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        gw_ledger_row r = gw_ledger_row_init();
        r.route = rows[i].route;
        r.tier = rows[i].route == GW_ROUTE_LOCAL ? "local" : "cloud";
        r.reason = "test";
        r.status = rows[i].status;
        r.degraded = rows[i].degraded;
        if (rows[i].checked) r.conf_mean = -0.5, r.conf_min = -2;
        r.prompt = rows[i].prompt;
        r.local_answer = rows[i].local;
        r.remote_answer = rows[i].remote;
        REQUIRE(!gw_ledger_add(l, &r, NULL));
    }
    gw_ledger_close(l);
    rtr_dataset d;
    rtr_dataset_init(&d);
    rtr_ledger_counts k;
    REQUIRE(!rtr_dataset_from_ledger(&d, db, &k));
    CHECKF(k.rows == 5 && k.both == 2 && k.weak_wrong == 1 && k.kept_local == 1 && k.skipped == 2,
           "%zu %zu %zu %zu %zu", k.rows, k.both, k.weak_wrong, k.kept_local, k.skipped);
    REQUIRE(d.n == 3);
    CHECK(!strcmp(d.ex[0].prompt, "add 40 and 2") && d.ex[0].weak_ok && d.ex[0].strong_ok);
    CHECK(!strcmp(d.ex[1].prompt, "capital of France?") && !d.ex[1].weak_ok);
    CHECK(!strcmp(d.ex[2].prompt, "say hello") && d.ex[2].weak_ok && d.ex[2].strong_ok);
    CHECK(!strcmp(d.ex[0].id, "1") && !strcmp(d.groups[d.ex[0].group], "ledger"));
    rtr_dataset_fini(&d);
    double *conf = NULL;
    size_t n_conf = 0;
    REQUIRE(!rtr_ledger_confidences(db, &conf, &n_conf));
    CHECK(n_conf == 3 && conf[0] == -0.5);
    free(conf);
    /* not a ledger */
    const char *notdb = tmp_path("not.db");
    write_file(notdb, "SQLite format 3 but not really");
    rtr_dataset_init(&d);
    CHECK(rtr_dataset_from_ledger(&d, notdb, &k) != HEARTH_OK && d.n == 0);
    CHECK(rtr_dataset_from_ledger(&d, tmp_path("absent.db"), &k) == HEARTH_ERR_IO);
    rtr_dataset_fini(&d);
}

/* ------------------------------------------------------- the CLI, end to end */

static int run_cmd(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    const char *data = tmp_path("train.jsonl");
    FILE *f = fopen(data, "w");
    REQUIRE(f);
    unsigned long long seed = 5;
    for (int i = 0; i < 120; i++) {
        bool hard = i % 3 == 0;
        fprintf(f,
                "{\"id\":\"p%d\",\"prompt\":\"%s %s %s %s\",\"weak_ok\":%s,\"strong_ok\":true}\n",
                i, filler[test_rand_u64(&seed) % 12], hard ? "zorblax" : "plain",
                filler[test_rand_u64(&seed) % 12], filler[test_rand_u64(&seed) % 12],
                hard ? "false" : "true");
    }
    fclose(f);
    char cmd[2048], out[1 << 15];
    const char *rtr = tmp_path("cli.rtr");
    snprintf(cmd, sizeof cmd, "%s router train --data %s -o %s --hash-bits 16 -q 2>&1",
             HEARTH_BINARY, data, rtr);
    CHECKF(run_cmd(cmd, out, sizeof out) == 0, "%s", out);

    const char *in = tmp_path("in.jsonl");
    write_file(in, "{\"id\":\"a\",\"prompt\":\"zorblax now\"}\n{\"prompt\":\"plain words\"}\n");
    snprintf(cmd, sizeof cmd, "%s router score --router %s --input %s", HEARTH_BINARY, rtr, in);
    CHECK(run_cmd(cmd, out, sizeof out) == 0);
    double s1 = 0, s2 = 0;
    CHECKF(sscanf(out, "{\"id\":\"a\",\"score\":%lf}\n{\"id\":2,\"score\":%lf}", &s1, &s2) == 2,
           "%s", out);
    CHECK(s1 > s2);

    snprintf(cmd, sizeof cmd, "%s router eval --router %s --data %s", HEARTH_BINARY, rtr, data);
    CHECKF(run_cmd(cmd, out, sizeof out) == 0 && has(out, "APGR") && has(out, "random"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s router calibrate --router %s --data %s --local-share 0.75",
             HEARTH_BINARY, rtr, data);
    CHECKF(run_cmd(cmd, out, sizeof out) == 0 && has(out, "keeps 75.00 % of 120"), "%s", out);
    rtr_model *m = NULL;
    REQUIRE(!rtr_load(rtr, &m));
    CHECK(rtr_calibrated_local_share(m) == 0.75 && isfinite(rtr_threshold(m)));
    rtr_free(m);

    /* labels from the ledger written by test_ledger, with a data file */
    snprintf(cmd, sizeof cmd,
             "%s router train --from-ledger %s --data %s -o %s --hash-bits 16 2>&1", HEARTH_BINARY,
             tmp_path("ledger.db"), data, tmp_path("ledger.rtr"));
    CHECKF(run_cmd(cmd, out, sizeof out) == 0 && has(out, "2 with both answers (1 disagreeing"),
           "%s", out);

    snprintf(cmd, sizeof cmd,
             "%s router calibrate --confidence --from-ledger %s --local-share 0.5 2>&1",
             HEARTH_BINARY, tmp_path("ledger.db"));
    CHECKF(run_cmd(cmd, out, sizeof out) == 0 && has(out, "of 3 checked answers local"), "%s", out);

    /* two groups: the subject part, and by default the neighbours part
     * (version 3); --knn 0 writes version 2 */
    const char *two = tmp_path("two.jsonl");
    f = fopen(two, "w");
    REQUIRE(f);
    for (int i = 0; i < 60; i++)
        fprintf(
            f, "{\"prompt\":\"%s %s %s\",\"weak_ok\":%s,\"strong_ok\":true,\"group\":\"t_%c\"}\n",
            filler[test_rand_u64(&seed) % 12], i % 2 ? "orbit" : "oven",
            filler[test_rand_u64(&seed) % 12], i % 4 == 1 ? "false" : "true", i % 2 ? 'a' : 'b');
    fclose(f);
    for (int knn = 0; knn < 2; knn++) {
        snprintf(cmd, sizeof cmd,
                 "%s router train --data %s -o %s --hash-bits 12 --iters 20 %s -q 2>&1",
                 HEARTH_BINARY, two, rtr, knn ? "--knn 7 --knn-weight 0.25" : "--knn 0");
        CHECKF(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
        uint8_t head[12] = {0};
        f = fopen(rtr, "rb");
        REQUIRE(f && fread(head, 1, 12, f) == 12);
        fclose(f);
        CHECKF(head[8] == (knn ? 3 : 2), "--knn %d: version %d", knn ? 7 : 0, head[8]);
        REQUIRE(!rtr_load(rtr, &m));
        CHECK(rtr_knn_k(m) == (knn ? 7u : 0u) && rtr_knn_weight(m) == (knn ? 0.25 : 0));
        rtr_free(m);
    }
    snprintf(cmd, sizeof cmd, "%s router train --data %s -o %s --knn-weight 2 2>&1", HEARTH_BINARY,
             two, rtr);
    CHECKF(run_cmd(cmd, out, sizeof out) == 2 && has(out, "--knn-weight"), "%s", out);
    /* --knn-subject B > 0: version 4 */
    snprintf(cmd, sizeof cmd,
             "%s router train --data %s -o %s --hash-bits 12 --iters 20 --knn 7 --knn-subject 0.5 "
             "-q 2>&1",
             HEARTH_BINARY, two, rtr);
    CHECKF(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
    REQUIRE(!rtr_load(rtr, &m));
    CHECK(rtr_knn_subject_weight(m) == 0.5);
    rtr_free(m);
    snprintf(cmd, sizeof cmd, "%s router train --data %s -o %s --knn-subject -1 2>&1",
             HEARTH_BINARY, two, rtr);
    CHECKF(run_cmd(cmd, out, sizeof out) == 2 && has(out, "--knn-subject"), "%s", out);

    /* errors say what and where */
    const char *bad = tmp_path("broken.csv");
    write_file(bad, "prompt,weak_ok,strong_ok\nx,True\n");
    snprintf(cmd, sizeof cmd, "%s router train --data %s -o %s 2>&1", HEARTH_BINARY, bad, rtr);
    CHECKF(run_cmd(cmd, out, sizeof out) == 1 && has(out, "broken.csv: csv: line 2"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s router eval --router %s --data %s 2>&1", HEARTH_BINARY, data,
             data);
    CHECKF(run_cmd(cmd, out, sizeof out) == 1 && has(out, "magic"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s router frobnicate 2>&1", HEARTH_BINARY);
    CHECK(run_cmd(cmd, out, sizeof out) == 2);
}

/* ------------------------------------------- RouteLLM's MMLU outcomes, quickly */

static int test_routellm(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/data/routing/routellm/mmlu/responses", HEARTH_SHARED_DIR);
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("test_router: %s absent, skipping the RouteLLM check\n", dir);
        return TEST_SKIP;
    }
    rtr_dataset d;
    rtr_dataset_init(&d);
    char pat[600];
    snprintf(pat, sizeof pat, "%s/mmlu_*.csv", dir);
    glob_t gl;
    REQUIRE(glob(pat, 0, NULL, &gl) == 0 && gl.gl_pathc == 57);
    for (size_t i = 0; i < gl.gl_pathc; i++) REQUIRE(!rtr_dataset_load(&d, gl.gl_pathv[i], NULL));
    globfree(&gl);
    size_t *tr = malloc(d.n * sizeof *tr), *ev = malloc(d.n * sizeof *ev), n_tr = 0, n_ev = 0;
    REQUIRE(tr && ev);
    for (size_t i = 0; i < d.n; i++) {
        /* Only the training part of `hearth router experiment`: this check
         * runs on every build and must not look at its held-out part. */
        if (rtr_split_pick("hearth-router-eval", d.ex[i].prompt, d.ex[i].prompt_len, 20)) continue;
        if (rtr_split_pick("test-router", d.ex[i].prompt, d.ex[i].prompt_len, 20))
            ev[n_ev++] = i;
        else
            tr[n_tr++] = i;
    }
    rtr_train_params p = rtr_train_default_params();
    /* words only and 20 iterations: quick even under the sanitizers (100
     * iterations ranked this subset no better: APGR 0.664 against 0.668) */
    p.char_min = p.char_max = 0;
    p.max_iter = 20;
    p.subject_iter = 20;
    p.n_threads = 2;
    rtr_model *m = NULL;
    REQUIRE(!rtr_train(&d, tr, n_tr, &p, &m));
    CHECK(rtr_subject_classes(m) == 57); /* the default method has the subject part */
    double *s = malloc(n_ev * sizeof *s);
    bool *w = malloc(n_ev), *g = malloc(n_ev);
    REQUIRE(s && w && g);
    for (size_t i = 0; i < n_ev; i++) {
        const rtr_example *x = &d.ex[ev[i]];
        REQUIRE(!rtr_score(m, x->prompt, x->prompt_len, &s[i]));
        w[i] = x->weak_ok;
        g[i] = x->strong_ok;
    }
    rtr_metrics mt;
    REQUIRE(!rtr_metrics_compute(s, w, g, n_ev, &mt));
    printf("test_router: MMLU subset (%zu train, %zu eval): APGR %.3f, CPT(50%%) %.1f %%\n", n_tr,
           n_ev, mt.apgr, 100 * mt.cpt50);
    CHECKF(mt.apgr > 0.6, "APGR %g", mt.apgr);
    rtr_free(m);
    free(s), free(w), free(g), free(tr), free(ev);
    rtr_dataset_fini(&d);
    return 0;
}

/* `test_router --write-corpus DIR`: the seeds of fuzz/fuzz_router.c (the
 * first byte picks the target there). */
static void write_seed(const char *dir, const char *name, uint8_t mode, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(&mode, 1, 1, f) == 1 && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static int write_corpus(const char *dir) {
    rtr_model *m = train_synthetic();
    uint8_t *data;
    size_t size;
    rtr_set_threshold(m, 0.1, 0.75);
    REQUIRE(!rtr_save_mem(m, &data, &size));
    write_seed(dir, "file_list", 0, data, size);
    free(data);
    rtr_free(m);
    rtr_dataset d; /* a version 2 file: with the subject part */
    rtr_dataset_init(&d);
    synth_subjects(&d, 60, 5);
    rtr_train_params p = subject_params();
    p.max_iter = 20, p.subject_iter = 20;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    REQUIRE(!rtr_save_mem(m, &data, &size));
    write_seed(dir, "file_subject", 0, data, size);
    free(data);
    rtr_free(m);
    /* version 3 files: with the neighbours part, on the same rows and on the
     * six rows of test_knn */
    p.knn_k = 5;
    p.knn_weight = 0.3;
    p.knn_bits = 16;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    REQUIRE(!rtr_save_mem(m, &data, &size) && data[8] == 3);
    write_seed(dir, "file_knn", 0, data, size);
    free(data);
    rtr_free(m);
    rtr_dataset_fini(&d);
    rtr_dataset_init(&d);
    knn_rows(&d);
    p = knn_params();
    p.max_iter = 20, p.subject_iter = 20;
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    rtr_set_threshold(m, 0.05, 0.5);
    REQUIRE(!rtr_save_mem(m, &data, &size) && data[8] == 3);
    write_seed(dir, "file_knn_tiny", 0, data, size);
    free(data);
    rtr_free(m);
    p.knn_subject_weight = 0.5; /* version 4: with the neighbours' groups */
    REQUIRE(!rtr_train(&d, NULL, 0, &p, &m));
    REQUIRE(!rtr_save_mem(m, &data, &size) && data[8] == 4);
    write_seed(dir, "file_knn_groups", 0, data, size);
    free(data);
    rtr_free(m);
    rtr_dataset_fini(&d);
    static const char csv[] = "prompt,weak_ok,strong_ok\n\"a, \"\"b\"\"\nc\",True,False\r\n,,\n";
    write_seed(dir, "csv_tricky", 1, csv, sizeof csv - 1);
    static const char csv_bad[] = "x,\"open\nno end";
    write_seed(dir, "csv_unterminated", 1, csv_bad, sizeof csv_bad - 1);
    static const char text[] = "Which of the following is NOT a prime?\nA. 2\nB. 3\nC. 9\nD. 11\n"
                               "Answer:";
    write_seed(dir, "text_mmlu", 2, text, sizeof text - 1);
    static const char agree[] = "So the answer is 42.40 + 2 = 42";
    write_seed(dir, "agree_numbers", 3, agree, sizeof agree - 1);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-corpus")) return write_corpus(argv[2]);
    REQUIRE(mkdtemp(tmp_dir));
    test_csv();
    test_load();
    test_metrics();
    test_calibrate();
    rtr_model *m = train_synthetic();
    test_train(m);
    test_file(m);
    rtr_free(m);
    test_subject();
    test_knn();
    test_knn_subject();
    test_ledger();
    test_cli();
    int skip = test_routellm();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "test_router: could not remove %s\n", tmp_dir);
    int rc = test_done("test_router");
    return rc ? rc : skip;
}
