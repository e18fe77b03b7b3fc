/*
 * rw.c - the request transformer of bench/pipeline/run.sh (Otoroshi kind
 * `request`, export `transform_request`): adds one header, answering
 * {"headers": {...every header of otoroshi_request, "x-bench": "1"}}; method,
 * path and body stay as they were.
 */
#include "pl_json.h"

EXPORT("transform_request") int32_t transform_request(void)
{
    char *in = g_input(NULL);
    const char *headers = j_path(in, "otoroshi_request", "headers", NULL);
    g_output_str(g_cat("{\"headers\":", j_merge(headers, "\"x-bench\":\"1\""), "}", NULL));
    return 0;
}
