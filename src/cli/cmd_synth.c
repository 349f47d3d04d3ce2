/*
 * cmd_synth.c - `hearth synth`: writes a small model with RANDOM weights, for
 * demos and tests on machines without a downloaded model. Its text is noise.
 */
#include "cli.h"
#include "model/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char synth_usage[] =
    "usage: hearth synth -o FILE [--arch llama|qwen2|qwen3|gemma3|phi3] [--type "
    "f32|f16|q8_0|q4_0|q4_K|q6_K|iq4_nl|iq4_xs]\n"
    "                    [--embd N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N] [--ff "
    "N]\n"
    "                    [--ctx N] [--tied] [--seed S]\n"
    "  Writes a model with random weights (labelled so in general.name) and a small\n"
    "  SentencePiece-style vocabulary. Useful to try Hearth without downloading a model.\n";

static int parse_type(const char *s, kern_type *out) {
    for (uint32_t t = 0; t < KERN_TYPE_COUNT; t++) {
        const kern_type_info *ti = kern_type_get(t);
        if (ti && ti->supported && !strcasecmp(ti->name, s)) {
            *out = (kern_type)t;
            return 0;
        }
    }
    return -1;
}

int cmd_synth(int argc, char **argv) {
    synth_params p = synth_default_params();
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(synth_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--tied")) {
            p.tied = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth synth: option '%s' needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "--arch"))
            p.arch = v;
        else if (!strcmp(a, "--type")) {
            if (parse_type(v, &p.type)) {
                fprintf(stderr, "hearth synth: unknown type '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--embd"))
            p.n_embd = atoi(v);
        else if (!strcmp(a, "--layers"))
            p.n_layer = atoi(v);
        else if (!strcmp(a, "--heads"))
            p.n_head = atoi(v);
        else if (!strcmp(a, "--kv-heads"))
            p.n_head_kv = atoi(v);
        else if (!strcmp(a, "--head-dim"))
            p.head_dim = atoi(v);
        else if (!strcmp(a, "--ff"))
            p.n_ff = atoi(v);
        else if (!strcmp(a, "--ctx"))
            p.n_ctx = atoi(v);
        else if (!strcmp(a, "--seed"))
            p.seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "hearth synth: unknown option '%s'\n%s", a, synth_usage);
            return 2;
        }
    }
    if (!out) {
        fputs(synth_usage, stderr);
        return 2;
    }
    if (synth_write(out, &p)) return cli_fail("synth", out);
    printf(
        "wrote %s: %s, %d layers, n_embd %d, %s weights (RANDOM: the text it generates is noise)\n",
        out, p.arch, p.n_layer, p.n_embd, kern_type_get(p.type)->name);
    return 0;
}
