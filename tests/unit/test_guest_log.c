/*
 * test_guest_log.c - the per-invocation guest log budget every ABI logs
 * through (src/abi/guest_log.c): lines, bytes and line length, the summary
 * line, sanitising, nesting, and the behaviour outside an invocation. The
 * end-to-end flood through a guest is in tests/integration/test_kv.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "abi/guest_log.h"

/* Everything written to fd 2 while fn runs. */
static char captured[1 << 16];

static void capture(void (*fn)(void))
{
    char path[] = "/tmp/kiln-test-guest-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, captured, sizeof(captured) - 1);
    captured[n > 0 ? n : 0] = '\0';
    close(fd);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void budgeted_flood(void)
{
    guest_log_budget b;
    kiln_log_limits l = {.max_lines = 3, .max_bytes = 100, .max_line_bytes = 40};
    guest_log_begin(&b, "fl", &l);
    char msg[200];
    memset(msg, 'x', sizeof(msg));
    guest_log_write("fl", "info", msg, 10);  /* whole: 10 */
    guest_log_write("fl", "info", msg, 50);  /* cut at 40: 50 */
    guest_log_write("fl", NULL, msg, 60);    /* cut at 40: 90 */
    for (int i = 0; i < 1000; i++)
        guest_log_write("fl", "info", msg, 7); /* over max_lines: dropped */
    guest_log_end(&b);
}

static void test_budget(void **state)
{
    (void)state;
    capture(budgeted_flood);
    assert_int_equal(count_lines(captured), 4);
    assert_non_null(strstr(captured, "[info] fl: xxxxxxxxxx\n"));
    assert_non_null(strstr(captured, "[info] fl: " /* 40 x */
                                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx [... 10 more bytes]\n"));
    assert_non_null(strstr(captured, "[fl] xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx [... 20 more"));
    assert_non_null(strstr(captured, "[fl] guest log: 1000 lines (7000 bytes) dropped and 2 cut "
                                     "short in this request, over its budget of 3 lines, 100 "
                                     "bytes, 40 bytes per line"));
    assert_non_null(strstr(captured, "of function 'fl'\n"));
}

static void bytes_budget(void)
{
    guest_log_budget b;
    kiln_log_limits l = {.max_lines = 1000, .max_bytes = 25, .max_line_bytes = 40};
    guest_log_begin(&b, "by", &l);
    size_t take = 0;
    assert_true(guest_log_admit(20, &take));
    assert_int_equal(take, 20);
    assert_true(guest_log_admit(20, &take)); /* the rest of max_bytes */
    assert_int_equal(take, 5);
    assert_false(guest_log_admit(1, &take));
    assert_int_equal(take, 0);
    guest_log_end(&b);
}

static void test_bytes(void **state)
{
    (void)state;
    capture(bytes_budget);
    assert_non_null(strstr(captured, "[by] guest log: 1 line (1 bytes) dropped and 1 cut short"));
}

static void quiet_request(void)
{
    guest_log_budget b;
    guest_log_begin(&b, "q", NULL);
    assert_int_equal(b.lim.max_lines, KILN_LOG_DEFAULT_MAX_LINES);
    assert_int_equal(b.lim.max_bytes, KILN_LOG_DEFAULT_MAX_BYTES);
    assert_int_equal(b.lim.max_line_bytes, KILN_LOG_DEFAULT_MAX_LINE_BYTES);
    guest_log_write("q", "warn", "a\nforged line\r\x1b[31m", 19);
    guest_log_end(&b);
}

static void test_sanitised_and_no_summary(void **state)
{
    (void)state;
    capture(quiet_request);
    /* One line: the guest cannot start a line of its own, and nothing was
     * dropped, so no summary. */
    assert_string_equal(captured, "[warn] q: a?forged line??[31m\n");
}

static void nested(void)
{
    guest_log_budget outer, inner;
    kiln_log_limits one = {.max_lines = 1};
    guest_log_begin(&outer, "outer", &one);
    guest_log_begin(&inner, "inner", NULL);
    guest_log_write("inner", "info", "a", 1);
    guest_log_write("inner", "info", "b", 1);
    guest_log_end(&inner);
    /* The outer budget is untouched by the inner invocation. */
    guest_log_write("outer", "info", "c", 1);
    guest_log_write("outer", "info", "d", 1);
    guest_log_end(&outer);
    /* Outside any invocation: no budget, lines are only cut. */
    char big[3000];
    memset(big, 'y', sizeof(big));
    for (int i = 0; i < 20; i++)
        guest_log_write("free", NULL, big, sizeof(big));
}

static void test_nesting_and_outside(void **state)
{
    (void)state;
    capture(nested);
    assert_non_null(strstr(captured, "[info] inner: b\n"));
    assert_non_null(strstr(captured, "[info] outer: c\n"));
    assert_null(strstr(captured, "[info] outer: d\n"));
    assert_non_null(strstr(captured, "[outer] guest log: 1 line (1 bytes) dropped"));
    assert_null(strstr(captured, "[inner] guest log"));
    assert_non_null(strstr(captured, "[free] yyy"));
    assert_non_null(strstr(captured, " [... 1976 more bytes]\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_sanitised_and_no_summary),
        cmocka_unit_test(test_nesting_and_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
