/*
 * faas_snap.c - a kiln:faas@0.1.0 handler whose instantiation does visible
 * work, served with `snapshot: true` (test_component_serve.sh): a static
 * constructor (run by the component's start, through `_initialize`) counts
 * its runs, fills a 64 KiB table and mallocs a string; the handler
 * reports that state as invalid("..."), so the test sees it:
 *   /state     invalid("inits=1 calls=1 sum=S note=initialised")
 *   /scribble  overwrites the table, the note and a global, then reports
 *              (sum=0 note=scribbled calls=1); the next request must see
 *              the initialised state again (a fresh instance from the image)
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

static uint8_t ret[16] __attribute__((aligned(4)));
static int inits, calls;
static uint32_t table[16384];
static char *note;
static char text[256];
static size_t tlen;

__attribute__((constructor)) static void init(void)
{
    inits++;
    for (uint32_t i = 0; i < 16384; i++)
        table[i] = i * 2654435761u + 7;
    note = malloc(32);
    strcpy(note, "initialised");
}

static void put(const char *s, size_t n)
{
    if (n > sizeof(text) - 1 - tlen)
        n = sizeof(text) - 1 - tlen;
    memcpy(text + tlen, s, n);
    tlen += n;
}

static void putnum(unsigned long long u)
{
    char b[24];
    int i = sizeof(b);
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    put(b + i, sizeof(b) - (size_t)i);
}

static int ends(const char *key, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && memcmp(key + n - l, suffix, l) == 0;
}

static void report(void)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i < 16384; i++)
        sum += table[i];
    tlen = 0;
    put("inits=", 6);
    putnum((unsigned)inits);
    put(" calls=", 7);
    putnum((unsigned)calls);
    put(" sum=", 5);
    putnum(sum);
    put(" note=", 6);
    put(note ? note : "(null)", note ? strlen(note) : 6);
    char *copy = malloc(tlen);
    memcpy(copy, text, tlen);
    ret[0] = 1;
    ret[4] = 1; /* invalid(string) */
    uint32_t p = (uint32_t)(uintptr_t)copy, len = (uint32_t)tlen;
    memcpy(ret + 8, &p, 4);
    memcpy(ret + 12, &len, 4);
}

__attribute__((export_name("handle"))) uint8_t *handle(int32_t event_type, int64_t seconds,
                                                       int32_t nanos, char *version,
                                                       size_t version_len, char *source,
                                                       size_t source_len, char *key, size_t key_len,
                                                       uint8_t *payload, size_t payload_len)
{
    (void)event_type, (void)seconds, (void)nanos, (void)version, (void)version_len;
    (void)source, (void)source_len, (void)payload, (void)payload_len;
    calls++;
    memset(ret, 0, sizeof(ret));
    if (ends(key, key_len, "/scribble")) {
        memset(table, 0, sizeof(table));
        strcpy(note, "scribbled");
        inits += 100;
        report();
    } else if (ends(key, key_len, "/state")) {
        report();
    }
    return ret;
}

__attribute__((export_name("cabi_post_handle"))) void post_handle(uint8_t *r)
{
    if (r[0] == 1 && r[4] != 0) {
        uint32_t p;
        memcpy(&p, r + 8, 4);
        free((void *)(uintptr_t)p);
    }
}
