/*
 * spm.c - the SentencePiece-style tokenizer of tokenizer.ggml.model = "llama"
 * (llama.cpp's llm_tokenizer_spm): start from single UTF-8 characters (the
 * lead byte decides a character's length, nothing is validated), repeatedly
 * merge the adjacent pair whose concatenation is the vocabulary token with the
 * highest score (ties: the leftmost pair), until no concatenation is a token.
 * A remaining symbol that is not a token is written as byte-fallback tokens
 * <0xNN>, one per byte.
 *
 * The caller (tokenize.c) has already replaced spaces with U+2581 and added
 * the space prefix. Symbols live in a linked list, candidate pairs in a binary
 * heap; a popped pair is stale when a side was merged since (lengths change).
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>

typedef struct sym {
    uint32_t start, len; /* bytes; len 0 once merged into its left neighbour */
    int32_t prev, next;
} sym;

typedef struct spm_ctx {
    const tok_vocab *v;
    const char *text;
    sym *syms;
    tok_heap heap;
} spm_ctx;

static hearth_err try_bigram(spm_ctx *c, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return HEARTH_OK;
    const sym *l = &c->syms[left], *r = &c->syms[right];
    uint32_t len = l->len + r->len;
    if (len > c->v->max_token_len) return HEARTH_OK;
    int32_t id = tok_lookup(c->v, c->text + l->start, len);
    if (id < 0) return HEARTH_OK;
    /* the highest score first */
    return tok_heap_push(&c->heap,
                         (tok_cand){-(double)c->v->tokens[id].score, left, right, -1, len});
}

/* A symbol that is not a token: its bytes as byte-fallback tokens (llama.cpp
 * requires them; a vocabulary without them gets the unknown token instead). */
static hearth_err emit_symbol(spm_ctx *c, const sym *s, tok_ids *out) {
    int32_t id = tok_lookup(c->v, c->text + s->start, s->len);
    if (id >= 0) return tok_ids_push(out, id);
    for (uint32_t i = 0; i < s->len; i++) {
        int32_t b = c->v->byte_token[(uint8_t)c->text[s->start + i]];
        if (b < 0) b = c->v->unk;
        if (b < 0) continue;
        hearth_err err = tok_ids_push(out, b);
        if (err) return err;
    }
    return HEARTH_OK;
}

hearth_err tok_spm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out) {
    if (len == 0) return HEARTH_OK;
    if (len > INT32_MAX) return hr_fail(HEARTH_ERR_INVALID_ARG, "tokenizer: text too long");
    spm_ctx c = {.v = v, .text = text};
    c.syms = malloc(len * sizeof *c.syms);
    if (!c.syms) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t cl = tok_utf8_len((uint8_t)text[off]);
        if (cl > len - off) cl = len - off;
        c.syms[n] = (sym){(uint32_t)off, (uint32_t)cl, n - 1, off + cl < len ? n + 1 : -1};
        off += cl;
    }
    hearth_err err = HEARTH_OK;
    for (int32_t i = 1; i < n && !err; i++) err = try_bigram(&c, i - 1, i);
    while (c.heap.n && !err) {
        tok_cand b = tok_heap_pop(&c.heap);
        sym *l = &c.syms[b.left], *r = &c.syms[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) c.syms[r->next].prev = b.left;
        err = try_bigram(&c, l->prev, b.left);
        if (!err) err = try_bigram(&c, b.left, l->next);
    }
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc): c.syms is freed just below, on every path
    for (int32_t i = 0; i >= 0 && !err; i = c.syms[i].next) err = emit_symbol(&c, &c.syms[i], out);
    free(c.syms);
    free(c.heap.a);
    return err;
}
