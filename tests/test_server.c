/*
 * test_server.c - the integration test of `hearth serve`: starts the real
 * program on a free loopback port with a small model and talks to it with
 * curl. Greedy outputs are compared with what the library itself generates
 * for the same tokens (loaded in this process), so the server must neither
 * lose nor alter a token, whether streaming, reusing a slot's cache, or
 * serving several clients at once. Then errors, limits, a full queue, a
 * client that disconnects, and (when node and the openai npm package are
 * present, see HEARTH_NODE_MODULES) the official OpenAI client.
 */
#include "json_schema_validate.h"
#include "test.h"

#include "server/chat_templates.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "tokenizer/chat_template.h"

#include <cjson/cJSON.h>

#include <math.h>

#include <fcntl.h>
#include <sys/stat.h>

static const char *binary = HEARTH_BINARY;
static const char *key_header = "-H 'Authorization: Bearer sekrit'";
static hearth_model *model;
static bool synthetic; /* no ../shared: fixture_model's random weights */
static char scratch[] = "/tmp/hearth_srv_XXXXXX";

/* ---- what the library generates (the reference) -------------------------- */

typedef struct text_sink {
    char buf[16384];
    size_t n;
} text_sink;

static bool sink_token(const hearth_token_event *ev, void *user) {
    text_sink *t = user;
    if (t->n + ev->len < sizeof t->buf) {
        memcpy(t->buf + t->n, ev->text, ev->len);
        t->n += ev->len;
        t->buf[t->n] = '\0';
    }
    return true;
}

/* Greedy generation from ids; the text, malloc'd. */
static char *reference_ids(const int32_t *ids, int n_ids, int max_tokens, const char *stop,
                           hearth_gen_result *res) {
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    hearth_sampling sp = hearth_sampling_default_params();
    sp.temperature = 0;
    REQUIRE(hearth_session_new(model, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(model, &sp, &smp) == HEARTH_OK);
    text_sink *t = calloc(1, sizeof *t);
    REQUIRE(t);
    const char *stops[1] = {stop};
    hearth_gen_params gp = {.max_tokens = max_tokens, .stop = stops, .n_stop = stop ? 1 : 0};
    hearth_gen_result r;
    REQUIRE(hearth_generate(s, smp, ids, n_ids, &gp, sink_token, t, &r) == HEARTH_OK);
    if (res) *res = r;
    hearth_sampler_free(smp);
    hearth_session_free(s);
    char *text = strdup(t->buf);
    free(t);
    return text;
}

static int tokenize(const char *text, bool add_special, int32_t *ids, size_t cap) {
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), add_special, true, ids, cap, &n) ==
            HEARTH_OK);
    return (int)n;
}

