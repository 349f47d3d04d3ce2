/*
 * tasks.c - the task files of llama-perplexity's benchmarks, read and
 * chosen as it reads and chooses them: HellaSwag's 6-line text, WinoGrande's
 * CSV and llama.cpp's binary multiple-choice file; its random choices come
 * from std::mt19937 seeded with 1, reproduced here with libstdc++'s
 * uniform_int_distribution (GCC 11 and later) so that the same tasks are
 * picked in the same order. Bad input is refused with the line or task and
 * what is wrong, never read past its end.
 */
#include "eval.h"

#include "core/core.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- std::mt19937 ------------------------------------------------------- */

void eval_mt_seed(eval_mt *mt, uint32_t seed) {
    mt->s[0] = seed;
    for (uint32_t i = 1; i < 624; i++)
        mt->s[i] = 1812433253u * (mt->s[i - 1] ^ (mt->s[i - 1] >> 30)) + i;
    mt->i = 624;
}

static void mt_twist(eval_mt *mt) {
    for (int k = 0; k < 624; k++) {
        const uint32_t y = (mt->s[k] & 0x80000000u) | (mt->s[(k + 1) % 624] & 0x7fffffffu);
        mt->s[k] = mt->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    mt->i = 0;
}

uint32_t eval_mt_next(eval_mt *mt) {
    if (mt->i >= 624) mt_twist(mt);
    uint32_t y = mt->s[mt->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

uint32_t eval_mt_below(eval_mt *mt, uint64_t n) {
    if (n >= (1ull << 32)) return eval_mt_next(mt); /* the whole range: no rejection */
    const uint32_t range = (uint32_t)n;
    uint64_t product = (uint64_t)eval_mt_next(mt) * range;
    uint32_t low = (uint32_t)product;
    if (low < range) {
        const uint32_t threshold = (uint32_t)(-range) % range;
        while (low < threshold) {
            product = (uint64_t)eval_mt_next(mt) * range;
            low = (uint32_t)product;
        }
    }
    return (uint32_t)(product >> 32);
}

/* llama-perplexity's pick from `left` remaining entries for WinoGrande and
 * multiple choice: a float scale of 2^-32, so that the draw times the count
 * is a float (which can round up to the count itself: clamped here). */
static size_t mt_pick(eval_mt *mt, size_t left) {
    const float scale = 1.f / (1.f + (float)UINT32_MAX);
    const size_t j = (size_t)(scale * (float)eval_mt_next(mt) * (float)left);
    return j < left ? j : left - 1;
}

/* ---- tasks -------------------------------------------------------------- */

static void task_fini(eval_task *t) {
    free(t->context);
    free(t->second);
    for (int i = 0; t->endings && i < t->n_endings; i++) free(t->endings[i]);
    free(t->endings);
    free(t->labels);
}

void eval_tasks_free(eval_tasks *t) {
    for (size_t i = 0; t->v && i < t->n; i++) task_fini(&t->v[i]);
    free(t->v);
    *t = (eval_tasks){0};
}

static char *dup_n(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* The lines of text as std::getline splits them: a final newline ends the
 * last line without starting another. *starts (malloc'd) gets n + 1 offsets,
 * line i being [starts[i], starts[i + 1] - 1). */
static hearth_err split_lines(const char *text, size_t len, size_t **starts, size_t *n) {
    size_t count = 0;
    for (size_t i = 0; i < len; i++) count += text[i] == '\n';
    if (len && text[len - 1] != '\n') count++;
    size_t *s = hr_calloc(count + 1, sizeof *s);
    if (!s) return HEARTH_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len && k < count; i++) {
        if (i == 0 || text[i - 1] == '\n') s[k++] = i;
    }
    s[count] = len && text[len - 1] != '\n' ? len + 1 : len; /* as if a newline followed */
    *starts = s;
    *n = count;
    return HEARTH_OK;
}

/* ---- HellaSwag ---------------------------------------------------------- */

/* std::stoi's reading of a label: leading spaces, a number, anything after. */
static bool parse_label(const char *p, size_t n, int *out) {
    size_t i = 0;
    while (i < n && isspace((unsigned char)p[i])) i++;
    const bool neg = i < n && (p[i] == '-' || p[i] == '+') && p[i++] == '-';
    if (i >= n || !isdigit((unsigned char)p[i])) return false;
    long v = 0;
    while (i < n && isdigit((unsigned char)p[i]) && v < 1000) v = 10 * v + (p[i++] - '0');
    *out = (int)(neg ? -v : v);
    return true;
}

/* Line k (0-5) of HellaSwag task `task`: its start and length. */
#define HS_LINE(k)                                                                                 \
    (text + starts[6 * task + (k)]), (starts[6 * task + (k) + 1] - 1 - starts[6 * task + (k)])

static hearth_err hs_label(const char *text, const size_t *starts, size_t task, int *gold) {
    if (parse_label(HS_LINE(1), gold) && *gold >= 0 && *gold <= 3) return HEARTH_OK;
    return hr_fail(HEARTH_ERR_FORMAT,
                   "line %zu: task %zu's label is not a number from 0 to 3 (6 lines a task: "
                   "context, label, four endings)",
                   6 * task + 2, task + 1);
}

static hearth_err hs_task(const char *text, const size_t *starts, size_t task, eval_task *t) {
    hearth_err err = hs_label(text, starts, task, &t->gold);
    if (err) return err;
    t->n_endings = 4;
    t->endings = calloc(4, sizeof *t->endings);
    t->context = dup_n(HS_LINE(0));
    bool ok = t->endings && t->context;
    for (int e = 0; ok && e < 4; e++) ok = (t->endings[e] = dup_n(HS_LINE(2 + e))) != NULL;
    return ok ? HEARTH_OK : HEARTH_ERR_NOMEM;
}
#undef HS_LINE

hearth_err eval_hellaswag_read(const char *text, size_t len, size_t n_want, eval_tasks *out) {
    size_t *starts = NULL, n_lines = 0;
    hearth_err err = split_lines(text, len, &starts, &n_lines);
    if (err) return err;
    eval_tasks r = {.n_total = n_lines / 6};
    size_t *left = NULL;
    if (n_lines % 6 != 0 || n_lines == 0) {
        err = hr_fail(HEARTH_ERR_FORMAT,
                      "%zu lines: HellaSwag's file has 6 lines a task (context, label, four "
                      "endings), a multiple of 6",
                      n_lines);
        goto done;
    }
    int gold;
    for (size_t i = 0; i < r.n_total && !err; i++) err = hs_label(text, starts, i, &gold);
    const size_t n = n_want < r.n_total ? n_want : r.n_total;
    r.v = hr_calloc(n ? n : 1, sizeof *r.v);
    left = hr_calloc(r.n_total, sizeof *left);
    if (!err && (!r.v || !left)) err = HEARTH_ERR_NOMEM;
    for (size_t i = 0; i < r.n_total && !err; i++) left[i] = i;
    eval_mt mt;
    eval_mt_seed(&mt, 1);
    size_t n_left = r.n_total;
    for (size_t i = 0; i < n && !err; i++, r.n++) {
        /* a uniform pick among the tasks left, which then leaves the list */
        const size_t j = eval_mt_below(&mt, n_left);
        err = hs_task(text, starts, left[j], &r.v[i]);
        memmove(left + j, left + j + 1, (n_left - j - 1) * sizeof *left);
        n_left--;
    }
done:
    free(left);
    free(starts);
    if (err)
        eval_tasks_free(&r);
    else
        *out = r;
    return err;
}

/* ---- WinoGrande --------------------------------------------------------- */

/* One CSV line into t, or the reason it is not a task. */
static const char *wg_line(const char *p, size_t n, eval_task *t) {
    size_t comma[4];
    int k = 0;
    bool quoted = false;
    for (size_t i = 0; i < n && k < 4; i++) {
        if (p[i] == '"')
            quoted = !quoted;
        else if (p[i] == ',' && !quoted)
            comma[k++] = i;
    }
    if (k != 4) return "not 5 comma-separated fields";
    size_t s0 = comma[0] + 1, s1 = comma[1];
    if (p[s0] == '"') { /* llama.cpp drops the first and last character */
        if (s1 - s0 < 2) return "an empty quoted sentence";
        s0++;
        s1--;
    }
    const char *blank = memchr(p + s0, '_', s1 - s0);
    if (!blank) return "no _ in the sentence";
    char *end;
    const char *ans = p + comma[3] + 1;
    while (ans < p + n && isspace((unsigned char)*ans)) ans++;
    const long answer = ans < p + n && isdigit((unsigned char)*ans) ? strtol(ans, &end, 10) : 0;
    if (answer < 1 || answer > 2) return "the answer is not 1 or 2";
    t->gold = (int)answer;
    t->n_endings = 2;
    t->context = dup_n(p + s0, (size_t)(blank - (p + s0)));
    t->second = dup_n(blank + 1, (size_t)(p + s1 - blank - 1));
    t->endings = calloc(2, sizeof *t->endings);
    if (t->endings) {
        t->endings[0] = dup_n(p + comma[1] + 1, comma[2] - comma[1] - 1);
        t->endings[1] = dup_n(p + comma[2] + 1, comma[3] - comma[2] - 1);
    }
    return t->context && t->second && t->endings && t->endings[0] && t->endings[1] ? NULL : "";
}

hearth_err eval_winogrande_read(const char *text, size_t len, size_t n_want, eval_tasks *out) {
    size_t *starts = NULL, n_lines = 0;
    hearth_err err = split_lines(text, len, &starts, &n_lines);
    if (err) return err;
    /* llama-perplexity's reader stops when a line ends at the end of the
     * file, before using it: an unterminated last line is never read */
    if (n_lines && starts[n_lines] > len) n_lines--;
    eval_tasks r = {0};
    r.v = hr_calloc(n_lines ? n_lines : 1, sizeof *r.v);
    if (!r.v) err = HEARTH_ERR_NOMEM;
    for (size_t i = 0; i < n_lines && !err; i++) {
        const char *why = wg_line(text + starts[i], starts[i + 1] - 1 - starts[i], &r.v[r.n]);
        if (why && !*why) err = HEARTH_ERR_NOMEM;
        if (!why) {
            r.n++;
            continue;
        }
        task_fini(&r.v[r.n]);
        r.v[r.n] = (eval_task){0};
        if (!r.n_skipped++) {
            r.first_skipped = i + 1;
            r.skip_why = why;
        }
    }
    free(starts);
    r.n_total = r.n;
    if (!err && r.n == 0)
        err = hr_fail(HEARTH_ERR_FORMAT,
                      "no WinoGrande task in it (index,sentence with _,choice 1,choice 2,answer "
                      "per line%s%s)",
                      r.skip_why ? "; first problem: " : "", r.skip_why ? r.skip_why : "");
    if (!err && n_want > 0 && n_want < r.n) {
        /* llama-perplexity's random pick: a draw from those left, replaced
         * by the last of them */
        eval_task *sel = hr_calloc(n_want, sizeof *sel);
        size_t *aux = hr_calloc(r.n, sizeof *aux);
        if (!sel || !aux) err = HEARTH_ERR_NOMEM;
        eval_mt mt;
        eval_mt_seed(&mt, 1);
        size_t left = r.n;
        for (size_t i = 0; i < left && !err; i++) aux[i] = i;
        for (size_t i = 0; i < n_want && !err; i++) {
            const size_t j = mt_pick(&mt, left);
            sel[i] = r.v[aux[j]];
            r.v[aux[j]] = (eval_task){0};
            aux[j] = aux[--left];
        }
        free(aux);
        if (!err) {
            eval_tasks_free(&r);
            r.v = sel;
            r.n = n_want;
        } else {
            free(sel);
        }
    }
    if (err)
        eval_tasks_free(&r);
    else
        *out = r;
    return err;
}

/* ---- multiple choice ----------------------------------------------------- */

typedef struct mc_reader {
    const uint8_t *p, *end;
} mc_reader;

static bool mc_u32(mc_reader *r, uint32_t *v) {
    if (r->end - r->p < 4) return false;
    memcpy(v, r->p, 4);
    r->p += 4;
    return true;
}

static bool mc_string(mc_reader *r, char **out) {
    uint32_t n;
    if (!mc_u32(r, &n) || (size_t)(r->end - r->p) < n) return false;
    *out = dup_n((const char *)r->p, n);
    r->p += n;
    return *out != NULL;
}

/* One answer set: uint32 n <= 100, n strings, n int32 labels. */
static bool mc_answers(mc_reader *r, eval_task *t, bool keep) {
    uint32_t n;
    if (!mc_u32(r, &n) || n > 100) return false;
    char **a = calloc(n ? n : 1, sizeof *a);
    int32_t *labels = calloc(n ? n : 1, sizeof *labels);
    bool ok = a && labels;
    for (uint32_t i = 0; ok && i < n; i++) ok = mc_string(r, &a[i]);
    if (ok && (size_t)(r->end - r->p) / 4 < n) ok = false;
    if (ok) {
        memcpy(labels, r->p, (size_t)n * 4);
        r->p += (size_t)n * 4;
    }
    if (ok && keep) {
        t->endings = a;
        t->labels = labels;
        t->n_endings = (int)n;
        return true;
    }
    for (uint32_t i = 0; a && i < n; i++) free(a[i]);
    free(a);
    free(labels);
    return ok;
}

static hearth_err mc_task(mc_reader *r, size_t index, size_t at, eval_task *t) {
    t->gold = -1;
    if (!mc_string(r, &t->context) || !mc_answers(r, t, true) || !mc_answers(r, t, false))
        return hr_fail(HEARTH_ERR_FORMAT,
                       "task %zu (at byte %zu) is cut short or malformed (a question, then two "
                       "answer sets of at most 100)",
                       index + 1, at);
    /* llama-perplexity refuses these before scoring anything */
    bool empty = !*t->context || t->n_endings == 0;
    for (int i = 0; i < t->n_endings; i++) empty = empty || !*t->endings[i];
    if (empty)
        return hr_fail(HEARTH_ERR_FORMAT, "task %zu has an empty question, answer or answer set",
                       index + 1);
    return HEARTH_OK;
}

hearth_err eval_mc_read(const uint8_t *data, size_t size, size_t n_want, eval_tasks *out) {
    mc_reader rd = {data, data + size};
    uint32_t n_task = 0;
    if (!mc_u32(&rd, &n_task) || n_task == 0)
        return hr_fail(HEARTH_ERR_FORMAT, "no tasks (the file starts with its task count)");
    if ((size - 4) / 4 < n_task)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "%u tasks announced but %zu bytes cannot hold their %u offsets", n_task,
                       size, n_task);
    const uint8_t *pos = rd.p;
    rd.p += (size_t)n_task * 4;
    const bool pick = n_want > 0 && n_want < n_task;
    const size_t n = pick ? n_want : n_task;
    eval_tasks r = {.n_total = n_task};
    r.v = hr_calloc(n, sizeof *r.v);
    uint32_t *aux = pick ? hr_calloc(n_task, sizeof *aux) : NULL;
    hearth_err err = r.v && (!pick || aux) ? HEARTH_OK : HEARTH_ERR_NOMEM;
    eval_mt mt;
    eval_mt_seed(&mt, 1);
    size_t left = n_task;
    for (size_t i = 0; aux && i < left; i++) aux[i] = (uint32_t)i;
    for (size_t i = 0; i < n && !err; i++) {
        size_t index = i;
        if (pick) { /* as WinoGrande's pick, then read at the task's offset */
            const size_t j = mt_pick(&mt, left);
            index = aux[j];
            aux[j] = aux[--left];
            uint32_t at;
            memcpy(&at, pos + 4 * index, 4);
            if (at > size) {
                err = hr_fail(HEARTH_ERR_FORMAT, "task %zu's offset %u is past the end (%zu bytes)",
                              index + 1, at, size);
                break;
            }
            rd.p = data + at;
        }
        r.n = i + 1;
        err = mc_task(&rd, index, (size_t)(rd.p - data), &r.v[i]);
    }
    free(aux);
    if (err)
        eval_tasks_free(&r);
    else
        *out = r;
    return err;
}
