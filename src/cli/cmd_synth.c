/*
 * cmd_synth.c - `hearth synth`: writes a small model with RANDOM weights, for
 * demos and tests on machines without a downloaded model. Its text is noise.
 */
#include "cli.h"
#include "model/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char synth_usage[] =
    "usage: hearth synth -o FILE [--arch llama|qwen2|qwen3|qwen3moe|olmoe|granite|granitemoe|\n"
    "                    gemma2|gemma3|phi3|smollm3|olmo2|exaone4|lfm2|lfm2moe|mistral3|qwen2vl|\n"
    "                    qwen3vl|qwen3vlmoe|bert|nomic-bert|nomic-bert-moe|modern-bert|eurobert|\n"
    "                    gemma-embedding|granitehybrid|qwen35|qwen35moe|gemma4|gemma3n|\n"
    "                    falcon-h1]\n"
    "                    [--type f32|f16|q8_0|q4_0|q2_K|q3_K|q4_K|q6_K|iq4_nl|iq4_xs]\n"
    "                    [--embd N] [--layers N] [--heads N] [--kv-heads N] [--head-dim N] [--ff "
    "N]\n"
    "                    [--experts N --experts-used K [--shared-ff N] [--dense-lead N]]\n"
    "                    [--mtp N]\n"
    "                    [--ctx N] [--tied] [--seed S] [--rope-dim N] [--longrope ORIG]\n"
    "                    [--rope-factors longrope|ones|freqs-short|freqs-long] [--rope-attn X]\n"
    "                    [--yarn FACTOR [--yarn-orig N] [--yarn-beta FAST:SLOW] [--yarn-log-mul "
    "M]]\n"
    "                    [--attn-temp X]\n"
    "                    [--pooling mean|cls] [--vocab unigram] [--rerank N] [--dense N]\n"
    "                    [--swa-window N]\n"
    "                    [--q-gain X] [--attn-softcap X] [--final-softcap X]\n"
    "  Writes a model with random weights (labelled so in general.name) and a small\n"
    "  SentencePiece-style vocabulary. Useful to try Hearth without downloading a model.\n"
    "  --rope-dim: a partial rotary (Phi-4-mini); --longrope ORIG: Phi-3.5's LongRoPE, random\n"
    "  short and long factors with an original context of ORIG (and the converter's attention\n"
    "  factor unless --rope-attn X); --rope-factors: other factor tensors, same values.\n"
    "  --yarn FACTOR: YaRN rope scaling (rope.scaling.type yarn) by FACTOR over an original\n"
    "  context of N (--yarn-orig; default: the training context); --yarn-beta, --yarn-log-mul:\n"
    "  YaRN's correction turns (default 32:1) and log multiplier (Ministral 3: 1), which\n"
    "  mistral3 reads. --attn-temp X: Llama 4's attention temperature (mistral3; Ministral 3:\n"
    "  0.1): Q times 1 + X ln(floor(pos / original context) + 1).\n"
    "  --q-gain X: the attention's Q weights times X (sharper attention); --attn-softcap X,\n"
    "  --final-softcap X: soft-capping of the attention scores (gemma2; default 50) and of the\n"
    "  logits (gemma2's default 30; others none).\n"
    "  --experts N --experts-used K: a mixture of N experts of --ff width, K per token\n"
    "  (qwen3moe, olmoe and granitemoe need them; llama with them is Mixtral's layout);\n"
    "  --shared-ff N: and a shared expert N wide (granitemoe, granitehybrid: Granite 4.0-H\n"
    "  Tiny's layout; qwen35moe needs it: a gated one). --mtp N: qwen35 with N multi-token-\n"
    "  prediction blocks after its layers (counted in block_count, never run).\n"
    "  --dense-lead N: lfm2moe (which needs experts, chosen by a biased sigmoid) with dense\n"
    "  FFNs twice --ff wide on its first N layers, as LFM2-8B-A1B's first two.\n"
    "  bert, nomic-bert, nomic-bert-moe (a WordPiece vocabulary), modern-bert (ModernBERT:\n"
    "  global and window layers alternating, GeGLU), eurobert and gemma-embedding are\n"
    "  embedding models; --pooling mean|cls sets their pooling_type (default mean);\n"
    "  nomic-bert-moe needs --experts (on its odd layers, nomic-embed-text-v2-moe's layout).\n"
    "  --vocab unigram gives bert and nomic-bert-moe XLM-RoBERTa's vocabulary (bge-m3,\n"
    "  multilingual-e5, bge-reranker-v2-m3): SentencePiece unigram pieces\n"
    "  (tokenizer.ggml.model t5), <s> text </s>, one token type. --dense N gives a\n"
    "  gemma-embedding file EmbeddingGemma's projections of the pooled vector through N\n"
    "  dimensions (dense_2, dense_3). --swa-window N: attention.sliding_window (gemma2/3,\n"
    "  gemma-embedding: 8 unless set; other architectures: the key only, which olmo2 runs as\n"
    "  OLMo 3's and exaone4 refuses). --rerank N: a reranker with N labels (a\n"
    "  classification head; decoders get Qwen3-Reranker's layout and a rerank prompt).\n"
    "  gemma4: Gemma 4 E2B's layout in small: every third layer global with heads twice\n"
    "  --head-dim wide (rotated on a quarter, K as V), the last layers sharing keys and\n"
    "  values with double-wide FFNs, per-layer embeddings of 256.\n"
    "  gemma3n: Gemma 3n's layout in small: four AltUp streams, LAuReL of rank 64,\n"
    "  per-layer embeddings of 256, a window on four layers of five, sparse FFN gates on\n"
    "  the first 10 layers, and layers past the 20th sharing keys and values.\n"
    "  falcon-h1: attention and a Mamba-2 mixer side by side in every layer (the mixer's\n"
    "  grouped norm on even layers only).\n"
    "usage: hearth synth --lora-for BASE -o FILE [--rank R] [--alpha A] [--type "
    "f32|f16|bf16|q8_0]\n"
    "                    [--targets LIST] [--strength X] [--seed S]\n"
    "  Writes a LoRA adapter with random weights for the model file BASE (docs/lora.md):\n"
    "  rank R (default 8), alpha A (default 16; 0: no alpha key), LIST of weights without\n"
    "  'blk.N.' and '.weight' (e.g. attn_q,attn_v,ffn_down,output; default: every matrix),\n"
    "  an update about X times the size of W x at scale 1 and alpha = rank (default 0.5).\n"
    "usage: hearth synth --mmproj-for BASE -o FILE [--type f32|f16] [--image-size N] [--patch N]\n"
    "                    [--merge N] [--embd N] [--layers N] [--heads N] [--ff N] [--seed S]\n"
    "  Writes a Gemma 3 vision projector with random weights for the model file BASE\n"
    "  (docs/vision.md): images of N pixels (default 56) in patches of N (14), pooled N x N\n"
    "  (2) into image rows of BASE's width, a tower of --embd, --layers, --heads, --ff.\n";

