/*
 * synth.c - random-weight models written with the GGUF writer (see synth.h).
 * Weights are N(0, 1/fan_in) from a seeded generator so activations stay at
 * unit scale and attention is far from uniform; norms are 1 + small noise.
 */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

synth_params synth_default_params(void) {
    return (synth_params){.arch = "llama",
                          .type = KERN_F32,
                          .n_embd = 256,
                          .n_layer = 2,
                          .n_head = 4,
                          .n_head_kv = 2,
                          .head_dim = 64,
                          .n_ff = 512,
                          .n_ctx = 512,
                          .tied = false,
                          .seed = 42};
}

/* Box-Muller; u is moved off 0 by half a step so that log(u) is finite. */
static float rng_normal(hr_rng *r) {
    const double u = hr_rng_uniform(r) + 0x1.0p-54, v = hr_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* Everything the writer borrows until it has written the file. */
typedef struct synth_ctx {
    gguf_writer *w;
    hr_rng rng;
    float gain; /* the next tensor's first gain_rows rows times gain (q_gain) */
    int64_t gain_rows;
    void **bufs;
    size_t n_bufs, cap_bufs;
} synth_ctx;

static void *keep(synth_ctx *c, size_t bytes) {
    if (c->n_bufs == c->cap_bufs) {
        size_t cap = c->cap_bufs ? 2 * c->cap_bufs : 64;
        void **grown = realloc(c->bufs, cap * sizeof *grown);
        if (!grown) return NULL;
        c->bufs = grown;
        c->cap_bufs = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) c->bufs[c->n_bufs++] = p;
    return p;
}

/* A tensor of planes x rows x cols: std-scaled normal values (plus `mean`),
 * stored as `type` (1-D tensors, rows == 1 unless `matrix`, are always F32,
 * as converters write them); planes > 1 stacks matrices (experts). */
static hearth_err add_planes(synth_ctx *c, const char *name, kern_type type, int64_t cols,
                             int64_t rows, int64_t planes, float mean, float std, bool matrix) {
    const bool vec = rows == 1 && planes == 1 && !matrix;
    if (vec) type = KERN_F32;
    rows *= planes;
    const size_t n = (size_t)(cols * rows);
    float *f = keep(c, n * sizeof(float));
    if (!f) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    for (size_t i = 0; i < n; i++) f[i] = mean + std * rng_normal(&c->rng);
    for (size_t i = 0; c->gain_rows > 0 && i < (size_t)(c->gain_rows * cols); i++) f[i] *= c->gain;
    c->gain_rows = 0;
    const size_t row_bytes = kern_row_bytes(type, cols);
    if (!row_bytes)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "synth: %s rows of %lld cannot be stored as %s",
                       name, (long long)cols, kern_type_get(type)->name);
    void *data = f;
    if (type != KERN_F32) {
        data = keep(c, row_bytes * (size_t)rows);
        if (!data) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
        for (int64_t r = 0; r < rows; r++)
            kern_ref_quantize_row(type, f + r * cols, (uint8_t *)data + (size_t)r * row_bytes,
                                  cols);
    }
    const int64_t ne[3] = {cols, rows / planes, planes};
    return gguf_writer_add_tensor(c->w, name, (uint32_t)type,
                                  vec          ? 1
                                  : planes > 1 ? 3
                                               : 2,
                                  ne, data, row_bytes * (size_t)rows);
}

static hearth_err add_tensor_as(synth_ctx *c, const char *name, kern_type type, int64_t cols,
                                int64_t rows, float mean, float std, bool matrix) {
    return add_planes(c, name, type, cols, rows, 1, mean, std, matrix);
}

static hearth_err add_tensor(synth_ctx *c, const char *name, kern_type type, int64_t cols,
                             int64_t rows, float mean, float std) {
    return add_tensor_as(c, name, type, cols, rows, mean, std, false);
}

/* Single letters and frequent English pieces, most frequent first. */
static const char *const spm_pieces[] = {
    "▁",      "e",       "t",      "a",      "o",       "i",     "n",      "s",     "r",    "h",
    "l",      "d",       "c",      "u",      "m",       "f",     "p",      "g",     "w",    "y",
    "b",      "v",       "k",      "x",      "j",       "q",     "z",      ".",     ",",    "!",
    "?",      "'",       "▁t",     "▁a",     "he",      "in",    "▁the",   "er",    "▁s",   "▁w",
    "on",     "at",      "en",     "nd",     "▁o",      "▁b",    "es",     "▁h",    "▁c",   "is",
    "it",     "or",      "ou",     "▁f",     "an",      "ed",    "▁m",     "▁th",   "▁and", "▁to",
    "▁of",    "ing",     "▁in",    "▁is",    "▁it",     "▁was",  "▁he",    "▁I",    "▁you", "▁that",
    "▁for",   "▁on",     "▁with",  "▁as",    "▁be",     "▁at",   "▁his",   "▁by",   "▁we",  "▁she",
    "▁Once",  "▁upon",   "▁time",  "▁there", "▁little", "▁girl", "▁named", "▁Lily", "▁day", "▁big",
    "▁happy", "▁friend", "▁play",  "▁said",  "▁had",    "▁very", "▁they",  "▁her",  "▁saw", "▁went",
    "▁Hello", "▁world",  "▁local", "▁model", "▁Hearth", "▁fire", "▁warm",  "▁home",
};
enum { N_SPM_PIECES = sizeof spm_pieces / sizeof spm_pieces[0] };

/* A SentencePiece vocabulary's model name, tokens, scores and types. */
static hearth_err set_pieces(synth_ctx *c, const char *model, const char **tokens,
                             const float *scores, const int32_t *types, int n_vocab) {
    hearth_err err;
    if ((err = gguf_writer_set_str(c->w, "tokenizer.ggml.model", model)) ||
        (err = gguf_writer_set_str(c->w, "tokenizer.ggml.pre", "default")) ||
        (err = gguf_writer_set_arr_str(c->w, "tokenizer.ggml.tokens", tokens, (uint64_t)n_vocab)) ||
        (err = gguf_writer_set_arr(c->w, "tokenizer.ggml.scores", GGUF_F32, scores,
                                   (uint64_t)n_vocab)))
        return err;
    return gguf_writer_set_arr(c->w, "tokenizer.ggml.token_type", GGUF_I32, types,
                               (uint64_t)n_vocab);
}

/* A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, then
 * spm_pieces with scores by rank. */
