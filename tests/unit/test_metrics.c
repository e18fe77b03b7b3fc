/*
 * test_metrics.c - the process-wide metrics registry (src/base/metrics.h):
 * define/update/get by id, type checks, concurrent increments, and the
 * Prometheus text the admin API serves.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/metrics.h"
#include "kiln/kiln.h"

static void test_define_and_update(void **state)
{
    (void)state;
    uint32_t c, c2, g, h;
    assert_int_equal(metrics_define(METRICS_COUNTER, "t.requests", 10, &c), KILN_OK);
    assert_int_equal(metrics_define(METRICS_COUNTER, "t.requests", 10, &c2), KILN_OK);
    assert_int_equal(c, c2); /* same name, same metric */
    assert_int_equal(metrics_define(METRICS_GAUGE, "t.requests", 10, &g), KILN_EINVAL);
    assert_int_equal(metrics_define(METRICS_GAUGE, "", 0, &g), KILN_EINVAL);
    assert_int_equal(metrics_define(METRICS_GAUGE, "t-gauge", 7, &g), KILN_OK);
    assert_int_equal(metrics_define(METRICS_HISTOGRAM, "t_hist", 6, &h), KILN_OK);
    int64_t v;
    assert_int_equal(metrics_add(c, 2), KILN_OK);
    assert_int_equal(metrics_add(c, -1), KILN_EINVAL); /* counters only go up */
    assert_int_equal(metrics_record(c, 3), KILN_OK);
    assert_int_equal(metrics_get(c, &v), KILN_OK);
    assert_int_equal(v, 5);
    assert_int_equal(metrics_add(g, -4), KILN_OK);
    assert_int_equal(metrics_get(g, &v), KILN_OK);
    assert_int_equal(v, -4);
    assert_int_equal(metrics_record(g, 9), KILN_OK);
    assert_int_equal(metrics_get(g, &v), KILN_OK);
    assert_int_equal(v, 9);
    assert_int_equal(metrics_record(h, 3), KILN_OK);
    assert_int_equal(metrics_record(h, 100), KILN_OK);
    assert_int_equal(metrics_get(h, &v), KILN_EINVAL);
    assert_int_equal(metrics_add(h, 1), KILN_EINVAL);
    assert_int_equal(metrics_get(999999, &v), KILN_EINVAL);

    size_t len;
    char *text = metrics_prometheus(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "# TYPE t_requests counter\nt_requests 5\n"));
    assert_non_null(strstr(text, "# TYPE t_gauge gauge\nt_gauge 9\n"));
    assert_non_null(strstr(text, "t_hist_bucket{le=\"2\"} 0\n"));
    assert_non_null(strstr(text, "t_hist_bucket{le=\"4\"} 1\n"));
    assert_non_null(strstr(text, "t_hist_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "t_hist_sum 103\nt_hist_count 2\n"));
    kiln_free(text);
}

static uint32_t shared_id;

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++)
        metrics_add(shared_id, 1);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    assert_int_equal(metrics_define(METRICS_COUNTER, "t_concurrent", 12, &shared_id), KILN_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, bump, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int64_t v;
    assert_int_equal(metrics_get(shared_id, &v), KILN_OK);
    assert_int_equal(v, 40000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_define_and_update),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
