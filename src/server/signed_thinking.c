/*
 * signed_thinking.c - Anthropic's signed thinking blocks on the OpenAI chat
 * API, as LiteLLM carries them (docs/gateway.md, "Reasoning"): an answer
 * from an Anthropic tier has message.thinking_blocks (streamed:
 * delta.thinking_blocks, one block per chunk once it is complete) beside
 * reasoning_content, and a client in a tool loop sends them back on the
 * assistant message, where the gateway replays them to an Anthropic tier
 * first in that turn. The blocks are the tier's, as it sent them
 * (gw_thinking_block): the text keeps its placeholders and the signature
 * (a redacted block's data) is never touched, so the tier can verify them.
 */
#include "request_impl.h"
#include "server.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

bool srv_thinking_parse(const cJSON *msg, int i, srv_message *m, srv_error *e) {
    const cJSON *v = srv_req_field(msg, "thinking_blocks");
    char name[96];
    snprintf(name, sizeof name, "messages[%d].thinking_blocks", i);
    if (!v) return true;
    if (m->role != TOK_CHAT_ASSISTANT)
        return srv_fail(e, 400, name, NULL, "'%s' is allowed on assistant messages only", name);
    if (!cJSON_IsArray(v)) return srv_req_bad_type(e, name, "an array of thinking blocks");
    const int n = cJSON_GetArraySize(v);
    if (n > GW_THINKING_MAX)
        return srv_fail(e, 400, name, NULL, "'%s' may hold at most %d blocks", name,
                        GW_THINKING_MAX);
    if (n && !(m->thinking = calloc((size_t)n, sizeof *m->thinking)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    int k = 0;
    for (const cJSON *b = v->child; b; b = b->next, k++) {
        char why[96];
        if (!gw_thinking_parse(b, &m->thinking[k], why, sizeof why)) {
            snprintf(name, sizeof name, "messages[%d].thinking_blocks[%d]", i, k);
            return srv_fail(e, 400, name, NULL, "'%s' %s", name, why);
        }
        m->n_thinking = k + 1; /* so that the free sees what was filled */
    }
    return true;
}

void srv_thinking_message_free(srv_message *m) {
    gw_thinking_free(m->thinking, m->n_thinking);
    m->thinking = NULL;
    m->n_thinking = 0;
}

cJSON *srv_thinking_json(const gw_thinking_block *b, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < n; k++) {
        cJSON *o = gw_thinking_json(&b[k]);
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

bool srv_job_thinking(srv_job *j, const gw_thinking_block *b) {
    pthread_mutex_lock(&j->mu);
    bool ok =
        !gw_thinking_push(&j->thinking, &j->n_thinking, b) && srv_job_append(j, NULL, "", 0, false);
    if (ok) j->events[j->n_events - 1].block = j->n_thinking;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok;
}
