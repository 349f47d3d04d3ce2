/*
 * hearth.h - the public interface of libhearth.
 *
 * Everything a program needs to load a GGUF model, keep a session (a context
 * with its KV cache) and evaluate tokens. Handles are opaque; every fallible
 * function returns a hearth_err and, on failure, leaves a human-readable
 * detail in hearth_last_error() (per thread). Out-parameters are written only
 * on success.
 */
#ifndef HEARTH_H
#define HEARTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HEARTH_API __attribute__((visibility("default")))
#else
#define HEARTH_API
#endif

typedef enum hearth_err {
    HEARTH_OK = 0,
    HEARTH_ERR_IO,          /* a file could not be opened, read, mapped or written */
    HEARTH_ERR_FORMAT,      /* a file is malformed, truncated or inconsistent */
    HEARTH_ERR_UNSUPPORTED, /* valid input that Hearth does not handle (type, architecture) */
    HEARTH_ERR_NOMEM,       /* an allocation failed or a size would overflow */
    HEARTH_ERR_INVALID_ARG, /* a caller passed something out of range */
    HEARTH_ERR_CONTEXT_FULL /* the tokens would not fit in the session's context */
} hearth_err;

/* The detail message of the last failure on this thread ("" if none). The
 * string is owned by the library and valid until the next failing call. */
HEARTH_API const char *hearth_last_error(void);
/* A stable name for an error code ("format", "io", ...). */
HEARTH_API const char *hearth_err_name(hearth_err err);

typedef struct hearth_model hearth_model;
typedef struct hearth_session hearth_session;

typedef struct hearth_model_params {
    int n_threads; /* threads for the model's pool; <= 0: physical cores */
} hearth_model_params;

HEARTH_API hearth_model_params hearth_model_default_params(void);

/* Maps the GGUF file at `path`, validates it and binds its tensors to the
 * architecture it names. The weights stay in the mapping. On success *out owns
 * the model; free it with hearth_model_free. */
HEARTH_API hearth_err hearth_model_load(const char *path, const hearth_model_params *params,
                                        hearth_model **out);
HEARTH_API void hearth_model_free(hearth_model *model);

HEARTH_API int hearth_model_n_vocab(const hearth_model *model);
HEARTH_API int hearth_model_n_ctx_train(const hearth_model *model);
HEARTH_API int hearth_model_n_embd(const hearth_model *model);
/* "llama", "qwen2", ... Owned by the model. */
HEARTH_API const char *hearth_model_arch(const hearth_model *model);

typedef enum hearth_kv_type { HEARTH_KV_F32 = 0, HEARTH_KV_F16 = 1 } hearth_kv_type;

typedef struct hearth_session_params {
    int n_ctx;               /* positions in the KV cache; <= 0: min(model's training context, 4096) */
    int n_batch;             /* most tokens evaluated in one forward pass; <= 0: 512 */
    hearth_kv_type kv_type;  /* element type of the KV cache */
} hearth_session_params;

HEARTH_API hearth_session_params hearth_session_default_params(void);

/* Creates a session: the KV cache and every activation buffer, sized once.
 * The model must outlive the session. */
HEARTH_API hearth_err hearth_session_new(hearth_model *model, const hearth_session_params *params,
                                         hearth_session **out);
HEARTH_API void hearth_session_free(hearth_session *session);

/* Positions already in the KV cache, and the capacity. */
HEARTH_API int hearth_session_pos(const hearth_session *session);
HEARTH_API int hearth_session_n_ctx(const hearth_session *session);
/* Forgets every position >= pos (pos <= current position). */
HEARTH_API hearth_err hearth_session_truncate(hearth_session *session, int pos);

/* Evaluates n tokens at the next n positions (split into batches of at most
 * n_batch). If `logits` is not NULL it receives n_vocab floats per token when
 * all_logits is true ([n][n_vocab]), or only the last token's row otherwise.
 * Going past n_ctx fails with HEARTH_ERR_CONTEXT_FULL and changes nothing. */
HEARTH_API hearth_err hearth_decode(hearth_session *session, const int32_t *ids, int n,
                                    float *logits, bool all_logits);

#ifdef __cplusplus
}
#endif
#endif /* HEARTH_H */
