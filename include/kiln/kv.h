/*
 * kv.h - Kiln's key-value store: the backend interface every store
 * implements (kiln_kv_ops: memory, SQLite, later Redis), the process-wide
 * registry that shares open stores between route tables, and namespaces with
 * grants and limits, which is all a host ABI uses. Notes: docs/internals/kv.md.
 *
 * Model. A store holds namespaces; a namespace maps keys (1 or more bytes,
 * any bytes) to values (0 or more bytes) with an optional expiry (absolute,
 * wall clock, millisecond precision). Keys are ordered bytewise, which makes
 * prefix listing with a cursor ("the last key you saw") stable under
 * concurrent writes. An expired key is invisible to every operation at once
 * and its row is purged later.
 *
 * Functions see namespaces through a grant set (kiln_kv_grants): their own
 * private namespace (named "" by the guest, "fn:<function>" in the store) and
 * the global namespaces their configuration grants, read-only or read-write.
 * Everything else does not exist for them.
 *
 * Errors: KILN_OK, KILN_ENOENT (no such key), KILN_EPERM (not granted, or
 * read-only), KILN_ELIMIT (key, value, key-count or byte quota), KILN_EINVAL
 * (empty key, negative TTL, increment overflow), KILN_ETYPE (increment of a
 * value that is not a decimal integer), KILN_EIO (the backend failed; it
 * logged why), KILN_ENOMEM. Host ABIs map them to their guest codes.
 *
 * Thread-safety: every operation on a store, a grant set or a namespace is
 * thread-safe. Opening and closing are not: close a store only when no other
 * thread is inside it.
 */
#ifndef KILN_KV_H
#define KILN_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

/* Defaults for a namespace's limits (0 in a kiln_kv_limits field). */
#define KILN_KV_DEFAULT_MAX_KEY_BYTES 1024u
#define KILN_KV_DEFAULT_MAX_VALUE_BYTES (1u << 20)
#define KILN_KV_DEFAULT_MAX_KEYS 100000u
#define KILN_KV_DEFAULT_MAX_BYTES ((uint64_t)64 << 20)
/* Hard ceilings, whatever the configuration says. */
#define KILN_KV_MAX_KEY_BYTES 65536u
#define KILN_KV_MAX_VALUE_BYTES (64u << 20)

/* set() flags. */
#define KILN_KV_NX 1u /* store only if the key is absent (or expired) */

typedef struct kiln_kv_limits {
    uint32_t max_key_bytes;   /* 0 = KILN_KV_DEFAULT_MAX_KEY_BYTES */
    uint32_t max_value_bytes; /* 0 = KILN_KV_DEFAULT_MAX_VALUE_BYTES */
    uint64_t max_keys;        /* live keys in the namespace; 0 = default */
    uint64_t max_bytes;       /* bytes of all keys plus all values in the namespace
                                 (its quota); 0 = KILN_KV_DEFAULT_MAX_BYTES */
} kiln_kv_limits;

/*
 * What a backend enforces atomically with a write (set, incr). 0 = no limit.
 * Bytes are the namespace's keys plus values, as stored; expired keys count
 * until purged, and a backend purges the namespace's expired keys before it
 * refuses a write for either limit. A write that does not grow the
 * namespace (an overwrite with a value no longer than the old one) is never
 * refused, so a namespace over a lowered quota can always shrink.
 */
typedef struct kiln_kv_quota {
    uint64_t max_keys;
    uint64_t max_bytes;
    /* OUT, set by the backend when it answers KILN_ELIMIT: */
    bool over_bytes;     /* the byte quota refused it (else the key count) */
    uint64_t used_bytes; /* bytes in the namespace when it was refused */
    bool over_events;    /* a subscriber's event queue was full (the store logged it) */
} kiln_kv_quota;

/* One key of a listing: points into kiln_kv_page.data. */
typedef struct kiln_kv_key {
    const uint8_t *p;
    size_t len;
} kiln_kv_key;

