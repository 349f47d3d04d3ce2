/*
 * router_data.c - labeled prompts for the router: the dataset container,
 * loading JSONL and CSV files (RouteLLM's responses files included), removing
 * RouteLLM's contaminated prompts, and the hash split that keeps a prompt on
 * one side only. Every string an example holds is its own heap copy.
 */
#include "router_impl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ROUTELLM_WEAK[] = "mistralai/Mixtral-8x7B-Instruct-v0.1";
static const char ROUTELLM_STRONG[] = "gpt-4-1106-preview";

void rtr_dataset_init(rtr_dataset *d) { memset(d, 0, sizeof *d); }

void rtr_dataset_fini(rtr_dataset *d) {
    for (size_t i = 0; i < d->n; i++) {
        free(d->ex[i].prompt);
        free(d->ex[i].id);
    }
    for (size_t i = 0; i < d->n_groups; i++) free(d->groups[i]);
    free(d->ex);
    free(d->groups);
    memset(d, 0, sizeof *d);
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static hearth_err find_group(rtr_dataset *d, const char *name, uint32_t *out) {
    for (size_t i = 0; i < d->n_groups; i++)
        if (!strcmp(d->groups[i], name)) {
            *out = (uint32_t)i;
            return HEARTH_OK;
        }
    char **ng = realloc(d->groups, (d->n_groups + 1) * sizeof *ng);
    if (!ng) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    d->groups = ng;
    if (!(ng[d->n_groups] = dup_n(name, strlen(name))))
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    *out = (uint32_t)d->n_groups++;
    return HEARTH_OK;
}

static hearth_err add_example(rtr_dataset *d, const char *prompt, size_t len, bool labeled,
                              bool weak_ok, bool strong_ok, const char *id, const char *group) {
    uint32_t g = 0;
    hearth_err e = find_group(d, group ? group : "", &g);
    if (e) return e;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        rtr_example *ne = realloc(d->ex, cap * sizeof *ne);
        if (!ne) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
        d->ex = ne;
        d->cap = cap;
    }
    char num[32];
    if (!id) {
        snprintf(num, sizeof num, "%zu", d->n + 1);
        id = num;
    }
    rtr_example *x = &d->ex[d->n];
    x->prompt = dup_n(prompt, len);
    x->id = dup_n(id, strlen(id));
    if (!x->prompt || !x->id) {
        free(x->prompt);
        free(x->id);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
    }
    x->prompt_len = len;
    x->labeled = labeled;
    x->weak_ok = weak_ok;
    x->strong_ok = strong_ok;
    x->group = g;
    d->n++;
    return HEARTH_OK;
}

hearth_err rtr_dataset_add(rtr_dataset *d, const char *prompt, size_t len, bool weak_ok,
                           bool strong_ok, const char *id, const char *group) {
    return add_example(d, prompt, len, true, weak_ok, strong_ok, id, group);
}

/* -------------------------------------------------------------------- CSV */

static bool parse_bool(const char *s, bool *out) {
    static const char *const t[] = {"True", "true", "TRUE", "1"};
    static const char *const f[] = {"False", "false", "FALSE", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, t[i])) return *out = true;
        if (!strcmp(s, f[i])) return !(*out = false);
    }
    return false;
}

static long find_col(const rtr_csv *c, const char *name) {
    for (size_t i = 0; i < c->n_fields; i++)
        if (!strcmp(rtr_csv_field(c, i, NULL), name)) return (long)i;
    return -1;
}

