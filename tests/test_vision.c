/*
 * test_vision.c - images (src/vision): PNG and JPEG decoding and their
 * refusals, the letterbox preprocessing, and a Gemma 3 projector against
 * llama.cpp, without ../shared: a random gemma3 text model and projector
 * from synth, a 40x30 PNG drawn here. llama.cpp's values for these very
 * files (commit 34af94cd's mtmd, CPU, flash attention off for the tower
 * and the model, F32 KV cache) were measured with a program linked against
 * libmtmd outside this repository; HEARTH_VISION_FIXTURES=DIR keeps the
 * files in DIR to measure them again. Exact mode must give the tower's
 * embeddings bit for bit and the prompt's logits to float rounding; the
 * default mode within 2e-3 of them. Then the prompt cache with images, the
 * bidirectional rows, and the errors.
 */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/synth.h"
#include "test.h"
#include "vision/vision.h"
#include "vision_fixture.h"

#include <math.h>
#include <jpeglib.h>
#include <png.h>
#include <string.h>
#include <unistd.h>

static char dir[256];
static const char k_prompt[] = "Describe <__media__> please, in a few words.";

/* llama.cpp on the fixtures: FNV-1a-64 of the preprocessed planes and of
 * the image rows (their float bits), the prompt's last logits' first 8
 * and argmax, and 8 greedy tokens after it. */
static const uint64_t k_pre_hash = 0xe76c42bf07e194fdull, k_rows_hash = 0x4d44c240bb0ee94bull;
static const float k_logits[8] = {-0.7107181f, -0.826463f, 1.4231995f,   0.9717725f,
                                  1.3041193f,  1.5422564f, -0.13716424f, 3.0637436f};
static const int32_t k_gen[8] = {146, 313, 163, 325, 136, 136, 64, 254};
/* mtmd_tokenize's chunks: text, the image's 4 rows (-1 here), text */
static const int32_t k_ids[] = {1,   259, 71,  305, 271, 267, 264, 279, 260, 259, 259, 63,  266,
                                261, 262, 267, 261, 98,  263, 274, 98,  264, 273, 262, 276, 260,
                                65,  -1,  -1,  -1,  -1,  259, 63,  301, 270, 98,  263, 274, 98,
                                264, 273, 262, 276, 260, 65,  259, 259, 275, 269, 260, 262, 266,
                                260, 287, 321, 292, 312, 260, 277, 298, 310, 270, 266, 286};

/* ---- writing images ---- */

static unsigned px_rgb(int x, int y, int c) { return (unsigned)(x * 7 + y * 13 + c * 85) & 255; }
static unsigned px_alpha(int x, int y, int c) { return c == 3 ? 17 : px_rgb(x, y, c); }
static unsigned px_16(int x, int y, int c) { return px_rgb(x, y, c) * 257 + (unsigned)x; }
static unsigned px_grey2(int x, int y, int c) { return (unsigned)(x + y + c) & 3; }
static unsigned px_index(int x, int y, int c) { return (unsigned)(x + y + c) % 3; }

static membuf make_jpeg(int w, int h, J_COLOR_SPACE cs, int comps) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = comps, c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * comps);
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w; x++)
            for (int k = 0; k < comps; k++)
                row[x * comps + k] = (uint8_t)(x * 4 + (int)c.next_scanline * 3 + k * 30);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    membuf b = {.p = out, .n = n, .cap = n};
    return b;
}

/* ---- decoding ---- */

