/*
 * redact.c - reversible redaction for one request. Values found by the
 * privacy guard become placeholders (<EMAIL_1>, <PHONE_2>, ...) before text
 * leaves for a remote tier; the answer coming back has its placeholders
 * replaced by the values again.
 *
 * Invariants: one value of one type has one placeholder for the whole
 * request (a hash table on (type, value)); placeholders are numbered per
 * type from 1 in order of first appearance, so entry (type, k) is found in
 * by_type[type][k - 1]. Restoring never invents text: an unknown or
 * malformed placeholder is copied as it is.
 *
 * Streaming: an SSE chunk may end inside a placeholder ("<EMA" + "IL_1>").
 * The restorer holds back a tail that could still become one (a '<' followed
 * only by [A-Z0-9_], shorter than GW_PLACEHOLDER_MAX) and decides when the
 * next chunk or the end arrives, so a split placeholder is restored exactly
 * as a whole one is.
 */
#include "gateway.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    gw_entity type;
    int num;
    char *value;
    size_t value_len;
    char placeholder[GW_PLACEHOLDER_MAX];
} entry;

struct gw_redaction {
    entry *entries;
    size_t n, cap;
    uint32_t *slots; /* hash table: entry index + 1, 0 = empty */
    size_t n_slots;  /* a power of two, > 2 n */
    size_t *by_type[GW_N_ENT];
    int n_type[GW_N_ENT]; /* distinct values per type */
    int count[GW_N_ENT];  /* occurrences replaced per type */
};

gw_redaction *gw_redaction_new(void) { return calloc(1, sizeof(gw_redaction)); }

void gw_redaction_free(gw_redaction *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->entries[i].value);
    for (int t = 0; t < GW_N_ENT; t++) free(r->by_type[t]);
    free(r->entries);
    free(r->slots);
    free(r);
}

static uint64_t hash_value(gw_entity type, const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)type; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static bool rehash(gw_redaction *r, size_t n_slots) {
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < r->n; i++) {
        const entry *e = &r->entries[i];
        size_t k = hash_value(e->type, e->value, e->value_len) & (n_slots - 1);
        while (slots[k]) k = (k + 1) & (n_slots - 1);
        slots[k] = (uint32_t)(i + 1);
    }
    free(r->slots);
    r->slots = slots;
    r->n_slots = n_slots;
    return true;
}

/* The entry of (type, value), created when new; NULL when out of memory. */
static const entry *intern(gw_redaction *r, gw_entity type, const char *value, size_t len) {
    if (r->n_slots) {
        size_t k = hash_value(type, value, len) & (r->n_slots - 1);
        for (; r->slots[k]; k = (k + 1) & (r->n_slots - 1)) {
            const entry *e = &r->entries[r->slots[k] - 1];
            if (e->type == type && e->value_len == len && !memcmp(e->value, value, len)) return e;
        }
    }
    if (r->n >= (size_t)UINT32_MAX / 4) return NULL;
    if ((r->n + 1) * 2 >= r->n_slots && !rehash(r, r->n_slots ? r->n_slots * 2 : 64)) return NULL;
    if (r->n == r->cap) {
        const size_t cap = r->cap ? r->cap * 2 : 16;
        entry *v = realloc(r->entries, cap * sizeof *v);
        if (!v) return NULL;
        r->entries = v;
        r->cap = cap;
    }
    const int num = r->n_type[type] + 1;
    size_t *bt = realloc(r->by_type[type], (size_t)num * sizeof *bt);
    if (!bt) return NULL;
    r->by_type[type] = bt;
    entry *e = &r->entries[r->n];
    e->value = malloc(len + 1);
    if (!e->value) return NULL;
    memcpy(e->value, value, len);
    e->value[len] = '\0';
    e->value_len = len;
    e->type = type;
    e->num = num;
    snprintf(e->placeholder, sizeof e->placeholder, "<%s_%d>", gw_entity_name(type), num);
    bt[num - 1] = r->n;
    r->n_type[type] = num;
    size_t k = hash_value(type, value, len) & (r->n_slots - 1);
    while (r->slots[k]) k = (k + 1) & (r->n_slots - 1);
    r->slots[k] = (uint32_t)(r->n + 1);
    r->n++;
    return e;
}

hearth_err gw_redact(gw_redaction *r, const char *text, size_t len, const gw_span *spans,
                     size_t n_spans, const gw_pii_action actions[GW_N_ENT], char **out,
                     size_t *out_len) {
    gw_buf b = {0};
    hearth_err err = gw_buf_put(&b, "", 0);
    size_t at = 0;
    for (size_t i = 0; !err && i < n_spans; i++) {
        const gw_span *s = &spans[i];
        if (s->start < at || s->end > len || s->end <= s->start || (unsigned)s->type >= GW_N_ENT) {
            err = hr_fail(HEARTH_ERR_INVALID_ARG, "redact: spans must be sorted and disjoint");
            break;
        }
        if (actions && actions[s->type] == GW_PII_ALLOW) continue;
        const entry *e = intern(r, s->type, text + s->start, s->end - s->start);
        if (!e) {
            err = hr_fail(HEARTH_ERR_NOMEM, "redact: out of memory");
            break;
        }
        r->count[s->type]++;
        err = gw_buf_put(&b, text + at, s->start - at);
        if (!err) err = gw_buf_puts(&b, e->placeholder);
        at = s->end;
    }
    if (!err) err = gw_buf_put(&b, text + at, len - at);
    if (err) {
        gw_buf_free(&b);
        return err;
    }
    *out = gw_buf_take(&b, out_len);
    return HEARTH_OK;
}

