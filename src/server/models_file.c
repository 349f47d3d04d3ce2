/*
 * models_file.c - `hearth serve --models-file FILE`: models with names,
 * aliases and settings of their own, as ollama's Modelfiles and
 * llama-server's --models-preset give them. The file is JSON:
 *
 *   {"models": [{"name": "coder", "path": "qwen2.5-coder-1.5b-q4_k_m.gguf",
 *                "aliases": ["qwen2.5-coder:1.5b"], "default": true,
 *                "ctx": 8192, "parallel": 2, "kv_type": "q8_0",
 *                "chat_template": "qwen2.5", "pooling": "mean",
 *                "system": "You are a careful coding assistant.",
 *                "keep_alive": "30m", "load_on_startup": true}]}
 *
 * Only "path" is required (relative to the file's directory); every other
 * key defaults to the command line's setting. An unknown key, a value of the
 * wrong type or range, two defaults (or one beside -m, which is the
 * default) stop the start-up with an error naming models[i].key. The parsed
 * document lives as long as the server: the models' settings point into it.
 */
#include "server.h"

#include "core/core.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MODELS_FILE_MAX = 1 << 20 };

/* models[i].key's integer in [lo, hi]. */
static hearth_err get_int(const cJSON *v, const char *key, int i, int lo, int hi, int *out) {
    /* the range first: converting a double out of int's range is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].%s must be an integer in %d..%d", i, key,
                       lo, hi);
    *out = (int)v->valuedouble;
    return HEARTH_OK;
}

static hearth_err get_str(const cJSON *v, const char *key, int i, const char **out) {
    if (!cJSON_IsString(v))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].%s must be a string", i, key);
    *out = v->valuestring;
    return HEARTH_OK;
}

/* One key of entry i applied to m. */
static hearth_err apply(srv_model *m, const cJSON *v, int i) {
    const char *k = v->string, *str = NULL;
    hearth_err err = HEARTH_OK;
    if (!strcmp(k, "name") || !strcmp(k, "path") || !strcmp(k, "default")) {
        /* read at registration */
    } else if (!strcmp(k, "ctx")) {
        err = get_int(v, k, i, 0, 1 << 24, &m->n_ctx);
    } else if (!strcmp(k, "parallel")) {
        err = get_int(v, k, i, 1, 256, &m->n_parallel);
    } else if (!strcmp(k, "kv_type")) {
        err = get_str(v, k, i, &str);
        if (!err && !strcmp(str, "f32"))
            m->kv_type = HEARTH_KV_F32;
        else if (!err && !strcmp(str, "f16"))
            m->kv_type = HEARTH_KV_F16;
        else if (!err && !strcmp(str, "q8_0"))
            m->kv_type = HEARTH_KV_Q8_0;
        else if (!err)
            err = hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].kv_type must be f32, f16 or q8_0", i);
    } else if (!strcmp(k, "chat_template")) {
        tok_chat_template t;
        err = get_str(v, k, i, &m->chat_template);
        if (!err && tok_chat_named(m->chat_template, &t) && access(m->chat_template, R_OK))
            err = hr_fail(HEARTH_ERR_INVALID_ARG,
                          "models[%d].chat_template: '%s' is neither a template name (%s) nor a "
                          "readable file",
                          i, m->chat_template, tok_chat_names());
    } else if (!strcmp(k, "pooling")) {
        hearth_pooling p;
        err = get_str(v, k, i, &m->pooling_name);
        if (!err && !hearth_pooling_parse(m->pooling_name, &p))
            err =
                hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].pooling must be mean, cls or last", i);
    } else if (!strcmp(k, "system")) {
        size_t bad;
        err = get_str(v, k, i, &m->system);
        if (!err && !hr_utf8_valid(m->system, strlen(m->system), &bad))
            err = hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].system is not UTF-8 (byte %zu)", i,
                          bad);
    } else if (!strcmp(k, "keep_alive")) {
        char num[32] = "";
        if (cJSON_IsNumber(v)) snprintf(num, sizeof num, "%.17g", v->valuedouble);
        if (!(cJSON_IsNumber(v) || cJSON_IsString(v)) ||
            !srv_parse_keep_alive(cJSON_IsNumber(v) ? num : v->valuestring, &m->keep_alive_default))
            err = hr_fail(HEARTH_ERR_INVALID_ARG,
                          "models[%d].keep_alive must be seconds or a duration (5m, 1h; "
                          "negative: forever)",
                          i);
    } else if (!strcmp(k, "load_on_startup")) {
        if (!cJSON_IsBool(v))
            err =
                hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].load_on_startup must be a boolean", i);
        m->load_on_startup = cJSON_IsTrue(v);
    } else if (!strcmp(k, "aliases")) {
        const cJSON *a;
        if (!cJSON_IsArray(v) ||
            cJSON_GetArraySize(v) > (int)(sizeof m->aliases / sizeof *m->aliases))
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "models[%d].aliases must be an array of at most %zu names", i,
                           sizeof m->aliases / sizeof *m->aliases);
        cJSON_ArrayForEach(a, v) {
            if (!cJSON_IsString(a) || !a->valuestring[0])
                return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].aliases must hold names", i);
            const srv_model *other = srv_model_find(m->srv, a->valuestring);
            if (other)
                return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].aliases: '%s' already names %s",
                               i, a->valuestring, other->id);
            m->aliases[m->n_aliases++] = a->valuestring;
        }
    } else {
        err = hr_fail(HEARTH_ERR_INVALID_ARG,
                      "models[%d].%s is not a setting (name, path, aliases, default, ctx, "
                      "parallel, kv_type, chat_template, pooling, system, keep_alive, "
                      "load_on_startup)",
                      i, k);
    }
    return err;
}