static hearth_err add_vocab(synth_ctx *c, int *n_vocab_out) {
    const int n_pieces = N_SPM_PIECES;
    const int n_vocab = 3 + 256 + n_pieces;
    const char **tokens = keep(c, (size_t)n_vocab * sizeof *tokens);
    char *bytes = keep(c, 256 * 8);
    float *scores = keep(c, (size_t)n_vocab * sizeof *scores);
    int32_t *types = keep(c, (size_t)n_vocab * sizeof *types);
    if (!tokens || !bytes || !scores || !types)
        return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    tokens[0] = "<unk>", tokens[1] = "<s>", tokens[2] = "</s>";
    types[0] = 2, types[1] = 3, types[2] = 3; /* unknown, control, control */
    for (int b = 0; b < 256; b++) {
        snprintf(bytes + 8 * b, 8, "<0x%02X>", b);
        tokens[3 + b] = bytes + 8 * b;
        types[3 + b] = 6; /* byte */
    }
    for (int i = 0; i < n_pieces; i++) {
        tokens[259 + i] = spm_pieces[i];
        scores[259 + i] = -(float)i;
        types[259 + i] = 1;
    }
    hearth_err err;
    if ((err = set_pieces(c, "llama", tokens, scores, types, n_vocab)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.bos_token_id", 1)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.eos_token_id", 2)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.unknown_token_id", 0)) ||
        (err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_bos_token", true)))
        return err;
    *n_vocab_out = n_vocab;
    return HEARTH_OK;
}

/* XLM-RoBERTa's vocabulary as llama.cpp's converter writes it: <s> <pad> </s>
 * <unk>, then unigram pieces whose scores are log-probabilities (spm_pieces,
 * falling with rank); SentencePiece's space prefix and whitespace clean-up
 * (no charsmap: identity normalization); <s> text </s>, and with a second
 * text </s></s> between (RobertaProcessing: add_sep). */
static hearth_err add_vocab_ugm(synth_ctx *c, int *n_vocab_out) {
    const int n_vocab = 4 + N_SPM_PIECES;
    const char **tokens = keep(c, (size_t)n_vocab * sizeof *tokens);
    float *scores = keep(c, (size_t)n_vocab * sizeof *scores);
    int32_t *types = keep(c, (size_t)n_vocab * sizeof *types);
    if (!tokens || !scores || !types) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    static const char *const special[] = {"<s>", "<pad>", "</s>", "<unk>"};
    for (int i = 0; i < 4; i++) tokens[i] = special[i], scores[i] = 0.0f, types[i] = i == 3 ? 2 : 3;
    for (int i = 0; i < N_SPM_PIECES; i++) {
        tokens[4 + i] = spm_pieces[i];
        scores[4 + i] = -2.0f - 0.05f * (float)i;
        types[4 + i] = 1;
    }
    hearth_err err;
    if ((err = set_pieces(c, "t5", tokens, scores, types, n_vocab)) ||
        (err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_space_prefix", true)) ||
        (err = gguf_writer_set_bool(c->w, "tokenizer.ggml.remove_extra_whitespaces", true)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.token_type_count", 1)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.bos_token_id", 0)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.padding_token_id", 1)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.eos_token_id", 2)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.seperator_token_id", 2)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.unknown_token_id", 3)) ||
        (err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_bos_token", true)) ||
        (err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_eos_token", true)) ||
        (err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_sep_token", true)))
        return err;
    *n_vocab_out = n_vocab;
    return HEARTH_OK;
}

/* A WordPiece vocabulary laid out as BERT's and written as llama.cpp's
 * converter writes it: [PAD] 0, [unused*], [UNK] 100, [CLS] 101, [SEP]
 * 102, [MASK] 103, then pieces that start a word with "\u2581" and
 * continuations ("##" in BERT's files) bare: letters and punctuation both
 * ways, words, suffixes. */
static hearth_err add_vocab_wpm(synth_ctx *c, int *n_vocab_out) {
    static const char *const words[] = {
        "▁the",   "▁an",     "▁and",    "▁to",     "▁of",    "▁is",       "▁in",    "▁it",
        "▁was",   "▁he",     "▁she",    "▁you",    "▁that",  "▁for",      "▁on",    "▁with",
        "▁as",    "▁be",     "▁at",     "▁by",     "▁we",    "▁they",     "▁once",  "▁upon",
        "▁time",  "▁there",  "▁little", "▁girl",   "▁named", "▁lily",     "▁day",   "▁big",
        "▁happy", "▁friend", "▁play",   "▁said",   "▁had",   "▁very",     "▁her",   "▁saw",
        "▁went",  "▁hello",  "▁world",  "▁local",  "▁model", "▁hearth",   "▁fire",  "▁warm",
        "▁home",  "▁search", "▁text",   "▁vector", "▁query", "▁document", "▁embed", "es",
        "ed",     "ing",     "ly",      "er",      "th",     "he",        "in",     "an",
    };
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz.,!?'\"-:;()0123456789";
    const int n_words = (int)(sizeof words / sizeof words[0]), n_chars = (int)(sizeof chars - 1);
    const int n_vocab = 104 + 2 * n_chars + n_words;
    const char **tokens = keep(c, (size_t)n_vocab * sizeof *tokens);
    char *names = keep(c, 104 * 16 + (size_t)n_chars * 8);
    int32_t *types = keep(c, (size_t)n_vocab * sizeof *types);
    if (!tokens || !names || !types) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    static const char *const special[] = {"[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 104; i++) {
        char *nm = names + 16 * i;
        if (i == 0)
            snprintf(nm, 16, "[PAD]");
        else if (i < 100)
            snprintf(nm, 16, "[unused%d]", i - 1);
        else
            snprintf(nm, 16, "%s", special[i - 100]);
        tokens[i] = nm;
        types[i] = i == 0 || i >= 100 ? 3 : 1; /* control */
    }
    for (int i = 0; i < n_chars; i++) {
        char *start = names + 104 * 16 + 8 * i, *cont = start + 5;
        snprintf(start, 5, "\u2581%c", chars[i]);
        snprintf(cont, 3, "%c", chars[i]);
        tokens[104 + 2 * i] = start;
        tokens[104 + 2 * i + 1] = cont;
        types[104 + 2 * i] = types[104 + 2 * i + 1] = 1;
    }
    for (int i = 0; i < n_words; i++) {
        tokens[104 + 2 * n_chars + i] = words[i];
        types[104 + 2 * n_chars + i] = 1;
    }
    hearth_err err;
    if ((err = gguf_writer_set_str(c->w, "tokenizer.ggml.model", "bert")) ||
        (err = gguf_writer_set_str(c->w, "tokenizer.ggml.pre", "bert-bge")) ||
        (err = gguf_writer_set_arr_str(c->w, "tokenizer.ggml.tokens", tokens, (uint64_t)n_vocab)) ||
        (err = gguf_writer_set_arr(c->w, "tokenizer.ggml.token_type", GGUF_I32, types,
                                   (uint64_t)n_vocab)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.token_type_count", 2)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.unknown_token_id", 100)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.seperator_token_id", 102)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.padding_token_id", 0)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.cls_token_id", 101)) ||
        (err = gguf_writer_set_u32(c->w, "tokenizer.ggml.mask_token_id", 103)))
        return err;
    *n_vocab_out = n_vocab;
    return HEARTH_OK;
}

/* A synthetic LFM2's layer il is a short convolution, a Granite 4.0-H's a
 * Mamba-2 layer, unless il % 3 == 2 or it is the last (LFM2-350M has 10 of
 * 16): two layers are one of each. */
static bool synth_kv_free_layer(const synth_params *p, const arch_desc *a, int il) {
    if (a->gdn) return (il + 1) % 4 != 0; /* full_attention_interval 4, as Qwen3.5's */
    return (a->shortconv || a->ssm) && il % 3 != 2 && il != p->n_layer - 1;
}

/* A synthetic Gemma 4 (arch layer_dims), E2B's layout in small: layers 1,
 * 4, 7, ... global (the others window layers) with heads twice as wide,
 * rotated on a quarter of their dims through rope_freqs and without attn_v
 * (K is V, as in the larger Gemma 4s); from layer 2 on (of 3 or more),
 * layers read the keys and values of layer 0 (window) or 1 (global) and
 * have FFNs twice as wide, as most of E2B's do; per-layer embeddings of
 * SYNTH_PL. */
enum { SYNTH_PL = 256 };
static bool synth_global(int il) { return il % 3 == 1; }
static int synth_kv_from(const synth_params *p) { return p->n_layer < 3 ? p->n_layer : 2; }
static int synth_head_dim(const synth_params *p, const arch_desc *a, int il) {
    return a->layer_dims && synth_global(il) ? 2 * p->head_dim : p->head_dim;
}
/* FFN widths: Gemma 4's (above); LFM2-MoE's leading dense layers are twice
 * an expert's width (LFM2-8B-A1B's are four times). */
static int64_t synth_ff(const synth_params *p, const arch_desc *a, int il) {
    return (a->layer_dims && il >= synth_kv_from(p)) || il < p->n_dense_lead ? 2 * (int64_t)p->n_ff
                                                                             : p->n_ff;
}

/* Integer keys "<arch>.<suffix>". */
typedef struct synth_key {
    const char *suffix;
    int value;
} synth_key;

static hearth_err set_keys(synth_ctx *c, const synth_params *p, const synth_key *keys, size_t n) {
    char key[128];
    hearth_err err = HEARTH_OK;
    for (size_t i = 0; i < n && !err; i++) {
        snprintf(key, sizeof key, "%s.%s", p->arch, keys[i].suffix);
        err = gguf_writer_set_u32(c->w, key, (uint32_t)keys[i].value);
    }
    return err;
}

/* Gemma 4's per-layer keys (see above). */
static hearth_err add_gemma4_hparams(synth_ctx *c, const synth_params *p, const arch_desc *a) {
    char key[128];
    const uint64_t n = (uint64_t)p->n_layer;
    uint32_t *ff = keep(c, n * sizeof *ff);
    uint8_t *swa = keep(c, n);
    if (!ff || !swa) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    for (int il = 0; il < p->n_layer; il++) {
        ff[il] = (uint32_t)synth_ff(p, a, il);
        swa[il] = !synth_global(il);
    }
    snprintf(key, sizeof key, "%s.feed_forward_length", p->arch);
    hearth_err err = gguf_writer_set_arr(c->w, key, GGUF_U32, ff, n);
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", p->arch);
    if (!err) err = gguf_writer_set_arr(c->w, key, GGUF_BOOL, swa, n);
    const synth_key keys[] = {{"attention.key_length", 2 * p->head_dim},
                              {"attention.value_length", 2 * p->head_dim},
                              {"attention.key_length_swa", p->head_dim},
                              {"attention.value_length_swa", p->head_dim},
                              {"rope.dimension_count", 2 * p->head_dim},
                              {"rope.dimension_count_swa", p->n_rot > 0 ? p->n_rot : p->head_dim},
                              {"attention.sliding_window", p->swa_window > 0 ? p->swa_window : 8},
                              {"attention.shared_kv_layers", p->n_layer - synth_kv_from(p)},
                              {"embedding_length_per_layer_input", SYNTH_PL}};
    if (!err) err = set_keys(c, p, keys, sizeof keys / sizeof keys[0]);
    snprintf(key, sizeof key, "%s.rope.freq_base", p->arch);
    if (!err) err = gguf_writer_set_f32(c->w, key, 1000000.0f);
    snprintf(key, sizeof key, "%s.rope.freq_base_swa", p->arch);
    if (!err) err = gguf_writer_set_f32(c->w, key, 10000.0f);
    return err;
}

/* Gemma 3n's keys as its converter writes them: a window on four layers of
 * five (a bool per layer), the layers past llama.cpp's 20th sharing keys
 * and values, four AltUp streams, activation sparsity (icdf(0.95)) on the
 * first 10 layers and -inf (none) after. */
static hearth_err add_gemma3n_hparams(synth_ctx *c, const synth_params *p) {
    char key[128];
    const uint64_t n = (uint64_t)p->n_layer;
    uint8_t *swa = keep(c, n);
    float *sparsity = keep(c, n * sizeof *sparsity);
    if (!swa || !sparsity) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    for (int il = 0; il < p->n_layer; il++) {
        swa[il] = il % 5 < 4;
        sparsity[il] = il < 10 ? 1.6448533535003662f : -INFINITY;
    }
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", p->arch);
    hearth_err err = gguf_writer_set_arr(c->w, key, GGUF_BOOL, swa, n);
    snprintf(key, sizeof key, "%s.activation_sparsity_scale", p->arch);
    if (!err) err = gguf_writer_set_arr(c->w, key, GGUF_F32, sparsity, n);
    const synth_key keys[] = {{"attention.sliding_window", p->swa_window > 0 ? p->swa_window : 8},
                              {"attention.shared_kv_layers", p->n_layer > 20 ? p->n_layer - 20 : 0},
                              {"embedding_length_per_layer_input", SYNTH_PL},
                              {"altup.active_idx", 0},
                              {"altup.num_inputs", MODEL_ALTUP}};
    if (!err) err = set_keys(c, p, keys, sizeof keys / sizeof keys[0]);
    snprintf(key, sizeof key, "%s.rope.freq_base_swa", p->arch);
    return err ? err : gguf_writer_set_f32(c->w, key, 10000.0f);
}

/* A synthetic Mamba-2 layer: heads of 64 channels over 2 n_embd, two groups
 * of 64 states (Granite 4.0-H has one of 128), a kernel of 4. */
enum { SYNTH_SSM_HEAD = 64, SYNTH_SSM_STATE = 64, SYNTH_SSM_GROUPS = 2, SYNTH_SSM_CONV = 4 };

static hearth_err add_hparams(synth_ctx *c, const synth_params *p, const arch_desc *a) {
    char key[128];
    hearth_err err = HEARTH_OK;
#define SET_U32(suffix, v)                                                                         \
    if (!err) {                                                                                    \
        snprintf(key, sizeof key, "%s.%s", p->arch, suffix);                                       \
        err = gguf_writer_set_u32(c->w, key, (uint32_t)(v));                                       \
    }
#define SET_F32(suffix, v)                                                                         \
    if (!err) {                                                                                    \
        snprintf(key, sizeof key, "%s.%s", p->arch, suffix);                                       \
        err = gguf_writer_set_f32(c->w, key, (v));                                                 \
    }
    SET_U32("context_length", p->n_ctx);
    SET_U32("embedding_length", p->n_embd);
    SET_U32("block_count", p->n_layer + p->n_nextn);
    if (p->n_nextn > 0) SET_U32("nextn_predict_layers", p->n_nextn);
    if (a->layer_dims) {
        if (!err) err = add_gemma4_hparams(c, p, a);
    } else {
        SET_U32("feed_forward_length", a->moe_gating ? 2 * p->n_ff : p->n_ff);
    }
    SET_U32("attention.head_count", p->n_head);
    if (a->shortconv || a->ssm) { /* no attention (0 kv heads) on two layers of three */
        uint32_t *kv = keep(c, (size_t)p->n_layer * sizeof *kv);
        if (!kv) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
        for (int il = 0; il < p->n_layer; il++)
            kv[il] = synth_kv_free_layer(p, a, il) ? 0 : p->n_head_kv;
        snprintf(key, sizeof key, "%s.attention.head_count_kv", p->arch);
        err = gguf_writer_set_arr(c->w, key, GGUF_U32, kv, (uint64_t)p->n_layer);
        if (a->shortconv) SET_U32("shortconv.l_cache", 3);
    } else {
        SET_U32("attention.head_count_kv", p->n_head_kv);
    }
    if (!a->layer_dims) {
        SET_U32("attention.key_length", p->head_dim);
        SET_U32("attention.value_length", p->head_dim);
        SET_U32("rope.dimension_count", p->n_rot > 0 ? p->n_rot : p->head_dim);
    }
    if (a->post_ln || a->layer_norm) {
        SET_F32("attention.layer_norm_epsilon", a->post_ln ? 1e-12f : 1e-5f);
    } else {
        SET_F32("attention.layer_norm_rms_epsilon", a->encoder ? 1e-6f : 1e-5f);
    }
    if (a->encoder) {
        SET_U32("pooling_type", p->rerank > 0 ? 4 : p->pooling > 0 ? p->pooling : 1);
        if (!err) {
            snprintf(key, sizeof key, "%s.attention.causal", p->arch);
            err = gguf_writer_set_bool(c->w, key, false);
        }
    } else if (p->rerank > 0) {
        SET_U32("pooling_type", 4);
    }
    if (p->n_dense > 0) { /* what llama.cpp's converter writes beside the dense tensors */
        SET_U32("dense_2_feat_in", p->n_embd);
        SET_U32("dense_2_feat_out", p->n_dense);
        SET_U32("dense_3_feat_in", p->n_dense);
        SET_U32("dense_3_feat_out", p->n_embd);
    }
    if (!a->layer_dims) SET_F32("rope.freq_base", a->swa_dense_first ? 160000.0f : 10000.0f);
    float attn = p->rope_attn_factor;
    if (p->rope_orig_ctx > 0) {
        SET_U32("rope.scaling.original_context_length", p->rope_orig_ctx);
        if (!(attn > 0.0f) && !(p->yarn_factor > 0.0f)) { /* LongRoPE's converter default */
            const double scale = (double)p->n_ctx / p->rope_orig_ctx;
            attn =
                scale > 1.0 ? (float)sqrt(1.0 + log(scale) / log((double)p->rope_orig_ctx)) : 1.0f;
        }
    }
    if (attn > 0.0f) SET_F32("rope.scaling.attn_factor", attn);
    if (p->yarn_factor > 0.0f) {
        SET_F32("rope.scaling.factor", p->yarn_factor);
        if (!err) {
            snprintf(key, sizeof key, "%s.rope.scaling.type", p->arch);
            err = gguf_writer_set_str(c->w, key, "yarn");
        }
    }
    if (p->yarn_beta_fast > 0.0f) SET_F32("rope.scaling.yarn_beta_fast", p->yarn_beta_fast);
    if (p->yarn_beta_slow > 0.0f) SET_F32("rope.scaling.yarn_beta_slow", p->yarn_beta_slow);
    if (p->yarn_log_mul > 0.0f) SET_F32("rope.scaling.yarn_log_multiplier", p->yarn_log_mul);
    if (p->attn_temp != 0.0f) SET_F32("attention.temperature_scale", p->attn_temp);
    if (p->n_expert > 0 && a->encoder) SET_U32("moe_every_n_layers", 2);
    if (p->n_expert > 0) {
        SET_U32("expert_count", p->n_expert);
        SET_U32("expert_used_count", p->n_expert_used);
        SET_U32("expert_feed_forward_length", p->n_ff);
    }
    if (a->moe_gating) { /* LFM2-MoE's: sigmoid */
        SET_U32("expert_gating_func", 2);
        SET_U32("leading_dense_block_count", p->n_dense_lead);
    }
    if (p->n_ff_shexp > 0) SET_U32("expert_shared_feed_forward_length", p->n_ff_shexp);
    if (a->granite_scales) { /* Granite 3's multipliers */
        SET_F32("embedding_scale", 12.0f);
        SET_F32("residual_scale", 0.22f);
        SET_F32("attention.scale", 0.015625f);
        SET_F32("logit_scale", 8.0f);
    }
    if (a->gdn) { /* Qwen3.5: Gated DeltaNet sizes (value heads reading 2 key heads) */
        SET_U32("ssm.conv_kernel", SYNTH_SSM_CONV);
        SET_U32("ssm.inner_size", 2 * p->n_embd);
        SET_U32("ssm.state_size", SYNTH_SSM_STATE);
        SET_U32("ssm.time_step_rank", 2 * p->n_embd / SYNTH_SSM_STATE);
        SET_U32("ssm.group_count", SYNTH_SSM_GROUPS);
        SET_U32("full_attention_interval", 4);
    }
    if (a->imrope || a->mrope) { /* multimodal RoPE's sections (text: one position in all) */
        const int pairs = (p->n_rot > 0 ? p->n_rot : p->head_dim) / 2, sec = (pairs + 2) / 3;
        /* 32 pairs: Qwen3.5 11, 11, 10; Qwen3-VL's proportions 12, 10, 10 (pair 31 then
           takes the fourth section's position); Qwen2-VL's 8, 12, 12 */
        const int t = a->gdn      ? sec
                      : a->imrope ? (3 * pairs + 7) / 8
                                  : pairs / 4,
                  h = a->gdn ? sec : (pairs - t) / 2;
        const int32_t sections[4] = {t, h, pairs - t - h, 0};
        snprintf(key, sizeof key, "%s.rope.dimension_sections", p->arch);
        if (!err) err = gguf_writer_set_arr(c->w, key, GGUF_I32, sections, 4);
    }
    if (a->ssm || a->ssm_parallel) { /* Mamba-2 sizes; Granite 4.0-H's attention without RoPE */
        SET_U32("ssm.conv_kernel", SYNTH_SSM_CONV);
        SET_U32("ssm.inner_size", 2 * p->n_embd);
        SET_U32("ssm.state_size", SYNTH_SSM_STATE);
        SET_U32("ssm.time_step_rank", 2 * p->n_embd / SYNTH_SSM_HEAD);
        SET_U32("ssm.group_count", SYNTH_SSM_GROUPS);
        if (!err && a->ssm) {
            snprintf(key, sizeof key, "%s.rope.scaling.finetuned", p->arch);
            err = gguf_writer_set_bool(c->w, key, false);
        }
    }
    if (a->softcap || p->final_softcap > 0.0f)
        SET_F32("final_logit_softcapping", p->final_softcap > 0.0f ? p->final_softcap : 30.0f);
    if (a->softcap)
        SET_F32("attn_logit_softcapping", p->attn_softcap > 0.0f ? p->attn_softcap : 50.0f);
    if (a->altup && !err) err = add_gemma3n_hparams(c, p);
    if (a->hidden_act && !err) { /* ModernBERT's, as its converter copies it */
        snprintf(key, sizeof key, "%s.hidden_activation", p->arch);
        err = gguf_writer_set_str(c->w, key, "gelu");
    }
    if (((a->swa && !a->swa_plain_rope) || p->swa_window > 0) && !a->layer_dims && !a->altup) {
        /* OLMo 2 has no window; Gemma 4's and 3n's keys are above */
        SET_U32("attention.sliding_window", p->swa_window > 0 ? p->swa_window : 8);
        SET_U32("attention.sliding_window_pattern", 2);
        SET_F32("rope.freq_base_swa", 10000.0f);
    }
#undef SET_U32
#undef SET_F32
    if (!err) err = gguf_writer_set_str(c->w, "general.architecture", p->arch);
    if (!err) err = gguf_writer_set_str(c->w, "general.name", "hearth-synth (random weights)");
    if (!err) err = gguf_writer_set_u32(c->w, "general.alignment", 32);
    return err;
}

/* T(suffix, ...): layer il's tensor "blk.<il>.<suffix>" of the model's type (add_ffn,
 * add_layer: their locals c, p, il, n and err). */
#define T(suffix, cols, rows, mean, std)                                                           \
    if (!err) {                                                                                    \
        snprintf(n, sizeof n, "blk.%d.%s", il, suffix);                                            \
        err = add_tensor(c, n, p->type, cols, rows, mean, std);                                    \
    }

/* F32(suffix, ...): the same in F32 (kernels, biases, a recurrent layer's
 * per-head vectors), 2-D when it has rows or is a column ([1][heads]). */
#define F32(suffix, cols, rows, mean, std)                                                         \
    if (!err) {                                                                                    \
        snprintf(n, sizeof n, "blk.%d.%s", il, suffix);                                            \
        err = add_tensor_as(c, n, KERN_F32, cols, rows, mean, std, (rows) > 1 || (cols) == 1);     \
    }

/* Layer il's FFN and its norm. */
static hearth_err add_ffn(synth_ctx *c, const synth_params *p, const arch_desc *a, int il) {
    const int64_t d = p->n_embd, ff = synth_ff(p, a, il);
    const float sd = 1.0f / sqrtf((float)d), sf = 1.0f / sqrtf((float)ff);
    char n[96];
    hearth_err err = HEARTH_OK;
    if (!a->post_ln && !a->no_pre_norms && !a->ffn_norm) T("ffn_norm.weight", d, 1, 1.0f, 0.05f);
    /* experts after the leading dense layers; an encoder's (nomic-bert-moe) on odd layers */
    if (p->n_expert > 0 && il >= p->n_dense_lead && (!a->encoder || il % 2 == 1)) {
        /* the router stays F32, as llama-quantize leaves it */
        snprintf(n, sizeof n, "blk.%d.ffn_gate_inp.weight", il);
        if (!err) err = add_tensor_as(c, n, KERN_F32, d, p->n_expert, 0.0f, 2.0f * sd, true);
        if (a->moe_gating) { /* the choice's bias, about the spread of the sigmoids */
            snprintf(n, sizeof n, "blk.%d.exp_probs_b.bias", il);
            if (!err) err = add_tensor_as(c, n, KERN_F32, p->n_expert, 1, 0.0f, 0.2f, false);
        }
        static const char *const exps[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
        for (int i = a->ffn_no_gate ? 1 : 0; i < 3 && !err; i++) {
            snprintf(n, sizeof n, "blk.%d.%s.weight", il, exps[i]);
            err = i < 2 ? add_planes(c, n, p->type, d, p->n_ff, p->n_expert, 0.0f, sd, true)
                        : add_planes(c, n, p->type, p->n_ff, d, p->n_expert, 0.0f, sf, true);
        }
        if (p->n_ff_shexp > 0) {
            const int64_t fs = p->n_ff_shexp;
            T("ffn_gate_shexp.weight", d, fs, 0.0f, sd);
            T("ffn_up_shexp.weight", d, fs, 0.0f, sd);
            T("ffn_down_shexp.weight", fs, d, 0.0f, 1.0f / sqrtf((float)fs));
            if (a->shexp == SHEXP_GATED) { /* 1-D, F32 as llama-quantize leaves it */
                snprintf(n, sizeof n, "blk.%d.ffn_gate_inp_shexp.weight", il);
                if (!err) err = add_tensor_as(c, n, KERN_F32, d, 1, 0.0f, sd, false);
            }
        }
        return err;
    }
    if (a->ffn_no_gate) {
        T("ffn_up.weight", d, ff, 0.0f, sd);
    } else if (a->fused_gate_up) {
        T("ffn_up.weight", d, 2 * ff, 0.0f, sd);
    } else {
        T("ffn_gate.weight", d, ff, 0.0f, sd);
        T("ffn_up.weight", d, ff, 0.0f, sd);
    }
    T("ffn_down.weight", ff, d, 0.0f, sf);
    if (a->biases) {
        T("ffn_up.bias", ff, 1, 0.0f, 0.1f);
        T("ffn_down.bias", d, 1, 0.0f, 0.1f);
    }
    return err;
}

/* Layer il's Mamba-2 mixer: A negative (-exp of the checkpoint's A_log, as
 * converters write it) and dt's bias around -2, so that each step keeps
 * most of the state. */
static hearth_err add_ssm(synth_ctx *c, const synth_params *p, int il, bool norm) {
    const int64_t d = p->n_embd, inner = 2 * d, heads = inner / SYNTH_SSM_HEAD;
    const int64_t bc = 2 * (int64_t)SYNTH_SSM_GROUPS * SYNTH_SSM_STATE, conv = inner + bc;
    const float sd = 1.0f / sqrtf((float)d), si = 1.0f / sqrtf((float)inner);
    char n[96];
    hearth_err err = HEARTH_OK;
    T("ssm_in.weight", d, inner + conv + heads, 0.0f, sd);
    F32("ssm_conv1d.weight", SYNTH_SSM_CONV, conv, 0.0f, 0.5f);
    F32("ssm_conv1d.bias", conv, 1, 0.0f, 0.1f);
    F32("ssm_dt.bias", heads, 1, -2.0f, 0.5f);
    F32("ssm_a", 1, heads, -2.0f, 0.3f);
    F32("ssm_d", 1, heads, 1.0f, 0.1f);
    if (norm) F32("ssm_norm.weight", inner / SYNTH_SSM_GROUPS, SYNTH_SSM_GROUPS, 1.0f, 0.05f);
    T("ssm_out.weight", inner, d, 0.0f, si);
    return err;
}

/* Layer il's Gated DeltaNet mixer (Qwen3.5), synth's Mamba-2 sizes: value
 * heads of 64 over 2 n_embd reading two key heads of 64, a kernel of 4. */
static hearth_err add_gdn(synth_ctx *c, const synth_params *p, int il) {
    const int64_t d = p->n_embd, inner = 2 * d, heads = inner / SYNTH_SSM_STATE;
    const int64_t conv = inner + 2 * (int64_t)SYNTH_SSM_GROUPS * SYNTH_SSM_STATE;
    const float sd = 1.0f / sqrtf((float)d), si = 1.0f / sqrtf((float)inner);
    char n[96];
    hearth_err err = HEARTH_OK;
    T("attn_qkv.weight", d, conv, 0.0f, sd);
    T("attn_gate.weight", d, inner, 0.0f, sd);
    T("ssm_beta.weight", d, heads, 0.0f, sd);
    T("ssm_alpha.weight", d, heads, 0.0f, sd);
    F32("ssm_conv1d.weight", SYNTH_SSM_CONV, conv, 0.0f, 0.5f);
    F32("ssm_dt.bias", heads, 1, 1.0f, 0.5f);
    F32("ssm_a", heads, 1, -1.0f, 0.3f);
    F32("ssm_norm.weight", SYNTH_SSM_STATE, 1, 1.0f, 0.05f);
    T("ssm_out.weight", inner, d, 0.0f, si);
    return err;
}

/* Block il, one of Qwen3.5's multi-token-prediction blocks after the
 * layers: a gated-attention layer's tensors and its nextn.* projection and
 * norms (which Hearth does not run). */
static hearth_err add_mtp(synth_ctx *c, const synth_params *p, int il) {
    const int64_t d = p->n_embd, nq = (int64_t)p->n_head * p->head_dim,
                  nkv = (int64_t)p->n_head_kv * p->head_dim;
    const float sd = 1.0f / sqrtf((float)d);
    char n[96];
    hearth_err err = HEARTH_OK;
    T("attn_norm.weight", d, 1, 1.0f, 0.05f);
    T("post_attention_norm.weight", d, 1, 1.0f, 0.05f);
    T("attn_q.weight", d, 2 * nq, 0.0f, sd);
    T("attn_k.weight", d, nkv, 0.0f, sd);
    T("attn_v.weight", d, nkv, 0.0f, sd);
    T("attn_q_norm.weight", p->head_dim, 1, 1.0f, 0.05f);
    T("attn_k_norm.weight", p->head_dim, 1, 1.0f, 0.05f);
    T("attn_output.weight", nq, d, 0.0f, sd);
    T("ffn_gate.weight", d, p->n_ff, 0.0f, sd);
    T("ffn_up.weight", d, p->n_ff, 0.0f, sd);
    T("ffn_down.weight", p->n_ff, d, 0.0f, sd);
    T("nextn.eh_proj.weight", 2 * d, d, 0.0f, sd);
    T("nextn.enorm.weight", d, 1, 1.0f, 0.05f);
    T("nextn.hnorm.weight", d, 1, 1.0f, 0.05f);
    return err;
}

/* What llama-quantize leaves as it was: Gemma 3n's AltUp and LAuReL
 * matrices stay at a quantized file's source type (F32 here). */
static kern_type synth_kept_type(const synth_params *p) {
    return p->type == KERN_F16 ? KERN_F16 : KERN_F32;
}

/* Gemma 3n's AltUp router and coefficients (the coefficients F32, as its
 * converter writes them) and LAuReL branch of rank 64 (llama.cpp's). */
static hearth_err add_altup(synth_ctx *c, const synth_params *p, int il) {
    const int64_t d = p->n_embd, k = MODEL_ALTUP, rank = 64;
    const kern_type kept = synth_kept_type(p);
    const float sd = 1.0f / sqrtf((float)d);
    char n[96];
    hearth_err err = HEARTH_OK;
#define KEPT(suffix, cols, rows, std)                                                              \
    if (!err) {                                                                                    \
        snprintf(n, sizeof n, "blk.%d.%s", il, suffix);                                            \
        err = add_tensor_as(c, n, kept, cols, rows, 0.0f, std, true);                              \
    }
    KEPT("altup_router.weight", d, k, 4.0f * sd);
    KEPT("laurel_l.weight", d, rank, sd);
    KEPT("laurel_r.weight", rank, d, 1.0f / sqrtf((float)rank));
#undef KEPT
    F32("altup_predict_coef.weight", k, k * k, 0.0f, 0.2f);
    F32("altup_correct_coef.weight", k, k, 0.0f, 0.2f);
    F32("altup_router_norm.weight", d, 1, 1.0f, 0.05f);
    F32("altup_correct_scale.weight", d, 1, 1.0f, 0.05f);
    F32("laurel_post_norm.weight", d, 1, 1.0f, 0.05f);
    return err;
}

static hearth_err add_layer(synth_ctx *c, const synth_params *p, const arch_desc *a, int il) {
    const int hd = synth_head_dim(p, a, il);
    const int64_t d = p->n_embd, nq = (int64_t)p->n_head * hd, nkv = (int64_t)p->n_head_kv * hd;
    /* Gemma 4: K and V only where the layer computes them; V from K's projection on the
       global layers. Gemma 3n: every layer has them. */
    const bool kv = a->altup || !a->shared_kv || il < synth_kv_from(p),
               v = kv && (a->altup || !(a->v_norm && synth_global(il)));
    const float sd = 1.0f / sqrtf((float)d), sq = 1.0f / sqrtf((float)nq);
    char n[96];
    hearth_err err = HEARTH_OK;
    if (!a->post_ln && !a->no_pre_norms && !(a->layer_norm && il == 0))
        T("attn_norm.weight", d, 1, 1.0f, 0.05f);
    if (a->ffn_norm) T(a->ffn_norm, d, 1, 1.0f, 0.05f);
    if ((a->ssm || a->gdn) && synth_kv_free_layer(p, a, il)) {
        err = err ? err : a->gdn ? add_gdn(c, p, il) : add_ssm(c, p, il, true);
        return err ? err : add_ffn(c, p, a, il);
    }
    if (synth_kv_free_layer(p, a, il)) {
        snprintf(n, sizeof n, "blk.%d.shortconv.conv.weight", il);
        if (!err) err = add_tensor_as(c, n, KERN_F32, 3, d, 0.0f, 0.5f, true);
        T("shortconv.in_proj.weight", d, 3 * d, 0.0f, sd);
        T("shortconv.out_proj.weight", d, d, 0.0f, sd);
        return err ? err : add_ffn(c, p, a, il);
    }
    const bool gain = p->q_gain != 0.0f && p->q_gain != 1.0f;
    c->gain = p->q_gain;
    c->gain_rows = gain ? nq : 0;
    if (a->fused_qkv) {
        T("attn_qkv.weight", d, nq + 2 * nkv, 0.0f, sd);
    } else {
        T("attn_q.weight", d, a->attn_gate ? 2 * nq : nq, 0.0f, sd);
        if (kv) T("attn_k.weight", d, nkv, 0.0f, sd);
        if (v) T("attn_v.weight", d, nkv, 0.0f, sd);
    }
    if (a->fused_qkv && a->biases) {
        T("attn_qkv.bias", nq + 2 * nkv, 1, 0.0f, 0.1f);
    } else if (!strcmp(p->arch, "qwen2") || a->biases) {
        T("attn_q.bias", nq, 1, 0.0f, 0.1f);
        T("attn_k.bias", nkv, 1, 0.0f, 0.1f);
        T("attn_v.bias", nkv, 1, 0.0f, 0.1f);
    }
    if (a->qk_norm != QK_NORM_NONE) {
        const bool full = a->qk_norm == QK_NORM_FULL;
        /* Gemma 4 scales its scores by these norms alone: hd^-1/4 each, as 1/sqrt(hd) would */
        const float qk = a->unit_scale ? powf((float)hd, -0.25f) : 1.0f;
        T("attn_q_norm.weight", full ? nq : hd, 1, qk, 0.05f * qk);
        if (kv) T("attn_k_norm.weight", full ? nkv : hd, 1, qk, 0.05f * qk);
    }
    T("attn_output.weight", nq, d, 0.0f, sq);
    if (a->biases) T("attn_output.bias", d, 1, 0.0f, 0.1f);
    if (a->post_ln) {
        T("attn_output_norm.weight", d, 1, 1.0f, 0.05f);
        T("attn_output_norm.bias", d, 1, 0.0f, 0.05f);
        T("layer_output_norm.weight", d, 1, 1.0f, 0.05f);
        T("layer_output_norm.bias", d, 1, 0.0f, 0.05f);
    }
    if (a->post_norms) {
        T("post_attention_norm.weight", d, 1, 1.0f, 0.05f);
        T("post_ffw_norm.weight", d, 1, 1.0f, 0.05f);
    }
    if (a->per_layer_embd) {
        T("inp_gate.weight", d, SYNTH_PL, 0.0f, sd);
        T("proj.weight", SYNTH_PL, d, 0.0f, 1.0f / sqrtf((float)SYNTH_PL));
        T("post_norm.weight", d, 1, 1.0f, 0.05f);
    }
    if (a->out_scale) T("layer_output_scale.weight", 1, 1, 0.8f, 0.1f);
    if (a->altup && !err) err = add_altup(c, p, il);
    /* Falcon-H1: the mixer beside the attention, with its grouped norm on even layers */
    if (a->ssm_parallel && !err) err = add_ssm(c, p, il, il % 2 == 0);
    if (!err) err = add_ffn(c, p, a, il);
#undef T
#undef F32
    return err;
}

/* The frequency factors p asks for, from a generator seeded apart from the
 * weights' (synth.h). */
static hearth_err add_rope_factors(synth_ctx *c, const synth_params *p) {
    if (p->factors == SYNTH_ROPE_NONE) return HEARTH_OK;
    const int half = (p->n_rot > 0 ? p->n_rot : p->head_dim) / 2;
    float *fs = keep(c, (size_t)half * sizeof *fs), *fl = keep(c, (size_t)half * sizeof *fl);
    if (!fs || !fl) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    hr_rng r;
    hr_rng_seed(&r, p->seed ^ 0x6c6f6e67726f7065ull);
    for (int i = 0; i < half; i++) {
        const double u = hr_rng_uniform(&r), v = hr_rng_uniform(&r);
        fs[i] = p->factors == SYNTH_ROPE_ONES ? 1.0f : (float)(1.0 + 0.1 * u);
        fl[i] = p->factors == SYNTH_ROPE_ONES ? 1.0f : (float)(1.0 + 30.0 * v * v);
    }
    const int64_t ne[1] = {half};
    const size_t bytes = (size_t)half * sizeof(float);
    if (p->factors == SYNTH_ROPE_FREQS_SHORT || p->factors == SYNTH_ROPE_FREQS_LONG)
        return gguf_writer_add_tensor(c->w, "rope_freqs.weight", KERN_F32, 1, ne,
                                      p->factors == SYNTH_ROPE_FREQS_SHORT ? fs : fl, bytes);
    hearth_err err =
        gguf_writer_add_tensor(c->w, "rope_factors_long.weight", KERN_F32, 1, ne, fl, bytes);
    if (!err)
        err = gguf_writer_add_tensor(c->w, "rope_factors_short.weight", KERN_F32, 1, ne, fs, bytes);
    return err;
}

/* The per-layer embeddings' table, projection and norm (Gemma 4, 3n);
 * Gemma 3n's AltUp projections of the embedding into its streams and back. */
static hearth_err add_pl_tensors(synth_ctx *c, const synth_params *p, const arch_desc *a,
                                 int n_vocab) {
    const int64_t width = (int64_t)SYNTH_PL * p->n_layer, d = p->n_embd;
    const float sd = 1.0f / sqrtf((float)d);
    hearth_err err = add_tensor(c, "per_layer_token_embd.weight", p->type, width, n_vocab, 0.0f,
                                1.0f / sqrtf((float)SYNTH_PL));
    if (!err) err = add_tensor(c, "per_layer_model_proj.weight", p->type, d, width, 0.0f, sd);
    if (!err) err = add_tensor(c, "per_layer_proj_norm.weight", KERN_F32, SYNTH_PL, 1, 1.0f, 0.05f);
    if (!err && a->altup)
        err = add_planes(c, "altup_proj.weight", synth_kept_type(p), d, d, MODEL_ALTUP - 1, 0.0f,
                         sd, true);
    if (!err && a->altup)
        err = add_planes(c, "altup_unembd_proj.weight", synth_kept_type(p), d, d, MODEL_ALTUP - 1,
                         0.0f, sd, true);
    return err;
}

/* Gemma 4's global layers' proportional RoPE as the converter writes it
 * (factor 1 on the first quarter of the rotary pairs, 1e30 on the rest,
 * which then do not turn). */
static hearth_err add_gemma4_tensors(synth_ctx *c, const synth_params *p) {
    const int half = p->head_dim; /* pairs of the global layers' 2 head_dim */
    float *f = keep(c, (size_t)half * sizeof *f);
    if (!f) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
    for (int i = 0; i < half; i++) f[i] = i < half / 4 ? 1.0f : 1e30f;
    const int64_t ne[1] = {half};
    return gguf_writer_add_tensor(c->w, "rope_freqs.weight", KERN_F32, 1, ne, f,
                                  (size_t)half * sizeof *f);
}

static void synth_ctx_fini(synth_ctx *c) {
    gguf_writer_free(c->w);
    for (size_t i = 0; i < c->n_bufs; i++) free(c->bufs[i]);
    free(c->bufs);
}

/* A reranker's head (synth_params.rerank) and a decoder's rerank prompt. */
static hearth_err add_classifier(synth_ctx *c, const synth_params *p, const arch_desc *a) {
    const float s = 2.0f / sqrtf((float)p->n_embd);
    hearth_err err = HEARTH_OK;
    if (a->post_ln || a->layer_norm) { /* BERT's pooler, or ModernBERT's dense and its norm */
        err = add_tensor(c, "cls.weight", p->type, p->n_embd, p->n_embd, 0.0f, s);
        if (!err)
            err = a->layer_norm
                      ? add_tensor(c, "cls.norm.weight", KERN_F32, p->n_embd, 1, 1.0f, 0.05f)
                      : add_tensor(c, "cls.bias", KERN_F32, p->n_embd, 1, 0.0f, 0.1f);
        if (!err)
            err = add_tensor_as(c, "cls.output.bias", KERN_F32, p->rerank, 1, 0.0f, 0.1f, false);
        /* what llama.cpp's converter writes for a BERT cross-encoder: pairs
         * end in [SEP] as EOS, with none added between (XLM-RoBERTa's
         * vocabulary has its own) */
        if (!err && a->post_ln && !p->unigram) {
            err = gguf_writer_set_u32(c->w, "tokenizer.ggml.eos_token_id", 102);
            if (!err) err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_eos_token", true);
            if (!err) err = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_sep_token", false);
        }
    } else {
        err = gguf_writer_set_str(c->w, "tokenizer.chat_template.rerank",
                                  "<s>query: {query} | document: {document}</s>");
    }
    if (!err)
        err = add_tensor_as(c, "cls.output.weight", p->type, p->n_embd, p->rerank, 0.0f, s, true);
    if (!err && p->rerank > 1) { /* llama.cpp sizes cls.output by these */
        const char **labels = keep(c, (size_t)p->rerank * sizeof *labels);
        char *names = keep(c, (size_t)p->rerank * 16);
        char key[96];
        if (!labels || !names) return hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
        for (int i = 0; i < p->rerank; i++) {
            snprintf(names + 16 * i, 16, "LABEL_%d", i);
            labels[i] = a->post_ln ? names + 16 * i
                        : i == 0   ? "yes"
                        : i == 1   ? "no"
                                   : names + 16 * i;
        }
        snprintf(key, sizeof key, "%s.classifier.output_labels", p->arch);
        err = gguf_writer_set_arr_str(c->w, key, labels, (uint64_t)p->rerank);
    }
    return err;
}

hearth_err synth_write(const char *path, const synth_params *p) {
    const arch_desc *a = arch_find(p->arch, strlen(p->arch));
    if (!a) return hr_fail(HEARTH_ERR_UNSUPPORTED, "synth: unknown architecture '%s'", p->arch);
    if (p->n_embd < 1 || p->n_layer < 1 || p->n_head < 1 || p->n_head_kv < 1 ||
        p->n_head % p->n_head_kv || p->head_dim < 2 || p->head_dim % 2 || p->n_ff < 1 ||
        p->n_ctx < 1 || p->n_rot < 0 || p->n_rot % 2 || p->n_rot > p->head_dim || p->rerank < 0 ||
        p->n_dense < 0 || (p->n_dense > 0 && !(a->encoder && !a->post_ln)) || p->rerank > 4096 ||
        p->n_expert < 0 || p->n_expert > MODEL_MAX_EXPERTS ||
        (p->n_expert > 0) != (p->n_expert_used > 0) || p->n_expert_used > p->n_expert ||
        p->n_expert_used > MODEL_MAX_EXPERTS_USED || (a->moe == MOE_ALWAYS && p->n_expert == 0) ||
        (a->moe == MOE_NEVER && p->n_expert) ||
        ((a->ssm || a->gdn || a->ssm_parallel) && p->n_embd % SYNTH_SSM_HEAD) ||
        p->n_ff_shexp < 0 || (p->n_ff_shexp > 0 && !(p->n_expert > 0 && a->shexp != SHEXP_NONE)) ||
        (a->shexp == SHEXP_GATED && p->n_ff_shexp == 0) || p->n_nextn < 0 ||
        (p->n_nextn > 0 && !a->gdn) || (p->n_nextn > 0 && p->n_expert > 0) || p->n_dense_lead < 0 ||
        p->n_dense_lead > p->n_layer || (p->n_dense_lead && !a->moe_gating) ||
        (p->unigram && !a->post_ln))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "synth: inconsistent shape");
    synth_ctx c = {0};
    hr_rng_seed(&c.rng, p->seed);
    hearth_err err = gguf_writer_new(&c.w);
    int n_vocab = 0;
    if (!err) err = add_hparams(&c, p, a);
    if (!err)
        err = p->unigram   ? add_vocab_ugm(&c, &n_vocab)
              : a->post_ln ? add_vocab_wpm(&c, &n_vocab)
                           : add_vocab(&c, &n_vocab);
    const float se = 2.0f / sqrtf((float)p->n_embd);
    if (!err) err = add_tensor(&c, "token_embd.weight", p->type, p->n_embd, n_vocab, 0.0f, se);
    if (!err && a->post_ln) { /* token types, positions, the embedding LayerNorm */
        err = add_tensor_as(&c, "token_types.weight", KERN_F32, p->n_embd, p->unigram ? 1 : 2, 0.0f,
                            se, true);
        if (!err && a->learned_pos)
            err = add_tensor(&c, "position_embd.weight", p->type, p->n_embd, p->n_ctx, 0.0f, se);
        if (!err)
            err = add_tensor(&c, "token_embd_norm.weight", KERN_F32, p->n_embd, 1, 1.0f, 0.05f);
        if (!err) err = add_tensor(&c, "token_embd_norm.bias", KERN_F32, p->n_embd, 1, 0.0f, 0.05f);
    } else {
        const char *norm = a->output_norm ? a->output_norm : "output_norm.weight";
        if (!err) err = add_tensor(&c, norm, KERN_F32, p->n_embd, 1, 1.0f, 0.05f);
        if (!err && !p->tied && !a->tied_only && !a->encoder)
            err = add_tensor(&c, "output.weight", p->type, p->n_embd, n_vocab, 0.0f, se);
        if (!err && a->layer_norm) /* ModernBERT's embedding norm */
            err = add_tensor(&c, "token_embd_norm.weight", KERN_F32, p->n_embd, 1, 1.0f, 0.05f);
    }
    if (!err && p->n_dense > 0) {
        err = add_tensor(&c, "dense_2.weight", p->type, p->n_embd, p->n_dense, 0.0f, se);
        if (!err)
            err = add_tensor(&c, "dense_3.weight", p->type, p->n_dense, p->n_embd, 0.0f,
                             1.0f / sqrtf((float)p->n_dense));
    }
    if (!err && p->rerank > 0) err = add_classifier(&c, p, a);
    if (!err && a->per_layer_embd) err = add_pl_tensors(&c, p, a, n_vocab);
    if (!err && a->layer_dims) err = add_gemma4_tensors(&c, p);
    for (int il = 0; il < p->n_layer && !err; il++) err = add_layer(&c, p, a, il);
    for (int il = p->n_layer; il < p->n_layer + p->n_nextn && !err; il++) err = add_mtp(&c, p, il);
    if (!err) err = add_rope_factors(&c, p);
    if (!err && p->extra_tensor) err = add_tensor(&c, p->extra_tensor, KERN_F32, 8, 1, 0.0f, 1.0f);
    if (!err) err = gguf_writer_write(c.w, path);
    synth_ctx_fini(&c);
    return err;
}

/* ---- LoRA adapters ---- */

synth_lora_params synth_lora_default_params(void) {
    return (synth_lora_params){
        .type = KERN_F32, .rank = 8, .alpha = 16.0f, .strength = 0.5f, .seed = 7};
}

/* Whether base tensor `name` is one of the comma-separated `targets`
 * ("blk.N." and ".weight" left out of both). */
static bool targeted(const gguf_tensor *t, const char *targets) {
    gguf_str n = t->name;
    if (n.len > 4 && !memcmp(n.ptr, "blk.", 4)) {
        const char *dot = memchr(n.ptr + 4, '.', n.len - 4);
        if (!dot) return false;
        n.len -= (uint64_t)(dot + 1 - n.ptr);
        n.ptr = dot + 1;
    }
    if (n.len < 8 || memcmp(n.ptr + n.len - 7, ".weight", 7) != 0) return false;
    n.len -= 7;
    for (const char *p = targets; *p;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n.len && !memcmp(p, n.ptr, len)) return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

static hearth_err add_lora_pair(synth_ctx *c, const gguf_tensor *t, const synth_lora_params *p,
                                bool embd) {
    char name[160];
    const int64_t n_in = t->ne[0], n_out = t->ne[1], r = p->rank;
    const float sb = p->strength / sqrtf((float)r);
    hearth_err err;
    snprintf(name, sizeof name, "%.*s.lora_a", (int)t->name.len, t->name.ptr);
    if (embd) /* transposed: a row of rank values per token (lora.c) */
        err = add_tensor_as(c, name, p->type, r, n_out, 0.0f, 1.0f / sqrtf((float)n_in), true);
    else
        err = add_tensor_as(c, name, p->type, n_in, r, 0.0f, 1.0f / sqrtf((float)n_in), true);
    snprintf(name, sizeof name, "%.*s.lora_b", (int)t->name.len, t->name.ptr);
    if (!err) err = add_tensor_as(c, name, p->type, r, embd ? n_in : n_out, 0.0f, sb, true);
    return err;
}

/* Whether a matrix is some product's weight, which an adapter can target:
 * not a convolution kernel (LFM2's, Mamba-2's), a norm or a Mamba-2 head
 * vector (ssm_a, ssm_d: no ".weight"). */
static bool product_weight(gguf_str name) {
    static const char *const not_products[] = {"shortconv.conv.weight", "ssm_conv1d.weight",
                                               "_norm.weight"};
    static const char weight[] = ".weight";
    const bool w = name.len >= sizeof weight - 1 &&
                   !memcmp(name.ptr + name.len - (sizeof weight - 1), weight, sizeof weight - 1);
    for (size_t i = 0; w && i < sizeof not_products / sizeof not_products[0]; i++) {
        const size_t k = strlen(not_products[i]);
        if (name.len >= k && !memcmp(name.ptr + name.len - k, not_products[i], k)) return false;
    }
    return w;
}

hearth_err synth_lora_write(const char *path, const char *base, const synth_lora_params *p) {
    if (p->rank < 1 || p->rank > 4096 || !(p->strength >= 0.0f))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "synth: rank must be 1..4096");
    gguf_file *f;
    hearth_err err = gguf_open(base, &f);
    if (err) return err;
    synth_ctx c = {0};
    hr_rng_seed(&c.rng, p->seed);
    gguf_str arch;
    char arch_name[64];
    if (!gguf_get_str(f, "general.architecture", &arch) || arch.len >= sizeof arch_name)
        err = hr_fail(HEARTH_ERR_FORMAT, "synth: the base model names no architecture");
    if (!err) {
        memcpy(arch_name, arch.ptr, arch.len);
        arch_name[arch.len] = '\0';
        err = gguf_writer_new(&c.w);
    }
    if (!err) err = gguf_writer_set_str(c.w, "general.architecture", arch_name);
    if (!err) err = gguf_writer_set_str(c.w, "general.type", "adapter");
    if (!err) err = gguf_writer_set_str(c.w, "general.name", "hearth-synth LoRA (random weights)");
    if (!err) err = gguf_writer_set_str(c.w, "adapter.type", "lora");
    if (!err && p->alpha != 0.0f) err = gguf_writer_set_f32(c.w, "adapter.lora.alpha", p->alpha);
    const bool tied = !gguf_find_tensor(f, "output.weight");
    int n_pairs = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f) && !err; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const bool embd = gguf_str_eq(t->name, "token_embd.weight");
        /* without targets, every matrix an update of this rank can be low-rank for (not
           Qwen3.5's [heads][n_embd] beta and alpha at a rank above the heads) */
        if (t->n_dims != 2 || !product_weight(t->name) ||
            (p->targets ? !targeted(t, p->targets)
                        : (embd && tied) || p->rank > t->ne[0] || p->rank > t->ne[1]))
            continue;
        err = add_lora_pair(&c, t, p, embd);
        n_pairs++;
    }
    if (!err && !n_pairs)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "synth: no weight matches the targets");
    if (!err) err = gguf_writer_write(c.w, path);
    synth_ctx_fini(&c);
    gguf_close(f);
    return err;
}

