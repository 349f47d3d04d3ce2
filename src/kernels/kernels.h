/*
 * kernels.h - math on raw arrays: element types, block formats, conversions,
 * dot products and the matrix product every layer goes through. Knows nothing
 * of models.
 *
 * Each type has a scalar reference (ref_*.c) that is the specification; the
 * SIMD kernels (x86_avx2.c, x86_avx512.c, arm_neon.c) are tested against it
 * and chosen at run time by dispatch.c.
 */
#ifndef HEARTH_KERNELS_H
#define HEARTH_KERNELS_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GGML type ids, as stored in GGUF tensor infos. */
typedef enum kern_type {
    KERN_F32 = 0,
    KERN_F16 = 1,
    KERN_Q4_0 = 2,
    KERN_Q4_1 = 3,
    KERN_Q5_0 = 6,
    KERN_Q5_1 = 7,
    KERN_Q8_0 = 8,
    KERN_Q8_1 = 9,
    KERN_Q2_K = 10,
    KERN_Q3_K = 11,
    KERN_Q4_K = 12,
    KERN_Q5_K = 13,
    KERN_Q6_K = 14,
    KERN_Q8_K = 15,
    KERN_IQ4_NL = 20,
    KERN_IQ4_XS = 23,
    KERN_BF16 = 30,
    KERN_TYPE_COUNT = 40 /* ids below this are known to GGML */
} kern_type;

typedef struct kern_type_info {
    const char *name;       /* "q4_K"; "?" for ids GGML knows but Hearth does not */
    uint32_t block_size;    /* elements per block (1 for float types) */
    uint32_t block_bytes;   /* bytes per block */
    kern_type vec_dot_type; /* what activations are converted to for dot products */
    bool supported;         /* Hearth can dequantize and multiply it */
} kern_type_info;

/* Traits of type id `type`, or NULL when the id is not a GGML type at all. */
const kern_type_info *kern_type_get(uint32_t type);
/* Bytes of a row of n elements; 0 when n is not a multiple of the block size. */
size_t kern_row_bytes(kern_type type, int64_t n);

/* Half-precision conversions with round-to-nearest-even (as F16C / ggml). */
float kern_f16_to_f32(uint16_t h);
uint16_t kern_f32_to_f16(float f);
float kern_bf16_to_f32(uint16_t h);
uint16_t kern_f32_to_bf16(float f);

/* --- scalar references: the specification (ref_quants.c, ref_kquants.c) ---
 * n must be a multiple of the type's block size. quantize produces exactly the
 * blocks ggml's quantize_row_*_ref produces; vec_dot takes the weight row `w`
 * of type `type` and activations `x` already in its vec_dot_type. */
void kern_ref_quantize_row(kern_type type, const float *x, void *y, int64_t n);
/* One row of n floats to `type` with importance weights qw[0..n) (one per
 * column, an imatrix entry's mean squared activation), as llama-quantize
 * does given an imatrix (ggml's quantize_row_*_impl; ref_imatrix.c). x must
 * be the whole row: Q4_0..Q5_1 weigh by statistics of all of it. qw == NULL,
 * or a type without a weighted quantizer (F32, F16, BF16, Q8_0), is
 * kern_ref_quantize_row. */
void kern_ref_quantize_row_imatrix(kern_type type, const float *x, void *y, int64_t n,
                                   const float *qw);
void kern_ref_dequantize_row(kern_type type, const void *x, float *y, int64_t n);
void kern_ref_vec_dot(kern_type type, int64_t n, float *s, const void *w, const void *x);

/* --- dispatched kernels: the fastest this CPU runs (dispatch.c) --- */
typedef void (*kern_vec_dot_fn)(int64_t n, float *s, const void *w, const void *x);
typedef void (*kern_from_float_fn)(const float *x, void *y, int64_t n);
typedef void (*kern_to_float_fn)(const void *x, float *y, int64_t n);

struct kern_attn_args;
typedef void (*kern_attn_fn)(const struct kern_attn_args *a);
/* y[t * ldy + r] = dot(w row r, x row t) for r < n_rows, t < n_tok: rows of
 * n elements w_stride bytes apart, activations (in the vec_dot type)
 * x_stride bytes apart. Each entry has the bits of the same table's vec_dot,
 * whatever n_tok and n_rows, so a batch and one token at a time agree. */
