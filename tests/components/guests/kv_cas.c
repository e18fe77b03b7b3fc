/*
 * kv_cas.c - a kiln:faas handler importing wasi:keyvalue/atomics@0.2.0-draft2's
 * CAS constructor, which Kiln does not provide (its store has no
 * compare-and-set): `kiln serve` and `kiln call` must refuse it, naming the
 * import (test_component_kv.sh).
 * kiln-component: kvcas kvcas
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wasi:keyvalue/atomics@0.2.0-draft2"),
               import_name("[static]cas.new"))) extern void
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

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    cas_new(1, key, key_len, r);
    memset(ret, 0, sizeof(ret));
    return ret;
}
