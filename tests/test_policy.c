/*
 * test_policy.c - the gateway's decisions: the configuration file (a full
 * example, and errors that name the field), prices and costs in integer
 * micro-dollars, the routing policy as a table of signals -> route, tier and
 * reason, the confidence measure, and the cascade end to end with a scripted
 * local model and the fake cloud on loopback: kept local, escalated on low
 * confidence, explicit tiers, rules, the router hook, privacy (redacted on
 * the wire, restored in the stream, blocked, refused), air gap, a tier that
 * is down (degraded), failover between remote tiers, a stream that breaks;
 * and exactly one ledger row per request.
 */
#include "test.h"

#include "gateway/fake_cloud.h"
#include "gateway/gateway.h"
#include "gateway/ledger_query.h"

#include <math.h>

static fake_cloud fc;

/* ---- configuration ----------------------------------------------------------- */

static const char example[] =
    "{\"tiers\": [\n"
    "  {\"name\": \"cloud\", \"kind\": \"openai\", \"base_url\": \"https://api.openai.com/v1\",\n"
    "   \"model\": \"gpt-4o-mini\", \"api_key_env\": \"OPENAI_API_KEY\",\n"
    "   \"price_per_mtok\": {\"input\": 0.15, \"output\": \"0.60\"}, \"timeout_ms\": 30000,\n"
    "   \"retries\": 3},\n"
    "  {\"name\": \"claude\", \"kind\": \"anthropic\", \"base_url\": "
    "\"https://api.anthropic.com\",\n"
    "   \"model\": \"claude-3-5-haiku-latest\", \"api_key_env\": \"ANTHROPIC_API_KEY\",\n"
    "   \"price_per_mtok\": {\"input\": 0.8, \"output\": 4}}],\n"
    " \"local\": {\"price_per_mtok\": {\"input\": 0.01, \"output\": 0.02}},\n"
    " \"routing\": {\"escalate_to\": \"claude\", \"reference_tier\": \"cloud\",\n"
    "   \"router_threshold\": 0.6, \"confidence\": {\"mean_logprob\": -0.8, \"min_logprob\": "
    "null},\n"
    "   \"rules\": [{\"name\": \"long\", \"min_chars\": 100, \"route\": \"cloud\"},\n"
    "             {\"name\": \"code\", \"task\": \"code\", \"route\": \"claude\"},\n"
    "             {\"name\": \"legal\", \"pattern\": \"(?i)\\\\b(contract|lawsuit)\\\\b\", "
    "\"route\": \"cloud\"},\n"
    "             {\"name\": \"chitchat\", \"max_chars\": 20, \"route\": \"local\",\n"
    "              \"confidence\": {\"mean_logprob\": -2.5}}]},\n"
    " \"privacy\": {\"actions\": {\"SSN\": \"block\", \"IP_ADDRESS\": \"allow\"}, \"on_block\": "
    "\"local\",\n"
    "   \"dates_of_birth\": \"all\"},\n"
    " \"ledger_prompts\": true}\n";

static hearth_err parse(gw_config *c, const char *json) {
    gw_config_init(c);
    hearth_err err = gw_config_parse(c, json, strlen(json), "test.json");
    if (!err) err = gw_config_finish(c);
    return err;
}

static void expect_error(const char *json, const char *needle) {
    gw_config c;
    const hearth_err err = parse(&c, json);
    CHECKF(err != HEARTH_OK && strstr(hearth_last_error(), needle), "%s -> '%s' (want '%s')", json,
           err ? hearth_last_error() : "ok", needle);
    gw_config_fini(&c);
}

