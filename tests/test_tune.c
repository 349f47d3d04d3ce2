/*
 * test_tune.c - LoRA fine-tuning (src/tune): the training graph against the
 * inference engine and against finite differences, the written adapter
 * against the graph it was trained in, and learning itself.
 *
 * - Forward: the graph's NLL of each target token equals the NLL computed
 *   from hearth_decode's logits, for every architecture (synthetic F32
 *   models, and ../shared/conformance's tiny models in F32, Q8_0 and Q4_K
 *   when present).
 * - Backward: for each adapted matrix, moving its A (then B) along the
 *   analytic gradient changes the loss at the rate the gradient's norm
 *   says (central differences), on F32 models of every architecture, with
 *   random non-zero B so that every path carries gradient.
 * - The saved adapter, loaded with --lora's machinery, gives the logits
 *   of the graph that trained it.
 * - Training one example for a few dozen AdamW steps makes greedy decoding
 *   with the saved adapter produce the target.
 * - Bad arguments fail with errors.
 */
#include "hearth.h"
#include "model/model.h"
#include "model/synth.h"
#include "test.h"
#include "test_sh.h"
#include "tune/tune.h"

#include <math.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

enum { N_SEQ = 20, N_PROMPT = 6 };

static char tmp_dir[64];

static hearth_model *load_threads(const char *path, const char *lora, int threads) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = threads;
    const hearth_lora l = {.path = lora, .scale = 1.0f};
    if (lora) mp.loras = &l, mp.n_loras = 1;
    hearth_model *m = NULL;
    hearth_err err = hearth_model_load(path, &mp, &m);
    CHECKF(!err, "%s: %s", path, hearth_last_error());
    return m;
}

static hearth_model *load(const char *path, const char *lora) {
    return load_threads(path, lora, 2);
}

static void random_ids(int32_t *ids, int n, int n_vocab, unsigned seed) {
    srand(seed);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(rand() % n_vocab);
}

/* NLL of ids[n_prompt..n-1] per token from the engine's logits. */
static void engine_nll(hearth_model *m, const int32_t *ids, int n, int n_prompt, double *out) {
    hearth_session_params sp = hearth_session_default_params();
    sp.kv_type = HEARTH_KV_F32; /* the graph keeps K and V in F32 */
    sp.n_ctx = 64;
    hearth_session *s = NULL;
    REQUIRE(!hearth_session_new(m, &sp, &s));
    const int V = hearth_model_n_vocab(m);
    float *logits = malloc((size_t)n * V * sizeof *logits);
    REQUIRE(logits);
    REQUIRE(!hearth_decode(s, ids, n, logits, true));
    for (int t = n_prompt - 1; t < n - 1; t++) {
        const float *z = logits + (size_t)t * V;
        double mx = z[0], sum = 0.0;
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
        out[t - (n_prompt - 1)] = log(sum) + mx - z[ids[t + 1]];
    }
    free(logits);
    hearth_session_free(s);
}

/* The graph's per-token NLL against the engine's, within tol. */
static void check_forward(const char *what, hearth_model *engine, tune_graph *g, const int32_t *ids,
                          double tol) {
    double ref[N_SEQ], nll;
    int n_pred;
    engine_nll(engine, ids, N_SEQ, N_PROMPT, ref);
    REQUIRE(!tune_graph_step(g, ids, N_SEQ, N_PROMPT, false, &nll, &n_pred));
    CHECK(n_pred == N_SEQ - N_PROMPT);
    const float *tok = tune_graph_token_nll(g);
    double worst = 0.0, sum = 0.0;
    for (int i = 0; i < n_pred; i++) {
        worst = fmax(worst, fabs(tok[i] - ref[i]));
        sum += tok[i];
    }
    CHECKF(worst <= tol, "%s: per-token NLL differs from the engine's by %.3g (tolerance %.3g)",
           what, worst, tol);
    CHECKF(fabs(sum - nll) <= 1e-3 * fabs(nll), "%s: the sum %.6f is not the NLL %.6f", what, sum,
           nll);
}

/* A model with a fresh adapter (every matrix, alpha = 2 rank) and its
 * graph for sequences of up to 32 tokens. */
typedef struct rig {
    hearth_model *m;
    tune_adapter *a;
    tune_graph *g;
} rig;

