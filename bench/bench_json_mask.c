/*
 * bench_json_mask.c - what JSON mode (the schema {"type":"object"}) costs per generated token on a
 * real vocabulary (a vocab-only GGUF such as ../shared/conformance/tokenizer/
 * ggml-vocab-qwen2.gguf): building the token table (once per sampler), a
 * mask computed from scratch in states of every kind (the cache missed), a
 * mask found in the cache, and a whole draw (mask + sampler chain) beside
 * the same draw without the constraint. Then the same for a JSON Schema
 * (src/sampling/json_schema_mask.c): masks from scratch and cached in states
 * of every kind, and the mean cost per token over a whole document fed
 * token by token (the cache as generation uses it).
 *
 *   bench_json_mask VOCAB.gguf [repeats]
 */
#include "bench_vocab.h"
#include "sampling/json_schema.h"

#include <math.h>

/* Output so far (and its schema: NULL for the table's) -> the state the
 * next mask is computed in. */
typedef struct state_case {
    const char *name, *text, *schema;
} state_case;

static const state_case states[] = {
    {"start", "", NULL},
    {"after {", "{", NULL},
    {"in a key", "{\"na", NULL},
    {"after a key", "{\"name\"", NULL},
    {"after :", "{\"name\":", NULL},
    {"in a string", "{\"name\": \"Ada Lovel", NULL},
    {"in a number", "{\"n\": 12", NULL},
    {"after a value", "{\"n\": [1, true", NULL},
    {"in \\u", "{\"s\": \"\\u00", NULL},
    {"in a literal", "{\"b\": fal", NULL},
};

/* ---- JSON Schema ------------------------------------------------------------ */

static const char *const schema =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":40},"
    "\"age\":{\"type\":\"integer\"},\"city\":{\"enum\":[\"Paris\",\"Berlin\",\"Tokyo\"]},"
    "\"bio\":{\"type\":\"string\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":3},"
    "\"pet\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"object\",\"properties\":{\"kind\":"
    "{\"const\":\"cat\"},\"lives\":{\"type\":\"integer\"}},\"required\":[\"kind\"]}]},"
    "\"extra\":{}},"
    "\"required\":[\"name\",\"age\",\"city\"],\"additionalProperties\":false}";

/* States where the shortcuts do not apply (the walk visits every token):
 * an additional key beside declared ones, and a string two alternatives
 * are still reading. */
static const char *const extra_keys =
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
    "\"additionalProperties\":true}";
