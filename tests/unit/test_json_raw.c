/*
 * test_json_raw.c - src/base/json_raw.c: numbers survive as written (the
 * writer's jw_raw, json_raw_member), invalid input is refused, the writer's
 * strings are valid UTF-8 with control characters escaped, errors are
 * sticky, and json_raw_load keeps a document with out-of-range numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/json_raw.h"

/* jw_raw(text) alone, finished: the compact re-emission, or NULL. */
static char *raw(const char *text)
{
    jw *w = jw_new();
    assert_non_null(w);
    jw_raw(w, text, strlen(text));
    return jw_finish(w, NULL);
}

static void assert_raw(const char *in, const char *expected)
{
    char *out = raw(in);
    if (out == NULL)
        fail_msg("jw_raw refused %s", in);
    assert_string_equal(out, expected);
    free(out);
}

static void assert_raw_refused(const char *in, size_t len)
{
    jw *w = jw_new();
    assert_non_null(w);
    assert_false(jw_raw(w, in, len));
    assert_null(jw_finish(w, NULL));
    assert_false(json_raw_valid(in, len));
}

static void test_numbers_round_trip(void **state)
{
    (void)state;
    static const char *const numbers[] = {
        "0.9678663636363636", "431952.32",   "123456789012345678901234567890",
        "-1e400",             "1.0E+2",      "-0",
        "-0.0",               "1.5e300",     "-99999999999999999999999",
        "0",                  "1E-400",      "9223372036854775808",
        "2.50",               "-12.000e-07",
    };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        assert_true(json_raw_valid(numbers[i], strlen(numbers[i])));
        assert_raw(numbers[i], numbers[i]);
    }
    /* In containers, whitespace goes and the numbers stay. */
    assert_raw("{ \"a\" : 0.9678663636363636 ,\n \"b\": [431952.32, 1.0E+2, -0] }",
               "{\"a\":0.9678663636363636,\"b\":[431952.32,1.0E+2,-0]}");
}

static void test_structures_round_trip(void **state)
{
    (void)state;
    assert_raw("{}", "{}");
    assert_raw("[]", "[]");
    assert_raw("[[[]],{},{\"x\":{\"y\":[true,false,null]}}]",
               "[[[]],{},{\"x\":{\"y\":[true,false,null]}}]");
    assert_raw("\"plain\"", "\"plain\"");
    assert_raw("true", "true");
    assert_raw("null", "null");
    /* Escapes are decoded and re-encoded: same string, same meaning. */
    assert_raw("\"q\\\" b\\\\ s\\/ n\\n t\\t u\\u0001\"", "\"q\\\" b\\\\ s/ n\\n t\\t u\\u0001\"");
    assert_raw("\"\\u00e9\\ud83d\\ude00\"", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    assert_raw("\"h\xc3\xa9llo \xe2\x82\xac\"", "\"h\xc3\xa9llo \xe2\x82\xac\"");
    assert_raw("{\"k\\u0000ey\":1}", "{\"k\\u0000ey\":1}");
}

static void test_invalid_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",         " ",          "{} x",        "1 2",           "{}{}",
        "[1,]",     "{\"a\":1,}", "{\"a\" 1}",   "[1",            "{\"a\":",
        "\"open",   "tru",        "01",          "1.",            ".5",
        "+1",       "NaN",        "Infinity",    "[1] // c",      "/* c */ 1",
        "{a:1}",    "'s'",        "\"\x01\"",    "\"\xff\"",      "\"\xc3\"",
        "[\"\\x\"]", "-",         "1e",          "{\"a\":1}]",
        /* yajl would take \f and \v for whitespace; JSON does not. */
        "[1,\f2]",  "\v1",       "{\"a\":\f1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_raw_refused(bad[i], strlen(bad[i]));
    /* An embedded NUL ends nothing: it is an invalid byte. */
    assert_raw_refused("[1]\0", 4);
    assert_raw_refused("\"a\0b\"", 5);
    /* Surrounding whitespace is fine. */
    assert_true(json_raw_valid(" \n[1]\t ", 7));
}

static void assert_member(const char *doc, const char *key, int rc, const char *expected)
{
    const char *v = (const char *)1;
    size_t n = 99;
    assert_int_equal(json_raw_member(doc, strlen(doc), key, &v, &n), rc);
    if (rc == 1) {
        if (n != strlen(expected) || memcmp(v, expected, n) != 0)
            fail_msg("member %s of %s: [%.*s], expected [%s]", key, doc, (int)n, v, expected);
    } else {
        assert_null(v);
        assert_int_equal(n, 0);
    }
}