/* ---- vision projectors ---- */

synth_vision_params synth_vision_default_params(void) {
    return (synth_vision_params){.type = KERN_F16,
                                 .n_embd_text = 256,
                                 .image_size = 56,
                                 .patch = 14,
                                 .n_embd = 64,
                                 .n_layer = 2,
                                 .n_head = 4,
                                 .n_ff = 128,
                                 .merge = 2,
                                 .seed = 42};
}

static hearth_err add_vision_hparams(synth_ctx *c, const synth_vision_params *p) {
    static const float half[3] = {0.5f, 0.5f, 0.5f};
    gguf_writer *w = c->w;
    hearth_err err = gguf_writer_set_str(w, "general.architecture", "clip");
    if (!err) err = gguf_writer_set_str(w, "general.name", "synthetic gemma3 projector");
    if (!err) err = gguf_writer_set_bool(w, "clip.has_vision_encoder", true);
    if (!err) err = gguf_writer_set_str(w, "clip.projector_type", "gemma3");
    if (!err) err = gguf_writer_set_bool(w, "clip.use_gelu", true);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.image_size", (uint32_t)p->image_size);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.patch_size", (uint32_t)p->patch);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.embedding_length", (uint32_t)p->n_embd);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)p->n_ff);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)p->n_layer);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.attention.head_count", (uint32_t)p->n_head);
    if (!err) err = gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
    if (!err) err = gguf_writer_set_u32(w, "clip.vision.projection_dim", (uint32_t)p->n_embd_text);
    if (!err)
        err = gguf_writer_set_u32(w, "clip.vision.projector.scale_factor", (uint32_t)p->merge);
    if (!err) err = gguf_writer_set_arr(w, "clip.vision.image_mean", GGUF_F32, half, 3);
    if (!err) err = gguf_writer_set_arr(w, "clip.vision.image_std", GGUF_F32, half, 3);
    return err;
}

