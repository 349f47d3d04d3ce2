/*
 * test_server_models.c - several models behind one `hearth serve` (curl
 * against the real program, random-weight models written here): a
 * request's "model" picks the model that answers (its text is that model's
 * library text, its embeddings have that model's width), by file name with
 * or without ".gguf" or ollama's ":latest"; at most --models-max are loaded
 * and the least recently used idle one makes room; a request for a model
 * while every loaded one is busy waits for one to finish; POST
 * /models/load and /models/unload, GET /v1/models' status, /api/tags and
 * /api/ps follow; --keep-alive and ollama's keep_alive unload idle models;
 * --no-models-autoload refuses unloaded ones; a server with --models-dir
 * alone has no default; bad files are skipped or refused at start-up;
 * --kv-type q8_0 gives the slots a Q8_0 cache; --models-file gives models
 * names, aliases and settings of their own, generation defaults
 * ("parameters": what a request leaves out, on every API, over ollama's
 * and llama-server's own defaults; a request's value wins; /props and
 * /api/show report them), and a draft and LoRA adapters to any model (the
 * text stays the plain loop's with the draft, and is the library's with the
 * adapter).
 */
#include "test.h"

#include "model/synth.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"
#include "test_sh.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>

static const char *binary = HEARTH_BINARY;

static double test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
static char scratch[] = "/tmp/hearth_srv_models_XXXXXX";
static char path_a[4200], path_b[4200], dir[4200];

/* A random model: arch, seed and width differ per model. */
static void write_model(const char *path, const char *arch, int n_embd, uint64_t seed) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.n_embd = n_embd;
    p.seed = seed;
    p.n_ctx = 256;
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
}

/* The completion of "Hello there" by the model at path (with the adapter
 * `lora` at `scale` when not NULL) sampled with sp, as the server makes it
 * (BOS and special tokens as srv_tokenize). */
static char *hello_text(const char *path, const char *lora, float scale, const hearth_sampling *sp,
                        int max_tokens) {
    hearth_model *m = NULL;
    const hearth_lora ad = {lora, scale};
    hearth_model_params mp = hearth_model_default_params();
    mp.loras = lora ? &ad : NULL;
    mp.n_loras = lora ? 1 : 0;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    int32_t ids[64];
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, "Hello there", 11, true, true, ids, 64, &n) == HEARTH_OK);
    char *text = library_text(m, ids, (int)n, sp, max_tokens, NULL);
    hearth_model_free(m);
    return text;
}

/* The greedy completion of "Hello there" by the model at path. */
static char *expected_text(const char *path, int max_tokens) {
    const hearth_sampling sp = openai_sampling(0, 0);
    return hello_text(path, NULL, 0, &sp, max_tokens);
}

/* POST /v1/completions naming `model` (NULL: none); the text, or NULL with
 * *status set when it is not 200. */
static char *complete(test_server *sv, const char *model, int *status) {
    char body[512];
    if (model)
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"prompt\":\"Hello there\",\"max_tokens\":6,\"temperature\":0}",
                 model);
    else
        snprintf(body, sizeof body,
                 "{\"prompt\":\"Hello there\",\"max_tokens\":6,\"temperature\":0}");
    cJSON *j = post(sv, "/v1/completions", body, status);
    const char *t = *status == 200 && j ? jstr(j, "choices.0.text") : NULL;
    char *text = t ? strdup(t) : NULL;
    cJSON_Delete(j);
    return text;
}

/* A model's "status.value" in GET /v1/models ("" when it is not listed). */
static void model_status(test_server *sv, const char *id, char *out, size_t cap) {
    test_reply r = test_http(sv, "GET", "/v1/models", NULL, NULL);
    cJSON *j = parse_reply(&r);
    snprintf(out, cap, "%s", "");
    const cJSON *m;
    cJSON_ArrayForEach(m, jget(j, "data")) {
        if (jstr(m, "id") && !strcmp(jstr(m, "id"), id))
            snprintf(out, cap, "%s", jstr(m, "status.value") ? jstr(m, "status.value") : "?");
    }
    cJSON_Delete(j);
    free(r.body);
}

static bool status_is(test_server *sv, const char *id, const char *want) {
    char got[32];
    model_status(sv, id, got, sizeof got);
    return !strcmp(got, want);
}

/* Waits up to ms for a model's status. */
static bool await_status(test_server *sv, const char *id, const char *want, int ms) {
    for (int t = 0; t < ms; t += 100) {
        if (status_is(sv, id, want)) return true;
        test_sleep_ms(100);
    }
    return status_is(sv, id, want);
}