static const char *const two_strings =
    "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":30},{\"type\":\"string\",\"minLength\":"
    "2}]}";

static const state_case schema_states[] = {
    {"start", "", NULL},
    {"after {", "{", NULL},
    {"in a key", "{\"na", NULL},
    {"after a key", "{\"name\"", NULL},
    {"after :", "{\"name\":", NULL},
    {"in maxLength str", "{\"name\": \"Ada Lovel", NULL},
    {"in a free string", "{\"name\": \"A\", \"age\": 3, \"city\": \"Paris\", \"bio\": \"She w",
     NULL},
    {"in an integer", "{\"name\": \"A\", \"age\": 3", NULL},
    {"in an enum", "{\"name\": \"A\", \"age\": 3, \"city\": \"Be", NULL},
    {"after a value", "{\"name\": \"A\", \"age\": 3, \"city\": \"Paris\"", NULL},
    {"array of str", "{\"name\": \"A\", \"age\": 3, \"city\": \"Paris\", \"tags\": [\"x\", ", NULL},
    {"anyOf start", "{\"name\": \"A\", \"age\": 3, \"city\": \"Paris\", \"pet\": ", NULL},
    {"any value", "{\"name\": \"A\", \"age\": 3, \"city\": \"Paris\", \"extra\": [{\"k\": ", NULL},
    {"key start, +extra", "{\"a\": 1, \"", extra_keys},
    {"additional key", "{\"a\": 1, \"some k", extra_keys},
    {"2 readings str", "\"Once upon", two_strings},
};

static const char *const schema_doc =
    "{\"name\": \"H\xc3\xa9l\xc3\xa8ne \\\"the cat\\\" Dupont\", \"age\": 42, \"city\": "
    "\"Tokyo\", \"bio\": \"Born in Lyon in 1970, she studied mathematics and later taught "
    "at the university for twenty years.\", \"tags\": [\"a b\", \"\\u00e9t\xc3\xa9\"], "
    "\"pet\": {\"kind\": \"cat\", \"lives\": 9}, \"extra\": {\"k\": [1, 2.5, null]}}";

/* Reaches text token by token in a fresh constraint (empty cache) of the
 * schema, JSON mode's (as the sampler makes it: {"type":"object"}) when
 * NULL. */
static smp_schemac *schema_at(const tok_vocab *tv, const smp_vocab *v, const char *text,
                              const char *schema_text) {
    smp_schema *s = NULL;
    smp_schemac *c = NULL;
    if (schema_text ? smp_schema_compile(schema_text, &s) : smp_schema_json_object(&s)) return NULL;
    if (smp_schemac_new(v, s, &c)) return NULL;
    int32_t ids[256];
    const int n_ids = bench_tokens(tv, text, ids, 256);
    bool ok = n_ids >= 0;
    for (int k = 0; ok && k < n_ids; k++)
        if (!(ok = smp_schemac_advance(c, ids[k])))
            fprintf(stderr, "'%s': token %d refused\n", text, (int)ids[k]);
    if (ok) return c;
    smp_schemac_free(c);
    return NULL;
}

/* A mask from scratch (a fresh constraint) and cached in each state, the
 * schema's where the case names none; the worst from scratch in *worst. */
static int state_table(const tok_vocab *tv, const smp_vocab *v, const state_case *cases, size_t n,
                       int width, const char *schema_text, int reps, double *worst) {
    printf("%-*s %8s %12s %12s\n", width, "state", "allowed", "walk ms", "cached ms");
    for (size_t i = 0; i < n; i++) {
        double best = 1e30, cached = 1e30;
        int32_t n_allowed = 0;
        for (int r = 0; r < reps; r++) {
            smp_schemac *c =
                schema_at(tv, v, cases[i].text, cases[i].schema ? cases[i].schema : schema_text);
            if (!c) return 1;
            double t0 = bench_now_s();
            smp_schemac_mask(c, &n_allowed);
            best = fmin(best, (bench_now_s() - t0) * 1e3);
            t0 = bench_now_s();
            smp_schemac_mask(c, &n_allowed);
            cached = fmin(cached, (bench_now_s() - t0) * 1e3);
            smp_schemac_free(c);
        }
        *worst = fmax(*worst, best);
        printf("%-*s %8d %12.3f %12.4f\n", width, cases[i].name, (int)n_allowed, best, cached);
    }
    return 0;
}

static int schema_bench(const tok_vocab *tv, const smp_vocab *v, int reps) {
    printf("\njson schema (%zu bytes):\n", strlen(schema));
    double worst = 0;
    if (state_table(tv, v, schema_states, sizeof schema_states / sizeof *schema_states, 18, schema,
                    reps, &worst))
        return 1;
    /* A whole document token by token, the cache kept: what generation pays. */
    int32_t ids[512];
    const int n_ids = bench_tokens(tv, schema_doc, ids, 512);
    if (n_ids < 0) return 1;
    double best_total = 1e30, best_max = 1e30;
    for (int r = 0; r < reps; r++) {
        smp_schemac *c = schema_at(tv, v, "", schema);
        if (!c) return 1;
        double total = 0, mx = 0;
        for (int k = 0; k <= n_ids; k++) {
            int32_t n_allowed;
            const double t0 = bench_now_s();
            smp_schemac_mask(c, &n_allowed);
            const double ms = (bench_now_s() - t0) * 1e3;
            total += ms;
            mx = fmax(mx, ms);
            if (k < n_ids && !smp_schemac_advance(c, ids[k])) return 1;
        }
        if (!smp_schemac_done(c)) return 1;
        best_total = fmin(best_total, total);
        best_max = fmin(best_max, mx);
        smp_schemac_free(c);
    }
    printf("document of %d tokens, masks token by token (cache kept): %.3f ms per token "
           "(worst %.3f ms), compile + masks %.1f ms in all\n",
           n_ids, best_total / (double)(n_ids + 1), best_max, best_total);
    double best_compile = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_now_s();
        smp_schema *s = NULL;
        if (smp_schema_compile(schema, &s)) return 1;
        smp_schema_free(s);
        best_compile = fmin(best_compile, (bench_now_s() - t0) * 1e3);
    }
    printf("schema compile: %.3f ms; worst state from scratch: %.3f ms\n", best_compile, worst);
    return 0;
}

int main(int argc, char **argv) {
    int reps;
    tok_vocab *tv = NULL;
    const int rc_open = bench_vocab_open(argc, argv, 20, &tv, &reps);
    if (rc_open) return rc_open;
    const int n_vocab = tok_n_vocab(tv);
    smp_vocab *v = NULL;
    double best_build = 1e30;
    for (int r = 0; r < 5; r++) {
        smp_vocab_free(v);
        const double t0 = bench_now_s();
        if (smp_vocab_new(n_vocab, tok_piece_shown, tv, &v)) return 1;
        best_build = fmin(best_build, (bench_now_s() - t0) * 1e3);
    }
    printf("%s: %d tokens; table built in %.2f ms (best of 5)\n", argv[1], n_vocab, best_build);
    double worst = 0;
    if (state_table(tv, v, states, sizeof states / sizeof *states, 16, NULL, reps, &worst))
        return 1;
    /* A draw with and without the constraint (its mask cached, as in most
     * steps): default chain, random logits. */
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    if (!logits) return 1;
    unsigned long long x = 88172645463325252ULL;
    for (int i = 0; i < n_vocab; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        logits[i] = (float)(x >> 40) / (float)(1 << 24) * 20.0f - 10.0f;
    }
    for (int json = 0; json < 2; json++) {
        smp_params p = smp_default_params();
        p.seed = 1;
        if (json) p.constraint = SMP_CONSTRAINT_JSON_OBJECT, p.vocab = v;
        smp_sampler *s = NULL;
        if (smp_new(n_vocab, &p, &s)) return 1;
        int32_t ids[64];
        const int n_ids = bench_tokens(tv, "{\"name\": \"Ada", ids, 64);
        if (n_ids < 0) return 1;
        for (int k = 0; json && k < n_ids; k++)
            if (smp_advance(s, ids[k])) return 1;
        double best = 1e30;
        for (int r = 0; r < reps * 5; r++) {
            const double t0 = bench_now_s();
            const int32_t id = smp_sample(s, logits);
            best = fmin(best, (bench_now_s() - t0) * 1e3);
            if (id < 0) return 1;
        }
        printf("draw (default chain) %s: %.3f ms\n",
               json ? "json mode in a string, mask cached" : "free text", best);
        smp_free(s);
    }
    free(logits);
    const int rc = schema_bench(tv, v, reps);
    smp_vocab_free(v);
    tok_vocab_free(tv);
    return rc;
}
