/*
 * test_server_sampler_order.c - min_keep, dynatemp_range / dynatemp_exponent
 * and samplers (the chain's order) through the server: the request parser
 * without a server (each field lands in the sampling settings, names and
 * letters with llama.cpp's aliases, [] and "" as no stage; each bad value a
 * 400 naming the field or samplers[i]); a model's "parameters" in
 * --models-file; then `hearth serve` on a small model: each setting on
 * /v1/completions and /completion gives the library's text for the same
 * settings and seed and another text than without it, names and letters
 * alike; the 400s on every route; /props reporting them as llama-server
 * does, for the defaults and for a model's parameters.
 */
#include "test.h"

#include "sampler_order_cases.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/served_model.h"
#include "server/server.h"

#include <cjson/cJSON.h>

/* ---- the parser ------------------------------------------------------------------------- */

static bool parse(const char *fields, srv_request *r, srv_error *e) {
    char b[2048];
    snprintf(b, sizeof b, "{\"prompt\":\"x\",%s}", fields);
    *e = (srv_error){0};
    return srv_parse_request(SRV_COMPLETION, b, strlen(b), r, e);
}

static bool chain_is(const hearth_sampling *s, int n, const hearth_sampler_stage *want) {
    if (s->n_samplers != n) return false;
    for (int i = 0; i < n; i++)
        if (s->samplers[i] != want[i]) return false;
    return true;
}

