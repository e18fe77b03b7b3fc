/*
 * test_wasi.c - the WASI host below the guest toolchain: context creation and
 * config validation, the host-function table, errno conversion, capture-buffer
 * caps, sandbox_fs path confinement on a real directory tree, and host
 * functions called from a small WAT module (bounds checks, stdio buffers).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "abi/wasi/wasi.h"
#include "base/alloc.h"
#include "kiln/abi.h"
#include "kiln/wasi.h"
#include "platform/sandbox_fs.h"
#include "support/wat.h"

/* ---- context and config ------------------------------------------------ */

static void test_config_empty(void **state)
{
    (void)state;
    kiln_wasi *w = NULL;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(NULL, &w, &err), KILN_OK);
    assert_non_null(w);
    assert_int_equal(w->argc, 0);
    assert_int_equal(w->envc, 0);
    /* stdio 0..2 exist, nothing else */
    assert_non_null(wasi_fd_get(w, 0));
    assert_non_null(wasi_fd_get(w, 2));
    assert_null(wasi_fd_get(w, 3));
    kiln_wasi_free(w);
    kiln_wasi_free(NULL);
}

static void test_config_args_env(void **state)
{
    (void)state;
    const char *argv[] = {"prog.wasm", "a b", ""};
    const char *env[] = {"A=1", "EMPTY=", "X=y=z"};
    kiln_wasi_config cfg = {0};
    cfg.argv = argv;
    cfg.argc = 3;
    cfg.env = env;
    cfg.envc = 3;
    kiln_wasi *w;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_OK);
    assert_int_equal(w->argc, 3);
    assert_int_equal(w->args_size, sizeof("prog.wasm") + sizeof("a b") + 1);
    assert_memory_equal(w->args, "prog.wasm\0a b\0", w->args_size);
    assert_int_equal(w->envc, 3);
    assert_memory_equal(w->envs, "A=1\0EMPTY=\0X=y=z\0", w->envs_size);
    kiln_wasi_free(w);
}

static void test_config_rejects(void **state)
{
    (void)state;
    kiln_wasi *w = (kiln_wasi *)1;
    kiln_err err;
    const char *bad_env[] = {"NOEQUALS"};
    kiln_wasi_config cfg = {0};
    cfg.env = bad_env;
    cfg.envc = 1;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err.msg, "NOEQUALS"));

    const char *bad_env2[] = {"=value"};
    cfg.env = bad_env2;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_EINVAL);

    kiln_wasi_config c2 = {0};
    c2.argc = 2; /* without argv */
    assert_int_equal(kiln_wasi_new(&c2, &w, &err), KILN_EINVAL);

    kiln_wasi_preopen missing = {"/nonexistent/kiln-test-dir", "/x", false};
    kiln_wasi_config c3 = {0};
    c3.preopens = &missing;
    c3.npreopens = 1;
    assert_int_equal(kiln_wasi_new(&c3, &w, &err), KILN_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/kiln-test-dir"));

    kiln_wasi_preopen file = {"/etc/hostname", NULL, false};
    if (access("/etc/hostname", F_OK) == 0) {
        c3.preopens = &file;
        assert_int_equal(kiln_wasi_new(&c3, &w, &err), KILN_EINVAL);
    }

    kiln_wasi_config c4 = {0};
    c4.stdio[1].kind = KILN_WASI_STDIO_FD;
    c4.stdio[1].fd = 987654;
    assert_int_equal(kiln_wasi_new(&c4, &w, &err), KILN_EINVAL);
    c4.stdio[1].kind = (kiln_wasi_stdio_kind)42;
    assert_int_equal(kiln_wasi_new(&c4, &w, &err), KILN_EINVAL);
}

static void test_config_preopens(void **state)
{
    (void)state;
    kiln_wasi_preopen p[2] = {{"/tmp", "/sandbox", false}, {"/", NULL, true}};
    kiln_wasi_config cfg = {0};
    cfg.preopens = p;
    cfg.npreopens = 2;
    kiln_wasi *w;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_OK);
    wasi_fd *a = wasi_fd_get(w, 3), *b = wasi_fd_get(w, 4);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a->preopen, "/sandbox");
    assert_string_equal(b->preopen, "/"); /* guest path defaults to the host path */
    assert_int_equal(a->filetype, WASI_FILETYPE_DIRECTORY);
    assert_false(a->read_only);
    assert_true(b->read_only);
    assert_true(a->rights_base & WASI_RIGHT_PATH_CREATE_FILE);
    assert_false(b->rights_base & WASI_RIGHT_PATH_CREATE_FILE);
    assert_false(b->rights_base & WASI_RIGHT_PATH_UNLINK_FILE);
    assert_true(b->rights_base & WASI_RIGHT_PATH_OPEN);
    kiln_wasi_free(w);
}

