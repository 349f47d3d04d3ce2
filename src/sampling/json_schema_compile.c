/*
 * json_schema_compile.c - a JSON Schema text (parsed with cJSON) into the
 * node graph of json_schema.h: keywords checked against the supported
 * subset (anything that constrains values and is not supported is refused,
 * never ignored), $ref resolved to nodes (so recursion is a cycle in the
 * graph), enum/const values turned into tries of their canonical texts or
 * into fixed objects and arrays, object keys into a trie with, per trie
 * node, the set of properties below it.
 *
 * Linking then flattens anyOf (and $ref, allOf of one, which compile to an
 * anyOf of one) into lists of typed nodes, a cycle of them adding nothing,
 * and computes for every node the fewest nested containers a value needs
 * (a least fixed point; SCH_INF when there is no finite value within
 * SMP_SCHEMA_MAX_DEPTH). The recognizer only enters a node whose value can
 * still be completed, which keeps it exact.
 */
#include "json_schema.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct memo_entry {
    const cJSON *item;
    int32_t node;
} memo_entry;

typedef struct cctx {
    smp_schema *s;
    const cJSON *root;
    memo_entry *memo;
    uint32_t n_memo, cap_memo;
    int32_t any; /* the node of any value */
    int nest;    /* recursion of compile() */
    bool failed;
    hearth_err code; /* of the first failure */
    char path[512];
    size_t path_len;
} cctx;

enum { COMPILE_NEST_MAX = 200 };

/* ---- errors and the JSON pointer ------------------------------------------ */

static int32_t fail(cctx *c, hearth_err code, const char *fmt, ...) HR_PRINTF(3, 4);
static int32_t fail(cctx *c, hearth_err code, const char *fmt, ...) {
    if (c->failed) return -1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->failed = true;
    c->code = code;
    hr_fail(code, "json_schema: %s: %s", c->path_len ? c->path : "(root)", msg);
    return -1;
}
#ifdef __clang_analyzer__ /* it does not follow variadic calls (core.h's hr_fail) */
#define fail(c, code, ...) ((void)fail(c, code, __VA_ARGS__), -1)
#endif

/* Appends "/seg" (with ~ and / escaped as ~0 and ~1) to the pointer and
 * returns its length before, for path_pop. A pointer too long for the
 * buffer stops growing (messages stay readable). */
static size_t path_push(cctx *c, const char *seg) {
    const size_t old = c->path_len;
    char tmp[sizeof c->path];
    size_t n = 0;
    tmp[n++] = '/';
    for (const char *p = seg; *p && n + 3 < sizeof tmp; p++) {
        if (*p == '~' || *p == '/') {
            tmp[n++] = '~';
            tmp[n++] = *p == '~' ? '0' : '1';
        } else {
            tmp[n++] = *p;
        }
    }
    if (old + n + 1 <= sizeof c->path) {
        memcpy(c->path + old, tmp, n);
        c->path_len = old + n;
        c->path[c->path_len] = '\0';
    }
    return old;
}

static size_t path_push_index(cctx *c, int i) {
    char num[16];
    snprintf(num, sizeof num, "%d", i);
    return path_push(c, num);
}

static void path_pop(cctx *c, size_t old) {
    c->path_len = old;
    c->path[old] = '\0';
}

/* ---- growing arrays ----------------------------------------------------------- */

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return true;
    uint32_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > UINT32_MAX / 2) return false;
        n *= 2;
    }
    void *q = realloc(*p, (size_t)n * elem);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

static int32_t nomem(cctx *c) { return fail(c, HEARTH_ERR_NOMEM, "out of memory"); }

static int32_t new_node(cctx *c, uint8_t types) {
    smp_schema *s = c->s;
    if (s->n_nodes >= SMP_SCHEMA_MAX_NODES)
        return fail(c, HEARTH_ERR_UNSUPPORTED, "the schema needs more than %d nodes",
                    (int)SMP_SCHEMA_MAX_NODES);
    if (!grow((void **)&s->nodes, &s->cap_nodes, s->n_nodes + 1, sizeof *s->nodes)) return nomem(c);
    sch_node *n = &s->nodes[s->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = SCH_TYPED;
    n->types = types;
    n->md = n->md_obj = n->md_arr = n->md_str = n->md_num = SCH_INF;
    n->key_trie = n->str_trie = n->num_trie = SCH_NONE;
    n->additional = n->items = -1;
    n->max_items = n->max_len = SCH_NONE;
    return (int32_t)s->n_nodes++;
}

/* An anyOf node over alts[0..n). */
static int32_t new_anyof(cctx *c, const int32_t *alts, uint32_t n) {
    smp_schema *s = c->s;
    const int32_t id = new_node(c, 0);
    if (id < 0) return -1;
    if (!grow((void **)&s->alts, &s->cap_alts, s->n_alts + n, sizeof *s->alts)) return nomem(c);
    s->nodes[id].kind = SCH_ANYOF;
    s->nodes[id].alt_first = s->n_alts;
    s->nodes[id].n_alts = n;
    for (uint32_t i = 0; i < n; i++) s->alts[s->n_alts++] = (uint32_t)alts[i];
    return id;
}

/* ---- canonical texts and tries --------------------------------------------- */

/* The canonical text of a string's content (without quotes) and of a
 * number: what keys and enum/const values are matched against. buf holds
 * cap bytes; returns the length, or SIZE_MAX when it does not fit (or the
 * number is not finite). */
static size_t canon_string(const char *s, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t ch = (uint8_t)s[i];
        char e[8];
        size_t k = 0;
        switch (ch) {
        case '"': memcpy(e, "\\\"", k = 2); break;
        case '\\': memcpy(e, "\\\\", k = 2); break;
        case '\b': memcpy(e, "\\b", k = 2); break;
        case '\f': memcpy(e, "\\f", k = 2); break;
        case '\n': memcpy(e, "\\n", k = 2); break;
        case '\r': memcpy(e, "\\r", k = 2); break;
        case '\t': memcpy(e, "\\t", k = 2); break;
        default:
            if (ch < 0x20) {
                snprintf(e, sizeof e, "\\u%04x", ch);
                k = 6;
            } else {
                e[0] = (char)ch;
                k = 1;
            }
        }
        if (k > cap - o || o > cap) return SIZE_MAX;
        memcpy(buf + o, e, k);
        o += k;
    }
    return o;
}

