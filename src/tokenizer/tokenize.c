/*
 * tokenize.c - tok_encode: text -> ids, the part common to every algorithm.
 *
 * As in llama.cpp's llama_vocab::impl::tokenize:
 *   1. special-token text is cut out of the raw text first ("partition"): the
 *      vocabulary's control, unknown and user-defined tokens, longest first;
 *      control and unknown tokens only when parse_special is set, user-defined
 *      ones always. A token with the rstrip / lstrip attribute swallows the
 *      whitespace after / before it.
 *   2. each remaining piece of raw text is tokenized on its own by the
 *      vocabulary's algorithm (SentencePiece: spaces become U+2581, and a space
 *      is prepended at the start and after each special token when the
 *      vocabulary adds a space prefix; Gemma 4's BPE: spaces become U+2581,
 *      never a prefix; the unigram model normalizes each piece itself);
 *   3. with add_special, BOS / EOS (WordPiece: [CLS] / [SEP]) go around it.
 */
#include "tokenizer/tok_impl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

hearth_err tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        int32_t *np = realloc(ids->p, cap * sizeof *np);
        if (!np) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %zu ids", cap);
        ids->p = np, ids->cap = cap;
    }
    ids->p[ids->n++] = id;
    return HEARTH_OK;
}

/* A piece of the input: raw text [off, off + len) or a special token. */
typedef struct frag {
    int32_t id; /* -1: raw text */
    size_t off, len;
} frag;

typedef struct frag_list {
    frag *p;
    size_t n, cap;
} frag_list;

static hearth_err frag_push(frag_list *l, int32_t id, size_t off, size_t len) {
    if (id < 0 && len == 0) return HEARTH_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        frag *np = realloc(l->p, cap * sizeof *np);
        if (!np) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory");
        l->p = np, l->cap = cap;
    }
    l->p[l->n++] = (frag){id, off, len};
    return HEARTH_OK;
}

/* First occurrence of needle[0..nl) in hay[0..hl), or NULL (nl > 0). */
static const char *find_bytes(const char *hay, size_t hl, const char *needle, size_t nl) {
    while (hl >= nl) {
        const char *p = memchr(hay, needle[0], hl - nl + 1);
        if (!p) return NULL;
        if (!memcmp(p, needle, nl)) return p;
        hl -= (size_t)(p - hay) + 1;
        hay = p + 1;
    }
    return NULL;
}

static bool is_c_space(char c) { return isspace((unsigned char)c) != 0; }

/* Splits raw fragment f around every occurrence of special token id. */
static hearth_err split_frag(const tok_vocab *v, const char *text, frag f, int32_t id,
                             frag_list *out) {
    const char *tt = tok_str(v, id);
    size_t tl = v->tokens[id].len, pos = f.off, end = f.off + f.len;
    uint32_t attr = v->tokens[id].attr;
    hearth_err err = HEARTH_OK;
    while (!err && end - pos >= tl) {
        const char *m = find_bytes(text + pos, end - pos, tt, tl);
        if (!m) break;
        size_t at = (size_t)(m - text), left = at - pos;
        if (attr & TOK_ATTR_LSTRIP)
            while (left > 0 && is_c_space(text[pos + left - 1])) left--;
        err = frag_push(out, -1, pos, left);
        if (!err) err = frag_push(out, id, at, tl);
        pos = at + tl;
        if (attr & TOK_ATTR_RSTRIP)
            while (pos < end && is_c_space(text[pos])) pos++;
    }
    if (!err) err = frag_push(out, -1, pos, end - pos);
    return err;
}

