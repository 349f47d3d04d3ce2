/*
 * rag_extract.c - from a file's bytes to the text the chunker reads: which
 * format a file is (its name first, its first bytes as a backup), the
 * plain-text check (UTF-8, no NUL), and the bounded buffer the HTML and PDF
 * extractors (rag_extract_html.c, rag_extract_pdf.c) write into.
 *
 * Whatever the format, what comes out is valid UTF-8 without NUL bytes, or
 * a reason to skip the file: input from disk is never an error of the
 * index, only of that file.
 */
#include "rag_impl.h"

#include "core/core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool has_ext(const char *path, const char *ext) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    return dot && strcasecmp(dot + 1, ext) == 0;
}

/* Whether data opens with prefix, ASCII case ignored. */
static bool opens_with(const char *data, size_t n, const char *prefix) {
    const size_t k = strlen(prefix);
    return n >= k && strncasecmp(data, prefix, k) == 0;
}

static bool sniff_html(const char *data, size_t n) {
    size_t i = 0;
    if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < n && is_ascii_space(data[i])) i++;
    static const char *const opens[] = {"<!doctype html", "<html", "<head", "<body"};
    for (size_t k = 0; k < sizeof opens / sizeof *opens; k++) {
        const size_t m = strlen(opens[k]);
        /* the tag's name must end there: "<header" is not "<head" */
        if (opens_with(data + i, n - i, opens[k]) &&
            (i + m == n || data[i + m] == '>' || is_ascii_space(data[i + m])))
            return true;
    }
    return false;
}

rag_format rag_format_of(const char *path, const char *data, size_t n) {
    if (has_ext(path, "pdf") || (n >= 5 && memcmp(data, "%PDF-", 5) == 0)) return RAG_FORMAT_PDF;
    if (has_ext(path, "html") || has_ext(path, "htm") || has_ext(path, "xhtml"))
        return RAG_FORMAT_HTML;
    /* Text formats whose content may well open with a tag stay text. */
    static const char *const text_exts[] = {"txt", "md", "markdown", "xml", "svg"};
    for (size_t k = 0; k < sizeof text_exts / sizeof *text_exts; k++)
        if (has_ext(path, text_exts[k])) return RAG_FORMAT_TEXT;
    return sniff_html(data, n) ? RAG_FORMAT_HTML : RAG_FORMAT_TEXT;
}

const char *rag_format_name(rag_format f) {
    return f == RAG_FORMAT_HTML ? "html" : f == RAG_FORMAT_PDF ? "pdf" : "text";
}

/* Why text is not indexable UTF-8 text, or NULL. */
static const char *not_text(const char *text, size_t n, char *why, size_t cap) {
    size_t bad;
    if (memchr(text, '\0', n)) return "binary (a NUL byte)";
    if (!hr_utf8_valid(text, n, &bad)) {
        snprintf(why, cap, "not UTF-8 text (an invalid sequence at byte %zu)", bad);
        return why;
    }
    return NULL;
}

const char *rag_extract(rag_format f, char *data, size_t n, size_t max_text_bytes, rag_doc *doc,
                        char *why, size_t cap) {
    memset(doc, 0, sizeof *doc);
    if (f == RAG_FORMAT_HTML) return rag_extract_html(data, n, max_text_bytes, doc, why, cap);
    if (f == RAG_FORMAT_PDF) return rag_extract_pdf(data, n, max_text_bytes, doc, why, cap);
    const char *no = not_text(data, n, why, cap);
    if (no) return no;
    doc->text = data;
    doc->len = n;
    return NULL;
}

void rag_doc_fini(rag_doc *doc) {
    free(doc->text);
    free(doc->page_start);
    memset(doc, 0, sizeof *doc);
}

bool rag_text_put(rag_text_buf *b, const char *s, size_t n) {
    if (b->over || b->nomem) return false;
    if (n > b->max - b->n) {
        b->over = true;
        return false;
    }
    if (b->n + n + 1 > b->cap) { /* + 1: the closing NUL */
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : 2 * cap;
        char *m = realloc(b->s, cap);
        if (!m) {
            b->nomem = true;
            return false;
        }
        b->s = m;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return true;
}

void rag_text_trim_end(rag_text_buf *b) {
    while (b->n && is_ascii_space(b->s[b->n - 1])) b->n--;
    if (b->s) b->s[b->n] = '\0';
}
