/*
 * test_tokenizer_ugm.c - the unigram tokenizer (tokenizer.ggml.model "t5")
 * against SentencePiece itself. tests/tools/ugm_fixture.py trains three small
 * unigram models on the repository's text with Debian's python3-sentencepiece
 * (NFKC and NFKC-casefold normalizers, whose precompiled charsmaps the GGUF
 * files carry, and the identity normalizer without space prefix or
 * whitespace clean-up; two user-defined symbols), writes them as llama.cpp's
 * converter writes T5 / XLM-RoBERTa vocabularies, and writes the ids
 * SentencePiece gives for its inputs (user-defined symbols cut out first, as
 * llama.cpp does); every input must give exactly those ids.
 * llama.cpp 34af94cd's llama-tokenize gave the same ids for these files when
 * this test was written. That part is skipped (said on stdout) when
 * python3-sentencepiece is absent.
 *
 * Before it, always: tok_fixture.h's unigram vocabulary with its hand-built
 * charsmap (cases worked out by hand), charsmaps that point outside
 * themselves, a vocabulary without an unknown token. After it, what
 * SentencePiece cannot be asked: bytes that are not UTF-8, the special
 * tokens added around a text.
 */
#include "model/gguf.h"
#include "test.h"
#include "tok_fixture.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/tokenizer.h"
#include "vocab_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const models[] = {"ugm-nfkc", "ugm-nfkc-cf", "ugm-identity"};

static tok_vocab *load(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (gguf_open(path, &f) || tok_vocab_load(f, &v))
        fprintf(stderr, "%s: %s\n", path, hearth_last_error());
    gguf_close(f);
    return v;
}

static size_t encode(const tok_vocab *v, const char *s, bool add_special, int32_t *ids,
                     size_t cap) {
    size_t n = 0;
    hearth_err err = tok_encode(v, s, strlen(s), add_special, false, ids, cap, &n);
    CHECKF(err == HEARTH_OK, "encode \"%s\": %s", s, hearth_last_error());
    return err ? 0 : n;
}

static bool same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

static void run_goldens(const char *dir, const char *name) {
    tok_vocab *v = load(dir, name);
    CHECKF(v != NULL, "%s: load", name);
    if (!v) return;
    CHECK(tok_vocab_type(v) == TOK_TYPE_UGM && !strcmp(tok_model_name(v), "t5"));
    char file[300], inp[600], outp[600];
    snprintf(file, sizeof file, "%s.gguf", name);
    snprintf(inp, sizeof inp, "%s/%s.gguf.inp", dir, name);
    snprintf(outp, sizeof outp, "%s/%s.gguf.out", dir, name);
    int n_cases = 0;
    const int n_ok = run_cases(v, file, inp, outp, &n_cases);
    printf("%-20s %2d/%2d cases as SentencePiece\n", file, n_ok, n_cases);
    tok_vocab_free(v);
}

/* What the NFKC vocabulary does with text SentencePiece cannot be given. */
static void edge_cases(const char *dir) {
    tok_vocab *v = load(dir, "ugm-nfkc");
    REQUIRE(v);
    int32_t a[64], b[64];
    /* a byte that starts no UTF-8 character is U+FFFD after normalization,
     * which this vocabulary lacks: unknown, and a run of them is one token
     * (the ids llama.cpp 34af94cd gives) */
    const int32_t unk = tok_unk(v);
    size_t na = encode(v,
                       "ab\xff"
                       "cd",
                       false, a, 64);
    size_t nb = encode(v,
                       "ab\xff\xfe\x80"
                       "cd",
                       false, b, 64);
    size_t n_unk = 0;
    for (size_t i = 0; i < na; i++) n_unk += a[i] == unk;
    CHECK(na > 2 && n_unk == 1 && same_ids(a, na, b, nb));
    na = encode(v, "\xe2\x96", false, a, 64); /* a truncated character */
    CHECK(na == 2 && a[1] == unk && a[0] == tok_find(v, "\xe2\x96\x81", 3));

    /* T5's defaults: no BOS, EOS (</s>, id 2 here: the file names it) after */
    na = encode(v, "Hello world", false, a, 64);
    nb = encode(v, "Hello world", true, b, 64);
    CHECK(nb == na + 1 && same_ids(a, na, b, na) && b[na] == tok_eos(v) && tok_eos(v) == 2);
    /* with parse_special a control token's text is that token */
    size_t n = 0;
    CHECK(tok_encode(v, "a</s>b", 6, false, true, a, 64, &n) == HEARTH_OK && n >= 3);
    bool has_eos = false;
    for (size_t i = 0; i < n; i++) has_eos |= a[i] == 2;
    CHECK(has_eos);

    /* the charsmap's NFKC at work: full-width letters are ASCII ones */
    na = encode(v, "ＡＢＣ", false, a, 64);
    nb = encode(v, "ABC", false, b, 64);
    CHECK(na > 0 && same_ids(a, na, b, nb));

    tok_vocab_free(v);
}

/* The fixture vocabulary of tok_fixture.h: scores and rules chosen so that
 * each case has one right answer, worked out by hand. */
