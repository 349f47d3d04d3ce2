/*
 * cmd_rag.c - `hearth rag index|query|ask|status`: retrieval over local
 * files (src/rag/rag.h, docs/rag.md). The model, when one is given, embeds
 * chunks and questions here, with a session of this process; the rag layer
 * only stores and compares the vectors.
 */
#include "cli.h"

#include "core/core.h"
#include "engine/chat.h"
#include "rag/rag.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: hearth rag index  --db DB [-m MODEL] [--chunk-words N] [--overlap N]\n"
    "                         [--max-file-mb N] [--prune] [-q] PATH...\n"
    "       hearth rag query  --db DB [-m MODEL] [-k K] [--mode M] [--rerank RERANKER]\n"
    "                         [--rerank-depth N] [--json] QUESTION\n"
    "       hearth rag ask    --db DB -m MODEL [-k K] [--mode M] [--rerank RERANKER]\n"
    "                         [--rerank-depth N] [--show-context]\n"
    "                         [--chat-template NAME|FILE] [sampling options] QUESTION\n"
    "       hearth rag status --db DB [--json]\n"
    "  index: add or update the text, HTML and PDF files under each PATH (directories\n"
    "         recursively; hidden files, symbolic links, other binary and non-UTF-8 files\n"
    "         are skipped with the reason); with -m, also\n"
    "         store each chunk's embedding by MODEL; --prune forgets vanished files\n"
    "  query: the K best chunks (default 5) as text, or one JSON object per line\n"
    "  ask:   answer QUESTION with MODEL from the K best chunks, then list the sources\n"
    "  --mode auto|bm25|vector|hybrid  (default auto: hybrid when the index has vectors\n"
    "         and -m gives the model that made them, else bm25)\n"
    "  --rerank RERANKER  a second stage: a reranker (hearth rerank) orders the first\n"
    "         stage's --rerank-depth best chunks (default max(4K, 20), at most 100) and the K\n"
    "         it puts first are kept\n"
    "  --chunk-words N (default 200), --overlap N (default 40): words per chunk\n"
    "  --max-file-mb N  skip larger files (default 16)\n"
    "  -t N, --ctx N, --pooling P   model threads, context, pooling (as hearth embed)\n";

/* A model that embeds text for the index (and generates for ask). */
typedef struct embedder {
    hearth_model *model;
    hearth_session *session;
    hearth_pooling pooling;
    int32_t *ids;
    char id[256];  /* rag_model_id */
    int truncated; /* texts cut to the context */
} embedder;

static hearth_err embed_text(void *user, const char *text, size_t len, float *out) {
    embedder *e = user;
    const int n_ctx = hearth_session_n_ctx(e->session);
    size_t n = 0;
    hearth_err err = hearth_tokenize(e->model, text, len, true, false, e->ids, (size_t)n_ctx, &n);
    if (err == HEARTH_ERR_INVALID_ARG && n > (size_t)n_ctx) { /* a long chunk: its head */
        e->truncated++;
        hearth_tokenize(e->model, text, len, true, false, NULL, 0, &n);
        int32_t *all = malloc(n * sizeof *all);
        if (!all) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
        err = hearth_tokenize(e->model, text, len, true, false, all, n, &n);
        memcpy(e->ids, all, (size_t)n_ctx * sizeof *all);
        free(all);
        n = (size_t)n_ctx;
    }
    if (err) return err;
    if (n == 0) return hr_fail(HEARTH_ERR_INVALID_ARG, "an empty text");
    return hearth_embed(e->session, e->ids, (int)n, e->pooling, true, out);
}

typedef struct opts {
    const char *db, *model, *tmpl, *pooling, *rerank;
    const char *text[64];
    int n_text;
    int k, chunk_words, overlap, max_file_mb, rerank_depth;
    rag_mode mode;
    bool prune, quiet, json, show_context;
    cli_gen_opts gen;
} opts;

