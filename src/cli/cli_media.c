/*
 * cli_media.c - the images of a command's prompt (--mmproj, --image): the
 * projector loaded for the model, each file read, encoded and hashed, as
 * hearth_tokenize_media and hearth_prefill_media take them.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MEDIA_MAX_FILE = 64 << 20 }; /* bytes of one image file */

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(MEDIA_MAX_FILE + 1);
    *len = buf ? fread(buf, 1, MEDIA_MAX_FILE + 1, f) : 0;
    const bool ok = buf && !ferror(f) && *len <= MEDIA_MAX_FILE;
    fclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

int cli_media_open(const char *cmd, hearth_model *m, const char *mmproj, const char *const *paths,
                   int n, int n_threads, cli_media *out) {
    memset(out, 0, sizeof *out);
    hearth_vision *v;
    if (hearth_vision_load(mmproj, m, n_threads, &v)) return cli_fail(cmd, "--mmproj");
    const int rc = cli_media_load(cmd, v, m, paths, n, out);
    out->vision = v;
    return rc;
}

int cli_media_load(const char *cmd, hearth_vision *v, const hearth_model *m,
                   const char *const *paths, int n, cli_media *out) {
    memset(out, 0, sizeof *out);
    const size_t per = (size_t)hearth_vision_n_tokens(v) * hearth_model_n_embd(m);
    out->rows = malloc((size_t)n * per * sizeof *out->rows);
    out->images = malloc((size_t)n * sizeof *out->images);
    out->hashes = malloc((size_t)n * sizeof *out->hashes);
    if (!out->rows || !out->images || !out->hashes) {
        fprintf(stderr, "hearth %s: out of memory\n", cmd);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *data = read_file(paths[i], &len);
        if (!data) {
            fprintf(stderr, "hearth %s: --image %s: cannot read it (or over %d MiB)\n", cmd,
                    paths[i], MEDIA_MAX_FILE >> 20);
            return 1;
        }
        float *rows = out->rows + (size_t)i * per;
        const double t0 = cli_now_ms();
        const hearth_err err = hearth_vision_encode(v, data, len, rows);
        if (!err)
            fprintf(stderr, "image %s: %d rows in %.1f ms\n", paths[i], hearth_vision_n_tokens(v),
                    cli_now_ms() - t0);
        out->hashes[i] = hearth_media_hash(data, len);
        free(data);
        if (err) return cli_fail(cmd, paths[i]);
        out->images[i] = rows;
        out->n = i + 1;
    }
    return 0;
}

void cli_media_close(cli_media *c) {
    hearth_vision_free(c->vision);
    free(c->rows);
    free(c->images);
    free(c->hashes);
    memset(c, 0, sizeof *c);
}
