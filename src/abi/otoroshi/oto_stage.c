/*
 * oto_stage.c - Otoroshi plugins as pipeline stages (handler.h, "pipeline
 * stages"; otoroshi-abi.md §4.4-4.7): route matchers, pre-route, access
 * validators, request and response transformers and sinks, each called with
 * Otoroshi's context document for its kind and answered with Otoroshi's
 * output rules. Runs through the same Extism machinery as the WasmBackend
 * (fresh instance per call unless the function reuses them).
 *
 * Where Kiln deliberately differs from Otoroshi: a plugin call that fails
 * (trap, time limit, error set, output that is not JSON) fails the request
 * naming the plugin - 500/504/502 - instead of Otoroshi's 400 with the
 * message: a broken validator must never look like a client error, and the
 * request never goes through a plugin that did not say so.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/extism/extism.h"
#include "abi/otoroshi/otoroshi.h"
#include "base/alloc.h"
#include "base/json_raw.h"

const char *oto_stage_export(kiln_stage_kind kind)
{
    switch (kind) {
    case KILN_STAGE_MATCHER:
        return "matches_route";
    case KILN_STAGE_PRE_ROUTE:
        return "pre_route";
    case KILN_STAGE_ACCESS:
        return "access";
    case KILN_STAGE_REQUEST:
        return "transform_request";
    case KILN_STAGE_RESPONSE:
        return "transform_response";
    case KILN_STAGE_SINK:
        return "sink_handle";
    default:
        return NULL;
    }
}

/* ---- input documents ----------------------------------------------------------- */

/* A response's headers as Otoroshi's single-valued map, without Set-Cookie:
 * a map keeps one value per name, so the response's cookies are given
 * whole in the `cookies` list instead (oto_write_response_cookies). */
static void write_headers(jw *w, const kiln_kv *h, size_t n)
{
    jw_obj_open(w);
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "set-cookie") == 0)
            continue;
        /* Single-valued with lower-case names, as requestToJson (last wins
         * when a client repeats one: later keys shadow earlier ones). */
        char name[256];
        size_t k = 0;
        for (; h[i].name[k] && k < sizeof(name) - 1; k++) {
            char ch = h[i].name[k];
            name[k] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
        }
        name[k] = '\0';
        jw_key(w, name);
        jw_str(w, h[i].value);
    }
    jw_obj_close(w);
}

char *oto_stage_input(const kiln_function *fn, const kiln_plugin *plugin, kiln_stage_phase phase,
                      kiln_stage *st, size_t *len)
{
    const kiln_request *req = kiln_stage_request(st);
    const kiln_stage_info *info = kiln_stage_get_info(st);
    kiln_stage_kind kind = plugin ? plugin->kind : KILN_STAGE_ACCESS;
    char snowflake[64];
    unsigned long seq = oto_snowflake(snowflake);
    const char *host = oto_request_host(req);
    const char *route_name = info->route[0] ? info->route : (fn && fn->name ? fn->name : "sink");
    const char *backend_id = info->backend[0] ? info->backend : route_name;
    size_t alen = 0;
    char *attrs = kiln_stage_attrs_json(st, &alen);
    jw *w = jw_new();
    if (w == NULL || attrs == NULL) {
        free(attrs);
        jw_free(w);
        return NULL;
    }
    const char *config = plugin && plugin->config_json ? plugin->config_json : "{}";
    jw_obj_open(w);
    jw_key(w, "snowflake");
    jw_str(w, snowflake);
    jw_key(w, "config");
    jw_raw(w, config, strlen(config));
    jw_key(w, "attrs");
    jw_raw(w, attrs, alen);
    jw_key(w, "request");
    oto_write_request(w, req, seq);
    jw_key(w, "route");
    oto_write_route(w, route_name, host, backend_id);
    if (kind != KILN_STAGE_MATCHER) {
        jw_members(w, "\"global_config\":{}");
    }
    if (kind != KILN_STAGE_MATCHER && kind != KILN_STAGE_SINK && kind != KILN_STAGE_PRE_ROUTE) {
        jw_members(w, "\"apikey\":null,\"user\":null");
    }
    if (kind == KILN_STAGE_REQUEST) {
        jw_key(w, "raw_request");
        oto_write_plugin_request(w, req);
        jw_key(w, "otoroshi_request");
        oto_write_plugin_request(w, req);
        jw_key(w, "backend");
        oto_write_backend(w, backend_id, host);
        jw_key(w, "request_body_bytes");
        oto_write_body_bytes(w, req->body, req->body_len);
    } else if (kind == KILN_STAGE_RESPONSE) {
        kiln_response *resp = kiln_stage_response(st);
        for (int i = 0; i < 2; i++) {
            jw_key(w, i == 0 ? "raw_response" : "otoroshi_response");
            jw_obj_open(w);
            jw_key(w, "status");
            jw_int(w, resp->status);
            jw_key(w, "headers");
            write_headers(w, resp->headers, resp->n_headers);
            jw_key(w, "cookies");
            oto_write_response_cookies(w, resp->headers, resp->n_headers);
            jw_obj_close(w);
        }
        jw_key(w, "response_body_bytes");
        oto_write_body_bytes(w, resp->body, resp->body_len);
    } else if (kind == KILN_STAGE_SINK) {
        jw_key(w, "origin");
        jw_str(w, "NotFound");
        jw_key(w, "status");
        jw_int(w, info->sink_status ? info->sink_status : 404);
        jw_key(w, "message");
        jw_str(w, info->sink_message ? info->sink_message : "no route for this path");
        if (phase == KILN_PHASE_HANDLE) {
            jw_key(w, "body_bytes");
            oto_write_body_bytes(w, req->body, req->body_len);
        }
    }
    jw_obj_close(w);
    free(attrs);
    return jw_finish(w, len);
}

