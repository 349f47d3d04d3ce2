/*
 * test_gbnf_server.c - the "grammar" field (llama.cpp server's extension)
 * through `hearth serve` (curl against the real program, a small model): on
 * /v1/completions and /v1/chat/completions the text is a whole text of the
 * grammar when the choice stops, a viable prefix when it is cut by
 * max_tokens (checked with the Earley reference, gbnf_ref.h), and the same
 * text the library generates from the same tokens and settings; streaming
 * and n choices carry the constraint; "" is no grammar; a malformed grammar,
 * a non-string, and a grammar beside response_format json_object /
 * json_schema or a forced tool call are 400s naming the field and the
 * problem (the parser's line:column).
 */
#include "gbnf_ref.h"
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_gbnf_XXXXXX";
static hearth_model *model;
static int32_t prompt[64];
static int n_prompt;

static const char *grammars[] = {
    "root ::= (\"yes\" | \"no\") \", because \" [a-z ]{3,12} \".\"",
    "root ::= item{2,3}\nitem ::= \"- \" [A-Za-z]{1,8} \"\\n\"",
    "root ::= \"{\\\"n\\\": \" [1-9] [0-9]{0,3} \"}\"",
};

/* A request body: the prompt (token ids for completions, one message for
 * chat), the grammar and extra members as JSON text. */
static char *body(bool chat, const char *grammar, const char *extra) {
    cJSON *o = cJSON_CreateObject();
    if (chat) {
        cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", "Answer.");
        cJSON_AddItemToArray(msgs, m);
    } else {
        cJSON_AddItemToObject(o, "prompt", cJSON_CreateIntArray(prompt, n_prompt));
    }
    if (grammar) cJSON_AddStringToObject(o, "grammar", grammar);
    char *head = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    REQUIRE(head);
    const size_t n = strlen(head);
    char *b = malloc(n + strlen(extra) + 4);
    REQUIRE(b);
    memcpy(b, head, n - 1); /* without the closing brace */
    sprintf(b + n - 1, "%s%s}", extra[0] ? "," : "", extra);
    free(head);
    return b;
}

/* The verdict of the reference on text: a whole text when finish is stop. */
static void check_text(const char *grammar, const char *text, const char *finish,
                       const char *what) {
    smp_grammar *g = NULL;
    REQUIRE(smp_grammar_compile(grammar, &g) == HEARTH_OK);
    ref_g r = ref_new(g);
    const int v = ref_check(&r, text, strlen(text));
    if (!strcmp(finish, "stop"))
        CHECKF(v == 2, "%s: finished but not a whole text: '%s'", what, text);
    else
        CHECKF(v >= 1, "%s: not a prefix of the grammar: '%s' (%s)", what, text, finish);
    ref_free(&r);
    smp_grammar_free(g);
}

static void completions(test_server *sv) {
    int n_stop = 0;
    for (size_t gi = 0; gi < sizeof grammars / sizeof *grammars; gi++) {
        for (int seed = 1; seed <= 3; seed++) {
            const float temp = seed == 1 ? 0.0f : 1.0f;
            char extra[128], what[128];
            snprintf(extra, sizeof extra, "\"max_tokens\":40,\"temperature\":%g,\"seed\":%d",
                     (double)temp, seed);
            snprintf(what, sizeof what, "completion grammar %zu seed %d", gi, seed);
            char *b = body(false, grammars[gi], extra);
            int status;
            cJSON *j = post(sv, "/v1/completions", b, &status);
            free(b);
            CHECKF(status == 200 && j, "%s: %d", what, status);
            const char *text = j ? jstr(j, "choices.0.text") : NULL;
            const char *finish = j ? jstr(j, "choices.0.finish_reason") : NULL;
            if (text && finish) {
                check_text(grammars[gi], text, finish, what);
                n_stop += !strcmp(finish, "stop");
                /* the library, from the same tokens and settings */
                hearth_sampling sp = openai_sampling(temp, (uint64_t)seed);
                sp.constraint = HEARTH_CONSTRAINT_GRAMMAR;
                sp.grammar = grammars[gi];
                char *want = library_text(model, prompt, n_prompt, &sp, 40, NULL);
                CHECKF(!strcmp(text, want), "%s: server '%s', library '%s'", what, text, want);
                free(want);
            }
            cJSON_Delete(j);
        }
    }
    CHECKF(n_stop >= 3, "only %d completions finished their grammar", n_stop);
}

