/*
 * kv_sqlite.c - the persistent KV backend: one SQLite database in WAL mode.
 *
 * Writes: callers queue an operation and sleep; a single writer thread takes
 * everything queued, applies it in one transaction, commits (one fsync with
 * synchronous=FULL) and wakes the callers of that batch. So an acknowledged
 * write is on disk, and concurrent requests share fsyncs instead of queueing
 * on them (group commit). Each operation's own result (stored, exists, over
 * the key limit) is decided inside the batch; a failed commit fails every
 * operation of the batch.
 *
 * Reads: each calling thread gets its own read connection (thread-specific
 * data of the store), so readers never contend with each other or wait for
 * the writer: WAL readers see the last committed state.
 *
 * Key counts and byte totals (keys + values) for the quota are cached by the
 * writer per namespace (rows, expired ones included until purged); at a
 * limit it purges the namespace's expired rows and counts again. The writer
 * also purges expired rows store-wide about once a second when it has work.
 *
 * Storage events (kv.h, docs/internals/events.md): the subscription set is
 * a table of the file (kv_event_subs), loaded when the store opens, so any
 * process writing the file queues events. A write in a subscribed namespace
 * inserts its kv_events rows (one per subscriber) in the batch's own
 * transaction; if such an insert fails the whole batch rolls back, so an
 * event exists iff its write committed.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"
#include "loop/loop.h"
#include "store/kv_int.h"

#define APP_ID 0x4b494c4e /* "KILN" */
#define BUSY_TIMEOUT_MS 10000
#define PURGE_INTERVAL_MS 1000
#define COUNT_BUCKETS 64

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS kv("
    " ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(ns, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires) WHERE expires > 0;"
    "CREATE TABLE IF NOT EXISTS kv_event_subs("
    " fn TEXT NOT NULL, ns TEXT NOT NULL, types INTEGER NOT NULL,"
    " max_queue INTEGER NOT NULL, PRIMARY KEY(fn, ns)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kv_events("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, fn TEXT NOT NULL, ns TEXT NOT NULL,"
    " key BLOB NOT NULL, type INTEGER NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS kv_events_fn ON kv_events(fn, id);"
    "CREATE TABLE IF NOT EXISTS kv_events_dead("
    " id INTEGER PRIMARY KEY, fn TEXT NOT NULL, ns TEXT NOT NULL, key BLOB NOT NULL,"
    " type INTEGER NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL,"
    " attempts INTEGER NOT NULL, cause TEXT NOT NULL, failed_at INTEGER NOT NULL);";

/* Dead letters kept (the newest). */
#define MAX_DEAD 10000

typedef enum wop_kind { W_SET, W_DEL, W_INCR, W_EXPIRE, W_SUBS, W_EV_DONE, W_EV_TRIED } wop_kind;

/* A queued write; lives on the caller's stack until `done`. */
typedef struct wop {
    struct wop *next;
    wop_kind kind;
    const char *ns;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    int64_t ttl_ms;
    int64_t delta;
    unsigned flags;
    kiln_kv_quota *quota; /* NULL = no limits; its OUT fields are results */
    const void *aux, *aux2; /* W_SUBS: the subscriptions; W_EV_DONE: causes, attempts */
    /* results */
    int rc;
    bool flag; /* stored / deleted / found */
    int64_t out;
    bool done;
    kl_waiter *waiter; /* a fiber waiting for this op (src/loop), or NULL: done_cv */
} wop;

typedef struct ns_count {
    struct ns_count *next;
    uint64_t n;     /* rows; UINT64_MAX = not counted yet */
    uint64_t bytes; /* sum of key and value lengths; valid when n is */
    char name[];
} ns_count;

/* A read connection, owned by the store, used by one thread. */
typedef struct rconn {
    struct rconn *next;
    sqlite3 *db;
    sqlite3_stmt *get, *list, *nss, *evr, *dead;
} rconn;

/* Per subscription of the current set: events queued, writes refused. */
typedef struct ev_stat {
    uint64_t depth;
    uint64_t refused;
} ev_stat;

typedef struct sq_store {
    kiln_kv_store base;
    char *path;
    kiln_kv_sqlite_options o;

    pthread_mutex_t open_mu;
    atomic_int state; /* 0 not open, 1 open, -1 failed */
    char open_error[600];

    pthread_mutex_t mu; /* queue */
    pthread_cond_t work_cv, done_cv;
    wop *head, *tail;
    bool stop;
    pthread_t writer;
    bool writer_started;

    /* writer thread only */
    sqlite3 *wdb;
    sqlite3_stmt *w_sel, *w_put, *w_del, *w_exp, *w_count, *w_purge_ns, *w_purge;
    ns_count *counts[COUNT_BUCKETS];
    int64_t last_purge;

    /* storage events: the set and its counters change under evmu (the
     * writer, W_SUBS) and are read under it by events_stats */
    pthread_mutex_t evmu;
    kv_subset *subs;
    ev_stat *ev_stats;
    void (*notify)(void *arg);
    void *notify_arg;
    sqlite3_stmt *w_ev_put, *w_ev_del, *w_ev_dead, *w_ev_count, *w_ev_expired, *w_ev_tried;
    int64_t batch_ns;  /* event timestamp of the batch */
    bool batch_events; /* the batch queued events: notify after commit */
    bool batch_fail;   /* an event insert failed: roll the batch back */

    pthread_key_t rkey;
    bool rkey_ok;
    pthread_mutex_t rmu;
    rconn *readers;
} sq_store;

/* ---- opening ---------------------------------------------------------------- */

static int mkdirs_for(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

static int open_conn(const char *path, bool create, sqlite3 **out)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, out, flags, NULL);
    if (rc == SQLITE_OK)
        sqlite3_busy_timeout(*out, BUSY_TIMEOUT_MS);
    return rc;
}

static void *writer_main(void *arg);
static int subs_load(sq_store *s);

/* kv_events of a file made before it had `attempts`. */
static int add_attempts_column(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info('kv_events') "
                                "WHERE name='attempts'", -1, &st, NULL);
    bool has = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || has)
        return rc;
    return exec(db, "ALTER TABLE kv_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0");
}
static int ev_expired(sq_store *s, const char *ns, int64_t now);
static int ev_queue(sq_store *s, const struct wop *op, unsigned type, const void *payload,
                    size_t plen);

/* Open the writer connection, check or create the schema, start the writer.
 * Called once, under open_mu. */