static void test_max_fds(void **state)
{
    (void)state;
    kiln_wasi_config cfg = {0};
    cfg.max_fds = 5;
    kiln_wasi *w;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_OK);
    uint32_t fd;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wasi_fd_alloc(w, &fd), WASI_ESUCCESS);
        assert_int_equal(fd, 3 + i);
        w->fds[fd].kind = WASI_FD_NULL;
    }
    assert_int_equal(wasi_fd_alloc(w, &fd), WASI_EMFILE);
    wasi_fd_release(&w->fds[3]);
    assert_int_equal(wasi_fd_alloc(w, &fd), WASI_ESUCCESS);
    assert_int_equal(fd, 3); /* lowest free number is reused */
    kiln_wasi_free(w);
}

/* ---- table and errno --------------------------------------------------- */

static void test_hostfn_table(void **state)
{
    (void)state;
    static const struct {
        const char *name, *type;
    } want[] = {
        {"args_get", "ii>i"},         {"clock_time_get", "iji>i"},
        {"fd_write", "iiii>i"},       {"fd_seek", "ijii>i"},
        {"fd_pread", "iiiji>i"},      {"fd_readdir", "iiiji>i"},
        {"fd_filestat_set_times", "ijji>i"},
        {"path_open", "iiiiijjii>i"}, {"path_filestat_set_times", "iiiijji>i"},
        {"path_link", "iiiiiii>i"},   {"poll_oneoff", "iiii>i"},
        {"proc_exit", "i>"},          {"sched_yield", ">i"},
        {"sock_recv", "iiiiii>i"},    {"random_get", "ii>i"},
    };
    size_t n;
    const kiln_hostfn *t = kiln_wasi_hostfns(&n);
    assert_true(n >= 45);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t[i].module, "wasi_snapshot_preview1");
        assert_non_null(t[i].fn);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(t[i].name, t[j].name);
    }
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(t[i].name, want[k].name) == 0)
                break;
        assert_true(i < n);
        assert_string_equal(t[i].type, want[k].type);
    }
}

static void test_errno_map(void **state)
{
    (void)state;
    assert_int_equal(wasi_errno_from_host(0), WASI_ESUCCESS);
    assert_int_equal(wasi_errno_from_host(ENOENT), 44);
    assert_int_equal(wasi_errno_from_host(-ENOENT), 44);
    assert_int_equal(wasi_errno_from_host(EEXIST), 20);
    assert_int_equal(wasi_errno_from_host(ENOTEMPTY), 55);
    assert_int_equal(wasi_errno_from_host(ENOTDIR), 54);
    assert_int_equal(wasi_errno_from_host(EROFS), 69);
    assert_int_equal(wasi_errno_from_host(ELOOP), 32);
    assert_int_equal(wasi_errno_from_host(EXDEV), 75);
    assert_int_equal(wasi_errno_from_host(ENOSYS), 52);
    assert_int_equal(wasi_errno_from_host(EOPNOTSUPP), WASI_ENOTSUP);
    assert_int_equal(wasi_errno_from_host(EWOULDBLOCK), WASI_EAGAIN);
    assert_int_equal(wasi_errno_from_host(SBX_ENOTCAPABLE), 76);
    assert_int_equal(wasi_errno_from_host(-SBX_ENOTCAPABLE), 76);
    assert_int_equal(wasi_errno_from_host(EHWPOISON), WASI_EIO); /* unmapped */
}

/* ---- capture buffers --------------------------------------------------- */

