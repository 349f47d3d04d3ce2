/*
 * wordpiece.c - BERT's WordPiece (tokenizer.ggml.model = "bert"), as
 * llama.cpp's llm_tokenizer_wpm applies it to GGUF vocabularies, where word
 * pieces carry a leading U+2581 and continuation pieces ("##x" in BERT) none.
 *
 * Normalization (BertNormalizer): optionally strip accents (replace each code
 * point by the first of its canonical decomposition, drop combining marks) and
 * lowercase; drop NUL, U+FFFD and control/format characters; split on
 * whitespace; punctuation, ASCII symbols and CJK ideographs stand alone.
 * Each word, with U+2581 prepended, is then cut greedily into the longest
 * vocabulary pieces from the left; a word that cannot be cut completely is the
 * unknown token.
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

static bool is_cjk(uint32_t cp) {
    /* BERT's _is_chinese_char ranges (the 0x2B920 start follows the reference
     * implementation, which llama.cpp copies) */
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Cuts "\u2581" + word[0..n) into pieces; the unknown token when impossible. */
static hearth_err encode_word(const tok_vocab *v, const char *w, size_t n, tok_ids *out) {
    size_t first = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = n < i + v->max_token_len ? n : i + v->max_token_len;
        int32_t id = -1;
        for (; j > i; j--)
            if ((id = tok_lookup(v, w + i, j - i)) >= 0) break;
        if (id < 0) {
            out->n = first; /* discard the partial word */
            break;
        }
        hearth_err err = tok_ids_push(out, id);
        if (err) return err;
        i = j;
    }
    if (out->n == first && v->unk >= 0) return tok_ids_push(out, v->unk);
    return HEARTH_OK;
}

hearth_err tok_wpm_encode(const tok_vocab *v, const char *text, size_t len, tok_ids *out) {
    if (len == 0) return HEARTH_OK;
    uint32_t *cps = malloc(len * sizeof *cps);
    /* a word is "\u2581" + at most 4 bytes per code point */
    char *word = malloc(3 + 4 * len);
    if (!cps || !word) {
        free(cps);
        free(word);
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    }
    size_t n = tok_utf8_decode(text, len, cps);
    hearth_err err = HEARTH_OK;
    size_t wl = 3; /* bytes in word, after the U+2581 prefix */
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): U+2581's 3 bytes, a prefix
    memcpy(word, "\xe2\x96\x81", 3);
    for (size_t i = 0; i <= n && !err; i++) {
        uint32_t cp = i < n ? cps[i] : ' '; /* a final space ends the last word */
        if (v->strip_accents) cp = tok_uc_nfd_first(cp);
        int cls = tok_uc_class(cp);
        bool alone = false;
        if (tok_uc_is_space(cp)) {
            cp = 0; /* ends the word, adds nothing */
        } else if (cp == 0 || cp == 0xFFFD || cls == TOK_UC_CONTROL ||
                   (v->strip_accents && cls == TOK_UC_MARK)) {
            continue;
        } else {
            alone = cls == TOK_UC_PUNCT || (cp < 0x7F && cls == TOK_UC_SYMBOL) || is_cjk(cp);
        }
        if ((cp == 0 || alone) && wl > 3) {
            err = encode_word(v, word, wl, out);
            wl = 3;
        }
        if (cp == 0 || err) continue;
        wl += hr_utf8_put(v->lowercase ? tok_uc_tolower(cp) : cp, word + wl);
        if (alone) {
            err = encode_word(v, word, wl, out);
            wl = 3;
        }
    }
    free(cps);
    free(word);
    return err;
}