static size_t canon_number(double v, char *buf, size_t cap) {
    if (!isfinite(v) || cap < 32) return SIZE_MAX;
    int n;
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        n = snprintf(buf, cap, "%lld", (long long)v); /* -0 prints as 0 */
    } else {
        n = 0;
        for (int prec = 1; prec <= 17; prec++) {
            n = snprintf(buf, cap, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : SIZE_MAX;
}

uint32_t sch_trie_child(const smp_schema *s, uint32_t t, uint8_t c) {
    for (uint32_t k = s->trie[t].child; k != SCH_NONE; k = s->trie[k].next)
        if (s->trie[k].byte == c) return k;
    return SCH_NONE;
}

static uint32_t trie_node(cctx *c, uint8_t byte) {
    smp_schema *s = c->s;
    if (!grow((void **)&s->trie, &s->cap_trie, s->n_trie + 1, sizeof *s->trie)) {
        nomem(c);
        return SCH_NONE;
    }
    s->trie[s->n_trie] = (sch_trie){
        .child = SCH_NONE, .next = SCH_NONE, .term = -1, .bits_off = SCH_NONE, .byte = byte};
    return s->n_trie++;
}

/* Adds string `index` (bytes p[0..n)) under root; *dup receives whether it
 * was there already. */
static bool trie_insert(cctx *c, uint32_t root, const char *p, size_t n, int32_t index, bool *dup) {
    smp_schema *s = c->s;
    uint32_t t = root;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = sch_trie_child(s, t, (uint8_t)p[i]);
        if (k == SCH_NONE) {
            k = trie_node(c, (uint8_t)p[i]);
            if (k == SCH_NONE) return false;
            s->trie[k].next = s->trie[t].child;
            s->trie[t].child = k;
        }
        t = k;
    }
    *dup = s->trie[t].term >= 0;
    if (!*dup) s->trie[t].term = index;
    return true;
}

/* Gives every node of the trie at root (nodes root..n_trie, children after
 * their parent) the set of the n_sets indices below it. A node with one
 * child and no string of its own has its child's set, so only the root,
 * branching and terminal nodes store one (at most 2 * n_sets sets, where
 * one per node would make long names cost n_sets bits a byte); the
 * schema's sets are capped at SMP_SCHEMA_MAX_BITS words. */
static bool trie_sets(cctx *c, uint32_t root, uint32_t n_sets) {
    smp_schema *s = c->s;
    const uint32_t words = (n_sets + 63) / 64;
    for (uint32_t t = s->n_trie; t-- > root;) {
        sch_trie *x = &s->trie[t];
        if (t != root && x->term < 0 && x->child != SCH_NONE &&
            s->trie[x->child].next == SCH_NONE) {
            x->bits_off = s->trie[x->child].bits_off;
            continue;
        }
        if (words > SMP_SCHEMA_MAX_BITS - s->n_bits) {
            fail(c, HEARTH_ERR_UNSUPPORTED,
                 "the property names need more than %d words of index sets (fewer or shorter "
                 "names, or fewer objects with many properties)",
                 (int)SMP_SCHEMA_MAX_BITS);
            return false;
        }
        if (!grow((void **)&s->bits, &s->cap_bits, s->n_bits + words, sizeof *s->bits)) {
            nomem(c);
            return false;
        }
        x = &s->trie[t];
        uint64_t *set = s->bits + s->n_bits;
        memset(set, 0, words * sizeof *set);
        if (x->term >= 0) set[x->term / 64] |= (uint64_t)1 << (x->term % 64);
        for (uint32_t k = x->child; k != SCH_NONE; k = s->trie[k].next)
            for (uint32_t w = 0; w < words; w++) set[w] |= s->bits[s->trie[k].bits_off + w];
        x->bits_off = s->n_bits;
        s->n_bits += words;
    }
    return true;
}

/* A string's canonical text, checked to be one valid JSON string (cJSON
 * does not check UTF-8). Returns a malloc'd buffer and its length. */
static char *canon_checked(cctx *c, const char *str, size_t *len) {
    const size_t n = strlen(str);
    const size_t cap = n * 6 + 1;
    char *buf = malloc(cap);
    if (!buf) {
        nomem(c);
        return NULL;
    }
    *len = canon_string(str, n, buf, cap);
    assert(*len != SIZE_MAX); /* at most 6 bytes a byte: it fits */
    smp_json j;
    smp_json_init(&j, false);
    if (!smp_json_feed(&j, '"') || !smp_json_feed_bytes(&j, buf, *len) || !smp_json_feed(&j, '"')) {
        free(buf);
        fail(c, HEARTH_ERR_INVALID_ARG, "the string \"%.40s\" is not valid UTF-8", str);
        return NULL;
    }
    return buf;
}

/* ---- keywords --------------------------------------------------------------- */

enum kw_class { KW_ANNOTATION, KW_VALUE, KW_COMBINATOR, KW_DEFS };

typedef struct kw_info {
    const char *name;
    enum kw_class cls;
} kw_info;

static const kw_info keywords[] = {
    {"title", KW_ANNOTATION},
    {"description", KW_ANNOTATION},
    {"$schema", KW_ANNOTATION},
    {"$id", KW_ANNOTATION},
    {"$comment", KW_ANNOTATION},
    {"examples", KW_ANNOTATION},
    {"default", KW_ANNOTATION},
    {"deprecated", KW_ANNOTATION},
    {"readOnly", KW_ANNOTATION},
    {"writeOnly", KW_ANNOTATION},
    {"$defs", KW_DEFS},
    {"definitions", KW_DEFS},
    {"type", KW_VALUE},
    {"enum", KW_VALUE},
    {"const", KW_VALUE},
    {"properties", KW_VALUE},
    {"required", KW_VALUE},
    {"additionalProperties", KW_VALUE},
    {"items", KW_VALUE},
    {"prefixItems", KW_VALUE},
    {"additionalItems", KW_VALUE},
    {"minItems", KW_VALUE},
    {"maxItems", KW_VALUE},
    {"minLength", KW_VALUE},
    {"maxLength", KW_VALUE},
    {"uniqueItems", KW_VALUE},
    {"anyOf", KW_COMBINATOR},
    {"oneOf", KW_COMBINATOR},
    {"allOf", KW_COMBINATOR},
    {"$ref", KW_COMBINATOR},
};

static const kw_info *keyword(const char *name) {
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (!strcmp(keywords[i].name, name)) return &keywords[i];
    return NULL;
}

/* Checks every keyword of schema object `o`: known, or an annotation; a
 * combinator stands alone (with annotations), enum/const beside type only.
 * Fills *comb with the combinator (or NULL) and *n_value with the value
 * keywords seen. */
static bool check_keywords(cctx *c, const cJSON *o, const cJSON **comb, int *n_value) {
    *comb = NULL;
    *n_value = 0;
    const cJSON *enumish = NULL, *other = NULL;
    for (const cJSON *k = o->child; k; k = k->next) {
        const kw_info *kw = keyword(k->string);
        if (!kw) {
            if (!strncmp(k->string, "x-", 2)) continue;
            fail(c, HEARTH_ERR_UNSUPPORTED, "keyword '%s' is not supported", k->string);
            return false;
        }
        if (kw->cls == KW_COMBINATOR) {
            if (*comb) {
                fail(c, HEARTH_ERR_UNSUPPORTED, "keyword '%s' beside '%s' is not supported",
                     k->string, (*comb)->string);
                return false;
            }
            *comb = k;
        } else if (kw->cls == KW_VALUE) {
            ++*n_value;
            if (!strcmp(k->string, "enum") || !strcmp(k->string, "const")) {
                if (enumish) {
                    fail(c, HEARTH_ERR_UNSUPPORTED, "keyword '%s' beside '%s' is not supported",
                         k->string, enumish->string);
                    return false;
                }
                enumish = k;
            } else if (strcmp(k->string, "type")) {
                other = k;
            }
        }
    }
    if (*comb && *n_value) {
        for (const cJSON *k = o->child; k; k = k->next) {
            const kw_info *kw = keyword(k->string);
            if (kw && kw->cls == KW_VALUE) {
                fail(c, HEARTH_ERR_UNSUPPORTED, "keyword '%s' beside '%s' is not supported",
                     k->string, (*comb)->string);
                return false;
            }
        }
    }
    if (enumish && other) {
        fail(c, HEARTH_ERR_UNSUPPORTED, "keyword '%s' beside '%s' is not supported", other->string,
             enumish->string);
        return false;
    }
    return true;
}

/* A count keyword: a non-negative integer up to SMP_SCHEMA_MAX_COUNT. */
static bool get_count(cctx *c, const cJSON *o, const char *name, uint32_t *out) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!k) return true;
    const size_t old = path_push(c, name);
    bool ok = false;
    if (!cJSON_IsNumber(k) || k->valuedouble < 0 || k->valuedouble != floor(k->valuedouble))
        fail(c, HEARTH_ERR_INVALID_ARG, "must be a non-negative integer");
    else if (k->valuedouble > SMP_SCHEMA_MAX_COUNT)
        fail(c, HEARTH_ERR_UNSUPPORTED, "values above %d are not supported",
             (int)SMP_SCHEMA_MAX_COUNT);
    else {
        *out = (uint32_t)k->valuedouble;
        ok = true;
    }
    path_pop(c, old);
    return ok;
}

