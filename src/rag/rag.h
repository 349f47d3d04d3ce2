/*
 * rag.h - the retrieval layer: local files cut into chunks, kept in one
 * SQLite database with an FTS5 full-text index (BM25) and, when a model
 * embedded them, one vector per chunk; a query returns the best chunks by
 * BM25, by cosine similarity, or by both fused (reciprocal rank fusion).
 *
 * The layer knows nothing of models: vectors come from the caller (an
 * embedding callback when indexing, a query vector when searching), so the
 * CLI can embed with a session of its own and the server through its
 * scheduler. Prefix rag_. docs/rag.md describes the method and the schema.
 */
#ifndef HEARTH_RAG_H
#define HEARTH_RAG_H

#include "hearth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- chunking (rag_chunk.c) ----------------------------------------------
 * A chunk is a byte range of a document: whole sentences, at most max_words
 * words, never split inside a UTF-8 sequence. Paragraphs (separated by a
 * blank line, or a line opening with '#') are kept whole when they fit in
 * the room a chunk has left; a paragraph that does not fit starts a new
 * chunk, and one longer than a chunk is cut between sentences, the next
 * piece repeating the previous piece's last sentences up to overlap_words
 * (context for a sentence that leans on the one before). A sentence longer
 * than max_words is cut between words. Each character of a script written
 * without spaces (Han, kana, Thai, ...) is a word of its own. */
typedef struct rag_span {
    size_t start, len; /* bytes of the document */
    int n_words;
} rag_span;

/* The end of the word that starts at t[i] (i < len, t[i] not white space):
 * one character of an unspaced script, or the run up to white space or the
 * next such character. */
size_t rag_word_end(const char *t, size_t len, size_t i);

/* The chunks of text[0..len) into *out (malloc'd, the caller frees), *n_out
 * of them; no chunk for a text without words. max_words in [8, 8192],
 * overlap_words in [0, max_words / 2]. */
hearth_err rag_chunk(const char *text, size_t len, int max_words, int overlap_words, rag_span **out,
                     size_t *n_out);

/* ---- the index (rag_store.c, rag_ingest.c, rag_search.c) ------------------ */
typedef struct rag_index rag_index;

/* Opens (creating, when writable) the index database at path. A read-only
 * index fails when the file does not exist. One handle is used by one
 * thread at a time; rag_search_* reopen nothing, so a server serializes its
 * searches on one handle. */
hearth_err rag_open(const char *path, bool writable, rag_index **out);
void rag_close(rag_index *x); /* NULL: no-op */

/* What the index holds. model is "" when no vectors were stored. */
typedef struct rag_info {
    int64_t n_docs, n_chunks, n_vectors;
    int n_dims;
    char model[256]; /* the embedding model's identity (rag_model_id) */
    int chunk_words, overlap_words;
} rag_info;

hearth_err rag_info_get(rag_index *x, rag_info *out);

/* The identity stored with an index's vectors, so that a query is embedded
 * by the model that embedded the chunks: the model file's name and size, the
 * dimensions and the pooling ("qwen.gguf:397808192:896:mean"). */
hearth_err rag_model_id(const char *model_path, int n_dims, const char *pooling, char out[256]);

/* Embeds text[0..len) into out[n_dims] (unit length). */
typedef hearth_err (*rag_embed_fn)(void *user, const char *text, size_t len, float *out);

typedef struct rag_embedder {
    rag_embed_fn fn;
    void *user;
    int n_dims;
    const char *model; /* identity stored with the vectors: a query must bring the same */
} rag_embedder;

typedef struct rag_ingest_params {
    int chunk_words;              /* default 200 */
    int overlap_words;            /* default 40 */
    uint64_t max_file_bytes;      /* larger files are skipped; default 16 MiB */
    bool prune;                   /* forget indexed files under the given roots that are gone */
    const rag_embedder *embedder; /* NULL: text only (BM25) */
    /* Called for every file looked at: action is "added", "updated",
     * "unchanged", "removed" or "skipped" (why says why). May be NULL. */
    void (*progress)(void *user, const char *path, const char *action, const char *why);
    void *user;
} rag_ingest_params;

rag_ingest_params rag_ingest_default_params(void);

typedef struct rag_ingest_stats {
    int64_t added, updated, unchanged, removed, skipped, chunks_written;
} rag_ingest_stats;

/* Indexes the files named by paths (files, or directories walked
 * recursively; names starting with '.' are skipped, symbolic links are not
 * followed). A file counts as changed when its size, mtime or content hash
 * differs from what the index recorded; a changed file's chunks (and
 * vectors) are replaced in one transaction. HTML and PDF files are indexed
 * by the text extracted from them (rag_extract.c; their chunks' byte ranges
 * are then in that text); other files that are not UTF-8 text (a NUL byte,
 * an invalid sequence) are skipped with the reason. Chunk
 * settings and the embedding model are the index's: given different ones
 * for an index that has chunks, it fails (HEARTH_ERR_INVALID_ARG) rather
 * than mix two kinds. */
