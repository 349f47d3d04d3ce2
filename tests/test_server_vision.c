/*
 * test_server_vision.c - images in chat requests through `hearth serve
 * --mmproj` (curl against the real program; a random gemma3 model and
 * projector from synth, a PNG drawn here): an image_url part as a data:
 * URI is answered with what the library generates for the same prompt
 * (the template's text from /apply-template, the image through
 * hearth_tokenize_media and hearth_prefill_media, greedy); asked again,
 * the image is found in the slot's cache (usage's cached_tokens); a
 * different image is another answer; and the refusals: a remote URL, bad
 * base64, bytes that are no image, too many images, a model without a
 * projector.
 */
#include "test.h"

#include "server/http_client.h"
#include "server/json_path.h"
#include "vision_fixture.h"

#include <cjson/cJSON.h>
#include <math.h>

static const char *binary = HEARTH_BINARY;
static char scratch[] = "/tmp/hearth_srv_vision_XXXXXX";
static char model_path[300], proj_path[300];

/* Two images' samples. */
static unsigned px_a(int x, int y, int c) { return (unsigned)(x * 5 + c * 70 + y * 8 + 31) & 255; }
static unsigned px_b(int x, int y, int c) { return (unsigned)(x * 5 + c * 70 + y * 9 + 62) & 255; }

static membuf make_png(int w, int h, unsigned (*px)(int, int, int)) {
    return vf_png(w, h, PNG_COLOR_TYPE_RGB, 8, false, NULL, 0, px);
}

static char *base64(const uint8_t *p, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc(n / 3 * 4 + 8), *o = s;
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                           (i + 2 < n ? p[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = '\0';
    return s;
}

/* A chat request: "Describe" then the image URL(s), greedy, 8 tokens. */
static char *chat_body(const char *const *urls, int n_urls, const char *extra) {
    cJSON *root = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(root, "messages");
    cJSON *m = cJSON_CreateObject(), *parts = cJSON_AddArrayToObject(m, "content");
    cJSON_AddStringToObject(m, "role", "user");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "text");
    cJSON_AddStringToObject(t, "text", "Describe");
    cJSON_AddItemToArray(parts, t);
    for (int i = 0; i < n_urls; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", "image_url");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "image_url"), "url", urls[i]);
        cJSON_AddItemToArray(parts, p);
    }
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(root, "temperature", 0);
    cJSON_AddNumberToObject(root, "max_tokens", 8);
    cJSON_AddBoolToObject(root, "logprobs", true);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (extra) { /* extra members spliced in before the closing brace */
        char *w = malloc(strlen(s) + strlen(extra) + 4);
        sprintf(w, "%.*s,%s}", (int)strlen(s) - 1, s, extra);
        free(s);
        s = w;
    }
    return s;
}

static char *data_url(const membuf *b) {
    char *b64 = base64(b->p, b->n);
    char *u = malloc(strlen(b64) + 32);
    sprintf(u, "data:image/png;base64,%s", b64);
    free(b64);
    return u;
}

/* What the library answers: the template's text (with the marker), the
 * image, greedy 8 tokens. */
static char *library_answer(const char *templated, const membuf *png) {
    hearth_model *m;
    hearth_vision *v;
    hearth_session *s;
    REQUIRE(hearth_model_load(model_path, NULL, &m) == HEARTH_OK);
    REQUIRE(hearth_vision_load(proj_path, m, 1, &v) == HEARTH_OK);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 512;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    const int n_embd = hearth_model_n_embd(m), rows = hearth_vision_n_tokens(v);
    float *img = malloc((size_t)rows * n_embd * sizeof *img);
    REQUIRE(hearth_vision_encode(v, png->p, png->n, img) == HEARTH_OK);
    const uint64_t h = hearth_media_hash(png->p, png->n);
    int32_t ids[512];
    size_t n = 0;
    const char *text = templated + (!strncmp(templated, "<s>", 3) ? 3 : 0);
    REQUIRE(hearth_tokenize_media(m, v, text, strlen(text), true, true, &h, 1, ids, 512, &n) ==
            HEARTH_OK);
    const float *imgs[1] = {img};
    REQUIRE(hearth_prefill_media(s, v, ids, (int)n, imgs, 1, NULL) == HEARTH_OK);
    const int pos = hearth_session_pos(s);
    float *logits = malloc((size_t)hearth_model_n_vocab(m) * sizeof *logits);
    REQUIRE(hearth_decode(s, ids + pos, (int)n - pos, logits, false) == HEARTH_OK);
    char *out = calloc(1, 1024);
    size_t len = 0;
    for (int i = 0; i < 8; i++) {
        int32_t best = 0;
        for (int t = 1; t < hearth_model_n_vocab(m); t++)
            if (logits[t] > logits[best]) best = t;
        if (hearth_token_is_eog(m, best)) break;
        size_t k = 0;
        REQUIRE(hearth_detokenize(m, &best, 1, false, out + len, 1023 - len, &k) == HEARTH_OK);
        len += k;
        REQUIRE(hearth_decode(s, &best, 1, logits, false) == HEARTH_OK);
    }
    free(logits), free(img);
    hearth_session_free(s);
    hearth_vision_free(v);
    hearth_model_free(m);
    return out;
}

/* The answer's bytes, from its logprobs' "bytes" (the text itself has
 * invalid UTF-8 replaced), and its first token's logprob. */
static char *answer_bytes(const cJSON *reply, double *first) {
    char *out = calloc(1, 1024);
    size_t n = 0;
    const cJSON *c = reply ? jget(reply, "choices.0.logprobs.content") : NULL, *e;
    *first = NAN;
    cJSON_ArrayForEach(e, c) {
        const cJSON *b, *lp = cJSON_GetObjectItemCaseSensitive(e, "logprob");
        if (isnan(*first) && cJSON_IsNumber(lp)) *first = lp->valuedouble;
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(e, "bytes")) if (n < 1023) out[n++] =
            (char)b->valueint;
    }
    return out;
}

