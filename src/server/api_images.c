/*
 * api_images.c - images in chat requests (docs/vision.md): OpenAI's
 * image_url content parts as data: URIs (or bare base64, as llama-server
 * takes them) decoded into bytes, and a request's images encoded by its
 * model's vision projector. Remote URLs are refused: the server fetches
 * nothing (privacy by default; the only network traffic is a configured
 * cloud tier).
 */
#include "server.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum { IMAGE_MAX_BYTES = 20 << 20 }; /* decoded, per image */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* and base64url's */
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Standard or URL-safe base64, '=' padding optional, white space skipped;
 * false on any other byte or a dangling bit. */
static bool b64_decode(const char *s, size_t n, uint8_t **out, size_t *len) {
    uint8_t *p = malloc(n / 4 * 3 + 3);
    if (!p) return false;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t i = 0;
    for (; i < n && s[i] != '='; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        const int v = b64_value(c);
        if (v < 0) break;
        acc = acc << 6 | (uint32_t)v;
        if ((bits += 6) >= 8) {
            bits -= 8;
            p[k++] = (uint8_t)(acc >> bits);
        }
    }
    while (i < n && (s[i] == '=' || s[i] == '\n' || s[i] == '\r')) i++;
    if (i < n || bits >= 6 || (acc & ((1u << bits) - 1))) {
        free(p);
        return false;
    }
    *out = p;
    *len = k;
    return true;
}

/* Whether the data: URI's header (before its comma) declares base64. */
static bool header_base64(const char *url, const char *comma) {
    const size_t n = strlen(";base64");
    return (size_t)(comma - url) >= n && !memcmp(comma - n, ";base64", n);
}

bool srv_image_add(srv_request *r, const char *url, const char *param, srv_error *e) {
    if (r->n_images == SRV_MAX_IMAGES)
        return srv_fail(e, 400, param, NULL, "at most %d images a request", SRV_MAX_IMAGES);
    const char *b64 = url;
    if (!strncmp(url, "data:", 5)) {
        const char *comma = strchr(url, ',');
        if (!comma || strncmp(url + 5, "image/", 6) || !header_base64(url, comma))
            return srv_fail(e, 400, param, NULL,
                            "'%s' must be a data: URI of an image in base64 "
                            "(data:image/png;base64,...)",
                            param);
        b64 = comma + 1;
    } else if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8) ||
               !strncmp(url, "file:", 5)) {
        return srv_fail(e, 400, param, NULL,
                        "'%s': the server fetches no URLs (it makes no requests but to a "
                        "configured cloud tier): send the image as a data: URI",
                        param);
    }
    srv_image *img = &r->images[r->n_images];
    if (!b64_decode(b64, strlen(b64), &img->data, &img->len))
        return srv_fail(e, 400, param, NULL, "'%s' is not valid base64", param);
    if (img->len == 0 || img->len > IMAGE_MAX_BYTES) {
        free(img->data);
        img->data = NULL;
        return srv_fail(e, 400, param, NULL, "'%s': an image of %zu bytes (1 to %d MiB)", param,
                        img->len, IMAGE_MAX_BYTES >> 20);
    }
    r->n_images++;
    return true;
}

void srv_images_free(srv_request *r) {
    for (int i = 0; i < r->n_images; i++) free(r->images[i].data);
    r->n_images = 0;
    free(r->image_rows);
    r->image_rows = NULL;
}

bool srv_images_encode(const srv_model *m, srv_request *r, srv_error *e) {
    assert(m->vision); /* srv_chat_prompt refused the images of a model without one */
    const size_t per = (size_t)hearth_vision_n_tokens(m->vision) * hearth_model_n_embd(m->model);
    free(r->image_rows);
    if (!(r->image_rows = malloc((size_t)r->n_images * per * sizeof *r->image_rows)))
        return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (int i = 0; i < r->n_images; i++) {
        const hearth_err err = hearth_vision_encode(m->vision, r->images[i].data, r->images[i].len,
                                                    r->image_rows + i * per);
        if (err == HEARTH_ERR_NOMEM) return srv_fail(e, 500, NULL, NULL, "out of memory");
        if (err)
            return srv_fail(e, 400, "messages", NULL, "image %d: %s", i + 1, hearth_last_error());
    }
    return true;
}
