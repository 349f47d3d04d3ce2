/*
 * test_server_rag_rerank.c - the reranker in `hearth serve --rag DB
 * --rag-rerank ID` (api_rag.c): a synthetic BERT reranker (`hearth synth
 * --rerank`'s file) served beside a chat model, a BM25 index of five
 * one-sentence files, and the question sharing a word with each, so the
 * first stage finds them all and the reranker alone decides the order:
 *
 *   - /v1/hearth/rag/search: the hits are the first stage's candidates
 *     (rag_search, called here) in the order of hearth_rank_batch's scores
 *     for the same pairs (computed here with a session of the test's own),
 *     with those scores, the retrieval score kept, k honoured; "rerank":
 *     false gives the first stage's order;
 *   - a chat request's "rag" (rendered by /apply-template): the passages in
 *     the reranker's order, or the first stage's with "rerank": false; the
 *     x-hearth-rag header says "reranked";
 *   - --rag-rerank-depth and a reranker context shorter than the pairs: the
 *     best of the first `depth` candidates, each cut as `hearth rag query
 *     --rerank` cuts it (rag_rerank_pair), a question too long a 400;
 *   - --models-max 1: a rag chat request lets its model go for the
 *     reranking and takes it back (it would otherwise wait on itself);
 *   - the 400s naming the field, "rerank": true without a reranker, and the
 *     start-up refusals (a name no model has, a model that is no reranker,
 *     no --rag, a depth without a reranker).
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include "rag/rag.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "test.h"
#include "test_sh.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

enum { N_DOCS = 5, MAX_IDS = 512, SMALL_CTX = 11 };

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_rag_rerank_XXXXXX";
static char db[600], rr_path[600];

static const char *const docs[N_DOCS] = {
    "the hearth is the home of the fire", "a little girl named lily", "hello world",
    "the fire is warm and the home is happy", "she saw a big friend"};
static const char question[] = "the hearth girl world friend";

/* The first stage as the server runs it (BM25, `depth` candidates). */
static void first_stage(int depth, rag_hits *h) {
    rag_index *x = NULL;
    REQUIRE(rag_open(db, false, &x) == HEARTH_OK);
    const rag_query q = {
        .text = question, .len = strlen(question), .k = depth, .mode = RAG_MODE_BM25};
    REQUIRE(rag_search(x, &q, h) == HEARTH_OK);
    rag_close(x);
}

/* The reranker's score of each hit, from the library: the whole pair
 * (hearth_tokenize_rerank) when cap is 0, else the pair cut to cap tokens
 * by the CLI's rule (rag_rerank_pair). */
