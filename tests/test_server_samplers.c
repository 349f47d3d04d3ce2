/*
 * test_server_samplers.c - llama.cpp's other samplers through the server:
 * the request parser without a server (each field lands in the sampling
 * settings; each bad value is a 400 naming the field; dry_base below 1 is
 * the default, as llama-server), then `hearth serve` on a small model (curl
 * against the real program): typical_p, top_n_sigma, XTC, Mirostat 1 and 2
 * and DRY on /v1/completions give the library's text for the same settings
 * and seed, and another text than without them; /completion (llama-server's
 * names and defaults) and ollama's options (typical_p, mirostat*) mean the
 * same; ignore_eos runs past a forced end-of-generation token to n_predict;
 * and the 400s on every route.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/served_model.h"
#include "server/server.h"
#include "server/sse_choices.h"
#include "sampler_cases.h"

#include <cjson/cJSON.h>

/* ---- the parser ------------------------------------------------------------------- */

static void test_parse(void) {
    const char *body = "{\"prompt\":\"x\",\"typical_p\":0.5,\"top_n_sigma\":1.5,"
                       "\"xtc_probability\":0.25,\"xtc_threshold\":0.2,\"mirostat\":2,"
                       "\"mirostat_tau\":4,\"mirostat_eta\":0.3,\"dry_multiplier\":0.8,"
                       "\"dry_base\":2,\"dry_allowed_length\":3,\"dry_penalty_last_n\":-1,"
                       "\"dry_sequence_breakers\":[\"\\n\",\"::\"],\"ignore_eos\":true}";
    srv_request r;
    srv_error e = {0};
    REQUIRE(srv_parse_request(SRV_COMPLETION, body, strlen(body), &r, &e));
    const hearth_sampling *s = &r.sampling;
    CHECK(s->typical_p == 0.5f && s->top_n_sigma == 1.5f && s->xtc_probability == 0.25f &&
          s->xtc_threshold == 0.2f && s->mirostat == 2 && s->mirostat_tau == 4.0f &&
          s->mirostat_eta == 0.3f && s->dry_multiplier == 0.8f && s->dry_base == 2.0f &&
          s->dry_allowed_length == 3 && s->dry_penalty_last_n == -1 && s->ignore_eos);
    CHECK(s->n_dry_sequence_breakers == 2 && !strcmp(s->dry_sequence_breakers[0], "\n") &&
          !strcmp(s->dry_sequence_breakers[1], "::"));
    srv_request_free(&r);
    /* absent: off, llama.cpp's knobs */
    const char *empty = "{\"prompt\":\"x\"}";
    REQUIRE(srv_parse_request(SRV_COMPLETION, empty, strlen(empty), &r, &e));
    const hearth_sampling d = hearth_sampling_default_params();
    CHECK(!s->ignore_eos && s->typical_p == 1.0f && s->top_n_sigma == d.top_n_sigma &&
          s->xtc_probability == 0 && s->mirostat == 0 && s->dry_multiplier == 0 &&
          s->dry_base == d.dry_base && !s->dry_sequence_breakers);
    srv_request_free(&r);
    /* dry_base below 1: the default (llama-server replaces it) */
    const char *low = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"dry_base\":0.5}";
    REQUIRE(srv_parse_request(SRV_CHAT, low, strlen(low), &r, &e));
    CHECK(r.sampling.dry_base == d.dry_base);
    srv_request_free(&r);

    static const struct {
        const char *field, *param, *needle;
    } bad[] = {
        {"\"typical_p\":1.5", "typical_p", "between 0 and 1"},
        {"\"typical_p\":\"0.5\"", "typical_p", "number"},
        {"\"top_n_sigma\":true", "top_n_sigma", "number"},
        {"\"xtc_probability\":2", "xtc_probability", "between"},
        {"\"xtc_threshold\":-0.1", "xtc_threshold", "between"},
        {"\"mirostat\":3", "mirostat", "between 0 and 2"},
        {"\"mirostat\":1.5", "mirostat", "integer"},
        {"\"mirostat_tau\":-1", "mirostat_tau", "between"},
        {"\"mirostat_eta\":\"x\"", "mirostat_eta", "number"},
        {"\"dry_multiplier\":-0.5", "dry_multiplier", "between"},
        {"\"dry_allowed_length\":-1", "dry_allowed_length", "between"},
        {"\"dry_allowed_length\":1.5", "dry_allowed_length", "integer"},
        {"\"dry_penalty_last_n\":-2", "dry_penalty_last_n", "between -1"},
        {"\"dry_sequence_breakers\":[]", "dry_sequence_breakers", "1 to 64"},
        {"\"dry_sequence_breakers\":\"\\n\"", "dry_sequence_breakers", "array"},
        {"\"dry_sequence_breakers\":[\"a\",1]", "dry_sequence_breakers[1]", "string"},
        {"\"dry_sequence_breakers\":[\"\"]", "dry_sequence_breakers[0]", "1 to 40 bytes"},
        {"\"dry_sequence_breakers\":[\"0123456789012345678901234567890123456789x\"]",
         "dry_sequence_breakers[0]", "1 to 40 bytes"},
        {"\"ignore_eos\":1", "ignore_eos", "boolean"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char b[512];
        snprintf(b, sizeof b, "{\"prompt\":\"x\",%s}", bad[i].field);
        e = (srv_error){0};
        const bool ok = srv_parse_request(SRV_COMPLETION, b, strlen(b), &r, &e);
        CHECKF(!ok, "accepted: %s", b);
        if (ok) {
            srv_request_free(&r);
            continue;
        }
        CHECKF(e.status == 400 && !strcmp(e.param, bad[i].param) &&
                   strstr(e.message, bad[i].needle),
               "%s: %d '%s' '%s'", b, e.status, e.param, e.message);
    }
    /* 65 breakers: one too many */
    char big[1024];
    size_t o = (size_t)snprintf(big, sizeof big, "{\"prompt\":\"x\",\"dry_sequence_breakers\":[");
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%s\":\"", i ? "," : "");
    snprintf(big + o, sizeof big - o, "]}");
    CHECK(!srv_parse_request(SRV_COMPLETION, big, strlen(big), &r, &e) &&
          !strcmp(e.param, "dry_sequence_breakers"));
}

