/*
 * chat.c - choosing a model's chat template (chat.h). A template file is
 * read whole, up to 1 MiB: real templates are a few KiB, and anything larger
 * is a wrong path rather than a template.
 */
#include "chat.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHAT_FILE_MAX = 1 << 20 };

static char *read_template(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(CHAT_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, CHAT_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > CHAT_FILE_MAX) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

hearth_err eng_chat_choose(const hearth_model *m, const char *override, tok_chat_template *out,
                           eng_chat_source *source) {
    if (override) {
        if (tok_chat_named(override, out) == HEARTH_OK) {
            *source = ENG_CHAT_NAMED;
            return HEARTH_OK;
        }
        size_t len = 0;
        char *text = read_template(override, &len);
        if (!text)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "'%s' is neither a known template name (%s) nor a readable file "
                           "of at most 1 MiB",
                           override, tok_chat_names());
        hearth_err err = tok_chat_detect(text, len, out);
        free(text);
        if (err) return hr_wrap(err, "'%s': ", override);
        *source = ENG_CHAT_FILE;
        return HEARTH_OK;
    }
    const char *text = NULL;
    size_t len = 0;
    if (hearth_model_meta_str(m, "tokenizer.chat_template", &text, &len) != HEARTH_OK) {
        *source = ENG_CHAT_FALLBACK;
        return tok_chat_named("chatml", out);
    }
    *source = ENG_CHAT_MODEL;
    return tok_chat_detect(text, len, out);
}

char *eng_token_text(const hearth_model *m, int32_t id) {
    size_t n = 0;
    if (id < 0) return calloc(1, 1);
    hearth_detokenize(m, &id, 1, true, NULL, 0, &n);
    char *t = calloc(n + 1, 1);
    if (t && hearth_detokenize(m, &id, 1, true, t, n, &n) != HEARTH_OK) t[0] = '\0';
    return t;
}

size_t eng_chat_bos_skip(const char *text, size_t len, const char *bos) {
    const size_t bl = strlen(bos);
    return bl && len >= bl && !memcmp(text, bos, bl) ? bl : 0;
}

/* text tokenized as a chat prompt, with its images' markers when media. */
static hearth_err tokenize(const hearth_model *m, const eng_chat_media *media, const char *text,
                           size_t len, int32_t *ids, size_t cap, size_t *n) {
    if (media)
        return hearth_tokenize_media(m, media->vision, text, len, true, true, media->hashes,
                                     media->n, ids, cap, n);
    return hearth_tokenize(m, text, len, true, true, ids, cap, n);
}

hearth_err eng_chat_tokens(const hearth_model *m, const tok_chat_template *t,
                           const tok_chat_msg *msgs, size_t n, const char *bos, const char *eos,
                           bool no_thinking, int32_t **ids, size_t *n_ids) {
    return eng_chat_tokens_media(m, t, msgs, n, bos, eos, no_thinking, NULL, ids, n_ids);
}

hearth_err eng_chat_tokens_media(const hearth_model *m, const tok_chat_template *t,
                                 const tok_chat_msg *msgs, size_t n, const char *bos,
                                 const char *eos, bool no_thinking, const eng_chat_media *media,
                                 int32_t **ids, size_t *n_ids) {
    const tok_chat_opts o = {
        .bos = bos, .eos = eos, .add_generation_prompt = true, .no_thinking = no_thinking};
    char *text = NULL;
    size_t len = 0, n_tok = 0;
    hearth_err e = tok_chat_render(t, msgs, n, &o, &text, &len);
    if (e) return e;
    const size_t skip = eng_chat_bos_skip(text, len, bos);
    e = tokenize(m, media, text + skip, len - skip, NULL, 0, &n_tok);
    if (e && e != HEARTH_ERR_INVALID_ARG) n_tok = 0;
    int32_t *out = malloc((n_tok ? n_tok : 1) * sizeof *out);
    e = out ? tokenize(m, media, text + skip, len - skip, out, n_tok, &n_tok)
            : hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    free(text);
    if (e) {
        free(out);
        return e;
    }
    *ids = out;
    *n_ids = n_tok;
    return HEARTH_OK;
}
