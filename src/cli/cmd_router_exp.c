/*
 * cmd_router_exp.c - the reporting half of `hearth router`: RouteLLM's metrics
 * per benchmark beside the random router and the oracle, the --tune grid, the
 * one-shot RouteLLM experiment (decontaminate, split by prompt hash, tune on
 * the training part only, score the held-out part once, compare with the
 * subject-rate baseline), and --from-ledger.
 */
#include "cli.h"
#include "cmd_router_impl.h"

#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The candidates of --tune: L2 strength and group smoothing around the given
 * feature settings (in development on the training part the target "gain"
 * beat "needs-strong" clearly, so only it is searched). */
void rcli_grid(const rcli *c, rtr_train_params *grid, size_t *n) {
    static const double l2s[] = {3e-4, 1e-3, 3e-3}, smooth[] = {0, 0.5, 1};
    size_t k = 0;
    for (size_t j = 0; j < sizeof smooth / sizeof smooth[0]; j++)
        for (size_t i = 0; i < sizeof l2s / sizeof l2s[0] && k < RCLI_MAX_GRID; i++) {
            grid[k] = c->tp;
            grid[k].group_smooth = smooth[j];
            grid[k].item_weight = 0;
            grid[k++].l2 = l2s[i];
        }
    *n = k;
}

static void print_row(FILE *out, const char *name, const rtr_metrics *m) {
    fprintf(out, "  %-22s %6.4f   %6.4f   %6.1f %%   %6.1f %%   %6.1f %%\n", name, m->apgr,
            m->apgr_routellm, 100 * m->cpt50, 100 * m->cpt80, 100 * m->local_at_95);
}

static void print_curve(FILE *out, const char *name, const rtr_metrics *m) {
    fprintf(out, "  %-22s", name);
    for (int t = 0; t <= 10; t++) fprintf(out, " %5.2f", m->pgr_at[t]);
    fputc('\n', out);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A 95 % percentile interval of APGR over bootstrap resamples of the queries
 * (a fixed seed, so a report is reproducible): how much of a difference
 * between two routers the sample size can show. */
static void apgr_interval(const double *s, const bool *w, const bool *g, size_t n, double *lo,
                          double *hi) {
    enum { B = 200 };
    double *bs = malloc(n * sizeof *bs), ap[B] = {0};
    bool *bw = malloc(n), *bg = malloc(n);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int k = 0;
    for (int b = 0; bs && bw && bg && b < B; b++) {
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t j = (size_t)(x % n);
            bs[i] = s[j], bw[i] = w[j], bg[i] = g[j];
        }
        rtr_metrics m;
        if (!rtr_metrics_compute(bs, bw, bg, n, &m)) ap[k++] = m.apgr;
    }
    qsort(ap, (size_t)k, sizeof ap[0], cmp_double);
    *lo = k ? ap[k * 25 / 1000] : NAN;
    *hi = k ? ap[k - 1 - k * 25 / 1000] : NAN;
    free(bs), free(bw), free(bg);
}

/* The metrics of one benchmark (rows whose group's source is `src`, or all
 * rows when src is NULL). */
