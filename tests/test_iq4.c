/*
 * test_iq4.c - IQ4_NL and IQ4_XS models end to end, without llama.cpp or
 * ../shared: small random models written with IQ4 weights (synth, and
 * quant_model with --tensor-type overrides, whose IQ4_XS rows that 256 does
 * not divide fall back to IQ4_NL as llama-quantize's do), loaded and run
 * under every instruction set this CPU has (HEARTH_ISA caps, one child
 * process each: dispatch is chosen once per process) and in exact mode
 * (HEARTH_EXACT: scalar code in llama.cpp's order). The SIMD forward must
 * agree with the scalar one within float rounding of the products (which
 * now and then moves an activation's 8-bit code, hence rms and argmax
 * bounds, not bits), batch and one token at a time must agree, and the
 * blocks in the files must be the scalar reference's.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#include "hearth.h"
#include "kernels/kernels.h"
#include "model/gguf.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "test.h"

#include <math.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { N_IDS = 24, MAX_VOCAB = 4096 };

static char tmp_dir[64];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static const int32_t k_ids[N_IDS] = {1,   300, 301, 302, 40,  50,  60,  70,  80,  90,  100, 110,
                                     120, 130, 140, 150, 160, 170, 180, 190, 200, 210, 220, 230};

/* What one child computes: logits of k_ids as one batch and one token at a
 * time, the vocabulary size and the instruction set it ran. */
typedef struct run_out {
    int ok, n_vocab;
    char isa[32];
    float batch[N_IDS * MAX_VOCAB], incr[N_IDS * MAX_VOCAB];
} run_out;

static int child_run(const char *path, const char *cap, bool exact, run_out *o) {
    if (cap)
        setenv("HEARTH_ISA", cap, 1);
    else
        unsetenv("HEARTH_ISA");
    setenv("HEARTH_EXACT", exact ? "1" : "0", 1);
    hearth_model *m = NULL;
    if (hearth_model_load(path, NULL, &m) != HEARTH_OK) {
        fprintf(stderr, "test_iq4: %s: %s\n", path, hearth_last_error());
        return 1;
    }
    const int nv = hearth_model_n_vocab(m);
    if (nv > MAX_VOCAB) return 1;
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    hearth_session *s1 = NULL, *s2 = NULL;
    if (hearth_session_new(m, &sp, &s1) || hearth_session_new(m, &sp, &s2)) return 1;
    if (hearth_decode(s1, k_ids, N_IDS, o->batch, true)) return 1;
    for (int i = 0; i < N_IDS; i++)
        if (hearth_decode(s2, &k_ids[i], 1, o->incr + (size_t)i * nv, false)) return 1;
    o->n_vocab = nv;
    snprintf(o->isa, sizeof o->isa, "%s%s", kern_isa_name(), exact ? "+exact" : "");
    o->ok = 1;
    hearth_session_free(s1);
    hearth_session_free(s2);
    hearth_model_free(m);
    return 0;
}

/* Runs the model in a child under HEARTH_ISA=cap (NULL: no cap); the
 * result lands in *o (shared memory). */
static bool run(const char *path, const char *cap, bool exact, run_out *o) {
    memset(o, 0, sizeof *o);
    fflush(NULL);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(child_run(path, cap, exact, o));
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0 && o->ok, "%s under %s: child failed",
           path, cap ? cap : "(no cap)");
    return o->ok != 0;
}

typedef struct cmp {
    double max, rms, ref_rms;
    int argmax_same;
} cmp;

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static cmp compare(const float *a, const float *b, int nv) {
    cmp c = {0, 0, 0, 0};
    for (int r = 0; r < N_IDS; r++) {
        const float *x = a + (size_t)r * nv, *y = b + (size_t)r * nv;
        for (int i = 0; i < nv; i++) {
            const double d = fabs((double)x[i] - (double)y[i]);
            if (!(d <= c.max)) c.max = d; /* NaN fails */
            c.rms += d * d;
            c.ref_rms += (double)y[i] * y[i];
        }
        c.argmax_same += argmax(x, nv) == argmax(y, nv);
    }
    c.rms = sqrt(c.rms / ((double)N_IDS * nv));
    c.ref_rms = sqrt(c.ref_rms / ((double)N_IDS * nv));
    return c;
}

