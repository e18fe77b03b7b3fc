/*
 * cmd_inspect.c - `kiln inspect`: decode a .wasm with the AOT reader and show
 * its imports, exports, memories, tables, start function and likely host ABI,
 * as text or JSON. A component (layer 1) is decoded by src/component instead
 * and shown as its WIT world plus the core modules it embeds. It never
 * compiles or runs anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aot/wasm_reader.h"
#include "base/alloc.h"
#include "cli/cli.h"
#include "component/cm.h"
#include "component/cm_wit.h"
#include "kiln/aot.h"
#include "kiln/runtime.h"
#include "base/sha256.h"
#include "platform/fs.h"

/* Inspecting is cheap, but a file this size is surely not a module. */
#define INSPECT_MAX_BYTES (1024LL * 1024 * 1024)

/* Room for a fully escaped WR_MAX_NAME name ("\xHH" per byte). */
#define DISPLAY_MAX (4 * WR_MAX_NAME + 1)

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln inspect [--json] module.wasm|component.wasm\n"
               "\n"
               "Show a module's imports (module.name and type), exports with signatures,\n"
               "memories (pages of 64 KiB), tables, start function and the host ABI it\n"
               "appears to target: wasi-command, wasi-reactor, extism-plugin, proxy-wasm,\n"
               "otoroshi or core. Names are shown with non-printable bytes as \\xHH.\n"
               "Then the snapshot images `kiln serve` keeps for it in $KILN_HOME/cache\n"
               "(snapshot: true): per cached artifact and configuration, size and when built,\n"
               "and whether one exists under the default configuration (nothing compiled).\n"
               "For a component: its WIT world (imports and exports with their types), the\n"
               "core modules it embeds (size, sha256) and how each export is lifted.\n"
               "\n"
               "options:\n"
               "  --json     print one JSON object instead of text\n"
               "  -h, --help show this help\n");
}

/*
 * Read all of `path` into a fresh buffer. On failure prints the reason naming
 * the path and returns -1.
 */
