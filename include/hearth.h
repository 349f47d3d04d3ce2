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

/* A LoRA adapter applied at inference time, without merging (docs/lora.md):
 * a GGUF file in llama.cpp's adapter format (general.type "adapter",
 * adapter.type "lora", the base model's general.architecture, tensors
 * "<weight>.lora_a" / ".lora_b"). Every weight W it names computes
 * W x + s * B (A x) with s = scale * alpha / rank (scale alone when the
 * file's adapter.lora.alpha is 0 or absent), as llama.cpp's --lora-scaled. */
typedef struct hearth_lora {
    const char *path; /* the adapter file */
    float scale;      /* 1: as trained (llama.cpp's --lora); 0: loaded and checked, not applied */
} hearth_lora;

typedef struct hearth_model_params {
    int n_threads; /* threads for the model's pool; <= 0: physical cores */
    /* Adapters, applied in this order (at most 64). The array and its paths
     * are read during hearth_model_load only; the model maps each file and
     * keeps it mapped until hearth_model_free. A file that does not fit the
     * model (architecture, names, shapes, types, ranks) fails the load. */
    const hearth_lora *loras;
    int n_loras;
    /* Keep the weights as the file stores them (llama.cpp's --no-repack):
     * by default the products' weights are repacked at load into the
     * layout this CPU's kernels read fastest, where they have one (same
     * results; the file's pages of them are handed back). */
    bool no_repack;
    /* RoPE settings that replace the file's, as llama.cpp's --rope-scaling,
     * --rope-scale, --rope-freq-base and --yarn-orig-ctx: rope_scaling NULL
     * keeps the file's type, else "none", "linear" or "yarn"; rope_scale is
     * the context multiplier (positions are divided by it), and 0 keeps the
     * file's factor, base or original context. */
    const char *rope_scaling;
    float rope_scale, rope_freq_base;
    int yarn_orig_ctx;
} hearth_model_params;

HEARTH_API hearth_model_params hearth_model_default_params(void);

/* Maps the GGUF file at `path`, validates it and binds its tensors to the
 * architecture it names, then its adapters (params->loras). The weights stay
 * in the mapping. On success *out owns the model; free it with
 * hearth_model_free. */
HEARTH_API hearth_err hearth_model_load(const char *path, const hearth_model_params *params,
                                        hearth_model **out);
HEARTH_API void hearth_model_free(hearth_model *model);

HEARTH_API int hearth_model_n_vocab(const hearth_model *model);
HEARTH_API int hearth_model_n_ctx_train(const hearth_model *model);
HEARTH_API int hearth_model_n_embd(const hearth_model *model);
/* "llama", "qwen2", ... Owned by the model. */
HEARTH_API const char *hearth_model_arch(const hearth_model *model);
/* LoRA adapters the model was loaded with. */
HEARTH_API int hearth_model_n_loras(const hearth_model *model);
/* false for an embedding model (an encoder: bert, nomic-bert), which has no
 * output layer: hearth_embed works, hearth_decode refuses it. */
HEARTH_API bool hearth_model_generates(const hearth_model *model);

/* Element type of the KV cache (one type for K and V). hearth_session_default_params
 * gives HEARTH_KV_F16, llama.cpp's default: half of F32's memory, for logits
 * within about 0.006 of an F32 cache's; HEARTH_KV_F32 is what llama.cpp's
 * conformance goldens were made with (0, so a zero-initialised
 * hearth_session_params asks for it). HEARTH_KV_Q8_0 keeps
 * both as Q8_0 blocks (32 values and an fp16 scale, 34 bytes: a quarter of
 * F32's memory, about half of F16's); a head size that is not a multiple
 * of 32 is padded with zeros to whole blocks. Its attention quantizes the
 * query to Q8_0 too, as llama.cpp's does: logits differ from an F32
 * cache's about as much as with llama.cpp's q8_0 cache, about 20 times an
 * F16 cache's difference (docs/kv-cache.md). */
typedef enum hearth_kv_type {
    HEARTH_KV_F32 = 0,
    HEARTH_KV_F16 = 1,
    HEARTH_KV_Q8_0 = 2
} hearth_kv_type;

typedef struct hearth_session_params {
    int n_ctx;   /* positions in the KV cache; <= 0: min(model's training context, 4096) */
    int n_batch; /* most tokens evaluated in one forward pass; <= 0: 512 */
    hearth_kv_type kv_type; /* element type of the KV cache (default HEARTH_KV_F16) */
    int n_seq_max;          /* sessions hearth_decode_multi decodes together with this one first
                               whose logits it keeps at one output product (room for their rows);
                               <= 0: 1 (more then cost one product each) */
    /* Keep every position in the layers of a sliding window too (llama.cpp's
     * --swa-full). Otherwise (the default) those layers keep only their
     * window, the batch and a margin (docs/kv-cache.md): much less memory
     * for long contexts, the same logits, but a truncation
     * (hearth_session_keepable) or a context shift can no longer go back
     * to the positions they dropped. */
    bool swa_full;
} hearth_session_params;

HEARTH_API hearth_session_params hearth_session_default_params(void);

/* Creates a session: the KV cache and every activation buffer, sized once.
 * The model must outlive the session. A model's thread pool runs one decode
 * at a time: use a model's sessions from one thread at a time. */
HEARTH_API hearth_err hearth_session_new(hearth_model *model, const hearth_session_params *params,
                                         hearth_session **out);
HEARTH_API void hearth_session_free(hearth_session *session);

/* Positions already in the KV cache, and the capacity. */
HEARTH_API int hearth_session_pos(const hearth_session *session);
HEARTH_API int hearth_session_n_ctx(const hearth_session *session);
/* Memory a session stands on, in bytes. The weights stay in the model's
 * mapped file (paged in as they are read, shared with the page cache); the
 * KV cache and the activation buffers are allocated once, at creation.
 * Peak RSS is about their sum plus the tokenizer's tables and the program. */
