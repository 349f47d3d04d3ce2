/*
 * http_client.h - what the server's integration test uses to drive a real
 * `hearth serve` process: start it on a free loopback port and wait until it
 * is ready, stop it, and make requests with curl (a client no one on the
 * team wrote), reading status and body back.
 */
#ifndef HEARTH_TEST_HTTP_CLIENT_H
#define HEARTH_TEST_HTTP_CLIENT_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct test_server {
    pid_t pid;
    int port;
    char log[512];     /* the server's stderr */
    char scratch[512]; /* a directory for request and response files */
    int seq;
} test_server;

typedef struct test_reply {
    int status;
    char *body; /* NUL-terminated, malloc'd */
    size_t len;
} test_reply;

static inline void test_sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

static inline bool test_write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    const bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Runs `hearth serve --port 0 <args>` with stderr to a log file and waits
 * (up to 120 s) until it listens and /health answers 200. */
static inline bool test_server_start_args(test_server *sv, const char *binary, const char *scratch,
                                          const char *args) {
    memset(sv, 0, sizeof *sv);
    snprintf(sv->scratch, sizeof sv->scratch, "%s", scratch);
    static int n_started;
    snprintf(sv->log, sizeof sv->log, "%s/server%d.log", scratch, n_started++);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec '%s' serve --host 127.0.0.1 --port 0 %s 2>'%s'", binary, args,
             sv->log);
    sv->pid = fork();
    if (sv->pid < 0) return false;
    if (sv->pid == 0) {
        /* the server dies with the test, however the test ends (a failed
         * REQUIRE exits at once): a server left behind would hold ctest's
         * output pipe open and hang it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1200 && !sv->port; i++) {
        test_sleep_ms(100);
        char *log = test_read_file(sv->log, NULL);
        const char *p = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;
        if (p) sv->port = atoi(p + strlen("listening on http://127.0.0.1:"));
        free(log);
        int st;
        if (waitpid(sv->pid, &st, WNOHANG) == sv->pid) {
            sv->pid = 0;
            return false;
        }
    }
    if (!sv->port) return false;
    for (int i = 0; i < 1200; i++) {
        char c[1024];
        snprintf(c, sizeof c, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/health",
                 sv->port);
        FILE *p = popen(c, "r");
        char out[16] = "";
        if (p) {
            if (!fgets(out, sizeof out, p)) out[0] = '\0';
            pclose(p);
        }
        if (!strcmp(out, "200")) return true;
        test_sleep_ms(100);
    }
    return false;
}

/* The same with `-m model` first. */
static inline bool test_server_start(test_server *sv, const char *binary, const char *model,
                                     const char *scratch, const char *args) {
    char all[6144];
    snprintf(all, sizeof all, "-m '%s' %s", model, args);
    return test_server_start_args(sv, binary, scratch, all);
}

/* SIGTERM, then waits up to 30 s (SIGKILL after). Returns the exit status. */
static inline int test_server_stop(test_server *sv) {
    if (sv->pid <= 0) return -1;
    kill(sv->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 300; i++) {
        if (waitpid(sv->pid, &st, WNOHANG) == sv->pid) {
            sv->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        test_sleep_ms(100);
    }
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, &st, 0);
    sv->pid = 0;
    return -1;
}

/* The curl command for one request (body from a file, response to files).
 * extra: more curl arguments (headers). */
static inline void test_curl_cmd(test_server *sv, char *cmd, size_t cap, const char *method,
                                 const char *path, const char *body, size_t body_len,
                                 const char *extra, int n) {
    char req[600];
    snprintf(req, sizeof req, "%s/req%d", sv->scratch, n);
    if (body) test_write_file(req, body, body_len);
    snprintf(cmd, cap,
             "curl -s -S -N -X %s %s%s%s -H 'Content-Type: application/json' %s "
             "-o '%s/resp%d' -w '%%{http_code}' 'http://127.0.0.1:%d%s' > '%s/code%d'",
             method, body ? "--data-binary '@" : "", body ? req : "", body ? "'" : "",
             extra ? extra : "", sv->scratch, n, sv->port, path, sv->scratch, n);
}

static inline test_reply test_collect(test_server *sv, int n) {
    test_reply r = {0};
    char p[600];
    snprintf(p, sizeof p, "%s/code%d", sv->scratch, n);
    char *code = test_read_file(p, NULL);
    r.status = code ? atoi(code) : -1;
    free(code);
    snprintf(p, sizeof p, "%s/resp%d", sv->scratch, n);
    r.body = test_read_file(p, &r.len);
    if (!r.body) r.body = calloc(1, 1);
    return r;
}

static inline test_reply test_http(test_server *sv, const char *method, const char *path,
                                   const char *body, const char *extra) {
    char cmd[4096];
    const int n = sv->seq++;
    test_curl_cmd(sv, cmd, sizeof cmd, method, path, body, body ? strlen(body) : 0, extra, n);
    if (system(cmd) == -1) return (test_reply){.status = -1, .body = calloc(1, 1)};
    return test_collect(sv, n);
}

/* test_http with the response's headers (curl -D) in headers[cap] ("" when
 * none came). */
static inline test_reply test_http_headers(test_server *sv, const char *method, const char *path,
                                           const char *body, const char *extra, char *headers,
                                           size_t cap) {
    char args[2048], hpath[600];
    snprintf(hpath, sizeof hpath, "%s/h%d", sv->scratch, sv->seq);
    snprintf(args, sizeof args, "-D '%s' %s", hpath, extra ? extra : "");
    test_reply r = test_http(sv, method, path, body, args);
    char *h = test_read_file(hpath, NULL);
    snprintf(headers, cap, "%s", h ? h : "");
    free(h);
    return r;
}

/* A reply with its JSON (NULL when the body is not JSON, e.g. a stream) and
 * headers (test_http_headers). Free with test_json_done. */
typedef struct test_json_reply {
    int status;
    char *body;
    cJSON *json;
    char headers[4096];
} test_json_reply;

static inline test_json_reply test_http_json(test_server *sv, const char *method, const char *path,
                                             const char *body, const char *extra) {
    test_json_reply out;
    test_reply r =
        test_http_headers(sv, method, path, body, extra, out.headers, sizeof out.headers);
    out.status = r.status;
    out.body = r.body;
    out.json = cJSON_Parse(r.body);
    return out;
}

static inline void test_json_done(test_json_reply *r) {
    cJSON_Delete(r->json);
    free(r->body);
}

/* The value of a /metrics line `name value` (-1: absent). */
static inline long test_metric(test_server *sv, const char *name) {
    test_reply r = test_http(sv, "GET", "/metrics", NULL, NULL);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = r.body ? strstr(r.body, key) : NULL;
    const long v = at ? atol(at + strlen(key)) : -1;
    free(r.body);
    return v;
}

/* Runs the node script source_dir/tests/server/<script> with args, using an
 * official client package (openai, @anthropic-ai/sdk) from
 * $HEARTH_NODE_MODULES (default source_dir/build/npm/node_modules). Returns
 * the script's exit status (0: its checks passed), or -1 when node or the
 * package is missing - which scripts/test.sh turns into a failure by setting
 * HEARTH_REQUIRE_OPENAI_CLIENT, so CI cannot skip it unnoticed. */
static inline int test_node_script(const char *source_dir, const char *package, const char *script,
                                   const char *args) {
    char mods[4096], probe[4300], cmd[9000];
    const char *env = getenv("HEARTH_NODE_MODULES");
    snprintf(mods, sizeof mods, "%s", env ? env : "");
    if (!env) snprintf(mods, sizeof mods, "%s/build/npm/node_modules", source_dir);
    snprintf(probe, sizeof probe, "%s/%s/package.json", mods, package);
    if (access(probe, R_OK) != 0 || system("node --version > /dev/null 2>&1") != 0) {
        const bool required = getenv("HEARTH_REQUIRE_OPENAI_CLIENT") != NULL;
        printf("%s the %s npm client (%s): no node, or no %s (scripts/test.sh installs it)\n",
               required ? "FAILED: cannot run" : "skipping", package, script, probe);
        return required ? 1 : -1;
    }
    snprintf(cmd, sizeof cmd, "HEARTH_NODE_MODULES='%s' node '%s/tests/server/%s' %s", mods,
             source_dir, script, args);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The events of a text/event-stream body: "data: <json>\n\n" each, then
 * "data: [DONE]\n\n" (which sets *done) and nothing after. Returns 1 with
 * the next event parsed into *out (the caller deletes it), 0 at the end, -1
 * when the framing is broken or an event is not JSON. *p walks the body. */
static inline int test_sse_next(const char **p, bool *done, cJSON **out) {
    *out = NULL;
    while (**p) {
        const char *end = strstr(*p, "\n\n");
        if (strncmp(*p, "data: ", 6) != 0 || !end || *done) return -1;
        const char *data = *p + 6;
        *p = end + 2;
        if (end - data == 6 && !strncmp(data, "[DONE]", 6)) {
            *done = true;
            continue;
        }
        return (*out = cJSON_ParseWithLength(data, (size_t)(end - data))) ? 1 : -1;
    }
    return 0;
}

#endif