static void test_parse(void) {
    srv_request r;
    srv_error e;
    REQUIRE(parse("\"min_keep\":5,\"dynatemp_range\":0.5,\"dynatemp_exponent\":2,"
                  "\"samplers\":[\"Top-K\",\"nucleus\",\"temp\",\"typical_p\",\"penalties\"]",
                  &r, &e));
    const hearth_sampler_stage names[] = {
        HEARTH_SAMPLER_STAGE_TOP_K, HEARTH_SAMPLER_STAGE_TOP_P, HEARTH_SAMPLER_STAGE_TEMPERATURE,
        HEARTH_SAMPLER_STAGE_TYPICAL_P, HEARTH_SAMPLER_STAGE_PENALTIES};
    CHECK(r.sampling.min_keep == 5 && r.sampling.dynatemp_range == 0.5f &&
          r.sampling.dynatemp_exponent == 2.0f && chain_is(&r.sampling, 5, names));
    CHECK(r.given & SRV_GIVEN(SRV_P_SAMPLERS) && r.given & SRV_GIVEN(SRV_P_MIN_KEEP));
    srv_request_free(&r);
    REQUIRE(parse("\"samplers\":\"edskypmxt\"", &r, &e));
    const hearth_sampler_stage all[] = {
        HEARTH_SAMPLER_STAGE_PENALTIES,   HEARTH_SAMPLER_STAGE_DRY,
        HEARTH_SAMPLER_STAGE_TOP_N_SIGMA, HEARTH_SAMPLER_STAGE_TOP_K,
        HEARTH_SAMPLER_STAGE_TYPICAL_P,   HEARTH_SAMPLER_STAGE_TOP_P,
        HEARTH_SAMPLER_STAGE_MIN_P,       HEARTH_SAMPLER_STAGE_XTC,
        HEARTH_SAMPLER_STAGE_TEMPERATURE};
    CHECK(chain_is(&r.sampling, 9, all));
    srv_request_free(&r);
    /* a stage may repeat; [] and "" are no stage at all */
    REQUIRE(parse("\"samplers\":[\"temperature\",\"temperature\"]", &r, &e));
    CHECK(r.sampling.n_samplers == 2);
    srv_request_free(&r);
    REQUIRE(parse("\"samplers\":[]", &r, &e));
    CHECK(r.sampling.n_samplers == HEARTH_SAMPLERS_NONE);
    srv_request_free(&r);
    REQUIRE(parse("\"samplers\":\"\"", &r, &e));
    CHECK(r.sampling.n_samplers == HEARTH_SAMPLERS_NONE);
    srv_request_free(&r);
    /* absent: llama.cpp's defaults, the default chain */
    REQUIRE(parse("\"seed\":1", &r, &e));
    CHECK(r.sampling.min_keep == 0 && r.sampling.dynatemp_range == 0.0f &&
          r.sampling.dynatemp_exponent == 1.0f && r.sampling.n_samplers == 0 &&
          !(r.given & SRV_GIVEN(SRV_P_SAMPLERS)));
    srv_request_free(&r);

    char many[512] = "\"samplers\":\"";
    for (int i = 0; i < 33; i++) strcat(many, "k");
    strcat(many, "\"");
    const struct {
        const char *field, *param, *needle;
    } bad[] = {
        {"\"min_keep\":-1", "min_keep", "between 0"},
        {"\"min_keep\":1.5", "min_keep", "integer"},
        {"\"min_keep\":\"3\"", "min_keep", "integer"},
        {"\"dynatemp_range\":\"x\"", "dynatemp_range", "number"},
        {"\"dynatemp_exponent\":true", "dynatemp_exponent", "number"},
        {"\"samplers\":5", "samplers", "array of sampler names or a string"},
        {"\"samplers\":{\"top_k\":1}", "samplers", "array"},
        {"\"samplers\":[\"top_k\",3]", "samplers[1]", "must be a string"},
        {"\"samplers\":[\"top_k\",\"topk_\"]", "samplers[1]", "'topk_' is not a sampler"},
        {"\"samplers\":[\"infill\"]", "samplers[0]", "Hearth does not have"},
        {"\"samplers\":[\"top_k\",\"adaptive-p\"]", "samplers[1]", "Hearth does not have"},
        {"\"samplers\":\"kpz\"", "samplers", "'z' is not a sampler's letter"},
        {"\"samplers\":\"kpi\"", "samplers", "'i' is a sampler of llama.cpp's"},
        {many, "samplers", "at most 32"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const bool ok = parse(bad[i].field, &r, &e);
        CHECKF(!ok, "accepted: %s", bad[i].field);
        if (ok) {
            srv_request_free(&r);
            continue;
        }
        CHECKF(e.status == 400 && !strcmp(e.param, bad[i].param) &&
                   strstr(e.message, bad[i].needle),
               "%s: %d '%s' '%s'", bad[i].field, e.status, e.param, e.message);
    }
}

/* --models-file "parameters" (the parser's and settings' functions) */
static void test_model_params(void) {
    srv_model *m = calloc(1, sizeof *m);
    REQUIRE(m);
    cJSON *o = cJSON_Parse("{\"min_keep\":4,\"dynatemp_range\":0.5,\"dynatemp_exponent\":2,"
                           "\"samplers\":[\"top_k\",\"temperature\"]}");
    REQUIRE(srv_model_params_parse(m, o, 0) == HEARTH_OK);
    srv_request r;
    srv_error e;
    REQUIRE(parse("\"dynatemp_exponent\":3", &r, &e));
    srv_settings st;
    srv_model_settings(m, &r, &st);
    const hearth_sampler_stage kt[] = {HEARTH_SAMPLER_STAGE_TOP_K,
                                       HEARTH_SAMPLER_STAGE_TEMPERATURE};
    CHECK(st.sampling.min_keep == 4 && st.sampling.dynatemp_range == 0.5f &&
          st.sampling.dynatemp_exponent == 3.0f && chain_is(&st.sampling, 2, kt));
    srv_request_free(&r);
    /* the request's own order wins, [] too */
    REQUIRE(parse("\"samplers\":[]", &r, &e));
    srv_model_settings(m, &r, &st);
    CHECK(st.sampling.n_samplers == HEARTH_SAMPLERS_NONE);
    srv_request_free(&r);
    char *text = srv_model_params_text(m); /* ollama's /api/show lines */
    CHECKF(text && strstr(text, "samplers") && strstr(text, "top_k;temperature") &&
               strstr(text, "min_keep"),
           "%s", text ? text : "(null)");
    free(text);
    cJSON_Delete(o);
    static const char *const bad[][2] = {
        {"{\"min_keep\":-1}", "models[0].parameters.min_keep"},
        {"{\"dynatemp_range\":\"x\"}", "models[0].parameters.dynatemp_range"},
        {"{\"samplers\":7}", "models[0].parameters.samplers must be an array"},
        {"{\"samplers\":[\"top_k\",\"foo\"]}", "models[0].parameters.samplers[1] 'foo'"},
        {"{\"samplers\":\"kq\"}", "models[0].parameters.samplers 'q'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(m, 0, sizeof *m);
        o = cJSON_Parse(bad[i][0]);
        CHECKF(srv_model_params_parse(m, o, 0) == HEARTH_ERR_INVALID_ARG &&
                   strstr(hearth_last_error(), bad[i][1]),
               "%s: %s", bad[i][0], hearth_last_error());
        cJSON_Delete(o);
    }
    free(m);
}

/* ---- the server ------------------------------------------------------------------------- */

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_order_XXXXXX";
static served_model sm;

enum { SEED = 5, MAX_TOKENS = 10 };

static char *library(const sampler_case *c) {
    hearth_sampling sp = openai_sampling(1.0f, SEED);
    c->set(&sp);
    return library_text(sm.model, sm.prompt, sm.n_prompt, &sp, MAX_TOKENS, NULL);
}

/* Each case on /v1/completions and /completion (llama-server's defaults
 * off, so that both mean the library's settings): the library's text, and
 * another than its base's. */
static void test_cases(test_server *sv) {
    char *texts[N_ORDER_CASES];
    for (int i = 0; i < N_ORDER_CASES; i++) {
        const sampler_case *c = &order_cases[i];
        char b[2048];
        snprintf(b, sizeof b, "{\"prompt\":%s,\"max_tokens\":%d,\"seed\":%d,%s}", sm.prompt_json,
                 MAX_TOKENS, SEED, c->json);
        texts[i] = post_text(sv, "/v1/completions", b, "choices.0.text", c->name);
        char *want = library(c);
        CHECKF(!strcmp(texts[i], want), "%s: server '%s', library '%s'", c->name, texts[i], want);
        snprintf(b, sizeof b,
                 "{\"prompt\":%s,\"n_predict\":%d,\"seed\":%d,\"top_k\":0,\"top_p\":1,%s%s}",
                 sm.prompt_json, MAX_TOKENS, SEED, strstr(c->json, "min_p") ? "" : "\"min_p\":0,",
                 c->json);
        char *llama = post_text(sv, "/completion", b, "content", c->name);
        CHECKF(!strcmp(llama, want), "/completion %s: '%s' vs '%s'", c->name, llama, want);
        printf("%-24s %s\n", c->name, texts[i]);
        free(llama);
        free(want);
    }
    for (int i = 0; i < N_ORDER_CASES; i++) {
        const int b = order_case_base[i];
        if (b >= 0)
            CHECKF(strcmp(texts[i], texts[b]) != 0, "%s: the same text as %s ('%s')",
                   order_cases[i].name, order_cases[b].name, texts[i]);
    }
    CHECK(!strcmp(texts[OC_NAMES], texts[OC_LETTERS]));
    for (int i = 0; i < N_ORDER_CASES; i++) free(texts[i]);
    /* the chat route takes them too */
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,"
                       "\"min_keep\":2,\"dynatemp_range\":0.3,\"samplers\":\"kt\",\"seed\":1}";
    free(post_text(sv, "/v1/chat/completions", chat, "choices.0.message.content", "chat"));
}

static void test_errors(test_server *sv) {
    static const struct {
        const char *path, *body, *param;
    } bad[] = {
        {"/v1/completions", "{\"prompt\":\"x\",\"samplers\":[\"top_k\",\"foo\"]}", "samplers[1]"},
        {"/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"min_keep\":-2}", "min_keep"},
        {"/completion", "{\"prompt\":\"x\",\"samplers\":\"kpi\"}", "samplers"},
        {"/completion", "{\"prompt\":\"x\",\"samplers\":[\"infill\"]}", "samplers[0]"},
        {"/completion", "{\"prompt\":\"x\",\"dynatemp_exponent\":\"1\"}", "dynatemp_exponent"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        test_reply r = test_http(sv, "POST", bad[i].path, bad[i].body, NULL);
        char what[256];
        snprintf(what, sizeof what, "%s %s", bad[i].path, bad[i].body);
        expect_error(what, &r, 400, bad[i].param, NULL);
        free(r.body);
    }
}

/* /props: default_generation_settings.params.<name> of sv */
static cJSON *props(test_server *sv) {
    test_reply r = test_http(sv, "GET", "/props", NULL, NULL);
    cJSON *j = parse_reply(&r);
    free(r.body);
    return j;
}

static double prop_num(const cJSON *j, const char *name) {
    char k[128];
    snprintf(k, sizeof k, "default_generation_settings.params.%s", name);
    return j ? jnum(j, k) : NAN;
}

/* The "samplers" array of /props joined with ',' into out. */
static void prop_samplers(const cJSON *j, char *out, size_t cap) {
    out[0] = '\0';
    const cJSON *a =
        j ? cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(j, "default_generation_settings"), "params"),
                "samplers")
          : NULL;
    size_t at = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, a) {
        if (cJSON_IsString(s) && at < cap)
            at += (size_t)snprintf(out + at, cap - at, "%s%s", at ? "," : "", s->valuestring);
    }
}

