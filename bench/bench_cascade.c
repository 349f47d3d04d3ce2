/*
 * bench_cascade.c - the data side of the cascade's cost-versus-quality
 * benchmark (bench/cascade/run.sh drives it; docs/cascade.md explains it).
 * A measurement, not a test.
 *
 * Accuracy cannot come from generated text here (no real model weights
 * exist in this project's reach), so it comes from labels: RouteLLM's record
 * of whether Mixtral-8x7B (standing in for the local tier) and GPT-4 (the
 * cloud tier) answered each MMLU / GSM8K prompt correctly. What is real is
 * Hearth's code: the learned router scores every prompt, Llama 3's tokenizer
 * counts its tokens through the chat template the server renders, the
 * gateway's price code turns tokens into dollars, and a run through two real
 * `hearth serve` processes has the gateway route and cost the requests in its
 * own ledger. Subcommands:
 *
 *   model    a tier model: random weights, the real Llama 3 vocabulary (so the
 *            gateway's ledger counts the same tokens as `prepare`)
 *   prepare  the router's held-out prompts (docs/router.md's split) with their
 *            labels, router score and token counts, as JSONL
 *   sample   a fixed hash-chosen subset of a workload, for the gateway runs
 *   curve    the cost-versus-quality curve over a workload at N thresholds
 *            (CSV), beside the random router and the oracle
 *   send     posts a workload to a gateway (`model: auto`), one at a time
 *   join     one gateway run's ledger joined with the labels: a CSV row, and a
 *            check that every routing decision, token count and cost equals
 *            what `curve` computes offline
 */
#include "gateway/gateway.h"
#include "gateway/router.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The router's held-out split (src/cli/cmd_router_exp.c, docs/router.md):
 * the same salt and percentage, so no prompt scored here trained the router. */
#define EVAL_SALT   "hearth-router-eval"
#define EVAL_PCT    20u
#define SAMPLE_SALT "hearth-cascade-sample"

static const char usage_text[] =
    "usage: bench_cascade model   -o FILE --vocab VOCAB.gguf [--seed N]\n"
    "       bench_cascade prepare --routellm DIR --router R.rtr --vocab VOCAB.gguf -o W.jsonl\n"
    "                             [--mmlu-completion N (64)]\n"
    "       bench_cascade sample  --workload W.jsonl --pct P -o S.jsonl\n"
    "       bench_cascade curve   --workload W.jsonl [--price-in 2.5] [--price-out 10]\n"
    "                             [--points 21] -o CURVE.csv\n"
    "       bench_cascade send    --url http://HOST:PORT --workload S.jsonl\n"
    "       bench_cascade join    --ledger DB --report REPORT.json --workload S.jsonl\n"
    "                             --threshold T --target SHARE [--price-in 2.5] [--price-out 10]\n"
    "                             [--header]\n";

static int fail(const char *what) {
    fprintf(stderr, "bench_cascade: %s: %s\n", what, hearth_last_error());
    return 1;
}

/* "--name value" options: a value per name, looked up by name. */
typedef struct opts {
    const char *name[16], *value[16];
    int n;
    bool header;
} opts;

static int parse_opts(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--header")) {
            o->header = true;
        } else if (argv[i][0] == '-' && i + 1 < argc && o->n < 16) {
            o->name[o->n] = argv[i];
            o->value[o->n++] = argv[++i];
        } else {
            fprintf(stderr, "bench_cascade: unexpected argument '%s'\n%s", argv[i], usage_text);
            return 2;
        }
    }
    return 0;
}

static const char *opt(const opts *o, const char *name, const char *def) {
    for (int i = o->n - 1; i >= 0; i--)
        if (!strcmp(o->name[i], name)) return o->value[i];
    return def;
}

static const char *need(const opts *o, const char *name) {
    const char *v = opt(o, name, NULL);
    if (!v) fprintf(stderr, "bench_cascade: %s is required\n%s", name, usage_text);
    return v;
}

