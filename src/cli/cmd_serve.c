/*
 * cmd_serve.c - `hearth serve`: the OpenAI-compatible HTTP server. Parses the
 * options, starts the server, prints where it listens and waits for SIGINT
 * or SIGTERM (or a model that failed to load) to stop it.
 */
#include "cli.h"
#include "server/server.h"

#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char serve_usage[] =
    "usage: hearth serve -m FILE [-m FILE ...] [--models-dir DIR] [--models-file F] [options]\n"
    "  Serves the models over an OpenAI-compatible HTTP API: POST /v1/chat/completions,\n"
    "  POST /v1/completions, POST /v1/embeddings, GET /v1/models, GET /health, GET /metrics\n"
    "  (and ollama's /api/*). Chat and completion requests go through the cascade gateway\n"
    "  (below); embeddings are always made by a local model.\n"
    "several models (a request's \"model\" names one by its file name; docs/server.md):\n"
    "  -m FILE              the first is the default model, loaded at start-up and answering\n"
    "                       requests that name none; the others load when first asked for\n"
    "  --models-dir DIR     every *.gguf file in DIR too, loaded when first asked for\n"
    "  --models-file F.json models with names, aliases and settings of their own (ctx,\n"
    "                       parallel, kv_type, chat_template, system, keep_alive, ...)\n"
    "  --models-max N       models loaded at once; the least recently used idle one is\n"
    "                       unloaded to make room (default 4; 0: no limit)\n"
    "  --no-models-autoload only POST /models/load loads a model\n"
    "  --keep-alive DUR     unload a model idle this long (5m, 1h; default: never; ollama's\n"
    "                       keep_alive field sets it per request)\n"
    "  --host ADDR          address to listen on (default 127.0.0.1)\n"
    "  --port N             port (default 8080; 0: any free port)\n"
    "  --parallel N         requests generated at the same time, one KV cache each (default 1)\n"
    "  --ctx N              context of each slot (default: min(model's, 4096))\n"
    "  --kv-type T          the slots' KV cache: f16 (default, llama.cpp's), f32 or q8_0 (also\n"
    "                       llama.cpp's -ctk/-ctv, which must name the same type)\n"
    "  --context-shift      a generation that fills its slot's context forgets the older half\n"
    "                       of its text after the request's n_keep tokens and goes on\n"
    "                       (llama-server's; default off: it stops, finish_reason \"length\";\n"
    "                       ollama's routes always shift unless a request says \"shift\": false)\n"
    "  --swa-full           sliding-window layers (Gemma 2/3/4) keep every position of a slot,\n"
    "                       not only their window, the batch and 256 more (more memory; a\n"
    "                       prompt may then reuse any cached prefix; docs/kv-cache.md)\n"
    "  --queue N            requests that may wait for a slot before 503 (default 4 x parallel)\n"
    "  --slot-save-path DIR POST /slots/{id}?action=save|restore|erase keep slots' KV caches\n"
    "                       in files of DIR (llama-server's; made if missing)\n"
    "  --timeout S          seconds a request may take, waiting included (default 600; 0: none)\n"
    "  --max-body BYTES     largest request body (default 8388608)\n"
    "  --api-key KEY        require 'Authorization: Bearer KEY' on /v1/* (or HEARTH_API_KEY)\n"
    "  -t N                 threads (default: physical cores)\n" CLI_MODEL_USAGE
    "  --chat-template T    chatml|qwen2.5|qwen3|qwen3-thinking|qwen3.5|llama3|llama3.1|llama3.2|\n"
    "                       gemma|gemma3|phi3|phi3-mini|phi4-mini|phi4|deepseek-r1|granite|\n"
    "                       granite3.3|olmo2|exaone4, or a file holding a Jinja template to "
    "recognize\n"
    "                       (default: the model's tokenizer.chat_template)\n"
    "  --reasoning M        reasoning models (Qwen 3): thinking on|off|auto (default auto: the\n"
    "                       template's default; a request's enable_thinking or think wins)\n"
    "  --reasoning-budget N tokens a <think> block may run before </think> is forced (default\n"
    "                       -1: no limit; 0: none; a request's thinking_budget_tokens wins)\n"
    "  --reasoning-format F where the <think> block goes: auto (default: reasoning_content for\n"
    "                       templates that think), deepseek (any template), none (the content)\n"
    "  --pooling P          embeddings: mean|cls|last (default: the model's pooling_type,\n"
    "                       else mean); vectors are L2-normalised\n"
    "  --log-prompts        put prompt text in the request log (off: only sizes and times)\n"
    "  --no-dashboard       no operator page at /dashboard (default: served, no key needed;\n"
    "                       the JSON it reads still needs --api-key's key)\n"
    "cascade gateway (docs/gateway.md): every response says who answered in x-hearth-route\n"
    "and why in x-hearth-reason; GET /v1/hearth/stats sums up the ledger\n"
    "  --config FILE        tiers, routing rules, thresholds and privacy actions (JSON)\n"
    "  --cloud-url URL      add an OpenAI-compatible remote tier named \"cloud\" ...\n"
    "  --cloud-model NAME   ... asking for this model\n"
    "  --cloud-key-env VAR  ... with the API key in this environment variable\n"
    "  --cloud-price IN,OUT ... at these dollars per million input,output tokens\n"
    "  --air-gapped         never contact a remote tier\n"
    "  --router FILE        the learned pre-router (hearth router train) for auto requests\n"
    "  --mmproj FILE        the first model's vision projector: images in chat messages\n"
    "                       (docs/vision.md)\n"
    "  --rag DB             retrieval over an index from hearth rag index: chat requests with\n"
    "                       \"rag\": true, POST /v1/hearth/rag/search (docs/rag.md)\n"
    "  --rag-allow-cloud    requests that used retrieved text may escalate (default: local)\n"
    "  --rag-rerank ID      a served reranker (-m FILE, named by its id) orders each\n"
    "                       retrieval's best candidates and the k it puts first are kept\n"
    "                       (a request's \"rerank\": false skips it)\n"
    "  --rag-rerank-depth N candidates it scores (default max(4k, 20), at most 100)\n"
    "  --ledger FILE        the SQLite ledger and audit log (default: in memory)\n"
    "  --ledger-prompts     store prompts and answers in the ledger (to train the router)\n"
    "  --drift-every DUR    the drift report (hearth drift report) every DUR (30m, 1h): its\n"
    "                       status in /metrics, a log line when it changes (default: off)\n"
    "  --drift-window DUR, --drift-reference DUR   its windows (default 24h against 7d)\n"
    "GET /v1/hearth/drift and /v1/hearth/series report on the ledger at any time\n"
    "Speculative decoding (every slot; output unchanged, docs/speculative.md):\n" CLI_SPEC_USAGE;