static int read_module(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error("inspect", "cannot open '%s': %s; check the path", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_error("inspect", "'%s' is not a regular file; pass a .wasm file", path);
        close(fd);
        return -1;
    }
    if (st.st_size > INSPECT_MAX_BYTES) {
        cli_error("inspect", "'%s' is %lld bytes, over the %lld-byte limit for a module", path,
                  (long long)st.st_size, INSPECT_MAX_BYTES);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = kiln_malloc(size);
    if (buf == NULL) {
        cli_error("inspect", "out of memory reading '%s' (%zu bytes)", path, size);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cli_error("inspect", "cannot read '%s': %s", path,
                      n < 0 ? strerror(errno) : "file shrank while reading");
            kiln_free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = size;
    return 0;
}

static bool name_is(const char *name, uint32_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static bool name_has_prefix(const char *name, uint32_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(name, prefix, n) == 0;
}

/*
 * Guess which host ABI a module targets from its import and export names.
 * This is a display aid only, checked most specific first: a proxy-wasm
 * filter or an Otoroshi plugin may also look like a WASI reactor or an Extism
 * plugin. It moves to the ABI registry (each ABI's detect operation) once
 * that exists, and inspect will then ask the registry instead.
 */
static const char *detect_abi(const kiln_wasm_info *info)
{
    for (uint32_t i = 0; i < info->n_exports; i++) {
        const wr_extern *e = &info->exports[i];
        if (e->kind == KILN_EXTERN_FUNC &&
            (name_is(e->name, e->name_len, "proxy_on_context_create") ||
             name_has_prefix(e->name, e->name_len, "proxy_abi_version_")))
            return "proxy-wasm";
    }
    /* Otoroshi's host functions live in `env` (or `env/Otoroshi` for JS
     * plugins) and pass (offset, length) as i64 pairs, which is what tells
     * them apart from proxy-wasm's i32-only `env.proxy_*` functions. */
    bool extism = false;
    for (uint32_t i = 0; i < info->n_imports; i++) {
        const wr_extern *im = &info->imports[i];
        if (im->kind == KILN_EXTERN_FUNC &&
            (name_is(im->module, im->module_len, "env") ||
             name_is(im->module, im->module_len, "env/Otoroshi")) &&
            name_has_prefix(im->name, im->name_len, "proxy_") && strchr(im->type, 'j') != NULL)
            return "otoroshi";
        if (name_is(im->module, im->module_len, "extism:host/env"))
            extism = true;
    }
    if (extism)
        return "extism-plugin";
    for (uint32_t i = 0; i < info->n_exports; i++) {
        const wr_extern *e = &info->exports[i];
        if (e->kind == KILN_EXTERN_FUNC && name_is(e->name, e->name_len, "_start"))
            return "wasi-command";
    }
    for (uint32_t i = 0; i < info->n_exports; i++) {
        const wr_extern *e = &info->exports[i];
        if (e->kind == KILN_EXTERN_FUNC && name_is(e->name, e->name_len, "_initialize"))
            return "wasi-reactor";
    }
    return "core";
}

static const char *kind_name(kiln_extern_kind k)
{
    switch (k) {
    case KILN_EXTERN_FUNC: return "func";
    case KILN_EXTERN_TABLE: return "table";
    case KILN_EXTERN_MEMORY: return "memory";
    case KILN_EXTERN_GLOBAL: return "global";
    case KILN_EXTERN_TAG: return "tag";
    }
    return "?";
}

/* "module.name" for imports, "name" for exports, with bytes made printable. */
static void display_extern(const wr_extern *e, char *dst, size_t size)
{
    char mod[DISPLAY_MAX], name[DISPLAY_MAX];
    kiln_wasm_name_display(e->name, e->name_len, name, sizeof(name));
    if (e->module == NULL) {
        snprintf(dst, size, "%s", name);
        return;
    }
    kiln_wasm_name_display(e->module, e->module_len, mod, sizeof(mod));
    snprintf(dst, size, "%s.%s", mod, name);
}

static void print_externs(const char *title, const wr_extern *list, uint32_t n)
{
    char shown[2 * DISPLAY_MAX + 1];
    int width = 0;
    for (uint32_t i = 0; i < n; i++) {
        display_extern(&list[i], shown, sizeof(shown));
        int w = (int)strlen(shown);
        if (w > width)
            width = w;
    }
    if (width > 40) /* keep the type column in reach; long names just push it */
        width = 40;
    printf("%s (%u):\n", title, (unsigned)n);
    for (uint32_t i = 0; i < n; i++) {
        display_extern(&list[i], shown, sizeof(shown));
        printf("  %-6s %-*s  %s\n", kind_name(list[i].kind), width, shown, list[i].type);
    }
}

static const char *pages(uint64_t n)
{
    return n == 1 ? "page" : "pages";
}

static void print_text(const char *path, size_t size, const kiln_wasm_info *info, const char *abi)
{
    printf("module: %s (%zu bytes)\n", path, size);
    printf("abi: %s\n", abi);
    print_externs("imports", info->imports, info->n_imports);
    print_externs("exports", info->exports, info->n_exports);
    printf("memories (%u):\n", (unsigned)info->n_memories);
    for (uint32_t i = 0; i < info->n_memories; i++) {
        const wr_limits *m = &info->memories[i];
        printf("  memory %u: initial %llu %s", (unsigned)i, (unsigned long long)m->min,
               pages(m->min));
        if (m->has_max)
            printf(", max %llu %s", (unsigned long long)m->max, pages(m->max));
        else
            printf(", no max");
        printf("%s\n", m->imported ? " (imported)" : "");
    }
    printf("tables (%u):\n", (unsigned)info->n_tables);
    for (uint32_t i = 0; i < info->n_tables; i++) {
        const wr_limits *t = &info->tables[i];
        printf("  table %u: %s, initial %llu", (unsigned)i,
               t->ref == KILN_T_EXTERNREF ? "externref" : "funcref", (unsigned long long)t->min);
        if (t->has_max)
            printf(", max %llu", (unsigned long long)t->max);
        else
            printf(", no max");
        printf("%s\n", t->imported ? " (imported)" : "");
    }
    printf("functions: %u (%u imported)\n", (unsigned)info->n_funcs,
           (unsigned)info->n_func_imports);
    printf("globals: %u (%u imported)\n", (unsigned)info->n_globals,
           (unsigned)info->n_global_imports);
    if (info->has_start)
        printf("start: function %u (%s)\n", (unsigned)info->start_func,
               info->types[info->func_types[info->start_func]]);
    else
        printf("start: none\n");
}

/* json_object_set_new that tolerates a NULL value (allocation failure),
 * which then just leaves the key out. */
static void put(json_t *obj, const char *key, json_t *v)
{
    if (v != NULL)
        json_object_set_new(obj, key, v);
}

static json_t *limits_json(const wr_limits *l)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (l->ref != 0)
        put(o, "type", json_string(l->ref == KILN_T_EXTERNREF ? "externref" : "funcref"));
    put(o, "initial", json_integer((json_int_t)l->min));
    put(o, "max", l->has_max ? json_integer((json_int_t)l->max) : json_null());
    put(o, "imported", json_boolean(l->imported));
    return o;
}

/*
 * JSON carries the exact names: they are valid UTF-8 (the reader checked),
 * jansson escapes control characters and NULs, and JSON_ENSURE_ASCII keeps
 * the output plain ASCII, so nothing raw reaches a terminal.
 */
static void inspect_images(const uint8_t *buf, size_t size, json_t *root);
static int print_json(const char *path, const uint8_t *buf, size_t size, const kiln_wasm_info *info,
                      const char *abi)
{
    json_t *root = json_object(), *imports = json_array(), *exports = json_array();
    json_t *memories = json_array(), *tables = json_array();
    if (root == NULL || imports == NULL || exports == NULL || memories == NULL ||
        tables == NULL) {
        json_decref(root);
        json_decref(imports);
        json_decref(exports);
        json_decref(memories);
        json_decref(tables);
        cli_error("inspect", "out of memory building JSON");
        return 1;
    }
    put(root, "file", json_string(path));
    put(root, "size", json_integer((json_int_t)size));
    put(root, "abi", json_string(abi));
    for (uint32_t i = 0; i < info->n_imports; i++) {
        const wr_extern *e = &info->imports[i];
        json_t *o = json_object();
        put(o, "module", json_stringn(e->module, e->module_len));
        put(o, "name", json_stringn(e->name, e->name_len));
        put(o, "kind", json_string(kind_name(e->kind)));
        put(o, "type", json_string(e->type));
        json_array_append_new(imports, o);
    }
    for (uint32_t i = 0; i < info->n_exports; i++) {
        const wr_extern *e = &info->exports[i];
        json_t *o = json_object();
        put(o, "name", json_stringn(e->name, e->name_len));
        put(o, "kind", json_string(kind_name(e->kind)));
        put(o, "index", json_integer(e->index));
        put(o, "type", json_string(e->type));
        json_array_append_new(exports, o);
    }
    for (uint32_t i = 0; i < info->n_memories; i++)
        json_array_append_new(memories, limits_json(&info->memories[i]));
    for (uint32_t i = 0; i < info->n_tables; i++)
        json_array_append_new(tables, limits_json(&info->tables[i]));
    put(root, "imports", imports);
    put(root, "exports", exports);
    put(root, "memories", memories);
    put(root, "tables", tables);
    put(root, "functions", json_integer(info->n_funcs));
    put(root, "globals", json_integer(info->n_globals));
    put(root, "start", info->has_start ? json_integer(info->start_func) : json_null());
    inspect_images(buf, size, root);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (text == NULL) {
        cli_error("inspect", "out of memory formatting JSON");
        return 1;
    }
    printf("%s\n", text);
    free(text); /* jansson's allocator, not Kiln's */
    return 0;
}


/* ---- snapshot images (docs/internals/snapshot.md "Images on disk") ---- */

typedef struct img_list {
    const char *prefix; /* "<artifact key>-" */
    char dir[4200];
    const char *tier;
    json_t *arr; /* --json: collects; else printed */
    int n, n_default;
} img_list;

static int img_one(const char *name, void *ctx)
{
    img_list *l = ctx;
    size_t pl = strlen(l->prefix), nl = strlen(name);
    if (strncmp(name, l->prefix, pl) != 0 || nl < 4 || strcmp(name + nl - 4, ".img") != 0)
        return 0;
    char path[4600];
    snprintf(path, sizeof(path), "%s/%s", l->dir, name);
    kiln_snapshot_file_info fi;
    kiln_err err = {0};
    bool ok = kiln_snapshot_file_info_get(path, &fi, &err) == KILN_OK;
    char when[64] = "?";
    time_t t = (time_t)fi.created;
    struct tm tm;
    if (ok && gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    bool is_default = ok && strncmp(fi.note, "default", 7) == 0;
    l->n++;
    l->n_default += is_default;
    if (l->arr != NULL) {
        json_t *o = json_object();
        put(o, "path", json_string(path));
        put(o, "tier", json_string(l->tier));
        put(o, "usable", json_boolean(ok));
        if (ok) {
            put(o, "config", json_string(fi.note));
            put(o, "default_config", json_boolean(is_default));
            put(o, "file_bytes", json_integer((json_int_t)fi.file_bytes));
            put(o, "memory_image_bytes", json_integer((json_int_t)fi.info.image_bytes));
            put(o, "memory_bytes", json_integer((json_int_t)fi.info.memory_bytes));
            put(o, "built", json_string(when));
        } else {
            put(o, "error", json_string(err.msg));
        }
        json_array_append_new(l->arr, o);
    } else if (ok) {
        const char *variant = name + pl;
        printf("  %s, config %.16s (%s): %llu bytes (memory image %llu of %llu), "
               "built %s\n",
               l->tier, variant, fi.note, (unsigned long long)fi.file_bytes,
               (unsigned long long)fi.info.image_bytes, (unsigned long long)fi.info.memory_bytes,
               when);
    } else {
        printf("  %s: unusable: %s\n", l->tier, err.msg);
    }
    return 0;
}

/* Images made for this module: under its SHA-256 (any compile tier), and
 * under its cached artifacts (the default compiler at -O2 and the fast tier;
 * images only that artifact can load), looked up without compiling. */
static void inspect_images(const uint8_t *buf, size_t size, json_t *root)
{
    static const struct {
        kiln_aot_tier tier;
        const char *name;
    } tiers[] = {{KILN_AOT_TIER_OPTIMIZED, "optimized"}, {KILN_AOT_TIER_FAST, "fast"}};
    json_t *arr = root != NULL ? json_array() : NULL;
    int n = 0, n_default = 0, n_artifacts = 0;
    if (root == NULL)
        printf("snapshot images:\n");
    char dir[4200] = "";
    for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
        kiln_aot_options o;
        memset(&o, 0, sizeof(o));
        o.opt_level = -1;
        o.tier = tiers[i].tier;
        o.cache_only = true;
        kiln_aot_result r;
        kiln_err err = {0};
        if (kiln_aot_compile(buf, size, "module", &o, &r, &err) != KILN_OK)
            continue;
        n_artifacts++;
        img_list l = {.tier = i == 0 ? "optimized artifact" : "fast artifact", .arr = arr};
        char prefix[80];
        snprintf(prefix, sizeof(prefix), "%s-", r.key);
        l.prefix = prefix;
        const char *slash = strrchr(r.so_path, '/');
        snprintf(l.dir, sizeof(l.dir), "%.*s/images", slash ? (int)(slash - r.so_path) : 1,
                 slash ? r.so_path : ".");
        fs_list_dir(l.dir, img_one, &l);
        n += l.n;
        n_default += l.n_default;
        snprintf(dir, sizeof(dir), "%s", l.dir);
    }
    if (dir[0] != '\0') {
        char sha[65], prefix[80];
        kiln_sha256_hex(buf, size, sha);
        snprintf(prefix, sizeof(prefix), "%s-", sha);
        img_list l = {.tier = "any compile tier", .arr = arr, .prefix = prefix};
        snprintf(l.dir, sizeof(l.dir), "%s", dir);
        fs_list_dir(l.dir, img_one, &l);
        n += l.n;
        n_default += l.n_default;
    }
    if (root != NULL) {
        put(root, "snapshot_images", arr);
        put(root, "snapshot_default_config", json_boolean(n_default > 0));
        return;
    }
    if (n == 0)
        printf("  none%s\n", n_artifacts == 0 ? " (the module is not compiled in the cache)" : "");
    printf("  under the default configuration: %s\n", n_default > 0 ? "yes" : "no");
}

/* sha256 of n bytes as 64 hex digits; "?" if the digest fails. */
static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        snprintf(out, 65, "?");
        return;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* How a component export reaches guest code: "core export 'handle' of core
 * instance 0 (module 0), memory, realloc, post-return, utf8". */
static void describe_lift(const cm_component *c, const cm_extern *e, char *dst, size_t size)
{
    const cm_func *fn = c->space[CM_SORT_FUNC][e->index];
    if (fn->how != CM_FUNC_LIFT) {
        snprintf(dst, size, "%s", fn->how == CM_FUNC_IMPORT ? "re-exported import" : "alias");
        return;
    }
    const cm_core_func *cf = c->space[CM_SORT_CORE_FUNC][fn->core_func];
    char where[256] = "a canonical built-in";
    if (cf->how == CM_CORE_ALIAS) {
        const cm_core_instance *ci = c->space[CM_SORT_CORE_INSTANCE][cf->instance];
        if (ci->instantiate)
            snprintf(where, sizeof(where), "core export '%.100s' of core instance %u (module %u)",
                     cf->name, (unsigned)cf->instance, (unsigned)ci->module);
        else
            snprintf(where, sizeof(where), "core export '%.100s' of core instance %u", cf->name,
                     (unsigned)cf->instance);
    }
    static const char *const enc[] = {"utf8", "utf16", "latin1+utf16"};
    snprintf(dst, size, "%s%s%s%s, %s%s", where, fn->opts.has_memory ? ", memory" : "",
             fn->opts.has_realloc ? ", realloc" : "",
             fn->opts.has_post_return ? ", post-return" : "", enc[fn->opts.encoding],
             fn->opts.async ? ", async" : "");
}

static int inspect_component(const char *path, const uint8_t *buf, size_t size, bool json)
{
    cm_component *c;
    kiln_err err = {0};
    if (cm_parse(buf, size, &c, &err) != KILN_OK) {
        cli_error("inspect", "%s: %s", path, err.msg);
        return 1;
    }
    char *wit = NULL;
    size_t wit_len = 0;
    FILE *mf = open_memstream(&wit, &wit_len);
    if (mf == NULL) {
        cm_free(c);
        cli_error("inspect", "out of memory");
        return 1;
    }
    cm_wit_world(c, mf);
    fclose(mf);
    int rc = 0;
    if (!json) {
        printf("component: %s (%zu bytes)\n", path, size);
        fputs(wit, stdout);
        printf("core modules (%u):\n", (unsigned)c->n_modules);
    }
    json_t *root = json ? json_object() : NULL, *mods = json ? json_array() : NULL;
    json_t *lifts = json ? json_array() : NULL;
    for (uint32_t i = 0; i < c->n_modules; i++) {
        const cm_module *m = c->modules[i];
        char hex[65];
        sha256_hex(buf + m->offset, m->len, hex);
        kiln_wasm_info info;
        kiln_err merr = {0};
        bool ok = kiln_wasm_parse(buf + m->offset, m->len, &info, &merr) == KILN_OK;
        if (json) {
            json_t *o = json_object();
            put(o, "size", json_integer((json_int_t)m->len));
            put(o, "sha256", json_string(hex));
            if (ok) {
                put(o, "imports", json_integer(info.n_imports));
                put(o, "exports", json_integer(info.n_exports));
            } else {
                put(o, "error", json_string(merr.msg));
            }
            json_array_append_new(mods, o);
        } else if (ok) {
            printf("  module %u: %zu bytes, sha256 %s, %u imports, %u exports\n", (unsigned)i,
                   m->len, hex, (unsigned)info.n_imports, (unsigned)info.n_exports);
        } else {
            printf("  module %u: %zu bytes, sha256 %s, not readable: %s\n", (unsigned)i, m->len,
                   hex, merr.msg);
        }
        if (ok)
            kiln_wasm_info_free(&info);
    }
    if (!json)
        printf("lifted exports:\n");
    for (uint32_t i = 0; i < c->n_exports; i++) {
        const cm_extern *e = &c->exports[i];
        if (e->sort != CM_SORT_FUNC)
            continue;
        char how[512];
        describe_lift(c, e, how, sizeof(how));
        if (json) {
            json_t *o = json_object();
            put(o, "name", json_string(e->name));
            put(o, "lift", json_string(how));
            json_array_append_new(lifts, o);
        } else {
            printf("  %s <- %s\n", e->name, how);
        }
    }
    if (json) {
        put(root, "file", json_string(path));
        put(root, "size", json_integer((json_int_t)size));
        put(root, "kind", json_string("component"));
        put(root, "wit", json_stringn(wit, wit_len));
        put(root, "core_modules", mods);
        put(root, "exports", lifts);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        json_decref(root);
        if (text == NULL) {
            cli_error("inspect", "out of memory formatting JSON");
            rc = 1;
        } else {
            printf("%s\n", text);
            free(text);
        }
    }
    free(wit); /* open_memstream's buffer is libc's */
    cm_free(c);
    return rc;
}

int cmd_inspect(int argc, char **argv)
{
    bool json = false, options_done = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            usage(stdout);
            return 0;
        } else if (!options_done && strcmp(a, "--json") == 0) {
            json = true;
        } else if (!options_done && strcmp(a, "--") == 0) {
            options_done = true;
        } else if (!options_done && a[0] == '-' && a[1] != '\0') {
            cli_error("inspect", "unknown option '%s'; see `kiln inspect --help`", a);
            return 2;
        } else if (path == NULL) {
            path = a;
        } else {
            cli_error("inspect",
                      "more than one module given ('%s' and '%s'); inspect one at a time", path,
                      a);
            return 2;
        }
    }
    if (path == NULL) {
        cli_error("inspect", "no module given");
        usage(stderr);
        return 2;
    }

    uint8_t *buf;
    size_t size;
    if (read_module(path, &buf, &size) != 0)
        return 1;
    if (cm_is_component(buf, size)) {
        int crc = inspect_component(path, buf, size, json);
        kiln_free(buf);
        if (fflush(stdout) != 0) {
            cli_error("inspect", "cannot write output: %s", strerror(errno));
            crc = 1;
        }
        return crc;
    }
    kiln_wasm_info info;
    kiln_err err = {0};
    if (kiln_wasm_parse(buf, size, &info, &err) != KILN_OK) {
        cli_error("inspect", "%s: %s", path, err.msg);
        kiln_free(buf);
        return 1;
    }
    const char *abi = detect_abi(&info);
    int rc = 0;
    if (json) {
        rc = print_json(path, buf, size, &info, abi);
    } else {
        print_text(path, size, &info, abi);
        inspect_images(buf, size, NULL);
    }
    kiln_free(buf);
    kiln_wasm_info_free(&info);
    if (fflush(stdout) != 0) {
        cli_error("inspect", "cannot write output: %s", strerror(errno));
        rc = 1;
    }
    return rc;
}