/* A page of keys in ascending order. Free with kiln_kv_page_fini. */
typedef struct kiln_kv_page {
    kiln_kv_key *keys;
    size_t n;
    bool more;     /* keys after the last one exist (continue with it as `after`) */
    uint8_t *data; /* owns the key bytes */
} kiln_kv_page;

KILN_API void kiln_kv_page_fini(kiln_kv_page *p);

/* ---- storage events ------------------------------------------------------------
 *
 * A function may subscribe to a namespace (config `events:`, src/event,
 * docs/internals/events.md). A write that commits in a namespace with
 * subscribers queues one event per subscriber whose types include it, in the
 * same transaction as the write (SQLite) or under the same lock (memory):
 * an event exists iff its write committed. set and incr queue object-added
 * (the key was absent or expired) or object-updated (it was live) with the
 * value written as payload; del of a live key queues object-removed with an
 * empty payload. expire (a TTL change) queues nothing. Ids grow with commit
 * order, so per key they are in write order.
 *
 * A subscriber's queue holds at most max_queue events: a write that would
 * queue one more is refused (KILN_ELIMIT, logged at most once a minute per
 * function), nothing is lost and the writer is told; see events.md.
 */
#define KILN_KV_EV_ADDED 0u   /* = KILN_EVENT_OBJECT_ADDED (handler.h) */
#define KILN_KV_EV_REMOVED 1u /* = KILN_EVENT_OBJECT_REMOVED */
#define KILN_KV_EV_UPDATED 2u /* = KILN_EVENT_OBJECT_UPDATED */
#define KILN_KV_EV_ALL 7u     /* mask of the three: 1u << type each */
#define KILN_KV_DEFAULT_MAX_EVENTS 100000u

/* One subscription: function `fn` gets events of store namespace `ns`. */
typedef struct kiln_kv_sub {
    const char *fn;
    const char *ns;
    unsigned types;     /* mask of 1u << KILN_KV_EV_* */
    uint64_t max_queue; /* 0 = KILN_KV_DEFAULT_MAX_EVENTS */
} kiln_kv_sub;

/* One queued event; pointers into kiln_kv_events.data. */
typedef struct kiln_kv_qevent {
    uint64_t id;
    unsigned type;    /* KILN_KV_EV_* */
    int64_t ts_ns;    /* wall clock of the commit */
    const char *fn;   /* subscriber */
    const char *ns;
    const uint8_t *key;
    size_t klen;
    const uint8_t *payload;
    size_t plen;
    const char *cause; /* dead letters: why; else NULL */
    uint32_t attempts; /* attempts made (recorded by events_tried; dead letters: all) */
} kiln_kv_qevent;

typedef struct kiln_kv_events {
    kiln_kv_qevent *ev;
    size_t n;
    uint8_t *data; /* owns the bytes */
} kiln_kv_events;

KILN_API void kiln_kv_events_fini(kiln_kv_events *e);

/* ---- the backend interface ------------------------------------------------ */

typedef struct kiln_kv_store kiln_kv_store;

/*
 * A backend. `ns` is the store-level namespace name (NUL-terminated). Keys
 * and values are (pointer, length); limits on their sizes are checked by the
 * namespace layer before a backend sees them, but the key count and the byte
 * quota (kiln_kv_quota) are checked by the backend, atomically with the
 * write, because only it knows the size of the value being replaced.
 */
