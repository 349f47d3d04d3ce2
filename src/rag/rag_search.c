/*
 * rag_search.c - the best chunks for a question: BM25 over the FTS5 index,
 * cosine similarity over the vectors, or both fused by reciprocal rank
 * (Cormack, Clarke & Buettcher, SIGIR 2009: 1/(60 + rank), summed), which
 * needs no calibration between the two kinds of score.
 *
 * The FTS5 query is built here from the question's words, each one quoted:
 * a question is text, never query syntax (no column filters, NEAR, or
 * operators), so nothing a user types can make MATCH fail or widen.
 */
#include "rag_impl.h"

#include "core/core.h"
#include "store/store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TERMS = 64, MAX_TERM_BYTES = 64, RRF_K = 60 };

static const char *const mode_names[] = {"auto", "bm25", "vector", "hybrid"};

bool rag_mode_parse(const char *name, rag_mode *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, mode_names[i])) {
            *out = (rag_mode)i;
            return true;
        }
    return false;
}

const char *rag_mode_name(rag_mode mode) { return mode_names[mode]; }

typedef struct ranked {
    int64_t id;
    double score;
} ranked;

static bool same_word(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if ((x | (x >= 'A' && x <= 'Z' ? 0x20 : 0)) != (y | (y >= 'A' && y <= 'Z' ? 0x20 : 0)))
            return false;
    }
    return true;
}

static bool word_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* The MATCH expression for the question's words: "w1" OR "w2" ...; an empty
 * string when it has none. Words longer than MAX_TERM_BYTES are dropped
 * (no index term is that long), repeats are kept once. */
static char *match_expr(const char *t, size_t len) {
    char *q = malloc(MAX_TERMS * (MAX_TERM_BYTES + 6) + 1);
    if (!q) return NULL;
    size_t n = 0, at[MAX_TERMS], wl[MAX_TERMS], terms = 0;
    for (size_t i = 0; i < len && terms < MAX_TERMS;) {
        while (i < len && !word_byte((unsigned char)t[i])) i++;
        const size_t w0 = i;
        while (i < len && word_byte((unsigned char)t[i])) i++;
        const size_t w = i - w0;
        if (!w || w > MAX_TERM_BYTES) continue;
        bool seen = false;
        for (size_t k = 0; k < terms && !seen; k++)
            seen = wl[k] == w && same_word(q + at[k], t + w0, w);
        if (seen) continue;
        if (terms) memcpy(q + n, " OR ", 4), n += 4;
        q[n++] = '"';
        at[terms] = n, wl[terms++] = w;
        memcpy(q + n, t + w0, w), n += w;
        q[n++] = '"';
    }
    q[n] = '\0';
    return q;
}

/* The top `cap` chunks by BM25 (title weighted half as much as the text);
 * FTS5's bm25() is lower for better matches, the score here its negation. */
static hearth_err by_bm25(rag_index *x, const char *text, size_t len, int cap, ranked *out,
                          int *n_out) {
    *n_out = 0;
    char *expr = match_expr(text, len);
    if (!expr) return hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory");
    if (!*expr) {
        free(expr);
        return HEARTH_OK;
    }
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT rowid, bm25(chunks_fts, 0.5, 1.0) AS r FROM chunks_fts "
                           "WHERE chunks_fts MATCH ? ORDER BY r, rowid LIMIT ?",
                           -1, &st, NULL)) {
        free(expr);
        return store_fail(x->db, "searching the text");
    }
    sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, cap);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < cap)
        out[n++] = (ranked){sqlite3_column_int64(st, 0), -sqlite3_column_double(st, 1)};
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) err = store_fail(x->db, "searching the text");
    sqlite3_finalize(st);
    free(expr);
    *n_out = n;
    return err;
}

static int by_score(const void *a, const void *b) {
    const ranked *p = a, *q = b;
    if (p->score != q->score) return p->score < q->score ? 1 : -1;
    return (p->id > q->id) - (p->id < q->id);
}

/* The top `cap` chunks by cosine similarity with v (normalised here). */
static hearth_err by_vector(rag_index *x, const float *v, int cap, ranked *out, int *n_out) {
    *n_out = 0;
    hearth_err err = rag_vectors_load(x);
    if (err) return err;
    const int d = x->n_dims;
    double norm = 0;
    for (int j = 0; j < d; j++) norm += (double)v[j] * v[j];
    if (!(norm > 0) || !isfinite(norm))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "rag: the query vector is zero or not finite");
    const double inv = 1 / sqrt(norm);
    ranked *all = malloc((size_t)(x->n_vecs ? x->n_vecs : 1) * sizeof *all);
    if (!all) return hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory");
    for (int64_t i = 0; i < x->n_vecs; i++) {
        const float *r = x->vecs + (size_t)i * (size_t)d;
        double dot = 0;
        for (int j = 0; j < d; j++) dot += (double)r[j] * v[j];
        all[i] = (ranked){x->vec_id[i], dot * inv};
    }
    qsort(all, (size_t)x->n_vecs, sizeof *all, by_score);
    const int n = x->n_vecs < cap ? (int)x->n_vecs : cap;
    memcpy(out, all, (size_t)n * sizeof *out);
    free(all);
    *n_out = n;
    return HEARTH_OK;
}

static int rank_of(const ranked *list, int n, int64_t id) {
    for (int i = 0; i < n; i++)
        if (list[i].id == id) return i + 1;
    return 0;
}

