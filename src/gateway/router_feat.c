/*
 * router_feat.c - prompt text -> the router's features. Only the text is
 * used (pre-routing happens before any generation), in three sparse blocks
 * hashed into 2^hash_bits buckets and a few dense numbers:
 *   words  lowercased tokens (runs of letters, digits and non-ASCII bytes;
 *          each other punctuation byte is a token of its own), a digit-shape
 *          token for every number, and word n-grams up to cfg.word_ngrams;
 *   chars  character n-grams (cfg.char_min..char_max) of each "<word>";
 *   meta   one-hot bins of the dense numbers' logarithms (a cheap
 *          non-linearity in length, number count, line count).
 * A feature's value in the words and chars blocks is 1 + ln(count), and each
 * block is scaled to unit L2 norm so that long prompts do not dominate.
 * Hashes are FNV-1a 64 mixed by splitmix64's finalizer, computed on bytes so
 * that a router file scores the same on every platform.
 * rtr_featurize_words is the neighbours part's view of the same tokens: word
 * unigrams only (no punctuation, shapes or n-grams), valued 1 + ln(count),
 * unnormalized (router_knn.c weighs them by idf).
 */
#include "router_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FEAT_MAX_WORD_CHARS = 40, FEAT_MAX_TOKENS = 1 << 16 };

/* Seeds that keep the feature kinds apart in the hash space. */
enum {
    KIND_WORD = 1,
    KIND_BIGRAM,
    KIND_TRIGRAM,
    KIND_CHAR,
    KIND_SHAPE,
    KIND_META,
};

hearth_err rtr_feat_cfg_check(const rtr_feat_cfg *c) {
    if (c->hash_bits < 12 || c->hash_bits > 24)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: hash_bits %u is outside 12..24",
                       c->hash_bits);
    if (c->word_ngrams > 3)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: word n-grams up to %u (at most 3)",
                       c->word_ngrams);
    if (c->char_min || c->char_max) {
        if (c->char_min < 2 || c->char_max < c->char_min || c->char_max > 6)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "router: char n-grams %u..%u (need 2 <= min <= max <= 6)", c->char_min,
                           c->char_max);
    }
    if (c->dense > 1) return hr_fail(HEARTH_ERR_INVALID_ARG, "router: dense flag %u", c->dense);
    if (!c->word_ngrams && !c->char_max && !c->dense)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "router: no features selected");
    return HEARTH_OK;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t fnv_bytes(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_kind(unsigned kind, const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ULL);
    return mix64(fnv_bytes(h, s, n));
}

static uint64_t hash_pair(unsigned kind, uint64_t a, uint64_t b) {
    return mix64(a * 0x9e3779b97f4a7c15ULL ^ mix64(b + kind));
}

void rtr_fvec_fini(rtr_fvec *f) {
    free(f->idx);
    free(f->val);
    free(f->scratch);
    memset(f, 0, sizeof *f);
}

static hearth_err push_hash(rtr_fvec *f, uint64_t h) {
    if (f->scratch_n == f->scratch_cap) {
        size_t cap = f->scratch_cap ? f->scratch_cap * 2 : 1024;
        uint64_t *ns = realloc(f->scratch, cap * sizeof *ns);
        if (!ns) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (features)");
        f->scratch = ns;
        f->scratch_cap = cap;
    }
    f->scratch[f->scratch_n++] = h;
    return HEARTH_OK;
}

static hearth_err push_feature(rtr_fvec *f, uint32_t idx, float val) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 1024;
        uint32_t *ni = realloc(f->idx, cap * sizeof *ni);
        if (!ni) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (features)");
        f->idx = ni;
        float *nv = realloc(f->val, cap * sizeof *nv);
        if (!nv) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (features)");
        f->val = nv;
        f->cap = cap;
    }
    f->idx[f->n] = idx;
    f->val[f->n] = val;
    f->n++;
    return HEARTH_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Turns the hashes gathered in scratch into one block of features: counts
 * equal hashes, values 1 + ln(count) when `log_count` (else 1), scaled to
 * unit L2 norm when `norm`. */
