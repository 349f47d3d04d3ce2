/*
 * server.h - the server layer: `hearth serve`'s OpenAI-compatible HTTP API on
 * libmicrohttpd. The public face is srv_config / srv_start / srv_stop (used
 * by the CLI); the rest of this header is shared by the files of this folder:
 *
 *   request.c     JSON body -> srv_request (validation; the fuzzed parser)
 *   tools_request.c  tools, tool_choice, tool messages and assistant tool_calls
 *   tools_parse.c the model's reply -> tool calls (tools.h; api_gen.c and sse.c use it)
 *   tools_constrain.c  tool_choice "required"/named enforced by a JSON Schema (tools.h)
 *   api_errors.c  srv_error -> HTTP status and OpenAI's error JSON
 *   sched.c       slots (a session each), the bounded queue, the scheduler thread
 *   api_gen.c     a generation request from tokens to a JSON or SSE response
 *   api_chat.c    POST /v1/chat/completions (chat template, then api_gen)
 *   api_completions.c  POST /v1/completions
 *   api_embeddings.c  POST /v1/embeddings (through the scheduler; a remote tier's model
 *                 through the gateway: api_remote_embed.c)
 *   api_models.c  GET /v1/models (and /models), POST /models/load and
 *                 /models/unload, GET /health, /metrics
 *   api_ollama.c  ollama's API: POST /api/chat, /api/generate (translated to a
 *                 srv_request, answered by api_gen.c / sse.c in its dialect)
 *   api_ollama_embed.c  POST /api/embed and /api/embeddings
 *   api_ollama_models.c  GET /api/version, /api/tags, /api/ps, POST /api/show
 *   api_anthropic.c  Anthropic's Messages API: POST /v1/messages (translated
 *                 to a srv_request, answered in its dialect), count_tokens
 *   api_responses.c  OpenAI's Responses API: POST /v1/responses (likewise),
 *                 input_tokens
 *   api_util.c    llama.cpp server's utility endpoints: POST /tokenize,
 *                 /detokenize, /apply-template, GET /props
 *   api_slots.c   llama-server's slot actions: POST /slots/{id}?action=save|
 *                 restore|erase (--slot-save-path)
 *   sse.c         the Server-Sent Events body fed from a running job
 *   metrics.c     counters and the latency histogram
 *   dashboard.c   GET /dashboard: the operator's page, embedded from dashboard/
 *   http.c        the daemon, routing, body limits, auth and the request log
 *   models.c      the models it serves: registration, loading on demand,
 *                 least-recently-used eviction, keep-alive, references
 *   models_file.c --models-file: models with names, aliases and settings
 *   model_params.c  a model's generation defaults ("parameters")
 *   server.c      start-up (models, gateway, daemon) and shut-down
 *
 * Threads: libmicrohttpd runs one thread per connection; those threads only
 * parse, tokenize (the tokenizer is immutable, so thread-safe), enqueue and
 * stream. Engine work (sessions, decoding) happens in sched.c's one
 * scheduler thread, which decodes the busy slots' tokens together in one
 * batch per step (see there).
 */
#ifndef HEARTH_SERVER_H
#define HEARTH_SERVER_H

#include "hearth.h"
#include "core/core.h"
#include "gateway/gateway.h"
#include "gateway/router.h"
#include "engine/think.h"
#include "tokenizer/chat_template.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- configuration and lifecycle (the CLI's interface) ------------------ */

/* Where a reasoning model's <think> block goes (llama-server's
 * reasoning_format): AUTO, the default, splits it off for templates that
 * think (Qwen 3); NONE leaves it in the content; DEEPSEEK splits it off for
 * any template. */
typedef enum srv_reasoning_format {
    SRV_REASONING_AUTO = 0,
    SRV_REASONING_NONE,
    SRV_REASONING_DEEPSEEK
} srv_reasoning_format;
/* "auto", "none", "deepseek"; false for any other name. */
bool srv_reasoning_format_parse(const char *name, srv_reasoning_format *out);

typedef struct srv_config {
    /* the models (models.c, docs/server.md "Several models"): model_path is
     * the default one, loaded at start-up and answering requests that name
     * no model (NULL with models_dir: none); more_models and the *.gguf
     * files of models_dir are loaded when a request names them */
    const char *model_path;
    const char *const *more_models;
    int n_more_models;
    const char *models_dir;
    const char *models_file; /* --models-file: models with settings of their own (models_file.c) */
    int models_max;          /* loaded at once (least recently used unloaded first); 0: no limit */
    bool no_autoload;        /* only POST /models/load loads a model */
    int64_t keep_alive_ms;   /* an idle model is unloaded after this; < 0: never */
    const char *host;        /* address to bind (default 127.0.0.1) */
    int port;                /* 0: any free port (srv_port tells which) */
    int n_parallel;          /* slots: requests generated at the same time */
    int n_ctx;               /* context per slot; <= 0: min(model's, 4096) */
    hearth_kv_type kv_type;  /* the slots' KV cache element type (--kv-type; hearth serve: F16) */
    bool ctx_shift;          /* --context-shift: shift a full context (api_gen.c) */
    bool swa_full;           /* --swa-full: window layers keep every position (docs/kv-cache.md) */
    int n_threads;           /* model threads; <= 0: physical cores */
    int queue_max;           /* requests waiting for a slot before 503; < 0: 4 * n_parallel */
    int timeout_s;           /* per request, from arrival to the last token; <= 0: none */
    size_t max_body_bytes;   /* larger bodies get 413 */
    const char *api_key;     /* NULL: no authentication */
    const char *chat_template; /* NULL: the model's; else a name (tok_chat_names) or a file */
    bool log_prompts;          /* put prompt text in the request log */
    FILE *log;                 /* the request log and start-up messages (stderr) */
    /* the cascade gateway (api_gateway.c, docs/gateway.md) */
    const char *gateway_config; /* --config FILE: tiers, routing, privacy (JSON) */
    const char *cloud_url, *cloud_model, *cloud_key_env, *cloud_price; /* --cloud-* */
    bool air_gapped;         /* never contact a remote tier */
    const char *ledger_path; /* --ledger FILE (NULL: kept in memory) */
    bool ledger_prompts;     /* store prompts and answers in the ledger */
    const char *router_path; /* --router FILE: the learned pre-router */
    const char *pooling;     /* /v1/embeddings: "mean", "cls", "last"; NULL: the model's */
    const char *rag_path;    /* --rag DB: an index from `hearth rag index` (api_rag.c) */
    bool rag_allow_cloud;    /* requests that used it may escalate (redacted); else local */
    /* --rag-rerank MODEL_ID: a served reranker orders each retrieval's
     * rag_rerank_depth best candidates (0: rag_rerank_depth's default) */
    const char *rag_rerank;
    int rag_rerank_depth;
    bool no_dashboard; /* --no-dashboard: GET /dashboard and its files answer 404 */
    /* --drift-every DUR: the drift report every DUR on the ledger, its status
     * in /metrics and a log line when it changes (drift_watch.c); 0: off */
    int64_t drift_every_ms;
    /* --drift-window, --drift-reference: its windows; 0: 24 h, 7 d */
    int64_t drift_window_ms, drift_reference_ms;
    /* --lora, --lora-scaled: adapters applied to the default model (borrowed) */
    const hearth_lora *loras;
    int n_loras;
    /* --rope-scaling, --rope-scale, --rope-freq-base, --yarn-orig-ctx: the default
     * model's RoPE overrides (hearth_model_params'; NULL/0: the file's) */
    const char *rope_scaling;
    float rope_scale, rope_freq_base;
    int yarn_orig_ctx;
    /* speculative decoding (docs/speculative.md): up to spec_n_max proposals a
     * step from model_draft (-md, the default model's draft) when set, else
     * from prompt lookup of spec_ngram_n tokens when that is > 0; spec_n_max
     * 0: off */
    const char *model_draft;
    const char *mmproj; /* --mmproj: the default model's vision projector (docs/vision.md) */
    int spec_n_max, spec_ngram_n;
    float spec_p_min;
    /* reasoning models (docs/server.md, "Reasoning models"): --reasoning
     * on|off|auto (1, 0, -1: the template's default), --reasoning-format */
    int reasoning;
    srv_reasoning_format reasoning_format;
    int reasoning_budget; /* --reasoning-budget: tokens of thinking at most (-1: no limit) */
    /* --slot-save-path DIR: llama-server's POST /slots/{id}?action=save|restore|erase
     * (api_slots.c), files in DIR only (made at start-up); NULL: the actions answer 501 */
    const char *slot_save_path;
} srv_config;

srv_config srv_default_config(void);

typedef struct srv_server srv_server;

/* Binds the address, starts answering (/health says "loading"), loads the
 * model and opens the slots. On success *out runs until srv_stop. */
hearth_err srv_start(const srv_config *cfg, srv_server **out);
/* The port bound (useful with port 0). */
int srv_port(const srv_server *s);
/* SRV_LOADING, SRV_READY or SRV_FAILED (the model could not be loaded). */
int srv_state_get(const srv_server *s);
/* Stops accepting, cancels what runs, frees everything. NULL is a no-op. */
void srv_stop(srv_server *s);

