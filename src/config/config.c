/*
 * config.c - `kiln serve` configuration files and directory mode (config.h).
 * YAML and JSON are both read into one small node tree that remembers line
 * numbers (JSON is checked by jansson first, then read by libyaml: every JSON
 * text is a YAML flow document), and one schema walker turns the tree into
 * plain structs, naming FILE:LINE and the key in every error.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "base/alloc.h"
#include "component/cm.h"
#include "config/config.h"
#include "kiln/kv.h"

/* ---- arena: everything a cfg_config owns, freed in one call -------------- */

typedef struct ar_chunk {
    struct ar_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} ar_chunk;

struct cfg_arena {
    ar_chunk *head;
};

static void *ar_alloc(struct cfg_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (a->head == NULL || a->head->size - a->head->used < n) {
        size_t size = n > 16384 ? n : 16384;
        ar_chunk *c = kiln_malloc(sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->size = size;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *ar_strndup(struct cfg_arena *a, const char *s, size_t n)
{
    char *d = ar_alloc(a, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *ar_strdup(struct cfg_arena *a, const char *s)
{
    return ar_strndup(a, s, strlen(s));
}

static void ar_free(struct cfg_arena *a)
{
    if (a == NULL)
        return;
    for (ar_chunk *c = a->head, *n; c != NULL; c = n) {
        n = c->next;
        kiln_free(c);
    }
    kiln_free(a);
}

void cfg_free(cfg_config *c)
{
    if (c == NULL)
        return;
    struct cfg_arena *a = c->arena;
    ar_free(a); /* c itself lives in the arena */
}

/* ---- node tree ---------------------------------------------------------- */

typedef enum node_kind { N_SCALAR, N_MAP, N_SEQ } node_kind;

typedef struct node {
    node_kind kind;
    int line;
    bool quoted;    /* scalar written in quotes: never null/bool by spelling */
    const char *s;  /* scalar text (NUL-terminated; len is authoritative) */
    size_t len;
    struct node **items; /* seq: n items; map: keys and values interleaved, n pairs */
    size_t n, cap;
} node;

typedef struct tree {
    struct cfg_arena ar;
    node *root;
    struct {
        const char *name;
        node *n;
    } *anchors;
    size_t n_anchors, cap_anchors;
} tree;

static node *new_node(tree *t, node_kind k, int line)
{
    node *n = ar_alloc(&t->ar, sizeof(*n));
    if (n != NULL) {
        n->kind = k;
        n->line = line;
    }
    return n;
}

/* Append to a seq (one item) or a map (called for key, then value). */
static bool node_push(tree *t, node *parent, node *child)
{
    /* items[] holds `cap` pointers; a map stores its pending key at 2n and
     * the value at 2n + 1. */
    size_t slots = parent->kind == N_MAP ? parent->n * 2 + 2 : parent->n + 1;
    if (slots > parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        node **items = ar_alloc(&t->ar, cap * sizeof(*items));
        if (items == NULL)
            return false;
        if (parent->cap)
            memcpy(items, parent->items, parent->cap * sizeof(*items));
        parent->items = items;
        parent->cap = cap;
    }
    return true;
}

static bool anchor_add(tree *t, const char *name, node *n)
{
    if (name == NULL)
        return true;
    if (t->n_anchors == t->cap_anchors) {
        size_t cap = t->cap_anchors ? t->cap_anchors * 2 : 8;
        void *a = ar_alloc(&t->ar, cap * sizeof(*t->anchors));
        if (a == NULL)
            return false;
        if (t->n_anchors)
            memcpy(a, t->anchors, t->n_anchors * sizeof(*t->anchors));
        t->anchors = a;
        t->cap_anchors = cap;
    }
    t->anchors[t->n_anchors].name = ar_strdup(&t->ar, name);
    t->anchors[t->n_anchors].n = n;
    t->n_anchors++;
    return true;
}

#define MAX_DEPTH 64

/* Build the tree with libyaml. On a syntax error: KILN_ECONFIG "FILE:LINE:COL: problem". */
static int yaml_tree(const char *text, size_t len, const char *file, tree *t, kiln_err *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", file);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    node *stack[MAX_DEPTH];
    bool pending_key[MAX_DEPTH]; /* map: a key was pushed, its value is next */
    int depth = 0, docs = 0, rc = KILN_OK;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = kiln_err_set(err, KILN_ECONFIG, "%s:%zu:%zu: YAML syntax error: %s%s%s", file,
                              p.problem_mark.line + 1, p.problem_mark.column + 1,
                              p.problem ? p.problem : "malformed document",
                              p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        node *n = NULL;
        bool open = false, done = false;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = kiln_err_set(err, KILN_ECONFIG,
                                  "%s:%d: a configuration holds one YAML document; found a "
                                  "second '---'",
                                  file, line);
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_SCALAR_EVENT:
            n = new_node(t, N_SCALAR, line);
            if (n == NULL)
                break;
            n->s = ar_strndup(&t->ar, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            if (n->s == NULL || !anchor_add(t, (const char *)ev.data.scalar.anchor, n))
                n = NULL;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = new_node(t, ev.type == YAML_MAPPING_START_EVENT ? N_MAP : N_SEQ, line);
            open = true;
            if (n != NULL) {
                const char *anchor = ev.type == YAML_MAPPING_START_EVENT
                                         ? (const char *)ev.data.mapping_start.anchor
                                         : (const char *)ev.data.sequence_start.anchor;
                if (!anchor_add(t, anchor, n))
                    n = NULL;
            }
            break;
        case YAML_ALIAS_EVENT: {
            const char *a = (const char *)ev.data.alias.anchor;
            for (size_t i = t->n_anchors; i-- > 0;)
                if (strcmp(t->anchors[i].name, a) == 0) {
                    n = t->anchors[i].n;
                    break;
                }
            if (n == NULL)
                rc = kiln_err_set(err, KILN_ECONFIG, "%s:%d: unknown alias '*%s'", file, line, a);
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        bool want_node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT ||
                         ev.type == YAML_SEQUENCE_START_EVENT ||
                         ev.type == YAML_MAPPING_START_EVENT;
        yaml_event_delete(&ev);
        if (rc != KILN_OK)
            break;
        if (want_node && n == NULL) {
            rc = kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", file);
            break;
        }
        if (n != NULL) {
            if (depth == 0) {
                t->root = n;
            } else {
                node *parent = stack[depth - 1];
                if (!node_push(t, parent, n)) {
                    rc = kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", file);
                    break;
                }
                if (parent->kind == N_SEQ) {
                    parent->items[parent->n++] = n;
                } else if (!pending_key[depth - 1]) {
                    if (n->kind != N_SCALAR) {
                        rc = kiln_err_set(err, KILN_ECONFIG,
                                          "%s:%d: a mapping key must be a plain string", file,
                                          n->line);
                        break;
                    }
                    parent->items[parent->n * 2] = n;
                    pending_key[depth - 1] = true;
                } else {
                    parent->items[parent->n * 2 + 1] = n;
                    parent->n++;
                    pending_key[depth - 1] = false;
                }
            }
            if (open) {
                if (depth == MAX_DEPTH) {
                    rc = kiln_err_set(err, KILN_ECONFIG, "%s:%d: nested more than %d levels",
                                      file, line, MAX_DEPTH);
                    break;
                }
                stack[depth] = n;
                pending_key[depth] = false;
                depth++;
            }
        }
        if (done)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Fallback for JSON libyaml cannot read (never seen in practice): a tree
 * without line numbers, straight from jansson. */
static node *json_node(tree *t, json_t *j)
{
    node *n = NULL;
    if (json_is_object(j)) {
        n = new_node(t, N_MAP, 0);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            node *kn = new_node(t, N_SCALAR, 0), *vn = json_node(t, v);
            if (n == NULL || kn == NULL || vn == NULL || !node_push(t, n, kn))
                return NULL;
            kn->s = ar_strdup(&t->ar, k);
            kn->len = strlen(k);
            kn->quoted = true;
            if (!node_push(t, n, vn))
                return NULL;
            n->items[n->n * 2] = kn;
            n->items[n->n * 2 + 1] = vn;
            n->n++;
        }
    } else if (json_is_array(j)) {
        n = new_node(t, N_SEQ, 0);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            node *vn = json_node(t, v);
            if (n == NULL || vn == NULL || !node_push(t, n, vn))
                return NULL;
            n->items[n->n++] = vn;
        }
    } else {
        n = new_node(t, N_SCALAR, 0);
        if (n == NULL)
            return NULL;
        char buf[64];
        const char *s = buf;
        size_t len;
        if (json_is_string(j)) {
            s = json_string_value(j);
            len = json_string_length(j);
            n->quoted = true;
        } else if (json_is_integer(j)) {
            len = (size_t)snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        } else if (json_is_real(j)) {
            len = (size_t)snprintf(buf, sizeof(buf), "%.17g", json_real_value(j));
        } else {
            len = (size_t)snprintf(buf, sizeof(buf), "%s",
                                   json_is_true(j) ? "true" : json_is_false(j) ? "false" : "null");
        }
        n->s = ar_strndup(&t->ar, s, len);
        n->len = len;
        if (n->s == NULL)
            return NULL;
    }
    return n;
}

static int json_tree(const char *text, size_t len, const char *file, tree *t, kiln_err *err)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        return kiln_err_set(err, KILN_ECONFIG, "%s:%d:%d: JSON syntax error: %s", file, je.line,
                            je.column, je.text);
    kiln_err yerr;
    int rc = yaml_tree(text, len, file, t, &yerr);
    if (rc != KILN_OK) {
        t->root = json_node(t, j);
        rc = t->root ? KILN_OK : kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", file);
    }
    json_decref(j);
    return rc;
}

/* ---- scalar parsing ----------------------------------------------------- */

bool cfg_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {{"", 1},           {"b", 1},           {"k", 1000},       {"kb", 1000},
                 {"kib", 1u << 10}, {"m", 1u << 20},    {"mb", 1000000},   {"mib", 1u << 20},
                 {"g", 1u << 30},   {"gb", 1000000000}, {"gib", 1u << 30}};
    if (s == NULL || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / 4 / units[i].mul)
                return false;
            *out = v * units[i].mul;
            return true;
        }
    }
    return false;
}

bool cfg_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (s == NULL || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT32_MAX)
                return false;
            *out = v * units[i].mul;
            return true;
        }
    }
    return false;
}

