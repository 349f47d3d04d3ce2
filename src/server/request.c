/*
 * request.c - the body of POST /v1/chat/completions and /v1/completions as a
 * validated srv_request. Every field the API defines is checked for type and
 * range, and a failure is a 400 that names the field ("messages[2].content",
 * "stop[1]", ...). Fields the server ignores (user, metadata, store, ...) are
 * accepted; fields whose feature is missing (best_of > 1) get a 400 that
 * says so rather than being ignored. A completion's prompt may be several
 * (an array of strings or of token-id arrays), each checked as one. Tools and tool messages are
 * tools_request.c's. The body must be UTF-8
 * (RFC 8259); ill-formed bytes are refused, not replaced. The request
 * records which generation settings the client gave (srv_request.given),
 * so that a model's parameters fill in only the others (model_params.c).
 *
 * This file touches no model and no network: fuzz/fuzz_server_json.c feeds
 * it arbitrary bytes.
 */
#include "request_impl.h"
#include "server.h"
#include "tools.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- typed field access -------------------------------------------------- */

typedef struct parse_ctx {
    srv_error *e;
    srv_request *r;
} parse_ctx;

const cJSON *srv_req_field(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL; /* null means "not given", as OpenAI treats it */
}

static bool get_bool(parse_ctx *c, const cJSON *obj, const char *name, bool *out) {
    const cJSON *v = srv_req_field(obj, name);
    if (!v) return true;
    if (!cJSON_IsBool(v)) return srv_req_bad_type(c->e, name, "a boolean");
    *out = cJSON_IsTrue(v);
    return true;
}

static bool get_number(parse_ctx *c, const cJSON *obj, const char *name, double lo, double hi,
                       bool *given, double *out) {
    const cJSON *v = srv_req_field(obj, name);
    if (given) *given = false;
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return srv_req_bad_type(c->e, name, "a number");
    if (v->valuedouble < lo || v->valuedouble > hi)
        return srv_fail(c->e, 400, name, NULL, "'%s' must be between %g and %g (got %g)", name, lo,
                        hi, v->valuedouble);
    *out = v->valuedouble;
    if (given) *given = true;
    return true;
}

static bool get_int(parse_ctx *c, const cJSON *obj, const char *name, long long lo, long long hi,
                    bool *given, long long *out) {
    const cJSON *v = srv_req_field(obj, name);
    if (given) *given = false;
    if (!v) return true;
    const double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return srv_req_bad_type(c->e, name, "an integer");
    if (d < (double)lo || d > (double)hi)
        return srv_fail(c->e, 400, name, NULL, "'%s' must be between %lld and %lld (got %.0f)",
                        name, lo, hi, d);
    *out = (long long)d;
    if (given) *given = true;
    return true;
}

/* A copy of a JSON string (cJSON already decoded the escapes; the body was
 * checked to be UTF-8, and cJSON refuses unpaired surrogate escapes). */
bool srv_req_dup_string(srv_error *e, const cJSON *v, const char *name, char **out, size_t *len) {
    if (!cJSON_IsString(v) || !v->valuestring) return srv_req_bad_type(e, name, "a string");
    const size_t n = strlen(v->valuestring);
    size_t bad;
    if (!hr_utf8_valid(v->valuestring, n, &bad))
        return srv_fail(e, 400, name, NULL, "'%s' is not valid UTF-8 (byte %zu)", name, bad);
    char *s = malloc(n + 1);
    if (!s) return srv_fail(e, 500, NULL, NULL, "out of memory");
    memcpy(s, v->valuestring, n + 1);
    *out = s;
    if (len) *len = n;
    return true;
}

/* ---- shared fields --------------------------------------------------------- */

static bool parse_stop(parse_ctx *c, const cJSON *root) {
    const cJSON *v = srv_req_field(root, "stop");
    if (!v) return true;
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return true; /* "" stops nothing */
        if (strlen(v->valuestring) > SRV_MAX_STOP_BYTES)
            return srv_fail(c->e, 400, "stop", NULL, "'stop' is longer than %d bytes",
                            SRV_MAX_STOP_BYTES);
        if (!srv_req_dup_string(c->e, v, "stop", &c->r->stop[0], NULL)) return false;
        c->r->n_stop = 1;
        c->r->given |= SRV_GIVEN(SRV_P_STOP);
        return true;
    }
    if (!cJSON_IsArray(v)) return srv_req_bad_type(c->e, "stop", "a string or an array of strings");
    if (cJSON_GetArraySize(v) > SRV_MAX_STOP)
        return srv_fail(c->e, 400, "stop", NULL, "'stop' may hold at most %d strings",
                        SRV_MAX_STOP);
    int i = 0;
    for (const cJSON *s = v->child; s; s = s->next, i++) {
        char name[32];
        snprintf(name, sizeof name, "stop[%d]", i);
        if (!cJSON_IsString(s)) return srv_req_bad_type(c->e, name, "a string");
        if (strlen(s->valuestring) > SRV_MAX_STOP_BYTES)
            return srv_fail(c->e, 400, name, NULL, "'%s' is longer than %d bytes", name,
                            SRV_MAX_STOP_BYTES);
        if (!s->valuestring[0]) continue;
        if (!srv_req_dup_string(c->e, s, name, &c->r->stop[c->r->n_stop], NULL)) return false;
        c->r->n_stop++;
    }
    if (c->r->n_stop) c->r->given |= SRV_GIVEN(SRV_P_STOP);
    return true;
}

