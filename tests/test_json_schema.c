/*
 * test_json_schema.c - JSON Schema constrained output (src/sampling/
 * json_schema*.c):
 *   - every refused keyword and malformed schema, with its message and the
 *     JSON pointer it names;
 *   - the recognizer at the exact byte on hand-made cases;
 *   - for a suite of schemas, the recognizer against an independent
 *     validator (json_schema_validate.h) on valid examples, random outputs
 *     and their mutations: a complete text is accepted iff the validator
 *     says valid, and every accepted prefix can be completed into a text
 *     the validator accepts;
 *   - masks against brute force on a toy vocabulary and on real ones from
 *     ../shared/conformance (skipped when absent), with their cost, also
 *     inside maxLength strings at every count of characters left;
 *   - generation on a synthetic model: every finished output is valid.
 */
#include "engine/engine.h"
#include "hearth.h"
#include "json_schema_validate.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "sampling/json_schema.h"
#include "sampling/vocab_bytes.h"
#include "shared_vocab.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static smp_schema *compile_ok(const char *text) {
    smp_schema *s = NULL;
    const hearth_err err = smp_schema_compile(text, &s);
    CHECKF(err == HEARTH_OK, "%s: %s", text, hearth_last_error());
    return s;
}

/* Bytes of t[0..n) accepted before the first refused one; *st receives
 * the state after them. */
static size_t accepted(const smp_schema *s, const char *t, size_t n, smp_sstate *st) {
    smp_sstate_init(st);
    for (size_t i = 0; i < n; i++)
        if (!smp_sstate_feed(s, st, t + i, 1)) return i;
    return n;
}

static bool rec_valid(const smp_schema *s, const char *t, size_t n) {
    smp_sstate st;
    return accepted(s, t, n, &st) == n && smp_sstate_can_end(s, &st);
}

/* ---- refused schemas ----------------------------------------------------------- */

