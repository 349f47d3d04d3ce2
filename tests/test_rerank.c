/*
 * test_rerank.c - rerankers (model/rank.c, hearth_tokenize_rerank, the
 * loader's classification head, `hearth rerank`, POST /v1/rerank) on
 * synthetic models written by synth.c:
 *
 *   - a BERT cross-encoder (cls + cls.output with biases): each pair is
 *     [CLS] query [SEP] document [SEP] (the keys llama.cpp's converter
 *     writes), its score tanh(cls x + b) then cls.output . + b computed
 *     here in double precision from the dequantized weights, x being the
 *     pair's unnormalised first row (hearth_embed with cls pooling, which
 *     test_bert checks against a naive forward pass of its own);
 *   - a Qwen3-Reranker-shaped decoder (cls.output = 2 rows, a rerank prompt
 *     with a control token): the prompt filled in and tokenized whole, the
 *     score softmax(cls.output x)[0] over the last row;
 *   - a batch of pairs scores as each pair alone; ties and NaN sort as
 *     documented; a plain encoder is no reranker, a file whose head has the
 *     wrong shape is refused; pairs without the converter's keys;
 *   - `hearth rerank` and `hearth serve`'s /v1/rerank (Jina and TEI shapes)
 *     give the library's scores, best first, and refuse bad requests;
 *   - `hearth rag query --rerank`: the first stage's hits in the reranker's
 *     order, its scores, k kept, long chunks cut to fit.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "rag/rag.h"
#include "test.h"
#include "test_sh.h"

#include "server/json_path.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[64];

enum { N_PAIRS = 5, MAX_IDS = 256 };

static const char *const query = "what is the hearth";
static const char *const docs[N_PAIRS] = {
    "the hearth is the home of the fire", "a little girl named lily", "hello world",
    "the fire is warm and the home is happy", "she saw a big friend"};

/* Tensor `name` dequantized to F32 (caller frees), or NULL when absent. */
static float *get(gguf_file *f, const char *name, int64_t *rows) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return NULL;
    const int64_t cols = t->ne[0];
    *rows = t->n_elements / cols;
    float *w = malloc((size_t)t->n_elements * sizeof *w);
    REQUIRE(w);
    const size_t rb = kern_row_bytes((kern_type)t->type, cols);
    for (int64_t i = 0; i < *rows; i++)
        kern_ref_dequantize_row((kern_type)t->type, (const uint8_t *)t->data + (size_t)i * rb,
                                w + i * cols, cols);
    return w;
}

/* The reference head over x[d]: the score rank.c documents. */
static double ref_score(gguf_file *f, const float *x, int d, bool decoder) {
    int64_t rows = 0;
    float *cls = get(f, "cls.weight", &rows), *cls_b = get(f, "cls.bias", &rows);
    float *out_b = get(f, "cls.output.bias", &rows);
    float *out = get(f, "cls.output.weight", &rows);
    REQUIRE(out);
    double h[512], y[8] = {0};
    REQUIRE(d <= 512 && rows <= 8);
    /* x[0..d) and the head's tensors are the file's and the caller's data */
    // NOLINTBEGIN(clang-analyzer-core.uninitialized.Assign,clang-analyzer-core.UndefinedBinaryOperatorResult)
    for (int i = 0; i < d; i++) h[i] = x[i];
    if (cls) {
        for (int o = 0; o < d; o++) {
            double s = cls_b ? cls_b[o] : 0.0;
            for (int i = 0; i < d; i++) s += (double)cls[(size_t)o * d + i] * x[i];
            h[o] = tanh(s);
        }
    }
    for (int o = 0; o < rows; o++) {
        double s = out_b ? out_b[o] : 0.0;
        for (int i = 0; i < d; i++) s += (double)out[(size_t)o * d + i] * h[i];
        y[o] = s;
    }
    // NOLINTEND(clang-analyzer-core.uninitialized.Assign,clang-analyzer-core.UndefinedBinaryOperatorResult)
    double score = y[0];
    if (decoder) {
        double sum = 0.0;
        for (int o = 0; o < rows; o++) sum += exp(y[o] - y[0]);
        score = 1.0 / sum;
    }
    free(cls), free(cls_b), free(out), free(out_b);
    return score;
}

static size_t tokenize(const hearth_model *m, const char *text, bool special, int32_t *ids) {
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, text, strlen(text), false, special, ids, MAX_IDS, &n) == HEARTH_OK);
    return n;
}

