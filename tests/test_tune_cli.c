/*
 * test_tune_cli.c - `hearth tune` as a user runs it, without training: each
 * usage error exits 2 with a message, a bad example or model exits 1 naming
 * what failed (file:line), and --dry-run prints the data's statistics (text
 * and --json), the adapter's size and the plan, and writes nothing. The
 * training itself is test_tune's.
 */
#include "gateway/gateway.h"
#include "model/synth.h"
#include "test.h"
#include "test_sh.h"

#include <cjson/cJSON.h>

#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static char *path(const char *name) {
    static char p[8][128];
    static int k;
    char *s = p[k++ % 8];
    snprintf(s, sizeof p[0], "%s/%s", dir, name);
    return s;
}

static void write_file(const char *p, const char *text) {
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

/* The whole of file p (malloc'd, NUL-terminated). */
static char *slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    REQUIRE(f);
    char *s = calloc(1 << 16, 1);
    REQUIRE(s);
    s[fread(s, 1, (1 << 16) - 1, f)] = '\0';
    fclose(f);
    return s;
}

/* `hearth tune ARGS` exits `code` and its stderr holds `says`. */
static void usage_case(const char *args, int code, const char *says) {
    const char *err = path("err.txt");
    const int rc = test_sh("%s tune %s >/dev/null 2>%s", HEARTH_BINARY, args, err);
    char *e = slurp(err);
    CHECKF(rc == code && strstr(e, says), "'tune %s': exit %d, stderr '%s'", args, rc, e);
    free(e);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/test_tune_cli.XXXXXX");
    REQUIRE(mkdtemp(dir));
    char model[128], data[128], bad[128], out[128], m[512];
    snprintf(model, sizeof model, "%s", path("m.gguf"));
    snprintf(data, sizeof data, "%s", path("d.jsonl"));
    snprintf(bad, sizeof bad, "%s", path("bad.jsonl"));
    snprintf(out, sizeof out, "%s", path("out.gguf"));
    synth_params p = synth_default_params();
    p.n_embd = 64, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.head_dim = 32, p.n_ff = 128;
    p.n_ctx = 256;
    REQUIRE(synth_write(model, &p) == HEARTH_OK);
    write_file(data, "{\"prompt\": \"What is two plus two?\", \"completion\": \"Four.\"}\n"
                     "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}, {\"role\": "
                     "\"assistant\", \"content\": \"Hi there\"}]}\n"
                     "\n"
                     "{\"prompt\": \"nothing\", \"completion\": \"\"}\n");
    write_file(bad, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n");

    /* usage errors: 2 */
    CHECK(test_sh("%s tune >/dev/null 2>&1", HEARTH_BINARY) == 2);
    CHECK(test_sh("%s tune --help | grep -q -- --from-ledger", HEARTH_BINARY) == 0);
    snprintf(m, sizeof m, "--data %s -o %s", data, out);
    usage_case(m, 2, "-m MODEL is required");
    snprintf(m, sizeof m, "-m %s -o %s", model, out);
    usage_case(m, 2, "give --data FILE or --from-ledger DB");
    snprintf(m, sizeof m, "-m %s --data %s", model, data);
    usage_case(m, 2, "-o OUT.gguf is required");
    snprintf(m, sizeof m, "-m %s --data %s -o %s --frobnicate 3", model, data, out);
    usage_case(m, 2, "unknown option '--frobnicate'");
    snprintf(m, sizeof m, "-m %s --data %s -o %s --rank", model, data, out);
    usage_case(m, 2, "'--rank' needs a value");
    static const char *const bad_values[] = {
        "--rank 0",   "--rank x",         "--epochs 0",       "--batch -1",  "--lr 0",
        "--lr 2e-4x", "--alpha -1",       "--val-share 0.95", "--clip -1",   "--max-len 1",
        "--seed -3",  "--weight-decay 2", "--warmup -1",      "--threads 0",
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
        snprintf(m, sizeof m, "-m %s --data %s -o %s %s", model, data, out, bad_values[i]);
        usage_case(m, 2, "bad value");
    }
    snprintf(m, sizeof m, "-m %s --data %s -o %s --targets attn_q,nose", model, data, out);
    usage_case(m, 2, "--targets");
    snprintf(m, sizeof m, "-m %s --data %s -o %s --since 7d", model, data, out);
    usage_case(m, 2, "--since goes with --from-ledger");
    snprintf(m, sizeof m, "-m %s --from-ledger %s -o %s --since yesterday", model, path("l.db"),
             out);
    usage_case(m, 2, "--since");
    snprintf(m, sizeof m, "-m %s --data %s -o %s stray", model, data, out);
    usage_case(m, 2, "unexpected argument 'stray'");

    /* runtime errors: 1, naming what failed */
    snprintf(m, sizeof m, "-m %s --data %s -o %s", model, bad, out);
    char want[160];
    snprintf(want, sizeof want, "%s:2: needs \"prompt\" and \"completion\"", bad);
    usage_case(m, 1, want);
    snprintf(m, sizeof m, "-m %s --data %s -o %s", path("absent.gguf"), data, out);
    usage_case(m, 1, "loading the model");
    snprintf(m, sizeof m, "-m %s --from-ledger %s -o %s", model, data, out);
    usage_case(m, 1, "not a Hearth ledger");
    snprintf(m, sizeof m, "-m %s --data %s -o %s --template nosuch", model, data, out);
    usage_case(m, 1, "the chat template");
    snprintf(m, sizeof m, "-m %s --data %s -o %s/no/such/dir/out.gguf", model, data, dir);
    usage_case(m, 1, "cannot write");

    /* --dry-run: the statistics, nothing written */
    const char *txt = path("dry.txt");
    CHECK(test_sh("%s tune -m %s --data %s --data %s --dry-run --rank 4 --targets attn_q,attn_v "
                  ">%s 2>/dev/null",
                  HEARTH_BINARY, model, data, data, txt) == 0);
    char *s = slurp(txt);
    CHECKF(strstr(s, "data: 4 examples (4 train, 0 validation); 2 skipped, 0 longer than 512"),
           "%s", s);
    CHECKF(strstr(s, "adapter: rank 4, alpha 16, 2 matrices (attn_q,attn_v)"), "%s", s);
    CHECKF(strstr(s, "plan: 1 epoch x 1 step (batch 4 examples)"), "%s", s);
    CHECK(!strstr(s, "step 1"));
    free(s);
    CHECK(access(out, F_OK) != 0);
    const char *js = path("dry.json");
    CHECK(test_sh("%s tune -m %s --data %s --dry-run --json --max-len 60 --batch 1 --epochs 3 >%s "
                  "2>/dev/null",
                  HEARTH_BINARY, model, data, js) == 0);
    s = slurp(js);
    char *line2 = strchr(s, '\n');
    REQUIRE(line2);
    *line2++ = '\0';
    cJSON *d = cJSON_Parse(s), *plan = cJSON_Parse(line2);
    REQUIRE(d && plan);
    const struct {
        const cJSON *o;
        const char *key;
        double want;
    } fields[] = {
        {d, "examples", 1},  {d, "train", 1},    {d, "validation", 0}, {d, "skipped", 1},
        {d, "too_long", 1},  {plan, "rank", 8},  {plan, "alpha", 16},  {plan, "matrices", 7},
        {plan, "epochs", 3}, {plan, "steps", 3}, {plan, "batch", 1},   {plan, "lr", 2e-4},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields[i].o, fields[i].key);
        CHECKF(cJSON_IsNumber(v) && v->valuedouble == fields[i].want, "\"%s\" %g, not %g",
               fields[i].key, v ? v->valuedouble : -1.0, fields[i].want);
    }
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(d, "event");
    CHECK(cJSON_IsString(ev) && !strcmp(ev->valuestring, "data"));
    const cJSON *longest = cJSON_GetObjectItemCaseSensitive(d, "longest");
    CHECK(cJSON_IsNumber(longest) && longest->valuedouble > 1 && longest->valuedouble <= 60);
    cJSON_Delete(d);
    cJSON_Delete(plan);
    free(s);

    /* --from-ledger with --since: an hour back keeps the recent row only */
    const char *db = path("ledger.db");
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(db, &l) == HEARTH_OK);
    for (int i = 0; i < 2; i++) {
        gw_ledger_row r = gw_ledger_row_init();
        r.time_ms = gw_now_ms() - (i ? 2 * 3600 * 1000 : 1000);
        r.route = GW_ROUTE_ESCALATED;
        r.tier = "cloud";
        r.status = 200;
        r.prompt = i ? "an old question" : "a new question";
        r.remote_answer = "the cloud's answer";
        REQUIRE(gw_ledger_add(l, &r, NULL) == HEARTH_OK);
    }
    gw_ledger_close(l);
    CHECK(test_sh(
              "%s tune -m %s --from-ledger %s --since 1h --data %s --dry-run 2>/dev/null | grep -q "
              "'^data: 3 examples (3 train, 0 validation); 1 skipped'",
              HEARTH_BINARY, model, db, data) == 0);
    CHECK(test_sh(
              "%s tune -m %s --from-ledger %s --dry-run 2>/dev/null | grep -q '^data: 2 examples'",
              HEARTH_BINARY, model, db) == 0);

    if (test_failures)
        printf("test_tune_cli: files kept in %s\n", dir);
    else
        CHECK(test_sh("rm -rf '%s'", dir) == 0);
    return test_done("test_tune_cli");
}