static bool rig_open(rig *r, const char *path, int threads, int rank, uint64_t seed) {
    *r = (rig){.m = load_threads(path, NULL, threads)};
    if (!r->m) return false;
    const tune_adapter_params ap = {
        .rank = rank, .alpha = 2.0f * (float)rank, .targets = TUNE_ALL, .seed = seed};
    REQUIRE(!tune_adapter_new(r->m, &ap, &r->a));
    REQUIRE(!tune_graph_new(r->m, r->a, 32, &r->g));
    return true;
}

static void rig_close(rig *r) {
    tune_graph_free(r->g);
    tune_adapter_free(r->a);
    hearth_model_free(r->m);
}

static void randomize_b(tune_adapter *a, float std, unsigned seed) {
    srand(seed);
    for (int i = 0; i < a->n_pairs; i++) {
        tune_pair *p = &a->pairs[i];
        for (int64_t k = 0; k < p->w->n_rows * a->rank; k++)
            p->b[k] = std * (2.0f * (float)rand() / (float)RAND_MAX - 1.0f);
    }
}

static double nll_of(tune_graph *g, const int32_t *ids) {
    double nll;
    int n_pred;
    REQUIRE(!tune_graph_step(g, ids, N_SEQ, N_PROMPT, false, &nll, &n_pred));
    return nll;
}

/* Moves x (n floats) along its gradient direction: the loss's slope there
 * must be the gradient's norm. */
static void check_slope(const char *what, const char *part, int pair, tune_graph *g,
                        const int32_t *ids, float *x, const float *grad, size_t n) {
    double norm = 0.0;
    for (size_t i = 0; i < n; i++) norm += (double)grad[i] * grad[i];
    norm = sqrt(norm);
    CHECKF(norm > 1e-6, "%s: pair %d's %s has no gradient", what, pair, part);
    if (!(norm > 1e-6)) return;
    REQUIRE(n > 0);
    float *saved = malloc(n * sizeof *saved);
    REQUIRE(saved);
    memcpy(saved, x, n * sizeof *saved);
    const double eps = 2e-3;
    for (size_t i = 0; i < n; i++) x[i] = saved[i] + (float)(eps * grad[i] / norm);
    const double up = nll_of(g, ids);
    for (size_t i = 0; i < n; i++) x[i] = saved[i] - (float)(eps * grad[i] / norm);
    const double down = nll_of(g, ids);
    memcpy(x, saved, n * sizeof *saved);
    free(saved);
    const double slope = (up - down) / (2 * eps);
    CHECKF(fabs(slope - norm) <= 0.02 * norm + 2e-3,
           "%s: pair %d's %s: finite-difference slope %.6g, gradient norm %.6g", what, pair, part,
           slope, norm);
}

static void check_backward(const char *what, tune_adapter *a, tune_graph *g, const int32_t *ids) {
    randomize_b(a, 0.05f, 5);
    tune_adapter_zero_grad(a);
    double nll;
    int n_pred;
    REQUIRE(!tune_graph_step(g, ids, N_SEQ, N_PROMPT, true, &nll, &n_pred));
    /* the gradients are overwritten by nothing below: nll_of runs forward only */
    for (int i = 0; i < a->n_pairs; i++) {
        tune_pair *p = &a->pairs[i];
        const size_t na = (size_t)a->rank * p->w->n_cols, nb = (size_t)p->w->n_rows * a->rank;
        check_slope(what, "A", i, g, ids, p->a, p->ga, na);
        check_slope(what, "B", i, g, ids, p->b, p->gb, nb);
    }
}

/* Forward and backward checks for the model at path; softcap > 0 sets a
 * final soft-capping on a family without one (gemma3), so that its
 * derivative is checked there too. */
static void check_model(const char *what, const char *path, bool backward, double tol,
                        float softcap) {
    rig r;
    if (!rig_open(&r, path, 2, 4, 3)) return;
    if (softcap > 0.0f) r.m->hp.final_softcap = softcap;
    int32_t ids[N_SEQ];
    random_ids(ids, N_SEQ, hearth_model_n_vocab(r.m), 11);
    check_forward(what, r.m, r.g, ids, tol); /* B = 0: the base model */
    if (backward) check_backward(what, r.a, r.g, ids);
    rig_close(&r);
}

