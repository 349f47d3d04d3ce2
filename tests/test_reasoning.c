/*
 * test_reasoning.c - reasoning models: the <think> splitter against a
 * whole-text reference at every way of cutting the reply into pieces, the
 * sampler's thinking budget, Qwen 3's templates with thinking off and
 * opened, and `hearth serve` end to end on every API (a GBNF grammar makes
 * the model write a reasoning block; a vocabulary given <think> and
 * </think> tokens lets the budget force the block's end).
 */
#include "test.h"

#include "model/gguf.h"
#include "sampling/sampling.h"
#include "server/json_path.h"
#include "server/model_fixture.h"
#include "server/server.h"
#include "server/typed_sse.h"
#include "tokenizer/chat_template.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_reasoning_XXXXXX";

/* ---- the splitter ------------------------------------------------------------ */

static bool space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* What the reply means, from the whole text: a block at the start (after
 * white space; from the start when open) up to the first </think>, white
 * space around the tags dropped; no block: all of it is the content. */
static void reference(const char *s, bool open, char *reason, char *content) {
    reason[0] = content[0] = '\0';
    const char *p = s;
    while (!open && space(*p)) p++;
    /* the splitter holds at most ENG_THINK_HOLD bytes: a block opens after
     * at most that less the tag's length of white space */
    if (!open && (strncmp(p, "<think>", 7) || p - s > ENG_THINK_HOLD - 8)) {
        strcpy(content, s);
        return;
    }
    if (!open) p += 7;
    while (space(*p)) p++;
    const char *end = strstr(p, "</think>");
    if (!end) {
        strcpy(reason, p);
        return;
    }
    const char *r = end;
    while (r > p && space(r[-1])) r--;
    snprintf(reason, 256, "%.*s", (int)(r - p), p);
    p = end + 8;
    while (space(*p)) p++;
    strcpy(content, p);
}

/* s fed in pieces cut at `cuts` (a bit per byte boundary). */
static void split(const char *s, bool open, unsigned cuts, char *reason, char *content) {
    eng_think t;
    eng_think_init(&t, open);
    char r[512] = "", c[512] = "";
    eng_think_out o = {.reason = r, .content = c};
    const size_t n = strlen(s);
    size_t from = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i == n || (i < 32 && cuts >> i & 1)) {
            eng_think_feed(&t, s + from, i - from, &o);
            from = i;
        }
    }
    eng_think_finish(&t, &o);
    snprintf(reason, 256, "%.*s", (int)o.n_reason, r);
    snprintf(content, 256, "%.*s", (int)o.n_content, c);
}

/* text split at every single cut, every pair of cuts (bits 1..31), and
 * byte by byte gives want_r and want_c; returns the cuts tried. */
static int split_all(const char *text, bool open, const char *want_r, const char *want_c) {
    char got_r[256], got_c[256];
    const size_t n = strlen(text);
    int tried = 0;
    for (unsigned a = 0; a < 32 && a < n; a++) {
        for (unsigned b = a; b < 32 && b < n; b++, tried++) {
            split(text, open, (1u << a | 1u << b) & ~1u, got_r, got_c);
            CHECKF(!strcmp(got_r, want_r) && !strcmp(got_c, want_c),
                   "'%s' cut at %u,%u: reasoning '%s' content '%s' (want '%s' '%s')", text, a, b,
                   got_r, got_c, want_r, want_c);
        }
    }
    split(text, open, ~0u, got_r, got_c);
    CHECKF(!strcmp(got_r, want_r) && !strcmp(got_c, want_c), "'%s' byte by byte", text);
    return tried;
}

static void splitter(void) {
    static const struct {
        const char *text;
        bool open;
    } cases[] = {
        {"plain answer", false},
        {"<think>\nI reason.\n</think>\n\nThe answer.", false},
        {"  \n<think>a b</think>c", false},
        {"<think></think>\n\nonly the answer", false},
        {"<think>a</thin b </th</think>c</think>d", false},
        {"<think>cut off while thinking  ", false},
        {"<thinking>is not the tag", false},
        {"<thi", false},
        {"answer with <think>later</think> inside", false},
        {"I reason.\n</think>\n\nThe answer.", true},
        {"\n\nstill thinking", true},
        {"</think>at once", true},
        {"                        <think>x</think>y", false},  /* the longest lead */
        {"                         <think>x</think>y", false}, /* too long: content */
        /* white space before the tag is held back up to ENG_THINK_HOLD bytes */
        {"<think>x                  \n</think>y", false},
    };
    int n_cases = 0;
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char want_r[256], want_c[256];
        reference(cases[k].text, cases[k].open, want_r, want_c);
        n_cases += split_all(cases[k].text, cases[k].open, want_r, want_c);
    }
    CHECK(n_cases > 1000);
}

