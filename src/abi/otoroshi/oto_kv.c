/*
 * oto_kv.c - Otoroshi's proxy_*_map_* and proxy_*datastore_* host functions
 * (otoroshi-abi.md §3.3) over Kiln's key-value store; see oto_kv.h for the
 * namespace mapping. Arguments are (offset, length) in Extism memory,
 * results new Extism blocks or integers, as in Otoroshi. Where Otoroshi has
 * a way to say "not done" (datastore set/setnx answer 0) a refused write
 * answers it; elsewhere a refusal (namespace not granted or read-only, a
 * limit, a store failure) fails the call with a message naming the cause.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/extism/extism.h"
#include "abi/otoroshi/oto_kv.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "kiln/kv.h"

#define PAGE 512

/*
 * A result on its way into Extism memory, kept per thread (used within one
 * host call, never across a wait, so fibers on the same thread do not
 * share it). Once copied (or found not needed) it is freed at once: a worker thread
 * that ends must not leave its last result behind (LeakSanitizer saw one
 * per thread at server shutdown).
 */
static _Thread_local char *scratch;

static void scratch_set(char *s)
{
    kiln_free(scratch);
    scratch = s;
}

static uint64_t reply_scratch(kiln_instance *inst, size_t len)
{
    uint64_t h = scratch != NULL && len > 0 ? xtm_new_block(inst, scratch, len) : 0;
    scratch_set(NULL);
    return h;
}

static const uint8_t *arg(kiln_instance *inst, xtm_ctx *c, uint64_t off, uint64_t len,
                          const char *fn)
{
    if (len == 0)
        return (const uint8_t *)"";
    const uint8_t *b = xtm_bytes(c, off, len);
    if (b == NULL)
        xtm_fail(inst, "%s: argument (offset %llu, length %llu) lies outside Extism memory", fn,
                 (unsigned long long)off, (unsigned long long)len);
    return b;
}

/* The namespace a function works on, or the call fails. */
static const kiln_kv_ns *ns_of(kiln_instance *inst, bool global, bool write, const char *fn)
{
    xtm_ctx_of(inst); /* traps unless this is an Extism instance */
    const kiln_kv_grants *g = kiln_instance_state(inst, KILN_STATE_KV);
    if (g == NULL)
        xtm_fail(inst,
                 "%s is not available: this function has no key-value store (`kiln call` runs "
                 "plugins without one; serve the plugin with `kiln serve`)",
                 fn);
    const kiln_kv_ns *ns = global ? kiln_kv_grants_find(g, OTO_GLOBAL_NS, strlen(OTO_GLOBAL_NS))
                                  : kiln_kv_grants_find(g, NULL, 0);
    if (ns == NULL)
        xtm_fail(inst,
                 "%s: the global namespace '" OTO_GLOBAL_NS "' is not granted to this "
                 "function; add it to the function's kv.grants (r or rw)",
                 fn);
    if (write && !ns->writable)
        xtm_fail(inst, "%s: the namespace '%s' is granted read-only to this function", fn,
                 ns->name[0] ? ns->name : "(private)");
    return ns;
}

/* Fail the call for a store status. Call outside the host bracket. */
__attribute__((noreturn)) static void fail_rc(kiln_instance *inst, const kiln_kv_ns *ns, int rc,
                                              const char *fn)
{
    switch (rc) {
    case KILN_ELIMIT:
        xtm_fail(inst,
                 "%s: over a limit of the namespace (max_key_bytes %u, max_value_bytes %u, "
                 "max_keys %llu, max_bytes %llu of keys plus values); the server log says which",
                 fn, ns->limits.max_key_bytes, ns->limits.max_value_bytes,
                 (unsigned long long)ns->limits.max_keys,
                 (unsigned long long)ns->limits.max_bytes);
    case KILN_EINVAL:
        xtm_fail(inst,
                 "%s: invalid key (empty) or TTL, or the increment would take the value outside "
                 "the 64-bit integer range (nothing was changed)",
                 fn);
    case KILN_ETYPE:
        xtm_fail(inst, "%s: the stored value is not an integer", fn);
    case KILN_ENOMEM:
        xtm_fail(inst, "%s: out of host memory", fn);
    default:
        xtm_fail(inst, "%s: the key-value store failed (%s); see the server log", fn,
                 kiln_strerror(rc));
    }
}