static void test_config(void) {
    gw_config c;
    REQUIRE(parse(&c, example) == HEARTH_OK);
    CHECK(c.n_tiers == 3 && !strcmp(c.tiers[0].name, "local"));
    const gw_tier *t = &c.tiers[1];
    CHECK(!strcmp(t->name, "cloud") && t->kind == GW_TIER_OPENAI);
    CHECK(!strcmp(t->url, "https://api.openai.com/v1/chat/completions"));
    CHECK(!strcmp(t->api_key_env, "OPENAI_API_KEY") && t->retries == 3 && t->timeout_ms == 30000);
    CHECK(t->price_in_usd_micro == 150000 && t->price_out_usd_micro == 600000);
    CHECK(c.tiers[2].kind == GW_TIER_ANTHROPIC &&
          !strcmp(c.tiers[2].url, "https://api.anthropic.com/v1/messages"));
    CHECK(c.tiers[2].price_out_usd_micro == 4000000 && c.tiers[2].retries == 2);
    CHECK(c.tiers[0].price_in_usd_micro == 10000 && c.tiers[0].price_out_usd_micro == 20000);
    CHECK(!strcmp(c.escalate_to, "claude") && !strcmp(c.reference_tier, "cloud"));
    CHECK(c.router_threshold == 0.6 && c.conf.mean_logprob == -0.8);
    CHECK(c.conf.min_logprob == -INFINITY && c.conf.min_tokens == 4);
    CHECK(c.n_rules == 4 && c.rules[2].re != NULL && c.rules[3].has_conf);
    CHECK(c.rules[3].conf.mean_logprob == -2.5 && c.rules[3].conf.min_logprob == -INFINITY);
    CHECK(c.pii[GW_ENT_SSN] == GW_PII_BLOCK && c.pii[GW_ENT_IP] == GW_PII_ALLOW);
    CHECK(c.pii[GW_ENT_EMAIL] == GW_PII_REDACT && !c.block_refuses);
    CHECK(c.dob_mode == GW_DOB_ALL && c.ledger_prompts && !c.air_gapped);
    gw_config_fini(&c);

    expect_error("{\"tiers\": [{\"name\": \"x\", \"base_url\": \"http://h\", \"model\": \"m\", "
                 "\"api_key\": \"sk-123\"}]}",
                 "tiers[0].api_key: unknown key");
    expect_error("{\"tiers\": [{\"name\": \"x\", \"kind\": \"gemini\", \"base_url\": \"http://h\", "
                 "\"model\": \"m\"}]}",
                 "tiers[0].kind");
    expect_error("{\"tiers\": [{\"name\": \"x\", \"base_url\": \"h\", \"model\": \"m\"}]}",
                 "tiers[0].base_url");
    expect_error("{\"tiers\": [{\"name\": \"x\", \"base_url\": \"http://h\"}]}",
                 "tiers[0].model: missing");
    expect_error("{\"tiers\": [{\"name\": \"x\", \"base_url\": \"http://h\", \"model\": \"m\", "
                 "\"price_per_mtok\": {\"input\": \"0.0000001\"}}]}",
                 "price_per_mtok.input");
    expect_error("{\"tiers\": [{\"name\": \"x\", \"base_url\": \"http://h\", \"model\": \"m\", "
                 "\"retries\": 2.5}]}",
                 "tiers[0].retries");
    expect_error("{\"tiers\": [{\"name\": \"local\", \"base_url\": \"http://h\", \"model\": "
                 "\"m\"}]}",
                 "not local or auto");
    expect_error("{\"tiers\": [{\"name\": \"a\", \"base_url\": \"http://h\", \"model\": \"m\"}, "
                 "{\"name\": \"a\", \"base_url\": \"http://h\", \"model\": \"m\"}]}",
                 "two tiers are named 'a'");
    expect_error("{\"routing\": {\"escalate_to\": \"nope\"}}", "escalate_to: no remote tier");
    expect_error("{\"routing\": {\"rules\": [{\"route\": \"nope\"}]}}", "route 'nope'");
    expect_error("{\"routing\": {\"rules\": [{\"route\": \"local\", \"pattern\": \"(\"}]}}",
                 "pattern at");
    expect_error("{\"routing\": {\"rulez\": []}}", "routing.rulez: unknown key");
    expect_error("{\"privacy\": {\"actions\": {\"NAME\": \"redact\"}}}", "is not an entity");
    expect_error("{\"privacy\": {\"actions\": {\"EMAIL\": \"hide\"}}}", "must be \"redact\"");
    expect_error("[1, 2]", "must be an object");
    expect_error("{\"tiers\": [", "not valid JSON");

    /* the --cloud-* flags */
    gw_config_init(&c);
    CHECK(gw_config_add_cloud(&c, "http://127.0.0.1:9/", "big", "KEY_VAR", "2.5,10") == HEARTH_OK);
    CHECK(gw_config_finish(&c) == HEARTH_OK);
    CHECK(c.n_tiers == 2 && !strcmp(c.tiers[1].name, "cloud"));
    CHECK(!strcmp(c.tiers[1].url, "http://127.0.0.1:9/v1/chat/completions"));
    CHECK(c.tiers[1].price_in_usd_micro == 2500000 && c.tiers[1].price_out_usd_micro == 10000000);
    CHECK(!strcmp(c.escalate_to, "cloud") && !strcmp(c.reference_tier, "cloud"));
    CHECK(gw_config_add_cloud(&c, "http://x", "m", NULL, NULL) == HEARTH_ERR_INVALID_ARG);
    gw_config_fini(&c);
    gw_config_init(&c);
    CHECK(gw_config_add_cloud(&c, "http://x", "m", NULL, "1") == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_config_add_cloud(&c, "http://x", NULL, NULL, NULL) == HEARTH_ERR_INVALID_ARG);
    gw_config_fini(&c);

    /* money */
    int64_t v = -1;
    CHECK(gw_parse_usd("0.15", &v) == HEARTH_OK && v == 150000);
    CHECK(gw_parse_usd("15", &v) == HEARTH_OK && v == 15000000);
    CHECK(gw_parse_usd(".5", &v) == HEARTH_OK && v == 500000);
    CHECK(gw_parse_usd("0.000001", &v) == HEARTH_OK && v == 1);
    CHECK(gw_parse_usd("1.2500000", &v) == HEARTH_OK && v == 1250000);
    CHECK(gw_parse_usd("0.0000005", &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_usd("-1", &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_usd("1e3", &v) == HEARTH_ERR_INVALID_ARG);
    CHECK(gw_parse_usd("", &v) == HEARTH_ERR_INVALID_ARG);
    gw_tier t2 = gw_tier_default();
    t2.price_in_usd_micro = 150000;  /* $0.15 / Mtok */
    t2.price_out_usd_micro = 600000; /* $0.60 / Mtok */
    CHECK(gw_cost_usd_micro(&t2, 1000000, 1000000) == 750000);
    CHECK(gw_cost_usd_micro(&t2, 1000, 500) == 450); /* 150 + 300 */
    CHECK(gw_cost_usd_micro(&t2, 3, 0) == 0);        /* 0.45 rounds down */
    CHECK(gw_cost_usd_micro(&t2, 4, 0) == 1);        /* 0.6 rounds up */
    t2.price_in_usd_micro = INT64_MAX / 2;
    CHECK(gw_cost_usd_micro(&t2, INT32_MAX, 0) > 0); /* no overflow */
}

/* ---- the policy ------------------------------------------------------------------ */

static gw_signals signals(const char *model, const char *text) {
    gw_signals s;
    memset(&s, 0, sizeof s);
    s.model = model;
    s.text = text;
    s.text_len = strlen(text);
    s.router_score = NAN;
    s.router_threshold = NAN;
    for (int i = 0; i < GW_MAX_TIERS; i++) s.available[i] = true;
    return s;
}

static void expect_route(const gw_config *c, const gw_signals *s, gw_route route, int tier,
                         bool check, const char *reason) {
    gw_decision d;
    gw_policy_decide(c, s, &d);
    CHECKF(!d.refuse && d.route == route && d.tier == tier && d.check_confidence == check &&
               strstr(d.reason, reason),
           "model=%s text=\"%.30s\": got %s tier %d check %d refuse %d \"%s\", want %s tier %d "
           "check %d \"%s\"",
           s->model ? s->model : "(null)", s->text, gw_route_name(d.route), d.tier,
           d.check_confidence, d.refuse, d.reason, gw_route_name(route), tier, check, reason);
}

static void expect_refusal(const gw_config *c, const gw_signals *s, int status,
                           const char *reason) {
    gw_decision d;
    gw_policy_decide(c, s, &d);
    CHECKF(d.refuse && d.refuse_status == status && strstr(d.reason, reason), "%d %d \"%s\"",
           d.refuse, d.refuse_status, d.reason);
}

static void test_policy(void) {
    gw_config c;
    REQUIRE(parse(&c, example) == HEARTH_OK);
    gw_signals s = signals("auto", "what is the capital of France, please?");
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, true, "local: confidence check");
    s = signals("local", "x");
    expect_route(&c, &s, GW_ROUTE_EXPLICIT, 0, false, "explicit: local");
    s = signals("claude", "x");
    expect_route(&c, &s, GW_ROUTE_EXPLICIT, 2, false, "explicit: claude requested");
    s = signals("gpt-4", "what is the capital of France, please?"); /* unknown name: auto */
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, true, "confidence check");
    s = signals("local", "x");
    s.tier_header = "cloud"; /* the header wins over the model */
    expect_route(&c, &s, GW_ROUTE_EXPLICIT, 1, false, "explicit: cloud");
    s.tier_header = "nope";
    expect_refusal(&c, &s, 400, "no tier named 'nope'");
    /* rules, in order */
    char long_text[200];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    s = signals("auto", long_text);
    expect_route(&c, &s, GW_ROUTE_ESCALATED, 1, false, "rule long: prompt 199 chars >= 100");
    s = signals(NULL, "```c\nint main(void) { return 0; }\n```");
    expect_route(&c, &s, GW_ROUTE_ESCALATED, 2, false, "rule code: task code");
    s = signals("auto", "review this contract for me");
    expect_route(&c, &s, GW_ROUTE_ESCALATED, 1, false, "rule legal: pattern matched");
    s = signals("auto", "hi there");
    gw_decision d;
    gw_policy_decide(&c, &s, &d);
    CHECK(d.route == GW_ROUTE_LOCAL && d.check_confidence && d.conf.mean_logprob == -2.5 &&
          d.escalate_tier == 2 && strstr(d.reason, "rule chitchat"));
    s = signals("auto", "please review my contract");
    s.task = "code"; /* the header's task type */
    expect_route(&c, &s, GW_ROUTE_ESCALATED, 2, false, "rule code");
    /* the router */
    s = signals("auto", "what is the capital of France, please?");
    s.router_score = 0.75;
    expect_route(&c, &s, GW_ROUTE_ESCALATED, 2, false, "router: score 0.750 >= 0.600");
    s.router_score = 0.2;
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, true, "router: score 0.200 < 0.600");
    /* privacy: a blocked entity keeps a remote choice local ... */
    s = signals("cloud", "my SSN is 123-45-6788");
    s.blocked = "SSN";
    gw_policy_decide(&c, &s, &d);
    CHECK(d.tier == 0 && d.pii_blocked && !d.check_confidence &&
          strstr(d.reason, "SSN may not leave"));
    s = signals("auto", long_text);
    s.blocked = "SSN";
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, false, "privacy: SSN");
    /* ... or refuses it */
    c.block_refuses = true;
    expect_refusal(&c, &s, 403, "may not leave (refused)");
    c.block_refuses = false;
    /* a tier that is down */
    s = signals("cloud", "x");
    s.available[1] = false;
    gw_policy_decide(&c, &s, &d);
    CHECK(d.tier == 0 && d.degraded && d.route == GW_ROUTE_EXPLICIT &&
          strstr(d.reason, "tier cloud is down"));
    s = signals("auto", long_text);
    s.available[1] = false;
    gw_policy_decide(&c, &s, &d);
    CHECK(d.tier == 0 && d.degraded && d.route == GW_ROUTE_LOCAL);
    /* air gap */
    c.air_gapped = true;
    s = signals("cloud", "x");
    expect_refusal(&c, &s, 403, "air-gapped");
    s = signals("auto", long_text);
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, false, "air-gapped");
    c.air_gapped = false;
    c.confidence_check = false;
    s = signals("auto", "what is the capital of France, please?");
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, false, "local");
    gw_config_fini(&c);
    /* without remote tiers */
    gw_config_init(&c);
    REQUIRE(gw_config_finish(&c) == HEARTH_OK);
    s = signals("auto", long_text);
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, false, "no remote tier");
    s = signals("cloud", long_text);
    expect_route(&c, &s, GW_ROUTE_LOCAL, 0, false, "no remote tier");
    gw_config_fini(&c);

    CHECK(!strcmp(gw_task_guess("def f(x):\n  return x", 20), "code"));
    CHECK(!strcmp(gw_task_guess("What is 12 * 7?", 15), "math"));
    CHECK(!strcmp(gw_task_guess("Solve for x", 11), "math"));
    CHECK(!strcmp(gw_task_guess("Translate this to French", 24), "translate"));
    CHECK(!strcmp(gw_task_guess("Please summarize the text", 25), "summarize"));
    CHECK(!strcmp(gw_task_guess("How are you today", 17), "chat"));
}

