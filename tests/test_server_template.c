/*
 * test_server_template.c - chat templates: each real template text is
 * recognized as its family, and each renderer prints exactly what the Jinja
 * template prints (expected strings worked out by reading the templates in
 * server/chat_templates.h, not by running the renderer). Also the metadata
 * accessor that hands the server a model's tokenizer.chat_template.
 */
#include "test.h"
#include "tokenizer/chat_template.h"

#include "server/chat_templates.h"
#include "server/model_fixture.h"

#include <stdlib.h>

#define MSG(r, s)                                                                                  \
    { TOK_CHAT_##r, s, sizeof(s) - 1 }

/* The conversation of llama.cpp's template test: a system message, turns,
 * and an assistant turn padded with spaces (to see who trims). */
static const tok_chat_msg conv_a[] = {
    MSG(SYSTEM, "You are a helpful assistant"),
    MSG(USER, "Hello"),
    MSG(ASSISTANT, "Hi there"),
    MSG(USER, "Who are you"),
    MSG(ASSISTANT, "   I am an assistant   "),
    MSG(USER, "Another question"),
};
static const tok_chat_msg conv_b[] = {MSG(USER, "Hello")};

#define N(a) (sizeof(a) / sizeof(a)[0])

static tok_chat_opts opts(const char *bos, const char *eos) {
    /* 2023-11-14 12:00 UTC: the same calendar day in every time zone +-11 h */
    return (tok_chat_opts){
        .bos = bos, .eos = eos, .add_generation_prompt = true, .now = 1699963200};
}

static void check_render_opts(const char *what, const tok_chat_template *t, const tok_chat_msg *m,
                              size_t n, tok_chat_opts o, const char *expected) {
    char *out = NULL;
    size_t len = 0;
    hearth_err err = tok_chat_render(t, m, n, &o, &out, &len);
    CHECKF(err == HEARTH_OK, "%s: %s", what, hearth_last_error());
    if (err) return;
    CHECKF(len == strlen(out), "%s: length", what);
    CHECKF(!strcmp(out, expected), "%s:\n--- got ---\n%s\n--- expected ---\n%s", what, out,
           expected);
    free(out);
}

static void check_render(const char *what, const tok_chat_template *t, const tok_chat_msg *m,
                         size_t n, const char *bos, const char *eos, const char *expected) {
    check_render_opts(what, t, m, n, opts(bos, eos), expected);
}

static tok_chat_template detect(const char *tmpl, const char *name) {
    tok_chat_template t = {0};
    hearth_err err = tok_chat_detect(tmpl, strlen(tmpl), &t);
    CHECKF(err == HEARTH_OK, "detect %s: %s", name, hearth_last_error());
    CHECKF(t.name && !strcmp(t.name, name), "detect: expected %s, got %s", name,
           t.name ? t.name : "(none)");
    return t;
}

static const char llama3_a_turns[] =
    "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n";

static void test_llama3(void) {
    tok_chat_template t = detect(TMPL_LLAMA31, "llama3.1");
    CHECK(t.family == TOK_CHAT_LLAMA3 && t.bos && t.dated && !t.date_now);
    char expected[4096];
    snprintf(expected, sizeof expected,
             "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
             "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
             "You are a helpful assistant<|eot_id|>%s",
             llama3_a_turns);
    check_render("llama3.1 a", &t, conv_a, N(conv_a), "<|begin_of_text|>", "", expected);
    /* No system message: the header is still there, empty. */
    check_render("llama3.1 b", &t, conv_b, N(conv_b), "<|begin_of_text|>", "",
                 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                 "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* Llama 3.2: strftime_now("%d %b %Y"). */
    t = detect(TMPL_LLAMA32, "llama3.2");
    CHECK(t.date_now);
    check_render("llama3.2 b", &t, conv_b, N(conv_b), "<|begin_of_text|>", "",
                 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                 "Cutting Knowledge Date: December 2023\nToday Date: 14 Nov 2023\n\n<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* Llama 3.0: every message as a turn, trimmed; bos before the first. */
    t = detect(TMPL_LLAMA30, "llama3");
    snprintf(expected, sizeof expected,
             "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
             "You are a helpful assistant<|eot_id|>%s",
             llama3_a_turns);
    check_render("llama3 a", &t, conv_a, N(conv_a), "<|begin_of_text|>", "", expected);
    /* |trim is Python's strip(): Unicode spaces (U+3000, U+00A0) go too. */
    static const tok_chat_msg uni[] = {MSG(USER, "\xe3\x80\x80 Hi\xc2\xa0\n\t")};
    check_render("llama3 trim", &t, uni, 1, "<|begin_of_text|>", "",
                 "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* A later system message is an ordinary turn in 3.1. */
    static const tok_chat_msg late[] = {MSG(USER, "a"), MSG(SYSTEM, " b ")};
    t = detect(TMPL_LLAMA31, "llama3.1");
    check_render("llama3.1 late system", &t, late, N(late), "<|begin_of_text|>", "",
                 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                 "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\na<|eot_id|>"
                 "<|start_header_id|>system<|end_header_id|>\n\nb<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static const char chatml_a[] = "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                               "<|im_start|>user\nHello<|im_end|>\n"
                               "<|im_start|>assistant\nHi there<|im_end|>\n"
                               "<|im_start|>user\nWho are you<|im_end|>\n"
                               "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
                               "<|im_start|>user\nAnother question<|im_end|>\n"
                               "<|im_start|>assistant\n";

static void test_chatml(void) {
    tok_chat_template t = detect(TMPL_QWEN25, "chatml");
    CHECK(!strcmp(t.default_system,
                  "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    check_render("qwen2.5 a", &t, conv_a, N(conv_a), "", "", chatml_a);
    check_render(
        "qwen2.5 b", &t, conv_b, N(conv_b), "", "",
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    t = detect(TMPL_SMOLLM2, "chatml");
    check_render("smollm2 a", &t, conv_a, N(conv_a), "", "", chatml_a);
    check_render(
        "smollm2 b", &t, conv_b, N(conv_b), "", "",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
        "Hugging Face<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    CHECK(tok_chat_named("chatml", &t) == HEARTH_OK && !t.default_system[0]);
    check_render("chatml b", &t, conv_b, N(conv_b), "", "",
                 "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    /* LFM2's: ChatML after the BOS, which is the tokenizer's (add_bos), as llama.cpp renders
       it; its tools in test_chat_tools */
    t = detect(TMPL_LFM2, "lfm2");
    check_render("lfm2 a", &t, conv_a, N(conv_a), "", "", chatml_a);
    /* Falcon-H1's: ChatML after the tokenizer's BOS likewise; its tools as Qwen's Hermes */
    t = detect(TMPL_FALCON_H1, "chatml");
    CHECK(t.tools == TOK_TOOLS_HERMES && !t.default_system[0]);
    check_render("falcon-h1 a", &t, conv_a, N(conv_a), "", "", chatml_a);
}

static void test_qwen3(void) {
    tok_chat_template t = detect(TMPL_QWEN3, "qwen3");
    CHECK(!t.default_system[0]);
    check_render("qwen3 a", &t, conv_a, N(conv_a), "", "", chatml_a);
    /* Reasoning of a turn before the last query is cut out. */
    static const tok_chat_msg c1[] = {
        MSG(USER, "Q1"), MSG(ASSISTANT, "<think>\nr1\n</think>\n\nA1"), MSG(USER, "Q2")};
    check_render("qwen3 cut", &t, c1, N(c1), "", "",
                 "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                 "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n");
    /* The last turn after the query keeps (or gets) its think block. */
    static const tok_chat_msg c2[] = {MSG(SYSTEM, "S"), MSG(USER, "Q1"),
                                      MSG(ASSISTANT, "<think>\nr1\n</think>\n\nA1")};
    check_render("qwen3 keep", &t, c2, N(c2), "", "",
                 "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
                 "<|im_start|>assistant\n<think>\nr1\n</think>\n\nA1<|im_end|>\n"
                 "<|im_start|>assistant\n");
    static const tok_chat_msg c3[] = {MSG(USER, "Q1"), MSG(ASSISTANT, "plain")};
    check_render("qwen3 empty think", &t, c3, N(c3), "", "",
                 "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
                 "plain<|im_end|>\n<|im_start|>assistant\n");
    /* A user message that is a wrapped tool response is not a query. */
    static const tok_chat_msg c4[] = {MSG(USER, "Q1"), MSG(ASSISTANT, "A"),
                                      MSG(USER, "<tool_response>x</tool_response>"),
                                      MSG(ASSISTANT, "<think>t</think>B")};
    check_render("qwen3 tool response", &t, c4, N(c4), "", "",
                 "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
                 "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n"
                 "<|im_start|>assistant\n<think>\nt\n</think>\n\nB<|im_end|>\n"
                 "<|im_start|>assistant\n");
}

static void test_gemma(void) {
    tok_chat_template t = detect(TMPL_GEMMA3, "gemma3");
    check_render("gemma3 a", &t, conv_a, N(conv_a), "<bos>", "",
                 "<bos><start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
                 "<start_of_turn>model\nHi there<end_of_turn>\n"
                 "<start_of_turn>user\nWho are you<end_of_turn>\n"
                 "<start_of_turn>model\nI am an assistant<end_of_turn>\n"
                 "<start_of_turn>user\nAnother question<end_of_turn>\n"
                 "<start_of_turn>model\n");
    /* The prefix is not trimmed; the user text after it is. */
    static const tok_chat_msg p[] = {MSG(SYSTEM, " S "), MSG(USER, "  Hi  ")};
    check_render("gemma3 prefix", &t, p, N(p), "<bos>", "",
                 "<bos><start_of_turn>user\n S \n\nHi<end_of_turn>\n<start_of_turn>model\n");
    static const tok_chat_msg bad[] = {MSG(USER, "a"), MSG(USER, "b")};
    char *out = NULL;
    size_t len;
    tok_chat_opts o = opts("<bos>", "");
    CHECK(tok_chat_render(&t, bad, N(bad), &o, &out, &len) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "alternate") != NULL);
    static const tok_chat_msg bad2[] = {MSG(ASSISTANT, "a")};
    CHECK(tok_chat_render(&t, bad2, N(bad2), &o, &out, &len) == HEARTH_ERR_INVALID_ARG);
    /* Gemma 2 refuses a system message; it is merged into the first turn. */
    t = detect(TMPL_GEMMA2, "gemma");
    check_render("gemma2 a", &t, conv_a, N(conv_a), "<bos>", "",
                 "<bos><start_of_turn>user\nYou are a helpful assistant\nHello<end_of_turn>\n"
                 "<start_of_turn>model\nHi there<end_of_turn>\n"
                 "<start_of_turn>user\nWho are you<end_of_turn>\n"
                 "<start_of_turn>model\nI am an assistant<end_of_turn>\n"
                 "<start_of_turn>user\nAnother question<end_of_turn>\n"
                 "<start_of_turn>model\n");
}

static void test_phi(void) {
    tok_chat_template t = detect(TMPL_PHI35, "phi3");
    CHECK(!t.bos);
    check_render(
        "phi3.5 a", &t, conv_a, N(conv_a), "<s>", "<|endoftext|>",
        "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n"
        "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n"
        "<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n"
        "<|assistant|>\n");
    static const tok_chat_msg e[] = {MSG(SYSTEM, ""), MSG(USER, "Hello")};
    check_render("phi3.5 empty system", &t, e, N(e), "<s>", "<|endoftext|>",
                 "<|user|>\nHello<|end|>\n<|assistant|>\n");
    tok_chat_opts o = opts("<s>", "<|endoftext|>");
    o.add_generation_prompt = false;
    check_render_opts("phi3.5 no generation prompt", &t, conv_b, N(conv_b), o,
                      "<|user|>\nHello<|end|>\n<|endoftext|>");

    t = detect(TMPL_PHI3MINI, "phi3-mini");
    check_render("phi3-mini a", &t, conv_a, N(conv_a), "<s>", "<|endoftext|>",
                 "<s><|user|>\nYou are a helpful assistant\nHello<|end|>\n<|assistant|>\n"
                 "Hi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n"
                 "   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n"
                 "<|assistant|>\n");

    t = detect(TMPL_PHI4MINI, "phi4-mini");
    check_render("phi4-mini a", &t, conv_a, N(conv_a), "<|endoftext|>", "<|endoftext|>",
                 "<|system|>You are a helpful assistant<|end|><|user|>Hello<|end|>"
                 "<|assistant|>Hi there<|end|><|user|>Who are you<|end|>"
                 "<|assistant|>   I am an assistant   <|end|><|user|>Another question<|end|>"
                 "<|assistant|>");

    t = detect(TMPL_PHI4, "phi4");
    CHECK(t.legacy_turns);
    check_render("phi4 a", &t, conv_a, N(conv_a), "", "",
                 "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|>"
                 "<|im_start|>user<|im_sep|>Hello<|im_end|><|im_start|>assistant<|im_sep|>"
                 "Hi there<|im_end|><|im_start|>user<|im_sep|>Who are you<|im_end|>"
                 "<|im_start|>assistant<|im_sep|>   I am an assistant   <|im_end|>"
                 "<|im_start|>user<|im_sep|>Another question<|im_end|>"
                 "<|im_start|>assistant<|im_sep|>");
}

/* Granite 3.x as llama.cpp prints it (its chat template test's expected
 * string for this conversation), and 3.3's dated default system message. */
static void test_granite(void) {
    tok_chat_template t = detect(TMPL_GRANITE3, "granite");
    CHECK(t.family == TOK_CHAT_GRANITE && !strcmp(t.name, "granite"));
    check_render(
        "granite a", &t, conv_a, N(conv_a), "", "",
        "<|start_of_role|>system<|end_of_role|>You are a helpful "
        "assistant<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Hello<|end_of_text|>"
        "\n<|start_of_role|>assistant<|end_of_role|>Hi there<|end_of_text|>\n"
        "<|start_of_role|>user<|end_of_role|>Who are you<|end_of_text|>\n"
        "<|start_of_role|>assistant<|end_of_role|>   I am an assistant   "
        "<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Another "
        "question<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>");
    t = detect(TMPL_GRANITE33, "granite3.3");
    CHECK(t.family == TOK_CHAT_GRANITE && !strcmp(t.name, "granite3.3") && t.date_now);
    check_render("granite3.3 b", &t, conv_b, N(conv_b), "", "",
                 "<|start_of_role|>system<|end_of_role|>Knowledge Cutoff Date: April 2024. "
                 "Today's Date: November 14, 2023. You are Granite, developed by IBM. You are a "
                 "helpful AI assistant.<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Hello"
                 "<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>");
    /* with a system message, only that one */
    check_render(
        "granite3.3 a", &t, conv_a, 2, "", "",
        "<|start_of_role|>system<|end_of_role|>You are a helpful "
        "assistant<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Hello<|end_of_text|>"
        "\n<|start_of_role|>assistant<|end_of_role|>");
    CHECK(tok_chat_named("granite3.3", &t) == HEARTH_OK && t.date_now);
}

/* OLMo 2: system and user turns end in '\n', assistant turns in EOS ('\n' after all
 * but the last message); BOS first. */
static void test_olmo2(void) {
    tok_chat_template t = detect(TMPL_OLMO2, "olmo2");
    CHECK(t.family == TOK_CHAT_TULU && t.bos);
    check_render("olmo2 a", &t, conv_a, N(conv_a), "<|endoftext|>", "<|endoftext|>",
                 "<|endoftext|><|system|>\nYou are a helpful assistant\n<|user|>\nHello\n"
                 "<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you\n"
                 "<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother "
                 "question\n<|assistant|>\n");
    /* the last message an assistant's: its EOS without the newline */
    check_render("olmo2 last", &t, conv_a, 3, "", "</s>",
                 "<|system|>\nYou are a helpful assistant\n<|user|>\nHello\n<|assistant|>\nHi "
                 "there</s><|assistant|>\n");
}

/* EXAONE 4.0 as llama.cpp's built-in exaone4 template prints it (worked out from its
 * llama-chat.cpp): contents trimmed, user turns end in a newline alone. */
static void test_exaone4(void) {
    tok_chat_template t = detect(TMPL_EXAONE4, "exaone4");
    CHECK(t.family == TOK_CHAT_EXAONE4);
    check_render("exaone4 a", &t, conv_a, N(conv_a), "", "",
                 "[|system|]You are a helpful assistant[|endofturn|]\n[|user|]Hello\n"
                 "[|assistant|]Hi there[|endofturn|]\n[|user|]Who are you\n[|assistant|]I am "
                 "an assistant[|endofturn|]\n[|user|]Another question\n[|assistant|]");
}

static void test_names_and_unknown(void) {
    tok_chat_template t;
    CHECK(tok_chat_detect(TMPL_UNKNOWN, strlen(TMPL_UNKNOWN), &t) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "--chat-template") != NULL);
    CHECK(tok_chat_detect("", 0, &t) == HEARTH_ERR_UNSUPPORTED);
    CHECK(tok_chat_named("jinja", &t) == HEARTH_ERR_INVALID_ARG);
    /* Every advertised name works and says its name back. */
    char names[512];
    snprintf(names, sizeof names, "%s", tok_chat_names());
    int n = 0;
    for (char *save = NULL, *name = strtok_r(names, "|", &save); name;
         name = strtok_r(NULL, "|", &save), n++) {
        CHECKF(tok_chat_named(name, &t) == HEARTH_OK && !strcmp(t.name, name), "%s", name);
        char *out = NULL;
        size_t len;
        tok_chat_opts o = opts("<s>", "</s>");
        CHECKF(tok_chat_render(&t, conv_b, 1, &o, &out, &len) == HEARTH_OK && strstr(out, "Hello"),
               "%s renders", name);
        free(out);
    }
    CHECK(n == 33);
    /* An empty chat is refused; a system message alone survives merging. */
    char *out = NULL;
    size_t len;
    tok_chat_opts o = opts("<s>", "</s>");
    CHECK(tok_chat_render(&t, conv_a, 0, &o, &out, &len) == HEARTH_ERR_INVALID_ARG);
    CHECK(tok_chat_named("gemma", &t) == HEARTH_OK);
    check_render("gemma system only", &t, conv_a, 1, "<bos>", "", "<bos><start_of_turn>model\n");
}

/* The Phi-3 vocabulary in ../shared carries a real template. */
static void test_shared_vocab(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-phi-3.gguf",
             HEARTH_SHARED_DIR);
    gguf_file *f = NULL;
    if (gguf_open(path, &f)) {
        printf("skipping the ../shared vocabulary check: %s\n", hearth_last_error());
        return;
    }
    gguf_str s;
    CHECK(gguf_get_str(f, "tokenizer.chat_template", &s));
    tok_chat_template t = {0};
    CHECK(tok_chat_detect(s.ptr, (size_t)s.len, &t) == HEARTH_OK);
    CHECK(t.name && !strcmp(t.name, "phi3-mini"));
    gguf_close(f);
}

/* hearth_model_meta_str hands out the template of a loaded model. */
static void test_meta(void) {
    char scratch[] = "/tmp/hearth_tmpl_XXXXXX";
    REQUIRE(mkdtemp(scratch));
    char synth[4200], with[4200];
    snprintf(synth, sizeof synth, "%s/synth.gguf", scratch);
    snprintf(with, sizeof with, "%s/with.gguf", scratch);
    const char *src = fixture_model(synth);
    REQUIRE(src);
    REQUIRE(fixture_with_template(src, with, TMPL_GEMMA3) == HEARTH_OK);
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(with, NULL, &m) == HEARTH_OK);
    const char *v = NULL;
    size_t len = 0;
    CHECK(hearth_model_meta_str(m, "tokenizer.chat_template", &v, &len) == HEARTH_OK);
    CHECK(len == strlen(TMPL_GEMMA3) && v && !memcmp(v, TMPL_GEMMA3, len));
    CHECK(hearth_model_meta_str(m, "general.architecture", &v, &len) == HEARTH_OK && len == 5 &&
          !memcmp(v, "llama", 5));
    CHECK(hearth_model_meta_str(m, "no.such.key", &v, &len) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_model_meta_str(m, "tokenizer.ggml.bos_token_id", &v, &len) ==
          HEARTH_ERR_INVALID_ARG);
    hearth_model_free(m);
    remove(with);
    remove(synth);
    rmdir(scratch);
}

int main(void) {
    test_llama3();
    test_chatml();
    test_qwen3();
    test_gemma();
    test_phi();
    test_granite();
    test_olmo2();
    test_exaone4();
    test_names_and_unknown();
    test_shared_vocab();
    test_meta();
    return test_done("test_server_template");
}