typedef void (*kern_gemm_fn)(int64_t n, const void *w, size_t w_stride, int64_t n_rows,
                             const void *x, size_t x_stride, int64_t n_tok, float *y, int64_t ldy);

typedef struct kern_fns {
    kern_vec_dot_fn vec_dot;       /* w: this type, x: vec_dot_type */
    kern_from_float_fn from_float; /* f32 -> this type (for activations) */
    kern_to_float_fn to_float;     /* this type -> f32 */
    kern_attn_fn attn; /* KERN_F32/KERN_F16: kern_attn_tile over a cache of this type, or NULL */
    kern_gemm_fn gemm; /* products of several tokens at once, or NULL (vec_dot per pair) */
    /* A packed layout (NULL: none; kern_pack below): its bytes for a shape
     * (0: none for it), the packing, and the gemm over it (w: the panel of
     * row 0, w_stride: bytes per 16-row panel), with gemm's bits. */
    size_t (*pack_bytes)(int64_t n_rows, int64_t n_cols);
    void (*pack)(const void *w, size_t w_stride, int64_t n_rows, int64_t n_cols, void *out);
    kern_gemm_fn gemm_packed;
} kern_fns;

/* The kernels for `type` (NULL if unsupported). Selected once per process from
 * the CPU's features; HEARTH_ISA=scalar|avx2|avx512 in the environment caps it. */
const kern_fns *kern_get(kern_type type);
/* Name of the instruction set in use ("avx512-vnni", "avx2", "neon", "scalar"). */
const char *kern_isa_name(void);

/* --- matrix product (matmul.c) ---
 * Y[t][r] = dot(W row r, X row t) for t < n_tok, r < n_rows.
 * W: [n_rows][n_cols] of `type`, row stride kern_row_bytes(type, n_cols).
 * X: [n_tok][n_cols] f32. Y: [n_tok][n_rows] f32, row stride ldy floats.
 * `scratch` holds X converted to the vec_dot type: at least
 * kern_matmul_scratch_bytes(type, n_cols, n_tok) bytes. Split across the pool. */
size_t kern_matmul_scratch_bytes(kern_type type, int64_t n_cols, int64_t n_tok);
void kern_matmul(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
                 const float *x, int64_t n_tok, float *y, int64_t ldy, void *scratch);
/* Several products of the same X in one pass over the pool (one handoff):
 * op o computes op.y[t][r] (row stride op.ldy) from its weight of op.n_rows
 * rows. Every op has n_cols columns and a type of the same vec_dot type;
 * X is converted once (scratch as kern_matmul's). Same results as one
 * kern_matmul per op. */
#define KERN_MATMUL_MAX_OPS 4
typedef struct kern_matmul_op {
    kern_type type;
    const void *w; /* [n_rows][n_cols] of type, or kern_pack's form of it */
    bool packed;
    int64_t n_rows;
    float *y;
    int64_t ldy;
} kern_matmul_op;
void kern_matmul_multi(hr_pool *pool, const kern_matmul_op *ops, int n_ops, int64_t n_cols,
                       const float *x, int64_t n_tok, void *scratch);

/* Packed weights: this CPU's kernels may read a weight faster in a layout of
 * their own (panels of 16 rows interleaved, so that one instruction advances
 * every row), made once at load. kern_packed_bytes: its size for a weight of
 * `type` (0: none here, the weight stays as it is); kern_pack writes it to
 * `out` (64-byte aligned, that many bytes), across the pool. The product
 * of a packed weight (kern_matmul_op.packed) has the bits of the plain one. */
size_t kern_packed_bytes(kern_type type, int64_t n_rows, int64_t n_cols);
void kern_pack(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
               void *out);

/* --- element-wise and row operations (ops.c), matching ggml's rounding --- */
/* y = x / sqrt(mean(x^2) + eps) * w (w may be NULL); the sum is in double. */
void kern_rms_norm(float *y, const float *x, const float *w, int64_t n, float eps);
/* LayerNorm (BERT): y = (x - mean) / sqrt(var + eps) * w + b (w, b may be
 * NULL; y may be x), as ggml_norm then ggml_mul and ggml_add compute it: the
 * mean from a double sum, the variance from squares summed 16 lanes at a
 * time (ggml_vec_cvar_f32's AVX-512 order). */
void kern_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t n,
                     float eps);
