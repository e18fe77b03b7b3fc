/*
 * oto_cookies.c - cookies of Otoroshi's transformer documents
 * (otoroshi-abi.md §4.5, §4.6): the `cookies` list a response transformer is
 * shown (from the response's Set-Cookie headers), and the `cookies` list a
 * request or response transformer (or an `error: true` answer) returns, as
 * Otoroshi's WSCookie JSON: {name, value, maxAge, path, domain, secure,
 * httpOnly}. Otoroshi (wasm.scala, convertJsonCookies) replaces the
 * request's or response's cookie list with it when present; Kiln keeps
 * cookies in headers, so the list replaces the forwarded request's Cookie
 * header, or every Set-Cookie header of the response.
 *
 * Everything a plugin returns here ends up in a header: names and values are
 * checked (no control bytes, no ';' that would smuggle attributes in, a name
 * without '=' or spaces), and a bad entry is KILN_EBADOUTPUT (502 naming the
 * plugin) rather than a silently dropped cookie.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi/otoroshi/otoroshi.h"
#include "base/alloc.h"

/* ---- the list a response transformer is shown ------------------------------------ */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static size_t trim_len(const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n;
}

/* One Set-Cookie value as a WSCookie object; nothing if it has no name=value. */
static void write_set_cookie(jw *w, const char *v)
{
    const char *end = v + strlen(v), *semi = memchr(v, ';', (size_t)(end - v));
    const char *pair_end = semi ? semi : end;
    const char *p = skip_ws(v, pair_end);
    const char *eq = memchr(p, '=', (size_t)(pair_end - p));
    if (eq == NULL || eq == p)
        return;
    const char *path = NULL, *domain = NULL;
    size_t path_n = 0, domain_n = 0;
    long long max_age = 0;
    bool has_max_age = false, secure = false, http_only = false;
    for (const char *a = semi; a != NULL && a < end;) {
        a = skip_ws(a + 1, end);
        const char *a_end = memchr(a, ';', (size_t)(end - a));
        const char *next = a_end;
        if (a_end == NULL)
            a_end = end;
        const char *aeq = memchr(a, '=', (size_t)(a_end - a));
        size_t kn = trim_len(a, (size_t)((aeq ? aeq : a_end) - a));
        const char *av = aeq ? skip_ws(aeq + 1, a_end) : a_end;
        size_t avn = trim_len(av, (size_t)(a_end - av));
        if (kn == 4 && strncasecmp(a, "path", 4) == 0) {
            path = av;
            path_n = avn;
        } else if (kn == 6 && strncasecmp(a, "domain", 6) == 0) {
            domain = av;
            domain_n = avn;
        } else if (kn == 7 && strncasecmp(a, "max-age", 7) == 0) {
            char num[24];
            if (avn > 0 && avn < sizeof(num)) {
                memcpy(num, av, avn);
                num[avn] = '\0';
                char *e;
                long long x = strtoll(num, &e, 10);
                if (*e == '\0') {
                    max_age = x;
                    has_max_age = true;
                }
            }
        } else if (kn == 6 && strncasecmp(a, "secure", 6) == 0) {
            secure = true;
        } else if (kn == 8 && strncasecmp(a, "httponly", 8) == 0) {
            http_only = true;
        }
        a = next;
    }
    jw_obj_open(w);
    jw_key(w, "name");
    jw_strn(w, p, trim_len(p, (size_t)(eq - p)));
    const char *val = skip_ws(eq + 1, pair_end);
    jw_key(w, "value");
    jw_strn(w, val, trim_len(val, (size_t)(pair_end - val)));
    jw_key(w, "domain");
    if (domain != NULL)
        jw_strn(w, domain, domain_n);
    else
        jw_null(w);
    jw_key(w, "path");
    if (path != NULL)
        jw_strn(w, path, path_n);
    else
        jw_null(w);
    jw_key(w, "maxAge");
    if (has_max_age)
        jw_int(w, max_age);
    else
        jw_null(w);
    jw_key(w, "secure");
    jw_bool(w, secure);
    jw_key(w, "httpOnly");
    jw_bool(w, http_only);
    jw_obj_close(w);
}

void oto_write_response_cookies(jw *w, const kiln_kv *h, size_t n)
{
    jw_arr_open(w);
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, "set-cookie") == 0 && h[i].value != NULL)
            write_set_cookie(w, h[i].value);
    jw_arr_close(w);
}

/* ---- the list a plugin returns ----------------------------------------------------- */

/* Bytes a cookie part may not hold: control bytes and ';' (an attribute
 * separator); a name also no '=', space, tab or ','. */
static bool bad_text(const char *s, bool name)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == ';' ||
            (name && (*p == '=' || *p == ' ' || *p == ',')))
            return true;
    return false;
}

/* Entry i's string member `key`: *out = NULL when absent or null (unless
 * required). */