typedef struct hearth_memory {
    uint64_t file_bytes;   /* the mapped model file */
    uint64_t kv_bytes;     /* K and V caches (and LFM2's convolution inputs, kept alike) */
    uint64_t buffer_bytes; /* activations, logits, converted inputs, attention work */
    /* Weights repacked at load (hearth_model_params.no_repack): the packed
     * copy (anonymous memory) and those weights' bytes in the file, whose
     * pages were handed back, so the model holds about file_bytes -
     * packed_file_bytes + packed_bytes. */
    uint64_t packed_bytes, packed_file_bytes;
} hearth_memory;
HEARTH_API hearth_memory hearth_session_memory(const hearth_session *session);
/* Forgets every position >= pos (pos <= current position). With a
 * sliding-window cache, pos must be 0, the current position or at least
 * one whose window the cache still holds (HEARTH_ERR_INVALID_ARG else,
 * the session unchanged): hearth_session_keepable says which. */
HEARTH_API hearth_err hearth_session_truncate(hearth_session *session, int pos);
/* The most of the first n positions (0 <= n <= the position) that
 * hearth_session_truncate can keep: n, or 0 when the session's
 * sliding-window layers dropped keys that position n's window needs (they
 * keep their window, the batch and a margin of 256 positions; none are
 * dropped with hearth_session_params.swa_full). */
HEARTH_API int hearth_session_keepable(const hearth_session *session, int n);
/* Makes dst hold src's first n positions (0 <= n <= src's position): their
 * KV cache and tokens are copied, dst's previous content is dropped and its
 * position becomes n, as if dst had evaluated those tokens itself. When n is
 * src's position and src's last logits are those of its last token (a
 * decode computed them; a truncation loses them), dst takes them too, so a
 * generation on dst whose prompt is exactly those n tokens samples at once
 * and evaluates nothing (hearth_gen_new): several generations from one
 * prompt evaluate it once. Both sessions must belong to the same model with
 * the same KV type (HEARTH_ERR_INVALID_ARG); n must fit in dst's context
 * (HEARTH_ERR_CONTEXT_FULL). No forward pass: it costs a copy of n positions
 * of K and V per layer. Neither session may be in use elsewhere. */
HEARTH_API hearth_err hearth_session_copy(hearth_session *dst, const hearth_session *src, int n);
/* Context shift (llama.cpp's --context-shift; docs/kv-cache.md): forgets
 * positions [n_keep, n_keep + n_discard) and moves every later one down by
 * n_discard, its cached keys rotated back by n_discard positions with the
 * model's own RoPE (an F16 key is rounded again, a Q8_0 key re-quantized);
 * the position drops by n_discard. The moved tokens' keys and values stay
 * what they were computed from, text that saw the discarded part: what that
 * part said is forgotten, not recomputed. The last logits are dropped (the
 * next decode computes new ones). HEARTH_ERR_INVALID_ARG unless 0 <= n_keep,
 * 0 <= n_discard and n_keep + n_discard <= the position;
 * HEARTH_ERR_UNSUPPORTED for an encoder or a model without rotary
 * positions. */
HEARTH_API hearth_err hearth_session_shift(hearth_session *session, int n_keep, int n_discard);
/* The token ids the session holds at positions 0..pos-1 (hearth_session_pos);
 * valid until the session changes. *n_exact (when not NULL) receives how
 * many of the first ones hold what evaluating them afresh would: all of
 * them, but after a context shift only those before its n_keep (what moved
 * keeps traces of the discarded text). hearth_gen_new reuses no more. */
HEARTH_API const int32_t *hearth_session_tokens(const hearth_session *session, int *n_exact);

/* Session files (llama.cpp's prompt cache and slot save/restore;
 * docs/kv-cache.md, "Session files"). hearth_session_save writes what the
 * session holds to `path`: the token ids at positions 0..pos-1, their keys
 * and values in every layer and kv head byte for byte (one position after
 * another, whatever the session's context), its last logits when it has
 * them (hearth_session_copy's condition), how many leading positions are
 * exact after a context shift, and what identifies the model (its
 * architecture and sizes, a hash of the GGUF's metadata, tensor table and
 * samples of every tensor, and of the LoRA adapters applied) and the KV
 * type. The file is written beside `path` and renamed over it: a reader
 * never sees half of one. *n_bytes (may be NULL) receives its size.
 * HEARTH_ERR_UNSUPPORTED for an encoder's session; HEARTH_ERR_IO. */
HEARTH_API hearth_err hearth_session_save(const hearth_session *session, const char *path,
                                          uint64_t *n_bytes);
/* Replaces the session's content with such a file's, as if its tokens had
 * just been evaluated: a generation whose prompt starts with them reuses
 * them (hearth_gen_new), one whose prompt is exactly them samples at once
 * when the file has their logits; positions a context shift moved stay
 * marked so (hearth_session_tokens' n_exact). The file is untrusted: every
 * size is checked against its length and the session's, every token id
 * against the vocabulary, before anything changes. Refused, with the
 * session unchanged: a file for another model, adapters or KV type
 * (HEARTH_ERR_INVALID_ARG), more positions than the context
 * (HEARTH_ERR_CONTEXT_FULL), a malformed, truncated or inconsistent one
 * (HEARTH_ERR_FORMAT), a missing one (HEARTH_ERR_IO). The session may have
 * any context that holds the positions (LongRoPE models: one that takes the
 * same RoPE factors). *n_bytes (may be NULL) receives the file's size. */
HEARTH_API hearth_err hearth_session_load(hearth_session *session, const char *path,
                                          uint64_t *n_bytes);

/* Evaluates n tokens at the next n positions (split into batches of at most
 * n_batch). If `logits` is not NULL it receives n_vocab floats per token when
 * all_logits is true ([n][n_vocab]), or only the last token's row otherwise.
 * Going past n_ctx fails with HEARTH_ERR_CONTEXT_FULL and changes nothing. */
HEARTH_API hearth_err hearth_decode(hearth_session *session, const int32_t *ids, int n,
                                    float *logits, bool all_logits);

/* Continuous batching: one forward pass over tokens of several sessions.
 * Entry i appends ids[i] to sessions[i] at that session's next position; a
 * session's entries must be consecutive (in order). Every session must belong
 * to the same model with the same n_ctx and KV type; the activations use the
 * buffers of sessions[0], so n <= its n_batch. If `logits` is not NULL it
 * receives one row per entry ([n][n_vocab]). Either way every session keeps
 * its last entry's logits, as after hearth_decode (hearth_gen reads them).
 * A session that would overflow its context fails the whole call with
 * HEARTH_ERR_CONTEXT_FULL, as does any invalid entry with its own error,
 * before anything changes. The sessions must not be in use elsewhere. */
