/*
 * test_gbnf.c - GBNF grammars (src/sampling/gbnf*.c):
 *   - the parser accepts a set of grammars (arithmetic, JSON, lists, bounds,
 *     classes, UTF-8) and refuses malformed ones naming line:column;
 *   - its semantics against POSIX regular expressions (regcomp, an
 *     independent implementation): regular grammars accept exactly the
 *     strings over a small alphabet that the equivalent ERE matches;
 *   - the stack recognizer against an Earley parser (gbnf_ref.h) on every
 *     string up to a length over small alphabets, byte by byte, partial
 *     UTF-8 included: viable prefix and whole text agree;
 *   - token masks on a synthetic vocabulary (every byte, byte-fallback
 *     pieces of characters, multi-character pieces, an end-of-generation
 *     token) along random paths: a token is allowed iff the output plus its
 *     bytes is viable for the reference, EOG iff the output is whole; the
 *     recognizer's tables flushed on the way give the same masks;
 *   - limits: pathological grammars are errors, not hangs.
 */
#include "gbnf_ref.h"
#include "hearth.h"
#include "sampling/gbnf.h"
#include "sampling/sampling.h"
#include "test.h"

#include <regex.h>

static smp_grammar *compile_ok(const char *text) {
    smp_grammar *g = NULL;
    const hearth_err err = smp_grammar_compile(text, &g);
    CHECKF(err == HEARTH_OK, "grammar refused: %s\n---\n%s", hearth_last_error(), text);
    return err ? NULL : g;
}

/* The recognizer's verdict on bytes: 0 not viable, 1 viable, 2 whole. */
static int match(gbnf_m *m, const char *s, size_t n) {
    uint32_t st = gbnf_m_start(m);
    for (size_t i = 0; i < n; i++) {
        st = gbnf_m_step(m, st, (uint8_t)s[i]);
        if (st == GBNF_FULL) {
            gbnf_m_flush(m, gbnf_m_start(m)); /* not expected in these small tests */
            CHECK(false);
            return -1;
        }
        if (st == GBNF_DEAD || st == GBNF_OVER) return 0;
    }
    return gbnf_m_can_end(m, st) ? 2 : 1;
}

static int match_text(const char *grammar, const char *s) {
    smp_grammar *g = compile_ok(grammar);
    if (!g) return -1;
    gbnf_m *m = NULL;
    REQUIRE(gbnf_m_new(g, &m) == HEARTH_OK);
    const int r = match(m, s, strlen(s));
    gbnf_m_free(m);
    smp_grammar_free(g);
    return r;
}

/* ---- grammars the parser must accept ------------------------------------------- */

static const char *arith = "# arithmetic\n"
                           "root  ::= expr\n"
                           "expr  ::= term (ws? [-+] ws? term)*\n"
                           "term  ::= factor (ws? [*/] ws? factor)*\n"
                           "factor ::= number | \"(\" ws? expr ws? \")\" | \"-\" factor\n"
                           "number ::= [0-9]+ (\".\" [0-9]+)?\n"
                           "ws ::= [ \\t]+\n";

static const char *json_g =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::=\n"
    "  \"{\" ws (\n"
    "            string \":\" ws value\n"
    "    (\",\" ws string \":\" ws value)*\n"
    "  )? \"}\" ws\n"
    "array  ::=\n"
    "  \"[\" ws (\n"
    "            value\n"
    "    (\",\" ws value)*\n"
    "  )? \"]\" ws\n"
    "string ::=\n"
    "  \"\\\"\" (\n"
    "    [^\"\\\\\\x7F\\x00-\\x1F] |\n"
    "    \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) # escapes\n"
    "  )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] "
    "[1-9]{0,15})? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

static const char *list_g = "root ::= (\"- \" item)+\n"
                            "item ::= [^\\n]+ \"\\n\"\n";

