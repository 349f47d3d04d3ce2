/*
 * session_file.c - a session's state in a file (hearth_session_save and
 * hearth_session_load): llama.cpp's prompt cache (llama-cli --prompt-cache)
 * and llama-server's slot files, in Hearth's own format (docs/kv-cache.md,
 * "Session files").
 *
 * A file holds what a session needs to go on exactly as if it had just
 * evaluated its tokens: their ids, the keys and values of those positions
 * in every layer and kv head, byte for byte as the cache holds them (F32,
 * F16 or Q8_0 blocks), and the last logits, so the next token is sampled
 * without evaluating anything again. Keys are written one position after
 * another: the cache's transposed tiles (session.h, kernels.h) are undone
 * on the way out and redone on the way in, so a file restores into a
 * session of any context that holds its positions. A fingerprint of the
 * model (its GGUF metadata, tensor table and a few bytes of every tensor,
 * and the adapters it applies) and the KV type make a file written for
 * something else a refusal, never a misreading.
 *
 * A file is untrusted: its length must be exactly what its header's sizes
 * add up to (overflow-checked), those sizes must be this session's, every
 * token id must lie in the vocabulary, all before anything in the session
 * changes: a refused file leaves the session as it was. Bytes of keys,
 * values and logits are not checked (no checksum, as llama.cpp's files):
 * corrupted ones give wrong numbers, never a crash.
 */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The header: fields at fixed offsets, little-endian (docs/kv-cache.md). */
enum {
    SF_HEADER_BYTES = 104,
    SF_HEADER_V1 = 96, /* version 1's header: no win_first */
    SF_VERSION = 2,
    SF_ARCH_BYTES = 32, /* the architecture's name, NUL-padded */
    SF_SAMPLE = 64,     /* bytes of each tensor's start, middle and end in the fingerprint */
    SF_HAS_LOGITS = 1u, /* flags: the last logits follow the tokens */
};
static const char sf_magic[8] = {'H', 'E', 'A', 'R', 'T', 'H', 'K', 'V'};

typedef struct sf_header {
    uint32_t version, kv_type;
    uint64_t fingerprint;
    char arch[SF_ARCH_BYTES];
    uint32_t n_layer, n_head_kv, head_dim, n_vocab, row_bytes;
    uint32_t n_ctx;    /* the saving session's context: the RoPE factors its keys took */
    uint32_t n_tokens; /* positions saved */
    uint32_t n_exact;  /* of them, those before a context shift's moved ones */
    uint32_t flags;
    uint32_t n_no_kv;      /* layers without keys and values: short convolutions (LFM2) and Mamba-2
                              layers (Granite 4.0-H), layers reading another's (Gemma 4); 0 for
                              others. Keys and values of the
                              other layers only, then each conv layer's history of n_embd floats,
                              then the Mamba-2 block (ssm_block_bytes) */
    uint32_t win_first;    /* version 2: the first position whose keys and values the
                              sliding-window layers hold (session.h); zeros before it */
    uint32_t header_bytes; /* the version's header size (not in the file) */
} sf_header;

/* ---- the model's fingerprint: FNV-1a (64 bits) over what identifies it ---- */

static void fnv(uint64_t *h, const void *data, size_t n) {
    const uint8_t *b = data;
    for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 0x100000001b3ULL;
}

static void fnv_u64(uint64_t *h, uint64_t v) { fnv(h, &v, sizeof v); }

static void fnv_str(uint64_t *h, gguf_str s) {
    fnv_u64(h, s.len);
    fnv(h, s.ptr, (size_t)s.len);
}

// NOLINTNEXTLINE(misc-no-recursion): arrays as parsed (gguf.c caps their depth at 16)
static void hash_arr(uint64_t *h, const gguf_arr *a) {
    fnv_u64(h, a->type);
    fnv_u64(h, a->n);
    if (a->type == GGUF_STRING) {
        for (uint64_t i = 0; i < a->n; i++) fnv_str(h, gguf_arr_str(a, i));
    } else if (a->type == GGUF_ARRAY) {
        for (uint64_t i = 0; i < a->n; i++) {
            const gguf_arr sub = gguf_arr_sub(a, i);
            hash_arr(h, &sub);
        }
    } else {
        fnv(h, a->data, (size_t)(a->n * gguf_vtype_size(a->type)));
    }
}