/* ---- schema walker ------------------------------------------------------- */

typedef struct walk {
    const char *file;
    const char *base_dir;
    cfg_config *c;
    struct cfg_arena *ar;
    kiln_err *err;
    const char **warn;
    size_t n_warn, cap_warn;
    bool sidecar; /* parsing a directory sidecar (no "has no route" warning) */
} walk;

static int fail(walk *w, const node *n, const char *fmt, ...) KILN_PRINTF(3, 4);
static int fail(walk *w, const node *n, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n != NULL && n->line > 0)
        return kiln_err_set(w->err, KILN_ECONFIG, "%s:%d: %s", w->file, n->line, msg);
    return kiln_err_set(w->err, KILN_ECONFIG, "%s: %s", w->file, msg);
}

static int oom(walk *w)
{
    return kiln_err_set(w->err, KILN_ENOMEM, "%s: out of memory", w->file);
}

static void warn(walk *w, const char *fmt, ...) KILN_PRINTF(2, 3);
static void warn(walk *w, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->n_warn == w->cap_warn) {
        size_t cap = w->cap_warn ? w->cap_warn * 2 : 8;
        const char **a = ar_alloc(w->ar, cap * sizeof(*a));
        if (a == NULL)
            return;
        if (w->n_warn)
            memcpy(a, w->warn, w->n_warn * sizeof(*a));
        w->warn = a;
        w->cap_warn = cap;
    }
    const char *s = ar_strdup(w->ar, msg);
    if (s != NULL)
        w->warn[w->n_warn++] = s;
}

static const char *kind_name(const node *n)
{
    return n->kind == N_MAP ? "a mapping" : n->kind == N_SEQ ? "a list" : "a scalar";
}

static bool is_null(const node *n)
{
    return n == NULL || (n->kind == N_SCALAR && !n->quoted &&
                         (n->len == 0 || strcmp(n->s, "~") == 0 || strcmp(n->s, "null") == 0 ||
                          strcmp(n->s, "Null") == 0 || strcmp(n->s, "NULL") == 0));
}

/* Check that map `m` has only keys from `known` (NULL-terminated) and none twice. */
static int check_keys(walk *w, const node *m, const char *what, const char *const *known)
{
    for (size_t i = 0; i < m->n; i++) {
        const node *k = m->items[2 * i];
        bool ok = false;
        for (size_t j = 0; known[j] != NULL && !ok; j++)
            ok = strcmp(k->s, known[j]) == 0;
        if (!ok) {
            char list[400];
            size_t o = 0;
            list[0] = '\0';
            for (size_t j = 0; known[j] != NULL && o < sizeof(list); j++)
                o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", j ? ", " : "", known[j]);
            return fail(w, k, "unknown key '%s' in %s; expected one of: %s", k->s, what, list);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->items[2 * j]->s, k->s) == 0)
                return fail(w, k, "key '%s' appears twice in %s (first on line %d)", k->s, what,
                            m->items[2 * j]->line);
    }
    return KILN_OK;
}

static const node *get(const node *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[2 * i]->s, key) == 0)
            return m->items[2 * i + 1];
    return NULL;
}

static int want_string(walk *w, const node *v, const char *what, const char **out)
{
    if (v->kind != N_SCALAR || is_null(v))
        return fail(w, v, "%s must be a string, not %s", what,
                    v->kind == N_SCALAR ? "empty" : kind_name(v));
    if (strlen(v->s) != v->len)
        return fail(w, v, "%s contains a NUL character", what);
    *out = v->s;
    return KILN_OK;
}

static int want_bool(walk *w, const node *v, const char *what, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    if (v->kind == N_SCALAR && !v->quoted) {
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(v->s, yes[i]) == 0) {
                *out = true;
                return KILN_OK;
            }
            if (strcasecmp(v->s, no[i]) == 0) {
                *out = false;
                return KILN_OK;
            }
        }
    }
    return fail(w, v, "%s must be true or false", what);
}

static int want_uint(walk *w, const node *v, const char *what, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    if (v->kind == N_SCALAR && isdigit((unsigned char)v->s[0])) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v->s, &end, 10);
        if (errno == 0 && *end == '\0' && x >= min && x <= max) {
            *out = x;
            return KILN_OK;
        }
    }
    return fail(w, v, "%s must be an integer from %llu to %llu", what, (unsigned long long)min,
                (unsigned long long)max);
}

static int want_size(walk *w, const node *v, const char *what, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    if (v->kind == N_SCALAR && cfg_parse_size(v->s, out) && *out >= min && *out <= max)
        return KILN_OK;
    return fail(w, v, "%s must be a size such as 64MiB, 512k or 65536 (bytes), from %llu to %llu "
                "bytes", what, (unsigned long long)min, (unsigned long long)max);
}

static int want_duration(walk *w, const node *v, const char *what, uint64_t max_ms,
                         uint64_t *out)
{
    if (v->kind == N_SCALAR && cfg_parse_duration_ms(v->s, out) && *out <= max_ms)
        return KILN_OK;
    if (v->kind == N_SCALAR && isdigit((unsigned char)v->s[0]) &&
        strspn(v->s, "0123456789") == v->len)
        return fail(w, v, "%s '%s' needs a unit: ms, s, m or h (e.g. %ss)", what, v->s, v->s);
    return fail(w, v, "%s must be a duration such as 250ms, 5s or 2m (at most %llu ms)", what,
                (unsigned long long)max_ms);
}

/* Resolve a path relative to the configuration's directory (arena copy). */
static const char *resolve(walk *w, const char *p)
{
    if (p[0] == '/' || w->base_dir == NULL || w->base_dir[0] == '\0')
        return ar_strdup(w->ar, p);
    size_t n = strlen(w->base_dir) + strlen(p) + 2;
    char *r = ar_alloc(w->ar, n);
    if (r != NULL)
        snprintf(r, n, "%s/%s", w->base_dir, p);
    return r;
}

static int parse_server(walk *w, const node *m)
{
    static const char *const keys[] = {"listen",
                                       "threads",
                                       "max_header_bytes",
                                       "max_body_bytes",
                                       "connection_timeout",
                                       "drain_timeout",
                                       "max_connections",
                                       "max_connections_per_ip",
                                       "header_timeout",
                                       "min_body_rate",
                                       "max_buffered_body_bytes",
                                       "max_in_flight",
                                       "quiet",
                                       "server_timing",
                                       NULL};
    cfg_server *s = &w->c->server;
    if (m->kind != N_MAP)
        return fail(w, m, "'server' must be a mapping, not %s", kind_name(m));
    int rc = check_keys(w, m, "'server'", keys);
    for (size_t i = 0; rc == KILN_OK && i < m->n; i++) {
        const char *k = m->items[2 * i]->s;
        const node *v = m->items[2 * i + 1];
        uint64_t u;
        char what[64];
        snprintf(what, sizeof(what), "server.%s", k);
        if (strcmp(k, "listen") == 0) {
            rc = want_string(w, v, what, &s->listen);
        } else if (strcmp(k, "threads") == 0) {
            if ((rc = want_uint(w, v, what, 1, 1024, &u)) == KILN_OK)
                s->threads = (unsigned)u;
        } else if (strcmp(k, "max_header_bytes") == 0) {
            if ((rc = want_size(w, v, what, 1024, 1 << 20, &u)) == KILN_OK)
                s->max_header_bytes = (size_t)u;
        } else if (strcmp(k, "max_body_bytes") == 0) {
            if ((rc = want_size(w, v, what, 0, (uint64_t)1 << 32, &u)) == KILN_OK)
                s->max_body_bytes = (size_t)u;
        } else if (strcmp(k, "connection_timeout") == 0) {
            if ((rc = want_duration(w, v, what, 86400000, &u)) == KILN_OK)
                s->connection_timeout_s = (unsigned)((u + 999) / 1000);
        } else if (strcmp(k, "drain_timeout") == 0) {
            if ((rc = want_duration(w, v, what, 86400000, &u)) == KILN_OK)
                s->drain_timeout_s = (unsigned)((u + 999) / 1000);
        } else if (strcmp(k, "max_connections") == 0) {
            if ((rc = want_uint(w, v, what, 1, 1000000, &u)) == KILN_OK)
                s->max_connections = (unsigned)u;
        } else if (strcmp(k, "max_in_flight") == 0) {
            if ((rc = want_uint(w, v, what, 1, 1000000, &u)) == KILN_OK)
                s->max_in_flight = (unsigned)u;
        } else if (strcmp(k, "max_connections_per_ip") == 0) {
            if ((rc = want_uint(w, v, what, 0, 1000000, &u)) == KILN_OK)
                s->max_connections_per_ip = (unsigned)u;
        } else if (strcmp(k, "header_timeout") == 0) {
            /* 0 turns it off; otherwise at least 100 ms (the deadline is checked every
             * 100 ms or so, a shorter one would mean nothing). */
            if ((rc = want_duration(w, v, what, 3600000, &u)) == KILN_OK && u > 0 && u < 100)
                rc = fail(w, v, "%s must be 0 (no deadline) or at least 100ms", what);
            if (rc == KILN_OK)
                s->header_timeout_ms = (unsigned)u;
        } else if (strcmp(k, "min_body_rate") == 0) {
            if ((rc = want_size(w, v, what, 0, (uint64_t)1 << 30, &u)) == KILN_OK)
                s->min_body_rate = (size_t)u;
        } else if (strcmp(k, "max_buffered_body_bytes") == 0) {
            if ((rc = want_size(w, v, what, 65536, (uint64_t)1 << 40, &u)) == KILN_OK)
                s->max_buffered_body_bytes = (size_t)u;
        } else if (strcmp(k, "quiet") == 0) {
            rc = want_bool(w, v, what, &s->quiet);
        } else if (strcmp(k, "server_timing") == 0) {
            rc = want_bool(w, v, what, &s->server_timing);
        }
    }
    return rc;
}

