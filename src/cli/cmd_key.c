/*
 * cmd_key.c - `hearth key new [--name NAME]`: a new random API key for the
 * gateway's "keys" (docs/gateway.md, "API keys"), printed once, with the
 * configuration entry that holds only its SHA-256; `hearth key hash` prints
 * that entry for a secret read from stdin (a key that exists elsewhere).
 */
#include "cli.h"

#include "gateway/gateway.h"

#include <stdio.h>
#include <string.h>

static const char key_usage[] =
    "usage: hearth key new [--name NAME]\n"
    "       hearth key hash [--name NAME] < SECRET\n"
    "  new    prints a new random API key (give it to the client; it is not stored) and\n"
    "         the entry for the \"keys\" of hearth serve --config, which holds its SHA-256\n"
    "  hash   the same entry for a secret read from stdin (one line)\n";

/* The entry, with the digest of secret[0..len). */
static void print_entry(const char *name, const char *secret, size_t len) {
    char hex[65];
    gw_sha256_hex(secret, len, hex);
    printf("{\"name\": \"%s\", \"key_sha256\": \"%s\"}\n", name, hex);
}

static int key_new(const char *name) {
    char key[GW_KEY_SECRET_LEN + 1];
    if (gw_key_secret_new(key)) return cli_fail("key new", "the secret");
    printf("key:   %s\nentry: ", key);
    print_entry(name, key, strlen(key));
    return 0;
}

static int key_hash(const char *name) {
    char line[4096];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "hearth key hash: give the secret on stdin\n");
        return 2;
    }
    size_t n = strcspn(line, "\r\n");
    if (!n) {
        fprintf(stderr, "hearth key hash: the secret is empty\n");
        return 2;
    }
    print_entry(name, line, n);
    return 0;
}

int cmd_key(int argc, char **argv) {
    const char *name = "my-key";
    const char *sub = argc >= 2 ? argv[1] : "";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i];
        } else {
            fprintf(stderr, "hearth key: bad option '%s'\n%s", argv[i], key_usage);
            return 2;
        }
    }
    for (const char *p = name; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", *p)) {
            fprintf(stderr, "hearth key: --name: use letters, digits, '-', '_', '.'\n");
            return 2;
        }
    if (!strcmp(sub, "new")) return key_new(name);
    if (!strcmp(sub, "hash")) return key_hash(name);
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        fputs(key_usage, stdout);
        return 0;
    }
    fputs(key_usage, stderr);
    return 2;
}