static void test_props_default(test_server *sv) {
    cJSON *j = props(sv);
    char chain[256];
    prop_samplers(j, chain, sizeof chain);
    CHECKF(!strcmp(chain, "penalties,dry,top_n_sigma,top_k,typ_p,top_p,min_p,xtc,temperature"),
           "/props samplers: %s", chain);
    CHECK(prop_num(j, "min_keep") == 0 && prop_num(j, "dynatemp_range") == 0 &&
          prop_num(j, "dynatemp_exponent") == 1);
    cJSON_Delete(j);
}

/* A server started with a model whose parameters set them: /props and a
 * request that says nothing get them; a request's own order wins. */
static void test_models_file(void) {
    test_server sv;
    served_model_start_file(&sm, &sv, binary, scratch,
                            "{\"samplers\":\"tm\",\"min_keep\":3,\"dynatemp_range\":0.25}");
    cJSON *j = props(&sv);
    char chain[256];
    prop_samplers(j, chain, sizeof chain);
    CHECKF(!strcmp(chain, "temperature,min_p") && prop_num(j, "min_keep") == 3 &&
               prop_num(j, "dynatemp_range") == 0.25,
           "/props with the model's parameters: %s, min_keep %g", chain, prop_num(j, "min_keep"));
    cJSON_Delete(j);
    char b[2048];
    snprintf(b, sizeof b, "{\"prompt\":%s,\"max_tokens\":%d,\"seed\":%d,%s}", sm.prompt_json,
             MAX_TOKENS, SEED, order_cases[OC_HOT].json);
    char *got = post_text(&sv, "/v1/completions", b, "choices.0.text", "the model's order");
    hearth_sampling sp = openai_sampling(1.0f, SEED);
    oc_hot_reordered(&sp);
    sp.min_keep = 3;
    sp.dynatemp_range = 0.25f;
    char *want = library_text(sm.model, sm.prompt, sm.n_prompt, &sp, MAX_TOKENS, NULL);
    CHECKF(!strcmp(got, want), "the model's samplers: '%s' vs '%s'", got, want);
    free(got);
    free(want);
    /* the request's order over the model's */
    snprintf(b, sizeof b,
             "{\"prompt\":%s,\"max_tokens\":%d,\"seed\":%d,\"min_keep\":0,\"dynatemp_range\":0,%s,"
             "\"samplers\":\"mt\"}",
             sm.prompt_json, MAX_TOKENS, SEED, order_cases[OC_HOT].json);
    got = post_text(&sv, "/v1/completions", b, "choices.0.text", "the request's order");
    want = library(&order_cases[OC_HOT]); /* m then t: the default chain's order of the two */
    CHECKF(!strcmp(got, want), "the request's samplers: '%s' vs '%s'", got, want);
    free(got);
    /* ... on /completion too, whose passed-through fields count as given */
    snprintf(b, sizeof b,
             "{\"prompt\":%s,\"n_predict\":%d,\"seed\":%d,\"top_k\":0,\"top_p\":1,\"min_keep\":0,"
             "\"dynatemp_range\":0,%s,\"samplers\":\"mt\"}",
             sm.prompt_json, MAX_TOKENS, SEED, order_cases[OC_HOT].json);
    got = post_text(&sv, "/completion", b, "content", "the request's order");
    CHECKF(!strcmp(got, want), "/completion, the request's samplers: '%s' vs '%s'", got, want);
    free(got);
    free(want);
    CHECK(test_server_stop(&sv) == 0);
}

int main(void) {
    test_parse();
    test_model_params();
    bool skip;
    if (!served_model_open(&sm, "test_server_sampler_order", scratch, &skip)) return TEST_SKIP;
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, sm.path, scratch,
                              "--parallel 2 -t 1 --chat-template chatml"));
    test_cases(&sv);
    test_errors(&sv);
    test_props_default(&sv);
    CHECK(test_server_stop(&sv) == 0);
    test_models_file();
    hearth_model_free(sm.model);
    fixture_server_cleanup("test_server_sampler_order", scratch, test_failures > 0);
    return test_done("test_server_sampler_order");
}