static void errors(void) {
    static const struct {
        const char *schema;
        hearth_err err;
        const char *msg;
    } cases[] = {
        {"{\"type\":\"string\",\"pattern\":\"a\"}", HEARTH_ERR_UNSUPPORTED,
         "json_schema: (root): keyword 'pattern' is not supported"},
        {"{\"properties\":{\"age\":{\"type\":\"integer\",\"minimum\":0}}}", HEARTH_ERR_UNSUPPORTED,
         "json_schema: /properties/age: keyword 'minimum' is not supported"},
        {"{\"properties\":{\"a/b~\":{\"format\":\"date\"}}}", HEARTH_ERR_UNSUPPORTED,
         "json_schema: /properties/a~1b~0: keyword 'format' is not supported"},
        {"{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"string\",\"pattern\":\"x\"}]}}",
         HEARTH_ERR_UNSUPPORTED, "json_schema: /items/anyOf/0: keyword 'pattern' is not supported"},
        {"{\"maximum\":1}", HEARTH_ERR_UNSUPPORTED, "keyword 'maximum' is not supported"},
        {"{\"exclusiveMinimum\":1}", HEARTH_ERR_UNSUPPORTED, "keyword 'exclusiveMinimum'"},
        {"{\"exclusiveMaximum\":1}", HEARTH_ERR_UNSUPPORTED, "keyword 'exclusiveMaximum'"},
        {"{\"multipleOf\":2}", HEARTH_ERR_UNSUPPORTED, "keyword 'multipleOf' is not supported"},
        {"{\"not\":{}}", HEARTH_ERR_UNSUPPORTED, "keyword 'not' is not supported"},
        {"{\"if\":{},\"then\":{}}", HEARTH_ERR_UNSUPPORTED, "keyword 'if' is not supported"},
        {"{\"patternProperties\":{}}", HEARTH_ERR_UNSUPPORTED, "keyword 'patternProperties'"},
        {"{\"propertyNames\":{}}", HEARTH_ERR_UNSUPPORTED, "keyword 'propertyNames'"},
        {"{\"minProperties\":1}", HEARTH_ERR_UNSUPPORTED, "keyword 'minProperties'"},
        {"{\"maxProperties\":1}", HEARTH_ERR_UNSUPPORTED, "keyword 'maxProperties'"},
        {"{\"dependentRequired\":{}}", HEARTH_ERR_UNSUPPORTED, "keyword 'dependentRequired'"},
        {"{\"contains\":{}}", HEARTH_ERR_UNSUPPORTED, "keyword 'contains'"},
        {"{\"unevaluatedProperties\":false}", HEARTH_ERR_UNSUPPORTED, "'unevaluatedProperties'"},
        {"{\"type\":\"string\",\"nullable\":true}", HEARTH_ERR_UNSUPPORTED, "keyword 'nullable'"},
        {"{\"type\":\"array\",\"uniqueItems\":true}", HEARTH_ERR_UNSUPPORTED,
         "/uniqueItems: keyword 'uniqueItems' is not supported (only false)"},
        {"{\"$dynamicRef\":\"#a\"}", HEARTH_ERR_UNSUPPORTED, "keyword '$dynamicRef'"},
        {"{\"anyOf\":[{}],\"type\":\"string\"}", HEARTH_ERR_UNSUPPORTED,
         "keyword 'type' beside 'anyOf' is not supported"},
        {"{\"$ref\":\"#\",\"oneOf\":[{}]}", HEARTH_ERR_UNSUPPORTED, "beside '$ref'"},
        {"{\"enum\":[1],\"minLength\":1}", HEARTH_ERR_UNSUPPORTED,
         "keyword 'minLength' beside 'enum' is not supported"},
        {"{\"enum\":[1],\"const\":1}", HEARTH_ERR_UNSUPPORTED, "beside 'enum'"},
        {"{\"allOf\":[{},{}]}", HEARTH_ERR_UNSUPPORTED,
         "json_schema: /allOf: allOf is supported with one schema only, not 2"},
        {"{\"$ref\":\"http://example.com/s.json\"}", HEARTH_ERR_UNSUPPORTED,
         "/$ref: $ref 'http://example.com/s.json' is not supported"},
        {"{\"type\":\"array\",\"prefixItems\":[{}],\"items\":[{}]}", HEARTH_ERR_UNSUPPORTED,
         "an items array beside prefixItems"},
        {"{\"additionalItems\":false}", HEARTH_ERR_UNSUPPORTED, "additionalItems without"},
        {"{\"maxLength\":1e9}", HEARTH_ERR_UNSUPPORTED, "/maxLength: values above 60000"},
        {"{\"type\":\"string\",\"enum\":[\"a\\u0000b\"]}", HEARTH_ERR_UNSUPPORTED, "\\u0000"},
        {"not json", HEARTH_ERR_INVALID_ARG, "json_schema: not valid JSON"},
        {"{} {}", HEARTH_ERR_INVALID_ARG, "text after the schema"},
        {"[1]", HEARTH_ERR_INVALID_ARG, "(root): a schema must be an object or a boolean"},
        {"{\"type\":\"foo\"}", HEARTH_ERR_INVALID_ARG, "json_schema: /type: unknown type 'foo'"},
        {"{\"type\":3}", HEARTH_ERR_INVALID_ARG, "/type: must be a type name"},
        {"{\"$ref\":\"#/$defs/x\"}", HEARTH_ERR_INVALID_ARG, "/$ref: $ref '#/$defs/x' names no"},
        {"{\"minItems\":-1}", HEARTH_ERR_INVALID_ARG, "/minItems: must be a non-negative integer"},
        {"{\"maxLength\":1.5}", HEARTH_ERR_INVALID_ARG, "/maxLength: must be a non-negative"},
        {"{\"properties\":[]}", HEARTH_ERR_INVALID_ARG, "/properties: must be an object"},
        {"{\"required\":{}}", HEARTH_ERR_INVALID_ARG, "/required: must be an array"},
        {"{\"enum\":3}", HEARTH_ERR_INVALID_ARG, "/enum: must be an array"},
        {"{\"properties\":{\"a\":{}},\"required\":[\"b\"]}", HEARTH_ERR_INVALID_ARG,
         "/required/0: 'b' is required but is not in properties"},
        {"{\"type\":\"string\",\"minLength\":3,\"maxLength\":2}", HEARTH_ERR_INVALID_ARG,
         "(root): the schema admits no value"},
        {"false", HEARTH_ERR_INVALID_ARG, "admits no value"},
        {"{\"type\":[]}", HEARTH_ERR_INVALID_ARG, "admits no value"},
        {"{\"type\":\"integer\",\"enum\":[1.5]}", HEARTH_ERR_INVALID_ARG, "admits no value"},
        {"{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
         HEARTH_ERR_INVALID_ARG, "admits no value"},
        {"{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#\"}},\"required\":[\"x\"]}",
         HEARTH_ERR_INVALID_ARG, "admits no value"},
        {"{\"type\":\"object\",\"properties\":{\"a\":{},\"a\":{}}}", HEARTH_ERR_INVALID_ARG,
         "property 'a' appears twice"},
        {"{\"enum\":[\"\xff\"]}", HEARTH_ERR_INVALID_ARG, "is not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        smp_schema *s = NULL;
        const hearth_err err = smp_schema_compile(cases[i].schema, &s);
        CHECKF(err == cases[i].err, "%s: %s, want %s (%s)", cases[i].schema, hearth_err_name(err),
               hearth_err_name(cases[i].err), hearth_last_error());
        CHECKF(strstr(hearth_last_error(), cases[i].msg), "%s: message '%s' lacks '%s'",
               cases[i].schema, hearth_last_error(), cases[i].msg);
        CHECK(s == NULL);
        /* The public check says the same. */
        CHECK(hearth_json_schema_check(cases[i].schema) == cases[i].err);
    }
    CHECK(hearth_json_schema_check(NULL) == HEARTH_ERR_INVALID_ARG);
    /* Annotations and the accepted forms compile. */
    static const char *ok[] = {
        "true",
        "{}",
        // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one schema over three lines
        "{\"title\":\"t\",\"description\":\"d\",\"$schema\":\"x\",\"$id\":\"y\","
        "\"$comment\":\"c\",\"examples\":[1],\"default\":2,\"deprecated\":false,\"readOnly\":true,"
        "\"writeOnly\":false,\"x-vendor\":{\"pattern\":1}}",
        "{\"type\":\"array\",\"uniqueItems\":false}",
        "{\"definitions\":{\"a~b/c\":{\"type\":\"null\"}},\"$ref\":\"#/definitions/a~0b~1c\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        CHECKF(hearth_json_schema_check(ok[i]) == HEARTH_OK, "%s: %s", ok[i], hearth_last_error());
    }
}

/* ---- schemas built to exhaust the compiler --------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *t) {
    const size_t k = strlen(t);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        REQUIRE(b->p);
    }
    memcpy(b->p + b->n, t, k + 1);
    b->n += k;
}

/* {"$defs":{"b":{"anyOf":[n_null x {"type":"null"}]}},"type":"array",
 *  "prefixItems":[n_items x ENTRY]} */
static char *shared_refs(int n_null, int n_items, const char *entry) {
    sbuf b = {0};
    sb_add(&b, "{\"$defs\":{\"b\":{\"anyOf\":[");
    for (int i = 0; i < n_null; i++) sb_add(&b, i ? ",{\"type\":\"null\"}" : "{\"type\":\"null\"}");
    sb_add(&b, "]}},\"type\":\"array\",\"prefixItems\":[");
    for (int i = 0; i < n_items; i++) {
        if (i) sb_add(&b, ",");
        sb_add(&b, entry);
    }
    sb_add(&b, "]}");
    return b.p;
}

/* Shared $refs are flattened once (they used to cost n_null * n_items
 * alternatives: 420M, 2.1 GB, for the first schema), and what does expand
 * is capped with a clear error. */
static void shared_ref_limits(void) {
    char *t = shared_refs(30000, 14000, "{\"anyOf\":[{\"$ref\":\"#/$defs/b\"}]}");
    const double t0 = now_ms();
    smp_schema *s = compile_ok(t);
    const double ms = now_ms() - t0;
    if (s) {
        CHECKF(s->n_alts < 200000, "%u alternatives stored", (unsigned)s->n_alts);
        CHECK(rec_valid(s, "[null,null]", 11));
        CHECK(!rec_valid(s, "[null,1]", 8));
        smp_schema_free(s);
    }
    printf("shared $ref x 14000 over 30000 alternatives: compiled in %.0f ms\n", ms);
    free(t);
    /* A wrapper of two alternatives is a set of its own each time. */
    t = shared_refs(30000, 5000, "{\"anyOf\":[{\"$ref\":\"#/$defs/b\"},{\"type\":\"string\"}]}");
    s = NULL;
    CHECK(smp_schema_compile(t, &s) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "expand to more than 1048576 alternatives"), "%s",
           hearth_last_error());
    CHECK(s == NULL);
    free(t);
}

/* A $ref's definition name longer than the decoding buffer is refused (it
 * was cut to 255 bytes, which could name another definition). */