/* Parse a JSON object argument or fail the call. */
static json_t *json_arg(kiln_instance *inst, const uint8_t *b, uint64_t len, const char *fn)
{
    json_error_t je;
    json_t *o = json_loadb((const char *)b, (size_t)len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        xtm_fail(inst, "%s: the argument is not a JSON object", fn);
    }
    return o;
}

/* ---- maps ------------------------------------------------------------------------ */

static uint64_t map_set(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                        const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, true, fn);
    const uint8_t *b = arg(inst, xtm_ctx_of(inst), off, len, fn);
    json_t *o = json_arg(inst, b, len, fn);
    json_t *k = json_object_get(o, "key"), *v = json_object_get(o, "value");
    int rc = KILN_EINVAL;
    if (json_is_string(k) && json_is_string(v)) {
        rc = kiln_kv_ns_set(ns, json_string_value(k), json_string_length(k),
                            json_string_value(v), json_string_length(v), 0, 0, NULL);
    }
    json_decref(o);
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return 0;
}

static uint64_t get_raw(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                        const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, false, fn);
    const uint8_t *k = arg(inst, xtm_ctx_of(inst), off, len, fn);
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = kiln_kv_ns_get_alloc(ns, k, (size_t)len, &val, &vlen);
    scratch_set((char *)val);
    if (rc == KILN_ENOENT || rc == KILN_EINVAL)
        return 0;
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return reply_scratch(inst, vlen);
}

static uint64_t map_del(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                        const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, true, fn);
    const uint8_t *k = arg(inst, xtm_ctx_of(inst), off, len, fn);
    int rc = len == 0 ? KILN_OK : kiln_kv_ns_del(ns, k, (size_t)len, NULL);
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return xtm_new_block(inst, "StatusOK", 8);
}

/* Redis KEYS-style glob over bytes: '*', '?', "[abc]", "[^a-z]", '\\' escapes. */
static bool glob(const char *p, const uint8_t *s, size_t n)
{
    while (*p) {
        switch (*p) {
        case '*':
            while (p[1] == '*')
                p++;
            if (p[1] == '\0')
                return true;
            for (size_t i = 0; i <= n; i++)
                if (glob(p + 1, s + i, n - i))
                    return true;
            return false;
        case '?':
            if (n == 0)
                return false;
            s++, n--;
            break;
        case '[': {
            if (n == 0)
                return false;
            const char *q = p + 1;
            bool neg = *q == '^', hit = false;
            if (neg)
                q++;
            for (; *q && *q != ']'; q++) {
                if (*q == '\\' && q[1]) {
                    q++;
                    hit |= (uint8_t)*q == *s;
                } else if (q[1] == '-' && q[2] && q[2] != ']') {
                    uint8_t lo = (uint8_t)q[0], hi = (uint8_t)q[2];
                    if (lo > hi) {
                        uint8_t t = lo;
                        lo = hi;
                        hi = t;
                    }
                    hit |= *s >= lo && *s <= hi;
                    q += 2;
                } else {
                    hit |= (uint8_t)*q == *s;
                }
            }
            if (hit == neg)
                return false;
            p = *q ? q : q - 1;
            s++, n--;
            break;
        }
        case '\\':
            if (p[1])
                p++;
            /* fall through */
        default:
            if (n == 0 || (uint8_t)*p != *s)
                return false;
            s++, n--;
        }
        p++;
    }
    return n == 0;
}

/*
 * Walk every key of the namespace matching a Redis-style glob (NULL = all),
 * calling `each` with the value when want_value. Builds into `acc`.
 */
