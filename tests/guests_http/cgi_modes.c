/* cgi_modes.c - one CGI guest with a behaviour per query string, for the
 * response-parsing and error-mapping tests:
 *   ?status    Status 201, a custom header, LF line endings
 *   ?redirect  Location only (the server answers 302)
 *   ?malformed a first line that is no header
 *   ?noblank   headers without the blank line
 *   ?empty     no output at all
 *   ?trap      unreachable
 *   ?loop      spins forever (time limit)
 *   ?hog       mallocs until memory runs out, then aborts
 *   ?exit3     exits with status 3 after a valid response
 *   ?exit0     exit(0) after a valid response
 *   ?stderr    two lines to stderr, then a response
 *   ?sleep=MS  sleeps MS milliseconds, then answers "slept"
 *   ?big=N     a body of N bytes
 *   ?hopbyhop  sets Content-Length/Connection headers the server must drop
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void ok(const char *body)
{
    printf("Content-Type: text/plain\n\n%s", body);
}

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    if (q == NULL)
        q = "";
    if (strcmp(q, "status") == 0) {
        printf("Status: 201 Created\nX-Custom: yes\nContent-Type: text/x-test\n\ncreated");
    } else if (strcmp(q, "redirect") == 0) {
        printf("Location: /elsewhere\n\n");
    } else if (strcmp(q, "malformed") == 0) {
        printf("this is not a header\n\nbody");
    } else if (strcmp(q, "noblank") == 0) {
        printf("Content-Type: text/plain\n");
    } else if (strcmp(q, "empty") == 0) {
        return 0;
    } else if (strcmp(q, "trap") == 0) {
        __builtin_trap();
    } else if (strcmp(q, "loop") == 0) {
        volatile unsigned long n = 0;
        for (;;)
            n++;
    } else if (strcmp(q, "hog") == 0) {
        /* Kept in a global, or the compiler drops the unused allocations. */
        static char *volatile kept[4096];
        for (int i = 0;; i = (i + 1) % 4096) {
            char *p = malloc(1 << 20);
            if (p == NULL)
                abort();
            memset(p, 1, 1 << 20);
            kept[i] = p;
        }
    } else if (strcmp(q, "exit3") == 0) {
        ok("about to fail\n");
        fflush(stdout);
        exit(3);
    } else if (strcmp(q, "exit0") == 0) {
        ok("exit zero\n");
        fflush(stdout);
        exit(0);
    } else if (strcmp(q, "stderr") == 0) {
        fprintf(stderr, "first log line\nsecond log line\n");
        ok("logged\n");
    } else if (strncmp(q, "sleep=", 6) == 0) {
        usleep((useconds_t)atoi(q + 6) * 1000);
        ok("slept\n");
    } else if (strncmp(q, "big=", 4) == 0) {
        long n = atol(q + 4);
        printf("Content-Type: application/octet-stream\n\n");
        for (long i = 0; i < n; i++)
            putchar('a' + (int)(i % 26));
    } else if (strcmp(q, "hopbyhop") == 0) {
        printf("Content-Type: text/plain\nContent-Length: 999\nConnection: close\n"
               "X-Kept: 1\n\nhop");
    } else {
        ok("modes\n");
    }
    return 0;
}