static void check_pixels(const vis_image *img, int w, int h, unsigned (*px)(int, int, int),
                         unsigned (*expect)(unsigned, int), const char *what) {
    CHECKF(img->nx == w && img->ny == h, "%s: %dx%d", what, img->nx, img->ny);
    int bad = 0;
    for (int y = 0; y < h && img->nx == w; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                bad += img->rgb[((size_t)y * w + x) * 3 + c] != expect(px(x, y, c), c);
    CHECKF(bad == 0, "%s: %d samples differ", what, bad);
}

static unsigned same(unsigned v, int c) { return (void)c, v; }
static unsigned high_byte(unsigned v, int c) { return (void)c, v >> 8; }
static unsigned grey2_to_8(unsigned v, int c) { return (void)c, v * 85; }

static const uint8_t k_palette[9] = {10, 20, 30, 200, 100, 50, 0, 255, 128};
static unsigned palette_rgb(unsigned v, int c) { return k_palette[v * 3 + (unsigned)c]; }
/* the palette image's samples: one index per pixel, whatever the channel */
static unsigned px_index0(int x, int y, int c) { return (void)c, px_index(x, y, 0); }
static unsigned px_grey0(int x, int y, int c) { return (void)c, px_grey2(x, y, 0); }

static void test_decode(void) {
    vis_image img = {0};
    membuf b = vf_png(13, 7, PNG_COLOR_TYPE_RGB, 8, false, NULL, 0, px_rgb);
    REQUIRE(vis_image_decode(b.p, b.n, &img) == HEARTH_OK);
    check_pixels(&img, 13, 7, px_rgb, same, "rgb8");
    vis_image_free(&img);
    /* damaged: truncated, a flipped byte in the data, random bytes after the signature */
    CHECK(vis_image_decode(b.p, b.n / 2, &img) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "bad PNG") != NULL);
    b.p[b.n - 20] ^= 0x55;
    CHECK(vis_image_decode(b.p, b.n, &img) == HEARTH_ERR_FORMAT);
    free(b.p);

    /* colour types and depths into RGB: what was written, what should come out */
    static const struct {
        int w, h, ct, depth;
        bool interlace;
        unsigned (*px)(int, int, int), (*out_px)(int, int, int), (*out)(unsigned, int);
        const char *what;
    } cases[] = {
        {9, 5, PNG_COLOR_TYPE_RGB_ALPHA, 8, true, px_alpha, px_rgb, same,
         "rgba8 interlaced (alpha dropped)"},
        {6, 4, PNG_COLOR_TYPE_RGB, 16, false, px_16, px_16, high_byte, "rgb16 (high byte)"},
        {10, 3, PNG_COLOR_TYPE_GRAY, 2, false, px_grey0, px_grey0, grey2_to_8, "grey2"},
        {7, 7, PNG_COLOR_TYPE_PALETTE, 8, false, px_index0, px_index0, palette_rgb, "palette"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bool pal = cases[i].ct == PNG_COLOR_TYPE_PALETTE;
        b = vf_png(cases[i].w, cases[i].h, cases[i].ct, cases[i].depth, cases[i].interlace,
                   pal ? k_palette : NULL, pal ? 3 : 0, cases[i].px);
        REQUIRE(vis_image_decode(b.p, b.n, &img) == HEARTH_OK);
        check_pixels(&img, cases[i].w, cases[i].h, cases[i].out_px, cases[i].out, cases[i].what);
        vis_image_free(&img), free(b.p);
    }

    b = vf_png(VIS_MAX_SIDE + 1, 1, PNG_COLOR_TYPE_GRAY, 1, false, NULL, 0, px_grey0);
    CHECK(vis_image_decode(b.p, b.n, &img) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "at most") != NULL);
    free(b.p);

    b = make_jpeg(24, 16, JCS_RGB, 3);
    REQUIRE(vis_image_decode(b.p, b.n, &img) == HEARTH_OK);
    CHECK(img.nx == 24 && img.ny == 16);
    int worst = 0; /* lossy: close to what was written */
    for (int y = 0; y < 16 && img.rgb; y++)
        for (int x = 0; x < 24; x++)
            for (int k = 0; k < 3; k++) {
                const int d = abs((int)img.rgb[(y * 24 + x) * 3 + k] - (x * 4 + y * 3 + k * 30));
                worst = d > worst ? d : worst;
            }
    CHECKF(worst <= 12, "jpeg: a sample off by %d", worst);
    vis_image_free(&img);
    CHECK(vis_image_decode(b.p, b.n - 30, &img) == HEARTH_ERR_FORMAT); /* truncated */
    CHECK(strstr(hearth_last_error(), "bad JPEG") != NULL);
    free(b.p);
    b = make_jpeg(8, 8, JCS_GRAYSCALE, 1);
    REQUIRE(vis_image_decode(b.p, b.n, &img) == HEARTH_OK);
    CHECK(img.rgb[0] == img.rgb[1] && img.rgb[1] == img.rgb[2]);
    vis_image_free(&img), free(b.p);
    b = make_jpeg(8, 8, JCS_CMYK, 4);
    CHECK(vis_image_decode(b.p, b.n, &img) == HEARTH_ERR_UNSUPPORTED);
    free(b.p);

    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    CHECK(vis_image_decode(gif, sizeof gif, &img) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "not a PNG or JPEG") != NULL);
    CHECK(vis_image_decode(gif, 0, &img) == HEARTH_ERR_FORMAT);
}

