/*
 * test_quantize_presets.c - the llama-quantize presets added after the first
 * six (Q2_K, Q3_K_S/M/L, Q4_K_S, Q5_K_S, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS)
 * and the Q2_K / Q3_K blocks they need.
 *
 * Without fixtures: blocks that ggml's quantize_row_*_ref (llama.cpp
 * 34af94cd) wrote for a fixed input, recorded below as hex; a decoder written
 * here from the block layouts against kern_ref_dequantize_row (exact, on
 * random bytes); round-trip error bounds; the Q2_K/Q3_K dot products against
 * dequantize-then-multiply; preset names, aliases and file types.
 *
 * With ../shared/conformance: each tiny model's F32 file through quant_plan
 * and quant_model for each preset. The table below was read from the files
 * `llama-quantize F32 OUT PRESET` wrote: every weight whose type is not the
 * preset's base type, and an FNV-1a hash of the whole file, so that the
 * output is checked byte for byte without storing llama-quantize's files.
 * Outputs whose types the engine computes are also loaded and run, their
 * logits as far from the F32 ones as llama.cpp's for the same file.
 */
#include "hearth.h"
#include "golden.h"
#include "kernels/kernels.h"
#include "model/quantize.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- golden blocks ---------------------------------------------------------------- */

/* The input the golden blocks were made from: exact in binary, so the same
 * floats on every platform (one product and one sum, kept apart so that no
 * compiler fuses them). */
static void golden_input(float *x, int n) {
    for (int i = 0; i < n; i++) {
        float v = (float)((i * 7919) % 211 - 105) * 0.0123f;
        if (i % 16 == 3) v += 1.5f;
        x[i] = v;
    }
}

/* quantize_row_<type>_ref(golden_input) from llama.cpp 34af94cd's ggml. */
static const struct {
    kern_type type;
    int n; /* elements */
    const char *hex;
} golden_blocks[] = {
    {KERN_Q2_K, 256,
     "ccfacafacaa8dab8dab8bac8cac8ca9ffc5500ff00aa00aa00aa55aa55fe55fe"
     "5af09aaaaa00aa05aa05ff55ff55ff55ff55fcff006600aa00aa01aa55ab55ff"
     "15bf69ea6a006a006a007f157f157f15fc2c682d"},
    {KERN_Q3_K, 256,
     "01ff1f00ffc0ff00ff00ff00ff00ff00ff00ff03f3fc83fc03fc03fc03fc03ff"
     "5700ff00faffaaffaaaa55aa55aa5055000000f5f5f5f5faaaaaaaaf5f5f5f50"
     "55005700ff0ffeffeaffaaaa95aa55551480003f00bf3f7fff7eea6ae669d555"
     "dc1fec2fed21fd01005600167b25"},
    {KERN_Q4_1, 64,
     "7b322abd6007719f82289239933aa44bb55cc66c593211bd6d07708f81289229"
     "933aa44bb55bc56c"},
    {KERN_Q5_0, 64,
     "fcae5555a3aa0cbffac0d98cc77ba659954873266215d6ae5655a3aa04c0fbc0"
     "d99dc87ba66a954873376215"},
    {KERN_Q5_1, 64,
     "452e2abda8aa5855d01ef22f03412563477558967aa88bc9252e11bda9aa5855"
     "da0ee11f033124533674588679a88bc9"},
};

static void golden_block_tests(void) {
    float x[256];
    golden_input(x, 256);
    for (size_t k = 0; k < sizeof golden_blocks / sizeof golden_blocks[0]; k++) {
        const kern_type t = golden_blocks[k].type;
        const size_t bytes = kern_row_bytes(t, golden_blocks[k].n);
        REQUIRE(bytes > 0 && strlen(golden_blocks[k].hex) == 2 * bytes);
        uint8_t *got = malloc(bytes), *want = malloc(bytes);
        REQUIRE(got && want);
        for (size_t i = 0; i < bytes; i++) {
            unsigned v;
            REQUIRE(sscanf(golden_blocks[k].hex + 2 * i, "%2x", &v) == 1);
            want[i] = (uint8_t)v;
        }
        kern_ref_quantize_row(t, x, got, golden_blocks[k].n);
        size_t first = bytes;
        for (size_t i = 0; i < bytes && first == bytes; i++)
            if (got[i] != want[i]) first = i;
        CHECKF(first == bytes, "%s: byte %zu is %02x, ggml wrote %02x", kern_type_get(t)->name,
               first, first < bytes ? got[first] : 0, first < bytes ? want[first] : 0);
        free(got);
        free(want);
    }
}

/* ---- the layouts, read plainly -------------------------------------------------- */

static float f16_at(const uint8_t *p) { return kern_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Level k (0..255) of a 2-bit field of 64 bytes: per 128 elements, byte l
 * holds elements l, l + 32, l + 64 and l + 96 from the low bits up. */
static int two_bits(const uint8_t *qs, int k) {
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): k < 256, 64 bytes
    return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
}

/* Low nibble of byte j for elements 0..15, high nibble for 16..31. */
static int nibble(const uint8_t *qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }

