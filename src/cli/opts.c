/*
 * opts.c - what the subcommands share: the options `hearth run` and `hearth
 * chat` take (model threads, context, KV type, the sampling chain, the reply
 * length), the LoRA adapters of every command that loads a model (--lora,
 * --lora-scaled), whole-number parsing ("--temp 0,7" is an error, not 0) and
 * a line reader with a size limit for input that comes from a user or a file.
 */
#include "cli.h"

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

bool cli_parse_int(const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (end == v || *end || errno || l < lo || l > hi) return false;
    *out = (int)l;
    return true;
}

int cli_gen_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *o) {
    const struct {
        const char *name;
        float *field;
    } floats[] = {
        {"--temp", &o->smp.temperature},
        {"--top-p", &o->smp.top_p},
        {"--min-p", &o->smp.min_p},
        {"--repeat-penalty", &o->smp.repeat_penalty},
        {"--frequency-penalty", &o->smp.frequency_penalty},
        {"--presence-penalty", &o->smp.presence_penalty},
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
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (!strcmp(a, floats[i].name)) {
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
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (end == v || *end || errno || *v == '-') {
            fprintf(stderr, "hearth %s: --seed wants a non-negative integer, not '%s'\n", cmd, v);
            return -1;
        }
        o->smp.seed = s;
        return 1;
    }
    if (!strcmp(a, "--kv-type")) {
        if (strcmp(v, "f32") != 0 && strcmp(v, "f16") != 0) {
            fprintf(stderr, "hearth %s: --kv-type is f32 or f16, not '%s'\n", cmd, v);
            return -1;
        }
        o->sp.kv_type = !strcmp(v, "f16") ? HEARTH_KV_F16 : HEARTH_KV_F32;
        return 1;
    }
    return 0;
}

int cli_lora_opt(const char *cmd, int argc, char **argv, int *i, cli_lora_opts *o) {
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

void cli_lora_params(const cli_lora_opts *o, hearth_model_params *mp) {
    mp->loras = o->n ? o->items : NULL;
    mp->n_loras = o->n;
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
