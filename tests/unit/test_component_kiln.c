/*
 * test_component_kiln.c - Kiln's host interfaces for components below the
 * canonical ABI (src/component/cm_kiln*.c): the registry cm_kiln_add builds
 * (wasi:keyvalue at Spin's 0.2.0-draft2, CAS included, and wasmtime's
 * 0.2.0-draft only;
 * wasi:config and wasi:logging at any version; the bucket
 * drop the handle table calls), the bucket cap of the WASI 0.2 resource
 * table (and room again after a drop), and kiln.log's sink that
 * wasi:logging shares (level threshold, levels above error clamped).
 * Served behaviour: tests/integration/test_component_kv.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "abi/kiln/kiln_host.h"
#include "component/cm_kiln.h"
#include "component/cm_wasi.h"
#include "component/cm_wasi_int.h"

static bool has(const cm_host *h, const char *iface, const char *name)
{
    void *ud;
    return cm_host_find(h, iface, name, &ud) != NULL;
}

static void test_registry(void **state)
{
    (void)state;
    cm_host h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(cm_wasi_add(&h, NULL), KILN_OK);
    assert_int_equal(cm_kiln_add(&h, NULL), KILN_OK);
    const char *kv = "wasi:keyvalue/store@0.2.0-draft2";
    assert_true(has(&h, kv, "open"));
    assert_true(has(&h, kv, "[method]bucket.get"));
    assert_true(has(&h, kv, "[method]bucket.set"));
    assert_true(has(&h, kv, "[method]bucket.delete"));
    assert_true(has(&h, kv, "[method]bucket.exists"));
    assert_true(has(&h, kv, "[method]bucket.list-keys"));
    assert_true(has(&h, kv, "[resource-drop]bucket"));
    assert_true(has(&h, "wasi:keyvalue/atomics@0.2.0-draft2", "increment"));
    assert_true(has(&h, "wasi:keyvalue/batch@0.2.0-draft2", "get-many"));
    assert_true(has(&h, "wasi:keyvalue/batch@0.2.0-draft2", "set-many"));
    assert_true(has(&h, "wasi:keyvalue/batch@0.2.0-draft2", "delete-many"));
    /* wasmtime's 0.2.0-draft too (its u64 cursor and increment follow
     * from the imported type), but no other version. */
    assert_true(has(&h, "wasi:keyvalue/store@0.2.0-draft", "open"));
    assert_true(has(&h, "wasi:keyvalue/store@0.2.0-draft", "[method]bucket.list-keys"));
    assert_true(has(&h, "wasi:keyvalue/atomics@0.2.0-draft", "increment"));
    assert_false(has(&h, "wasi:keyvalue/store@0.2.0-rc-2023-11-10", "open"));
    /* CAS: registered (componentize-js imports every function of the
     * world), answering "not supported" when called. */
    assert_true(has(&h, "wasi:keyvalue/atomics@0.2.0-draft2", "swap"));
    assert_true(has(&h, "wasi:keyvalue/atomics@0.2.0-draft2", "[static]cas.new"));
    assert_true(has(&h, "wasi:keyvalue/atomics@0.2.0-draft2", "[method]cas.current"));
    assert_false(has(&h, "wasi:keyvalue/atomics@0.2.0-draft", "swap"));
    /* Same shape in every draft: any version. */
    assert_true(has(&h, "wasi:config/store@0.2.0-draft", "get"));
    assert_true(has(&h, "wasi:config/store@0.2.0-draft-2024-09-27", "get-all"));
    assert_true(has(&h, "wasi:logging/logging@0.1.0-draft", "log"));
    assert_false(has(&h, "wasi:config/runtime@0.2.0-draft", "get"));
    /* WASI 0.2 is still there, and the registry has room left. */
    assert_true(has(&h, "wasi:cli/stdout@0.2.0", "get-stdout"));
    assert_true(h.n < CM_HOST_MAX_TABLES);
}

static void test_bucket_cap(void **state)
{
    (void)state;
    kiln_wasi_config cfg = {0};
    kiln_wasi *w = NULL;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_OK);
    cw_obj b = {.kind = CW_BUCKET, .ns = (const struct kiln_kv_ns *)&cfg};
    uint32_t reps[CW_MAX_BUCKETS], r;
    for (uint32_t i = 0; i < CW_MAX_BUCKETS; i++)
        assert_int_equal(cw_new(w, &b, &reps[i], &err), KILN_OK);
    assert_int_equal(cw_new(w, &b, &r, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "open buckets"));
    /* Other resources are not counted against buckets. */
    cw_obj p = {.kind = CW_POLL};
    assert_int_equal(cw_new(w, &p, &r, &err), KILN_OK);
    assert_non_null(cw_get(w, reps[7], CW_BUCKET, &err));
    assert_ptr_equal(cw_get(w, reps[7], CW_BUCKET, &err)->ns, b.ns);
    assert_null(cw_get(w, r, CW_BUCKET, &err)); /* a pollable is not a bucket */
    assert_non_null(strstr(err.msg, "not a live bucket"));
    cw_free(w, reps[7]);
    assert_int_equal(cw_new(w, &b, &reps[7], &err), KILN_OK);
    assert_int_equal(cw_new(w, &b, &r, &err), KILN_ELIMIT);
    kiln_wasi_free(w); /* the table goes with the context (ASan) */
}

typedef struct sink {
    int n, level;
    char msg[64];
} sink;

static void capture(void *user, int level, const char *fn, const char *msg, size_t len)
{
    sink *s = user;
    s->n++;
    s->level = level;
    snprintf(s->msg, sizeof(s->msg), "%s|%.*s", fn, (int)len, msg);
}

static void test_log_sink(void **state)
{
    (void)state;
    sink s = {0};
    kiln_host_ctx h = {.fn_name = "f", .log_level = 2, .log = capture, .log_user = &s};
    kiln_host_log(&h, 1, "debug", 5);
    assert_int_equal(s.n, 0); /* below the function's level */
    kiln_host_log(&h, 3, "warned", 6);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.level, 3);
    assert_string_equal(s.msg, "f|warned");
    kiln_host_log(&h, 9, "critical", 8); /* clamped to error */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.level, 4);
    h.log_level = 5; /* off */
    kiln_host_log(&h, 4, "dropped", 7);
    assert_int_equal(s.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_bucket_cap),
        cmocka_unit_test(test_log_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