/* ---- errors (api_errors.c) ---------------------------------------------- */

typedef struct srv_error {
    int status;       /* HTTP status */
    const char *code; /* OpenAI's "code" (NULL: null) */
    char param[64];   /* the request field at fault ("" : null) */
    char message[512];
} srv_error;

/* Fills e and returns false (so parsers can `return srv_fail(...)`). */
bool srv_fail(srv_error *e, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#ifdef __clang_analyzer__ /* it does not follow variadic calls (core.h's hr_fail) */
#define srv_fail(e, status, param, code, ...)                                                      \
    ((void)srv_fail(e, status, param, code, __VA_ARGS__), false)
#endif
/* OpenAI's "type" for a status: invalid_request_error, authentication_error, ... */
const char *srv_error_type(int status);
/* {"error":{"message","type","param","code"}} as a malloc'd string. */
char *srv_error_json(const srv_error *e);

/* ---- requests (request.c) ----------------------------------------------- */

enum {
    SRV_MAX_STOP = 16,        /* stop strings per request */
    SRV_MAX_STOP_BYTES = 512, /* length of one stop string */
    SRV_MAX_LOGPROBS = HEARTH_TOP_LOGPROBS_MAX,
    SRV_MAX_LOGIT_BIAS = 1024, /* logit_bias entries per request */
    SRV_MAX_N = 16,            /* choices per request (n) */
    SRV_MAX_PROMPTS = 256,     /* prompts per completion request (and the scheduler's capacity
                                  for prompts x n) */
    SRV_MAX_SPEC = 64,         /* speculative.n_max: proposals per step */
    SRV_N_KEEP_UNSET = -2      /* srv_request.n_keep not given */
};

typedef enum srv_kind { SRV_CHAT, SRV_COMPLETION } srv_kind;

/* The API a generation request came in by, so that its answer goes out the
 * same way: OpenAI's objects and SSE, or ollama's (api_ollama.c) with NDJSON
 * streaming, a chat's "message" or generate's "response". */
typedef enum srv_dialect {
    SRV_DIALECT_OPENAI = 0,
    SRV_DIALECT_OLLAMA_CHAT,
    SRV_DIALECT_OLLAMA_GENERATE,
    SRV_DIALECT_ANTHROPIC, /* Anthropic's Messages API (api_anthropic.c) */
    SRV_DIALECT_RESPONSES, /* OpenAI's Responses API (api_responses.c) */
    SRV_DIALECT_LLAMA      /* llama-server's /completion and /infill (api_llama.c) */
} srv_dialect;

static inline bool srv_dialect_ollama(srv_dialect d) {
    return d == SRV_DIALECT_OLLAMA_CHAT || d == SRV_DIALECT_OLLAMA_GENERATE;
}

/* One call of an assistant message in the request's history. */
typedef struct srv_tool_call {
    char *id, *name;
    char *arguments; /* JSON text of an object, as the client sent it */
} srv_tool_call;

typedef struct srv_message {
    tok_chat_role role;
    char *content; /* valid UTF-8, content_len bytes, NUL-terminated */
    size_t content_len;
    srv_tool_call *tool_calls; /* assistant (n_tool_calls 0: none) */
    int n_tool_calls;
    char *tool_call_id; /* role tool */
    /* assistant: thinking_blocks (LiteLLM's), an Anthropic tier's blocks sent
     * back for it to see again (signed_thinking.c); owned */
    gw_thinking_block *thinking;
    int n_thinking;
} srv_message;

typedef enum srv_tool_choice {
    SRV_TOOL_AUTO = 0, /* the model decides (the default with tools) */
    SRV_TOOL_NONE,     /* no tools rendered, no calls parsed */
    SRV_TOOL_REQUIRED, /* a call (locally: exactly one, by constrained decoding) */
    SRV_TOOL_NAMED     /* a call to tool_choice_name (likewise) */
} srv_tool_choice;

enum { SRV_MAX_TOOLS = 128, SRV_MAX_TOOL_CALLS = 64 };

/* The generation settings a request may leave out and a model's
 * "parameters" (--models-file, model_params.c) may give instead: bit p of
 * srv_request.given says the client gave setting p. */
typedef enum srv_param {
    SRV_P_TEMPERATURE = 0,
    SRV_P_TOP_K,
    SRV_P_TOP_P,
    SRV_P_MIN_P,
    SRV_P_REPEAT_PENALTY,
    SRV_P_REPEAT_LAST_N,
    SRV_P_PRESENCE_PENALTY,
    SRV_P_FREQUENCY_PENALTY,
    SRV_P_SEED,
    SRV_P_STOP,
    SRV_P_MAX_TOKENS,
    SRV_P_SAMPLERS, /* the chain's order (request_samplers.c), not a number */
    /* llama.cpp's other samplers (request_samplers.c), numbers, in this order */
    SRV_P_TYPICAL_P,
    SRV_P_TOP_N_SIGMA,
    SRV_P_XTC_PROBABILITY,
    SRV_P_XTC_THRESHOLD,
    SRV_P_MIROSTAT,
    SRV_P_MIROSTAT_TAU,
    SRV_P_MIROSTAT_ETA,
    SRV_P_DRY_MULTIPLIER,
    SRV_P_DRY_BASE,
    SRV_P_DRY_ALLOWED_LENGTH,
    SRV_P_DRY_PENALTY_LAST_N,
    SRV_P_MIN_KEEP,
    SRV_P_DYNATEMP_RANGE,
    SRV_P_DYNATEMP_EXPONENT,
    SRV_N_PARAMS
} srv_param;
#define SRV_GIVEN(p) (1u << (p))

/* A completion's prompt after the first, when a request holds several (an
 * array of strings or of token-id arrays). Owned by the request. */
typedef struct srv_prompt {
    char *text; /* a text prompt (NULL: ids) */
    size_t text_len;
    int32_t *ids; /* its token ids: as parsed, or (srv_complete) the text's tokens */
    int n_ids;
    char *echo; /* echo of a token-id prompt: its text (srv_complete) */
    size_t echo_len;
} srv_prompt;

/* A validated request. Strings are owned copies (valid UTF-8); free with
 * srv_request_free. */
/* An image of a chat message (api_images.c): its file's bytes, owned. */
typedef struct srv_image {
    uint8_t *data;
    size_t len;
} srv_image;
enum { SRV_MAX_IMAGES = 16 };

typedef struct srv_request {
    srv_kind kind;
    char *model;           /* as the client named it (may be NULL) */
    srv_message *messages; /* chat */
    int n_messages;
    /* chat: the messages' images in order, each standing where
     * HEARTH_MEDIA_MARKER is in their text; image_rows: their embeddings
     * once srv_chat_prompt has encoded them ([n_images][rows][n_embd]) */
    srv_image images[SRV_MAX_IMAGES];
    int n_images;
    float *image_rows;
    char *prompt; /* completion: text prompt ... */
    size_t prompt_len;
    int32_t *prompt_ids; /* ... or token ids */
    int n_prompt_ids;
    /* completion: several prompts (lm-evaluation-harness's batches): prompt 0 is
     * prompt / prompt_ids, prompt i > 0 more_prompts[i - 1]; n_prompts counts
     * them all, 1..SRV_MAX_PROMPTS (0, the other routes' requests, counts as 1) */
    int n_prompts;
    srv_prompt *more_prompts;
    char *suffix; /* completion: fill in the middle between prompt and this (NULL: none) */
    size_t suffix_len;
    int max_tokens; /* -1: not given; 0 (a completion's only): the prompt is scored, nothing
                       generated (srv_prompt_only) */
    int n;          /* choices (n), 1..SRV_MAX_N; 0 (ollama's requests) counts as 1 */
    int n_keep;     /* llama.cpp's n_keep, ollama's options.num_keep: prompt tokens a context
                       shift keeps (-1: all); SRV_N_KEEP_UNSET when not given */
    int n_discard;  /* llama.cpp's n_discard: tokens a context shift forgets (0: half) */
    int shift;      /* ollama's "shift": 1 or 0; -1: not given */
    hearth_sampling sampling;
    /* logit_bias (sampling's logit_bias points here), and whether it came as
     * llama.cpp's array of pairs (errors then name logit_bias[i]) */
    hearth_logit_bias *logit_bias;
    int n_logit_bias;
    bool logit_bias_array;
    void *dry_breakers; /* the block sampling.dry_sequence_breakers points into (NULL: none) */
    double given_temperature, given_top_p; /* as the client set them, NAN when not (a remote
                                              tier gets only what the client chose, or its
                                              dialect's default; never a model's parameter) */
    int spec_n_max;                        /* llama.cpp's speculative.n_max (-1: the server's) */
    double spec_p_min;                     /* speculative.p_min (NAN: the server's) */
    char *stop[SRV_MAX_STOP];
    int n_stop;
    /* SRV_GIVEN(p) for each srv_param the client gave (the others may come
     * from the model's parameters: srv_model_settings) */
    unsigned given;
    bool stream, include_usage;
    bool logprobs;    /* chat: logprobs; completion: logprobs given */
    int top_logprobs; /* alternatives per token, 0..SRV_MAX_LOGPROBS */
    /* llama-server's /completion (api_llama.c): its n_probs came as logprobs
     * and top_logprobs; post_sampling_probs: theirs after the sampler chain;
     * return_tokens: the answer's "tokens" lists the generated ids */
    bool post_sampling_probs, return_tokens;
    bool echo;       /* completion: the prompt text starts the output */
    char *echo_text; /* echo of a token-id prompt: its text (srv_complete; owned) */
    size_t echo_len;
    /* response_format json_schema: the schema as compact JSON (sampling's
     * json_schema points here) and the whole response_format object as the
     * client sent it, for OpenAI-compatible remote tiers */
    char *json_schema, *response_format;
    char *grammar; /* "grammar" (llama.cpp's extension): the GBNF text (sampling's grammar
                      points here) */
    /* chat: tools (tools_request.c) */
    char *tools;       /* the "tools" array as compact JSON (NULL: none or empty) */
    char **tool_names; /* [n_tools] the functions' names */
    int n_tools;
    srv_tool_choice tool_choice;
    char *tool_choice_name;  /* SRV_TOOL_NAMED */
    int parallel_tool_calls; /* -1: not given (true), 0 or 1 */
    /* a forced call answered locally (tools_constrain.c, set by api_chat.c):
     * the schema of one call (sampling's json_schema points here), and
     * whether some function's arguments are only constrained to an object */
    char *tool_schema;
    bool tool_schema_partial;
    /* chat: the "rag" member as the client sent it (a copy; NULL when absent
     * or false), for srv_rag_augment (api_rag.c) */
    struct cJSON *rag;
    /* chat: a reasoning model's thinking (reasoning.c): think -1 (not said:
     * the server's --reasoning), 0 off, 1 on; where the <think> block goes */
    int think;
    srv_reasoning_format reasoning_format;
    int reasoning_budget;      /* thinking_budget_tokens: tokens (-1: not given, the server's) */
    char reasoning_effort[16]; /* as the client sent it, for remote tiers ("": not given, or
                                  longer than any effort) */
    /* set by api_ollama.c after parsing (srv_parse_request leaves OpenAI) */
    srv_dialect dialect;
    double t0_ms; /* ollama: the request's arrival (srv_now_ms), for total_duration */
} srv_request;

/* Parses and validates body[0..len) as a chat (SRV_CHAT) or completion
 * request. On failure returns false with e filled (400 naming the field) and
 * nothing to free; on success *out must be freed with srv_request_free. */
bool srv_parse_request(srv_kind kind, const char *body, size_t len, srv_request *out, srv_error *e);
void srv_request_free(srv_request *r);
/* llama.cpp's other samplers' fields (request_samplers.c): typical_p,
 * top_n_sigma, xtc_*, mirostat*, dry_*, ignore_eos, min_keep, dynatemp_*,
 * samplers into r->sampling; false with a 400 naming the field. */
bool srv_parse_samplers(srv_error *e, const struct cJSON *root, srv_request *r);
/* llama-server's "samplers" v (an array of names or a string of letters;
 * empty: no stage) into sp's samplers. On failure false, with the place
 * after "samplers" ("" or "[i]") in where and the problem in msg. */
bool srv_sampler_order(const struct cJSON *v, hearth_sampling *sp, char where[16], char *msg,
                       size_t cap);
/* Points sp's DRY sequence breakers at a copy in one malloc'd block, *block
 * (free it; NULL when sp has none). False when out of memory. */
bool srv_breakers_own(hearth_sampling *sp, void **block);
/* A model's parameters for those (SRV_P_TYPICAL_P ... SRV_P_DYNATEMP_EXPONENT):
 * each in `use` from value[p] into sp (srv_model_settings). */
void srv_samplers_apply(hearth_sampling *sp, unsigned use, const double *value);
/* Adds those fields of s to p under llama-server's names (/props); false
 * when out of memory. */
bool srv_samplers_props(struct cJSON *p, const hearth_sampling *s);
/* A dialect's own default for setting p (ollama's temperature 0.8, ...), a
 * number: set unless the client gave p, which stays not given, so that a
 * model's parameters still win over it, as a Modelfile's PARAMETER lines
 * win over ollama's defaults. Temperature and top_p also become what a
 * remote tier gets (given_temperature, given_top_p). */
void srv_request_default(srv_request *r, srv_param p, double v);
/* The checks that need the model (model_id: its name in errors): that it
 * generates (an embedding model is a 400 naming model), logit_bias ids (a
 * 400 naming logit_bias.<id>, or logit_bias[i] for the array form). */
bool srv_request_check_model(const srv_request *r, const hearth_model *m, const char *model_id,
                             srv_error *e);
/* The choices the request asks for (n; at least 1). */
static inline int srv_n_choices(const srv_request *r) { return r->n > 1 ? r->n : 1; }
/* max_tokens 0 on a completion (vLLM's prompt scoring, llama-server's
 * n_predict 0): the prompt is evaluated into a slot's cache, and with echo
 * and logprobs scored, but no token is sampled; answered by the local model
 * only. */
static inline bool srv_prompt_only(const srv_request *r) {
    return r->kind == SRV_COMPLETION && r->max_tokens == 0;
}
/* The prompts a completion holds (at least 1). */
static inline int srv_n_prompts(const srv_request *r) {
    return r->n_prompts > 1 ? r->n_prompts : 1;
}
/* The text a completion's echo puts first (its prompt, or a token-id
 * prompt's text), or NULL without echo. */
const char *srv_request_echo(const srv_request *r, size_t *len);
/* The same for prompt i (0 <= i < srv_n_prompts(r)). */
const char *srv_request_echo_i(const srv_request *r, int i, size_t *len);

/* Copies in[0..n) to out with each ill-formed byte replaced by U+FFFD (out
 * holds at least 3 n + 1 bytes); NUL-terminates and returns the length
 * (api_gen.c). */
size_t srv_utf8_clean(const char *in, size_t n, char *out);

/* ---- signed thinking (signed_thinking.c) ----------------------------------- */

/* Message i's thinking_blocks (LiteLLM's: [{"type":"thinking","thinking",
 * "signature"}, {"type":"redacted_thinking","data"}]) into m: on assistant
 * messages only, at most GW_THINKING_MAX; false with a 400 naming
 * messages[i].thinking_blocks[k]. */
bool srv_thinking_parse(const struct cJSON *msg, int i, srv_message *m, srv_error *e);
void srv_thinking_message_free(srv_message *m);
/* The blocks as a JSON array (message.thinking_blocks, delta.thinking_blocks). */
struct cJSON *srv_thinking_json(const gw_thinking_block *b, int n);

/* ---- reasoning (reasoning.c) --------------------------------------------- */

struct srv_model;
/* A chat request's thinking is switched off (its enable_thinking, else the
 * server's --reasoning). */
bool srv_thinking_off(const struct srv_model *m, const srv_request *r);
/* Whether the local reply to chat request r on model m has its <think>
 * block split off (reasoning_format, the template), and *open: whether the
 * prompt opened the block. */
bool srv_think_split(const struct srv_model *m, const srv_request *r, bool *open);
/* The thinking budget a chat request's local reply gets (the request's, else
 * the server's; -1: none): only where its <think> block is split off, the
 * model has the tags as tokens and nothing constrains the reply. A budget
 * the request asked for that cannot be kept is a 400 (false, e filled). */
bool srv_think_budget(const struct srv_model *m, const srv_request *r, int *budget, srv_error *e);

/* ---- metrics (metrics.c) ------------------------------------------------- */

enum { SRV_N_ROUTES = 20, SRV_N_STATUSES = 14, SRV_N_BUCKETS = 14 };

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests[SRV_N_ROUTES][SRV_N_STATUSES];
    uint64_t prompt_tokens, cached_tokens, generated_tokens;
    uint64_t decode_steps, decode_step_tokens, decode_step_max; /* batched decoding */
    uint64_t spec_drafted, spec_accepted;    /* speculative decoding's proposals */
    uint64_t latency_buckets[SRV_N_BUCKETS]; /* generation requests, cumulative at print */
    uint64_t latency_count;
    double latency_sum_s;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_fini(srv_metrics *m);
/* Route index of a path for the requests counter ("other" for unknown). */
int srv_metrics_route(const char *path);
void srv_metrics_request(srv_metrics *m, int route, int status, double seconds, bool generation);
void srv_metrics_tokens(srv_metrics *m, int prompt, int cached, int generated);
void srv_metrics_spec(srv_metrics *m, int drafted, int accepted);
/* One batched decode step of `tokens` tokens (one per busy slot). */
void srv_metrics_step(srv_metrics *m, int tokens);
/* Prometheus text exposition; malloc'd. */
char *srv_metrics_text(srv_metrics *m, int queue_depth, int slots_busy, int slots_total);

/* ---- scheduler (sched.c) -------------------------------------------------- */

/* One generated token, or (id -1) text released at the end. Its text is
 * job->text[text_off .. text_off + text_len); when the job splits off
 * reasoning, its part of that is job->reasoning[reason_off .. + reason_len]
 * (reasoning comes before the answer) and `thought` says the token belongs
 * to the <think> block (its tags included). */
typedef struct srv_event {
    int32_t id;
    float logprob;
    int n_top;
    hearth_token_logprob top[SRV_MAX_LOGPROBS];
    float post_logprob; /* srv_job.post_sampling: hearth_token_event's */
    size_t text_off, text_len;
    size_t reason_off, reason_len;
    bool thought;
    int block; /* > 0: the job's thinking block block - 1 is complete here (srv_job.thinking) */
} srv_event;

typedef enum srv_job_state { SRV_JOB_QUEUED, SRV_JOB_RUNNING, SRV_JOB_DONE } srv_job_state;

/* A generation handed from an HTTP thread to a slot. The input fields are
 * set before srv_sched_submit and never change; the output fields are
 * guarded by mu and signalled on cv as events arrive. Reference counted: the
 * submitter and the scheduler each hold one. */
typedef struct srv_job {
    /* input */
    int32_t *prompt;
    int n_prompt;
    /* the prompt's images (its runs of negative ids): their rows ([n_images]
     * [rows][n_embd], owned), evaluated by hearth_prefill_media when the job
     * starts; vision: the model's projector */
    const hearth_vision *vision;
    float *image_rows;
    int n_images;
    int n_prefilled; /* positions that prefill evaluated (the generation counts them cached) */
    hearth_sampling sampling;      /* its logit_bias points to the job's own copy below */
    hearth_logit_bias *logit_bias; /* owned (srv_job_for copies the request's) */
    void *dry_breakers;            /* owned: what sampling.dry_sequence_breakers points into */
    int max_tokens;                /* <= 0: until the context is full */
    bool ctx_shift;                /* a full context is shifted (hearth_gen_params), not the end */
    int n_keep;                    /* hearth_gen_params.n_keep */
    int n_discard;                 /* hearth_gen_params.n_discard */
    char *stop[SRV_MAX_STOP];      /* owned copies */
    int n_stop;
    int n_top;          /* alternatives per event (0..SRV_MAX_LOGPROBS) */
    bool post_sampling; /* ... from the sampler chain's candidates (hearth_gen_params') */
    /* echo with logprobs: the prompt is scored first (sched.c), entry i of
     * prompt_events ([n_prompt], output) the logprob of prompt[i] after the
     * tokens before it and its n_top alternatives (entry 0: none) */
    bool score_prompt;
    srv_event *prompt_events;
    /* srv_prompt_only: the job ends once its prompt is in the session
     * (finish "length", nothing sampled or fed) */
    bool prompt_only;
    double deadline_ms; /* srv_now_ms() clock; 0: none */
    int spec_n_max;     /* speculative decoding's proposals a step (-1: the server's) */
    double spec_p_min;  /* the draft's confidence to go on proposing (NAN: the server's) */
    /* a chat reply of a reasoning model: its <think> block goes to
     * `reasoning`, the rest to `text` (reasoning.c); think_open: the prompt
     * opened the block */
    bool think, think_open;
    /* an embedding job (api_embeddings.c) when n_inputs > 0: prompt holds the
     * texts' tokens back to back, input_len[i] of text i; their vectors go to
     * embd ([n_inputs][n_embd]), n_done of them so far */
    int n_inputs;
    int *input_len;
    hearth_pooling pooling;
    bool normalize;
    bool rank; /* a rerank job (api_rerank.c): each text is a pair, its score goes to embd[i] */
    float *embd;
    int n_done;
    /* output */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job_state state;
    char *text; /* the answer (without the reasoning when `think`) */
    size_t text_len, text_cap;
    char *reasoning; /* `think`: the <think> block's text */
    size_t reasoning_len, reasoning_cap;
    eng_think split; /* `think`: the splitter's state (scheduler thread, mu held) */
    srv_event *events;
    int n_events, cap_events;
    hearth_err err;
    char err_msg[256];
    hearth_gen_result result;
    int reasoning_tokens; /* a remote answer's, as its tier counted them; -1: the thought
                             tokens among the events (srv_job_reasoning_tokens) */
    bool timed_out;
    atomic_bool cancel; /* set by the HTTP side: stop as soon as possible */
    int refs;           /* guarded by mu */
    /* the choices of one request (n > 1, or several prompts) form a group:
     * each job's `group` is the first choice's job (itself included; the
     * others hold a reference to it), whose group_seq (guarded by its mu) the
     * scheduler bumps, broadcasting its cv, after each event and end of any
     * of them, so that one waiter follows them all (sse.c). NULL: no group. */
    struct srv_job *group;
    uint64_t group_seq;
    int choice; /* its index in the group (0: alone): llama-server's "index" */
    /* the choices of one prompt (n > 1): each job's `same_prompt` is that
     * prompt's first choice (itself included; the others hold a reference
     * to it), whose evaluated prompt the others copy (sched.c) and whose
     * prompt usage counts once (srv_usage_counts). NULL: no other choice
     * has this prompt. */
    struct srv_job *same_prompt;
    /* the slot admission gave the job (-1 before), for the scheduler thread:
     * the other choices of a prompt copy its first one's from that slot */
    int slot;
    /* a remote tier's answer (the gateway's bridge job) when not NULL: its
     * tool calls as data (tools.h, srv_tools_job_call), guarded by mu; the
     * text is content only. Owned. */
    struct srv_tool_reply *remote_calls;
    /* an Anthropic tier's thinking blocks as it sent them (the bridge job:
     * srv_job_thinking; owned, guarded by mu); signed_thinking: the answering
     * tier's reasoning is all in such blocks (Anthropic's API shows the
     * blocks, not the restored pieces) */
    gw_thinking_block *thinking;
    int n_thinking;
    bool signed_thinking;
} srv_job;

typedef struct srv_sched srv_sched;

/* Opens n_slots sessions of n_ctx positions and starts the scheduler
 * thread; queue_max requests may wait for a slot. */
/* Speculative decoding in every slot: proposals from `draft` (each slot
 * gets a session of it; NULL: none) or, without one, prompt lookup of
 * ngram_n tokens; n_max 0: off. */
typedef struct srv_spec {
    hearth_model *draft;
    int n_max, ngram_n;
    float p_min;
} srv_spec;

hearth_err srv_sched_new(hearth_model *m, int n_slots, const hearth_session_params *slot,
                         int queue_max, const srv_spec *spec, srv_metrics *metrics,
                         srv_sched **out);
/* Refuses new jobs and cancels every queued and running one (their waiters
 * wake up); the scheduler thread ends once the running ones have stopped
 * and is joined by srv_sched_free. */
void srv_sched_shutdown(srv_sched *s);
/* Shuts down, joins the threads and frees. NULL is a no-op. */
void srv_sched_free(srv_sched *s);
int srv_sched_n_ctx(const srv_sched *s);
/* The slots' KV caches together, in bytes (reserved: resident as used). */
uint64_t srv_sched_kv_bytes(const srv_sched *s);
void srv_sched_stats(srv_sched *s, int *queued, int *busy, int *slots);
/* One object per slot appended to arr (GET /slots, as llama-server's):
 * {"id", "model", "n_ctx", "is_processing"}, and for a running job
 * "n_prompt_tokens", "next_token": {"n_decoded"}, "embedding". */
struct cJSON;
void srv_sched_slots_json(srv_sched *s, struct cJSON *arr, const char *model);

/* llama-server's slot actions (POST /slots/{id}, api_slots.c), which the
 * scheduler thread runs on the slot once it is idle, before any job is
 * admitted to it (as llama-server defers them while the slot is busy):
 * SAVE writes the slot's session to path (hearth_session_save), RESTORE
 * replaces it with path's (hearth_session_load; refused: the slot is left
 * as it was) and ERASE empties it. The slot's prefix mirror follows, so
 * the next request sharing a restored prefix is given that slot and
 * reuses it (admission prefers the longest cached prefix). */
typedef enum srv_slot_verb { SRV_SLOT_SAVE, SRV_SLOT_RESTORE, SRV_SLOT_ERASE } srv_slot_verb;
typedef struct srv_slot_action {
    srv_slot_verb verb;
    int slot;         /* 0 <= slot < srv_sched_n_slots */
    const char *path; /* SAVE, RESTORE */
    /* output, once it ran */
    hearth_err err;
    char err_msg[256];
    int n_tokens;     /* positions saved, restored or erased */
    uint64_t n_bytes; /* the file's size (SAVE, RESTORE) */
    double ms;
    /* the scheduler's (guarded by its mu) */
    enum { SRV_ACTION_WAITING, SRV_ACTION_RUNNING, SRV_ACTION_DONE } state;
    struct srv_slot_action *next;
} srv_slot_action;
/* Runs a on its slot and waits for it; false when it did not run: the
 * scheduler is shutting down, or give_up(user) (asked every 100 ms while
 * it waits for a busy slot: the client left, the request's time ran out)
 * withdrew it. */
bool srv_sched_slot_action(srv_sched *s, srv_slot_action *a, bool (*give_up)(void *user),
                           void *user);
int srv_sched_n_slots(const srv_sched *s);

/* A new job (refs = 1, the caller's) owning a copy of prompt[0..n). NULL when
 * out of memory. */
srv_job *srv_job_new(const int32_t *prompt, int n);
/* Drops a reference; the last one frees the job. */
void srv_job_release(srv_job *j);
/* A remote tier's thinking block onto job j (a copy) and its event, under
 * j's mu, waking its waiters; false when out of memory (signed_thinking.c). */
bool srv_job_thinking(srv_job *j, const gw_thinking_block *b);
/* Appends one event of text[0..len) (ev NULL: id -1, text without a token);
 * false when out of memory. A job that splits off reasoning puts the text
 * through its splitter (end: the reply is over, release what it held).
 * Called with j->mu held. */
bool srv_job_append(srv_job *j, const hearth_token_event *ev, const char *text, size_t len,
                    bool end);
/* Appends one event of reasoning text[0..len) that no token made (a remote
 * tier's, on the gateway's bridge job), beside the text; false when out of
 * memory. Called with j->mu held. */
bool srv_job_append_reasoning(srv_job *j, const char *text, size_t len);
/* Hands the job to a free slot, or queues it. False when the queue is full
 * (the job is untouched). The scheduler takes its own reference. */
bool srv_sched_submit(srv_sched *s, srv_job *j);
/* srv_sched_submit for n jobs, all or none (they are queued in order). */
bool srv_sched_submit_n(srv_sched *s, srv_job *const *jobs, int n);
/* Jobs the scheduler can hold at once when idle: slots + queue_max. */
int srv_sched_capacity(const srv_sched *s);
/* Makes jobs[0..n) one group (see srv_job.group); before submitting. */
void srv_job_group(srv_job *const *jobs, int n);
/* Marks jobs[0..n) as choices of one prompt (see srv_job.same_prompt);
 * before submitting. */
void srv_job_share_prompt(srv_job *const *jobs, int n);
/* Asks a job to stop: a queued one leaves the queue at once, a running one
 * stops before its next token. */
void srv_sched_cancel(srv_sched *s, srv_job *j);

double srv_now_ms(void);
/* Waits on cv (mu held, as pthread_cond_wait) for at most ms milliseconds, so
 * that a waiter also notices what is not signalled (a client gone, a
 * deadline); returns with mu held. */
void srv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms);

