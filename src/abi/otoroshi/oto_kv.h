/*
 * oto_kv.h - private to src/abi/otoroshi/: Otoroshi's map and data-store
 * host functions (otoroshi-abi.md §3.3) on Kiln's key-value store (kv.h),
 * listed into otoroshi.c's table. Plugin maps and the plugin data store are
 * the function's private namespace; the global map and global data store
 * are the global namespace "global", usable when the function's kv.grants
 * grant it (r or rw). Without a store (`kiln call`) every one of them fails
 * the call with "<name> is not available: ...".
 */
#ifndef KILN_ABI_OTOROSHI_OTO_KV_H
#define KILN_ABI_OTOROSHI_OTO_KV_H

#include <stdint.h>

#include "kiln/runtime.h"

#define OTO_GLOBAL_NS "global"

#define OTO_KV_FUNCS(X1, X2)                                                                       \
    X2(proxy_global_map_set)                                                                       \
    X2(proxy_plugin_map_set)                                                                       \
    X2(proxy_global_map_get)                                                                       \
    X2(proxy_plugin_map_get)                                                                       \
    X2(proxy_global_map_del)                                                                       \
    X2(proxy_plugin_map_del)                                                                       \
    X1(proxy_global_map)                                                                           \
    X1(proxy_plugin_map)                                                                           \
    X2(proxy_datastore_keys)                                                                       \
    X2(proxy_plugin_datastore_keys)                                                                \
    X2(proxy_datastore_get)                                                                        \
    X2(proxy_plugin_datastore_get)                                                                 \
    X2(proxy_datastore_exists)                                                                     \
    X2(proxy_plugin_datastore_exists)                                                              \
    X2(proxy_datastore_pttl)                                                                       \
    X2(proxy_plugin_datastore_pttl)                                                                \
    X2(proxy_datastore_all_matching)                                                               \
    X2(proxy_plugin_datastore_all_matching)                                                        \
    X2(proxy_datastore_set)                                                                        \
    X2(proxy_plugin_datastore_set)                                                                 \
    X2(proxy_datastore_setnx)                                                                      \
    X2(proxy_plugin_datastore_setnx)                                                               \
    X2(proxy_datastore_del)                                                                        \
    X2(proxy_plugin_datastore_del)                                                                 \
    X2(proxy_datastore_incrby)                                                                     \
    X2(proxy_plugin_datastore_incrby)                                                              \
    X2(proxy_datastore_pexpire)                                                                    \
    X2(proxy_plugin_datastore_pexpire)

#define OTO_KV_DECL1(n) uint64_t oto_kv_##n(kiln_instance *inst, uint64_t unused);
#define OTO_KV_DECL2(n) uint64_t oto_kv_##n(kiln_instance *inst, uint64_t off, uint64_t len);
OTO_KV_FUNCS(OTO_KV_DECL1, OTO_KV_DECL2)
#undef OTO_KV_DECL1
#undef OTO_KV_DECL2

#endif
