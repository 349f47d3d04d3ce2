/*
 * fuzz_pii.c - the privacy guard on arbitrary bytes: gw_pii_scan must return
 * sorted, disjoint spans inside the text; redacting them and restoring the
 * result must give the text back byte for byte (when the text holds no '<',
 * which could spell a placeholder of its own); and restoring in pieces (cut
 * where the input's first byte says) must equal restoring at once. Both
 * date-of-birth modes. Built with -DHEARTH_FUZZ=ON as a libFuzzer target,
 * otherwise replays fuzz/corpus/pii/.
 */
#include "gateway/gateway.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const gw_pii *p, const char *text, size_t len, size_t step) {
    gw_span *sp = NULL;
    size_t n = 0;
    if (gw_pii_scan(p, text, len, &sp, &n)) abort();
    for (size_t i = 0; i < n; i++) {
        if (sp[i].start >= sp[i].end || sp[i].end > len) abort();
        if (i && sp[i].start < sp[i - 1].end) abort();
    }
    gw_redaction *r = gw_redaction_new();
    char *red = NULL;
    size_t red_len = 0;
    if (!r || gw_redact(r, text, len, sp, n, NULL, &red, &red_len)) abort();
    gw_buf whole = {0}, pieces = {0};
    if (gw_restore(r, red, red_len, &whole) || gw_buf_put(&whole, "", 0)) abort();
    if (!memchr(text, '<', len) && (whole.len != len || memcmp(whole.data, text, len))) abort();
    gw_restorer st;
    gw_restorer_init(&st, r);
    for (size_t at = 0; at < red_len; at += step) {
        const size_t k = red_len - at < step ? red_len - at : step;
        if (gw_restorer_feed(&st, red + at, k, &pieces)) abort();
    }
    if (gw_restorer_flush(&st, &pieces) || gw_buf_put(&pieces, "", 0)) abort();
    if (pieces.len != whole.len || memcmp(pieces.data, whole.data, whole.len)) abort();
    gw_buf_free(&whole);
    gw_buf_free(&pieces);
    free(red);
    gw_redaction_free(r);
    free(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static gw_pii *ctx, *all;
    if (!ctx && (gw_pii_new(GW_DOB_CONTEXT, &ctx) || gw_pii_new(GW_DOB_ALL, &all))) abort();
    if (size == 0) return 0;
    const size_t step = 1 + data[0] % 16;
    check(ctx, (const char *)data + 1, size - 1, step);
    check(all, (const char *)data + 1, size - 1, step);
    return 0;
}