static void library_scores(const rag_hits *h, size_t cap, float *scores) {
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    REQUIRE(hearth_model_load(rr_path, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    for (size_t i = 0; i < h->n; i++) {
        int32_t ids[MAX_IDS];
        size_t n = 0;
        bool cut = false;
        if (cap)
            REQUIRE(rag_rerank_pair(m, question, strlen(question), h->hit[i].text, ids, cap, &n,
                                    &cut) == HEARTH_OK);
        else
            REQUIRE(hearth_tokenize_rerank(m, question, strlen(question), h->hit[i].text,
                                           strlen(h->hit[i].text), ids, MAX_IDS, &n) == HEARTH_OK);
        const int len = (int)n;
        REQUIRE(hearth_rank_batch(s, ids, &len, 1, &scores[i]) == HEARTH_OK);
    }
    hearth_session_free(s);
    hearth_model_free(m);
}

static cJSON *search(test_server *sv, const char *body, int status) {
    int st;
    cJSON *j = post(sv, "/v1/hearth/rag/search", body, &st);
    CHECKF(st == status, "%s: %d, want %d", body, st, status);
    return j;
}

/* The response's hits are h's, in order[0..n): text, scores, first-stage rank. */
static void check_hits(const cJSON *j, const rag_hits *h, const int *order, const float *scores,
                       int n, const char *what) {
    const cJSON *data = jget(j, "data");
    CHECKF(cJSON_GetArraySize(data) == n, "%s: %d hits, want %d", what, cJSON_GetArraySize(data),
           n);
    for (int i = 0; i < n && i < cJSON_GetArraySize(data); i++) {
        const cJSON *d = cJSON_GetArrayItem(data, i);
        const rag_hit *want = &h->hit[order[i]];
        const char *text = jstr(d, "text");
        CHECKF(text && !strcmp(text, want->text), "%s: hit %d is '%s', want '%s'", what, i,
               text ? text : "(none)", want->text);
        CHECKF(jnum(d, "rank_bm25") == order[i] + 1, "%s: hit %d rank_bm25 %g, want %d", what, i,
               jnum(d, "rank_bm25"), order[i] + 1);
        if (scores) {
            CHECKF(jnum(d, "score") == (double)scores[order[i]],
                   "%s: hit %d scores %.9g, want %.9g", what, i, jnum(d, "score"),
                   (double)scores[order[i]]);
            CHECKF(jnum(d, "retrieval_score") == want->score, "%s: hit %d retrieval_score %g vs %g",
                   what, i, jnum(d, "retrieval_score"), want->score);
        } else {
            CHECK(jnum(d, "score") == want->score && !jget(d, "retrieval_score"));
        }
    }
}

/* The reranker's order over all five candidates and the first stage's. */
static void test_search(test_server *sv) {
    rag_hits h;
    first_stage(20, &h); /* the default depth for k <= 5 */
    REQUIRE(h.n == N_DOCS);
    float scores[N_DOCS];
    int order[N_DOCS], plain[N_DOCS];
    library_scores(&h, 0, scores);
    REQUIRE(hearth_rank_order(scores, N_DOCS, order) == HEARTH_OK);
    for (int i = 0; i < N_DOCS; i++) plain[i] = i;
    bool differs = false;
    for (int i = 0; i < N_DOCS; i++) differs |= order[i] != i;
    CHECKF(differs, "the reranker keeps BM25's order: the test would not tell them apart");

    char body[512];
    snprintf(body, sizeof body, "{\"query\":\"%s\"}", question);
    cJSON *j = search(sv, body, 200);
    CHECK(cJSON_IsTrue(jget(j, "reranked")) && jstr(j, "reranker") &&
          !strcmp(jstr(j, "reranker"), "rr.gguf") && jnum(j, "candidates") == N_DOCS &&
          jnum(j, "truncated") == 0 && !strcmp(jstr(j, "mode"), "bm25"));
    check_hits(j, &h, order, scores, N_DOCS, "reranked");
    cJSON_Delete(j);

    for (int k = 1; k <= 3; k += 2) { /* k: the best k of the same candidates */
        snprintf(body, sizeof body, "{\"query\":\"%s\",\"k\":%d,\"rerank\":true}", question, k);
        j = search(sv, body, 200);
        check_hits(j, &h, order, scores, k, k == 1 ? "k 1" : "k 3");
        CHECK(jnum(j, "candidates") == N_DOCS);
        cJSON_Delete(j);
    }
    snprintf(body, sizeof body, "{\"query\":\"%s\",\"k\":3,\"rerank\":false}", question);
    j = search(sv, body, 200);
    CHECK(cJSON_IsFalse(jget(j, "reranked")) && !jget(j, "reranker"));
    check_hits(j, &h, plain, NULL, 3, "rerank false");
    cJSON_Delete(j);

    static const char *const bad[][2] = {
        {"{\"query\":\"x\",\"rerank\":1}", "rerank"},
        {"{\"query\":\"x\",\"rerank\":\"no\"}", "rerank"},
        {"{\"query\":\"x\",\"rerank\":null}", "rerank"},
        {"{\"query\":\"x\",\"rerank\":false,\"k\":0}", "k"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = search(sv, bad[i][0], 400);
        const char *param = jstr(j, "error.param");
        CHECKF(param && !strcmp(param, bad[i][1]), "%s: param %s", bad[i][0],
               param ? param : "(none)");
        cJSON_Delete(j);
    }
    rag_hits_free(&h);
}

/* Where "[i] name\ntext" of document d stands in the prompt (-1: absent). */
static long passage_at(const char *prompt, int i, int d) {
    char want[256];
    snprintf(want, sizeof want, "[%d] %d.txt\n%s", i, d, docs[d]);
    const char *p = strstr(prompt, want);
    return p ? (long)(p - prompt) : -1;
}

/* Which of docs a hit is (-1: none). */
static int doc_of(const rag_hit *hit) {
    for (int d = 0; d < N_DOCS; d++)
        if (!strcmp(hit->text, docs[d])) return d;
    return -1;
}

static void test_chat(test_server *sv) {
    rag_hits h;
    first_stage(20, &h);
    REQUIRE(h.n == N_DOCS);
    float scores[N_DOCS];
    int order[N_DOCS];
    library_scores(&h, 0, scores);
    REQUIRE(hearth_rank_order(scores, N_DOCS, order) == HEARTH_OK);
    char body[512];
    for (int rerank = 1; rerank >= 0; rerank--) {
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"rag\":{\"k\":2%s}}",
                 question, rerank ? "" : ",\"rerank\":false");
        int st;
        cJSON *j = post(sv, "/apply-template", body, &st);
        const char *prompt = jstr(j, "prompt");
        REQUIRE(st == 200 && prompt);
        const int first = doc_of(&h.hit[rerank ? order[0] : 0]);
        const int second = doc_of(&h.hit[rerank ? order[1] : 1]);
        const long a = passage_at(prompt, 1, first), b = passage_at(prompt, 2, second);
        CHECKF(a >= 0 && b > a && !strstr(prompt, "[3] "),
               "rag %s: [1] %d.txt at %ld, [2] %d.txt at %ld in %s", rerank ? "reranked" : "plain",
               first, a, second, b, prompt);
        cJSON_Delete(j);
    }
    /* the header says what retrieval did */
    char cmd[2048], line[512];
    snprintf(cmd, sizeof cmd,
             "curl -s -D - -o /dev/null http://127.0.0.1:%d/v1/chat/completions -d "
             "'{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"rag\":{\"k\":1},"
             "\"max_tokens\":1}'",
             sv->port, question);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    bool said = false;
    while (fgets(line, sizeof line, p)) said |= strstr(line, "1 passage, bm25, reranked") != NULL;
    pclose(p);
    CHECK(said);

    static const char *const bad[][2] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":{\"rerank\":0}}",
         "rag.rerank"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":{\"rerank\":[]}}",
         "rag.rerank"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int st;
        cJSON *j = post(sv, "/v1/chat/completions", bad[i][0], &st);
        const char *param = jstr(j, "error.param");
        CHECKF(st == 400 && param && !strcmp(param, bad[i][1]), "%s: %d %s", bad[i][0], st,
               param ? param : "(none)");
        cJSON_Delete(j);
    }
    rag_hits_free(&h);
}

/* A reranker alone, with --rag-rerank-depth 2 and slots of SMALL_CTX tokens:
 * the best of BM25's first two, each pair cut as the CLI cuts it. */
static void test_depth_and_cut(void) {
    test_server sv;
    char args[1400];
    snprintf(args, sizeof args,
             "-t 1 --ctx %d --rag '%s' --rag-rerank rr.gguf --rag-rerank-depth 2", SMALL_CTX, db);
    REQUIRE(test_server_start(&sv, binary, rr_path, scratch, args));
    rag_hits h;
    first_stage(2, &h);
    REQUIRE(h.n == 2);
    float scores[2];
    int order[2];
    library_scores(&h, SMALL_CTX, scores);
    REQUIRE(hearth_rank_order(scores, 2, order) == HEARTH_OK);
    char body[512];
    snprintf(body, sizeof body, "{\"query\":\"%s\",\"k\":1}", question);
    cJSON *j = search(&sv, body, 200);
    CHECKF(jnum(j, "candidates") == 2 && jnum(j, "truncated") >= 1, "candidates %g, truncated %g",
           jnum(j, "candidates"), jnum(j, "truncated"));
    check_hits(j, &h, order, scores, 1, "depth 2, cut");
    cJSON_Delete(j);
    rag_hits_free(&h);
    /* k above the depth: k candidates */
    snprintf(body, sizeof body, "{\"query\":\"%s\",\"k\":4}", question);
    j = search(&sv, body, 200);
    CHECK(jnum(j, "candidates") == 4 && cJSON_GetArraySize(jget(j, "data")) == 4);
    cJSON_Delete(j);
    /* a question the reranker's context cannot hold with any of the document */
    int n = snprintf(body, sizeof body, "{\"query\":\"");
    for (int i = 0; i < 3 * SMALL_CTX; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "fire ");
    snprintf(body + n, sizeof body - (size_t)n, "\"}");
    j = search(&sv, body, 400);
    const char *code = jstr(j, "error.code"), *param = jstr(j, "error.param");
    CHECK(code && !strcmp(code, "context_length_exceeded") && param && !strcmp(param, "query"));
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
}

/* No --rag-rerank: "rerank": true is refused, false is fine. */
static void test_without_reranker(void) {
    test_server sv;
    char args[700];
    snprintf(args, sizeof args, "-t 1 --rag '%s'", db);
    REQUIRE(test_server_start(&sv, binary, rr_path, scratch, args));
    cJSON *j = search(&sv, "{\"query\":\"fire\",\"rerank\":true}", 400);
    const char *code = jstr(j, "error.code"), *param = jstr(j, "error.param");
    CHECK(code && !strcmp(code, "rerank_disabled") && param && !strcmp(param, "rerank"));
    cJSON_Delete(j);
    j = search(&sv, "{\"query\":\"fire\",\"rerank\":false}", 200);
    CHECK(cJSON_IsFalse(jget(j, "reranked")) && cJSON_GetArraySize(jget(j, "data")) == 2);
    cJSON_Delete(j);
    int st;
    j = post(&sv, "/apply-template",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":{\"rerank\":true}}",
             &st);
    param = jstr(j, "error.param");
    CHECK(st == 400 && param && !strcmp(param, "rag.rerank"));
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
}

/* --models-max 1: the chat model and the reranker take turns (a request
 * holding its model would otherwise wait on itself until --timeout). */
static void test_one_model_at_a_time(const char *chat) {
    test_server sv;
    char args[1400];
    snprintf(args, sizeof args,
             "-m '%s' -t 1 --chat-template chatml --rag '%s' --rag-rerank rr --models-max 1 "
             "--timeout 20",
             rr_path, db);
    REQUIRE(test_server_start(&sv, binary, chat, scratch, args));
    char body[512];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"rag\":{\"k\":1},"
             "\"max_tokens\":2}",
             question);
    for (int i = 0; i < 2; i++) { /* the second finds the reranker loaded, the chat model not */
        int st;
        cJSON *j = post(&sv, "/v1/chat/completions", body, &st);
        CHECKF(st == 200 && jnum(j, "usage.completion_tokens") >= 1, "rag chat %d: %d", i, st);
        cJSON_Delete(j);
    }
    snprintf(body, sizeof body, "{\"query\":\"%s\",\"k\":2}", question);
    cJSON *j = search(&sv, body, 200);
    CHECK(cJSON_IsTrue(jget(j, "reranked")) && cJSON_GetArraySize(jget(j, "data")) == 2);
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
}