/* A mapping of scalar values into a kiln_kv array (env, config). */
static int parse_kv(walk *w, const node *v, const char *what, bool env, const kiln_kv **out,
                    size_t *n_out)
{
    if (v->kind != N_MAP)
        return fail(w, v, "%s must be a mapping of names to values, not %s", what, kind_name(v));
    kiln_kv *kv = ar_alloc(w->ar, (v->n ? v->n : 1) * sizeof(*kv));
    if (kv == NULL)
        return oom(w);
    for (size_t i = 0; i < v->n; i++) {
        const node *k = v->items[2 * i], *val = v->items[2 * i + 1];
        for (size_t j = 0; j < i; j++)
            if (strcmp(v->items[2 * j]->s, k->s) == 0)
                return fail(w, k, "key '%s' appears twice in %s", k->s, what);
        if (env && (k->len == 0 || strchr(k->s, '=') != NULL))
            return fail(w, k, "%s: '%s' is not a valid environment variable name", what, k->s);
        if (val->kind != N_SCALAR)
            return fail(w, val, "%s.%s must be a string, not %s", what, k->s, kind_name(val));
        if (strlen(val->s) != val->len)
            return fail(w, val, "%s.%s contains a NUL character", what, k->s);
        kv[i].name = k->s;
        kv[i].value = is_null(val) ? "" : val->s;
    }
    *out = kv;
    *n_out = v->n;
    return KILN_OK;
}

static int parse_dirs(walk *w, const node *v, const char *what, cfg_function *f)
{
    if (v->kind != N_SEQ)
        return fail(w, v, "%s must be a list", what);
    kiln_dir *d = ar_alloc(w->ar, (v->n ? v->n : 1) * sizeof(*d));
    if (d == NULL)
        return oom(w);
    static const char *const keys[] = {"host", "guest", "read_only", NULL};
    for (size_t i = 0; i < v->n; i++) {
        const node *it = v->items[i];
        const char *host = NULL, *guest = NULL;
        bool ro = false;
        int rc;
        if (it->kind == N_SCALAR) {
            /* "HOST" or "HOST::GUEST", as `kiln run --dir`. */
            if ((rc = want_string(w, it, what, &host)) != KILN_OK)
                return rc;
            const char *sep = strstr(host, "::");
            if (sep != NULL) {
                guest = sep + 2;
                host = ar_strndup(w->ar, host, (size_t)(sep - host));
            }
        } else if (it->kind == N_MAP) {
            if ((rc = check_keys(w, it, what, keys)) != KILN_OK)
                return rc;
            const node *h = get(it, "host"), *g = get(it, "guest"), *r = get(it, "read_only");
            if (h == NULL)
                return fail(w, it, "%s: an entry needs 'host'", what);
            if ((rc = want_string(w, h, "dirs[].host", &host)) != KILN_OK)
                return rc;
            if (g != NULL && (rc = want_string(w, g, "dirs[].guest", &guest)) != KILN_OK)
                return rc;
            if (r != NULL && (rc = want_bool(w, r, "dirs[].read_only", &ro)) != KILN_OK)
                return rc;
        } else {
            return fail(w, it, "%s entries are \"HOST[::GUEST]\" or {host, guest, read_only}",
                        what);
        }
        if (host == NULL || host[0] == '\0')
            return fail(w, it, "%s: empty host directory", what);
        const char *abs = resolve(w, host);
        if (abs == NULL)
            return oom(w);
        struct stat st;
        if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode))
            return fail(w, it, "%s: directory '%s' not found (looked at %s)", what, host, abs);
        d[i].host = abs;
        d[i].guest = guest && guest[0] ? guest : host;
        d[i].read_only = ro;
    }
    f->fn.dirs = d;
    f->fn.n_dirs = v->n;
    return KILN_OK;
}

/* ---- plugin config as JSON text ------------------------------------------ */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = kiln_realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jb_str(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    jb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', (char)c, 0};
        if (c == '"' || c == '\\') {
            jb_put(b, esc, 2);
        } else if (c == '\n') {
            jb_put(b, "\\n", 2);
        } else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            jb_put(b, esc, 6);
        } else {
            jb_put(b, (const char *)&s[i], 1);
        }
    }
    jb_put(b, "\"", 1);
}

/* Does s spell a JSON number (RFC 8259 grammar)? */
static bool json_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (isdigit((unsigned char)*s))
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* A configuration value as JSON: unquoted scalars that spell null, a boolean
 * or a number keep that type (numbers exactly as written); everything else
 * is a string. */
static void node_json(jbuf *b, const node *n)
{
    if (n->kind == N_MAP) {
        jb_put(b, "{", 1);
        for (size_t i = 0; i < n->n; i++) {
            if (i > 0)
                jb_put(b, ",", 1);
            jb_str(b, n->items[2 * i]->s, n->items[2 * i]->len);
            jb_put(b, ":", 1);
            node_json(b, n->items[2 * i + 1]);
        }
        jb_put(b, "}", 1);
    } else if (n->kind == N_SEQ) {
        jb_put(b, "[", 1);
        for (size_t i = 0; i < n->n; i++) {
            if (i > 0)
                jb_put(b, ",", 1);
            node_json(b, n->items[i]);
        }
        jb_put(b, "]", 1);
    } else if (is_null(n)) {
        jb_put(b, "null", 4);
    } else if (!n->quoted && (strcmp(n->s, "true") == 0 || strcmp(n->s, "false") == 0)) {
        jb_put(b, n->s, n->len);
    } else if (!n->quoted && json_number_text(n->s)) {
        jb_put(b, n->s, n->len);
    } else {
        jb_str(b, n->s, n->len);
    }
}

/* `v` as JSON text in the arena; a string stays as-is when raw_string. */
static int value_text(walk *w, const node *v, bool raw_string, const char **out)
{
    if (raw_string && v->kind == N_SCALAR && !is_null(v)) {
        *out = v->s;
        return KILN_OK;
    }
    jbuf b = {0};
    node_json(&b, v);
    if (b.oom) {
        kiln_free(b.p);
        return oom(w);
    }
    *out = ar_strndup(w->ar, b.p ? b.p : "", b.len);
    kiln_free(b.p);
    return *out ? KILN_OK : oom(w);
}

static long find_function(const cfg_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_functions; i++)
        if (strcmp(c->functions[i].fn.name, name) == 0)
            return (long)i;
    return -1;
}

/* One plugin of a route (`sink` false) or one entry of 'sinks'. */
static int parse_plugin(walk *w, const node *v, const char *what, bool sink, cfg_plugin *p)
{
    static const char *const keys[] = {"function", "kind", "export", "config",
                                       "configuration", "vm_configuration", NULL};
    static const char *const sink_keys[] = {"function", "config", NULL};
    int rc;
    memset(p, 0, sizeof(*p));
    p->line = v->line;
    if (v->kind != N_MAP)
        return fail(w, v, "%s: a plugin is a mapping {function, kind, export, config}, not %s",
                    what, kind_name(v));
    if ((rc = check_keys(w, v, what, sink ? sink_keys : keys)) != KILN_OK)
        return rc;
    const node *f = get(v, "function"), *k = get(v, "kind"), *ex = get(v, "export"),
               *cf = get(v, "config"), *pc = get(v, "configuration"),
               *vc = get(v, "vm_configuration");
    const char *name, *kind;
    if (f == NULL)
        return fail(w, v, "%s: a plugin needs 'function' (the function to run)", what);
    if ((rc = want_string(w, f, "plugin function", &name)) != KILN_OK)
        return rc;
    long fi = find_function(w->c, name);
    p->function_name = name;
    if (fi < 0 && !w->sidecar)
        return fail(w, f, "%s: plugin function '%s' is not defined under 'functions'", what,
                    name);
    /* A sidecar may name another function of its directory: resolved by name
     * when the table is built. */
    p->function = fi < 0 ? CFG_NO_FUNCTION : (size_t)fi;
    if (sink) {
        p->kind = KILN_STAGE_SINK;
    } else {
        if (k == NULL)
            return fail(w, v, "%s: plugin '%s' needs 'kind' (matcher, pre-route, access, "
                        "request, response or proxy-wasm)", what, name);
        if ((rc = want_string(w, k, "plugin kind", &kind)) != KILN_OK)
            return rc;
        int kd = kiln_stage_kind_parse(kind);
        if (kd < 0)
            return fail(w, k, "%s: unknown plugin kind '%s' for '%s'; use matcher, pre-route, "
                        "access, request, response or proxy-wasm", what, kind, name);
        if (kd == KILN_STAGE_SINK)
            return fail(w, k, "%s: plugin '%s' is a sink; sinks answer requests that no route "
                        "matched, so list it under the top-level 'sinks'", what, name);
        p->kind = (kiln_stage_kind)kd;
    }
    if (ex != NULL && (rc = want_string(w, ex, "plugin export", &p->export_name)) != KILN_OK)
        return rc;
    bool pw = p->kind == KILN_STAGE_FILTER;
    if (!pw && (pc != NULL || vc != NULL))
        return fail(w, pc ? pc : vc, "%s: 'configuration' and 'vm_configuration' belong to "
                    "proxy-wasm plugins; an Otoroshi plugin of kind %s takes 'config'", what,
                    kiln_stage_kind_name(p->kind));
    if (pw && cf != NULL)
        return fail(w, cf, "%s: a proxy-wasm plugin takes 'configuration' (given to "
                    "proxy_on_configure), not 'config'", what);
    if (pw) {
        p->config_json = "";
        if (pc != NULL && !is_null(pc) &&
            (rc = value_text(w, pc, true, &p->config_json)) != KILN_OK)
            return rc;
        if (vc != NULL && !is_null(vc) &&
            (rc = value_text(w, vc, true, &p->vm_config)) != KILN_OK)
            return rc;
    } else {
        p->config_json = "{}";
        if (cf != NULL && !is_null(cf) &&
            (rc = value_text(w, cf, false, &p->config_json)) != KILN_OK)
            return rc;
    }
    return KILN_OK;
}

