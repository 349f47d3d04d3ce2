/*
 * detok.c - ids -> text: the piece of one token (llama.cpp's token_to_piece),
 * whole sequences (llama_detokenize, with its leading-space removal and GPT-2
 * clean-up) and the streaming detokenizer that only ever hands out complete,
 * valid UTF-8.
 *
 * Pieces are raw bytes: a token may hold part of a character (byte-fallback
 * and byte-level tokens do), and a model may produce byte sequences that are
 * not UTF-8 at all. tok_piece and tok_detokenize return such bytes as they
 * are; tok_stream repairs them (utf8.c) before anyone displays them.
 */
#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends to a bounded buffer while counting the full length. */
typedef struct sink {
    char *buf;
    size_t cap, n;
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->n < s->cap) {
        size_t k = s->cap - s->n < n ? s->cap - s->n : n;
        memcpy(s->buf + s->n, p, k);
    }
    s->n += n;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte of a "<0xNN>" token (strtol-like: stops at the first non-digit). */
static char byte_of(const char *t, size_t len) {
    int v = 0;
    for (size_t i = 3; i < 5 && i < len && hexval(t[i]) >= 0; i++) v = v * 16 + hexval(t[i]);
    return (char)v;
}

/* Byte-level BPE text -> bytes. A code point outside the byte alphabet is
 * written the way llama.cpp writes it: "[UNK_BYTE_0x<its utf-8 in hex><the
 * token's text>]". */
static void put_bpe_text(sink *s, const char *t, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = tok_utf8_next(t + i, len - i, &cp);
        int b = tok_bpe_char_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            put(s, &c, 1);
        } else {
            char u8[4], hex[16];
            size_t n = hr_utf8_put(cp, u8);
            put(s, "[UNK_BYTE_0x", 12);
            for (size_t j = 0; j < n; j++) {
                snprintf(hex, sizeof hex, "%02x", (unsigned)(uint8_t)u8[j]);
                put(s, hex, 2);
            }
            put(s, t, len);
            put(s, "]", 1);
        }
        i += k;
    }
}

/* SentencePiece / WordPiece / Gemma 4 text: U+2581 -> ' '. */
static void put_unescaped(sink *s, const char *t, size_t len) {
    size_t from = 0;
    for (size_t i = 0; i + 3 <= len; i++) {
        if (memcmp(t + i, "\xe2\x96\x81", 3)) continue;
        put(s, t + from, i - from);
        put(s, " ", 1);
        from = i + 3;
        i += 2;
    }
    put(s, t + from, len - from);
}

size_t tok_piece_write(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap) {
    sink s = {buf, cap, 0};
    const tok_token *t = &v->tokens[id];
    const char *text = tok_str(v, id);
    if (t->attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        if (special || !(t->attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) put(&s, text, t->len);
    } else if (t->attr & TOK_ATTR_NORMAL) {
        if (v->type == TOK_TYPE_BPE && !v->spm_bpe)
            put_bpe_text(&s, text, t->len);
        else
            put_unescaped(&s, text, t->len);
    } else if (t->attr & TOK_ATTR_BYTE) {
        char c = byte_of(text, t->len);
        put(&s, &c, 1);
    } /* unused and undefined tokens: nothing */
    return s.n;
}

size_t tok_piece_max(const tok_vocab *v) {
    size_t m = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        size_t n = tok_piece_write(v, i, true, NULL, 0);
        if (n > m) m = n;
    }
    return m;
}

hearth_err tok_piece(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap,
                     size_t *n_out) {
    if (id < 0 || id >= v->n_tokens)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "detokenize: token id %d is out of range [0, %d)",
                       (int)id, (int)v->n_tokens);
    size_t n = tok_piece_write(v, id, special, buf, cap);
    *n_out = n;
    if (n > cap)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "detokenize: token %d needs %zu bytes but the buffer holds %zu", (int)id, n,
                       cap);
    return HEARTH_OK;
}

/* GPT-2's clean_up_tokenization_spaces as llama.cpp applies it, three passes
 * over the text: drop the space before ? ! . , ; drop the spaces around a lone
 * apostrophe (" ' "); drop the space before the contractions 's 'm 're 've.
 * Returns the new length. */
