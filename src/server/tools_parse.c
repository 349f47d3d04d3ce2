/*
 * tools_parse.c - a model's reply as OpenAI's tool calls (the formats are
 * in tools.h): where the call blocks are, and the content around them;
 * what a block holds is read by tools_syntax.c. Pure functions of the text
 * and the request, so the whole
 * reply (api_gen.c) and a stream (sse.c, again on the text so far) agree:
 * a call found before the reply ends is found, at the same place, in the
 * whole reply.
 *
 * Decisions: a call must name a declared function and carry an object
 * (arguments or parameters; a string holding an object's JSON is accepted,
 * as some models write it); anything else stays content, so nothing the
 * model wrote is lost and "arguments" is always valid JSON (it is printed
 * here from the parsed object). A reply that merely starts with "{" is only
 * taken as calls when it is nothing but call objects. At most
 * SRV_MAX_TOOL_CALLS calls are taken from a reply; a well-formed block past
 * them stays content, as a block that is no call does.
 *
 * A remote tier's calls are not parsed here: they come as data on the
 * gateway's bridge job (srv_tools_job_call, srv_tools_remote), with the
 * tier's ids.
 *
 * Gemma 4 writes <|tool_call>call:NAME{key:<|"|>text<|"|>,n:1}<tool_call|>:
 * such a block is read into the same calls (its values typed by their own
 * syntax), whichever template rendered the prompt. LFM2 writes a Python
 * list of calls with keyword arguments, <|tool_call_start|>[f(a="x", n=1),
 * g()]<|tool_call_end|>: every call of the list is taken, or (one that is
 * no call of a declared function) none, and the block stays content.
 *
 * Mistral's models write [TOOL_CALLS] and then the calls, to the end of the
 * reply: a JSON array of {"name", "arguments"} (v3) or, Ministral 3's,
 * NAME[ARGS]{...} with [TOOL_CALLS] again before each further call; the
 * calls are taken all or none, as LFM2's.
 *
 * A stream (srv_tools_stream_*) keeps a cursor instead of parsing the text
 * so far again on every piece: where the search for an opening tag goes on
 * (backed off by the tag's length - 1, as a tag may be cut at the end) and
 * how many calls were taken, so each byte is scanned about once and each
 * block parsed once, when its closing tag arrives.
 */
#include "tools_syntax.h"

#include <cjson/cJSON.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the call blocks: <tool_call>...</tool_call> (Hermes, Qwen3.5, the generic
 * rendering), Gemma 4's <|tool_call>...<tool_call|>, LFM2's
 * <|tool_call_start|>[...]<|tool_call_end|> and Mistral's [TOOL_CALLS]...,
 * which has no closing tag (close_len 0): its block ends with the reply */
#define TAG_PAIR(open, close)                                                                      \
    { (open), (close), sizeof(open) - 1, sizeof(close) - 1 }
static const struct {
    const char *open, *close;
    size_t open_len, close_len;
} tags[] = {TAG_PAIR("<tool_call>", "</tool_call>"), TAG_PAIR("<|tool_call>", "<tool_call|>"),
            TAG_PAIR("<|tool_call_start|>", "<|tool_call_end|>"), TAG_PAIR(TP_MISTRAL_TAG, "")};
#undef TAG_PAIR
enum { N_TAGS = sizeof tags / sizeof *tags, TAG_LFM2 = 2, TAG_MISTRAL = 3 };
static const char python_tag[] = "<|python_tag|>";
enum { OPEN_MAX = sizeof "<|tool_call_start|>" - 1 /* the longest opening tag */ };

void srv_tool_call_id(char *out, size_t cap) {
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull);
    /* splitmix64 twice: ids that do not look sequential */
    uint64_t h[2];
    for (int k = 0; k < 2; k++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        h[k] = z ^ (z >> 31);
    }
    snprintf(out, cap, "call_%016llx%08llx", (unsigned long long)h[0],
             (unsigned long long)(h[1] & 0xffffffffu));
}

srv_tool_set srv_tool_set_of(const srv_request *r) {
    return (srv_tool_set){.names = r->tool_names,
                          .n_names = r->n_tools,
                          .parallel = r->parallel_tool_calls != 0,
                          .tools = r->tools};
}

bool srv_tool_set_copy(const srv_request *r, srv_tool_set *out) {
    *out = (srv_tool_set){.parallel = r->parallel_tool_calls != 0};
    if (!(out->names = calloc((size_t)r->n_tools + 1, sizeof *out->names)) ||
        (r->tools && !(out->tools = strdup(r->tools)))) {
        srv_tool_set_free(out);
        return false;
    }
    for (; out->n_names < r->n_tools; out->n_names++) {
        if (!(out->names[out->n_names] = strdup(r->tool_names[out->n_names]))) {
            srv_tool_set_free(out);
            return false;
        }
    }
    return true;
}

