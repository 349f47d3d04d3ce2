/*
 * test_json_prefix.c - JSON mode's recognizer and token masks (src/sampling/
 * json_prefix.c; the mask is JSON mode's schema {"type":"object"}, json_schema_mask.c):
 *   - a table of valid texts (every prefix accepted, complete at the end) and
 *     invalid ones (refused at the exact byte);
 *   - UTF-8 inside strings against the tokenizer's validator, every one- and
 *     two-byte sequence and three-byte ones over the boundary bytes;
 *   - random JSON (every escape, surrogate pairs, numbers of every shape,
 *     nesting to the limit): accepted and parsed by cJSON; mutated copies:
 *     wherever the recognizer stops, the accepted prefix completes to a text
 *     cJSON parses, and a text cJSON refuses is never complete;
 *   - the masks of a toy vocabulary against a brute force along sampled
 *     walks, and the sampler: only allowed tokens, the end-of-generation
 *     token once complete, -1 when nothing is allowed, reset;
 *   - the masks of real vocabularies (../shared tokenizer fixtures) against
 *     the brute force, with the time per mask printed.
 */
#include "core/core.h"
#include "sampling/json_prefix.h"
#include "sampling/json_schema.h"
#include "model/gguf.h"
#include "shared_vocab.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>

#include <time.h>

/* ---- helpers ------------------------------------------------------------------ */

/* Feeds s[0..n); returns the offset of the first refused byte, or n. */
static size_t accepted_len(smp_json *j, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!smp_json_feed(j, (uint8_t)s[i])) return i;
    return n;
}

static bool cjson_parses(const char *s, size_t n) {
    char *z = malloc(n + 1);
    if (!z) return false;
    memcpy(z, s, n);
    z[n] = '\0';
    /* With require_null_terminated the length must take the NUL in. */
    cJSON *root = cJSON_ParseWithLengthOpts(z, n + 1, NULL, true);
    const bool ok = root != NULL;
    cJSON_Delete(root);
    free(z);
    return ok;
}

/* The shortest bytes that make the text complete (smp_json_can_end), found
 * by a breadth-first search over the recognizer's states through its public
 * functions only, so an accepted prefix that cannot complete fails here.
 * Containers are not opened below the top (that never shortens the way). */
enum { BFS_MAX = 1 << 14, BFS_HASH = 1 << 15 };
typedef struct bfs_node {
    smp_json st;
    int parent;
    char byte;
} bfs_node;

