/*
 * cmd_tune.c - `hearth tune`: LoRA fine-tuning of a model on CPU, from
 * labelled JSONL files and/or the gateway's ledger (distillation from the
 * cloud tier's answers). Loads the model, renders the records into token ids
 * with the chat template (tune_data.c), splits off a validation share, then
 * runs AdamW over batches of examples (gradients summed over a batch's
 * examples, divided by its target tokens) with linear warm-up and cosine
 * decay, and writes the adapter that `--lora` loads. docs/tune.md is the
 * user's guide.
 */
#include "cli.h"

#include "core/core.h"
#include "engine/chat.h"
#include "gateway/gateway.h"
#include "tune/tune.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char tune_usage[] =
    "usage: hearth tune -m MODEL (--data FILE | --from-ledger DB)... -o OUT.gguf [options]\n"
    "  Trains a LoRA adapter for MODEL (the base stays frozen) on chat examples and writes it\n"
    "  in llama.cpp's GGUF LoRA format: `hearth run|chat|serve -m MODEL --lora OUT.gguf`.\n"
    "  -m, --model FILE     the base model (GGUF)\n"
    "  --data FILE          JSONL, one example a line: {\"prompt\",\"completion\"[,\"system\"]}\n"
    "                       or {\"messages\":[...]} ending with the assistant's answer "
    "(repeatable)\n"
    "  --from-ledger DB     the gateway's ledger: its cloud answers (needs --ledger-prompts)\n"
    "  --since WHEN         only ledger rows from then on: 2024-05-01, 2024-05-01T12:00:00Z or a\n"
    "                       duration back from now (7d, 24h)\n"
    "  -o, --output FILE    the adapter to write (not needed with --dry-run)\n"
    "  --rank N             adapter rank (default 8)\n"
    "  --alpha A            the update is (A / rank) B A x (default 16)\n"
    "  --targets LIST       attn_q,attn_k,attn_v,attn_qkv,attn_output,ffn_gate,ffn_up,ffn_down\n"
    "                       or all (default all)\n"
    "  --init ADAPTER       start from this adapter instead of B = 0 (continue training it;\n"
    "                       same --rank, --alpha and --targets as it was trained with)\n"
    "  --epochs N           passes over the training examples (default 1)\n"
    "  --lr F               peak learning rate (default 2e-4)\n"
    "  --batch N            examples per optimizer step (gradient accumulation; default 4)\n"
    "  --warmup N           steps of linear warm-up before the cosine decay (default: 5%)\n"
    "  --weight-decay F     AdamW's decoupled weight decay (default 0)\n"
    "  --clip F             clip the gradient's global norm to F (default 1; 0: off)\n"
    "  --max-len N          longest example in tokens; longer ones are left out (default 512)\n"
    "  --val-share F        share held out for validation (default 0.1 from 20 examples, else 0)\n"
    "  --seed S             initialisation, split and order (default 1)\n"
    "  --template T         chat template: a name or a Jinja file (default: the model's)\n"
    "  -t, --threads N      threads (default: physical cores)\n"
    "  --json               one JSON object a line instead of text\n"
    "  --dry-run            load and tokenize, print the data's statistics, train nothing\n";

enum { TUNE_DATA_MAX = 64 };

typedef struct tune_opts {
    const char *model, *out, *ledger, *since, *tmpl, *targets, *init;
    const char *data[TUNE_DATA_MAX];
    int n_data;
    int rank, epochs, batch, warmup, max_len, threads;
    double alpha, lr, weight_decay, clip;
    double val_share; /* < 0: the default */
    double seed;      /* a whole number below 2^53 */
    bool json, dry_run;
} tune_opts;

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hearth tune: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(hearth tune --help lists the options)\n");
    va_end(ap);
    return 2;
}

/* Option a with value v (NULL: none followed): 1 taken, 0 not an option
 * that takes a value, 2 a usage error (printed). */