int gw_redaction_count(const gw_redaction *r, gw_entity type) {
    return (unsigned)type < GW_N_ENT ? r->count[type] : 0;
}

size_t gw_redaction_size(const gw_redaction *r) { return r ? r->n : 0; }

void gw_redaction_entry(const gw_redaction *r, size_t i, const char **value, size_t *value_len,
                        const char **placeholder) {
    const entry *e = &r->entries[i];
    *value = e->value;
    *value_len = e->value_len;
    *placeholder = e->placeholder;
}

void gw_redaction_summary(const gw_redaction *r, char *out, size_t cap) {
    size_t n = 0;
    if (cap) out[0] = '\0';
    for (int t = 0; t < GW_N_ENT && n < cap; t++) {
        if (!r->count[t]) continue;
        const int k = snprintf(out + n, cap - n, "%s%s:%d", n ? "," : "",
                               gw_entity_name((gw_entity)t), r->count[t]);
        if (k < 0) break;
        n += (size_t)k;
    }
}

static bool placeholder_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The entry whose placeholder is s[0..n) (n includes '<' and '>'), or NULL. */
static const entry *lookup_placeholder(const gw_redaction *r, const char *s, size_t n) {
    if (n < 5 || s[0] != '<' || s[n - 1] != '>') return NULL;
    size_t u = n - 2; /* the last '_' before the number */
    while (u > 1 && s[u] >= '0' && s[u] <= '9') u--;
    if (u == n - 2 || s[u] != '_' || u < 2) return NULL;
    long num = 0;
    for (size_t i = u + 1; i < n - 1 && num < 1000000000L; i++) num = num * 10 + (s[i] - '0');
    for (int t = 0; t < GW_N_ENT; t++) {
        const char *name = gw_entity_name((gw_entity)t);
        if (strlen(name) != u - 1 || memcmp(name, s + 1, u - 1) != 0) continue;
        if (num < 1 || num > r->n_type[t]) return NULL;
        return &r->entries[r->by_type[t][num - 1]];
    }
    return NULL;
}

hearth_err gw_restore(const gw_redaction *r, const char *text, size_t len, gw_buf *out) {
    if (!r || !r->n) return gw_buf_put(out, text, len);
    size_t at = 0, i = 0;
    while (i < len) {
        const char *lt = memchr(text + i, '<', len - i);
        if (!lt) break;
        const size_t s = (size_t)(lt - text);
        size_t e = s + 1;
        while (e < len && e - s < GW_PLACEHOLDER_MAX && placeholder_char(text[e])) e++;
        const entry *hit = e < len && text[e] == '>' ? lookup_placeholder(r, lt, e + 1 - s) : NULL;
        if (!hit) {
            i = s + 1;
            continue;
        }
        hearth_err err = gw_buf_put(out, text + at, s - at);
        if (!err) err = gw_buf_put(out, hit->value, hit->value_len);
        if (err) return err;
        at = i = e + 1;
    }
    return gw_buf_put(out, text + at, len - at);
}

void gw_restorer_init(gw_restorer *s, const gw_redaction *r) {
    s->r = r;
    s->n_hold = 0;
}

/* Where a tail that could still become a placeholder starts (len: none). */
static size_t holdback_start(const char *t, size_t len) {
    const size_t lo = len > GW_PLACEHOLDER_MAX - 1 ? len - (GW_PLACEHOLDER_MAX - 1) : 0;
    for (size_t i = len; i-- > lo;) {
        if (t[i] == '<') return i;
        if (!placeholder_char(t[i])) return len;
    }
    return len;
}

hearth_err gw_restorer_feed(gw_restorer *s, const char *chunk, size_t len, gw_buf *out) {
    if (!s->r || !s->r->n) return gw_buf_put(out, chunk, len);
    gw_buf tmp = {0};
    hearth_err err = gw_buf_put(&tmp, s->hold, s->n_hold);
    if (!err) err = gw_buf_put(&tmp, chunk, len);
    if (!err) {
        const size_t h = holdback_start(tmp.data, tmp.len);
        err = gw_restore(s->r, tmp.data, h, out);
        s->n_hold = tmp.len - h; /* < GW_PLACEHOLDER_MAX by holdback_start */
        memcpy(s->hold, tmp.data + h, s->n_hold);
    }
    gw_buf_free(&tmp);
    return err;
}

hearth_err gw_restorer_flush(gw_restorer *s, gw_buf *out) {
    const hearth_err err = gw_buf_put(out, s->hold, s->n_hold);
    s->n_hold = 0;
    return err;
}