static void test_confidence(void) {
    const float sure[] = {-0.01f, -0.2f, -0.05f, -0.3f};
    const float guess[] = {-0.01f, -0.2f,  -7.5f, -0.3f,  -0.01f,
                           -0.02f, -0.05f, -0.1f, -0.01f, -0.02f};
    const float lost[] = {-2.0f, -1.5f, -3.0f, -1.0f, -2.5f};
    const float odd[] = {NAN, -INFINITY, -1.0f};
    gw_confidence c = gw_confidence_of(sure, 4);
    CHECK(c.n_tokens == 4 && fabs(c.mean_logprob - (-0.14)) < 1e-6 &&
          fabs(c.min_logprob + 0.3) < 1e-6);
    const gw_conf_thresholds t = {-1.0, -6.0, 4};
    char why[128];
    CHECK(!gw_should_escalate(&c, &t, why, sizeof why) && strstr(why, "mean -0.140"));
    c = gw_confidence_of(guess, 10); /* fluent but for one guessed token */
    CHECK(gw_should_escalate(&c, &t, why, sizeof why) &&
          strstr(why, "min logprob -7.500 < -6.000"));
    c = gw_confidence_of(lost, 5);
    CHECK(gw_should_escalate(&c, &t, why, sizeof why) &&
          strstr(why, "mean logprob -2.000 < -1.000"));
    c = gw_confidence_of(lost, 3);
    CHECK(!gw_should_escalate(&c, &t, why, sizeof why) && strstr(why, "too few"));
    c = gw_confidence_of(odd, 3); /* NaN skipped, -inf is a certain miss */
    CHECK(c.n_tokens == 2 && c.min_logprob < -1e8);
    c = gw_confidence_of(NULL, 0);
    CHECK(c.n_tokens == 0 && !gw_should_escalate(&c, &t, why, sizeof why));
}

