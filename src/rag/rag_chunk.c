/*
 * rag_chunk.c - cutting a document into chunks (rag.h states the rules).
 *
 * Two passes: the text becomes a list of sentences (each knows whether it
 * opens a paragraph and how many words it has; a sentence longer than a
 * chunk is already cut between words), then sentences are packed. Words are
 * runs of bytes that are not ASCII white space, so a UTF-8 sequence is never
 * split and offsets always fall on character boundaries.
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

/* A word ends a sentence when it ends in . ! or ? (before closing quotes or
 * brackets) and is not a lone initial ("J.") - abbreviations like "e.g."
 * still end one: a cheap rule, and a wrong cut only costs some context. */
static bool ends_sentence(const char *t, size_t start, size_t end) {
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
        while (i < len && !is_space((unsigned char)t[i])) i++;
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