static int member_str(json_t *c, size_t i, const char *key, bool required, bool name,
                      const char **out, kiln_err *err)
{
    json_t *v = json_object_get(c, key);
    *out = NULL;
    if ((v == NULL || json_is_null(v)) && !required)
        return KILN_OK;
    if (!json_is_string(v))
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's cookies[%zu].%s %s", i, key,
                            v == NULL ? "is missing" : "is not a string");
    const char *s = json_string_value(v);
    if ((name && s[0] == '\0') || bad_text(s, name) || strlen(s) != json_string_length(v))
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's cookies[%zu].%s \"%.64s\" cannot "
                            "be sent in a header (%s)", i, key, s,
                            name ? "empty, or a control byte, ';', '=', ',' or a space"
                                 : "a control byte or ';'");
    *out = s;
    return KILN_OK;
}

/* Growable text. */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static bool put(buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = kiln_realloc(b->p, cap);
        if (p == NULL)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n + 1);
    b->n += n;
    return true;
}

/* One cookie as a Set-Cookie value (set_cookie) or as "name=value". */
static int cookie_text(json_t *c, size_t i, bool set_cookie, buf *b, kiln_err *err)
{
    if (!json_is_object(c))
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's cookies[%zu] is not an object "
                            "{name, value, ...}", i);
    const char *name, *value, *path = NULL, *domain = NULL;
    int rc = member_str(c, i, "name", true, true, &name, err);
    if (rc == KILN_OK)
        rc = member_str(c, i, "value", true, false, &value, err);
    if (rc == KILN_OK && set_cookie)
        rc = member_str(c, i, "path", false, false, &path, err);
    if (rc == KILN_OK && set_cookie)
        rc = member_str(c, i, "domain", false, false, &domain, err);
    if (rc != KILN_OK)
        return rc;
    bool ok = put(b, name) && put(b, "=") && put(b, value);
    if (!set_cookie)
        return ok ? KILN_OK : kiln_err_set(err, KILN_ENOMEM, "out of memory");
    json_t *ma = json_object_get(c, "maxAge");
    if (ma != NULL && !json_is_null(ma)) {
        if (!json_is_integer(ma))
            return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's cookies[%zu].maxAge is not "
                                "an integer", i);
        char num[32];
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(ma));
        ok = ok && put(b, "; Max-Age=") && put(b, num);
    }
    if (path != NULL)
        ok = ok && put(b, "; Path=") && put(b, path);
    if (domain != NULL)
        ok = ok && put(b, "; Domain=") && put(b, domain);
    if (json_is_true(json_object_get(c, "secure")))
        ok = ok && put(b, "; Secure");
    if (json_is_true(json_object_get(c, "httpOnly")))
        ok = ok && put(b, "; HttpOnly");
    return ok ? KILN_OK : kiln_err_set(err, KILN_ENOMEM, "out of memory");
}

int oto_cookies_to_request(json_t *doc, kiln_stage *st, kiln_err *err)
{
    json_t *cookies = json_object_get(doc, "cookies");
    if (cookies == NULL || json_is_null(cookies))
        return KILN_OK;
    if (!json_is_array(cookies))
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's cookies is not a list");
    buf b = {0};
    int rc = KILN_OK;
    for (size_t i = 0; i < json_array_size(cookies) && rc == KILN_OK; i++) {
        if (i > 0 && !put(&b, "; "))
            rc = kiln_err_set(err, KILN_ENOMEM, "out of memory");
        if (rc == KILN_OK)
            rc = cookie_text(json_array_get(cookies, i), i, false, &b, err);
    }
    if (rc == KILN_OK) {
        rc = kiln_stage_set_header(st, "Cookie", b.n > 0 ? b.p : NULL);
        if (rc != KILN_OK)
            kiln_err_set(err, rc, "out of memory setting the request's cookies");
    }
    kiln_free(b.p);
    return rc;
}

/* Drop every header `name` (case-insensitive) from resp. */
static void drop_headers(kiln_response *resp, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0) {
            kiln_free((void *)resp->headers[i].name);
            kiln_free((void *)resp->headers[i].value);
        } else {
            resp->headers[k++] = resp->headers[i];
        }
    }
    resp->n_headers = k;
}

int oto_cookies_to_response(json_t *doc, kiln_response *resp, kiln_err *err)
{
    json_t *cookies = json_object_get(doc, "cookies");
    if (cookies == NULL || json_is_null(cookies))
        return KILN_OK;
    if (!json_is_array(cookies))
        return kiln_err_set(err, KILN_EBADOUTPUT, "the plugin's cookies is not a list");
    /* Check every entry before the response is touched. */
    int rc = KILN_OK;
    for (size_t i = 0; i < json_array_size(cookies) && rc == KILN_OK; i++) {
        buf b = {0};
        rc = cookie_text(json_array_get(cookies, i), i, true, &b, err);
        kiln_free(b.p);
    }
    if (rc != KILN_OK)
        return rc;
    drop_headers(resp, "set-cookie");
    for (size_t i = 0; i < json_array_size(cookies) && rc == KILN_OK; i++) {
        buf b = {0};
        rc = cookie_text(json_array_get(cookies, i), i, true, &b, err);
        if (rc == KILN_OK && (rc = kiln_response_add_header(resp, "Set-Cookie", b.p)) != KILN_OK)
            kiln_err_set(err, rc, "out of memory setting the response's cookies");
        kiln_free(b.p);
    }
    return rc;
}
