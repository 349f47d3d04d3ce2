/*
 * test_fim.c - fill in the middle. The library: hearth_tokenize_fim builds
 * [BOS] <fim_prefix> prefix <fim_suffix> suffix <fim_middle> from the
 * vocabulary's FIM ids (set here in a copy of the test model), keeps
 * special-token text in the code as text, reports the size it needs, and
 * refuses a vocabulary without FIM tokens; real vocabularies (Qwen2's)
 * have their FIM tokens found. The server: /v1/completions with "suffix"
 * and ollama's /api/generate with "suffix" answer with the library's
 * greedy middle, locally; the refusals name suffix. `hearth run --suffix`
 * prints the same middle.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/sse_choices.h"
#include "shared_vocab.h"
#include "test_sh.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_fim_XXXXXX";
static char fim_path[4300];
enum { PRE = 3, SUF = 4, MID = 5 }; /* the ids the copy names as FIM tokens */

static const char prefix[] = "def add(a, b):\n    </s>", suffix[] = "\n    return c\n";

/* A copy of src whose tokenizer.ggml.fim_* keys name PRE, SUF and MID. */
static void write_fim_model(const char *src, const char *dst) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    REQUIRE(gguf_open(src, &f) == HEARTH_OK);
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_copy_kv(w, f) == HEARTH_OK);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        REQUIRE(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes) ==
                HEARTH_OK);
    }
    REQUIRE(gguf_writer_set_u32(w, "tokenizer.ggml.fim_pre_token_id", PRE) == HEARTH_OK);
    REQUIRE(gguf_writer_set_u32(w, "tokenizer.ggml.fim_suf_token_id", SUF) == HEARTH_OK);
    REQUIRE(gguf_writer_set_u32(w, "tokenizer.ggml.fim_mid_token_id", MID) == HEARTH_OK);
    REQUIRE(gguf_writer_write(w, dst) == HEARTH_OK);
    gguf_writer_free(w);
    gguf_close(f);
}

/* text's tokens without BOS/EOS, special text as text. */
static size_t plain(hearth_model *m, const char *text, int32_t *out, size_t cap) {
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, text, strlen(text), false, false, out, cap, &n) == HEARTH_OK);
    return n;
}

static void library(hearth_model *m, hearth_model *no_fim, int32_t *ids, size_t *n_ids) {
    int32_t want[512], part[256];
    size_t n = 0;
    if (hearth_token_bos(m) >= 0) want[n++] = hearth_token_bos(m);
    want[n++] = PRE;
    size_t k = plain(m, prefix, part, 256);
    memcpy(want + n, part, k * sizeof *part);
    n += k;
    want[n++] = SUF;
    k = plain(m, suffix, part, 256);
    memcpy(want + n, part, k * sizeof *part);
    n += k;
    want[n++] = MID;

    size_t got = 0;
    CHECK(hearth_tokenize_fim(m, prefix, strlen(prefix), suffix, strlen(suffix), NULL, 0, &got) ==
          HEARTH_ERR_INVALID_ARG);
    CHECKF(got == n, "measured %zu, want %zu", got, n);
    CHECK(hearth_tokenize_fim(m, prefix, strlen(prefix), suffix, strlen(suffix), ids, 512, &got) ==
          HEARTH_OK);
    CHECK(got == n && !memcmp(ids, want, n * sizeof *ids));
    for (size_t i = 0; i < got; i++)
        CHECKF(ids[i] != hearth_token_eos(m), "'</s>' in the code became EOS at %zu", i);
    *n_ids = got;
    /* an empty prefix (the top of a file) and an empty suffix */
    CHECK(hearth_tokenize_fim(m, "", 0, "", 0, part, 256, &got) == HEARTH_OK);
    CHECK(got == (hearth_token_bos(m) >= 0 ? 4u : 3u) && part[got - 1] == MID);
    /* no FIM tokens: refused, saying so */
    CHECK(hearth_tokenize_fim(no_fim, "a", 1, "b", 1, part, 256, &got) == HEARTH_ERR_UNSUPPORTED);
    CHECKF(strstr(hearth_last_error(), "fill-in-the-middle"), "%s", hearth_last_error());
}

/* Qwen2's real vocabulary: its <|fim_*|> tokens are the FIM ids. */
static void real_vocab(void) {
    hearth_err err;
    tok_vocab *v = shared_vocab("qwen2", &err);
    CHECK(err == HEARTH_OK);
    if (!v) return;
    static const char *const text[] = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"};
    const int got[] = {tok_fim_pre(v), tok_fim_suf(v), tok_fim_mid(v)};
    for (int i = 0; i < 3; i++) {
        const int32_t want = tok_find(v, text[i], strlen(text[i]));
        CHECKF(want >= 0 && got[i] == want, "%s: %d, want %d", text[i], got[i], (int)want);
    }
    tok_vocab_free(v);
    v = shared_vocab("llama-bpe", &err); /* Llama 3 has none */
    if (v) CHECK(tok_fim_pre(v) < 0 && tok_fim_mid(v) < 0);
    tok_vocab_free(v);
}