/* path as given when absolute, else next to the models file (malloc'd). */
static char *beside(const char *file, const char *path) {
    const char *slash = strrchr(file, '/');
    if (path[0] == '/' || !slash) return strdup(path);
    const size_t n = (size_t)(slash - file + 1), size = n + strlen(path) + 1;
    char *out = malloc(size);
    if (out) snprintf(out, size, "%.*s%s", (int)n, file, path);
    return out;
}

static hearth_err add_entry(srv_server *s, const char *file, const cJSON *e, int i) {
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(e, "path");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(e, "default");
    if (!cJSON_IsObject(e))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d] must be an object", i);
    if (!cJSON_IsString(path) || !path->valuestring[0])
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].path is required (a GGUF file)", i);
    if (name && (!cJSON_IsString(name) || !name->valuestring[0]))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].name must be a non-empty string", i);
    if (def && !cJSON_IsBool(def))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].default must be a boolean", i);
    if (cJSON_IsTrue(def)) {
        for (int k = 0; k < s->n_models; k++)
            if (s->models[k]->is_default)
                return hr_fail(HEARTH_ERR_INVALID_ARG,
                               "models[%d].default: %s is the default already (-m or an earlier "
                               "entry)",
                               i, s->models[k]->id);
    }
    char *full = beside(file, path->valuestring);
    if (!full) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    srv_model *m = NULL;
    hearth_err err =
        srv_model_register(s, full, name ? name->valuestring : NULL, cJSON_IsTrue(def), &m);
    free(full);
    const cJSON *v;
    cJSON_ArrayForEach(v, e) {
        if (!err) err = apply(m, v, i);
    }
    return err;
}

hearth_err srv_models_file(srv_server *s, const char *path) {
    hr_map map = {0};
    hearth_err err = hr_map_open(&map, path);
    if (err) return hr_wrap(err, "--models-file %s: ", path);
    if (map.size > MODELS_FILE_MAX) {
        hr_map_close(&map);
        return hr_fail(HEARTH_ERR_INVALID_ARG, "--models-file %s: over %d bytes", path,
                       MODELS_FILE_MAX);
    }
    s->models_doc = cJSON_ParseWithLength((const char *)map.data, (size_t)map.size);
    hr_map_close(&map);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(s->models_doc, "models");
    if (!cJSON_IsArray(list))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "--models-file %s: not JSON of the form {\"models\": [...]}", path);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        if (!err) err = add_entry(s, path, e, i++);
    }
    return err ? hr_wrap(err, "--models-file %s: ", path) : HEARTH_OK;
}
