/*
 * kv_cas.c - imports wasi:keyvalue/atomics@0.2.0-draft2's CAS constructor,
 * which Kiln does not provide (its store has no compare-and-set): `kiln
 * call` and deploy must refuse it, naming the import (test_component_kv.sh).
 * kiln-component: kvcas kvcas
 */
#include <stdint.h>
#include <stdlib.h>

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

__attribute__((export_name("try-cas"))) uint32_t try_cas(void)
{
    cas_new(1, "k", 1, r);
    return r[0];
}
