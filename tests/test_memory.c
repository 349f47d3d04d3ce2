/*
 * test_memory.c - the memory statement of the README: weights are used in
 * place from the mapped file or packed once for the kernels with the file's
 * pages of them handed back (never held twice, never dequantized), the KV cache
 * costs resident memory only for the positions written, so the peak resident
 * set after loading a model and decoding stays within file + buffers + the
 * KV rows used + a small overhead. Also hearth_session_memory's figures.
 *
 * The peak is Linux's VmHWM, reset to the current RSS by writing 5 to
 * /proc/self/clear_refs after the fixture is written; skipped where that is
 * unavailable and under AddressSanitizer or ThreadSanitizer (their shadow memory is
 * resident too).
 */
#include "hearth.h"
#include "model/synth.h"
#include "test.h"

#include <unistd.h>

/* Stated in the README: tokenizer tables, thread stacks, allocator slack. */
#define OVERHEAD_MIB 16

/* "VmHWM" or "VmRSS" of this process in bytes, 0 if unreadable. */
static unsigned long long status_bytes(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kib = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            kib = strtoull(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib * 1024;
}

static bool reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

int main(void) {
#if TEST_SANITIZED
    printf("test_memory: skipped: a sanitizer's shadow memory counts in the resident set\n");
    return TEST_SKIP;
#endif
    char path[] = "/tmp/hearth-test-memory-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    /* About 32 MB of Q8_0 weights: a copy of them would show plainly. */
    synth_params sp = synth_default_params();
    sp.type = KERN_Q8_0;
    sp.n_embd = 512;
    sp.n_layer = 10;
    sp.n_head = 8;
    sp.n_head_kv = 4;
    sp.n_ff = 1536;
    sp.n_ctx = 8192;
    REQUIRE(synth_write(path, &sp) == HEARTH_OK);

    if (!reset_peak() || !status_bytes("VmHWM")) {
        unlink(path);
        printf("test_memory: skipped: /proc/self/clear_refs or VmHWM is unavailable\n");
        return TEST_SKIP;
    }
    const unsigned long long before = status_bytes("VmHWM");

    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, &mp, &m) == HEARTH_OK);
    hearth_session_params ps = hearth_session_default_params();
    ps.n_ctx = 8192; /* an 80 MiB F16 cache (the default), of which the test writes 2 % */
    CHECK(ps.kv_type == HEARTH_KV_F16);
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &ps, &s) == HEARTH_OK);

    enum { N_PROMPT = 150, N_GEN = 20 };
    int32_t ids[N_PROMPT];
    const int n_vocab = hearth_model_n_vocab(m);
    for (int i = 0; i < N_PROMPT; i++) ids[i] = (int32_t)((i * 7919 + 3) % n_vocab);
    REQUIRE(hearth_decode(s, ids, N_PROMPT, NULL, false) == HEARTH_OK);
    for (int i = 0; i < N_GEN; i++) REQUIRE(hearth_decode(s, &ids[i], 1, NULL, false) == HEARTH_OK);

    const hearth_memory mem = hearth_session_memory(s);
    const unsigned long long peak = status_bytes("VmHWM") - before;
    const double mib = 1024.0 * 1024.0;
    const long long file = (long long)mem.file_bytes;
    /* packed weights: their copy replaces their pages of the file */
    const unsigned long long model = mem.file_bytes - mem.packed_file_bytes + mem.packed_bytes;
    printf("test_memory: file %.1f MiB (%.1f MiB of it packed into %.1f MiB), KV %.1f MiB (%d of "
           "%d positions written), buffers %.1f MiB; peak RSS grew by %.1f MiB\n",
           (double)file / mib, (double)mem.packed_file_bytes / mib, (double)mem.packed_bytes / mib,
           (double)mem.kv_bytes / mib, N_PROMPT + N_GEN, ps.n_ctx, (double)mem.buffer_bytes / mib,
           (double)peak / mib);
    CHECK(mem.packed_file_bytes <= mem.file_bytes);
    CHECK((mem.packed_bytes == 0) == (mem.packed_file_bytes == 0));
    /* Q8_0's packed layout has the file's size, but for the last panel's padding rows */
    CHECK(mem.packed_bytes >= mem.packed_file_bytes &&
          mem.packed_bytes - mem.packed_file_bytes < mem.packed_file_bytes / 64);

    CHECKF(file > 25 * 1024 * 1024, "the fixture is too small to tell a copy: %lld bytes", file);
    /* hearth_session_memory: 2 caches of n_layer x n_ctx x n_kv F16 elements. */
    const unsigned long long kv_expect =
        2ull * (unsigned)sp.n_layer * 8192 * (unsigned)(sp.n_head_kv * sp.head_dim) * 2;
    CHECKF(mem.kv_bytes == kv_expect, "kv_bytes %llu, expected %llu",
           (unsigned long long)mem.kv_bytes, kv_expect);
    CHECK(mem.buffer_bytes > 0 && mem.buffer_bytes < mem.kv_bytes);
    /* The written rows of the cache: at most one page per layer, kv head and
     * K tile or V run beyond the positions themselves. */
    const unsigned long long kv_used = mem.kv_bytes / 8192 * (N_PROMPT + N_GEN) +
                                       2ull * (unsigned)(sp.n_layer * sp.n_head_kv) * 2 * 4096;
    const unsigned long long bound =
        model + mem.buffer_bytes + kv_used + OVERHEAD_MIB * 1024ull * 1024ull;
    CHECKF(peak <= bound, "peak RSS grew by %.1f MiB, over the %.1f MiB bound", (double)peak / mib,
           (double)bound / mib);
    /* The weights were read: they are resident, so the bound is not vacuous. */
    CHECKF(peak >= model / 2, "peak RSS grew by only %.1f MiB", (double)peak / mib);

    hearth_session_free(s);
    hearth_model_free(m);
    unlink(path);
    return test_done("test_memory");
}
