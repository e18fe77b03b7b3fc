/*
 * hello_cmd.c - a C program built as a wasi:cli/command component (the
 * preview-1 command adapter, as `jco new --wasi-command`): prints its
 * arguments and an environment variable, echoes stdin, and exits with the
 * status its first argument names ("fail" exits 7).
 * kiln-component: - command
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("hello from a component, %d args:", argc);
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    const char *g = getenv("GREETING");
    fprintf(stderr, "greeting=%s\n", g ? g : "(none)");
    if (argc > 1 && strcmp(argv[1], "stdin") == 0) {
        char buf[256];
        size_t n, total = 0;
        while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
            fwrite(buf, 1, n, stdout);
            total += n;
        }
        printf("read %zu bytes\n", total);
    }
    if (argc > 1 && strcmp(argv[1], "fail") == 0)
        return 7;
    return 0;
}
