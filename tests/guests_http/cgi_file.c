/* cgi_file.c - reads the file named by PATH_INFO below the preopened /data
 * directory and answers with its contents; 404 when it cannot be opened
 * (including paths escaping the preopen). Writes fail on a read-only dir. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *p = getenv("PATH_INFO");
    char path[512];
    snprintf(path, sizeof(path), "/data%s", p ? p : "");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        printf("Status: 404 Not Found\nContent-Type: text/plain\n\n%s: %s\n", path,
               strerror(errno));
        return 0;
    }
    printf("Content-Type: text/plain\n\n");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
    FILE *w = fopen("/data/written.txt", "w");
    printf("\nwrite: %s\n", w ? "allowed" : strerror(errno));
    if (w)
        fclose(w);
    return 0;
}