enum { SERVE_MAX_MODELS = 255 }; /* -m after the first */

/* "on", "off", "auto" as 1, 0, -1. */
static bool parse_on_off_auto(const char *v, int *out) {
    *out = !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : -1;
    return *out >= 0 || !strcmp(v, "auto");
}

static int parse_serve(int argc, char **argv, srv_config *c, const char **more,
                       cli_model_opts *lora, cli_spec_opts *spec) {
    unsigned kv_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(serve_usage, stdout);
            return 0;
        }
        const int lr = cli_model_opt("serve", argc, argv, &i, lora);
        if (lr < 0) return 2;
        if (lr) continue;
        if (!strcmp(a, "--log-prompts") || !strcmp(a, "--air-gapped") ||
            !strcmp(a, "--ledger-prompts") || !strcmp(a, "--rag-allow-cloud") ||
            !strcmp(a, "--no-dashboard") || !strcmp(a, "--no-models-autoload") ||
            !strcmp(a, "--context-shift") || !strcmp(a, "--swa-full")) {
            if (!strcmp(a, "--swa-full")) c->swa_full = true;
            if (!strcmp(a, "--no-models-autoload")) c->no_autoload = true;
            if (!strcmp(a, "--context-shift")) c->ctx_shift = true;
            if (!strcmp(a, "--log-prompts")) c->log_prompts = true;
            if (!strcmp(a, "--air-gapped")) c->air_gapped = true;
            if (!strcmp(a, "--ledger-prompts")) c->ledger_prompts = true;
            if (!strcmp(a, "--rag-allow-cloud")) c->rag_allow_cloud = true;
            if (!strcmp(a, "--no-dashboard")) c->no_dashboard = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth serve: option '%s' needs a value\n", a);
            return 2;
        }
        const int sr = cli_spec_opt("serve", a, v, spec);
        if (sr < 0) return 2;
        if (sr) continue;
        const int kr = cli_kv_type_opt("serve", a, v, &c->kv_type, &kv_given);
        if (kr < 0) return 2;
        if (kr) continue;
        int n = 0;
        bool ok = true;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && !c->model_path)
            c->model_path = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (c->n_more_models == SERVE_MAX_MODELS) {
                fprintf(stderr, "hearth serve: at most %d -m (use --models-dir)\n",
                        SERVE_MAX_MODELS + 1);
                return 2;
            }
            more[c->n_more_models++] = v;
        } else if (!strcmp(a, "--models-dir"))
            c->models_dir = v;
        else if (!strcmp(a, "--models-file"))
            c->models_file = v;
        else if (!strcmp(a, "--models-max"))
            ok = cli_parse_int(v, 0, 1 << 16, &c->models_max);
        else if (!strcmp(a, "--keep-alive"))
            ok = srv_parse_keep_alive(v, &c->keep_alive_ms);
        else if (!strcmp(a, "--host"))
            c->host = v;
        else if (!strcmp(a, "--port"))
            ok = cli_parse_int(v, 0, 65535, &c->port);
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np"))
            ok = cli_parse_int(v, 1, 256, &c->n_parallel);
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c"))
            ok = cli_parse_int(v, 0, 1 << 24, &c->n_ctx);
        else if (!strcmp(a, "--slot-save-path"))
            c->slot_save_path = v;
        else if (!strcmp(a, "--queue"))
            ok = cli_parse_int(v, 0, 1 << 20, &c->queue_max);
        else if (!strcmp(a, "--timeout"))
            ok = cli_parse_int(v, 0, 1 << 24, &c->timeout_s);
        else if (!strcmp(a, "--max-body") && (ok = cli_parse_int(v, 1024, 1 << 30, &n)))
            c->max_body_bytes = (size_t)n;
        else if (!strcmp(a, "--api-key"))
            c->api_key = v;
        else if (!strcmp(a, "-t"))
            ok = cli_parse_int(v, 0, 1024, &c->n_threads);
        else if (!strcmp(a, "--pooling"))
            c->pooling = v;
        else if (!strcmp(a, "--chat-template"))
            c->chat_template = v;
        else if (!strcmp(a, "--reasoning"))
            ok = parse_on_off_auto(v, &c->reasoning);
        else if (!strcmp(a, "--reasoning-budget"))
            ok = cli_parse_int(v, -1, INT_MAX, &c->reasoning_budget);
        else if (!strcmp(a, "--reasoning-format"))
            ok = srv_reasoning_format_parse(v, &c->reasoning_format);
        else if (!strcmp(a, "--config"))
            c->gateway_config = v;
        else if (!strcmp(a, "--cloud-url"))
            c->cloud_url = v;
        else if (!strcmp(a, "--cloud-model"))
            c->cloud_model = v;
        else if (!strcmp(a, "--cloud-key-env"))
            c->cloud_key_env = v;
        else if (!strcmp(a, "--cloud-price"))
            c->cloud_price = v;
        else if (!strcmp(a, "--router"))
            c->router_path = v;
        else if (!strcmp(a, "--mmproj"))
            c->mmproj = v;
        else if (!strcmp(a, "--rag"))
            c->rag_path = v;
        else if (!strcmp(a, "--rag-rerank"))
            c->rag_rerank = v;
        else if (!strcmp(a, "--rag-rerank-depth"))
            ok = cli_parse_int(v, 1, 100, &c->rag_rerank_depth);
        else if (!strcmp(a, "--ledger"))
            c->ledger_path = v;
        else if (!strcmp(a, "--drift-every"))
            ok = !gw_parse_duration(v, &c->drift_every_ms) && c->drift_every_ms >= 1000;
        else if (!strcmp(a, "--drift-window"))
            ok = !gw_parse_duration(v, &c->drift_window_ms) && c->drift_window_ms > 0;
        else if (!strcmp(a, "--drift-reference"))
            ok = !gw_parse_duration(v, &c->drift_reference_ms) && c->drift_reference_ms > 0;
        else {
            fprintf(stderr, "hearth serve: unknown option '%s'\n%s", a, serve_usage);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "hearth serve: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    c->more_models = more;
    if (!c->model_path && !c->models_dir && !c->models_file) {
        fputs(serve_usage, stderr);
        return 2;
    }
    if (cli_spec_resolve("serve", spec)) return 2;
    c->model_draft = spec->draft_path;
    c->spec_n_max = spec->n_max;
    c->spec_ngram_n = spec->ngram ? spec->ngram_n : 0;
    c->spec_p_min = spec->p_min;
    return -1;
}

