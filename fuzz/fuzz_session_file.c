/*
 * fuzz_session_file.c - the session file reader (session_file.c,
 * hearth_session_load's) on arbitrary bytes, into sessions of a small
 * synthetic llama with F32, F16 and Q8_0 caches (the one whose type the
 * header's kv_type field names). The model's fingerprint is written into
 * every input first, so the fuzzer spends its time past that comparison on
 * the sizes, the tokens and the layouts. A refusal must say why and leave
 * the session as it was; a file that loads must leave a session that holds
 * at most its context, only ids of the vocabulary, and decodes one more
 * token (its keys and values read back through the attention).
 * Seeds: fuzz/corpus/session_file/, files hearth_session_save wrote for
 * that model (F32, F16 and Q8_0; empty, 3 and 21 positions, without
 * logits, after a context shift), plus cut and altered copies.
 */
#include "hearth.h"
#include "model/session.h" /* session_state_read: the reader over bytes */
#include "model/synth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_CTX = 24, FINGERPRINT_AT = 16, KV_TYPE_AT = 12 };

static hearth_model *model;
static hearth_session *sessions[3]; /* by hearth_kv_type */
static uint8_t fingerprint[8];
static char model_path[64];

static void cleanup(void) {
    for (int i = 0; i < 3; i++) hearth_session_free(sessions[i]);
    hearth_model_free(model);
    unlink(model_path);
}

/* The model (the seeds' parameters), its sessions, and its fingerprint as
 * an empty session's file carries it. */
static void setup(void) {
    if (model) return;
    synth_params p = synth_default_params();
    p.n_embd = 64, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.head_dim = 32;
    p.n_ff = 128, p.n_ctx = 32, p.seed = 1;
    snprintf(model_path, sizeof model_path, "/tmp/fuzz_session.%ld.gguf", (long)getpid());
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    if (synth_write(model_path, &p) || hearth_model_load(model_path, &mp, &model)) abort();
    for (int i = 0; i < 3; i++) {
        hearth_session_params sp = hearth_session_default_params();
        sp.n_ctx = N_CTX;
        sp.kv_type = (hearth_kv_type)i;
        if (hearth_session_new(model, &sp, &sessions[i])) abort();
    }
    char file[96];
    snprintf(file, sizeof file, "%s.session", model_path);
    FILE *f = NULL;
    if (hearth_session_save(sessions[0], file, NULL) || !(f = fopen(file, "rb")) ||
        fseek(f, FINGERPRINT_AT, SEEK_SET) || fread(fingerprint, 1, 8, f) != 8)
        abort();
    fclose(f);
    unlink(file);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    /* an exact-size copy, so that any read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    if (size >= FINGERPRINT_AT + 8) memcpy(copy + FINGERPRINT_AT, fingerprint, 8);
    uint32_t kv = 0;
    if (size >= KV_TYPE_AT + 4) memcpy(&kv, copy + KV_TYPE_AT, 4);
    hearth_session *s = sessions[kv < 3 ? kv : 1];
    /* something held before, that a refusal must leave in place */
    const int32_t held[2] = {5, 9};
    if (hearth_session_truncate(s, 0) || hearth_decode(s, held, 2, NULL, false)) abort();
    const hearth_err err = session_state_read(s, copy, size);
    if (err) {
        if (!*hearth_last_error()) abort(); /* every refusal says why */
        if (hearth_session_pos(s) != 2 || hearth_session_tokens(s, NULL)[1] != 9) abort();
        free(copy);
        return 0;
    }
    const int n = hearth_session_pos(s), nv = hearth_model_n_vocab(model);
    int exact = -1;
    const int32_t *ids = hearth_session_tokens(s, &exact);
    if (n < 0 || n > N_CTX || exact < 0 || exact > n) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= nv) abort();
    if (n < N_CTX) {
        const int32_t next = 7;
        if (hearth_decode(s, &next, 1, NULL, false)) abort();
    }
    free(copy);
    return 0;
}
