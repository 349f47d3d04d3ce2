/*
 * router.h - the learned pre-router: linear models over hashed n-grams and a
 * few structural numbers of the prompt text, a softmax classifier of the
 * prompt's subject, and the outcomes of the most similar training prompts,
 * that score how much a query needs the strong (cloud) tier before anything
 * is generated. A higher score means
 * "more likely needs the strong tier"; the gateway routes a query to the
 * strong tier when score >= threshold (the threshold is calibrated on a set
 * of prompts by rtr_calibrate and stored in the router file).
 *
 * Gateway use (the whole API a serving path needs):
 *     rtr_model *r; rtr_load(path, &r);            once, at start-up
 *     double s;     rtr_score(r, text, len, &s);   per request, any thread
 *     bool strong = s >= rtr_threshold(r);
 *     rtr_free(r);
 * A loaded model is immutable: rtr_score may be called concurrently from any
 * number of threads on one model (it allocates its own scratch per call).
 *
 * The rest (datasets, CSV/JSONL parsing, training, metrics, calibration) is
 * what `hearth router` and the tests use. The file format and the method are
 * described in docs/router.md.
 */
#ifndef HEARTH_ROUTER_H
#define HEARTH_ROUTER_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- model */

typedef struct rtr_model rtr_model;

/* Loads a router file (untrusted input: every count and size is checked, and
 * the checksum must match). *out is set only on success; free with rtr_free. */
hearth_err rtr_load(const char *path, rtr_model **out);
/* The same from memory (the bytes are copied; `data` may be freed after). */
hearth_err rtr_load_mem(const uint8_t *data, size_t size, rtr_model **out);
/* Writes the model (atomically: a temporary file renamed over `path`). */
hearth_err rtr_save(const rtr_model *m, const char *path);
/* Serializes into a heap buffer the caller frees. */
hearth_err rtr_save_mem(const rtr_model *m, uint8_t **data, size_t *size);
void rtr_free(rtr_model *m); /* NULL is a no-op */

/* The score of one prompt (UTF-8 or any bytes; only the first
 * RTR_MAX_TEXT_BYTES are read). Thread-safe on a shared model. Fails only when
 * memory runs out. */
hearth_err rtr_score(const rtr_model *m, const char *text, size_t len, double *score);
enum { RTR_MAX_TEXT_BYTES = 64 << 10 };

/* The calibrated threshold (strong when score >= threshold), and the share of
 * the calibration set it kept local; a model never calibrated has threshold
 * +inf (everything stays local) and local share NaN. */
double rtr_threshold(const rtr_model *m);
double rtr_calibrated_local_share(const rtr_model *m);
void rtr_set_threshold(rtr_model *m, double threshold, double local_share);

/* The score of one prompt split into its parts, for analysis: [0] the subject
 * part's expected rate E = sum_g P(g | text) * rate(g) (0 without a subject
 * part; with a neighbours part, E + knn_weight * (kn - E)),
 * [1] the first head set, [2] the plain-label heads (item_weight), [3] the
 * heads' multiplier sum_g P(g | text) * head_weight(g) (1 without a subject
 * part); the score is subject_weight*[0] + [3]*([1] + [2]). */
hearth_err rtr_score_parts(const rtr_model *m, const char *text, size_t len, double parts[4]);
/* The subject classifier: the number of classes (the training data's groups,
 * in its order; 0 without a subject part), and P(class | text) into p[0..n). */
size_t rtr_subject_classes(const rtr_model *m);
hearth_err rtr_subject_probs(const rtr_model *m, const char *text, size_t len, double *p);
/* The subject part's weight (0 without one); setting it on a model without
 * one does nothing. */
double rtr_subject_weight(const rtr_model *m);
void rtr_set_subject_weight(rtr_model *m, double w);

/* The neighbours part (file format version 3), for analysis: the subject
 * part's expected rate E before the blend into *expect, and into kn[j] the
 * similarity-weighted mean gain of the prompt's ks[j] most similar training
 * prompts (E where none has a positive similarity). Fails on a model without
 * the part. */
hearth_err rtr_knn_parts(const rtr_model *m, const char *text, size_t len, const uint32_t *ks,
                         size_t n_k, double *expect, double *kn);
/* The neighbour-based subject estimate (file format version 4), for
 * analysis: the subject part's expectations of the rate and of the heads'
 * multiplier under P(g | text) into *expect and *head_w, and into rate[j] and
 * rate_head_w[j] the same under the groups of the prompt's ks[j] most similar
 * training prompts (similarity-weighted; *expect and *head_w where none has a
 * positive similarity). Fails on a model without the part or its groups (a
 * version 3 file), and on more than 64 values of k. */
