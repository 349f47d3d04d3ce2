/*
 * test_server_util.c - llama.cpp server's utility endpoints on `hearth serve`
 * (api_util.c), driven with curl as test_server.c does. /tokenize gives the
 * library's hearth_tokenize ids for every flag combination, and its pieces
 * are the library's pieces (a string when valid UTF-8 alone, else bytes)
 * that put the text back together; /detokenize gives hearth_detokenize's
 * text (ill-formed UTF-8 as U+FFFD); /apply-template's prompt tokenizes to
 * exactly the prompt /v1/chat/completions evaluates (usage.prompt_tokens),
 * with tools, a forced call and a model template that prints BOS; /props'
 * fields; vLLM's shapes (/tokenize's "prompt" and "messages", /detokenize's
 * "prompt", /tokenizer_info); every bad input a 400 (413 past the bounds) in OpenAI's error
 * shape; the API key; tokenizing while a generation holds the only slot.
 * With ../shared: /tokenize against llama.cpp's ids for stories260K's golden
 * prompts and its README's byte-piece example.
 */
#include "test.h"

#include "core/core.h"
#include "engine/chat.h"
#include "engine/engine.h"
#include "server/server.h"

#include "server/chat_templates.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_util_XXXXXX";
static hearth_model *model;
static const char *const key = "-H 'Authorization: Bearer sekrit'";

enum { MAX_IDS = 4096 };

/* Texts to tokenize; the last ones hold special tokens' text, which
 * SentencePiece vocabularies follow with a space prefix (as llama.cpp does),
 * so their pieces do not spell the text back. */
static const char *const texts[] = {
    "Hello world",
    "",
    " leading and trailing  ",
    "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82",
    "line\nbreak\ttab",
    "<s>special</s> text",
};
#define N_TEXTS (int)(sizeof texts / sizeof texts[0])
#define N_PLAIN (N_TEXTS - 1)

static int lib_tokenize(const char *text, bool add, bool parse, int32_t *ids) {
    size_t n = 0;
    REQUIRE(hearth_tokenize(model, text, strlen(text), add, parse, ids, MAX_IDS, &n) == HEARTH_OK);
    return (int)n;
}

/* hearth_detokenize with control text, malloc'd and NUL-terminated. */
static char *lib_detokenize(const int32_t *ids, size_t n, size_t *len) {
    size_t need = 0;
    hearth_detokenize(model, ids, n, true, NULL, 0, &need);
    char *out = malloc(need + 1);
    REQUIRE(out && hearth_detokenize(model, ids, n, true, out, need, &need) == HEARTH_OK);
    out[need] = '\0';
    *len = need;
    return out;
}

/* A /tokenize body; a flag < 0 is left out. */
static char *tok_body(const char *text, int add, int parse, int pieces) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", text);
    if (add >= 0) cJSON_AddBoolToObject(o, "add_special", add);
    if (parse >= 0) cJSON_AddBoolToObject(o, "parse_special", parse);
    if (pieces >= 0) cJSON_AddBoolToObject(o, "with_pieces", pieces);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static cJSON *call(test_server *sv, const char *path, const char *body, int *status) {
    test_reply r = test_http(sv, body ? "POST" : "GET", path, body, key);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    *status = r.status;
    CHECKF(j != NULL, "%s: not JSON (%d): %.300s", path, r.status, r.body);
    free(r.body);
    return j;
}

/* The ids of a /tokenize reply (numbers, or objects' "id"); -1 when malformed. */
static int reply_ids(const cJSON *j, int32_t *ids) {
    const cJSON *arr = jget(j, "tokens");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > MAX_IDS) return -1;
    int n = 0;
    for (const cJSON *t = arr->child; t; t = t->next) {
        const cJSON *id = cJSON_IsObject(t) ? jget(t, "id") : t;
        if (!cJSON_IsNumber(id)) return -1;
        ids[n++] = (int32_t)id->valuedouble;
    }
    return n;
}

static bool same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a));
}

/* An error reply: status, OpenAI's shape, and the param when given. */
static void check_error(const char *what, test_server *sv, const char *method, const char *path,
                        const char *body, int status, const char *param) {
    test_reply r = test_http(sv, method, path, body, key);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    CHECKF(r.status == status, "%s: status %d, expected %d: %.300s", what, r.status, status,
           r.body);
    CHECKF(jstr(j, "error.message") && jstr(j, "error.type") && jget(j, "error.code") &&
               jget(j, "error.param"),
           "%s: not an error object: %.300s", what, r.body);
    if (param)
        CHECKF(jstr(j, "error.param") && !strcmp(jstr(j, "error.param"), param),
               "%s: param %s, expected %s", what, jstr(j, "error.param"), param);
    cJSON_Delete(j);
    free(r.body);
}

/* ---- /tokenize ------------------------------------------------------------- */

/* The bytes of a piece: its string, or its array of byte values. False when
 * it is neither. */
