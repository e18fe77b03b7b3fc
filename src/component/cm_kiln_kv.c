/*
 * cm_kiln_kv.c - wasi:keyvalue@0.2.0-draft2 for components (store,
 * atomics.increment, batch; CAS answers "not supported"; and wasmtime's
 * 0.2.0-draft, which differs in list-keys' cursor and increment's sign
 * only) over the calling function's KV grant set, the
 * one core modules' kiln.kv_* use (src/abi/kiln/kiln_kv.c): every
 * operation is the same kiln_kv_ns_* call, so permissions, key and value
 * size limits, key-count and byte quotas, storage events and the waits of
 * a SQLite group commit (which may suspend the request's fiber) are
 * exactly those of core modules. There is no second KV path here, only
 * the mapping of values and errors. Contract: cm_kiln.h.
 *
 * Buckets. open("default") is the function's private namespace (Spin's
 * name for the default store); any other identifier names a global
 * namespace: one granted in the function's `kv.grants` opens (read-only
 * grants open too, and writing to them is access-denied), a valid
 * namespace name not granted is access-denied (whether it exists is not
 * the function's business), and an identifier that cannot name a
 * namespace (empty, over 64 bytes, characters outside [A-Za-z0-9_.-]) is
 * no-such-store, as is every identifier when the function has no store.
 *
 * Errors. A store status becomes error::access-denied (KILN_EPERM) or
 * error::other with a message naming the namespace, the limit and what to
 * do; nothing traps but a bad handle (checked by cm_inst's handle table)
 * and running out of host memory.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "component/cm_kiln.h"
#include "component/cm_wasi_int.h"
#include "kiln/kv.h"

/* list-keys returns at most this many keys, and stops adding keys once
 * their bytes reach LIST_PAGE_BYTES (the cursor continues from there). */
#define LIST_PAGE_KEYS 1000
#define LIST_PAGE_BYTES ((size_t)256 << 10)
/* get-many returns at most this many bytes of values in one call. */
#define GET_MANY_BYTES ((size_t)64 << 20)

/* The cases of wasi:keyvalue/store's error variant. */
enum { KV_NO_SUCH_STORE = 0, KV_ACCESS_DENIED = 1, KV_OTHER = 2 };

static const kiln_kv_grants *grants_of(cm_inst *ci)
{
    kiln_instance *inst = cm_inst_caller(ci);
    return inst != NULL ? kiln_instance_state(inst, KILN_STATE_KV) : NULL;
}

static const char *ns_label(const kiln_kv_ns *ns)
{
    return ns->name[0] ? ns->name : "default";
}

/* err(error::case), with a message for `other` (copied into the arena). */
static int kv_error(cm_inst *ci, cm_val *r, uint32_t which, const char *msg, kiln_err *err)
{
    cm_val *p = cw_vals(ci, 2);
    if (p == NULL)
        return cw_oom(err);
    p[0] = (cm_val){.kind = CM_VARIANT, .var = {which, NULL}};
    if (which == KV_OTHER) {
        size_t n = strlen(msg);
        char *s = cm_arena_alloc(cm_inst_arena(ci), n ? n : 1);
        if (s == NULL)
            return cw_oom(err);
        memcpy(s, msg, n);
        p[1] = (cm_val){.kind = CM_STRING, .str = {s, (uint32_t)n}};
        p[0].var.payload = &p[1];
    }
    return cw_err(ci, r, &p[0], err);
}

static int kv_other(cm_inst *ci, cm_val *r, kiln_err *err, const char *fmt, ...)
    KILN_PRINTF(4, 5);

static int kv_other(cm_inst *ci, cm_val *r, kiln_err *err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kv_error(ci, r, KV_OTHER, msg, err);
}

/*
 * A store status other than KILN_OK (and other than the KILN_ENOENT a
 * caller handles) as the error result. klen/vlen: the sizes of the write
 * (vlen 0 for increments and deletes), to say which limit it was.
 */
