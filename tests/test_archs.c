/*
 * test_archs.c - architectures ../shared/conformance has no files of, run
 * without it: Gemma 2 (soft-capped attention scores and logits, a sliding
 * window on every other layer, the output tied to token_embd), llama.cpp's
 * attention scale for the gemma 27B models, and IBM Granite (its four
 * multipliers; granitemoe with experts, and with a shared one), SmolLM3 (no
 * RoPE on every fourth layer), OLMo 2/3 and EXAONE 4.0 (post-norms only),
 * LFM2 (short convolutions in place of attention on most layers), Granite
 * 4.0-H (Mamba-2 layers; with experts and a shared one), Qwen3.5 (Gated
 * DeltaNet layers, gated attention; with experts and a gated shared one),
 * Gemma 4 (per-layer embeddings, shared keys and values, window layers of
 * their own head size), Gemma 3n (AltUp streams, LAuReL, sparse FFN gates),
 * Falcon-H1 (attention and Mamba-2 side by side),
 * YaRN rope scaling, and the Q2_K and
 * Q3_K types. Small random models written by
 * synth (gemma's with attention sharpened by a gain on the Q weights and
 * caps low enough to bite; Granite's with Granite 3's multipliers) run in
 * exact mode against FNV-1a-64 hashes of llama.cpp's logits for the same
 * files (peer_logits.h) and in default mode against exact mode. Also the
 * defaults a file without the keys gets, and the files refused.
 */
#define _GNU_SOURCE /* memmem */
#include "hearth.h"
#include "model/model.h"
#include "model/synth.h"
#include "peer_logits.h"
#include "test.h"

#include <unistd.h>

static char tmp_dir[64];

typedef struct fixture {
    const char *name, *arch;
    kern_type type;
    int n_layer, n_embd, n_head_kv, head_dim, n_ff;
    float q_gain, attn_cap, final_cap; /* caps 0: the architecture's defaults */
    uint64_t seed, llama_hash;
    int n_expert, n_used;
    bool untied;
    float yarn; /* > 0: YaRN rope scaling by this factor over an original context of yarn_orig */
    int yarn_orig;
    int swa_window;   /* > 0: attention.sliding_window for any architecture */
    int n_ff_shexp;   /* > 0: a shared expert this wide */
    int n_rot;        /* > 0: a partial rotary of this many dimensions */
    int n_nextn;      /* > 0: multi-token-prediction blocks after the layers (left unread) */
    int n_dense_lead; /* lfm2moe: dense FFNs on the first layers */
} fixture;

