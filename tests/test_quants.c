/*
 * test_quants.c - the scalar references and the dispatch table of
 * src/kernels/: the type table, f16/bf16 conversions against an independent
 * oracle (and F16C where the CPU has it), hand-computed blocks, round-trip
 * error bounds, dot products against dequantize-then-multiply, and - the
 * strongest check - byte equality with the tensors llama-quantize wrote into
 * the conformance GGUF files when re-quantizing the F32 originals.
 *
 * Buffers are heap-allocated at their exact size so ASan sees overreads.
 */
#include "kernels/kern_ref.h"
#include "model/gguf.h"
#include "test.h"

#include <float.h>
#include <stdint.h>
#include <sys/stat.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_F16C_ORACLE 1
#endif

static const kern_type k_supported[] = {
    KERN_F32,  KERN_F16,  KERN_BF16, KERN_Q4_0, KERN_Q4_1,   KERN_Q5_0,   KERN_Q5_1, KERN_Q8_0,
    KERN_Q8_1, KERN_Q4_K, KERN_Q5_K, KERN_Q6_K, KERN_Q8_K, KERN_IQ4_NL, KERN_IQ4_XS,
    KERN_Q2_K, KERN_Q3_K /* last: the types before them keep their random data */};
#define N_SUPPORTED (sizeof k_supported / sizeof k_supported[0])

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    REQUIRE(p != NULL);
    return p;
}

/* ---- type table ---------------------------------------------------------------- */

static void test_type_table(void) {
    static const struct {
        kern_type t;
        uint32_t bs, bytes;
        kern_type vdt;
    } want[] = {
        {KERN_F32, 1, 4, KERN_F32},         {KERN_F16, 1, 2, KERN_F16},
        {KERN_BF16, 1, 2, KERN_BF16},       {KERN_Q4_0, 32, 18, KERN_Q8_0},
        {KERN_Q4_1, 32, 20, KERN_Q8_1},     {KERN_Q5_0, 32, 22, KERN_Q8_0},
        {KERN_Q5_1, 32, 24, KERN_Q8_1},     {KERN_Q8_0, 32, 34, KERN_Q8_0},
        {KERN_Q8_1, 32, 36, KERN_Q8_1},     {KERN_Q2_K, 256, 84, KERN_Q8_K},
        {KERN_Q3_K, 256, 110, KERN_Q8_K},   {KERN_Q4_K, 256, 144, KERN_Q8_K},
        {KERN_Q5_K, 256, 176, KERN_Q8_K},   {KERN_Q6_K, 256, 210, KERN_Q8_K},
        {KERN_Q8_K, 256, 292, KERN_Q8_K},   {KERN_IQ4_NL, 32, 18, KERN_Q8_0},
        {KERN_IQ4_XS, 256, 136, KERN_Q8_K},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const kern_type_info *ti = kern_type_get(want[i].t);
        REQUIRE(ti != NULL);
        CHECKF(ti->supported && ti->block_size == want[i].bs && ti->block_bytes == want[i].bytes &&
                   ti->vec_dot_type == want[i].vdt,
               "type %d (%s)", want[i].t, ti->name);
        const kern_fns *f = kern_get(want[i].t);
        CHECKF(f && f->vec_dot && f->from_float && f->to_float, "kern_get(%s)", ti->name);
    }
    CHECK(strcmp(kern_type_get(KERN_Q4_K)->name, "q4_K") == 0);
    CHECK(strcmp(kern_type_get(KERN_BF16)->name, "bf16") == 0);
    CHECK(strcmp(kern_type_get(KERN_IQ4_NL)->name, "iq4_nl") == 0);
    CHECK(strcmp(kern_type_get(KERN_IQ4_XS)->name, "iq4_xs") == 0);

    /* GGML ids Hearth cannot compute: known (sizes right, so a loader can
     * size the tensor and say what is unsupported) but not supported. */
    static const struct {
        uint32_t id, bs, bytes;
    } known[] = {{16, 256, 66}, {17, 256, 74}, {18, 256, 98}, {19, 256, 50}, {21, 256, 110},
                 {22, 256, 82}, {24, 1, 1},    {26, 1, 4},    {28, 1, 8},    {29, 256, 56},
                 {34, 256, 54}, {35, 256, 66}, {39, 32, 17}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const kern_type_info *ti = kern_type_get(known[i].id);
        CHECKF(ti && !ti->supported && ti->block_size == known[i].bs &&
                   ti->block_bytes == known[i].bytes,
               "known unsupported id %u", known[i].id);
        CHECKF(kern_get((kern_type)known[i].id) == NULL, "kern_get(%u) must be NULL", known[i].id);
    }
    /* never GGML types, or removed ones */
    static const uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 43, 100, 0xffffffffu};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECKF(kern_type_get(unknown[i]) == NULL, "id %u", unknown[i]);
        CHECK(kern_row_bytes((kern_type)unknown[i], 256) == 0);
    }
    CHECK(kern_get((kern_type)4) == NULL);
    CHECK(kern_get((kern_type)1000) == NULL);

    CHECK(kern_row_bytes(KERN_F32, 7) == 28);
    CHECK(kern_row_bytes(KERN_F16, 3) == 6);
    CHECK(kern_row_bytes(KERN_Q4_0, 64) == 36);
    CHECK(kern_row_bytes(KERN_Q4_0, 33) == 0);
    CHECK(kern_row_bytes(KERN_Q4_0, 16) == 0);
    CHECK(kern_row_bytes(KERN_Q6_K, 512) == 420);
    CHECK(kern_row_bytes(KERN_Q6_K, 384) == 0);
    CHECK(kern_row_bytes(KERN_Q4_K, 128) == 0);
    CHECK(kern_row_bytes(KERN_Q8_0, 0) == 0);
    CHECK(kern_row_bytes(KERN_Q8_0, -32) == 0);
    CHECK(kern_row_bytes(KERN_F32, INT64_MAX) == 0); /* 4 * INT64_MAX overflows */
    CHECK(kern_row_bytes(KERN_Q2_K, 256) == 84);

    CHECK(strcmp(kern_isa_name(), "") != 0);
}

