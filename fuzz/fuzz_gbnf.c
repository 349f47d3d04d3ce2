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
 *     reference's (tests/gbnf_ref.h);
 *   - the token mask (gbnf_mask.c, with its shortcut for tokens that loop)
 *     over a fixed vocabulary (every byte, pieces of several characters,
 *     partial characters) after the accepted bytes, each a token, equals
 *     reading each token with the recognizer.
 * Built with -DHEARTH_FUZZ=ON as a libFuzzer target, otherwise replays
 * fuzz/corpus/gbnf/.
 */
#include "../tests/gbnf_ref.h"
#include "sampling/gbnf.h"
#include "sampling/vocab_bytes.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The vocabulary: ids 0..254 the bytes 1..255, then pieces, then EOG. */
static const char *const pieces[] = {"ab",         "a b",
                                     "abc\"",      "\"",
                                     "{\"",        "\": ",
                                     "12",         "-3.5",
                                     "true",       "null",
                                     "\n",         " \n",
                                     "\xc3\xa9",   "\xc3",
                                     "\xa9",       "\xe2\x82\xac",
                                     "\xe2\x82",   "\xe6\x97\xa5\xe6\x9c\xac",
                                     "x\xc3\xa9y", "\xf0\x9f\x98\x80",
                                     "\xf0\x9f",   "\\u00",
                                     "(1",         "+",
                                     "]",          "[",
                                     ",",          "- ",
                                     "aaaa",       "\t\t"};
enum { N_PIECES = sizeof pieces / sizeof *pieces, N_TOY = 255 + N_PIECES + 1 };

static size_t toy_piece(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog) {
    (void)ctx;
    char one[2] = {(char)(id + 1), 0};
    const char *p = id < 255 ? one : id < 255 + N_PIECES ? pieces[id - 255] : "";
    *eog = id == N_TOY - 1;
    const size_t n = strlen(p);
    memcpy(buf, p, n < cap ? n : cap);
    return n;
}

static smp_vocab *toy_vocab(void) {
    static smp_vocab *v;
    if (!v && smp_vocab_new(N_TOY, toy_piece, NULL, &v)) abort();
    return v;
}

/* The mask after out[0, n) fed as byte tokens, against the recognizer
 * reading each token from there. */
static void check_mask(const char *text, const uint8_t *out, size_t n) {
    const smp_vocab *v = toy_vocab();
    smp_grammar *g = NULL, *g2 = NULL; /* the constraint's, and the recognizer's */
    smp_gramc *c = NULL;
    gbnf_m *m = NULL;
    if (smp_grammar_compile(text, &g2) || smp_gramc_new(v, g2, &c)) abort();
    if (smp_grammar_compile(text, &g) || gbnf_m_new(g, &m)) abort();
    uint32_t st = gbnf_m_start(m);
    for (size_t i = 0; i < n; i++) {
        if (!smp_gramc_advance(c, (int32_t)out[i] - 1)) abort();
        st = gbnf_m_step(m, st, out[i]);
        if (st >= GBNF_OVER) abort(); /* the caller fed only accepted bytes */
    }
    int32_t n_allowed = 0;
    const uint32_t *mask = smp_gramc_mask(c, &n_allowed);
    if (!mask) abort();
    for (int32_t id = 0; id < N_TOY; id++) {
        char buf[32];
        bool eog;
        const size_t len = toy_piece(NULL, id, buf, sizeof buf, &eog);
        bool want = eog ? gbnf_m_can_end(m, st) : len > 0 && !gbnf_m_done(m, st);
        uint32_t s = st;
        for (size_t i = 0; i < len && want && !eog; i++) {
            s = gbnf_m_step(m, s, (uint8_t)buf[i]);
            want = s < GBNF_OVER;
        }
        if (s == GBNF_FULL) break; /* a grammar of that many states: not judged here */
        if (want != (bool)(mask[id / 32] >> (id % 32) & 1)) abort();
    }
    gbnf_m_free(m);
    smp_grammar_free(g);
    smp_gramc_free(c);
}

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
    if (err) free(text);
    if (err) {
        if (g || strncmp(hearth_last_error(), "grammar: ", 9)) abort();
        return 0;
    }
    gbnf_m *m = NULL;
    err = gbnf_m_new(g, &m);
    if (err) {
        if (err != HEARTH_ERR_INVALID_ARG) abort();
        smp_grammar_free(g);
        free(text);
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
    /* the mask where the accepted bytes (none NUL: no such token) lead */
    if (!over && ok <= 256 && !memchr(out, 0, ok)) check_mask(text, out, ok);
    free(text);
    gbnf_m_free(m);
    smp_grammar_free(g);
    return 0;
}