/* The ChatML prompt of one user message, as tokens. */
static int chat_ids(const char *user, int32_t *ids, size_t cap) {
    char text[4096];
    snprintf(text, sizeof text, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
    return tokenize(text, true, ids, cap);
}

static char *reference_chat_text(const char *user, int max_tokens, const char *stop,
                                 hearth_gen_result *r) {
    int32_t ids[2048];
    const int n = chat_ids(user, ids, 2048);
    return reference_ids(ids, n, max_tokens, stop, r);
}

/* ---- request bodies ------------------------------------------------------- */

/* The sampled outputs checked above: with fixed seeds, at least one must
 * have finished, or nothing was validated; random weights (no ../shared)
 * need not close an object within their tokens, which is said, not failed. */
static void some_finished(const char *what, int n_stop) {
    if (synthetic && n_stop == 0)
        printf("%s: no sampled output finished on the synthetic model; unchecked\n", what);
    else
        CHECKF(n_stop > 0, "%s: no sampled output finished", what);
}

static char *chat_body(const char *user, int max_tokens, bool stream, const char *extra_json) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", "whatever");
    cJSON *msgs = cJSON_AddArrayToObject(b, "messages"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", user);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(b, "max_tokens", max_tokens);
    cJSON_AddNumberToObject(b, "temperature", 0);
    if (stream) cJSON_AddTrueToObject(b, "stream");
    if (extra_json) { /* merge the members of extra_json */
        cJSON *x = cJSON_Parse(extra_json);
        REQUIRE(x);
        while (x->child) {
            cJSON *it = cJSON_DetachItemViaPointer(x, x->child);
            cJSON_DeleteItemFromObjectCaseSensitive(b, it->string);
            cJSON_AddItemToObject(b, it->string, it);
        }
        cJSON_Delete(x);
    }
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

/* An OpenAI error reply: status, shape, and (when given) the param and a
 * piece of the message. */
static void check_error(const char *what, const test_reply *r, int status, const char *param,
                        const char *needle) {
    CHECKF(r->status == status, "%s: status %d, expected %d (%.300s)", what, r->status, status,
           r->body);
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    CHECKF(j && cJSON_IsObject(jget(j, "error")), "%s: no error object: %.300s", what, r->body);
    if (j) {
        CHECKF(jstr(j, "error.message") && jstr(j, "error.type"), "%s: message/type", what);
        CHECKF(jget(j, "error.param") && jget(j, "error.code"), "%s: param/code present", what);
        if (param)
            CHECKF(jstr(j, "error.param") && !strcmp(jstr(j, "error.param"), param),
                   "%s: param %s, expected %s", what, jstr(j, "error.param"), param);
        if (needle)
            CHECKF(jstr(j, "error.message") && strstr(jstr(j, "error.message"), needle),
                   "%s: message '%s' lacks '%s'", what, jstr(j, "error.message"), needle);
    }
    cJSON_Delete(j);
}

/* ---- SSE ------------------------------------------------------------------ */

typedef struct sse_result {
    bool framing_ok, done;
    int n_chunks;
    char content[16384];
    char finish[32]; /* "" when no chunk had one */
    bool role_first;
    int usage_prompt, usage_completion;
    int n_logprob_tokens;
} sse_result;

/* Parses a text/event-stream body: events "data: <json>\n\n", then
 * "data: [DONE]\n\n" and nothing after. */
static sse_result parse_sse(const char *body, bool chat) {
    sse_result r = {.usage_prompt = -1, .usage_completion = -1};
    cJSON *j;
    int got;
    while ((got = test_sse_next(&body, &r.done, &j)) > 0) {
        const cJSON *ch = jget(j, "choices.0");
        if (ch) {
            const char *t = jstr(ch, chat ? "delta.content" : "text");
            if (r.n_chunks == 0) r.role_first = chat && jstr(ch, "delta.role");
            if (t && strlen(r.content) + strlen(t) < sizeof r.content) strcat(r.content, t);
            const char *f = jstr(ch, "finish_reason");
            if (f) snprintf(r.finish, sizeof r.finish, "%s", f);
            const cJSON *lp = jget(ch, chat ? "logprobs.content" : "logprobs.tokens");
            if (cJSON_IsArray(lp)) r.n_logprob_tokens += cJSON_GetArraySize(lp);
        } else if (cJSON_IsObject(jget(j, "usage"))) {
            r.usage_prompt = (int)jnum(j, "usage.prompt_tokens");
            r.usage_completion = (int)jnum(j, "usage.completion_tokens");
        }
        r.n_chunks++;
        cJSON_Delete(j);
    }
    r.framing_ok = got == 0;
    return r;
}

/* ---- the tests ------------------------------------------------------------ */

static void test_basics(test_server *sv) {
    test_reply r = test_http(sv, "GET", "/health", NULL, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "\"ok\""), "health: %d %s", r.status, r.body);
    free(r.body);
    r = test_http(sv, "GET", "/v1/models", NULL, key_header);
    CHECK(r.status == 200);
    cJSON *j = parse_reply(&r);
    CHECK(jstr(j, "object") && !strcmp(jstr(j, "object"), "list"));
    const char *id = jstr(j, "data.0.id");
    CHECKF(id && strstr(id, ".gguf"), "model id %s", id ? id : "(none)");
    char path[300];
    snprintf(path, sizeof path, "/v1/models/%s", id ? id : "x");
    test_reply r2 = test_http(sv, "GET", path, NULL, key_header);
    CHECK(r2.status == 200);
    free(r2.body);
    cJSON_Delete(j);
    free(r.body);
    r = test_http(sv, "GET", "/v1/models/nope", NULL, key_header);
    check_error("model 404", &r, 404, "model", "nope");
    free(r.body);
    r = test_http(sv, "GET", "/v1/models", NULL, NULL);
    check_error("no key", &r, 401, NULL, "API key");
    free(r.body);
    r = test_http(sv, "GET", "/v1/models", NULL, "-H 'Authorization: Bearer wrong'");
    check_error("wrong key", &r, 401, NULL, NULL);
    free(r.body);
    r = test_http(sv, "GET", "/metrics", NULL, NULL);
    CHECKF(r.status == 200 && strstr(r.body, "hearth_requests_total{") &&
               strstr(r.body, "hearth_queue_depth ") &&
               strstr(r.body, "hearth_request_duration_seconds_bucket{le=\"+Inf\"}"),
           "metrics: %.300s", r.body);
    free(r.body);
}

static void test_chat(test_server *sv) {
    const char *user = "Tell me a story about a dragon.";
    hearth_gen_result ref_r;
    char *ref = reference_chat_text(user, 24, NULL, &ref_r);
    int32_t ids[2048];
    const int n_prompt = chat_ids(user, ids, 2048);
    char *body = chat_body(user, 24, false, NULL);
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
    CHECKF(r.status == 200, "chat: %d %s", r.status, r.body);
    cJSON *j = parse_reply(&r);
    CHECK(jstr(j, "object") && !strcmp(jstr(j, "object"), "chat.completion"));
    CHECK(jstr(j, "id") && !strncmp(jstr(j, "id"), "chatcmpl-", 9));
    CHECK(jnum(j, "created") > 1.6e9);
    CHECK(jstr(j, "model") != NULL);
    CHECK(jstr(j, "choices.0.message.role") &&
          !strcmp(jstr(j, "choices.0.message.role"), "assistant"));
    const char *content = jstr(j, "choices.0.message.content");
    CHECKF(content && !strcmp(content, ref), "chat content '%s' != library '%s'", content, ref);
    char fin[16];
    snprintf(fin, sizeof fin, "%s",
             jstr(j, "choices.0.finish_reason") ? jstr(j, "choices.0.finish_reason") : "?");
    CHECKF(!strcmp(fin, ref_r.finish == HEARTH_FINISH_STOP ? "stop" : "length"), "finish %s", fin);
    CHECKF((int)jnum(j, "usage.prompt_tokens") == n_prompt, "prompt tokens %g vs %d",
           jnum(j, "usage.prompt_tokens"), n_prompt);
    CHECK((int)jnum(j, "usage.completion_tokens") == ref_r.n_gen);
    CHECK((int)jnum(j, "usage.total_tokens") == n_prompt + ref_r.n_gen);
    cJSON_Delete(j);
    free(r.body);

    /* The same again: the slot's cache holds the prompt, the answer is the same. */
    r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
    j = parse_reply(&r);
    content = jstr(j, "choices.0.message.content");
    CHECKF(content && !strcmp(content, ref), "cached chat '%s' != '%s'", content, ref);
    CHECKF(jnum(j, "usage.prompt_tokens_details.cached_tokens") >= n_prompt - 1, "cached tokens %g",
           jnum(j, "usage.prompt_tokens_details.cached_tokens"));
    cJSON_Delete(j);
    free(r.body);
    free(body);

    /* Streaming: SSE framing, a role chunk first, the same text, [DONE]. */
    body = chat_body(user, 24, true, "{\"stream_options\":{\"include_usage\":true}}");
    r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
    CHECK(r.status == 200);
    sse_result s = parse_sse(r.body, true);
    CHECKF(s.framing_ok && s.done, "SSE framing: %.400s", r.body);
    CHECK(s.role_first);
    CHECKF(!strcmp(s.content, ref), "streamed '%s' != '%s'", s.content, ref);
    CHECK(!strcmp(s.finish, fin));
    CHECK(s.usage_prompt == n_prompt && s.usage_completion == ref_r.n_gen);
    free(r.body);
    free(body);
    free(ref);

    /* A stop string cut from the greedy text: the text before it, "stop". */
    char *longer = reference_chat_text(user, 40, NULL, NULL);
    const size_t L = strlen(longer);
    size_t at = L / 2;
    for (; at + 2 <= L; at++) { /* two plain ASCII characters, no JSON escapes */
        const unsigned char a = (unsigned char)longer[at], b = (unsigned char)longer[at + 1];
        if (a >= 0x20 && a < 0x7f && b >= 0x20 && b < 0x7f && a != '"' && b != '"' && a != '\\' &&
            b != '\\')
            break;
    }
    if (at + 2 <= L) {
        char stop[3] = {longer[at], longer[at + 1], 0}, extra[128];
        snprintf(extra, sizeof extra, "{\"stop\":[\"%s\"]}", stop);
        const size_t cut = (size_t)(strstr(longer, stop) - longer);
        body = chat_body(user, 40, false, extra);
        r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
        j = parse_reply(&r);
        content = jstr(j, "choices.0.message.content");
        CHECKF(content && strlen(content) == cut && !strncmp(content, longer, cut),
               "stop '%s': '%s' vs '%s'", stop, content, longer);
        CHECK(jstr(j, "choices.0.finish_reason") &&
              !strcmp(jstr(j, "choices.0.finish_reason"), "stop"));
        cJSON_Delete(j);
        free(r.body);
        free(body);
        /* streamed, no piece of the stop string shows either */
        body = chat_body(user, 40, true, extra);
        r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
        s = parse_sse(r.body, true);
        CHECKF(strlen(s.content) == cut && !strncmp(s.content, longer, cut), "streamed stop: '%s'",
               s.content);
        CHECK(!strcmp(s.finish, "stop"));
        free(r.body);
        free(body);
    } else {
        printf("no stop string found in '%s'\n", longer);
    }
    free(longer);

    /* logprobs with 3 alternatives: one entry per token, greedy = the best. */
    body = chat_body(user, 8, false, "{\"logprobs\":true,\"top_logprobs\":3}");
    r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
    j = parse_reply(&r);
    const cJSON *lp = jget(j, "choices.0.logprobs.content");
    CHECKF(cJSON_IsArray(lp) && cJSON_GetArraySize(lp) == (int)jnum(j, "usage.completion_tokens"),
           "logprobs: %.300s", r.body);
    for (int i = 0; lp && i < cJSON_GetArraySize(lp); i++) {
        const cJSON *t = cJSON_GetArrayItem(lp, i);
        CHECK(jstr(t, "token") && cJSON_IsArray(jget(t, "bytes")));
        CHECK(cJSON_GetArraySize(jget(t, "top_logprobs")) == 3);
        CHECK(jnum(t, "logprob") <= 0 &&
              fabs(jnum(t, "logprob") - jnum(t, "top_logprobs.0.logprob")) < 1e-6);
        CHECK(jnum(t, "top_logprobs.0.logprob") >= jnum(t, "top_logprobs.1.logprob"));
    }
    cJSON_Delete(j);
    free(r.body);
    free(body);
}

static void test_completions(test_server *sv) {
    const char *prompt = "Once upon a time";
    int32_t ids[256];
    const int n = tokenize(prompt, true, ids, 256);
    hearth_gen_result ref_r;
    char *ref = reference_ids(ids, n, 16, NULL, &ref_r);
    test_reply r = test_http(sv, "POST", "/v1/completions",
                             "{\"prompt\":\"Once upon a time\",\"temperature\":0}", key_header);
    CHECKF(r.status == 200, "completions: %d %s", r.status, r.body);
    cJSON *j = parse_reply(&r);
    CHECK(jstr(j, "object") && !strcmp(jstr(j, "object"), "text_completion"));
    const char *text = jstr(j, "choices.0.text");
    CHECKF(text && !strcmp(text, ref), "completion '%s' != '%s'", text, ref);
    CHECK((int)jnum(j, "usage.completion_tokens") == ref_r.n_gen && ref_r.n_gen <= 16);
    CHECK((int)jnum(j, "usage.prompt_tokens") == n);
    cJSON_Delete(j);
    free(r.body);
    /* token ids as the prompt, echo, legacy logprobs, streaming */
    char body[2048];
    int o = snprintf(body, sizeof body, "{\"prompt\":[");
    for (int i = 0; i < n; i++)
        o += snprintf(body + o, sizeof body - (size_t)o, "%s%d", i ? "," : "", ids[i]);
    snprintf(body + o, sizeof body - (size_t)o,
             "],\"max_tokens\":16,\"temperature\":0,\"logprobs\":2}");
    r = test_http(sv, "POST", "/v1/completions", body, key_header);
    j = parse_reply(&r);
    text = jstr(j, "choices.0.text");
    CHECKF(text && !strcmp(text, ref), "ids completion '%s'", text);
    const cJSON *toks = jget(j, "choices.0.logprobs.tokens");
    CHECK(cJSON_GetArraySize(toks) == ref_r.n_gen);
    CHECK(cJSON_GetArraySize(jget(j, "choices.0.logprobs.token_logprobs")) == ref_r.n_gen);
    CHECK(cJSON_GetArraySize(jget(j, "choices.0.logprobs.top_logprobs.0")) >= 1);
    cJSON_Delete(j);
    free(r.body);
    r = test_http(sv, "POST", "/v1/completions",
                  "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"echo\":true}", key_header);
    j = parse_reply(&r);
    text = jstr(j, "choices.0.text");
    CHECKF(text && !strncmp(text, prompt, strlen(prompt)) && !strcmp(text + strlen(prompt), ref),
           "echo '%s'", text);
    cJSON_Delete(j);
    free(r.body);
    r = test_http(sv, "POST", "/v1/completions",
                  "{\"prompt\":\"Once upon a time\",\"temperature\":0,\"stream\":true}",
                  key_header);
    sse_result s = parse_sse(r.body, false);
    CHECKF(s.framing_ok && s.done && !strcmp(s.content, ref), "streamed completion '%s'",
           s.content);
    CHECK(s.usage_prompt == -1); /* no include_usage: no usage chunk */
    free(r.body);
    free(ref);
}

/* The vector hearth_embed gives text (the server's defaults: the model's
 * pooling, normalised), into out[n_embd]. */
static void reference_embedding(const char *text, float *out) {
    int32_t ids[256];
    const int n = tokenize(text, true, ids, 256);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 256;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(model, &sp, &s) == HEARTH_OK);
    REQUIRE(hearth_embed(s, ids, n, hearth_model_pooling(model), true, out) == HEARTH_OK);
    hearth_session_free(s);
}