static int parse_plugins(walk *w, const node *v, const char *what, bool sink,
                         cfg_plugin **out, size_t *n_out)
{
    if (v->kind != N_SEQ)
        return fail(w, v, "%s must be a list of plugins ({function, kind, ...}), not %s", what,
                    kind_name(v));
    if (v->n > KILN_STAGE_MAX_PLUGINS)
        return fail(w, v, "%s: %zu plugins; a chain has at most %d", what, v->n,
                    KILN_STAGE_MAX_PLUGINS);
    cfg_plugin *p = ar_alloc(w->ar, (v->n ? v->n : 1) * sizeof(*p));
    if (p == NULL)
        return oom(w);
    for (size_t i = 0; i < v->n; i++) {
        int rc = parse_plugin(w, v->items[i], what, sink, &p[i]);
        if (rc != KILN_OK)
            return rc;
    }
    *out = p;
    *n_out = v->n;
    return KILN_OK;
}

/* A route given as a string "/path" or a mapping; `fn` >= 0 when inside a
 * function (then 'function' is not allowed). */
static int parse_route(walk *w, const node *v, long fn, cfg_route *r)
{
    static const char *const keys[] = {"path",   "function", "upstream", "timeout", "methods",
                                       "method", "host",     "plugins",  NULL};
    static const char *const fn_keys[] = {"path", "methods", "method", "host", "plugins", NULL};
    int rc;
    memset(r, 0, sizeof(*r));
    r->line = v->line;
    if (v->kind == N_SCALAR) {
        if (fn < 0)
            return fail(w, v, "a route in 'routes' is a mapping with 'path' and 'function'");
        r->function = (size_t)fn;
        return want_string(w, v, "route", &r->path);
    }
    if (v->kind != N_MAP)
        return fail(w, v, "a route must be a mapping (path, function, methods, host), not %s",
                    kind_name(v));
    if ((rc = check_keys(w, v, "route", fn >= 0 ? fn_keys : keys)) != KILN_OK)
        return rc;
    const node *p = get(v, "path"), *f = get(v, "function"), *ms = get(v, "methods"),
               *m1 = get(v, "method"), *h = get(v, "host"), *up = get(v, "upstream"),
               *to = get(v, "timeout");
    if (p == NULL)
        return fail(w, v, "route: missing key 'path'");
    if ((rc = want_string(w, p, "route path", &r->path)) != KILN_OK)
        return rc;
    if (fn >= 0) {
        r->function = (size_t)fn;
    } else if (up != NULL) {
        /* Proxied to an upstream service: checked as a URL when the table is
         * built (config has no behaviour); here only its shape. */
        if (f != NULL)
            return fail(w, f, "route '%s': give 'function' or 'upstream', not both", r->path);
        if ((rc = want_string(w, up, "route upstream", &r->upstream)) != KILN_OK)
            return rc;
        if (strncmp(r->upstream, "http://", 7) != 0 && strncmp(r->upstream, "https://", 8) != 0)
            return fail(w, up, "route '%s': upstream '%s' must be an http:// or https:// URL",
                        r->path, r->upstream);
        r->function = CFG_NO_FUNCTION;
        r->upstream_timeout_ms = CFG_DEFAULT_UPSTREAM_TIMEOUT_MS;
        uint64_t tmo;
        if (to != NULL) {
            if ((rc = want_duration(w, to, "route timeout", UINT32_MAX, &tmo)) != KILN_OK)
                return rc;
            r->upstream_timeout_ms = (uint32_t)tmo;
        }
    } else {
        const char *name;
        if (to != NULL)
            return fail(w, to, "route '%s': 'timeout' belongs to an upstream route; a "
                        "function's is set on the function", r->path);
        if (f == NULL)
            return fail(w, v, "route '%s': missing key 'function' (or 'upstream')", r->path);
        if ((rc = want_string(w, f, "route function", &name)) != KILN_OK)
            return rc;
        size_t i;
        for (i = 0; i < w->c->n_functions; i++)
            if (strcmp(w->c->functions[i].fn.name, name) == 0)
                break;
        if (i == w->c->n_functions)
            return fail(w, f, "route '%s': function '%s' is not defined under 'functions'",
                        r->path, name);
        r->function = i;
    }
    if (h != NULL && !is_null(h) && (rc = want_string(w, h, "route host", &r->host)) != KILN_OK)
        return rc;
    const node *pl = get(v, "plugins");
    if (pl != NULL && !is_null(pl)) {
        char what[300];
        snprintf(what, sizeof(what), "route '%s': plugins", r->path);
        cfg_plugin *plugins;
        if ((rc = parse_plugins(w, pl, what, false, &plugins, &r->n_plugins)) != KILN_OK)
            return rc;
        r->plugins = plugins;
    }
    if (ms != NULL && m1 != NULL)
        return fail(w, m1, "route '%s': give 'methods' or 'method', not both", r->path);
    if (m1 != NULL)
        ms = m1;
    if (ms != NULL) {
        const char **list;
        if (ms->kind == N_SCALAR) {
            list = ar_alloc(w->ar, sizeof(*list));
            if (list == NULL)
                return oom(w);
            if ((rc = want_string(w, ms, "route method", &list[0])) != KILN_OK)
                return rc;
            r->n_methods = 1;
        } else if (ms->kind == N_SEQ) {
            list = ar_alloc(w->ar, (ms->n ? ms->n : 1) * sizeof(*list));
            if (list == NULL)
                return oom(w);
            for (size_t i = 0; i < ms->n; i++)
                if ((rc = want_string(w, ms->items[i], "route method", &list[i])) != KILN_OK)
                    return rc;
            r->n_methods = ms->n;
        } else {
            return fail(w, ms, "route '%s': methods must be a list such as [GET, POST]", r->path);
        }
        r->methods = list;
    }
    return KILN_OK;
}

static bool valid_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

/* ---- key-value storage (kv.h) ---------------------------------------------- */

static int want_backend(walk *w, const node *v, const char *what, const char **out)
{
    int rc = want_string(w, v, what, out);
    if (rc == KILN_OK && strcmp(*out, "memory") != 0 && strcmp(*out, "sqlite") != 0)
        return fail(w, v, "%s '%s' is unknown; use memory or sqlite", what, *out);
    return rc;
}

/* max_key_bytes, max_value_bytes, max_keys, max_bytes of a namespace (other
 * keys are checked by the caller). */
static int parse_kv_limit(walk *w, const char *k, const node *v, const char *what,
                          kiln_kv_limits *l, bool *matched)
{
    uint64_t u;
    int rc = KILN_OK;
    *matched = true;
    if (strcmp(k, "max_key_bytes") == 0) {
        if ((rc = want_size(w, v, what, 1, KILN_KV_MAX_KEY_BYTES, &u)) == KILN_OK)
            l->max_key_bytes = (uint32_t)u;
    } else if (strcmp(k, "max_value_bytes") == 0) {
        if ((rc = want_size(w, v, what, 1, KILN_KV_MAX_VALUE_BYTES, &u)) == KILN_OK)
            l->max_value_bytes = (uint32_t)u;
    } else if (strcmp(k, "max_keys") == 0) {
        if ((rc = want_uint(w, v, what, 1, (uint64_t)1 << 40, &u)) == KILN_OK)
            l->max_keys = u;
    } else if (strcmp(k, "max_bytes") == 0) {
        if ((rc = want_size(w, v, what, 1, (uint64_t)1 << 50, &u)) == KILN_OK)
            l->max_bytes = u;
    } else {
        *matched = false;
    }
    return rc;
}

/* Top level: kv: {path, backend, namespaces: {NAME: {backend, max_*}}}. */
static int parse_server_kv(walk *w, const node *m)
{
    static const char *const keys[] = {"path", "backend", "namespaces", NULL};
    static const char *const ns_keys[] = {"backend",  "max_key_bytes", "max_value_bytes",
                                          "max_keys", "max_bytes",     NULL};
    kiln_kv_server_config *kv = &w->c->kv;
    if (m->kind != N_MAP)
        return fail(w, m, "'kv' must be a mapping (path, backend, namespaces), not %s",
                    kind_name(m));
    int rc = check_keys(w, m, "'kv'", keys);
    const node *v;
    const char *p;
    if (rc == KILN_OK && (v = get(m, "path")) != NULL &&
        (rc = want_string(w, v, "kv.path", &p)) == KILN_OK &&
        (kv->path = resolve(w, p)) == NULL)
        return oom(w);
    if (rc == KILN_OK && (v = get(m, "backend")) != NULL)
        rc = want_backend(w, v, "kv.backend", &kv->backend);
    const node *nss = rc == KILN_OK ? get(m, "namespaces") : NULL;
    if (nss == NULL || is_null(nss))
        return rc;
    if (nss->kind != N_MAP)
        return fail(w, nss, "kv.namespaces must be a mapping of namespace names to settings");
    kiln_kv_ns_config *decl = ar_alloc(w->ar, (nss->n ? nss->n : 1) * sizeof(*decl));
    if (decl == NULL)
        return oom(w);
    for (size_t i = 0; i < nss->n && rc == KILN_OK; i++) {
        const node *k = nss->items[2 * i], *nv = nss->items[2 * i + 1];
        char what[200];
        snprintf(what, sizeof(what), "kv.namespaces.%s", k->s);
        if (!kiln_kv_ns_name_valid(k->s))
            return fail(w, k, "namespace name '%s' may only contain 1 to 64 letters, digits, "
                        "'_', '-' and '.'", k->s);
        for (size_t j = 0; j < i; j++)
            if (strcmp(nss->items[2 * j]->s, k->s) == 0)
                return fail(w, k, "namespace '%s' is declared twice", k->s);
        decl[i].name = k->s;
        if (is_null(nv))
            continue;
        if (nv->kind != N_MAP)
            return fail(w, nv, "%s must be a mapping (backend, max_key_bytes, max_value_bytes, "
                        "max_keys, max_bytes)", what);
        if ((rc = check_keys(w, nv, what, ns_keys)) != KILN_OK)
            return rc;
        for (size_t j = 0; j < nv->n && rc == KILN_OK; j++) {
            const char *kk = nv->items[2 * j]->s;
            const node *vv = nv->items[2 * j + 1];
            char kw[300];
            snprintf(kw, sizeof(kw), "%s.%s", what, kk);
            bool matched;
            rc = parse_kv_limit(w, kk, vv, kw, &decl[i].limits, &matched);
            if (rc == KILN_OK && !matched)
                rc = want_backend(w, vv, kw, &decl[i].backend);
        }
    }
    kv->namespaces = decl;
    kv->n_namespaces = nss->n;
    return rc;
}

