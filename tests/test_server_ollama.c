/*
 * test_server_ollama.c - ollama's API on `hearth serve` (api_ollama*.c):
 * starts the real program on a small model and drives it with curl, as
 * test_server.c does. Every route's shape; greedy /api/chat and
 * /api/generate answers (streamed NDJSON put together, and not streamed)
 * equal to what /v1/chat/completions and /v1/completions answer for the same
 * request; format "json" and a schema; options (seed, num_predict); the
 * embeddings equal /v1/embeddings'; malformed bodies a 400 {"error"}; the
 * server exits 0.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

#include <math.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_ollama_XXXXXX";

static bool jtrue(const cJSON *o, const char *path) { return cJSON_IsTrue(jget(o, path)); }

/* A constrained answer: when it finished ("stop") it parses and `ok` holds;
 * when num_predict cut it ("length", the synthetic model without ../shared
 * writes much white space) it is at least an object's beginning. */
static bool json_answer(const char *text, const char *done_reason, bool (*ok)(const cJSON *)) {
    if (!text || !done_reason) return false;
    if (strcmp(done_reason, "stop") != 0)
        return !strcmp(done_reason, "length") && text[strspn(text, " \t\r\n")] == '{';
    cJSON *v = cJSON_Parse(text);
    const bool good = v && ok(v);
    cJSON_Delete(v);
    return good;
}

static bool is_object(const cJSON *v) { return cJSON_IsObject(v); }
static bool has_age(const cJSON *v) { return cJSON_IsNumber(jget(v, "age")); }

/* ---- NDJSON --------------------------------------------------------------- */

typedef struct ndjson {
    bool ok; /* every line an object, done false until the last, done true there */
    int n_lines;
    char text[16384];
    cJSON *last; /* the final object */
} ndjson;

static ndjson parse_ndjson(const char *body, bool chat) {
    ndjson r = {.ok = true};
    const char *p = body;
    while (*p) {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            r.ok = false; /* every line ends with a newline */
            break;
        }
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        if (!cJSON_IsObject(j) || r.last) { /* nothing after the final object */
            cJSON_Delete(j);
            r.ok = false;
            break;
        }
        r.n_lines++;
        const char *piece = jstr(j, chat ? "message.content" : "response");
        if (!piece || !jstr(j, "model") || !jstr(j, "created_at")) r.ok = false;
        if (chat && (!jstr(j, "message.role") || strcmp(jstr(j, "message.role"), "assistant")))
            r.ok = false;
        if (piece && strlen(r.text) + strlen(piece) < sizeof r.text) strcat(r.text, piece);
        if (jtrue(j, "done"))
            r.last = j;
        else if (cJSON_IsFalse(jget(j, "done")))
            cJSON_Delete(j);
        else {
            cJSON_Delete(j);
            r.ok = false;
        }
        p = nl + 1;
    }
    if (!r.last) r.ok = false;
    return r;
}