/* ---- half precision ---------------------------------------------------------- */

#ifdef HAVE_F16C_ORACLE
__attribute__((target("f16c"))) static uint16_t f16c_convert(float f) {
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

__attribute__((target("f16c"))) static float f16c_widen(uint16_t h) { return _cvtsh_ss(h); }

/* F16C (CPUID.1:ECX bit 29) is VEX-encoded: the OS must also save the YMM
 * state (OSXSAVE, bit 27, and XCR0 bits 1-2). */
static bool cpu_has_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & (1u << 29)) || !(c & (1u << 27))) return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6) == 6;
}
#endif

static void test_f16(void) {
    /* every half converts exactly and back */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = kern_f16_to_f32((uint16_t)h);
        const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan ? !isnan(f) : kern_f32_to_f16(f) != h) bad++;
    }
    CHECKF(bad == 0, "%d halves do not round-trip", bad);

    CHECK(kern_f16_to_f32(0x3c00) == 1.0f);
    CHECK(kern_f16_to_f32(0xc000) == -2.0f);
    CHECK(kern_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(kern_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    CHECK(kern_f16_to_f32(0x0400) == 0x1p-14f);
    CHECK(kern_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(kern_f16_to_f32(0x7c00)) && kern_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(kern_f16_to_f32(0xfc00)) && kern_f16_to_f32(0xfc00) < 0);
    CHECK(bits_of(kern_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(bits_of(kern_f16_to_f32(0x7c01)) == 0x7fc02000u); /* signalling NaN comes out quiet */
    CHECK(bits_of(kern_f16_to_f32(0xfe00)) == 0xffc00000u);

    /* Rounding, checked between every pair of adjacent finite halves: the
     * exact midpoint goes to the even one, anything off it to the nearer. */
    bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        const float lo = kern_f16_to_f32((uint16_t)h), hi = kern_f16_to_f32((uint16_t)(h + 1));
        const float mid = lo + (hi - lo) * 0.5f; /* exact: 12 significant bits */
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int sgn = 0; sgn < 2; sgn++) {
            const float s = sgn ? -1.0f : 1.0f;
            const uint16_t sb = sgn ? 0x8000 : 0;
            if (kern_f32_to_f16(s * mid) != (even | sb)) bad++;
            if (kern_f32_to_f16(s * nextafterf(mid, 0.0f)) != (h | sb)) bad++;
            if (kern_f32_to_f16(s * nextafterf(mid, INFINITY)) != ((h + 1) | sb)) bad++;
        }
    }
    CHECKF(bad == 0, "%d rounding cases wrong", bad);
    CHECK(kern_f32_to_f16(0x1p-25f) == 0);                   /* tie with 2^-24 -> 0 */
    CHECK(kern_f32_to_f16(nextafterf(0x1p-25f, 1.0f)) == 1); /* just above -> 2^-24 */
    CHECK(kern_f32_to_f16(1e-30f) == 0 && kern_f32_to_f16(-1e-30f) == 0x8000);
    CHECK(kern_f32_to_f16(0x1.8p-24f) == 2); /* 1.5 ulp tie -> even 2 */
    CHECK(kern_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(kern_f32_to_f16(nextafterf(65520.0f, 0.0f)) == 0x7bff);
    CHECK(kern_f32_to_f16(65520.0f) == 0x7c00); /* the tie with 65536 rounds to inf */
    CHECK(kern_f32_to_f16(-1e9f) == 0xfc00);
    CHECK(kern_f32_to_f16(INFINITY) == 0x7c00 && kern_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(kern_f32_to_f16(FLT_MAX) == 0x7c00);
    const uint16_t hn = kern_f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0);
    const uint16_t hs = kern_f32_to_f16(float_of(0x7f800001u)); /* signalling, payload below f16 */
    CHECK((hs & 0x7e00) == 0x7e00);

#ifdef HAVE_F16C_ORACLE
    if (cpu_has_f16c()) {
        unsigned long long s = 42;
        int diff = 0;
        for (int i = 0; i < 2000000; i++) {
            const float f = float_of((uint32_t)test_rand_u64(&s));
            const uint16_t a = kern_f32_to_f16(f), b = f16c_convert(f);
            if (a != b) {
                if (diff < 5) fprintf(stderr, "f16: %08x -> %04x, F16C %04x\n", bits_of(f), a, b);
                diff++;
            }
        }
        CHECKF(diff == 0, "%d of 2e6 random floats differ from F16C", diff);
        diff = 0;
        for (uint32_t h = 0; h < 65536; h++)
            if (bits_of(kern_f16_to_f32((uint16_t)h)) != bits_of(f16c_widen((uint16_t)h))) diff++;
        CHECKF(diff == 0, "%d halves widen differently from F16C", diff);
    } else {
        printf("test_quants: no F16C on this CPU, skipping the hardware oracle\n");
    }
#endif
}

static void test_bf16(void) {
    CHECK(kern_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(kern_f32_to_bf16(float_of(0x3f808000u)) == 0x3f80); /* tie, even stays */
    CHECK(kern_f32_to_bf16(float_of(0x3f818000u)) == 0x3f82); /* tie, odd rounds up */
    CHECK(kern_f32_to_bf16(float_of(0x3f808001u)) == 0x3f81);
    CHECK(kern_f32_to_bf16(float_of(0xbf80ffffu)) == 0xbf81);
    CHECK(kern_f32_to_bf16(float_of(0x00000001u)) == 0x0000); /* subnormal rounds, not flushed */
    CHECK(kern_f32_to_bf16(float_of(0x00018000u)) == 0x0002);
    CHECK(kern_f32_to_bf16(float_of(0x00010000u)) == 0x0001);
    CHECK(kern_f32_to_bf16(FLT_MAX) == 0x7f80); /* overflows to inf */
    CHECK(kern_f32_to_bf16(-INFINITY) == 0xff80);
    const uint16_t qn = kern_f32_to_bf16(float_of(0x7f800001u)); /* sNaN must not become inf */
    CHECK((qn & 0x7f80) == 0x7f80 && (qn & 0x7f) != 0 && (qn & 0x40));
    CHECK(kern_f32_to_bf16(float_of(0xffc00000u)) == 0xffc0);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = kern_bf16_to_f32((uint16_t)h);
        if (bits_of(f) != h << 16) bad++;
        if (!isnan(f) && kern_f32_to_bf16(f) != h) bad++;
    }
    CHECKF(bad == 0, "%d bf16 values do not round-trip", bad);
}

/* ---- hand-computed blocks ------------------------------------------------------ */

static void test_q4_0_block(void) {
    /* x = (j - 16) / 2: amax 8 at x[0] = -8, so d = -8 / -8 = 1 and
     * q = trunc(x + 8.5) = floor((j + 1) / 2), clamped to 15. */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.5f;
    static const uint8_t want_qs[16] = {0x80, 0x91, 0x91, 0xA2, 0xA2, 0xB3, 0xB3, 0xC4,
                                        0xC4, 0xD5, 0xD5, 0xE6, 0xE6, 0xF7, 0xF7, 0xF8};
    block_q4_0 *b = xmalloc(sizeof *b);
    kern_ref_quantize_row(KERN_Q4_0, x, b, 32);
    CHECK(b->d == 0x3c00);
    CHECK(memcmp(b->qs, want_qs, 16) == 0);
    float *y = xmalloc(32 * sizeof(float));
    kern_ref_dequantize_row(KERN_Q4_0, b, y, 32);
    for (int j = 0; j < 32; j++) {
        const int q = j < 16 ? (want_qs[j] & 0xF) : (want_qs[j - 16] >> 4);
        CHECK(y[j] == (float)(q - 8));
    }
    free(b);
    free(y);
}

static void test_q8_0_block(void) {
    /* amax 127 -> d = 1, multiplier 1: the references round half away from
     * zero, the x86 activation quantizer half to even. */
    float x[32];
    x[0] = -127.0f;
    for (int j = 1; j < 32; j++) x[j] = (float)(j - 16) * 7.5f;
    static const int8_t want_ref[31] = {-113, -105, -98, -90, -83, -75, -68, -60, -53, -45, -38,
                                        -30,  -23,  -15, -8,  0,   8,   15,  23,  30,  38,  45,
                                        53,   60,   68,  75,  83,  90,  98,  105, 113};
    static const int8_t want_act[31] = {-112, -105, -98, -90, -82, -75, -68, -60, -52, -45, -38,
                                        -30,  -22,  -15, -8,  0,   8,   15,  22,  30,  38,  45,
                                        52,   60,   68,  75,  82,  90,  98,  105, 112};
    block_q8_0 *r = xmalloc(sizeof *r), *a = xmalloc(sizeof *a), *k = xmalloc(sizeof *k);
    kern_ref_quantize_row(KERN_Q8_0, x, r, 32);
    kern_quantize_q8_0_act(x, a, 32);
    kern_get(KERN_Q8_0)->from_float(x, k, 32);
    CHECK(r->d == 0x3c00 && a->d == 0x3c00);
    CHECK(r->qs[0] == -127 && a->qs[0] == -127);
    CHECK(memcmp(r->qs + 1, want_ref, 31) == 0);
    CHECK(memcmp(a->qs + 1, want_act, 31) == 0);
    CHECK(memcmp(k, a, sizeof *a) == 0); /* activations use the x86 rounding */

    block_q8_1 *a1 = xmalloc(sizeof *a1), *r1 = xmalloc(sizeof *r1);
    kern_get(KERN_Q8_1)->from_float(x, a1, 32);
    kern_ref_quantize_row(KERN_Q8_1, x, r1, 32);
    CHECK(memcmp(a1->qs, a->qs, 32) == 0 && a1->d == 0x3c00);
    CHECK(memcmp(r1->qs, r->qs, 32) == 0);
    int sa = 0, sr = 0;
    for (int j = 0; j < 32; j++) sa += a->qs[j], sr += r->qs[j];
    CHECK(a1->s == kern_f32_to_f16((float)sa) && r1->s == kern_f32_to_f16((float)sr));
    CHECK(sa == -127 && sr == -127);
    free(r), free(a), free(k), free(a1), free(r1);
}

/* Q4_K on sub-blocks x = l * a_j - m_j (each l in 0..15 twice) with powers of
 * two: the fit is exact, so scales[j] = a_j and mins[j] = m_j exactly and
 * the 6-bit codes follow by hand. a = {1/2, 1/4, 1/8, 1/16, 8, 4, 2, 1}:
 * max 8, d = f16(8/63) = 0x3010 (1040 * 2^-13), codes nearest(a * 63/8) =
 * {4, 2, 1, 0, 63, 32, 16, 8}. m = {1/2, 1, 2, 4, 8, 16, 32, 63}: dmin =
 * f16(1) and codes {0 (0.5 ties to even), 1, 2, 4, 8, 16, 32, 63}. */
static void test_q4_K_scales(void) {
    static const float a[8] = {0.5f, 0.25f, 0.125f, 0.0625f, 8, 4, 2, 1};
    static const float m[8] = {0.5f, 1, 2, 4, 8, 16, 32, 63};
    float *x = xmalloc(256 * sizeof(float));
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) x[32 * j + i] = (float)(i % 16) * a[j] - m[j];
    /* bytes 0-3: scale codes 0-3 | top bits of 4-7; 4-7: min codes 0-3 |
     * top bits of 4-7; 8-11: low nibbles of scale | min codes 4-7 */
    static const uint8_t want[12] = {4 | 3 << 6,  2 | 2 << 6, 1 | 1 << 6, 0 | 0 << 6,
                                     0 | 0 << 6,  1 | 1 << 6, 2 | 2 << 6, 4 | 3 << 6,
                                     15 | 8 << 4, 0 | 0 << 4, 0 | 0 << 4, 8 | 15 << 4};
    block_q4_K *b = xmalloc(sizeof *b);
    kern_ref_quantize_row(KERN_Q4_K, x, b, 256);
    CHECKF(b->d == 0x3010, "d %04x", b->d);
    CHECKF(b->dmin == 0x3c00, "dmin %04x", b->dmin);
    CHECK(kern_f16_to_f32(0x3010) == 1040 * 0x1p-13f);
    CHECK(memcmp(b->scales, want, 12) == 0);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, mn;
        kern_get_scale_min_k4(j, b->scales, &sc, &mn);
        static const uint8_t ws[8] = {4, 2, 1, 0, 63, 32, 16, 8},
                             wm[8] = {0, 1, 2, 4, 8, 16, 32, 63};
        CHECKF(sc == ws[j] && mn == wm[j], "sub-block %d: %d %d", j, sc, mn);
    }
    /* Q5_K packs its scales the same way */
    block_q5_K *b5 = xmalloc(sizeof *b5);
    kern_ref_quantize_row(KERN_Q5_K, x, b5, 256);
    uint8_t sc5, mn5;
    kern_get_scale_min_k4(4, b5->scales, &sc5, &mn5);
    CHECK(sc5 == 63); /* sub-block 4 holds the largest scale */
    free(x), free(b), free(b5);
}