static hearth_err flush_block(rtr_fvec *f, uint32_t mask, bool log_count, bool norm) {
    hearth_err e = HEARTH_OK;
    size_t n = f->scratch_n, first = f->n;
    if (n > 1) qsort(f->scratch, n, sizeof *f->scratch, cmp_u64);
    double ss = 0;
    for (size_t i = 0; i < n && !e;) {
        size_t j = i + 1;
        while (j < n && f->scratch[j] == f->scratch[i]) j++;
        double v = log_count ? 1.0 + log((double)(j - i)) : 1.0;
        ss += v * v;
        e = push_feature(f, (uint32_t)(f->scratch[i] & mask), (float)v);
        i = j;
    }
    if (!e && norm && ss > 0) {
        float s = (float)(1.0 / sqrt(ss));
        for (size_t i = first; i < f->n; i++) f->val[i] *= s;
    }
    f->scratch_n = 0;
    return e;
}

typedef struct tok {
    uint32_t start, len;
    uint64_t h;
    bool word; /* letters/digits, not punctuation */
} tok;

static bool is_word_byte(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Splits the lowercased text into tokens (bounded by FEAT_MAX_TOKENS). */
static size_t tokenize(const char *lo, size_t len, tok *t) {
    size_t n = 0;
    for (size_t i = 0; i < len && n < FEAT_MAX_TOKENS;) {
        uint8_t c = (uint8_t)lo[i];
        if (c <= ' ' || c == 0x7f) {
            i++;
            continue;
        }
        size_t j = i + 1;
        bool word = is_word_byte(c);
        if (word)
            while (j < len && is_word_byte((uint8_t)lo[j])) j++;
        t[n].start = (uint32_t)i;
        t[n].len = (uint32_t)(j - i);
        t[n].word = word;
        t[n].h = hash_kind(KIND_WORD, lo + i, j - i);
        n++;
        i = j;
    }
    return n;
}

static hearth_err word_block(const rtr_feat_cfg *cfg, rtr_fvec *f, const char *lo, const tok *t,
                             size_t n_tok) {
    hearth_err e = HEARTH_OK;
    for (size_t i = 0; i < n_tok && !e; i++) {
        e = push_hash(f, t[i].h);
        /* the shape of a number: its digit count (up to 8) and whether it has a
         * decimal part, so "1234" and "5678" share a feature */
        const char *s = lo + t[i].start;
        if (!e && t[i].word && s[0] >= '0' && s[0] <= '9') {
            char shape[4] = {'#', (char)('0' + (t[i].len < 8 ? t[i].len : 8)), 0, 0};
            if (i + 2 < n_tok && lo[t[i + 1].start] == '.' && t[i + 1].len == 1) shape[2] = '.';
            e = push_hash(f, hash_kind(KIND_SHAPE, shape, 3));
        }
        if (!e && cfg->word_ngrams >= 2 && i + 1 < n_tok)
            e = push_hash(f, hash_pair(KIND_BIGRAM, t[i].h, t[i + 1].h));
        if (!e && cfg->word_ngrams >= 3 && i + 2 < n_tok)
            e = push_hash(f, hash_pair(KIND_TRIGRAM, hash_pair(KIND_TRIGRAM, t[i].h, t[i + 1].h),
                                       t[i + 2].h));
    }
    return e;
}

static hearth_err char_block(const rtr_feat_cfg *cfg, rtr_fvec *f, const char *lo, const tok *t,
                             size_t n_tok) {
    char w[FEAT_MAX_WORD_CHARS + 2];
    hearth_err e = HEARTH_OK;
    for (size_t i = 0; i < n_tok && !e; i++) {
        if (!t[i].word) continue;
        size_t wl = t[i].len < FEAT_MAX_WORD_CHARS ? t[i].len : FEAT_MAX_WORD_CHARS;
        w[0] = '<';
        memcpy(w + 1, lo + t[i].start, wl);
        w[wl + 1] = '>';
        size_t pl = wl + 2;
        for (size_t k = cfg->char_min; k <= cfg->char_max && k <= pl && !e; k++)
            for (size_t s = 0; s + k <= pl && !e; s++)
                e = push_hash(f, hash_kind(KIND_CHAR, w + s, k));
    }
    return e;
}

/* Finds the multiple-choice lines "A. ..." .. "D. ..." (MMLU's layout and the
 * common one elsewhere); returns how many of A-D were found and their lengths. */
static int find_choices(const char *text, size_t len, size_t *stem, size_t lens[4], int *numeric) {
    int found = 0;
    *stem = len;
    *numeric = 0;
    for (size_t i = 0; i < len; i++) {
        if (i && text[i - 1] != '\n') continue;
        if (i + 2 >= len || text[i] < 'A' || text[i] > 'D' || text[i + 1] != '.' ||
            text[i + 2] != ' ')
            continue;
        int k = text[i] - 'A';
        size_t j = i + 3, digits = 0, other = 0;
        while (j < len && text[j] != '\n') {
            if (text[j] >= '0' && text[j] <= '9')
                digits++;
            else if (text[j] != ' ')
                other++;
            j++;
        }
        if (k == 0 && *stem == len) *stem = i;
        if (!(found & (1 << k))) {
            found |= 1 << k;
            lens[k] = j - i - 3;
            if (digits * 2 >= other) (*numeric)++;
        }
    }
    return __builtin_popcount((unsigned)found);
}

static bool has_upper_word(const char *text, size_t len, const char *w) {
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= len; i++)
        if (!memcmp(text + i, w, wl) && (i == 0 || !is_word_byte((uint8_t)text[i - 1])) &&
            (i + wl == len || !is_word_byte((uint8_t)text[i + wl])))
            return true;
    return false;
}