static uint64_t state_hash(const smp_json *j) {
    const uint8_t *p = (const uint8_t *)j;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof *j; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static bool complete(const smp_json *from, char *out, size_t cap, size_t *n) {
    static const char alphabet[] = "}]\":,0DCu\\rueals{[ \x80\x90\xa0";
    static bfs_node nodes[BFS_MAX];
    static int table[BFS_HASH]; /* node index + 1, 0: empty */
    memset(table, 0, sizeof table);
    int n_nodes = 1, head = 0;
    nodes[0] = (bfs_node){*from, -1, 0};
    table[state_hash(from) & (BFS_HASH - 1)] = 1;
    *n = 0;
    for (; head < n_nodes; head++) {
        if (smp_json_can_end(&nodes[head].st)) break;
        for (const char *a = alphabet; *a; a++) {
            smp_json t = nodes[head].st;
            if (!smp_json_feed(&t, (uint8_t)*a)) continue;
            if (smp_json_depth(&t) > smp_json_depth(&nodes[head].st) &&
                smp_json_depth(&nodes[head].st) > 0)
                continue;
            uint64_t h = state_hash(&t) & (BFS_HASH - 1);
            bool seen = false;
            for (; table[h]; h = (h + 1) & (BFS_HASH - 1))
                if (!memcmp(&nodes[table[h] - 1].st, &t, sizeof t)) {
                    seen = true;
                    break;
                }
            if (seen) continue;
            if (n_nodes == BFS_MAX) return false;
            nodes[n_nodes] = (bfs_node){t, head, *a};
            table[h] = ++n_nodes;
        }
    }
    if (head == n_nodes) return false;
    size_t len = 0;
    for (int i = head; nodes[i].parent >= 0; i = nodes[i].parent) len++;
    if (len > cap) return false;
    *n = len;
    for (int i = head; nodes[i].parent >= 0; i = nodes[i].parent) out[--len] = nodes[i].byte;
    return true;
}

/* ---- the table ------------------------------------------------------------------ */

static const char *const valid_docs[] = {
    "{}",
    "  {\"a\": 1}",
    "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
    "\t\r\n{ \"k\" : \"v\" , \"e\" : [ ] , \"o\" : { } }\n",
    "[]",
    "[[[[]]]]",
    "\"\"",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\uFFFF\\ud83d\\ude00\\uD800\\uDC00\"",
    "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf \xed\x9f\xbf\"",
    "true",
    "false",
    "null",
    "0",
    "-0",
    "12",
    "-12.5e+10",
    "0.25E-3",
    "1e5",
    "[0,-0.0,1E+2,3e-0,45.6789]",
    "{\"\":\"\"}",
    "[\"a\",{\"b\":[true,false,null]},-1]",
    "{\"a\":0}",
    "{\"n\":1.5}  ",
    "[1 , 2 ,3]",
};

typedef struct bad_doc {
    const char *text;
    size_t len; /* 0: strlen */
    size_t bad; /* offset of the first byte that must be refused */
} bad_doc;

static const bad_doc bad_docs[] = {
    {"{]", 0, 1},
    {"[}", 0, 1},
    {"{\"a\" 1}", 0, 5},
    {"{\"a\":}", 0, 5},
    {"{\"a\":1,}", 0, 7},
    {"[1,]", 0, 3},
    {"[1 2]", 0, 3},
    {"{a:1}", 0, 1},
    {"{'a':1}", 0, 1},
    {"01", 0, 1},
    {"[01]", 0, 2},
    {"-01", 0, 2},
    {"+1", 0, 0},
    {".5", 0, 0},
    {"1.e5", 0, 2},
    {"1.5.", 0, 3},
    {"1e+-1", 0, 3},
    {"0x10", 0, 1},
    {"-", 0, 1}, /* the NUL after it */
    {"[-]", 0, 2},
    {"tru", 0, 3},
    {"trUe", 0, 2},
    {"nul1", 0, 3},
    {"falsey", 0, 5},
    {"{}x", 0, 2},
    {"{} {}", 0, 3},
    {"1 2", 0, 2},
    {"\"a\nb\"", 0, 2},
    {"\"\t\"", 0, 1},
    {"\"\\x\"", 0, 2},
    {"\"\\u12G4\"", 0, 5},
    {"\"\\uDC00\"", 0, 4}, /* a low surrogate alone */
    {"\"\\udfff\"", 0, 4},
    {"\"\\uD800\"", 0, 7}, /* a high surrogate not followed by a low one */
    {"\"\\uD800\\u0041\"", 0, 9},
    {"\"\\uD800\\uD800\"", 0, 10},
    {"\"\\uDBFFx\"", 0, 7},
    {"\"\xc0\xaf\"", 0, 1}, /* overlong */
    {"\"\xc1\xbf\"", 0, 1},
    {"\"\xe0\x80\xaf\"", 0, 2},
    {"\"\xe0\x9f\xbf\"", 0, 2},
    {"\"\xed\xa0\x80\"", 0, 2}, /* a surrogate */
    {"\"\xf0\x80\x80\xaf\"", 0, 2},
    {"\"\xf4\x90\x80\x80\"", 0, 2}, /* above U+10FFFF */
    {"\"\xf5\x80\x80\x80\"", 0, 1},
    {"\"\xff\"", 0, 1},
    {"\"\x80\"", 0, 1},
    {"\"\xc3\"", 0, 2}, /* a character cut short */
    {"\"\xe2\x82\"", 0, 3},
    {"\"\xe2\x82\xac\xac\"", 0, 4},
    {"\"a\0b\"", 5, 2},
    {"\xef\xbb\xbf{}", 0, 0}, /* no byte order mark */
    {"\v{}", 0, 0},
    {"{\"a\":1}\f", 0, 7},
    {"NaN", 0, 0},
    {"[Infinity]", 0, 1},
};

static void table(void) {
    for (size_t i = 0; i < sizeof valid_docs / sizeof *valid_docs; i++) {
        const char *d = valid_docs[i];
        const size_t n = strlen(d);
        smp_json j;
        smp_json_init(&j, false);
        size_t at = accepted_len(&j, d, n);
        CHECKF(at == n, "'%s' refused at %zu", d, at);
        CHECKF(smp_json_can_end(&j), "'%s' cannot end", d);
        /* A top-level number is complete only once something follows it. */
        if (!smp_json_done(&j)) CHECK(smp_json_feed(&j, ' ') && smp_json_done(&j));
        CHECK(!smp_json_feed(&j, '{') && smp_json_done(&j));
        CHECKF(cjson_parses(d, n), "cJSON refuses '%s'", d);
        /* Object mode takes exactly the texts whose value is an object. */
        smp_json_init(&j, true);
        size_t first = 0;
        while (first < n && strchr(" \t\r\n", d[first])) first++;
        at = accepted_len(&j, d, n);
        CHECKF(d[first] == '{' ? at == n && smp_json_done(&j) : at == first,
               "object mode: '%s' stopped at %zu", d, at);
    }
    for (size_t i = 0; i < sizeof bad_docs / sizeof *bad_docs; i++) {
        const bad_doc *b = &bad_docs[i];
        const size_t n = b->len ? b->len : strlen(b->text);
        smp_json j;
        smp_json_init(&j, false);
        /* The NUL after the text is fed too: it is never valid, so a text
         * whose every byte passes must be refused there. */
        const size_t at = accepted_len(&j, b->text, n + 1);
        CHECKF(at == b->bad, "'%s': refused at %zu, want %zu", b->text, at, b->bad);
        /* Refusing a byte leaves the state as it was. */
        smp_json k;
        smp_json_init(&k, false);
        accepted_len(&k, b->text, b->bad);
        CHECK(!memcmp(&j, &k, sizeof j));
    }
}

/* ---- depth and the byte alphabet ------------------------------------------------- */

static void depth(void) {
    smp_json j;
    for (int obj = 0; obj < 2; obj++) {
        smp_json_init(&j, obj);
        for (int i = 0; i < SMP_JSON_MAX_DEPTH; i++) {
            const char *open = obj ? "{\"\":" : "[";
            CHECK(smp_json_feed_bytes(&j, open, strlen(open)));
        }
        CHECK(smp_json_depth(&j) == SMP_JSON_MAX_DEPTH);
        /* The 65th is refused, by either bracket, without harm. */
        CHECK(!smp_json_feed(&j, '[') && !smp_json_feed(&j, '{'));
        CHECK(smp_json_feed(&j, '1'));
        for (int i = 0; i < SMP_JSON_MAX_DEPTH; i++) CHECK(smp_json_feed(&j, obj ? '}' : ']'));
        CHECK(smp_json_done(&j) && smp_json_depth(&j) == 0);
    }
    /* The white-space limit: SMP_JSON_WS_MAX in a row outside strings,
     * counted across a number's end, restarted by anything else; none in
     * strings. */
    char ws[SMP_JSON_WS_MAX + 1];
    memset(ws, ' ', sizeof ws);
    smp_json_init(&j, true);
    smp_json_limit_ws(&j);
    CHECK(smp_json_feed_bytes(&j, ws, SMP_JSON_WS_MAX) && !smp_json_feed(&j, '\n'));
    CHECK(smp_json_feed_bytes(&j, "{\"", 2) && smp_json_feed_bytes(&j, ws, sizeof ws));
    CHECK(smp_json_feed_bytes(&j, "\":1", 3) && smp_json_feed_bytes(&j, ws, SMP_JSON_WS_MAX));
    CHECK(!smp_json_feed(&j, '\t') && smp_json_feed(&j, ','));
    CHECK(smp_json_feed_bytes(&j, ws, SMP_JSON_WS_MAX) && smp_json_feed(&j, '"'));
    smp_json_init(&j, true); /* unlimited */
    for (int i = 0; i < 1000; i++) CHECK(smp_json_feed(&j, ' '));

    /* Mixed nesting: the stack remembers each level's kind. */
    smp_json_init(&j, false);
    const char *mix = "[{\"a\":[{\"b\":[[{}]]}]}]";
    CHECK(smp_json_feed_bytes(&j, mix, 14) && !smp_json_feed(&j, '}'));
    CHECK(accepted_len(&j, mix + 14, strlen(mix) - 14) == strlen(mix) - 14 && smp_json_done(&j));
}

/* Whether some continuation bytes (0..3 of them, boundary values only: the
 * rules of well-formed UTF-8 change only there) make s[0..n) valid UTF-8. */
static bool utf8_prefix_ok(const uint8_t *s, size_t n) {
    static const uint8_t cont[] = {0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf};
    uint8_t buf[8];
    memcpy(buf, s, n);
    if (hr_utf8_valid(buf, n, NULL)) return true;
    for (size_t a = 0; a < 6; a++) {
        buf[n] = cont[a];
        if (hr_utf8_valid(buf, n + 1, NULL)) return true;
        for (size_t b = 0; b < 6; b++) {
            buf[n + 1] = cont[b];
            if (hr_utf8_valid(buf, n + 2, NULL)) return true;
            for (size_t c = 0; c < 6; c++) {
                buf[n + 2] = cont[c];
                if (hr_utf8_valid(buf, n + 3, NULL)) return true;
            }
        }
    }
    return false;
}

/* String content bytes: accepted exactly while they are a prefix of valid
 * UTF-8 (bytes below 0x20 and the two that need escaping left out). */
static void utf8(void) {
    int mismatches = 0;
    for (int len = 1; len <= 3; len++) {
        static const uint8_t third[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                        0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xf4};
        const int n2 = len >= 2 ? 256 : 1, n3 = len >= 3 ? (int)sizeof third : 1;
        for (int a = 0x20; a < 256; a++) {
            if (a == '"' || a == '\\') continue;
            for (int b = 0; b < n2; b++) {
                if (len >= 2 && (b < 0x20 || b == '"' || b == '\\')) continue;
                for (int c = 0; c < n3; c++) {
                    if (len >= 3 && third[c] < 0x20) continue;
                    const uint8_t s[3] = {(uint8_t)a, (uint8_t)b, third[c]};
                    smp_json j;
                    smp_json_init(&j, false);
                    smp_json_feed(&j, '"');
                    size_t ok = 0;
                    while (ok < (size_t)len && smp_json_feed(&j, s[ok])) ok++;
                    /* The recognizer stops at the first byte that makes
                     * the content no prefix of valid UTF-8. */
                    size_t want = 0;
                    while (want < (size_t)len && utf8_prefix_ok(s, want + 1)) want++;
                    if (ok != want && mismatches++ < 10)
                        fprintf(stderr, "utf8 %02x %02x %02x (len %d): accepted %zu, want %zu\n", a,
                                b, third[c], len, ok, want);
                    /* A complete character lets the string close. */
                    if (ok == (size_t)len && hr_utf8_valid(s, (size_t)len, NULL))
                        CHECK(smp_json_feed(&j, '"') && smp_json_done(&j));
                }
            }
        }
    }
    CHECK(mismatches == 0);
}

/* ---- random JSON ------------------------------------------------------------------- */

typedef struct jbuf {
    char *p;
    size_t n, cap;
} jbuf;

static void put(jbuf *b, const char *s, size_t n) {
    if (!b->p || b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        REQUIRE(b->p);
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void puts_(jbuf *b, const char *s) { put(b, s, strlen(s)); }

static unsigned rnd(unsigned long long *r, unsigned n) { return (unsigned)(test_rand_u64(r) % n); }

static void ws(jbuf *b, unsigned long long *r) {
    static const char w[] = " \t\n\r";
    if (rnd(r, 3)) return;
    for (unsigned i = rnd(r, 4) + 1; i > 0; i--) put(b, &w[rnd(r, 4)], 1);
}

static void utf8_put(jbuf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)),
        u[2] = (char)(0x80 | (cp & 63)), n = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)),
        u[2] = (char)(0x80 | (cp >> 6 & 63)), u[3] = (char)(0x80 | (cp & 63)), n = 4;
    put(b, u, n);
}

