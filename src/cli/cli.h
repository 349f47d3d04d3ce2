/*
 * cli.h - the subcommands of the `hearth` program. Each cmd_* parses its own
 * arguments (argv[0] is the subcommand name), calls the library, prints, and
 * returns the process exit status (0 ok, 1 failure, 2 usage error).
 */
#ifndef HEARTH_CLI_H
#define HEARTH_CLI_H

#include "hearth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_rerank(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_drift(int argc, char **argv);
int cmd_router(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_rag(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);

/* The options every command that loads a model takes (opts.c): --lora FILE
 * and --lora-scaled FILE SCALE (repeatable), and llama.cpp's RoPE overrides
 * --rope-scaling, --rope-scale, --rope-freq-base, --yarn-orig-ctx. */
#define CLI_LORA_MAX 16
typedef struct cli_model_opts {
    hearth_lora items[CLI_LORA_MAX]; /* paths borrowed from argv */
    int n;
    const char *rope_scaling; /* hearth_model_params' RoPE fields (0/NULL: the file's) */
    float rope_scale, rope_freq_base;
    int yarn_orig_ctx;
} cli_model_opts;

#define CLI_MODEL_USAGE                                                                            \
    "  --lora FILE         apply a LoRA adapter (GGUF, llama.cpp's format; repeatable)\n"          \
    "  --lora-scaled FILE S  the same at scale S (1: as trained; repeatable)\n"                    \
    "  --rope-scaling T    RoPE scaling none|linear|yarn instead of the file's\n"                  \
    "  --rope-scale N      its factor (the context multiplier) instead of the file's\n"            \
    "  --rope-freq-base F  the RoPE base instead of the file's (window layers keep theirs)\n"      \
    "  --yarn-orig-ctx N   YaRN's original context instead of the file's (its training one)\n"

/* When argv[*i] is one of those: takes its values (advancing *i) into o and
 * returns 1; 0 when it is another option; -1 (message printed, naming cmd)
 * when a value is missing or bad or there are too many adapters. */
int cli_model_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *o);
/* Sets mp's adapters and RoPE overrides from o's (o must outlive the
 * hearth_model_load call). */
void cli_model_params(const cli_model_opts *o, hearth_model_params *mp);

/* The options every generating command takes (opts.c). */
enum { CLI_DRY_BREAKERS_MAX = 64 };
typedef struct cli_gen_opts {
    cli_model_opts lora;      /* --lora, --lora-scaled, RoPE overrides (cli_model_opt) */
    hearth_model_params mp;   /* -t */
    hearth_session_params sp; /* -c/--ctx, --kv-type (-ctk, -ctv) */
    unsigned kv_given;        /* cli_kv_type_opt's record of the K and V types given */
    hearth_sampling smp;      /* --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n
                                 --frequency-penalty --presence-penalty --seed; --grammar,
                                 --grammar-file (constraint and grammar); llama.cpp's other
                                 samplers (--typical ... --ignore-eos) */
    hearth_gen_params gen;    /* -n */
    /* --dry-sequence-breaker (repeatable; smp.dry_sequence_breakers points here once one is
     * given, borrowed from argv) */
    const char *dry_breakers[CLI_DRY_BREAKERS_MAX];
} cli_gen_opts;

