/*
 * cmd_run.c - `hearth run`: generate text from a prompt and stream it to
 * stdout, then report prompt and generation speed on stderr (as llama.cpp's
 * CLI does).
 */
#include "cli.h"

#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static const char run_usage[] =
    "usage: hearth run -m FILE [-p PROMPT | -f FILE] [options]\n"
    "  Generates text after PROMPT (from -f FILE, or stdin when neither or '-p -' is given).\n"
    "  (-n defaults to 128)\n" CLI_GEN_USAGE CLI_SPEC_USAGE
    "  --stop STR          stop string (repeatable, up to 16; not printed)\n"
    "  --context-shift     when the context is full, forget the older half of the text after\n"
    "                      the first --keep tokens and go on (llama.cpp's; -n -1: until the\n"
    "                      model ends); what was forgotten no longer counts\n"
    "  --keep N            prompt tokens a shift keeps, after the BOS (default 0; -1: all)\n"
    "  --no-parse-special  treat text like <|eot_id|> in the prompt as plain text\n"
    "  --prompt-cache FILE reuse the prompt's longest common prefix with the session in FILE\n"
    "                      (llama-cli's; when it exists and is not empty) and save the\n"
    "                      session there once the prompt is evaluated\n"
    "  --prompt-cache-ro   reuse FILE but never write it\n"
    "  --suffix TEXT       fill in the middle: the prompt is the code before the cursor,\n"
    "                      TEXT the code after it (needs a model with FIM tokens, such as\n"
    "                      Qwen2.5-Coder; special-token text stays text)\n"
    "  --mmproj FILE       a vision projector for the model (llama.cpp's mmproj GGUF;\n"
    "                      docs/vision.md)\n"
    "  --image FILE        a PNG or JPEG image for the prompt (repeatable, up to 16; needs\n"
    "                      --mmproj): each <__media__> in the prompt stands for the next one;\n"
    "                      without any, the images come before the text\n"
    "  --json              JSON mode: only tokens that keep the output one JSON object;\n"
    "                      it ends when the object is complete\n"
    "  --json-schema FILE  structured output: only tokens that keep the output one JSON\n"
    "                      value valid against the JSON Schema in FILE ('-': stdin); it\n"
    "                      ends when the value is complete. Supported keywords and the\n"
    "                      output's rules: docs/structured-output.md\n";

enum {
    RUN_MAX_STOPS = 16,
    RUN_MAX_PROMPT = 64 << 20,
    RUN_MAX_SCHEMA = 1 << 20,
    RUN_MAX_IMAGES = 16
};

/* All of f, NUL-terminated, when it holds at most max bytes; `what` names it
 * in the error. */
static char *read_stream(FILE *f, size_t max, const char *what, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n + 1 == cap) {
            if (cap >= max) {
                fprintf(stderr, "hearth run: %s is over %zu KiB\n", what, max >> 10);
                free(buf);
                return NULL;
            }
            char *grown = realloc(buf, cap * 2);
            if (!grown) free(buf);
            buf = grown;
            cap *= 2;
        }
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static bool print_token(const hearth_token_event *ev, void *user) {
    (void)user;
    fwrite(ev->text, 1, ev->len, stdout);
    fflush(stdout);
    return true;
}

typedef struct run_opts {
    const char *model, *prompt, *prompt_file, *schema_file, *suffix;
    const char *prompt_cache; /* --prompt-cache FILE (NULL: none) */
    bool prompt_cache_ro;
    cli_gen_opts g;
    cli_spec_opts spec;
    const char *stops[RUN_MAX_STOPS];
    bool parse_special;
    int keep; /* --keep: llama.cpp's count, after the BOS */
    const char *mmproj;
    const char *images[RUN_MAX_IMAGES];
    int n_images;
    cli_media media; /* the images, encoded */
} run_opts;