/* cos/sin of theta_i = scale * pos * base^(-2i/n_rot) / freq_factors[i], for
 * i < n_rot/2 (freq_factors may be NULL), evaluated as ggml does. With YaRN
 * (yarn_dims non-NULL: kern_rope_yarn_dims'), theta_i mixes that
 * interpolated angle with the unscaled one by ggml's ramp over the
 * dimensions between the two correction dims. */
void kern_rope_cache(float *cos_sin, int n_rot, float pos, float base, float scale,
                     const float *freq_factors, const float *yarn_dims);
/* YaRN's correction dims for a RoPE base (ggml_rope_yarn_corr_dims): where
 * beta_fast and beta_slow turns fit the original context (llama.cpp's
 * defaults: 32 and 1). */
void kern_rope_yarn_dims(int n_rot, int n_ctx_orig, float base, float beta_fast, float beta_slow,
                         float dims[2]);
/* Rotates the first n_rot dims of one head of x in place: adjacent pairs
 * (neox = false) or dims i and i + n_rot/2 (neox = true). */
void kern_rope_apply(float *x, const float *cos_sin, int n_rot, bool neox);
/* Attention of one query over the cache rows of one kv head at positions
 * p0..p0+n-1, in ggml's arithmetic (see ops.c); row i is at k + i * ld (or
 * v + i * ld) elements of f32, or of f16 when *_f16. `batch` selects the
 * order llama.cpp uses when the batch holds two or more tokens. `n_row` is
 * the length of the row ggml computes over (masked positions included):
 * its elements past the last whole SIMD group are summed one at a time.
 * A cache's rows are a multiple of 256 long (KERN_ATTN_ROW_PADDED); an
 * encoder's, without a cache, are its text's length.
 * kern_attn_scores: sc[i] = q . k_i.
 * kern_attn_softmax: in place, x = softmax(x * scale).
 * kern_attn_values: out[hd] = sum_i w[i] v_i. */
#define KERN_ATTN_ROW_PADDED ((int64_t)1 << 62)
void kern_attn_scores(float *sc, const float *q, const void *k, size_t ld, int64_t n, int hd,
                      bool k_f16, bool batch);
void kern_attn_softmax(float *x, int64_t p0, int64_t n, int64_t n_row, float scale);
/* In place, x = cap * tanh(x / cap) in llama.cpp's arithmetic: the
 * soft-capping of attention scores (before the softmax) and of logits. */
void kern_softcap(float *x, int64_t n, float cap);
void kern_attn_values(float *out, const float *w, const void *v, size_t ld, int64_t p0, int64_t n,
                      int64_t n_row, int hd, bool v_f16, bool batch);

/* --- attention over a tiled cache, for several query rows at once (attn.c) ---
 * The cache of one layer and kv head as these read it: K in tiles of
 * KERN_KV_TILE positions stored transposed, so element d of the key at
 * position p is at k[(p / T) * T * hd + d * T + p % T] (T = KERN_KV_TILE);
 * V row p at v[p * hd]. Elements are f32, or f16 when `f16`.
 * kern_attn_tile computes, for each of n_rows <= KERN_ATTN_ROWS rows (q and
 * out: hd floats), out = softmax(q . k_p * scale, lo <= p <= hi) V with the
 * same bits as kern_attn_scores/softmax/values (ggml's order; `batch` as
 * there) would. The rows' key ranges may differ; every position up to the
 * largest hi must have been written, and hi < n_pos. `work` holds
 * kern_attn_work_floats(hd, n_pos) floats, owned by the calling thread.
 * The per-ISA kernels (kern_fns.attn of KERN_F32/KERN_F16, for head sizes
 * that are multiples of 16 up to KERN_ATTN_MAX_HD) share the loads of the
 * cache between the rows and vectorise across keys; the fallback calls the
 * functions above row by row.
 *
 * A Q8_0 cache (kern_attn_tile_q8_0) holds each position of a head as
 * nb = ceil(hd / 32) Q8_0 blocks (ggml's block_q8_0: an fp16 scale d and 32
 * int8 values, x = d * q; a head size that is no multiple of 32 is padded
 * with zeros to whole blocks), KERN_KV_Q8_BLOCK_BYTES each, so a position
 * takes nb * 34 bytes in K and in V (kern_kv_row_bytes):
 *  - V row p at v + p * nb * 34: its nb blocks as block_q8_0, in order;
 *  - K in the same tiles of T positions, each the nb * 34 * T bytes of T
 *    rows reordered for products across keys: block b of tile t starts at
 *    k + (t * nb + b) * 34 * T and holds the T keys' scales (fp16, key j's
 *    at byte 2 j), then their values in groups of 4 dims: value i (0..31)
 *    of key j at byte 2 T + (i / 4) * 4 T + 4 j + i % 4. A 16-byte (NEON),
 *    32-byte (AVX2) or 64-byte (AVX-512) load of a group is then 4 dims of
 *    4, 8 or 16 consecutive keys, each key's 4 bytes in one 32-bit lane:
 *    one vpdpbusd / sdot per group and row.
 * The kernels read K a whole tile at a time, so n_pos must be a multiple
 * of T (a session's n_ctx_pad is). Positions are stored with
 * kern_kv_store (ggml's CPU quantizer: the rounding llama.cpp's set_rows
 * uses on x86, kern_quantize_q8_0_act). The arithmetic, which every
 * kernel has bit for bit (not llama.cpp's: its quantized V needs flash
 * attention, whose online softmax differs): q is quantized to Q8_0 the
 * same way (its padding zero); for each key p,
 *   s_p = 0; for b < nb: s_p = fmaf((float)isum_b, dk_pb * dq_b, s_p)
 * with isum_b the exact integer dot product of block b's values; then
 * kern_attn_softmax(s, lo, hi - lo + 1, scale) gives w, and for each
 * output dim d (block b, value i) one chain over p from lo to hi,
 *   out_d = fmaf((float)v_pbi, w_p * dv_pb, out_d), out_d starting at 0.
 * Head sizes that are multiples of 32 up to KERN_ATTN_MAX_HD take this
 * CPU's kernel (attn_q8.h); others the scalar reference. */