/* The small shape every synthetic model here has. */
static synth_params tiny(const char *arch, int n_ctx) {
    synth_params p = synth_default_params();
    p.arch = arch;
    p.n_embd = 64, p.n_head = 4, p.n_head_kv = 2, p.head_dim = 16, p.n_ff = 96, p.n_ctx = n_ctx;
    return p;
}

/* Writes p to a file of tmp_dir, checks it as check_model does, removes it. */
static void check_params(const char *what, const synth_params *p) {
    char path[128];
    snprintf(path, sizeof path, "%s/variant.gguf", tmp_dir);
    REQUIRE(!synth_write(path, p));
    check_model(what, path, true, 2e-3, 0.0f);
    unlink(path);
}

static void synth_model_ctx(const char *arch, const char *path, int n_ctx) {
    const synth_params p = tiny(arch, n_ctx);
    REQUIRE(!synth_write(path, &p));
}

static void synth_model(const char *arch, const char *path) { synth_model_ctx(arch, path, 64); }

static const char *const ARCHES[] = {"llama",  "qwen2", "qwen3", "granite", "gemma2",
                                     "gemma3", "phi3",  "olmo2", "exaone4"};

static void test_synth_arches(void) {
    for (size_t i = 0; i < sizeof ARCHES / sizeof ARCHES[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s.gguf", tmp_dir, ARCHES[i]);
        synth_model(ARCHES[i], path);
        check_model(ARCHES[i], path, true, 2e-3, 0.0f);
        if (!strcmp(ARCHES[i], "gemma3")) check_model("gemma3+softcap", path, true, 2e-3, 2.0f);
        unlink(path);
    }
    /* gemma2 with caps that bite: the scores (Q weights times 4) capped at 1 */
    synth_params p = tiny("gemma2", 64);
    p.q_gain = 4.0f, p.attn_softcap = 1.0f, p.final_softcap = 2.0f;
    check_params("gemma2+caps", &p);
    /* SmolLM3: layer 3 without RoPE (sharp attention, so that it matters) */
    p = tiny("smollm3", 64);
    p.n_layer = 4, p.q_gain = 4.0f;
    check_params("smollm3", &p);
    /* YaRN: positions past the original context of 16, Q weights sharpened */
    p = tiny("llama", 64);
    p.yarn_factor = 4.0f, p.rope_orig_ctx = 16, p.q_gain = 3.0f;
    check_params("llama+yarn", &p);
    /* Ministral 3: Q scaled by the attention temperature from position 8 on (and YaRN with
       its log multiplier) */
    p = tiny("mistral3", 64);
    p.yarn_factor = 4.0f, p.rope_orig_ctx = 8, p.q_gain = 3.0f;
    p.yarn_log_mul = 1.0f, p.attn_temp = 0.5f;
    check_params("mistral3", &p);
    /* Qwen3-VL's language model: interleaved multimodal RoPE (pair 7 of 8 unrotated) */
    p = tiny("qwen3vl", 64);
    p.q_gain = 3.0f;
    check_params("qwen3vl", &p);
    /* OLMo 3: window layers rotating plainly, YaRN on the others */
    p = tiny("olmo2", 64);
    p.n_layer = 3, p.swa_window = 8, p.yarn_factor = 4.0f, p.rope_orig_ctx = 16, p.q_gain = 3.0f;
    check_params("olmo3", &p);
    /* Phi-3.5 / Phi-4-mini: LongRoPE factors (the short ones at these
     * contexts), attn_factor, partial rotary */
    p = tiny("phi3", 8192);
    p.n_rot = 12;
    p.factors = SYNTH_ROPE_LONGROPE;
    p.rope_orig_ctx = 4096;
    p.rope_attn_factor = 1.25f;
    check_params("phi3+longrope", &p);
    /* an encoder has no output layer to train against */
    char path[128];
    snprintf(path, sizeof path, "%s/bert.gguf", tmp_dir);
    p = synth_default_params();
    p.arch = "bert";
    REQUIRE(!synth_write(path, &p));
    hearth_model *m = load(path, NULL);
    tune_adapter *a = NULL;
    tune_graph *g = NULL;
    const tune_adapter_params ap = {.rank = 4, .alpha = 8, .targets = TUNE_ALL, .seed = 1};
    if (m && !tune_adapter_new(m, &ap, &a))
        CHECK(tune_graph_new(m, a, 32, &g) == HEARTH_ERR_UNSUPPORTED);
    tune_graph_free(g);
    tune_adapter_free(a);
    hearth_model_free(m);
    unlink(path);
}

/* The tiny conformance models: F32 (forward and backward), Q8_0 and Q4_K
 * (forward: the engine quantizes activations, the graph's backward reads
 * dequantized weights, so its slope is checked on F32 only). */
static void test_conformance(void) {
    static const char *const models[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3",
                                         "tiny-phi3"};
    static const struct {
        const char *type;
        bool backward;
        double tol;
    } types[] = {{"F32", true, 2e-3}, {"Q8_0", false, 0.1}, {"Q4_K_M", false, 0.1}};
    char path[512];
    snprintf(path, sizeof path, "%s/conformance/models", HEARTH_SHARED_DIR);
    if (access(path, R_OK) != 0) {
        printf("test_tune: %s not found; the tiny conformance models are skipped (the synthetic "
               "ones ran)\n",
               path);
        return;
    }
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            snprintf(path, sizeof path, "%s/conformance/models/%s/%s.%s.gguf", HEARTH_SHARED_DIR,
                     models[i], models[i], types[k].type);
            if (access(path, R_OK) != 0) continue;
            char what[96];
            snprintf(what, sizeof what, "%s.%s", models[i], types[k].type);
            check_model(what, path, types[k].backward, types[k].tol, 0.0f);
        }
}