static int do_open(sq_store *s)
{
    char *msg = s->open_error;
    size_t cap = sizeof(s->open_error);
    if (mkdirs_for(s->path) != 0) {
        snprintf(msg, cap, "%s: cannot create its directory: %s", s->path, strerror(errno));
        return KILN_EIO;
    }
    int rc = open_conn(s->path, true, &s->wdb);
    if (rc != SQLITE_OK) {
        snprintf(msg, cap, "%s: cannot open: %s", s->path,
                 s->wdb ? sqlite3_errmsg(s->wdb) : sqlite3_errstr(rc));
        return KILN_EIO;
    }
    /* Refuse a database that belongs to something else. */
    sqlite3_stmt *st = NULL;
    int app = 0;
    bool has_tables = false;
    rc = sqlite3_prepare_v2(s->wdb, "PRAGMA application_id", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        app = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        has_tables = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        snprintf(msg, cap, "%s: not a readable SQLite database: %s", s->path,
                 sqlite3_errmsg(s->wdb));
        return KILN_EIO;
    }
    if (app != APP_ID && (app != 0 || has_tables)) {
        snprintf(msg, cap, "%s: not a Kiln key-value database (application_id %d); point the "
                 "kv path elsewhere", s->path, app);
        return KILN_EIO;
    }
    /* WAL: readers do not block the writer nor it them. FULL: every commit
     * is fsynced, so an acknowledged write survives a crash of the machine,
     * not only of the process. */
    st = NULL;
    const char *mode = "";
    rc = sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(st, 0);
    bool wal = mode != NULL && strcmp(mode, "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) {
        snprintf(msg, cap, "%s: cannot switch to WAL mode: %s", s->path, sqlite3_errmsg(s->wdb));
        return KILN_EIO;
    }
    rc = exec(s->wdb, s->o.synchronous_normal ? "PRAGMA synchronous=NORMAL"
                                              : "PRAGMA synchronous=FULL");
    if (rc == SQLITE_OK)
        rc = exec(s->wdb, schema);
    if (rc == SQLITE_OK)
        rc = add_attempts_column(s->wdb);
    if (rc == SQLITE_OK && app != APP_ID) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA application_id=%d", APP_ID);
        rc = exec(s->wdb, sql);
    }
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "SELECT value, expires, length(value) FROM kv WHERE ns=?1 AND key=?2",
                  &s->w_sel);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb,
                  "INSERT INTO kv(ns, key, value, expires) VALUES(?1, ?2, ?3, ?4) "
                  "ON CONFLICT(ns, key) DO UPDATE SET value=excluded.value, "
                  "expires=excluded.expires",
                  &s->w_put);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "DELETE FROM kv WHERE ns=?1 AND key=?2", &s->w_del);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "UPDATE kv SET expires=?3 WHERE ns=?1 AND key=?2", &s->w_exp);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb,
                  "SELECT count(*), coalesce(sum(length(key) + length(value)), 0) FROM kv "
                  "WHERE ns=?1",
                  &s->w_count);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "DELETE FROM kv WHERE ns=?1 AND expires>0 AND expires<=?2",
                  &s->w_purge_ns);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb,
                  "DELETE FROM kv WHERE (ns, key) IN (SELECT ns, key FROM kv "
                  "WHERE expires>0 AND expires<=?1 LIMIT 10000)",
                  &s->w_purge);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb,
                  "INSERT INTO kv_events(fn, ns, key, type, ts, payload) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                  &s->w_ev_put);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "DELETE FROM kv_events WHERE id=?1 AND fn=?2", &s->w_ev_del);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb,
                  "INSERT OR REPLACE INTO kv_events_dead(id, fn, ns, key, type, ts, payload, "
                  "attempts, cause, failed_at) SELECT id, fn, ns, key, type, ts, payload, ?3, "
                  "?4, ?5 FROM kv_events WHERE id=?1 AND fn=?2",
                  &s->w_ev_dead);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "SELECT count(*) FROM kv_events WHERE fn=?1", &s->w_ev_count);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb,
                  "INSERT INTO kv_events(fn, ns, key, type, ts, payload) SELECT ?1, ns, key, 1, "
                  "?3, x'' FROM kv WHERE ns=?2 AND expires>0 AND expires<=?4 ORDER BY key",
                  &s->w_ev_expired);
    if (rc == SQLITE_OK)
        rc = prep(s->wdb, "UPDATE kv_events SET attempts=?1 WHERE id=?2 AND fn=?3",
                  &s->w_ev_tried);
    if (rc == SQLITE_OK)
        rc = subs_load(s);
    if (rc != SQLITE_OK) {
        snprintf(msg, cap, "%s: cannot set up the database: %s", s->path,
                 sqlite3_errmsg(s->wdb));
        return KILN_EIO;
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        snprintf(msg, cap, "%s: cannot start the writer thread", s->path);
        return KILN_EIO;
    }
    s->writer_started = true;
    return KILN_OK;
}

/* KILN_OK when the database is usable; KILN_EIO (logged once) otherwise. */
static int ensure_open(sq_store *s)
{
    int st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st == 1)
        return KILN_OK;
    if (st < 0)
        return KILN_EIO;
    pthread_mutex_lock(&s->open_mu);
    st = atomic_load(&s->state);
    if (st == 0) {
        st = do_open(s) == KILN_OK ? 1 : -1;
        if (st < 0)
            kv_log("%s", s->open_error);
        atomic_store_explicit(&s->state, st, memory_order_release);
    }
    pthread_mutex_unlock(&s->open_mu);
    return st == 1 ? KILN_OK : KILN_EIO;
}

/* ---- the writer --------------------------------------------------------------- */

static ns_count *count_slot(sq_store *s, const char *ns)
{
    size_t h = 5381;
    for (const char *p = ns; *p; p++)
        h = h * 33 + (unsigned char)*p;
    for (ns_count *c = s->counts[h % COUNT_BUCKETS]; c != NULL; c = c->next)
        if (strcmp(c->name, ns) == 0)
            return c;
    size_t len = strlen(ns);
    ns_count *c = kiln_malloc(sizeof(*c) + len + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->name, ns, len + 1);
    c->next = s->counts[h % COUNT_BUCKETS];
    s->counts[h % COUNT_BUCKETS] = c;
    /* Unknown yet: counted on first use. */
    c->n = UINT64_MAX;
    return c;
}

static void counts_forget(sq_store *s)
{
    for (size_t i = 0; i < COUNT_BUCKETS; i++)
        for (ns_count *c = s->counts[i]; c != NULL; c = c->next)
            c->n = UINT64_MAX;
}

static int count_rows(sq_store *s, const char *ns, ns_count *c)
{
    sqlite3_bind_text(s->w_count, 1, ns, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s->w_count);
    if (rc == SQLITE_ROW) {
        c->n = (uint64_t)sqlite3_column_int64(s->w_count, 0);
        c->bytes = (uint64_t)sqlite3_column_int64(s->w_count, 1);
    }
    sqlite3_reset(s->w_count);
    return rc == SQLITE_ROW ? KILN_OK : KILN_EIO;
}

static bool quota_ok(const ns_count *c, const kiln_kv_quota *q, bool is_new, uint64_t old_size,
                     uint64_t new_size, bool *keys_ok)
{
    *keys_ok = !is_new || q->max_keys == 0 || c->n < q->max_keys;
    return *keys_ok && kv_quota_fits(c->bytes, old_size, new_size, q->max_bytes);
}

/* May a row of new_size bytes (key + value) replace one of old_size (a new
 * row when is_new) in op's namespace? *slot is the namespace's counters. */