static const fixture k_fixtures[] = {
    /* caps of 8 and 3 under a Q gain of 6; 3 layers: windows of 8 on layers 0 and 2 */
    {"gemma2-f32",          "gemma2", KERN_F32, 3,     128, 2, 32, 256, 6, 8, 3, 21,
     0xa2cce0c1b39e97deull, 0,        0,        false, 0,   0, 0,  0,   0, 0, 0},
    /* Q4_K weights that llama.cpp repacks */
    {"gemma2-q4k",          "gemma2", KERN_Q4_K, 2,     256, 2, 64, 256, 4, 10, 5, 22,
     0x0596064729834b7aull, 0,        0,         false, 0,   0, 0,  0,   0, 0,  0},
    /* heads of 40: default mode's portable attention; no GQA */
    {"gemma2-q8-hd40",      "gemma2", KERN_Q8_0, 2,     160, 4, 40, 256, 5, 6, 0, 23,
     0xd0809874d449155aull, 0,        0,         false, 0,   0, 0,  0,   0, 0, 0},
    /* 46 layers: llama.cpp's gemma2 27B, Q scaled by 1/sqrt(n_embd / n_head) = 1/4, not by
       1/sqrt(head_dim); default caps 50 and 30 */
    {"gemma2-46",           "gemma2", KERN_F32, 46,    64, 2, 32, 128, 3, 0, 0, 24,
     0x17e736ebde338366ull, 0,        0,        false, 0,  0, 0,  0,   0, 0, 0},
    /* 62 layers: gemma3 27B's scale the same way, and a final soft-cap on gemma3 */
    {"gemma3-62",           "gemma3", KERN_F32, 62,    64, 2, 32, 128, 3, 0, 4, 25,
     0x1dd246c5523dffceull, 0,        0,        false, 0,  0, 0,  0,   0, 0, 0},
    /* Granite 3's multipliers: embeddings times 12, residuals 0.22, scores 1/64, logits / 8 */
    {"granite-f32",         "granite", KERN_F32, 3,    256, 2, 64, 512, 0, 0, 0, 31,
     0x1e818f78c3770b91ull, 0,         0,        true, 0,   0, 0,  0,   0, 0, 0},
    {"granite-q4k-mqa",     "granite", KERN_Q4_K, 2,     256, 1, 64, 256, 0, 0, 0, 32,
     0xc12c111d56f8fd7cull, 0,         0,         false, 0,   0, 0,  0,   0, 0, 0},
    {"granitemoe-f32",
     "granitemoe",
     KERN_F32,
     2,
     128,
     2,
     32,
     64,
     0,
     0,
     0,
     33,
     0x5d8ea467cd3a5196ull,
     8,
     2,
     true,
     0,
     0,
     0,
     0,
     0,
     0,
     0},
    {"granitemoe-q4k",      "granitemoe", KERN_Q4_K, 2,    256, 2, 64, 256, 0, 0, 0, 34,
     0x4ca05f78e5e2590eull, 16,           4,         true, 0,   0, 0,  0,   0, 0, 0},
    /* SmolLM3: no RoPE on layers 3 and 7 (sharp attention, so that it shows) */
    {"smollm3-f32",         "smollm3", KERN_F32, 8,    128, 2, 32, 256, 4, 0, 0, 35,
     0xa9af32ea0425379dull, 0,         0,        true, 0,   0, 0,  0,   0, 0, 0},
    {"smollm3-q4k",         "smollm3", KERN_Q4_K, 4,     256, 1, 64, 256, 3, 0, 0, 36,
     0x40a2776d401a2ec4ull, 0,         0,         false, 0,   0, 0,  0,   0, 0, 0},
    /* OLMo 2: no pre-norms, post-norms, q and k normalized whole */
    {"olmo2-f32",           "olmo2", KERN_F32, 4,    128, 2, 32, 256, 3, 0, 0, 37,
     0x4aa6c447b1750d7full, 0,       0,        true, 0,   0, 0,  0,   0, 0, 0},
    {"olmo2-q4k",           "olmo2", KERN_Q4_K, 3,    256, 4, 64, 256, 3, 0, 0, 38,
     0xa949e8c993c2c8c5ull, 0,       0,         true, 0,   0, 0,  0,   0, 0, 0},
    /* EXAONE 4.0 1.2B's blocks: olmo2's with q and k normalized per head */
    {"exaone4-f32",         "exaone4", KERN_F32, 4,    128, 2, 32, 256, 3, 0, 0, 39,
     0xa3ff45f18bf76fd3ull, 0,         0,        true, 0,   0, 0,  0,   0, 0, 0},
    {"exaone4-q4k",         "exaone4", KERN_Q4_K, 3,     256, 1, 64, 256, 3, 0, 0, 40,
     0xe684aafe87648a57ull, 0,         0,         false, 0,   0, 0,  0,   0, 0, 0},
    /* LFM2: short convolutions on layers 0, 1, 3, 4, attention on 2 and 5 (the 5-layer one: on 2
       and 4) */
    {"lfm2-f32", "lfm2", KERN_F32, 6, 128, 2, 32, 256, 3, 0, 0, 50, 0x01d2abd997484ee0ull,
     0,          0,      true,     0, 0,   0, 0,  0,   0, 0},
    {"lfm2-q4k", "lfm2", KERN_Q4_K, 5, 256, 1, 64, 256, 3, 0, 0, 51, 0x5ecfe3fab244995full,
     0,          0,      false,     0, 0,   0, 0,  0,   0, 0},
    /* Granite 4.0-H: Mamba-2 layers on 0, 1, 3, 4 (two groups of 64 states, heads of 64, a kernel
       of 4), attention without RoPE on 2 and 5 (the 5-layer one: on 2 and 4) */
    {"granitehybrid-f32",
     "granitehybrid",
     KERN_F32,
     6,
     128,
     2,
     32,
     256,
     3,
     0,
     0,
     52,
     0xc9e28e55bcc2956eull,
     0,
     0,
     true,
     0,
     0,
     0,
     0,
     0,
     0,
     0},
    {"granitehybrid-q4k",
     "granitehybrid",
     KERN_Q4_K,
     5,
     256,
     1,
     64,
     256,
     3,
     0,
     0,
     53,
     0xdf7d5db3507f10d6ull,
     0,
     0,
     false,
     0,
     0,
     0,
     0,
     0,
     0,
     0},
    /* Granite 4.0-H Tiny's FFN: experts and a shared expert, on both kinds of layer */
    {.name = "granitehybrid-moe-f32",
     .arch = "granitehybrid",
     .type = KERN_F32,
     .n_layer = 6,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 64,
     .q_gain = 3,
     .seed = 54,
     .llama_hash = 0xfdaf9e096ba9a820ull,
     .n_expert = 8,
     .n_used = 2,
     .n_ff_shexp = 96},
    {.name = "granitehybrid-moe-q4k",
     .arch = "granitehybrid",
     .type = KERN_Q4_K,
     .n_layer = 4,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 55,
     .llama_hash = 0x987bf6bafaebca12ull,
     .n_expert = 16,
     .n_used = 6,
     .untied = true,
     .n_ff_shexp = 256},
    {.name = "granitemoe-shared-f32",
     .arch = "granitemoe",
     .type = KERN_F32,
     .n_layer = 2,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 64,
     .seed = 56,
     .llama_hash = 0xd744111ad8b96f43ull,
     .n_expert = 8,
     .n_used = 2,
     .n_ff_shexp = 128},
    /* Qwen3.5: Gated DeltaNet on all but every fourth layer (3 and 7), attention gated per head
       with a partial rotary of 16 (interleaved multimodal RoPE's sections 3, 3, 2) */
    {.name = "qwen35-f32",
     .arch = "qwen35",
     .type = KERN_F32,
     .n_layer = 8,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 59,
     .llama_hash = 0x51b775040895acb6ull,
     .n_rot = 16},
    {.name = "qwen35-q4k",
     .arch = "qwen35",
     .type = KERN_Q4_K,
     .n_layer = 4,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 60,
     .llama_hash = 0xf695c3996b7f2ca9ull,
     .untied = true,
     .n_rot = 16},
    /* with a multi-token-prediction block (blk.4, counted in block_count) llama.cpp loads and
       does not run, nor does Hearth */
    {.name = "qwen35-mtp",
     .arch = "qwen35",
     .type = KERN_F32,
     .n_layer = 4,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 63,
     .llama_hash = 0xa802d7db748f0ba5ull,
     .n_rot = 16,
     .n_nextn = 1},
    /* LFM2-MoE (LFM2-8B-A1B's layout): LFM2's layers, dense FFNs on the first two, then experts
       chosen by a sigmoid plus a bias per expert */
    {.name = "lfm2moe-f32",
     .arch = "lfm2moe",
     .type = KERN_F32,
     .n_layer = 6,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 64,
     .q_gain = 3,
     .seed = 60,
     .llama_hash = 0x5f92d417e67e7a32ull,
     .n_expert = 8,
     .n_used = 2,
     .n_dense_lead = 2},
    {.name = "lfm2moe-q4k",
     .arch = "lfm2moe",
     .type = KERN_Q4_K,
     .n_layer = 5,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 61,
     .llama_hash = 0x8ead45e12a202a80ull,
     .n_expert = 8,
     .n_used = 3,
     .untied = true,
     .n_dense_lead = 1},
    /* Qwen3-VL's language model (qwen3vl, qwen3vlmoe): Qwen 3's blocks with interleaved
       multimodal RoPE whose sections (12, 10, 10 of 32 pairs) leave pair 31 unrotated */
    {.name = "qwen3vl-f32",
     .arch = "qwen3vl",
     .type = KERN_F32,
     .n_layer = 3,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 81,
     .llama_hash = 0x0f04dbd070796079ull,
     .untied = true},
    {.name = "qwen3vlmoe-q4k",
     .arch = "qwen3vlmoe",
     .type = KERN_Q4_K,
     .n_layer = 2,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 82,
     .llama_hash = 0x126cb5fcc74f4e26ull,
     .n_expert = 8,
     .n_used = 2,
     .untied = true},
    /* Ministral 3 (mistral3): llama's block with YaRN, its log multiplier (1: HF's magnitude),
       a beta_slow of 2 that moves the ramp's end, and Llama 4's attention temperature over an
       original context of 16 (8), so positions from 16 (8) on have Q scaled */
    {.name = "mistral3-f32",
     .arch = "mistral3",
     .type = KERN_F32,
     .n_layer = 3,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 70,
     .llama_hash = 0xcaa6357d34ecb387ull,
     .untied = true,
     .yarn = 4,
     .yarn_orig = 16},
    {.name = "mistral3-q4k",
     .arch = "mistral3",
     .type = KERN_Q4_K,
     .n_layer = 2,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 71,
     .llama_hash = 0x869becc4250735e5ull,
     .untied = true,
     .yarn = 16,
     .yarn_orig = 8},
    /* Qwen3.5-MoE: the same layers, experts and a shared expert gated by a sigmoid */
    {.name = "qwen35moe-f32",
     .arch = "qwen35moe",
     .type = KERN_F32,
     .n_layer = 4,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 64,
     .n_ff = 64,
     .q_gain = 3,
     .seed = 61,
     .llama_hash = 0x740614f8b1f12074ull,
     .n_expert = 8,
     .n_used = 2,
     .n_ff_shexp = 96,
     .n_rot = 16},
    {.name = "qwen35moe-q4k",
     .arch = "qwen35moe",
     .type = KERN_Q4_K,
     .n_layer = 4,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 62,
     .llama_hash = 0x927cbbaca0a30dcbull,
     .n_expert = 16,
     .n_used = 4,
     .untied = true,
     .n_ff_shexp = 256,
     .n_rot = 16},
    /* Gemma 4: layers 1 and 4 global with heads of twice the size (rotated on a quarter
       through rope_freqs, K as V), per-layer embeddings, layers 2.. reading the keys and
       values of layers 0 (window) and 1 (global), double-wide FFNs there, output scales */
    {.name = "gemma4-f32",
     .arch = "gemma4",
     .type = KERN_F32,
     .n_layer = 6,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 64,
     .llama_hash = 0x0748c475ab98d3bcull},
    {.name = "gemma4-q4k",
     .arch = "gemma4",
     .type = KERN_Q4_K,
     .n_layer = 4,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 65,
     .llama_hash = 0xbae8b5b0262ee6acull,
     .untied = true},
    /* Gemma 3n: four AltUp streams, LAuReL, per-layer embeddings, a window on four layers of
       five, sparse FFN gates on layers 0-9, layers 20-23 (window) and 24 (global) reading the
       keys and values of layers 18 and 19 */
    {.name = "gemma3n-f32",
     .arch = "gemma3n",
     .type = KERN_F32,
     .n_layer = 25,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 90,
     .llama_hash = 0x42688df07871ac1cull},
    {.name = "gemma3n-q4k",
     .arch = "gemma3n",
     .type = KERN_Q4_K,
     .n_layer = 21,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 91,
     .llama_hash = 0x42f0e844145bd9cbull,
     .untied = true},
    /* Falcon-H1: attention and a Mamba-2 mixer side by side in every layer, the mixer's grouped
       norm on layers 0 and 2 only */
    {.name = "falcon-h1-f32",
     .arch = "falcon-h1",
     .type = KERN_F32,
     .n_layer = 3,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 95,
     .llama_hash = 0x6e0a03fe335ec31cull},
    {.name = "falcon-h1-q4k",
     .arch = "falcon-h1",
     .type = KERN_Q4_K,
     .n_layer = 4,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 96,
     .llama_hash = 0x49bf241f5ae64956ull,
     .untied = true},
    /* The low-bit K-quants (no such files in ../shared): Q2_K, which llama.cpp's AVX-512 build
       repacks (the layers) but not as the tied output (367 rows), and Q3_K */
    {.name = "llama-q2k",
     .arch = "llama",
     .type = KERN_Q2_K,
     .n_layer = 3,
     .n_embd = 256,
     .n_head_kv = 2,
     .head_dim = 64,
     .n_ff = 512,
     .q_gain = 3,
     .seed = 57,
     .llama_hash = 0x275d57a5c6a12716ull},
    {.name = "qwen3-q3k",
     .arch = "qwen3",
     .type = KERN_Q3_K,
     .n_layer = 3,
     .n_embd = 256,
     .n_head_kv = 1,
     .head_dim = 64,
     .n_ff = 512,
     .q_gain = 3,
     .seed = 58,
     .llama_hash = 0x4b502deecd1d9eefull,
     .untied = true},
    /* YaRN rope scaling, the 32 prompt rows and 8 steps well past the original context */
    {.name = "yarn-llama-f32",
     .arch = "llama",
     .type = KERN_F32,
     .n_layer = 3,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 47,
     .llama_hash = 0x20bd88717389708eull,
     .untied = true,
     .yarn = 4,
     .yarn_orig = 16},
    {.name = "yarn-qwen3-q4k",
     .arch = "qwen3",
     .type = KERN_Q4_K,
     .n_layer = 3,
     .n_embd = 256,
     .n_head_kv = 2,
     .head_dim = 64,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 48,
     .llama_hash = 0x056375c32a3e3a3eull,
     .yarn = 8,
     .yarn_orig = 8},
    /* OLMo 3: windows of 8 on synth's pattern (layers 0, 2, 4) rotating plainly, YaRN on the
       others */
    {.name = "olmo3-f32",
     .arch = "olmo2",
     .type = KERN_F32,
     .n_layer = 5,
     .n_embd = 128,
     .n_head_kv = 2,
     .head_dim = 32,
     .n_ff = 256,
     .q_gain = 3,
     .seed = 49,
     .llama_hash = 0x44e09ef496c56f59ull,
     .untied = true,
     .yarn = 4,
     .yarn_orig = 16,
     .swa_window = 8},
};

