/*
 * test_component_wasi.c - WASI 0.2's host side below the canonical ABI: the
 * resource table (reps, kinds, reuse, the live-entry cap, freed with the
 * context), the error-code mapping of preview-1 errnos, the host-value
 * cores wasi:filesystem shares with preview 1 (open/read/write/stat below a
 * preopen, read-only refusal, `..` refused as not-permitted) and the wait
 * poll uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "component/cm_wasi_int.h"

static kiln_wasi *ctx(const char *dir, bool ro)
{
    kiln_wasi_preopen p = {.host_path = dir, .guest_path = "/d", .read_only = ro};
    kiln_wasi_config cfg = {0};
    if (dir != NULL) {
        cfg.preopens = &p;
        cfg.npreopens = 1;
    }
    kiln_wasi *w = NULL;
    kiln_err err;
    assert_int_equal(kiln_wasi_new(&cfg, &w, &err), KILN_OK);
    return w;
}

static void test_table(void **state)
{
    (void)state;
    kiln_wasi *w = ctx(NULL, false);
    kiln_err err;
    cw_obj o = {.kind = CW_POLL, .pos = 42};
    uint32_t a, b, c;
    assert_int_equal(cw_new(w, &o, &a, &err), KILN_OK);
    assert_int_equal(a, 1); /* rep 0 is never given out */
    o.kind = CW_OUT;
    assert_int_equal(cw_new(w, &o, &b, &err), KILN_OK);
    assert_int_equal(b, 2);
    assert_non_null(cw_get(w, a, CW_POLL, &err));
    assert_int_equal(cw_get(w, a, CW_POLL, &err)->pos, 42);
    assert_null(cw_get(w, a, CW_IN, &err)); /* wrong kind */
    assert_null(cw_get(w, 0, CW_POLL, &err));
    assert_null(cw_get(w, 99, CW_POLL, &err));
    cw_free(w, a);
    assert_null(cw_get(w, a, CW_POLL, &err)); /* dropped */
    cw_free(w, a);                            /* twice: ignored */
    assert_int_equal(cw_new(w, &o, &c, &err), KILN_OK);
    assert_int_equal(c, a); /* the slot is reused */
    /* The cap on live entries, then room again after a free. */
    uint32_t r = 0;
    int rc = KILN_OK;
    for (uint32_t i = 2; i < CW_MAX_OBJECTS && rc == KILN_OK; i++)
        rc = cw_new(w, &o, &r, &err);
    assert_int_equal(rc, KILN_OK);
    assert_int_equal(cw_new(w, &o, &r, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "live streams"));
    cw_free(w, b);
    assert_int_equal(cw_new(w, &o, &r, &err), KILN_OK);
    /* A listing's snapshot is freed with its entry or the context (ASan). */
    cw_obj d = {.kind = CW_DIRENTS, .dir = kiln_calloc(1, sizeof(wasi_dir_cache))};
    cw_free(w, r);
    assert_int_equal(cw_new(w, &d, &r, &err), KILN_OK);
    /* Listings are capped by the entries they hold, not only by count. */
    cw_obj big = {.kind = CW_DIRENTS, .dir = kiln_calloc(1, sizeof(wasi_dir_cache))};
    big.dir->n = CW_MAX_LISTED + 1;
    cw_free(w, c);
    assert_int_equal(cw_new(w, &big, &c, &err), KILN_ELIMIT);
    assert_non_null(strstr(err.msg, "directory listings"));
    big.dir->n = 0;
    wasi_dir_free(big.dir);
    kiln_wasi_free(w);
}

static void test_error_codes(void **state)
{
    (void)state;
    assert_int_equal(cw_error_code(WASI_EACCES), 0);
    assert_int_equal(cw_error_code(WASI_EBADF), 3);
    assert_int_equal(cw_error_code(WASI_EEXIST), 7);
    assert_int_equal(cw_error_code(WASI_ENOENT), 20);
    assert_int_equal(cw_error_code(WASI_ENOTEMPTY), 25);
    assert_int_equal(cw_error_code(WASI_ENOTCAPABLE), 31); /* not-permitted */
    assert_int_equal(cw_error_code(WASI_EPERM), 31);
    assert_int_equal(cw_error_code(WASI_EROFS), 33);
    assert_int_equal(cw_error_code(WASI_EXDEV), 36);
    assert_int_equal(cw_error_code(WASI_EMFILE), 13); /* io */
}

