/*
 * cgi_int.h - private to src/abi/cgi/, its tests (tests/fuzz/fuzz_cgi.c) and
 * the other ABIs that serve a program CGI-style (wasi:cli/command components,
 * src/abi/component/): the CGI response parser (cgi.c), the one piece that
 * reads guest output, and the request's CGI context (cgi_env.c).
 */
#ifndef KILN_ABI_CGI_CGI_INT_H
#define KILN_ABI_CGI_CGI_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"
#include "kiln/wasi.h"

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

/* A request's CGI environment: n "NAME=VALUE" strings at vars, packed in buf
 * (both kiln_malloc'd; cgi_env_free). RFC 3875 meta-variables, HTTP_*
 * headers, X_PARAM_* route parameters, then fn->env (CGI names win). */
typedef struct cgi_env {
    char *buf;
    const char **vars;
    size_t n;
} cgi_env;

/* KILN_OK or KILN_ENOMEM (err names the function). */
int cgi_env_build(const kiln_function *fn, const kiln_request *req, cgi_env *out /* OUT */,
                  kiln_err *err);
void cgi_env_free(cgi_env *e); /* NULL or zeroed is ok */

/* The response body cap: fn->max_output_bytes or 16 MiB. */
size_t cgi_output_cap(const kiln_function *fn);

/* fn->dirs as preview-1 preopens: *out is kiln_calloc'd (free with
 * kiln_free; NULL when there are none), its strings borrowed from fn.
 * KILN_OK or KILN_ENOMEM. */
int cgi_preopens(const kiln_function *fn, kiln_wasi_preopen **out /* OUT */, kiln_err *err);

/* The preview-1 context a CGI program runs with: argv = {fn->name}, `env`,
 * the preopens, stdin = the request body (borrowed: req must outlive the
 * context), stdout captured up to cgi_output_cap + 64 KiB of headers, stderr
 * captured up to 64 KiB. Errors as kiln_wasi_new. */
int cgi_wasi_new(const kiln_function *fn, const kiln_request *req, const cgi_env *env,
                 const kiln_wasi_preopen *preopens, size_t n_preopens,
                 kiln_wasi **out /* OUT */, kiln_err *err);

/* Guest output to the server log: "[fn_name] line" per line, through the
 * invocation's log budget (abi/guest_log.h). */
void cgi_log_lines(const char *fn_name, const uint8_t *data, size_t len);

/* Captured stderr to the server log, one "[fn] line" per line through the
 * invocation's log budget (abi/guest_log.h). Call it whatever the outcome. */
void cgi_wasi_log_stderr(const kiln_function *fn, kiln_wasi *wasi);

/* Captured stdout as the response (cgi_parse_output); KILN_ELIMIT if the
 * program wrote more than the output cap. */
int cgi_wasi_respond(const kiln_function *fn, kiln_wasi *wasi, kiln_response *resp,
                     kiln_err *err);

#endif
