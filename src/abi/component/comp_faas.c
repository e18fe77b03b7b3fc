/*
 * comp_faas.c - a component of Kiln's kiln:faas handler world (wit/, issue
 * 13): export handle: func(event: handler-event) -> result<_, handler-error>.
 *
 * Events (the ABI's event op): the kiln_event becomes a handler-event record
 * (event-type by kiln_event_type's label, event-timestamp as a wall-clock
 * datetime {seconds, nanoseconds}, event-version, source, key as a string
 * - a key that is not UTF-8 fails the event, since WIT strings must be -
 * and payload as list<u8>); ok is KILN_OK, a handler-error is KILN_EGUEST
 * whose message names the case and its text.
 *
 * HTTP (handle): a request to the function's route is a `message` event
 * from source "http" whose key is the request path and payload the body,
 * timestamped now, version "1". ok → 204; invalid(msg) → 400 with msg;
 * unsupported(type) → 400; failed(msg) → 500 with msg (KILN_EGUEST through
 * the server's error mapping, as traps 500 and timeouts 504).
 *
 * Each call gets a fresh component instance; the guest's stdout and stderr
 * go to the server log through the invocation's log budget.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "abi/cgi/cgi_int.h"
#include "abi/component/comp_int.h"
#include "abi/guest_log.h"
#include "base/utf8.h"
#include "component/cm_int.h"

#define FAAS_OUTPUT_CAP ((size_t)64 << 10) /* stdout/stderr kept for the log */

/* The handler's answer. */
typedef struct faas_answer {
    bool ok;
    char kind[64]; /* the handler-error case: "invalid", "unsupported", "failed", ... */
    char text[700]; /* its string, or the event type's label for unsupported */
} faas_answer;

static const cm_field *field(const cm_type *rec, const char *name)
{
    for (uint32_t i = 0; i < rec->n; i++)
        if (rec->f[i].name != NULL && strcmp(rec->f[i].name, name) == 0)
            return &rec->f[i];
    return NULL;
}

static bool is_kind(const cm_field *f, cm_kind k)
{
    return f != NULL && f->type != NULL && f->type->kind == k;
}

bool comp_faas_signature(const cm_type *ft)
{
    if (ft == NULL || ft->kind != CM_FUNC || ft->n != 1 || ft->f[0].type == NULL)
        return false;
    const cm_type *rec = ft->f[0].type, *res = ft->elem;
    if (rec->kind != CM_RECORD || rec->n != 6 || res == NULL || res->kind != CM_RESULT ||
        res->elem != NULL || res->err == NULL || res->err->kind != CM_VARIANT)
        return false;
    const cm_field *ts = field(rec, "event-timestamp"), *pl = field(rec, "payload");
    return is_kind(field(rec, "event-type"), CM_ENUM) && is_kind(ts, CM_RECORD) &&
           ts->type->n == 2 && ts->type->f[0].type->kind == CM_U64 &&
           ts->type->f[1].type->kind == CM_U32 && is_kind(field(rec, "event-version"), CM_STRING) &&
           is_kind(field(rec, "source"), CM_STRING) && is_kind(field(rec, "key"), CM_STRING) &&
           is_kind(pl, CM_LIST) && pl->type->elem != NULL && pl->type->elem->kind == CM_U8;
}

static void set_str(cm_val *v, const void *p, size_t n)
{
    v->kind = CM_STRING;
    v->str.p = p;
    v->str.len = (uint32_t)n;
}