/* Every key and value, every tensor's name, type, shape and place, and
 * SF_SAMPLE bytes at its start, middle and end: a different file hashes
 * differently (a re-quantized or fine-tuned one included) without reading
 * gigabytes of weights. */
static void hash_gguf(uint64_t *h, const gguf_file *f) {
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        fnv_str(h, kv->key);
        fnv_u64(h, kv->value.type);
        if (kv->value.type == GGUF_STRING)
            fnv_str(h, kv->value.v.str);
        else if (kv->value.type == GGUF_ARRAY)
            hash_arr(h, &kv->value.v.arr);
        else
            fnv_u64(h, kv->value.v.u64); /* every scalar, widened */
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        fnv_str(h, t->name);
        fnv_u64(h, t->type);
        fnv(h, t->ne, sizeof t->ne);
        fnv_u64(h, t->offset);
        fnv_u64(h, t->n_bytes);
        const size_t n = t->n_bytes < SF_SAMPLE ? (size_t)t->n_bytes : SF_SAMPLE;
        const uint8_t *d = t->data;
        fnv(h, d, n);
        fnv(h, d + (t->n_bytes - n) / 2, n);
        fnv(h, d + t->n_bytes - n, n);
    }
}

/* The weights' file and every adapter that changes them (scale 0 does
 * not), in order, with its scale: a cache computed with other adapters
 * holds other keys and values. */
static uint64_t model_fingerprint(const hearth_model *m) {
    uint64_t h = 0xcbf29ce484222325ULL;
    hash_gguf(&h, m->gguf);
    for (int i = 0; i < m->n_loras; i++) {
        const model_lora *l = &m->loras[i];
        if (l->scale == 0.0f) continue;
        hash_gguf(&h, l->gguf);
        fnv(&h, &l->scale, sizeof l->scale);
        fnv(&h, &l->alpha, sizeof l->alpha);
    }
    return h;
}

/* ---- keys: the cache's tiles <-> one position after another ---- */

enum { T = KERN_KV_TILE, QB = KERN_KV_Q8_BLOCK_BYTES, QK = 32 };

void session_k_row(kern_type type, uint8_t *tiles, int hd, int p, uint8_t *row, bool put) {
    const int j = p % T;
    if (type == KERN_Q8_0) {
        const int nb = (hd + QK - 1) / QK;
        uint8_t *tile = tiles + (size_t)(p / T) * (size_t)nb * QB * T;
        for (int b = 0; b < nb; b++) {
            uint8_t *g = tile + (size_t)b * QB * T, *r = row + (size_t)b * QB;
            put ? memcpy(g + 2 * j, r, 2) : memcpy(r, g + 2 * j, 2);
            for (int i = 0; i < QK; i += 4) { /* 4 values of a key lie together */
                uint8_t *at = g + 2 * T + (size_t)i * T + 4 * j;
                put ? memcpy(at, r + 2 + i, 4) : memcpy(r + 2 + i, at, 4);
            }
        }
        return;
    }
    const size_t es = type == KERN_F16 ? 2 : 4;
    uint8_t *kt = tiles + ((size_t)(p / T) * T * (size_t)hd + (size_t)j) * es;
    for (int d = 0; d < hd; d++) {
        uint8_t *at = kt + (size_t)d * T * es, *r = row + (size_t)d * es;
        put ? memcpy(at, r, es) : memcpy(r, at, es);
    }
}

/* Byte offset of (attention layer, kv head) unit h's block in K or V: the
 * cache's and the file's units are in the same order (model_layer.kv_slot). */
static size_t head_off(const hearth_session *s, int h) {
    return session_kv_head(s, h / s->model->hp.n_head_kv, h % s->model->hp.n_head_kv);
}