static int report_one(FILE *out, const rtr_dataset *d, const size_t *rows, size_t n,
                      const double *scores, const double *baseline, const char *src) {
    double *s = malloc((n ? n : 1) * sizeof *s), *b = malloc((n ? n : 1) * sizeof *b);
    bool *wk = malloc(n ? n : 1), *st = malloc(n ? n : 1);
    size_t m = 0;
    int rc = 1;
    if (!s || !b || !wk || !st) goto done;
    for (size_t i = 0; i < n; i++) {
        const rtr_example *x = &d->ex[rows ? rows[i] : i];
        char g[128];
        rtr_group_source(d->groups[x->group], g, sizeof g);
        if (src && strcmp(g, src)) continue;
        s[m] = scores[i];
        b[m] = baseline ? baseline[i] : 0;
        wk[m] = x->weak_ok;
        st[m++] = x->strong_ok;
    }
    rtr_metrics mr, mb, mx, mo;
    if (rtr_metrics_compute(s, wk, st, m, &mr)) {
        fprintf(stderr, "hearth router: %s: %s\n", src ? src : "all", hearth_last_error());
        goto done;
    }
    rtr_metrics_random(wk, st, m, &mx);
    bool have_oracle = !rtr_metrics_oracle(wk, st, m, &mo);
    bool have_base = baseline && !rtr_metrics_compute(b, wk, st, m, &mb);
    fprintf(out, "%s: %zu prompts, weak tier right %.1f %%, strong tier right %.1f %%\n",
            src ? src : "all", m, 100 * mr.weak_quality, 100 * mr.strong_quality);
    fprintf(out, "  %-22s %-8s %-8s %-10s %-10s %s\n", "router", "APGR", "APGR-11", "CPT(50%)",
            "CPT(80%)", "local@95%");
    print_row(out, "hearth", &mr);
    if (have_base) print_row(out, "baseline (group+len)", &mb);
    print_row(out, "random", &mx);
    if (have_oracle) print_row(out, "oracle", &mo);
    double lo, hi;
    apgr_interval(s, wk, st, m, &lo, &hi);
    fprintf(out, "  hearth APGR 95 %% bootstrap interval: %.3f .. %.3f\n", lo, hi);
    if (have_base) {
        apgr_interval(b, wk, st, m, &lo, &hi);
        fprintf(out, "  baseline APGR 95 %% bootstrap interval: %.3f .. %.3f\n", lo, hi);
    }
    fprintf(out, "  PGR at strong-call share 0, 10, ..., 100 %%:\n");
    print_curve(out, "hearth", &mr);
    if (have_base) print_curve(out, "baseline (group+len)", &mb);
    print_curve(out, "random", &mx);
    fputc('\n', out);
    rc = 0;
done:
    free(s), free(b), free(wk), free(st);
    return rc;
}

int rcli_report(FILE *out, const rtr_dataset *d, const size_t *rows, size_t n, const double *scores,
                const double *baseline) {
    /* the distinct benchmarks, in order of first appearance */
    char srcs[16][128];
    size_t n_src = 0;
    for (size_t i = 0; i < n && n_src < 16; i++) {
        char g[128];
        rtr_group_source(d->groups[d->ex[rows ? rows[i] : i].group], g, sizeof g);
        bool seen = false;
        for (size_t k = 0; k < n_src && !seen; k++) seen = !strcmp(srcs[k], g);
        if (!seen) memcpy(srcs[n_src++], g, sizeof g);
    }
    int rc = 0;
    for (size_t k = 0; k < n_src && n_src > 1; k++)
        rc |= report_one(out, d, rows, n, scores, baseline, srcs[k]);
    rc |= report_one(out, d, rows, n, scores, baseline, NULL);
    return rc;
}

/* ------------------------------------------------------------- experiment */

static int load_routellm(rcli *c, rtr_dataset *d) {
    char pat[4096];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/mmlu/responses/mmlu_*.csv", c->routellm);
    // NOLINTNEXTLINE(concurrency-mt-unsafe): the CLI's only thread, before any pool starts
    if (glob(pat, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "hearth router experiment: no files match %s\n", pat);
        return 1;
    }
    c->n_data = 0;
    static char paths[RCLI_MAX_FILES][4096];
    for (size_t i = 0; i < g.gl_pathc && c->n_data + 1 < RCLI_MAX_FILES; i++) {
        snprintf(paths[c->n_data], sizeof paths[0], "%s", g.gl_pathv[i]);
        c->data[c->n_data] = paths[c->n_data];
        c->n_data++;
    }
    globfree(&g);
    snprintf(paths[c->n_data], sizeof paths[0], "%s/gsm8k/gsm8k_responses.csv", c->routellm);
    c->data[c->n_data] = paths[c->n_data];
    c->n_data++;
    static char ex[2][4096];
    snprintf(ex[0], sizeof ex[0], "%s/mmlu/contaminated_prompts.jsonl", c->routellm);
    snprintf(ex[1], sizeof ex[1], "%s/gsm8k/contaminated_prompts.jsonl", c->routellm);
    c->exclude[0] = ex[0];
    c->exclude[1] = ex[1];
    c->n_exclude = 2;
    return rcli_load(c, d, true);
}