static void test_outbuf_cap(void **state)
{
    (void)state;
    wasi_outbuf b = {0};
    b.cap = 10;
    assert_int_equal(wasi_outbuf_write(&b, "", 0), 0);
    assert_int_equal(wasi_outbuf_write(&b, "abcd", 4), 4);
    assert_false(b.truncated);
    assert_int_equal(wasi_outbuf_write(&b, "0123456789", 10), 6); /* short write */
    assert_true(b.truncated);
    assert_int_equal(wasi_outbuf_write(&b, "x", 1), -(long)WASI_EFBIG);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "abcd012345", 10);
    wasi_outbuf_free(&b);

    /* Growth past the initial allocation keeps every byte. */
    b.cap = 100000;
    char chunk[777];
    memset(chunk, 'q', sizeof(chunk));
    size_t total = 0;
    for (;;) {
        long r = wasi_outbuf_write(&b, chunk, sizeof(chunk));
        if (r < 0)
            break;
        total += (size_t)r;
    }
    assert_int_equal(total, 100000);
    assert_int_equal(b.len, 100000);
    assert_true(b.alloc <= b.cap);
    wasi_outbuf_free(&b);
}

static void test_output_accessors(void **state)
{
    (void)state;
    kiln_wasi_config cfg = {0};
    cfg.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    cfg.stdio[1].cap = 8;
    cfg.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
    kiln_wasi *w;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_OK);
    assert_int_equal(w->out[1].cap, WASI_DEFAULT_CAPTURE_CAP);
    size_t len;
    bool trunc;
    assert_null(kiln_wasi_output(w, 1, &len, &trunc));
    assert_int_equal(len, 0);
    wasi_outbuf_write(&w->out[0], "0123456789", 10);
    const uint8_t *d = kiln_wasi_output(w, 1, &len, &trunc);
    assert_int_equal(len, 8);
    assert_true(trunc);
    assert_memory_equal(d, "01234567", 8);
    assert_null(kiln_wasi_output(w, 0, &len, NULL)); /* stdin is not an output */
    uint8_t *taken;
    kiln_wasi_output_take(w, 1, &taken, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(taken, "01234567", 8);
    kiln_free(taken);
    assert_null(kiln_wasi_output(w, 1, &len, &trunc));
    assert_false(trunc);
    kiln_wasi_free(w);
}

/* ---- sandbox_fs -------------------------------------------------------- */

typedef struct tree {
    char base[64];    /* /tmp/kiln-wasi-XXXXXX */
    char root[128];   /* base/root: the sandbox */
    char outside[128]; /* base/outside: must stay untouched */
    int fd;
} tree;