/* ---- outputs ------------------------------------------------------------------------ */

typedef struct out_doc {
    const char *text; /* the output as the plugin wrote it */
    size_t len;
    json_t *o;        /* parsed (numbers beyond int64 as reals) */
} out_doc;

/* The body of an answer (§4.1), or NULL when the document gives none. */
static int doc_body(const out_doc *d, uint8_t **data, size_t *len, kiln_err *err)
{
    return oto_output_body(d->text, d->len, d->o, data, len, err);
}

/* `headers` of the document as a header list; *n = SIZE_MAX if absent. */
static int doc_headers(const out_doc *d, kiln_kv **out, size_t *n, kiln_err *err)
{
    *out = NULL;
    *n = SIZE_MAX;
    json_t *h = json_object_get(d->o, "headers");
    if (!json_is_object(h))
        return KILN_OK;
    size_t cnt = json_object_size(h), i = 0;
    kiln_kv *kv = kiln_calloc(cnt ? cnt : 1, sizeof(*kv));
    if (kv == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        if (json_is_null(v))
            continue;
        kv[i].name = k;
        /* Non-string values as their JSON text (jansson's: only Kiln reads them). */
        kv[i].value = json_is_string(v) ? kiln_strdup(json_string_value(v))
                                         : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (kv[i].value == NULL) {
            for (size_t j = 0; j < i; j++)
                free((void *)kv[j].value);
            kiln_free(kv);
            return kiln_err_set(err, KILN_ENOMEM, "out of memory");
        }
        i++;
    }
    *out = kv;
    *n = i;
    return KILN_OK;
}

static void free_headers(kiln_kv *kv, size_t n)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < n && n != SIZE_MAX; i++)
        free((void *)kv[i].value);
    kiln_free(kv);
}

/* A status member: `def` if absent; KILN_EBADOUTPUT if not an HTTP status. */
static int doc_status(const out_doc *d, int def, int *status, kiln_err *err)
{
    json_t *st = json_object_get(d->o, "status");
    *status = def;
    if (st == NULL || json_is_null(st))
        return KILN_OK;
    if (!json_is_integer(st) || json_integer_value(st) < 100 || json_integer_value(st) > 599)
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin answered status %s, which is not "
                            "an HTTP status (100..599)", json_is_integer(st) ? "out of range"
                                                                              : "of the wrong type");
    *status = (int)json_integer_value(st);
    return KILN_OK;
}

/* The status, headers and body an output document gives. */
typedef struct doc_reply {
    int status;
    kiln_kv *h;
    size_t nh; /* SIZE_MAX: no `headers` member */
    uint8_t *body; /* NULL: no body member */
    size_t blen;
} doc_reply;

