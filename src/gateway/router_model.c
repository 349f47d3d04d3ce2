/*
 * router_model.c - a trained router in memory and on disk: scoring, the
 * calibrated threshold, and the binary file format (docs/router.md, "File
 * format"). A router file is untrusted input: the reader checks the magic,
 * version, every count against the bytes left, index order and range, that
 * every float is finite, and a trailing FNV-1a checksum, before anything is
 * allocated from a count.
 */
#include "kernels/kernels.h"
#include "router_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char RTR_MAGIC[8] = {'H', 'R', 'T', 'H', 'R', 'O', 'U', 'T'};
/* Version 1: heads only; version 2 adds the subject part after the heads;
 * version 3 the neighbours part after that; version 4 the neighbours' groups
 * (the neighbour-based subject estimate) after that. A model is written in
 * the lowest version that holds what it uses, byte for byte as before: no
 * group weight is version 3, no neighbours part 2, no subject part 1. */
enum { RTR_VERSION = 4, RTR_MAX_FILE_BYTES = 1 << 30, RTR_LAYOUT_LIST = 0, RTR_LAYOUT_TABLE = 1 };

size_t rtr_lower_bound(const uint32_t *a, size_t lo, size_t hi, uint32_t v) {
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

double rtr_sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

void rtr_free(rtr_model *m) {
    if (!m) return;
    for (uint32_t h = 0; h < RTR_MAX_HEADS; h++) {
        free(m->heads[h].idx);
        free(m->heads[h].w);
    }
    rtr_subject_fini(&m->subj);
    rtr_knn_fini(&m->knn);
    free(m);
}

double rtr_threshold(const rtr_model *m) { return m->threshold; }
double rtr_calibrated_local_share(const rtr_model *m) { return m->local_share; }
void rtr_set_threshold(rtr_model *m, double threshold, double local_share) {
    m->threshold = threshold;
    m->local_share = local_share;
}

void rtr_describe(const rtr_model *m, char *buf, size_t cap) {
    size_t nf = 0;
    for (uint32_t h = 0; h < m->n_heads; h++) nf += m->heads[h].n_sparse;
    int n = snprintf(buf, cap,
                     "logistic regression, target %s, %zu sparse weights in 2^%u buckets, word "
                     "n-grams 1..%u, char n-grams %u..%u, dense %s, threshold %g (local share %g); "
                     "heads:",
                     m->target == RTR_TARGET_GAIN ? "gain" : "needs-strong", nf, m->cfg.hash_bits,
                     m->cfg.word_ngrams, m->cfg.char_min, m->cfg.char_max,
                     m->cfg.dense ? "on" : "off", m->threshold, m->local_share);
    for (uint32_t h = 0; h < m->n_heads && n > 0 && (size_t)n < cap; h++)
        n += snprintf(buf + n, cap - (size_t)n, " %+.3g*P(only %s right | smooth %.2f)",
                      m->heads[h].coef, m->heads[h].label ? "weak" : "strong", m->heads[h].smooth);
    if (m->subj.n && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n,
                      "; subject part %+.3g*sum_c P(c | text)*rate(c) over %u classes (softmax on "
                      "2^%u buckets, word n-grams 1..%u, char n-grams %u..%u)",
                      m->subj.coef, m->subj.n, m->subj.cfg.hash_bits, m->subj.cfg.word_ngrams,
                      m->subj.cfg.char_min, m->subj.cfg.char_max);
    if (m->knn.k && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n,
                      "; neighbours part: rate + %.3g*(kn - rate), kn the mean gain of the %u most "
                      "similar of %u training prompts (tf-idf of words, %u terms in 2^%u buckets)",
                      m->knn.weight, m->knn.k, m->knn.n_rows, m->knn.n_terms, m->knn.bits);
    if (m->knn.k && m->knn.group_weight > 0 && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "; P(c | text) moved %.3g of the way to its groups",
                 m->knn.group_weight);
}

static double head_logit(const rtr_model *m, const rtr_head *h, const rtr_fvec *f) {
    double z = h->bias;
    if (m->cfg.dense)
        for (int k = 0; k < RTR_N_DENSE; k++)
            z += (double)h->dense_w[k] * ((double)f->dense[k] - (double)m->dense_mean[k]) *
                 (double)m->dense_inv_std[k];
    /* both lists are sorted: a merge walk, galloping by binary search over
     * the (much longer) weight list */
    size_t lo = 0;
    for (size_t i = 0; i < f->n && lo < h->n_sparse; i++) {
        size_t a = lo = rtr_lower_bound(h->idx, lo, h->n_sparse, f->idx[i]);
        if (a < h->n_sparse && h->idx[a] == f->idx[i]) z += (double)h->w[a] * (double)f->val[i];
    }
    return z;
}

void rtr_model_parts_fvec(const rtr_model *m, const rtr_fvec *f, const rtr_fvec *fs, rtr_knn_est kn,
                          double parts[4]) {
    /* the first set is one head per label (two for the gain target); any
     * further heads are the plain-label ones of item_weight */
    uint32_t n_first = m->target == RTR_TARGET_GAIN ? 2 : 1;
    rtr_subject_expect(&m->subj, fs, &parts[0], &parts[3]);
    if (m->subj.n) {
        /* the expectations under (1 - b) P(g | text) + b Q(g), then kn */
        double b = m->knn.group_weight;
        if (b > 0 && !isnan(kn.rate)) {
            parts[0] += b * (kn.rate - parts[0]);
            parts[3] += b * (kn.head_w - parts[3]);
        }
        if (!isnan(kn.kn)) parts[0] += (double)m->knn.weight * (kn.kn - parts[0]);
    }
    parts[1] = parts[2] = 0;
    for (uint32_t h = 0; h < m->n_heads; h++)
        parts[h < n_first ? 1 : 2] +=
            (double)m->heads[h].coef * rtr_sigmoid(head_logit(m, &m->heads[h], f));
}

double rtr_model_score_fvec(const rtr_model *m, const rtr_fvec *f, const rtr_fvec *fs,
                            rtr_knn_est kn) {
    double p[4];
    rtr_model_parts_fvec(m, f, fs, kn, p);
    /* heads first, in order, as version 1 summed them: same bits without a subject part */
    double s = p[1] + p[2];
    if (m->subj.n) s = (double)m->subj.coef * p[0] + p[3] * s;
    return s;
}

/* What the neighbours say for ks[0..n_k) (NaN without a part). */
static hearth_err model_knn_query(const rtr_model *m, const char *text, size_t len,
                                  const uint32_t *ks, size_t n_k, rtr_knn_est *kn) {
    for (size_t j = 0; j < n_k; j++) kn[j] = (rtr_knn_est){NAN, NAN, NAN};
    if (!m->knn.k) return HEARTH_OK;
    rtr_fvec fw = {0};
    hearth_err e = rtr_featurize_words(m->knn.bits, text, len, &fw);
    if (!e) e = rtr_knn_query(&m->knn, &m->subj, &fw, ks, n_k, kn);
    rtr_fvec_fini(&fw);
    return e;
}

hearth_err rtr_model_kn(const rtr_model *m, const char *text, size_t len, rtr_knn_est *kn) {
    return model_knn_query(m, text, len, &m->knn.k, 1, kn);
}

/* What scoring reads from a text: the heads' and the subject part's features
 * and the neighbours' mean gain. */
typedef struct text_feats {
    rtr_fvec f, fs;
    rtr_knn_est kn;
} text_feats;

static hearth_err text_feats_get(const rtr_model *m, const char *text, size_t len, text_feats *t) {
    memset(t, 0, sizeof *t);
    hearth_err e = rtr_featurize(&m->cfg, text, len, &t->f);
    if (!e && m->subj.n) e = rtr_featurize(&m->subj.cfg, text, len, &t->fs);
    if (!e) e = rtr_model_kn(m, text, len, &t->kn);
    return e;
}

static void text_feats_fini(text_feats *t) {
    rtr_fvec_fini(&t->f);
    rtr_fvec_fini(&t->fs);
}

hearth_err rtr_score(const rtr_model *m, const char *text, size_t len, double *score) {
    text_feats t;
    hearth_err e = text_feats_get(m, text, len, &t);
    if (!e) *score = rtr_model_score_fvec(m, &t.f, m->subj.n ? &t.fs : NULL, t.kn);
    text_feats_fini(&t);
    return e;
}

hearth_err rtr_score_parts(const rtr_model *m, const char *text, size_t len, double parts[4]) {
    text_feats t;
    hearth_err e = text_feats_get(m, text, len, &t);
    if (!e) rtr_model_parts_fvec(m, &t.f, m->subj.n ? &t.fs : NULL, t.kn, parts);
    text_feats_fini(&t);
    return e;
}

/* The subject part's expectations under P(g | text), and what the
 * neighbours say for each of ks (at most RTR_KNN_PARTS_MAX_K of them). */
static hearth_err knn_parts(const rtr_model *m, const char *text, size_t len, const uint32_t *ks,
                            size_t n_k, double *expect, double *head_w, rtr_knn_est *est) {
    if (!m->knn.k)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: the model has no neighbours part");
    rtr_fvec fs = {0};
    hearth_err e = rtr_featurize(&m->subj.cfg, text, len, &fs);
    if (!e) rtr_subject_expect(&m->subj, &fs, expect, head_w);
    rtr_fvec_fini(&fs);
    if (!e) e = model_knn_query(m, text, len, ks, n_k, est);
    return e;
}

enum { RTR_KNN_PARTS_MAX_K = 64 };

hearth_err rtr_knn_parts(const rtr_model *m, const char *text, size_t len, const uint32_t *ks,
                         size_t n_k, double *expect, double *kn) {
    rtr_knn_est est[RTR_KNN_PARTS_MAX_K];
    double hw;
    if (n_k > RTR_KNN_PARTS_MAX_K)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: %zu values of k (at most %d)", n_k,
                       RTR_KNN_PARTS_MAX_K);
    hearth_err e = knn_parts(m, text, len, ks, n_k, expect, &hw, est);
    for (size_t j = 0; !e && j < n_k; j++) kn[j] = isnan(est[j].kn) ? *expect : est[j].kn;
    return e;
}