static int check_room(sq_store *s, wop *op, int64_t now, bool is_new, uint64_t old_size,
                      uint64_t new_size, ns_count **slot)
{
    ns_count *c = count_slot(s, op->ns);
    *slot = c;
    if (c == NULL)
        return KILN_ENOMEM;
    if (c->n == UINT64_MAX && count_rows(s, op->ns, c) != KILN_OK)
        return KILN_EIO;
    kiln_kv_quota *q = op->quota;
    bool keys_ok;
    if (q == NULL || quota_ok(c, q, is_new, old_size, new_size, &keys_ok))
        return KILN_OK;
    /* Expired keys purged here are removed for subscribers too. */
    if (ev_expired(s, op->ns, now) != KILN_OK)
        return KILN_EIO;
    sqlite3_bind_text(s->w_purge_ns, 1, op->ns, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->w_purge_ns, 2, now);
    int rc = sqlite3_step(s->w_purge_ns);
    sqlite3_reset(s->w_purge_ns);
    if (rc != SQLITE_DONE || count_rows(s, op->ns, c) != KILN_OK)
        return KILN_EIO;
    if (quota_ok(c, q, is_new, old_size, new_size, &keys_ok))
        return KILN_OK;
    q->over_bytes = keys_ok;
    q->used_bytes = c->bytes;
    return KILN_ELIMIT;
}

/* Count a write that check_room admitted (c may be NULL or not counted). */
static void count_write(ns_count *c, bool is_new, uint64_t old_size, uint64_t new_size)
{
    if (c == NULL || c->n == UINT64_MAX)
        return;
    if (is_new)
        c->n++;
    c->bytes = c->bytes - (c->bytes < old_size ? c->bytes : old_size) + new_size;
}

typedef enum row_state { ROW_ABSENT, ROW_LIVE, ROW_EXPIRED } row_state;

/* Look the key up; for a live row copies the value (kiln_malloc) when asked.
 * *old_vlen (may be NULL) = the stored value's length, live or expired. */
static int lookup(sq_store *s, const wop *op, int64_t now, row_state *state, int64_t *expires,
                  uint8_t **val, size_t *vlen, uint64_t *old_vlen)
{
    sqlite3_stmt *st = s->w_sel;
    sqlite3_bind_text(st, 1, op->ns, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, op->key, (int)op->klen, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int out = KILN_OK;
    *state = ROW_ABSENT;
    if (rc == SQLITE_ROW) {
        *expires = sqlite3_column_int64(st, 1);
        *state = *expires == 0 || *expires > now ? ROW_LIVE : ROW_EXPIRED;
        if (old_vlen != NULL)
            *old_vlen = (uint64_t)sqlite3_column_int64(st, 2);
        if (*state == ROW_LIVE && val != NULL) {
            const void *b = sqlite3_column_blob(st, 0);
            *vlen = (size_t)sqlite3_column_bytes(st, 0);
            *val = kiln_malloc(*vlen + 1);
            if (*val == NULL)
                out = KILN_ENOMEM;
            else if (*vlen > 0)
                memcpy(*val, b, *vlen);
        }
    } else if (rc != SQLITE_DONE) {
        out = KILN_EIO;
    }
    sqlite3_reset(st);
    return out;
}

static int put_row(sq_store *s, const wop *op, const void *val, size_t vlen, int64_t expires)
{
    sqlite3_stmt *st = s->w_put;
    sqlite3_bind_text(st, 1, op->ns, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, op->key, (int)op->klen, SQLITE_STATIC);
    /* zeroblob-safe: a NULL pointer with length 0 would bind NULL. */
    sqlite3_bind_blob(st, 3, vlen ? val : "", (int)vlen, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, expires);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KILN_OK : KILN_EIO;
}

/* Delete op's row, which holds old_size bytes (key + value), and count it. */
static int del_row(sq_store *s, const wop *op, uint64_t old_size)
{
    sqlite3_bind_text(s->w_del, 1, op->ns, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s->w_del, 2, op->key, (int)op->klen, SQLITE_STATIC);
    int rc = sqlite3_step(s->w_del) == SQLITE_DONE ? KILN_OK : KILN_EIO;
    sqlite3_reset(s->w_del);
    ns_count *c = rc == KILN_OK ? count_slot(s, op->ns) : NULL;
    if (c != NULL && c->n != UINT64_MAX) {
        c->n -= c->n > 0 ? 1 : 0;
        c->bytes -= c->bytes < old_size ? c->bytes : old_size;
    }
    return rc;
}

/* An expired row is gone for the caller: delete it so that the write below
 * is a new key for the limits (and no purge can remove it under us). */
static int drop_expired(sq_store *s, const wop *op, row_state *state, uint64_t old_vlen)
{
    if (*state != ROW_EXPIRED)
        return KILN_OK;
    *state = ROW_ABSENT;
    /* Its expiry is a removal subscribers hear of, before the write. */
    int rc = ev_queue(s, op, KILN_KV_EV_REMOVED, NULL, 0);
    return rc == KILN_OK ? del_row(s, op, op->klen + old_vlen) : rc;
}

/* ---- storage events (writer thread) ------------------------------------------------ */

/* Count the queued events of every subscription (on open, after a W_SUBS
 * and after a failed commit). Called with evmu held or before the store is
 * shared. */
static int ev_recount(sq_store *s)
{
    int rc = KILN_OK;
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        sqlite3_bind_text(s->w_ev_count, 1, s->subs->subs[i].fn, -1, SQLITE_STATIC);
        if (sqlite3_step(s->w_ev_count) == SQLITE_ROW)
            s->ev_stats[i].depth = (uint64_t)sqlite3_column_int64(s->w_ev_count, 0);
        else
            rc = KILN_EIO;
        sqlite3_reset(s->w_ev_count);
    }
    return rc;
}

/* Install `set` (owned from now on) with fresh counters. */
static int subs_install(sq_store *s, kv_subset *set)
{
    ev_stat *st = kiln_calloc(set->n ? set->n : 1, sizeof(*st));
    if (st == NULL) {
        kiln_free(set);
        return KILN_ENOMEM;
    }
    pthread_mutex_lock(&s->evmu);
    /* Refusal counts follow their function across a change of the set. */
    for (size_t i = 0; i < set->n; i++)
        for (size_t j = 0; s->subs != NULL && j < s->subs->n; j++)
            if (strcmp(set->subs[i].fn, s->subs->subs[j].fn) == 0)
                st[i].refused = s->ev_stats[j].refused;
    kiln_free(s->subs);
    kiln_free(s->ev_stats);
    s->subs = set;
    s->ev_stats = st;
    int rc = ev_recount(s);
    pthread_mutex_unlock(&s->evmu);
    return rc;
}

