/*
 * think.h - a reasoning model's reply split into its <think> block (Gemma
 * 4: its <|channel>thought block; Ministral 3 and Magistral: [THINK]) and its answer as the reply
 * is generated (think.c): what `hearth serve` returns as reasoning_content and `hearth chat`
 * shows apart.
 */
#ifndef HEARTH_ENGINE_THINK_H
#define HEARTH_ENGINE_THINK_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialized is not valid: eng_think_init. */
enum { ENG_THINK_HOLD = 32 /* bytes held back at most */ };
typedef enum eng_think_state {
    ENG_THINK_START,  /* nothing but white space yet: a block may open */
    ENG_THINK_LEAD,   /* the block opened: white space skipped */
    ENG_THINK_IN,     /* inside the block */
    ENG_THINK_AFTER,  /* the block closed: white space skipped */
    ENG_THINK_CONTENT /* the answer */
} eng_think_state;
typedef struct eng_think {
    eng_think_state state;
    char held[ENG_THINK_HOLD];
    size_t n_held;
    int pair; /* which tag pair opened the block (think.c's order): its closing tag ends it */
} eng_think;
/* Where eng_think_feed puts the bytes it decides: each buffer has room for
 * the input's length + ENG_THINK_HOLD; n_reason and n_content grow. */
typedef struct eng_think_out {
    char *reason, *content;
    size_t n_reason, n_content;
} eng_think_out;
/* open: the prompt already opened the block (the model starts inside it). */
void eng_think_init(eng_think *t, bool open);
void eng_think_feed(eng_think *t, const char *text, size_t n, eng_think_out *o);
/* The reply ended: what was held back goes where it was headed. */
void eng_think_finish(eng_think *t, eng_think_out *o);
/* Whether the block has closed (or never opened): the bytes now are the answer. */
bool eng_think_answering(const eng_think *t);

#endif
