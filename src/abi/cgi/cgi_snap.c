/*
 * cgi_snap.c - images for WASI-CGI functions (cgi_snap.h; snapshot.md §4).
 *
 * What init can observe besides the module, and so what keys the image on
 * disk (the variant): argv (the function's name), the preopens and the
 * memory limit. The environment is not offered (environ_get and
 * environ_sizes_get are refused: wasi-libc would cache init's environment
 * in memory and every request would read it instead of its own CGI
 * variables); stdin is empty and any read of it refused; stdout must stay
 * empty (it is the response; bytes buffered in the guest's memory would be
 * flushed into every request's output, so a guest must not print in init).
 */
#include "abi/cgi/cgi_snap.h"

#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "kiln/abi.h"

#define CGI_INIT_OUT_CAP (64u << 10)

typedef struct build_ctx {
    const kiln_function *fn;
    const kiln_wasi_preopen *preopens;
    size_t n_preopens;
    const char *init;
} build_ctx;

/* WASI's snapshot allow-list without the environment. */
static size_t init_allow(const char **out, size_t cap)
{
    size_t n = 0, na;
    const char *const *all = kiln_wasi_snapshot_allow(&na);
    for (size_t i = 0; i < na && n < cap; i++)
        if (strstr(all[i], ".environ_") == NULL)
            out[n++] = all[i];
    return n;
}

static int build(void *ctx, const kiln_instance_pre *pre, kiln_snapshot **out, kiln_err *err)
{
    build_ctx *b = ctx;
    const kiln_function *fn = b->fn;
    *out = NULL;
    kiln_wasi_config wc;
    memset(&wc, 0, sizeof(wc));
    const char *argv[1] = {fn->name};
    wc.argv = argv;
    wc.argc = 1;
    wc.preopens = b->preopens;
    wc.npreopens = b->n_preopens;
    wc.stdio[0].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[1].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[1].cap = CGI_INIT_OUT_CAP;
    wc.stdio[2].kind = KILN_WASI_STDIO_BUFFER;
    wc.stdio[2].cap = CGI_INIT_OUT_CAP;
    kiln_wasi *wasi = NULL;
    int rc = kiln_wasi_new(&wc, &wasi, err);
    if (rc != KILN_OK)
        return rc;
    void *slots[KILN_STATE_SLOTS] = {0};
    for (int i = 0; i < KILN_STATE_SLOTS; i++)
        slots[i] = fn->host_state[i];
    slots[KILN_STATE_WASI] = wasi;
    kiln_limits lim = fn->limits;
    if (lim.timeout_ms < CGI_SNAPSHOT_INIT_MS)
        lim.timeout_ms = CGI_SNAPSHOT_INIT_MS;
    const char *allow[32];
    size_t na = init_allow(allow, 32);
    kiln_instance *inst = NULL;
    const char *what = "instantiate";
    rc = kiln_snapshot_begin(pre, &lim, slots, allow, na, &inst, err);
    if (rc == KILN_OK) {
        what = b->init;
        rc = kiln_instance_call(inst, b->init, ">", NULL, NULL, err);
    }
    size_t out_len = 0;
    bool truncated = false;
    kiln_wasi_output(wasi, 1, &out_len, &truncated);
    if (rc == KILN_OK && out_len > 0)
        rc = kiln_err_set(err, KILN_EINVAL, "init wrote %zu bytes to stdout, which is the CGI "
                          "response of every request; write diagnostics to stderr", out_len);
    if (rc == KILN_OK) {
        what = "capture";
        rc = kiln_snapshot_capture(inst, out, err);
    }
    kiln_instance_free(inst);
    kiln_wasi_free(wasi);
    if (rc != KILN_OK)
        return kiln_err_prefix(err, "function '%s': snapshot (%s) failed; the function cannot "
                               "start from a snapshot (set snapshot: false, or fix its "
                               "initialisation; a request's environment and stdin cannot be "
                               "read during init)", fn->name, what);
    return KILN_OK;
}

static bool has_init(const kiln_module *m, const char *name)
{
    int idx = kiln_module_find_export(m, name, KILN_EXTERN_FUNC);
    if (idx < 0)
        return false;
    kiln_extern_info info;
    kiln_module_export(m, (uint32_t)idx, &info);
    return strcmp(info.type, ">") == 0;
}

int cgi_image_make(const kiln_function *fn, const kiln_instance_pre *pre,
                   const kiln_wasi_preopen *preopens, size_t n_preopens, cgi_image *img,
                   kiln_err *err)
{
    const kiln_module *m = kiln_instance_pre_module(pre);
    const char *init = has_init(m, "wizer.initialize") ? "wizer.initialize"
                       : has_init(m, "_initialize")    ? "_initialize"
                                                       : NULL;
    if (init == NULL)
        return kiln_err_set(err, KILN_ECONFIG,
                            "function '%s': 'snapshot: true' needs an initialisation to capture, "
                            "and this module is a plain command: its _start initialises and "
                            "answers in one call. Export the expensive setup as "
                            "'wizer.initialize' (run once at deploy, then _start per request; "
                            "clang: __attribute__((export_name(\"wizer.initialize\")))), or build "
                            "a reactor (-mexec-model=reactor: _initialize, and the handler named "
                            "by 'export'); or remove 'snapshot'", fn->name);
    /* The variant: what init can observe besides the module. */
    kiln_sha256 h;
    char num[160];
    kiln_sha256_init(&h);
    snprintf(num, sizeof(num), "cgi-image-1|%s|%llu|", init,
             (unsigned long long)fn->limits.max_memory_bytes);
    kiln_sha256_update(&h, num, strlen(num));
    kiln_sha256_update(&h, fn->name, strlen(fn->name) + 1);
    for (size_t i = 0; i < n_preopens; i++) {
        const kiln_wasi_preopen *po = &preopens[i];
        const char *g = po->guest_path ? po->guest_path : po->host_path;
        kiln_sha256_update(&h, po->host_path, strlen(po->host_path) + 1);
        kiln_sha256_update(&h, g, strlen(g) + 1);
        kiln_sha256_update(&h, po->read_only ? "r" : "w", 1);
    }
    uint8_t md[32];
    char hex[65], variant[17], note[200];
    kiln_sha256_final(&h, md);
    kiln_sha256_to_hex(md, hex);
    memcpy(variant, hex, 16);
    variant[16] = '\0';
    snprintf(note, sizeof(note), "wasi (CGI): init %s, %zu preopens, max_memory %llu", init,
             n_preopens, (unsigned long long)fn->limits.max_memory_bytes);
    build_ctx b = {fn, preopens, n_preopens, init};
    kiln_snapshot *snap = NULL;
    int rc = kiln_snapshot_obtain(pre, fn->module_id, variant, note, fn->name, build, &b, &snap,
                                  err);
    if (rc != KILN_OK)
        return rc;
    kiln_snapshot_free(img->snap);
    img->snap = snap;
    img->pre = pre;
    return KILN_OK;
}

void cgi_image_free(cgi_image *img)
{
    kiln_snapshot_free(img->snap);
    img->snap = NULL;
    img->pre = NULL;
}
