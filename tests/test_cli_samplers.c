/*
 * test_cli_samplers.c - llama.cpp's sampler options on `hearth run` and
 * `hearth chat` (llama.cpp's names: --typical, --top-nsigma, --xtc-*,
 * --mirostat, --mirostat-ent, --mirostat-lr, --dry-*, --ignore-eos,
 * --min-keep, --dynatemp-range, --dynatemp-exp, --samplers, --sampler-seq):
 * each run's text equals the library's for the same settings and seed, and
 * bad values are refused before or at the sampler, naming the option or
 * field.
 */
#include "test.h"
#include "test_sh.h"

#include "server/model_fixture.h"
#include "sampler_cases.h"
#include "sampler_order_cases.h"
#include "server/sse_choices.h"

#include <unistd.h>

static char scratch[] = "/tmp/hearth_cli_smp_XXXXXX";
static const char *const no_breakers[1] = {NULL};
static const char prompt_text[] = "Once upon a time";

/* --dry-sequence-breaker none after another: no breakers at all */
static void set_dry_none(hearth_sampling *s) {
    sampler_case_named("dry")->set(s);
    s->dry_sequence_breakers = no_breakers;
    s->n_dry_sequence_breakers = 0;
}

static char *slurp(const char *path) {
    char *t = test_read_file(path, NULL);
    return t ? t : strdup("(unreadable)");
}

/* `hearth run` with c's options after `plain` against the library with c's
 * settings (the same seed). */
static void check_run(const char *path, hearth_model *m, const int32_t *ids, size_t n_ids,
                      const char *plain, const sampler_case *c, const char *out, const char *err) {
    const int rc = test_sh("'%s' run -m '%s' -p '%s' %s %s >'%s' 2>'%s'", HEARTH_BINARY, path,
                           prompt_text, plain, c->cli, out, err);
    char *got = slurp(out);
    hearth_sampling sp = openai_sampling(1.0f, 5);
    c->set(&sp);
    char *want = library_text(m, ids, (int)n_ids, &sp, 10, NULL);
    CHECKF(rc == 0 && !strcmp(got, want), "%s: rc %d, run '%s', library '%s'", c->cli, rc, got,
           want);
    free(got);
    free(want);
}

int main(void) {
    REQUIRE(mkdtemp(scratch));
    char synth[4200], out[4200], err[4200];
    snprintf(synth, sizeof synth, "%s/synth.gguf", scratch);
    snprintf(out, sizeof out, "%s/run.out", scratch);
    snprintf(err, sizeof err, "%s/run.err", scratch);
    const char *path = fixture_model(synth);
    REQUIRE(path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    int32_t ids[64];
    size_t n_ids = 0;
    REQUIRE(hearth_tokenize(m, prompt_text, strlen(prompt_text), true, true, ids, 64, &n_ids) ==
            HEARTH_OK);

    const char *plain = "-n 10 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed 5 -t 1";
    const sampler_case none = {"dry, no breakers", NULL,
                               "--dry-multiplier 4 --dry-base 2 --dry-allowed-length 0 "
                               "--dry-penalty-last-n -1 --dry-sequence-breaker x "
                               "--dry-sequence-breaker none",
                               set_dry_none, false};
    for (int i = 0; i <= N_SAMPLER_CASES; i++)
        check_run(path, m, ids, n_ids, plain, i < N_SAMPLER_CASES ? &sampler_cases[i] : &none, out,
                  err);
    for (int i = 0; i < N_ORDER_CASES; i++)
        check_run(path, m, ids, n_ids, plain, &order_cases[i], out, err);
    /* chat takes them as run does */
    CHECK(test_sh("printf 'hi\\n' | '%s' chat -m '%s' -n 4 --mirostat 1 --ignore-eos "
                  "--typical-p 0.9 --min-keep 2 --dynatemp-range 0.5 --sampling-seq kt -t 1 "
                  ">/dev/null 2>&1",
                  HEARTH_BINARY, path) == 0);
    /* refusals: a value that is no number (usage, 2), one the sampler refuses (1) */
    static const struct {
        const char *flags, *needle;
        int rc;
    } bad[] = {
        {"--typical abc", "--typical", 2},
        {"--mirostat x", "--mirostat", 2},
        {"--dry-allowed-length -1", "--dry-allowed-length", 2},
        {"--dry-sequence-breaker ''", "--dry-sequence-breaker", 2},
        {"--mirostat 3", "mirostat", 1},
        {"--xtc-threshold 2", "xtc_threshold", 1},
        {"--dry-multiplier 1 --dry-base 0.5", "dry_base", 1},
        {"--min-keep -1", "--min-keep", 2},
        {"--dynatemp-exp e", "--dynatemp-exp", 2},
        {"--samplers 'top_k;foo'", "'foo' is not a sampler", 2},
        {"--samplers infill", "Hearth does not have", 2},
        {"--sampler-seq kpz", "--sampler-seq: 'z'", 2},
        {"--dynatemp-range nan", "dynatemp_range", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const int rc = test_sh("'%s' run -m '%s' -p hi -n 2 %s >/dev/null 2>'%s'", HEARTH_BINARY,
                               path, bad[i].flags, err);
        char *e = slurp(err);
        CHECKF(rc == bad[i].rc && strstr(e, bad[i].needle), "%s: rc %d, '%s'", bad[i].flags, rc, e);
        free(e);
    }
    hearth_model_free(m);
    if (!test_failures) {
        unlink(synth);
        unlink(out);
        unlink(err);
        rmdir(scratch);
    }
    return test_done("test_cli_samplers");
}