/* `hearth serve` with args exits 1 before listening, saying `why`. */
static void refused(const char *args, const char *why) {
    char log[700];
    snprintf(log, sizeof log, "%s/refused.log", scratch);
    const int rc = test_sh("'%s' serve --port 0 -t 1 %s > /dev/null 2> '%s'", binary, args, log);
    char *text = test_read_file(log, NULL);
    CHECKF(rc == 1 && text && strstr(text, why) && !strstr(text, "listening"),
           "serve %s: exit %d, %s", args, rc, text ? text : "(no log)");
    free(text);
}

static void test_refusals(const char *chat) {
    char args[2000];
    snprintf(args, sizeof args, "-m '%s' -m '%s' --rag '%s' --rag-rerank nosuch", chat, rr_path,
             db);
    refused(args, "--rag-rerank nosuch: no served model has that name");
    const char *base = strrchr(chat, '/') + 1;
    snprintf(args, sizeof args, "-m '%s' -m '%s' --rag '%s' --rag-rerank '%s'", chat, rr_path, db,
             base);
    refused(args, "is not a reranker");
    snprintf(args, sizeof args, "-m '%s' --rag-rerank rr", rr_path);
    refused(args, "--rag-rerank needs --rag DB");
    snprintf(args, sizeof args, "-m '%s' --rag '%s' --rag-rerank-depth 3", rr_path, db);
    refused(args, "--rag-rerank-depth needs --rag-rerank");
    snprintf(args, sizeof args, "-m '%s' --rag '%s' --rag-rerank rr --rag-rerank-depth 0", rr_path,
             db);
    CHECK(test_sh("'%s' serve %s > /dev/null 2>&1", binary, args) == 2); /* out of 1..100 */
}