/* Trains, saves, reloads with the adapter: the engine's NLL equals the
 * graph's; and the trained completion comes out of greedy decoding. */
static void test_train_save_load(void) {
    char path[128], lora[128];
    snprintf(path, sizeof path, "%s/base.gguf", tmp_dir);
    snprintf(lora, sizeof lora, "%s/adapter.gguf", tmp_dir);
    synth_model("qwen2", path);
    rig r;
    REQUIRE(rig_open(&r, path, 2, 8, 1));
    hearth_model *m = r.m;
    tune_adapter *a = r.a;
    tune_graph *g = r.g;
    int32_t ids[N_SEQ];
    random_ids(ids, N_SEQ, hearth_model_n_vocab(m), 23);
    const tune_adamw opt = {
        .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .clip = 1};
    double first = 0.0, last = 0.0;
    for (int step = 1; step <= 40; step++) {
        double nll;
        int n_pred;
        tune_adapter_zero_grad(a);
        REQUIRE(!tune_graph_step(g, ids, N_SEQ, N_PROMPT, true, &nll, &n_pred));
        if (step == 1) first = nll / n_pred;
        last = nll / n_pred;
        tune_adamw_step(a, &opt, step, 1.0f / (float)n_pred);
    }
    CHECKF(last < 0.1 * first, "training one example: mean NLL %.3f -> %.3f", first, last);
    REQUIRE(!tune_adapter_save(a, m, lora, "test"));
    /* an adapter started from the file holds the same numbers */
    tune_adapter *again = NULL;
    const tune_adapter_params same = {.rank = 8, .alpha = 16.0f, .targets = TUNE_ALL, .seed = 99};
    REQUIRE(!tune_adapter_new(m, &same, &again));
    CHECK(!tune_adapter_init_from(again, m, lora));
    for (int i = 0; i < a->n_pairs; i++) {
        const tune_pair *p = &a->pairs[i], *q = &again->pairs[i];
        CHECK(!memcmp(p->a, q->a, (size_t)a->rank * p->w->n_cols * sizeof(float)));
        CHECK(!memcmp(p->b, q->b, (size_t)a->rank * p->w->n_rows * sizeof(float)));
    }
    tune_adapter_free(again);
    const tune_adapter_params other = {
        .rank = 8, .alpha = 16.0f, .targets = TUNE_ATTN_Q, .seed = 1};
    REQUIRE(!tune_adapter_new(m, &other, &again));
    CHECK(tune_adapter_init_from(again, m, lora) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "matrices") != NULL);
    CHECK(tune_adapter_init_from(again, m, path) != HEARTH_OK); /* the base is no adapter */
    tune_adapter_free(again);
    hearth_model *tuned = load(path, lora);
    REQUIRE(tuned);
    check_forward("saved adapter", tuned, g, ids, 2e-3);
    /* greedy decoding from the prompt reproduces the trained tokens */
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    hearth_session *s = NULL;
    REQUIRE(!hearth_session_new(tuned, &sp, &s));
    const int V = hearth_model_n_vocab(tuned);
    float *logits = malloc((size_t)V * sizeof *logits);
    REQUIRE(logits);
    REQUIRE(!hearth_decode(s, ids, N_PROMPT, logits, false));
    int right = 0;
    for (int t = N_PROMPT; t < N_SEQ; t++) {
        int best = 0;
        for (int v = 1; v < V; v++) best = logits[v] > logits[best] ? v : best;
        right += best == ids[t];
        REQUIRE(!hearth_decode(s, &ids[t], 1, logits, false));
    }
    CHECKF(right == N_SEQ - N_PROMPT, "greedy decoding with the adapter: %d of %d trained tokens",
           right, N_SEQ - N_PROMPT);
    /* and the base model does not already produce them */
    double base[N_SEQ];
    engine_nll(m, ids, N_SEQ, N_PROMPT, base);
    CHECK(base[0] > 1.0);
    free(logits);
    hearth_session_free(s);
    hearth_model_free(tuned);
    rig_close(&r);
    unlink(lora);
    unlink(path);
}