/* One block of t at b into y, with ggml's dequantize_row_* expressions:
 *   Q2_K  scales[16] qs[64] d dmin: (d * (sc & 15)) * q - dmin * (sc >> 4)
 *   Q3_K  hmask[32] qs[64] scales[12] d: (d * (s6 - 32)) * (q2 - (hbit ? 0 : 4))
 *   Q4_1  d m qs[16]: q * d + m;  Q5_0  d qh[4] qs[16]: (q - 16) * d;
 *   Q5_1  d m qh[4] qs[16]: q * d + m (bit 4 of element e in bit e of qh) */
static void decode_block(kern_type t, const uint8_t *b, float *y) {
    switch (t) {
    case KERN_Q2_K: {
        const float d = f16_at(b + 80), dmin = f16_at(b + 82);
        for (int k = 0; k < 256; k++) {
            const int sc = b[k / 16];
            y[k] = d * (float)(sc & 0xF) * (float)two_bits(b + 16, k) - dmin * (float)(sc >> 4);
        }
        break;
    }
    case KERN_Q3_K: {
        const uint8_t *sc = b + 96;
        const float d = f16_at(b + 108);
        for (int k = 0; k < 256; k++) {
            const int j = k / 16;
            const int s6 = (j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4) |
                           ((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
            const int q = two_bits(b + 32, k) - ((b[k % 32] >> (k / 32)) & 1 ? 0 : 4);
            y[k] = d * (float)(s6 - 32) * (float)q;
        }
        break;
    }
    case KERN_Q4_1:
        for (int j = 0; j < 32; j++) y[j] = (float)nibble(b + 4, j) * f16_at(b) + f16_at(b + 2);
        break;
    case KERN_Q5_0:
    case KERN_Q5_1: {
        const bool q51 = t == KERN_Q5_1;
        const uint8_t *h = b + (q51 ? 4 : 2);
        const uint32_t qh =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        for (int j = 0; j < 32; j++) {
            const int q = nibble(h + 4, j) | (int)((qh >> j) & 1) << 4;
            y[j] = q51 ? (float)q * f16_at(b) + f16_at(b + 2) : (float)(q - 16) * f16_at(b);
        }
        break;
    }
    default: CHECKF(false, "no decoder for %s", kern_type_get(t)->name); break;
    }
}

static const kern_type new_types[] = {KERN_Q2_K, KERN_Q3_K, KERN_Q4_1, KERN_Q5_0, KERN_Q5_1};
enum { N_NEW_TYPES = sizeof new_types / sizeof new_types[0] };

/* Offsets of the f16 fields of a block (set to finite values in random blocks). */
static int f16_fields(kern_type t, int *off) {
    switch (t) {
    case KERN_Q2_K: off[0] = 80, off[1] = 82; return 2;
    case KERN_Q3_K: off[0] = 108; return 1;
    case KERN_Q5_0: off[0] = 0; return 1;
    default: off[0] = 0, off[1] = 2; return 2; /* Q4_1, Q5_1 */
    }
}

/* kern_ref_dequantize_row equals the plain reading on random blocks, bit for bit. */
static void layout_tests(void) {
    unsigned long long rng = 52;
    for (int k = 0; k < N_NEW_TYPES; k++) {
        const kern_type t = new_types[k];
        const int bs = (int)kern_type_get(t)->block_size, nb = 3, n = bs * nb;
        const size_t bytes = kern_row_bytes(t, n), bb = bytes / (size_t)nb;
        uint8_t *q = malloc(bytes);
        float *got = malloc((size_t)n * sizeof(float)), *want = malloc((size_t)n * sizeof(float));
        REQUIRE(q && got && want);
        int n_bad = 0;
        for (int it = 0; it < 50; it++) {
            for (size_t i = 0; i < bytes; i++) q[i] = (uint8_t)test_rand_u64(&rng);
            for (int b = 0; b < nb; b++) {
                int off[2];
                const int nf = f16_fields(t, off);
                for (int f = 0; f < nf; f++) {
                    const uint16_t h = kern_f32_to_f16(test_rand_f(&rng) * 0.1f);
                    q[(size_t)b * bb + (size_t)off[f]] = (uint8_t)h;
                    q[(size_t)b * bb + (size_t)off[f] + 1] = (uint8_t)(h >> 8);
                }
                decode_block(t, q + (size_t)b * bb, want + b * bs);
            }
            kern_ref_dequantize_row(t, q, got, n);
            n_bad += memcmp(got, want, (size_t)n * sizeof(float)) != 0;
        }
        CHECKF(n_bad == 0, "%s: dequantize differs from the layout on %d of 50 rows",
               kern_type_get(t)->name, n_bad);
        free(q);
        free(got);
        free(want);
    }
}

/* Quantize -> dequantize: the error's rms relative to the data's stays
 * below what each format gives (measured worst over such data: Q2_K 0.27,
 * Q3_K 0.14, Q4_1 0.07, Q5_0 0.035, Q5_1 0.033); all levels are used (a
 * dropped bit would not be); zeros stay zeros. */
static void round_trip_tests(void) {
    static const double bound[N_NEW_TYPES] = {0.35, 0.2, 0.1, 0.05, 0.05};
    static const int n_levels[N_NEW_TYPES] = {4, 8, 16, 32, 32};
    unsigned long long rng = 5252;
    const int n = 1024;
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    REQUIRE(x && y);
    for (int k = 0; k < N_NEW_TYPES; k++) {
        const kern_type t = new_types[k];
        const size_t bytes = kern_row_bytes(t, n);
        uint8_t *q = malloc(bytes);
        REQUIRE(q);
        double worst = 0;
        for (int it = 0; it < 40; it++) {
            const float scale = it % 4 == 0   ? 1e-3f
                                : it % 4 == 1 ? 1.0f
                                : it % 4 == 2 ? 30.0f
                                              : 0.2f;
            for (int i = 0; i < n; i++)
                x[i] = test_rand_f(&rng) * scale + (it % 5 == 4 ? scale : 0);
            kern_ref_quantize_row(t, x, q, n);
            kern_ref_dequantize_row(t, q, y, n);
            double e2 = 0, x2 = 0;
            for (int i = 0; i < n; i++) {
                e2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                x2 += (double)x[i] * x[i];
            }
            if (sqrt(e2 / x2) > worst) worst = sqrt(e2 / x2);
        }
        CHECKF(worst <= bound[k], "%s: round trip rms error %.3f of the data's",
               kern_type_get(t)->name, worst);
        /* a ramp over each group of 16 (K types) or 32 elements reaches every
         * level (but the odd one a clamp merges): a dropped bit would halve them */
        const int bs = (int)kern_type_get(t)->block_size, g = bs == 256 ? 16 : 32;
        for (int i = 0; i < bs; i++) x[i] = -1.0f + 2.0f * (float)(i % g) / (float)(g - 1);
        kern_ref_quantize_row(t, x, q, bs);
        kern_ref_dequantize_row(t, q, y, bs);
        int fewest = g;
        for (int s0 = 0; s0 < bs; s0 += g) {
            int n_distinct = 0;
            for (int i = s0; i < s0 + g; i++) {
                bool seen = false;
                for (int j = s0; j < i && !seen; j++) seen = y[j] == y[i];
                n_distinct += !seen;
            }
            if (n_distinct < fewest) fewest = n_distinct;
        }
        CHECKF(fewest >= n_levels[k] - 1 && fewest <= n_levels[k],
               "%s: a ramp quantized to %d distinct values (%d levels)", kern_type_get(t)->name,
               fewest, n_levels[k]);
        memset(x, 0, (size_t)n * sizeof(float));
        kern_ref_quantize_row(t, x, q, n);
        kern_ref_dequantize_row(t, q, y, n);
        CHECKF(test_max_diff(x, y, (size_t)n) == 0, "%s: zeros do not come back",
               kern_type_get(t)->name);
        free(q);
    }
    free(x);
    free(y);
}

/* The Q2_K/Q3_K dot products with Q8_K activations against the dequantized
 * rows multiplied in double. */
static void dot_tests(void) {
    unsigned long long rng = 99;
    for (int k = 0; k < 2; k++) {
        const kern_type t = new_types[k];
        for (int n = 256; n <= 1024; n *= 2) {
            float *w = malloc((size_t)n * sizeof(float)), *a = malloc((size_t)n * sizeof(float));
            uint8_t *wq = malloc(kern_row_bytes(t, n)), *aq = malloc(kern_row_bytes(KERN_Q8_K, n));
            REQUIRE(w && a && wq && aq);
            for (int i = 0; i < n; i++) w[i] = test_rand_f(&rng), a[i] = test_rand_f(&rng) * 3;
            kern_ref_quantize_row(t, w, wq, n);
            kern_ref_quantize_row(KERN_Q8_K, a, aq, n);
            kern_ref_dequantize_row(t, wq, w, n);
            kern_ref_dequantize_row(KERN_Q8_K, aq, a, n);
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                ref += (double)w[i] * a[i];
                mag += fabs((double)w[i] * a[i]);
            }
            float s = -1;
            kern_ref_vec_dot(t, n, &s, wq, aq);
            CHECKF(fabs(s - ref) <= 1e-5 * mag, "%s n=%d: dot %.6g, dequantized %.6g",
                   kern_type_get(t)->name, n, (double)s, ref);
            free(w);
            free(a);
            free(wq);
            free(aq);
        }
    }
}

/* ---- names ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    quant_ftype ftype;
    uint32_t file_type; /* llama_ftype */
    kern_type base;
} new_presets[] = {
    {"Q2_K", QUANT_FTYPE_Q2_K, 10, KERN_Q2_K},
    {"Q3_K_S", QUANT_FTYPE_Q3_K_S, 11, KERN_Q3_K},
    {"Q3_K_M", QUANT_FTYPE_Q3_K_M, 12, KERN_Q3_K},
    {"Q3_K_L", QUANT_FTYPE_Q3_K_L, 13, KERN_Q3_K},
    {"Q4_K_S", QUANT_FTYPE_Q4_K_S, 14, KERN_Q4_K},
    {"Q5_K_S", QUANT_FTYPE_Q5_K_S, 16, KERN_Q5_K},
    {"Q4_1", QUANT_FTYPE_Q4_1, 3, KERN_Q4_1},
    {"Q5_0", QUANT_FTYPE_Q5_0, 8, KERN_Q5_0},
    {"Q5_1", QUANT_FTYPE_Q5_1, 9, KERN_Q5_1},
    {"IQ4_NL", QUANT_FTYPE_IQ4_NL, 25, KERN_IQ4_NL},
    {"IQ4_XS", QUANT_FTYPE_IQ4_XS, 30, KERN_IQ4_XS},
};
enum { N_NEW_PRESETS = sizeof new_presets / sizeof new_presets[0] };

