/*
 * gbnf_parse.c - GBNF text -> smp_grammar (gbnf.h), with llama.cpp's syntax
 * (grammars/README.md, src/llama-grammar.cpp's parser read for the facts):
 *
 *   grammar  ::= rule*                     (white space and # comments between)
 *   rule     ::= name "::=" alts (newline | end)
 *   alts     ::= seq ("|" seq)*            (a newline may follow "|")
 *   seq      ::= (item repeat*)*           (newlines only inside parentheses)
 *   item     ::= "string" | [class] | [^class] | . | name | ( alts )
 *   repeat   ::= * | + | ? | {m} | {m,} | {m,n}
 *
 * Names are letters, digits, '-' (and '_', which llama.cpp refuses). Escapes
 * in strings and classes: \n \t \r \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH, each
 * a code point. A group becomes a rule; a repetition copies its item m times
 * and adds rules for the rest, as llama.cpp rewrites them:
 *   S{m,n} = S..S (m) R(n-m),  R(k) ::= S R(k-1) | "",  R(1) ::= S | ""
 *   S{m,}  = S..S (m) R,       R ::= S R | ""
 * (a repetition after a repetition applies to all of it, as in llama.cpp).
 *
 * After parsing: every referenced rule must be defined, root must exist,
 * each rule defined once, every rule able to complete (a finite text), and
 * no rule may reach itself without reading a character and with more of its
 * sequence left (left recursion; a rule reaching itself as the last thing of
 * a sequence, as "x ::= y? x | ..." does, is fine: the recognizer merges the
 * equal stacks). Errors name the line and column (characters, 1-based).
 */
#include "gbnf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NO_RULE = UINT32_MAX };

typedef struct rule_info {
    const char *name; /* into the text; NULL for a rule made for a group or repetition */
    uint32_t len;
    const char *def_at, *ref_at; /* first definition and first reference (NULL: none) */
    uint32_t owner;              /* the named rule whose body made this one */
} rule_info;

typedef struct gp {
    const char *src, *p;
    smp_grammar *g;
    uint32_t cap_syms, cap_alts, cap_rules, cap_info, cap_classes, cap_ranges;
    rule_info *info;
    uint32_t *names; /* open addressing over named rules: index + 1, 0 empty */
    uint32_t names_cap;
    gbnf_sym *seq; /* the sequences being parsed, nested ones above their parents */
    uint32_t n_seq, cap_seq;
    uint32_t *abuf; /* alternative starts of the rules being parsed, likewise */
    uint32_t n_abuf, cap_abuf;
    gbnf_range *rbuf; /* a class's ranges while it is parsed */
    uint32_t cap_rbuf;
    int nest;
    hearth_err err;
} gp;

/* ---- errors and growth ------------------------------------------------------- */

/* Records "grammar: L:C: message" for position `at` (once: the first error
 * wins) and returns false so that failure sites read return fail(...). */
HR_PRINTF(3, 4) static bool fail(gp *P, const char *at, const char *fmt, ...) {
    if (P->err) return false;
    unsigned line = 1, col = 1;
    for (const char *q = P->src; q < at && *q; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)*q & 0xC0) != 0x80) {
            col++;
        }
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    P->err = hr_fail(HEARTH_ERR_INVALID_ARG, "grammar: %u:%u: %s", line, col, msg);
    return false;
}
#ifdef __clang_analyzer__ /* it does not follow variadic calls (core.h's hr_fail) */
#define fail(P, at, ...) ((void)fail(P, at, __VA_ARGS__), false)
#endif

static bool nomem(gp *P) {
    if (!P->err) P->err = hr_fail(HEARTH_ERR_NOMEM, "grammar: out of memory");
    return false;
}

/* Makes room for `need` elements in *arr (capacity *cap), at most max. */
static bool grow(gp *P, void **arr, uint32_t *cap, size_t elem, uint64_t need, uint32_t max,
                 const char *what) {
    if (need <= *cap) return true;
    if (need > max) return fail(P, P->p, "the grammar has more than %u %s", (unsigned)max, what);
    uint64_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    if (n > max) n = max;
    void *q = realloc(*arr, (size_t)n * elem);
    if (!q) return nomem(P);
    *arr = q;
    *cap = (uint32_t)n;
    return true;
}

#define GROW(P, arr, cap, need, max, what)                                                         \
    grow(P, (void **)&(arr), &(cap), sizeof *(arr), (need), (max), what)

/* ---- rules by name ------------------------------------------------------------ */

