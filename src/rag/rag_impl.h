/*
 * rag_impl.h - private to the rag folder: the index handle and what its
 * files share.
 */
#ifndef HEARTH_RAG_IMPL_H
#define HEARTH_RAG_IMPL_H

#include "rag.h"

#include <sqlite3.h>

struct rag_index {
    sqlite3 *db;
    /* The vectors, read once and again whenever another connection has
     * written the database since (PRAGMA data_version changes). */
    float *vecs;     /* [n_vecs][n_dims] */
    int64_t *vec_id; /* [n_vecs] chunk ids */
    int64_t n_vecs;
    int n_dims;
    int64_t data_version; /* -1: never loaded */
    /* rag_info_get's answer, kept the same way (searches ask for it each time) */
    rag_info info;
    int64_t info_version; /* -1: to be read */
};

/* PRAGMA data_version: moves when another connection commits (our own
 * writes do not move it, so rag_ingest resets the two versions above). */
int64_t rag_data_version(rag_index *x);

/* meta: a small key-value table (the chunk settings, the embedding model). */
hearth_err rag_meta_get(rag_index *x, const char *key, char *out, size_t cap, bool *found);
hearth_err rag_meta_set(rag_index *x, const char *key, const char *value);

/* Fills the vector cache when the database changed since it was loaded. */
hearth_err rag_vectors_load(rag_index *x);

#endif