void srv_tool_set_free(srv_tool_set *t) {
    for (int k = 0; t->names && k < t->n_names; k++) free(t->names[k]);
    free(t->names);
    free(t->tools);
    *t = (srv_tool_set){0};
}

typedef struct acc {
    srv_tool_reply *out;
    int cap;
    int taken;     /* calls taken before out's (a stream's earlier pieces) */
    char *content; /* NULL: content is not collected */
    size_t n_content;
    bool oom;
} acc;

static void add_content(acc *a, const char *p, size_t n) {
    if (!n || a->oom || !a->content) return;
    memcpy(a->content + a->n_content, p, n); /* content holds the whole text at most */
    a->n_content += n;
}

/* Takes the call c (or frees it). False when it does not count as a call:
 * SRV_MAX_TOOL_CALLS were taken already, so its text stays content. */
static bool add_call(acc *a, const srv_tool_set *r, srv_call_out *c) {
    const int taken = a->taken + a->out->n_calls;
    if ((!r->parallel && taken >= 1) || taken >= SRV_MAX_TOOL_CALLS) {
        free(c->name);
        free(c->arguments);
        /* parallel_tool_calls false: only the first call, the others dropped */
        return !r->parallel;
    }
    if (a->out->n_calls == a->cap) {
        const int cap = a->cap ? 2 * a->cap : 4;
        srv_call_out *nc = realloc(a->out->calls, (size_t)cap * sizeof *nc);
        if (!nc) {
            free(c->name);
            free(c->arguments);
            a->oom = true;
            return true;
        }
        a->out->calls = nc;
        a->cap = cap;
    }
    srv_tool_call_id(c->id, sizeof c->id);
    a->out->calls[a->out->n_calls++] = *c;
    return true;
}

/* The reply is nothing but call objects (after <|python_tag|>), separated
 * by white space or ';', or one JSON array of them. */
static bool bare_calls(const srv_tool_set *r, const char *text, size_t len, acc *a) {
    size_t i = 0;
    tp_skip_ws(text, len, &i);
    if (tp_has_prefix(text, len, i, python_tag, sizeof python_tag - 1)) i += sizeof python_tag - 1;
    srv_call_out found[SRV_MAX_TOOL_CALLS];
    const int n = tp_json_calls(r, text + i, len - i, found);
    for (int k = 0; k < n; k++) add_call(a, r, &found[k]);
    return n > 0;
}

/* Takes the n calls of one list (LFM2's, Mistral's; n < 0: none) all or
 * none: none when they would pass the cap. */
static bool take_list(acc *a, const srv_tool_set *r, srv_call_out *found, int n) {
    const bool fits = a->taken + a->out->n_calls + n <= SRV_MAX_TOOL_CALLS || !r->parallel;
    if (!fits) {
        tp_free_calls(found, n);
        return false;
    }
    for (int k = 0; k < n; k++) (void)add_call(a, r, &found[k]); /* or dropped: parallel false */
    return n > 0;
}

/* The block text[body..body_end) (between the tags of pair `kind`) as
 * calls taken into a; false when it stays content: no call (or more than
 * the object in the block), or past the cap. LFM2's block is a list of
 * calls, Mistral's a JSON array or Ministral 3's calls, or either (a forced
 * call) the JSON object. */
static bool take_block(acc *a, const srv_tool_set *r, int kind, const char *text, size_t body,
                       size_t body_end) {
    size_t at = body;
    while (at < body_end && tp_is_ws(text[at])) at++;
    const char first = at < body_end ? text[at] : '\0';
    srv_call_out found[SRV_MAX_TOOL_CALLS];
    if (kind == TAG_LFM2 && first == '[')
        return take_list(a, r, found,
                         tp_py_calls(r, text + body, body_end - body, found, SRV_MAX_TOOL_CALLS));
    if (kind == TAG_MISTRAL)
        return take_list(a, r, found,
                         first == '[' || first == '{'
                             ? tp_json_calls(r, text + body, body_end - body, found)
                             : tp_args_calls(r, text + body, body_end - body, found));
    size_t used = 0;
    srv_call_out c = {0};
    if (!tp_read_call(r, text + body, body_end - body, &used, &c)) return false;
    for (size_t k = body + used; k < body_end; k++) {
        if (!tp_is_ws(text[k])) { /* the block holds the object and nothing else */
            free(c.name);
            free(c.arguments);
            return false;
        }
    }
    return add_call(a, r, &c);
}

/* The first opening tag of either pair in s[0..n), *kind its pair; NULL
 * when there is none. */