typedef int (*each_fn)(json_t *acc, const kiln_kv_key *k, const uint8_t *val, size_t vlen);

static int walk(const kiln_kv_ns *ns, const char *pattern, bool want_value, json_t *acc,
                each_fn each)
{
    size_t plen = 0;
    if (pattern != NULL)
        while (pattern[plen] && strchr("*?[\\", pattern[plen]) == NULL)
            plen++;
    uint8_t *after = NULL;
    size_t alen = 0;
    int rc = KILN_OK;
    for (;;) {
        kiln_kv_page page;
        rc = kiln_kv_ns_list(ns, pattern, plen, after, alen, PAGE, &page);
        if (rc != KILN_OK)
            break;
        for (size_t i = 0; i < page.n && rc == KILN_OK; i++) {
            const kiln_kv_key *k = &page.keys[i];
            if (pattern != NULL && !glob(pattern, k->p, k->len))
                continue;
            uint8_t *val = NULL;
            size_t vlen = 0;
            if (want_value) {
                rc = kiln_kv_ns_get_alloc(ns, k->p, k->len, &val, &vlen);
                if (rc == KILN_ENOENT) { /* deleted meanwhile */
                    rc = KILN_OK;
                    continue;
                }
            }
            if (rc == KILN_OK)
                rc = each(acc, k, val, vlen);
            kiln_free(val);
        }
        bool more = page.more && page.n > 0;
        if (more && rc == KILN_OK) {
            kiln_free(after);
            alen = page.keys[page.n - 1].len;
            after = kiln_malloc(alen ? alen : 1);
            if (after == NULL)
                rc = KILN_ENOMEM;
            else
                memcpy(after, page.keys[page.n - 1].p, alen);
        }
        kiln_kv_page_fini(&page);
        if (!more || rc != KILN_OK)
            break;
    }
    kiln_free(after);
    return rc;
}

static int each_b64_member(json_t *acc, const kiln_kv_key *k, const uint8_t *val, size_t vlen)
{
    char *b64 = xtm_base64_encode(val, vlen);
    if (b64 == NULL)
        return KILN_ENOMEM;
    /* JSON object keys are text: keys that are not UTF-8 are left out. */
    json_object_setn_new(acc, (const char *)k->p, k->len, json_string(b64));
    kiln_free(b64);
    return KILN_OK;
}

static int each_key(json_t *acc, const kiln_kv_key *k, const uint8_t *val, size_t vlen)
{
    (void)val, (void)vlen;
    json_t *s = json_stringn((const char *)k->p, k->len);
    if (s != NULL)
        json_array_append_new(acc, s);
    return KILN_OK;
}

static int each_b64_value(json_t *acc, const kiln_kv_key *k, const uint8_t *val, size_t vlen)
{
    (void)k;
    char *b64 = xtm_base64_encode(val, vlen);
    if (b64 == NULL)
        return KILN_ENOMEM;
    json_array_append_new(acc, json_string(b64));
    kiln_free(b64);
    return KILN_OK;
}

/* Run a walk and return its JSON as a block (0 for an empty object when
 * empty_is_zero, as for proxy_*_map of a map that does not exist). */
static uint64_t walk_reply(kiln_instance *inst, const kiln_kv_ns *ns, const char *pattern,
                           bool want_value, json_t *acc, each_fn each, bool empty_is_zero,
                           const char *fn)
{
    size_t n = 0;
    int rc = acc != NULL ? walk(ns, pattern, want_value, acc, each) : KILN_ENOMEM;
    bool empty = json_is_object(acc) ? json_object_size(acc) == 0 : json_array_size(acc) == 0;
    if (rc == KILN_OK && !(empty && empty_is_zero)) {
        char *s = json_dumps(acc, JSON_COMPACT);
        char *copy = s ? kiln_strdup(s) : NULL;
        free(s);
        rc = copy ? KILN_OK : KILN_ENOMEM;
        n = copy ? strlen(copy) : 0;
        scratch_set(copy);
    }
    json_decref(acc);
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return reply_scratch(inst, n);
}