static bool piece_bytes(const cJSON *p, char *out, size_t cap, size_t *n, bool *is_string) {
    *is_string = cJSON_IsString(p);
    if (*is_string) {
        *n = strlen(p->valuestring);
        if (*n >= cap) return false;
        memcpy(out, p->valuestring, *n);
        return true;
    }
    if (!cJSON_IsArray(p)) return false;
    *n = 0;
    for (const cJSON *b = p->child; b; b = b->next) {
        if (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > 255 || *n >= cap)
            return false;
        out[(*n)++] = (char)(int)b->valuedouble;
    }
    return true;
}

/* with_pieces: each piece is the library's piece of its id (control text
 * included), a string exactly when that is valid UTF-8 without NUL; and the
 * pieces of a text tokenized without specials make the text again (with
 * SentencePiece's space prefix in front). */
static void check_pieces(test_server *sv, const char *text, bool plain) {
    char *body = tok_body(text, 0, -1, 1);
    int st;
    cJSON *j = call(sv, "/tokenize", body, &st);
    free(body);
    int32_t ids[MAX_IDS], lib[MAX_IDS];
    const int n = reply_ids(j, ids), nl = lib_tokenize(text, false, true, lib);
    CHECKF(st == 200 && same_ids(ids, n, lib, nl), "pieces '%s': ids differ (%d, %d)", text, n, nl);
    const tok_vocab *v = engine_vocab(model);
    char all[8192] = "", want[1024], got[1024];
    size_t n_all = 0;
    int n_bytes = 0;
    const cJSON *arr = jget(j, "tokens");
    for (int i = 0; i < n && i < nl; i++) {
        size_t wn = 0, gn = 0;
        bool is_string;
        REQUIRE(tok_piece(v, lib[i], true, want, sizeof want, &wn) == HEARTH_OK);
        const cJSON *p = jget(cJSON_GetArrayItem(arr, i), "piece");
        const bool ok = piece_bytes(p, got, sizeof got, &gn, &is_string);
        CHECKF(ok && gn == wn && !memcmp(got, want, wn), "'%s': piece %d differs", text, i);
        const bool valid = hr_utf8_valid(want, wn, NULL) && !memchr(want, '\0', wn);
        CHECKF(is_string == valid, "'%s': piece %d as %s", text, i, is_string ? "string" : "bytes");
        n_bytes += !is_string;
        if (ok && n_all + gn < sizeof all) {
            memcpy(all + n_all, got, gn);
            n_all += gn;
        }
    }
    all[n_all] = '\0';
    if (plain)
        CHECKF(!strcmp(all, text) || (all[0] == ' ' && !strcmp(all + 1, text)),
               "pieces make '%s', not '%s'", all, text);
    if (!strncmp(text, "h\xc3\xa9", 3)) /* the tiny vocabularies spell this in bytes */
        CHECKF(n_bytes > 0, "'%s': no piece came as bytes", text);
    cJSON_Delete(j);
}

static void test_tokenize(test_server *sv) {
    for (int t = 0; t < N_TEXTS; t++) {
        for (int add = -1; add <= 1; add++)
            for (int parse = -1; parse <= 1; parse++) {
                char *body = tok_body(texts[t], add, parse, parse == 0 ? 0 : -1);
                int st;
                cJSON *j = call(sv, "/tokenize", body, &st);
                free(body);
                int32_t ids[MAX_IDS], lib[MAX_IDS];
                const int n = reply_ids(j, ids);
                /* the defaults: add_special false, parse_special true */
                const int nl = lib_tokenize(texts[t], add == 1, parse != 0, lib);
                CHECKF(st == 200 && same_ids(ids, n, lib, nl),
                       "tokenize '%s' add %d parse %d: %d ids, library %d", texts[t], add, parse, n,
                       nl);
                CHECKF(cJSON_GetArraySize(jget(j, "tokens")) == 0 ||
                           cJSON_IsNumber(jget(j, "tokens.0")),
                       "without pieces the tokens are numbers");
                cJSON_Delete(j);
            }
        check_pieces(sv, texts[t], t < N_PLAIN);
    }
    /* the flags matter on this model: BOS added, "<s>" parsed or not */
    int32_t a[MAX_IDS], b[MAX_IDS];
    CHECK(lib_tokenize("x", true, true, a) == lib_tokenize("x", false, true, b) + 1);
    CHECK(
        !same_ids(a, lib_tokenize("<s>", false, true, a), b, lib_tokenize("<s>", false, false, b)));
}