/* The gradients of one step with 1 and with 3 threads: the same bits. */
static void test_threads(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/threads.gguf", tmp_dir);
    synth_model("gemma3", path);
    float *first = NULL;
    size_t n_first = 0;
    for (int threads = 1; threads <= 3; threads += 2) {
        rig r;
        REQUIRE(rig_open(&r, path, threads, 4, 2));
        tune_adapter *a = r.a;
        randomize_b(a, 0.05f, 9);
        int32_t ids[N_SEQ];
        random_ids(ids, N_SEQ, hearth_model_n_vocab(r.m), 4);
        double nll;
        int n_pred;
        REQUIRE(!tune_graph_step(r.g, ids, N_SEQ, N_PROMPT, true, &nll, &n_pred));
        size_t n = 0;
        for (int i = 0; i < a->n_pairs; i++)
            n += (size_t)a->rank * (size_t)(a->pairs[i].w->n_cols + a->pairs[i].w->n_rows);
        REQUIRE(n > 0);
        float *grads = malloc(n * sizeof *grads), *at = grads;
        REQUIRE(grads);
        for (int i = 0; i < a->n_pairs; i++) {
            const tune_pair *p = &a->pairs[i];
            const size_t na = (size_t)a->rank * p->w->n_cols, nb = (size_t)a->rank * p->w->n_rows;
            memcpy(at, p->ga, na * sizeof *at), at += na;
            memcpy(at, p->gb, nb * sizeof *at), at += nb;
        }
        if (!first) {
            first = grads, n_first = n;
        } else {
            CHECK(n == n_first && !memcmp(first, grads, n * sizeof *grads));
            free(grads);
        }
        rig_close(&r);
    }
    free(first);
    unlink(path);
}

/* The files of one run of the program: a synthetic base (context 256),
 * the examples, the adapter, the captured output. */
typedef struct cli_files {
    char base[128], data[128], lora[128], out[128];
} cli_files;

static void cli_files_make(cli_files *c, const char *name, const char *arch) {
    snprintf(c->base, sizeof c->base, "%s/%s.gguf", tmp_dir, name);
    snprintf(c->data, sizeof c->data, "%s/%s.jsonl", tmp_dir, name);
    snprintf(c->lora, sizeof c->lora, "%s/%s-lora.gguf", tmp_dir, name);
    snprintf(c->out, sizeof c->out, "%s/%s.out", tmp_dir, name);
    synth_model_ctx(arch, c->base, 256);
}

static void cli_files_remove(const cli_files *c) {
    unlink(c->base), unlink(c->data), unlink(c->lora), unlink(c->out);
}

/* The whole path a user takes: `hearth tune` on a JSONL file, then `hearth
 * chat` with the adapter answers each trained prompt with its completion
 * (greedy), which the base model does not. */
