/* cgi_snap_env.c - a WASI-CGI command whose `wizer.initialize` reads the
 * environment: with `snapshot: true` the image is refused (a request's
 * environment is its CGI variables, which init cannot know), naming the
 * call. Without snapshot it serves. */
#include <stdio.h>
#include <stdlib.h>

static int seen;

__attribute__((export_name("wizer.initialize"))) void init(void)
{
    seen = getenv("HOME") != NULL ? 2 : 1;
}

int main(void)
{
    if (seen == 0)
        init();
    printf("Content-Type: text/plain\n\nseen=%d\n", seen);
    return 0;
}