/* The group of a CSV row: the file's base name without its extension. */
static void base_name(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

static hearth_err load_csv(rtr_dataset *d, const char *path, const char *data, size_t size,
                           const rtr_load_opts *o) {
    rtr_csv c;
    bool got;
    hearth_err e;
    char group[256];
    base_name(path, group, sizeof group);
    rtr_csv_init(&c, data, size);
    if ((e = rtr_csv_next(&c, &got)) || !got) {
        if (!e) e = hr_fail(HEARTH_ERR_FORMAT, "csv: no header row");
        goto done;
    }
    const char *pn = o->prompt_col ? o->prompt_col : "prompt";
    long pc = find_col(&c, pn), wc = -1, sc = -1;
    const char *wn = o->weak_col, *sn = o->strong_col;
    if (!wn) wn = find_col(&c, "weak_ok") >= 0 ? "weak_ok" : ROUTELLM_WEAK;
    if (!sn) sn = find_col(&c, "strong_ok") >= 0 ? "strong_ok" : ROUTELLM_STRONG;
    wc = find_col(&c, wn);
    sc = find_col(&c, sn);
    long idc = find_col(&c, "id");
    size_t n_cols = c.n_fields;
    if (pc < 0) {
        e = hr_fail(HEARTH_ERR_FORMAT, "csv: no column named '%s' in the header", pn);
        goto done;
    }
    if (o->require_labels && (wc < 0 || sc < 0)) {
        e = hr_fail(HEARTH_ERR_FORMAT, "csv: no column named '%s' in the header", wc < 0 ? wn : sn);
        goto done;
    }
    for (size_t row = 1;; row++) {
        size_t line = c.line;
        if ((e = rtr_csv_next(&c, &got)) || !got) break;
        if (c.n_fields == 1 && c.lens[0] == 0) continue; /* a blank line */
        if (c.n_fields != n_cols) {
            e = hr_fail(HEARTH_ERR_FORMAT, "csv: line %zu: %zu fields, the header has %zu", line,
                        c.n_fields, n_cols);
            break;
        }
        bool w = false, s = false, labeled = wc >= 0 && sc >= 0;
        if (labeled && (!parse_bool(rtr_csv_field(&c, (size_t)wc, NULL), &w) ||
                        !parse_bool(rtr_csv_field(&c, (size_t)sc, NULL), &s))) {
            e = hr_fail(HEARTH_ERR_FORMAT, "csv: line %zu: '%s' or '%s' is not True/False", line,
                        wn, sn);
            break;
        }
        char idbuf[64];
        const char *id = idbuf;
        char *quoted = NULL;
        if (idc >= 0) {
            cJSON *js = cJSON_CreateString(rtr_csv_field(&c, (size_t)idc, NULL));
            quoted = js ? cJSON_PrintUnformatted(js) : NULL;
            cJSON_Delete(js);
            if (!quoted) {
                e = hr_fail(HEARTH_ERR_NOMEM, "csv: out of memory");
                break;
            }
            id = quoted;
        } else
            snprintf(idbuf, sizeof idbuf, "%zu", row);
        size_t plen;
        const char *prompt = rtr_csv_field(&c, (size_t)pc, &plen);
        e = add_example(d, prompt, plen, labeled, w, s, id, group);
        free(quoted);
        if (e) break;
    }
done:
    rtr_csv_fini(&c);
    return e;
}

/* ------------------------------------------------------------------ JSONL */

static bool json_flag(const cJSON *v, bool *out) {
    if (cJSON_IsBool(v)) return *out = cJSON_IsTrue(v), true;
    if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1))
        return *out = v->valuedouble == 1, true;
    return false;
}

static hearth_err jsonl_line(rtr_dataset *d, const char *s, size_t n, size_t line,
                             const rtr_load_opts *o) {
    hearth_err e = HEARTH_OK;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    char *id = NULL;
    if (!j || !cJSON_IsObject(j)) {
        e = hr_fail(HEARTH_ERR_FORMAT, "jsonl: line %zu: not a JSON object", line);
        goto done;
    }
    for (; end && end < s + n; end++)
        if (*end != ' ' && *end != '\t' && *end != '\r') {
            e = hr_fail(HEARTH_ERR_FORMAT, "jsonl: line %zu: text after the JSON object", line);
            goto done;
        }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    if (!cJSON_IsString(p)) {
        e = hr_fail(HEARTH_ERR_FORMAT, "jsonl: line %zu: no string field \"prompt\"", line);
        goto done;
    }
    const cJSON *wv = cJSON_GetObjectItemCaseSensitive(j, "weak_ok");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(j, "strong_ok");
    bool w = false, st = false, labeled = wv && sv;
    if ((wv && !json_flag(wv, &w)) || (sv && !json_flag(sv, &st))) {
        e = hr_fail(HEARTH_ERR_FORMAT, "jsonl: line %zu: weak_ok/strong_ok must be true or false",
                    line);
        goto done;
    }
    if (o->require_labels && !labeled) {
        e = hr_fail(HEARTH_ERR_FORMAT, "jsonl: line %zu: missing \"%s\"", line,
                    wv ? "strong_ok" : "weak_ok");
        goto done;
    }
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(j, "id");
    char num[32];
    if (iv && (cJSON_IsString(iv) || cJSON_IsNumber(iv))) {
        if (!(id = cJSON_PrintUnformatted(iv))) {
            e = hr_fail(HEARTH_ERR_NOMEM, "jsonl: out of memory");
            goto done;
        }
    } else if (iv && !cJSON_IsNull(iv)) {
        e = hr_fail(HEARTH_ERR_FORMAT, "jsonl: line %zu: \"id\" must be a string or a number",
                    line);
        goto done;
    }
    snprintf(num, sizeof num, "%zu", line);
    const cJSON *gv = cJSON_GetObjectItemCaseSensitive(j, "group");
    e = add_example(d, p->valuestring, strlen(p->valuestring), labeled, w, st, id ? id : num,
                    cJSON_IsString(gv) ? gv->valuestring : NULL);
done:
    cJSON_free(id);
    cJSON_Delete(j);
    return e;
}