/* Unit h's head size and cache rows, which the file pads with zeros to
 * kv_row_bytes (Gemma 4's window layers have narrower ones). */
static int unit_hd(const hearth_session *s, int h) {
    return s->kv_slot_hd[h / s->model->hp.n_head_kv];
}
static size_t unit_row(const hearth_session *s, int h) {
    return session_kv_row(s, h / s->model->hp.n_head_kv);
}

static hearth_kv_type public_kv_type(kern_type t) {
    return t == KERN_F16 ? HEARTH_KV_F16 : t == KERN_Q8_0 ? HEARTH_KV_Q8_0 : HEARTH_KV_F32;
}

static const char *kv_type_name(uint32_t t) {
    return t == HEARTH_KV_F32    ? "f32"
           : t == HEARTH_KV_F16  ? "f16"
           : t == HEARTH_KV_Q8_0 ? "q8_0"
                                 : "?";
}

/* The Mamba-2 layers' block at a file's end: the position their state is
 * at (u32), then each layer's state (F32); 0 bytes without such layers. */
static uint64_t ssm_block_bytes(const model_hparams *hp) {
    return hp->n_ssm ? 4 + (uint64_t)hp->n_ssm * (uint64_t)model_ssm_state_floats(hp) * 4 : 0;
}

/* Bytes a file of this header must have for a model of these
 * hyper-parameters (whose layers without keys and values it counts, as the
 * header does); false when they overflow. */
static bool file_bytes(const sf_header *h, const model_hparams *hp, uint64_t *out) {
    uint64_t kv, conv, logits = (h->flags & SF_HAS_LOGITS) ? (uint64_t)h->n_vocab * 4 : 0;
    uint64_t total = h->header_bytes + (uint64_t)h->n_tokens * 4 + ssm_block_bytes(hp);
    return hr_mul_ok((uint64_t)(h->n_layer - h->n_no_kv) * h->n_head_kv, (uint64_t)h->n_tokens * 2,
                     &kv) &&
           hr_mul_ok(kv, h->row_bytes, &kv) &&
           hr_mul_ok((uint64_t)hp->n_conv * h->n_tokens, (uint64_t)hp->n_embd * 4, &conv) &&
           hr_add_ok(total, logits, &total) && hr_add_ok(total, kv, &total) &&
           hr_add_ok(total, conv, out);
}

/* ---- saving ---- */

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static void header_bytes(const sf_header *h, uint8_t out[SF_HEADER_BYTES]) {
    memset(out, 0, SF_HEADER_BYTES);
    memcpy(out, sf_magic, sizeof sf_magic);
    put_u32(out + 8, h->version);
    put_u32(out + 12, h->kv_type);
    memcpy(out + 16, &h->fingerprint, 8);
    memcpy(out + 24, h->arch, SF_ARCH_BYTES);
    const uint32_t rest[] = {h->n_layer, h->n_head_kv, h->head_dim, h->n_vocab, h->row_bytes,
                             h->n_ctx,   h->n_tokens,  h->n_exact,  h->flags};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) put_u32(out + 56 + 4 * i, rest[i]);
    put_u32(out + 92, h->n_no_kv);
    put_u32(out + 96, h->win_first);
}

static sf_header session_header(const hearth_session *s) {
    const hearth_model *m = s->model;
    sf_header h = {.version = SF_VERSION,
                   .kv_type = public_kv_type(s->kv_type),
                   .fingerprint = model_fingerprint(m),
                   .n_layer = (uint32_t)m->hp.n_layer,
                   .n_head_kv = (uint32_t)m->hp.n_head_kv,
                   .head_dim = (uint32_t)m->hp.head_dim,
                   .n_vocab = (uint32_t)m->hp.n_vocab,
                   .row_bytes = (uint32_t)s->kv_row_bytes,
                   .n_ctx = (uint32_t)s->n_ctx,
                   .n_tokens = (uint32_t)s->pos,
                   .n_exact = (uint32_t)(s->pos < s->moved_from ? s->pos : s->moved_from),
                   .flags = s->logits_ok && s->pos > 0 ? SF_HAS_LOGITS : 0,
                   .n_no_kv = (uint32_t)(m->hp.n_layer - model_kv_layers(&m->hp)),
                   .win_first = (uint32_t)(s->pos > 0 ? s->win_first : 0),
                   .header_bytes = SF_HEADER_BYTES};
    snprintf(h.arch, sizeof h.arch, "%s", m->arch->name);
    return h;
}