static int kv_status(cm_inst *ci, const kiln_kv_ns *ns, int rc, const char *op, size_t klen,
                     size_t vlen, cm_val *r, kiln_err *err)
{
    const kiln_kv_limits *l = &ns->limits;
    switch (rc) {
    case KILN_EPERM:
        return kv_error(ci, r, KV_ACCESS_DENIED, NULL, err);
    case KILN_ELIMIT:
        if (klen > l->max_key_bytes)
            return kv_other(ci, r, err, "%s: a key of %zu bytes is over the max_key_bytes "
                            "limit (%" PRIu32 ") of namespace '%s'", op, klen,
                            l->max_key_bytes, ns_label(ns));
        if (vlen > l->max_value_bytes)
            return kv_other(ci, r, err, "%s: a value of %zu bytes is over the max_value_bytes "
                            "limit (%" PRIu32 ") of namespace '%s'", op, vlen,
                            l->max_value_bytes, ns_label(ns));
        return kv_other(ci, r, err, "%s: namespace '%s' is full (max_keys %" PRIu64 ", "
                        "max_bytes %" PRIu64 " of keys plus values, or a subscriber's event "
                        "queue); delete keys, or raise its limits (the server log says which)",
                        op, ns_label(ns), l->max_keys, l->max_bytes);
    case KILN_EINVAL:
        return kv_other(ci, r, err, "%s: %s", op, klen == 0 ? "keys cannot be empty"
                        : "the increment would take the value outside the 64-bit integer "
                          "range (nothing was changed)");
    case KILN_ETYPE:
        return kv_other(ci, r, err, "%s: the stored value is not a decimal integer", op);
    case KILN_ENOMEM:
        return cw_oom(err);
    default:
        return kv_other(ci, r, err, "%s: the key-value store failed (%s); see the server log",
                        op, kiln_strerror(rc));
    }
}

/* The namespace behind bucket handle rep, or NULL with err set (a trap:
 * the handle table already checked the resource type). */
static const kiln_kv_ns *bucket_ns(void *ud, uint64_t rep, kiln_err *err)
{
    if (ud == NULL) {
        kiln_err_set(err, KILN_EINVAL, "wasi:keyvalue: no context for buckets");
        return NULL;
    }
    cw_obj *o = cw_get(ud, (uint32_t)rep, CW_BUCKET, err);
    return o != NULL ? o->ns : NULL;
}

/* A copy of n bytes in the call's arena (the value outlives the store's
 * buffer until it is lowered). */
static int arena_bytes(cm_inst *ci, const uint8_t *p, size_t n, cm_val *out, kiln_err *err)
{
    uint8_t *b = cm_arena_alloc(cm_inst_arena(ci), n ? n : 1);
    if (b == NULL)
        return cw_oom(err);
    if (n > 0)
        memcpy(b, p, n);
    return cw_bytes(ci, b, n, out, err);
}

/* A lifted list<u8> as contiguous bytes: kiln_malloc'd into *owned, or
 * pointing at the raw-bytes form. */
static int list_bytes(const cm_val *v, const uint8_t **p, uint8_t **owned, kiln_err *err)
{
    *owned = NULL;
    if (v->bytes) {
        *p = (const uint8_t *)v->str.p;
        return KILN_OK;
    }
    uint32_t n = cm_list_len(v);
    uint8_t *b = kiln_malloc(n ? n : 1);
    if (b == NULL)
        return cw_oom(err);
    for (uint32_t i = 0; i < n; i++)
        b[i] = cm_list_byte(v, i);
    *p = b;
    *owned = b;
    return KILN_OK;
}

static size_t list_len(const cm_val *v)
{
    return cm_list_len(v);
}

/* ---- store ---------------------------------------------------------------------- */

/* open: func(identifier: string) -> result<bucket, error> */
static int kv_open(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    const kiln_kv_grants *g = grants_of(ci);
    const char *id = a[0].str.p;
    size_t n = a[0].str.len;
    if (g == NULL || ud == NULL)
        return kv_error(ci, r, KV_NO_SUCH_STORE, NULL, err);
    const kiln_kv_ns *ns;
    if (n == 7 && memcmp(id, "default", 7) == 0) {
        ns = kiln_kv_grants_find(g, NULL, 0);
    } else {
        char name[72];
        if (n == 0 || n >= sizeof(name))
            return kv_error(ci, r, KV_NO_SUCH_STORE, NULL, err);
        memcpy(name, id, n);
        name[n] = '\0';
        if (!kiln_kv_ns_name_valid(name))
            return kv_error(ci, r, KV_NO_SUCH_STORE, NULL, err);
        ns = kiln_kv_grants_find(g, name, n);
        if (ns == NULL)
            return kv_error(ci, r, KV_ACCESS_DENIED, NULL, err);
    }
    cw_obj o = {.kind = CW_BUCKET, .ns = ns};
    uint32_t rep;
    int rc = cw_new(ud, &o, &rep, err);
    if (rc == KILN_ELIMIT) {
        char msg[sizeof(err->msg)];
        memcpy(msg, err->msg, sizeof(msg));
        err->msg[0] = '\0';
        return kv_error(ci, r, KV_OTHER, msg, err);
    }
    if (rc != KILN_OK)
        return rc;
    cm_val h = {.kind = CM_OWN, .u = rep};
    return cw_ok(ci, r, &h, err);
}