static int parse_run(int argc, char **argv, run_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(run_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            if (o->g.smp.grammar) {
                fprintf(stderr, "hearth run: --json cannot be combined with --grammar\n");
                return 2;
            }
            o->g.smp.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
            continue;
        }
        if (!strcmp(a, "--no-parse-special")) {
            o->parse_special = false;
            continue;
        }
        if (!strcmp(a, "--prompt-cache-ro")) {
            o->prompt_cache_ro = true;
            continue;
        }
        if (!strcmp(a, "--context-shift")) {
            o->g.gen.ctx_shift = true;
            continue;
        }
        if (cli_gen_flag(a, &o->g)) continue;
        const int lr = cli_model_opt("run", argc, argv, &i, &o->g.lora);
        if (lr < 0) return 2;
        if (lr) continue;
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth run: option '%s' needs a value\n", a);
            return 2;
        }
        int r = cli_gen_opt("run", a, v, &o->g);
        if (!r) r = cli_spec_opt("run", a, v, &o->spec);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "-m"))
            o->model = v;
        else if (!strcmp(a, "-p"))
            o->prompt = v;
        else if (!strcmp(a, "-f"))
            o->prompt_file = v;
        else if (!strcmp(a, "--suffix"))
            o->suffix = v;
        else if (!strcmp(a, "--mmproj"))
            o->mmproj = v;
        else if (!strcmp(a, "--image")) {
            if (o->n_images == RUN_MAX_IMAGES) {
                fprintf(stderr, "hearth run: at most %d images\n", RUN_MAX_IMAGES);
                return 2;
            }
            o->images[o->n_images++] = v;
        } else if (!strcmp(a, "--prompt-cache"))
            o->prompt_cache = v;
        else if (!strcmp(a, "--keep")) {
            if (!cli_parse_int(v, -1, 1L << 30, &o->keep)) {
                fprintf(stderr, "hearth run: --keep wants an integer >= -1, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--json-schema"))
            o->schema_file = v;
        else if (!strcmp(a, "--stop")) {
            if (o->g.gen.n_stop == RUN_MAX_STOPS) {
                fprintf(stderr, "hearth run: at most %d stop strings\n", RUN_MAX_STOPS);
                return 2;
            }
            o->stops[o->g.gen.n_stop++] = v;
        } else {
            fprintf(stderr, "hearth run: unknown option '%s'\n%s", a, run_usage);
            return 2;
        }
    }
    if (!o->model) {
        fputs(run_usage, stderr);
        return 2;
    }
    if (o->prompt_cache_ro && !o->prompt_cache) {
        fprintf(stderr, "hearth run: --prompt-cache-ro needs --prompt-cache FILE\n");
        return 2;
    }
    if (o->n_images && (!o->mmproj || o->suffix || o->prompt_cache)) {
        fprintf(stderr, "hearth run: --image needs --mmproj, and goes with neither --suffix nor "
                        "--prompt-cache\n");
        return 2;
    }
    if (cli_spec_resolve("run", &o->spec)) return 2;
    if (o->schema_file && o->g.smp.grammar) {
        fprintf(stderr, "hearth run: --json-schema cannot be combined with --grammar\n");
        return 2;
    }
    const bool prompt_on_stdin = !o->prompt_file && (!o->prompt || !strcmp(o->prompt, "-"));
    if (o->schema_file && !strcmp(o->schema_file, "-") && prompt_on_stdin) {
        fprintf(stderr,
                "hearth run: --json-schema - reads stdin, so give the prompt with -p or -f\n");
        return 2;
    }
    return -1;
}

static char *load_prompt(const run_opts *o, size_t *len) {
    if (o->prompt && strcmp(o->prompt, "-") != 0) {
        *len = strlen(o->prompt);
        return strdup(o->prompt);
    }
    FILE *f = o->prompt_file ? fopen(o->prompt_file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "hearth run: cannot open '%s': %s\n", o->prompt_file, hr_strerror(errno));
        return NULL;
    }
    char *text = read_stream(f, RUN_MAX_PROMPT, "the prompt", len);
    if (f != stdin) fclose(f);
    return text;
}

/* --json-schema: the schema text, checked before the model is loaded so a
 * bad schema fails at once with the library's message. NULL on failure
 * (reported). */
static char *load_schema(const char *path) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "hearth run: cannot open '%s': %s\n", path, hr_strerror(errno));
        return NULL;
    }
    size_t len = 0;
    char *text = read_stream(f, RUN_MAX_SCHEMA, "the schema", &len);
    if (f != stdin) fclose(f);
    if (text && strlen(text) != len) {
        fprintf(stderr, "hearth run: '%s' contains a NUL byte\n", path);
        free(text);
        return NULL;
    }
    if (text && hearth_json_schema_check(text)) {
        fprintf(stderr, "hearth run: --json-schema '%s': %s\n", path, hearth_last_error());
        free(text);
        return NULL;
    }
    return text;
}

/* The session's memory beside the process's peak resident set: what the
 * README's memory statement is checked against. */
