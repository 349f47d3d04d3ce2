/*
 * bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2"), as GPT-2 defined it
 * and llama.cpp's llm_tokenizer_bpe applies it:
 *   1. the pre-tokenizer cuts the text into words (pretokenize.c);
 *   2. each byte of a word becomes one character of the GPT-2 byte alphabet
 *      (printable Latin-1 bytes stand for themselves, the other 68 bytes for
 *      U+0100..U+0143 in byte order), so every word is a string of tokens;
 *   3. repeatedly, the adjacent pair with the lowest merge rank is merged
 *      (ties: the leftmost pair), until no pair has a rank;
 *   4. each remaining symbol is its token (a symbol that is not a token falls
 *      back to the single-byte tokens of its text).
 * With ignore_merges (Llama 3) a word that is itself a token is taken whole.
 *
 * Gemma 4 (spm_bpe) uses the same merging with SentencePiece's conventions,
 * as llama.cpp does for it: the caller has turned spaces into U+2581, words
 * are whole lines and newline runs, symbols start as UTF-8 characters (no
 * byte alphabet), a newline run that is a token is taken whole, and a symbol
 * that is not a token falls back to its bytes' <0xNN> tokens.
 *
 * The merge loop keeps the symbols in a linked list and the candidate pairs in
 * a binary heap; a popped pair is stale when either side has been merged since
 * (detected by lengths: a live left symbol only grows by absorbing its right
 * neighbour), so each word costs O(n log n).
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- the byte alphabet ---- */

static uint32_t byte_cp(uint8_t b) {
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (b - 0x7Fu);
    if (b == 0xAD) return 256u + 67u;
    return b;
}

size_t tok_bpe_byte_char(uint8_t b, char *out) { return hr_utf8_put(byte_cp(b), out); }

int tok_bpe_char_byte(uint32_t cp) {
    if (cp < 256) return byte_cp((uint8_t)cp) == cp ? (int)cp : -1;
    if (cp <= 256 + 32) return (int)(cp - 256);
    if (cp <= 256 + 66) return (int)(0x7F + (cp - 256 - 33));
    if (cp == 256 + 67) return 0xAD;
    return -1;
}

/* ---- merging ---- */

typedef struct sym {
    int32_t id;     /* token, or -1 */
    uint32_t start; /* bytes into the word */
    uint32_t len;   /* 0 once merged into its left neighbour */
    int32_t prev, next;
} sym;

typedef struct bpe_ctx {
    const tok_vocab *v;
    const uint32_t *cps;
    tok_ids *out;
    char *bytes; /* the word's UTF-8 */
    char *enc;   /* ... in the byte alphabet */
    size_t bytes_cap;
    sym *syms;
    tok_heap heap;
} bpe_ctx;

static hearth_err try_pair(bpe_ctx *c, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return HEARTH_OK;
    int32_t result = -1;
    int32_t rank = tok_merge_rank(c->v, c->syms[left].id, c->syms[right].id, &result);
    if (rank < 0) return HEARTH_OK;
    return tok_heap_push(
        &c->heap, (tok_cand){rank, left, right, result, c->syms[left].len + c->syms[right].len});
}

/* A symbol that is not a token: llama.cpp looks up each byte of its
 * byte-alphabet text as a one-byte token (spm_bpe: each byte's <0xNN>) and
 * keeps those it finds. */
static hearth_err emit_fallback(bpe_ctx *c, const sym *s) {
    for (uint32_t i = 0; i < s->len; i++) {
        uint8_t b = (uint8_t)c->bytes[s->start + i];
        char ch[4];
        int32_t ids[4];
        size_t n = 0;
        if (c->v->spm_bpe) {
            ids[n++] = c->v->byte_token[b];
        } else {
            size_t nc = tok_bpe_byte_char(b, ch);
            for (size_t k = 0; k < nc; k++) ids[n++] = tok_lookup(c->v, ch + k, 1);
        }
        for (size_t k = 0; k < n; k++) {
            hearth_err err = ids[k] >= 0 ? tok_ids_push(c->out, ids[k]) : HEARTH_OK;
            if (err) return err;
        }
    }
    return HEARTH_OK;
}