/* Q6_K on sub-blocks x = k_i * 2^-e with k_i = -32 + 4i: each fit is exact
 * with scale 2^-e (the largest |x| is the negative -32 * 2^-e), the block
 * scale is d = f16(-1/128) = 0xA000 (largest sub-scale 1), the int8 scales
 * are nearest(-128 * 2^-e): -(128 >> e), 0 for e = 9; every level L = k + 32
 * = 4i, so ql bytes are (4i & 15) * 0x11 and qh bytes (4i >> 4) * 0x55. */
static void test_q6_K_block(void) {
    static const int e[16] = {0, 3, 6, 1, 4, 7, 2, 5, 9, 3, 6, 1, 4, 7, 2, 5};
    float *x = xmalloc(256 * sizeof(float));
    for (int ib = 0; ib < 16; ib++)
        for (int i = 0; i < 16; i++) x[16 * ib + i] = (float)(-32 + 4 * i) * ldexpf(1.0f, -e[ib]);
    block_q6_K *b = xmalloc(sizeof *b);
    kern_ref_quantize_row(KERN_Q6_K, x, b, 256);
    CHECKF(b->d == 0xA000, "d %04x", b->d);
    for (int ib = 0; ib < 16; ib++) {
        const int want = e[ib] <= 7 ? -(128 >> e[ib]) : 0;
        CHECKF(b->scales[ib] == want, "scale %d: %d want %d", ib, b->scales[ib], want);
    }
    int bad = 0;
    for (int c = 0; c < 2; c++)
        for (int l = 0; l < 64; l++) {
            const int L = 4 * (l % 16);
            if (b->ql[64 * c + l] != (uint8_t)((L & 15) * 0x11)) bad++;
            if (l < 32 && b->qh[32 * c + l] != (uint8_t)((L >> 4) * 0x55)) bad++;
        }
    CHECKF(bad == 0, "%d q6_K level bytes wrong", bad);
    float *y = xmalloc(256 * sizeof(float));
    kern_ref_dequantize_row(KERN_Q6_K, b, y, 256);
    bad = 0;
    for (int k = 0; k < 256; k++)
        if (y[k] != (e[k / 16] <= 7 ? x[k] : 0.0f)) bad++;
    CHECKF(bad == 0, "%d q6_K values not exact", bad);
    free(x), free(b), free(y);
}

