/*
 * test_imatrix.c - importance matrices (model/imatrix.c, imatrix_collect.c,
 * cmd_imatrix.c) and quantize --imatrix (model/quantize.c).
 *
 * Without ../shared, on small random llamas: what the collector counts (the
 * entries, every token of a batch of 16 or more, none of a shorter one, the
 * same sums for products that read the same input, output.weight only when
 * asked and untied); both file forms written and read back; damaged and
 * foreign files refused with a message; the weights, the imatrix type rules
 * (Q4_0's first eighth of ffn_down Q4_1, IQ4_XS's not Q5_K), Q2_K_S's need
 * of an imatrix, an entry of the wrong size and the quantize.imatrix.* keys.
 *
 * With ../shared: `HEARTH_EXACT=1 hearth imatrix` and `hearth quantize
 * --imatrix` on tiny-llama and tiny-phi3 against FNV-1a-64 hashes of what
 * llama.cpp (commit 34af94cd) wrote for the same command lines, run in a
 * directory holding text.txt (the first 30000 bytes of
 * ../shared/data/intent/banking77/train.csv):
 *   llama-imatrix -m MODEL -f text.txt -o im.gguf -c 128 -b 128 --chunks 8 -t 2 -fa off
 *   llama-imatrix ... -o im.dat --output-format dat
 *   llama-quantize --imatrix im.gguf MODEL OUT TYPE 2  (and --imatrix im.dat)
 * The paths matter: the files record "text.txt" and "im.gguf"/"im.dat".
 * Then --in-file's combining, continuing and --show-statistics on
 * tiny-llama's files against llama-imatrix's (derived_test).
 */
#include "hearth.h"
#include "model/gguf.h"
#include "model/imatrix.h"
#include "model/quantize.h"
#include "golden.h"
#include "model/synth.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp_dir[64];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static uint64_t file_hash(const char *path) {
    size_t n;
    char *b = golden_read(path, &n);
    const uint64_t h = b ? test_fnv1a(TEST_FNV_SEED, b, n) : 0;
    free(b);
    return h;
}

/* ---- the collector ---- */

typedef struct fixture {
    hearth_model *m;
    hearth_session *s;
    imatrix_collector *c;
} fixture;

static void fixture_open(fixture *fx, const char *path, bool with_output) {
    hearth_model_params mp = hearth_model_default_params();
    mp.n_threads = 2;
    REQUIRE(hearth_model_load(path, &mp, &fx->m) == HEARTH_OK);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 128;
    sp.n_batch = 64;
    REQUIRE(hearth_session_new(fx->m, &sp, &fx->s) == HEARTH_OK);
    REQUIRE(imatrix_collector_new(fx->m, with_output, 32, NULL, &fx->c) == HEARTH_OK);
    imatrix_collector_attach(fx->c, fx->s);
}

static void fixture_close(fixture *fx) {
    imatrix_collector_free(fx->c);
    hearth_session_free(fx->s);
    hearth_model_free(fx->m);
}

/* n tokens in one call; every row's logits (so output.weight sees n rows, as
 * in hearth imatrix), or only the last one's. */
static void decode_rows(fixture *fx, int n, int seed, bool all_logits) {
    int32_t ids[64];
    REQUIRE(n <= 64);
    float *logits = malloc((size_t)n * (size_t)hearth_model_n_vocab(fx->m) * sizeof *logits);
    REQUIRE(logits);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((seed * 131 + i * 17) % 200 + 1);
    REQUIRE(hearth_decode(fx->s, ids, n, logits, all_logits) == HEARTH_OK);
    free(logits);
}

static void decode(fixture *fx, int n, int seed) { decode_rows(fx, n, seed, false); }

static bool same_sums(const imatrix *im, const char *a, const char *b) {
    const imatrix_entry *x = imatrix_find(im, a), *y = imatrix_find(im, b);
    return x && y && x->n_cols == y->n_cols &&
           !memcmp(x->sums, y->sums, (size_t)x->n_cols * sizeof *x->sums);
}

/* Writes the collected matrix both ways and reads it back; returns the GGUF one. */
static imatrix *round_trip(const imatrix *im) {
    char gg[128], dat[128];
    tmp_path(gg, sizeof gg, "im.gguf");
    tmp_path(dat, sizeof dat, "im.dat");
    CHECK(imatrix_save(im, gg, false) == HEARTH_OK);
    CHECK(imatrix_save(im, dat, true) == HEARTH_OK);
    imatrix *a = NULL, *b = NULL;
    REQUIRE(imatrix_load(gg, &a) == HEARTH_OK);
    REQUIRE(imatrix_load(dat, &b) == HEARTH_OK);
    CHECK(!a->legacy && b->legacy);
    CHECK(a->n_entries == im->n_entries && b->n_entries == im->n_entries);
    CHECK(a->chunk_count == im->chunk_count && a->chunk_size == im->chunk_size);
    CHECK(b->chunk_count == im->chunk_count && b->chunk_size == 0);
    CHECK(a->n_datasets == 1 && !strcmp(a->datasets[0], "calib.txt"));
    CHECK(b->n_datasets == 1 && !strcmp(b->datasets[0], "calib.txt"));
    for (int64_t i = 0; i < im->n_entries && i < a->n_entries && i < b->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i], *ea = &a->entries[i], *eb = &b->entries[i];
        CHECK(!strcmp(e->name, ea->name) && !strcmp(e->name, eb->name));
        CHECK(ea->n_cols == e->n_cols && ea->counts[0] == e->counts[0]);
        CHECK(!memcmp(ea->sums, e->sums, (size_t)e->n_cols * sizeof *e->sums));
        /* two chunks: the legacy mean times 2 divides back to the same weights */
        float wa[1024], wb[1024];
        REQUIRE(e->n_cols <= 1024);
        imatrix_weights(ea, false, wa);
        imatrix_weights(eb, true, wb);
        CHECK(eb->counts[0] == 2 && !memcmp(wa, wb, (size_t)e->n_cols * sizeof *wa));
        CHECK(wa[0] == e->sums[0] / (float)e->counts[0]);
    }
    imatrix_free(b);
    return a;
}

