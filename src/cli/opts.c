/*
 * opts.c - what the subcommands share: the options `hearth run` and `hearth
 * chat` take (model threads, context, KV type, the sampling chain, the reply
 * length), the LoRA adapters of every command that loads a model (--lora,
 * --lora-scaled), GBNF grammars (--grammar, --grammar-file, checked as they
 * are read, before any model is loaded), whole-number parsing ("--temp 0,7" is an error, not 0) and
 * a line reader with a size limit for input that comes from a user or a file.
 */
#include "cli.h"

#include "core/core.h"
#include "sampling/sampling.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_float(const char *v, float *out) {
    char *end;
    errno = 0;
    float f = strtof(v, &end);
    if (end == v || *end || errno) return false;
    *out = f;
    return true;
}

/* The text of the last --grammar-file, kept for the process's life (the
 * options borrow it); a static pointer, so it is not a leak. */
static char *grammar_file_text;

/* GBNF texts above this are refused by the library anyway. */
enum { GRAMMAR_FILE_MAX = 1 << 20 };

static char *read_grammar_file(const char *cmd, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hearth %s: --grammar-file '%s': %s\n", cmd, path, hr_strerror(errno));
        return NULL;
    }
    char *text = malloc((size_t)GRAMMAR_FILE_MAX + 2);
    size_t n = text ? fread(text, 1, (size_t)GRAMMAR_FILE_MAX + 1, f) : 0;
    const bool bad = !text || ferror(f);
    fclose(f);
    if (bad || n > GRAMMAR_FILE_MAX || memchr(text, '\0', n)) {
        fprintf(stderr, "hearth %s: --grammar-file '%s': %s\n", cmd, path,
                bad                    ? "cannot be read"
                : n > GRAMMAR_FILE_MAX ? "larger than 1 MiB"
                                       : "holds a NUL byte");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

/* --grammar TEXT / --grammar-file FILE: one grammar, not beside another
 * constraint, checked now so that a bad one fails before the model loads. */
static int grammar_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *o) {
    if (o->smp.grammar) {
        fprintf(stderr, "hearth %s: give one grammar (--grammar or --grammar-file, once)\n", cmd);
        return -1;
    }
    if (o->smp.constraint != HEARTH_CONSTRAINT_NONE) {
        fprintf(stderr, "hearth %s: %s cannot be combined with --json or --json-schema\n", cmd, a);
        return -1;
    }
    const char *text = v;
    if (!strcmp(a, "--grammar-file")) {
        free(grammar_file_text);
        grammar_file_text = read_grammar_file(cmd, v);
        if (!grammar_file_text) return -1;
        text = grammar_file_text;
    }
    if (hearth_grammar_check(text)) {
        fprintf(stderr, "hearth %s: %s%s%s: %s\n", cmd, a, text == v ? "" : " ", text == v ? "" : v,
                hearth_last_error());
        return -1;
    }
    o->smp.constraint = HEARTH_CONSTRAINT_GRAMMAR;
    o->smp.grammar = text;
    return 1;
}

bool cli_parse_int(const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (end == v || *end || errno || l < lo || l > hi) return false;
    *out = (int)l;
    return true;
}

bool cli_parse_seed(const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    const unsigned long long s = strtoull(v, &end, 10);
    if (end == v || *end || errno || !isdigit((unsigned char)*v)) return false;
    *out = s;
    return true;
}

bool cli_gen_flag(const char *a, cli_gen_opts *o) {
    if (!strcmp(a, "--ignore-eos"))
        o->smp.ignore_eos = true;
    else if (!strcmp(a, "--swa-full"))
        o->sp.swa_full = true;
    else
        return false;
    return true;
}

/* --dry-sequence-breaker S: the first one replaces llama.cpp's defaults,
 * "none" leaves none (as llama.cpp's). */
