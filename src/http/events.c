/*
 * events.c - the server's side of storage events: which functions of a
 * route table subscribe (cfg `events:`), turned into the dispatcher's
 * targets (src/event/event.h) with the store and namespace of their grant,
 * the path their JSON event requests go to, and whether they can run now.
 * Called on the main thread at start and after every table swap.
 */
#include <jansson.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json_raw.h"
#include "base/utf8.h"
#include "event/event.h"
#include "http/http_int.h"

/* What the dispatcher's targets point into: the table, plus grant sets made
 * here for subscribers that cannot run yet (still compiling, or failed: the
 * table gives those none), so that their events are queued meanwhile. */
typedef struct ev_owner {
    http_table *t;
    kiln_kv_grants **extra;
    size_t n_extra;
} ev_owner;

static void owner_retain(void *o)
{
    (void)o; /* made with the table's reference; released once */
}

static void owner_release(void *arg)
{
    ev_owner *o = arg;
    for (size_t i = 0; i < o->n_extra; i++)
        kiln_kv_grants_free(o->extra[i]);
    kiln_free(o->extra);
    http_table_release(o->t);
    kiln_free(o);
}

/* The path of a function's first route if it is a literal, else "/". */
static const char *event_path(const http_table *t, const http_fn *f)
{
    for (size_t i = 0; i < t->n_routes; i++) {
        const http_route *r = t->routes[i];
        if (r->backend == f && r->pattern != NULL && r->pattern[0] == '/' &&
            strpbrk(r->pattern, ":*{") == NULL)
            return r->pattern;
    }
    return "/";
}

int http_events_update(ev_dispatcher **d, const ev_host *host, http_table *t)
{
    ev_target *targets = kiln_calloc(t->n_fns ? t->n_fns : 1, sizeof(*targets));
    ev_owner *o = kiln_calloc(1, sizeof(*o));
    if (o != NULL)
        o->extra = kiln_calloc(t->n_fns ? t->n_fns : 1, sizeof(*o->extra));
    if (targets == NULL || o == NULL || o->extra == NULL) {
        kiln_free(targets);
        if (o != NULL)
            kiln_free(o->extra);
        kiln_free(o);
        http_log("kiln serve: out of memory: storage events are not delivered");
        return KILN_ENOMEM;
    }
    http_table_retain(t);
    o->t = t;
    size_t n = 0;
    for (size_t i = 0; i < t->n_fns; i++) {
        const http_fn *f = t->fns[i];
        if (f->mod == NULL || f->upstream != NULL)
            continue;
        const cfg_function *cf = f->mod->cf;
        const cfg_events *e = cf->events;
        /* One target per configured function (directory mode may make
         * several route targets of one module: the first named like it). */
        if (e == NULL || strcmp(f->fn.name, cf->fn.name) != 0)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(targets[j].fn_name, cf->fn.name) == 0;
        if (dup)
            continue;
        const kiln_kv_grants *g = f->kv;
        if (g == NULL) {
            kiln_err err;
            memset(&err, 0, sizeof(err));
            kiln_kv_grants *mine = NULL;
            if (kiln_kv_grants_new(&t->cfg->kv, cf->fn.name, cf->fn.kv, &mine, &err) != KILN_OK) {
                http_log("kiln serve: function '%s': its events are not queued: %s", cf->fn.name,
                         err.msg);
                continue;
            }
            o->extra[o->n_extra++] = mine;
            g = mine;
        }
        const kiln_kv_ns *ns = kiln_kv_grants_find(g, e->ns, strlen(e->ns));
        if (ns == NULL)
            continue; /* the configuration checked the grant */
        targets[n++] = (ev_target){
            .fn_name = cf->fn.name,
            .ns = ns->store_ns,
            .store = ns->store,
            .types = e->types,
            .retries = e->retries,
            .backoff_ms = e->backoff_ms,
            .max_queue = e->max_queue,
            .abi = f->abi,
            .fn = &f->fn,
            .state = f->state,
            .pre = f->pre,
            .path = event_path(t, f),
            /* Prepared (a core module), or loaded by its ABI (a component:
             * no pre, the module's state). */
            .available = f->status == KILN_OK && f->abi != NULL &&
                         (f->prepared || (f->pre == NULL && f->state != NULL)),
        };
    }
    int rc = KILN_OK;
    if (*d == NULL && n > 0) {
        kiln_err err;
        memset(&err, 0, sizeof(err));
        rc = ev_dispatcher_new(host, d, &err);
        if (rc != KILN_OK)
            http_log("kiln serve: storage events are not delivered: %s", err.msg);
    }
    if (*d != NULL)
        rc = ev_dispatcher_update(*d, targets, n, o, owner_retain, owner_release);
    else
        owner_release(o);
    for (size_t i = 0; i < n; i++)
        http_log("kiln serve: function '%s' receives the events of namespace '%s'%s",
                 targets[i].fn_name, targets[i].ns,
                 targets[i].available ? "" : " (queued until it is available)");
    kiln_free(targets);
    return rc;
}