static hearth_err grow_word(bpe_ctx *c, size_t n_cps) {
    size_t need = n_cps * 4;
    if (need <= c->bytes_cap) return HEARTH_OK;
    size_t cap = need < 256 ? 256 : need * 2;
    char *b = realloc(c->bytes, cap), *e = b ? realloc(c->enc, cap * 2) : NULL;
    if (b) c->bytes = b;
    if (e) c->enc = e;
    sym *s = e ? realloc(c->syms, cap * sizeof *s) : NULL;
    if (s) c->syms = s;
    if (!s)
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for a %zu-character word",
                       n_cps);
    c->bytes_cap = cap;
    return HEARTH_OK;
}

/* The symbols the word's n bytes start as: one per byte (its byte-alphabet
 * token), or with spm_bpe one per UTF-8 character. Returns their count. */
static size_t first_syms(bpe_ctx *c, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; k++) {
        uint32_t len = 1;
        int32_t id = c->v->byte_token[(uint8_t)c->bytes[i]];
        if (c->v->spm_bpe) {
            len = (uint32_t)tok_utf8_len((uint8_t)c->bytes[i]);
            if (len > n - i) len = (uint32_t)(n - i);
            id = tok_lookup(c->v, c->bytes + i, len);
        }
        c->syms[k] = (sym){id, (uint32_t)i, len, (int32_t)k - 1, i + len < n ? (int32_t)k + 1 : -1};
        i += len;
    }
    return k;
}

static hearth_err merge_word(bpe_ctx *c, size_t n_bytes) {
    size_t n = first_syms(c, n_bytes);
    c->heap.n = 0;
    hearth_err err = HEARTH_OK;
    for (size_t i = 1; i < n && !err; i++) err = try_pair(c, (int32_t)i - 1, (int32_t)i);
    while (c->heap.n && !err) {
        tok_cand p = tok_heap_pop(&c->heap);
        sym *l = &c->syms[p.left], *r = &c->syms[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len) continue; /* stale */
        l->id = p.result;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) c->syms[r->next].prev = p.left;
        err = try_pair(c, l->prev, p.left);
        if (!err) err = try_pair(c, p.left, l->next);
    }
    for (int32_t i = 0; i >= 0 && n && !err; i = c->syms[i].next) {
        const sym *s = &c->syms[i];
        err = s->id >= 0 ? tok_ids_push(c->out, s->id) : emit_fallback(c, s);
    }
    return err;
}

static hearth_err on_word(void *ctx, size_t start, size_t count) {
    bpe_ctx *c = ctx;
    hearth_err err = grow_word(c, count);
    if (err) return err;
    size_t n = 0, ne = 0, newlines = 0;
    for (size_t i = 0; i < count; i++) {
        n += hr_utf8_put(c->cps[start + i], c->bytes + n);
        newlines += c->cps[start + i] == '\n';
    }
    if (c->v->spm_bpe && newlines == count) { /* a newline run that is a token: whole */
        int32_t id = tok_lookup(c->v, c->bytes, n);
        if (id >= 0) return tok_ids_push(c->out, id);
    }
    if (c->v->ignore_merges) {
        for (size_t i = 0; i < n; i++) ne += tok_bpe_byte_char((uint8_t)c->bytes[i], c->enc + ne);
        int32_t id = tok_lookup(c->v, c->enc, ne);
        if (id >= 0) return tok_ids_push(c->out, id);
    }
    return merge_word(c, n);
}

hearth_err tok_bpe_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out) {
    if (len == 0) return HEARTH_OK;
    uint32_t *cps = malloc(len * sizeof *cps);
    if (!cps) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    size_t n = tok_utf8_decode(text, len, cps);
    bpe_ctx c = {.v = v, .cps = cps, .out = out};
    hearth_err err = tok_pretok_split(v->pretok, cps, n, on_word, &c);
    free(c.bytes);
    free(c.enc);
    free(c.syms);
    free(c.heap.a);
    free(cps);
    return err;
}