static const char *find_open(const char *s, size_t n, int *kind) {
    const char *first = NULL;
    for (int k = 0; k < N_TAGS; k++) {
        const char *o = tp_find(s, n, tags[k].open, tags[k].open_len);
        if (o && (!first || o < first)) {
            first = o;
            *kind = k;
        }
    }
    return first;
}

bool srv_tools_parse_set(const srv_tool_set *r, const char *text, size_t len, bool final,
                         srv_tool_reply *out) {
    *out = (srv_tool_reply){0};
    acc a = {.out = out};
    /* content only for a final parse: a stream sends none once a call started */
    if (final && !(a.content = malloc(len + 1))) return false;
    int kind = 0;
    if (!find_open(text, len, &kind) && final && bare_calls(r, text, len, &a)) {
        /* the whole reply was calls: no content */
    } else {
        size_t i = 0;
        for (const char *o; (o = find_open(text + i, len - i, &kind)) != NULL;) {
            const size_t at = (size_t)(o - text), body = at + tags[kind].open_len;
            const char *cl = tags[kind].close_len ? tp_find(text + body, len - body,
                                                            tags[kind].close, tags[kind].close_len)
                                                  : NULL; /* Mistral's: to the end */
            if (!cl && !final) {
                i = len; /* an open call: undecided until the reply ends */
                break;
            }
            const size_t body_end = cl ? (size_t)(cl - text) : len;
            const size_t next = cl ? body_end + tags[kind].close_len : len;
            add_content(&a, text + i, at - i);
            if (!take_block(&a, r, kind, text, body, body_end))
                add_content(&a, text + at, next - at); /* not a call: the model's text stays */
            i = next;
        }
        add_content(&a, text + i, len - i);
    }
    if (a.oom) {
        free(a.content);
        srv_tool_reply_free(out);
        return false;
    }
    if (!final || out->n_calls == 0) {
        free(a.content);
        if (final) { /* no calls: the text as it is */
            if (!(out->content = malloc(len + 1))) return false;
            memcpy(out->content, text, len);
            out->content[len] = '\0';
            out->content_len = len;
        }
        return true;
    }
    while (a.n_content && tp_is_ws(a.content[a.n_content - 1])) a.n_content--;
    a.content[a.n_content] = '\0';
    if (a.n_content) {
        out->content = a.content;
        out->content_len = a.n_content;
    } else {
        free(a.content);
    }
    return true;
}

bool srv_tools_parse(const srv_request *r, const char *text, size_t len, bool final,
                     srv_tool_reply *out) {
    const srv_tool_set t = srv_tool_set_of(r);
    return srv_tools_parse_set(&t, text, len, final, out);
}

void srv_tool_reply_free(srv_tool_reply *t) {
    for (int k = 0; k < t->n_calls; k++) {
        free(t->calls[k].name);
        free(t->calls[k].arguments);
    }
    free(t->calls);
    free(t->content);
    *t = (srv_tool_reply){0};
}

cJSON *srv_tool_calls_json(const srv_tool_reply *t) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < t->n_calls; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", t->calls[k].id);
        cJSON_AddStringToObject(c, "type", "function");
        cJSON *f = cJSON_AddObjectToObject(c, "function");
        cJSON_AddStringToObject(f, "name", t->calls[k].name);
        cJSON_AddStringToObject(f, "arguments", t->calls[k].arguments);
        cJSON_AddItemToArray(a, c);
    }
    return a;
}

/* A copy of c into out (the id too); false when out of memory. */
static bool copy_call(const srv_call_out *c, srv_call_out *out) {
    *out = *c;
    out->name = strdup(c->name);
    out->arguments = strdup(c->arguments);
    if (out->name && out->arguments) return true;
    free(out->name);
    free(out->arguments);
    return false;
}

bool srv_tools_remote(const srv_tool_set *t, const srv_job *j, bool content, srv_tool_reply *out) {
    *out = (srv_tool_reply){0};
    const srv_tool_reply *rc = j->remote_calls;
    const int n = !rc ? 0 : t->parallel || rc->n_calls < 1 ? rc->n_calls : 1;
    if (n && !(out->calls = calloc((size_t)n, sizeof *out->calls))) return false;
    for (; out->n_calls < n; out->n_calls++) {
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): n > 0 only with rc
        if (!copy_call(&rc->calls[out->n_calls], &out->calls[out->n_calls])) {
            srv_tool_reply_free(out);
            return false;
        }
    }
    if (content && (j->text_len || !n)) {
        if (!(out->content = malloc(j->text_len + 1))) {
            srv_tool_reply_free(out);
            return false;
        }
        if (j->text_len) memcpy(out->content, j->text, j->text_len);
        out->content[j->text_len] = '\0';
        out->content_len = j->text_len;
    }
    return true;
}

