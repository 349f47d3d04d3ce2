/*
 * peer_logits.h - a synth model file run the way the peer's logits for it
 * were measured: 32 prompt ids as one batch, then 8 greedy steps (rows
 * [40][n_vocab]), F32 KV cache, in exact and default mode; and the prompt
 * one token at a time. The hashes the tests hold are FNV-1a-64 of
 * llama.cpp's rows for the same files (commit 34af94cd, CPU, F32 KV cache,
 * no flash attention, 2 threads), measured with a program linked against
 * libllama outside this repository. Needs _GNU_SOURCE (memmem) before
 * the first include.
 */
#ifndef HEARTH_TESTS_PEER_LOGITS_H
#define HEARTH_TESTS_PEER_LOGITS_H

#include "hearth.h"
#include "kernels/kernels.h"
#include "test.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>

enum { PEER_N_IDS = 32, PEER_N_GEN = 8, PEER_ROWS = 40, PEER_MAX_VOCAB = 512 };

/* The prompt: BOS, then ids of the synth vocabulary (371 tokens). */
static const int32_t peer_ids[PEER_N_IDS] = {1,   300, 301, 302, 40,  50,  60,  70,  80,  90,  100,
                                             110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 210,
                                             220, 230, 240, 250, 260, 270, 280, 290, 310, 320};

static inline int peer_argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static inline hearth_session *peer_session(hearth_model *m) {
    REQUIRE(hearth_model_n_vocab(m) <= PEER_MAX_VOCAB);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    sp.kv_type = HEARTH_KV_F32;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    return s;
}

static inline hearth_session *peer_open(const char *path, hearth_model **m) {
    *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, m) == HEARTH_OK);
    return peer_session(*m);
}

/* The prompt's logits as one batch, then PEER_N_GEN greedy steps, of model
 * m: rows [PEER_ROWS][nv]; returns nv. */
static inline int peer_greedy_of(hearth_model *m, float *rows) {
    hearth_session *s = peer_session(m);
    const int nv = hearth_model_n_vocab(m);
    REQUIRE(hearth_decode(s, peer_ids, PEER_N_IDS, rows, true) == HEARTH_OK);
    for (int g = 0; g < PEER_N_GEN; g++) {
        const int32_t next = peer_argmax(rows + (size_t)(PEER_N_IDS - 1 + g) * nv, nv);
        REQUIRE(hearth_decode(s, &next, 1, rows + (size_t)(PEER_N_IDS + g) * nv, false) ==
                HEARTH_OK);
    }
    hearth_session_free(s);
    return nv;
}

/* The same of the file at path. */
static inline int peer_run_greedy(const char *path, float *rows) {
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, NULL, &m) == HEARTH_OK);
    const int nv = peer_greedy_of(m, rows);
    hearth_model_free(m);
    return nv;
}

/* The prompt one token at a time: rows [PEER_N_IDS][nv]. */
static inline void peer_run_incremental(const char *path, float *rows) {
    hearth_model *m;
    hearth_session *s = peer_open(path, &m);
    const int nv = hearth_model_n_vocab(m);
    for (int i = 0; i < PEER_N_IDS; i++)
        REQUIRE(hearth_decode(s, &peer_ids[i], 1, rows + (size_t)i * nv, false) == HEARTH_OK);
    hearth_session_free(s);
    hearth_model_free(m);
}

/* What peer_measure finds for one file. */
typedef struct peer_result {
    int nv;
    int agree;      /* prompt rows whose argmax is the same in both modes */
    double d_exact; /* default against exact mode, prompt rows */
    double d_incr;  /* one batch against one token at a time (default mode) */
} peer_result;

/* Checks the file's exact-mode rows against the peer's hash and measures
 * default mode against them. */
static inline peer_result peer_measure(const char *name, const char *path, uint64_t peer_hash) {
    float *exact = malloc(sizeof(float) * PEER_ROWS * PEER_MAX_VOCAB),
          *fast = malloc(sizeof(float) * PEER_ROWS * PEER_MAX_VOCAB),
          *incr = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB);
    REQUIRE(exact && fast && incr);
    peer_result r = {0};
    kern_set_exact(true);
    r.nv = peer_run_greedy(path, exact);
    kern_set_exact(false);
    const uint64_t h = test_fnv1a(TEST_FNV_SEED, exact, sizeof(float) * PEER_ROWS * (size_t)r.nv);
    CHECKF(h == peer_hash, "%s: exact-mode logits hash %016llx, llama.cpp's %016llx", name,
           (unsigned long long)h, (unsigned long long)peer_hash);
    peer_run_greedy(path, fast);
    peer_run_incremental(path, incr);
    const size_t n_prompt = (size_t)PEER_N_IDS * (size_t)r.nv;
    for (int i = 0; i < PEER_N_IDS; i++)
        r.agree += peer_argmax(fast + (size_t)i * r.nv, r.nv) ==
                   peer_argmax(exact + (size_t)i * r.nv, r.nv);
    r.d_exact = test_max_diff(fast, exact, n_prompt);
    r.d_incr = test_max_diff(fast, incr, n_prompt);
    free(exact);
    free(fast);
    free(incr);
    return r;
}

/* A fresh directory /tmp/hearth-NAME-XXXXXX for a test's files into dir. */
static inline void peer_tmpdir(char *dir, size_t cap, const char *name) {
    snprintf(dir, cap, "/tmp/hearth-%s-XXXXXX", name);
    REQUIRE(mkdtemp(dir) != NULL);
}

/* Removes the directory and every file in it. */
static inline void peer_tmpdir_remove(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (const struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

/* Loads `path`; returns the model, or NULL with the error's text in err. */
static inline hearth_model *peer_load(const char *path, char *err, size_t cap) {
    hearth_model *m = NULL;
    if (hearth_model_load(path, NULL, &m) != HEARTH_OK) {
        snprintf(err, cap, "%s", hearth_last_error());
        return NULL;
    }
    return m;
}

/* Copies the file at `src` to `dst` with n bytes of `with` written `at`
 * bytes after every occurrence of `find` (a metadata key: its value
 * follows the key and a 4-byte type, at strlen(key) + 4). */
static inline void peer_patch(const char *src, const char *dst, const char *find, const void *with,
                              size_t n, size_t at) {
    FILE *f = fopen(src, "rb");
    REQUIRE(f);
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    const long len = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)len);
    REQUIRE(b && fread(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    const size_t fl = strlen(find);
    int hits = 0;
    for (unsigned char *p = b; (p = memmem(p, (size_t)(b + len - p), find, fl)) != NULL; p += fl) {
        REQUIRE(p + at + n <= b + len);
        memcpy(p + at, with, n);
        hits++;
    }
    REQUIRE(hits > 0);
    f = fopen(dst, "wb");
    REQUIRE(f && fwrite(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    free(b);
}

#endif