HEARTH_API hearth_err hearth_decode_multi(hearth_session *const *sessions, const int32_t *ids,
                                          int n, float *logits);

/* ---- embeddings ----------------------------------------------------------
 * The values are GGUF's <arch>.pooling_type codes. */
typedef enum hearth_pooling {
    HEARTH_POOL_MEAN = 1, /* the mean over the tokens */
    HEARTH_POOL_CLS = 2,  /* the first token's */
    HEARTH_POOL_LAST = 3  /* the last token's (what a causal LM's next token reads) */
} hearth_pooling;

/* The model's pooling_type when it names cls or last, else mean. */
HEARTH_API hearth_pooling hearth_model_pooling(const hearth_model *model);
/* "mean", "cls", "last"; and back (false for another name). */
HEARTH_API const char *hearth_pooling_name(hearth_pooling pooling);
HEARTH_API bool hearth_pooling_parse(const char *name, hearth_pooling *out);

/* The embedding of ids[0..n): the final normalised hidden states (what the
 * output layer reads; llama.cpp's embeddings) of the tokens evaluated from
 * position 0, pooled into out[n_embd], L2-normalised when `normalize`. The
 * session's previous content is dropped and it is left empty: the output
 * layer never runs, so there are no logits to sample from. */
HEARTH_API hearth_err hearth_embed(hearth_session *session, const int32_t *ids, int n,
                                   hearth_pooling pooling, bool normalize, float *out);
/* Several texts at once, each text's vector what hearth_embed gives it
 * alone: its rows get the same arithmetic, only their places in the batch
 * differ, on which no row's result depends in default mode (bit for bit; in
 * exact mode llama.cpp's products may sum a batch in another order, a
 * difference in the last bits). Text i is n_ids[i] tokens, the texts back
 * to back in ids; its vector goes to out[i * n_embd ..]. The texts run as
 * separate sequences in shared forward passes: a pass takes whole texts in
 * order while their tokens fit in the session's batch (n_batch) and their
 * keys in its context, each from a 16-position boundary; a text longer than
 * n_batch runs alone, as hearth_embed runs it. Many short texts thus cost
 * one pass over the weights per batch instead of one per text. Every text
 * is checked first (the messages name it: "text 3: ..."); the session is
 * left as hearth_embed leaves it. */
HEARTH_API hearth_err hearth_embed_batch(hearth_session *session, const int32_t *ids,
                                         const int *n_ids, int n_texts, hearth_pooling pooling,
                                         bool normalize, float *out);

/* ---- reranking -------------------------------------------------------------
 * A reranker (a cross-encoder: bge-reranker, ms-marco-MiniLM, jina-reranker,
 * Qwen3-Reranker) reads a query and a document together and scores how well
 * the document answers the query; its file says so (pooling_type rank) and
 * carries a classification head (cls.weight, cls.output.weight). */

/* Whether the model is a reranker. */
HEARTH_API bool hearth_model_ranks(const hearth_model *model);
/* The tokens of one (query, document) pair as llama-server builds them: the
 * model's rerank prompt (tokenizer.chat_template.rerank) with {query} and
 * {document} filled in when it has one (its control tokens parsed), else
 * [BOS] query [EOS] [SEP] document [EOS], each special token where the
 * vocabulary asks for it (the separator: tokenizer.ggml.add_sep_token), EOS
 * standing in for SEP when there is none. ids/cap/n_out as hearth_tokenize. */
HEARTH_API hearth_err hearth_tokenize_rerank(const hearth_model *model, const char *query,
                                             size_t query_len, const char *doc, size_t doc_len,
                                             int32_t *ids, size_t cap, size_t *n_out);
/* The scores of n_texts pairs (tokenized as above, back to back in ids as
 * for hearth_embed_batch) into scores[n_texts]: higher is more relevant. An
 * encoder's score is its first label's logit (unbounded, as llama.cpp's);
 * a decoder's (Qwen3-Reranker) the probability of its first label, "yes".
 * The texts run as hearth_embed_batch runs them; the session is left as it
 * leaves it. HEARTH_ERR_UNSUPPORTED for a model that is not a reranker. */
HEARTH_API hearth_err hearth_rank_batch(hearth_session *session, const int32_t *ids,
                                        const int *n_ids, int n_texts, float *scores);
/* order[0..n) = the indices of scores[0..n), best first (NaN last, equal
 * scores in their given order). */
HEARTH_API hearth_err hearth_rank_order(const float *scores, int n, int *order);

/* ---- images (docs/vision.md) ----------------------------------------------
 * A vision projector ("mmproj": llama.cpp's clip GGUF, made for one language
 * model) turns an image into rows of that model's input embeddings, which
 * hearth_decode_embd evaluates in place of tokens. Projector types: gemma3
 * (Gemma 3 4B, 12B, 27B). Images: PNG and JPEG. */
typedef struct hearth_vision hearth_vision;

/* Maps the projector file and checks it against `model` (its rows must be
 * the model's width). n_threads <= 0: physical cores. *out owns it; free it
 * with hearth_vision_free. */
HEARTH_API hearth_err hearth_vision_load(const char *path, const hearth_model *model, int n_threads,
                                         hearth_vision **out);
HEARTH_API void hearth_vision_free(hearth_vision *vision);
/* Rows of embeddings per image (Gemma 3: 256). */
HEARTH_API int hearth_vision_n_tokens(const hearth_vision *vision);
/* The side, in pixels, images are scaled to fit (Gemma 3: 896). */
HEARTH_API int hearth_vision_image_size(const hearth_vision *vision);
/* The projector type ("gemma3"). */
HEARTH_API const char *hearth_vision_projector(const hearth_vision *vision);
/* Decodes a PNG or JPEG image of len bytes, scales it to fit the tower's
 * square (aspect kept, black around it, as llama.cpp does) and runs the
 * tower and projector: out receives hearth_vision_n_tokens rows of the
 * model's n_embd floats. Thread-safe: calls on one handle take turns on
 * its threads (decoding and scaling run beside them). Each allocates its
 * activations (Gemma 3: about 300 MB) and frees them.
 * HEARTH_ERR_FORMAT: not a PNG or JPEG, or a damaged one;
 * HEARTH_ERR_INVALID_ARG: an image over 8192 pixels on a side. */
