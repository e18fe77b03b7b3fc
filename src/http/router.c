/*
 * router.c - route patterns and matching (see router.h for the rules).
 * Matching is a linear scan that scores every route: route tables are small
 * (tens of routes), built once per configuration load, and read by every
 * worker without locks. A request allocates at most one buffer (decoded
 * segments and parameter values).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "http/router.h"

typedef struct rt_seg {
    char *text; /* decoded literal, or parameter name (without ':') */
    bool param;
} rt_seg;

typedef struct rt_route {
    char *pattern;
    rt_seg *segs;
    size_t n_segs;
    bool wildcard;
    char *host;     /* lower-case; NULL = any */
    bool host_wild; /* "*.example.com": host holds ".example.com" */
    char **methods; /* upper-case; n_methods == 0 = any */
    size_t n_methods;
    void *target;
    size_t order;
} rt_route;

struct http_router {
    rt_route *routes;
    size_t n, cap;
};

int http_router_new(http_router **out)
{
    *out = kiln_calloc(1, sizeof(**out));
    return *out ? KILN_OK : KILN_ENOMEM;
}

static void route_fini(rt_route *rt)
{
    for (size_t i = 0; i < rt->n_segs; i++)
        kiln_free(rt->segs[i].text);
    kiln_free(rt->segs);
    for (size_t i = 0; i < rt->n_methods; i++)
        kiln_free(rt->methods[i]);
    kiln_free(rt->methods);
    kiln_free(rt->host);
    kiln_free(rt->pattern);
}

void http_router_free(http_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        route_fini(&r->routes[i]);
    kiln_free(r->routes);
    kiln_free(r);
}

size_t http_router_count(const http_router *r)
{
    return r->n;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode src[0..len) into dst (room for len bytes); returns the
 * decoded length, or -1 on a malformed escape or an encoded NUL. */
static long pct_decode(const char *src, size_t len, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] != '%') {
            if (src[i] == '\0')
                return -1;
            dst[o++] = src[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        int h = hexval((unsigned char)src[i + 1]), l = hexval((unsigned char)src[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0))
            return -1;
        dst[o++] = (char)(h * 16 + l);
        i += 2;
    }
    return (long)o;
}