/* Gemma 4's thought channel, <|channel>thought ... <channel|>, and Mistral's
 * [THINK] ... [/THINK] (Ministral 3 Reasoning, Magistral): split as <think>
 * blocks are (white space around the tags dropped), whichever way the reply
 * is cut into pieces; no pair closes another's block. */
static void other_pairs_splitter(void) {
    static const struct {
        const char *text, *reason, *content;
    } cases[] = {
        {"<|channel>thought\nI reason.\n<channel|>The answer.", "I reason.", "The answer."},
        {"<|channel>thought\n<channel|>only the answer", "", "only the answer"},
        {" \n<|channel>thought\ncut off  ", "cut off  ", ""},
        {"<|chan", "", "<|chan"},
        {"<|channel>other", "", "<|channel>other"},
        {"answer <|channel>thought\nx<channel|>", "", "answer <|channel>thought\nx<channel|>"},
        {"<|channel>thought\na</think>b<channel|>\n\nc", "a</think>b", "c"},
        {"<think>a<channel|>b</think>c", "a<channel|>b", "c"},
        {"[THINK]Let me see: 2 + 2.[/THINK]4", "Let me see: 2 + 2.", "4"},
        {" [THINK]\na\n[/THINK]\n\nb", "a", "b"},
        {"[THINK][/THINK]only the answer", "", "only the answer"},
        {"[THINK]cut off", "cut off", ""},
        {"[THIN", "", "[THIN"},
        {"[THINKING]x", "", "[THINKING]x"},
        {"answer [THINK]x[/THINK]", "", "answer [THINK]x[/THINK]"},
        {"[THINK]a</think>b<channel|>c[/THINK]d", "a</think>b<channel|>c", "d"},
        {"<think>a[/THINK]b</think>c", "a[/THINK]b", "c"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        split_all(cases[k].text, false, cases[k].reason, cases[k].content);
}

/* ---- the budget in the sampler ------------------------------------------------ */

/* Greedy draws over logits favouring token 2 (then 3, ...), 7 last: the
 * thinking block opens with 5 and closes with 7, which greedy never picks by
 * itself. Returns how many tokens after `open_at` were drawn before 7. */
static int budget_run(int budget, bool open) {
    enum { V = 8 };
    float logits[V] = {0, 0, 9, 8, 1, 0.5f, 0.2f, -9};
    smp_params p = smp_default_params();
    p.temperature = 0;
    p.think_on = true;
    p.think_budget = budget;
    p.think_start = 5;
    p.think_end = 7;
    p.think_open = open;
    smp_sampler *s = NULL;
    REQUIRE(smp_new(V, &p, &s) == HEARTH_OK);
    int before = -1;
    for (int step = 0; step < 40 && before < 0; step++) {
        const int32_t id = step == 0 && !open ? 5 : smp_sample(s, logits);
        REQUIRE(id >= 0);
        if (id == 7) before = step - (open ? 0 : 1);
        CHECK(smp_advance(s, id) == HEARTH_OK);
    }
    /* after the block, greedy again: never 7 */
    CHECK(smp_sample(s, logits) == 2);
    smp_free(s);
    return before;
}

static void budget(void) {
    CHECK(budget_run(3, false) == 3);
    CHECK(budget_run(0, false) == 0);
    CHECK(budget_run(5, true) == 5);
    CHECK(budget_run(0, true) == 0);
    smp_params p = smp_default_params();
    p.think_on = true;
    p.think_end = 7;
    p.constraint = SMP_CONSTRAINT_JSON_OBJECT;
    smp_sampler *s = NULL;
    CHECK(smp_new(8, &p, &s) == HEARTH_ERR_INVALID_ARG); /* beside a constraint */
}

/* ---- templates ----------------------------------------------------------------- */

static char *render(const tok_chat_template *t, bool no_thinking) {
    const tok_chat_msg m = {TOK_CHAT_USER, "Hi", 2};
    const tok_chat_opts o = {.add_generation_prompt = true, .no_thinking = no_thinking};
    char *text = NULL;
    size_t len;
    CHECK(tok_chat_render(t, &m, 1, &o, &text, &len) == HEARTH_OK);
    return text;
}

/* DeepSeek-R1 distills: system text first, an earlier answer without its
 * reasoning (the template's content.split('</think>')[-1], unstripped). */
static void deepseek(void) {
    static const char tmpl[] =
        "{{bos_token}}{{ns.system_prompt}}{%- if message['role'] == 'user' %}{{'<｜User｜>' + "
        "message['content']}}{%- endif %}{{'<｜Assistant｜>' + content + "
        "'<｜end▁of▁sentence｜>'}}{% if add_generation_prompt and not ns.is_tool "
        "%}{{'<｜Assistant｜><think>\\n'}}{% endif %}";
    tok_chat_template t;
    REQUIRE(tok_chat_detect(tmpl, strlen(tmpl), &t) == HEARTH_OK);
    CHECK(t.family == TOK_CHAT_DEEPSEEK && t.bos && t.think && t.think_open);
    const tok_chat_msg m[] = {{TOK_CHAT_SYSTEM, "Be brief.", 9},
                              {TOK_CHAT_USER, "q1", 2},
                              {TOK_CHAT_ASSISTANT, "<think>\nr\n</think>\n\nA1", 22},
                              {TOK_CHAT_USER, "q2", 2}};
    const tok_chat_opts o = {.bos = "<s>", .add_generation_prompt = true};
    char *text = NULL;
    size_t len;
    CHECK(tok_chat_render(&t, m, 4, &o, &text, &len) == HEARTH_OK);
    CHECKF(text && !strcmp(text, "<s>Be brief.<｜User｜>q1<｜Assistant｜>\n\nA1"
                                 "<｜end▁of▁sentence｜><｜User｜>q2<｜Assistant｜><think>\n"),
           "deepseek-r1: %s", text ? text : "(null)");
    free(text);
    tok_chat_template named;
    CHECK(tok_chat_named("deepseek-r1", &named) == HEARTH_OK && named.think_open);
}

static void templates(void) {
    tok_chat_template t;
    REQUIRE(tok_chat_named("qwen3", &t) == HEARTH_OK);
    char *on = render(&t, false), *off = render(&t, true);
    CHECK(on && !strcmp(on, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    CHECK(off && !strcmp(off, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                              "<think>\n\n</think>\n\n"));
    free(on);
    free(off);
    REQUIRE(tok_chat_named("qwen3-thinking", &t) == HEARTH_OK);
    on = render(&t, true); /* Thinking-2507 cannot turn it off */
    CHECK(on && !strcmp(on, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"));
    free(on);
    /* recognized from the Jinja text: the generation prompt that opens the
     * block (QwQ, Thinking-2507) and the switch (Qwen 3) */
    static const char open_tmpl[] =
        "{%- set ns = namespace(last_query_index=messages|length - 1) %}{{ '</think>' }}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}";
    CHECK(tok_chat_detect(open_tmpl, strlen(open_tmpl), &t) == HEARTH_OK);
    CHECK(t.think && t.think_open && !t.think_toggle && !strcmp(t.name, "qwen3-thinking"));
    static const char toggle_tmpl[] =
        "{{- '<|im_start|>' }}{%- set ns = namespace(last_query_index=messages|length - 1) %}"
        "{{ '</think>' }}{%- if enable_thinking is defined and enable_thinking is false %}"
        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}";
    CHECK(tok_chat_detect(toggle_tmpl, strlen(toggle_tmpl), &t) == HEARTH_OK);
    CHECK(t.think && !t.think_open && t.think_toggle && !strcmp(t.name, "qwen3"));
    deepseek();
}

/* ---- the server ------------------------------------------------------------------ */

/* A copy of src whose last two tokens are <think> and </think> (user-defined,
 * as Qwen 3's are), so that the budget can force the block's end. */
static bool with_think_tokens(const char *src, const char *dst) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    gguf_arr toks, types;
    bool ok = gguf_open(src, &f) == HEARTH_OK && gguf_writer_new(&w) == HEARTH_OK &&
              gguf_writer_copy_kv(w, f) == HEARTH_OK &&
              gguf_get_arr(f, "tokenizer.ggml.tokens", &toks) &&
              gguf_get_arr(f, "tokenizer.ggml.token_type", &types);
    const uint64_t n = ok ? toks.n : 0;
    char **text = calloc(n ? n : 1, sizeof *text);
    int32_t *type = calloc(n ? n : 1, sizeof *type);
    ok = ok && text && type && n > 2;
    for (uint64_t i = 0; ok && i < n; i++) {
        const gguf_str s = gguf_arr_str(&toks, i);
        text[i] = i == n - 2   ? strdup("<think>")
                  : i == n - 1 ? strdup("</think>")
                               : strndup(s.ptr, s.len);
        type[i] = i >= n - 2 ? 4 : (int32_t)gguf_arr_int(&types, i);
        ok = text[i] != NULL;
    }
    ok = ok &&
         gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)text, n) ==
             HEARTH_OK &&
         gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, type, n) == HEARTH_OK;
    for (int64_t i = 0; ok && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        ok = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes) ==
             HEARTH_OK;
    }
    ok = ok && gguf_writer_write(w, dst) == HEARTH_OK;
    for (uint64_t i = 0; text && i < n; i++) free(text[i]);
    free(text);
    free(type);
    gguf_writer_free(w);
    gguf_close(f);
    return ok;
}

