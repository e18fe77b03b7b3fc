/*
 * cmd_kv.c - `kiln kv`: read and change the persistent key-value store
 * (SQLite, $KILN_HOME/kv.db) directly, e.g. to inspect what functions stored
 * or to seed a namespace. Safe while a server uses the same database: SQLite
 * locks it, and each write is its own committed transaction.
 *
 * Exit status: 0 success, 1 not found or a store error, 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "config/config.h"
#include "kiln/kv.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln kv [--db PATH] get NAMESPACE KEY\n"
            "       kiln kv [--db PATH] set [--ttl DURATION] [--nx] NAMESPACE KEY VALUE|-\n"
            "       kiln kv [--db PATH] del NAMESPACE KEY\n"
            "       kiln kv [--db PATH] incr NAMESPACE KEY [DELTA]\n"
            "       kiln kv [--db PATH] ls [NAMESPACE [PREFIX]]\n"
            "       kiln kv [--db PATH] dead\n"
            "\n"
            "Read and change the persistent key-value store that functions use through\n"
            "the kiln.kv_* host functions and Otoroshi's map and data-store functions.\n"
            "NAMESPACE is a global namespace's name, or fn:NAME for the private namespace\n"
            "of function NAME. `ls` without a namespace lists the namespaces holding keys.\n"
            "A VALUE of - is read from standard input. `get` prints the value as stored.\n"
            "`incr` adds DELTA (default 1; negative subtracts, e.g. -5) to a decimal\n"
            "64-bit integer value and prints the result; a result outside the 64-bit\n"
            "range is an error and changes nothing. `dead` lists the storage events whose\n"
            "handler failed every attempt (newest first): id, function, namespace, type,\n"
            "key, attempts and cause, tab-separated.\n"
            "\n"
            "options:\n"
            "  --db PATH        the database (default $KILN_HOME/kv.db, ~/.kiln/kv.db)\n"
            "  --ttl DURATION   expire the key after DURATION (250ms, 10s, 5m, 1h)\n"
            "  --nx             set only if the key does not exist (exit 1 if it does)\n"
            "  -h, --help       show this help\n");
}

static int read_stdin(uint8_t **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *b = kiln_malloc(cap);
    while (b != NULL) {
        if (n == cap) {
            if (cap >= KILN_KV_MAX_VALUE_BYTES * 2u)
                break;
            uint8_t *nb = kiln_realloc(b, cap * 2);
            if (nb == NULL)
                break;
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            *out = b;
            *len = n;
            return 0;
        }
    }
    kiln_free(b);
    return -1;
}

/* The namespace as the store names it, checked. */
static bool ns_ok(const char *ns)
{
    if (strncmp(ns, "fn:", 3) == 0)
        return ns[3] != '\0';
    return kiln_kv_ns_name_valid(ns);
}

/* `dead`: the dead-lettered storage events (docs/internals/events.md). */
static int list_dead(kiln_kv_store *s)
{
    kiln_kv_events ev;
    int rc = s->ops->events_dead(s, 10000, &ev);
    if (rc != KILN_OK)
        return rc;
    static const char *const types[] = {"object-added", "object-removed", "object-updated"};
    for (size_t i = 0; i < ev.n; i++) {
        const kiln_kv_qevent *e = &ev.ev[i];
        printf("%llu\t%s\t%s\t%s\t", (unsigned long long)e->id, e->fn, e->ns,
               e->type < 3 ? types[e->type] : "?");
        for (size_t k = 0; k < e->klen; k++) {
            uint8_t c = e->key[k];
            if (c >= 0x21 && c < 0x7f && c != '\\')
                putchar(c);
            else
                printf("\\x%02x", c);
        }
        printf("\t%u\t%s\n", (unsigned)e->attempts, e->cause ? e->cause : "");
    }
    kiln_kv_events_fini(&ev);
    return KILN_OK;
}

