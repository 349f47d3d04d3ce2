/*
 * test_gbnf_gen.c - GBNF grammars end to end:
 *   - through the public API on a model with random weights (hearth synth;
 *     its vocabulary has byte tokens, so characters outside its pieces come
 *     as partial UTF-8): for several grammars, seeds and temperatures
 *     (greedy included) a generation that stops is a whole text of the
 *     grammar and one cut by max_tokens a viable prefix (the Earley
 *     reference, gbnf_ref.h); a grammar with nothing after its text ends the
 *     generation by itself; a reset reproduces the output;
 *   - the program: `hearth run --grammar` / `--grammar-file` print a text of
 *     the grammar; a bad grammar, two grammars, or one beside --json or
 *     --json-schema exit 2 with a message naming the problem;
 *   - on real vocabularies (../shared/conformance/tokenizer: qwen2,
 *     llama-bpe, llama-spm, gemma3; skipped when absent): a sampler with
 *     random logits under each grammar produces accepted texts, and along the
 *     way the masks agree with the reference on every allowed token and a
 *     sample of refused ones (plus every end-of-generation token).
 */
#include "gbnf_ref.h"
#include "gen_collect.h"
#include "hearth.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "sampling/gbnf.h"
#include "sampling/sampling.h"
#include "shared_vocab.h"
#include "test.h"
#include "test_sh.h"
#include "tokenizer/tokenizer.h"

#include <unistd.h>

static const char *grammars[] = {
    /* arithmetic */
    "root ::= expr\nexpr ::= term ([-+] term)*\nterm ::= factor ([*/] factor)*\n"
    "factor ::= [0-9]{1,3} | \"(\" expr \")\"\n",
    /* a list */
    "root ::= (\"- \" item \"\\n\"){1,4}\nitem ::= [A-Za-z] [a-z ]{0,12}\n",
    /* JSON, written here */
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"
    "object ::= \"{\" ( string \":\" ws value (\",\" ws string \":\" ws value){0,3} )? \"}\"\n"
    "array  ::= \"[\" ( value (\",\" ws value){0,3} )? \"]\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1F] | \"\\\\\" [\"\\\\nt] ){0,10} \"\\\"\"\n"
    "number ::= \"-\"? [0-9]{1,4}\n"
    "ws ::= \" \"?\n",
    /* characters that need several bytes, byte-fallback tokens on synth */
    "root ::= (\"é\" | [日本語] | \"\\U0001F600\" | [a-c]){1,6} \"!\"\n",
    /* nothing can follow: the generation ends without an EOG token */
    "root ::= \"yes\" | \"no\" | \"maybe\"\n",
};
enum { N_GRAMMARS = sizeof grammars / sizeof *grammars };

static int verdict(const char *grammar, const char *text, size_t n) {
    smp_grammar *g = NULL;
    REQUIRE(smp_grammar_compile(grammar, &g) == HEARTH_OK);
    ref_g r = ref_new(g);
    const int v = ref_check(&r, text, n);
    ref_free(&r);
    smp_grammar_free(g);
    return v;
}

static char model_path[64];

