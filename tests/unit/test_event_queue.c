/*
 * test_event_queue.c - storage events (kv.h "storage events", src/event):
 * what a write queues on both backends (added / updated / removed, payloads,
 * nothing for NX misses, expire, other namespaces or unsubscribed types), id
 * order per key, removal and dead letters, the bounded queue refusing a
 * write without losing anything, subscriptions that leave dropping their
 * events, crash safety by reopening the SQLite file (events and the
 * subscription set survive; a store opened without subscribing still
 * queues), the JSON event ABI's exact request, and the dispatcher over a
 * fake ABI: every event delivered in order per key across retries, failures
 * dead-lettered after their retries, and labelled metrics; and the
 * `events:` configuration key with its errors.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "config/config.h"
#include "event/event.h"
#include "kiln/kv.h"
#include "loop/loop.h"

static char dir[256];
static int db_seq;
static char last_path[512];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kiln-test-evq-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static kiln_kv_store *open_store(const char *backend)
{
    kiln_kv_store *s = NULL;
    kiln_err err;
    if (strcmp(backend, "memory") == 0) {
        assert_int_equal(kiln_kv_mem_open(&s, &err), KILN_OK);
    } else {
        snprintf(last_path, sizeof(last_path), "%s/t%d/kv.db", dir, ++db_seq);
        assert_int_equal(kiln_kv_sqlite_open(last_path, NULL, &s, &err), KILN_OK);
    }
    return s;
}

static void set(kiln_kv_store *s, const char *ns, const char *k, const char *v)
{
    assert_int_equal(s->ops->set(s, ns, k, strlen(k), v, strlen(v), 0, 0, NULL, NULL), KILN_OK);
}

static void expect_ev(const kiln_kv_qevent *e, unsigned type, const char *key, const char *pl)
{
    assert_int_equal(e->type, type);
    assert_int_equal(e->klen, strlen(key));
    assert_memory_equal(e->key, key, e->klen);
    assert_int_equal(e->plen, strlen(pl));
    if (e->plen)
        assert_memory_equal(e->payload, pl, e->plen);
    assert_true(e->ts_ns > (int64_t)1600000000 * 1000000000);
}

/* What each write queues, per subscriber and type. */
static void test_types(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_sub subs[] = {{"a", "bucket", KILN_KV_EV_ALL, 0},
                          {"b", "bucket", 1u << KILN_KV_EV_REMOVED, 0},
                          {"c", "other", KILN_KV_EV_ALL, 0}};
    assert_int_equal(s->ops->subscribe(s, subs, 3, NULL, NULL), KILN_OK);
    set(s, "bucket", "k1", "v1");
    set(s, "bucket", "k1", "v2");
    bool stored = true;
    assert_int_equal(s->ops->set(s, "bucket", "k1", 2, "x", 1, 0, KILN_KV_NX, NULL, &stored),
                     KILN_OK);
    assert_false(stored); /* NX miss: no write, no event */
    int64_t out;
    assert_int_equal(s->ops->incr(s, "bucket", "c", 1, 5, NULL, &out), KILN_OK);
    assert_int_equal(s->ops->incr(s, "bucket", "c", 1, 1, NULL, &out), KILN_OK);
    bool found;
    assert_int_equal(s->ops->expire(s, "bucket", "c", 1, 60000, &found), KILN_OK);
    assert_true(found); /* a TTL change queues nothing */
    bool deleted;
    assert_int_equal(s->ops->del(s, "bucket", "k1", 2, &deleted), KILN_OK);
    assert_true(deleted);
    assert_int_equal(s->ops->del(s, "bucket", "nope", 4, &deleted), KILN_OK);
    assert_false(deleted); /* nothing removed: no event */
    set(s, "unwatched", "z", "1");
    /* An expired key written again: removed (its expiry), then added. */
    assert_int_equal(s->ops->set(s, "bucket", "t", 1, "1", 1, 1, 0, NULL, NULL), KILN_OK);
    usleep(20000);
    set(s, "bucket", "t", "2");

    kiln_kv_events ev;
    assert_int_equal(s->ops->events_read(s, "a", 0, 100, &ev), KILN_OK);
    assert_int_equal(ev.n, 8);
    expect_ev(&ev.ev[0], KILN_KV_EV_ADDED, "k1", "v1");
    expect_ev(&ev.ev[1], KILN_KV_EV_UPDATED, "k1", "v2");
    expect_ev(&ev.ev[2], KILN_KV_EV_ADDED, "c", "5");
    expect_ev(&ev.ev[3], KILN_KV_EV_UPDATED, "c", "6");
    expect_ev(&ev.ev[4], KILN_KV_EV_REMOVED, "k1", "");
    expect_ev(&ev.ev[5], KILN_KV_EV_ADDED, "t", "1");
    expect_ev(&ev.ev[6], KILN_KV_EV_REMOVED, "t", "");
    expect_ev(&ev.ev[7], KILN_KV_EV_ADDED, "t", "2");
    for (size_t i = 1; i < ev.n; i++)
        assert_true(ev.ev[i].id > ev.ev[i - 1].id);
    assert_string_equal(ev.ev[0].ns, "bucket");
    kiln_kv_events_fini(&ev);
    assert_int_equal(s->ops->events_read(s, "b", 0, 100, &ev), KILN_OK);
    assert_int_equal(ev.n, 2);
    expect_ev(&ev.ev[0], KILN_KV_EV_REMOVED, "k1", "");
    expect_ev(&ev.ev[1], KILN_KV_EV_REMOVED, "t", "");
    kiln_kv_events_fini(&ev);
    assert_int_equal(s->ops->events_read(s, "c", 0, 100, &ev), KILN_OK);
    assert_int_equal(ev.n, 0);
    kiln_kv_events_fini(&ev);
    kiln_kv_close(s);
}