static void rand_string(jbuf *b, unsigned long long *r) {
    static const char *const esc[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"};
    char tmp[32];
    puts_(b, "\"");
    for (unsigned i = rnd(r, 8); i > 0; i--) {
        switch (rnd(r, 7)) {
        case 0: puts_(b, esc[rnd(r, 8)]); break;
        case 1: { /* \uXXXX of a non-surrogate, either case */
            unsigned v = rnd(r, 0x10000);
            if (v >= 0xd800 && v < 0xe000) v -= 0x800;
            snprintf(tmp, sizeof tmp, rnd(r, 2) ? "\\u%04x" : "\\u%04X", v);
            puts_(b, tmp);
            break;
        }
        case 2: { /* a surrogate pair */
            const unsigned hi = 0xd800 + rnd(r, 0x400), lo = 0xdc00 + rnd(r, 0x400);
            snprintf(tmp, sizeof tmp, "\\u%04x\\u%04X", hi, lo);
            puts_(b, tmp);
            break;
        }
        case 3: { /* a multi-byte character, surrogates left out */
            static const uint32_t lo[] = {0x80, 0x800, 0xe000, 0x10000, 0x100000};
            static const uint32_t span[] = {0x780, 0xd000, 0x2000, 0xf0000, 0x10000};
            const unsigned k = rnd(r, 5);
            utf8_put(b, lo[k] + rnd(r, span[k]));
            break;
        }
        default: { /* printable ASCII */
            char c = (char)(0x20 + rnd(r, 95));
            if (c == '"' || c == '\\') c = 'q';
            put(b, &c, 1);
        }
        }
    }
    puts_(b, "\"");
}

static void rand_number(jbuf *b, unsigned long long *r) {
    char tmp[64];
    size_t n = 0;
    if (rnd(r, 2)) tmp[n++] = '-';
    if (rnd(r, 4) == 0)
        tmp[n++] = '0';
    else {
        tmp[n++] = (char)('1' + rnd(r, 9));
        for (unsigned i = rnd(r, 5); i > 0; i--) tmp[n++] = (char)('0' + rnd(r, 10));
    }
    if (rnd(r, 2)) {
        tmp[n++] = '.';
        for (unsigned i = rnd(r, 4) + 1; i > 0; i--) tmp[n++] = (char)('0' + rnd(r, 10));
    }
    if (rnd(r, 3) == 0) {
        tmp[n++] = rnd(r, 2) ? 'e' : 'E';
        const unsigned s = rnd(r, 3);
        if (s) tmp[n++] = s == 1 ? '+' : '-';
        for (unsigned i = rnd(r, 3) + 1; i > 0; i--) tmp[n++] = (char)('0' + rnd(r, 10));
    }
    put(b, tmp, n);
}

static void rand_value(jbuf *b, unsigned long long *r, int depth, int max_depth, bool object);

static void rand_container(jbuf *b, unsigned long long *r, int depth, int max_depth, bool obj) {
    puts_(b, obj ? "{" : "[");
    ws(b, r);
    /* A deep chain keeps one member per level so the text stays small. */
    const unsigned n = depth + 1 >= max_depth ? 0 : max_depth > 8 ? 1 : rnd(r, 4);
    for (unsigned i = 0; i < n; i++) {
        if (i) puts_(b, ","), ws(b, r);
        if (obj) {
            rand_string(b, r);
            ws(b, r);
            puts_(b, ":");
            ws(b, r);
        }
        rand_value(b, r, depth + 1, max_depth, false);
        ws(b, r);
    }
    puts_(b, obj ? "}" : "]");
}

static void rand_value(jbuf *b, unsigned long long *r, int depth, int max_depth, bool object) {
    const unsigned k = object ? 0 : rnd(r, depth + 1 < max_depth ? 7 : 4);
    switch (k) {
    case 0: rand_container(b, r, depth, max_depth, true); break;
    case 1: rand_string(b, r); break;
    case 2: rand_number(b, r); break;
    case 3: {
        static const char *const lit[] = {"true", "false", "null"};
        puts_(b, lit[rnd(r, 3)]);
        break;
    }
    case 4:
    case 5: rand_container(b, r, depth, max_depth, false); break;
    default: rand_container(b, r, depth, max_depth, true);
    }
}

/* Mutates one byte (replace, insert or delete) at a random place. */
static void mutate(jbuf *b, unsigned long long *r) {
    static const char interesting[] = "{}[]\":,\\u0123456789.eE+-tfn \n\x80\xc3\xed\xf4\xff";
    const size_t at = b->n ? rnd(r, (unsigned)b->n) : 0;
    const char c = rnd(r, 2) ? interesting[rnd(r, sizeof interesting - 1)] : (char)rnd(r, 256);
    switch (rnd(r, 3)) {
    case 0:
        if (b->n) b->p[at] = c;
        break;
    case 1:
        put(b, "", 0);
        put(b, " ", 1);
        memmove(b->p + at + 1, b->p + at, b->n - 1 - at);
        b->p[at] = c;
        break;
    default:
        if (b->n) memmove(b->p + at, b->p + at + 1, b->n - at), b->n--;
    }
}

static void random_docs(void) {
    unsigned long long r = 0x5eed1234abcdULL;
    int n_valid = 0, n_mut_complete = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        jbuf b = {0};
        const int max_depth = it % 50 == 0 ? SMP_JSON_MAX_DEPTH : 1 + (int)rnd(&r, 6);
        const bool object = it % 2 == 0;
        ws(&b, &r);
        rand_value(&b, &r, 0, max_depth, object);
        ws(&b, &r);
        smp_json j;
        smp_json_init(&j, object);
        const size_t at = accepted_len(&j, b.p, b.n);
        if (at != b.n || !smp_json_can_end(&j) || !cjson_parses(b.p, b.n)) {
            if (bad++ < 5)
                fprintf(stderr, "random doc %d refused at %zu (can_end %d, cJSON %d): %s\n", it, at,
                        smp_json_can_end(&j), cjson_parses(b.p, b.n), b.p);
        } else {
            n_valid++;
        }
        /* Mutants: the recognizer's stopping point is a prefix that can
         * still complete; a complete mutant is JSON to cJSON too. */
        for (int m = 0; m < 4; m++) {
            jbuf c = {0};
            put(&c, b.p, b.n);
            for (unsigned k = rnd(&r, 3) + 1; k > 0; k--) mutate(&c, &r);
            smp_json_init(&j, object);
            const size_t ok = accepted_len(&j, c.p, c.n);
            if (ok == c.n && smp_json_can_end(&j)) {
                n_mut_complete++;
                CHECKF(cjson_parses(c.p, c.n), "a mutant cJSON refuses was accepted: %s", c.p);
            }
            char tail[1024];
            size_t nt = 0;
            const bool completed = complete(&j, tail, sizeof tail, &nt);
            CHECKF(completed, "the prefix of %zu bytes did not complete", ok);
            if (completed) {
                jbuf d = {0};
                put(&d, c.p, ok);
                put(&d, tail, nt);
                CHECKF(cjson_parses(d.p, d.n), "completed prefix refused by cJSON: %s", d.p);
                free(d.p);
            }
            free(c.p);
        }
        free(b.p);
    }
    CHECK(bad == 0);
    printf("random: %d valid texts, %d complete mutants\n", n_valid, n_mut_complete);
}

