/*
 * json_schema_validate.h - an independent JSON Schema validator for the
 * tests of JSON Schema constrained output (test_json_schema.c): it reads the
 * schema as cJSON and the instance with its own small parser (keeping the
 * raw text of strings and numbers), and knows nothing of the compiled
 * nodes or the recognizer. It checks validity plus the generation rules of
 * src/sampling/json_schema.h ("strict"): declared properties in
 * declaration order and before additional ones, canonical keys and
 * enum/const texts, integers without fraction or exponent, at most 32
 * white-space bytes in a row outside strings.
 *
 * JSON syntax is checked by cJSON and by the JSON recognizer of JSON mode
 * (src/sampling/json_prefix.c, tested against cJSON on its own), which also
 * refuses what cJSON lets through: raw control characters in strings,
 * invalid UTF-8, lone surrogates.
 */
#ifndef HEARTH_JSON_SCHEMA_VALIDATE_H
#define HEARTH_JSON_SCHEMA_VALIDATE_H

#include "sampling/json_prefix.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jv {
    char t;          /* o a s n b z (null) */
    bool b;          /* b: its value */
    const char *raw; /* s: the content between the quotes; n: the lexeme */
    size_t n;
    int nk;
    struct jv *kids;
    const char **kraw; /* o: raw keys */
    size_t *kn;
} jv;

static const char *jv_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* The raw content of the string opening at p[-1]; returns the byte after
 * the closing quote. */
static const char *jv_str(const char *p, const char **raw, size_t *n) {
    const char *q = p;
    while (*q != '"') q += *q == '\\' ? 2 : 1;
    *raw = p;
    *n = (size_t)(q - p);
    return q + 1;
}

static const char *jv_parse(const char *p, jv *v) {
    memset(v, 0, sizeof *v);
    p = jv_ws(p);
    if (*p == '{' || *p == '[') {
        const bool obj = *p == '{';
        v->t = obj ? 'o' : 'a';
        p = jv_ws(p + 1);
        int cap = 0;
        while (*p != (obj ? '}' : ']')) {
            if (v->nk == cap) {
                cap = cap ? cap * 2 : 4;
                v->kids = realloc(v->kids, (size_t)cap * sizeof *v->kids);
                v->kraw = realloc(v->kraw, (size_t)cap * sizeof *v->kraw);
                v->kn = realloc(v->kn, (size_t)cap * sizeof *v->kn);
            }
            if (obj) {
                p = jv_str(jv_ws(p) + 1, &v->kraw[v->nk], &v->kn[v->nk]);
                p = jv_ws(p) + 1; /* ':' */
            }
            p = jv_ws(jv_parse(p, &v->kids[v->nk++]));
            if (*p == ',') p = jv_ws(p + 1);
        }
        return p + 1;
    }
    if (*p == '"') {
        v->t = 's';
        return jv_str(p + 1, &v->raw, &v->n);
    }
    if (*p == 't' || *p == 'f') {
        v->t = 'b';
        v->b = *p == 't';
        return p + (*p == 't' ? 4 : 5);
    }
    if (*p == 'n') {
        v->t = 'z';
        return p + 4;
    }
    v->t = 'n';
    v->raw = p;
    while (*p && strchr("+-0123456789.eE", *p)) p++;
    v->n = (size_t)(p - v->raw);
    return p;
}

static void jv_free(jv *v) {
    for (int i = 0; i < v->nk; i++) jv_free(&v->kids[i]);
    free(v->kids);
    free(v->kraw);
    free(v->kn);
}

/* Escapes decoded to UTF-8 (surrogate pairs joined); returns the length. */
static size_t jv_decode(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        const char e = s[++i];
        if (e != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            out[o++] = to[strchr(from, e) - from];
            continue;
        }
        uint32_t cp =
            (uint32_t)strtoul((char[5]){s[i + 1], s[i + 2], s[i + 3], s[i + 4], 0}, NULL, 16);
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
            const uint32_t lo =
                (uint32_t)strtoul((char[5]){s[i + 3], s[i + 4], s[i + 5], s[i + 6], 0}, NULL, 16);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xc0 | cp >> 6), out[o++] = (char)(0x80 | (cp & 63));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xe0 | cp >> 12), out[o++] = (char)(0x80 | (cp >> 6 & 63));
            out[o++] = (char)(0x80 | (cp & 63));
        } else {
            out[o++] = (char)(0xf0 | cp >> 18), out[o++] = (char)(0x80 | (cp >> 12 & 63));
            out[o++] = (char)(0x80 | (cp >> 6 & 63)), out[o++] = (char)(0x80 | (cp & 63));
        }
    }
    return o;
}

