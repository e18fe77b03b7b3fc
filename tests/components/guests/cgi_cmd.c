/*
 * cgi_cmd.c - a C program built as a wasi:cli/command component and served
 * by `kiln serve` as CGI (test_component_serve.sh): writes a CGI response
 * with a Status, its own headers, some CGI variables and the request body
 * read from stdin; X-Counter counts the runs of this instance (a fresh
 * instance per request answers 1). The query selects a failure: "exit"
 * (main returns 3), "trap", "loop" (runs until the time limit), "oom"
 * (allocates until memory runs out, then aborts); "file" answers the first line
 * of /data/hello.txt (a preopen); "sleep..." sleeps 200 ms (a WASI 0.2 poll:
 * the request's fiber waits and others run on its thread) before answering
 * as usual.
 * kiln-component: - command
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int counter;
static void *volatile keep;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "(unset)";
}

int main(void)
{
    counter++;
    const char *q = env("QUERY_STRING");
    if (strcmp(q, "exit") == 0)
        return 3;
    if (strcmp(q, "trap") == 0)
        __builtin_trap();
    if (strcmp(q, "loop") == 0) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    }
    if (strcmp(q, "oom") == 0) {
        for (;;) {
            char *p = malloc(1 << 20);
            if (p == NULL)
                abort();
            memset(p, 1, 1 << 20);
            keep = p; /* used, so the allocation cannot be optimised away */
        }
    }
    if (strncmp(q, "sleep", 5) == 0) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (strcmp(q, "file") == 0) {
        FILE *f = fopen("/data/hello.txt", "r");
        char line[128] = "(cannot open /data/hello.txt)";
        if (f != NULL) {
            if (fgets(line, sizeof(line), f) == NULL)
                strcpy(line, "(empty)");
            fclose(f);
        }
        printf("Content-Type: text/plain\r\n\r\nfile=%s", line);
        return 0;
    }
    fprintf(stderr, "cgi_cmd: serving %s\n", env("REQUEST_METHOD"));
    printf("Status: 201 Created\r\nContent-Type: text/plain\r\nX-Counter: %d\r\n\r\n", counter);
    printf("method=%s\n", env("REQUEST_METHOD"));
    printf("query=%s\n", q);
    printf("script=%s\n", env("SCRIPT_NAME"));
    printf("greeting=%s\n", env("GREETING"));
    printf("x_test=%s\n", env("HTTP_X_TEST"));
    printf("content_length=%s\n", env("CONTENT_LENGTH"));
    printf("body=");
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
        fwrite(buf, 1, n, stdout);
    printf("\n");
    return 0;
}