/* r->given: what the client set, so that a model's parameters fill in only
 * the rest (srv_model_settings). */
static void mark(srv_request *r, bool given, srv_param p) {
    if (given) r->given |= SRV_GIVEN(p);
}

static bool parse_sampling(parse_ctx *c, const cJSON *root) {
    srv_request *r = c->r;
    hearth_sampling *s = &r->sampling;
    /* OpenAI's defaults: temperature 1, top_p 1, nothing else. */
    *s = hearth_sampling_default_params();
    s->temperature = 1.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->min_p = 0.0f;
    s->penalty_last_n = 64;
    s->repeat_penalty = 1.0f;
    s->frequency_penalty = 0.0f;
    s->presence_penalty = 0.0f;
    s->seed = HEARTH_SEED_RANDOM;
    double d;
    long long ll;
    bool given;
    if (!get_number(c, root, "temperature", 0, 2, &given, &d)) return false;
    if (given) s->temperature = (float)d;
    c->r->given_temperature = given ? d : NAN;
    mark(r, given, SRV_P_TEMPERATURE);
    if (!get_number(c, root, "top_p", 0, 1, &given, &d)) return false;
    if (given) s->top_p = (float)d;
    c->r->given_top_p = given ? d : NAN;
    mark(r, given, SRV_P_TOP_P);
    if (!get_number(c, root, "frequency_penalty", -2, 2, &given, &d)) return false;
    if (given) s->frequency_penalty = (float)d;
    mark(r, given, SRV_P_FREQUENCY_PENALTY);
    if (!get_number(c, root, "presence_penalty", -2, 2, &given, &d)) return false;
    if (given) s->presence_penalty = (float)d;
    mark(r, given, SRV_P_PRESENCE_PENALTY);
    if (!get_int(c, root, "seed", LLONG_MIN / 2, LLONG_MAX / 2, &given, &ll)) return false;
    if (given) s->seed = (uint64_t)ll == HEARTH_SEED_RANDOM ? 0 : (uint64_t)ll;
    mark(r, given, SRV_P_SEED);
    /* llama.cpp's extensions, for clients that send them */
    if (!get_int(c, root, "top_k", 0, INT_MAX, &given, &ll)) return false;
    if (given) s->top_k = (int32_t)ll;
    mark(r, given, SRV_P_TOP_K);
    if (!get_number(c, root, "min_p", 0, 1, &given, &d)) return false;
    if (given) s->min_p = (float)d;
    mark(r, given, SRV_P_MIN_P);
    if (!get_number(c, root, "repeat_penalty", 0, 10, &given, &d)) return false;
    if (given) s->repeat_penalty = (float)d;
    mark(r, given, SRV_P_REPEAT_PENALTY);
    /* llama.cpp's speculative.* (the server's proposer, per request; n_min
     * is accepted and has no effect here: it tunes speed, not output) */
    if (!get_int(c, root, "speculative.n_max", 0, SRV_MAX_SPEC, &given, &ll)) return false;
    c->r->spec_n_max = given ? (int)ll : -1;
    if (!get_int(c, root, "speculative.n_min", 0, SRV_MAX_SPEC, &given, &ll)) return false;
    if (!get_number(c, root, "speculative.p_min", 0, 1, &given, &d)) return false;
    c->r->spec_p_min = given ? d : NAN;
    return srv_parse_samplers(c->e, root, r);
}

/* response_format json_schema: {"name", "schema", "strict"}. The schema is
 * enforced by constrained decoding whatever `strict` says (Hearth supports
 * more than OpenAI's strict subset, and refuses with a 400 what it cannot
 * enforce); an absent schema allows any JSON value. */
static bool parse_json_schema(parse_ctx *c, const cJSON *v) {
    const cJSON *js = srv_req_field(v, "json_schema");
    if (!cJSON_IsObject(js))
        return srv_req_bad_type(c->e, "response_format.json_schema", "an object");
    const cJSON *nm = srv_req_field(js, "name"), *st = srv_req_field(js, "strict"),
                *sc = srv_req_field(js, "schema");
    if (nm && !cJSON_IsString(nm))
        return srv_req_bad_type(c->e, "response_format.json_schema.name", "a string");
    if (st && !cJSON_IsBool(st))
        return srv_req_bad_type(c->e, "response_format.json_schema.strict", "a boolean");
    if (sc && !cJSON_IsObject(sc) && !cJSON_IsBool(sc))
        return srv_req_bad_type(c->e, "response_format.json_schema.schema",
                                "a JSON Schema (an object or a boolean)");
    srv_request *r = c->r;
    r->json_schema = sc ? cJSON_PrintUnformatted(sc) : strdup("{}");
    r->response_format = cJSON_PrintUnformatted(v);
    if (!r->json_schema || !r->response_format)
        return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    if (hearth_json_schema_check(r->json_schema) != HEARTH_OK)
        return srv_fail(c->e, 400, "response_format.json_schema.schema", NULL, "%s",
                        hearth_last_error());
    r->sampling.constraint = HEARTH_CONSTRAINT_JSON_SCHEMA;
    r->sampling.json_schema = r->json_schema;
    return true;
}

