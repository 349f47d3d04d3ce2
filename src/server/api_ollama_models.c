/*
 * api_ollama_models.c - ollama's routes that describe the server and its
 * models: GET /api/version, GET /api/tags (the models "installed": every
 * model the server can answer with), GET /api/ps (the models loaded, with
 * when their keep-alive runs out), POST /api/show.
 *
 * A model's name is /v1/models' id (the file's name). Its details are
 * computed once, when the server registers the model (models.c calls
 * srv_model_info_new), from the file's GGUF header, since clients poll
 * these routes: family = general.architecture, parameter_size = the
 * tensors' elements counted ("1.1B", "110M"), quantization_level = general.file_type's name
 * (or the type holding most weights when the file has none), size = the
 * file's bytes, modified_at = its mtime. Approximations: digest is SHA-256
 * of the file's header and metadata (bytes before the tensor data) and its
 * size, not of the whole file as ollama's blob digest is (hashing gigabytes
 * would slow the start-up); /api/ps's expires_at is far in the future for a
 * model without a keep-alive or in use, and size_vram 0 (on the CPU).
 */
#include "api_ollama_models.h"

#include "core/core.h"
#include "gateway/gateway.h"
#include "model/model.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Hearth's version as ollama clients read it. */
#define SRV_OLLAMA_VERSION "0.6.0-hearth"

enum { META_HASH_MAX = 64 << 20 }; /* metadata bytes hashed at most */

struct srv_model_info {
    char modified_at[40], digest[65];
    uint64_t size;
    cJSON *details;      /* /api/tags' and /api/show's "details" */
    cJSON *model_info;   /* /api/show's "model_info" */
    char *template_text; /* tokenizer.chat_template ("" when none or not UTF-8) */
    bool encoder;        /* an embedding model: ollama's "embedding" capability, no "completion" */
};

/* SHA-256 of the bytes before the tensor data and of the file size. */
static void meta_digest(const char *path, uint64_t data_offset, uint64_t size, char out[65]) {
    gw_sha256 h;
    gw_sha256_init(&h);
    FILE *fp = fopen(path, "rb");
    char buf[65536];
    uint64_t left = data_offset < META_HASH_MAX ? data_offset : META_HASH_MAX;
    while (fp && left > 0) {
        const size_t got = fread(buf, 1, left < sizeof buf ? (size_t)left : sizeof buf, fp);
        if (got == 0) break;
        gw_sha256_update(&h, buf, got);
        left -= got;
    }
    if (fp) fclose(fp);
    gw_sha256_update(&h, &size, sizeof size);
    uint8_t d[32];
    gw_sha256_final(&h, d);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static cJSON *details_json(const gguf_file *f, const char *family, int64_t n_params) {
    char parameter_size[32];
    const double np = (double)n_params;
    if (np >= 1e9)
        snprintf(parameter_size, sizeof parameter_size, "%.1fB", np / 1e9);
    else if (np >= 1e6)
        snprintf(parameter_size, sizeof parameter_size, "%.0fM", np / 1e6);
    else
        snprintf(parameter_size, sizeof parameter_size, "%.0fK", np / 1e3);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "parent_model", "");
    cJSON_AddStringToObject(d, "format", "gguf");
    cJSON_AddStringToObject(d, "family", family);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "families"), cJSON_CreateString(family));
    cJSON_AddStringToObject(d, "parameter_size", parameter_size);
    cJSON_AddStringToObject(d, "quantization_level", gguf_quant_label(f));
    return d;
}

static void respond(srv_exchange *x, cJSON *o) {
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    srv_respond_json(x, 200, json);
}

void srv_handle_ollama_version(srv_exchange *x) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", SRV_OLLAMA_VERSION);
    respond(x, o);
}

/* model_info: the scalar general.* and <arch>.* keys, and the tokenizer's
 * model and special ids (arrays are left out, as ollama leaves them empty
 * without verbose). */
