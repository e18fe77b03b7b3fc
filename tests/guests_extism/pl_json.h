/*
 * pl_json.h - just enough JSON for the pipeline test guests (pl_*.c): walk
 * the context document Kiln hands a plugin without a parser library, pick
 * members by key, copy values as their exact text, decode strings, and write
 * JSON strings and Otoroshi's byte arrays (arrays of signed bytes). The
 * input is trusted to be valid JSON (Kiln wrote it); on anything unexpected
 * the helpers answer NULL / 0 rather than crash.
 */
#ifndef KILN_GUEST_PL_JSON_H
#define KILN_GUEST_PL_JSON_H

#include <stdarg.h>

#include "guest.h"

static inline const char *j_ws(const char *p)
{
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past the string whose opening quote is at p. */
static inline const char *j_skip_str(const char *p)
{
    p++;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

/* Past the one value starting at p (leading whitespace allowed); NULL if bad. */
static inline const char *j_skip(const char *p)
{
    p = j_ws(p);
    if (p == NULL || *p == '\0')
        return NULL;
    if (*p == '"')
        return j_skip_str(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = j_skip_str(p);
                if (p == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    /* number, true, false, null */
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' &&
           *p != '\t')
        p++;
    return p;
}

/* The value of member `key` of the object at `obj` (NULL if obj is not an
 * object or has no such member). Keys are compared as written. */
static inline const char *j_get(const char *obj, const char *key)
{
    obj = j_ws(obj);
    if (obj == NULL || *obj != '{')
        return NULL;
    size_t kl = strlen(key);
    const char *p = j_ws(obj + 1);
    while (p && *p == '"') {
        const char *ks = p + 1, *ke = j_skip_str(p);
        if (ke == NULL)
            return NULL;
        p = j_ws(ke);
        if (*p != ':')
            return NULL;
        p = j_ws(p + 1);
        if ((size_t)(ke - 1 - ks) == kl && memcmp(ks, key, kl) == 0)
            return p;
        p = j_ws(j_skip(p));
        if (p == NULL || *p != ',')
            return NULL;
        p = j_ws(p + 1);
    }
    return NULL;
}

/* j_path(doc, "request", "headers", "x-role", NULL) */
static inline const char *j_path(const char *doc, ...)
{
    va_list ap;
    va_start(ap, doc);
    const char *p = doc;
    for (const char *k = va_arg(ap, const char *); p && k; k = va_arg(ap, const char *))
        p = j_get(p, k);
    va_end(ap);
    return p;
}

/* The exact text of the value at p, malloc'd; NULL if p is NULL. */
static inline char *j_raw(const char *p)
{
    p = j_ws(p);
    const char *e = j_skip(p);
    if (p == NULL || e == NULL)
        return NULL;
    char *out = malloc((size_t)(e - p) + 1);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return out;
}

static inline int j_is(const char *p, const char *lit)
{
    p = j_ws(p);
    size_t n = strlen(lit);
    return p && strncmp(p, lit, n) == 0;
}

static inline int j_true(const char *p) { return j_is(p, "true"); }

static inline int j_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The string value at p decoded to UTF-8 (malloc'd); NULL if not a string. */
static inline char *j_str(const char *p)
{
    p = j_ws(p);
    if (p == NULL || *p != '"')
        return NULL;
    const char *e = j_skip_str(p);
    if (e == NULL)
        return NULL;
    char *out = malloc((size_t)(e - p) + 1), *o = out;
    for (p++; p < e - 1; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 1; i <= 4; i++)
                cp = cp * 16 + (unsigned)(j_hex(p[i]) < 0 ? 0 : j_hex(p[i]));
            p += 4;
            if (cp < 0x80)
                *o++ = (char)cp;
            else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: *o++ = *p; break; /* " \ / */
        }
    }
    *o = '\0';
    return out;
}

/* The integer at p, or dflt if p is not a number. */
static inline long long j_int(const char *p, long long dflt)
{
    p = j_ws(p);
    if (p == NULL || !(*p == '-' || (*p >= '0' && *p <= '9')))
        return dflt;
    int neg = *p == '-';
    if (neg)
        p++;
    long long v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    return neg ? -v : v;
}

/* s as a JSON string literal (quotes included), malloc'd. */
static inline char *j_quote(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 3), *o = out;
    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (c < 0x20) {
            static const char hx[] = "0123456789abcdef";
            memcpy(o, "\\u00", 4);
            o[4] = hx[c >> 4];
            o[5] = hx[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* An array of signed bytes at p decoded (malloc'd, NUL-terminated too);
 * NULL if p is null or not an array. *n = the byte count. */
static inline char *j_bytes(const char *p, size_t *n)
{
    p = j_ws(p);
    *n = 0;
    if (p == NULL || *p != '[')
        return NULL;
    const char *e = j_skip(p);
    if (e == NULL)
        return NULL;
    char *out = malloc((size_t)(e - p) + 1);
    size_t k = 0;
    p = j_ws(p + 1);
    while (p < e && *p != ']') {
        long long v = j_int(p, 0);
        out[k++] = (char)(signed char)v;
        p = j_skip(p);
        p = j_ws(p);
        if (*p == ',')
            p = j_ws(p + 1);
    }
    out[k] = '\0';
    *n = k;
    return out;
}

/* buf as Otoroshi's byte array text: "[104,-61,...]", malloc'd. */
static inline char *j_bytes_text(const char *buf, size_t n)
{
    char *out = malloc(n * 5 + 3), *o = out;
    *o++ = '[';
    for (size_t i = 0; i < n; i++) {
        int v = (signed char)buf[i];
        if (i)
            *o++ = ',';
        if (v < 0) {
            *o++ = '-';
            v = -v;
        }
        o += g_utoa((uint64_t)v, o);
    }
    *o++ = ']';
    *o = '\0';
    return out;
}

/* The object text `obj` ("{...}") with `extra` members ("\"k\":v,...",
 * may be "") added at its end, malloc'd. */
static inline char *j_merge(const char *obj, const char *extra)
{
    obj = j_ws(obj);
    if (obj == NULL || *obj != '{')
        return g_cat("{", extra, "}", NULL);
    const char *e = j_skip(obj);
    size_t len = (size_t)(e - obj);
    char *head = malloc(len);
    memcpy(head, obj, len - 1); /* without the closing brace */
    head[len - 1] = '\0';
    const char *inner = j_ws(obj + 1);
    int empty = *inner == '}';
    if (extra[0] == '\0')
        return g_cat(head, "}", NULL);
    return g_cat(head, empty ? "" : ",", extra, "}", NULL);
}

/* The string at `p` (a JSON string), or dflt when p is absent / not a string. */
static inline const char *j_str_or(const char *p, const char *dflt)
{
    char *s = j_str(p);
    return s ? s : dflt;
}

/* Base64 of n bytes (malloc'd). */
static inline char *j_b64(const char *buf, size_t n)
{
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = tb[(v >> 6) & 63];
        *o++ = tb[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)b[i] << 16;
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = tb[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* Every guest: a plugin config {"reply": "TEXT"} makes the call output TEXT
 * verbatim (any bytes, JSON or not), whatever the request. Returns 1 if it
 * did. */
static inline int pl_reply(const char *in)
{
    char *r = j_str(j_path(in, "config", "reply", NULL));
    if (r == NULL)
        return 0;
    g_output_str(r);
    return 1;
}

/* A growing list of JSON object members: pl_member(&m, "\"k\":", raw). */
static inline void pl_member(char **m, const char *key, const char *raw)
{
    if (raw == NULL)
        return;
    char *q = j_quote(key);
    *m = g_cat(*m, (*m)[0] ? "," : "", q, ":", raw, NULL);
}

#endif