static int bucket_drop(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                       kiln_err *err)
{
    if (bucket_ns(ud, a[0].u, err) == NULL)
        return KILN_EINVAL;
    cw_free(ud, (uint32_t)a[0].u);
    return KILN_OK;
}

/* The value of key (klen bytes) as some(list<u8>) in *v, or none. */
static int get_value(cm_inst *ci, const kiln_kv_ns *ns, const char *key, size_t klen,
                     bool *found, cm_val *v, size_t *vlen, int *status, kiln_err *err)
{
    uint8_t *val = NULL;
    size_t len = 0;
    *found = false;
    *status = kiln_kv_ns_get_alloc(ns, key, klen, &val, &len);
    if (*status == KILN_ENOENT) {
        *status = KILN_OK;
        return KILN_OK;
    }
    if (*status != KILN_OK)
        return KILN_OK;
    int rc = arena_bytes(ci, val, len, v, err);
    kiln_free(val);
    *found = rc == KILN_OK;
    *vlen = len;
    return rc;
}

/* [method]bucket.get: func(key: string) -> result<option<list<u8>>, error> */
static int kv_get(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                  kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    cm_val *p = cw_vals(ci, 2);
    if (p == NULL)
        return cw_oom(err);
    bool found;
    size_t vlen = 0;
    int status;
    int rc = get_value(ci, ns, a[1].str.p, a[1].str.len, &found, &p[1], &vlen, &status, err);
    if (rc != KILN_OK)
        return rc;
    if (status != KILN_OK)
        return kv_status(ci, ns, status, "get", a[1].str.len, 0, r, err);
    p[0] = (cm_val){.kind = CM_OPTION, .var = {found ? 1 : 0, found ? &p[1] : NULL}};
    return cw_ok(ci, r, &p[0], err);
}

/* One set, its status as the error result when it fails; *failed tells. */
static int set_one(cm_inst *ci, const kiln_kv_ns *ns, const char *op, const cm_val *key,
                   const cm_val *val, bool *failed, cm_val *r, kiln_err *err)
{
    const uint8_t *p = NULL;
    uint8_t *owned = NULL;
    *failed = false;
    int rc = list_bytes(val, &p, &owned, err);
    if (rc != KILN_OK)
        return rc;
    size_t vlen = list_len(val);
    int st = kiln_kv_ns_set(ns, key->str.p, key->str.len, p, vlen, 0, 0, NULL);
    kiln_free(owned);
    if (st == KILN_OK)
        return KILN_OK;
    *failed = true;
    return kv_status(ci, ns, st, op, key->str.len, vlen, r, err);
}

/* [method]bucket.set: func(key: string, value: list<u8>) -> result<_, error> */
static int kv_set(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                  kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    bool failed;
    int rc = set_one(ci, ns, "set", &a[1], &a[2], &failed, r, err);
    if (rc != KILN_OK || failed)
        return rc;
    return cw_ok(ci, r, NULL, err);
}

/* [method]bucket.delete: func(key: string) -> result<_, error>; an absent
 * key is ok. */
static int kv_delete(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                     kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    int st = kiln_kv_ns_del(ns, a[1].str.p, a[1].str.len, NULL);
    if (st != KILN_OK)
        return kv_status(ci, ns, st, "delete", a[1].str.len, 0, r, err);
    return cw_ok(ci, r, NULL, err);
}

/* [method]bucket.exists: func(key: string) -> result<bool, error> */
static int kv_exists(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                     kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    size_t len = 0;
    int st = kiln_kv_ns_get(ns, a[1].str.p, a[1].str.len, NULL, 0, &len, NULL);
    if (st != KILN_OK && st != KILN_ENOENT)
        return kv_status(ci, ns, st, "exists", a[1].str.len, 0, r, err);
    cm_val b = {.kind = CM_BOOL, .b = st == KILN_OK};
    return cw_ok(ci, r, &b, err);
}

/* Whether list-keys' cursor is wasmtime's option<u64> (wasi:keyvalue
 * 0.2.0-draft: the number of keys returned so far) rather than draft2's
 * option<string>. */