static int32_t compile(cctx *c, const cJSON *item);

/* A sub-schema under keyword `name` (and index i >= 0 of its array). */
// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static int32_t compile_at(cctx *c, const cJSON *item, const char *name, int i) {
    const size_t old = path_push(c, name);
    if (i >= 0) path_push_index(c, i);
    const int32_t r = compile(c, item);
    path_pop(c, old);
    return r;
}

/* ---- type ------------------------------------------------------------------------ */

static bool parse_type(cctx *c, const cJSON *t, uint8_t *types) {
    static const struct {
        const char *name;
        uint8_t bits;
    } names[] = {{"null", SCH_T_NULL},       {"boolean", SCH_T_TRUE | SCH_T_FALSE},
                 {"integer", SCH_T_INTEGER}, {"number", SCH_T_NUMBER | SCH_T_INTEGER},
                 {"string", SCH_T_STRING},   {"array", SCH_T_ARRAY},
                 {"object", SCH_T_OBJECT}};
    *types = 0;
    const size_t old = path_push(c, "type");
    const bool list = cJSON_IsArray(t);
    bool ok = list || cJSON_IsString(t);
    if (!ok) fail(c, HEARTH_ERR_INVALID_ARG, "must be a type name or a list of them");
    for (const cJSON *e = list ? t->child : t; ok && e; e = list ? e->next : NULL) {
        ok = false;
        for (size_t i = 0; cJSON_IsString(e) && i < sizeof names / sizeof *names; i++) {
            if (!strcmp(e->valuestring, names[i].name)) {
                *types |= names[i].bits;
                ok = true;
            }
        }
        if (!ok)
            fail(c, HEARTH_ERR_INVALID_ARG, "unknown type %s%s%s", cJSON_IsString(e) ? "'" : "",
                 cJSON_IsString(e) ? e->valuestring : "(not a string)",
                 cJSON_IsString(e) ? "'" : "");
    }
    path_pop(c, old);
    return ok;
}

/* ---- enum and const ------------------------------------------------------------ */

static int32_t compile_const(cctx *c, const cJSON *v);

/* A trie over the canonical texts of the strings (or numbers) among vals. */
static uint32_t literal_trie(cctx *c, const cJSON *const *vals, int n, bool numbers) {
    uint32_t root = SCH_NONE;
    for (int i = 0; i < n && !c->failed; i++) {
        char num[64] = "", *text = NULL;
        size_t len;
        if (numbers) {
            len = canon_number(vals[i]->valuedouble, num, sizeof num);
            if (len == SIZE_MAX) {
                fail(c, HEARTH_ERR_INVALID_ARG, "a number in enum/const is not finite");
                break;
            }
        } else if (!(text = canon_checked(c, vals[i]->valuestring, &len))) {
            break;
        }
        bool dup;
        if (root == SCH_NONE) root = trie_node(c, 0);
        if (root != SCH_NONE) trie_insert(c, root, text ? text : num, len, i, &dup);
        free(text);
    }
    return c->failed ? SCH_NONE : root;
}

/* The values vals[0..n) of types `types` (others are dropped): strings and
 * numbers as tries in one typed node, booleans and null as its type bits,
 * arrays and objects as fixed nodes beside it in an anyOf. */
