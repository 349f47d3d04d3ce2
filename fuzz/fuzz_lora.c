/*
 * fuzz_lora.c - LoRA adapter binding (lora.c) on arbitrary bytes: the
 * bytes go through the GGUF reader, then model_lora_scan and
 * model_lora_bind against a small synthetic llama; every refusal must say
 * why, and an adapter that binds must run a forward pass (its A and B are
 * read in full) and detach cleanly. Seeds: fuzz/corpus/lora/, adapters for
 * that base written with
 *   hearth synth -o base.gguf --embd 64 --layers 1 --heads 2 --kv-heads 1 \
 *       --head-dim 32 --ff 128 --ctx 16 --seed 1
 *   hearth synth --lora-for base.gguf -o SEED.gguf --rank R --targets LIST ...
 * plus a few cut and altered copies.
 */
#include "hearth.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/synth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hearth_model *base;
static char base_path[64];

static void remove_base(void) {
    hearth_model_free(base);
    unlink(base_path);
}

/* The base model, written and loaded on the first input. */
static hearth_model *base_model(void) {
    if (base) return base;
    synth_params p = synth_default_params();
    p.n_embd = 64, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.head_dim = 32;
    p.n_ff = 128, p.n_ctx = 16, p.seed = 1;
    snprintf(base_path, sizeof base_path, "/tmp/fuzz_lora_base.%ld.gguf", (long)getpid());
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    if (synth_write(base_path, &p) || hearth_model_load(base_path, &mp, &base)) abort();
    atexit(remove_base);
    return base;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hearth_model *m = base_model();
    /* An exact-size copy, so that any read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    gguf_file *f = NULL;
    if (gguf_open_memory(copy, size, &f) != HEARTH_OK) {
        free(copy);
        return 0;
    }
    model_lora_info info;
    if (model_lora_scan(f, &info) == HEARTH_OK &&
        (info.n_pairs < 1 || info.rank_min < 1 || info.rank_min > info.rank_max))
        abort();
    const hearth_err err = model_lora_bind(m, f, 0.5f); /* takes f */
    if (err) {
        if (!*hearth_last_error()) abort(); /* every refusal says why */
        if (m->n_loras) abort();
        free(copy);
        return 0;
    }
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 8;
    hearth_session *s = NULL;
    if (hearth_session_new(m, &sp, &s) == HEARTH_OK) {
        const int32_t ids[3] = {1, 200, 7};
        float *logits = malloc((size_t)hearth_model_n_vocab(m) * sizeof *logits);
        if (logits && hearth_decode(s, ids, 3, logits, false) != HEARTH_OK) abort();
        free(logits);
        hearth_session_free(s);
    }
    model_lora_free_all(m);
    /* detached: nothing of the adapter is left on any weight */
    if (m->tok_embd.lora || m->output.lora || m->layers[0].wq.lora || m->layers[0].down.lora)
        abort();
    free(copy);
    return 0;
}