/* data[i].embedding as floats (an array, or base64 little-endian float32). */
static bool reply_vector(const cJSON *j, int i, float *out, int d) {
    char path[64];
    snprintf(path, sizeof path, "data.%d.embedding", i);
    const cJSON *e = jget(j, path);
    if (cJSON_IsArray(e)) {
        if (cJSON_GetArraySize(e) != d) return false;
        for (int k = 0; k < d; k++) out[k] = (float)cJSON_GetArrayItem(e, k)->valuedouble;
        return true;
    }
    if (!cJSON_IsString(e) || strlen(e->valuestring) != ((size_t)d * 4 + 2) / 3 * 4) return false;
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char *bytes = calloc((size_t)d, 4);
    uint32_t acc = 0;
    int bits = 0;
    size_t nb = 0;
    for (const char *c = e->valuestring; *c && *c != '='; c++) {
        const char *at = strchr(digits, *c);
        if (!at || !bytes) break;
        acc = acc << 6 | (uint32_t)(at - digits);
        if ((bits += 6) >= 8) {
            bits -= 8;
            if (nb < (size_t)d * 4) bytes[nb] = (unsigned char)(acc >> bits);
            nb++;
        }
    }
    for (int k = 0; bytes && k < d; k++) {
        const uint32_t u = (uint32_t)bytes[4 * k] | (uint32_t)bytes[4 * k + 1] << 8 |
                           (uint32_t)bytes[4 * k + 2] << 16 | (uint32_t)bytes[4 * k + 3] << 24;
        memcpy(&out[k], &u, sizeof u);
    }
    free(bytes);
    return nb == (size_t)d * 4;
}

