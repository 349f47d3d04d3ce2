/*
 * bench_rag.c - retrieval quality and speed on SQuAD 2.0: the 11 articles
 * of ../shared/data/rag/squad2 become files, `rag_ingest` indexes them, and
 * every answerable question is a query. A question is answered at k when one
 * of its top k chunks is from the right article and contains the answer's
 * bytes. Prints recall@1/3/5/10, MRR@10, the index time and the query
 * latency percentiles.
 *
 *   bench_rag SQUAD.json [--chunk-words N] [--overlap N] [--mode bm25]
 *
 * Vectors need a model with trained weights (none ships here): this bench
 * measures the BM25 path; `hearth rag index -m` adds vectors for a real one.
 */
#define _XOPEN_SOURCE 700 /* realpath, mkdtemp */

#include "../tests/squad_fixture.h"
#include "rag/rag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1-based rank of the first hit holding q's answer; 0 when none does. */
static int answer_rank(const squad_set *s, const squad_question *q, const rag_hits *h) {
    for (size_t i = 0; i < h->n; i++) {
        const rag_hit *x = &h->hit[i];
        if (squad_holds(s, q, x->path, x->byte_start, x->byte_len)) return (int)i + 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_rag SQUAD.json [--chunk-words N] [--overlap N]\n");
        return 2;
    }
    rag_ingest_params p = rag_ingest_default_params();
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--chunk-words"))
            p.chunk_words = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--overlap"))
            p.overlap_words = atoi(argv[i + 1]);
    }
    char dir[] = "/tmp/hearth-bench-rag-XXXXXX", db[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(db, sizeof db, "%s/index.db", dir);
    squad_set s;
    if (squad_load(argv[1], dir, &s)) return 1;
    if (s.n_q == 0) {
        fprintf(stderr, "bench_rag: %s holds no questions\n", argv[1]);
        return 1;
    }
    rag_index *x = NULL;
    rag_ingest_stats st;
    const char *root = dir;
    const double t0 = now_ms();
    if (rag_open(db, true, &x) || rag_ingest(x, &root, 1, &p, &st)) {
        fprintf(stderr, "bench_rag: %s\n", hearth_last_error());
        return 1;
    }
    const double index_ms = now_ms() - t0;
    const int ks[] = {1, 3, 5, 10};
    size_t found[4] = {0};
    double mrr = 0, *lat = malloc(s.n_q * sizeof *lat);
    for (size_t i = 0; i < s.n_q && lat; i++) {
        rag_hits h;
        const rag_query q = {
            .text = s.q[i].text, .len = strlen(s.q[i].text), .k = 10, .mode = RAG_MODE_BM25};
        const double q0 = now_ms();
        if (rag_search(x, &q, &h)) {
            fprintf(stderr, "bench_rag: %s\n", hearth_last_error());
            return 1;
        }
        lat[i] = now_ms() - q0;
        const int r = answer_rank(&s, &s.q[i], &h);
        for (int k = 0; k < 4; k++) found[k] += r && r <= ks[k];
        if (r) mrr += 1.0 / r;
        rag_hits_free(&h);
    }
    if (!lat) return 1;
    qsort(lat, s.n_q, sizeof *lat, cmp_double);
    printf("corpus: %d articles, %lld chunks (%d words, overlap %d), indexed in %.0f ms\n",
           s.n_articles, (long long)st.chunks_written, p.chunk_words, p.overlap_words, index_ms);
    printf("questions: %zu answerable; bm25\n", s.n_q);
    for (int k = 0; k < 4; k++) printf("recall@%d %.3f\n", ks[k], (double)found[k] / (double)s.n_q);
    printf("MRR@10 %.3f\n", mrr / (double)s.n_q);
    printf("query ms: p50 %.2f p90 %.2f p99 %.2f max %.2f\n", lat[s.n_q / 2], lat[s.n_q * 9 / 10],
           lat[s.n_q * 99 / 100], lat[s.n_q - 1]);
    free(lat);
    rag_close(x);
    for (int a = 0; a < s.n_articles; a++) unlink(s.path[a]);
    unlink(db);
    char side[80];
    snprintf(side, sizeof side, "%s-wal", db), unlink(side);
    snprintf(side, sizeof side, "%s-shm", db), unlink(side);
    rmdir(dir);
    squad_free(&s);
    return 0;
}
