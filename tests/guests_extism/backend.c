/*
 * backend.c - an Otoroshi WasmBackend plugin (`call_backend`): imports
 * env.proxy_log, reads the request path from the input JSON (a plain string
 * search; no JSON library) and answers with one of the body encodings:
 *   /json -> body_json, /b64 -> body_base64, /bytes -> body_bytes,
 *   /status -> status 201 and a custom header, /fail -> an Extism error,
 *   /trap -> unreachable, anything else -> body_str.
 * `http_call` passes its input to proxy_http_call and outputs the answer;
 * `attrs` sets an attribute and outputs them all; `kv` calls a map function.
 */
#include "guest.h"

#define OIMPORT(name) __attribute__((import_module("env"), import_name(name)))
OIMPORT("proxy_log") int32_t proxy_log(int32_t level, uint64_t off, uint64_t len);
OIMPORT("proxy_http_call") xh proxy_http_call(uint64_t off, uint64_t len);
OIMPORT("proxy_set_attr") uint64_t proxy_set_attr(uint64_t off, uint64_t len);
OIMPORT("proxy_get_attrs") xh proxy_get_attrs(uint64_t unused);
OIMPORT("proxy_plugin_map_get") xh proxy_plugin_map_get(uint64_t off, uint64_t len);

static int path_is(const char *in, const char *path)
{
    return strstr(in, g_cat("\"path\":\"", path, "\"", NULL)) != NULL;
}

EXPORT("call_backend") int32_t call_backend(void)
{
    uint64_t n;
    char *in = g_input(&n);
    xh msg = g_alloc_str("backend called");
    proxy_log(2, msg, x_length(msg));
    if (path_is(in, "/json"))
        g_output_str("{\"body_json\":{\"foo\":\"bar\"},\"body_str\":\"  \"}");
    else if (path_is(in, "/b64"))
        g_output_str("{\"headers\":{\"Content-Type\":\"text/plain\"},"
                     "\"body_base64\":\"aGVsbG8gYmFzZTY0\"}");
    else if (path_is(in, "/bytes"))
        g_output_str("{\"headers\":{\"Content-Type\":\"text/plain\"},"
                     "\"body_bytes\":[104,105,-1]}");
    else if (path_is(in, "/status"))
        g_output_str("{\"status\":201,\"headers\":{\"X-Backend\":\"kiln\"},\"body\":\"created\"}");
    else if (path_is(in, "/fail"))
        return g_error("backend refused");
    else if (path_is(in, "/trap"))
        __builtin_trap();
    else
        g_output_str("{\"headers\":{\"Content-Type\":\"text/plain\"},"
                     "\"body_str\":\"hello from otoroshi\",\"body_json\":{\"ignored\":true}}");
    /* Otoroshi ignores the return code when no error is set. */
    return 3;
}

/* Pass bytes to an Otoroshi host function as (offset, length) in Extism memory. */
static xh oto_arg(const char *s, uint64_t *len)
{
    *len = strlen(s);
    return g_alloc_str(s);
}

EXPORT("http_call") int32_t http_call(void)
{
    uint64_t n;
    xh a = oto_arg(g_input(NULL), &n);
    xh res = proxy_http_call(a, n);
    g_output_str(g_block_str(res));
    return 0;
}

EXPORT("attrs") int32_t attrs(void)
{
    uint64_t n;
    xh a = oto_arg("{\"key\":\"user\",\"value\":{\"id\":7}}", &n);
    char ok[24];
    g_utoa(proxy_set_attr(a, n), ok);
    g_output_str(g_cat(ok, " ", g_block_str(proxy_get_attrs(0)), NULL));
    return 0;
}

EXPORT("kv") int32_t kv(void)
{
    uint64_t n;
    xh a = oto_arg("key", &n);
    proxy_plugin_map_get(a, n);
    return 0;
}