/* The Mamba-2 block: the state and its position, or, when a truncation
 * left none (the next decode would rebuild it), the checkpoint and its
 * position, or position 0 and zeros: the loading session then rebuilds
 * the state from the file's tokens as this one would have. */
static bool write_ssm(const hearth_session *s, FILE *f) {
    const size_t floats =
        (size_t)s->model->hp.n_ssm * (size_t)model_ssm_state_floats(&s->model->hp);
    const bool cur = s->rs_pos >= 0, cp = !cur && s->cp_pos >= 0;
    const uint32_t pos = cur ? (uint32_t)s->rs_pos : cp ? (uint32_t)s->cp_pos : 0;
    if (fwrite(&pos, 4, 1, f) != 1) return false;
    if (cur || cp) return fwrite(cur ? s->ssm_rs : s->ssm_cp, sizeof(float), floats, f) == floats;
    static const float zeros[1024];
    for (size_t done = 0; done < floats; done += 1024) {
        const size_t k = floats - done < 1024 ? floats - done : 1024;
        if (fwrite(zeros, sizeof(float), k, f) != k) return false;
    }
    return true;
}

/* The header, tokens, logits, then per attention layer and kv head the keys (one
 * position after another) and the values of positions 0..pos-1, then each
 * convolution layer's history of those positions, then the Mamba-2 block. */
static hearth_err write_state(const hearth_session *s, FILE *f) {
    const sf_header h = session_header(s);
    uint8_t head[SF_HEADER_BYTES];
    header_bytes(&h, head);
    const size_t n = (size_t)s->pos, row = s->kv_row_bytes;
    bool ok = fwrite(head, 1, sizeof head, f) == sizeof head &&
              fwrite(s->tokens, sizeof *s->tokens, n, f) == n;
    if (ok && (h.flags & SF_HAS_LOGITS))
        ok = fwrite(s->logits, sizeof *s->logits, h.n_vocab, f) == h.n_vocab;
    /* zeroed: a narrower layer's rows leave their tails so, a window slot
       its positions before win_first */
    uint8_t *rows = ok && n ? calloc(n, row) : NULL;
    if (ok && n && !rows) return hr_fail(HEARTH_ERR_NOMEM, "%zu positions of keys", n);
    for (int u = 0; ok && n && u < (int)((h.n_layer - h.n_no_kv) * h.n_head_kv); u++) {
        uint8_t *k = (uint8_t *)s->k_cache + head_off(s, u);
        const uint8_t *v = (const uint8_t *)s->v_cache + head_off(s, u);
        const int slot = u / (int)h.n_head_kv, base = session_kv_base(s, slot);
        const size_t ur = unit_row(s, u), lo = session_kv_win(s, slot) ? h.win_first : 0;
        const bool padded = ur < row || lo > 0;
        if (padded) memset(rows, 0, n * row);
        for (size_t p = lo; p < n; p++)
            session_k_row(s->kv_type, k, unit_hd(s, u), (int)p - base, rows + p * row, false);
        ok = fwrite(rows, row, n, f) == n;
        if (!padded) {
            ok = ok && fwrite(v, row, n, f) == n;
            continue;
        }
        memset(rows, 0, n * row);
        for (size_t p = lo; p < n; p++) memcpy(rows + p * row, v + (p - base) * ur, ur);
        ok = ok && fwrite(rows, row, n, f) == n;
    }
    free(rows);
    const size_t d = (size_t)s->model->hp.n_embd;
    for (int slot = 0; ok && slot < s->model->hp.n_conv; slot++)
        ok = fwrite(session_conv_row(s, slot, 0), d * sizeof(float), n, f) == n;
    if (ok && s->ssm_rs) ok = write_ssm(s, f);
    return ok ? HEARTH_OK : hr_fail(HEARTH_ERR_IO, "%s", hr_strerror(errno));
}