int main(void) {
    bool skip;
    const char *model = fixture_server_model("test_server_rag_rerank", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model);
    char chat[600];
    if (!strncmp(model, scratch, strlen(scratch))) { /* no ../shared */
        /* a context that holds the passages in the synthetic byte-level vocabulary */
        snprintf(chat, sizeof chat, "%s/chat1k.gguf", scratch);
        REQUIRE(test_sh("'%s' synth -o '%s' --ctx 1024 > /dev/null", binary, chat) == 0);
        model = chat;
    }
    snprintf(rr_path, sizeof rr_path, "%s/rr.gguf", scratch);
    REQUIRE(test_sh("'%s' synth -o '%s' --arch bert --rerank 1 > /dev/null", binary, rr_path) == 0);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/docs", scratch);
    snprintf(db, sizeof db, "%s/index.db", scratch);
    REQUIRE(mkdir(dir, 0700) == 0);
    for (int i = 0; i < N_DOCS; i++) {
        char f[700];
        snprintf(f, sizeof f, "%s/%d.txt", dir, i);
        REQUIRE(test_write_file(f, docs[i], strlen(docs[i])));
    }
    REQUIRE(test_sh("'%s' rag index -q --db '%s' '%s' > /dev/null", binary, db, dir) == 0);

    test_server sv;
    char args[1400];
    snprintf(args, sizeof args, "-m '%s' -t 1 --chat-template chatml --rag '%s' --rag-rerank rr",
             rr_path, db);
    REQUIRE(test_server_start(&sv, binary, model, scratch, args));
    test_search(&sv);
    test_chat(&sv);
    CHECK(test_server_stop(&sv) == 0);
    test_depth_and_cut();
    test_one_model_at_a_time(model);
    test_without_reranker();
    test_refusals(model);

    fixture_server_cleanup("test_server_rag_rerank", scratch, test_failures > 0);
    return test_done("test_server_rag_rerank");
}