static int parse_type(const char *s, kern_type *out) {
    for (uint32_t t = 0; t < KERN_TYPE_COUNT; t++) {
        const kern_type_info *ti = kern_type_get(t);
        if (ti && ti->supported && !strcasecmp(ti->name, s)) {
            *out = (kern_type)t;
            return 0;
        }
    }
    return -1;
}

/* The RoPE, pooling and attention options; 1 when `a` is one (with a good value), 0 when not, -1 on
 * a bad value. */
static int rope_opt(const char *a, const char *v, synth_params *p) {
    static const char *const kinds[] = {"none", "longrope", "ones", "freqs-short", "freqs-long"};
    int n;
    float f;
    char *end;
    if (!strcmp(a, "--rope-dim") && cli_parse_int(v, 2, 4096, &n))
        p->n_rot = n;
    else if (!strcmp(a, "--longrope") && cli_parse_int(v, 1, 1 << 24, &n)) {
        p->rope_orig_ctx = n;
        if (p->factors == SYNTH_ROPE_NONE) p->factors = SYNTH_ROPE_LONGROPE;
    } else if (!strcmp(a, "--rope-attn") && (f = strtof(v, &end), *v && !*end && f > 0.0f))
        p->rope_attn_factor = f;
    else if (!strcmp(a, "--yarn") && (f = strtof(v, &end), *v && !*end && f > 0.0f))
        p->yarn_factor = f;
    else if (!strcmp(a, "--yarn-orig") && cli_parse_int(v, 1, 1 << 24, &n))
        p->rope_orig_ctx = n;
    else if (!strcmp(a, "--yarn-beta") && (f = strtof(v, &end), end != v && *end == ':') &&
             f > 0.0f && (p->yarn_beta_slow = strtof(end + 1, &end), !*end) &&
             p->yarn_beta_slow > 0.0f)
        p->yarn_beta_fast = f;
    else if (!strcmp(a, "--yarn-log-mul") && (f = strtof(v, &end), *v && !*end && f > 0.0f))
        p->yarn_log_mul = f;
    else if (!strcmp(a, "--attn-temp") && (f = strtof(v, &end), *v && !*end && f != 0.0f))
        p->attn_temp = f;
    else if (!strcmp(a, "--vocab") && (!strcmp(v, "unigram") || !strcmp(v, "default")))
        p->unigram = !strcmp(v, "unigram");
    else if (!strcmp(a, "--pooling") && (!strcmp(v, "mean") || !strcmp(v, "cls")))
        p->pooling = !strcmp(v, "mean") ? 1 : 2;
    else if (!strcmp(a, "--rerank") && cli_parse_int(v, 1, 4096, &n))
        p->rerank = n;
    else if (!strcmp(a, "--q-gain") && (f = strtof(v, &end), *v && !*end && f > 0.0f))
        p->q_gain = f;
    else if (!strcmp(a, "--attn-softcap") && (f = strtof(v, &end), *v && !*end && f > 0.0f))
        p->attn_softcap = f;
    else if (!strcmp(a, "--final-softcap") && (f = strtof(v, &end), *v && !*end && f > 0.0f))
        p->final_softcap = f;
    else if (!strcmp(a, "--rope-factors")) {
        for (n = 0; n < 5 && strcmp(v, kinds[n]); n++) {
        }
        if (n == 5) return -1;
        p->factors = (synth_rope_factors)n;
    } else if (!strcmp(a, "--rope-dim") || !strcmp(a, "--longrope") || !strcmp(a, "--rope-attn") ||
               !strcmp(a, "--yarn") || !strcmp(a, "--yarn-orig") || !strcmp(a, "--yarn-beta") ||
               !strcmp(a, "--yarn-log-mul") || !strcmp(a, "--attn-temp") ||
               !strcmp(a, "--pooling") || !strcmp(a, "--vocab") || !strcmp(a, "--rerank") ||
               !strcmp(a, "--q-gain") || !strcmp(a, "--attn-softcap") ||
               !strcmp(a, "--final-softcap"))
        return -1;
    else
        return 0;
    return 1;
}

