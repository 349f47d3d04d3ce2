/*
 * api_slots.c - llama-server's slot actions: POST /slots/{id}?action=save,
 * ?action=restore (body {"filename": "name.bin"}) and ?action=erase, with
 * its response shapes ({"id_slot", "filename", "n_saved", "n_written",
 * "timings": {"save_ms"}}, ... "n_restored", "n_read", "restore_ms";
 * {"id_slot", "n_erased"}) and errors (501 without --slot-save-path, 400
 * for a slot id, an action or a file name it refuses). The files are
 * session files (hearth_session_save, docs/kv-cache.md) and stay inside
 * --slot-save-path: a name is one path component, refused as llama.cpp's
 * fs_validate_filename refuses it (separators, "..", control and
 * look-alike characters, ...). The model is chosen as the other endpoints
 * choose it (the request's "model", in the query or the body, else the
 * default); the scheduler runs the action once the slot is idle (sched.c).
 */
#include "server.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { SLOT_NAME_MAX = 255 };

hearth_err srv_slots_start(srv_server *s) {
    const char *dir = s->cfg.slot_save_path;
    if (!dir) return HEARTH_OK;
    char path[4096];
    if (!*dir || strlen(dir) >= sizeof path)
        return hr_fail(HEARTH_ERR_INVALID_ARG, "server: --slot-save-path wants a directory");
    snprintf(path, sizeof path, "%s", dir);
    /* each parent, then the directory itself (llama-server makes them too) */
    for (char *p = path + 1;; p++) {
        const bool end = *p == '\0';
        if (!end && *p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return hr_fail(HEARTH_ERR_IO, "server: --slot-save-path: cannot make '%s': %s", path,
                           hr_strerror(errno));
        if (end) break;
        *p = '/';
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return hr_fail(HEARTH_ERR_IO, "server: --slot-save-path '%s' is not a directory", dir);
    return HEARTH_OK;
}

/* Characters a file name may not hold (fs_validate_filename's): controls,
 * separators and the Windows-illegal ones, their Unicode look-alikes, the
 * replacement character and the byte order mark. */
static bool name_char_bad(uint32_t c) {
    return c <= 0x1F || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == 0xFF0E || c == 0x2215 ||
           c == 0x2216 || c == 0xFFFD || c == 0xFEFF || (c < 0x80 && strchr("/\\:*?\"<>|", (int)c));
}

/* Whether name is one safe path component: 1..255 bytes of well-formed
 * UTF-8 without a bad character, no "..", not ".", no leading or trailing
 * space, no trailing dot. */
static bool name_ok(const char *name) {
    const size_t n = strlen(name);
    if (n == 0 || n > SLOT_NAME_MAX || strstr(name, "..") || name[0] == ' ' || name[n - 1] == ' ' ||
        name[n - 1] == '.')
        return false;
    for (size_t i = 0, len; i < n; i += len) {
        uint32_t c;
        if (!(len = hr_utf8_next(name + i, n - i, &c)) || name_char_bad(c)) return false;
    }
    return true;
}

/* A slot id: decimal digits only, within int. */
static bool parse_slot(const char *text, int *out) {
    long v = 0;
    if (!*text) return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > 1000000) return false;
        v = v * 10 + (*p - '0');
    }
    *out = (int)v;
    return true;
}

typedef struct slot_wait {
    srv_exchange *x;
    bool gone, late;
} slot_wait;

/* Asked while the action waits for a busy slot: the client left, or the
 * request's time (--timeout) ran out. */
static bool slot_give_up(void *user) {
    slot_wait *w = user;
    const int t = w->x->srv->cfg.timeout_s;
    w->gone = srv_client_gone(w->x->client_fd);
    w->late = t > 0 && srv_now_ms() - w->x->t0_ms > t * 1000.0;
    return w->gone || w->late;
}

/* msg with each occurrence of the file's path replaced by its name: the
 * client never learns where --slot-save-path is. */
static void without_dir(char *out, size_t cap, const char *msg, const char *path,
                        const char *name) {
    size_t n = 0;
    const size_t plen = path ? strlen(path) : 0;
    assert(!path || name); /* a path comes with its name */
    for (const char *p = msg; *p && n + 1 < cap;) {
        const bool at_path = plen && !strncmp(p, path, plen);
        const char *piece = at_path ? name : p;
        const size_t len = at_path ? strlen(name) : 1;
        for (size_t i = 0; i < len && n + 1 < cap; i++) out[n++] = piece[i];
        p += at_path ? plen : 1;
    }
    out[n] = '\0';
}