// NOLINTNEXTLINE(misc-no-recursion): through compile_const, which stops at COMPILE_NEST_MAX
static int32_t compile_values(cctx *c, const cJSON *const *vals, int n, uint8_t types) {
    const cJSON **strs = malloc((size_t)(n ? n : 1) * sizeof *strs);
    const cJSON **nums = malloc((size_t)(n ? n : 1) * sizeof *nums);
    int32_t *alts = malloc((size_t)(n + 1) * sizeof *alts);
    int n_str = 0, n_num = 0;
    uint32_t n_alt = 0;
    uint8_t lit = 0;
    int32_t r = -1;
    if (!strs || !nums || !alts) {
        nomem(c);
        goto done;
    }
    for (int i = 0; i < n && !c->failed; i++) {
        // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): the caller fills vals[0..n)
        const cJSON *v = vals[i];
        if (cJSON_IsString(v) && (types & SCH_T_STRING)) strs[n_str++] = v;
        if (cJSON_IsNumber(v)) {
            const double d = v->valuedouble;
            const bool integral = d == floor(d) && fabs(d) < 9007199254740992.0;
            if ((types & SCH_T_NUMBER) || ((types & SCH_T_INTEGER) && integral)) nums[n_num++] = v;
        }
        if (cJSON_IsTrue(v)) lit |= types & SCH_T_TRUE;
        if (cJSON_IsFalse(v)) lit |= types & SCH_T_FALSE;
        if (cJSON_IsNull(v)) lit |= types & SCH_T_NULL;
        if ((cJSON_IsArray(v) && (types & SCH_T_ARRAY)) ||
            (cJSON_IsObject(v) && (types & SCH_T_OBJECT))) {
            const int32_t a = compile_const(c, v);
            if (a >= 0) alts[n_alt++] = a;
        }
    }
    if (c->failed) goto done;
    const int32_t scalar =
        new_node(c, (uint8_t)(lit | (n_str ? SCH_T_STRING : 0) | (n_num ? SCH_T_NUMBER : 0)));
    if (scalar < 0) goto done;
    const uint32_t st = literal_trie(c, strs, n_str, false);
    const uint32_t nt = literal_trie(c, nums, n_num, true);
    if (c->failed) goto done;
    c->s->nodes[scalar].str_trie = st;
    c->s->nodes[scalar].num_trie = nt;
    if (n_alt == 0) {
        r = scalar;
    } else {
        alts[n_alt++] = scalar;
        r = new_anyof(c, alts, n_alt);
    }
done:
    free(strs);
    free(nums);
    free(alts);
    return r;
}

/* Object members as declared properties, all required, no others. */
static bool set_props(cctx *c, int32_t id, const char *const *names, const sch_prop *props,
                      uint32_t n);

/* A fixed value: itself only (arrays and objects element by element, keys
 * in the value's order). */
// NOLINTNEXTLINE(misc-no-recursion): c->nest <= COMPILE_NEST_MAX (200)
static int32_t compile_const(cctx *c, const cJSON *v) {
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return compile_values(c, &v, 1, SCH_T_ALL);
    if (++c->nest > COMPILE_NEST_MAX) return fail(c, HEARTH_ERR_UNSUPPORTED, "nested too deeply");
    const int n = cJSON_GetArraySize(v);
    int32_t *sub = malloc((size_t)(n ? n : 1) * sizeof *sub);
    sch_prop *props = malloc((size_t)(n ? n : 1) * sizeof *props);
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    int32_t r = -1;
    if (!sub || !props || !names) {
        nomem(c);
        goto done;
    }
    int i = 0;
    for (const cJSON *e = v->child; e && !c->failed; e = e->next, i++) {
        sub[i] = compile_const(c, e);
        props[i] = (sch_prop){sub[i], true};
        names[i] = e->string;
    }
    if (c->failed) goto done;
    r = new_node(c, cJSON_IsArray(v) ? SCH_T_ARRAY : SCH_T_OBJECT);
    if (r < 0) goto done;
    if (cJSON_IsArray(v)) {
        smp_schema *s = c->s;
        if (!grow((void **)&s->items, &s->cap_items, s->n_items + (uint32_t)n, sizeof *s->items)) {
            r = nomem(c);
            goto done;
        }
        s->nodes[r].item_first = s->n_items;
        s->nodes[r].n_prefix = (uint32_t)n;
        s->nodes[r].min_items = s->nodes[r].max_items = (uint32_t)n;
        if (n) memcpy(s->items + s->n_items, sub, (size_t)n * sizeof *sub);
        s->n_items += (uint32_t)n;
    } else if (!set_props(c, r, names, props, (uint32_t)n)) {
        r = -1;
    }
done:
    c->nest--;
    free(sub);
    free(props);
    free(names);
    return r;
}

static int32_t compile_enum(cctx *c, const cJSON *o, uint8_t types) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "const");
    if (k) {
        const size_t old = path_push(c, "const");
        const cJSON *v = k;
        const int32_t r = compile_values(c, &v, 1, types);
        path_pop(c, old);
        return r;
    }
    k = cJSON_GetObjectItemCaseSensitive(o, "enum");
    const size_t old = path_push(c, "enum");
    int32_t r = -1;
    if (!cJSON_IsArray(k)) {
        fail(c, HEARTH_ERR_INVALID_ARG, "must be an array");
    } else {
        const int n = cJSON_GetArraySize(k);
        const cJSON **vals = malloc((size_t)(n ? n : 1) * sizeof *vals);
        if (!vals) {
            nomem(c);
        } else {
            int i = 0;
            for (const cJSON *e = k->child; e; e = e->next) vals[i++] = e;
            r = compile_values(c, vals, n, types);
            free(vals);
        }
    }
    path_pop(c, old);
    return r;
}

/* ---- objects ------------------------------------------------------------------- */

static bool set_props(cctx *c, int32_t id, const char *const *names, const sch_prop *props,
                      uint32_t n) {
    smp_schema *s = c->s;
    if (n > SMP_SCHEMA_MAX_PROPS) {
        fail(c, HEARTH_ERR_UNSUPPORTED, "more than %d properties are not supported",
             (int)SMP_SCHEMA_MAX_PROPS);
        return false;
    }
    if (!grow((void **)&s->props, &s->cap_props, s->n_props + n, sizeof *s->props)) {
        nomem(c);
        return false;
    }
    const uint32_t first = s->n_props;
    if (n) memcpy(s->props + first, props, n * sizeof *props);
    s->n_props += n;
    s->nodes[id].prop_first = first;
    s->nodes[id].n_props = n;
    if (n == 0) return true;
    const uint32_t root = trie_node(c, 0);
    for (uint32_t i = 0; i < n && !c->failed; i++) {
        size_t len;
        // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): the caller fills names[0..n)
        char *text = canon_checked(c, names[i], &len);
        if (!text) break;
        bool dup = false;
        if (trie_insert(c, root, text, len, (int32_t)i, &dup) && dup)
            fail(c, HEARTH_ERR_INVALID_ARG, "property '%s' appears twice", names[i]);
        free(text);
    }
    if (!c->failed) trie_sets(c, root, n);
    s->nodes[id].key_trie = root;
    return !c->failed;
}