static void test_member(void **state)
{
    (void)state;
    const char *doc = "{\"s\":\"a,b}\\\"c\" , \"n\" : 0.9678663636363636,\"big\":"
                      "123456789012345678901234567890,\"t\":true,\"f\":false,\"z\":null,"
                      "\"o\":{\"s\":\"inner\",\"o\":{\"x\":[1,{\"y\":\"]\"}]}},"
                      "\"a\":[ 1 , [2,\"}\"] ],\"e\":{},\"neg\":-1e400}";
    assert_member(doc, "s", 1, "\"a,b}\\\"c\"");
    assert_member(doc, "n", 1, "0.9678663636363636");
    assert_member(doc, "big", 1, "123456789012345678901234567890");
    assert_member(doc, "t", 1, "true");
    assert_member(doc, "f", 1, "false");
    assert_member(doc, "z", 1, "null");
    assert_member(doc, "o", 1, "{\"s\":\"inner\",\"o\":{\"x\":[1,{\"y\":\"]\"}]}}");
    assert_member(doc, "a", 1, "[ 1 , [2,\"}\"] ]");
    assert_member(doc, "e", 1, "{}");
    assert_member(doc, "neg", 1, "-1e400");
    /* Only top-level members count. */
    assert_member(doc, "x", 0, NULL);
    assert_member(doc, "y", 0, NULL);
    assert_member(doc, "", 0, NULL);
    /* The last of repeated keys wins, as in jansson. */
    assert_member("{\"k\":1,\"o\":{\"k\":2},\"k\":[3]}", "k", 1, "[3]");
    /* Keys are compared decoded: an escaped key matches its text. */
    assert_member("{\"body\\u005fjson\":{\"v\":1.10}}", "body_json", 1, "{\"v\":1.10}");
    assert_member("{\"a\\\"b\":\"x\\\\\",\"c\":2}", "a\"b", 1, "\"x\\\\\"");
    assert_member("{\"a\\\"b\":\"x\\\\\",\"c\":2}", "c", 1, "2");
    assert_member("{\"\xc3\xa9\":1}", "\xc3\xa9", 1, "1");
    assert_member("{\"k\\u0000x\":1}", "k", 0, NULL);
    /* Whitespace everywhere. */
    assert_member(" \n{ \"k\" :\t\r\n 12 \n}\n", "k", 1, "12");
    assert_member("{\"k\":12}", "k", 1, "12");
    /* Not an object, or not JSON. */
    assert_member("[1,2]", "k", -1, NULL);
    assert_member("\"k\"", "k", -1, NULL);
    assert_member("12", "k", -1, NULL);
    assert_member("{\"k\":1} x", "k", -1, NULL);
    assert_member("{\"k\":1", "k", -1, NULL);
    assert_member("", "k", -1, NULL);
}

/* jw_members: constant members with the commas right; only where a key may
 * go. The nesting limit is yajl_gen's (127 levels), and a second top-level
 * value is refused, as yajl_gen refused them. */
static void test_writer_members_depth(void **state)
{
    (void)state;
    jw *w = jw_new();
    jw_obj_open(w);
    jw_members(w, "\"a\":1,\"b\":[]");
    jw_key(w, "c");
    jw_obj_open(w);
    jw_members(w, "\"d\":null");
    jw_obj_close(w);
    jw_members(w, "\"e\":{}");
    jw_obj_close(w);
    char *out = jw_finish(w, NULL);
    assert_non_null(out);
    assert_string_equal(out, "{\"a\":1,\"b\":[],\"c\":{\"d\":null},\"e\":{}}");
    free(out);
    w = jw_new(); /* after a key: a value is due */
    jw_obj_open(w);
    jw_key(w, "k");
    jw_members(w, "\"a\":1");
    assert_null(jw_finish(w, NULL));
    w = jw_new(); /* in an array */
    jw_arr_open(w);
    jw_members(w, "\"a\":1");
    assert_null(jw_finish(w, NULL));
    w = jw_new(); /* at the top */
    jw_members(w, "\"a\":1");
    assert_null(jw_finish(w, NULL));
    w = jw_new(); /* two top-level values */
    jw_int(w, 1);
    jw_int(w, 2);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    jw_fail(w);
    assert_null(jw_finish(w, NULL));
    for (int depth = 127; depth <= 128; depth++) {
        w = jw_new();
        for (int i = 0; i < depth; i++)
            jw_arr_open(w);
        for (int i = 0; i < depth; i++)
            jw_arr_close(w);
        out = jw_finish(w, NULL);
        if (depth == 127) {
            assert_non_null(out);
            assert_int_equal(strlen(out), 254);
        } else {
            assert_null(out);
        }
        free(out);
    }
}

