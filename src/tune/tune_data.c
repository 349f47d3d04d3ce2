/*
 * tune_data.c - training sets (tune.h): records from JSONL files or from the
 * gateway's ledger, rendered to token ids as `hearth chat` and `hearth serve`
 * would present the prompt, then the answer and the token that ends the
 * assistant's turn.
 *
 * The prompt's ids are eng_chat_tokens' (the generation prompt included),
 * so that training sees exactly what inference will feed the model. The
 * answer's ids are its tokens as they continue that prompt: the rendered
 * prompt and the answer are tokenized together, and the part after the
 * prompt's ids is taken when that part begins where the prompt's ids end and
 * holds no control token (the answer's text is never parsed for special
 * tokens). Otherwise (a merge across the boundary, or special-token text in
 * the answer) the answer is tokenized alone, as plain text. Tokenizing the
 * answer alone always would be wrong for SentencePiece vocabularies that put
 * a space before the text: the model would learn to open every answer with
 * a space it never sees in a conversation.
 *
 * The token that ends a turn is found from the template itself: a turn whose
 * answer is a marker is rendered, and the first token of the text after the
 * marker (<|im_end|>, <|eot_id|>, <end_of_turn>, <|end|>) is taken when it is
 * an end-of-generation token; else the vocabulary's EOS.
 */
#include "tune.h"

#include "core/core.h"
#include "engine/chat.h"
#include "engine/engine.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tune_set_free(tune_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) free(set->ex[i].ids);
    free(set->ex);
    *set = (tune_set){0};
}

/* Appends ex (its ids now owned by the set). */
static hearth_err set_push(tune_set *set, tune_example ex) {
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 64;
        uint64_t bytes;
        tune_example *p =
            hr_mul_ok(cap, sizeof *p, &bytes) ? realloc(set->ex, (size_t)bytes) : NULL;
        if (!p) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory for %zu examples", cap);
        set->ex = p;
        set->cap = cap;
    }
    set->ex[set->n++] = ex;
    return HEARTH_OK;
}

/* Drops the examples after the first n (a file that failed adds nothing). */
static void set_truncate(tune_set *set, size_t n) {
    while (set->n > n) free(set->ex[--set->n].ids);
}

/* ---- rendering ---- */

/* text[0..len) as ids (malloc'd into *ids, *n of them). */
static hearth_err tokenize(const hearth_model *m, const char *text, size_t len, bool add_special,
                           bool parse_special, int32_t **ids, size_t *n) {
    size_t k = 0;
    hearth_err e = hearth_tokenize(m, text, len, add_special, parse_special, NULL, 0, &k);
    if (e && e != HEARTH_ERR_INVALID_ARG) return e; /* INVALID_ARG: measured */
    int32_t *p = malloc((k ? k : 1) * sizeof *p);
    if (!p) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    if ((e = hearth_tokenize(m, text, len, add_special, parse_special, p, k, &k))) {
        free(p);
        return e;
    }
    *ids = p;
    *n = k;
    return HEARTH_OK;
}

/* The token that ends an assistant turn in template r->tmpl (see above). */
static hearth_err end_of_turn(const hearth_model *m, const tune_render *r, int32_t *out) {
    static const char mark[] = "tune-answer-marker"; /* no white space: templates may trim */
    const tok_chat_msg msgs[2] = {{TOK_CHAT_USER, "?", 1},
                                  {TOK_CHAT_ASSISTANT, mark, sizeof mark - 1}};
    const tok_chat_opts o = {.bos = r->bos, .eos = r->eos};
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    hearth_err e = tok_chat_render(r->tmpl, msgs, 2, &o, &text, &len);
    if (e) return hr_wrap(e, "tune: rendering an answer with the chat template: ");
    const char *after = strstr(text, mark);
    *out = hearth_token_eos(m);
    if (after) {
        after += sizeof mark - 1;
        e = tokenize(m, after, strlen(after), false, true, &ids, &n);
        if (!e && n && hearth_token_is_eog(m, ids[0])) *out = ids[0];
    }
    free(ids);
    free(text);
    return e;
}

