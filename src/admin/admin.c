/*
 * admin.c - the admin API: a libmicrohttpd daemon of its own (thread per
 * connection, at most ADMIN_MAX_CONNECTIONS, so a deploy waiting for the
 * server holds only its own thread), bearer-token auth, and JSON handlers
 * over the registry. Handlers never touch the public server's state: they
 * change the registry and the managed directory, nudge the server to rescan,
 * and read back what it serves through the backend callbacks.
 */
#include "admin/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "admin/registry.h"
#include "base/alloc.h"
#include "base/metrics.h"

#define ADMIN_MAX_CONNECTIONS 16
#define ADMIN_MAX_SMALL_BODY ((size_t)1 << 20) /* bodies of requests other than PUT */
#define ADMIN_CONN_MEMORY ((size_t)512 << 10)  /* request head incl. X-Kiln-Settings */
#define ADMIN_POLL_MS 50

struct admin_server {
    reg_registry *reg;
    struct MHD_Daemon *daemon;
    int listen_fd;
    char url[128];
    char token[256];
    admin_backend backend;
    bool has_backend;
    atomic_bool stopping;
    time_t started_at;
};

typedef struct admin_req {
    bool first_done;
    bool refused;      /* answered before the body (401, 413): drop what follows */
    uint8_t *body;
    size_t len, cap, limit;
    size_t dropped;    /* bytes past the limit (chunked uploads) */
    bool too_big;
} admin_req;

/* ---- responses ---------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        text = strdup("{\"error\":\"out of memory building the answer\"}");
    size_t n = text ? strlen(text) : 0;
    char *withnl = text ? realloc(text, n + 2) : NULL;
    if (withnl == NULL) {
        free(text);
        return MHD_NO;
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n + 1, withnl, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(withnl);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"kiln-admin\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        /* The caller put the Allow value in the body's "allow". */
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Replace bytes jansson would refuse (non-UTF-8) and control bytes. */
static json_t *jstr(const char *s)
{
    char buf[1024];
    size_t i = 0;
    for (; s && *s && i + 1 < sizeof(buf); s++)
        buf[i++] = ((unsigned char)*s < 0x20 && *s != '\n') || (unsigned char)*s >= 0x7f ? '?' : *s;
    buf[i] = '\0';
    return json_string(buf);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt,
                                   ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt,
                                   ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "error", jstr(msg));
    return reply(c, status, o);
}

