/*
 * fs_posix.c - fs.h on POSIX (openat/unlinkat, fsync, rename, realpath).
 */
#include "platform/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"

#define FS_MAX_DEPTH 32

int fs_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    /* Create each prefix in turn; EEXIST is fine as long as it is a dir. */
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(buf, 0755) != 0) {
                int e = errno;
                struct stat st;
                if (e != EEXIST || stat(buf, &st) != 0) {
                    errno = e;
                    return -1;
                }
                if (!S_ISDIR(st.st_mode)) {
                    errno = ENOTDIR;
                    return -1;
                }
            }
            if (end)
                return 0;
            *p = '/';
        }
    }
}

int fs_mkdtemp(char *templ)
{
    return mkdtemp(templ) == NULL ? -1 : 0;
}

static int remove_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    if (depth >= FS_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_at(fd, de->d_name, depth + 1) != 0)
            rc = -1;
    }
    int saved = errno;
    closedir(d);
    if (rc != 0) {
        errno = saved;
        return -1;
    }
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

int fs_remove_tree(const char *path)
{
    return remove_at(AT_FDCWD, path, 0);
}

int fs_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            errno = e;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    /* close() reports deferred write errors (ENOSPC, EDQUOT) on some file systems. */
    return close(fd);
}

int fs_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = kiln_malloc(size + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            kiln_free(buf);
            errno = e;
            goto fail;
        }
        if (n == 0)
            break; /* the file shrank while we read it */
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    *out = buf;
    *out_len = got;
    return 0;
fail : {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

int fs_sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int fs_rename(const char *from, const char *to)
{
    return rename(from, to);
}

bool fs_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

double fs_age_s(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)(now.tv_sec - st.st_mtim.tv_sec) +
           (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
}

int fs_realpath(const char *path, char *out, size_t size)
{
    char buf[PATH_MAX];
    if (realpath(path, buf) == NULL)
        return -1;
    if (strlen(buf) >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(out, buf);
    return 0;
}

static int check_exec(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EACCES;
        return -1;
    }
    return access(path, X_OK);
}

int fs_which(const char *prog, const char *path_env, char *out, size_t size)
{
    if (prog[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    if (strchr(prog, '/') != NULL) {
        if (strlen(prog) >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (check_exec(prog) != 0)
            return -1;
        strcpy(out, prog);
        return 0;
    }
    if (path_env == NULL || path_env[0] == '\0')
        path_env = "/usr/local/bin:/usr/bin:/bin";
    int result_errno = ENOENT;
    const char *p = path_env;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX];
        /* An empty PATH element means the current directory. */
        int n = dlen ? snprintf(cand, sizeof(cand), "%.*s/%s", (int)dlen, p, prog)
                     : snprintf(cand, sizeof(cand), "./%s", prog);
        if (n > 0 && (size_t)n < sizeof(cand)) {
            if (check_exec(cand) == 0) {
                if ((size_t)n >= size) {
                    errno = ENAMETOOLONG;
                    return -1;
                }
                memcpy(out, cand, (size_t)n + 1);
                return 0;
            }
            if (errno == EACCES)
                result_errno = EACCES;
        }
        if (colon == NULL)
            break;
        p = colon + 1;
    }
    errno = result_errno;
    return -1;
}

int fs_list_dir(const char *path, int (*fn)(const char *name, void *ctx), void *ctx)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = fn(de->d_name, ctx);
    }
    closedir(d);
    return rc;
}

void fs_host_tag(char *out, size_t size)
{
    char host[256];
    if (size == 0)
        return;
    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "host");
    host[sizeof(host) - 1] = '\0';
    size_t j = 0;
    for (size_t i = 0; host[i] != '\0' && j + 1 < size; i++) {
        char c = host[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
            out[j++] = c;
    }
    if (j == 0 && size > 1)
        out[j++] = 'h';
    out[j] = '\0';
}