static void test_embeddings(test_server *sv) {
    const int d = hearth_model_n_embd(model);
    float *ref0 = malloc((size_t)d * sizeof(float)), *ref1 = malloc((size_t)d * sizeof(float));
    float *got = malloc((size_t)d * sizeof(float));
    REQUIRE(ref0 && ref1 && got);
    reference_embedding("The quick brown fox", ref0);
    reference_embedding("jumps over the lazy dog", ref1);
    for (int b64 = 0; b64 < 2; b64++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"input\":[\"The quick brown fox\",\"jumps over the lazy "
                 "dog\"]%s}",
                 b64 ? ",\"encoding_format\":\"base64\"" : "");
        test_reply r = test_http(sv, "POST", "/v1/embeddings", body, key_header);
        CHECKF(r.status == 200, "embeddings: %d %.300s", r.status, r.body);
        cJSON *j = parse_reply(&r);
        CHECK(jstr(j, "object") && !strcmp(jstr(j, "object"), "list"));
        CHECK(jnum(j, "data.1.index") == 1 && !strcmp(jstr(j, "data.1.object"), "embedding"));
        for (int i = 0; i < 2; i++) {
            const bool shaped = reply_vector(j, i, got, d);
            CHECKF(shaped, "embeddings: vector %d's shape (base64 %d)", i, b64);
            if (!shaped) continue; /* got is not filled */
            double worst = 0;
            for (int k = 0; k < d; k++) {
                const double diff = fabs((double)got[k] - (i ? ref1 : ref0)[k]);
                if (!(diff <= worst)) worst = diff;
            }
            /* the two texts share a forward pass: base64 carries the bits,
             * the same as each text's alone (hearth_embed_batch) */
            CHECKF(b64 ? worst == 0 : worst <= 1e-6,
                   "embeddings: vector %d (base64 %d) differs by %g", i, b64, worst);
        }
        int32_t ids[256];
        const int n = tokenize("The quick brown fox", true, ids, 256) +
                      tokenize("jumps over the lazy dog", true, ids, 256);
        CHECK((int)jnum(j, "usage.prompt_tokens") == n && (int)jnum(j, "usage.total_tokens") == n);
        cJSON_Delete(j);
        free(r.body);
    }
    static const struct {
        const char *body, *param, *needle;
    } bad[] = {
        {"{\"input\":[]}", "input", "empty"},
        {"{\"input\":[\"ok\",\"\"]}", "input[1]", "empty"},
        {"{\"input\":[[1,2],[-3]]}", "input[1]", "token id"},
        {"{\"input\":\"x\",\"dimensions\":3}", "dimensions", "dimensions"},
        {"{\"input\":\"x\",\"encoding_format\":1}", "encoding_format", NULL},
        {"{\"input\":7.5}", "input", NULL},
    };
    test_reply r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = test_http(sv, "POST", "/v1/embeddings", bad[i].body, key_header);
        check_error(bad[i].body, &r, 400, bad[i].param, bad[i].needle);
        free(r.body);
    }
    enum { LONG = 5000 }; /* more tokens than a slot holds */
    char *body = malloc(LONG * 2 + 32);
    REQUIRE(body);
    int o = snprintf(body, 32, "{\"input\":[");
    for (int i = 0; i < LONG; i++) o += snprintf(body + o, 3, i ? ",1" : "1");
    snprintf(body + o, 3, "]}");
    r = test_http(sv, "POST", "/v1/embeddings", body, key_header);
    check_error("embeddings: too long", &r, 400, "input", "context");
    free(r.body);
    free(body);
    free(ref0);
    free(ref1);
    free(got);
}

