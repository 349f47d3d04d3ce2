/*
 * squad_fixture.h - SQuAD 2.0 (../shared/data/rag/squad2) as a document
 * store for retrieval tests and bench_rag: each article becomes one text
 * file ("# Title", then its paragraphs separated by blank lines) and each
 * answerable question knows the byte range of its first answer in that file,
 * so "the right passage came back" means: a retrieved chunk of that file
 * contains the answer. SQuAD's offsets count code points; they are turned
 * into bytes here.
 */
#ifndef HEARTH_TESTS_SQUAD_FIXTURE_H
#define HEARTH_TESTS_SQUAD_FIXTURE_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct squad_question {
    char *text;
    int article;                     /* index into squad_set.path */
    size_t answer_start, answer_len; /* bytes, in the article's file */
} squad_question;

typedef struct squad_set {
    char **path; /* the article files (canonical paths) */
    int n_articles;
    squad_question *q; /* the answerable questions */
    size_t n_q;
} squad_set;

/* Byte offset of code point `cp` in s (or strlen(s) past the end). */
static size_t squad_bytes(const char *s, long cp) {
    size_t i = 0;
    for (long c = 0; s[i] && c < cp; c++) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

static void squad_free(squad_set *s) {
    for (int i = 0; i < s->n_articles; i++) free(s->path[i]);
    for (size_t i = 0; i < s->n_q; i++) free(s->q[i].text);
    free(s->path);
    free(s->q);
    memset(s, 0, sizeof *s);
}

/* Whether the byte range [start, start + len) of the file at path holds q's answer. */
static bool squad_holds(const squad_set *s, const squad_question *q, const char *path,
                        long long start, long long len) {
    return !strcmp(path, s->path[q->article]) && (size_t)start <= q->answer_start &&
           q->answer_start + q->answer_len <= (size_t)(start + len);
}

/* Writes the articles of json_path under dir and lists the questions; 0 on
 * success, -1 (with a message on stderr) otherwise. */
static int squad_load(const char *json_path, const char *dir, squad_set *out) {
    FILE *f = fopen(json_path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    const size_t got = buf ? fread(buf, 1, (size_t)size, f) : 0;
    fclose(f);
    cJSON *root = got == (size_t)size ? cJSON_ParseWithLength(buf, got) : NULL;
    free(buf);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    squad_set s = {0};
    const int n_art = cJSON_GetArraySize(data);
    size_t cap_q = 0;
    s.path = calloc((size_t)(n_art > 0 ? n_art : 1), sizeof *s.path);
    int rc = root && s.path && n_art > 0 ? 0 : -1;
    for (int a = 0; a < n_art && !rc; a++) {
        const cJSON *art = cJSON_GetArrayItem(data, a);
        const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(art, "title"));
        char name[PATH_MAX];
        snprintf(name, sizeof name, "%s/%02d_%s.md", dir, a, title ? title : "untitled");
        FILE *w = fopen(name, "wb");
        if (!w || !(s.path[a] = realpath(name, NULL))) {
            if (w) fclose(w);
            rc = -1;
            break;
        }
        s.n_articles = a + 1;
        size_t off = (size_t)fprintf(w, "# %s\n\n", title ? title : "untitled");
        const cJSON *para;
        cJSON_ArrayForEach(para, cJSON_GetObjectItemCaseSensitive(art, "paragraphs")) {
            const char *ctx =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(para, "context"));
            if (!ctx) continue;
            const cJSON *qa;
            cJSON_ArrayForEach(qa, cJSON_GetObjectItemCaseSensitive(para, "qas")) {
                const cJSON *ans =
                    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(qa, "answers"), 0);
                const char *q =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(qa, "question"));
                const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans, "text"));
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(ans, "answer_start");
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(qa, "is_impossible")) || !q ||
                    !t || !cJSON_IsNumber(st))
                    continue;
                if (s.n_q == cap_q) {
                    cap_q = cap_q ? 2 * cap_q : 256;
                    squad_question *m = realloc(s.q, cap_q * sizeof *m);
                    if (!m) {
                        rc = -1;
                        break;
                    }
                    s.q = m;
                }
                const size_t b = squad_bytes(ctx, (long)st->valuedouble);
                // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): grown above when full
                s.q[s.n_q++] = (squad_question){strdup(q), a, off + b, strlen(t)};
            }
            off += (size_t)fprintf(w, "%s\n\n", ctx);
        }
        if (fclose(w) != 0) rc = -1;
    }
    cJSON_Delete(root);
    if (rc) {
        fprintf(stderr, "squad: cannot load '%s' into '%s'\n", json_path, dir);
        squad_free(&s);
        return -1;
    }
    *out = s;
    return 0;
}

#endif