static size_t pair_ids(const hearth_model *m, const char *d, int32_t *ids) {
    size_t n = 0;
    REQUIRE(hearth_tokenize_rerank(m, query, strlen(query), d, strlen(d), ids, MAX_IDS, &n) ==
            HEARTH_OK);
    return n;
}

/* The pairs' ids: the BERT layout, or the decoder's filled-in prompt. */
static void check_pair_tokens(const hearth_model *m, bool decoder) {
    int32_t got[MAX_IDS], want[MAX_IDS];
    for (int i = 0; i < N_PAIRS; i++) {
        const size_t n = pair_ids(m, docs[i], got);
        size_t k = 0;
        if (decoder) {
            char text[512];
            snprintf(text, sizeof text, "<s>query: %s | document: %s</s>", query, docs[i]);
            k = tokenize(m, text, true, want);
            CHECK(k > 2 && want[0] == 1 && want[k - 1] == 2); /* the control tokens parsed */
        } else {
            want[k++] = 101;
            k += tokenize(m, query, false, want + k);
            want[k++] = 102;
            k += tokenize(m, docs[i], false, want + k);
            want[k++] = 102;
        }
        CHECKF(n == k && !memcmp(got, want, k * sizeof *got), "pair %d: %zu ids, want %zu", i, n,
               k);
    }
    /* the size protocol: too small a buffer names the count */
    size_t n = 0;
    CHECK(hearth_tokenize_rerank(m, query, strlen(query), docs[0], strlen(docs[0]), NULL, 0, &n) ==
              HEARTH_ERR_INVALID_ARG &&
          n == pair_ids(m, docs[0], got));
}

static void check_model(const char *arch, kern_type type, double tol) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", tmp_dir, arch, kern_type_get(type)->name);
    synth_params p = synth_default_params();
    p.arch = arch;
    p.type = type;
    p.rerank = !strcmp(arch, "bert") ? 1 : 2;
    const bool decoder = strcmp(arch, "bert") != 0;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    CHECK(hearth_model_ranks(m));
    CHECK(hearth_model_pooling(m) == (decoder ? HEARTH_POOL_LAST : HEARTH_POOL_CLS));
    check_pair_tokens(m, decoder);

    const int d = hearth_model_n_embd(m);
    int32_t ids[N_PAIRS * MAX_IDS];
    int lens[N_PAIRS], off = 0;
    for (int i = 0; i < N_PAIRS; i++) {
        lens[i] = (int)pair_ids(m, docs[i], ids + off);
        off += lens[i];
    }
    float scores[N_PAIRS], one, *x = malloc((size_t)d * sizeof *x);
    REQUIRE(x);
    REQUIRE(hearth_rank_batch(s, ids, lens, N_PAIRS, scores) == HEARTH_OK);
    gguf_file *f = NULL;
    REQUIRE(gguf_open(path, &f) == HEARTH_OK);
    off = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < N_PAIRS; off += lens[i], i++) {
        REQUIRE(hearth_embed(s, ids + off, lens[i], hearth_model_pooling(m), false, x) ==
                HEARTH_OK);
        const double want = ref_score(f, x, d, decoder);
        CHECKF(fabs(scores[i] - want) <= tol * (1.0 + fabs(want)), "%s %s pair %d: %g, want %g",
               arch, kern_type_get(type)->name, i, scores[i], want);
        if (getenv("TEST_RERANK_VERBOSE"))
            printf("%s %s pair %d: %.9g, reference %.9g\n", arch, kern_type_get(type)->name, i,
                   scores[i], want);
        REQUIRE(hearth_rank_batch(s, ids + off, lens + i, 1, &one) == HEARTH_OK);
        CHECKF(one == scores[i], "%s pair %d alone: %g, in the batch %g", arch, i, one, scores[i]);
        if (decoder) CHECK(scores[i] > 0.0f && scores[i] < 1.0f);
        lo = fmin(lo, scores[i]), hi = fmax(hi, scores[i]);
    }
    /* the tolerance is far below what tells the pairs apart */
    CHECKF(hi - lo > 10 * tol * (1.0 + fabs(hi)), "%s: the scores span only %g", arch, hi - lo);
    gguf_close(f);
    free(x);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* What is not a reranker, or not a valid one. */
