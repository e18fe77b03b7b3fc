/*
 * fuzz_cgi.c - the CGI response parser (src/abi/cgi/cgi.c, cgi_parse_output)
 * on arbitrary guest stdout. The first byte picks the response body limit
 * (0 = none, else 1..255 bytes). A parsed response must have a valid status
 * and only headers that cannot split the HTTP response (no CR, LF or NUL)
 * and none of the framing headers the server owns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/cgi/cgi_int.h"
#include "base/alloc.h"
#include "kiln/handler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *why, const char *s)
{
    fprintf(stderr, "fuzz_cgi: %s: '%s'\n", why, s);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max_body = data[0];
    data++;
    size--;
    uint8_t *out = kiln_malloc(size ? size : 1);
    if (out == NULL)
        return 0;
    memcpy(out, data, size);
    kiln_response resp;
    kiln_response_init(&resp, max_body);
    kiln_err err;
    int rc = cgi_parse_output("fuzz", out, size, &resp, &err);
    if (rc == KILN_OK) {
        if (resp.status < 100 || resp.status > 599)
            fail("status out of range", "");
        if (max_body != 0 && resp.body_len > max_body)
            fail("body over the limit", "");
        for (size_t i = 0; i < resp.n_headers; i++) {
            const char *n = resp.headers[i].name, *v = resp.headers[i].value;
            if (n[0] == '\0' || strpbrk(n, "\r\n: \t") != NULL)
                fail("bad header name", n);
            if (strpbrk(v, "\r\n") != NULL)
                fail("header value with CR/LF", v);
            if (strcasecmp(n, "Content-Length") == 0 || strcasecmp(n, "Transfer-Encoding") == 0 ||
                strcasecmp(n, "Connection") == 0 || strcasecmp(n, "Status") == 0)
                fail("framing header passed on", n);
        }
    } else if (rc != KILN_EBADOUTPUT && rc != KILN_ELIMIT && rc != KILN_ENOMEM) {
        fail("unexpected status", kiln_strerror(rc));
    }
    if (resp.body != out)
        kiln_free(out);
    kiln_response_fini(&resp);
    return 0;
}
