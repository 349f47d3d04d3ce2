/*
 * cmd_quantize.c - `hearth quantize IN OUT TYPE`: llama-quantize's presets
 * (model/quantize.h does the work), with a progress bar on stderr, a
 * --dry-run that prints the per-tensor types, and a summary.
 */
#include "cli.h"
#include "model/imatrix.h"
#include "model/quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char quantize_usage[] =
    "usage: hearth quantize [options] IN.gguf OUT.gguf TYPE [THREADS]\n"
    "  TYPE: F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q2_K_S (needs --imatrix), Q3_K_S,\n"
    "  Q3_K_M (Q3_K), Q3_K_L, Q4_K_S, Q4_K_M (Q4_K), Q5_K_S, Q5_K_M (Q5_K), Q6_K, IQ4_NL, IQ4_XS\n"
    "  (any case). Per-tensor types, tensor order, metadata and blocks are those of llama.cpp's\n"
    "  `llama-quantize [--imatrix FILE] IN OUT TYPE`. IN may hold F32, F16 or BF16 weights, or\n"
    "  quantized ones (then they are dequantized and quantized again, which loses more than\n"
    "  quantizing the original; a warning says so).\n"
    "  --imatrix FILE             importance matrix (hearth imatrix's or llama-imatrix's, GGUF\n"
    "                             or .dat): rows are quantized to keep what matters most\n"
    "  --include-weights NAME     use the imatrix only for tensors whose name contains NAME\n"
    "  --exclude-weights NAME     ... and not for those containing NAME (both repeatable)\n"
    "  -t N                       threads splitting the rows (default: physical cores)\n"
    "  --tensor-type PATTERN=T    tensors whose name contains PATTERN get type T (q8_0, f16,\n"
    "                             q3_K, iq4_xs, ...; repeatable, first match wins; a plain\n"
    "                             substring, not a regex)\n"
    "  --dry-run                  print each tensor's new type and the totals; write nothing\n"
    "  -q                         no progress bar\n";

enum { QCLI_MAX_OVERRIDES = 32, QCLI_MAX_NAMES = 32, QCLI_BAR = 30 };

typedef struct qcli {
    const char *in, *out, *type;
    const char *include[QCLI_MAX_NAMES], *exclude[QCLI_MAX_NAMES];
    int n_include, n_exclude;
    quant_params p;
    quant_override ov[QCLI_MAX_OVERRIDES];
    bool dry_run, quiet, tty;
    int last_tenth;
} qcli;

static bool parse_kern_type(const char *s, kern_type *out) {
    for (uint32_t t = 0; t < KERN_TYPE_COUNT; t++) {
        const kern_type_info *ti = kern_type_get(t);
        if (ti && quant_type_writable((kern_type)t) && !strcasecmp(ti->name, s)) {
            *out = (kern_type)t;
            return true;
        }
    }
    return false;
}

static int add_override(qcli *c, char *spec) {
    char *eq = strrchr(spec, '=');
    if (!eq || eq == spec || c->p.n_overrides == QCLI_MAX_OVERRIDES) {
        fprintf(stderr, "hearth quantize: bad --tensor-type '%s' (PATTERN=TYPE, at most %d)\n",
                spec, QCLI_MAX_OVERRIDES);
        return 2;
    }
    *eq = '\0';
    quant_override *o = &c->ov[c->p.n_overrides];
    if (!parse_kern_type(eq + 1, &o->type)) {
        fprintf(stderr, "hearth quantize: unknown type '%s'\n", eq + 1);
        return 2;
    }
    o->pattern = spec;
    c->p.n_overrides++;
    return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_quantize(int argc, char **argv, qcli *c) {
    const char *pos[4] = {0};
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(quantize_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--dry-run"))
            c->dry_run = true;
        else if (!strcmp(a, "-q"))
            c->quiet = true;
        else if (!strcmp(a, "-t") || !strcmp(a, "--tensor-type") || !strcmp(a, "--imatrix") ||
                 !strcmp(a, "--include-weights") || !strcmp(a, "--exclude-weights")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hearth quantize: option '%s' needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--imatrix")) {
                c->p.imatrix_file = argv[++i];
            } else if (strstr(a, "-weights")) {
                const bool inc = a[2] == 'i';
                int *n = inc ? &c->n_include : &c->n_exclude;
                if (*n == QCLI_MAX_NAMES)
                    return fprintf(stderr, "hearth quantize: at most %d %s\n", QCLI_MAX_NAMES, a),
                           2;
                (inc ? c->include : c->exclude)[(*n)++] = argv[++i];
            } else if (!strcmp(a, "-t")) {
                if (!cli_parse_int(argv[++i], 0, 1024, &c->p.n_threads))
                    return fprintf(stderr, "hearth quantize: bad -t '%s'\n", argv[i]), 2;
            } else if (add_override(c, argv[++i]))
                return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hearth quantize: unknown option '%s'\n%s", a, quantize_usage);
            return 2;
        } else if (n_pos < 4) {
            pos[n_pos++] = a;
        } else {
            fputs(quantize_usage, stderr);
            return 2;
        }
    }
    if (n_pos < 3) {
        fputs(quantize_usage, stderr);
        return 2;
    }
    c->in = pos[0];
    c->out = pos[1];
    c->type = pos[2];
    /* llama-quantize's positional thread count */
    if (n_pos == 4 && !cli_parse_int(pos[3], 0, 1024, &c->p.n_threads))
        return fprintf(stderr, "hearth quantize: bad thread count '%s'\n", pos[3]), 2;
    if (!quant_ftype_parse(c->type, &c->p.ftype)) {
        fprintf(stderr, "hearth quantize: unknown TYPE '%s'\n%s", c->type, quantize_usage);
        return 2;
    }
    if ((c->n_include || c->n_exclude) && !c->p.imatrix_file) {
        fprintf(stderr,
                "hearth quantize: --include-weights and --exclude-weights need --imatrix\n");
        return 2;
    }
    return -1;
}