/* Ids follow commit order, so per key they are in write order; reading
 * pages after a cursor and removing events. */
static void test_order_and_done(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_sub sub = {"f", "ns", KILN_KV_EV_ALL, 0};
    assert_int_equal(s->ops->subscribe(s, &sub, 1, NULL, NULL), KILN_OK);
    char v[16];
    for (int i = 0; i < 60; i++) {
        snprintf(v, sizeof(v), "%d", i);
        set(s, "ns", i % 3 == 0 ? "x" : "y", v);
    }
    uint64_t depth, refused;
    assert_int_equal(s->ops->events_stats(s, "f", &depth, &refused), KILN_OK);
    assert_int_equal(depth, 60);
    uint64_t after = 0, ids[60];
    int last_x = -1, last_y = -1, n = 0;
    for (;;) {
        kiln_kv_events ev;
        assert_int_equal(s->ops->events_read(s, "f", after, 7, &ev), KILN_OK);
        if (ev.n == 0) {
            kiln_kv_events_fini(&ev);
            break;
        }
        for (size_t i = 0; i < ev.n; i++) {
            int val = atoi((const char *)ev.ev[i].payload);
            int *last = ev.ev[i].key[0] == 'x' ? &last_x : &last_y;
            assert_true(val > *last);
            *last = val;
            ids[n++] = ev.ev[i].id;
            after = ev.ev[i].id;
        }
        kiln_kv_events_fini(&ev);
    }
    assert_int_equal(n, 60);
    assert_int_equal(last_x, 57);
    assert_int_equal(last_y, 59);
    /* Remove the first 50; unknown ids are ignored. */
    assert_int_equal(s->ops->events_done(s, "f", ids, NULL, NULL, 50), KILN_OK);
    assert_int_equal(s->ops->events_done(s, "f", ids, NULL, NULL, 50), KILN_OK);
    kiln_kv_events ev;
    assert_int_equal(s->ops->events_read(s, "f", 0, 100, &ev), KILN_OK);
    assert_int_equal(ev.n, 10);
    assert_int_equal(ev.ev[0].id, ids[50]);
    kiln_kv_events_fini(&ev);
    assert_int_equal(s->ops->events_stats(s, "f", &depth, &refused), KILN_OK);
    assert_int_equal(depth, 10);
    kiln_kv_close(s);
}

