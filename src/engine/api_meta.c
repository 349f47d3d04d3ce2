/*
 * api_meta.c - read access to a loaded model's GGUF metadata for the layers
 * above the engine (the server reads tokenizer.chat_template). Values stay in
 * the model's mapping: nothing is copied.
 */
#include "engine.h"

#include <stdint.h>

hearth_err hearth_model_meta_str(const hearth_model *m, const char *key, const char **out,
                                 size_t *len) {
    if (!m || !key || !out || !len) return hr_fail(HEARTH_ERR_INVALID_ARG, "meta: NULL argument");
    const gguf_kv *kv = gguf_find(m->gguf, key);
    if (!kv) return hr_fail(HEARTH_ERR_INVALID_ARG, "meta: the model has no key '%s'", key);
    if (kv->value.type != GGUF_STRING)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "meta: key '%s' holds a %s, not a string", key,
                       gguf_vtype_name(kv->value.type));
#if SIZE_MAX < UINT64_MAX
    if (kv->value.v.str.len > SIZE_MAX)
        return hr_fail(HEARTH_ERR_NOMEM, "meta: key '%s' is too long", key);
#endif
    *out = kv->value.v.str.ptr;
    *len = (size_t)kv->value.v.str.len;
    return HEARTH_OK;
}
