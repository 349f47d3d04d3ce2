/*
 * test_server_slots.c - llama-server's slot actions on `hearth serve
 * --slot-save-path DIR` (curl against the real program): POST
 * /slots/{id}?action=save writes the slot's KV cache to DIR/filename
 * ({"id_slot", "filename", "n_saved", "n_written", "timings": {"save_ms"}},
 * n_written the file's size), erase empties the slot ({"id_slot",
 * "n_erased"}), restore puts a file into a slot ({"n_restored", "n_read",
 * "timings": {"restore_ms"}}) and the next request whose prompt shares its
 * prefix is given that slot and reuses it (usage's cached_tokens), its text
 * the text of the same request on an empty server. A file name with a path
 * separator or "..", a bad slot id or action, a missing or corrupted file,
 * another model's file are refused with llama-server's errors (nothing
 * written outside DIR, DIR never named); without --slot-save-path the
 * actions answer 501. With two models the request's "model" (query or
 * body) picks the slots. An action on a busy slot waits for its request to
 * end (llama-server defers it): it saves every token of it.
 */
#include "test.h"

#include "model/synth.h"
#include "server/http_client.h"
#include "server/json_path.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_slots_XXXXXX";
static char slot_dir[4200];

static const char *prompt_a = "Once upon a time there was a little dog who";
static const char *prompt_b = "Once upon a time there was a little dog who liked the sun";

static cJSON *action(test_server *sv, const char *path, const char *body, int *status) {
    test_reply r = test_http(sv, "POST", path, body, NULL);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    *status = r.status;
    CHECKF(j != NULL, "%s: not JSON (%d): %.300s", path, r.status, r.body);
    free(r.body);
    return j;
}

/* An action refused with status and a message containing needle (never
 * the directory's name). */
static void refused(test_server *sv, const char *path, const char *body, int status,
                    const char *type, const char *needle) {
    int st;
    cJSON *j = action(sv, path, body, &st);
    const char *msg = jstr(j, "error.message");
    CHECKF(st == status && msg && strstr(msg, needle) && !strstr(msg, scratch) &&
               !strcmp(jstr(j, "error.type") ? jstr(j, "error.type") : "", type),
           "%s %s: %d %s", path, body ? body : "", st, msg ? msg : "(no message)");
    cJSON_Delete(j);
}

/* A completion (greedy, 8 tokens) of prompt; its text (malloc'd) and cached_tokens. */
static char *complete(test_server *sv, const char *model, const char *prompt, int *cached,
                      int *n_prompt) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"prompt\":\"%s\",\"max_tokens\":8,\"temperature\":0}", model,
             prompt);
    int st;
    cJSON *j = action(sv, "/v1/completions", body, &st);
    CHECKF(st == 200, "completion: %d", st);
    *cached = (int)jnum(j, "usage.prompt_tokens_details.cached_tokens");
    *n_prompt = (int)jnum(j, "usage.prompt_tokens");
    const char *t = jstr(j, "choices.0.text");
    char *text = strdup(t ? t : "(none)");
    cJSON_Delete(j);
    return text;
}

static long file_size(const char *name) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", slot_dir, name);
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_size;
}

