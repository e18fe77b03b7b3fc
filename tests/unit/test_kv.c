/*
 * test_kv.c - the key-value store (src/store): every backend operation on
 * both backends (memory and SQLite), TTL expiry, prefix listing with a
 * cursor, namespace limits and grants (permission denial), SQLite
 * persistence, group commit under concurrent writers, the shared-store
 * registry, and the `kv` configuration keys.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "kiln/kv.h"

static char dir[256];
static int db_seq;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kiln-test-kv-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh store of the backend named by the test's state. */
static kiln_kv_store *open_store(const char *backend)
{
    kiln_kv_store *s = NULL;
    kiln_err err;
    if (strcmp(backend, "memory") == 0) {
        assert_int_equal(kiln_kv_mem_open(&s, &err), KILN_OK);
    } else {
        char path[512];
        snprintf(path, sizeof(path), "%s/t%d/kv.db", dir, ++db_seq);
        int rc = kiln_kv_sqlite_open(path, NULL, &s, &err);
        if (rc != KILN_OK)
            fail_msg("%s", err.msg);
    }
    return s;
}

static int set(kiln_kv_store *s, const char *ns, const char *k, const char *v, int64_t ttl,
               unsigned flags, bool *stored)
{
    return s->ops->set(s, ns, k, strlen(k), v, strlen(v), ttl, flags, 0, stored);
}

/* get into a string; returns the status. */
static int get(kiln_kv_store *s, const char *ns, const char *k, char *out, size_t cap)
{
    size_t len = 0;
    int rc = s->ops->get(s, ns, k, strlen(k), out, cap - 1, &len, NULL);
    if (rc == KILN_OK) {
        assert_true(len < cap);
        out[len] = '\0';
    }
    return rc;
}