static unsigned status_of(int rc)
{
    switch (rc) {
    case KILN_EINVAL:
    case KILN_ECONFIG:
        return MHD_HTTP_BAD_REQUEST;
    case KILN_ENOENT:
        return MHD_HTTP_NOT_FOUND;
    case KILN_EMODULE:
    case KILN_EUNSUPPORTED:
    case KILN_ELIMIT:
        return MHD_HTTP_UNPROCESSABLE_CONTENT;
    case KILN_ECANCELED:
        return MHD_HTTP_CONFLICT;
    default:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* ---- what the server serves --------------------------------------------- */

static void fn_status(admin_server *a, const char *name, admin_fn_status *st)
{
    memset(st, 0, sizeof(*st));
    if (a->has_backend && !atomic_load(&a->stopping))
        a->backend.fn_status(a->backend.ctx, name, st);
}

/*
 * The live view of one function next to its registry record: status is
 *   serving     the active version answers requests
 *   updating    an older version answers while the active one loads
 *   compiling   the active version's first tier is being compiled
 *   failed      the server refused the active version (error says why)
 *   unavailable the server has it but cannot serve it (error)
 *   pending     the server has not picked it up yet
 *   unknown     no server attached
 */
static void add_live(admin_server *a, json_t *o, const char *name, const char *active_sha)
{
    if (!a->has_backend) {
        json_object_set_new(o, "status", json_string("unknown"));
        return;
    }
    admin_fn_status st;
    fn_status(a, name, &st);
    bool mine = active_sha != NULL && strcmp(st.module_hash, active_sha) == 0;
    const char *s;
    if (!st.found)
        s = "pending";
    else if (st.available && mine)
        s = "serving";
    else if (st.compiling)
        s = "compiling";
    else if (!mine && st.error[0])
        s = "failed";
    else if (st.available)
        s = "updating";
    else
        s = st.error[0] ? "unavailable" : "pending";
    json_object_set_new(o, "status", json_string(s));
    json_object_set_new(o, "tier", st.tier[0] ? json_string(st.tier) : json_null());
    json_object_set_new(o, "abi", st.abi[0] ? json_string(st.abi) : json_null());
    json_object_set_new(o, "error", st.error[0] ? jstr(st.error) : json_null());
    json_object_set_new(o, "n_routes", json_integer(st.n_routes));
    json_object_set_new(o, "snapshot", st.snapshot[0] ? json_string(st.snapshot) : json_null());
    int64_t sv = st.module_hash[0] ? reg_version_of_hash(a->reg, name, st.module_hash) : 0;
    json_object_set_new(o, "serving_version", sv ? json_integer(sv) : json_null());
}

typedef struct outcome {
    const char *status; /* serving, failed, pending, superseded, unknown */
    admin_fn_status st;
} outcome;

/*
 * Wait (at most wait_s seconds) until the server serves `sha` under `name`
 * or refuses it. `before` is the status read before the managed directory
 * changed: a refusal of the new module shows as a new error while the old
 * hash keeps serving.
 */
static void wait_for(admin_server *a, const char *name, int64_t version, const char *sha,
                     const admin_fn_status *before, int wait_s, outcome *out)
{
    memset(out, 0, sizeof(*out));
    if (!a->has_backend) {
        out->status = "unknown";
        return;
    }
    a->backend.rescan(a->backend.ctx);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (reg_active(a->reg, name) != version) {
            out->status = "superseded";
            return;
        }
        fn_status(a, name, &out->st);
        const admin_fn_status *st = &out->st;
        if (st->found && strcmp(st->module_hash, sha) == 0) {
            if (st->available) {
                out->status = "serving";
                return;
            }
            if (!st->compiling && st->error[0]) {
                out->status = "failed";
                return;
            }
        } else if (st->error[0] && strcmp(st->error, before->error) != 0) {
            out->status = "failed";
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (atomic_load(&a->stopping) || el >= wait_s) {
            out->status = "pending";
            return;
        }
        struct timespec d = {0, ADMIN_POLL_MS * 1000000L};
        nanosleep(&d, NULL);
    }
}

/* After a deploy or rollback changed the managed directory: wait, record,
 * and revert a version the server refused. Builds the answer. */
static enum MHD_Result settle(admin_server *a, struct MHD_Connection *c, reg_version *v,
                              const admin_fn_status *before, int wait_s, unsigned ok_status)
{
    outcome oc;
    if (wait_s > 0) {
        wait_for(a, v->name, v->version, v->sha256, before, wait_s, &oc);
    } else {
        memset(&oc, 0, sizeof(oc));
        oc.status = "pending";
        if (a->has_backend)
            a->backend.rescan(a->backend.ctx);
    }
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(v->name));
    json_object_set_new(o, "version", json_integer(v->version));
    json_object_set_new(o, "sha256", json_string(v->sha256));
    json_object_set_new(o, "size", json_integer((json_int_t)v->size));
    json_t *settings = json_loads(v->settings ? v->settings : "{}", 0, NULL);
    json_object_set_new(o, "settings", settings ? settings : json_object());
    json_object_set_new(o, "previous_version", v->previous ? json_integer(v->previous) : json_null());
    json_object_set_new(o, "status", json_string(oc.status));
    json_object_set_new(o, "tier", oc.st.tier[0] ? json_string(oc.st.tier) : json_null());
    if (strcmp(oc.status, "serving") == 0) {
        reg_set_status(a->reg, v->name, v->version, "serving", NULL);
        json_object_set_new(o, "active_version", json_integer(v->version));
        return reply(c, ok_status, o);
    }
    if (strcmp(oc.status, "failed") == 0) {
        /* A version the server refused never takes traffic, now or after a
         * restart: the previous one becomes active again. */
        kiln_err e;
        memset(&e, 0, sizeof(e));
        int rc = reg_revert(a->reg, v->name, v->version, v->previous, oc.st.error, &e);
        if (rc == KILN_OK && a->has_backend)
            a->backend.rescan(a->backend.ctx);
        char msg[1024];
        if (v->previous)
            snprintf(msg, sizeof(msg), "version %lld of '%s' was refused by the server: %s; "
                     "version %lld keeps serving", (long long)v->version, v->name, oc.st.error,
                     (long long)v->previous);
        else
            snprintf(msg, sizeof(msg), "version %lld of '%s' was refused by the server: %s; "
                     "fix the module or its settings and deploy again", (long long)v->version,
                     v->name, oc.st.error);
        json_object_set_new(o, "error", jstr(msg));
        json_object_set_new(o, "active_version",
                            rc == KILN_OK ? (v->previous ? json_integer(v->previous) : json_null())
                                          : json_integer(reg_active(a->reg, v->name)));
        return reply(c, MHD_HTTP_UNPROCESSABLE_CONTENT, o);
    }
    json_object_set_new(o, "active_version", json_integer(reg_active(a->reg, v->name)));
    if (strcmp(oc.status, "pending") == 0 && wait_s > 0)
        json_object_set_new(o, "note", json_string("the server had not picked up this version "
                                                   "when the wait ended; GET /functions/NAME "
                                                   "shows its status"));
    return reply(c, ok_status, o);
}

/* ---- handlers ------------------------------------------------------------ */

static int wait_param(struct MHD_Connection *c, int *wait_s)
{
    const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
    *wait_s = ADMIN_DEFAULT_WAIT_S;
    if (w == NULL)
        return 0;
    char *end;
    long n = strtol(w, &end, 10);
    if (*w == '\0' || *end != '\0' || n < 0 || n > ADMIN_MAX_WAIT_S)
        return -1;
    *wait_s = (int)n;
    return 0;
}

typedef struct query_routes {
    json_t *routes;
} query_routes;

static enum MHD_Result collect_route(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    query_routes *q = cls;
    (void)kind;
    if (strcmp(key, "route") == 0 && value != NULL && *value) {
        if (q->routes == NULL)
            q->routes = json_array();
        json_array_append_new(q->routes, jstr(value));
    }
    return MHD_YES;
}

static enum MHD_Result h_put(admin_server *a, struct MHD_Connection *c, const char *name,
                             admin_req *rq)
{
    int wait_s;
    if (wait_param(c, &wait_s) != 0)
        return reply_error(c, 400, "?wait=N: seconds from 0 to %d", ADMIN_MAX_WAIT_S);
    if (rq->len == 0)
        return reply_error(c, 400, "no module: send the .wasm bytes as the request body "
                                   "(curl -T module.wasm ...)");
    /* Settings: the X-Kiln-Settings JSON object, then ?abi=, ?export=, ?route= on top. */
    const char *hs = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Kiln-Settings");
    json_t *s;
    if (hs != NULL && *hs) {
        json_error_t je;
        s = json_loads(hs, 0, &je);
        if (s == NULL || !json_is_object(s)) {
            json_decref(s);
            return reply_error(c, 400, "X-Kiln-Settings: expected a JSON object of function keys "
                                       "(as in kiln.yaml): %s", s ? "not an object" : je.text);
        }
    } else {
        s = json_object();
    }
    static const char *const simple[] = {"abi", "export"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, simple[i]);
        if (v != NULL && *v)
            json_object_set_new(s, simple[i], jstr(v));
    }
    query_routes q = {NULL};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_route, &q);
    if (q.routes != NULL)
        json_object_set_new(s, "routes", q.routes);
    char *settings = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    if (settings == NULL)
        return reply_error(c, 500, "out of memory reading the settings");

    admin_fn_status before;
    fn_status(a, name, &before);
    reg_version v;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = reg_deploy(a->reg, name, rq->body, rq->len, settings, &v, &e);
    free(settings);
    if (rc != KILN_OK) {
        const char *hint = "";
        if (rc == KILN_EMODULE || rc == KILN_EUNSUPPORTED || rc == KILN_ELIMIT)
            hint = "; nothing was changed: the previous version keeps serving";
        else if (rc == KILN_ECONFIG)
            hint = "; the settings are a function of kiln.yaml (README \"Configuration\")";
        return reply_error(c, status_of(rc), "%s%s", e.msg, hint);
    }
    fprintf(stderr, "kiln serve: admin: deployed %s version %lld (%s)\n", name,
            (long long)v.version, v.sha256);
    enum MHD_Result r = settle(a, c, &v, &before, wait_s, MHD_HTTP_CREATED);
    reg_version_fini(&v);
    return r;
}