static uint32_t hash_name(const char *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t new_rule(gp *P, const char *name, uint32_t len, uint32_t owner) {
    smp_grammar *g = P->g;
    if (!GROW(P, g->rules, P->cap_rules, (uint64_t)g->n_rules + 1, GBNF_MAX_RULES, "rules"))
        return NO_RULE;
    if (!GROW(P, P->info, P->cap_info, (uint64_t)g->n_rules + 1, GBNF_MAX_RULES, "rules"))
        return NO_RULE;
    const uint32_t r = g->n_rules++;
    g->rules[r] = (gbnf_rule){0, 0};
    P->info[r] = (rule_info){name, len, NULL, NULL, name ? r : owner};
    return r;
}

/* The rule named s[0, n), created (undefined) on first use. */
static uint32_t rule_by_name(gp *P, const char *s, uint32_t n) {
    if (P->names_cap == 0 || (P->g->n_rules + 1) * 2 > P->names_cap) {
        uint32_t cap = P->names_cap ? P->names_cap * 2 : 256;
        uint32_t *t = hr_calloc(cap, sizeof *t);
        if (!t) return nomem(P), NO_RULE;
        for (uint32_t i = 0; i < P->names_cap; i++) {
            if (!P->names[i]) continue;
            const rule_info *ri = &P->info[P->names[i] - 1];
            uint32_t h = hash_name(ri->name, ri->len) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = P->names[i];
        }
        free(P->names);
        P->names = t;
        P->names_cap = cap;
    }
    uint32_t h = hash_name(s, n) & (P->names_cap - 1);
    for (; P->names[h]; h = (h + 1) & (P->names_cap - 1)) {
        assert(P->info); /* a name in the table has its rule's info */
        const rule_info *ri = &P->info[P->names[h] - 1];
        if (ri->len == n && !memcmp(ri->name, s, n)) return P->names[h] - 1;
    }
    const uint32_t r = new_rule(P, s, n, 0);
    if (r != NO_RULE) P->names[h] = r + 1;
    return r;
}

/* ---- lexing --------------------------------------------------------------------- */

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Skips blanks and comments; newlines too when newline_ok. */
static void skip_space(gp *P, bool newline_ok) {
    for (;;) {
        const char c = *P->p;
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
            P->p++;
        } else if (c == '#') {
            while (*P->p && *P->p != '\n' && *P->p != '\r') P->p++;
        } else {
            return;
        }
    }
}

/* One raw UTF-8 character of the grammar text (strict), advancing p. */
static bool raw_char(gp *P, uint32_t *cp) {
    const uint8_t *s = (const uint8_t *)P->p;
    const uint8_t b = s[0];
    uint32_t n, v, min;
    if (b < 0x80) {
        *cp = b;
        P->p++;
        return true;
    }
    if (b >= 0xC2 && b <= 0xDF)
        n = 1, v = b & 0x1F, min = 0x80;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 2, v = b & 0x0F, min = 0x800;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 3, v = b & 0x07, min = 0x10000;
    else
        return fail(P, P->p, "invalid UTF-8 in the grammar text");
    for (uint32_t i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) return fail(P, P->p, "invalid UTF-8 in the grammar text");
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return fail(P, P->p, "invalid UTF-8 in the grammar text");
    *cp = v;
    P->p += n + 1;
    return true;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a string or class: an escape or a raw character. */
static bool parse_char(gp *P, uint32_t *cp) {
    const char *at = P->p;
    if (*P->p != '\\') return raw_char(P, cp);
    const char e = P->p[1];
    int digits = 0;
    switch (e) {
    case 'n': *cp = '\n'; break;
    case 't': *cp = '\t'; break;
    case 'r': *cp = '\r'; break;
    case '\\':
    case '"':
    case '[':
    case ']': *cp = (uint8_t)e; break;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    case '\0': return fail(P, at, "unterminated escape at the end of the grammar");
    default:
        if ((uint8_t)e < 0x20 || (uint8_t)e >= 0x7F)
            return fail(P, at, "unknown escape (\\n \\t \\r \\\\ \\\" \\[ \\] \\x \\u \\U)");
        return fail(P, at, "unknown escape '\\%c' (\\n \\t \\r \\\\ \\\" \\[ \\] \\x \\u \\U)", e);
    }
    if (!digits) {
        P->p += 2;
        return true;
    }
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        const int h = hex_val(P->p[2 + i]);
        if (h < 0) return fail(P, at, "'\\%c' needs %d hex digits", e, digits);
        v = v << 4 | (uint32_t)h;
    }
    if (v > 0x10FFFF) return fail(P, at, "code point U+%X is above U+10FFFF", (unsigned)v);
    if (v >= 0xD800 && v <= 0xDFFF)
        return fail(P, at, "code point U+%04X is a surrogate, not a character", (unsigned)v);
    *cp = v;
    P->p += 2 + digits;
    return true;
}

