/*
 * test_bench.c - `hearth bench` as a program: its output formats, not its
 * speed (benchmarks never run as timed tests). On a small synthetic model:
 * -o jsonl gives one valid JSON object per test with llama-bench's field
 * names and consistent, positive numbers; the markdown table has one row per
 * test and names the ISA; bad arguments exit with 2, a missing file with 1.
 */
#include "test.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a strict JSON syntax check (RFC 8259 grammar, no semantics) ---- */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_string(const char *p) {
    if (*p++ != '"') return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i])) return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p) {
    const char *s = p;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (isdigit((unsigned char)*p))
        while (isdigit((unsigned char)*p)) p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return NULL;
        while (isdigit((unsigned char)*p)) p++;
    }
    return p > s ? p : NULL;
}

static const char *json_container(const char *p, int depth, char close, bool keys) {
    p = json_ws(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
        if (keys) {
            if (!(p = json_string(p))) return NULL;
            p = json_ws(p);
            if (*p++ != ':') return NULL;
        }
        if (!(p = json_value(json_ws(p), depth + 1))) return NULL;
        p = json_ws(p);
        if (*p == close) return p + 1;
        if (*p++ != ',') return NULL;
        p = json_ws(p);
    }
}

static const char *json_value(const char *p, int depth) {
    if (depth > 32) return NULL;
    switch (*p) {
    case '{': return json_container(p, depth, '}', true);
    case '[': return json_container(p, depth, ']', false);
    case '"': return json_string(p);
    case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
    default: return json_number(p);
    }
}

static bool json_is_object(const char *line) {
    const char *p = json_ws(line);
    if (*p != '{') return false;
    p = json_value(p, 0);
    return p && *json_ws(p) == '\0';
}

/* The number after "key": in a flat object; NAN when absent. */
static double field(const char *obj, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(obj, pat);
    if (!p) return NAN;
    char *end;
    double v = strtod(p + strlen(pat), &end);
    return end == p + strlen(pat) ? NAN : v;
}

/* The numbers of the array "key": [...]; returns the count or -1. */
static int field_array(const char *obj, const char *key, double *out, int cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": [", key);
    const char *p = strstr(obj, pat);
    if (!p) return -1;
    p += strlen(pat);
    int n = 0;
    while (*p && *p != ']') {
        char *end;
        double v = strtod(p, &end);
        if (end == p) return -1;
        if (n < cap) out[n] = v;
        n++;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
}

static bool has_string_field(const char *obj, const char *key, const char *value) {
    char pat[512];
    snprintf(pat, sizeof pat, "\"%s\": \"%s\"", key, value);
    return strstr(obj, pat) != NULL;
}

/* ---- running the program ---- */

/* Runs cmd, capturing stdout (up to cap bytes) and the exit status. */
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char model[128];
static char out[1 << 16];

static void check_jsonl(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s bench -m %s -p 8,16 -n 4 -t 1,2 -r 2 -o jsonl --latency --latency-prompt 6 "
             "2>/dev/null",
             HEARTH_BINARY, model);
    REQUIRE(run(cmd, out, sizeof out) == 0);
    int n_lines = 0, n_tests = 0, n_latency = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        n_lines++;
        CHECKF(json_is_object(line), "not a JSON object: %s", line);
        CHECK(has_string_field(line, "model_filename", model));
        CHECK(strstr(line, "\"model_type\": \"llama ") != NULL);
        CHECK(strstr(line, "\"isa\": \"") != NULL);
        const double threads = field(line, "n_threads");
        CHECK(threads == 1 || threads == 2);
        if (strstr(line, "\"test\": \"latency\"")) {
            n_latency++;
            CHECK(field(line, "n_prompt") == 6 && field(line, "n_gen") == 4);
            CHECK(field(line, "ttft_avg_ms") > 0);
            const double p50 = field(line, "tg_p50_ms"), p90 = field(line, "tg_p90_ms"),
                         p99 = field(line, "tg_p99_ms");
            CHECK(p50 > 0 && p50 <= p90 && p90 <= p99);
            continue;
        }
        n_tests++;
        const double np = field(line, "n_prompt"), ng = field(line, "n_gen");
        CHECK((np == 8 || np == 16) != (ng == 4) && (np == 0 || ng == 0));
        const double avg_ts = field(line, "avg_ts"), sd = field(line, "stddev_ts"),
                     avg_ns = field(line, "avg_ns");
        CHECK(avg_ts > 0 && sd >= 0 && avg_ns > 0);
        double ts[4], ns[4];
        REQUIRE(field_array(line, "samples_ts", ts, 4) == 2); /* read below */
        REQUIRE(field_array(line, "samples_ns", ns, 4) == 2);
        /* samples are tokens/s of each repetition; avg_ts is their mean */
        const double n_tok = np + ng;
        for (int i = 0; i < 2; i++)
            CHECK(ts[i] > 0 && fabs(ts[i] - 1e9 * n_tok / ns[i]) < 1e-3 * ts[i]);
        CHECK(fabs(avg_ts - (ts[0] + ts[1]) / 2) < 1e-3 * avg_ts);
        CHECK(fabs(avg_ns - (ns[0] + ns[1]) / 2) <= 1);
    }
    CHECKF(n_tests == 6 && n_latency == 2 && n_lines == 8, "%d tests, %d latency, %d lines",
           n_tests, n_latency, n_lines);
}