static enum MHD_Result h_rollback(admin_server *a, struct MHD_Connection *c, const char *name,
                                  admin_req *rq)
{
    int wait_s;
    if (wait_param(c, &wait_s) != 0)
        return reply_error(c, 400, "?wait=N: seconds from 0 to %d", ADMIN_MAX_WAIT_S);
    int64_t version = 0;
    const char *qv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "version");
    if (qv != NULL)
        version = strtoll(qv, NULL, 10);
    if (rq->len > 0) {
        json_error_t je;
        json_t *b = json_loadb((const char *)rq->body, rq->len, 0, &je);
        json_t *jv = b ? json_object_get(b, "version") : NULL;
        if (b == NULL || !json_is_object(b) || (jv != NULL && !json_is_integer(jv))) {
            json_decref(b);
            return reply_error(c, 400, "expected an empty body or {\"version\": N}");
        }
        if (jv != NULL)
            version = json_integer_value(jv);
        json_decref(b);
    }
    if (version < 0)
        return reply_error(c, 400, "version must be a positive number");
    admin_fn_status before;
    fn_status(a, name, &before);
    reg_version v;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = reg_rollback(a->reg, name, version, &v, &e);
    if (rc != KILN_OK)
        return reply_error(c, rc == KILN_EINVAL ? MHD_HTTP_CONFLICT : status_of(rc), "%s", e.msg);
    fprintf(stderr, "kiln serve: admin: %s rolled back to version %lld\n", name,
            (long long)v.version);
    enum MHD_Result r = settle(a, c, &v, &before, wait_s, MHD_HTTP_OK);
    reg_version_fini(&v);
    return r;
}

