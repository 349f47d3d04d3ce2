/*
 * fuzz_eval_tasks.c - the task files of `hearth perplexity`'s benchmarks
 * (src/eval/tasks.c) on arbitrary bytes: HellaSwag's text, WinoGrande's CSV
 * and llama.cpp's binary multiple-choice file must each be refused with a
 * message or read into tasks whose every field is there. The first byte
 * picks the reader (mod 3) and how many tasks to pick (0-84: all, or that
 * many at random). Seeds: fuzz/corpus/eval_tasks/.
 */
#include "eval/eval.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int which = data[0] % 3;
    const size_t n_want = data[0] / 3;
    const char *text = (const char *)data + 1;
    eval_tasks t = {0};
    const hearth_err err = which == 0   ? eval_hellaswag_read(text, size - 1, n_want, &t)
                           : which == 1 ? eval_winogrande_read(text, size - 1, n_want, &t)
                                        : eval_mc_read(data + 1, size - 1, n_want, &t);
    if (err) {
        sink += strlen(hearth_last_error());
        return 0;
    }
    for (size_t i = 0; i < t.n; i++) {
        const eval_task *k = &t.v[i];
        if (!k->context || k->n_endings < 1 || !k->endings) abort();
        sink += strlen(k->context) + (k->second ? strlen(k->second) : 0);
        for (int e = 0; e < k->n_endings; e++) sink += strlen(k->endings[e]);
        if (which == 2 && !k->labels) abort();
    }
    eval_tasks_free(&t);
    return 0;
}