/* The final fields ollama documents, with sane values. */
static void check_final(const char *what, const cJSON *j) {
    CHECKF(jtrue(j, "done"), "%s: done", what);
    const char *reason = jstr(j, "done_reason");
    CHECKF(reason && (!strcmp(reason, "stop") || !strcmp(reason, "length")), "%s: done_reason %s",
           what, reason ? reason : "(none)");
    static const char *const keys[] = {"total_duration",       "load_duration", "prompt_eval_count",
                                       "prompt_eval_duration", "eval_count",    "eval_duration"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECKF(jnum(j, keys[i]) >= 0, "%s: %s = %g", what, keys[i], jnum(j, keys[i]));
    CHECKF(jnum(j, "total_duration") >= jnum(j, "eval_duration"), "%s: total < eval", what);
    CHECKF(jnum(j, "eval_count") > 0 && jnum(j, "prompt_eval_count") > 0, "%s: counts", what);
}

/* ---- the tests ------------------------------------------------------------ */

static void test_routes(test_server *sv) {
    test_reply r = test_http(sv, "GET", "/api/version", NULL, NULL);
    cJSON *j = cJSON_Parse(r.body);
    CHECKF(r.status == 200 && jstr(j, "version"), "version: %d %s", r.status, r.body);
    cJSON_Delete(j);
    free(r.body);

    r = test_http(sv, "GET", "/v1/models", NULL, NULL);
    j = cJSON_Parse(r.body);
    char id[256];
    snprintf(id, sizeof id, "%s", jstr(j, "data.0.id") ? jstr(j, "data.0.id") : "?");
    cJSON_Delete(j);
    free(r.body);

    for (int ps = 0; ps < 2; ps++) {
        r = test_http(sv, "GET", ps ? "/api/ps" : "/api/tags", NULL, NULL);
        j = cJSON_Parse(r.body);
        CHECKF(r.status == 200 && cJSON_GetArraySize(jget(j, "models")) == 1, "%s: %s",
               ps ? "ps" : "tags", r.body);
        const cJSON *m = jget(j, "models.0");
        CHECK(jstr(m, "name") && !strcmp(jstr(m, "name"), id));
        CHECK(jstr(m, "model") && !strcmp(jstr(m, "model"), id));
        CHECK(jnum(m, "size") > 1000);
        CHECK(jstr(m, "digest") && strlen(jstr(m, "digest")) == 64);
        CHECK(jstr(m, "details.format") && !strcmp(jstr(m, "details.format"), "gguf"));
        CHECK(jstr(m, "details.family") && jstr(m, "details.family")[0]);
        CHECK(jstr(m, "details.parameter_size") && jstr(m, "details.quantization_level"));
        if (!ps) CHECK(jstr(m, "modified_at") && strlen(jstr(m, "modified_at")) >= 20);
        if (ps) CHECK(jstr(m, "expires_at") != NULL);
        cJSON_Delete(j);
        free(r.body);
    }

    int st;
    j = post(sv, "/api/show", "{\"model\":\"whatever\"}", &st);
    CHECKF(st == 200, "show: %d", st);
    CHECK(jstr(j, "details.format") && jstr(j, "template") && jstr(j, "parameters"));
    /* model_info's keys hold dots: looked up whole */
    const cJSON *info = jget(j, "model_info");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(info, "general.architecture");
    CHECKF(cJSON_IsString(arch) && jstr(j, "details.family") &&
               !strcmp(arch->valuestring, jstr(j, "details.family")),
           "show: architecture");
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(info, "general.parameter_count");
    CHECK(cJSON_IsNumber(np) && np->valuedouble > 0);
    cJSON_Delete(j);
}

/* The body of an OpenAI chat request of one user message. */
static void openai_chat(char *out, size_t cap, const char *user, int max_tokens) {
    snprintf(out, cap,
             "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":%d,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             max_tokens, user);
}

static void test_chat_equal(test_server *sv) {
    const char *user = "Tell me a story about a dragon.";
    char body[1024];
    int st;
    openai_chat(body, sizeof body, user, 24);
    cJSON *ref = post(sv, "/v1/chat/completions", body, &st);
    REQUIRE(st == 200);
    const char *want = jstr(ref, "choices.0.message.content");
    REQUIRE(want);

    /* the same request, ollama's way (greedy: temperature 0, no repeat penalty) */
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"%s\"}],\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":24},"
             "\"keep_alive\":\"5m\"}",
             user);
    cJSON *j = post(sv, "/api/chat", body, &st);
    CHECKF(st == 200, "api/chat: %d", st);
    const char *got = jstr(j, "message.content");
    CHECKF(got && !strcmp(got, want), "api/chat '%s' != v1 '%s'", got ? got : "(none)", want);
    check_final("api/chat", j);
    CHECK(jnum(j, "eval_count") == jnum(ref, "usage.completion_tokens"));
    CHECK(jnum(j, "prompt_eval_count") == jnum(ref, "usage.prompt_tokens"));
    CHECK(!strcmp(jstr(j, "done_reason"), jstr(ref, "choices.0.finish_reason")));
    CHECK(jstr(j, "model") && !strcmp(jstr(j, "model"), "m"));
    cJSON_Delete(j);

    /* streamed (the default): NDJSON whose pieces make the same text */
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":24}}",
             user);
    test_reply r = test_http(sv, "POST", "/api/chat", body, NULL);
    CHECK(r.status == 200);
    ndjson nd = parse_ndjson(r.body, true);
    CHECKF(nd.ok && nd.n_lines >= 2, "NDJSON framing: %.400s", r.body);
    CHECKF(!strcmp(nd.text, want), "streamed '%s' != '%s'", nd.text, want);
    if (nd.last) {
        check_final("streamed chat", nd.last);
        CHECK(jnum(nd.last, "eval_count") == jnum(ref, "usage.completion_tokens"));
    }
    cJSON_Delete(nd.last);
    free(r.body);

    /* /api/generate (templated) is a chat of one user message */
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"prompt\":\"%s\",\"stream\":false,"
             "\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":24}}",
             user);
    j = post(sv, "/api/generate", body, &st);
    CHECK(st == 200);
    got = jstr(j, "response");
    CHECKF(got && !strcmp(got, want), "api/generate '%s' != '%s'", got ? got : "(none)", want);
    CHECK(!jget(j, "context")); /* documented: no context array */
    check_final("api/generate", j);
    cJSON_Delete(j);
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"prompt\":\"%s\","
             "\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":24}}",
             user);
    r = test_http(sv, "POST", "/api/generate", body, NULL);
    nd = parse_ndjson(r.body, false);
    CHECKF(nd.ok && !strcmp(nd.text, want), "streamed generate '%s': %.300s", nd.text, r.body);
    cJSON_Delete(nd.last);
    free(r.body);
    cJSON_Delete(ref);

    /* a system prompt reaches the template as /v1's system message does */
    ref = post(sv, "/v1/chat/completions",
               "{\"temperature\":0,\"max_tokens\":12,\"messages\":[{\"role\":\"system\","
               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hello\"}]}",
               &st);
    j = post(sv, "/api/generate",
             "{\"model\":\"m\",\"prompt\":\"Hello\",\"system\":\"Be brief.\",\"stream\":false,"
             "\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":12}}",
             &st);
    CHECKF(jstr(j, "response") && jstr(ref, "choices.0.message.content") &&
               !strcmp(jstr(j, "response"), jstr(ref, "choices.0.message.content")),
           "generate with system");
    CHECK(jnum(j, "prompt_eval_count") == jnum(ref, "usage.prompt_tokens"));
    cJSON_Delete(j);
    cJSON_Delete(ref);

    /* raw: the prompt as it is, a /v1/completions request */
    ref = post(sv, "/v1/completions",
               "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"max_tokens\":16}", &st);
    j = post(sv, "/api/generate",
             "{\"model\":\"m\",\"prompt\":\"Once upon a time\",\"raw\":true,\"stream\":false,"
             "\"options\":{\"temperature\":0,\"repeat_penalty\":1,\"num_predict\":16}}",
             &st);
    CHECKF(jstr(j, "response") && jstr(ref, "choices.0.text") &&
               !strcmp(jstr(j, "response"), jstr(ref, "choices.0.text")),
           "raw generate '%s' vs '%s'", jstr(j, "response"), jstr(ref, "choices.0.text"));
    CHECK(jnum(j, "eval_count") == jnum(ref, "usage.completion_tokens"));
    cJSON_Delete(j);
    cJSON_Delete(ref);
}

