/*
 * events.c - the server's side of storage events: which functions of a
 * route table subscribe (cfg `events:`), turned into the dispatcher's
 * targets (src/event/event.h) with the store and namespace of their grant,
 * the path their JSON event requests go to, and whether they can run now.
 * Called on the main thread at start and after every table swap.
 */
#include <string.h>

#include "base/alloc.h"
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
