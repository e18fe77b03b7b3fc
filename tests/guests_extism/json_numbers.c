/*
 * json_numbers.c - an Otoroshi WasmBackend (`call_backend`, run with
 * `abi: otoroshi`) whose output JSON holds numbers jansson would rewrite or
 * refuse, for test_json_exact.sh. By request path:
 *   /numbers  -> status 200, a header, body_json with the numbers
 *   /fail     -> an Extism error with newlines, a quote and non-ASCII text
 *   /notjson  -> output that is not JSON
 *   /array    -> output that is JSON but not an object
 * `fail_text` (run with `abi: extism`) sets the same error as /fail.
 */
#include "guest.h"

/* The body_json text exactly as the client must see it. */
#define NUMBERS                                                                          \
    "{\"p\":0.9678663636363636,\"v\":431952.32,"                                         \
    "\"big\":123456789012345678901234567890,\"neg\":-99999999999999999999999,"           \
    "\"huge\":1.5e300,\"e\":1.0E+2,\"z\":-0.0,"                                          \
    "\"nested\":[[1.10,[2.50e-3,[]]],{\"a\":[0.1,{\"b\":-0}]}],\"s\":\"caf\\u00e9 \\\"q\\\"\"}"

#define ERROR_TEXT "line one\nline \"two\"\ncaf\xc3\xa9 \xe2\x82\xac end"

static int path_is(const char *in, const char *path)
{
    return strstr(in, g_cat("\"path\":\"", path, "\"", NULL)) != NULL;
}

EXPORT("call_backend") int32_t call_backend(void)
{
    char *in = g_input(NULL);
    if (path_is(in, "/numbers"))
        g_output_str("{\"status\":200,\"headers\":{\"Content-Type\":\"application/json\","
                     "\"X-Ratio\":0.9678663636363636},\"body_json\":" NUMBERS "}");
    else if (path_is(in, "/fail"))
        return g_error(ERROR_TEXT);
    else if (path_is(in, "/array"))
        g_output_str("[{\"status\":200}]");
    else
        g_output_str("status: 200, this is not JSON");
    return 0;
}

EXPORT("fail_text") int32_t fail_text(void)
{
    return g_error(ERROR_TEXT);
}