/* response_format: "text", or "json_object" (JSON mode: the output is one
 * JSON object, by constrained decoding). A "json_schema" must be obeyed, not
 * just answered with some JSON, so it is refused until schemas are. */
static bool parse_response_format(parse_ctx *c, const cJSON *root) {
    const cJSON *v = srv_req_field(root, "response_format");
    if (!v) return true;
    const cJSON *t = cJSON_IsObject(v) ? srv_req_field(v, "type") : NULL;
    if (!t || !cJSON_IsString(t))
        return srv_req_bad_type(c->e, "response_format", "an object with a string 'type'");
    if (!strcmp(t->valuestring, "json_object")) {
        c->r->sampling.constraint = HEARTH_CONSTRAINT_JSON_OBJECT;
        return true;
    }
    if (!strcmp(t->valuestring, "json_schema")) return parse_json_schema(c, v);
    if (strcmp(t->valuestring, "text") != 0)
        return srv_fail(c->e, 400, "response_format.type", NULL,
                        "'response_format.type' must be text, json_object or json_schema");
    return true;
}

/* grammar: llama.cpp server's extension, a GBNF grammar the output must
 * follow (docs/grammar.md); "" means none, as there. Read after the rest of
 * the request, so that the conflicts with response_format and a forced tool
 * call (each a constraint of its own) are named here; a bad grammar is a 400
 * with the parser's line:column message, before anything is queued. */
static bool parse_grammar(parse_ctx *c, const cJSON *root) {
    const cJSON *v = srv_req_field(root, "grammar");
    if (!v) return true;
    if (!cJSON_IsString(v)) return srv_req_bad_type(c->e, "grammar", "a string (a GBNF grammar)");
    if (!v->valuestring[0]) return true;
    srv_request *r = c->r;
    if (r->sampling.constraint != HEARTH_CONSTRAINT_NONE)
        return srv_fail(c->e, 400, "grammar", NULL,
                        "'grammar' cannot be combined with 'response_format' %s (each constrains "
                        "the whole output)",
                        r->sampling.constraint == HEARTH_CONSTRAINT_JSON_SCHEMA ? "json_schema"
                                                                                : "json_object");
    if (r->kind == SRV_CHAT && srv_tools_forced(r))
        return srv_fail(c->e, 400, "grammar", NULL,
                        "'grammar' cannot be combined with 'tool_choice' required or a named "
                        "function (the reply is a call)");
    if (!srv_req_dup_string(c->e, v, "grammar", &r->grammar, NULL)) return false;
    if (hearth_grammar_check(r->grammar) != HEARTH_OK)
        return srv_fail(c->e, 400, "grammar", NULL, "%s", hearth_last_error());
    r->sampling.constraint = HEARTH_CONSTRAINT_GRAMMAR;
    r->sampling.grammar = r->grammar;
    return true;
}

/* logit_bias: OpenAI's object {"<token id>": bias, ...}, or llama.cpp's array
 * [[id, bias], ...]; a bias is a number in [-100, 100] or false (llama.cpp's
 * ban, the same as -100). At most SRV_MAX_LOGIT_BIAS entries. Whether the ids
 * are the model's is srv_request_check_model's (this file knows no model). */
static bool bias_value(parse_ctx *c, const cJSON *v, const char *name, float *out) {
    if (cJSON_IsFalse(v)) {
        *out = -INFINITY;
        return true;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return srv_req_bad_type(c->e, name, "a number between -100 and 100 (or false: a ban)");
    if (v->valuedouble < -100 || v->valuedouble > 100)
        return srv_fail(c->e, 400, name, NULL, "'%s' must be between -100 and 100 (got %g)", name,
                        v->valuedouble);
    *out = (float)v->valuedouble;
    return true;
}

/* A token id key: 1 to 10 decimal digits, at most INT32_MAX. */
static bool bias_key(const char *k, int32_t *out) {
    size_t n = 0;
    long long id = 0;
    for (; k[n]; n++) {
        if (k[n] < '0' || k[n] > '9' || n >= 10) return false;
        id = id * 10 + (k[n] - '0');
    }
    if (n == 0 || id > INT32_MAX) return false;
    *out = (int32_t)id;
    return true;
}

static bool bias_entry(parse_ctx *c, const cJSON *e, int i) {
    srv_request *r = c->r;
    char name[64];
    hearth_logit_bias *b = &r->logit_bias[i];
    if (r->logit_bias_array) {
        snprintf(name, sizeof name, "logit_bias[%d]", i);
        const cJSON *id = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 ? e->child : NULL;
        const double d = id ? id->valuedouble : -1;
        if (!id || !cJSON_IsNumber(id) || d != floor(d) || d < 0 || d > INT32_MAX)
            return srv_req_bad_type(c->e, name, "a pair [token id, bias]");
        b->id = (int32_t)d;
        return bias_value(c, id->next, name, &b->bias);
    }
    if (!bias_key(e->string, &b->id))
        return srv_fail(c->e, 400, "logit_bias", NULL,
                        "'logit_bias' keys must be token ids (decimal integers); got \"%.40s\"",
                        e->string);
    snprintf(name, sizeof name, "logit_bias.%s", e->string);
    return bias_value(c, e, name, &b->bias);
}

static bool parse_logit_bias(parse_ctx *c, const cJSON *root) {
    srv_request *r = c->r;
    const cJSON *v = srv_req_field(root, "logit_bias");
    if (!v) return true;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return srv_req_bad_type(c->e, "logit_bias",
                                "an object of token ids to biases (or an array of [id, bias])");
    const int n = cJSON_GetArraySize(v);
    if (n > SRV_MAX_LOGIT_BIAS)
        return srv_fail(c->e, 400, "logit_bias", NULL, "'logit_bias' may hold at most %d entries",
                        SRV_MAX_LOGIT_BIAS);
    if (n == 0) return true;
    r->logit_bias_array = cJSON_IsArray(v);
    r->logit_bias = calloc((size_t)n, sizeof *r->logit_bias);
    if (!r->logit_bias) return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++)
        if (!bias_entry(c, e, i)) return false;
    r->n_logit_bias = n;
    r->sampling.logit_bias = r->logit_bias;
    r->sampling.n_logit_bias = (size_t)n;
    return true;
}