/* ---- the server object and the HTTP side ---------------------------------- */

typedef enum srv_state { SRV_LOADING, SRV_READY, SRV_FAILED } srv_state;

typedef enum srv_model_state {
    SRV_MODEL_UNLOADED,
    SRV_MODEL_LOADING,
    SRV_MODEL_LOADED,
    SRV_MODEL_FAILED /* the last load failed (error says why); the next use tries again */
} srv_model_state;

/* One model the server can answer with (models.c). The name, path and
 * ollama_info are set at registration and never change; state, refs and
 * the times are guarded by the server's models_mu; the rest is set while
 * loading and immutable while the model is loaded, which a reference
 * (srv_model_use, srv_model_retain) guarantees until it is released. */
typedef struct srv_model {
    struct srv_server *srv;
    char id[256]; /* what clients name it: the file's name */
    char *path;
    bool is_default; /* the first -m (or its entry's "default"): --lora and -md apply to it */
    int64_t created; /* registration time (/v1/models' "created") */
    /* its settings: the server's, or its entry's in --models-file (whose
     * strings these point into) */
    int n_ctx, n_parallel;
    hearth_kv_type kv_type;
    bool swa_full;             /* window layers keep every position (--swa-full) */
    const char *chat_template; /* NULL: the model's own */
    const char *pooling_name;  /* NULL: the model's own */
    const char *system;        /* a system message for chats that have none (NULL: none) */
    int64_t keep_alive_default;
    const char *aliases[8]; /* other names clients may use */
    int n_aliases;
    bool load_on_startup;
    /* generation defaults for what a request leaves out (its entry's
     * "parameters"; model_params.c): value[p] for each SRV_GIVEN(p) in set
     * (SRV_P_STOP: stop[0..n_stop), pointing into the models file;
     * SRV_P_SAMPLERS: samplers[0..n_samplers)) */
    struct {
        unsigned set;
        double value[SRV_N_PARAMS];
        const char *stop[SRV_MAX_STOP];
        int n_stop;
        hearth_sampler_stage samplers[HEARTH_SAMPLERS_MAX];
        int32_t n_samplers;
    } params;
    /* its draft for speculative decoding (NULL: none), proposing up to
     * spec_n_max tokens a step (0: off) while above spec_p_min, or prompt
     * lookup of spec_ngram_n tokens without one; and its adapters: the
     * command line's (-md, --spec-*, --lora) for the default model, its
     * entry's "draft", "draft_max" and "lora" for any */
    const char *draft_path;
    int spec_n_max, spec_ngram_n;
    float spec_p_min;
    const hearth_lora *loras;
    int n_loras;
    bool cli_rope;        /* the default model: the command line's RoPE overrides apply */
    char *own_draft_path; /* the entry's draft path (owned) */
    /* its vision projector: --mmproj for the default model, its entry's
     * "mmproj" (owned) for any; loaded with the model */
    const char *mmproj_path;
    char *own_mmproj_path;
    hearth_lora *own_loras; /* the entry's adapters and their paths (owned) */
    int n_own_loras;
    struct srv_model_info *ollama_info; /* ollama's /api/tags, /api/show (api_ollama_models.h) */
    /* residency */
    srv_model_state state;
    int refs;
    double last_used_ms;   /* srv_now_ms() of the last release (least recently used goes first) */
    double expires_ms;     /* idle and past this: unloaded (0: never) */
    int64_t keep_alive_ms; /* how long it stays once idle (the latest request's say) */
    char error[256];       /* SRV_MODEL_FAILED */
    /* while loaded */
    hearth_model *model;
    hearth_model *draft;    /* draft_path's model (NULL: none) */
    hearth_vision *vision;  /* mmproj_path's projector (NULL: none) */
    hearth_pooling pooling; /* /v1/embeddings */
    bool have_template;     /* false: chat requests fail with template_error */
    tok_chat_template tmpl;
    char template_error[512];
    char *bos_text, *eos_text; /* token texts for templates */
    srv_sched *sched;
    char rag_model_id[256]; /* rag_model_id of this model, for query vectors */
} srv_model;