static int write_split(const rcli *c, const rtr_dataset *d, const size_t *rows, size_t n,
                       const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->split_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hearth router: cannot write %s\n", path);
        return 1;
    }
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const rtr_example *x = &d->ex[rows[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON *id = cJSON_Parse(x->id);
        char *s = NULL;
        if (o && id && cJSON_AddItemToObject(o, "id", id) &&
            cJSON_AddStringToObject(o, "group", d->groups[x->group]) &&
            cJSON_AddStringToObject(o, "prompt", x->prompt) &&
            cJSON_AddBoolToObject(o, "weak_ok", x->weak_ok) &&
            cJSON_AddBoolToObject(o, "strong_ok", x->strong_ok))
            s = cJSON_PrintUnformatted(o);
        else
            cJSON_Delete(id);
        ok = s && fprintf(f, "%s\n", s) > 0;
        cJSON_free(s);
        cJSON_Delete(o);
    }
    ok = (fclose(f) == 0) && ok;
    if (!ok) fprintf(stderr, "hearth router: failed writing %s\n", path);
    return ok ? 0 : 1;
}

/* APGR and CPT(50 %) of out-of-fold scores s[i] (rows in `order`) on MMLU
 * (r[0]) and on the rest (r[1], GSM8K); NaN where there are none. */
static void bench_metrics(const rtr_dataset *d, const size_t *order, size_t n, const double *s,
                          double r[2][2]) {
    double *sb = malloc((n ? n : 1) * sizeof *sb);
    bool *wk = malloc(n ? n : 1), *st = malloc(n ? n : 1);
    r[0][0] = r[0][1] = r[1][0] = r[1][1] = NAN;
    for (int b = 0; sb && wk && st && b < 2; b++) { /* 0: mmlu, 1: the rest */
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const rtr_example *x = &d->ex[order[i]];
            char g[128];
            rtr_group_source(d->groups[x->group], g, sizeof g);
            if ((strcmp(g, "mmlu") == 0) != (b == 0)) continue;
            sb[m] = s[i];
            wk[m] = x->weak_ok;
            st[m++] = x->strong_ok;
        }
        rtr_metrics mt;
        if (m && !rtr_metrics_compute(sb, wk, st, m, &mt)) r[b][0] = mt.apgr, r[b][1] = mt.cpt50;
    }
    free(sb), free(wk), free(st);
}

/* With --dev and a subject part trained with --subject-head-weight 0 (so that
 * part [3] is P(a group alone in its benchmark | text)): the cross-validated
 * figures of the blends a*subject + (P1 + (1 - P1)*h)*(heads + c*plain-label
 * heads) over a small grid, from the out-of-fold parts of each training row
 * (rows in `order`; the subject part without the neighbours). */
static void dev_blends(const rtr_dataset *d, const size_t *order, size_t n, const double *parts) {
    static const double as[] = {0, 0.125, 0.25, 0.5, 1, 2}, hs[] = {0, 0.125, 0.25, 0.5, 1},
                        cs[] = {0, 0.5, 1};
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return;
    printf("Blends a*subject + (P1 + (1-P1)*h)*(heads + c*plain-label heads), out of fold:\n"
           "      a      h     c   MMLU APGR  CPT(50%%)  GSM8K APGR  mean\n");
    for (size_t ia = 0; ia < sizeof as / sizeof as[0]; ia++)
        for (size_t ih = 0; ih < sizeof hs / sizeof hs[0]; ih++)
            for (size_t ic = 0; ic < sizeof cs / sizeof cs[0]; ic++) {
                double r[2][2];
                for (size_t i = 0; i < n; i++) {
                    const double *p = parts + 4 * i;
                    s[i] = as[ia] * p[0] + (p[3] + (1 - p[3]) * hs[ih]) * (p[1] + cs[ic] * p[2]);
                }
                bench_metrics(d, order, n, s, r);
                printf("  %5g %6g %5g   %7.4f   %6.1f %%   %7.4f   %7.4f\n", as[ia], hs[ih], cs[ic],
                       r[0][0], 100 * r[0][1], r[1][0], (r[0][0] + r[1][0]) / 2);
            }
    putchar('\n');
    free(s);
}

