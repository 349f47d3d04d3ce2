/*
 * cmd_perplexity_bench.h - private to src/cli: the benchmarks of `hearth
 * perplexity` (--hellaswag, --winogrande, --multiple-choice), run by
 * cmd_perplexity.c once it has parsed the options and loaded the model.
 */
#ifndef HEARTH_CMD_PERPLEXITY_BENCH_H
#define HEARTH_CMD_PERPLEXITY_BENCH_H

#include "hearth.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum ppl_bench {
    PPL_BENCH_NONE = 0,
    PPL_BENCH_HELLASWAG,
    PPL_BENCH_WINOGRANDE,
    PPL_BENCH_MC
} ppl_bench;

/* Reads the task file at path (with `binary` as is, else its final newline
 * dropped, as -bf and -f read), picks n_tasks of them as llama-perplexity
 * does and scores them on s, a session of m with room for max_tokens (a
 * task holding more is refused), printing llama-perplexity's lines to
 * stdout. Returns the exit status (errors printed). */
int ppl_bench_run(ppl_bench which, const char *path, bool binary, size_t n_tasks, hearth_model *m,
                  hearth_session *s, int max_tokens);

#endif
