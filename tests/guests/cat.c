/* cat.c - copies stdin to stdout with read(2)/write(2), handling short writes. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(0, buf, sizeof(buf));
        if (n < 0) {
            perror("cat: read");
            return 1;
        }
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w <= 0) {
                perror("cat: write");
                return 1;
            }
            off += w;
        }
    }
}