static void fixture_path(const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.gguf", tmp_dir, name);
}

static void write_fixture(const fixture *f) {
    synth_params p = synth_default_params();
    p.arch = f->arch;
    p.type = f->type;
    p.n_layer = f->n_layer;
    p.n_embd = f->n_embd;
    p.n_head = 4;
    p.n_head_kv = f->n_head_kv;
    p.head_dim = f->head_dim;
    p.n_ff = f->n_ff;
    p.n_ctx = 128;
    p.q_gain = f->q_gain;
    p.attn_softcap = f->attn_cap;
    p.final_softcap = f->final_cap;
    p.tied = !f->untied;
    p.n_expert = f->n_expert;
    p.n_expert_used = f->n_used;
    p.yarn_factor = f->yarn;
    p.rope_orig_ctx = f->yarn_orig;
    p.swa_window = f->swa_window;
    p.n_ff_shexp = f->n_ff_shexp;
    p.n_rot = f->n_rot;
    p.n_nextn = f->n_nextn;
    p.n_dense_lead = f->n_dense_lead;
    if (!strcmp(f->arch, "mistral3")) { /* Ministral 3's keys, but a beta_slow of 2 */
        p.yarn_beta_fast = 32.0f, p.yarn_beta_slow = 2.0f;
        p.yarn_log_mul = 1.0f, p.attn_temp = 0.1f;
    }
    p.seed = f->seed;
    char path[128];
    fixture_path(f->name, path, sizeof path);
    const hearth_err err = synth_write(path, &p);
    if (err) fprintf(stderr, "%s: %s\n", f->name, hearth_last_error());
    REQUIRE(err == HEARTH_OK);
}