static enum MHD_Result h_delete(admin_server *a, struct MHD_Connection *c, const char *name)
{
    int64_t n = 0;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc = reg_delete(a->reg, name, &n, &e);
    if (rc != KILN_OK)
        return reply_error(c, status_of(rc), "%s%s", e.msg,
                           rc == KILN_ENOENT ? "; GET /functions lists what is deployed" : "");
    if (a->has_backend)
        a->backend.rescan(a->backend.ctx);
    fprintf(stderr, "kiln serve: admin: undeployed %s\n", name);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "deleted", json_true());
    json_object_set_new(o, "versions_kept", json_integer(n));
    return reply(c, MHD_HTTP_OK, o);
}

static json_t *routes_of(json_t *settings)
{
    json_t *r = json_object_get(settings, "routes");
    return r ? json_incref(r) : json_array();
}

static enum MHD_Result h_list(admin_server *a, struct MHD_Connection *c)
{
    const char *all = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "all");
    json_t *arr = reg_list(a->reg, all != NULL && strcmp(all, "0") != 0);
    if (arr == NULL)
        return reply_error(c, 500, "cannot read the registry");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        json_object_set_new(o, "routes", routes_of(json_object_get(o, "settings")));
        const char *sha = json_string_value(json_object_get(o, "sha256"));
        if (sha != NULL)
            add_live(a, o, json_string_value(json_object_get(o, "name")), sha);
        else
            json_object_set_new(o, "status", json_string("undeployed"));
    }
    json_t *res = json_object();
    json_object_set_new(res, "functions", arr);
    return reply(c, MHD_HTTP_OK, res);
}

static enum MHD_Result h_get(admin_server *a, struct MHD_Connection *c, const char *name)
{
    bool found;
    json_t *o = reg_get(a->reg, name, &found);
    if (!found)
        return reply_error(c, 404, "no function '%s' was ever deployed; GET /functions lists "
                                   "what is deployed", name);
    if (o == NULL)
        return reply_error(c, 500, "cannot read the registry");
    json_int_t active = json_integer_value(json_object_get(o, "active_version"));
    const char *sha = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "versions"), i, v) {
        if (json_integer_value(json_object_get(v, "version")) == active) {
            sha = json_string_value(json_object_get(v, "sha256"));
            json_object_set(o, "settings", json_object_get(v, "settings"));
            json_object_set_new(o, "routes", routes_of(json_object_get(v, "settings")));
            json_object_set_new(o, "sha256", json_string(sha));
        }
    }
    if (active > 0)
        add_live(a, o, name, sha);
    else
        json_object_set_new(o, "status", json_string("undeployed"));
    /* "last_error": the newest error recorded for any version. */
    json_array_foreach(json_object_get(o, "versions"), i, v) {
        json_t *e = json_object_get(v, "error");
        if (json_is_string(e)) {
            json_object_set(o, "last_error", e);
            break;
        }
    }
    return reply(c, MHD_HTTP_OK, o);
}