static void test_dead_letters(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_sub sub = {"f", "ns", KILN_KV_EV_ALL, 0};
    assert_int_equal(s->ops->subscribe(s, &sub, 1, NULL, NULL), KILN_OK);
    set(s, "ns", "a", "1");
    set(s, "ns", "b", "2");
    kiln_kv_events ev;
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 2);
    uint64_t ids[2] = {ev.ev[0].id, ev.ev[1].id};
    assert_int_equal(ev.ev[1].attempts, 0);
    kiln_kv_events_fini(&ev);
    /* Attempts recorded are read back (a restart goes on counting). */
    uint32_t tried = 2;
    assert_int_equal(s->ops->events_tried(s, "f", &ids[1], &tried, 1), KILN_OK);
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.ev[0].attempts, 0);
    assert_int_equal(ev.ev[1].attempts, 2);
    kiln_kv_events_fini(&ev);
    const char *causes[2] = {"the handler answered 500", NULL};
    uint32_t attempts[2] = {4, 1};
    assert_int_equal(s->ops->events_done(s, "f", ids, causes, attempts, 2), KILN_OK);
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 0);
    kiln_kv_events_fini(&ev);
    assert_int_equal(s->ops->events_dead(s, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 1);
    expect_ev(&ev.ev[0], KILN_KV_EV_ADDED, "a", "1");
    assert_string_equal(ev.ev[0].cause, "the handler answered 500");
    assert_string_equal(ev.ev[0].fn, "f");
    assert_int_equal(ev.ev[0].attempts, 4);
    kiln_kv_events_fini(&ev);
    kiln_kv_close(s);
}

/* A full queue refuses the write (nothing is lost), then room comes back. */
static void test_queue_full(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_sub sub = {"f", "ns", KILN_KV_EV_ALL, 3};
    assert_int_equal(s->ops->subscribe(s, &sub, 1, NULL, NULL), KILN_OK);
    set(s, "ns", "a", "1");
    set(s, "ns", "b", "1");
    set(s, "ns", "c", "1");
    kiln_kv_quota q = {0};
    assert_int_equal(s->ops->set(s, "ns", "a", 1, "2", 1, 0, 0, &q, NULL), KILN_ELIMIT);
    assert_true(q.over_events);
    bool deleted = true;
    assert_int_equal(s->ops->del(s, "ns", "b", 1, &deleted), KILN_ELIMIT);
    char buf[8];
    size_t len;
    assert_int_equal(s->ops->get(s, "ns", "a", 1, buf, sizeof(buf), &len, NULL), KILN_OK);
    assert_memory_equal(buf, "1", 1); /* refused: unchanged */
    assert_int_equal(s->ops->get(s, "ns", "b", 1, buf, sizeof(buf), &len, NULL), KILN_OK);
    uint64_t depth, refused;
    assert_int_equal(s->ops->events_stats(s, "f", &depth, &refused), KILN_OK);
    assert_int_equal(depth, 3);
    assert_int_equal(refused, 2);
    /* Another namespace is not held back. */
    set(s, "elsewhere", "a", "1");
    kiln_kv_events ev;
    assert_int_equal(s->ops->events_read(s, "f", 0, 1, &ev), KILN_OK);
    uint64_t id = ev.ev[0].id;
    kiln_kv_events_fini(&ev);
    assert_int_equal(s->ops->events_done(s, "f", &id, NULL, NULL, 1), KILN_OK);
    set(s, "ns", "a", "2");
    kiln_kv_close(s);
}

/* A subscription that leaves the set drops its events; one that stays
 * keeps them. */
static void test_resubscribe(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_sub subs[] = {{"f", "ns", KILN_KV_EV_ALL, 0}, {"g", "ns", KILN_KV_EV_ALL, 0}};
    assert_int_equal(s->ops->subscribe(s, subs, 2, NULL, NULL), KILN_OK);
    set(s, "ns", "a", "1");
    assert_int_equal(s->ops->subscribe(s, &subs[1], 1, NULL, NULL), KILN_OK);
    kiln_kv_events ev;
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 0);
    kiln_kv_events_fini(&ev);
    assert_int_equal(s->ops->events_read(s, "g", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 1);
    kiln_kv_events_fini(&ev);
    set(s, "ns", "a", "2");
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 0);
    kiln_kv_events_fini(&ev);
    kiln_kv_close(s);
}

/* SQLite: a key that expires while nobody writes is purged within about a
 * second, and its subscribers hear of it (object-removed) in that commit. */
