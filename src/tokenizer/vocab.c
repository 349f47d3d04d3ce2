/*
 * vocab.c - builds a tok_vocab from a GGUF file's tokenizer.ggml.* metadata
 * and answers questions about it (ids of special tokens, look-ups by text).
 *
 * Loading follows llama.cpp's llama_vocab::impl::load so that the same file
 * gives the same tokenizer: per-model defaults for the special ids and flags,
 * overridden by the file's keys; token types mapped to attributes; tokens
 * promoted to "control" and "end of generation" by their text (most GGUF files
 * do not mark <|im_end|> and friends); the Phi-3 strip rules. The vocabulary
 * copies every string it keeps, so it does not depend on the file afterwards.
 *
 * Invariants after a successful load: 1 <= n_tokens <= INT32_MAX; every token
 * text is non-empty (an empty one is renamed "[EMPTY_<id>]" as llama.cpp does)
 * and lies in `text`; every special id is -1 or < n_tokens.
 */
#include "tokenizer/tok_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MODEL  "tokenizer.ggml.model"
#define KEY_PRE    "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES  "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* ---- hashing ----
 * Loading a 150k-token BPE vocabulary takes ~150k insertions and ~450k
 * look-ups at random places of tables larger than the CPU caches; each would
 * wait for memory. The loaders below therefore hash a few dozen keys ahead
 * and prefetch their slots (software pipelining), which makes loading several
 * times faster. */

#define FNV_INIT 0xcbf29ce484222325ull
enum { PIPE = 16 }; /* keys hashed ahead of their look-up */

static uint64_t fnv(uint64_t h, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_fin(uint64_t h) { /* FNV-1a is weak in its low bits: mix */
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint64_t hash_str(const char *s, size_t len) { return fnv_fin(fnv(FNV_INIT, s, len)); }

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Smallest power of two >= n / load (at least 16). */
static uint32_t table_cap(uint64_t n, double load) {
    uint64_t cap = 16;
    while ((double)cap * load < (double)n) cap *= 2;
    return (uint32_t)cap;
}

/* The id of the text a[0..al) + b[0..bl) whose hash is h, or -1. */
static int32_t lookup2(const tok_vocab *v, uint64_t h, const char *a, size_t al, const char *b,
                       size_t bl) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & v->mask;; i = (i + 1) & v->mask) {
        const tok_slot *sl = &v->slots[i];
        if (sl->id < 0) return -1;
        if (sl->tag == tag && sl->len == al + bl && !memcmp(v->text + sl->off, a, al) &&
            (bl == 0 || !memcmp(v->text + sl->off + al, b, bl)))
            return sl->id;
    }
}

int32_t tok_lookup(const tok_vocab *v, const char *s, size_t len) {
    return lookup2(v, hash_str(s, len), s, len, NULL, 0);
}

static void prefetch_slot(const tok_vocab *v, uint64_t h) {
    __builtin_prefetch(&v->slots[(uint32_t)h & v->mask]);
}

/* Later duplicates win, as in llama.cpp's token_to_id map. */
static void table_put(tok_vocab *v, int32_t id, uint64_t h) {
    const tok_token *t = &v->tokens[id];
    const char *s = tok_str(v, id);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & v->mask;; i = (i + 1) & v->mask) {
        tok_slot *sl = &v->slots[i];
        if (sl->id < 0 ||
            (sl->tag == tag && sl->len == t->len && !memcmp(v->text + sl->off, s, t->len))) {
            *sl = (tok_slot){tag, id, t->off, t->len};
            return;
        }
    }
}

/* Inserts every token, hashing PIPE tokens ahead (see above). */
static void table_fill(tok_vocab *v) {
    uint64_t ring[PIPE];
    for (int64_t i = 0; i < (int64_t)v->n_tokens + PIPE; i++) {
        /* token i - PIPE leaves the ring slot token i takes */
        if (i >= PIPE) table_put(v, (int32_t)(i - PIPE), ring[(i - PIPE) % PIPE]);
        if (i < v->n_tokens) {
            uint64_t h = hash_str(tok_str(v, (int32_t)i), v->tokens[i].len);
            prefetch_slot(v, h);
            ring[i % PIPE] = h;
        }
    }
}