/* The answer's ids as they continue the prompt (see the file's comment). */
static hearth_err answer_ids(const hearth_model *m, const tune_render *r, const tok_chat_msg *msgs,
                             size_t n_msgs, const int32_t *prompt, size_t n_prompt,
                             const char *answer, size_t answer_len, int32_t **ids, size_t *n) {
    const tok_chat_opts o = {.bos = r->bos, .eos = r->eos, .add_generation_prompt = true};
    char *text = NULL, *both = NULL;
    size_t len = 0, n_all = 0;
    int32_t *all = NULL;
    hearth_err e = tok_chat_render(r->tmpl, msgs, n_msgs, &o, &text, &len);
    if (e) return e;
    const size_t skip = eng_chat_bos_skip(text, len, r->bos);
    if (!(both = malloc(len - skip + answer_len + 1))) {
        free(text);
        return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    }
    memcpy(both, text + skip, len - skip);
    memcpy(both + len - skip, answer, answer_len);
    e = tokenize(m, both, len - skip + answer_len, true, true, &all, &n_all);
    free(both);
    free(text);
    if (e) return e;
    bool joined = n_all > n_prompt && !memcmp(all, prompt, n_prompt * sizeof *prompt);
    const tok_vocab *v = engine_vocab(m);
    for (size_t i = n_prompt; joined && i < n_all; i++) joined = !tok_is_control(v, all[i]);
    if (joined) {
        memmove(all, all + n_prompt, (n_all - n_prompt) * sizeof *all);
        *ids = all;
        *n = n_all - n_prompt;
        return HEARTH_OK;
    }
    free(all);
    return tokenize(m, answer, answer_len, false, false, ids, n);
}

/* Appends the example of one record: msgs[0..n_msgs) the prompt, then the
 * answer and end (-1: none). Counts it in n_skipped or n_too_long instead
 * when it has no answer or is too long. */
static hearth_err add_record(tune_set *set, const hearth_model *m, const tune_render *r,
                             const tok_chat_msg *msgs, size_t n_msgs, const char *answer,
                             size_t answer_len, int32_t end) {
    if (!answer_len) {
        set->n_skipped++;
        return HEARTH_OK;
    }
    int32_t *p = NULL, *a = NULL, *ids = NULL;
    size_t np = 0, na = 0;
    hearth_err e = eng_chat_tokens(m, r->tmpl, msgs, n_msgs, r->bos, r->eos, false, &p, &np);
    if (!e) e = answer_ids(m, r, msgs, n_msgs, p, np, answer, answer_len, &a, &na);
    if (e) goto done;
    const size_t n = np + na + (end >= 0);
    if (!np || !na) {
        set->n_skipped++;
    } else if (n > (size_t)r->max_len) {
        set->n_too_long++;
    } else if (!(ids = malloc(n * sizeof *ids))) {
        e = hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    } else {
        memcpy(ids, p, np * sizeof *ids);
        memcpy(ids + np, a, na * sizeof *ids);
        if (end >= 0) ids[n - 1] = end;
        e = set_push(set, (tune_example){.ids = ids, .n = (int)n, .n_prompt = (int)np});
        if (!e) ids = NULL;
    }
done:
    free(ids);
    free(p);
    free(a);
    return e;
}

/* ---- JSONL ---- */

static bool parse_role(const char *s, tok_chat_role *out) {
    static const struct {
        const char *name;
        tok_chat_role role;
    } roles[] = {
        {"system", TOK_CHAT_SYSTEM}, {"user", TOK_CHAT_USER}, {"assistant", TOK_CHAT_ASSISTANT}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(s, roles[i].name)) return *out = roles[i].role, true;
    return false;
}

/* A string member of object o (NULL when absent); fails when it is there but
 * not a string. */
static hearth_err get_string(const cJSON *o, const char *key, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v) return HEARTH_OK;
    if (!cJSON_IsString(v)) return hr_fail(HEARTH_ERR_FORMAT, "\"%s\" is not a string", key);
    *out = v->valuestring;
    return HEARTH_OK;
}

/* The messages of one parsed record: *msgs (malloc'd, borrowing j's
 * strings) the prompt, *answer the target. */
