/*
 * stop.c - stop strings over streamed text.
 *
 * Generated text arrives in pieces (one per token) and a stop string may be
 * split across any number of them, so the matcher holds back the text from
 * the earliest position that is still a proper prefix of some stop string and
 * releases everything before it.
 *
 * Which stop ends the text: the one starting earliest; at equal starts the
 * shortest (then the first listed). A complete match is therefore decided
 * only when no earlier position is still undecided: with stops "\nUser:" and
 * "Us", the text "\nUs" is held whole, since "\nUser:" may yet complete. This
 * makes the result independent of how the text is cut into pieces.
 *
 * Invariants after each call:
 *   - released text never contains a stop string, nor any byte of the one
 *     that ended the generation;
 *   - held text is shorter than the longest stop string;
 *   - released + held + (stop and what followed it) == all text fed.
 *
 * Buffer: buf[0, emitted) was handed out by the last call and is dropped at
 * the next one; buf[emitted, emitted + held) is the held text.
 */
#include "sampling.h"

#include <stdlib.h>
#include <string.h>

struct smp_stop {
    int n_stops;
    char **stops; /* [n_stops], each a NUL-terminated copy */
    size_t *lens; /* [n_stops] */
    size_t max_len;

    char *buf;
    size_t cap;
    size_t emitted, held;
    bool stopped;
    int stop_index;
};

hearth_err smp_stop_new(const char *const *stops, int n_stops, smp_stop **out) {
    if (n_stops < 0 || (n_stops > 0 && !stops))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "stop strings: bad list (%d)", n_stops);
    for (int i = 0; i < n_stops; i++) {
        if (!stops[i] || !stops[i][0])
            return hr_fail(HEARTH_ERR_INVALID_ARG, "stop strings: string %d is empty", i);
    }
    smp_stop *st = hr_calloc(1, sizeof *st);
    if (!st) return HEARTH_ERR_NOMEM;
    st->stop_index = -1;
    if (n_stops > 0) {
        st->stops = hr_calloc((size_t)n_stops, sizeof *st->stops);
        st->lens = hr_calloc((size_t)n_stops, sizeof *st->lens);
        if (!st->stops || !st->lens) goto nomem;
    }
    st->n_stops = n_stops;
    for (int i = 0; i < n_stops; i++) {
        const size_t len = strlen(stops[i]);
        st->stops[i] = hr_calloc(len + 1, 1);
        if (!st->stops[i]) goto nomem;
        memcpy(st->stops[i], stops[i], len);
        st->lens[i] = len;
        if (len > st->max_len) st->max_len = len;
    }
    /* Room for the held text plus a typical token piece; grows for longer ones. */
    st->cap = st->max_len + 256;
    st->buf = hr_calloc(st->cap, 1);
    if (!st->buf) goto nomem;
    *out = st;
    return HEARTH_OK;
nomem:
    smp_stop_free(st);
    return hr_wrap(HEARTH_ERR_NOMEM, "stop strings: ");
}

void smp_stop_free(smp_stop *st) {
    if (!st) return;
    for (int i = 0; st->stops && i < st->n_stops; i++) free(st->stops[i]);
    free(st->stops);
    free(st->lens);
    free(st->buf);
    free(st);
}

void smp_stop_reset(smp_stop *st) {
    st->emitted = 0;
    st->held = 0;
    st->stopped = false;
    st->stop_index = -1;
}

size_t smp_stop_max_len(const smp_stop *st) { return st->max_len; }

/* Earliest position where a stop string occurs in text[0, n); at equal
 * starts the shortest, then the first listed. Returns n when there is none. */
static size_t find_stop(const smp_stop *st, const char *text, size_t n, int *which) {
    for (size_t pos = 0; pos < n; pos++) {
        int best = -1;
        for (int k = 0; k < st->n_stops; k++) {
            const size_t len = st->lens[k];
            if (len <= n - pos && text[pos] == st->stops[k][0] &&
                memcmp(text + pos, st->stops[k], len) == 0 && (best < 0 || len < st->lens[best]))
                best = k;
        }
        if (best >= 0) {
            *which = best;
            return pos;
        }
    }
    return n;
}

/* Length of the longest suffix of text[0, n) that is a proper prefix of some
 * stop string: the bytes that are not decided yet. */
static size_t undecided_tail(const smp_stop *st, const char *text, size_t n) {
    size_t h = st->max_len > 0 ? st->max_len - 1 : 0;
    if (h > n) h = n;
    for (; h > 0; h--) {
        for (int k = 0; k < st->n_stops; k++) {
            if (st->lens[k] > h && memcmp(text + n - h, st->stops[k], h) == 0) return h;
        }
    }
    return 0;
}

static void out_set(smp_stop_out *out, const char *text, size_t len, const smp_stop *st) {
    out->text = text;
    out->len = len;
    out->stopped = st->stopped;
    out->stop_index = st->stop_index;
}

hearth_err smp_stop_feed(smp_stop *st, const char *piece, size_t len, smp_stop_out *out) {
    if (st->stopped) {
        out_set(out, st->buf, 0, st);
        return HEARTH_OK;
    }
    /* Drop what the last call handed out; the held text moves to the front. */
    if (st->emitted > 0 && st->held > 0) memmove(st->buf, st->buf + st->emitted, st->held);
    st->emitted = 0;

    uint64_t need;
    if (!hr_add_ok(st->held, len, &need) || need > SIZE_MAX / 2)
        return hr_fail(HEARTH_ERR_NOMEM, "stop strings: a piece of %zu bytes", len);
    if (need > st->cap) {
        const size_t cap = (size_t)need > 2 * st->cap ? (size_t)need : 2 * st->cap;
        char *grown = realloc(st->buf, cap);
        if (!grown) return hr_fail(HEARTH_ERR_NOMEM, "stop strings: growing to %zu bytes", cap);
        st->buf = grown;
        st->cap = cap;
    }
    if (len > 0) memcpy(st->buf + st->held, piece, len);
    const size_t n = (size_t)need;

    int which = -1;
    const size_t pos = find_stop(st, st->buf, n, &which);
    const size_t decided = n - undecided_tail(st, st->buf, n);
    if (pos < n && pos <= decided) {
        st->stopped = true;
        st->stop_index = which;
        st->held = 0;
        out_set(out, st->buf, pos, st);
        return HEARTH_OK;
    }
    /* No stop yet, or one after a position that may still become an earlier
     * stop: release what is decided and hold the rest. */
    st->held = n - decided;
    st->emitted = decided;
    out_set(out, st->buf, st->emitted, st);
    return HEARTH_OK;
}

void smp_stop_flush(smp_stop *st, smp_stop_out *out) {
    if (st->stopped) {
        out_set(out, st->buf, 0, st);
        return;
    }
    /* Nothing more will come, so a complete stop held behind an undecided
     * prefix is decided now. */
    const char *held = st->buf + st->emitted;
    int which = -1;
    const size_t pos = find_stop(st, held, st->held, &which);
    if (pos < st->held) {
        st->stopped = true;
        st->stop_index = which;
    }
    out_set(out, held, pos, st);
    /* What was held is now handed out or dropped: the next call discards it. */
    st->emitted += st->held;
    st->held = 0;
}
