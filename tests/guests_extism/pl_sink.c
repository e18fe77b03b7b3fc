/*
 * pl_sink.c - an Otoroshi sink for test_pipeline.sh.
 * sink_matches: {"result": true} iff the request path starts with config
 * `prefix` (no prefix: always). sink_handle: {"status": config.status (if
 * any), "headers": {"Content-Type": "application/json", "X-Sink":
 * config.name}, "body_json": {"sink", "origin", "status", "message", "path",
 * "method"}} - what the sink was told, as it was told. pl_sink_all.c is the
 * same sink without sink_matches (a sink that takes everything).
 */
#include "pl_json.h"

#ifndef PL_SINK_NO_MATCHES
EXPORT("sink_matches") int32_t sink_matches(void)
{
    char *in = g_input(NULL);
    if (pl_reply(in))
        return 0;
    const char *prefix = j_str_or(j_path(in, "config", "prefix", NULL), "");
    const char *path = j_str_or(j_path(in, "request", "path", NULL), "");
    g_output_str(strncmp(path, prefix, strlen(prefix)) == 0 ? "{\"result\":true}"
                                                            : "{\"result\":false}");
    return 0;
}
#endif

EXPORT("sink_handle") int32_t sink_handle(void)
{
    char *in = g_input(NULL);
    const char *cfg = j_get(in, "config");
    char *name = j_raw(j_get(cfg, "name"));
    char *b = "";
    pl_member(&b, "sink", name ? name : "null");
    static const char *const keys[] = {"origin", "status", "message"};
    for (unsigned i = 0; i < 3; i++) {
        char *v = j_raw(j_get(in, keys[i]));
        pl_member(&b, keys[i], v ? v : "\"(absent)\"");
    }
    pl_member(&b, "path", j_raw(j_path(in, "request", "path", NULL)));
    pl_member(&b, "method", j_raw(j_path(in, "request", "method", NULL)));
    char *m = "";
    pl_member(&m, "status", j_raw(j_get(cfg, "status")));
    pl_member(&m, "headers", g_cat("{\"Content-Type\":\"application/json\",\"X-Sink\":",
                                   name ? name : "\"?\"", "}", NULL));
    pl_member(&m, "body_json", g_cat("{", b, "}", NULL));
    g_output_str(g_cat("{", m, "}", NULL));
    return 0;
}
