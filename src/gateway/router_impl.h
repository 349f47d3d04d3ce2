/*
 * router_impl.h - private to the router files of src/gateway: the model's
 * layout in memory, the feature extractor, the sparse design matrix and the
 * L-BFGS logistic-regression solver that training and the baseline share.
 */
#ifndef HEARTH_ROUTER_IMPL_H
#define HEARTH_ROUTER_IMPL_H

#include "router.h"

/* The structural numbers of a prompt (router_feat.c lists what each is). */
enum { RTR_N_DENSE = 16, RTR_MAX_HEADS = 4 };
/* The subject part: at most this many classes and 2^RTR_SUBJ_MAX_BITS buckets. */
enum { RTR_MAX_SUBJECTS = 256, RTR_SUBJ_MIN_BITS = 12, RTR_SUBJ_MAX_BITS = 18 };

/* How text becomes sparse features; stored in the router file. */
typedef struct rtr_feat_cfg {
    uint32_t hash_bits;   /* buckets = 2^hash_bits */
    uint32_t word_ngrams; /* 0..3 */
    uint32_t char_min, char_max;
    uint32_t dense; /* 0/1: the RTR_N_DENSE numbers and their length bins */
} rtr_feat_cfg;

/* One logistic head: p = sigmoid(bias + dense_w . standardized dense +
 * sum over the prompt's sparse features of w[idx] * value), predicting label
 * `label` (0: only the strong tier was right, 1: only the weak one was). The
 * model's score is sum over heads of coef * p. */
typedef struct rtr_head {
    uint32_t label;
    float coef;
    float smooth; /* the group smoothing it was trained with (for rtr_describe) */
    float bias;
    float dense_w[RTR_N_DENSE];
    uint32_t n_sparse;
    uint32_t *idx; /* [n_sparse], strictly ascending, < 2^hash_bits */
    float *w;      /* [n_sparse] */
} rtr_head;

/* The subject part (file format version 2): a softmax classifier over its own
 * hashed features (no dense block) gives P(class | text) for the n training
 * groups; the score becomes
 *     coef * sum_c P(c | text) * rate[c] + (sum_c P(c | text) * head_w[c]) * heads,
 * rate[c] being class c's smoothed expected gain on the training rows and
 * head_w[c] how much the heads' item-level score counts for it. */
typedef struct rtr_subject {
    uint32_t n; /* classes; 0: no subject part (a version 1 model) */
    rtr_feat_cfg cfg;
    float coef;
    float *rate;   /* [n] */
    float *bias;   /* [n] */
    float *head_w; /* [n] */
    float *w;      /* [2^cfg.hash_bits][n], bucket-major (one bucket's n weights together) */
} rtr_subject;

/* The neighbours part (file format version 3; router_knn.c): every labeled
 * training row as an L2-normalized tf-idf vector over hashed word unigrams
 * (2^bits buckets; idf ln(N/df) from the training rows, buckets in fewer than
 * two rows or in all of them dropped), with its gain strong_ok - weak_ok. A
 * prompt's kn is the similarity-weighted mean gain of its k most
 * cosine-similar rows (similarities clipped at 0); the subject part's
 * expected rate E becomes E + weight * (kn - E). With each row's group
 * stored (version 4) and group_weight b > 0, the subject distribution first
 * moves toward the neighbours' groups: P'(g) = (1 - b) P(g | text) + b Q(g),
 * Q the k nearest rows' similarity-weighted distribution over groups, so E
 * and the heads' multiplier become their expectations under P'. The loaded
 * part is never written to: scoring only reads it. */
enum { RTR_KNN_MAX_K = 1000, RTR_KNN_MIN_BITS = 12, RTR_KNN_MAX_BITS = 24 };

typedef struct rtr_knn {
    uint32_t k; /* 0: no neighbours part */
    float weight;
    uint32_t bits;
    uint32_t n_terms;    /* buckets with an idf */
    uint32_t *bucket;    /* [n_terms], strictly ascending, < 2^bits */
    float *idf;          /* [n_terms], > 0 */
    uint32_t n_rows;     /* stored rows (a row with no term left is not stored) */
    uint32_t *row_start; /* [n_rows + 1] into term/w16 */
    uint32_t *term;      /* [nnz]: indices into bucket/idf, strictly ascending in a row */
    uint16_t *w16;       /* [nnz]: the row's weights, IEEE half precision, in (0, 1] */
    int8_t *gain;        /* [n_rows]: -1, 0 or 1 */
    float group_weight;  /* b above; 0: the subject part's P(g | text) alone */
    uint8_t *group;      /* [n_rows]: the row's group (subject class); NULL from a v3 file */
    /* the inverted index (rtr_knn_index): term t's rows, ascending, and weights */
    uint32_t *post_start; /* [n_terms + 1] */
    uint32_t *post_row;   /* [nnz] */
    float *post_w;        /* [nnz] */
} rtr_knn;

/* What a prompt's k nearest rows say (NaN: no row of positive similarity):
 * their similarity-weighted mean gain, and the expected subject rate and
 * heads' multiplier under their groups (NaN also without stored groups). */
typedef struct rtr_knn_est {
    double kn, rate, head_w;
} rtr_knn_est;

struct rtr_model {
    rtr_feat_cfg cfg;
    uint32_t target; /* rtr_target */
    uint32_t n_heads;
    float dense_mean[RTR_N_DENSE], dense_inv_std[RTR_N_DENSE];
    rtr_head heads[RTR_MAX_HEADS];
    rtr_subject subj;
    rtr_knn knn; /* only with a subject part */
    double threshold, local_share;
};

hearth_err rtr_feat_cfg_check(const rtr_feat_cfg *cfg);