/* The dense numbers, in the order docs/router.md lists them. */
static void dense_numbers(const char *text, size_t len, const tok *t, size_t n_tok, float *d) {
    size_t lines = 1, digits = 0, upper = 0, letters = 0, math = 0, qmarks = 0, high = 0;
    size_t words = 0, numbers = 0, word_bytes = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        lines += c == '\n';
        digits += c >= '0' && c <= '9';
        upper += c >= 'A' && c <= 'Z';
        letters += (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        math += c && strchr("=+*/^<>%$\\|", c) != NULL;
        qmarks += c == '?';
        high += c >= 0x80;
    }
    for (size_t i = 0; i < n_tok; i++) {
        if (!t[i].word) continue;
        words++;
        word_bytes += t[i].len;
        numbers += text[t[i].start] >= '0' && text[t[i].start] <= '9';
    }
    size_t stem, cl[4] = {0};
    int numeric;
    int n_choices = find_choices(text, len, &stem, cl, &numeric);
    double mean_c = 0, min_c = 0, max_c = 0;
    if (n_choices == 4) {
        min_c = max_c = (double)cl[0];
        for (int k = 0; k < 4; k++) {
            mean_c += (double)cl[k] / 4;
            min_c = fmin(min_c, (double)cl[k]);
            max_c = fmax(max_c, (double)cl[k]);
        }
    }
    d[0] = (float)log1p((double)len);
    d[1] = (float)log1p((double)words);
    d[2] = (float)log1p((double)lines);
    d[3] = (float)log1p((double)numbers);
    d[4] = len ? (float)digits / (float)len : 0;
    d[5] = letters ? (float)upper / (float)letters : 0;
    d[6] = (float)log1p((double)math);
    d[7] = n_choices == 4;
    d[8] = (float)log1p((double)stem);
    d[9] = (float)log1p(mean_c);
    d[10] = (float)((max_c - min_c) / (mean_c + 1));
    d[11] = (float)log1p((double)qmarks);
    d[12] = (float)log1p((double)high);
    d[13] = has_upper_word(text, len, "NOT") || has_upper_word(text, len, "EXCEPT") ||
            has_upper_word(text, len, "LEAST") || has_upper_word(text, len, "FALSE");
    d[14] = words ? (float)word_bytes / (float)words : 0;
    d[15] = n_choices == 4 ? (float)numeric / 4 : 0;
}