static void accepted_grammars(void) {
    static const char *ok[] = {
        "root ::= \"a\"",
        "root::=\"a\"|\"b\"",
        "root ::= \"\"",
        "root ::= |",
        "root ::= x\r\nx ::= \"y\"\r\n",
        "  # leading comment\n\nroot ::= [a-z]{2,5} [0-9]{3} \"x\"{0,2} \"y\"{1,} # trailing\n",
        "root ::= ( \"a\"\n  | \"b\" # inside\n  )*",
        "root ::= [\\x00-\\x7F] [\\u00e9] [\\U0001F600] \"\\[\\]\\\\\\\"\"",
        "root ::= \"héllo wörld 日本 😀\" [ぁ-ゟ]+",
        "root ::= [^\\n] . [-a] [a-] [\\]] [^]",
        "root ::= a_b\na_b ::= \"under_score\" A-1\nA-1 ::= \"x\"",
        "root ::= (\"a\"?)* \"b\"",    /* a nullable repetition: fine */
        "root ::= x\nx ::= x | \"y\"", /* reaches itself as its last symbol: fine */
        "root ::= \"a\"{0} \"b\"{1} \"c\"{0,0} \"d\"{2,2}",
        "root ::= (\"abc\"{3}){2,}",
        "root ::= (((\"a\"{1000}){1000}){1000}){1000}", /* small: groups are rules */
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        smp_grammar *g = compile_ok(ok[i]);
        smp_grammar_free(g);
        CHECKF(hearth_grammar_check(ok[i]) == HEARTH_OK, "%s", ok[i]);
    }
    smp_grammar_free(compile_ok(arith));
    smp_grammar_free(compile_ok(json_g));
    smp_grammar_free(compile_ok(list_g));

    /* what they accept, spot checks by hand */
    CHECK(match_text(arith, "1+2*(3 - 4.5)/-6") == 2);
    CHECK(match_text(arith, "1+") == 1);
    CHECK(match_text(arith, "1+)") == 0);
    CHECK(match_text(json_g, "{\"a\": [1, -2.5e3, \"x\\u00e9\", true, null, {}]}") == 2);
    CHECK(match_text(json_g, "{\"a\": [1,]") == 0);
    CHECK(match_text(json_g, "{\"a\\q") == 0);
    CHECK(match_text(list_g, "- one\n- two\n") == 2);
    CHECK(match_text(list_g, "- one\n-") == 1);
    CHECK(match_text(list_g, "- \n") == 0);
    CHECK(match_text("root ::= \"héllo\" [ぁ-ゟ]+", "héllo") == 1);
    CHECK(match_text("root ::= \"héllo\" [ぁ-ゟ]+", "hélloあい") == 2);
    CHECK(match_text("root ::= \"héllo\" [ぁ-ゟ]+", "hélloア") == 0);
    CHECK(match_text("root ::= \"héllo\" [ぁ-ゟ]+", "h\xC3") == 1);     /* partial é */
    CHECK(match_text("root ::= \"héllo\" [ぁ-ゟ]+", "h\xC3\xA8") == 0); /* è */
    CHECK(match_text("root ::= \"\\U0001F600\"", "\xF0\x9F\x98\x80") == 2);
    CHECK(match_text("root ::= \"\\U0001F600\"", "\xF0\x9F\x98") == 1);
    CHECK(match_text("root ::= \"\\U0001F600\"", "\xF0\x9F\x99") == 0);
    CHECK(match_text("root ::= [^a]", "\xC0\x80") == 0);     /* overlong NUL */
    CHECK(match_text("root ::= [^a]", "\xED\xA0\x80") == 0); /* a surrogate */
    CHECK(match_text("root ::= [^a]", "\xED\x9F\xBF") == 2);
    CHECK(match_text("root ::= .", "\xF4\x90") == 0); /* above U+10FFFF */
    CHECK(match_text("root ::= \"a\"{2,3}", "aaa") == 2);
    CHECK(match_text("root ::= \"a\"{2,3}", "aaaa") == 0);
    CHECK(match_text("root ::= \"ab\"*", "aba") == 1);
    CHECK(match_text("root ::= \"ab\"*", "") == 2);
    CHECK(match_text("root ::= [a-c]{2}?", "") == 2); /* ? applies to the whole {2} */
    CHECK(match_text("root ::= [a-c]{2}?", "a") == 1);
    CHECK(match_text("root ::= [a-c]{2}?", "ab") == 2);
    CHECK(match_text("root ::= \"x\" # \"y\"\n", "x") == 2);
}

/* ---- grammars the parser must refuse --------------------------------------------- */