void srv_request_default(srv_request *r, srv_param p, double v) {
    if (r->given & SRV_GIVEN(p)) return;
    hearth_sampling *s = &r->sampling;
    switch (p) {
    case SRV_P_TEMPERATURE:
        s->temperature = (float)v;
        r->given_temperature = v;
        break;
    case SRV_P_TOP_P:
        s->top_p = (float)v;
        r->given_top_p = v;
        break;
    case SRV_P_TOP_K: s->top_k = (int32_t)v; break;
    case SRV_P_MIN_P: s->min_p = (float)v; break;
    case SRV_P_REPEAT_PENALTY: s->repeat_penalty = (float)v; break;
    case SRV_P_REPEAT_LAST_N: s->penalty_last_n = (int32_t)v; break;
    case SRV_P_PRESENCE_PENALTY: s->presence_penalty = (float)v; break;
    case SRV_P_FREQUENCY_PENALTY: s->frequency_penalty = (float)v; break;
    case SRV_P_SEED: s->seed = (uint64_t)v; break;
    case SRV_P_MAX_TOKENS: r->max_tokens = (int)v; break;
    case SRV_P_STOP: /* not a number */
    case SRV_N_PARAMS:
    default: break; /* llama.cpp's other samplers: no dialect has defaults of its own */
    }
}

bool srv_request_check_model(const srv_request *r, const hearth_model *m, const char *model_id,
                             srv_error *e) {
    if (!hearth_model_generates(m))
        return srv_fail(e, 400, "model", "model_not_generative",
                        "'%s' is an embedding model (%s): it answers /v1/embeddings, not chats "
                        "or completions",
                        model_id, hearth_model_arch(m));
    const int n_vocab = hearth_model_n_vocab(m);
    for (int i = 0; i < r->n_logit_bias; i++) {
        const int32_t id = r->logit_bias[i].id;
        if (id < n_vocab) continue;
        char name[64];
        if (r->logit_bias_array)
            snprintf(name, sizeof name, "logit_bias[%d]", i);
        else
            snprintf(name, sizeof name, "logit_bias.%d", (int)id);
        return srv_fail(e, 400, name, NULL,
                        "%d is not a token id of this model (its vocabulary has %d)", (int)id,
                        n_vocab);
    }
    return true;
}

/* max_tokens (or max_completion_tokens) `name`: at least 1; a completion
 * also takes 0, vLLM's prompt scoring (the prompt is evaluated, nothing is
 * generated). A chat's 0 is refused as OpenAI and vLLM refuse it, saying
 * where scoring is answered. */
static bool parse_max_tokens(parse_ctx *c, const cJSON *root, const char *name) {
    const cJSON *v = srv_req_field(root, name);
    if (v && cJSON_IsNumber(v) && v->valuedouble == 0 && c->r->kind == SRV_CHAT)
        return srv_fail(c->e, 400, name, NULL,
                        "'%s' must be at least 1 (got 0): a chat reply generates; scoring a "
                        "prompt without generating is /v1/completions with max_tokens 0",
                        name);
    long long ll;
    bool given;
    if (!get_int(c, root, name, c->r->kind == SRV_COMPLETION ? 0 : 1, INT_MAX, &given, &ll))
        return false;
    if (given) c->r->max_tokens = (int)ll;
    return true;
}