/* ---- building ------------------------------------------------------------------- */

static bool push_sym(gp *P, uint32_t kind, uint32_t arg) {
    if ((uint64_t)P->g->n_syms + P->n_seq + 1 > GBNF_MAX_SYMS)
        return fail(P, P->p, "the grammar has more than %u symbols (repetitions expanded)",
                    (unsigned)GBNF_MAX_SYMS);
    if (!GROW(P, P->seq, P->cap_seq, (uint64_t)P->n_seq + 1, GBNF_MAX_SYMS, "symbols"))
        return false;
    P->seq[P->n_seq++] = (gbnf_sym){kind, arg};
    return true;
}

/* The sequence being built from index i (NULL before anything was pushed:
 * no pointer arithmetic on NULL). */
static const gbnf_sym *seq_at(const gp *P, uint32_t i) { return P->seq ? P->seq + i : NULL; }

/* Appends syms[0, n) and an END to the grammar; *start receives where. */
static bool emit_seq(gp *P, const gbnf_sym *syms, uint32_t n, uint32_t *start) {
    smp_grammar *g = P->g;
    if (!GROW(P, g->syms, P->cap_syms, (uint64_t)g->n_syms + n + 1, GBNF_MAX_SYMS, "symbols"))
        return false;
    *start = g->n_syms;
    if (n) memmove(g->syms + g->n_syms, syms, n * sizeof *syms);
    g->n_syms += n;
    g->syms[g->n_syms++] = (gbnf_sym){GBNF_END, 0};
    return true;
}

/* Gives rule r the alternatives whose starts are abuf[base ..]. */
static bool emit_rule(gp *P, uint32_t r, uint32_t base) {
    smp_grammar *g = P->g;
    const uint32_t n = P->n_abuf - base;
    if (!GROW(P, g->alts, P->cap_alts, (uint64_t)g->n_alts + n, GBNF_MAX_SYMS, "alternatives"))
        return false;
    memcpy(g->alts + g->n_alts, P->abuf + base, n * sizeof *g->alts);
    g->rules[r] = (gbnf_rule){g->n_alts, n};
    g->n_alts += n;
    P->n_abuf = base;
    return true;
}

static bool push_alt(gp *P, uint32_t start) {
    if (!GROW(P, P->abuf, P->cap_abuf, (uint64_t)P->n_abuf + 1, GBNF_MAX_SYMS, "alternatives"))
        return false;
    P->abuf[P->n_abuf++] = start;
    return true;
}

/* A rule of two alternatives: item (then a reference to `tail` unless it
 * is NO_RULE) | "". */
static uint32_t opt_rule(gp *P, const gbnf_sym *item, uint32_t k, uint32_t tail, uint32_t owner) {
    const uint32_t r = new_rule(P, NULL, 0, owner);
    if (r == NO_RULE) return NO_RULE;
    const uint32_t base = P->n_abuf, seq0 = P->n_seq;
    uint32_t s1, s2;
    /* "item tail" is built above the caller's sequence, then emitted */
    for (uint32_t i = 0; i < k; i++)
        if (!push_sym(P, item[i].kind, item[i].arg)) return NO_RULE;
    if (tail != NO_RULE && !push_sym(P, GBNF_REF, tail)) return NO_RULE;
    const bool ok = emit_seq(P, seq_at(P, seq0), P->n_seq - seq0, &s1) && push_alt(P, s1) &&
                    emit_seq(P, NULL, 0, &s2) && push_alt(P, s2) && emit_rule(P, r, base);
    P->n_seq = seq0;
    return ok ? r : NO_RULE;
}