/* The handler-event record for `ev`, in `arena`. */
static int build_event(const kiln_function *fn, const cm_type *rec, cm_arena *arena,
                       const kiln_event *ev, cm_val *out, kiln_err *err)
{
    if (!utf8_valid(ev->key, ev->key_len))
        return kiln_err_set(err, KILN_EINVAL,
                            "function '%s': the event's key is not valid UTF-8 (byte %zu), and "
                            "kiln:faas passes the key as a WIT string; use UTF-8 keys",
                            fn->name, utf8_bad_at(ev->key, ev->key_len));
    if (ev->key_len > CM_MAX_STRING_BYTES || ev->payload_len > UINT32_MAX)
        return kiln_err_set(err, KILN_ELIMIT, "function '%s': the event is too large",
                            fn->name);
    cm_val *fields = cm_arena_alloc(arena, rec->n * sizeof(*fields));
    cm_val *ts = cm_arena_alloc(arena, 2 * sizeof(*ts));
    if (fields == NULL || ts == NULL)
        return kiln_err_set(err, KILN_ENOMEM,
                            "function '%s': out of memory for the event", fn->name);
    memset(fields, 0, rec->n * sizeof(*fields));
    for (uint32_t i = 0; i < rec->n; i++) {
        const char *name = rec->f[i].name;
        const cm_type *t = rec->f[i].type;
        cm_val *v = &fields[i];
        v->kind = t->kind;
        if (strcmp(name, "event-type") == 0) {
            const char *label = kiln_event_type_name(ev->type);
            uint32_t k = 0;
            while (k < t->n && strcmp(t->f[k].name, label) != 0)
                k++;
            if (k == t->n)
                return kiln_err_set(err, KILN_EINVAL,
                                    "function '%s': the component's event-type has no case "
                                    "'%s'; build it against the kiln:faas WIT (wit/)",
                                    fn->name, label);
            v->var.index = k;
        } else if (strcmp(name, "event-timestamp") == 0) {
            int64_t ns = ev->timestamp_ns;
            uint64_t sec = ns >= 0 ? (uint64_t)(ns / 1000000000) : 0;
            uint32_t nsec = ns >= 0 ? (uint32_t)(ns % 1000000000) : 0;
            ts[0] = (cm_val){.kind = CM_U64, .u = sec};
            ts[1] = (cm_val){.kind = CM_U32, .u = nsec};
            v->agg.v = ts;
            v->agg.n = 2;
        } else if (strcmp(name, "event-version") == 0) {
            const char *s = ev->version ? ev->version : "1";
            set_str(v, s, strlen(s));
        } else if (strcmp(name, "source") == 0) {
            const char *s = ev->source ? ev->source : "";
            set_str(v, s, strlen(s));
        } else if (strcmp(name, "key") == 0) {
            set_str(v, ev->key_len ? (const char *)ev->key : "", ev->key_len);
        } else { /* payload: list<u8> lowered from the bytes as they are */
            v->bytes = true;
            v->str.p = ev->payload_len ? (const char *)ev->payload : "";
            v->str.len = (uint32_t)ev->payload_len;
        }
    }
    out->kind = CM_RECORD;
    out->agg.v = fields;
    out->agg.n = rec->n;
    return KILN_OK;
}

/* result<_, handler-error> into `ans`. */
static void read_answer(const cm_type *rt, const cm_val *r, faas_answer *ans)
{
    memset(ans, 0, sizeof(*ans));
    if (r->var.index == 0) {
        ans->ok = true;
        return;
    }
    const cm_type *ht = rt->err;
    const cm_val *e = r->var.payload;
    if (e == NULL || e->var.index >= ht->n) { /* lifting checked it; defensive */
        snprintf(ans->kind, sizeof(ans->kind), "error");
        return;
    }
    const cm_field *c = &ht->f[e->var.index];
    snprintf(ans->kind, sizeof(ans->kind), "%s", c->name);
    const cm_val *p = e->var.payload;
    if (p == NULL || c->type == NULL)
        return;
    if (p->kind == CM_STRING)
        snprintf(ans->text, sizeof(ans->text), "%.*s", (int)p->str.len, p->str.p);
    else if (p->kind == CM_ENUM && c->type->kind == CM_ENUM && p->var.index < c->type->n)
        snprintf(ans->text, sizeof(ans->text), "%s", c->type->f[p->var.index].name);
}

static void log_output(const kiln_function *fn, kiln_wasi *wasi)
{
    for (int fd = 1; fd <= 2; fd++) {
        size_t n;
        const uint8_t *d = kiln_wasi_output(wasi, fd, &n, NULL);
        if (n > 0)
            cgi_log_lines(fn->name, d, n);
    }
}

/* Deliver `ev` to a fresh instance. KILN_OK with *ans (ok or the
 * handler-error) when handle returned; otherwise the trap, timeout, exit or
 * setup error. */
