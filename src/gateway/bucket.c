/*
 * bucket.c - a token bucket: up to `per_minute` units, refilled
 * continuously at per_minute a minute, so a limit of 60 allows 60 at once
 * and then one a second. API keys (keys.c) and remote tiers (cloud.c) count
 * requests and tokens with it. The level may go below zero (a request's
 * tokens are known only when it ends); callers hold their own lock.
 */
#include "gateway.h"

#include <math.h>

void gw_bucket_init(gw_bucket *b, int per_minute, int64_t now_ms) {
    b->per_minute = per_minute;
    b->level = per_minute;
    b->at_ms = now_ms;
}

double gw_bucket_level(gw_bucket *b, int64_t now_ms) {
    if (now_ms > b->at_ms) {
        b->level =
            fmin(b->per_minute, b->level + (double)(now_ms - b->at_ms) * b->per_minute / 6e4);
        b->at_ms = now_ms;
    }
    return b->level;
}

double gw_bucket_wait_s(const gw_bucket *b, double need) {
    return b->per_minute && b->level < need ? (need - b->level) * 60.0 / b->per_minute : 0.0;
}

double gw_bucket_full_s(const gw_bucket *b) { return gw_bucket_wait_s(b, b->per_minute); }
