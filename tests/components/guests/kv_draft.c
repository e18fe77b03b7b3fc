/*
 * kv_draft.c - wasi:keyvalue@0.2.0-draft, the version wasmtime-wasi-keyvalue
 * serves (u64 list-keys cursor and increment), through hand-written
 * canonical-ABI glue: run(n) sets keys k0..k<n-1> in bucket "default",
 * increments "ctr" by 5 twice, tries a delta over 2^63-1, and pages
 * through the keys with the numeric cursor; it returns what it saw
 * (test_component_kv.sh, with `kiln call --kv`).
 * kiln-component: kvdraft kvdraft
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))
#define KV "wasi:keyvalue/store@0.2.0-draft"

IMPORT(KV, "open") extern void kv_open(const char *p, size_t n, uint8_t *ret);
IMPORT(KV, "[method]bucket.set") extern void kv_set(uint32_t b, const char *k, size_t kn,
                                                    const void *v, size_t vn, uint8_t *ret);
IMPORT(KV, "[method]bucket.list-keys") extern void kv_list(uint32_t b, uint32_t some,
                                                           uint64_t cursor, uint8_t *ret);
IMPORT(KV, "[resource-drop]bucket") extern void kv_drop(uint32_t b);
IMPORT("wasi:keyvalue/atomics@0.2.0-draft", "increment") extern void
kv_incr(uint32_t b, const char *k, size_t kn, uint64_t delta, uint8_t *ret);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

static uint8_t r[32] __attribute__((aligned(8)));
static char text[512];
static size_t tlen;
static uint32_t out[2];

static uint32_t u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void puts_(const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof(text) - 1 - tlen)
        n = sizeof(text) - 1 - tlen;
    memcpy(text + tlen, s, n);
    tlen += n;
}

static void putnum(unsigned long long u)
{
    char b[24];
    int i = sizeof(b);
    b[--i] = '\0';
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    puts_(b + i);
}

/* The error at r + off: its case (and other's text). */
static void put_error(size_t off)
{
    static const char *const cases[] = {"no-such-store", "access-denied", "other"};
    puts_(r[off] < 3 ? cases[r[off]] : "?");
    if (r[off] == 2) {
        char s[160];
        uint32_t n = u32(r + off + 8) < sizeof(s) - 1 ? u32(r + off + 8) : sizeof(s) - 1;
        memcpy(s, (const char *)(uintptr_t)u32(r + off + 4), n);
        s[n] = '\0';
        puts_(":");
        puts_(s);
    }
}

__attribute__((export_name("run"))) uint32_t *run(uint32_t n)
{
    tlen = 0;
    kv_open("default", 7, r);
    if (r[0] != 0) {
        puts_("open=");
        put_error(4);
        goto done;
    }
    uint32_t b = u32(r + 4);
    for (uint32_t i = 0; i < n; i++) {
        char k[16] = "k";
        int l = 1;
        char d[12];
        int nd = 0;
        uint32_t v = i;
        do {
            d[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (nd > 0)
            k[l++] = d[--nd];
        kv_set(b, k, (size_t)l, "v", 1, r);
        if (r[0] != 0) {
            puts_("set=");
            put_error(4);
            goto done;
        }
    }
    kv_incr(b, "ctr", 3, 5, r);
    kv_incr(b, "ctr", 3, 5, r);
    puts_("ctr=");
    if (r[0] == 0) {
        uint64_t v;
        memcpy(&v, r + 8, 8);
        putnum(v);
    } else {
        put_error(8);
    }
    kv_incr(b, "ctr", 3, (uint64_t)1 << 63, r);
    puts_(" huge=");
    if (r[0] == 0)
        puts_("ok");
    else
        put_error(8);
    unsigned long long keys = 0, pages = 0;
    uint32_t some = 0;
    uint64_t cur = 0;
    do {
        kv_list(b, some, cur, r);
        if (r[0] != 0) {
            puts_(" list=");
            put_error(8);
            goto done;
        }
        pages++;
        keys += u32(r + 12);
        some = r[16];
        memcpy(&cur, r + 24, 8);
    } while (some && pages < 1000);
    puts_(" keys=");
    putnum(keys);
    puts_(" pages=");
    putnum(pages);
    puts_(" last-cursor=");
    putnum(cur);
    kv_drop(b);
done:
    out[0] = (uint32_t)(uintptr_t)text;
    out[1] = (uint32_t)tlen;
    return out;
}