/* properties, required, additionalProperties into node id. */
// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static bool compile_object(cctx *c, const cJSON *o, int32_t id) {
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "properties");
    const cJSON *rk = cJSON_GetObjectItemCaseSensitive(o, "required");
    const cJSON *ak = cJSON_GetObjectItemCaseSensitive(o, "additionalProperties");
    if ((pk && !cJSON_IsObject(pk)) || (rk && !cJSON_IsArray(rk))) {
        const size_t old = path_push(c, pk && !cJSON_IsObject(pk) ? "properties" : "required");
        fail(c, HEARTH_ERR_INVALID_ARG, "must be an %s",
             pk && !cJSON_IsObject(pk) ? "object" : "array");
        path_pop(c, old);
        return false;
    }
    const uint32_t n_decl = (uint32_t)(pk ? cJSON_GetArraySize(pk) : 0);
    const uint32_t n_req = (uint32_t)(rk ? cJSON_GetArraySize(rk) : 0);
    const uint32_t cap = n_decl + n_req + 1;
    sch_prop *props = malloc(cap * sizeof *props);
    const char **names = malloc(cap * sizeof *names);
    bool ok = false;
    if (!props || !names) {
        nomem(c);
        goto done;
    }
    uint32_t n = 0;
    for (const cJSON *p = pk ? pk->child : NULL; p && !c->failed; p = p->next) {
        const size_t old = path_push(c, "properties");
        const int32_t sub = compile_at(c, p, p->string, -1);
        path_pop(c, old);
        names[n] = p->string;
        props[n++] = (sch_prop){sub, false};
    }
    int32_t additional = pk ? -1 : c->any;
    if (ak && cJSON_IsBool(ak))
        additional = cJSON_IsTrue(ak) ? c->any : -1;
    else if (ak)
        additional = compile_at(c, ak, "additionalProperties", -1);
    if (c->failed) goto done;
    int i = 0;
    for (const cJSON *r = rk ? rk->child : NULL; r && !c->failed; r = r->next, i++) {
        const size_t old = path_push(c, "required");
        path_push_index(c, i);
        uint32_t j = 0;
        while (j < n && cJSON_IsString(r) && strcmp(names[j], r->valuestring)) j++;
        if (!cJSON_IsString(r)) {
            fail(c, HEARTH_ERR_INVALID_ARG, "must be a string");
        } else if (j < n) {
            props[j].required = true;
        } else if (additional < 0) {
            fail(c, HEARTH_ERR_INVALID_ARG,
                 "'%s' is required but is not in properties and additional properties are not "
                 "allowed",
                 r->valuestring);
        } else { /* required but undeclared: declared after the others, as additional */
            names[n] = r->valuestring;
            props[n++] = (sch_prop){additional, true};
        }
        path_pop(c, old);
    }
    if (c->failed || !set_props(c, id, names, props, n)) goto done;
    sch_node *node = &c->s->nodes[id];
    node->additional = additional;
    node->obj_free = n == 0 && additional == c->any;
    ok = true;
done:
    free(props);
    free(names);
    return ok;
}

/* ---- arrays ------------------------------------------------------------------ */

/* A list of sub-schemas under keyword `name` into the schema's items. */
// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static bool compile_list(cctx *c, const cJSON *list, const char *name, uint32_t *first,
                         uint32_t *n_out) {
    const int n = cJSON_GetArraySize(list);
    /* `true` entries compile to no node, so the node cap does not bound
     * them; the recognizer counts elements in 16 bits. */
    if (n > SMP_SCHEMA_MAX_COUNT) {
        const size_t old = path_push(c, name);
        fail(c, HEARTH_ERR_UNSUPPORTED, "more than %d entries are not supported",
             (int)SMP_SCHEMA_MAX_COUNT);
        path_pop(c, old);
        return false;
    }
    int32_t *sub = malloc((size_t)(n ? n : 1) * sizeof *sub);
    if (!sub) return nomem(c), false;
    int i = 0;
    for (const cJSON *e = list->child; e && !c->failed; e = e->next, i++)
        sub[i] = compile_at(c, e, name, i);
    smp_schema *s = c->s;
    if (!c->failed &&
        !grow((void **)&s->items, &s->cap_items, s->n_items + (uint32_t)n, sizeof *s->items))
        nomem(c);
    if (!c->failed) {
        *first = s->n_items;
        *n_out = (uint32_t)n;
        if (n) memcpy(s->items + s->n_items, sub, (size_t)n * sizeof *sub);
        s->n_items += (uint32_t)n;
    }
    free(sub);
    return !c->failed;
}

/* A schema that may be a boolean: true is any value, false none (-1). */
// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static int32_t compile_sub(cctx *c, const cJSON *k, const char *name) {
    if (cJSON_IsBool(k)) return cJSON_IsTrue(k) ? c->any : -1;
    return compile_at(c, k, name, -1);
}

// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static bool compile_array(cctx *c, const cJSON *o, int32_t id) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(o, "prefixItems");
    const cJSON *more = cJSON_GetObjectItemCaseSensitive(o, "additionalItems");
    uint32_t first = 0, n_prefix = 0;
    int32_t rest = c->any;
    if (prefix && !cJSON_IsArray(prefix)) {
        const size_t old = path_push(c, "prefixItems");
        fail(c, HEARTH_ERR_INVALID_ARG, "must be an array");
        path_pop(c, old);
        return false;
    }
    if (prefix && items && cJSON_IsArray(items)) {
        const size_t old = path_push(c, "items");
        fail(c, HEARTH_ERR_UNSUPPORTED, "an items array beside prefixItems is not supported");
        path_pop(c, old);
        return false;
    }
    if (more && !(items && cJSON_IsArray(items))) {
        const size_t old = path_push(c, "additionalItems");
        fail(c, HEARTH_ERR_UNSUPPORTED, "additionalItems without an items array is not supported");
        path_pop(c, old);
        return false;
    }
    const cJSON *tuple = prefix ? prefix : items && cJSON_IsArray(items) ? items : NULL;
    if (tuple && !compile_list(c, tuple, prefix ? "prefixItems" : "items", &first, &n_prefix))
        return false;
    const cJSON *tail = items && !cJSON_IsArray(items) ? items : more;
    if (tail) rest = compile_sub(c, tail, tail == items ? "items" : "additionalItems");
    if (c->failed) return false;
    uint32_t min = 0, max = SCH_NONE;
    if (!get_count(c, o, "minItems", &min) || !get_count(c, o, "maxItems", &max)) return false;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "uniqueItems");
    if (u && !cJSON_IsFalse(u)) {
        const size_t old = path_push(c, "uniqueItems");
        fail(c, HEARTH_ERR_UNSUPPORTED, "keyword 'uniqueItems' is not supported (only false)");
        path_pop(c, old);
        return false;
    }
    sch_node *node = &c->s->nodes[id];
    node->item_first = first;
    node->n_prefix = n_prefix;
    node->items = rest;
    node->min_items = min;
    node->max_items = max;
    node->arr_free = n_prefix == 0 && rest == c->any && min == 0 && max == SCH_NONE;
    return true;
}