/* save, erase, restore, and a request that reuses the restored prefix */
static void round_trip(test_server *sv, const char *model, const char *other) {
    int cached, n_a, n_b, st;
    char *first = complete(sv, model, prompt_a, &cached, &n_a);
    free(first);
    /* the slot that answered holds the prompt and the 8 tokens */
    cJSON *s0 = action(sv, "/slots/0?action=save", "{\"filename\":\"a.bin\"}", &st);
    CHECKF(st == 200 && jnum(s0, "id_slot") == 0 && !strcmp(jstr(s0, "filename"), "a.bin") &&
               jnum(s0, "n_saved") >= n_a && jnum(s0, "n_written") == (double)file_size("a.bin") &&
               jnum(s0, "timings.save_ms") >= 0,
           "save: %d", st);
    const int n_saved = (int)jnum(s0, "n_saved");
    cJSON_Delete(s0);
    cJSON *s1 = action(sv, "/slots/1?action=save", "{\"filename\":\"empty.bin\"}", &st);
    CHECK(st == 200 && jnum(s1, "n_saved") == 0 && file_size("empty.bin") > 0);
    cJSON_Delete(s1);
    /* erase: the slot forgets; twice: nothing left */
    cJSON *e = action(sv, "/slots/0?action=erase", NULL, &st);
    CHECKF(st == 200 && jnum(e, "id_slot") == 0 && jnum(e, "n_erased") == n_saved, "erase: %d %g",
           st, jnum(e, "n_erased"));
    cJSON_Delete(e);
    e = action(sv, "/slots/0?action=erase", "{}", &st);
    CHECK(st == 200 && jnum(e, "n_erased") == 0);
    cJSON_Delete(e);
    /* restore into the slot the request used last: with both slots free,
     * the next request sharing the prefix goes there (the other one would
     * win a tie: used less recently) and reuses it */
    cJSON *r = action(sv, "/slots/0?action=restore", "{\"filename\":\"a.bin\"}", &st);
    CHECKF(st == 200 && jnum(r, "id_slot") == 0 && !strcmp(jstr(r, "filename"), "a.bin") &&
               jnum(r, "n_restored") == n_saved &&
               jnum(r, "n_read") == (double)file_size("a.bin") &&
               jnum(r, "timings.restore_ms") >= 0,
           "restore: %d", st);
    cJSON_Delete(r);
    char *reused = complete(sv, model, prompt_b, &cached, &n_b);
    CHECKF(cached >= n_a - 1 && cached < n_b, "the restored prefix: %d of %d cached (%d before)",
           cached, n_b, n_a);
    /* the same request on empty slots: the same text, nothing cached */
    for (int i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "/slots/%d?action=erase", i);
        cJSON_Delete(action(sv, path, NULL, &st));
    }
    char *fresh = complete(sv, model, prompt_b, &cached, &n_b);
    CHECKF(cached == 0 && !strcmp(fresh, reused), "fresh '%s' (cached %d), restored '%s'", fresh,
           cached, reused);
    free(reused);
    free(fresh);
    /* the other model: its own slots, picked by the query or the body; a
     * file of the first model is refused */
    char path[512], body[512];
    snprintf(path, sizeof path, "/slots/0?action=save&model=%s", other);
    cJSON *o = action(sv, path, "{\"filename\":\"other.bin\"}", &st);
    CHECKF(st == 200 && jnum(o, "n_saved") == 0, "other model's save: %d", st);
    cJSON_Delete(o);
    snprintf(path, sizeof path, "/slots/0?action=restore&model=%s", other);
    refused(sv, path, "{\"filename\":\"a.bin\"}", 400, "invalid_request_error", "another model");
    snprintf(body, sizeof body, "{\"filename\":\"a.bin\",\"model\":\"%s\"}", other);
    refused(sv, "/slots/0?action=restore", body, 400, "invalid_request_error", "another model");
    snprintf(body, sizeof body, "{\"filename\":\"other.bin\",\"model\":\"%s\"}", model);
    refused(sv, "/slots/0?action=restore", body, 400, "invalid_request_error", "another model");
    refused(sv, "/slots/0?action=save&model=nosuch", "{\"filename\":\"x.bin\"}", 404,
            "not_found_error", "does not exist");
}

static void refusals(test_server *sv) {
    static const char *const names[] = {
        "../escape.bin", "sub/x.bin",  "..",        "a..b",      ".",
        "sub\\\\x.bin",  "",           " lead.bin", "dot.",      "a:b",
        "a*b",           "tab\\there", "a\\u2215b", "a\\uff0eb", "x?.bin",
        "a\\\"b",        "line\\nx",   "..\\u2216x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"filename\":\"%s\"}", names[i]);
        refused(sv, "/slots/0?action=save", body, 400, "invalid_request_error", "Invalid filename");
        refused(sv, "/slots/0?action=restore", body, 400, "invalid_request_error",
                "Invalid filename");
    }
    char long_name[300];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    char body[400];
    snprintf(body, sizeof body, "{\"filename\":\"%s\"}", long_name);
    refused(sv, "/slots/0?action=save", body, 400, "invalid_request_error", "Invalid filename");
    char escaped[4400];
    snprintf(escaped, sizeof escaped, "%s/escape.bin", scratch);
    CHECK(access(escaped, F_OK) != 0); /* nothing written outside DIR */
    refused(sv, "/slots/0?action=save", "{}", 400, "invalid_request_error", "'filename'");
    refused(sv, "/slots/0?action=save", "{\"filename\":7}", 400, "invalid_request_error",
            "'filename'");
    refused(sv, "/slots/0?action=save", NULL, 400, "invalid_request_error", "'filename'");
    refused(sv, "/slots/0?action=save", "[1]", 400, "invalid_request_error", "JSON object");
    refused(sv, "/slots/0?action=fly", "{\"filename\":\"a.bin\"}", 400, "invalid_request_error",
            "Invalid action");
    refused(sv, "/slots/0", "{\"filename\":\"a.bin\"}", 400, "invalid_request_error",
            "Invalid action");
    static const char *const ids[] = {"/slots/2?action=erase", "/slots/x?action=erase",
                                      "/slots/-1?action=erase", "/slots/99999999999?action=erase"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        refused(sv, ids[i], NULL, 400, "invalid_request_error", "Invalid slot ID");
    refused(sv, "/slots/0?action=restore", "{\"filename\":\"missing.bin\"}", 400,
            "invalid_request_error", "Unable to restore slot");
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/bad.bin", slot_dir);
    REQUIRE(test_write_file(bad, "HEARTHKV but cut short", 22));
    refused(sv, "/slots/0?action=restore", "{\"filename\":\"bad.bin\"}", 400,
            "invalid_request_error", "bad.bin");
    test_reply r = test_http(sv, "GET", "/slots/0?action=erase", NULL, NULL);
    CHECK(r.status == 405);
    free(r.body);
    r = test_http(sv, "POST", "/slots/?action=erase", NULL, NULL);
    CHECK(r.status == 404); /* no slot named: no such endpoint, as llama-server's */
    free(r.body);
}

