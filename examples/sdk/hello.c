/*
 * hello.c - the C SDK's request and response: method, path, a query
 * parameter, a request header and the body, echoed back with a status and a
 * header of our own.
 *
 *   curl 'http://127.0.0.1:8080/hello?name=Kiln' -H 'X-Trace: 1' -d 'some body'
 */
#include "kiln.h"

int main(void)
{
    char *name = kiln_query_param("name");
    const char *trace = kiln_header("X-Trace");
    size_t len;
    char *body = kiln_body(&len);

    kiln_status(200);
    kiln_set_header("Content-Type", "text/plain; charset=utf-8");
    kiln_set_header("X-Powered-By", "kiln-sdk");
    kiln_printf("hello, %s\n", name ? name : "world");
    kiln_printf("%s %s\n", kiln_method(), kiln_path());
    if (trace != NULL)
        kiln_printf("x-trace: %s\n", trace);
    if (body != NULL && len > 0)
        kiln_printf("%zu bytes of body: %s\n", len, body);
    free(name);
    free(body);
    return 0;
}