static void collector_test(const char *path, const char *tied_path) {
    fixture fx;
    fixture_open(&fx, path, false);
    const imatrix *im = NULL;
    CHECK(imatrix_collector_result(fx.c, NULL, &im) == HEARTH_ERR_INVALID_ARG); /* nothing yet */
    decode(&fx, 8, 1); /* under 16 rows: not counted (llama-imatrix's rule) */
    CHECK(imatrix_collector_tokens(fx.c) == 0);
    decode(&fx, 40, 2);
    decode(&fx, 24, 3);
    CHECK(imatrix_collector_tokens(fx.c) == 64);
    REQUIRE(imatrix_collector_result(fx.c, "calib.txt", &im) == HEARTH_OK);
    CHECK(im->n_entries == 2 * 7); /* q k v o gate up down per layer */
    CHECK(im->chunk_count == 2 && im->chunk_size == 32);
    CHECK(!imatrix_find(im, "output.weight") && !imatrix_find(im, "token_embd.weight"));
    for (int64_t i = 0; i < im->n_entries; i++) {
        const imatrix_entry *e = &im->entries[i];
        CHECK(e->counts[0] == 64 && e->n_mat == 1);
        CHECK(e->n_cols == (strstr(e->name, "ffn_down") ? 512 : 256));
        bool positive = true;
        for (int64_t j = 0; j < e->n_cols; j++) positive &= e->sums[j] > 0;
        CHECK(positive);
        if (i > 0) CHECK(strcmp(im->entries[i - 1].name, e->name) < 0);
    }
    CHECK(same_sums(im, "blk.1.attn_q.weight", "blk.1.attn_k.weight"));
    CHECK(same_sums(im, "blk.1.attn_q.weight", "blk.1.attn_v.weight"));
    CHECK(same_sums(im, "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight"));
    CHECK(!same_sums(im, "blk.0.attn_q.weight", "blk.1.attn_q.weight"));
    imatrix *back = round_trip(im);
    /* --include-weights / --exclude-weights */
    const char *inc[] = {"attn_q", "ffn_down"}, *exc[] = {"blk.0."};
    imatrix_filter(back, inc, 2, exc, 1);
    CHECK(back->n_entries == 2 && !strcmp(back->entries[0].name, "blk.1.attn_q.weight") &&
          !strcmp(back->entries[1].name, "blk.1.ffn_down.weight"));
    imatrix_free(back);
    fixture_close(&fx);

    /* --process-output: output.weight, never a tied embedding */
    fixture_open(&fx, path, true);
    decode(&fx, 20, 4); /* one row of logits: output.weight is not counted */
    decode_rows(&fx, 20, 4, true);
    REQUIRE(imatrix_collector_result(fx.c, NULL, &im) == HEARTH_OK);
    CHECK(imatrix_find(im, "blk.0.attn_q.weight")->counts[0] == 40);
    const imatrix_entry *out = imatrix_find(im, "output.weight");
    CHECK(im->n_entries == 15 && out && out->n_cols == 256 && out->counts[0] == 20);
    CHECK(im->n_datasets == 0 && im->chunk_count == 1);
    fixture_close(&fx);
    fixture_open(&fx, tied_path, true);
    decode(&fx, 20, 4);
    REQUIRE(imatrix_collector_result(fx.c, NULL, &im) == HEARTH_OK);
    CHECK(im->n_entries == 14 && !imatrix_find(im, "output.weight"));
    fixture_close(&fx);
}

/* Continuing from a prior (--in-file with a text): the sums go on from the
 * prior's, so a collection split in two equals one made at once, bit for
 * bit; the prior's other entries and datasets are kept; a prior entry of
 * another width is refused. */
