/*
 * fuzz_tokenizer.c - tokenizing and detokenizing arbitrary bytes.
 *
 * Input: byte 0 picks the vocabulary and the flags (add_special,
 * parse_special), the rest is the text. For every input:
 *   - tok_encode without a buffer reports the count, encoding into exactly
 *     that many ids succeeds, and every id is in range;
 *   - the streaming detokenizer only ever hands out valid UTF-8, and when the
 *     pieces concatenate to valid UTF-8 it hands out exactly those bytes;
 *   - round trip detokenize(tokenize(s)) == s where the vocabulary allows it:
 *     SentencePiece for text without U+2581 that produced no special token
 *     (special tokens bring their own space prefix) and has no truncated
 *     character right before a space (see spm_aligned), byte-level BPE without
 *     GPT-2's space clean-up for well-formed UTF-8. Violations abort().
 * With the unigram vocabulary and bit 6 of byte 0 set, the text is preceded
 * by a precompiled charsmap of its own (2 bytes of length, little-endian,
 * then its bytes; charsmaps come from GGUF files): loading it may be refused,
 * tokenizing with it may fail with HEARTH_ERR_FORMAT, nothing else.
 * Vocabularies: the tiny ones of tests/tok_fixture.h (always), plus real ones
 * from $HEARTH_SHARED_DIR (default: ../shared next to the source tree) when
 * present. Seeds: fuzz/corpus/tokenizer/.
 */
#include "core/core.h"
#include "../tests/tok_fixture.h"
#include "tokenizer/tok_impl.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_vocab {
    tok_vocab *v;    /* not const: the unigram one's charsmap is swapped */
    bool round_trip; /* the property holds for this vocabulary */
} fz_vocab;

enum { MAX_VOCABS = 12 };
static fz_vocab vocabs[MAX_VOCABS];
static int n_vocabs;

static void add(tok_vocab *v, bool round_trip) {
    if (v && n_vocabs < MAX_VOCABS) vocabs[n_vocabs++] = (fz_vocab){v, round_trip};
}

static void add_shared(const char *dir, const char *name, bool round_trip) {
    char path[1024];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-%s.gguf", dir, name);
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (gguf_open(path, &f)) return;
    if (!tok_vocab_load(f, &v)) add(v, round_trip);
    gguf_close(f);
}

static void setup(void) {
    add(fx_spm(), true);
    add(fx_bpe("qwen2"), true);
    add(fx_bpe("gpt-2"), false); /* GPT-2 clean-up rewrites " ," */
    add(fx_bpe("llama-bpe"), false);
    add(fx_wpm(), false);
    add(fx_ugm(), false); /* normalizes */
    char dir[1024];
    const char *env = getenv("HEARTH_SHARED_DIR");
    if (env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else { /* <source>/fuzz/fuzz_tokenizer.c -> <source>/../shared */
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (!slash) return;
        strcpy(slash, "/../../shared");
    }
    add_shared(dir, "llama-spm", true);
    add_shared(dir, "qwen2", true);
    add_shared(dir, "gpt-2", false);
    add_shared(dir, "deepseek-llm", true);
    add_shared(dir, "bert-bge", false);
    add_shared(dir, "gemma3", true);
}

static void check_stream(const tok_vocab *v, const int32_t *ids, size_t n) {
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        tok_piece(v, ids[i], false, NULL, 0, &k);
        cap += k;
    }
    char *raw = malloc(cap + 1), *out = malloc(TOK_UTF8_OUT_MAX(cap) + 4);
    if (!raw || !out) abort();
    size_t rn = 0, on = 0;
    tok_stream *s = NULL;
    if (tok_stream_new(v, false, &s)) abort();
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (tok_piece(v, ids[i], false, raw + rn, cap - rn, &k)) abort();
        rn += k;
        const char *t;
        if (tok_stream_push(s, ids[i], &t, &k)) abort();
        if (!hr_utf8_valid(t, k, NULL)) abort();
        memcpy(out + on, t, k);
        on += k;
    }
    const char *t;
    size_t k;
    tok_stream_flush(s, &t, &k);
    memcpy(out + on, t, k);
    on += k;
    tok_stream_free(s);
    if (!hr_utf8_valid(out, on, NULL)) abort();
    if (hr_utf8_valid(raw, rn, NULL) && (on != rn || memcmp(out, raw, rn))) abort();
    free(raw);
    free(out);
}

