/*
 * fuzz_gbnf.c - GBNF grammars (src/sampling/gbnf*.c) on arbitrary input:
 * the bytes before the first NUL are a grammar text, the bytes after it an
 * output to feed the recognizer byte by byte.
 *   - parsing never crashes, hangs or leaks, and a refusal comes with a
 *     message "grammar: LINE:COLUMN: ..." (or a size limit's);
 *   - feeding stops at the first refused byte; the state reached is never a
 *     dead end: the text may end there or some byte goes on (or is past a
 *     limit, GBNF_OVER), which is what makes masks exact;
 *   - a flush keeps the state (the same answer for every next byte);
 *   - for short inputs, the verdict (viable, whole) equals the Earley
 *     reference's (tests/gbnf_ref.h).
 * Built with -DHEARTH_FUZZ=ON as a libFuzzer target, otherwise replays
 * fuzz/corpus/gbnf/.
 */
#include "../tests/gbnf_ref.h"
#include "sampling/gbnf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Steps, flushing (keeping st) when the tables are full. */
static uint32_t step(gbnf_m *m, uint32_t *st, uint8_t b) {
    uint32_t r = gbnf_m_step(m, *st, b);
    if (r == GBNF_FULL) {
        *st = gbnf_m_flush(m, *st);
        r = gbnf_m_step(m, *st, b);
        if (r == GBNF_FULL) abort(); /* one step always fits empty tables */
    }
    return r;
}

/* What a step's result says, comparable across a flush (ids change). */
static uint32_t verdict(const gbnf_m *m, uint32_t r) {
    if (r >= GBNF_OVER) return r;
    return (uint32_t)gbnf_m_can_end(m, r) + 2u * (uint32_t)gbnf_m_done(m, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    const size_t glen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(glen + 1);
    if (!text) abort();
    memcpy(text, data, glen);
    text[glen] = '\0';
    smp_grammar *g = NULL;
    hearth_err err = smp_grammar_compile(text, &g);
    free(text);
    if (err) {
        if (g || strncmp(hearth_last_error(), "grammar: ", 9)) abort();
        return 0;
    }
    gbnf_m *m = NULL;
    err = gbnf_m_new(g, &m);
    if (err) {
        if (err != HEARTH_ERR_INVALID_ARG) abort();
        smp_grammar_free(g);
        return 0;
    }
    const uint8_t *out = nul ? nul + 1 : data + size;
    const size_t n = nul ? size - glen - 1 : 0;
    uint32_t st = gbnf_m_start(m);
    size_t ok = 0;
    bool over = false;
    for (; ok < n; ok++) {
        const uint32_t r = step(m, &st, out[ok]);
        if (r == GBNF_DEAD) break;
        if (r == GBNF_OVER) {
            over = true;
            break;
        }
        st = r;
    }
    /* not a dead end */
    bool moves = gbnf_m_can_end(m, st);
    for (int c = 0; c < 256 && !moves; c++) moves = step(m, &st, (uint8_t)c) != GBNF_DEAD;
    if (!moves) abort();
    /* a flush keeps the state */
    uint32_t before[256];
    for (int c = 0; c < 256; c++) {
        const uint32_t r = step(m, &st, (uint8_t)c);
        before[c] = verdict(m, r);
    }
    st = gbnf_m_flush(m, st);
    for (int c = 0; c < 256; c++) {
        const uint32_t r = step(m, &st, (uint8_t)c);
        if (verdict(m, r) != before[c]) abort();
    }
    /* the reference agrees on what was accepted, and on the refused byte */
    if (!over && ok <= 48 && g->n_syms <= 500) {
        ref_g r = ref_new(g);
        const int want = ref_check(&r, out, ok);
        const int got = gbnf_m_can_end(m, st) ? 2 : 1;
        if (want != got) abort();
        if (ok < n && ref_check(&r, out, ok + 1) != 0) abort();
        ref_free(&r);
    }
    gbnf_m_free(m);
    smp_grammar_free(g);
    return 0;
}