static void test_q8_K_block(void) {
    float *x = xmalloc(256 * sizeof(float));
    /* -127..127, each once (37 is prime to 255), +127 first, -127 last */
    for (int j = 0; j < 256; j++) x[j] = (float)(127 - (j * 37) % 255);
    block_q8_K *b = xmalloc(sizeof *b);
    kern_ref_quantize_row(KERN_Q8_K, x, b, 256);
    /* the first largest |x| is +127, so iscale = -127/127 = -1 and d = -1 */
    CHECK(b->d == -1.0f);
    int bad = 0;
    for (int j = 0; j < 256; j++)
        if (b->qs[j] != (int8_t)-x[j]) bad++;
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += b->qs[16 * g + i];
        if (b->bsums[g] != s) bad++;
    }
    CHECKF(bad == 0, "%d q8_K bytes wrong", bad);
    /* all zero: d = 0, quants and bsums zero */
    memset(x, 0, 256 * sizeof(float));
    memset(b, 0x55, sizeof *b);
    kern_ref_quantize_row(KERN_Q8_K, x, b, 256);
    CHECK(b->d == 0.0f && b->qs[7] == 0 && b->bsums[15] == 0);
    free(x), free(b);
}

/* IQ4 blocks whose values are the codebook times a scale: the scale search
 * lands on it exactly, so the nibbles are the codebook indices and the
 * dequantized block is the input. */