static void check_fixture(const fixture *f) {
    char path[128];
    fixture_path(f->name, path, sizeof path);
    const peer_result r = peer_measure(f->name, path, f->llama_hash);
    if (f->type == KERN_F32) { /* summation orders only */
        CHECKF(r.d_exact < 2e-2, "%s: default mode differs from exact by %g", f->name, r.d_exact);
        CHECKF(r.d_incr < 1e-4, "%s: batch and one token at a time differ by %g", f->name,
               r.d_incr);
    } else { /* activations quantized to 8 bits in default mode */
        CHECKF(r.agree >= PEER_N_IDS * 9 / 10, "%s: argmax agrees on %d of %d rows", f->name,
               r.agree, PEER_N_IDS);
        CHECKF(r.d_incr < 0.5, "%s: batch and one token at a time differ by %g", f->name, r.d_incr);
    }
}

/* The prompt's logits ([PEER_N_IDS][nv]) of model m; returns their count. */
static size_t prompt_logits_of(hearth_model *m, float *rows) {
    const size_t n = (size_t)PEER_N_IDS * (size_t)hearth_model_n_vocab(m);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    sp.kv_type = HEARTH_KV_F32;
    hearth_session *s = NULL;
    REQUIRE(hearth_session_new(m, &sp, &s) == HEARTH_OK);
    REQUIRE(hearth_decode(s, peer_ids, PEER_N_IDS, rows, true) == HEARTH_OK);
    hearth_session_free(s);
    return n;
}

/* The same of the file at path loaded with mp. */
static size_t prompt_logits(const char *path, const hearth_model_params *mp, float *rows) {
    hearth_model *m = NULL;
    REQUIRE(hearth_model_load(path, mp, &m) == HEARTH_OK);
    const size_t n = prompt_logits_of(m, rows);
    hearth_model_free(m);
    return n;
}

/* llama.cpp's RoPE overrides (hearth_model_params; --rope-scaling yarn
 * --rope-scale 4 --yarn-orig-ctx 16) on a file without YaRN give the
 * logits of the same weights with the YaRN keys; bad ones are refused. */
static void rope_override_test(void) {
    const fixture *yarn = NULL;
    for (size_t i = 0; i < sizeof k_fixtures / sizeof k_fixtures[0]; i++)
        if (!strcmp(k_fixtures[i].name, "yarn-llama-f32")) yarn = &k_fixtures[i];
    REQUIRE(yarn);
    fixture plain = *yarn;
    plain.name = "plain-llama-f32";
    plain.yarn = 0.0f, plain.yarn_orig = 0;
    write_fixture(&plain);
    char with[128], without[128];
    fixture_path(yarn->name, with, sizeof with);
    fixture_path(plain.name, without, sizeof without);
    float *a = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB),
          *b = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB);
    REQUIRE(a && b);
    hearth_model_params mp = hearth_model_default_params();
    const size_t n = prompt_logits(with, &mp, a);
    prompt_logits(without, &mp, b);
    CHECK(test_max_diff(a, b, n) > 0.1); /* YaRN matters here */
    mp.rope_scaling = "yarn", mp.rope_scale = 4.0f, mp.yarn_orig_ctx = 16;
    prompt_logits(without, &mp, b);
    CHECKF(memcmp(a, b, n * sizeof *a) == 0, "overrides: %g from the YaRN file",
           test_max_diff(a, b, n));
    /* and the file's YaRN switched off: the plain file's logits */
    prompt_logits(without, NULL, a);
    mp = hearth_model_default_params();
    mp.rope_scaling = "none";
    prompt_logits(with, &mp, b);
    CHECK(memcmp(a, b, n * sizeof *a) == 0);
    mp.rope_scaling = "ntk";
    hearth_model *m = NULL;
    CHECK(hearth_model_load(with, &mp, &m) == HEARTH_ERR_INVALID_ARG && !m);
    CHECK(strstr(hearth_last_error(), "none, linear, yarn") != NULL);
    free(a);
    free(b);
    unlink(without);
}

