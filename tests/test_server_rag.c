/*
 * test_server_rag.c - retrieval in `hearth serve --rag`: an index built by
 * `hearth rag index -m` with the server's own model (so its vectors can be
 * compared with the server's query embeddings), /v1/hearth/rag/search in
 * every mode and its 400s, a chat request with "rag" (the context reaches
 * the prompt: the greedy answer equals the one to a request that carries
 * the same context itself), the local pin and its 403, and a server without
 * an index.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_rag_XXXXXX";

static const char cats[] = "Cats are small carnivorous mammals. They purr when content.\n";
static const char steam[] = "Steam engines turn heat into work. James Watt improved them.\n";

static cJSON *rag_post(test_server *sv, const char *path, const char *body, int status,
                       const char *extra) {
    test_reply r = test_http(sv, "POST", path, body, extra);
    CHECKF(r.status == status, "%s %s: %d %s", path, body, r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    free(r.body);
    return j;
}

static void test_search(test_server *sv) {
    cJSON *j = rag_post(sv, "/v1/hearth/rag/search",
                        "{\"query\":\"who improved steam engines\",\"k\":2}", 200, NULL);
    CHECK(!strcmp(cJSON_GetStringValue(jget(j, "mode")), "hybrid")); /* same model's vectors */
    CHECK(cJSON_GetArraySize(jget(j, "data")) == 2);
    const char *path = cJSON_GetStringValue(jget(j, "data.0.path"));
    CHECK(path && strstr(path, "steam.txt"));
    CHECK(cJSON_GetNumberValue(jget(j, "data.0.rank_bm25")) == 1);
    CHECK(cJSON_GetNumberValue(jget(j, "data.0.rank_vector")) >= 1);
    cJSON_Delete(j);

    /* a chunk's own text is its own nearest vector */
    char body[512];
    snprintf(body, sizeof body, "{\"query\":\"%.*s\",\"k\":1,\"mode\":\"vector\"}",
             (int)strlen(cats) - 1, cats);
    j = rag_post(sv, "/v1/hearth/rag/search", body, 200, NULL);
    path = cJSON_GetStringValue(jget(j, "data.0.path"));
    CHECK(path && strstr(path, "cats.txt") &&
          cJSON_GetNumberValue(jget(j, "data.0.score")) > 0.999);
    cJSON_Delete(j);

    j = rag_post(sv, "/v1/hearth/rag/search", "{\"query\":\"purr\",\"mode\":\"bm25\"}", 200, NULL);
    CHECK(cJSON_GetArraySize(jget(j, "data")) == 1 &&
          strstr(cJSON_GetStringValue(jget(j, "data.0.text")), "They purr"));
    cJSON_Delete(j);

    static const char *const bad[][2] = {
        {"{\"query\":\"x\",\"k\":0}", "k"},
        {"{\"query\":\"x\",\"k\":1.5}", "k"},
        {"{\"query\":\"x\",\"mode\":\"dense\"}", "mode"},
        {"{\"query\":\"\"}", "query"},
        {"{\"k\":3}", "query"},
        {"[1]", NULL},
        {"{not json", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = rag_post(sv, "/v1/hearth/rag/search", bad[i][0], 400, NULL);
        const char *param = cJSON_GetStringValue(jget(j, "error.param"));
        CHECKF(bad[i][1] ? param && !strcmp(param, bad[i][1]) : !param, "%s", bad[i][0]);
        cJSON_Delete(j);
    }
}

static char *answer(const cJSON *j) {
    const char *s = cJSON_GetStringValue(jget(j, "choices.0.message.content"));
    return strdup(s ? s : "(none)");
}