static void test_options_and_format(test_server *sv) {
    int st;
    /* num_predict bounds eval_count */
    cJSON *j = post(sv, "/api/chat",
                    "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"Count to one hundred\"}],\"options\":{\"num_predict\":5,"
                    "\"temperature\":0}}",
                    &st);
    CHECKF(st == 200 && jnum(j, "eval_count") >= 1 && jnum(j, "eval_count") <= 5,
           "num_predict: eval_count %g", jnum(j, "eval_count"));
    if (jstr(j, "done_reason") && !strcmp(jstr(j, "done_reason"), "length"))
        CHECK(jnum(j, "eval_count") == 5);
    cJSON_Delete(j);

    /* a seed makes sampling reproducible; the defaults sample (temperature 0.8) */
    const char *seeded = "{\"model\":\"m\",\"stream\":false,\"prompt\":\"Once\",\"options\":"
                         "{\"seed\":42,\"num_predict\":24,\"temperature\":1.2,\"top_k\":0,"
                         "\"top_p\":1}}";
    cJSON *a = post(sv, "/api/generate", seeded, &st);
    cJSON *b = post(sv, "/api/generate", seeded, &st);
    CHECKF(jstr(a, "response") && jstr(b, "response") &&
               !strcmp(jstr(a, "response"), jstr(b, "response")),
           "seed 42 twice: '%s' vs '%s'", jstr(a, "response"), jstr(b, "response"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    bool differ = false;
    char prev[4096] = "";
    for (int seed = 1; seed <= 4 && !differ; seed++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"stream\":false,\"prompt\":\"Once\",\"options\":{\"seed\":%d,"
                 "\"num_predict\":24,\"temperature\":1.2,\"top_k\":0,\"top_p\":1}}",
                 seed);
        j = post(sv, "/api/generate", body, &st);
        const char *t = jstr(j, "response") ? jstr(j, "response") : "";
        if (seed > 1 && strcmp(prev, t)) differ = true;
        snprintf(prev, sizeof prev, "%s", t);
        cJSON_Delete(j);
    }
    CHECKF(differ, "four seeds gave the same text: the seed does not reach the sampler");

    /* format "json": the answer parses as a JSON object */
    j = post(sv, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"format\":\"json\",\"messages\":[{\"role\":"
             "\"user\",\"content\":\"Describe a cat in JSON\"}],\"options\":{\"temperature\":0,"
             "\"num_predict\":200}}",
             &st);
    const char *content = jstr(j, "message.content");
    CHECKF(st == 200 && json_answer(content, jstr(j, "done_reason"), is_object), "format json: %s",
           content ? content : "(none)");
    cJSON_Delete(j);
    /* a JSON Schema: structured output with the required key */
    j = post(sv, "/api/generate",
             "{\"model\":\"m\",\"stream\":false,\"prompt\":\"How old?\",\"format\":{\"type\":"
             "\"object\",\"properties\":{\"age\":{\"type\":\"integer\"}},\"required\":[\"age\"]},"
             "\"options\":{\"temperature\":0,\"num_predict\":100}}",
             &st);
    content = jstr(j, "response");
    CHECKF(st == 200 && json_answer(content, jstr(j, "done_reason"), has_age), "format schema: %s",
           content ? content : "(none)");
    cJSON_Delete(j);
    /* streamed JSON mode: the pieces together parse */
    test_reply r = test_http(sv, "POST", "/api/generate",
                             "{\"model\":\"m\",\"prompt\":\"A cat\",\"format\":\"json\","
                             "\"options\":{\"temperature\":0,\"num_predict\":200}}",
                             NULL);
    ndjson nd = parse_ndjson(r.body, false);
    CHECKF(nd.ok && json_answer(nd.text, jstr(nd.last, "done_reason"), is_object),
           "streamed json: %s", nd.text);
    cJSON_Delete(nd.last);
    free(r.body);

    /* load requests: done at once */
    j = post(sv, "/api/generate", "{\"model\":\"m\"}", &st);
    CHECK(st == 200 && jtrue(j, "done") && jstr(j, "response") && !jstr(j, "response")[0]);
    CHECK(jstr(j, "done_reason") && !strcmp(jstr(j, "done_reason"), "load"));
    cJSON_Delete(j);
    j = post(sv, "/api/chat", "{\"model\":\"m\",\"messages\":[]}", &st);
    CHECK(st == 200 && jtrue(j, "done") && jstr(j, "message.content"));
    cJSON_Delete(j);
}

static double dot(const cJSON *a, const cJSON *b) {
    double s = 0;
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next)
        s += x->valuedouble * y->valuedouble;
    return s;
}