hearth_err rtr_knn_subject_parts(const rtr_model *m, const char *text, size_t len,
                                 const uint32_t *ks, size_t n_k, double *expect, double *head_w,
                                 double *rate, double *rate_head_w) {
    rtr_knn_est est[RTR_KNN_PARTS_MAX_K];
    if (n_k > RTR_KNN_PARTS_MAX_K)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: %zu values of k (at most %d)", n_k,
                       RTR_KNN_PARTS_MAX_K);
    if (m->knn.k && !m->knn.group)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: the neighbours part has no groups");
    hearth_err e = knn_parts(m, text, len, ks, n_k, expect, head_w, est);
    for (size_t j = 0; !e && j < n_k; j++) {
        bool none = isnan(est[j].rate);
        rate[j] = none ? *expect : est[j].rate;
        rate_head_w[j] = none ? *head_w : est[j].head_w;
    }
    return e;
}

unsigned rtr_knn_k(const rtr_model *m) { return m->knn.k; }
double rtr_knn_weight(const rtr_model *m) { return m->knn.k ? m->knn.weight : 0; }
double rtr_knn_subject_weight(const rtr_model *m) { return m->knn.k ? m->knn.group_weight : 0; }

size_t rtr_subject_classes(const rtr_model *m) { return m->subj.n; }

