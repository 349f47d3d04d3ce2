/*
 * api_gen.c - what chat and completion requests share once their prompt is
 * tokens: the context check, the jobs, the wait (noticing a client that went
 * away and a request that waited too long), and the non-streaming response
 * bodies of OpenAI's chat.completion and text_completion objects with their
 * logprobs and usage. Streaming responses are sse.c's.
 *
 * n > 1: one job per choice, submitted together (all or none) so that the
 * scheduler batches them like any concurrent requests and evaluates their
 * prompt once (sched.c); choice i samples with
 * srv_choice_seed(seed, i, n). Usage counts the prompt once and sums the
 * completions (OpenAI's convention). A completion with several prompts
 * (k) has k * n choices, prompt i's choice c at index i * n + c, each
 * answered as if its prompt came alone (its own echo and scored prompt);
 * the prompts run side by side in the slots as concurrent requests do, and
 * usage counts each prompt once (vLLM's sums). With tools, the
 * reply is split into content and tool_calls (tools_parse.c) and a reply
 * with calls finishes with "tool_calls". A request that came by ollama's API
 * gets ollama's body instead (srv_ollama_response_json, api_ollama.c).
 */
#include "server.h"
#include "tools.h"

#include "engine/engine.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

void srv_make_id(srv_kind kind, char *out, size_t cap) {
    static atomic_uint_fast64_t counter;
    const uint64_t n = atomic_fetch_add(&counter, 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, cap, "%s-%08llx%06llx", kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)(ts.tv_sec & 0xffffffff), (unsigned long long)(n & 0xffffff));
}

const char *srv_finish_reason(const srv_job *j) {
    /* A request cut by its time limit ended early, like one cut by max_tokens. */
    return j->result.finish == HEARTH_FINISH_STOP && !j->timed_out ? "stop" : "length";
}

void srv_usage_counts(srv_job *const *jobs, int n, int *prompt, int *cached, int *completion) {
    /* the choices of a prompt evaluated it once: its first one's counts */
    *prompt = *cached = *completion = 0;
    for (int i = 0; i < n; i++) {
        const srv_job *j = jobs[i];
        if (!j->same_prompt || j->same_prompt == j) {
            *prompt += j->result.n_prompt + j->result.n_cached;
            *cached += j->result.n_cached;
        }
        *completion += j->result.n_gen;
    }
}

int srv_job_reasoning_tokens(const srv_job *j) {
    if (j->reasoning_tokens >= 0) return j->reasoning_tokens;
    int n = 0;
    for (int i = 0; i < j->n_events; i++) n += j->events[i].thought && j->events[i].id >= 0;
    return n;
}

void srv_usage_json_n(cJSON *obj, srv_job *const *jobs, int n) {
    int prompt, cached, completion, reasoning = 0;
    srv_usage_counts(jobs, n, &prompt, &cached, &completion);
    for (int i = 0; i < n; i++) reasoning += srv_job_reasoning_tokens(jobs[i]);
    cJSON *u = cJSON_AddObjectToObject(obj, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", completion);
    cJSON_AddNumberToObject(u, "total_tokens", prompt + completion);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", cached);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"),
                            "reasoning_tokens", reasoning);
}

void srv_usage_json(cJSON *obj, const srv_job *j) {
    srv_job *one = (srv_job *)j; /* read only */
    srv_usage_json_n(obj, &one, 1);
}

size_t srv_utf8_clean(const char *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    while (i < n) {
        size_t bad = 0;
        if (hr_utf8_valid(in + i, n - i, &bad)) bad = n - i;
        memcpy(out + o, in + i, bad);
        o += bad;
        i += bad;
        if (i < n) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

size_t srv_token_bytes(const srv_model *m, int32_t id, char *raw, size_t cap) {
    const tok_vocab *v = engine_vocab(m->model);
    size_t n = 0;
    if (!v)
        n = 0;
    else if (tok_piece(v, id, false, raw, cap, &n) != HEARTH_OK)
        n = n > cap ? cap : 0;
    return n;
}

/* The piece of token id as bytes, and as a JSON-safe string (ill-formed
 * UTF-8, e.g. half a character, becomes U+FFFD). text_cap >= 3 * cap + 1. */
static void token_piece(const srv_model *m, int32_t id, char *raw, size_t cap, size_t *n_raw,
                        char *text) {
    *n_raw = srv_token_bytes(m, id, raw, cap);
    srv_utf8_clean(raw, *n_raw, text);
}

enum { PIECE_MAX = 256 };

cJSON *srv_bytes_json(const char *raw, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)raw[i]));
    return a;
}

