/*
 * test_tokenizer.c - the tokenizers against llama.cpp's golden ids: every
 * vocabulary in ../shared/conformance/tokenizer/ and every input of its .inp
 * file must give exactly the ids of its .out file (no BOS/EOS, no special-token
 * parsing); detokenizing gives the input back where the vocabulary allows it;
 * detokenizing the conformance models' greedy continuations gives the bytes
 * llama.cpp printed. Skips (77) when ../shared is absent.
 *
 * Tekken (Mistral Nemo, Ministral 8B) has no vocabulary in ../shared: its
 * pre-tokenizer runs on the Llama 3 vocabulary instead, against the ids
 * llama.cpp 34af94cd's llama-tokenize gave for that vocabulary with
 * tokenizer.ggml.pre set to "tekken" (--no-bos --no-parse-special), for the
 * Llama 3 inputs and tests/data/tekken.inp (cased words, digits, slashes,
 * scripts with and without case): tests/data/tekken*.out.
 */
#include "golden.h"
#include "model/gguf.h"
#include "test.h"
#include "tokenizer/tok_impl.h"
#include "tokenizer/tokenizer.h"
#include "vocab_cases.h"

#include <dirent.h>
#include <stdint.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Loads the vocabulary; *t_vocab_ms is the time tok_vocab_load took (the
 * file is already parsed by then). */
static tok_vocab *load_vocab(const char *path, double *t_vocab_ms) {
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (gguf_open(path, &f)) {
        fprintf(stderr, "%s: %s\n", path, hearth_last_error());
        return NULL;
    }
    double t0 = now_ms();
    if (tok_vocab_load(f, &v)) fprintf(stderr, "%s: %s\n", path, hearth_last_error());
    *t_vocab_ms = now_ms() - t0;
    gguf_close(f);
    return v;
}

static int run_vocab(const char *dir, const char *file) {
    char path[1024], inp[1100], outp[1100];
    snprintf(path, sizeof path, "%.700s/%.255s", dir, file);
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(outp, sizeof outp, "%s.out", path);
    double t0 = now_ms(), t_vocab = 0;
    tok_vocab *v = load_vocab(path, &t_vocab);
    double t_load = now_ms() - t0;
    CHECKF(v != NULL, "%s: load", file);
    if (!v) return 0;
    int n_cases = 0;
    const int n_ok = run_cases(v, file, inp, outp, &n_cases);
    printf("%-34s %2d/%2d cases  open+load %6.1f ms (tok_vocab_load %5.1f ms)\n", file, n_ok,
           n_cases, t_load, t_vocab);
    tok_vocab_free(v);
    return 1;
}

/* The Llama 3 vocabulary with its pre-tokenizer replaced by Tekken's (as
 * loading it with tokenizer.ggml.pre = "tekken" would). */
static void run_tekken(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%.700s/ggml-vocab-llama-bpe.gguf", dir);
    double t_vocab = 0;
    tok_vocab *v = load_vocab(path, &t_vocab);
    REQUIRE(v);
    tok_pretok *p = NULL;
    REQUIRE(tok_pretok_new("tekken", v, &p) == HEARTH_OK);
    tok_pretok_free(v->pretok);
    v->pretok = p;
    CHECK(v->ignore_merges && !v->clean_spaces && v->add_bos); /* llama.cpp's flags for it */
    char inp[2][1100], outp[2][1100];
    snprintf(inp[0], sizeof inp[0], "%s.inp", path);
    snprintf(outp[0], sizeof outp[0], "%s/tests/data/tekken-llama-bpe.out", HEARTH_SOURCE_DIR);
    snprintf(inp[1], sizeof inp[1], "%s/tests/data/tekken.inp", HEARTH_SOURCE_DIR);
    snprintf(outp[1], sizeof outp[1], "%s/tests/data/tekken.out", HEARTH_SOURCE_DIR);
    for (int i = 0; i < 2; i++) {
        int n_cases = 0;
        const int n_ok = run_cases(v, "tekken", inp[i], outp[i], &n_cases);
        printf("tekken on llama-bpe (%s) %2d/%2d cases\n", i == 0 ? "its inputs" : "tekken.inp",
               n_ok, n_cases);
    }
    /* a long run of capitals backtracks past PCRE2's default JIT stack */
    enum { RUN = 20000 };
    char *caps = malloc(RUN);
    int32_t *ids = malloc(RUN * sizeof *ids);
    REQUIRE(caps && ids);
    memset(caps, 'A', RUN);
    size_t n_ids = 0;
    const hearth_err err = tok_encode(v, caps, RUN, false, false, ids, RUN, &n_ids);
    CHECKF(err == HEARTH_OK, "tekken: %d capitals: %s", RUN, hearth_last_error());
    if (!err) check_round_trip(v, "tekken capitals", caps, RUN, ids, n_ids);
    free(caps);
    free(ids);
    tok_vocab_free(v);
}

int main(void) {
    const char *dir = HEARTH_SHARED_DIR "/conformance/tokenizer";
    DIR *d = opendir(dir);
    if (!d) {
        printf("test_tokenizer: %s not found, skipping\n", dir);
        return TEST_SKIP;
    }
    struct dirent *e;
    int n = 0;
    char names[64][256];
    while ((e = readdir(d)) != NULL && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".gguf"))
            snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) run_vocab(dir, names[i]);
    run_tekken(dir);
    return test_done("test_tokenizer");
}