static int dry_breaker_opt(const char *cmd, const char *v, cli_gen_opts *o) {
    if (!o->smp.dry_sequence_breakers) {
        o->smp.dry_sequence_breakers = o->dry_breakers;
        o->smp.n_dry_sequence_breakers = 0;
    }
    if (!strcmp(v, "none")) {
        o->smp.n_dry_sequence_breakers = 0;
        return 1;
    }
    if (!*v || strlen(v) > 40 || o->smp.n_dry_sequence_breakers == CLI_DRY_BREAKERS_MAX) {
        fprintf(stderr, "hearth %s: --dry-sequence-breaker wants 1 to 40 bytes, at most %d times\n",
                cmd, CLI_DRY_BREAKERS_MAX);
        return -1;
    }
    o->dry_breakers[o->smp.n_dry_sequence_breakers++] = v;
    return 1;
}

/* --samplers 'top_k;temperature' (llama.cpp's names, ';' between) or
 * --sampler-seq / --sampling-seq kt (its letters): the chain's order; ""
 * is no stage at all. A name llama.cpp would skip with a warning is refused. */
static int samplers_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *o) {
    const bool letters = strcmp(a, "--samplers") != 0;
    int32_t n = 0;
    for (const char *p = v; *p;) {
        const size_t len = letters ? 1 : strcspn(p, ";");
        char msg[160];
        const int st =
            n < HEARTH_SAMPLERS_MAX ? smp_stage_parse(p, len, letters, msg, sizeof msg) : 0;
        if (n == HEARTH_SAMPLERS_MAX)
            snprintf(msg, sizeof msg, "more than %d samplers", HEARTH_SAMPLERS_MAX);
        if (!st) {
            fprintf(stderr, "hearth %s: %s: %s\n", cmd, a, msg);
            return -1;
        }
        o->smp.samplers[n++] = (hearth_sampler_stage)st;
        p += len;
        if (!letters && *p == ';') p++;
    }
    o->smp.n_samplers = n > 0 ? n : HEARTH_SAMPLERS_NONE;
    return 1;
}

int cli_gen_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *o) {
    const struct {
        const char *name, *alias;
        float *field;
    } floats[] = {
        {"--temp", NULL, &o->smp.temperature},
        {"--top-p", NULL, &o->smp.top_p},
        {"--min-p", NULL, &o->smp.min_p},
        {"--repeat-penalty", NULL, &o->smp.repeat_penalty},
        {"--frequency-penalty", NULL, &o->smp.frequency_penalty},
        {"--presence-penalty", NULL, &o->smp.presence_penalty},
        {"--typical", "--typical-p", &o->smp.typical_p},
        {"--top-nsigma", "--top-n-sigma", &o->smp.top_n_sigma},
        {"--xtc-probability", NULL, &o->smp.xtc_probability},
        {"--xtc-threshold", NULL, &o->smp.xtc_threshold},
        {"--mirostat-lr", NULL, &o->smp.mirostat_eta},
        {"--mirostat-ent", NULL, &o->smp.mirostat_tau},
        {"--dry-multiplier", NULL, &o->smp.dry_multiplier},
        {"--dry-base", NULL, &o->smp.dry_base},
        {"--dynatemp-range", NULL, &o->smp.dynatemp_range},
        {"--dynatemp-exp", NULL, &o->smp.dynatemp_exponent},
    };
    const struct {
        const char *name, *alias;
        int *field;
        long lo;
    } ints[] = {
        {"-n", "--n-predict", &o->gen.max_tokens, -1},
        {"--top-k", NULL, &o->smp.top_k, 0},
        {"--repeat-last-n", NULL, &o->smp.penalty_last_n, 0},
        {"-t", "--threads", &o->mp.n_threads, 1},
        {"-c", "--ctx", &o->sp.n_ctx, 1},
        {"--mirostat", NULL, &o->smp.mirostat, 0},
        {"--dry-allowed-length", NULL, &o->smp.dry_allowed_length, 0},
        {"--dry-penalty-last-n", NULL, &o->smp.dry_penalty_last_n, -1},
        {"--min-keep", NULL, &o->smp.min_keep, 0},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (!strcmp(a, floats[i].name) || (floats[i].alias && !strcmp(a, floats[i].alias))) {
            if (parse_float(v, floats[i].field)) return 1;
            fprintf(stderr, "hearth %s: %s wants a number, not '%s'\n", cmd, a, v);
            return -1;
        }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(a, ints[i].name) || (ints[i].alias && !strcmp(a, ints[i].alias))) {
            if (cli_parse_int(v, ints[i].lo, 1L << 30, ints[i].field)) return 1;
            fprintf(stderr, "hearth %s: %s wants an integer >= %ld, not '%s'\n", cmd, a, ints[i].lo,
                    v);
            return -1;
        }
    if (!strcmp(a, "--seed")) {
        if (cli_parse_seed(v, &o->smp.seed)) return 1;
        fprintf(stderr, "hearth %s: --seed wants a non-negative integer, not '%s'\n", cmd, v);
        return -1;
    }
    if (!strcmp(a, "--dry-sequence-breaker")) return dry_breaker_opt(cmd, v, o);
    if (!strcmp(a, "--samplers") || !strcmp(a, "--sampler-seq") || !strcmp(a, "--sampling-seq"))
        return samplers_opt(cmd, a, v, o);
    const int kv = cli_kv_type_opt(cmd, a, v, &o->sp.kv_type, &o->kv_given);
    if (kv) return kv;
    if (!strcmp(a, "--grammar") || !strcmp(a, "--grammar-file")) return grammar_opt(cmd, a, v, o);
    return 0;
}