int cmd_serve(int argc, char **argv) {
    srv_config c = srv_default_config();
    c.kv_type = hearth_session_default_params().kv_type; /* F16, as hearth run's */
    const char *env_key = getenv("HEARTH_API_KEY");
    if (env_key && *env_key) c.api_key = env_key;
    cli_model_opts lora = {0};
    cli_spec_opts spec;
    cli_spec_defaults(&spec);
    static const char *more[SERVE_MAX_MODELS];
    int rc = parse_serve(argc, argv, &c, more, &lora, &spec);
    if (rc >= 0) return rc;
    c.loras = lora.items; /* lora lives until cmd_serve returns, after srv_stop */
    c.n_loras = lora.n;
    c.rope_scaling = lora.rope_scaling;
    c.rope_scale = lora.rope_scale;
    c.rope_freq_base = lora.rope_freq_base;
    c.yarn_orig_ctx = lora.yarn_orig_ctx;

    /* Signals are taken synchronously by this thread: block them before any
     * server thread starts so every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv_server *s = NULL;
    if (srv_start(&c, &s)) return cli_fail("serve", "starting");
    const bool v6 = strchr(c.host, ':') != NULL;
    fprintf(stderr, "hearth serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", c.host,
            v6 ? "]" : "", srv_port(s));
    fflush(stderr);
    rc = 0;
    for (;;) {
        const struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
        const int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "hearth serve: %s, stopping\n",
                    sig == SIGINT ? "interrupted" : "terminated");
            break;
        }
        if (srv_state_get(s) == SRV_FAILED) {
            rc = 1;
            break;
        }
    }
    srv_stop(s);
    return rc;
}