/* Starts `hearth serve` with the arguments printf makes of fmt. */
__attribute__((format(printf, 2, 3))) static void start(test_server *sv, const char *fmt, ...) {
    char args[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    REQUIRE(test_server_start_args(sv, binary, scratch, args));
}

static bool log_has(const test_server *sv, const char *needle) {
    char *log = test_read_file(sv->log, NULL);
    const bool has = log && strstr(log, needle);
    free(log);
    return has;
}

static void check_text(test_server *sv, const char *name, const char *want) {
    int status;
    char *got = complete(sv, name, &status);
    CHECKF(status == 200 && got && !strcmp(got, want), "model %s: status %d, '%s', want '%s'",
           name ? name : "(none)", status, got ? got : "(none)", want);
    free(got);
}

/* -m a -m b --models-dir dir --models-max 2: naming, eviction, load and
 * unload, the listings, ollama's unload. */
static void naming_and_residency(const char *want_a, const char *want_b, const char *want_c) {
    test_server sv;
    start(&sv, "-m '%s' -m '%s' --models-dir '%s' --models-max 2 -t 1", path_a, path_b, dir);
    CHECK(log_has(&sv, "skipping") && log_has(&sv, "bad.gguf"));
    CHECK(status_is(&sv, "a.gguf", "loaded"));
    CHECK(status_is(&sv, "b.gguf", "unloaded") && status_is(&sv, "c.gguf", "unloaded"));
    CHECK(status_is(&sv, "bad.gguf", "") && status_is(&sv, ".hidden.gguf", ""));
    CHECK(test_metric(&sv, "hearth_models_total") == 3);

    check_text(&sv, NULL, want_a); /* no name: the default */
    check_text(&sv, "b", want_b);  /* loads b: two loaded */
    check_text(&sv, "b.gguf", want_b);
    check_text(&sv, "b:latest", want_b);
    CHECK(status_is(&sv, "a.gguf", "loaded") && status_is(&sv, "b.gguf", "loaded"));
    check_text(&sv, "c.gguf", want_c); /* a is the least recently used: it goes */
    CHECK(status_is(&sv, "a.gguf", "unloaded") && status_is(&sv, "c.gguf", "loaded"));
    CHECK(log_has(&sv, "model a.gguf unloaded (least recently used"));
    CHECK(test_metric(&sv, "hearth_models_loaded") == 2);
    test_reply sr = test_http(&sv, "GET", "/slots", NULL, NULL); /* one slot per loaded model */
    cJSON *slots = parse_reply(&sr);
    CHECKF(cJSON_GetArraySize(slots) == 2 && !cJSON_IsTrue(jget(slots, "0.is_processing")),
           "slots: %s", sr.body);
    cJSON_Delete(slots);
    free(sr.body);
    check_text(&sv, "a", want_a); /* back, in place of b */
    CHECK(status_is(&sv, "b.gguf", "unloaded"));

    int status;
    char *none = complete(&sv, "no-such-model", &status);
    CHECKF(status == 404 && !none, "unknown model: %d", status);
    free(none);

    /* embeddings come from the model named: their width is its n_embd */
    cJSON *e = post(&sv, "/v1/embeddings", "{\"model\":\"b\",\"input\":\"hi\"}", &status);
    CHECKF(status == 200 && cJSON_GetArraySize(jget(e, "data.0.embedding")) == 96,
           "b's embedding: status %d, %d values", status,
           cJSON_GetArraySize(jget(e, "data.0.embedding")));
    CHECK(jstr(e, "model") && !strcmp(jstr(e, "model"), "b.gguf"));
    cJSON_Delete(e);

    /* llama-server's router endpoints */
    cJSON *j = post(&sv, "/models/unload", "{\"model\":\"b\"}", &status);
    CHECKF(status == 200 && cJSON_IsTrue(jget(j, "success")), "unload: %d", status);
    cJSON_Delete(j);
    CHECK(status_is(&sv, "b.gguf", "unloaded"));
    j = post(&sv, "/models/unload", "{\"model\":\"b\"}", &status);
    CHECKF(status == 400, "unloading an unloaded model: %d", status);
    cJSON_Delete(j);
    j = post(&sv, "/models/load", "{\"model\":\"c\"}", &status);
    CHECKF(status == 200 && cJSON_IsTrue(jget(j, "success")), "load: %d", status);
    cJSON_Delete(j);
    j = post(&sv, "/models/load", "{\"model\":\"zz\"}", &status);
    CHECKF(status == 404, "loading an unknown model: %d", status);
    cJSON_Delete(j);
    test_reply r = test_http(&sv, "GET", "/models", NULL, NULL);
    j = parse_reply(&r);
    CHECK(r.status == 200 && cJSON_GetArraySize(jget(j, "data")) == 3);
    cJSON_Delete(j);
    free(r.body);

    /* ollama's listings: every model in tags, the loaded ones in ps */
    r = test_http(&sv, "GET", "/api/tags", NULL, NULL);
    j = parse_reply(&r);
    CHECK(cJSON_GetArraySize(jget(j, "models")) == 3);
    cJSON_Delete(j);
    free(r.body);
    r = test_http(&sv, "GET", "/api/ps", NULL, NULL);
    j = parse_reply(&r);
    CHECKF(cJSON_GetArraySize(jget(j, "models")) == 2, "ps: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    /* /props describes the model named */
    r = test_http(&sv, "GET", "/props?model=c", NULL, NULL);
    j = parse_reply(&r);
    CHECK(r.status == 200 && jstr(j, "model_alias") && !strcmp(jstr(j, "model_alias"), "c.gguf"));
    cJSON_Delete(j);
    free(r.body);

    /* ollama's unload: an empty prompt with keep_alive 0 */
    j = post(&sv, "/api/generate", "{\"model\":\"c\",\"prompt\":\"\",\"keep_alive\":0}", &status);
    CHECKF(status == 200 && jstr(j, "done_reason") && !strcmp(jstr(j, "done_reason"), "unload"),
           "ollama unload: %d", status);
    cJSON_Delete(j);
    CHECK(await_status(&sv, "c.gguf", "unloaded", 5000));
    j = post(&sv, "/api/generate", "{\"model\":\"c\",\"keep_alive\":\"bad\"}", &status);
    CHECKF(status == 400, "a bad keep_alive: %d", status);
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
}

/* --models-max 1: a request for b while a long generation runs on another
 * model waits for it, then b loads in that model's place; both answer. The
 * long one is a wider model with a larger context, EOS banned, 1500 tokens:
 * well over 200 ms on any machine that runs these tests. */
static void waits_for_room(const char *want_b) {
    char slow[4300];
    const int eos = fixture_slow_model(scratch, slow, sizeof slow);
    REQUIRE(eos >= 0);
    test_server sv;
    start(&sv, "-m '%s' -m '%s' --models-max 1 --ctx 2048 -t 1", slow, path_b);
    char long_body[512], cmd[9000];
    snprintf(long_body, sizeof long_body,
             "{\"model\":\"slow\",\"prompt\":\"Hello\",\"max_tokens\":1500,\"temperature\":0,"
             "\"logit_bias\":{\"%d\":-100}}",
             eos);
    const int n = sv.seq++;
    test_curl_cmd(&sv, cmd, sizeof cmd, "POST", "/v1/completions", long_body, strlen(long_body),
                  NULL, n);
    char bg[9100];
    snprintf(bg, sizeof bg, "%s &", cmd);
    REQUIRE(system(bg) == 0);
    for (int t = 0; t < 500 && test_metric(&sv, "hearth_slots_busy") < 1; t++) test_sleep_ms(10);
    test_reply sr = test_http(&sv, "GET", "/slots", NULL, NULL);
    cJSON *slots = parse_reply(&sr);
    CHECKF(sr.status == 200 && cJSON_GetArraySize(slots) == 1 &&
               !strcmp(jstr(slots, "0.model"), "slow.gguf") &&
               cJSON_IsTrue(jget(slots, "0.is_processing")) && jnum(slots, "0.n_ctx") == 2048,
           "slots while busy: %s", sr.body);
    cJSON_Delete(slots);
    free(sr.body);
    const double t0 = test_now_ms();
    check_text(&sv, "b", want_b); /* waits for the long request, then replaces its model */
    const double waited = test_now_ms() - t0;
    for (int t = 0; t < 600; t++) {
        test_reply r = test_collect(&sv, n);
        const bool done = r.status > 0;
        free(r.body);
        if (done) break;
        test_sleep_ms(100);
    }
    test_reply r = test_collect(&sv, n);
    cJSON *j = parse_reply(&r);
    CHECKF(r.status == 200 && jnum(j, "usage.completion_tokens") == 1500,
           "the long request: %d %.200s", r.status, r.body);
    cJSON_Delete(j);
    free(r.body);
    printf("b waited %.0f ms for the long request\n", waited);
    CHECKF(waited > 200, "b was answered after %.0f ms: it did not wait", waited);
    CHECK(status_is(&sv, "slow.gguf", "unloaded") && status_is(&sv, "b.gguf", "loaded"));
    CHECK(test_server_stop(&sv) == 0);
}

/* --keep-alive 1s: an idle model goes, and comes back on demand. */
static void keep_alive(const char *want_a) {
    test_server sv;
    start(&sv, "-m '%s' --keep-alive 1s -t 1", path_a);
    check_text(&sv, NULL, want_a);
    CHECK(await_status(&sv, "a.gguf", "unloaded", 5000));
    CHECK(log_has(&sv, "idle for its keep-alive"));
    check_text(&sv, NULL, want_a);
    CHECK(test_server_stop(&sv) == 0);
}

/* --no-models-autoload: only /models/load loads. */
static void no_autoload(const char *want_b) {
    test_server sv;
    start(&sv, "-m '%s' -m '%s' --no-models-autoload -t 1", path_a, path_b);
    int status;
    char *t = complete(&sv, "b", &status);
    CHECKF(status == 503 && !t, "b before loading: %d", status);
    free(t);
    cJSON_Delete(post(&sv, "/models/load", "{\"model\":\"b\"}", &status));
    CHECK(status == 200);
    check_text(&sv, "b", want_b);
    CHECK(test_server_stop(&sv) == 0);
}

/* --models-dir alone (two models: c and a copy of b): no default model; a
 * request must name one. (With a single model, any request is its.) */
static void no_default(const char *want_c) {
    char dir2[4300], c2[4400], b2[4400];
    snprintf(dir2, sizeof dir2, "%s/dir2", scratch);
    snprintf(c2, sizeof c2, "%s/c.gguf", dir2);
    snprintf(b2, sizeof b2, "%s/b.gguf", dir2);
    REQUIRE(mkdir(dir2, 0700) == 0);
    write_model(c2, "llama", 64, 3);
    write_model(b2, "qwen2", 96, 2);
    test_server sv;
    start(&sv, "--models-dir '%s' -t 1", dir2);
    CHECK(status_is(&sv, "c.gguf", "unloaded") && status_is(&sv, "b.gguf", "unloaded"));
    int status;
    char *t = complete(&sv, NULL, &status);
    CHECKF(status == 400 && !t, "no model named: %d", status);
    free(t);
    check_text(&sv, "c", want_c);
    CHECK(test_server_stop(&sv) == 0);
}

/* --kv-type q8_0: the slots' cache is Q8_0 (the log says so) and answers;
 * llama.cpp's -ctk/-ctv must agree. */
static void kv_type(void) {
    test_server sv;
    start(&sv, "-m '%s' --kv-type q8_0 -t 1", path_a);
    CHECK(log_has(&sv, "(q8_0 KV cache, "));
    int status;
    char *t = complete(&sv, NULL, &status);
    CHECKF(status == 200 && t, "q8_0 cache: %d", status);
    free(t);
    CHECK(test_server_stop(&sv) == 0);
    const int rc =
        test_sh("'%s' serve -m '%s' -ctk f16 -ctv q8_0 --port 0 2>/dev/null", binary, path_a);
    CHECKF(rc == 2, "-ctk f16 -ctv q8_0: exit %d", rc);
}

/* --models-file: names, aliases, the default, per-model context, slots,
 * system message, KV type, keep-alive and loading at start-up; a bad entry
 * stops the start-up naming it. */
static void models_file(void) {
    char file[4300];
    snprintf(file, sizeof file, "%s/models.json", scratch);
    static const char json[] =
        "{\"models\":[{\"name\":\"coder\",\"path\":\"a.gguf\",\"aliases\":[\"coder:1b\"],"
        "\"default\":true,\"ctx\":128,\"parallel\":2,\"system\":\"You answer in haiku.\","
        "\"load_on_startup\":true},{\"path\":\"b.gguf\",\"keep_alive\":\"1s\","
        "\"kv_type\":\"q8_0\",\"swa_full\":true}]}";
    REQUIRE(test_write_file(file, json, strlen(json)));
    test_server sv;
    start(&sv, "--models-file '%s' -t 1", file);
    CHECK(status_is(&sv, "coder", "loaded") && status_is(&sv, "b.gguf", "unloaded"));
    test_reply r = test_http(&sv, "GET", "/props?model=coder:1b", NULL, NULL);
    cJSON *j = parse_reply(&r);
    CHECKF(jnum(j, "default_generation_settings.n_ctx") == 128 && jnum(j, "total_slots") == 2,
           "props: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    int status;
    j = post(&sv, "/apply-template", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
             &status);
    CHECKF(status == 200 && strstr(jstr(j, "prompt"), "You answer in haiku."), "template: %s",
           jstr(j, "prompt"));
    cJSON_Delete(j);
    j = post(&sv, "/apply-template",
             "{\"messages\":[{\"role\":\"system\",\"content\":\"Be terse.\"},{\"role\":"
             "\"user\",\"content\":\"hi\"}]}",
             &status);
    CHECKF(status == 200 && !strstr(jstr(j, "prompt"), "haiku"), "own system: %s",
           jstr(j, "prompt"));
    cJSON_Delete(j);
    char *t = complete(&sv, "b", &status);
    CHECKF(status == 200 && t, "b: %d", status);
    free(t);
    CHECK(log_has(&sv, "model b.gguf (qwen2) loaded") && log_has(&sv, "(q8_0 KV cache, ") &&
          log_has(&sv, "MiB, --swa-full)"));
    CHECK(await_status(&sv, "b.gguf", "unloaded", 5000));
    CHECK(status_is(&sv, "coder", "loaded")); /* no keep-alive of its own: stays */
    CHECK(test_server_stop(&sv) == 0);

    static const char *const bad[][2] = {
        {"{\"models\":[{\"path\":\"a.gguf\",\"bogus\":1}]}", "models[0].bogus"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"default\":true},{\"path\":\"b.gguf\","
         "\"default\":true}]}",
         "models[1].default"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"aliases\":[\"b\"]},{\"path\":\"b.gguf\"}]}",
         "two models are named b.gguf"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"ctx\":-1}]}", "models[0].ctx"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"swa_full\":1}]}",
         "models[0].swa_full must be a boolean"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parallel\":1e300}]}", "models[0].parallel"},
        {"{\"models\":[{\"name\":\"x\"}]}", "models[0].path"},
        {"[1,2]", "{\"models\": [...]}"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parameters\":[]}]}",
         "models[0].parameters must be an object"},
        {"{\"models\":[{\"path\":\"a.gguf\"},{\"path\":\"b.gguf\",\"parameters\":{"
         "\"temperature\":5}}]}",
         "models[1].parameters.temperature"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parameters\":{\"top_k\":1.5}}]}",
         "models[0].parameters.top_k"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parameters\":{\"tempurature\":1}}]}",
         "models[0].parameters.tempurature"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parameters\":{\"stop\":[\"a\",2]}}]}",
         "models[0].parameters.stop[1]"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parameters\":{\"max_tokens\":0}}]}",
         "models[0].parameters.max_tokens"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"parameters\":{\"max_tokens\":5,"
         "\"num_predict\":5}}]}",
         "models[0].parameters.num_predict"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"draft\":\"missing.gguf\"}]}", "models[0].draft"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"draft_max\":2}]}", "models[0].draft_max"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"lora\":[{\"path\":\"missing.gguf\"}]}]}",
         "models[0].lora[0].path"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"lora\":[{\"path\":\"b.gguf\",\"scale\":"
         "\"x\"}]}]}",
         "models[0].lora[0].scale"},
        {"{\"models\":[{\"path\":\"a.gguf\",\"default\":true,\"lora\":[{\"path\":"
         "\"b.gguf\"}]}]}",
         "not a LoRA adapter"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char log[4400];
        snprintf(log, sizeof log, "%s/bad_models.log", scratch);
        REQUIRE(test_write_file(file, bad[i][0], strlen(bad[i][0])));
        const int rc =
            test_sh("timeout 60 '%s' serve --models-file '%s' --port 0 2>'%s'", binary, file, log);
        char *text = test_read_file(log, NULL);
        CHECKF(rc == 1 && text && strstr(text, bad[i][1]), "%s: exit %d, %s", bad[i][0], rc,
               text ? text : "");
        free(text);
    }
}

/* A request's JSON reply at path, and the string at `field` in it (a copy;
 * NULL unless the status is 200). */
static char *reply_text(test_server *sv, const char *path, const char *body, const char *field,
                        cJSON **keep) {
    int status;
    cJSON *j = post(sv, path, body, &status);
    const char *t = status == 200 && j ? jstr(j, field) : NULL;
    char *text = t ? strdup(t) : NULL;
    CHECKF(text, "%s %s: status %d", path, body, status);
    if (keep)
        *keep = j;
    else
        cJSON_Delete(j);
    return text;
}

static void check_same(const char *what, const char *got, const char *want) {
    CHECKF(got && want && !strcmp(got, want), "%s: '%s', want '%s'", what, got ? got : "(none)",
           want ? want : "(none)");
}

/* One character of text (UTF-8) from its middle: a stop string it meets. */
static void middle_char(const char *text, char *out, size_t cap) {
    size_t k = strlen(text) / 2, end;
    while (k > 0 && (text[k] & 0xC0) == 0x80) k--;
    for (end = k + 1; text[end] && (text[end] & 0xC0) == 0x80; end++) {
    }
    snprintf(out, cap, "%.*s", (int)(end - k), text + k);
}

/* "parameters", "draft" and "lora" in --models-file: model "greedy" (a)
 * has temperature 0, no repeat penalty and 4 tokens; "stopper" (b) a stop
 * string met in the middle of its greedy text, top_k 5 and itself as its
 * draft; "styled" (c) an adapter. */
static void model_params(const char *want_a, const char *want_b, const char *path_c,
                         const char *want_c) {
    char file[4300], adapter[4300], stop[8];
    snprintf(file, sizeof file, "%s/params.json", scratch);
    snprintf(adapter, sizeof adapter, "%s/adapter.gguf", scratch);
    REQUIRE(test_sh("'%s' synth --lora-for '%s' -o '%s' > /dev/null 2>&1", binary, path_c,
                    adapter) == 0);
    REQUIRE(strlen(want_b) >= 2);
    middle_char(want_b, stop, sizeof stop);
    cJSON *doc = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(doc, "models"), *e, *p;
    cJSON_AddItemToArray(list, e = cJSON_CreateObject());
    cJSON_AddStringToObject(e, "name", "greedy");
    cJSON_AddStringToObject(e, "path", "a.gguf");
    cJSON_AddTrueToObject(e, "default");
    p = cJSON_AddObjectToObject(e, "parameters");
    cJSON_AddNumberToObject(p, "temperature", 0);
    cJSON_AddNumberToObject(p, "repeat_penalty", 1);
    cJSON_AddNumberToObject(p, "num_predict", 4); /* ollama's name for max_tokens */
    cJSON_AddItemToArray(list, e = cJSON_CreateObject());
    cJSON_AddStringToObject(e, "name", "stopper");
    cJSON_AddStringToObject(e, "path", "b.gguf");
    cJSON_AddStringToObject(e, "draft", "b.gguf"); /* itself: its proposals are accepted */
    p = cJSON_AddObjectToObject(e, "parameters");
    cJSON_AddNumberToObject(p, "temperature", 0);
    cJSON_AddNumberToObject(p, "top_k", 5);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "stop"), cJSON_CreateString(stop));
    cJSON_AddItemToArray(list, e = cJSON_CreateObject());
    cJSON_AddStringToObject(e, "name", "styled");
    cJSON_AddStringToObject(e, "path", "dir/c.gguf");
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "path", "adapter.gguf");
    cJSON_AddNumberToObject(l, "scale", 4);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "lora"), l);
    char *json = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    REQUIRE(json && test_write_file(file, json, strlen(json)));
    free(json);

    /* what the checks compare with; each must differ from the greedy text,
     * or the check could not fail */
    hearth_sampling sp = openai_sampling(1, 5);
    char *sampled_a = hello_text(path_a, NULL, 0, &sp, 6);
    sp = openai_sampling(0.8f, 5); /* ollama's defaults */
    sp.top_k = 40;
    sp.top_p = 0.9f;
    sp.repeat_penalty = 1.1f;
    char *ollama_a = hello_text(path_a, NULL, 0, &sp, 6);
    sp = openai_sampling(0.8f, 5); /* llama-server's */
    sp.top_k = 40;
    sp.top_p = 0.95f;
    sp.min_p = 0.05f;
    char *llama_a = hello_text(path_a, NULL, 0, &sp, 6);
    char *a4 = expected_text(path_a, 4), *a16 = expected_text(path_a, 16);
    sp = openai_sampling(0, 0);
    char *styled = hello_text(path_c, adapter, 4, &sp, 6);
    CHECKF(strcmp(sampled_a, want_a) && strcmp(ollama_a, want_a) && strcmp(llama_a, want_a),
           "sampling gave the greedy text '%s': pick another seed", want_a);
    CHECKF(strcmp(a4, a16), "a ends within 4 tokens: '%s'", a4);
    CHECKF(strcmp(styled, want_c), "the adapter changed nothing: '%s'", styled);
    char cut[4096];
    snprintf(cut, sizeof cut, "%.*s", (int)(strstr(want_b, stop) - want_b), want_b);

    test_server sv;
    start(&sv, "--models-file '%s' -t 1", file);
    /* the model's temperature 0 (no seed: the request's 1 would differ) */
    char *t = reply_text(&sv, "/v1/completions",
                         "{\"prompt\":\"Hello there\",\"max_tokens\":6,\"seed\":5}",
                         "choices.0.text", NULL);
    check_same("greedy by the model's temperature", t, want_a);
    free(t);
    /* the request's own temperature wins */
    t = reply_text(&sv, "/v1/completions",
                   "{\"prompt\":\"Hello there\",\"max_tokens\":6,\"seed\":5,\"temperature\":1}",
                   "choices.0.text", NULL);
    check_same("the request's temperature", t, sampled_a);
    free(t);
    /* num_predict 4 in place of a completion's 16 tokens; a request's 6 wins */
    cJSON *j = NULL;
    t = reply_text(&sv, "/v1/completions", "{\"prompt\":\"Hello there\"}", "choices.0.text", &j);
    check_same("the model's max_tokens", t, a4);
    CHECK(jnum(j, "usage.completion_tokens") <= 4);
    cJSON_Delete(j);
    free(t);
    /* ollama's /api/generate and llama-server's /completion: the model's
     * temperature and repeat penalty over their defaults (0.8, 1.1) */
    t = reply_text(&sv, "/api/generate",
                   "{\"model\":\"greedy\",\"prompt\":\"Hello there\",\"raw\":true,\"stream\":false,"
                   "\"options\":{\"num_predict\":6,\"seed\":5}}",
                   "response", NULL);
    check_same("ollama's generate", t, want_a);
    free(t);
    t = reply_text(&sv, "/api/generate",
                   "{\"model\":\"greedy\",\"prompt\":\"Hello there\",\"raw\":true,\"stream\":false,"
                   "\"options\":{\"num_predict\":6,\"seed\":5,\"temperature\":0.8,\"top_k\":40,"
                   "\"top_p\":0.9,\"repeat_penalty\":1.1}}",
                   "response", NULL);
    check_same("ollama's generate with its options", t, ollama_a);
    free(t);
    t = reply_text(&sv, "/completion", "{\"prompt\":\"Hello there\",\"n_predict\":6,\"seed\":5}",
                   "content", NULL);
    check_same("llama-server's completion", t, want_a);
    free(t);

    /* stopper: its stop string cuts the greedy text; a request's stop
     * replaces it; the draft proposes and the text stays the same */
    t = reply_text(&sv, "/v1/completions",
                   "{\"model\":\"stopper\",\"prompt\":\"Hello there\",\"max_tokens\":6}",
                   "choices.0.text", &j);
    check_same("the model's stop", t, cut);
    CHECK(jstr(j, "choices.0.finish_reason") &&
          !strcmp(jstr(j, "choices.0.finish_reason"), "stop"));
    cJSON_Delete(j);
    free(t);
    t = reply_text(&sv, "/completion",
                   "{\"model\":\"stopper\",\"prompt\":\"Hello there\",\"n_predict\":6}", "content",
                   &j);
    check_same("the model's stop on /completion", t, cut);
    CHECKF(jstr(j, "stopping_word") && !strcmp(jstr(j, "stopping_word"), stop),
           "stopping_word '%s', want '%s'", jstr(j, "stopping_word"), stop);
    cJSON_Delete(j);
    free(t);
    CHECK(!strstr(want_b, "@@"));
    CHECK(log_has(&sv, "speculative decoding: draft") && log_has(&sv, "b.gguf for stopper"));
    /* a random model is never sure of a token: the draft proposes with p_min 0 */
    const long drafted = test_metric(&sv, "hearth_spec_drafted_tokens_total");
    t = reply_text(&sv, "/v1/completions",
                   "{\"model\":\"stopper\",\"prompt\":\"Hello there\",\"max_tokens\":6,"
                   "\"stop\":[\"@@\"],\"speculative.p_min\":0}",
                   "choices.0.text", NULL);
    check_same("the request's stop (and the draft)", t, want_b);
    free(t);
    CHECKF(test_metric(&sv, "hearth_spec_drafted_tokens_total") > drafted,
           "stopper's draft proposed nothing");

    /* styled: the adapter's text, as the library makes it with the adapter */
    int status;
    t = complete(&sv, "styled", &status);
    check_same("the model's adapter", t, styled);
    free(t);

    /* what the models' parameters are, as llama-server and ollama say */
    test_reply r = test_http(&sv, "GET", "/props?model=greedy", NULL, NULL);
    j = parse_reply(&r);
    CHECKF(jnum(j, "default_generation_settings.params.temperature") == 0 &&
               jnum(j, "default_generation_settings.params.repeat_penalty") == 1 &&
               jnum(j, "default_generation_settings.params.n_predict") == 4,
           "greedy's props: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    r = test_http(&sv, "GET", "/props?model=stopper", NULL, NULL);
    j = parse_reply(&r);
    CHECKF(jnum(j, "default_generation_settings.params.top_k") == 5 &&
               jstr(j, "default_generation_settings.params.stop.0") &&
               !strcmp(jstr(j, "default_generation_settings.params.stop.0"), stop),
           "stopper's props: %s", r.body);
    cJSON_Delete(j);
    free(r.body);
    char want[512];
    snprintf(want, sizeof want, "%-30s 0\n%-30s 1\n%-30s 4", "temperature", "repeat_penalty",
             "num_predict");
    t = reply_text(&sv, "/api/show", "{\"model\":\"greedy\"}", "parameters", NULL);
    check_same("greedy's /api/show parameters", t, want);
    free(t);
    cJSON *q = cJSON_CreateString(stop);
    char *quoted = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    snprintf(want, sizeof want, "%-30s 0\n%-30s 5\n%-30s %s", "temperature", "top_k", "stop",
             quoted);
    free(quoted);
    t = reply_text(&sv, "/api/show", "{\"model\":\"stopper\"}", "parameters", NULL);
    check_same("stopper's /api/show parameters", t, want);
    free(t);
    CHECK(test_server_stop(&sv) == 0);
    free(sampled_a);
    free(ollama_a);
    free(llama_a);
    free(a4);
    free(a16);
    free(styled);
}