static void reply_free(doc_reply *r)
{
    free_headers(r->h, r->nh);
    kiln_free(r->body);
}

/* Read it: status `def` when absent. */
static int reply_read(const out_doc *d, int def, doc_reply *r, kiln_err *err)
{
    memset(r, 0, sizeof(*r));
    r->nh = SIZE_MAX;
    int rc = doc_status(d, def, &r->status, err);
    if (rc == KILN_OK)
        rc = doc_headers(d, &r->h, &r->nh, err);
    if (rc == KILN_OK)
        rc = doc_body(d, &r->body, &r->blen, err);
    return rc;
}

/* err for a failed kiln_response_* call while writing r's body. */
static int reply_failed(int rc, const doc_reply *r, const kiln_response *resp, kiln_err *err)
{
    if (rc == KILN_ELIMIT)
        return kiln_err_set(err, rc, "the plugin's %zu-byte body exceeds the response limit of "
                            "%zu bytes", r->blen, resp->max_body);
    return kiln_err_set(err, rc, "out of memory building the response");
}

/* Fill resp from an answer document (error: true outputs, sinks, pre-route):
 * status (default `def`), headers (default Content-Type `ctype`), body. */
static int doc_answer(const out_doc *d, int def, const char *ctype, kiln_response *resp,
                      kiln_err *err)
{
    doc_reply r;
    int rc = reply_read(d, def, &r, err);
    if (rc == KILN_OK) {
        kiln_response_reset(resp);
        resp->status = r.status;
        bool has_ct = false;
        for (size_t i = 0; r.nh != SIZE_MAX && i < r.nh && rc == KILN_OK; i++) {
            has_ct = has_ct || strcasecmp(r.h[i].name, "content-type") == 0;
            rc = kiln_response_add_header(resp, r.h[i].name, r.h[i].value);
        }
        if (rc == KILN_OK && !has_ct && ctype != NULL)
            rc = kiln_response_add_header(resp, "Content-Type", ctype);
        if (rc == KILN_OK && (rc = oto_cookies_to_response(d->o, resp, err)) != KILN_OK) {
            reply_free(&r);
            return rc;
        }
        if (rc == KILN_OK)
            rc = kiln_response_append(resp, r.body, r.blen);
        if (rc != KILN_OK)
            reply_failed(rc, &r, resp, err);
    }
    reply_free(&r);
    return rc;
}

/* "attrs": {"set": {k: v}, "del": [k], "clear": bool} - values exactly as
 * written; clear wins. */
static int doc_attrs(const out_doc *d, kiln_stage *st)
{
    json_t *a = json_object_get(d->o, "attrs");
    if (!json_is_object(a))
        return KILN_OK;
    const char *araw, *sraw;
    size_t alen, slen;
    json_t *set = json_object_get(a, "set");
    if (json_is_object(set) && json_raw_member(d->text, d->len, "attrs", &araw, &alen) == 1 &&
        json_raw_member(araw, alen, "set", &sraw, &slen) == 1) {
        const char *k;
        json_t *v;
        json_object_foreach(set, k, v) {
            const char *vraw;
            size_t vlen;
            (void)v;
            if (json_raw_member(sraw, slen, k, &vraw, &vlen) == 1 &&
                kiln_stage_attr_set(st, k, vraw, vlen) != KILN_OK)
                return KILN_ENOMEM;
        }
    }
    json_t *del = json_object_get(a, "del");
    size_t i;
    json_t *k;
    json_array_foreach(del, i, k) {
        if (json_is_string(k))
            kiln_stage_attr_del(st, json_string_value(k));
    }
    if (json_is_true(json_object_get(a, "clear")))
        kiln_stage_attrs_clear(st);
    return KILN_OK;
}

/* {"result": true}? */
static bool doc_result(const out_doc *d)
{
    return json_is_true(json_object_get(d->o, "result"));
}