/* The set stored in the file (do_open). SQLITE_OK or an SQLite error. */
static int subs_load(sq_store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb, "SELECT fn, ns, types, max_queue FROM kv_event_subs",
                                -1, &st, NULL);
    kiln_kv_sub *subs = NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            kiln_kv_sub *a = kiln_realloc(subs, cap * sizeof(*a));
            char **b = a ? kiln_realloc(names, cap * 2 * sizeof(*b)) : NULL;
            if (a != NULL)
                subs = a;
            if (b == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            names = b;
        }
        names[2 * n] = kiln_strdup((const char *)sqlite3_column_text(st, 0));
        names[2 * n + 1] = kiln_strdup((const char *)sqlite3_column_text(st, 1));
        subs[n] = (kiln_kv_sub){names[2 * n], names[2 * n + 1], (unsigned)sqlite3_column_int(st, 2),
                                (uint64_t)sqlite3_column_int64(st, 3)};
        n++;
        if (names[2 * n - 2] == NULL || names[2 * n - 1] == NULL)
            rc = SQLITE_NOMEM;
    }
    sqlite3_finalize(st);
    kv_subset *set = rc == SQLITE_OK ? kv_subset_copy(subs, n) : NULL;
    for (size_t i = 0; i < 2 * n; i++)
        kiln_free(names[i]);
    kiln_free(names);
    kiln_free(subs);
    if (rc != SQLITE_OK)
        return rc;
    if (set == NULL || subs_install(s, set) != KILN_OK)
        return SQLITE_NOMEM;
    return SQLITE_OK;
}

/* May op queue an event of `type`? KILN_ELIMIT (logged) when a subscriber's
 * queue is full: the write is refused, nothing is lost. */
static int ev_room(sq_store *s, wop *op, unsigned type)
{
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        const kiln_kv_sub *sub = &s->subs->subs[i];
        if (!(sub->types & (1u << type)) || strcmp(sub->ns, op->ns) != 0)
            continue;
        if (s->ev_stats[i].depth < sub->max_queue)
            continue;
        pthread_mutex_lock(&s->evmu);
        s->ev_stats[i].refused++;
        pthread_mutex_unlock(&s->evmu);
        kv_log_queue_full(s, sub->fn, sub->ns, sub->max_queue);
        if (op->quota != NULL)
            op->quota->over_events = true;
        return KILN_ELIMIT;
    }
    return KILN_OK;
}

/* Queue op's events (after its row changed, in the same transaction). A
 * failure fails the whole batch: a write must not commit without them. */
static int ev_queue(sq_store *s, const wop *op, unsigned type, const void *payload, size_t plen)
{
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        const kiln_kv_sub *sub = &s->subs->subs[i];
        if (!(sub->types & (1u << type)) || strcmp(sub->ns, op->ns) != 0)
            continue;
        sqlite3_stmt *st = s->w_ev_put;
        sqlite3_bind_text(st, 1, sub->fn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->ns, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, op->key, (int)op->klen, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, (int)type);
        sqlite3_bind_int64(st, 5, s->batch_ns);
        sqlite3_bind_blob(st, 6, plen ? payload : "", (int)plen, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            s->batch_fail = true;
            return KILN_EIO;
        }
        pthread_mutex_lock(&s->evmu);
        s->ev_stats[i].depth++;
        pthread_mutex_unlock(&s->evmu);
        s->batch_events = true;
    }
    return KILN_OK;
}

/* Queue object-removed for every expired row of ns about to be purged
 * (the caller deletes them in the same transaction). */
static int ev_expired(sq_store *s, const char *ns, int64_t now)
{
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        const kiln_kv_sub *sub = &s->subs->subs[i];
        if (!(sub->types & (1u << KILN_KV_EV_REMOVED)) || strcmp(sub->ns, ns) != 0)
            continue;
        sqlite3_stmt *st = s->w_ev_expired;
        sqlite3_bind_text(st, 1, sub->fn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, s->batch_ns);
        sqlite3_bind_int64(st, 4, now);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            s->batch_fail = true;
            return KILN_EIO;
        }
        int n = sqlite3_changes(s->wdb);
        if (n > 0) {
            pthread_mutex_lock(&s->evmu);
            s->ev_stats[i].depth += (uint64_t)n;
            pthread_mutex_unlock(&s->evmu);
            s->batch_events = true;
        }
    }
    return KILN_OK;
}

/* The periodic purge of subscribed namespaces: their expired rows become
 * object-removed events and are deleted, all of them, in this batch. */
static bool ev_purge_subscribed(sq_store *s, int64_t now)
{
    bool purged = false;
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++) {
        const char *ns = s->subs->subs[i].ns;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(s->subs->subs[j].ns, ns) == 0;
        if (seen || ev_expired(s, ns, now) != KILN_OK)
            continue;
        sqlite3_bind_text(s->w_purge_ns, 1, ns, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->w_purge_ns, 2, now);
        int rc = sqlite3_step(s->w_purge_ns);
        if (rc != SQLITE_DONE)
            s->batch_fail = true; /* events without their deletion: roll back */
        else if (sqlite3_changes(s->wdb) > 0)
            purged = true;
        sqlite3_reset(s->w_purge_ns);
    }
    return purged;
}

/* W_SUBS: store the new set, drop the events of subscriptions that left
 * it (one log line per function), install it. */
static int apply_subs(sq_store *s, const kiln_kv_sub *subs, size_t n)
{
    kv_subset *set = kv_subset_copy(subs, n);
    if (set == NULL)
        return KILN_ENOMEM;
    sqlite3_stmt *ins = NULL, *orphans = NULL;
    int rc = exec(s->wdb, "DELETE FROM kv_event_subs");
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb, "INSERT OR REPLACE INTO kv_event_subs VALUES(?1, ?2, "
                                "?3, ?4)", -1, &ins, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < set->n; i++) {
        sqlite3_bind_text(ins, 1, set->subs[i].fn, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, set->subs[i].ns, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 3, (int)set->subs[i].types);
        sqlite3_bind_int64(ins, 4, (sqlite3_int64)set->subs[i].max_queue);
        rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb,
                                "SELECT fn, ns, count(*) FROM kv_events e WHERE NOT EXISTS "
                                "(SELECT 1 FROM kv_event_subs u WHERE u.fn=e.fn AND u.ns=e.ns) "
                                "GROUP BY fn, ns",
                                -1, &orphans, NULL);
    while (rc == SQLITE_OK && sqlite3_step(orphans) == SQLITE_ROW)
        kv_log("events: function '%s' no longer subscribes to namespace '%s': dropped its %lld "
               "queued event(s)",
               (const char *)sqlite3_column_text(orphans, 0),
               (const char *)sqlite3_column_text(orphans, 1),
               (long long)sqlite3_column_int64(orphans, 2));
    sqlite3_finalize(orphans);
    if (rc == SQLITE_OK)
        rc = exec(s->wdb, "DELETE FROM kv_events WHERE NOT EXISTS (SELECT 1 FROM kv_event_subs "
                          "u WHERE u.fn=kv_events.fn AND u.ns=kv_events.ns)");
    if (rc != SQLITE_OK) {
        kiln_free(set);
        s->batch_fail = true;
        return KILN_EIO;
    }
    return subs_install(s, set);
}

