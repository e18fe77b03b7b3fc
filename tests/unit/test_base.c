/*
 * test_base.c - src/base: status texts, the kiln_err record (truncation,
 * prefixing) and the allocation wrappers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "kiln/kiln.h"

static void test_strerror_covers_every_status(void **state)
{
    (void)state;
#define CHECK_TEXT(name, value, text) assert_string_equal(kiln_strerror(value), text);
    KILN_STATUS_MAP(CHECK_TEXT)
#undef CHECK_TEXT
    assert_string_equal(kiln_strerror(-9999), "unknown error");
    assert_string_equal(kiln_strerror(KILN_OK), "success");
}

static void test_err_set_and_prefix(void **state)
{
    (void)state;
    kiln_err err;
    err.trap = 5;
    assert_int_equal(kiln_err_set(&err, KILN_EIMPORT, "x.%s missing", "y"), KILN_EIMPORT);
    assert_int_equal(err.code, KILN_EIMPORT);
    assert_int_equal(err.trap, 0); /* reset by every set */
    assert_string_equal(err.msg, "x.y missing");
    assert_int_equal(kiln_err_prefix(&err, "%s", "mod.wasm"), KILN_EIMPORT);
    assert_string_equal(err.msg, "mod.wasm: x.y missing");
    /* NULL records are allowed and the code still comes back. */
    assert_int_equal(kiln_err_set(NULL, KILN_ENOMEM, "ignored"), KILN_ENOMEM);
}

static void test_err_truncates_safely(void **state)
{
    (void)state;
    kiln_err err;
    char big[4000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kiln_err_set(&err, KILN_EIO, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    kiln_err_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_int_equal(err.msg[0], 'a');
}

static void test_alloc_wrappers(void **state)
{
    (void)state;
    char *s = kiln_strndup("hello world", 5);
    assert_string_equal(s, "hello");
    kiln_free(s);
    s = kiln_strdup("");
    assert_string_equal(s, "");
    kiln_free(s);
    /* Zero-sized requests return distinct usable pointers, never NULL. */
    void *p = kiln_malloc(0), *q = kiln_calloc(0, 8);
    assert_non_null(p);
    assert_non_null(q);
    kiln_free(p);
    kiln_free(q);
    uint8_t *z = kiln_calloc(16, 16);
    for (int i = 0; i < 256; i++)
        assert_int_equal(z[i], 0);
    z = kiln_realloc(z, 4096);
    assert_non_null(z);
    kiln_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_covers_every_status),
        cmocka_unit_test(test_err_set_and_prefix),
        cmocka_unit_test(test_err_truncates_safely),
        cmocka_unit_test(test_alloc_wrappers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