static void check_markdown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s bench -m %s -m %s -p 8 -n 4 -t 2 -r 1 2>&1", HEARTH_BINARY, model,
             model);
    REQUIRE(run(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "hearth bench: isa ") != NULL);
    CHECK(strstr(out, "| model | size MiB | params | isa | threads | test | t/s |") != NULL);
    int rows = 0;
    for (const char *p = out; (p = strstr(p, "| bench-model |")); p++) {
        rows++;
        const char *eol = strchr(p, '\n');
        const char *pm = strstr(p, " ± ");
        CHECK(eol && pm && pm < eol);
        CHECK((strstr(p, "| pp8 |") && strstr(p, "| pp8 |") < eol) ||
              (strstr(p, "| tg4 |") && strstr(p, "| tg4 |") < eol));
    }
    CHECKF(rows == 4, "%d rows", rows); /* 2 models x (pp8, tg4) */
}

/* -d: each test once per depth (llama-bench's n_depth and "@ dN" names). */
static void check_depth(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 8 -n 4 -d 0,20 -t 1 -r 2 -o jsonl 2>/dev/null",
             HEARTH_BINARY, model);
    REQUIRE(run(cmd, out, sizeof out) == 0);
    int seen[2][2] = {{0}}, n_lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        n_lines++;
        const double d = field(line, "n_depth"), np = field(line, "n_prompt");
        CHECKF((d == 0 || d == 20) && field(line, "avg_ts") > 0, "%s", line);
        if (d == 0 || d == 20) seen[np > 0][d > 0]++;
    }
    CHECKF(n_lines == 4 && seen[0][0] == 1 && seen[0][1] == 1 && seen[1][0] == 1 && seen[1][1] == 1,
           "%d lines at depths 0 and 20", n_lines);
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 8 -n 0 -d 20 -t 1 -r 1 2>&1", HEARTH_BINARY,
             model);
    REQUIRE(run(cmd, out, sizeof out) == 0);
    CHECKF(strstr(out, "| pp8 @ d20 |") != NULL, "%s", out);
}

static void check_errors(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s bench -p 8 2>/dev/null", HEARTH_BINARY);
    CHECK(run(cmd, out, sizeof out) == 2); /* no model */
    snprintf(cmd, sizeof cmd, "%s bench -m %s -o xml 2>/dev/null", HEARTH_BINARY, model);
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s bench -m %s -p 8,x 2>/dev/null", HEARTH_BINARY, model);
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s bench -m %s.missing -p 8 2>/dev/null", HEARTH_BINARY, model);
    CHECK(run(cmd, out, sizeof out) == 1);
}

int main(void) {
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test_bench.XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(model, sizeof model, "%s/bench-model.gguf", dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s synth -o %s --type q8_0 --layers 2 >/dev/null", HEARTH_BINARY,
             model);
    REQUIRE(system(cmd) == 0);
    check_jsonl();
    check_markdown();
    check_depth();
    check_errors();
    remove(model);
    rmdir(dir);
    return test_done("test_bench");
}