static void chat_stream_n(test_server *sv) {
    const char *g = grammars[0];
    char *b = body(true, g, "\"max_tokens\":40,\"temperature\":1,\"seed\":7,\"n\":3");
    int status;
    cJSON *j = post(sv, "/v1/chat/completions", b, &status);
    free(b);
    CHECKF(status == 200 && j, "chat n=3: %d", status);
    for (int i = 0; i < 3 && j; i++) {
        char path[64], fpath[64], what[64];
        snprintf(path, sizeof path, "choices.%d.message.content", i);
        snprintf(fpath, sizeof fpath, "choices.%d.finish_reason", i);
        snprintf(what, sizeof what, "chat choice %d", i);
        const char *text = jstr(j, path), *finish = jstr(j, fpath);
        CHECKF(text && finish, "%s: no content", what);
        if (text && finish) check_text(g, text, finish, what);
    }
    cJSON_Delete(j);
    b = body(true, g, "\"max_tokens\":40,\"temperature\":1,\"seed\":8,\"n\":2,\"stream\":true");
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", b, NULL);
    free(b);
    CHECKF(r.status == 200, "chat stream: %d", r.status);
    sse_choices sc = parse_sse_choices(r.body, true);
    CHECK(sc.framing_ok && sc.done && sc.max_index == 1);
    for (int i = 0; i < 2; i++) check_text(g, sc.text[i], sc.finish[i], "chat stream choice");
    free(r.body);
}

static void errors(test_server *sv) {
    static const struct {
        const char *grammar, *extra, *param, *needle;
        bool chat_only;
    } cases[] = {
        {"root ::= foo", "", "grammar", "1:10: undefined rule 'foo'", false},
        {"root ::= \"a\"\nx ::= [a-", "", "grammar", "2:7: unterminated character class", false},
        {"a ::= \"x\"", "", "grammar", "no rule named 'root'", false},
        {"root ::= expr\nexpr ::= expr \"+\" | \"1\"", "", "grammar", "left-recursive", false},
        {"root ::= \"a\"", "\"response_format\":{\"type\":\"json_object\"}", "grammar",
         "'response_format' json_object", false},
        {"root ::= \"a\"",
         "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
         "\"schema\":{\"type\":\"object\"}}}",
         "grammar", "'response_format' json_schema", false},
        {"root ::= \"a\"",
         "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{"
         "\"type\":\"object\"}}}],\"tool_choice\":\"required\"",
         "grammar", "'tool_choice' required", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int chat = 0; chat < 2; chat++) {
            if (cases[i].chat_only && !chat) continue;
            char *b = body(chat, cases[i].grammar, cases[i].extra);
            test_reply r =
                test_http(sv, "POST", chat ? "/v1/chat/completions" : "/v1/completions", b, NULL);
            char what[256];
            snprintf(what, sizeof what, "%s case %zu", chat ? "chat" : "completion", i);
            expect_error(what, &r, 400, cases[i].param, cases[i].needle);
            free(r.body);
            free(b);
        }
    }
    /* not a string */
    char *b = body(false, NULL, "\"grammar\":5");
    test_reply r = test_http(sv, "POST", "/v1/completions", b, NULL);
    expect_error("grammar 5", &r, 400, "grammar", "string");
    free(r.body);
    free(b);
    /* "" is no grammar: the plain completion */
    b = body(false, "", "\"max_tokens\":4,\"temperature\":0");
    int status;
    cJSON *j = post(sv, "/v1/completions", b, &status);
    CHECKF(status == 200 && j, "empty grammar: %d", status);
    const hearth_sampling sp = openai_sampling(0.0f, 1);
    char *want = library_text(model, prompt, n_prompt, &sp, 4, NULL);
    const char *text = j ? jstr(j, "choices.0.text") : NULL;
    CHECKF(text && !strcmp(text, want), "empty grammar: '%s' vs '%s'", text ? text : "", want);
    free(want);
    cJSON_Delete(j);
    free(b);
}

/* Behind a gateway with a remote tier: a grammar request that could be
 * escalated is a 400 naming grammar; asked for the local model, it is
 * answered by it. */
static void gateway(const char *model_path) {
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 1 -t 1 --chat-template chatml --cloud-url "
                              "http://127.0.0.1:9/v1 --cloud-model remote"));
#define GW_BODY(extra)                                                                             \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,"                     \
    "\"grammar\":\"root ::= [a-z]+\"" extra "}"
    char b[512];
    snprintf(b, sizeof b, GW_BODY(""));
    test_reply r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
    expect_error("gateway grammar", &r, 400, "grammar", "local");
    free(r.body);
    snprintf(b, sizeof b, GW_BODY(",\"model\":\"local\""));
    r = test_http(&sv, "POST", "/v1/chat/completions", b, NULL);
    CHECKF(r.status == 200, "gateway grammar, local: %d %.300s", r.status, r.body);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_gbnf_server", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(model_path, &mp, &model) == HEARTH_OK);
    size_t n = 0;
    const char *text = "Once upon a time there was";
    REQUIRE(hearth_tokenize(model, text, strlen(text), true, true, prompt, 64, &n) == HEARTH_OK);
    n_prompt = (int)n;
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --chat-template chatml --max-body 200000"));
    completions(&sv);
    chat_stream_n(&sv);
    errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    gateway(model_path);
    hearth_model_free(model);
    fixture_server_cleanup("test_gbnf_server", scratch, test_failures > 0);
    return test_done("test_gbnf_server");
}
