/*
 * otoroshi.h - private to src/abi/otoroshi/ and its unit test: the pieces of
 * the Otoroshi WasmBackend contract that do not need a running guest (input
 * JSON from a request, output JSON to a response). The ABI itself is
 * kiln_abi_otoroshi (include/kiln/handler.h); it runs plugins through the
 * Extism machinery (abi/extism/extism.h).
 */
#ifndef KILN_ABI_OTOROSHI_OTOROSHI_H
#define KILN_ABI_OTOROSHI_OTOROSHI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/json_raw.h"
#include "kiln/handler.h"

#define OTO_DEFAULT_EXPORT "call_backend"

/*
 * Interpret a WasmBackend output document (otoroshi-abi.md §4.3, §4.1) into
 * `resp` (status, headers, body). Output that is not a JSON object counts as
 * {} (200, Content-Type: application/json, empty body). Returns KILN_OK,
 * KILN_EBADOUTPUT (delegates_call, a status outside 100..599, invalid
 * body_base64) or KILN_ENOMEM / KILN_ELIMIT from the response; err explains.
 */
int oto_output_to_response(const uint8_t *out, size_t len, kiln_response *resp, kiln_err *err);

/*
 * Cookies (oto_cookies.c). oto_write_response_cookies writes the `cookies`
 * list of a response transformer's input: one WSCookie object {name, value,
 * domain, path, maxAge, secure, httpOnly} per Set-Cookie header of h.
 * oto_cookies_to_request / _to_response apply an output document's
 * `cookies` list, when present: it replaces the forwarded request's Cookie
 * header ("name=value; ..."; an empty list removes it), or every Set-Cookie
 * header of resp (one per entry, with Max-Age, Path, Domain, Secure,
 * HttpOnly). A malformed list or entry is KILN_EBADOUTPUT, nothing changed.
 */
void oto_write_response_cookies(jw *w, const kiln_kv *h, size_t n);
int oto_cookies_to_request(json_t *doc, kiln_stage *st, kiln_err *err);
int oto_cookies_to_response(json_t *doc, kiln_response *resp, kiln_err *err);

/* Fill resp with Otoroshi's failure answer: 400 {"error": "<msg>"}. */
int oto_error_response(kiln_response *resp, const char *msg);

/*
 * The WasmBackend input document for a request (§4.3 with the fragments of
 * §4.2, every documented field present). `fn` supplies the name and config.
 * Returns a malloc'd (jansson) JSON string and its length, or NULL on OOM.
 */
char *oto_input_json(const kiln_function *fn, const kiln_request *req, size_t *len /* OUT */);

/* ---- pieces of the input documents (otoroshi.c), shared with oto_stage.c -- */

/* A new request snowflake (text) and sequence number. */
unsigned long oto_snowflake(char out[64]);
/* The Host header, else req->host, else "localhost". */
const char *oto_request_host(const kiln_request *req);
/* Written into w (writers poison w on OOM): requestToJson (§4.2) with
 * request id `id`; the plugin-side NgPluginHttpRequest; a Backend target
 * `id` for `host`; a Route `name` for `host` whose one target is
 * oto_write_backend(backend_id, host). */
void oto_write_request(jw *w, const kiln_request *req, unsigned long id);
void oto_write_plugin_request(jw *w, const kiln_request *req);
void oto_write_backend(jw *w, const char *id, const char *host);
void oto_write_route(jw *w, const char *name, const char *host, const char *backend_id);
/* A body as Otoroshi's array of signed bytes, or null when empty. */
void oto_write_body_bytes(jw *w, const uint8_t *b, size_t n);

/*
 * The context document a plugin of `plugin->kind` receives in `phase`
 * (otoroshi-abi.md §4.4-4.7): the request as `st` has it now, the plugin's
 * config, the shared attrs, the route. Also the input of OPA policies
 * (src/abi/opa), which Otoroshi evaluates on the access validator's document.
 * Returns malloc'd JSON text (free()) and its length, or NULL on OOM.
 */
char *oto_stage_input(const kiln_function *fn, const kiln_plugin *plugin, kiln_stage_phase phase,
                      kiln_stage *st, size_t *len /* OUT */);

/* The body of an output document (§4.1: body_str/body, body_json as written,
 * body_base64, body_bytes): *data (kiln_malloc'd) or NULL when it gives none.
 * `doc` is the document's text, `o` the same parsed. */
int oto_output_body(const char *doc, size_t doc_len, json_t *o, uint8_t **data, size_t *len,
                    kiln_err *err);

/* The pipeline-stage ops of kiln_abi_otoroshi (oto_stage.c). */
const char *oto_stage_export(kiln_stage_kind kind);
int oto_stage(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
              const kiln_plugin *plugin, kiln_stage_phase phase, kiln_stage *st, int *verdict,
              kiln_err *err);

#endif