#define CLI_GEN_USAGE                                                                              \
    "  -n N                most tokens to generate (-1: until the context is full)\n"              \
    "  --temp T            temperature (default 0.8; 0: greedy)\n"                                 \
    "  --top-k K           (default 40; 0: off)\n"                                                 \
    "  --top-p P           (default 0.95; 1: off)\n"                                               \
    "  --min-p M           (default 0.05; 0: off)\n"                                               \
    "  --repeat-penalty R  (default 1: off), --repeat-last-n N (default 64)\n"                     \
    "  --frequency-penalty F, --presence-penalty P (default 0)\n"                                  \
    "  --seed S            reproducible sampling (default: random)\n"                              \
    "  llama.cpp's other samplers (off by default; docs/server.md, \"Sampling\"):\n"               \
    "  --typical P         locally typical sampling (1: off)\n"                                    \
    "  --top-nsigma N      keep logits within N standard deviations of the best (-1: off)\n"       \
    "  --xtc-probability P, --xtc-threshold T  XTC (0: off; threshold 0.1, > 0.5: off)\n"          \
    "  --mirostat 1|2      Mirostat in place of the other samplers (0: off), with\n"               \
    "                      --mirostat-ent TAU (5) and --mirostat-lr ETA (0.1)\n"                   \
    "  --dry-multiplier M  DRY repetition penalty (0: off), --dry-base B (1.75),\n"                \
    "                      --dry-allowed-length N (2), --dry-penalty-last-n N (64;\n"              \
    "                      -1: the context),\n"                                                    \
    "                      --dry-sequence-breaker S (repeatable; replaces \\n : \" *; none)\n"     \
    "  --ignore-eos        never end at an end-of-generation token\n"                              \
    "  --min-keep N        top-p, min-p, typical and XTC keep at least N tokens (0)\n"             \
    "  --dynatemp-range R  dynamic temperature in [T - R, T + R] from the entropy (0: off),\n"     \
    "                      --dynatemp-exp E (1)\n"                                                 \
    "  --samplers 'top_k;top_p;...'  the chain's stages in order (default: penalties;dry;\n"       \
    "                      top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature), or\n"             \
    "  --sampler-seq edskypmxt       the same as letters\n"                                        \
    "  -t N                threads (default: physical cores)\n"                                    \
    "  -c, --ctx N         context length (default: min(model's, 4096))\n"                         \
    "  --kv-type f32|f16|q8_0  KV cache element type (default f16, llama.cpp's: half of f32's\n"   \
    "                      memory; q8_0: about half of f16's, docs/kv-cache.md);\n"                \
    "                      -ctk/--cache-type-k T with -ctv/--cache-type-v T (llama.cpp's)\n"       \
    "                      must agree: one type for K and V\n"                                     \
    "  --swa-full          sliding-window layers (Gemma 2/3/4) keep every position, not only\n"    \
    "                      their window (more memory; lets a prompt reuse any cached prefix)\n"    \
    "  --grammar GBNF      only output a text of this GBNF grammar (docs/grammar.md)\n"            \
    "  --grammar-file FILE the same, the grammar read from FILE\n" CLI_MODEL_USAGE

/* The library's defaults. */
void cli_gen_defaults(cli_gen_opts *o);
/* When a is --kv-type, or llama.cpp's -ctk/--cache-type-k or
 * -ctv/--cache-type-v: sets *type from v (f32, f16 or q8_0) and returns 1;
 * 0 when a is another option; -1 (message printed, naming cmd) when v is
 * no such type, or names another type than one given before for the other
 * of K and V (--kv-type gives both; Hearth keeps one type for K and V).
 * *given (0 before the first option) records what was given. */
int cli_kv_type_opt(const char *cmd, const char *a, const char *v, hearth_kv_type *type,
                    unsigned *given);
/* "f32", "f16" or "q8_0". */
const char *cli_kv_type_name(hearth_kv_type type);
/* Applies option a with value v: 1 when it is one of CLI_GEN_USAGE's, 0 when
 * not, -1 (message printed, naming cmd) when v is not a valid value. */
int cli_gen_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *o);
/* When a is one of CLI_GEN_USAGE's options without a value (--ignore-eos,
 * --swa-full):
 * applies it and returns true. */
bool cli_gen_flag(const char *a, cli_gen_opts *o);

/* Speculative decoding's options (opts_spec.c; docs/speculative.md), as
 * llama.cpp names them. Three proposals by default (llama.cpp's too): a
 * pass over four tokens still reads each weight row once (the gemv path),
 * five go by panels at about twice the cost (bench/bench_spec). */
enum { CLI_SPEC_MAX = 64, CLI_SPEC_N_MAX = 3, CLI_SPEC_NGRAM_SIZE = 3 };
#define CLI_SPEC_P_MIN 0.75f
typedef struct cli_spec_opts {
    const char *draft_path;    /* -md/--model-draft (borrowed from argv) */
    const char *type;          /* --spec-type none|draft|ngram; NULL: draft with -md, else none */
    int n_max;                 /* --spec-draft-n-max; < 0: the type's default */
    float p_min;               /* --spec-draft-p-min; < 0: the default */
    int ngram_n;               /* --spec-ngram-size-n; 0: the default */
    bool ngram;                /* resolved: prompt lookup */
    hearth_model *draft_model; /* cli_spec_open's, freed by cli_spec_close */
    hearth_session *draft_session;
} cli_spec_opts;

