/*
 * test_tune_data.c - training sets (tune_data.c): JSONL in both forms
 * becomes the prompt's ids exactly as eng_chat_tokens gives them (what chat
 * and serve feed the model), then ids that spell the answer right after the
 * prompt (no space put in front by the tokenizer), then the template's
 * end-of-turn token; every malformed line fails with its file:line and adds
 * nothing; empty answers and too-long examples are counted, not kept; the
 * ledger's rows are filtered (failed, degraded, no cloud answer, before
 * --since) and read while the gateway still has the file open; the split is
 * deterministic, complete and disjoint. A synthetic model serves throughout;
 * with ../shared, models carrying the Llama 3 (BPE) and Phi-3 (SentencePiece)
 * vocabularies check the end-of-turn token (<|eot_id|>, <|end|>: not EOS).
 */
#include "engine/chat.h"
#include "gateway/gateway.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "test.h"
#include "tune/tune.h"

#include <unistd.h>

static char dir[64];
static int n_files;
static char files[64][128];

/* A path in the scratch directory, remembered for the clean-up. */
static const char *tmp(const char *name) {
    REQUIRE(n_files < 64);
    snprintf(files[n_files], sizeof files[0], "%s/%s", dir, name);
    return files[n_files++];
}

static const char *write_file(const char *name, const char *text) {
    const char *path = tmp(name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* A model with its chat template, as cmd_tune sets one up. */
typedef struct fixture {
    hearth_model *m;
    tok_chat_template tmpl;
    char *bos, *eos;
    tune_render r;
} fixture;

static void fixture_open(fixture *f, const char *path, const char *tmpl) {
    memset(f, 0, sizeof *f);
    eng_chat_source src;
    if (hearth_model_load(path, NULL, &f->m)) {
        fprintf(stderr, "%s: %s\n", path, hearth_last_error());
        exit(1);
    }
    REQUIRE(eng_chat_choose(f->m, tmpl, &f->tmpl, &src) == HEARTH_OK);
    REQUIRE((f->bos = eng_token_text(f->m, hearth_token_bos(f->m))) != NULL);
    REQUIRE((f->eos = eng_token_text(f->m, hearth_token_eos(f->m))) != NULL);
    f->r = (tune_render){.tmpl = &f->tmpl, .bos = f->bos, .eos = f->eos, .max_len = 512};
}

static void fixture_close(fixture *f) {
    free(f->bos);
    free(f->eos);
    hearth_model_free(f->m);
}

static char *detok(const hearth_model *m, const int32_t *ids, size_t n) {
    size_t len = 0;
    hearth_detokenize(m, ids, n, true, NULL, 0, &len);
    char *s = calloc(len + 1, 1);
    REQUIRE(s && hearth_detokenize(m, ids, n, true, s, len, &len) == HEARTH_OK);
    return s;
}

/* How an example's answer ids are checked (bits). */
enum {
    SPELLED = 1, /* they read as the answer's text right after the prompt (no space put in front) */
    JOINED = 2,  /* they are what follows the prompt's ids when the prompt's text and the answer
                    are tokenized together (the conversation as a whole) */
    OWN = 4      /* they are the answer's own tokens, as plain text */
};

/* The ids that follow the prompt's when msgs' rendering and the answer are
 * tokenized together, into out[0..cap); their count. */
static size_t joined_tail(const fixture *f, const tok_chat_msg *msgs, size_t n, const char *answer,
                          size_t n_prompt, int32_t *out, size_t cap) {
    const tok_chat_opts o = {.bos = f->bos, .eos = f->eos, .add_generation_prompt = true};
    char *text = NULL, both[2048];
    size_t len = 0, k = 0;
    REQUIRE(tok_chat_render(&f->tmpl, msgs, n, &o, &text, &len) == HEARTH_OK);
    const size_t skip = eng_chat_bos_skip(text, len, f->bos);
    snprintf(both, sizeof both, "%s%s", text + skip, answer);
    free(text);
    int32_t ids[512];
    REQUIRE(hearth_tokenize(f->m, both, strlen(both), true, true, ids, 512, &k) == HEARTH_OK);
    REQUIRE(k > n_prompt && k - n_prompt <= cap);
    memcpy(out, ids + n_prompt, (k - n_prompt) * sizeof *ids);
    return k - n_prompt;
}

/* ex is msgs[0..n) rendered as chat and serve do, then the answer (checked
 * as `how` says), then end. */
static void check_example(const fixture *f, const tune_example *ex, const tok_chat_msg *msgs,
                          size_t n, const char *answer, int32_t end, unsigned how) {
    int32_t *p = NULL;
    size_t np = 0;
    REQUIRE(eng_chat_tokens(f->m, &f->tmpl, msgs, n, f->bos, f->eos, false, &p, &np) == HEARTH_OK);
    CHECKF(ex->n_prompt == (int)np && !memcmp(ex->ids, p, np * sizeof *p),
           "the prompt's %d ids are eng_chat_tokens' %zu", ex->n_prompt, np);
    CHECKF(ex->n > ex->n_prompt + 1 && ex->ids[ex->n - 1] == end, "ends with %d, not %d",
           (int)ex->ids[ex->n - 1], (int)end);
    const int32_t *got = ex->ids + ex->n_prompt;
    const size_t n_got = (size_t)(ex->n - ex->n_prompt - 1);
    int32_t want[256];
    size_t nw = 0;
    if (how & SPELLED) {
        char *whole = detok(f->m, ex->ids, (size_t)ex->n - 1), *prompt = detok(f->m, p, np);
        const size_t pl = strlen(prompt);
        CHECKF(!strncmp(whole, prompt, pl) && !strcmp(whole + pl, answer),
               "the answer reads '%s', not '%s'", whole + (strlen(whole) >= pl ? pl : 0), answer);
        free(whole);
        free(prompt);
    }
    if (how & JOINED) {
        nw = joined_tail(f, msgs, n, answer, np, want, 256);
        CHECKF(n_got == nw && !memcmp(got, want, nw * sizeof *want),
               "'%s': %zu answer ids, %zu when tokenized with the prompt", answer, n_got, nw);
    }
    if (how & OWN) {
        REQUIRE(hearth_tokenize(f->m, answer, strlen(answer), false, false, want, 256, &nw) ==
                HEARTH_OK);
        CHECKF(n_got == nw && !memcmp(got, want, nw * sizeof *want),
               "'%s': the answer's ids are its own tokens", answer);
    }
    /* the answer's text is never read for special tokens */
    for (size_t i = 0; i < n_got; i++)
        CHECKF(!hearth_token_is_eog(f->m, got[i]), "'%s': id %d in the answer ends a turn", answer,
               (int)got[i]);
    free(p);
}

#define MSG(r, s) ((tok_chat_msg){TOK_CHAT_##r, s, sizeof(s) - 1})

/* ---- JSONL ---- */

static void test_jsonl(const fixture *f) {
    const char *path = write_file(
        "ok.jsonl", "{\"prompt\": \"What is two plus two?\", \"completion\": \"Four.\"}\n"
                    "\n  \t\r\n"
                    "{\"system\": \"Be brief.\", \"prompt\": \"Hello there\", "
                    "\"completion\": \"Hi, how can I help?\"}\r\n"
                    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"}, "
                    "{\"role\": \"user\", \"content\": \"one\"}, {\"role\": "
                    "\"assistant\", \"content\": \"first answer\"}, {\"role\": "
                    "\"user\", \"content\": \"two\"}, {\"role\": \"assistant\", "
                    "\"content\": \"second answer\"}]}\n"
                    "{\"prompt\": \"nothing to learn\", \"completion\": \"\"}\n"
                    "{\"prompt\": \"caf\\u00e9?\", \"completion\": \"Ol\\u00e1, caf\\u00e9 "
                    "\\ud83d\\ude00\"}");
    tune_set s = {0};
    REQUIRE(tune_set_add_jsonl(&s, f->m, &f->r, path) == HEARTH_OK);
    CHECKF(s.n == 4 && s.n_skipped == 1 && s.n_too_long == 0, "%zu examples, %zu skipped", s.n,
           s.n_skipped);
    /* the synthetic vocabulary has no <|im_end|>: the turn ends with EOS */
    const int32_t eos = hearth_token_eos(f->m);
    if (s.n == 4) {
        const tok_chat_msg a[] = {MSG(USER, "What is two plus two?")};
        check_example(f, &s.ex[0], a, 1, "Four.", eos, SPELLED);
        const tok_chat_msg b[] = {MSG(SYSTEM, "Be brief."), MSG(USER, "Hello there")};
        check_example(f, &s.ex[1], b, 2, "Hi, how can I help?", eos, SPELLED);
        const tok_chat_msg c[] = {MSG(SYSTEM, "Be kind."), MSG(USER, "one"),
                                  MSG(ASSISTANT, "first answer"), MSG(USER, "two")};
        check_example(f, &s.ex[2], c, 4, "second answer", eos, SPELLED);
        const tok_chat_msg d[] = {MSG(USER, "caf\xc3\xa9?")};
        check_example(f, &s.ex[3], d, 1, "Ol\xc3\xa1, caf\xc3\xa9 \xf0\x9f\x98\x80", eos, SPELLED);
    }
    /* an answer quoting EOS's text keeps it as text: its own tokens */
    const char *quote = write_file("quote.jsonl", "{\"prompt\": \"Say it\", \"completion\": "
                                                  "\"Write </s> to stop\"}\n");
    tune_set q = {0};
    REQUIRE(tune_set_add_jsonl(&q, f->m, &f->r, quote) == HEARTH_OK && q.n == 1);
    const tok_chat_msg e[] = {MSG(USER, "Say it")};
    check_example(f, &q.ex[0], e, 1, "Write </s> to stop", eos, OWN);
    tune_set_free(&q);
    /* a second file appends */
    const size_t before = s.n;
    REQUIRE(tune_set_add_jsonl(&s, f->m, &f->r, path) == HEARTH_OK);
    CHECK(s.n == 2 * before && s.n_skipped == 2);
    tune_set_free(&s);
    CHECK(s.n == 0 && s.ex == NULL);
    tune_set_free(NULL);
}

/* Each bad line, after a good one, fails with its own message at line 2 (or
 * further for blank lines) and the file adds nothing. */
static void test_jsonl_errors(const fixture *f) {
    static const struct {
        const char *line, *says;
    } bad[] = {
        {"{\"prompt\": \"a\", \"completion\": ", "not valid JSON"},
        {"[1, 2]", "not a JSON object"},
        {"\"text\"", "not a JSON object"},
        {"{\"prompt\": \"a\"}", "needs \"prompt\" and \"completion\""},
        {"{\"completion\": \"a\"}", "needs \"prompt\" and \"completion\""},
        {"{\"prompt\": 3, \"completion\": \"b\"}", "\"prompt\" is not a string"},
        {"{\"prompt\": \"a\", \"completion\": null}", "\"completion\" is not a string"},
        {"{\"prompt\": \"a\", \"completion\": \"b\", \"system\": []}",
         "\"system\" is not a string"},
        {"{\"prompt\": \"a\", \"completion\": \"b\"} x", "text after the JSON object"},
        {"{\"prompt\": \"\xff\", \"completion\": \"b\"}", "bad UTF-8 at byte 13"},
        {"{\"prompt\": \"a\xc3\", \"completion\": \"b\"}", "bad UTF-8 at byte 14"},
        {"{\"messages\": \"hi\"}", "\"messages\" is not an array"},
        {"{\"messages\": []}", "needs a prompt and the assistant's answer (it has 0)"},
        {"{\"messages\": [{\"role\": \"assistant\", \"content\": \"b\"}]}",
         "needs a prompt and the assistant's answer (it has 1)"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", "
         "\"content\": \"b\"}]}",
         "its role must be \"assistant\", not \"user\""},
        {"{\"messages\": [{\"role\": \"robot\", \"content\": \"a\"}, {\"role\": \"assistant\", "
         "\"content\": \"b\"}]}",
         "message 0: role \"robot\""},
        {"{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}",
         "message 0 needs a string \"role\" and \"content\""},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [1]}, {\"role\": \"assistant\", "
         "\"content\": \"b\"}]}",
         "message 0: \"content\" is not a string"},
        {"{\"messages\": [1, {\"role\": \"assistant\", \"content\": \"b\"}]}",
         "message 0 is not an object"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", "
         "\"content\": \"b\"}], \"prompt\": \"a\"}",
         "has both \"messages\" and \"prompt\"/\"completion\""},
    };
    const char *good = "{\"prompt\": \"fine\", \"completion\": \"yes\"}\n";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], name[32];
        snprintf(text, sizeof text, "%s%s\n%s", good, bad[i].line, good);
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        const char *path = write_file(name, text);
        tune_set s = {0};
        const hearth_err e = tune_set_add_jsonl(&s, f->m, &f->r, path);
        char want[160];
        snprintf(want, sizeof want, "%s:2: ", path);
        const char *msg = hearth_last_error();
        CHECKF(e == HEARTH_ERR_FORMAT && strstr(msg, want) && strstr(msg, bad[i].says),
               "line '%s': error %d '%s'", bad[i].line, (int)e, msg);
        CHECKF(s.n == 0 && s.n_skipped == 0, "case %zu: %zu examples kept", i, s.n);
        tune_set_free(&s);
    }
    /* line numbers count blank lines; a failed file leaves what was there */
    tune_set s = {0};
    const char *ok = write_file("one.jsonl", good);
    REQUIRE(tune_set_add_jsonl(&s, f->m, &f->r, ok) == HEARTH_OK && s.n == 1);
    const char *path =
        write_file("late.jsonl", "\n\n{\"prompt\": \"a\", \"completion\": \"\"}\n\n[]\n");
    CHECK(tune_set_add_jsonl(&s, f->m, &f->r, path) == HEARTH_ERR_FORMAT);
    char want[160];
    snprintf(want, sizeof want, "%s:5: not a JSON object", path);
    CHECKF(strstr(hearth_last_error(), want), "'%s'", hearth_last_error());
    CHECK(s.n == 1 && s.n_skipped == 0);
    CHECK(tune_set_add_jsonl(&s, f->m, &f->r, tmp("absent.jsonl")) == HEARTH_ERR_IO && s.n == 1);
    tune_set_free(&s);
}

