/*
 * rng.c - the project's one pseudo-random generator, so that a seed gives the
 * same numbers on every platform and C library (rand() and std::mt19937's
 * distributions do not promise that): the samplers draw tokens from it and
 * `hearth synth` draws random weights.
 *
 * Generator: xoshiro256** 1.0 (Blackman & Vigna, https://prng.di.unimi.it/),
 * state expanded from the 64-bit seed with splitmix64 as its authors advise.
 * Uniform doubles take the top 53 bits, the form the authors recommend.
 */
#include "core.h"

#include <stdatomic.h>
#include <time.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void hr_rng_seed(hr_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
    /* splitmix64 is a bijection of its counter, so four consecutive outputs
     * cannot all be zero; the all-zero state (a fixed point) is unreachable. */
}

uint64_t hr_rng_next(hr_rng *rng) {
    uint64_t *s = rng->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double hr_rng_uniform(hr_rng *rng) { return (double)(hr_rng_next(rng) >> 11) * 0x1.0p-53; }

float hr_rng_uniform_f(hr_rng *rng) {
    return (float)(uint32_t)(hr_rng_next(rng) >> 40) * 0x1.0p-24f;
}

uint64_t hr_seed_from_entropy(void) {
    /* Two samplers created in the same clock tick must still differ: the
     * counter sees to that, the clocks and an address vary between runs. */
    static atomic_uint_fast64_t counter;
    struct timespec rt = {0}, mono = {0};
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t x = (uint64_t)rt.tv_sec * 1000000007ULL ^ (uint64_t)rt.tv_nsec;
    x ^= rotl64((uint64_t)mono.tv_nsec ^ ((uint64_t)mono.tv_sec << 32), 17);
    x ^= rotl64((uint64_t)(uintptr_t)&counter, 41);
    x ^= (uint64_t)atomic_fetch_add(&counter, 1) * 0xd1342543de82ef95ULL;
    return splitmix64(&x);
}
