/*
 * backend.c - the backend function of bench/pipeline/run.sh (an Otoroshi
 * WasmBackend, export `call_backend`): answers 200 with a small JSON body,
 * {"ok": true, "x-bench": V}, where V is the request's `x-bench` header as
 * it reached the backend (null without it), so the bench can check once that
 * the request transformer ran before the backend.
 */
#include "pl_json.h"

EXPORT("call_backend") int32_t call_backend(void)
{
    char *in = g_input(NULL);
    char *seen = j_raw(j_path(in, "raw_request", "headers", "x-bench", NULL));
    g_output_str(g_cat("{\"status\":200,\"headers\":{\"Content-Type\":\"application/json\"},"
                       "\"body_json\":{\"ok\":true,\"x-bench\":",
                       seen ? seen : "null", "}}", NULL));
    return 0;
}