hearth_err rtr_knn_subject_parts(const rtr_model *m, const char *text, size_t len,
                                 const uint32_t *ks, size_t n_k, double *expect, double *head_w,
                                 double *rate, double *rate_head_w);
/* Its K, weight and group weight (0 without a neighbours part). */
unsigned rtr_knn_k(const rtr_model *m);
double rtr_knn_weight(const rtr_model *m);
double rtr_knn_subject_weight(const rtr_model *m);

/* A one-line human-readable description (target, features, heads, threshold). */
void rtr_describe(const rtr_model *m, char *buf, size_t cap);

/* -------------------------------------------------------------- datasets */

/* One labeled prompt. `group` indexes rtr_dataset.groups (the CSV file's base
 * name, or a JSONL line's "group" field): a training-time label used by the
 * baseline, the group smoothing and the per-benchmark reports, never as a
 * feature. */
typedef struct rtr_example {
    char *prompt;
    size_t prompt_len;
    char *id; /* JSON text of the id (a quoted string or a number), never NULL */
    bool weak_ok, strong_ok, labeled;
    uint32_t group;
} rtr_example;

typedef struct rtr_dataset {
    rtr_example *ex;
    size_t n, cap;
    char **groups;
    size_t n_groups;
} rtr_dataset;

/* Column names for CSV files; NULL picks the default: a column named
 * "weak_ok"/"strong_ok" when present, else RouteLLM's
 * "mistralai/Mixtral-8x7B-Instruct-v0.1" / "gpt-4-1106-preview". */
typedef struct rtr_load_opts {
    const char *prompt_col, *weak_col, *strong_col;
    bool require_labels; /* false for `score`: prompt (and id) suffice */
} rtr_load_opts;

void rtr_dataset_init(rtr_dataset *d);
void rtr_dataset_fini(rtr_dataset *d);
/* Appends a copy of one example: this is what a ledger reader calls with the
 * (prompt, weak_ok, strong_ok) triples it derives. `id` is JSON text (NULL:
 * the example's 1-based position); `group` may be NULL. */
hearth_err rtr_dataset_add(rtr_dataset *d, const char *prompt, size_t len, bool weak_ok,
                           bool strong_ok, const char *id, const char *group);
/* Appends every row of a file: `.csv` is read as CSV (RFC 4180), anything else
 * as JSONL ({"prompt": str, "weak_ok": bool, "strong_ok": bool, "id": any,
 * "group": str}). Errors name the file and line. The group of a CSV row is the
 * file's base name without extension. */
hearth_err rtr_dataset_load(rtr_dataset *d, const char *path, const rtr_load_opts *opts);
/* Removes examples whose prompt equals (after collapsing whitespace) a line's
 * "eval_prompt" in a RouteLLM contaminated_prompts.jsonl; *n_removed counts. */
hearth_err rtr_dataset_decontaminate(rtr_dataset *d, const char *path, size_t *n_removed);
/* The deterministic hash split: true when the prompt falls in the first
 * `pct` of 100 buckets for `salt` (FNV-1a 64 over the salt, a 0xff byte and
 * the text with whitespace runs collapsed, finalized by MurmurHash3's mixer).
 * Equal prompts, and prompts that differ only in spacing, land together. */
bool rtr_split_pick(const char *salt, const char *text, size_t len, unsigned pct);
/* The bucket (0..99) behind rtr_split_pick: pick == bucket < pct. */
unsigned rtr_split_bucket(const char *salt, const char *text, size_t len);

/* Labels from the gateway's ledger (an SQLite file written by gw_ledger with
 * prompts recorded): every non-degraded row with both a local and a remote
 * answer gives (prompt, weak_ok = the answers agree, strong_ok = true); every
 * row answered locally after passing the confidence check gives (prompt,
 * true, true). Other rows say nothing about one of the tiers and are skipped.
 * Examples get the group "ledger". The file is opened read-only. */
typedef struct rtr_ledger_counts {
    size_t rows;       /* rows with a prompt and a successful answer */
    size_t both;       /* with both answers */
    size_t weak_wrong; /* of those, where the answers disagreed */
    size_t kept_local; /* passed the confidence check */
    size_t skipped;
} rtr_ledger_counts;

