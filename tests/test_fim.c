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
static char repo_path[4300];
enum { PRE = 3, SUF = 4, MID = 5, REP = 6, SEP = 7 }; /* the ids the copies name as FIM tokens */

static const char prefix[] = "def add(a, b):\n    </s>", suffix[] = "\n    return c\n";

/* A copy of src whose tokenizer.ggml.fim_* keys name PRE, SUF and MID (and
 * with repo, REP and SEP). */
static void write_fim_model(const char *src, const char *dst, bool repo) {
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
    if (repo) {
        REQUIRE(gguf_writer_set_u32(w, "tokenizer.ggml.fim_rep_token_id", REP) == HEARTH_OK);
        REQUIRE(gguf_writer_set_u32(w, "tokenizer.ggml.fim_sep_token_id", SEP) == HEARTH_OK);
    }
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

/* Appends text's tokens (special text parsed when special) to want. */
static void put(hearth_model *m, const char *text, bool special, int32_t *want, size_t *n) {
    size_t k = 0;
    REQUIRE(hearth_tokenize(m, text, strlen(text), false, special, want + *n, 1024 - *n, &k) ==
            HEARTH_OK);
    *n += k;
}

static const char infill_prompt[] = "    c =";
static const hearth_infill_chunk chunks[] = {{"a.py", "x = 1\n"}, {NULL, "y </s>"}};

/* The test's infill: prefix, suffix, infill_prompt and both chunks. */
static hearth_infill test_infill(int n_batch, int n_extra_max) {
    return (hearth_infill){.prefix = prefix,
                           .prefix_len = strlen(prefix),
                           .suffix = suffix,
                           .suffix_len = strlen(suffix),
                           .prompt = infill_prompt,
                           .prompt_len = strlen(infill_prompt),
                           .extra = chunks,
                           .n_extra = 2,
                           .n_batch = n_batch,
                           .n_extra_max = n_extra_max};
}

/* The repository context as llama-server builds it: with <fim_repo> and
 * <fim_sep> (repo) or with its snippet separator. */
static size_t want_extra(hearth_model *m, bool repo, int32_t *want) {
    size_t n = 0;
    if (repo) {
        want[n++] = REP;
        put(m, "myproject\n", false, want, &n);
    }
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        if (repo) {
            want[n++] = SEP;
            put(m, chunks[i].filename ? chunks[i].filename : "tmp", false, want, &n);
            put(m, "\n", false, want, &n);
        } else {
            put(m, "\n\n--- snippet ---\n\n", false, want, &n);
        }
        put(m, chunks[i].text, false, want, &n);
    }
    if (repo) {
        want[n++] = SEP;
        put(m, "filename\n", false, want, &n);
    }
    return n;
}

