/*
 * eval.h - scoring a model on a text as llama-perplexity scores it
 * (llama.cpp's tools/perplexity): perplexity over chunks of the text, and
 * the KL divergence of a model's token distributions from a base model's,
 * saved in llama-perplexity's own base file ("_logits_").
 *
 * The arithmetic follows llama-perplexity's float/double choices operation
 * by operation (float logits and maximum, a double sum of expf, float
 * uint16 quantization), so that equal logits give equal results; its
 * multi-threaded sums add in another order, a difference in the last bits.
 * Nothing here prints; failures return hearth_err with hr_fail's message.
 */
#ifndef HEARTH_EVAL_H
#define HEARTH_EVAL_H

#include "hearth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- tokens and chunks (ppl.c) ------------------------------------------ */

/* The tokens of text[0..len) as llama-perplexity takes them: BOS as the
 * vocabulary adds it, special-token text left as text. *ids (malloc'd) and
 * *n on success. HEARTH_ERR_UNSUPPORTED for a model without an output layer
 * (an encoder) or a vocabulary that appends EOS (llama-perplexity refuses
 * both). */
hearth_err eval_tokenize(const hearth_model *m, const char *text, size_t len, int32_t **ids,
                         size_t *n);

/* eval_tokenize of the file at `path`, its final newline dropped (as
 * llama.cpp's -f drops it) unless `binary` (-bf: the bytes as they are). */
hearth_err eval_tokenize_file(const hearth_model *m, const char *path, bool binary, int32_t **ids,
                              size_t *n);

/* The id that replaces each chunk's first token: BOS when the vocabulary
 * adds one, else -1 (the chunk is evaluated as it stands). */
int32_t eval_chunk_bos(const hearth_model *m);

/* Evaluates chunk[0..n) (with the session's model of n_vocab tokens) from an empty KV cache (the
 * session is truncated to 0), its first token replaced by bos when bos >= 0, in decode calls of at
 * most n_batch tokens counted from the chunk's start, as llama-perplexity's batches. Positions
 * before `first` produce no logits: a call that straddles `first` is cut there (in default mode a
 * row's logits do not depend on the batch it was in). out receives the logits of positions
 * first..n-1: [n - first][n_vocab] floats. The session needs n_ctx >= n. */
hearth_err eval_chunk(hearth_session *s, int n_vocab, const int32_t *chunk, int n, int n_batch,
                      int first, int32_t bos, float *out);

/* A row's largest logit (its first index) and the sum of expf(logit - max)
 * in double: llama-perplexity's softmax normaliser. n_vocab > 0. */
typedef struct eval_norm {
    float max;
    int top;
    double sum; /* >= 1: the top term is 1 */
} eval_norm;
eval_norm eval_normalizer(const float *logits, int n_vocab);

/* -log p(tok) from one row of logits, as llama-perplexity's plain run
 * computes it. */
double eval_nll(const float *logits, int n_vocab, int32_t tok);
/* The same as its strided run (--ppl-stride) computes it: through a float
 * probability. */
double eval_nll_strided(const float *logits, int n_vocab, int32_t tok);

/* llama-perplexity's final estimate from the sums of the scored tokens'
 * negative log-likelihoods and their squares: *ppl = exp(mean) and *unc =
 * ppl * sqrt(var / (count - 1)). false (nothing written) when the variance
 * is not positive (llama-perplexity then prints no estimate). */
bool eval_ppl_final(double sum_nll, double sum_nll2, size_t count, double *ppl, double *unc);

/* ---- the base file and KL divergence (kld.c) ----------------------------
 * llama-perplexity's --kl-divergence-base file, byte for byte: "_logits_",
 * n_ctx (uint32), n_vocab, n_chunk (int32), the n_chunk * n_ctx tokens
 * (int32) the chunks were cut from, then for each chunk one row per scored
 * position (n_ctx - 1 - n_ctx/2 of them): eval_base_row_len(n_vocab) uint16,
 * the first four holding two floats, scale and the lowest log-probability
 * kept, then each token's log-probability as round((lp - min) / scale),
 * floored at 16 below the best. Native byte order (little-endian). */
#define EVAL_BASE_MAGIC       "_logits_"
#define EVAL_BASE_HEADER_SIZE 20

/* uint16 per row: the vocabulary rounded up to even, plus the two floats. */
size_t eval_base_row_len(int n_vocab);
/* Positions scored in a chunk of n_ctx tokens: n_ctx - 1 - n_ctx/2. */
int eval_scored(int n_ctx);

/* The header's 20 bytes. */
void eval_base_header(uint8_t out[EVAL_BASE_HEADER_SIZE], int n_ctx, int n_vocab, int n_chunk);

/* A base file read in place (pointers into the caller's bytes). */
typedef struct eval_base {
    int n_ctx, n_vocab, n_chunk;
    const int32_t *tokens; /* [n_chunk * n_ctx] */
    const uint16_t *rows;  /* [n_chunk * eval_scored(n_ctx)][row_len] */
    size_t row_len;
} eval_base;

