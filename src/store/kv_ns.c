/*
 * kv_ns.c - namespaces on top of the backends (kv.h): the process-wide
 * registry of shared stores, per-function grant sets (a private namespace
 * plus global ones, read-only or read-write) and the checked operations a
 * host ABI calls: permission, key/value sizes, key counts and the byte
 * quota are enforced here (counts and bytes atomically by the backend), so a
 * guest over a limit gets an error, never a crash and never a partial write,
 * and the server log says which function filled which namespace.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "store/kv_int.h"

/* ---- registry ------------------------------------------------------------------- */

typedef struct shared_store {
    struct shared_store *next;
    kiln_kv_store *store;
    char *key; /* "memory" or "sqlite:<path>" */
    long refs;
} shared_store;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static shared_store *reg_list;

int kiln_kv_acquire(const char *backend, const char *path, kiln_kv_store **out, kiln_err *err)
{
    *out = NULL;
    if (backend == NULL)
        backend = "sqlite";
    bool mem = strcmp(backend, "memory") == 0;
    if (!mem && strcmp(backend, "sqlite") != 0)
        return kiln_err_set(err, KILN_EINVAL,
                            "unknown key-value backend '%s'; use memory or sqlite", backend);
    char def[4096], key[4200];
    if (!mem && path == NULL) {
        if (kiln_kv_default_path(def, sizeof(def)) != KILN_OK)
            return kiln_err_set(err, KILN_EINVAL,
                                "no key-value database path: set KILN_HOME or HOME, or kv.path "
                                "in the configuration");
        path = def;
    }
    snprintf(key, sizeof(key), mem ? "memory" : "sqlite:%s", path);
    int rc = KILN_OK;
    pthread_mutex_lock(&reg_mu);
    shared_store *e = reg_list;
    while (e != NULL && strcmp(e->key, key) != 0)
        e = e->next;
    if (e == NULL) {
        e = kiln_calloc(1, sizeof(*e));
        if (e == NULL || (e->key = kiln_strdup(key)) == NULL) {
            kiln_free(e);
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
        } else {
            /* SQLite opens lazily: a server whose functions never touch the
             * store does not create a database. */
            kiln_kv_sqlite_options so = {.lazy = true};
            rc = mem ? kiln_kv_mem_open(&e->store, err)
                     : kiln_kv_sqlite_open(path, &so, &e->store, err);
            if (rc != KILN_OK) {
                kiln_free(e->key);
                kiln_free(e);
            } else {
                e->next = reg_list;
                reg_list = e;
            }
        }
    }
    if (rc == KILN_OK) {
        e->refs++;
        *out = e->store;
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

void kiln_kv_release(kiln_kv_store *s)
{
    if (s == NULL)
        return;
    kiln_kv_store *to_close = NULL;
    pthread_mutex_lock(&reg_mu);
    for (shared_store **pp = &reg_list; *pp != NULL; pp = &(*pp)->next) {
        shared_store *e = *pp;
        if (e->store != s)
            continue;
        if (--e->refs == 0) {
            *pp = e->next;
            to_close = e->store;
            kiln_free(e->key);
            kiln_free(e);
        }
        break;
    }
    pthread_mutex_unlock(&reg_mu);
    /* Closing joins the SQLite writer: not under the registry lock. */
    kiln_kv_close(to_close);
}

/* ---- grants ------------------------------------------------------------------------ */

struct kiln_kv_grants {
    kiln_kv_ns *ns; /* [0] = private */
    size_t n;
    kiln_kv_store **acquired; /* released on free */
    size_t n_acquired;
    char *strings; /* names */
};

bool kiln_kv_ns_name_valid(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return n >= 1 && n <= 64;
}

static kiln_kv_limits fill_limits(kiln_kv_limits l)
{
    if (l.max_key_bytes == 0)
        l.max_key_bytes = KILN_KV_DEFAULT_MAX_KEY_BYTES;
    if (l.max_key_bytes > KILN_KV_MAX_KEY_BYTES)
        l.max_key_bytes = KILN_KV_MAX_KEY_BYTES;
    if (l.max_value_bytes == 0)
        l.max_value_bytes = KILN_KV_DEFAULT_MAX_VALUE_BYTES;
    if (l.max_value_bytes > KILN_KV_MAX_VALUE_BYTES)
        l.max_value_bytes = KILN_KV_MAX_VALUE_BYTES;
    if (l.max_keys == 0)
        l.max_keys = KILN_KV_DEFAULT_MAX_KEYS;
    if (l.max_bytes == 0)
        l.max_bytes = KILN_KV_DEFAULT_MAX_BYTES;
    return l;
}

void kiln_kv_grants_free(kiln_kv_grants *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_acquired; i++)
        kiln_kv_release(g->acquired[i]);
    kiln_free(g->acquired);
    kiln_free(g->ns);
    kiln_free(g->strings);
    kiln_free(g);
}

/* Build the grant set; `stores` resolves a backend name to a store. */
typedef int (*store_fn)(void *arg, const char *backend, kiln_kv_store **out, kiln_err *err);

static int grants_build(const char *fn_name, const kiln_kv_config *fc,
                        const kiln_kv_server_config *srv, store_fn get_store, void *arg,
                        kiln_kv_grants **out, kiln_err *err)
{
    *out = NULL;
    size_t ng = fc ? fc->n_grants : 0;
    kiln_kv_grants *g = kiln_calloc(1, sizeof(*g));
    size_t strlen_total = strlen(fn_name) + 4;
    for (size_t i = 0; i < ng; i++)
        strlen_total += strlen(fc->grants[i].ns) + 1;
    if (g != NULL) {
        g->ns = kiln_calloc(ng + 1, sizeof(*g->ns));
        g->acquired = kiln_calloc(ng + 1, sizeof(*g->acquired));
        g->strings = kiln_malloc(strlen_total);
    }
    if (g == NULL || g->ns == NULL || g->acquired == NULL || g->strings == NULL) {
        kiln_kv_grants_free(g);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    }
    const char *def_backend = srv && srv->backend ? srv->backend : "sqlite";
    char *sp = g->strings;
    int rc = KILN_OK;

    /* The private namespace: "fn:<name>" cannot collide with a global name
     * (':' is not allowed in those). */
    kiln_kv_ns *p = &g->ns[0];
    p->name = "";
    p->store_ns = sp;
    sp += sprintf(sp, "fn:%s", fn_name) + 1;
    p->limits = fill_limits(fc ? fc->limits : (kiln_kv_limits){0});
    p->writable = true;
    p->fn_name = p->store_ns + 3; /* after "fn:" */
    rc = get_store(arg, fc && fc->backend ? fc->backend : def_backend, &p->store, err);
    if (rc == KILN_OK)
        g->acquired[g->n_acquired++] = p->store;
    g->n = 1;

    for (size_t i = 0; i < ng && rc == KILN_OK; i++) {
        const kiln_kv_grant_config *gc = &fc->grants[i];
        if (!kiln_kv_ns_name_valid(gc->ns)) {
            rc = kiln_err_set(err, KILN_ECONFIG,
                              "function '%s': '%s' is not a valid namespace name (1 to 64 "
                              "letters, digits, '_', '-' or '.')",
                              fn_name, gc->ns);
            break;
        }
        const kiln_kv_ns_config *decl = NULL;
        for (size_t k = 0; srv != NULL && k < srv->n_namespaces; k++)
            if (strcmp(srv->namespaces[k].name, gc->ns) == 0)
                decl = &srv->namespaces[k];
        kiln_kv_ns *n = &g->ns[g->n];
        n->name = sp;
        n->store_ns = sp;
        sp += sprintf(sp, "%s", gc->ns) + 1;
        n->writable = gc->write;
        n->fn_name = g->ns[0].fn_name;
        n->limits = fill_limits(decl ? decl->limits : (kiln_kv_limits){0});
        rc = get_store(arg, decl && decl->backend ? decl->backend : def_backend, &n->store, err);
        if (rc == KILN_OK) {
            g->acquired[g->n_acquired++] = n->store;
            g->n++;
        }
    }
    if (rc != KILN_OK) {
        kiln_kv_grants_free(g);
        return rc;
    }
    *out = g;
    return KILN_OK;
}

static int registry_store(void *arg, const char *backend, kiln_kv_store **out, kiln_err *err)
{
    const kiln_kv_server_config *srv = arg;
    int rc = kiln_kv_acquire(backend, srv ? srv->path : NULL, out, err);
    return rc == KILN_EINVAL ? KILN_ECONFIG : rc;
}

int kiln_kv_grants_new(const kiln_kv_server_config *srv, const char *fn_name,
                       const kiln_kv_config *fc, kiln_kv_grants **out, kiln_err *err)
{
    return grants_build(fn_name, fc, srv, registry_store, (void *)srv, out, err);
}

typedef struct fixed_stores {
    kiln_kv_store *priv, *global;
    bool private_done;
} fixed_stores;

static int fixed_store(void *arg, const char *backend, kiln_kv_store **out, kiln_err *err)
{
    fixed_stores *f = arg;
    (void)backend, (void)err;
    *out = f->private_done ? f->global : f->priv;
    f->private_done = true;
    return KILN_OK;
}

int kiln_kv_grants_new_with(kiln_kv_store *priv, kiln_kv_store *global, const char *fn_name,
                            const kiln_kv_config *fc, kiln_kv_grants **out, kiln_err *err)
{
    fixed_stores f = {priv, global ? global : priv, false};
    int rc = grants_build(fn_name, fc, NULL, fixed_store, &f, out, err);
    /* Nothing was acquired: do not release these stores on free. */
    if (rc == KILN_OK)
        (*out)->n_acquired = 0;
    return rc;
}

const kiln_kv_ns *kiln_kv_grants_find(const kiln_kv_grants *g, const char *name, size_t len)
{
    if (g == NULL)
        return NULL;
    if (len == 0)
        return &g->ns[0];
    for (size_t i = 1; i < g->n; i++)
        if (strlen(g->ns[i].name) == len && memcmp(g->ns[i].name, name, len) == 0)
            return &g->ns[i];
    return NULL;
}

/* ---- checked operations ----------------------------------------------------------------- */

static int check_key(const kiln_kv_ns *ns, size_t klen)
{
    if (klen == 0)
        return KILN_EINVAL;
    return klen > ns->limits.max_key_bytes ? KILN_ELIMIT : KILN_OK;
}

static int check_write(const kiln_kv_ns *ns, size_t klen)
{
    return ns->writable ? check_key(ns, klen) : KILN_EPERM;
}

int kiln_kv_ns_get(const kiln_kv_ns *ns, const void *key, size_t klen, void *buf, size_t cap,
                   size_t *len, int64_t *pttl)
{
    int rc = check_key(ns, klen);
    if (rc != KILN_OK)
        return rc == KILN_ELIMIT ? KILN_ENOENT : rc; /* such a key cannot exist */
    return ns->store->ops->get(ns->store, ns->store_ns, key, klen, buf, cap, len, pttl);
}

int kiln_kv_ns_get_alloc(const kiln_kv_ns *ns, const void *key, size_t klen, uint8_t **val,
                         size_t *len)
{
    *val = NULL;
    *len = 0;
    size_t cap = 256;
    for (int tries = 0; tries < 8; tries++) {
        uint8_t *buf = kiln_malloc(cap + 1);
        if (buf == NULL)
            return KILN_ENOMEM;
        size_t n = 0;
        int rc = kiln_kv_ns_get(ns, key, klen, buf, cap, &n, NULL);
        if (rc == KILN_OK && n <= cap) {
            buf[n] = '\0';
            *val = buf;
            *len = n;
            return KILN_OK;
        }
        kiln_free(buf);
        if (rc != KILN_OK)
            return rc;
        cap = n; /* grew meanwhile: try again with its size */
    }
    return KILN_EIO;
}

/* ---- a full namespace: log it, but not for every refused write ---------------------- */

#define FULL_LOG_SLOTS 256
#define FULL_LOG_INTERVAL_MS 60000

/* Last time a full namespace was logged, per hash slot of (store, name):
 * two namespaces sharing a slot share the interval, which only costs a
 * line. */
static _Atomic int64_t full_logged[FULL_LOG_SLOTS];

static bool full_log_due(const kiln_kv_ns *ns)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(uintptr_t)ns->store;
    for (const char *p = ns->store_ns; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    _Atomic int64_t *slot = &full_logged[h % FULL_LOG_SLOTS];
    int64_t now = kiln_kv_now_ms(), last = atomic_load(slot);
    return (last == 0 || now - last >= FULL_LOG_INTERVAL_MS) &&
           atomic_compare_exchange_strong(slot, &last, now);
}

static void log_full(const kiln_kv_ns *ns, const kiln_kv_quota *q, uint64_t write_bytes)
{
    if (q->over_events || !full_log_due(ns))
        return;
    const char *fn = ns->fn_name ? ns->fn_name : "?";
    char where[200];
    if (ns->name[0] == '\0')
        snprintf(where, sizeof(where), "kv.max_%s of function '%s'",
                 q->over_bytes ? "bytes" : "keys", fn);
    else
        snprintf(where, sizeof(where), "kv.namespaces.%s.max_%s", ns->name,
                 q->over_bytes ? "bytes" : "keys");
    if (q->over_bytes)
        kv_log("function '%s': namespace '%s' is over its byte quota: it holds %" PRIu64
               " bytes of keys and values, the limit is %" PRIu64 " bytes, and a write of %" PRIu64
               " bytes was refused (the guest got ELIMIT); delete keys, give them a TTL, or raise "
               "%s (not logged again for this namespace for 60 s)",
               fn, ns->store_ns, q->used_bytes, q->max_bytes, write_bytes, where);
    else
        kv_log("function '%s': namespace '%s' holds its limit of %" PRIu64
               " keys and a new key was refused (the guest got ELIMIT); delete keys, give them a "
               "TTL, or raise %s (not logged again for this namespace for 60 s)",
               fn, ns->store_ns, q->max_keys, where);
}

int kiln_kv_ns_set(const kiln_kv_ns *ns, const void *key, size_t klen, const void *val,
                   size_t vlen, int64_t ttl_ms, unsigned flags, bool *stored)
{
    if (stored != NULL)
        *stored = false;
    int rc = check_write(ns, klen);
    if (rc != KILN_OK)
        return rc;
    if (ttl_ms < 0 || (flags & ~KILN_KV_NX) != 0)
        return KILN_EINVAL;
    if (vlen > ns->limits.max_value_bytes)
        return KILN_ELIMIT;
    kiln_kv_quota q = {.max_keys = ns->limits.max_keys, .max_bytes = ns->limits.max_bytes};
    rc = ns->store->ops->set(ns->store, ns->store_ns, key, klen, val, vlen, ttl_ms, flags, &q,
                             stored);
    if (rc == KILN_ELIMIT)
        log_full(ns, &q, (uint64_t)klen + vlen);
    return rc;
}

int kiln_kv_ns_del(const kiln_kv_ns *ns, const void *key, size_t klen, bool *deleted)
{
    if (deleted != NULL)
        *deleted = false;
    int rc = check_write(ns, klen);
    if (rc == KILN_ELIMIT)
        return KILN_OK; /* cannot exist */
    if (rc != KILN_OK)
        return rc;
    return ns->store->ops->del(ns->store, ns->store_ns, key, klen, deleted);
}

int kiln_kv_ns_incr(const kiln_kv_ns *ns, const void *key, size_t klen, int64_t delta,
                    int64_t *out)
{
    int rc = check_write(ns, klen);
    if (rc != KILN_OK)
        return rc;
    /* A decimal int64 is at most 20 bytes. */
    if (ns->limits.max_value_bytes < 20)
        return KILN_ELIMIT;
    kiln_kv_quota q = {.max_keys = ns->limits.max_keys, .max_bytes = ns->limits.max_bytes};
    rc = ns->store->ops->incr(ns->store, ns->store_ns, key, klen, delta, &q, out);
    if (rc == KILN_ELIMIT)
        log_full(ns, &q, (uint64_t)klen + 20);
    return rc;
}

int kiln_kv_ns_expire(const kiln_kv_ns *ns, const void *key, size_t klen, int64_t ttl_ms,
                      bool *found)
{
    *found = false;
    int rc = check_write(ns, klen);
    if (rc == KILN_ELIMIT)
        return KILN_OK;
    if (rc != KILN_OK)
        return rc;
    if (ttl_ms < 0)
        return KILN_EINVAL;
    return ns->store->ops->expire(ns->store, ns->store_ns, key, klen, ttl_ms, found);
}

int kiln_kv_ns_list(const kiln_kv_ns *ns, const void *prefix, size_t plen, const void *after,
                    size_t alen, size_t max, kiln_kv_page *out)
{
    memset(out, 0, sizeof(*out));
    if (max == 0)
        return KILN_EINVAL;
    return ns->store->ops->list(ns->store, ns->store_ns, prefix, plen, after, alen, max, out);
}