/* The neighbours' K and weights that --dev compares. */
static const uint32_t dev_ks[] = {50, 100, 200};
static const double dev_kw[] = {0, 0.3, 0.5, 0.7};
enum { DEV_NK = sizeof dev_ks / sizeof dev_ks[0], DEV_NW = sizeof dev_kw / sizeof dev_kw[0] };

/* With a neighbours part: the out-of-fold figures of the model's score with
 * the subject part's rate E moved to E + a*(kn - E), kn over the K nearest
 * (knn[i] holds E, then kn for each of dev_ks), for a on MMLU and GSM8K alike
 * and, in the last column, for a on MMLU and 0 on GSM8K. */
static void dev_knn_blends(const rtr_dataset *d, const size_t *order, size_t n, const double *parts,
                           const double *knn, double subject_weight) {
    double *s = malloc((n ? n : 1) * sizeof *s), r0[2][2] = {{NAN, NAN}, {NAN, NAN}};
    if (!s) return;
    printf("Neighbours: subject rate E -> E + a*(kn - E), kn the similarity-weighted mean gain "
           "of the K nearest, out of fold:\n"
           "      K     a   MMLU APGR  CPT(50%%)  GSM8K APGR  mean     mean (a on MMLU only)\n");
    for (size_t ik = 0; ik < DEV_NK; ik++)
        for (size_t iw = 0; iw < DEV_NW; iw++) {
            double r[2][2];
            for (size_t i = 0; i < n; i++) {
                const double *p = parts + 4 * i, *q = knn + (1 + DEV_NK) * i;
                double e = q[0] + dev_kw[iw] * (q[1 + ik] - q[0]);
                s[i] = subject_weight * e + p[3] * (p[1] + p[2]);
            }
            bench_metrics(d, order, n, s, r);
            if (iw == 0) memcpy(r0, r, sizeof r0);
            printf("  %5u %5g   %7.4f   %6.1f %%   %7.4f   %7.4f  %7.4f\n", dev_ks[ik], dev_kw[iw],
                   r[0][0], 100 * r[0][1], r[1][0], (r[0][0] + r[1][0]) / 2,
                   (r[0][0] + r0[1][0]) / 2);
        }
    putchar('\n');
    free(s);
}

/* The neighbour-based subject estimate's K (of the groups) that --dev compares,
 * and its weights b. Per row, gq holds the classifier's E and head multiplier
 * H, then for each of dev_gks the neighbours' rate, then their multiplier. */
static const uint32_t dev_gks[] = {10, 20, 50, 100, 200};
static const double dev_gw[] = {0, 0.25, 0.5, 0.75, 1}, dev_ga[] = {0, 0.3, 0.5};
enum {
    DEV_NG = sizeof dev_gks / sizeof dev_gks[0],
    DEV_NGQ = 2 + 2 * DEV_NG,
    DEV_NGW = sizeof dev_gw / sizeof dev_gw[0],
    DEV_NGA = sizeof dev_ga / sizeof dev_ga[0],
};

/* With the neighbours' groups: the out-of-fold figures of the score with
 * P(g | text) moved b of the way to the K_g nearest prompts' groups (for E
 * and H, and in the last column for E alone), then E -> E + a*(kn - E) with
 * kn over the K nearest, for a and b on both benchmarks. */