/* A random-weight model, written to model_path (removed at the end). */
static hearth_model *load_synth(void) {
    snprintf(model_path, sizeof model_path, "/tmp/hearth-test-gbnf-%d.gguf", (int)getpid());
    synth_params p = synth_default_params();
    p.type = KERN_Q8_0;
    p.n_ctx = 1024;
    REQUIRE(synth_write(model_path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(model_path, NULL, &m) == HEARTH_OK);
    return m;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 16);
    REQUIRE(f && buf);
    *n = fread(buf, 1, (1 << 16) - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

static void program(void) {
    const char *bin = HEARTH_BINARY;
    char gfile[80], out[80], err[80];
    snprintf(gfile, sizeof gfile, "/tmp/hearth-test-gbnf-%d.gbnf", (int)getpid());
    snprintf(out, sizeof out, "/tmp/hearth-test-gbnf-%d.out", (int)getpid());
    snprintf(err, sizeof err, "/tmp/hearth-test-gbnf-%d.err", (int)getpid());
    FILE *f = fopen(gfile, "w");
    REQUIRE(f);
    fputs(grammars[1], f);
    fclose(f);
    for (int seed = 1; seed <= 3; seed++) {
        for (int from_file = 0; from_file < 2; from_file++) {
            const int rc =
                from_file ? test_sh("'%s' run -m '%s' -p Hi -n 100 --seed %d --grammar-file '%s' "
                                    ">'%s' 2>'%s'",
                                    bin, model_path, seed, gfile, out, err)
                          : test_sh("'%s' run -m '%s' -p Hi -n 100 --seed %d --grammar "
                                    "'root ::= (\"yes\" | \"no\") \", \" [a-z]{2,6} \".\"' "
                                    ">'%s' 2>'%s'",
                                    bin, model_path, seed, out, err);
            CHECKF(rc == 0, "hearth run --grammar%s: exit %d", from_file ? "-file" : "", rc);
            size_t n;
            char *text = slurp(out, &n);
            /* stdout is the text alone (the figures go to stderr) */
            const char *g =
                from_file ? grammars[1] : "root ::= (\"yes\" | \"no\") \", \" [a-z]{2,6} \".\"";
            CHECKF(verdict(g, text, n) == 2, "seed %d: '%s'", seed, text);
            free(text);
        }
    }
    static const struct {
        const char *args, *needle;
    } bad[] = {
        {"--grammar 'root ::= foo'", "--grammar: grammar: 1:10: undefined rule 'foo'"},
        {"--grammar 'root ::= \"a\"' --grammar 'root ::= \"b\"'", "give one grammar"},
        {"--grammar 'root ::= \"a\"' --json", "--json cannot be combined with --grammar"},
        {"--json --grammar 'root ::= \"a\"'", "cannot be combined with --json"},
        {"--json-schema /dev/null --grammar 'root ::= \"a\"'", "cannot be combined"},
        {"--grammar-file /nonexistent/x.gbnf", "--grammar-file '/nonexistent/x.gbnf'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const int rc = test_sh("'%s' run -m '%s' -p Hi -n 4 %s >'%s' 2>'%s'", bin, model_path,
                               bad[i].args, out, err);
        size_t n;
        char *msg = slurp(err, &n);
        CHECKF(rc == 2 && strstr(msg, bad[i].needle), "%s: exit %d, '%s'", bad[i].args, rc, msg);
        free(msg);
    }
    unlink(gfile);
    unlink(out);
    unlink(err);
}

static void generations(hearth_model *m) {
    int32_t ids[64];
    size_t n = 0;
    const char *prompt = "Write something:";
    REQUIRE(hearth_tokenize(m, prompt, strlen(prompt), true, false, ids, 64, &n) == HEARTH_OK);
    hearth_session_params sp = {.n_ctx = 1024};
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    static const float temps[] = {0.0f, 0.8f, 1.5f};
    for (int gi = 0; gi < N_GRAMMARS; gi++) {
        int n_stop = 0, n_runs = 0;
        for (size_t ti = 0; ti < sizeof temps / sizeof *temps; ti++) {
            for (uint64_t seed = 1; seed <= 4; seed++) {
                if (temps[ti] == 0.0f && seed > 1) break;
                hearth_sampling smp = hearth_sampling_default_params();
                smp.temperature = temps[ti];
                smp.seed = seed;
                smp.top_k = 0, smp.top_p = 1.0f, smp.min_p = 0.0f;
                smp.constraint = HEARTH_CONSTRAINT_GRAMMAR;
                smp.grammar = grammars[gi];
                hearth_sampler *a = NULL;
                REQUIRE(hearth_sampler_new(m, &smp, &a) == HEARTH_OK);
                hearth_gen_params gp = {.max_tokens = 200};
                collected c = {0};
                hearth_gen_result r;
                REQUIRE(hearth_generate(s, a, ids, (int)n, &gp, collect, &c, &r) == HEARTH_OK);
                const int v = verdict(grammars[gi], c.text, c.len);
                n_runs++;
                if (r.finish == HEARTH_FINISH_STOP) {
                    n_stop++;
                    CHECKF(v == 2, "grammar %d T %.1f seed %d: stopped at '%s', not a whole text",
                           gi, (double)temps[ti], (int)seed, c.text);
                } else {
                    CHECKF(r.finish == HEARTH_FINISH_LENGTH && v >= 1,
                           "grammar %d T %.1f seed %d: finish %d, '%s' is not a prefix", gi,
                           (double)temps[ti], (int)seed, (int)r.finish, c.text);
                }
                if (gi == N_GRAMMARS - 1)
                    CHECKF(r.finish == HEARTH_FINISH_STOP &&
                               (!strcmp(c.text, "yes") || !strcmp(c.text, "no") ||
                                !strcmp(c.text, "maybe")),
                           "'%s'", c.text);
                if (seed == 2) { /* a reset starts the grammar over: the same text */
                    hearth_sampler_reset(a);
                    collected d = {0};
                    REQUIRE(hearth_generate(s, a, ids, (int)n, &gp, collect, &d, &r) == HEARTH_OK);
                    CHECK(d.len == c.len && !memcmp(d.text, c.text, c.len));
                }
                hearth_sampler_free(a);
            }
        }
        printf("grammar %d: %d of %d generations completed their text\n", gi, n_stop, n_runs);
        CHECKF(n_stop >= 2, "grammar %d: only %d completed", gi, n_stop);
    }
    /* a bad grammar fails hearth_sampler_new as hearth_grammar_check does */
    hearth_sampling smp = hearth_sampling_default_params();
    smp.constraint = HEARTH_CONSTRAINT_GRAMMAR;
    smp.grammar = "root ::= [a-";
    hearth_sampler *a = NULL;
    CHECK(hearth_sampler_new(m, &smp, &a) == HEARTH_ERR_INVALID_ARG && !a);
    CHECK(strstr(hearth_last_error(), "1:10: unterminated character class") != NULL);
    hearth_session_free(s);
}

/* ---- real vocabularies ------------------------------------------------------ */

/* The constraint's mask at the current output (out[0, n), whose whole
 * characters are in the chart up to byte `done`) against the reference:
 * every end-of-generation token and about 4000 others picked at random. */
static void check_mask(const char *name, const smp_vocab *v, const tok_vocab *tv, ref_g *r,
                       ref_chart *chart, const char *out, size_t done, size_t n,
                       const uint32_t *mask, unsigned long long *rs) {
    const int32_t n_vocab = smp_vocab_n(v);
    const unsigned long long every = (unsigned long long)n_vocab / 4000 + 1;
    char *buf = malloc(n - done + SMP_VOCAB_PIECE_MAX + 8);
    REQUIRE(buf);
    memcpy(buf, out + done, n - done);
    int bad = 0, n_checked = 0, n_allowed = 0;
    for (int32_t id = 0; id < n_vocab; id++) {
        const bool got = mask[id / 32] >> (id % 32) & 1;
        bool eog = false;
        char piece[SMP_VOCAB_PIECE_MAX + 1];
        const size_t len = tok_piece_shown(tv, id, piece, sizeof piece, &eog);
        if (!eog && test_rand_u64(rs) % every != 0) continue;
        bool want;
        if (eog) {
            want = ref_chart_try(r, chart, buf, n - done) == 2;
        } else if (len == 0 || len > SMP_VOCAB_PIECE_MAX) {
            want = false;
        } else {
            memcpy(buf + (n - done), piece, len);
            want = ref_chart_try(r, chart, buf, n - done + len) >= 1;
        }
        n_checked++;
        n_allowed += got;
        if (got != want && bad++ < 5)
            CHECKF(false, "%s: after '%.*s' token %d '%.*s': mask %d, reference %d", name, (int)n,
                   out, (int)id, (int)len, piece, got, want);
    }
    CHECK(n_checked > 1000);
    free(buf);
}

static void real_vocab(const char *name) {
    hearth_err err;
    tok_vocab *tv = shared_vocab(name, &err);
    REQUIRE(err == HEARTH_OK);
    if (!tv) return;
    const int n_vocab = tok_n_vocab(tv);
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, tok_piece_shown, tv, &v) == HEARTH_OK);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    REQUIRE(logits);
    unsigned long long rs = 0x1234567ull;
    for (int gi = 0; gi < N_GRAMMARS; gi++) {
        smp_grammar *g = NULL;
        REQUIRE(smp_grammar_compile(grammars[gi], &g) == HEARTH_OK);
        ref_g r = ref_new(g);
        int n_stop = 0;
        for (uint64_t seed = 1; seed <= 3; seed++) {
            smp_params p = smp_default_params();
            p.temperature = 1.0f;
            p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f;
            p.seed = seed;
            p.constraint = SMP_CONSTRAINT_GRAMMAR;
            p.grammar = grammars[gi];
            p.vocab = v;
            smp_sampler *s = NULL;
            REQUIRE(smp_new(n_vocab, &p, &s) == HEARTH_OK);
            /* a constraint fed the same tokens: its masks are checked */
            smp_grammar *g2 = NULL;
            smp_gramc *c = NULL;
            REQUIRE(smp_grammar_compile(grammars[gi], &g2) == HEARTH_OK);
            REQUIRE(smp_gramc_new(v, g2, &c) == HEARTH_OK);
            char out[8192];
            size_t n = 0, done = 0;
            ref_chart chart;
            ref_chart_init(&r, &chart);
            int step = 0;
            for (; step < 150; step++) {
                if (seed == 1 && step % 8 == 0 && step <= 24) {
                    int32_t n_allowed;
                    const uint32_t *mask = smp_gramc_mask(c, &n_allowed);
                    REQUIRE(mask);
                    check_mask(name, v, tv, &r, &chart, out, done, n, mask, &rs);
                }
                for (int i = 0; i < n_vocab; i++) logits[i] = test_rand_f(&rs) * 4.0f;
                const int32_t id = smp_sample(s, logits);
                REQUIRE(id >= 0);
                bool eog = false;
                char piece[SMP_VOCAB_PIECE_MAX + 1];
                const size_t len = tok_piece_shown(tv, id, piece, sizeof piece, &eog);
                if (eog) break;
                REQUIRE(smp_advance(s, id) == HEARTH_OK);
                REQUIRE(smp_gramc_advance(c, id));
                REQUIRE(n + len < sizeof out);
                memcpy(out + n, piece, len);
                n += len;
                ref_chart_feed(&r, &chart, out, &done, n);
                if (smp_constraint_done(s)) break;
            }
            const int verdict_ = ref_check(&r, out, n);
            const bool stopped = step < 150;
            n_stop += stopped;
            CHECKF(stopped ? verdict_ == 2 : verdict_ >= 1, "%s grammar %d seed %d: '%.*s' (%d)",
                   name, gi, (int)seed, (int)n, out, verdict_);
            ref_chart_free(&chart);
            smp_gramc_free(c);
            smp_free(s);
        }
        /* random logits rarely pick an EOG token where arithmetic may end
         * (it competes with every digit and operator); the others are bounded */
        CHECKF(gi == 0 || n_stop >= 1, "%s grammar %d: no text completed", name, gi);
        ref_free(&r);
        smp_grammar_free(g);
    }
    free(logits);
    smp_vocab_free(v);
    tok_vocab_free(tv);
}

int main(void) {
    hearth_model *m = load_synth();
    generations(m);
    hearth_model_free(m);
    program();
    unlink(model_path);
    real_vocab("qwen2");
    real_vocab("llama-bpe");
    real_vocab("llama-spm");
    real_vocab("gemma3");
    return test_done("test_gbnf_gen");
}