/* The KV cache types by name; index = hearth_kv_type. */
static const char *const kv_type_names[] = {"f32", "f16", "q8_0"};

const char *cli_kv_type_name(hearth_kv_type type) {
    return (unsigned)type < sizeof kv_type_names / sizeof kv_type_names[0] ? kv_type_names[type]
                                                                           : "?";
}

/* cli_kv_type_opt's *given: which of K and V a type was given for. */
enum { KV_GIVEN_K = 1, KV_GIVEN_V = 2 };

int cli_kv_type_opt(const char *cmd, const char *a, const char *v, hearth_kv_type *type,
                    unsigned *given) {
    unsigned sides;
    if (!strcmp(a, "--kv-type"))
        sides = KV_GIVEN_K | KV_GIVEN_V;
    else if (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k"))
        sides = KV_GIVEN_K;
    else if (!strcmp(a, "-ctv") || !strcmp(a, "--cache-type-v"))
        sides = KV_GIVEN_V;
    else
        return 0;
    int t = -1;
    for (int i = 0; i < (int)(sizeof kv_type_names / sizeof kv_type_names[0]); i++)
        if (!strcmp(v, kv_type_names[i])) t = i;
    if (t < 0) {
        fprintf(stderr, "hearth %s: %s is f32, f16 or q8_0, not '%s'\n", cmd, a, v);
        return -1;
    }
    /* a type already given for the other side (or, for --kv-type, either) */
    const unsigned other = sides == (KV_GIVEN_K | KV_GIVEN_V) ? sides : sides ^ 3u;
    if ((*given & other) && (hearth_kv_type)t != *type) {
        fprintf(stderr,
                "hearth %s: %s %s after %s for %s: Hearth keeps one type for the K and V caches "
                "(give -ctk and -ctv the same type, or --kv-type once)\n",
                cmd, a, v, cli_kv_type_name(*type), *given & other & KV_GIVEN_K ? "K" : "V");
        return -1;
    }
    *type = (hearth_kv_type)t;
    *given |= sides;
    return 1;
}

/* --rope-scaling, --rope-scale, --rope-freq-base, --yarn-orig-ctx (llama.cpp's):
 * as cli_model_opt. */
static int rope_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *o) {
    const char *a = argv[*i];
    const bool type = !strcmp(a, "--rope-scaling"), scale = !strcmp(a, "--rope-scale"),
               base = !strcmp(a, "--rope-freq-base"), orig = !strcmp(a, "--yarn-orig-ctx");
    if (!type && !scale && !base && !orig) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "hearth %s: %s needs a value\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    float f = 0.0f;
    if (type && strcmp(v, "none") && strcmp(v, "linear") && strcmp(v, "yarn")) {
        fprintf(stderr, "hearth %s: --rope-scaling is none, linear or yarn, not '%s'\n", cmd, v);
        return -1;
    }
    if ((scale || base) && (!parse_float(v, &f) || !(f > 0.0f) || !(f < 1e9f))) {
        fprintf(stderr, "hearth %s: %s wants a positive number, not '%s'\n", cmd, a, v);
        return -1;
    }
    if (orig && !cli_parse_int(v, 1, 1 << 24, &o->yarn_orig_ctx)) {
        fprintf(stderr, "hearth %s: --yarn-orig-ctx wants a context length, not '%s'\n", cmd, v);
        return -1;
    }
    if (type) o->rope_scaling = v;
    if (scale) o->rope_scale = f;
    if (base) o->rope_freq_base = f;
    return 1;
}