static void test_errors(test_server *sv) {
    test_reply r = test_http(sv, "POST", "/v1/chat/completions", "{\"messages\": [", key_header);
    check_error("bad JSON", &r, 400, NULL, "JSON");
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":\"ten\"}",
                  key_header);
    check_error("wrong type", &r, 400, "max_tokens", "max_tokens");
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", key_header);
    check_error("content type", &r, 400, "messages[0].content", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", key_header);
    check_error("role", &r, 400, "messages[0].role", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions", "{\"model\":\"x\"}", key_header);
    check_error("no messages", &r, 400, "messages", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":17}", key_header);
    check_error("n=17", &r, 400, "n", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{"
                  "\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{"
                  "\"type\":\"string\",\"pattern\":\"^a\"}}}}",
                  key_header);
    check_error("json schema", &r, 400, "response_format.json_schema.schema", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{"
                  "\"type\":\"text\"},\"max_tokens\":2}",
                  key_header);
    CHECKF(r.status == 200, "response_format text: %d", r.status);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":7}",
                  key_header);
    check_error("temperature range", &r, 400, "temperature", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", key_header);
    check_error("invalid UTF-8", &r, 400, NULL, "UTF-8");
    free(r.body);
    r = test_http(sv, "POST", "/v1/completions", "{\"prompt\":[99999999],\"max_tokens\":2}",
                  key_header);
    check_error("token id", &r, 400, "prompt[0]", NULL);
    free(r.body);
    r = test_http(sv, "POST", "/v1/nothing", "{}", key_header);
    check_error("unknown path", &r, 404, NULL, "/v1/nothing");
    free(r.body);
    r = test_http(sv, "GET", "/v1/chat/completions", NULL, key_header);
    check_error("wrong method", &r, 405, NULL, "POST");
    free(r.body);
    /* a prompt longer than the context (256): 400 with both numbers */
    char *big = malloc(64 * 1024);
    REQUIRE(big);
    int o = snprintf(big, 64 * 1024, "{\"prompt\":\"");
    for (int i = 0; i < 600; i++) o += snprintf(big + o, 64 * 1024 - (size_t)o, "word%d ", i);
    snprintf(big + o, 64 * 1024 - (size_t)o, "\"}");
    r = test_http(sv, "POST", "/v1/completions", big, key_header);
    check_error("too long", &r, 400, "prompt", "context holds 256");
    free(r.body);
    free(big);
    /* over --max-body: 413, whether the length is declared or chunked */
    big = malloc(300 * 1024);
    REQUIRE(big);
    memset(big, ' ', 300 * 1024);
    memcpy(big, "{\"prompt\":\"x\"", 13);
    big[300 * 1024 - 2] = '}';
    big[300 * 1024 - 1] = '\0';
    r = test_http(sv, "POST", "/v1/completions", big, key_header);
    check_error("too large", &r, 413, NULL, NULL);
    free(r.body);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "%s -H 'Transfer-Encoding: chunked'", key_header);
    r = test_http(sv, "POST", "/v1/completions", big, hdr);
    check_error("too large, chunked", &r, 413, NULL, NULL);
    free(r.body);
    /* a length far past the limit is refused before any of it is read */
    snprintf(hdr, sizeof hdr, "%s -H 'Content-Length: 1000000000'", key_header);
    r = test_http(sv, "POST", "/v1/completions", "{}", hdr);
    check_error("declared far too large", &r, 413, NULL, NULL);
    CHECKF(r.body && strstr(r.body, "1000000000"), "declared far too large: %s", r.body);
    free(r.body);
    free(big);
    /* still alive */
    r = test_http(sv, "GET", "/health", NULL, NULL);
    CHECK(r.status == 200);
    free(r.body);
}

/* The server's greedy chat output under `extra` (a response_format), streamed
 * and not, is the library's under sp's constraint; returns the finish. */
static const char *greedy_like_library(test_server *sv, const char *what, const char *user,
                                       const char *extra, hearth_sampling sp) {
    int32_t ids[2048];
    const int n = chat_ids(user, ids, 2048);
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    sp.temperature = 0;
    REQUIRE(hearth_session_new(model, NULL, &s) == HEARTH_OK);
    REQUIRE(hearth_sampler_new(model, &sp, &smp) == HEARTH_OK);
    text_sink *ref = calloc(1, sizeof *ref);
    REQUIRE(ref);
    hearth_gen_params gp = {.max_tokens = 160};
    hearth_gen_result ref_r;
    REQUIRE(hearth_generate(s, smp, ids, n, &gp, sink_token, ref, &ref_r) == HEARTH_OK);
    hearth_sampler_free(smp);
    hearth_session_free(s);
    const char *ref_finish = ref_r.finish == HEARTH_FINISH_STOP ? "stop" : "length";
    for (int stream = 0; stream < 2; stream++) {
        char *body = chat_body(user, 160, stream, extra);
        test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
        free(body);
        CHECKF(r.status == 200, "%s stream=%d: %d %.300s", what, stream, r.status, r.body);
        char content[16384] = "", finish[32] = "";
        if (stream) {
            const sse_result e = parse_sse(r.body, true);
            CHECK(e.framing_ok && e.done);
            snprintf(content, sizeof content, "%s", e.content);
            snprintf(finish, sizeof finish, "%s", e.finish);
        } else {
            cJSON *j = parse_reply(&r);
            const char *c = jstr(j, "choices.0.message.content"),
                       *f = jstr(j, "choices.0.finish_reason");
            snprintf(content, sizeof content, "%s", c ? c : "");
            snprintf(finish, sizeof finish, "%s", f ? f : "");
            cJSON_Delete(j);
        }
        CHECKF(!strcmp(content, ref->buf), "%s stream=%d: '%s' vs the library's '%s'", what, stream,
               content, ref->buf);
        CHECKF(!strcmp(finish, ref_finish), "%s stream=%d: finish %s, expected %s", what, stream,
               finish, ref_finish);
        free(r.body);
    }
    free(ref);
    return ref_finish;
}

/* response_format json_schema: greedy output is the library's under the
 * same schema, and every sampled output that finished validates (name a
 * string of at most 12 characters, age an integer, nothing else). */
static void test_json_schema_mode(test_server *sv) {
    static const char schema[] =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},"
        "\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"]}";
    char extra[512];
    snprintf(extra, sizeof extra,
             "{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"cat\","
             "\"strict\":true,\"schema\":%s}}}",
             schema);
    hearth_sampling sp = hearth_sampling_default_params();
    sp.constraint = HEARTH_CONSTRAINT_JSON_SCHEMA;
    sp.json_schema = schema;
    const char *greedy = greedy_like_library(sv, "json schema", "Describe a cat.", extra, sp);
    int n_stop = 0;
    for (int i = 0; i < 6; i++) {
        char body_extra[640];
        snprintf(body_extra, sizeof body_extra, "%.*s,\"temperature\":1.0,\"seed\":%d}",
                 (int)strlen(extra) - 1, extra, i + 1);
        char *body = chat_body("Describe a cat.", 160, false, body_extra);
        test_reply r = test_http(sv, "POST", "/v1/chat/completions", body, key_header);
        free(body);
        cJSON *j = parse_reply(&r);
        const char *c = jstr(j, "choices.0.message.content");
        const char *f = jstr(j, "choices.0.finish_reason");
        CHECKF(r.status == 200 && c && f, "json schema sample %d: %d", i, r.status);
        if (c && f && !strcmp(f, "stop")) {
            n_stop++;
            CHECKF(jv_check(schema, c, strlen(c)), "json schema sample %d: %s", i, r.body);
        }
        cJSON_Delete(j);
        free(r.body);
    }
    printf("json schema: greedy finished with %s; %d of 6 sampled outputs completed\n", greedy,
           n_stop);
    some_finished("json schema", n_stop);
}

