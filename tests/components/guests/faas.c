/*
 * faas.c - a handler for the kiln:faas@0.1.0 world, written against
 * the canonical ABI by hand (what wit-bindgen would generate):
 *   handle(event: handler-event) -> result<_, handler-error>
 * The record flattens to 11 core parameters (enum, datetime {u64, u32}, three
 * strings and a list<u8> as pointer/length pairs); the result does not fit in
 * one core value, so it is stored in memory and its address returned.
 * Logic: a `scheduled` event is unsupported(event-type); an empty key is
 * invalid("empty key"); a payload starting with '!' is failed(<the rest>).
 * kiln-component: faas handler
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

/* result<_, handler-error>: tag u8 @0; handler-error @4: case u8 @4,
 * payload @8 (event-type u8, or string ptr @8 len @12). */
static uint8_t ret[16] __attribute__((aligned(4)));

static void error_string(uint8_t which, const char *s, size_t n)
{
    ret[0] = 1;
    ret[4] = which;
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    uint32_t p = (uint32_t)(uintptr_t)copy, len = (uint32_t)n;
    memcpy(ret + 8, &p, 4);
    memcpy(ret + 12, &len, 4);
}

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    (void)seconds, (void)nanos, (void)version, (void)version_len, (void)source, (void)source_len;
    (void)key;
    memset(ret, 0, sizeof(ret));
    if (event_type == 3) { /* scheduled */
        ret[0] = 1;
        ret[4] = 0;
        ret[8] = (uint8_t)event_type;
    } else if (key_len == 0) {
        error_string(1, "empty key", 9);
    } else if (payload_len > 0 && payload[0] == '!') {
        error_string(2, (const char *)payload + 1, payload_len - 1);
    }
    return ret;
}

/* Frees what the last call allocated, once the host has read the result. */
__attribute__((export_name("cabi_post_handle"))) void post_handle(uint8_t *r)
{
    if (r[0] == 1 && r[4] != 0) {
        uint32_t p;
        memcpy(&p, r + 8, 4);
        free((void *)(uintptr_t)p);
    }
}
