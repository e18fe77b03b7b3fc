/*
 * fuzz_oto_output.c - the Otoroshi WasmBackend output document
 * (src/abi/otoroshi/otoroshi.c, oto_output_to_response): JSON a guest
 * returns, turned into an HTTP response. The first byte picks the response
 * body limit (0 = none, else n * 16 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/otoroshi/otoroshi.h"
#include "kiln/handler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max_body = (size_t)data[0] * 16;
    kiln_response resp;
    kiln_response_init(&resp, max_body);
    kiln_err err;
    int rc = oto_output_to_response(data + 1, size - 1, &resp, &err);
    if (rc == KILN_OK) {
        if (resp.status < 100 || resp.status > 599 || (max_body && resp.body_len > max_body)) {
            fprintf(stderr, "fuzz_oto_output: status %d, body %zu\n", resp.status, resp.body_len);
            abort();
        }
        for (size_t i = 0; i < resp.n_headers; i++)
            (void)(strlen(resp.headers[i].name) + strlen(resp.headers[i].value));
    } else if (rc != KILN_EBADOUTPUT && rc != KILN_ELIMIT && rc != KILN_ENOMEM) {
        fprintf(stderr, "fuzz_oto_output: unexpected status %s\n", kiln_strerror(rc));
        abort();
    }
    kiln_response_fini(&resp);
    /* Otoroshi's failure answer with the same text as a message. */
    char msg[256];
    size_t n = size - 1 < sizeof(msg) - 1 ? size - 1 : sizeof(msg) - 1;
    memcpy(msg, data + 1, n);
    msg[n] = '\0';
    kiln_response_init(&resp, 0);
    oto_error_response(&resp, msg);
    kiln_response_fini(&resp);
    return 0;
}