static int faas_call(const kiln_function *fn, const comp_state *s, const kiln_event *ev,
                     faas_answer *ans, kiln_err *err)
{
    const cm_type *ft = s->entry->type;
    kiln_wasi *wasi = NULL;
    cm_inst *ci = NULL;
    cm_host host;
    cm_arena *arena = cm_arena_new();
    if (arena == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fn->name);
    cm_val arg;
    int rc = build_event(fn, ft->f[0].type, arena, ev, &arg, err);
    const char **envp = NULL;
    if (rc == KILN_OK && fn->n_env > 0) {
        /* the function's environment, as NAME=VALUE strings in the arena */
        envp = cm_arena_alloc(arena, fn->n_env * sizeof(*envp));
        for (size_t i = 0; envp != NULL && i < fn->n_env; i++) {
            size_t l = strlen(fn->env[i].name) + strlen(fn->env[i].value) + 2;
            char *e = cm_arena_alloc(arena, l);
            if (e == NULL) {
                envp = NULL;
                break;
            }
            snprintf(e, l, "%s=%s", fn->env[i].name, fn->env[i].value);
            envp[i] = e;
        }
        if (envp == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "function '%s': out of memory", fn->name);
    }
    if (rc == KILN_OK) {
        kiln_wasi_config wc;
        memset(&wc, 0, sizeof(wc));
        const char *argv[1] = {fn->name};
        wc.argv = argv;
        wc.argc = 1;
        wc.env = envp;
        wc.envc = envp ? fn->n_env : 0;
        wc.preopens = s->preopens;
        wc.npreopens = s->n_preopens;
        wc.stdio[0].kind = KILN_WASI_STDIO_NULL;
        wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
        wc.stdio[1].cap = FAAS_OUTPUT_CAP;
        wc.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
        wc.stdio[2].cap = FAAS_OUTPUT_CAP;
        rc = kiln_wasi_new(&wc, &wasi, err);
    }
    if (rc == KILN_OK)
        rc = comp_instantiate(fn, s, wasi, &host, &ci, err);
    cm_val result;
    memset(&result, 0, sizeof(result));
    if (rc == KILN_OK)
        rc = cm_inst_call(ci, s->entry, &arg, arena, &result, err);
    if (rc == KILN_OK) {
        read_answer(ft->elem, &result, ans);
    } else if (rc == KILN_EEXIT) {
        int code = cm_inst_exit_code(ci);
        kiln_err_set(err, KILN_EEXIT, "function '%s' exited (code %d) instead of returning from "
                     "handle", fn->name, code);
        err->trap = KILN_TRAP_EXIT;
        err->exit_code = code;
    } else if (rc == KILN_ETRAP) {
        comp_explain_oom(ci, s, fn, err);
    }
    if (wasi != NULL)
        log_output(fn, wasi);
    cm_inst_free(ci);
    kiln_wasi_free(wasi);
    cm_arena_free(arena);
    return rc;
}

int comp_faas_handle(const kiln_function *fn, const comp_state *s, const kiln_request *req,
                     kiln_response *resp, kiln_err *err)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    kiln_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = KILN_EVENT_MESSAGE;
    ev.timestamp_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    ev.version = "1";
    ev.source = "http";
    ev.key = (const uint8_t *)req->path;
    ev.key_len = strlen(req->path);
    ev.payload = req->body;
    ev.payload_len = req->body_len;
    ev.id = 0;
    ev.attempt = 1;
    char msg[800];
    if (!utf8_valid(ev.key, ev.key_len)) {
        snprintf(msg, sizeof(msg), "the request path is not valid UTF-8; function '%s' takes it "
                 "as its event key (a WIT string)\n", fn->name);
        resp->status = 400;
        kiln_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
        return kiln_response_append(resp, msg, strlen(msg));
    }
    faas_answer ans;
    int rc = faas_call(fn, s, &ev, &ans, err);
    if (rc != KILN_OK)
        return rc;
    if (ans.ok) {
        resp->status = 204;
        return KILN_OK;
    }
    if (strcmp(ans.kind, "failed") == 0 || (strcmp(ans.kind, "invalid") != 0 &&
                                            strcmp(ans.kind, "unsupported") != 0))
        return kiln_err_set(err, KILN_EGUEST, "function '%s': the handler %s: %s", fn->name,
                            ans.kind, ans.text);
    if (strcmp(ans.kind, "unsupported") == 0)
        snprintf(msg, sizeof(msg), "unsupported event type '%s'\n", ans.text);
    else
        snprintf(msg, sizeof(msg), "%s\n", ans.text);
    resp->status = 400;
    kiln_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
    kiln_response_add_header(resp, "X-Kiln-Handler-Error", ans.kind);
    return kiln_response_append(resp, msg, strlen(msg));
}

int comp_faas_event(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                    const kiln_event *ev, kiln_err *err)
{
    (void)pre;
    const comp_state *s = state;
    guest_log_budget b;
    guest_log_begin(&b, fn->name, &fn->log);
    faas_answer ans;
    int rc = faas_call(fn, s, ev, &ans, err);
    guest_log_end(&b);
    if (rc != KILN_OK || ans.ok)
        return rc;
    return kiln_err_set(err, KILN_EGUEST, "function '%s': the handler answered %s(%s%s%s)",
                        fn->name, ans.kind, strcmp(ans.kind, "unsupported") ? "\"" : "", ans.text,
                        strcmp(ans.kind, "unsupported") ? "\"" : "");
}