int32_t tok_merge_rank(const tok_vocab *v, int32_t left, int32_t right, int32_t *result) {
    if (!v->merges || left < 0 || right < 0) return -1;
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (uint32_t i = (uint32_t)hash_u64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        const tok_merge *m = &v->merges[i];
        if (m->key == 0) return -1;
        if (m->key == key) {
            *result = m->result;
            return m->rank;
        }
    }
}

/* ---- accessors ---- */

tok_type tok_vocab_type(const tok_vocab *v) { return v->type; }
const char *tok_model_name(const tok_vocab *v) { return v->model; }
const char *tok_pre_name(const tok_vocab *v) { return v->pre; }
int tok_n_vocab(const tok_vocab *v) { return v->n_tokens; }
int tok_bos(const tok_vocab *v) { return v->bos; }
int tok_eos(const tok_vocab *v) { return v->eos; }
int tok_eot(const tok_vocab *v) { return v->eot; }
int tok_unk(const tok_vocab *v) { return v->unk; }
int tok_sep(const tok_vocab *v) { return v->sep; }
int tok_pad(const tok_vocab *v) { return v->pad; }
int tok_fim_pre(const tok_vocab *v) { return v->fim_pre; }
int tok_fim_suf(const tok_vocab *v) { return v->fim_suf; }
int tok_fim_mid(const tok_vocab *v) { return v->fim_mid; }
int tok_fim_rep(const tok_vocab *v) { return v->fim_rep; }
int tok_fim_sep(const tok_vocab *v) { return v->fim_sep; }
bool tok_add_bos(const tok_vocab *v) { return v->add_bos; }
bool tok_add_eos(const tok_vocab *v) { return v->add_eos; }
bool tok_add_sep(const tok_vocab *v) { return v->add_sep; }
size_t tok_max_piece_len(const tok_vocab *v) { return v->max_piece_len; }

bool tok_is_eog(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_tokens && (v->tokens[id].attr & TOK_ATTR_EOG);
}
bool tok_is_control(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_tokens && (v->tokens[id].attr & TOK_ATTR_CONTROL);
}

bool tok_is_special(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_tokens &&
           (v->tokens[id].attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_USER_DEFINED));
}

const char *tok_text(const tok_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n_tokens) return NULL;
    *len = v->tokens[id].len;
    return tok_str(v, id);
}

int32_t tok_find(const tok_vocab *v, const char *text, size_t len) {
    return tok_lookup(v, text, len);
}

bool tok_think_pair(const tok_vocab *v, int32_t *start, int32_t *end) {
    static const char *const pairs[][2] = {
        {"<think>", "</think>"}, {"<|channel>", "<channel|>"}, {"[THINK]", "[/THINK]"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        *start = tok_find(v, pairs[i][0], strlen(pairs[i][0]));
        *end = tok_find(v, pairs[i][1], strlen(pairs[i][1]));
        if (*start >= 0 && *end >= 0) return true;
    }
    *start = *end = -1;
    return false;
}

void tok_vocab_free(tok_vocab *v) {
    if (!v) return;
    free(v->tokens);
    free(v->text);
    free(v->slots);
    free(v->merges);
    free(v->special);
    free(v->xcda);
    free(v->repl);
    free(v->ugm_sorted);
    free(v->ugm_user);
    tok_pretok_free(v->pretok);
    free(v);
}

/* ---- loading: tokens ---- */

static int gguf_type_to_attr(int64_t t) {
    switch (t) {
    case 1: return TOK_ATTR_NORMAL;
    case 2: return TOK_ATTR_UNKNOWN;
    case 3: return TOK_ATTR_CONTROL;
    case 4: return TOK_ATTR_USER_DEFINED;
    case 5: return TOK_ATTR_UNUSED;
    case 6: return TOK_ATTR_BYTE;
    default: return 0; /* undefined */
    }
}

static bool arr_is_numeric(const gguf_arr *a) {
    return a->type != GGUF_STRING && a->type != GGUF_ARRAY && a->type < GGUF_VTYPE_COUNT;
}

/* An optional per-token numeric array: absent is fine, present must cover
 * every token. */
static hearth_err get_token_arr(const gguf_file *f, const char *key, int64_t n, gguf_arr *arr,
                                bool *present) {
    *present = false;
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return HEARTH_OK;
    if (!gguf_get_arr(f, key, arr) || !arr_is_numeric(arr))
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' is not an array of numbers", key);
    if (arr->n < (uint64_t)n)
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' has %llu entries for %lld tokens",
                       key, (unsigned long long)arr->n, (long long)n);
    *present = true;
    return HEARTH_OK;
}

