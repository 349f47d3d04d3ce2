/*
 * rag_ingest.c - bringing the index up to date with files on disk.
 *
 * A file is read only when its size or mtime differs from the index's
 * record, and re-chunked only when its content hash differs too (a touched
 * file costs one read, not an embedding). The embeddings of a changed file
 * are computed before its transaction opens, so the database is locked only
 * for the writes. Paths are stored canonical (realpath), so the same file
 * indexed from two directories is one document.
 *
 * HTML and PDF files are indexed by their extracted text (rag_extract.c):
 * a chunk's byte range is then in that text, not in the file, and its FTS
 * title column carries the page title or the pages it spans besides the
 * file's name. The recorded hash is of the file's bytes, salted with the
 * extractor's version for those formats, so a better extractor re-indexes
 * them; an index written before extraction existed (no extract_version in
 * meta) has its HTML and PDF files read again once.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include "rag_impl.h"

#include "core/core.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { MAX_DEPTH = 64 };

/* Bumped when an extractor's output changes: files of those formats are then re-indexed. */
#define EXTRACT_VERSION "1"

rag_ingest_params rag_ingest_default_params(void) {
    return (rag_ingest_params){
        .chunk_words = 200,
        .overlap_words = 40,
        .max_file_bytes = 16u << 20,
    };
}

typedef struct ingest {
    rag_index *x;
    const rag_ingest_params *p;
    rag_ingest_stats *st;
    float *vecs; /* scratch: one file's vectors */
    size_t vecs_cap;
    bool reextract; /* the index predates extraction: HTML and PDF files are read again */
} ingest;

static void report(const ingest *g, const char *path, const char *action, const char *why) {
    if (g->p->progress) g->p->progress(g->p->user, path, action, why);
}

static uint64_t fnv1a64(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
    return h;
}

/* What docs.hash records: the content's FNV-1a, then for an extracted format
 * its name and the extractor's version (plain text hashes as before). */
static uint64_t content_hash(const char *s, size_t n, rag_format f) {
    uint64_t h = fnv1a64(0xcbf29ce484222325u, s, n);
    if (f != RAG_FORMAT_TEXT) {
        char salt[32];
        const int k = snprintf(salt, sizeof salt, "\n%s-%s", rag_format_name(f), EXTRACT_VERSION);
        h = fnv1a64(h, salt, (size_t)k);
    }
    return h;
}

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* The index's record of path: *id 0 when there is none. */
static hearth_err lookup(rag_index *x, const char *path, int64_t *id, int64_t *size, int64_t *mtime,
                         uint64_t *hash) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db, "SELECT id, size, mtime_ns, hash FROM docs WHERE path = ?", -1,
                           &st, NULL))
        return store_fail(x->db, "looking a file up");
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st);
    *id = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        *size = sqlite3_column_int64(st, 1);
        *mtime = sqlite3_column_int64(st, 2);
        *hash = (uint64_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? HEARTH_OK
                                                 : store_fail(x->db, "looking a file up");
}

static hearth_err exec_id(rag_index *x, const char *sql, int64_t id, int64_t v) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL)) return store_fail(x->db, "updating");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_bind_parameter_count(st) > 1) sqlite3_bind_int64(st, 2, v);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? HEARTH_OK : store_fail(x->db, "updating");
}

