/*
 * cmd_chat.c - `hearth chat`: a conversation with the model in the terminal,
 * as `ollama run` or `llama-cli -cnv` hold one. Each line read is a user
 * message; the whole conversation is rendered by the chat template every
 * turn and the session reuses the KV cache of the prefix it already holds,
 * so a turn only evaluates its new tokens. When the conversation outgrows
 * the context, the oldest exchanges (never the system message) are dropped.
 *
 * Ctrl-C stops the reply being written (what was written stays in the
 * conversation); at the prompt it ends the program, as Ctrl-D does.
 *
 * A reasoning model's <think> block is shown between "Thinking..." and
 * "...done thinking." as ollama shows it (--hide-thinking: not at all);
 * --think off asks the template for an answer without one (Qwen 3).
 *
 * --context-shift lets a reply outgrow the context as ollama's does: the
 * conversation it answers is kept and the older half of what follows (the
 * reply so far) is forgotten; without -n it stops after 10 times the
 * context, ollama's bound.
 */
#include "cli.h"

#include "core/core.h"
#include "engine/chat.h"
#include "engine/think.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char chat_usage[] =
    "usage: hearth chat -m FILE [options]\n"
    "  Talks with the model through its chat template: every line read from stdin is a user\n"
    "  message (end a line with \\ to continue it on the next), the reply streams to stdout.\n"
    "  Commands: /clear forgets the conversation, /exit (or Ctrl-D) ends it, /image FILE puts\n"
    "  a PNG or JPEG before the next message (with --mmproj); Ctrl-C stops a reply.\n"
    "  -s, --system TEXT   system message\n"
    "  --chat-template T   a template name (" /* names appended at run time */;

static const char chat_usage_rest[] =
    ") or a file of Jinja text\n"
    "                      (default: the model's tokenizer.chat_template, else chatml)\n"
    "  --verbose           prompt and generation speed after each reply, on stderr\n"
    "  --mmproj FILE       the model's vision projector (docs/vision.md)\n"
    "  --image FILE        an image before the first message (repeatable; needs --mmproj)\n"
    "  --think on|off      a reasoning model thinks first (default: its template's say; off:\n"
    "                      Qwen 3's enable_thinking false)\n"
    "  --hide-thinking     do not print a reasoning model's <think> block\n"
    "  --reasoning-budget N  tokens of thinking at most, then </think> is forced (0: none)\n"
    "  -n N                most tokens per reply (default: until the end of the turn)\n"
    "  --context-shift     a reply that fills the context forgets its own older half and goes\n"
    "                      on (the conversation it answers is kept)\n"
    "  other options as `hearth run` (sampling, -t, -c, --kv-type, speculative "
    "decoding):\n" CLI_GEN_USAGE CLI_SPEC_USAGE;

enum { CHAT_LINE_MAX = 1 << 20 };

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct chat_msg {
    tok_chat_role role;
    char *text;
} chat_msg;

typedef struct chat {
    hearth_model *model;
    hearth_session *session;
    hearth_sampler *sampler;
    tok_chat_template tmpl;
    char *bos, *eos;
    chat_msg *msgs;
    size_t n_msgs, cap_msgs, first_turn; /* msgs[first_turn..] can be dropped */
    char *reply;                         /* the reply being written */
    size_t reply_len, reply_cap;
    /* a reasoning model's replies: thinking off, its block hidden, the
     * splitter of the reply being written and what was printed of it */
    bool no_thinking, hide_thinking, thinks;
    eng_think split;
    bool said_thinking, said_done;
    /* images (--mmproj): each one's rows and hash, in the order of their
     * markers in msgs; `pending` of the last go before the next message */
    hearth_vision *vision;
    float *rows; /* [n_images][rows per image][n_embd] */
    uint64_t *hashes;
    int n_images, pending;
} chat;

/* Images in text: how many markers it holds. */
static int markers(const char *text) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, HEARTH_MEDIA_MARKER));
         p += strlen(HEARTH_MEDIA_MARKER))
        n++;
    return n;
}

static size_t image_floats(const chat *c) {
    return (size_t)hearth_vision_n_tokens(c->vision) * (size_t)hearth_model_n_embd(c->model);
}

