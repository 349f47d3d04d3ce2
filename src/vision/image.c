/*
 * image.c - PNG and JPEG bytes into 8-bit RGB, through libpng and
 * libjpeg-turbo. Both report errors by longjmp; each decoder keeps its state
 * in a struct the caller owns, so nothing the jump skips over is a local
 * variable changed after setjmp. The conversions are stb_image's (what
 * llama.cpp decodes with): alpha dropped, grey and palettes expanded,
 * 16-bit samples cut to their high byte, no gamma correction; a PNG thus
 * gives llama.cpp's pixels exactly, a JPEG up to libjpeg-turbo's rounding.
 */
#include "vision.h"

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

void vis_image_free(vis_image *img) {
    if (!img) return;
    free(img->rgb);
    *img = (vis_image){0};
}

static hearth_err check_size(uint32_t nx, uint32_t ny) {
    if (nx == 0 || ny == 0) return hr_fail(HEARTH_ERR_FORMAT, "image: it has no pixels");
    if (nx > VIS_MAX_SIDE || ny > VIS_MAX_SIDE)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "image: %ux%u pixels; at most %d on a side", nx, ny,
                       VIS_MAX_SIDE);
    return HEARTH_OK;
}

/* ---- PNG ---- */

typedef struct png_src {
    const uint8_t *p;
    size_t left;
    char msg[160]; /* libpng's error, kept past the jump */
    vis_image img;
    png_bytep *rows;
} png_src;

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_src *src = png_get_io_ptr(png);
    if (n > src->left) png_error(png, "the file ends inside the image");
    memcpy(out, src->p, n);
    src->p += n;
    src->left -= n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg; /* ancillary problems: the pixels are still right */
}

/* Reads the image in png/info into src->img; false (with src->msg) on a
 * libpng error. */
static bool png_decode_into(png_structp png, png_infop info, png_src *src, hearth_err *err) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_read_fn(png, src, png_read_mem);
    png_read_info(png, info);
    const uint32_t nx = png_get_image_width(png, info), ny = png_get_image_height(png, info);
    if ((*err = check_size(nx, ny))) return true;
    const int color = png_get_color_type(png, info);
    png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)nx * 3) {
        *err = hr_fail(HEARTH_ERR_FORMAT, "image: PNG rows of %zu bytes, expected %u",
                       png_get_rowbytes(png, info), nx * 3);
        return true;
    }
    src->img.nx = (int)nx, src->img.ny = (int)ny;
    src->img.rgb = hr_calloc((size_t)nx * ny, 3);
    src->rows = hr_calloc(ny, sizeof *src->rows);
    if (!src->img.rgb || !src->rows) {
        *err = HEARTH_ERR_NOMEM;
        return true;
    }
    for (uint32_t y = 0; y < ny; y++) src->rows[y] = src->img.rgb + (size_t)y * nx * 3;
    png_read_image(png, src->rows);
    png_read_end(png, NULL);
    return true;
}

static hearth_err decode_png(const uint8_t *data, size_t len, vis_image *out) {
    png_src src = {.p = data, .left = len};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return hr_fail(HEARTH_ERR_NOMEM, "image: libpng could not start");
    }
    hearth_err err = HEARTH_OK;
    if (!png_decode_into(png, info, &src, &err))
        err = hr_fail(HEARTH_ERR_FORMAT, "image: bad PNG: %s", src.msg);
    png_destroy_read_struct(&png, &info, NULL);
    free(src.rows);
    if (err) {
        vis_image_free(&src.img);
        return err;
    }
    *out = src.img;
    return HEARTH_OK;
}

/* ---- JPEG ---- */

typedef struct jpeg_src {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands back a pointer to it */
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    vis_image img;
} jpeg_src;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_src *src = (jpeg_src *)cinfo->err;
    cinfo->err->format_message(cinfo, src->msg);
    longjmp(src->jmp, 1);
}

/* A warning (level -1) means corrupt data that libjpeg would paper over with
 * grey: refused, rather than described wrongly. Trace messages are ignored. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_on_error(cinfo);
}

static bool jpeg_decode_into(struct jpeg_decompress_struct *cinfo, jpeg_src *src,
                             const uint8_t *data, size_t len, hearth_err *err) {
    if (setjmp(src->jmp)) return false;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    if ((*err = check_size(cinfo->image_width, cinfo->image_height))) return true;
    if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
        *err = hr_fail(HEARTH_ERR_UNSUPPORTED, "image: CMYK JPEGs are not supported");
        return true;
    }
    cinfo->out_color_space = JCS_RGB;
    jpeg_start_decompress(cinfo);
    const int nx = (int)cinfo->output_width, ny = (int)cinfo->output_height;
    if (cinfo->output_components != 3) {
        *err = hr_fail(HEARTH_ERR_FORMAT, "image: JPEG decodes to %d channels",
                       cinfo->output_components);
        return true;
    }
    src->img = (vis_image){.nx = nx, .ny = ny, .rgb = hr_calloc((size_t)nx * (size_t)ny, 3)};
    if (!src->img.rgb) {
        *err = HEARTH_ERR_NOMEM;
        return true;
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = src->img.rgb + (size_t)cinfo->output_scanline * (size_t)nx * 3;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);
    return true;
}

static hearth_err decode_jpeg(const uint8_t *data, size_t len, vis_image *out) {
    struct jpeg_decompress_struct cinfo;
    jpeg_src src = {0};
    cinfo.err = jpeg_std_error(&src.mgr);
    src.mgr.error_exit = jpeg_on_error;
    src.mgr.emit_message = jpeg_on_message;
    hearth_err err = HEARTH_OK;
    if (!jpeg_decode_into(&cinfo, &src, data, len, &err))
        err = hr_fail(HEARTH_ERR_FORMAT, "image: bad JPEG: %s", src.msg);
    jpeg_destroy_decompress(&cinfo);
    if (err) {
        vis_image_free(&src.img);
        return err;
    }
    *out = src.img;
    return HEARTH_OK;
}

hearth_err vis_image_decode(const void *data, size_t len, vis_image *out) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *p = data;
    if (len >= 8 && memcmp(p, png_sig, 8) == 0) return decode_png(p, len, out);
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return decode_jpeg(p, len, out);
    return hr_fail(HEARTH_ERR_FORMAT, "image: not a PNG or JPEG file (%zu bytes)", len);
}