static void test_embeddings(test_server *sv) {
    int st;
    cJSON *ref =
        post(sv, "/v1/embeddings", "{\"input\":[\"Why is the sky blue?\",\"Grass\"]}", &st);
    REQUIRE(st == 200);
    cJSON *j = post(sv, "/api/embed",
                    "{\"model\":\"m\",\"input\":[\"Why is the sky blue?\",\"Grass\"]}", &st);
    CHECKF(st == 200 && cJSON_GetArraySize(jget(j, "embeddings")) == 2, "embed: %d", st);
    CHECK(jstr(j, "model") && !strcmp(jstr(j, "model"), "m"));
    CHECK(jnum(j, "prompt_eval_count") == jnum(ref, "usage.prompt_tokens"));
    for (int i = 0; i < 2; i++) {
        char p[64];
        snprintf(p, sizeof p, "data.%d.embedding", i);
        const cJSON *want = jget(ref, p);
        snprintf(p, sizeof p, "embeddings.%d", i);
        const cJSON *got = jget(j, p);
        CHECK(cJSON_GetArraySize(want) == cJSON_GetArraySize(got) && cJSON_GetArraySize(got) > 0);
        double maxd = 0;
        for (const cJSON *x = want->child, *y = got->child; x && y; x = x->next, y = y->next)
            maxd = fmax(maxd, fabs(x->valuedouble - y->valuedouble));
        CHECKF(maxd < 1e-6, "embedding %d differs by %g", i, maxd);
    }
    /* one string; the legacy route (not normalised): the same direction */
    cJSON *one = post(sv, "/api/embed", "{\"model\":\"m\",\"input\":\"Grass\"}", &st);
    CHECK(cJSON_GetArraySize(jget(one, "embeddings")) == 1);
    cJSON *legacy = post(sv, "/api/embeddings", "{\"model\":\"m\",\"prompt\":\"Grass\"}", &st);
    const cJSON *lv = jget(legacy, "embedding"), *nv = jget(one, "embeddings.0");
    CHECKF(cJSON_GetArraySize(lv) > 0 && cJSON_GetArraySize(lv) == cJSON_GetArraySize(nv),
           "legacy embedding: %d, %d vs %d values", st, cJSON_GetArraySize(lv),
           cJSON_GetArraySize(nv));
    if (cJSON_GetArraySize(lv) == cJSON_GetArraySize(nv) && cJSON_GetArraySize(lv) > 0) {
        const double cos = dot(lv, nv) / sqrt(dot(lv, lv) * dot(nv, nv));
        CHECKF(fabs(cos - 1) < 1e-5, "legacy vs embed cosine %g", cos);
    }
    cJSON_Delete(legacy);
    cJSON_Delete(one);
    cJSON_Delete(j);
    cJSON_Delete(ref);
}

