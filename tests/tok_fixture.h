/*
 * tok_fixture.h - tiny vocabularies written with the GGUF writer, so that the
 * tokenizer tests and the tokenizer fuzz target run without ../shared:
 * a SentencePiece one (byte fallback, scores, a user-defined and a control
 * token), a byte-level BPE one (the 256-character byte alphabet plus a few
 * merges) and a WordPiece one. Header-only; each function returns a vocabulary
 * the caller frees, or NULL with hearth_last_error() set.
 */
#ifndef HEARTH_TOK_FIXTURE_H
#define HEARTH_TOK_FIXTURE_H

#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fx_tok {
    const char *text;
    float score;
    int32_t type; /* GGUF token type: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte */
} fx_tok;

typedef hearth_err (*fx_keys_fn)(gguf_writer *w);

/* Writes the vocabulary to a temporary GGUF file, opens it and loads it. With
 * out_err, the load's error code is stored there (for tests of bad files). */
static tok_vocab *fx_build(const char *model, const char *pre, const fx_tok *toks, size_t n,
                           const char *const *merges, size_t n_merges, fx_keys_fn keys,
                           hearth_err *out_err) {
    char path[] = "/tmp/hearth-tok-fixture-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    const char **texts = calloc(n ? n : 1, sizeof *texts);
    float *scores = calloc(n ? n : 1, sizeof *scores);
    int32_t *types = calloc(n ? n : 1, sizeof *types);
    gguf_writer *w = NULL;
    hearth_err err = texts && scores && types ? gguf_writer_new(&w) : HEARTH_ERR_NOMEM;
    for (size_t i = 0; i < n && !err; i++)
        texts[i] = toks[i].text, scores[i] = toks[i].score, types[i] = toks[i].type;
    if (!err && model) err = gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (!err && pre) err = gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    if (!err && n) err = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, n);
    if (!err && n) err = gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, n);
    if (!err && n) err = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, n);
    if (!err && merges) err = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, n_merges);
    if (!err && keys) err = keys(w);
    if (!err) err = gguf_writer_write(w, path);
    gguf_writer_free(w);
    free(texts);
    free(scores);
    free(types);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (!err) err = gguf_open(path, &f);
    if (!err) err = tok_vocab_load(f, &v);
    gguf_close(f);
    unlink(path);
    if (out_err) *out_err = err;
    return err ? NULL : v;
}

/* ---- SentencePiece ----
 * ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then FX_SPM_WORDS. */
#define FX_SPM_BYTE0 3
static const fx_tok FX_SPM_WORDS[] = {
    {"\xe2\x96\x81", -1.0f, 1}, /* 259 "▁" */
    {"a", -2.0f, 1},            /* 260 */
    {"b", -2.0f, 1},            /* 261 */
    {"c", -2.0f, 1},            /* 262 */
    {"ab", -3.0f, 1},           /* 263 */
    {"bc", -4.0f, 1},           /* 264 */
    {"abc", -5.0f, 1},          /* 265 */
    {"\xe2\x96\x81"
     "a",
     -1.5f, 1}, /* 266 "▁a" */
    {"\xe2\x96\x81"
     "ab",
     -1.6f, 1},              /* 267 "▁ab" */
    {"<|u|>", 0.0f, 4},      /* 268 user-defined */
    {"<|c|>", 0.0f, 3},      /* 269 control */
    {"\xc3\xa9", -2.0f, 1},  /* 270 "é" */
    {"<|eot_id|>", 0.0f, 3}, /* 271 control, an end of turn by its text */
};
#define FX_SPM_N (FX_SPM_BYTE0 + 256 + (int)(sizeof FX_SPM_WORDS / sizeof FX_SPM_WORDS[0]))

static tok_vocab *fx_spm(void) {
    static fx_tok toks[FX_SPM_N];
    static char bytes[256][8];
    toks[0] = (fx_tok){"<unk>", 0, 2};
    toks[1] = (fx_tok){"<s>", 0, 3};
    toks[2] = (fx_tok){"</s>", 0, 3};
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[FX_SPM_BYTE0 + b] = (fx_tok){bytes[b], 0, 6};
    }
    memcpy(toks + FX_SPM_BYTE0 + 256, FX_SPM_WORDS, sizeof FX_SPM_WORDS);
    return fx_build("llama", "default", toks, FX_SPM_N, NULL, 0, NULL, NULL);
}

/* ---- byte-level BPE ----
 * ids 0..255: the byte alphabet in byte order (id b is byte b), then merges'
 * results and one control token. */
static size_t fx_byte_char(int b, char *out) {
    unsigned cp = (unsigned)b;
    if (b <= 0x20)
        cp = 256u + (unsigned)b;
    else if (b >= 0x7F && b <= 0xA0)
        cp = 256u + 33u + (unsigned)(b - 0x7F);
    else if (b == 0xAD)
        cp = 256u + 67u;
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    return 2;
}

/* "\xc4\xa0" is U+0120, the byte alphabet's space; \x61 = 'a', \x62 = 'b' */
static const char *const FX_BPE_MERGES[] = {"b c",        "a b", "a bc",
                                            "\xc4\xa0 a", "a a", "\xc4\xa0\x61 b"};
static const char *const FX_BPE_EXTRA[] = {
    "bc", "ab", "abc", "\xc4\xa0\x61", "aa", "\xc4\xa0\x61\x62", "xyz"};
#define FX_BPE_N (256 + 7 + 1)

static tok_vocab *fx_bpe(const char *pre) {
    static fx_tok toks[FX_BPE_N];
    static char chars[256][4];
    for (int b = 0; b < 256; b++) {
        fx_byte_char(b, chars[b]);
        toks[b] = (fx_tok){chars[b], 0, 1};
    }
    for (int i = 0; i < 7; i++) toks[256 + i] = (fx_tok){FX_BPE_EXTRA[i], 0, 1};
    toks[263] = (fx_tok){"<|endoftext|>", 0, 3};
    return fx_build("gpt2", pre, toks, FX_BPE_N, FX_BPE_MERGES,
                    sizeof FX_BPE_MERGES / sizeof FX_BPE_MERGES[0], NULL, NULL);
}

/* ---- WordPiece ---- */
static const fx_tok FX_WPM_TOKS[] = {
    {"[PAD]", 0, 3},
    {"[UNK]", 0, 1},
    {"[CLS]", 0, 3},
    {"[SEP]", 0, 3},
    {"[MASK]", 0, 3},
    {"\xe2\x96\x81hello", 0, 1},
    {"\xe2\x96\x81world", 0, 1},
    {"\xe2\x96\x81hel", 0, 1},
    {"lo", 0, 1},
    {"\xe2\x96\x81,", 0, 1},
    {"\xe2\x96\x81"
     "cafe",
     0, 1},
};

static hearth_err fx_wpm_keys(gguf_writer *w) {
    hearth_err err = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    if (!err) err = gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3);
    if (!err) err = gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1);
    if (!err) err = gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    return err;
}

static tok_vocab *fx_wpm(void) {
    return fx_build("bert", "bert-bge", FX_WPM_TOKS, sizeof FX_WPM_TOKS / sizeof FX_WPM_TOKS[0],
                    NULL, 0, fx_wpm_keys, NULL);
}

#endif