static void long_ref_name(void) {
    char name[301], text[1024];
    memset(name, 'a', 300);
    name[300] = '\0';
    snprintf(text, sizeof text,
             "{\"$defs\":{\"%.255s\":{\"type\":\"null\"},\"%s\":{\"type\":\"string\"}},"
             "\"$ref\":\"#/$defs/%s\"}",
             name, name, name);
    smp_schema *s = NULL;
    CHECK(smp_schema_compile(text, &s) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "definition names over 255 bytes"), "%s",
           hearth_last_error());
    CHECK(s == NULL);
}

/* prefixItems of `true` entries compile to no node; their number is
 * capped so the recognizer's 16-bit element count cannot wrap. */
static void prefix_limit(void) {
    sbuf b = {0};
    sb_add(&b, "{\"type\":\"array\",\"prefixItems\":[");
    for (int i = 0; i < 70000; i++) sb_add(&b, i ? ",true" : "true");
    sb_add(&b, "],\"items\":false}");
    smp_schema *s = NULL;
    CHECK(smp_schema_compile(b.p, &s) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "/prefixItems: more than 60000 entries are not supported"),
           "%s", hearth_last_error());
    CHECK(s == NULL);
    free(b.p);
}

/* Property-name tries keep index sets at branching and terminal nodes
 * only: 1024 names of ~1000 bytes (1 MB of text) needed 16M words of sets
 * (128 MB) with one per trie node. Many objects with many properties hit a
 * cap with a clear error. */
static void key_trie_sets(void) {
    sbuf b = {0};
    char name[1024];
    sb_add(&b, "{\"type\":\"object\",\"properties\":{");
    for (int i = 0; i < 1024; i++) {
        snprintf(name, sizeof name, "%s\"p%04d", i ? "," : "", i);
        sb_add(&b, name);
        memset(name, 'x', 990);
        name[990] = '\0';
        sb_add(&b, name);
        sb_add(&b, "\":true");
    }
    sb_add(&b, "}}");
    smp_schema *s = compile_ok(b.p);
    if (s) {
        CHECKF(s->n_bits <= 2 * 1024 * 16, "%u words of sets", (unsigned)s->n_bits);
        /* The last property's name: the trie still finds it. */
        snprintf(name, sizeof name, "{\"p1023");
        memset(name + 7, 'x', 990);
        snprintf(name + 997, sizeof name - 997, "\":1}");
        CHECK(rec_valid(s, name, strlen(name)));
        name[3] = '9'; /* p1923xxx...: no such property */
        CHECK(!rec_valid(s, name, strlen(name)));
        smp_schema_free(s);
    }
    free(b.p);
    b = (sbuf){0};
    sb_add(&b, "{\"anyOf\":[");
    for (int k = 0; k < 80; k++) {
        sb_add(&b, k ? ",{\"properties\":{" : "{\"properties\":{");
        for (int i = 0; i < 1024; i++) {
            snprintf(name, sizeof name, "%s\"%c%c\":true", i ? "," : "", '0' + i / 32,
                     '0' + i % 32);
            sb_add(&b, name);
        }
        sb_add(&b, "}}");
    }
    sb_add(&b, "]}");
    s = NULL;
    CHECK(smp_schema_compile(b.p, &s) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "words of index sets"), "%s", hearth_last_error());
    CHECK(s == NULL);
    free(b.p);
}

/* ---- the exact byte ---------------------------------------------------------- */

static const char *const person =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":8},\"age\":{\"type\":\"integer\"},\"email\":{\"type\":\"string\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":2}},"
    "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";