/* One-hot bins of a few dense numbers' logarithms, as sparse features. */
static hearth_err meta_block(rtr_fvec *f, const float *d) {
    static const int which[] = {0, 1, 2, 3, 8, 9};
    hearth_err e = HEARTH_OK;
    for (size_t k = 0; k < sizeof which / sizeof which[0] && !e; k++) {
        /* d holds ln(1 + x): bins of width ln(2)/2, i.e. half powers of two */
        int bin = (int)(d[which[k]] / 0.34657359f);
        if (bin > 40) bin = 40;
        char key[2] = {(char)which[k], (char)bin};
        e = push_hash(f, hash_kind(KIND_META, key, 2));
    }
    if (!e) {
        char key[2] = {'m', (char)(d[7] > 0.5f)};
        e = push_hash(f, hash_kind(KIND_META, key, 2));
    }
    return e;
}

typedef struct fpair {
    uint32_t idx;
    float val;
} fpair;

static int cmp_fpair(const void *a, const void *b) {
    uint32_t x = ((const fpair *)a)->idx, y = ((const fpair *)b)->idx;
    return (x > y) - (x < y);
}

/* Sorts the features by bucket and sums colliding ones. */
static hearth_err merge_buckets(rtr_fvec *f) {
    if (f->n < 2) return HEARTH_OK;
    fpair *p = malloc(f->n * sizeof *p);
    if (!p) return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (features)");
    for (size_t i = 0; i < f->n; i++) p[i] = (fpair){f->idx[i], f->val[i]};
    qsort(p, f->n, sizeof *p, cmp_fpair);
    size_t m = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (m && f->idx[m - 1] == p[i].idx) {
            f->val[m - 1] += p[i].val;
            continue;
        }
        f->idx[m] = p[i].idx;
        f->val[m] = p[i].val;
        m++;
    }
    f->n = m;
    free(p);
    return HEARTH_OK;
}

/* The lowercased copy of the text (at most RTR_MAX_TEXT_BYTES) and its
 * tokens. */
typedef struct toks {
    char *lo;
    tok *t;
    size_t n;
} toks;

/* Fills k from the text (its length clipped in *len) and empties f. */
static hearth_err toks_get(const char *text, size_t *len, rtr_fvec *f, toks *k) {
    size_t n = *len < RTR_MAX_TEXT_BYTES ? *len : RTR_MAX_TEXT_BYTES;
    f->n = 0;
    f->scratch_n = 0;
    k->lo = malloc(n + 1);
    /* a token has at least one byte */
    k->t = malloc((n < FEAT_MAX_TOKENS ? n + 1 : FEAT_MAX_TOKENS) * sizeof *k->t);
    if (!k->lo || !k->t) {
        free(k->lo);
        free(k->t);
        return hr_fail(HEARTH_ERR_NOMEM, "router: out of memory (features)");
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        k->lo[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    k->lo[n] = '\0';
    k->n = tokenize(k->lo, n, k->t);
    *len = n;
    return HEARTH_OK;
}

static void toks_free(toks *k) {
    free(k->lo);
    free(k->t);
}

hearth_err rtr_featurize(const rtr_feat_cfg *cfg, const char *text, size_t len, rtr_fvec *f) {
    toks k;
    hearth_err e = toks_get(text, &len, f, &k);
    if (e) return e;
    uint32_t mask = (uint32_t)((1u << cfg->hash_bits) - 1);
    dense_numbers(text, len, k.t, k.n, f->dense);
    if (cfg->word_ngrams && !(e = word_block(cfg, f, k.lo, k.t, k.n)))
        e = flush_block(f, mask, true, true);
    if (!e && cfg->char_max && !(e = char_block(cfg, f, k.lo, k.t, k.n)))
        e = flush_block(f, mask, true, true);
    if (!e && cfg->dense && !(e = meta_block(f, f->dense))) e = flush_block(f, mask, false, false);
    if (!e) e = merge_buckets(f);
    toks_free(&k);
    return e;
}

hearth_err rtr_featurize_words(uint32_t bits, const char *text, size_t len, rtr_fvec *f) {
    toks k;
    hearth_err e = toks_get(text, &len, f, &k);
    if (e) return e;
    for (size_t i = 0; i < k.n && !e; i++)
        if (k.t[i].word) e = push_hash(f, k.t[i].h);
    if (!e) e = flush_block(f, (uint32_t)((1u << bits) - 1), true, false);
    if (!e) e = merge_buckets(f);
    memset(f->dense, 0, sizeof f->dense);
    toks_free(&k);
    return e;
}