static const char grammar[] =
    "root ::= \\\"<think>\\\\nI reason.\\\\n</think>\\\\n\\\\nThe answer.\\\"";
static const char chat_body[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":60,"
    "\"grammar\":\"%s\"%s}";

static cJSON *chat(test_server *sv, const char *extra, int *status) {
    char body[1024];
    snprintf(body, sizeof body, chat_body, grammar, extra);
    return post(sv, "/v1/chat/completions", body, status);
}

static test_reply stream(test_server *sv, const char *path, const char *body) {
    return test_http(sv, "POST", path, body, NULL);
}

/* The OpenAI chat API, whole and streamed, and reasoning_format none. */
static void openai(test_server *sv) {
    int st;
    cJSON *j = chat(sv, "", &st);
    CHECK(st == 200);
    CHECK(jstr(j, "choices.0.message.reasoning_content") &&
          !strcmp(jstr(j, "choices.0.message.reasoning_content"), "I reason."));
    CHECK(jstr(j, "choices.0.message.content") &&
          !strcmp(jstr(j, "choices.0.message.content"), "The answer."));
    cJSON_Delete(j);
    j = chat(sv, ",\"reasoning_format\":\"none\"", &st);
    CHECK(jstr(j, "choices.0.message.content") &&
          !strcmp(jstr(j, "choices.0.message.content"),
                  "<think>\nI reason.\n</think>\n\nThe answer."));
    CHECK(!jget(j, "choices.0.message.reasoning_content"));
    cJSON_Delete(j);
    char body[1024];
    snprintf(body, sizeof body, chat_body, grammar, ",\"stream\":true");
    test_reply r = stream(sv, "/v1/chat/completions", body);
    char reason[256] = "", content[256] = "";
    bool content_first = false;
    for (const char *p = r.body; p && (p = strstr(p, "data: {")); p += 6) {
        const char *end = strstr(p, "\n\n");
        cJSON *c = end ? cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6)) : NULL;
        const char *rc = jstr(c, "choices.0.delta.reasoning_content"),
                   *cc = jstr(c, "choices.0.delta.content");
        if (rc) {
            content_first |= content[0] != '\0';
            strncat(reason, rc, sizeof reason - strlen(reason) - 1);
        }
        if (cc) strncat(content, cc, sizeof content - strlen(content) - 1);
        cJSON_Delete(c);
    }
    CHECKF(!strcmp(reason, "I reason.") && !strcmp(content, "The answer.") && !content_first,
           "stream: reasoning '%s' content '%s'", reason, content);
    free(r.body);
}

