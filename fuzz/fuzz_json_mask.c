/*
 * fuzz_json_mask.c - the token masks of JSON Schema constrained output
 * (src/sampling/json_schema_mask.c, vocab_bytes.c) against brute force:
 * every shortcut (text tokens as a block by the characters they add,
 * maxLength's stored masks, canonical keys, the walk over sorted tokens
 * and its skips, the cache by state) must give exactly the tokens whose
 * bytes, fed to a copy of the recognizer's state, are accepted.
 *
 * Input: byte 0 picks a schema (one of a small set, or the text up to the
 * first NUL after byte 1), byte 1 its bound (maxLength ...), then up to the
 * next NUL the path: at each step the byte picks one of the allowed tokens
 * to take next (so the output goes deep however the fuzzer mutates), and
 * the rest is a vocabulary, tokens separated by NUL, added to a fixed set
 * that has quotes, backslashes, escapes, whole and partial UTF-8, digits,
 * brackets, tokens of 254, 255 and 256 characters (those of 255 or more are
 * fed one by one) and one of 128 escapes. At most 256 tokens, 64 steps.
 *   - in every state along the path the mask and its count equal brute
 *     force; advance takes the allowed token picked and refuses a token the
 *     mask refuses (leaving the state as it was);
 *   - the end-of-generation token is allowed iff the output can end.
 * Built with -DHEARTH_FUZZ=ON as a libFuzzer target, otherwise replays
 * fuzz/corpus/json_mask/.
 */
#include "sampling/json_schema.h"
#include "sampling/vocab_bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_TOKENS = 256, MAX_TOKEN_BYTES = 64, MAX_STEPS = 64, LONG_TOKEN = 256 };

static const char *const base_tokens[] = {
    "\"",
    "\\",
    "\\\"",
    "\\\\",
    "\\n",
    "\\u",
    "\\u00",
    "\\u00e9",
    "\\u001f",
    "\\ud83d",
    "\\ude00",
    "\\ud83d\\ude00",
    "\xc3",
    "\xa9",
    "\xc3\xa9",
    "\xe6\xbc",
    "\xe6\xbc\xa2",
    "\xf0\x9f\x98\x80",
    "\xf0\x9f",
    "\x98\x80",
    "a",
    "ab",
    "abc",
    "hello",
    " ",
    "  ",
    "0",
    "1",
    "12",
    "-",
    ".",
    "e",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "{\"",
    "\":",
    "\",",
    "\"}",
    "\"]",
    " \"",
    "a\"",
    "ab\",",
    "\xc3\xa9\"",
    "\x01",
    "\t",
    "\n",
    "true",
    "null",
    "false",
    "\\t",
    "x\\",
    "\xff",
    "\xc0\x80",
    "\xed\xa0\x80",
    "a\xc3\xa9\xe6\xbc\xa2\xf0\x9f\x98\x80",
    "\\u00E9",
    "\\/",
    "\"\"",
    "1.5e3",
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"};

/* Schemas with %u for the bound (byte 1); all shorter than 900 bytes. */
static const char *const schemas[] = {
    "{\"type\":\"string\",\"maxLength\":%u}",
    "{\"type\":\"string\",\"minLength\":%u}",
    "{\"type\":\"string\",\"minLength\":%u,\"maxLength\":%u}",
    "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":%u},{\"type\":\"string\",\"minLength\":2,"
    "\"maxLength\":5},{\"type\":\"integer\"}]}",
    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":%u},\"maxItems\":4}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\\\"\":{\"type\":"
    "\"string\",\"maxLength\":%u}},\"additionalProperties\":true}",
    "{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"string\"}},"
    "\"additionalProperties\":{\"type\":\"string\",\"maxLength\":%u}}",
    "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\",\"maxLength\":%u}}",
    "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":true},"
    "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\",\"maxLength\":%u}}]}",
    "{\"enum\":[\"a\\u00e9\",\"ab\",\"\\\"\",12,\"\xc3\xa9%u\"]}",
    "{\"type\":\"object\"}",
    "{\"type\":[\"string\",\"number\",\"null\"],\"maxLength\":%u}",
};
enum { N_SCHEMAS = sizeof schemas / sizeof *schemas };

typedef struct vocab_src {
    const uint8_t *piece[MAX_TOKENS];
    size_t len[MAX_TOKENS];
    int n, eog;
} vocab_src;

static size_t piece_of(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog) {
    const vocab_src *t = ctx;
    *eog = id == t->eog;
    memcpy(buf, t->piece[id], t->len[id] < cap ? t->len[id] : cap);
    return t->len[id];
}

/* The bound: mostly small, sometimes around 255 (the stored masks end
 * below it, and tokens of 255 or more characters are fed one by one). */
static unsigned bound_of(uint8_t b) { return b >= 240 ? 245u + (b - 240u) : b % 24u; }