static hearth_err load_jsonl(rtr_dataset *d, const char *data, size_t size,
                             const rtr_load_opts *o) {
    hearth_err e = HEARTH_OK;
    size_t line = 0;
    for (size_t i = 0; i < size && !e;) {
        const char *nl = memchr(data + i, '\n', size - i);
        size_t n = nl ? (size_t)(nl - (data + i)) : size - i;
        line++;
        bool blank = true;
        for (size_t k = 0; k < n && blank; k++)
            blank = data[i + k] == ' ' || data[i + k] == '\t' || data[i + k] == '\r';
        if (!blank) e = jsonl_line(d, data + i, n, line, o);
        i += n + 1;
    }
    return e;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

hearth_err rtr_dataset_load(rtr_dataset *d, const char *path, const rtr_load_opts *opts) {
    static const rtr_load_opts dflt = {.require_labels = true};
    const rtr_load_opts *o = opts ? opts : &dflt;
    hr_map map;
    hearth_err e = hr_map_open(&map, path);
    if (e) return e;
    size_t before = d->n;
    if (ends_with(path, ".csv") || ends_with(path, ".CSV"))
        e = load_csv(d, path, (const char *)map.data, (size_t)map.size, o);
    else
        e = load_jsonl(d, (const char *)map.data, (size_t)map.size, o);
    hr_map_close(&map);
    if (e) {
        while (d->n > before) { /* all of the file or none of it */
            d->n--;
            free(d->ex[d->n].prompt);
            free(d->ex[d->n].id);
        }
        return hr_wrap(e, "%s: ", path);
    }
    return HEARTH_OK;
}

/* ------------------------------------------- decontamination and the split */

/* Collapses whitespace runs to one space and trims; returns a heap string. */
static char *squash(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = k > 0;
            continue;
        }
        if (space) o[k++] = ' ';
        space = false;
        o[k++] = (char)c;
    }
    o[k] = '\0';
    return o;
}

hearth_err rtr_dataset_decontaminate(rtr_dataset *d, const char *path, size_t *n_removed) {
    rtr_dataset bad;
    rtr_dataset_init(&bad);
    /* the list is JSONL with "eval_prompt": read it through a small shim */
    hr_map map;
    hearth_err e = hr_map_open(&map, path);
    if (e) return e;
    const char *s = (const char *)map.data;
    size_t size = (size_t)map.size, line = 0;
    for (size_t i = 0; i < size && !e;) {
        const char *nl = memchr(s + i, '\n', size - i);
        size_t n = nl ? (size_t)(nl - (s + i)) : size - i;
        line++;
        cJSON *j = n ? cJSON_ParseWithLength(s + i, n) : NULL;
        const char *ep = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "eval_prompt"));
        if (ep) {
            char *q = squash(ep, strlen(ep));
            e = q ? add_example(&bad, q, strlen(q), false, false, false, NULL, NULL)
                  : hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
            free(q);
        } else if (n)
            e = hr_fail(HEARTH_ERR_FORMAT, "%s: line %zu: no string \"eval_prompt\"", path, line);
        cJSON_Delete(j);
        i += n + 1;
    }
    hr_map_close(&map);
    size_t kept = 0, removed = 0;
    for (size_t i = 0; i < d->n && !e; i++) {
        char *q = squash(d->ex[i].prompt, d->ex[i].prompt_len);
        if (!q) {
            e = hr_fail(HEARTH_ERR_NOMEM, "router: out of memory");
            break;
        }
        bool hit = false;
        for (size_t k = 0; k < bad.n && !hit; k++) hit = !strcmp(q, bad.ex[k].prompt);
        free(q);
        if (hit) {
            free(d->ex[i].prompt);
            free(d->ex[i].id);
            removed++;
        } else
            d->ex[kept++] = d->ex[i];
    }
    if (!e) {
        d->n = kept;
        if (n_removed) *n_removed = removed;
    } else { /* keep the set consistent: close the gap left by freed rows */
        for (size_t i = kept + removed; i < d->n; i++) d->ex[kept++] = d->ex[i];
        d->n = kept;
    }
    rtr_dataset_fini(&bad);
    return e;
}

unsigned rtr_split_bucket(const char *salt, const char *text, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = salt; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    /* whitespace-insensitive, so copies that differ only in spacing agree */
    bool space = false, any = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = any;
            continue;
        }
        if (space) h = (h ^ ' ') * 0x100000001b3ULL;
        space = false;
        any = true;
        h = (h ^ c) * 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (unsigned)(h % 100);
}

bool rtr_split_pick(const char *salt, const char *text, size_t len, unsigned pct) {
    return rtr_split_bucket(salt, text, len) < pct;
}