static void progress(void *user, int64_t done, int64_t total, const char *name, kern_type from,
                     kern_type to) {
    qcli *c = user;
    if (c->quiet) return;
    const int fill = (int)(done * QCLI_BAR / total);
    const int tenth = (int)(done * 10 / total);
    if (!c->tty && tenth == c->last_tenth) return; /* a log file gets a line per 10 % */
    c->last_tenth = tenth;
    char bar[QCLI_BAR + 1];
    for (int i = 0; i < QCLI_BAR; i++) bar[i] = i < fill ? '#' : '.';
    bar[QCLI_BAR] = '\0';
    fprintf(stderr, "%s[%s] %4lld/%lld %-32.32s %5s -> %-5s%s", c->tty ? "\r" : "", bar,
            (long long)done, (long long)total, name, kern_type_get(from)->name,
            kern_type_get(to)->name, c->tty ? "" : "\n");
    if (c->tty && done == total) fputc('\n', stderr);
    fflush(stderr);
}

/* "q5_0 166, q4_K 16, ..." for the plan, most frequent first. */
static void print_counts(FILE *out, const quant_choice *plan, int64_t n) {
    int64_t count[KERN_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < n; i++)
        if (plan[i].type < KERN_TYPE_COUNT) count[plan[i].type]++;
    for (bool first = true;;) {
        int best = -1;
        for (int t = 0; t < KERN_TYPE_COUNT; t++)
            if (count[t] && (best < 0 || count[t] > count[best])) best = t;
        if (best < 0) break;
        fprintf(out, "%s%s %lld", first ? "" : ", ", kern_type_get((uint32_t)best)->name,
                (long long)count[best]);
        count[best] = 0;
        first = false;
    }
}

/* Plans once up front: for --dry-run, the requantization warning and the summary. */
static int plan_report(qcli *c, quant_choice **plan, int64_t *n_out) {
    gguf_file *f = NULL;
    if (gguf_open(c->in, &f)) return cli_fail("quantize", c->in);
    if (quant_plan(f, &c->p, plan)) {
        gguf_close(f);
        return cli_fail("quantize", c->in);
    }
    const int64_t n = gguf_n_tensors(f);
    int64_t n_requant = 0;
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, (*plan)[i].src_index);
        const bool from_q = t->type != KERN_F32 && t->type != KERN_F16 && t->type != KERN_BF16;
        n_requant += from_q && t->type != (uint32_t)(*plan)[i].type;
        if (c->dry_run)
            printf("%-40.*s %-6s -> %-6s%s%s\n", (int)t->name.len, t->name.ptr,
                   kern_type_get(t->type)->name, kern_type_get((*plan)[i].type)->name,
                   (*plan)[i].fallback ? " (fall-back)" : "",
                   (*plan)[i].manual ? " (override)" : "");
    }
    if (n_requant)
        fprintf(stderr,
                "hearth quantize: warning: %lld tensors of %s are already quantized; they are "
                "dequantized and quantized again, which loses more than quantizing the original\n",
                (long long)n_requant, c->in);
    *n_out = n;
    gguf_close(f);
    return -1;
}

static int dry_run_summary(const qcli *c, const quant_choice *plan, int64_t n) {
    printf("%s: %lld tensors: ", quant_ftype_name(c->p.ftype), (long long)n);
    print_counts(stdout, plan, n);
    printf("\n");
    return 0;
}

static int convert(qcli *c, const quant_choice *plan, int64_t n) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    quant_stats st;
    if (quant_model(c->in, c->out, &c->p, &st)) return cli_fail("quantize", c->out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("wrote %s: %s, %lld tensors (%lld converted, %lld fall-backs), %.2f MiB -> %.2f MiB in "
           "%.1f s\ntypes: ",
           c->out, quant_ftype_name(c->p.ftype), (long long)st.n_tensors, (long long)st.n_converted,
           (long long)st.n_fallback, (double)st.bytes_in / 1048576.0,
           (double)st.bytes_out / 1048576.0, secs);
    print_counts(stdout, plan, n);
    printf("\n");
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    qcli c = {.p = quant_default_params(), .last_tenth = -1};
    c.p.overrides = c.ov;
    int rc = parse_quantize(argc, argv, &c);
    if (rc >= 0) return rc;
    c.tty = isatty(STDERR_FILENO);
    c.p.progress = progress;
    c.p.progress_user = &c;
    imatrix *im = NULL;
    if (c.p.imatrix_file) {
        if (imatrix_load(c.p.imatrix_file, &im)) return cli_fail("quantize", "--imatrix");
        imatrix_filter(im, c.include, c.n_include, c.exclude, c.n_exclude);
        fprintf(stderr, "quantize: %lld importance matrix entries from %s (%u chunks)\n",
                (long long)im->n_entries, c.p.imatrix_file, im->chunk_count);
        c.p.imatrix = im;
    }
    quant_choice *plan = NULL;
    int64_t n = 0;
    rc = plan_report(&c, &plan, &n);
    if (rc < 0) rc = c.dry_run ? dry_run_summary(&c, plan, n) : convert(&c, plan, n);
    free(plan);
    imatrix_free(im);
    return rc;
}