/* chat: {"content": [{"token","logprob","bytes","top_logprobs":[...]}...]} */
static cJSON *chat_logprobs(const srv_model *m, const srv_job *j, int from, int to) {
    cJSON *lp = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(lp, "content");
    char raw[PIECE_MAX], text[PIECE_MAX * 3 + 4];
    size_t n;
    for (int i = from; i < to; i++) {
        const srv_event *e = &j->events[i];
        if (e->id < 0) continue;
        cJSON *t = cJSON_CreateObject();
        token_piece(m, e->id, raw, sizeof raw, &n, text);
        cJSON_AddStringToObject(t, "token", text);
        cJSON_AddNumberToObject(t, "logprob", e->logprob);
        cJSON_AddItemToObject(t, "bytes", srv_bytes_json(raw, n));
        cJSON *top = cJSON_AddArrayToObject(t, "top_logprobs");
        for (int k = 0; k < e->n_top; k++) {
            cJSON *a = cJSON_CreateObject();
            token_piece(m, e->top[k].id, raw, sizeof raw, &n, text);
            cJSON_AddStringToObject(a, "token", text);
            cJSON_AddNumberToObject(a, "logprob", e->top[k].logprob);
            cJSON_AddItemToObject(a, "bytes", srv_bytes_json(raw, n));
            cJSON_AddItemToArray(top, a);
        }
        cJSON_AddItemToArray(content, t);
    }
    return lp;
}

/* One token of the completions shape: its piece, logprob, alternatives (a
 * piece -> logprob object) and text offset; a scored prompt's first token
 * has null for the two it has none of. */
static void completion_token(const srv_model *m, const srv_event *e, bool none, size_t off,
                             cJSON *tokens, cJSON *lps, cJSON *tops, cJSON *offs) {
    char raw[PIECE_MAX], text[PIECE_MAX * 3 + 4];
    size_t n;
    token_piece(m, e->id, raw, sizeof raw, &n, text);
    cJSON_AddItemToArray(tokens, cJSON_CreateString(text));
    cJSON_AddItemToArray(lps, none ? cJSON_CreateNull() : cJSON_CreateNumber(e->logprob));
    cJSON *top = none ? cJSON_CreateNull() : cJSON_CreateObject();
    for (int k = 0; !none && k < e->n_top; k++) {
        token_piece(m, e->top[k].id, raw, sizeof raw, &n, text);
        if (!cJSON_GetObjectItemCaseSensitive(top, text))
            cJSON_AddNumberToObject(top, text, e->top[k].logprob);
    }
    cJSON_AddItemToArray(tops, top);
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
}

/* The length of token id's text (its piece, control tokens none). */
static size_t piece_len(const srv_model *m, int32_t id) {
    char raw[PIECE_MAX];
    return srv_token_bytes(m, id, raw, sizeof raw);
}

/* completions: {"tokens","token_logprobs","top_logprobs","text_offset"};
 * with_prompt and a scored prompt (echo), the prompt's tokens come first. */