static bool parse_common(parse_ctx *c, const cJSON *root) {
    srv_request *r = c->r;
    const cJSON *v;
    long long ll;
    bool given;
    if ((v = srv_req_field(root, "model")) &&
        !srv_req_dup_string(c->e, v, "model", &r->model, NULL))
        return false;
    r->max_tokens = -1;
    /* max_completion_tokens replaces max_tokens in the chat API; either works. */
    if (!parse_max_tokens(c, root, "max_tokens") ||
        !parse_max_tokens(c, root, "max_completion_tokens"))
        return false;
    if (r->max_tokens >= 0) r->given |= SRV_GIVEN(SRV_P_MAX_TOKENS);
    if (!get_int(c, root, "n", 1, SRV_MAX_N, &given, &ll)) return false;
    r->n = given ? (int)ll : 1;
    /* llama.cpp's: prompt tokens a context shift keeps (-1: all) */
    if (!get_int(c, root, "n_keep", -1, INT_MAX, &given, &ll)) return false;
    r->n_keep = given ? (int)ll : SRV_N_KEEP_UNSET;
    /* and what each shift forgets (0: half the rest) */
    if (!get_int(c, root, "n_discard", 0, INT_MAX, &given, &ll)) return false;
    r->n_discard = given ? (int)ll : 0;
    r->shift = -1;
    if (!get_bool(c, root, "stream", &r->stream)) return false;
    if ((v = srv_req_field(root, "stream_options"))) {
        if (!cJSON_IsObject(v)) return srv_req_bad_type(c->e, "stream_options", "an object");
        const cJSON *u = srv_req_field(v, "include_usage");
        if (u && !cJSON_IsBool(u))
            return srv_req_bad_type(c->e, "stream_options.include_usage", "a boolean");
        r->include_usage = u && cJSON_IsTrue(u);
    }
    if (!parse_stop(c, root) || !parse_sampling(c, root) || !parse_response_format(c, root) ||
        !parse_logit_bias(c, root))
        return false;
    if ((v = srv_req_field(root, "user")) && !cJSON_IsString(v))
        return srv_req_bad_type(c->e, "user", "a string");
    return true;
}

/* ---- chat ---------------------------------------------------------------- */

/* An image_url part: {"image_url": {"url": URL}} (or the URL alone, as
 * some clients send it) into the request's images. */
static bool parse_image_part(parse_ctx *c, const cJSON *p, const char *pname) {
    const cJSON *iu = srv_req_field(p, "image_url");
    const cJSON *url = cJSON_IsObject(iu) ? srv_req_field(iu, "url") : iu;
    char name[128];
    snprintf(name, sizeof name, "%s.image_url.url", pname);
    if (!url || !cJSON_IsString(url)) return srv_req_bad_type(c->e, name, "a string");
    return srv_image_add(c->r, url->valuestring, name, c->e);
}

/* content: a string, or an array of {"type":"text","text":...} parts that are
 * joined with "\n" (as llama.cpp joins them) and {"type":"image_url",...}
 * parts, each of which stands as HEARTH_MEDIA_MARKER in the text (with no
 * "\n" beside it, as llama-server). */
static bool parse_content(parse_ctx *c, const cJSON *v, const char *name, srv_message *m) {
    if (!v) {
        m->content = calloc(1, 1);
        if (!m->content) return srv_fail(c->e, 500, NULL, NULL, "out of memory");
        return true;
    }
    if (cJSON_IsString(v)) return srv_req_dup_string(c->e, v, name, &m->content, &m->content_len);
    if (!cJSON_IsArray(v))
        return srv_req_bad_type(c->e, name, "a string or an array of content parts");
    const size_t mlen = strlen(HEARTH_MEDIA_MARKER);
    size_t total = 0;
    int i = 0;
    char pname[96];
    for (const cJSON *p = v->child; p; p = p->next, i++) {
        snprintf(pname, sizeof pname, "%s[%d]", name, i);
        const cJSON *type = cJSON_IsObject(p) ? srv_req_field(p, "type") : NULL;
        const cJSON *text = cJSON_IsObject(p) ? srv_req_field(p, "text") : NULL;
        if (!type || !cJSON_IsString(type))
            return srv_req_bad_type(c->e, pname, "an object with a string 'type'");
        if (!strcmp(type->valuestring, "image_url")) {
            if (!parse_image_part(c, p, pname)) return false;
            total += mlen;
            continue;
        }
        if (strcmp(type->valuestring, "text") != 0)
            return srv_fail(c->e, 400, pname, NULL,
                            "content parts of type '%.32s' are not supported (only 'text' and "
                            "'image_url')",
                            type->valuestring);
        if (!text || !cJSON_IsString(text)) {
            snprintf(pname, sizeof pname, "%s[%d].text", name, i);
            return srv_req_bad_type(c->e, pname, "a string");
        }
        total += strlen(text->valuestring) + 1;
    }
    char *s = malloc(total + 1);
    if (!s) return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    size_t n = 0;
    bool after_text = false;
    for (const cJSON *p = v->child; p; p = p->next) {
        const cJSON *text = srv_req_field(p, "text");
        const bool image = !strcmp(srv_req_field(p, "type")->valuestring, "image_url");
        const char *t = image ? HEARTH_MEDIA_MARKER : text->valuestring;
        if (after_text && !image) s[n++] = '\n';
        memcpy(s + n, t, strlen(t));
        n += strlen(t);
        after_text = !image;
    }
    s[n] = '\0';
    m->content = s;
    m->content_len = n;
    size_t bad;
    if (!hr_utf8_valid(s, n, &bad))
        return srv_fail(c->e, 400, name, NULL, "'%s' is not valid UTF-8 (byte %zu)", name, bad);
    return true;
}

