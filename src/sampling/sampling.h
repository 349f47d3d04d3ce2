/*
 * sampling.h - the sampling layer: from a row of logits to one token id, and
 * the stop-string matcher that decides how much generated text may be shown.
 *
 * A sampler (smp_sampler) is a fixed chain configured once by smp_params:
 *
 *     logit bias -> penalties -> DRY -> top-n-sigma -> top-k -> typical -> top-p
 *       -> min-p -> XTC -> temperature -> draw
 *
 * the order of llama.cpp's default chain, or the stages smp_params.stages
 * lists (llama.cpp's "samplers": any order, repeats, left-out stages do not
 * run) between the bias and the draw; a stage whose setting says "off" is
 * skipped (stages.c: typical, top-n-sigma, XTC, dynamic temperature; dry.c:
 * DRY). Mirostat (mirostat.c) replaces it, as in llama.cpp, by logit bias ->
 * temperature -> Mirostat's own truncation and draw: no penalties, DRY or
 * other truncation. Temperature <= 0 means greedy: the temperature stage keeps
 * only the best candidate there (as llama.cpp's temperature 0) and the draw
 * takes it without a random number; in the default chain only typical and XTC
 * can remove the argmax, so without them it is the argmax of the penalized
 * logits. A chain without the temperature stage is never greedy. Every
 * ordering is total: logit descending, then token id ascending, so ties go to
 * the lowest id and results never depend on sort stability.
 *
 * Logit biases (OpenAI's logit_bias) come first: each is added to its
 * token's raw logit, and a bias <= SMP_BIAS_BAN bans the token (it is not a
 * candidate at all). A constraint (JSON Schema, json_schema_mask.c; JSON mode
 * is its schema {"type":"object"}; a GBNF grammar, gbnf_mask.c) runs before
 * every stage: tokens whose bytes cannot continue the output are not
 * candidates at all.
 *
 * Memory: smp_new allocates everything for n_vocab; sampling a token allocates
 * nothing. A sampler is not thread-safe; use one per sequence.
 *
 * Depends only on src/core.
 */
#ifndef HEARTH_SAMPLING_H
#define HEARTH_SAMPLING_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the sampler chain (sampler.c) --------------------------------------- */

/* smp_params.seed value asking smp_new for a seed from hr_seed_from_entropy(). */
#define SMP_SEED_RANDOM UINT64_MAX

/* The vocabulary as bytes, what a constraint reads (vocab_bytes.c). */
typedef struct smp_vocab smp_vocab;

/* A compiled JSON Schema (json_schema.h). */
typedef struct smp_schema smp_schema;

/* A compiled GBNF grammar (gbnf.h). */
typedef struct smp_grammar smp_grammar;

typedef enum smp_constraint {
    SMP_CONSTRAINT_NONE = 0,
    SMP_CONSTRAINT_JSON_OBJECT, /* the output is one JSON object, then end of generation */
    SMP_CONSTRAINT_JSON_SCHEMA, /* one JSON value valid against smp_params.json_schema
                                   (json_schema.h), then end of generation */
    SMP_CONSTRAINT_GRAMMAR      /* a text of the GBNF grammar smp_params.grammar (gbnf.h); the
                                   end of generation only once the text is whole */
} smp_constraint;

/* A DRY sequence breaker as tokens (llama.cpp's processed form, built by the
 * engine from a string and the vocabulary): `head` followed by tail[0..n_tail)
 * in the text ends every repetition DRY sees there; a head with no tail
 * (a token whose text holds the whole string) is also never penalized. */
enum { SMP_DRY_TAIL_MAX = 20 };
typedef struct smp_dry_breaker {
    int32_t head;
    int32_t n_tail; /* in [0, SMP_DRY_TAIL_MAX] */
    int32_t tail[SMP_DRY_TAIL_MAX];
} smp_dry_breaker;

/* The chain's stages, llama.cpp's sampler types (common_sampler_type), with
 * hearth_sampler_stage's values (stage_names.c has their names). */