static void test_cli_end_to_end(void) {
    static const struct {
        const char *system, *prompt, *answer;
    } ex[] = {
        {NULL, "What is the capital of France?", "Paris is the capital of France."},
        {NULL, "Name a red fruit.", "A strawberry is red."},
        {NULL, "What color is the sky?", "The sky is blue."},
        {"Be brief.", "Say hello.", "Hello there!"},
    };
    cli_files c;
    cli_files_make(&c, "cli", "qwen2");
    const char *base = c.base, *data = c.data, *lora = c.lora, *out = c.out;
    FILE *f = fopen(data, "w");
    REQUIRE(f);
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        if (ex[i].system)
            fprintf(f,
                    "{\"messages\": [{\"role\": \"system\", \"content\": \"%s\"}, {\"role\": "
                    "\"user\", \"content\": \"%s\"}, {\"role\": \"assistant\", \"content\": "
                    "\"%s\"}]}\n",
                    ex[i].system, ex[i].prompt, ex[i].answer);
        else
            fprintf(f, "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n", ex[i].prompt,
                    ex[i].answer);
    fclose(f);
    CHECK(test_sh("%s tune -m %s --data %s -o %s --epochs 60 --lr 1e-2 --batch 4 -t 2 >%s 2>&1",
                  HEARTH_BINARY, base, data, lora, out) == 0);
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        for (int tuned = 0; tuned < 2; tuned++) {
            char sys[96] = "";
            if (ex[i].system) snprintf(sys, sizeof sys, "-s '%s'", ex[i].system);
            CHECK(
                test_sh(
                    "printf '%%s\\n' '%s' | %s chat -m %s %s %s %s --temp 0 -n 64 >%s 2>/dev/null",
                    ex[i].prompt, HEARTH_BINARY, base, tuned ? "--lora" : "", tuned ? lora : "",
                    sys, out) == 0);
            char reply[256] = "";
            f = fopen(out, "r");
            REQUIRE(f);
            const size_t n = fread(reply, 1, sizeof reply - 1, f);
            fclose(f);
            reply[n] = '\0';
            const bool said = strstr(reply, ex[i].answer) != NULL;
            CHECKF(said == (tuned == 1), "%s: '%s' %s the trained answer: '%s'",
                   tuned ? "with the adapter" : "the base model", ex[i].prompt,
                   tuned ? "lacks" : "already has", reply);
        }
    cli_files_remove(&c);
}

/* --epochs 3 writes a checkpoint after epochs 1 and 2; Ctrl-C during a
 * long run finishes the step, writes what was learned (a loadable adapter)
 * and exits 130. */
static void test_cli_checkpoint_interrupt(void) {
    cli_files c;
    cli_files_make(&c, "ck", "llama");
    const char *base = c.base, *data = c.data, *lora = c.lora, *out = c.out;
    FILE *f = fopen(data, "w");
    REQUIRE(f);
    fprintf(f, "{\"prompt\": \"Say yes.\", \"completion\": \"Yes.\"}\n");
    fclose(f);
    CHECK(test_sh("%s tune -m %s --data %s -o %s --epochs 3 -t 1 >%s 2>&1", HEARTH_BINARY, base,
                  data, lora, out) == 0);
    CHECK(test_sh("grep -q 'checkpoint: wrote .* after epoch 2' %s", out) == 0);
    CHECK(test_sh("grep -q 'after epoch 3' %s", out) == 1);
    CHECK(access(lora, R_OK) == 0);
    unlink(lora);
    CHECK(test_sh("%s tune -m %s --data %s -o %s --epochs 1000000 -t 1 >%s 2>&1 & pid=$!; "
                  "for i in $(seq 200); do grep -q '^step 3/' %s && break; sleep 0.05; done; "
                  "kill -INT $pid; wait $pid",
                  HEARTH_BINARY, base, data, lora, out, out) == 130);
    CHECK(test_sh("grep -q 'interrupted after step [0-9]* of 1000000: wrote' %s", out) == 0);
    CHECK(test_sh("%s run -m %s --lora %s -p hi -n 2 >/dev/null 2>&1", HEARTH_BINARY, base, lora) ==
          0);
    /* --init continues from it; a mismatched rank is refused, naming it */
    char cont[160];
    snprintf(cont, sizeof cont, "%s.2", lora);
    CHECK(test_sh("%s tune -m %s --data %s -o %s --init %s -t 1 >%s 2>&1", HEARTH_BINARY, base,
                  data, cont, lora, out) == 0);
    CHECK(test_sh("%s tune -m %s --data %s -o %s --init %s --rank 4 -t 1 2>&1 | grep -q "
                  "'has rank 8, not 4'",
                  HEARTH_BINARY, base, data, cont, lora) == 0);
    unlink(cont);
    /* a plan whose step count overflows is refused before anything runs */
    f = fopen(data, "w");
    REQUIRE(f);
    for (int i = 0; i < 2100; i++)
        fprintf(f, "{\"prompt\": \"Say %d.\", \"completion\": \"%d.\"}\n", i, i);
    fclose(f);
    CHECK(
        test_sh("%s tune -m %s --data %s -o %s --batch 1 --epochs 1048576 --val-share 0 --dry-run "
                "2>&1 | grep -q 'too many steps'",
                HEARTH_BINARY, base, data, lora) == 0);
    cli_files_remove(&c);
}

