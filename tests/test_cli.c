/*
 * test_cli.c - the `hearth` program as a user runs it: synth, info, logits
 * (files in the golden layout, checked against the library and, when
 * ../shared is present, against llama.cpp's golden logits), run, embed, and clear
 * failures on bad input.
 */
#include "golden.h"
#include "hearth.h"
#include "sampling/json_prefix.h"
#include "test.h"
#include "test_sh.h"

#include <math.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void logits_layout(const char *model) {
    char ids_path[128], prefix[128], path[256];
    snprintf(ids_path, sizeof ids_path, "%s/ids.txt", dir);
    snprintf(prefix, sizeof prefix, "%s/out", dir);
    FILE *f = fopen(ids_path, "w");
    REQUIRE(f);
    const int32_t ids[6] = {1, 300, 301, 40, 50, 60};
    fputs("1, 300,301\n40 50\t60\n", f);
    fclose(f);
    char args[512];
    snprintf(args, sizeof args, "--ids %s -o %s --gen 3", ids_path, prefix);
    REQUIRE(test_sh("%s logits -m %s %s", HEARTH_BINARY, model, args) == 0);
    size_t len;
    snprintf(path, sizeof path, "%s.logits.f32", prefix);
    float *got = (float *)golden_read(path, &len);
    hearth_model *m = NULL;
    REQUIRE(got && hearth_model_load(model, NULL, &m) == HEARTH_OK);
    const int nv = hearth_model_n_vocab(m);
    CHECK(len == 6 * (size_t)nv * sizeof(float));
    hearth_session *s = NULL;
    hearth_session_params sp = hearth_session_default_params();
    sp.kv_type = HEARTH_KV_F32; /* hearth logits' default: the goldens' cache */
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    float *want = malloc(6 * (size_t)nv * sizeof(float));
    REQUIRE(want && hearth_decode(s, ids, 6, want, true) == HEARTH_OK);
    double max = 0;
    for (size_t i = 0; i < 6 * (size_t)nv && len == 6 * (size_t)nv * sizeof(float); i++)
        max = fmax(max, fabs((double)got[i] - want[i]));
    CHECKF(max < 1e-5, "hearth logits differs from hearth_decode by %g", max);
    snprintf(path, sizeof path, "%s.gen_logits.f32", prefix);
    float *gen = (float *)golden_read(path, &len);
    CHECK(gen && len == 3 * (size_t)nv * sizeof(float));
    snprintf(path, sizeof path, "%s.json", prefix);
    char *json = golden_read(path, NULL);
    double gen_ids[8];
    CHECK(json && golden_array(json, "gen_ids", gen_ids, 8) == 3);
    free(json);
    free(gen);
    free(want);
    free(got);
    hearth_session_free(s);
    hearth_model_free(m);
}

static void golden_logits(void) {
    char model[1024], golden[1024], ids_path[1024], prefix[128], path[256], args[2048];
    snprintf(model, sizeof model, "%s/conformance/models/tiny-llama/tiny-llama.F32.gguf",
             HEARTH_SHARED_DIR);
    snprintf(golden, sizeof golden, "%s/conformance/prompt_tokens.txt", HEARTH_SHARED_DIR);
    if (access(model, R_OK) || access(golden, R_OK)) {
        printf("SKIP (golden): ../shared/conformance is absent\n");
        return;
    }
    snprintf(ids_path, sizeof ids_path, "%s", golden);
    snprintf(prefix, sizeof prefix, "%s/golden", dir);
    snprintf(args, sizeof args, "--ids %s -o %s --gen 16 --kv-type f32", ids_path, prefix);
    REQUIRE(test_sh("%s logits -m %s %s", HEARTH_BINARY, model, args) == 0);
    const char *const files[] = {"logits.f32", "gen_logits.f32"};
    for (int i = 0; i < 2; i++) {
        size_t n1, n2;
        snprintf(path, sizeof path, "%s.%s", prefix, files[i]);
        float *got = (float *)golden_read(path, &n1);
        snprintf(golden, sizeof golden, "%s/conformance/models/tiny-llama/golden/F32.%s",
                 HEARTH_SHARED_DIR, files[i]);
        float *want = (float *)golden_read(golden, &n2);
        REQUIRE(got && want);
        CHECK(n1 == n2);
        double max = 0;
        for (size_t j = 0; j < n1 / 4 && n1 == n2; j++)
            max = fmax(max, fabs((double)got[j] - want[j]));
        CHECKF(max <= 2e-4, "%s differs from llama.cpp's by %g", files[i], max);
        free(got);
        free(want);
    }
    snprintf(path, sizeof path, "%s.json", prefix);
    snprintf(golden, sizeof golden, "%s/conformance/models/tiny-llama/golden/F32.json",
             HEARTH_SHARED_DIR);
    char *a = golden_read(path, NULL), *b = golden_read(golden, NULL);
    double ga[32], gb[32];
    REQUIRE(a && b);
    const int na = golden_array(a, "gen_ids", ga, 32), nb = golden_array(b, "gen_ids", gb, 32);
    CHECK(na == 16 && na == nb && memcmp(ga, gb, sizeof(double) * 16) == 0);
    free(a);
    free(b);
}