/* ---- masks over a toy vocabulary -------------------------------------------------- */

typedef struct toy {
    const char **pieces;
    int n;
    int eog; /* id of the end-of-generation token (empty piece), -1: none */
} toy;

static size_t toy_piece(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog) {
    const toy *t = ctx;
    *eog = id == t->eog;
    const size_t n = strlen(t->pieces[id]);
    memcpy(buf, t->pieces[id], n < cap ? n : cap);
    return n;
}

/* JSON mode's constraint, as the sampler makes it: the schema
 * {"type":"object"}. NULL on failure. */
static smp_schemac *json_mode(const smp_vocab *v) {
    smp_schema *s = NULL;
    smp_schemac *c = NULL;
    if (smp_schema_json_object(&s) || smp_schemac_new(v, s, &c)) return NULL;
    return c;
}

static bool smp_bit_set(const uint32_t *mask, int id) { return mask[id / 32] >> (id % 32) & 1; }

/* The rule of json_prefix.h, token by token. */
static bool brute_allowed(const smp_json *st, const char *piece, bool eog) {
    if (smp_json_done(st)) return eog;
    if (eog || !*piece) return false;
    smp_json j = *st;
    return smp_json_feed_bytes(&j, piece, strlen(piece));
}

static void toy_masks(void) {
    /* Every byte, then pieces a BPE vocabulary would have, a control token
     * (empty piece) and the end of generation. */
    static const char *const extra[] = {
        "{\"", "\":",  "\",", "\":\"", "\"}",       "}}",       "]}",       " {",
        "{\n", "}\n",  "\n}", "true",  "false",     "null",     "[1,",      "12",
        "0.",  "e+",   "\\u", "D83D",  "\\n",       "\xc3\xa9", "\xe2\x82", "\xac",
        "  ",  "\":[", "},{", "",      "truefalse", "\"a\"",    "1}",       "-0"};
    enum { N_BYTE = 255, N_EXTRA = sizeof extra / sizeof *extra };
    const char *pieces[N_BYTE + N_EXTRA + 1];
    static char bytes[N_BYTE][2];
    for (int i = 0; i < N_BYTE; i++) bytes[i][0] = (char)(i + 1), pieces[i] = bytes[i];
    for (int i = 0; i < N_EXTRA; i++) pieces[N_BYTE + i] = extra[i];
    const int n_vocab = N_BYTE + N_EXTRA + 1;
    pieces[n_vocab - 1] = "";
    toy t = {pieces, n_vocab, n_vocab - 1};
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, toy_piece, &t, &v) == HEARTH_OK);
    CHECK(smp_vocab_n(v) == n_vocab);
    smp_schemac *c = json_mode(v);
    REQUIRE(c);

    smp_params p = smp_default_params();
    p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f, p.temperature = 1.0f;
    p.constraint = SMP_CONSTRAINT_JSON_OBJECT;
    p.vocab = v;
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    REQUIRE(logits);
    unsigned long long r = 77;
    int n_done = 0, mask_errors = 0;
    for (int walk = 0; walk < 60; walk++) {
        p.seed = (uint64_t)walk;
        p.temperature = walk % 3 == 0 ? 0.0f : 1.5f;
        smp_sampler *s = NULL;
        REQUIRE(smp_new(n_vocab, &p, &s) == HEARTH_OK);
        smp_schemac_reset(c);
        smp_json st;
        smp_json_init(&st, true);
        smp_json_limit_ws(&st); /* as the constraint does */
        jbuf out = {0};
        int step = 0;
        for (; step < 400; step++) {
            int32_t n_allowed = 0;
            const uint32_t *mask = smp_schemac_mask(c, &n_allowed);
            int32_t n_brute = 0;
            for (int id = 0; id < n_vocab; id++) {
                const bool want = brute_allowed(&st, pieces[id], id == t.eog);
                n_brute += want;
                if (want != (bool)(mask[id / 32] >> (id % 32) & 1) && mask_errors++ < 5)
                    fprintf(stderr, "toy mask: token %d ('%s') after '%s': want %d\n", id,
                            pieces[id], out.p ? out.p : "", want);
            }
            CHECK(n_allowed == n_brute);
            /* Random logits, sometimes all -inf: the draw stays allowed. */
            for (int id = 0; id < n_vocab; id++)
                logits[id] = step % 17 == 5 ? -INFINITY : 4.0f * test_rand_f(&r);
            const int32_t id = smp_sample(s, logits);
            REQUIRE(id >= 0 && id < n_vocab);
            CHECKF(brute_allowed(&st, pieces[id], id == t.eog), "drew %d ('%s')", id, pieces[id]);
            if (id == t.eog) break;
            CHECK(smp_advance(s, id) == HEARTH_OK);
            CHECK(smp_schemac_advance(c, id));
            CHECK(smp_json_feed_bytes(&st, pieces[id], strlen(pieces[id])));
            put(&out, pieces[id], strlen(pieces[id]));
            CHECK(smp_constraint_done(s) == smp_json_done(&st));
        }
        if (smp_json_done(&st)) {
            n_done++;
            CHECKF(cjson_parses(out.p, out.n), "toy output is not JSON: %s", out.p);
            /* Only the end may follow; a text token is refused, unchanged. */
            CHECK(smp_advance(s, '}' - 1) == HEARTH_ERR_INVALID_ARG && smp_constraint_done(s));
            CHECK(smp_advance(s, t.eog) == HEARTH_OK);
        }
        /* Reset: the constraint starts over ('{' is the only way in). */
        smp_reset(s);
        CHECK(!smp_constraint_done(s));
        CHECK(smp_advance(s, 'x' - 1) == HEARTH_ERR_INVALID_ARG);
        CHECK(smp_advance(s, '{' - 1) == HEARTH_OK);
        smp_free(s);
        free(out.p);
    }
    CHECK(mask_errors == 0);
    /* JSON mode nests as deep as the recognizer (SMP_JSON_MAX_DEPTH), not
     * the schema's SMP_SCHEMA_MAX_DEPTH: its object is free JSON. */
    smp_schemac_reset(c);
    for (const char *p0 = "{\"a\":"; *p0; p0++) CHECK(smp_schemac_advance(c, (uint8_t)*p0 - 1));
    for (int d = 1; d < SMP_JSON_MAX_DEPTH; d++)
        CHECKF(smp_schemac_advance(c, '[' - 1), "depth %d", d + 1);
    int32_t n_deep = 0;
    CHECK(!smp_bit_set(smp_schemac_mask(c, &n_deep), '[' - 1));
    CHECK(!smp_schemac_advance(c, '[' - 1));
    CHECKF(n_done >= 20, "only %d of 60 toy walks completed", n_done);
    printf("toy: %d of 60 walks completed an object\n", n_done);

    /* A vocabulary with no way in: the sampler says so instead of drawing. */
    static const char *const none[] = {"a", "[", ""};
    toy t2 = {(const char **)none, 3, 2};
    smp_vocab *v2 = NULL;
    REQUIRE(smp_vocab_new(3, toy_piece, &t2, &v2) == HEARTH_OK);
    p.vocab = v2;
    smp_sampler *s2 = NULL;
    REQUIRE(smp_new(3, &p, &s2) == HEARTH_OK);
    const float l3[3] = {1, 2, 3};
    CHECK(smp_sample(s2, l3) == -1);
    CHECK(strstr(hearth_last_error(), "JSON") != NULL);
    smp_cand cand[3];
    CHECK(smp_candidates(s2, l3, cand, 3) == 0);
    smp_free(s2);
    /* The vocabulary must match the logits; a constraint needs one. */
    CHECK(smp_new(4, &p, &s2) == HEARTH_ERR_INVALID_ARG);
    p.vocab = NULL;
    CHECK(smp_new(3, &p, &s2) == HEARTH_ERR_INVALID_ARG);
    smp_vocab_free(v2);
    free(logits);
    smp_schemac_free(c);
    smp_vocab_free(v);
}