static cJSON *model_info_json(const gguf_file *f, const char *family, int64_t n_params) {
    cJSON *o = cJSON_CreateObject();
    const size_t fl = strlen(family);
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255),
                 kv->key.ptr);
        const bool keep =
            !strncmp(key, "general.", 8) || (fl && !strncmp(key, family, fl) && key[fl] == '.') ||
            !strcmp(key, "tokenizer.ggml.model") || !strcmp(key, "tokenizer.ggml.pre") ||
            !strcmp(key, "tokenizer.ggml.bos_token_id") ||
            !strcmp(key, "tokenizer.ggml.eos_token_id");
        if (!keep) continue;
        const gguf_value *v = &kv->value;
        switch (v->type) {
        case GGUF_STRING: {
            char *str = malloc(v->v.str.len + 1);
            if (!str) break;
            memcpy(str, v->v.str.ptr, v->v.str.len);
            str[v->v.str.len] = '\0';
            size_t bad;
            if (hr_utf8_valid(str, v->v.str.len, &bad) && !memchr(str, '\0', v->v.str.len))
                cJSON_AddStringToObject(o, key, str);
            free(str);
            break;
        }
        case GGUF_BOOL: cJSON_AddBoolToObject(o, key, v->v.u64 != 0); break;
        case GGUF_F32:
        case GGUF_F64: cJSON_AddNumberToObject(o, key, v->v.f64); break;
        case GGUF_I8:
        case GGUF_I16:
        case GGUF_I32:
        case GGUF_I64: cJSON_AddNumberToObject(o, key, (double)v->v.i64); break;
        case GGUF_U8:
        case GGUF_U16:
        case GGUF_U32:
        case GGUF_U64: cJSON_AddNumberToObject(o, key, (double)v->v.u64); break;
        default: break; /* arrays */
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(o, "general.parameter_count"))
        cJSON_AddNumberToObject(o, "general.parameter_count", (double)n_params);
    return o;
}

hearth_err srv_model_info_new(const char *path, srv_model_info **out) {
    gguf_file *f = NULL;
    hearth_err err = gguf_open(path, &f);
    if (err) return err;
    srv_model_info *mi = calloc(1, sizeof *mi);
    if (!mi) {
        gguf_close(f);
        return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    }
    char family[64];
    gguf_str arch = {"", 0}, tmpl = {"", 0};
    gguf_get_str(f, "general.architecture", &arch);
    snprintf(family, sizeof family, "%.*s", (int)(arch.len < 63 ? arch.len : 63), arch.ptr);
    const arch_desc *a = arch_find(arch.ptr, arch.len);
    mi->encoder = a && a->encoder;
    int64_t n_params = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) n_params += gguf_tensor_at(f, i)->n_elements;
    mi->size = gguf_file_size(f);
    struct stat st;
    time_t mt = stat(path, &st) == 0 ? st.st_mtime : 0;
    struct tm tm;
    gmtime_r(&mt, &tm);
    strftime(mi->modified_at, sizeof mi->modified_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    meta_digest(path, gguf_data_offset(f), mi->size, mi->digest);
    mi->details = details_json(f, family, n_params);
    mi->model_info = model_info_json(f, family, n_params);
    size_t bad;
    gguf_get_str(f, "tokenizer.chat_template", &tmpl);
    if ((mi->template_text = malloc(tmpl.len + 1))) {
        memcpy(mi->template_text, tmpl.ptr, tmpl.len);
        mi->template_text[tmpl.len] = '\0';
        if (!hr_utf8_valid(tmpl.ptr, tmpl.len, &bad) || memchr(tmpl.ptr, '\0', tmpl.len))
            mi->template_text[0] = '\0';
    }
    gguf_close(f);
    if (!mi->details || !mi->model_info || !mi->template_text) {
        srv_model_info_free(mi);
        return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    }
    *out = mi;
    return HEARTH_OK;
}

