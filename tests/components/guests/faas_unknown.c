/*
 * faas_unknown.c - a kiln:faas handler that also imports
 * example:unknown/thing#ping, which Kiln does not provide: `kiln serve` must
 * refuse it at deploy, naming the function and the import
 * (test_component_serve.sh).
 * kiln-component: faas_unknown handler
 */
#include <stdint.h>
#include <stdlib.h>

__attribute__((import_module("example:unknown/thing@0.1.0"), import_name("ping"))) extern void
ping(void);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

static uint8_t ret[16] __attribute__((aligned(4)));

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    ping();
    return ret;
}
