/*
 * rag_prompt.c - the context block a retrieval-augmented answer reads: the
 * hits numbered in rank order, each under its file's name, after an
 * instruction to answer from them, cite them, and say so when they do not
 * hold the answer (small models otherwise fill the gap from memory).
 */
#include "rag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char intro[] =
    "Answer the question using the numbered context passages below. Cite the passages you use "
    "by their numbers, like [1]. If the passages do not contain the answer, say that you do not "
    "know.\n\n";

char *rag_context_block(const rag_hits *h) {
    size_t size = sizeof intro;
    for (size_t i = 0; i < h->n; i++) size += strlen(h->hit[i].path) + strlen(h->hit[i].text) + 32;
    char *out = malloc(size);
    if (!out) return NULL;
    size_t n = (size_t)snprintf(out, size, "%s", intro);
    for (size_t i = 0; i < h->n; i++) {
        const char *name = strrchr(h->hit[i].path, '/');
        n += (size_t)snprintf(out + n, size - n, "[%zu] %s\n%s\n\n", i + 1,
                              name ? name + 1 : h->hit[i].path, h->hit[i].text);
    }
    return out;
}