static void refused(const char *text, const char *want) {
    smp_grammar *g = NULL;
    const hearth_err err = smp_grammar_compile(text, &g);
    CHECKF(err == HEARTH_ERR_INVALID_ARG, "accepted: %s", text);
    if (!err) {
        smp_grammar_free(g);
        return;
    }
    CHECKF(strstr(hearth_last_error(), want) != NULL, "grammar %s\nwant '%s'\ngot  '%s'", text,
           want, hearth_last_error());
    CHECK(hearth_grammar_check(text) == HEARTH_ERR_INVALID_ARG);
}

static void refused_grammars(void) {
    refused("root ::= foo", "1:10: undefined rule 'foo'");
    refused("a ::= \"x\"", "no rule named 'root'");
    refused("", "no rule named 'root'");
    refused("root ::= \"abc", "1:10: unterminated string");
    refused("root ::= \"a\"\nx ::= [a-z", "2:7: unterminated character class");
    refused("root ::= \"\\q\"", "1:11: unknown escape '\\q'");
    refused("root ::= \"\\x4\"", "1:11: '\\x' needs 2 hex digits");
    refused("root ::= \"\\uD800\"", "1:11: code point U+D800 is a surrogate");
    refused("root ::= \"\\U00110000\"", "1:11: code point U+110000 is above U+10FFFF");
    refused("root ::= \"a\"{3,2}", "1:13: repetition {3,2}: the maximum is below the minimum");
    refused("root ::= \"a\"{,2}", "1:14: expected a number in the repetition");
    refused("root ::= \"a\"{2", "1:15: expected ',' or '}' in the repetition");
    refused("root ::= \"a\"{10001}", "1:14: repetition count above 10000");
    refused("root ::= * \"a\"", "1:10: '*' has nothing before it to repeat");
    refused("root ::= [z-a]", "1:11: range U+007A-U+0061 is reversed");
    refused("root ::= [^\\x00-\\U0010FFFF]", "1:10: the character class matches no character");
    refused("root ::= ( \"a\"", "1:10: unclosed '('");
    refused("root ::= \"a\" )", "1:14: ')' without a matching '('");
    refused("root ::= \"a\"\nroot ::= \"b\"", "2:1: rule 'root' is defined twice");
    refused("root ::= \"a\"\n  | \"b\"", "2:3: expected a rule name");
    refused("root ::= \"a\" \"b\"\n\"c\"", "2:1: expected a rule name");
    refused("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"",
            "2:1: rule 'expr' is left-recursive");
    refused("root ::= a\na ::= b \"x\"\nb ::= \"\" | a", "left-recursive");
    refused("root ::= x\nx ::= \"a\" x", "2:1: rule 'x' can never complete");
    refused("root ::= \"é\" foo", "1:14: undefined rule 'foo'"); /* columns in characters */
    refused("root ::= \"a\" ::= \"b\"", "1:14: unexpected ':'");
    refused("root \"a\"", "1:6: expected '::=' after the rule name");
    refused("root ::= \"\xC3\"", "1:11: invalid UTF-8 in the grammar text");
    refused("root ::= <think>", "1:10: unexpected '<'");
    /* limits */
    char *deep = malloc(4096);
    REQUIRE(deep);
    strcpy(deep, "root ::= ");
    for (int i = 0; i < 65; i++) strcat(deep, "(");
    strcat(deep, "\"a\"");
    for (int i = 0; i < 65; i++) strcat(deep, ")");
    refused(deep, "1:74: more than 64 nested parentheses");
    free(deep);
    refused("root ::= \"abcdefghijklmnopqrstuvwxyzabcd\"{10000}",
            "the grammar has more than 262144 symbols");
}

/* ---- semantics against POSIX regular expressions ------------------------------------ */

typedef struct re_case {
    const char *gbnf, *ere;
} re_case;

/* Every string over alpha of at most max_len characters: the grammar
 * accepts it whole iff the ERE matches all of it. */
