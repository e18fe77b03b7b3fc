/*
 * kv_cas.c - a kiln:faas handler calling wasi:keyvalue/atomics@0.2.0-draft2's
 * CAS constructor, which Kiln's store cannot provide (it has no
 * compare-and-set): the component deploys, and cas.new answers
 * error::other, which the handler reports as invalid("<case>: <text>")
 * (test_component_kv.sh).
 * kiln-component: kvcas kvcas
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))

IMPORT("wasi:keyvalue/store@0.2.0-draft2", "open") extern void kv_open(const char *p, size_t n,
                                                                       uint8_t *ret);
IMPORT("wasi:keyvalue/atomics@0.2.0-draft2", "[static]cas.new") extern void
cas_new(uint32_t bucket, const char *k, size_t kn, uint8_t *ret);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

static uint8_t r[16] __attribute__((aligned(4)));
static uint8_t ret[16] __attribute__((aligned(4)));
static char text[600];

static uint32_t u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    size_t n = 0;
    kv_open("default", 7, r);
    if (r[0] == 0) {
        cas_new(u32(r + 4), "k", 1, r);
        /* result<cas, error>: ok → the handle; err → error @4 (other: text @8) */
        if (r[0] == 0) {
            memcpy(text, "made a cas", 10);
            n = 10;
        } else if (r[4] == 2) {
            n = u32(r + 12) < sizeof(text) ? u32(r + 12) : sizeof(text);
            memcpy(text, (const char *)(uintptr_t)u32(r + 8), n);
        } else {
            text[0] = (char)('0' + r[4]);
            n = 1;
        }
    } else {
        memcpy(text, "open failed", 11);
        n = 11;
    }
    memset(ret, 0, sizeof(ret));
    ret[0] = 1; /* err(invalid(text)) */
    ret[4] = 1;
    uint32_t p = (uint32_t)(uintptr_t)text, len = (uint32_t)n;
    memcpy(ret + 8, &p, 4);
    memcpy(ret + 12, &len, 4);
    return ret;
}