/* hearth_tokenize_infill: the layout, the cuts, both kinds of vocabulary. */
static void library_infill(hearth_model *repo_m, hearth_model *m) {
    hearth_model *models[2] = {repo_m, m};
    for (int k = 0; k < 2; k++) {
        hearth_model *mm = models[k];
        int32_t extra[1024], pre[256], suf[256], pr[64], want[1024], got[1024];
        const size_t n_extra = want_extra(mm, k == 0, extra);
        const size_t n_pre = plain(mm, prefix, pre, 256), n_suf = plain(mm, suffix, suf, 256);
        size_t n_pr = 0;
        put(mm, infill_prompt, true, pr, &n_pr);
        hearth_infill in = test_infill(0, -1);
        /* whole, then cut as llama-server does for a batch of nb: the prefix's
         * last 3/4 nb tokens, the suffix's first nb/4 - 2 - prompt tokens, the
         * extra context's last 5 (a batch of 24 cuts the prefix, one of
         * 4 (prompt + 5) leaves 3 of the suffix) */
        const int batches[3] = {0, 24, 4 * ((int)n_pr + 5)};
        for (int cut = 0; cut < 3; cut++) {
            const size_t nb = (size_t)batches[cut], q = nb / 4;
            in.n_batch = (int)nb;
            in.n_extra_max = cut ? 5 : -1;
            size_t take_pre = n_pre, take_suf = n_suf, take_extra = n_extra;
            if (nb) {
                if (take_pre > 3 * q) take_pre = 3 * q;
                const size_t room = q > 2 + n_pr ? q - 2 - n_pr : 0;
                if (take_suf > room) take_suf = room;
                if (take_extra > 5) take_extra = 5;
            }
            if (cut == 1) CHECKF(take_pre < n_pre, "the prefix (%zu tokens) is not cut", n_pre);
            if (cut == 2)
                CHECKF(take_suf == 3 && n_suf > 3, "the suffix: %zu of %zu", take_suf, n_suf);
            size_t n = 0;
            memcpy(want, extra + (n_extra - take_extra), take_extra * sizeof *want);
            n += take_extra;
            if (hearth_token_bos(mm) >= 0) want[n++] = hearth_token_bos(mm);
            want[n++] = PRE;
            memcpy(want + n, pre + (n_pre - take_pre), take_pre * sizeof *want);
            n += take_pre;
            memcpy(want + n, pr, n_pr * sizeof *want);
            n += n_pr;
            want[n++] = SUF;
            memcpy(want + n, suf, take_suf * sizeof *want);
            n += take_suf;
            want[n++] = MID;
            size_t count = 0;
            CHECK(hearth_tokenize_infill(mm, &in, NULL, 0, &count) == HEARTH_ERR_INVALID_ARG);
            CHECKF(count == n, "model %d cut %d: measured %zu, want %zu", k, cut, count, n);
            CHECK(hearth_tokenize_infill(mm, &in, got, 1024, &count) == HEARTH_OK);
            CHECKF(count == n && !memcmp(got, want, n * sizeof *got), "model %d cut %d", k, cut);
        }
        /* no extra context at all: hearth_tokenize_fim's sequence */
        in = (hearth_infill){.prefix = prefix,
                             .prefix_len = strlen(prefix),
                             .suffix = suffix,
                             .suffix_len = strlen(suffix)};
        size_t a = 0, b = 0;
        CHECK(hearth_tokenize_infill(mm, &in, got, 1024, &a) == HEARTH_OK);
        CHECK(hearth_tokenize_fim(mm, prefix, strlen(prefix), suffix, strlen(suffix), want, 1024,
                                  &b) == HEARTH_OK);
        CHECK(a == b && !memcmp(got, want, a * sizeof *got));
    }
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

    /* a model without FIM tokens: /v1/completions' suffix and /infill */
    REQUIRE(test_server_start(&sv, binary, plain_model, scratch, "-t 1"));
    static const char *const no_fim[2][2] = {
        {"/v1/completions", "{\"prompt\":\"a\",\"suffix\":\"b\"}"},
        {"/infill", "{\"input_prefix\":\"a\",\"input_suffix\":\"b\"}"}};
    for (int i = 0; i < 2; i++) {
        j = post(&sv, no_fim[i][0], no_fim[i][1], &status);
        CHECKF(status == 400 && jstr(j, "error.message") &&
                   strstr(jstr(j, "error.message"), "fill-in-the-middle"),
               "%s without FIM tokens: %d", no_fim[i][0], status);
        cJSON_Delete(j);
    }
    CHECK(test_server_stop(&sv) == 0);
}

/* The greedy text of /infill's prompt as the library builds it with the
 * server's cuts (a slot of 4096: a batch of 2048, the extra context cut to
 * 4096 - 2048 - 2 * 12). */
static char *infill_want(hearth_model *m, int *n_prompt) {
    const hearth_infill in = test_infill(2048, 4096 - 2048 - 24);
    int32_t ids[1024];
    size_t n = 0;
    REQUIRE(hearth_tokenize_infill(m, &in, ids, 1024, &n) == HEARTH_OK);
    *n_prompt = (int)n;
    const hearth_sampling sp = openai_sampling(0, 0);
    return library_text(m, ids, (int)n, &sp, 12, NULL);
}