static void table(void) {
    static const struct {
        const char *schema;
        const char *text;
        size_t accepted; /* bytes accepted (SIZE_MAX: all) */
        bool can_end;    /* when all are */
    } cases[] = {
        {NULL, "{\"name\":\"Bob\",\"age\":42}", SIZE_MAX, true},
        {NULL, "{\"age\":1}", 2, false},                 /* name is required first */
        {NULL, "{\"name\":\"\"", 9, false},              /* minLength 1 */
        {NULL, "{\"name\":\"123456789\"", 17, false},    /* maxLength 8 */
        {NULL, "{\"name\":\"a\",\"age\":1.", 19, false}, /* an integer */
        {NULL, "{\"name\":\"a\",\"age\":1e", 19, false},
        {NULL, "{\"name\":\"a\",\"age\":-0}", SIZE_MAX, true},
        {NULL, "{\"name\":\"a\"}", 11, false},                                 /* age is required */
        {NULL, "{\"name\":\"a\",\"age\":1,\"name\"", 21, false},               /* no repeat */
        {NULL, "{\"name\":\"a\",\"age\":1,\"tags\":[\"x\",\"y\",", 35, false}, /* maxItems */
        {NULL, "{\"name\":\"a\",\"age\":1,\"email\":\"e\",\"tags\":[]}", SIZE_MAX, true},
        {NULL, "{\"name\":\"a\",\"age\":1,\"tags\":[],\"email\"", 29, false}, /* order */
        {NULL, "{\"name\":\"a\",\"age\":1,\"x\"", 21, false},                 /* no additional */
        {NULL, "{\"n\\u0061me\"", 3, false},                                  /* canonical keys */
        {"{\"type\":\"integer\"}", "12", SIZE_MAX, true},
        {"{\"type\":\"integer\"}", "12 ", SIZE_MAX, true},
        {"{\"enum\":[\"red\",\"green\",2.5,true,null]}", "\"gre", SIZE_MAX, false},
        {"{\"enum\":[\"red\",\"green\",2.5,true,null]}", "\"grex", 4, false},
        {"{\"enum\":[\"red\",\"green\",2.5,true,null]}", "2.50", 3, false},
        {"{\"enum\":[\"red\",\"green\",2.5,true,null]}", "fa", 0, false},
        {"{\"enum\":[\"red\",\"green\",2.5,true,null]}", " null", SIZE_MAX, true},
        {"{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1,\"x\"]}", SIZE_MAX, true},
        {"{\"const\":{\"a\":[1,\"x\"]}}", "{\"a\":[1]", 7, false},
        {"{\"type\":\"string\",\"maxLength\":2}", "\"\\ud83d\\ude00\xc3\xa9\"", SIZE_MAX, true},
        {"{\"type\":\"string\",\"maxLength\":2}", "\"\\ud83d\\ude00\xc3\xa9x", 15, false},
        {"{\"type\":[\"string\",\"null\"]}", "nul", SIZE_MAX, false},
        {"{\"type\":[\"string\",\"null\"]}", "0", 0, false},
        {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
         "{\"a\":1,\"b\":2}", SIZE_MAX, true},
        {"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":\"", 5,
         false},
        {"{\"type\":\"array\",\"minItems\":2,\"items\":{\"type\":\"null\"}}", "[null]", 5, false},
        {"{\"anyOf\":[{\"type\":\"array\",\"maxItems\":1},{\"type\":\"array\",\"items\":"
         "{\"type\":\"integer\"}}]}",
         "[1,2]", SIZE_MAX, true},
        {"{\"anyOf\":[{\"type\":\"array\",\"maxItems\":1},{\"type\":\"array\",\"items\":"
         "{\"type\":\"integer\"}}]}",
         "[\"a\",", 4, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        smp_schema *s = compile_ok(cases[i].schema ? cases[i].schema : person);
        if (!s) continue;
        smp_sstate st;
        const size_t n = strlen(cases[i].text);
        const size_t got = accepted(s, cases[i].text, n, &st);
        const size_t want = cases[i].accepted == SIZE_MAX ? n : cases[i].accepted;
        CHECKF(got == want, "%s: accepted %zu bytes, want %zu", cases[i].text, got, want);
        if (got == n) CHECKF(smp_sstate_can_end(s, &st) == cases[i].can_end, "%s", cases[i].text);
        smp_schema_free(s);
    }
}

/* ---- against the validator ------------------------------------------------------- */

typedef struct suite_case {
    const char *schema;
    const char *examples[4];
} suite_case;

static const suite_case suite[] = {
    {NULL,
     {"{\"name\":\"Bob\",\"age\":42}", "{ \"name\" : \"Al\", \"age\": -3, \"tags\": [\"a\"] }"}},
    {"{\"enum\":[\"red\",\"green\",1,2.5,true,null,{\"a\":[1,\"x\"]},[1,2]]}",
     {"\"green\"", "2.5", "{\"a\":[1,\"x\"]}", "[1, 2]"}},
    {"{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"circle\"},\"r\":"
     "{\"type\":\"number\"}},\"required\":[\"kind\",\"r\"]},{\"type\":\"object\",\"properties\":"
     "{\"kind\":{\"const\":\"rect\"},\"w\":{\"type\":\"number\"},\"h\":{\"type\":\"number\"}},"
     "\"required\":[\"kind\",\"w\",\"h\"]}]}",
     {"{\"kind\":\"rect\",\"w\":1,\"h\":2e3}", "{\"kind\":\"circle\",\"r\":0.5}"}},
    {"{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"integer\"},"
     "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":"
     "[\"value\"]}},\"$ref\":\"#/$defs/node\"}",
     {"{\"value\":1,\"children\":[{\"value\":2},{\"value\":3,\"children\":[]}]}"}},
    {"{\"type\":[\"string\",\"null\"],\"maxLength\":3}", {"null", "\"abc\""}},
    {"{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},\"required\":[\"id\"],"
     "\"additionalProperties\":{\"type\":\"number\"}}",
     {"{\"id\":1,\"x\":2.5,\"y\":3}", "{\"id\":7}"}},
    {"{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"},"
     "{\"type\":\"boolean\"}],\"items\":false,\"minItems\":2}",
     {"[\"a\",1]", "[\"a\",1,true]"}},
    {"{\"type\":\"object\"}", {"{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", "{}"}},
    {"{}", {"1", "\"x\"", "[]", "{\"a\":[true]}"}},
    {"{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"number\"},{\"type\":\"string\",\"enum\":"
     "[\"a\",\"ab\"]}]}",
     {"1", "1.5e3", "\"ab\""}},
    {"{\"type\":\"object\",\"properties\":{\"a\\\"b\":{\"type\":\"boolean\"},\"caf\\u00e9\":"
     "{\"type\":\"null\"},\"tab\\t\":{\"const\":\"x\\ny\"}},\"required\":[\"tab\\t\"]}",
     {"{\"a\\\"b\":true,\"caf\xc3\xa9\":null,\"tab\\t\":\"x\\ny\"}", "{\"tab\\t\":\"x\\ny\"}"}},
    {"{\"type\":\"array\",\"items\":{\"enum\":[\"x\",\"y\"]},\"minItems\":2,\"maxItems\":4}",
     {"[\"x\",\"y\"]", "[\"y\",\"y\",\"y\",\"x\"]"}},
    {"{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
     {"\"\xc3\xa9\xf0\x9f\x98\x80\"", "\"\\u00e9\\ud83d\\ude00a\""}},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"b\"],"
     "\"additionalProperties\":true}",
     {"{\"a\":1,\"b\":\"x\",\"zz\":0}", "{\"b\":null}"}},
    {"{\"type\":\"integer\"}", {"42", "-0 "}},
    {"{\"type\":\"array\",\"items\":[{\"const\":1}],\"additionalItems\":{\"type\":\"string\"}}",
     {"[1,\"a\",\"b\"]", "[]"}},
    {"{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"},\"name\":{\"type\":"
     "\"string\"},\"names\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}",
     {"{}", "{\"name\":\"x\"}", "{\"n\":1,\"names\":[]}"}},
    {"{\"allOf\":[{\"oneOf\":[{\"type\":\"boolean\"},{\"type\":\"array\",\"maxItems\":0}]}]}",
     {"true", "[]"}},
    {"{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"}},\"additionalProperties\":"
     "{\"type\":\"object\",\"properties\":{\"v\":{\"anyOf\":[{\"type\":\"null\"},{\"$ref\":\"#\"}]}"
     "},"
     "\"required\":[\"v\"]}}",
     {"{\"s\":\"\",\"k\":{\"v\":null},\"\":{\"v\":{\"q\":{\"v\":null}}}}"}},
};

/* The order in which greedy completion tries bytes: closers first. */
static const char greedy_order[] =
    "\"}],:0tfn[{-123456789.eE+abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_ \\/u";

/* Completes from st by always taking the first byte of greedy_order (then
 * any byte) that is accepted; false when stuck or too long. */
static bool complete(const smp_schema *s, smp_sstate *st, char *out, size_t *n, size_t cap) {
    while (*n < cap) {
        if (smp_sstate_can_end(s, st)) return true;
        bool moved = false;
        for (int b = 0; b < 256 + (int)sizeof greedy_order && !moved; b++) {
            const uint8_t c = b < (int)sizeof greedy_order - 1
                                  ? (uint8_t)greedy_order[b]
                                  : (uint8_t)(b - (int)sizeof greedy_order + 1);
            if (smp_sstate_feed(s, st, &c, 1)) {
                out[(*n)++] = (char)c;
                moved = true;
            }
        }
        if (!moved) return false;
    }
    return false;
}

static unsigned rnd(unsigned long long *r, unsigned n) { return (unsigned)(test_rand_u64(r) % n); }