static void continue_test(const char *path) {
    fixture one, first, second;
    fixture_open(&one, path, false);
    decode(&one, 40, 2);
    decode(&one, 24, 3);
    const imatrix *all = NULL, *half = NULL, *cont = NULL;
    REQUIRE(imatrix_collector_result(one.c, "b.txt", &all) == HEARTH_OK);
    fixture_open(&first, path, false);
    decode(&first, 40, 2);
    REQUIRE(imatrix_collector_result(first.c, "a.txt", &half) == HEARTH_OK);
    /* the prior gets an entry no weight of the model has */
    imatrix *prior = hr_calloc(1, sizeof *prior);
    REQUIRE(prior && imatrix_merge(prior, half, 32) == HEARTH_OK);
    imatrix_entry extra = {.name = "blk.9.other.weight",
                           .n_cols = 2,
                           .n_mat = 1,
                           .sums = (float[]){1, 2},
                           .counts = (int64_t[]){64}};
    imatrix lone = {.entries = &extra, .n_entries = 1};
    REQUIRE(imatrix_merge(prior, &lone, 32) == HEARTH_OK);
    hearth_model_params mp = hearth_model_default_params();
    REQUIRE(hearth_model_load(path, &mp, &second.m) == HEARTH_OK);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 128;
    sp.n_batch = 64;
    REQUIRE(hearth_session_new(second.m, &sp, &second.s) == HEARTH_OK);
    decode(&second, 40, 2); /* unobserved: the same positions for the rest */
    REQUIRE(imatrix_collector_new(second.m, false, 32, prior, &second.c) == HEARTH_OK);
    imatrix_collector_attach(second.c, second.s);
    decode(&second, 24, 3);
    REQUIRE(imatrix_collector_result(second.c, "b.txt", &cont) == HEARTH_OK);
    CHECK(cont->n_entries == all->n_entries + 1 && imatrix_find(cont, "blk.9.other.weight"));
    CHECK(cont->n_datasets == 2 && !strcmp(cont->datasets[0], "a.txt") &&
          !strcmp(cont->datasets[1], "b.txt"));
    CHECK(cont->chunk_count == 2 && cont->chunk_size == 32);
    for (int64_t i = 0; i < all->n_entries; i++) {
        const imatrix_entry *a = &all->entries[i], *c = imatrix_find(cont, a->name);
        CHECKF(c && c->counts[0] == a->counts[0] &&
                   !memcmp(c->sums, a->sums, (size_t)a->n_cols * sizeof *a->sums),
               "%s", a->name);
    }
    fixture_close(&second);
    /* a prior whose entry for a weight of the model has another width */
    prior->entries[0].n_cols--;
    imatrix_collector *c = NULL;
    CHECK(imatrix_collector_new(one.m, false, 32, prior, &c) == HEARTH_ERR_FORMAT && !c);
    CHECK(strstr(hearth_last_error(), prior->entries[0].name) != NULL);
    prior->entries[0].n_cols++;
    imatrix_free(prior);
    fixture_close(&first);
    fixture_close(&one);
}

/* imatrix_merge's arithmetic: GGUF entries add up, a legacy file's means
 * times calls come back as sums (times the chunk size), one count spreads
 * over the matrices of an entry that has several; a size that disagrees is
 * refused and changes nothing. */
static void merge_test(void) {
    imatrix *sum = hr_calloc(1, sizeof *sum);
    REQUIRE(sum);
    imatrix_entry ga[] = {
        {"blk.0.a.weight", 4, 1, (float[]){1, 2, 3, 4}, (int64_t[]){10}},
        {"blk.1.a.weight", 4, 1, (float[]){2, 4, 6, 8}, (int64_t[]){10}},
    };
    char *ds_a[] = {"a.txt"}, *ds_b[] = {"b.txt"};
    imatrix a = {.entries = ga, .n_entries = 2, .datasets = ds_a, .n_datasets = 1};
    REQUIRE(imatrix_merge(sum, &a, 8) == HEARTH_OK);
    imatrix_entry lb[] = {
        {"blk.0.a.weight", 4, 1, (float[]){0.5f, 0.5f, 0.5f, 0.5f}, (int64_t[]){3}},
        {"blk.0.b.weight", 2, 1, (float[]){0.25f, 1}, (int64_t[]){2}},
    };
    imatrix b = {.entries = lb, .n_entries = 2, .datasets = ds_b, .n_datasets = 1, .legacy = true};
    REQUIRE(imatrix_merge(sum, &b, 8) == HEARTH_OK);
    CHECK(sum->n_entries == 3 && !sum->legacy && sum->chunk_size == 8);
    CHECK(sum->n_datasets == 2 && !strcmp(sum->datasets[1], "b.txt"));
    const imatrix_entry *e = imatrix_find(sum, "blk.0.a.weight");
    CHECK(e && e->sums[0] == 5 && e->sums[3] == 8 && e->counts[0] == 34);
    e = imatrix_find(sum, "blk.0.b.weight");
    CHECK(e && e->sums[0] == 2 && e->sums[1] == 8 && e->counts[0] == 16);
    CHECK(sum->chunk_count == 34 / 8);
    CHECK(!strcmp(sum->entries[0].name, "blk.0.a.weight") &&
          !strcmp(sum->entries[1].name, "blk.0.b.weight"));
    /* 5 values against 4: refused, nothing changed */
    imatrix_entry bad[] = {{"blk.9.new.weight", 1, 1, (float[]){1}, (int64_t[]){1}},
                           {"blk.1.a.weight", 5, 1, (float[]){1, 1, 1, 1, 1}, (int64_t[]){1}}};
    imatrix c = {.entries = bad, .n_entries = 2};
    CHECK(imatrix_merge(sum, &c, 8) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), "blk.1.a.weight") != NULL);
    CHECK(sum->n_entries == 3 && imatrix_find(sum, "blk.1.a.weight")->sums[0] == 2);
    /* two matrices of 2 against one of 4: the count spreads */
    imatrix_entry two[] = {{"blk.1.a.weight", 2, 2, (float[]){1, 1, 1, 1}, (int64_t[]){1, 2}}};
    imatrix d = {.entries = two, .n_entries = 1};
    REQUIRE(imatrix_merge(sum, &d, 8) == HEARTH_OK);
    e = imatrix_find(sum, "blk.1.a.weight");
    CHECK(e->n_mat == 2 && e->n_cols == 2 && e->counts[0] == 11 && e->counts[1] == 12);
    CHECK(e->sums[0] == 3 && e->sums[3] == 9);
    /* sums that overflowed in the adding are not written */
    imatrix_entry huge[] = {{"blk.0.b.weight", 2, 1, (float[]){3e38f, 3e38f}, (int64_t[]){1}}};
    imatrix h = {.entries = huge, .n_entries = 1};
    REQUIRE(imatrix_merge(sum, &h, 8) == HEARTH_OK && imatrix_merge(sum, &h, 8) == HEARTH_OK);
    char out[128];
    tmp_path(out, sizeof out, "inf.gguf");
    CHECK(imatrix_save(sum, out, false) == HEARTH_ERR_FORMAT &&
          strstr(hearth_last_error(), "blk.0.b.weight") != NULL);
    CHECK(access(out, F_OK) != 0);
    imatrix_free(sum);
}