static void test_tokenize_errors(test_server *sv) {
    const char *p = "/tokenize";
    check_error("no content", sv, "POST", p, "{}", 400, "content");
    check_error("null content", sv, "POST", p, "{\"content\":null}", 400, "content");
    check_error("content a number", sv, "POST", p, "{\"content\":5}", 400, "content");
    check_error("content an array", sv, "POST", p, "{\"content\":[\"a\"]}", 400, "content");
    check_error("add_special a string", sv, "POST", p,
                "{\"content\":\"a\",\"add_special\":\"yes\"}", 400, "add_special");
    check_error("parse_special a number", sv, "POST", p, "{\"content\":\"a\",\"parse_special\":1}",
                400, "parse_special");
    check_error("with_pieces a string", sv, "POST", p, "{\"content\":\"a\",\"with_pieces\":\"t\"}",
                400, "with_pieces");
    check_error("not JSON", sv, "POST", p, "{\"content\":", 400, NULL);
    check_error("not an object", sv, "POST", p, "[\"content\"]", 400, NULL);
    check_error("data after the value", sv, "POST", p, "{\"content\":\"a\"} {}", 400, NULL);
    check_error("no body", sv, "POST", p, "", 400, NULL);
    check_error("invalid UTF-8", sv, "POST", p, "{\"content\":\"\xc3(\"}", 400, NULL);
    check_error("GET", sv, "GET", p, NULL, 405, NULL);
    /* past the token bound: 100,000 characters of three byte tokens each */
    const char ch[] = "\xe6\x97\xa5";
    const size_t n_ch = 100000, len = n_ch * 3;
    char *text = malloc(len + 1);
    REQUIRE(text);
    for (size_t i = 0; i < n_ch; i++) memcpy(text + 3 * i, ch, 3);
    text[len] = '\0';
    size_t n = 0;
    hearth_tokenize(model, text, len, false, true, NULL, 0, &n);
    CHECKF(n > (1u << 18), "the long text is only %zu tokens", n);
    char *body = tok_body(text, -1, -1, -1);
    check_error("too many tokens", sv, "POST", p, body, 413, "content");
    free(body);
    /* under --max-body and the bound: answered */
    text[3 * 20000] = '\0';
    body = tok_body(text, -1, -1, -1);
    int st;
    cJSON *j = call(sv, p, body, &st);
    CHECKF(st == 200 && cJSON_GetArraySize(jget(j, "tokens")) >= 20000, "20,000 characters: %d",
           st);
    cJSON_Delete(j);
    free(body);
    free(text);
    /* a body over --max-body (1 MiB here) */
    char *big = malloc((1u << 20) + 64);
    REQUIRE(big);
    memset(big, 'a', (1u << 20) + 63);
    memcpy(big, "{\"content\":\"", 12);
    memcpy(big + (1u << 20) + 61, "\"}", 2);
    big[(1u << 20) + 63] = '\0';
    check_error("body too large", sv, "POST", p, big, 413, NULL);
    free(big);
}

/* ---- /detokenize ------------------------------------------------------------ */

static char *ids_body(const int32_t *ids, int n) {
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "tokens");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* /detokenize of ids equals the library's text, cleaned as JSON needs it:
 * ill-formed UTF-8 as U+FFFD, U+0000 dropped. */
static void check_detokenize(test_server *sv, const int32_t *ids, int n, const char *exact) {
    size_t len;
    char *raw = lib_detokenize(ids, (size_t)n, &len);
    char *clean = malloc(3 * len + 1);
    REQUIRE(clean);
    const size_t cn = srv_utf8_clean(raw, len, clean);
    size_t k = 0;
    for (size_t i = 0; i < cn; i++)
        if (clean[i]) clean[k++] = clean[i];
    clean[k] = '\0';
    char *body = ids_body(ids, n);
    int st;
    cJSON *j = call(sv, "/detokenize", body, &st);
    const char *got = jstr(j, "content");
    CHECKF(st == 200 && got && !strcmp(got, clean), "detokenize of %d ids: '%s', library '%s'", n,
           got ? got : "(none)", clean);
    if (exact) CHECKF(got && !strcmp(got, exact), "round trip: '%s', not '%s'", got, exact);
    cJSON_Delete(j);
    free(body);
    free(clean);
    free(raw);
}