static uint64_t map_all(kiln_instance *inst, bool global, const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, false, fn);
    return walk_reply(inst, ns, NULL, true, json_object(), each_b64_member, true, fn);
}

/* ---- data store --------------------------------------------------------------------- */

/* A pattern argument as a C string (copied into the scratch buffer). */
static const char *pattern_arg(kiln_instance *inst, uint64_t off, uint64_t len, const char *fn)
{
    const uint8_t *b = arg(inst, xtm_ctx_of(inst), off, len, fn);
    char *p = kiln_strndup((const char *)b, (size_t)len);
    scratch_set(p);
    if (p == NULL)
        xtm_fail(inst, "%s: out of host memory", fn);
    return p;
}

static uint64_t ds_keys(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                        bool values, const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, false, fn);
    const char *pat = pattern_arg(inst, off, len, fn);
    /* The pattern lives in the scratch buffer, which the reply replaces:
     * take a copy first. */
    char pbuf[1024];
    char *p = strlen(pat) < sizeof(pbuf) ? strcpy(pbuf, pat) : NULL;
    scratch_set(NULL); /* pat */
    if (p == NULL)
        xtm_fail(inst, "%s: pattern longer than %zu bytes", fn, sizeof(pbuf) - 1);
    return walk_reply(inst, ns, p, values, json_array(), values ? each_b64_value : each_key,
                      false, fn);
}

static uint64_t ds_exists(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                          bool want_ttl, const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, false, fn);
    const uint8_t *k = arg(inst, xtm_ctx_of(inst), off, len, fn);
    size_t vlen;
    int64_t pttl = -1;
    int rc = len == 0 ? KILN_ENOENT : kiln_kv_ns_get(ns, k, (size_t)len, NULL, 0, &vlen, &pttl);
    if (rc == KILN_ENOENT)
        return want_ttl ? (uint64_t)(int64_t)-2 : 0; /* Redis: -2 = no such key */
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return want_ttl ? (uint64_t)pttl : 1;
}

/* key from a JSON argument or fail. */
static const char *json_key(kiln_instance *inst, json_t *o, size_t *klen, const char *fn)
{
    json_t *k = json_object_get(o, "key");
    if (!json_is_string(k) || json_string_length(k) == 0) {
        json_decref(o);
        xtm_fail(inst, "%s: the argument needs a non-empty string \"key\"", fn);
    }
    *klen = json_string_length(k);
    return json_string_value(k);
}

static uint64_t ds_set(kiln_instance *inst, bool global, uint64_t off, uint64_t len, bool nx,
                       const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, true, fn);
    const uint8_t *b = arg(inst, xtm_ctx_of(inst), off, len, fn);
    json_t *o = json_arg(inst, b, len, fn);
    size_t klen;
    const char *key = json_key(inst, o, &klen, fn);
    json_t *v = json_object_get(o, "value"), *v64 = json_object_get(o, "value_base64");
    json_t *ttl = json_object_get(o, "ttl");
    int64_t ttl_ms = json_is_integer(ttl) && json_integer_value(ttl) > 0
                         ? (int64_t)json_integer_value(ttl)
                         : 0;
    bool stored = false;
    int rc;
    if (json_is_string(v)) {
        rc = kiln_kv_ns_set(ns, key, klen, json_string_value(v), json_string_length(v), ttl_ms,
                            nx ? KILN_KV_NX : 0, &stored);
    } else if (json_is_string(v64)) {
        uint8_t *raw = NULL;
        size_t rlen = 0;
        rc = xtm_base64_decode(json_string_value(v64), json_string_length(v64), &raw, &rlen);
        if (rc == KILN_OK)
            rc = kiln_kv_ns_set(ns, key, klen, raw, rlen, ttl_ms, nx ? KILN_KV_NX : 0, &stored);
        kiln_free(raw);
    } else {
        rc = KILN_EINVAL;
    }
    json_decref(o);
    /* Over a limit or malformed: "not stored", which Otoroshi can say. */
    if (rc == KILN_ELIMIT || rc == KILN_EINVAL)
        return 0;
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return stored ? 1 : 0;
}

