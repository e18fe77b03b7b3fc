/* cgi_hello.c - the smallest CGI guest: "hello from <SCRIPT_NAME>". */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const char *s = getenv("SCRIPT_NAME");
    printf("Content-Type: text/plain\n\nhello from %s\n", s ? s : "?");
    return 0;
}