static int take_value(tune_opts *o, const char *a, const char *v) {
    const struct {
        const char *name, *alias;
        const char **field;
    } strs[] = {{"-m", "--model", &o->model},
                {"-o", "--output", &o->out},
                {"--from-ledger", NULL, &o->ledger},
                {"--since", NULL, &o->since},
                {"--template", "--chat-template", &o->tmpl},
                {"--targets", NULL, &o->targets},
                {"--init", NULL, &o->init},
                {"--data", NULL, NULL}};
    const struct {
        const char *name, *alias;
        int *field;
        long lo, hi;
    } ints[] = {
        {"--rank", NULL, &o->rank, 1, 4096},          {"--epochs", NULL, &o->epochs, 1, 1 << 20},
        {"--batch", NULL, &o->batch, 1, 1 << 20},     {"--warmup", NULL, &o->warmup, 0, 1 << 30},
        {"--max-len", NULL, &o->max_len, 2, 1 << 16}, {"-t", "--threads", &o->threads, 1, 4096}};
    const struct {
        const char *name;
        double *field, lo, hi;
        bool whole;
    } nums[] = {{"--alpha", &o->alpha, 1e-6, 1e6, false},
                {"--lr", &o->lr, 1e-12, 1, false},
                {"--weight-decay", &o->weight_decay, 0, 1, false},
                {"--clip", &o->clip, 0, 1e6, false},
                {"--val-share", &o->val_share, 0, 0.9, false},
                {"--seed", &o->seed, 0, 9007199254740992.0, true}};
    bool ok = false, known = false;
    if (!strcmp(a, "--data") && v && o->n_data == TUNE_DATA_MAX)
        return usage_error("at most %d --data files", TUNE_DATA_MAX);
    for (size_t i = 0; i < sizeof strs / sizeof *strs && !known; i++)
        if ((known = !strcmp(a, strs[i].name) || (strs[i].alias && !strcmp(a, strs[i].alias))) &&
            (ok = v != NULL))
            *(strs[i].field ? strs[i].field : &o->data[o->n_data++]) = v;
    for (size_t i = 0; i < sizeof ints / sizeof *ints && !known; i++)
        if ((known = !strcmp(a, ints[i].name) || (ints[i].alias && !strcmp(a, ints[i].alias))) && v)
            ok = cli_parse_int(v, ints[i].lo, ints[i].hi, ints[i].field);
    for (size_t i = 0; i < sizeof nums / sizeof *nums && !known; i++)
        if ((known = !strcmp(a, nums[i].name)) && v) {
            char *end;
            const double d = strtod(v, &end);
            ok = end != v && !*end && d >= nums[i].lo && d <= nums[i].hi &&
                 (!nums[i].whole || d == floor(d));
            if (ok) *nums[i].field = d;
        }
    if (!known) return 0;
    if (!v) return usage_error("option '%s' needs a value", a);
    if (!ok) return usage_error("bad value '%s' for %s", v, a);
    return 1;
}

/* 0: go on; 1: --help printed (exit 0); 2: usage error (printed). */
static int parse_args(int argc, char **argv, tune_opts *o) {
    *o = (tune_opts){.rank = 8,
                     .epochs = 1,
                     .batch = 4,
                     .warmup = -1,
                     .max_len = 512,
                     .alpha = 16,
                     .lr = 2e-4,
                     .clip = 1,
                     .val_share = -1,
                     .seed = 1,
                     .targets = "all"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s  template names: %s\n", tune_usage, tok_chat_names());
            return 1;
        }
        if (!strcmp(a, "--json") || !strcmp(a, "--dry-run")) {
            *(a[2] == 'j' ? &o->json : &o->dry_run) = true;
            continue;
        }
        const int r = take_value(o, a, i + 1 < argc ? argv[i + 1] : NULL);
        if (r == 2) return 2;
        if (!r)
            return usage_error(a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", a);
        i++;
    }
    if (!o->model) return usage_error("-m MODEL is required");
    if (!o->n_data && !o->ledger) return usage_error("give --data FILE or --from-ledger DB");
    if (!o->out && !o->dry_run) return usage_error("-o OUT.gguf is required");
    if (o->since && !o->ledger) return usage_error("--since goes with --from-ledger");
    unsigned bits;
    if (tune_parse_targets(o->targets, &bits))
        return usage_error("--targets: %s", hearth_last_error());
    return 0;
}