static int list_all(kiln_kv_store *s, const char *ns, const char *prefix)
{
    uint8_t *after = NULL;
    size_t alen = 0;
    int rc;
    for (;;) {
        kiln_kv_page p;
        rc = ns ? s->ops->list(s, ns, prefix, strlen(prefix), after, alen, 500, &p)
                : s->ops->namespaces(s, after, alen, 500, &p);
        if (rc != KILN_OK)
            break;
        for (size_t i = 0; i < p.n; i++) {
            fwrite(p.keys[i].p, 1, p.keys[i].len, stdout);
            fputc('\n', stdout);
        }
        bool more = p.more && p.n > 0;
        if (more) {
            kiln_free(after);
            alen = p.keys[p.n - 1].len;
            after = kiln_malloc(alen + 1);
            if (after != NULL)
                memcpy(after, p.keys[p.n - 1].p, alen);
        }
        kiln_kv_page_fini(&p);
        if (!more || after == NULL)
            break;
    }
    kiln_free(after);
    return rc;
}

int cmd_kv(int argc, char **argv)
{
    const char *db = NULL;
    int64_t ttl = 0;
    bool nx = false;
    const char *pos[4];
    int npos = 0;
    const char *verb = NULL;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* A negative number is an operand (incr's DELTA), not an option. */
        bool operand = options_done || a[0] != '-' || a[1] == '\0' ||
                       (a[1] >= '0' && a[1] <= '9');
        if (!operand && strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (operand) {
            if (verb == NULL) {
                verb = a;
            } else if (npos < 4) {
                pos[npos++] = a;
            } else {
                cli_error("kv", "too many arguments (see kiln kv --help)");
                return 2;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--db") == 0 || strncmp(a, "--db=", 5) == 0) {
            db = a[4] == '=' ? a + 5 : (i + 1 < argc ? argv[++i] : NULL);
            if (db == NULL || *db == '\0') {
                cli_error("kv", "--db needs a path");
                return 2;
            }
        } else if (strcmp(a, "--ttl") == 0 || strncmp(a, "--ttl=", 6) == 0) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            uint64_t ms;
            if (v == NULL || !cfg_parse_duration_ms(v, &ms) || ms == 0) {
                cli_error("kv", "--ttl needs a duration such as 250ms, 10s or 5m");
                return 2;
            }
            ttl = (int64_t)ms;
        } else if (strcmp(a, "--nx") == 0) {
            nx = true;
        } else {
            cli_error("kv", "unknown option '%s' (see kiln kv --help)", a);
            return 2;
        }
    }
    static const struct {
        const char *name;
        int min, max;
    } verbs[] = {{"get", 2, 2}, {"set", 3, 3}, {"del", 2, 2}, {"incr", 2, 3}, {"ls", 0, 2},
                  {"dead", 0, 0}};
    size_t vi = 0;
    for (; verb != NULL && vi < sizeof(verbs) / sizeof(verbs[0]); vi++)
        if (strcmp(verb, verbs[vi].name) == 0)
            break;
    if (verb == NULL || vi == sizeof(verbs) / sizeof(verbs[0])) {
        if (verb != NULL)
            cli_error("kv", "unknown command '%s'", verb);
        usage(stderr);
        return 2;
    }
    if (npos < verbs[vi].min || npos > verbs[vi].max) {
        cli_error("kv", "%s: wrong number of arguments (see kiln kv --help)", verb);
        return 2;
    }
    if (npos > 0 && !ns_ok(pos[0])) {
        cli_error("kv", "'%s' is not a namespace: use a name of letters, digits, '_', '-' "
                  "and '.', or fn:FUNCTION", pos[0]);
        return 2;
    }
    if (npos > 1 && pos[1][0] == '\0' && strcmp(verb, "ls") != 0) {
        cli_error("kv", "the key must not be empty");
        return 2;
    }
    char path[4096];
    if (db == NULL) {
        if (kiln_kv_default_path(path, sizeof(path)) != KILN_OK) {
            cli_error("kv", "no database: set KILN_HOME or HOME, or pass --db PATH");
            return 2;
        }
        db = path;
    }
    bool writes = strcmp(verb, "set") == 0 || strcmp(verb, "incr") == 0;
    struct stat st;
    if (!writes && stat(db, &st) != 0) {
        /* Reading must not create an empty database. */
        if (strcmp(verb, "ls") == 0 || strcmp(verb, "dead") == 0)
            return 0;
        cli_error("kv", "%s: no such database", db);
        return 1;
    }
    kiln_err err;
    kiln_kv_store *s = NULL;
    int rc = kiln_kv_sqlite_open(db, NULL, &s, &err);
    if (rc != KILN_OK) {
        cli_error("kv", "%s", err.msg);
        return 1;
    }
    const char *ns = npos > 0 ? pos[0] : NULL;
    const char *key = npos > 1 ? pos[1] : NULL;
    size_t klen = key ? strlen(key) : 0;
    int status = 0;
    if (strcmp(verb, "get") == 0) {
        size_t len = 0;
        uint8_t *buf = NULL;
        rc = s->ops->get(s, ns, key, klen, NULL, 0, &len, NULL);
        while (rc == KILN_OK) {
            size_t cap = len;
            kiln_free(buf);
            buf = kiln_malloc(cap + 1);
            if (buf == NULL) {
                rc = KILN_ENOMEM;
                break;
            }
            rc = s->ops->get(s, ns, key, klen, buf, cap, &len, NULL);
            if (rc == KILN_OK && len <= cap)
                break;
        }
        if (rc == KILN_OK) {
            fwrite(buf, 1, len, stdout);
            if (isatty(1))
                fputc('\n', stdout);
        }
        kiln_free(buf);
    } else if (strcmp(verb, "set") == 0) {
        uint8_t *val = (uint8_t *)pos[2];
        size_t vlen = strlen(pos[2]);
        bool from_stdin = strcmp(pos[2], "-") == 0, stored = false;
        if (from_stdin && read_stdin(&val, &vlen) != 0) {
            cli_error("kv", "cannot read the value from standard input");
            rc = KILN_EIO;
            status = 1;
        } else {
            rc = s->ops->set(s, ns, key, klen, val, vlen, ttl, nx ? KILN_KV_NX : 0, NULL,
                             &stored);
            if (rc == KILN_OK && !stored) {
                cli_error("kv", "%s %s: exists (--nx)", ns, key);
                status = 1;
            }
        }
        if (from_stdin)
            kiln_free(val);
    } else if (strcmp(verb, "del") == 0) {
        bool deleted = false;
        rc = s->ops->del(s, ns, key, klen, &deleted);
        if (rc == KILN_OK && !deleted)
            rc = KILN_ENOENT;
    } else if (strcmp(verb, "incr") == 0) {
        long long delta = 1;
        char *end = NULL;
        errno = 0;
        if (npos == 3)
            delta = strtoll(pos[2], &end, 10);
        if (npos == 3 && (end == pos[2] || *end != '\0')) {
            cli_error("kv", "incr: DELTA '%s' is not an integer", pos[2]);
            status = 2;
        } else if (npos == 3 && errno == ERANGE) {
            /* strtoll clamps; an increment must never be silently changed. */
            cli_error("kv", "incr: DELTA '%s' is outside the 64-bit integer range (%lld to %lld)",
                      pos[2], (long long)INT64_MIN, (long long)INT64_MAX);
            status = 2;
        } else {
            int64_t out = 0;
            rc = s->ops->incr(s, ns, key, klen, delta, NULL, &out);
            if (rc == KILN_OK)
                printf("%lld\n", (long long)out);
            if (rc == KILN_EINVAL) {
                cli_error("kv",
                          "%s %s: adding %lld would take the value outside the 64-bit integer "
                          "range (%lld to %lld), or it already is; the value was not changed",
                          ns, key, delta, (long long)INT64_MIN, (long long)INT64_MAX);
                status = 1;
            }
        }
    } else if (strcmp(verb, "dead") == 0) {
        rc = list_dead(s);
    } else {
        rc = list_all(s, ns, npos > 1 ? pos[1] : "");
    }
    kiln_kv_close(s);
    if (status != 0)
        return status;
    if (rc == KILN_ENOENT) {
        cli_error("kv", "%s %s: not found", ns, key);
        return 1;
    }
    if (rc == KILN_ETYPE) {
        cli_error("kv", "%s %s: the value is not an integer", ns, key);
        return 1;
    }
    if (rc != KILN_OK) {
        cli_error("kv", "%s: %s", db, kiln_strerror(rc));
        return 1;
    }
    return 0;
}
