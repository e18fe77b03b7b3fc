/* cgi_echo.c - a CGI guest that answers with its environment (one
 * "NAME=VALUE" line each, in order) and then its stdin after a marker line.
 * Used to check the CGI variables, route parameters and the request body. */
#include <stdio.h>

extern char **environ;

int main(void)
{
    printf("Content-Type: text/plain\r\n\r\n");
    for (char **e = environ; *e != NULL; e++)
        printf("%s\n", *e);
    printf("--- body ---\n");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
        fwrite(buf, 1, n, stdout);
    return 0;
}