static void dev_group_blends(const rtr_dataset *d, const size_t *order, size_t n,
                             const double *parts, const double *knn, const double *gq,
                             double subject_weight) {
    double *s = malloc(2 * (n ? n : 1) * sizeof *s);
    if (!s) return;
    double *s2 = s + (n ? n : 1);
    printf("Neighbour-based subject estimate: P(g|text) -> (1-b) P(g|text) + b Q(g), Q the "
           "similarity-weighted groups of the K_g nearest, then E -> E + a*(kn - E), out of "
           "fold:\n"
           "      K   K_g     a     b   MMLU APGR  CPT(50%%)  GSM8K APGR  mean     mean (E "
           "only)\n");
    for (size_t ik = 0; ik < DEV_NK; ik++)
        for (size_t ig = 0; ig < DEV_NG; ig++) {
            /* every K_g beside K = 100, and only K_g = K beside the others */
            if (dev_ks[ik] != 100 && dev_ks[ik] != dev_gks[ig]) continue;
            for (size_t ia = 0; ia < DEV_NGA; ia++)
                for (size_t ib = 0; ib < DEV_NGW; ib++) {
                    double r[2][2], r2[2][2], a = dev_ga[ia], b = dev_gw[ib];
                    for (size_t i = 0; i < n; i++) {
                        const double *p = parts + 4 * i, *q = knn + (1 + DEV_NK) * i;
                        const double *g = gq + DEV_NGQ * i;
                        double e = g[0] + b * (g[2 + ig] - g[0]);
                        double h = g[1] + b * (g[2 + DEV_NG + ig] - g[1]);
                        e += a * (q[1 + ik] - e);
                        s[i] = subject_weight * e + h * (p[1] + p[2]);
                        s2[i] = subject_weight * e + g[1] * (p[1] + p[2]);
                    }
                    bench_metrics(d, order, n, s, r);
                    bench_metrics(d, order, n, s2, r2);
                    printf("  %5u %5u %5g %5g   %7.4f   %6.1f %%   %7.4f   %7.4f  %7.4f\n",
                           dev_ks[ik], dev_gks[ig], a, b, r[0][0], 100 * r[0][1], r[1][0],
                           (r[0][0] + r[1][0]) / 2, (r2[0][0] + r2[1][0]) / 2);
                }
        }
    putchar('\n');
    free(s);
}

/* The out-of-fold neighbours figures of one fold's validation rows: into
 * knn[(1 + DEV_NK) * i] the subject part's rate E and kn for each of dev_ks,
 * and E (without the neighbours) into parts[4 * i], as dev_blends wants it.
 * Returns false when scoring failed (reported). */
static bool dev_knn_parts(const rtr_model *m, const rtr_dataset *d, const size_t *val, size_t n_val,
                          double *parts, double *knn, double *gq) {
    for (size_t i = 0; i < n_val; i++) {
        const rtr_example *x = &d->ex[val[i]];
        double *q = knn + (1 + DEV_NK) * i, *g = gq + DEV_NGQ * i;
        if (rtr_knn_parts(m, x->prompt, x->prompt_len, dev_ks, DEV_NK, &q[0], &q[1]) ||
            rtr_knn_subject_parts(m, x->prompt, x->prompt_len, dev_gks, DEV_NG, &g[0], &g[1], &g[2],
                                  &g[2 + DEV_NG])) {
            cli_fail("router", "neighbours");
            return false;
        }
        parts[4 * i] = q[0];
    }
    return true;
}

/* --dump: the out-of-fold scores and parts, one JSON line a training row,
 * for analysis elsewhere (with the row's id, its fold and, with a neighbours
 * part, E and kn for each of dev_ks). */
static void dev_dump(const char *path, const rtr_dataset *d, const size_t *order, size_t n,
                     const double *s, const double *b, const double *parts, const double *knn) {
    FILE *f = fopen(path, "w");
    for (size_t i = 0; f && i < n; i++) {
        const rtr_example *x = &d->ex[order[i]];
        fprintf(f,
                "{\"group\":\"%s\",\"id\":%s,\"fold\":%u,\"weak_ok\":%d,\"strong_ok\":%d,"
                "\"score\":%.9g,\"baseline\":%.9g,\"len\":%zu,\"parts\":[%.9g,%.9g,%.9g]",
                d->groups[x->group], x->id,
                rtr_split_bucket("hearth-router-dev", x->prompt, x->prompt_len) * 5 / 100,
                x->weak_ok, x->strong_ok, s[i], b[i], x->prompt_len, parts[4 * i], parts[4 * i + 1],
                parts[4 * i + 2]);
        for (size_t j = 0; knn && j <= DEV_NK; j++)
            fprintf(f, "%s%.9g", j ? "," : ",\"knn\":[", knn[(1 + DEV_NK) * i + j]);
        fputs(knn ? "]}\n" : "}\n", f);
    }
    if (!f || fclose(f)) fprintf(stderr, "hearth router: cannot write %s\n", path);
}