bool srv_tools_job_call(srv_job *j, const char *id, const char *name, const char *arguments) {
    srv_call_out c = {.name = strdup(name), .arguments = strdup(arguments)};
    if (id && id[0] && strlen(id) < sizeof c.id)
        memcpy(c.id, id, strlen(id) + 1);
    else /* none, or too long to keep whole: the server's own */
        srv_tool_call_id(c.id, sizeof c.id);
    pthread_mutex_lock(&j->mu);
    srv_tool_reply *rc = j->remote_calls;
    srv_call_out *nc = rc && c.name && c.arguments
                           ? realloc(rc->calls, (size_t)(rc->n_calls + 1) * sizeof *nc)
                           : NULL;
    if (nc) {
        rc->calls = nc;
        nc[rc->n_calls++] = c;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (!nc) {
        free(c.name);
        free(c.arguments);
    }
    return nc != NULL;
}

/* Where a search for a tag of length m goes on once text[0..len) was
 * searched: a tag may start in the last m - 1 bytes and end in bytes to
 * come. Never before `from`. */
static size_t resume_at(size_t from, size_t len, size_t m) {
    return len >= m - 1 && len - (m - 1) > from ? len - (m - 1) : from;
}

size_t srv_tools_stream_content(srv_tools_stream *s, const char *text, size_t len, size_t sent) {
    size_t end = len;
    int kind = 0;
    const char *o = find_open(text + s->scan, len - s->scan, &kind);
    while (s->lead < len && tp_is_ws(text[s->lead])) s->lead++;
    const size_t i = s->lead, rest = len - i;
    const size_t pt = sizeof python_tag - 1;
    if (o) {
        s->call_started = s->in_call = true;
        s->kind = kind;
        s->body = s->close_scan = (size_t)(o - text) + tags[kind].open_len;
        end = (size_t)(o - text);
    } else {
        s->scan = resume_at(s->scan, len, OPEN_MAX);
        /* a reply that starts as bare calls may be nothing but calls: held until it
           is complete; the start is sure once a '{', "[{" or a whole tag is there */
        const bool obj = rest && text[i] == '{',
                   arr = rest && text[i] == '[' && (rest == 1 || text[i + 1] == '{'),
                   py = rest && !memcmp(text + i, python_tag, rest < pt ? rest : pt);
        if (obj || arr || py) {
            s->call_started = obj || (arr && rest > 1) || (py && rest >= pt);
            return 0;
        }
        /* a possible opening tag (of either pair) cut at the end */
        for (int t = 0; t < N_TAGS; t++) {
            for (size_t k = tags[t].open_len - 1; k >= 1; k--) {
                if (k <= len && !memcmp(text + len - k, tags[t].open, k)) {
                    if (len - k < end) end = len - k;
                    break;
                }
            }
        }
    }
    while (end > sent && tp_is_ws(text[end - 1])) end--;
    return end;
}

bool srv_tools_stream_calls(srv_tools_stream *s, const srv_tool_set *r, const char *text,
                            size_t len, srv_tool_reply *out) {
    *out = (srv_tool_reply){0};
    acc a = {.out = out, .taken = s->n_taken};
    for (;;) {
        if (!s->in_call) {
            int kind = 0;
            const char *o = find_open(text + s->scan, len - s->scan, &kind);
            if (!o) {
                s->scan = resume_at(s->scan, len, OPEN_MAX);
                break;
            }
            s->in_call = true;
            s->kind = kind;
            s->body = s->close_scan = (size_t)(o - text) + tags[kind].open_len;
        }
        const size_t close_len = tags[s->kind].close_len;
        if (!close_len) break; /* Mistral's block: decided when the reply ends */
        const char *cl =
            tp_find(text + s->close_scan, len - s->close_scan, tags[s->kind].close, close_len);
        if (!cl) { /* an open call: undecided until its closing tag comes */
            s->close_scan = resume_at(s->close_scan, len, close_len);
            break;
        }
        const size_t body_end = (size_t)(cl - text);
        /* no call: content, sent at the end */
        (void)take_block(&a, r, s->kind, text, s->body, body_end);
        s->in_call = false;
        s->scan = body_end + close_len;
    }
    if (a.oom) {
        srv_tool_reply_free(out);
        return false;
    }
    s->n_taken += out->n_calls;
    return true;
}

size_t srv_tools_stream_safe(const char *text, size_t len, bool *call_started) {
    srv_tools_stream s = {0};
    const size_t safe = srv_tools_stream_content(&s, text, len, 0);
    *call_started = s.call_started;
    return safe;
}
