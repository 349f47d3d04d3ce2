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
 *                "keep_alive": "30m", "load_on_startup": true,
 *                "parameters": {"temperature": 0.2, "stop": ["<|im_end|>"]},
 *                "draft": "qwen2.5-coder-0.5b-q8_0.gguf", "draft_max": 4,
 *                "lora": [{"path": "style.gguf", "scale": 0.5}]}]}
 *
 * Only "path" is required (paths are relative to the file's directory);
 * every other key defaults to the command line's setting (-md and --lora
 * only ever apply to the default model). "parameters" are generation
 * defaults for what requests leave out (model_params.c); "draft" and "lora"
 * are checked when the model loads, as -md and --lora are. An unknown key,
 * a value of the wrong type or range, a file that cannot be read, two
 * defaults (or one beside -m, which is the default) stop the start-up with
 * an error naming models[i].key. The parsed document lives as long as the
 * server: the models' settings point into it.
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

/* path as given when absolute, else next to the models file (malloc'd). */
static char *beside(const char *file, const char *path) {
    const char *slash = strrchr(file, '/');
    if (path[0] == '/' || !slash) return strdup(path);
    const size_t n = (size_t)(slash - file + 1), size = n + strlen(path) + 1;
    char *out = malloc(size);
    if (out) snprintf(out, size, "%.*s%s", (int)n, file, path);
    return out;
}

/* A readable file named by models[i].key, resolved beside the models file
 * into *out (malloc'd). */
static hearth_err get_file(const cJSON *v, const char *file, const char *key, int i, char **out) {
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].%s must be a file name", i, key);
    if (!(*out = beside(file, v->valuestring))) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    if (access(*out, R_OK))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].%s: cannot read %s", i, key, *out);
    return HEARTH_OK;
}

/* "lora": [{"path": FILE, "scale": S (default 1)}, ...], as --lora-scaled;
 * replaces --lora on the default model. */
static hearth_err get_loras(srv_model *m, const cJSON *v, const char *file, int i) {
    const int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (m->own_loras) return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].lora is given twice", i);
    if (n < 1 || n > SRV_MAX_MODEL_LORAS)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "models[%d].lora must be an array of 1 to %d adapters {\"path\", "
                       "\"scale\"}",
                       i, SRV_MAX_MODEL_LORAS);
    if (!(m->own_loras = calloc((size_t)n, sizeof *m->own_loras)))
        return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    const cJSON *a;
    cJSON_ArrayForEach(a, v) {
        char key[32];
        const int k = m->n_own_loras;
        snprintf(key, sizeof key, "lora[%d].path", k);
        const cJSON *scale = cJSON_GetObjectItemCaseSensitive(a, "scale");
        char *path = NULL;
        hearth_err err =
            cJSON_IsObject(a)
                ? get_file(cJSON_GetObjectItemCaseSensitive(a, "path"), file, key, i, &path)
                : hr_fail(HEARTH_ERR_INVALID_ARG,
                          "models[%d].lora[%d] must be an object {\"path\", \"scale\"}", i, k);
        if (!err && scale &&
            !(cJSON_IsNumber(scale) && scale->valuedouble >= -1e3 && scale->valuedouble <= 1e3))
            err = hr_fail(HEARTH_ERR_INVALID_ARG,
                          "models[%d].lora[%d].scale must be a number in -1000..1000", i, k);
        if (err) {
            free(path);
            return err;
        }
        m->own_loras[m->n_own_loras++] =
            (hearth_lora){.path = path, .scale = scale ? (float)scale->valuedouble : 1.0f};
    }
    m->loras = m->own_loras;
    m->n_loras = m->n_own_loras;
    return HEARTH_OK;
}

/* "draft": FILE, replacing -md on the default model; "draft_max": its
 * proposals a step. */
static hearth_err get_draft(srv_model *m, const cJSON *v, const char *file, int i) {
    const srv_config *c = &m->srv->cfg;
    free(m->own_draft_path);
    m->own_draft_path = NULL;
    const hearth_err err = get_file(v, file, "draft", i, &m->own_draft_path);
    if (err) return err;
    m->draft_path = m->own_draft_path;
    /* the server's settings when it drafts too (-md), else hearth's defaults */
    m->spec_n_max = c->model_draft ? c->spec_n_max : SRV_DRAFT_N_MAX;
    m->spec_p_min = c->model_draft ? c->spec_p_min : SRV_DRAFT_P_MIN;
    return HEARTH_OK;
}

/* One key of entry i applied to m. */
static hearth_err apply(srv_model *m, const cJSON *v, int i, const char *file) {
    const char *k = v->string, *str = NULL;
    hearth_err err = HEARTH_OK;
    if (!strcmp(k, "name") || !strcmp(k, "path") || !strcmp(k, "default") ||
        !strcmp(k, "draft_max")) {
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
    } else if (!strcmp(k, "load_on_startup") || !strcmp(k, "swa_full")) {
        if (!cJSON_IsBool(v))
            err = hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].%s must be a boolean", i, k);
        *(k[0] == 'l' ? &m->load_on_startup : &m->swa_full) = cJSON_IsTrue(v);
    } else if (!strcmp(k, "parameters")) {
        err = srv_model_params_parse(m, v, i);
    } else if (!strcmp(k, "draft")) {
        err = get_draft(m, v, file, i);
    } else if (!strcmp(k, "mmproj")) {
        free(m->own_mmproj_path);
        m->own_mmproj_path = NULL;
        err = get_file(v, file, "mmproj", i, &m->own_mmproj_path);
        m->mmproj_path = m->own_mmproj_path;
    } else if (!strcmp(k, "lora")) {
        err = get_loras(m, v, file, i);
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
                      "parallel, kv_type, swa_full, chat_template, pooling, system, "
                      "keep_alive, load_on_startup, parameters, draft, draft_max, lora)",
                      i, k);
    }
    return err;
}

/* "draft_max" after the keys (it needs "draft"). */
static hearth_err get_draft_max(srv_model *m, const cJSON *e, int i) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "draft_max");
    if (!v) return HEARTH_OK;
    if (!cJSON_GetObjectItemCaseSensitive(e, "draft"))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "models[%d].draft_max needs a \"draft\"", i);
    return get_int(v, "draft_max", i, 0, SRV_MAX_SPEC, &m->spec_n_max);
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
        if (!err) err = apply(m, v, i, file);
    }
    if (!err) err = get_draft_max(m, e, i);
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
