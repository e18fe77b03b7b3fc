/*
 * faas_serve.c - a kiln:faas@0.1.0 handler served by `kiln serve`
 * (test_component_serve.sh), written against the canonical ABI by hand as
 * faas.c is. What it does depends on how the key (for HTTP: the request
 * path) ends:
 *   /echo         invalid("<the event's fields>") - shows what Kiln passed
 *   /invalid      invalid("bad input")
 *   /unsupported  unsupported(<the event's type>)
 *   /failed       failed(<the payload>)
 *   /count        invalid("count=N"), N the calls this instance took
 *   /trap         traps; /loop runs until the time limit; /oom allocates
 *                 until memory runs out, then traps
 *   anything else ok
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
static int calls;
static void *volatile keep;
static char text[1024];

/* Appending to `text` without stdio (which would import WASI). */
static size_t tlen;

static void put(const char *s, size_t n)
{
    if (n > sizeof(text) - 1 - tlen)
        n = sizeof(text) - 1 - tlen;
    memcpy(text + tlen, s, n);
    tlen += n;
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void putnum(long long v)
{
    char b[24];
    int i = sizeof(b);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        b[--i] = '-';
    put(b + i, sizeof(b) - (size_t)i);
}

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

static int ends(const char *key, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && memcmp(key + n - l, suffix, l) == 0;
}

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    calls++;
    memset(ret, 0, sizeof(ret));
    if (ends(key, key_len, "/echo")) {
        tlen = 0;
        puts_("type=");
        putnum(event_type);
        puts_(" version=");
        put(version, version_len);
        puts_(" source=");
        put(source, source_len);
        puts_(" key=");
        put(key, key_len);
        puts_(" payload=");
        put((const char *)payload, payload_len);
        puts_(" seconds=");
        putnum(seconds);
        puts_(" nanos=");
        putnum(nanos);
        puts_(" recent=");
        putnum(seconds > 1700000000);
        puts_(" nanos_ok=");
        putnum(nanos >= 0 && nanos < 1000000000);
        error_string(1, text, tlen);
    } else if (ends(key, key_len, "/invalid")) {
        error_string(1, "bad input", 9);
    } else if (ends(key, key_len, "/unsupported")) {
        ret[0] = 1;
        ret[4] = 0;
        ret[8] = (uint8_t)event_type;
    } else if (ends(key, key_len, "/failed")) {
        error_string(2, (const char *)payload, payload_len);
    } else if (ends(key, key_len, "/count")) {
        tlen = 0;
        puts_("count=");
        putnum(calls);
        error_string(1, text, tlen);
    } else if (ends(key, key_len, "/trap")) {
        __builtin_trap();
    } else if (ends(key, key_len, "/loop")) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    } else if (ends(key, key_len, "/oom")) {
        for (;;) {
            char *p = malloc(1 << 20);
            if (p == NULL)
                __builtin_trap();
            memset(p, 1, 1 << 20);
            keep = p; /* used, so the allocation cannot be optimised away */
        }
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