static size_t clean_spaces(char *t, size_t n) {
    size_t w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) { /* t[i - 1] is still the input here */
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) w--;
        t[w++] = x;
    }
    n = w, w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            w--;           /* the space before */
            t[++i] = '\0'; /* the space after: skipped, and no longer a space to look back at */
        }
        t[w++] = x;
    }
    n = w, w = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = t[i + 1], x2 = i + 2 < n ? t[i + 2] : '\0';
            if (x1 == 's' || x1 == 'm' || (x2 == 'e' && (x1 == 'r' || x1 == 'v'))) w--;
        }
        t[w++] = x;
    }
    return w;
}

hearth_err tok_detokenize(const tok_vocab *v, const int32_t *ids, size_t n, bool remove_special,
                          bool special, char *out, size_t cap, size_t *n_out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v->n_tokens)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "detokenize: token id %d at %zu is out of range [0, %d)", (int)ids[i], i,
                           (int)v->n_tokens);
    bool strip = v->add_space_prefix; /* the space the tokenizer put in front */
    if (remove_special && v->add_bos && n > 0 && ids[0] == v->bos) {
        strip = false;
        ids++, n--;
    }
    if (remove_special && v->add_eos && n > 0 && ids[n - 1] == v->eos) n--;

    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += tok_piece_write(v, ids[i], special, NULL, 0);
    char *buf = malloc(total + 1);
    if (!buf) return hr_fail(HEARTH_ERR_NOMEM, "detokenize: out of memory for %zu bytes", total);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = tok_piece_write(v, ids[i], special, buf + w, total - w);
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): it wrote k bytes there
        if (i == 0 && strip && k > 0 && buf[w] == ' ') memmove(buf + w, buf + w + 1, --k);
        w += k;
    }
    if (v->clean_spaces) w = clean_spaces(buf, w);
    *n_out = w;
    hearth_err err = HEARTH_OK;
    if (w > cap)
        err = hr_fail(HEARTH_ERR_INVALID_ARG,
                      "detokenize: the text needs %zu bytes but the buffer holds %zu", w, cap);
    else if (w)
        memcpy(out, buf, w);
    free(buf);
    return err;
}

/* ---- streaming ---- */

struct tok_stream {
    const tok_vocab *v;
    bool special;
    tok_utf8_state st;
    char *piece; /* [max_piece_len] */
    char *out;   /* [TOK_UTF8_OUT_MAX(max_piece_len)] */
};

hearth_err tok_stream_new(const tok_vocab *v, bool special, tok_stream **out) {
    tok_stream *s = hr_calloc(1, sizeof *s);
    if (!s) return HEARTH_ERR_NOMEM;
    s->v = v;
    s->special = special;
    s->piece = malloc(v->max_piece_len + 1);
    s->out = malloc(TOK_UTF8_OUT_MAX(v->max_piece_len));
    if (!s->piece || !s->out) {
        tok_stream_free(s);
        return hr_fail(HEARTH_ERR_NOMEM, "detokenize: out of memory for a stream");
    }
    *out = s;
    return HEARTH_OK;
}

void tok_stream_free(tok_stream *s) {
    if (!s) return;
    free(s->piece);
    free(s->out);
    free(s);
}

hearth_err tok_stream_push(tok_stream *s, int32_t id, const char **text, size_t *len) {
    if (id < 0 || id >= s->v->n_tokens)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "detokenize: token id %d is out of range [0, %d)",
                       (int)id, (int)s->v->n_tokens);
    size_t n = tok_piece_write(s->v, id, s->special, s->piece, s->v->max_piece_len);
    *len = tok_utf8_feed(&s->st, s->piece, n, s->out);
    *text = s->out;
    return HEARTH_OK;
}

void tok_stream_flush(tok_stream *s, const char **text, size_t *len) {
    *len = tok_utf8_finish(&s->st, s->out);
    *text = s->out;
}

void tok_stream_reset(tok_stream *s) { memset(&s->st, 0, sizeof s->st); }

size_t tok_piece_shown(const void *vocab, int32_t id, char *buf, size_t cap, bool *eog) {
    const tok_vocab *v = vocab;
    *eog = tok_is_eog(v, id);
    if (id < 0 || id >= tok_n_vocab(v)) return 0;
    size_t n = 0;
    /* in range tok_piece fails only when cap is short, and still reports n */
    if (tok_piece(v, id, false, buf, cap, &n) && n <= cap) return 0;
    return n;
}
