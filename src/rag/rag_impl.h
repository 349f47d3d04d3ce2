/*
 * rag_impl.h - private to the rag folder: the index handle, what its files
 * share, and the text extractors (HTML, PDF) that turn a file into the text
 * the chunker reads.
 */
#ifndef HEARTH_RAG_IMPL_H
#define HEARTH_RAG_IMPL_H

#include "rag.h"

#include <sqlite3.h>

struct rag_index {
    sqlite3 *db;
    /* The vectors, read once and again whenever another connection has
     * written the database since (PRAGMA data_version changes). */
    float *vecs;     /* [n_vecs][n_dims] */
    int64_t *vec_id; /* [n_vecs] chunk ids */
    int64_t n_vecs;
    int n_dims;
    int64_t data_version; /* -1: never loaded */
    /* rag_info_get's answer, kept the same way (searches ask for it each time) */
    rag_info info;
    int64_t info_version; /* -1: to be read */
};

/* PRAGMA data_version: moves when another connection commits (our own
 * writes do not move it, so rag_ingest resets the two versions above). */
int64_t rag_data_version(rag_index *x);

/* meta: a small key-value table (the chunk settings, the embedding model). */
hearth_err rag_meta_get(rag_index *x, const char *key, char *out, size_t cap, bool *found);
hearth_err rag_meta_set(rag_index *x, const char *key, const char *value);

/* Fills the vector cache when the database changed since it was loaded. */
hearth_err rag_vectors_load(rag_index *x);

/* Frees what a hit holds (rag_search.c). */
void rag_hit_fini(rag_hit *h);

/* ---- text extraction (rag_extract.c, rag_extract_html.c, rag_extract_pdf.c) ----
 * A file's format comes from its name (.html .htm .xhtml, .pdf), then from
 * its first bytes: "%PDF-" is a PDF whatever the name, and a file of no known
 * extension that opens (after a BOM and white space) with "<!doctype html",
 * "<html", "<head" or "<body" is HTML. Everything else is read as text. */
typedef enum rag_format {
    RAG_FORMAT_TEXT,
    RAG_FORMAT_HTML,
    RAG_FORMAT_PDF,
} rag_format;

rag_format rag_format_of(const char *path, const char *data, size_t n);
const char *rag_format_name(rag_format f); /* "text", "html", "pdf" */

/* A document's indexable text: valid UTF-8 without NUL bytes. */
typedef struct rag_doc {
    char *text; /* malloc'd, NUL-terminated; for plain text, the file's own buffer */
    size_t len;
    char title[256]; /* HTML <title> (white space collapsed, cut at a character); "" if none */
    /* PDF: page i's text starts at byte page_start[i] of text (malloc'd,
     * ascending, [n_pages]); NULL and 0 for other formats. */
    size_t *page_start;
    int n_pages;
} rag_doc;

/* The text of a file whose bytes are data[0..n) (the caller keeps them; a
 * NUL byte follows them). Takes ownership of data for plain text (then
 * doc->text == data) and leaves it with the caller otherwise. Returns NULL
 * on success, else why the file is not indexed (a static string or one
 * written into why[cap]); doc is then empty and data still the caller's.
 * max_text_bytes bounds the extracted text and, for a PDF, its pages
 * (max_text_bytes / 1024, at least 16): past either the file is skipped. */
const char *rag_extract(rag_format f, char *data, size_t n, size_t max_text_bytes, rag_doc *doc,
                        char *why, size_t cap);
void rag_doc_fini(rag_doc *doc); /* frees what rag_extract filled; zeroes it */

/* The two extractors behind rag_extract (same contract; data stays the
 * caller's). The HTML one walks libxml2's recovered tree: rag_extract_html.c
 * says which elements become breaks and which are dropped. */
const char *rag_extract_html(const char *data, size_t n, size_t max_text_bytes, rag_doc *doc,
                             char *why, size_t cap);
const char *rag_extract_pdf(const char *data, size_t n, size_t max_text_bytes, rag_doc *doc,
                            char *why, size_t cap);

/* A growing UTF-8 buffer with a hard cap (what extractors write into). */
typedef struct rag_text_buf {
    char *s;
    size_t n, cap, max; /* max: bytes allowed before the buffer refuses */
    bool over;          /* a write was refused for the cap */
    bool nomem;
} rag_text_buf;

bool rag_text_put(rag_text_buf *b, const char *s, size_t n); /* false: over the cap or no memory */
void rag_text_trim_end(rag_text_buf *b);                     /* drops trailing ASCII white space */

#endif