/* The rule's canonical texts (json_schema.h), written out again here. */
static size_t jv_canon(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                                      : NULL;
        if (esc) {
            memcpy(out + o, esc, 2);
            o += 2;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static bool jv_raw_is(const char *raw, size_t n, const char *str) {
    char *buf = malloc(strlen(str) * 6 + 1);
    const size_t m = jv_canon(str, strlen(str), buf);
    const bool eq = m == n && !memcmp(buf, raw, n);
    free(buf);
    return eq;
}

static bool jv_canonical(const char *raw, size_t n) {
    char *dec = malloc(n + 1), *re = malloc(n * 6 + 1);
    const size_t d = jv_decode(raw, n, dec);
    const size_t r = jv_canon(dec, d, re);
    const bool ok = r == n && !memcmp(re, raw, n);
    free(dec);
    free(re);
    return ok;
}

static void jv_number_text(double v, char *buf) {
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        sprintf(buf, "%lld", (long long)v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        sprintf(buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static bool jv_const_eq(const jv *v, const cJSON *c) {
    if (cJSON_IsString(c)) return v->t == 's' && jv_raw_is(v->raw, v->n, c->valuestring);
    if (cJSON_IsNumber(c)) {
        char buf[64];
        jv_number_text(c->valuedouble, buf);
        return v->t == 'n' && strlen(buf) == v->n && !memcmp(buf, v->raw, v->n);
    }
    if (cJSON_IsBool(c)) return v->t == 'b' && v->b == (bool)cJSON_IsTrue(c);
    if (cJSON_IsNull(c)) return v->t == 'z';
    if (v->t != (cJSON_IsArray(c) ? 'a' : 'o') || v->nk != cJSON_GetArraySize(c)) return false;
    int i = 0;
    for (const cJSON *e = c->child; e; e = e->next, i++) {
        if (v->t == 'o' && !jv_raw_is(v->kraw[i], v->kn[i], e->string)) return false;
        if (!jv_const_eq(&v->kids[i], e)) return false;
    }
    return true;
}

static const cJSON *jv_ref(const cJSON *root, const char *ref) {
    if (!strcmp(ref, "#")) return root;
    const char *defs = !strncmp(ref, "#/$defs/", 8) ? "$defs" : "definitions";
    const char *name = strchr(ref + 2, '/') + 1;
    char key[256];
    size_t n = 0;
    for (; *name; name++) {
        if (name[0] == '~') {
            key[n++] = name[1] == '0' ? '~' : '/';
            name++;
        } else {
            key[n++] = *name;
        }
    }
    key[n] = 0;
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, defs), key);
}

static bool jv_type_ok(const jv *v, const char *t) {
    if (!strcmp(t, "object")) return v->t == 'o';
    if (!strcmp(t, "array")) return v->t == 'a';
    if (!strcmp(t, "string")) return v->t == 's';
    if (!strcmp(t, "boolean")) return v->t == 'b';
    if (!strcmp(t, "null")) return v->t == 'z';
    if (!strcmp(t, "number")) return v->t == 'n';
    if (!strcmp(t, "integer"))
        return v->t == 'n' && !memchr(v->raw, '.', v->n) && !memchr(v->raw, 'e', v->n) &&
               !memchr(v->raw, 'E', v->n);
    return false;
}

static bool jv_valid(const jv *v, const cJSON *s, const cJSON *root);

static double jv_num(const cJSON *s, const char *k, double dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, k);
    return x ? x->valuedouble : dflt;
}

static bool jv_object(const jv *v, const cJSON *s, const cJSON *root) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    static const cJSON *yes;
    if (!yes) yes = cJSON_CreateTrue(); /* kept for the process */
    const cJSON *extra = ap ? (cJSON_IsFalse(ap) ? NULL : ap) : props ? NULL : yes;
    /* The declared list: properties, then required names not among them. */
    const char *names[64];
    const cJSON *schemas[64];
    bool required[64];
    int n = 0;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next, n++) {
        names[n] = p->string, schemas[n] = p, required[n] = false;
    }
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next) {
        int j = 0;
        while (j < n && strcmp(names[j], r->valuestring)) j++;
        if (j == n) names[n] = r->valuestring, schemas[n] = extra, n++;
        required[j] = true;
    }
    int i = 0;
    bool in_extra = false;
    for (int k = 0; k < v->nk; k++) {
        if (n > 0 && !jv_canonical(v->kraw[k], v->kn[k])) return false;
        int j = 0;
        while (j < n && !jv_raw_is(v->kraw[k], v->kn[k], names[j])) j++;
        if (j < n) {
            if (in_extra || j < i) return false;
            for (int q = i; q < j; q++)
                if (required[q]) return false;
            i = j + 1;
            if (!jv_valid(&v->kids[k], schemas[j], root)) return false;
        } else {
            if (!extra) return false;
            for (int q = i; q < n; q++)
                if (required[q]) return false;
            in_extra = true;
            if (!jv_valid(&v->kids[k], extra, root)) return false;
        }
    }
    for (int q = i; q < n; q++)
        if (required[q]) return false;
    return true;
}