static bool contains(const char *s, size_t n, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (!memcmp(s + i, needle, nl)) return true;
    return false;
}

/* SentencePiece splits characters by their lead byte without checking the
 * bytes that follow: a truncated sequence right before a space swallows part
 * of the space's U+2581, which then comes back as raw bytes (llama.cpp does the
 * same). True when no character of text reaches into a space. */
static bool spm_aligned(const char *t, size_t n) {
    static const uint8_t len_by_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    for (size_t i = 0; i < n;) {
        size_t l = len_by_nibble[(uint8_t)t[i] >> 4];
        for (size_t k = 1; k < l && i + k < n; k++)
            if (t[i + k] == ' ') return false;
        i += l;
    }
    return true;
}

static void check_round_trip(const fz_vocab *fv, const char *text, size_t len, const int32_t *ids,
                             size_t n) {
    const tok_vocab *v = fv->v;
    if (!fv->round_trip) return;
    if (tok_vocab_type(v) == TOK_TYPE_SPM) {
        if (contains(text, len, "\xe2\x96\x81") || !spm_aligned(text, len)) return;
        for (size_t i = 0; i < n; i++)
            if (tok_is_special(v, ids[i])) return;
    } else if (!hr_utf8_valid(text, len, NULL)) {
        return;
    }
    char *back = malloc(len * 4 + 64);
    size_t k = 0;
    if (!back) abort();
    if (tok_detokenize(v, ids, n, false, true, back, len * 4 + 64, &k)) abort();
    if (k != len || memcmp(back, text, len)) abort();
    free(back);
}

/* The unigram vocabulary with the input's own charsmap, then its own again. */
static int with_charsmap(tok_vocab *v, const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    size_t cm = (size_t)data[1] | (size_t)data[2] << 8;
    if (cm > size - 3) cm = size - 3;
    uint32_t *xcda = v->xcda;
    char *repl = v->repl;
    const size_t n_xcda = v->n_xcda, n_repl = v->n_repl;
    v->xcda = NULL, v->repl = NULL; /* kept aside: tok_ugm_charsmap frees what it replaces */
    if (!tok_ugm_charsmap(v, data + 3, cm)) {
        const char *text = (const char *)data + 3 + cm;
        const size_t len = size - 3 - cm;
        int32_t ids[4096];
        size_t n = 0;
        hearth_err err = tok_encode(v, text, len, false, false, ids, 4096, &n);
        if (err && err != HEARTH_ERR_FORMAT && err != HEARTH_ERR_INVALID_ARG) abort();
        for (size_t i = 0; !err && i < n; i++)
            if (ids[i] < 0 || ids[i] >= tok_n_vocab(v)) abort();
    }
    tok_ugm_charsmap(v, NULL, 0);
    v->xcda = xcda, v->repl = repl, v->n_xcda = n_xcda, v->n_repl = n_repl;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size < 1 || n_vocabs == 0 || size > 4096) return 0;
    const fz_vocab *fv = &vocabs[data[0] % n_vocabs];
    bool add_special = (data[0] / 16) & 1, parse_special = (data[0] / 32) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1, n = 0, m = 0;
    if (tok_vocab_type(fv->v) == TOK_TYPE_UGM && (data[0] & 64))
        return with_charsmap(fv->v, data, size);
    /* measure with no buffer, then encode into exactly that many ids */
    hearth_err err = tok_encode(fv->v, text, len, add_special, parse_special, NULL, 0, &n);
    if (err != (n ? HEARTH_ERR_INVALID_ARG : HEARTH_OK)) abort();
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return 0;
    if (tok_encode(fv->v, text, len, add_special, parse_special, ids, n, &m) || m != n) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(fv->v)) abort();
    check_stream(fv->v, ids, n);
    if (!add_special) check_round_trip(fv, text, len, ids, n);
    free(ids);
    return 0;
}
