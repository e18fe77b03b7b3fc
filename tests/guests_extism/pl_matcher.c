/*
 * pl_matcher.c - an Otoroshi route matcher (`matches_route`) for
 * test_pipeline.sh: {"result": true} iff the request header `x-variant`
 * equals the plugin config's `variant`, else {"result": false}. Config
 * `reply` (pl_json.h) outputs a fixed text instead.
 */
#include "pl_json.h"

EXPORT("matches_route") int32_t matches_route(void)
{
    char *in = g_input(NULL);
    if (pl_reply(in))
        return 0;
    const char *want = j_str_or(j_path(in, "config", "variant", NULL), "");
    char *got = j_str(j_path(in, "request", "headers", "x-variant", NULL));
    g_output_str(got != NULL && strcmp(got, want) == 0 ? "{\"result\":true}"
                                                       : "{\"result\":false}");
    return 0;
}