/* Start-up errors: a second -m that is not a model, two models of one name. */
static void refused(void) {
    char junk[4300], log[4300];
    snprintf(junk, sizeof junk, "%s/junk.gguf", scratch);
    snprintf(log, sizeof log, "%s/refused.log", scratch);
    REQUIRE(test_write_file(junk, "not a model", 11));
    int rc =
        test_sh("timeout 60 '%s' serve -m '%s' -m '%s' --port 0 2>'%s'", binary, path_a, junk, log);
    char *text = test_read_file(log, NULL);
    CHECKF(rc == 1 && text && strstr(text, "junk.gguf"), "a junk -m: %d %s", rc, text);
    free(text);
    rc = test_sh("timeout 60 '%s' serve -m '%s' -m '%s/a.gguf' --port 0 2>'%s'", binary, path_a,
                 dir, log);
    text = test_read_file(log, NULL);
    CHECKF(rc == 1 && text && strstr(text, "two models are named a.gguf"), "same name: %d %s", rc,
           text);
    free(text);
}

int main(void) {
    if (system("curl --version > /dev/null 2>&1") != 0) {
        printf("test_server_models: curl is not installed; skipping\n");
        return TEST_SKIP;
    }
    REQUIRE(mkdtemp(scratch));
    snprintf(path_a, sizeof path_a, "%s/a.gguf", scratch);
    snprintf(path_b, sizeof path_b, "%s/b.gguf", scratch);
    snprintf(dir, sizeof dir, "%s/dir", scratch);
    REQUIRE(mkdir(dir, 0700) == 0);
    char path_c[4300], bad[4300], hidden[4300];
    snprintf(path_c, sizeof path_c, "%s/c.gguf", dir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    snprintf(hidden, sizeof hidden, "%s/.hidden.gguf", dir);
    write_model(path_a, "llama", 64, 1);
    write_model(path_b, "qwen2", 96, 2);
    write_model(path_c, "llama", 64, 3);
    REQUIRE(test_write_file(bad, "GGUF but not really", 19));
    write_model(hidden, "llama", 64, 4);
    char *want_a = expected_text(path_a, 6), *want_b = expected_text(path_b, 6),
         *want_c = expected_text(path_c, 6);
    /* the three models must answer differently, or naming proves nothing */
    CHECK(strcmp(want_a, want_b) && strcmp(want_a, want_c) && strcmp(want_b, want_c));
    naming_and_residency(want_a, want_b, want_c);
    waits_for_room(want_b);
    keep_alive(want_a);
    no_autoload(want_b);
    no_default(want_c);
    kv_type();
    models_file();
    model_params(want_a, want_b, path_c, want_c);
    refused();
    free(want_a);
    free(want_b);
    free(want_c);
    if (test_failures == 0) {
        char rm[4200];
        snprintf(rm, sizeof rm, "rm -rf '%s'", scratch);
        if (system(rm) != 0) printf("could not remove %s\n", scratch);
    } else {
        printf("test_server_models: files kept in %s\n", scratch);
    }
    return test_done("test_server_models");
}