hearth_err rag_ingest(rag_index *x, const char *const *paths, int n_paths,
                      const rag_ingest_params *p, rag_ingest_stats *stats);

typedef enum rag_mode {
    RAG_MODE_AUTO, /* hybrid when the index has vectors and a query vector is given, else BM25 */
    RAG_MODE_BM25,
    RAG_MODE_VECTOR,
    RAG_MODE_HYBRID,
} rag_mode;

bool rag_mode_parse(const char *name, rag_mode *out);
const char *rag_mode_name(rag_mode mode);

typedef struct rag_hit {
    int64_t chunk_id;
    char *path;         /* the file, as it was indexed */
    char *source;       /* how to cite it: the file's name, with an HTML page's title
                           ("guide.html - Setting up") or a PDF's pages ("report.pdf p. 3") */
    char *text;         /* the chunk */
    int64_t byte_start; /* in the file; for HTML and PDF, in the text extracted from it */
    int64_t byte_len;
    double score;  /* what ranked it: BM25 (higher is better), cosine, fused RRF, or a
                      reranker's score once reranked */
    int rank_bm25; /* 1-based rank in each list; 0: not in it */
    int rank_vector;
    bool reranked;          /* rag_rerank ordered it */
    double retrieval_score; /* then: the first stage's score */
} rag_hit;

typedef struct rag_hits {
    rag_hit *hit;
    size_t n;
    rag_mode mode; /* the one used (AUTO resolved) */
} rag_hits;

typedef struct rag_query {
    const char *text; /* the question */
    size_t len;
    const float *vector; /* its embedding by the index's model, or NULL */
    const char *model;   /* that model's identity (checked against the index's) */
    int k;               /* results wanted, 1..100 */
    rag_mode mode;
} rag_query;

/* The k best chunks for q into *out (the caller frees with rag_hits_free).
 * BM25 uses the query's words (at most 64, each a quoted FTS5 term, OR-ed:
 * nothing in the text can act as FTS5 syntax). Vector and hybrid need the
 * index's vectors and a query vector from the same model (else
 * HEARTH_ERR_INVALID_ARG). Hybrid fuses the two lists' top 4k by reciprocal
 * rank, 1/(60 + rank) summed. */
hearth_err rag_search(rag_index *x, const rag_query *q, rag_hits *out);
void rag_hits_free(rag_hits *h);

/* ---- the second stage (rag_rerank.c) ----------------------------------------
 * A reranker (a cross-encoder, hearth_rank_batch) reads the question and
 * each of the first stage's best candidates together; its k best are kept.
 * The CLI scores the pairs with a session of its own, the server through
 * its scheduler; both build them here. */

/* How many candidates the first stage gives the reranker for k results:
 * depth when > 0, else max(4k, 20) at most 100; never fewer than k. */
int rag_rerank_depth(int k, int depth);

/* The tokens of the pair (question, doc) for the reranker m
 * (hearth_tokenize_rerank) into ids[0..cap), *n_out of them. When the pair
 * does not fit, the document's tail is cut, at a character's start, until
 * it does (*cut set; else cleared): a chunk longer than the reranker's
 * context is judged by its head. HEARTH_ERR_INVALID_ARG when the question
 * alone does not fit. */
hearth_err rag_rerank_pair(const hearth_model *m, const char *question, size_t question_len,
                           const char *doc, int32_t *ids, size_t cap, size_t *n_out, bool *cut);

/* Reorders h by scores[0..h->n) (the reranker's, one a hit), best first,
 * keeps the first k and frees the rest; each hit's score becomes its
 * reranker's, the first stage's kept as retrieval_score (rank_bm25 /
 * rank_vector still say where the first stage put it). */
hearth_err rag_rerank(rag_hits *h, const float *scores, size_t k);

/* ---- what hits become (rag_prompt.c) --------------------------------------- */
/* The user message that asks question from the hits: an instruction to
 * answer from them and cite their numbers, each hit numbered "[i] name"
 * then its text, then "Question: " and the question. malloc'd,
 * NUL-terminated; NULL when out of memory. */
char *rag_user_message(const rag_hits *h, const char *question);

struct cJSON;
/* One hit as {"rank", "score", "path", "source", "byte_start", "byte_len",
 * "rank_bm25", "rank_vector", "text"}, with "retrieval_score" after "score"
 * when reranked (the caller owns it; NULL when out of memory). */
struct cJSON *rag_hit_json(const rag_hit *h, int rank);

#endif