/* imatrix_stats on figures worked by hand. */
static void stats_test(void) {
    imatrix_entry en[] = {
        {"blk.0.attn_q.weight", 4, 1, (float[]){2, 2, 2, 2}, (int64_t[]){2}},
        {"blk.1.attn_q.weight", 4, 1, (float[]){4, 4, 4, 4}, (int64_t[]){2}},
        {"blk.1.ffn_up.weight", 4, 1, (float[]){0, 0, 0, 8}, (int64_t[]){2}},
        {"blk.2.attn_q.weight", 4, 1, (float[]){1, 1, 1, 1}, (int64_t[]){0}},
        {"output.weight", 2, 1, (float[]){3, 1}, (int64_t[]){1}},
    };
    imatrix im = {.entries = en, .n_entries = 5};
    imatrix_stat *st = NULL;
    int64_t n = 0;
    REQUIRE(imatrix_stats(&im, &st, &n) == HEARTH_OK);
    REQUIRE(n == 4); /* blk.2's count is 0: no statistics */
    /* attn_q: layer 1 (total 8) before layer 0 (total 4); then ffn_up, output */
    CHECK(st[0].layer == 1 && st[0].tensor_len == 6 && !memcmp(st[0].tensor, "attn_q", 6));
    CHECK(st[0].total == 8 && st[0].mean == 2 && st[0].stddev == 0 && st[0].entropy == 2);
    CHECK(st[0].active == 1 && st[0].zd == 0 && st[0].elements == 4);
    CHECK(fabsf(st[0].cossim - 1) < 1e-6f); /* the same direction as blk.0's */
    CHECK(st[1].layer == 0 && st[1].total == 4 && st[1].cossim == 0);
    CHECK(st[2].tensor_len == 6 && !memcmp(st[2].tensor, "ffn_up", 6));
    CHECK(st[2].active == 0.25f && st[2].entropy == 0 && st[2].zd == 0.25f);
    CHECK(st[2].max == 4 && st[2].min == 0 && st[2].cossim == 0); /* no blk.0.ffn_up */
    CHECK(st[3].layer == -1 && st[3].tensor_len == 6 && !memcmp(st[3].tensor, "output", 6));
    CHECK(st[3].total == 4 && st[3].mean == 2 && st[3].stddev == 1 && st[3].zd == 0);
    free(st);
}

/* ---- damaged and foreign files ---- */

static void refuse(const uint8_t *b, size_t n, const char *what) {
    imatrix *im = NULL;
    const hearth_err err = imatrix_parse(b, n, &im);
    CHECKF(err == HEARTH_ERR_FORMAT && *hearth_last_error(), "%s: %d", what, (int)err);
    imatrix_free(im);
}

/* A GGUF imatrix with one entry of the given tensors. */
static void write_gguf(const char *path, bool with_counts, int n_sums, float sum0, float count) {
    gguf_writer *w;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    const char *ds[] = {"x.txt"};
    float sums[8] = {sum0, 1, 2, 3, 4, 5, 6, 7};
    const int64_t ne[1] = {n_sums}, ne1[1] = {1};
    CHECK(gguf_writer_set_arr_str(w, "imatrix.datasets", ds, 1) == HEARTH_OK);
    CHECK(gguf_writer_set_u32(w, "imatrix.chunk_count", 1) == HEARTH_OK);
    CHECK(gguf_writer_set_u32(w, "imatrix.chunk_size", 4) == HEARTH_OK);
    CHECK(gguf_writer_add_tensor(w, "a.weight.in_sum2", KERN_F32, 1, ne, sums,
                                 (uint64_t)n_sums * 4) == HEARTH_OK);
    if (with_counts)
        CHECK(gguf_writer_add_tensor(w, "a.weight.counts", KERN_F32, 1, ne1, &count, 4) ==
              HEARTH_OK);
    CHECK(gguf_writer_write(w, path) == HEARTH_OK);
    gguf_writer_free(w);
}

