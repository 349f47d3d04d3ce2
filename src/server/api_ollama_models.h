/*
 * api_ollama_models.h - what ollama's model routes (api_ollama_models.c)
 * serve, computed once when the model is registered (models.c), since clients
 * poll /api/tags and /api/ps: the file's size, mtime and digest, the
 * "details" and "model_info" objects. Private to src/server.
 */
#ifndef HEARTH_SERVER_API_OLLAMA_MODELS_H
#define HEARTH_SERVER_API_OLLAMA_MODELS_H

#include "server.h"

typedef struct srv_model_info srv_model_info;

/* From the GGUF file at path: its header (metadata and tensors, checked as
 * the loader checks them), mtime, and the bytes before the tensor data for
 * the digest. An error when it is not a GGUF file. */
hearth_err srv_model_info_new(const char *path, srv_model_info **out);
/* NULL is a no-op. */
void srv_model_info_free(srv_model_info *mi);

#endif
