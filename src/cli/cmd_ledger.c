/*
 * cmd_ledger.c - `hearth ledger report [--db FILE] [--since ISO|DURATION]
 * [--key NAME] [--json]`: what the gateway's ledger says about the requests
 * since a time (of one API key): how many stayed local, how many were
 * escalated, what they cost, what they would have cost on the cloud tier,
 * the savings, p50/p95 latency per tier, and the totals per API key.
 */
#include "cli.h"

#include "gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ledger_usage[] =
    "usage: hearth ledger report [--db FILE] [--since ISO|DURATION] [--key NAME] [--json]\n"
    "  Summarizes the gateway's ledger (hearth serve --ledger FILE): requests kept local,\n"
    "  escalated, degraded and failed; cost, cost had everything gone to the cloud tier,\n"
    "  savings; p50/p95 latency per tier.\n"
    "  --db FILE         the ledger (default hearth-ledger.db)\n"
    "  --since WHEN      only requests from then on: 2024-05-01, 2024-05-01T12:00:00Z (UTC),\n"
    "                    or a duration back from now: 90s, 30m, 24h, 7d\n"
    "  --key NAME        only the requests of this API key (docs/gateway.md, \"API keys\")\n"
    "  --json            print the JSON that GET /v1/hearth/stats serves\n";

static int report(int argc, char **argv) {
    const char *db = "hearth-ledger.db", *since = NULL, *key = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            json = true;
        } else if ((!strcmp(a, "--db") || !strcmp(a, "--since") || !strcmp(a, "--key")) &&
                   i + 1 < argc) {
            const char **dst = !strcmp(a, "--db") ? &db : !strcmp(a, "--since") ? &since : &key;
            *dst = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(ledger_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "hearth ledger report: bad option '%s'\n%s", a, ledger_usage);
            return 2;
        }
    }
    int64_t since_ms = 0;
    if (since && gw_parse_since(since, gw_now_ms(), &since_ms)) {
        fprintf(stderr, "hearth ledger report: --since: %s\n", hearth_last_error());
        return 2;
    }
    if (access(db, R_OK) != 0) {
        fprintf(stderr, "hearth ledger report: no ledger at '%s' (give one with --db)\n", db);
        return 1;
    }
    gw_ledger *l = NULL;
    if (gw_ledger_open(db, &l)) return cli_fail("ledger report", db);
    gw_stats s;
    const hearth_err err = gw_ledger_stats_key(l, since_ms, key, &s);
    gw_ledger_close(l);
    if (err) return cli_fail("ledger report", db);
    char *out = json ? gw_stats_json(&s) : gw_stats_text(&s);
    if (!out) {
        fprintf(stderr, "hearth ledger report: out of memory\n");
        return 1;
    }
    fputs(out, stdout);
    if (json) fputc('\n', stdout);
    free(out);
    return 0;
}

int cmd_ledger(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "report")) return report(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(ledger_usage, stdout);
        return 0;
    }
    fputs(ledger_usage, stderr);
    return 2;
}