static void name_tests(void) {
    for (int i = 0; i < N_NEW_PRESETS; i++) {
        quant_ftype ft = 0;
        char lower[16];
        snprintf(lower, sizeof lower, "%s", new_presets[i].name);
        for (char *c = lower; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        CHECKF(quant_ftype_parse(new_presets[i].name, &ft) && ft == new_presets[i].ftype &&
                   quant_ftype_parse(lower, &ft) && ft == new_presets[i].ftype,
               "%s", new_presets[i].name);
        CHECK((uint32_t)new_presets[i].ftype == new_presets[i].file_type);
        CHECK(quant_ftype_name(ft) && !strcmp(quant_ftype_name(ft), new_presets[i].name));
        CHECK(quant_ftype_base_type(ft) == new_presets[i].base);
        CHECK(quant_type_writable(new_presets[i].base));
    }
    /* llama-quantize's aliases name the _M presets */
    quant_ftype ft = 0;
    CHECK(quant_ftype_parse("Q3_K", &ft) && ft == QUANT_FTYPE_Q3_K_M);
    CHECK(quant_ftype_parse("q4_k", &ft) && ft == QUANT_FTYPE_Q4_K_M);
    CHECK(quant_ftype_parse("Q5_K", &ft) && ft == QUANT_FTYPE_Q5_K_M);
    CHECK(quant_ftype_parse("q2_k_s", &ft) && ft == QUANT_FTYPE_Q2_K_S &&
          quant_ftype_base_type(ft) == KERN_Q2_K);
    CHECK(!quant_ftype_parse("Q6_K_M", &ft) && !quant_ftype_parse("IQ3_M", &ft));
    CHECK(!quant_type_writable(KERN_Q8_K) && !quant_type_writable(KERN_Q8_1));
}

/* ---- the conformance models ---------------------------------------------------------- */

/* From llama-quantize's outputs (34af94cd, no imatrix): the FNV-1a hash of
 * the file; how far llama.cpp's prompt logits for that file are from the F32
 * golden ones (relative rms, computed as the goldens were: F32 KV cache, no
 * flash attention, one batch); and every weight whose type differs from the
 * preset's base type, as LAYER.NAME=type ("blk." and ".weight" left out).
 * Every other matrix has the base type; 1-D tensors stay F32. */
static const struct {
    const char *model, *preset;
    uint64_t fnv1a;
    double llama_rel;
    const char *others;
} expect[] = {
    {"tiny-llama", "Q2_K", 0x3dfcc40b7f727f1dull, 0.8554,
     "output=q6_K 0.attn_output=q3_K 0.attn_v=q3_K 0.ffn_down=q3_K 1.attn_output=q3_K "
     "1.attn_v=q3_K 1.ffn_down=q3_K"},
    {"tiny-llama", "Q3_K_S", 0x51fdb0051cfeb41eull, 0.5516, "output=q6_K"},
    {"tiny-llama", "Q3_K_M", 0x4df991ebf3f0bcb7ull, 0.4619,
     "output=q6_K 0.attn_output=q4_K 0.attn_v=q5_K 0.ffn_down=q4_K 1.attn_output=q4_K "
     "1.attn_v=q5_K 1.ffn_down=q4_K"},
    {"tiny-llama", "Q3_K_L", 0x8ed15ce378d1bf5bull, 0.4532,
     "output=q6_K 0.attn_output=q5_K 0.attn_v=q5_K 0.ffn_down=q5_K 1.attn_output=q5_K "
     "1.attn_v=q5_K 1.ffn_down=q5_K"},
    {"tiny-llama", "Q4_K_S", 0x8abd47eac9206ef7ull, 0.2580,
     "output=q6_K 0.attn_v=q5_K 1.attn_v=q5_K"},
    {"tiny-llama", "Q5_K_S", 0x2cf402c2ab898834ull, 0.1428, "output=q6_K"},
    {"tiny-llama", "Q4_1", 0x635193d3a41202bbull, 0.3054, "output=q6_K"},
    {"tiny-llama", "Q5_0", 0x836e4dbe340c888eull, 0.1723, "output=q6_K"},
    {"tiny-llama", "Q5_1", 0x8cf2f1595d535d13ull, 0.1582, "output=q6_K"},
    {"tiny-llama", "IQ4_NL", 0xadfe4e260e1b6548ull, 0.2979, "output=q6_K"},
    {"tiny-llama", "IQ4_XS", 0x48c4db9bc7261e22ull, 0.3080, "output=q6_K"},
    {"tiny-qwen2", "Q2_K", 0x5ab63008ec275c0full, 0.3239,
     "token_embd=q8_0 0.attn_k=q4_0 0.attn_output=q4_0 0.attn_q=q4_0 0.attn_v=q4_0 "
     "0.ffn_down=q3_K 0.ffn_gate=q4_0 0.ffn_up=q4_0 1.attn_k=q4_0 1.attn_output=q4_0 "
     "1.attn_q=q4_0 1.attn_v=q4_0 1.ffn_down=q3_K 1.ffn_gate=q4_0 1.ffn_up=q4_0"},
    {"tiny-qwen2", "Q3_K_S", 0x87356d7782e118a8ull, 0.3239,
     "token_embd=q8_0 0.attn_k=q4_0 0.attn_output=q4_0 0.attn_q=q4_0 0.attn_v=q4_0 "
     "0.ffn_gate=q4_0 0.ffn_up=q4_0 1.attn_k=q4_0 1.attn_output=q4_0 1.attn_q=q4_0 "
     "1.attn_v=q4_0 1.ffn_gate=q4_0 1.ffn_up=q4_0"},
    {"tiny-qwen2", "Q3_K_M", 0x32921e7bcc8b9a4dull, 0.2187,
     "token_embd=q8_0 0.attn_k=q4_0 0.attn_output=q5_0 0.attn_q=q4_0 0.attn_v=q5_1 "
     "0.ffn_down=q4_K 0.ffn_gate=q4_0 0.ffn_up=q4_0 1.attn_k=q4_0 1.attn_output=q5_0 "
     "1.attn_q=q4_0 1.attn_v=q5_1 1.ffn_down=q4_K 1.ffn_gate=q4_0 1.ffn_up=q4_0"},
    {"tiny-qwen2", "Q3_K_L", 0xad8028f1d051b5d9ull, 0.2092,
     "token_embd=q8_0 0.attn_k=q4_0 0.attn_output=q5_1 0.attn_q=q4_0 0.attn_v=q5_1 "
     "0.ffn_down=q5_K 0.ffn_gate=q4_0 0.ffn_up=q4_0 1.attn_k=q4_0 1.attn_output=q5_1 "
     "1.attn_q=q4_0 1.attn_v=q5_1 1.ffn_down=q5_K 1.ffn_gate=q4_0 1.ffn_up=q4_0"},
    {"tiny-qwen2", "Q4_K_S", 0x1ddc0ef54670a916ull, 0.1409,
     "token_embd=q8_0 0.attn_k=q5_0 0.attn_output=q5_0 0.attn_q=q5_0 0.attn_v=q5_1 "
     "0.ffn_gate=q5_0 0.ffn_up=q5_0 1.attn_k=q5_0 1.attn_output=q5_0 1.attn_q=q5_0 "
     "1.attn_v=q5_1 1.ffn_gate=q5_0 1.ffn_up=q5_0"},
    {"tiny-qwen2", "Q5_K_S", 0x2913da23570852b2ull, 0.1287,
     "token_embd=q8_0 0.attn_k=q5_1 0.attn_output=q5_1 0.attn_q=q5_1 0.attn_v=q5_1 "
     "0.ffn_gate=q5_1 0.ffn_up=q5_1 1.attn_k=q5_1 1.attn_output=q5_1 1.attn_q=q5_1 "
     "1.attn_v=q5_1 1.ffn_gate=q5_1 1.ffn_up=q5_1"},
    {"tiny-qwen2", "Q4_1", 0xf07958fd3a9657f5ull, 0.2388, "token_embd=q8_0"},
    {"tiny-qwen2", "Q5_0", 0xef53d12a5004d040ull, 0.1350, "token_embd=q8_0"},
    {"tiny-qwen2", "Q5_1", 0x841ab8806fff532bull, 0.1285, "token_embd=q8_0"},
    {"tiny-qwen2", "IQ4_NL", 0xc332804da6e02a7aull, 0.2416, "token_embd=q8_0"},
    {"tiny-qwen2", "IQ4_XS", 0x0007cfd22efe7e50ull, 0.2411,
     "token_embd=q8_0 0.attn_k=iq4_nl 0.attn_output=iq4_nl 0.attn_q=iq4_nl 0.attn_v=iq4_nl "
     "0.ffn_gate=iq4_nl 0.ffn_up=iq4_nl 1.attn_k=iq4_nl 1.attn_output=iq4_nl "
     "1.attn_q=iq4_nl 1.attn_v=iq4_nl 1.ffn_gate=iq4_nl 1.ffn_up=iq4_nl"},
    {"tiny-qwen3", "Q2_K", 0xac8a0a6b045edda4ull, 0.6211,
     "token_embd=q6_K 0.attn_output=q3_K 0.attn_v=q4_K 0.ffn_down=q3_K 1.attn_output=q3_K "
     "1.attn_v=q4_K 1.ffn_down=q3_K"},
    {"tiny-qwen3", "Q3_K_S", 0xc777eb19d2aa6d13ull, 0.4676, "token_embd=q6_K"},
    {"tiny-qwen3", "Q3_K_M", 0x58efd91668be1cd9ull, 0.3432,
     "token_embd=q6_K 0.attn_output=q4_K 0.attn_v=q5_K 0.ffn_down=q4_K 1.attn_output=q4_K "
     "1.attn_v=q5_K 1.ffn_down=q4_K"},
    {"tiny-qwen3", "Q3_K_L", 0x207bf9e0b9bd873dull, 0.3216,
     "token_embd=q6_K 0.attn_output=q5_K 0.attn_v=q5_K 0.ffn_down=q5_K 1.attn_output=q5_K "
     "1.attn_v=q5_K 1.ffn_down=q5_K"},
    {"tiny-qwen3", "Q4_K_S", 0x53e19bdca0858311ull, 0.2256,
     "token_embd=q6_K 0.attn_v=q5_K 1.attn_v=q5_K"},
    {"tiny-qwen3", "Q5_K_S", 0x371b012c11254e9bull, 0.1303, "token_embd=q6_K"},
    {"tiny-qwen3", "Q4_1", 0x8ebc933d0205a144ull, 0.2595, "token_embd=q6_K"},
    {"tiny-qwen3", "Q5_0", 0x8ec000578a9a66bbull, 0.1457, "token_embd=q6_K"},
    {"tiny-qwen3", "Q5_1", 0x91cbe07fbe27a072ull, 0.1391, "token_embd=q6_K"},
    {"tiny-qwen3", "IQ4_NL", 0x726888044ce52d2aull, 0.2254,
     "token_embd=q6_K 0.attn_v=q5_K 1.attn_v=q5_K"},
    {"tiny-qwen3", "IQ4_XS", 0x70986abdcc86eda5ull, 0.2198,
     "token_embd=q6_K 0.attn_v=q5_K 1.attn_v=q5_K"},
    {"tiny-gemma3", "Q2_K", 0xcd5dd56b7819c6acull, 0.6526,
     "output=q6_K 0.attn_output=q3_K 0.attn_v=q4_K 0.ffn_down=q3_K 1.attn_output=q3_K "
     "1.attn_v=q4_K 1.ffn_down=q3_K 2.attn_output=q3_K 2.attn_v=q4_K 2.ffn_down=q3_K"},
    {"tiny-gemma3", "Q3_K_S", 0x074db9c29324320full, 0.4604, "output=q6_K"},
    {"tiny-gemma3", "Q3_K_M", 0xf8f2ca953e11d959ull, 0.3833,
     "output=q6_K 0.attn_output=q4_K 0.attn_v=q5_K 0.ffn_down=q4_K 1.attn_output=q4_K "
     "1.attn_v=q5_K 1.ffn_down=q4_K 2.attn_output=q4_K 2.attn_v=q4_K 2.ffn_down=q4_K"},
    {"tiny-gemma3", "Q3_K_L", 0x7e7eb145295a31d1ull, 0.3702,
     "output=q6_K 0.attn_output=q5_K 0.attn_v=q5_K 0.ffn_down=q5_K 1.attn_output=q5_K "
     "1.attn_v=q5_K 1.ffn_down=q5_K 2.attn_output=q5_K 2.attn_v=q5_K 2.ffn_down=q5_K"},
    {"tiny-gemma3", "Q4_K_S", 0x906d708276b194d6ull, 0.2106,
     "output=q6_K 0.attn_v=q5_K 1.attn_v=q5_K 2.attn_v=q5_K"},
    {"tiny-gemma3", "Q5_K_S", 0xfe4a5fc18b56fde6ull, 0.1197, "output=q6_K"},
    {"tiny-gemma3", "Q4_1", 0x132d97cd0eaf2cb9ull, 0.2483, "output=q6_K"},
    {"tiny-gemma3", "Q5_0", 0xffda167d4f328558ull, 0.1432, "output=q6_K"},
    {"tiny-gemma3", "Q5_1", 0x847db8ef4700aed4ull, 0.1246, "output=q6_K"},
    {"tiny-gemma3", "IQ4_NL", 0xfda4a28b92289cd4ull, 0.2267,
     "output=q6_K 0.attn_v=q5_K 1.attn_v=q5_K 2.attn_v=q5_K"},
    {"tiny-gemma3", "IQ4_XS", 0x2838942f498d07d4ull, 0.2288,
     "output=q6_K 0.attn_v=q5_K 1.attn_v=q5_K 2.attn_v=q5_K"},
    {"tiny-phi3", "Q2_K", 0xf4059e8004524e45ull, 0.7554,
     "output=q6_K 0.attn_output=q3_K 0.attn_qkv=q3_K 0.ffn_down=q3_K 1.attn_output=q3_K "
     "1.attn_qkv=q3_K 1.ffn_down=q3_K"},
    {"tiny-phi3", "Q3_K_S", 0xf1afaeb5aab9b8c9ull, 0.5767, "output=q6_K"},
    {"tiny-phi3", "Q3_K_M", 0xdf6f49fb920a51beull, 0.3907,
     "output=q6_K 0.attn_output=q4_K 0.attn_qkv=q5_K 0.ffn_down=q4_K 1.attn_output=q4_K "
     "1.attn_qkv=q5_K 1.ffn_down=q4_K"},
    {"tiny-phi3", "Q3_K_L", 0x3459de2ce59b8547ull, 0.3767,
     "output=q6_K 0.attn_output=q5_K 0.attn_qkv=q5_K 0.ffn_down=q5_K 1.attn_output=q5_K "
     "1.attn_qkv=q5_K 1.ffn_down=q5_K"},
    {"tiny-phi3", "Q4_K_S", 0x49a0c8838fa9d8a6ull, 0.2324,
     "output=q6_K 0.attn_qkv=q5_K 1.attn_qkv=q5_K"},
    {"tiny-phi3", "Q5_K_S", 0x118fb4efb6142337ull, 0.1413, "output=q6_K"},
    {"tiny-phi3", "Q4_1", 0x0e401be70c0fd660ull, 0.2964, "output=q6_K"},
    {"tiny-phi3", "Q5_0", 0x01b798f62c39a6c6ull, 0.1672, "output=q6_K"},
    {"tiny-phi3", "Q5_1", 0x0a8f0b21f99af1ebull, 0.1540, "output=q6_K"},
    {"tiny-phi3", "IQ4_NL", 0xbf206d59be8ffbcfull, 0.2869, "output=q6_K"},
    {"tiny-phi3", "IQ4_XS", 0x117da3e09e0723abull, 0.3097, "output=q6_K"},
};
enum { N_EXPECT = sizeof expect / sizeof expect[0] };

static char tmp_dir[64];

static uint64_t fnv1a_file(const char *path) {
    size_t len = 0;
    char *buf = golden_read(path, &len);
    REQUIRE(buf);
    const uint64_t h = test_fnv1a(TEST_FNV_SEED, buf, len);
    free(buf);
    return h;
}

/* "blk.3.attn_v.weight" -> "3.attn_v" (the table's spelling). */
static void short_name(const gguf_tensor *t, char *out, size_t cap) {
    char name[256];
    REQUIRE(t->name.len < sizeof name);
    memcpy(name, t->name.ptr, (size_t)t->name.len);
    name[t->name.len] = '\0';
    const char *s = strncmp(name, "blk.", 4) ? name : name + 4;
    snprintf(out, cap, "%s", s);
    char *w = strstr(out, ".weight");
    if (w && !w[7]) *w = '\0';
}

/* The type `others` names for `key`, or NULL when it lists it not. */
static const char *listed_type(const char *others, const char *key, char *buf, size_t cap) {
    const size_t k = strlen(key);
    for (const char *p = others; *p;) {
        const char *end = strchr(p, ' ');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > k && p[k] == '=' && !strncmp(p, key, k)) {
            snprintf(buf, cap, "%.*s", (int)(len - k - 1), p + k + 1);
            return buf;
        }
        p += len + (end != NULL);
    }
    return NULL;
}