static hearth_err add_vision_layer(synth_ctx *c, const synth_vision_params *p, int il) {
    const int64_t d = p->n_embd, ff = p->n_ff;
    const float sd = 1.0f / sqrtf((float)d), sf = 1.0f / sqrtf((float)ff);
    static const char *const qkvo[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
    char name[64];
    hearth_err err = HEARTH_OK;
    for (int i = 1; i <= 2 && !err; i++) {
        snprintf(name, sizeof name, "v.blk.%d.ln%d.weight", il, i);
        err = add_tensor(c, name, KERN_F32, d, 1, 1.0f, 0.05f);
        snprintf(name, sizeof name, "v.blk.%d.ln%d.bias", il, i);
        if (!err) err = add_tensor(c, name, KERN_F32, d, 1, 0.0f, 0.05f);
    }
    for (int i = 0; i < 4 && !err; i++) {
        snprintf(name, sizeof name, "v.blk.%d.%s.weight", il, qkvo[i]);
        err = add_tensor(c, name, p->type, d, d, 0.0f, sd);
        snprintf(name, sizeof name, "v.blk.%d.%s.bias", il, qkvo[i]);
        if (!err) err = add_tensor(c, name, KERN_F32, d, 1, 0.0f, 0.05f);
    }
    snprintf(name, sizeof name, "v.blk.%d.ffn_up.weight", il);
    if (!err) err = add_tensor(c, name, p->type, d, ff, 0.0f, sd);
    snprintf(name, sizeof name, "v.blk.%d.ffn_up.bias", il);
    if (!err) err = add_tensor(c, name, KERN_F32, ff, 1, 0.0f, 0.05f);
    snprintf(name, sizeof name, "v.blk.%d.ffn_down.weight", il);
    if (!err) err = add_tensor(c, name, p->type, ff, d, 0.0f, sf);
    snprintf(name, sizeof name, "v.blk.%d.ffn_down.bias", il);
    if (!err) err = add_tensor(c, name, KERN_F32, d, 1, 0.0f, 0.05f);
    return err;
}

hearth_err synth_vision_write(const char *path, const synth_vision_params *p) {
    if ((p->type != KERN_F32 && p->type != KERN_F16) || p->n_embd_text < 1 || p->patch < 1 ||
        p->merge < 1 || p->image_size < p->patch * p->merge || p->n_embd < 1 || p->n_head < 1 ||
        p->n_embd % p->n_head || p->n_layer < 1 || p->n_ff < 1)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "synth: inconsistent projector shape");
    synth_ctx c = {0};
    hr_rng_seed(&c.rng, p->seed);
    const int64_t d = p->n_embd, pp = p->patch, grid = p->image_size / p->patch;
    hearth_err err = gguf_writer_new(&c.w);
    if (!err) err = add_vision_hparams(&c, p);
    if (!err) { /* the convolution's kernel [d][3][patch][patch], 4-D as ggml lays it out */
        const size_t n = (size_t)(d * 3 * pp * pp);
        float *f = keep(&c, n * sizeof *f);
        if (!f) err = hr_fail(HEARTH_ERR_NOMEM, "synth: out of memory");
        const float s = 1.0f / sqrtf((float)(3 * pp * pp));
        for (size_t i = 0; f && i < n; i++) f[i] = s * rng_normal(&c.rng);
        const int64_t ne[4] = {pp, pp, 3, d};
        if (!err)
            err = gguf_writer_add_tensor(c.w, "v.patch_embd.weight", KERN_F32, 4, ne, f,
                                         n * sizeof *f);
    }
    if (!err) err = add_tensor(&c, "v.patch_embd.bias", KERN_F32, d, 1, 0.0f, 0.05f);
    if (!err)
        err =
            add_tensor_as(&c, "v.position_embd.weight", KERN_F32, d, grid * grid, 0.0f, 0.3f, true);
    for (int il = 0; il < p->n_layer && !err; il++) err = add_vision_layer(&c, p, il);
    if (!err) err = add_tensor(&c, "v.post_ln.weight", KERN_F32, d, 1, 1.0f, 0.05f);
    if (!err) err = add_tensor(&c, "v.post_ln.bias", KERN_F32, d, 1, 0.0f, 0.05f);
    if (!err) err = add_tensor(&c, "mm.soft_emb_norm.weight", KERN_F32, d, 1, 1.0f, 0.05f);
    if (!err) /* [n_embd][n_embd_text]: one column per text dimension */
        err = add_tensor_as(&c, "mm.input_projection.weight", p->type, p->n_embd_text, d, 0.0f,
                            1.0f / sqrtf((float)d), true);
    if (!err) err = gguf_writer_write(c.w, path);
    synth_ctx_fini(&c);
    return err;
}
