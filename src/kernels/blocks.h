/*
 * blocks.h - the on-disk block formats, byte for byte as GGML/llama.cpp store
 * them in GGUF files (little-endian). A row of n elements of a quantized type
 * is n / block_size consecutive blocks. Private to src/kernels/.
 */
#ifndef HEARTH_BLOCKS_H
#define HEARTH_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t kern_f16;  /* IEEE binary16 bits */
typedef uint16_t kern_bf16; /* bfloat16 bits */

#define QK4_0        32
#define QK4_1        32
#define QK5_0        32
#define QK5_1        32
#define QK8_0        32
#define QK8_1        32
#define QK_K         256
#define K_SCALE_SIZE 12
#define QK4_NL       32

typedef struct {
    kern_f16 d;
    uint8_t qs[QK4_0 / 2];
} block_q4_0; /* 18 bytes */
typedef struct {
    kern_f16 d, m;
    uint8_t qs[QK4_1 / 2];
} block_q4_1; /* 20 bytes */
typedef struct {
    kern_f16 d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0; /* 22 bytes */
typedef struct {
    kern_f16 d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1; /* 24 */
typedef struct {
    kern_f16 d;
    int8_t qs[QK8_0];
} block_q8_0; /* 34 bytes */
typedef struct {
    kern_f16 d, s;
    int8_t qs[QK8_1];
} block_q8_1; /* 36; s = d * sum(qs) */

/* Q2_K: 16 sub-blocks of 16 elements x = d * sc * q - dmin * m with q in 0..3
 * and 4-bit sc (low nibble of scales[j]) and m (high nibble). qs holds 4
 * levels a byte: per 128 elements, byte l has elements l, l + 32, l + 64 and
 * l + 96 in bits 0-1, 2-3, 4-5 and 6-7. */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    kern_f16 d, dmin;
} block_q2_K; /* 84 bytes */

/* Q3_K: 16 sub-blocks of 16 elements x = d * (sc - 32) * (q - 4) with q in
 * 0..7: its low 2 bits in qs as Q2_K's, its high bit for element 32*b + l
 * (b = 0..7) in bit b of hmask[l]; the 6-bit sc of sub-block j has its low
 * nibble in scales[j] (j < 8) or the high nibble of scales[j - 8], its top 2
 * bits in bits 2*(j/4) of scales[8 + j%4]. */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    kern_f16 d;
} block_q3_K; /* 110 bytes */

/* Their fields' byte offsets, for SIMD code that reads a block as bytes. */
enum {
    Q2K_SCALES = offsetof(block_q2_K, scales),
    Q2K_QS = offsetof(block_q2_K, qs),
    Q2K_D = offsetof(block_q2_K, d),
    Q2K_DMIN = offsetof(block_q2_K, dmin),
    Q3K_HMASK = offsetof(block_q3_K, hmask),
    Q3K_QS = offsetof(block_q3_K, qs),
    Q3K_SCALES = offsetof(block_q3_K, scales),
    Q3K_D = offsetof(block_q3_K, d),
};

/* Q3_K's 16 scales sc (0..63, the multiplier is sc - 32) from its 12 scale
 * bytes: byte k of u[w] is sub-block 4w + k's. What every SIMD kernel loads
 * into a vector before subtracting 32. */
static inline void kern_q3k_scale_bytes(const uint8_t *s12, uint32_t u[4]) {
    uint32_t a, b, c;
    memcpy(&a, s12, 4);
    memcpy(&b, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    u[0] = (a & m4) | (c & m2) << 4;               /* sub-blocks 0..3 */
    u[1] = (b & m4) | ((c >> 2) & m2) << 4;        /* 4..7 */
    u[2] = ((a >> 4) & m4) | ((c >> 4) & m2) << 4; /* 8..11 */
    u[3] = ((b >> 4) & m4) | ((c >> 6) & m2) << 4; /* 12..15 */
}

/* Q4_K: 8 sub-blocks of 32; 6-bit scales and mins packed into 12 bytes. */
typedef struct {
    kern_f16 d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K; /* 144 bytes */

typedef struct {
    kern_f16 d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K; /* 176 bytes */

/* Q6_K: 16 sub-blocks of 16 with int8 scales. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    kern_f16 d;
} block_q6_K; /* 210 bytes */

/* IQ4_NL: 32 weights d * kern_iq4nl_values[nibble] (a non-linear 16-level
 * codebook); nibbles laid out as Q4_0's: element j in the low nibble of
 * qs[j], element j + 16 in its high nibble. */
typedef struct {
    kern_f16 d;
    uint8_t qs[QK4_NL / 2];
} block_iq4_nl; /* 18 bytes */

/* IQ4_XS: 8 sub-blocks of 32 with 6-bit scales ls (stored +32: the scale is
 * d * (ls - 32)), low 4 bits of sub-block ib in nibble ib % 2 of
 * scales_l[ib / 2], high 2 bits in bits 2ib..2ib+1 of scales_h; the nibbles of
 * sub-block ib in qs[16 ib .. 16 ib + 15], laid out as IQ4_NL's. */
typedef struct {
    kern_f16 d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs; /* 136 bytes */

/* Q8_K: activations for K-quant dot products; bsums are sums of groups of 16. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K; /* 292 bytes */

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K layout");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K layout");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl layout");
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs layout");

/* The IQ4_NL / IQ4_XS codebook (ggml's kvalues_iq4nl): the level of each
 * nibble value. */
static const int8_t kern_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

/* The stored 6-bit scale ls (0..63; the multiplier is ls - 32) of sub-block
 * ib (0..7) of an IQ4_XS block. */
static inline int kern_iq4_xs_ls(const block_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((b->scales_h >> 2 * ib) & 3) << 4);
}

#endif