/* Checks data[0..size) (4-byte aligned, as a mapping is) is a whole base
 * file: the magic, sane counts, tokens within its vocabulary and a size
 * equal to what the header promises. HEARTH_ERR_FORMAT naming what is
 * wrong otherwise. */
hearth_err eval_base_parse(const uint8_t *data, uint64_t size, eval_base *out);

/* One scored position's row of a base file from the base model's logits
 * (row: eval_base_row_len(n_vocab) uint16). Returns -log p(tok) as
 * llama-perplexity's saving run computes it (in float). */
double eval_base_row(const float *logits, int n_vocab, int32_t tok, uint16_t *row);

/* Running sums over the scored positions of a --kl-divergence run. */
typedef struct eval_kld {
    double sum_nll, sum_nll2;           /* the model's -log p(tok) */
    double sum_nll_base, sum_nll_base2; /* the base's, from its row */
    double sum_nll_nll_base;
    double sum_kld, sum_kld2;                    /* KL(base || model) per position */
    double sum_p_diff, sum_p_diff2, sum_p_diff4; /* p(tok) - p_base(tok) */
    float max_p_diff;
    size_t n_same_top; /* positions where both rank the same token first */
    size_t count;
} eval_kld;

/* Adds one position: the model's logits against the base's row for the
 * token that follows, tok. *kld and *p_diff receive the position's KL
 * divergence and change in p(tok) (for the percentiles). */
void eval_kld_add(eval_kld *k, const float *logits, int n_vocab, const uint16_t *base_row,
                  int32_t tok, float *kld, float *p_diff);
/* eval_kld_add in two steps, so that positions can be computed apart (on
 * several threads) and added in order: one position's figures, then their
 * addition to the sums. */
typedef struct eval_kld_pos {
    float nll, nll_base; /* -log p(tok), the model's and the base's */
    double kld;
    float p_diff;
    bool same_top;
} eval_kld_pos;
eval_kld_pos eval_kld_row(const float *logits, int n_vocab, const uint16_t *base_row, int32_t tok);
void eval_kld_accum(eval_kld *k, const eval_kld_pos *r);

/* llama-perplexity's mean with its uncertainty (0 for 10 values or fewer). */
typedef struct eval_stat {
    double val, unc;
} eval_stat;
eval_stat eval_mean(double sum, double sum2, size_t count);
/* Covariance of the means of a and b (0 under 10 values). */
double eval_cov(double sum_a, double sum_b, double sum_ab, size_t count);
/* The value at `fraction` of sorted[0..n), n > 0, interpolated as
 * llama-perplexity interpolates; and the median. */
float eval_percentile(const float *sorted, size_t n, float fraction);
float eval_median(const float *sorted, size_t n);

/* ---- a chunk's rows on the model's threads (rows.c) -----------------------
 * Row j of logits ([n_rows][n_vocab]) is scored against next[j]; each
 * row's figures are what the one-row functions above give, whatever the
 * number of threads, and the caller adds them up in order. */
typedef enum eval_rows_kind {
    EVAL_ROWS_NLL,         /* nll[j] = eval_nll */
    EVAL_ROWS_NLL_STRIDED, /* nll[j] = eval_nll_strided */
    EVAL_ROWS_BASE,        /* nll[j] = eval_base_row, its row into base + j * row_len */
    EVAL_ROWS_KLD          /* kld[j] = eval_kld_row against base_in + j * row_len */
} eval_rows_kind;

typedef struct eval_rows {
    eval_rows_kind kind;
    const float *logits;
    int n_vocab, n_rows;
    const int32_t *next;
    uint16_t *base;          /* EVAL_ROWS_BASE */
    const uint16_t *base_in; /* EVAL_ROWS_KLD */
    size_t row_len;          /* both: eval_base_row_len(n_vocab) */
    double *nll;             /* [n_rows] */
    eval_kld_pos *kld;       /* [n_rows] */
} eval_rows;
void eval_rows_score(const hearth_model *m, const eval_rows *job);

/* Runs part(ctx, ith, nth) for every part on the model's pool (on this
 * thread alone when it has one thread or n < 2 items). */
typedef void (*eval_part_fn)(void *ctx, int ith, int nth);
void eval_parallel(const hearth_model *m, size_t n, eval_part_fn part, void *ctx);

/* ---- multiple-choice benchmarks (tasks.c, choice.c) ---------------------
 * llama-perplexity's --hellaswag, --winogrande and --multiple-choice: each
 * task is a context and its candidate endings; the model picks the ending
 * whose tokens it finds most likely (the mean log-probability per token,
 * the shared context evaluated once). Task files are read and chosen as
 * llama-perplexity reads and chooses them (its random picks from
 * std::mt19937 seeded with 1, as GCC's libstdc++ draws from it). */

