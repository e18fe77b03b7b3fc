/*
 * fuzz_xtm_manifest.c - the Extism manifest parser (src/abi/extism/xtm_manifest.c):
 * JSON from `kiln call --manifest` or a configuration. Also feeds the decoded
 * wasm data (if any) to the hash check.
 */
#include <stdlib.h>
#include <string.h>

#include "abi/extism/extism.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xtm_manifest m;
    kiln_err err;
    int rc = xtm_manifest_parse((const char *)data, size, "/nonexistent-kiln-fuzz", &m, &err);
    if (rc == KILN_OK) {
        for (size_t i = 0; i < m.n_config; i++)
            (void)(strlen(m.config[i].name) + strlen(m.config[i].value));
        for (size_t i = 0; i < m.n_allowed_hosts; i++)
            (void)strlen(m.allowed_hosts[i]);
        for (size_t i = 0; i < m.n_allowed_paths; i++)
            (void)(strlen(m.allowed_paths[i].host_path) + strlen(m.allowed_paths[i].guest_path));
        if (m.wasm_hash != NULL)
            xtm_check_hash(m.wasm_data ? m.wasm_data : (const uint8_t *)"", m.wasm_len,
                           m.wasm_hash, &err);
        xtm_manifest_fini(&m);
    } else if (memchr(err.msg, 0, sizeof(err.msg)) == NULL) {
        abort();
    }
    return 0;
}