/* ---- combinators and $ref ----------------------------------------------------- */

static int32_t memo_get(cctx *c, const cJSON *item) {
    for (uint32_t i = 0; i < c->n_memo; i++)
        if (c->memo[i].item == item) return c->memo[i].node;
    return -1;
}

/* The target of "#", "#/$defs/NAME" or "#/definitions/NAME". */
static const cJSON *ref_target(cctx *c, const char *ref) {
    if (!strcmp(ref, "#")) return c->root;
    const char *defs = NULL, *name = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) defs = "$defs", name = ref + 8;
    if (!strncmp(ref, "#/definitions/", 14)) defs = "definitions", name = ref + 14;
    if (!defs || strchr(name, '/') || strchr(name, '%')) {
        fail(c, HEARTH_ERR_UNSUPPORTED,
             "$ref '%s' is not supported (only #, #/$defs/NAME and #/definitions/NAME)", ref);
        return NULL;
    }
    char key[256];
    size_t n = 0;
    if (strlen(name) >= sizeof key) { /* decoding only shortens it */
        fail(c, HEARTH_ERR_UNSUPPORTED,
             "$ref '%.40s...': definition names over %d bytes are not "
             "supported",
             ref, (int)sizeof key - 1);
        return NULL;
    }
    for (const char *p = name; *p; p++) {
        if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
            key[n++] = p[1] == '0' ? '~' : '/';
            p++;
        } else {
            key[n++] = *p;
        }
    }
    key[n] = '\0';
    const cJSON *d =
        cJSON_IsObject(c->root) ? cJSON_GetObjectItemCaseSensitive(c->root, defs) : NULL;
    const cJSON *t = cJSON_IsObject(d) ? cJSON_GetObjectItemCaseSensitive(d, key) : NULL;
    if (!t) fail(c, HEARTH_ERR_INVALID_ARG, "$ref '%s' names no definition", ref);
    return t;
}

/* A $ref is an anyOf of one node: the target's, compiled once (a
 * placeholder first, so a recursive reference finds it). */
// NOLINTNEXTLINE(misc-no-recursion): capped by compile(); a $ref target compiles once
static int32_t compile_ref(cctx *c, const cJSON *k) {
    const size_t old = path_push(c, "$ref");
    int32_t r = -1;
    const cJSON *t = cJSON_IsString(k) ? ref_target(c, k->valuestring) : NULL;
    if (!cJSON_IsString(k)) fail(c, HEARTH_ERR_INVALID_ARG, "must be a string");
    path_pop(c, old);
    if (!t) return -1;
    if ((r = memo_get(c, t)) >= 0) return r;
    if ((r = new_anyof(c, NULL, 0)) < 0) return -1;
    if (!grow((void **)&c->memo, &c->cap_memo, c->n_memo + 1, sizeof *c->memo)) return nomem(c);
    c->memo[c->n_memo++] = (memo_entry){t, r};
    /* The target's own pointer, for its messages. */
    char saved[sizeof c->path];
    const size_t saved_len = c->path_len;
    memcpy(saved, c->path, sizeof saved);
    c->path_len = 0;
    c->path[0] = '\0';
    if (t != c->root) {
        path_push(c, !strncmp(k->valuestring, "#/$defs/", 8) ? "$defs" : "definitions");
        const size_t base = c->path_len;
        const char *nm = strrchr(k->valuestring, '/') + 1;
        snprintf(c->path + base, sizeof c->path - base, "/%s", nm);
        c->path_len = strlen(c->path);
    }
    const int32_t sub = compile(c, t);
    memcpy(c->path, saved, sizeof saved);
    c->path_len = saved_len;
    if (sub < 0) return -1;
    smp_schema *s = c->s;
    if (!grow((void **)&s->alts, &s->cap_alts, s->n_alts + 1, sizeof *s->alts)) return nomem(c);
    s->nodes[r].alt_first = s->n_alts;
    s->nodes[r].n_alts = 1;
    s->alts[s->n_alts++] = (uint32_t)sub;
    return r;
}

// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static int32_t compile_combinator(cctx *c, const cJSON *k) {
    if (!strcmp(k->string, "$ref")) return compile_ref(c, k);
    const bool all = !strcmp(k->string, "allOf");
    const int n = cJSON_IsArray(k) ? cJSON_GetArraySize(k) : -1;
    if (n < 0 || (all && n != 1)) {
        const size_t old = path_push(c, k->string);
        if (n < 0)
            fail(c, HEARTH_ERR_INVALID_ARG, "must be an array");
        else
            fail(c, HEARTH_ERR_UNSUPPORTED, "allOf is supported with one schema only, not %d", n);
        path_pop(c, old);
        return -1;
    }
    int32_t *alts = malloc((size_t)(n ? n : 1) * sizeof *alts);
    if (!alts) return nomem(c);
    uint32_t m = 0;
    int i = 0;
    for (const cJSON *e = k->child; e && !c->failed; e = e->next, i++) {
        const int32_t a = cJSON_IsFalse(e) ? -1 : compile_at(c, e, k->string, i);
        if (a >= 0) alts[m++] = a;
    }
    const int32_t r = c->failed ? -1 : new_anyof(c, alts, m);
    free(alts);
    return r;
}

/* ---- one schema -------------------------------------------------------------- */

// NOLINTNEXTLINE(misc-no-recursion): depth capped by compile() (COMPILE_NEST_MAX)
static int32_t compile_typed(cctx *c, const cJSON *o) {
    uint8_t types = SCH_T_ALL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (t && !parse_type(c, t, &types)) return -1;
    if (cJSON_GetObjectItemCaseSensitive(o, "enum") || cJSON_GetObjectItemCaseSensitive(o, "const"))
        return compile_enum(c, o, types);
    const int32_t id = new_node(c, types);
    if (id < 0) return -1;
    if (!compile_object(c, o, id) || !compile_array(c, o, id)) return -1;
    uint32_t min = 0, max = SCH_NONE;
    if (!get_count(c, o, "minLength", &min) || !get_count(c, o, "maxLength", &max)) return -1;
    c->s->nodes[id].min_len = min;
    c->s->nodes[id].max_len = max;
    return id;
}