/* /image FILE, --image FILE: read, encoded, kept for the next message. */
static int chat_image(chat *c, const char *path) {
    if (!c->vision) {
        fprintf(stderr, "hearth chat: images need a vision projector (--mmproj FILE)\n");
        return 1;
    }
    cli_media one;
    const char *paths[1] = {path};
    if (cli_media_load("chat", c->vision, c->model, paths, 1, &one)) {
        cli_media_close(&one);
        return 1;
    }
    const size_t per = image_floats(c);
    float *rows = realloc(c->rows, (size_t)(c->n_images + 1) * per * sizeof *rows);
    uint64_t *hashes = rows ? realloc(c->hashes, (size_t)(c->n_images + 1) * sizeof *hashes) : NULL;
    if (rows) c->rows = rows;
    if (hashes) c->hashes = hashes;
    if (!rows || !hashes) {
        cli_media_close(&one);
        fprintf(stderr, "hearth chat: out of memory\n");
        return 1;
    }
    memcpy(c->rows + (size_t)c->n_images * per, one.rows, per * sizeof *rows);
    c->hashes[c->n_images++] = one.hashes[0];
    c->pending++;
    cli_media_close(&one);
    return 0;
}

static bool chat_push(chat *c, tok_chat_role role, const char *text, size_t len) {
    const size_t ml = strlen(HEARTH_MEDIA_MARKER), pre = (size_t)c->pending * ml;
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 16;
        chat_msg *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return false;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    chat_msg *m = &c->msgs[c->n_msgs];
    if (!(m->text = malloc(pre + len + 1))) return false;
    for (int i = 0; i < c->pending; i++) memcpy(m->text + (size_t)i * ml, HEARTH_MEDIA_MARKER, ml);
    memcpy(m->text + pre, text, len);
    m->text[pre + len] = '\0';
    m->role = role;
    c->pending = 0; /* the images go with this message */
    c->n_msgs++;
    return true;
}

/* Forgets messages [from, from + n), and their images. */
static void chat_drop(chat *c, size_t from, size_t n) {
    int first = 0, k = 0; /* the dropped images: [first, first + k) */
    for (size_t i = 0; i < from + n; i++) *(i < from ? &first : &k) += markers(c->msgs[i].text);
    if (k) {
        const size_t per = image_floats(c);
        memmove(c->rows + (size_t)first * per, c->rows + (size_t)(first + k) * per,
                (size_t)(c->n_images - first - k) * per * sizeof *c->rows);
        memmove(c->hashes + first, c->hashes + first + k,
                (size_t)(c->n_images - first - k) * sizeof *c->hashes);
        c->n_images -= k;
    }
    for (size_t i = from; i < from + n; i++) free(c->msgs[i].text);
    memmove(c->msgs + from, c->msgs + from + n, (c->n_msgs - from - n) * sizeof *c->msgs);
    c->n_msgs -= n;
}

/* The conversation as token ids, ending with the assistant's header. The
 * template prints BOS where the model's does; the tokenizer adds it too
 * when the vocabulary asks, so a leading BOS text is cut (one BOS). */
static hearth_err chat_tokens(const chat *c, int32_t **ids, size_t *n) {
    tok_chat_msg *m = malloc(c->n_msgs * sizeof *m);
    if (!m) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_msgs; i++)
        m[i] = (tok_chat_msg){.role = c->msgs[i].role,
                              .content = c->msgs[i].text,
                              .content_len = strlen(c->msgs[i].text)};
    /* the images of messages pushed (not those waiting for the next one) */
    const eng_chat_media media = {c->vision, c->hashes, c->n_images - c->pending};
    const hearth_err e = eng_chat_tokens_media(c->model, &c->tmpl, m, c->n_msgs, c->bos, c->eos,
                                               c->no_thinking, media.n ? &media : NULL, ids, n);
    free(m);
    return e;
}

/* Prints the parts of a piece of the reply: thinking framed as ollama
 * frames it (or not at all), then the answer. */
static void show(chat *c, const eng_think_out *o) {
    if (o->n_reason && !c->hide_thinking) {
        if (!c->said_thinking) fputs("Thinking...\n", stdout);
        c->said_thinking = true;
        fwrite(o->reason, 1, o->n_reason, stdout);
    }
    if (o->n_content && c->said_thinking && !c->said_done) {
        fputs("\n...done thinking.\n\n", stdout);
        c->said_done = true;
    }
    fwrite(o->content, 1, o->n_content, stdout);
    fflush(stdout);
}

