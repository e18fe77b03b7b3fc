/*
 * stage.c - the state of one request going through a route's chain
 * (kiln_stage, include/kiln/handler.h): the request as the plugins have
 * edited it so far, the response, the attributes they share, and one slot
 * per plugin for ABIs that keep a stream across phases.
 *
 * Ownership: the request handed to kiln_stage_new is borrowed until the
 * first edit of each part; an edit copies that part (method, URL, headers
 * or body) into memory the stage owns. kiln_stage_info strings are borrowed
 * from the route table, which outlives every request. Attribute values are
 * kept as the JSON text given, byte for byte.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "kiln/handler.h"

typedef struct stage_attr {
    char *key;
    char *json;
    size_t len;
} stage_attr;

struct kiln_stage {
    kiln_stage_info info;
    kiln_request req; /* the current view */
    char *method, *url, *path; /* owned copies once edited; query points into url */
    kiln_kv *headers;          /* owned once edited (names and values too) */
    size_t n_headers, cap_headers;
    bool own_headers;
    uint8_t *body; /* owned once edited */
    kiln_response resp;
    stage_attr *attrs;
    size_t n_attrs, cap_attrs;
    void *streams[KILN_STAGE_MAX_PLUGINS];
};

static const char *const kind_names[KILN_STAGE_KINDS] = {
    "matcher", "pre-route", "access", "request", "response", "sink", "proxy-wasm",
};

const char *kiln_stage_kind_name(kiln_stage_kind kind)
{
    return (unsigned)kind < KILN_STAGE_KINDS ? kind_names[kind] : "unknown";
}

