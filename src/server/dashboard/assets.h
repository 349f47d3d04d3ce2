/*
 * assets.h - the dashboard's files as embedded at build time: embed.cmake
 * writes srv_dash_assets[] from index.html, format.js, app.js and app.css
 * (the bytes of each file, NUL-terminated beyond size); dashboard.c serves
 * them. Private to src/server.
 */
#ifndef HEARTH_SERVER_DASH_ASSETS_H
#define HEARTH_SERVER_DASH_ASSETS_H

#include <stddef.h>

typedef struct srv_dash_asset {
    const char *name; /* the file's name in src/server/dashboard/ */
    const unsigned char *data;
    size_t size;
} srv_dash_asset;

extern const srv_dash_asset srv_dash_assets[];
extern const int srv_dash_n_assets;

#endif