static enum MHD_Result h_status(admin_server *a, struct MHD_Connection *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "version", json_string(KILN_VERSION));
    json_object_set_new(o, "uptime_s", json_integer((json_int_t)(time(NULL) - a->started_at)));
    json_object_set_new(o, "managed_dir", json_string(reg_managed_dir(a->reg)));
    json_t *deployed = reg_list(a->reg, false);
    json_object_set_new(o, "deployed", json_integer(deployed ? (json_int_t)json_array_size(deployed) : 0));
    json_decref(deployed);
    json_object_set_new(o, "server_attached", json_boolean(a->has_backend));
    json_t *fns = json_array();
    char **names = NULL;
    size_t n = a->has_backend && !atomic_load(&a->stopping)
                   ? a->backend.fn_names(a->backend.ctx, &names)
                   : 0;
    size_t available = 0;
    for (size_t i = 0; i < n; i++) {
        admin_fn_status st;
        fn_status(a, names[i], &st);
        json_t *f = json_object();
        json_object_set_new(f, "name", jstr(names[i]));
        json_object_set_new(f, "available", json_boolean(st.available));
        json_object_set_new(f, "compiling", json_boolean(st.compiling));
        json_object_set_new(f, "tier", st.tier[0] ? json_string(st.tier) : json_null());
        json_object_set_new(f, "abi", st.abi[0] ? json_string(st.abi) : json_null());
        json_object_set_new(f, "error", st.error[0] ? jstr(st.error) : json_null());
        json_object_set_new(f, "n_routes", json_integer(st.n_routes));
        json_array_append_new(fns, f);
        available += st.available;
        free(names[i]);
    }
    free(names);
    json_object_set_new(o, "functions", fns);
    json_object_set_new(o, "available", json_integer((json_int_t)available));
    return reply(c, MHD_HTTP_OK, o);
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *c, const char *allow)
{
    json_t *o = json_object();
    char msg[200];
    snprintf(msg, sizeof(msg), "method not allowed here; use %s", allow);
    json_object_set_new(o, "error", json_string(msg));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return ret;
}

/* GET /metrics: Kiln's metrics registry (base/metrics.h) as Prometheus text. */
static enum MHD_Result h_metrics(struct MHD_Connection *c)
{
    size_t n = 0;
    char *text = metrics_prometheus(&n);
    if (text == NULL)
        return reply_error(c, 500, "out of memory rendering the metrics");
    struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_COPY);
    kiln_free(text);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* GET /events/dead: the dead-lettered storage events, from the server. */