/* The template refuses a conversation (Gemma: roles must alternate). */
static void test_template_refusal(const char *model) {
    fixture g;
    fixture_open(&g, model, "gemma");
    const char *path = write_file(
        "gemma.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": "
                       "\"user\", \"content\": \"b\"}, {\"role\": \"assistant\", "
                       "\"content\": \"c\"}]}\n");
    tune_set s = {0};
    CHECK(tune_set_add_jsonl(&s, g.m, &g.r, path) == HEARTH_ERR_FORMAT && s.n == 0);
    CHECKF(strstr(hearth_last_error(), ":1: the chat template refuses it"), "'%s'",
           hearth_last_error());
    tune_set_free(&s);
    fixture_close(&g);
}

/* An example of exactly max_len tokens is kept; one more is counted. */
static void test_too_long(fixture *f) {
    const char *path =
        write_file("long.jsonl", "{\"prompt\": \"Tell me a story.\", \"completion\": \"Once upon a "
                                 "time there was a little fox who lived in the woods.\"}\n");
    tune_set s = {0};
    REQUIRE(tune_set_add_jsonl(&s, f->m, &f->r, path) == HEARTH_OK && s.n == 1);
    const int n = s.ex[0].n;
    tune_set_free(&s);
    f->r.max_len = n - 1;
    CHECK(tune_set_add_jsonl(&s, f->m, &f->r, path) == HEARTH_OK);
    CHECK(s.n == 0 && s.n_too_long == 1 && s.n_skipped == 0);
    tune_set_free(&s);
    f->r.max_len = n;
    CHECK(tune_set_add_jsonl(&s, f->m, &f->r, path) == HEARTH_OK);
    CHECK(s.n == 1 && s.n_too_long == 0 && s.ex[0].n == n);
    tune_set_free(&s);
    f->r.max_len = 512;
}

