/*
 * fuzz_rag_html.c - the HTML extractor (rag_extract_html.c) on any bytes:
 * libxml2 recovers what it can, and what comes out must be indexable text
 * whatever came in: valid UTF-8 without NUL bytes, no trailing white space,
 * within the text limit, a title of whole characters that fits its field,
 * and chunks the chunker accepts. The first byte picks the text limit (a
 * small one exercises the cut); a refusal must say why.
 */
#include "core/core.h"
#include "rag/rag_impl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const size_t max = data[0] & 1 ? (size_t)64 + data[0] : (size_t)1 << 20;
    rag_doc d;
    char why[256];
    memset(&d, 0, sizeof d);
    const char *no = rag_extract_html((const char *)data + 1, size - 1, max, &d, why, sizeof why);
    if (no) {
        if (!*no || d.text || d.title[0]) abort();
        return 0;
    }
    const size_t t = strlen(d.title);
    if (!d.text || d.text[d.len] != '\0' || strlen(d.text) != d.len || d.len > max ||
        !hr_utf8_valid(d.text, d.len, NULL) || t >= sizeof d.title ||
        !hr_utf8_valid(d.title, t, NULL) || (t && strncmp(d.text, d.title, t) != 0))
        abort();
    if (d.len && strchr(" \t\r\n\f\v", d.text[d.len - 1])) abort();
    rag_span *sp = NULL;
    size_t n = 0;
    if (rag_chunk(d.text, d.len, 200, 40, &sp, &n) != HEARTH_OK) abort();
    free(sp);
    rag_doc_fini(&d);
    return 0;
}