// NOLINTNEXTLINE(misc-no-recursion): c->nest <= COMPILE_NEST_MAX (200)
static int32_t compile(cctx *c, const cJSON *item) {
    if (cJSON_IsBool(item)) {
        if (cJSON_IsTrue(item)) return c->any;
        return new_node(c, 0);
    }
    if (!cJSON_IsObject(item))
        return fail(c, HEARTH_ERR_INVALID_ARG, "a schema must be an object or a boolean");
    if (++c->nest > COMPILE_NEST_MAX) {
        c->nest--;
        return fail(c, HEARTH_ERR_UNSUPPORTED, "the schema is nested too deeply");
    }
    const cJSON *comb;
    int n_value;
    int32_t r = -1;
    if (check_keywords(c, item, &comb, &n_value)) {
        if (comb)
            r = compile_combinator(c, comb);
        else if (n_value == 0)
            r = c->any;
        else
            r = compile_typed(c, item);
    }
    c->nest--;
    return c->failed ? -1 : r;
}

/* ---- linking ----------------------------------------------------------------- */

/* Flattening state: seen[] and scanned[] hold the stamp of the search
 * that marked a node (a fresh stamp per search, nothing to clear); owner[x]
 * is the node whose stored list x's flattened set is (SCH_NONE: not
 * flattened yet). */
typedef struct flat_ctx {
    uint32_t *seen, *scanned, *owner, *stack, *out;
    uint32_t stamp;
    uint64_t work; /* nodes popped and list entries read, against FLATTEN_WORK_MAX */
} flat_ctx;

/* Bounds the time of flattening: far beyond real schemas, reached by ones
 * built to make shared $refs expand (each a few ms of work per million). */
enum { FLATTEN_WORK_MAX = 16 * SMP_SCHEMA_MAX_ALTS };

static bool flat_fail(cctx *c) {
    fail(c, HEARTH_ERR_UNSUPPORTED,
         "anyOf/oneOf/$ref combinations expand to more than %d alternatives in all",
         (int)SMP_SCHEMA_MAX_ALTS);
    return false;
}

/* Stores out[0..m) as node x's flattened list. */
static bool flat_store(cctx *c, const flat_ctx *f, uint32_t x, uint32_t m) {
    smp_schema *s = c->s;
    if (m > SMP_SCHEMA_MAX_ALTS - s->n_alts) return flat_fail(c);
    if (!grow((void **)&s->alts, &s->cap_alts, s->n_alts + m, sizeof *s->alts)) {
        nomem(c);
        return false;
    }
    s->nodes[x].alt_first = s->n_alts;
    s->nodes[x].n_alts = m;
    if (m) memcpy(s->alts + s->n_alts, f->out, m * sizeof *f->out);
    s->n_alts += m;
    f->owner[x] = x;
    return true;
}

/* The typed nodes anyOf node x reaches through anyOf nodes, each once, in
 * depth-first order of the alternatives, into x's list. An anyOf flattened
 * before adds its list (read once per search, however many nodes share it). */
static bool flat_search(cctx *c, flat_ctx *f, uint32_t x) {
    smp_schema *s = c->s;
    const uint32_t st = ++f->stamp;
    uint32_t sp = 0, m = 0;
    f->stack[sp++] = x;
    f->seen[x] = st;
    while (sp) {
        const uint32_t y = f->stack[--sp];
        const sch_node *ny = &s->nodes[y];
        if (++f->work > FLATTEN_WORK_MAX) return flat_fail(c);
        if (ny->kind == SCH_TYPED) {
            if (ny->types) f->out[m++] = y;
            continue;
        }
        if (f->owner[y] != SCH_NONE) {
            const uint32_t o = f->owner[y];
            if (f->scanned[o] == st) continue;
            f->scanned[o] = st;
            f->work += ny->n_alts;
            if (f->work > FLATTEN_WORK_MAX) return flat_fail(c);
            for (uint32_t a = 0; a < ny->n_alts; a++) {
                const uint32_t t = s->alts[ny->alt_first + a];
                if (f->seen[t] == st) continue;
                f->seen[t] = st;
                f->out[m++] = t;
            }
            continue;
        }
        for (uint32_t a = ny->n_alts; a-- > 0;) {
            // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): n_alts > 0: alts exists
            const uint32_t z = s->alts[ny->alt_first + a];
            if (f->seen[z] == st) continue;
            f->seen[z] = st;
            f->stack[sp++] = z;
        }
    }
    return flat_store(c, f, x, m);
}

/* Flattens anyOf node i. A chain of one-alternative wrappers ($ref, allOf
 * of one, anyOf of one) has the set of the node it ends at, so the whole
 * chain shares that node's list: a definition referenced from many places
 * is stored once. */
static bool flat_node(cctx *c, flat_ctx *f, uint32_t i) {
    smp_schema *s = c->s;
    const uint32_t st = ++f->stamp;
    uint32_t len = 0, x = i;
    while (s->nodes[x].kind == SCH_ANYOF && f->owner[x] == SCH_NONE && s->nodes[x].n_alts == 1 &&
           f->seen[x] != st) {
        f->seen[x] = st;
        f->stack[len++] = x;
        x = s->alts[s->nodes[x].alt_first]; // NOLINT(clang-analyzer-core.NullDereference): n_alts 1
    }
    uint32_t o;
    if (s->nodes[x].kind == SCH_ANYOF && f->seen[x] == st) { /* a cycle of wrappers: no value */
        if (!flat_store(c, f, i, 0)) return false;
        o = i;
    } else if (s->nodes[x].kind == SCH_ANYOF) {
        if (f->owner[x] == SCH_NONE && !flat_search(c, f, x)) return false;
        o = f->owner[x];
    } else {
        f->out[0] = x;
        if (!flat_store(c, f, i, s->nodes[x].types ? 1 : 0)) return false;
        o = i;
    }
    for (uint32_t k = 0; k < len; k++) {
        const uint32_t y = f->stack[k];
        s->nodes[y].alt_first = s->nodes[o].alt_first;
        s->nodes[y].n_alts = s->nodes[o].n_alts;
        f->owner[y] = o;
    }
    return true;
}

/* Replaces every anyOf's alternatives by the typed nodes it reaches through
 * anyOf nodes (each once; a cycle adds nothing; nodes of no type dropped).
 * The lists stored are capped at SMP_SCHEMA_MAX_ALTS entries in all.
 * *owner receives, per anyOf node, the node whose list it shares (malloc'd). */