/* The keys' defaults (llama.cpp's), and the files refused. */
/* qwen2vl: Qwen 2's block with multimodal RoPE (sections 4, 6, 6: text rotates as Qwen 2).
 * llama.cpp 34af94cd reads no RMSNorm epsilon for this architecture (it stays 0); Hearth
 * takes the file's, as Transformers does, and with the epsilon set to 0 gives llama.cpp's
 * logits bit for bit. */
static void qwen2vl_test(void) {
    char src[128], err[512];
    const fixture f = {.name = "qwen2vl-f32",
                       .arch = "qwen2vl",
                       .type = KERN_F32,
                       .n_layer = 2,
                       .n_embd = 128,
                       .n_head_kv = 2,
                       .head_dim = 32,
                       .n_ff = 256,
                       .q_gain = 3,
                       .seed = 83,
                       .untied = true};
    write_fixture(&f);
    fixture_path(f.name, src, sizeof src);
    hearth_model *m = peer_load(src, err, sizeof err);
    REQUIRE(m);
    CHECK(m->hp.rope_sections[0] == 4 && m->hp.rope_sections[1] == 6 &&
          m->hp.rope_sections[2] == 6 && m->hp.rope_sections[3] == 0 && m->hp.rms_eps == 1e-5f);
    float *rows = malloc(sizeof(float) * PEER_ROWS * PEER_MAX_VOCAB);
    REQUIRE(rows);
    kern_set_exact(true);
    const size_t bytes = sizeof(float) * PEER_ROWS * (size_t)peer_greedy_of(m, rows);
    const uint64_t with_eps = test_fnv1a(TEST_FNV_SEED, rows, bytes);
    m->hp.rms_eps = 0.0f;
    peer_greedy_of(m, rows);
    kern_set_exact(false);
    const uint64_t h = test_fnv1a(TEST_FNV_SEED, rows, bytes);
    CHECKF(h == 0x0f2e6ae003d96621ull && with_eps != h, "qwen2vl: %016llx with epsilon 0",
           (unsigned long long)h);
    free(rows);
    hearth_model_free(m);
    unlink(src);
}

/* gemma3n: the streams, LAuReL, sparsity and shared caches as read (llama.cpp's hash in the
 * table says how they act); the sparsity array and the shared layers' count take llama.cpp's
 * constants when absent; a layer's sparsity changes the logits; other AltUp shapes refused. */
static void gemma3n_test(void) {
    char src[128], dst[128], err[512];
    snprintf(dst, sizeof dst, "%s/patched.gguf", tmp_dir);
    fixture_path("gemma3n-f32", src, sizeof src);
    hearth_model *m = peer_load(src, err, sizeof err);
    REQUIRE(m);
    const model_layer *l = m->layers;
    CHECK(m->hp.n_kv_from_start == 20 && model_kv_layers(&m->hp) == 20 && m->hp.n_embd_pl == 256 &&
          m->hp.laurel_rank == 64 && m->hp.final_softcap == 30.0f && m->hp.attn_scale == 1.0f);
    CHECK(l[0].swa && l[3].swa && !l[4].swa && !l[19].swa && l[20].kv_shared &&
          l[20].kv_slot == l[18].kv_slot && l[24].kv_shared && l[24].kv_slot == l[19].kv_slot);
    CHECK(l[0].sparse && l[9].sparse && !l[10].sparse && !l[24].sparse &&
          l[9].sparsity == 1.6448533535003662f && l[0].alt_predict.n_rows == 16 &&
          l[0].alt_correct.n_cols == 4 && m->alt_unembd[2].n_rows == 128);
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    hearth_session *gs = NULL;
    REQUIRE(hearth_session_new(m, &sp, &gs) == HEARTH_OK);
    const uint64_t kv = 20 * 2 * 64 * 2 * (uint64_t)(32 * 2); /* 20 layers, K and V, F16 */
    CHECKF(hearth_session_memory(gs).kv_bytes == kv, "gemma3n kv_bytes %llu, expected %llu",
           (unsigned long long)hearth_session_memory(gs).kv_bytes, (unsigned long long)kv);
    hearth_session_free(gs);
    hearth_model_free(m);
    float *a = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB),
          *b = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB);
    REQUIRE(a && b);
    const size_t n = prompt_logits(src, NULL, a);
    /* keys renamed away: the same values by default */
    static const char *const keys[][2] = {
        {"gemma3n.activation_sparsity_scale", "gemma3n.activation_sparsity_scalX"},
        {"gemma3n.attention.shared_kv_layers", "gemma3n.attention.shared_kv_layerX"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        peer_patch(src, dst, keys[i][0], keys[i][1], strlen(keys[i][1]), 0);
        prompt_logits(dst, NULL, b);
        CHECKF(memcmp(a, b, n * sizeof *a) == 0, "gemma3n without %s: %g", keys[i][0],
               test_max_diff(a, b, n));
    }
    /* layer 0 without sparsity: its array entry -inf (after the array's type and count) */
    const char *sparse_key = keys[0][0];
    const float none = -INFINITY;
    peer_patch(src, dst, sparse_key, &none, 4, strlen(sparse_key) + 4 + 4 + 8);
    prompt_logits(dst, NULL, b);
    CHECKF(test_max_diff(a, b, n) > 1e-3, "gemma3n: layer 0's sparsity changes %g",
           test_max_diff(a, b, n));
    free(a);
    free(b);
    const uint32_t zero = 0;
    const char *width_key = "gemma3n.embedding_length_per_layer_input";
    peer_patch(src, dst, width_key, &zero, 4, strlen(width_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "AltUp needs per-layer embeddings"), "%s", err);
    hearth_model_free(m);
    const uint32_t three = 3;
    const char *streams_key = "gemma3n.altup.num_inputs";
    peer_patch(src, dst, streams_key, &three, 4, strlen(streams_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "AltUp with 3 streams"), "%s", err);
    hearth_model_free(m);
    /* an unknown architecture: the refusal lists the table's */
    peer_patch(src, dst, "gemma3n", "gemma3m", 7, 0);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "'gemma3m' is not supported") && strstr(err, "gemma4, gemma3n, "),
           "%s", err);
    hearth_model_free(m);
    unlink(dst);
}