/* ---- masks over real vocabularies ------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void real_vocab(const char *name) {
    hearth_err err;
    tok_vocab *tv = shared_vocab(name, &err);
    REQUIRE(err == HEARTH_OK);
    if (!tv) return;
    const int n_vocab = tok_n_vocab(tv);
    double t0 = now_ms();
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, tok_piece_shown, tv, &v) == HEARTH_OK);
    const double build_ms = now_ms() - t0;
    smp_schemac *c = json_mode(v);
    REQUIRE(c);
    char *piece = malloc(tok_max_piece_len(tv) + 1);
    REQUIRE(piece);
    /* States along a document that visits every mode. */
    const char *doc =
        " {\"name\": \"h\xc3\xa9llo \\u00e9\\ud83d\\ude00\", \"n\": [-12.5e+3, 0, true, "
        "null, {\"x\": false}], \"s\": \"\"}";
    double worst = 0, sum = 0;
    int n_states = 0, errors = 0;
    /* The constraint is reached token by token: the tokenizer's own
     * tokens for the document, checked after each. */
    size_t n_ids = 0;
    int32_t ids[256];
    REQUIRE(tok_encode(tv, doc, strlen(doc), false, false, ids, 256, &n_ids) == HEARTH_OK);
    smp_json st;
    smp_json_init(&st, true);
    smp_json_limit_ws(&st); /* as the constraint does */
    smp_schemac_reset(c);
    for (size_t i = 0; i <= n_ids; i++) {
        int32_t n_allowed = 0;
        t0 = now_ms();
        const uint32_t *mask = smp_schemac_mask(c, &n_allowed);
        const double ms = now_ms() - t0;
        sum += ms, n_states++; /* a state seen before is a cache hit */
        if (ms > worst) worst = ms;
        int32_t n_brute = 0;
        for (int id = 0; id < n_vocab; id++) {
            size_t n = 0;
            tok_piece(tv, id, false, piece, tok_max_piece_len(tv), &n);
            piece[n] = '\0';
            bool want;
            if (smp_json_done(&st))
                want = tok_is_eog(tv, id);
            else if (tok_is_eog(tv, id) || n == 0)
                want = false;
            else {
                smp_json j = st;
                want = smp_json_feed_bytes(&j, piece, n);
            }
            n_brute += want;
            if (want != (bool)(mask[id / 32] >> (id % 32) & 1) && errors++ < 5)
                fprintf(stderr, "%s: token %d mask %d, want %d\n", name, id, !want, want);
        }
        CHECK(n_allowed == n_brute);
        if (i == n_ids) break;
        /* A leading-space piece (SentencePiece) is still JSON white space. */
        size_t n = 0;
        tok_piece(tv, ids[i], false, piece, tok_max_piece_len(tv), &n);
        CHECKF(smp_schemac_advance(c, ids[i]), "%s: token %d of the document refused", name,
               (int)ids[i]);
        CHECK(smp_json_feed_bytes(&st, piece, n));
    }
    CHECK(errors == 0);
    CHECK(smp_schemac_done(c));
    printf("%s: %d tokens, table built in %.1f ms, %d masks: mean %.2f ms, worst %.2f ms\n", name,
           n_vocab, build_ms, n_states, sum / n_states, worst);
    free(piece);
    smp_schemac_free(c);
    smp_vocab_free(v);
    tok_vocab_free(tv);
}

int main(void) {
    table();
    depth();
    utf8();
    random_docs();
    toy_masks();
    real_vocab("llama-spm");
    real_vocab("qwen2");
    return test_done("json_prefix");
}