static void check_refusals(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/plain.gguf", tmp_dir);
    synth_params p = synth_default_params();
    p.arch = "bert";
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    CHECK(!hearth_model_ranks(m));
    int32_t ids[MAX_IDS], want[MAX_IDS];
    const int n = (int)pair_ids(m, docs[2], ids);
    float score;
    CHECK(hearth_rank_batch(s, ids, &n, 1, &score) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "not a reranker") != NULL);
    /* without the converter's keys, a WordPiece pair is llama.cpp's default:
     * [CLS] query [SEP] document (the separator added, no EOS) */
    size_t k = 0;
    want[k++] = 101;
    k += tokenize(m, query, false, want + k);
    want[k++] = 102;
    k += tokenize(m, docs[2], false, want + k);
    CHECKF((size_t)n == k && !memcmp(ids, want, k * sizeof *ids), "plain pair: %d ids, want %zu", n,
           k);
    hearth_session_free(s);
    hearth_model_free(m);

    /* a head of the wrong shape fails the load, naming the tensor */
    p.rerank = 1;
    p.extra_tensor = "cls.output.weight"; /* a second one, of 8 values */
    CHECK(synth_write(path, &p) != HEARTH_OK || hearth_model_load(path, NULL, &m) != HEARTH_OK);
    p.extra_tensor = NULL;
    p.rerank = 0;
    p.arch = "qwen3";
    p.extra_tensor = "cls.weight"; /* 8 values: not [n_embd][n_embd] */
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    CHECK(hearth_model_load(path, NULL, &m) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "cls.weight") != NULL);
    unlink(path);

    /* the order: best first, NaN last, ties in the order given */
    const float sc[6] = {0.5f, NAN, 2.0f, 0.5f, -1.0f, 2.0f};
    int order[6];
    REQUIRE(hearth_rank_order(sc, 6, order) == HEARTH_OK);
    static const int want_order[6] = {2, 5, 0, 3, 4, 1};
    CHECK(!memcmp(order, want_order, sizeof order));
}

