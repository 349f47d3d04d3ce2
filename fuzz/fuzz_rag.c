/*
 * fuzz_rag.c - the retrieval layer's two parsers of outside text: the
 * chunker (any bytes; the first two pick the chunk and overlap sizes) and
 * the question turned into an FTS5 query (the rest of the input searched in
 * a small index built once). Chunks must be whole words, in order, within
 * their size, covering every word; a search must never fail on valid UTF-8
 * (a question is text, not query syntax) and must fail cleanly otherwise.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include "core/core.h"
#include "rag/rag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool blank(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Words as rag_word_end cuts them (a Han character is one: rag.h); whether
 * a chunk edge falls on word edges is checked through the same cuts. */
static int words_in(const uint8_t *t, size_t n) {
    int w = 0;
    for (size_t i = 0; i < n;) {
        if (blank(t[i])) {
            i++;
            continue;
        }
        i = rag_word_end((const char *)t, n, i);
        w++;
    }
    return w;
}

/* Whether byte a of t[0..n) is where a word starts (cutting from 0). */
static bool word_edge(const uint8_t *t, size_t n, size_t a) {
    for (size_t i = 0; i < n && i <= a;) {
        if (i == a) return true;
        i = blank(t[i]) ? i + 1 : rag_word_end((const char *)t, n, i);
    }
    return a == n;
}

static void check_chunks(const uint8_t *t, size_t n, int max, int overlap) {
    rag_span *s = NULL;
    size_t m = 0;
    if (rag_chunk((const char *)t, n, max, overlap, &s, &m) != HEARTH_OK) abort();
    size_t covered = 0;
    for (size_t i = 0; i < m; i++) {
        const size_t a = s[i].start, b = a + s[i].len;
        if (b > n || !s[i].len || blank(t[a]) || blank(t[b - 1]) || !word_edge(t, n, a) ||
            !word_edge(t, n, b) || words_in(t + a, s[i].len) != s[i].n_words ||
            s[i].n_words > max || (i && a <= s[i - 1].start))
            abort();
        if (i && a < s[i - 1].start + s[i - 1].len &&
            words_in(t + a, s[i - 1].start + s[i - 1].len - a) > overlap)
            abort();
        if (a > covered && words_in(t + covered, a - covered)) abort(); /* a word lost */
        if (b > covered) covered = b;
    }
    if (words_in(t + covered, n - covered)) abort();
    free(s);
}

static rag_index *index_once(void) {
    static rag_index *x;
    if (x) return x;
    char dir[] = "/tmp/hearth-fuzz-rag-XXXXXX", path[64];
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/a.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs("Cats purr. Steam engines turn heat into work. \"Quoted\" text AND NEAR(x) *.\n", f);
    fclose(f);
    const char *paths[] = {dir};
    rag_ingest_params p = rag_ingest_default_params();
    rag_ingest_stats st;
    if (rag_open(":memory:", true, &x) || rag_ingest(x, paths, 1, &p, &st) || st.added != 1)
        abort();
    unlink(path);
    rmdir(dir);
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const int max = 8 + data[0] % 120, overlap = data[1] % (max / 2 + 1);
    check_chunks(data + 2, size - 2, max, overlap);
    rag_hits h;
    const rag_query q = {.text = (const char *)data + 2, .len = size - 2, .k = 1 + data[0] % 10};
    const hearth_err err = rag_search(index_once(), &q, &h);
    if (err == HEARTH_OK)
        rag_hits_free(&h);
    else if (err != HEARTH_ERR_INVALID_ARG || hr_utf8_valid(data + 2, size - 2, NULL))
        abort();
    return 0;
}
