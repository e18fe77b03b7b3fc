/*
 * snapshot_cache.c - snapshot image files in the artifact cache over a
 * function's life (runtime.h kiln_snapshot_obtain, kiln_snapshot_cache_claim;
 * docs/internals/snapshot.md "Images on disk", "Cleanup"): load the image a
 * function's artifact and configuration were given, else build and save it;
 * delete the image a function no longer uses.
 *
 * Images accumulate per module x configuration. Artifacts are never
 * collected (the cache has no size cap or LRU; scratch directories are
 * swept by age), so images follow the narrower rule the issue asks for: a
 * function's image is deleted when the function moves to another one (its
 * module or its init-affecting configuration changed), unless another
 * function still starts from it. Each owner (a function name) has a record
 * <images>/owners/<16 hex of SHA-256(owner)> holding the file name of its
 * image and the owner's name. Records are replaced atomically (scratch
 * file + rename); two processes racing can at worst delete an image another
 * is about to load, which that one then rebuilds: never a wrong image.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "platform/fs.h"
#include "runtime/rt_int.h"

#define OWNER_MAX 4096

typedef struct scan_ctx {
    const char *dir;  /* owners directory */
    const char *skip; /* this owner's record name */
    const char *image;
    bool used;
} scan_ctx;

/* The image file name a record holds ("" when unreadable). */
static void record_image(const char *path, char *out, size_t size)
{
    uint8_t *b = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (fs_read_file(path, OWNER_MAX, &b, &n) != 0)
        return;
    size_t k = 0;
    while (k < n && b[k] != '\n' && k + 1 < size) {
        out[k] = (char)b[k];
        k++;
    }
    out[k] = '\0';
    kiln_free(b);
}

static int scan_one(const char *name, void *arg)
{
    scan_ctx *c = arg;
    if (strcmp(name, c->skip) == 0 || strchr(name, '.') != NULL)
        return 0;
    char path[4200], img[512];
    snprintf(path, sizeof(path), "%s/%s", c->dir, name);
    record_image(path, img, sizeof(img));
    if (strcmp(img, c->image) == 0) {
        c->used = true;
        return 1; /* stop */
    }
    return 0;
}

int kiln_snapshot_cache_claim(const char *path, const char *owner, char *removed, size_t size,
                              kiln_err *err)
{
    if (removed != NULL && size > 0)
        removed[0] = '\0';
    const char *slash = strrchr(path, '/');
    if (slash == NULL || owner == NULL || owner[0] == '\0')
        return kiln_err_set(err, KILN_EINVAL, "snapshot image %s: no images directory or owner",
                            path);
    const char *base = slash + 1;
    char dir[4200], rec[4300], tmp[4400];
    int n = snprintf(dir, sizeof(dir), "%.*s/owners", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= sizeof(dir) || strlen(base) >= 512)
        return kiln_err_set(err, KILN_EINVAL, "snapshot image %s: path too long", path);
    if (fs_mkdir_p(dir) != 0)
        return kiln_err_set(err, KILN_ECACHE, "cannot create %s: %s", dir, strerror(errno));
    char hex[65];
    kiln_sha256_hex(owner, strlen(owner), hex);
    hex[16] = '\0';
    snprintf(rec, sizeof(rec), "%s/%s", dir, hex);
    char old[512];
    record_image(rec, old, sizeof(old));
    if (strcmp(old, base) == 0)
        return KILN_OK;
    char text[OWNER_MAX];
    n = snprintf(text, sizeof(text), "%s\n%s\n", base, owner);
    if (n < 0 || (size_t)n >= sizeof(text))
        return kiln_err_set(err, KILN_EINVAL, "snapshot image owner name too long");
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", rec, (long)getpid());
    if (fs_write_file(tmp, text, (size_t)n) != 0 || fs_rename(tmp, rec) != 0) {
        int e = errno;
        unlink(tmp);
        return kiln_err_set(err, KILN_ECACHE, "cannot write %s: %s", rec, strerror(e));
    }
    /* The owner's previous image: delete it unless another owner uses it. */
    if (old[0] == '\0' || strchr(old, '/') != NULL)
        return KILN_OK;
    scan_ctx c = {dir, hex, old, false};
    if (fs_list_dir(dir, scan_one, &c) != 0 || c.used)
        return KILN_OK; /* in use, or cannot tell: kept */
    char victim[4200];
    n = snprintf(victim, sizeof(victim), "%.*s/%s", (int)(slash - path), path, old);
    if (n > 0 && (size_t)n < sizeof(victim) && unlink(victim) == 0 && removed != NULL && size > 0)
        snprintf(removed, size, "%s", victim);
    return KILN_OK;
}

int kiln_snapshot_obtain(const kiln_instance_pre *pre, const char *module_id, const char *variant,
                         const char *note, const char *owner, kiln_snapshot_build_fn build,
                         void *ctx, kiln_snapshot **out, kiln_err *err)
{
    *out = NULL;
    char path[4096], apath[4096];
    kiln_err e;
    memset(&e, 0, sizeof(e));
    /* Two places: under the module (an image any compile tier can load) and
     * under this artifact (one whose functions have no portable name). */
    bool by_module = module_id != NULL && module_id[0] != '\0' &&
                     kiln_snapshot_cache_path(pre, module_id, variant, path, sizeof(path), &e) ==
                         KILN_OK;
    bool by_artifact =
        kiln_snapshot_cache_path(pre, NULL, variant, apath, sizeof(apath), &e) == KILN_OK;
    char stale[600] = "", gone[4200] = "";
    for (int k = 0; k < 2; k++) {
        const char *p = k == 0 ? (by_module ? path : NULL) : (by_artifact ? apath : NULL);
        if (p == NULL)
            continue;
        int lrc = kiln_snapshot_load(pre, p, k == 0 ? module_id : NULL, out, &e);
        if (lrc == KILN_OK) {
            if (owner != NULL)
                (void)kiln_snapshot_cache_claim(p, owner, gone, sizeof(gone), &e);
            kiln_err_set(err, KILN_OK, "snapshot image loaded from %s (%s)%s%s", p, note,
                         gone[0] ? "; removed the function's previous image " : "", gone);
            return KILN_OK;
        }
        if (lrc != KILN_ENOENT && stale[0] == '\0')
            snprintf(stale, sizeof(stale), "%.500s", e.msg);
    }
    int rc = build(ctx, pre, out, err);
    if (rc != KILN_OK)
        return rc;
    kiln_snapshot_info si;
    kiln_snapshot_info_get(*out, &si);
    const char *dst = si.portable && by_module ? path : by_artifact ? apath : NULL;
    if (dst == NULL) {
        kiln_err_set(err, KILN_OK, "snapshot image built (not cached: %s)", e.msg);
    } else if (kiln_snapshot_save(*out, dst, module_id, note, &e) != KILN_OK) {
        kiln_err_set(err, KILN_OK, "snapshot image built (not cached: %s)", e.msg);
    } else {
        if (owner != NULL)
            (void)kiln_snapshot_cache_claim(dst, owner, gone, sizeof(gone), &e);
        kiln_err_set(err, KILN_OK, "snapshot image built and saved to %s (%s%s)%s%s%s%s", dst,
                     note, dst == path ? ", any compile tier" : ", this artifact only",
                     stale[0] ? "; replaced: " : "", stale,
                     gone[0] ? "; removed the function's previous image " : "", gone);
    }
    return KILN_OK;
}