/* `hearth run --json`: the greedy output is a prefix of one JSON object (the
 * library's recognizer says so), complete unless the token limit came first. */
static void json_mode(const char *model) {
    char out[128];
    snprintf(out, sizeof out, "%s/json.txt", dir);
    REQUIRE(test_sh("%s run -m %s -p 'Reply in JSON:' -n 48 --temp 0 --json > %s 2>/dev/null",
                    HEARTH_BINARY, model, out) == 0);
    size_t len = 0;
    char *text = golden_read(out, &len);
    REQUIRE(text);
    smp_json j;
    smp_json_init(&j, true);
    CHECKF(len > 0 && smp_json_feed_bytes(&j, text, len), "run --json printed '%.80s'", text);
    free(text);
}

/* `hearth embed`: one JSON array per input line, equal to hearth_embed's
 * vector for that line; a text too long for --ctx and a bad --pooling fail. */
static void embed_lines(const char *model) {
    char out[128];
    snprintf(out, sizeof out, "%s/embed.jsonl", dir);
    REQUIRE(test_sh("printf 'first text\\n\\nsecond one\\n' | %s embed -m %s --pooling last > %s",
                    HEARTH_BINARY, model, out) == 0);
    hearth_model *m = NULL;
    hearth_session *s = NULL;
    REQUIRE(hearth_model_load(model, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_session_new(m, NULL, &s) == HEARTH_OK);
    const int d = hearth_model_n_embd(m);
    float *want = malloc((size_t)d * sizeof *want);
    REQUIRE(want);
    FILE *f = fopen(out, "r");
    REQUIRE(f);
    static const char *const texts[] = {"first text", "second one"};
    char *line = NULL;
    size_t cap = 0;
    int n_lines = 0;
    while (getline(&line, &cap, f) > 0) {
        if (n_lines >= 2) {
            n_lines++;
            break;
        }
        int32_t ids[64];
        size_t n = 0;
        REQUIRE(hearth_tokenize(m, texts[n_lines], strlen(texts[n_lines]), true, false, ids, 64,
                                &n) == HEARTH_OK);
        REQUIRE(hearth_embed(s, ids, (int)n, HEARTH_POOL_LAST, true, want) == HEARTH_OK);
        const char *p = line;
        int k = 0;
        double worst = 0;
        for (; *p == '[' || *p == ','; k++) {
            char *end;
            const double v = strtod(p + 1, &end);
            if (end == p + 1 || k >= d) break;
            worst = fmax(worst, fabs(v - want[k]));
            p = end;
        }
        CHECKF(k == d && *p == ']' && worst < 1e-6, "embed line %d: %d of %d numbers, off by %g",
               n_lines, k, d, worst);
        n_lines++;
    }
    CHECKF(n_lines == 2, "embed: %d lines for 2 texts (the empty line is skipped)", n_lines);
    free(line);
    fclose(f);
    free(want);
    hearth_session_free(s);
    hearth_model_free(m);
    CHECK(test_sh("%s embed -m %s --ctx 4 'far too many words for four tokens' 2>/dev/null",
                  HEARTH_BINARY, model) == 1);
    CHECK(test_sh("%s embed -m %s --pooling max hi 2>/dev/null", HEARTH_BINARY, model) == 2);
}

/* Reads a whole small file into buf (NUL-terminated); its length, or -1. */
static long slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

/* hearth chat: the first greedy reply is what `hearth run` writes after the
 * ChatML text of that turn (the synthetic model has no template: ChatML);
 * the second turn reuses the first's KV cache; a conversation longer than
 * the context drops its oldest exchange and goes on; bad input fails clearly. */
static void chat_session(const char *model) {
    char out[256], err[256], prompt[256], run_out[256], a[4096], b[4096];
    snprintf(out, sizeof out, "%s/chat.out", dir);
    snprintf(err, sizeof err, "%s/chat.err", dir);
    snprintf(prompt, sizeof prompt, "%s/chat.prompt", dir);
    snprintf(run_out, sizeof run_out, "%s/run.out", dir);
    CHECK(test_sh("printf 'hello there\\n' | %s chat -m %s --temp 0 -n 8 >%s 2>/dev/null",
                  HEARTH_BINARY, model, out) == 0);
    FILE *f = fopen(prompt, "w");
    REQUIRE(f);
    fputs("<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n", f);
    fclose(f);
    CHECK(test_sh("%s run -m %s --temp 0 -n 8 -f %s >%s 2>/dev/null", HEARTH_BINARY, model, prompt,
                  run_out) == 0);
    long na = slurp(out, a, sizeof a), nb = slurp(run_out, b, sizeof b);
    CHECKF(na == nb + 1 && na > 1 && !memcmp(a, b, (size_t)nb) && a[nb] == '\n',
           "chat reply (%ld bytes) differs from run (%ld bytes)", na, nb);
    /* --context-shift: a reply longer than the context, the conversation
     * kept, as `hearth run --context-shift --keep -1` on that turn's text;
     * without it the reply stops at the context */
    CHECK(test_sh("printf 'hello there\\n' | %s chat -m %s --temp 0 -n 150 -c 96 --context-shift "
                  ">%s 2>%s",
                  HEARTH_BINARY, model, out, err) == 0);
    CHECK(test_sh("%s run -m %s --temp 0 -n 150 -c 96 --context-shift --keep -1 -f %s >%s "
                  "2>/dev/null",
                  HEARTH_BINARY, model, prompt, run_out) == 0);
    na = slurp(out, a, sizeof a);
    nb = slurp(run_out, b, sizeof b);
    CHECKF(na == nb + 1 && !memcmp(a, b, (size_t)nb), "shifted chat reply (%ld bytes), run %ld", na,
           nb);
    CHECK(slurp(err, a, sizeof a) > 0 && strstr(a, "[context shift: "));
    CHECK(test_sh("printf 'hello there\\n' | %s chat -m %s --temp 0 -n 150 -c 96 >%s 2>%s",
                  HEARTH_BINARY, model, out, err) == 0);
    na = slurp(out, a, sizeof a);
    CHECKF(na > 1 && na < nb, "chat without --context-shift: %ld bytes, shifted %ld", na, nb);

    CHECK(test_sh("printf 'first\\nsecond\\n/clear\\nthird \\\\\\nline\\n' | %s chat -m %s "
                  "--temp 0 -n 4 --verbose >%s 2>%s",
                  HEARTH_BINARY, model, out, err) == 0);
    CHECK(slurp(err, a, sizeof a) > 0);
    const char *t2 = strstr(a, "[prompt:");
    t2 = t2 ? strstr(t2 + 1, "[prompt:") : NULL;
    int p2 = 0, c2 = 0;
    CHECKF(t2 && sscanf(t2, "[prompt: %d tokens (%d cached)", &p2, &c2) == 2 && c2 > 20,
           "second turn: %.200s", a);
    CHECK(slurp(out, b, sizeof b) > 0 && strstr(b, "[conversation cleared]"));
    CHECK(test_sh("for i in 1 2 3 4 5 6; do echo \"message number $i with words\"; done | %s chat "
                  "-m %s --temp 0 -n 8 -c 128 >/dev/null 2>%s",
                  HEARTH_BINARY, model, err) == 0);
    CHECK(slurp(err, a, sizeof a) > 0 && strstr(a, "oldest exchange was dropped"));
    CHECK(test_sh("%s chat -m %s --temp abc 2>/dev/null </dev/null", HEARTH_BINARY, model) == 2);
    CHECK(test_sh("%s chat -m %s --chat-template nosuch 2>&1 </dev/null | grep -q 'nosuch'",
                  HEARTH_BINARY, model) == 0);
    CHECK(test_sh("echo hi | %s chat -m %s --chat-template nosuch 2>/dev/null", HEARTH_BINARY,
                  model) == 1);
    CHECK(
        test_sh("printf '/foo\\n' | %s chat -m %s -n 2 2>&1 >/dev/null | grep -q 'unknown command'",
                HEARTH_BINARY, model) == 0);
    /* a message over 1 MiB in a script is dropped and stops it (exit 1), the
     * next line is not answered as if nothing happened */
    CHECK(test_sh("(head -c 1100000 /dev/zero | tr '\\0' a; echo; echo hi) | %s chat -m %s -n 2 "
                  ">/dev/null 2>&1",
                  HEARTH_BINARY, model) == 1);
    CHECK(test_sh("%s embed -m %s --ctx 12x hi 2>/dev/null", HEARTH_BINARY, model) == 2);
    CHECK(test_sh("echo '{}' | %s run -m %s --json-schema - 2>/dev/null", HEARTH_BINARY, model) ==
          2);
}

/* Options that take a number refuse one with junk after it (atoi read "2x"
 * as 2) and empty lists; exit 2, a usage error. */
static void bad_numbers(void) {
    const char *const cmds[] = {
        "synth -o x.gguf --layers 2x",
        "synth -o x.gguf --embd 64k",
        "synth -o x.gguf --ctx ''",
        "bench -m m.gguf -r 3x",
        "bench -m m.gguf --latency-prompt 8k",
        "bench -m m.gguf -t ''",
        "logits -m m.gguf --ids none -o out --gen 3x",
        "logits -m m.gguf --ids none -o out -t 2x",
        "quantize m.gguf q.gguf Q8_0 4x",
        "synth -o x.gguf --seed 7x",
        "bench -m m.gguf --seed -1",
        "bench -m m.gguf --seed 99999999999999999999",
        "run -m m.gguf -p hi --seed ' 5'",
        "quantize -t x m.gguf q.gguf Q8_0",
        "router train -o r.bin --data --from-ledger none.db",
        "router train -o r.bin --char-ngrams -1-5 --data none.jsonl",
        "router train -o r.bin --char-ngrams 2-5x --data none.jsonl",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const int rc = test_sh("cd %s && %s %s >/dev/null 2>&1", dir, HEARTH_BINARY, cmds[i]);
        CHECKF(rc == 2, "hearth %s: exit %d, not 2", cmds[i], rc);
    }
}

/* The KV cache's reserved MiB in `hearth run`'s memory line in file err. */
static double kv_mib(const char *err) {
    char text[8192];
    if (slurp(err, text, sizeof text) <= 0) return -1;
    const char *at = strstr(text, "KV cache ");
    return at ? strtod(at + 9, NULL) : -1;
}

/* --swa-full: a Gemma 3 model's window layers keep every position; the
 * text is the same, the cache larger (docs/kv-cache.md). */
static void swa_full(void) {
    char model[256], prompt[256], out[2][256], err[2][256], a[4096], b[4096];
    snprintf(model, sizeof model, "%s/g3.gguf", dir);
    snprintf(prompt, sizeof prompt, "%s/long.prompt", dir);
    CHECK(test_sh("%s synth -o %s --arch gemma3 --layers 3 --embd 64 --head-dim 16 --ff 128 "
                  "--swa-window 8 --ctx 2048 >/dev/null",
                  HEARTH_BINARY, model) == 0);
    FILE *f = fopen(prompt, "w");
    REQUIRE(f);
    for (int i = 0; i < 150; i++) fputs("the cat sat on ", f); /* about 900 tokens */
    fclose(f);
    for (int k = 0; k < 2; k++) {
        snprintf(out[k], sizeof out[k], "%s/swa%d.out", dir, k);
        snprintf(err[k], sizeof err[k], "%s/swa%d.err", dir, k);
        CHECK(test_sh("%s run -m %s -c 1024 --temp 0 -n 16 -f %s %s >%s 2>%s", HEARTH_BINARY, model,
                      prompt, k ? "--swa-full" : "", out[k], err[k]) == 0);
    }
    const long na = slurp(out[0], a, sizeof a), nb = slurp(out[1], b, sizeof b);
    CHECKF(na > 0 && na == nb && !memcmp(a, b, (size_t)na), "--swa-full changed the text");
    const double wa = kv_mib(err[0]), wb = kv_mib(err[1]);
    CHECKF(wa > 0 && wb > wa, "KV cache %.2f MiB windowed, %.2f MiB with --swa-full", wa, wb);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hearth-test-cli-%d", (int)getpid());
    char model[128], bad[128];
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    REQUIRE(system(cmd) == 0);
    CHECK(test_sh("%s synth -o %s --type q8_0 --layers 2 >/dev/null", HEARTH_BINARY, model) == 0);
    CHECK(test_sh("%s info %s | grep -q 'blk.1.ffn_down.weight'", HEARTH_BINARY, model) == 0);
    CHECK(test_sh("%s run -m %s -p 'Once upon a time' -n 8 --temp 0 >/dev/null 2>&1", HEARTH_BINARY,
                  model) == 0);
    CHECK(test_sh("echo 'Once upon' | %s run -m %s -n 4 >/dev/null 2>&1", HEARTH_BINARY, model) ==
          0);
    CHECK(test_sh("%s tokenize -m %s 'Hello world' | grep -Eq '^[0-9 ]+$'", HEARTH_BINARY, model) ==
          0);
    json_mode(model);
    logits_layout(model);
    golden_logits();
    embed_lines(model);
    chat_session(model);
    swa_full();
    /* Bad input: a clear error and exit 1, never a crash. */
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    FILE *f = fopen(bad, "wb");
    REQUIRE(f);
    fputs("GGUF\x03\0\0\0garbage", f);
    fclose(f);
    CHECK(test_sh("%s info %s 2>&1 | grep -q 'gguf'", HEARTH_BINARY, bad) == 0);
    CHECK(test_sh("%s run -m %s -p hi 2>/dev/null", HEARTH_BINARY, bad) == 1);
    CHECK(test_sh("%s run -m /nonexistent.gguf -p hi 2>/dev/null", HEARTH_BINARY) == 1);
    CHECK(test_sh("%s nosuchcommand 2>/dev/null", HEARTH_BINARY) == 2);
    bad_numbers();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_done("cli");
}