static void test_iq4_blocks(void) {
    float x[QK_K];
    for (int j = 0; j < 32; j++) x[j] = (float)kern_iq4nl_values[j % 16];
    block_iq4_nl *nl = xmalloc(sizeof *nl);
    kern_ref_quantize_row(KERN_IQ4_NL, x, nl, 32);
    CHECK(nl->d == 0x3c00);
    int bad = 0;
    for (int j = 0; j < 16; j++) bad += nl->qs[j] != (uint8_t)(j * 0x11);
    CHECKF(bad == 0, "%d iq4_nl nibbles wrong", bad);
    float y[QK_K];
    kern_ref_dequantize_row(KERN_IQ4_NL, nl, y, 32);
    CHECK(memcmp(x, y, 32 * sizeof(float)) == 0);

    /* sub-block ib scaled by ib + 1: d = -8/32, stored scales 28 - 4 ib
     * (high bits 1 for the first four), levels the codebook order again */
    for (int j = 0; j < QK_K; j++) {
        const int scale = j / 32 + 1;
        x[j] = (float)scale * (float)kern_iq4nl_values[j % 16];
    }
    block_iq4_xs *xs = xmalloc(sizeof *xs);
    kern_ref_quantize_row(KERN_IQ4_XS, x, xs, QK_K);
    CHECK(xs->d == 0xb400);
    CHECKF(xs->scales_h == 0x55, "scales_h %#x", xs->scales_h);
    static const uint8_t want_l[4] = {0x8c, 0x04, 0x8c, 0x04};
    CHECK(memcmp(xs->scales_l, want_l, 4) == 0);
    for (int ib = 0; ib < 8; ib++) CHECK(kern_iq4_xs_ls(xs, ib) == 28 - 4 * ib);
    bad = 0;
    for (int j = 0; j < QK_K / 2; j++) bad += xs->qs[j] != (uint8_t)((j % 16) * 0x11);
    CHECKF(bad == 0, "%d iq4_xs nibbles wrong", bad);
    kern_ref_dequantize_row(KERN_IQ4_XS, xs, y, QK_K);
    CHECK(memcmp(x, y, QK_K * sizeof(float)) == 0);

    /* dots with activations 1 at element e: the level of e times the scales */
    block_q8_0 *a0 = xmalloc(sizeof *a0);
    block_q8_K *aK = xmalloc(sizeof *aK);
    memset(a0, 0, sizeof *a0);
    memset(aK, 0, sizeof *aK);
    a0->d = 0x4000; /* 2 */
    a0->qs[21] = 1;
    aK->d = 0.5f;
    aK->qs[32 * 5 + 18] = 1; /* sub-block 5, codebook entry 2: -83 */
    aK->bsums[(32 * 5 + 18) / 16] = 1;
    float s = 0;
    kern_ref_vec_dot(KERN_IQ4_NL, 32, &s, nl, a0);
    CHECK(s == 2.0f * (float)kern_iq4nl_values[5]);
    kern_ref_vec_dot(KERN_IQ4_XS, QK_K, &s, xs, aK);
    CHECK(s == 0.5f * 6.0f * -83.0f);
    free(nl), free(xs), free(a0), free(aK);
}

/* ---- random data: round trip and dot products ------------------------------------ */

/* Relative RMS error bounds of quantize -> dequantize on uniform [-1, 1)
 * data (generous over the measured values, tight enough to catch a wrong
 * nibble order or scale). */
static double rt_bound(kern_type t) {
    switch (t) {
    case KERN_F32: return 0.0;
    case KERN_F16: return 4e-4;
    case KERN_BF16: return 3e-3;
    case KERN_Q4_0: return 0.085;
    case KERN_Q4_1: return 0.075;
    case KERN_Q5_0: return 0.042;
    case KERN_Q5_1: return 0.037;
    case KERN_Q8_0:
    case KERN_Q8_1:
    case KERN_Q8_K: return 0.006;
    case KERN_Q2_K: return 0.30;
    case KERN_Q3_K: return 0.15;
    case KERN_Q4_K: return 0.07;
    case KERN_Q5_K: return 0.035;
    case KERN_Q6_K: return 0.018;
    case KERN_IQ4_NL: return 0.095;
    case KERN_IQ4_XS: return 0.085;
    default: return 0.0;
    }
}

