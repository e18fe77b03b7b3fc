/*
 * registry.c - the deploy registry (SQLite) and the managed directory it
 * keeps in step. Invariant: after every operation returns, and at every
 * moment between operations, NAME.wasm and NAME.json in the managed
 * directory are the module and settings of NAME's active version, and no
 * file exists for an undeployed name. Operations hold `lock` (one process)
 * and a SQLite write transaction (any process) from the first read to the
 * commit, and write the files before committing, so a crash leaves at worst
 * files newer than the registry; reg_reconcile repairs that at start.
 */
#include "admin/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aot/wasm_reader.h"
#include "base/alloc.h"
#include "component/cm.h"
#include "platform/fs.h"
#include "config/config.h"

#define REG_MAX_MODULE ((size_t)1 << 30) /* sanity bound when reading stored modules */
#define REG_PATH (PATH_MAX + 256)       /* a directory of ours + a file name */

struct reg_registry {
    pthread_mutex_t lock; /* one registry change + managed-dir write at a time */
    sqlite3 *db;
    char home[PATH_MAX];
    char modules[PATH_MAX];
    char managed[PATH_MAX];
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS functions("
    "  name TEXT PRIMARY KEY,"
    "  active_version INTEGER,"            /* NULL = undeployed */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS versions("
    "  name TEXT NOT NULL REFERENCES functions(name),"
    "  version INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  settings TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'pending',"
    "  error TEXT,"
    "  PRIMARY KEY(name, version));"
    "PRAGMA user_version = 1;";

void reg_version_fini(reg_version *v)
{
    if (v == NULL)
        return;
    kiln_free(v->settings);
    v->settings = NULL;
}

bool reg_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > REG_MAX_NAME || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int reg_sha256_hex(const uint8_t *buf, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return KILN_ENOMEM;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return KILN_OK;
}

/* ---- files ------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Write dir/name atomically: a hidden temporary file in the same directory
 * (".NAME.tmp.XXXXXX": neither *.wasm nor a sidecar, so a watcher ignores
 * it), fsync, rename over the target, fsync the directory. */
static int write_atomic(const char *dir, const char *name, const void *data, size_t len,
                        kiln_err *err)
{
    char tmp[REG_PATH], dst[REG_PATH];
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dir, name) >= (int)sizeof(tmp) ||
        snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
        return kiln_err_set(err, KILN_EIO, "%s/%s: path too long", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return kiln_err_set(err, KILN_EIO, "cannot create a file in %s: %s", dir, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    int e = 0;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (e == 0 && fchmod(fd, 0644) != 0)
        e = errno;
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, dst) != 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return kiln_err_set(err, e == ENOSPC ? KILN_ENOSPC : KILN_EIO, "cannot write %s: %s", dst,
                            strerror(e));
    }
    fsync_dir(dir);
    return KILN_OK;
}

/* Read a whole file (at most `max` bytes) into a kiln_malloc'd buffer. */
static int read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (fs_read_file(path, max, out, len) == 0)
        return KILN_OK;
    return errno == ENOENT ? KILN_ENOENT : errno == ENOMEM ? KILN_ENOMEM : KILN_EIO;
}

static void managed_path(const reg_registry *r, const char *name, const char *ext, char *out,
                         size_t cap)
{
    snprintf(out, cap, "%s/%s%s", r->managed, name, ext);
}

/* The sidecar text for a settings document: stable, so reconcile can compare. */
static char *sidecar_text(const char *settings)
{
    json_t *j = json_loads(settings, 0, NULL);
    if (j == NULL)
        return NULL;
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *t = kiln_malloc(n + 2);
    if (t != NULL) {
        memcpy(t, s, n);
        t[n] = '\n';
        t[n + 1] = '\0';
    }
    free(s);
    return t;
}

/* Does the sidecar written for `settings` stay within what the server reads? */
static bool sidecar_fits(const char *settings)
{
    char *t = sidecar_text(settings);
    bool fits = t != NULL && strlen(t) <= REG_MAX_SETTINGS;
    kiln_free(t);
    return fits;
}

/* Remove NAME's files: the module first, so a watcher never serves a module
 * without the settings it was deployed with. */
static void remove_managed(reg_registry *r, const char *name)
{
    char p[REG_PATH];
    static const char *const exts[] = {".wasm", ".json", ".yaml", ".yml"};
    for (size_t i = 0; i < 4; i++) {
        managed_path(r, name, exts[i], p, sizeof(p));
        unlink(p);
    }
    fsync_dir(r->managed);
}

/* Write NAME's files: the sidecar first, the module last (the watcher acts
 * on the module), each atomically. */
static int write_managed(reg_registry *r, const char *name, const uint8_t *wasm, size_t len,
                         const char *settings, kiln_err *err)
{
    char fname[REG_MAX_NAME + 8], p[REG_PATH];
    char *side = sidecar_text(settings);
    if (side == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory writing the settings of '%s'", name);
    snprintf(fname, sizeof(fname), "%s.json", name);
    int rc = write_atomic(r->managed, fname, side, strlen(side), err);
    kiln_free(side);
    if (rc != KILN_OK)
        return rc;
    /* A YAML sidecar would compete with ours; the managed directory is Kiln's. */
    managed_path(r, name, ".yaml", p, sizeof(p));
    unlink(p);
    managed_path(r, name, ".yml", p, sizeof(p));
    unlink(p);
    snprintf(fname, sizeof(fname), "%s.wasm", name);
    return write_atomic(r->managed, fname, wasm, len, err);
}

/* The stored module with hash `sha` (checked against it). */
static int load_module(reg_registry *r, const char *sha, uint8_t **buf, size_t *len,
                       kiln_err *err)
{
    char p[REG_PATH];
    snprintf(p, sizeof(p), "%s/%s.wasm", r->modules, sha);
    int rc = read_all(p, REG_MAX_MODULE, buf, len);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc == KILN_ENOMEM ? rc : KILN_EIO,
                            "stored module %s is missing or unreadable", p);
    char h[65];
    if (reg_sha256_hex(*buf, *len, h) != KILN_OK || strcmp(h, sha) != 0) {
        kiln_free(*buf);
        *buf = NULL;
        return kiln_err_set(err, KILN_EIO, "stored module %s is corrupt (its hash is %s)", p, h);
    }
    return KILN_OK;
}

static int store_module(reg_registry *r, const char *sha, const uint8_t *wasm, size_t len,
                        kiln_err *err)
{
    char p[REG_PATH], fname[80];
    snprintf(p, sizeof(p), "%s/%s.wasm", r->modules, sha);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len)
        return KILN_OK;
    snprintf(fname, sizeof(fname), "%s.wasm", sha);
    return write_atomic(r->modules, fname, wasm, len, err);
}

