/*
 * cmd_logits.c - `hearth logits`: evaluates token ids as one batch and writes
 * the logits in the layout of ../shared/conformance's golden files, then
 * optionally decodes greedily one token at a time.
 */
#include "cli.h"

#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char logits_usage[] =
    "usage: hearth logits -m FILE --ids IDS_FILE -o PREFIX [--gen N] [--kv-type f32|f16|q8_0] "
    "[-t THREADS]\n"
    "  Decodes the comma- or space-separated token ids of IDS_FILE as one batch and writes\n"
    "  PREFIX.logits.f32 ([n_tokens][n_vocab] float32 little-endian). With --gen N it then\n"
    "  decodes N tokens greedily and writes PREFIX.gen_logits.f32 ([N][n_vocab]) and\n"
    "  PREFIX.json ({\"gen_ids\": [...]}).\n"
    "  The KV cache is f32 unless --kv-type says otherwise (not f16 as for run: the\n"
    "  conformance goldens were computed with an f32 cache).\n" CLI_MODEL_USAGE;

/* Reads every integer of `path` (separated by commas and/or whitespace). */
static int read_ids(const char *path, int32_t **ids_out, int *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "hearth logits: cannot open '%s': %s\n", path, hr_strerror(errno));
        return 1;
    }
    int32_t *ids = NULL;
    int n = 0, cap = 0, c, rc = 0;
    for (;;) {
        while ((c = fgetc(f)) != EOF &&
               (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
        }
        if (c == EOF) break;
        ungetc(c, f);
        long v; /* the count and the range are checked (glibc saturates out-of-range %ld) */
        if (fscanf(f, "%ld", &v) != 1 || v < 0 || v > INT32_MAX) { // NOLINT(cert-err34-c)
            fprintf(stderr, "hearth logits: '%s' holds something other than token ids at id #%d\n",
                    path, n + 1);
            rc = 1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int32_t *grown = realloc(ids, (size_t)cap * sizeof *ids);
            if (!grown) {
                rc = 1;
                break;
            }
            ids = grown;
        }
        ids[n++] = (int32_t)v;
    }
    fclose(f);
    if (!rc && n == 0) {
        fprintf(stderr, "hearth logits: '%s' holds no token ids\n", path);
        rc = 1;
    }
    if (rc) {
        free(ids);
        return rc;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

static int write_f32(const char *prefix, const char *suffix, const float *v, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof(float), n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "hearth logits: cannot write '%s': %s\n", path, hr_strerror(errno));
        return 1;
    }
    return 0;
}

static int32_t argmax(const float *v, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int greedy(hearth_session *s, const float *last, int n_vocab, int n_gen,
                  const char *prefix) {
    float *rows = malloc((size_t)n_gen * (size_t)n_vocab * sizeof(float));
    int32_t *gen = malloc((size_t)n_gen * sizeof *gen);
    int rc = 0;
    if (!rows || !gen) rc = 1;
    for (int i = 0; i < n_gen && !rc; i++) {
        gen[i] = argmax(i ? rows + (size_t)(i - 1) * n_vocab : last, n_vocab);
        if (hearth_decode(s, &gen[i], 1, rows + (size_t)i * n_vocab, false))
            rc = cli_fail("logits", "decoding");
    }
    if (!rc) rc = write_f32(prefix, ".gen_logits.f32", rows, (size_t)n_gen * n_vocab);
    if (!rc) {
        char path[4096];
        snprintf(path, sizeof path, "%s.json", prefix);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "hearth logits: cannot write '%s': %s\n", path, hr_strerror(errno));
            rc = 1;
        } else {
            fputs("{\"gen_ids\": [", f);
            for (int i = 0; i < n_gen; i++) fprintf(f, "%s%d", i ? ", " : "", gen[i]);
            fputs("]}\n", f);
            rc = fclose(f) != 0;
        }
    }
    free(rows);
    free(gen);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *ids_path = NULL, *prefix = NULL;
    int n_gen = 0;
    hearth_model_params mp = hearth_model_default_params();
    hearth_session_params sp = hearth_session_default_params();
    /* F32 unless asked: these files are compared with the conformance goldens,
     * which llama.cpp computed with an F32 cache (exact mode matches them bit
     * for bit only on one) */
    sp.kv_type = HEARTH_KV_F32;
    cli_model_opts lora = {0};
    unsigned kv_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(logits_usage, stdout);
            return 0;
        }
        const int lr = cli_model_opt("logits", argc, argv, &i, &lora);
        if (lr < 0) return 2;
        if (lr) continue;
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth logits: option '%s' needs a value\n", a);
            return 2;
        }
        const int kv = cli_kv_type_opt("logits", a, v, &sp.kv_type, &kv_given);
        if (kv < 0) return 2;
        if (kv) continue;
        if (!strcmp(a, "-m"))
            model_path = v;
        else if (!strcmp(a, "--ids"))
            ids_path = v;
        else if (!strcmp(a, "-o"))
            prefix = v;
        else if (!strcmp(a, "--gen") || !strcmp(a, "-t")) {
            const bool gen = !strcmp(a, "--gen");
            if (!cli_parse_int(v, 0, gen ? 1 << 20 : 1024, gen ? &n_gen : &mp.n_threads)) {
                fprintf(stderr, "hearth logits: bad value '%s' for %s\n", v, a);
                return 2;
            }
        } else {
            fprintf(stderr, "hearth logits: unknown option '%s %s'\n%s", a, v, logits_usage);
            return 2;
        }
    }
    if (!model_path || !ids_path || !prefix || n_gen < 0) {
        fputs(logits_usage, stderr);
        return 2;
    }
    int32_t *ids;
    int n;
    if (read_ids(ids_path, &ids, &n)) return 1;
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    float *logits = NULL;
    int rc = 0;
    cli_model_params(&lora, &mp);
    if (hearth_model_load(model_path, &mp, &m)) {
        rc = cli_fail("logits", "loading the model");
    } else {
        sp.n_ctx = n + n_gen;
        sp.n_batch = n;
        const int n_vocab = hearth_model_n_vocab(m);
        logits = malloc((size_t)n * (size_t)n_vocab * sizeof(float));
        if (!logits)
            rc = 1;
        else if (hearth_session_new(m, &sp, &s))
            rc = cli_fail("logits", "creating the session");
        else if (hearth_decode(s, ids, n, logits, true))
            rc = cli_fail("logits", "decoding the prompt");
        else
            rc = write_f32(prefix, ".logits.f32", logits, (size_t)n * n_vocab);
        if (!rc && n_gen > 0)
            rc = greedy(s, logits + (size_t)(n - 1) * n_vocab, n_vocab, n_gen, prefix);
    }
    free(logits);
    free(ids);
    hearth_session_free(s);
    hearth_model_free(m);
    return rc;
}