#define CLI_SPEC_USAGE                                                                             \
    "  -md, --model-draft FILE  speculative decoding with a smaller model of the same\n"           \
    "                      vocabulary proposing tokens (output unchanged; docs/speculative.md)\n"  \
    "  --spec-type none|draft|ngram  ngram: prompt lookup, proposals copied from the text\n"       \
    "  --spec-draft-n-max N  most tokens proposed per step (default 3)\n"                          \
    "  --spec-draft-p-min P  the draft stops below this probability (0.75)\n"                      \
    "  --spec-ngram-size-n N  tokens matched by prompt lookup (3)\n"

void cli_spec_defaults(cli_spec_opts *o);
/* As cli_gen_opt, for the options above. */
int cli_spec_opt(const char *cmd, const char *a, const char *v, cli_spec_opts *o);
/* Settles the type and the defaults once every option is read; 0, or 2
 * (message printed) when the type wants a draft model and none was given. */
int cli_spec_resolve(const char *cmd, cli_spec_opts *o);
/* Loads the draft model (with mp, checked against target) and its session
 * (with sp) when the options want one, and fills gp's speculative fields;
 * 0, or 1 with the error printed. Undo with cli_spec_close. */
int cli_spec_open(const char *cmd, cli_spec_opts *o, hearth_model *target,
                  const hearth_model_params *mp, const hearth_session_params *sp,
                  hearth_gen_params *gp);
void cli_spec_close(cli_spec_opts *o);
/* "speculative: N tokens proposed, M accepted" on stderr, when any were. */
void cli_spec_report(const hearth_gen_result *r);

/* v as a whole integer in [lo, hi] into *out; false (nothing written) when
 * it is not one. */
bool cli_parse_int(const char *v, long lo, long hi, int *out);
/* v as a seed, a whole number in [0, 2^64); false (nothing written) when it
 * is not one (a sign, a space, a trailing character or an overflow). */
bool cli_parse_seed(const char *v, uint64_t *out);

/* One line of f, without its '\n' (and a '\r' before it), into *out
 * (malloc'd, NUL-terminated; *len bytes). Returns 1; 0 at the end of input;
 * -1 when the line is longer than max bytes (the rest of it is read and
 * dropped, *out is NULL); -2 on a read error, an interrupted read (Ctrl-C)
 * or no memory. */
int cli_read_line(FILE *f, size_t max, char **out, size_t *len);

/* Prints "hearth <cmd>: <what>: <hearth_last_error()>" to stderr; returns 1.
 * Inline so that a caller (and the static analyzer) sees it never returns 0. */
static inline int cli_fail(const char *cmd, const char *what) {
    fprintf(stderr, "hearth %s: %s: %s\n", cmd, what, hearth_last_error());
    return 1;
}

/* A prompt's images (--mmproj FILE, --image FILE...; cli_media.c): the
 * projector, each image's rows (encoded at open), its hash for
 * hearth_tokenize_media. cli_media_open prints what failed and returns 1;
 * cli_media_close frees whatever was opened. */
typedef struct cli_media {
    hearth_vision *vision;
    int n;
    float *rows;          /* [n][rows per image][n_embd] */
    const float **images; /* image i's rows */
    uint64_t *hashes;
} cli_media;
/* A monotonic clock in milliseconds. */
double cli_now_ms(void);
int cli_media_open(const char *cmd, hearth_model *m, const char *mmproj, const char *const *paths,
                   int n, int n_threads, cli_media *out);
/* The same images with a projector already loaded (out->vision stays NULL:
 * v is the caller's). */
int cli_media_load(const char *cmd, hearth_vision *v, const hearth_model *m,
                   const char *const *paths, int n, cli_media *out);
void cli_media_close(cli_media *c);

#endif