/* mistral3: YaRN's keys and the attention temperature read (llama.cpp's hash in the table
 * says how they act); each changes the logits; out-of-range values refused. */
static void mistral3_test(void) {
    char src[128], dst[128], err[512];
    snprintf(dst, sizeof dst, "%s/patched.gguf", tmp_dir);
    fixture_path("mistral3-f32", src, sizeof src);
    hearth_model *m = peer_load(src, err, sizeof err);
    REQUIRE(m);
    const float m4 = fmaf(0.1f, logf(4.0f), 1.0f);
    CHECK(m->hp.yarn && m->hp.yarn_beta_fast == 32.0f && m->hp.yarn_beta_slow == 2.0f &&
          m->hp.attn_temp_scale == 0.1f && m->hp.attn_temp_floor == 16 &&
          m->hp.rope_attn_factor == 1.0f / m4); /* HF's magnitude: 1 after ggml's m4 */
    CHECK(model_attn_temp(&m->hp, 0) == 1.0f && model_attn_temp(&m->hp, 15) == 1.0f &&
          model_attn_temp(&m->hp, 16) == (float)(log(2.0) * 0.1f + 1.0) &&
          model_attn_temp(&m->hp, 47) == (float)(log(3.0) * 0.1f + 1.0));
    float *with = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB),
          *without = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB);
    REQUIRE(with && without);
    const size_t n_m3 = prompt_logits_of(m, with);
    m->hp.attn_temp_scale = 0.0f;
    prompt_logits_of(m, without);
    CHECKF(test_max_diff(with, without, n_m3) > 1e-3, "mistral3: the temperature changes %g",
           test_max_diff(with, without, n_m3));
    hearth_model_free(m);
    static const char *const m3_keys[] = {"mistral3.rope.scaling.yarn_beta_slow",
                                          "mistral3.rope.scaling.yarn_log_multiplier"};
    for (int i = 0; i < 2; i++) {
        peer_patch(src, dst, m3_keys[i], "X", 1, 0); /* absent: 1, none */
        REQUIRE((m = peer_load(dst, err, sizeof err)));
        prompt_logits_of(m, without);
        CHECKF(test_max_diff(with, without, n_m3) > 1e-3, "mistral3: %s changes %g", m3_keys[i],
               test_max_diff(with, without, n_m3));
        hearth_model_free(m);
    }
    free(with), free(without);
    const float negative = -1.0f;
    peer_patch(src, dst, m3_keys[0], &negative, 4, strlen(m3_keys[0]) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "out of range"), "%s", err);
    hearth_model_free(m);
}

