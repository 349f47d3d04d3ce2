/*
 * tokenizer.h - text <-> token ids for the vocabularies GGUF files carry
 * (tokenizer.ggml.* metadata): SentencePiece-style ("llama": score-ordered
 * bigram merges with byte fallback), byte-level BPE ("gpt2": merge ranks over
 * the GPT-2 byte alphabet, after the pre-tokenizer named by tokenizer.ggml.pre),
 * Gemma 4's BPE ("gemma4": merge ranks over UTF-8 characters, spaces as
 * U+2581, <0xNN> byte fallback), WordPiece ("bert") and SentencePiece's
 * unigram model ("t5": Viterbi over token scores after the file's
 * precompiled normalizer; XLM-RoBERTa's embedders use it). The behaviour
 * reproduces llama.cpp's tokenizer (src/llama-vocab.cpp), which is what the
 * models were evaluated with: the same ids for the same text, the same pieces
 * for the same ids.
 *
 * A tok_vocab is immutable once loaded: any number of threads may encode and
 * decode with it at the same time. It owns copies of everything it needs, so
 * the gguf_file it was loaded from may be closed right after tok_vocab_load.
 */
#ifndef HEARTH_TOKENIZER_H
#define HEARTH_TOKENIZER_H

#include "model/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tok_vocab tok_vocab;

typedef enum tok_type {
    TOK_TYPE_SPM = 1, /* tokenizer.ggml.model = "llama" */
    TOK_TYPE_BPE = 2, /* "gpt2", "gemma4" */
    TOK_TYPE_WPM = 3, /* "bert" */
    TOK_TYPE_UGM = 4  /* "t5": SentencePiece unigram (T5, XLM-RoBERTa) */
} tok_type;

/* Builds the vocabulary from f's tokenizer.ggml.* keys. A required key that is
 * absent or mistyped fails with HEARTH_ERR_FORMAT naming the key; an unknown
 * tokenizer.ggml.model or tokenizer.ggml.pre fails with HEARTH_ERR_UNSUPPORTED
 * naming it. On success *out owns the vocabulary (free with tok_vocab_free). */
hearth_err tok_vocab_load(const gguf_file *f, tok_vocab **out);
void tok_vocab_free(tok_vocab *v); /* NULL is a no-op */

tok_type tok_vocab_type(const tok_vocab *v);
/* "llama" / "gpt2" / "gemma4" / "bert" / "t5" and the pre-tokenizer name ("default"
 * when the file names none; always "gemma4" for that model). Owned by the
 * vocabulary. */
const char *tok_model_name(const tok_vocab *v);
const char *tok_pre_name(const tok_vocab *v);

int tok_n_vocab(const tok_vocab *v);
/* Special ids, -1 when the vocabulary has none. */
int tok_bos(const tok_vocab *v);
int tok_eos(const tok_vocab *v);
int tok_eot(const tok_vocab *v); /* end of turn: <|eot_id|>, <|im_end|>, <end_of_turn>, ... */
int tok_unk(const tok_vocab *v);
int tok_sep(const tok_vocab *v);
int tok_pad(const tok_vocab *v);
/* Fill-in-the-middle tokens (<|fim_prefix|>, <fim_suffix>, ...: the
 * tokenizer.ggml.fim_* keys, else recognized by their text), -1 when none. */
int tok_fim_pre(const tok_vocab *v);
int tok_fim_suf(const tok_vocab *v);
int tok_fim_mid(const tok_vocab *v);
int tok_fim_rep(const tok_vocab *v); /* repository name (-1: none) */
int tok_fim_sep(const tok_vocab *v); /* file separator (-1: none) */
/* Whether encoding with add_special prepends BOS / appends EOS. */
bool tok_add_bos(const tok_vocab *v);
bool tok_add_eos(const tok_vocab *v);
/* Whether a pair of texts (a reranker's query and document) takes the
 * separator between them (tokenizer.ggml.add_sep_token; WordPiece: yes). */
bool tok_add_sep(const tok_vocab *v);
/* End of generation: eos, eot, eom and the tokens llama.cpp treats as such by
 * their text (<|im_end|>, <end_of_turn>, <|end|>, <|eom_id|>, <|endoftext|>,
 * FIM pad/repo/file-separator tokens, ...). False for ids out of range. */
bool tok_is_eog(const tok_vocab *v, int32_t id);
/* Control tokens (type 3 or promoted to control by their text, e.g. EOG
 * tokens): rendered as "" unless special text is asked for. */
bool tok_is_control(const tok_vocab *v, int32_t id);
/* Tokens taken from the raw text before the algorithm runs: control, unknown
 * and user-defined ones (their piece is their text). */
bool tok_is_special(const tok_vocab *v, int32_t id);

/* The stored text of token id (not NUL-terminated; SentencePiece pieces keep
 * their U+2581, BPE pieces their byte alphabet). NULL when id is out of range.
 * Lives as long as the vocabulary. */
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len);
/* The id whose stored text is exactly text[0..len), or -1. */
int32_t tok_find(const tok_vocab *v, const char *text, size_t len);
/* The tokens that open and close a reasoning block: <think> and </think>,
 * else Gemma 4's <|channel> and <channel|> (its thought channel, as
 * llama.cpp's budget ends it), else Mistral's [THINK] and [/THINK]; false
 * (both -1) when the vocabulary has none of the pairs. */