/* a against the reference b: a wrong nibble, scale or order of blocks moves
 * logits by about their own size; float rounding by far less (an 8-bit code
 * that flips moves a few logits by up to ~0.3 in these small models). */
static void check_close(const char *what, const float *a, const float *b, int nv) {
    const cmp c = compare(a, b, nv);
    CHECKF(c.rms <= 0.02 * c.ref_rms && c.argmax_same >= N_IDS - 2 &&
               c.max <= 0.1 * c.ref_rms + 0.5,
           "%s: max %.3g rms %.3g (logits rms %.3g), argmax %d/%d", what, c.max, c.rms, c.ref_rms,
           c.argmax_same, N_IDS);
}

/* Every instruction set against the scalar kernels, exact mode against
 * them, and batch against one token at a time. */
static void check_model(const char *path, const char *what, run_out *ref, run_out *o) {
    static const char *const caps[] = {"avx2", "avx512", NULL};
    if (!run(path, "scalar", false, ref)) return;
    CHECK(strcmp(ref->isa, "scalar") == 0);
    const int nv = ref->n_vocab;
    char label[160];
    snprintf(label, sizeof label, "%s scalar: batch vs one token", what);
    check_close(label, ref->batch, ref->incr, nv);
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        if (!run(path, caps[i], false, o)) continue;
        snprintf(label, sizeof label, "%s %s vs scalar", what, o->isa);
        check_close(label, o->batch, ref->batch, nv);
        snprintf(label, sizeof label, "%s %s one token vs scalar", what, o->isa);
        check_close(label, o->incr, ref->incr, nv);
        printf("test_iq4: %s: %s max |diff| %.3g vs scalar\n", what, o->isa,
               compare(o->batch, ref->batch, nv).max);
    }
    if (run(path, NULL, true, o)) {
        snprintf(label, sizeof label, "%s exact vs scalar", what);
        check_close(label, o->batch, ref->batch, nv);
        check_close(label, o->incr, ref->incr, nv);
    }
}

static void name_of(const gguf_tensor *t, char *out, size_t cap) {
    REQUIRE(t->name.len < cap);
    memcpy(out, t->name.ptr, (size_t)t->name.len);
    out[t->name.len] = '\0';
}

/* quant_model's IQ4 tensors against the F32 source quantized by the
 * reference; counts the tensors of each IQ4 type. */