/* Applies {min, max} (max UINT32_MAX: no bound) to seq[item, n_seq). */
static bool repeat(gp *P, uint32_t item, uint32_t min, uint32_t max, uint32_t owner) {
    const uint32_t k = P->n_seq - item;
    if (k == 0) return true; /* "" repeated is "" */
    if ((uint64_t)k * (min ? min : 1) + P->g->n_syms + item > GBNF_MAX_SYMS)
        return fail(P, P->p, "the grammar has more than %u symbols (repetitions expanded)",
                    (unsigned)GBNF_MAX_SYMS);
    gbnf_sym *copy = malloc(k * sizeof *copy);
    if (!copy) return nomem(P);
    memcpy(copy, P->seq + item, k * sizeof *copy);
    P->n_seq = item;
    bool ok = true;
    for (uint32_t i = 0; i < min && ok; i++)
        for (uint32_t j = 0; j < k && ok; j++) ok = push_sym(P, copy[j].kind, copy[j].arg);
    uint32_t tail = NO_RULE;
    if (ok && max == UINT32_MAX) {
        /* R ::= item R | "": the rule refers to itself, so make it first */
        const uint32_t r = new_rule(P, NULL, 0, owner);
        const uint32_t base = P->n_abuf, seq0 = P->n_seq;
        uint32_t s1, s2;
        ok = r != NO_RULE;
        for (uint32_t j = 0; j < k && ok; j++) ok = push_sym(P, copy[j].kind, copy[j].arg);
        ok = ok && push_sym(P, GBNF_REF, r) && emit_seq(P, seq_at(P, seq0), P->n_seq - seq0, &s1) &&
             push_alt(P, s1) && emit_seq(P, NULL, 0, &s2) && push_alt(P, s2) &&
             emit_rule(P, r, base);
        P->n_seq = seq0;
        tail = r;
    } else {
        for (uint32_t i = min; i < max && ok; i++) {
            tail = opt_rule(P, copy, k, tail, owner);
            ok = tail != NO_RULE;
        }
    }
    if (ok && tail != NO_RULE) ok = push_sym(P, GBNF_REF, tail);
    free(copy);
    return ok;
}

/* ---- classes -------------------------------------------------------------------- */

static int range_cmp(const void *a, const void *b) {
    const uint32_t x = ((const gbnf_range *)a)->lo, y = ((const gbnf_range *)b)->lo;
    return (x > y) - (x < y);
}

/* Normalizes rbuf[0, n) (sorted, merged, complemented when negated, without
 * surrogates) into a new class; its index in *cls. */
static bool emit_class(gp *P, uint32_t n, bool negate, const char *at, uint32_t *cls) {
    gbnf_range *r = P->rbuf;
    if (n) qsort(r, n, sizeof *r, range_cmp); /* r is NULL before the first class */
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m && r[i].lo <= r[m - 1].hi + 1) {
            if (r[i].hi > r[m - 1].hi) r[m - 1].hi = r[i].hi;
        } else {
            r[m++] = r[i];
        }
    }
    smp_grammar *g = P->g;
    /* at most m + 2 ranges after complementing and cutting out the surrogates */
    if (!GROW(P, g->ranges, P->cap_ranges, (uint64_t)g->n_ranges + m + 2, GBNF_MAX_RANGES,
              "class ranges") ||
        !GROW(P, g->classes, P->cap_classes, (uint64_t)g->n_classes + 1, GBNF_MAX_SYMS, "classes"))
        return false;
    gbnf_class *c = &g->classes[g->n_classes];
    *c = (gbnf_class){.first = g->n_ranges};
    uint32_t next = 0; /* complement: the first code point not yet covered */
    for (uint32_t i = 0; i <= m; i++) {
        gbnf_range x;
        if (negate) {
            if (i < m && r[i].lo == 0) {
                next = r[i].hi + 1;
                continue;
            }
            if (next > 0x10FFFF) break;
            x.lo = next;
            x.hi = i < m ? r[i].lo - 1 : 0x10FFFF;
            next = i < m ? r[i].hi + 1 : 0x110000;
        } else {
            if (i == m) break;
            x = r[i];
        }
        /* cut out the surrogates: no strictly decoded character is one */
        gbnf_range parts[2] = {x, {1, 0}};
        if (x.lo <= 0xDFFF && x.hi >= 0xD800) {
            parts[0] = (gbnf_range){x.lo, 0xD7FF};
            parts[1] = (gbnf_range){0xE000, x.hi};
        }
        for (int j = 0; j < 2; j++) {
            if (parts[j].lo > parts[j].hi) continue;
            g->ranges[g->n_ranges++] = parts[j];
            for (uint32_t cp = parts[j].lo; cp <= parts[j].hi && cp < 128; cp++)
                c->ascii[cp / 32] |= 1u << (cp % 32);
        }
    }
    c->n = g->n_ranges - c->first;
    if (c->n == 0) return fail(P, at, "the character class matches no character");
    *cls = g->n_classes++;
    return true;
}