/* The chunk's file, place and text into h. */
static hearth_err fetch(rag_index *x, sqlite3_stmt *st, rag_hit *h) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, h->chunk_id);
    if (sqlite3_step(st) != SQLITE_ROW) return store_fail(x->db, "reading a chunk");
    /* NULLs only in a database written by something else: read as "" */
    const char *path = (const char *)sqlite3_column_text(st, 0);
    const char *text = (const char *)sqlite3_column_text(st, 3);
    const char *source = (const char *)sqlite3_column_text(st, 4);
    h->path = strdup(path ? path : "");
    h->source = strdup(source ? source : "");
    h->byte_start = sqlite3_column_int64(st, 1);
    h->byte_len = sqlite3_column_int64(st, 2);
    h->text = strdup(text ? text : "");
    return h->path && h->source && h->text ? HEARTH_OK
                                           : hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory");
}

/* Resolves AUTO and checks that the index and the query can do the mode. */
static hearth_err choose_mode(rag_index *x, const rag_query *q, rag_mode *mode) {
    rag_info in;
    hearth_err err = rag_info_get(x, &in);
    if (err) return err;
    const bool have = in.n_vectors > 0 && q->vector;
    if (q->mode == RAG_MODE_AUTO) {
        *mode = have && q->model && !strcmp(q->model, in.model) ? RAG_MODE_HYBRID : RAG_MODE_BM25;
        return HEARTH_OK;
    }
    *mode = q->mode;
    if (q->mode == RAG_MODE_BM25) return HEARTH_OK;
    if (in.n_vectors == 0)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "rag: %s search needs vectors, and this index has none (index with a model)",
                       rag_mode_name(q->mode));
    if (!q->vector || !q->model || strcmp(q->model, in.model))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "rag: the index's vectors come from %s; embed the query with that model",
                       in.model);
    return HEARTH_OK;
}

/* a and b fused into out (room for na + nb), best first; returns the count. */
static int fuse(const ranked *a, int na, const ranked *b, int nb, ranked *out) {
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const ranked *l = pass ? b : a;
        for (int i = 0; i < (pass ? nb : na); i++) {
            if (pass && rank_of(a, na, l[i].id)) continue; /* already summed */
            const int ra = rank_of(a, na, l[i].id), rb = rank_of(b, nb, l[i].id);
            out[n++] =
                (ranked){l[i].id, (ra ? 1.0 / (RRF_K + ra) : 0) + (rb ? 1.0 / (RRF_K + rb) : 0)};
        }
    }
    qsort(out, (size_t)n, sizeof *out, by_score);
    return n;
}

hearth_err rag_search(rag_index *x, const rag_query *q, rag_hits *out) {
    size_t bad;
    if (q->k < 1 || q->k > 100)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "rag: k = %d (want 1..100)", q->k);
    if (!hr_utf8_valid(q->text, q->len, &bad))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "rag: the query is not UTF-8 (byte %zu)", bad);
    rag_mode mode;
    hearth_err err = choose_mode(x, q, &mode);
    if (err) return err;
    const int cap = mode == RAG_MODE_HYBRID ? (4 * q->k > 20 ? 4 * q->k : 20) : q->k;
    ranked *lists = malloc(4 * (size_t)cap * sizeof *lists);
    if (!lists) return hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory");
    ranked *a = lists, *b = lists + cap, *f = lists + (size_t)2 * (size_t)cap, *best = a;
    int na = 0, nb = 0, n = 0;
    if (mode != RAG_MODE_VECTOR) err = by_bm25(x, q->text, q->len, cap, a, &na);
    if (!err && mode != RAG_MODE_BM25) err = by_vector(x, q->vector, cap, b, &nb);
    if (!err) {
        if (mode == RAG_MODE_HYBRID)
            n = fuse(a, na, b, nb, f), best = f;
        else
            n = mode == RAG_MODE_BM25 ? na : nb, best = mode == RAG_MODE_BM25 ? a : b;
    }
    if (n > q->k) n = q->k;
    rag_hits h = {.mode = mode};
    sqlite3_stmt *st = NULL;
    if (!err && n &&
        sqlite3_prepare_v2(x->db,
                           "SELECT d.path, c.byte_start, c.byte_len, f.body, f.title FROM chunks c "
                           "JOIN docs d ON d.id = c.doc_id JOIN chunks_fts f ON f.rowid = c.id "
                           "WHERE c.id = ?",
                           -1, &st, NULL))
        err = store_fail(x->db, "reading the chunks");
    if (!err && n && !(h.hit = hr_calloc((size_t)n, sizeof *h.hit))) err = HEARTH_ERR_NOMEM;
    for (int i = 0; i < n && !err; i++) {
        rag_hit *hit = &h.hit[h.n++];
        hit->chunk_id = best[i].id;
        hit->score = best[i].score;
        hit->rank_bm25 = rank_of(a, na, best[i].id);
        hit->rank_vector = rank_of(b, nb, best[i].id);
        err = fetch(x, st, hit);
    }
    sqlite3_finalize(st);
    free(lists);
    if (err) {
        rag_hits_free(&h);
        return err;
    }
    *out = h;
    return HEARTH_OK;
}

void rag_hit_fini(rag_hit *h) {
    free(h->path);
    free(h->source);
    free(h->text);
}

void rag_hits_free(rag_hits *h) {
    for (size_t i = 0; i < h->n; i++) rag_hit_fini(&h->hit[i]);
    free(h->hit);
    h->hit = NULL;
    h->n = 0;
}