/* --dev: 5-fold cross-validation inside the training part (the held-out part
 * is never touched): every training row gets a score from the model fitted
 * on the other four folds, and the report pools them. */
static int dev_folds(rcli *c, rtr_dataset *d, const size_t *tr, size_t n_tr) {
    enum { K = 5 };
    size_t *fit = malloc(n_tr * sizeof *fit), *val = malloc(n_tr * sizeof *val);
    size_t *order = malloc(n_tr * sizeof *order);
    double *s = malloc(n_tr * sizeof *s), *b = malloc(n_tr * sizeof *b);
    double *parts = malloc(4 * n_tr * sizeof *parts), *pr = malloc(256 * sizeof *pr);
    double *knn = malloc((1 + DEV_NK) * n_tr * sizeof *knn);
    double *gq = malloc(DEV_NGQ * n_tr * sizeof *gq);
    size_t n_done = 0, n_mmlu = 0, n_top1 = 0;
    bool have_knn = true;
    int rc = 1;
    if (!fit || !val || !order || !s || !b || !parts || !pr || !knn || !gq) goto done;
    for (unsigned k = 0; k < K; k++) {
        size_t n_fit = 0, n_val = 0;
        for (size_t i = 0; i < n_tr; i++) {
            const rtr_example *x = &d->ex[tr[i]];
            bool in =
                rtr_split_pick("hearth-router-dev", x->prompt, x->prompt_len, 100 * (k + 1) / K) &&
                !rtr_split_pick("hearth-router-dev", x->prompt, x->prompt_len, 100 * k / K);
            if (in)
                val[n_val++] = tr[i];
            else
                fit[n_fit++] = tr[i];
        }
        rtr_model *m = NULL;
        if ((rc = rcli_fit(c, d, fit, n_fit, &m))) goto done;
        double *sk = rcli_score_all(m, d, val, n_val);
        for (size_t i = 0; sk && i < n_val; i++)
            if (rtr_score_parts(m, d->ex[val[i]].prompt, d->ex[val[i]].prompt_len,
                                parts + 4 * (n_done + i))) {
                free(sk);
                sk = NULL;
            }
        have_knn = have_knn && rtr_knn_k(m);
        if (sk && have_knn &&
            !dev_knn_parts(m, d, val, n_val, parts + 4 * n_done, knn + (1 + DEV_NK) * n_done,
                           gq + DEV_NGQ * n_done)) {
            free(sk);
            sk = NULL;
        }
        /* the subject classifier's top-1 accuracy on MMLU's out-of-fold rows */
        size_t nc = rtr_subject_classes(m);
        for (size_t i = 0; sk && nc && nc <= 256 && i < n_val; i++) {
            const rtr_example *x = &d->ex[val[i]];
            if (strncmp(d->groups[x->group], "mmlu_", 5)) continue;
            if (rtr_subject_probs(m, x->prompt, x->prompt_len, pr)) break;
            size_t best = 0;
            for (size_t q = 1; q < nc; q++) best = pr[q] > pr[best] ? q : best;
            n_mmlu++;
            n_top1 += best == x->group;
        }
        rtr_free(m);
        if (!sk) goto done;
        memcpy(s + n_done, sk, n_val * sizeof *sk);
        free(sk);
        if (rtr_baseline_scores(d, fit, n_fit, val, n_val, b + n_done)) {
            rc = cli_fail("router", "baseline");
            goto done;
        }
        memcpy(order + n_done, val, n_val * sizeof *val);
        n_done += n_val;
    }
    if (c->dump) dev_dump(c->dump, d, order, n_done, s, b, parts, have_knn ? knn : NULL);
    printf("Development: %d-fold cross-validation inside the training part (%zu prompts):\n\n", K,
           n_done);
    if (n_mmlu)
        printf("Subject classifier, out of fold: the top class is the MMLU prompt's subject for "
               "%.1f %% of %zu\n\n",
               100.0 * (double)n_top1 / (double)n_mmlu, n_mmlu);
    if (c->tp.subject_weight > 0 && c->tp.subject_head_weight == 0)
        dev_blends(d, order, n_done, parts);
    if (have_knn) {
        dev_knn_blends(d, order, n_done, parts, knn, c->tp.subject_weight);
        dev_group_blends(d, order, n_done, parts, knn, gq, c->tp.subject_weight);
    }
    rc = rcli_report(stdout, d, order, n_done, s, b);
done:
    free(fit), free(val), free(order), free(s), free(b), free(parts), free(pr), free(knn);
    free(gq);
    return rc;
}