/* JSON mode (response_format json_object) on chat, streamed or not, and on
 * completions: the server's greedy output is the library's under the same
 * constraint, and an output that finished ("stop") is one JSON object;
 * sampled outputs too. */
static void test_json_mode(test_server *sv) {
    const char *user = "Describe a cat as a JSON object.";
    const char *json_mode = "{\"response_format\":{\"type\":\"json_object\"}}";
    hearth_sampling sp = hearth_sampling_default_params();
    sp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
    const char *ref_finish = greedy_like_library(sv, "json mode", user, json_mode, sp);
    /* Sampled, on both endpoints: what finished is a JSON object. */
    int n_stop = 0;
    for (int i = 0; i < 8; i++) {
        char extra[160];
        snprintf(extra, sizeof extra,
                 "{\"response_format\":{\"type\":\"json_object\"},\"temperature\":%s,"
                 "\"seed\":%d}",
                 i % 2 ? "1.5" : "0.8", i + 1);
        char *body;
        if (i < 6) {
            body = chat_body(user, 160, false, extra);
        } else {
            cJSON *b = cJSON_Parse(extra);
            REQUIRE(b);
            cJSON_AddStringToObject(b, "prompt", "A JSON object:");
            cJSON_AddNumberToObject(b, "max_tokens", 160);
            body = cJSON_PrintUnformatted(b);
            cJSON_Delete(b);
        }
        test_reply r = test_http(sv, "POST", i < 6 ? "/v1/chat/completions" : "/v1/completions",
                                 body, key_header);
        free(body);
        CHECKF(r.status == 200, "json mode sample %d: %d %.300s", i, r.status, r.body);
        cJSON *j = parse_reply(&r);
        const char *c = jstr(j, i < 6 ? "choices.0.message.content" : "choices.0.text");
        const char *f = jstr(j, "choices.0.finish_reason");
        CHECK(c && f && (!strcmp(f, "stop") || !strcmp(f, "length")));
        if (c && f && !strcmp(f, "stop")) {
            n_stop++;
            cJSON *v = cJSON_Parse(c);
            CHECKF(cJSON_IsObject(v), "json mode sample %d: not a JSON object: %s", i, c);
            cJSON_Delete(v);
        }
        cJSON_Delete(j);
        free(r.body);
    }
    printf("json mode: greedy finished with %s; %d of 8 sampled outputs completed an object\n",
           ref_finish, n_stop);
    some_finished("json mode", n_stop);
}

