/*
 * bench_grammar.c - what a GBNF grammar constraint (src/sampling/gbnf*.c)
 * costs per generated token on a real vocabulary (a vocab-only GGUF such as
 * ../shared/conformance/tokenizer/ggml-vocab-qwen2.gguf): compiling the
 * grammar, making its constraint (the token classes, per sampler), a token mask computed in a given
 * state by a fresh constraint (empty recognizer tables: the first time a state is seen), a cached
 * mask, and the mean per token over a whole document fed token by token with a mask before each
 * (the caches as generation uses them).
 *
 *   bench_grammar VOCAB.gguf [repeats]
 */
#include "bench_vocab.h"
#include "sampling/gbnf.h"

#include <math.h>

static const char *const json_g =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" "
    "[0-9a-fA-F]{4}) )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

static const char *const list_g = "root ::= (\"- \" item \"\\n\"){1,10}\n"
                                  "item ::= [A-Za-z] [a-z ,']{0,80}\n";

static const char *const arith_g = "root ::= expr\n"
                                   "expr ::= term ([-+] term)*\n"
                                   "term ::= factor ([*/] factor)*\n"
                                   "factor ::= [0-9]+ | \"(\" expr \")\"\n";

static const char *const free_g = "root ::= [^\\n]* \"\\n\"\n";

static const struct {
    const char *name, *grammar, *text; /* text: the output before the mask */
} cases[] = {
    {"json: start", json_g, ""},
    {"json: after {", json_g, "{"},
    {"json: in a key", json_g, "{\"na"},
    {"json: after :", json_g, "{\"name\": "},
    {"json: in a string", json_g, "{\"name\": \"Ada Lovel"},
    {"json: in a number", json_g, "{\"n\": 12"},
    {"json: nested", json_g, "{\"a\": [{\"b\": [1, {\"c\": "},
    {"list: in an item", list_g, "- Milk\n- eggs, fl"},
    {"arith: after (", arith_g, "(1+(2*"},
    {"free line", free_g, "The quick brown fox"},
};

static const char *const doc =
    "{\"name\": \"Ada Lovelace\", \"born\": 1815, \"tags\": [\"math\", \"poetry\", null], "
    "\"notes\": {\"engine\": \"analytical\", \"ratio\": -0.25e2, \"ok\": true}, "
    "\"text\": \"She wrote the first algorithm \\u00e9 for a machine.\"}";

static smp_gramc *fresh(const smp_vocab *v, const char *grammar) {
    smp_grammar *g = NULL;
    smp_gramc *c = NULL;
    if (smp_grammar_compile(grammar, &g) || smp_gramc_new(v, g, &c)) {
        fprintf(stderr, "grammar: %s\n", hearth_last_error());
        return NULL;
    }
    return c;
}

static bool feed(const tok_vocab *tv, smp_gramc *c, const char *text) {
    int32_t ids[512];
    const int n = bench_tokens(tv, text, ids, 512);
    for (int k = 0; k < n; k++)
        if (!smp_gramc_advance(c, ids[k])) {
            fprintf(stderr, "'%s': token %d refused\n", text, (int)ids[k]);
            return false;
        }
    return n >= 0;
}

/* Per state: cold (a fresh constraint: empty tables, the mask from scratch)
 * and cached (the same mask again). */
static int state_bench(const tok_vocab *tv, const smp_vocab *v, int reps) {
    printf("%-20s %8s %10s %10s\n", "state", "allowed", "cold ms", "cached ms");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double cold = 1e30, cached = 1e30;
        int32_t n_allowed = 0;
        for (int r = 0; r < reps; r++) {
            smp_gramc *c = fresh(v, cases[i].grammar);
            if (!c || !feed(tv, c, cases[i].text)) return 1;
            double t0 = bench_now_s();
            if (!smp_gramc_mask(c, &n_allowed)) return 1;
            cold = fmin(cold, (bench_now_s() - t0) * 1e3);
            t0 = bench_now_s();
            smp_gramc_mask(c, &n_allowed);
            cached = fmin(cached, (bench_now_s() - t0) * 1e3);
            smp_gramc_free(c);
        }
        printf("%-20s %8d %10.3f %10.4f\n", cases[i].name, (int)n_allowed, cold, cached);
    }
    return 0;
}

/* The document token by token, a mask before each, as a generation does. */
static int doc_bench(const tok_vocab *tv, const smp_vocab *v, int reps) {
    int32_t ids[512];
    const int n = bench_tokens(tv, doc, ids, 512);
    if (n < 0) return 1;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        smp_gramc *c = fresh(v, json_g);
        if (!c) return 1;
        const double t0 = bench_now_s();
        for (int k = 0; k < n; k++) {
            int32_t n_allowed;
            const uint32_t *mask = smp_gramc_mask(c, &n_allowed);
            if (!mask || !(mask[ids[k] / 32] >> (ids[k] % 32) & 1) ||
                !smp_gramc_advance(c, ids[k])) {
                fprintf(stderr, "document token %d (%d) refused\n", k, (int)ids[k]);
                return 1;
            }
        }
        best = fmin(best, (bench_now_s() - t0) * 1e3 / (double)n);
        smp_gramc_free(c);
    }
    printf("json grammar, whole %d-token document: %.3f ms per token (mask + advance)\n", n, best);
    return 0;
}

int main(int argc, char **argv) {
    int reps;
    tok_vocab *tv = NULL;
    const int rc_open = bench_vocab_open(argc, argv, 5, &tv, &reps);
    if (rc_open) return rc_open;
    smp_vocab *v = NULL;
    if (smp_vocab_new(tok_n_vocab(tv), tok_piece_shown, tv, &v)) return 1;
    double compile = 1e30;
    for (int r = 0; r < 20; r++) {
        smp_grammar *g = NULL;
        const double t0 = bench_now_s();
        if (smp_grammar_compile(json_g, &g)) return 1;
        compile = fmin(compile, (bench_now_s() - t0) * 1e3);
        smp_grammar_free(g);
    }
    double create = 1e30;
    for (int r = 0; r < 5; r++) {
        const double t0 = bench_now_s();
        smp_gramc *c = fresh(v, json_g);
        if (!c) return 1;
        create = fmin(create, (bench_now_s() - t0) * 1e3);
        smp_gramc_free(c);
    }
    printf("%s: %d tokens; json grammar compiled in %.3f ms, its constraint made in %.3f ms\n",
           argv[1], tok_n_vocab(tv), compile, create);
    int rc = state_bench(tv, v, reps);
    if (!rc) rc = doc_bench(tv, v, reps);
    smp_vocab_free(v);
    tok_vocab_free(tv);
    return rc;
}