static hearth_err partition(const tok_vocab *v, const char *text, size_t len, bool parse_special,
                            frag_list *out) {
    frag_list a = {0}, b = {0};
    hearth_err err = frag_push(&a, -1, 0, len);
    bool seen[256] = {false}; /* bytes present: skips tokens that cannot occur */
    for (size_t i = 0; i < len; i++) seen[(uint8_t)text[i]] = true;
    for (int32_t s = 0; s < v->n_special && !err; s++) {
        int32_t id = v->special[s];
        const tok_token *t = &v->tokens[id];
        if (!parse_special && (t->attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
        if (t->len > len || !seen[(uint8_t)tok_str(v, id)[0]]) continue;
        b.n = 0;
        for (size_t i = 0; i < a.n && !err; i++)
            err = a.p[i].id >= 0 ? frag_push(&b, a.p[i].id, a.p[i].off, a.p[i].len)
                                 : split_frag(v, text, a.p[i], id, &b);
        frag_list t2 = a;
        a = b, b = t2;
    }
    free(b.p);
    if (err) {
        free(a.p);
        return err;
    }
    *out = a;
    return HEARTH_OK;
}

/* SentencePiece and Gemma 4's BPE: the optional space prefix, then ' ' ->
 * U+2581, then the algorithm. */
static hearth_err escaped_fragment(const tok_vocab *v, const char *s, size_t len, bool prefix,
                                   tok_ids *out) {
    size_t n_sp = prefix;
    for (size_t i = 0; i < len; i++) n_sp += s[i] == ' ';
    char *buf = malloc(len + 2 * n_sp + 3);
    if (!buf) return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    size_t w = 0;
    for (size_t i = 0; i < len + prefix; i++) {
        char c = (prefix && i == 0) ? ' ' : s[i - prefix];
        if (c == ' ') {
            // NOLINTNEXTLINE(bugprone-not-null-terminated-result): U+2581's 3 bytes
            memcpy(buf + w, "\xe2\x96\x81", 3);
            w += 3;
        } else {
            buf[w++] = c;
        }
    }
    hearth_err err =
        v->type == TOK_TYPE_SPM ? tok_spm_encode(v, buf, w, out) : tok_bpe_encode(v, buf, w, out);
    free(buf);
    return err;
}

static hearth_err encode_all(const tok_vocab *v, const char *text, const frag_list *fr,
                             bool add_special, tok_ids *out) {
    hearth_err err = HEARTH_OK;
    bool bos = add_special && (v->type == TOK_TYPE_WPM || v->add_bos) && v->bos >= 0;
    if (bos) err = tok_ids_push(out, v->bos);
    bool prev_special = true; /* SentencePiece: prefix a space at the start */
    for (size_t i = 0; i < fr->n && !err; i++) {
        const frag *f = &fr->p[i];
        if (f->id >= 0) {
            err = tok_ids_push(out, f->id);
            prev_special = true;
            continue;
        }
        const char *s = text + f->off;
        switch (v->type) {
        case TOK_TYPE_SPM:
            err = escaped_fragment(v, s, f->len, v->add_space_prefix && prev_special, out);
            break;
        case TOK_TYPE_BPE:
            err = v->spm_bpe ? escaped_fragment(v, s, f->len, false, out)
                             : tok_bpe_encode(v, s, f->len, out);
            break;
        case TOK_TYPE_WPM: err = tok_wpm_encode(v, s, f->len, out); break;
        case TOK_TYPE_UGM: err = tok_ugm_encode(v, s, f->len, out); break;
        }
        prev_special = false;
    }
    if (!err && add_special) {
        int32_t last = v->type == TOK_TYPE_WPM ? v->sep : v->add_eos ? v->eos : -1;
        if (last >= 0) err = tok_ids_push(out, last);
    }
    return err;
}

hearth_err tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t *ids, size_t cap, size_t *n_out) {
    if (!text && len) return hr_fail(HEARTH_ERR_INVALID_ARG, "tokenize: text is NULL");
    /* offsets inside the algorithms are 32-bit */
    if (len > INT32_MAX / 4)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "tokenize: %zu bytes of text exceed the 512 MiB limit", len);
    frag_list fr = {0};
    tok_ids out = {0};
    hearth_err err = len ? partition(v, text, len, parse_special, &fr) : HEARTH_OK;
    if (!err) err = encode_all(v, text, &fr, add_special, &out);
    if (!err) {
        if (out.n > cap) {
            err =
                hr_fail(HEARTH_ERR_INVALID_ARG,
                        "tokenize: the text needs %zu tokens but the buffer holds %zu", out.n, cap);
        } else if (out.n) {
            memcpy(ids, out.p, out.n * sizeof *ids);
        }
        *n_out = out.n;
    }
    free(fr.p);
    free(out.p);
    return err;
}
