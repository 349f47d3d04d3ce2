/*
 * fuzz_json_schema.c - JSON Schema constrained output (src/sampling/
 * json_schema*.c) on arbitrary input: the bytes before the first NUL are a
 * schema text, the bytes after it an output to feed.
 *   - compiling never crashes or leaks, and a refusal comes with a message
 *     "json_schema: ..." naming where;
 *   - a refused byte leaves the state as it was (smp_sstate_feed);
 *   - the state after the accepted bytes is never a dead end: some byte is
 *     accepted, or the output can end there (what makes masks exact);
 *   - an output taken as complete is one JSON text cJSON parses;
 *   - the recognizer never reads outside its state (ASan).
 * Built with -DHEARTH_FUZZ=ON as a libFuzzer target, otherwise replays
 * fuzz/corpus/json_schema/.
 */
#include "sampling/json_schema.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    const size_t schema_len = nul ? (size_t)(nul - data) : size;
    char *schema_text = malloc(schema_len + 1);
    if (!schema_text) abort();
    memcpy(schema_text, data, schema_len);
    schema_text[schema_len] = '\0';
    smp_schema *s = NULL;
    const hearth_err err = smp_schema_compile(schema_text, &s);
    free(schema_text);
    if (err) {
        if (s || strncmp(hearth_last_error(), "json_schema: ", 13)) abort();
        return 0;
    }
    const uint8_t *text = nul ? nul + 1 : data + size;
    const size_t n = nul ? size - schema_len - 1 : 0;
    smp_sstate *st = malloc(sizeof *st), *before = malloc(sizeof *before);
    if (!st || !before) abort();
    smp_sstate_init(st);
    size_t ok = 0;
    for (; ok < n; ok++) {
        smp_sstate_copy(before, st);
        if (smp_sstate_feed(s, st, text + ok, 1)) continue;
        if (smp_sstate_size(before) != smp_sstate_size(st) ||
            memcmp(before, st, smp_sstate_size(st)))
            abort(); /* a refusal changes nothing */
        break;
    }
    if (st->n_threads == 0) abort();
    const bool can_end = smp_sstate_can_end(s, st);
    bool moves = can_end;
    for (int c = 0; c < 256 && !moves; c++) moves = smp_sstate_step(s, before, st, (uint8_t)c);
    if (!moves) abort(); /* a dead end: a byte before was wrongly accepted */
    if (can_end) {
        char *z = malloc(ok + 1);
        if (!z) abort();
        memcpy(z, text, ok);
        z[ok] = '\0';
        cJSON *root = strlen(z) == ok ? cJSON_ParseWithLengthOpts(z, ok + 1, NULL, true) : NULL;
        if (!root) abort();
        cJSON_Delete(root);
        free(z);
    }
    free(st);
    free(before);
    smp_schema_free(s);
    return 0;
}