/* Thinking switched off by each API's field, and what is refused. */
static void switches(test_server *sv) {
    int st;
    cJSON *j;
    /* enable_thinking false renders the empty block */
    test_reply r = stream(sv, "/apply-template",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                          "\"chat_template_kwargs\":{\"enable_thinking\":false}}");
    CHECKF(r.status == 200 && strstr(r.body, "<think>\\n\\n</think>\\n\\n"),
           "apply-template with thinking off: %.300s", r.body);
    free(r.body);
    r = stream(sv, "/apply-template",
               "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"reasoning_effort\":"
               "\"none\"}");
    CHECK(r.status == 200 && strstr(r.body, "</think>"));
    free(r.body);
    r = stream(sv, "/apply-template", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    CHECK(r.status == 200 && !strstr(r.body, "</think>"));
    free(r.body);
    static const char *const bad[][2] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"reasoning_format\":\"x\"}",
         "reasoning_format"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"chat_template_kwargs\":{"
         "\"enable_thinking\":1}}",
         "chat_template_kwargs.enable_thinking"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"thinking_budget_tokens\":-2}",
         "thinking_budget_tokens"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = post(sv, "/v1/chat/completions", bad[i][0], &st);
        CHECKF(st == 400 && jstr(j, "error.param") && !strcmp(jstr(j, "error.param"), bad[i][1]),
               "bad request %zu: %d", i, st);
        cJSON_Delete(j);
    }
    j = post(sv, "/api/chat",
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
             "\"think\":\"high\"}",
             &st);
    CHECK(st == 400);
    cJSON_Delete(j);
}