static int count_words(const char *s) {
    int n = 0;
    for (const char *p = s; *p; p++) n += (p == s || p[-1] == ' ') && *p != ' ';
    return n;
}

/* quant_plan's types against the table: returns whether the engine computes
 * all of them (so that the file can be loaded). */
static bool check_plan(const gguf_file *f, const quant_params *p, int e, kern_type base) {
    quant_choice *plan = NULL;
    const hearth_err err = quant_plan(f, p, &plan);
    CHECKF(err == HEARTH_OK, "%s %s: %s", expect[e].model, expect[e].preset, hearth_last_error());
    if (err) return false;
    int n_listed = 0, n_bad = 0;
    bool loadable = true;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, plan[i].src_index);
        char key[256], buf[32];
        short_name(t, key, sizeof key);
        const char *want = listed_type(expect[e].others, key, buf, sizeof buf);
        n_listed += want != NULL;
        if (!want) want = kern_type_get(t->n_dims < 2 ? KERN_F32 : base)->name;
        const char *got = kern_type_get(plan[i].type)->name;
        if (strcmp(got, want)) {
            n_bad++;
            fprintf(stderr, "%s %s: %s is %s, llama-quantize made it %s\n", expect[e].model,
                    expect[e].preset, key, got, want);
        }
        loadable &= kern_type_get(plan[i].type)->supported && kern_get(plan[i].type) != NULL;
    }
    CHECKF(n_bad == 0 && n_listed == count_words(expect[e].others),
           "%s %s: %d types differ from llama-quantize's, %d of %d listed tensors seen",
           expect[e].model, expect[e].preset, n_bad, n_listed, count_words(expect[e].others));
    free(plan);
    return loadable;
}