static void regex_case(const re_case *c, const char *alpha, int max_len) {
    regex_t re;
    REQUIRE(regcomp(&re, c->ere, REG_EXTENDED | REG_NOSUB) == 0);
    smp_grammar *g = compile_ok(c->gbnf);
    if (!g) {
        regfree(&re);
        return;
    }
    gbnf_m *m = NULL;
    REQUIRE(gbnf_m_new(g, &m) == HEARTH_OK);
    const int k = (int)strlen(alpha);
    char s[16];
    int idx[16] = {0}, bad = 0, n_whole = 0;
    for (int len = 0; len <= max_len; len++) {
        memset(idx, 0, sizeof idx);
        for (;;) {
            for (int i = 0; i < len; i++) s[i] = alpha[idx[i]];
            s[len] = '\0';
            const bool want = regexec(&re, s, 0, NULL, 0) == 0;
            const bool got = match(m, s, (size_t)len) == 2;
            n_whole += got;
            if (want != got && bad++ < 5)
                CHECKF(false, "%s vs /%s/ on '%s': grammar %d, regex %d", c->gbnf, c->ere, s, got,
                       want);
            int i = 0;
            while (i < len && ++idx[i] == k) idx[i++] = 0;
            if (i == len) break;
        }
    }
    CHECKF(n_whole > 0, "%s accepts nothing here", c->gbnf); /* the case tests something */
    gbnf_m_free(m);
    smp_grammar_free(g);
    regfree(&re);
}