/* Deletes a document, its chunks and their text (inside the caller's transaction). */
static hearth_err forget(rag_index *x, int64_t id) {
    hearth_err err = exec_id(
        x, "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc_id = ?)", id, 0);
    if (!err) err = exec_id(x, "DELETE FROM docs WHERE id = ?", id, 0);
    return err;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The page (1-based) holding byte off of a PDF's text. */
static int page_at(const rag_doc *doc, size_t off) {
    int lo = 0, hi = doc->n_pages - 1; /* the last page starting at or before off */
    while (lo < hi) {
        const int mid = lo + (hi - lo + 1) / 2;
        if (doc->page_start[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo + 1;
}

/* A chunk's FTS title: the file's name, then the page title or its pages
 * ("report.pdf p. 3", "report.pdf pp. 3-4", "guide.html - Setting up"). */
static void chunk_title(const char *path, const rag_doc *doc, const rag_span *sp, char *out,
                        size_t cap) {
    const int k = snprintf(out, cap, "%s", base_name(path));
    const size_t n = k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
    if (doc->n_pages) {
        const int a = page_at(doc, sp->start), b = page_at(doc, sp->start + sp->len - 1);
        if (a == b)
            snprintf(out + n, cap - n, " p. %d", a);
        else
            snprintf(out + n, cap - n, " pp. %d-%d", a, b);
    } else if (doc->title[0]) {
        snprintf(out + n, cap - n, " - %s", doc->title);
    }
}

/* The rows of one document (inside the caller's transaction). */
static hearth_err write_doc(ingest *g, const char *path, const struct stat *fs, uint64_t hash,
                            const rag_doc *text, const rag_span *sp, size_t n) {
    sqlite3 *db = g->x->db;
    sqlite3_stmt *doc = NULL, *chunk = NULL, *fts = NULL;
    hearth_err err = HEARTH_OK;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO docs(path, size, mtime_ns, hash, n_chunks, indexed_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &doc, NULL) ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO chunks(doc_id, ord, byte_start, byte_len, vec) "
                           "VALUES (?, ?, ?, ?, ?)",
                           -1, &chunk, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO chunks_fts(rowid, title, body) VALUES (?, ?, ?)", -1,
                           &fts, NULL)) {
        err = store_fail(db, "preparing the writes");
        goto done;
    }
    sqlite3_bind_text(doc, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(doc, 2, (int64_t)fs->st_size);
    sqlite3_bind_int64(doc, 3, mtime_ns(fs));
    sqlite3_bind_int64(doc, 4, (int64_t)hash);
    sqlite3_bind_int64(doc, 5, (int64_t)n);
    sqlite3_bind_int64(doc, 6, (int64_t)time(NULL));
    if (sqlite3_step(doc) != SQLITE_DONE) {
        err = store_fail(db, "recording a file");
        goto done;
    }
    const int64_t doc_id = sqlite3_last_insert_rowid(db);
    const int d = g->p->embedder ? g->p->embedder->n_dims : 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(chunk);
        sqlite3_reset(fts);
        sqlite3_bind_int64(chunk, 1, doc_id);
        sqlite3_bind_int64(chunk, 2, (int64_t)i);
        sqlite3_bind_int64(chunk, 3, (int64_t)sp[i].start);
        sqlite3_bind_int64(chunk, 4, (int64_t)sp[i].len);
        if (d)
            sqlite3_bind_blob(chunk, 5, g->vecs + i * (size_t)d, d * (int)sizeof(float),
                              SQLITE_STATIC);
        else
            sqlite3_bind_null(chunk, 5);
        if (sqlite3_step(chunk) != SQLITE_DONE) {
            err = store_fail(db, "writing a chunk");
            goto done;
        }
        sqlite3_bind_int64(fts, 1, sqlite3_last_insert_rowid(db));
        char title[PATH_MAX + 288];
        chunk_title(path, text, &sp[i], title, sizeof title);
        sqlite3_bind_text(fts, 2, title, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(fts, 3, text->text + sp[i].start, (int)sp[i].len, SQLITE_STATIC);
        if (sqlite3_step(fts) != SQLITE_DONE) {
            err = store_fail(db, "writing a chunk's text");
            goto done;
        }
    }
    g->st->chunks_written += (int64_t)n;
done:
    sqlite3_finalize(doc);
    sqlite3_finalize(chunk);
    sqlite3_finalize(fts);
    return err;
}

static hearth_err embed_chunks(ingest *g, const char *text, const rag_span *sp, size_t n) {
    const rag_embedder *e = g->p->embedder;
    if (!e || !n) return HEARTH_OK;
    const size_t need = n * (size_t)e->n_dims;
    if (need > g->vecs_cap) {
        float *v = realloc(g->vecs, need * sizeof *v);
        if (!v) return hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory for %zu vectors", n);
        g->vecs = v;
        g->vecs_cap = need;
    }
    for (size_t i = 0; i < n; i++) {
        const hearth_err err =
            e->fn(e->user, text + sp[i].start, sp[i].len, g->vecs + i * (size_t)e->n_dims);
        if (err) return hr_wrap(err, "embedding chunk %zu: ", i);
    }
    return HEARTH_OK;
}

/* Reads a whole file of `size` bytes; NULL with *why set when it cannot. */
static char *read_all(const char *path, size_t size, const char **why) {
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(size + 1) : NULL;
    if (!f || !buf || fread(buf, 1, size, f) != size || fgetc(f) != EOF) {
        *why = !f ? hr_strerror(errno) : !buf ? "out of memory" : "changed while being read";
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    if (buf) buf[size] = '\0';
    return buf;
}

static hearth_err ingest_file(ingest *g, const char *path, const struct stat *fs) {
    rag_index *x = g->x;
    int64_t id, size = 0, mtime = 0;
    uint64_t hash = 0;
    hearth_err err = lookup(x, path, &id, &size, &mtime, &hash);
    if (err) return err;
    if (id && size == (int64_t)fs->st_size && mtime == mtime_ns(fs) &&
        !(g->reextract && rag_format_of(path, "", 0) != RAG_FORMAT_TEXT)) {
        g->st->unchanged++;
        report(g, path, "unchanged", NULL);
        return HEARTH_OK;
    }
    if ((uint64_t)fs->st_size > g->p->max_file_bytes) {
        char why[96];
        snprintf(why, sizeof why, "%lld bytes, over the limit of %llu", (long long)fs->st_size,
                 (unsigned long long)g->p->max_file_bytes);
        g->st->skipped++;
        report(g, path, "skipped", why);
        return HEARTH_OK;
    }
    const char *why = NULL;
    char whybuf[192];
    const size_t n_bytes = (size_t)fs->st_size;
    char *raw = read_all(path, n_bytes, &why);
    const rag_format format = raw ? rag_format_of(path, raw, n_bytes) : RAG_FORMAT_TEXT;
    const uint64_t h = raw ? content_hash(raw, n_bytes, format) : 0;
    if (raw && id && h == hash) { /* touched, not changed */
        err = exec_id(x, "UPDATE docs SET mtime_ns = ?2 WHERE id = ?1", id, mtime_ns(fs));
        free(raw);
        if (!err) g->st->unchanged++, report(g, path, "unchanged", NULL);
        return err;
    }
    rag_doc text = {0};
    if (raw &&
        (why = rag_extract(format, raw, n_bytes, (size_t)g->p->max_file_bytes, &text, whybuf,
                           sizeof whybuf)) == NULL &&
        text.text == raw)
        raw = NULL; /* plain text: the document owns the buffer now */
    free(raw);
    if (why) {
        g->st->skipped++;
        report(g, path, "skipped", why);
        return HEARTH_OK;
    }
    rag_span *sp = NULL;
    size_t n = 0;
    err = rag_chunk(text.text, text.len, g->p->chunk_words, g->p->overlap_words, &sp, &n);
    if (!err) err = embed_chunks(g, text.text, sp, n);
    if (!err && sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
        err = store_fail(x->db, "starting a transaction");
    else if (!err) {
        if (id) err = forget(x, id);
        if (!err) err = write_doc(g, path, fs, h, &text, sp, n);
        if (!err && sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL))
            err = store_fail(x->db, "committing");
        if (err) sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
    }
    free(sp);
    rag_doc_fini(&text);
    if (err) return hr_wrap(err, "%s: ", path);
    if (id)
        g->st->updated++;
    else
        g->st->added++;
    report(g, path, id ? "updated" : "added", NULL);
    return HEARTH_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static hearth_err walk(ingest *g, const char *path, int depth);

/* A directory's entries in name order, so that indexing is deterministic. */
// NOLINTNEXTLINE(misc-no-recursion): depth <= MAX_DEPTH (64)
static hearth_err walk_dir(ingest *g, const char *dir, int depth) {
    if (depth > MAX_DEPTH) {
        g->st->skipped++;
        report(g, dir, "skipped", "nested too deep");
        return HEARTH_OK;
    }
    DIR *d = opendir(dir);
    if (!d) {
        g->st->skipped++;
        report(g, dir, "skipped", hr_strerror(errno));
        return HEARTH_OK;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    hearth_err err = HEARTH_OK;
    const struct dirent *e;
    while (!err && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden files (.git) */
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **m = realloc(names, cap * sizeof *m);
            if (!m) {
                err = hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory listing '%s'", dir);
                break;
            }
            names = m;
        }
        if (!(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2)))
            err = hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory listing '%s'", dir);
        else
            sprintf(names[n++], "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name);
    }
    closedir(d);
    if (!err && n) qsort(names, n, sizeof *names, by_name); /* names is NULL when n is 0 */
    for (size_t i = 0; i < n; i++) {
        if (!err) err = walk(g, names[i], depth + 1);
        free(names[i]);
    }
    free(names);
    return err;
}

// NOLINTNEXTLINE(misc-no-recursion): through walk_dir, depth <= MAX_DEPTH
static hearth_err walk(ingest *g, const char *path, int depth) {
    struct stat fs;
    if (lstat(path, &fs) != 0) {
        g->st->skipped++;
        report(g, path, "skipped", hr_strerror(errno));
        return HEARTH_OK;
    }
    if (S_ISDIR(fs.st_mode)) return walk_dir(g, path, depth);
    if (!S_ISREG(fs.st_mode)) {
        g->st->skipped++;
        report(g, path, "skipped", S_ISLNK(fs.st_mode) ? "a symbolic link" : "not a regular file");
        return HEARTH_OK;
    }
    return ingest_file(g, path, &fs);
}

/* Forgets the documents under root (a canonical path) whose file is gone. */
static hearth_err prune(ingest *g, const char *root) {
    rag_index *x = g->x;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT id, path FROM docs WHERE path = ?1 OR "
                           "(substr(path, 1, length(?1) + 1) = ?1 || '/') ORDER BY path",
                           -1, &st, NULL))
        return store_fail(x->db, "listing the files to prune");
    sqlite3_bind_text(st, 1, root, -1, SQLITE_STATIC);
    int64_t *gone = NULL;
    size_t n = 0, cap = 0;
    hearth_err err = HEARTH_OK;
    int rc;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct stat fs;
        const char *path = (const char *)sqlite3_column_text(st, 1);
        if (!path || (lstat(path, &fs) == 0 && S_ISREG(fs.st_mode))) continue;
        report(g, path, "removed", NULL);
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *m = realloc(gone, cap * sizeof *m);
            if (!m) {
                err = hr_fail(HEARTH_ERR_NOMEM, "rag: out of memory pruning");
                break;
            }
            gone = m;
        }
        gone[n++] = sqlite3_column_int64(st, 0);
    }
    if (!err && rc != SQLITE_DONE) err = store_fail(x->db, "listing the files to prune");
    sqlite3_finalize(st);
    if (!err && n && sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
        err = store_fail(x->db, "starting a transaction");
    else if (!err && n) {
        for (size_t i = 0; i < n && !err; i++) err = forget(x, gone[i]);
        if (!err && sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL))
            err = store_fail(x->db, "committing");
        if (err) sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
        if (!err) g->st->removed += (int64_t)n;
    }
    free(gone);
    return err;
}

/* The index's chunk settings and model must be these, or be unset (an
 * empty index takes them). */
static hearth_err settle_settings(rag_index *x, const rag_ingest_params *p) {
    rag_info in;
    hearth_err err = rag_info_get(x, &in);
    if (err) return err;
    const char *model = p->embedder ? p->embedder->model : "";
    const int dims = p->embedder ? p->embedder->n_dims : 0;
    if (in.n_chunks > 0) {
        if (in.chunk_words != p->chunk_words || in.overlap_words != p->overlap_words)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "rag: the index was built with chunks of %d words (overlap %d), not "
                           "%d (%d); use those settings or a new index",
                           in.chunk_words, in.overlap_words, p->chunk_words, p->overlap_words);
        if (strcmp(in.model, model) || in.n_dims != dims)
            return hr_fail(HEARTH_ERR_INVALID_ARG,
                           "rag: the index holds %s, not %s%s; use the same model (or none) or "
                           "a new index",
                           *in.model ? "vectors of" : "no vectors", *model ? "vectors of " : "none",
                           model);
        return HEARTH_OK;
    }
    char v[32];
    snprintf(v, sizeof v, "%d", p->chunk_words);
    if (!err) err = rag_meta_set(x, "chunk_words", v);
    snprintf(v, sizeof v, "%d", p->overlap_words);
    if (!err) err = rag_meta_set(x, "overlap_words", v);
    snprintf(v, sizeof v, "%d", dims);
    if (!err) err = rag_meta_set(x, "dims", v);
    if (!err) err = rag_meta_set(x, "model", model);
    return err;
}