/* A request to another API with an image (its body: before, the image,
 * after): answered, the prompt's count at `field` over 4 (the image's rows
 * in it). */
static void other_api(test_server *sv, const char *path, const char *before, const char *image,
                      const char *after, const char *field) {
    char *body = malloc(strlen(before) + strlen(image) + strlen(after) + 1);
    sprintf(body, "%s%s%s", before, image, after);
    int status = 0;
    cJSON *j = post(sv, path, body, &status);
    const cJSON *n = j ? jget(j, field) : NULL;
    CHECKF(status == 200 && cJSON_IsNumber(n) && n->valueint > 4, "%s with an image: %d", path,
           status);
    cJSON_Delete(j);
    free(body);
}

/* ollama's /api/generate with an image answers as /api/chat with the
 * same message; with raw it is a 400. */
static void ollama_generate(test_server *sv, const char *b64) {
    const char *opts = "\"model\":\"m\",\"stream\":false,"
                       "\"options\":{\"temperature\":0,\"num_predict\":6}";
    char *body = malloc(strlen(b64) + 512);
    sprintf(body, "{%s,\"prompt\":\"Describe\",\"images\":[\"%s\"]}", opts, b64);
    int status = 0, chat_status = 0;
    cJSON *g = post(sv, "/api/generate", body, &status);
    sprintf(body,
            "{%s,\"messages\":[{\"role\":\"user\",\"content\":\"Describe\","
            "\"images\":[\"%s\"]}]}",
            opts, b64);
    cJSON *c = post(sv, "/api/chat", body, &chat_status);
    const cJSON *gr = g ? jget(g, "response") : NULL, *cr = c ? jget(c, "message.content") : NULL;
    const cJSON *gn = g ? jget(g, "prompt_eval_count") : NULL;
    CHECKF(status == 200 && chat_status == 200 && cJSON_IsString(gr) && cJSON_IsString(cr) &&
               gr->valuestring[0] && !strcmp(gr->valuestring, cr->valuestring) &&
               cJSON_IsNumber(gn) && gn->valueint > 4,
           "/api/generate with an image: %d '%s', /api/chat: %d '%s'", status,
           cJSON_IsString(gr) ? gr->valuestring : "", chat_status,
           cJSON_IsString(cr) ? cr->valuestring : "");
    cJSON_Delete(g), cJSON_Delete(c);
    sprintf(body, "{%s,\"raw\":true,\"prompt\":\"Describe\",\"images\":[\"%s\"]}", opts, b64);
    g = post(sv, "/api/generate", body, &status);
    CHECKF(status == 400, "/api/generate raw with an image: %d", status);
    cJSON_Delete(g);
    free(body);
}