static void test_detokenize(test_server *sv) {
    int32_t ids[MAX_IDS];
    for (int t = 0; t < N_TEXTS; t++) {
        const int n = lib_tokenize(texts[t], false, true, ids);
        check_detokenize(sv, ids, n, t < N_PLAIN ? texts[t] : NULL);
    }
    /* control tokens come with their text, as llama.cpp's pieces do */
    const int n_vocab = hearth_model_n_vocab(model);
    int32_t sp[3] = {hearth_token_bos(model), 300 % n_vocab, hearth_token_eos(model)};
    check_detokenize(sv, sp, 3, NULL);
    char *bos = eng_token_text(model, sp[0]);
    size_t len;
    char *t = lib_detokenize(sp, 3, &len);
    CHECKF(bos && bos[0] && !strncmp(t, bos, strlen(bos)), "BOS text '%s' in '%s'", bos, t);
    free(t);
    free(bos);
    /* random ids: pieces of characters, bytes that are no UTF-8 at all */
    unsigned long long seed = 46;
    for (int round = 0; round < 20; round++) {
        const int n = 1 + (int)(test_rand_u64(&seed) % 40);
        for (int i = 0; i < n; i++) ids[i] = (int32_t)(test_rand_u64(&seed) % (unsigned)n_vocab);
        check_detokenize(sv, ids, n, NULL);
    }
    check_detokenize(sv, ids, 0, "");

    const char *p = "/detokenize";
    char body[128];
    check_error("no tokens", sv, "POST", p, "{}", 400, "tokens");
    check_error("tokens a string", sv, "POST", p, "{\"tokens\":\"1 2\"}", 400, "tokens");
    check_error("a fraction", sv, "POST", p, "{\"tokens\":[1,2.5]}", 400, "tokens[1]");
    check_error("a string id", sv, "POST", p, "{\"tokens\":[1,2,\"3\"]}", 400, "tokens[2]");
    check_error("negative", sv, "POST", p, "{\"tokens\":[-1]}", 400, "tokens[0]");
    snprintf(body, sizeof body, "{\"tokens\":[1,%d]}", n_vocab);
    check_error("past the vocabulary", sv, "POST", p, body, 400, "tokens[1]");
    check_error("huge", sv, "POST", p, "{\"tokens\":[1e300]}", 400, "tokens[0]");
    check_error("not JSON", sv, "POST", p, "tokens", 400, NULL);
    /* more ids than one request may hold (the body is under --max-body) */
    const int many = (1 << 18) + 1;
    char *big = malloc((size_t)many * 2 + 32);
    REQUIRE(big);
    size_t o = (size_t)sprintf(big, "{\"tokens\":[");
    for (int i = 0; i < many; i++) o += (size_t)sprintf(big + o, i ? ",5" : "5");
    sprintf(big + o, "]}");
    check_error("too many ids", sv, "POST", p, big, 413, "tokens");
    free(big);
}

/* ---- /apply-template ---------------------------------------------------------- */

/* The prompt /apply-template renders for messages (a JSON fragment of the
 * request: "messages": [...] and more), checked against the chat endpoint:
 * /tokenize of it with BOS is the library's tokenization and exactly as many
 * tokens as usage.prompt_tokens. The prompt is returned (malloc'd). */
static char *check_template(test_server *sv, const char *what, const char *request) {
    char body[4096];
    snprintf(body, sizeof body, "{%s}", request);
    int st;
    cJSON *j = call(sv, "/apply-template", body, &st);
    const char *prompt = jstr(j, "prompt");
    CHECKF(st == 200 && prompt, "%s: %d", what, st);
    char *out = strdup(prompt ? prompt : "");
    cJSON_Delete(j);
    char *tb = tok_body(out, 1, 1, -1);
    j = call(sv, "/tokenize", tb, &st);
    free(tb);
    int32_t ids[MAX_IDS], lib[MAX_IDS];
    const int n = reply_ids(j, ids), nl = lib_tokenize(out, true, true, lib);
    CHECKF(same_ids(ids, n, lib, nl), "%s: /tokenize of the prompt", what);
    cJSON_Delete(j);
    snprintf(body, sizeof body, "{%s,\"max_tokens\":1,\"temperature\":0}", request);
    j = call(sv, "/v1/chat/completions", body, &st);
    /* a prompt longer than the context is refused with the chat's own count */
    const char *code = jstr(j, "error.code"), *msg = jstr(j, "error.message");
    int chat = st == 200 ? (int)jnum(j, "usage.prompt_tokens") : -1;
    if (st == 400 && code && !strcmp(code, "context_length_exceeded") && msg &&
        sscanf(msg, "the prompt has %d tokens", &chat) != 1)
        chat = -1;
    CHECKF(chat == n,
           "%s: the chat evaluated %d prompt tokens, /tokenize of /apply-template's prompt gives "
           "%d (%d)",
           what, chat, n, st);
    cJSON_Delete(j);
    return out;
}

static const char tools[] =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"The weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
    "{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";