static hearth_err load_tokens(tok_vocab *v, const gguf_file *f) {
    gguf_arr toks, scores, types;
    bool has_scores, has_types;
    if (!gguf_find(f, KEY_TOKENS))
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' not found", KEY_TOKENS);
    if (!gguf_get_arr(f, KEY_TOKENS, &toks) || toks.type != GGUF_STRING)
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' is not an array of strings",
                       KEY_TOKENS);
    if (toks.n == 0 || toks.n > INT32_MAX)
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' has %llu tokens", KEY_TOKENS,
                       (unsigned long long)toks.n);
    int64_t n = (int64_t)toks.n;
    hearth_err err = get_token_arr(f, KEY_SCORES, n, &scores, &has_scores);
    if (!err) err = get_token_arr(f, KEY_TYPES, n, &types, &has_types);
    if (err) return err;

    /* total text, with room for "[EMPTY_<id>]" renames */
    uint64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t len = gguf_arr_str(&toks, (uint64_t)i).len;
        total += len ? len : 24;
        if (total > UINT32_MAX)
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "tokenizer: token texts exceed 4 GiB");
    }
    v->n_tokens = (int32_t)n;
    v->tokens = hr_calloc((size_t)n, sizeof *v->tokens);
    v->text = malloc(total ? total : 1);
    v->mask = table_cap((uint64_t)n, 0.5) - 1;
    v->slots = malloc(((size_t)v->mask + 1) * sizeof *v->slots);
    if (!v->tokens || !v->text || !v->slots)
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %lld tokens", (long long)n);
    for (size_t i = 0; i <= v->mask; i++) v->slots[i].id = -1;

    uint32_t off = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        gguf_str s = gguf_arr_str(&toks, (uint64_t)i);
        tok_token *t = &v->tokens[i];
        t->off = off;
        if (s.len) {
            memcpy(v->text + off, s.ptr, s.len);
            t->len = (uint32_t)s.len;
        } else {
            t->len = (uint32_t)snprintf(v->text + off, 24, "[EMPTY_%d]", (int)i);
        }
        off += t->len;
        if (t->len > v->max_token_len) v->max_token_len = t->len;
        t->score = has_scores ? (float)gguf_arr_float(&scores, (uint64_t)i) : 0.0f;
        t->attr = has_types ? (uint32_t)gguf_type_to_attr(gguf_arr_int(&types, (uint64_t)i))
                            : TOK_ATTR_NORMAL;
    }
    table_fill(v);
    return HEARTH_OK;
}

/* ---- loading: BPE merges ---- */

static void merge_put(tok_vocab *v, uint64_t key, int32_t rank, int32_t result) {
    for (uint32_t i = (uint32_t)hash_u64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        tok_merge *m = &v->merges[i];
        if (m->key == key) return; /* the first (lowest) rank stays */
        if (m->key == 0) {
            *m = (tok_merge){key, rank, result};
            v->n_merges++;
            return;
        }
    }
}

/* Each merge "left right" splits at the first space after the first byte (a
 * merge part is never empty). Merges whose parts are not both tokens can only
 * apply to text llama.cpp would not produce from a well-formed vocabulary and
 * are left out; a merge whose result is not a token keeps result -1 (the
 * symbol then falls back to its bytes, as llama.cpp's does). */
/* A merge between parsing and insertion (see the pipelining note above). */
typedef struct merge_job {
    const char *l, *r; /* the two parts, NULL: not a merge */
    size_t ll, rl;
    uint64_t hl, hr, hj; /* hashes of left, right, left + right */
    uint64_t key;        /* after the look-ups: (left << 32 | right) + 1, 0: dropped */
    int32_t result;
} merge_job;