/* ---- preprocessing ---- */

static void test_preprocess(void) {
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.5f, 0.5f, 0.5f};
    membuf b = vf_png(40, 30, PNG_COLOR_TYPE_RGB, 8, false, NULL, 0, px_rgb);
    vis_image img = {0};
    REQUIRE(vis_image_decode(b.p, b.n, &img) == HEARTH_OK);
    free(b.p);
    float *pix = calloc(3 * 56 * 56, sizeof *pix);
    REQUIRE(vis_preprocess_fit(&img, 56, mean, sd, pix) == HEARTH_OK);
    /* 40x30 fits 56 as 56x42 (ceil), centred: 7 black rows above and below */
    int black = 0, inside = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 56; y++)
            for (int x = 0; x < 56; x++) {
                const float v = pix[(c * 56 + y) * 56 + x];
                if (y < 7 || y >= 49)
                    black += v == -1.0f;
                else
                    inside += v != -1.0f || px_rgb(0, 0, c) == 0;
            }
    CHECKF(black == 3 * 14 * 56, "letterbox: %d black samples", black);
    CHECK(inside > 3 * 42 * 50);
    /* the corners of both grids coincide: the first row's first and last pixel */
    CHECK(pix[7 * 56] == ((float)px_rgb(0, 0, 0) / 255.0f - 0.5f) / 0.5f);
    CHECK(pix[7 * 56 + 55] == ((float)px_rgb(39, 0, 0) / 255.0f - 0.5f) / 0.5f);
    CHECK(pix[48 * 56] == ((float)px_rgb(0, 29, 0) / 255.0f - 0.5f) / 0.5f);
    uint64_t h = test_fnv1a(TEST_FNV_SEED, pix, 3 * 56 * 56 * sizeof *pix);
    CHECKF(h == k_pre_hash, "planes hash %016llx", (unsigned long long)h);
    vis_image_free(&img), free(pix);
}

/* ---- a projector and its model, against llama.cpp ---- */

static char text_path[300], proj_path[300], png_path[300];

static void write_fixtures(void) {
    snprintf(text_path, sizeof text_path, "%s/gemma3.gguf", dir);
    snprintf(proj_path, sizeof proj_path, "%s/mmproj.gguf", dir);
    snprintf(png_path, sizeof png_path, "%s/image.png", dir);
    vf_models(text_path, proj_path, 256, 21, 22);
    membuf b = vf_png(40, 30, PNG_COLOR_TYPE_RGB, 8, false, NULL, 0, px_rgb);
    FILE *f = fopen(png_path, "wb");
    REQUIRE(f && fwrite(b.p, 1, b.n, f) == b.n);
    fclose(f);
    free(b.p);
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    uint8_t *p = malloc(1 << 20);
    *n = fread(p, 1, 1 << 20, f);
    fclose(f);
    return p;
}

typedef struct run {
    hearth_model *m;
    hearth_vision *v;
    hearth_session *s;
    uint8_t *png;
    size_t png_len;
    float rows[4 * 128];
    int32_t ids[256];
    int n_ids;
} run;

