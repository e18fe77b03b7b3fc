/*
 * greet_extism.c - an Extism plugin without a PDK: `greet` returns
 * "Hello, <input>!" using the host's input/output functions. `kiln serve`
 * serves it at /greet_extism/greet in directory mode, or wherever the
 * configuration routes it.
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -s -mexec-model=reactor \
 *       greet_extism.c -o greet_extism.wasm
 */
#include <stdint.h>

#define EXTISM(name) __attribute__((import_module("extism:host/env"), import_name(name)))
EXTISM("input_length") uint64_t input_length(void);
EXTISM("input_load_u8") uint8_t input_load_u8(uint64_t offset);
EXTISM("alloc") uint64_t alloc(uint64_t length);
EXTISM("store_u8") void store_u8(uint64_t offset, uint8_t value);
EXTISM("output_set") void output_set(uint64_t offset, uint64_t length);

static void put(uint64_t base, uint64_t *at, const char *s)
{
    for (; *s; s++)
        store_u8(base + (*at)++, (uint8_t)*s);
}

__attribute__((export_name("greet"))) int32_t greet(void)
{
    uint64_t n = input_length();
    uint64_t out = alloc(n + 8), at = 0;
    put(out, &at, "Hello, ");
    for (uint64_t i = 0; i < n; i++)
        store_u8(out + at++, input_load_u8(i));
    put(out, &at, "!");
    output_set(out, at);
    return 0;
}