static void refuse_file(const char *path, const char *what) {
    imatrix *im = NULL;
    CHECKF(imatrix_load(path, &im) == HEARTH_ERR_FORMAT && *hearth_last_error(), "%s", what);
    imatrix_free(im);
}

static void damaged_test(const char *model_path) {
    char gg[128], dat[128], bad[128];
    tmp_path(gg, sizeof gg, "im.gguf");
    tmp_path(dat, sizeof dat, "im.dat");
    tmp_path(bad, sizeof bad, "bad.gguf");
    size_t n_gg, n_dat;
    uint8_t *bg = (uint8_t *)golden_read(gg, &n_gg), *bd = (uint8_t *)golden_read(dat, &n_dat);
    REQUIRE(bg && bd);
    for (size_t len = 0; len + 32 < n_gg; len += 7) refuse(bg, len, "cut GGUF"); /* not padding */
    /* a .dat cut inside its entries; a cut after them loses only the optional tail */
    for (size_t len = 0; len + 17 < n_dat; len += 5) refuse(bd, len, "cut .dat");
    imatrix *im = NULL;
    CHECK(imatrix_parse(bd, n_dat - 4, &im) == HEARTH_ERR_FORMAT); /* a cut dataset name */
    int32_t huge = 1 << 30;
    memcpy(bd, &huge, 4);
    refuse(bd, n_dat, ".dat claiming 2^30 entries");
    free(bg);
    free(bd);
    refuse_file(model_path, "a model file");
    write_gguf(bad, false, 4, 1, 4);
    refuse_file(bad, "sums without counts");
    write_gguf(bad, true, 4, NAN, 4);
    refuse_file(bad, "a NaN sum");
    write_gguf(bad, true, 4, 1, -1);
    refuse_file(bad, "a negative count");
    write_gguf(bad, true, 3, 1, 4);
    REQUIRE(imatrix_load(bad, &im) == HEARTH_OK); /* the shape is the file's: 3 columns */
    CHECK(im->n_entries == 1 && im->entries[0].n_cols == 3 && im->entries[0].counts[0] == 4);
    imatrix_free(im);
    CHECK(imatrix_load("/nonexistent/im.gguf", &im) == HEARTH_ERR_IO);
}

/* ---- quantize --imatrix ---- */

static kern_type plan_type(const char *path, const quant_params *p, const char *name) {
    gguf_file *f;
    REQUIRE(gguf_open(path, &f) == HEARTH_OK);
    quant_choice *c = NULL;
    kern_type t = KERN_TYPE_COUNT;
    if (quant_plan(f, p, &c) == HEARTH_OK) {
        for (int64_t i = 0; i < gguf_n_tensors(f); i++)
            if (gguf_str_eq(gguf_tensor_at(f, c[i].src_index)->name, name)) t = c[i].type;
    }
    free(c);
    gguf_close(f);
    return t;
}