static bool parse_message(parse_ctx *c, const cJSON *v, int i, srv_message *m) {
    char name[64];
    snprintf(name, sizeof name, "messages[%d]", i);
    if (!cJSON_IsObject(v)) return srv_req_bad_type(c->e, name, "an object");
    const cJSON *role = srv_req_field(v, "role");
    snprintf(name, sizeof name, "messages[%d].role", i);
    if (!role || !cJSON_IsString(role)) return srv_req_bad_type(c->e, name, "a string");
    const char *rs = role->valuestring;
    if (!strcmp(rs, "system") || !strcmp(rs, "developer"))
        m->role = TOK_CHAT_SYSTEM;
    else if (!strcmp(rs, "user"))
        m->role = TOK_CHAT_USER;
    else if (!strcmp(rs, "assistant"))
        m->role = TOK_CHAT_ASSISTANT;
    else if (!strcmp(rs, "tool"))
        m->role = TOK_CHAT_TOOL;
    else if (!strcmp(rs, "function"))
        return srv_fail(c->e, 400, name, NULL,
                        "role 'function' (deprecated by OpenAI) is not supported: use 'tool'");
    else
        return srv_fail(c->e, 400, name, NULL,
                        "'%s' must be one of system, developer, user, assistant, tool", name);
    const cJSON *content = srv_req_field(v, "content");
    snprintf(name, sizeof name, "messages[%d].content", i);
    if (!content && m->role != TOK_CHAT_ASSISTANT)
        return srv_fail(c->e, 400, name, NULL, "'%s' is required", name);
    if (!parse_content(c, content, name, m)) return false;
    return srv_tools_parse_message(v, i, m, c->e) && srv_thinking_parse(v, i, m, c->e);
}

/* A reasoning model's thinking: llama-server's reasoning_format ("none":
 * the <think> block stays in the content; "deepseek": it goes to
 * reasoning_content; "auto": the model's template decides),
 * chat_template_kwargs.enable_thinking, and reasoning_effort "none" (thinking
 * off; OpenAI's other efforts change nothing on a local model). Other
 * template arguments are the template's own (Jinja), which Hearth does not
 * run: they are ignored, as a template that does not read them would. */
static bool parse_reasoning(parse_ctx *c, const cJSON *root) {
    srv_request *r = c->r;
    const cJSON *v = srv_req_field(root, "reasoning_format");
    if (v &&
        !(cJSON_IsString(v) && srv_reasoning_format_parse(v->valuestring, &r->reasoning_format)))
        return srv_fail(c->e, 400, "reasoning_format", NULL,
                        "'reasoning_format' must be \"none\", \"deepseek\" or \"auto\"");
    if ((v = srv_req_field(root, "reasoning_effort"))) {
        if (!cJSON_IsString(v)) return srv_req_bad_type(c->e, "reasoning_effort", "a string");
        if (!strcmp(v->valuestring, "none")) r->think = 0;
        if (strlen(v->valuestring) < sizeof r->reasoning_effort)
            snprintf(r->reasoning_effort, sizeof r->reasoning_effort, "%s", v->valuestring);
    }
    /* llama-server's per-request budget, under either of its names */
    long long budget = -1;
    bool given = false;
    if (!get_int(c, root, "thinking_budget_tokens", 0, INT_MAX, &given, &budget) ||
        (!given && !get_int(c, root, "reasoning_budget_tokens", 0, INT_MAX, &given, &budget)))
        return false;
    r->reasoning_budget = given ? (int)budget : -1;
    if ((v = srv_req_field(root, "chat_template_kwargs"))) {
        if (!cJSON_IsObject(v)) return srv_req_bad_type(c->e, "chat_template_kwargs", "an object");
        const cJSON *t = srv_req_field(v, "enable_thinking");
        if (t && !cJSON_IsBool(t))
            return srv_req_bad_type(c->e, "chat_template_kwargs.enable_thinking", "a boolean");
        if (t) r->think = cJSON_IsTrue(t);
    }
    return true;
}

static bool parse_chat(parse_ctx *c, const cJSON *root) {
    srv_request *r = c->r;
    const cJSON *v = srv_req_field(root, "messages");
    if (!v) return srv_fail(c->e, 400, "messages", NULL, "'messages' is required");
    if (!cJSON_IsArray(v)) return srv_req_bad_type(c->e, "messages", "an array");
    const int n = cJSON_GetArraySize(v);
    if (n == 0) return srv_fail(c->e, 400, "messages", NULL, "'messages' must not be empty");
    r->messages = calloc((size_t)n, sizeof *r->messages);
    if (!r->messages) return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    int i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        r->n_messages = i + 1; /* so srv_request_free sees what was filled */
        if (!parse_message(c, m, i, &r->messages[i])) return false;
    }
    if (!get_bool(c, root, "logprobs", &r->logprobs)) return false;
    long long ll = 0;
    bool given;
    if (!get_int(c, root, "top_logprobs", 0, SRV_MAX_LOGPROBS, &given, &ll)) return false;
    if (given && !r->logprobs && ll > 0)
        return srv_fail(c->e, 400, "top_logprobs", NULL,
                        "'top_logprobs' needs 'logprobs' to be true");
    r->top_logprobs = (int)ll;
    /* "rag" is checked by srv_rag_augment, which needs the index; null is
     * kept so that it is refused there as before */
    const cJSON *rag = cJSON_GetObjectItemCaseSensitive(root, "rag");
    if (rag && !cJSON_IsFalse(rag) && !(r->rag = cJSON_Duplicate(rag, true)))
        return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    return parse_reasoning(c, root) && srv_tools_parse_request(root, r, c->e);
}