struct srv_server {
    srv_config cfg;
    struct MHD_Daemon *daemon;
    int port;
    atomic_int state; /* the default model's loading at start-up (READY without one) */
    pthread_mutex_t log_mu;
    /* the models (models.c) */
    srv_model **models;
    int n_models;
    srv_model *default_model; /* NULL: requests must name a model */
    struct cJSON *models_doc; /* --models-file, parsed (the models' settings point into it) */
    pthread_mutex_t models_mu;
    pthread_cond_t models_cv; /* a state, a reference count or the closing flag changed */
    bool models_closing;
    pthread_t reaper; /* unloads models whose keep-alive ran out */
    bool reaper_started;
    srv_metrics metrics;
    pthread_t loader;
    bool loader_started;
    hearth_err load_err;
    /* the gateway (api_gateway.c) */
    gw_gateway *gw;
    gw_ledger *ledger;
    rtr_model *router;
    pthread_mutex_t gw_mu; /* guards gw_active and gw_closing */
    bool gw_mu_ready, gw_closing;
    struct srv_gwreq *gw_active; /* generation requests in flight */
    atomic_int gw_workers;       /* streaming cascade threads running */
    /* retrieval (api_rag.c) */
    struct rag_index *rag;         /* NULL without --rag */
    pthread_mutex_t rag_mu;        /* one search at a time on the handle */
    struct srv_drift_watch *drift; /* NULL without --drift-every */
};