/* Per function: kv: {backend, max_*, grants: {NAME: r | rw}}. */
static int parse_function_kv(walk *w, const node *m, const char *what, cfg_function *f)
{
    static const char *const keys[] = {"backend",  "grants",    "max_key_bytes", "max_value_bytes",
                                       "max_keys", "max_bytes", NULL};
    if (m->kind != N_MAP)
        return fail(w, m, "%s must be a mapping (backend, grants, max_key_bytes, "
                    "max_value_bytes, max_keys, max_bytes), not %s", what, kind_name(m));
    int rc = check_keys(w, m, what, keys);
    if (rc != KILN_OK)
        return rc;
    kiln_kv_config *kv = ar_alloc(w->ar, sizeof(*kv));
    if (kv == NULL)
        return oom(w);
    for (size_t i = 0; i < m->n && rc == KILN_OK; i++) {
        const char *k = m->items[2 * i]->s;
        const node *v = m->items[2 * i + 1];
        char kw[300];
        snprintf(kw, sizeof(kw), "function '%s': kv.%s", f->fn.name, k);
        bool matched;
        if ((rc = parse_kv_limit(w, k, v, kw, &kv->limits, &matched)) != KILN_OK || matched)
            continue;
        if (strcmp(k, "backend") == 0) {
            rc = want_backend(w, v, kw, &kv->backend);
            continue;
        }
        /* grants */
        if (is_null(v))
            continue;
        if (v->kind != N_MAP)
            return fail(w, v, "%s must map namespace names to r or rw, e.g. {shared: rw}", kw);
        kiln_kv_grant_config *g = ar_alloc(w->ar, (v->n ? v->n : 1) * sizeof(*g));
        if (g == NULL)
            return oom(w);
        for (size_t j = 0; j < v->n; j++) {
            const node *gk = v->items[2 * j], *gv = v->items[2 * j + 1];
            if (!kiln_kv_ns_name_valid(gk->s))
                return fail(w, gk, "%s: namespace name '%s' may only contain 1 to 64 letters, "
                            "digits, '_', '-' and '.'", kw, gk->s);
            for (size_t x = 0; x < j; x++)
                if (strcmp(v->items[2 * x]->s, gk->s) == 0)
                    return fail(w, gk, "%s: namespace '%s' is granted twice", kw, gk->s);
            const char *mode = NULL;
            if (gv->kind == N_SCALAR && !is_null(gv))
                mode = gv->s;
            if (mode == NULL || (strcmp(mode, "r") != 0 && strcmp(mode, "rw") != 0 &&
                                 strcmp(mode, "read") != 0 && strcmp(mode, "read-write") != 0))
                return fail(w, gv, "%s.%s must be r (read-only) or rw (read-write)", kw, gk->s);
            g[j].ns = gk->s;
            g[j].write = strcmp(mode, "rw") == 0 || strcmp(mode, "read-write") == 0;
        }
        kv->grants = g;
        kv->n_grants = v->n;
    }
    f->fn.kv = kv;
    return rc;
}

/* Per function: log: {max_lines, max_bytes, max_line_bytes}, the guest's
 * log budget per invocation (kiln_log_limits; absent = defaults). */
static int parse_function_log(walk *w, const node *m, const char *what, cfg_function *f)
{
    static const char *const keys[] = {"max_lines", "max_bytes", "max_line_bytes", NULL};
    if (m->kind != N_MAP)
        return fail(w, m, "%s must be a mapping (max_lines, max_bytes, max_line_bytes), not %s",
                    what, kind_name(m));
    int rc = check_keys(w, m, what, keys);
    for (size_t i = 0; i < m->n && rc == KILN_OK; i++) {
        const char *k = m->items[2 * i]->s;
        const node *v = m->items[2 * i + 1];
        char kw[300];
        snprintf(kw, sizeof(kw), "function '%s': log.%s", f->fn.name, k);
        uint64_t u;
        if (strcmp(k, "max_lines") == 0) {
            if ((rc = want_uint(w, v, kw, 1, UINT32_MAX, &u)) == KILN_OK)
                f->fn.log.max_lines = (uint32_t)u;
        } else if (strcmp(k, "max_bytes") == 0) {
            if ((rc = want_size(w, v, kw, 1, (uint64_t)1 << 40, &u)) == KILN_OK)
                f->fn.log.max_bytes = u;
        } else if ((rc = want_size(w, v, kw, 16, KILN_LOG_MAX_LINE_BYTES, &u)) == KILN_OK) {
            f->fn.log.max_line_bytes = (uint32_t)u;
        }
    }
    return rc;
}

/* Per function: events: {namespace, types, retries, backoff, max_queue}. */
static int parse_function_events(walk *w, const node *m, const char *what, cfg_function *f)
{
    static const char *const keys[] = {"namespace", "types", "retries", "backoff", "max_queue",
                                       NULL};
    if (m->kind != N_MAP)
        return fail(w, m, "%s must be a mapping (namespace, types, retries, backoff, "
                    "max_queue), not %s", what, kind_name(m));
    int rc = check_keys(w, m, what, keys);
    if (rc != KILN_OK)
        return rc;
    cfg_events *e = ar_alloc(w->ar, sizeof(*e));
    if (e == NULL)
        return oom(w);
    *e = (cfg_events){.types = KILN_KV_EV_ALL, .retries = 3, .backoff_ms = 100,
                      .max_queue = KILN_KV_DEFAULT_MAX_EVENTS, .line = m->line};
    for (size_t i = 0; i < m->n && rc == KILN_OK; i++) {
        const char *k = m->items[2 * i]->s;
        const node *v = m->items[2 * i + 1];
        char kw[300];
        snprintf(kw, sizeof(kw), "function '%s': events.%s", f->fn.name, k);
        uint64_t u;
        if (strcmp(k, "namespace") == 0) {
            if ((rc = want_string(w, v, kw, &e->ns)) == KILN_OK && !kiln_kv_ns_name_valid(e->ns))
                return fail(w, v, "%s: '%s' is not a global namespace name (1 to 64 letters, "
                            "digits, '_', '-' or '.')", kw, e->ns);
        } else if (strcmp(k, "types") == 0) {
            if (v->kind != N_SEQ || v->n == 0)
                return fail(w, v, "%s must be a non-empty list of object-added, object-removed, "
                            "object-updated", kw);
            e->types = 0;
            for (size_t j = 0; j < v->n; j++) {
                const char *t;
                if ((rc = want_string(w, v->items[j], kw, &t)) != KILN_OK)
                    return rc;
                int ty = kiln_event_type_parse(t);
                if (ty < 0 || ty > (int)KILN_KV_EV_UPDATED)
                    return fail(w, v->items[j], "%s: unknown event type '%s'; a namespace "
                                "subscription takes object-added, object-removed and "
                                "object-updated", kw, t);
                e->types |= 1u << ty;
            }
        } else if (strcmp(k, "retries") == 0) {
            if ((rc = want_uint(w, v, kw, 0, 100, &u)) == KILN_OK)
                e->retries = (uint32_t)u;
        } else if (strcmp(k, "backoff") == 0) {
            if ((rc = want_duration(w, v, kw, 3600000, &u)) == KILN_OK)
                e->backoff_ms = (uint32_t)u;
        } else if ((rc = want_uint(w, v, kw, 1, (uint64_t)1 << 32, &u)) == KILN_OK) {
            e->max_queue = u;
        }
    }
    if (rc == KILN_OK && e->ns == NULL)
        return fail(w, m, "function '%s': events needs 'namespace' (the global key-value "
                    "namespace whose writes it receives)", f->fn.name);
    f->events = e;
    return rc;
}

/* A subscriber must be granted the namespace (r or rw): it is told about
 * that data and usually reads it. */
static int check_events_grant(walk *w, const cfg_function *f)
{
    const cfg_events *e = f->events;
    if (e == NULL)
        return KILN_OK;
    const kiln_kv_config *kv = f->fn.kv;
    for (size_t i = 0; kv != NULL && i < kv->n_grants; i++)
        if (strcmp(kv->grants[i].ns, e->ns) == 0)
            return KILN_OK;
    char line[32] = "";
    if (e->line > 0)
        snprintf(line, sizeof(line), "%d: ", e->line);
    return kiln_err_set(w->err, KILN_ECONFIG,
                        "%s:%sfunction '%s' subscribes to namespace '%s' (events.namespace) but "
                        "is not granted it; add kv: {grants: {%s: r}} to the function (a "
                        "subscriber must be allowed to read the namespace it hears about)",
                        w->file, line, f->fn.name, e->ns, e->ns);
}

static void function_defaults(cfg_function *f)
{
    f->fn.limits.max_memory_bytes = CFG_DEFAULT_MAX_MEMORY;
    f->fn.limits.timeout_ms = CFG_DEFAULT_TIMEOUT_MS;
    f->fn.max_output_bytes = CFG_DEFAULT_MAX_OUTPUT_BYTES;
    f->fn.max_var_bytes = CFG_DEFAULT_MAX_VAR_BYTES;
    f->fn.max_http_response_bytes = CFG_DEFAULT_MAX_HTTP_RESPONSE_BYTES;
}

/* A component (layer-1 binary) is served by abi 'component' only, and that
 * ABI serves nothing else: say so here, where the file and line are known,
 * rather than as a 503 later. Unreadable files are left to the loader. */
static int check_component_abi(walk *w, const node *abi, const cfg_function *f, const char *what)
{
    if (f->fn.module_path == NULL)
        return KILN_OK;
    uint8_t head[8];
    size_t n = 0;
    FILE *fp = fopen(f->fn.module_path, "rb");
    if (fp == NULL)
        return KILN_OK;
    n = fread(head, 1, sizeof(head), fp);
    fclose(fp);
    bool component = cm_is_component(head, n);
    bool wants = f->fn.abi != NULL && strcmp(f->fn.abi, "component") == 0;
    if (component && f->fn.abi != NULL && !wants)
        return fail(w, abi, "%s: its module is a WebAssembly component, which abi '%s' cannot "
                    "serve; set 'abi: component' or remove 'abi'",
                    what, f->fn.abi);
    if (!component && wants)
        return fail(w, abi, "%s: abi 'component' needs a WebAssembly component, and its module "
                    "is a core module; remove 'abi' to detect the core module's ABI",
                    what);
    return KILN_OK;
}

