/*
 * media.c - prompts with images, over the public API: text in which a
 * marker stands for each image becomes token ids with a run of negative
 * ids per image (tokenize), and those runs become the image's embedding
 * rows in the session (prefill), as llama.cpp's mtmd_tokenize and
 * mtmd_helper_eval_chunks build and evaluate them.
 *
 * An image's ids come from a hash of its bytes, so a prompt that repeats
 * an earlier one, image included, finds it in the session's cache and
 * evaluates nothing twice; a different image never matches.
 */
#include "engine/engine.h"
#include "vision.h"

#include <string.h>

/* splitmix64's finalizer: a position's id from the image's hash. */
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void hearth_media_ids(uint64_t hash, int n, int32_t *ids) {
    for (int i = 0; i < n; i++) ids[i] = -1 - (int32_t)(mix(hash + (uint64_t)i) & 0x3fffffff);
}

uint64_t hearth_media_hash(const void *data, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) h = (h ^ ((const uint8_t *)data)[i]) * 0x100000001b3ULL;
    return h;
}

/* The first marker in p[0..n), or NULL. */
static const char *find_marker(const char *p, size_t n) {
    static const char marker[] = HEARTH_MEDIA_MARKER;
    for (const char *q = p; (size_t)(q - p) + sizeof marker - 1 <= n; q++)
        if (*q == '<' && memcmp(q, marker, sizeof marker - 1) == 0) return q;
    return NULL;
}

/* Appends the tokens of text[0..len) (no BOS) at *n, counting past cap. */
static hearth_err put_text(const hearth_model *m, const char *text, size_t len, bool parse_special,
                           int32_t *ids, size_t cap, size_t *n) {
    if (!len) return HEARTH_OK;
    size_t got = 0;
    hearth_err err = hearth_tokenize(m, text, len, false, parse_special, *n < cap ? ids + *n : NULL,
                                     *n < cap ? cap - *n : 0, &got);
    if (err && err != HEARTH_ERR_INVALID_ARG) return err;
    *n += got;
    return HEARTH_OK;
}

hearth_err hearth_tokenize_media(const hearth_model *m, const hearth_vision *v, const char *text,
                                 size_t len, bool add_special, bool parse_special,
                                 const uint64_t *hashes, int n_images, int32_t *ids, size_t cap,
                                 size_t *n_out) {
    const size_t mlen = strlen(HEARTH_MEDIA_MARKER);
    const char *beg, *end;
    vis_wrap(v, &beg, &end);
    const int rows = hearth_vision_n_tokens(v);
    size_t n = 0;
    const int32_t bos = hearth_token_bos(m);
    const tok_vocab *vocab = engine_vocab(m);
    if (!vocab) return HEARTH_ERR_UNSUPPORTED;
    if (add_special && bos >= 0 && tok_add_bos(vocab)) {
        if (n < cap) ids[n] = bos;
        n++;
    }
    int seen = 0;
    hearth_err err = HEARTH_OK;
    for (const char *p = text, *stop = text + len; !err;) {
        const char *hit = find_marker(p, (size_t)(stop - p));
        err = put_text(m, p, (size_t)((hit ? hit : stop) - p), parse_special, ids, cap, &n);
        if (err || !hit) break;
        if (seen == n_images) {
            err = hr_fail(HEARTH_ERR_INVALID_ARG, "more image markers than the %d images given",
                          n_images);
            break;
        }
        err = put_text(m, beg, strlen(beg), true, ids, cap, &n);
        if (!err && n + (size_t)rows <= cap) hearth_media_ids(hashes[seen], rows, ids + n);
        n += (size_t)rows;
        if (!err) err = put_text(m, end, strlen(end), true, ids, cap, &n);
        seen++;
        p = hit + mlen;
    }
    if (!err && seen < n_images)
        err = hr_fail(HEARTH_ERR_INVALID_ARG, "%d images but %d image markers (%s) in the prompt",
                      n_images, seen, HEARTH_MEDIA_MARKER);
    if (err) return err;
    *n_out = n;
    if (n > cap)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "tokenize: %zu ids do not fit in %zu", n, cap);
    return HEARTH_OK;
}

/* The longest prefix of the prompt the session holds. */
static int held_prefix(const hearth_session *s, const int32_t *prompt, int n_prompt) {
    int n_exact = 0, n = 0;
    const int32_t *held = hearth_session_tokens(s, &n_exact);
    while (n < n_exact && n < n_prompt && held[n] == prompt[n]) n++;
    return n;
}

hearth_err hearth_prefill_media(hearth_session *s, const hearth_vision *v, const int32_t *prompt,
                                int n_prompt, const float *const *images, int n_images,
                                int *n_evaluated) {
    const int rows = hearth_vision_n_tokens(v);
    int end = n_prompt; /* evaluate up to the last image's last row */
    while (end > 0 && prompt[end - 1] >= 0) end--;
    int keep = held_prefix(s, prompt, n_prompt);
    if (n_evaluated) *n_evaluated = 0;
    /* all the images held: what follows them is the generation's to reuse */
    if (keep >= end) return HEARTH_OK;
    /* never part of an image: its rows attend to each other */
    while (keep > 0 && prompt[keep] < 0 && prompt[keep - 1] < 0) keep--;
    keep = hearth_session_keepable(s, keep);
    hearth_err err = hearth_session_truncate(s, keep);
    int image = 0; /* images before position keep: their rows are held */
    for (int i = 0; i < keep; i += prompt[i] < 0 ? rows : 1)
        if (prompt[i] < 0) image++;
    for (int i = keep; i < end && !err;) {
        int j = i;
        if (prompt[i] >= 0) {
            while (j < end && prompt[j] >= 0) j++;
            err = hearth_decode(s, prompt + i, j - i, NULL, false);
        } else if (image >= n_images || end - i < rows) {
            err = hr_fail(HEARTH_ERR_INVALID_ARG,
                          "the prompt's image rows do not match its %d images", n_images);
        } else {
            j = i + rows;
            err = hearth_decode_embd(s, images[image++], prompt + i, rows, vis_bidirectional(v),
                                     NULL);
        }
        i = j;
    }
    if (n_evaluated && !err) *n_evaluated = end - keep;
    return err;
}