/* The prompt logits' relative rms distance from the F32 golden ones is
 * llama.cpp's for the same file, within 0.01 (seen: 0.0006): Hearth's
 * logits differ from llama.cpp's on these files by up to 1.4 % of their rms
 * (activations rounded differently at ties, as in the conformance files),
 * while a wrong block or dot product moves them by 100 % or more. */
static void check_logits(const char *dir, int e, const char *path) {
    const char *model = expect[e].model, *preset = expect[e].preset;
    char golden[1200];
    snprintf(golden, sizeof golden, "%s/golden/F32.json", dir);
    char *json = golden_read(golden, NULL);
    REQUIRE(json);
    double v[256];
    const int n_tok = golden_array(json, "prompt_ids", v, 256);
    free(json);
    REQUIRE(n_tok > 0);
    int32_t ids[256];
    for (int i = 0; i < n_tok; i++) ids[i] = (int32_t)v[i];
    snprintf(golden, sizeof golden, "%s/golden/F32.logits.f32", dir);
    size_t len = 0;
    float *want = (float *)golden_read(golden, &len);
    REQUIRE(want);

    hearth_model *m = NULL;
    hearth_err err = hearth_model_load(path, NULL, &m);
    CHECKF(err == HEARTH_OK, "%s %s: %s", model, preset, hearth_last_error());
    if (err) {
        free(want);
        return;
    }
    const int n_vocab = hearth_model_n_vocab(m);
    REQUIRE(len == (size_t)n_tok * (size_t)n_vocab * sizeof(float));
    hearth_session_params sp = hearth_session_default_params();
    sp.kv_type = HEARTH_KV_F32;
    sp.n_ctx = sp.n_batch = n_tok;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    float *got = malloc(len);
    REQUIRE(got);
    REQUIRE(hearth_decode(s, ids, n_tok, got, true) == HEARTH_OK);
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < (size_t)n_tok * (size_t)n_vocab; i++) {
        e2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        r2 += (double)want[i] * want[i];
    }
    const double rel = sqrt(e2 / r2);
    printf("%-12s %-7s logits vs F32: %.2f %% (rms; llama.cpp %.2f %%)\n", model, preset, 100 * rel,
           100 * expect[e].llama_rel);
    CHECKF(fabs(rel - expect[e].llama_rel) <= 0.01,
           "%s %s: logits %.1f %% from the F32 ones, llama.cpp's %.1f %%", model, preset, 100 * rel,
           100 * expect[e].llama_rel);
    free(got);
    free(want);
    hearth_session_free(s);
    hearth_model_free(m);
}