/* The shape options (whole numbers from 1; synth_write checks that they fit
 * together); 1 when `a` is one (with a good value), 0 when not, -1 on a bad
 * value ("--layers 2x" is an error, not 2). */
static int shape_opt(const char *a, const char *v, synth_params *p) {
    static const char *const names[] = {
        "--embd",       "--layers",    "--heads",   "--kv-heads",     "--head-dim",
        "--ff",         "--ctx",       "--experts", "--experts-used", "--dense",
        "--swa-window", "--shared-ff", "--mtp",     "--dense-lead"};
    int *const fields[] = {&p->n_embd,        &p->n_layer,     &p->n_head,     &p->n_head_kv,
                           &p->head_dim,      &p->n_ff,        &p->n_ctx,      &p->n_expert,
                           &p->n_expert_used, &p->n_dense,     &p->swa_window, &p->n_ff_shexp,
                           &p->n_nextn,       &p->n_dense_lead};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i])) return cli_parse_int(v, 1, 1 << 24, fields[i]) ? 1 : -1;
    return 0;
}

/* The adapter options; 1 when `a` is one (with a good value), 0 when not, -1 on a bad value. */
static int lora_opt(const char *a, const char *v, synth_lora_params *lp, const char **base) {
    int n;
    float f;
    char *end;
    if (!strcmp(a, "--lora-for"))
        *base = v;
    else if (!strcmp(a, "--rank") && cli_parse_int(v, 1, 4096, &n))
        lp->rank = n;
    else if ((!strcmp(a, "--alpha") || !strcmp(a, "--strength")) &&
             (f = strtof(v, &end), *v && !*end))
        *(!strcmp(a, "--alpha") ? &lp->alpha : &lp->strength) = f;
    else if (!strcmp(a, "--targets"))
        lp->targets = v;
    else if (!strcmp(a, "--rank") || !strcmp(a, "--alpha") || !strcmp(a, "--strength"))
        return -1;
    else
        return 0;
    return 1;
}