/* llama-server's /infill and /completion. */
static void llama_server(hearth_model *repo_m) {
    int n_prompt = 0;
    char *want = infill_want(repo_m, &n_prompt);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, repo_path, scratch, "-t 1 -c 4096"));
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "input_prefix", prefix);
    cJSON_AddStringToObject(req, "input_suffix", suffix);
    cJSON_AddStringToObject(req, "prompt", infill_prompt);
    cJSON *extra = cJSON_AddArrayToObject(req, "input_extra");
    for (int i = 0; i < 2; i++) {
        cJSON *c = cJSON_CreateObject();
        if (chunks[i].filename) cJSON_AddStringToObject(c, "filename", chunks[i].filename);
        cJSON_AddStringToObject(c, "text", chunks[i].text);
        cJSON_AddItemToArray(extra, c);
    }
    cJSON_AddNumberToObject(req, "n_predict", 12);
    cJSON_AddNumberToObject(req, "temperature", 0);
    cJSON_AddNumberToObject(req, "repeat_penalty", 1);
    char *body = cJSON_PrintUnformatted(req);
    int status;
    cJSON *j = post(&sv, "/infill", body, &status);
    CHECKF(status == 200 && jstr(j, "content") && !strcmp(jstr(j, "content"), want) &&
               jnum(j, "tokens_evaluated") == n_prompt && cJSON_IsTrue(jget(j, "stop")) &&
               !strcmp(jstr(j, "stop_type"), "limit") && jnum(j, "tokens_predicted") == 12,
           "/infill: %d '%s', the library: '%s' (%d tokens)", status,
           j && jstr(j, "content") ? jstr(j, "content") : "", want, n_prompt);
    cJSON_Delete(j);
    free(body);
    /* n_probs and return_tokens (test_server_nprobs checks their values):
     * an entry and an id per token, the text unchanged */
    cJSON_AddNumberToObject(req, "n_probs", 3);
    cJSON_AddTrueToObject(req, "return_tokens");
    body = cJSON_PrintUnformatted(req);
    j = post(&sv, "/infill", body, &status);
    CHECKF(status == 200 && jstr(j, "content") && !strcmp(jstr(j, "content"), want) &&
               cJSON_GetArraySize(jget(j, "tokens")) == 12 &&
               cJSON_GetArraySize(jget(j, "completion_probabilities")) == 12 &&
               cJSON_GetArraySize(jget(j, "completion_probabilities.11.top_logprobs")) == 3 &&
               jnum(j, "completion_probabilities.11.id") == jnum(j, "tokens.11"),
           "/infill with n_probs: %d", status);
    cJSON_Delete(j);
    free(body);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "n_probs");
    cJSON_DeleteItemFromObjectCaseSensitive(req, "return_tokens");
    /* streamed: the pieces, then the whole object with stop true and no [DONE] */
    cJSON_AddBoolToObject(req, "stream", true);
    body = cJSON_PrintUnformatted(req);
    test_reply r = test_http(&sv, "POST", "/infill", body, NULL);
    free(body);
    char text[1024] = "";
    int pieces = 0;
    bool stopped = false;
    for (const char *p = r.body; (p = strstr(p, "data: ")); p += 6) {
        cJSON *ev = cJSON_Parse(p + 6);
        if (!ev) continue;
        if (cJSON_IsTrue(jget(ev, "stop")))
            stopped = jstr(ev, "stop_type") && jget(ev, "timings") != NULL;
        else if (jstr(ev, "content"))
            strncat(text, jstr(ev, "content"), sizeof text - strlen(text) - 1), pieces++;
        cJSON_Delete(ev);
    }
    CHECKF(r.status == 200 && !strcmp(text, want) && pieces > 1 && stopped &&
               !strstr(r.body, "[DONE]"),
           "/infill stream: '%s' %s", text, r.body);
    free(r.body);
    cJSON_Delete(req);

    /* /completion: the text /v1/completions gives, a stop word, refusals */
    j = post(&sv, "/v1/completions", "{\"prompt\":\"def f():\",\"max_tokens\":8,\"temperature\":0}",
             &status);
    char *oa = strdup(jstr(j, "choices.0.text") ? jstr(j, "choices.0.text") : "");
    cJSON_Delete(j);
    j = post(&sv, "/completion",
             "{\"prompt\":\"def f():\",\"n_predict\":8,\"temperature\":0,\"repeat_penalty\":1}",
             &status);
    CHECKF(status == 200 && jstr(j, "content") && !strcmp(jstr(j, "content"), oa),
           "/completion: %d '%s', /v1/completions '%s'", status,
           j && jstr(j, "content") ? jstr(j, "content") : "", oa);
    cJSON_Delete(j);
    if (strlen(oa) >= 4) {
        char stop_body[512], word[8];
        snprintf(word, sizeof word, "%.2s", oa + 2);
        cJSON *b = cJSON_Parse("{\"prompt\":\"def f():\",\"n_predict\":8,\"temperature\":0,"
                               "\"repeat_penalty\":1}");
        cJSON *stop = cJSON_AddArrayToObject(b, "stop");
        cJSON_AddItemToArray(stop, cJSON_CreateString(word));
        char *sb = cJSON_PrintUnformatted(b);
        snprintf(stop_body, sizeof stop_body, "%s", sb);
        free(sb);
        cJSON_Delete(b);
        j = post(&sv, "/completions", stop_body, &status);
        CHECKF(status == 200 && !strcmp(jstr(j, "stop_type"), "word") &&
                   !strcmp(jstr(j, "stopping_word"), word) && strlen(jstr(j, "content")) <= 2,
               "stop word '%s': %d %s", word, status, j ? cJSON_PrintUnformatted(j) : "");
        cJSON_Delete(j);
    }
    free(oa);
    static const struct {
        const char *path, *body, *param;
    } bad[] = {
        {"/completion", "{\"prompt\":\"a\",\"mirostat\":3}", "mirostat"},
        {"/completion", "{\"prompt\":\"a\",\"n_probs\":-3}", "n_probs"},
        {"/completion", "{\"prompt\":\"a\",\"ignore_eos\":1}", "ignore_eos"},
        {"/completion", "{\"n_predict\":3}", "prompt"},
        {"/infill", "{\"input_prefix\":\"a\"}", "input_suffix"},
        {"/infill", "{\"input_prefix\":\"a\",\"input_suffix\":\"b\",\"input_extra\":[{}]}",
         "input_extra"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = post(&sv, bad[i].path, bad[i].body, &status);
        CHECKF(status == 400 && jstr(j, "error.param") &&
                   !strcmp(jstr(j, "error.param"), bad[i].param),
               "%s %s: %d", bad[i].path, bad[i].body, status);
        cJSON_Delete(j);
    }
    r = test_http(&sv, "POST", "/infill", "{\"input_prefix\":\"a\",\"input_suffix\":\"b\"}",
                  "-H 'x-hearth-tier: cloud'");
    CHECKF(r.status == 400 && strstr(r.body, "local model only"), "a remote tier: %d %s", r.status,
           r.body);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);

    free(want);
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
    write_fim_model(model_path, fim_path, false);
    snprintf(repo_path, sizeof repo_path, "%s/fim_repo.gguf", scratch);
    write_fim_model(model_path, repo_path, true);
    hearth_model *m = NULL, *no_fim = NULL, *repo_m = NULL;
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(fim_path, &mp, &m) == HEARTH_OK);
    REQUIRE(hearth_model_load(model_path, &mp, &no_fim) == HEARTH_OK);
    REQUIRE(hearth_model_load(repo_path, &mp, &repo_m) == HEARTH_OK);
    int32_t ids[512];
    size_t n = 0;
    library(m, no_fim, ids, &n);
    library_infill(repo_m, m);
    real_vocab();
    const hearth_sampling sp = openai_sampling(0, 0);
    char *want = library_text(m, ids, (int)n, &sp, 12, NULL);
    printf("middle: '%s'\n", want);
    server(model_path, want);
    llama_server(repo_m);
    cli(want);
    free(want);
    hearth_model_free(repo_m);
    hearth_model_free(m);
    hearth_model_free(no_fim);
    fixture_server_cleanup("test_fim", scratch, test_failures > 0);
    return test_done("test_fim");
}
