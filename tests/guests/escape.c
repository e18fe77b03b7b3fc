/*
 * escape.c - tries to leave the preopened directory argv[1] in every way we
 * know and reports each attempt. Exits 0 only if ALL attempts fail.
 * argv[2] (optional) names a host-made symlink inside the preopen that points
 * outside (the test script creates it as `abs_link -> /etc`).
 * Attempts use both libc (which resolves paths against preopens itself) and
 * raw WASI calls on the preopen's fd, so the host's checks are what is tested.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static int escaped;
static const char *root;

static void report(const char *what, int ok_failed, int err)
{
    if (ok_failed) {
        printf("escape %-28s refused (%s)\n", what, strerror(err));
    } else {
        printf("escape %-28s ESCAPED\n", what);
        escaped++;
    }
}

static void try_open(const char *what, const char *path)
{
    int fd = open(path, O_RDONLY);
    int err = errno;
    if (fd >= 0)
        close(fd);
    report(what, fd < 0, err);
}

/* Raw path_open on fd `dir`, bypassing libc's own path handling. */
static void try_raw(const char *what, __wasi_fd_t dir, const char *path, __wasi_lookupflags_t lf)
{
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(dir, lf, path, 0, __WASI_RIGHTS_FD_READ,
                                        0, 0, &fd);
    if (e == 0)
        (void)__wasi_fd_close(fd);
    report(what, e != 0, e);
}

/* WASI errno values are wasi-libc's errno values, so strerror() reads them. */
#define RAW(what, call)                                                                        \
    do {                                                                                       \
        int e_ = (call);                                                                       \
        report(what, e_ != 0, e_);                                                             \
    } while (0)

static __wasi_fd_t find_preopen(void)
{
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t ps;
        if (__wasi_fd_prestat_get(fd, &ps) != 0)
            continue;
        char name[256] = {0};
        if (ps.u.dir.pr_name_len < sizeof(name) &&
            __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, ps.u.dir.pr_name_len) == 0 &&
            strcmp(name, root) == 0)
            return fd;
    }
    return (__wasi_fd_t)-1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: escape DIR [ABS_LINK]\n");
        return 2;
    }
    root = argv[1];
    char path[512];
    __wasi_fd_t dir = find_preopen();
    if (dir == (__wasi_fd_t)-1) {
        printf("escape: no preopen named %s\n", root);
        return 2;
    }

    /* A real subdirectory, so "a/../.." is walked rather than failing on "a". */
    snprintf(path, sizeof(path), "%s/a", root);
    mkdir(path, 0755);

    snprintf(path, sizeof(path), "%s/../../../../../../etc/passwd", root);
    try_open("libc ../etc/passwd", path);
    try_open("libc /etc/passwd", "/etc/passwd");
    try_raw("raw ..", dir, "..", 0);
    try_raw("raw ../etc/passwd", dir, "../etc/passwd", 0);
    try_raw("raw a/../../x", dir, "a/../../etc/passwd", 0);
    try_raw("raw /etc/passwd", dir, "/etc/passwd", 0);
    try_raw("raw /", dir, "/", 0);

    /* A relative symlink the guest may create, pointing outside. */
    snprintf(path, sizeof(path), "%s/up", root);
    unlink(path);
    if (symlink("../../../../../../../..", path) != 0)
        printf("escape: (could not create symlink 'up': %s)\n", strerror(errno));
    snprintf(path, sizeof(path), "%s/up/etc/passwd", root);
    try_open("libc symlink up/etc/passwd", path);
    try_raw("raw symlink up/etc/passwd", dir, "up/etc/passwd", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW);
    try_raw("raw follow up", dir, "up", __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW);
    struct stat st;
    snprintf(path, sizeof(path), "%s/up/etc", root);
    report("stat up/etc", stat(path, &st) != 0, errno);
    snprintf(path, sizeof(path), "%s/up/escape-mkdir", root);
    report("mkdir up/escape-mkdir", mkdir(path, 0755) != 0, errno);
    snprintf(path, sizeof(path), "%s/up/tmp", root);
    DIR *d = opendir(path);
    report("opendir up/tmp", d == NULL, errno);
    if (d)
        closedir(d);

    /* An absolute symlink made by the host. */
    if (argc > 2) {
        snprintf(path, sizeof(path), "%s/%s/passwd", root, argv[2]);
        try_open("libc abs symlink", path);
        snprintf(path, sizeof(path), "%s/passwd", argv[2]);
        try_raw("raw abs symlink", dir, path, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW);
        snprintf(path, sizeof(path), "%s/%s/hostname", root, argv[2]);
        report("stat via abs symlink", stat(path, &st) != 0, errno);
    }

    /* Path operations other than open. */
    RAW("raw mkdir ../x", __wasi_path_create_directory(dir, "../kiln-escape-x"));
    RAW("raw unlink ../x", __wasi_path_unlink_file(dir, "../kiln-escape-x"));
    RAW("raw rmdir ..", __wasi_path_remove_directory(dir, ".."));
    __wasi_filestat_t fst;
    RAW("raw stat ..", __wasi_path_filestat_get(dir, 0, "..", &fst));
    RAW("raw stat /etc", __wasi_path_filestat_get(dir, 0, "/etc", &fst));
    RAW("raw settimes ..", __wasi_path_filestat_set_times(dir, 0, "..", 0, 0,
                                                          __WASI_FSTFLAGS_MTIM_NOW));
    RAW("raw symlink abs target", __wasi_path_symlink("/etc/passwd", dir, "abs"));
    RAW("raw rename to ../x", __wasi_path_rename(dir, "up", dir, "../kiln-escape-y"));
    RAW("raw link to ../x", __wasi_path_link(dir, 0, "up", dir, "../kiln-escape-z"));
    char lb[64];
    __wasi_size_t used;
    RAW("raw readlink ../x", __wasi_path_readlink(dir, "../x", (uint8_t *)lb, sizeof(lb), &used));

    snprintf(path, sizeof(path), "%s/up", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/a", root);
    rmdir(path);
    printf("escape: %d escaped\n", escaped);
    return escaped == 0 ? 0 : 1;
}