/* ---- the ledger ---- */

static void test_ledger(const fixture *f) {
    const char *db = tmp("ledger.db");
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(db, &l) == HEARTH_OK);
    const int64_t t0 = 1700000000000;
    static const struct {
        int64_t dt;
        int status;
        bool degraded;
        const char *prompt, *local, *remote;
    } rows[] = {
        {10, 200, false, "What is the capital of France?", NULL, "Paris."}, /* kept */
        {20, 502, false, "failed", NULL, "half an answer"},                 /* failed */
        {30, 200, true, "the cloud was down", "maybe", "never sent"},       /* degraded */
        {40, 200, false, "answered here", "local answer", NULL},            /* no cloud answer */
        {50, 200, false, NULL, NULL, "prompt not recorded"},                /* no prompt */
        {60, 200, false, "empty", NULL, ""},                                /* skipped */
        {-1000, 200, false, "long ago", NULL, "old answer"},                /* before since */
        {70, 200, false, "be brief\nand list three colours", "red", "Red, green, blue."},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        gw_ledger_row r = gw_ledger_row_init();
        r.time_ms = t0 + rows[i].dt;
        r.route = GW_ROUTE_ESCALATED;
        r.tier = "cloud";
        r.reason = "test";
        r.status = rows[i].status;
        r.degraded = rows[i].degraded;
        r.prompt = rows[i].prompt;
        r.local_answer = rows[i].local;
        r.remote_answer = rows[i].remote;
        REQUIRE(gw_ledger_add(l, &r, NULL) == HEARTH_OK);
    }
    /* read while the gateway still holds the file (WAL) */
    tune_set s = {0};
    REQUIRE(tune_set_add_ledger(&s, f->m, &f->r, db, t0) == HEARTH_OK);
    CHECKF(s.n == 2 && s.n_skipped == 1 && s.n_too_long == 0, "%zu examples, %zu skipped", s.n,
           s.n_skipped);
    const int32_t eos = hearth_token_eos(f->m);
    if (s.n == 2) {
        const tok_chat_msg a[] = {MSG(USER, "What is the capital of France?")};
        check_example(f, &s.ex[0], a, 1, "Paris.", eos, SPELLED);
        /* the joined messages are one user message */
        const tok_chat_msg b[] = {MSG(USER, "be brief\nand list three colours")};
        check_example(f, &s.ex[1], b, 1, "Red, green, blue.", eos, SPELLED);
    }
    tune_set_free(&s);
    REQUIRE(tune_set_add_ledger(&s, f->m, &f->r, db, 0) == HEARTH_OK);
    CHECKF(s.n == 3 && s.n_skipped == 1, "since 0: %zu examples", s.n);
    if (s.n == 3) {
        const tok_chat_msg c[] = {MSG(USER, "long ago")};
        check_example(f, &s.ex[1], c, 1, "old answer", eos, SPELLED); /* in the order recorded */
    }
    tune_set_free(&s);
    REQUIRE(tune_set_add_ledger(&s, f->m, &f->r, db, t0 + 65) == HEARTH_OK);
    CHECK(s.n == 1 && s.n_skipped == 0);
    tune_set_free(&s);
    gw_ledger_close(l);
    /* not a ledger, no file */
    const char *junk = write_file("junk.db", "this is not a database\n");
    CHECK(tune_set_add_ledger(&s, f->m, &f->r, junk, 0) == HEARTH_ERR_FORMAT && s.n == 0);
    CHECK(tune_set_add_ledger(&s, f->m, &f->r, tmp("absent.db"), 0) == HEARTH_ERR_IO);
    CHECK(access(files[n_files - 1], F_OK) != 0); /* read-only: not created */
    tune_set_free(&s);
}

