/*
 * test_json_mode.c - JSON mode end to end through the public API, on a model
 * with random weights that knows nothing of JSON: for several seeds and
 * temperatures (greedy included) every generation that finishes with
 * HEARTH_FINISH_STOP is one JSON object cJSON parses, and one cut by
 * max_tokens is still a prefix of one; the object ends the generation (no
 * end-of-generation token needed, nothing after it); a seed reproduces the
 * output; hearth_sampler_reset starts the constraint over; the constraint
 * goes through hearth_gen_step batches beside an unconstrained generation.
 */
#include "gen_collect.h"
#include "hearth.h"
#include "model/synth.h"
#include "sampling/json_prefix.h"
#include "test.h"

#include <cjson/cJSON.h>

#include <unistd.h>

/* The generated text, longer than collected's buffer. */
typedef struct big_text {
    char *p;
    size_t n, cap;
    int n_tokens;
} big_text;

static bool on_token(const hearth_token_event *ev, void *user) {
    big_text *t = user;
    if (ev->id >= 0) t->n_tokens++;
    if (t->n + ev->len + 1 > t->cap) {
        t->cap = (t->n + ev->len + 1) * 2;
        t->p = realloc(t->p, t->cap);
        REQUIRE(t->p);
    }
    memcpy(t->p + t->n, ev->text, ev->len);
    t->n += ev->len;
    t->p[t->n] = '\0';
    return true;
}

static bool is_json_object(const char *s, size_t n) {
    char *z = malloc(n + 1);
    REQUIRE(z);
    memcpy(z, s, n);
    z[n] = '\0';
    cJSON *root = cJSON_ParseWithLengthOpts(z, n + 1, NULL, true);
    const bool ok = root && cJSON_IsObject(root);
    cJSON_Delete(root);
    free(z);
    return ok;
}

static bool is_object_prefix(const char *s, size_t n) {
    smp_json j;
    smp_json_init(&j, true);
    return smp_json_feed_bytes(&j, s, n);
}

static hearth_model *load_synth(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-json-%d.gguf", (int)getpid());
    synth_params p = synth_default_params();
    p.type = KERN_Q8_0;
    p.n_ctx = 2048;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    unlink(path);
    return m;
}

static void generations(hearth_model *m) {
    int32_t ids[64];
    size_t n = 0;
    const char *prompt = "Reply in JSON: the name and age of a cat";
    REQUIRE(hearth_tokenize(m, prompt, strlen(prompt), true, false, ids, 64, &n) == HEARTH_OK);
    hearth_session_params sp = {.n_ctx = 2048};
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    static const float temps[] = {0.0f, 1.0f, 1.5f, 3.0f};
    int n_stop = 0, n_length = 0;
    for (size_t ti = 0; ti < sizeof temps / sizeof *temps; ti++) {
        for (uint64_t seed = 1; seed <= 5; seed++) {
            if (temps[ti] == 0.0f && seed > 1) break;
            hearth_sampling smp = hearth_sampling_default_params();
            smp.temperature = temps[ti];
            smp.seed = seed;
            smp.top_k = 0, smp.top_p = 1.0f, smp.min_p = 0.0f; /* the whole distribution */
            smp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
            hearth_sampler *a = NULL;
            REQUIRE(hearth_sampler_new(m, &smp, &a) == HEARTH_OK);
            hearth_gen_params gp = {.max_tokens = 500};
            big_text t = {0};
            hearth_gen_result r;
            REQUIRE(hearth_generate(s, a, ids, (int)n, &gp, on_token, &t, &r) == HEARTH_OK);
            CHECK(r.n_gen == t.n_tokens);
            if (r.finish == HEARTH_FINISH_STOP) {
                n_stop++;
                CHECKF(is_json_object(t.p, t.n), "T %.1f seed %d: not a JSON object: %s",
                       (double)temps[ti], (int)seed, t.p);
                /* Nothing follows the object but the white space its last
                 * token may carry. */
                size_t end = t.n;
                while (end > 0 && strchr(" \t\r\n", t.p[end - 1])) end--;
                CHECK(end > 0 && t.p[end - 1] == '}');
            } else {
                n_length++;
                CHECK(r.finish == HEARTH_FINISH_LENGTH && r.n_gen == 500);
                CHECKF(is_object_prefix(t.p, t.n), "T %.1f seed %d: not a JSON prefix: %s",
                       (double)temps[ti], (int)seed, t.p);
            }
            /* The same seed again, after a reset: the same text. */
            if (seed == 1) {
                hearth_sampler_reset(a);
                big_text u = {0};
                REQUIRE(hearth_generate(s, a, ids, (int)n, &gp, on_token, &u, &r) == HEARTH_OK);
                CHECK(u.n == t.n && (t.n == 0 || !memcmp(u.p, t.p, t.n)));
                free(u.p);
            }
            free(t.p);
            hearth_sampler_free(a);
        }
    }
    printf("json mode: %d generations ended with an object, %d at max_tokens\n", n_stop, n_length);
    CHECKF(n_stop >= 4, "only %d generations completed an object", n_stop);
    hearth_session_free(s);
}