static void test_apply_template(test_server *sv) {
    /* no template in the model: ChatML, which ends with the assistant's header */
    char *p = check_template(sv, "chatml",
                             "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                             "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]");
    CHECKF(strstr(p, "<|im_start|>system\nBe brief.<|im_end|>\n") == p, "chatml: %s", p);
    const char *tail = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
    CHECKF(strlen(p) > strlen(tail) && !strcmp(p + strlen(p) - strlen(tail), tail), "chatml: %s",
           p);
    free(p);
    char req[2048];
    snprintf(req, sizeof req,
             "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],%s", tools);
    p = check_template(sv, "tools", req);
    CHECKF(strstr(p, "get_weather") && strstr(p, "Weather in Paris?"), "tools: %s", p);
    free(p);
    snprintf(req, sizeof req,
             "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],%s,"
             "\"tool_choice\":\"required\"",
             tools);
    char *forced = check_template(sv, "a forced call", req);
    snprintf(req, sizeof req,
             "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],%s", tools);
    p = check_template(sv, "tools again", req);
    /* the forced call opens the assistant turn with the call's beginning */
    CHECKF(strlen(forced) > strlen(p) && !strncmp(forced, p, strlen(p)), "forced: %s", forced);
    free(p);
    free(forced);
    snprintf(req, sizeof req,
             "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":\"assistant\","
             "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
             "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"-3 C\"}],%s",
             tools);
    p = check_template(sv, "a call and its result", req);
    CHECKF(strstr(p, "Oslo") && strstr(p, "-3 C"), "call and result: %s", p);
    free(p);

    const char *path = "/apply-template";
    check_error("no messages", sv, "POST", path, "{}", 400, "messages");
    check_error("messages a string", sv, "POST", path, "{\"messages\":\"hi\"}", 400, "messages");
    check_error("empty messages", sv, "POST", path, "{\"messages\":[]}", 400, "messages");
    check_error("a bad role", sv, "POST", path,
                "{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}", 400, NULL);
    check_error("content a number", sv, "POST", path,
                "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, NULL);
    check_error("not JSON", sv, "POST", path, "{\"messages\":[", 400, NULL);
    check_error("GET", sv, "GET", path, NULL, 405, NULL);
}

/* ---- vLLM's shapes ----------------------------------------------------------- */

/* A vLLM /tokenize body: {"prompt", "add_special_tokens" (< 0: left out), ...}. */
static cJSON *vllm_tokenize(test_server *sv, const char *text, int add, const char *more, int *st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", text);
    if (add >= 0) cJSON_AddBoolToObject(o, "add_special_tokens", add);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char body[4096];
    snprintf(body, sizeof body, "%.*s%s}", (int)strlen(s) - 1, s, more);
    free(s);
    return call(sv, "/tokenize", body, st);
}

static void test_vllm(test_server *sv) {
    for (int t = 0; t < N_TEXTS; t++)
        for (int add = -1; add <= 1; add++) {
            int st;
            cJSON *j = vllm_tokenize(sv, texts[t], add, "", &st);
            int32_t ids[MAX_IDS], lib[MAX_IDS];
            const int n = reply_ids(j, ids), nl = lib_tokenize(texts[t], add != 0, true, lib);
            /* vLLM's default: add_special_tokens true */
            CHECKF(st == 200 && same_ids(ids, n, lib, nl) && jnum(j, "count") == nl &&
                       jnum(j, "max_model_len") == 128 && !jget(j, "token_strs"),
                   "vLLM tokenize '%s' add %d: %d ids, library %d", texts[t], add, n, nl);
            cJSON_Delete(j);
        }
    /* token_strs: each id's piece, as llama-server's with_pieces gives it */
    int st, st2;
    cJSON *j = vllm_tokenize(sv, texts[0], 0, ",\"return_token_strs\":true", &st);
    char *body = tok_body(texts[0], 0, 1, 1);
    cJSON *l = call(sv, "/tokenize", body, &st2);
    free(body);
    const cJSON *strs = jget(j, "token_strs"), *pieces = jget(l, "tokens");
    bool same = st == 200 && st2 == 200 && cJSON_IsArray(strs) &&
                cJSON_GetArraySize(strs) == cJSON_GetArraySize(pieces) &&
                cJSON_GetArraySize(strs) > 1;
    const cJSON *a = strs ? strs->child : NULL, *b = pieces ? pieces->child : NULL;
    for (; same && a && b; a = a->next, b = b->next)
        same = cJSON_IsString(a) && jstr(b, "piece") && !strcmp(a->valuestring, jstr(b, "piece"));
    CHECKF(same, "token_strs are the pieces");
    cJSON_Delete(j);
    cJSON_Delete(l);

    /* messages: the ids the chat evaluates (its usage, and /apply-template's prompt tokenized) */
    static const char chat[] = "\"messages\":[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]";
    char req[512];
    snprintf(req, sizeof req, "{%s,\"add_generation_prompt\":true}", chat);
    j = call(sv, "/tokenize", req, &st);
    char *prompt = check_template(sv, "vLLM chat", chat);
    int32_t ids[MAX_IDS], lib[MAX_IDS];
    const int n = reply_ids(j, ids), nl = lib_tokenize(prompt, true, true, lib);
    CHECKF(st == 200 && same_ids(ids, n, lib, nl) && jnum(j, "count") == nl,
           "vLLM chat tokenize: %d ids, the chat's %d", n, nl);
    free(prompt);
    cJSON_Delete(j);

    /* /detokenize says "prompt" too */
    j = call(sv, "/detokenize", "{\"tokens\":[1,2,3]}", &st);
    CHECK(st == 200 && jstr(j, "prompt") && jstr(j, "content") &&
          !strcmp(jstr(j, "prompt"), jstr(j, "content")));
    cJSON_Delete(j);

    /* /tokenizer_info */
    j = call(sv, "/tokenizer_info", NULL, &st);
    char *bos = eng_token_text(model, hearth_token_bos(model)),
         *eos = eng_token_text(model, hearth_token_eos(model));
    CHECKF(st == 200 && jstr(j, "bos_token") && !strcmp(jstr(j, "bos_token"), bos) &&
               jstr(j, "eos_token") && !strcmp(jstr(j, "eos_token"), eos),
           "tokenizer_info: %d, bos %s, eos %s", st, jstr(j, "bos_token"), jstr(j, "eos_token"));
    free(bos);
    free(eos);
    CHECK(jnum(j, "model_max_length") == 128 &&
          jnum(j, "vocab_size") == hearth_model_n_vocab(model));
    CHECK(cJSON_IsBool(jget(j, "add_bos_token")) && jstr(j, "chat_template") &&
          !jstr(j, "chat_template")[0]); /* the ChatML fallback has no text */
    int32_t one[4];
    CHECK(cJSON_IsTrue(jget(j, "add_bos_token")) ==
          (lib_tokenize("x", true, true, one) > lib_tokenize("x", false, true, lib)));
    cJSON_Delete(j);

    check_error("vLLM prompt a number", sv, "POST", "/tokenize", "{\"prompt\":5}", 400, "prompt");
    check_error("vLLM add_special_tokens", sv, "POST", "/tokenize",
                "{\"prompt\":\"x\",\"add_special_tokens\":1}", 400, "add_special_tokens");
    check_error("vLLM return_token_strs", sv, "POST", "/tokenize",
                "{\"prompt\":\"x\",\"return_token_strs\":\"yes\"}", 400, "return_token_strs");
    check_error("vLLM chat, bad messages", sv, "POST", "/tokenize", "{\"messages\":[]}", 400,
                "messages");
    check_error("POST /tokenizer_info", sv, "POST", "/tokenizer_info", "{}", 405, NULL);
}

/* ---- /props ------------------------------------------------------------------ */

static void test_props(test_server *sv, const char *model_path) {
    int st;
    cJSON *j = call(sv, "/props", NULL, &st);
    CHECKF(st == 200, "props: %d", st);
    CHECKF(jnum(j, "default_generation_settings.n_ctx") == 128, "n_ctx %g",
           jnum(j, "default_generation_settings.n_ctx"));
    CHECKF(jnum(j, "total_slots") == 2, "total_slots %g", jnum(j, "total_slots"));
    CHECKF(jstr(j, "model_path") && !strcmp(jstr(j, "model_path"), model_path), "model_path %s",
           jstr(j, "model_path"));
    /* no template in the model: the ChatML fallback, which has no text */
    CHECKF(jstr(j, "chat_template") && !jstr(j, "chat_template")[0], "chat_template");
    CHECKF(jstr(j, "chat_template_name") && !strcmp(jstr(j, "chat_template_name"), "chatml"),
           "chat_template_name %s", jstr(j, "chat_template_name"));
    char *bos = eng_token_text(model, hearth_token_bos(model)),
         *eos = eng_token_text(model, hearth_token_eos(model));
    CHECKF(jstr(j, "bos_token") && !strcmp(jstr(j, "bos_token"), bos), "bos_token %s, not %s",
           jstr(j, "bos_token"), bos);
    CHECKF(jstr(j, "eos_token") && !strcmp(jstr(j, "eos_token"), eos), "eos_token %s, not %s",
           jstr(j, "eos_token"), eos);
    free(bos);
    free(eos);
    CHECKF(jstr(j, "build_info") && !strncmp(jstr(j, "build_info"), "hearth-", 7), "build_info");
    /* the chat defaults documented in docs/server.md: OpenAI's */
    const char *const one[] = {"temperature", "top_p", "repeat_penalty"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "default_generation_settings.params.%s", one[i]);
        CHECKF(jnum(j, path) == 1, "%s = %g", one[i], jnum(j, path));
    }
    CHECK(jnum(j, "default_generation_settings.params.top_k") == 0);
    CHECK(jnum(j, "default_generation_settings.params.min_p") == 0);
    CHECK(jnum(j, "default_generation_settings.params.n_predict") == -1);
    CHECK(jnum(j, "default_generation_settings.params.seed") == 4294967295.0);
    CHECK(cJSON_IsFalse(jget(j, "modalities.vision")));
    cJSON_Delete(j);
    check_error("POST /props", sv, "POST", "/props", "{}", 405, NULL);
}