static bool on_token(const hearth_token_event *ev, void *user) {
    chat *c = user;
    if (c->thinks) {
        char reason[512 + ENG_THINK_HOLD], content[512 + ENG_THINK_HOLD];
        for (size_t at = 0; at < ev->len; at += 512) { /* a piece is a token's text: short */
            eng_think_out o = {.reason = reason, .content = content};
            eng_think_feed(&c->split, ev->text + at, ev->len - at < 512 ? ev->len - at : 512, &o);
            show(c, &o);
        }
    } else {
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
    }
    if (c->reply_len + ev->len + 1 > c->reply_cap) {
        size_t cap = 2 * (c->reply_len + ev->len + 1) + 256;
        char *r = realloc(c->reply, cap);
        if (!r) return false;
        c->reply = r;
        c->reply_cap = cap;
    }
    memcpy(c->reply + c->reply_len, ev->text, ev->len);
    c->reply_len += ev->len;
    return !interrupted;
}

/* Answers the last user message. Returns 0, or 1 after printing why not. */
/* The conversation through its last image, when it has images; *done: the
 * positions this evaluated. */
static hearth_err chat_prefill(chat *c, const int32_t *ids, int n, int *done) {
    const int k = c->n_images - c->pending;
    *done = 0;
    if (k == 0) return HEARTH_OK;
    const float **images = malloc((size_t)k * sizeof *images);
    if (!images) return hr_fail(HEARTH_ERR_NOMEM, "out of memory");
    for (int i = 0; i < k; i++) images[i] = c->rows + (size_t)i * image_floats(c);
    const hearth_err e = hearth_prefill_media(c->session, c->vision, ids, n, images, k, done);
    free(images);
    return e;
}

static int chat_reply(chat *c, const cli_gen_opts *o, bool verbose) {
    const int n_ctx = hearth_session_n_ctx(c->session);
    int room = o->gen.max_tokens > 0 ? o->gen.max_tokens : 256;
    if (room > n_ctx / 2) room = n_ctx / 2;
    int32_t *ids = NULL;
    size_t n = 0;
    for (;;) {
        free(ids);
        ids = NULL;
        if (chat_tokens(c, &ids, &n)) {
            free(ids);
            chat_drop(c, c->n_msgs - 1, 1);
            return cli_fail("chat", "rendering the conversation");
        }
        if (n + (size_t)room <= (size_t)n_ctx || c->n_msgs - c->first_turn <= 1) break;
        /* the oldest exchange goes: a user message and the replies after it */
        size_t k = 1;
        while (c->first_turn + k < c->n_msgs - 1 &&
               c->msgs[c->first_turn + k].role != TOK_CHAT_USER)
            k++;
        chat_drop(c, c->first_turn, k);
        fprintf(stderr,
                "[the conversation outgrew the context: its oldest exchange was dropped]\n");
    }
    if (n >= (size_t)n_ctx) {
        free(ids);
        chat_drop(c, c->n_msgs - 1, 1);
        fprintf(stderr, "hearth chat: the message is %zu tokens; the context holds %d\n", n, n_ctx);
        return 1;
    }
    c->reply_len = 0;
    interrupted = 0;
    eng_think_init(&c->split, tok_chat_opens_think(&c->tmpl, c->no_thinking));
    c->said_thinking = c->said_done = false;
    hearth_gen_params gp = o->gen;
    gp.n_keep = -1; /* a shift keeps the conversation */
    if (gp.ctx_shift && gp.max_tokens <= 0) gp.max_tokens = 10 * n_ctx;
    hearth_gen_result r = {0};
    int prefilled = 0;
    hearth_err e = chat_prefill(c, ids, (int)n, &prefilled);
    if (!e) e = hearth_generate(c->session, c->sampler, ids, (int)n, &gp, on_token, c, &r);
    if (!e) r.n_cached -= prefilled; /* evaluated by the prefill, not found in the session */
    free(ids);
    if (c->thinks) { /* what the splitter held back */
        char reason[ENG_THINK_HOLD], content[ENG_THINK_HOLD];
        eng_think_out out = {.reason = reason, .content = content};
        eng_think_finish(&c->split, &out);
        show(c, &out);
    }
    fputs(interrupted ? "\n[interrupted]\n" : "\n", stdout);
    fflush(stdout);
    if (e) return cli_fail("chat", "generating");
    if (r.n_discarded)
        fprintf(stderr, "[context shift: %d tokens of the reply forgotten]\n", r.n_discarded);
    if (!chat_push(c, TOK_CHAT_ASSISTANT, c->reply ? c->reply : "", c->reply_len)) return 1;
    if (verbose && prefilled)
        fprintf(stderr,
                "[images: the prompt through its last one, %d positions, evaluated first]\n",
                prefilled);
    if (verbose)
        fprintf(stderr,
                "[prompt: %d tokens (%d cached) at %.1f tokens/s | reply: %d tokens at %.1f "
                "tokens/s]\n",
                r.n_prompt, r.n_cached, r.prompt_ms > 0 ? r.n_prompt * 1e3 / r.prompt_ms : 0.0,
                r.n_gen, r.gen_ms > 0 ? r.n_gen * 1e3 / r.gen_ms : 0.0);
    if (verbose) cli_spec_report(&r);
    return 0;
}