static bool parse_class(gp *P) {
    const char *at = P->p;
    P->p++;
    const bool negate = *P->p == '^';
    if (negate) P->p++;
    uint32_t n = 0;
    while (*P->p != ']') {
        if (!*P->p) return fail(P, at, "unterminated character class");
        const char *item = P->p;
        uint32_t lo, hi;
        if (!parse_char(P, &lo)) return false;
        hi = lo;
        if (P->p[0] == '-' && P->p[1] != ']') {
            P->p++;
            if (!*P->p) return fail(P, at, "unterminated character class");
            if (!parse_char(P, &hi)) return false;
            if (hi < lo)
                return fail(P, item, "range U+%04X-U+%04X is reversed", (unsigned)lo, (unsigned)hi);
        }
        if (!GROW(P, P->rbuf, P->cap_rbuf, (uint64_t)n + 1, GBNF_MAX_RANGES, "class ranges"))
            return false;
        P->rbuf[n++] = (gbnf_range){lo, hi};
    }
    P->p++;
    uint32_t cls;
    return emit_class(P, n, negate, at, &cls) && push_sym(P, GBNF_CLASS, cls);
}

/* ---- the recursive descent -------------------------------------------------------- */

static bool parse_alts(gp *P, uint32_t rule, bool nested);

static bool parse_count(gp *P, uint32_t *v) {
    const char *at = P->p;
    if (*P->p < '0' || *P->p > '9') return fail(P, at, "expected a number in the repetition");
    uint64_t x = 0;
    while (*P->p >= '0' && *P->p <= '9') {
        x = x * 10 + (uint64_t)(*P->p++ - '0');
        if (x > GBNF_MAX_REPEAT)
            return fail(P, at, "repetition count above %u", (unsigned)GBNF_MAX_REPEAT);
    }
    *v = (uint32_t)x;
    return true;
}

/* {m}, {m,}, {m,n} after '{'. */
static bool parse_braces(gp *P, bool nested, uint32_t *min, uint32_t *max) {
    const char *at = P->p;
    P->p++;
    skip_space(P, nested);
    if (!parse_count(P, min)) return false;
    skip_space(P, nested);
    *max = *min;
    if (*P->p == ',') {
        P->p++;
        skip_space(P, nested);
        *max = UINT32_MAX;
        if (*P->p >= '0' && *P->p <= '9') {
            if (!parse_count(P, max)) return false;
            skip_space(P, nested);
        }
    }
    if (*P->p != '}') return fail(P, P->p, "expected ',' or '}' in the repetition");
    P->p++;
    if (*max < *min)
        return fail(P, at, "repetition {%u,%u}: the maximum is below the minimum", (unsigned)*min,
                    (unsigned)*max);
    return true;
}

// NOLINTNEXTLINE(misc-no-recursion): parentheses nest at most GBNF_MAX_NEST (64) deep
static bool parse_seq(gp *P, uint32_t rule, bool nested) {
    uint32_t item = UINT32_MAX; /* start of the last item in seq, for a repetition */
    const uint32_t owner = P->info[rule].owner;
    for (;;) {
        const char c = *P->p;
        const char *at = P->p;
        if (c == '"') {
            item = P->n_seq;
            P->p++;
            while (*P->p != '"') {
                if (!*P->p) return fail(P, at, "unterminated string");
                uint32_t cp;
                if (!parse_char(P, &cp) || !push_sym(P, GBNF_CHAR, cp)) return false;
            }
            P->p++;
        } else if (c == '[') {
            item = P->n_seq;
            if (!parse_class(P)) return false;
        } else if (c == '.') {
            item = P->n_seq;
            P->p++;
            if (!GROW(P, P->rbuf, P->cap_rbuf, 1, GBNF_MAX_RANGES, "class ranges")) return false;
            P->rbuf[0] = (gbnf_range){0, 0x10FFFF};
            uint32_t cls;
            if (!emit_class(P, 1, false, at, &cls) || !push_sym(P, GBNF_CLASS, cls)) return false;
        } else if (is_name_char(c)) {
            while (is_name_char(*P->p)) P->p++;
            const uint32_t len = (uint32_t)(P->p - at);
            if (len > GBNF_MAX_NAME)
                return fail(P, at, "rule name longer than %u bytes", (unsigned)GBNF_MAX_NAME);
            const uint32_t r = rule_by_name(P, at, len);
            if (r == NO_RULE) return false;
            if (!P->info[r].ref_at) P->info[r].ref_at = at;
            item = P->n_seq;
            if (!push_sym(P, GBNF_REF, r)) return false;
        } else if (c == '(') {
            if (++P->nest > GBNF_MAX_NEST)
                return fail(P, at, "more than %d nested parentheses", GBNF_MAX_NEST);
            P->p++;
            skip_space(P, true);
            const uint32_t r = new_rule(P, NULL, 0, owner);
            if (r == NO_RULE || !parse_alts(P, r, true)) return false;
            if (*P->p != ')') return fail(P, at, "unclosed '(' (expected ')')");
            P->p++;
            P->nest--;
            item = P->n_seq;
            if (!push_sym(P, GBNF_REF, r)) return false;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (item == UINT32_MAX) return fail(P, at, "'%c' has nothing before it to repeat", c);
            uint32_t min = c == '+', max = c == '?' ? 1 : UINT32_MAX;
            if (c == '{') {
                if (!parse_braces(P, nested, &min, &max)) return false;
            } else {
                P->p++;
            }
            if (!repeat(P, item, min, max, owner)) return false;
        } else {
            return true;
        }
        skip_space(P, nested);
    }
}

