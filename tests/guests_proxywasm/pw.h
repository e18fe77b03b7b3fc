/*
 * pw.h - the proxy-wasm ABI 0.2.1 as a C guest sees it: the env.proxy_*
 * imports declared by hand (no SDK; signatures from the spec,
 * ../shared/specs/proxy-wasm-abi.md §5), the exports' attributes and a few
 * helpers. Shared by the test filters in this folder.
 */
#ifndef KILN_GUEST_PW_H
#define KILN_GUEST_PW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

IMPORT("proxy_log") int pw_log(int level, const char *msg, size_t len);
IMPORT("proxy_get_buffer_bytes")
int pw_get_buffer(int type, uint32_t start, uint32_t max, char **data, size_t *len);
IMPORT("proxy_set_buffer_bytes")
int pw_set_buffer(int type, uint32_t start, uint32_t size, const char *data, size_t len);
IMPORT("proxy_get_header_map_pairs") int pw_get_pairs(int type, char **data, size_t *len);
IMPORT("proxy_get_header_map_value")
int pw_get_header(int type, const char *k, size_t kl, char **v, size_t *vl);
IMPORT("proxy_add_header_map_value")
int pw_add_header(int type, const char *k, size_t kl, const char *v, size_t vl);
IMPORT("proxy_replace_header_map_value")
int pw_replace_header(int type, const char *k, size_t kl, const char *v, size_t vl);
IMPORT("proxy_remove_header_map_value") int pw_remove_header(int type, const char *k, size_t kl);
IMPORT("proxy_send_local_response")
int pw_local(int status, const char *d, size_t dl, const char *b, size_t bl, const char *h,
             size_t hl, int grpc);
IMPORT("proxy_continue_stream") int pw_continue(int type);
IMPORT("proxy_http_call")
int pw_http_call(const char *up, size_t ul, const char *h, size_t hl, const char *b, size_t bl,
                 const char *t, size_t tl, uint32_t timeout, uint32_t *token);
IMPORT("proxy_set_effective_context") int pw_set_effective(uint32_t ctx);
IMPORT("proxy_get_shared_data")
int pw_get_shared(const char *k, size_t kl, char **v, size_t *vl, uint32_t *cas);
IMPORT("proxy_set_shared_data")
int pw_set_shared(const char *k, size_t kl, const char *v, size_t vl, uint32_t cas);
IMPORT("proxy_define_metric") int pw_define_metric(int type, const char *n, size_t nl, uint32_t *id);
IMPORT("proxy_increment_metric") int pw_increment_metric(uint32_t id, int64_t delta);
IMPORT("proxy_get_metric") int pw_get_metric(uint32_t id, uint64_t *v);
IMPORT("proxy_record_metric") int pw_record_metric(uint32_t id, uint64_t v);
IMPORT("proxy_grpc_call")
int pw_grpc_call(const char *s, size_t sl, const char *n, size_t nl, const char *m, size_t ml,
                 const char *md, size_t mdl, const char *msg, size_t msgl, uint32_t timeout,
                 uint32_t *token);
IMPORT("proxy_grpc_cancel") int pw_grpc_cancel(uint32_t token);
IMPORT("proxy_call_foreign_function")
int pw_foreign(const char *n, size_t nl, const char *a, size_t al, char **r, size_t *rl);
IMPORT("proxy_set_tick_period_milliseconds") int pw_set_tick(uint32_t ms);
IMPORT("proxy_get_property") int pw_get_property(const char *p, size_t pl, char **v, size_t *vl);
IMPORT("proxy_get_current_time_nanoseconds") int pw_now(uint64_t *ns);
IMPORT("proxy_register_shared_queue") int pw_register_queue(const char *n, size_t nl, uint32_t *id);
IMPORT("proxy_enqueue_shared_queue") int pw_enqueue(uint32_t id, const char *v, size_t vl);
IMPORT("proxy_dequeue_shared_queue") int pw_dequeue(uint32_t id, char **v, size_t *vl);
IMPORT("proxy_get_status") int pw_get_status(uint32_t *code, char **msg, size_t *len);

enum { MAP_REQ = 0, MAP_RESP = 2, MAP_CALL = 6 };
enum { BUF_REQ = 0, BUF_RESP = 1, BUF_CALL = 4, BUF_VM = 6, BUF_PLUGIN = 7 };

EXPORT("proxy_abi_version_0_2_1") void pw_abi_marker(void) {}
EXPORT("proxy_on_memory_allocate") void *pw_alloc(size_t n) { return malloc(n); }

static inline void pw_logs(int level, const char *s)
{
    pw_log(level, s, strlen(s));
}

/* Header value as a NUL-terminated malloc'd string, or NULL if absent. */
static inline char *pw_header(int map, const char *k)
{
    char *v = NULL;
    size_t vl = 0;
    if (pw_get_header(map, k, strlen(k), &v, &vl) != 0)
        return NULL;
    char *s = malloc(vl + 1);
    memcpy(s, v, vl);
    s[vl] = 0;
    free(v);
    return s;
}

static inline void pw_set(int map, const char *k, const char *v)
{
    pw_replace_header(map, k, strlen(k), v, strlen(v));
}

static inline void pw_add(int map, const char *k, const char *v)
{
    pw_add_header(map, k, strlen(k), v, strlen(v));
}

/* One header serialized as pairs into buf (for local responses, callouts). */
static inline size_t pw_pairs(char *buf, const char *const *kv, int n)
{
    uint32_t *p = (uint32_t *)buf;
    p[0] = (uint32_t)n;
    char *d = buf + 4 + 8 * n;
    for (int i = 0; i < n; i++) {
        size_t kl = strlen(kv[2 * i]), vl = strlen(kv[2 * i + 1]);
        p[1 + 2 * i] = (uint32_t)kl;
        p[2 + 2 * i] = (uint32_t)vl;
        memcpy(d, kv[2 * i], kl + 1);
        d += kl + 1;
        memcpy(d, kv[2 * i + 1], vl + 1);
        d += vl + 1;
    }
    return (size_t)(d - buf);
}

#endif