/* ---- SQL helpers ------------------------------------------------------- */

static int db_fail(reg_registry *r, kiln_err *err, const char *what)
{
    return kiln_err_set(err, KILN_EIO, "registry %s/registry.db: %s: %s", r->home, what,
                        sqlite3_errmsg(r->db));
}

static int exec(reg_registry *r, const char *sql, kiln_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return KILN_OK;
    int rc = kiln_err_set(err, KILN_EIO, "registry %s/registry.db: %s: %s", r->home, sql,
                          msg ? msg : "error");
    sqlite3_free(msg);
    return rc;
}

static sqlite3_stmt *prep(reg_registry *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Active version of `name`, 0 when none; -1 on error. */
static int64_t active_locked(reg_registry *r, const char *name)
{
    sqlite3_stmt *st = prep(r, "SELECT active_version FROM functions WHERE name = ?1");
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t v = 0;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
    else if (s != SQLITE_DONE)
        v = -1;
    sqlite3_finalize(st);
    return v;
}

/* Load version `version` of `name` into *v. KILN_ENOENT when absent. */
static int load_version(reg_registry *r, const char *name, int64_t version, reg_version *v)
{
    memset(v, 0, sizeof(*v));
    sqlite3_stmt *st = prep(r, "SELECT sha256, size, settings, created_at FROM versions "
                               "WHERE name = ?1 AND version = ?2");
    if (st == NULL)
        return KILN_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    int rc = KILN_ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(v->name, sizeof(v->name), "%s", name);
        v->version = version;
        snprintf(v->sha256, sizeof(v->sha256), "%s", (const char *)sqlite3_column_text(st, 0));
        v->size = (uint64_t)sqlite3_column_int64(st, 1);
        v->settings = kiln_strdup((const char *)sqlite3_column_text(st, 2));
        v->created_at = sqlite3_column_int64(st, 3);
        rc = v->settings ? KILN_OK : KILN_ENOMEM;
    }
    sqlite3_finalize(st);
    return rc;
}

