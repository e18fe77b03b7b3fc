/*
 * router.h - route patterns and request matching for `kiln serve`.
 * Private to src/http (and its unit test); the server builds one router per
 * route table and only reads it afterwards, so matching is lock-free.
 *
 * Patterns (docs/internals/http.md has the full rules):
 *   /hello            exact path
 *   /users/:id        named parameter: one whole segment, passed to the guest
 *   /api/...          prefix (also written with a final "*" segment): matches
 *                     /api, /api/ and everything below; the rest of the path
 *                     (decoded, with its leading '/') is the parameter "*"
 * A route may also name a host ("example.com", "*.example.com": any
 * subdomain) and a set of methods (none = every method).
 *
 * Precedence when several routes match, most specific first:
 *   1. host: exact host > "*.domain" > no host;
 *   2. no wildcard > wildcard ("exact > param > prefix");
 *   3. segment by segment from the left: literal > parameter;
 *   4. more segments (longer prefixes win);
 *   5. a route listing methods > a route taking every method;
 *   6. the route added first.
 * Routes whose path matches but whose methods do not are skipped; if no route
 * accepts the method but some matched the path, the answer is 405 with the
 * union of their methods (HEAD is implied by GET).
 */
#ifndef KILN_HTTP_ROUTER_H
#define KILN_HTTP_ROUTER_H

#include <stddef.h>

#include "kiln/handler.h"
#include "kiln/kiln.h"

#define HTTP_MAX_PARAMS 16   /* named parameters per pattern */
#define HTTP_MAX_SEGMENTS 128 /* request path segments considered for matching */

typedef enum http_route_status {
    HTTP_ROUTE_FOUND = 0,
    HTTP_ROUTE_NOT_FOUND = 1,  /* 404 */
    HTTP_ROUTE_BAD_METHOD = 2, /* 405; m->allow lists the accepted methods */
    HTTP_ROUTE_BAD_PATH = 3,   /* 400: not absolute, bad %-escape, %00, too many segments */
    HTTP_ROUTE_NOMEM = 4,      /* 500 */
} http_route_status;

/* Result of a match. Caller-allocated; http_match_fini releases it. */
typedef struct http_match {
    void *target;        /* the route's target (HTTP_ROUTE_FOUND) */
    const char *pattern; /* the route's pattern as written */
    kiln_kv params[HTTP_MAX_PARAMS + 1]; /* decoded values; "*" = wildcard rest */
    size_t n_params;
    const char *script_name; /* decoded path before the wildcard rest ("" if none) */
    char allow[256];         /* HTTP_ROUTE_BAD_METHOD: "GET, HEAD, POST" */
    char *buf;               /* storage for the strings above */
} http_match;

typedef struct http_router http_router;

/* Empty router. KILN_OK or KILN_ENOMEM. */
int http_router_new(http_router **out /* OUT */);
/* Free the router and its routes (not the targets). NULL is ok. */
void http_router_free(http_router *r);

/*
 * Add a route. `host` may be NULL (any host); `methods` (n_methods entries,
 * case-insensitive, stored upper-case) may be empty (any method). Strings are
 * copied. Returns KILN_OK, KILN_ENOMEM or KILN_ECONFIG with a message naming
 * the pattern (bad syntax, duplicate parameter names, a route that exactly
 * duplicates an earlier one for an overlapping method set).
 */
int http_router_add(http_router *r, const char *pattern, const char *host,
                    const char *const *methods, size_t n_methods, void *target, kiln_err *err);

/* Number of routes added. */
size_t http_router_count(const http_router *r);

/*
 * Match a request. `raw_path` is the path as received (percent-encoded, no
 * query), `host` the Host header (port and case are ignored; may be NULL).
 * Thread-safe on a router that is no longer being added to. Always call
 * http_match_fini afterwards.
 */
http_route_status http_router_match(const http_router *r, const char *method, const char *host,
                                    const char *raw_path, size_t raw_len, http_match *m /* OUT */);
/* The same, ignoring routes whose target is one of skip[0..n_skip): the next
 * candidate after route matchers refused the better ones. With a non-empty
 * skip list, "nothing left" is HTTP_ROUTE_NOT_FOUND (never 405). */
http_route_status http_router_match_skip(const http_router *r, const char *method,
                                         const char *host, const char *raw_path, size_t raw_len,
                                         void *const *skip, size_t n_skip, http_match *m /* OUT */);
void http_match_fini(http_match *m);

/* Parse a pattern without adding it: KILN_OK or KILN_ECONFIG (message in err). */
int http_pattern_check(const char *pattern, kiln_err *err);

#endif
