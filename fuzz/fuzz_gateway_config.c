/*
 * fuzz_gateway_config.c - the gateway's configuration reader (config.c: tiers,
 * routing rules and their patterns, privacy actions, API keys) on arbitrary
 * bytes: it must refuse them with a message or accept a configuration that
 * gw_config_finish either rejects or completes, and from which the keys'
 * counters can be built and asked about; the same bytes as one key's
 * settings made at run time (POST /v1/hearth/keys: gw_key_spec_parse).
 * Seeds: fuzz/corpus/gateway_config/.
 */
#include "gateway/gateway.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gw_config c;
    gw_config_init(&c);
    if (gw_config_parse(&c, (const char *)data, size, "fuzz") == HEARTH_OK &&
        gw_config_finish(&c) == HEARTH_OK) {
        gw_keys *ks = NULL;
        if (gw_keys_new(&c, NULL, 1700000000000LL, &ks) == HEARTH_OK) {
            int n;
            gw_key **keys = gw_keys_snapshot(ks, &n);
            for (int i = 0; i < n; i++) {
                gw_key *k = keys[i];
                gw_key_verdict v;
                if (gw_key_admit(k, 1700000000000LL, true, &v)) gw_key_done(k, 1700000001000LL, 50);
                char *json = gw_key_info_json(k, 1700000002000LL);
                sink += json ? strlen(json) : 0;
                free(json);
            }
            free(keys);
            gw_keys_free(ks);
        }
        sink += (uint64_t)c.n_tiers + (uint64_t)c.n_rules;
    } else {
        sink += strlen(hearth_last_error());
    }
    gw_config_fini(&c);
    gw_config e;
    gw_config_init(&e);
    gw_key_spec k;
    if (gw_key_spec_parse(&e, (const char *)data, size, "fuzz", &k) == HEARTH_OK)
        sink += (uint64_t)k.rpm + (uint64_t)k.n_tiers;
    gw_config_fini(&e);
    return 0;
}