hearth_err rtr_subject_probs(const rtr_model *m, const char *text, size_t len, double *p) {
    if (!m->subj.n) return hr_fail(HEARTH_ERR_INVALID_ARG, "router: the model has no subject part");
    rtr_fvec fs = {0};
    hearth_err e = rtr_featurize(&m->subj.cfg, text, len, &fs);
    if (!e) rtr_subject_probs_fvec(&m->subj, &fs, p);
    rtr_fvec_fini(&fs);
    return e;
}

double rtr_subject_weight(const rtr_model *m) { return m->subj.n ? m->subj.coef : 0; }
void rtr_set_subject_weight(rtr_model *m, double w) {
    if (m->subj.n) m->subj.coef = (float)w;
}

/* ------------------------------------------------------------- writing */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void put(wbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

/* Little-endian encodings whatever the host's byte order. */
static void put_u32(wbuf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_u16(wbuf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void put_f32(wbuf *b, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}
static void put_f64(wbuf *b, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static uint32_t fnv32(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* The neighbours part of a version 3 file. */
static void put_knn(wbuf *b, const rtr_knn *kn) {
    put_u32(b, kn->k);
    put_f32(b, kn->weight);
    put_u32(b, kn->bits);
    put_u32(b, kn->n_terms);
    for (uint32_t t = 0; t < kn->n_terms; t++) put_u32(b, kn->bucket[t]);
    for (uint32_t t = 0; t < kn->n_terms; t++) put_f32(b, kn->idf[t]);
    put_u32(b, kn->n_rows);
    for (uint32_t r = 0; r < kn->n_rows; r++) put_u32(b, kn->row_start[r + 1] - kn->row_start[r]);
    put(b, kn->gain, kn->n_rows);
    uint32_t nnz = kn->row_start[kn->n_rows];
    for (uint32_t j = 0; j < nnz; j++) put_u32(b, kn->term[j]);
    for (uint32_t j = 0; j < nnz; j++) put_u16(b, kn->w16[j]);
}

/* The neighbours' groups of a version 4 file. */
static void put_knn_groups(wbuf *b, const rtr_knn *kn) {
    put_f32(b, kn->group_weight);
    put(b, kn->group, kn->n_rows);
}

hearth_err rtr_save_mem(const rtr_model *m, uint8_t **data, size_t *size) {
    wbuf b = {0};
    put(&b, RTR_MAGIC, sizeof RTR_MAGIC);
    uint32_t version = !m->subj.n ? 1u : !m->knn.k ? 2u : m->knn.group_weight > 0 ? 4u : 3u;
    if (version == 4 && !m->knn.group) {
        free(b.p);
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: a group weight without stored groups");
    }
    const uint32_t hdr[] = {version,         m->cfg.hash_bits, m->cfg.word_ngrams,
                            m->cfg.char_min, m->cfg.char_max,  m->cfg.dense,
                            m->target,       m->n_heads,       RTR_N_DENSE};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) put_u32(&b, hdr[i]);
    put_f64(&b, m->threshold);
    put_f64(&b, m->local_share);
    for (int k = 0; k < RTR_N_DENSE; k++) put_f32(&b, m->dense_mean[k]);
    for (int k = 0; k < RTR_N_DENSE; k++) put_f32(&b, m->dense_inv_std[k]);
    for (uint32_t h = 0; h < m->n_heads; h++) {
        const rtr_head *hd = &m->heads[h];
        put_u32(&b, hd->label);
        put_f32(&b, hd->coef);
        put_f32(&b, hd->smooth);
        put_f32(&b, hd->bias);
        for (int k = 0; k < RTR_N_DENSE; k++) put_f32(&b, hd->dense_w[k]);
        /* a list of (index, weight), or the whole table when that is smaller */
        uint64_t buckets = 1ull << m->cfg.hash_bits;
        if ((uint64_t)hd->n_sparse * 8 <= buckets * 4) {
            put_u32(&b, RTR_LAYOUT_LIST);
            put_u32(&b, hd->n_sparse);
            for (uint32_t i = 0; i < hd->n_sparse; i++) put_u32(&b, hd->idx[i]);
            for (uint32_t i = 0; i < hd->n_sparse; i++) put_f32(&b, hd->w[i]);
        } else {
            put_u32(&b, RTR_LAYOUT_TABLE);
            for (uint32_t i = 0, k = 0; i < buckets; i++)
                put_f32(&b, k < hd->n_sparse && hd->idx[k] == i ? hd->w[k++] : 0.0f);
        }
    }
    if (m->subj.n) {
        const rtr_subject *sj = &m->subj;
        put_u32(&b, sj->n);
        put_u32(&b, sj->cfg.hash_bits);
        put_u32(&b, sj->cfg.word_ngrams);
        put_u32(&b, sj->cfg.char_min);
        put_u32(&b, sj->cfg.char_max);
        put_f32(&b, sj->coef);
        for (uint32_t k = 0; k < sj->n; k++) put_f32(&b, sj->rate[k]);
        for (uint32_t k = 0; k < sj->n; k++) put_f32(&b, sj->bias[k]);
        for (uint32_t k = 0; k < sj->n; k++) put_f32(&b, sj->head_w[k]);
        size_t nw = ((size_t)1 << sj->cfg.hash_bits) * sj->n;
        for (size_t i = 0; i < nw; i++) put_f32(&b, sj->w[i]);
    }
    if (version >= 3) put_knn(&b, &m->knn);
    if (version == 4) put_knn_groups(&b, &m->knn);
    if (!b.oom) put_u32(&b, fnv32(b.p, b.n));
    if (b.oom) {
        free(b.p);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory writing the model");
    }
    *data = b.p;
    *size = b.n;
    return HEARTH_OK;
}

hearth_err rtr_save(const rtr_model *m, const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    hearth_err e = rtr_save_mem(m, &data, &size);
    if (e) return e;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(data);
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: path too long: %s", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        e = hr_fail(HEARTH_ERR_IO, "router: cannot create %s", tmp);
    else {
        bool ok = fwrite(data, 1, size, fp) == size;
        ok = (fclose(fp) == 0) && ok;
        if (!ok || rename(tmp, path) != 0) {
            remove(tmp);
            e = hr_fail(HEARTH_ERR_IO, "router: cannot write %s", path);
        }
    }
    free(data);
    return e;
}

/* ------------------------------------------------------------- reading */

typedef struct rbuf {
    const uint8_t *p;
    size_t n, off;
} rbuf;

static bool get_u32(rbuf *r, uint32_t *v) {
    if (r->n - r->off < 4) return false;
    const uint8_t *x = r->p + r->off;
    *v = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
    r->off += 4;
    return true;
}
/* Every float in a router file is finite and within +-RTR_MAX_ABS, which
 * keeps every score finite whatever the text. */
#define RTR_MAX_ABS 1e6f
static bool get_f32(rbuf *r, float *f) {
    uint32_t v;
    if (!get_u32(r, &v)) return false;
    memcpy(f, &v, 4);
    return isfinite(*f) && fabsf(*f) <= RTR_MAX_ABS;
}
static bool get_f64(rbuf *r, double *d) {
    uint32_t lo, hi;
    if (!get_u32(r, &lo) || !get_u32(r, &hi)) return false;
    uint64_t v = (uint64_t)hi << 32 | lo;
    memcpy(d, &v, 8);
    return true;
}

#define BAD(...) (e = hr_fail(HEARTH_ERR_FORMAT, "router file: " __VA_ARGS__))

/* A whole table of 2^hash_bits weights; kept in memory as the non-zero ones. */
static hearth_err read_table(rbuf *r, rtr_head *hd, uint32_t h, uint64_t buckets) {
    hearth_err e = HEARTH_OK;
    if (buckets * 4 > r->n - r->off)
        return BAD("head %u: a table of %llu weights needs %llu bytes, %zu left", h,
                   (unsigned long long)buckets, (unsigned long long)buckets * 4, r->n - r->off);
    size_t start = r->off, nz = 0;
    for (uint64_t i = 0; i < buckets; i++) {
        float v;
        if (!get_f32(r, &v))
            return BAD("head %u: weight %llu is not finite", h, (unsigned long long)i);
        nz += v != 0;
    }
    hd->idx = malloc((nz ? nz : 1) * sizeof *hd->idx);
    hd->w = malloc((nz ? nz : 1) * sizeof *hd->w);
    if (!hd->idx || !hd->w) return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    r->off = start;
    for (uint32_t i = 0; i < (uint32_t)buckets; i++) {
        float v;
        get_f32(r, &v);
        if (v != 0) {
            hd->idx[hd->n_sparse] = i;
            hd->w[hd->n_sparse++] = v;
        }
    }
    return HEARTH_OK;
}

static hearth_err read_head(rbuf *r, const rtr_model *m, rtr_head *hd, uint32_t h) {
    hearth_err e = HEARTH_OK;
    if (!get_u32(r, &hd->label) || hd->label > 1) return BAD("head %u: bad label", h);
    if (!get_f32(r, &hd->coef))
        return BAD("head %u: coefficient truncated, not finite or too big", h);
    if (!get_f32(r, &hd->smooth) || hd->smooth < 0 || hd->smooth > 1)
        return BAD("head %u: smoothing truncated or outside [0, 1]", h);
    if (!get_f32(r, &hd->bias)) return BAD("head %u: bias truncated or not finite", h);
    for (int k = 0; k < RTR_N_DENSE; k++)
        if (!get_f32(r, &hd->dense_w[k]))
            return BAD("head %u: dense weight %d truncated or not finite", h, k);
    uint32_t layout;
    if (!get_u32(r, &layout) || layout > RTR_LAYOUT_TABLE)
        return BAD("head %u: bad weight layout", h);
    uint64_t need, buckets = 1ull << m->cfg.hash_bits;
    if (layout == RTR_LAYOUT_TABLE) return read_table(r, hd, h, buckets);
    if (!get_u32(r, &hd->n_sparse)) return BAD("head %u: truncated before its weight count", h);
    if (hd->n_sparse > buckets)
        return BAD("head %u: %u weights but only %llu buckets", h, hd->n_sparse,
                   (unsigned long long)buckets);
    if (!hr_mul_ok(hd->n_sparse, 8, &need) || need > r->n - r->off)
        return BAD("head %u: %u weights need %llu bytes, %zu left", h, hd->n_sparse,
                   (unsigned long long)hd->n_sparse * 8, r->n - r->off);
    size_t ns = hd->n_sparse ? hd->n_sparse : 1;
    hd->idx = malloc(ns * sizeof *hd->idx);
    hd->w = malloc(ns * sizeof *hd->w);
    if (!hd->idx || !hd->w) return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    for (uint32_t i = 0; i < hd->n_sparse; i++) {
        get_u32(r, &hd->idx[i]);
        if (hd->idx[i] >= buckets || (i && hd->idx[i] <= hd->idx[i - 1]))
            return BAD("head %u: weight index %u at %u out of order or range", h, hd->idx[i], i);
    }
    for (uint32_t i = 0; i < hd->n_sparse; i++)
        if (!get_f32(r, &hd->w[i]))
            return BAD("head %u: weight %u is not finite or beyond 1e6", h, i);
    return HEARTH_OK;
}

/* The subject part of a version 2 file. */
static hearth_err read_subject(rbuf *r, rtr_subject *sj) {
    hearth_err e = HEARTH_OK;
    uint32_t v[5];
    for (int i = 0; i < 5; i++)
        if (!get_u32(r, &v[i])) return BAD("subject part truncated");
    if (v[0] < 2 || v[0] > RTR_MAX_SUBJECTS)
        return BAD("subject part: %u classes (2..%d)", v[0], RTR_MAX_SUBJECTS);
    if (v[1] < RTR_SUBJ_MIN_BITS || v[1] > RTR_SUBJ_MAX_BITS)
        return BAD("subject part: hash bits %u (%d..%d)", v[1], RTR_SUBJ_MIN_BITS,
                   RTR_SUBJ_MAX_BITS);
    sj->cfg = (rtr_feat_cfg){v[1], v[2], v[3], v[4], 0};
    if (rtr_feat_cfg_check(&sj->cfg)) return hr_wrap(HEARTH_ERR_FORMAT, "router file: subject: ");
    if (!get_f32(r, &sj->coef)) return BAD("subject part: coefficient bad");
    /* rates, biases and the table, all counted before anything is allocated */
    uint64_t nw = ((uint64_t)1 << v[1]) * v[0], need;
    if (!hr_add_ok(nw, 3 * (uint64_t)v[0], &need) || !hr_mul_ok(need, 4, &need) ||
        need > r->n - r->off)
        return BAD("subject part: %u classes x 2^%u buckets need %llu bytes, %zu left", v[0], v[1],
                   (unsigned long long)need, r->n - r->off);
    sj->rate = malloc(v[0] * sizeof *sj->rate);
    sj->bias = malloc(v[0] * sizeof *sj->bias);
    sj->head_w = malloc(v[0] * sizeof *sj->head_w);
    sj->w = malloc((size_t)nw * sizeof *sj->w);
    sj->n = v[0]; /* set with the arrays, so that rtr_free releases them */
    if (!sj->rate || !sj->bias || !sj->head_w || !sj->w)
        return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    for (uint32_t k = 0; k < v[0]; k++)
        if (!get_f32(r, &sj->rate[k]) || !(fabsf(sj->rate[k]) <= 1))
            return BAD("subject part: rate %u not within [-1, 1]", k);
    for (uint32_t k = 0; k < v[0]; k++)
        if (!get_f32(r, &sj->bias[k])) return BAD("subject part: bias %u bad", k);
    for (uint32_t k = 0; k < v[0]; k++)
        if (!get_f32(r, &sj->head_w[k])) return BAD("subject part: head weight %u bad", k);
    for (uint64_t i = 0; i < nw; i++)
        if (!get_f32(r, &sj->w[i]))
            return BAD("subject part: weight %llu is not finite or beyond 1e6",
                       (unsigned long long)i);
    return HEARTH_OK;
}

static hearth_err read_knn_rows(rbuf *r, rtr_knn *kn) {
    hearth_err e = HEARTH_OK;
    uint64_t need, nnz = 0;
    if (!get_u32(r, &kn->n_rows)) return BAD("neighbours part: truncated before its row count");
    if (!hr_mul_ok(kn->n_rows, 5, &need) || need > r->n - r->off)
        return BAD("neighbours part: %u rows need %llu bytes, %zu left", kn->n_rows,
                   (unsigned long long)need, r->n - r->off);
    kn->row_start = malloc(((size_t)kn->n_rows + 1) * sizeof *kn->row_start);
    kn->gain = malloc(kn->n_rows ? kn->n_rows : 1);
    if (!kn->row_start || !kn->gain) return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    kn->row_start[0] = 0;
    for (uint32_t i = 0; i < kn->n_rows; i++) {
        uint32_t c = 0;
        if (!get_u32(r, &c) || c < 1 || c > kn->n_terms) /* (the size was checked above) */
            return BAD("neighbours part: row %u has %u terms (1..%u)", i, c, kn->n_terms);
        if ((nnz += c) > UINT32_MAX - 1) return BAD("neighbours part: too many terms in all");
        kn->row_start[i + 1] = (uint32_t)nnz;
    }
    for (uint32_t i = 0; i < kn->n_rows; i++) {
        int8_t g = (int8_t)r->p[r->off++];
        if (g < -1 || g > 1) return BAD("neighbours part: row %u's gain %d (-1, 0 or 1)", i, g);
        kn->gain[i] = g;
    }
    if (!hr_mul_ok(nnz, 6, &need) || need > r->n - r->off)
        return BAD("neighbours part: %llu terms need %llu bytes, %zu left", (unsigned long long)nnz,
                   (unsigned long long)need, r->n - r->off);
    kn->term = malloc((nnz ? nnz : 1) * sizeof *kn->term);
    kn->w16 = malloc((nnz ? nnz : 1) * sizeof *kn->w16);
    if (!kn->term || !kn->w16) return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    for (uint32_t i = 0, j = 0; i < kn->n_rows; i++)
        for (; j < kn->row_start[i + 1]; j++) {
            uint32_t t = 0;
            if (!get_u32(r, &t) || t >= kn->n_terms ||
                (j > kn->row_start[i] && t <= kn->term[j - 1]))
                return BAD("neighbours part: row %u's term %u out of order or range", i, t);
            kn->term[j] = t;
        }
    for (uint32_t j = 0; j < (uint32_t)nnz; j++) {
        kn->w16[j] = (uint16_t)(r->p[r->off] | r->p[r->off + 1] << 8);
        r->off += 2;
        float w = kern_f16_to_f32(kn->w16[j]);
        if (!(w > 0 && w <= 1)) return BAD("neighbours part: weight %u not within (0, 1]", j);
    }
    return HEARTH_OK;
}

/* The neighbours part of a version 3 file. */
static hearth_err read_knn(rbuf *r, rtr_knn *kn) {
    hearth_err e = HEARTH_OK;
    uint32_t k, bits;
    float w;
    uint64_t need;
    if (!get_u32(r, &k) || !get_f32(r, &w) || !get_u32(r, &bits) || !get_u32(r, &kn->n_terms))
        return BAD("neighbours part truncated or its weight not finite");
    if (k < 1 || k > RTR_KNN_MAX_K) return BAD("neighbours part: k %u (1..%d)", k, RTR_KNN_MAX_K);
    if (!(w >= 0 && w <= 1)) return BAD("neighbours part: weight %g outside [0, 1]", (double)w);
    if (bits < RTR_KNN_MIN_BITS || bits > RTR_KNN_MAX_BITS)
        return BAD("neighbours part: bucket bits %u (%d..%d)", bits, RTR_KNN_MIN_BITS,
                   RTR_KNN_MAX_BITS);
    if (kn->n_terms > 1u << bits)
        return BAD("neighbours part: %u terms in 2^%u buckets", kn->n_terms, bits);
    if (!hr_mul_ok(kn->n_terms, 8, &need) || need > r->n - r->off)
        return BAD("neighbours part: %u terms need %llu bytes, %zu left", kn->n_terms,
                   (unsigned long long)need, r->n - r->off);
    kn->bucket = malloc((kn->n_terms ? kn->n_terms : 1) * sizeof *kn->bucket);
    kn->idf = malloc((kn->n_terms ? kn->n_terms : 1) * sizeof *kn->idf);
    if (!kn->bucket || !kn->idf) return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    for (uint32_t t = 0; t < kn->n_terms; t++) {
        get_u32(r, &kn->bucket[t]);
        if (kn->bucket[t] >> bits || (t && kn->bucket[t] <= kn->bucket[t - 1]))
            return BAD("neighbours part: bucket %u at %u out of order or range", kn->bucket[t], t);
    }
    /* ln(N / df) with at most 2^32 rows is below 23 */
    for (uint32_t t = 0; t < kn->n_terms; t++)
        if (!get_f32(r, &kn->idf[t]) || !(kn->idf[t] > 0 && kn->idf[t] <= 64))
            return BAD("neighbours part: idf %u not within (0, 64]", t);
    if ((e = read_knn_rows(r, kn))) return e;
    kn->k = k, kn->weight = w, kn->bits = bits;
    return rtr_knn_index(kn);
}

/* The neighbours' groups of a version 4 file: each a class of the subject
 * part (n_classes of them). */
static hearth_err read_knn_groups(rbuf *r, rtr_knn *kn, uint32_t n_classes) {
    hearth_err e = HEARTH_OK;
    float b;
    if (!get_f32(r, &b) || !(b > 0 && b <= 1))
        return BAD("neighbours' groups: weight truncated or outside (0, 1]");
    if (kn->n_rows > r->n - r->off)
        return BAD("neighbours' groups: %u rows need %u bytes, %zu left", kn->n_rows, kn->n_rows,
                   r->n - r->off);
    if (!(kn->group = malloc(kn->n_rows ? kn->n_rows : 1)))
        return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    for (uint32_t i = 0; i < kn->n_rows; i++)
        if ((kn->group[i] = r->p[r->off++]) >= n_classes)
            return BAD("neighbours' groups: row %u's group %u (%u classes)", i, kn->group[i],
                       n_classes);
    kn->group_weight = b;
    return HEARTH_OK;
}

static hearth_err read_model(rbuf *r, rtr_model *m) {
    hearth_err e = HEARTH_OK;
    uint32_t hdr[9];
    if (r->n < sizeof RTR_MAGIC || memcmp(r->p, RTR_MAGIC, sizeof RTR_MAGIC))
        return BAD("bad magic (not a Hearth router file)");
    r->off = sizeof RTR_MAGIC;
    for (size_t i = 0; i < 9; i++)
        if (!get_u32(r, &hdr[i])) return BAD("truncated header");
    if (hdr[0] < 1 || hdr[0] > RTR_VERSION)
        return BAD("version %u (this build reads 1..%d)", hdr[0], RTR_VERSION);
    m->cfg = (rtr_feat_cfg){hdr[1], hdr[2], hdr[3], hdr[4], hdr[5]};
    if (rtr_feat_cfg_check(&m->cfg)) return hr_wrap(HEARTH_ERR_FORMAT, "router file: ");
    m->target = hdr[6];
    m->n_heads = hdr[7];
    if (m->target > RTR_TARGET_GAIN) return BAD("unknown target %u", m->target);
    if (m->n_heads < 1 || m->n_heads > RTR_MAX_HEADS)
        return BAD("%u heads (1..%d)", m->n_heads, RTR_MAX_HEADS);
    if (hdr[8] != RTR_N_DENSE) return BAD("%u dense features (expected %d)", hdr[8], RTR_N_DENSE);
    if (!get_f64(r, &m->threshold) || !get_f64(r, &m->local_share)) return BAD("truncated header");
    if (isnan(m->threshold)) return BAD("threshold is NaN");
    if (!isnan(m->local_share) && !(m->local_share >= 0 && m->local_share <= 1))
        return BAD("local share %g outside [0, 1]", m->local_share);
    for (int k = 0; k < RTR_N_DENSE; k++)
        if (!get_f32(r, &m->dense_mean[k])) return BAD("dense mean %d bad", k);
    for (int k = 0; k < RTR_N_DENSE; k++)
        if (!get_f32(r, &m->dense_inv_std[k]) || m->dense_inv_std[k] < 0)
            return BAD("dense scale %d bad", k);
    for (uint32_t h = 0; h < m->n_heads; h++)
        if ((e = read_head(r, m, &m->heads[h], h))) return e;
    if (hdr[0] >= 2 && (e = read_subject(r, &m->subj))) return e;
    if (hdr[0] >= 3 && (e = read_knn(r, &m->knn))) return e;
    if (hdr[0] >= 4 && (e = read_knn_groups(r, &m->knn, m->subj.n))) return e;
    if (r->off != r->n) return BAD("%zu bytes after the model's last part", r->n - r->off);
    return HEARTH_OK;
}

hearth_err rtr_load_mem(const uint8_t *data, size_t size, rtr_model **out) {
    hearth_err e = HEARTH_OK;
    if (size < 8 + 4) return BAD("%zu bytes is too short", size);
    uint32_t stored = (uint32_t)data[size - 4] | (uint32_t)data[size - 3] << 8 |
                      (uint32_t)data[size - 2] << 16 | (uint32_t)data[size - 1] << 24;
    if (memcmp(data, RTR_MAGIC, sizeof RTR_MAGIC))
        return BAD("bad magic (not a Hearth router file)");
    if (fnv32(data, size - 4) != stored) return BAD("checksum mismatch (file damaged)");
    rtr_model *m = calloc(1, sizeof *m);
    if (!m) return hr_fail(HEARTH_ERR_NOMEM, "router file: out of memory");
    rbuf r = {data, size - 4, 0};
    if ((e = read_model(&r, m))) {
        rtr_free(m);
        return e;
    }
    *out = m;
    return HEARTH_OK;
}

hearth_err rtr_load(const char *path, rtr_model **out) {
    hr_map map;
    hearth_err e = hr_map_open(&map, path);
    if (e) return e;
    if (map.size > RTR_MAX_FILE_BYTES)
        e = hr_fail(HEARTH_ERR_FORMAT, "router file: %s is %llu bytes (at most %d)", path,
                    (unsigned long long)map.size, RTR_MAX_FILE_BYTES);
    else if ((e = rtr_load_mem(map.data, (size_t)map.size, out)))
        hr_wrap(e, "%s: ", path);
    hr_map_close(&map);
    return e;
}