typedef enum smp_stage {
    SMP_STAGE_PENALTIES = 1,
    SMP_STAGE_DRY,
    SMP_STAGE_TOP_N_SIGMA,
    SMP_STAGE_TOP_K,
    SMP_STAGE_TYPICAL_P,
    SMP_STAGE_TOP_P,
    SMP_STAGE_MIN_P,
    SMP_STAGE_XTC,
    SMP_STAGE_TEMPERATURE,
    SMP_STAGE_LAST = SMP_STAGE_TEMPERATURE
} smp_stage;
enum { SMP_STAGES_MAX = 32, SMP_STAGES_NONE = -1 };

typedef struct smp_params {
    float temperature;       /* <= 0: greedy; logits are divided by it otherwise */
    int32_t top_k;           /* keep the k best; <= 0: off */
    float top_p;             /* keep the smallest best-first set whose probability >= top_p;
                                in [0, 1], 1: off */
    float min_p;             /* keep tokens with p >= min_p * p_max; in [0, 1], 0: off */
    int32_t penalty_last_n;  /* window of accepted tokens the penalties look at; 0: off.
                                Callers map llama.cpp's -1 ("the context") to n_ctx. */
    float repeat_penalty;    /* > 0; 1: off. Positive logits / it, negative ones * it */
    float frequency_penalty; /* subtracted once per occurrence in the window; 0: off */
    float presence_penalty;  /* subtracted once if the token occurs in the window; 0: off */
    uint64_t seed;           /* SMP_SEED_RANDOM: pick one at smp_new */
    smp_constraint constraint;
    const smp_vocab *vocab;  /* required by a constraint; borrowed: must outlive the sampler */
    const char *json_schema; /* SMP_CONSTRAINT_JSON_SCHEMA: the schema text, compiled by smp_new
                                (the string need not outlive the call) unless `schema` is set */
    smp_schema *schema;      /* SMP_CONSTRAINT_JSON_SCHEMA: the schema compiled already
                                (smp_schema_compile); smp_new takes it over, on failure too */
    const char *grammar;     /* SMP_CONSTRAINT_GRAMMAR: the GBNF text, compiled by smp_new
                                (need not outlive the call) unless `gbnf` is set */
    smp_grammar *gbnf;       /* SMP_CONSTRAINT_GRAMMAR: the grammar compiled already
                                (smp_grammar_compile); smp_new takes it over, on failure too */
    const hearth_logit_bias *logit_bias; /* [n_logit_bias] (id, bias) pairs added to the raw
                                            logits before every stage; copied by smp_new
                                            (need not outlive the call). ids in [0, n_vocab),
                                            biases not NaN or +inf; the same id adds up */
    size_t n_logit_bias;                 /* at most SMP_BIAS_MAX */
    /* A thinking budget (think.c) when think_on: once think_budget (>= 0)
     * tokens followed think_start without think_end, only think_end is drawn.
     * think_open: the prompt opened the block. Not with a constraint. */
    bool think_on, think_open;
    int32_t think_budget;
    int32_t think_start, think_end;
    /* llama.cpp's other stages, each off by default (llama.cpp's defaults for
     * the knobs): */
    float typical_p;            /* locally typical sampling; in [0, 1], 1: off */
    float top_n_sigma;          /* keep logits >= max - n * their standard deviation; <= 0: off */
    float xtc_probability;      /* XTC: chance that a draw removes its likeliest tokens; in
                                   [0, 1], 0: off */
    float xtc_threshold;        /* ... every token with p >= it but the least likely of them;
                                   in [0, 1], > 0.5: off (0.1) */
    int32_t mirostat;           /* 0: off, 1: Mirostat, 2: Mirostat 2.0 */
    float mirostat_tau;         /* target surprise, bits, >= 0 (5) */
    float mirostat_eta;         /* learning rate, >= 0 (0.1) */
    float dry_multiplier;       /* DRY: penalty multiplier, >= 0; 0: off */
    float dry_base;             /* >= 1 (1.75) */
    int32_t dry_allowed_length; /* repetitions longer than this are penalized, >= 0 (2) */
    int32_t dry_penalty_last_n; /* accepted tokens scanned; 0: off (64). Callers map
                                   llama.cpp's -1 to n_ctx. */
    const smp_dry_breaker *dry_breakers; /* [n_dry_breakers], copied by smp_new */
    size_t n_dry_breakers;
    int32_t min_keep;        /* top-p, min-p, typical and XTC keep at least this many; >= 0 (0) */
    float dynatemp_range;    /* > 0: dynamic temperature in [t - range, t + range]; <= 0: off */
    float dynatemp_exponent; /* ... the normalized entropy's exponent, finite (1) */
    int32_t n_stages;        /* 0: the default chain; SMP_STAGES_NONE: no stage; else
                                stages[0..n_stages), n_stages <= SMP_STAGES_MAX */
    uint8_t stages[SMP_STAGES_MAX]; /* smp_stage values */
} smp_params;