HEARTH_API hearth_err hearth_vision_encode(hearth_vision *vision, const void *image, size_t len,
                                           float *out);

/* Evaluates n rows of input embeddings (n_embd floats each, as
 * hearth_vision_encode writes them; the architecture's scaling of token
 * embeddings is not applied to them, as llama.cpp does not) at the next n
 * positions, in one forward pass: n <= the session's n_batch. bidirectional:
 * the rows attend to each other whatever their order, as Gemma 3's image
 * rows do (they still see every earlier position, and nothing later sees
 * past them). ids[i] is what the session records for position i
 * (hearth_session_tokens): each must be negative, so that no token matches
 * it; equal ids should mean equal rows (a prompt that reuses a cached
 * prefix compares them: hearth_gen_new skips negative ids it finds cached
 * and refuses to evaluate one). The last row's logits become the
 * session's, copied to `logits` when it is not NULL. HEARTH_ERR_UNSUPPORTED
 * for an encoder or a model with per-layer inputs (Gemma 3n, Gemma 4). */
HEARTH_API hearth_err hearth_decode_embd(hearth_session *session, const float *embd,
                                         const int32_t *ids, int n, bool bidirectional,
                                         float *logits);

/* Prompts with images. In a prompt's text HEARTH_MEDIA_MARKER stands for
 * the next image (llama.cpp's default marker). hearth_tokenize_media
 * tokenizes such a text as llama.cpp's mtmd does: BOS once when add_special
 * and the vocabulary asks for it, each piece of text between markers on
 * its own (parse_special as given), and for each image the projector's
 * opening text (Gemma 3: "<start_of_image>"), hearth_vision_n_tokens
 * negative ids (hearth_media_ids of hashes[i]: equal hashes, equal ids;
 * hearth_media_hash of the image's bytes is llama-server's choice), and its
 * closing text, those two with control tokens parsed. The markers must be
 * exactly n_images (HEARTH_ERR_INVALID_ARG). ids/cap/n_out as
 * hearth_tokenize. */
#define HEARTH_MEDIA_MARKER "<__media__>"
HEARTH_API uint64_t hearth_media_hash(const void *data, size_t len);
HEARTH_API void hearth_media_ids(uint64_t hash, int n, int32_t *ids);
HEARTH_API hearth_err hearth_tokenize_media(const hearth_model *model, const hearth_vision *vision,
                                            const char *text, size_t len, bool add_special,
                                            bool parse_special, const uint64_t *hashes,
                                            int n_images, int32_t *ids, size_t cap, size_t *n_out);
/* Brings the session to hold prompt[0..e), e the end of its last image:
 * nothing when it holds that much of the prompt already (what it holds
 * beyond is left for the generation to reuse), else the longest prefix it
 * holds is kept (never part of an image) and the rest evaluated, text with hearth_decode and each
 * image's rows with hearth_decode_embd from images[k] (the prompt's k-th image,
 * hearth_vision_n_tokens rows of n_embd floats). A generation on the whole
 * prompt (hearth_gen_new) then finds that prefix and evaluates only the
 * text after it (and counts what this evaluated as cached: *n_evaluated,
 * when not NULL, receives how many positions this call evaluated). Each
 * image's rows must fit in the session's n_batch. */
HEARTH_API hearth_err hearth_prefill_media(hearth_session *session, const hearth_vision *vision,
                                           const int32_t *prompt, int n_prompt,
                                           const float *const *images, int n_images,
                                           int *n_evaluated);

/* ---- text ----------------------------------------------------------------
 * The model's own tokenizer, from its GGUF metadata. Functions that fill a
 * caller's buffer fail with HEARTH_ERR_INVALID_ARG when it is too small and
 * still report the size needed in *n_out (call with cap 0 to measure). */

/* add_special: BOS/EOS as the model asks; parse_special: text such as
 * "<|eot_id|>" becomes that control token instead of plain text. */
HEARTH_API hearth_err hearth_tokenize(const hearth_model *model, const char *text, size_t len,
                                      bool add_special, bool parse_special, int32_t *ids,
                                      size_t cap, size_t *n_out);
/* Fill in the middle (code completion between a prefix and a suffix), in
 * llama.cpp's prefix-suffix-middle order: [BOS] <fim_prefix> prefix
 * <fim_suffix> suffix <fim_middle>, BOS as the vocabulary asks; the model
 * then generates the middle. Text like "<|fim_prefix|>" inside prefix or
 * suffix stays text (code may hold it). HEARTH_ERR_UNSUPPORTED when the
 * vocabulary lacks one of the three tokens. ids/cap/n_out as above. */
HEARTH_API hearth_err hearth_tokenize_fim(const hearth_model *model, const char *prefix,
                                          size_t prefix_len, const char *suffix, size_t suffix_len,
                                          int32_t *ids, size_t cap, size_t *n_out);
/* Fill in the middle with the repository around it, as llama-server's
 * /infill builds it (the repo-level pattern of Qwen2.5-Coder):
 *
 *   [extra] [BOS] <fim_prefix> prefix prompt <fim_suffix> suffix <fim_middle>
 *
 * where extra is <fim_repo>"myproject\n", then per chunk <fim_sep>
 * filename"\n" text (without <fim_sep>: "\n\n--- snippet ---\n\n" text), then
 * <fim_sep>"filename\n"; <fim_repo>/<fim_sep> only when the vocabulary has
 * them. With n_batch > 0 the prefix keeps its last 3/4 n_batch tokens and
 * the suffix its first n_batch/4 - 2 - (prompt tokens), and only the last
 * n_extra_max tokens of extra are kept (llama-server's cuts). Prefix,
 * suffix and chunks keep special-token text as text; prompt is parsed. */
typedef struct hearth_infill_chunk {
    const char *filename; /* NULL: "tmp" */
    const char *text;     /* NUL-terminated */
} hearth_infill_chunk;