#define KERN_KV_TILE           16
#define KERN_ATTN_ROWS         4
#define KERN_ATTN_MAX_HD       512
#define KERN_KV_Q8_BLOCK_BYTES 34
typedef struct kern_attn_row {
    const float *q; /* [hd] */
    float *out;     /* [hd] */
    int lo, hi;     /* first and last key position, lo <= hi */
} kern_attn_row;
typedef struct kern_attn_args {
    const kern_attn_row *rows;
    int n_rows, hd, n_pos;
    const void *k, *v; /* the tiles and rows of one layer and kv head, from position 0 */
    bool batch;        /* f32/f16 only: ggml's order for a batch (the Q8_0 arithmetic has one) */
    float scale;
    float softcap; /* > 0: scores soft-capped (kern_softcap) before the softmax */
    float *work;
} kern_attn_args;
size_t kern_attn_work_floats(int hd, int n_pos);
void kern_attn_tile(const kern_attn_args *a, bool f16);
/* The same over a Q8_0 cache: this CPU's kernel, or the reference. */
void kern_attn_tile_q8_0(const kern_attn_args *a);
/* The scalar reference of the Q8_0 arithmetic above (the specification). */
void kern_attn_tile_q8_0_ref(const kern_attn_args *a);

/* Bytes one position takes in the K (and in the V) cache of one kv head of
 * head size hd, for a cache of type KERN_F32, KERN_F16 or KERN_Q8_0; 0 for
 * other types. */
size_t kern_kv_row_bytes(kern_type cache, int hd);
/* Stores the key kx[hd] and value vx[hd] of position pos into the cache of
 * one layer and kv head (k, v: its tiles and rows from position 0, in the
 * layout above for `cache`): f16 rounded to nearest even, Q8_0 quantized
 * as ggml's CPU backend quantizes (kern_quantize_q8_0_act's bits). */
void kern_kv_store(kern_type cache, void *k, void *v, int hd, int pos, const float *kx,
                   const float *vx);
/* The key alone: kern_kv_store_k stores kx[hd] at position pos as
 * kern_kv_store does (the same bytes); kern_kv_load_k reads the key stored
 * there back as floats (F16 widened, Q8_0 dequantized: d * q). A context
 * shift (hearth_session_shift) rotates keys through them. */
void kern_kv_store_k(kern_type cache, void *k, int hd, int pos, const float *kx);
void kern_kv_load_k(kern_type cache, const void *k, int hd, int pos, float *kx);

/* y[i] = silu(g[i]) * u[i], with ggml's approximate exp. */
void kern_swiglu(float *y, const float *g, const float *u, int64_t n);
/* Default mode's faster twins: kern_swiglu_fast has kern_swiglu's bits,
 * vectorised (y must not overlap g or u); kern_rms_norm_fast sums the
 * squares in another order. */
