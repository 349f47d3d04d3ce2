/*
 * quantize.h - converting a GGUF model to one of llama-quantize's presets
 * (F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q2_K_S, Q3_K_S/M/L, Q4_K_S/M,
 * Q5_K_S/M, Q6_K, IQ4_NL, IQ4_XS) with the same per-tensor type choices, the
 * same tensor order and metadata, and the same blocks (the scalar references
 * kern_ref_quantize_row), so that the output file is byte for byte what
 * `llama-quantize [--imatrix FILE] IN OUT TYPE` writes. With an importance
 * matrix (imatrix.h) rows are quantized by kern_ref_quantize_row_imatrix,
 * and Q2_K_S (which needs one) becomes available.
 *
 * The rules follow llama.cpp's src/llama-quant.cpp at commit 34af94cd (the
 * commit ../shared was made with): 1-D tensors, norms and a few special
 * tensors keep their type; the output matrix (and token_embd when tied) gets
 * Q6_K, or Q8_0 when its rows do not fit the preset's blocks (Q8_0 stays
 * Q8_0); attn_v (attn_qkv, attn_kv_b), ffn_down and attn_output get more bits
 * by preset: Q2_K gives attn_v Q3_K (Q4_K with 4+ query heads per KV head),
 * ffn_down and attn_output Q3_K; Q3_K_M gives the first two attn_v Q5_K and
 * the rest Q4_K, ffn_down Q5_K in the first 1/16 of the layers and Q4_K
 * after, attn_output Q4_K; Q3_K_L gives all three Q5_K; Q4_K_S gives the
 * first four attn_v and the first eighth of ffn_down Q5_K; Q4_K_M and
 * Q5_K_M give attn_v and ffn_down Q6_K in the "more bits" layers (the first
 * and last eighth and every third between); IQ4_NL/IQ4_XS give attn_v Q5_K
 * with 4+ query heads per KV head and the first eighth of ffn_down Q5_K;
 * Q3_K_S, Q5_K_S, Q4_1, Q5_0, Q5_1 have no such rules. Falcon has rules of
 * its own (output Q8_0, others for Q3_K_M/L and Q4_K_S/M). A type whose block
 * does not divide the row length falls back (Q2_K/Q3_K->Q4_0, Q4_K->Q5_0,
 * Q5_K->Q5_1, Q6_K->Q8_0, IQ4_XS->IQ4_NL, then F16); the 32-element types
 * have no fall-back (llama-quantize refuses). With an imatrix, IQ4_NL/IQ4_XS
 * keep ffn_down as it is and Q4_0/Q5_0 give the first eighth of ffn_down
 * Q4_1/Q5_1; Q2_K_S gives attn_v Q4_K with 4+ query heads per KV head and the
 * first eighth of ffn_down Q4_K. Not reproduced: the 70B and
 * mixture-of-experts special cases and the IQ1-IQ3 presets (blocks Hearth
 * does not write).
 */
#ifndef HEARTH_QUANTIZE_H
#define HEARTH_QUANTIZE_H

#include "gguf.h"
#include "imatrix.h"
#include "kernels/kernels.h"

/* llama.cpp's llama_ftype values, written to general.file_type. */
typedef enum quant_ftype {
    QUANT_FTYPE_F16 = 1,
    QUANT_FTYPE_Q4_0 = 2,
    QUANT_FTYPE_Q4_1 = 3,
    QUANT_FTYPE_Q8_0 = 7,
    QUANT_FTYPE_Q5_0 = 8,
    QUANT_FTYPE_Q5_1 = 9,
    QUANT_FTYPE_Q2_K = 10,
    QUANT_FTYPE_Q3_K_S = 11,
    QUANT_FTYPE_Q3_K_M = 12,
    QUANT_FTYPE_Q3_K_L = 13,
    QUANT_FTYPE_Q4_K_S = 14,
    QUANT_FTYPE_Q4_K_M = 15,
    QUANT_FTYPE_Q5_K_S = 16,
    QUANT_FTYPE_Q5_K_M = 17,
    QUANT_FTYPE_Q6_K = 18,
    QUANT_FTYPE_Q2_K_S = 21,
    QUANT_FTYPE_IQ4_NL = 25,
    QUANT_FTYPE_IQ4_XS = 30
} quant_ftype;