hearth_err rtr_dataset_from_ledger(rtr_dataset *d, const char *path, rtr_ledger_counts *counts);
/* The mean log-probabilities of the local answers the confidence check judged
 * (successful, non-degraded rows), in ledger order: what `hearth router
 * calibrate --confidence` turns into the gateway's mean_logprob threshold.
 * *conf_mean is the caller's to free (NULL when n is 0). */
hearth_err rtr_ledger_confidences(const char *path, double **conf_mean, size_t *n);
/* Whether two answers agree: the last number in each when both have one,
 * else a token-overlap F1 of at least 0.7 (case-insensitive). */
bool rtr_answers_agree(const char *a, size_t na, const char *b, size_t nb);

/* -------------------------------------------------------------- CSV reader */

/* An RFC 4180 reader over a buffer: fields separated by commas, records by
 * LF or CRLF, fields optionally quoted with "" for a literal quote; quoted
 * fields may hold commas and line breaks. A quote inside an unquoted field or
 * text after a closing quote is an error, as is an unterminated quote. */
typedef struct rtr_csv {
    const char *p, *end;
    size_t line; /* 1-based line where the current record starts */
    char *buf;   /* unquoted field text, owned */
    size_t buf_len, buf_cap;
    size_t *offs; /* field start offsets into buf */
    size_t *lens;
    size_t n_fields, fields_cap;
} rtr_csv;

void rtr_csv_init(rtr_csv *c, const char *data, size_t len);
void rtr_csv_fini(rtr_csv *c);
/* Reads the next record: *n_fields set, fields read with rtr_csv_field.
 * Returns HEARTH_OK with *got = false at the end of the input. */
hearth_err rtr_csv_next(rtr_csv *c, bool *got);
const char *rtr_csv_field(const rtr_csv *c, size_t i, size_t *len); /* NUL-terminated */

/* --------------------------------------------------------------- training */

/* What the score predicts. RTR_TARGET_GAIN trains two heads, P(only the strong
 * tier is right) and P(only the weak tier is right), and scores their
 * difference: the expected quality gained by sending the query to the strong
 * tier. RTR_TARGET_NEEDS_STRONG trains the first head alone. */
typedef enum rtr_target { RTR_TARGET_NEEDS_STRONG = 0, RTR_TARGET_GAIN = 1 } rtr_target;

/* With group_smooth > 0 the labels are blended toward their group's mean, so
 * the heads learn from the text how hard the prompt's group (an MMLU subject)
 * is (a group alone in its benchmark keeps its labels); item_weight > 0 then
 * adds a second set of heads trained on the plain labels (strength l2_item),
 * whose score is added with that weight. */
typedef struct rtr_train_params {
    rtr_target target;
    double l2;                   /* L2 strength on the mean log-loss (e.g. 1e-3) */
    int max_iter;                /* L-BFGS iterations (e.g. 300) */
    unsigned hash_bits;          /* sparse space 2^hash_bits, 12..24 */
    unsigned word_ngrams;        /* word n-grams 1..word_ngrams (0..3) */
    unsigned char_min, char_max; /* char n-grams inside words (0 = none; 2..6) */
    bool dense;                  /* the structural numbers (length, digits, choices, ...) */
    double group_smooth;         /* 0..1: blend each label toward its group's mean (the group
                                    is a training-time label only, never a feature) */
    double item_weight;          /* >= 0: weight of the plain-label heads (with group_smooth > 0) */
    double l2_item;              /* their L2 strength (0: l2) */
    int n_threads;               /* for the solver; 0: the machine's cores (the result does not
                                    depend on it) */
    /* The subject part (file format version 2): a softmax classifier learns
     * P(group | text) from the labeled rows' groups (training-time labels),
     * and the score gains subject_weight * sum_g P(g | text) * rate(g), rate(g)
     * being the group's expected gain on the training rows (shrunk toward its
     * benchmark's by 20 pseudo-examples). 0: no subject part. */
    double subject_weight;
    unsigned subject_bits;      /* its own hashed space, 12..18 */
    unsigned subject_chars;     /* 0: words only; else char n-grams 3..subject_chars too */
    double subject_l2;          /* its L2 strength on the mean log-loss */
    double subject_head_weight; /* how much the heads count for a group of a benchmark with
                                   several groups (a benchmark of one group: 1) */
    int subject_iter;           /* its L-BFGS iterations */
    /* The neighbours part (file format version 3; with the subject part
     * only): the training prompts as tf-idf vectors of hashed words, and the
     * subject part's expected rate E becomes E + knn_weight * (kn - E), kn the
     * similarity-weighted mean gain of the knn_k most similar. 0: none. */
    unsigned knn_k;    /* 0..1000 */
    double knn_weight; /* 0..1 */
    unsigned knn_bits; /* its hashed word space, 12..24 */
    /* The neighbour-based subject estimate (file format version 4): before
     * the blend above, P(g | text) becomes (1 - b) P(g | text) + b Q(g), Q the
     * knn_k nearest prompts' similarity-weighted distribution over their
     * groups, for both of the subject part's expectations. 0: none. */
    double knn_subject_weight; /* b, 0..1 */
} rtr_train_params;

