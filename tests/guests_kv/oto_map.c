/* oto_map.c - an Otoroshi WasmBackend plugin (`call_backend`, an Extism
 * reactor) that keeps a visit counter with proxy_plugin_map_get/set, counts
 * in the data store with proxy_plugin_datastore_incrby, and optionally
 * touches the global map (query "global=1"), which needs a grant.
 * kiln-guest-flags: -mexec-model=reactor
 */
#include "../guests_extism/guest.h"

#define OIMPORT(name) __attribute__((import_module("env"), import_name(name)))
OIMPORT("proxy_plugin_map_get") xh proxy_plugin_map_get(uint64_t off, uint64_t len);
OIMPORT("proxy_plugin_map_set") uint64_t proxy_plugin_map_set(uint64_t off, uint64_t len);
OIMPORT("proxy_plugin_map") xh proxy_plugin_map(uint64_t unused);
OIMPORT("proxy_plugin_datastore_incrby") uint64_t proxy_plugin_datastore_incrby(uint64_t off,
                                                                                 uint64_t len);
OIMPORT("proxy_plugin_datastore_keys") xh proxy_plugin_datastore_keys(uint64_t off, uint64_t len);
OIMPORT("proxy_global_map_set") uint64_t proxy_global_map_set(uint64_t off, uint64_t len);
OIMPORT("proxy_global_map_get") xh proxy_global_map_get(uint64_t off, uint64_t len);

static xh arg(const char *s, uint64_t *len)
{
    *len = strlen(s);
    return g_alloc_str(s);
}

EXPORT("call_backend") int32_t call_backend(void)
{
    uint64_t n;
    char *in = g_input(&n);
    xh a = arg("visits", &n);
    char *prev = g_block_str(proxy_plugin_map_get(a, n));
    uint64_t v = 0;
    for (char *p = prev; p && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    char num[24];
    g_utoa(v + 1, num);
    a = arg(g_cat("{\"key\":\"visits\",\"value\":\"", num, "\"}", NULL), &n);
    proxy_plugin_map_set(a, n);
    a = arg("{\"key\":\"ds-count\",\"incr\":\"2\"}", &n);
    char ds[24];
    g_utoa(proxy_plugin_datastore_incrby(a, n), ds);
    a = arg("ds-*", &n);
    char *keys = g_block_str(proxy_plugin_datastore_keys(a, n));
    char *all = g_block_str(proxy_plugin_map(0));
    char *glob = "null";
    if (strstr(in, "global=1") != NULL) {
        a = arg("{\"key\":\"g\",\"value\":\"shared\"}", &n);
        proxy_global_map_set(a, n);
        a = arg("g", &n);
        glob = g_cat("\"", g_block_str(proxy_global_map_get(a, n)), "\"", NULL);
    }
    /* body_json: {"visits", "ds", "keys": [...], "map": {key: base64}, "global"} */
    g_output_str(g_cat("{\"headers\":{\"Content-Type\":\"application/json\"},\"body_json\":"
                       "{\"visits\":", num, ",\"ds\":", ds, ",\"keys\":", keys ? keys : "null",
                       ",\"map\":", all ? all : "null", ",\"global\":", glob, "}}", NULL));
    return 0;
}