/* A short max_tokens leaves a valid prefix and finish LENGTH, as OpenAI's. */
static void cut_short(hearth_model *m) {
    int32_t ids[8];
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, "JSON", 4, true, false, ids, 8, &n) == HEARTH_OK);
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    hearth_sampling smp = hearth_sampling_default_params();
    smp.seed = 5;
    smp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
    hearth_sampler *a = NULL;
    REQUIRE(hearth_sampler_new(m, &smp, &a) == HEARTH_OK);
    hearth_gen_params gp = {.max_tokens = 3};
    big_text t = {0};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, a, ids, (int)n, &gp, on_token, &t, &r) == HEARTH_OK);
    CHECK(r.n_gen == 3 && r.finish == HEARTH_FINISH_LENGTH);
    CHECK(t.n > 0 && is_object_prefix(t.p, t.n) && !is_json_object(t.p, t.n));
    free(t.p);
    hearth_sampler_free(a);
    /* An unknown constraint is refused. */
    smp.constraint = (hearth_constraint)7;
    CHECK(hearth_sampler_new(m, &smp, &a) == HEARTH_ERR_INVALID_ARG);
    CHECKF(strstr(hearth_last_error(), "unknown constraint 7"), "%s", hearth_last_error());
    hearth_session_free(s);
}

/* Step-wise: a constrained and a free generation share hearth_gen_step
 * batches; the constrained one gives the same text as alone. */
static void batched(hearth_model *m) {
    int32_t ids[16];
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, "Once upon a time", 16, true, false, ids, 16, &n) == HEARTH_OK);
    hearth_sampling js = hearth_sampling_default_params(), fs = js;
    js.seed = 11, js.temperature = 1.5f, js.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
    fs.seed = 12;
    hearth_session *s1 = NULL, *s2 = NULL;
    hearth_session_params sp = {.n_seq_max = 2};
    REQUIRE(hearth_session_new(m, &sp, &s1) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, &sp, &s2) == HEARTH_OK);
    hearth_sampler *a = NULL, *b = NULL;
    REQUIRE(hearth_sampler_new(m, &js, &a) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(m, &fs, &b) == HEARTH_OK);
    hearth_gen_params gp = {.max_tokens = 200};
    big_text alone = {0}, t1 = {0}, t2 = {0};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s1, a, ids, (int)n, &gp, on_token, &alone, &r) == HEARTH_OK);
    hearth_session_truncate(s1, 0);
    hearth_gen *g[2] = {NULL, NULL};
    REQUIRE(hearth_gen_new(s1, a, ids, (int)n, &gp, on_token, &t1, &g[0]) == HEARTH_OK);
    REQUIRE(hearth_gen_new(s2, b, ids, (int)n, &gp, on_token, &t2, &g[1]) == HEARTH_OK);
    REQUIRE(hearth_gen_step(g, 2, 64) == HEARTH_OK);
    while (!hearth_gen_done(g[0]) || !hearth_gen_done(g[1])) {
        int32_t tok;
        for (int i = 0; i < 2; i++)
            if (hearth_gen_prompt_left(g[i]) == 0) REQUIRE(hearth_gen_next_token(g[i], &tok) == 0);
        REQUIRE(hearth_gen_step(g, 2, 64) == HEARTH_OK);
    }
    CHECK(t1.n == alone.n && (t1.n == 0 || !memcmp(t1.p, alone.p, t1.n)));
    CHECK(is_object_prefix(t1.p, t1.n));
    hearth_gen_free(g[0]);
    hearth_gen_free(g[1]);
    free(alone.p), free(t1.p), free(t2.p);
    hearth_sampler_free(a);
    hearth_sampler_free(b);
    hearth_session_free(s1);
    hearth_session_free(s2);
}

int main(void) {
    hearth_model *m = load_synth();
    generations(m);
    cut_short(m);
    batched(m);
    /* A sampler keeps its table alive after the model is gone. */
    hearth_sampling smp = hearth_sampling_default_params();
    smp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
    hearth_sampler *a = NULL;
    REQUIRE(hearth_sampler_new(m, &smp, &a) == HEARTH_OK);
    hearth_model_free(m);
    hearth_sampler_free(a);
    return test_done("json_mode");
}
