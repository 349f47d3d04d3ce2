/*
 * rag_chunk.c - cutting a document into chunks (rag.h states the rules).
 *
 * Two passes: the text becomes a list of sentences (each knows whether it
 * opens a paragraph and how many words it has; a sentence longer than a
 * chunk is already cut between words), then sentences are packed. Words are
 * runs of bytes that are not ASCII white space, except that each character
 * of a script written without spaces (Han, kana, their punctuation and
 * full-width forms; Thai, Lao, Khmer, Myanmar) is a word of its own: a
 * paragraph of Chinese or Japanese would otherwise be one "word" however
 * long, and its chunks would outgrow any embedder's context (a Han
 * character is about one token). A UTF-8 sequence is never split, so
 * offsets always fall on character boundaries.
 */
#include "rag.h"

#include "core/core.h"

#include <stdlib.h>

typedef struct sentence {
    size_t start, end; /* bytes: first word's first byte, last word's end */
    int n_words;
    bool para; /* opens a paragraph */
} sentence;

typedef struct sentences {
    sentence *s;
    size_t n, cap;
} sentences;

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Characters of the scripts written without spaces between words. */
static bool unspaced(uint32_t cp) {
    return (cp >= 0x0E00 && cp <= 0x0EFF) || /* Thai, Lao */
           (cp >= 0x1000 && cp <= 0x109F) || /* Myanmar */
           (cp >= 0x1780 && cp <= 0x17FF) || /* Khmer */
           (cp >= 0x2E80 && cp <= 0x30FF) || /* CJK radicals, punctuation, kana */
           (cp >= 0x31C0 && cp <= 0x31FF) || /* CJK strokes, katakana extension */
           (cp >= 0x3400 && cp <= 0x4DBF) || /* CJK extension A */
           (cp >= 0x4E00 && cp <= 0x9FFF) || /* CJK unified ideographs */
           (cp >= 0xF900 && cp <= 0xFAFF) || /* CJK compatibility ideographs */
           (cp >= 0xFF00 && cp <= 0xFFEF) || /* full-width and half-width forms */
           (cp >= 0x20000 && cp <= 0x3FFFF); /* CJK extensions B and later */
}

/* The code point at t[i] when it is a well-formed character of an unspaced
 * script (*n its bytes), else 0. */
static uint32_t unspaced_at(const char *t, size_t len, size_t i, size_t *n) {
    uint32_t cp = 0;
    if ((unsigned char)t[i] < 0x80 || !(*n = hr_utf8_next(t + i, len - i, &cp))) return 0;
    return unspaced(cp) ? cp : 0;
}

size_t rag_word_end(const char *t, size_t len, size_t i) {
    size_t n;
    if (unspaced_at(t, len, i, &n)) return i + n;
    while (i < len && !is_space((unsigned char)t[i]) && !unspaced_at(t, len, i, &n)) i++;
    return i;
}

/* A word ends a sentence when it ends in . ! or ? (before closing quotes or
 * brackets) and is not a lone initial ("J.") - abbreviations like "e.g."
 * still end one: a cheap rule, and a wrong cut only costs some context. An
 * ideographic full stop and a full-width ! ? . are words that end one. */
static bool ends_sentence(const char *t, size_t start, size_t end) {
    size_t n;
    const uint32_t cp = unspaced_at(t, end, start, &n);
    if (cp) return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF0E;
    size_t e = end;
    while (e > start && (t[e - 1] == '"' || t[e - 1] == '\'' || t[e - 1] == ')' || t[e - 1] == ']'))
        e--;
    if (e == start) return false;
    const char c = t[e - 1];
    if (c != '.' && c != '!' && c != '?') return false;
    return !(c == '.' && e - start == 2 && t[start] >= 'A' && t[start] <= 'Z');
}

static bool push(sentences *v, size_t start, size_t end, int n_words, bool para) {
    if (v->n == v->cap) {
        const size_t cap = v->cap ? 2 * v->cap : 64;
        sentence *s = realloc(v->s, cap * sizeof *s);
        if (!s) return false;
        v->s = s;
        v->cap = cap;
    }
    v->s[v->n++] = (sentence){start, end, n_words, para};
    return true;
}

/* The sentences of t[0..len); a sentence reaching max_words is closed there. */
static hearth_err split_sentences(const char *t, size_t len, int max_words, sentences *v) {
    size_t i = 0, start = 0, end = 0;
    int words = 0;
    bool para = true, next_para = true;
    while (i < len) {
        /* white space: count newlines to see a paragraph break */
        int newlines = 0;
        while (i < len && is_space((unsigned char)t[i])) newlines += t[i++] == '\n';
        if (i == len) break;
        if (newlines >= 2 || (newlines == 1 && t[i] == '#')) {
            if (words && !push(v, start, end, words, para)) goto oom;
            if (words) words = 0;
            next_para = true;
        }
        const size_t w0 = i;
        i = rag_word_end(t, len, i);
        if (!words) {
            start = w0;
            para = next_para;
            next_para = false;
        }
        end = i;
        if (++words == max_words || ends_sentence(t, w0, i)) {
            if (!push(v, start, end, words, para)) goto oom;
            words = 0;
        }
    }
    if (words && !push(v, start, end, words, para)) goto oom;
    return HEARTH_OK;
oom:
    return hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory cutting a document");
}

/* Words of the paragraph that starts at sentence i. */
static int paragraph_words(const sentences *v, size_t i) {
    int n = v->s[i].n_words;
    for (size_t j = i + 1; j < v->n && !v->s[j].para; j++) n += v->s[j].n_words;
    return n;
}

hearth_err rag_chunk(const char *text, size_t len, int max_words, int overlap_words, rag_span **out,
                     size_t *n_out) {
    if (max_words < 8 || max_words > 8192 || overlap_words < 0 || overlap_words > max_words / 2)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "rag: chunk of %d words with %d words of overlap (want 8..8192 words, "
                       "overlap at most half)",
                       max_words, overlap_words);
    sentences v = {0};
    hearth_err err = split_sentences(text, len, max_words, &v);
    rag_span *spans = NULL;
    size_t n = 0;
    if (!err && v.n) {
        spans = malloc(v.n * sizeof *spans); /* at most one chunk per sentence */
        if (!spans) err = hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory cutting a document");
    }
    size_t i = 0;
    while (!err && i < v.n) {
        /* take sentences [i, j) */
        size_t j = i;
        int words = 0;
        while (j < v.n && words + v.s[j].n_words <= max_words) {
            /* a new paragraph that cannot fit whole starts the next chunk */
            if (j > i && v.s[j].para && words + paragraph_words(&v, j) > max_words) break;
            words += v.s[j++].n_words;
        }
        spans[n++] = (rag_span){v.s[i].start, v.s[j - 1].end - v.s[i].start, words};
        if (j == v.n) break;
        /* cut inside a paragraph: repeat its last sentences, up to the overlap */
        size_t k = j;
        if (!v.s[j].para) {
            int back = 0;
            while (k - 1 > i && !v.s[k].para && back + v.s[k - 1].n_words <= overlap_words)
                back += v.s[--k].n_words;
        }
        i = k;
    }
    free(v.s);
    if (err) {
        free(spans);
        return err;
    }
    *out = spans;
    *n_out = n;
    return HEARTH_OK;
}