/* ---- the split ---- */

static tune_set random_set(size_t n, unsigned long long seed) {
    tune_set s = {.ex = calloc(n, sizeof(tune_example)), .n = n, .cap = n};
    REQUIRE(s.ex);
    for (size_t i = 0; i < n; i++) {
        const tune_example *same = i % 10 == 9 ? &s.ex[i - 1] : NULL; /* some duplicates */
        tune_example *ex = &s.ex[i];
        ex->n = same ? same->n : 3 + (int)(test_rand_u64(&seed) % 40);
        ex->n_prompt =
            same ? same->n_prompt : 1 + (int)(test_rand_u64(&seed) % (unsigned)(ex->n - 1));
        REQUIRE((ex->ids = malloc((size_t)ex->n * sizeof *ex->ids)) != NULL);
        for (int k = 0; k < ex->n; k++)
            ex->ids[k] = same ? same->ids[k] : (int32_t)(test_rand_u64(&seed) % 1000);
    }
    return s;
}

/* Which set each example of a fresh random_set(n, 7) lands in: 1 val, 0 train. */
static void split_marks(size_t n, double share, uint64_t seed, char *mark, size_t *n_val) {
    tune_set all = random_set(n, 7), train = {0}, val = {0};
    REQUIRE(tune_set_split(&all, share, seed, &train, &val) == HEARTH_OK);
    CHECK(all.n == 0 && all.ex == NULL && train.n + val.n == n);
    /* every example is in exactly one of the two: find it by its content */
    tune_set ref = random_set(n, 7);
    memset(mark, 2, n);
    for (int t = 0; t < 2; t++) {
        const tune_set *s = t ? &val : &train;
        for (size_t i = 0; i < s->n; i++) {
            size_t hits = 0;
            for (size_t k = 0; k < n; k++)
                if (ref.ex[k].n == s->ex[i].n && ref.ex[k].n_prompt == s->ex[i].n_prompt &&
                    !memcmp(ref.ex[k].ids, s->ex[i].ids, (size_t)s->ex[i].n * sizeof(int32_t))) {
                    CHECK(mark[k] == 2 || mark[k] == t); /* duplicates land together */
                    mark[k] = (char)t;
                    hits++;
                }
            CHECK(hits >= 1);
        }
    }
    for (size_t k = 0; k < n; k++) CHECK(mark[k] != 2);
    *n_val = val.n;
    tune_set_free(&ref);
    tune_set_free(&train);
    tune_set_free(&val);
}