static void merge_parse(const tok_vocab *v, gguf_str s, merge_job *j) {
    const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
    j->l = NULL;
    if (!sp) return;
    j->ll = (size_t)(sp - s.ptr), j->rl = s.len - j->ll - 1;
    if (j->ll > v->max_token_len || j->rl > v->max_token_len) return;
    j->l = s.ptr, j->r = sp + 1;
    uint64_t st = fnv(FNV_INIT, j->l, j->ll);
    j->hl = fnv_fin(st);
    j->hj = fnv_fin(fnv(st, j->r, j->rl));
    j->hr = hash_str(j->r, j->rl);
    prefetch_slot(v, j->hl);
    prefetch_slot(v, j->hr);
    prefetch_slot(v, j->hj);
}

static void merge_resolve(const tok_vocab *v, merge_job *j) {
    j->key = 0;
    if (!j->l) return;
    int32_t left = lookup2(v, j->hl, j->l, j->ll, NULL, 0);
    int32_t right = lookup2(v, j->hr, j->r, j->rl, NULL, 0);
    if (left < 0 || right < 0) return;
    j->result = lookup2(v, j->hj, j->l, j->ll, j->r, j->rl);
    j->key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    __builtin_prefetch(&v->merges[(uint32_t)hash_u64(j->key) & v->merge_mask]);
}

/* Each merge "left right" splits at the first space after the first byte (a
 * merge part is never empty). Merges whose parts are not both tokens can only
 * apply to text llama.cpp would not produce from a well-formed vocabulary and
 * are left out; a merge whose result is not a token keeps result -1 (the
 * symbol then falls back to its bytes, as llama.cpp's does). */
static hearth_err load_merges(tok_vocab *v, const gguf_file *f) {
    gguf_arr m;
    if (!gguf_find(f, KEY_MERGES))
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' not found (needed by model '%s')",
                       KEY_MERGES, v->model);
    if (!gguf_get_arr(f, KEY_MERGES, &m) || m.type != GGUF_STRING)
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' is not an array of strings",
                       KEY_MERGES);
    if (m.n > INT32_MAX)
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' has %llu merges", KEY_MERGES,
                       (unsigned long long)m.n);
    v->merge_mask = table_cap(m.n, 0.7) - 1;
    v->merges = calloc((size_t)v->merge_mask + 1, sizeof *v->merges);
    if (!v->merges)
        return hr_fail(HEARTH_ERR_NOMEM, "tokenizer: out of memory for %llu merges",
                       (unsigned long long)m.n);
    /* three stages PIPE apart: parse + hash, look up, insert */
    merge_job ring[2 * PIPE];
    int64_t n = (int64_t)m.n;
    for (int64_t r = 0; r < n + 2 * PIPE; r++) {
        /* the latest stage first: job r - 2 PIPE leaves the slot job r takes */
        if (r >= 2 * PIPE) {
            const merge_job *j = &ring[(r - 2 * PIPE) % (2 * PIPE)];
            if (j->key) merge_put(v, j->key, (int32_t)(r - 2 * PIPE), j->result);
        }
        if (r >= PIPE && r - PIPE < n) merge_resolve(v, &ring[(r - PIPE) % (2 * PIPE)]);
        if (r < n) merge_parse(v, gguf_arr_str(&m, (uint64_t)r), &ring[r % (2 * PIPE)]);
    }
    return HEARTH_OK;
}

/* ---- loading: model type, flags, special ids ---- */