static void run_open(run *r) {
    memset(r, 0, sizeof *r);
    REQUIRE(hearth_model_load(text_path, NULL, &r->m) == HEARTH_OK);
    REQUIRE(hearth_vision_load(proj_path, r->m, 2, &r->v) == HEARTH_OK);
    REQUIRE(hearth_vision_n_tokens(r->v) == 4);
    hearth_session_params sp = hearth_session_default_params();
    sp.kv_type = HEARTH_KV_F32, sp.n_ctx = 256, sp.n_batch = 256;
    REQUIRE(hearth_session_new(r->m, &sp, &r->s) == HEARTH_OK);
    r->png = read_all(png_path, &r->png_len);
    REQUIRE(hearth_vision_encode(r->v, r->png, r->png_len, r->rows) == HEARTH_OK);
    const uint64_t h = hearth_media_hash(r->png, r->png_len);
    size_t n = 0;
    REQUIRE(hearth_tokenize_media(r->m, r->v, k_prompt, strlen(k_prompt), true, true, &h, 1, r->ids,
                                  256, &n) == HEARTH_OK);
    r->n_ids = (int)n;
}

static void run_close(run *r) {
    hearth_session_free(r->s);
    hearth_vision_free(r->v);
    hearth_model_free(r->m);
    free(r->png);
}

/* The prompt through its image, then the rest: the last logits; how many
 * positions the prefill evaluated. */
static int run_prompt(run *r, float *logits) {
    const float *img[1] = {r->rows};
    int done = -1;
    REQUIRE(hearth_prefill_media(r->s, r->v, r->ids, r->n_ids, img, 1, &done) == HEARTH_OK);
    int pos = hearth_session_pos(r->s);
    if (pos == r->n_ids) /* all of it held: its last token again, as hearth_gen_new does */
        REQUIRE(hearth_session_truncate(r->s, pos = r->n_ids - 1) == HEARTH_OK);
    REQUIRE(hearth_decode(r->s, r->ids + pos, r->n_ids - pos, logits, false) == HEARTH_OK);
    return done;
}

static void test_peer(void) {
    const int n_vocab = 512;
    float exact_rows[4 * 128], exact_logits[512], logits[512];
    int32_t gen[8];
    run r;
    kern_set_exact(true);
    run_open(&r);
    REQUIRE(hearth_model_n_vocab(r.m) <= n_vocab);
    memcpy(exact_rows, r.rows, sizeof r.rows);
    run_prompt(&r, exact_logits);
    memcpy(logits, exact_logits, sizeof logits);
    for (int i = 0; i < 8; i++) {
        gen[i] = 0;
        for (int t = 1; t < hearth_model_n_vocab(r.m); t++)
            if (logits[t] > logits[gen[i]]) gen[i] = t;
        REQUIRE(hearth_decode(r.s, &gen[i], 1, logits, false) == HEARTH_OK);
    }
    const uint64_t h = test_fnv1a(TEST_FNV_SEED, exact_rows, sizeof exact_rows);
    CHECKF(h == k_rows_hash, "image rows hash %016llx", (unsigned long long)h);
    REQUIRE(r.n_ids == (int)(sizeof k_ids / sizeof *k_ids));
    for (int i = 0; i < r.n_ids; i++) CHECK((r.ids[i] < 0 ? -1 : r.ids[i]) == k_ids[i]);
    CHECKF(test_max_diff(exact_logits, k_logits, 8) <= 1e-6, "logits off by %g",
           test_max_diff(exact_logits, k_logits, 8));
    CHECK(memcmp(gen, k_gen, sizeof gen) == 0);
    run_close(&r);
    kern_set_exact(false);
    run_open(&r);
    CHECKF(test_max_diff(r.rows, exact_rows, 4 * 128) <= 2e-3, "default mode's rows: %g",
           test_max_diff(r.rows, exact_rows, 4 * 128));
    run_prompt(&r, logits);
    CHECKF(test_max_diff(logits, exact_logits, (size_t)hearth_model_n_vocab(r.m)) <= 2e-3,
           "default mode's logits: %g",
           test_max_diff(logits, exact_logits, (size_t)hearth_model_n_vocab(r.m)));
    run_close(&r);
}

/* A prompt seen again reuses its image; another image is evaluated from
 * its first row; the rows see each other (unlike a causal pass). */