static void test_split(void) {
    enum { N = 1000 };
    static char a[N], b[N], c[N];
    size_t va, vb, vc, v0;
    split_marks(N, 0.2, 11, a, &va);
    split_marks(N, 0.2, 11, b, &vb);
    CHECK(va == vb && !memcmp(a, b, N)); /* deterministic */
    CHECKF(va > 140 && va < 260, "%zu of %d in validation at 0.2", va, N);
    split_marks(N, 0.2, 12, c, &vc);
    CHECK(memcmp(a, c, N) != 0); /* the seed matters */
    split_marks(N, 0.0, 11, c, &v0);
    CHECK(v0 == 0);
    /* a share out of range is refused and nothing moves */
    tune_set all = random_set(10, 3), train = {0}, val = {0};
    CHECK(tune_set_split(&all, 1.0, 1, &train, &val) == HEARTH_ERR_INVALID_ARG);
    CHECK(tune_set_split(&all, -0.1, 1, &train, &val) == HEARTH_ERR_INVALID_ARG);
    CHECK(all.n == 10 && train.n == 0 && val.n == 0);
    tune_set_free(&all);
}

/* ---- real vocabularies (../shared) ---- */

/* A small llama carrying the vocabulary (and template) of vocab_path:
 * every key of a synthetic model, then the vocabulary's keys, and a zero
 * token embedding of the vocabulary's size (tied output). False when
 * ../shared is absent. */