/* ---- completions ------------------------------------------------------------ */

/* The token ids of array v (the prompt `name`; element j is name[j]) into
 * *ids (malloc'd; set even on failure, for the caller to free) and *n. */
static bool parse_prompt_ids(parse_ctx *c, const cJSON *v, const char *name, int32_t **ids,
                             int *n_ids) {
    const int n = cJSON_GetArraySize(v);
    if (!(*ids = malloc((size_t)(n ? n : 1) * sizeof **ids)))
        return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    int i = 0;
    for (const cJSON *t = v->child; t; t = t->next, i++) {
        const double d = t->valuedouble;
        if (!cJSON_IsNumber(t) || d != floor(d) || d < 0 || d > INT32_MAX) {
            char tname[48];
            snprintf(tname, sizeof tname, "%s[%d]", name, i);
            return srv_req_bad_type(c->e, tname, "a token id (a non-negative integer)");
        }
        (*ids)[i] = (int32_t)d;
    }
    *n_ids = n;
    return true;
}

/* Prompt i of a list: a string when `text`, else an array of token ids (as
 * in OpenAI's and vLLM's APIs, a list holds one kind), into the request's
 * prompt 0 or more_prompts[i - 1]; of several, none may be empty (one alone
 * is checked as a bare prompt is). */
static bool parse_listed_prompt(parse_ctx *c, const cJSON *v, int i, bool text, bool several) {
    srv_request *r = c->r;
    char name[32];
    snprintf(name, sizeof name, "prompt[%d]", i);
    char **out = i ? &r->more_prompts[i - 1].text : &r->prompt;
    size_t *len = i ? &r->more_prompts[i - 1].text_len : &r->prompt_len;
    int32_t **ids = i ? &r->more_prompts[i - 1].ids : &r->prompt_ids;
    int *n_ids = i ? &r->more_prompts[i - 1].n_ids : &r->n_prompt_ids;
    if (text && !cJSON_IsString(v))
        return srv_req_bad_type(c->e, name,
                                "a string (prompt[0] is: a list holds strings or "
                                "token-id arrays, not both)");
    if (!text && !cJSON_IsArray(v))
        return srv_req_bad_type(c->e, name,
                                "an array of token ids (prompt[0] is: a list holds "
                                "strings or token-id arrays, not both)");
    if (text ? !srv_req_dup_string(c->e, v, name, out, len)
             : !parse_prompt_ids(c, v, name, ids, n_ids))
        return false;
    if (several && (text ? *len == 0 : *n_ids == 0))
        return srv_fail(c->e, 400, name, NULL, "'%s' must not be empty", name);
    return true;
}

/* An array of prompts (strings or token-id arrays): ["text"] and [[ids]]
 * are one prompt, more are a batch (lm-evaluation-harness sends them),
 * each answered as if it came alone. */
static bool parse_prompt_list(parse_ctx *c, const cJSON *v) {
    srv_request *r = c->r;
    const int k = cJSON_GetArraySize(v);
    if (k > SRV_MAX_PROMPTS)
        return srv_fail(c->e, 400, "prompt", NULL,
                        "'prompt' holds %d prompts; at most %d are answered in one request", k,
                        SRV_MAX_PROMPTS);
    if (k > 1 && !(r->more_prompts = calloc((size_t)k - 1, sizeof *r->more_prompts)))
        return srv_fail(c->e, 500, NULL, NULL, "out of memory");
    const bool text = cJSON_IsString(v->child);
    int i = 0;
    for (const cJSON *p = v->child; p; p = p->next, i++) {
        r->n_prompts = i + 1; /* so srv_request_free sees what was filled */
        if (!parse_listed_prompt(c, p, i, text, k > 1)) return false;
    }
    return true;
}

