/*
 * test_server_lora.c - `hearth serve --lora-scaled`: the server's greedy
 * completion equals `hearth run`'s with the same adapter, and differs from
 * the base model's (a random adapter at scale 4 moves the logits far enough
 * to change the greedy tokens; the test says so when it does not).
 */
#include "test.h"

#include "server/http_client.h"
#include "server/model_fixture.h"

#include <cjson/cJSON.h>

/* `hearth run` greedy, its text on stdout. */
static char *run_text(const char *model, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' run -m '%s' -p 'Once upon a time' -n 12 --temp 0 -t 1 %s 2>/dev/null",
             HEARTH_BINARY, model, extra);
    FILE *f = popen(cmd, "r");
    REQUIRE(f);
    char *buf = calloc(1, 4096);
    REQUIRE(buf);
    const size_t n = fread(buf, 1, 4095, f);
    buf[n] = 0;
    CHECK(pclose(f) == 0);
    return buf;
}

static char *served_text(test_server *sv) {
    test_reply r = test_http(sv, "POST", "/v1/completions",
                             "{\"prompt\": \"Once upon a time\", \"max_tokens\": 12, "
                             "\"temperature\": 0}",
                             NULL);
    CHECKF(r.status == 200, "%d %s", r.status, r.body);
    cJSON *o = cJSON_Parse(r.body);
    const cJSON *c = o ? cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0) : NULL;
    const cJSON *t = c ? cJSON_GetObjectItem(c, "text") : NULL;
    char *s = strdup(cJSON_IsString(t) ? t->valuestring : "");
    cJSON_Delete(o);
    free(r.body);
    return s;
}

int main(void) {
    char scratch[] = "/tmp/hearth_srvlora_XXXXXX";
    bool skip;
    const char *model = fixture_server_model("test_server_lora", scratch, &skip);
    if (skip) return TEST_SKIP;
    REQUIRE(model);
    char adapter[600], cmd[2048], args[1024];
    snprintf(adapter, sizeof adapter, "%s/adapter.gguf", scratch);
    snprintf(cmd, sizeof cmd, "'%s' synth --lora-for '%s' -o '%s' > /dev/null 2>&1", HEARTH_BINARY,
             model, adapter);
    REQUIRE(system(cmd) == 0);
    snprintf(args, sizeof args, "--lora-scaled '%s' 4", adapter);
    char *want = run_text(model, args), *base = run_text(model, "");

    snprintf(args, sizeof args, "-t 1 --lora-scaled '%s' 4", adapter);
    test_server sv;
    REQUIRE(test_server_start(&sv, HEARTH_BINARY, model, scratch, args));
    char *got = served_text(&sv);
    CHECKF(!strcmp(got, want), "served '%s', hearth run '%s'", got, want);
    CHECKF(strcmp(got, base) != 0, "the adapter changed nothing: '%s'", got);
    CHECK(test_server_stop(&sv) == 0);

    /* a bad adapter stops the start-up with the reason */
    snprintf(args, sizeof args,
             "'%s' serve -m '%s' --port 0 --lora '%s' 2>&1 | grep -q 'not a LoRA adapter'",
             HEARTH_BINARY, model, model);
    CHECK(system(args) == 0);
    free(got);
    free(want);
    free(base);
    fixture_server_cleanup("test_server_lora", scratch, test_failures > 0);
    return test_done("test_server_lora");
}
