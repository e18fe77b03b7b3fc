/*
 * pl_echo.c - an Otoroshi WasmBackend (`call_backend`) for test_pipeline.sh
 * that answers with what reached it:
 *   200, Content-Type: application/json, X-Hits: N (how many requests this
 *   function has served: proxy_plugin_datastore_incrby on its private
 *   namespace, so a test proves a request did not reach the backend),
 *   body {"name": the function's config `name` (or null), "method", "uri",
 *   "headers"} of raw_request, "url" of request (the
 *   plugin-side request), "body" (request_body_bytes as text, or null) and
 *   "attrs" (the attrs it was given, as given).
 */
#include "pl_json.h"

#define OIMPORT(name) __attribute__((import_module("env"), import_name(name)))
OIMPORT("proxy_plugin_datastore_incrby") uint64_t proxy_plugin_datastore_incrby(uint64_t off,
                                                                                 uint64_t len);

EXPORT("call_backend") int32_t call_backend(void)
{
    char *in = g_input(NULL);
    const char *arg = "{\"key\":\"hits\",\"incr\":1}";
    uint64_t hits = proxy_plugin_datastore_incrby(g_alloc_str(arg), strlen(arg));
    char hs[24];
    g_utoa(hits, hs);
    const char *raw = j_get(in, "raw_request");
    size_t n;
    char *body = j_bytes(j_get(in, "request_body_bytes"), &n);
    char *b = "";
    char *name = j_raw(j_path(in, "config", "name", NULL));
    pl_member(&b, "name", name ? name : "null");
    pl_member(&b, "method", j_raw(j_get(raw, "method")));
    pl_member(&b, "uri", j_raw(j_get(raw, "uri")));
    pl_member(&b, "headers", j_raw(j_get(raw, "headers")));
    pl_member(&b, "url", j_raw(j_path(in, "request", "url", NULL)));
    pl_member(&b, "body", body ? j_quote(body) : "null");
    char *attrs = j_raw(j_get(in, "attrs"));
    pl_member(&b, "attrs", attrs ? attrs : "\"(absent)\"");
    g_output_str(g_cat("{\"status\":200,\"headers\":{\"Content-Type\":\"application/json\","
                       "\"X-Hits\":\"",
                       hs, "\"},\"body_json\":{", b, "}}", NULL));
    return 0;
}