static bool vocab_model(const char *vocab_path, const char *out) {
    gguf_file *v = NULL, *s = NULL;
    if (gguf_open(vocab_path, &v)) return false;
    gguf_arr toks;
    REQUIRE(gguf_get_arr(v, "tokenizer.ggml.tokens", &toks));
    synth_params p = synth_default_params();
    p.n_embd = 32, p.n_layer = 1, p.n_head = 1, p.n_head_kv = 1, p.head_dim = 32, p.n_ff = 64;
    p.tied = true;
    const char *base = tmp("vocab_base.gguf");
    REQUIRE(synth_write(base, &p) == HEARTH_OK && gguf_open(base, &s) == HEARTH_OK);
    gguf_writer *w = NULL;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_copy_kv(w, s) == HEARTH_OK && gguf_writer_copy_kv(w, v) == HEARTH_OK);
    REQUIRE(gguf_writer_set_str(w, "general.architecture", "llama") == HEARTH_OK);
    float *scores = calloc(toks.n, sizeof *scores); /* a BPE vocabulary has none: the synth's go */
    REQUIRE(scores);
    if (!gguf_find(v, "tokenizer.ggml.scores"))
        REQUIRE(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, toks.n) ==
                HEARTH_OK);
    const int64_t ne[2] = {p.n_embd, (int64_t)toks.n};
    const size_t embd_bytes = (size_t)(ne[0] * ne[1]) * sizeof(uint16_t);
    void *embd = calloc(embd_bytes, 1); /* F16 zeros */
    REQUIRE(embd);
    for (int64_t i = 0; i < gguf_n_tensors(s); i++) {
        const gguf_tensor *t = gguf_tensor_at(s, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (!strcmp(name, "token_embd.weight"))
            REQUIRE(gguf_writer_add_tensor(w, name, KERN_F16, 2, ne, embd, embd_bytes) ==
                    HEARTH_OK);
        else
            REQUIRE(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data,
                                           t->n_bytes) == HEARTH_OK);
    }
    REQUIRE(gguf_writer_write(w, out) == HEARTH_OK);
    gguf_writer_free(w);
    free(embd);
    free(scores);
    gguf_close(s);
    gguf_close(v);
    return true;
}