static void regex_semantics(void) {
    static const re_case cases[] = {
        {"root ::= \"a\" [bc]* \"a\"?", "^a[bc]*a?$"},
        {"root ::= (\"ab\" | \"c\"){2,3}", "^(ab|c){2,3}$"},
        {"root ::= [^a]+ (\"a\" \"b\"?){0,2}", "^[^a]+(ab?){0,2}$"},
        {"root ::= x x\nx ::= \"a\"* | \"b\" \"c\"?", "^(a*|bc?)(a*|bc?)$"},
        {"root ::= (\"a\"? \"b\"?)* \"c\"", "^(a?b?)*c$"},
        {"root ::= \"a\"{3} | \"b\"{2,} | \"c\"{1,2} \"a\"", "^(a{3}|b{2,}|c{1,2}a)$"},
        {"root ::= . \"b\" .?", "^.b.?$"},
        {"root ::= (\n  \"a\" # one\n  | \"bc\" # two\n)+ \"a\"", "^(a|bc)+a$"},
        {"root ::= ([a-b] [^a]){1,2} | \"\"", "^(([ab][^a]){1,2})?$"},
        {"root ::= \"ab\"* \"a\"{0,1}", "^(ab)*a?$"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) regex_case(&cases[i], "abc", 7);
}

/* ---- the recognizer against the Earley reference ------------------------------------- */

/* Every string of up to max_len pieces over the pieces in alpha (joined):
 * at every byte, recognizer and reference agree. */
static void brute_case(const char *gtext, const char *const *alpha, int n_alpha, int max_len) {
    smp_grammar *g = compile_ok(gtext);
    if (!g) return;
    ref_g r = ref_new(g);
    gbnf_m *m = NULL;
    REQUIRE(gbnf_m_new(g, &m) == HEARTH_OK);
    int idx[16] = {0}, bad = 0, n_whole = 0, n_viable = 0;
    char s[256];
    for (int len = 0; len <= max_len; len++) {
        memset(idx, 0, sizeof idx);
        for (;;) {
            size_t n = 0;
            for (int i = 0; i < len; i++) {
                const size_t l = strlen(alpha[idx[i]]);
                memcpy(s + n, alpha[idx[i]], l);
                n += l;
            }
            /* the last piece byte by byte (the others are prefixes of
             * earlier strings, checked there) */
            const size_t from = len ? n - strlen(alpha[idx[len - 1]]) + 1 : 0;
            for (size_t e = from; e <= n; e++) {
                const int want = ref_check(&r, s, e), got = match(m, s, e);
                n_whole += e == n && want == 2;
                n_viable += e == n && want >= 1;
                if (want != got && bad++ < 5)
                    CHECKF(false, "%s: '%.*s': recognizer %d, reference %d", gtext, (int)e, s, got,
                           want);
            }
            int i = 0;
            while (i < len && ++idx[i] == n_alpha) idx[i++] = 0;
            if (i == len) break;
        }
    }
    CHECKF(n_whole > 1 && n_viable > n_whole, "%s: %d whole, %d viable", gtext, n_whole, n_viable);
    gbnf_m_free(m);
    ref_free(&r);
    smp_grammar_free(g);
}

static void recognizer_vs_reference(void) {
    static const char *a1[] = {"1", "+", "(", ")", " ", "*"};
    brute_case("root ::= expr\n"
               "expr ::= term (\" \"? \"+\" \" \"? term)*\n"
               "term ::= atom (\"*\" atom)*\n"
               "atom ::= \"1\" | \"(\" expr \")\"\n",
               a1, 6, 6);
    static const char *a2[] = {"(", ")", "[", "]"};
    brute_case("root ::= x*\nx ::= \"(\" x* \")\" | \"[\" x* \"]\"", a2, 4, 8);
    static const char *a3[] = {"a",    "b",       "é", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                               "\xC3", "\xE2\x82"};
    brute_case("root ::= ([a-b] | [\\u00e0-\\u00ff] \"€\"?)+ [^a-z]?", a3, 7, 4);
    brute_case("root ::= (\"a\" | \"é\" \"\\U0001F600\"){1,3} \"€\"* \"b\"", a3, 7, 4);
    brute_case("root ::= s s\ns ::= (\"a\"? \"b\"?)* | \"é\"", a3, 7, 4);
    static const char *a4[] = {"{", "}", "[", "]", "\"", "a", ",", ":", "1", " "};
    brute_case(json_g, a4, 10, 5);
    static const char *a5[] = {"a", "b", "c"};
    brute_case("root ::= a | b\na ::= \"a\" a \"b\" | \"\"\nb ::= \"a\"{2,4} \"c\" | \"ab\"* c\n"
               "c ::= c2\nc2 ::= c3 | \"c\"\nc3 ::= c",
               a5, 3, 7);
}

/* ---- masks over a synthetic vocabulary --------------------------------------------------- */

typedef struct toy {
    const char **pieces;
    int n, eog;
} toy;

static size_t toy_piece(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog) {
    const toy *t = ctx;
    *eog = id == t->eog;
    const size_t n = strlen(t->pieces[id]);
    memcpy(buf, t->pieces[id], n < cap ? n : cap);
    return n;
}

/* A random walk of up to max_steps tokens, the mask at each step against the
 * reference on output + token. */
static void mask_case(const smp_vocab *v, const toy *t, const char *gtext, uint64_t seed,
                      int max_steps) {
    smp_grammar *g = compile_ok(gtext);
    if (!g) return;
    ref_g r = ref_new(g);
    smp_gramc *c = NULL;
    smp_grammar *g2 = NULL;
    REQUIRE(smp_grammar_compile(gtext, &g2) == HEARTH_OK);
    REQUIRE(smp_gramc_new(v, g2, &c) == HEARTH_OK); /* takes g2 */
    unsigned long long rs = seed * 0x9E3779B97F4A7C15ull + 1;
    char out[4096];
    size_t n = 0;
    /* the reference's chart over the output's whole characters; `done` of
     * out's bytes are in it, the rest (a partial character) is fed with
     * each token */
    ref_chart chart;
    ref_chart_init(&r, &chart);
    size_t done = 0;
    int bad = 0, steps = 0, n_allowed_total = 0;
    for (; steps < max_steps; steps++) {
        int32_t n_allowed = 0;
        const uint32_t *mask = smp_gramc_mask(c, &n_allowed);
        REQUIRE(mask);
        int32_t count = 0, allowed[512];
        for (int id = 0; id < t->n; id++) {
            const bool got = mask[id / 32] >> (id % 32) & 1;
            count += got;
            bool want;
            if (id == t->eog) {
                want = ref_chart_try(&r, &chart, out + done, n - done) == 2;
            } else {
                const size_t l = strlen(t->pieces[id]);
                memcpy(out + n, t->pieces[id], l);
                want = l > 0 && ref_chart_try(&r, &chart, out + done, n + l - done) >= 1;
            }
            if (got != want && bad++ < 5)
                CHECKF(false, "%s: after '%.*s' token %d '%s': mask %d, reference %d", gtext,
                       (int)n, out, id, t->pieces[id], got, want);
            if (got && id != t->eog && count <= 512) allowed[count - 1] = id;
        }
        CHECK(count == n_allowed);
        n_allowed_total += n_allowed;
        if (steps % 3 == 1) { /* emptied tables: the same mask again */
            uint32_t *copy = malloc(((size_t)t->n + 31) / 32 * sizeof *copy);
            REQUIRE(copy);
            memcpy(copy, mask, ((size_t)t->n + 31) / 32 * sizeof *copy);
            smp_gramc_flush(c);
            int32_t n2 = 0;
            mask = smp_gramc_mask(c, &n2);
            REQUIRE(mask);
            CHECK(n2 == n_allowed && !memcmp(copy, mask, ((size_t)t->n + 31) / 32 * sizeof *copy));
            free(copy);
        }
        if (smp_gramc_done(c)) {
            CHECK(n_allowed == 1 && ref_check(&r, out, n) == 2);
            break;
        }
        const int n_tok = count - (mask[t->eog / 32] >> (t->eog % 32) & 1);
        if (n_tok <= 0 || n_tok > 512) break;
        const int32_t id = allowed[test_rand_u64(&rs) % (unsigned long long)n_tok];
        const size_t l = strlen(t->pieces[id]);
        if (n + l >= sizeof out) break;
        REQUIRE(smp_gramc_advance(c, id));
        memcpy(out + n, t->pieces[id], l);
        n += l;
        CHECK(ref_check(&r, out, n) >= 1);
        ref_chart_feed(&r, &chart, out, &done, n);
    }
    ref_chart_free(&chart);
    CHECK(n_allowed_total > 0);
    smp_gramc_free(c);
    ref_free(&r);
    smp_grammar_free(g);
}

static void masks(void) {
    enum { N_BYTE = 255 };
    static char bytes[N_BYTE][2];
    static const char *extra[] = {
        "ab",   "(1",    "1)",     "+",        " + ",      "é",   "\xC3",    "\xA9",  "\xE2\x82",
        "\xAC", "€",     "日本",   "\xF0\x9F", "\x98\x80", "\"a", "a\"",     "\\u00", "e9",
        "true", "false", "null",   ", ",       "\": ",     "{\"", "\"}",     "[1",    "]",
        "- ",   "\n- ",  "item\n", "\n",       "aaaa",     "bbb", "\xE6\x97"};
    enum { N_EXTRA = sizeof extra / sizeof *extra };
    static const char *pieces[N_BYTE + N_EXTRA + 2];
    for (int i = 0; i < N_BYTE; i++) bytes[i][0] = (char)(i + 1), pieces[i] = bytes[i];
    for (int i = 0; i < N_EXTRA; i++) pieces[N_BYTE + i] = extra[i];
    const int n_vocab = N_BYTE + N_EXTRA + 2;
    pieces[n_vocab - 2] = ""; /* an empty piece: never allowed */
    pieces[n_vocab - 1] = ""; /* end of generation */
    toy t = {pieces, n_vocab, n_vocab - 1};
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, toy_piece, &t, &v) == HEARTH_OK);
    const char *grammars[] = {
        arith,
        json_g,
        list_g,
        "root ::= \"é\" [日本]{1,3} \"\\U0001F600\"? \"€\"",
        "root ::= [a-b]{2,5} (\"\\n\" | \"é\"+)",
        "root ::= \"\"",
        "root ::= (\"ab\" | \"a\" \"b\"* | \"aaaa\"){0,3}",
    };
    for (size_t gi = 0; gi < sizeof grammars / sizeof *grammars; gi++)
        for (uint64_t seed = 1; seed <= 6; seed++) mask_case(v, &t, grammars[gi], seed, 60);
    smp_vocab_free(v);
}