/* ---- the cascade ------------------------------------------------------------------ */

/* A scripted local model: answers "local answer to: <last message>" with the
 * log-probabilities it is told, in two pieces when streaming. */
typedef struct fake_local {
    float logprob;
    bool no_answer; /* cut by max_tokens before any answer (all of it thinking) */
    int fail_status;
    int calls;
    int prompt_tokens, completion_tokens;
} fake_local;

static void local_model(void *ctx, const gw_chat *req, gw_text_cb cb, void *user,
                        gw_local_result *out) {
    fake_local *fl = ctx;
    fl->calls++;
    if (fl->fail_status) {
        out->ok = false;
        out->status = fl->fail_status;
        snprintf(out->error, sizeof out->error, "the prompt is too long");
        return;
    }
    char text[512] = "";
    if (!fl->no_answer)
        snprintf(text, sizeof text, "local answer to: %s",
                 req->messages[req->n_messages - 1].content);
    const size_t n = strlen(text), half = n / 2;
    if (cb && cb(text, half, user)) cb(text + half, n - half, user);
    out->ok = true;
    out->text = strdup(text);
    out->text_len = n;
    out->prompt_tokens = fl->prompt_tokens = 40;
    out->completion_tokens = fl->completion_tokens = 8;
    out->n_logprobs = fl->no_answer ? 0 : 8; /* a reasoning block's tokens are not counted */
    out->logprobs = malloc(8 * sizeof(float));
    for (int i = 0; i < 8; i++) out->logprobs[i] = fl->logprob;
    snprintf(out->finish_reason, sizeof out->finish_reason, fl->no_answer ? "length" : "stop");
}

