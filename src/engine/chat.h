/*
 * chat.h - the chat template a model's conversations are rendered with, as
 * both `hearth serve` and `hearth chat` choose it: an override (a template
 * name or a file holding Jinja text), else the GGUF's tokenizer.chat_template,
 * else ChatML. And the texts of the special tokens the templates print.
 */
#ifndef HEARTH_ENGINE_CHAT_H
#define HEARTH_ENGINE_CHAT_H

#include "hearth.h"
#include "tokenizer/chat_template.h"

typedef enum eng_chat_source {
    ENG_CHAT_NAMED = 1, /* the override named a built-in template */
    ENG_CHAT_FILE,      /* the override is a file whose text was recognized */
    ENG_CHAT_MODEL,     /* recognized in the model's tokenizer.chat_template */
    ENG_CHAT_FALLBACK   /* the model has no template: ChatML */
} eng_chat_source;

/* Chooses the template for model m; override may be NULL. Fails with
 * HEARTH_ERR_INVALID_ARG for an override that is neither a name nor a
 * readable file, and with HEARTH_ERR_UNSUPPORTED (message from
 * tok_chat_detect) when the text found is no family Hearth renders. */
hearth_err eng_chat_choose(const hearth_model *m, const char *override, tok_chat_template *out,
                           eng_chat_source *source);

/* Where a rendered chat's tokenizing starts: templates print bos_token where
 * the model's Jinja does and the tokenizer adds BOS itself when the vocabulary
 * asks, so a leading BOS text is skipped (one BOS, as llama.cpp). */
size_t eng_chat_bos_skip(const char *text, size_t len, const char *bos);

/* msgs rendered with t (the generation prompt added; bos/eos the texts of
 * eng_token_text; no_thinking: Qwen 3's enable_thinking false) and tokenized
 * as a chat prompt is: one BOS, special-token text parsed. *ids is malloc'd
 * (the caller frees), *n_ids tokens. */
hearth_err eng_chat_tokens(const hearth_model *m, const tok_chat_template *t,
                           const tok_chat_msg *msgs, size_t n, const char *bos, const char *eos,
                           bool no_thinking, int32_t **ids, size_t *n_ids);
/* The same with images: each HEARTH_MEDIA_MARKER in the messages stands for
 * the next of media's n images (hearth_tokenize_media). */
typedef struct eng_chat_media {
    const hearth_vision *vision;
    const uint64_t *hashes;
    int n;
} eng_chat_media;
hearth_err eng_chat_tokens_media(const hearth_model *m, const tok_chat_template *t,
                                 const tok_chat_msg *msgs, size_t n, const char *bos,
                                 const char *eos, bool no_thinking, const eng_chat_media *media,
                                 int32_t **ids, size_t *n_ids);

/* The text of special token id ("" for id < 0), malloc'd; NULL when out of
 * memory. */
char *eng_token_text(const hearth_model *m, int32_t id);

#endif
