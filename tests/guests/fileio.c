/*
 * fileio.c - exercises the WASI file API inside the preopened directory given
 * as argv[1]: create, write, read, seek, stat, truncate, pread/pwrite,
 * readdir, rename, unlink, mkdir, rmdir, symlink/readlink. Prints one line per
 * step and "fileio: ok" at the end; exits 1 at the first failure.
 *
 * `fileio DIR ro` instead checks a read-only preopen holding the file
 * "existing" (content "data\n"): reading works, every modification fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;

#define CHECK(cond, what)                                                                      \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("fileio: FAIL %s: %s\n", what, strerror(errno));                           \
            exit(1);                                                                           \
        }                                                                                      \
        printf("fileio: %s\n", what);                                                          \
    } while (0)

static char *p(const char *rel)
{
    static char bufs[4][512];
    static int n;
    char *b = bufs[n++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s/%s", root, rel);
    return b;
}

static int listed(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int found = 0, dots = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, name) == 0)
            found = 1;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            dots++;
    }
    closedir(d);
    return found;
}

static int refused;
static int allowed;

static void expect_refused(const char *what, int failed)
{
    if (failed) {
        printf("fileio-ro: %s refused (%s)\n", what, strerror(errno));
        refused++;
    } else {
        printf("fileio-ro: %s ALLOWED\n", what);
        allowed++;
    }
}

static int read_only_checks(void)
{
    char buf[16] = {0};
    int fd = open(p("existing"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 5 && strcmp(buf, "data\n") == 0,
          "read existing file");
    close(fd);
    struct stat st;
    CHECK(stat(p("existing"), &st) == 0 && st.st_size == 5, "stat existing file");
    CHECK(listed(root, "existing") == 1, "readdir");

    fd = open(p("new"), O_CREAT | O_WRONLY, 0644);
    expect_refused("create", fd < 0);
    fd = open(p("existing"), O_WRONLY);
    expect_refused("open for writing", fd < 0);
    fd = open(p("existing"), O_RDWR);
    expect_refused("open read-write", fd < 0);
    fd = open(p("existing"), O_RDONLY | O_TRUNC);
    expect_refused("open O_TRUNC", fd < 0);
    fd = open(p("existing"), O_WRONLY | O_APPEND);
    expect_refused("open O_APPEND", fd < 0);
    expect_refused("unlink", unlink(p("existing")) != 0);
    expect_refused("rename", rename(p("existing"), p("moved")) != 0);
    expect_refused("mkdir", mkdir(p("newdir"), 0755) != 0);
    expect_refused("rmdir", rmdir(p("subdir")) != 0);
    expect_refused("symlink", symlink("existing", p("link")) != 0);
    expect_refused("link", link(p("existing"), p("hard")) != 0);
    expect_refused("truncate", truncate(p("existing"), 0) != 0);
    /* NULL times = "now" (wasi-libc rejects explicit UTIME_NOW entries). */
    expect_refused("utimensat", utimensat(AT_FDCWD, p("existing"), NULL, 0) != 0);
    fd = open(p("existing"), O_RDONLY);
    expect_refused("futimens", futimens(fd, NULL) != 0);
    expect_refused("write on read fd", write(fd, "x", 1) < 0);
    expect_refused("ftruncate on read fd", ftruncate(fd, 0) != 0);
    close(fd);
    printf("fileio-ro: %d refused, %d allowed\n", refused, allowed);
    return allowed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fileio DIR [ro]\n");
        return 2;
    }
    root = argv[1];
    if (argc > 2 && strcmp(argv[2], "ro") == 0)
        return read_only_checks();
    const char msg[] = "hello, file\n";

    int fd = open(p("a.txt"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0, "create");
    CHECK(write(fd, msg, sizeof(msg) - 1) == (ssize_t)(sizeof(msg) - 1), "write");
    CHECK(fsync(fd) == 0, "fsync");
    CHECK(close(fd) == 0, "close");

    fd = open(p("a.txt"), O_RDWR);
    CHECK(fd >= 0, "open rdwr");
    char buf[64] = {0};
    CHECK(read(fd, buf, sizeof(buf)) == (ssize_t)(sizeof(msg) - 1) && strcmp(buf, msg) == 0,
          "read back");
    CHECK(lseek(fd, 7, SEEK_SET) == 7, "seek");
    memset(buf, 0, sizeof(buf));
    CHECK(read(fd, buf, 4) == 4 && memcmp(buf, "file", 4) == 0, "read after seek");
    CHECK(lseek(fd, 0, SEEK_CUR) == 11, "tell");
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5, "pwrite");
    memset(buf, 0, sizeof(buf));
    CHECK(pread(fd, buf, 5, 0) == 5 && memcmp(buf, "HELLO", 5) == 0, "pread");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == (off_t)(sizeof(msg) - 1) && S_ISREG(st.st_mode),
          "fstat");
    CHECK(ftruncate(fd, 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 5, "ftruncate");
    CHECK(close(fd) == 0, "close again");

    fd = open(p("a.txt"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "!", 1) == 1 && close(fd) == 0, "append");
    CHECK(stat(p("a.txt"), &st) == 0 && st.st_size == 6, "stat");

    CHECK(listed(root, "a.txt") == 1, "readdir");
    CHECK(rename(p("a.txt"), p("b.txt")) == 0, "rename");
    CHECK(access(p("a.txt"), F_OK) != 0 && errno == ENOENT, "old name gone");
    CHECK(mkdir(p("sub"), 0755) == 0, "mkdir");
    CHECK(stat(p("sub"), &st) == 0 && S_ISDIR(st.st_mode), "stat dir");
    CHECK(rename(p("b.txt"), p("sub/c.txt")) == 0, "rename into subdir");
    CHECK(listed(p("sub"), "c.txt") == 1, "readdir subdir");
    CHECK(rmdir(p("sub")) != 0 && errno == ENOTEMPTY, "rmdir non-empty fails");
    CHECK(symlink("c.txt", p("sub/link")) == 0, "symlink");
    memset(buf, 0, sizeof(buf));
    CHECK(readlink(p("sub/link"), buf, sizeof(buf)) == 5 && strcmp(buf, "c.txt") == 0,
          "readlink");
    fd = open(p("sub/link"), O_RDONLY);
    memset(buf, 0, sizeof(buf));
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 6 && memcmp(buf, "HELLO!", 6) == 0,
          "read through symlink");
    close(fd);
    CHECK(unlink(p("sub/link")) == 0, "unlink symlink");
    CHECK(unlink(p("sub/c.txt")) == 0, "unlink");
    CHECK(rmdir(p("sub")) == 0, "rmdir");
    CHECK(stat(p("sub"), &st) != 0 && errno == ENOENT, "rmdir took effect");

    /* Many entries: fd_readdir must page through its buffer. */
    CHECK(mkdir(p("many"), 0755) == 0, "mkdir many");
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof(name), "many/file-with-a-longish-name-%03d", i);
        fd = open(p(name), O_CREAT | O_WRONLY, 0644);
        if (fd < 0 || close(fd) != 0) {
            printf("fileio: FAIL create %s: %s\n", name, strerror(errno));
            return 1;
        }
    }
    DIR *d = opendir(p("many"));
    int count = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            count++;
    if (d != NULL)
        closedir(d);
    errno = 0;
    CHECK(count == 300, "readdir 300 entries");
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof(name), "many/file-with-a-longish-name-%03d", i);
        unlink(p(name));
    }
    CHECK(rmdir(p("many")) == 0, "cleanup");
    printf("fileio: ok\n");
    return 0;
}