static int32_t special_id(const hearth_model *m, const char *text) {
    int32_t id = -1;
    size_t n = 0;
    REQUIRE(hearth_tokenize(m, text, strlen(text), false, true, &id, 1, &n) == HEARTH_OK && n == 1);
    return id;
}

/* vocab (a ../shared vocabulary) with template tmpl: the turn ends with the
 * token whose text is end_text, not EOS; the answer's ids continue the
 * prompt (Phi-3's special tokens eat the newline after them, so the answer
 * follows <|assistant|> directly and takes SentencePiece's space), and with
 * a BPE vocabulary they are the answer's own tokens; an answer quoting
 * end_text keeps it as text. */
static void shared_case(const char *vocab, const char *tmpl, const char *end_text, bool bpe) {
    char path[4096];
    snprintf(path, sizeof path, "%s/conformance/tokenizer/ggml-vocab-%s.gguf", HEARTH_SHARED_DIR,
             vocab);
    char name[64];
    snprintf(name, sizeof name, "vocab-%s.gguf", vocab);
    const char *model = tmp(name);
    if (!vocab_model(path, model)) {
        printf("test_tune_data: %s is absent; the %s vocabulary is not checked\n", path, vocab);
        return;
    }
    fixture f;
    fixture_open(&f, model, tmpl);
    const int32_t end = special_id(f.m, end_text);
    CHECKF(end != hearth_token_eos(f.m), "%s: %s is EOS", vocab, end_text);
    /* the third answer holds the turn's end as text: it must stay text */
    char text[512];
    snprintf(text, sizeof text,
             "{\"prompt\": \"Name a colour.\", \"completion\": \"Blue\"}\n"
             "{\"system\": \"Be brief.\", \"prompt\": \"And a number?\", \"completion\": \" "
             "Seven, or 7.\\nDone.\"}\n"
             "{\"prompt\": \"Quote it\", \"completion\": \"It ends with %s here\"}\n",
             end_text);
    const char *data = tmp("shared.jsonl");
    FILE *fp = fopen(data, "wb");
    REQUIRE(fp);
    fputs(text, fp);
    fclose(fp);
    tune_set s = {0};
    REQUIRE(tune_set_add_jsonl(&s, f.m, &f.r, data) == HEARTH_OK);
    REQUIRE(s.n == 3);
    const tok_chat_msg a[] = {MSG(USER, "Name a colour.")};
    check_example(&f, &s.ex[0], a, 1, "Blue", end, JOINED | (bpe ? OWN : 0u));
    const tok_chat_msg b[] = {MSG(SYSTEM, "Be brief."), MSG(USER, "And a number?")};
    check_example(&f, &s.ex[1], b, 2, " Seven, or 7.\nDone.", end, JOINED | (bpe ? OWN : 0u));
    const tok_chat_msg c[] = {MSG(USER, "Quote it")};
    char quoted[128];
    snprintf(quoted, sizeof quoted, "It ends with %s here", end_text);
    check_example(&f, &s.ex[2], c, 1, quoted, end, OWN);
    tune_set_free(&s);
    fixture_close(&f);
}

static void test_shared(void) {
    shared_case("llama-bpe", "llama3", "<|eot_id|>", true);
    shared_case("phi-3", NULL, "<|end|>", false); /* its own template: phi3-mini */
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/test_tune_data.XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    synth_params p = synth_default_params();
    p.n_embd = 64, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.head_dim = 32, p.n_ff = 128;
    p.n_ctx = 512;
    const char *model = tmp("synth.gguf");
    REQUIRE(synth_write(model, &p) == HEARTH_OK);
    fixture f;
    fixture_open(&f, model, NULL);
    test_jsonl(&f);
    test_jsonl_errors(&f);
    test_template_refusal(model);
    test_too_long(&f);
    test_ledger(&f);
    test_split();
    test_shared();
    fixture_close(&f);
    if (test_failures) /* kept for a look */
        printf("test_tune_data: files kept in %s\n", dir);
    else {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    return test_done("test_tune_data");
}