static hearth_err encoder_has_no_state(const hearth_session *s) {
    return hr_fail(HEARTH_ERR_UNSUPPORTED,
                   "'%s' is an embedding model (an encoder): its sessions keep no KV cache",
                   s->model->arch->name);
}

hearth_err hearth_session_save(const hearth_session *s, const char *path, uint64_t *n_bytes) {
    if (s->kv_one_layer) return hr_wrap(encoder_has_no_state(s), "saving '%s': ", path);
    for (int i = 0; i < s->pos; i++) /* a file holds token ids, not an image's rows */
        if (s->tokens[i] < 0)
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "saving '%s': the session holds an image", path);
    /* beside the target, then renamed over it: never half a file at path
     * (a name of its own per process and save; the umask's permissions) */
    static atomic_uint serial;
    const size_t cap = strlen(path) + 48;
    char *tmp = malloc(cap);
    if (!tmp) return hr_fail(HEARTH_ERR_NOMEM, "saving '%s': out of memory", path);
    snprintf(tmp, cap, "%s.%ld.%u.tmp", path, (long)getpid(), atomic_fetch_add(&serial, 1));
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    hearth_err err = HEARTH_OK;
    if (!f) {
        err = hr_fail(HEARTH_ERR_IO, "saving '%s': %s", path, hr_strerror(errno));
        if (fd >= 0) close(fd);
    } else {
        err = write_state(s, f);
        const long size = err ? 0 : ftell(f);
        if (fclose(f) != 0 && !err) err = hr_fail(HEARTH_ERR_IO, "%s", hr_strerror(errno));
        if (!err && rename(tmp, path) != 0) err = hr_fail(HEARTH_ERR_IO, "%s", hr_strerror(errno));
        if (err)
            hr_wrap(err, "saving '%s': ", path);
        else if (n_bytes)
            *n_bytes = (uint64_t)size;
    }
    if (err && fd >= 0) unlink(tmp);
    free(tmp);
    return err;
}

/* ---- loading ---- */

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The header of data[0..size), its magic and version checked. */
static hearth_err read_header(const uint8_t *data, uint64_t size, sf_header *h) {
    if (size < SF_HEADER_V1 || memcmp(data, sf_magic, sizeof sf_magic) != 0)
        return hr_fail(HEARTH_ERR_FORMAT, "not a Hearth session file (%s)",
                       size < SF_HEADER_V1 ? "shorter than its header" : "no HEARTHKV magic");
    memset(h, 0, sizeof *h);
    h->version = get_u32(data + 8);
    h->kv_type = get_u32(data + 12);
    memcpy(&h->fingerprint, data + 16, 8);
    memcpy(h->arch, data + 24, SF_ARCH_BYTES);
    uint32_t *const rest[] = {&h->n_layer, &h->n_head_kv, &h->head_dim, &h->n_vocab, &h->row_bytes,
                              &h->n_ctx,   &h->n_tokens,  &h->n_exact,  &h->flags};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) *rest[i] = get_u32(data + 56 + 4 * i);
    h->n_no_kv = get_u32(data + 92);
    if (h->version != 1 && h->version != SF_VERSION)
        return hr_fail(HEARTH_ERR_UNSUPPORTED, "session file version %u (Hearth reads 1 to %d)",
                       h->version, SF_VERSION);
    h->header_bytes = h->version == 1 ? SF_HEADER_V1 : SF_HEADER_BYTES;
    if (size < h->header_bytes)
        return hr_fail(HEARTH_ERR_FORMAT, "session file is shorter than its header");
    h->win_first = h->version == 1 ? 0 : get_u32(data + 96);
    if (h->version > 1 && get_u32(data + 100) != 0) /* reserved: written as zero */
        return hr_fail(HEARTH_ERR_FORMAT, "session file header is malformed");
    if (memchr(h->arch, '\0', SF_ARCH_BYTES) == NULL || h->n_no_kv > h->n_layer ||
        (h->flags & ~SF_HAS_LOGITS) != 0)
        return hr_fail(HEARTH_ERR_FORMAT, "session file header is malformed");
    return HEARTH_OK;
}