/* std::mt19937 (Matsumoto & Nishimura, 1998). */
typedef struct eval_mt {
    uint32_t s[624];
    int i;
} eval_mt;
void eval_mt_seed(eval_mt *mt, uint32_t seed);
uint32_t eval_mt_next(eval_mt *mt);
/* std::uniform_int_distribution<size_t>(0, n - 1) on mt as libstdc++ 11 and
 * later computes it (Lemire's multiply-and-reject), 1 <= n <= 2^32. */
uint32_t eval_mt_below(eval_mt *mt, uint64_t n);

typedef struct eval_task {
    char *context;  /* HellaSwag: "label: ctx"; WinoGrande: the sentence before '_';
                       multiple choice: the question */
    char *second;   /* WinoGrande: the sentence after '_'; else NULL */
    char **endings; /* [n_endings]: the candidates (WinoGrande: the two choices) */
    int n_endings;
    int gold;        /* HellaSwag: the right ending (0-3); WinoGrande: 1 or 2; else -1 */
    int32_t *labels; /* multiple choice: [n_endings], 1 marks a right answer; else NULL */
} eval_task;

typedef struct eval_tasks {
    eval_task *v;
    size_t n;
    size_t n_total;       /* tasks in the file */
    size_t n_skipped;     /* WinoGrande: lines that are not a task (llama.cpp skips them) */
    size_t first_skipped; /* the first such line (1-based) */
    const char *skip_why; /* and why (static text) */
} eval_tasks;
void eval_tasks_free(eval_tasks *t);

/* HellaSwag's text (6 lines a task: context, label 0-3, four endings; the
 * file's final newline already dropped, as -f drops it): min(n_want, all)
 * tasks in llama-perplexity's random order (always shuffled). */
hearth_err eval_hellaswag_read(const char *text, size_t len, size_t n_want, eval_tasks *out);
/* WinoGrande's CSV (index,sentence with one '_',choice1,choice2,answer 1|2;
 * the sentence may be in double quotes): every task, or n_want picked at
 * random when 0 < n_want < the count. As llama-perplexity, lines that do not
 * parse are skipped (counted in out), and the text's last line is never
 * read (its reader stops at the end of the file before using it). */
hearth_err eval_winogrande_read(const char *text, size_t len, size_t n_want, eval_tasks *out);
/* llama.cpp's binary multiple-choice file (MMLU, ARC, TruthfulQA, its
 * HellaSwag): uint32 n_task, n_task uint32 offsets, then per task a string
 * (uint32 length + bytes) question, and two answer sets (uint32 n <= 100, n
 * strings, n int32 labels), only the first (single right answer) scored.
 * Every task in file order, or n_want picked at random (0 < n_want < n_task)
 * read at their offsets. */
hearth_err eval_mc_read(const uint8_t *data, size_t size, size_t n_want, eval_tasks *out);

/* One (row, token) pair: the log-probability of `tok` under logits row `row`. */
typedef struct eval_pair {
    size_t row;
    int32_t tok;
} eval_pair;
/* log p(tok) for each pair as llama-perplexity's compute_logprobs computes
 * it (a float maximum and a float sum of expf), spread over the model's
 * threads; out[i] is the same whatever their number. */
void eval_logprobs(const hearth_model *m, const float *rows, int n_vocab, const eval_pair *pairs,
                   size_t n, float *out);
/* log p(tok) through llama-perplexity's softmax (a double sum, a float
 * probability): how it scores an ending's first token. */
float eval_softmax_logprob(const float *row, int n_vocab, int32_t tok);

/* Scores tasks on a session: the shared prefix of a task's sequences is
 * evaluated once, then each sequence after it from the same KV cache. */
typedef struct eval_scorer {
    hearth_session *s;
    const hearth_model *m;
    int n_vocab;
    int max_tokens; /* a task may hold at most this many tokens (llama.cpp's context) */
    float *rows;    /* [cap_rows][n_vocab] */
    size_t cap_rows;
    eval_pair *pairs; /* [cap_pairs] */
    float *lp;        /* [cap_pairs] */
    size_t cap_pairs;
} eval_scorer;
void eval_scorer_init(eval_scorer *sc, hearth_session *s, const hearth_model *m, int max_tokens);
void eval_scorer_fini(eval_scorer *sc);

/* HellaSwag (sum in double) and multiple choice (sum in float, as llama.cpp
 * does): score[e] = the mean log-probability of ending e's tokens after
 * "context ending"'s shared prefix; *best = the first highest.
 * HEARTH_ERR_CONTEXT_FULL when the task needs more than max_tokens
 * (the prefix once plus each ending's tokens after it), HEARTH_ERR_FORMAT
 * when its sequences share no token or an ending adds none. */
hearth_err eval_score_endings(eval_scorer *sc, const eval_task *t, bool float_sum, double *score,
                              int *best);
/* WinoGrande: the mean log-probability of the words after the choice (of
 * the whole sentence after the shared prefix when either part after it is
 * 3 tokens or fewer), its last token left out, as llama-perplexity
 * computes it, its quirk included (there the second choice's first token is
 * scored with the first sequence's last logits). */
hearth_err eval_score_winogrande(eval_scorer *sc, const eval_task *t, float score[2]);

#endif