typedef struct hearth_infill {
    const char *prefix, *suffix, *prompt; /* prompt may be NULL */
    size_t prefix_len, suffix_len, prompt_len;
    const hearth_infill_chunk *extra; /* other files of the repository */
    int n_extra;
    int n_batch;     /* > 0: cut prefix and suffix as above; 0: keep them whole */
    int n_extra_max; /* the extra context's last tokens kept; < 0: all; 0: none at all */
} hearth_infill;

HEARTH_API hearth_err hearth_tokenize_infill(const hearth_model *model, const hearth_infill *in,
                                             int32_t *ids, size_t cap, size_t *n_out);
/* Raw bytes of ids (may be invalid UTF-8 for arbitrary ids); special: render
 * control tokens' text. */
HEARTH_API hearth_err hearth_detokenize(const hearth_model *model, const int32_t *ids, size_t n,
                                        bool special, char *out, size_t cap, size_t *n_out);
HEARTH_API int32_t hearth_token_bos(const hearth_model *model); /* -1 if none */
HEARTH_API int32_t hearth_token_eos(const hearth_model *model);
/* End of generation (EOS, EOT, <|im_end|>, <end_of_turn>, ...). */
HEARTH_API bool hearth_token_is_eog(const hearth_model *model, int32_t id);

/* ---- sampling ------------------------------------------------------------ */
#define HEARTH_SEED_RANDOM      UINT64_MAX
#define HEARTH_TOP_LOGPROBS_MAX 20

/* Constrained decoding: a rule the output must follow. The sampler never
 * draws a token that would break it (before any other stage; the logprobs
 * reported stay those of the model's raw logits). */
typedef enum hearth_constraint {
    HEARTH_CONSTRAINT_NONE = 0,    /* free text */
    HEARTH_CONSTRAINT_JSON_OBJECT, /* one JSON object (RFC 8259; white space before it, at most
                                      64 nested objects and arrays, strings valid UTF-8, at
                                      most 32 white-space bytes in a row outside strings), and
                                      the generation stops (HEARTH_FINISH_STOP) as soon as it
                                      is complete. max_tokens, the context or a stop string can
                                      still cut it short. OpenAI's response_format json_object */
    HEARTH_CONSTRAINT_JSON_SCHEMA, /* one JSON value valid against hearth_sampling.json_schema,
                                      with JSON mode's limits, stopping as JSON mode does (a
                                      top-level number needs white space or an end-of-generation
                                      token after it). OpenAI's response_format json_schema,
                                      ollama's format, llama.cpp's json_schema. See below */
    HEARTH_CONSTRAINT_GRAMMAR      /* a text of the GBNF grammar hearth_sampling.grammar
                                      (llama.cpp's format, docs/grammar.md): an end-of-generation
                                      token is allowed only when the output is a whole text of
                                      it, and the generation stops (HEARTH_FINISH_STOP) when
                                      nothing more can follow. llama.cpp's --grammar */
} hearth_constraint;

/* JSON Schema (HEARTH_CONSTRAINT_JSON_SCHEMA; docs/structured-output.md).
 * Supported: type (a name or a list; "integer" = a number without fraction
 * or exponent), enum and const (any JSON values; with type only),
 * properties, required, additionalProperties (false, true or a schema),
 * items, prefixItems, items as a list with additionalItems, minItems,
 * maxItems, minLength, maxLength (in code points), anyOf, oneOf (read as
 * anyOf: a value matching several alternatives is allowed), allOf with one
 * schema, $ref to "#", "#/$defs/NAME" or "#/definitions/NAME" (recursion
 * allowed), uniqueItems false, true / false / {} as schemas. Ignored
 * annotations: title, description, $schema, $id, $comment, examples,
 * default, deprecated, readOnly, writeOnly, x-*. Every other keyword
 * (pattern, format, minimum, maximum, multipleOf, not, if, patternProperties,
 * minProperties, ...) is refused, as are keywords beside anyOf/oneOf/allOf/
 * $ref (annotations excepted) and beside enum/const (type excepted).
 * Generation rules (every output is valid; not every valid value is
 * produced): an object's declared properties come in declaration order,
 * each at most once, optional ones may be skipped; other keys come after
 * them, only where additionalProperties is true or a schema, or in an
 * object schema without "properties" (additionalProperties absent beside
 * "properties" means none, as in OpenAI's strict mode and llama.cpp);
 * a required name missing from properties is a property of the
 * additionalProperties schema after the declared ones. Keys and enum/const
 * strings use only the escapes \" \\ \b \f \n \r \t and \u00xx
 * (control characters); enum/const numbers are written as the shortest text
 * that reads back as the same double (integers without ".0"). At most 32
 * nested containers the schema describes.
 *
 * hearth_json_schema_check compiles the NUL-terminated schema text as a
 * sampler would, keeping nothing: HEARTH_OK, or HEARTH_ERR_INVALID_ARG (not
 * JSON, a malformed keyword, a schema no value satisfies) or
 * HEARTH_ERR_UNSUPPORTED (outside the subset), with hearth_last_error()
 * naming the place as a JSON pointer, e.g. "json_schema: /properties/age:
 * keyword 'minimum' is not supported". Cheap (no model); a server can call
 * it to answer 400 before queueing a request. Thread-safe. */
HEARTH_API hearth_err hearth_json_schema_check(const char *schema);

/* GBNF grammars (HEARTH_CONSTRAINT_GRAMMAR; docs/grammar.md): llama.cpp's
 * syntax - rules "name ::= alternatives" with a rule named root, "|",
 * sequences, ( ), "strings" and [classes] with escapes (\n \t \r \\ \"
 * \[ \] \xHH \uHHHH \UHHHHHHHH), [^...], ., * + ? {m} {m,} {m,n}, # comments.
 * Not supported: llama.cpp's token matches (<[id]>, <text>, !<...>).
 * Terminals are Unicode code points of the output read as strict UTF-8.
 *
 * hearth_grammar_check parses and checks the NUL-terminated text as a
 * sampler would, keeping nothing: HEARTH_OK, or HEARTH_ERR_INVALID_ARG with
 * hearth_last_error() naming line and column, e.g. "grammar: 3:9: undefined
 * rule 'value'" (undefined rules, no root, a rule defined twice, unterminated
 * strings or classes, bad escapes, bad repetition bounds, left recursion, a
 * rule that can never complete, a size limit passed). Cheap (no model);
 * thread-safe. */
