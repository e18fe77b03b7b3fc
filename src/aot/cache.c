/*
 * cache.c - content-addressed artifact cache (see cache.h and
 * docs/internals/aot.md): SHA-256 keys, scratch directories, atomic publish.
 */
#include "aot/cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "platform/fs.h"
#include "platform/proc.h"

int aot_errno_status(int e, int otherwise)
{
#ifdef EDQUOT
    if (e == EDQUOT)
        return KILN_ENOSPC;
#endif
    return e == ENOSPC ? KILN_ENOSPC : otherwise;
}

/* ---- keys --------------------------------------------------------------- */

/* Each field is a tag byte, its length as 8 little-endian bytes, then the
 * bytes, so no two different inputs hash the same stream. */
static void key_field(kiln_sha256 *ctx, uint8_t tag, const void *data, size_t len)
{
    uint8_t hdr[9];
    hdr[0] = tag;
    for (int i = 0; i < 8; i++)
        hdr[1 + i] = (uint8_t)((uint64_t)len >> (8 * i));
    kiln_sha256_update(ctx, hdr, sizeof(hdr));
    if (len > 0)
        kiln_sha256_update(ctx, data, len);
}

static void key_str(kiln_sha256 *ctx, uint8_t tag, const char *s)
{
    key_field(ctx, tag, s ? s : "", s ? strlen(s) : 0);
}

/* SHA-256 is Kiln's own (base/sha256.c): OpenSSL's EVP initialisation was
 * most of a cached `kiln run` (docs/internals/snapshot.md §5). Same digest. */
int aot_cache_key(const aot_key_input *in, char out[AOT_KEY_HEX + 1], kiln_err *err)
{
    (void)err;
    kiln_sha256 ctx;
    char num[32];
    uint8_t md[32];
    kiln_sha256_init(&ctx);
    key_str(&ctx, 'K', "kiln-aot-key-1");
    key_field(&ctx, 'W', in->wasm, in->wasm_len);
    key_str(&ctx, 'T', in->wabt_version);
    key_str(&ctx, 'C', in->cc_identity);
    snprintf(num, sizeof(num), "%d", in->opt_level);
    key_str(&ctx, 'O', num);
    for (size_t i = 0; i < in->n_flags; i++)
        key_str(&ctx, 'F', in->flags[i]);
    snprintf(num, sizeof(num), "%u", in->abi_version);
    key_str(&ctx, 'A', num);
    key_field(&ctx, 'D', in->descriptor_h, in->descriptor_h_len);
    kiln_sha256_final(&ctx, md);
    kiln_sha256_to_hex(md, out);
    return KILN_OK;
}

/* ---- directories -------------------------------------------------------- */

int aot_cache_dir(const char *configured, char *out, size_t size, kiln_err *err)
{
    char buf[4096];
    const char *dir = configured;
    if (dir == NULL || dir[0] == '\0') {
        const char *home = getenv("KILN_HOME");
        int n;
        if (home != NULL && home[0] != '\0') {
            n = snprintf(buf, sizeof(buf), "%s/cache", home);
        } else {
            home = getenv("HOME");
            if (home == NULL || home[0] == '\0')
                return kiln_err_set(err, KILN_ECACHE,
                                    "no cache directory: neither KILN_HOME nor HOME is set; set "
                                    "KILN_HOME or pass --cache");
            n = snprintf(buf, sizeof(buf), "%s/.kiln/cache", home);
        }
        if (n < 0 || (size_t)n >= sizeof(buf))
            return kiln_err_set(err, KILN_ECACHE,
                                "cache directory path is too long; set "
                                "KILN_HOME to a shorter path");
        dir = buf;
    }
    if (fs_mkdir_p(dir) != 0) {
        int e = errno;
        int code = aot_errno_status(e, KILN_ECACHE);
        if (code == KILN_ENOSPC)
            return kiln_err_set(err, code,
                                "disk full while creating cache directory '%s'; free "
                                "space or point KILN_HOME elsewhere",
                                dir);
        return kiln_err_set(err, code,
                            "cannot create cache directory '%s': %s; set KILN_HOME (or pass "
                            "--cache) to a writable directory",
                            dir, strerror(e));
    }
    /* Absolute, so tools running in the scratch directory and dlopen() see
     * the same paths. */
    if (fs_realpath(dir, out, size) != 0)
        return kiln_err_set(err, KILN_ECACHE, "cannot resolve cache directory '%s': %s", dir,
                            strerror(errno));
    return KILN_OK;
}

int aot_cache_artifact_path(const char *dir, const char *key, char *out, size_t size, kiln_err *err)
{
    int n = snprintf(out, size, "%s/%s.so", dir, key);
    if (n < 0 || (size_t)n >= size)
        return kiln_err_set(err, KILN_EINVAL, "cache directory path '%s' is too long", dir);
    return KILN_OK;
}