/* A model whose template prints BOS (Llama 3.1): /props shows its text, and
 * /apply-template's prompt leaves the BOS text out, as the chat's tokenizing
 * does (the tokenizer adds BOS). */
static void test_model_template(const char *model_path) {
    char with[700];
    snprintf(with, sizeof with, "%s/llama31.gguf", scratch);
    REQUIRE(fixture_with_template(model_path, with, TMPL_LLAMA31) == HEARTH_OK);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, with, scratch, "-t 1 --ctx 256 --api-key sekrit"));
    int st;
    cJSON *j = call(&sv, "/props", NULL, &st);
    CHECKF(st == 200 && jstr(j, "chat_template") && !strcmp(jstr(j, "chat_template"), TMPL_LLAMA31),
           "the model's template text");
    CHECKF(jstr(j, "chat_template_name") && !strcmp(jstr(j, "chat_template_name"), "llama3.1"),
           "name %s", jstr(j, "chat_template_name"));
    cJSON_Delete(j);
    char *p =
        check_template(&sv, "llama3.1", "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]");
    char *bos = eng_token_text(model, hearth_token_bos(model));
    CHECKF(!strncmp(p, "<|start_header_id|>system<|end_header_id|>\n\n", 44),
           "llama3.1 prompt without the BOS text '%s': %.80s", bos, p);
    free(bos);
    free(p);
    CHECK(test_server_stop(&sv) == 0);
}