HEARTH_API hearth_err hearth_grammar_check(const char *grammar);

/* One entry of hearth_sampling.logit_bias (OpenAI's logit_bias). */
typedef struct hearth_logit_bias {
    int32_t id; /* a token id of the model's vocabulary */
    float bias; /* added to the token's logit; <= -100 or -INFINITY: the token is banned */
} hearth_logit_bias;

/* The stages of the sampler chain, llama.cpp's sampler types, for
 * hearth_sampling.samplers (llama-server's "samplers": names "penalties",
 * "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc",
 * "temperature"; letters e d s k y p m x t). */
typedef enum hearth_sampler_stage {
    HEARTH_SAMPLER_STAGE_PENALTIES = 1,
    HEARTH_SAMPLER_STAGE_DRY,
    HEARTH_SAMPLER_STAGE_TOP_N_SIGMA,
    HEARTH_SAMPLER_STAGE_TOP_K,
    HEARTH_SAMPLER_STAGE_TYPICAL_P,
    HEARTH_SAMPLER_STAGE_TOP_P,
    HEARTH_SAMPLER_STAGE_MIN_P,
    HEARTH_SAMPLER_STAGE_XTC,
    HEARTH_SAMPLER_STAGE_TEMPERATURE
} hearth_sampler_stage;
#define HEARTH_SAMPLERS_MAX  32
#define HEARTH_SAMPLERS_NONE (-1) /* hearth_sampling.n_samplers: a chain of no stage */

typedef struct hearth_sampling {
    float temperature;            /* <= 0: greedy */
    int32_t top_k;                /* <= 0: off */
    float top_p;                  /* in [0, 1]; 1: off */
    float min_p;                  /* in [0, 1]; 0: off */
    int32_t penalty_last_n;       /* window of recent tokens the penalties see; 0: off */
    float repeat_penalty;         /* 1: off */
    float frequency_penalty;      /* 0: off */
    float presence_penalty;       /* 0: off */
    uint64_t seed;                /* HEARTH_SEED_RANDOM: a new seed each time */
    hearth_constraint constraint; /* HEARTH_CONSTRAINT_NONE in the defaults */
    const char *json_schema; /* HEARTH_CONSTRAINT_JSON_SCHEMA: the schema text (NUL-terminated),
                                compiled by hearth_sampler_new, which fails as
                                hearth_json_schema_check does; need not outlive that call.
                                NULL in the defaults */
    const char *grammar;     /* HEARTH_CONSTRAINT_GRAMMAR: the GBNF text (NUL-terminated),
                                compiled by hearth_sampler_new, which fails as
                                hearth_grammar_check does; need not outlive that call.
                                NULL in the defaults */
    /* Biases added to the model's logits before every other stage (penalties, the
     * constraint, truncation, temperature; greedy too), as OpenAI and llama.cpp do.
     * A bias <= -100 (or -INFINITY) bans the token: it is never drawn, and a draw
     * with every token banned fails. Entries for the same id add up. ids must lie
     * in [0, n_vocab) and biases must not be NaN or +inf (HEARTH_ERR_INVALID_ARG).
     * Logprobs stay those of the raw logits. Copied by hearth_sampler_new (need
     * not outlive that call); NULL / 0 in the defaults. */
    const hearth_logit_bias *logit_bias;
    size_t n_logit_bias;
    /* A reasoning model's thinking budget (llama.cpp's --reasoning-budget): 0
     * (the defaults) leaves thinking alone; n > 0: once n tokens followed the
     * vocabulary's "<think>" token without its "</think>", the next token drawn
     * is "</think>" and the model goes on to its answer;
     * HEARTH_REASONING_BUDGET_ZERO: "</think>" right after "<think>". A
     * vocabulary without both as tokens fails with HEARTH_ERR_UNSUPPORTED; a
     * budget beside a constraint with HEARTH_ERR_INVALID_ARG. */
    int32_t reasoning_budget;
    bool reasoning_open; /* the prompt opened the block: the count starts at once */
    /* llama.cpp's other samplers, with its semantics and its chain's order: bias ->
     * penalties -> DRY -> top-n-sigma -> top-k -> typical -> top-p -> min-p -> XTC ->
     * temperature (docs/server.md, "Sampling"). Off in the defaults; their knobs at
     * llama.cpp's defaults. A value outside its range fails with
     * HEARTH_ERR_INVALID_ARG naming the field. */
    bool ignore_eos;       /* the end-of-generation tokens are banned: a generation runs to
                              max_tokens (or a stop string, or the context) */
    float typical_p;       /* locally typical sampling, in [0, 1]; 1: off */
    float top_n_sigma;     /* keeps logits >= max - n * their standard deviation; <= 0: off (-1) */
    float xtc_probability; /* XTC: the chance a draw removes its likeliest tokens, [0, 1]; 0: off */
    float xtc_threshold;   /* ... all with p >= it but the least likely, [0, 1]; > 0.5: off (0.1) */
    int32_t mirostat;      /* 1, 2: Mirostat (2.0) after bias and temperature, in place of the
                              penalties, DRY and truncations (as llama.cpp); 0: off */
    float mirostat_tau;    /* target surprise in bits, >= 0 (5) */
    float mirostat_eta;    /* learning rate, >= 0 (0.1) */
    float dry_multiplier;  /* DRY repetition penalty, >= 0; 0: off */
    float dry_base;        /* >= 1 (1.75) */
    int32_t dry_allowed_length; /* >= 0 (2) */
    int32_t dry_penalty_last_n; /* tokens scanned; -1: the model's context, 0: off (64) */
    /* Strings that end a repetition (each 1 to 40 bytes, at most 64 of them). NULL: llama.cpp's
     * "\n", ":", "\"", "*"; a non-NULL array with 0 entries: none. Need not outlive
     * hearth_sampler_new. */
    const char *const *dry_sequence_breakers;
    size_t n_dry_sequence_breakers;
    /* top-p, min-p, typical and XTC keep at least this many candidates (llama.cpp's min_keep;
     * top-k, top-n-sigma and Mirostat do not), >= 0; 0 (the default) and 1: at least one */
    int32_t min_keep;
    /* Dynamic temperature (llama.cpp's temp-ext), in the temperature stage: with range > 0
     * the draw's temperature is lo + (hi - lo) * (H / ln n)^exponent, lo = max(0, t - range),
     * hi = t + range, H the entropy of the n candidates kept there (n >= 2); 0 is greedy, so
     * temperature 0 with a range may sample. range <= 0: off (0); exponent 1. Finite. */
    float dynatemp_range;
    float dynatemp_exponent;
    /* The chain's stages in order (llama-server's "samplers"): samplers[0..n_samplers), a
     * stage may repeat, one left out does not run at all (no penalties without
     * HEARTH_SAMPLER_STAGE_PENALTIES; no temperature, hence no greedy, without
     * HEARTH_SAMPLER_STAGE_TEMPERATURE). 0 (the default): llama.cpp's default chain above;
     * HEARTH_SAMPLERS_NONE: no stage (a draw from the biased logits). Mirostat replaces any
     * chain. At most HEARTH_SAMPLERS_MAX. */
    hearth_sampler_stage samplers[HEARTH_SAMPLERS_MAX];
    int32_t n_samplers;
} hearth_sampling;
#define HEARTH_REASONING_BUDGET_ZERO (-1)

/* llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05. */
HEARTH_API hearth_sampling hearth_sampling_default_params(void);

typedef struct hearth_sampler hearth_sampler;

/* With a constraint, the model's first such sampler indexes the bytes of its
 * tokens (tens of ms for 150k tokens); later ones share that table, which
 * lives as long as the last sampler using it. A generation whose constraint
 * allows no token at all (a vocabulary without the needed characters) fails
 * with HEARTH_ERR_UNSUPPORTED rather than drawing one. */
HEARTH_API hearth_err hearth_sampler_new(const hearth_model *model, const hearth_sampling *params,
                                         hearth_sampler **out);
HEARTH_API void hearth_sampler_free(hearth_sampler *sampler);
/* Forgets the penalty and DRY windows, restarts from the seed (and a
 * constraint from the start of its output) and Mirostat from mu = 2 tau. */
HEARTH_API void hearth_sampler_reset(hearth_sampler *sampler);
HEARTH_API uint64_t hearth_sampler_seed(const hearth_sampler *sampler);

/* ---- generation ---------------------------------------------------------- */
typedef enum hearth_finish {
    HEARTH_FINISH_STOP = 0, /* end-of-generation token or a stop string */
    HEARTH_FINISH_LENGTH,   /* max_tokens reached, or the context is full */
    HEARTH_FINISH_CALLBACK  /* the callback asked to stop */
} hearth_finish;

typedef struct hearth_token_logprob {
    int32_t id;
    float logprob;
} hearth_token_logprob;

/* The log-probability of token id under the softmax of one row of logits
 * (n_vocab floats, as hearth_decode gives them) into *logprob, and the n_top
 * (0..HEARTH_TOP_LOGPROBS_MAX) most likely tokens, best first (ties: lowest
 * id), into top[0..*n_out): what a generation's events report, for rows
 * read apart from a generation (a prompt's, hearth_decode's all_logits). */
HEARTH_API hearth_err hearth_logprobs(const hearth_model *model, const float *logits, int32_t id,
                                      int n_top, float *logprob, hearth_token_logprob *top,
                                      int *n_out);

/* One generated token as the callback sees it. `text` is the text that became
 * safe to show with this token: complete UTF-8, never part of a stop string
 * (it may be empty while a character or a possible stop string is pending).
 * A last event with id -1 carries text held back until the end, if any. */
typedef struct hearth_token_event {
    int32_t id;
    const char *text;
    size_t len;
    float logprob; /* log-softmax of the raw logits */
    int n_top;     /* alternatives filled in top[] (as many as asked) */
    hearth_token_logprob top[HEARTH_TOP_LOGPROBS_MAX];
    /* hearth_gen_params.post_sampling_probs only (else 0): ln of id's
     * probability in the distribution it was drawn from (the candidates the
     * sampler chain kept, after bias, penalties, truncation and temperature;
     * 0 under greedy); top[] then lists at most n_top of those candidates,
     * best first, with theirs, leaving out any of probability 0. */
    float post_logprob;
} hearth_token_event;

/* Return false to stop generating. */
typedef bool (*hearth_token_cb)(const hearth_token_event *event, void *user);

typedef struct hearth_gen_params {
    int max_tokens;          /* <= 0: until the context is full */
    const char *const *stop; /* stop strings (not emitted); may be NULL */
    int n_stop;
    int n_top_logprobs; /* 0..HEARTH_TOP_LOGPROBS_MAX alternatives per token */
    /* llama-server's post_sampling_probs: the events' post_logprob and top[]
     * describe the sampler chain's kept candidates instead of the raw
     * softmax (logprob stays the raw one). Costs a second pass of the chain
     * per token. */
    bool post_sampling_probs;
    /* Speculative decoding (docs/speculative.md): each step proposes up to
     * spec_n_max tokens to follow the sampled one and evaluates them with it
     * in one pass; the sampler then draws from the logits after each in turn
     * and keeps the proposals while its draws equal them. Each draw is the one
     * the plain loop would make from those logits (same sampler, same random
     * numbers), so the output is unchanged up to the last-bit differences
     * between a batch's logits and one token's; only the speed differs. Zero
     * spec_n_max: off. The proposals come from `draft` when it is not NULL: a
     * session of a smaller model with the same vocabulary (hearth_draft_check),
     * used by this generation only and left holding some prefix of its text;
     * it proposes greedily and stops when its top token's probability is under
     * spec_p_min. Without a draft, spec_ngram_n > 0 proposes by prompt lookup:
     * what followed the last earlier occurrence of the text's last
     * spec_ngram_n tokens (prompt or output), for copies from the prompt
     * (retrieval, editing, extraction). */
    int spec_n_max;
    hearth_session *draft;
    float spec_p_min;
    int spec_ngram_n;
    /* Context shift (llama.cpp's --context-shift, ollama's default): when the
     * text fills the context, instead of ending with HEARTH_FINISH_LENGTH the
     * generation forgets half of what follows the session's first n_keep
     * tokens (hearth_session_shift) and goes on; with max_tokens <= 0 it then
     * runs until an end or stop. n_keep < 0, or more than the prompt: the
     * whole prompt; at most n_ctx - 4 (llama-server's bound). llama.cpp's
     * --keep N counts after the BOS: pass N + 1 for a prompt that starts with
     * one. A shift that could discard nothing ends the generation as before.
     * n_discard: tokens each shift forgets after the kept ones (llama-server's
     * n_discard; <= 0: half of them), at most all but the last. */
    bool ctx_shift;
    int n_keep;
    int n_discard;
} hearth_gen_params;