typedef struct kiln_kv_ops {
    const char *name; /* "memory", "sqlite" */
    /* Look a key up. KILN_OK with *len = the value's length; the bytes are
     * copied to buf only when *len <= cap (call again with a bigger buffer
     * otherwise). *pttl (may be NULL) = milliseconds left, -1 = no expiry.
     * KILN_ENOENT if absent or expired. */
    int (*get)(kiln_kv_store *s, const char *ns, const void *key, size_t klen, void *buf,
               size_t cap, size_t *len /* OUT */, int64_t *pttl /* OUT */);
    /* Store a value; ttl_ms 0 = no expiry. With KILN_KV_NX an existing key
     * is left alone and *stored is false (still KILN_OK). A new key beyond
     * q->max_keys, or a write growing the namespace beyond q->max_bytes, is
     * KILN_ELIMIT (q may be NULL: no limits). When this returns KILN_OK the
     * write is as durable as the backend gets (SQLite: committed). */
    int (*set)(kiln_kv_store *s, const char *ns, const void *key, size_t klen, const void *val,
               size_t vlen, int64_t ttl_ms, unsigned flags, kiln_kv_quota *q /* may be NULL */,
               bool *stored /* OUT, may be NULL */);
    /* Delete; *deleted tells whether the key existed. */
    int (*del)(kiln_kv_store *s, const char *ns, const void *key, size_t klen,
               bool *deleted /* OUT, may be NULL */);
    /* Add delta to a decimal integer value (absent = 0, created without
     * expiry; an existing expiry is kept). KILN_ETYPE if the value is not a
     * decimal integer, KILN_EINVAL on overflow: a stored integer outside
     * int64, or value + delta outside it (nothing is written; never
     * clamped), KILN_ELIMIT as for set. */
    int (*incr)(kiln_kv_store *s, const char *ns, const void *key, size_t klen, int64_t delta,
                kiln_kv_quota *q /* may be NULL */, int64_t *out /* OUT */);
    /* Set (ttl_ms > 0) or remove (0) the expiry of an existing key;
     * *found false if it does not exist. */
    int (*expire)(kiln_kv_store *s, const char *ns, const void *key, size_t klen, int64_t ttl_ms,
                  bool *found /* OUT */);
    /* Keys starting with prefix and sorting after `after` (exclusive; alen 0
     * = from the first), at most max (>= 1) of them. */
    int (*list)(kiln_kv_store *s, const char *ns, const void *prefix, size_t plen,
                const void *after, size_t alen, size_t max, kiln_kv_page *out /* OUT */);
    /* Names of the namespaces holding at least one key, sorted; the page's
     * keys are the names. For the CLI; after/max as in list. */
    int (*namespaces)(kiln_kv_store *s, const void *after, size_t alen, size_t max,
                      kiln_kv_page *out /* OUT */);
    /* Flush and free. No call may be in flight. */
    void (*close)(kiln_kv_store *s);

    /* ---- storage events (below, "storage events") ---- */
    /* Replace the store's subscription set (SQLite: persisted in the file,
     * so every process writing it queues events, `kiln kv` included).
     * Queued events of a (function, namespace) no longer in the set are
     * dropped, with one log line per function saying how many. `notify`
     * (may be NULL) is called, from the writing thread, after every commit
     * that queued events. KILN_OK, KILN_EIO, KILN_ENOMEM. */
    int (*subscribe)(kiln_kv_store *s, const kiln_kv_sub *subs, size_t n,
                     void (*notify)(void *arg), void *arg);
    /* Up to max (>= 1) of the events queued for function `fn` with ids
     * above `after`, in id (commit) order. */
    int (*events_read)(kiln_kv_store *s, const char *fn, uint64_t after, size_t max,
                       kiln_kv_events *out /* OUT */);
    /* Events of `fn` are finished: removed from the queue, in one commit;
     * with causes (may be NULL) event i whose causes[i] is non-NULL is moved
     * to the dead-letter table with that text and attempts[i] (attempts
     * may be NULL) instead. Unknown ids are ignored. */
    int (*events_done)(kiln_kv_store *s, const char *fn, const uint64_t *ids,
                       const char *const *causes, const uint32_t *attempts, size_t n);
    /* Record the attempts made so far on events of `fn` (attempts[i] for
     * ids[i]), so that after a restart the count goes on (events_read
     * returns it in kiln_kv_qevent.attempts). Unknown ids are ignored. */
    int (*events_tried)(kiln_kv_store *s, const char *fn, const uint64_t *ids,
                        const uint32_t *attempts, size_t n);
    /* Events queued for `fn` now, and writes refused so far because its
     * queue was full (this process). */
    int (*events_stats)(kiln_kv_store *s, const char *fn, uint64_t *depth /* OUT */,
                        uint64_t *refused /* OUT */);
    /* Up to max dead-lettered events of every function, newest first. */
    int (*events_dead)(kiln_kv_store *s, size_t max, kiln_kv_events *out /* OUT */);
} kiln_kv_ops;