static bool flatten(cctx *c, uint32_t **owner) {
    smp_schema *s = c->s;
    const uint32_t n = s->n_nodes;
    flat_ctx f = {.seen = calloc(n, sizeof *f.seen),
                  .scanned = calloc(n, sizeof *f.scanned),
                  .owner = malloc(n * sizeof *f.owner),
                  .stack = malloc(n * sizeof *f.stack),
                  .out = malloc(n * sizeof *f.out)};
    bool ok = f.seen && f.scanned && f.owner && f.stack && f.out;
    if (!ok) nomem(c);
    for (uint32_t i = 0; i < n && ok; i++) f.owner[i] = SCH_NONE;
    for (uint32_t i = 0; i < n && ok; i++)
        if (s->nodes[i].kind == SCH_ANYOF && f.owner[i] == SCH_NONE) ok = flat_node(c, &f, i);
    free(f.seen);
    free(f.scanned);
    free(f.stack);
    free(f.out);
    if (ok)
        *owner = f.owner;
    else
        free(f.owner);
    return ok;
}

static uint8_t md_of(const smp_schema *s, int32_t node) {
    return node < 0 ? SCH_INF : s->nodes[node].md;
}

/* 1 + the most of the given depths, SCH_INF past the limit. */
static uint8_t md_container(uint32_t deepest) {
    return deepest >= SMP_SCHEMA_MAX_DEPTH ? SCH_INF : (uint8_t)(deepest + 1);
}

static void md_typed(const smp_schema *s, sch_node *n) {
    uint32_t d = 0;
    n->md_obj = SCH_INF;
    if (n->types & SCH_T_OBJECT) {
        for (uint32_t i = 0; i < n->n_props; i++) {
            const sch_prop *p = &s->props[n->prop_first + i];
            // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): n_props > 0: props exists
            if (p->required && md_of(s, p->node) > d) d = md_of(s, p->node);
        }
        n->md_obj = md_container(d);
    }
    n->md_arr = SCH_INF;
    if ((n->types & SCH_T_ARRAY) && (n->max_items == SCH_NONE || n->min_items <= n->max_items)) {
        d = 0;
        for (uint32_t i = 0; i < n->min_items; i++) {
            // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): n_prefix > 0: items exists
            const int32_t e = i < n->n_prefix ? s->items[n->item_first + i] : n->items;
            if (md_of(s, e) > d) d = md_of(s, e);
            if (i >= n->n_prefix) break; /* the same node for the rest */
        }
        n->md_arr = md_container(d);
    }
    n->md_str = (n->types & SCH_T_STRING) && (n->max_len == SCH_NONE || n->min_len <= n->max_len)
                    ? 0
                    : SCH_INF;
    n->md_num = (n->types & (SCH_T_NUMBER | SCH_T_INTEGER)) ? 0 : SCH_INF;
    uint8_t md = (n->types & (SCH_T_NULL | SCH_T_TRUE | SCH_T_FALSE)) ? 0 : SCH_INF;
    if (n->md_str < md) md = n->md_str;
    if (n->md_num < md) md = n->md_num;
    if (n->md_obj < md) md = n->md_obj;
    if (n->md_arr < md) md = n->md_arr;
    n->md = md;
}

/* The least fixed point of the depths: every pass can only lower them. An
 * anyOf that shares another's list (owner) takes its depth rather than
 * reading the list again: shared definitions would make every pass
 * quadratic. */
static void min_depths(smp_schema *s, const uint32_t *owner) {
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t i = 0; i < s->n_nodes; i++) {
            sch_node *n = &s->nodes[i];
            const uint8_t before = n->md;
            if (n->kind == SCH_TYPED) {
                md_typed(s, n);
            } else if (owner[i] != i) {
                n->md = s->nodes[owner[i]].md;
            } else {
                uint8_t md = SCH_INF;
                for (uint32_t a = 0; a < n->n_alts; a++) {
                    const uint8_t x = s->nodes[s->alts[n->alt_first + a]].md;
                    if (x < md) md = x;
                }
                n->md = md;
            }
            if (n->md != before) changed = true;
        }
    }
}

/* ---- entry points ------------------------------------------------------------- */

void smp_schema_free(smp_schema *s) {
    if (!s) return;
    free(s->nodes);
    free(s->alts);
    free(s->props);
    free(s->items);
    free(s->trie);
    free(s->bits);
    free(s);
}

hearth_err smp_schema_compile(const char *text, smp_schema **out) {
    if (!text) return hr_fail(HEARTH_ERR_INVALID_ARG, "json_schema: no schema given");
    const size_t len = strnlen(text, (size_t)SMP_SCHEMA_MAX_TEXT + 1);
    if (len > SMP_SCHEMA_MAX_TEXT)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "json_schema: the schema is longer than %d bytes",
                       (int)SMP_SCHEMA_MAX_TEXT);
    /* cJSON cuts strings at U+0000, which would make "a\u0000b" match "a". */
    if (strstr(text, "\\u0000"))
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "json_schema: strings with \\u0000 are not supported");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        const size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return hr_fail(HEARTH_ERR_INVALID_ARG, "json_schema: not valid JSON (near byte %zu)", at);
    }
    for (const char *p = end; p && p < text + len; p++) {
        if (!strchr(" \t\r\n", *p)) {
            cJSON_Delete(root);
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "json_schema: not valid JSON (text after the schema at byte %zu)",
                           (size_t)(p - text));
        }
    }
    cctx c = {.root = root};
    c.s = hr_calloc(1, sizeof *c.s);
    hearth_err err = HEARTH_OK;
    if (!c.s) {
        cJSON_Delete(root);
        return HEARTH_ERR_NOMEM;
    }
    c.any = new_node(&c, SCH_T_ALL);
    if (c.any >= 0) {
        c.s->nodes[c.any].obj_free = c.s->nodes[c.any].arr_free = true;
        c.s->nodes[c.any].additional = c.s->nodes[c.any].items = c.any;
    }
    int32_t root_node = c.any >= 0 ? compile(&c, root) : -1;
    uint32_t *owner = NULL;
    if (root_node >= 0 && flatten(&c, &owner)) {
        min_depths(c.s, owner);
        c.path_len = 0;
        c.path[0] = '\0';
        if (c.s->nodes[root_node].md == SCH_INF)
            fail(&c, HEARTH_ERR_INVALID_ARG,
                 "the schema admits no value (within %d nested containers)",
                 (int)SMP_SCHEMA_MAX_DEPTH);
    }
    if (c.failed || root_node < 0) {
        err = c.failed ? c.code : HEARTH_ERR_NOMEM;
        smp_schema_free(c.s);
    } else {
        c.s->root = root_node;
        *out = c.s;
    }
    free(owner);
    free(c.memo);
    cJSON_Delete(root);
    return err;
}

hearth_err smp_schema_json_object(smp_schema **out) {
    return smp_schema_compile("{\"type\":\"object\"}", out);
}

hearth_err hearth_json_schema_check(const char *schema) {
    smp_schema *compiled = NULL;
    const hearth_err err = smp_schema_compile(schema, &compiled);
    smp_schema_free(compiled);
    return err;
}