/* ---- auth, metrics, concurrency ------------------------------------------------- */

static void test_auth(test_server *sv) {
    static const char *const routes[][3] = {
        {"POST", "/tokenize", "{\"content\":\"a\"}"},
        {"POST", "/detokenize", "{\"tokens\":[1]}"},
        {"POST", "/apply-template", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}"},
        {"GET", "/props", NULL}};
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 3; k++) {
            const char *hdr = k == 0 ? NULL : k == 1 ? "-H 'Authorization: Bearer wrong'" : key;
            test_reply r = test_http(sv, routes[i][0], routes[i][1], routes[i][2], hdr);
            cJSON *j = cJSON_ParseWithLength(r.body, r.len);
            if (k < 2)
                CHECKF(r.status == 401 && jstr(j, "error.type") &&
                           !strcmp(jstr(j, "error.type"), "authentication_error"),
                       "%s %s key %d: %d %.200s", routes[i][0], routes[i][1], k, r.status, r.body);
            else
                CHECKF(r.status == 200, "%s with the key: %d %.200s", routes[i][1], r.status,
                       r.body);
            cJSON_Delete(j);
            free(r.body);
        }
    }
    test_reply r = test_http(sv, "GET", "/metrics", NULL, NULL);
    CHECKF(strstr(r.body, "hearth_requests_total{route=\"/tokenize\",status=\"200\"}") &&
               strstr(r.body, "hearth_requests_total{route=\"/detokenize\",status=\"400\"}") &&
               strstr(r.body, "hearth_requests_total{route=\"/apply-template\",status=\"200\"}") &&
               strstr(r.body, "hearth_requests_total{route=\"/props\",status=\"401\"}"),
           "metrics by route: %.2000s", r.body);
    free(r.body);
}

/* Tokenizing on several connections while both slots generate: each
 * answer is still the library's (run under TSan, the server shows no race
 * between the connections' tokenizer and the scheduler). */
static void test_concurrent(test_server *sv) {
    enum { N = 8 };
    char *cmd = malloc(N * 4200 + 64), *bodies[N];
    REQUIRE(cmd);
    size_t o = 0;
    const int base = sv->seq;
    sv->seq += N;
    for (int i = 0; i < N; i++) {
        char one[4096];
        bodies[i] = i % 2 ? tok_body(texts[i % N_TEXTS], 1, 1, 1)
                          : strdup("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                                   "\"max_tokens\":40}");
        test_curl_cmd(sv, one, sizeof one, "POST", i % 2 ? "/tokenize" : "/v1/chat/completions",
                      bodies[i], strlen(bodies[i]), key, base + i);
        o += (size_t)snprintf(cmd + o, N * 4200 + 64 - o, "%s & ", one);
    }
    snprintf(cmd + o, N * 4200 + 64 - o, "wait");
    CHECK(system(cmd) == 0);
    free(cmd);
    for (int i = 0; i < N; i++) {
        test_reply r = test_collect(sv, base + i);
        CHECKF(r.status == 200, "concurrent %d: %d %.200s", i, r.status, r.body);
        if (i % 2) {
            cJSON *j = cJSON_ParseWithLength(r.body, r.len);
            int32_t ids[MAX_IDS], lib[MAX_IDS];
            const int n = reply_ids(j, ids), nl = lib_tokenize(texts[i % N_TEXTS], true, true, lib);
            CHECKF(same_ids(ids, n, lib, nl), "concurrent %d: ids differ", i);
            cJSON_Delete(j);
        }
        free(r.body);
        free(bodies[i]);
    }
}

/* One slot and no queue: while a long generation holds the slot, /tokenize
 * and /detokenize answer at once (a generation request is refused then, so
 * the slot was indeed busy), and the generation is still running after they
 * returned. */