static cJSON *completion_logprobs(const srv_model *m, const srv_job *j, int from, int to,
                                  bool with_prompt, size_t text_base) {
    cJSON *lp = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(lp, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(lp, "top_logprobs");
    cJSON *offs = cJSON_AddArrayToObject(lp, "text_offset");
    /* a prompt token's offset: the length of the pieces before it, less what
     * all the pieces have beyond the echo (SentencePiece's space prefix,
     * which the client's text lacks) */
    const bool prompt = with_prompt && j->prompt_events && !j->err;
    size_t all = 0, before = 0;
    for (int i = 0; prompt && i < j->n_prompt; i++) all += piece_len(m, j->prompt[i]);
    const size_t extra = all > text_base ? all - text_base : 0;
    for (int i = 0; prompt && i < j->n_prompt; i++) {
        const size_t off = before > extra ? before - extra : 0;
        completion_token(m, &j->prompt_events[i], i == 0, off < text_base ? off : text_base, tokens,
                         lps, tops, offs);
        before += piece_len(m, j->prompt[i]);
    }
    for (int i = from; i < to; i++) {
        const srv_event *e = &j->events[i];
        if (e->id >= 0)
            completion_token(m, e, false, text_base + e->text_off, tokens, lps, tops, offs);
    }
    return lp;
}

cJSON *srv_logprobs_json(const srv_model *m, srv_kind kind, const srv_job *j, int from, int to,
                         bool prompt, size_t text_base) {
    return kind == SRV_CHAT ? chat_logprobs(m, j, from, to)
                            : completion_logprobs(m, j, from, to, prompt, text_base);
}

cJSON *srv_json_string(const char *text, size_t len) {
    if (!text[len] && !memchr(text, '\0', len)) return cJSON_CreateString(text);
    char *c = malloc(len + 1);
    if (!c) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i]) c[n++] = text[i];
    c[n] = '\0';
    cJSON *s = cJSON_CreateString(c);
    free(c);
    return s;
}

bool srv_job_reply(const srv_request *r, const srv_job *j, srv_tool_reply *t) {
    const char *text = j->text ? j->text : "";
    if (srv_tools_active(r)) {
        const srv_tool_set set = srv_tool_set_of(r);
        return j->remote_calls ? srv_tools_remote(&set, j, true, t)
                               : srv_tools_parse_set(&set, text, j->text_len, true, t);
    }
    *t = (srv_tool_reply){.content = malloc(j->text_len + 1), .content_len = j->text_len};
    if (!t->content) return false;
    memcpy(t->content, text, j->text_len);
    t->content[j->text_len] = '\0';
    return true;
}

/* The chat message of a reply to a request with tools: content (null when
 * there is none beside calls) and tool_calls (srv_job_reply). False when
 * out of memory. */
static bool tool_message(cJSON *msg, const srv_request *r, const srv_job *j, bool *calls) {
    srv_tool_reply t;
    if (!srv_job_reply(r, j, &t)) return false;
    if (t.content)
        cJSON_AddItemToObject(msg, "content", srv_json_string(t.content, t.content_len));
    else
        cJSON_AddNullToObject(msg, "content");
    if (t.n_calls) cJSON_AddItemToObject(msg, "tool_calls", srv_tool_calls_json(&t));
    *calls = t.n_calls > 0;
    srv_tool_reply_free(&t);
    return true;
}

/* The prompt tokens and echo of g's prompt i (0: g's own; a completion's
 * others: its request's). */
static void gen_prompt(const srv_gen *g, int i, const int32_t **ids, int *n, const char **echo,
                       size_t *echo_len) {
    if (i <= 0 || i >= srv_n_prompts(g->req)) {
        *ids = g->ids;
        *n = g->n_ids;
        *echo = g->echo_text;
        *echo_len = g->echo_len;
        return;
    }
    const srv_prompt *p = &g->req->more_prompts[i - 1];
    *ids = p->ids;
    *n = p->n_ids;
    *echo = srv_request_echo_i(g->req, i, echo_len);
}

/* One choice of a chat.completion / text_completion (index i, job j);
 * false when out of memory. */