static void quantize_test(void) {
    /* eight layers, so that llama.cpp's "first eighth" is layer 0 */
    char p8[128], out[128], out2[128], imf[128];
    tmp_path(p8, sizeof p8, "llama8.gguf");
    tmp_path(out, sizeof out, "q.gguf");
    tmp_path(out2, sizeof out2, "q2.gguf");
    tmp_path(imf, sizeof imf, "im8.gguf");
    synth_params sp = synth_default_params();
    sp.n_layer = 8;
    sp.n_ctx = 128;
    REQUIRE(synth_write(p8, &sp) == HEARTH_OK);
    fixture fx;
    fixture_open(&fx, p8, false);
    decode(&fx, 64, 5);
    const imatrix *im;
    REQUIRE(imatrix_collector_result(fx.c, "calib.txt", &im) == HEARTH_OK);
    REQUIRE(imatrix_save(im, imf, false) == HEARTH_OK);
    fixture_close(&fx);
    imatrix *loaded;
    REQUIRE(imatrix_load(imf, &loaded) == HEARTH_OK);

    quant_params q = quant_default_params();
    q.n_threads = 2;
    REQUIRE(quant_ftype_parse("Q4_0", &q.ftype));
    CHECK(plan_type(p8, &q, "blk.0.ffn_down.weight") == KERN_Q4_0);
    q.imatrix = loaded;
    q.imatrix_file = "im8.gguf";
    CHECK(plan_type(p8, &q, "blk.0.ffn_down.weight") == KERN_Q4_1);
    CHECK(plan_type(p8, &q, "blk.1.ffn_down.weight") == KERN_Q4_0);
    REQUIRE(quant_ftype_parse("IQ4_XS", &q.ftype));
    CHECK(plan_type(p8, &q, "blk.0.ffn_down.weight") == KERN_IQ4_XS);
    q.imatrix = NULL;
    CHECK(plan_type(p8, &q, "blk.0.ffn_down.weight") == KERN_Q5_K);

    /* Q2_K_S: refused without an imatrix, Q4_K for attn_v only with 4+ heads per KV head */
    REQUIRE(quant_ftype_parse("Q2_K_S", &q.ftype));
    CHECK(quant_model(p8, out, &q, NULL) == HEARTH_ERR_UNSUPPORTED);
    CHECK(strstr(hearth_last_error(), "--imatrix") != NULL);
    q.imatrix = loaded;
    CHECK(plan_type(p8, &q, "blk.3.attn_v.weight") == KERN_Q2_K);
    CHECK(plan_type(p8, &q, "blk.0.ffn_down.weight") == KERN_Q4_K);
    REQUIRE(quant_model(p8, out, &q, NULL) == HEARTH_OK);
    gguf_file *f;
    REQUIRE(gguf_open(out, &f) == HEARTH_OK);
    uint32_t v = 0;
    gguf_str s;
    CHECK(gguf_get_u32(f, "general.file_type", &v) && v == QUANT_FTYPE_Q2_K_S);
    CHECK(gguf_get_str(f, "quantize.imatrix.file", &s) && gguf_str_eq(s, "im8.gguf"));
    CHECK(gguf_get_str(f, "quantize.imatrix.dataset", &s) && gguf_str_eq(s, "calib.txt"));
    CHECK(gguf_get_u32(f, "quantize.imatrix.entries_count", &v) && v == 56);
    CHECK(gguf_get_u32(f, "quantize.imatrix.chunks_count", &v) && v == 2);
    /* the keys come last, in llama-quantize's order */
    CHECK(gguf_str_eq(gguf_kv_at(f, gguf_n_kv(f) - 1)->key, "quantize.imatrix.chunks_count"));
    CHECK(gguf_str_eq(gguf_kv_at(f, gguf_n_kv(f) - 4)->key, "quantize.imatrix.file"));
    gguf_close(f);

    /* the weights change the rows: Q4_K_M with and without */
    REQUIRE(quant_ftype_parse("Q4_K_M", &q.ftype));
    REQUIRE(quant_model(p8, out, &q, NULL) == HEARTH_OK);
    q.imatrix = NULL;
    REQUIRE(quant_model(p8, out2, &q, NULL) == HEARTH_OK);
    gguf_file *a, *b;
    REQUIRE(gguf_open(out, &a) == HEARTH_OK && gguf_open(out2, &b) == HEARTH_OK);
    const gguf_tensor *ta = gguf_find_tensor(a, "blk.2.attn_q.weight"),
                      *tb = gguf_find_tensor(b, "blk.2.attn_q.weight");
    REQUIRE(ta && tb && ta->type == KERN_Q4_K && ta->n_bytes == tb->n_bytes);
    CHECK(memcmp(ta->data, tb->data, (size_t)ta->n_bytes) != 0);
    ta = gguf_find_tensor(a, "token_embd.weight"); /* no entry: the plain rows */
    tb = gguf_find_tensor(b, "token_embd.weight");
    CHECK(ta && tb && !memcmp(ta->data, tb->data, (size_t)ta->n_bytes));
    gguf_close(a);
    gguf_close(b);

    /* an entry of another width is an error, not a silent plain row */
    loaded->entries[0].n_cols--;
    q.imatrix = loaded;
    CHECK(quant_model(p8, out, &q, NULL) == HEARTH_ERR_FORMAT);
    CHECK(strstr(hearth_last_error(), loaded->entries[0].name) != NULL);
    loaded->entries[0].n_cols++;
    imatrix_free(loaded);

    /* a 4-D tensor whose entry matches ne0 * ne2 (its sets weigh 2-D slices, and slice
       r / ne1 would run past ne2): refused, never read past the weights */
    gguf_writer *w;
    REQUIRE(gguf_writer_new(&w) == HEARTH_OK);
    REQUIRE(gguf_writer_set_str(w, "general.architecture", "llama") == HEARTH_OK);
    REQUIRE(gguf_writer_set_u32(w, "llama.block_count", 1) == HEARTH_OK);
    static float data[32 * 2 * 2 * 4];
    const int64_t ne[4] = {32, 2, 2, 4};
    REQUIRE(gguf_writer_add_tensor(w, "blk.0.ffn_down_exps.weight", KERN_F32, 4, ne, data,
                                   sizeof data) == HEARTH_OK);
    REQUIRE(gguf_writer_write(w, p8) == HEARTH_OK);
    gguf_writer_free(w);
    static float sums[64];
    static int64_t counts[2] = {1, 1};
    imatrix_entry e4 = {.name = "blk.0.ffn_down_exps.weight",
                        .n_cols = 32,
                        .n_mat = 2,
                        .sums = sums,
                        .counts = counts};
    imatrix im4 = {.entries = &e4, .n_entries = 1};
    REQUIRE(quant_ftype_parse("Q8_0", &q.ftype));
    q.imatrix = &im4;
    const hearth_err e4err = quant_model(p8, out, &q, NULL);
    CHECKF(e4err == HEARTH_ERR_UNSUPPORTED, "%d: %s", e4err, hearth_last_error());
    CHECK(strstr(hearth_last_error(), "4 dimensions") != NULL);
    unlink(p8);
    unlink(out);
    unlink(out2);
    unlink(imf);
}

