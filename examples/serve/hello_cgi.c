/*
 * hello_cgi.c - a WASI command served as CGI by `kiln serve`: the request
 * arrives as CGI variables and stdin, the response leaves on stdout as
 * headers, a blank line and the body.
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -s hello_cgi.c -o hello_cgi.wasm
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const char *name = getenv("X_PARAM_NAME"); /* from a route "/hello/:name" */
    const char *method = getenv("REQUEST_METHOD");
    const char *greeting = getenv("GREETING"); /* from the function's env */
    printf("Content-Type: text/plain\r\n");
    printf("X-Powered-By: kiln\r\n\r\n");
    printf("%s, %s! (%s)\n", greeting ? greeting : "Hello", name ? name : "world",
           method ? method : "?");
    /* Echo a request body back, if there is one. */
    int c, n = 0;
    while ((c = getchar()) != EOF) {
        if (n++ == 0)
            printf("you sent: ");
        putchar(c);
    }
    return 0;
}