static void mkfile(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_tree(void **state)
{
    tree *t = calloc(1, sizeof(*t));
    snprintf(t->base, sizeof(t->base), "/tmp/kiln-wasi-XXXXXX");
    if (mkdtemp(t->base) == NULL)
        return -1;
    snprintf(t->root, sizeof(t->root), "%s/root", t->base);
    snprintf(t->outside, sizeof(t->outside), "%s/outside", t->base);
    mkdir(t->root, 0755);
    mkdir(t->outside, 0755);
    mkfile(t->outside, "secret", "secret\n");
    mkfile(t->root, "file", "inside\n");
    char p[512];
    snprintf(p, sizeof(p), "%s/sub", t->root);
    mkdir(p, 0755);
    mkfile(p, "x", "x\n");
#define LINK(target, name)                                                                     \
    do {                                                                                       \
        snprintf(p, sizeof(p), "%s/%s", t->root, name);                                        \
        if (symlink(target, p) != 0)                                                           \
            return -1;                                                                         \
    } while (0)
    LINK("sub", "inlink");
    LINK("/etc", "abs");
    LINK("../outside", "out");
    LINK("../outside/newfile", "dangle");
    LINK("sub/../file", "rel_ok");
#undef LINK
    if (sbx_open_root(t->root, &t->fd) != 0)
        return -1;
    *state = t;
    return 0;
}

static int teardown_tree(void **state)
{
    tree *t = *state;
    char cmd[256];
    close(t->fd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->base);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static int open_rc(int dirfd, const char *path, int flags)
{
    int fd = -1;
    int rc = sbx_openat(dirfd, path, flags, 0644, &fd);
    if (rc == 0)
        close(fd);
    return rc;
}

static void test_sbx_open(void **state)
{
    tree *t = *state;
    assert_true(sbx_available());
    assert_int_equal(open_rc(t->fd, "file", O_RDONLY), 0);
    assert_int_equal(open_rc(t->fd, "sub/x", O_RDONLY), 0);
    assert_int_equal(open_rc(t->fd, "sub/../file", O_RDONLY), 0);
    assert_int_equal(open_rc(t->fd, "inlink/x", O_RDONLY), 0);
    assert_int_equal(open_rc(t->fd, "rel_ok", O_RDONLY), 0);
    assert_int_equal(open_rc(t->fd, ".", O_RDONLY | O_DIRECTORY), 0);
    assert_int_equal(open_rc(t->fd, "missing", O_RDONLY), -ENOENT);
    assert_int_equal(open_rc(t->fd, "", O_RDONLY), -ENOENT);
    /* escapes */
    assert_int_equal(open_rc(t->fd, "..", O_RDONLY), -SBX_ENOTCAPABLE);
    assert_int_equal(open_rc(t->fd, "../outside/secret", O_RDONLY), -SBX_ENOTCAPABLE);
    assert_int_equal(open_rc(t->fd, "sub/../../outside/secret", O_RDONLY), -SBX_ENOTCAPABLE);
    assert_int_equal(open_rc(t->fd, "/etc/passwd", O_RDONLY), -SBX_ENOTCAPABLE);
    assert_int_equal(open_rc(t->fd, "abs/passwd", O_RDONLY), -SBX_ENOTCAPABLE);
    assert_int_equal(open_rc(t->fd, "out/secret", O_RDONLY), -SBX_ENOTCAPABLE);
    assert_int_equal(open_rc(t->fd, "/proc/self/root/etc/passwd", O_RDONLY), -SBX_ENOTCAPABLE);
    /* O_CREAT through a dangling link that points outside creates nothing */
    assert_int_equal(open_rc(t->fd, "dangle", O_CREAT | O_WRONLY), -SBX_ENOTCAPABLE);
    char p[512];
    snprintf(p, sizeof(p), "%s/newfile", t->outside);
    assert_int_equal(access(p, F_OK), -1);
    /* O_NOFOLLOW refuses a final symlink */
    assert_int_equal(open_rc(t->fd, "inlink", O_RDONLY | O_NOFOLLOW), -ELOOP);
}

static void test_sbx_stat(void **state)
{
    tree *t = *state;
    struct stat st;
    assert_int_equal(sbx_stat(t->fd, "file", true, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(sbx_stat(t->fd, "abs", false, &st), 0); /* the link itself */
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(sbx_stat(t->fd, "abs", true, &st), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_stat(t->fd, "..", true, &st), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_stat(t->fd, "out/secret", false, &st), -SBX_ENOTCAPABLE);
    struct timespec ts[2] = {{1000, 0}, {2000, 0}};
    assert_int_equal(sbx_utimes(t->fd, "file", true, ts), 0);
    assert_int_equal(sbx_stat(t->fd, "file", true, &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 2000);
    assert_int_equal(sbx_utimes(t->fd, "..", true, ts), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_utimes(t->fd, "out/secret", true, ts), -SBX_ENOTCAPABLE);
    /* times on the symlink itself, not its (outside) target */
    assert_int_equal(sbx_utimes(t->fd, "abs", false, ts), 0);
}

static void test_sbx_modify(void **state)
{
    tree *t = *state;
    assert_int_equal(sbx_mkdir(t->fd, "newdir", 0755), 0);
    assert_int_equal(sbx_mkdir(t->fd, "newdir", 0755), -EEXIST);
    assert_int_equal(sbx_mkdir(t->fd, "newdir/inner/", 0755), 0);
    assert_int_equal(sbx_rmdir(t->fd, "newdir"), -ENOTEMPTY);
    assert_int_equal(sbx_rmdir(t->fd, "newdir/inner/"), 0);
    assert_int_equal(sbx_rmdir(t->fd, "newdir"), 0);
    assert_int_equal(sbx_mkdir(t->fd, "../escape", 0755), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_mkdir(t->fd, "out/escape", 0755), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_mkdir(t->fd, "/tmp/escape", 0755), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_mkdir(t->fd, "..", 0755), -EEXIST);
    assert_int_equal(sbx_rmdir(t->fd, ".."), -EINVAL);
    assert_int_equal(sbx_unlink(t->fd, "out/secret"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_unlink(t->fd, "sub/"), -EISDIR);
    assert_int_equal(sbx_unlink(t->fd, "file/"), -ENOTDIR);
    assert_int_equal(sbx_rename(t->fd, "file", t->fd, "../stolen"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_rename(t->fd, "out/secret", t->fd, "got"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_rename(t->fd, "file", t->fd, "renamed"), 0);
    assert_int_equal(sbx_rename(t->fd, "renamed", t->fd, "file"), 0);
    assert_int_equal(sbx_link(t->fd, "file", t->fd, "hard"), 0);
    assert_int_equal(sbx_unlink(t->fd, "hard"), 0);
    assert_int_equal(sbx_link(t->fd, "out/secret", t->fd, "hard"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_link(t->fd, "file", t->fd, "../hard"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_symlink("/etc/passwd", t->fd, "abs2"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_symlink("../../x", t->fd, "../l"), -SBX_ENOTCAPABLE);
    assert_int_equal(sbx_symlink("file", t->fd, "l2"), 0);
    char buf[64];
    size_t n = 0;
    assert_int_equal(sbx_readlink(t->fd, "l2", buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "file", 4);
    assert_int_equal(sbx_readlink(t->fd, "abs", buf, 2, &n), 0); /* truncated */
    assert_int_equal(n, 2);
    assert_int_equal(sbx_readlink(t->fd, "../root/abs", buf, sizeof(buf), &n),
                     -SBX_ENOTCAPABLE);
    /* Unlinking a symlink that points outside removes only the link. */
    assert_int_equal(sbx_unlink(t->fd, "out"), 0);
    char p[512];
    snprintf(p, sizeof(p), "%s/secret", t->outside);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(sbx_unlink(t->fd, "l2"), 0);
}

static int count_cb(void *arg, uint64_t ino, unsigned type, const char *name)
{
    (void)ino;
    int *c = arg;
    if (strcmp(name, "sub") == 0)
        assert_int_equal(type, S_IFDIR);
    if (strcmp(name, "abs") == 0)
        assert_int_equal(type, S_IFLNK);
    (*c)++;
    return 0;
}

static void test_sbx_readdir(void **state)
{
    tree *t = *state;
    int c = 0;
    assert_int_equal(sbx_readdir(t->fd, count_cb, &c), 0);
    /* . .. file sub inlink abs out dangle rel_ok */
    assert_int_equal(c, 9);
    uint8_t r1[16], r2[16];
    assert_int_equal(sbx_random(r1, sizeof(r1)), 0);
    assert_int_equal(sbx_random(r2, sizeof(r2)), 0);
    assert_memory_not_equal(r1, r2, sizeof(r1));
}

/* ---- host functions through a module ----------------------------------- */

#define IMPORT(name, params, results)                                                          \
    " (import \"wasi_snapshot_preview1\" \"" name "\" (func $" name " (param " params ")"     \
    results "))\n"

static const char *host_wat =
    "(module\n"
    IMPORT("fd_write", "i32 i32 i32 i32", " (result i32)")
    IMPORT("fd_read", "i32 i32 i32 i32", " (result i32)")
    IMPORT("args_get", "i32 i32", " (result i32)")
    IMPORT("args_sizes_get", "i32 i32", " (result i32)")
    IMPORT("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", " (result i32)")
    IMPORT("poll_oneoff", "i32 i32 i32 i32", " (result i32)")
    IMPORT("fd_prestat_get", "i32 i32", " (result i32)")
    IMPORT("sock_accept", "i32 i32 i32", " (result i32)")
    IMPORT("proc_exit", "i32", "")
    " (memory (export \"memory\") 1)\n"
    " (func (export \"w\") (param i32 i32 i32 i32) (result i32)\n"
    "   (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))\n"
    " (func (export \"r\") (param i32 i32 i32 i32) (result i32)\n"
    "   (call $fd_read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))\n"
    " (func (export \"ag\") (param i32 i32) (result i32)\n"
    "   (call $args_get (local.get 0) (local.get 1)))\n"
    " (func (export \"as\") (param i32 i32) (result i32)\n"
    "   (call $args_sizes_get (local.get 0) (local.get 1)))\n"
    " (func (export \"po\") (param i32 i32 i32 i32) (result i32)\n"
    "   (call $path_open (local.get 0) (i32.const 0) (local.get 1) (local.get 2) (i32.const 0)\n"
    "             (i64.const 2) (i64.const 0) (i32.const 0) (local.get 3)))\n"
    " (func (export \"pow\") (param i32 i32 i32 i32) (result i32)\n"
    "   (call $path_open (local.get 0) (i32.const 0) (local.get 1) (local.get 2) (i32.const 1)\n"
    "             (i64.const 64) (i64.const 0) (i32.const 0) (local.get 3)))\n"
    " (func (export \"poll\") (param i32 i32 i32 i32) (result i32)\n"
    "   (call $poll_oneoff (local.get 0) (local.get 1) (local.get 2) (local.get 3)))\n"
    " (func (export \"pg\") (param i32 i32) (result i32)\n"
    "   (call $fd_prestat_get (local.get 0) (local.get 1)))\n"
    " (func (export \"sa\") (result i32)\n"
    "   (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 0)))\n"
    " (func (export \"exit\") (param i32) (call $proc_exit (local.get 0))))\n";

typedef struct host_env {
    kiln_linker *linker;
    kiln_module *mod;
    kiln_instance_pre *pre;
    kiln_instance *inst;
    kiln_wasi *wasi;
    uint8_t *mem;
} host_env;

static const char stdin_text[] = "stdin-bytes";

static int setup_host(void **state)
{
    host_env *h = calloc(1, sizeof(*h));
    size_t n;
    const kiln_hostfn *fns = kiln_wasi_hostfns(&n);
    if (kiln_linker_new(&h->linker) != KILN_OK ||
        kiln_linker_define_host(h->linker, fns, n) != KILN_OK)
        return -1;
    h->mod = test_load_wat(host_wat, h->linker);
    if (h->mod == NULL)
        return -1;
    kiln_err err;
    if (kiln_instance_pre_new(h->mod, h->linker, &h->pre, &err) != KILN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const char *argv[] = {"m", "arg1"};
    kiln_wasi_preopen po = {"/tmp", "/tmp", true};
    kiln_wasi_config cfg = {0};
    cfg.argv = argv;
    cfg.argc = 2;
    cfg.preopens = &po;
    cfg.npreopens = 1;
    cfg.stdio[0].kind = KILN_WASI_STDIO_BUFFER;
    cfg.stdio[0].data = stdin_text;
    cfg.stdio[0].len = sizeof(stdin_text) - 1;
    cfg.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    cfg.stdio[1].cap = 16;
    cfg.stdio[2].kind = KILN_WASI_STDIO_NULL;
    if (kiln_wasi_new(&cfg, &h->wasi, &err) != KILN_OK)
        return -1;
    void *st[KILN_STATE_SLOTS] = {0};
    st[KILN_STATE_WASI] = h->wasi;
    if (kiln_instance_new(h->pre, NULL, st, &h->inst, &err) != KILN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    h->mem = kiln_instance_memory(h->inst)->data;
    *state = h;
    return 0;
}

static int teardown_host(void **state)
{
    host_env *h = *state;
    kiln_instance_free(h->inst);
    kiln_wasi_free(h->wasi);
    kiln_instance_pre_free(h->pre);
    kiln_module_release(h->mod);
    kiln_linker_free(h->linker);
    free(h);
    return 0;
}

static uint32_t call4(host_env *h, const char *fn, uint32_t a, uint32_t b, uint32_t c,
                      uint32_t d)
{
    kiln_value args[4] = {{.i32 = a}, {.i32 = b}, {.i32 = c}, {.i32 = d}};
    kiln_value res[1];
    kiln_err err;
    int rc = kiln_instance_call(h->inst, fn, NULL, args, res, &err);
    if (rc != KILN_OK)
        fail_msg("%s: %s", fn, err.msg);
    return res[0].i32;
}

static void put32(uint8_t *m, uint32_t at, uint32_t v)
{
    memcpy(m + at, &v, 4);
}

static uint32_t get32(const uint8_t *m, uint32_t at)
{
    uint32_t v;
    memcpy(&v, m + at, 4);
    return v;
}

static void test_host_write_capture(void **state)
{
    host_env *h = *state;
    memcpy(h->mem + 100, "hello ", 6);
    memcpy(h->mem + 200, "world, and more", 15);
    put32(h->mem, 16, 100);
    put32(h->mem, 20, 6);
    put32(h->mem, 24, 200);
    put32(h->mem, 28, 15);
    /* two iovecs, 21 bytes, cap 16: a short write of 16 */
    assert_int_equal(call4(h, "w", 1, 16, 2, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), 16);
    size_t len;
    bool trunc;
    const uint8_t *out = kiln_wasi_output(h->wasi, 1, &len, &trunc);
    assert_int_equal(len, 16);
    assert_memory_equal(out, "hello world, and", 16);
    assert_true(trunc);
    /* then EFBIG */
    assert_int_equal(call4(h, "w", 1, 16, 2, 8), WASI_EFBIG);
    /* stderr is the null device: everything "written" */
    assert_int_equal(call4(h, "w", 2, 16, 2, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), 21);
    /* stdin cannot be written */
    assert_int_equal(call4(h, "w", 0, 16, 2, 8), WASI_EBADF);
    assert_int_equal(call4(h, "w", 77, 16, 2, 8), WASI_EBADF);
}

static void test_host_bounds(void **state)
{
    host_env *h = *state;
    /* iovec array out of bounds */
    assert_int_equal(call4(h, "w", 2, 65536 - 4, 1, 8), WASI_EFAULT);
    assert_int_equal(call4(h, "w", 2, 0xfffffff8u, 2, 8), WASI_EFAULT);
    /* buffer out of bounds; length that wraps 32 bits */
    put32(h->mem, 16, 65000);
    put32(h->mem, 20, 1000);
    assert_int_equal(call4(h, "w", 2, 16, 1, 8), WASI_EFAULT);
    put32(h->mem, 16, 0xffffff00u);
    put32(h->mem, 20, 0x200);
    assert_int_equal(call4(h, "w", 2, 16, 1, 8), WASI_EFAULT);
    /* result pointer out of bounds */
    put32(h->mem, 16, 100);
    put32(h->mem, 20, 1);
    assert_int_equal(call4(h, "w", 2, 16, 1, 65535), WASI_EFAULT);
    /* too many iovecs */
    assert_int_equal(call4(h, "w", 2, 0, WASI_IOV_MAX + 1, 8), WASI_EINVAL);
    /* args_get with vectors out of bounds */
    assert_int_equal(call4(h, "ag", 65534, 100, 0, 0), WASI_EFAULT);
    assert_int_equal(call4(h, "ag", 100, 65535, 0, 0), WASI_EFAULT);
    /* path out of bounds, and an embedded NUL */
    assert_int_equal(call4(h, "po", 3, 65530, 100, 8), WASI_EFAULT);
    memcpy(h->mem + 300, "a\0b", 3);
    assert_int_equal(call4(h, "po", 3, 300, 3, 8), WASI_EILSEQ);
    /* unsupported functions answer ENOSYS */
    assert_int_equal(call4(h, "sa", 0, 0, 0, 0), WASI_ENOSYS);
}

static void test_host_args_stdin(void **state)
{
    host_env *h = *state;
    assert_int_equal(call4(h, "as", 0, 4, 0, 0), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 0), 2);
    assert_int_equal(get32(h->mem, 4), 7); /* "m\0arg1\0" */
    assert_int_equal(call4(h, "ag", 100, 200, 0, 0), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 100), 200);
    assert_int_equal(get32(h->mem, 104), 202);
    assert_string_equal((char *)h->mem + 202, "arg1");

    put32(h->mem, 16, 400);
    put32(h->mem, 20, 5);
    put32(h->mem, 24, 500);
    put32(h->mem, 28, 100);
    assert_int_equal(call4(h, "r", 0, 16, 2, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), sizeof(stdin_text) - 1);
    assert_memory_equal(h->mem + 400, "stdin", 5);
    assert_memory_equal(h->mem + 500, "-bytes", 6);
    assert_int_equal(call4(h, "r", 0, 16, 2, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), 0); /* EOF */
}

static void test_host_preopen_ro(void **state)
{
    host_env *h = *state;
    assert_int_equal(call4(h, "pg", 3, 0, 0, 0), WASI_ESUCCESS);
    assert_int_equal(h->mem[0], 0);
    assert_int_equal(get32(h->mem, 4), 4); /* "/tmp" */
    assert_int_equal(call4(h, "pg", 4, 0, 0, 0), WASI_EBADF);
    /* "po" opens with FD_READ only; ".." and absolute paths are not
     * capabilities. "pow" asks for O_CREAT + FD_WRITE: read-only refuses. */
    memcpy(h->mem + 300, "..", 2);
    assert_int_equal(call4(h, "po", 3, 300, 2, 8), WASI_ENOTCAPABLE);
    memcpy(h->mem + 300, "/etc", 4);
    assert_int_equal(call4(h, "po", 3, 300, 4, 8), WASI_ENOTCAPABLE);
    memcpy(h->mem + 300, ".", 1);
    assert_int_equal(call4(h, "po", 3, 300, 1, 8), WASI_ESUCCESS);
    assert_true(get32(h->mem, 8) >= 4);
    memcpy(h->mem + 300, "kiln-new", 8);
    assert_int_equal(call4(h, "pow", 3, 300, 8, 8), WASI_EROFS);
}

static void test_host_poll_clock(void **state)
{
    host_env *h = *state;
    uint8_t *s = h->mem + 1024;
    memset(s, 0, 48);
    uint64_t ud = 0x1122334455667788ull, timeout = 2000000; /* 2 ms, relative */
    memcpy(s, &ud, 8);
    s[8] = WASI_EVENTTYPE_CLOCK;
    put32(h->mem, 1024 + 16, WASI_CLOCK_MONOTONIC);
    memcpy(s + 24, &timeout, 8);
    assert_int_equal(call4(h, "poll", 1024, 2048, 1, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), 1);
    uint64_t got;
    memcpy(&got, h->mem + 2048, 8);
    assert_true(got == ud);
    assert_int_equal(h->mem[2048 + 10], WASI_EVENTTYPE_CLOCK);
    /* fd_read on the stdin buffer is ready at once, with the bytes left */
    memset(s, 0, 48);
    s[8] = WASI_EVENTTYPE_FD_READ;
    put32(h->mem, 1024 + 16, 0);
    assert_int_equal(call4(h, "poll", 1024, 2048, 1, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), 1);
    assert_int_equal(h->mem[2048 + 10], WASI_EVENTTYPE_FD_READ);
    assert_int_equal(h->mem[2048 + 8], 0);
    assert_int_equal(get32(h->mem, 2048 + 16), sizeof(stdin_text) - 1);
    /* a bad fd is reported in the event, not as the call's result */
    put32(h->mem, 1024 + 16, 99);
    assert_int_equal(call4(h, "poll", 1024, 2048, 1, 8), WASI_ESUCCESS);
    assert_int_equal(get32(h->mem, 8), 1);
    assert_int_equal(h->mem[2048 + 8], WASI_EBADF);
    /* zero subscriptions is invalid */
    assert_int_equal(call4(h, "poll", 1024, 2048, 0, 8), WASI_EINVAL);
}

static void test_host_exit(void **state)
{
    host_env *h = *state;
    kiln_value a[1] = {{.i32 = 7}};
    kiln_err err;
    int rc = kiln_instance_call(h->inst, "exit", NULL, a, NULL, &err);
    assert_true(rc == KILN_EEXIT || rc == KILN_ETRAP);
    assert_int_equal(err.trap, KILN_TRAP_EXIT);
    assert_int_equal(err.exit_code, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_empty),
        cmocka_unit_test(test_config_args_env),
        cmocka_unit_test(test_config_rejects),
        cmocka_unit_test(test_config_preopens),
        cmocka_unit_test(test_max_fds),
        cmocka_unit_test(test_hostfn_table),
        cmocka_unit_test(test_errno_map),
        cmocka_unit_test(test_outbuf_cap),
        cmocka_unit_test(test_output_accessors),
        cmocka_unit_test_setup_teardown(test_sbx_open, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_sbx_stat, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_sbx_modify, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_sbx_readdir, setup_tree, teardown_tree),
        cmocka_unit_test_setup_teardown(test_host_write_capture, setup_host, teardown_host),
        cmocka_unit_test_setup_teardown(test_host_bounds, setup_host, teardown_host),
        cmocka_unit_test_setup_teardown(test_host_args_stdin, setup_host, teardown_host),
        cmocka_unit_test_setup_teardown(test_host_preopen_ro, setup_host, teardown_host),
        cmocka_unit_test_setup_teardown(test_host_poll_clock, setup_host, teardown_host),
        cmocka_unit_test_setup_teardown(test_host_exit, setup_host, teardown_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