/* Whether a file of header h belongs to session s and fits in it. */
static hearth_err check_fits(const hearth_session *s, const sf_header *h, uint64_t size) {
    const hearth_model *m = s->model;
    const model_hparams *hp = &m->hp;
    if (strcmp(h->arch, m->arch->name) != 0 || h->n_layer != (uint32_t)hp->n_layer ||
        h->n_head_kv != (uint32_t)hp->n_head_kv || h->head_dim != (uint32_t)hp->head_dim ||
        h->n_vocab != (uint32_t)hp->n_vocab ||
        h->n_no_kv != (uint32_t)(hp->n_layer - model_kv_layers(hp)))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "the file is for another model (%s: %u layers of which %u without "
                       "attention, %u kv heads of %u, %u tokens; this one is %s: %d of %d, %d of "
                       "%d, %d)",
                       h->arch, h->n_layer, h->n_no_kv, h->n_head_kv, h->head_dim, h->n_vocab,
                       m->arch->name, hp->n_layer, hp->n_layer - model_kv_layers(hp), hp->n_head_kv,
                       hp->head_dim, hp->n_vocab);
    if (h->fingerprint != model_fingerprint(m))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "the file is for another model of the same shape (other weights, "
                       "metadata or LoRA adapters)");
    if (h->kv_type != (uint32_t)public_kv_type(s->kv_type))
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "the file's KV cache is %s, this session's %s (--kv-type must match)",
                       kv_type_name(h->kv_type), kv_type_name(public_kv_type(s->kv_type)));
    if (h->row_bytes != s->kv_row_bytes || h->n_exact > h->n_tokens || h->n_tokens > h->n_ctx ||
        h->win_first > h->n_tokens || ((h->flags & SF_HAS_LOGITS) && h->n_tokens == 0))
        return hr_fail(HEARTH_ERR_FORMAT, "session file header is inconsistent");
    uint64_t want = 0;
    const bool sized = file_bytes(h, hp, &want);
    if (!sized)
        return hr_fail(HEARTH_ERR_FORMAT, "session file header's sizes overflow (corrupted)");
    if (want != size)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "session file has %llu bytes, but its header describes %llu (truncated "
                       "or corrupted)",
                       (unsigned long long)size, (unsigned long long)want);
    if (h->n_tokens > (uint32_t)s->n_ctx)
        return hr_fail(HEARTH_ERR_CONTEXT_FULL,
                       "the file holds %u positions, more than this session's context of %d",
                       h->n_tokens, s->n_ctx);
    /* LongRoPE: keys rotated with the other set of factors would be wrong
     * here (hearth_session_copy refuses the same) */
    const int saved_ctx = h->n_ctx < (1u << 24) ? (int)h->n_ctx : 1 << 24;
    if (h->n_tokens > 0 && model_rope_factors(m, saved_ctx) != s->rope_factors)
        return hr_fail(HEARTH_ERR_INVALID_ARG,
                       "the file's keys were rotated for a context of %u positions, with other "
                       "RoPE factors (LongRoPE's short and long) than this session's %d",
                       h->n_ctx, s->n_ctx);
    return HEARTH_OK;
}

typedef struct load_job {
    hearth_session *s;
    const uint8_t *kv; /* the first unit's keys in the file */
    int n;
} load_job;

/* Units (attention layer, kv head) dealt round-robin: each one's keys into its
 * tiles, its values as they are. */
