/*
 * tok_fixture.h - tiny vocabularies written with the GGUF writer, so that the
 * tokenizer tests and the tokenizer fuzz target run without ../shared:
 * a SentencePiece one (byte fallback, scores, a user-defined and a control
 * token), a byte-level BPE one (the 256-character byte alphabet plus a few
 * merges), a WordPiece one and a unigram one with a small precompiled
 * charsmap. Header-only; each function returns a vocabulary
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

static inline tok_vocab *fx_spm(void) {
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

static inline tok_vocab *fx_bpe(const char *pre) {
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

static inline tok_vocab *fx_wpm(void) {
    return fx_build("bert", "bert-bge", FX_WPM_TOKS, sizeof FX_WPM_TOKS / sizeof FX_WPM_TOKS[0],
                    NULL, 0, fx_wpm_keys, NULL);
}

/* ---- unigram (tokenizer.ggml.model "t5") ----
 * A precompiled charsmap built from replacement rules: a trie over the rules'
 * bytes laid out as SentencePiece's XOR-compressed double array (a node at
 * absolute place B has its children at B ^ byte and its replacement's offset
 * at B; each entry stores its byte, a leaf bit and its own place XOR its
 * node's B), then the NUL-terminated replacements. */
typedef struct fx_rule {
    const char *from, *to;
} fx_rule;

enum { FX_CM_NODES = 64, FX_CM_SLOTS = 1024 };

static inline uint8_t *fx_charsmap(const fx_rule *rules, size_t n_rules, size_t *len) {
    struct {
        int parent, byte, value; /* value: replacement offset, -1: none */
        uint32_t at, base;       /* its place, and its children's B */
    } nd[FX_CM_NODES] = {{-1, 0, -1, 0, 0}};
    int n = 1;
    char strings[512];
    size_t n_str = 0;
    for (size_t r = 0; r < n_rules; r++) {
        int cur = 0;
        for (const char *p = rules[r].from; *p; p++) {
            int next = -1;
            for (int i = 1; i < n && next < 0; i++)
                if (nd[i].parent == cur && nd[i].byte == (uint8_t)*p) next = i;
            if (next < 0) {
                next = n++;
                nd[next].parent = cur, nd[next].byte = (uint8_t)*p, nd[next].value = -1;
            }
            cur = next;
        }
        nd[cur].value = (int)n_str;
        n_str += (size_t)snprintf(strings + n_str, sizeof strings - n_str, "%s", rules[r].to) + 1;
    }
    static uint32_t slot[FX_CM_SLOTS];
    bool used[FX_CM_SLOTS] = {true}; /* place 0 holds the root's B */
    memset(slot, 0, sizeof slot);
    for (int i = 0; i < n; i++) { /* parents come before children */
        for (uint32_t b = 1; b < FX_CM_SLOTS / 2; b++) {
            bool ok = !used[b];
            for (int k = 1; k < n && ok; k++)
                if (nd[k].parent == i) ok = !used[b ^ (uint32_t)nd[k].byte];
            if (!ok) continue;
            nd[i].base = b;
            used[b] = true;
            for (int k = 1; k < n; k++)
                if (nd[k].parent == i) used[nd[k].at = b ^ (uint32_t)nd[k].byte] = true;
            break;
        }
    }
    slot[0] = nd[0].base << 10;
    for (int i = 1; i < n; i++) {
        slot[nd[i].at] = ((nd[i].at ^ nd[i].base) << 10) | (nd[i].value >= 0 ? 1u << 8 : 0) |
                         (uint32_t)nd[i].byte;
        if (nd[i].value >= 0) slot[nd[i].base] = (1u << 31) | (uint32_t)nd[i].value;
    }
    const uint32_t blob = sizeof slot;
    uint8_t *out = malloc(4 + blob + n_str);
    if (!out) return NULL;
    memcpy(out, &blob, 4);
    memcpy(out + 4, slot, blob);
    memcpy(out + 4 + blob, strings, n_str);
    *len = 4 + blob + n_str;
    return out;
}

/* ids: 0 <pad>, 1 </s>, 2 <unk>, then these; rules: full-width A -> "a",
 * the ligature fi -> "fi", no-break space -> " ", "x" -> "" (dropped). */
static const fx_tok FX_UGM_TOKS[] = {
    {"<pad>", 0, 3},
    {"</s>", 0, 3},
    {"<unk>", 0, 2},
    {"\xe2\x96\x81", -2.0f, 1}, /* 3 "▁" */
    {"a", -3.0f, 1},            /* 4 */
    {"b", -3.0f, 1},            /* 5 */
    {"ab", -4.0f, 1},           /* 6: beats a + b (-6) */
    {"\xe2\x96\x81"
     "a",
     -2.5f, 1},         /* 7 "▁a" */
    {"f", -3.0f, 1},    /* 8 */
    {"i", -3.0f, 1},    /* 9 */
    {"fi", -7.0f, 1},   /* 10: loses to f + i (-6) */
    {"<sep>", 0.0f, 4}, /* 11 user-defined */
    {"zz", -1.0f, 5},   /* 12 unused: still matched, as llama.cpp does */
};

static hearth_err fx_ugm_keys(gguf_writer *w) {
    static const fx_rule rules[] = {
        {"\xef\xbc\xa1", "a"}, {"\xef\xac\x81", "fi"}, {"\xc2\xa0", " "}, {"x", ""}};
    size_t n = 0;
    uint8_t *cm = fx_charsmap(rules, sizeof rules / sizeof rules[0], &n);
    if (!cm) return HEARTH_ERR_NOMEM;
    hearth_err err = gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", GGUF_U8, cm, n);
    free(cm);
    if (!err) err = gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", true);
    if (!err) err = gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces", true);
    return err;
}

static inline tok_vocab *fx_ugm(void) {
    return fx_build("t5", "default", FX_UGM_TOKS, sizeof FX_UGM_TOKS / sizeof FX_UGM_TOKS[0], NULL,
                    0, fx_ugm_keys, NULL);
}

#endif