static void prompt(const char *p) {
    fputs(p, stdout);
    fflush(stdout);
}

/* Reads one message into *msg: lines ending in a backslash continue on the
 * next. 1; 0 at the end of input or when Ctrl-C interrupted the read; -1
 * when the message is over CHAT_LINE_MAX (dropped, said on stderr). */
static int read_message(FILE *in, bool tty, char **msg) {
    char *acc = NULL;
    size_t n = 0;
    if (tty) prompt("> ");
    for (;;) {
        char *line;
        size_t len;
        const int r = cli_read_line(in, CHAT_LINE_MAX - n, &line, &len);
        if (r == 0 && acc) break; /* a continued line at the end of input */
        if (r <= 0) {
            free(acc);
            if (r == -1)
                fprintf(stderr, "hearth chat: a message is limited to %d MiB; it was dropped\n",
                        CHAT_LINE_MAX >> 20);
            return r == -1 ? -1 : 0;
        }
        const bool more = len && line[len - 1] == '\\';
        if (more) line[len - 1] = '\n';
        char *grown = realloc(acc, n + len + 1);
        if (!grown) {
            free(line);
            free(acc);
            return 0;
        }
        acc = grown;
        memcpy(acc + n, line, len + 1);
        n += len;
        free(line);
        if (!more) break;
        if (tty) prompt(". ");
    }
    *msg = acc;
    return 1;
}

static int chat_loop(chat *c, const cli_gen_opts *o, bool verbose) {
    const bool tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr, "chat template: %s. /clear forgets the conversation, /exit ends it.\n",
                c->tmpl.name);
    for (;;) {
        char *line = NULL;
        const int got = read_message(stdin, tty, &line);
        if (got == 0) break;
        if (got < 0) {
            if (tty) continue;
            return 1; /* a script's message was lost: stop rather than answer the next */
        }
        int rc = 0;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit") || !strcmp(line, "/bye")) {
            free(line);
            break;
        }
        if (!strncmp(line, "/image ", 7)) {
            rc = chat_image(c, line + 7);
            if (!rc) fputs("[image added: it goes with your next message]\n", stdout);
        } else if (!strcmp(line, "/clear")) {
            chat_drop(c, c->first_turn, c->n_msgs - c->first_turn);
            fputs("[conversation cleared]\n", stdout);
        } else if (line[0] == '/' && line[1] != '/' && !strchr(line, ' ') && line[1]) {
            fprintf(
                stderr,
                "unknown command '%s' (/clear, /exit, /image FILE; start with // to send a /)\n",
                line);
        } else {
            const char *text = line[0] == '/' && line[1] == '/' ? line + 1 : line;
            rc = chat_push(c, TOK_CHAT_USER, text, strlen(text)) ? chat_reply(c, o, verbose) : 1;
        }
        free(line);
        if (rc && !tty) return rc; /* a script stops at the first failure */
    }
    return 0;
}

static void chat_free(chat *c) {
    chat_drop(c, 0, c->n_msgs);
    hearth_vision_free(c->vision);
    free(c->rows);
    free(c->hashes);
    free(c->msgs);
    free(c->reply);
    free(c->bos);
    free(c->eos);
    hearth_sampler_free(c->sampler);
    hearth_session_free(c->session);
    hearth_model_free(c->model);
}

/* The chat's sampler: a thinking budget counts from the first token where
 * the template opens the block. */
static hearth_err chat_sampler(chat *c, hearth_sampling smp) {
    smp.reasoning_open = tok_chat_opens_think(&c->tmpl, c->no_thinking);
    return hearth_sampler_new(c->model, &smp, &c->sampler);
}

static void print_usage(FILE *f) {
    fprintf(f, "%s%s%s", chat_usage, tok_chat_names(), chat_usage_rest);
}

