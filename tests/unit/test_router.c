/*
 * test_router.c - route patterns and matching (src/http/router.c): syntax
 * errors, exact/param/prefix precedence, methods (405 + Allow, HEAD via GET),
 * hosts (exact, wildcard, port and case ignored), percent-decoding and
 * parameter values, duplicates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/router.h"

static int targets[32];
#define T(i) ((void *)&targets[i])

static void add(http_router *r, const char *pat, const char *host, const char *methods, int t)
{
    const char *ms[8];
    size_t n = 0;
    char buf[128];
    if (methods != NULL) {
        snprintf(buf, sizeof(buf), "%s", methods);
        for (char *s = strtok(buf, ","); s != NULL && n < 8; s = strtok(NULL, ","))
            ms[n++] = s;
    }
    kiln_err err;
    int rc = http_router_add(r, pat, host, ms, n, T(t), &err);
    if (rc != KILN_OK)
        fail_msg("add %s: %s", pat, err.msg);
}

/* Match and return the target index, -404, -405 or -400. */
static int match(const http_router *r, const char *method, const char *host, const char *path,
                 http_match *m)
{
    http_route_status st = http_router_match(r, method, host, path, strlen(path), m);
    switch (st) {
    case HTTP_ROUTE_FOUND: return (int)((int *)m->target - targets);
    case HTTP_ROUTE_NOT_FOUND: return -404;
    case HTTP_ROUTE_BAD_METHOD: return -405;
    case HTTP_ROUTE_BAD_PATH: return -400;
    default: return -500;
    }
}

static int m1(const http_router *r, const char *method, const char *host, const char *path)
{
    http_match m;
    int v = match(r, method, host, path, &m);
    http_match_fini(&m);
    return v;
}

static const char *param(const http_match *m, const char *name)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return m->params[i].value;
    return NULL;
}

static void test_syntax(void **state)
{
    (void)state;
    kiln_err err;
    assert_int_equal(http_pattern_check("/a/b", &err), KILN_OK);
    assert_int_equal(http_pattern_check("/", &err), KILN_OK);
    assert_int_equal(http_pattern_check("/*", &err), KILN_OK);
    assert_int_equal(http_pattern_check("/api/...", &err), KILN_OK);
    assert_int_equal(http_pattern_check("/u/:id/x/:y", &err), KILN_OK);
    assert_int_equal(http_pattern_check("noslash", &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "must start with '/'"));
    assert_int_equal(http_pattern_check("/a/*/b", &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "last segment"));
    assert_int_equal(http_pattern_check("/a/:", &err), KILN_ECONFIG);
    assert_int_equal(http_pattern_check("/a/:x/:x", &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "appears twice"));
    assert_int_equal(http_pattern_check("/a/:b.c", &err), KILN_ECONFIG);
    assert_int_equal(http_pattern_check("/a%zz", &err), KILN_ECONFIG);
    assert_int_equal(http_pattern_check("/a%2Fb", &err), KILN_ECONFIG);
    assert_int_equal(http_pattern_check(NULL, &err), KILN_ECONFIG);
}