int aot_cache_fail_path(const char *dir, const char *key, char *out, size_t size, kiln_err *err)
{
    int n = snprintf(out, size, "%s/%s.fail", dir, key);
    if (n < 0 || (size_t)n >= size)
        return kiln_err_set(err, KILN_EINVAL, "cache directory path '%s' is too long", dir);
    return KILN_OK;
}

bool aot_cache_has(const char *path)
{
    return fs_is_file(path);
}

/* ---- scratch directories ------------------------------------------------ */

typedef struct sweep_ctx {
    const char *tmp;
    char host[64];
} sweep_ctx;

/* Decide about one entry of tmp/: "<host>.<pid>.XXXXXX" of a dead process of
 * this host, or anything older than AOT_SCRATCH_MAX_AGE_S, goes. */
static int sweep_one(const char *name, void *arg)
{
    sweep_ctx *sc = arg;
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", sc->tmp, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return 0;
    bool stale = false;
    size_t hl = strlen(sc->host);
    if (strncmp(name, sc->host, hl) == 0 && name[hl] == '.') {
        char *end;
        long pid = strtol(name + hl + 1, &end, 10);
        /* Our own pid: a live compile of this process (other threads). */
        if (*end == '.' && pid > 0 && pid != proc_self() && !proc_alive(pid))
            stale = true;
    }
    if (!stale) {
        double age = fs_age_s(path);
        stale = age > AOT_SCRATCH_MAX_AGE_S;
    }
    if (stale)
        fs_remove_tree(path);
    return 0;
}

void aot_cache_sweep(const char *dir)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return;
    sweep_ctx sc = {.tmp = tmp};
    fs_host_tag(sc.host, sizeof(sc.host));
    fs_list_dir(tmp, sweep_one, &sc);
}

int aot_cache_scratch_new(const char *dir, char *out, size_t size, kiln_err *err)
{
    char tmp[4096], host[64];
    if (size > 0)
        out[0] = '\0';
    int n = snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return kiln_err_set(err, KILN_EINVAL, "cache directory path '%s' is too long", dir);
    if (fs_mkdir_p(tmp) != 0) {
        int e = errno;
        int code = aot_errno_status(e, KILN_ECACHE);
        if (code == KILN_ENOSPC)
            return kiln_err_set(err, code,
                                "disk full while writing '%s'; free space in the "
                                "cache's file system",
                                tmp);
        return kiln_err_set(err, code,
                            "cache directory '%s' is not writable (cannot create '%s': %s); fix "
                            "its permissions or set KILN_HOME (or pass --cache) elsewhere",
                            dir, tmp, strerror(e));
    }
    aot_cache_sweep(dir);
    fs_host_tag(host, sizeof(host));
    n = snprintf(out, size, "%s/%s.%ld.XXXXXX", tmp, host, proc_self());
    if (n < 0 || (size_t)n >= size) {
        out[0] = '\0';
        return kiln_err_set(err, KILN_EINVAL, "cache directory path '%s' is too long", dir);
    }
    if (fs_mkdtemp(out) != 0) {
        int e = errno;
        out[0] = '\0'; /* never a name to remove: it may be someone else's */
        int code = aot_errno_status(e, KILN_ECACHE);
        if (code == KILN_ENOSPC)
            return kiln_err_set(err, code,
                                "disk full while writing '%s'; free space in the "
                                "cache's file system",
                                tmp);
        return kiln_err_set(err, code,
                            "cache directory '%s' is not writable (cannot create a scratch "
                            "directory in '%s': %s); fix its permissions or set KILN_HOME (or "
                            "pass --cache) elsewhere",
                            dir, tmp, strerror(e));
    }
    return KILN_OK;
}

void aot_cache_scratch_remove(const char *scratch)
{
    if (scratch != NULL && scratch[0] != '\0')
        fs_remove_tree(scratch);
}

int aot_cache_publish(const char *built, const char *artifact, kiln_err *err)
{
    /* Data first, then the name: after a crash the artifact is either absent
     * or complete, never a name pointing at unwritten blocks. */
    if (fs_sync_path(built) != 0) {
        int e = errno;
        int code = aot_errno_status(e, KILN_ECACHE);
        if (code == KILN_ENOSPC)
            return kiln_err_set(err, code,
                                "disk full while writing '%s'; free space in the "
                                "cache's file system",
                                built);
        return kiln_err_set(err, code, "cannot flush '%s' to disk: %s", built, strerror(e));
    }
    if (fs_rename(built, artifact) != 0) {
        int e = errno;
        return kiln_err_set(err, aot_errno_status(e, KILN_ECACHE),
                            "cannot publish '%s' as '%s': %s; check the cache directory's "
                            "permissions",
                            built, artifact, strerror(e));
    }
    /* Make the rename itself durable. Some file systems cannot fsync a
     * directory; the artifact is complete either way. */
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", artifact);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        fs_sync_path(dir);
    }
    return KILN_OK;
}