/* Parses a preset name ("Q4_K_M", case-insensitive; also llama-quantize's
 * aliases Q3_K, Q4_K, Q5_K for the _M presets); false when unknown. */
bool quant_ftype_parse(const char *name, quant_ftype *out);
/* "Q4_K_M", or NULL for a value that is not one of the presets. */
const char *quant_ftype_name(quant_ftype ftype);
/* The type most 2-D weights get under this preset (Q4_K for Q4_K_M). */
kern_type quant_ftype_base_type(quant_ftype ftype);

/* True for the types the converter writes (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K-Q6_K, IQ4_NL, IQ4_XS): those an override may name. */
bool quant_type_writable(kern_type t);

/* A manual per-tensor type, like llama-quantize's --tensor-type: every tensor
 * whose name CONTAINS `pattern` (a plain substring, not a regex) gets `type`
 * (the first matching override wins; the shape fall-backs still apply). */
typedef struct quant_override {
    const char *pattern;
    kern_type type;
} quant_override;

/* Called after each tensor is written to memory: tensors done so far (1..n),
 * the total, and the tensor's name, old type and new type. */
typedef void (*quant_progress_fn)(void *user, int64_t done, int64_t total, const char *name,
                                  kern_type from, kern_type to);

typedef struct quant_params {
    quant_ftype ftype;
    int n_threads;                   /* rows are split across them; <= 0: physical cores */
    const quant_override *overrides; /* may be NULL */
    int n_overrides;
    quant_progress_fn progress; /* may be NULL */
    void *progress_user;
    /* An importance matrix (may be NULL): its entries become the rows'
     * weights, and it changes a few type choices (above). imatrix_file is
     * its path as given, recorded in quantize.imatrix.file. */
    const imatrix *imatrix;
    const char *imatrix_file;
} quant_params;

quant_params quant_default_params(void);

/* One output tensor, in output order (llama-quantize's: tensors outside
 * blk.N first, then by layer, by name within a layer). */
typedef struct quant_choice {
    int64_t src_index; /* the tensor in the input file (gguf_tensor_at) */
    kern_type type;    /* its type in the output */
    bool fallback;     /* the preset's type did not fit the row length */
    bool manual;       /* chosen by an override */
} quant_choice;

/* The type of every tensor of `f` under `p` (no data is touched). On success
 * *out (n_tensors entries, caller frees) is set. Fails with
 * HEARTH_ERR_UNSUPPORTED where llama-quantize refuses (a row length no
 * fall-back fits, as for stories260K's ffn_down under Q4_0). */
hearth_err quant_plan(const gguf_file *f, const quant_params *p, quant_choice **out);

typedef struct quant_stats {
    int64_t n_tensors;            /* tensors written */
    int64_t n_converted;          /* tensors whose type changed */
    int64_t n_requantized;        /* of those, tensors that were already quantized (lossy twice) */
    int64_t n_fallback;           /* tensors given a fall-back type */
    uint64_t bytes_in, bytes_out; /* tensor data, without padding */
} quant_stats;

/* Reads `in_path` (F32, F16, BF16 or quantized weights), writes `out_path`
 * with every key-value pair copied (general.quantization_version and
 * general.file_type set last, as llama-quantize does) and every tensor
 * converted per quant_plan. The whole output is built in memory before it is
 * written (about the size of the output file, plus one row per thread).
 * *stats (may be NULL) is filled on success. */
hearth_err quant_model(const char *in_path, const char *out_path, const quant_params *p,
                       quant_stats *stats);

#endif