static int usage(FILE *f, int rc) {
    fputs(usage_text, f);
    if (f == stdout) fputs("sampling options (ask):\n" CLI_GEN_USAGE, f);
    return rc;
}

static int bad_value(const char *opt, const char *v) {
    fprintf(stderr, "hearth rag: %s: bad value '%s'\n", opt, v);
    return 2;
}

/* Parses argv[2..]; 0 or an exit status. */
static int parse(int argc, char **argv, opts *o) {
    *o =
        (opts){.db = "hearth-rag.db", .k = 5, .chunk_words = 200, .overlap = 40, .max_file_mb = 16};
    cli_gen_defaults(&o->gen);
    o->gen.smp.temperature = 0; /* answers from documents: greedy unless asked */
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout, -1);
        bool *flag = !strcmp(a, "--prune")          ? &o->prune
                     : !strcmp(a, "-q")             ? &o->quiet
                     : !strcmp(a, "--json")         ? &o->json
                     : !strcmp(a, "--show-context") ? &o->show_context
                                                    : NULL;
        if (flag) {
            *flag = true;
            continue;
        }
        if (cli_gen_flag(a, &o->gen)) continue; /* --ignore-eos, --swa-full */
        if (a[0] != '-' || !a[1]) {
            if (o->n_text == (int)(sizeof o->text / sizeof *o->text)) {
                fprintf(stderr, "hearth rag: more than 64 paths\n");
                return 2;
            }
            o->text[o->n_text++] = a;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth rag: option '%s' needs a value\n", a);
            return 2;
        }
        const int r = cli_gen_opt("rag", a, v, &o->gen);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--db"))
            o->db = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--chat-template"))
            o->tmpl = v;
        else if (!strcmp(a, "--pooling"))
            o->pooling = v;
        else if (!strcmp(a, "--rerank"))
            o->rerank = v;
        else if (!strcmp(a, "--rerank-depth")) {
            if (!cli_parse_int(v, 1, 100, &o->rerank_depth)) return bad_value(a, v);
        } else if (!strcmp(a, "-k")) {
            if (!cli_parse_int(v, 1, 100, &o->k)) return bad_value(a, v);
        } else if (!strcmp(a, "--chunk-words")) {
            if (!cli_parse_int(v, 8, 8192, &o->chunk_words)) return bad_value(a, v);
        } else if (!strcmp(a, "--overlap")) {
            if (!cli_parse_int(v, 0, 4096, &o->overlap)) return bad_value(a, v);
        } else if (!strcmp(a, "--max-file-mb")) {
            if (!cli_parse_int(v, 1, 1024, &o->max_file_mb)) return bad_value(a, v);
        } else if (!strcmp(a, "--mode")) {
            if (!rag_mode_parse(v, &o->mode)) return bad_value(a, v);
        } else {
            fprintf(stderr, "hearth rag: unknown option '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    return 0;
}

static int open_model(const opts *o, embedder *e) {
    hearth_pooling pool = HEARTH_POOL_MEAN;
    if (o->pooling && !hearth_pooling_parse(o->pooling, &pool))
        return bad_value("--pooling", o->pooling);
    if (hearth_model_load(o->model, &o->gen.mp, &e->model)) return cli_fail("rag", o->model);
    e->pooling = o->pooling ? pool : hearth_model_pooling(e->model);
    if (hearth_session_new(e->model, &o->gen.sp, &e->session))
        return cli_fail("rag", "creating the session");
    if (!(e->ids = malloc((size_t)hearth_session_n_ctx(e->session) * sizeof *e->ids))) {
        fprintf(stderr, "hearth rag: out of memory\n");
        return 1;
    }
    if (rag_model_id(o->model, hearth_model_n_embd(e->model), hearth_pooling_name(e->pooling),
                     e->id))
        return cli_fail("rag", o->model);
    return 0;
}

static void close_model(embedder *e) {
    free(e->ids);
    hearth_session_free(e->session);
    hearth_model_free(e->model);
}

static void on_progress(void *user, const char *path, const char *action, const char *why) {
    const opts *o = user;
    if (!strcmp(action, "skipped"))
        fprintf(stderr, "skipped %s: %s\n", path, why);
    else if (!o->quiet && strcmp(action, "unchanged"))
        fprintf(stderr, "%s %s\n", action, path);
}

static int do_index(const opts *o, rag_index *x, embedder *e) {
    if (!o->n_text) return usage(stderr, 2);
    rag_ingest_params p = rag_ingest_default_params();
    p.chunk_words = o->chunk_words;
    p.overlap_words = o->overlap;
    p.max_file_bytes = (uint64_t)o->max_file_mb << 20;
    p.prune = o->prune;
    p.progress = on_progress;
    p.user = (void *)o;
    rag_embedder emb = {embed_text, e, e->model ? hearth_model_n_embd(e->model) : 0, e->id};
    if (e->model) p.embedder = &emb;
    rag_ingest_stats st;
    const hearth_err err = rag_ingest(x, o->text, o->n_text, &p, &st);
    fprintf(stderr,
            "%lld added, %lld updated, %lld unchanged, %lld removed, %lld skipped; %lld chunks "
            "written\n",
            (long long)st.added, (long long)st.updated, (long long)st.unchanged,
            (long long)st.removed, (long long)st.skipped, (long long)st.chunks_written);
    if (e->truncated)
        fprintf(stderr,
                "note: %d chunks were longer than the context (--ctx) and were embedded "
                "by their head\n",
                e->truncated);
    return err ? cli_fail("rag", "indexing") : 0;
}

/* The reranker of --rerank, with a session of its own. */
typedef struct ranker {
    hearth_model *model;
    hearth_session *session;
    int truncated; /* chunks cut to fit its context */
} ranker;

static int open_ranker(const opts *o, ranker *r) {
    if (hearth_model_load(o->rerank, &o->gen.mp, &r->model)) return cli_fail("rag", o->rerank);
    if (!hearth_model_ranks(r->model)) {
        fprintf(stderr, "hearth rag: %s is not a reranker (its file has no pooling_type rank)\n",
                o->rerank);
        return 1;
    }
    hearth_session_params sp = hearth_session_default_params();
    sp.n_ctx = o->gen.sp.n_ctx;
    return hearth_session_new(r->model, &sp, &r->session) ? cli_fail("rag", "the reranker") : 0;
}

static void close_ranker(ranker *r) {
    hearth_session_free(r->session);
    hearth_model_free(r->model);
}

/* The second stage: h ordered by the reranker, its k best kept. */
static int rerank_hits(const opts *o, ranker *r, const char *question, rag_hits *h) {
    if (h->n == 0) return 0;
    const size_t cap = (size_t)hearth_session_n_ctx(r->session);
    int32_t *ids = malloc(h->n * cap * sizeof *ids);
    int *lens = malloc(h->n * sizeof *lens);
    float *scores = malloc(h->n * sizeof *scores);
    int rc = ids && lens && scores ? 0 : cli_fail("rag", "out of memory");
    size_t off = 0, n = 0;
    for (size_t i = 0; !rc && i < h->n; i++, off += n) {
        bool cut;
        if (rag_rerank_pair(r->model, question, strlen(question), h->hit[i].text, ids + off, cap,
                            &n, &cut))
            rc = cli_fail("rag", "the question is too long for the reranker");
        lens[i] = (int)n;
        r->truncated += cut;
    }
    if (!rc && hearth_rank_batch(r->session, ids, lens, (int)h->n, scores))
        rc = cli_fail("rag", "reranking");
    if (!rc && rag_rerank(h, scores, (size_t)o->k)) rc = cli_fail("rag", "reranking");
    free(ids);
    free(lens);
    free(scores);
    return rc;
}

/* The question's hits; 0 or an exit status. */
static int search(const opts *o, rag_index *x, embedder *e, ranker *r, const char *question,
                  rag_hits *h) {
    float *v = NULL;
    if (e->model) {
        v = malloc((size_t)hearth_model_n_embd(e->model) * sizeof *v);
        if (!v || embed_text(e, question, strlen(question), v)) {
            free(v);
            return cli_fail("rag", "embedding the question");
        }
    }
    rag_query q = {.text = question,
                   .len = strlen(question),
                   .vector = v,
                   .model = e->model ? e->id : NULL,
                   .k = o->k,
                   .mode = o->mode};
    if (r->model) q.k = rag_rerank_depth(o->k, o->rerank_depth); /* the reranker's candidates */
    const hearth_err err = rag_search(x, &q, h);
    free(v);
    if (err) return cli_fail("rag", "searching");
    return r->model ? rerank_hits(o, r, question, h) : 0;
}

/* What a hit's source adds to its path: " - Title" of an HTML page or
 * " p. 3" of a PDF (the source after the file's name), else nothing. */
static const char *where(const rag_hit *h) {
    const char *name = strrchr(h->path, '/');
    name = name ? name + 1 : h->path;
    const size_t n = strlen(name);
    return strncmp(h->source, name, n) == 0 ? h->source + n : "";
}

static void print_hit_json(const rag_hit *h, int rank) {
    cJSON *j = rag_hit_json(h, rank);
    char *s = cJSON_PrintUnformatted(j);
    if (s) puts(s);
    free(s);
    cJSON_Delete(j);
}

static int do_query(const opts *o, rag_index *x, embedder *e, ranker *r) {
    if (o->n_text != 1) return usage(stderr, 2);
    rag_hits h;
    const int rc = search(o, x, e, r, o->text[0], &h);
    if (rc) return rc;
    for (size_t i = 0; i < h.n; i++) {
        if (o->json) {
            print_hit_json(&h.hit[i], (int)i + 1);
            continue;
        }
        printf("[%zu] %s%s (bytes %lld+%lld, %s %.4f)\n%s\n\n", i + 1, h.hit[i].path,
               where(&h.hit[i]), (long long)h.hit[i].byte_start, (long long)h.hit[i].byte_len,
               rag_mode_name(h.mode), h.hit[i].score, h.hit[i].text);
    }
    if (!h.n && !o->json) fprintf(stderr, "no chunk matches\n");
    rag_hits_free(&h);
    return 0;
}

static bool stream_token(const hearth_token_event *ev, void *user) {
    (void)user;
    fwrite(ev->text, 1, ev->len, stdout);
    fflush(stdout);
    return true;
}

/* The rendered prompt for question with the hits' context; 0 or an exit status. */
static int ask_prompt(const opts *o, embedder *e, const char *question, const rag_hits *h,
                      int32_t **ids, size_t *n) {
    tok_chat_template t;
    eng_chat_source src;
    if (eng_chat_choose(e->model, o->tmpl, &t, &src)) return cli_fail("rag", "the chat template");
    char *user = rag_user_message(h, question);
    char *bos = eng_token_text(e->model, hearth_token_bos(e->model));
    char *eos = eng_token_text(e->model, hearth_token_eos(e->model));
    int rc = 0;
    if (!user || !bos || !eos) {
        fprintf(stderr, "hearth rag: out of memory\n");
        rc = 1;
    } else {
        if (o->show_context) fprintf(stderr, "%s\n", user);
        const tok_chat_msg msg = {
            .role = TOK_CHAT_USER, .content = user, .content_len = strlen(user)};
        if (eng_chat_tokens(e->model, &t, &msg, 1, bos, eos, false, ids, n))
            rc = cli_fail("rag", "rendering the prompt");
    }
    free(user);
    free(bos);
    free(eos);
    return rc;
}

static int do_ask(const opts *o, rag_index *x, embedder *e, ranker *r) {
    if (o->n_text != 1 || !e->model) return usage(stderr, 2);
    rag_hits h;
    int rc = search(o, x, e, r, o->text[0], &h);
    if (rc) return rc;
    int32_t *ids = NULL;
    size_t n = 0;
    hearth_sampler *smp = NULL;
    rc = ask_prompt(o, e, o->text[0], &h, &ids, &n);
    if (!rc && n + 16 > (size_t)hearth_session_n_ctx(e->session)) {
        fprintf(stderr,
                "hearth rag: the question and %zu passages take %zu tokens; the context "
                "holds %d (lower -k or raise --ctx)\n",
                h.n, n, hearth_session_n_ctx(e->session));
        rc = 1;
    }
    if (!rc && hearth_sampler_new(e->model, &o->gen.smp, &smp)) rc = cli_fail("rag", "sampler");
    hearth_gen_result res;
    if (!rc && hearth_generate(e->session, smp, ids, (int)n, &o->gen.gen, stream_token, NULL, &res))
        rc = cli_fail("rag", "generating");
    if (!rc) {
        printf("\n\nSources:\n");
        for (size_t i = 0; i < h.n; i++)
            printf("[%zu] %s%s (bytes %lld+%lld)\n", i + 1, h.hit[i].path, where(&h.hit[i]),
                   (long long)h.hit[i].byte_start, (long long)h.hit[i].byte_len);
    }
    hearth_sampler_free(smp);
    free(ids);
    rag_hits_free(&h);
    return rc;
}

static int do_status(const opts *o, rag_index *x) {
    rag_info in;
    if (rag_info_get(x, &in)) return cli_fail("rag", o->db);
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "documents", (double)in.n_docs);
        cJSON_AddNumberToObject(j, "chunks", (double)in.n_chunks);
        cJSON_AddNumberToObject(j, "vectors", (double)in.n_vectors);
        cJSON_AddNumberToObject(j, "dims", in.n_dims);
        cJSON_AddStringToObject(j, "model", in.model);
        cJSON_AddNumberToObject(j, "chunk_words", in.chunk_words);
        cJSON_AddNumberToObject(j, "overlap_words", in.overlap_words);
        char *s = cJSON_PrintUnformatted(j);
        if (s) puts(s);
        free(s);
        cJSON_Delete(j);
    } else
        printf("%s: %lld documents, %lld chunks (%d words, overlap %d), %lld vectors%s%s\n", o->db,
               (long long)in.n_docs, (long long)in.n_chunks, in.chunk_words, in.overlap_words,
               (long long)in.n_vectors, *in.model ? " from " : "", in.model);
    return 0;
}