/* The escaping loop copies runs of plain bytes whole: a byte needing care at
 * any offset of a longer string, against a byte-by-byte reference. */
static void test_writer_wide_strings(void **state)
{
    (void)state;
    static const char *const specials[] = {"\"", "\\", "\x01", "\x1f", "\n", "\x7f", " ",
                                           "\xc3\xa9", "\xff", "\xe2\x82"};
    static const char *const escaped[] = {"\\\"", "\\\\", "\\u0001", "\\u001F", "\\n", "\x7f",
                                          " ", "\xc3\xa9", "\xef\xbf\xbd", "\xef\xbf\xbd"};
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
        for (size_t at = 0; at < 20; at++) {
            char in[64], want[96];
            memset(in, 'a', 24);
            size_t sl = strlen(specials[k]);
            memcpy(in + at, specials[k], sl);
            in[24 + sl] = '\0';
            memset(in + 24, 'z', sl);
            snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)at, in, escaped[k],
                     (int)(24 + sl - at - sl), in + at + sl);
            jw *w = jw_new();
            jw_strn(w, in, 24 + sl);
            char *out = jw_finish(w, NULL);
            assert_non_null(out);
            assert_string_equal(out, want);
            free(out);
        }
    }
}

static void test_writer(void **state)
{
    (void)state;
    jw *w = jw_new();
    assert_non_null(w);
    jw_obj_open(w);
    jw_key(w, "s");
    jw_str(w, "line1\nline2\t\"q\" \\ \x01\x1f end");
    jw_key(w, "bad");
    jw_str(w, "a\xff" "b\xc3" "c\xed\xa0\x80" "d\xe2\x82" "e");
    jw_key(w, "nul");
    jw_strn(w, "a\0b", 3);
    jw_key(w, "none");
    jw_str(w, NULL);
    jw_key(w, "k\n\xff");
    jw_int(w, -9223372036854775807LL - 1);
    jw_key(w, "arr");
    jw_arr_open(w);
    jw_bool(w, true);
    jw_bool(w, false);
    jw_null(w);
    jw_raw(w, "{\"n\": 0.9678663636363636}", 25);
    json_t *j = json_pack("{s:i}", "j", 7);
    jw_jansson(w, j);
    json_decref(j);
    jw_arr_close(w);
    jw_obj_close(w);
    size_t len = 0;
    char *out = jw_finish(w, &len);
    assert_non_null(out);
    const char *expected =
        "{\"s\":\"line1\\nline2\\t\\\"q\\\" \\\\ \\u0001\\u001F end\","
        "\"bad\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
        "d\xef\xbf\xbd" "e\","
        "\"nul\":\"a\\u0000b\",\"none\":null,\"k\\n\xef\xbf\xbd\":-9223372036854775808,"
        "\"arr\":[true,false,null,{\"n\":0.9678663636363636},{\"j\":7}]}";
    assert_string_equal(out, expected);
    assert_int_equal(len, strlen(expected));
    /* What the writer wrote is valid JSON, and jansson agrees. */
    assert_true(json_raw_valid(out, len));
    json_t *back = json_loadb(out, len, JSON_ALLOW_NUL, NULL);
    assert_non_null(back);
    json_decref(back);
    free(out);

    /* A top-level scalar is a document too. */
    w = jw_new();
    jw_str(w, "x");
    out = jw_finish(w, NULL);
    assert_string_equal(out, "\"x\"");
    free(out);
}