void srv_model_info_free(srv_model_info *mi) {
    if (!mi) return;
    cJSON_Delete(mi->details);
    cJSON_Delete(mi->model_info);
    free(mi->template_text);
    free(mi);
}

void srv_handle_ollama_tags(srv_exchange *x, bool running) {
    srv_server *s = x->srv;
    cJSON *o = cJSON_CreateObject(), *all = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < s->n_models; i++) {
        srv_model *sm = s->models[i];
        pthread_mutex_lock(&s->models_mu);
        const bool loaded = sm->state == SRV_MODEL_LOADED;
        const double expires = sm->expires_ms, now = srv_now_ms();
        const bool idle = sm->refs == 0;
        pthread_mutex_unlock(&s->models_mu);
        if (running && !loaded) continue;
        const srv_model_info *mi = sm->ollama_info;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(all, m);
        cJSON_AddStringToObject(m, "name", sm->id);
        cJSON_AddStringToObject(m, "model", sm->id);
        if (!running) cJSON_AddStringToObject(m, "modified_at", mi->modified_at);
        cJSON_AddNumberToObject(m, "size", (double)mi->size);
        cJSON_AddStringToObject(m, "digest", mi->digest);
        cJSON_AddItemToObject(m, "details", cJSON_Duplicate(mi->details, true));
        if (running) {
            char when[32] = "2318-01-01T00:00:00Z"; /* never unloaded */
            if (idle && expires > 0)
                gw_format_time(gw_now_ms() + (int64_t)(expires - now), when, sizeof when);
            cJSON_AddStringToObject(m, "expires_at", when);
            cJSON_AddNumberToObject(m, "size_vram", 0);
        }
    }
    respond(x, o);
}

/* Whether the model's template is a reasoning one (ollama's "thinking"
 * capability): the --chat-template name it was given, else its GGUF's. */
static bool thinks(const srv_model *sm, const srv_model_info *mi) {
    tok_chat_template t;
    const hearth_err err = sm->chat_template
                               ? tok_chat_named(sm->chat_template, &t)
                               : tok_chat_detect(mi->template_text, strlen(mi->template_text), &t);
    return !err && t.think;
}

void srv_handle_ollama_show(srv_exchange *x) {
    srv_error e;
    cJSON *root = cJSON_ParseWithLength(x->body, x->body_len);
    const cJSON *model =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    const srv_model *sm = NULL;
    if (!cJSON_IsString(model) || !model->valuestring[0])
        srv_fail(&e, 400, "model", NULL, "model is required");
    else if (!(sm = srv_model_find(x->srv, model->valuestring)) && x->srv->n_models == 1)
        sm = x->srv->models[0]; /* one model answers any name */
    else if (!sm)
        srv_fail(&e, 404, "model", NULL, "model '%.200s' not found", model->valuestring);
    cJSON_Delete(root);
    if (!sm) {
        srv_respond_error(x, &e);
        return;
    }
    const srv_model_info *mi = sm->ollama_info;
    char *params = srv_model_params_text(sm); /* --models-file's "parameters" */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "license", "");
    cJSON_AddStringToObject(o, "modelfile", "");
    cJSON_AddStringToObject(o, "parameters", params ? params : "");
    free(params);
    cJSON_AddStringToObject(o, "template", mi->template_text);
    cJSON_AddItemToObject(o, "details", cJSON_Duplicate(mi->details, true));
    cJSON_AddItemToObject(o, "model_info", cJSON_Duplicate(mi->model_info, true));
    cJSON *caps = cJSON_AddArrayToObject(o, "capabilities");
    cJSON_AddItemToArray(caps, cJSON_CreateString(mi->encoder ? "embedding" : "completion"));
    if (!mi->encoder && thinks(sm, mi)) cJSON_AddItemToArray(caps, cJSON_CreateString("thinking"));
    if (sm->mmproj_path) cJSON_AddItemToArray(caps, cJSON_CreateString("vision"));
    cJSON_AddStringToObject(o, "modified_at", mi->modified_at);
    respond(x, o);
}