static bool jv_array(const jv *v, const cJSON *s, const cJSON *root) {
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefixItems");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    const cJSON *rest = items;
    if (items && cJSON_IsArray(items)) {
        prefix = items;
        rest = cJSON_GetObjectItemCaseSensitive(s, "additionalItems");
    }
    if (v->nk < jv_num(s, "minItems", 0) || v->nk > jv_num(s, "maxItems", 1e18)) return false;
    for (int i = 0; i < v->nk; i++) {
        const cJSON *e =
            prefix && i < cJSON_GetArraySize(prefix) ? cJSON_GetArrayItem(prefix, i) : rest;
        if (e && !jv_valid(&v->kids[i], e, root)) return false;
    }
    return true;
}

static bool jv_valid(const jv *v, const cJSON *s, const cJSON *root) {
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s);
    const cJSON *k;
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "$ref")))
        return jv_valid(v, jv_ref(root, k->valuestring), root);
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "anyOf")) ||
        (k = cJSON_GetObjectItemCaseSensitive(s, "oneOf"))) {
        for (const cJSON *a = k->child; a; a = a->next)
            if (jv_valid(v, a, root)) return true;
        return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "allOf"))) {
        for (const cJSON *a = k->child; a; a = a->next)
            if (!jv_valid(v, a, root)) return false;
        return true;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "type"))) {
        bool ok = false;
        if (cJSON_IsString(k)) ok = jv_type_ok(v, k->valuestring);
        for (const cJSON *t = cJSON_IsArray(k) ? k->child : NULL; t; t = t->next)
            ok = ok || jv_type_ok(v, t->valuestring);
        if (!ok) return false;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "const"))) return jv_const_eq(v, k);
    if ((k = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
        for (const cJSON *e = k->child; e; e = e->next)
            if (jv_const_eq(v, e)) return true;
        return false;
    }
    if (v->t == 'o') return jv_object(v, s, root);
    if (v->t == 'a') return jv_array(v, s, root);
    if (v->t == 's') {
        char *dec = malloc(v->n + 1);
        const size_t d = jv_decode(v->raw, v->n, dec);
        double chars = 0;
        for (size_t i = 0; i < d; i++) chars += ((unsigned char)dec[i] & 0xc0) != 0x80;
        free(dec);
        return chars >= jv_num(s, "minLength", 0) && chars <= jv_num(s, "maxLength", 1e18);
    }
    return true;
}

/* Valid JSON (cJSON), the white-space limit, and valid under the rules. */
static bool jv_check(const char *schema_text, const char *text, size_t n) {
    char *z = malloc(n + 1);
    memcpy(z, text, n);
    z[n] = 0;
    cJSON *doc = strlen(z) == n ? cJSON_ParseWithLengthOpts(z, n + 1, NULL, true) : NULL;
    bool ok = doc != NULL;
    cJSON_Delete(doc);
    smp_json lex;
    smp_json_init(&lex, false);
    ok = ok && smp_json_feed_bytes(&lex, z, n) && smp_json_can_end(&lex);
    /* White space outside strings: at most 32 bytes in a row. */
    int run = 0;
    bool in_str = false;
    for (size_t i = 0; ok && i < n; i++) {
        if (in_str) {
            if (z[i] == '\\')
                i++;
            else if (z[i] == '"')
                in_str = false;
            continue;
        }
        if (z[i] == '"') in_str = true;
        run = strchr(" \t\r\n", z[i]) && z[i] ? run + 1 : 0;
        if (run > 32) ok = false;
    }
    if (ok) {
        cJSON *schema = cJSON_Parse(schema_text);
        jv v;
        jv_parse(z, &v);
        ok = jv_valid(&v, schema, schema);
        jv_free(&v);
        cJSON_Delete(schema);
    }
    free(z);
    return ok;
}

#endif