int cli_model_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *o) {
    const int rope = rope_opt(cmd, argc, argv, i, o);
    if (rope) return rope;
    const char *a = argv[*i];
    const bool scaled = !strcmp(a, "--lora-scaled");
    if (!scaled && strcmp(a, "--lora") != 0) return 0;
    const int n_values = scaled ? 2 : 1;
    if (*i + n_values >= argc) {
        fprintf(stderr, "hearth %s: %s needs %s\n", cmd, a, scaled ? "FILE SCALE" : "FILE");
        return -1;
    }
    float scale = 1.0f;
    if (scaled && (!parse_float(argv[*i + 2], &scale) || !(scale == scale) || scale > 1e30f ||
                   scale < -1e30f)) {
        fprintf(stderr, "hearth %s: --lora-scaled wants a finite number as SCALE, not '%s'\n", cmd,
                argv[*i + 2]);
        return -1;
    }
    if (o->n == CLI_LORA_MAX) {
        fprintf(stderr, "hearth %s: at most %d adapters\n", cmd, CLI_LORA_MAX);
        return -1;
    }
    o->items[o->n++] = (hearth_lora){.path = argv[*i + 1], .scale = scale};
    *i += n_values;
    return 1;
}

void cli_model_params(const cli_model_opts *o, hearth_model_params *mp) {
    mp->loras = o->n ? o->items : NULL;
    mp->n_loras = o->n;
    mp->rope_scaling = o->rope_scaling;
    mp->rope_scale = o->rope_scale;
    mp->rope_freq_base = o->rope_freq_base;
    mp->yarn_orig_ctx = o->yarn_orig_ctx;
}

void cli_gen_defaults(cli_gen_opts *o) {
    *o = (cli_gen_opts){.mp = hearth_model_default_params(),
                        .sp = hearth_session_default_params(),
                        .smp = hearth_sampling_default_params()};
}

int cli_read_line(FILE *f, size_t max, char **out, size_t *len) {
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    *out = NULL;
    bool too_long = false;
    for (int c; buf && (c = fgetc(f)) != '\n';) {
        if (c == EOF) {
            if (ferror(f) || (n == 0 && !too_long)) {
                free(buf);
                return ferror(f) ? -2 : 0;
            }
            break;
        }
        if (too_long || n == max) { /* read the rest of the line, keep nothing */
            too_long = true;
            continue;
        }
        if (n + 2 > cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) free(buf);
            buf = b;
            cap *= 2;
        }
        if (buf) buf[n++] = (char)c;
    }
    if (!buf) return -2;
    if (too_long) {
        free(buf);
        return -1;
    }
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 1;
}