/* The alternatives of `rule`, up to what ends them (')' when nested, a
 * newline or the end otherwise). */
// NOLINTNEXTLINE(misc-no-recursion): as parse_seq
static bool parse_alts(gp *P, uint32_t rule, bool nested) {
    const uint32_t base = P->n_abuf;
    for (;;) {
        const uint32_t seq0 = P->n_seq;
        uint32_t start;
        if (!parse_seq(P, rule, nested) || !emit_seq(P, seq_at(P, seq0), P->n_seq - seq0, &start) ||
            !push_alt(P, start))
            return false;
        P->n_seq = seq0;
        if (*P->p != '|') break;
        P->p++;
        skip_space(P, true);
    }
    return emit_rule(P, rule, base);
}

static bool parse_rule(gp *P) {
    const char *at = P->p;
    while (is_name_char(*P->p)) P->p++;
    const uint32_t len = (uint32_t)(P->p - at);
    if (len == 0) {
        if (*P->p == '|')
            return fail(P, at,
                        "expected a rule name (an alternative must start on the line of the "
                        "'|' before it, or be inside parentheses)");
        return fail(P, at, "expected a rule name");
    }
    if (len > GBNF_MAX_NAME)
        return fail(P, at, "rule name longer than %u bytes", (unsigned)GBNF_MAX_NAME);
    const uint32_t r = rule_by_name(P, at, len);
    if (r == NO_RULE) return false;
    if (P->info[r].def_at) return fail(P, at, "rule '%.*s' is defined twice", (int)len, at);
    P->info[r].def_at = at;
    skip_space(P, false);
    if (strncmp(P->p, "::=", 3) != 0) return fail(P, P->p, "expected '::=' after the rule name");
    P->p += 3;
    skip_space(P, true);
    if (!parse_alts(P, r, false)) return false;
    if (*P->p == '\r') P->p++;
    if (*P->p == '\n')
        P->p++;
    else if (*P->p == ')')
        return fail(P, P->p, "')' without a matching '('");
    else if (*P->p)
        return fail(P, P->p, "unexpected '%c'", *P->p);
    skip_space(P, true);
    return true;
}

/* ---- checks ------------------------------------------------------------------------- */

/* Where messages about rule r point, and its name for them. */
static const char *rule_at(const gp *P, uint32_t r) {
    const rule_info *o = &P->info[P->info[r].owner];
    return o->def_at ? o->def_at : P->src;
}

/* For each rule, `ok` in the least fixed point of: a rule is ok when one
 * of its alternatives has every symbol ok, a terminal counting as
 * `chars_ok`. Productive (chars ok: can finish) or nullable (chars not ok:
 * can be empty). A count of not-yet-ok references per alternative; a rule
 * turning ok lowers the counts of the alternatives referring to it. */