/* ---- the models (models.c) ------------------------------------------------ */

typedef struct srv_exchange srv_exchange;

/* Registers the configured models (their files' headers are read: a -m
 * that is not a GGUF file is an error, a bad file in --models-dir a
 * warning) and starts the keep-alive thread. */
hearth_err srv_models_init(srv_server *s);
/* Loads the default model and those marked load_on_startup (the loader
 * thread at start-up). */
hearth_err srv_models_load_default(srv_server *s);
/* A model of the file at path named name (NULL: the file's name), with the
 * server's settings (the caller may change them before it is loaded). */
hearth_err srv_model_register(srv_server *s, const char *path, const char *name, bool is_default,
                              srv_model **out);
/* --models-file (models_file.c): registers its models with their settings;
 * errors name the entry and the key. */
hearth_err srv_models_file(srv_server *s, const char *path);
/* Refuses new uses and cancels every job of the loaded models (their
 * waiters wake up). */
void srv_models_shutdown(srv_server *s);
/* Shuts down, stops the keep-alive thread and frees every model (after the
 * daemon). */
void srv_models_free(srv_server *s);
/* The model a client's name designates, or NULL (see srv_model_use); no
 * loading, no reference. */
srv_model *srv_model_find(srv_server *s, const char *name);
/* Resolves the name a request gave (NULL or "": the default model; a name
 * of the gateway's tiers, "auto" and "local" too; with a single model, any
 * name) and takes a reference on it, loading it first when it is not
 * (autoload: the server's setting). Sets x->model (released when the
 * request completes) and returns it; NULL when x was answered with an
 * error (404 unknown model, 503 not loaded or no room, 500 failed load). */