/* The scores the library gives the pairs of `path`, in document order. */
static void library_scores(const char *path, float *scores) {
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    int32_t ids[N_PAIRS * MAX_IDS];
    int lens[N_PAIRS], off = 0;
    for (int i = 0; i < N_PAIRS; i++) {
        lens[i] = (int)pair_ids(m, docs[i], ids + off);
        off += lens[i];
    }
    REQUIRE(hearth_rank_batch(s, ids, lens, N_PAIRS, scores) == HEARTH_OK);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* A results array: best first, each index once, each score the library's
 * (printed as a double from a float: equal once rounded back). */
static void check_results(const cJSON *res, const float *scores, int top_n, const char *key,
                          const char *what) {
    CHECKF(cJSON_GetArraySize(res) == top_n, "%s: %d results, want %d", what,
           cJSON_GetArraySize(res), top_n);
    int seen[N_PAIRS] = {0}, i = 0;
    double prev = INFINITY;
    for (const cJSON *r = res ? res->child : NULL; r; r = r->next, i++) {
        const int index = (int)jnum(r, "index");
        REQUIRE(index >= 0 && index < N_PAIRS);
        const double sc = jnum(r, key);
        CHECKF((float)sc == scores[index] && sc <= prev && !seen[index]++,
               "%s: result %d (document %d) scores %g, the library %g", what, i, index, sc,
               scores[index]);
        prev = sc;
    }
}

static void serve(void) {
    if (system("curl --version > /dev/null 2>&1") != 0) {
        printf("test_rerank: curl is not installed; the server part is skipped\n");
        return;
    }
    char path[600], plain[600], body[2048];
    snprintf(path, sizeof path, "%s/serve.gguf", tmp_dir);
    snprintf(plain, sizeof plain, "%s/serve-plain.gguf", tmp_dir);
    synth_params p = synth_default_params();
    p.arch = "bert";
    REQUIRE(synth_write(plain, &p) == HEARTH_OK);
    p.rerank = 1;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    float scores[N_PAIRS];
    library_scores(path, scores);

    /* the command: one line a document, best first */
    char out[600];
    snprintf(out, sizeof out, "%s/ranked.jsonl", tmp_dir);
    CHECK(test_sh("'%s' rerank -m '%s' -q '%s' -t 1 '%s' '%s' '%s' '%s' '%s' > '%s'", HEARTH_BINARY,
                  path, query, docs[0], docs[1], docs[2], docs[3], docs[4], out) == 0);
    char *lines = test_read_file(out, NULL);
    REQUIRE(lines);
    cJSON *arr = cJSON_CreateArray();
    for (char *l = strtok(lines, "\n"); l; l = strtok(NULL, "\n"))
        cJSON_AddItemToArray(arr, cJSON_Parse(l));
    check_results(arr, scores, N_PAIRS, "score", "hearth rerank");
    CHECK(!strcmp(jstr(arr, "0.document"), docs[(int)jnum(arr, "0.index")]));
    cJSON_Delete(arr);
    free(lines);
    CHECK(test_sh("'%s' rerank -m '%s' -q x y 2>/dev/null", HEARTH_BINARY, plain) == 1);

    test_server sv;
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, path, tmp_dir, "-t 1 --ctx 64"));
    int st;
    int n = snprintf(body, sizeof body, "{\"query\":\"%s\",\"documents\":[", query);
    for (int i = 0; i < N_PAIRS; i++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      i == 1 ? "%s{\"text\":\"%s\"}" : "%s\"%s\"", i ? "," : "", docs[i]);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    cJSON *j = post(&sv, "/v1/rerank", body, &st);
    CHECK(st == 200);
    check_results(jget(j, "results"), scores, N_PAIRS, "relevance_score", "/v1/rerank");
    CHECK(jnum(j, "usage.prompt_tokens") > 5 * N_PAIRS && !jget(j, "results.0.document"));
    cJSON_Delete(j);
    /* top_n and the documents back */
    snprintf(body + n, sizeof body - (size_t)n, "],\"top_n\":2,\"return_documents\":true}");
    j = post(&sv, "/v1/reranking", body, &st);
    CHECK(st == 200);
    check_results(jget(j, "results"), scores, 2, "relevance_score", "top_n 2");
    const char *text = jstr(j, "results.0.document.text");
    CHECK(text && !strcmp(text, docs[(int)jnum(j, "results.0.index")]));
    cJSON_Delete(j);
    /* TEI's shape */
    n = snprintf(body, sizeof body, "{\"query\":\"%s\",\"return_text\":true,\"texts\":[", query);
    for (int i = 0; i < N_PAIRS; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s\"%s\"", i ? "," : "", docs[i]);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    j = post(&sv, "/rerank", body, &st);
    CHECK(st == 200 && cJSON_IsArray(j));
    check_results(j, scores, N_PAIRS, "score", "TEI");
    text = jstr(j, "0.text");
    CHECK(text && !strcmp(text, docs[(int)jnum(j, "0.index")]));
    cJSON_Delete(j);

    /* bad requests: a 400 naming the field */
    static const char *const bad[][2] = {
        {"{\"documents\":[\"a\"]}", "query"},
        {"{\"query\":\"q\",\"documents\":[]}", "documents"},
        {"{\"query\":\"q\",\"documents\":\"a\"}", "documents"},
        {"{\"query\":\"q\",\"documents\":[\"a\",7]}", "documents[1]"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":0}", "top_n"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":1.5}", "top_n"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"return_documents\":1}", "return_documents"},
        {"{\"query\":\"q\",\"texts\":[{\"text\":\"a\"}]}", "texts[0]"},
        {"{\"query\":\"q\",\"documents\":[\"a\xff\"]}", "documents[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = post(&sv, "/v1/rerank", bad[i][0], &st);
        const char *param = jstr(j, "error.param");
        CHECKF(st == 400 && param && !strcmp(param, bad[i][1]), "%s: %d %s", bad[i][0], st,
               param ? param : "(none)");
        cJSON_Delete(j);
    }
    /* a pair longer than the context (64) */
    n = snprintf(body, sizeof body, "{\"query\":\"q\",\"documents\":[\"a\",\"");
    for (int i = 0; i < 80; i++) n += snprintf(body + n, sizeof body - (size_t)n, "fire ");
    snprintf(body + n, sizeof body - (size_t)n, "\"]}");
    j = post(&sv, "/v1/rerank", body, &st);
    const char *code = jstr(j, "error.code");
    CHECK(st == 400 && code && !strcmp(code, "context_length_exceeded"));
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);

    /* a model that is no reranker: a 400 naming it */
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, plain, tmp_dir, "-t 1"));
    j = post(&sv, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\"]}", &st);
    code = jstr(j, "error.code");
    CHECK(st == 400 && code && !strcmp(code, "model_not_reranker"));
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
    unlink(path);
    unlink(plain);
}

/* hearth rag's second stage: the first stage's hits reordered by the
 * reranker (its scores, the library's for each chunk), the k best kept; a
 * chunk longer than the reranker's context judged by its head. */