typedef enum { DATA_UNIFORM, DATA_OUTLIERS, DATA_POSITIVE, DATA_ZERO_BLOCKS } data_kind;

static void fill(float *x, int64_t n, data_kind kind, unsigned long long *s) {
    for (int64_t i = 0; i < n; i++) {
        float v = test_rand_f(s);
        if (kind == DATA_OUTLIERS && test_rand_u64(s) % 50 == 0) v *= 40.0f;
        if (kind == DATA_POSITIVE) v = 3.0f + v; /* [2, 4): min never below 0 */
        if (kind == DATA_ZERO_BLOCKS && (i / 32) % 3 == 1) v = 0.0f;
        x[i] = v;
    }
}

static bool all_finite(const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return false;
    return true;
}

static void test_roundtrip(void) {
    unsigned long long s = 0x9e3779b97f4a7c15ULL;
    static const int64_t blocks[] = {1, 3, 7, 16};
    for (size_t ti = 0; ti < N_SUPPORTED; ti++) {
        const kern_type t = k_supported[ti];
        const kern_type_info *info = kern_type_get(t);
        const int64_t bs = info->block_size == 1 ? 32 : info->block_size;
        for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
            for (int kind = DATA_UNIFORM; kind <= DATA_ZERO_BLOCKS; kind++) {
                const int64_t n = bs * blocks[bi];
                float *x = xmalloc((size_t)n * sizeof(float));
                float *y = xmalloc((size_t)n * sizeof(float));
                void *q = xmalloc(kern_row_bytes(t, n));
                void *q2 = xmalloc(kern_row_bytes(t, n));
                fill(x, n, (data_kind)kind, &s);
                kern_ref_quantize_row(t, x, q, n);
                kern_ref_quantize_row(t, x, q2, n);
                CHECKF(memcmp(q, q2, kern_row_bytes(t, n)) == 0, "%s not deterministic",
                       info->name);
                kern_ref_dequantize_row(t, q, y, n);
                double err = 0, ref = 0;
                for (int64_t i = 0; i < n; i++) {
                    err += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                    ref += (double)x[i] * x[i];
                }
                const double rel = sqrt(err / ref);
                /* outliers make the block scales coarse for everything else */
                const double bound = rt_bound(t) * (kind == DATA_OUTLIERS ? 4.0 : 1.0);
                CHECKF(all_finite(y, n) && rel <= bound, "%s n=%lld kind %d: rel rms %.5f > %.5f",
                       info->name, (long long)n, kind, rel, bound);
                if (kind == DATA_ZERO_BLOCKS && t != KERN_F32 && t != KERN_F16 && t != KERN_BF16 &&
                    bs == 32) {
                    /* whole zero blocks come back as exact zeros */
                    for (int64_t i = 32; i < 64 && i < n; i++) CHECK(y[i] == 0.0f);
                }
                /* the dispatched to_float agrees with the reference exactly:
                 * ggml dequantizes (get_rows) with its scalar code, so a
                 * faster to_float must not change a bit */
                float *y2 = xmalloc((size_t)n * sizeof(float));
                kern_get(t)->to_float(q, y2, n);
                CHECKF(memcmp(y, y2, (size_t)n * sizeof(float)) == 0, "%s to_float", info->name);
                free(x), free(y), free(y2), free(q), free(q2);
            }
        }
    }
}

/* The dispatched from_float of every activation type must produce exactly
 * what llama.cpp's x86 build produces (that is what the golden logits saw);
 * for F16, BF16 and Q8_K that is the reference itself. */
static void test_activation_quantizers(void) {
    unsigned long long s = 7;
    const int64_t n = 4096;
    float *x = xmalloc((size_t)n * sizeof(float));
    fill(x, n, DATA_OUTLIERS, &s);
    /* plant exact ties of the 127/amax multiplier */
    for (int64_t b = 0; b < n / 32; b++) {
        x[32 * b] = 127.0f;
        x[32 * b + 1] = 2.5f + (float)(b % 7);
        x[32 * b + 2] = -0.5f - (float)(b % 5);
    }
    static const kern_type acts[] = {KERN_F16, KERN_BF16, KERN_Q8_0, KERN_Q8_1, KERN_Q8_K};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        const size_t nb = kern_row_bytes(acts[i], n);
        void *a = xmalloc(nb), *b = xmalloc(nb);
        kern_get(acts[i])->from_float(x, a, n);
        if (acts[i] == KERN_Q8_0)
            kern_quantize_q8_0_act(x, b, n);
        else if (acts[i] == KERN_Q8_1)
            kern_quantize_q8_1_act(x, b, n);
        else
            kern_ref_quantize_row(acts[i], x, b, n);
        CHECKF(memcmp(a, b, nb) == 0, "from_float of %s", kern_type_get(acts[i])->name);
        free(a), free(b);
    }
    /* the x86 quantizer really differs from the weight reference on ties */
    const size_t nb = kern_row_bytes(KERN_Q8_0, n);
    void *a = xmalloc(nb), *r = xmalloc(nb);
    kern_quantize_q8_0_act(x, a, n);
    kern_ref_quantize_row(KERN_Q8_0, x, r, n);
    CHECK(memcmp(a, r, nb) != 0);
    free(a), free(r), free(x);
}