/* ---- against llama.cpp ---- */

typedef struct golden {
    const char *model, *imatrix, *type; /* type NULL: the imatrix file itself */
    uint64_t hash;
} golden;

static const golden goldens[] = {
    {"tiny-llama", "im.gguf", NULL, 0x28bc4375780b9e24ull},
    {"tiny-llama", "im.dat", NULL, 0x2146ead6856b3f92ull},
    {"tiny-llama", "im.gguf", "Q4_K_M", 0x100ae21cbb4350c7ull},
    {"tiny-llama", "im.gguf", "Q2_K_S", 0x5ccb2a13e70cf089ull},
    {"tiny-llama", "im.gguf", "IQ4_XS", 0x601d3a94dfa8f653ull},
    {"tiny-llama", "im.gguf", "Q4_0", 0xa91448c4594966e4ull},
    {"tiny-llama", "im.gguf", "Q3_K_M", 0x92046783f90ee8b1ull},
    {"tiny-llama", "im.dat", "Q4_K_M", 0x286ee3989241a8deull},
    {"tiny-phi3", "im.gguf", NULL, 0x6e1c39e45237384bull},
    {"tiny-phi3", "im.dat", NULL, 0x76c687493c7c3a8eull},
    {"tiny-phi3", "im.gguf", "Q4_K_M", 0x1441c92eae58976full},
    {"tiny-phi3", "im.gguf", "Q2_K_S", 0x2d7e29ed35e6d518ull},
    {"tiny-phi3", "im.gguf", "IQ4_XS", 0x55a8a678461723b7ull},
    {"tiny-phi3", "im.gguf", "Q4_0", 0x9dd61a4aa76b10deull},
    {"tiny-phi3", "im.gguf", "Q3_K_M", 0x5d46a57bd62548e9ull},
    {"tiny-phi3", "im.dat", "Q4_K_M", 0x0b49580e678a933cull},
};

static int run(const char *cmd) {
    char full[2048];
    snprintf(full, sizeof full, "cd %s && %s >/dev/null 2>&1", tmp_dir, cmd);
    return system(full);
}

/* From tiny-llama's im.gguf and im.dat, llama-imatrix's (same directory):
 *   llama-imatrix -m MODEL --in-file im.gguf --in-file im.dat -c 128 -o merged.gguf
 *   ... -o merged.dat --output-format dat
 *   llama-imatrix -m MODEL -f text.txt --in-file im.gguf -o cont.gguf -c 128 -b 128
 *       --chunks 2 --chunk 8 -t 2 -fa off
 *   llama-imatrix -m MODEL --in-file im.gguf --show-statistics  (and im.dat)
 * the last two with their log's time and level prefixes taken off. */
static const struct {
    bool model; /* -m MODEL first */
    const char *args, *file;
    uint64_t hash;
} derived[] = {
    {false, "--in-file im.gguf --in-file im.dat -c 128 -o merged.gguf", "merged.gguf",
     0x3364131141e44a4eull},
    {false, "--in-file im.gguf --in-file im.dat -c 128 -o merged.dat --output-format dat",
     "merged.dat", 0x0ca989243f96c4b0ull},
    {true, "-f text.txt --in-file im.gguf -o cont.gguf -c 128 -b 128 --chunks 2 --chunk 8 -t 2",
     "cont.gguf", 0x4cb8c8f3f5fd78deull},
    {false, "--in-file im.gguf --show-statistics > st.txt", "st.txt", 0x98012e6394f1e166ull},
    {false, "--in-file im.dat --show-statistics > st.txt", "st.txt", 0x8e93f002fc9fec1cull},
};

static void derived_test(const char *model) {
    char cmd[1400], path[160];
    for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++) {
        snprintf(cmd, sizeof cmd, "(HEARTH_EXACT=1 %s imatrix%s%s %s)", HEARTH_BINARY,
                 derived[i].model ? " -m " : "", derived[i].model ? model : "", derived[i].args);
        CHECKF(run(cmd) == 0, "%s", cmd);
        tmp_path(path, sizeof path, derived[i].file);
        const uint64_t h = file_hash(path);
        CHECKF(h == derived[i].hash, "%s: %016llx, llama.cpp's %016llx", derived[i].args,
               (unsigned long long)h, (unsigned long long)derived[i].hash);
        unlink(path);
    }
}

/* The command's refusals: exit 2 for a usage error, 1 for a file it cannot
 * use (two matrices whose entries disagree). */