static void check_error(test_server *sv, const char *path, const char *body, int status) {
    test_reply r = test_http(sv, "POST", path, body, NULL);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    CHECKF(r.status == status && jstr(j, "error") && jstr(j, "error")[0] &&
               cJSON_GetArraySize(j) == 1,
           "%s %s: %d %s (expected %d {\"error\"})", path, body, r.status, r.body, status);
    cJSON_Delete(j);
    free(r.body);
}

static void test_errors(test_server *sv) {
    check_error(sv, "/api/chat", "{not json", 400);
    check_error(sv, "/api/chat", "[1,2]", 400);
    check_error(sv, "/api/chat", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400);
    check_error(sv, "/api/chat", "{\"model\":\"m\",\"messages\":3}", 400);
    check_error(sv, "/api/chat",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400);
    check_error(sv, "/api/chat",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"options\":{\"temperature\":\"hot\"}}",
                400);
    check_error(sv, "/api/chat",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"options\":{\"temperature\":9}}",
                400);
    check_error(sv, "/api/chat",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"format\":3}",
                400);
    check_error(sv, "/api/chat",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
                400);
    check_error(sv, "/api/chat",
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"stream\":\"yes\"}",
                400);
    check_error(sv, "/api/generate", "{\"model\":\"m\",\"prompt\":\"x\",\"suffix\":\"y\"}", 400);
    check_error(sv, "/api/generate", "{\"model\":\"m\",\"prompt\":7}", 400);
    check_error(sv, "/api/generate", "{\"model\":\"m\",\"prompt\":\"x\",\"images\":[\"aGk=\"]}",
                400); /* no projector */
    check_error(sv, "/api/generate", "{\"model\":\"m\",\"prompt\":\"x\",\"images\":\"aGk=\"}", 400);
    check_error(sv, "/api/embed", "{\"model\":\"m\",\"input\":[1,2]}", 400);
    check_error(sv, "/api/embed", "{\"input\":\"x\"}", 400);
    /* an empty string among the inputs (a lone "" is a load request) */
    check_error(sv, "/api/embed", "{\"model\":\"m\",\"input\":[\"x\",\"\"]}", 400);
    check_error(sv, "/api/embeddings", "{\"model\":\"m\",\"prompt\":[\"x\"]}", 400);
    check_error(sv, "/api/show", "{}", 400);
    test_reply r = test_http(sv, "GET", "/api/chat", NULL, NULL);
    CHECKF(r.status == 405 && strstr(r.body, "\"error\":\""), "GET /api/chat: %d %s", r.status,
           r.body);
    free(r.body);
    r = test_http(sv, "GET", "/api/nothing", NULL, NULL);
    CHECKF(r.status == 404 && strstr(r.body, "\"error\":\""), "404: %d %s", r.status, r.body);
    free(r.body);
    /* the OpenAI routes keep their own error shape */
    r = test_http(sv, "POST", "/v1/chat/completions", "{not json", NULL);
    CHECK(r.status == 400 && strstr(r.body, "\"type\""));
    free(r.body);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_ollama", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --chat-template chatml"));
    test_routes(&sv);
    test_chat_equal(&sv);
    test_options_and_format(&sv);
    test_embeddings(&sv);
    test_errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    char *log = test_read_file(sv.log, NULL);
    CHECKF(log && strstr(log, "POST /api/chat 200 prompt="), "log: %.300s", log ? log : "(none)");
    free(log);
    fixture_server_cleanup("test_server_ollama", scratch, test_failures > 0);
    return test_done("test_server_ollama");
}