static void expect_400(test_server *sv, const char *body, const char *needle) {
    int status = 0;
    cJSON *j = post(sv, "/v1/chat/completions", body, &status);
    const cJSON *msg = j ? jget(j, "error.message") : NULL;
    CHECKF(status == 400 && cJSON_IsString(msg) && strstr(msg->valuestring, needle),
           "%d, wanted 400 with '%s': %s", status, needle,
           cJSON_IsString(msg) ? msg->valuestring : "(no message)");
    cJSON_Delete(j);
}

int main(void) {
    REQUIRE(mkdtemp(scratch));
    snprintf(model_path, sizeof model_path, "%s/gemma3.gguf", scratch);
    snprintf(proj_path, sizeof proj_path, "%s/mmproj.gguf", scratch);
    vf_models(model_path, proj_path, 512, 5, 42);

    test_server sv;
    char args[1024];
    snprintf(args, sizeof args, "--mmproj '%s' --chat-template gemma3 --ctx 512", proj_path);
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, args));
    membuf png = make_png(40, 30, px_a), png2 = make_png(30, 40, px_b);
    char *url = data_url(&png), *url2 = data_url(&png2);
    const char *one[1] = {url};

    /* the template's text for the request, then the server's answer */
    char *body = chat_body(one, 1, NULL);
    int status = 0;
    cJSON *tj = post(&sv, "/apply-template", body, &status);
    const cJSON *prompt = tj ? jget(tj, "prompt") : NULL;
    REQUIRE(status == 200 && cJSON_IsString(prompt));
    CHECKF(strstr(prompt->valuestring, "Describe" HEARTH_MEDIA_MARKER) != NULL, "prompt: %s",
           prompt->valuestring);
    char *expected = library_answer(prompt->valuestring, &png);
    cJSON *r1 = post(&sv, "/v1/chat/completions", body, &status);
    double lp1, lp2, lp3;
    char *a1 = answer_bytes(r1, &lp1);
    CHECKF(status == 200 && a1[0] && !strcmp(a1, expected), "%d: '%s', the library: '%s'", status,
           a1, expected);
    const cJSON *pt = r1 ? jget(r1, "usage.prompt_tokens") : NULL;
    const cJSON *cached1 = r1 ? jget(r1, "usage.prompt_tokens_details.cached_tokens") : NULL;
    CHECK(cJSON_IsNumber(pt) && pt->valueint > 4);
    CHECK(!cached1 || (cJSON_IsNumber(cached1) && cached1->valueint == 0)); /* all evaluated */
    /* again: the image comes from the slot's cache */
    cJSON *r2 = post(&sv, "/v1/chat/completions", body, &status);
    char *a2 = answer_bytes(r2, &lp2);
    const cJSON *cached = r2 ? jget(r2, "usage.prompt_tokens_details.cached_tokens") : NULL;
    CHECK(status == 200 && !strcmp(a2, expected) && lp2 == lp1);
    CHECKF(cJSON_IsNumber(cached) && cJSON_IsNumber(pt) && cached->valueint > 4 &&
               cached->valueint < pt->valueint,
           "cached %d of %d", cJSON_IsNumber(cached) ? cached->valueint : -1,
           cJSON_IsNumber(pt) ? pt->valueint : -1);
    /* another image, another answer (the library's for it) */
    const char *other[1] = {url2};
    char *body2 = chat_body(other, 1, NULL);
    char *expected2 = library_answer(prompt->valuestring, &png2);
    cJSON *r3 = post(&sv, "/v1/chat/completions", body2, &status);
    char *a3 = answer_bytes(r3, &lp3);
    CHECK(status == 200 && !strcmp(a3, expected2));
    CHECKF(fabs(lp3 - lp1) > 1e-4, "the two images' first tokens: logprobs %g and %g", lp1, lp3);

    /* what clients read before they send images */
    test_reply pr = test_http(&sv, "GET", "/props", NULL, NULL);
    cJSON *props = cJSON_ParseWithLength(pr.body, pr.len);
    CHECK(pr.status == 200 && cJSON_IsTrue(jget(props, "modalities.vision")));
    cJSON_Delete(props), free(pr.body);
    cJSON *show = post(&sv, "/api/show", "{\"model\":\"gemma3\"}", &status);
    const cJSON *cap, *caps = show ? jget(show, "capabilities") : NULL;
    bool vision = false;
    cJSON_ArrayForEach(cap, caps) vision |=
        cJSON_IsString(cap) && !strcmp(cap->valuestring, "vision");
    CHECKF(status == 200 && vision, "/api/show: %d", status);
    cJSON_Delete(show);

    /* the other APIs: ollama's images, Anthropic's image block, an input_image part */
    char *b64 = base64(png.p, png.n);
    other_api(&sv, "/api/chat",
              "{\"model\":\"m\",\"stream\":false,\"options\":{\"temperature\":0,\"num_predict\":4},"
              "\"messages\":[{\"role\":\"user\",\"content\":\"Describe\",\"images\":[\"",
              b64, "\"]}]}", "prompt_eval_count");
    ollama_generate(&sv, b64);
    other_api(&sv, "/v1/messages",
              "{\"model\":\"m\",\"max_tokens\":4,\"temperature\":0,\"messages\":[{\"role\":"
              "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Describe\"},{\"type\":\"image\","
              "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"",
              b64, "\"}}]}]}", "usage.input_tokens");
    other_api(&sv, "/v1/responses",
              "{\"model\":\"m\",\"max_output_tokens\":4,\"temperature\":0,\"input\":[{\"role\":"
              "\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Describe\"},{\"type\":"
              "\"input_image\",\"image_url\":\"",
              url, "\"}]}]}", "usage.input_tokens");

    /* refusals */
    const char *remote[1] = {"https://example.com/cat.png"};
    char *b = chat_body(remote, 1, NULL);
    expect_400(&sv, b, "fetches no URLs");
    free(b);
    const char *bad64[1] = {"data:image/png;base64,iVBOR*w0KGgo="};
    b = chat_body(bad64, 1, NULL);
    expect_400(&sv, b, "not valid base64");
    free(b);
    const char *notimg[1] = {"data:image/png;base64,aGVsbG8gd29ybGQ="};
    b = chat_body(notimg, 1, NULL);
    expect_400(&sv, b, "not a PNG or JPEG");
    free(b);
    const char *many[17];
    for (int i = 0; i < 17; i++) many[i] = url;
    b = chat_body(many, 17, NULL);
    expect_400(&sv, b, "at most 16 images");
    free(b);
    CHECK(test_server_stop(&sv) == 0);

    /* the same model without a projector */
    REQUIRE(test_server_start(&sv, binary, model_path, scratch, "--chat-template gemma3"));
    expect_400(&sv, body, "takes no images");
    pr = test_http(&sv, "GET", "/props", NULL, NULL);
    props = cJSON_ParseWithLength(pr.body, pr.len);
    CHECK(pr.status == 200 && cJSON_IsFalse(jget(props, "modalities.vision")));
    cJSON_Delete(props), free(pr.body);
    char *ob = malloc(strlen(b64) + 128);
    sprintf(ob, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"images\":[\"%s\"]}]}", b64);
    cJSON *nj = post(&sv, "/api/chat", ob, &status);
    CHECKF(status == 400, "/api/chat with an image, no projector: %d", status);
    cJSON_Delete(nj);
    CHECK(test_server_stop(&sv) == 0);
    free(b64), free(ob);

    cJSON_Delete(tj), cJSON_Delete(r1), cJSON_Delete(r2), cJSON_Delete(r3);
    free(a1), free(a2), free(a3);
    free(body), free(body2), free(expected), free(expected2), free(url), free(url2);
    free(png.p), free(png2.p);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    CHECK(system(cmd) == 0);
    return test_done("test_server_vision");
}