static void print_memory(const hearth_session *s) {
    const double mib = 1024.0 * 1024.0;
    hearth_memory mem = hearth_session_memory(s);
    struct rusage ru;
    double peak = getrusage(RUSAGE_SELF, &ru) ? 0.0 : (double)ru.ru_maxrss * 1024.0 / mib;
    const uint64_t model = mem.file_bytes - mem.packed_file_bytes + mem.packed_bytes;
    fprintf(stderr, "memory: model %.1f MiB (file %.1f MiB mapped", (double)model / mib,
            (double)mem.file_bytes / mib);
    if (mem.packed_bytes)
        fprintf(stderr, ", %.1f MiB of it repacked into %.1f MiB",
                (double)mem.packed_file_bytes / mib, (double)mem.packed_bytes / mib);
    fprintf(stderr, ") + KV cache %.1f MiB + buffers %.1f MiB = %.1f MiB | peak RSS %.1f MiB\n",
            (double)mem.kv_bytes / mib, (double)mem.buffer_bytes / mib,
            (double)(model + mem.kv_bytes + mem.buffer_bytes) / mib, peak);
}

/* The prompt's tokens, or with --suffix the fill-in-the-middle sequence
 * (hearth_tokenize_fim); *n is the count needed when ids is too small. */
static hearth_err prompt_ids(hearth_model *m, const run_opts *o, const char *text, size_t len,
                             int32_t *ids, size_t cap, size_t *n) {
    if (o->media.n)
        return hearth_tokenize_media(m, o->media.vision, text, len, true, o->parse_special,
                                     o->media.hashes, o->media.n, ids, cap, n);
    if (o->suffix)
        return hearth_tokenize_fim(m, text, len, o->suffix, strlen(o->suffix), ids, cap, n);
    return hearth_tokenize(m, text, len, true, o->parse_special, ids, cap, n);
}

/* The generation's parameters for the prompt ids: --keep counts after the
 * BOS, as llama.cpp's does. */
static const hearth_gen_params *gen_params(const hearth_model *m, const run_opts *o,
                                           const int32_t *ids, hearth_gen_params *gp) {
    *gp = o->g.gen;
    gp->n_keep = o->keep < 0 ? -1 : o->keep + (ids[0] == hearth_token_bos(m));
    return gp;
}

/* --prompt-cache: loads FILE into s when it exists and is not empty (as
 * llama-cli: no file, or an empty one, starts a new cache; one that cannot
 * be used is an error). *save: whether to write FILE once the prompt is in,
 * which llama-cli skips when FILE held the whole prompt already. */
static int cache_load(hearth_session *s, const run_opts *o, const int32_t *ids, int n, bool *save) {
    *save = o->prompt_cache && !o->prompt_cache_ro;
    struct stat st;
    if (!o->prompt_cache || stat(o->prompt_cache, &st) != 0 || st.st_size == 0) return 0;
    if (hearth_session_load(s, o->prompt_cache, NULL)) return cli_fail("run", "--prompt-cache");
    int n_exact = 0, k = 0;
    const int32_t *held = hearth_session_tokens(s, &n_exact);
    while (k < n_exact && k < n && held[k] == ids[k]) k++;
    if (k == n) *save = false;
    return 0;
}

/* hearth_generate's steps, with the prompt cache saved between the prompt
 * and the first token. */
static hearth_err run_steps(hearth_session *s, hearth_sampler *smp, const int32_t *ids, int n,
                            const hearth_gen_params *gp, const run_opts *o, bool save,
                            hearth_gen_result *r) {
    hearth_gen *g = NULL;
    hearth_err err = hearth_gen_new(s, smp, ids, n, gp, print_token, NULL, &g);
    if (err) return err;
    hearth_gen_get_result(g, r);
    if (o->prompt_cache)
        fprintf(stderr, "prompt cache: %d of %d prompt tokens reused from '%s'\n", r->n_cached, n,
                o->prompt_cache);
    err = hearth_gen_prefill(g, 0, NULL);
    uint64_t bytes = 0;
    if (!err && save && hearth_session_save(s, o->prompt_cache, &bytes))
        fprintf(stderr, "hearth run: --prompt-cache: %s\n", hearth_last_error());
    else if (!err && save)
        fprintf(stderr, "prompt cache: %d tokens saved to '%s' (%llu bytes)\n", n, o->prompt_cache,
                (unsigned long long)bytes);
    int32_t id = -1;
    while (!err && !(err = hearth_gen_next_token(g, &id)) && id >= 0)
        err = hearth_gen_step(&g, 1, 0);
    if (!err) hearth_gen_get_result(g, r);
    hearth_gen_free(g);
    return err;
}

/* The prompt through its last image (the generation's report counts only
 * what follows it): said on stderr with its time. */
static hearth_err prefill(hearth_session *s, const run_opts *o, const int32_t *ids, int n) {
    const double t0 = cli_now_ms();
    int done = 0;
    const hearth_err err =
        hearth_prefill_media(s, o->media.vision, ids, n, o->media.images, o->media.n, &done);
    if (!err)
        fprintf(stderr, "prompt through its last image: %d positions in %.1f ms\n", done,
                cli_now_ms() - t0);
    return err;
}

