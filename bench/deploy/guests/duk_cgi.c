/*
 * duk_cgi.c - a JavaScript engine as a WASI-CGI command: Duktape (built from
 * Debian's duktape source package by bench/deploy/run.sh) evaluates the
 * request's query string (percent-decoded) as a script, or a fixed script
 * when there is none, and answers with the result as text.
 *
 * wasi-libc in Debian 12 has no setjmp/longjmp, so bench/deploy/shim/setjmp.h
 * makes setjmp return 0 and longjmp abort: any JavaScript exception, even one
 * the script catches, traps the instance (a 500). Scripts that do not throw
 * run normally; that is all the deploy benchmark needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duktape.h"

static const char default_script[] =
    "var fib = function (n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); };"
    "var words = 'the quick brown fox jumps over the lazy dog'.split(' ');"
    "JSON.stringify({ engine: 'duktape', fib20: fib(20), "
    "sorted: words.slice().sort(), upper: words.map(function (w) { return w.toUpperCase(); }).join('-') })";

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s in place ('+' is a space, as in a form). */
static void url_decode(char *s)
{
    char *out = s;
    for (; *s != '\0'; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *out++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else if (*s == '+') {
            *out++ = ' ';
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    char *script = NULL;
    if (q != NULL && q[0] != '\0') {
        script = strdup(q);
        if (script == NULL)
            return 1;
        url_decode(script);
    }
    duk_context *ctx = duk_create_heap_default();
    if (ctx == NULL) {
        printf("Status: 500 Internal Server Error\nContent-Type: text/plain\n\nno heap\n");
        return 0;
    }
    duk_peval_string(ctx, script != NULL ? script : default_script);
    printf("Content-Type: text/plain\n\n%s\n", duk_safe_to_string(ctx, -1));
    duk_destroy_heap(ctx);
    free(script);
    return 0;
}