/* ---- the server ----------------------------------------------------------------------- */

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_smp_XXXXXX";
static served_model sm;

enum { SEED = 5, MAX_TOKENS = 10 };

static char *library(const sampler_case *c) {
    hearth_sampling sp = openai_sampling(1.0f, SEED);
    if (c) c->set(&sp);
    return library_text(sm.model, sm.prompt, sm.n_prompt, &sp, MAX_TOKENS, NULL);
}

static void test_v1(test_server *sv) {
    char b[2048];
    snprintf(b, sizeof b, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":1,\"seed\":%d}",
             sm.prompt_json, MAX_TOKENS, SEED);
    char *plain = post_text(sv, "/v1/completions", b, "choices.0.text", "plain");
    char *want = library(NULL);
    CHECKF(!strcmp(plain, want), "plain: '%s' vs '%s'", plain, want);
    free(want);
    int changed = 0;
    for (size_t i = 0; i < N_SAMPLER_CASES; i++) {
        snprintf(b, sizeof b, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":1,\"seed\":%d,%s}",
                 sm.prompt_json, MAX_TOKENS, SEED, sampler_cases[i].json);
        char *got = post_text(sv, "/v1/completions", b, "choices.0.text", sampler_cases[i].name);
        want = library(&sampler_cases[i]);
        CHECKF(!strcmp(got, want), "%s: server '%s', library '%s'", sampler_cases[i].name, got,
               want);
        changed += strcmp(got, plain) != 0 || sampler_cases[i].may_keep_text;
        printf("%-12s %s\n", sampler_cases[i].name, got);
        free(got);
        free(want);
    }
    printf("%-12s %s\n", "(none)", plain);
    /* each setting is strong enough to move some token of 10 */
    CHECKF(changed == (int)(N_SAMPLER_CASES), "%d settings changed the text", changed);
    /* the chat route takes them too */
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,"
                       "\"mirostat\":2,\"typical_p\":0.5,\"dry_multiplier\":0.5,\"seed\":1}";
    char *c = post_text(sv, "/v1/chat/completions", chat, "choices.0.message.content", "chat");
    free(c);
    free(plain);
}

