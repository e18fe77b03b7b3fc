/*
 * xtm_manifest.c - the Extism manifest (extism-abi.md §9.1) as `kiln call
 * --manifest` and the library read it: wasm modules (path or base64 data,
 * optional sha256 and name; several are linked by name), memory limits, config, allowed_hosts, allowed_paths, timeout_ms,
 * and Kiln's allow_http_response_headers.
 * Unknown fields are rejected, as the Rust runtime does.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "abi/extism/extism.h"
#include "base/alloc.h"

static void module_fini(xtm_manifest_module *w);

void xtm_manifest_fini(xtm_manifest *m)
{
    kiln_free(m->wasm_path);
    kiln_free(m->wasm_data);
    kiln_free(m->wasm_hash);
    kiln_free(m->wasm_name);
    for (size_t i = 0; i < m->n_modules; i++)
        module_fini(&m->modules[i]);
    kiln_free(m->modules);
    for (size_t i = 0; i < m->n_config; i++) {
        kiln_free((void *)m->config[i].name);
        kiln_free((void *)m->config[i].value);
    }
    kiln_free(m->config);
    for (size_t i = 0; i < m->n_allowed_hosts; i++)
        kiln_free(m->allowed_hosts[i]);
    kiln_free(m->allowed_hosts);
    for (size_t i = 0; i < m->n_allowed_paths; i++) {
        kiln_free((void *)m->allowed_paths[i].host_path);
        kiln_free((void *)m->allowed_paths[i].guest_path);
    }
    kiln_free(m->allowed_paths);
    memset(m, 0, sizeof(*m));
}

int xtm_check_hash(const uint8_t *data, size_t len, const char *expected, kiln_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return kiln_err_set(err, KILN_EIO, "cannot compute SHA-256");
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strcasecmp(hex, expected) != 0)
        return kiln_err_set(err, KILN_EINVAL, "Hash mismatch, found %s but expected %s", hex,
                            expected);
    return KILN_OK;
}

/* Reject keys of `o` not in the NULL-terminated list `known`. */
static int only_known(json_t *o, const char *where, const char *const *known, kiln_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], k) != 0)
            i++;
        if (known[i] == NULL)
            return kiln_err_set(err, KILN_ECONFIG,
                                "manifest: unknown field `%s` in %s; see the Extism manifest "
                                "schema",
                                k, where);
    }
    return KILN_OK;
}

/* Optional non-negative integer field; -1 when absent or null. */
static int get_uint(json_t *o, const char *key, const char *where, long long *out, kiln_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = -1;
    if (v == NULL || json_is_null(v))
        return KILN_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return kiln_err_set(err, KILN_ECONFIG,
                            "manifest: %s%s must be a non-negative integer", where, key);
    *out = (long long)json_integer_value(v);
    return KILN_OK;
}

static char *resolve_path(const char *path, const char *base_dir)
{
    if (path[0] == '/' || base_dir == NULL || access(path, F_OK) == 0)
        return kiln_strdup(path);
    size_t n = strlen(base_dir) + strlen(path) + 2;
    char *p = kiln_malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", base_dir, path);
    return p;
}

static void module_fini(xtm_manifest_module *w)
{
    kiln_free(w->name);
    kiln_free(w->path);
    kiln_free(w->data);
    kiln_free(w->hash);
    memset(w, 0, sizeof(*w));
}