/* allow_http_response_headers is the Extism host option (http_request keeps
 * the response's headers for http_headers()). Other ABIs have no such switch:
 * the kiln ABI's http_response_headers always answers, proxy-wasm callouts
 * always carry their headers. Refuse it where the abi says it cannot apply
 * rather than let it silently do nothing; with abi detected it applies if
 * the module turns out to be an Extism or Otoroshi plugin. */
static int check_http_headers_abi(walk *w, const node *at, const cfg_function *f, const char *what)
{
    const char *abi = f->fn.abi;
    if (at == NULL || !f->fn.http_response_headers || abi == NULL ||
        strcmp(abi, "extism") == 0 || strcmp(abi, "otoroshi") == 0)
        return KILN_OK;
    return fail(w, at, "%s: 'allow_http_response_headers' is an Extism/Otoroshi setting and abi "
                "'%s' has no such switch; remove it or use abi extism or otoroshi",
                what, abi);
}

static int parse_function(walk *w, const node *key, const node *m, cfg_function *f,
                          const node **routes)
{
    static const char *const keys[] = {"module",
                                       "abi",
                                       "export",
                                       "env",
                                       "config",
                                       "allowed_hosts",
                                       "dirs",
                                       "max_memory",
                                       "timeout",
                                       "max_stack",
                                       "max_table_elems",
                                       "reuse",
                                       "snapshot",
                                       "request_json",
                                       "max_body_bytes",
                                       "max_output_bytes",
                                       "max_var_bytes",
                                       "max_http_response_bytes",
                                       "allow_http_response_headers",
                                       "kv",
                                       "log",
                                       "events",
                                       "routes",
                                       NULL};
    const char *name = key->s;
    char what[200];
    snprintf(what, sizeof(what), "function '%s'", name);
    if (!valid_name(name))
        return fail(w, key, "function name '%s' may only contain letters, digits, '_', '-' and '.'",
                    name);
    if (m->kind != N_MAP)
        return fail(w, m, "%s must be a mapping (module, abi, ...), not %s", what, kind_name(m));
    int rc = check_keys(w, m, what, keys);
    if (rc != KILN_OK)
        return rc;
    function_defaults(f);
    f->fn.name = name;
    f->line = key->line;
    *routes = NULL;
    const node *mod = get(m, "module");
    if (mod == NULL)
        return fail(w, m, "%s: missing key 'module' (the .wasm file to run)", what);
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->items[2 * i]->s;
        const node *v = m->items[2 * i + 1];
        char kw[260];
        snprintf(kw, sizeof(kw), "%s: '%s'", what, k);
        uint64_t u;
        if (strcmp(k, "module") == 0) {
            const char *p;
            if ((rc = want_string(w, v, kw, &p)) != KILN_OK)
                return rc;
            const char *abs = resolve(w, p);
            if (abs == NULL)
                return oom(w);
            struct stat st;
            if (stat(abs, &st) != 0)
                return fail(w, v, "%s: module '%s' not found (looked at %s)", what, p, abs);
            if (!S_ISREG(st.st_mode))
                return fail(w, v, "%s: module '%s' is not a regular file", what, p);
            f->fn.module_path = abs;
        } else if (strcmp(k, "abi") == 0) {
            const char *a;
            if ((rc = want_string(w, v, kw, &a)) != KILN_OK)
                return rc;
            /* The schema's values; whether this build has the ABI is checked
             * when the server loads the function. */
            static const char *const abis[] = {"wasi", "extism", "otoroshi", "opa",
                                               "proxy-wasm", "component"};
            bool known = strcmp(a, "auto") == 0;
            for (size_t j = 0; j < sizeof(abis) / sizeof(abis[0]); j++)
                if (strcmp(a, abis[j]) == 0) {
                    known = true;
                    f->fn.abi = a;
                }
            if (!known)
                return fail(w, v, "%s: abi '%s' is unknown; use wasi, extism, otoroshi, opa, "
                        "proxy-wasm, component or auto",
                            what, a);
        } else if (strcmp(k, "export") == 0) {
            rc = want_string(w, v, kw, &f->fn.export_name);
        } else if (strcmp(k, "env") == 0) {
            rc = parse_kv(w, v, kw, true, &f->fn.env, &f->fn.n_env);
        } else if (strcmp(k, "config") == 0) {
            rc = parse_kv(w, v, kw, false, &f->fn.config, &f->fn.n_config);
        } else if (strcmp(k, "allowed_hosts") == 0) {
            if (v->kind != N_SEQ)
                return fail(w, v, "%s must be a list of host names or globs", kw);
            const char **h = ar_alloc(w->ar, (v->n ? v->n : 1) * sizeof(*h));
            if (h == NULL)
                return oom(w);
            for (size_t j = 0; j < v->n && rc == KILN_OK; j++)
                rc = want_string(w, v->items[j], kw, &h[j]);
            f->fn.allowed_hosts = h;
            f->fn.n_allowed_hosts = v->n;
        } else if (strcmp(k, "dirs") == 0) {
            rc = parse_dirs(w, v, kw, f);
        } else if (strcmp(k, "max_memory") == 0) {
            if ((rc = want_size(w, v, kw, 65536, (uint64_t)4 << 30, &u)) == KILN_OK)
                f->fn.limits.max_memory_bytes = u;
        } else if (strcmp(k, "timeout") == 0) {
            if ((rc = want_duration(w, v, kw, UINT32_MAX, &u)) == KILN_OK)
                f->fn.limits.timeout_ms = (uint32_t)u;
        } else if (strcmp(k, "max_stack") == 0) {
            if ((rc = want_size(w, v, kw, (uint64_t)64 << 10, (uint64_t)256 << 20, &u)) == KILN_OK)
                f->fn.limits.max_stack_bytes = (uint32_t)u;
        } else if (strcmp(k, "max_table_elems") == 0) {
            if ((rc = want_uint(w, v, kw, 1, 100000000, &u)) == KILN_OK)
                f->fn.limits.max_table_elems = (uint32_t)u;
        } else if (strcmp(k, "reuse") == 0) {
            rc = want_bool(w, v, kw, &f->fn.reuse);
        } else if (strcmp(k, "snapshot") == 0) {
            rc = want_bool(w, v, kw, &f->fn.snapshot);
        } else if (strcmp(k, "request_json") == 0) {
            rc = want_bool(w, v, kw, &f->fn.request_json);
        } else if (strcmp(k, "max_body_bytes") == 0) {
            if ((rc = want_size(w, v, kw, 0, (uint64_t)1 << 32, &u)) == KILN_OK)
                f->max_body_bytes = (size_t)u;
        } else if (strcmp(k, "max_output_bytes") == 0) {
            if ((rc = want_size(w, v, kw, 1, (uint64_t)1 << 31, &u)) == KILN_OK)
                f->fn.max_output_bytes = (size_t)u;
        } else if (strcmp(k, "max_var_bytes") == 0) {
            if ((rc = want_size(w, v, kw, 0, (uint64_t)1 << 31, &u)) == KILN_OK)
                f->fn.max_var_bytes = (size_t)u;
        } else if (strcmp(k, "max_http_response_bytes") == 0) {
            if ((rc = want_size(w, v, kw, 0, (uint64_t)1 << 32, &u)) == KILN_OK)
                f->fn.max_http_response_bytes = (size_t)u;
        } else if (strcmp(k, "allow_http_response_headers") == 0) {
            rc = want_bool(w, v, kw, &f->fn.http_response_headers);
        } else if (strcmp(k, "kv") == 0) {
            rc = parse_function_kv(w, v, kw, f);
        } else if (strcmp(k, "log") == 0) {
            rc = parse_function_log(w, v, kw, f);
        } else if (strcmp(k, "events") == 0) {
            char ew[260];
            snprintf(ew, sizeof(ew), "function '%s': events", name);
            rc = parse_function_events(w, v, ew, f);
        } else if (strcmp(k, "routes") == 0) {
            if (v->kind != N_SEQ && v->kind != N_SCALAR)
                return fail(w, v, "%s must be a path or a list of routes", kw);
            *routes = v;
        }
        if (rc != KILN_OK)
            return rc;
    }
    if ((rc = check_events_grant(w, f)) != KILN_OK)
        return rc;
    if ((rc = check_http_headers_abi(w, get(m, "allow_http_response_headers"), f, what)) != KILN_OK)
        return rc;
    return check_component_abi(w, get(m, "abi"), f, what);
}