static bool numeric_cursor(const cm_type *ft)
{
    const cm_type *o = ft != NULL && ft->n == 2 ? ft->f[1].type : NULL;
    return o != NULL && o->kind == CM_OPTION && o->elem != NULL && o->elem->kind == CM_U64;
}

/* For a numeric cursor: the key after which key number `skip` comes, in a
 * kiln_malloc'd *after (NULL, *alen 0: from the first). Walks the keys a
 * page at a time, so a numeric cursor costs O(skip); draft2's string
 * cursor costs nothing. */
static int skip_keys(const kiln_kv_ns *ns, uint64_t skip, uint8_t **after, size_t *alen)
{
    *after = NULL;
    *alen = 0;
    while (skip > 0) {
        kiln_kv_page page;
        int st = kiln_kv_ns_list(ns, "", 0, *after ? (const void *)*after : "", *alen,
                                 skip < LIST_PAGE_KEYS ? (size_t)skip : LIST_PAGE_KEYS, &page);
        if (st != KILN_OK)
            return st;
        if (page.n == 0) { /* past the end: an empty page follows */
            kiln_kv_page_fini(&page);
            return KILN_OK;
        }
        const kiln_kv_key *last = &page.keys[page.n - 1];
        uint8_t *b = kiln_malloc(last->len ? last->len : 1);
        if (b == NULL) {
            kiln_kv_page_fini(&page);
            return KILN_ENOMEM;
        }
        memcpy(b, last->p, last->len);
        kiln_free(*after);
        *after = b;
        *alen = last->len;
        skip -= page.n;
        bool more = page.more;
        kiln_kv_page_fini(&page);
        if (!more)
            break;
    }
    return KILN_OK;
}

/*
 * [method]bucket.list-keys: func(cursor: option<string>) ->
 * result<key-response, error>. Keys come in ascending byte order, a page at
 * a time; the cursor is the last key of the page (the store lists "after"
 * a key, so a page is stable under concurrent writes). With wasmtime's
 * 0.2.0-draft shape (cursor: option<u64>) the cursor counts the keys
 * returned so far. Keys are WIT strings: a key that is not UTF-8 (written
 * by a core module) fails the listing, naming the namespace.
 */
static int kv_list_keys(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    bool numeric = numeric_cursor(ft);
    const cm_val *cur = a[1].var.index == 1 ? a[1].var.payload : NULL;
    uint64_t offset = numeric && cur != NULL ? cur->u : 0;
    uint8_t *skipped = NULL;
    size_t slen = 0;
    int st = numeric ? skip_keys(ns, offset, &skipped, &slen) : KILN_OK;
    if (st == KILN_ENOMEM)
        return cw_oom(err);
    kiln_kv_page page;
    if (st == KILN_OK) {
        const void *after = numeric ? (skipped ? (const void *)skipped : "")
                                    : (cur && cur->str.len ? (const void *)cur->str.p : "");
        size_t alen = numeric ? slen : cur ? cur->str.len : 0;
        st = kiln_kv_ns_list(ns, "", 0, after, alen, LIST_PAGE_KEYS, &page);
    }
    kiln_free(skipped);
    if (st != KILN_OK)
        return kv_status(ci, ns, st, "list-keys", 1, 0, r, err);
    cm_val *keys = cw_vals(ci, (uint32_t)page.n);
    cm_val *f = cw_vals(ci, 3);
    int rc = keys == NULL || f == NULL ? cw_oom(err) : KILN_OK;
    size_t n = 0, bytes = 0;
    for (; rc == KILN_OK && n < page.n; n++) {
        const kiln_kv_key *k = &page.keys[n];
        if (n > 0 && bytes + k->len > LIST_PAGE_BYTES)
            break;
        if (!utf8_valid(k->p, k->len)) {
            kiln_kv_page_fini(&page);
            return kv_other(ci, r, err, "list-keys: namespace '%s' holds a key that is not "
                            "UTF-8 (byte %zu), which a WIT string cannot carry; list it with "
                            "`kiln kv ls`", ns_label(ns), utf8_bad_at(k->p, k->len));
        }
        char *s = cm_arena_alloc(cm_inst_arena(ci), k->len ? k->len : 1);
        if (s == NULL) {
            rc = cw_oom(err);
            break;
        }
        memcpy(s, k->p, k->len);
        keys[n] = (cm_val){.kind = CM_STRING, .str = {s, (uint32_t)k->len}};
        bytes += k->len;
    }
    bool more = page.more || n < page.n;
    kiln_kv_page_fini(&page);
    if (rc != KILN_OK)
        return rc;
    f[0] = (cm_val){.kind = CM_LIST, .agg = {keys, (uint32_t)n}};
    if (numeric)
        f[2] = (cm_val){.kind = CM_U64, .u = offset + n};
    else
        f[2] = n > 0 ? keys[n - 1] : (cm_val){.kind = CM_STRING};
    f[1] = (cm_val){.kind = CM_OPTION, .var = {more && n > 0 ? 1 : 0,
                                                more && n > 0 ? &f[2] : NULL}};
    cm_val rec = {.kind = CM_RECORD, .agg = {f, 2}};
    return cw_ok(ci, r, &rec, err);
}

