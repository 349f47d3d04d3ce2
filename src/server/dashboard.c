/*
 * dashboard.c - GET /dashboard: the operator's page (src/server/dashboard/,
 * embedded at build time by embed.cmake) and its files under /dashboard/.
 * This file only serves those bytes; the page reads the JSON routes that
 * already exist (/v1/hearth/stats, /series, /drift, /metrics, /health,
 * /v1/models) with the operator's key.
 *
 * The routes carry no data, so http.c serves them without the API key (the
 * page asks for the key when a JSON route answers 401). Scripts and styles
 * are separate same-origin files rather than inline, so the page's Content
 * Security Policy allows 'self' and nothing else: no 'unsafe-inline', no
 * hashes to keep in step with the files, and node can load format.js as it
 * is. --no-dashboard turns the routes off (http.c answers 404).
 */
#include "server.h"

#include "server/dashboard/assets.h"

#include <microhttpd.h>
#include <string.h>

/* Everything the page needs comes from this origin; nothing may frame it. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                          "frame-ancestors 'none'";

static const char *content_type(const char *name) {
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (dot && !strcmp(dot, ".css")) return "text/css; charset=utf-8";
    return "text/html; charset=utf-8";
}

/* "/dashboard", "/dashboard/" -> index.html; "/dashboard/NAME" -> NAME */
static const srv_dash_asset *find_asset(const char *path) {
    const char *name = "index.html";
    const size_t n = strlen("/dashboard/");
    if (!strncmp(path, "/dashboard/", n) && path[n]) name = path + n;
    for (int i = 0; i < srv_dash_n_assets; i++)
        if (!strcmp(srv_dash_assets[i].name, name)) return &srv_dash_assets[i];
    return NULL;
}

void srv_handle_dashboard(srv_exchange *x) {
    const srv_dash_asset *a = find_asset(x->path);
    if (!a) {
        srv_error e;
        srv_fail(&e, 404, NULL, "not_found", "no such endpoint: %s %s", x->method, x->path);
        srv_respond_error(x, &e);
        return;
    }
    /* the bytes are static: libmicrohttpd neither copies nor frees them */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(a->size, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return;
    MHD_add_response_header(r, "Content-Type", content_type(a->name));
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    x->status = 200;
    x->response = r;
}