/* --mmproj-for: the tower's shape from the shape options (their defaults
 * make a small one), its rows as wide as the base model's. */
static int write_mmproj(const char *out, const char *base, const synth_params *p,
                        synth_vision_params *vp) {
    hearth_model *m;
    if (hearth_model_load(base, NULL, &m)) return cli_fail("synth", base);
    vp->n_embd_text = hearth_model_n_embd(m);
    hearth_model_free(m);
    vp->type = p->type, vp->seed = p->seed;
    vp->n_embd = p->n_embd, vp->n_layer = p->n_layer, vp->n_head = p->n_head, vp->n_ff = p->n_ff;
    if (synth_vision_write(out, vp)) return cli_fail("synth", out);
    printf("wrote %s: gemma3 vision projector for %s, %dx%d images, %d image rows of %d, %s "
           "(RANDOM weights)\n",
           out, base, vp->image_size, vp->image_size,
           (vp->image_size / vp->patch / vp->merge) * (vp->image_size / vp->patch / vp->merge),
           vp->n_embd_text, kern_type_get(vp->type)->name);
    return 0;
}

int cmd_synth(int argc, char **argv) {
    synth_params p = synth_default_params();
    synth_lora_params lp = synth_lora_default_params();
    synth_vision_params vp = synth_vision_default_params();
    const char *out = NULL, *lora_base = NULL, *mmproj_base = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(synth_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--tied")) {
            p.tied = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth synth: option '%s' needs a value\n", a);
            return 2;
        }
        int lr = lora_opt(a, v, &lp, &lora_base);
        if (!lr) lr = rope_opt(a, v, &p);
        if (!lr) lr = shape_opt(a, v, &p);
        if (lr < 0) {
            fprintf(stderr, "hearth synth: bad value '%s' for %s\n", v, a);
            return 2;
        }
        if (lr) continue;
        if (!strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "--mmproj-for"))
            mmproj_base = v;
        else if (!strcmp(a, "--image-size") || !strcmp(a, "--patch") || !strcmp(a, "--merge")) {
            int *dst = a[2] == 'i' ? &vp.image_size : a[2] == 'p' ? &vp.patch : &vp.merge;
            if (!cli_parse_int(v, 1, 4096, dst)) {
                fprintf(stderr, "hearth synth: bad value '%s' for %s\n", v, a);
                return 2;
            }
        } else if (!strcmp(a, "--arch"))
            p.arch = v;
        else if (!strcmp(a, "--type")) {
            if (parse_type(v, &p.type)) {
                fprintf(stderr, "hearth synth: unknown type '%s'\n", v);
                return 2;
            }
            lp.type = p.type;
        } else if (!strcmp(a, "--seed")) {
            uint64_t seed;
            if (!cli_parse_seed(v, &seed)) {
                fprintf(stderr, "hearth synth: --seed wants a non-negative integer, not '%s'\n", v);
                return 2;
            }
            lp.seed = p.seed = seed;
        } else {
            fprintf(stderr, "hearth synth: unknown option '%s'\n%s", a, synth_usage);
            return 2;
        }
    }
    if (!out) {
        fputs(synth_usage, stderr);
        return 2;
    }
    if (lora_base) {
        if (synth_lora_write(out, lora_base, &lp)) return cli_fail("synth", out);
        printf("wrote %s: LoRA adapter for %s, rank %d, alpha %g, %s (RANDOM weights)\n", out,
               lora_base, lp.rank, (double)lp.alpha, kern_type_get(lp.type)->name);
        return 0;
    }
    if (mmproj_base) return write_mmproj(out, mmproj_base, &p, &vp);
    if (synth_write(out, &p)) return cli_fail("synth", out);
    printf(
        "wrote %s: %s, %d layers, n_embd %d, %s weights (RANDOM: the text it generates is noise)\n",
        out, p.arch, p.n_layer, p.n_embd, kern_type_get(p.type)->name);
    return 0;
}