typedef struct client {
    gw_buf text;
    int starts;
    char start_tier[64];
    bool text_before_start;
} client;

static bool client_text(const char *text, size_t len, void *user) {
    client *c = user;
    if (!c->starts) c->text_before_start = true;
    return gw_buf_put(&c->text, text, len) == HEARTH_OK;
}

static void client_start(const gw_response *head, void *user) {
    client *c = user;
    c->starts++;
    snprintf(c->start_tier, sizeof c->start_tier, "%s", head->tier);
}

typedef struct run {
    gw_response r;
    client cl;
} run;

static int n_handled;

static void handle(gw_gateway *g, fake_local *fl, const char *model, const char *tier_header,
                   const char *user_text, bool stream, run *out) {
    memset(out, 0, sizeof *out);
    const gw_message m[] = {{"system", "You are helpful."}, {"user", user_text}};
    gw_chat q = {.messages = m, .n_messages = 2, .temperature = NAN, .top_p = NAN};
    q.stream = stream;
    gw_request rq = {.chat = &q, .model = model, .tier_header = tier_header};
    rq.cb = stream ? client_text : NULL;
    rq.user = &out->cl;
    rq.on_start = client_start;
    REQUIRE(gw_handle(g, &rq, local_model, fl, &out->r) == HEARTH_OK);
    n_handled++;
    if (out->r.status == 200) {
        CHECK(out->cl.starts == 1 && !out->cl.text_before_start);
        CHECK(!strcmp(out->cl.start_tier, out->r.tier));
        if (stream)
            CHECK(out->cl.text.len == out->r.text_len &&
                  (!out->r.text_len || !memcmp(out->cl.text.data, out->r.text, out->r.text_len)));
    }
}

static void run_free(run *r) {
    gw_response_free(&r->r);
    gw_buf_free(&r->cl.text);
}

/* A gateway whose "cloud" tier (the fake, answering as `model` says) costs
 * $1 / $2 per million input / output tokens, i.e. 1 / 2 micro-dollars each. */
static gw_gateway *make_gateway(gw_ledger *l, const char *model, const char *extra_tiers,
                                const char *routing, const char *privacy) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"tiers\": [{\"name\": \"cloud\", \"base_url\": \"http://127.0.0.1:%d/v1\", "
             "\"model\": \"%s\", \"price_per_mtok\": {\"input\": 1, \"output\": 2}, "
             "\"retries\": 0, \"timeout_ms\": 1500, \"breaker_failures\": 100}%s],"
             " \"routing\": {%s}, \"privacy\": {%s}}",
             fc.port, model, extra_tiers, routing, privacy);
    gw_config c;
    REQUIRE(parse(&c, json) == HEARTH_OK);
    gw_gateway *g = NULL;
    REQUIRE(gw_gateway_new(&c, l, &g) == HEARTH_OK);
    return g;
}

static bool router_fn(void *ctx, const char *text, size_t len, double *score) {
    (void)len;
    (void)ctx;
    *score = strstr(text, "hard") ? 0.9 : 0.1;
    return true;
}

