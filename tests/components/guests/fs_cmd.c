/*
 * fs_cmd.c - a C program using wasi-libc's files, directories, clock and
 * exit (fopen, readdir, mkdir, rename, unlink, stat, nanosleep, exit),
 * built as a wasi:cli/command component with the preview-1 command adapter,
 * which turns each call into wasi:filesystem, wasi:io and wasi:clocks
 * imports. Runs the actions its arguments name, in order, one line each:
 *   write P TEXT   append P TEXT   cat P   ls DIR   mkdir P   rmdir P
 *   rename A B     rm P            stat P  sleep MS exit N    echo (stdin)
 * A failing action prints "ACTION P: error: STRERROR" and the program
 * exits 2 after it.
 * kiln-component: - command
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, const char *p)
{
    printf("%s %s: error: %s\n", what, p, strerror(errno));
    return 2;
}

static int put(const char *p, const char *text, const char *mode)
{
    FILE *f = fopen(p, mode);
    if (f == NULL)
        return fail(mode[0] == 'a' ? "append" : "write", p);
    int bad = fputs(text, f) < 0;
    if (fclose(f) != 0 || bad)
        return fail(mode[0] == 'a' ? "append" : "write", p);
    printf("%s %s: ok\n", mode[0] == 'a' ? "append" : "write", p);
    return 0;
}

static int cat(const char *p)
{
    char buf[512];
    FILE *f = fopen(p, "r");
    if (f == NULL)
        return fail("cat", p);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    printf("cat %s: %s\n", p, buf);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ls(const char *p)
{
    DIR *d = opendir(p);
    if (d == NULL)
        return fail("ls", p);
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        names[n] = malloc(strlen(e->d_name) + 2);
        strcpy(names[n], e->d_name);
        if (e->d_type == DT_DIR)
            strcat(names[n], "/");
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp);
    printf("ls %s:", p);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i], *p = i + 1 < argc ? argv[i + 1] : "";
        const char *q = i + 2 < argc ? argv[i + 2] : "";
        struct stat st;
        if (strcmp(a, "write") == 0 || strcmp(a, "append") == 0) {
            rc = put(p, q, a[0] == 'a' ? "a" : "w");
            i += 2;
        } else if (strcmp(a, "cat") == 0) {
            rc = cat(p);
            i++;
        } else if (strcmp(a, "ls") == 0) {
            rc = ls(p);
            i++;
        } else if (strcmp(a, "mkdir") == 0) {
            rc = mkdir(p, 0755) == 0 ? (printf("mkdir %s: ok\n", p), 0) : fail(a, p);
            i++;
        } else if (strcmp(a, "rmdir") == 0) {
            rc = rmdir(p) == 0 ? (printf("rmdir %s: ok\n", p), 0) : fail(a, p);
            i++;
        } else if (strcmp(a, "rm") == 0) {
            rc = unlink(p) == 0 ? (printf("rm %s: ok\n", p), 0) : fail(a, p);
            i++;
        } else if (strcmp(a, "rename") == 0) {
            rc = rename(p, q) == 0 ? (printf("rename %s: ok\n", p), 0) : fail(a, p);
            i += 2;
        } else if (strcmp(a, "stat") == 0) {
            if (stat(p, &st) != 0)
                rc = fail(a, p);
            else
                printf("stat %s: %s %lld bytes\n", p, S_ISDIR(st.st_mode) ? "dir"
                       : S_ISREG(st.st_mode) ? "file" : "other", (long long)st.st_size);
            i++;
        } else if (strcmp(a, "sleep") == 0) {
            long ms = atol(p);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            double t0 = now_ms();
            nanosleep(&ts, NULL);
            printf("slept %ld ms: measured %.0f ms\n", ms, now_ms() - t0);
            fflush(stdout);
            i++;
        } else if (strcmp(a, "exit") == 0) {
            fflush(stdout);
            exit(atoi(p));
        } else if (strcmp(a, "echo") == 0) {
            char buf[256];
            size_t n;
            while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
                fwrite(buf, 1, n, stdout);
        } else {
            printf("unknown action %s\n", a);
            rc = 2;
        }
    }
    return rc;
}