static void copy_name(char *dst, size_t cap, gguf_str s) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static hearth_err load_model_type(tok_vocab *v, const gguf_file *f) {
    gguf_str model, pre;
    if (!gguf_find(f, KEY_MODEL))
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' not found", KEY_MODEL);
    if (!gguf_get_str(f, KEY_MODEL, &model))
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' is not a string", KEY_MODEL);
    copy_name(v->model, sizeof v->model, model);
    strcpy(v->pre, "default");
    if (gguf_find(f, KEY_PRE)) {
        if (!gguf_get_str(f, KEY_PRE, &pre))
            return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' is not a string", KEY_PRE);
        if (pre.len >= sizeof v->pre)
            return hr_fail(HEARTH_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer '%.*s'",
                           (int)(pre.len > 200 ? 200 : pre.len), pre.ptr);
        copy_name(v->pre, sizeof v->pre, pre);
    }
    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask_id = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    if (gguf_str_eq(model, "llama")) {
        v->type = TOK_TYPE_SPM;
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_space_prefix = true, v->add_bos = true;
    } else if (gguf_str_eq(model, "gpt2")) {
        v->type = TOK_TYPE_BPE;
        v->bos = 11, v->eos = 11;
    } else if (gguf_str_eq(model, "gemma4")) {
        /* no default special ids; llama.cpp ignores tokenizer.ggml.pre here */
        v->type = TOK_TYPE_BPE;
        strcpy(v->pre, "gemma4");
    } else if (gguf_str_eq(model, "bert")) {
        v->type = TOK_TYPE_WPM;
        v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask_id = 103;
        v->add_bos = true, v->add_sep = true, v->clean_spaces = true;
        v->lowercase = true, v->strip_accents = true;
    } else if (gguf_str_eq(model, "t5")) {
        v->type = TOK_TYPE_UGM;
        v->eos = 1, v->unk = 2, v->pad = 0;
        v->add_eos = true;
    } else {
        return hr_fail(HEARTH_ERR_UNSUPPORTED,
                       "tokenizer: unsupported tokenizer model %s = '%.*s' (supported: llama, "
                       "gpt2, gemma4, bert, t5)",
                       KEY_MODEL, (int)(model.len > 200 ? 200 : model.len), model.ptr);
    }
    return HEARTH_OK;
}

