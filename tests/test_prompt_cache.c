/*
 * test_prompt_cache.c - `hearth run --prompt-cache FILE [--prompt-cache-ro]`
 * (llama-cli's prompt cache) as a user runs it, on ../shared's tiny-llama
 * when present, else a model written by `hearth synth`: the text generated
 * is byte for byte the text of a run without the cache (greedy and seeded
 * sampling), for the same prompt (all of it reused, nothing evaluated) and
 * for a longer one (its cached prefix reused, the rest evaluated); stderr
 * says how many prompt tokens were reused; FILE is written once the prompt
 * is evaluated, never with -ro, and not when it held the whole prompt
 * already; no FILE or an empty one starts a new cache; a file of another
 * model, another KV type or no session file at all is a clear error.
 */
#include "test.h"
#include "test_sh.h"

#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/hearth_prompt_cache_XXXXXX";
static const char *model;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    REQUIRE(buf);
    const size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* `hearth run` of prompt with the extra options; its stdout in *out and
 * stderr in *err (malloc'd); the exit status. */
static int run(const char *prompt, const char *opts, char **out, char **err) {
    char o[128], e[128];
    snprintf(o, sizeof o, "%s/out.txt", dir);
    snprintf(e, sizeof e, "%s/err.txt", dir);
    const int rc = test_sh("%s run -m %s -p '%s' -n 24 %s > %s 2> %s", HEARTH_BINARY, model, prompt,
                           opts, o, e);
    *out = slurp(o);
    *err = slurp(e);
    REQUIRE(*out && *err);
    return rc;
}

/* The reuse count stderr reports ("R of N prompt tokens reused"); -1 when
 * absent. */
static int reused(const char *err, int *n) {
    const char *p = strstr(err, "prompt cache: ");
    int r = -1;
    if (!p || sscanf(p, "prompt cache: %d of %d prompt tokens reused", &r, n) != 2) return -1;
    return r;
}

static long file_id(const char *path) {
    struct stat st;
    if (stat(path, &st)) return -1;
    /* a save renames a new file over it: another inode */
    return (long)st.st_ino ^ ((long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec);
}

/* One sampling setting: plain runs, then cached ones, equal. */
static void check_sampling(const char *sampling) {
    const char *p1 = "Once upon a time there was a little";
    const char *p2 = "Once upon a time there was a little dog who liked to run";
    const char *p0 = "Once upon a time";
    char cache[128], opts[512];
    snprintf(cache, sizeof cache, "%s/cache.bin", dir);
    unlink(cache);
    char *plain1, *plain2, *plain0, *out, *err, *e;
    REQUIRE(run(p1, sampling, &plain1, &e) == 0);
    free(e);
    REQUIRE(run(p2, sampling, &plain2, &e) == 0);
    free(e);
    REQUIRE(run(p0, sampling, &plain0, &e) == 0);
    free(e);
    CHECK(strlen(plain1) > 0);

    /* no file yet: nothing reused, saved after the prompt */
    snprintf(opts, sizeof opts, "%s --prompt-cache %s", sampling, cache);
    CHECK(run(p1, opts, &out, &err) == 0);
    int n1 = 0, n2 = 0, n0 = 0;
    CHECKF(!strcmp(out, plain1), "%s: the first cached run's text differs", sampling);
    CHECKF(reused(err, &n1) == 0 && n1 > 4 && strstr(err, "saved"), "%s: %s", sampling, err);
    free(out);
    free(err);
    const long t_saved = file_id(cache);
    CHECK(t_saved > 0);

    /* the same prompt: all of it reused (the saved logits), not written */
    CHECK(run(p1, opts, &out, &err) == 0);
    CHECKF(!strcmp(out, plain1), "%s: the text with the whole prompt cached differs", sampling);
    int n = 0;
    CHECKF(reused(err, &n) == n1 && n == n1 && !strstr(err, "saved"), "%s: %s", sampling, err);
    CHECK(strstr(err, "prompt: 0 tokens") != NULL);
    CHECK(file_id(cache) == t_saved);
    free(out);
    free(err);

    /* a longer prompt, read-only: the prefix reused, the file untouched */
    snprintf(opts, sizeof opts, "%s --prompt-cache %s --prompt-cache-ro", sampling, cache);
    CHECK(run(p2, opts, &out, &err) == 0);
    CHECKF(!strcmp(out, plain2), "%s: the text with a cached prefix differs", sampling);
    CHECKF(reused(err, &n2) == n1 && n2 > n1 && !strstr(err, "saved"), "%s: %s", sampling, err);
    CHECK(file_id(cache) == t_saved);
    free(out);
    free(err);

    /* ... and written: then all of it is there */
    snprintf(opts, sizeof opts, "%s --prompt-cache %s", sampling, cache);
    CHECK(run(p2, opts, &out, &err) == 0);
    CHECK(!strcmp(out, plain2) && reused(err, &n) == n1 && strstr(err, "saved"));
    free(out);
    free(err);
    CHECK(run(p2, opts, &out, &err) == 0);
    CHECK(!strcmp(out, plain2) && reused(err, &n) == n2);
    free(out);
    free(err);

    /* a prompt the file holds more than: its last token evaluated again
     * for its logits, and the file kept (llama-cli's rule) */
    const long t2 = file_id(cache);
    CHECK(run(p0, opts, &out, &err) == 0);
    CHECKF(!strcmp(out, plain0), "%s: the text of a prefix of the cache differs", sampling);
    CHECKF(reused(err, &n0) == n0 - 1 && !strstr(err, "saved"), "%s: %s", sampling, err);
    CHECK(file_id(cache) == t2);
    free(out);
    free(err);
    free(plain0);
    free(plain1);
    free(plain2);
}

static void check_errors(void) {
    char cache[128], other[128], opts[512];
    snprintf(cache, sizeof cache, "%s/cache.bin", dir);
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    char *out, *err;
    /* another KV type than the file's */
    snprintf(opts, sizeof opts, "--kv-type f32 --prompt-cache %s", cache);
    CHECK(run("Once upon", opts, &out, &err) == 1);
    CHECKF(strstr(err, "--kv-type must match") && !*out, "%s", err);
    free(out);
    free(err);
    /* another model's file */
    REQUIRE(test_sh("%s synth -o %s --arch qwen2 > /dev/null", HEARTH_BINARY, other) == 0);
    CHECK(test_sh("%s run -m %s -p hi --prompt-cache %s 2> %s/err.txt", HEARTH_BINARY, other, cache,
                  dir) == 1);
    char path[160];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    err = slurp(path);
    CHECKF(err && strstr(err, "for another model"), "%s", err ? err : "");
    free(err);
    /* not a session file */
    FILE *f = fopen(cache, "wb");
    REQUIRE(f && fputs("not a cache at all, but long enough to hold a header of ninety-six "
                       "bytes, which it does not have the magic of",
                       f) >= 0);
    fclose(f);
    snprintf(opts, sizeof opts, "--prompt-cache %s", cache);
    CHECK(run("Once upon", opts, &out, &err) == 1);
    CHECKF(strstr(err, "not a Hearth session file"), "%s", err);
    free(out);
    free(err);
    /* an empty file: a new cache */
    f = fopen(cache, "wb");
    REQUIRE(f);
    fclose(f);
    CHECK(run("Once upon", opts, &out, &err) == 0);
    int n = 0;
    CHECKF(reused(err, &n) == 0 && strstr(err, "saved"), "%s", err);
    free(out);
    free(err);
    CHECK(test_sh("%s run -m %s -p hi --prompt-cache-ro 2> /dev/null", HEARTH_BINARY, model) == 2);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    static char path[512];
    snprintf(path, sizeof path, "%s/conformance/models/tiny-llama/tiny-llama.Q8_0.gguf",
             HEARTH_SHARED_DIR);
    if (access(path, R_OK) != 0) {
        snprintf(path, sizeof path, "%s/synth.gguf", dir);
        REQUIRE(test_sh("%s synth -o %s --type q8_0 > /dev/null", HEARTH_BINARY, path) == 0);
    }
    model = path;
    check_sampling("--temp 0");
    check_sampling("--temp 1 --seed 42");
    check_sampling("--temp 0 --kv-type q8_0 -c 64");
    check_errors();
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0) printf("could not remove %s\n", dir);
    return test_done("prompt_cache");
}