int rcli_experiment(rcli *c) {
    rtr_dataset d;
    rtr_model *m = NULL;
    size_t *tr = NULL, *ev = NULL, n_tr = 0, n_ev = 0;
    double *s = NULL, *b = NULL;
    int rc;
    if (!c->routellm) {
        fprintf(stderr, "hearth router experiment: --routellm DIR is required\n");
        return 2;
    }
    if (c->eval_pct < 1 || c->eval_pct > 90) {
        fprintf(stderr, "hearth router experiment: --eval-pct must be 1..90\n");
        return 2;
    }
    rtr_dataset_init(&d);
    if ((rc = load_routellm(c, &d))) goto done;
    tr = malloc(d.n * sizeof *tr);
    ev = malloc(d.n * sizeof *ev);
    if (!tr || !ev) {
        rc = 1;
        goto done;
    }
    for (size_t i = 0; i < d.n; i++) {
        if (rtr_split_pick("hearth-router-eval", d.ex[i].prompt, d.ex[i].prompt_len, c->eval_pct))
            ev[n_ev++] = i;
        else
            tr[n_tr++] = i;
    }
    fprintf(stderr, "hearth router: %zu prompts after decontamination: %zu train, %zu eval\n", d.n,
            n_tr, n_ev);
    if (n_tr == 0 || n_ev == 0) { /* too few prompts for the split */
        fprintf(stderr, "hearth router experiment: a part of the split is empty\n");
        rc = 1;
        goto done;
    }
    /* the defaults are the method chosen in development; --tune searches the
     * heads' l2 and smoothing around them (slow with the subject part) */
    if (c->split_dir && ((rc = write_split(c, &d, tr, n_tr, "train.jsonl")) ||
                         (rc = write_split(c, &d, ev, n_ev, "eval.jsonl"))))
        goto done;
    if (c->dev) {
        rc = dev_folds(c, &d, tr, n_tr);
        goto done;
    }
    if ((rc = rcli_fit(c, &d, tr, n_tr, &m))) goto done;
    if (c->out && rtr_save(m, c->out)) {
        rc = cli_fail("router", "saving");
        goto done;
    }
    if (!(s = rcli_score_all(m, &d, ev, n_ev)) || !(b = malloc(n_ev * sizeof *b))) {
        rc = 1;
        goto done;
    }
    if (rtr_baseline_scores(&d, tr, n_tr, ev, n_ev, b)) {
        rc = cli_fail("router", "baseline");
        goto done;
    }
    printf("Held-out part (%u %% of the prompts by hash), scored once:\n\n", c->eval_pct);
    rc = rcli_report(stdout, &d, ev, n_ev, s, b);
done:
    free(s), free(b), free(tr), free(ev);
    rtr_free(m);
    rtr_dataset_fini(&d);
    return rc;
}

/* --------------------------------------------------------------- ledger */

int rcli_from_ledger(rcli *c, rtr_dataset *d) {
    rtr_ledger_counts k;
    if (rtr_dataset_from_ledger(d, c->ledger, &k)) return cli_fail("router", "reading the ledger");
    if (!c->quiet)
        fprintf(stderr,
                "hearth router: ledger %s: %zu answered rows with prompts: %zu with both answers "
                "(%zu disagreeing: weak tier wrong), %zu kept local by the confidence check, "
                "%zu skipped\n",
                c->ledger, k.rows, k.both, k.weak_wrong, k.kept_local, k.skipped);
    if (k.both + k.kept_local == 0) {
        fprintf(stderr, "hearth router train: the ledger holds no labeled rows (record prompts "
                        "with --ledger-prompts)\n");
        return 1;
    }
    return 0;
}
