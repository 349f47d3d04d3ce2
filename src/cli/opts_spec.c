/*
 * opts_spec.c - speculative decoding's options, shared by run, chat and
 * serve (llama.cpp's names): -md/--model-draft, --spec-type,
 * --spec-draft-n-max, --spec-draft-p-min, --spec-ngram-size-n; and, for
 * run and chat, the draft model and session they load.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_spec_defaults(cli_spec_opts *o) { *o = (cli_spec_opts){.n_max = -1, .p_min = -1.0f}; }

int cli_spec_opt(const char *cmd, const char *a, const char *v, cli_spec_opts *o) {
    if (!strcmp(a, "-md") || !strcmp(a, "--model-draft") || !strcmp(a, "--spec-draft-model")) {
        o->draft_path = v;
        return 1;
    }
    if (!strcmp(a, "--spec-type")) {
        if (strcmp(v, "none") && strcmp(v, "draft") && strcmp(v, "ngram")) {
            fprintf(stderr, "hearth %s: --spec-type is none, draft or ngram, not '%s'\n", cmd, v);
            return -1;
        }
        o->type = v;
        return 1;
    }
    if (!strcmp(a, "--spec-draft-n-max") || !strcmp(a, "--draft-max")) {
        if (cli_parse_int(v, 0, CLI_SPEC_MAX, &o->n_max)) return 1;
        fprintf(stderr, "hearth %s: %s wants a whole number in 0..%d, not '%s'\n", cmd, a,
                CLI_SPEC_MAX, v);
        return -1;
    }
    if (!strcmp(a, "--spec-ngram-size-n")) {
        if (cli_parse_int(v, 1, 64, &o->ngram_n)) return 1;
        fprintf(stderr, "hearth %s: %s wants a whole number in 1..64, not '%s'\n", cmd, a, v);
        return -1;
    }
    if (!strcmp(a, "--spec-draft-p-min") || !strcmp(a, "--draft-p-min")) {
        char *end;
        errno = 0;
        const float p = strtof(v, &end);
        if (end != v && !*end && !errno && p >= 0.0f && p <= 1.0f) {
            o->p_min = p;
            return 1;
        }
        fprintf(stderr, "hearth %s: %s wants a probability in [0, 1], not '%s'\n", cmd, a, v);
        return -1;
    }
    return 0;
}

int cli_spec_resolve(const char *cmd, cli_spec_opts *o) {
    const char *type = o->type ? o->type : o->draft_path ? "draft" : "none";
    if (!strcmp(type, "draft") && !o->draft_path) {
        fprintf(stderr, "hearth %s: --spec-type draft needs a draft model (-md FILE)\n", cmd);
        return 2;
    }
    if (strcmp(type, "draft") != 0) o->draft_path = NULL;
    o->ngram = !strcmp(type, "ngram");
    if (!strcmp(type, "none"))
        o->n_max = 0;
    else if (o->n_max < 0)
        o->n_max = CLI_SPEC_N_MAX;
    if (o->p_min < 0) o->p_min = o->ngram ? 0.0f : CLI_SPEC_P_MIN;
    if (o->ngram_n <= 0) o->ngram_n = CLI_SPEC_NGRAM_SIZE;
    return 0;
}

int cli_spec_open(const char *cmd, cli_spec_opts *o, hearth_model *target,
                  const hearth_model_params *mp, const hearth_session_params *sp,
                  hearth_gen_params *gp) {
    if (o->draft_path && o->n_max > 0) {
        hearth_model_params dmp = *mp; /* the threads; the target's adapters are not the draft's */
        dmp.loras = NULL;
        dmp.n_loras = 0;
        if (hearth_model_load(o->draft_path, &dmp, &o->draft_model))
            return cli_fail(cmd, "loading the draft model");
        if (hearth_draft_check(target, o->draft_model)) return cli_fail(cmd, o->draft_path);
        if (hearth_session_new(o->draft_model, sp, &o->draft_session))
            return cli_fail(cmd, "creating the draft session");
    }
    gp->spec_n_max = o->draft_session || o->ngram ? o->n_max : 0;
    gp->draft = o->draft_session;
    gp->spec_p_min = o->p_min;
    gp->spec_ngram_n = o->ngram ? o->ngram_n : 0;
    return 0;
}

void cli_spec_close(cli_spec_opts *o) {
    hearth_session_free(o->draft_session);
    hearth_model_free(o->draft_model);
    o->draft_session = NULL;
    o->draft_model = NULL;
}

void cli_spec_report(const hearth_gen_result *r) {
    if (r->n_drafted > 0)
        fprintf(stderr, "speculative: %d tokens proposed, %d accepted (%.0f %%)\n", r->n_drafted,
                r->n_accepted, 100.0 * r->n_accepted / r->n_drafted);
}