/* llama-server's /completion: its own defaults, so every field is given */
static void test_llama_route(test_server *sv) {
    char b[2048];
    for (size_t i = 0; i < N_SAMPLER_CASES; i++) {
        snprintf(b, sizeof b,
                 "{\"prompt\":%s,\"n_predict\":%d,\"temperature\":1,\"top_k\":0,\"top_p\":1,"
                 "\"min_p\":0,\"seed\":%d,%s}",
                 sm.prompt_json, MAX_TOKENS, SEED, sampler_cases[i].json);
        char *got = post_text(sv, "/completion", b, "content", sampler_cases[i].name);
        char *want = library(&sampler_cases[i]);
        CHECKF(!strcmp(got, want), "/completion %s: '%s' vs '%s'", sampler_cases[i].name, got,
               want);
        free(got);
        free(want);
    }
    /* ignore_eos: a forced end of generation is never drawn */
    const int eos = hearth_token_eos(sm.model);
    for (int ignore = 0; ignore < 2; ignore++) {
        snprintf(b, sizeof b,
                 "{\"prompt\":%s,\"n_predict\":%d,\"temperature\":0,\"logit_bias\":[[%d,100]]%s}",
                 sm.prompt_json, MAX_TOKENS, eos, ignore ? ",\"ignore_eos\":true" : "");
        int status;
        cJSON *j = post(sv, "/completion", b, &status);
        const char *type = j ? jstr(j, "stop_type") : NULL;
        if (ignore) {
            CHECKF(status == 200 && type && !strcmp(type, "limit") &&
                       jnum(j, "tokens_predicted") == MAX_TOKENS,
                   "ignore_eos: %d %s %g", status, type ? type : "-",
                   j ? jnum(j, "tokens_predicted") : -1);
            hearth_sampling sp = openai_sampling(0.0f, 1);
            hearth_logit_bias force = {eos, 100.0f};
            sp.logit_bias = &force;
            sp.n_logit_bias = 1;
            sp.ignore_eos = true;
            char *want = library_text(sm.model, sm.prompt, sm.n_prompt, &sp, MAX_TOKENS, NULL);
            const char *got = j ? jstr(j, "content") : NULL;
            CHECKF(got && !strcmp(got, want), "ignore_eos: '%s' vs '%s'", got ? got : "-", want);
            free(want);
        } else {
            CHECKF(status == 200 && type && !strcmp(type, "eos"), "forced eos: %d %s", status,
                   type ? type : "-");
        }
        cJSON_Delete(j);
    }
}

/* ollama's options typical_p and mirostat* mean what the OpenAI fields do */
static void test_ollama(test_server *sv) {
    static const struct {
        const char *options, *openai;
    } o[] = {
        {"\"typical_p\":0.3", "\"typical_p\":0.3"},
        {"\"mirostat\":2,\"mirostat_tau\":1.5,\"mirostat_eta\":0.2",
         "\"mirostat\":2,\"mirostat_tau\":1.5,\"mirostat_eta\":0.2"},
    };
    for (size_t i = 0; i < sizeof o / sizeof *o; i++) {
        char b[1024], r[1024];
        snprintf(b, sizeof b,
                 "{\"model\":\"m\",\"prompt\":\"Once upon a time\",\"raw\":true,\"stream\":false,"
                 "\"options\":{\"temperature\":1,\"top_k\":0,\"top_p\":1,\"repeat_penalty\":1,"
                 "\"seed\":%d,\"num_predict\":%d,%s}}",
                 SEED, MAX_TOKENS, o[i].options);
        snprintf(r, sizeof r,
                 "{\"prompt\":\"Once upon a time\",\"temperature\":1,\"seed\":%d,"
                 "\"max_tokens\":%d,%s}",
                 SEED, MAX_TOKENS, o[i].openai);
        char *got = post_text(sv, "/api/generate", b, "response", o[i].options);
        char *want = post_text(sv, "/v1/completions", r, "choices.0.text", o[i].openai);
        CHECKF(!strcmp(got, want), "ollama %s: '%s' vs '%s'", o[i].options, got, want);
        free(got);
        free(want);
    }
}