static void test_chat(test_server *sv) {
    /* the retrieved context is what the model reads: same greedy answer as
     * the same context sent by the client */
    char ctx[2048], body[4096];
    snprintf(ctx, sizeof ctx,
             "Answer the question using the numbered context passages below. Cite the passages "
             "you use by their numbers, like [1]. If the passages do not contain the answer, say "
             "that you do not know.\\n\\n[1] steam.txt\\n%.*s\\n\\nQuestion: Who improved steam "
             "engines?",
             (int)strlen(steam) - 1, steam);
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":12,"
             "\"temperature\":0}",
             ctx);
    cJSON *direct = rag_post(sv, "/v1/chat/completions", body, 200, NULL);
    cJSON *via = rag_post(sv, "/v1/chat/completions",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"Who improved steam "
                          "engines?\"}],\"rag\":{\"k\":1,\"mode\":\"bm25\"},\"max_tokens\":12,"
                          "\"temperature\":0}",
                          200, NULL);
    char *a = answer(direct), *b = answer(via);
    CHECKF(!strcmp(a, b), "direct '%s' vs rag '%s'", a, b);
    CHECK(cJSON_GetNumberValue(jget(direct, "usage.prompt_tokens")) ==
          cJSON_GetNumberValue(jget(via, "usage.prompt_tokens")));
    free(a), free(b);
    cJSON_Delete(direct);
    cJSON_Delete(via);

    /* the headers say what retrieval added and that the answer stayed local */
    char cmd[2048], line[512];
    snprintf(cmd, sizeof cmd,
             "curl -s -D - -o /dev/null http://127.0.0.1:%d/v1/chat/completions -d "
             "'{\"messages\":[{\"role\":\"user\",\"content\":\"cats\"}],\"rag\":true,"
             "\"max_tokens\":2}'",
             sv->port);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    bool rag = false, local = false;
    while (fgets(line, sizeof line, p)) {
        rag |= strstr(line, "x-hearth-rag: 2 passages, hybrid") != NULL;
        local |= strstr(line, "x-hearth-reason: explicit: local requested") != NULL;
    }
    pclose(p);
    CHECK(rag && local);

    cJSON *j = rag_post(sv, "/v1/chat/completions",
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":true}", 403,
                        "-H 'x-hearth-tier: cloud'");
    CHECK(!strcmp(cJSON_GetStringValue(jget(j, "error.code")), "rag_local_only"));
    cJSON_Delete(j);
    static const char *const bad[][2] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":7}", "rag"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":{\"k\":500}}", "rag.k"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}],\"rag\":true}", "messages"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = rag_post(sv, "/v1/chat/completions", bad[i][0], 400, NULL);
        const char *param = cJSON_GetStringValue(jget(j, "error.param"));
        CHECKF(param && !strcmp(param, bad[i][1]), "%s", bad[i][0]);
        cJSON_Delete(j);
    }
    /* "rag": false is no retrieval */
    j = rag_post(
        sv, "/v1/chat/completions",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":false,\"max_tokens\":1}",
        200, NULL);
    cJSON_Delete(j);
}

int main(void) {
    bool skip;
    const char *model = fixture_server_model("test_server_rag", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model);
    char synth[600];
    if (!strncmp(model, scratch, strlen(scratch))) {
        /* no ../shared: the synthetic model's 256 tokens of context are too few for the
         * context block in its byte-level vocabulary */
        synth_params sp = synth_default_params();
        sp.arch = "llama";
        sp.n_ctx = 1024;
        snprintf(synth, sizeof synth, "%s/synth1k.gguf", scratch);
        REQUIRE(synth_write(synth, &sp) == HEARTH_OK);
        model = synth;
    }
    char docs[600], db[600], cmd[4096], file[700];
    snprintf(docs, sizeof docs, "%s/docs", scratch);
    snprintf(db, sizeof db, "%s/index.db", scratch);
    REQUIRE(mkdir(docs, 0700) == 0);
    snprintf(file, sizeof file, "%s/cats.txt", docs);
    REQUIRE(test_write_file(file, cats, strlen(cats)));
    snprintf(file, sizeof file, "%s/steam.txt", docs);
    REQUIRE(test_write_file(file, steam, strlen(steam)));
    snprintf(cmd, sizeof cmd, "'%s' rag index -q -t 1 --db '%s' -m '%s' '%s'", binary, db, model,
             docs);
    REQUIRE(system(cmd) == 0);

    test_server sv;
    char args[700];
    snprintf(args, sizeof args, "-t 1 --chat-template chatml --rag '%s'", db);
    REQUIRE(test_server_start(&sv, binary, model, scratch, args));
    test_search(&sv);
    test_chat(&sv);
    CHECK(test_server_stop(&sv) == 0);

    /* without --rag: the route and the field say how to turn it on */
    REQUIRE(test_server_start(&sv, binary, model, scratch, "-t 1"));
    cJSON *j = rag_post(&sv, "/v1/hearth/rag/search", "{\"query\":\"x\"}", 400, NULL);
    CHECK(!strcmp(cJSON_GetStringValue(jget(j, "error.code")), "rag_disabled"));
    cJSON_Delete(j);
    j = rag_post(&sv, "/v1/chat/completions",
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"rag\":true}", 400, NULL);
    CHECK(!strcmp(cJSON_GetStringValue(jget(j, "error.code")), "rag_disabled"));
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);

    fixture_server_cleanup("test_server_rag", scratch, test_failures > 0);
    return test_done("test_server_rag");
}
