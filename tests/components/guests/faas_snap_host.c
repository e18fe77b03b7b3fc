/*
 * faas_snap_host.c - a kiln:faas@0.1.0 handler whose static constructor
 * writes to stdout through WASI (the preview-1 reactor adapter, then
 * wasi:cli/stdout): an instantiation that calls the host, which a snapshot
 * cannot reproduce. Served with `snapshot: true` it is refused at deploy
 * (test_component_serve.sh); without it, it serves (ok for every event).
 * kiln-component: faas handler reactor
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

static uint8_t ret[16] __attribute__((aligned(4)));

__attribute__((constructor)) static void init(void)
{
    write(1, "init\n", 5);
}

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    (void)event_type, (void)seconds, (void)nanos, (void)version, (void)version_len;
    (void)source, (void)source_len, (void)key, (void)key_len, (void)payload, (void)payload_len;
    memset(ret, 0, sizeof(ret));
    return ret;
}

__attribute__((export_name("cabi_post_handle"))) void post_handle(uint8_t *r)
{
    (void)r;
}