/* A prompt's features: sorted unique bucket indices with their values, and
 * the raw (unstandardized) dense numbers. Reusable across calls. */
typedef struct rtr_fvec {
    uint32_t *idx;
    float *val;
    size_t n, cap;
    uint64_t *scratch; /* hashes before sorting */
    size_t scratch_n, scratch_cap;
    float dense[RTR_N_DENSE];
} rtr_fvec;

void rtr_fvec_fini(rtr_fvec *f);
hearth_err rtr_featurize(const rtr_feat_cfg *cfg, const char *text, size_t len, rtr_fvec *f);
/* The neighbours part's features: the word tokens only (no punctuation,
 * number shapes or n-grams) hashed into 2^bits buckets, valued 1 + ln(count),
 * not normalized. */
hearth_err rtr_featurize_words(uint32_t bits, const char *text, size_t len, rtr_fvec *f);

/* A row-major sparse matrix of training examples over compacted columns. */
typedef struct rtr_csr {
    size_t n_rows, n_cols;
    size_t *row_start; /* [n_rows + 1] */
    uint32_t *col;     /* [nnz] */
    float *val;        /* [nnz] */
} rtr_csr;

void rtr_csr_fini(rtr_csr *m);

/* Minimizes mean_i c_i * logloss(y_i, x_i . w) / mean(c) + l2/2 * |w[0..n_reg)|^2
 * (y_i in [0, 1]: soft labels are allowed)
 * over w[n_cols] (columns >= n_reg, such as the bias, are not penalized).
 * w holds the starting point and receives the result. */
typedef struct rtr_lr_problem {
    const rtr_csr *x;
    const float *y;      /* [n_rows], in [0, 1] */
    const float *weight; /* [n_rows] or NULL for 1 */
    double l2;
    size_t n_reg;
    int max_iter;
    int n_threads; /* 0 or 1: the calling thread alone */
} rtr_lr_problem;

hearth_err rtr_lr_fit(const rtr_lr_problem *p, double *w, double *final_loss);

/* The L-BFGS minimizer behind rtr_lr_fit and the subject classifier: fg
 * returns the objective at w and writes its gradient into g (both [n]);
 * w holds the start and receives the result. */
typedef double (*rtr_fg_fn)(void *ctx, const double *w, double *g);
hearth_err rtr_lbfgs(size_t n, double *w, rtr_fg_fn fg, void *ctx, int max_iter,
                     double *final_loss);

/* Multinomial logistic regression: minimizes the mean of -log softmax(W x_i)[y_i]
 * + l2/2 * |W's first n_reg columns|^2 over W[x->n_cols][n_class]
 * (column-major: one column's n_class weights together), which holds the
 * start and receives the result. Same chunked, thread-count-independent sums
 * as rtr_lr_fit. */
hearth_err rtr_softmax_fit(const rtr_csr *x, const uint32_t *y, uint32_t n_class, double l2,
                           size_t n_reg, int max_iter, int n_threads, double *w);

double rtr_sigmoid(double z);
/* The first i in [lo, hi) with a[i] >= v (hi when none); a ascends. */
size_t rtr_lower_bound(const uint32_t *a, size_t lo, size_t hi, uint32_t v);
/* qsort's comparison of two uint32_t (router_train.c). */
int rtr_cmp_u32(const void *a, const void *b);

/* The score of a featurized prompt under the model (the pure part of
 * rtr_score, used by training to score validation rows). fs: the prompt's
 * subject features (NULL when the model has no subject part); kn: what its
 * neighbours say (rtr_model_kn; NaN fields: nothing, the subject part's
 * estimates stand). */
double rtr_model_score_fvec(const rtr_model *m, const rtr_fvec *f, const rtr_fvec *fs,
                            rtr_knn_est kn);
/* The same split into parts (see rtr_score_parts). */
void rtr_model_parts_fvec(const rtr_model *m, const rtr_fvec *f, const rtr_fvec *fs, rtr_knn_est kn,
                          double parts[4]);
/* What the prompt's k neighbours say under the model's neighbours part; all
 * NaN without a part or without a neighbour of positive similarity. */
hearth_err rtr_model_kn(const rtr_model *m, const char *text, size_t len, rtr_knn_est *kn);
/* P(c | text) into p[0..s->n). */
void rtr_subject_probs_fvec(const rtr_subject *s, const rtr_fvec *fs, double *p);
/* The subject part's expectations sum_c P(c | text) * rate[c] (*rate) and
 * sum_c P(c | text) * head_w[c] (*head_w); 0 and 1 without a subject part. */
void rtr_subject_expect(const rtr_subject *s, const rtr_fvec *fs, double *rate, double *head_w);
void rtr_subject_fini(rtr_subject *s);

/* Fits the neighbours part on the labeled rows d->ex[rows[sel[i]]], storing
 * each row's group (d has at most RTR_MAX_SUBJECTS groups). */
hearth_err rtr_knn_fit(const rtr_dataset *d, const size_t *rows, const size_t *sel, size_t n_sel,
                       uint32_t k, double weight, double group_weight, uint32_t bits, rtr_knn *kn);
/* Builds the inverted index from the rows (after fitting or reading). */
hearth_err rtr_knn_index(rtr_knn *kn);
/* For the prompt's word features fw (rtr_featurize_words at kn->bits): what
 * its top ks[j] rows say (ties in similarity go to the earlier row) into
 * est[j]; the group expectations use s's rates and head weights (s NULL or
 * no stored groups: NaN). Allocates its own scratch: any number of threads
 * may query one part. */
hearth_err rtr_knn_query(const rtr_knn *kn, const rtr_subject *s, const rtr_fvec *fw,
                         const uint32_t *ks, size_t n_k, rtr_knn_est *est);
void rtr_knn_fini(rtr_knn *kn);

#endif
