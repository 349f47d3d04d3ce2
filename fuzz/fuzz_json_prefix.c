/*
 * fuzz_json_prefix.c - JSON mode's recognizer (src/sampling/json_prefix.c) on
 * arbitrary bytes, against cJSON. The first byte picks the options (bit 0:
 * the top-level value must be an object; bit 1: the white-space limit), the
 * rest is the text:
 *   - a refused byte leaves the state as it was, and nothing after it is
 *     read (the recognizer only answers for prefixes);
 *   - a text the recognizer takes as complete JSON is one cJSON parses (and
 *     an object when asked);
 *   - a text cJSON parses, printed back by cJSON (canonical JSON), is taken
 *     whole by the recognizer when it is valid UTF-8 and nests at most 64
 *     deep (cJSON is laxer than RFC 8259: leading zeros, raw control bytes,
 *     any byte <= 0x20 as white space; its printed form has none of them);
 *   - the recognizer never reads outside its state (ASan).
 * Built with -DHEARTH_FUZZ=ON as a libFuzzer target, otherwise replays
 * fuzz/corpus/json_prefix/.
 */
#include "core/core.h"
#include "sampling/json_prefix.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cJSON *cjson_parse(const uint8_t *s, size_t n) {
    char *z = malloc(n + 1);
    if (!z) abort();
    memcpy(z, s, n);
    z[n] = '\0';
    cJSON *root = cJSON_ParseWithLengthOpts(z, n + 1, NULL, true); /* the NUL counts */
    free(z);
    return root;
}

static int depth_of(const cJSON *v) {
    int d = 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        const int k = depth_of(c);
        d = k > d ? k : d;
    }
    return cJSON_IsArray(v) || cJSON_IsObject(v) ? d + 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const bool object_only = data[0] & 1, limit_ws = data[0] & 2;
    const uint8_t *text = data + 1;
    const size_t n = size - 1;
    smp_json j;
    smp_json_init(&j, object_only);
    if (limit_ws) smp_json_limit_ws(&j);
    size_t ok = 0;
    for (; ok < n; ok++) {
        const smp_json before = j;
        if (smp_json_feed(&j, text[ok])) continue;
        if (memcmp(&before, &j, sizeof j)) abort(); /* a refusal changes nothing */
        break;
    }
    if (smp_json_depth(&j) > SMP_JSON_MAX_DEPTH) abort();
    cJSON *root = cjson_parse(text, n);
    if (ok == n && smp_json_can_end(&j)) {
        if (!root || (object_only && !cJSON_IsObject(root))) abort();
    }
    if (root && depth_of(root) <= SMP_JSON_MAX_DEPTH && (!object_only || cJSON_IsObject(root))) {
        char *printed = cJSON_PrintUnformatted(root);
        if (printed && hr_utf8_valid(printed, strlen(printed), NULL)) {
            smp_json k;
            smp_json_init(&k, object_only);
            if (!smp_json_feed_bytes(&k, printed, strlen(printed)) || !smp_json_can_end(&k))
                abort();
        }
        free(printed);
    }
    cJSON_Delete(root);
    return 0;
}