/* W_EV_TRIED: record attempts made, so a restart continues the count. */
static int apply_ev_tried(sq_store *s, wop *op)
{
    const uint64_t *ids = op->key;
    const uint32_t *attempts = op->aux2;
    for (size_t i = 0; i < op->klen; i++) {
        sqlite3_stmt *u = s->w_ev_tried;
        sqlite3_bind_int(u, 1, (int)attempts[i]);
        sqlite3_bind_int64(u, 2, (sqlite3_int64)ids[i]);
        sqlite3_bind_text(u, 3, op->ns, -1, SQLITE_STATIC);
        int rc = sqlite3_step(u);
        sqlite3_reset(u);
        if (rc != SQLITE_DONE)
            return KILN_EIO;
    }
    return KILN_OK;
}

/* W_EV_DONE: remove finished events, dead-lettering the failed ones. */
static int apply_ev_done(sq_store *s, wop *op, int64_t now)
{
    const uint64_t *ids = op->key;
    const char *const *causes = op->aux;
    const uint32_t *attempts = op->aux2;
    bool dead = false;
    for (size_t i = 0; i < op->klen; i++) {
        if (causes != NULL && causes[i] != NULL) {
            sqlite3_stmt *d = s->w_ev_dead;
            sqlite3_bind_int64(d, 1, (sqlite3_int64)ids[i]);
            sqlite3_bind_text(d, 2, op->ns, -1, SQLITE_STATIC);
            sqlite3_bind_int(d, 3, attempts ? (int)attempts[i] : 0);
            sqlite3_bind_text(d, 4, causes[i], -1, SQLITE_STATIC);
            sqlite3_bind_int64(d, 5, now);
            int rc = sqlite3_step(d);
            sqlite3_reset(d);
            if (rc != SQLITE_DONE)
                return KILN_EIO;
            dead = true;
        }
        sqlite3_bind_int64(s->w_ev_del, 1, (sqlite3_int64)ids[i]);
        sqlite3_bind_text(s->w_ev_del, 2, op->ns, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s->w_ev_del);
        sqlite3_reset(s->w_ev_del);
        if (rc != SQLITE_DONE)
            return KILN_EIO;
        if (sqlite3_changes(s->wdb) > 0) {
            pthread_mutex_lock(&s->evmu);
            for (size_t j = 0; s->subs != NULL && j < s->subs->n; j++)
                if (strcmp(s->subs->subs[j].fn, op->ns) == 0 && s->ev_stats[j].depth > 0)
                    s->ev_stats[j].depth--;
            pthread_mutex_unlock(&s->evmu);
        }
    }
    if (dead) {
        char sql[160];
        snprintf(sql, sizeof(sql), "DELETE FROM kv_events_dead WHERE id IN (SELECT id FROM "
                 "kv_events_dead ORDER BY id DESC LIMIT -1 OFFSET %d)", MAX_DEAD);
        if (exec(s->wdb, sql) != SQLITE_OK)
            return KILN_EIO;
    }
    return KILN_OK;
}

static void apply(sq_store *s, wop *op, int64_t now)
{
    row_state state;
    int64_t expires = 0;
    uint64_t old_vlen = 0;
    ns_count *c = NULL;
    unsigned evt = KILN_KV_EV_ADDED;
    int rc;
    switch (op->kind) {
    case W_SET:
        rc = lookup(s, op, now, &state, &expires, NULL, NULL, &old_vlen);
        if (rc == KILN_OK && state == ROW_LIVE && (op->flags & KILN_KV_NX)) {
            op->flag = false;
            break;
        }
        evt = state == ROW_LIVE ? KILN_KV_EV_UPDATED : KILN_KV_EV_ADDED;
        if (rc == KILN_OK)
            rc = ev_room(s, op, evt);
        if (rc == KILN_OK)
            rc = drop_expired(s, op, &state, old_vlen);
        if (rc == KILN_OK)
            rc = check_room(s, op, now, state == ROW_ABSENT,
                            state == ROW_LIVE ? op->klen + old_vlen : 0, op->klen + op->vlen, &c);
        if (rc == KILN_OK)
            rc = put_row(s, op, op->val, op->vlen, kv_expiry(now, op->ttl_ms));
        if (rc == KILN_OK)
            count_write(c, state == ROW_ABSENT, state == ROW_LIVE ? op->klen + old_vlen : 0,
                        op->klen + op->vlen);
        if (rc == KILN_OK)
            rc = ev_queue(s, op, evt, op->val, op->vlen);
        op->flag = rc == KILN_OK;
        break;
    case W_INCR: {
        uint8_t *val = NULL;
        size_t vlen = 0;
        int64_t v = 0;
        rc = lookup(s, op, now, &state, &expires, &val, &vlen, &old_vlen);
        if (rc == KILN_OK && state == ROW_LIVE)
            rc = kv_parse_counter(val, vlen, &v);
        kiln_free(val);
        if (state != ROW_LIVE) {
            v = 0;
            expires = 0;
        }
        if (rc == KILN_OK)
            rc = kv_add_i64(v, op->delta, &v);
        char buf[24];
        size_t len = kv_fmt_i64(v, buf);
        evt = state == ROW_LIVE ? KILN_KV_EV_UPDATED : KILN_KV_EV_ADDED;
        if (rc == KILN_OK)
            rc = ev_room(s, op, evt);
        if (rc == KILN_OK)
            rc = drop_expired(s, op, &state, old_vlen);
        if (rc == KILN_OK)
            rc = check_room(s, op, now, state == ROW_ABSENT,
                            state == ROW_LIVE ? op->klen + old_vlen : 0, op->klen + len, &c);
        if (rc == KILN_OK)
            rc = put_row(s, op, buf, len, expires);
        if (rc == KILN_OK)
            count_write(c, state == ROW_ABSENT, state == ROW_LIVE ? op->klen + old_vlen : 0,
                        op->klen + len);
        if (rc == KILN_OK)
            rc = ev_queue(s, op, evt, buf, len);
        op->out = v;
        break;
    }
    case W_DEL:
        rc = lookup(s, op, now, &state, &expires, NULL, NULL, &old_vlen);
        op->flag = rc == KILN_OK && state == ROW_LIVE;
        if (op->flag)
            rc = ev_room(s, op, KILN_KV_EV_REMOVED);
        if (rc != KILN_OK)
            op->flag = false;
        if (rc == KILN_OK && state != ROW_ABSENT)
            rc = del_row(s, op, op->klen + old_vlen);
        /* A live key deleted, or an expired one purged: removed either way. */
        if (rc == KILN_OK && state != ROW_ABSENT)
            rc = ev_queue(s, op, KILN_KV_EV_REMOVED, NULL, 0);
        break;
    case W_EXPIRE:
        rc = lookup(s, op, now, &state, &expires, NULL, NULL, NULL);
        op->flag = rc == KILN_OK && state == ROW_LIVE;
        if (op->flag) {
            sqlite3_bind_text(s->w_exp, 1, op->ns, -1, SQLITE_STATIC);
            sqlite3_bind_blob(s->w_exp, 2, op->key, (int)op->klen, SQLITE_STATIC);
            sqlite3_bind_int64(s->w_exp, 3, kv_expiry(now, op->ttl_ms));
            rc = sqlite3_step(s->w_exp) == SQLITE_DONE ? KILN_OK : KILN_EIO;
            sqlite3_reset(s->w_exp);
        }
        break;
    case W_SUBS:
        rc = apply_subs(s, op->aux, op->vlen);
        break;
    case W_EV_DONE:
        rc = apply_ev_done(s, op, now);
        break;
    case W_EV_TRIED:
        rc = apply_ev_tried(s, op);
        break;
    default:
        rc = KILN_EINVAL;
    }
    if (rc == KILN_EIO)
        kv_log("%s: write failed: %s", s->path, sqlite3_errmsg(s->wdb));
    op->rc = rc;
}