static void test_cache(void) {
    run r;
    run_open(&r);
    const int n_vocab = hearth_model_n_vocab(r.m);
    float a[512], b[512];
    int end = r.n_ids;
    while (r.ids[end - 1] >= 0) end--;
    CHECK(run_prompt(&r, a) == end);
    CHECK(run_prompt(&r, b) == 0); /* all of it held */
    /* a longer prompt (a chat's next turn): the text after the image stays for the generation */
    int32_t longer[300];
    memcpy(longer, r.ids, (size_t)r.n_ids * sizeof *longer);
    longer[r.n_ids] = 300, longer[r.n_ids + 1] = 301;
    const float *img1[1] = {r.rows};
    int done = -1;
    REQUIRE(hearth_prefill_media(r.s, r.v, longer, r.n_ids + 2, img1, 1, &done) == HEARTH_OK);
    CHECK(done == 0 && hearth_session_pos(r.s) == r.n_ids);
    CHECK(memcmp(a, b, (size_t)n_vocab * sizeof *a) == 0);
    /* another image: a second prompt's image ids differ from the first's */
    membuf png = vf_png(56, 56, PNG_COLOR_TYPE_RGB, 8, false, NULL, 0, px_16);
    float rows2[4 * 128];
    REQUIRE(hearth_vision_encode(r.v, png.p, png.n, rows2) == HEARTH_OK);
    const uint64_t h2 = hearth_media_hash(png.p, png.n);
    int32_t ids2[256];
    size_t n2 = 0;
    REQUIRE(hearth_tokenize_media(r.m, r.v, k_prompt, strlen(k_prompt), true, true, &h2, 1, ids2,
                                  256, &n2) == HEARTH_OK);
    CHECK((int)n2 == r.n_ids && ids2[end - 1] != r.ids[end - 1] && ids2[end - 5] == r.ids[end - 5]);
    const float *img2[1] = {rows2};
    REQUIRE(hearth_prefill_media(r.s, r.v, ids2, (int)n2, img2, 1, &done) == HEARTH_OK);
    CHECK(done == 4); /* from the image's first row */
    int n_held = 0;
    const int32_t *held = hearth_session_tokens(r.s, &n_held);
    CHECK(hearth_session_pos(r.s) == end && memcmp(held, ids2, (size_t)end * sizeof *held) == 0);
    REQUIRE(hearth_decode(r.s, ids2 + end, (int)n2 - end, b, false) == HEARTH_OK);
    char saved[320];
    snprintf(saved, sizeof saved, "%s/session.bin", dir);
    CHECK(hearth_session_save(r.s, saved, NULL) == HEARTH_ERR_UNSUPPORTED);
    CHECK(access(saved, F_OK) != 0);
    CHECK(test_max_diff(a, b, (size_t)n_vocab) > 1e-3);
    /* causal rows: the same prompt with its image evaluated one row at a time */
    REQUIRE(hearth_session_truncate(r.s, 0) == HEARTH_OK);
    REQUIRE(hearth_decode(r.s, r.ids, end - 4, NULL, false) == HEARTH_OK);
    for (int i = 0; i < 4; i++)
        REQUIRE(hearth_decode_embd(r.s, r.rows + i * 128, r.ids + end - 4 + i, 1, true, NULL) ==
                HEARTH_OK);
    REQUIRE(hearth_decode(r.s, r.ids + end, r.n_ids - end, b, false) == HEARTH_OK);
    CHECKF(test_max_diff(a, b, (size_t)n_vocab) > 1e-4, "causal and bidirectional rows agree");
    free(png.p);
    run_close(&r);
}

/* The commands: hearth run --image, hearth chat's /image, and what they
 * say when there is no projector. */
static char *run_cmd(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    char *out = calloc(1, 65536);
    size_t n = fread(out, 1, 65535, p);
    out[n] = '\0';
    *status = pclose(p);
    return out;
}