static void test_sqlite_expiry(void **state)
{
    (void)state;
    kiln_kv_store *s = open_store("sqlite");
    kiln_kv_sub sub = {"f", "ns", KILN_KV_EV_ALL, 0};
    assert_int_equal(s->ops->subscribe(s, &sub, 1, NULL, NULL), KILN_OK);
    assert_int_equal(s->ops->set(s, "ns", "gone", 4, "1", 1, 50, 0, NULL, NULL), KILN_OK);
    set(s, "ns", "stays", "1");
    kiln_kv_events ev = {0};
    for (int i = 0; i < 60; i++) {
        usleep(100000);
        kiln_kv_events_fini(&ev);
        assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
        if (ev.n == 3)
            break;
    }
    assert_int_equal(ev.n, 3);
    expect_ev(&ev.ev[2], KILN_KV_EV_REMOVED, "gone", "");
    kiln_kv_events_fini(&ev);
    size_t len;
    char buf[4];
    assert_int_equal(s->ops->get(s, "ns", "gone", 4, buf, sizeof(buf), &len, NULL), KILN_ENOENT);
    kiln_kv_close(s);
}

/* Crash safety: events and the subscription set are in the file. A store
 * opened without subscribing (another process, `kiln kv`) queues too. */
static void test_sqlite_reopen(void **state)
{
    (void)state;
    kiln_kv_store *s = open_store("sqlite");
    kiln_kv_sub sub = {"f", "ns", KILN_KV_EV_ALL, 0};
    assert_int_equal(s->ops->subscribe(s, &sub, 1, NULL, NULL), KILN_OK);
    set(s, "ns", "a", "1");
    set(s, "ns", "a", "2");
    kiln_kv_close(s);
    kiln_err err;
    assert_int_equal(kiln_kv_sqlite_open(last_path, NULL, &s, &err), KILN_OK);
    set(s, "ns", "a", "3");
    kiln_kv_events ev;
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 3);
    expect_ev(&ev.ev[0], KILN_KV_EV_ADDED, "a", "1");
    expect_ev(&ev.ev[2], KILN_KV_EV_UPDATED, "a", "3");
    uint64_t id = ev.ev[0].id, id2 = ev.ev[1].id;
    kiln_kv_events_fini(&ev);
    uint32_t tried = 3;
    assert_int_equal(s->ops->events_tried(s, "f", &id2, &tried, 1), KILN_OK);
    uint64_t depth, refused;
    assert_int_equal(s->ops->events_stats(s, "f", &depth, &refused), KILN_OK);
    assert_int_equal(depth, 3);
    assert_int_equal(s->ops->events_done(s, "f", &id, NULL, NULL, 1), KILN_OK);
    kiln_kv_close(s);
    assert_int_equal(kiln_kv_sqlite_open(last_path, NULL, &s, &err), KILN_OK);
    assert_int_equal(s->ops->events_read(s, "f", 0, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 2); /* the removal was durable too */
    assert_int_equal(ev.ev[0].attempts, 3); /* and the attempts */
    kiln_kv_events_fini(&ev);
    kiln_kv_close(s);
}

/* ---- the JSON event ABI ------------------------------------------------------ */

static void test_json_request(void **state)
{
    (void)state;
    kiln_event ev = {.type = KILN_EVENT_OBJECT_UPDATED, .timestamp_ns = 1700000000123456789,
                     .version = "1", .source = "kv:orders", .key = (const uint8_t *)"k\"1",
                     .key_len = 3, .payload = (const uint8_t *)"hello", .payload_len = 5,
                     .id = 42, .attempt = 2};
    kiln_request req;
    kiln_kv h[5];
    char *body, *hb;
    assert_int_equal(ev_json_request(&ev, "/hook", &req, h, &body, &hb), KILN_OK);
    const char *want = "{\"event_type\":\"object-updated\",\"event_timestamp\":{\"seconds\":"
                       "1700000000,\"nanoseconds\":123456789},\"event_version\":\"1\",\"source\":"
                       "\"kv:orders\",\"key\":\"k\\\"1\",\"payload\":\"aGVsbG8=\",\"id\":42,"
                       "\"attempt\":2}";
    assert_int_equal(req.body_len, strlen(want));
    assert_memory_equal(req.body, want, req.body_len);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/hook");
    assert_int_equal(req.n_headers, 5);
    assert_string_equal(h[0].value, "application/json");
    assert_string_equal(h[1].name, "Kiln-Event-Type");
    assert_string_equal(h[1].value, "object-updated");
    assert_string_equal(h[2].value, "42");
    assert_string_equal(h[3].value, "2");
    kiln_free(body);
    kiln_free(hb);
    /* A key that is not UTF-8 travels as key_base64; an empty payload. */
    ev.key = (const uint8_t *)"\xff\x00";
    ev.key_len = 2;
    ev.payload_len = 0;
    ev.type = KILN_EVENT_OBJECT_REMOVED;
    assert_int_equal(ev_json_request(&ev, "/", &req, h, &body, &hb), KILN_OK);
    assert_non_null(strstr(body, "\"key_base64\":\"/wA=\",\"payload\":\"\""));
    assert_null(strstr(body, "\"key\":"));
    kiln_free(body);
    kiln_free(hb);
}