static enum MHD_Result h_events_dead(admin_server *a, struct MHD_Connection *c)
{
    if (!a->has_backend || a->backend.events_dead == NULL)
        return reply_error(c, 404, "no server: storage events are served by kiln serve");
    char *text = a->backend.events_dead(a->backend.ctx);
    if (text == NULL)
        return reply_error(c, 500, "out of memory listing the dead letters");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result dispatch(admin_server *a, struct MHD_Connection *c, const char *url,
                                const char *method, admin_req *rq)
{
    if (rq->too_big)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body over %zu bytes; modules "
                           "are limited to %zu bytes", rq->limit, ADMIN_MAX_UPLOAD);
    if (strcmp(url, "/status") == 0)
        return strcmp(method, "GET") == 0 ? h_status(a, c) : method_not_allowed(c, "GET");
    if (strcmp(url, "/metrics") == 0 || strcmp(url, "/v1/metrics") == 0)
        return strcmp(method, "GET") == 0 ? h_metrics(c) : method_not_allowed(c, "GET");
    if (strcmp(url, "/events/dead") == 0 || strcmp(url, "/v1/events/dead") == 0)
        return strcmp(method, "GET") == 0 ? h_events_dead(a, c) : method_not_allowed(c, "GET");
    if (strcmp(url, "/functions") == 0 || strcmp(url, "/functions/") == 0)
        return strcmp(method, "GET") == 0 ? h_list(a, c) : method_not_allowed(c, "GET");
    if (strncmp(url, "/functions/", 11) == 0) {
        char name[REG_MAX_NAME + 2];
        const char *p = url + 11, *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n > REG_MAX_NAME)
            return reply_error(c, 400, "bad function name: 1 to %d letters, digits, '_', '-', "
                                       "'.'", REG_MAX_NAME);
        memcpy(name, p, n);
        name[n] = '\0';
        if (!reg_name_ok(name))
            return reply_error(c, 400, "bad function name '%s': use letters, digits, '_', '-', "
                                       "'.', not starting with '.'", name);
        if (slash == NULL) {
            if (strcmp(method, "GET") == 0)
                return h_get(a, c, name);
            if (strcmp(method, "PUT") == 0)
                return h_put(a, c, name, rq);
            if (strcmp(method, "DELETE") == 0)
                return h_delete(a, c, name);
            return method_not_allowed(c, "GET, PUT, DELETE");
        }
        if (strcmp(slash, "/rollback") == 0)
            return strcmp(method, "POST") == 0 ? h_rollback(a, c, name, rq)
                                               : method_not_allowed(c, "POST");
    }
    return reply_error(c, 404, "no endpoint %s %s; the admin API has /functions, "
                               "/functions/NAME, /functions/NAME/rollback, /status, /metrics, "
                               "/events/dead, /healthz "
                               "(README \"Deploying\")", method, url);
}

static bool authorized(admin_server *a, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    return admin_token_equal(a->token, h);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    admin_server *a = cls;
    admin_req *rq = *con_cls;
    (void)version;
    if (rq == NULL) {
        rq = kiln_calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        rq->limit = strcmp(method, "PUT") == 0 ? ADMIN_MAX_UPLOAD : ADMIN_MAX_SMALL_BODY;
        if (strcmp(url, "/healthz") == 0)
            return MHD_YES; /* unauthenticated; answered at the end */
        if (!authorized(a, c)) {
            rq->refused = true;
            const char *h =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
            return reply_error(c, MHD_HTTP_UNAUTHORIZED,
                               h ? "wrong admin token; use the token in $KILN_HOME/admin.token "
                                   "or $KILN_ADMIN_TOKEN of the server"
                                 : "missing admin token: send 'Authorization: Bearer TOKEN' "
                                   "(the token is in $KILN_HOME/admin.token of the server)");
        }
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > rq->limit) {
            rq->refused = true;
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body of %s bytes is over "
                               "the limit of %zu bytes", cl, rq->limit);
        }
        return MHD_YES;
    }
    if (rq->refused) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big || rq->len + n > rq->limit) {
            /* A chunked upload past the limit: drop it, answer 413 at its end
             * (MHD cannot answer mid-upload); give up on absurd ones. */
            rq->too_big = true;
            rq->dropped += n;
            return rq->dropped > ((size_t)1 << 20) ? MHD_NO : MHD_YES;
        }
        if (rq->len + n > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 64 << 10;
            while (cap < rq->len + n)
                cap *= 2;
            if (cap > rq->limit)
                cap = rq->limit;
            uint8_t *b = kiln_realloc(rq->body, cap);
            if (b == NULL)
                return MHD_NO;
            rq->body = b;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_true());
        return reply(c, MHD_HTTP_OK, o);
    }
    return dispatch(a, c, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    admin_req *rq = *con_cls;
    if (rq != NULL) {
        kiln_free(rq->body);
        kiln_free(rq);
        *con_cls = NULL;
    }
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    fprintf(stderr, "kiln serve: admin API: %s\n", buf);
}

/* ---- life cycle ---------------------------------------------------------- */