/* Run one batch (the ops are detached from the queue). */
static void run_batch(sq_store *s, wop *batch)
{
    int64_t now = kiln_kv_now_ms();
    s->batch_ns = kv_now_ns();
    s->batch_events = s->batch_fail = false;
    int rc = exec(s->wdb, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        kv_log("%s: cannot start a transaction: %s", s->path, sqlite3_errmsg(s->wdb));
        for (wop *op = batch; op != NULL; op = op->next)
            op->rc = KILN_EIO;
        return;
    }
    for (wop *op = batch; op != NULL; op = op->next)
        apply(s, op, now);
    if (now - s->last_purge >= PURGE_INTERVAL_MS) {
        s->last_purge = now;
        if (ev_purge_subscribed(s, now))
            counts_forget(s);
        sqlite3_bind_int64(s->w_purge, 1, now);
        int prc = sqlite3_step(s->w_purge);
        if (prc == SQLITE_DONE && sqlite3_changes(s->wdb) > 0)
            counts_forget(s);
        sqlite3_reset(s->w_purge);
    }
    if (s->batch_fail) {
        /* An event could not be queued: nothing of the batch may commit. */
        kv_log("%s: queueing events failed (%s): the batch is rolled back", s->path,
               sqlite3_errmsg(s->wdb));
        rc = SQLITE_ERROR;
    } else {
        rc = exec(s->wdb, "COMMIT");
        if (rc != SQLITE_OK)
            kv_log("%s: commit failed: %s", s->path, sqlite3_errmsg(s->wdb));
    }
    if (rc != SQLITE_OK) {
        exec(s->wdb, "ROLLBACK");
        counts_forget(s);
        pthread_mutex_lock(&s->evmu);
        ev_recount(s);
        pthread_mutex_unlock(&s->evmu);
        for (wop *op = batch; op != NULL; op = op->next)
            op->rc = KILN_EIO;
        return;
    }
    if (s->batch_events) {
        pthread_mutex_lock(&s->evmu);
        void (*notify)(void *) = s->notify;
        void *arg = s->notify_arg;
        pthread_mutex_unlock(&s->evmu);
        if (notify != NULL)
            notify(arg);
    }
}

static bool has_subs(sq_store *s)
{
    pthread_mutex_lock(&s->evmu);
    bool any = s->subs != NULL && s->subs->n > 0;
    pthread_mutex_unlock(&s->evmu);
    return any;
}