/* ---- the stages' names (stage_names.c) --------------------------------------- */

/* llama.cpp's names of the stages: the canonical one (smp_stage_name), its
 * kebab-case and its form without '_' ("top-k", "topk"), "nucleus", "temp",
 * "typ", and older llama.cpp's "typical", "typical-p" with "typical_p";
 * case-insensitive, name[0..len). Returns the stage; SMP_STAGE_NOT_HERE for
 * a sampler of llama.cpp's that Hearth does not have (infill, adaptive_p
 * and its aliases); SMP_STAGE_UNKNOWN for any other text. */
enum { SMP_STAGE_UNKNOWN = -1, SMP_STAGE_NOT_HERE = 0 };
int smp_stage_by_name(const char *name, size_t len);
/* The same for llama.cpp's letters (--sampler-seq): e d s k y p m x t; i
 * and a (infill, adaptive_p) are SMP_STAGE_NOT_HERE. */
int smp_stage_by_letter(char c);
/* text[0..len) as a name (or, letter, as one letter): the stage, or 0 with
 * the problem written to msg ("'foo' is not a sampler (penalties, ...)", or
 * "'infill' is a sampler of llama.cpp's that Hearth does not have"), for the
 * caller to prefix with where it was. */
int smp_stage_parse(const char *text, size_t len, bool letter, char *msg, size_t cap);
/* The canonical name ("typ_p" for SMP_STAGE_TYPICAL_P); "?" outside the enum. */
const char *smp_stage_name(int stage);
/* llama.cpp's default chain: *out gets its n stages. */
size_t smp_default_stages(const uint8_t **out);

/* ---- the thinking budget (think.c) ----------------------------------------- */

/* Where a budgeted reply stands (llama.cpp's reasoning-budget sampler):
 * IDLE until the block opens, COUNTING its tokens, FORCING its end once the
 * budget is spent, DONE after it (a new block re-arms it). */
typedef enum smp_think_state {
    SMP_THINK_IDLE,
    SMP_THINK_COUNTING,
    SMP_THINK_FORCING,
    SMP_THINK_DONE
} smp_think_state;
typedef struct smp_think {
    smp_think_state state;
    int32_t budget, left, start, end;
} smp_think;
void smp_think_init(smp_think *t, int32_t budget, int32_t start, int32_t end, bool open);
/* The token the caller kept. */
void smp_think_advance(smp_think *t, int32_t token);

/* A bias at or below this bans its token (OpenAI: "-100 should result in a
 * ban"); -INFINITY is one. A sum of biases for one id is compared. */
#define SMP_BIAS_BAN (-100.0f)
/* Entries smp_new accepts: far beyond any request (the server caps at 1024),
 * keeps a bad argument from becoming a huge allocation. */
enum { SMP_BIAS_MAX = 1 << 20 };

/* llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * a window of 64 with every penalty off, a random seed; typical, top-n-sigma,
 * XTC, Mirostat, DRY and dynamic temperature off (their knobs at llama.cpp's
 * defaults), min_keep 0, the default chain. */
smp_params smp_default_params(void);