int cmd_chat(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_defaults(&o);
    cli_spec_opts spec;
    cli_spec_defaults(&spec);
    const char *model = NULL, *system_msg = NULL, *tmpl = NULL, *mmproj = NULL;
    const char *images[16];
    int n_images = 0;
    bool verbose = false, hide_thinking = false, no_thinking = false;
    int budget = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--verbose") || !strcmp(a, "--hide-thinking") ||
            !strcmp(a, "--context-shift")) {
            verbose |= !strcmp(a, "--verbose");
            hide_thinking |= !strcmp(a, "--hide-thinking");
            o.gen.ctx_shift |= !strcmp(a, "--context-shift");
            continue;
        }
        if (cli_gen_flag(a, &o)) continue;
        const int lr = cli_model_opt("chat", argc, argv, &i, &o.lora);
        if (lr < 0) return 2;
        if (lr) continue;
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "hearth chat: option '%s' needs a value\n", a);
            return 2;
        }
        int r = cli_gen_opt("chat", a, v, &o);
        if (!r) r = cli_spec_opt("chat", a, v, &spec);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "-s") || !strcmp(a, "--system"))
            system_msg = v;
        else if (!strcmp(a, "--chat-template"))
            tmpl = v;
        else if (!strcmp(a, "--mmproj"))
            mmproj = v;
        else if (!strcmp(a, "--image")) {
            if (n_images == 16) {
                fprintf(stderr, "hearth chat: at most 16 images (--image)\n");
                return 2;
            }
            images[n_images++] = v;
        } else if (!strcmp(a, "--think") || !strcmp(a, "--reasoning-budget")) {
            const bool think = !strcmp(a, "--think");
            if (think ? strcmp(v, "on") && strcmp(v, "off")
                      : !cli_parse_int(v, 0, INT32_MAX, &budget)) {
                fprintf(stderr, "hearth chat: bad value '%s' for %s\n", v, a);
                return 2;
            }
            if (think) no_thinking = !strcmp(v, "off");
        } else {
            fprintf(stderr, "hearth chat: unknown option '%s'\n", a);
            print_usage(stderr);
            return 2;
        }
    }
    if (!model) {
        print_usage(stderr);
        return 2;
    }
    if (cli_spec_resolve("chat", &spec)) return 2;
    chat c = {0};
    eng_chat_source src = ENG_CHAT_NAMED;
    int rc = 0;
    cli_model_params(&o.lora, &o.mp);
    c.no_thinking = no_thinking;
    c.hide_thinking = hide_thinking;
    if (budget >= 0) o.smp.reasoning_budget = budget ? budget : HEARTH_REASONING_BUDGET_ZERO;
    if (hearth_model_load(model, &o.mp, &c.model))
        rc = cli_fail("chat", "loading the model");
    else if (eng_chat_choose(c.model, tmpl, &c.tmpl, &src))
        rc = cli_fail("chat", "the chat template");
    else if (!(c.bos = eng_token_text(c.model, hearth_token_bos(c.model))) ||
             !(c.eos = eng_token_text(c.model, hearth_token_eos(c.model))))
        rc = 1; // NOLINT(bugprone-branch-clone): a chain of steps, several failing alike
    else if (hearth_session_new(c.model, &o.sp, &c.session))
        rc = cli_fail("chat", "creating the session");
    else if (chat_sampler(&c, o.smp))
        rc = cli_fail("chat", "creating the sampler");
    else if (cli_spec_open("chat", &spec, c.model, &o.mp, &o.sp, &o.gen))
        rc = 1;
    else if (system_msg && !chat_push(&c, TOK_CHAT_SYSTEM, system_msg, strlen(system_msg)))
        rc = 1;
    else if (mmproj && hearth_vision_load(mmproj, c.model, o.mp.n_threads, &c.vision))
        rc = cli_fail("chat", "--mmproj");
    for (int i = 0; i < n_images && !rc; i++) rc = chat_image(&c, images[i]);
    c.thinks = c.tmpl.think;
    if (!rc) {
        if (src == ENG_CHAT_FALLBACK)
            fprintf(stderr, "warning: the model has no chat template; using chatml "
                            "(--chat-template chooses another)\n");
        c.first_turn = c.n_msgs;
        struct sigaction sa = {0};
        sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt ends the read */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        rc = chat_loop(&c, &o, verbose);
    }
    cli_spec_close(&spec);
    chat_free(&c);
    return rc;
}