static int generate(hearth_model *m, const run_opts *o, const char *text, size_t len) {
    size_t n = 0;
    prompt_ids(m, o, text, len, NULL, 0, &n);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    hearth_session *s = NULL;
    hearth_sampler *smp = NULL;
    hearth_gen_result r;
    hearth_gen_params gp;
    int rc = 0;
    bool save = false;
    if (!ids)
        rc = (fprintf(stderr, "hearth run: out of memory\n"), 1);
    else if (prompt_ids(m, o, text, len, ids, n, &n))
        rc = cli_fail("run", o->suffix ? "--suffix" : "tokenizing");
    else if (n == 0)
        rc = (fprintf(stderr, "hearth run: the prompt is empty\n"), 1);
    else if (hearth_session_new(m, &o->g.sp, &s))
        rc = cli_fail("run", "creating the session");
    else if (hearth_sampler_new(m, &o->g.smp, &smp))
        rc = cli_fail("run", "creating the sampler");
    else if (cache_load(s, o, ids, (int)n, &save))
        rc = 1;
    else if (o->media.n && prefill(s, o, ids, (int)n))
        rc = cli_fail("run", "the images");
    else if (run_steps(s, smp, ids, (int)n, gen_params(m, o, ids, &gp), o, save, &r))
        rc = cli_fail("run", "generating");
    if (!rc) {
        static const char *const why[] = {"stop", "length", "callback"};
        fprintf(
            stderr,
            "\n\nprompt: %d tokens in %.1f ms (%.1f tokens/s) | generation: %d tokens in %.1f ms "
            "(%.1f tokens/s) | first token after %.1f ms | finish: %s | seed %llu\n",
            r.n_prompt, r.prompt_ms, r.prompt_ms > 0 ? r.n_prompt * 1e3 / r.prompt_ms : 0.0,
            r.n_gen, r.gen_ms, r.gen_ms > 0 ? r.n_gen * 1e3 / r.gen_ms : 0.0, r.first_token_ms,
            why[r.finish], (unsigned long long)hearth_sampler_seed(smp));
        if (r.n_discarded) fprintf(stderr, "context shift: %d tokens forgotten\n", r.n_discarded);
        cli_spec_report(&r);
        print_memory(s);
    }
    hearth_sampler_free(smp);
    hearth_session_free(s);
    free(ids);
    return rc;
}

/* A prompt without any image marker gets one per image in front, as
 * llama-mtmd-cli does; false when out of memory. */
static bool with_markers(char **text, size_t *len, int n_images) {
    const size_t ml = strlen(HEARTH_MEDIA_MARKER);
    if (strstr(*text, HEARTH_MEDIA_MARKER)) return true;
    char *t = malloc(*len + (size_t)n_images * ml + 1);
    if (!t) return false;
    for (int i = 0; i < n_images; i++) memcpy(t + (size_t)i * ml, HEARTH_MEDIA_MARKER, ml + 1);
    memcpy(t + (size_t)n_images * ml, *text, *len + 1);
    free(*text);
    *text = t;
    *len += (size_t)n_images * ml;
    return true;
}

int cmd_run(int argc, char **argv) {
    run_opts o = {.parse_special = true};
    cli_gen_defaults(&o.g);
    cli_spec_defaults(&o.spec);
    o.g.gen.max_tokens = 128;
    o.g.gen.stop = o.stops;
    int rc = parse_run(argc, argv, &o);
    if (rc >= 0) return rc;
    rc = 0;
    char *schema = NULL;
    if (o.schema_file) {
        if (!(schema = load_schema(o.schema_file))) return 1;
        o.g.smp.constraint = HEARTH_CONSTRAINT_JSON_SCHEMA;
        o.g.smp.json_schema = schema;
    }
    size_t len = 0;
    char *text = load_prompt(&o, &len);
    if (!text) {
        free(schema);
        return 1;
    }
    hearth_model *m = NULL;
    cli_model_params(&o.g.lora, &o.g.mp);
    if (hearth_model_load(o.model, &o.g.mp, &m))
        rc = cli_fail("run", "loading the model");
    else if (o.n_images)
        rc = cli_media_open("run", m, o.mmproj, o.images, o.n_images, o.g.mp.n_threads, &o.media);
    if (!rc && o.n_images && !with_markers(&text, &len, o.n_images))
        rc = (fprintf(stderr, "hearth run: out of memory\n"), 1);
    if (!rc && !(rc = cli_spec_open("run", &o.spec, m, &o.g.mp, &o.g.sp, &o.g.gen)))
        rc = generate(m, &o, text, len);
    cli_media_close(&o.media);
    cli_spec_close(&o.spec);
    hearth_model_free(m);
    free(text);
    free(schema);
    return rc;
}
