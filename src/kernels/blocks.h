/*
 * blocks.h - the on-disk block formats, byte for byte as GGML/llama.cpp store
 * them in GGUF files (little-endian). A row of n elements of a quantized type
 * is n / block_size consecutive blocks. Private to src/kernels/.
 */
#ifndef HEARTH_BLOCKS_H
#define HEARTH_BLOCKS_H

#include <stdint.h>

typedef uint16_t kern_f16;  /* IEEE binary16 bits */
typedef uint16_t kern_bf16; /* bfloat16 bits */

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { kern_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;               /* 18 bytes */
typedef struct { kern_f16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;            /* 20 bytes */
typedef struct { kern_f16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0; /* 22 bytes */
typedef struct { kern_f16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1; /* 24 */
typedef struct { kern_f16 d; int8_t qs[QK8_0]; } block_q8_0;                    /* 34 bytes */
typedef struct { kern_f16 d, s; int8_t qs[QK8_1]; } block_q8_1; /* 36; s = d * sum(qs) */

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
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");

#endif