static int walk_root(walk *w, const node *root)
{
    static const char *const keys[] = {"server", "kv",    "functions", "routes",
                                       "sinks",  "clusters", NULL};
    cfg_config *c = w->c;
    if (root == NULL || is_null(root))
        return fail(w, NULL, "the configuration is empty; it needs 'functions' and 'routes'");
    if (root->kind != N_MAP)
        return fail(w, root, "the configuration must be a mapping with 'server', 'functions' and "
                    "'routes', not %s", kind_name(root));
    int rc = check_keys(w, root, "the configuration", keys);
    if (rc != KILN_OK)
        return rc;
    const node *srv = get(root, "server"), *fns = get(root, "functions"),
               *rts = get(root, "routes");
    if (srv != NULL && !is_null(srv) && (rc = parse_server(w, srv)) != KILN_OK)
        return rc;
    const node *kvn = get(root, "kv");
    if (kvn != NULL && !is_null(kvn) && (rc = parse_server_kv(w, kvn)) != KILN_OK)
        return rc;
    if (fns == NULL || is_null(fns))
        return fail(w, root, "missing key 'functions' (a mapping of function names to modules)");
    if (fns->kind != N_MAP)
        return fail(w, fns, "'functions' must be a mapping of names to functions, not %s",
                    kind_name(fns));
    for (size_t i = 0; i < fns->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(fns->items[2 * i]->s, fns->items[2 * j]->s) == 0)
                return fail(w, fns->items[2 * i], "function '%s' is defined twice (first on line "
                            "%d)", fns->items[2 * i]->s, fns->items[2 * j]->line);
    c->functions = ar_alloc(w->ar, (fns->n ? fns->n : 1) * sizeof(*c->functions));
    const node **fn_routes = ar_alloc(w->ar, (fns->n ? fns->n : 1) * sizeof(*fn_routes));
    if (c->functions == NULL || fn_routes == NULL)
        return oom(w);
    for (size_t i = 0; i < fns->n; i++) {
        rc = parse_function(w, fns->items[2 * i], fns->items[2 * i + 1], &c->functions[i],
                            &fn_routes[i]);
        if (rc != KILN_OK)
            return rc;
        c->n_functions++;
    }
    /* A body over the server-wide buffer cap could never be admitted: say so now rather
     * than answer 503 forever. */
    size_t cap = c->server.max_buffered_body_bytes;
    if (c->server.max_body_bytes > cap) {
        const node *at = srv != NULL && srv->kind == N_MAP ? get(srv, "max_buffered_body_bytes")
                                                           : NULL;
        return fail(w, at ? at : srv, "server.max_buffered_body_bytes (%zu bytes) is smaller than "
                    "server.max_body_bytes (%zu bytes): no full-size request body could ever be "
                    "admitted; raise the first or lower the second", cap,
                    c->server.max_body_bytes);
    }
    for (size_t i = 0; i < c->n_functions; i++)
        if (c->functions[i].max_body_bytes > cap)
            return fail(w, fns->items[2 * i + 1], "function '%s': max_body_bytes (%zu bytes) is "
                        "larger than server.max_buffered_body_bytes (%zu bytes): such a body "
                        "could never be admitted; raise the server's cap or lower the function's "
                        "limit", c->functions[i].fn.name, c->functions[i].max_body_bytes, cap);
    /* Routes: the top-level list plus each function's own. */
    size_t total = 0;
    if (rts != NULL && !is_null(rts)) {
        if (rts->kind != N_SEQ)
            return fail(w, rts, "'routes' must be a list of routes, not %s", kind_name(rts));
        total += rts->n;
    }
    for (size_t i = 0; i < c->n_functions; i++)
        if (fn_routes[i] != NULL)
            total += fn_routes[i]->kind == N_SEQ ? fn_routes[i]->n : 1;
    c->routes = ar_alloc(w->ar, (total ? total : 1) * sizeof(*c->routes));
    if (c->routes == NULL)
        return oom(w);
    for (size_t i = 0; i < c->n_functions; i++) {
        const node *fr = fn_routes[i];
        if (fr == NULL)
            continue;
        if (fr->kind == N_SCALAR) {
            if ((rc = parse_route(w, fr, (long)i, &c->routes[c->n_routes])) != KILN_OK)
                return rc;
            c->n_routes++;
            continue;
        }
        for (size_t j = 0; j < fr->n; j++) {
            if ((rc = parse_route(w, fr->items[j], (long)i, &c->routes[c->n_routes])) != KILN_OK)
                return rc;
            c->n_routes++;
        }
    }
    if (rts != NULL && !is_null(rts)) {
        for (size_t j = 0; j < rts->n; j++) {
            if ((rc = parse_route(w, rts->items[j], -1, &c->routes[c->n_routes])) != KILN_OK)
                return rc;
            c->n_routes++;
        }
    }
    const node *sk = get(root, "sinks");
    if (sk != NULL && !is_null(sk) &&
        (rc = parse_plugins(w, sk, "'sinks'", true, &c->sinks, &c->n_sinks)) != KILN_OK)
        return rc;
    const node *cl = get(root, "clusters");
    if (cl != NULL && !is_null(cl)) {
        if ((rc = parse_kv(w, cl, "'clusters'", false, &c->clusters, &c->n_clusters)) != KILN_OK)
            return rc;
        for (size_t i = 0; i < c->n_clusters; i++)
            if (strncmp(c->clusters[i].value, "http://", 7) != 0 &&
                strncmp(c->clusters[i].value, "https://", 8) != 0)
                return fail(w, cl->items[2 * i + 1], "cluster '%s': '%s' must be an http:// or "
                            "https:// URL", c->clusters[i].name, c->clusters[i].value);
        for (size_t i = 0; i < c->n_functions; i++) {
            c->functions[i].fn.clusters = c->clusters;
            c->functions[i].fn.n_clusters = c->n_clusters;
        }
    }
    /* A sidecar without routes means "route it as a directory function". */
    for (size_t i = 0; i < c->n_functions && !w->sidecar; i++) {
        bool used = false;
        for (size_t j = 0; j < c->n_routes && !used; j++) {
            used = c->routes[j].function == i;
            for (size_t k = 0; k < c->routes[j].n_plugins && !used; k++)
                used = c->routes[j].plugins[k].function == i;
        }
        for (size_t j = 0; j < c->n_sinks && !used; j++)
            used = c->sinks[j].function == i;
        if (!used)
            warn(w, "%s:%d: function '%s' has no route", w->file, c->functions[i].line,
                 c->functions[i].fn.name);
    }
    return KILN_OK;
}

void cfg_server_defaults(cfg_server *s)
{
    memset(s, 0, sizeof(*s));
    s->listen = CFG_DEFAULT_LISTEN;
    s->max_header_bytes = CFG_DEFAULT_MAX_HEADER_BYTES;
    s->max_body_bytes = CFG_DEFAULT_MAX_BODY_BYTES;
    s->connection_timeout_s = CFG_DEFAULT_CONNECTION_TIMEOUT_S;
    s->drain_timeout_s = CFG_DEFAULT_DRAIN_TIMEOUT_S;
    s->max_connections = CFG_DEFAULT_MAX_CONNECTIONS;
    s->max_connections_per_ip = CFG_DEFAULT_MAX_CONNECTIONS_PER_IP;
    s->max_in_flight = CFG_DEFAULT_MAX_IN_FLIGHT;
    s->header_timeout_ms = CFG_DEFAULT_HEADER_TIMEOUT_MS;
    s->min_body_rate = CFG_DEFAULT_MIN_BODY_RATE;
    s->max_buffered_body_bytes = CFG_DEFAULT_MAX_BUFFERED_BODY_BYTES;
}

static cfg_config *config_new(const char *source, struct cfg_arena **ar_out)
{
    struct cfg_arena *ar = kiln_calloc(1, sizeof(*ar));
    if (ar == NULL)
        return NULL;
    cfg_config *c = ar_alloc(ar, sizeof(*c));
    if (c == NULL || (c->source = ar_strdup(ar, source)) == NULL) {
        ar_free(ar);
        return NULL;
    }
    c->arena = ar;
    cfg_server_defaults(&c->server);
    *ar_out = ar;
    return c;
}

static bool looks_like_json(const char *name, const char *text, size_t len)
{
    size_t nl = strlen(name);
    if (nl >= 5 && strcasecmp(name + nl - 5, ".json") == 0)
        return true;
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)text[i]))
            continue;
        return text[i] == '{';
    }
    return false;
}

static int parse_text(const char *text, size_t len, const char *name, const char *base_dir,
                      bool sidecar, cfg_config **out, kiln_err *err);

int cfg_parse(const char *text, size_t len, const char *name, const char *base_dir,
              cfg_config **out, kiln_err *err)
{
    return parse_text(text, len, name, base_dir, false, out, err);
}