int cmd_rag(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
        return usage(argc < 2 ? stderr : stdout, argc < 2 ? 2 : 0);
    const char *verb = argv[1];
    const bool indexing = !strcmp(verb, "index");
    if (!indexing && strcmp(verb, "query") && strcmp(verb, "ask") && strcmp(verb, "status")) {
        fprintf(stderr, "hearth rag: unknown command '%s'\n", verb);
        return usage(stderr, 2);
    }
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    embedder e = {0};
    ranker r = {0};
    rag_index *x = NULL;
    if (o.model && (rc = open_model(&o, &e))) goto done;
    if (o.rerank && !indexing && (rc = open_ranker(&o, &r))) goto done;
    if (rag_open(o.db, indexing, &x)) {
        rc = cli_fail("rag", "opening the index");
        goto done;
    }
    rc = indexing                 ? do_index(&o, x, &e)
         : !strcmp(verb, "query") ? do_query(&o, x, &e, &r)
         : !strcmp(verb, "ask")   ? do_ask(&o, x, &e, &r)
                                  : do_status(&o, x);
    if (r.truncated)
        fprintf(stderr,
                "note: %d chunks were longer than the reranker's context (--ctx) and were "
                "judged by their head\n",
                r.truncated);
done:
    close_ranker(&r);
    rag_close(x);
    close_model(&e);
    return rc;
}