/* Parse `pattern` into segments. On success fills rt (segs, wildcard). */
static int parse_pattern(const char *pattern, rt_route *rt, kiln_err *err)
{
    if (pattern == NULL || pattern[0] != '/')
        return kiln_err_set(err, KILN_ECONFIG, "route '%s': a path must start with '/'",
                            pattern ? pattern : "");
    size_t len = strlen(pattern);
    const char *end = pattern + len;
    const char *p = pattern + 1;
    size_t cap = 4;
    rt->segs = kiln_calloc(cap, sizeof(*rt->segs));
    if (rt->segs == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "out of memory");
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *se = slash ? slash : end;
        size_t sl = (size_t)(se - p);
        bool last = slash == NULL;
        if (last && ((sl == 1 && p[0] == '*') || (sl == 3 && memcmp(p, "...", 3) == 0))) {
            rt->wildcard = true;
            break;
        }
        if ((sl == 1 && p[0] == '*') || (sl == 3 && memcmp(p, "...", 3) == 0))
            return kiln_err_set(err, KILN_ECONFIG,
                                "route '%s': '%.*s' may only be the last segment of a path",
                                pattern, (int)sl, p);
        if (rt->n_segs == HTTP_MAX_SEGMENTS)
            return kiln_err_set(err, KILN_ECONFIG, "route '%s': more than %d segments", pattern,
                                HTTP_MAX_SEGMENTS);
        if (rt->n_segs == cap) {
            rt_seg *s = kiln_realloc(rt->segs, cap * 2 * sizeof(*s));
            if (s == NULL)
                return kiln_err_set(err, KILN_ENOMEM, "out of memory");
            rt->segs = s;
            cap *= 2;
        }
        rt_seg *s = &rt->segs[rt->n_segs];
        memset(s, 0, sizeof(*s));
        if (sl > 0 && p[0] == ':') {
            if (sl == 1)
                return kiln_err_set(err, KILN_ECONFIG, "route '%s': parameter without a name",
                                    pattern);
            for (size_t i = 1; i < sl; i++)
                if (!isalnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '-')
                    return kiln_err_set(err, KILN_ECONFIG,
                                        "route '%s': parameter name '%.*s' may only contain "
                                        "letters, digits, '_' and '-'",
                                        pattern, (int)(sl - 1), p + 1);
            s->param = true;
            s->text = kiln_strndup(p + 1, sl - 1);
            if (s->text == NULL)
                return kiln_err_set(err, KILN_ENOMEM, "out of memory");
            rt->n_segs++;
            size_t np = 0;
            for (size_t i = 0; i < rt->n_segs; i++) {
                if (!rt->segs[i].param)
                    continue;
                np++;
                if (i + 1 < rt->n_segs && strcmp(rt->segs[i].text, s->text) == 0)
                    return kiln_err_set(err, KILN_ECONFIG,
                                        "route '%s': parameter ':%s' appears twice", pattern,
                                        s->text);
            }
            if (np > HTTP_MAX_PARAMS)
                return kiln_err_set(err, KILN_ECONFIG, "route '%s': more than %d parameters",
                                    pattern, HTTP_MAX_PARAMS);
        } else {
            s->text = kiln_malloc(sl + 1);
            if (s->text == NULL)
                return kiln_err_set(err, KILN_ENOMEM, "out of memory");
            long dl = pct_decode(p, sl, s->text);
            if (dl < 0) {
                kiln_free(s->text);
                s->text = NULL;
                return kiln_err_set(err, KILN_ECONFIG, "route '%s': malformed %%-escape",
                                    pattern);
            }
            s->text[dl] = '\0';
            rt->n_segs++;
            if (memchr(s->text, '/', (size_t)dl) != NULL) {
                /* %2F in a literal could never match a request segment. */
                return kiln_err_set(err, KILN_ECONFIG, "route '%s': %%2F in a segment never "
                                    "matches", pattern);
            }
        }
        if (last)
            break;
        p = slash + 1;
    }
    return KILN_OK;
}

int http_pattern_check(const char *pattern, kiln_err *err)
{
    rt_route rt;
    memset(&rt, 0, sizeof(rt));
    int rc = parse_pattern(pattern, &rt, err);
    route_fini(&rt);
    return rc;
}

