/*
 * fn_handler.c - run one invocation through the function's ABI
 * (kiln_abi_ops.handle) and map every failure to an HTTP error with a JSON
 * body naming the function: the one place that decides these statuses.
 *
 *   module unavailable (compile/link failed)   503
 *   trap                                       500 {"error", "function", "trap"}
 *   out of memory (trap or instantiation)      500, error starts "out of memory"
 *   time limit                                 504
 *   guest error (KILN_EGUEST), non-zero exit   500 with the guest's message
 *   malformed output (KILN_EBADOUTPUT)         502
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json_raw.h"
#include "http/http_int.h"

/* A message as a JSON string, its text kept: a guest's message may hold any
 * bytes, and json_string() refuses invalid UTF-8, so that becomes U+FFFD
 * (also where a truncation cut a character); newlines and other control
 * characters are escaped by the encoder. */
static json_t *json_text(const char *s)
{
    char *fixed = json_raw_utf8(s, strlen(s), NULL);
    json_t *v = json_string(fixed ? fixed : "");
    kiln_free(fixed);
    return v;
}

/* s on one line for the log: newlines as \n, other control bytes as \xNN. */
static const char *log_text(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (; *s && o + 5 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\r') {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : 'r';
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void json_response(kiln_response *resp, int status, json_t *body)
{
    kiln_response_reset(resp);
    resp->status = status;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    /* The error body must fit even when the function's own cap is tiny. */
    size_t cap = resp->max_body;
    resp->max_body = 0;
    kiln_response_add_header(resp, "Content-Type", "application/json");
    if (text != NULL) {
        kiln_response_append(resp, text, strlen(text));
        kiln_response_append(resp, "\n", 1);
        free(text);
    }
    resp->max_body = cap;
}

void http_error_response(kiln_response *resp, int status, const char *fn, const char *msg)
{
    json_t *o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "error", json_text(msg));
        if (fn != NULL)
            json_object_set_new(o, "function", json_string(fn));
    }
    json_response(resp, status, o);
}

static bool is_timeout(int rc, const kiln_err *err)
{
    return rc == KILN_ETIMEOUT || (rc == KILN_ETRAP && err->trap == KILN_TRAP_TIMEOUT);
}

int http_fn_refuse(const http_fn *f, kiln_response *resp)
{
    const char *name = f->fn.name;
    if (f->status == HTTP_MOD_COMPILING) {
        /* Never a hang: say so, and when to come back. */
        json_t *o = json_object();
        char msg[300];
        snprintf(msg, sizeof(msg), "function '%s' is being compiled; retry in a moment", name);
        json_object_set_new(o, "error", json_text(msg));
        json_object_set_new(o, "function", json_string(name));
        json_object_set_new(o, "compiling", json_true());
        json_response(resp, 503, o);
        kiln_response_add_header(resp, "Retry-After", "1");
        return f->status;
    }
    if (f->status != KILN_OK) {
        char msg[300];
        snprintf(msg, sizeof(msg), "function '%s' is unavailable: %s", name, f->reason);
        http_error_response(resp, 503, name, msg);
        return f->status;
    }
    return KILN_OK;
}

int http_fn_invoke(const http_fn *f, const kiln_request *req, kiln_response *resp)
{
    const char *name = f->fn.name;
    if (f->upstream != NULL)
        return http_proxy(f, req, resp);
    int refused = http_fn_refuse(f, resp);
    if (refused != KILN_OK)
        return refused;
    kiln_err err;
    err.code = 0;
    err.trap = 0;
    err.exit_code = 0;
    err.msg[0] = '\0';
    int rc = f->abi->handle(&f->fn, f->state, f->pre, req, resp, &err);
    if (rc == KILN_OK)
        return KILN_OK;
    return http_fail_response(name, &f->fn.limits, NULL, rc, &err, resp);
}

int http_fail_response(const char *name, const kiln_limits *limits, const char *stage, int rc,
                       kiln_err *e, kiln_response *resp)
{
    kiln_err err = *e;
    const char *msg = err.msg[0] ? err.msg : kiln_strerror(rc);
    json_t *o = json_object();
    int status = 500;
    if (is_timeout(rc, &err)) {
        status = 504;
        char m[160];
        snprintf(m, sizeof(m), "time limit exceeded: the function ran longer than %u ms",
                 (unsigned)limits->timeout_ms);
        json_object_set_new(o, "error", json_text(m));
        json_object_set_new(o, "trap", json_string(kiln_trap_name(KILN_TRAP_TIMEOUT)));
        json_object_set_new(o, "timeout_ms", json_integer(limits->timeout_ms));
    } else if (rc == KILN_ETRAP && err.trap == KILN_TRAP_OUT_OF_MEMORY) {
        char m[sizeof(err.msg) + 20];
        snprintf(m, sizeof(m), "%s%s", strncmp(msg, "out of memory", 13) ? "out of memory: " : "",
                 msg);
        json_object_set_new(o, "error", json_text(m));
        json_object_set_new(o, "trap", json_string(kiln_trap_name(err.trap)));
        json_object_set_new(o, "max_memory", json_integer((json_int_t)limits->max_memory_bytes));
    } else if (rc == KILN_ENOMEM) {
        char m[sizeof(err.msg) + 20];
        snprintf(m, sizeof(m), "out of memory: %s", msg);
        json_object_set_new(o, "error", json_text(m));
    } else if (rc == KILN_ETRAP) {
        json_object_set_new(o, "error", json_text(msg));
        json_object_set_new(o, "trap", json_string(kiln_trap_name(err.trap)));
    } else if (rc == KILN_EEXIT) {
        json_object_set_new(o, "error", json_text(msg));
        json_object_set_new(o, "exit_code", json_integer(err.exit_code));
    } else {
        if (rc == KILN_EBADOUTPUT)
            status = 502;
        json_object_set_new(o, "error", json_text(msg));
    }
    json_object_set_new(o, "function", json_string(name));
    if (stage != NULL)
        json_object_set_new(o, "plugin", json_string(stage));
    char logmsg[4 * sizeof(err.msg)];
    log_text(msg, logmsg, sizeof(logmsg));
    http_log("[%s%s%s] %d: %s", name, stage ? " " : "", stage ? stage : "", status, logmsg);
    json_response(resp, status, o);
    return rc;
}