static hearth_err record_msgs(const cJSON *j, tok_chat_msg **msgs, size_t *n_msgs,
                              const char **answer) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "messages");
    const char *prompt, *completion, *system;
    hearth_err e;
    if (list && (cJSON_GetObjectItemCaseSensitive(j, "prompt") ||
                 cJSON_GetObjectItemCaseSensitive(j, "completion")))
        return hr_fail(HEARTH_ERR_FORMAT, "has both \"messages\" and \"prompt\"/\"completion\"");
    if (!list) {
        if ((e = get_string(j, "prompt", &prompt)) ||
            (e = get_string(j, "completion", &completion)) ||
            (e = get_string(j, "system", &system)))
            return e;
        if (!prompt || !completion)
            return hr_fail(HEARTH_ERR_FORMAT,
                           "needs \"prompt\" and \"completion\", or \"messages\"");
        tok_chat_msg *m = malloc(2 * sizeof *m);
        if (!m) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
        size_t n = 0;
        if (system) m[n++] = (tok_chat_msg){TOK_CHAT_SYSTEM, system, strlen(system)};
        m[n++] = (tok_chat_msg){TOK_CHAT_USER, prompt, strlen(prompt)};
        *msgs = m, *n_msgs = n, *answer = completion;
        return HEARTH_OK;
    }
    if (!cJSON_IsArray(list)) return hr_fail(HEARTH_ERR_FORMAT, "\"messages\" is not an array");
    const int n = cJSON_GetArraySize(list);
    if (n < 2)
        return hr_fail(HEARTH_ERR_FORMAT,
                       "\"messages\" needs a prompt and the assistant's answer (it has %d)", n);
    tok_chat_msg *m = malloc((size_t)n * sizeof *m);
    if (!m) return hr_fail(HEARTH_ERR_NOMEM, "tune: out of memory");
    int i = 0;
    const cJSON *msg;
    e = HEARTH_OK;
    cJSON_ArrayForEach(msg, list) {
        const char *role = NULL, *content = NULL;
        if (!cJSON_IsObject(msg))
            e = hr_fail(HEARTH_ERR_FORMAT, "message %d is not an object", i);
        else if ((e = get_string(msg, "role", &role)) || (e = get_string(msg, "content", &content)))
            e = hr_wrap(e, "message %d: ", i);
        else if (!role || !content)
            e = hr_fail(HEARTH_ERR_FORMAT, "message %d needs a string \"role\" and \"content\"", i);
        else if (!parse_role(role, &m[i].role))
            e = hr_fail(HEARTH_ERR_FORMAT, "message %d: role \"%s\" (system, user or assistant)", i,
                        role);
        else if (i == n - 1 && m[i].role != TOK_CHAT_ASSISTANT)
            e = hr_fail(
                HEARTH_ERR_FORMAT,
                "the last message is the answer: its role must be \"assistant\", not \"%s\"", role);
        if (e) break;
        m[i].content = content;
        m[i].content_len = strlen(content);
        i++;
    }
    if (e) {
        free(m);
        return e;
    }
    assert(i == n); /* the loop saw the n elements cJSON counted */
    *msgs = m, *n_msgs = (size_t)n - 1, *answer = m[n - 1].content;
    return HEARTH_OK;
}

/* One non-blank line of a JSONL text. */
static hearth_err jsonl_line(tune_set *set, const hearth_model *m, const tune_render *r,
                             const char *s, size_t len, int32_t end) {
    size_t bad = 0;
    if (!hr_utf8_valid(s, len, &bad))
        return hr_fail(HEARTH_ERR_FORMAT, "bad UTF-8 at byte %zu", bad + 1);
    const char *after = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &after, 0);
    tok_chat_msg *msgs = NULL;
    size_t n = 0;
    const char *answer = NULL;
    hearth_err e = HEARTH_OK;
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        e = at && at >= s && at <= s + len
                ? hr_fail(HEARTH_ERR_FORMAT, "not valid JSON (at byte %zu)", (size_t)(at - s) + 1)
                : hr_fail(HEARTH_ERR_FORMAT, "not valid JSON");
        goto done;
    }
    if (!cJSON_IsObject(j)) {
        e = hr_fail(HEARTH_ERR_FORMAT, "not a JSON object");
        goto done;
    }
    for (; after && after < s + len; after++)
        if (*after != ' ' && *after != '\t' && *after != '\r') {
            e = hr_fail(HEARTH_ERR_FORMAT, "text after the JSON object");
            goto done;
        }
    if ((e = record_msgs(j, &msgs, &n, &answer))) goto done;
    e = add_record(set, m, r, msgs, n, answer, strlen(answer), end);
    if (e == HEARTH_ERR_INVALID_ARG) /* the template refused the conversation */
        e = hr_wrap(HEARTH_ERR_FORMAT, "the chat template refuses it: ");
done:
    free(msgs);
    cJSON_Delete(j);
    return e;
}