static void test_errors(test_server *sv) {
    static const struct {
        const char *path, *body, *param;
    } bad[] = {
        {"/v1/completions", "{\"prompt\":\"x\",\"typical_p\":2}", "typical_p"},
        {"/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"mirostat\":4}", "mirostat"},
        {"/completion", "{\"prompt\":\"x\",\"xtc_threshold\":1.5}", "xtc_threshold"},
        {"/completion", "{\"prompt\":\"x\",\"dry_sequence_breakers\":[]}", "dry_sequence_breakers"},
        {"/completion", "{\"prompt\":\"x\",\"ignore_eos\":\"yes\"}", "ignore_eos"},
        {"/completion", "{\"prompt\":\"x\",\"n_probs\":\"2\"}", "n_probs"},
        {"/api/generate", "{\"model\":\"m\",\"prompt\":\"x\",\"options\":{\"typical_p\":-1}}",
         "typical_p"},
        {"/api/chat",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"options\":{\"mirostat\":\"on\"}}",
         "mirostat"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        test_reply r = test_http(sv, "POST", bad[i].path, bad[i].body, NULL);
        char what[256];
        snprintf(what, sizeof what, "%s %s", bad[i].path, bad[i].body);
        if (strncmp(bad[i].path, "/api/", 5) != 0) {
            expect_error(what, &r, 400, bad[i].param, NULL);
        } else { /* ollama's shape: {"error": "message"}, the field named in it */
            cJSON *j = cJSON_ParseWithLength(r.body, r.len);
            const char *m = j ? jstr(j, "error") : NULL;
            CHECKF(r.status == 400 && m && strstr(m, bad[i].param), "%s: %d %.200s", what, r.status,
                   r.body);
            cJSON_Delete(j);
        }
        free(r.body);
    }
}

/* --models-file "parameters": a model's default for what a request leaves
 * out (the parser's and settings' functions, no server) */
static void test_model_params(void) {
    srv_model *m = calloc(1, sizeof *m);
    REQUIRE(m);
    cJSON *o = cJSON_Parse("{\"mirostat\":2,\"mirostat_tau\":1.5,\"typical_p\":0.5,"
                           "\"dry_multiplier\":0.8,\"dry_allowed_length\":3,\"xtc_threshold\":0.2,"
                           "\"top_n_sigma\":1,\"xtc_probability\":0.1,\"mirostat_eta\":0.3,"
                           "\"dry_base\":2,\"dry_penalty_last_n\":32}");
    REQUIRE(srv_model_params_parse(m, o, 0) == HEARTH_OK);
    srv_request r;
    srv_error e;
    const char *body = "{\"prompt\":\"x\",\"typical_p\":0.9,\"mirostat\":0}";
    REQUIRE(srv_parse_request(SRV_COMPLETION, body, strlen(body), &r, &e));
    srv_settings st;
    srv_model_settings(m, &r, &st);
    const hearth_sampling *s = &st.sampling;
    /* the request's own values win; the model's fill in the rest */
    CHECK(s->typical_p == 0.9f && s->mirostat == 0 && s->mirostat_tau == 1.5f &&
          s->mirostat_eta == 0.3f && s->dry_multiplier == 0.8f && s->dry_allowed_length == 3 &&
          s->xtc_threshold == 0.2f && s->xtc_probability == 0.1f && s->top_n_sigma == 1.0f &&
          s->dry_base == 2.0f && s->dry_penalty_last_n == 32);
    srv_request_free(&r);
    char *text = srv_model_params_text(m); /* ollama's /api/show lines */
    CHECKF(text && strstr(text, "mirostat_tau") && strstr(text, "typical_p"), "%s",
           text ? text : "(null)");
    free(text);
    cJSON_Delete(o);
    static const char *const bad[][2] = {
        {"{\"mirostat\":3}", "models[0].parameters.mirostat"},
        {"{\"dry_base\":0.5}", "models[0].parameters.dry_base"},
        {"{\"typical_p\":\"x\"}", "models[0].parameters.typical_p"},
        {"{\"dry_allowed_length\":1.5}", "models[0].parameters.dry_allowed_length"},
        {"{\"dry_sequence_breakers\":[\"a\"]}", "models[0].parameters.dry_sequence_breakers"},
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

/* The same through a server started with such a file, and /props */
static void test_models_file(void) {
    test_server sv;
    served_model_start_file(&sm, &sv, binary, scratch,
                            "{\"mirostat\":2,\"mirostat_tau\":1.5,\"mirostat_eta\":0.2}");
    char b[2048];
    snprintf(b, sizeof b, "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":1,\"seed\":%d}",
             sm.prompt_json, MAX_TOKENS, SEED);
    char *got = post_text(&sv, "/v1/completions", b, "choices.0.text", "model's mirostat");
    char *want = library(sampler_case_named("mirostat 2"));
    CHECKF(!strcmp(got, want), "the model's parameters: '%s' vs '%s'", got, want);
    free(got);
    free(want);
    snprintf(b, sizeof b,
             "{\"prompt\":%s,\"max_tokens\":%d,\"temperature\":1,\"seed\":%d,\"mirostat\":0}",
             sm.prompt_json, MAX_TOKENS, SEED);
    got = post_text(&sv, "/v1/completions", b, "choices.0.text", "request's mirostat 0");
    want = library(NULL);
    CHECKF(!strcmp(got, want), "mirostat 0 over the model's 2: '%s' vs '%s'", got, want);
    free(got);
    free(want);
    /* /props: what a request that says nothing gets */
    test_reply r = test_http(&sv, "GET", "/props", NULL, NULL);
    cJSON *j = parse_reply(&r);
    const char *p = "default_generation_settings.params.";
    char k[128];
#define NUM(name) (snprintf(k, sizeof k, "%s%s", p, name), jnum(j, k))
    CHECKF(j && NUM("mirostat") == 2 && NUM("mirostat_tau") == 1.5 && NUM("typical_p") == 1 &&
               NUM("dry_base") == 1.75 && NUM("dry_penalty_last_n") == 64 &&
               NUM("xtc_threshold") > 0.09 && NUM("top_n_sigma") == -1,
           "/props: %.600s", r.body);
#undef NUM
    snprintf(k, sizeof k, "%sdry_sequence_breakers.0", p);
    CHECK(j && jstr(j, k) && !strcmp(jstr(j, k), "\n"));
    cJSON_Delete(j);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
}

int main(void) {
    test_parse();
    test_model_params();
    bool skip;
    if (!served_model_open(&sm, "test_server_samplers", scratch, &skip)) return TEST_SKIP;
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, sm.path, scratch,
                              "--parallel 2 -t 1 --chat-template chatml"));
    test_v1(&sv);
    test_llama_route(&sv);
    test_ollama(&sv);
    test_errors(&sv);
    CHECK(test_server_stop(&sv) == 0);
    test_models_file();
    hearth_model_free(sm.model);
    fixture_server_cleanup("test_server_samplers", scratch, test_failures > 0);
    return test_done("test_server_samplers");
}