void kern_swiglu_fast(float *restrict y, const float *restrict g, const float *restrict u,
                      int64_t n);
void kern_rms_norm_fast(float *y, const float *x, const float *w, int64_t n, float eps);
/* y[i] = gelu(g[i]) * u[i], tanh approximation through ggml's FP16 table;
 * u NULL: gelu(g[i]) alone (ggml_gelu; y may be g). */
void kern_geglu(float *y, const float *g, const float *u, int64_t n);

/* Hot loops written with fmaf: on x86-64 Linux the compiler also builds a
 * copy for CPUs with AVX2 and FMA, chosen once at load time (ifunc), where
 * fmaf is one instruction instead of a libm call and fixed-length lane
 * loops vectorise. The two copies give the same bits. GCC only: clang 14
 * names the clones so that other translation units cannot link them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) &&       \
    !defined(__SANITIZE_ADDRESS__) && !defined(HEARTH_NO_CLONES)
#define KERN_FMA_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
/* The same with an AVX-512 copy too, for default mode's long element-wise
 * loops. */
#define KERN_FMA_CLONES_512                                                                        \
    __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define KERN_FMA_CLONES
#define KERN_FMA_CLONES_512
#endif

/* --- ggml's float arithmetic, bit for bit (ggml_math.c) ---
 * Scalar twins of what llama.cpp's CPU backend computes on x86-64 with
 * AVX-512: its exp/SiLU approximations and the summation orders of its SIMD
 * dot products. "_x16" is llamafile's tinyBLAS order (used for products of
 * two or more rows), the plain names ggml's vec_dot order. */
float kern_ggml_expf(float x);
float kern_ggml_silu(float x);
float kern_ggml_hsum16(const float v[16]);
float kern_ggml_hsum8(const float v[8]);
float kern_ggml_reduce4x16(float acc[4][16]);
float kern_ggml_dot_f32(const float *x, const float *y, int64_t n);
float kern_ggml_dot_f32_x16(const float *x, const float *y, int64_t n);
float kern_ggml_dot_f16(const uint16_t *x, const uint16_t *y, int64_t n);
float kern_ggml_dot_f16_x16(const uint16_t *x, const uint16_t *y, int64_t n);
/* A Gated DeltaNet step of one head's state (ggml_gated_delta_net): st is
 * n rows of n, row c the state's column that v[c] reads; st *= decay,
 * d = (v - st k) beta, st += k d^T, y = st q scale. n <= 1024 (hparams.c
 * bounds a Gated DeltaNet head's state there). */
void kern_ggml_gdn_step(float *st, const float *q, const float *k, const float *v, float decay,
                        float beta, float scale, int n, float *y);
/* Default mode's twin: each row through the four steps in one pass, the
 * dot products in 16 lanes and a fixed tree (another order). */
void kern_gdn_step_fast(float *restrict st, const float *restrict q, const float *restrict k,
                        const float *restrict v, float decay, float beta, float scale, int n,
                        float *restrict y);
/* A Mamba-2 scan step of one channel's state[n] (ggml's ssm_scan): state =
 * state dA + B x_dt, returning the new state's dot product with C. */
float kern_ggml_ssm_step(float *state, const float *B, const float *C, float dA, float x_dt,
                         int64_t n);

/* kern_matmul with llama.cpp's float arithmetic (ggml_matmul.c): each dot
 * product in the order of the kernel llama.cpp's x86-64 AVX-512 build runs
 * for this type and n_tok. `repack`: the weight would sit in llama.cpp's
 * CPU_REPACK buffer (every matrix product weight but a tied token
 * embedding), which changes the order for Q4_0 and Q4_K. Same arguments and
 * scratch as kern_matmul; scalar C, 5 to 50 times slower (conformance checks). */
void kern_matmul_ggml(hr_pool *pool, kern_type type, const void *w, int64_t n_rows, int64_t n_cols,
                      const float *x, int64_t n_tok, float *y, int64_t ldy, void *scratch,
                      bool repack);
/* Whether the forward pass runs its products with kern_matmul_ggml (llama.cpp's
 * bits, slow) instead of kern_matmul (fast, equal up to float rounding).
 * Initially HEARTH_EXACT from the environment (unset or "0": off);
 * kern_set_exact overrides it for the whole process, before any session
 * computes. */
bool kern_exact(void);
void kern_set_exact(bool on);

#endif