static void hparams_test(void) {
    char src[128], dst[128], err[512];
    fixture_path("gemma2-f32", src, sizeof src);
    snprintf(dst, sizeof dst, "%s/patched.gguf", tmp_dir);

    hearth_model *m = peer_load(src, err, sizeof err);
    REQUIRE(m);
    CHECK(m->hp.attn_softcap == 8.0f && m->hp.final_softcap == 3.0f);
    CHECK(m->hp.swa_window == 8 && m->hp.swa_pattern == 2); /* synth's */
    CHECK(m->layers[0].swa && !m->layers[1].swa && m->layers[2].swa);
    CHECK(m->hp.attn_scale == 1.0f / sqrtf(32.0f));
    hearth_model_free(m);

    /* without the keys: caps 50 and 30, a window of 4096 on every other layer */
    static const char *const keys[] = {"attn_logit_softcapping", "final_logit_softcapping",
                                       "attention.sliding_window_pattern"};
    peer_patch(src, dst, keys[0], "X", 1, 0);
    peer_patch(dst, dst, keys[1], "X", 1, 0);
    peer_patch(dst, dst, keys[2], "X", 1, 0);
    REQUIRE((m = peer_load(dst, err, sizeof err)));
    CHECK(m->hp.attn_softcap == 50.0f && m->hp.final_softcap == 30.0f);
    CHECK(m->hp.swa_window == 8 && m->hp.swa_pattern == 2);
    hearth_model_free(m);
    peer_patch(src, dst, "attention.sliding_window", "X", 1, 0);
    REQUIRE((m = peer_load(dst, err, sizeof err)));
    CHECK(m->hp.swa_window == 4096 && m->hp.swa_pattern == 2);
    hearth_model_free(m);

    /* a negative or NaN cap */
    const float bad[2] = {-1.0f, NAN};
    for (int i = 0; i < 2; i++) {
        peer_patch(src, dst, keys[i], &bad[i], sizeof bad[i], strlen(keys[i]) + 4);
        m = peer_load(dst, err, sizeof err);
        CHECKF(!m && strstr(err, "soft-capping"), "cap %g: %s", (double)bad[i], err);
        hearth_model_free(m);
    }

    /* granite: synth writes Granite 3's multipliers; without the keys, none (and the
       default attention scale), but logit_scale is required */
    fixture_path("granite-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.embd_scale == 12.0f && m->hp.residual_scale == 0.22f);
    CHECK(m->hp.attn_scale == 0.015625f && m->hp.logit_scale == 8.0f);
    hearth_model_free(m);
    peer_patch(src, dst, "residual_scale", "X", 1, 0);
    peer_patch(dst, dst, "embedding_scale", "X", 1, 0);
    peer_patch(dst, dst, "attention.scale", "X", 1, 0);
    REQUIRE((m = peer_load(dst, err, sizeof err)));
    CHECK(m->hp.embd_scale == 1.0f && m->hp.residual_scale == 1.0f);
    CHECK(m->hp.attn_scale == 1.0f / sqrtf(64.0f) && m->hp.logit_scale == 8.0f);
    hearth_model_free(m);
    peer_patch(src, dst, "logit_scale", "X", 1, 0);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "logit_scale"), "%s", err);
    hearth_model_free(m);
    const float zero = 0.0f;
    peer_patch(src, dst, "logit_scale", &zero, sizeof zero, strlen("logit_scale") + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "scales must be positive"), "%s", err);
    hearth_model_free(m);

    /* smollm3: every fourth layer rotates nothing */
    fixture_path("smollm3-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    for (int il = 0; il < 8; il++) CHECKF(m->layers[il].rope == (il % 4 != 3), "layer %d", il);
    hearth_model_free(m);

    /* olmo2: no pre-norms; OLMo 3's window layers rotate plainly, the others with YaRN */
    fixture_path("olmo2-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(!m->layers[0].attn_norm && !m->layers[0].ffn_norm && m->layers[0].post_attn_norm);
    CHECK(!m->layers[0].swa && !m->layers[3].swa); /* no window key: no window */
    hearth_model_free(m);
    fixture_path("olmo3-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->layers[0].swa && !m->layers[0].yarn && m->layers[0].rope_mscale == 1.0f &&
          m->layers[0].rope_scale == 1.0f);
    CHECK(!m->layers[1].swa && m->layers[1].yarn && m->layers[1].rope_scale == 0.25f);
    hearth_model_free(m);
    /* EXAONE 4.0: a window is refused, and the 32B model's, which llama.cpp turns on by the
       layer count */
    synth_params op = synth_default_params();
    op.arch = "exaone4";
    op.n_ctx = 64;
    op.swa_window = 4096;
    REQUIRE(synth_write(dst, &op) == HEARTH_OK);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "sliding-window layers"), "%s", err);
    hearth_model_free(m);
    op.swa_window = 0;
    op.n_layer = 64;
    op.n_embd = 32, op.n_head = 2, op.n_head_kv = 1, op.head_dim = 16, op.n_ff = 32;
    REQUIRE(synth_write(dst, &op) == HEARTH_OK);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "sliding-window layers"), "%s", err);
    hearth_model_free(m);

    /* lfm2: the layers without kv heads are convolutions, the final norm token_embd_norm */
    fixture_path("lfm2-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.n_conv == 4 && m->hp.conv_l == 3 && m->hp.n_head_kv == 2 && m->output_norm);
    for (int il = 0; il < 6; il++) {
        const bool conv = il % 3 != 2;
        CHECKF(!!m->layers[il].conv_w == conv && !m->layers[il].wq.data == conv &&
                   m->layers[il].rope == !conv,
               "lfm2 layer %d", il);
        CHECKF(m->layers[il].conv_slot == (conv ? il - il / 3 : -1) &&
                   m->layers[il].kv_slot == (conv ? -1 : il / 3),
               "lfm2 layer %d's slots", il);
    }
    hearth_model_free(m);
    /* the per-layer kv heads: 0 where the file has no convolution (its tensors missing), a
       count that differs from the other layers', an array that is not of integers */
    const char *kv_key = "lfm2.attention.head_count_kv";
    const size_t first = strlen(kv_key) + 4 + 4 + 8; /* type, element type, count */
    const uint32_t zero_heads = 0, one_head = 1, f32_type = 6;
    peer_patch(src, dst, kv_key, &zero_heads, 4, first + 4 * 2);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "blk.2.shortconv.conv.weight"), "%s", err);
    hearth_model_free(m);
    peer_patch(src, dst, kv_key, &one_head, 4, first + 4 * 2);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "layer 5 has 2 kv heads"), "%s", err);
    hearth_model_free(m);
    peer_patch(src, dst, kv_key, &f32_type, 4, strlen(kv_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "one integer per layer"), "%s", err);
    hearth_model_free(m);
    synth_params lp = synth_default_params();
    lp.arch = "lfm2";
    lp.swa_window = 64;
    REQUIRE(synth_write(dst, &lp) == HEARTH_OK);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "sliding-window layers"), "%s", err);
    hearth_model_free(m);

    /* lfm2moe: dense FFNs on the first two layers, experts with a bias on the others; the bias
       moves the choice (llama.cpp's hash above says how); a gating function other than softmax
       or sigmoid refused */
    fixture_path("lfm2moe-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.moe_sigmoid && m->hp.n_dense_lead == 2 && m->hp.n_ff_dense == 128 &&
          m->hp.n_ff == 64 && m->hp.n_conv == 4);
    for (int il = 0; il < 6; il++)
        CHECKF((il < 2) == (m->layers[il].down.data != NULL) &&
                   (il < 2) == (m->layers[il].exps == NULL) &&
                   (il < 2) == (m->layers[il].exp_probs_b == NULL) &&
                   m->layers[il].n_ff == (il < 2 ? 128 : 64),
               "lfm2moe layer %d", il);
    float *with = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB),
          *without = malloc(sizeof(float) * PEER_N_IDS * PEER_MAX_VOCAB);
    REQUIRE(with && without);
    const size_t n_logits = prompt_logits_of(m, with);
    for (int il = 2; il < 6; il++) m->layers[il].exp_probs_b = NULL;
    prompt_logits_of(m, without);
    CHECKF(test_max_diff(with, without, n_logits) > 1e-3, "lfm2moe: the choice's bias changes %g",
           test_max_diff(with, without, n_logits));
    free(with), free(without);
    hearth_model_free(m);
    const uint32_t softmax_weight = 3;
    const char *gating_key = "lfm2moe.expert_gating_func";
    peer_patch(src, dst, gating_key, &softmax_weight, 4, strlen(gating_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "gating function 3"), "%s", err);
    hearth_model_free(m);

    /* granitehybrid: Mamba-2 layers where there are no kv heads, no layer rotates; sizes
       the scan cannot divide refused */
    fixture_path("granitehybrid-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.n_ssm == 4 && m->hp.n_conv == 0 && m->hp.ssm_heads == 4 && m->hp.ssm_groups == 2 &&
          m->hp.ssm_state == 64 && m->hp.rope_off);
    for (int il = 0; il < 6; il++) {
        const bool ssm = il % 3 != 2;
        CHECKF(m->layers[il].ssm_slot == (ssm ? il - il / 3 : -1) &&
                   m->layers[il].kv_slot == (ssm ? -1 : il / 3) && !m->layers[il].rope &&
                   !m->layers[il].conv_w,
               "granitehybrid layer %d", il);
    }
    hearth_model_free(m);
    const uint32_t three = 3;
    const char *groups_key = "granitehybrid.ssm.group_count";
    peer_patch(src, dst, groups_key, &three, 4, strlen(groups_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "Mamba-2 sizes"), "%s", err);
    hearth_model_free(m);
    /* divisible, but 2^20 groups of 4096 states: more channels than the layer's loops count */
    const char *big_keys[] = {"granitehybrid.ssm.inner_size", "granitehybrid.ssm.time_step_rank",
                              "granitehybrid.ssm.group_count", "granitehybrid.ssm.state_size"};
    const uint32_t big[] = {1u << 20, 1u << 20, 1u << 20, 4096};
    peer_patch(src, dst, big_keys[0], &big[0], 4, strlen(big_keys[0]) + 4);
    for (int k = 1; k < 4; k++)
        peer_patch(dst, dst, big_keys[k], &big[k], 4, strlen(big_keys[k]) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "Mamba-2 sizes"), "%s", err);
    hearth_model_free(m);

    /* Granite 4.0-H Tiny's layout: experts and a shared expert bound on every layer; a width
       the tensors contradict refused by name */
    fixture_path("granitehybrid-moe-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.n_expert == 8 && m->hp.n_expert_used == 2 && m->hp.n_ff_shexp == 96 &&
          m->hp.n_ssm == 4);
    for (int il = 0; il < 6; il++)
        CHECKF(m->layers[il].exps && m->layers[il].down_shexp.n_cols == 96 &&
                   m->layers[il].up_shexp.n_rows == 96 && !m->layers[il].down.data,
               "granitehybrid-moe layer %d", il);
    hearth_model_free(m);
    const uint32_t narrow = 64;
    const char *shexp_key = "granitehybrid.expert_shared_feed_forward_length";
    peer_patch(src, dst, shexp_key, &narrow, 4, strlen(shexp_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "ffn_gate_shexp"), "%s", err);
    hearth_model_free(m);
    /* the MTP block is not a layer */
    fixture_path("qwen35-mtp", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.n_layer == 4 && m->hp.n_nextn == 1 && m->hp.n_ssm == 3);
    hearth_model_free(m);
    /* Qwen3.5-MoE: the gate bound beside the shared expert; a width of 0 refused */
    fixture_path("qwen35moe-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    CHECK(m->hp.n_ff_shexp == 96 && m->hp.n_ssm == 3 && m->layers[0].gate_inp_shexp.n_rows == 1 &&
          m->layers[3].gate_inp_shexp.n_cols == 128 && m->layers[0].wqkv.data);
    hearth_model_free(m);
    const uint32_t no_width = 0;
    const char *q_key = "qwen35moe.expert_shared_feed_forward_length";
    peer_patch(src, dst, q_key, &no_width, 4, strlen(q_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "shared expert of width 0"), "%s", err);
    hearth_model_free(m);
    /* Gemma 4: the layers' own sizes and the shared caches as llama.cpp maps them; shared
       layers that do not follow a window layer and a global one are refused */
    fixture_path("gemma4-f32", src, sizeof src);
    REQUIRE((m = peer_load(src, err, sizeof err)));
    const model_layer *gl = m->layers;
    CHECK(m->hp.n_kv_from_start == 2 && m->hp.n_embd_pl == 256 && model_kv_layers(&m->hp) == 2);
    CHECK(gl[0].swa && gl[0].head_dim == 32 && !gl[1].swa && gl[1].head_dim == 64 &&
          gl[1].n_rot == 64 && gl[1].rope_factors && !gl[0].rope_factors && !gl[1].wv.data &&
          gl[0].wv.data);
    CHECK(gl[3].kv_shared && gl[3].kv_slot == 0 && gl[4].kv_shared && gl[4].kv_slot == 1 &&
          gl[1].n_ff == 256 && gl[2].n_ff == 512 && gl[5].out_scale != 1.0f);
    /* the cache: two slots (layers 0 and 1) of 2 kv heads, F16 rows of their own head sizes */
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = 64;
    hearth_session *gs = NULL;
    REQUIRE(hearth_session_new(m, &sp, &gs) == HEARTH_OK);
    const uint64_t g_kv = 2 * 64 * 2 * (uint64_t)(32 * 2 + 64 * 2);
    CHECKF(hearth_session_memory(gs).kv_bytes == g_kv, "gemma4 kv_bytes %llu, expected %llu",
           (unsigned long long)hearth_session_memory(gs).kv_bytes, (unsigned long long)g_kv);
    hearth_session_free(gs);
    hearth_model_free(m);
    const char *shared_key = "gemma4.attention.shared_kv_layers";
    peer_patch(src, dst, shared_key, &three, 4, strlen(shared_key) + 4);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "window layer and a global one"), "%s", err);
    hearth_model_free(m);

    /* gemma2 with its own output.weight (llama.cpp refuses it too): a gemma3
       file renamed, every "gemma3" key and the architecture */
    synth_params p = synth_default_params();
    p.arch = "gemma3";
    p.n_ctx = 64;
    fixture_path("gemma3-untied", src, sizeof src);
    REQUIRE(synth_write(src, &p) == HEARTH_OK);
    peer_patch(src, dst, "gemma3", "gemma2", 6, 0);
    m = peer_load(dst, err, sizeof err);
    CHECKF(!m && strstr(err, "output.weight"), "%s", err);
    hearth_model_free(m);
    unlink(src);
    unlink(dst);
}

int main(void) {
    peer_tmpdir(tmp_dir, sizeof tmp_dir, "archs");
    const int n = (int)(sizeof k_fixtures / sizeof k_fixtures[0]);
    for (int i = 0; i < n; i++) write_fixture(&k_fixtures[i]);
    for (int i = 0; i < n; i++) check_fixture(&k_fixtures[i]);
    hparams_test();
    mistral3_test();
    gemma3n_test();
    qwen2vl_test();
    rope_override_test();
    peer_tmpdir_remove(tmp_dir);
    return test_done("test_archs");
}