/* The schema text for the input (NULL: none); *used: bytes of data read. */
static char *schema_of(const uint8_t *data, size_t size, size_t *used) {
    char *text = NULL;
    if (data[0] % (N_SCHEMAS + 1) == N_SCHEMAS) { /* the input's own text */
        const uint8_t *nul = memchr(data + 2, 0, size - 2);
        const size_t n = nul ? (size_t)(nul - data - 2) : size - 2;
        if (!(text = malloc(n + 1))) abort();
        memcpy(text, data + 2, n);
        text[n] = '\0';
        *used = 2 + n + (nul != NULL);
        return text;
    }
    const unsigned b = bound_of(data[1]);
    if (!(text = malloc(1024))) abort();
    size_t n = 0;
    int k = 0; /* the first %u is the bound, a second one the bound + 3 */
    for (const char *t = schemas[data[0] % (N_SCHEMAS + 1)]; *t; t++) {
        if (t[0] == '%' && t[1] == 'u') {
            n += (size_t)snprintf(text + n, 1024 - n, "%u", b + (k++ ? 3u : 0u));
            t++;
        } else {
            text[n++] = *t;
        }
    }
    text[n] = '\0';
    *used = 2;
    return text;
}

/* Brute force: token id's bytes fed to a copy of st. */
static bool brute(const smp_schema *s, const smp_sstate *st, const smp_vocab *v, int32_t id) {
    const bool eog = smp_bit(v->eog, id);
    if (smp_sstate_done(st)) return eog;
    if (eog) return smp_sstate_can_end(s, st);
    const uint32_t n = v->off[id + 1] - v->off[id];
    if (n == 0 || n > SMP_VOCAB_PIECE_MAX) return false;
    smp_sstate t;
    smp_sstate_copy(&t, st);
    return smp_sstate_feed(s, &t, v->bytes + v->off[id], n);
}

static void run_path(const smp_schema *s, smp_schemac *c, const smp_vocab *v, const uint8_t *path,
                     size_t n_path) {
    smp_sstate *st = malloc(sizeof *st);
    if (!st) abort();
    smp_sstate_init(st);
    for (size_t step = 0; step <= n_path && step < MAX_STEPS; step++) {
        int32_t n_allowed = 0, n_brute = 0;
        const uint32_t *mask = smp_schemac_mask(c, &n_allowed);
        for (int32_t id = 0; id < v->n_vocab; id++) {
            const bool want = brute(s, st, v, id);
            if (want != smp_bit(mask, id)) {
                fprintf(stderr, "step %zu: token %d mask %d, brute force %d\n", step, (int)id,
                        (int)smp_bit(mask, id), (int)want);
                abort();
            }
            n_brute += want;
        }
        if (n_allowed != n_brute) abort();
        if (n_allowed < v->n_vocab) { /* a token the mask refuses, advance refuses too */
            int32_t no = (int32_t)(step < n_path ? path[step] : 0) % v->n_vocab;
            while (smp_bit(mask, no)) no = (no + 1) % v->n_vocab;
            if (smp_schemac_advance(c, no)) abort();
        }
        if (step == n_path || n_allowed == 0) break;
        int32_t pick = path[step] % n_allowed, id = 0; /* the pick-th allowed token */
        for (;; id++)
            if (smp_bit(mask, id) && pick-- == 0) break;
        if (!smp_schemac_advance(c, id)) abort();
        if (smp_bit(v->eog, id)) break; /* the output ended */
        if (!smp_sstate_feed(s, st, v->bytes + v->off[id], v->off[id + 1] - v->off[id])) abort();
    }
    free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t used = 0;
    char *text = schema_of(data, size, &used);
    smp_schema *s = NULL, *own = NULL;
    const bool ok = !smp_schema_compile(text, &s) && !smp_schema_compile(text, &own);
    free(text);
    if (!ok) {
        smp_schema_free(s);
        smp_schema_free(own);
        return 0;
    }
    const uint8_t *path = data + used, *end = data + size;
    const uint8_t *nul = memchr(path, 0, (size_t)(end - path));
    const size_t n_path = nul ? (size_t)(nul - path) : (size_t)(end - path);
    static uint8_t long_token[LONG_TOKEN], escapes[LONG_TOKEN];
    memset(long_token, 'a', sizeof long_token);
    for (int i = 0; i < LONG_TOKEN; i += 2) escapes[i] = '\\', escapes[i + 1] = 't';
    vocab_src src = {.n = 0};
    for (size_t i = 0; i < sizeof base_tokens / sizeof *base_tokens; i++, src.n++) {
        src.piece[src.n] = (const uint8_t *)base_tokens[i];
        src.len[src.n] = strlen(base_tokens[i]);
    }
    for (size_t n = LONG_TOKEN - 2; n <= LONG_TOKEN; n++)
        src.piece[src.n] = long_token, src.len[src.n++] = n;
    src.piece[src.n] = escapes, src.len[src.n++] = sizeof escapes;
    src.piece[src.n] = long_token, src.len[src.n++] = 0; /* empty, never allowed */
    src.eog = src.n++;
    src.piece[src.eog] = long_token, src.len[src.eog] = 0;
    for (const uint8_t *p = nul ? nul + 1 : end; p < end && src.n < MAX_TOKENS; src.n++) {
        const uint8_t *q = memchr(p, 0, (size_t)(end - p));
        const size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
        src.piece[src.n] = p;
        src.len[src.n] = n < MAX_TOKEN_BYTES ? n : MAX_TOKEN_BYTES;
        p += n + 1;
    }
    smp_vocab *v = NULL;
    smp_schemac *c = NULL;
    if (smp_vocab_new(src.n, piece_of, &src, &v) || smp_schemac_new(v, own, &c)) abort();
    run_path(s, c, v, path, n_path);
    smp_schemac_free(c);
    smp_vocab_free(v);
    smp_schema_free(s);
    return 0;
}
