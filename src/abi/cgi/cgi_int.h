/*
 * cgi_int.h - private to src/abi/cgi/ and its tests (tests/fuzz/fuzz_cgi.c):
 * the CGI response parser, the one piece of the ABI that reads guest output.
 */
#ifndef KILN_ABI_CGI_CGI_INT_H
#define KILN_ABI_CGI_CGI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"

/*
 * Parse CGI output: header lines ("Name: value", CRLF or LF), a blank line,
 * the body. Status: sets the status; Location: without Status gives 302;
 * hop-by-hop and length headers are dropped (the server frames the body).
 * `fname` names the function in messages. Returns KILN_OK, KILN_EBADOUTPUT
 * (malformed; err says why), KILN_ELIMIT (body over resp->max_body) or
 * KILN_ENOMEM. On KILN_OK with an empty resp body, the body is handed to resp
 * without copying: `out` (kiln_malloc'd) is taken and must not be freed by
 * the caller; in every other case the caller keeps `out`.
 */
int cgi_parse_output(const char *fname, uint8_t *out, size_t len, kiln_response *resp,
                     kiln_err *err);

#endif