bool tok_think_pair(const tok_vocab *v, int32_t *start, int32_t *end);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 is handled as llama.cpp
 * does). add_special: prepend BOS / append EOS as the vocabulary asks
 * (tok_add_bos / tok_add_eos; WordPiece: [CLS] ... [SEP]). parse_special: text
 * of control tokens (e.g. "<|eot_id|>") becomes that token; otherwise it is
 * tokenized as plain text. User-defined tokens (type 4) are matched in the text
 * either way, as llama.cpp does.
 * On success writes *n_out ids to ids[0..cap). When they do not fit, fails with
 * HEARTH_ERR_INVALID_ARG, the message names the count and *n_out receives it
 * (ids then holds an unspecified prefix): call with cap 0 to measure. */
hearth_err tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t *ids, size_t cap, size_t *n_out);

/* The bytes token id stands for (llama.cpp's token_to_piece): SentencePiece
 * "\u2581" -> " " and <0xNN> -> the byte, BPE byte alphabet -> bytes (Gemma
 * 4: "\u2581" -> " " and <0xNN> -> the byte, as SentencePiece). Control
 * and unknown tokens give "" unless special is true (then their text). May be
 * a fragment of a UTF-8 character. Writes min(needed, cap) bytes and *n_out =
 * the full length; fails with HEARTH_ERR_INVALID_ARG for an id out of range or
 * when cap < the length (*n_out then still holds the length). */
hearth_err tok_piece(const tok_vocab *v, int32_t id, bool special, char *buf, size_t cap,
                     size_t *n_out);
/* The bytes the output stream shows for token id (tok_piece without control
 * text), as a callback over vocab (a tok_vocab): writes up to cap bytes, returns
 * the full length (0 for ids past the vocabulary, e.g. padded logits rows)
 * and tells in *eog whether the token ends a generation. The shape of
 * sampling's smp_piece_fn, which the constraint tables are built with. */
size_t tok_piece_shown(const void *vocab, int32_t id, char *buf, size_t cap, bool *eog);
/* Upper bound of any piece's length, for sizing buffers. */
size_t tok_max_piece_len(const tok_vocab *v);

/* Text of ids[0..n) as llama.cpp's llama_detokenize gives it: the pieces
 * concatenated, minus the single leading space SentencePiece's space prefix
 * added (when the vocabulary adds one and the first token is text),
 * remove_special: drop a leading BOS / trailing EOS the vocabulary adds;
 * special: render control tokens' text. Vocabularies whose tokenizer cleans up
 * spaces (GPT-2 style "clean_up_tokenization_spaces": " ," -> ",", " 's" ->
 * "'s", ...) get that clean-up. The bytes are raw: they may be invalid UTF-8
 * (use tok_stream for text shown to people). Size semantics as tok_encode:
 * HEARTH_ERR_INVALID_ARG with *n_out = needed bytes when cap is too small. */
hearth_err tok_detokenize(const tok_vocab *v, const int32_t *ids, size_t n, bool remove_special,
                          bool special, char *out, size_t cap, size_t *n_out);

/* Streaming detokenizer: takes ids one at a time and hands back only complete,
 * valid UTF-8. A character whose bytes arrive over several tokens is held back
 * until it is complete; ill-formed bytes become U+FFFD, one per maximal
 * ill-formed subsequence (Unicode's recommended practice, which is also what
 * Python's bytes.decode("utf-8", "replace") does), so the concatenated output
 * equals that replacement applied to the concatenated pieces, however the
 * bytes were split between tokens. */
typedef struct tok_stream tok_stream;

/* special: render control tokens' text (default for generation: false). The
 * vocabulary must outlive the stream. Allocates once; push never allocates. */
hearth_err tok_stream_new(const tok_vocab *v, bool special, tok_stream **out);
void tok_stream_free(tok_stream *s);
/* Adds token id; *text and *len receive the newly complete text (possibly empty),
 * valid until the next call on s. An id out of range fails with
 * HEARTH_ERR_INVALID_ARG and changes nothing. */
hearth_err tok_stream_push(tok_stream *s, int32_t id, const char **text, size_t *len);
/* Ends the stream: bytes still held back (an incomplete character) come out as
 * U+FFFD. The stream is then empty and may be reused. */
void tok_stream_flush(tok_stream *s, const char **text, size_t *len);
/* Forgets bytes held back without emitting them. */
void tok_stream_reset(tok_stream *s);

/* --- UTF-8 helpers (utf8.c), also used by the stream --- */

/* Incremental UTF-8 validation with U+FFFD replacement (see tok_stream). */
typedef struct tok_utf8_state {
    uint8_t buf[4]; /* bytes of the incomplete character held back */
    uint8_t n;      /* how many */
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
} tok_utf8_state;

/* Feeds in[0..n) and writes the complete, valid output to out, which must hold
 * TOK_UTF8_OUT_MAX(n) bytes. Returns the bytes written. */
#define TOK_UTF8_OUT_MAX(n) (3 * ((size_t)(n) + 4))
size_t tok_utf8_feed(tok_utf8_state *st, const void *in, size_t n, char *out);
/* Emits U+FFFD for a held-back incomplete character (0 or 3 bytes to out). */
size_t tok_utf8_finish(tok_utf8_state *st, char *out);

#endif
