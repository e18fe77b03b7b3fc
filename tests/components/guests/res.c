/*
 * res.c - the kiln:res@0.1.0 world: WASI 0.2 stream resources by hand
 * against the canonical ABI (own handles returned by get-stdout/get-stdin,
 * borrowed by a method call, dropped with [resource-drop]), and the handle
 * table's traps: a double drop, a use after drop, a handle never created, a
 * handle of the wrong resource type.
 * kiln-component: res res
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(m, n) __attribute__((import_module(m), import_name(n)))

IMPORT("wasi:cli/stdout@0.2.0", "get-stdout") extern uint32_t get_stdout(void);
IMPORT("wasi:cli/stdin@0.2.0", "get-stdin") extern uint32_t get_stdin(void);
IMPORT("wasi:io/streams@0.2.0", "[method]output-stream.blocking-write-and-flush") extern void
write_flush(uint32_t self, const void *p, size_t n, void *ret);
IMPORT("wasi:io/streams@0.2.0", "[resource-drop]output-stream") extern void drop_out(uint32_t h);
IMPORT("wasi:io/streams@0.2.0", "[resource-drop]input-stream") extern void drop_in(uint32_t h);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

static uint8_t ret[16] __attribute__((aligned(8)));

static void say(uint32_t h, const char *s)
{
    write_flush(h, s, strlen(s), ret);
}

/* Returns the result's discriminant (0: ok). */
__attribute__((export_name("hello"))) uint32_t hello(void)
{
    uint32_t h = get_stdout();
    say(h, "hello via wasi:io/streams\n");
    drop_out(h);
    return ret[0];
}

__attribute__((export_name("drop-twice"))) void drop_twice(void)
{
    uint32_t h = get_stdout();
    drop_out(h);
    drop_out(h);
}

__attribute__((export_name("use-after-drop"))) void use_after_drop(void)
{
    uint32_t h = get_stdout();
    drop_out(h);
    say(h, "never written\n");
}

__attribute__((export_name("bad-handle"))) void bad_handle(void)
{
    say(12345, "never written\n");
}

__attribute__((export_name("wrong-type"))) void wrong_type(void)
{
    uint32_t in = get_stdin();
    say(in, "never written\n");
    drop_in(in);
}