static int parse_text(const char *text, size_t len, const char *name, const char *base_dir,
                      bool sidecar, cfg_config **out, kiln_err *err)
{
    *out = NULL;
    struct cfg_arena *ar;
    cfg_config *c = config_new(name, &ar);
    if (c == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", name);
    tree t;
    memset(&t, 0, sizeof(t));
    int rc = looks_like_json(name, text, len) ? json_tree(text, len, name, &t, err)
                                               : yaml_tree(text, len, name, &t, err);
    if (rc == KILN_OK) {
        walk w;
        memset(&w, 0, sizeof(w));
        w.file = c->source;
        w.sidecar = sidecar;
        w.base_dir = base_dir ? ar_strdup(ar, base_dir) : NULL;
        w.c = c;
        w.ar = ar;
        w.err = err;
        /* Node strings are referenced by the result: move the tree's chunks
         * into the configuration's arena instead of copying. */
        rc = walk_root(&w, t.root);
        c->warnings = w.warn;
        c->n_warnings = w.n_warn;
    }
    if (t.ar.head != NULL) {
        ar_chunk *last = t.ar.head;
        while (last->next != NULL)
            last = last->next;
        last->next = ar->head;
        ar->head = t.ar.head;
    }
    if (rc != KILN_OK) {
        cfg_free(c);
        return rc;
    }
    *out = c;
    return KILN_OK;
}

int cfg_load_file(const char *path, cfg_config **out, kiln_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return kiln_err_set(err, KILN_ENOENT, "%s: cannot open the configuration: %s", path,
                            strerror(errno));
    size_t cap = 65536, len = 0;
    char *buf = kiln_malloc(cap);
    int rc = buf ? KILN_OK : KILN_ENOMEM;
    while (rc == KILN_OK) {
        if (len == cap) {
            if (cap >= ((size_t)16 << 20)) {
                rc = kiln_err_set(err, KILN_ECONFIG, "%s: larger than 16 MiB", path);
                break;
            }
            char *nb = kiln_realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = KILN_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = kiln_err_set(err, KILN_EIO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (rc == KILN_ENOMEM)
        kiln_err_set(err, rc, "%s: out of memory", path);
    if (rc == KILN_OK) {
        /* Relative paths inside are relative to the file's directory. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
        rc = cfg_parse(buf, len, path, dir, out, err);
    }
    kiln_free(buf);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Move `from`'s memory into `into`'s arena: `from` is then part of `into`. */
static void ar_adopt(struct cfg_arena *into, struct cfg_arena *from)
{
    if (from->head != NULL) {
        ar_chunk *last = from->head;
        while (last->next != NULL)
            last = last->next;
        last->next = into->head;
        into->head = from->head;
        from->head = NULL;
    }
    kiln_free(from);
}

bool cfg_has_function(const cfg_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_functions; i++)
        if (strcmp(c->functions[i].fn.name, name) == 0)
            return true;
    return false;
}

int cfg_merge(cfg_config *into, cfg_config *from, kiln_err *err)
{
    struct cfg_arena *ar = into->arena;
    size_t nf = into->n_functions + from->n_functions, nr = into->n_routes + from->n_routes;
    size_t nw = into->n_warnings + from->n_warnings + from->n_functions;
    cfg_function *fns = ar_alloc(ar, (nf ? nf : 1) * sizeof(*fns));
    cfg_route *routes = ar_alloc(ar, (nr ? nr : 1) * sizeof(*routes));
    size_t *map = kiln_malloc((from->n_functions ? from->n_functions : 1) * sizeof(*map));
    const char **warn = ar_alloc(ar, (nw ? nw : 1) * sizeof(*warn));
    if (fns == NULL || routes == NULL || map == NULL || warn == NULL) {
        kiln_free(map);
        cfg_free(from);
        return kiln_err_set(err, KILN_ENOMEM, "out of memory merging configurations");
    }
    if (into->n_functions > 0)
        memcpy(fns, into->functions, into->n_functions * sizeof(*fns));
    if (into->n_routes > 0)
        memcpy(routes, into->routes, into->n_routes * sizeof(*routes));
    if (into->n_warnings > 0)
        memcpy(warn, into->warnings, into->n_warnings * sizeof(*warn));
    size_t n = into->n_functions, r = into->n_routes, w = into->n_warnings;
    for (size_t i = 0; i < from->n_warnings; i++)
        warn[w++] = from->warnings[i];
    for (size_t i = 0; i < from->n_functions; i++) {
        map[i] = SIZE_MAX;
        const char *name = from->functions[i].fn.name;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(fns[k].fn.name, name) == 0;
        if (dup) {
            char *msg = ar_alloc(ar, 400);
            if (msg != NULL) {
                snprintf(msg, 400, "%s: function '%s' skipped: %s already defines it",
                         from->source, name, into->source);
                warn[w++] = msg;
            }
            continue;
        }
        map[i] = n;
        fns[n++] = from->functions[i];
    }
    for (size_t i = 0; i < from->n_routes; i++) {
        size_t fi = from->routes[i].function;
        if (fi != CFG_NO_FUNCTION && map[fi] == SIZE_MAX)
            continue;
        routes[r] = from->routes[i];
        if (fi != CFG_NO_FUNCTION)
            routes[r].function = map[fi];
        if (routes[r].n_plugins > 0) {
            /* Plugins name functions by index: renumber them into `into`. */
            cfg_plugin *pl = ar_alloc(ar, routes[r].n_plugins * sizeof(*pl));
            if (pl == NULL) {
                kiln_free(map);
                cfg_free(from);
                return kiln_err_set(err, KILN_ENOMEM, "out of memory merging configurations");
            }
            memcpy(pl, routes[r].plugins, routes[r].n_plugins * sizeof(*pl));
            for (size_t k = 0; k < routes[r].n_plugins; k++)
                if (pl[k].function != CFG_NO_FUNCTION)
                    pl[k].function = map[pl[k].function] != SIZE_MAX ? map[pl[k].function]
                                                                     : CFG_NO_FUNCTION;
            routes[r].plugins = pl;
        }
        r++;
    }
    kiln_free(map);
    into->functions = fns;
    into->n_functions = n;
    into->routes = routes;
    into->n_routes = r;
    into->warnings = warn;
    into->n_warnings = w;
    ar_adopt(ar, from->arena);
    return KILN_OK;
}

/*
 * A directory function with a sidecar (NAME.yaml, NAME.yml or NAME.json next
 * to NAME.wasm): its settings in the keys of a function in kiln.yaml, without
 * `module` (it is NAME.wasm). Parsed as a one-function configuration whose
 * text wraps the sidecar, so every key and every error message is the same
 * as in kiln.yaml. NULL path = no sidecar.
 */
static char *sidecar_path(const char *dir, const char *base)
{
    static const char *const exts[] = {".yaml", ".yml", ".json"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(dir) + strlen(base) + strlen(exts[i]) + 2;
        char *p = kiln_malloc(n);
        if (p == NULL)
            return NULL;
        snprintf(p, n, "%s/%s%s", dir, base, exts[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            return p;
        kiln_free(p);
    }
    return NULL;
}

static int load_sidecar(const char *dir, const char *base, const char *sidecar,
                        cfg_config **out, kiln_err *err)
{
    *out = NULL;
    FILE *f = fopen(sidecar, "rb");
    if (f == NULL)
        return kiln_err_set(err, KILN_ENOENT, "%s: cannot read: %s", sidecar, strerror(errno));
    char *text = kiln_malloc(CFG_MAX_SIDECAR + 1);
    size_t len = text ? fread(text, 1, CFG_MAX_SIDECAR + 1, f) : 0;
    fclose(f);
    if (text == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", sidecar);
    if (len > CFG_MAX_SIDECAR) {
        kiln_free(text);
        return kiln_err_set(err, KILN_ECONFIG, "%s: larger than %d bytes", sidecar,
                            CFG_MAX_SIDECAR);
    }
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        kiln_free(text);
        return kiln_err_set(err, KILN_ECONFIG, "%s: contains a NUL byte", sidecar);
    }
    /* Wrap: a flow mapping ({...}, JSON or YAML) is spliced after the module
     * key; a block mapping is indented under the function. Line numbers in
     * messages are off by the two wrapper lines, so name the sidecar. */
    size_t cap = len * 5 + strlen(base) * 2 + 128;
    char *doc = kiln_malloc(cap);
    if (doc == NULL) {
        kiln_free(text);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", sidecar);
    }
    const char *t = text;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
        t++;
    int n;
    if (*t == '{') {
        const char *inner = t + 1;
        while (*inner == ' ' || *inner == '\t' || *inner == '\r' || *inner == '\n')
            inner++;
        n = snprintf(doc, cap, "{\"functions\": {\"%s\": {\"module\": \"%s.wasm\"%s%s}}",
                     base, base, *inner == '}' ? "" : ", ", inner);
    } else {
        n = snprintf(doc, cap, "functions:\n  \"%s\":\n    module: \"%s.wasm\"\n    ", base, base);
        for (const char *p = text; *p && n > 0 && (size_t)n < cap - 8; p++) {
            doc[n++] = *p;
            if (*p == '\n')
                n += snprintf(doc + n, cap - (size_t)n, "    ");
        }
        doc[n] = '\0';
    }
    kiln_free(text);
    int rc = parse_text(doc, strlen(doc), sidecar, dir, true, out, err);
    kiln_free(doc);
    if (rc == KILN_OK && (*out)->n_functions == 1 && (*out)->n_routes == 0)
        (*out)->functions[0].auto_routes = true; /* no routes given: as without a sidecar */
    return rc;
}

int cfg_load_dir(const char *dir, cfg_config **out, kiln_err *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return kiln_err_set(err, KILN_ENOENT, "%s: cannot read the directory: %s", dir,
                            strerror(errno));
    struct cfg_arena *ar;
    cfg_config *c = config_new(dir, &ar);
    if (c == NULL) {
        closedir(d);
        return kiln_err_set(err, KILN_ENOMEM, "%s: out of memory", dir);
    }
    c->from_dir = true;
    walk w;
    memset(&w, 0, sizeof(w));
    w.file = dir;
    w.c = c;
    w.ar = ar;
    w.err = err;
    size_t n = 0, cap = 16;
    char **names = ar_alloc(ar, cap * sizeof(*names));
    int rc = names ? KILN_OK : KILN_ENOMEM;
    struct dirent *e;
    while (rc == KILN_OK && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".wasm") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nn = ar_alloc(ar, cap * 2 * sizeof(*nn));
            if (nn == NULL) {
                rc = KILN_ENOMEM;
                break;
            }
            memcpy(nn, names, n * sizeof(*nn));
            names = nn;
            cap *= 2;
        }
        if ((names[n] = ar_strdup(ar, e->d_name)) == NULL)
            rc = KILN_ENOMEM;
        else
            n++;
    }
    closedir(d);
    cfg_config **sidecars = NULL;
    size_t n_side = 0;
    if (rc == KILN_OK) {
        qsort(names, n, sizeof(*names), name_cmp);
        c->functions = ar_alloc(ar, (n ? n : 1) * sizeof(*c->functions));
        sidecars = kiln_calloc(n ? n : 1, sizeof(*sidecars));
        if (c->functions == NULL || sidecars == NULL)
            rc = KILN_ENOMEM;
    }
    for (size_t i = 0; rc == KILN_OK && i < n; i++) {
        char *base = ar_strndup(ar, names[i], strlen(names[i]) - 5);
        size_t pl = strlen(dir) + strlen(names[i]) + 2;
        char *path = ar_alloc(ar, pl);
        if (base == NULL || path == NULL) {
            rc = KILN_ENOMEM;
            break;
        }
        snprintf(path, pl, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* The name becomes a URL segment: keep it to characters that need no
         * escaping and cannot be read as route syntax. */
        if (!valid_name(base)) {
            warn(&w, "%s: skipped: the name may only contain letters, digits, '_', '-' and '.'",
                 path);
            continue;
        }
        char *side = sidecar_path(dir, base);
        if (side != NULL) {
            cfg_config *one;
            kiln_err serr;
            memset(&serr, 0, sizeof(serr));
            if (load_sidecar(dir, base, side, &one, &serr) == KILN_OK)
                sidecars[n_side++] = one;
            else
                warn(&w, "%s: function '%s' skipped: %s", path, base, serr.msg);
            kiln_free(side);
            continue;
        }
        cfg_function *f = &c->functions[c->n_functions++];
        function_defaults(f);
        f->fn.name = base;
        f->fn.module_path = path;
        f->auto_routes = true;
    }
    c->warnings = w.warn;
    c->n_warnings = w.n_warn;
    for (size_t i = 0; i < n_side; i++)
        if (rc == KILN_OK)
            rc = cfg_merge(c, sidecars[i], err) == KILN_OK ? KILN_OK : KILN_ENOMEM;
        else
            cfg_free(sidecars[i]);
    kiln_free(sidecars);
    if (rc != KILN_OK) {
        cfg_free(c);
        return kiln_err_set(err, rc, "%s: out of memory", dir);
    }
    *out = c;
    return KILN_OK;
}