hearth_err rag_ingest(rag_index *x, const char *const *paths, int n_paths,
                      const rag_ingest_params *p, rag_ingest_stats *stats) {
    if (p->max_file_bytes == 0 || p->max_file_bytes > (uint64_t)1 << 30)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "rag: a file limit of %llu bytes (1 B..1 GiB)",
                       (unsigned long long)p->max_file_bytes);
    if (p->embedder && (p->embedder->n_dims <= 0 || !p->embedder->fn || !p->embedder->model ||
                        strlen(p->embedder->model) >= sizeof((rag_info *)0)->model))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "rag: an embedder without dimensions or a name");
    rag_span *probe = NULL;
    size_t n_probe = 0;
    hearth_err err = rag_chunk("", 0, p->chunk_words, p->overlap_words, &probe, &n_probe);
    free(probe);
    if (!err) err = settle_settings(x, p);
    char version[16] = "";
    bool found = false;
    if (!err) err = rag_meta_get(x, "extract_version", version, sizeof version, &found);
    rag_ingest_stats st = {0};
    ingest g = {.x = x, .p = p, .st = &st, .reextract = strcmp(version, EXTRACT_VERSION) != 0};
    for (int i = 0; i < n_paths && !err; i++) {
        char *canon = realpath(paths[i], NULL);
        if (!canon) {
            st.skipped++;
            report(&g, paths[i], "skipped", hr_strerror(errno));
            continue;
        }
        err = walk(&g, canon, 0);
        if (!err && p->prune) err = prune(&g, canon);
        free(canon);
    }
    if (!err && g.reextract) err = rag_meta_set(x, "extract_version", EXTRACT_VERSION);
    free(g.vecs);
    x->data_version = x->info_version = -1; /* our own commits do not move data_version */
    if (stats) *stats = st;
    return err;
}