static void test_precedence(void **state)
{
    (void)state;
    http_router *r;
    assert_int_equal(http_router_new(&r), KILN_OK);
    add(r, "/*", NULL, NULL, 0);
    add(r, "/users/*", NULL, NULL, 1);
    add(r, "/users/:id", NULL, NULL, 2);
    add(r, "/users/me", NULL, NULL, 3);
    add(r, "/users/:id/posts/:post", NULL, NULL, 4);
    add(r, "/users/me/posts/:post", NULL, NULL, 5);
    add(r, "/users/:id/posts/latest", NULL, NULL, 6);
    add(r, "/api/v1/...", NULL, NULL, 7);
    add(r, "/", NULL, NULL, 8);
    assert_int_equal(http_router_count(r), 9);

    assert_int_equal(m1(r, "GET", NULL, "/users/me"), 3);    /* exact > param */
    assert_int_equal(m1(r, "GET", NULL, "/users/42"), 2);    /* param > prefix */
    assert_int_equal(m1(r, "GET", NULL, "/users/42/x"), 1);  /* longer prefix */
    assert_int_equal(m1(r, "GET", NULL, "/users"), 1);       /* prefix includes its root */
    assert_int_equal(m1(r, "GET", NULL, "/users/"), 1);      /* empty segment is no param */
    assert_int_equal(m1(r, "GET", NULL, "/other"), 0);
    assert_int_equal(m1(r, "GET", NULL, "/"), 8);            /* exact root > catch-all */
    assert_int_equal(m1(r, "GET", NULL, "/users/me/posts/9"), 5); /* leftmost literal wins */
    assert_int_equal(m1(r, "GET", NULL, "/users/7/posts/latest"), 6);
    assert_int_equal(m1(r, "GET", NULL, "/users/7/posts/9"), 4);
    assert_int_equal(m1(r, "GET", NULL, "/api/v1"), 7);
    assert_int_equal(m1(r, "GET", NULL, "/api/v1/a/b"), 7);
    assert_int_equal(m1(r, "GET", NULL, "/api/v2"), 0);
    http_router_free(r);
}

static void test_params(void **state)
{
    (void)state;
    http_router *r;
    assert_int_equal(http_router_new(&r), KILN_OK);
    add(r, "/users/:id/files/*", NULL, NULL, 1);
    add(r, "/hello%20world/:name", NULL, NULL, 2);
    add(r, "/exact", NULL, NULL, 3);
    http_match m;
    assert_int_equal(match(r, "GET", NULL, "/users/a%20b/files/x/y%2Fz", &m), 1);
    assert_string_equal(param(&m, "id"), "a b");
    assert_string_equal(param(&m, "*"), "/x/y/z");
    assert_string_equal(m.script_name, "/users/a b/files");
    assert_string_equal(m.pattern, "/users/:id/files/*");
    http_match_fini(&m);
    assert_int_equal(match(r, "GET", NULL, "/users/1/files", &m), 1);
    assert_string_equal(param(&m, "*"), "");
    assert_string_equal(m.script_name, "/users/1/files");
    http_match_fini(&m);
    assert_int_equal(match(r, "GET", NULL, "/hello world/%41", &m), 2);
    assert_string_equal(param(&m, "name"), "A");
    http_match_fini(&m);
    assert_int_equal(match(r, "GET", NULL, "/exact", &m), 3);
    assert_int_equal(m.n_params, 0);
    assert_string_equal(m.script_name, "/exact");
    http_match_fini(&m);
    /* Bad paths. */
    assert_int_equal(m1(r, "GET", NULL, "/users/%zz/files"), -400);
    assert_int_equal(m1(r, "GET", NULL, "/users/%00/files"), -400);
    assert_int_equal(m1(r, "GET", NULL, "/users/%4"), -400);
    assert_int_equal(m1(r, "GET", NULL, "relative"), -400);
    assert_int_equal(m1(r, "GET", NULL, ""), -400);
    char deep[1024] = "";
    for (int i = 0; i < 200; i++)
        strcat(deep, "/a");
    assert_int_equal(m1(r, "GET", NULL, deep), -400);
    assert_int_equal(m1(r, "GET", NULL, "/exact/"), -404);
    assert_int_equal(m1(r, "GET", NULL, "/EXACT"), -404);
    http_router_free(r);
}