static void fixture_cases(void) {
    tok_vocab *v = fx_ugm();
    REQUIRE(v);
    static const struct {
        const char *text;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"ab", {7, 5}, 2}, /* "▁a" + "b" (-5.5) over "▁" + "ab" (-6) */
        {"\xef\xbc\xa1"
         "b",
         {7, 5},
         2},                            /* full-width A is "a" */
        {"axb", {7, 5}, 2},             /* "x" is dropped */
        {"\xef\xac\x81", {3, 8, 9}, 3}, /* the ligature is "fi": f + i beats fi */
        {"a\xc2\xa0"
         "b",
         {7, 3, 5},
         3},                           /* no-break space is a space */
        {"  a   b  ", {7, 3, 5}, 3},   /* spaces collapse, none trail */
        {"q", {3, 2}, 2},              /* unknown */
        {"qq\xe2\x82\xac", {3, 2}, 2}, /* a run of unknown characters is one */
        {"zz", {3, 12}, 2},            /* an unused token is matched */
        {"a<sep>b", {7, 11, 3, 5}, 4}, /* user-defined: cut out, pieces alone */
        {"", {0}, 0},
        {"   ", {0}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[16];
        const size_t n = encode(v, cases[i].text, false, ids, 16);
        CHECKF(same_ids(ids, n, cases[i].ids, cases[i].n), "fixture case \"%s\"", cases[i].text);
    }
    int32_t ids[16];
    size_t n = encode(v, "ab", true, ids, 16); /* T5's defaults: EOS (1) only */
    CHECK(n == 3 && ids[0] == 7 && ids[2] == 1 && tok_eos(v) == 1 && tok_bos(v) < 0);
    char out[16];
    size_t k = 0;
    CHECK(tok_detokenize(v, ids, n, true, false, out, sizeof out, &k) == HEARTH_OK && k == 2 &&
          !memcmp(out, "ab", 2)); /* the space prefix and </s> go */

    /* charsmaps whose header does not fit, or whose nodes or offsets point
     * outside them: errors, never a read out of bounds */
    static const uint8_t short_hdr[] = {8, 0, 0, 0, 1, 2, 3, 4};
    CHECK(tok_ugm_charsmap(v, short_hdr, sizeof short_hdr) == HEARTH_ERR_FORMAT);
    uint8_t bad[4 + 8 + 2] = {8, 0, 0, 0};
    const uint32_t root = 0xFFFFFC00u; /* B far outside */
    memcpy(bad + 4, &root, 4);
    CHECK(tok_ugm_charsmap(v, bad, sizeof bad) == HEARTH_OK);
    CHECK(tok_encode(v, "abc", 3, false, false, ids, 16, &n) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "charsmap is corrupt") != NULL);
    /* root B 2: 'a' (0x61) leads to place 0x63, a leaf whose value offset
     * (at 0x63 ^ its base) is past the strings */
    static uint32_t nodes[128];
    nodes[0] = 2u << 10;
    nodes[0x63] = ((0x63u ^ 0x10u) << 10) | (1u << 8) | 0x61u;
    nodes[0x10] = (1u << 31) | 999u;
    uint8_t cm[4 + sizeof nodes + 2];
    const uint32_t blob = sizeof nodes;
    memcpy(cm, &blob, 4);
    memcpy(cm + 4, nodes, sizeof nodes);
    cm[4 + sizeof nodes] = 'z', cm[5 + sizeof nodes] = '\0';
    CHECK(tok_ugm_charsmap(v, cm, sizeof cm) == HEARTH_OK);
    CHECK(tok_encode(v, "b", 1, false, false, ids, 16, &n) == HEARTH_OK); /* no match: fine */
    CHECK(tok_encode(v, "a", 1, false, false, ids, 16, &n) == HEARTH_ERR_FORMAT);
    nodes[0x10] = 1u << 31; /* offset 0: "z", which is unknown here */
    memcpy(cm + 4, nodes, sizeof nodes);
    CHECK(tok_ugm_charsmap(v, cm, sizeof cm) == HEARTH_OK);
    CHECK(tok_encode(v, "a", 1, false, false, ids, 16, &n) == HEARTH_OK && n == 2 && ids[1] == 2);
    cm[5 + sizeof nodes] = 'z'; /* the string loses its terminator */
    CHECK(tok_ugm_charsmap(v, cm, sizeof cm) == HEARTH_OK);
    CHECK(tok_encode(v, "a", 1, false, false, ids, 16, &n) == HEARTH_ERR_FORMAT);
    /* a rule that blows text up past 64x is refused, not followed into any
       amount of memory: "b" -> 200 bytes */
    char big[201];
    memset(big, 'a', 200), big[200] = '\0';
    const fx_rule blow[] = {{"b", big}};
    size_t n_cm = 0;
    uint8_t *bcm = fx_charsmap(blow, 1, &n_cm);
    REQUIRE(bcm);
    CHECK(tok_ugm_charsmap(v, bcm, n_cm) == HEARTH_OK);
    free(bcm);
    CHECK(tok_encode(v, "bbbb", 4, false, false, ids, 16, &n) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "expands the text") != NULL);
    CHECK(tok_encode(v, "xb", 2, false, false, ids, 16, &n) == HEARTH_ERR_FORMAT);
    tok_vocab_free(v);

    /* a unigram vocabulary must name an unknown token */
    static const fx_tok no_unk[] = {{"<pad>", 0, 3}, {"</s>", 0, 3}}; /* default id 2 */
    hearth_err err = HEARTH_OK;
    CHECK(fx_build("t5", NULL, no_unk, 2, NULL, 0, NULL, &err) == NULL &&
          err == HEARTH_ERR_FORMAT && strstr(hearth_last_error(), "unknown token"));
}

int main(void) {
    fixture_cases();
    char dir[] = "/tmp/hearth-ugm-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/tools/ugm_fixture.py %s",
             HEARTH_SOURCE_DIR, dir);
    const int rc = system(cmd);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        printf("SKIP: python3-sentencepiece is absent: no comparison with SentencePiece\n");
    } else {
        CHECKF(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", cmd);
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) run_goldens(dir, models[i]);
        edge_cases(dir);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_done("test_tokenizer_ugm");
}