/* A counter or gauge from /metrics (-1 if absent). */
/* Several clients at once get what they get one by one (greedy), and their
 * tokens were decoded together (several slots per forward pass). */
static void test_concurrent(test_server *sv) {
    enum { N = 8 };
    char *bodies[N], *sequential[N];
    for (int i = 0; i < N; i++) {
        char user[128];
        snprintf(user, sizeof user, "Question number %d: what is %d plus %d?", i, i * 7, i + 3);
        bodies[i] = chat_body(user, 20 + i, i % 2 == 1, NULL);
        test_reply r = test_http(sv, "POST", "/v1/chat/completions", bodies[i], key_header);
        if (i % 2) {
            sse_result s = parse_sse(r.body, true);
            sequential[i] = strdup(s.content);
        } else {
            cJSON *j = parse_reply(&r);
            sequential[i] = strdup(
                jstr(j, "choices.0.message.content") ? jstr(j, "choices.0.message.content") : "?");
            cJSON_Delete(j);
        }
        free(r.body);
    }
    const long steps0 = test_metric(sv, "hearth_decode_steps_total"),
               tokens0 = test_metric(sv, "hearth_decode_step_tokens_total");
    /* all at once: one shell starts N curls in the background and waits */
    char *cmd = malloc(N * 4200 + 64);
    REQUIRE(cmd);
    size_t o = 0;
    const int base = sv->seq;
    sv->seq += N;
    for (int i = 0; i < N; i++) {
        char one[4096];
        test_curl_cmd(sv, one, sizeof one, "POST", "/v1/chat/completions", bodies[i],
                      strlen(bodies[i]), key_header, base + i);
        o += (size_t)snprintf(cmd + o, N * 4200 + 64 - o, "%s & ", one);
    }
    snprintf(cmd + o, N * 4200 + 64 - o, "wait");
    CHECK(system(cmd) == 0);
    free(cmd);
    const long steps = test_metric(sv, "hearth_decode_steps_total") - steps0,
               tokens = test_metric(sv, "hearth_decode_step_tokens_total") - tokens0;
    CHECKF(steps > 0 && tokens > steps && test_metric(sv, "hearth_decode_step_tokens_max") >= 2,
           "batched decoding: %ld tokens in %ld steps", tokens, steps);
    printf("concurrent: %ld tokens in %ld decode steps (%.2f per step)\n", tokens, steps,
           steps > 0 ? (double)tokens / (double)steps : 0.0);
    for (int i = 0; i < N; i++) {
        test_reply r = test_collect(sv, base + i);
        CHECKF(r.status == 200, "concurrent %d: %d %s", i, r.status, r.body);
        const char *got = NULL;
        cJSON *j = NULL;
        sse_result s;
        if (i % 2) {
            s = parse_sse(r.body, true);
            CHECK(s.framing_ok && s.done);
            got = s.content;
        } else {
            j = parse_reply(&r);
            got = jstr(j, "choices.0.message.content");
        }
        CHECKF(got && !strcmp(got, sequential[i]), "client %d: '%s' at once, '%s' alone", i, got,
               sequential[i]);
        cJSON_Delete(j);
        free(r.body);
        free(bodies[i]);
        free(sequential[i]);
    }
}

/* One slot, a queue of one: a burst gets 503s with the error shape; a client
 * that disconnects mid-stream frees the slot at once. */