/* A random output: random accepted bytes, then completed. */
static size_t random_output(const smp_schema *s, unsigned long long *r, char *out, size_t cap) {
    smp_sstate st;
    smp_sstate_init(&st);
    size_t n = 0;
    const unsigned steps = rnd(r, 80);
    for (unsigned k = 0; k < steps && n < cap / 2; k++) {
        uint8_t ok[256];
        int m = 0;
        for (int c = 0; c < 256; c++) {
            smp_sstate t;
            if (smp_sstate_step(s, &t, &st, (uint8_t)c)) ok[m++] = (uint8_t)c;
        }
        if (m == 0) break;
        /* Mostly the structural or ASCII choices, so outputs get somewhere. */
        uint8_t c = ok[rnd(r, (unsigned)m)];
        for (int tries = 0; tries < 3 && (c >= 0x80 || c < 0x20); tries++)
            c = ok[rnd(r, (unsigned)m)];
        smp_sstate_feed(s, &st, &c, 1);
        out[n++] = (char)c;
    }
    if (!complete(s, &st, out, &n, cap)) return SIZE_MAX;
    return n;
}

static size_t mutate(const char *in, size_t n, char *out, size_t cap, unsigned long long *r) {
    static const char alphabet[] = "{}[]\",:0123456789-.eE+truefalsnl \\/u\xc3\xa9"
                                   "ab\t\n";
    memcpy(out, in, n);
    const unsigned edits = 1 + rnd(r, 3);
    for (unsigned e = 0; e < edits; e++) {
        const size_t at = n ? rnd(r, (unsigned)n + 1) : 0;
        switch (rnd(r, 4)) {
        case 0: /* delete */
            if (at < n) memmove(out + at, out + at + 1, n - at - 1), n--;
            break;
        case 1: /* insert */
            if (n + 1 < cap) {
                memmove(out + at + 1, out + at, n - at);
                out[at] = alphabet[rnd(r, sizeof alphabet - 1)];
                n++;
            }
            break;
        case 2: /* replace */
            if (at < n) out[at] = alphabet[rnd(r, sizeof alphabet - 1)];
            break;
        default: { /* duplicate a span */
            const size_t len = 1 + rnd(r, 8);
            if (at + len <= n && n + len < cap) {
                memmove(out + at + len, out + at, n - at);
                n += len;
            }
        }
        }
    }
    return n;
}

/* A text, checked both ways: complete and valid iff the validator says so;
 * and its longest accepted prefix completes into a valid text. */
static int check_text(const char *schema_text, const smp_schema *s, const char *t, size_t n) {
    int fails = 0;
    const bool rec = rec_valid(s, t, n);
    const bool val = jv_check(schema_text, t, n);
    if (rec != val) {
        fails++;
        CHECKF(rec == val, "schema %s\ntext '%.*s': recognizer %d, validator %d", schema_text,
               (int)n, t, rec, val);
    }
    smp_sstate st;
    const size_t k = accepted(s, t, n, &st);
    char buf[4096];
    size_t m = k < 2048 ? k : 0;
    if (m == 0) smp_sstate_init(&st);
    memcpy(buf, t, m);
    const bool done = complete(s, &st, buf, &m, sizeof buf);
    if (!done || !jv_check(schema_text, buf, m)) {
        fails++;
        CHECKF(done && jv_check(schema_text, buf, m),
               "schema %s\nprefix '%.*s' completed %d into '%.*s', which the validator refuses",
               schema_text, (int)k, t, done, (int)m, buf);
    }
    return fails;
}

static void against_validator(void) {
    unsigned long long r = 0x5eed5c4e3aULL;
    int n_texts = 0, n_valid = 0;
    for (size_t i = 0; i < sizeof suite / sizeof *suite; i++) {
        const char *text = suite[i].schema ? suite[i].schema : person;
        smp_schema *s = compile_ok(text);
        if (!s) continue;
        int fails = 0;
        for (int e = 0; e < 4 && suite[i].examples[e]; e++) {
            const char *ex = suite[i].examples[e];
            CHECKF(jv_check(text, ex, strlen(ex)), "example %s is not valid", ex);
            CHECKF(rec_valid(s, ex, strlen(ex)), "example %s refused", ex);
        }
        for (int k = 0; k < 300 && fails < 5; k++) {
            char out[4096], mut[4200];
            size_t n;
            if (k < 100) {
                n = random_output(s, &r, out, sizeof out);
                CHECKF(n != SIZE_MAX, "schema %s: no completion found", text);
                if (n == SIZE_MAX) continue;
            } else {
                int e = 0;
                while (e < 4 && suite[i].examples[e]) e++;
                const char *ex = suite[i].examples[rnd(&r, (unsigned)e)];
                n = strlen(ex);
                memcpy(out, ex, n);
            }
            fails += check_text(text, s, out, n);
            n_valid += jv_check(text, out, n);
            for (int m = 0; m < 6; m++) {
                const size_t mn = mutate(out, n, mut, sizeof mut, &r);
                fails += check_text(text, s, mut, mn);
                n_valid += jv_check(text, mut, mn);
                n_texts++;
            }
            n_texts++;
        }
        smp_schema_free(s);
    }
    printf("validator: %d texts (%d valid), %zu schemas\n", n_texts, n_valid,
           sizeof suite / sizeof *suite);
}

/* ---- masks ------------------------------------------------------------------------ */

typedef struct toy {
    const char **pieces;
    int n;
    int eog;
} toy;

static size_t toy_piece(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog) {
    const toy *t = ctx;
    *eog = id == t->eog;
    const size_t n = strlen(t->pieces[id]);
    memcpy(buf, t->pieces[id], n < cap ? n : cap);
    return n;
}

/* What the mask must say for a token of bytes p[0..n) (eog: an
 * end-of-generation token), from the recognizer alone. */
static bool brute(const smp_schema *s, const smp_sstate *st, const char *p, size_t n, bool eog) {
    if (smp_sstate_done(st)) return eog;
    if (eog) return smp_sstate_can_end(s, st);
    if (n == 0 || n > SMP_VOCAB_PIECE_MAX) return false;
    smp_sstate t;
    smp_sstate_copy(&t, st);
    return smp_sstate_feed(s, &t, p, n);
}

/* States whose mask is compared with brute force: all of them, or one in
 * six under the sanitizers (the masks are still computed in every state). */
enum { MASK_CHECK_EVERY = TEST_SANITIZED ? 6 : 1 };

/* The constraint's mask in its state against brute force from st (the
 * same output fed to the recognizer alone); errors counts the tokens that
 * differ (the first 5 are named). */