/* Whether `draft` can propose tokens for `target`: the same tokenizer, the
 * same text for every id both have, vocabulary sizes at most 128 apart (the
 * padding some families add to larger models). HEARTH_ERR_INVALID_ARG naming
 * the first difference otherwise. Compares every token: call it once, when
 * the models are loaded. */
HEARTH_API hearth_err hearth_draft_check(const hearth_model *target, const hearth_model *draft);

typedef struct hearth_gen_result {
    int n_prompt;              /* prompt tokens evaluated (after any cached prefix) */
    int n_cached;              /* prompt tokens reused from the session's KV cache */
    int n_gen;                 /* tokens generated */
    int n_drafted, n_accepted; /* speculative decoding: tokens proposed and verified, and
                                  how many of them the sampler drew (part of n_gen) */
    hearth_finish finish;
    int stop_index;  /* the stop string (hearth_gen_params.stop[i]) that ended it; -1: none */
    int n_discarded; /* tokens forgotten by context shifts (hearth_gen_params.ctx_shift) */
    double prompt_ms, gen_ms, first_token_ms;
} hearth_gen_result;

/* Continues the session with `prompt`, then samples until a stop condition.
 * When the session already holds a prefix of prompt, that prefix is reused.
 * The text given to cb is complete, valid UTF-8. */
HEARTH_API hearth_err hearth_generate(hearth_session *session, hearth_sampler *sampler,
                                      const int32_t *prompt, int n_prompt,
                                      const hearth_gen_params *params, hearth_token_cb cb,
                                      void *user, hearth_gen_result *result);

/* ---- step-wise generation (continuous batching) ---------------------------
 * hearth_generate cut into steps so that a scheduler can advance many
 * generations, each on its own session, one token each per step:
 *
 *     hearth_gen_new                          (prefix reuse, nothing evaluated)
 *     hearth_gen_prefill until *done          (the rest of the prompt, in chunks;
 *                                              or let hearth_gen_step take it)
 *     loop: hearth_gen_next_token on each     (sample, stream, stop strings, cb)
 *           hearth_gen_step(all of them)      (one hearth_decode_multi call)
 *     hearth_gen_get_result, hearth_gen_free
 *
 * hearth_generate is exactly this loop for one generation. The session and
 * sampler are borrowed and must outlive the generation; nothing else may use
 * the session meanwhile. Errors leave the generation unusable but freeable. */
typedef struct hearth_gen hearth_gen;

/* Validates as hearth_generate does, copies the prompt and the stop strings,
 * truncates the session to the longest prefix of the prompt it holds (within
 * the exact start hearth_session_tokens reports; at least one token is left
 * to evaluate, unless the session holds exactly the
 * prompt with its last token's logits, as hearth_session_copy leaves it:
 * then the generation can sample at once) and primes the sampler. On success
 * *out owns the generation; free it with hearth_gen_free. */
HEARTH_API hearth_err hearth_gen_new(hearth_session *session, hearth_sampler *sampler,
                                     const int32_t *prompt, int n_prompt,
                                     const hearth_gen_params *params, hearth_token_cb cb,
                                     void *user, hearth_gen **out);
HEARTH_API void hearth_gen_free(hearth_gen *gen);
/* Evaluates up to max_tokens (<= 0: all) of the prompt tokens not yet
 * evaluated; *done (may be NULL) tells whether the whole prompt is in. */
HEARTH_API hearth_err hearth_gen_prefill(hearth_gen *gen, int max_tokens, bool *done);
/* Samples the next token from the session's last logits and hands its text
 * to the callback. *token receives the token that must be fed (by
 * hearth_gen_step) before the next call, or -1 when the generation has ended
 * (hearth_gen_done; held-back text has then been flushed to the callback).
 * Fails with HEARTH_ERR_INVALID_ARG before the prompt is in or while a token
 * waits to be fed. */
HEARTH_API hearth_err hearth_gen_next_token(hearth_gen *gen, int32_t *token);
/* Feeds the waiting token of every generation in gens[0..n) that has one,
 * then up to max_prompt (<= 0: none) tokens of the prompts still being
 * evaluated (in order, a chunk each), through one hearth_decode_multi call
 * (more only past a batch): each fed generation can sample again, and a
 * prompt that is complete can sample next. Others are skipped. The
 * generations must belong to one model and use distinct sessions of the
 * same n_ctx and KV type; the first entry's session lends its buffers (give
 * sessions n_seq_max >= n to keep the output in one product). On failure
 * the generations of the failing call are unchanged. */
HEARTH_API hearth_err hearth_gen_step(hearth_gen *const *gens, int n, int max_prompt);
/* Prompt tokens not evaluated yet (0: it can sample). */
HEARTH_API int hearth_gen_prompt_left(const hearth_gen *gen);
HEARTH_API bool hearth_gen_done(const hearth_gen *gen);
/* Counts and timings so far (complete once done). */
HEARTH_API void hearth_gen_get_result(const hearth_gen *gen, hearth_gen_result *result);

/* ---- metadata ------------------------------------------------------------ */

/* The string value of GGUF metadata key `key` (e.g. "tokenizer.chat_template",
 * "general.name"). *out points into the model's mapping, is NOT NUL-terminated
 * and lives as long as the model; *len receives its length in bytes. Fails with
 * HEARTH_ERR_INVALID_ARG when the key is absent or does not hold a string. */
HEARTH_API hearth_err hearth_model_meta_str(const hearth_model *model, const char *key,
                                            const char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* HEARTH_H */