static void test_busy_and_disconnect(const char *model_path) {
    test_server sv;
    if (!test_server_start(&sv, binary, model_path, scratch,
                           "--parallel 1 --queue 1 -t 1 --ctx 256")) {
        CHECKF(false, "second server did not start");
        return;
    }
    enum { N = 6 };
    char *body = chat_body("Count to one hundred, please.", 200, false, NULL);
    char *cmd = malloc(N * 4200 + 64);
    REQUIRE(cmd);
    size_t o = 0;
    const int base = sv.seq;
    sv.seq += N;
    for (int i = 0; i < N; i++) {
        char one[4096];
        test_curl_cmd(&sv, one, sizeof one, "POST", "/v1/chat/completions", body, strlen(body),
                      NULL, base + i);
        o += (size_t)snprintf(cmd + o, N * 4200 + 64 - o, "%s & ", one);
    }
    snprintf(cmd + o, N * 4200 + 64 - o, "wait");
    CHECK(system(cmd) == 0);
    free(cmd);
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        test_reply r = test_collect(&sv, base + i);
        if (r.status == 200)
            ok++;
        else {
            check_error("busy", &r, 503, NULL, "busy");
            busy++;
        }
        free(r.body);
    }
    CHECKF(ok >= 1 && busy >= 1 && ok + busy == N, "burst: %d ok, %d busy", ok, busy);

    /* a streaming client that goes away after the first chunk */
    test_reply m0 = test_http(&sv, "GET", "/metrics", NULL, NULL);
    char req[600];
    snprintf(req, sizeof req, "%s/stream_body", scratch);
    char *sbody = chat_body("Tell me everything about the sea.", 250, true, NULL);
    test_write_file(req, sbody, strlen(sbody));
    free(sbody);
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        char url[128], data[700];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", sv.port);
        snprintf(data, sizeof data, "@%s", req);
        execlp("curl", "curl", "-s", "-N", "--data-binary", data, url, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[256];
    const ssize_t got = read(pfd[0], buf, sizeof buf);
    CHECK(got > 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pfd[0]);
    test_sleep_ms(400);
    /* the slot is free: with a queue of one, two more requests are accepted */
    test_reply a =
        test_http(&sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}", NULL);
    CHECKF(a.status == 200, "after a disconnect: %d %s", a.status, a.body);
    free(a.body);
    test_reply m1 = test_http(&sv, "GET", "/metrics", NULL, NULL);
    const char *g0 = strstr(m0.body, "hearth_generated_tokens_total ");
    const char *g1 = strstr(m1.body, "hearth_generated_tokens_total ");
    if (g0 && g1) {
        const long d = atol(g1 + 30) - atol(g0 + 30);
        CHECKF(d < 250, "the disconnected stream generated %ld tokens (it should stop early)", d);
    } else {
        CHECK(false);
    }
    free(m0.body);
    free(m1.body);
    free(body);
    CHECK(test_server_stop(&sv) == 0);
    char *log = test_read_file(sv.log, NULL);
    CHECKF(log && strstr(log, "POST /v1/chat/completions 503"), "log lines: %.500s",
           log ? log : "(none)");
    CHECK(log && !strstr(log, "Count to one hundred")); /* no prompt text without --log-prompts */
    free(log);
}

/* The official OpenAI client for Node, when it is installed. */
static void test_openai_node(test_server *sv) {
    char args[64];
    snprintf(args, sizeof args, "'http://127.0.0.1:%d/v1' sekrit", sv->port);
    const int rc = test_node_script(HEARTH_SOURCE_DIR, "openai", "openai_client.mjs", args);
    CHECKF(rc <= 0, "openai_client.mjs failed (%d)", rc);
}

/* The template comes from the GGUF: a Gemma 3 one is recognized (and its
 * rendering is what gets tokenized), an unknown one makes chat a clear 500
 * while completions still work. */
static void test_model_templates(const char *model_path) {
    char with[700];
    snprintf(with, sizeof with, "%s/gemma3.gguf", scratch);
    REQUIRE(fixture_with_template(model_path, with, TMPL_GEMMA3) == HEARTH_OK);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, with, scratch, "-t 1"));
    test_reply r = test_http(&sv, "POST", "/v1/chat/completions",
                             "{\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
                             "{\"role\":\"user\",\"content\":\" Hello \"}],\"max_tokens\":3}",
                             NULL);
    CHECKF(r.status == 200, "gemma3 chat: %d %s", r.status, r.body);
    cJSON *j = parse_reply(&r);
    /* the Gemma 3 turns; the server drops the BOS text and the tokenizer adds BOS */
    int32_t ids[512];
    const int n_ids = tokenize("<start_of_turn>user\nBe kind.\n\nHello<end_of_turn>\n"
                               "<start_of_turn>model\n",
                               true, ids, 512);
    CHECKF((int)jnum(j, "usage.prompt_tokens") == n_ids, "gemma3 prompt tokens %g, expected %d",
           jnum(j, "usage.prompt_tokens"), n_ids);
    cJSON_Delete(j);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
    char *log = test_read_file(sv.log, NULL);
    CHECKF(log && strstr(log, "chat template: gemma3"), "log: %.300s", log ? log : "(none)");
    free(log);

    snprintf(with, sizeof with, "%s/unknown.gguf", scratch);
    REQUIRE(fixture_with_template(model_path, with, TMPL_UNKNOWN) == HEARTH_OK);
    REQUIRE(test_server_start(&sv, binary, with, scratch, "-t 1"));
    r = test_http(&sv, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":3}",
                  NULL);
    check_error("unknown template", &r, 500, NULL, "--chat-template");
    free(r.body);
    r = test_http(&sv, "POST", "/v1/completions", "{\"prompt\":\"Hello\",\"max_tokens\":3}", NULL);
    CHECK(r.status == 200);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
    log = test_read_file(sv.log, NULL);
    CHECKF(log && strstr(log, "warning:") && strstr(log, "not supported"), "log: %.300s",
           log ? log : "(none)");
    free(log);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    synthetic = !strstr(model_path, "conformance");
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(model_path, &mp, &model) == HEARTH_OK);

    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 4 -t 1 --chat-template chatml --api-key sekrit "
                              "--max-body 65536"));
    test_basics(&sv);
    test_chat(&sv);
    test_completions(&sv);
    test_embeddings(&sv);
    test_errors(&sv);
    test_json_mode(&sv);
    test_json_schema_mode(&sv);
    test_concurrent(&sv);
    test_openai_node(&sv);
    CHECK(test_server_stop(&sv) == 0);
    char *log = test_read_file(sv.log, NULL);
    CHECKF(log && strstr(log, "POST /v1/chat/completions 200 prompt="), "log: %.300s",
           log ? log : "(none)");
    free(log);

    test_busy_and_disconnect(model_path);
    test_model_templates(model_path);
    hearth_model_free(model);
    fixture_server_cleanup("test_server", scratch, test_failures > 0);
    return test_done("test_server");
}