static void check_mask(const char *name, size_t i, const smp_vocab *v, const smp_schema *s,
                       const smp_sstate *st, const uint32_t *mask, int32_t n_allowed, int *errors) {
    if (i % MASK_CHECK_EVERY) return;
    int32_t n_brute = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        const bool want = brute(s, st, (const char *)v->bytes + v->off[id],
                                v->off[id + 1] - v->off[id], smp_bit(v->eog, id));
        n_brute += want;
        if (want != smp_bit(mask, id) && (*errors)++ < 5)
            fprintf(stderr, "%s: state %zu: token %d ('%.*s') mask %d, want %d\n", name, i, (int)id,
                    (int)(v->off[id + 1] - v->off[id]), (const char *)v->bytes + v->off[id], !want,
                    want);
    }
    CHECKF(n_allowed == n_brute, "%s: state %zu: %d allowed, brute force %d", name, i,
           (int)n_allowed, (int)n_brute);
}

/* The mask in each state along `doc` fed token by token (ids), against
 * brute force; returns the masks' mean and worst cost. */
static void masks_along(const char *name, const smp_vocab *v, const smp_schema *s,
                        const char *schema_text, const int32_t *ids, size_t n_ids, double *mean_ms,
                        double *worst_ms, double *first_ms) {
    smp_schema *own = compile_ok(schema_text);
    smp_schemac *c = NULL;
    REQUIRE(own && smp_schemac_new(v, own, &c) == HEARTH_OK);
    smp_sstate st;
    smp_sstate_init(&st);
    double sum = 0, worst = 0;
    int errors = 0;
    for (size_t i = 0; i <= n_ids; i++) {
        int32_t n_allowed = 0;
        double t0 = now_ms();
        const uint32_t *mask = smp_schemac_mask(c, &n_allowed);
        const double ms = now_ms() - t0;
        if (i == 0) *first_ms = ms;
        sum += ms;
        if (ms > worst) worst = ms;
        check_mask(name, i, v, s, &st, mask, n_allowed, &errors);
        if (i == n_ids) break;
        CHECKF(smp_schemac_advance(c, ids[i]), "%s: token %d of the document refused", name,
               (int)ids[i]);
        const int32_t id = ids[i];
        CHECK(smp_sstate_feed(s, &st, v->bytes + v->off[id], v->off[id + 1] - v->off[id]));
    }
    CHECK(errors == 0);
    *mean_ms = sum / (double)(n_ids + 1);
    *worst_ms = worst;
    smp_schemac_free(c);
}

static void toy_masks(void) {
    /* Every byte, pieces a BPE vocabulary would have, a control token and
     * the end of generation. */
    static const char *extra[] = {"{\"",   "\":",   "\",", "\"}",      "name", "age", "\":\"",
                                  " \"",   "12",    "3.",  "e+",       "tags", "[\"", "\"]",
                                  "\\u00", "\\n",   "ab",  "\xc3\xa9", "}}",   "],",  "null",
                                  "true",  "false", "  ",  "\"name\":"};
    enum { N_BYTE = 255, N_EXTRA = sizeof extra / sizeof *extra };
    static char bytes[N_BYTE][2];
    const char *pieces[N_BYTE + N_EXTRA + 2];
    for (int i = 0; i < N_BYTE; i++) bytes[i][0] = (char)(i + 1), pieces[i] = bytes[i];
    for (int i = 0; i < N_EXTRA; i++) pieces[N_BYTE + i] = extra[i];
    const int n_vocab = N_BYTE + N_EXTRA + 2;
    pieces[n_vocab - 2] = "";
    pieces[n_vocab - 1] = "";
    toy t = {pieces, n_vocab, n_vocab - 1};
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, toy_piece, &t, &v) == HEARTH_OK);
    /* Documents fed byte token by byte token. */
    for (size_t i = 0; i < sizeof suite / sizeof *suite; i++) {
        const char *text = suite[i].schema ? suite[i].schema : person;
        smp_schema *s = compile_ok(text);
        if (!s) continue;
        const char *doc = suite[i].examples[0];
        int32_t ids[512];
        size_t n = strlen(doc);
        for (size_t k = 0; k < n; k++) ids[k] = (uint8_t)doc[k] - 1;
        double mean, worst, first;
        masks_along("toy", v, s, text, ids, n, &mean, &worst, &first);
        smp_schema_free(s);
    }
    smp_vocab_free(v);
}

/* A token longer than SMP_VOCAB_PIECE_MAX (a crafted file's) is never
 * allowed and does not size the walk's buffer (64 Ki states, 265 MB per
 * sampler, for a 64 KiB token). */
static void long_token(void) {
    char *big = malloc(65537);
    REQUIRE(big);
    memset(big, 'a', 65536);
    big[65536] = '\0';
    const char *pieces[] = {"\"", "a", big, ""};
    toy t = {pieces, 4, 3};
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(4, toy_piece, &t, &v) == HEARTH_OK);
    CHECKF(v->max_len <= SMP_VOCAB_PIECE_MAX, "max_len %u", (unsigned)v->max_len);
    smp_schema *s = compile_ok("{\"type\":\"string\"}");
    smp_schemac *c = NULL;
    REQUIRE(s && smp_schemac_new(v, s, &c) == HEARTH_OK);
    REQUIRE(smp_schemac_advance(c, 0));
    int32_t n_allowed = 0;
    const uint32_t *mask = smp_schemac_mask(c, &n_allowed);
    CHECK(smp_bit(mask, 0) && smp_bit(mask, 1) && !smp_bit(mask, 2) && n_allowed == 2);
    CHECK(!smp_schemac_advance(c, 2));
    smp_schemac_free(c);
    smp_vocab_free(v);
    free(big);
}

/* maxLength inside free strings (json_schema_mask.c's text block: a stored
 * mask per small count of characters left, the whole set minus the longer
 * tokens for larger counts, escapes in canonical keys fed one by one)
 * against brute force at the counts left from the bound down to 0: the
 * document goes in by its tokens while they fit, then by single-byte
 * tokens up to the first byte refused. Multi-byte characters, escapes and
 * a surrogate pair count one character each. */
static const char *const length_doc =
    "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\xbc\xa2\xe5\xad\x97\xe3\x83\x86\xe3\x82\xb9 "
    "\xf0\x9f\x98\x80 \\n\\u00e9\\ud83d\\ude00 tab\\t and a line that goes on for a while\"";

