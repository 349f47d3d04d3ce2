/*
 * preprocess.c - an RGB image into the normalized planes a vision tower
 * reads, in llama.cpp's arithmetic (tools/mtmd: the fixed-size preprocessor,
 * its bilinear resize and its letterbox), so that the same image gives the
 * same floats. Built with -ffp-contract=off: a fused multiply-add would move
 * a pixel across an integer boundary that the truncation to 8 bits keeps.
 */
#include "vision.h"

#include <math.h>
#include <string.h>

static float lerp(float s, float e, float t) { return s + (e - s) * t; }

/* Bilinear resize of src to nx x ny into dst ([ny][nx][3]): the corners of
 * both grids coincide, each sample truncated to 8 bits. */
static void resize_bilinear(const vis_image *src, int nx, int ny, uint8_t *dst) {
    const float xr = nx > 1 ? (float)(src->nx - 1) / (float)(nx - 1) : 0.0f;
    const float yr = ny > 1 ? (float)(src->ny - 1) / (float)(ny - 1) : 0.0f;
    for (int y = 0; y < ny; y++) {
        const float py = (float)y * yr;
        const int y0 = (int)py < src->ny - 1 ? (int)py : src->ny - 1;
        const int y1 = y0 + 1 < src->ny - 1 ? y0 + 1 : src->ny - 1;
        const float yf = py - (float)y0;
        for (int x = 0; x < nx; x++) {
            const float px = (float)x * xr;
            const int x0 = (int)px < src->nx - 1 ? (int)px : src->nx - 1;
            const int x1 = x0 + 1 < src->nx - 1 ? x0 + 1 : src->nx - 1;
            const float xf = px - (float)x0;
            const uint8_t *p00 = src->rgb + ((size_t)y0 * src->nx + x0) * 3;
            const uint8_t *p10 = src->rgb + ((size_t)y0 * src->nx + x1) * 3;
            const uint8_t *p01 = src->rgb + ((size_t)y1 * src->nx + x0) * 3;
            const uint8_t *p11 = src->rgb + ((size_t)y1 * src->nx + x1) * 3;
            uint8_t *d = dst + ((size_t)y * nx + x) * 3;
            for (int c = 0; c < 3; c++) {
                const float top = lerp(p00[c], p10[c], xf), bottom = lerp(p01[c], p11[c], xf);
                d[c] = (uint8_t)lerp(top, bottom, yf);
            }
        }
    }
}

hearth_err vis_preprocess_fit(const vis_image *img, int side, const float mean[3],
                              const float std[3], float *out) {
    const size_t plane = (size_t)side * side;
    const uint8_t *rgb = img->rgb;
    uint8_t *fit = NULL; /* [side][side][3], black around the scaled image */
    if (img->nx != side || img->ny != side) {
        const float sx = (float)side / (float)img->nx, sy = (float)side / (float)img->ny;
        const float scale = sx < sy ? sx : sy;
        int nx = (int)ceilf((float)img->nx * scale), ny = (int)ceilf((float)img->ny * scale);
        nx = nx < side ? nx : side;
        ny = ny < side ? ny : side;
        fit = hr_calloc(plane, 3);
        uint8_t *scaled = fit ? hr_calloc((size_t)nx * (size_t)ny, 3) : NULL;
        if (!scaled) {
            free(fit);
            return HEARTH_ERR_NOMEM;
        }
        resize_bilinear(img, nx, ny, scaled);
        const int ox = (side - nx) / 2, oy = (side - ny) / 2;
        for (int y = 0; y < ny; y++)
            memcpy(fit + ((size_t)(y + oy) * side + ox) * 3, scaled + (size_t)y * nx * 3,
                   (size_t)nx * 3);
        free(scaled);
        rgb = fit;
    }
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            out[c * plane + i] = ((float)rgb[i * 3 + c] / 255.0f - mean[c]) / std[c];
    free(fit);
    return HEARTH_OK;
}