/* The budget: with a template that opens the block, greedy, the block ends
 * after exactly N tokens (the next token is </think>). */
static void budgets(test_server *sv) {
    for (int n = 0; n <= 4; n += 4) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                 "\"max_tokens\":12,\"temperature\":0,\"logprobs\":true,"
                 "\"thinking_budget_tokens\":%d}",
                 n);
        int st;
        cJSON *j = post(sv, "/v1/chat/completions", body, &st);
        char path[64];
        snprintf(path, sizeof path, "choices.0.logprobs.content.%d.token", n);
        CHECKF(st == 200 && jstr(j, path) && !strcmp(jstr(j, path), "</think>"),
               "budget %d: token %d is '%s'", n, n, jstr(j, path) ? jstr(j, path) : "(none)");
        cJSON_Delete(j);
    }
}

/* ollama's thinking, Anthropic's thinking block and the Responses API's
 * reasoning item, from the server's budget of 2 on the opened block: two
 * tokens of thinking, then </think>, then the answer. */
static void typed(test_server *sv) {
    int st;
    cJSON *j = post(sv, "/api/chat",
                    "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":8,"
                    "\"temperature\":0},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                    &st);
    CHECK(st == 200 && jstr(j, "message.thinking") && jstr(j, "message.content"));
    cJSON_Delete(j);
    j = post(sv, "/api/show", "{\"model\":\"m\"}", &st);
    CHECK(st == 200 && jstr(j, "capabilities.1") && !strcmp(jstr(j, "capabilities.1"), "thinking"));
    cJSON_Delete(j);
    test_reply r = stream(sv, "/api/chat",
                          "{\"model\":\"m\",\"options\":{\"num_predict\":8,\"temperature\":0},"
                          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    CHECKF(r.status == 200 && strstr(r.body, "\"thinking\":"), "ollama stream: %.300s", r.body);
    free(r.body);
    j = post(sv, "/v1/messages",
             "{\"model\":\"m\",\"max_tokens\":8,\"temperature\":0,\"thinking\":{\"type\":"
             "\"enabled\",\"budget_tokens\":2},\"messages\":[{\"role\":\"user\",\"content\":"
             "\"hi\"}]}",
             &st);
    CHECK(st == 200 && jstr(j, "content.0.type") && !strcmp(jstr(j, "content.0.type"), "thinking"));
    CHECK(jstr(j, "content.0.signature") && jstr(j, "content.1.type") &&
          !strcmp(jstr(j, "content.1.type"), "text"));
    cJSON_Delete(j);
    r = stream(sv, "/v1/messages",
               "{\"model\":\"m\",\"max_tokens\":8,\"temperature\":0,\"stream\":true,"
               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    const char *p = r.body;
    char type[96];
    bool agrees, all = true, thinking_delta = false, signature = false, text_after = false;
    cJSON *e;
    while (typed_sse_next(&p, type, sizeof type, &e, &agrees)) {
        all &= agrees;
        const char *dt = jstr(e, "delta.type");
        if (dt && !strcmp(dt, "thinking_delta")) thinking_delta = true;
        if (dt && !strcmp(dt, "signature_delta")) signature = !text_after;
        if (dt && !strcmp(dt, "text_delta")) text_after = signature;
        cJSON_Delete(e);
    }
    CHECKF(all && thinking_delta && signature && text_after, "anthropic stream: %.400s", r.body);
    free(r.body);
    j = post(sv, "/v1/responses",
             "{\"model\":\"m\",\"input\":\"hi\",\"max_output_tokens\":8,\"temperature\":0}", &st);
    CHECK(st == 200 && jstr(j, "output.0.type") && !strcmp(jstr(j, "output.0.type"), "reasoning"));
    CHECK(jstr(j, "output.0.content.0.type") &&
          !strcmp(jstr(j, "output.0.content.0.type"), "reasoning_text"));
    CHECK(jstr(j, "output.1.type") && !strcmp(jstr(j, "output.1.type"), "message"));
    CHECK(jnum(j, "usage.output_tokens_details.reasoning_tokens") == 3); /* 2 + </think> */
    cJSON_Delete(j);
    /* and the chat API's usage, OpenAI's field */
    j = post(sv, "/v1/chat/completions",
             "{\"model\":\"m\",\"max_tokens\":8,\"temperature\":0,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"hi\"}]}",
             &st);
    CHECK(st == 200 && jnum(j, "usage.completion_tokens_details.reasoning_tokens") == 3);
    cJSON_Delete(j);
}

/* `hearth chat` shows the block as ollama does, or hides it; the budget
 * needs the tags' tokens. */
static void chat_cli(const char *think_model, const char *plain_model) {
    static const struct {
        const char *model_args;
        bool plain, shown, fails;
    } runs[] = {
        {"--chat-template qwen3-thinking --reasoning-budget 2", false, true, false},
        {"--chat-template qwen3-thinking --reasoning-budget 2 --hide-thinking", false, false,
         false},
        {"--chat-template qwen3 --reasoning-budget 2", true, false, true},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char cmd[2048], out_path[700];
        snprintf(out_path, sizeof out_path, "%s/chat%zu.out", scratch, i);
        snprintf(cmd, sizeof cmd,
                 "printf 'hi\\n' | '%s' chat -m '%s' %s -n 8 --temp 0 -t 1 > '%s' 2>&1", binary,
                 runs[i].plain ? plain_model : think_model, runs[i].model_args, out_path);
        const int rc = system(cmd);
        char *out = test_read_file(out_path, NULL);
        REQUIRE(out);
        if (runs[i].fails) {
            CHECKF(rc != 0 && strstr(out, "needs <think> and </think>"), "chat %zu: %s", i, out);
        } else {
            const char *think = strstr(out, "Thinking...\n"),
                       *done = strstr(out, "\n...done thinking.\n\n");
            CHECKF(rc == 0 && (runs[i].shown ? think && done && think < done : !think && !done),
                   "chat %zu: %s", i, out);
        }
        free(out);
    }
}

int main(void) {
    splitter();
    other_pairs_splitter();
    budget();
    templates();
    bool skip;
    const char *model = fixture_server_model("test_reasoning", scratch, &skip);
    if (skip) return test_done("test_reasoning");
    REQUIRE(model);
    char think_model[600];
    snprintf(think_model, sizeof think_model, "%s/think.gguf", scratch);
    REQUIRE(with_think_tokens(model, think_model));
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, think_model, scratch, "-t 1 --chat-template qwen3"));
    openai(&sv);
    switches(&sv);
    CHECK(test_server_stop(&sv) == 0);
    REQUIRE(test_server_start(&sv, binary, think_model, scratch,
                              "-t 1 --chat-template qwen3-thinking --reasoning-budget 2"));
    budgets(&sv);
    typed(&sv);
    CHECK(test_server_stop(&sv) == 0);
    chat_cli(think_model, model);
    /* a budget on a model without the tags is a 400 */
    REQUIRE(test_server_start(&sv, binary, model, scratch, "-t 1 --chat-template qwen3"));
    int st;
    cJSON *j = post(&sv, "/v1/chat/completions",
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    "\"thinking_budget_tokens\":4}",
                    &st);
    CHECK(st == 400 && jstr(j, "error.param") &&
          !strcmp(jstr(j, "error.param"), "thinking_budget_tokens"));
    cJSON_Delete(j);
    CHECK(test_server_stop(&sv) == 0);
    fixture_server_cleanup("test_reasoning", scratch, test_failures > 0);
    return test_done("test_reasoning");
}
