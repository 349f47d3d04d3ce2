/*
 * fuzz_tune_jsonl.c - training examples from JSONL (tune_data.c) on
 * arbitrary bytes: every line goes through the UTF-8 check, the JSON parser,
 * the record's fields, the chat template and the tokenizer of a small
 * synthetic llama (ChatML, as for a model without a template). A text that
 * loads gives examples within their bounds (1 <= n_prompt < n <= max_len,
 * ids in the vocabulary); one that fails says where and adds nothing.
 * Seeds: fuzz/corpus/tune_jsonl/, both record forms, multi-turn, escapes,
 * blank and CRLF lines, and broken lines of each kind.
 */
#include "engine/chat.h"
#include "model/synth.h"
#include "tune/tune.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_LEN = 96 };

static hearth_model *model;
static tok_chat_template tmpl;
static char *bos, *eos;
static char model_path[64];

static void cleanup(void) {
    free(bos);
    free(eos);
    hearth_model_free(model);
    unlink(model_path);
}

/* The model, written and loaded on the first input. */
static void setup(void) {
    if (model) return;
    synth_params p = synth_default_params();
    p.n_embd = 64, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.head_dim = 32;
    p.n_ff = 128, p.n_ctx = 16, p.seed = 1;
    snprintf(model_path, sizeof model_path, "/tmp/fuzz_tune_jsonl.%ld.gguf", (long)getpid());
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    eng_chat_source src;
    if (synth_write(model_path, &p) || hearth_model_load(model_path, &mp, &model) ||
        eng_chat_choose(model, NULL, &tmpl, &src) ||
        !(bos = eng_token_text(model, hearth_token_bos(model))) ||
        !(eos = eng_token_text(model, hearth_token_eos(model))))
        abort();
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    /* An exact-size copy, so that any read past the end is caught. */
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    const tune_render r = {.tmpl = &tmpl, .bos = bos, .eos = eos, .max_len = MAX_LEN};
    tune_set set = {0};
    const hearth_err err = tune_set_add_jsonl_text(&set, model, &r, "fuzz", copy, size);
    if (err) {
        /* every refusal names the input and its line; nothing is kept */
        if (strncmp(hearth_last_error(), "fuzz:", 5) != 0) abort();
        if (set.n || set.n_skipped || set.n_too_long) abort();
    }
    const int n_vocab = hearth_model_n_vocab(model);
    for (size_t i = 0; i < set.n; i++) {
        const tune_example *ex = &set.ex[i];
        if (ex->n_prompt < 1 || ex->n_prompt >= ex->n || ex->n > MAX_LEN) abort();
        for (int k = 0; k < ex->n; k++)
            if (ex->ids[k] < 0 || ex->ids[k] >= n_vocab) abort();
    }
    tune_set train = {0}, val = {0};
    const size_t n = set.n;
    if (tune_set_split(&set, 0.5, 7, &train, &val) || train.n + val.n != n || set.n) abort();
    tune_set_free(&set);
    tune_set_free(&train);
    tune_set_free(&val);
    free(copy);
    return 0;
}