/* ---- the dispatcher over a fake ABI ------------------------------------------ */

#define FAKE_MAX 4096
static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static char fake_log[FAKE_MAX][80]; /* "key=payload#attempt" in delivery order */
static atomic_int fake_n, fake_overlap;
static char fake_busy[8]; /* keys a..h being handled now */

/* Fails the first attempt of every payload ending in '7', always fails key
 * 'z'; notes whether two events of one key ever ran at once. */
static int fake_handle(const kiln_function *fn, void *st, const kiln_instance_pre *pre,
                       const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    (void)fn, (void)st, (void)pre;
    char body[600];
    size_t n = req->body_len < sizeof(body) - 1 ? req->body_len : sizeof(body) - 1;
    memcpy(body, req->body, n);
    body[n] = '\0';
    char key[8] = "", pl64[64] = "";
    sscanf(strstr(body, "\"key\":\"") + 7, "%7[^\"]", key);
    sscanf(strstr(body, "\"payload\":\"") + 11, "%63[^\"]", pl64);
    int attempt = atoi(strstr(body, "\"attempt\":") + 10);
    /* payloads are small decimal numbers: decode base64 by table */
    static const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char pl[16];
    size_t o = 0;
    unsigned v = 0, bits = 0;
    for (const char *p = pl64; *p && *p != '=' && o < sizeof(pl) - 1; p++) {
        v = (v << 6) | (unsigned)(strchr(b64, *p) - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            pl[o++] = (char)((v >> bits) & 0xff);
        }
    }
    pl[o] = '\0';
    int k = key[0] - 'a';
    pthread_mutex_lock(&fake_mu);
    if (k >= 0 && k < 8) {
        if (fake_busy[k])
            atomic_fetch_add(&fake_overlap, 1);
        fake_busy[k] = 1;
    }
    pthread_mutex_unlock(&fake_mu);
    usleep(200);
    pthread_mutex_lock(&fake_mu);
    if (k >= 0 && k < 8)
        fake_busy[k] = 0;
    bool fail = key[0] == 'z' || (o > 0 && pl[o - 1] == '7' && attempt == 1);
    int i = atomic_fetch_add(&fake_n, 1);
    if (i < FAKE_MAX)
        snprintf(fake_log[i], sizeof(fake_log[i]), "%s=%s#%d%s", key, pl, attempt,
                 fail ? "F" : "");
    pthread_mutex_unlock(&fake_mu);
    resp->status = fail ? 503 : 204;
    (void)err;
    return KILN_OK;
}

static const kiln_abi_ops fake_abi = {.name = "fake", .handle = fake_handle};

typedef struct worker {
    kl_loop *loop;
    pthread_t tid;
    atomic_bool stop;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    kl_bind(w->loop);
    while (!atomic_load(&w->stop))
        kl_run_once(w->loop, 20);
    kl_bind(NULL);
    return NULL;
}

static worker workers[2];
static atomic_uint next_worker;

static kl_loop *pick(void *ctx)
{
    (void)ctx;
    return workers[atomic_fetch_add(&next_worker, 1) % 2].loop;
}

static atomic_int released;
static void owner_release(void *o)
{
    (void)o;
    atomic_fetch_add(&released, 1);
}

static int64_t metric_now(const char *base)
{
    char name[200];
    int n = snprintf(name, sizeof(name), "%s{function=\"fake\"}", base);
    uint32_t id;
    int64_t v = 0;
    assert_int_equal(metrics_define(METRICS_COUNTER, name, (size_t)n, &id), KILN_OK);
    assert_int_equal(metrics_get(id, &v), KILN_OK);
    return v;
}