/* The request transformer's edits (§4.5). */
static int apply_request(const out_doc *d, kiln_stage *st, kiln_err *err)
{
    int rc = KILN_OK;
    json_t *m = json_object_get(d->o, "method");
    if (json_is_string(m) && json_string_length(m) > 0)
        rc = kiln_stage_set_method(st, json_string_value(m));
    json_t *u = json_object_get(d->o, "url");
    if (rc == KILN_OK && json_is_string(u) && json_string_length(u) > 0)
        rc = kiln_stage_set_url(st, json_string_value(u));
    kiln_kv *h = NULL;
    size_t nh = SIZE_MAX;
    if (rc == KILN_OK && (rc = doc_headers(d, &h, &nh, err)) != KILN_OK)
        return rc;
    if (nh != SIZE_MAX)
        rc = kiln_stage_set_headers(st, h, nh);
    free_headers(h, nh);
    /* After the headers: a cookie list replaces whatever Cookie they left. */
    if (rc == KILN_OK && (rc = oto_cookies_to_request(d->o, st, err)) != KILN_OK)
        return rc;
    uint8_t *body = NULL;
    size_t blen = 0;
    if (rc == KILN_OK && (rc = doc_body(d, &body, &blen, err)) != KILN_OK)
        return rc;
    if (body != NULL) {
        rc = kiln_stage_set_body(st, body, blen);
        /* The length changed: a client's Content-Length no longer holds. */
        if (rc == KILN_OK)
            rc = kiln_stage_set_header(st, "Content-Length", NULL);
    }
    kiln_free(body);
    if (rc == KILN_ENOMEM)
        kiln_err_set(err, rc, "out of memory applying the request transformer");
    return rc;
}

/* The response transformer's edits (§4.6). */
static int apply_response(const out_doc *d, kiln_response *resp, kiln_err *err)
{
    doc_reply r;
    int rc = reply_read(d, 200, &r, err);
    if (rc == KILN_OK) {
        resp->status = r.status;
        if (r.nh != SIZE_MAX) {
            /* Replace the header map; keep the body. The cookies are not in
             * the map the plugin was shown, so they stay unless its map
             * names set-cookie (or its `cookies` list replaces them below),
             * as Otoroshi keeps the cookie list apart from the headers. */
            bool keep_cookies = true;
            for (size_t i = 0; i < r.nh; i++)
                keep_cookies = keep_cookies && strcasecmp(r.h[i].name, "set-cookie") != 0;
            size_t k = 0;
            for (size_t i = 0; i < resp->n_headers; i++) {
                if (keep_cookies && strcasecmp(resp->headers[i].name, "set-cookie") == 0) {
                    resp->headers[k++] = resp->headers[i];
                    continue;
                }
                kiln_free((void *)resp->headers[i].name);
                kiln_free((void *)resp->headers[i].value);
            }
            resp->n_headers = k;
            for (size_t i = 0; i < r.nh && rc == KILN_OK; i++)
                rc = kiln_response_add_header(resp, r.h[i].name, r.h[i].value);
        }
        if (rc == KILN_OK && (rc = oto_cookies_to_response(d->o, resp, err)) != KILN_OK) {
            reply_free(&r);
            return rc;
        }
        if (rc == KILN_OK && r.body != NULL) {
            resp->body_len = 0;
            rc = kiln_response_append(resp, r.body, r.blen);
        }
        if (rc != KILN_OK)
            reply_failed(rc, &r, resp, err);
    }
    reply_free(&r);
    return rc;
}

/* ---- the stage op ----------------------------------------------------------------------- */

typedef struct stage_call {
    const kiln_plugin *plugin;
    kiln_stage_phase phase;
    kiln_stage *st;
    int verdict;
} stage_call;

/* Deny: the plugin's status (default 403) and message as JSON. */
static int deny(const out_doc *d, const kiln_plugin *p, kiln_response *resp, kiln_err *err)
{
    json_t *e = json_object_get(d->o, "error");
    json_t *msg = json_object_get(e, "message"), *status = json_object_get(e, "status");
    int st = 403;
    if (json_is_integer(status) && json_integer_value(status) >= 100 &&
        json_integer_value(status) <= 599)
        st = (int)json_integer_value(status);
    jw *w = jw_new();
    if (w != NULL) {
        jw_obj_open(w);
        jw_key(w, "error");
        jw_str(w, json_is_string(msg) ? json_string_value(msg) : "An error occurred");
        jw_key(w, "plugin");
        jw_str(w, p->name);
        jw_obj_close(w);
    }
    size_t len = 0;
    char *text = w ? jw_finish(w, &len) : NULL;
    kiln_response_reset(resp);
    resp->status = st;
    size_t cap = resp->max_body;
    resp->max_body = 0; /* the denial fits whatever the backend's cap */
    int rc = text ? kiln_response_add_header(resp, "Content-Type", "application/json")
                  : KILN_ENOMEM;
    if (rc == KILN_OK)
        rc = kiln_response_append(resp, text, len);
    resp->max_body = cap;
    free(text);
    return rc == KILN_OK ? KILN_OK : kiln_err_set(err, rc, "out of memory");
}

