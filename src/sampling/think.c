/*
 * think.c - a reasoning model's thinking budget: once a <think> block has
 * run for its budget of tokens, the sampler draws only the block's closing
 * token, so the model moves on to its answer (llama.cpp's --reasoning-budget).
 *
 * The budget counts the tokens kept after the opening token (or from the
 * first one when the prompt opened the block); budget 0 closes the block at
 * once. The closing token drawn on its own also ends the count; a later
 * block gets a fresh budget, as some models think more than once.
 */
#include "sampling.h"

static void arm(smp_think *t) {
    t->left = t->budget;
    t->state = t->left > 0 ? SMP_THINK_COUNTING : SMP_THINK_FORCING;
}

void smp_think_init(smp_think *t, int32_t budget, int32_t start, int32_t end, bool open) {
    *t = (smp_think){.state = SMP_THINK_IDLE, .budget = budget, .start = start, .end = end};
    if (open) arm(t);
}

void smp_think_advance(smp_think *t, int32_t token) {
    switch (t->state) {
    case SMP_THINK_IDLE:
    case SMP_THINK_DONE:
        if (token == t->start) arm(t);
        break;
    case SMP_THINK_COUNTING:
        if (token == t->end)
            t->state = SMP_THINK_DONE;
        else if (--t->left <= 0)
            t->state = SMP_THINK_FORCING;
        break;
    case SMP_THINK_FORCING:
        t->state = SMP_THINK_DONE; /* the closing token, the only one it allowed */
        break;
    }
}
