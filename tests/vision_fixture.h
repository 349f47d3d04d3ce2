/*
 * vision_fixture.h - what the vision tests write: PNG images in memory
 * (libpng, any colour type and depth) and a random gemma3 text model with
 * its projector (synth), the pair tests/test_vision.c holds llama.cpp's
 * values for.
 */
#ifndef HEARTH_TESTS_VISION_FIXTURE_H
#define HEARTH_TESTS_VISION_FIXTURE_H

#include "model/synth.h"
#include "test.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

typedef struct membuf {
    uint8_t *p;
    size_t n, cap;
} membuf;

static inline void vf_png_write(png_structp png, png_bytep data, size_t n) {
    membuf *b = png_get_io_ptr(png);
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static inline void vf_png_flush(png_structp png) { (void)png; }

/* A PNG of w x h pixels, `depth` bits, of color type `ct`; samples from
 * px(x, y, channel). */
static inline membuf vf_png(int w, int h, int ct, int depth, bool interlace, const uint8_t *palette,
                            int n_palette, unsigned (*px)(int, int, int)) {
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    REQUIRE(png && info && !setjmp(png_jmpbuf(png)));
    png_set_write_fn(png, &b, vf_png_write, vf_png_flush);
    png_set_IHDR(png, info, (uint32_t)w, (uint32_t)h, depth, ct,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, (png_const_colorp)palette, n_palette);
    png_write_info(png, info);
    const int ch = ct == PNG_COLOR_TYPE_RGB          ? 3
                   : ct == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                   : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                     : 1;
    const int bytes = depth == 16 ? 2 : 1;
    uint8_t *rows = calloc((size_t)h, (size_t)w * ch * bytes + 1);
    png_bytep *rp = calloc((size_t)h, sizeof *rp);
    for (int y = 0; y < h; y++) {
        rp[y] = rows + (size_t)y * ((size_t)w * ch * bytes + 1);
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                const unsigned v = px(x, y, c);
                if (depth == 16) {
                    rp[y][(x * ch + c) * 2] = (uint8_t)(v >> 8);
                    rp[y][(x * ch + c) * 2 + 1] = (uint8_t)v;
                } else if (depth == 8) {
                    rp[y][x * ch + c] = (uint8_t)v;
                } else { /* packed: depth bits a sample, most significant first */
                    const int bit = x * depth;
                    rp[y][bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                }
            }
    }
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows), free(rp);
    return b;
}

/* A random gemma3 text model (128 wide, 3 layers, a synth vocabulary) and
 * its projector (the defaults: 56 pixels, patches of 14, 4 rows an image,
 * F16 matrices) written to the two paths. */
static inline void vf_models(const char *text_path, const char *proj_path, int n_ctx,
                             uint64_t seed_text, uint64_t seed_proj) {
    synth_params p = synth_default_params();
    p.arch = "gemma3", p.n_embd = 128, p.n_head = 4, p.n_head_kv = 1, p.head_dim = 32;
    p.n_ff = 256, p.n_layer = 3, p.n_ctx = n_ctx, p.seed = seed_text;
    REQUIRE(synth_write(text_path, &p) == HEARTH_OK);
    synth_vision_params vp = synth_vision_default_params();
    vp.n_embd_text = 128, vp.seed = seed_proj;
    REQUIRE(synth_vision_write(proj_path, &vp) == HEARTH_OK);
}

#endif