/* ---- model: random weights with the Llama 3 vocabulary ---------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static float rng_normal(rng *r) { /* Box-Muller on a xorshift64* stream */
    double u[2];
    for (int k = 0; k < 2; k++) {
        r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
        u[k] = ((double)((r->s * 2685821657736338717ULL) >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

/* Copies the scalar metadata of src except its tokenizer.* keys. */
static hearth_err copy_scalars(gguf_writer *w, const gguf_file *src) {
    hearth_err err = HEARTH_OK;
    for (int64_t i = 0; i < gguf_n_kv(src) && !err; i++) {
        const gguf_kv *kv = gguf_kv_at(src, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (!strncmp(key, "tokenizer.", 10)) continue;
        const gguf_value *v = &kv->value;
        switch (v->type) {
        case GGUF_U32: err = gguf_writer_set_u32(w, key, (uint32_t)v->v.u64); break;
        case GGUF_I32: err = gguf_writer_set_i32(w, key, (int32_t)v->v.i64); break;
        case GGUF_F32: err = gguf_writer_set_f32(w, key, (float)v->v.f64); break;
        case GGUF_BOOL: err = gguf_writer_set_bool(w, key, v->v.u64 != 0); break;
        case GGUF_STRING: {
            char *s = strndup(v->v.str.ptr, (size_t)v->v.str.len);
            err = s ? gguf_writer_set_str(w, key, s) : hr_fail(HEARTH_ERR_NOMEM, "out of memory");
            free(s);
            break;
        }
        default:
            err = hr_fail(HEARTH_ERR_UNSUPPORTED, "model: metadata '%s' of type %s not copied", key,
                          gguf_vtype_name(v->type));
        }
    }
    return err;
}

/* token_embd for n_vocab rows of n_embd, N(0, (2/sqrt(n_embd))^2), as Q8_0
 * (malloc'd; the caller frees after writing). */
static void *make_embedding(int64_t n_vocab, int64_t n_embd, uint64_t seed, size_t *bytes) {
    const size_t row = kern_row_bytes(KERN_Q8_0, n_embd);
    float *f = malloc((size_t)n_embd * sizeof *f);
    uint8_t *q = malloc(row * (size_t)n_vocab);
    if (!f || !q) {
        free(f), free(q);
        return NULL;
    }
    rng r = {.s = seed * 0x9E3779B97F4A7C15ULL + 7};
    const float sd = 2.0f / sqrtf((float)n_embd);
    for (int64_t i = 0; i < n_vocab; i++) {
        for (int64_t k = 0; k < n_embd; k++) f[k] = sd * rng_normal(&r);
        kern_ref_quantize_row(KERN_Q8_0, f, q + (size_t)i * row, n_embd);
    }
    free(f);
    *bytes = row * (size_t)n_vocab;
    return q;
}

/* A one-layer llama with a 64-wide embedding: tiny and fast, but its
 * tokenizer is the real one, so prompt token counts are Llama 3's. */
static int cmd_model(const opts *o) {
    const char *out = need(o, "-o"), *vocab = need(o, "--vocab");
    if (!out || !vocab) return 2;
    synth_params p = synth_default_params();
    p.arch = "llama", p.type = KERN_Q8_0, p.tied = true;
    p.n_embd = 64, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.head_dim = 32, p.n_ff = 128;
    p.n_ctx = 4096;
    p.seed = strtoull(opt(o, "--seed", "1"), NULL, 10);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.synth", out);
    gguf_file *syn = NULL, *voc = NULL;
    gguf_writer *w = NULL;
    void *embd = NULL;
    size_t embd_bytes = 0;
    hearth_err err = synth_write(tmp, &p);
    if (!err) err = gguf_open(tmp, &syn);
    if (!err) err = gguf_open(vocab, &voc);
    gguf_arr tokens;
    if (!err && !gguf_get_arr(voc, "tokenizer.ggml.tokens", &tokens))
        err = hr_fail(HEARTH_ERR_FORMAT, "%s has no tokenizer.ggml.tokens", vocab);
    if (!err) err = gguf_writer_new(&w);
    if (!err) err = copy_scalars(w, syn);
    if (!err) err = gguf_writer_copy_kv(w, voc);
    if (!err) err = gguf_writer_set_str(w, "general.name", "bench-cascade (random weights)");
    if (!err && !(embd = make_embedding((int64_t)tokens.n, p.n_embd, p.seed, &embd_bytes)))
        err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; !err && i < gguf_n_tensors(syn); i++) {
        const gguf_tensor *t = gguf_tensor_at(syn, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (!strcmp(name, "token_embd.weight")) {
            const int64_t ne[2] = {p.n_embd, (int64_t)tokens.n};
            err = gguf_writer_add_tensor(w, name, KERN_Q8_0, 2, ne, embd, embd_bytes);
        } else {
            err = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
        }
    }
    if (!err) err = gguf_writer_write(w, out);
    gguf_writer_free(w);
    gguf_close(syn);
    gguf_close(voc);
    free(embd);
    unlink(tmp);
    return err ? fail("model") : 0;
}

/* ---- prepare: the held-out workload ------------------------------------------------- */

typedef struct counter {
    tok_vocab *v;
    tok_chat_template t;
    char bos[64], eos[64];
} counter;

static hearth_err counter_init(counter *c, const char *vocab_path) {
    memset(c, 0, sizeof *c);
    gguf_file *f = NULL;
    hearth_err err = gguf_open(vocab_path, &f);
    if (!err) err = tok_vocab_load(f, &c->v);
    gguf_close(f);
    if (!err) err = tok_chat_named("llama3", &c->t);
    size_t n = 0;
    const char *b = err ? NULL : tok_text(c->v, tok_bos(c->v), &n);
    if (b) snprintf(c->bos, sizeof c->bos, "%.*s", (int)n, b);
    const char *e = err ? NULL : tok_text(c->v, tok_eos(c->v), &n);
    if (e) snprintf(c->eos, sizeof c->eos, "%.*s", (int)n, e);
    return err;
}

static hearth_err count_tokens(const counter *c, const char *text, size_t len, bool special,
                               size_t *n) {
    const hearth_err err = tok_encode(c->v, text, len, special, special, NULL, 0, n);
    return err == HEARTH_ERR_INVALID_ARG ? HEARTH_OK : err; /* cap 0: measured */
}

/* The prompt tokens of a one-message chat as `hearth serve` counts them
 * (src/server/api_chat.c): the llama3 template rendered, its leading BOS
 * text dropped (the tokenizer adds BOS), special tokens parsed. */
static hearth_err chat_tokens(const counter *c, const char *prompt, size_t len, size_t *n) {
    const tok_chat_msg m = {TOK_CHAT_USER, prompt, len};
    const tok_chat_opts o = {.bos = c->bos, .eos = c->eos, .add_generation_prompt = true};
    char *text = NULL;
    size_t tl = 0;
    hearth_err err = tok_chat_render(&c->t, &m, 1, &o, &text, &tl);
    if (!err) {
        const size_t bl = strlen(c->bos);
        const size_t skip = bl && tl >= bl && !memcmp(text, c->bos, bl) ? bl : 0;
        err = count_tokens(c, text + skip, tl - skip, true, n);
    }
    free(text);
    return err;
}

/* GSM8K's recorded GPT-4 answers: (prompt, answer) pairs from the CSV. */
typedef struct answers {
    char **prompt, **answer;
    size_t n;
} answers;

static void answers_free(answers *a) {
    for (size_t i = 0; i < a->n; i++) free(a->prompt[i]), free(a->answer[i]);
    free(a->prompt), free(a->answer);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf), buf = NULL;
    }
    fclose(f);
    return buf;
}

static hearth_err load_answers(const char *path, const char *col, answers *a) {
    memset(a, 0, sizeof *a);
    size_t len = 0;
    char *data = slurp(path, &len);
    if (!data) return hr_fail(HEARTH_ERR_IO, "cannot read %s", path);
    rtr_csv c;
    rtr_csv_init(&c, data, len);
    bool got = false;
    hearth_err err = rtr_csv_next(&c, &got);
    size_t ip = SIZE_MAX, ia = SIZE_MAX;
    for (size_t i = 0; !err && got && i < c.n_fields; i++) {
        const char *name = rtr_csv_field(&c, i, NULL);
        if (!strcmp(name, "prompt")) ip = i;
        if (!strcmp(name, col)) ia = i;
    }
    if (!err && (ip == SIZE_MAX || ia == SIZE_MAX))
        err = hr_fail(HEARTH_ERR_FORMAT, "%s: no 'prompt' or '%s' column", path, col);
    size_t cap = 0;
    while (!err && !(err = rtr_csv_next(&c, &got)) && got) {
        if (c.n_fields <= ip || c.n_fields <= ia) continue;
        if (a->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **p = realloc(a->prompt, cap * sizeof *p),
                 **q = p ? realloc(a->answer, cap * sizeof *q) : NULL;
            if (p) a->prompt = p;
            if (q) a->answer = q;
            if (!p || !q) err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
        }
        if (!err) {
            a->prompt[a->n] = strdup(rtr_csv_field(&c, ip, NULL));
            a->answer[a->n] = strdup(rtr_csv_field(&c, ia, NULL));
            a->n++;
        }
    }
    rtr_csv_fini(&c);
    free(data);
    return err;
}

/* RouteLLM's 57 MMLU subject files and GSM8K, less the contaminated prompts:
 * what `hearth router experiment` loads. */
static hearth_err load_routellm(const char *dir, rtr_dataset *d) {
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/mmlu/responses/mmlu_*.csv", dir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return hr_fail(HEARTH_ERR_IO, "no files match %s", pat);
    const rtr_load_opts lo = {.require_labels = true};
    hearth_err err = HEARTH_OK;
    for (size_t i = 0; i < g.gl_pathc && !err; i++) err = rtr_dataset_load(d, g.gl_pathv[i], &lo);
    globfree(&g);
    char path[4096];
    snprintf(path, sizeof path, "%s/gsm8k/gsm8k_responses.csv", dir);
    if (!err) err = rtr_dataset_load(d, path, &lo);
    const char *const bench[2] = {"mmlu", "gsm8k"};
    for (int k = 0; k < 2 && !err; k++) {
        size_t removed = 0;
        snprintf(path, sizeof path, "%s/%s/contaminated_prompts.jsonl", dir, bench[k]);
        err = rtr_dataset_decontaminate(d, path, &removed);
    }
    return err;
}

/* One workload line: what every later step needs about a prompt. */
static char *workload_line(const rtr_dataset *d, const rtr_example *x, double score,
                           size_t prompt_tokens, size_t completion_tokens) {
    char bench[64];
    rtr_group_source(d->groups[x->group], bench, sizeof bench);
    cJSON *o = cJSON_CreateObject();
    cJSON *id = cJSON_Parse(x->id);
    char *s = NULL, exact[40];
    /* cJSON prints 15 digits when they come close; the score must survive
     * exactly, to be compared with the gateway's ledger */
    snprintf(exact, sizeof exact, "%.17g", score);
    if (o && id && cJSON_AddItemToObject(o, "id", id) &&
        cJSON_AddStringToObject(o, "bench", bench) &&
        cJSON_AddStringToObject(o, "group", d->groups[x->group]) &&
        cJSON_AddBoolToObject(o, "weak_ok", x->weak_ok) &&
        cJSON_AddBoolToObject(o, "strong_ok", x->strong_ok) &&
        cJSON_AddRawToObject(o, "score", exact) &&
        cJSON_AddNumberToObject(o, "prompt_tokens", (double)prompt_tokens) &&
        cJSON_AddNumberToObject(o, "completion_tokens", (double)completion_tokens) &&
        cJSON_AddStringToObject(o, "prompt", x->prompt))
        s = cJSON_PrintUnformatted(o);
    else
        cJSON_Delete(id);
    cJSON_Delete(o);
    return s;
}

/* The completion length: GSM8K's recorded GPT-4 answer in Llama 3 tokens;
 * MMLU records no answers, so a fixed length. */
static hearth_err completion_tokens(const counter *c, const answers *gsm, const char *bench,
                                    const rtr_example *x, size_t mmlu, size_t *n) {
    if (strcmp(bench, "gsm8k")) {
        *n = mmlu;
        return HEARTH_OK;
    }
    for (size_t i = 0; i < gsm->n; i++)
        if (!strcmp(gsm->prompt[i], x->prompt))
            return count_tokens(c, gsm->answer[i], strlen(gsm->answer[i]), false, n);
    return hr_fail(HEARTH_ERR_FORMAT, "no GPT-4 answer recorded for GSM8K prompt %s", x->id);
}

static int cmd_prepare(const opts *o) {
    const char *dir = need(o, "--routellm"), *router = need(o, "--router"),
               *vocab = need(o, "--vocab"), *out = need(o, "-o");
    if (!dir || !router || !vocab || !out) return 2;
    const size_t mmlu = strtoul(opt(o, "--mmlu-completion", "64"), NULL, 10);
    rtr_dataset d;
    rtr_dataset_init(&d);
    rtr_model *m = NULL;
    counter c = {0};
    answers gsm = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/gsm8k/gsm8k_responses.csv", dir);
    hearth_err err = load_routellm(dir, &d);
    if (!err) err = load_answers(path, "gpt-4-1106-preview_response", &gsm);
    if (!err) err = rtr_load(router, &m);
    if (!err) err = counter_init(&c, vocab);
    FILE *f = err ? NULL : fopen(out, "w");
    if (!err && !f) err = hr_fail(HEARTH_ERR_IO, "cannot write %s", out);
    size_t n = 0, n_prompt = 0, n_completion = 0;
    for (size_t i = 0; i < d.n && !err; i++) {
        const rtr_example *x = &d.ex[i];
        if (!rtr_split_pick(EVAL_SALT, x->prompt, x->prompt_len, EVAL_PCT)) continue;
        char bench[64];
        rtr_group_source(d.groups[x->group], bench, sizeof bench);
        double score = 0;
        size_t pt = 0, ct = 0;
        err = rtr_score(m, x->prompt, x->prompt_len, &score);
        if (!err) err = chat_tokens(&c, x->prompt, x->prompt_len, &pt);
        if (!err) err = completion_tokens(&c, &gsm, bench, x, mmlu, &ct);
        char *line = err ? NULL : workload_line(&d, x, score, pt, ct);
        if (!err && (!line || fprintf(f, "%s\n", line) < 0))
            err = hr_fail(HEARTH_ERR_IO, "writing %s", out);
        cJSON_free(line);
        n++, n_prompt += pt, n_completion += ct;
    }
    if (f && fclose(f) && !err) err = hr_fail(HEARTH_ERR_IO, "writing %s", out);
    if (!err)
        fprintf(stderr,
                "bench_cascade: %zu held-out prompts; mean %.1f prompt, %.1f completion tokens\n",
                n, (double)n_prompt / (double)(n ? n : 1),
                (double)n_completion / (double)(n ? n : 1));
    answers_free(&gsm);
    tok_vocab_free(c.v);
    rtr_free(m);
    rtr_dataset_fini(&d);
    return err ? fail("prepare") : 0;
}

/* ---- workloads ------------------------------------------------------------------------ */

typedef struct row {
    char *prompt, *bench, *line;
    bool weak_ok, strong_ok;
    double score;
    int64_t prompt_tokens, completion_tokens;
    bool used; /* join: matched to a ledger row */
} row;

typedef struct workload {
    row *r;
    size_t n;
} workload;

static void workload_free(workload *w) {
    for (size_t i = 0; i < w->n; i++) free(w->r[i].prompt), free(w->r[i].bench), free(w->r[i].line);
    free(w->r);
}

static hearth_err parse_row(const char *line, row *r) {
    cJSON *o = cJSON_Parse(line);
    const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(o, "prompt"));
    const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(o, "bench"));
    const cJSON *s = cJSON_GetObjectItem(o, "score"), *pt = cJSON_GetObjectItem(o, "prompt_tokens"),
                *ct = cJSON_GetObjectItem(o, "completion_tokens");
    hearth_err err = HEARTH_OK;
    if (!p || !b || !cJSON_IsNumber(s) || !cJSON_IsNumber(pt) || !cJSON_IsNumber(ct))
        err = hr_fail(HEARTH_ERR_FORMAT, "workload line without prompt/bench/score/tokens");
    if (!err) {
        *r = (row){.prompt = strdup(p),
                   .bench = strdup(b),
                   .line = strdup(line),
                   .weak_ok = cJSON_IsTrue(cJSON_GetObjectItem(o, "weak_ok")),
                   .strong_ok = cJSON_IsTrue(cJSON_GetObjectItem(o, "strong_ok")),
                   .score = s->valuedouble,
                   .prompt_tokens = (int64_t)pt->valuedouble,
                   .completion_tokens = (int64_t)ct->valuedouble};
        if (!r->prompt || !r->bench || !r->line) err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(o);
    return err;
}

static hearth_err workload_load(const char *path, workload *w) {
    memset(w, 0, sizeof *w);
    size_t len = 0, cap = 0;
    char *data = slurp(path, &len);
    if (!data) return hr_fail(HEARTH_ERR_IO, "cannot read %s", path);
    hearth_err err = HEARTH_OK;
    for (char *line = strtok(data, "\n"); line && !err; line = strtok(NULL, "\n")) {
        if (w->n == cap) {
            cap = cap ? 2 * cap : 1024;
            row *grown = realloc(w->r, cap * sizeof *grown);
            if (!grown) {
                err = hr_fail(HEARTH_ERR_NOMEM, "out of memory");
                break;
            }
            w->r = grown;
        }
        if (!(err = parse_row(line, &w->r[w->n]))) w->n++;
    }
    free(data);
    if (!err && w->n == 0) err = hr_fail(HEARTH_ERR_FORMAT, "%s holds no prompts", path);
    if (err) workload_free(w);
    return err;
}

static int cmd_sample(const opts *o) {
    const char *in = need(o, "--workload"), *out = need(o, "-o"), *pct = need(o, "--pct");
    if (!in || !out || !pct) return 2;
    workload w;
    if (workload_load(in, &w)) return fail("sample");
    FILE *f = fopen(out, "w");
    size_t n = 0;
    for (size_t i = 0; f && i < w.n; i++) {
        const row *r = &w.r[i];
        if (!rtr_split_pick(SAMPLE_SALT, r->prompt, strlen(r->prompt), (unsigned)atoi(pct)))
            continue;
        fprintf(f, "%s\n", r->line);
        n++;
    }
    const bool ok = f && fclose(f) == 0;
    workload_free(&w);
    if (!ok) {
        fprintf(stderr, "bench_cascade: cannot write %s\n", out);
        return 1;
    }
    fprintf(stderr, "bench_cascade: sampled %zu of the prompts\n", n);
    return 0;
}

/* ---- curve ------------------------------------------------------------------------- */

typedef struct prices {
    gw_tier local, cloud;
} prices;

static hearth_err prices_init(const opts *o, prices *p) {
    p->local = gw_tier_default();
    p->cloud = gw_tier_default();
    p->local.price_in_usd_micro = p->local.price_out_usd_micro = 0;
    hearth_err err = gw_parse_usd(opt(o, "--price-in", "2.5"), &p->cloud.price_in_usd_micro);
    if (!err) err = gw_parse_usd(opt(o, "--price-out", "10"), &p->cloud.price_out_usd_micro);
    return err;
}

enum { MAX_BENCH = 4 }; /* benchmarks reported apart (mmlu, gsm8k) */

/* One point of the curve: every prompt with score >= threshold goes to the
 * cloud tier, the others stay local. */
typedef struct point {
    double threshold, share_local, accuracy, oracle_accuracy;
    int64_t cost_usd_micro, cloud_only_usd_micro;
    size_t n_bench[MAX_BENCH], ok_bench[MAX_BENCH], local_bench[MAX_BENCH];
} point;

static int bench_index(const char *bench, const char **names, int *n_names) {
    for (int k = 0; k < *n_names; k++)
        if (!strcmp(names[k], bench)) return k;
    if (*n_names == MAX_BENCH) return MAX_BENCH - 1;
    names[*n_names] = bench;
    return (*n_names)++;
}

static point evaluate(const workload *w, const prices *pr, double t, const char **names,
                      int *n_names) {
    point p = {.threshold = t};
    size_t local = 0, ok = 0, strong = 0, only_strong = 0, weak_ok = 0;
    for (size_t i = 0; i < w->n; i++) {
        const row *r = &w->r[i];
        const bool cloud = r->score >= t;
        const int b = bench_index(r->bench, names, n_names);
        const bool right = cloud ? r->strong_ok : r->weak_ok;
        p.cost_usd_micro += gw_cost_usd_micro(cloud ? &pr->cloud : &pr->local, r->prompt_tokens,
                                              r->completion_tokens);
        p.cloud_only_usd_micro +=
            gw_cost_usd_micro(&pr->cloud, r->prompt_tokens, r->completion_tokens);
        local += !cloud, strong += cloud, ok += right;
        p.n_bench[b]++, p.ok_bench[b] += right, p.local_bench[b] += !cloud;
        only_strong += r->strong_ok && !r->weak_ok, weak_ok += r->weak_ok;
    }
    p.share_local = (double)local / (double)w->n;
    p.accuracy = (double)ok / (double)w->n;
    /* the best any router could do with as many cloud calls */
    p.oracle_accuracy =
        (double)(weak_ok + (strong < only_strong ? strong : only_strong)) / (double)w->n;
    return p;
}

static void accuracies(const workload *w, double *weak, double *strong) {
    size_t a = 0, b = 0;
    for (size_t i = 0; i < w->n; i++) a += w->r[i].weak_ok, b += w->r[i].strong_ok;
    *weak = (double)a / (double)w->n;
    *strong = (double)b / (double)w->n;
}

static void curve_row(FILE *f, const point *p, double target, double weak, double strong,
                      int n_names) {
    const double cost = (double)p->cost_usd_micro / 1e6,
                 all = (double)p->cloud_only_usd_micro / 1e6;
    const double s = 1 - p->share_local; /* a random router with the same share of cloud calls */
    const double rnd = weak + s * (strong - weak);
    const double c = all > 0 ? cost / all : 0; /* ... and one that spends as much (expected) */
    fprintf(f, "%.2f,%.17g,%.4f,%.4f,%.6f,%.6f,%.2f,%.4f,%.6f,%.2f,%.4f,%.4f,%.4f", target,
            p->threshold, p->share_local, p->accuracy, cost, all, 100 * (1 - c), rnd, s * all,
            100 * (1 - s), weak + c * (strong - weak), p->oracle_accuracy,
            strong > weak ? (p->accuracy - weak) / (strong - weak) : 0);
    for (int k = 0; k < n_names; k++) {
        const double n = (double)(p->n_bench[k] ? p->n_bench[k] : 1);
        fprintf(f, ",%.4f,%.4f", (double)p->local_bench[k] / n, (double)p->ok_bench[k] / n);
    }
    fputc('\n', f);
}

static int cmd_curve(const opts *o) {
    const char *in = need(o, "--workload"), *out = need(o, "-o");
    if (!in || !out) return 2;
    const int points = atoi(opt(o, "--points", "21"));
    if (points < 2 || points > 1001) {
        fprintf(stderr, "bench_cascade: --points must be 2..1001\n");
        return 2;
    }
    workload w;
    prices pr;
    if (prices_init(o, &pr) || workload_load(in, &w)) return fail("curve");
    double *scores = malloc(w.n * sizeof *scores);
    FILE *f = scores ? fopen(out, "w") : NULL;
    const char *names[MAX_BENCH];
    int n_names = 0;
    for (size_t i = 0; i < w.n; i++) bench_index(w.r[i].bench, names, &n_names);
    double weak, strong;
    accuracies(&w, &weak, &strong);
    hearth_err err = f ? HEARTH_OK : hr_fail(HEARTH_ERR_IO, "cannot write %s", out);
    if (!err) {
        fprintf(f, "target_share_local,threshold,share_local,accuracy,cost_usd,cloud_only_cost_usd,"
                   "savings_pct,random_accuracy,random_cost_usd,random_savings_pct,"
                   "random_accuracy_same_cost,oracle_accuracy,pgr");
        for (int k = 0; k < n_names; k++)
            fprintf(f, ",share_local_%s,accuracy_%s", names[k], names[k]);
        fputc('\n', f);
    }
    for (size_t i = 0; !err && i < w.n; i++) scores[i] = w.r[i].score; /* err: scores may be NULL */
    for (int k = points - 1; k >= 0 && !err; k--) { /* from all local to all cloud */
        const double target = (double)k / (points - 1);
        double t, achieved;
        err = rtr_calibrate(scores, w.n, target, &t, &achieved);
        if (err) break;
        const point p = evaluate(&w, &pr, t, names, &n_names);
        curve_row(f, &p, target, weak, strong, n_names);
    }
    if (f && fclose(f) && !err) err = hr_fail(HEARTH_ERR_IO, "writing %s", out);
    fprintf(stderr, "bench_cascade: %zu prompts: local tier right on %.1f %%, cloud tier %.1f %%\n",
            w.n, 100 * weak, 100 * strong);
    free(scores);
    workload_free(&w);
    return err ? fail("curve") : 0;
}

/* ---- send: the workload through a gateway ------------------------------------------------ */

typedef struct reply {
    char route[64];
    char *body;
    size_t len;
} reply;

static size_t on_header(char *b, size_t size, size_t n, void *user) {
    reply *r = user;
    const size_t len = size * n;
    if (len > 16 && !strncasecmp(b, "x-hearth-route: ", 16)) {
        size_t k = len - 16;
        while (k && (b[16 + k - 1] == '\r' || b[16 + k - 1] == '\n')) k--;
        snprintf(r->route, sizeof r->route, "%.*s", (int)k, b + 16);
    }
    return len;
}

static size_t on_body(char *b, size_t size, size_t n, void *user) {
    reply *r = user;
    const size_t len = size * n;
    char *grown = realloc(r->body, r->len + len + 1);
    if (!grown) return 0;
    memcpy(grown + r->len, b, len);
    r->len += len;
    grown[r->len] = '\0';
    r->body = grown;
    return len;
}

/* One chat request, `model: auto`, asking for the prompt's completion length. */
static long post(CURL *h, const char *url, const row *r, reply *rep) {
    cJSON *b = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(b, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", r->prompt);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddStringToObject(b, "model", "auto");
    cJSON_AddNumberToObject(b, "max_tokens", (double)r->completion_tokens);
    cJSON_AddNumberToObject(b, "temperature", 0);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rep);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rep);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
    long status = 0;
    if (body && curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    cJSON_free(body);
    return status;
}

static int cmd_send(const opts *o) {
    const char *base = need(o, "--url"), *in = need(o, "--workload");
    if (!base || !in) return 2;
    workload w;
    if (workload_load(in, &w)) return fail("send");
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/chat/completions", base);
    CURL *h = curl_easy_init();
    size_t n_local = 0, n_cloud = 0, n_other = 0, n_err = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; h && i < w.n; i++) {
        reply rep = {0};
        const long st = post(h, url, &w.r[i], &rep);
        if (st != 200) {
            if (n_err++ < 3)
                fprintf(stderr, "bench_cascade: request %zu: HTTP %ld %.300s\n", i, st,
                        rep.body ? rep.body : "");
        } else if (!strcmp(rep.route, "local")) {
            n_local++;
        } else if (!strcmp(rep.route, "cloud")) {
            n_cloud++;
        } else {
            n_other++;
        }
        free(rep.body);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    curl_easy_cleanup(h);
    fprintf(stderr,
            "bench_cascade: sent %zu: local %zu, cloud %zu, other %zu, failed %zu (%.1f s)\n", w.n,
            n_local, n_cloud, n_other, n_err,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    workload_free(&w);
    return h && n_err == 0 && n_other == 0 ? 0 : 1;
}

/* ---- join: a gateway run's ledger with the labels ------------------------------------------ */

/* The workload row with this prompt not yet matched (equal prompts have
 * equal scores, so any of them routes the same way). */
static row *match(workload *w, const char *prompt) {
    for (size_t i = 0; i < w->n; i++)
        if (!w->r[i].used && !strcmp(w->r[i].prompt, prompt)) return &w->r[i];
    return NULL;
}

typedef struct tally {
    size_t rows, local, ok, mismatched;
    int64_t cost, cloud_only;
} tally;

/* Checks one ledger row against the offline computation; counts it. */
static void tally_row(tally *t, sqlite3_stmt *st, workload *w, const prices *pr, double thr) {
    const char *tier = (const char *)sqlite3_column_text(st, 0);
    const char *prompt = (const char *)sqlite3_column_text(st, 1);
    const int status = sqlite3_column_int(st, 2);
    const int64_t pt = sqlite3_column_int64(st, 3), ct = sqlite3_column_int64(st, 4),
                  cost = sqlite3_column_int64(st, 5), only = sqlite3_column_int64(st, 6);
    const double score = sqlite3_column_double(st, 7);
    row *r = prompt ? match(w, prompt) : NULL;
    t->rows++;
    t->cost += cost, t->cloud_only += only;
    if (!r || !tier) {
        t->mismatched++;
        fprintf(stderr, "bench_cascade: ledger row %zu has no workload prompt\n", t->rows);
        return;
    }
    r->used = true;
    const bool cloud = !strcmp(tier, "cloud");
    t->local += !cloud;
    t->ok += cloud ? r->strong_ok : r->weak_ok;
    const bool want_cloud = r->score >= thr;
    const int64_t want_cost = gw_cost_usd_micro(cloud ? &pr->cloud : &pr->local, r->prompt_tokens,
                                                r->completion_tokens),
                  want_only = gw_cost_usd_micro(&pr->cloud, r->prompt_tokens, r->completion_tokens);
    if (status != 200 || cloud != want_cloud || score != r->score || pt != r->prompt_tokens ||
        ct != r->completion_tokens || cost != want_cost || only != want_only) {
        if (t->mismatched++ < 5)
            fprintf(stderr,
                    "bench_cascade: ledger differs from offline: status %d tier %s (want %s) "
                    "score %.17g (%.17g) tokens %lld+%lld (%lld+%lld) cost %lld/%lld (%lld/%lld)\n",
                    status, tier, want_cloud ? "cloud" : "local", score, r->score, (long long)pt,
                    (long long)ct, (long long)r->prompt_tokens, (long long)r->completion_tokens,
                    (long long)cost, (long long)only, (long long)want_cost, (long long)want_only);
    }
}

static hearth_err read_ledger(const char *path, workload *w, const prices *pr, double thr,
                              tally *t) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    hearth_err err = HEARTH_OK;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT tier, prompt, status, prompt_tokens, completion_tokens,"
                           " cost_usd_micro, cloud_only_cost_usd_micro, router_score"
                           " FROM requests ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        err = hr_fail(HEARTH_ERR_IO, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
    int rc = SQLITE_ROW;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) tally_row(t, st, w, pr, thr);
    if (!err && rc != SQLITE_DONE) err = hr_fail(HEARTH_ERR_IO, "%s: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return err;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The CSV row of one gateway run: share, cost and savings as `hearth ledger
 * report --json` gives them, accuracy from the labels of the rows' tiers. */
static int cmd_join(const opts *o) {
    const char *db = need(o, "--ledger"), *rep = need(o, "--report"), *in = need(o, "--workload"),
               *thr = need(o, "--threshold"), *target = need(o, "--target");
    if (!db || !rep || !in || !thr || !target) return 2;
    workload w;
    prices pr;
    tally t = {0};
    size_t len = 0;
    char *text = slurp(rep, &len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) {
        fprintf(stderr, "bench_cascade: cannot read the report %s\n", rep);
        return 1;
    }
    if (prices_init(o, &pr) || workload_load(in, &w)) return fail("join");
    const double t_val = strtod(thr, NULL);
    hearth_err err = read_ledger(db, &w, &pr, t_val, &t);
    const double requests = num(j, "requests"), share = num(j, "local_share"),
                 cost = num(j, "cost_usd"), only = num(j, "cloud_only_cost_usd"),
                 savings = num(j, "savings_pct");
    /* the report's sums must be the rows' (and every workload prompt answered) */
    const bool consistent = !err && requests == (double)t.rows && t.rows == w.n &&
                            fabs(cost - (double)t.cost / 1e6) < 5e-7 &&
                            fabs(only - (double)t.cloud_only / 1e6) < 5e-7;
    double weak, strong;
    accuracies(&w, &weak, &strong);
    if (o->header)
        printf("target_share_local,threshold,requests,share_local,accuracy,cost_usd,"
               "cloud_only_cost_usd,savings_pct,random_accuracy,rows_differing_from_offline\n");
    if (!err)
        printf("%s,%s,%zu,%.4f,%.4f,%.6f,%.6f,%.2f,%.4f,%zu\n", target, thr, t.rows, share,
               (double)t.ok / (double)(t.rows ? t.rows : 1), cost, only, savings,
               weak + (1 - share) * (strong - weak), t.mismatched);
    if (!err && !consistent)
        fprintf(stderr,
                "bench_cascade: the report (%g requests, $%.6f, $%.6f) does not match the "
                "%zu ledger rows ($%.6f, $%.6f) or the %zu prompts sent\n",
                requests, cost, only, t.rows, (double)t.cost / 1e6, (double)t.cloud_only / 1e6,
                w.n);
    cJSON_Delete(j);
    workload_free(&w);
    if (err) return fail("join");
    return consistent && t.mismatched == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    const char *c = argv[1];
    if (!strcmp(c, "model")) return cmd_model(&o);
    if (!strcmp(c, "prepare")) return cmd_prepare(&o);
    if (!strcmp(c, "sample")) return cmd_sample(&o);
    if (!strcmp(c, "curve")) return cmd_curve(&o);
    if (!strcmp(c, "send")) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = cmd_send(&o);
        curl_global_cleanup();
        return rc;
    }
    if (!strcmp(c, "join")) return cmd_join(&o);
    fputs(usage_text, strcmp(c, "-h") && strcmp(c, "--help") ? stderr : stdout);
    return strcmp(c, "-h") && strcmp(c, "--help") ? 2 : 0;
}
