/*
 * rag_store.c - the index database: its schema, its key-value settings and
 * the in-memory copy of the vectors that searches scan.
 *
 * docs holds one row per indexed file (what is needed to see that it
 * changed); chunks one row per chunk (where it lies in its file, and its
 * vector: float32 little-endian, one per dimension); chunks_fts the chunk's
 * text and its file's name in an FTS5 table whose rowid is the chunk's id,
 * so the text is stored once.
 */
#include "rag_impl.h"

#include "core/core.h"
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const migrations[] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE docs(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
    "  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash INTEGER NOT NULL,"
    "  n_chunks INTEGER NOT NULL, indexed_at INTEGER NOT NULL);"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY,"
    "  doc_id INTEGER NOT NULL REFERENCES docs(id) ON DELETE CASCADE,"
    "  ord INTEGER NOT NULL, byte_start INTEGER NOT NULL, byte_len INTEGER NOT NULL, vec BLOB);"
    "CREATE INDEX chunks_by_doc ON chunks(doc_id, ord);"
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, body,"
    "  tokenize = 'porter unicode61 remove_diacritics 2');",
};

hearth_err rag_open(const char *path, bool writable, rag_index **out) {
    struct stat st;
    if (!writable && stat(path, &st) != 0)
        return hr_fail(HEARTH_ERR_IO, "rag: no index at '%s' (build one with hearth rag index)",
                       path);
    rag_index *x = hr_calloc(1, sizeof *x);
    if (!x) return HEARTH_ERR_NOMEM;
    x->data_version = x->info_version = -1;
    const hearth_err err =
        store_open(path, migrations, (int)(sizeof migrations / sizeof *migrations), &x->db);
    if (err) {
        free(x);
        return err;
    }
    *out = x;
    return HEARTH_OK;
}

void rag_close(rag_index *x) {
    if (!x) return;
    sqlite3_close_v2(x->db);
    free(x->vecs);
    free(x->vec_id);
    free(x);
}

hearth_err rag_meta_get(rag_index *x, const char *key, char *out, size_t cap, bool *found) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL))
        return store_fail(x->db, "reading the index settings");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    const char *v = *found ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (*found) snprintf(out, cap, "%s", v ? v : "");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? HEARTH_OK
                                                 : store_fail(x->db, "reading the index settings");
}

hearth_err rag_meta_set(rag_index *x, const char *key, const char *value) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", -1, &st,
                           NULL))
        return store_fail(x->db, "writing the index settings");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? HEARTH_OK : store_fail(x->db, "writing the index settings");
}

static int64_t count(rag_index *x, const char *sql) {
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int meta_int(rag_index *x, const char *key, int dflt) {
    char v[32];
    bool found = false;
    if (rag_meta_get(x, key, v, sizeof v, &found) || !found) return dflt;
    char *end;
    const long n = strtol(v, &end, 10);
    return end != v && !*end && n >= INT_MIN && n <= INT_MAX ? (int)n : dflt;
}

int64_t rag_data_version(rag_index *x) { return count(x, "PRAGMA data_version"); }

hearth_err rag_info_get(rag_index *x, rag_info *out) {
    const int64_t version = rag_data_version(x);
    if (version < 0) return store_fail(x->db, "reading the data version");
    if (version == x->info_version) {
        *out = x->info;
        return HEARTH_OK;
    }
    rag_info in = {0};
    in.n_docs = count(x, "SELECT count(*) FROM docs");
    in.n_chunks = count(x, "SELECT count(*) FROM chunks");
    in.n_vectors = count(x, "SELECT count(*) FROM chunks WHERE vec IS NOT NULL");
    if (in.n_docs < 0 || in.n_chunks < 0 || in.n_vectors < 0)
        return store_fail(x->db, "counting the index");
    bool found = false;
    const hearth_err err = rag_meta_get(x, "model", in.model, sizeof in.model, &found);
    if (err) return err;
    in.n_dims = meta_int(x, "dims", 0);
    in.chunk_words = meta_int(x, "chunk_words", 0);
    in.overlap_words = meta_int(x, "overlap_words", 0);
    x->info = in;
    x->info_version = version;
    *out = in;
    return HEARTH_OK;
}

hearth_err rag_vectors_load(rag_index *x) {
    const int64_t version = rag_data_version(x);
    if (version < 0) return store_fail(x->db, "reading the data version");
    if (version == x->data_version) return HEARTH_OK;
    free(x->vecs);
    free(x->vec_id);
    x->vecs = NULL, x->vec_id = NULL, x->n_vecs = 0;
    x->n_dims = meta_int(x, "dims", 0);
    const int64_t n = count(x, "SELECT count(*) FROM chunks WHERE vec IS NOT NULL");
    if (n < 0) return store_fail(x->db, "counting the vectors");
    const size_t row = (size_t)x->n_dims * sizeof(float);
    if (n > 0 && (x->n_dims <= 0 || !(x->vecs = hr_calloc((size_t)n, row)) ||
                  !(x->vec_id = hr_calloc((size_t)n, sizeof *x->vec_id))))
        return x->n_dims <= 0 ? hr_fail(HEARTH_ERR_FORMAT, "rag: vectors without a dimension")
                              : HEARTH_ERR_NOMEM;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db, "SELECT id, vec FROM chunks WHERE vec IS NOT NULL ORDER BY id",
                           -1, &st, NULL))
        return store_fail(x->db, "reading the vectors");
    int64_t i = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && i < n) {
        if ((size_t)sqlite3_column_bytes(st, 1) != row) {
            sqlite3_finalize(st);
            return hr_fail(HEARTH_ERR_FORMAT, "rag: chunk %lld has a vector of %d bytes, not %zu",
                           (long long)sqlite3_column_int64(st, 0), sqlite3_column_bytes(st, 1),
                           row);
        }
        x->vec_id[i] = sqlite3_column_int64(st, 0);
        memcpy(x->vecs + (size_t)i * (size_t)x->n_dims, sqlite3_column_blob(st, 1), row);
        i++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return store_fail(x->db, "reading the vectors");
    x->n_vecs = i;
    x->data_version = version;
    return HEARTH_OK;
}

hearth_err rag_model_id(const char *model_path, int n_dims, const char *pooling, char out[256]) {
    struct stat st;
    if (stat(model_path, &st) != 0)
        return hr_fail(HEARTH_ERR_IO, "rag: cannot stat '%s'", model_path);
    const char *name = strrchr(model_path, '/');
    snprintf(out, 256, "%.200s:%lld:%d:%s", name ? name + 1 : model_path, (long long)st.st_size,
             n_dims, pooling);
    return HEARTH_OK;
}
