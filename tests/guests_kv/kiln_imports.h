/*
 * kiln_imports.h - the "kiln" host module as the KV test guests declare it
 * (docs/abi/kiln-host.md), without the SDK: the point is to test the raw
 * imports.
 */
#ifndef KILN_TEST_KILN_IMPORTS_H
#define KILN_TEST_KILN_IMPORTS_H

#include <stdint.h>

#define KIMPORT(n) __attribute__((import_module("kiln"), import_name(n)))

KIMPORT("kv_get")
int32_t kv_get(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len, void *buf,
               uint32_t buf_len, uint32_t *len_out);
KIMPORT("kv_set")
int32_t kv_set(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
               const void *val, uint32_t val_len, int64_t ttl_ms, int32_t flags);
KIMPORT("kv_delete")
int32_t kv_delete(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len);
KIMPORT("kv_incr")
int32_t kv_incr(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
                int64_t delta, int64_t *out);
KIMPORT("kv_expire")
int32_t kv_expire(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
                  int64_t ttl_ms);
KIMPORT("kv_ttl")
int32_t kv_ttl(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len, int64_t *out);
KIMPORT("kv_list")
int32_t kv_list(const char *ns, uint32_t ns_len, const void *prefix, uint32_t prefix_len,
                const void *after, uint32_t after_len, void *buf, uint32_t buf_len,
                uint32_t *out);
KIMPORT("config_get")
int32_t config_get(const char *key, uint32_t key_len, void *buf, uint32_t buf_len,
                   uint32_t *len_out);
KIMPORT("log") int32_t klog(int32_t level, const char *msg, uint32_t len);

#endif