static int set_active(reg_registry *r, const char *name, int64_t version)
{
    sqlite3_stmt *st =
        prep(r, "UPDATE functions SET active_version = ?2, updated_at = ?3 WHERE name = ?1");
    if (st == NULL)
        return KILN_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (version > 0)
        sqlite3_bind_int64(st, 2, version);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, now_s());
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? KILN_OK : KILN_EIO;
}

/* Write the managed files of version `version` of `name` (0 = remove them). */
static int materialise(reg_registry *r, const char *name, int64_t version, kiln_err *err)
{
    if (version <= 0) {
        remove_managed(r, name);
        return KILN_OK;
    }
    reg_version v;
    int rc = load_version(r, name, version, &v);
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "version %lld of '%s' is not in the registry",
                            (long long)version, name);
    uint8_t *buf;
    size_t len;
    rc = load_module(r, v.sha256, &buf, &len, err);
    if (rc == KILN_OK) {
        rc = write_managed(r, name, buf, len, v.settings, err);
        kiln_free(buf);
    }
    reg_version_fini(&v);
    return rc;
}

/* ---- open / reconcile -------------------------------------------------- */

int reg_open(const char *home, reg_registry **out, kiln_err *err)
{
    *out = NULL;
    reg_registry *r = kiln_calloc(1, sizeof(*r));
    if (r == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory opening the registry");
    pthread_mutex_init(&r->lock, NULL);
    int rc = KILN_OK;
    if (mkdir_p(home) != 0 || realpath(home, r->home) == NULL) {
        rc = kiln_err_set(err, KILN_EIO, "cannot create %s: %s; set KILN_HOME to a writable "
                          "directory", home, strerror(errno));
        goto fail;
    }
    snprintf(r->modules, sizeof(r->modules), "%.*s/modules", PATH_MAX - 16, r->home);
    snprintf(r->managed, sizeof(r->managed), "%.*s/functions", PATH_MAX - 16, r->home);
    if (mkdir_p(r->modules) != 0 || mkdir_p(r->managed) != 0) {
        rc = kiln_err_set(err, KILN_EIO, "cannot create %s/modules or %s/functions: %s", r->home,
                          r->home, strerror(errno));
        goto fail;
    }
    char db[PATH_MAX];
    snprintf(db, sizeof(db), "%.*s/registry.db", PATH_MAX - 16, r->home);
    if (sqlite3_open_v2(db, &r->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = kiln_err_set(err, KILN_EIO, "cannot open the registry %s: %s", db,
                          r->db ? sqlite3_errmsg(r->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(r->db, 10000);
    rc = exec(r, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                 "PRAGMA foreign_keys = ON;", err);
    if (rc == KILN_OK)
        rc = exec(r, SCHEMA, err);
    if (rc != KILN_OK)
        goto fail;
    *out = r;
    return KILN_OK;
fail:
    reg_close(r);
    return rc;
}

void reg_close(reg_registry *r)
{
    if (r == NULL)
        return;
    if (r->db)
        sqlite3_close(r->db);
    pthread_mutex_destroy(&r->lock);
    kiln_free(r);
}

const char *reg_managed_dir(const reg_registry *r)
{
    return r->managed;
}

/* Do NAME's managed files hold version v (module hash and sidecar text)? */
static bool managed_matches(reg_registry *r, const reg_version *v)
{
    char p[REG_PATH];
    uint8_t *buf;
    size_t len;
    managed_path(r, v->name, ".wasm", p, sizeof(p));
    if (read_all(p, REG_MAX_MODULE, &buf, &len) != KILN_OK)
        return false;
    char h[65] = "";
    reg_sha256_hex(buf, len, h);
    kiln_free(buf);
    if (strcmp(h, v->sha256) != 0)
        return false;
    managed_path(r, v->name, ".json", p, sizeof(p));
    if (read_all(p, REG_MAX_SETTINGS * 2, &buf, &len) != KILN_OK)
        return false;
    char *want = sidecar_text(v->settings);
    bool same = want != NULL && strcmp(want, (const char *)buf) == 0;
    kiln_free(want);
    kiln_free(buf);
    for (const char *ext = ".yaml"; ext; ext = strcmp(ext, ".yaml") == 0 ? ".yml" : NULL) {
        struct stat st;
        managed_path(r, v->name, ext, p, sizeof(p));
        if (stat(p, &st) == 0)
            same = false;
    }
    return same;
}

/* Remove ".*.tmp.*" files a crashed write left in `dir`. */
static void remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char p[REG_PATH];
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.") != NULL) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

int reg_reconcile(reg_registry *r, kiln_err *err)
{
    pthread_mutex_lock(&r->lock);
    remove_temporaries(r->managed);
    remove_temporaries(r->modules);
    int rc = exec(r, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = rc == KILN_OK ? prep(r, "SELECT name, active_version FROM functions") : NULL;
    if (rc == KILN_OK && st == NULL)
        rc = db_fail(r, err, "reading functions");
    while (rc == KILN_OK && sqlite3_step(st) == SQLITE_ROW) {
        char name[REG_MAX_NAME + 1];
        snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 0));
        int64_t active = sqlite3_column_type(st, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 1);
        if (!reg_name_ok(name))
            continue;
        if (active == 0) {
            remove_managed(r, name);
            continue;
        }
        reg_version v;
        if (load_version(r, name, active, &v) != KILN_OK)
            continue;
        if (!managed_matches(r, &v)) {
            kiln_err e;
            memset(&e, 0, sizeof(e));
            if (materialise(r, name, active, &e) != KILN_OK)
                fprintf(stderr, "kiln serve: warning: deployed function '%s' version %lld: %s\n",
                        name, (long long)active, e.msg);
        }
        reg_version_fini(&v);
    }
    sqlite3_finalize(st);
    if (rc == KILN_OK)
        rc = exec(r, "COMMIT", err);
    else
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* ---- operations -------------------------------------------------------- */

/*
 * Check and normalise a settings document: a JSON object without "module",
 * accepted by the configuration parser as a function of kiln.yaml whose
 * module is the stored one. *out is compact JSON with sorted keys.
 */
static int check_settings(const reg_registry *r, const char *name, const char *settings,
                          const char *module_path, char **out, kiln_err *err)
{
    *out = NULL;
    json_error_t je;
    json_t *s = settings && *settings ? json_loads(settings, 0, &je) : json_object();
    if (s == NULL)
        return kiln_err_set(err, KILN_ECONFIG, "settings: invalid JSON at line %d: %s", je.line,
                            je.text);
    if (!json_is_object(s)) {
        json_decref(s);
        return kiln_err_set(err, KILN_ECONFIG,
                            "settings: expected a JSON object of function keys (as in kiln.yaml)");
    }
    if (json_object_get(s, "module") != NULL) {
        json_decref(s);
        return kiln_err_set(err, KILN_ECONFIG, "settings: 'module' is not a setting: the module "
                                               "is the uploaded body");
    }
    char *norm = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *fn = json_deep_copy(s);
    json_decref(s);
    int rc = KILN_OK;
    if (norm == NULL || fn == NULL) {
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory checking settings");
    } else if (strlen(norm) > REG_MAX_SETTINGS || !sidecar_fits(norm)) {
        rc = kiln_err_set(err, KILN_ECONFIG, "settings: larger than %d bytes (as a sidecar file)",
                          REG_MAX_SETTINGS);
    } else {
        /* The same parser, the same messages as a kiln.yaml function. */
        json_object_set_new(fn, "module", json_string(module_path));
        json_t *doc = json_pack("{s:{s:O}}", "functions", name, fn);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        cfg_config *c = NULL;
        kiln_err e;
        memset(&e, 0, sizeof(e));
        if (text == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory checking settings");
        else if (cfg_parse(text, strlen(text), "settings", r->managed, &c, &e) != KILN_OK)
            rc = kiln_err_set(err, e.code == KILN_ENOMEM ? KILN_ENOMEM : KILN_ECONFIG, "%s",
                              e.msg);
        cfg_free(c);
        free(text);
    }
    json_decref(fn);
    if (rc == KILN_OK) {
        *out = kiln_strdup(norm);
        if (*out == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory checking settings");
    }
    free(norm);
    return rc;
}

int reg_deploy(reg_registry *r, const char *name, const uint8_t *wasm, size_t len,
               const char *settings_json, reg_version *out, kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!reg_name_ok(name))
        return kiln_err_set(err, KILN_EINVAL, "bad function name '%s': use 1 to %d letters, "
                            "digits, '_', '-', '.', not starting with '.'", name, REG_MAX_NAME);
    /* Refuse a malformed module before anything changes: a core module
     * through the core reader, a component through the component reader
     * (whether it is a world Kiln serves is for the server to say). */
    kiln_err e;
    memset(&e, 0, sizeof(e));
    int rc;
    if (cm_is_component(wasm, len)) {
        cm_component *comp = NULL;
        rc = cm_parse(wasm, len, &comp, &e);
        cm_free(comp);
    } else {
        kiln_wasm_info info;
        rc = kiln_wasm_parse(wasm, len, &info, &e);
        kiln_wasm_info_free(&info);
    }
    if (rc != KILN_OK)
        return kiln_err_set(err, rc, "module refused: %s", e.msg[0] ? e.msg : kiln_strerror(rc));
    char sha[65];
    if (reg_sha256_hex(wasm, len, sha) != KILN_OK)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory hashing the module");
    /* Storing by content hash changes nothing visible: an unreferenced
     * module is harmless, and the settings check needs a real file. */
    rc = store_module(r, sha, wasm, len, err);
    if (rc != KILN_OK)
        return rc;
    char mpath[REG_PATH];
    snprintf(mpath, sizeof(mpath), "%s/%s.wasm", r->modules, sha);
    char *settings;
    rc = check_settings(r, name, settings_json, mpath, &settings, err);
    if (rc != KILN_OK)
        return rc;

    pthread_mutex_lock(&r->lock);
    int64_t now = now_s(), prev = 0, version = 0;
    rc = exec(r, "BEGIN IMMEDIATE", err);
    if (rc == KILN_OK && (prev = active_locked(r, name)) < 0)
        rc = db_fail(r, err, "reading the active version");
    if (rc == KILN_OK) {
        sqlite3_stmt *st = prep(r, "INSERT INTO functions(name, active_version, created_at, "
                                   "updated_at) VALUES(?1, NULL, ?2, ?2) "
                                   "ON CONFLICT(name) DO NOTHING");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, now);
        }
        if (st == NULL || sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(r, err, "adding the function");
        sqlite3_finalize(st);
    }
    if (rc == KILN_OK) {
        sqlite3_stmt *st = prep(r, "SELECT COALESCE(MAX(version), 0) + 1 FROM versions "
                                   "WHERE name = ?1");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                version = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        if (version <= 0)
            rc = db_fail(r, err, "numbering the version");
    }
    if (rc == KILN_OK) {
        sqlite3_stmt *st = prep(r, "INSERT INTO versions(name, version, sha256, size, settings, "
                                   "created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, version);
            sqlite3_bind_text(st, 3, sha, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
            sqlite3_bind_text(st, 5, settings, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 6, now);
        }
        if (st == NULL || sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(r, err, "adding the version");
        sqlite3_finalize(st);
    }
    if (rc == KILN_OK && set_active(r, name, version) != KILN_OK)
        rc = db_fail(r, err, "activating the version");
    if (rc == KILN_OK) {
        rc = write_managed(r, name, wasm, len, settings, err);
        if (rc != KILN_OK)
            materialise(r, name, prev, NULL); /* put the previous files back */
    }
    if (rc == KILN_OK && exec(r, "COMMIT", err) != KILN_OK) {
        rc = KILN_EIO;
        materialise(r, name, prev, NULL);
    }
    if (rc != KILN_OK)
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&r->lock);

    if (rc == KILN_OK) {
        snprintf(out->name, sizeof(out->name), "%s", name);
        out->version = version;
        out->previous = prev;
        memcpy(out->sha256, sha, sizeof(out->sha256));
        out->size = len;
        out->settings = settings;
        out->created_at = now;
    } else {
        kiln_free(settings);
    }
    return rc;
}

int reg_rollback(reg_registry *r, const char *name, int64_t version, reg_version *out,
                 kiln_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!reg_name_ok(name))
        return kiln_err_set(err, KILN_EINVAL, "bad function name '%s'", name);
    pthread_mutex_lock(&r->lock);
    int64_t prev = 0, target = version;
    int rc = exec(r, "BEGIN IMMEDIATE", err);
    if (rc == KILN_OK) {
        sqlite3_stmt *st = prep(r, "SELECT active_version FROM functions WHERE name = ?1");
        int s = SQLITE_ERROR;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            s = sqlite3_step(st);
            if (s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                prev = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        if (s == SQLITE_DONE)
            rc = kiln_err_set(err, KILN_ENOENT, "no function '%s' was ever deployed", name);
        else if (s != SQLITE_ROW)
            rc = db_fail(r, err, "reading the function");
    }
    if (rc == KILN_OK && target == 0) {
        /* The version before the active one; for an undeployed function its newest. */
        sqlite3_stmt *st = prep(r, prev > 0 ? "SELECT MAX(version) FROM versions "
                                              "WHERE name = ?1 AND version < ?2"
                                            : "SELECT MAX(version) FROM versions WHERE name = ?1");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            if (prev > 0)
                sqlite3_bind_int64(st, 2, prev);
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                target = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        if (target == 0)
            rc = kiln_err_set(err, KILN_EINVAL, "'%s' has no version before %lld to roll back "
                              "to; `kiln ls` or GET /functions/%s lists its versions", name,
                              (long long)prev, name);
    }
    if (rc == KILN_OK) {
        rc = load_version(r, name, target, out);
        if (rc == KILN_ENOENT)
            kiln_err_set(err, rc, "'%s' has no version %lld; GET /functions/%s lists its "
                         "versions", name, (long long)target, name);
        else if (rc != KILN_OK)
            db_fail(r, err, "reading the version");
    }
    if (rc == KILN_OK && set_active(r, name, target) != KILN_OK)
        rc = db_fail(r, err, "activating the version");
    if (rc == KILN_OK) {
        rc = materialise(r, name, target, err);
        if (rc != KILN_OK)
            materialise(r, name, prev, NULL);
    }
    if (rc == KILN_OK && exec(r, "COMMIT", err) != KILN_OK) {
        rc = KILN_EIO;
        materialise(r, name, prev, NULL);
    }
    if (rc != KILN_OK) {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        reg_version_fini(out);
    }
    out->previous = prev;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int reg_delete(reg_registry *r, const char *name, int64_t *n_versions, kiln_err *err)
{
    if (!reg_name_ok(name))
        return kiln_err_set(err, KILN_EINVAL, "bad function name '%s'", name);
    pthread_mutex_lock(&r->lock);
    int64_t prev = 0;
    int rc = exec(r, "BEGIN IMMEDIATE", err);
    if (rc == KILN_OK && (prev = active_locked(r, name)) < 0)
        rc = db_fail(r, err, "reading the function");
    if (rc == KILN_OK && prev == 0)
        rc = kiln_err_set(err, KILN_ENOENT, "'%s' is not deployed", name);
    if (rc == KILN_OK && set_active(r, name, 0) != KILN_OK)
        rc = db_fail(r, err, "undeploying");
    if (rc == KILN_OK)
        remove_managed(r, name);
    if (rc == KILN_OK && exec(r, "COMMIT", err) != KILN_OK) {
        rc = KILN_EIO;
        materialise(r, name, prev, NULL);
    }
    if (rc != KILN_OK)
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == KILN_OK && n_versions != NULL) {
        *n_versions = 0;
        sqlite3_stmt *st = prep(r, "SELECT COUNT(*) FROM versions WHERE name = ?1");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                *n_versions = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void set_status_locked(reg_registry *r, const char *name, int64_t version,
                              const char *status, const char *error)
{
    sqlite3_stmt *st = prep(r, "UPDATE versions SET status = ?3, error = ?4 "
                               "WHERE name = ?1 AND version = ?2");
    if (st == NULL)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
    if (error != NULL && *error)
        sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

void reg_set_status(reg_registry *r, const char *name, int64_t version, const char *status,
                    const char *error)
{
    pthread_mutex_lock(&r->lock);
    set_status_locked(r, name, version, status, error);
    pthread_mutex_unlock(&r->lock);
}

int reg_revert(reg_registry *r, const char *name, int64_t version, int64_t fallback,
               const char *error, kiln_err *err)
{
    pthread_mutex_lock(&r->lock);
    int rc = exec(r, "BEGIN IMMEDIATE", err);
    int64_t active = rc == KILN_OK ? active_locked(r, name) : -1;
    if (rc == KILN_OK) {
        set_status_locked(r, name, version, "failed", error);
        if (active != version) {
            rc = kiln_err_set(err, KILN_ECANCELED, "'%s' changed meanwhile", name);
        } else if (set_active(r, name, fallback) != KILN_OK) {
            rc = db_fail(r, err, "reverting");
        } else {
            rc = materialise(r, name, fallback, err);
            if (rc != KILN_OK)
                materialise(r, name, version, NULL);
        }
    }
    if (rc == KILN_OK || rc == KILN_ECANCELED) {
        /* Keep the recorded error even when the revert itself was not needed. */
        if (exec(r, "COMMIT", rc == KILN_OK ? err : NULL) != KILN_OK)
            rc = KILN_EIO;
    } else {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int64_t reg_active(reg_registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    int64_t v = active_locked(r, name);
    pthread_mutex_unlock(&r->lock);
    return v < 0 ? 0 : v;
}

int64_t reg_version_of_hash(reg_registry *r, const char *name, const char *sha256)
{
    pthread_mutex_lock(&r->lock);
    int64_t v = 0;
    sqlite3_stmt *st = prep(r, "SELECT MAX(version) FROM versions WHERE name = ?1 AND sha256 = ?2");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, sha256, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    return v;
}

/* ---- JSON views -------------------------------------------------------- */

static json_t *settings_json(const unsigned char *text)
{
    json_t *j = text ? json_loads((const char *)text, 0, NULL) : NULL;
    return j ? j : json_object();
}

static json_t *int_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null()
                                                        : json_integer(sqlite3_column_int64(st, col));
}

json_t *reg_list(reg_registry *r, bool all)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st = prep(
        r, "SELECT f.name, f.active_version, v.sha256, v.size, v.settings, f.created_at, "
           "f.updated_at, (SELECT COUNT(*) FROM versions x WHERE x.name = f.name) "
           "FROM functions f LEFT JOIN versions v ON v.name = f.name AND v.version = "
           "f.active_version WHERE ?1 OR f.active_version IS NOT NULL ORDER BY f.name");
    if (st != NULL) {
        sqlite3_bind_int(st, 1, all ? 1 : 0);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string((const char *)sqlite3_column_text(st, 0)));
            json_object_set_new(o, "active_version", int_or_null(st, 1));
            const unsigned char *sha = sqlite3_column_text(st, 2);
            json_object_set_new(o, "sha256", sha ? json_string((const char *)sha) : json_null());
            json_object_set_new(o, "size", int_or_null(st, 3));
            json_object_set_new(o, "settings", settings_json(sqlite3_column_text(st, 4)));
            json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 5)));
            json_object_set_new(o, "updated_at", json_integer(sqlite3_column_int64(st, 6)));
            json_object_set_new(o, "n_versions", json_integer(sqlite3_column_int64(st, 7)));
            json_array_append_new(arr, o);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&r->lock);
    return arr;
}

json_t *reg_get(reg_registry *r, const char *name, bool *found)
{
    *found = false;
    json_t *o = NULL;
    pthread_mutex_lock(&r->lock);
    sqlite3_stmt *st =
        prep(r, "SELECT active_version, created_at, updated_at FROM functions WHERE name = ?1");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *found = true;
            o = json_object();
            json_object_set_new(o, "name", json_string(name));
            json_object_set_new(o, "active_version", int_or_null(st, 0));
            json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 1)));
            json_object_set_new(o, "updated_at", json_integer(sqlite3_column_int64(st, 2)));
        }
    }
    sqlite3_finalize(st);
    if (o != NULL) {
        int64_t active = json_integer_value(json_object_get(o, "active_version"));
        json_t *vs = json_array();
        st = prep(r, "SELECT version, sha256, size, settings, created_at, status, error "
                     "FROM versions WHERE name = ?1 ORDER BY version DESC");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            while (sqlite3_step(st) == SQLITE_ROW) {
                json_t *v = json_object();
                int64_t n = sqlite3_column_int64(st, 0);
                json_object_set_new(v, "version", json_integer(n));
                json_object_set_new(v, "sha256",
                                    json_string((const char *)sqlite3_column_text(st, 1)));
                json_object_set_new(v, "size", json_integer(sqlite3_column_int64(st, 2)));
                json_object_set_new(v, "settings", settings_json(sqlite3_column_text(st, 3)));
                json_object_set_new(v, "created_at", json_integer(sqlite3_column_int64(st, 4)));
                json_object_set_new(v, "status",
                                    json_string((const char *)sqlite3_column_text(st, 5)));
                const unsigned char *e = sqlite3_column_text(st, 6);
                json_object_set_new(v, "error", e ? json_string((const char *)e) : json_null());
                json_object_set_new(v, "active", json_boolean(n == active));
                json_array_append_new(vs, v);
            }
        }
        sqlite3_finalize(st);
        json_object_set_new(o, "versions", vs);
    }
    pthread_mutex_unlock(&r->lock);
    return o;
}