/* dot(w, x) from the integer kernels against the dot of the dequantized
 * rows: equal up to float rounding (for Q4_1/Q5_1 plus the f16 rounding of
 * Q8_1's s), and within ||w|| * ||x - deq(q(x))|| (Cauchy-Schwarz) of the
 * dot with the unquantized activations. */
static void check_dot(kern_type t, const kern_fns *fns, const char *who, int64_t n, float *w,
                      float *x) {
    const kern_type_info *info = kern_type_get(t);
    const kern_type vt = info->vec_dot_type;
    void *wq = xmalloc(kern_row_bytes(t, n));
    void *xq = xmalloc(kern_row_bytes(vt, n));
    float *wd = xmalloc((size_t)n * sizeof(float)), *xd = xmalloc((size_t)n * sizeof(float));
    kern_ref_quantize_row(t, w, wq, n);
    kern_get(vt)->from_float(x, xq, n);
    kern_ref_dequantize_row(t, wq, wd, n);
    kern_ref_dequantize_row(vt, xq, xd, n);
    float got = NAN;
    fns->vec_dot(n, &got, wq, xq);
    double exact_q = 0, exact = 0, mag = 0, ww = 0, ee = 0;
    for (int64_t i = 0; i < n; i++) {
        exact_q += (double)wd[i] * xd[i];
        exact += (double)wd[i] * x[i];
        mag += fabs((double)wd[i] * xd[i]);
        ww += (double)wd[i] * wd[i];
        ee += ((double)x[i] - xd[i]) * ((double)x[i] - xd[i]);
    }
    double tol = 1e-5 * mag + 1e-6;
    if (t == KERN_Q4_1 || t == KERN_Q5_1) {
        /* m * s, where s = f16(d * sum(q)) is rounded once and uses the f32
         * d, not the f16 d the activations dequantize with: two half ulps */
        const size_t wb = info->block_bytes;
        for (int64_t b = 0; b < n / 32; b++) {
            kern_f16 m;
            memcpy(&m, (const uint8_t *)wq + (size_t)b * wb + 2, 2); /* d, m, ... */
            tol +=
                fabs((double)kern_f16_to_f32(m) * kern_f16_to_f32(((const block_q8_1 *)xq)[b].s)) *
                0x1p-10;
        }
    }
    CHECKF(fabs(got - exact_q) <= tol, "%s %s n=%lld: %.7g vs dequantized %.7g (tol %.3g)", who,
           info->name, (long long)n, got, exact_q, tol);
    const double cs = sqrt(ww * ee) + tol;
    CHECKF(fabs(got - exact) <= cs, "%s %s n=%lld: %.7g vs %.7g beyond %.3g", who, info->name,
           (long long)n, got, exact, cs);
    free(wq), free(xq), free(wd), free(xd);
}

static void test_dots(void) {
    unsigned long long s = 99;
    for (size_t ti = 0; ti < N_SUPPORTED; ti++) {
        const kern_type t = k_supported[ti];
        const kern_type_info *info = kern_type_get(t);
        const int64_t bs = info->block_size == 1 ? 32 : info->block_size;
        static const int64_t blocks[] = {1, 2, 5, 12};
        for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
            for (int kind = DATA_UNIFORM; kind <= DATA_ZERO_BLOCKS; kind++) {
                const int64_t n = bs * blocks[bi];
                float *w = xmalloc((size_t)n * sizeof(float)),
                      *x = xmalloc((size_t)n * sizeof(float));
                fill(w, n, (data_kind)kind, &s);
                fill(x, n, DATA_UNIFORM, &s);
                check_dot(t, kern_get(t), "dispatched", n, w, x);
                kern_fns ref = {0};
                switch (t) { /* the reference by type, through the generic entry point */
#define REF_CASE(T, name)                                                                          \
    case T: ref.vec_dot = kern_ref_vec_dot_##name; break;
                    REF_CASE(KERN_F32, f32)
                    REF_CASE(KERN_F16, f16)
                    REF_CASE(KERN_BF16, bf16)
                    REF_CASE(KERN_Q4_0, q4_0)
                    REF_CASE(KERN_Q4_1, q4_1)
                    REF_CASE(KERN_Q5_0, q5_0)
                    REF_CASE(KERN_Q5_1, q5_1)
                    REF_CASE(KERN_Q8_0, q8_0)
                    REF_CASE(KERN_Q8_1, q8_1)
                    REF_CASE(KERN_Q2_K, q2_K)
                    REF_CASE(KERN_Q3_K, q3_K)
                    REF_CASE(KERN_Q4_K, q4_K)
                    REF_CASE(KERN_Q5_K, q5_K)
                    REF_CASE(KERN_Q6_K, q6_K)
                    REF_CASE(KERN_Q8_K, q8_K)
                    REF_CASE(KERN_IQ4_NL, iq4_nl)
                    REF_CASE(KERN_IQ4_XS, iq4_xs)
#undef REF_CASE
                default: break;
                }
                check_dot(t, &ref, "reference", n, w, x);
                /* kern_ref_vec_dot dispatches to the same function */
                void *wq = xmalloc(kern_row_bytes(t, n));
                void *xq = xmalloc(kern_row_bytes(info->vec_dot_type, n));
                kern_ref_quantize_row(t, w, wq, n);
                kern_get(info->vec_dot_type)->from_float(x, xq, n);
                float a = 0, b = 1;
                kern_ref_vec_dot(t, n, &a, wq, xq);
                ref.vec_dot(n, &b, wq, xq);
                CHECK(bits_of(a) == bits_of(b));
                free(wq), free(xq), free(w), free(x);
            }
        }
    }
}