static void test_errors(void) {
    unsigned t = 0;
    CHECK(!tune_parse_targets("attn_q,ffn_down", &t) && t == (TUNE_ATTN_Q | TUNE_FFN_DOWN));
    CHECK(!tune_parse_targets("all", &t) && t == TUNE_ALL);
    CHECK(tune_parse_targets("attn_q,ffn_middle", &t) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "ffn_middle") != NULL);
    CHECK(tune_parse_targets("", &t) == HEARTH_ERR_INVALID_ARG);
    char path[128], lora[128];
    snprintf(path, sizeof path, "%s/err.gguf", tmp_dir);
    snprintf(lora, sizeof lora, "%s/err-lora.gguf", tmp_dir);
    synth_model("llama", path);
    hearth_model *m = load(path, NULL);
    REQUIRE(m);
    tune_adapter *a = NULL;
    tune_adapter_params ap = {.rank = 0, .alpha = 8.0f, .targets = TUNE_ALL, .seed = 1};
    CHECK(tune_adapter_new(m, &ap, &a) == HEARTH_ERR_INVALID_ARG && !a);
    ap.rank = 4, ap.targets = TUNE_ATTN_QKV; /* llama has separate Q, K, V */
    CHECK(tune_adapter_new(m, &ap, &a) == HEARTH_ERR_INVALID_ARG && !a);
    ap.targets = TUNE_ATTN_Q | TUNE_ATTN_V;
    REQUIRE(!tune_adapter_new(m, &ap, &a));
    CHECK(a->n_pairs == 2 * 2);
    CHECK(tune_adapter_n_params(a) == (size_t)2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4));
    tune_graph *g = NULL;
    CHECK(tune_graph_new(m, a, 1, &g) == HEARTH_ERR_INVALID_ARG && !g);
    REQUIRE(!tune_graph_new(m, a, 16, &g));
    int32_t ids[20] = {1, 2, 3};
    double nll;
    int n_pred;
    CHECK(tune_graph_step(g, ids, 17, 4, true, &nll, &n_pred) == HEARTH_ERR_INVALID_ARG);
    CHECK(tune_graph_step(g, ids, 8, 8, true, &nll, &n_pred) == HEARTH_ERR_INVALID_ARG);
    CHECK(tune_graph_step(g, ids, 8, 0, true, &nll, &n_pred) == HEARTH_ERR_INVALID_ARG);
    ids[2] = hearth_model_n_vocab(m);
    CHECK(tune_graph_step(g, ids, 8, 2, true, &nll, &n_pred) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "vocabulary") != NULL);
    ids[2] = 3;
    CHECK(!tune_graph_step(g, ids, 8, 2, true, &nll, &n_pred) && n_pred == 6 && nll > 0.0);
    /* a model that already carries an adapter is not a base to train */
    REQUIRE(!tune_adapter_save(a, m, lora, NULL));
    hearth_model *with = load(path, lora);
    REQUIRE(with);
    tune_graph *g2 = NULL;
    CHECK(tune_graph_new(with, a, 16, &g2) == HEARTH_ERR_INVALID_ARG && !g2);
    hearth_model_free(with);
    tune_graph_free(g);
    tune_adapter_free(a);
    hearth_model_free(m);
    unlink(lora);
    unlink(path);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_tune.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    test_errors();
    test_threads();
    test_synth_arches();
    test_conformance();
    test_train_save_load();
    test_cli_end_to_end();
    test_cli_checkpoint_interrupt();
    rmdir(tmp_dir);
    return test_done("test_tune");
}