static void lengths_along(const char *name, const tok_vocab *tv, const smp_vocab *v,
                          const char *schema_text, const char *doc, const int32_t *byte_id,
                          size_t *n_states) {
    smp_schema *s = compile_ok(schema_text);
    smp_schemac *c = NULL;
    REQUIRE(s && smp_schemac_new(v, compile_ok(schema_text), &c) == HEARTH_OK);
    smp_sstate st;
    smp_sstate_init(&st);
    int32_t ids[256];
    size_t n_ids = 0;
    REQUIRE(tok_encode(tv, doc, strlen(doc), false, false, ids, 256, &n_ids) == HEARTH_OK);
    int errors = 0;
    bool cut = false;
    for (size_t i = 0; i <= n_ids && !cut; i++) {
        int32_t n_allowed = 0;
        const uint32_t *mask = smp_schemac_mask(c, &n_allowed);
        check_mask(name, (*n_states)++, v, s, &st, mask, n_allowed, &errors);
        if (i == n_ids) break;
        const uint8_t *p = v->bytes + v->off[ids[i]];
        const uint32_t len = v->off[ids[i] + 1] - v->off[ids[i]];
        CHECK(smp_bit(mask, ids[i]) == smp_schemac_advance(c, ids[i]));
        if (smp_bit(mask, ids[i])) {
            CHECK(smp_sstate_feed(s, &st, p, len));
            continue;
        }
        for (uint32_t k = 0; k < len && !cut; k++) { /* byte by byte up to the bound */
            REQUIRE(byte_id[p[k]] >= 0);
            cut = !smp_schemac_advance(c, byte_id[p[k]]);
            if (cut) break;
            CHECK(smp_sstate_feed(s, &st, p + k, 1));
            mask = smp_schemac_mask(c, &n_allowed);
            check_mask(name, (*n_states)++, v, s, &st, mask, n_allowed, &errors);
        }
    }
    CHECKF(errors == 0, "%s: %s: %d tokens differ", name, schema_text, errors);
    smp_schemac_free(c);
    smp_schema_free(s);
}

static void length_masks(const char *name, const tok_vocab *tv, const smp_vocab *v) {
    int32_t byte_id[256];
    for (int b = 0; b < 256; b++) byte_id[b] = -1;
    for (int32_t id = v->n_vocab - 1; id >= 0; id--)
        if (v->off[id + 1] - v->off[id] == 1 && !smp_bit(v->eog, id))
            byte_id[v->bytes[v->off[id]]] = id;
    static const int bound[] = {0, 1, 2, 5, 12, 13, 14, 40, 255};
    char schema[512], doc[512];
    size_t n_states = 0;
    const double t0 = now_ms();
    for (size_t i = 0; i < sizeof bound / sizeof *bound; i++) {
        const int L = bound[i];
        snprintf(doc, sizeof doc, "\"%s", length_doc);
        snprintf(schema, sizeof schema, "{\"type\":\"string\",\"maxLength\":%d}", L);
        lengths_along(name, tv, v, schema, doc, byte_id, &n_states);
        if (L != 2 && L != 13) continue;
        /* a minimum beside, two readings with different bounds, the bound
         * on additional properties' values after a key in canonical form */
        snprintf(schema, sizeof schema, "{\"type\":\"string\",\"minLength\":%d,\"maxLength\":%d}",
                 L / 2 + 1, L + 1);
        lengths_along(name, tv, v, schema, doc, byte_id, &n_states);
        snprintf(schema, sizeof schema,
                 "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":%d},{\"type\":\"string\","
                 "\"minLength\":2,\"maxLength\":%d}]}",
                 L, L + 7);
        lengths_along(name, tv, v, schema, doc, byte_id, &n_states);
        snprintf(schema, sizeof schema,
                 "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
                 "\"additionalProperties\":{\"type\":\"string\",\"maxLength\":%d}}",
                 L);
        snprintf(doc, sizeof doc, "{\"a\": 1, \"k\xc3\xa9y\\n\\\"q\\\"\": \"%s", length_doc);
        lengths_along(name, tv, v, schema, doc, byte_id, &n_states);
    }
    printf("%s: maxLength masks in %zu states, one in %d checked against brute force (%.0f ms)\n",
           name, n_states, MASK_CHECK_EVERY, now_ms() - t0);
}

static const char *const bench_schema =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":40},"
    "\"age\":{\"type\":\"integer\"},\"city\":{\"enum\":[\"Paris\",\"Berlin\",\"Tokyo\"]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":3},"
    "\"pet\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"object\",\"properties\":{\"kind\":"
    "{\"const\":\"cat\"},\"lives\":{\"type\":\"integer\"}},\"required\":[\"kind\"]}]}},"
    "\"required\":[\"name\",\"age\",\"city\"],\"additionalProperties\":false}";
static const char *const bench_doc =
    "{\"name\": \"H\xc3\xa9l\xc3\xa8ne \\\"the cat\\\" Dupont\", \"age\": 42, \"city\": "
    "\"Tokyo\", \"tags\": [\"a b\", \"\\u00e9t\xc3\xa9\"], \"pet\": {\"kind\": \"cat\", "
    "\"lives\": 9}}";

static void real_vocab(const char *name, bool lengths) {
    hearth_err err;
    tok_vocab *tv = shared_vocab(name, &err);
    REQUIRE(err == HEARTH_OK);
    if (!tv) return;
    const int n_vocab = tok_n_vocab(tv);
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, tok_piece_shown, tv, &v) == HEARTH_OK);
    /* The bench's schema, then the states no other shortcut covers: an
     * additional key beside declared properties, a string two alternatives
     * read. */
    static const struct {
        const char *schema, *doc;
    } cases[] = {
        {NULL, NULL},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
         "\"additionalProperties\":true}",
         "{\"a\": 1, \"some key\\n\\\"x\\\"\": [2, \"b\"], \"cl\xc3\xa9\": {\"k\\u00e9\": 3}}"},
        {"{\"anyOf\":[{\"type\":\"string\",\"maxLength\":30},{\"type\":\"string\","
         "\"minLength\":2}]}",
         "\"Once upon a time, \\\"it\\\" said: \\u00e9t\xc3\xa9 was long\""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *schema = cases[k].schema ? cases[k].schema : bench_schema;
        const char *doc = cases[k].doc ? cases[k].doc : bench_doc;
        smp_schema *s = compile_ok(schema);
        REQUIRE(s);
        size_t n_ids = 0;
        int32_t ids[256];
        REQUIRE(tok_encode(tv, doc, strlen(doc), false, false, ids, 256, &n_ids) == HEARTH_OK);
        double mean, worst, first;
        masks_along(name, v, s, schema, ids, n_ids, &mean, &worst, &first);
        printf("%s: %d tokens, schema %zu: %zu masks along the document: mean %.2f ms, worst "
               "%.2f ms, first %.2f ms\n",
               name, n_vocab, k, n_ids + 1, mean, worst, first);
        smp_schema_free(s);
    }
    if (lengths) length_masks(name, tv, v);
    smp_vocab_free(v);
    tok_vocab_free(tv);
}