static bool choice_json(const srv_gen *g, const srv_job *j, int i, cJSON *choices) {
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(choices, c)) {
        cJSON_Delete(c);
        return false;
    }
    cJSON_AddNumberToObject(c, "index", i);
    const char *text = j->text ? j->text : "", *echo;
    const int32_t *ids;
    int n_ids;
    size_t echo_len;
    gen_prompt(g, i / srv_n_choices(g->req), &ids, &n_ids, &echo, &echo_len);
    bool calls = false;
    if (g->kind == SRV_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        if (j->reasoning_len) /* llama-server's (and DeepSeek's API) field */
            cJSON_AddItemToObject(msg, "reasoning_content",
                                  srv_json_string(j->reasoning, j->reasoning_len));
        if (j->n_thinking) /* LiteLLM's: an Anthropic tier's signed blocks */
            cJSON_AddItemToObject(msg, "thinking_blocks",
                                  srv_thinking_json(j->thinking, j->n_thinking));
        if (!srv_tools_active(g->req))
            cJSON_AddItemToObject(msg, "content", srv_json_string(text, j->text_len));
        else if (!tool_message(msg, g->req, j, &calls))
            return false;
    } else if (echo) {
        char *both = malloc(echo_len + j->text_len + 1);
        if (both) {
            memcpy(both, echo, echo_len);
            memcpy(both + echo_len, text, j->text_len);
            both[echo_len + j->text_len] = '\0';
            cJSON_AddItemToObject(c, "text", srv_json_string(both, echo_len + j->text_len));
            free(both);
        }
    } else {
        cJSON_AddItemToObject(c, "text", srv_json_string(text, j->text_len));
    }
    if (g->req->logprobs && !g->model) /* a remote tier's answer has no logprobs */
        cJSON_AddItemToObject(
            c, "logprobs", srv_logprobs_json(g->local, g->kind, j, 0, j->n_events, true, echo_len));
    else
        cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", calls ? "tool_calls" : srv_finish_reason(j));
    return true;
}

const char *srv_asked_model(const srv_gen *g) {
    const srv_request *r = g->req;
    return g->model ? g->model : r->model && r->model[0] ? r->model : g->local->id;
}