typedef struct smp_sampler smp_sampler;

/* Validates `params` (NULL: defaults) and allocates a sampler for logits rows
 * of n_vocab floats. On success *out owns it; free it with smp_free. */
hearth_err smp_new(int32_t n_vocab, const smp_params *params, smp_sampler **out);
void smp_free(smp_sampler *s);

/* Forgets the penalty and DRY windows, restarts the random streams from the
 * seed and Mirostat from mu = 2 tau, so a reset sampler behaves like a new
 * one. */
void smp_reset(smp_sampler *s);

/* The seed in use (the one drawn at smp_new when SMP_SEED_RANDOM was asked). */
uint64_t smp_seed(const smp_sampler *s);

/* Records a token (from the prompt or generated) in the penalty and DRY windows. The
 * sampler never accepts the tokens it draws by itself: the caller does, after
 * deciding to keep them. Fails only for an id outside [0, n_vocab). */
hearth_err smp_accept(smp_sampler *s, int32_t token);

/* Samples one token from `logits` ([n_vocab], not modified). NaN logits count
 * as -inf; +inf as FLT_MAX. Allocates nothing. Returns -1, with an error
 * recorded, only when no token is left: a constraint allows none, or the
 * logit biases ban every one it allows. */
int32_t smp_sample(smp_sampler *s, const float *logits);

/* Moves the constraint (if any) over the bytes of `token`, the one the
 * caller keeps as output (prompt tokens never go through here). Fails with
 * HEARTH_ERR_INVALID_ARG, changing nothing, for a token the constraint does
 * not allow now (smp_sample never draws one). */
hearth_err smp_advance(smp_sampler *s, int32_t token);
/* The constraint is satisfied: the output is complete and only an
 * end-of-generation token may follow. False without a constraint. */
bool smp_constraint_done(const smp_sampler *s);

/* OpenAI's logprobs / top_logprobs: log-softmax of the ORIGINAL logits,
 * before penalties, truncation and temperature. */
enum { SMP_TOP_LOGPROBS_MAX = 20 };

typedef struct smp_logprob {
    int32_t id;
    float logprob;
} smp_logprob;

typedef struct smp_info {
    int32_t id;    /* the token drawn (also smp_sample_ex's result) */
    float logprob; /* of `id` */
    int n_top;     /* entries of top[] filled: min(n_top asked, SMP_TOP_LOGPROBS_MAX, n_vocab) */
    smp_logprob top[SMP_TOP_LOGPROBS_MAX]; /* best first, ties by lowest id */
} smp_info;

/* smp_sample, and when info is not NULL also fills it, with the n_top
 * (clamped to [0, SMP_TOP_LOGPROBS_MAX]) most likely tokens. */
int32_t smp_sample_ex(smp_sampler *s, const float *logits, int n_top, smp_info *info);
/* info->logprob of info->id under the softmax of logits[0..n) (sanitized as
 * the sampler sees them) and the n_top most likely tokens, as smp_sample_ex
 * fills them. */
void smp_logprobs(const float *logits, int32_t n, int n_top, smp_info *info);

/* For tests and diagnostics: runs the chain on `logits` up to, not including,
 * the draw (no random number is consumed) and writes up to `cap` surviving
 * candidates to `out`, best first, with their logits as the draw would see
 * them (biased, penalized, divided by the temperature). Returns how many
 * survived. In greedy mode only the one greedy would pick survives. XTC's
 * chance is looked at, not consumed: the next draw sees the same. 0, with an
 * error recorded, when no token is left (as smp_sample's -1). */
typedef struct smp_cand {
    int32_t id;
    float logit;
} smp_cand;

int32_t smp_candidates(smp_sampler *s, const float *logits, smp_cand *out, int32_t cap);
/* The same with only the first n_best of them best first and the rest after
 * them in no order: ordering all of a large vocabulary costs milliseconds. */
int32_t smp_candidates_ranked(smp_sampler *s, const float *logits, smp_cand *out, int32_t cap,
                              int32_t n_best);