srv_model *srv_model_use(srv_exchange *x, const char *name);
/* The same, leaving the answer to the caller: NULL with e filled. */
srv_model *srv_model_take(srv_exchange *x, const char *name, srv_error *e);
/* Loads m (unloading the least recently used idle model when --models-max
 * are loaded) and takes a reference; false with e filled when it cannot. */
bool srv_model_acquire(srv_model *m, bool autoload, srv_error *e);
/* Another reference on a model the caller holds one on. */
void srv_model_retain(srv_model *m);
/* Drops a reference. A request's release says how long the model stays
 * loaded once idle, as ollama's keep_alive does (the latest request's
 * holds): keep_alive_ms (0: unload now; SRV_KEEP_ALIVE_FOREVER), or the
 * server's --keep-alive (SRV_KEEP_ALIVE_DEFAULT); other holders pass
 * SRV_KEEP_ALIVE_NONE. NULL: no-op. */
enum { SRV_KEEP_ALIVE_NONE = -3, SRV_KEEP_ALIVE_DEFAULT = -2, SRV_KEEP_ALIVE_FOREVER = -1 };
void srv_model_release(srv_model *m, int64_t keep_alive_ms);
/* Unloads m now; false with e filled when it is not loaded or in use. */
bool srv_model_unload(srv_model *m, srv_error *e);
/* Whether m is loaded now (it may not be by the time the caller looks). */
bool srv_model_loaded(srv_model *m);
/* Whether loading m now would need another model unloaded first (m is not
 * loaded and --models-max are): a caller holding one model that needs m
 * too lets go of its own first, or it may wait on itself. */
bool srv_model_needs_room(srv_model *m);
/* A keep-alive as ollama takes it: seconds as a number ("300", "0"), a
 * duration ("5m", "1h"), negative: forever (SRV_KEEP_ALIVE_FOREVER). */
bool srv_parse_keep_alive(const char *text, int64_t *ms);
/* The slots of the loaded models, summed, and how many are loaded. */
void srv_models_stats(srv_server *s, int *queued, int *busy, int *slots, int *loaded);

/* A draft in --models-file proposes this many tokens a step unless its entry
 * says ("draft_max") or the server drafts already (-md: --spec-draft-n-max),
 * at this confidence unless -md's --spec-draft-p-min: hearth's defaults. */
enum { SRV_DRAFT_N_MAX = 3, SRV_MAX_MODEL_LORAS = 64 /* hearth_model_params' limit */ };
#define SRV_DRAFT_P_MIN 0.75f

/* ---- a model's parameters (model_params.c) -------------------------------- */

/* Entry i's "parameters" (--models-file) into m->params: the object's
 * members checked as a request's are; an error names
 * models[i].parameters.<key>. The strings stay in obj's document. */
struct cJSON;
hearth_err srv_model_params_parse(srv_model *m, const struct cJSON *obj, int i);

/* What a local generation runs with: the request's setting where the client
 * gave it (r->given), else the model's parameter, else the request's (its
 * dialect's default). */
typedef struct srv_settings {
    hearth_sampling sampling; /* logit_bias and the constraint are r's */
    int max_tokens;           /* <= 0: until the context is full */
    const char *const *stop;  /* r's or m's strings (borrowed) */
    int n_stop;
} srv_settings;
/* The settings of r on m (loaded: a repeat_last_n of -1 is its slots'
 * context). The one place a model's parameters apply: srv_job_for and
 * /props call it, never the request itself, so that what a remote tier is
 * sent (api_gateway.c) stays what the client asked. */
void srv_model_settings(const srv_model *m, const srv_request *r, srv_settings *out);
/* m's parameters as ollama's /api/show "parameters": one "name value" line
 * each, ollama's names (num_predict), strings quoted; malloc'd, "" when it
 * has none, NULL when out of memory. */
char *srv_model_params_text(const srv_model *m);