int kiln_stage_kind_parse(const char *name)
{
    for (int i = 0; i < KILN_STAGE_KINDS; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

int kiln_stage_new(const kiln_request *req, const kiln_stage_info *info, size_t max_body,
                   kiln_stage **out)
{
    kiln_stage *st = kiln_calloc(1, sizeof(*st));
    *out = st;
    if (st == NULL)
        return KILN_ENOMEM;
    if (info != NULL)
        st->info = *info;
    if (st->info.route == NULL)
        st->info.route = "";
    if (st->info.backend == NULL)
        st->info.backend = "";
    st->req = *req;
    kiln_response_init(&st->resp, max_body);
    return KILN_OK;
}

static void free_headers(kiln_stage *st)
{
    if (!st->own_headers)
        return;
    for (size_t i = 0; i < st->n_headers; i++) {
        kiln_free((void *)st->headers[i].name);
        kiln_free((void *)st->headers[i].value);
    }
    kiln_free(st->headers);
    st->headers = NULL;
    st->n_headers = st->cap_headers = 0;
    st->own_headers = false;
}

void kiln_stage_free(kiln_stage *st)
{
    if (st == NULL)
        return;
    kiln_free(st->method);
    kiln_free(st->url);
    kiln_free(st->path);
    free_headers(st);
    kiln_free(st->body);
    kiln_response_fini(&st->resp);
    kiln_stage_attrs_clear(st);
    kiln_free(st->attrs);
    kiln_free(st);
}

const kiln_stage_info *kiln_stage_get_info(const kiln_stage *st)
{
    return &st->info;
}

const kiln_request *kiln_stage_request(const kiln_stage *st)
{
    return &st->req;
}

kiln_response *kiln_stage_response(kiln_stage *st)
{
    return &st->resp;
}

int kiln_stage_set_method(kiln_stage *st, const char *method)
{
    char *m = kiln_strdup(method);
    if (m == NULL)
        return KILN_ENOMEM;
    kiln_free(st->method);
    st->method = m;
    st->req.method = m;
    return KILN_OK;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kiln_stage_set_url(kiln_stage *st, const char *url)
{
    /* An absolute URL: keep its path and query (the backend is the route's). */
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme != NULL && strcspn(url, "/?") > (size_t)(scheme - url)) {
        p = strpbrk(scheme + 3, "/?");
        if (p == NULL)
            p = "/";
    }
    size_t n = strlen(p);
    /* "?x=1" alone means the root with that query. */
    bool slash = p[0] != '/';
    char *u = kiln_malloc(n + 2);
    char *path = kiln_malloc(n + 2);
    if (u == NULL || path == NULL) {
        kiln_free(u);
        kiln_free(path);
        return KILN_ENOMEM;
    }
    size_t o = 0;
    if (slash)
        u[o++] = '/';
    memcpy(u + o, p, n + 1);
    /* The decoded path; a %00 or a bad escape stays as written. */
    const char *q = strchr(u, '?');
    size_t plen = q ? (size_t)(q - u) : strlen(u), d = 0;
    for (size_t i = 0; i < plen; i++) {
        int hi, lo;
        if (u[i] == '%' && i + 2 < plen && (hi = hexval(u[i + 1])) >= 0 &&
            (lo = hexval(u[i + 2])) >= 0 && (hi | lo) != 0) {
            path[d++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            path[d++] = u[i];
        }
    }
    path[d] = '\0';
    kiln_free(st->url);
    kiln_free(st->path);
    st->url = u;
    st->path = path;
    st->req.url = u;
    st->req.path = path;
    st->req.query = q ? q + 1 : "";
    return KILN_OK;
}

static int push_header(kiln_stage *st, const char *name, const char *value)
{
    if (st->n_headers == st->cap_headers) {
        size_t cap = st->cap_headers ? st->cap_headers * 2 : 16;
        kiln_kv *h = kiln_realloc(st->headers, cap * sizeof(*h));
        if (h == NULL)
            return KILN_ENOMEM;
        st->headers = h;
        st->cap_headers = cap;
    }
    char *n = kiln_strdup(name), *v = kiln_strdup(value);
    if (n == NULL || v == NULL) {
        kiln_free(n);
        kiln_free(v);
        return KILN_ENOMEM;
    }
    st->headers[st->n_headers].name = n;
    st->headers[st->n_headers].value = v;
    st->n_headers++;
    return KILN_OK;
}

static void sync_headers(kiln_stage *st)
{
    st->req.headers = st->headers;
    st->req.n_headers = st->n_headers;
}

int kiln_stage_set_headers(kiln_stage *st, const kiln_kv *h, size_t n)
{
    /* Build the new map before dropping the old: h may point into it. */
    kiln_stage fresh;
    memset(&fresh, 0, sizeof(fresh));
    fresh.own_headers = true;
    for (size_t i = 0; i < n; i++)
        if (push_header(&fresh, h[i].name, h[i].value ? h[i].value : "") != KILN_OK) {
            free_headers(&fresh);
            return KILN_ENOMEM;
        }
    free_headers(st);
    st->headers = fresh.headers;
    st->n_headers = fresh.n_headers;
    st->cap_headers = fresh.cap_headers;
    st->own_headers = true;
    sync_headers(st);
    return KILN_OK;
}

/* Take ownership of the header map before editing it in place. */
static int own_headers(kiln_stage *st)
{
    if (st->own_headers)
        return KILN_OK;
    return kiln_stage_set_headers(st, st->req.headers, st->req.n_headers);
}

int kiln_stage_set_header(kiln_stage *st, const char *name, const char *value)
{
    int rc = own_headers(st);
    if (rc != KILN_OK)
        return rc;
    size_t w = 0;
    bool set = false;
    for (size_t i = 0; i < st->n_headers; i++) {
        kiln_kv *h = &st->headers[i];
        if (strcasecmp(h->name, name) != 0) {
            st->headers[w++] = *h;
            continue;
        }
        if (value != NULL && !set) {
            char *v = kiln_strdup(value);
            if (v == NULL) {
                /* Keep the map consistent: move what is left down unchanged. */
                for (; i < st->n_headers; i++)
                    st->headers[w++] = st->headers[i];
                st->n_headers = w;
                sync_headers(st);
                return KILN_ENOMEM;
            }
            kiln_free((void *)h->value);
            h->value = v;
            st->headers[w++] = *h;
            set = true;
            continue;
        }
        kiln_free((void *)h->name);
        kiln_free((void *)h->value);
    }
    st->n_headers = w;
    rc = KILN_OK;
    if (value != NULL && !set)
        rc = push_header(st, name, value);
    sync_headers(st);
    return rc;
}

int kiln_stage_set_body(kiln_stage *st, const void *body, size_t len)
{
    uint8_t *b = kiln_malloc(len ? len : 1);
    if (b == NULL)
        return KILN_ENOMEM;
    if (len > 0)
        memcpy(b, body, len);
    kiln_free(st->body);
    st->body = b;
    st->req.body = b;
    st->req.body_len = len;
    return KILN_OK;
}

/* ---- attributes ----------------------------------------------------------------- */

static stage_attr *find_attr(const kiln_stage *st, const char *key)
{
    for (size_t i = 0; i < st->n_attrs; i++)
        if (strcmp(st->attrs[i].key, key) == 0)
            return &st->attrs[i];
    return NULL;
}

const char *kiln_stage_attr(const kiln_stage *st, const char *key)
{
    stage_attr *a = find_attr(st, key);
    return a ? a->json : NULL;
}

int kiln_stage_attr_set(kiln_stage *st, const char *key, const char *json, size_t len)
{
    char *v = kiln_malloc(len + 1);
    if (v == NULL)
        return KILN_ENOMEM;
    memcpy(v, json, len);
    v[len] = '\0';
    stage_attr *a = find_attr(st, key);
    if (a != NULL) {
        kiln_free(a->json);
        a->json = v;
        a->len = len;
        return KILN_OK;
    }
    if (st->n_attrs == st->cap_attrs) {
        size_t cap = st->cap_attrs ? st->cap_attrs * 2 : 8;
        stage_attr *na = kiln_realloc(st->attrs, cap * sizeof(*na));
        if (na == NULL) {
            kiln_free(v);
            return KILN_ENOMEM;
        }
        st->attrs = na;
        st->cap_attrs = cap;
    }
    char *k = kiln_strdup(key);
    if (k == NULL) {
        kiln_free(v);
        return KILN_ENOMEM;
    }
    st->attrs[st->n_attrs++] = (stage_attr){k, v, len};
    return KILN_OK;
}

bool kiln_stage_attr_del(kiln_stage *st, const char *key)
{
    stage_attr *a = find_attr(st, key);
    if (a == NULL)
        return false;
    kiln_free(a->key);
    kiln_free(a->json);
    *a = st->attrs[--st->n_attrs];
    return true;
}

void kiln_stage_attrs_clear(kiln_stage *st)
{
    for (size_t i = 0; i < st->n_attrs; i++) {
        kiln_free(st->attrs[i].key);
        kiln_free(st->attrs[i].json);
    }
    st->n_attrs = 0;
}

/* Append s (n bytes) as a JSON string literal; keys are the only strings here. */
static size_t put_key(char *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(out + o, "\\u00", 4);
            o += 4;
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o++] = '"';
    return o;
}

char *kiln_stage_attrs_json(const kiln_stage *st, size_t *len)
{
    size_t n = 3;
    for (size_t i = 0; i < st->n_attrs; i++)
        n += 6 * strlen(st->attrs[i].key) + 4 + st->attrs[i].len;
    char *out = malloc(n);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    out[o++] = '{';
    for (size_t i = 0; i < st->n_attrs; i++) {
        if (i > 0)
            out[o++] = ',';
        o += put_key(out + o, st->attrs[i].key);
        out[o++] = ':';
        memcpy(out + o, st->attrs[i].json, st->attrs[i].len);
        o += st->attrs[i].len;
    }
    out[o++] = '}';
    out[o] = '\0';
    if (len != NULL)
        *len = o;
    return out;
}

void **kiln_stage_stream(kiln_stage *st, unsigned index)
{
    static _Thread_local void *spill;
    if (index >= KILN_STAGE_MAX_PLUGINS) {
        spill = NULL; /* never happens: routes have at most KILN_STAGE_MAX_PLUGINS */
        return &spill;
    }
    return &st->streams[index];
}

kiln_stage *kiln_stage_current(void)
{
    void **slot = kiln_fiber_local(KILN_FLOCAL_STAGE);
    return slot ? *slot : NULL;
}

void kiln_stage_set_current(kiln_stage *st)
{
    void **slot = kiln_fiber_local(KILN_FLOCAL_STAGE);
    if (slot != NULL)
        *slot = st;
}