static void test_shared_cores(void **state)
{
    (void)state;
    char dir[] = "/tmp/kiln-cw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    kiln_wasi *w = ctx(dir, false);
    uint32_t fd;
    uint64_t rw = WASI_RIGHTS_FILE;
    assert_int_equal(wasi_open_at(w, 3, 0, "f.txt", WASI_OFLAGS_CREAT, rw, rw, 0, &fd),
                     WASI_ESUCCESS);
    struct iovec iov = {"hello", 5};
    size_t done;
    assert_int_equal(wasi_pwritev(w, fd, &iov, 1, 0, &done), WASI_ESUCCESS);
    assert_int_equal(done, 5);
    uint64_t size;
    assert_int_equal(wasi_file_size(w, fd, &size), WASI_ESUCCESS);
    assert_int_equal(size, 5);
    char buf[8] = {0};
    struct iovec rd = {buf, sizeof(buf)};
    assert_int_equal(wasi_preadv(w, fd, &rd, 1, 1, &done), WASI_ESUCCESS);
    assert_string_equal(buf, "ello");
    struct stat st;
    assert_int_equal(wasi_stat_at(w, 3, false, "f.txt", &st), WASI_ESUCCESS);
    assert_int_equal(st.st_size, 5);
    assert_int_equal(wasi_stat_at(w, 3, false, "../", &st), WASI_ENOTCAPABLE);
    assert_int_equal(wasi_mkdir_at(w, 3, "sub"), WASI_ESUCCESS);
    assert_int_equal(wasi_rename_at(w, 3, "f.txt", 3, "sub/g.txt"), WASI_ESUCCESS);
    assert_int_equal(wasi_rmdir_at(w, 3, "sub"), WASI_ENOTEMPTY);
    assert_int_equal(wasi_unlink_at(w, 3, "sub/g.txt"), WASI_ESUCCESS);
    assert_int_equal(wasi_rmdir_at(w, 3, "sub"), WASI_ESUCCESS);
    /* A stream outliving its descriptor loses the fd, whatever reuses it. */
    kiln_err err;
    cw_obj so = {.kind = CW_IN, .mode = CW_FILE, .fd = fd};
    uint32_t srep;
    assert_int_equal(cw_new(w, &so, &srep, &err), KILN_OK);
    cw_orphan(w, fd);
    assert_int_equal(cw_get(w, srep, CW_IN, &err)->fd, CW_NO_FD);
    assert_int_equal(wasi_preadv(w, CW_NO_FD, &rd, 1, 0, &done), WASI_EBADF);
    kiln_wasi_free(w);

    /* Read-only: no write opens, no changes; reads still work. */
    char path[64];
    snprintf(path, sizeof(path), "%s/r.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("ro", f);
    fclose(f);
    w = ctx(dir, true);
    assert_int_equal(wasi_open_at(w, 3, 0, "r.txt", 0, rw, rw, 0, &fd), WASI_EROFS);
    assert_int_equal(wasi_open_at(w, 3, 0, "r.txt", 0, WASI_RIGHT_FD_READ | WASI_RIGHT_FD_SEEK,
                                  rw, 0, &fd),
                     WASI_ESUCCESS);
    assert_int_equal(wasi_mkdir_at(w, 3, "x"), WASI_EROFS);
    assert_int_equal(wasi_unlink_at(w, 3, "r.txt"), WASI_EROFS);
    kiln_wasi_free(w);
    unlink(path);
    rmdir(dir);
}

static void test_wait(void **state)
{
    (void)state;
    bool ok;
    uint64_t t0 = wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok);
    assert_true(wasi_wait_until(t0 + 20000000u));
    assert_true(wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok) - t0 >= 20000000u);
    assert_true(wasi_wait_until(t0)); /* already past */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_shared_cores),
        cmocka_unit_test(test_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