/* Every backend's store starts with this header. */
struct kiln_kv_store {
    const kiln_kv_ops *ops;
};

/* An empty in-memory store (lost when closed). KILN_OK or KILN_ENOMEM. */
KILN_API int kiln_kv_mem_open(kiln_kv_store **out /* OUT */, kiln_err *err);

typedef struct kiln_kv_sqlite_options {
    unsigned max_batch;      /* writes per commit; 0 = 256 */
    bool lazy;               /* open the file at the first operation, not now */
    bool synchronous_normal; /* fsync at checkpoints only (benchmarks; loses
                                acknowledged writes on power failure, not on
                                a process crash) */
} kiln_kv_sqlite_options;

/*
 * A persistent store in the SQLite database at `path` (created with its
 * directory if missing; WAL mode). One writer thread applies writes in
 * batches, one transaction and one fsync per batch; every caller of a write
 * waits until its batch has committed (group commit). Reads use a connection
 * per calling thread. `o` may be NULL. With o->lazy the file is opened by the
 * first operation, whose failure is then KILN_EIO (and logged once).
 * Returns KILN_OK, KILN_EIO (cannot open or not a Kiln KV database; message
 * in err) or KILN_ENOMEM.
 */
KILN_API int kiln_kv_sqlite_open(const char *path, const kiln_kv_sqlite_options *o,
                                 kiln_kv_store **out /* OUT */, kiln_err *err);

/* Default database path: $KILN_HOME/kv.db, else $HOME/.kiln/kv.db, into buf.
 * KILN_OK or KILN_ENOENT (neither variable set) / KILN_ELIMIT (too long). */
KILN_API int kiln_kv_default_path(char *buf, size_t cap);

