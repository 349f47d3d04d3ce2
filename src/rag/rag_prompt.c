/*
 * rag_prompt.c - what hits become: the user message a retrieval-augmented
 * answer reads (the hits numbered in rank order, each under its file's name,
 * after an instruction to answer from them, cite them, and say so when they
 * do not hold the answer - small models otherwise fill the gap from memory -
 * then the question), and one hit as JSON for the CLI and the server.
 */
#include "rag.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char intro[] =
    "Answer the question using the numbered context passages below. Cite the passages you use "
    "by their numbers, like [1]. If the passages do not contain the answer, say that you do not "
    "know.\n\n";

char *rag_user_message(const rag_hits *h, const char *question) {
    size_t size = sizeof intro + strlen(question) + 16;
    for (size_t i = 0; i < h->n; i++)
        size += strlen(h->hit[i].source) + strlen(h->hit[i].text) + 32;
    char *out = malloc(size);
    if (!out) return NULL;
    size_t n = (size_t)snprintf(out, size, "%s", intro);
    for (size_t i = 0; i < h->n; i++) {
        n += (size_t)snprintf(out + n, size - n, "[%zu] %s\n%s\n\n", i + 1, h->hit[i].source,
                              h->hit[i].text);
    }
    snprintf(out + n, size - n, "Question: %s", question);
    return out;
}

cJSON *rag_hit_json(const rag_hit *h, int rank) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rank", rank);
    cJSON_AddNumberToObject(o, "score", h->score);
    if (h->reranked) cJSON_AddNumberToObject(o, "retrieval_score", h->retrieval_score);
    cJSON_AddStringToObject(o, "path", h->path);
    cJSON_AddStringToObject(o, "source", h->source);
    cJSON_AddNumberToObject(o, "byte_start", (double)h->byte_start);
    cJSON_AddNumberToObject(o, "byte_len", (double)h->byte_len);
    cJSON_AddNumberToObject(o, "rank_bm25", h->rank_bm25);
    cJSON_AddNumberToObject(o, "rank_vector", h->rank_vector);
    cJSON_AddStringToObject(o, "text", h->text);
    return o;
}