/* A start-up or background message on the log: "hearth serve: ..." */
void srv_say(srv_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The drift watch (drift_watch.c): a thread that builds the drift report
 * every cfg.drift_every_ms. Start is a no-op when that is 0. */
hearth_err srv_drift_watch_start(srv_server *s);
void srv_drift_watch_stop(srv_server *s);
/* Its gauges in Prometheus' text format, appended to out (nothing when off
 * or before the first report). */
void srv_drift_watch_metrics(srv_server *s, gw_buf *out);

/* One HTTP request as the handlers see it: what the log line reports. */
typedef struct srv_exchange {
    srv_server *srv;
    const char *method, *path;
    const char *body;
    size_t body_len;
    int client_fd;               /* for noticing a client that went away; -1: unknown */
    bool ollama;                 /* an /api/ route: errors as ollama's {"error": "..."} */
    bool anthropic;              /* /v1/messages: errors as Anthropic's {"type":"error",...} */
    double t0_ms;                /* arrival (srv_now_ms) */
    struct MHD_Connection *conn; /* for srv_query */
    /* filled by the handler */
    int status;
    int prompt_tokens, cached_tokens, completion_tokens;
    char *log_prompt;                      /* --log-prompts: the prompt text (malloc'd) */
    char tier_header[64], task_header[32]; /* x-hearth-tier, x-hearth-task ("": none) */
    char rag_note[64];     /* the x-hearth-rag header: what retrieval added ("": none) */
    struct srv_gwreq *gw;  /* the gateway's state of a generation request */
    srv_model *model;      /* the model answering (srv_model_use), released at completion */
    gw_key *key;           /* the client's API key from the gateway's "keys" (NULL: none) */
    bool admin;            /* the client may use the operator's routes (stats, loading models) */
    bool metered;          /* counted against the key's limits: gw_key_done at completion */
    gw_key_verdict limits; /* the key's rate limits as admitted (the x-ratelimit-* headers) */
    int64_t keep_alive_ms; /* ollama's keep_alive (SRV_KEEP_ALIVE_DEFAULT: not given) */
    struct MHD_Response *response;
    struct srv_stream *stream; /* a streaming response's state (owned by the response) */
} srv_exchange;

/* The daemon (http.c): binds cfg.host:cfg.port and starts answering. */
hearth_err srv_http_start(srv_server *s);
void srv_http_stop(srv_server *s);

/* Handlers: each sets x->status and x->response. */
void srv_handle_chat(srv_exchange *x);
void srv_handle_completions(srv_exchange *x);
void srv_handle_models(srv_exchange *x, const char *id);
void srv_handle_health(srv_exchange *x);
void srv_handle_metrics(srv_exchange *x);
void srv_handle_stats(srv_exchange *x); /* GET /v1/hearth/stats */
/* GET /v1/hearth/key: the caller's API key; /v1/hearth/keys: every key (api_keys.c) */
void srv_handle_key(srv_exchange *x, bool all);
void srv_handle_drift(srv_exchange *x);  /* GET /v1/hearth/drift (api_drift.c) */
void srv_handle_series(srv_exchange *x); /* GET /v1/hearth/series */
/* GET /dashboard, /dashboard/NAME: the embedded page (dashboard.c) */
void srv_handle_dashboard(srv_exchange *x);
/* The URL's query parameter key (?key=value), decoded; NULL when absent. */
const char *srv_query(const srv_exchange *x, const char *key);
void srv_handle_embeddings(srv_exchange *x); /* POST /v1/embeddings */
void srv_handle_rerank(srv_exchange *x);     /* POST /v1/rerank (api_rerank.c) */
/* ollama's API (api_ollama*.c) */
void srv_handle_ollama_chat(srv_exchange *x);               /* POST /api/chat */
void srv_handle_ollama_generate(srv_exchange *x);           /* POST /api/generate */
void srv_handle_ollama_embed(srv_exchange *x, bool legacy); /* /api/embed, /api/embeddings */
void srv_handle_ollama_version(srv_exchange *x);            /* GET /api/version */
void srv_handle_ollama_tags(srv_exchange *x, bool running); /* GET /api/tags, /api/ps */
void srv_handle_ollama_show(srv_exchange *x);               /* POST /api/show */
/* llama.cpp server's utility endpoints (api_util.c): on the connection's
 * thread, never queued behind the slots */
void srv_handle_tokenize(srv_exchange *x);       /* POST /tokenize */
void srv_handle_detokenize(srv_exchange *x);     /* POST /detokenize */
void srv_handle_apply_template(srv_exchange *x); /* POST /apply-template */
void srv_handle_props(srv_exchange *x);          /* GET /props */
void srv_handle_tokenizer_info(srv_exchange *x); /* GET /tokenizer_info (vLLM's) */
/* OpenAI's Responses API (api_responses.c) */
void srv_handle_responses(srv_exchange *x);        /* POST /v1/responses */
void srv_handle_responses_tokens(srv_exchange *x); /* POST /v1/responses/input_tokens */
/* Anthropic's Messages API (api_anthropic.c) */
void srv_handle_anthropic_messages(srv_exchange *x); /* POST /v1/messages */
void srv_handle_anthropic_count(srv_exchange *x);    /* POST /v1/messages/count_tokens */
/* llama-server's router mode (api_models.c; GET /models is /v1/models) */
void srv_handle_model_load(srv_exchange *x);   /* POST /models/load */
void srv_handle_model_unload(srv_exchange *x); /* POST /models/unload */
void srv_handle_slots(srv_exchange *x);        /* GET /slots */
/* POST /slots/{id}?action=save|restore|erase (api_slots.c); id_text: what
 * follows /slots/ */
void srv_handle_slot_action(srv_exchange *x, const char *id_text);
/* --slot-save-path: the directory made (with its parents) at start-up. */
hearth_err srv_slots_start(srv_server *s);
/* POST /v1/chat/completions/input_tokens (llama-server's): the tokens a chat
 * request's prompt would be (api_chat.c) */
void srv_handle_chat_tokens(srv_exchange *x);
/* llama-server's own API (api_llama.c) */
void srv_handle_llama_completion(srv_exchange *x); /* POST /completion, /completions */
void srv_handle_infill(srv_exchange *x);           /* POST /infill */
/* A llama-server body (infill: /infill's) parsed into *r as the /v1/completions
 * request it means (dialect SRV_DIALECT_LLAMA); *repeat_last_n gets its
 * repeat_last_n (-1: the context); *root_out (may be NULL) the parsed body,
 * the caller's to free. False with e filled when it is refused. */
bool srv_llama_parse(const char *body, size_t len, bool infill, srv_request *r, int *repeat_last_n,
                     struct cJSON **root_out, srv_error *e);
/* retrieval (api_rag.c) */
/* At start-up, once the models are registered: --rag-rerank names a served
 * reranker (else an error saying why), which is then loaded at start-up. */
hearth_err srv_rag_start(srv_server *s);
void srv_handle_rag_search(srv_exchange *x); /* POST /v1/hearth/rag/search */
/* A parsed chat request with "rag" (r->rag): its last user message gets the
 * retrieved context, x->tier_header is pinned to local unless the operator
 * allows the cloud. Without "rag" nothing changes. False: x was answered (an
 * error). */
bool srv_rag_augment(srv_exchange *x, srv_request *r);

/* Responses (http.c): a JSON body (taken over: freed by the response; NULL,
 * a printer out of memory, answers 500) and an error. */
void srv_respond_json(srv_exchange *x, int status, char *json);
void srv_respond_error(srv_exchange *x, const srv_error *e);
/* ollama's error body {"error": "message"} as a malloc'd string (http.c;
 * sse.c's NDJSON streams end with it as their last line). */
char *srv_ollama_error_json(const srv_error *e);

/* ---- generation (api_gen.c, sse.c) --------------------------------------- */

/* What a generation request needs once its prompt is tokens. */
typedef struct srv_gen {
    srv_kind kind;
    const srv_request *req;
    int32_t *ids; /* prompt tokens (the callee copies them); a completion's
                     other prompts are req->more_prompts' */
    int n_ids;
    const char *echo_text; /* completion with echo: the prompt text */
    size_t echo_len;
    const char *model; /* a remote tier's answer: its model's name, and no logprobs (NULL: the
                          local model's) */
    srv_model *local;  /* the local model (held by the caller) */
} srv_gen;

void srv_generate(srv_exchange *x, const srv_gen *g);
/* Submits j and waits until it is done (or, with until_started, has left the
 * queue). False when it did not get that far: x is then answered (503: the
 * queue is full or the wait ran out of time; status 499 and no response: the
 * client left) and the caller's reference released. */
bool srv_run_job(srv_exchange *x, srv_job *j, bool until_started);
/* srv_run_job for the n jobs of one request's choices, submitted all or
 * none; with until_started it returns once the first has left the queue.
 * On failure every job is cancelled and the caller's references released. */
bool srv_run_jobs(srv_exchange *x, srv_job *const *jobs, int n, bool until_started);
/* The job that generates g's first choice (refs = 1, the caller's; not
 * submitted); NULL when out of memory. */
srv_job *srv_job_for(srv_server *s, const srv_gen *g);
/* Choice i of n samples with seed + i (mod 2^64); the value reserved for "a
 * random seed" (HEARTH_SEED_RANDOM), if some i lands on it, is replaced by
 * seed + n, so the n seeds differ. A random seed stays random (each choice
 * draws its own). */
uint64_t srv_choice_seed(uint64_t seed, int i, int n);
/* The request's max_tokens, or the default when not given (chat: until the
 * context is full, 0; completion: 16, as OpenAI's). */
int srv_max_tokens(const srv_request *r);
/* The chat.completion / text_completion body of a finished job (malloc'd). */
char *srv_response_json(const srv_gen *g, const srv_job *j);
/* The same with one choice per job, index i for jobs[i], which answers
 * prompt i / srv_n_choices (its echo) (ollama's dialects: jobs[0] only; n
 * is 1 there). */
char *srv_response_json_n(const srv_gen *g, srv_job *const *jobs, int n);
/* The model name the other APIs' answers report: a remote tier's model,
 * else what the client asked for, else the local model's id. */
const char *srv_asked_model(const srv_gen *g);
/* A chat request's prompt: messages, tools and calls rendered by the chat
 * template (a forced tool call opens the assistant turn with the call prefix
 * and sets r's constraint), then tokenized; *ids malloc'd. With text_out,
 * *text_out receives the rendered text (malloc'd). */
/* Images (api_images.c): an image_url part's URL (a data: URI of base64, or
 * bare base64) decoded into r->images, param naming the part in errors;
 * the request's images encoded by m's projector into r->image_rows (400
 * when an image is bad; m has one: srv_chat_prompt refuses images
 * otherwise); everything freed. */
bool srv_image_add(srv_request *r, const char *url, const char *param, srv_error *e);
bool srv_images_encode(const srv_model *m, srv_request *r, srv_error *e);
/* A chat's images, after srv_chat_prompt: kept to the local model (no tier
 * gets them) and encoded before the request is queued. */
bool srv_chat_images(srv_exchange *x, const srv_model *m, srv_request *r, srv_error *e);
void srv_images_free(srv_request *r);
bool srv_chat_prompt(const srv_model *m, srv_request *r, int32_t **ids, int *n, char **text_out,
                     srv_error *e);
/* A completion's fill-in-the-middle prompt (r->prompt before the cursor,
 * r->suffix after it: hearth_tokenize_fim); *ids malloc'd. Only the local
 * model can answer it: a request that names a remote tier is a 400, and x's
 * tier is pinned to local. A model without FIM tokens is a 400 naming
 * suffix. */
bool srv_tokenize_fim(srv_exchange *x, const srv_model *m, const srv_request *r, int32_t **ids,
                      int *n, srv_error *e);
/* What only the local model can answer (param names the field, what says
 * why): a request that names a remote tier (its model, or x-hearth-tier) is
 * a 400 naming param (false, e filled); else x's tier is pinned to local. */
bool srv_pin_local(srv_exchange *x, const srv_request *r, const char *param, const char *what,
                   srv_error *e);
/* The same for any fill-in-the-middle input (llama-server's /infill); param
 * names the field errors are about. */
bool srv_tokenize_infill(srv_exchange *x, const srv_model *m, const srv_request *r,
                         const hearth_infill *in, const char *param, int32_t **ids, int *n,
                         srv_error *e);
/* A parsed completion request (not freed) the rest of the way, as
 * /v1/completions takes it: its model, the prompts' tokens (text, ids or
 * fill in the middle), the gateway. x is answered. */
void srv_complete(srv_exchange *x, srv_request *r);
/* A completion's prompts as one text (what the gateway's privacy scan and
 * policy read, and the log and ledger keep): each text prompt as given, each
 * token-id prompt detokenized (prompt 0's ids are ids[0..n)), joined by a
 * blank line. malloc'd; NULL when out of memory. */
char *srv_completion_text(const srv_model *m, const srv_request *r, const int32_t *ids, int n);
/* A parsed chat request (taken over and freed) the rest of the way, as
 * /v1/chat/completions takes it: its model, retrieval, the chat template,
 * the gateway. x is answered. */
void srv_chat_route(srv_exchange *x, srv_request *r);
/* A chat request in another API's shape (Anthropic's, the Responses API),
 * translated into OpenAI's body (malloc'd, taken over; NULL: e says why),
 * parsed into *r with dialect d. False when x was answered with the error. */
bool srv_parse_translated(srv_exchange *x, char *body, srv_error *e, srv_dialect d, srv_request *r);
/* The prompt tokens a parsed chat request (taken over and freed) evaluates
 * on its model (the count endpoints); false when x was answered. */
bool srv_chat_count(srv_exchange *x, srv_request *r, int *n);
/* {"object":"response.input_tokens","input_tokens":n} (the Responses API's
 * count, and llama-server's for chats). */
void srv_respond_input_tokens(srv_exchange *x, int n);
/* Tokenizes a prompt (BOS as the vocabulary asks, special tokens parsed);
 * *ids is malloc'd. */
bool srv_tokenize(const srv_model *m, const char *text, size_t len, int32_t **ids, int *n,
                  srv_error *e);

/* The pieces of a response both the JSON and the SSE writers use. */
const char *srv_finish_reason(const srv_job *j);
/* The logprobs of events[from..to) in the request kind's format (chat:
 * {"content":[...]}, completion: {"tokens",...}); a completion's scored
 * prompt's entries (echo with logprobs) first when `prompt`. */
struct cJSON;
struct cJSON *srv_logprobs_json(const srv_model *m, srv_kind kind, const srv_job *j, int from,
                                int to, bool prompt, size_t text_base);
void srv_usage_json(struct cJSON *obj, const srv_job *j);
/* The bytes of token id's piece as the output shows it (at most cap of
 * them into raw; control tokens have none); how many. */
size_t srv_token_bytes(const srv_model *m, int32_t id, char *raw, size_t cap);
/* raw[0..n) as a JSON array of byte values (the logprobs' "bytes"). */
struct cJSON *srv_bytes_json(const char *raw, size_t n);
/* Tokens of j's completion that were reasoning (a <think> block's, or a
 * remote tier's count). */
int srv_job_reasoning_tokens(const srv_job *j);
/* usage over the choices: each prompt once (its first choice's counts:
 * srv_job.same_prompt), the completions summed
 * (completion_tokens_details.reasoning_tokens: of those, the reasoning);
 * and the same counts as numbers. */
void srv_usage_json_n(struct cJSON *obj, srv_job *const *jobs, int n);
void srv_usage_counts(srv_job *const *jobs, int n, int *prompt, int *cached, int *completion);
/* text[0..len) as a JSON string: cJSON stops at a NUL byte, so a generated
 * U+0000 would cut the text; it is dropped instead. text[len] is read: it
 * must lie in the buffer (the job's text and every string here are
 * NUL-terminated buffers; a NUL there lets the text go without a copy).
 * NULL when out of memory. */
struct cJSON *srv_json_string(const char *text, size_t len);
/* "chatcmpl-..." / "cmpl-..." */
void srv_make_id(srv_kind kind, char *out, size_t cap);

/* ollama's answers (api_ollama.c): the object every line starts with
 * ({"model","created_at"}), a piece of text in the dialect's field, the
 * final fields (done, done_reason, counts, durations in nanoseconds), and
 * the whole non-streaming body (malloc'd). model: the name to report. */
struct cJSON *srv_ollama_head(const srv_model *m, const srv_request *r, const char *model);
void srv_ollama_piece(struct cJSON *o, srv_dialect d, const char *text, size_t len);
/* ... and a piece of reasoning: "thinking" (chat: in o's "message"). */
void srv_ollama_thinking(struct cJSON *o, srv_dialect d, const char *text, size_t len);
void srv_ollama_done(struct cJSON *o, const srv_request *r, const srv_job *j);
char *srv_ollama_response_json(const srv_gen *g, const srv_job *j);

/* Anthropic's answers (api_anthropic.c): the whole non-streaming body and
 * the error body. */
char *srv_anthropic_response_json(const srv_gen *g, const srv_job *j);
/* The OpenAI chat body an Anthropic request body[0..len) means (malloc'd
 * JSON text, for srv_parse_request); NULL with e filled (a 400 naming the
 * field) when it is not a valid request. count_only: count_tokens' body
 * (no max_tokens). Touches no model: fuzz_server_json feeds it. */
char *srv_anthropic_translate(const char *body, size_t len, bool count_only, srv_error *e);
char *srv_anthropic_error_json(const srv_error *e);

/* A streamed answer in a dialect of typed events (Anthropic's, the Responses
 * API's): sse.c calls these with the stream's state, and each event they
 * make goes to emit (which takes it). open: the state for request r whose
 * first job is j, reporting `model`; head: the opening events; text: a
 * piece of the reply's text; call: one tool call, whole; end: the closing
 * events of a finished job (calls: it made some); fail: a failure after
 * the headers. */
typedef void (*srv_emit_fn)(void *user, struct cJSON *event);
struct srv_call_out;
typedef struct srv_typed_ops {
    void *(*open)(const srv_request *r, const char *model, const srv_job *j);
    void (*head)(void *st, srv_emit_fn emit, void *user);
    void (*text)(void *st, const char *text, size_t len, srv_emit_fn emit, void *user);
    /* a piece of the reasoning (<think> block; NULL: the dialect drops it) */
    void (*reasoning)(void *st, const char *text, size_t len, srv_emit_fn emit, void *user);
    void (*call)(void *st, const struct srv_call_out *c, srv_emit_fn emit, void *user);
    void (*end)(void *st, const srv_job *j, bool calls, srv_emit_fn emit, void *user);
    void (*fail)(void *st, const srv_error *e, srv_emit_fn emit, void *user);
    void (*close)(void *st);
    /* a remote tier's thinking block, complete (NULL: the dialect drops it) */
    void (*thinking)(void *st, const gw_thinking_block *b, srv_emit_fn emit, void *user);
} srv_typed_ops;
extern const srv_typed_ops srv_anthropic_stream; /* api_anthropic.c */
extern const srv_typed_ops srv_responses_stream; /* api_responses.c */
extern const srv_typed_ops srv_llama_stream;     /* api_llama.c */
/* llama-server's stream sends each generated token as an event of its own,
 * with its id and (n_probs) probabilities: sse.c calls this instead of
 * srv_llama_stream.text for j's event ev (mu held). */
void srv_llama_stream_token(void *p, const srv_model *m, const srv_job *j, int ev, srv_emit_fn emit,
                            void *user);
/* llama-server's final object, or with several prompts (n jobs) an array of
 * them, each with its prompt's "index". */
char *srv_llama_response_json(const srv_gen *g, srv_job *const *jobs, int n);
char *srv_responses_response_json(const srv_gen *g, const srv_job *j);
/* The chat body a Responses request means (as srv_anthropic_translate). */
char *srv_responses_translate(const char *body, size_t len, srv_error *e);

/* Streaming: takes over the job reference and answers with SSE (ollama's
 * dialects: NDJSON; Anthropic's and the Responses API's: typed events). */
void srv_stream_start(srv_exchange *x, srv_kind kind, const srv_request *req, srv_job *j,
                      const char *id, int64_t created);
/* The same for the n jobs of a request's choices (a group, srv_job_group,
 * when n > 1; with several prompts, jobs[i] answers prompt i / the request's
 * n): takes over their references; each choice's chunks carry its index,
 * each ends with its own finish chunk, one usage chunk and one [DONE] close
 * the stream. */
void srv_stream_start_n(srv_exchange *x, srv_kind kind, const srv_request *req,
                        srv_job *const *jobs, int n, const char *id, int64_t created);

/* Whether the client's socket was closed by the peer. */
bool srv_client_gone(int fd);

/* ---- the gateway (api_gateway.c) ------------------------------------------ */

typedef struct srv_gwreq srv_gwreq;

/* Builds the gateway from the configuration (an error for a bad --config). */
hearth_err srv_gateway_start(srv_server *s);
/* Refuses new generation requests and stops the ones in flight (call before the
 * HTTP daemon stops, so their streams end). */
void srv_gateway_quiesce(srv_server *s);
/* Waits for the cascade threads and frees the gateway (after the daemon). */
void srv_gateway_stop(srv_server *s);
/* A parsed chat or completion request whose prompt is tokens (*ids, malloc'd,
 * never r->prompt_ids): routed, answered and accounted by the gateway. Takes
 * *r and *ids over (leaves them empty). A completion reaches a remote tier
 * as one user message holding its prompt. */
void srv_gateway_route(srv_exchange *x, srv_request *r, int32_t **ids, int n_ids);
/* A token-id prompt as text (the gateway's privacy scan, policy and remote
 * tier; a completion's echo): detokenized without control tokens' text,
 * ill-formed UTF-8 replaced. NULL when out of memory (api_gateway.c). */
char *srv_ids_text(const srv_model *m, const int32_t *ids, int n);
/* libmicrohttpd reports the request complete: the ledger row follows. */
void srv_gateway_completed(srv_exchange *x);

#endif
