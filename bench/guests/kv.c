/* kv.c - guest of bench/kv.c: loops of kiln.kv_set / kiln.kv_get on the
 * function's private namespace, so the host measures a guest's KV calls
 * (import call, guest-pointer checks, namespace checks, backend) without
 * per-call instantiation. Keys "k<base + i % 1000>", 64-byte values.
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor. */
#include <stdint.h>

#define KIMPORT(n) __attribute__((import_module("kiln"), import_name(n)))
KIMPORT("kv_get")
int32_t kv_get(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len, void *buf,
               uint32_t buf_len, uint32_t *len_out);
KIMPORT("kv_set")
int32_t kv_set(const char *ns, uint32_t ns_len, const void *key, uint32_t key_len,
               const void *val, uint32_t val_len, int64_t ttl_ms, int32_t flags);

static char value[64] = "0123456789012345678901234567890123456789012345678901234567890123";

static uint32_t key_of(char *k, uint32_t n)
{
    char tmp[12];
    uint32_t len = 0, o = 1;
    do {
        tmp[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    k[0] = 'k';
    while (len)
        k[o++] = tmp[--len];
    return o;
}

__attribute__((export_name("set_loop"))) int32_t set_loop(int32_t n, int32_t base)
{
    char k[16];
    for (int32_t i = 0; i < n; i++) {
        int32_t rc = kv_set("", 0, k, key_of(k, (uint32_t)(base + i % 1000)), value,
                            sizeof(value), 0, 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

__attribute__((export_name("get_loop"))) int32_t get_loop(int32_t n, int32_t base)
{
    char k[16], buf[128];
    uint32_t len;
    for (int32_t i = 0; i < n; i++) {
        int32_t rc = kv_get("", 0, k, key_of(k, (uint32_t)(base + i % 1000)), buf, sizeof(buf),
                            &len);
        if (rc < 0)
            return rc;
    }
    return 0;
}