static void load_heads(void *ctx, int ith, int nth) {
    const load_job *j = ctx;
    hearth_session *s = j->s;
    const size_t row = s->kv_row_bytes, n = (size_t)j->n;
    const model_hparams *hp = &s->model->hp;
    for (int u = ith; u < model_kv_layers(hp) * hp->n_head_kv; u += nth) {
        const uint8_t *src = j->kv + (size_t)u * 2 * n * row;
        uint8_t *k = (uint8_t *)s->k_cache + head_off(s, u),
                *v = (uint8_t *)s->v_cache + head_off(s, u);
        /* a window slot: the positions it holds (session.h) */
        const int slot = u / hp->n_head_kv, base = session_kv_base(s, slot);
        const size_t ur = unit_row(s, u), lo = session_kv_win(s, slot) ? (size_t)s->win_first : 0;
        for (size_t p = lo; p < n; p++)
            session_k_row(s->kv_type, k, unit_hd(s, u), (int)p - base, (uint8_t *)src + p * row,
                          true);
        if (ur == row && lo == 0)
            memcpy(v, src + n * row, n * row);
        else
            for (size_t p = lo; p < n; p++) memcpy(v + (p - base) * ur, src + (n + p) * row, ur);
    }
}

hearth_err session_state_read(hearth_session *s, const uint8_t *data, uint64_t size) {
    if (s->kv_one_layer) return encoder_has_no_state(s);
    sf_header h;
    hearth_err err = read_header(data, size, &h);
    if (!err) err = check_fits(s, &h, size);
    if (err) return err;
    const int n = (int)h.n_tokens;
    const uint8_t *p = data + h.header_bytes;
    for (int i = 0; i < n; i++) {
        const int32_t id = (int32_t)get_u32(p + 4 * (size_t)i);
        if (id < 0 || id >= s->model->hp.n_vocab)
            return hr_fail(HEARTH_ERR_FORMAT,
                           "session file: token id %d at position %d is outside the vocabulary "
                           "(%d)",
                           id, i, s->model->hp.n_vocab);
    }
    const model_hparams *hp = &s->model->hp;
    const uint8_t *ssm = data + size - ssm_block_bytes(hp); /* the file's last bytes */
    const uint32_t ssm_pos = hp->n_ssm ? get_u32(ssm) : 0;
    if (ssm_pos > h.n_tokens)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "session file: its Mamba-2 state is at position %u, past its %u tokens",
                       ssm_pos, h.n_tokens);
    /* everything checked: the session changes from here on */
    memcpy(s->tokens, p, (size_t)n * 4);
    p += (size_t)n * 4;
    s->logits_ok = (h.flags & SF_HAS_LOGITS) != 0;
    if (s->logits_ok) {
        memcpy(s->logits, p, (size_t)h.n_vocab * 4);
        p += (size_t)h.n_vocab * 4;
    }
    s->n_rows = 0;
    s->pos = n;
    s->moved_from = h.n_exact < h.n_tokens ? (int)h.n_exact : INT_MAX;
    /* window slots: from the base session_win_room would leave, what the
       file holds of them */
    s->win_base = session_win_base(s, n);
    s->win_first = (int)h.win_first > s->win_base ? (int)h.win_first : s->win_base;
    if (n > 0) {
        load_job job = {.s = s, .kv = p, .n = n};
        hr_pool_run(s->model->pool, load_heads, &job);
    }
    const size_t conv = (size_t)n * (size_t)hp->n_embd * sizeof(float);
    p += (size_t)model_kv_layers(hp) * (size_t)hp->n_head_kv * 2 * (size_t)n * s->kv_row_bytes;
    for (int slot = 0; slot < hp->n_conv; slot++)
        memcpy(session_conv_row(s, slot, 0), p + (size_t)slot * conv, conv);
    if (hp->n_ssm) {
        memcpy(s->ssm_rs, ssm + 4, (size_t)(ssm_block_bytes(hp) - 4));
        s->rs_pos = (int)ssm_pos;
        s->cp_pos = -1;
    }
    return HEARTH_OK;
}

hearth_err hearth_session_load(hearth_session *s, const char *path, uint64_t *n_bytes) {
    hr_map map;
    hearth_err err = hr_map_open(&map, path);
    if (!err) err = session_state_read(s, map.data, map.size);
    if (!err && n_bytes) *n_bytes = map.size;
    hr_map_close(&map);
    return err ? hr_wrap(err, "loading the session file '%s': ", path) : HEARTH_OK;
}