/* ---- golden: re-quantize the F32 conformance models as llama-quantize did -------- */

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static const char *const k_variants[] = {"F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"};

/* Compares every non-F32 tensor of `qpath` with the same tensor of the F32
 * file quantized by the reference; returns the number of tensors checked. */
static int check_file(gguf_file *f32, const char *qpath, int *n_types) {
    gguf_file *qf = NULL;
    if (gguf_open(qpath, &qf) != HEARTH_OK) {
        CHECKF(false, "cannot open %s: %s", qpath, hearth_last_error());
        return 0;
    }
    int checked = 0;
    for (int64_t i = 0; i < gguf_n_tensors(qf); i++) {
        const gguf_tensor *qt = gguf_tensor_at(qf, i);
        if (qt->type == KERN_F32) continue;
        char name[256];
        if (qt->name.len >= sizeof name) continue;
        memcpy(name, qt->name.ptr, qt->name.len);
        name[qt->name.len] = 0;
        const gguf_tensor *ft = gguf_find_tensor(f32, name);
        CHECKF(ft && ft->type == KERN_F32 && ft->n_elements == qt->n_elements &&
                   ft->ne[0] == qt->ne[0],
               "%s: no matching F32 tensor %s", qpath, name);
        if (!ft || ft->type != KERN_F32 || ft->n_elements != qt->n_elements) continue;
        const kern_type_info *ti = kern_type_get(qt->type);
        REQUIRE(ti && ti->supported);
        const int64_t row = qt->ne[0], n_rows = qt->n_elements / row;
        const size_t rb = kern_row_bytes((kern_type)qt->type, row);
        REQUIRE(rb * (size_t)n_rows == qt->n_bytes);
        uint8_t *buf = xmalloc(rb);
        float *src = xmalloc((size_t)row * sizeof(float));
        int64_t bad_rows = 0, first_bad = -1;
        for (int64_t r = 0; r < n_rows; r++) {
            /* the mapping is only 32-byte aligned per tensor: copy the row */
            memcpy(src, (const float *)ft->data + r * row, (size_t)row * sizeof(float));
            kern_ref_quantize_row((kern_type)qt->type, src, buf, row);
            if (memcmp(buf, (const uint8_t *)qt->data + (size_t)r * rb, rb) != 0) {
                if (first_bad < 0) first_bad = r;
                bad_rows++;
            }
        }
        CHECKF(bad_rows == 0, "%s: %s (%s): %lld of %lld rows differ (first %lld)", qpath, name,
               ti->name, (long long)bad_rows, (long long)n_rows, (long long)first_bad);
        n_types[qt->type < 64 ? qt->type : 63]++;
        checked++;
        free(buf), free(src);
    }
    gguf_close(qf);
    return checked;
}

static void test_golden(void) {
    static const char *const models[] = {"stories260K",        "models/tiny-llama",
                                         "models/tiny-qwen2",  "models/tiny-qwen3",
                                         "models/tiny-gemma3", "models/tiny-phi3"};
    int n_types[64] = {0}, files = 0, tensors = 0;
    char f32path[1024], qpath[1024];
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        const char *base = strrchr(models[m], '/') ? strrchr(models[m], '/') + 1 : models[m];
        snprintf(f32path, sizeof f32path, "%s/conformance/%s/%s.F32.gguf", HEARTH_SHARED_DIR,
                 models[m], base);
        if (!file_exists(f32path)) {
            printf("test_quants: %s absent, skipping its golden check\n", f32path);
            continue;
        }
        gguf_file *f32 = NULL;
        if (gguf_open(f32path, &f32) != HEARTH_OK) {
            CHECKF(false, "cannot open %s: %s", f32path, hearth_last_error());
            continue;
        }
        for (size_t v = 0; v < sizeof k_variants / sizeof k_variants[0]; v++) {
            snprintf(qpath, sizeof qpath, "%s/conformance/%s/%s.%s.gguf", HEARTH_SHARED_DIR,
                     models[m], base, k_variants[v]);
            if (!file_exists(qpath)) continue;
            tensors += check_file(f32, qpath, n_types);
            files++;
        }
        gguf_close(f32);
    }
    printf("test_quants: golden: %d files, %d tensors re-quantized and compared byte for byte "
           "(f16 %d, q4_0 %d, q5_0 %d, q5_1 %d, q8_0 %d, q4_K %d, q5_K %d, q6_K %d)\n",
           files, tensors, n_types[KERN_F16], n_types[KERN_Q4_0], n_types[KERN_Q5_0],
           n_types[KERN_Q5_1], n_types[KERN_Q8_0], n_types[KERN_Q4_K], n_types[KERN_Q5_K],
           n_types[KERN_Q6_K]);
}

int main(void) {
    test_type_table();
    test_f16();
    test_bf16();
    test_q4_0_block();
    test_q8_0_block();
    test_q4_K_scales();
    test_q6_K_block();
    test_q8_K_block();
    test_iq4_blocks();
    test_roundtrip();
    test_activation_quantizers();
    test_dots();
    test_golden();
    return test_done("test_quants");
}