static void test_dispatcher(void **state)
{
    kiln_kv_store *s = open_store(*state);
    int64_t base[3] = {metric_now("kiln_events_delivered_total"),
                       metric_now("kiln_events_failed_total"),
                       metric_now("kiln_events_retried_total")};
    kiln_err err;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kl_loop_new(&workers[i].loop, &err), KILN_OK);
        atomic_init(&workers[i].stop, false);
        assert_int_equal(pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]), 0);
    }
    atomic_store(&fake_n, 0);
    atomic_store(&fake_overlap, 0);
    atomic_store(&released, 0);
    kiln_function fn = {.name = "fake", .max_output_bytes = 4096};
    ev_target t = {.fn_name = "fake", .ns = "ns", .store = s, .types = KILN_KV_EV_ALL,
                   .retries = 2, .backoff_ms = 5, .abi = &fake_abi, .fn = &fn, .path = "/",
                   .available = true};
    ev_host h = {.pick = pick};
    ev_dispatcher *d;
    assert_int_equal(ev_dispatcher_new(&h, &d, &err), KILN_OK);
    /* Events queued before the dispatcher starts are delivered too. */
    kiln_kv_sub sub = {"fake", "ns", KILN_KV_EV_ALL, 0};
    assert_int_equal(s->ops->subscribe(s, &sub, 1, NULL, NULL), KILN_OK);
    set(s, "ns", "a", "0");
    assert_int_equal(ev_dispatcher_update(d, &t, 1, NULL, NULL, owner_release), KILN_OK);
    char v[16];
    const int N = 120;
    for (int i = 1; i < N; i++) {
        snprintf(v, sizeof(v), "%d", i);
        char key[2] = {(char)('a' + i % 4), 0};
        set(s, "ns", key, v);
    }
    set(s, "ns", "z", "1"); /* always fails: dead-lettered after 3 attempts */
    /* 120 successes, 12 first attempts that fail (payloads ending in 7),
     * 3 failed attempts of z. */
    for (int i = 0; i < 1000 && atomic_load(&fake_n) < N + 12 + 3; i++)
        usleep(10000);
    uint64_t depth = 1, refused;
    for (int i = 0; i < 300 && depth != 0; i++) {
        usleep(10000);
        s->ops->events_stats(s, "fake", &depth, &refused);
    }
    ev_dispatcher_free(d);
    assert_int_equal(atomic_load(&released), 1);
    assert_int_equal(atomic_load(&fake_n), N + 12 + 3);
    assert_int_equal(depth, 0);
    assert_int_equal(atomic_load(&fake_overlap), 0);
    /* Per key: payloads in write order, each retried payload right after
     * its failed attempt, and nothing of the key in between. */
    for (int k = 0; k < 4; k++) {
        int last = -1;
        bool pending_retry = false;
        for (int i = 0; i < atomic_load(&fake_n); i++) {
            if (fake_log[i][0] != 'a' + k)
                continue;
            int p = atoi(fake_log[i] + 2);
            bool failed = strchr(fake_log[i], 'F') != NULL;
            if (pending_retry)
                assert_int_equal(p, last);
            else
                assert_true(p > last);
            last = p;
            pending_retry = failed;
        }
        assert_false(pending_retry);
    }
    kiln_kv_events ev;
    assert_int_equal(s->ops->events_dead(s, 10, &ev), KILN_OK);
    assert_int_equal(ev.n, 1);
    expect_ev(&ev.ev[0], KILN_KV_EV_ADDED, "z", "1");
    assert_int_equal(ev.ev[0].attempts, 3);
    assert_non_null(strstr(ev.ev[0].cause, "503"));
    kiln_kv_events_fini(&ev);
    /* Labelled metrics (process-wide: compared with their values before),
     * one family per name. */
    assert_int_equal(metric_now("kiln_events_delivered_total") - base[0], 120);
    assert_int_equal(metric_now("kiln_events_failed_total") - base[1], 1);
    assert_int_equal(metric_now("kiln_events_retried_total") - base[2], 14);
    size_t len;
    char *text = metrics_prometheus(&len);
    assert_non_null(strstr(text, "\nkiln_events_delivered_total{function=\"fake\"} "));
    char *first = strstr(text, "# TYPE kiln_events_queue_depth gauge\n");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE kiln_events_queue_depth gauge\n"));
    kiln_free(text);
    for (int i = 0; i < 2; i++) {
        atomic_store(&workers[i].stop, true);
        pthread_join(workers[i].tid, NULL);
        kl_loop_free(workers[i].loop);
    }
    kiln_kv_close(s);
}