static const char *plural(size_t n) { return n == 1 ? "" : "s"; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints object j as one line and frees it. */
static void emit(cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    if (s) puts(s);
    cJSON_free(s);
    cJSON_Delete(j);
    fflush(stdout);
}

/* A JSON object {"event": name, keys[i]: vals[i]...}. */
static cJSON *event(const char *name, const char *const *keys, const double *vals, int n) {
    cJSON *j = cJSON_CreateObject();
    if (j && cJSON_AddStringToObject(j, "event", name))
        for (int i = 0; i < n; i++) cJSON_AddNumberToObject(j, keys[i], vals[i]);
    return j;
}

typedef struct tune_run {
    const tune_opts *o;
    int64_t since_ms;
    hearth_model *m;
    tok_chat_template tmpl;
    char *bos, *eos;
    tune_set all, train, val;
    tune_adapter *a;
    tune_graph *g;
    int warmup, total_steps, steps_done;
} tune_run;

/* Ctrl-C: the step under way finishes, the adapter so far is written, and
 * the command exits 130; a second Ctrl-C kills it (SA_RESETHAND). */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* The examples of every --data file and the ledger, split. */
static int load_data(tune_run *t) {
    const tune_opts *o = t->o;
    const tune_render r = {.tmpl = &t->tmpl, .bos = t->bos, .eos = t->eos, .max_len = o->max_len};
    for (int i = 0; i < o->n_data; i++)
        if (tune_set_add_jsonl(&t->all, t->m, &r, o->data[i]))
            return cli_fail("tune", "reading the examples");
    if (o->ledger && tune_set_add_ledger(&t->all, t->m, &r, o->ledger, t->since_ms))
        return cli_fail("tune", "reading the ledger");
    const double share = o->val_share >= 0 ? o->val_share : t->all.n >= 20 ? 0.1 : 0.0;
    const size_t n_all = t->all.n;
    if (tune_set_split(&t->all, share, (uint64_t)o->seed, &t->train, &t->val))
        return cli_fail("tune", "splitting the examples");
    size_t tokens = 0, target = 0, longest = 0;
    for (int s = 0; s < 2; s++) {
        const tune_set *set = s ? &t->val : &t->train;
        for (size_t i = 0; i < set->n; i++) {
            tokens += (size_t)set->ex[i].n;
            target += (size_t)(set->ex[i].n - set->ex[i].n_prompt);
            if ((size_t)set->ex[i].n > longest) longest = (size_t)set->ex[i].n;
        }
    }
    if (o->json) {
        const char *k[] = {"examples", "train",  "validation",    "skipped",
                           "too_long", "tokens", "target_tokens", "longest"};
        const double v[] = {(double)n_all,
                            (double)t->train.n,
                            (double)t->val.n,
                            (double)t->all.n_skipped,
                            (double)t->all.n_too_long,
                            (double)tokens,
                            (double)target,
                            (double)longest};
        emit(event("data", k, v, 8));
    } else {
        printf("data: %zu example%s (%zu train, %zu validation); %zu skipped, %zu longer than %d "
               "tokens\n",
               n_all, plural(n_all), t->train.n, t->val.n, t->all.n_skipped, t->all.n_too_long,
               o->max_len);
        printf("tokens: %zu (%zu to learn), longest example %zu\n", tokens, target, longest);
    }
    if (!t->train.n && !o->dry_run) {
        fprintf(stderr, "hearth tune: no training examples\n");
        return 1;
    }
    return 0;
}

/* The adapter, and the plan: steps, warm-up. */
static int make_adapter(tune_run *t) {
    const tune_opts *o = t->o;
    tune_adapter_params p = {.rank = o->rank, .alpha = (float)o->alpha, .seed = (uint64_t)o->seed};
    if (tune_parse_targets(o->targets, &p.targets) || tune_adapter_new(t->m, &p, &t->a))
        return cli_fail("tune", "creating the adapter");
    if (o->init && tune_adapter_init_from(t->a, t->m, o->init)) return cli_fail("tune", "--init");
    const size_t per_epoch_z = (t->train.n + (size_t)o->batch - 1) / (size_t)o->batch;
    if (per_epoch_z > (size_t)INT_MAX / (size_t)o->epochs) {
        fprintf(stderr, "hearth tune: %zu steps an epoch x %d epochs is too many steps\n",
                per_epoch_z, o->epochs);
        return 2;
    }
    const int per_epoch = (int)per_epoch_z;
    t->total_steps = per_epoch * o->epochs;
    t->warmup = o->warmup >= 0 ? o->warmup : t->total_steps / 20;
    const size_t n_params = tune_adapter_n_params(t->a);
    if (o->json) {
        const char *k[] = {"rank",  "alpha", "matrices", "parameters", "epochs",
                           "steps", "batch", "warmup",   "lr"};
        const double v[] = {o->rank,          o->alpha,  t->a->n_pairs,
                            (double)n_params, o->epochs, t->total_steps,
                            o->batch,         t->warmup, o->lr};
        emit(event("plan", k, v, 9));
    } else {
        printf("adapter: rank %d, alpha %g, %d matrices (%s), %zu parameters\n", o->rank, o->alpha,
               t->a->n_pairs, o->targets, n_params);
        printf("plan: %d epoch%s x %d step%s (batch %d examples), lr %g, warm-up %d steps then "
               "cosine decay\n",
               o->epochs, plural((size_t)o->epochs), per_epoch, plural((size_t)per_epoch), o->batch,
               o->lr, t->warmup);
    }
    return 0;
}

/* The learning rate of step s (from 1): linear warm-up to lr, then a cosine
 * down towards 0 over the remaining steps. */
static double lr_at(const tune_run *t, int s) {
    const double lr = t->o->lr;
    if (s <= t->warmup) return lr * s / t->warmup;
    const int n = t->total_steps - t->warmup;
    const double x = n > 0 ? (double)(s - t->warmup - 1) / n : 0.0;
    return 0.5 * lr * (1.0 + cos(3.14159265358979323846 * x));
}

/* Mean NLL per target token over the validation set. */
static int validate(tune_run *t, int epoch) {
    double sum = 0.0;
    long count = 0;
    for (size_t i = 0; i < t->val.n; i++) {
        const tune_example *ex = &t->val.ex[i];
        double nll = 0.0;
        int n_pred = 0;
        if (tune_graph_step(t->g, ex->ids, ex->n, ex->n_prompt, false, &nll, &n_pred))
            return cli_fail("tune", "validation");
        sum += nll;
        count += n_pred;
    }
    const double loss = count ? sum / (double)count : 0.0;
    if (t->o->json) {
        const char *k[] = {"epoch", "val_loss", "val_ppl"};
        const double v[] = {epoch, loss, exp(loss)};
        emit(event("epoch", k, v, 3));
    } else
        printf("epoch %d/%d  validation loss %.4f  perplexity %.2f\n", epoch, t->o->epochs, loss,
               exp(loss));
    fflush(stdout);
    return 0;
}

/* One optimizer step over examples order[from..to) of the training set. */
static int step(tune_run *t, const size_t *order, size_t from, size_t to, int s, int epoch,
                tune_adamw *opt) {
    const double t0 = now_s();
    double sum = 0.0;
    long n_pred = 0, tokens = 0;
    tune_adapter_zero_grad(t->a);
    for (size_t k = from; k < to; k++) {
        const tune_example *ex = &t->train.ex[order[k]];
        double nll = 0.0;
        int np = 0;
        if (tune_graph_step(t->g, ex->ids, ex->n, ex->n_prompt, true, &nll, &np))
            return cli_fail("tune", "training");
        sum += nll;
        n_pred += np;
        tokens += ex->n;
    }
    const double lr = lr_at(t, s);
    opt->lr = (float)lr;
    const double norm = tune_adamw_step(t->a, opt, s, 1.0f / (float)n_pred);
    const double loss = sum / (double)n_pred, tps = (double)tokens / (now_s() - t0);
    if (t->o->json) {
        const char *k[] = {"step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s"};
        const double v[] = {s, epoch, loss, lr, norm, tps};
        emit(event("step", k, v, 6));
    } else
        printf("step %d/%d  loss %.4f  lr %.3g  grad %.3g  %.0f tok/s\n", s, t->total_steps, loss,
               lr, norm, tps);
    fflush(stdout);
    return 0;
}

/* Writes the adapter: a checkpoint after epoch `epoch` (> 0), or the
 * result (0), or what an interrupted run had learned (-1). */
static int save(tune_run *t, int epoch) {
    const tune_opts *o = t->o;
    if (tune_adapter_save(t->a, t->m, o->out, NULL)) return cli_fail("tune", o->out);
    const char *what = epoch > 0 ? "checkpoint" : epoch < 0 ? "interrupted" : "saved";
    if (o->json) {
        const char *k[] = {"epoch", "steps"};
        const double v[] = {epoch, t->steps_done};
        cJSON *j = event(what, k, v, 2);
        if (j) cJSON_AddStringToObject(j, "path", o->out);
        emit(j);
    } else if (epoch > 0)
        printf("checkpoint: wrote %s after epoch %d\n", o->out, epoch);
    else if (epoch < 0)
        printf("interrupted after step %d of %d: wrote what it had learned to %s\n", t->steps_done,
               t->total_steps, o->out);
    else
        printf("wrote %s\nuse it: hearth run -m %s --lora %s   (or chat, serve)\n", o->out,
               o->model, o->out);
    fflush(stdout);
    return 0;
}

static int train(tune_run *t) {
    const tune_opts *o = t->o;
    const size_t n_train = t->train.n; /* fixed while training */
    assert(n_train > 0);               /* load_data refuses an empty set */
    int n_max = 2;
    for (size_t i = 0; i < n_train; i++)
        n_max = t->train.ex[i].n > n_max ? t->train.ex[i].n : n_max;
    for (size_t i = 0; i < t->val.n; i++) n_max = t->val.ex[i].n > n_max ? t->val.ex[i].n : n_max;
    if (tune_graph_new(t->m, t->a, n_max, &t->g)) return cli_fail("tune", "preparing training");
    /* the adapter's values, gradients and two AdamW moments: 4 floats a parameter */
    const double graph_mib = (double)tune_graph_bytes(t->g) / (1 << 20),
                 adapter_mib = (double)tune_adapter_n_params(t->a) * 16 / (1 << 20);
    if (o->json) {
        const char *k[] = {"graph_mib", "adapter_mib", "max_tokens"};
        const double v[] = {graph_mib, adapter_mib, n_max};
        emit(event("memory", k, v, 3));
    } else
        printf("memory: %.1f MiB for training (activations for %d tokens, F32 transposes of the "
               "weights), %.1f MiB for the adapter and its optimizer state\n",
               graph_mib, n_max, adapter_mib);
    size_t *order = malloc(n_train * sizeof *order);
    if (!order) return cli_fail("tune", "out of memory");
    for (size_t i = 0; i < n_train; i++) order[i] = i;
    hr_rng rng;
    hr_rng_seed(&rng, (uint64_t)o->seed + 1);
    tune_adamw opt = {.beta1 = 0.9f,
                      .beta2 = 0.999f,
                      .eps = 1e-8f,
                      .weight_decay = (float)o->weight_decay,
                      .clip = (float)o->clip};
    int rc = t->val.n ? validate(t, 0) : 0, s = 0;
    for (int epoch = 1; epoch <= o->epochs && !rc; epoch++) {
        for (size_t i = n_train; i > 1; i--) { /* Fisher-Yates */
            const size_t j = (size_t)(hr_rng_next(&rng) % i), x = order[i - 1];
            order[i - 1] = order[j], order[j] = x;
        }
        for (size_t b = 0; b < n_train && !rc; b += (size_t)o->batch) {
            const size_t e = b + (size_t)o->batch < n_train ? b + (size_t)o->batch : n_train;
            if (interrupted) break;
            rc = step(t, order, b, e, ++s, epoch, &opt);
            t->steps_done = s;
        }
        if (interrupted) break;
        if (!rc && t->val.n) rc = validate(t, epoch);
        if (!rc && epoch < o->epochs) rc = save(t, epoch);
    }
    free(order);
    return rc;
}

/* Whether path can be written (hours of training should not end in "cannot
 * open"): the file when it exists, else its directory. */
static bool writable(const char *path) {
    if (access(path, F_OK) == 0) return access(path, W_OK) == 0;
    char *copy = strdup(path);
    const bool ok = copy && access(dirname(copy), W_OK) == 0;
    free(copy);
    return ok;
}

int cmd_tune(int argc, char **argv) {
    tune_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    assert(o.out || o.dry_run); /* parse_args */
    tune_run t = {.o = &o};
    if (o.since && gw_parse_since(o.since, gw_now_ms(), &t.since_ms)) {
        fprintf(stderr, "hearth tune: --since: %s\n", hearth_last_error());
        return 2;
    }
    if (!o.dry_run && !writable(o.out)) {
        fprintf(stderr, "hearth tune: cannot write '%s': %s\n", o.out, hr_strerror(errno));
        return 1;
    }
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = o.threads;
    eng_chat_source src = ENG_CHAT_NAMED;
    if (hearth_model_load(o.model, &mp, &t.m))
        rc = cli_fail("tune", "loading the model");
    else if (eng_chat_choose(t.m, o.tmpl, &t.tmpl, &src))
        rc = cli_fail("tune", "the chat template");
    else if (!(t.bos = eng_token_text(t.m, hearth_token_bos(t.m))) ||
             !(t.eos = eng_token_text(t.m, hearth_token_eos(t.m))))
        rc = cli_fail("tune", "out of memory");
    if (!rc && src == ENG_CHAT_FALLBACK)
        fprintf(stderr, "hearth tune: warning: the model has no chat template; using chatml "
                        "(--template chooses another)\n");
    if (!rc) rc = load_data(&t);
    if (!rc) rc = make_adapter(&t);
    if (!rc && !o.dry_run) {
        struct sigaction sa = {0};
        sa.sa_handler = on_sigint;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        rc = train(&t);
        if (!rc) rc = interrupted ? (save(&t, -1) ? 1 : 130) : save(&t, 0);
    }
    tune_graph_free(t.g);
    tune_adapter_free(t.a);
    tune_set_free(&t.all);
    tune_set_free(&t.train);
    tune_set_free(&t.val);
    free(t.bos);
    free(t.eos);
    hearth_model_free(t.m);
    return rc;
}