/* ---- limits ------------------------------------------------------------------------------ */

static void limits(void) {
    /* exponentially ambiguous: many stacks, but merged, so it stays small */
    CHECK(match_text("root ::= (\"a\" | \"a\" \"a\" | \"a\" \"a\" \"a\")*",
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == 2);
    /* deep nesting: the stack grows per "(", up to GBNF_MAX_DEPTH frames */
    smp_grammar *g = compile_ok("root ::= x\nx ::= \"(\" x \")\" | \"a\"");
    REQUIRE(g);
    gbnf_m *m = NULL;
    REQUIRE(gbnf_m_new(g, &m) == HEARTH_OK);
    uint32_t st = gbnf_m_start(m);
    int depth = 0;
    while (depth < 3 * GBNF_MAX_DEPTH) {
        const uint32_t nx = gbnf_m_step(m, st, '(');
        if (nx == GBNF_OVER) break;
        REQUIRE(nx != GBNF_FULL && nx != GBNF_DEAD);
        st = nx;
        depth++;
    }
    CHECKF(depth > 100 && depth <= GBNF_MAX_DEPTH, "nested %d", depth);
    CHECK(gbnf_m_step(m, st, 'a') < GBNF_OVER);
    /* a flush keeps the state: the same answers after it */
    const uint32_t kept = gbnf_m_flush(m, st);
    CHECK(gbnf_m_step(m, kept, '(') == GBNF_OVER && gbnf_m_step(m, kept, 'a') < GBNF_OVER);
    CHECK(gbnf_m_flushes(m) == 1);
    gbnf_m_free(m);
    smp_grammar_free(g);
    /* many stacks at once: (a|a a ...) ambiguity that does not merge */
    static char big[8192];
    strcpy(big, "root ::= x*\nx ::= [a-z]");
    for (int i = 0; i < 200; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), " | r%d", i);
    for (int i = 0; i < 200; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "\nr%d ::= [a-z] x{0,3} [a-z]", i);
    g = compile_ok(big);
    if (g) {
        REQUIRE(gbnf_m_new(g, &m) == HEARTH_OK);
        st = gbnf_m_start(m);
        int over = 0;
        for (int i = 0; i < 40 && !over; i++) {
            st = gbnf_m_step(m, st, 'a');
            over = st == GBNF_OVER;
            if (st == GBNF_FULL) break;
            REQUIRE(st != GBNF_DEAD);
        }
        CHECKF(over, "no limit hit");
        gbnf_m_free(m);
        smp_grammar_free(g);
    }
    /* more states than the tables hold: they fill (GBNF_FULL), a flush keeps
     * the state, reading goes on and ends where it must */
    g = compile_ok("root ::= x{0,300}\nx ::= [a-z]{1000}");
    REQUIRE(g);
    REQUIRE(gbnf_m_new(g, &m) == HEARTH_OK);
    st = gbnf_m_start(m);
    int n_full = 0;
    for (int i = 0; i < 150000; i++) {
        uint32_t nx = gbnf_m_step(m, st, (uint8_t)('a' + i % 26));
        if (nx == GBNF_FULL) {
            n_full++;
            st = gbnf_m_flush(m, st);
            nx = gbnf_m_step(m, st, (uint8_t)('a' + i % 26));
        }
        REQUIRE(nx < GBNF_OVER);
        st = nx;
        if (i % 1000 == 998 || i % 1000 == 999)
            CHECKF(gbnf_m_can_end(m, st) == (i % 1000 == 999), "after %d letters", i + 1);
    }
    CHECKF(n_full >= 1 && gbnf_m_flushes(m) == (uint64_t)n_full, "%d fills", n_full);
    CHECK(gbnf_m_step(m, st, '!') == GBNF_DEAD);
    gbnf_m_free(m);
    smp_grammar_free(g);
    CHECK(hearth_grammar_check(NULL) == HEARTH_ERR_INVALID_ARG);
    /* a start deeper than the recognizer follows: refused, not a dead end */
    char *chain = malloc(64 * 2200);
    REQUIRE(chain);
    size_t o = (size_t)sprintf(chain, "root ::= r0\n");
    for (int i = 0; i < 2100; i++) o += (size_t)sprintf(chain + o, "r%d ::= r%d \"x\"\n", i, i + 1);
    sprintf(chain + o, "r2100 ::= \"y\"\n");
    CHECK(hearth_grammar_check(chain) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "too deep") != NULL);
    free(chain);
}

#include <time.h>

static void timed(const char *name, void (*fn)(void)) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%-26s %8.1f ms\n", name,
           (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
}

int main(void) {
    timed("accepted grammars", accepted_grammars);
    timed("refused grammars", refused_grammars);
    timed("regex semantics", regex_semantics);
    timed("recognizer vs reference", recognizer_vs_reference);
    timed("masks vs reference", masks);
    timed("limits", limits);
    return test_done("test_gbnf");
}