static void cli_test(void) {
    char cmd[1024], a[128], b[128];
    snprintf(cmd, sizeof cmd, "%s imatrix --in-file x --in-file y --show-statistics",
             HEARTH_BINARY);
    CHECK(WEXITSTATUS(run(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s imatrix -f text.txt", HEARTH_BINARY);
    CHECK(WEXITSTATUS(run(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s imatrix -o none.gguf", HEARTH_BINARY);
    CHECK(WEXITSTATUS(run(cmd)) == 2);
    snprintf(cmd, sizeof cmd, "%s imatrix --in-file absent.gguf -o none.gguf", HEARTH_BINARY);
    CHECK(WEXITSTATUS(run(cmd)) == 1);
    /* one entry of another width */
    tmp_path(a, sizeof a, "a.gguf");
    tmp_path(b, sizeof b, "b.gguf");
    write_gguf(a, true, 4, 1, 1);
    write_gguf(b, true, 5, 1, 1);
    snprintf(cmd, sizeof cmd, "%s imatrix --in-file a.gguf --in-file b.gguf -o none.gguf",
             HEARTH_BINARY);
    CHECK(WEXITSTATUS(run(cmd)) == 1);
    snprintf(cmd, sizeof cmd, "%s imatrix --in-file a.gguf --in-file a.gguf -o ab.gguf",
             HEARTH_BINARY);
    CHECK(run(cmd) == 0);
    tmp_path(a, sizeof a, "ab.gguf");
    imatrix *im = NULL;
    REQUIRE(imatrix_load(a, &im) == HEARTH_OK);
    CHECK(im->n_entries == 1 && im->entries[0].sums[0] == 2 && im->entries[0].counts[0] == 2);
    CHECK(im->n_datasets == 2 && im->chunk_size == 512);
    imatrix_free(im);
    unlink(a);
    tmp_path(a, sizeof a, "a.gguf");
    unlink(a);
    unlink(b);
}

static bool golden_test(void) {
    char csv[512], text[128], model[512], cmd[1400], path[160];
    snprintf(csv, sizeof csv, "%s/data/intent/banking77/train.csv", HEARTH_SHARED_DIR);
    snprintf(model, sizeof model, "%s/conformance/models/tiny-llama/tiny-llama.F32.gguf",
             HEARTH_SHARED_DIR);
    if (access(csv, R_OK) != 0 || access(model, R_OK) != 0) return false;
    size_t n;
    char *b = golden_read(csv, &n);
    REQUIRE(b && n >= 30000);
    tmp_path(text, sizeof text, "text.txt");
    FILE *f = fopen(text, "wb");
    REQUIRE(f && fwrite(b, 1, 30000, f) == 30000 && fclose(f) == 0);
    free(b);
    const char *made = "";
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        const golden *g = &goldens[i];
        snprintf(model, sizeof model, "%s/conformance/models/%s/%s.F32.gguf", HEARTH_SHARED_DIR,
                 g->model, g->model);
        if (strcmp(made, g->model) != 0) { /* both files of this model, once */
            for (int dat = 0; dat < 2; dat++) {
                snprintf(cmd, sizeof cmd,
                         "HEARTH_EXACT=1 %s imatrix -m %s -f text.txt -o %s -c 128 -b 128 --chunks "
                         "8 -t 2%s",
                         HEARTH_BINARY, model, dat ? "im.dat" : "im.gguf",
                         dat ? " --output-format dat" : "");
                CHECKF(run(cmd) == 0, "%s", cmd);
            }
            made = g->model;
            if (!strcmp(g->model, "tiny-llama")) derived_test(model);
        }
        if (g->type) {
            snprintf(cmd, sizeof cmd, "%s quantize -q --imatrix %s %s out.gguf %s 2", HEARTH_BINARY,
                     g->imatrix, model, g->type);
            CHECKF(run(cmd) == 0, "%s", cmd);
        }
        tmp_path(path, sizeof path, g->type ? "out.gguf" : g->imatrix);
        const uint64_t h = file_hash(path);
        CHECKF(h == g->hash, "%s %s %s: %016llx, llama.cpp's %016llx", g->model, g->imatrix,
               g->type ? g->type : "(the imatrix)", (unsigned long long)h,
               (unsigned long long)g->hash);
    }
    const char *rm[] = {"text.txt", "im.gguf", "im.dat", "out.gguf"};
    for (size_t i = 0; i < 4; i++) {
        tmp_path(path, sizeof path, rm[i]);
        unlink(path);
    }
    return true;
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_imatrix.XXXXXX");
    REQUIRE(mkdtemp(tmp_dir) != NULL);
    char path[128], tied[128];
    tmp_path(path, sizeof path, "llama.gguf");
    tmp_path(tied, sizeof tied, "tied.gguf");
    synth_params sp = synth_default_params();
    sp.n_ctx = 128;
    REQUIRE(synth_write(path, &sp) == HEARTH_OK);
    sp.tied = true;
    REQUIRE(synth_write(tied, &sp) == HEARTH_OK);
    collector_test(path, tied);
    continue_test(path);
    merge_test();
    stats_test();
    cli_test();
    damaged_test(path);
    quantize_test();
    const bool shared = golden_test();
    const char *rm[] = {"llama.gguf", "tied.gguf", "im.gguf", "im.dat", "bad.gguf"};
    for (size_t i = 0; i < 5; i++) {
        tmp_path(path, sizeof path, rm[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
    if (!shared)
        printf("test_imatrix: %s (conformance models or data/intent) is absent: the comparison "
               "with llama.cpp's files was skipped (the other checks ran)\n",
               HEARTH_SHARED_DIR);
    return test_done("test_imatrix");
}