static void test_cascade(const char *db) {
    gw_ledger *l = NULL;
    REQUIRE(gw_ledger_open(db, &l) == HEARTH_OK);
    fake_local fl = {.logprob = -0.1f};
    gw_gateway *g = make_gateway(l, "ok", "", "\"confidence\": {\"mean_logprob\": -1.0}", "");
    run r;

    /* confident: kept local, the cloud never called */
    fake_cloud_reset(&fc);
    for (int stream = 0; stream < 2; stream++) {
        handle(g, &fl, "auto", NULL, "what is 2+2", stream, &r);
        CHECK(r.r.status == 200 && !strcmp(r.r.tier, "local") && r.r.route == GW_ROUTE_LOCAL);
        CHECK(!strcmp(r.r.text, "local answer to: what is 2+2") && !r.r.degraded);
        CHECKF(strstr(r.r.reason, "confidence: mean -0.100"), "%s", r.r.reason);
        run_free(&r);
    }
    CHECK(fake_cloud_requests(&fc) == 0);

    /* unsure: escalated, the cloud's answer streamed */
    fl.logprob = -2.0f;
    handle(g, &fl, "auto", NULL, "what is the meaning of life", true, &r);
    CHECK(r.r.status == 200 && !strcmp(r.r.tier, "cloud") && r.r.route == GW_ROUTE_ESCALATED);
    CHECK(!strcmp(r.r.text, "echo: what is the meaning of life"));
    CHECKF(strstr(r.r.reason, "mean logprob -2.000 < -1.000"), "%s", r.r.reason);
    CHECK(r.r.prompt_tokens == 21 && fake_cloud_requests(&fc) == 1);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM requests WHERE id = %lld AND route = 'escalated' AND "
             "tier = 'cloud' AND conf_mean = -2.0 AND conf_min = -2.0 AND cost_usd_micro = %d "
             "AND cloud_only_cost_usd_micro = cost_usd_micro AND prompt_tokens = 21",
             (long long)r.r.ledger_id, r.r.prompt_tokens + 2 * r.r.completion_tokens);
    CHECK(db_int(db, sql) == 1);
    run_free(&r);
    /* a local answer costs nothing here, and the cloud's price on the cloud tier */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM requests WHERE tier = 'local' AND cost_usd_micro = 0 AND "
             "cloud_only_cost_usd_micro = 40 + 2 * 8 AND route = 'local'");
    CHECK(db_int(db, sql) == 2);

    /* no answer at all (max_tokens spent thinking): escalated, however sure */
    fl.logprob = -0.1f;
    fl.no_answer = true;
    handle(g, &fl, "auto", NULL, "a riddle", false, &r);
    CHECKF(r.r.status == 200 && !strcmp(r.r.tier, "cloud") && r.r.route == GW_ROUTE_ESCALATED &&
               strstr(r.r.reason, "no answer within max_tokens"),
           "%s %s", r.r.tier, r.r.reason);
    run_free(&r);
    fl.no_answer = false;

    /* explicit local and explicit cloud */
    handle(g, &fl, "local", NULL, "hi", false, &r);
    CHECK(r.r.status == 200 && r.r.route == GW_ROUTE_EXPLICIT && !strcmp(r.r.tier, "local"));
    run_free(&r);
    handle(g, &fl, "cloud", NULL, "hi", false, &r);
    CHECK(r.r.status == 200 && r.r.route == GW_ROUTE_EXPLICIT && !strcmp(r.r.text, "echo: hi"));
    run_free(&r);
    handle(g, &fl, "local", "nope", "hi", false, &r);
    CHECK(r.r.status == 400 && strstr(r.r.error, "no tier named"));
    run_free(&r);

    /* privacy: redacted on the wire, restored in the stream, audited */
    fake_cloud_reset(&fc);
    const char *secret =
        "Mail jane@example.com or call 555-867-5309 about card 4111 1111 1111 1111";
    handle(g, &fl, "cloud", NULL, secret, true, &r);
    char want[256];
    snprintf(want, sizeof want, "echo: %s", secret);
    CHECKF(r.r.status == 200 && !strcmp(r.r.text, want), "%s", r.r.text);
    REQUIRE(fc.n_bodies == 1);
    CHECK(!strstr(fc.bodies[0], "jane@example.com") && !strstr(fc.bodies[0], "555-867-5309") &&
          !strstr(fc.bodies[0], "4111 1111 1111 1111"));
    CHECK(strstr(fc.bodies[0], "<EMAIL_1>") && strstr(fc.bodies[0], "<CREDIT_CARD_1>"));
    char hex[65];
    gw_sha256_hex(fc.bodies[0], strlen(fc.bodies[0]), hex);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE sent_sha256 = '%s' AND action = 'sent' AND "
             "entities = 'EMAIL:1,PHONE:1,CREDIT_CARD:1'",
             hex);
    CHECK(db_int(db, sql) == 1);
    run_free(&r);
    gw_gateway_free(g);

    /* blocked entities stay local (and are audited as blocked), or are refused */
    g = make_gateway(l, "ok", "", "", "\"actions\": {\"SSN\": \"block\"}");
    fake_cloud_reset(&fc);
    handle(g, &fl, "cloud", NULL, "my SSN is 123-45-6788", false, &r);
    CHECK(r.r.status == 200 && !strcmp(r.r.tier, "local") &&
          strstr(r.r.reason, "SSN may not leave"));
    CHECK(fake_cloud_requests(&fc) == 0);
    run_free(&r);
    CHECK(db_int(db, "SELECT count(*) FROM audit WHERE action = 'blocked' AND entities = 'SSN'") ==
          1);
    gw_gateway_free(g);
    g = make_gateway(l, "ok", "", "",
                     "\"actions\": {\"SSN\": \"block\"}, \"on_block\": \"refuse\"");
    handle(g, &fl, "cloud", NULL, "my SSN is 123-45-6788", true, &r);
    CHECK(r.r.status == 403 && r.cl.starts == 0 && fake_cloud_requests(&fc) == 0);
    run_free(&r);
    gw_gateway_free(g);

    /* rules and the router hook */
    g = make_gateway(l, "ok", "",
                     "\"rules\": [{\"name\": \"long\", \"min_chars\": 60, \"route\": \"cloud\"}]",
                     "");
    gw_gateway_set_router(g, router_fn, NULL, 0.5);
    fl.logprob = -0.1f;
    handle(g, &fl, "auto", NULL, "a hard question", false, &r);
    CHECK(r.r.route == GW_ROUTE_ESCALATED && !strcmp(r.r.tier, "cloud") &&
          strstr(r.r.reason, "router: score 0.900 >= 0.500"));
    run_free(&r);
    handle(g, &fl, "auto", NULL, "an easy question", false, &r);
    CHECK(r.r.route == GW_ROUTE_LOCAL && strstr(r.r.reason, "router: score 0.100 < 0.500"));
    run_free(&r);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE router_score = 0.1");
    CHECK(db_int(db, sql) == 1);
    handle(g, &fl, "auto", NULL, "an easy question, asked at great length to pass the rule", false,
           &r);
    CHECK(r.r.route == GW_ROUTE_ESCALATED && strstr(r.r.reason, "rule long"));
    run_free(&r);
    gw_gateway_free(g);

    /* the cloud down: degraded local answers; failover to a second tier */
    char extra[256];
    snprintf(extra, sizeof extra,
             ", {\"name\": \"backup\", \"kind\": \"anthropic\", \"base_url\": "
             "\"http://127.0.0.1:%d\", \"model\": \"ok\", \"retries\": 0}",
             fc.port);
    g = make_gateway(l, "e500-999", extra, "", "");
    gw_gateway *g1 = make_gateway(l, "e500-999", "", "", "");
    fake_cloud_reset(&fc);
    fl.logprob = -3.0f;
    handle(g, &fl, "auto", NULL, "think hard", true, &r);
    CHECKF(r.r.status == 200 && !strcmp(r.r.tier, "local") && r.r.degraded &&
               strstr(r.r.reason, "degraded") && strstr(r.r.reason, "cloud unreachable"),
           "%d %s %s", r.r.status, r.r.tier, r.r.reason);
    run_free(&r);
    handle(g1, &fl, "cloud", NULL, "hello", true, &r);
    CHECKF(r.r.status == 200 && !strcmp(r.r.tier, "local") && r.r.degraded &&
               r.r.route == GW_ROUTE_EXPLICIT && !strcmp(r.r.text, "local answer to: hello"),
           "%d %s %s", r.r.status, r.r.tier, r.r.reason);
    run_free(&r);
    gw_gateway_free(g);
    gw_gateway_free(g1);
    g = make_gateway(l, "e500-999", extra, "\"rules\": [{\"name\": \"all\", \"route\": \"cloud\"}]",
                     "");
    handle(g, &fl, "auto", NULL, "anything", true, &r);
    CHECKF(r.r.status == 200 && !strcmp(r.r.tier, "backup") && strstr(r.r.reason, "failover"),
           "%d %s %s", r.r.status, r.r.tier, r.r.reason);
    CHECK(!strcmp(r.r.text, "echo: anything"));
    run_free(&r);
    gw_gateway_free(g);
    /* failover never reaches a tier the client's key may not use */
    {
        char json[1024], digest[65];
        gw_sha256_hex("s", 1, digest);
        snprintf(json, sizeof json,
                 "{\"tiers\": [{\"name\": \"cloud\", \"base_url\": \"http://127.0.0.1:%d/v1\","
                 " \"model\": \"e500-999\", \"retries\": 0, \"breaker_failures\": 100}%s],"
                 " \"routing\": {\"rules\": [{\"name\": \"all\", \"route\": \"cloud\"}]},"
                 " \"keys\": [{\"name\": \"k\", \"key_sha256\": \"%s\", \"tiers\": [\"cloud\"]}]}",
                 fc.port, extra, digest);
        gw_config kc;
        REQUIRE(parse(&kc, json) == HEARTH_OK);
        REQUIRE(gw_gateway_new(&kc, l, &g) == HEARTH_OK);
        const gw_message m[] = {{"user", "anything"}};
        const gw_chat q = {.messages = m, .n_messages = 1, .temperature = NAN, .top_p = NAN};
        const gw_request rq = {
            .chat = &q, .model = "auto", .key = gw_keys_find(gw_gateway_keys(g), "s", 1)};
        REQUIRE(rq.key);
        gw_response out;
        REQUIRE(gw_handle(g, &rq, local_model, &fl, &out) == HEARTH_OK);
        n_handled++;
        CHECKF(out.status == 200 && !strcmp(out.tier, "local") && out.degraded, "%s %s", out.tier,
               out.reason);
        gw_response_free(&out);
        gw_gateway_free(g);
    }
    /* a stream that breaks after text went out: an error, not a second answer */
    g = make_gateway(l, "drop", "", "", "");
    handle(g, &fl, "cloud", NULL, "anything at all", true, &r);
    CHECK(r.r.status == 502 && r.r.streamed && r.cl.starts == 1 && strstr(r.r.error, "mid-answer"));
    run_free(&r);
    /* the local model's own error */
    fl.fail_status = 400;
    handle(g, &fl, "local", NULL, "too long", false, &r);
    CHECK(r.r.status == 400 && strstr(r.r.error, "too long") && r.cl.starts == 0);
    run_free(&r);
    fl.fail_status = 0;
    gw_gateway_free(g);

    /* a tier's own rpm: past it the tier counts as unavailable (degraded,
     * saying why), and the fake is not called; its tpm likewise */
    {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"tiers\": [{\"name\": \"cloud\", \"base_url\": \"http://127.0.0.1:%d/v1\","
                 " \"model\": \"ok\", \"retries\": 0, \"rpm\": 2},"
                 " {\"name\": \"thin\", \"base_url\": \"http://127.0.0.1:%d/v1\","
                 " \"model\": \"ok\", \"retries\": 0, \"tpm\": 10}]}",
                 fc.port, fc.port);
        gw_config lc;
        REQUIRE(parse(&lc, json) == HEARTH_OK);
        REQUIRE(gw_gateway_new(&lc, l, &g) == HEARTH_OK);
        fake_cloud_reset(&fc);
        for (int i = 0; i < 3; i++) {
            handle(g, &fl, "cloud", NULL, "count me", false, &r);
            CHECKF(
                r.r.status == 200 && !strcmp(r.r.tier, i < 2 ? "cloud" : "local") &&
                    (i < 2 || (r.r.degraded && strstr(r.r.reason, "cloud is at its rate limit"))),
                "%d: %s %s", i, r.r.tier, r.r.reason);
            run_free(&r);
        }
        CHECK(fake_cloud_requests(&fc) == 2);
        for (int i = 0; i < 2; i++) { /* one answer's tokens use up a tpm of 10 */
            handle(g, &fl, "thin", NULL, "a question of more than ten tokens, surely", false, &r);
            CHECKF(r.r.status == 200 && !strcmp(r.r.tier, i == 0 ? "thin" : "local"), "%d: %s %s",
                   i, r.r.tier, r.r.reason);
            run_free(&r);
        }
        CHECK(fake_cloud_requests(&fc) == 3);
        gw_gateway_free(g);
    }

    /* air gap: the cloud is never contacted */
    gw_config c;
    REQUIRE(parse(&c, "{\"air_gapped\": true}") == HEARTH_OK);
    REQUIRE(gw_config_add_cloud(&c, "http://127.0.0.1:1", "ok", NULL, NULL) == HEARTH_OK);
    REQUIRE(gw_config_finish(&c) == HEARTH_OK);
    REQUIRE(gw_gateway_new(&c, l, &g) == HEARTH_OK);
    handle(g, &fl, "auto", NULL, "x", false, &r);
    CHECK(r.r.status == 200 && !strcmp(r.r.tier, "local") && strstr(r.r.reason, "air-gapped"));
    run_free(&r);
    handle(g, &fl, "cloud", NULL, "x", false, &r);
    CHECK(r.r.status == 403);
    run_free(&r);
    gw_gateway_free(g);

    /* one ledger row per request, whatever happened */
    int64_t rows = 0;
    REQUIRE(gw_ledger_count(l, &rows) == HEARTH_OK);
    CHECKF(rows == n_handled, "%lld rows for %d requests", (long long)rows, n_handled);
    gw_ledger_close(l);
}

int main(void) {
    REQUIRE(fake_cloud_start(&fc));
    test_config();
    test_policy();
    test_confidence();
    char dir[] = "/tmp/hearth_policy_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char db[256];
    snprintf(db, sizeof db, "%s/ledger.db", dir);
    test_cascade(db);
    fake_cloud_stop(&fc);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_done("test_policy");
}