static void *writer_main(void *arg)
{
    sq_store *s = arg;
    unsigned max = s->o.max_batch ? s->o.max_batch : 256;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        bool idle_purge = false;
        while (s->head == NULL && !s->stop && !idle_purge) {
            if (!has_subs(s)) {
                pthread_cond_wait(&s->work_cv, &s->mu);
                continue;
            }
            /* With subscribers, expired keys are purged (and heard of)
             * within about a second even when nobody writes. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            idle_purge = pthread_cond_timedwait(&s->work_cv, &s->mu, &until) == ETIMEDOUT &&
                         s->head == NULL;
        }
        if (s->head == NULL && s->stop)
            break;
        if (idle_purge) {
            pthread_mutex_unlock(&s->mu);
            run_batch(s, NULL);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        /* Everything queued while the previous batch committed, up to max. */
        wop *batch = s->head, *last = batch;
        for (unsigned n = 1; n < max && last->next != NULL; n++)
            last = last->next;
        s->head = last->next;
        if (s->head == NULL)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, batch);
        pthread_mutex_lock(&s->mu);
        for (wop *op = batch, *next; op != NULL; op = next) {
            next = op->next; /* the caller may return as soon as done is set */
            if (op->waiter != NULL)
                kl_waiter_signal(op->waiter); /* its fiber resumes on its own loop */
            else
                op->done = true;
        }
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queue op and wait for its batch to commit. */
static int submit(sq_store *s, wop *op)
{
    int rc = ensure_open(s);
    if (rc != KILN_OK)
        return rc;
    op->next = NULL;
    op->done = false;
    op->rc = KILN_EIO;
    pthread_mutex_lock(&s->mu);
    if (s->tail != NULL)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    /* On a serve worker the fiber waits for the commit, not the thread. */
    kl_waiter w;
    op->waiter = kl_waiter_begin(&w) ? &w : NULL;
    pthread_cond_signal(&s->work_cv);
    if (op->waiter != NULL) {
        pthread_mutex_unlock(&s->mu);
        kl_waiter_wait(&w);
        return op->rc;
    }
    while (!op->done)
        pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return op->rc;
}

/* ---- reads ---------------------------------------------------------------------- */

static void rconn_free(rconn *r)
{
    sqlite3_finalize(r->get);
    sqlite3_finalize(r->list);
    sqlite3_finalize(r->nss);
    sqlite3_finalize(r->evr);
    sqlite3_finalize(r->dead);
    sqlite3_close(r->db);
    kiln_free(r);
}

/* This thread's read connection, opened on first use. */
static rconn *reader(sq_store *s)
{
    if (ensure_open(s) != KILN_OK)
        return NULL;
    rconn *r = pthread_getspecific(s->rkey);
    if (r != NULL)
        return r;
    r = kiln_calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    int rc = open_conn(s->path, false, &r->db);
    if (rc == SQLITE_OK)
        rc = exec(r->db, "PRAGMA query_only=1");
    if (rc == SQLITE_OK)
        rc = prep(r->db, "SELECT value, expires FROM kv WHERE ns=?1 AND key=?2", &r->get);
    if (rc == SQLITE_OK)
        rc = prep(r->db,
                  "SELECT key FROM kv WHERE ns=?1 AND key>=?2 AND key>?3 "
                  "AND (expires=0 OR expires>?4) ORDER BY key LIMIT ?5",
                  &r->list);
    if (rc == SQLITE_OK)
        rc = prep(r->db,
                  "SELECT DISTINCT ns FROM kv WHERE ns>?1 AND (expires=0 OR expires>?2) "
                  "ORDER BY ns LIMIT ?3",
                  &r->nss);
    if (rc != SQLITE_OK) {
        kv_log("%s: cannot open a read connection: %s", s->path,
               r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        rconn_free(r);
        return NULL;
    }
    pthread_mutex_lock(&s->rmu);
    r->next = s->readers;
    s->readers = r;
    pthread_mutex_unlock(&s->rmu);
    pthread_setspecific(s->rkey, r);
    return r;
}

static int sq_get(kiln_kv_store *st, const char *ns, const void *key, size_t klen, void *buf,
                  size_t cap, size_t *len, int64_t *pttl)
{
    sq_store *s = (sq_store *)st;
    rconn *r = reader(s);
    if (r == NULL)
        return KILN_EIO;
    int64_t now = kiln_kv_now_ms();
    sqlite3_bind_text(r->get, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_blob(r->get, 2, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(r->get);
    int out = KILN_ENOENT;
    if (rc == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(r->get, 1);
        if (exp == 0 || exp > now) {
            const void *b = sqlite3_column_blob(r->get, 0);
            *len = (size_t)sqlite3_column_bytes(r->get, 0);
            if (*len <= cap && *len > 0)
                memcpy(buf, b, *len);
            if (pttl != NULL)
                *pttl = exp == 0 ? -1 : exp - now;
            out = KILN_OK;
        }
    } else if (rc != SQLITE_DONE) {
        kv_log("%s: read failed: %s", s->path, sqlite3_errmsg(r->db));
        out = KILN_EIO;
    }
    /* Reset ends the read transaction: the next read sees newer commits. */
    sqlite3_reset(r->get);
    return out;
}

static int sq_list(kiln_kv_store *st, const char *ns, const void *prefix, size_t plen,
                   const void *after, size_t alen, size_t max, kiln_kv_page *out)
{
    sq_store *s = (sq_store *)st;
    memset(out, 0, sizeof(*out));
    rconn *r = reader(s);
    if (r == NULL)
        return KILN_EIO;
    sqlite3_stmt *q = r->list;
    sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, plen ? prefix : "", (int)plen, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, alen ? after : "", (int)alen, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, kiln_kv_now_ms());
    sqlite3_bind_int64(q, 5, (sqlite3_int64)max + 1);
    kv_page_builder b;
    kv_pb_init(&b, out);
    int rc, res = KILN_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const void *k = sqlite3_column_blob(q, 0);
        size_t kl = (size_t)sqlite3_column_bytes(q, 0);
        /* Keys are in order: the first without the prefix ends the range. */
        if (!kv_has_prefix(k, kl, prefix, plen))
            break;
        if (out->n == max) {
            out->more = true;
            break;
        }
        if ((res = kv_pb_add(&b, k, kl)) != KILN_OK)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        kv_log("%s: list failed: %s", s->path, sqlite3_errmsg(r->db));
        res = KILN_EIO;
    }
    sqlite3_reset(q);
    if (res != KILN_OK) {
        kv_pb_abort(&b);
        return res;
    }
    kv_pb_finish(&b);
    return KILN_OK;
}

static int sq_namespaces(kiln_kv_store *st, const void *after, size_t alen, size_t max,
                         kiln_kv_page *out)
{
    sq_store *s = (sq_store *)st;
    memset(out, 0, sizeof(*out));
    rconn *r = reader(s);
    if (r == NULL)
        return KILN_EIO;
    sqlite3_stmt *q = r->nss;
    sqlite3_bind_text(q, 1, alen ? after : "", (int)alen, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, kiln_kv_now_ms());
    sqlite3_bind_int64(q, 3, (sqlite3_int64)max + 1);
    kv_page_builder b;
    kv_pb_init(&b, out);
    int rc, res = KILN_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (out->n == max) {
            out->more = true;
            break;
        }
        const void *k = sqlite3_column_text(q, 0);
        if ((res = kv_pb_add(&b, k, (size_t)sqlite3_column_bytes(q, 0))) != KILN_OK)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        res = KILN_EIO;
    sqlite3_reset(q);
    if (res != KILN_OK) {
        kv_pb_abort(&b);
        return res;
    }
    kv_pb_finish(&b);
    return KILN_OK;
}

/* ---- writes ---------------------------------------------------------------------- */

static int sq_set(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                  const void *val, size_t vlen, int64_t ttl_ms, unsigned flags,
                  kiln_kv_quota *q, bool *stored)
{
    wop op = {.kind = W_SET, .ns = ns, .key = key, .klen = klen, .val = val, .vlen = vlen,
              .ttl_ms = ttl_ms, .flags = flags, .quota = q};
    int rc = submit((sq_store *)st, &op);
    if (stored != NULL)
        *stored = rc == KILN_OK && op.flag;
    return rc;
}

static int sq_del(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                  bool *deleted)
{
    wop op = {.kind = W_DEL, .ns = ns, .key = key, .klen = klen};
    int rc = submit((sq_store *)st, &op);
    if (deleted != NULL)
        *deleted = rc == KILN_OK && op.flag;
    return rc;
}

static int sq_incr(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                   int64_t delta, kiln_kv_quota *q, int64_t *out)
{
    wop op = {.kind = W_INCR, .ns = ns, .key = key, .klen = klen, .delta = delta, .quota = q};
    int rc = submit((sq_store *)st, &op);
    if (rc == KILN_OK)
        *out = op.out;
    return rc;
}

static int sq_expire(kiln_kv_store *st, const char *ns, const void *key, size_t klen,
                     int64_t ttl_ms, bool *found)
{
    wop op = {.kind = W_EXPIRE, .ns = ns, .key = key, .klen = klen, .ttl_ms = ttl_ms};
    int rc = submit((sq_store *)st, &op);
    *found = rc == KILN_OK && op.flag;
    return rc;
}

/* ---- storage events ---------------------------------------------------------------- */

static int sq_subscribe(kiln_kv_store *st, const kiln_kv_sub *subs, size_t n,
                        void (*notify)(void *arg), void *arg)
{
    sq_store *s = (sq_store *)st;
    int rc = ensure_open(s);
    if (rc != KILN_OK)
        return rc;
    pthread_mutex_lock(&s->evmu);
    s->notify = notify;
    s->notify_arg = arg;
    pthread_mutex_unlock(&s->evmu);
    wop op = {.kind = W_SUBS, .ns = "", .aux = subs, .vlen = n};
    return submit(s, &op);
}

/* Rows of `q` (id, fn, ns, key, type, ts, payload[, attempts, cause]) into out. */
static int read_events(sq_store *s, rconn *r, sqlite3_stmt *q, bool dead, kiln_kv_events *out)
{
    kv_evb b;
    kv_evb_init(&b, out);
    int rc, res = KILN_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        kiln_kv_qevent e = {
            .id = (uint64_t)sqlite3_column_int64(q, 0),
            .fn = (const char *)sqlite3_column_text(q, 1),
            .ns = (const char *)sqlite3_column_text(q, 2),
            .key = sqlite3_column_blob(q, 3),
            .klen = (size_t)sqlite3_column_bytes(q, 3),
            .type = (unsigned)sqlite3_column_int(q, 4),
            .ts_ns = sqlite3_column_int64(q, 5),
            .payload = sqlite3_column_blob(q, 6),
            .plen = (size_t)sqlite3_column_bytes(q, 6),
        };
        e.attempts = (uint32_t)sqlite3_column_int(q, 7);
        if (dead)
            e.cause = (const char *)sqlite3_column_text(q, 8);
        if ((res = kv_evb_add(&b, &e)) != KILN_OK)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        kv_log("%s: reading events failed: %s", s->path, sqlite3_errmsg(r->db));
        res = KILN_EIO;
    }
    sqlite3_reset(q);
    if (res != KILN_OK) {
        kv_evb_abort(&b);
        return res;
    }
    kv_evb_finish(&b);
    return KILN_OK;
}

static int sq_events_read(kiln_kv_store *st, const char *fn, uint64_t after, size_t max,
                          kiln_kv_events *out)
{
    sq_store *s = (sq_store *)st;
    memset(out, 0, sizeof(*out));
    rconn *r = reader(s);
    if (r == NULL)
        return KILN_EIO;
    if (r->evr == NULL &&
        prep(r->db, "SELECT id, fn, ns, key, type, ts, payload, attempts FROM kv_events "
                    "WHERE fn=?1 AND id>?2 ORDER BY id LIMIT ?3", &r->evr) != SQLITE_OK) {
        kv_log("%s: cannot read events: %s", s->path, sqlite3_errmsg(r->db));
        return KILN_EIO;
    }
    sqlite3_bind_text(r->evr, 1, fn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(r->evr, 2, (sqlite3_int64)after);
    sqlite3_bind_int64(r->evr, 3, (sqlite3_int64)max);
    return read_events(s, r, r->evr, false, out);
}

static int sq_events_dead(kiln_kv_store *st, size_t max, kiln_kv_events *out)
{
    sq_store *s = (sq_store *)st;
    memset(out, 0, sizeof(*out));
    rconn *r = reader(s);
    if (r == NULL)
        return KILN_EIO;
    if (r->dead == NULL &&
        prep(r->db, "SELECT id, fn, ns, key, type, ts, payload, attempts, cause "
                    "FROM kv_events_dead ORDER BY id DESC LIMIT ?1", &r->dead) != SQLITE_OK) {
        kv_log("%s: cannot read dead letters: %s", s->path, sqlite3_errmsg(r->db));
        return KILN_EIO;
    }
    sqlite3_bind_int64(r->dead, 1, (sqlite3_int64)max);
    return read_events(s, r, r->dead, true, out);
}

static int sq_events_done(kiln_kv_store *st, const char *fn, const uint64_t *ids,
                          const char *const *causes, const uint32_t *attempts, size_t n)
{
    if (n == 0)
        return KILN_OK;
    wop op = {.kind = W_EV_DONE, .ns = fn, .key = ids, .klen = n, .aux = causes,
              .aux2 = attempts};
    return submit((sq_store *)st, &op);
}

static int sq_events_tried(kiln_kv_store *st, const char *fn, const uint64_t *ids,
                           const uint32_t *attempts, size_t n)
{
    if (n == 0)
        return KILN_OK;
    wop op = {.kind = W_EV_TRIED, .ns = fn, .key = ids, .klen = n, .aux2 = attempts};
    return submit((sq_store *)st, &op);
}

static int sq_events_stats(kiln_kv_store *st, const char *fn, uint64_t *depth,
                           uint64_t *refused)
{
    sq_store *s = (sq_store *)st;
    *depth = *refused = 0;
    pthread_mutex_lock(&s->evmu);
    for (size_t i = 0; s->subs != NULL && i < s->subs->n; i++)
        if (strcmp(s->subs->subs[i].fn, fn) == 0) {
            *depth = s->ev_stats[i].depth;
            *refused = s->ev_stats[i].refused;
        }
    pthread_mutex_unlock(&s->evmu);
    return KILN_OK;
}

/* ---- lifetime --------------------------------------------------------------------- */

static void sq_close(kiln_kv_store *st)
{
    sq_store *s = (sq_store *)st;
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    sqlite3_stmt *ws[] = {s->w_sel,   s->w_put,    s->w_del,    s->w_exp,
                          s->w_count, s->w_purge_ns, s->w_purge, s->w_ev_put,
                          s->w_ev_del, s->w_ev_dead, s->w_ev_count, s->w_ev_expired,
                          s->w_ev_tried};
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
        sqlite3_finalize(ws[i]);
    for (rconn *r = s->readers, *n; r != NULL; r = n) {
        n = r->next;
        rconn_free(r);
    }
    if (s->wdb != NULL)
        sqlite3_close(s->wdb);
    for (size_t i = 0; i < COUNT_BUCKETS; i++)
        for (ns_count *c = s->counts[i], *n; c != NULL; c = n) {
            n = c->next;
            kiln_free(c);
        }
    if (s->rkey_ok)
        pthread_key_delete(s->rkey);
    kiln_free(s->subs);
    kiln_free(s->ev_stats);
    pthread_mutex_destroy(&s->evmu);
    pthread_mutex_destroy(&s->open_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    kiln_free(s->path);
    kiln_free(s);
}

static const kiln_kv_ops sq_ops = {
    .name = "sqlite",
    .get = sq_get,
    .set = sq_set,
    .del = sq_del,
    .incr = sq_incr,
    .expire = sq_expire,
    .list = sq_list,
    .namespaces = sq_namespaces,
    .close = sq_close,
    .subscribe = sq_subscribe,
    .events_read = sq_events_read,
    .events_done = sq_events_done,
    .events_tried = sq_events_tried,
    .events_stats = sq_events_stats,
    .events_dead = sq_events_dead,
};

int kiln_kv_sqlite_open(const char *path, const kiln_kv_sqlite_options *o,
                        kiln_kv_store **out, kiln_err *err)
{
    *out = NULL;
    sq_store *s = kiln_calloc(1, sizeof(*s));
    if (s == NULL || (s->path = kiln_strdup(path)) == NULL) {
        kiln_free(s);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", path);
    }
    if (o != NULL)
        s->o = *o;
    s->base.ops = &sq_ops;
    pthread_mutex_init(&s->open_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_mutex_init(&s->evmu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    atomic_init(&s->state, 0);
    if (pthread_key_create(&s->rkey, NULL) != 0) {
        sq_close(&s->base);
        return kiln_err_set(err, KILN_ENOMEM, "%s: no thread-specific key left", path);
    }
    s->rkey_ok = true;
    if (o == NULL || !o->lazy) {
        pthread_mutex_lock(&s->open_mu);
        int rc = do_open(s);
        atomic_store(&s->state, rc == KILN_OK ? 1 : -1);
        pthread_mutex_unlock(&s->open_mu);
        if (rc != KILN_OK) {
            kiln_err_set(err, rc, "%s", s->open_error);
            sq_close(&s->base);
            return rc;
        }
    }
    *out = &s->base;
    return KILN_OK;
}

int kiln_kv_default_path(char *buf, size_t cap)
{
    const char *home = getenv("KILN_HOME");
    int n;
    if (home != NULL && *home)
        n = snprintf(buf, cap, "%s/kv.db", home);
    else if ((home = getenv("HOME")) != NULL && *home)
        n = snprintf(buf, cap, "%s/.kiln/kv.db", home);
    else
        return KILN_ENOENT;
    return n < 0 || (size_t)n >= cap ? KILN_ELIMIT : KILN_OK;
}