/* Compiles the NUL-terminated schema text (json_schema_compile.c). On
 * failure records a message "json_schema: <JSON pointer>: <problem>" and
 * returns HEARTH_ERR_INVALID_ARG (not a schema, a malformed keyword, an
 * unsatisfiable schema) or HEARTH_ERR_UNSUPPORTED (a keyword or form
 * outside the subset, or a size past a cap). On success *out owns the
 * result. */
hearth_err smp_schema_compile(const char *text, smp_schema **out);
/* NULL is a no-op. */
void smp_schema_free(smp_schema *s);

/* Compiles the NUL-terminated GBNF text (gbnf_parse.c). On failure records
 * "grammar: LINE:COLUMN: <problem>" and returns HEARTH_ERR_INVALID_ARG (NOMEM
 * when out of memory). On success *out owns the result. */
hearth_err smp_grammar_compile(const char *text, smp_grammar **out);
/* NULL is a no-op. */
void smp_grammar_free(smp_grammar *g);

/* ---- the vocabulary as bytes (vocab_bytes.c) -------------------------------- */

/* Writes up to cap bytes of token id's text as the output shows it (the
 * detokenizer's piece) to buf and returns its full length; *eog receives
 * whether the token ends a generation. */
typedef size_t (*smp_piece_fn)(const void *ctx, int32_t id, char *buf, size_t cap, bool *eog);

/* Tokens with longer pieces are never allowed by a constraint: no real
 * vocabulary has them, and a walk keeps a state per byte of the longest. */
enum { SMP_VOCAB_PIECE_MAX = 1024 };

/* Reads the n_vocab tokens' bytes through piece(ctx, id, ...) once and
 * indexes them (sorted, so tokens sharing a prefix are checked together). On
 * success *out owns the table (one reference). Immutable once built: any
 * number of samplers and threads may share it. */
hearth_err smp_vocab_new(int32_t n_vocab, smp_piece_fn piece, const void *ctx, smp_vocab **out);
/* Another reference (thread-safe); returns v. */
smp_vocab *smp_vocab_ref(smp_vocab *v);
/* Drops a reference; the last one frees the table. NULL is a no-op. */
void smp_vocab_free(smp_vocab *v);
int32_t smp_vocab_n(const smp_vocab *v);

/* ---- stop strings (stop.c) ----------------------------------------------- */

/* Streams generated text through a set of stop strings. Text that could still
 * be the start of a stop string is held back until it is decided; text before
 * a stop string is released; the stop string itself and everything after it
 * never are. The result does not depend on how the text is cut into pieces. */
typedef struct smp_stop smp_stop;

typedef struct smp_stop_out {
    const char *text; /* bytes safe to emit now; owned by the matcher, valid until its next call */
    size_t len;
    bool stopped;   /* a stop string was found: emit `text`, then end the generation */
    int stop_index; /* which one: the earliest in the text; at equal starts the
                       shortest, then the first listed; -1 if none */
} smp_stop_out;

/* Copies the n_stops stop strings (none may be empty; n_stops may be 0). On
 * success *out owns the matcher; free it with smp_stop_free. */
hearth_err smp_stop_new(const char *const *stops, int n_stops, smp_stop **out);
void smp_stop_free(smp_stop *st);
/* Drops held text and the stopped state, for a new generation. */
void smp_stop_reset(smp_stop *st);
/* Longest stop string in bytes (0 if none): at most this minus 1 bytes are
 * ever held back. */
size_t smp_stop_max_len(const smp_stop *st);

/* Feeds the next piece of text. After a stop, further pieces release nothing.
 * Fails only when the held text plus the piece cannot be buffered (NOMEM); the
 * buffer grows only for a piece longer than any before. */
hearth_err smp_stop_feed(smp_stop *st, const char *piece, size_t len, smp_stop_out *out);
/* At the end of the generation: releases the held text, up to a stop string
 * it may hold behind a prefix that can no longer complete (then `stopped`). */
void smp_stop_flush(smp_stop *st, smp_stop_out *out);

#endif