static void test_busy_slot(const char *model_path) {
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 1 --queue 0 -t 1 --ctx 4096"));
    char req[600], lb[512];
    snprintf(req, sizeof req, "%s/long_body", scratch);
    /* long enough to outlast the checks in a release build: the end of
     * generation banned, 4000 tokens */
    snprintf(lb, sizeof lb,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about the sea.\"}],"
             "\"max_tokens\":4000,\"stream\":true,\"temperature\":0,"
             "\"logit_bias\":{\"%d\":-100}}",
             (int)hearth_token_eos(model));
    REQUIRE(test_write_file(req, lb, strlen(lb)));
    bool conclusive = false;
    for (int attempt = 0; attempt < 5 && !conclusive; attempt++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "curl -s -N --data-binary '@%s' http://127.0.0.1:%d/v1/chat/completions", req,
                 sv.port);
        FILE *stream = popen(cmd, "r");
        REQUIRE(stream);
        CHECK(fgetc(stream) != EOF); /* the first chunk has come: the slot is busy */
        test_reply t = test_http(&sv, "POST", "/tokenize", "{\"content\":\"Hello world\"}", NULL);
        test_reply d = test_http(&sv, "POST", "/detokenize", "{\"tokens\":[5,6]}", NULL);
        const long busy = test_metric(&sv, "hearth_slots_busy");
        test_reply g =
            test_http(&sv, "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1}", NULL);
        const long still = test_metric(&sv, "hearth_slots_busy");
        CHECKF(t.status == 200 && d.status == 200, "while generating: %d %d", t.status, d.status);
        conclusive = busy == 1 && still == 1 && g.status == 503;
        if (!conclusive)
            printf("busy slot: attempt %d inconclusive (busy %ld/%ld, completion %d)\n", attempt,
                   busy, still, g.status);
        free(t.body);
        free(d.body);
        free(g.body);
        char buf[4096];
        while (fread(buf, 1, sizeof buf, stream) > 0) {
        }
        pclose(stream);
    }
    CHECKF(conclusive, "no attempt saw /tokenize answered while the slot generated");
    CHECK(test_server_stop(&sv) == 0);
}

/* /tokenize on llama.cpp's own results: stories260K's golden prompts
 * (tokenized by llama.cpp with BOS) and its server README's example, "á"
 * as two byte tokens whose pieces come as byte lists. */
static void test_golden(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/conformance/stories260K/stories260K.F32.gguf",
             HEARTH_SHARED_DIR);
    if (access(path, R_OK) != 0) {
        printf("test_server_util: %s is absent; skipping the golden ids\n", path);
        return;
    }
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, path, scratch, "-t 1 --api-key sekrit"));
    static const char *const goldens[] = {"F32.json", "F32.story.json"};
    for (int g = 0; g < 2; g++) {
        snprintf(path, sizeof path, "%s/conformance/stories260K/golden/%s", HEARTH_SHARED_DIR,
                 goldens[g]);
        char *text = test_read_file(path, NULL);
        cJSON *gj = cJSON_Parse(text);
        free(text);
        const char *prompt = jstr(gj, "prompt");
        const cJSON *want = jget(gj, "prompt_ids");
        REQUIRE(prompt && cJSON_IsArray(want));
        char *body = tok_body(prompt, 1, -1, -1);
        int st;
        cJSON *j = call(&sv, "/tokenize", body, &st);
        free(body);
        int32_t ids[MAX_IDS], w[MAX_IDS];
        int nw = 0;
        for (const cJSON *v = want->child; v && nw < MAX_IDS; v = v->next)
            w[nw++] = (int32_t)v->valuedouble;
        const int n = reply_ids(j, ids);
        CHECKF(st == 200 && same_ids(ids, n, w, nw), "%s: /tokenize differs from llama.cpp's ids",
               goldens[g]);
        cJSON_Delete(j);
        cJSON_Delete(gj);
    }
    /* the README shows [198: [195], 164: [161]]; llama.cpp's tokenizer puts
     * the vocabulary's space prefix ("\u2581", piece " ") first, as the
     * golden ids above do, and so does Hearth */
    int st;
    cJSON *j = call(&sv, "/tokenize", "{\"content\":\"\xc3\xa1\",\"with_pieces\":true}", &st);
    char *got = cJSON_PrintUnformatted(jget(j, "tokens"));
    const char *readme = "{\"id\":198,\"piece\":[195]},{\"id\":164,\"piece\":[161]}]";
    const size_t n_got = got ? strlen(got) : 0, n_readme = strlen(readme);
    CHECKF(n_got > n_readme && !strcmp(got + n_got - n_readme, readme) &&
               !strncmp(got, "[{\"id\":", 7) && strstr(got, "\"piece\":\" \"},") &&
               cJSON_GetArraySize(jget(j, "tokens")) == 3,
           "llama.cpp's README example: %s", got ? got : "(none)");
    free(got);
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
}

int main(void) {
    bool skip;
    const char *model_path = fixture_server_model("test_server_util", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model_path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(model_path, &mp, &model) == HEARTH_OK);

    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model_path, scratch,
                              "--parallel 2 -t 1 --ctx 128 --api-key sekrit --max-body 1048576"));
    test_tokenize(&sv);
    test_tokenize_errors(&sv);
    test_detokenize(&sv);
    test_apply_template(&sv);
    test_props(&sv, model_path);
    test_vllm(&sv);
    test_auth(&sv);
    test_concurrent(&sv);
    CHECK(test_server_stop(&sv) == 0);

    test_model_template(model_path);
    test_busy_slot(model_path);
    test_golden();
    hearth_model_free(model);
    fixture_server_cleanup("test_server_util", scratch, test_failures > 0);
    return test_done("test_server_util");
}