/* ---- configuration --------------------------------------------------------- */

static int parse(const char *text, cfg_config **c, kiln_err *err)
{
    memset(err, 0, sizeof(*err));
    return cfg_parse(text, strlen(text), "t.yaml", "/", c, err);
}

static void test_config(void **state)
{
    (void)state;
    cfg_config *c;
    kiln_err err;
    assert_int_equal(parse("functions:\n"
                           "  f:\n"
                           "    module: /bin/sh\n"
                           "    kv: {grants: {imgs: r}}\n"
                           "    events: {namespace: imgs}\n"
                           "    routes: [/f]\n"
                           "  g:\n"
                           "    module: /bin/sh\n"
                           "    kv: {grants: {imgs: rw}}\n"
                           "    events: {namespace: imgs, types: [object-removed], retries: 0,\n"
                           "             backoff: 2s, max_queue: 10}\n"
                           "    routes: [/g]\n",
                           &c, &err),
                     KILN_OK);
    const cfg_events *e = c->functions[0].events;
    assert_non_null(e);
    assert_string_equal(e->ns, "imgs");
    assert_int_equal(e->types, KILN_KV_EV_ALL);
    assert_int_equal(e->retries, 3);
    assert_int_equal(e->backoff_ms, 100);
    assert_int_equal(e->max_queue, KILN_KV_DEFAULT_MAX_EVENTS);
    e = c->functions[1].events;
    assert_int_equal(e->types, 1u << KILN_KV_EV_REMOVED);
    assert_int_equal(e->retries, 0);
    assert_int_equal(e->backoff_ms, 2000);
    assert_int_equal(e->max_queue, 10);
    cfg_free(c);
    static const struct {
        const char *events, *grants, *msg;
    } bad[] = {
        {"{namespace: imgs}", "{}", "is not granted it; add kv: {grants: {imgs: r}}"},
        {"{types: [object-added]}", "{imgs: r}", "events needs 'namespace'"},
        {"{namespace: imgs, types: [scheduled]}", "{imgs: r}", "unknown event type 'scheduled'"},
        {"{namespace: imgs, types: []}", "{imgs: r}", "must be a non-empty list"},
        {"{namespace: imgs, retry: 1}", "{imgs: r}", "unknown key 'retry'"},
        {"{namespace: imgs, retries: 101}", "{imgs: r}", "retries"},
        {"{namespace: 'fn:x'}", "{imgs: r}", "is not a global namespace name"},
        {"[imgs]", "{imgs: r}", "must be a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[400];
        snprintf(text, sizeof(text),
                 "functions:\n  f:\n    module: /bin/sh\n    kv: {grants: %s}\n"
                 "    events: %s\n    routes: [/f]\n",
                 bad[i].grants, bad[i].events);
        int rc = parse(text, &c, &err);
        if (rc == KILN_OK)
            cfg_free(c);
        assert_int_equal(rc, KILN_ECONFIG);
        if (strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
        assert_non_null(strstr(err.msg, "t.yaml:"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_types, "memory"),
        cmocka_unit_test_prestate(test_types, "sqlite"),
        cmocka_unit_test_prestate(test_order_and_done, "memory"),
        cmocka_unit_test_prestate(test_order_and_done, "sqlite"),
        cmocka_unit_test_prestate(test_dead_letters, "memory"),
        cmocka_unit_test_prestate(test_dead_letters, "sqlite"),
        cmocka_unit_test_prestate(test_queue_full, "memory"),
        cmocka_unit_test_prestate(test_queue_full, "sqlite"),
        cmocka_unit_test_prestate(test_resubscribe, "memory"),
        cmocka_unit_test_prestate(test_resubscribe, "sqlite"),
        cmocka_unit_test(test_sqlite_reopen),
        cmocka_unit_test(test_sqlite_expiry),
        cmocka_unit_test(test_json_request),
        cmocka_unit_test(test_config),
        cmocka_unit_test_prestate(test_dispatcher, "sqlite"),
        cmocka_unit_test_prestate(test_dispatcher, "memory"),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
