/*
 * fetch.c - the C SDK's outbound HTTP: GET the URL in ?url= (the function's
 * allowed_hosts decide what it may reach) and relay the status, the
 * upstream's Content-Type and the body. A refused or failed request becomes
 * a 502 with the host's reason.
 *
 *   allowed_hosts: ["https://api.example.com"]
 *   curl 'http://127.0.0.1:8080/fetch?url=https://api.example.com/v1/x'
 */
#include "kiln.h"

int main(void)
{
    char *url = kiln_query_param("url");
    if (url == NULL) {
        kiln_respond(400, "text/plain", "missing ?url=\n", 14);
        return 0;
    }
    kiln_http_response r;
    int st = kiln_http("GET", url, "Accept: */*\nUser-Agent: kiln-sdk-example", NULL, 0, 0,
                       KILN_HTTP_FOLLOW, &r);
    if (st < 0) {
        kiln_status(502);
        kiln_printf("%s: %s\n", kiln_strerror(st), kiln_http_error());
    } else {
        char *ctype = kiln_http_header("content-type");
        kiln_status(st);
        kiln_set_header("Content-Type", ctype ? ctype : "application/octet-stream");
        kiln_write(r.body, r.body_len);
        free(ctype);
    }
    kiln_http_response_free(&r);
    free(url);
    return 0;
}