static void load_special_ids(tok_vocab *v, const gguf_file *f) {
    static const struct {
        const char *key;
        size_t field;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(tok_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(tok_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(tok_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(tok_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(tok_vocab, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(tok_vocab, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(tok_vocab, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(tok_vocab, mask_id)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(tok_vocab, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(tok_vocab, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(tok_vocab, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(tok_vocab, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(tok_vocab, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(tok_vocab, fim_sep)},
        /* deprecated names of the FIM ids */
        {"tokenizer.ggml.prefix_token_id", offsetof(tok_vocab, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(tok_vocab, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(tok_vocab, fim_mid)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int32_t *id = (int32_t *)((char *)v + keys[i].field);
        if (*id >= v->n_tokens) *id = -1; /* a default the vocabulary is too small for */
        uint32_t u;
        if (gguf_get_u32(f, keys[i].key, &u) && u < (uint32_t)v->n_tokens) *id = (int32_t)u;
    }
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) v->add_bos = b;
    if (v->spm_bpe) v->add_bos = true; /* llama.cpp overrides Gemma 4 files that say false */
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) v->add_eos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_sep_token", &b)) v->add_sep = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) v->add_space_prefix = b;
    if (gguf_get_bool(f, "tokenizer.ggml.remove_extra_whitespaces", &b)) v->remove_extra_ws = b;
    if (gguf_get_bool(f, "tokenizer.ggml.normalizer.lowercase", &b)) v->lowercase = b;
    v->strip_accents = v->lowercase;
    if (gguf_get_bool(f, "tokenizer.ggml.normalizer.strip_accents", &b)) v->strip_accents = b;
}

static int32_t find_cstr(const tok_vocab *v, const char *s) { return tok_lookup(v, s, strlen(s)); }

/* The first of `texts` the vocabulary has, or -1. */
static int32_t find_any(const tok_vocab *v, const char *const *texts) {
    for (; *texts; texts++) {
        int32_t id = find_cstr(v, *texts);
        if (id >= 0) return id;
    }
    return -1;
}

/* Ids the file does not name are found by their text, as llama.cpp does; a
 * token found this way is a control token whatever its type says. When several
 * candidates exist the earlier in the list wins. */
static void detect_by_text(tok_vocab *v) {
    static const char *const eot[] = {
        "<|eot_id|>",         "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
        "<|end_of_text|>",    "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
        "<end_of_utterance>", NULL};
    static const char *const eom[] = {"<|eom_id|>", NULL};
    static const char *const pre[] = {"<|fim_prefix|>",  "<fim-prefix>", "<fim_prefix>",
                                      "<｜fim▁begin｜>", "<PRE>",        "\xe2\x96\x81<PRE>",
                                      "<|code_prefix|>", "<|prefix|>",   NULL};
    static const char *const suf[] = {"<|fim_suffix|>",  "<fim-suffix>", "<fim_suffix>",
                                      "<｜fim▁hole｜>",  "<SUF>",        "\xe2\x96\x81<SUF>",
                                      "<|code_suffix|>", "<|suffix|>",   NULL};
    static const char *const mid[] = {"<|fim_middle|>",  "<fim-middle>", "<fim_middle>",
                                      "<｜fim▁end｜>",   "<MID>",        "\xe2\x96\x81<MID>",
                                      "<|code_middle|>", "<|middle|>",   NULL};
    static const char *const pad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                      "<PAD>",       "[PAD]",     NULL};
    static const char *const rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                      "<REPO>",       "<reponame>",    NULL};
    static const char *const sep[] = {"<|file_sep|>", NULL};
    struct {
        int32_t *id;
        const char *const *texts;
    } groups[] = {{&v->eot, eot},     {&v->eom, eom},     {&v->fim_pre, pre}, {&v->fim_suf, suf},
                  {&v->fim_mid, mid}, {&v->fim_pad, pad}, {&v->fim_rep, rep}, {&v->fim_sep, sep}};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (*groups[g].id >= 0) continue;
        int32_t id = find_any(v, groups[g].texts);
        if (id >= 0) {
            *groups[g].id = id;
            v->tokens[id].attr |= TOK_ATTR_CONTROL;
        }
    }
}

static void mark_eog(tok_vocab *v, int32_t id) {
    if (id >= 0) v->tokens[id].attr |= TOK_ATTR_EOG;
}

/* The end-of-generation set: FIM pad/repo/separator ids, every token whose
 * text llama.cpp lists as ending generation, eos/eot/eom, then llama.cpp's two
 * exceptions (gpt-oss/solar-open's <|end|>, gemma4/paddleocr's </s>). */
static void build_eog(tok_vocab *v) {
    static const char *const texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<｜end▁of▁sentence｜>",
                                        "[e~[",
                                        NULL};
    mark_eog(v, v->fim_pad);
    mark_eog(v, v->fim_rep);
    mark_eog(v, v->fim_sep);
    for (const char *const *t = texts; *t; t++) {
        int32_t id = find_cstr(v, *t);
        if (id >= 0) v->tokens[id].attr |= TOK_ATTR_EOG | TOK_ATTR_CONTROL;
    }
    /* gpt-oss: these structure tokens are always rendered */
    static const char *const shown[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>",
                                        NULL};
    for (const char *const *t = shown; *t; t++) {
        int32_t id = find_cstr(v, *t);
        if (id >= 0) v->tokens[id].attr = TOK_ATTR_USER_DEFINED;
    }
    mark_eog(v, v->eos);
    mark_eog(v, v->eot);
    mark_eog(v, v->eom);

    int32_t end = find_cstr(v, "<|end|>");
    bool has_return = tok_is_eog(v, find_cstr(v, "<|return|>"));
    bool has_call =
        tok_is_eog(v, find_cstr(v, "<|call|>")) || tok_is_eog(v, find_cstr(v, "<|calls|>"));
    bool has_flush = tok_is_eog(v, find_cstr(v, "<|flush|>"));
    if (tok_is_eog(v, end) && has_call && (has_return || has_flush))
        v->tokens[end].attr = TOK_ATTR_USER_DEFINED;
    int32_t s = find_cstr(v, "</s>");
    if (tok_is_eog(v, s) && tok_is_eog(v, find_cstr(v, "<|tool_response>")))
        v->tokens[s].attr = TOK_ATTR_NORMAL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Tokens matched in raw text before tokenizing it, longest first (ties: lower
 * id first, so that the order is deterministic). */
static hearth_err build_special_list(tok_vocab *v) {
    const uint32_t kinds = TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN;
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) n += (v->tokens[i].attr & kinds) != 0;
    if (n == 0) return HEARTH_OK;
    uint64_t *keys = hr_calloc((size_t)n, sizeof *keys);
    v->special = hr_calloc((size_t)n, sizeof *v->special);
    if (!keys || !v->special) {
        free(keys);
        return HEARTH_ERR_NOMEM;
    }
    for (int32_t i = 0, k = 0; i < v->n_tokens; i++)
        if (v->tokens[i].attr & kinds)
            keys[k++] = ((uint64_t)(UINT32_MAX - v->tokens[i].len) << 32) | (uint32_t)i;
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    for (int32_t k = 0; k < n; k++) v->special[k] = (int32_t)(keys[k] & 0xFFFFFFFFu);
    v->n_special = n;
    free(keys);
    return HEARTH_OK;
}

/* Per-model strip rules llama.cpp applies by name (it has no attribute keys). */
static void apply_strip_rules(tok_vocab *v, const gguf_file *f) {
    gguf_str name = {0}, arch = {0};
    char lname[128] = "";
    if (gguf_get_str(f, "general.name", &name)) {
        copy_name(lname, sizeof lname, name);
        for (char *c = lname; *c; c++) *c = (char)tolower((unsigned char)*c);
    }
    (void)gguf_get_str(f, "general.architecture", &arch);
    char larch[64] = "";
    if (arch.ptr) copy_name(larch, sizeof larch, arch);
    if (strstr(v->pre, "jina-v2-de") || strstr(v->pre, "jina-v2-es") ||
        strstr(v->pre, "jina-v2-code") || strstr(larch, "nomic-bert-moe") ||
        strstr(larch, "jina-bert-v3")) {
        int32_t id = find_cstr(v, "<mask>");
        if (id >= 0) v->tokens[id].attr |= TOK_ATTR_LSTRIP;
    } else if (strstr(lname, "phi-3") || strstr(lname, "phi3")) {
        for (int32_t i = 0; i < v->n_special; i++) v->tokens[v->special[i]].attr |= TOK_ATTR_RSTRIP;
        int32_t id = find_cstr(v, "</s>");
        if (id >= 0) v->tokens[id].attr |= TOK_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
        for (const char *const *t = keep; *t; t++)
            if ((id = find_cstr(v, *t)) >= 0) v->tokens[id].attr &= ~(uint32_t)TOK_ATTR_RSTRIP;
    } else if (strstr(lname, "modern-bert")) {
        int32_t id = find_cstr(v, "[MASK]");
        if (id >= 0) v->tokens[id].attr |= TOK_ATTR_LSTRIP;
    }
}

/* The unigram model's tables, with its precompiled normalizer when the file
 * has one (an array of bytes). */
static hearth_err load_ugm(tok_vocab *v, const gguf_file *f) {
    static const char key[] = "tokenizer.ggml.precompiled_charsmap";
    gguf_arr a = {0};
    if (gguf_find(f, key) &&
        (!gguf_get_arr(f, key, &a) || (a.type != GGUF_U8 && a.type != GGUF_I8)))
        return hr_fail(HEARTH_ERR_FORMAT, "tokenizer: key '%s' is not an array of bytes", key);
    return tok_ugm_init(v, a.data, (size_t)a.n);
}

static void build_byte_tokens(tok_vocab *v) {
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t id = -1;
        if (v->type == TOK_TYPE_BPE && !v->spm_bpe) {
            id = tok_lookup(v, buf, tok_bpe_byte_char((uint8_t)b, buf));
        } else {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = tok_lookup(v, buf, 6);
            if (id < 0 && !v->spm_bpe) { /* Gemma 4 has no single-byte stand-in */
                buf[0] = (char)b;
                id = tok_lookup(v, buf, 1);
            }
        }
        v->byte_token[b] = id;
    }
}

hearth_err tok_vocab_load(const gguf_file *f, tok_vocab **out) {
    tok_vocab *v = hr_calloc(1, sizeof *v);
    if (!v) return HEARTH_ERR_NOMEM;
    hearth_err err = load_model_type(v, f);
    if (!err && v->type == TOK_TYPE_BPE) {
        v->clean_spaces = true;
        err = tok_pretok_new(v->pre, v, &v->pretok);
    }
    if (!err) err = load_tokens(v, f);
    if (!err && v->type == TOK_TYPE_BPE) err = load_merges(v, f);
    if (!err) {
        load_special_ids(v, f);
        detect_by_text(v);
        build_eog(v);
        err = build_special_list(v);
    }
    if (!err && v->type == TOK_TYPE_UGM) err = load_ugm(v, f);
    if (!err) {
        apply_strip_rules(v, f);
        build_byte_tokens(v);
        v->max_piece_len = tok_piece_max(v);
        *out = v;
        return HEARTH_OK;
    }
    tok_vocab_free(v);
    return err;
}