/* One dead letter as JSON (names as in the JSON event ABI). */
static json_t *dead_json(const kiln_kv_qevent *e)
{
    json_t *o = json_object();
    char *b = kiln_malloc((e->klen > e->plen ? e->klen : e->plen) / 3 * 4 + 8);
    if (o == NULL || b == NULL) {
        json_decref(o);
        kiln_free(b);
        return NULL;
    }
    json_object_set_new(o, "id", json_integer((json_int_t)e->id));
    json_object_set_new(o, "function", json_string(e->fn ? e->fn : ""));
    json_object_set_new(o, "namespace", json_string(e->ns ? e->ns : ""));
    json_object_set_new(o, "event_type", json_string(kiln_event_type_name(e->type)));
    if (utf8_valid(e->key, e->klen)) {
        json_object_set_new(o, "key", json_stringn((const char *)e->key, e->klen));
    } else {
        size_t n = ev_base64(e->key, e->klen, b);
        json_object_set_new(o, "key_base64", json_stringn(b, n));
    }
    size_t n = ev_base64(e->payload, e->plen, b);
    json_object_set_new(o, "payload", json_stringn(b, n));
    json_object_set_new(o, "attempts", json_integer(e->attempts));
    char *cause = e->cause ? json_raw_utf8(e->cause, strlen(e->cause), NULL) : NULL;
    json_object_set_new(o, "cause", json_string(cause ? cause : ""));
    kiln_free(cause);
    json_t *ts = json_object();
    json_object_set_new(ts, "seconds", json_integer(e->ts_ns / 1000000000));
    json_object_set_new(ts, "nanoseconds", json_integer(e->ts_ns % 1000000000));
    json_object_set_new(o, "event_timestamp", ts);
    kiln_free(b);
    return o;
}

char *http_events_dead_json(const http_table *t, size_t max)
{
    json_t *arr = json_array();
    kiln_kv_store **seen = kiln_calloc(t->n_fns ? t->n_fns : 1, sizeof(*seen));
    size_t n_seen = 0;
    if (arr == NULL || seen == NULL) {
        json_decref(arr);
        kiln_free(seen);
        return NULL;
    }
    for (size_t i = 0; i < t->n_fns; i++) {
        const http_fn *f = t->fns[i];
        const cfg_events *e = f->mod ? f->mod->cf->events : NULL;
        const kiln_kv_ns *ns =
            e != NULL && f->kv != NULL ? kiln_kv_grants_find(f->kv, e->ns, strlen(e->ns)) : NULL;
        if (ns == NULL)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n_seen && !dup; j++)
            dup = seen[j] == ns->store;
        if (dup)
            continue;
        seen[n_seen++] = ns->store;
        kiln_kv_events ev;
        if (ns->store->ops->events_dead(ns->store, max, &ev) != KILN_OK)
            continue;
        for (size_t k = 0; k < ev.n; k++) {
            json_t *o = dead_json(&ev.ev[k]);
            if (o != NULL)
                json_array_append_new(arr, o);
        }
        kiln_kv_events_fini(&ev);
    }
    kiln_free(seen);
    json_t *root = json_object();
    if (root == NULL) {
        json_decref(arr);
        return NULL;
    }
    json_object_set_new(root, "dead", arr);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}