static bool parse_completion(parse_ctx *c, const cJSON *root) {
    srv_request *r = c->r;
    const cJSON *v = srv_req_field(root, "prompt");
    if (!v) return srv_fail(c->e, 400, "prompt", NULL, "'prompt' is required");
    const cJSON *sfx = srv_req_field(root, "suffix");
    const bool fim = cJSON_IsString(sfx) && sfx->valuestring[0];
    if (cJSON_IsArray(v) && v->child && (cJSON_IsString(v->child) || cJSON_IsArray(v->child))) {
        if (!parse_prompt_list(c, v)) return false;
    } else if (cJSON_IsString(v)) {
        if (!srv_req_dup_string(c->e, v, "prompt", &r->prompt, &r->prompt_len)) return false;
    } else if (cJSON_IsArray(v) && (!v->child || cJSON_IsNumber(v->child))) {
        if (!parse_prompt_ids(c, v, "prompt", &r->prompt_ids, &r->n_prompt_ids)) return false;
    } else {
        return srv_req_bad_type(c->e, "prompt",
                                "a string, an array of token ids, or an array of strings or of "
                                "token-id arrays (several prompts)");
    }
    if (r->n_prompts > 1 && fim)
        return srv_fail(c->e, 400, "suffix", NULL,
                        "'suffix' fills in the middle of one prompt; send one prompt per request");
    if (r->n_prompts < 1) r->n_prompts = 1;
    if ((r->prompt && r->prompt_len == 0 && !fim) || (!r->prompt && r->n_prompt_ids == 0))
        return srv_fail(c->e, 400, "prompt", NULL, "'prompt' must not be empty");
    long long ll = 0;
    bool given;
    /* The completions API's logprobs is the number of alternatives (0..5 in
     * OpenAI's; up to 20 here). */
    if (!get_int(c, root, "logprobs", 0, SRV_MAX_LOGPROBS, &given, &ll)) return false;
    r->logprobs = given;
    r->top_logprobs = (int)ll;
    if (!get_bool(c, root, "echo", &r->echo)) return false;
    if (!get_int(c, root, "best_of", 1, 128, &given, &ll)) return false;
    if (given && ll != 1) return srv_fail(c->e, 400, "best_of", NULL, "'best_of' must be 1");
    /* suffix: fill in the middle (a text prompt is then the code before the
     * cursor); "" is OpenAI's "none" */
    if (sfx && !cJSON_IsString(sfx)) return srv_req_bad_type(c->e, "suffix", "a string");
    if (fim) {
        if (!r->prompt) return srv_fail(c->e, 400, "suffix", NULL, "'suffix' needs a text prompt");
        if (r->echo)
            return srv_fail(c->e, 400, "suffix", NULL, "'suffix' cannot be combined with 'echo'");
        if (!srv_req_dup_string(c->e, sfx, "suffix", &r->suffix, &r->suffix_len)) return false;
    }
    return true;
}

bool srv_parse_request(srv_kind kind, const char *body, size_t len, srv_request *out,
                       srv_error *e) {
    size_t bad;
    if (!hr_utf8_valid(body, len, &bad))
        return srv_fail(e, 400, NULL, "invalid_utf8",
                        "the request body is not valid UTF-8 (ill-formed byte at offset %zu)", bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        const size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return srv_fail(e, 400, NULL, "invalid_json",
                        "the request body is not valid JSON (near byte %zu)", at);
    }
    /* Nothing but white space may follow the value. */
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return srv_fail(e, 400, NULL, "invalid_json",
                            "the request body has data after the JSON value (byte %zu)",
                            (size_t)(p - body));
        }
    }
    srv_request r = {.kind = kind, .parallel_tool_calls = -1, .think = -1, .reasoning_budget = -1};
    parse_ctx c = {.e = e, .r = &r};
    bool ok;
    if (!cJSON_IsObject(root))
        ok = srv_fail(e, 400, NULL, "invalid_json", "the request body must be a JSON object");
    else
        ok = parse_common(&c, root) &&
             (kind == SRV_CHAT ? parse_chat(&c, root) : parse_completion(&c, root)) &&
             parse_grammar(&c, root);
    cJSON_Delete(root);
    if (!ok) {
        srv_request_free(&r);
        return false;
    }
    *out = r;
    return true;
}

const char *srv_request_echo(const srv_request *r, size_t *len) {
    *len = !r->echo ? 0 : r->prompt ? r->prompt_len : r->echo_len;
    return !r->echo ? NULL : r->prompt ? r->prompt : r->echo_text;
}

const char *srv_request_echo_i(const srv_request *r, int i, size_t *len) {
    if (i <= 0 || i >= srv_n_prompts(r)) return srv_request_echo(r, len); /* one prompt */
    const srv_prompt *p = &r->more_prompts[i - 1];
    *len = !r->echo ? 0 : p->text ? p->text_len : p->echo_len;
    return !r->echo ? NULL : p->text ? p->text : p->echo;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->model);
    for (int i = 0; i < r->n_messages; i++) {
        free(r->messages[i].content);
        srv_tools_message_free(&r->messages[i]);
        srv_thinking_message_free(&r->messages[i]);
    }
    srv_tools_request_free(r);
    free(r->messages);
    srv_images_free(r);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->echo_text);
    for (int i = 0; r->more_prompts && i < r->n_prompts - 1; i++) {
        free(r->more_prompts[i].text);
        free(r->more_prompts[i].ids);
        free(r->more_prompts[i].echo);
    }
    free(r->more_prompts);
    free(r->json_schema);
    free(r->grammar);
    free(r->suffix);
    free(r->response_format);
    free(r->logit_bias);
    free(r->dry_breakers);
    cJSON_Delete(r->rag);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    *r = (srv_request){0};
}