static int on_output(void *arg, const uint8_t *out, size_t len, int32_t rc32, kiln_err *err)
{
    stage_call *c = arg;
    (void)rc32; /* a non-zero return code alone is no failure in Otoroshi */
    json_error_t je;
    out_doc d = {(const char *)out, len, json_raw_load((const char *)out, len, &je)};
    if (d.o == NULL)
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's output is not JSON: %s (at byte "
                            "%d)", je.text, je.position);
    int rc = KILN_OK;
    kiln_stage *st = c->st;
    kiln_response *resp = kiln_stage_response(st);
    bool answer_error = json_is_true(json_object_get(d.o, "error"));
    if (json_is_object(d.o))
        rc = doc_attrs(&d, st);
    if (rc != KILN_OK) {
        json_decref(d.o);
        return kiln_err_set(err, rc, "out of memory");
    }
    switch (c->plugin->kind) {
    case KILN_STAGE_MATCHER:
        c->verdict = doc_result(&d) ? KILN_STAGE_CONTINUE : KILN_STAGE_NO_MATCH;
        break;
    case KILN_STAGE_SINK:
        if (c->phase == KILN_PHASE_MATCH) {
            c->verdict = doc_result(&d) ? KILN_STAGE_CONTINUE : KILN_STAGE_NO_MATCH;
        } else {
            rc = doc_answer(&d, 200, "application/json", resp, err);
            c->verdict = KILN_STAGE_RESPOND;
        }
        break;
    case KILN_STAGE_PRE_ROUTE:
        if (answer_error) {
            rc = doc_answer(&d, 200, "application/json", resp, err);
            c->verdict = KILN_STAGE_RESPOND;
        }
        break;
    case KILN_STAGE_ACCESS:
        if (!doc_result(&d)) {
            rc = deny(&d, c->plugin, resp, err);
            c->verdict = KILN_STAGE_RESPOND;
        }
        break;
    case KILN_STAGE_REQUEST:
        if (answer_error) {
            rc = doc_answer(&d, 500, "application/octet-stream", resp, err);
            c->verdict = KILN_STAGE_RESPOND;
        } else if (json_is_object(d.o)) {
            rc = apply_request(&d, st, err);
        }
        break;
    case KILN_STAGE_RESPONSE:
        if (answer_error)
            rc = doc_answer(&d, 500, "application/octet-stream", resp, err);
        else if (json_is_object(d.o))
            rc = apply_response(&d, resp, err);
        break;
    default:
        rc = kiln_err_set(err, KILN_EUNSUPPORTED, "not an Otoroshi plugin kind");
    }
    json_decref(d.o);
    return rc;
}

int oto_stage(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
              const kiln_plugin *plugin, kiln_stage_phase phase, kiln_stage *st, int *verdict,
              kiln_err *err)
{
    const char *name = fn->name ? fn->name : "plugin";
    stage_call c = {plugin, phase, st, KILN_STAGE_CONTINUE};
    const char *export_name = NULL; /* the prepared one */
    if (plugin->kind == KILN_STAGE_SINK && phase == KILN_PHASE_MATCH) {
        /* A sink without sink_matches takes every request. */
        export_name = "sink_matches";
        if (kiln_module_find_export(kiln_instance_pre_module(pre), export_name,
                                    KILN_EXTERN_FUNC) < 0) {
            *verdict = KILN_STAGE_CONTINUE;
            return KILN_OK;
        }
    }
    size_t len = 0;
    char *in = oto_stage_input(fn, plugin, phase, st, &len);
    if (in == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory describing the request", name);
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = xtm_handler_run_export(state, pre, export_name, (const uint8_t *)in, len, on_output,
                                    &c, &e);
    free(in);
    if (rc != KILN_OK) {
        if (err != NULL)
            *err = e;
        return rc;
    }
    *verdict = c.verdict;
    return KILN_OK;
}