static void test_commands(void) {
    char cmd[2048];
    int st = 0;
    snprintf(cmd, sizeof cmd,
             "'%s' run -m '%s' --mmproj '%s' --image '%s' -p 'Describe <__media__> please' -n 2 "
             "--temp 0 2>&1",
             HEARTH_BINARY, text_path, proj_path, png_path);
    char *out = run_cmd(cmd, &st);
    CHECKF(st == 0 && strstr(out, "4 rows in") && strstr(out, "prompt through its last image"),
           "run --image: %d\n%s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "printf 'Hi\\n/image %s\\nAnd this?\\n' | '%s' chat -m '%s' --mmproj '%s' --image "
             "'%s' --chat-template gemma3 -n 2 --temp 0 --verbose 2>&1",
             png_path, HEARTH_BINARY, text_path, proj_path, png_path);
    out = run_cmd(cmd, &st);
    CHECKF(st == 0 && strstr(out, "[image added") && strstr(out, "positions, evaluated first"),
           "chat /image: %d\n%s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "printf '/image %s\\n' | '%s' chat -m '%s' 2>&1", png_path,
             HEARTH_BINARY, text_path);
    out = run_cmd(cmd, &st);
    CHECKF(strstr(out, "need a vision projector") != NULL, "chat /image without --mmproj:\n%s",
           out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' --image '%s' -p x 2>&1", HEARTH_BINARY, text_path,
             png_path);
    out = run_cmd(cmd, &st);
    CHECKF(st != 0 && strstr(out, "--image needs --mmproj"), "run --image alone: %s", out);
    free(out);
}

static void test_errors(void) {
    run r;
    run_open(&r);
    const int32_t ok[4] = {-5, -6, -7, -8}, bad[4] = {-5, 3, -7, -8};
    REQUIRE(hearth_session_truncate(r.s, 0) == HEARTH_OK);
    CHECK(hearth_decode_embd(r.s, r.rows, bad, 4, true, NULL) == HEARTH_ERR_INVALID_ARG);
    float nan_rows[4 * 128];
    memcpy(nan_rows, r.rows, sizeof nan_rows);
    nan_rows[300] = NAN;
    CHECK(hearth_decode_embd(r.s, nan_rows, ok, 4, true, NULL) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_decode_embd(r.s, r.rows, ok, 0, true, NULL) == HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_session_pos(r.s) == 0);
    size_t n = 0;
    const uint64_t h[2] = {1, 2};
    static const char two[] = "a <__media__> b <__media__>", none[] = "no image here";
    CHECK(hearth_tokenize_media(r.m, r.v, two, strlen(two), true, true, h, 1, r.ids, 256, &n) ==
          HEARTH_ERR_INVALID_ARG);
    CHECK(hearth_tokenize_media(r.m, r.v, none, strlen(none), true, true, h, 1, r.ids, 256, &n) ==
          HEARTH_ERR_INVALID_ARG);
    REQUIRE(hearth_tokenize_media(r.m, r.v, two, strlen(two), true, true, h, 2, r.ids, 256, &n) ==
            HEARTH_OK);
    CHECK(hearth_tokenize_media(r.m, r.v, two, strlen(two), true, true, h, 2, r.ids, 4, &n) ==
          HEARTH_ERR_INVALID_ARG);
    /* the prompt's two images, only one given */
    const float *img[1] = {r.rows};
    CHECK(hearth_prefill_media(r.s, r.v, r.ids, (int)n, img, 1, NULL) == HEARTH_ERR_INVALID_ARG);
    static const uint8_t junk[64] = {0x89, 'P', 'N', 'G'};
    CHECK(hearth_vision_encode(r.v, junk, sizeof junk, r.rows) == HEARTH_ERR_FORMAT);
    hearth_vision *v2 = NULL;
    CHECK(hearth_vision_load(text_path, r.m, 1, &v2) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "not a vision projector") != NULL);
    char other[320];
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    synth_vision_params vp = synth_vision_default_params();
    vp.n_embd_text = 64;
    REQUIRE(synth_vision_write(other, &vp) == HEARTH_OK);
    CHECK(hearth_vision_load(other, r.m, 1, &v2) == HEARTH_ERR_INVALID_ARG);
    CHECK(strstr(hearth_last_error(), "another model") != NULL);
    unlink(other);
    run_close(&r);
}

int main(void) {
    const char *keep = getenv("HEARTH_VISION_FIXTURES");
    snprintf(dir, sizeof dir, "%s", keep ? keep : "/tmp/hearth-vision-XXXXXX");
    REQUIRE(keep || mkdtemp(dir));
    test_decode();
    test_preprocess();
    write_fixtures();
    test_peer();
    test_cache();
    test_commands();
    test_errors();
    if (!keep) {
        unlink(text_path), unlink(proj_path), unlink(png_path);
        rmdir(dir);
    }
    return test_done("test_vision");
}