/* One entry of `wasm` into *out. */
static int parse_module(json_t *w, size_t i, const char *base_dir, xtm_manifest_module *out,
                        kiln_err *err)
{
    static const char *const wasm_keys[] = {"path", "data", "url", "name", "hash",
                                            "headers", "method", NULL};
    char where[32];
    snprintf(where, sizeof(where), "wasm[%zu]", i);
    if (!json_is_object(w))
        return kiln_err_set(err, KILN_ECONFIG, "manifest: %s must be an object", where);
    int rc = only_known(w, where, wasm_keys, err);
    if (rc != KILN_OK)
        return rc;
    json_t *path = json_object_get(w, "path"), *data = json_object_get(w, "data");
    json_t *url = json_object_get(w, "url"), *hash = json_object_get(w, "hash");
    json_t *name = json_object_get(w, "name");
    int sources = (path != NULL) + (data != NULL) + (url != NULL);
    if (sources != 1)
        return kiln_err_set(err, KILN_ECONFIG,
                            "manifest: %s needs exactly one of `path`, `data` or `url`", where);
    if (url != NULL)
        return kiln_err_set(err, KILN_EUNSUPPORTED,
                            "manifest: %s.url is not supported; download the module and "
                            "give its `path`", where);
    if (name != NULL && !json_is_null(name) &&
        (!json_is_string(name) || json_string_length(name) == 0))
        return kiln_err_set(err, KILN_ECONFIG, "manifest: %s.name must be a non-empty string",
                            where);
    out->name = kiln_strdup(name != NULL && json_is_string(name) ? json_string_value(name)
                                                                 : "main");
    if (out->name == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    if (hash != NULL && !json_is_null(hash)) {
        if (!json_is_string(hash))
            return kiln_err_set(err, KILN_ECONFIG, "manifest: %s.hash must be a string", where);
        out->hash = kiln_strdup(json_string_value(hash));
        if (out->hash == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    }
    if (path != NULL) {
        if (!json_is_string(path) || json_string_length(path) == 0)
            return kiln_err_set(err, KILN_ECONFIG, "manifest: %s.path must be a string", where);
        out->path = resolve_path(json_string_value(path), base_dir);
        return out->path ? KILN_OK : kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    }
    if (!json_is_string(data))
        return kiln_err_set(err, KILN_EUNSUPPORTED,
                            "manifest: %s.data must be a base64 string (in-process "
                            "{ptr, len} data is for embedders)", where);
    if (xtm_base64_decode(json_string_value(data), json_string_length(data), &out->data,
                          &out->len) != KILN_OK)
        return kiln_err_set(err, KILN_ECONFIG, "manifest: %s.data is not valid base64", where);
    return KILN_OK;
}

/* Extism's rules (extism-abi.md §5.3): names default to "main", duplicates
 * are refused, the module named "main" (or the last) is the plugin and the
 * others are linked into it by name. */
static int parse_wasm(json_t *arr, const char *base_dir, xtm_manifest *m, kiln_err *err)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return kiln_err_set(err, KILN_ECONFIG, "No wasm files specified in Extism manifest");
    size_t n = json_array_size(arr);
    xtm_manifest_module *all = kiln_calloc(n, sizeof(*all));
    if (all == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    int rc = KILN_OK;
    size_t main_i = n - 1;
    for (size_t i = 0; i < n && rc == KILN_OK; i++) {
        rc = parse_module(json_array_get(arr, i), i, base_dir, &all[i], err);
        for (size_t j = 0; j < i && rc == KILN_OK; j++)
            if (strcmp(all[j].name, all[i].name) == 0)
                rc = kiln_err_set(err, KILN_ECONFIG,
                                  "Duplicate module name found in Extism manifest: %s",
                                  all[i].name);
        if (rc == KILN_OK && strcmp(all[i].name, "main") == 0)
            main_i = i;
    }
    if (rc == KILN_OK && n > 1) {
        m->modules = kiln_calloc(n - 1, sizeof(*m->modules));
        if (m->modules == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    }
    if (rc != KILN_OK) {
        for (size_t i = 0; i < n; i++)
            module_fini(&all[i]);
        kiln_free(all);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (i != main_i)
            m->modules[m->n_modules++] = all[i];
    m->wasm_name = all[main_i].name;
    m->wasm_path = all[main_i].path;
    m->wasm_data = all[main_i].data;
    m->wasm_len = all[main_i].len;
    m->wasm_hash = all[main_i].hash;
    kiln_free(all);
    return KILN_OK;
}

static int parse_memory(json_t *mem, xtm_manifest *m, kiln_err *err)
{
    static const char *const keys[] = {"max_pages", "max_http_response_bytes", "max_var_bytes",
                                       NULL};
    if (mem == NULL || json_is_null(mem))
        return KILN_OK;
    if (!json_is_object(mem))
        return kiln_err_set(err, KILN_ECONFIG, "manifest: memory must be an object");
    int rc = only_known(mem, "memory", keys, err);
    if (rc == KILN_OK)
        rc = get_uint(mem, "max_pages", "memory.", &m->max_pages, err);
    if (rc == KILN_OK)
        rc = get_uint(mem, "max_http_response_bytes", "memory.", &m->max_http_response_bytes,
                      err);
    if (rc == KILN_OK)
        rc = get_uint(mem, "max_var_bytes", "memory.", &m->max_var_bytes, err);
    return rc;
}

static int parse_config(json_t *cfg, xtm_manifest *m, kiln_err *err)
{
    if (cfg == NULL || json_is_null(cfg))
        return KILN_OK;
    if (!json_is_object(cfg))
        return kiln_err_set(err, KILN_ECONFIG, "manifest: config must be an object of strings");
    size_t n = json_object_size(cfg);
    m->config = kiln_calloc(n ? n : 1, sizeof(*m->config));
    if (m->config == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v) {
        if (!json_is_string(v))
            return kiln_err_set(err, KILN_ECONFIG, "manifest: config.%s must be a string", k);
        char *kk = kiln_strdup(k), *vv = kiln_strdup(json_string_value(v));
        if (kk == NULL || vv == NULL) {
            kiln_free(kk);
            kiln_free(vv);
            return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
        }
        m->config[m->n_config].name = kk;
        m->config[m->n_config++].value = vv;
    }
    return KILN_OK;
}

static int parse_hosts(json_t *hosts, xtm_manifest *m, kiln_err *err)
{
    if (hosts == NULL || json_is_null(hosts))
        return KILN_OK;
    if (!json_is_array(hosts))
        return kiln_err_set(err, KILN_ECONFIG, "manifest: allowed_hosts must be an array");
    size_t n = json_array_size(hosts);
    m->allowed_hosts = kiln_calloc(n ? n : 1, sizeof(char *));
    if (m->allowed_hosts == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *h = json_array_get(hosts, i);
        if (!json_is_string(h))
            return kiln_err_set(err, KILN_ECONFIG, "manifest: allowed_hosts[%zu] must be a string",
                                i);
        m->allowed_hosts[i] = kiln_strdup(json_string_value(h));
        if (m->allowed_hosts[i] == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
        m->n_allowed_hosts++;
    }
    return KILN_OK;
}

static int parse_paths(json_t *paths, xtm_manifest *m, kiln_err *err)
{
    if (paths == NULL || json_is_null(paths))
        return KILN_OK;
    if (!json_is_object(paths))
        return kiln_err_set(err, KILN_ECONFIG,
                            "manifest: allowed_paths must be an object (host path -> guest "
                            "path)");
    size_t n = json_object_size(paths);
    m->allowed_paths = kiln_calloc(n ? n : 1, sizeof(*m->allowed_paths));
    if (m->allowed_paths == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(paths, k, v) {
        if (!json_is_string(v))
            return kiln_err_set(err, KILN_ECONFIG, "manifest: allowed_paths.%s must be a string",
                                k);
        kiln_wasi_preopen *p = &m->allowed_paths[m->n_allowed_paths];
        bool ro = strncmp(k, "ro:", 3) == 0;
        p->host_path = kiln_strdup(ro ? k + 3 : k);
        p->guest_path = kiln_strdup(json_string_value(v));
        p->read_only = ro;
        m->n_allowed_paths++;
        if (p->host_path == NULL || p->guest_path == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "manifest: out of memory");
    }
    return KILN_OK;
}

int xtm_manifest_parse(const char *json, size_t len, const char *base_dir, xtm_manifest *m,
                       kiln_err *err)
{
    static const char *const top_keys[] = {"wasm",          "memory",        "config",
                                           "allowed_hosts", "allowed_paths", "timeout_ms",
                                           "allow_http_response_headers", NULL};
    memset(m, 0, sizeof(*m));
    m->max_pages = m->max_http_response_bytes = m->max_var_bytes = m->timeout_ms = -1;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (root == NULL)
        return kiln_err_set(err, KILN_ECONFIG, "manifest: invalid JSON at line %d: %s", je.line,
                            je.text);
    int rc = KILN_OK;
    if (!json_is_object(root))
        rc = kiln_err_set(err, KILN_ECONFIG, "manifest: the top level must be a JSON object");
    if (rc == KILN_OK)
        rc = only_known(root, "the manifest", top_keys, err);
    if (rc == KILN_OK)
        rc = parse_wasm(json_object_get(root, "wasm"), base_dir, m, err);
    if (rc == KILN_OK)
        rc = parse_memory(json_object_get(root, "memory"), m, err);
    if (rc == KILN_OK)
        rc = parse_config(json_object_get(root, "config"), m, err);
    if (rc == KILN_OK)
        rc = parse_hosts(json_object_get(root, "allowed_hosts"), m, err);
    if (rc == KILN_OK)
        rc = parse_paths(json_object_get(root, "allowed_paths"), m, err);
    if (rc == KILN_OK)
        rc = get_uint(root, "timeout_ms", "", &m->timeout_ms, err);
    if (rc == KILN_OK) {
        /* Kiln's extension: the host option of Extism's SDKs
         * (extism_plugin_allow_http_response_headers) as a manifest field. */
        json_t *h = json_object_get(root, "allow_http_response_headers");
        if (h != NULL && !json_is_null(h) && !json_is_boolean(h))
            rc = kiln_err_set(err, KILN_ECONFIG,
                              "manifest: allow_http_response_headers must be a boolean");
        m->http_response_headers = h != NULL && json_is_true(h);
    }
    json_decref(root);
    if (rc != KILN_OK)
        xtm_manifest_fini(m);
    return rc;
}