static uint64_t ds_del(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                       const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, true, fn);
    const uint8_t *b = arg(inst, xtm_ctx_of(inst), off, len, fn);
    json_t *o = json_arg(inst, b, len, fn);
    json_t *keys = json_object_get(o, "keys");
    uint64_t n = 0;
    int rc = KILN_OK;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        bool deleted = false;
        if (!json_is_string(k) || json_string_length(k) == 0)
            continue;
        rc = kiln_kv_ns_del(ns, json_string_value(k), json_string_length(k), &deleted);
        if (rc != KILN_OK)
            break;
        n += deleted;
    }
    json_decref(o);
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return n;
}

static uint64_t ds_incrby(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                          const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, true, fn);
    const uint8_t *b = arg(inst, xtm_ctx_of(inst), off, len, fn);
    json_t *o = json_arg(inst, b, len, fn);
    size_t klen;
    const char *key = json_key(inst, o, &klen, fn);
    json_t *inc = json_object_get(o, "incr");
    int64_t delta = 0;
    bool ok = true;
    if (json_is_integer(inc))
        delta = (int64_t)json_integer_value(inc);
    else if (json_is_string(inc)) {
        /* strtoll, not sscanf: an out-of-range delta must be refused, not
         * clamped (sscanf's overflow is undefined). */
        const char *str = json_string_value(inc);
        char *end = NULL;
        errno = 0;
        long long d = strtoll(str, &end, 10);
        ok = end != str && *end == '\0' && errno != ERANGE;
        delta = (int64_t)d;
    }
    else if (inc != NULL)
        ok = false;
    if (!ok) {
        json_decref(o);
        xtm_fail(inst, "%s: \"incr\" must be a 64-bit integer or a string of one", fn);
    }
    int64_t out = 0;
    int rc = kiln_kv_ns_incr(ns, key, klen, delta, &out);
    json_decref(o);
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return (uint64_t)out;
}

static uint64_t ds_pexpire(kiln_instance *inst, bool global, uint64_t off, uint64_t len,
                           const char *fn)
{
    const kiln_kv_ns *ns = ns_of(inst, global, true, fn);
    const uint8_t *b = arg(inst, xtm_ctx_of(inst), off, len, fn);
    json_t *o = json_arg(inst, b, len, fn);
    size_t klen;
    const char *key = json_key(inst, o, &klen, fn);
    json_t *t = json_object_get(o, "pttl");
    int64_t ttl = json_is_integer(t) ? (int64_t)json_integer_value(t) : -1;
    bool found = false;
    int rc = KILN_OK;
    if (ttl > 0)
        rc = kiln_kv_ns_expire(ns, key, klen, ttl, &found);
    else if (ttl == 0) /* Redis: a non-positive TTL deletes the key */
        rc = kiln_kv_ns_del(ns, key, klen, &found);
    json_decref(o);
    if (rc != KILN_OK)
        fail_rc(inst, ns, rc, fn);
    return found ? 1 : 0;
}

/* ---- the exported functions ---------------------------------------------------------- */

#define G true
#define P false