/* The answer to an action that ran. */
static void respond_done(srv_exchange *x, const srv_slot_action *a, const char *name) {
    srv_error e;
    if (a->err) {
        char msg[sizeof a->err_msg];
        without_dir(msg, sizeof msg, a->err_msg, a->path, name);
        /* llama-server: a restore it cannot make is the request's fault */
        if (a->verb == SRV_SLOT_RESTORE)
            srv_fail(&e, 400, "filename", NULL, "Unable to restore slot: %s", msg);
        else
            srv_fail(&e, 500, NULL, NULL, "Unable to %s slot: %s",
                     a->verb == SRV_SLOT_SAVE ? "save" : "erase", msg);
        srv_respond_error(x, &e);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id_slot", a->slot);
    if (a->verb == SRV_SLOT_ERASE) {
        cJSON_AddNumberToObject(o, "n_erased", a->n_tokens);
    } else {
        const bool save = a->verb == SRV_SLOT_SAVE;
        cJSON_AddStringToObject(o, "filename", name);
        cJSON_AddNumberToObject(o, save ? "n_saved" : "n_restored", a->n_tokens);
        cJSON_AddNumberToObject(o, save ? "n_written" : "n_read", (double)a->n_bytes);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "timings"),
                                save ? "save_ms" : "restore_ms", a->ms);
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    srv_respond_json(x, 200, json);
}

/* Runs a on model m's slot and answers. */
static void slot_run(srv_exchange *x, srv_model *m, srv_slot_action *a, const char *name) {
    slot_wait w = {.x = x};
    srv_error e;
    if (srv_sched_slot_action(m->sched, a, slot_give_up, &w)) {
        respond_done(x, a, name);
    } else if (w.gone) {
        x->status = 499; /* nginx's "client closed request": no response is sent */
    } else {
        srv_fail(&e, 503, NULL, w.late ? "timeout" : NULL,
                 w.late ? "slot %d stayed busy for the request's %d s; retry later"
                        : "slot %d: the server is shutting down",
                 a->slot, x->srv->cfg.timeout_s);
        srv_respond_error(x, &e);
    }
}

/* A string member of the body (NULL: absent or null); false when it is
 * there but not a string. */
static bool body_string(const cJSON *root, const char *key, const char **out) {
    const cJSON *v = root ? cJSON_GetObjectItemCaseSensitive(root, key) : NULL;
    *out = cJSON_IsString(v) ? v->valuestring : NULL;
    return !v || cJSON_IsNull(v) || cJSON_IsString(v);
}

/* The checks before the model: the action, the body, the file name; false
 * with e filled. */
static bool slot_request(srv_exchange *x, const char *id_text, srv_slot_action *a, cJSON **root,
                         const char **name, srv_error *e) {
    const char *action = srv_query(x, "action");
    if (!x->srv->cfg.slot_save_path)
        return srv_fail(e, 501, NULL, NULL,
                        "This server does not support slots action. Start it with "
                        "`--slot-save-path`");
    if (!parse_slot(id_text, &a->slot)) return srv_fail(e, 400, NULL, NULL, "Invalid slot ID");
    if (!action || (strcmp(action, "save") && strcmp(action, "restore") && strcmp(action, "erase")))
        return srv_fail(e, 400, "action", NULL, "Invalid action");
    if (x->body_len && !cJSON_IsObject(*root = cJSON_ParseWithLength(x->body, x->body_len)))
        return srv_fail(e, 400, NULL, NULL, "the body must be a JSON object");
    a->verb = !strcmp(action, "save")      ? SRV_SLOT_SAVE
              : !strcmp(action, "restore") ? SRV_SLOT_RESTORE
                                           : SRV_SLOT_ERASE;
    if (a->verb == SRV_SLOT_ERASE) return true;
    if (!body_string(*root, "filename", name) || !*name)
        return srv_fail(e, 400, "filename", NULL, "'filename' is required (a string)");
    if (!name_ok(*name)) return srv_fail(e, 400, "filename", NULL, "Invalid filename");
    return true;
}

/* The model the request names (?model=, else the body's "model", else the
 * default) and the action's file; false with e filled. */
static bool slot_target(srv_exchange *x, const cJSON *root, const char *name, srv_slot_action *a,
                        srv_model **m, char **path, srv_error *e) {
    const char *asked = srv_query(x, "model"), *in_body;
    if (!body_string(root, "model", &in_body))
        return srv_fail(e, 400, "model", NULL, "'model' must be a string");
    if (!(*m = srv_model_take(x, asked ? asked : in_body, e))) return false;
    if (a->slot >= srv_sched_n_slots((*m)->sched))
        return srv_fail(e, 400, NULL, NULL, "Invalid slot ID");
    if (!name) return true;
    const size_t cap = strlen(x->srv->cfg.slot_save_path) + strlen(name) + 2;
    if (!(*path = malloc(cap))) return srv_fail(e, 500, NULL, NULL, "out of memory");
    snprintf(*path, cap, "%s/%s", x->srv->cfg.slot_save_path, name);
    a->path = *path;
    return true;
}

void srv_handle_slot_action(srv_exchange *x, const char *id_text) {
    srv_slot_action a = {0};
    cJSON *root = NULL;
    const char *name = NULL;
    char *path = NULL;
    srv_model *m = NULL;
    srv_error e;
    if (slot_request(x, id_text, &a, &root, &name, &e) &&
        slot_target(x, root, name, &a, &m, &path, &e))
        slot_run(x, m, &a, name);
    else
        srv_respond_error(x, &e);
    free(path);
    cJSON_Delete(root);
}