static bool fixpoint(const smp_grammar *g, bool chars_ok, bool *ok) {
    const uint32_t n_alts = g->n_alts, n_rules = g->n_rules;
    uint32_t *need = malloc((n_alts + 1) * sizeof *need);
    uint32_t *alt_rule = malloc((n_alts + 1) * sizeof *alt_rule);
    uint32_t *first = hr_calloc(n_rules + 2, sizeof *first); /* references to each rule (CSR) */
    uint32_t *refs = malloc((g->n_syms + 1) * sizeof *refs);
    uint32_t *queue = malloc((n_rules + 1) * sizeof *queue);
    if (!need || !alt_rule || !first || !refs || !queue) {
        free(need), free(alt_rule), free(first), free(refs), free(queue);
        return false;
    }
    memset(ok, 0, n_rules * sizeof *ok);
    for (uint32_t r = 0; r < n_rules; r++)
        for (uint32_t a = 0; a < g->rules[r].n_alts; a++) alt_rule[g->rules[r].alt_first + a] = r;
    for (uint32_t a = 0; a < n_alts; a++) {
        need[a] = 0;
        for (const gbnf_sym *s = g->syms + g->alts[a]; s->kind != GBNF_END; s++) {
            if (s->kind == GBNF_REF) {
                need[a]++;
                first[s->arg + 2]++;
            } else if (!chars_ok) {
                need[a] = UINT32_MAX / 2; /* never */
            }
        }
    }
    for (uint32_t r = 0; r < n_rules; r++) first[r + 2] += first[r + 1];
    for (uint32_t a = 0; a < n_alts; a++)
        for (const gbnf_sym *s = g->syms + g->alts[a]; s->kind != GBNF_END; s++)
            if (s->kind == GBNF_REF) refs[first[s->arg + 1]++] = a;
    /* now refs[first[r] .. first[r + 1]) are the alternatives referring to r */
    uint32_t qh = 0, qt = 0;
    for (uint32_t a = 0; a < n_alts; a++) {
        /* every alternative belongs to a rule: alt_rule[0..n_alts) is all set above */
        // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.ArraySubscript)
        if (need[a] == 0 && !ok[alt_rule[a]]) {
            ok[alt_rule[a]] = true;
            queue[qt++] = alt_rule[a];
        }
    }
    while (qh < qt) {
        const uint32_t r = queue[qh++];
        for (uint32_t i = first[r]; i < first[r + 1]; i++) {
            const uint32_t a = refs[i];
            if (--need[a] == 0 && !ok[alt_rule[a]]) {
                ok[alt_rule[a]] = true;
                queue[qt++] = alt_rule[a];
            }
        }
    }
    free(need), free(alt_rule), free(first), free(refs), free(queue);
    return true;
}

/* Left recursion that would not stop: a cycle of "rule A can refer to rule
 * B before reading anything" edges with at least one edge whose reference
 * is not the last symbol of its alternative (each pass would push a frame;
 * a cycle of last-symbol references revisits equal stacks, which the
 * recognizer merges). Tarjan's strongly connected components, iterative. */
typedef struct lr_edge {
    uint32_t to;
    bool grows;
} lr_edge;

static bool check_left_recursion(gp *P, const bool *nullable) {
    const smp_grammar *g = P->g;
    const uint32_t n = g->n_rules;
    uint32_t *first = hr_calloc(n + 1, sizeof *first);
    lr_edge *e = malloc((g->n_syms + 1) * sizeof *e);
    uint32_t *idx = malloc(n * sizeof *idx), *low = malloc(n * sizeof *low);
    uint32_t *comp = malloc(n * sizeof *comp), *stk = malloc(n * sizeof *stk);
    uint32_t *call = malloc(n * sizeof *call), *next_edge = malloc(n * sizeof *next_edge);
    bool *on = hr_calloc(n, sizeof *on);
    bool ok = first && e && idx && low && comp && stk && call && next_edge && on;
    if (!ok) nomem(P);
    uint32_t n_e = 0;
    for (uint32_t r = 0; r < n && ok; r++) {
        first[r] = n_e;
        for (uint32_t a = 0; a < g->rules[r].n_alts; a++) {
            for (const gbnf_sym *s = g->syms + g->alts[g->rules[r].alt_first + a];
                 s->kind != GBNF_END; s++) {
                if (s->kind != GBNF_REF) break;
                e[n_e++] = (lr_edge){s->arg, s[1].kind != GBNF_END};
                if (!nullable[s->arg]) break;
            }
        }
    }
    if (ok) first[n] = n_e;
    uint32_t counter = 0, n_stk = 0, n_comp = 0;
    for (uint32_t r = 0; r < n && ok; r++) idx[r] = UINT32_MAX;
    for (uint32_t root = 0; root < n && ok; root++) {
        if (idx[root] != UINT32_MAX) continue;
        uint32_t depth = 0;
        call[depth++] = root;
        idx[root] = low[root] = counter++;
        next_edge[root] = first[root];
        stk[n_stk++] = root;
        on[root] = true;
        while (depth) {
            const uint32_t v = call[depth - 1];
            if (next_edge[v] < first[v + 1]) {
                /* first[] bounds the n_e edges filled above */
                // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign)
                const uint32_t w = e[next_edge[v]++].to;
                if (idx[w] == UINT32_MAX) {
                    idx[w] = low[w] = counter++;
                    next_edge[w] = first[w];
                    stk[n_stk++] = w;
                    on[w] = true;
                    call[depth++] = w;
                } else if (on[w] && idx[w] < low[v]) {
                    low[v] = idx[w];
                }
                continue;
            }
            if (low[v] == idx[v]) {
                uint32_t w;
                do {
                    w = stk[--n_stk];
                    on[w] = false;
                    comp[w] = n_comp;
                } while (w != v);
                n_comp++;
            }
            depth--;
            if (depth && low[v] < low[call[depth - 1]]) low[call[depth - 1]] = low[v];
        }
    }
    for (uint32_t r = 0; r < n && ok; r++) {
        for (uint32_t i = first[r]; i < first[r + 1]; i++) {
            if (!e[i].grows || comp[e[i].to] != comp[r]) continue;
            const rule_info *o = &P->info[P->info[r].owner];
            ok = fail(P, rule_at(P, r),
                      "rule '%.*s' is left-recursive: it can reach itself before reading a "
                      "character (rewrite it with repetition, e.g. x ::= y (\"+\" y)*)",
                      (int)o->len, o->name ? o->name : "?");
            break;
        }
    }
    free(first), free(e), free(idx), free(low), free(comp), free(stk), free(call);
    free(next_edge), free(on);
    return ok;
}

