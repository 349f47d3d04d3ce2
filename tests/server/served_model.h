/*
 * served_model.h - what the sampler tests that compare `hearth serve`'s text
 * with the library's share (test_server_samplers, test_server_sampler_order):
 * the fixture model loaded with one thread, a prompt's ids (also as a JSON
 * array, a request's "prompt"), and a server on a --models-file that gives
 * that model "parameters".
 */
#ifndef HEARTH_TEST_SERVED_MODEL_H
#define HEARTH_TEST_SERVED_MODEL_H

#include "http_client.h"
#include "model_fixture.h"
#include "sse_choices.h"

typedef struct served_model {
    const char *path; /* fixture_server_model's */
    hearth_model *model;
    int32_t prompt[64];
    int n_prompt;
    char prompt_json[1024];
} served_model;

/* Loads the model for `test` (scratch: its mkdtemp template) and tokenizes
 * the prompt. False, with *skip, when the test must be skipped. */
static inline bool served_model_open(served_model *s, const char *test, char *scratch, bool *skip) {
    s->path = fixture_server_model(test, scratch, skip);
    if (*skip) return false;
    REQUIRE(s->path);
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 1;
    REQUIRE(hearth_model_load(s->path, &mp, &s->model) == HEARTH_OK);
    size_t n = 0;
    REQUIRE(hearth_tokenize(s->model, "Once upon a time there was", 26, true, true, s->prompt, 64,
                            &n) == HEARTH_OK);
    s->n_prompt = (int)n;
    ids_json(s->prompt, s->n_prompt, s->prompt_json, sizeof s->prompt_json);
    return true;
}

/* Starts sv on scratch/models.json: the model as "m", the default, with
 * `parameters` (a JSON object's text). */
static inline void served_model_start_file(const served_model *s, test_server *sv,
                                           const char *binary, const char *scratch,
                                           const char *parameters) {
    char file[4200], json[8400], args[4400];
    snprintf(file, sizeof file, "%s/models.json", scratch);
    snprintf(json, sizeof json,
             "{\"models\":[{\"name\":\"m\",\"path\":\"%s\",\"default\":true,\"parameters\":%s}]}",
             s->path, parameters);
    REQUIRE(test_write_file(file, json, strlen(json)));
    snprintf(args, sizeof args, "--models-file '%s' -t 1", file);
    REQUIRE(test_server_start_args(sv, binary, scratch, args));
}

#endif