char *srv_response_json_n(const srv_gen *g, srv_job *const *jobs, int n) {
    if (g->req->dialect == SRV_DIALECT_ANTHROPIC) return srv_anthropic_response_json(g, jobs[0]);
    if (g->req->dialect == SRV_DIALECT_RESPONSES) return srv_responses_response_json(g, jobs[0]);
    if (g->req->dialect == SRV_DIALECT_LLAMA) return srv_llama_response_json(g, jobs, n);
    if (srv_dialect_ollama(g->req->dialect)) return srv_ollama_response_json(g, jobs[0]);
    char id[64];
    srv_make_id(g->kind, id, sizeof id);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", id);
    cJSON_AddStringToObject(root, "object",
                            g->kind == SRV_CHAT ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(root, "created", (double)time(NULL));
    cJSON_AddStringToObject(root, "model", g->model ? g->model : g->local->id);
    cJSON_AddNullToObject(root, "system_fingerprint");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    for (int i = 0; i < n; i++) {
        if (!choice_json(g, jobs[i], i, choices)) {
            cJSON_Delete(root);
            return NULL;
        }
    }
    srv_usage_json_n(root, jobs, n);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

char *srv_response_json(const srv_gen *g, const srv_job *j) {
    srv_job *one = (srv_job *)j; /* read only */
    return srv_response_json_n(g, &one, 1);
}

bool srv_client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
    char c;
    const ssize_t k = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

typedef enum wait_result { WAIT_OK, WAIT_GONE, WAIT_QUEUE_TIMEOUT } wait_result;

/* Waits until the job is done (or, with until_started, has left the queue),
 * checking every 100 ms for a client that closed its connection and for a
 * queued job whose time ran out. Either cancels the job. */
static wait_result wait_job(srv_exchange *x, srv_job *j, bool until_started) {
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->state == SRV_JOB_DONE || (until_started && j->state != SRV_JOB_QUEUED)) break;
        srv_wait_ms(&j->cv, &j->mu, 100);
        if (j->state == SRV_JOB_DONE) break;
        const bool queued = j->state == SRV_JOB_QUEUED;
        pthread_mutex_unlock(&j->mu);
        wait_result w = WAIT_OK;
        if (srv_client_gone(x->client_fd))
            w = WAIT_GONE;
        else if (queued && j->deadline_ms > 0 && srv_now_ms() > j->deadline_ms)
            w = WAIT_QUEUE_TIMEOUT;
        if (w != WAIT_OK) {
            srv_sched_cancel(x->model->sched, j);
            return w;
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return WAIT_OK;
}

static void release_jobs(srv_job *const *jobs, int n) {
    for (int i = 0; i < n; i++) srv_job_release(jobs[i]);
}

bool srv_run_jobs(srv_exchange *x, srv_job *const *jobs, int n, bool until_started) {
    srv_server *s = x->srv;
    srv_sched *sched = x->model->sched;
    srv_error e;
    if (!srv_sched_submit_n(sched, jobs, n)) {
        int queued, busy, slots;
        srv_sched_stats(sched, &queued, &busy, &slots);
        srv_fail(&e, 503, NULL, "server_busy",
                 "all %d slots are busy and %d requests are waiting (the queue's limit); retry "
                 "later",
                 slots, queued);
        srv_respond_error(x, &e);
        release_jobs(jobs, n);
        return false;
    }
    /* streaming starts once the first choice has left the queue (the
     * others follow as slots free up); otherwise every choice must end */
    wait_result w = WAIT_OK;
    for (int i = 0; w == WAIT_OK && i < (until_started ? 1 : n); i++)
        w = wait_job(x, jobs[i], until_started);
    if (w != WAIT_OK)
        for (int i = 0; i < n; i++) srv_sched_cancel(sched, jobs[i]);
    if (w == WAIT_GONE) {
        x->status = 499; /* nginx's "client closed request": no response is sent */
        release_jobs(jobs, n);
        return false;
    }
    if (w == WAIT_QUEUE_TIMEOUT) {
        srv_fail(&e, 503, NULL, "timeout", "the request waited %d s for a free slot; retry later",
                 s->cfg.timeout_s);
        srv_respond_error(x, &e);
        release_jobs(jobs, n);
        return false;
    }
    return true;
}

bool srv_run_job(srv_exchange *x, srv_job *j, bool until_started) {
    return srv_run_jobs(x, &j, 1, until_started);
}

int srv_max_tokens(const srv_request *r) {
    /* Not given: chat runs until the context is full, a completion stops
     * after 16 tokens (OpenAI's defaults). */
    if (r->max_tokens > 0) return r->max_tokens;
    /* ollama's num_predict defaults to -1, "infinite": until the context is full */
    return r->kind == SRV_COMPLETION && r->dialect == SRV_DIALECT_OPENAI ? 16 : 0;
}

uint64_t srv_choice_seed(uint64_t seed, int i, int n) {
    if (seed == HEARTH_SEED_RANDOM) return seed; /* each sampler draws its own */
    const uint64_t s = seed + (uint64_t)i;
    /* the one i (if any) that lands on the reserved value takes seed + n,
     * which no other choice has */
    return s == HEARTH_SEED_RANDOM ? seed + (uint64_t)n : s;
}

/* Context shift (hearth_gen_params.ctx_shift): ollama's routes shift unless
 * the request says "shift": false, as ollama does; the others when the
 * server runs with --context-shift, as llama-server. What is kept: ollama's
 * num_keep (default 4) counts from the first token; llama-server's n_keep
 * (default 0) after the BOS, -1 the whole prompt. A generation without a
 * limit that shifts stops after 10 times the context (ollama's bound), not
 * never. */
static void job_ctx_shift(const srv_server *s, const srv_gen *g, srv_job *j) {
    const srv_request *r = g->req;
    const bool ollama = srv_dialect_ollama(r->dialect);
    j->ctx_shift = ollama ? r->shift != 0 : s->cfg.ctx_shift;
    if (ollama)
        j->n_keep = r->n_keep == SRV_N_KEEP_UNSET ? 4 : r->n_keep;
    else if (r->n_keep == -1)
        j->n_keep = -1;
    else
        j->n_keep = (r->n_keep == SRV_N_KEEP_UNSET ? 0 : r->n_keep) +
                    (j->n_prompt > 0 && j->prompt[0] == hearth_token_bos(g->local->model));
    j->n_discard = r->n_discard;
    if (j->ctx_shift && j->max_tokens <= 0) j->max_tokens = 10 * srv_sched_n_ctx(g->local->sched);
}

/* The job of prompt i's choice `choice`, which samples with the seed that
 * choice would have were the prompt alone (srv_choice_seed). */
static srv_job *job_for(srv_server *s, const srv_gen *g, int prompt, int choice) {
    const srv_request *r = g->req;
    const int32_t *ids;
    int n_ids;
    const char *echo;
    size_t echo_len;
    gen_prompt(g, prompt, &ids, &n_ids, &echo, &echo_len);
    srv_job *j = srv_job_new(ids, n_ids);
    if (!j) return NULL;
    if (r->image_rows && !g->model) { /* the rows for this job's prefill */
        const size_t bytes = (size_t)r->n_images *
                             (size_t)hearth_vision_n_tokens(g->local->vision) *
                             (size_t)hearth_model_n_embd(g->local->model) * sizeof(float);
        if (!(j->image_rows = malloc(bytes))) {
            srv_job_release(j);
            return NULL;
        }
        memcpy(j->image_rows, r->image_rows, bytes);
        j->vision = g->local->vision;
        j->n_images = r->n_images;
    }
    srv_settings st; /* the request's, and the model's parameters for what it left out */
    srv_model_settings(g->local, r, &st);
    j->sampling = st.sampling;
    j->sampling.seed = srv_choice_seed(st.sampling.seed, choice, srv_n_choices(r));
    /* the job's own copy: the request may be freed before the scheduler
     * builds the sampler */
    j->sampling.logit_bias = NULL;
    j->sampling.n_logit_bias = 0;
    if (r->n_logit_bias > 0) {
        j->logit_bias = malloc((size_t)r->n_logit_bias * sizeof *j->logit_bias);
        if (!j->logit_bias) {
            srv_job_release(j);
            return NULL;
        }
        memcpy(j->logit_bias, r->logit_bias, (size_t)r->n_logit_bias * sizeof *j->logit_bias);
        j->sampling.logit_bias = j->logit_bias;
        j->sampling.n_logit_bias = (size_t)r->n_logit_bias;
    }
    if (!srv_breakers_own(&j->sampling, &j->dry_breakers)) {
        srv_job_release(j);
        return NULL;
    }
    j->max_tokens = st.max_tokens;
    job_ctx_shift(s, g, j);
    /* a forced call's JSON is not cut by the client's stop strings */
    for (int i = 0; i < st.n_stop && !r->tool_schema; i++) {
        if (!(j->stop[i] = strdup(st.stop[i]))) {
            srv_job_release(j);
            return NULL;
        }
        j->n_stop = i + 1;
    }
    j->n_top = r->logprobs ? r->top_logprobs : 0;
    j->post_sampling = r->post_sampling_probs && j->n_top > 0;
    j->score_prompt = r->kind == SRV_COMPLETION && r->echo && r->logprobs && !g->model;
    j->prompt_only = srv_prompt_only(r);
    if ((j->think = !g->model && srv_think_split(g->local, r, &j->think_open))) {
        eng_think_init(&j->split, j->think_open);
        int budget;
        srv_error e; /* the chat prompt checked the request's budget already */
        if (srv_think_budget(g->local, r, &budget, &e) && budget >= 0) {
            j->sampling.reasoning_budget = budget ? budget : HEARTH_REASONING_BUDGET_ZERO;
            j->sampling.reasoning_open = j->think_open;
        }
    }
    j->spec_n_max = r->spec_n_max;
    j->spec_p_min = r->spec_p_min;
    if (s->cfg.timeout_s > 0) j->deadline_ms = srv_now_ms() + 1e3 * s->cfg.timeout_s;
    return j;
}

srv_job *srv_job_for(srv_server *s, const srv_gen *g) { return job_for(s, g, 0, 0); }

/* The jobs of g's choices, n of each of its prompts, prompt i's choice c at
 * i * n + c (OpenAI's and vLLM's order): one group when there are several,
 * each prompt's n sharing it; false when out of memory (none left). */
static bool make_jobs(srv_server *s, const srv_gen *g, srv_job **jobs, int k, int n) {
    for (int i = 0; i < k * n; i++) {
        if (!(jobs[i] = job_for(s, g, i / n, i % n))) {
            release_jobs(jobs, i);
            return false;
        }
    }
    if (k * n > 1) srv_job_group(jobs, k * n);
    for (int i = 0; n > 1 && i < k; i++) srv_job_share_prompt(jobs + i * n, n);
    return true;
}

/* Whether every prompt of g leaves room to generate in a slot's context
 * (max_tokens 0: fits in it), and the scheduler can hold all k * n choices
 * at once; else false with e filled (a 400 naming the prompt, or n). */
static bool check_fits(const srv_gen *g, int k, int n, srv_error *e) {
    const srv_sched *sched = g->local->sched;
    const int n_ctx = srv_sched_n_ctx(sched), cap = srv_sched_capacity(sched);
    const bool scored = srv_prompt_only(g->req);
    for (int i = 0; i < k; i++) {
        const int32_t *ids;
        int n_ids;
        const char *echo;
        size_t echo_len;
        gen_prompt(g, i, &ids, &n_ids, &echo, &echo_len);
        if (n_ids < n_ctx || (scored && n_ids == n_ctx)) continue;
        char name[32] = "prompt";
        if (k > 1) snprintf(name, sizeof name, "prompt[%d]", i);
        return srv_fail(e, 400, g->kind == SRV_CHAT ? "messages" : name, "context_length_exceeded",
                        "the prompt has %d tokens but a slot's context holds %d%s; shorten the "
                        "prompt or start the server with a larger --ctx",
                        n_ids, n_ctx, scored ? "" : " (at least one must be left to generate)");
    }
    if (k == 1 && n > cap)
        return srv_fail(e, 400, "n", NULL,
                        "'n' is %d but this server holds at most %d generations at once (%d slots "
                        "and the queue); start it with a larger --parallel or --queue",
                        n, cap, g->local->n_parallel);
    if (k * n > cap)
        return srv_fail(e, 400, "prompt", NULL,
                        "'prompt' holds %d prompts and 'n' is %d: %d generations, but this server "
                        "holds at most %d at once (%d slots and the queue); send fewer prompts a "
                        "request or start it with a larger --parallel or --queue",
                        k, n, k * n, cap, g->local->n_parallel);
    return true;
}

void srv_generate(srv_exchange *x, const srv_gen *g) {
    srv_server *s = x->srv;
    srv_error e;
    const int k = srv_n_prompts(g->req), n_choices = srv_n_choices(g->req);
    x->prompt_tokens = g->n_ids;
    if (!check_fits(g, k, n_choices, &e)) {
        srv_respond_error(x, &e);
        return;
    }
    const int n = k * n_choices; /* <= the scheduler's capacity */
    srv_job **jobs = malloc((size_t)n * sizeof *jobs);
    if (!jobs || !make_jobs(s, g, jobs, k, n_choices)) {
        free(jobs);
        srv_fail(&e, 500, NULL, NULL, "out of memory");
        srv_respond_error(x, &e);
        return;
    }
    if (!srv_run_jobs(x, jobs, n, g->req->stream)) {
        free(jobs);
        return;
    }
    if (g->req->stream) {
        char id[64];
        srv_make_id(g->kind, id, sizeof id);
        srv_stream_start_n(x, g->kind, g->req, jobs, n, id, (int64_t)time(NULL));
        free(jobs);
        return;
    }
    const srv_job *failed = NULL;
    for (int i = 0; i < n && !failed; i++)
        if (jobs[i]->err) failed = jobs[i];
    if (failed) {
        srv_fail(&e, failed->err == HEARTH_ERR_CONTEXT_FULL ? 400 : 500, NULL, NULL,
                 "generation failed: %s", failed->err_msg);
        srv_respond_error(x, &e);
    } else {
        srv_usage_counts(jobs, n, &x->prompt_tokens, &x->cached_tokens, &x->completion_tokens);
        srv_respond_json(x, 200, srv_response_json_n(g, jobs, n));
    }
    release_jobs(jobs, n);
    free(jobs);
}
