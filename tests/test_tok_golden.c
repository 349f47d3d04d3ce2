/*
 * test_tok_golden.c - detokenizing the conformance models' greedy
 * continuations: for every golden JSON of ../shared/conformance/models/ and
 * stories260K/, the pieces of gen_ids (rendered with special text, as the
 * golden generator did) concatenate to exactly the bytes of gen_text_hex; the
 * streaming detokenizer fed the same ids one at a time gives gen_text (the
 * bytes with invalid UTF-8 replaced by U+FFFD, as Python's decoder does); and
 * where the JSON has a prompt, tokenizing it (with BOS) gives prompt_ids.
 * The vocabulary comes from each model's own GGUF. Skips when ../shared is
 * absent.
 */
#include "core/core.h"
#include "golden.h"
#include "model/gguf.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <dirent.h>
#include <stdint.h>

/* ---- just enough JSON: the value of a top-level key ---- */

static const char *json_value(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    return p;
}

static size_t json_ints(const char *p, int32_t *out, size_t cap) {
    size_t n = 0;
    if (!p || *p != '[') return 0;
    p++;
    while (*p && *p != ']' && n < cap) {
        char *e;
        long x = strtol(p, &e, 10);
        if (e == p) break;
        out[n++] = (int32_t)x;
        p = e;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
}

static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A JSON string (\uXXXX and surrogate pairs included) into out; its length. */
static size_t json_string(const char *p, char *out) {
    size_t n = 0;
    if (!p || *p != '"') return 0;
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') {
            out[n++] = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            uint32_t cp = (uint32_t)strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                uint32_t lo = (uint32_t)strtoul((char[5]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            n += put_utf8(cp, out + n);
            break;
        }
        default: out[n++] = *p; break; /* \" \\ \/ */
        }
    }
    return n;
}

static size_t json_hex(const char *p, char *out) {
    size_t n = 0;
    if (!p || *p != '"') return 0;
    for (p++; p[0] != '"' && p[1]; p += 2)
        out[n++] = (char)strtoul((char[3]){p[0], p[1], 0}, NULL, 16);
    return n;
}

static tok_vocab *load_vocab(const char *path) {
    gguf_file *f = NULL;
    tok_vocab *v = NULL;
    if (gguf_open(path, &f)) {
        fprintf(stderr, "%s: %s\n", path, hearth_last_error());
        return NULL;
    }
    if (tok_vocab_load(f, &v)) fprintf(stderr, "%s: %s\n", path, hearth_last_error());
    gguf_close(f);
    return v;
}

static int n_files;

static void check_golden(const char *gguf_path, const char *json_path) {
    size_t jlen = 0;
    char *json = golden_read(json_path, &jlen);
    if (!json) return; /* not every model has every type */
    tok_vocab *v = load_vocab(gguf_path);
    CHECKF(v != NULL, "%s", gguf_path);
    if (!v) {
        free(json);
        return;
    }
    n_files++;
    int32_t ids[4096];
    size_t n = json_ints(json_value(json, "gen_ids"), ids, 4096);
    CHECKF(n > 0, "%s: no gen_ids", json_path);
    char *want = malloc(jlen), *text = malloc(jlen), *got = malloc(jlen * 4 + 64);
    REQUIRE(want && text && got);
    size_t want_n = json_hex(json_value(json, "gen_text_hex"), want);
    size_t text_n = json_string(json_value(json, "gen_text"), text);

    /* pieces, as the golden generator concatenated them */
    size_t got_n = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        CHECK(tok_piece(v, ids[i], true, got + got_n, jlen * 4 - got_n, &k) == HEARTH_OK);
        got_n += k;
    }
    CHECKF(got_n == want_n && !memcmp(got, want, want_n), "%s: pieces differ from gen_text_hex",
           json_path);

    /* the stream: only valid UTF-8, equal to the replacement-decoded text */
    tok_stream *s = NULL;
    REQUIRE(tok_stream_new(v, true, &s) == HEARTH_OK);
    got_n = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t k;
        CHECK(tok_stream_push(s, ids[i], &t, &k) == HEARTH_OK);
        CHECK(hr_utf8_valid(t, k, NULL));
        memcpy(got + got_n, t, k);
        got_n += k;
    }
    const char *t;
    size_t k;
    tok_stream_flush(s, &t, &k);
    memcpy(got + got_n, t, k);
    got_n += k;
    tok_stream_free(s);
    CHECKF(got_n == text_n && !memcmp(got, text, text_n),
           "%s: stream gives \"%.*s\", want \"%.*s\"", json_path, (int)got_n, got, (int)text_n,
           text);

    /* the prompt, where the ids came from text */
    const char *pv = json_value(json, "prompt");
    if (pv) {
        size_t plen = json_string(pv, text);
        int32_t want_ids[4096], got_ids[4096];
        size_t nw = json_ints(json_value(json, "prompt_ids"), want_ids, 4096), ng = 0;
        CHECK(tok_encode(v, text, plen, true, false, got_ids, 4096, &ng) == HEARTH_OK);
        CHECKF(ng == nw && !memcmp(got_ids, want_ids, nw * sizeof *got_ids),
               "%s: prompt tokenizes differently (%zu vs %zu ids)", json_path, ng, nw);
    }
    free(want);
    free(text);
    free(got);
    free(json);
    tok_vocab_free(v);
}

int main(void) {
    static const char *types[] = {"F32", "F16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"};
    const char *root = HEARTH_SHARED_DIR "/conformance";
    char dir[512], gguf[2048], json[2048];
    snprintf(dir, sizeof dir, "%s/models", root);
    DIR *d = opendir(dir);
    if (!d) {
        printf("test_tok_golden: %s not found, skipping\n", dir);
        return TEST_SKIP;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            snprintf(gguf, sizeof gguf, "%s/%s/%s.%s.gguf", dir, e->d_name, e->d_name, types[t]);
            snprintf(json, sizeof json, "%s/%s/golden/%s.json", dir, e->d_name, types[t]);
            check_golden(gguf, json);
        }
    }
    closedir(d);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        snprintf(gguf, sizeof gguf, "%s/stories260K/stories260K.%s.gguf", root, types[t]);
        snprintf(json, sizeof json, "%s/stories260K/golden/%s.json", root, types[t]);
        check_golden(gguf, json);
        snprintf(json, sizeof json, "%s/stories260K/golden/%s.story.json", root, types[t]);
        check_golden(gguf, json);
    }
    printf("test_tok_golden: %d golden files\n", n_files);
    CHECK(n_files > 0);
    return test_done("test_tok_golden");
}