static void check_quantized(const char *f32_path, const char *q_path, int *n_nl, int *n_xs) {
    gguf_file *a = NULL, *b = NULL;
    REQUIRE(gguf_open(f32_path, &a) == HEARTH_OK && gguf_open(q_path, &b) == HEARTH_OK);
    *n_nl = *n_xs = 0;
    for (int64_t i = 0; i < gguf_n_tensors(b); i++) {
        const gguf_tensor *t = gguf_tensor_at(b, i);
        if (t->type != KERN_IQ4_NL && t->type != KERN_IQ4_XS) continue;
        char name[128];
        name_of(t, name, sizeof name);
        const gguf_tensor *s = gguf_find_tensor(a, name);
        REQUIRE(s && s->type == KERN_F32 && s->n_elements == t->n_elements);
        const int64_t nc = s->ne[0], nr = s->n_elements / nc;
        const size_t rb = kern_row_bytes((kern_type)t->type, nc);
        uint8_t *row = malloc(rb);
        float *src = malloc(sizeof(float) * (size_t)nc);
        REQUIRE(row && src);
        int bad = 0;
        for (int64_t r = 0; r < nr; r++) {
            memcpy(src, (const float *)s->data + r * nc, sizeof(float) * (size_t)nc);
            kern_ref_quantize_row((kern_type)t->type, src, row, nc);
            bad += memcmp(row, (const uint8_t *)t->data + (size_t)r * rb, rb) != 0;
        }
        CHECKF(bad == 0, "%s: %s: %d rows differ from the reference", q_path, name, bad);
        *(t->type == KERN_IQ4_NL ? n_nl : n_xs) += 1;
        free(row), free(src);
    }
    gguf_close(a);
    gguf_close(b);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hearth_iq4_XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    run_out *ref =
        mmap(NULL, sizeof *ref, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    run_out *o = mmap(NULL, sizeof *o, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(ref != MAP_FAILED && o != MAP_FAILED);
    char path[128], f32[128];

    /* IQ4_XS throughout (rows of 256 and 512) */
    synth_params p = synth_default_params();
    p.type = KERN_IQ4_XS;
    tmp_path(path, sizeof path, "llama.IQ4_XS.gguf");
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    check_model(path, "llama IQ4_XS", ref, o);

    /* IQ4_NL with odd block counts (rows of 160 and 416: 5 and 13 blocks),
     * tied output (a product whose rows are the vocabulary) */
    p = synth_default_params();
    p.arch = "qwen2";
    p.type = KERN_IQ4_NL;
    p.n_embd = 160;
    p.n_head = 5;
    p.n_head_kv = 1;
    p.head_dim = 32;
    p.n_ff = 416;
    p.tied = true;
    tmp_path(path, sizeof path, "qwen2.IQ4_NL.gguf");
    REQUIRE(synth_write(path, &p) == HEARTH_OK);
    check_model(path, "qwen2 IQ4_NL", ref, o);

    /* quant_model: every blk tensor to IQ4_XS; rows of 384 fall back to
     * IQ4_NL, ffn_down (rows of 512) stays IQ4_XS, as llama-quantize does
     * for Qwen2-shaped files */
    p = synth_default_params();
    p.arch = "qwen2";
    p.n_embd = 384;
    p.n_head = 6;
    p.n_head_kv = 2;
    p.head_dim = 64;
    p.n_ff = 512;
    p.tied = true;
    tmp_path(f32, sizeof f32, "qwen2.F32.gguf");
    tmp_path(path, sizeof path, "qwen2.IQ4_XS-mix.gguf");
    REQUIRE(synth_write(f32, &p) == HEARTH_OK);
    quant_params qp = quant_default_params();
    REQUIRE(quant_ftype_parse("Q8_0", &qp.ftype));
    qp.n_threads = 2;
    const quant_override ov = {"blk.", KERN_IQ4_XS};
    qp.overrides = &ov;
    qp.n_overrides = 1;
    quant_stats st;
    REQUIRE(quant_model(f32, path, &qp, &st) == HEARTH_OK);
    int n_nl = 0, n_xs = 0;
    check_quantized(f32, path, &n_nl, &n_xs);
    CHECKF(n_xs == 2 && n_nl == 12, "IQ4_XS override: %d iq4_xs, %d iq4_nl tensors", n_xs, n_nl);
    CHECK(st.n_fallback == 12);
    check_model(path, "qwen2 IQ4_XS+IQ4_NL", ref, o);

    /* IQ4_XS and IQ4_NL are presets too (llama-quantize's file types 30 and 25) */
    quant_ftype ft;
    CHECK(quant_ftype_parse("IQ4_XS", &ft) && ft == QUANT_FTYPE_IQ4_XS);
    CHECK(quant_ftype_parse("iq4_nl", &ft) && ft == QUANT_FTYPE_IQ4_NL);

    tmp_path(path, sizeof path, "llama.IQ4_XS.gguf");
    remove(path);
    tmp_path(path, sizeof path, "qwen2.IQ4_NL.gguf");
    remove(path);
    tmp_path(path, sizeof path, "qwen2.IQ4_XS-mix.gguf");
    remove(path);
    remove(f32);
    rmdir(tmp_dir);
    munmap(ref, sizeof *ref);
    munmap(o, sizeof *o);
    return test_done("test_iq4");
}
