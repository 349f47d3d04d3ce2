/*
 * fuzz_image.c - the image decoders (libpng, libjpeg-turbo) and the
 * letterbox on arbitrary bytes: vis_image_decode must either refuse the
 * input with a message or give an image within VIS_MAX_SIDE whose every
 * pixel can be read, and scaling it to fit a small square must stay inside
 * both. Seeds: fuzz/corpus/image/ (small PNG and JPEG files).
 */
#include "vision/vision.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink; /* keeps the reads */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vis_image img = {0};
    if (vis_image_decode(data, size, &img)) return 0;
    if (img.nx < 1 || img.ny < 1 || img.nx > VIS_MAX_SIDE || img.ny > VIS_MAX_SIDE) abort();
    const size_t n = (size_t)img.nx * (size_t)img.ny * 3;
    sink += (uint64_t)img.rgb[0] + img.rgb[n - 1];
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    static float out[3 * 28 * 28];
    if (vis_preprocess_fit(&img, 28, mean, std, out) == HEARTH_OK) sink += out[0] > 0;
    vis_image_free(&img);
    return 0;
}