static void test_methods(void **state)
{
    (void)state;
    http_router *r;
    assert_int_equal(http_router_new(&r), KILN_OK);
    add(r, "/items", NULL, "GET", 1);
    add(r, "/items", NULL, "post,PUT", 2);
    add(r, "/any", NULL, NULL, 3);
    add(r, "/any", NULL, "DELETE", 4);
    add(r, "/p/*", NULL, "GET", 5);
    add(r, "/p/upload", NULL, "POST", 6);
    http_match m;
    assert_int_equal(m1(r, "GET", NULL, "/items"), 1);
    assert_int_equal(m1(r, "HEAD", NULL, "/items"), 1); /* HEAD implied by GET */
    assert_int_equal(m1(r, "POST", NULL, "/items"), 2);
    assert_int_equal(m1(r, "PUT", NULL, "/items"), 2);
    assert_int_equal(match(r, "DELETE", NULL, "/items", &m), -405);
    assert_string_equal(m.allow, "GET, HEAD, POST, PUT");
    http_match_fini(&m);
    assert_int_equal(m1(r, "DELETE", NULL, "/any"), 4); /* method-specific > any */
    assert_int_equal(m1(r, "PATCH", NULL, "/any"), 3);
    /* A more specific route that refuses the method falls through. */
    assert_int_equal(m1(r, "GET", NULL, "/p/upload"), 5);
    assert_int_equal(m1(r, "POST", NULL, "/p/upload"), 6);
    assert_int_equal(match(r, "PUT", NULL, "/p/upload", &m), -405);
    assert_string_equal(m.allow, "GET, HEAD, POST");
    http_match_fini(&m);
    assert_int_equal(m1(r, "GET", NULL, "/nothing"), -404);
    http_router_free(r);
}

static void test_hosts(void **state)
{
    (void)state;
    http_router *r;
    assert_int_equal(http_router_new(&r), KILN_OK);
    add(r, "/hello", NULL, NULL, 1);
    add(r, "/*", "api.example.com", NULL, 2);
    add(r, "/hello", "*.example.com", NULL, 3);
    add(r, "/only", "Only.Example.com", NULL, 4);
    assert_int_equal(m1(r, "GET", "localhost:8080", "/hello"), 1);
    assert_int_equal(m1(r, "GET", NULL, "/hello"), 1);
    assert_int_equal(m1(r, "GET", "api.example.com", "/hello"), 2); /* host first */
    assert_int_equal(m1(r, "GET", "API.EXAMPLE.COM:80", "/x"), 2);
    assert_int_equal(m1(r, "GET", "www.example.com", "/hello"), 3);
    assert_int_equal(m1(r, "GET", "example.com", "/hello"), 1); /* wildcard needs a label */
    assert_int_equal(m1(r, "GET", "only.example.com.", "/only"), 4);
    assert_int_equal(m1(r, "GET", "other.com", "/only"), -404);
    assert_int_equal(m1(r, "GET", "[::1]:8080", "/hello"), 1);
    http_router_free(r);
}

static void test_duplicates(void **state)
{
    (void)state;
    http_router *r;
    kiln_err err;
    const char *get[] = {"GET"}, *post[] = {"POST"};
    assert_int_equal(http_router_new(&r), KILN_OK);
    assert_int_equal(http_router_add(r, "/a/:x", NULL, get, 1, T(1), &err), KILN_OK);
    assert_int_equal(http_router_add(r, "/a/:y", NULL, get, 1, T(2), &err), KILN_ECONFIG);
    assert_non_null(strstr(err.msg, "duplicates route '/a/:x'"));
    assert_int_equal(http_router_add(r, "/a/:y", NULL, post, 1, T(2), &err), KILN_OK);
    assert_int_equal(http_router_add(r, "/a/:y", "h.com", get, 1, T(3), &err), KILN_OK);
    assert_int_equal(http_router_add(r, "/b", "*x.com", NULL, 0, T(3), &err), KILN_ECONFIG);
    assert_int_equal(http_router_add(r, "/b", NULL, (const char *[]){"G T"}, 1, T(3), &err),
                     KILN_ECONFIG);
    assert_int_equal(http_router_count(r), 3);
    http_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),     cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_params),     cmocka_unit_test(test_methods),
        cmocka_unit_test(test_hosts),      cmocka_unit_test(test_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