/* Do two routes have the same shape (literals equal, params anywhere alike)? */
static bool same_shape(const rt_route *a, const rt_route *b)
{
    if (a->n_segs != b->n_segs || a->wildcard != b->wildcard)
        return false;
    for (size_t i = 0; i < a->n_segs; i++) {
        if (a->segs[i].param != b->segs[i].param)
            return false;
        if (!a->segs[i].param && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    bool ha = a->host != NULL, hb = b->host != NULL;
    if (ha != hb || (ha && (a->host_wild != b->host_wild || strcmp(a->host, b->host) != 0)))
        return false;
    return true;
}

static bool methods_overlap(const rt_route *a, const rt_route *b)
{
    if (a->n_methods == 0 || b->n_methods == 0)
        return a->n_methods == 0 && b->n_methods == 0;
    for (size_t i = 0; i < a->n_methods; i++)
        for (size_t j = 0; j < b->n_methods; j++)
            if (strcmp(a->methods[i], b->methods[j]) == 0)
                return true;
    return false;
}

static bool is_token_char(int c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int http_router_add(http_router *r, const char *pattern, const char *host,
                    const char *const *methods, size_t n_methods, void *target, kiln_err *err)
{
    rt_route rt;
    memset(&rt, 0, sizeof(rt));
    int rc = parse_pattern(pattern, &rt, err);
    if (rc == KILN_OK && (rt.pattern = kiln_strdup(pattern)) == NULL)
        rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
    if (rc == KILN_OK && host != NULL && host[0] != '\0') {
        const char *h = host;
        if (h[0] == '*') {
            if (h[1] != '.' || h[2] == '\0')
                rc = kiln_err_set(err, KILN_ECONFIG,
                                  "route '%s': host '%s': a wildcard host looks like "
                                  "'*.example.com'",
                                  pattern, host);
            rt.host_wild = true;
            h++;
        }
        if (rc == KILN_OK && (rt.host = kiln_strdup(h)) == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
        for (char *c = rt.host; rc == KILN_OK && *c; c++) {
            if (*c == '*' || *c == '/' || *c == ' ')
                rc = kiln_err_set(err, KILN_ECONFIG, "route '%s': host '%s' is not a host name",
                                  pattern, host);
            *c = (char)tolower((unsigned char)*c);
        }
    }
    if (rc == KILN_OK && n_methods > 0) {
        rt.methods = kiln_calloc(n_methods, sizeof(char *));
        if (rt.methods == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
        for (size_t i = 0; rc == KILN_OK && i < n_methods; i++) {
            const char *m = methods[i];
            if (m == NULL || m[0] == '\0' || strlen(m) > 32) {
                rc = kiln_err_set(err, KILN_ECONFIG, "route '%s': empty or overlong method",
                                  pattern);
                break;
            }
            char *u = kiln_strdup(m);
            if (u == NULL) {
                rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
                break;
            }
            for (char *c = u; *c; c++) {
                if (!is_token_char((unsigned char)*c)) {
                    rc = kiln_err_set(err, KILN_ECONFIG, "route '%s': '%s' is not a method",
                                      pattern, m);
                }
                *c = (char)toupper((unsigned char)*c);
            }
            bool dup = false;
            for (size_t j = 0; j < rt.n_methods; j++)
                dup = dup || strcmp(rt.methods[j], u) == 0;
            if (dup) {
                kiln_free(u);
                continue;
            }
            rt.methods[rt.n_methods++] = u;
        }
    }
    for (size_t i = 0; rc == KILN_OK && i < r->n; i++) {
        if (same_shape(&r->routes[i], &rt) && methods_overlap(&r->routes[i], &rt))
            rc = kiln_err_set(err, KILN_ECONFIG,
                              "route '%s' duplicates route '%s' (same path shape, host and "
                              "methods)",
                              pattern, r->routes[i].pattern);
    }
    if (rc == KILN_OK && r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rt_route *nr = kiln_realloc(r->routes, cap * sizeof(*nr));
        if (nr == NULL)
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
        else {
            r->routes = nr;
            r->cap = cap;
        }
    }
    if (rc != KILN_OK) {
        route_fini(&rt);
        return rc;
    }
    rt.target = target;
    rt.order = r->n;
    r->routes[r->n++] = rt;
    return KILN_OK;
}

/* ---- matching ----------------------------------------------------------- */

typedef struct req_path {
    const char *seg[HTTP_MAX_SEGMENTS]; /* decoded, NUL-terminated (in buf) */
    size_t n;
    const char *decoded; /* the whole decoded path (in buf) */
    size_t offs[HTTP_MAX_SEGMENTS + 1];
} req_path;

/* 0 = no match, 1 = wildcard host, 2 = exact host; routes without a host: 0
 * rank but always match (returned through *ok). */
static int host_rank(const rt_route *rt, const char *host, size_t hlen, bool *ok)
{
    *ok = true;
    if (rt->host == NULL)
        return 0;
    size_t rl = strlen(rt->host);
    if (rt->host_wild) {
        /* ".example.com" matches "a.example.com", not "example.com". */
        *ok = hlen > rl && strncasecmp(host + hlen - rl, rt->host, rl) == 0;
        return 1;
    }
    *ok = hlen == rl && strncasecmp(host, rt->host, rl) == 0;
    return 2;
}

/* Host header without port: "[::1]:80" -> "[::1]", "a.com:8080" -> "a.com". */
static size_t host_len(const char *host)
{
    if (host == NULL)
        return 0;
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *rb = memchr(host, ']', n);
        return rb ? (size_t)(rb - host) + 1 : n;
    }
    const char *colon = memchr(host, ':', n);
    n = colon ? (size_t)(colon - host) : n;
    /* A trailing dot names the same host ("example.com."). */
    if (n > 1 && host[n - 1] == '.')
        n--;
    return n;
}

static bool path_matches(const rt_route *rt, const req_path *p)
{
    if (rt->wildcard ? p->n < rt->n_segs : p->n != rt->n_segs)
        return false;
    for (size_t i = 0; i < rt->n_segs; i++) {
        /* A parameter never matches an empty segment ("/users/" is not "/users/:id"). */
        if (rt->segs[i].param ? p->seg[i][0] == '\0' : strcmp(rt->segs[i].text, p->seg[i]) != 0)
            return false;
    }
    return true;
}

/* Does the route accept `method`? HEAD is accepted wherever GET is. */
static bool method_ok(const rt_route *rt, const char *method)
{
    if (rt->n_methods == 0)
        return true;
    for (size_t i = 0; i < rt->n_methods; i++) {
        if (strcmp(rt->methods[i], method) == 0)
            return true;
        if (strcmp(method, "HEAD") == 0 && strcmp(rt->methods[i], "GET") == 0)
            return true;
    }
    return false;
}

/* > 0 when a is more specific than b (router.h, "Precedence"). */
static int compare(const rt_route *a, int ha, const rt_route *b, int hb)
{
    if (ha != hb)
        return ha - hb;
    if (a->wildcard != b->wildcard)
        return a->wildcard ? -1 : 1;
    size_t n = a->n_segs < b->n_segs ? a->n_segs : b->n_segs;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].param != b->segs[i].param)
            return a->segs[i].param ? -1 : 1;
    if (a->n_segs != b->n_segs)
        return a->n_segs > b->n_segs ? 1 : -1;
    if ((a->n_methods != 0) != (b->n_methods != 0))
        return a->n_methods != 0 ? 1 : -1;
    return a->order < b->order ? 1 : -1;
}

static void allow_add(http_match *m, const char *method)
{
    size_t len = strlen(m->allow), ml = strlen(method);
    /* Already listed? Compare whole comma-separated items. */
    for (const char *p = m->allow; *p;) {
        const char *e = strstr(p, ", ");
        size_t il = e ? (size_t)(e - p) : strlen(p);
        if (il == ml && memcmp(p, method, ml) == 0)
            return;
        if (e == NULL)
            break;
        p = e + 2;
    }
    if (len + ml + 3 >= sizeof(m->allow))
        return;
    snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "", method);
}

static bool skipped(const rt_route *rt, void *const *skip, size_t n_skip)
{
    for (size_t i = 0; i < n_skip; i++)
        if (skip[i] == rt->target)
            return true;
    return false;
}

http_route_status http_router_match(const http_router *r, const char *method, const char *host,
                                    const char *raw_path, size_t raw_len, http_match *m)
{
    return http_router_match_skip(r, method, host, raw_path, raw_len, NULL, 0, m);
}

http_route_status http_router_match_skip(const http_router *r, const char *method,
                                         const char *host, const char *raw_path, size_t raw_len,
                                         void *const *skip, size_t n_skip, http_match *m)
{
    memset(m, 0, sizeof(*m));
    if (raw_len == 0 || raw_path[0] != '/')
        return HTTP_ROUTE_BAD_PATH;
    /* buf: decoded path with '/' separators | segments NUL-separated | param copies. */
    m->buf = kiln_malloc(3 * (raw_len + 2));
    if (m->buf == NULL)
        return HTTP_ROUTE_NOMEM;
    char *dec = m->buf, *segs = m->buf + raw_len + 2, *extra = m->buf + 2 * (raw_len + 2);
    req_path p;
    p.n = 0;
    size_t dlen = 0, slen = 0;
    const char *s = raw_path + 1, *end = raw_path + raw_len;
    for (;;) {
        if (p.n == HTTP_MAX_SEGMENTS)
            return HTTP_ROUTE_BAD_PATH;
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *se = slash ? slash : end;
        p.offs[p.n] = dlen;
        dec[dlen++] = '/';
        long dl = pct_decode(s, (size_t)(se - s), dec + dlen);
        if (dl < 0)
            return HTTP_ROUTE_BAD_PATH;
        memcpy(segs + slen, dec + dlen, (size_t)dl);
        p.seg[p.n++] = segs + slen;
        slen += (size_t)dl;
        segs[slen++] = '\0';
        dlen += (size_t)dl;
        if (slash == NULL)
            break;
        s = slash + 1;
    }
    dec[dlen] = '\0';
    p.offs[p.n] = dlen;
    p.decoded = dec;

    size_t hlen = host_len(host);
    const rt_route *best = NULL;
    int best_h = 0;
    bool path_seen = false;
    for (size_t i = 0; i < r->n; i++) {
        const rt_route *rt = &r->routes[i];
        bool hok;
        int h = host_rank(rt, host, hlen, &hok);
        if (!hok || !path_matches(rt, &p) || skipped(rt, skip, n_skip))
            continue;
        if (!method_ok(rt, method)) {
            path_seen = true;
            continue;
        }
        if (best == NULL || compare(rt, h, best, best_h) > 0) {
            best = rt;
            best_h = h;
        }
    }
    if (best == NULL) {
        /* Falling through after route matchers said no: nothing else takes it. */
        if (!path_seen || n_skip > 0)
            return HTTP_ROUTE_NOT_FOUND;
        /* 405: list every method some path-matching route accepts. */
        static const char *const canon[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                            "OPTIONS"};
        for (size_t c = 0; c < sizeof(canon) / sizeof(canon[0]); c++) {
            for (size_t i = 0; i < r->n; i++) {
                const rt_route *rt = &r->routes[i];
                bool hok;
                host_rank(rt, host, hlen, &hok);
                if (hok && path_matches(rt, &p) && method_ok(rt, canon[c]))
                    allow_add(m, canon[c]);
            }
        }
        for (size_t i = 0; i < r->n; i++) {
            const rt_route *rt = &r->routes[i];
            bool hok;
            host_rank(rt, host, hlen, &hok);
            if (hok && path_matches(rt, &p))
                for (size_t k = 0; k < rt->n_methods; k++)
                    allow_add(m, rt->methods[k]);
        }
        return HTTP_ROUTE_BAD_METHOD;
    }
    m->target = best->target;
    m->pattern = best->pattern;
    for (size_t i = 0; i < best->n_segs; i++) {
        if (!best->segs[i].param)
            continue;
        m->params[m->n_params].name = best->segs[i].text;
        m->params[m->n_params].value = p.seg[i];
        m->n_params++;
    }
    if (best->wildcard) {
        /* The rest of the decoded path after the prefix, with its '/'. */
        size_t off = p.offs[best->n_segs];
        size_t pre = off;
        memcpy(extra, dec, pre);
        extra[pre] = '\0';
        m->script_name = extra;
        m->params[m->n_params].name = "*";
        m->params[m->n_params].value = dec + off;
        m->n_params++;
    } else {
        m->script_name = dec;
    }
    return HTTP_ROUTE_FOUND;
}

void http_match_fini(http_match *m)
{
    kiln_free(m->buf);
    m->buf = NULL;
}