hearth_err tune_set_add_jsonl_text(tune_set *set, const hearth_model *m, const tune_render *r,
                                   const char *name, const char *text, size_t len) {
    const size_t before = set->n, too_long = set->n_too_long, skipped = set->n_skipped;
    int32_t end = -1;
    hearth_err e = end_of_turn(m, r, &end);
    size_t line = 0;
    for (size_t i = 0; i < len && !e;) {
        const char *nl = memchr(text + i, '\n', len - i);
        const size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        line++;
        bool blank = true;
        for (size_t k = 0; k < n && blank; k++)
            blank = text[i + k] == ' ' || text[i + k] == '\t' || text[i + k] == '\r';
        if (!blank && (e = jsonl_line(set, m, r, text + i, n, end)))
            e = hr_wrap(e, "%s:%zu: ", name, line);
        i += n + 1;
    }
    if (e) { /* all of the file or none of it */
        set_truncate(set, before);
        set->n_too_long = too_long;
        set->n_skipped = skipped;
    }
    return e;
}

hearth_err tune_set_add_jsonl(tune_set *set, const hearth_model *m, const tune_render *r,
                              const char *path) {
    hr_map map;
    hearth_err e = hr_map_open(&map, path);
    if (e) return e;
    e = tune_set_add_jsonl_text(set, m, r, path, (const char *)map.data, (size_t)map.size);
    hr_map_close(&map);
    return e;
}

/* ---- the ledger ---- */

static const char ledger_sql[] =
    "SELECT prompt, remote_answer FROM requests WHERE prompt IS NOT NULL AND remote_answer IS "
    "NOT NULL AND status < 400 AND degraded = 0 AND time_ms >= ?1 ORDER BY id";

hearth_err tune_set_add_ledger(tune_set *set, const hearth_model *m, const tune_render *r,
                               const char *db_path, int64_t since_ms) {
    const size_t before = set->n, too_long = set->n_too_long, skipped = set->n_skipped;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int32_t end = -1;
    hearth_err e = end_of_turn(m, r, &end);
    if (e) return e;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        e = hr_fail(HEARTH_ERR_IO, "ledger %s: %s", db_path,
                    db ? sqlite3_errmsg(db) : "cannot open");
        goto done;
    }
    sqlite3_busy_timeout(db, 5000); /* a serving gateway may be writing (WAL) */
    if (sqlite3_prepare_v2(db, ledger_sql, -1, &st, NULL) != SQLITE_OK) {
        e = hr_fail(HEARTH_ERR_FORMAT, "ledger %s: not a Hearth ledger (%s)", db_path,
                    sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(st, 1, since_ms);
    int rc;
    while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *prompt = (const char *)sqlite3_column_text(st, 0);
        const size_t plen = (size_t)sqlite3_column_bytes(st, 0);
        const char *answer = (const char *)sqlite3_column_text(st, 1);
        const size_t alen = (size_t)sqlite3_column_bytes(st, 1);
        /* the roles were not recorded: the messages' texts, joined, are one user message */
        const tok_chat_msg msg = {TOK_CHAT_USER, prompt, plen};
        if (!prompt || !answer || !hr_utf8_valid(prompt, plen, NULL) ||
            !hr_utf8_valid(answer, alen, NULL))
            set->n_skipped++;
        else
            e = add_record(set, m, r, &msg, 1, answer, alen, end);
    }
    if (!e && rc != SQLITE_DONE)
        e = hr_fail(HEARTH_ERR_IO, "ledger %s: %s", db_path, sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (e) {
        set_truncate(set, before);
        set->n_too_long = too_long;
        set->n_skipped = skipped;
    }
    return e;
}

/* ---- the split ---- */

/* FNV-1a over the ids' bytes from a seeded start, then splitmix64's
 * finalizer so that the top bits are as well mixed as the bottom ones. */
static uint64_t example_hash(const tune_example *ex, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < ex->n; i++) {
        const uint32_t v = (uint32_t)ex->ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    h ^= (uint64_t)ex->n_prompt * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

hearth_err tune_set_split(tune_set *all, double val_share, uint64_t seed, tune_set *train,
                          tune_set *val) {
    if (!(val_share >= 0 && val_share < 1))
        return hr_fail(HEARTH_ERR_INVALID_ARG, "tune: the validation share %g is not in [0, 1)",
                       val_share);
    hearth_err e = HEARTH_OK;
    size_t i = 0;
    for (; i < all->n && !e; i++) {
        const double u = (double)(example_hash(&all->ex[i], seed) >> 11) * 0x1p-53;
        e = set_push(u < val_share ? val : train, all->ex[i]);
    }
    if (e) i--; /* the one that failed stays with all */
    for (size_t k = i; k < all->n; k++) free(all->ex[k].ids);
    free(all->ex);
    all->ex = NULL;
    all->n = all->cap = 0;
    return e;
}
