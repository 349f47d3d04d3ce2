/*
 * rag_extract_pdf.c - the text layer of a PDF, page by page, through
 * poppler's GLib API (poppler_document_new_from_bytes on the bytes already
 * read, poppler_page_get_text per page: lines in reading order).
 *
 * Pages are separated by a blank line (a paragraph break for the chunker)
 * and doc->page_start records where each begins, so a chunk can name its
 * pages. What cannot be indexed is a reason, never an error: an encrypted
 * PDF that needs a password, a file poppler cannot read, a PDF whose pages
 * hold no text (scanned images without OCR), more pages or text than the
 * limits allow. poppler's text is UTF-8; a stray invalid byte becomes
 * U+FFFD and a NUL a space, so the text is always indexable.
 */
#include "rag_impl.h"

#include "core/core.h"

#include <poppler.h>

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One page's text into b, repaired where it is not UTF-8. */
static void put_page(rag_text_buf *b, const char *s, size_t n) {
    size_t bad;
    while (n && !b->over && !b->nomem) {
        const size_t ok = hr_utf8_valid(s, n, &bad) ? n : bad;
        size_t i = 0;
        while (i < ok) { /* NULs out */
            const char *z = memchr(s + i, '\0', ok - i);
            const size_t m = z ? (size_t)(z - (s + i)) : ok - i;
            rag_text_put(b, s + i, m);
            if (z) rag_text_put(b, " ", 1);
            i += m + (z != NULL);
        }
        if (ok == n) break;
        rag_text_put(b, "\xEF\xBF\xBD", 3);
        s += ok + 1;
        n -= ok + 1;
    }
}

/* Why the document could not be opened. */
static const char *open_failure(GError *e, char *why, size_t cap) {
    if (e && e->domain == POPPLER_ERROR && e->code == POPPLER_ERROR_ENCRYPTED)
        return "an encrypted PDF (it needs a password)";
    snprintf(why, cap, "not a readable PDF (poppler: %.120s)",
             e && e->message ? e->message : "no reason given");
    return why;
}

/* Appends every page's text to b, recording where each starts. */
static void read_pages(PopplerDocument *pd, int n_pages, rag_text_buf *b, size_t *page_start) {
    for (int i = 0; i < n_pages && !b->over && !b->nomem; i++) {
        rag_text_trim_end(b);
        if (b->n) rag_text_put(b, "\n\n", 2);
        page_start[i] = b->n;
        PopplerPage *page = poppler_document_get_page(pd, i);
        char *t = page ? poppler_page_get_text(page) : NULL;
        if (t) put_page(b, t, strlen(t));
        g_free(t);
        if (page) g_object_unref(page);
    }
    rag_text_trim_end(b);
}

const char *rag_extract_pdf(const char *data, size_t n, size_t max_text_bytes, rag_doc *doc,
                            char *why, size_t cap) {
    assert(why && cap); /* a reason may be written there */
    if (n > INT_MAX) return "too large for the PDF reader";
    GBytes *bytes = g_bytes_new_static(data, n); /* the document keeps its own reference */
    GError *gerr = NULL;
    PopplerDocument *pd = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    g_bytes_unref(bytes);
    if (!pd) {
        const char *no = open_failure(gerr, why, cap);
        g_clear_error(&gerr);
        return no;
    }
    const int n_pages = poppler_document_get_n_pages(pd);
    const size_t max_pages = max_text_bytes / 1024 > 16 ? max_text_bytes / 1024 : 16;
    rag_text_buf b = {.max = max_text_bytes};
    size_t *page_start = NULL;
    const char *no = NULL;
    if (n_pages <= 0) {
        no = "a PDF without pages";
    } else if ((size_t)n_pages > max_pages) {
        snprintf(why, cap, "a PDF of %d pages, over the limit of %zu", n_pages, max_pages);
        no = why;
    } else if (!(page_start = calloc((size_t)n_pages, sizeof *page_start))) {
        no = "out of memory extracting its text";
    } else {
        read_pages(pd, n_pages, &b, page_start);
        if (b.nomem) {
            no = "out of memory extracting its text";
        } else if (b.over) {
            snprintf(why, cap, "its text is over the limit of %zu bytes", max_text_bytes);
            no = why;
        } else if (!b.n) {
            no = "no text layer (scanned pages? run OCR on it first)";
        }
    }
    g_object_unref(pd);
    if (no) {
        free(b.s);
        free(page_start);
        return no;
    }
    for (int i = 0; i < n_pages; i++) /* trailing blank pages start where the text ends */
        if (page_start[i] > b.n) page_start[i] = b.n;
    doc->text = b.s;
    doc->len = b.n;
    doc->page_start = page_start;
    doc->n_pages = n_pages;
    return NULL;
}