/* Close a store opened with kiln_kv_*_open. NULL is ok. */
static inline void kiln_kv_close(kiln_kv_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

/* ---- configuration ----------------------------------------------------------- */

/* A global namespace as declared at the top level of the configuration. */
typedef struct kiln_kv_ns_config {
    const char *name;
    const char *backend; /* "memory", "sqlite" or NULL = the server's default */
    kiln_kv_limits limits;
} kiln_kv_ns_config;

/* Server-wide KV settings. */
typedef struct kiln_kv_server_config {
    const char *path;    /* SQLite database; NULL = kiln_kv_default_path() */
    const char *backend; /* default backend; NULL = "sqlite" */
    const kiln_kv_ns_config *namespaces;
    size_t n_namespaces;
} kiln_kv_server_config;

/* A grant of a global namespace to a function. */
typedef struct kiln_kv_grant_config {
    const char *ns;
    bool write;
} kiln_kv_grant_config;

/* Per-function KV settings (kiln_function.kv). */
typedef struct kiln_kv_config {
    const char *backend;   /* of the private namespace; NULL = the server's default */
    kiln_kv_limits limits; /* of the private namespace */
    const kiln_kv_grant_config *grants;
    size_t n_grants;
} kiln_kv_config;

/* Is `name` usable as a global namespace name (1..64 of [A-Za-z0-9_.-])? */
KILN_API bool kiln_kv_ns_name_valid(const char *name);

/* ---- shared stores ------------------------------------------------------------ */

/*
 * Get the process-wide store of a backend: one memory store per process, one
 * SQLite store per database path (opened lazily). Stores are reference
 * counted so that a configuration reload, which builds the new route table
 * before it drops the old one, keeps their data and connections. KILN_OK,
 * KILN_EINVAL (unknown backend) or KILN_ENOMEM.
 */
KILN_API int kiln_kv_acquire(const char *backend, const char *path,
                             kiln_kv_store **out /* OUT */, kiln_err *err);
KILN_API void kiln_kv_release(kiln_kv_store *s);

/* ---- namespaces and grants ------------------------------------------------------ */

/* One namespace as a function sees it. */
typedef struct kiln_kv_ns {
    const char *name;     /* as the guest names it; "" = the private namespace */
    const char *store_ns; /* name inside the store */
    kiln_kv_store *store;
    kiln_kv_limits limits; /* defaults filled in */
    bool writable;
    const char *fn_name;   /* the function whose grant set this is (log messages) */
} kiln_kv_ns;

typedef struct kiln_kv_grants kiln_kv_grants;

/*
 * The grant set of function `fn_name`: its private namespace plus the
 * grants of `fc` (may be NULL: private namespace only, defaults). Stores are
 * acquired from the registry and released by kiln_kv_grants_free. Returns
 * KILN_OK, KILN_ECONFIG (bad backend or namespace name; message in err) or
 * KILN_ENOMEM.
 */
KILN_API int kiln_kv_grants_new(const kiln_kv_server_config *srv, const char *fn_name,
                                const kiln_kv_config *fc, kiln_kv_grants **out /* OUT */,
                                kiln_err *err);
/* Same over explicit stores (tests, benchmarks): the private namespace lives
 * in `priv`, every grant in `global`; nothing is acquired. */
KILN_API int kiln_kv_grants_new_with(kiln_kv_store *priv, kiln_kv_store *global,
                                     const char *fn_name, const kiln_kv_config *fc,
                                     kiln_kv_grants **out /* OUT */, kiln_err *err);
KILN_API void kiln_kv_grants_free(kiln_kv_grants *g);

/* The namespace called `name` (len bytes; len 0 = private), or NULL if the
 * function was not granted it. */
KILN_API const kiln_kv_ns *kiln_kv_grants_find(const kiln_kv_grants *g, const char *name,
                                              size_t len);

/* Operations on a granted namespace: the backend operations with the
 * namespace's limits and its read/write grant applied (KILN_EPERM for a
 * write to a read-only grant; KILN_ELIMIT for an oversized key or value, a
 * key count or byte quota reached). A write refused by the key count or the
 * byte quota is logged ("kiln kv: function 'f': namespace ... is full"),
 * at most once a minute per namespace so that a guest retrying in a loop
 * cannot flood the log. */
KILN_API int kiln_kv_ns_get(const kiln_kv_ns *ns, const void *key, size_t klen, void *buf,
                            size_t cap, size_t *len /* OUT */, int64_t *pttl /* OUT */);
/* The value in a new kiln_malloc'd buffer (NUL-terminated for convenience). */
KILN_API int kiln_kv_ns_get_alloc(const kiln_kv_ns *ns, const void *key, size_t klen,
                                  uint8_t **val /* OUT */, size_t *len /* OUT */);
KILN_API int kiln_kv_ns_set(const kiln_kv_ns *ns, const void *key, size_t klen, const void *val,
                            size_t vlen, int64_t ttl_ms, unsigned flags,
                            bool *stored /* OUT, may be NULL */);
KILN_API int kiln_kv_ns_del(const kiln_kv_ns *ns, const void *key, size_t klen,
                            bool *deleted /* OUT, may be NULL */);
KILN_API int kiln_kv_ns_incr(const kiln_kv_ns *ns, const void *key, size_t klen, int64_t delta,
                             int64_t *out /* OUT */);
KILN_API int kiln_kv_ns_expire(const kiln_kv_ns *ns, const void *key, size_t klen,
                               int64_t ttl_ms, bool *found /* OUT */);
KILN_API int kiln_kv_ns_list(const kiln_kv_ns *ns, const void *prefix, size_t plen,
                             const void *after, size_t alen, size_t max,
                             kiln_kv_page *out /* OUT */);

/* Current wall-clock time in milliseconds (the clock expiry is measured by). */
KILN_API int64_t kiln_kv_now_ms(void);

#endif
