/*
 * module.c - load an artifact: dlopen it (RTLD_LOCAL, so equal symbol names
 * in two artifacts never bind to each other), find and check its descriptor,
 * and run wasm2c's init_module exactly once per loaded artifact.
 *
 * Artifacts are never dlclose'd: funcrefs, tags and function-type ids of an
 * artifact may outlive every kiln_module reference (shared tables, linked
 * instances). The process keeps one kiln_module per artifact path, so loading
 * the same artifact twice returns the same module.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "runtime/rt_int.h"

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln_module *modules;

int kiln_module_load(const char *so_path, const char *display_name, kiln_module **out,
                     kiln_err *err)
{
    *out = NULL;
    char *real = realpath(so_path, NULL);
    if (real == NULL)
        return kiln_err_set(err, KILN_ENOENT, "%s: artifact %s not found; compile the module first",
                            display_name, so_path);
    pthread_mutex_lock(&modules_lock);
    for (kiln_module *m = modules; m != NULL; m = m->next) {
        if (strcmp(m->path, real) == 0) {
            atomic_fetch_add(&m->refs, 1);
            pthread_mutex_unlock(&modules_lock);
            free(real);
            *out = m;
            return KILN_OK;
        }
    }
    int rc = KILN_OK;
    void *dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    const kiln_descriptor *d = NULL;
    if (dl == NULL) {
        rc = kiln_err_set(err, KILN_ELOAD, "%s: cannot load artifact %s: %s; delete it from the "
                          "cache and compile again", display_name, real, dlerror());
    } else {
        d = dlsym(dl, KILN_DESCRIPTOR_SYMBOL);
        if (d == NULL)
            rc = kiln_err_set(err, KILN_ELOAD, "%s: %s is not a Kiln artifact (no descriptor)",
                              display_name, real);
        else if (d->abi_version != KILN_RT_ABI_VERSION)
            rc = kiln_err_set(err, KILN_ELOAD, "%s: artifact ABI version %u, this Kiln expects %u; "
                              "recompile the module", display_name, d->abi_version,
                              KILN_RT_ABI_VERSION);
    }
    kiln_module *m = NULL;
    if (rc == KILN_OK) {
        m = kiln_calloc(1, sizeof(*m));
        if (m != NULL) {
            m->name = kiln_strdup(display_name);
            m->path = kiln_strdup(real);
        }
        if (m == NULL || m->name == NULL || m->path == NULL) {
            if (m) {
                kiln_free(m->name);
                kiln_free(m->path);
                kiln_free(m);
                m = NULL;
            }
            rc = kiln_err_set(err, KILN_ENOMEM, "%s: out of memory loading module", display_name);
        }
    }
    if (rc == KILN_OK) {
        /* init_module registers function types and tags into the artifact's
         * statics: once per artifact, before any instantiate. */
        d->init_module();
        m->dl = dl;
        m->d = d;
        atomic_store(&m->refs, 1);
        m->next = modules;
        modules = m;
        *out = m;
    }
    /* On failure the handle (if any) stays open: a failed artifact is rare
     * and unloading code we may have partially run is not worth the risk. */
    pthread_mutex_unlock(&modules_lock);
    free(real);
    return rc;
}

kiln_module *kiln_module_retain(kiln_module *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void kiln_module_release(kiln_module *m)
{
    /* The module record lives as long as the process (see file comment);
     * the count only documents ownership and catches double releases. */
    if (m != NULL)
        atomic_fetch_sub(&m->refs, 1);
}

const char *kiln_module_name(const kiln_module *m)
{
    return m ? m->name : "module";
}

uint32_t kiln_module_import_count(const kiln_module *m)
{
    return m->d->n_imports;
}

uint32_t kiln_module_export_count(const kiln_module *m)
{
    return m->d->n_exports;
}

void kiln_module_import(const kiln_module *m, uint32_t i, kiln_extern_info *out)
{
    const kiln_desc_import *im = &m->d->imports[i];
    out->module = im->module;
    out->module_len = im->module_len;
    out->name = im->name;
    out->name_len = im->name_len;
    out->kind = (kiln_extern_kind)im->kind;
    out->type = im->type;
}

void kiln_module_export(const kiln_module *m, uint32_t i, kiln_extern_info *out)
{
    const kiln_desc_export *ex = &m->d->exports[i];
    out->module = NULL;
    out->module_len = 0;
    out->name = ex->name;
    out->name_len = ex->name_len;
    out->kind = (kiln_extern_kind)ex->kind;
    out->type = ex->type;
}

int kiln_module_find_export_n(const kiln_module *m, const char *name, size_t len,
                              kiln_extern_kind kind)
{
    for (uint32_t i = 0; i < m->d->n_exports; i++) {
        const kiln_desc_export *ex = &m->d->exports[i];
        if (ex->kind == (uint32_t)kind && ex->name_len == len && memcmp(ex->name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

int kiln_module_find_export(const kiln_module *m, const char *name, kiln_extern_kind kind)
{
    return kiln_module_find_export_n(m, name, strlen(name), kind);
}