/* Build something broken, then keep writing: jw_finish must say NULL. */
static void test_sticky_errors(void **state)
{
    (void)state;
    jw *w;
    /* An invalid raw value poisons the writer. */
    w = jw_new();
    jw_arr_open(w);
    assert_false(jw_raw(w, "[1,", 3));
    jw_int(w, 1);
    jw_arr_close(w);
    assert_false(jw_raw(w, "1", 1)); /* already poisoned */
    assert_null(jw_finish(w, NULL));
    /* Unbalanced: left open, closed twice, closed with the wrong kind. */
    w = jw_new();
    jw_obj_open(w);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    jw_arr_open(w);
    jw_arr_close(w);
    jw_arr_close(w);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    jw_arr_open(w);
    jw_obj_close(w);
    jw_arr_close(w);
    assert_null(jw_finish(w, NULL));
    /* Keys only in objects, values only after keys, no dangling key. */
    w = jw_new();
    jw_arr_open(w);
    jw_key(w, "k");
    jw_arr_close(w);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    jw_obj_open(w);
    jw_str(w, "value-without-key");
    jw_obj_close(w);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    jw_obj_open(w);
    jw_key(w, "k");
    jw_obj_close(w);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    jw_obj_open(w);
    jw_key(w, "k");
    jw_key(w, "k2");
    jw_int(w, 1);
    jw_obj_close(w);
    assert_null(jw_finish(w, NULL));
    /* A raw value in key position. */
    w = jw_new();
    jw_obj_open(w);
    assert_false(jw_raw(w, "\"k\"", 3));
    assert_null(jw_finish(w, NULL));
    /* Two top-level values, or none. */
    w = jw_new();
    jw_int(w, 1);
    jw_int(w, 2);
    assert_null(jw_finish(w, NULL));
    w = jw_new();
    assert_null(jw_finish(w, NULL));
    /* Too deep for yajl_gen. */
    w = jw_new();
    for (int i = 0; i < 200; i++)
        jw_arr_open(w);
    for (int i = 0; i < 200; i++)
        jw_arr_close(w);
    assert_null(jw_finish(w, NULL));
    /* NULL is tolerated everywhere. */
    jw_obj_open(NULL);
    jw_int(NULL, 1);
    assert_false(jw_raw(NULL, "1", 1));
    assert_null(jw_finish(NULL, NULL));
    jw_free(NULL);
    w = jw_new();
    jw_arr_open(w);
    jw_free(w); /* abandoned without jw_finish */
}

static void test_utf8(void **state)
{
    (void)state;
    size_t n;
    char *s = json_raw_utf8("ok \xc3\xa9\xf0\x9f\x98\x80", 9, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(s, "ok \xc3\xa9\xf0\x9f\x98\x80", 9);
    kiln_free(s);
    /* Overlong, surrogate, beyond U+10FFFF, truncated, lone continuation. */
    s = json_raw_utf8("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82|\x80", 16, &n);
    assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd|"
                           "\xef\xbf\xbd");
    kiln_free(s);
    s = json_raw_utf8("a\0b", 3, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "a\0b", 4);
    kiln_free(s);
}

static void test_load(void **state)
{
    (void)state;
    json_error_t err;
    /* Ordinary documents load as jansson loads them. */
    json_t *v = json_raw_load("{\"status\":201,\"x\":[1.5]}", 24, &err);
    assert_non_null(v);
    assert_true(json_is_integer(json_object_get(v, "status")));
    json_decref(v);
    /* An integer beyond int64 loads as a real; the others stay integers. */
    const char *doc = "{\"status\":201,\"big\":123456789012345678901234567890,"
                      "\"neg\":-99999999999999999999999,\"huge\":-1e400,\"s\":\"t\","
                      "\"a\":[true,null,{\"k\":1}],\"k\":1,\"k\":2}";
    v = json_raw_load(doc, strlen(doc), &err);
    assert_non_null(v);
    assert_true(json_is_integer(json_object_get(v, "status")));
    assert_int_equal(json_integer_value(json_object_get(v, "status")), 201);
    assert_true(json_is_real(json_object_get(v, "big")));
    assert_true(json_real_value(json_object_get(v, "big")) > 1.2e29);
    assert_true(json_real_value(json_object_get(v, "neg")) < -9.9e22);
    assert_true(json_real_value(json_object_get(v, "huge")) < -1e308);
    assert_string_equal(json_string_value(json_object_get(v, "s")), "t");
    assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
    assert_int_equal(json_integer_value(json_object_get(v, "k")), 2);
    json_decref(v);
    /* Still refused: invalid text, a scalar at the top, NUL, with a reason. */
    const char *bad[] = {"{\"a\":1e999,}", "123456789012345678901234567890",
                         "[1e999,\"a\\u0000\"]", "[99999999999999999999] x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_null(json_raw_load(bad[i], strlen(bad[i]), &err));
        assert_true(err.text[0] != '\0');
    }
    assert_null(json_raw_load("hello", 5, &err));
    assert_int_equal(json_error_code(&err), json_error_invalid_syntax);
    assert_null(json_raw_load("hello", 5, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_round_trip), cmocka_unit_test(test_structures_round_trip),
        cmocka_unit_test(test_invalid_refused),    cmocka_unit_test(test_member),
        cmocka_unit_test(test_writer),             cmocka_unit_test(test_writer_members_depth),
        cmocka_unit_test(test_sticky_errors),      cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_load),               cmocka_unit_test(test_writer_wide_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
