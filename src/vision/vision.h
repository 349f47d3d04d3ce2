/*
 * vision.h - images into a language model's input embeddings (docs/vision.md).
 *
 * image.c decodes PNG and JPEG bytes (libpng, libjpeg-turbo) into 8-bit RGB;
 * preprocess.c turns that into the float planes a vision tower reads, as
 * llama.cpp's mtmd does for the projector type; clip.c loads a projector
 * file ("mmproj": llama.cpp's clip GGUF) and runs its vision transformer and
 * projector. The public face is hearth_vision_* in hearth.h.
 */
#ifndef HEARTH_VISION_H
#define HEARTH_VISION_H

#include "core/core.h"

#include <stdint.h>

/* Images larger than this on either side are refused before decoding. */
#define VIS_MAX_SIDE 8192

/* 8-bit RGB, rows top to bottom, pixels interleaved (R, G, B). */
typedef struct vis_image {
    int nx, ny;
    uint8_t *rgb; /* [ny][nx][3], owned */
} vis_image;

/* Decodes a PNG or JPEG image (recognized by its signature) into *out; an
 * alpha channel is dropped, grey and palette images become RGB, 16-bit
 * samples keep their high byte (stb_image's conversions, which llama.cpp
 * uses). HEARTH_ERR_FORMAT for anything else or a damaged image;
 * HEARTH_ERR_UNSUPPORTED for CMYK JPEGs; HEARTH_ERR_INVALID_ARG for an image
 * over VIS_MAX_SIDE. */
hearth_err vis_image_decode(const void *data, size_t len, vis_image *out);
void vis_image_free(vis_image *img);

/* The fixed-size preprocessing (Gemma 3): the image scaled to fit side x side
 * keeping its aspect ratio (bilinear, llama.cpp's arithmetic), centred on
 * black, then each channel as (v / 255 - mean) / std. out: three planes of
 * side x side floats (R, G, B), rows top to bottom. */
hearth_err vis_preprocess_fit(const vis_image *img, int side, const float mean[3],
                              const float std[3], float *out);

/* The text around an image's rows (Gemma 3: "<start_of_image>" and
 * "<end_of_image>", tokenized with control tokens parsed) and whether the
 * rows attend to each other both ways (hearth_decode_embd). */
void vis_wrap(const hearth_vision *v, const char **begin, const char **end);
bool vis_bidirectional(const hearth_vision *v);

#endif