/* ---- generation ------------------------------------------------------------------ */

static hearth_model *load_synth(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hearth-test-schema-%d.gguf", (int)getpid());
    synth_params p = synth_default_params();
    p.type = KERN_Q8_0;
    p.n_ctx = 2048;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    unlink(path);
    return m;
}

/* Greedy and sampled generations on a model with random weights, through
 * the sampling layer and the public decode: each output that ends is valid
 * (cJSON parses it; the validator accepts it). */
static void generations(hearth_model *m) {
    const tok_vocab *tv = engine_vocab(m);
    REQUIRE(tv);
    const int n_vocab = hearth_model_n_vocab(m);
    smp_vocab *v = NULL;
    REQUIRE(smp_vocab_new(n_vocab, tok_piece_shown, tv, &v) == HEARTH_OK);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    REQUIRE(logits);
    int n_done = 0, n_runs = 0;
    for (size_t i = 0; i < sizeof suite / sizeof *suite; i++) {
        const char *text = suite[i].schema ? suite[i].schema : person;
        for (int run = 0; run < 2; run++) {
            smp_params p = smp_default_params();
            p.temperature = run == 0 ? 0.0f : 1.0f;
            p.seed = 7 + i;
            p.constraint = SMP_CONSTRAINT_JSON_SCHEMA;
            p.vocab = v;
            p.json_schema = text;
            smp_sampler *smp = NULL;
            REQUIRE(smp_new(n_vocab, &p, &smp) == HEARTH_OK);
            hearth_session *s = NULL;
            REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
            int32_t ids[64];
            size_t n = 0;
            const char *prompt = "Answer in JSON:";
            REQUIRE(hearth_tokenize(m, prompt, strlen(prompt), true, false, ids, 64, &n) == 0);
            REQUIRE(hearth_decode(s, ids, (int)n, logits, false) == HEARTH_OK);
            char out[8192];
            size_t len = 0;
            bool ended = false;
            for (int k = 0; k < 400; k++) {
                const int32_t id = smp_sample(smp, logits);
                REQUIRE(id >= 0);
                if (smp_bit(v->eog, id)) {
                    ended = true;
                    break;
                }
                REQUIRE(smp_advance(smp, id) == HEARTH_OK);
                const uint32_t pl = v->off[id + 1] - v->off[id];
                REQUIRE(len + pl < sizeof out);
                memcpy(out + len, v->bytes + v->off[id], pl);
                len += pl;
                if (smp_constraint_done(smp)) {
                    ended = true;
                    break;
                }
                REQUIRE(hearth_decode(s, &id, 1, logits, false) == HEARTH_OK);
            }
            n_runs++;
            if (ended) {
                n_done++;
                CHECKF(jv_check(text, out, len), "schema %s: T %d output '%.*s' is not valid", text,
                       run, (int)len, out);
            } else {
                smp_sstate st;
                smp_schema *sch = compile_ok(text);
                CHECKF(sch && accepted(sch, out, len, &st) == len, "not a valid prefix: %.*s",
                       (int)len, out);
                smp_schema_free(sch);
            }
            hearth_session_free(s);
            smp_free(smp);
        }
    }
    printf("generation: %d of %d outputs complete and valid\n", n_done, n_runs);
    CHECKF(n_done * 2 >= n_runs, "only %d of %d generations completed", n_done, n_runs);
    free(logits);
    smp_vocab_free(v);
}

typedef struct gen_text {
    char p[16384];
    size_t n;
} gen_text;

static bool collect(const hearth_token_event *ev, void *user) {
    gen_text *t = user;
    REQUIRE(t->n + ev->len < sizeof t->p);
    memcpy(t->p + t->n, ev->text, ev->len);
    t->n += ev->len;
    return true;
}

/* Through the public API: hearth_sampler_new compiles the schema (and
 * refuses a bad one naming it) and hearth_generate stops at the value's
 * end. Needs the engine to pass HEARTH_CONSTRAINT_JSON_SCHEMA through. */
static void public_api(hearth_model *m) {
    hearth_sampling smp = hearth_sampling_default_params();
    smp.temperature = 0.0f;
    smp.constraint = HEARTH_CONSTRAINT_JSON_SCHEMA;
    smp.json_schema = "{\"properties\":{\"age\":{\"minimum\":0}}}";
    hearth_sampler *a = NULL;
    const hearth_err err = hearth_sampler_new(m, &smp, &a);
    CHECK(err == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "/properties/age: keyword 'minimum' is not supported"), "%s",
           hearth_last_error());
    char schema[4096];
    smp.json_schema = schema;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    int32_t ids[16];
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, "JSON:", 5, true, false, ids, 16, &n) == HEARTH_OK);
    int n_stop = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        snprintf(schema, sizeof schema, "%s", person);
        smp.temperature = seed == 1 ? 0.0f : 1.0f;
        smp.seed = seed;
        REQUIRE(hearth_sampler_new(m, &smp, &a) == HEARTH_OK);
        memset(schema, 0, sizeof schema); /* compiled: the text is no longer needed */
        hearth_gen_params gp = {.max_tokens = 300};
        hearth_gen_result r;
        gen_text t = {0};
        REQUIRE(hearth_generate(s, a, ids, (int)n, &gp, collect, &t, &r) == HEARTH_OK);
        smp_schema *sch = compile_ok(person);
        smp_sstate st;
        if (r.finish == HEARTH_FINISH_STOP) {
            n_stop++;
            CHECKF(jv_check(person, t.p, t.n), "seed %d: '%.*s' is not valid", (int)seed, (int)t.n,
                   t.p);
        } else {
            CHECK(r.finish == HEARTH_FINISH_LENGTH);
            CHECKF(sch && accepted(sch, t.p, t.n, &st) == t.n, "not a valid prefix: %.*s", (int)t.n,
                   t.p);
        }
        smp_schema_free(sch);
        hearth_session_truncate(s, 0);
        hearth_sampler_free(a);
    }
    printf("public API: %d of 6 generations ended with a valid value\n", n_stop);
    CHECK(n_stop >= 2);
    hearth_session_free(s);
}

int main(void) {
    errors();
    shared_ref_limits();
    prefix_limit();
    long_ref_name();
    key_trie_sets();
    table();
    against_validator();
    toy_masks();
    long_token();
    hearth_model *m = load_synth();
    generations(m);
    public_api(m);
    hearth_model_free(m);
    real_vocab("qwen2", true);
    real_vocab("llama-spm", true);
    real_vocab("gemma3", false); /* 262,145 tokens: brute force over them is slow */
    return test_done("json_schema");
}
