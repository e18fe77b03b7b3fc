/*
 * wbuf.h - test support: a byte buffer to build WebAssembly binaries (core
 * modules and components) byte by byte, with LEB128 and name encoders.
 * Header-only; a test may set WBUF_SIZE (bytes, default 64 KiB) before
 * including it. Needs <cmocka.h> included first (put asserts the size).
 */
#ifndef KILN_TESTS_WBUF_H
#define KILN_TESTS_WBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef WBUF_SIZE
#define WBUF_SIZE (1 << 16)
#endif

typedef struct wbuf {
    uint8_t b[WBUF_SIZE];
    size_t n;
} wbuf;

static inline void put(wbuf *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static inline void put1(wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

/* Unsigned LEB128. */
static inline void putu(wbuf *w, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        put1(w, (uint8_t)(b | (v ? 0x80 : 0)));
    } while (v);
}

/* A name with an explicit length, so it may contain NULs. */
static inline void putn(wbuf *w, const char *s, size_t n)
{
    putu(w, (uint32_t)n);
    put(w, s, n);
}

static inline void puts_(wbuf *w, const char *s)
{
    putn(w, s, strlen(s));
}

/* Append section `id` holding body. */
static inline void section(wbuf *w, uint8_t id, const wbuf *body)
{
    put1(w, id);
    putu(w, (uint32_t)body->n);
    put(w, body->b, body->n);
}

#endif
