/*
 * geo_otoroshi.c - the geolocation cache written against Otoroshi's host
 * functions (test_geo.sh runs it next to the Kiln-native examples/sdk/geo.c):
 * a WasmBackend (`call_backend`) that answers GET /search?q=... from the
 * plugin map, and on a miss asks the upstream address API with
 * proxy_http_call, keeps the answer in the plugin map and returns it.
 * Config: "upstream" (the API's URL). The answer carries X-Cache: hit|miss.
 * No JSON library: the input is searched as text, and the stored value is
 * the upstream body in base64, as proxy_http_call returns it.
 */
#include "guest.h"

#define OIMPORT(name) __attribute__((import_module("env"), import_name(name)))
OIMPORT("proxy_http_call") xh proxy_http_call(uint64_t off, uint64_t len);
OIMPORT("proxy_plugin_map_get") xh proxy_plugin_map_get(uint64_t off, uint64_t len);
OIMPORT("proxy_plugin_map_set") xh proxy_plugin_map_set(uint64_t off, uint64_t len);

/* The JSON string value after `key` in `json` (escapes kept, so it can be
 * pasted into JSON again), malloc'd; NULL if absent. */
static char *json_str_after(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    if (p == NULL)
        return NULL;
    p += strlen(key);
    const char *e = p;
    while (*e && *e != '"') {
        if (*e == '\\' && e[1])
            e++;
        e++;
    }
    char *out = malloc((size_t)(e - p) + 1);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return out;
}

static xh call(xh (*fn)(uint64_t, uint64_t), const char *arg)
{
    xh a = g_alloc_str(arg);
    return fn(a, strlen(arg));
}

static int answer(const char *cache, const char *body_b64)
{
    g_output_str(g_cat("{\"status\":200,\"headers\":{\"Content-Type\":\"application/json\","
                       "\"X-Cache\":\"",
                       cache, "\"},\"body_base64\":\"", body_b64, "\"}", NULL));
    return 0;
}

EXPORT("call_backend") int32_t call_backend(void)
{
    char *in = g_input(NULL);
    /* raw_request.query is {"q": ["value"]}. */
    char *q = json_str_after(in, "\"query\":{\"q\":[\"");
    if (q == NULL || q[0] == '\0') {
        g_output_str("{\"status\":400,\"headers\":{\"Content-Type\":\"text/plain\"},"
                     "\"body_str\":\"missing ?q=\\n\"}");
        return 0;
    }
    char *key = g_cat("q:", q, NULL);
    char *cached = g_block_str(call(proxy_plugin_map_get, key));
    if (cached != NULL)
        return answer("hit", cached);

    char *upstream = g_block_str(x_config_get(g_alloc_str("upstream")));
    if (upstream == NULL)
        return g_error("config 'upstream' is missing");
    char *res = g_block_str(call(proxy_http_call,
                                 g_cat("{\"url\":\"", upstream, "\",\"query\":{\"q\":\"", q,
                                       "\"},\"headers\":{\"Accept\":\"application/json\"}}",
                                       NULL)));
    if (res == NULL || strstr(res, "\"status\":200") == NULL)
        return g_error(g_cat("upstream failed: ", res ? res : "(no answer)", NULL));
    char *b64 = json_str_after(res, "\"body_base64\":\"");
    if (b64 == NULL)
        return g_error("upstream answer without a body");
    call(proxy_plugin_map_set, g_cat("{\"key\":\"", key, "\",\"value\":\"", b64, "\"}", NULL));
    return answer("miss", b64);
}