static bool check(gp *P) {
    smp_grammar *g = P->g;
    for (uint32_t r = 0; r < g->n_rules; r++) {
        const rule_info *ri = &P->info[r];
        if (ri->name && !ri->def_at)
            return fail(P, ri->ref_at, "undefined rule '%.*s'", (int)ri->len, ri->name);
    }
    const uint32_t root = rule_by_name(P, "root", 4);
    if (root == NO_RULE) return false;
    if (!P->info[root].def_at)
        return fail(P, P->info[root].ref_at ? P->info[root].ref_at : P->p,
                    "no rule named 'root' (the whole output must match it)");
    g->root = root;
    bool *prod = malloc((g->n_rules + 1) * sizeof *prod);
    bool *null = malloc((g->n_rules + 1) * sizeof *null);
    bool ok = prod && null && fixpoint(g, true, prod) && fixpoint(g, false, null);
    if (!ok) nomem(P);
    /* name a rule that is stuck by itself (its dead references are its own
     * or its groups'), rather than the rules that merely use it */
    uint32_t stuck = NO_RULE;
    for (uint32_t r = 0; r < g->n_rules && ok && stuck == NO_RULE; r++) {
        if (prod[r]) continue;
        bool own = true;
        for (uint32_t a = 0; a < g->rules[r].n_alts && own; a++)
            for (const gbnf_sym *s = g->syms + g->alts[g->rules[r].alt_first + a];
                 s->kind != GBNF_END; s++)
                if (s->kind == GBNF_REF && !prod[s->arg] &&
                    P->info[s->arg].owner != P->info[r].owner)
                    own = false;
        if (own) stuck = r;
    }
    for (uint32_t r = stuck == NO_RULE ? 0 : stuck; r < g->n_rules && ok; r++) {
        if (prod[r]) continue;
        const rule_info *o = &P->info[P->info[r].owner];
        ok = fail(P, rule_at(P, r),
                  "rule '%.*s' can never complete: every alternative refers to a rule that "
                  "cannot finish",
                  (int)o->len, o->name ? o->name : "?");
    }
    ok = ok && check_left_recursion(P, null);
    free(prod);
    free(null);
    return ok;
}

void smp_grammar_free(smp_grammar *g) {
    if (!g) return;
    free(g->syms);
    free(g->alts);
    free(g->rules);
    free(g->classes);
    free(g->ranges);
    free(g);
}

hearth_err smp_grammar_compile(const char *text, smp_grammar **out) {
    if (!text) return hr_fail(HEARTH_ERR_INVALID_ARG, "grammar: no grammar text");
    const size_t len = strnlen(text, (size_t)GBNF_MAX_TEXT + 1);
    if (len > GBNF_MAX_TEXT)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "grammar: the text is longer than %d bytes",
                       (int)GBNF_MAX_TEXT);
    gp P = {.src = text, .p = text};
    P.g = hr_calloc(1, sizeof *P.g);
    if (!P.g) return HEARTH_ERR_NOMEM;
    skip_space(&P, true);
    while (*P.p && !P.err) parse_rule(&P);
    if (!P.err) check(&P);
    free(P.info);
    free(P.names);
    free(P.seq);
    free(P.abuf);
    free(P.rbuf);
    if (P.err) {
        smp_grammar_free(P.g);
        return P.err;
    }
    *out = P.g;
    return HEARTH_OK;
}

hearth_err hearth_grammar_check(const char *grammar) {
    smp_grammar *g = NULL;
    hearth_err err = smp_grammar_compile(grammar, &g);
    gbnf_m *m = NULL;
    if (!err) err = gbnf_m_new(g, &m); /* the start within the recognizer's limits */
    gbnf_m_free(m);
    smp_grammar_free(g);
    return err;
}