/* An action on a busy slot waits for its request: a long generation (a
 * wider model, EOS banned, 1500 tokens: well over 200 ms anywhere these
 * tests run), then save and erase while it runs. */
static void busy_slot(void) {
    char slow[4300], args[9000], dir[4300];
    snprintf(dir, sizeof dir, "%s/busy", scratch);
    const int eos = fixture_slow_model(scratch, slow, sizeof slow);
    REQUIRE(eos >= 0);
    test_server sv;
    snprintf(args, sizeof args, "--ctx 2048 -t 1 --slot-save-path '%s'", dir);
    REQUIRE(test_server_start(&sv, binary, slow, scratch, args));
    char long_body[512], cmd[9000], bg[9100];
    snprintf(long_body, sizeof long_body,
             "{\"prompt\":\"Hello\",\"max_tokens\":1500,\"temperature\":0,"
             "\"logit_bias\":{\"%d\":-100}}",
             eos);
    const int n = sv.seq++;
    test_curl_cmd(&sv, cmd, sizeof cmd, "POST", "/v1/completions", long_body, strlen(long_body),
                  NULL, n);
    snprintf(bg, sizeof bg, "%s &", cmd);
    REQUIRE(system(bg) == 0);
    for (int t = 0; t < 500 && test_metric(&sv, "hearth_slots_busy") < 1; t++) test_sleep_ms(10);
    CHECK(test_metric(&sv, "hearth_slots_busy") == 1);
    int st;
    cJSON *s = action(&sv, "/slots/0?action=save", "{\"filename\":\"busy.bin\"}", &st);
    const int saved = (int)jnum(s, "n_saved");
    cJSON_Delete(s);
    cJSON *e = action(&sv, "/slots/0?action=erase", NULL, &st);
    const int erased = (int)jnum(e, "n_erased");
    cJSON_Delete(e);
    for (int t = 0; t < 600; t++) {
        test_reply r = test_collect(&sv, n);
        const bool done = r.status > 0;
        free(r.body);
        if (done) break;
        test_sleep_ms(100);
    }
    test_reply r = test_collect(&sv, n);
    cJSON *j = parse_reply(&r);
    const int total = (int)(jnum(j, "usage.prompt_tokens") + jnum(j, "usage.completion_tokens"));
    CHECKF(r.status == 200 && jnum(j, "usage.completion_tokens") == 1500, "the long request: %d",
           r.status);
    /* the last token drawn is not fed: the cache holds the others */
    CHECKF(saved >= total - 1 && saved <= total && erased == saved,
           "busy slot: saved %d, erased %d, the request had %d tokens", saved, erased, total);
    cJSON_Delete(j);
    free(r.body);
    CHECK(test_server_stop(&sv) == 0);
    unlink(slow);
}

int main(void) {
    bool skip = false;
    const char *model = fixture_server_model("test_server_slots", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model);
    char other[4300], args[9000], model_id[512];
    snprintf(other, sizeof other, "%s/other.gguf", scratch);
    synth_params p = synth_default_params();
    p.arch = "qwen2";
    p.n_ctx = 256;
    REQUIRE(synth_write(other, &p) == HEARTH_OK);
    snprintf(model_id, sizeof model_id, "%s", strrchr(model, '/') + 1);
    /* parents made at start-up */
    snprintf(slot_dir, sizeof slot_dir, "%s/a/b/slots", scratch);
    snprintf(args, sizeof args, "-m '%s' --parallel 2 --slot-save-path '%s'", other, slot_dir);
    test_server sv;
    REQUIRE(test_server_start(&sv, binary, model, scratch, args));
    round_trip(&sv, model_id, "other.gguf");
    refusals(&sv);
    CHECK(test_server_stop(&sv) == 0);

    /* without --slot-save-path: not supported */
    REQUIRE(test_server_start(&sv, binary, model, scratch, ""));
    refused(&sv, "/slots/0?action=erase", NULL, 501, "not_supported_error", "--slot-save-path");
    refused(&sv, "/slots/0?action=save", "{\"filename\":\"a.bin\"}", 501, "not_supported_error",
            "--slot-save-path");
    CHECK(test_server_stop(&sv) == 0);

    busy_slot();
    fixture_server_cleanup("test_server_slots", scratch, test_failures > 0);
    return test_done("server_slots");
}