/* ---- atomics -------------------------------------------------------------------- */

/* increment: func(bucket: borrow<bucket>, key: string, delta: s64) ->
 * result<s64, error>: kiln.kv_incr (decimal integer values). wasmtime's
 * 0.2.0-draft has u64 for both: a delta over 2^63-1 or a result below 0
 * is error::other there (nothing is written for the first; the second
 * was written, as a signed store would). */
static int kv_increment(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                        kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    bool unsig = ft != NULL && ft->n == 3 && ft->f[2].type->kind == CM_U64;
    if (unsig && a[2].u > (uint64_t)INT64_MAX)
        return kv_other(ci, r, err, "increment: a delta of %" PRIu64 " is over Kiln's "
                        "64-bit signed integers (nothing was changed)", a[2].u);
    int64_t v = 0;
    int st = kiln_kv_ns_incr(ns, a[1].str.p, a[1].str.len, a[2].s, &v);
    if (st != KILN_OK)
        return kv_status(ci, ns, st, "increment", a[1].str.len, 0, r, err);
    if (unsig && v < 0)
        return kv_other(ci, r, err, "increment: the value is now %" PRId64 ", which this "
                        "interface's u64 cannot carry", v);
    cm_val n = unsig ? (cm_val){.kind = CM_U64, .u = (uint64_t)v}
                     : (cm_val){.kind = CM_S64, .s = v};
    return cw_ok(ci, r, &n, err);
}

/*
 * The CAS resource of draft2's atomics (cas.new, cas.current, swap). Kiln's
 * store has no compare-and-set, and emulating one here would not be atomic
 * against the other writers (core modules, `kiln kv`, other processes), so
 * no CAS is ever made: cas.new and current answer error::other saying so,
 * and swap (which needs a CAS handle, so cannot really be reached) answers
 * cas-error::store-error(other). They are registered because toolchains
 * that import every function of a world (componentize-js does) would
 * otherwise be refused at deploy for a function they never call.
 */
static const char CAS_MSG[] = "compare-and-swap is not supported by Kiln's key-value store "
                              "(it has no compare-and-set); use increment, or one key per "
                              "writer";

static int kv_cas_new(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                      kiln_err *err)
{
    if (bucket_ns(ud, a[0].u, err) == NULL)
        return KILN_EINVAL;
    return kv_other(ci, r, err, "cas.new: %s", CAS_MSG);
}

static int kv_cas_current(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                          kiln_err *err)
{
    return kv_other(ci, r, err, "cas.current: %s", CAS_MSG);
}

static int kv_swap(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                   kiln_err *err)
{
    static const char msg[] = "swap: compare-and-swap is not supported by Kiln's key-value "
                              "store";
    cm_val *p = cw_vals(ci, 3);
    if (p == NULL)
        return cw_oom(err);
    p[2] = (cm_val){.kind = CM_STRING, .str = {msg, (uint32_t)(sizeof(msg) - 1)}};
    p[1] = (cm_val){.kind = CM_VARIANT, .var = {KV_OTHER, &p[2]}};
    p[0] = (cm_val){.kind = CM_VARIANT, .var = {0, &p[1]}}; /* store-error(error) */
    return cw_err(ci, r, &p[0], err);
}

/* ---- batch ------------------------------------------------------------------------ */

/* get-many: func(bucket: borrow<bucket>, keys: list<string>) ->
 * result<list<option<tuple<string, list<u8>>>>, error> */