rtr_train_params rtr_train_default_params(void);

/* Trains a model on the labeled examples d->ex[rows[i]] (all when rows is
 * NULL). *out is set only on success. */
hearth_err rtr_train(const rtr_dataset *d, const size_t *rows, size_t n_rows,
                     const rtr_train_params *p, rtr_model **out);

/* Hyper-parameter search on the training rows only, by n_folds-fold
 * cross-validation (folds by prompt hash): each candidate in grid[] is fitted
 * n_folds times and scored on the rows it did not see, by the mean APGR over
 * the data's benchmarks (groups whose names share the text before the first
 * '_', e.g. mmlu_anatomy and mmlu_virology are "mmlu"); the best is then
 * refitted on all the rows. `log` (may be NULL) sees each candidate's
 * cross-validated APGR. *best and *out are set only on success. */
typedef void (*rtr_tune_log)(void *user, const rtr_train_params *p, double cv_apgr);
hearth_err rtr_train_tune(const rtr_dataset *d, const size_t *rows, size_t n_rows,
                          const rtr_train_params *grid, size_t n_grid, unsigned n_folds,
                          rtr_tune_log log, void *user, rtr_train_params *best, rtr_model **out);

/* The benchmark a group belongs to: its name up to the first '_' (the whole
 * name when it has none). Writes at most cap bytes including the NUL. */
void rtr_group_source(const char *group, char *out, size_t cap);

/* ---------------------------------------------------------------- metrics */

/* RouteLLM's evaluation of a router on labeled data (scores and outcomes in
 * the same order). Quality at a strong-call share x is the mean over queries
 * of strong_ok when routed strong, else weak_ok, with the top-scoring share x
 * routed strong (ties are split in proportion: the curve is linear between
 * distinct scores). PGR(x) = (quality(x) - weak_quality) / (strong_quality -
 * weak_quality). APGR is the trapezoid area under PGR over x in [0, 1] on
 * every distinct cut point; apgr_routellm is RouteLLM's own estimate (the 11
 * cut points at the score deciles). cpt50/cpt80: the smallest share x where
 * PGR reaches 0.5/0.8 (interpolated; NaN if never). local_at_95: 1 - the
 * smallest x whose quality reaches 95 % of strong_quality. */
typedef struct rtr_metrics {
    size_t n;
    double weak_quality, strong_quality;
    double apgr, apgr_routellm, cpt50, cpt80, local_at_95;
    double pgr_at[11]; /* PGR at x = 0, 0.1, ..., 1 */
} rtr_metrics;

hearth_err rtr_metrics_compute(const double *scores, const bool *weak_ok, const bool *strong_ok,
                               size_t n, rtr_metrics *out);
/* The same figures for a router that picks queries at random (the expected
 * curve: PGR(x) = x) and for the oracle that sends exactly the queries only
 * the strong tier answers, most of them first. */
void rtr_metrics_random(const bool *weak_ok, const bool *strong_ok, size_t n, rtr_metrics *out);
hearth_err rtr_metrics_oracle(const bool *weak_ok, const bool *strong_ok, size_t n,
                              rtr_metrics *out);

/* The threshold that keeps `local_share` (0..1) of the scores below it:
 * strong when score >= *threshold. *achieved is the share actually kept local
 * (ties may make it differ). */
hearth_err rtr_calibrate(const double *scores, size_t n, double local_share, double *threshold,
                         double *achieved);

/* --------------------------------------------------------------- baseline */

/* The simple baseline of the router-quality issue: each group's smoothed rate
 * of "only the strong tier was right" on the training rows plus a small term
 * in the prompt's length, fitted on `train_rows` and scored on `rows`. */
hearth_err rtr_baseline_scores(const rtr_dataset *d, const size_t *train_rows, size_t n_train,
                               const size_t *rows, size_t n_rows, double *scores);

#endif