static void rag(void) {
    char dir[600], path[600], out[700];
    snprintf(dir, sizeof dir, "%s/docs", tmp_dir);
    snprintf(path, sizeof path, "%s/rag-rr.gguf", tmp_dir);
    synth_params p = synth_default_params();
    p.arch = "bert";
    p.rerank = 1;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    REQUIRE(test_sh("mkdir -p '%s'", dir) == 0);
    for (int i = 0; i < N_PAIRS; i++) {
        char f[700];
        snprintf(f, sizeof f, "%s/%d.txt", dir, i);
        REQUIRE(test_write_file(f, docs[i], strlen(docs[i])));
    }
    snprintf(out, sizeof out, "%s/rag.jsonl", tmp_dir);
    REQUIRE(test_sh("cd '%s' && '%s' rag index --db r.db -q docs > /dev/null 2>&1", tmp_dir,
                    HEARTH_BINARY) == 0);
    /* the question has a word of every document: BM25 finds them all, the
     * reranker orders them */
    static const char question[] = "the hearth girl world friend";
    REQUIRE(test_sh("cd '%s' && '%s' rag query --db r.db --rerank '%s' -t 1 -k 3 --json '%s' "
                    "> '%s'",
                    tmp_dir, HEARTH_BINARY, path, question, out) == 0);
    float scores[N_PAIRS];
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    for (int i = 0; i < N_PAIRS; i++) {
        int32_t ids[MAX_IDS];
        size_t n = 0;
        REQUIRE(hearth_tokenize_rerank(m, question, strlen(question), docs[i], strlen(docs[i]), ids,
                                       MAX_IDS, &n) == HEARTH_OK);
        const int len = (int)n;
        REQUIRE(hearth_rank_batch(s, ids, &len, 1, &scores[i]) == HEARTH_OK);
    }
    hearth_session_free(s);
    hearth_model_free(m);
    char *lines = test_read_file(out, NULL);
    REQUIRE(lines);
    int n_lines = 0, first = -1;
    double prev = INFINITY;
    for (char *l = strtok(lines, "\n"); l; l = strtok(NULL, "\n"), n_lines++) {
        cJSON *j = cJSON_Parse(l);
        const char *text = jstr(j, "text");
        int doc = -1;
        for (int i = 0; text && i < N_PAIRS; i++)
            if (!strcmp(text, docs[i])) doc = i;
        REQUIRE(doc >= 0);
        const double sc = jnum(j, "score");
        CHECKF((float)sc == scores[doc] && sc <= prev, "rag hit %d (document %d): %g, want %g",
               n_lines, doc, sc, scores[doc]);
        prev = sc;
        if (first < 0) first = doc;
        cJSON_Delete(j);
    }
    free(lines);
    CHECKF(n_lines == 3, "rag --rerank -k 3: %d hits", n_lines);
    /* the best of all five comes first */
    int best = 0;
    for (int i = 1; i < N_PAIRS; i++) best = scores[i] > scores[best] ? i : best;
    CHECKF(first == best, "rag --rerank: document %d first, the reranker's best is %d", first,
           best);
    /* a context too small for the longer chunks: their heads are judged */
    char err[700];
    snprintf(err, sizeof err, "%s/rag.err", tmp_dir);
    CHECK(test_sh("cd '%s' && '%s' rag query --db r.db --rerank '%s' --ctx 16 -t 1 '%s' "
                  "> /dev/null 2> '%s'",
                  tmp_dir, HEARTH_BINARY, path, question, err) == 0);
    char *note = test_read_file(err, NULL);
    CHECK(note && strstr(note, "judged by their head"));
    free(note);

    /* rag_rerank itself: the order, the scores, the cut */
    rag_hits h = {.n = 3, .hit = calloc(3, sizeof(rag_hit))};
    REQUIRE(h.hit);
    for (int i = 0; i < 3; i++) {
        h.hit[i].path = strdup(docs[i]);
        h.hit[i].source = strdup("s");
        h.hit[i].text = strdup(docs[i]);
        h.hit[i].rank_bm25 = i + 1;
    }
    const float sc[3] = {0.1f, 0.7f, 0.3f};
    REQUIRE(rag_rerank(&h, sc, 2) == HEARTH_OK);
    CHECK(h.n == 2 && h.hit[0].rank_bm25 == 2 && h.hit[1].rank_bm25 == 3 &&
          h.hit[0].score == (double)0.7f && !strcmp(h.hit[1].text, docs[2]));
    rag_hits_free(&h);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_rerank.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    /* F32: float rounding apart; Q8_0: the head's activations are quantized */
    check_model("bert", KERN_F32, 1e-5);
    check_model("bert", KERN_Q8_0, 1e-2);
    check_model("qwen3", KERN_F32, 1e-5);
    check_model("qwen3", KERN_Q8_0, 1e-2);
    check_refusals();
    serve();
    rag();
    if (test_failures == 0) {
        char rm[600];
        snprintf(rm, sizeof rm, "rm -rf '%s'", tmp_dir);
        CHECK(system(rm) == 0);
    }
    return test_done("test_rerank");
}