static void server(const char *plain_model, const char *want) {
    test_server sv;
    char args[9000];
    snprintf(args, sizeof args, "-m '%s' -t 1", plain_model);
    REQUIRE(test_server_start(&sv, binary, fim_path, scratch, args));
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "prompt", prefix);
    cJSON_AddStringToObject(req, "suffix", suffix);
    cJSON_AddNumberToObject(req, "max_tokens", 12);
    cJSON_AddNumberToObject(req, "temperature", 0);
    char *body = cJSON_PrintUnformatted(req);
    char hdr[4400], extra[4500];
    snprintf(hdr, sizeof hdr, "%s/fim.headers", scratch);
    snprintf(extra, sizeof extra, "-D '%s'", hdr);
    test_reply r = test_http(&sv, "POST", "/v1/completions", body, extra);
    free(body);
    cJSON *j = parse_reply(&r);
    CHECKF(r.status == 200 && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want),
           "completion: %d '%s', the library: '%s'", r.status, j ? jstr(j, "choices.0.text") : "",
           want);
    cJSON_Delete(j);
    free(r.body);
    char *headers = test_read_file(hdr, NULL);
    CHECKF(headers && strstr(headers, "x-hearth-route: local"), "%s", headers ? headers : "");
    free(headers);

    /* ollama: /api/generate with suffix, greedy */
    cJSON_DeleteItemFromObject(req, "max_tokens");
    cJSON_DeleteItemFromObject(req, "temperature");
    cJSON_AddStringToObject(req, "model", "fim");
    cJSON_AddBoolToObject(req, "stream", false);
    cJSON *opt = cJSON_AddObjectToObject(req, "options");
    cJSON_AddNumberToObject(opt, "temperature", 0);
    cJSON_AddNumberToObject(opt, "repeat_penalty", 1);
    cJSON_AddNumberToObject(opt, "num_predict", 12);
    body = cJSON_PrintUnformatted(req);
    int status;
    j = post(&sv, "/api/generate", body, &status);
    free(body);
    CHECKF(status == 200 && jstr(j, "response") && !strcmp(jstr(j, "response"), want),
           "ollama: %d '%s'", status, j ? jstr(j, "response") : "");
    cJSON_Delete(j);
    cJSON_Delete(req);

    /* refusals name suffix */
    static const char *const bad[] = {
        "{\"prompt\":\"a\",\"suffix\":\"b\",\"echo\":true}",
        "{\"prompt\":[1,2],\"suffix\":\"b\"}",
        "{\"prompt\":\"a\",\"suffix\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = post(&sv, "/v1/completions", bad[i], &status);
        CHECKF(status == 400 && jstr(j, "error.param") && !strcmp(jstr(j, "error.param"), "suffix"),
               "%s: %d", bad[i], status);
        cJSON_Delete(j);
    }
    r = test_http(&sv, "POST", "/v1/completions", "{\"prompt\":\"a\",\"suffix\":\"b\"}",
                  "-H 'x-hearth-tier: cloud'");
    CHECKF(r.status == 400 && strstr(r.body, "suffix"), "a remote tier: %d %s", r.status, r.body);
    free(r.body);
    /* an empty prefix is a prompt (the top of a file) */
    j = post(&sv, "/v1/completions", "{\"prompt\":\"\",\"suffix\":\"x = 1\",\"max_tokens\":2}",
             &status);
    CHECKF(status == 200, "empty prefix: %d", status);
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);

    /* a model without FIM tokens */
    REQUIRE(test_server_start(&sv, binary, plain_model, scratch, "-t 1"));
    j = post(&sv, "/v1/completions", "{\"prompt\":\"a\",\"suffix\":\"b\"}", &status);
    CHECKF(status == 400 && jstr(j, "error.message") &&
               strstr(jstr(j, "error.message"), "fill-in-the-middle"),
           "no FIM tokens: %d", status);
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
}

static void cli(const char *want) {
    char out[4400];
    snprintf(out, sizeof out, "%s/run.out", scratch);
    const int rc = test_sh("'%s' run -m '%s' -p 'def add(a, b):\n    </s>' --suffix '%s' -n 12 "
                           "--temp 0 -t 1 >'%s' 2>/dev/null",
                           binary, fim_path, suffix, out);
    char *text = test_read_file(out, NULL);
    CHECKF(rc == 0 && text && !strncmp(text, want, strlen(want)), "run --suffix: %d '%s'", rc,
           text ? text : "");
    free(text);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_fim", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    snprintf(fim_path, sizeof fim_path, "%s/fim.gguf", scratch);
    write_fim_model(model_path, fim_path);
    hearth_model *m = NULL, *no_fim = NULL;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(fim_path, &mp, &m) == HEARTH_OK);
    REQUIRE(hearth_model_load(model_path, &mp, &no_fim) == HEARTH_OK);
    int32_t ids[512];
    size_t n = 0;
    library(m, no_fim, ids, &n);
    real_vocab();
    const hearth_sampling sp = openai_sampling(0, 0);
    char *want = library_text(m, ids, (int)n, &sp, 12, NULL);
    printf("middle: '%s'\n", want);
    server(model_path, want);
    cli(want);
    free(want);
    hearth_model_free(m);
    hearth_model_free(no_fim);
    fixture_server_cleanup("test_fim", scratch, test_failures > 0);
    return test_done("test_fim");
}