static void test_basic(void **state)
{
    kiln_kv_store *s = open_store(*state);
    char buf[64];
    bool stored = false, deleted = true;
    assert_int_equal(get(s, "a", "k", buf, sizeof(buf)), KILN_ENOENT);
    assert_int_equal(set(s, "a", "k", "v1", 0, 0, &stored), KILN_OK);
    assert_true(stored);
    assert_int_equal(get(s, "a", "k", buf, sizeof(buf)), KILN_OK);
    assert_string_equal(buf, "v1");
    /* Namespaces are separate. */
    assert_int_equal(get(s, "b", "k", buf, sizeof(buf)), KILN_ENOENT);
    /* Overwrite; NX leaves an existing key alone. */
    assert_int_equal(set(s, "a", "k", "v2", 0, 0, NULL), KILN_OK);
    assert_int_equal(set(s, "a", "k", "v3", 0, KILN_KV_NX, &stored), KILN_OK);
    assert_false(stored);
    assert_int_equal(get(s, "a", "k", buf, sizeof(buf)), KILN_OK);
    assert_string_equal(buf, "v2");
    assert_int_equal(set(s, "a", "new", "n", 0, KILN_KV_NX, &stored), KILN_OK);
    assert_true(stored);
    /* A buffer too small: the length, nothing copied. */
    char small[2] = {'x', 'y'};
    size_t len = 0;
    assert_int_equal(s->ops->get(s, "a", "k", 1, small, 1, &len, NULL), KILN_OK);
    assert_int_equal(len, 2);
    assert_int_equal(small[0], 'x');
    /* Empty values and binary keys. */
    assert_int_equal(s->ops->set(s, "a", "\0bin\xff", 5, "", 0, 0, 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->get(s, "a", "\0bin\xff", 5, buf, sizeof(buf), &len, NULL), KILN_OK);
    assert_int_equal(len, 0);
    assert_int_equal(s->ops->get(s, "a", "\0bin", 4, buf, sizeof(buf), &len, NULL), KILN_ENOENT);
    /* Delete. */
    assert_int_equal(s->ops->del(s, "a", "k", 1, &deleted), KILN_OK);
    assert_true(deleted);
    assert_int_equal(s->ops->del(s, "a", "k", 1, &deleted), KILN_OK);
    assert_false(deleted);
    assert_int_equal(get(s, "a", "k", buf, sizeof(buf)), KILN_ENOENT);
    /* A large value round-trips. */
    size_t big = 300000;
    char *v = malloc(big), *r = malloc(big);
    for (size_t i = 0; i < big; i++)
        v[i] = (char)(i * 7);
    assert_int_equal(s->ops->set(s, "a", "big", 3, v, big, 0, 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->get(s, "a", "big", 3, r, big, &len, NULL), KILN_OK);
    assert_int_equal(len, big);
    assert_memory_equal(v, r, big);
    free(v);
    free(r);
    kiln_kv_close(s);
}

static void test_incr(void **state)
{
    kiln_kv_store *s = open_store(*state);
    int64_t out = 0;
    char buf[64];
    assert_int_equal(s->ops->incr(s, "n", "c", 1, 5, 0, &out), KILN_OK);
    assert_int_equal(out, 5);
    assert_int_equal(s->ops->incr(s, "n", "c", 1, -7, 0, &out), KILN_OK);
    assert_int_equal(out, -2);
    assert_int_equal(get(s, "n", "c", buf, sizeof(buf)), KILN_OK);
    assert_string_equal(buf, "-2");
    assert_int_equal(set(s, "n", "t", "abc", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "t", 1, 1, 0, &out), KILN_ETYPE);
    assert_int_equal(set(s, "n", "t", " 1", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "t", 1, 1, 0, &out), KILN_ETYPE);
    assert_int_equal(set(s, "n", "m", "9223372036854775807", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "m", 1, 1, 0, &out), KILN_EINVAL);
    assert_int_equal(s->ops->incr(s, "n", "m", 1, -1, 0, &out), KILN_OK);
    assert_int_equal(out, INT64_MAX - 1);
    /* Overflow is refused, never clamped, and leaves the value alone: at
     * both ends, with the largest deltas, and for a stored integer that is
     * already outside int64 (an overflow, not "not an integer"). */
    assert_int_equal(s->ops->incr(s, "n", "m", 1, INT64_MAX, 0, &out), KILN_EINVAL);
    assert_int_equal(get(s, "n", "m", buf, sizeof(buf)), KILN_OK);
    assert_string_equal(buf, "9223372036854775806");
    assert_int_equal(set(s, "n", "lo", "-9223372036854775808", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "lo", 2, -1, 0, &out), KILN_EINVAL);
    assert_int_equal(s->ops->incr(s, "n", "lo", 2, INT64_MAX, 0, &out), KILN_OK);
    assert_int_equal(out, -1);
    assert_int_equal(s->ops->incr(s, "n", "neg", 3, INT64_MIN, 0, &out), KILN_OK);
    assert_int_equal(out, INT64_MIN);
    assert_int_equal(s->ops->incr(s, "n", "neg", 3, -5, 0, &out), KILN_EINVAL);
    assert_int_equal(set(s, "n", "big", "99999999999999999999", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "big", 3, 1, 0, &out), KILN_EINVAL);
    assert_int_equal(set(s, "n", "big", "-99999999999999999999", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "big", 3, -1, 0, &out), KILN_EINVAL);
    assert_int_equal(set(s, "n", "big", "-", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "big", 3, 1, 0, &out), KILN_ETYPE);
    /* incr keeps an existing expiry. */
    assert_int_equal(set(s, "n", "e", "1", 60000, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->incr(s, "n", "e", 1, 1, 0, &out), KILN_OK);
    int64_t pttl = 0;
    size_t len;
    assert_int_equal(s->ops->get(s, "n", "e", 1, buf, sizeof(buf), &len, &pttl), KILN_OK);
    assert_true(pttl > 50000 && pttl <= 60000);
    kiln_kv_close(s);
}

static void test_ttl(void **state)
{
    kiln_kv_store *s = open_store(*state);
    char buf[64];
    size_t len;
    int64_t pttl = 0;
    bool found = false, stored = false;
    assert_int_equal(set(s, "t", "short", "x", 60, 0, NULL), KILN_OK);
    assert_int_equal(set(s, "t", "forever", "y", 0, 0, NULL), KILN_OK);
    assert_int_equal(s->ops->get(s, "t", "short", 5, buf, sizeof(buf), &len, &pttl), KILN_OK);
    assert_true(pttl > 0 && pttl <= 60);
    assert_int_equal(s->ops->get(s, "t", "forever", 7, buf, sizeof(buf), &len, &pttl), KILN_OK);
    assert_int_equal(pttl, -1);
    sleep_ms(100);
    assert_int_equal(get(s, "t", "short", buf, sizeof(buf)), KILN_ENOENT);
    /* An expired key is absent for everything: NX stores, expire finds nothing. */
    assert_int_equal(s->ops->expire(s, "t", "short", 5, 1000, &found), KILN_OK);
    assert_false(found);
    assert_int_equal(set(s, "t", "short", "again", 0, KILN_KV_NX, &stored), KILN_OK);
    assert_true(stored);
    assert_int_equal(s->ops->get(s, "t", "short", 5, buf, sizeof(buf), &len, &pttl), KILN_OK);
    assert_int_equal(pttl, -1);
    /* expire sets and removes an expiry. */
    assert_int_equal(s->ops->expire(s, "t", "forever", 7, 50, &found), KILN_OK);
    assert_true(found);
    assert_int_equal(s->ops->get(s, "t", "forever", 7, buf, sizeof(buf), &len, &pttl), KILN_OK);
    assert_true(pttl > 0 && pttl <= 50);
    assert_int_equal(s->ops->expire(s, "t", "forever", 7, 0, &found), KILN_OK);
    sleep_ms(80);
    assert_int_equal(get(s, "t", "forever", buf, sizeof(buf)), KILN_OK);
    /* incr of an expired key starts from 0. */
    int64_t out;
    assert_int_equal(set(s, "t", "cnt", "41", 30, 0, NULL), KILN_OK);
    sleep_ms(60);
    assert_int_equal(s->ops->incr(s, "t", "cnt", 3, 1, 0, &out), KILN_OK);
    assert_int_equal(out, 1);
    kiln_kv_close(s);
}

static void test_list(void **state)
{
    kiln_kv_store *s = open_store(*state);
    char k[32];
    for (int i = 24; i >= 0; i--) {
        snprintf(k, sizeof(k), "k%02d", i);
        assert_int_equal(set(s, "l", k, "v", 0, 0, NULL), KILN_OK);
    }
    assert_int_equal(set(s, "l", "a", "v", 0, 0, NULL), KILN_OK);
    assert_int_equal(set(s, "l", "z", "v", 0, 0, NULL), KILN_OK);
    assert_int_equal(set(s, "l", "k\xff", "v", 0, 0, NULL), KILN_OK);
    assert_int_equal(set(s, "l", "k99", "gone", 30, 0, NULL), KILN_OK);
    assert_int_equal(set(s, "other", "k50", "v", 0, 0, NULL), KILN_OK);
    sleep_ms(60);
    /* Pages of 10 through the 26 keys starting with "k": k00..k24, k\xff. */
    kiln_kv_page p;
    char after[32] = "";
    size_t alen = 0, total = 0;
    int pages = 0;
    for (;;) {
        assert_int_equal(s->ops->list(s, "l", "k", 1, after, alen, 10, &p), KILN_OK);
        pages++;
        for (size_t i = 0; i < p.n; i++, total++) {
            if (total < 25) {
                snprintf(k, sizeof(k), "k%02zu", total);
                assert_int_equal(p.keys[i].len, 3);
                assert_memory_equal(p.keys[i].p, k, 3);
            } else {
                assert_int_equal(p.keys[i].len, 2);
                assert_memory_equal(p.keys[i].p, "k\xff", 2);
            }
        }
        bool more = p.more;
        if (p.n > 0) {
            alen = p.keys[p.n - 1].len;
            memcpy(after, p.keys[p.n - 1].p, alen);
        }
        kiln_kv_page_fini(&p);
        if (!more)
            break;
    }
    assert_int_equal(total, 26);
    assert_int_equal(pages, 3);
    /* Everything, from the start. */
    assert_int_equal(s->ops->list(s, "l", "", 0, "", 0, 100, &p), KILN_OK);
    assert_int_equal(p.n, 28);
    assert_false(p.more);
    assert_memory_equal(p.keys[0].p, "a", 1);
    assert_memory_equal(p.keys[27].p, "z", 1);
    kiln_kv_page_fini(&p);
    /* Exactly max: no more. */
    assert_int_equal(s->ops->list(s, "l", "k1", 2, "", 0, 10, &p), KILN_OK);
    assert_int_equal(p.n, 10);
    assert_false(p.more);
    kiln_kv_page_fini(&p);
    /* Nothing. */
    assert_int_equal(s->ops->list(s, "nope", "", 0, "", 0, 10, &p), KILN_OK);
    assert_int_equal(p.n, 0);
    assert_false(p.more);
    kiln_kv_page_fini(&p);
    /* Namespaces with live keys. */
    assert_int_equal(s->ops->namespaces(s, "", 0, 10, &p), KILN_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal((const char *)p.keys[0].p, "l");
    assert_string_equal((const char *)p.keys[1].p, "other");
    kiln_kv_page_fini(&p);
    kiln_kv_close(s);
}

/* ---- namespaces: limits and grants --------------------------------------------- */

static void test_limits(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_config fc = {.limits = {.max_key_bytes = 8, .max_value_bytes = 16, .max_keys = 3}};
    kiln_kv_grants *g;
    kiln_err err;
    assert_int_equal(kiln_kv_grants_new_with(s, s, "limited", &fc, &g, &err), KILN_OK);
    const kiln_kv_ns *ns = kiln_kv_grants_find(g, "", 0);
    assert_non_null(ns);
    assert_string_equal(ns->store_ns, "fn:limited");
    bool stored;
    assert_int_equal(kiln_kv_ns_set(ns, "123456789", 9, "v", 1, 0, 0, &stored), KILN_ELIMIT);
    assert_int_equal(kiln_kv_ns_set(ns, "", 0, "v", 1, 0, 0, &stored), KILN_EINVAL);
    assert_int_equal(kiln_kv_ns_set(ns, "k", 1, "01234567890123456", 17, 0, 0, &stored),
                     KILN_ELIMIT);
    assert_int_equal(kiln_kv_ns_set(ns, "k", 1, "0123456789012345", 16, 0, 0, &stored), KILN_OK);
    assert_int_equal(kiln_kv_ns_set(ns, "k", 1, "v", 1, -1, 0, &stored), KILN_EINVAL);
    assert_int_equal(kiln_kv_ns_set(ns, "k", 1, "v", 1, 0, 8, &stored), KILN_EINVAL);
    assert_int_equal(kiln_kv_ns_set(ns, "k2", 2, "v", 1, 0, 0, &stored), KILN_OK);
    assert_int_equal(kiln_kv_ns_set(ns, "k3", 2, "v", 1, 40, 0, &stored), KILN_OK);
    /* Full: a fourth key is refused, an existing one may change. */
    assert_int_equal(kiln_kv_ns_set(ns, "k4", 2, "v", 1, 0, 0, &stored), KILN_ELIMIT);
    int64_t out;
    assert_int_equal(kiln_kv_ns_incr(ns, "k5", 2, 1, &out), KILN_ELIMIT);
    assert_int_equal(kiln_kv_ns_set(ns, "k2", 2, "w", 1, 0, 0, &stored), KILN_OK);
    /* The limit failed cleanly: nothing was written. */
    size_t len;
    char buf[32];
    assert_int_equal(kiln_kv_ns_get(ns, "k4", 2, buf, sizeof(buf), &len, NULL), KILN_ENOENT);
    /* An expired key makes room again. */
    sleep_ms(70);
    assert_int_equal(kiln_kv_ns_set(ns, "k4", 2, "v", 1, 0, 0, &stored), KILN_OK);
    /* And so does a delete. */
    bool deleted;
    assert_int_equal(kiln_kv_ns_set(ns, "k6", 2, "v", 1, 0, 0, &stored), KILN_ELIMIT);
    assert_int_equal(kiln_kv_ns_del(ns, "k2", 2, &deleted), KILN_OK);
    assert_true(deleted);
    assert_int_equal(kiln_kv_ns_set(ns, "k6", 2, "v", 1, 0, 0, &stored), KILN_OK);
    /* A key longer than the limit cannot exist: get says so without asking. */
    assert_int_equal(kiln_kv_ns_get(ns, "123456789", 9, buf, sizeof(buf), &len, NULL),
                     KILN_ENOENT);
    /* get_alloc. */
    uint8_t *v;
    assert_int_equal(kiln_kv_ns_get_alloc(ns, "k", 1, &v, &len), KILN_OK);
    assert_int_equal(len, 16);
    assert_string_equal((char *)v, "0123456789012345");
    free(v);
    kiln_kv_grants_free(g);
    kiln_kv_close(s);
}

/* Run fn with stderr (fd 2) captured into out (NUL-terminated). */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    dup2(fileno(f), 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

typedef struct quota_write {
    const kiln_kv_ns *ns;
    int rc;
} quota_write;

static void write_over_quota(void *arg)
{
    quota_write *q = arg;
    q->rc = kiln_kv_ns_set(q->ns, "k9", 2, "0123456789012345678901234567890123456789", 40, 0, 0,
                           NULL);
}

/* The byte quota: keys plus values per namespace, on set, overwrite, delete,
 * incr and expiry, enforced atomically by each backend. */
static void test_quota(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_config fc = {.limits = {.max_value_bytes = 64, .max_bytes = 100}};
    kiln_kv_grants *g;
    kiln_err err;
    char fn[64];
    snprintf(fn, sizeof(fn), "quota-%s", (const char *)*state);
    assert_int_equal(kiln_kv_grants_new_with(s, s, fn, &fc, &g, &err), KILN_OK);
    const kiln_kv_ns *ns = kiln_kv_grants_find(g, "", 0);
    assert_int_equal(ns->limits.max_bytes, 100);
    const char *v40 = "0123456789012345678901234567890123456789";
    bool stored = false;
    /* 42 + 42 = 84 bytes: fits; a third 42 would make 126. */
    assert_int_equal(kiln_kv_ns_set(ns, "k1", 2, v40, 40, 0, 0, &stored), KILN_OK);
    assert_int_equal(kiln_kv_ns_set(ns, "k2", 2, v40, 40, 0, 0, &stored), KILN_OK);
    /* A refused write is logged with the function, namespace, limit and what to do. */
    char log[2048];
    quota_write qw = {ns, 0};
    capture_stderr(write_over_quota, &qw, log, sizeof(log));
    assert_int_equal(qw.rc, KILN_ELIMIT);
    char want[256];
    snprintf(want, sizeof(want), "function '%s': namespace 'fn:%s' is over its byte quota", fn,
             fn);
    if (strstr(log, want) == NULL || strstr(log, "the limit is 100 bytes") == NULL ||
        strstr(log, "raise kv.max_bytes") == NULL)
        fail_msg("log line: %s", log);
    assert_int_equal(kiln_kv_ns_set(ns, "k3", 2, v40, 40, 0, 0, &stored), KILN_ELIMIT);
    assert_false(stored);
    size_t len;
    char buf[64];
    assert_int_equal(kiln_kv_ns_get(ns, "k3", 2, buf, sizeof(buf), &len, NULL), KILN_ENOENT);
    /* ... but only once a minute per namespace: a guest retrying in a loop
     * cannot flood the log. */
    capture_stderr(write_over_quota, &qw, log, sizeof(log));
    assert_int_equal(qw.rc, KILN_ELIMIT);
    assert_string_equal(log, "");
    /* Shrinking an entry makes room: k1 42 -> 12, total 54; k3 fits (96). */
    assert_int_equal(kiln_kv_ns_set(ns, "k1", 2, v40, 10, 0, 0, &stored), KILN_OK);
    assert_int_equal(kiln_kv_ns_set(ns, "k3", 2, v40, 40, 0, 0, &stored), KILN_OK);
    /* Growing an existing entry past the quota is refused and keeps the old value. */
    assert_int_equal(kiln_kv_ns_set(ns, "k2", 2, v40, 40, 0, 0, &stored), KILN_OK);
    assert_int_equal(kiln_kv_ns_set(ns, "k1", 2, v40, 20, 0, 0, &stored), KILN_ELIMIT);
    assert_int_equal(kiln_kv_ns_get(ns, "k1", 2, buf, sizeof(buf), &len, NULL), KILN_OK);
    assert_int_equal(len, 10);
    /* incr counts too: a new counter needs key + digits. */
    int64_t out = 0;
    assert_int_equal(kiln_kv_ns_incr(ns, "counter", 7, 1, &out), KILN_ELIMIT);
    /* A delete frees its key and value. */
    bool deleted = false;
    assert_int_equal(kiln_kv_ns_del(ns, "k2", 2, &deleted), KILN_OK);
    assert_true(deleted);
    assert_int_equal(kiln_kv_ns_incr(ns, "counter", 7, 1, &out), KILN_OK);
    assert_int_equal(kiln_kv_ns_incr(ns, "counter", 7, 999, &out), KILN_OK);
    assert_int_equal(out, 1000);
    /* 12 + 42 + 11 = 65 bytes now. An expired entry stops counting once the
     * namespace needs the room. */
    assert_int_equal(kiln_kv_ns_set(ns, "tt", 2, v40, 30, 40, 0, &stored), KILN_OK);
    assert_int_equal(kiln_kv_ns_set(ns, "k4", 2, v40, 30, 0, 0, &stored), KILN_ELIMIT);
    sleep_ms(70);
    assert_int_equal(kiln_kv_ns_set(ns, "k4", 2, v40, 30, 0, 0, &stored), KILN_OK);
    /* Another namespace has its own quota. */
    kiln_kv_grants *g2;
    assert_int_equal(kiln_kv_grants_new_with(s, s, "other", &fc, &g2, &err), KILN_OK);
    const kiln_kv_ns *ns2 = kiln_kv_grants_find(g2, "", 0);
    assert_int_equal(kiln_kv_ns_set(ns2, "k1", 2, v40, 40, 0, 0, &stored), KILN_OK);
    kiln_kv_grants_free(g2);
    kiln_kv_grants_free(g);
    kiln_kv_close(s);
}

/* The default quota bounds the flood that motivated it: 1 MiB values into
 * one namespace stop at 64 MiB instead of growing the server by 400 MiB. */
static void test_quota_default(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_grants *g;
    kiln_err err;
    char fn[64];
    snprintf(fn, sizeof(fn), "flood-%s", (const char *)*state);
    assert_int_equal(kiln_kv_grants_new_with(s, s, fn, NULL, &g, &err), KILN_OK);
    const kiln_kv_ns *ns = kiln_kv_grants_find(g, "", 0);
    size_t vlen = KILN_KV_DEFAULT_MAX_VALUE_BYTES;
    char *v = calloc(1, vlen);
    assert_non_null(v);
    int stored = 0, rc = KILN_OK;
    for (int i = 0; i < 400 && rc == KILN_OK; i++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "f%d", i);
        rc = kiln_kv_ns_set(ns, key, (size_t)kl, v, vlen, 0, 0, NULL);
        if (rc == KILN_OK)
            stored++;
    }
    assert_int_equal(rc, KILN_ELIMIT);
    assert_true((uint64_t)stored * vlen <= KILN_KV_DEFAULT_MAX_BYTES);
    assert_true((uint64_t)(stored + 1) * vlen > KILN_KV_DEFAULT_MAX_BYTES - 64 * 8);
    free(v);
    kiln_kv_grants_free(g);
    kiln_kv_close(s);
}

static void test_grants(void **state)
{
    kiln_kv_store *s = open_store(*state);
    kiln_kv_grant_config ga[] = {{"shared", true}, {"catalog", false}};
    kiln_kv_config fa = {.grants = ga, .n_grants = 2};
    kiln_kv_grant_config gb[] = {{"catalog", true}};
    kiln_kv_config fb = {.grants = gb, .n_grants = 1};
    kiln_kv_grants *a, *b;
    kiln_err err;
    assert_int_equal(kiln_kv_grants_new_with(s, s, "a", &fa, &a, &err), KILN_OK);
    assert_int_equal(kiln_kv_grants_new_with(s, s, "b", &fb, &b, &err), KILN_OK);
    const kiln_kv_ns *a_priv = kiln_kv_grants_find(a, "", 0);
    const kiln_kv_ns *b_priv = kiln_kv_grants_find(b, NULL, 0);
    const kiln_kv_ns *a_cat = kiln_kv_grants_find(a, "catalog", 7);
    const kiln_kv_ns *b_cat = kiln_kv_grants_find(b, "catalog", 7);
    assert_non_null(kiln_kv_grants_find(a, "shared", 6));
    /* Not granted: does not exist for the function. */
    assert_null(kiln_kv_grants_find(b, "shared", 6));
    assert_null(kiln_kv_grants_find(a, "fn:b", 4));
    assert_null(kiln_kv_grants_find(a, "catalo", 6));
    assert_null(kiln_kv_grants_find(NULL, "", 0));
    /* Private namespaces are private. */
    assert_int_equal(kiln_kv_ns_set(a_priv, "k", 1, "from a", 6, 0, 0, NULL), KILN_OK);
    size_t len;
    char buf[32];
    assert_int_equal(kiln_kv_ns_get(b_priv, "k", 1, buf, sizeof(buf), &len, NULL), KILN_ENOENT);
    /* Read-only grant: reads see b's writes, writes are refused. */
    assert_int_equal(kiln_kv_ns_set(b_cat, "item", 4, "42", 2, 0, 0, NULL), KILN_OK);
    assert_int_equal(kiln_kv_ns_get(a_cat, "item", 4, buf, sizeof(buf), &len, NULL), KILN_OK);
    assert_int_equal(len, 2);
    bool flag;
    int64_t out;
    kiln_kv_page p;
    assert_int_equal(kiln_kv_ns_set(a_cat, "item", 4, "1", 1, 0, 0, NULL), KILN_EPERM);
    assert_int_equal(kiln_kv_ns_del(a_cat, "item", 4, &flag), KILN_EPERM);
    assert_int_equal(kiln_kv_ns_incr(a_cat, "item", 4, 1, &out), KILN_EPERM);
    assert_int_equal(kiln_kv_ns_expire(a_cat, "item", 4, 10, &flag), KILN_EPERM);
    assert_int_equal(kiln_kv_ns_list(a_cat, "", 0, "", 0, 10, &p), KILN_OK);
    assert_int_equal(p.n, 1);
    kiln_kv_page_fini(&p);
    assert_int_equal(kiln_kv_ns_get(a_cat, "item", 4, buf, sizeof(buf), &len, NULL), KILN_OK);
    assert_memory_equal(buf, "42", 2);
    kiln_kv_grants_free(a);
    kiln_kv_grants_free(b);
    /* Invalid namespace names are configuration errors. */
    kiln_kv_grant_config bad[] = {{"has space", true}};
    kiln_kv_config fbad = {.grants = bad, .n_grants = 1};
    assert_int_equal(kiln_kv_grants_new_with(s, s, "c", &fbad, &a, &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "has space"));
    kiln_kv_close(s);
}

/* ---- SQLite specifics ------------------------------------------------------------ */

static void test_sqlite_persist(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/persist/kv.db", dir);
    kiln_kv_store *s;
    kiln_err err;
    assert_int_equal(kiln_kv_sqlite_open(path, NULL, &s, &err), KILN_OK);
    assert_int_equal(set(s, "p", "k", "durable", 0, 0, NULL), KILN_OK);
    int64_t out;
    assert_int_equal(s->ops->incr(s, "p", "n", 1, 3, 0, &out), KILN_OK);
    kiln_kv_close(s);
    assert_int_equal(kiln_kv_sqlite_open(path, NULL, &s, &err), KILN_OK);
    char buf[32];
    assert_int_equal(get(s, "p", "k", buf, sizeof(buf)), KILN_OK);
    assert_string_equal(buf, "durable");
    assert_int_equal(get(s, "p", "n", buf, sizeof(buf)), KILN_OK);
    assert_string_equal(buf, "3");
    kiln_kv_close(s);
    /* Lazy open: nothing on disk until the first operation. */
    char lazy[512];
    snprintf(lazy, sizeof(lazy), "%s/lazy/kv.db", dir);
    kiln_kv_sqlite_options o = {.lazy = true};
    assert_int_equal(kiln_kv_sqlite_open(lazy, &o, &s, &err), KILN_OK);
    struct stat st;
    assert_int_not_equal(stat(lazy, &st), 0);
    assert_int_equal(set(s, "p", "k", "v", 0, 0, NULL), KILN_OK);
    assert_int_equal(stat(lazy, &st), 0);
    kiln_kv_close(s);
    /* A lazy store whose file cannot be created fails operations, not the open. */
    assert_int_equal(kiln_kv_sqlite_open("/proc/kiln-no/kv.db", &o, &s, &err), KILN_OK);
    assert_int_equal(set(s, "p", "k", "v", 0, 0, NULL), KILN_EIO);
    assert_int_equal(get(s, "p", "k", buf, sizeof(buf)), KILN_EIO);
    kiln_kv_close(s);
}

static void test_sqlite_foreign(void **state)
{
    (void)state;
    char path[512], cmd[700];
    snprintf(path, sizeof(path), "%s/foreign.db", dir);
    snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'CREATE TABLE t(x)'", path);
    if (system(cmd) != 0)
        skip();
    kiln_kv_store *s = NULL;
    kiln_err err;
    assert_int_equal(kiln_kv_sqlite_open(path, NULL, &s, &err), KILN_EIO);
    assert_non_null(strstr(err.msg, "not a Kiln key-value database"));
    assert_null(s);
}

typedef struct writer_arg {
    kiln_kv_store *s;
    int id, n;
    int failures;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    char k[32];
    for (int i = 0; i < a->n; i++) {
        int64_t out;
        if (a->s->ops->incr(a->s, "c", "shared", 6, 1, 0, &out) != KILN_OK)
            a->failures++;
        snprintf(k, sizeof(k), "w%d-%d", a->id, i);
        if (set(a->s, "c", k, k, 0, 0, NULL) != KILN_OK)
            a->failures++;
    }
    return NULL;
}

/* Concurrent writers share commits and lose nothing. */
static void test_sqlite_group_commit(void **state)
{
    kiln_kv_store *s = open_store(*state);
    enum { T = 8, N = 50 };
    pthread_t th[T];
    writer_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (writer_arg){s, i, N, 0};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    char buf[32];
    assert_int_equal(get(s, "c", "shared", buf, sizeof(buf)), KILN_OK);
    assert_int_equal(atoi(buf), T * N);
    kiln_kv_page p;
    assert_int_equal(s->ops->list(s, "c", "w", 1, "", 0, 1000, &p), KILN_OK);
    assert_int_equal(p.n, T * N);
    kiln_kv_page_fini(&p);
    kiln_kv_close(s);
}

/* ---- the registry and the configuration --------------------------------------------- */

static void test_registry(void **state)
{
    (void)state;
    kiln_kv_store *a, *b, *c;
    kiln_err err;
    assert_int_equal(kiln_kv_acquire("memory", NULL, &a, &err), KILN_OK);
    assert_int_equal(kiln_kv_acquire("memory", NULL, &b, &err), KILN_OK);
    assert_ptr_equal(a, b);
    assert_int_equal(set(a, "r", "k", "v", 0, 0, NULL), KILN_OK);
    kiln_kv_release(a);
    char buf[8];
    assert_int_equal(get(b, "r", "k", buf, sizeof(buf)), KILN_OK);
    char path[512];
    snprintf(path, sizeof(path), "%s/reg/kv.db", dir);
    assert_int_equal(kiln_kv_acquire("sqlite", path, &c, &err), KILN_OK);
    assert_ptr_not_equal(c, b);
    assert_string_equal(c->ops->name, "sqlite");
    kiln_kv_release(c);
    kiln_kv_release(b);
    assert_int_equal(kiln_kv_acquire("redis", NULL, &c, &err), KILN_EINVAL);
    /* Grants through the registry. */
    kiln_kv_ns_config decl[] = {{"mem", "memory", {0, 0, 7, 0}}};
    kiln_kv_server_config srv = {.path = path, .namespaces = decl, .n_namespaces = 1};
    kiln_kv_grant_config gr[] = {{"mem", true}, {"disk", false}};
    kiln_kv_config fc = {.backend = "memory", .grants = gr, .n_grants = 2};
    kiln_kv_grants *g;
    assert_int_equal(kiln_kv_grants_new(&srv, "f", &fc, &g, &err), KILN_OK);
    const kiln_kv_ns *mem = kiln_kv_grants_find(g, "mem", 3);
    const kiln_kv_ns *disk = kiln_kv_grants_find(g, "disk", 4);
    assert_string_equal(kiln_kv_grants_find(g, "", 0)->store->ops->name, "memory");
    assert_string_equal(mem->store->ops->name, "memory");
    assert_int_equal(mem->limits.max_keys, 7);
    assert_int_equal(mem->limits.max_value_bytes, KILN_KV_DEFAULT_MAX_VALUE_BYTES);
    assert_int_equal(mem->limits.max_bytes, KILN_KV_DEFAULT_MAX_BYTES);
    assert_string_equal(disk->store->ops->name, "sqlite");
    assert_false(disk->writable);
    kiln_kv_grants_free(g);
}

static void test_config(void **state)
{
    (void)state;
    char wasm[512];
    snprintf(wasm, sizeof(wasm), "%s/f.wasm", dir);
    FILE *f = fopen(wasm, "w");
    assert_non_null(f);
    fputs("\0asm", f);
    fclose(f);
    const char *yaml = "kv:\n"
                       "  path: data/kv.db\n"
                       "  backend: memory\n"
                       "  namespaces:\n"
                       "    shared: {backend: sqlite, max_keys: 10, max_value_bytes: 1KiB, max_bytes: 1MiB}\n"
                       "functions:\n"
                       "  f:\n"
                       "    module: f.wasm\n"
                       "    kv:\n"
                       "      backend: sqlite\n"
                       "      max_key_bytes: 32\n"
                       "      max_keys: 5\n"
                       "      max_bytes: 2MiB\n"
                       "      grants: {shared: rw, other: r}\n"
                       "    routes: [/f]\n";
    cfg_config *c;
    kiln_err err;
    int rc = cfg_parse(yaml, strlen(yaml), "kv.yaml", dir, &c, &err);
    if (rc != KILN_OK)
        fail_msg("%s", err.msg);
    char want[600];
    snprintf(want, sizeof(want), "%s/data/kv.db", dir);
    assert_string_equal(c->kv.path, want);
    assert_string_equal(c->kv.backend, "memory");
    assert_int_equal(c->kv.n_namespaces, 1);
    assert_string_equal(c->kv.namespaces[0].backend, "sqlite");
    assert_int_equal(c->kv.namespaces[0].limits.max_keys, 10);
    assert_int_equal(c->kv.namespaces[0].limits.max_value_bytes, 1024);
    assert_int_equal(c->kv.namespaces[0].limits.max_bytes, 1u << 20);
    const kiln_kv_config *kv = c->functions[0].fn.kv;
    assert_non_null(kv);
    assert_string_equal(kv->backend, "sqlite");
    assert_int_equal(kv->limits.max_key_bytes, 32);
    assert_int_equal(kv->limits.max_keys, 5);
    assert_int_equal(kv->limits.max_bytes, 2u << 20);
    assert_int_equal(kv->n_grants, 2);
    assert_string_equal(kv->grants[0].ns, "shared");
    assert_true(kv->grants[0].write);
    assert_string_equal(kv->grants[1].ns, "other");
    assert_false(kv->grants[1].write);
    cfg_free(c);

    static const struct {
        const char *kv, *msg;
    } bad[] = {
        {"kv: {backend: redis}", "kv.backend 'redis' is unknown"},
        {"kv: {grants: {shared: write}}", "must be r (read-only) or rw (read-write)"},
        {"kv: {grants: {'a b': r}}", "namespace name 'a b'"},
        {"kv: {max_keys: 0}", "max_keys must be an integer"},
        {"kv: {colour: blue}", "unknown key 'colour'"},
        {"kv: [a]", "must be a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char y[600];
        snprintf(y, sizeof(y), "functions:\n  f:\n    module: f.wasm\n    %s\n    routes: [/f]\n",
                 bad[i].kv);
        assert_int_equal(cfg_parse(y, strlen(y), "bad.yaml", dir, &c, &err), KILN_ECONFIG);
        if (strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("%s: got '%s', expected '%s'", bad[i].kv, err.msg, bad[i].msg);
    }
    const char *top = "kv: {namespaces: {'x:y': {}}}\nfunctions: {}\n";
    assert_int_equal(cfg_parse(top, strlen(top), "bad.yaml", dir, &c, &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "namespace name 'x:y'"));
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_prestate(t, "memory"), cmocka_unit_test_prestate(t, "sqlite")

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_basic),
        BOTH(test_incr),
        BOTH(test_ttl),
        BOTH(test_list),
        BOTH(test_limits),
        BOTH(test_quota),
        BOTH(test_quota_default),
        BOTH(test_grants),
        cmocka_unit_test(test_sqlite_persist),
        cmocka_unit_test(test_sqlite_foreign),
        cmocka_unit_test_prestate(test_sqlite_group_commit, "sqlite"),
        cmocka_unit_test_prestate(test_sqlite_group_commit, "memory"),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