uint64_t oto_kv_proxy_global_map_set(kiln_instance *i, uint64_t o, uint64_t l)
{
    return map_set(i, G, o, l, "proxy_global_map_set");
}
uint64_t oto_kv_proxy_plugin_map_set(kiln_instance *i, uint64_t o, uint64_t l)
{
    return map_set(i, P, o, l, "proxy_plugin_map_set");
}
uint64_t oto_kv_proxy_global_map_get(kiln_instance *i, uint64_t o, uint64_t l)
{
    return get_raw(i, G, o, l, "proxy_global_map_get");
}
uint64_t oto_kv_proxy_plugin_map_get(kiln_instance *i, uint64_t o, uint64_t l)
{
    return get_raw(i, P, o, l, "proxy_plugin_map_get");
}
uint64_t oto_kv_proxy_global_map_del(kiln_instance *i, uint64_t o, uint64_t l)
{
    return map_del(i, G, o, l, "proxy_global_map_del");
}
uint64_t oto_kv_proxy_plugin_map_del(kiln_instance *i, uint64_t o, uint64_t l)
{
    return map_del(i, P, o, l, "proxy_plugin_map_del");
}
uint64_t oto_kv_proxy_global_map(kiln_instance *i, uint64_t unused)
{
    (void)unused;
    return map_all(i, G, "proxy_global_map");
}
uint64_t oto_kv_proxy_plugin_map(kiln_instance *i, uint64_t unused)
{
    (void)unused;
    return map_all(i, P, "proxy_plugin_map");
}
uint64_t oto_kv_proxy_datastore_keys(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_keys(i, G, o, l, false, "proxy_datastore_keys");
}
uint64_t oto_kv_proxy_plugin_datastore_keys(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_keys(i, P, o, l, false, "proxy_plugin_datastore_keys");
}
uint64_t oto_kv_proxy_datastore_get(kiln_instance *i, uint64_t o, uint64_t l)
{
    return get_raw(i, G, o, l, "proxy_datastore_get");
}
uint64_t oto_kv_proxy_plugin_datastore_get(kiln_instance *i, uint64_t o, uint64_t l)
{
    return get_raw(i, P, o, l, "proxy_plugin_datastore_get");
}
uint64_t oto_kv_proxy_datastore_exists(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_exists(i, G, o, l, false, "proxy_datastore_exists");
}
uint64_t oto_kv_proxy_plugin_datastore_exists(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_exists(i, P, o, l, false, "proxy_plugin_datastore_exists");
}
uint64_t oto_kv_proxy_datastore_pttl(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_exists(i, G, o, l, true, "proxy_datastore_pttl");
}
uint64_t oto_kv_proxy_plugin_datastore_pttl(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_exists(i, P, o, l, true, "proxy_plugin_datastore_pttl");
}
uint64_t oto_kv_proxy_datastore_all_matching(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_keys(i, G, o, l, true, "proxy_datastore_all_matching");
}
uint64_t oto_kv_proxy_plugin_datastore_all_matching(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_keys(i, P, o, l, true, "proxy_plugin_datastore_all_matching");
}
uint64_t oto_kv_proxy_datastore_set(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_set(i, G, o, l, false, "proxy_datastore_set");
}
uint64_t oto_kv_proxy_plugin_datastore_set(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_set(i, P, o, l, false, "proxy_plugin_datastore_set");
}
uint64_t oto_kv_proxy_datastore_setnx(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_set(i, G, o, l, true, "proxy_datastore_setnx");
}
uint64_t oto_kv_proxy_plugin_datastore_setnx(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_set(i, P, o, l, true, "proxy_plugin_datastore_setnx");
}
uint64_t oto_kv_proxy_datastore_del(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_del(i, G, o, l, "proxy_datastore_del");
}
uint64_t oto_kv_proxy_plugin_datastore_del(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_del(i, P, o, l, "proxy_plugin_datastore_del");
}
uint64_t oto_kv_proxy_datastore_incrby(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_incrby(i, G, o, l, "proxy_datastore_incrby");
}
uint64_t oto_kv_proxy_plugin_datastore_incrby(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_incrby(i, P, o, l, "proxy_plugin_datastore_incrby");
}
uint64_t oto_kv_proxy_datastore_pexpire(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_pexpire(i, G, o, l, "proxy_datastore_pexpire");
}
uint64_t oto_kv_proxy_plugin_datastore_pexpire(kiln_instance *i, uint64_t o, uint64_t l)
{
    return ds_pexpire(i, P, o, l, "proxy_plugin_datastore_pexpire");
}
