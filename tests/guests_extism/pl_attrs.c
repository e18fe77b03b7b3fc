/*
 * pl_attrs.c - request attributes across the stages of one request
 * (test_pipeline.sh), both ways Otoroshi offers: the host functions
 * proxy_set_attr / proxy_get_attr / proxy_get_attrs and "attrs" in a
 * plugin's output ({"set": {...}, "del": [...], "clear": bool}).
 *
 * set_attrs (an access validator): checks that its `attrs` input is {}
 *   (else denies 500 "attrs leaked: ..."), then proxy_set_attr score =
 *   0.9678663636363636, who = {"name": "ann", "big":
 *   123456789012345678901234567890}, tmp = "gone"; outputs {"result": true,
 *   "attrs": {"set": {"via_output": "yes", "price": 431952.32}, "del":
 *   ["tmp"]}}.
 * step2 (a request transformer): reads proxy_get_attr("score") into header
 *   x-score (added to the request's headers), sets step2 = [1, 2, 3] with
 *   proxy_set_attr and via_step2 = true through its output.
 * clear_attrs (a request transformer): outputs {"attrs": {"clear": true}}.
 * read_attrs (a response transformer): keeps the status and answers
 *   body_json {"attrs": <its attrs input>, "score": proxy_get_attr("score"),
 *   "tmp": proxy_get_attr("tmp"), "all": proxy_get_attrs(), "backend":
 *   <the backend's body as text>} (a missing attribute is null).
 * count_global (an access validator): proxy_datastore_incrby on key
 *   "plugin_hits" of the global data store (namespace `global`: the plugin
 *   function needs kv.grants {global: rw}, its own grant - without it the
 *   host call fails and so does the request); {"result": true, "attrs":
 *   {"set": {"global_hits": N}}}.
 */
#include "pl_json.h"

#define OIMPORT(name) __attribute__((import_module("env"), import_name(name)))
OIMPORT("proxy_set_attr") uint64_t proxy_set_attr(uint64_t off, uint64_t len);
OIMPORT("proxy_get_attr") xh proxy_get_attr(uint64_t off, uint64_t len);
OIMPORT("proxy_get_attrs") xh proxy_get_attrs(uint64_t unused);
OIMPORT("proxy_datastore_incrby") uint64_t proxy_datastore_incrby(uint64_t off, uint64_t len);

EXPORT("count_global") int32_t count_global(void)
{
    const char *arg = "{\"key\":\"plugin_hits\",\"incr\":1}";
    uint64_t n = proxy_datastore_incrby(g_alloc_str(arg), strlen(arg));
    char ns[24];
    g_utoa(n, ns);
    g_output_str(g_cat("{\"result\":true,\"attrs\":{\"set\":{\"global_hits\":", ns, "}}}",
                       NULL));
    return 0;
}

static void set_attr(const char *key, const char *json)
{
    char *arg = g_cat("{\"key\":\"", key, "\",\"value\":", json, "}", NULL);
    proxy_set_attr(g_alloc_str(arg), strlen(arg));
}

/* proxy_get_attr(key) as text, or "null" when the host answers nothing. */
static char *get_attr(const char *key)
{
    char *v = g_block_str(proxy_get_attr(g_alloc_str(key), strlen(key)));
    return v && v[0] ? v : "null";
}

EXPORT("set_attrs") int32_t set_attrs(void)
{
    char *in = g_input(NULL);
    char *attrs = j_raw(j_get(in, "attrs"));
    if (attrs == NULL || strcmp(attrs, "{}") != 0) {
        g_output_str(g_cat("{\"result\":false,\"error\":{\"status\":500,\"message\":",
                           j_quote(g_cat("attrs leaked: ", attrs ? attrs : "(absent)", NULL)),
                           "}}", NULL));
        return 0;
    }
    set_attr("score", "0.9678663636363636");
    set_attr("who", "{\"name\":\"ann\",\"big\":123456789012345678901234567890}");
    set_attr("tmp", "\"gone\"");
    g_output_str("{\"result\":true,\"attrs\":{\"set\":{\"via_output\":\"yes\","
                 "\"price\":431952.32},\"del\":[\"tmp\"]}}");
    return 0;
}

EXPORT("step2") int32_t step2(void)
{
    char *in = g_input(NULL);
    char *score = get_attr("score");
    set_attr("step2", "[1,2,3]");
    char *extra = "";
    pl_member(&extra, "x-score", j_quote(score));
    g_output_str(g_cat("{\"headers\":", j_merge(j_path(in, "otoroshi_request", "headers", NULL),
                                                extra),
                       ",\"attrs\":{\"set\":{\"via_step2\":true}}}", NULL));
    return 0;
}

EXPORT("clear_attrs") int32_t clear_attrs(void)
{
    g_output_str("{\"attrs\":{\"clear\":true}}");
    return 0;
}

EXPORT("read_attrs") int32_t read_attrs(void)
{
    char *in = g_input(NULL);
    char *attrs = j_raw(j_get(in, "attrs"));
    char *all = g_block_str(proxy_get_attrs(0));
    size_t n;
    char *body = j_bytes(j_get(in, "response_body_bytes"), &n);
    char *st = j_raw(j_path(in, "otoroshi_response", "status", NULL));
    char *b = "";
    pl_member(&b, "attrs", attrs ? attrs : "\"(absent)\"");
    pl_member(&b, "score", get_attr("score"));
    pl_member(&b, "tmp", get_attr("tmp"));
    pl_member(&b, "all", all && all[0] ? all : "null");
    pl_member(&b, "backend", body ? j_quote(body) : "null");
    g_output_str(g_cat("{\"status\":", st ? st : "599",
                       ",\"headers\":{\"Content-Type\":\"application/json\"},\"body_json\":{", b,
                       "}}", NULL));
    return 0;
}