static int kv_get_many(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                       kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    uint32_t n = a[1].agg.n;
    cm_val *opts = cw_vals(ci, n), *pairs = cw_vals(ci, 2 * n);
    if (opts == NULL || pairs == NULL)
        return cw_oom(err);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const cm_val *key = &a[1].agg.v[i];
        bool found;
        size_t vlen = 0;
        int status;
        int rc = get_value(ci, ns, key->str.p, key->str.len, &found, &pairs[2 * i + 1], &vlen,
                           &status, err);
        if (rc != KILN_OK)
            return rc;
        if (status != KILN_OK)
            return kv_status(ci, ns, status, "get-many", key->str.len, 0, r, err);
        total += vlen;
        if (total > GET_MANY_BYTES)
            return kv_other(ci, r, err, "get-many: the values of these %u keys are over %zu "
                            "bytes together; ask for fewer keys at a time", (unsigned)n,
                            GET_MANY_BYTES);
        pairs[2 * i] = *key;
        opts[i] = (cm_val){.kind = CM_OPTION, .var = {found ? 1 : 0, NULL}};
        if (found) {
            cm_val *t = cw_vals(ci, 1);
            if (t == NULL)
                return cw_oom(err);
            *t = (cm_val){.kind = CM_TUPLE, .agg = {&pairs[2 * i], 2}};
            opts[i].var.payload = t;
        }
    }
    cm_val list = {.kind = CM_LIST, .agg = {opts, n}};
    return cw_ok(ci, r, &list, err);
}

/* set-many: func(bucket: borrow<bucket>, key-values: list<tuple<string,
 * list<u8>>>) -> result<_, error>: in order, stopping at the first
 * failure (the pairs before it stay written). */
static int kv_set_many(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                       kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    for (uint32_t i = 0; i < a[1].agg.n; i++) {
        const cm_val *t = &a[1].agg.v[i];
        bool failed;
        int rc = set_one(ci, ns, "set-many", &t->agg.v[0], &t->agg.v[1], &failed, r, err);
        if (rc != KILN_OK || failed)
            return rc;
    }
    return cw_ok(ci, r, NULL, err);
}

/* delete-many: func(bucket: borrow<bucket>, keys: list<string>) ->
 * result<_, error>; absent keys are skipped. */
static int kv_delete_many(cm_inst *ci, void *ud, const cm_type *ft, const cm_val *a, cm_val *r,
                          kiln_err *err)
{
    const kiln_kv_ns *ns = bucket_ns(ud, a[0].u, err);
    if (ns == NULL)
        return KILN_EINVAL;
    for (uint32_t i = 0; i < a[1].agg.n; i++) {
        const cm_val *key = &a[1].agg.v[i];
        int st = kiln_kv_ns_del(ns, key->str.p, key->str.len, NULL);
        if (st != KILN_OK)
            return kv_status(ci, ns, st, "delete-many", key->str.len, 0, r, err);
    }
    return cw_ok(ci, r, NULL, err);
}

/* Spin 3's wasi:keyvalue@0.2.0-draft2 (with its CAS functions answering
 * "not supported"), and wasmtime-wasi-keyvalue's 0.2.0-draft, whose only
 * differences (list-keys' cursor and increment as u64) the functions above
 * follow from the imported type. */
#define KV_TABLE(V)                                                                           \
    {"wasi:keyvalue/store@" V, "open", kv_open},                                              \
    {"wasi:keyvalue/store@" V, "[method]bucket.get", kv_get},                                 \
    {"wasi:keyvalue/store@" V, "[method]bucket.set", kv_set},                                 \
    {"wasi:keyvalue/store@" V, "[method]bucket.delete", kv_delete},                           \
    {"wasi:keyvalue/store@" V, "[method]bucket.exists", kv_exists},                           \
    {"wasi:keyvalue/store@" V, "[method]bucket.list-keys", kv_list_keys},                     \
    {"wasi:keyvalue/store@" V, "[resource-drop]bucket", bucket_drop},                         \
    {"wasi:keyvalue/atomics@" V, "increment", kv_increment},                                  \
    {"wasi:keyvalue/batch@" V, "get-many", kv_get_many},                                      \
    {"wasi:keyvalue/batch@" V, "set-many", kv_set_many},                                      \
    {"wasi:keyvalue/batch@" V, "delete-many", kv_delete_many}

const cm_host_fn ck_kv_fns[] = {
    KV_TABLE("0.2.0-draft2"),
    {"wasi:keyvalue/atomics@0.2.0-draft2", "[static]cas.new", kv_cas_new},
    {"wasi:keyvalue/atomics@0.2.0-draft2", "[method]cas.current", kv_cas_current},
    {"wasi:keyvalue/atomics@0.2.0-draft2", "swap", kv_swap},
    KV_TABLE("0.2.0-draft"),
};
const size_t ck_kv_n = sizeof(ck_kv_fns) / sizeof(ck_kv_fns[0]);