static void conformance_case(int e, int *n_identical) {
    char dir[1024], in[1200], out[256];
    snprintf(dir, sizeof dir, "%s/conformance/models/%s", HEARTH_SHARED_DIR, expect[e].model);
    snprintf(in, sizeof in, "%s/%s.F32.gguf", dir, expect[e].model);
    snprintf(out, sizeof out, "%s/%s.%s.gguf", tmp_dir, expect[e].model, expect[e].preset);
    quant_params p = quant_default_params();
    REQUIRE(quant_ftype_parse(expect[e].preset, &p.ftype));
    p.n_threads = 2;
    gguf_file *f = NULL;
    REQUIRE(gguf_open(in, &f) == HEARTH_OK);
    const bool loadable = check_plan(f, &p, e, quant_ftype_base_type(p.ftype));
    gguf_close(f);
    const hearth_err err = quant_model(in, out, &p, NULL);
    CHECKF(err == HEARTH_OK, "%s %s: %s", expect[e].model, expect[e].preset, hearth_last_error());
    if (err) return;
    const uint64_t h = fnv1a_file(out);
    CHECKF(h == expect[e].fnv1a, "%s %s: not llama-quantize's file (FNV-1a %016llx, not %016llx)",
           expect[e].model, expect[e].preset, (unsigned long long)h,
           (unsigned long long)expect[e].fnv1a);
    *n_identical += h == expect[e].fnv1a;
    REQUIRE(gguf_open(out, &f) == HEARTH_OK);
    uint32_t ft = 0;
    CHECK(gguf_get_u32(f, "general.file_type", &ft) && ft == (uint32_t)p.ftype);
    gguf_close(f);
    if (loadable)
        check_logits(dir, e, out);
    else
        printf("%-12s %-7s not run: the engine does not compute all its types yet\n",
               expect[e].model, expect[e].preset);
    remove(out);
}

static bool conformance_tests(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/conformance/manifest.json", HEARTH_SHARED_DIR);
    if (access(path, R_OK) != 0) return false;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_quantize_presets.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    int n_identical = 0;
    for (int e = 0; e < N_EXPECT; e++) conformance_case(e, &n_identical);
    rmdir(tmp_dir);
    printf("conformance: %d/%d files byte-identical to llama-quantize's\n", n_identical,
           (int)N_EXPECT);
    return true;
}

int main(void) {
    golden_block_tests();
    layout_tests();
    round_trip_tests();
    dot_tests();
    name_tests();
    const bool conf = conformance_tests();
    const int rc = test_done("test_quantize_presets");
    if (rc == 0 && !conf) {
        printf("test_quantize_presets: %s/conformance is absent: the presets' files were not "
               "compared with llama-quantize's (the block checks ran)\n",
               HEARTH_SHARED_DIR);
        return TEST_SKIP;
    }
    return rc;
}
