/*
 * guest.h - the Extism host ABI as a C guest sees it: the imports from
 * "extism:host/env" declared by hand (no PDK), plus small helpers that move
 * data the way the PDKs do (8 bytes per load_u64/store_u64, then byte tails).
 * Shared by the test guests in this folder.
 */
#ifndef KILN_GUEST_EXTISM_H
#define KILN_GUEST_EXTISM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define XIMPORT(name) __attribute__((import_module("extism:host/env"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

typedef uint64_t xh; /* an Extism memory handle */

XIMPORT("alloc") xh x_alloc(uint64_t n);
XIMPORT("free") void x_free(xh h);
XIMPORT("length") uint64_t x_length(xh h);
XIMPORT("length_unsafe") uint64_t x_length_unsafe(xh h);
XIMPORT("load_u8") uint8_t x_load_u8(xh p);
XIMPORT("load_u64") uint64_t x_load_u64(xh p);
XIMPORT("store_u8") void x_store_u8(xh p, uint8_t v);
XIMPORT("store_u64") void x_store_u64(xh p, uint64_t v);
XIMPORT("input_length") uint64_t x_input_length(void);
XIMPORT("input_offset") xh x_input_offset(void);
XIMPORT("input_load_u8") uint8_t x_input_load_u8(uint64_t off);
XIMPORT("input_load_u64") uint64_t x_input_load_u64(uint64_t off);
XIMPORT("output_set") void x_output_set(xh p, uint64_t n);
XIMPORT("error_set") void x_error_set(xh h);
XIMPORT("error_get") xh x_error_get(void);
XIMPORT("config_get") xh x_config_get(xh key);
XIMPORT("var_get") xh x_var_get(xh key);
XIMPORT("var_set") void x_var_set(xh key, xh value);
XIMPORT("http_request") xh x_http_request(xh req, xh body);
XIMPORT("http_status_code") int32_t x_http_status_code(void);
XIMPORT("log_info") void x_log_info(xh msg);
XIMPORT("log_warn") void x_log_warn(xh msg);
XIMPORT("log_debug") void x_log_debug(xh msg);
XIMPORT("get_log_level") int32_t x_get_log_level(void);

/* Copy n bytes at guest address src into a new block. */
static inline xh g_alloc_bytes(const void *src, uint64_t n)
{
    const uint8_t *s = src;
    xh h = x_alloc(n);
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        x_store_u64(h + i, v);
    }
    for (; i < n; i++)
        x_store_u8(h + i, s[i]);
    return h;
}

static inline xh g_alloc_str(const char *s)
{
    return g_alloc_bytes(s, strlen(s));
}

/* Copy block h (of length n) to guest memory dst. */
static inline void g_load(xh h, void *dst, uint64_t n)
{
    uint8_t *d = dst;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = x_load_u64(h + i);
        memcpy(d + i, &v, 8);
    }
    for (; i < n; i++)
        d[i] = x_load_u8(h + i);
}

/* The whole input as a NUL-terminated malloc'd string; *len its length. */
static inline char *g_input(uint64_t *len)
{
    uint64_t n = x_input_length();
    char *buf = malloc(n + 1);
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = x_input_load_u64(i);
        memcpy(buf + i, &v, 8);
    }
    for (; i < n; i++)
        buf[i] = (char)x_input_load_u8(i);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static inline void g_output(const void *data, uint64_t n)
{
    xh h = g_alloc_bytes(data, n);
    x_output_set(h, n);
}

static inline void g_output_str(const char *s)
{
    g_output(s, strlen(s));
}

/* config_get / var_get as a malloc'd string, or NULL when absent. */
static inline char *g_block_str(xh h)
{
    if (h == 0)
        return NULL;
    uint64_t n = x_length(h);
    char *s = malloc(n + 1);
    g_load(h, s, n);
    s[n] = '\0';
    return s;
}

/* Decimal text of v into buf (room for 21 bytes); returns its length.
 * (No stdio: printf would pull in WASI imports.) */
static inline int g_utoa(uint64_t v, char *buf)
{
    char tmp[21];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* Concatenate NUL-terminated parts (last one NULL) into a malloc'd string. */
static inline char *g_cat(const char *first, ...)
{
    __builtin_va_list ap;
    size_t n = 0;
    __builtin_va_start(ap, first);
    for (const char *p = first; p != NULL; p = __builtin_va_arg(ap, const char *))
        n += strlen(p);
    __builtin_va_end(ap);
    char *out = malloc(n + 1), *o = out;
    __builtin_va_start(ap, first);
    for (const char *p = first; p != NULL; p = __builtin_va_arg(ap, const char *)) {
        size_t k = strlen(p);
        memcpy(o, p, k);
        o += k;
    }
    __builtin_va_end(ap);
    *o = '\0';
    return out;
}

static inline int g_error(const char *msg)
{
    x_error_set(g_alloc_str(msg));
    return 1;
}

#endif
