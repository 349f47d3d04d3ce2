/*
 * gen_collect.h - a token callback for the generation tests: it keeps the
 * ids and the text a generation hands out, and can stop it after a given
 * number of tokens (to test HEARTH_FINISH_CALLBACK). Header-only.
 */
#ifndef HEARTH_GEN_COLLECT_H
#define HEARTH_GEN_COLLECT_H

#include "hearth.h"

#include <string.h>

enum { COLLECT_MAX_IDS = 512 };

typedef struct collected {
    int32_t ids[COLLECT_MAX_IDS]; /* ids past the cap are dropped */
    int n;
    char text[8192]; /* NUL-terminated; pieces that would not fit are dropped */
    size_t len;
    int stop_after; /* callback returns false after this many tokens; 0: never */
} collected;

/* hearth_token_cb; `user` is a collected, zeroed (or with stop_after set)
 * before the generation. */
static inline bool collect(const hearth_token_event *ev, void *user) {
    collected *c = user;
    if (ev->id >= 0 && c->n < COLLECT_MAX_IDS) c->ids[c->n++] = ev->id;
    if (c->len + ev->len < sizeof c->text) {
        memcpy(c->text + c->len, ev->text, ev->len);
        c->len += ev->len;
        c->text[c->len] = '\0';
    }
    return !(c->stop_after && c->n >= c->stop_after);
}

#endif