static int bind_listener(const char *spec, int *fd_out, char *url, size_t url_cap, kiln_err *err)
{
    char host[256] = "", port[16] = "";
    const char *colon;
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
            return kiln_err_set(err, KILN_ECONFIG, "--admin-listen '%s': expected ADDR:PORT, "
                                "[V6ADDR]:PORT or off", spec);
        snprintf(host, sizeof(host), "%.*s", (int)(rb - spec - 1), spec + 1);
        snprintf(port, sizeof(port), "%s", rb + 2);
    } else if ((colon = strrchr(spec, ':')) != NULL && (size_t)(colon - spec) < sizeof(host)) {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
        snprintf(port, sizeof(port), "%s", colon + 1);
    } else {
        return kiln_err_set(err, KILN_ECONFIG, "--admin-listen '%s': expected ADDR:PORT, "
                            "[V6ADDR]:PORT or off", spec);
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    if (port[0] == '\0' || getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 ||
        res == NULL)
        return kiln_err_set(err, KILN_ECONFIG, "--admin-listen '%s': expected a numeric address "
                            "and port, e.g. 127.0.0.1:8081", spec);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, e = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0)
        e = errno;
    freeaddrinfo(res);
    if (e != 0) {
        if (fd >= 0)
            close(fd);
        return kiln_err_set(err, KILN_EIO, "admin API: cannot listen on %s: %s; choose another "
                            "address with --admin-listen ADDR:PORT (or --admin-listen off)", spec,
                            strerror(e));
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
            p = ntohs(s6->sin6_port);
            snprintf(url, url_cap, "http://[%s]:%u", a, p);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
            p = ntohs(s4->sin_port);
            snprintf(url, url_cap, "http://%s:%u", a, p);
        }
    }
    *fd_out = fd;
    return KILN_OK;
}

int admin_create(const admin_options *o, admin_server **out, kiln_err *err)
{
    *out = NULL;
    char home[PATH_MAX];
    if (o->home != NULL)
        snprintf(home, sizeof(home), "%s", o->home);
    else if (admin_home(home, sizeof(home)) != KILN_OK)
        return kiln_err_set(err, KILN_ECONFIG, "no state directory for deployed functions: set "
                            "KILN_HOME or HOME");
    admin_server *a = kiln_calloc(1, sizeof(*a));
    if (a == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    a->listen_fd = -1;
    a->started_at = time(NULL);
    int rc = reg_open(home, &a->reg, err);
    if (rc == KILN_OK)
        rc = reg_reconcile(a->reg, err);
    const char *listen = o->listen ? o->listen : ADMIN_DEFAULT_LISTEN;
    bool off = strcmp(listen, "off") == 0;
    char source[PATH_MAX + 32] = "";
    if (rc == KILN_OK && !off)
        rc = admin_token_load(home, o->token, a->token, sizeof(a->token), source, sizeof(source),
                              err);
    if (rc == KILN_OK && !off)
        rc = bind_listener(listen, &a->listen_fd, a->url, sizeof(a->url), err);
    if (rc != KILN_OK) {
        admin_destroy(a);
        return rc;
    }
    if (off)
        fprintf(stderr, "kiln serve: admin API off; deployed functions in %s\n",
                reg_managed_dir(a->reg));
    else
        fprintf(stderr, "kiln serve: admin API on %s (token: %s); deployed functions in %s\n",
                a->url, source, reg_managed_dir(a->reg));
    *out = a;
    return KILN_OK;
}

const char *admin_managed_dir(const admin_server *a)
{
    return reg_managed_dir(a->reg);
}

int admin_start(admin_server *a, const admin_backend *b, kiln_err *err)
{
    if (b != NULL) {
        a->backend = *b;
        a->has_backend = true;
    }
    if (a->listen_fd < 0)
        return KILN_OK; /* --admin-listen off */
    atomic_store(&a->stopping, false);
    a->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, a,
        MHD_OPTION_LISTEN_SOCKET, a->listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        ADMIN_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
    if (a->daemon == NULL)
        return kiln_err_set(err, KILN_EIO, "admin API: libmicrohttpd could not start on %s",
                            a->url);
    a->listen_fd = -1; /* the daemon owns and closes it */
    return KILN_OK;
}

void admin_stop(admin_server *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->stopping, true);
    if (a->daemon != NULL) {
        MHD_stop_daemon(a->daemon); /* joins every connection thread */
        a->daemon = NULL;
    }
    a->has_backend = false;
}

void admin_destroy(admin_server *a)
{
    if (a == NULL)
        return;
    admin_stop(a);
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    reg_close(a->reg);
    memset(a->token, 0, sizeof(a->token));
    kiln_free(a);
}
