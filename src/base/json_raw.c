/*
 * json_raw.c - JSON that keeps a guest's numbers as written (json_raw.h), on
 * yajl: its parser hands numbers over as text (the yajl_number callback),
 * and the writer here prints that text back as given.
 *
 * yajl does not check its own allocations (yajl_buf, the parser's byte
 * stack): it keeps the C library's allocator, because kiln_malloc's injected
 * failures would crash it instead of failing a call. The memory it uses is
 * bounded by the input (decoded strings) and the nesting depth. Everything
 * this file allocates itself (the writer's output, the load fallback's
 * stack) goes through kiln_malloc and fails cleanly.
 */
#include "base/json_raw.h"

#include <errno.h>
#include <float.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "base/alloc.h"
#include "base/utf8.h"

/* ---- UTF-8 ----------------------------------------------------------------------- */

/* Decoding: base/utf8.h. */

char *json_raw_utf8(const char *s, size_t n, size_t *outlen)
{
    /* Each invalid byte becomes at most 3 bytes (U+FFFD). */
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = kiln_malloc(3 * n + 1);
    if (out == NULL)
        return NULL;
    size_t i = 0, o = 0, bad;
    while (i < n) {
        size_t k = utf8_seq((const uint8_t *)s + i, n - i, &bad);
        if (k > 0) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return out;
}

/* ---- the writer --------------------------------------------------------------------- */

/*
 * The writer prints compact JSON itself, byte for byte as yajl_gen printed it
 * before (no spaces; strings escape '"', '\\', \b \f \n \r \t and the other
 * control bytes as \u00XX with upper-case hex; '/' and DEL as they are):
 * context documents are written for every plugin call, and going through
 * yajl_gen cost a callback per token and per escaped character plus a second
 * UTF-8 check of every string.
 */

/* yajl_gen's nesting limit (YAJL_MAX_DEPTH): it refused to open a 128th
 * level, and the writer still does. */
#define JW_MAX_DEPTH 128
/* First buffer size: a plugin's context document is about 2-3 KiB. */
#define JW_FIRST_CAP 4096

/* Frames: an array, or an object expecting a key or a value. The writer
 * checks that a close matches its open, that an object is not closed
 * between a key and its value, and that keys come only in key position. */
enum { F_ARR = 'a', F_KEY = 'k', F_VAL = 'v' };

struct jw {
    char *buf; /* the output so far (kiln_malloc, so free() releases it) */
    size_t len, cap;
    bool err;  /* sticky */
    bool done; /* a complete top-level value was written */
    unsigned depth;
    char frame[JW_MAX_DEPTH];
    bool more[JW_MAX_DEPTH]; /* the frame holds a member already: a comma first */
};

/* Room for n more bytes (and the final NUL); false (and err) on OOM. */
static bool jw_room(jw *w, size_t n)
{
    if (w->len + n + 1 <= w->cap)
        return true;
    if (n > SIZE_MAX / 4 - w->len) {
        w->err = true;
        return false;
    }
    size_t nc = w->cap ? w->cap : JW_FIRST_CAP;
    while (nc < w->len + n + 1)
        nc *= 2;
    char *nb = kiln_realloc(w->buf, nc);
    if (nb == NULL) {
        w->err = true;
        return false;
    }
    w->buf = nb;
    w->cap = nc;
    return true;
}

static void jw_put(jw *w, const char *s, size_t n)
{
    if (w->err || !jw_room(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void jw_putc(jw *w, char c)
{
    if (w->err || !jw_room(w, 1))
        return;
    w->buf[w->len++] = c;
}

jw *jw_new(void)
{
    return kiln_calloc(1, sizeof(jw));
}

void jw_free(jw *w)
{
    if (w == NULL)
        return;
    kiln_free(w->buf);
    kiln_free(w);
}

/* May a value be written now? (Not where a key is expected, nor after a
 * complete top-level value.) Writes the comma a value in an array needs. */
static bool value_ok(jw *w)
{
    if (w == NULL || w->err)
        return false;
    if (w->depth == 0) {
        if (w->done)
            w->err = true;
    } else if (w->frame[w->depth - 1] == F_KEY) {
        w->err = true;
    } else if (w->frame[w->depth - 1] == F_ARR) {
        if (w->more[w->depth - 1])
            jw_putc(w, ',');
        w->more[w->depth - 1] = true;
    }
    return !w->err;
}

/* After a value: an object's next member wants a key; a top-level value
 * completes the document. */
static void value_done(jw *w)
{
    if (w->depth == 0)
        w->done = true;
    else if (w->frame[w->depth - 1] == F_VAL)
        w->frame[w->depth - 1] = F_KEY;
}

static void jw_open_(jw *w, bool obj)
{
    if (!value_ok(w))
        return;
    if (w->depth + 1 >= JW_MAX_DEPTH) {
        w->err = true;
        return;
    }
    jw_putc(w, obj ? '{' : '[');
    w->more[w->depth] = false;
    w->frame[w->depth++] = obj ? F_KEY : F_ARR;
}

static void jw_close_(jw *w, bool obj)
{
    if (w == NULL || w->err)
        return;
    if (w->depth == 0 || w->frame[w->depth - 1] != (obj ? F_KEY : F_ARR)) {
        w->err = true; /* unbalanced, or an object closed after a key */
        return;
    }
    jw_putc(w, obj ? '}' : ']');
    w->depth--;
    value_done(w);
}

void jw_obj_open(jw *w)
{
    jw_open_(w, true);
}

void jw_obj_close(jw *w)
{
    jw_close_(w, true);
}

void jw_arr_open(jw *w)
{
    jw_open_(w, false);
}

void jw_arr_close(jw *w)
{
    jw_close_(w, false);
}

/* Which ASCII bytes a string must escape: 0 none, 'u' as \u00XX, else the
 * letter after the backslash. */
static const char jw_esc[128] = {
    ['\0'] = 'u', [1] = 'u',  [2] = 'u',    [3] = 'u',  [4] = 'u',  [5] = 'u',  [6] = 'u',
    [7] = 'u',    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', [11] = 'u', ['\f'] = 'f',
    ['\r'] = 'r', [14] = 'u', [15] = 'u',   [16] = 'u', [17] = 'u', [18] = 'u', [19] = 'u',
    [20] = 'u',   [21] = 'u', [22] = 'u',   [23] = 'u', [24] = 'u', [25] = 'u', [26] = 'u',
    [27] = 'u',   [28] = 'u', [29] = 'u',   [30] = 'u', [31] = 'u', ['"'] = '"', ['\\'] = '\\',
};

/* s as a JSON string literal: escaped, and each invalid UTF-8 sequence
 * written as U+FFFD (the bytes json_raw_utf8 would give). One pass; runs of
 * plain bytes are copied whole. */
static void gen_string(jw *w, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    /* Escapes take at most 6 bytes per input byte, U+FFFD 3: reserve for
     * the common case up front, grow on demand beyond it. */
    if (!jw_room(w, n + 2))
        return;
    w->buf[w->len++] = '"';
    size_t i = 0, run = 0; /* [run, i) is copied as is */
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            char e = jw_esc[c];
            if (e == 0) {
                i++;
                continue;
            }
            jw_put(w, s + run, i - run);
            char seq[6] = {'\\', e};
            size_t k = 2;
            if (e == 'u') {
                static const char hex[] = "0123456789ABCDEF";
                seq[2] = '0';
                seq[3] = '0';
                seq[4] = hex[c >> 4];
                seq[5] = hex[c & 15];
                k = 6;
            }
            jw_put(w, seq, k);
            run = ++i;
            continue;
        }
        size_t bad, k = utf8_seq(p + i, n - i, &bad);
        if (k > 0) {
            i += k;
            continue;
        }
        jw_put(w, s + run, i - run);
        jw_put(w, "\xEF\xBF\xBD", 3);
        i += bad;
        run = i;
    }
    jw_put(w, s + run, i - run);
    jw_putc(w, '"');
}

void jw_keyn(jw *w, const char *key, size_t n)
{
    if (w == NULL || w->err)
        return;
    if (w->depth == 0 || w->frame[w->depth - 1] != F_KEY) {
        w->err = true;
        return;
    }
    if (w->more[w->depth - 1])
        jw_putc(w, ',');
    w->more[w->depth - 1] = true;
    gen_string(w, key, n);
    jw_putc(w, ':');
    w->frame[w->depth - 1] = F_VAL;
}

void jw_members(jw *w, const char *members)
{
    if (w == NULL || w->err)
        return;
    if (w->depth == 0 || w->frame[w->depth - 1] != F_KEY) {
        w->err = true;
        return;
    }
    if (w->more[w->depth - 1])
        jw_putc(w, ',');
    w->more[w->depth - 1] = true;
    jw_put(w, members, strlen(members));
}

void jw_fail(jw *w)
{
    if (w != NULL)
        w->err = true;
}

void jw_key(jw *w, const char *key)
{
    if (key == NULL) {
        if (w != NULL)
            w->err = true;
        return;
    }
    jw_keyn(w, key, strlen(key));
}

void jw_strn(jw *w, const char *s, size_t n)
{
    if (s == NULL) {
        jw_null(w);
        return;
    }
    if (!value_ok(w))
        return;
    gen_string(w, s, n);
    value_done(w);
}

void jw_str(jw *w, const char *s)
{
    jw_strn(w, s, s ? strlen(s) : 0);
}

/* A scalar's text as given (numbers already valid, true, false, null). */
static void jw_scalar(jw *w, const char *s, size_t n)
{
    if (!value_ok(w))
        return;
    jw_put(w, s, n);
    value_done(w);
}

void jw_int(jw *w, long long v)
{
    /* Digits by hand: sprintf dominated documents carrying bodies as byte
     * arrays (Otoroshi's request_body_bytes: one integer per byte). */
    char buf[24];
    char *p = buf + sizeof(buf);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    jw_scalar(w, p, (size_t)(buf + sizeof(buf) - p));
}

void jw_bool(jw *w, bool v)
{
    jw_scalar(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(jw *w)
{
    jw_scalar(w, "null", 4);
}

/* A number's text, already validated by yajl's parser. */
static void jw_number(jw *w, const char *s, size_t n)
{
    jw_scalar(w, s, n);
}

/* ---- jw_raw: yajl's parser forwarding into the writer ---------------------------- */

static int fw_null(void *ctx)
{
    jw_null(ctx);
    return !((jw *)ctx)->err;
}

static int fw_bool(void *ctx, int v)
{
    jw_bool(ctx, v != 0);
    return !((jw *)ctx)->err;
}

static int fw_number(void *ctx, const char *s, size_t n)
{
    jw_number(ctx, s, n);
    return !((jw *)ctx)->err;
}

static int fw_string(void *ctx, const unsigned char *s, size_t n)
{
    jw_strn(ctx, (const char *)s, n);
    return !((jw *)ctx)->err;
}

static int fw_map_open(void *ctx)
{
    jw_obj_open(ctx);
    return !((jw *)ctx)->err;
}

static int fw_key(void *ctx, const unsigned char *s, size_t n)
{
    jw_keyn(ctx, (const char *)s, n);
    return !((jw *)ctx)->err;
}

static int fw_map_close(void *ctx)
{
    jw_obj_close(ctx);
    return !((jw *)ctx)->err;
}

static int fw_arr_open(void *ctx)
{
    jw_arr_open(ctx);
    return !((jw *)ctx)->err;
}

static int fw_arr_close(void *ctx)
{
    jw_arr_close(ctx);
    return !((jw *)ctx)->err;
}

static const yajl_callbacks forward = {
    fw_null,    fw_bool,   NULL,         NULL,        fw_number,   fw_string,
    fw_map_open, fw_key,   fw_map_close, fw_arr_open, fw_arr_close,
};

/* Parse text as exactly one JSON value with callbacks cb; true if valid (and
 * no callback cancelled). yajl's defaults are what we want: no comments, no
 * trailing garbage, no second value, strings checked for valid UTF-8. */
static bool parse(const char *text, size_t len, const yajl_callbacks *cb, void *ctx,
                  yajl_handle *keep)
{
    /* yajl takes \v and \f for whitespace, which JSON does not (and the
     * scanner below would not skip). Inside a string they are invalid raw
     * control characters anyway, so any such byte makes the text invalid. */
    if (memchr(text, '\v', len) != NULL || memchr(text, '\f', len) != NULL) {
        if (keep != NULL)
            *keep = NULL;
        return false;
    }
    yajl_handle h = yajl_alloc(cb, NULL, ctx);
    if (h == NULL)
        return false;
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (keep != NULL)
        *keep = h;
    else
        yajl_free(h);
    return st == yajl_status_ok;
}

bool jw_raw(jw *w, const char *json, size_t len)
{
    if (w == NULL || w->err)
        return false;
    if (json == NULL || !parse(json, len, &forward, w, NULL))
        w->err = true;
    return !w->err;
}

/* Walks the tree straight into the writer: no text in between (context
 * documents are written for every plugin call; serialising with jansson and
 * re-parsing with yajl cost more than the guest's own work). Reals are
 * written as jansson would (%.17g): only Kiln-made values come this way. */
static void jansson_walk(jw *w, const json_t *v, int depth)
{
    if (w->err)
        return;
    if (v == NULL || depth > 64) {
        w->err = true;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        jw_obj_open(w);
        json_object_foreach((json_t *)v, k, m) {
            jw_key(w, k);
            jansson_walk(w, m, depth + 1);
        }
        jw_obj_close(w);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        jw_arr_open(w);
        json_array_foreach((json_t *)v, i, m)
            jansson_walk(w, m, depth + 1);
        jw_arr_close(w);
        break;
    }
    case JSON_STRING:
        jw_strn(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        jw_int(w, (long long)json_integer_value(v));
        break;
    case JSON_REAL: {
        char buf[40];
        int n = snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        /* Not finite: no JSON number spells it. */
        if (n <= 0 || strpbrk(buf, "in") != NULL)
            w->err = true;
        else
            jw_number(w, buf, (size_t)n);
        break;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        jw_bool(w, json_is_true(v));
        break;
    default:
        jw_null(w);
    }
}

void jw_jansson(jw *w, const json_t *v)
{
    if (w == NULL || w->err)
        return;
    jansson_walk(w, v, 0);
}

char *jw_finish(jw *w, size_t *len)
{
    if (w == NULL)
        return NULL;
    char *out = NULL;
    if (!w->err && w->done && w->depth == 0) {
        out = w->buf; /* done implies at least one byte was printed */
        out[w->len] = '\0';
        if (len != NULL)
            *len = w->len;
        w->buf = NULL;
    }
    jw_free(w);
    return out;
}

/* ---- validation and members ------------------------------------------------------- */

static int ok_number(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    (void)s;
    (void)n;
    return 1;
}

/* Without a number callback yajl would convert numbers and fail on int64
 * overflow; with it, any number the grammar allows is valid. */
static const yajl_callbacks validate_only = {NULL, NULL, NULL, NULL, ok_number, NULL,
                                             NULL, NULL, NULL, NULL, NULL};

bool json_raw_valid(const char *text, size_t len)
{
    return text != NULL && parse(text, len, &validate_only, NULL, NULL);
}

/* Which top-level member holds the key: yajl decodes the keys (escapes
 * included), so "a\u0062" matches "ab". */
typedef struct member_find {
    const char *key;
    size_t keylen;
    unsigned long depth;
    long count;  /* top-level members seen */
    long target; /* index of the last one named key, -1 if none */
} member_find;

static int mf_value(void *ctx)
{
    member_find *m = ctx;
    return m->depth > 0; /* a scalar at the top: not an object, stop */
}

static int mf_bool(void *ctx, int v)
{
    (void)v;
    return mf_value(ctx);
}

static int mf_number(void *ctx, const char *s, size_t n)
{
    (void)s;
    (void)n;
    return mf_value(ctx);
}

static int mf_string(void *ctx, const unsigned char *s, size_t n)
{
    (void)s;
    (void)n;
    return mf_value(ctx);
}

static int mf_map_open(void *ctx)
{
    ((member_find *)ctx)->depth++;
    return 1;
}

static int mf_arr_open(void *ctx)
{
    member_find *m = ctx;
    if (m->depth == 0)
        return 0; /* an array at the top: not an object */
    m->depth++;
    return 1;
}

static int mf_close(void *ctx)
{
    ((member_find *)ctx)->depth--;
    return 1;
}

static int mf_key(void *ctx, const unsigned char *s, size_t n)
{
    member_find *m = ctx;
    if (m->depth == 1) {
        if (n == m->keylen && memcmp(s, m->key, n) == 0)
            m->target = m->count;
        m->count++;
    }
    return 1;
}

static const yajl_callbacks find_member = {
    mf_value, mf_bool, NULL, NULL, mf_number, mf_string,
    mf_map_open, mf_key, mf_close, mf_arr_open, mf_close,
};

/* The scanner below runs only over text yajl has accepted, so it can be
 * simple: it only has to know where strings, containers and scalars end. */

static size_t skip_ws(const char *t, size_t i, size_t n)
{
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* t[i] is the opening quote; returns the index after the closing one. */
static size_t skip_string(const char *t, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (t[i] == '\\')
            i++; /* the escaped character (\" or \\) cannot end the string */
        else if (t[i] == '"')
            return i + 1;
    }
    return n;
}

static size_t skip_value(const char *t, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (t[i] == '"')
        return skip_string(t, i, n);
    if (t[i] == '{' || t[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char c = t[i];
            if (c == '"') {
                i = skip_string(t, i, n);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    /* A number, true, false or null: up to the next delimiter. */
    while (i < n && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' && t[i] != '\t' &&
           t[i] != '\n' && t[i] != '\r')
        i++;
    return i;
}

int json_raw_member(const char *text, size_t len, const char *key, const char **val,
                    size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (text == NULL || key == NULL)
        return -1;
    member_find m = {key, strlen(key), 0, 0, -1};
    size_t i = skip_ws(text, 0, len);
    if (i >= len || text[i] != '{' || !parse(text, len, &find_member, &m, NULL))
        return -1;
    if (m.target < 0)
        return 0;
    i++; /* the '{' */
    for (long idx = 0;; idx++) {
        i = skip_ws(text, i, len);
        if (i >= len || text[i] != '"')
            return -1; /* cannot happen after yajl accepted the text */
        i = skip_ws(text, skip_string(text, i, len), len);
        if (i >= len || text[i] != ':')
            return -1;
        size_t start = skip_ws(text, i + 1, len);
        size_t end = skip_value(text, start, len);
        if (idx == m.target) {
            *val = text + start;
            *vlen = end - start;
            return 1;
        }
        i = skip_ws(text, end, len);
        if (i >= len || text[i] != ',')
            return -1;
        i++;
    }
}

/* ---- json_raw_load ------------------------------------------------------------------ */

/* Deep enough for any real document; jansson's own default limit. */
#define LOAD_MAX_DEPTH 2048

/* A jansson tree built from yajl's events: used only when jansson itself
 * refused a number, so that one out-of-range number does not lose the whole
 * document. Mirrors jansson's rules (top level an object or array, no NUL in
 * strings, the last of repeated keys wins). */
typedef struct loader {
    json_t *root;
    json_t **stack; /* open containers (borrowed: their parents own them) */
    char **keys;    /* per open object, the key waiting for its value */
    size_t depth, cap;
    const char *why; /* our own refusal, NULL for yajl's */
    enum json_error_code code;
} loader;

static int ld_fail(loader *l, enum json_error_code code, const char *why)
{
    l->code = code;
    l->why = why;
    return 0;
}

/* Attach v (stolen) to the open container, or make it the root. */
static int ld_add(loader *l, json_t *v)
{
    if (v == NULL)
        return ld_fail(l, json_error_out_of_memory, "out of memory");
    if (l->depth == 0) {
        if (!json_is_object(v) && !json_is_array(v)) {
            json_decref(v);
            return ld_fail(l, json_error_invalid_syntax, "'[' or '{' expected");
        }
        l->root = v;
        return 1;
    }
    json_t *parent = l->stack[l->depth - 1];
    int rc;
    if (json_is_array(parent)) {
        rc = json_array_append_new(parent, v);
    } else {
        char *k = l->keys[l->depth - 1];
        rc = json_object_set_new(parent, k, v);
        kiln_free(k);
        l->keys[l->depth - 1] = NULL;
    }
    return rc == 0 ? 1 : ld_fail(l, json_error_out_of_memory, "out of memory");
}

static int ld_open(loader *l, json_t *v)
{
    if (l->depth >= LOAD_MAX_DEPTH) {
        json_decref(v);
        return ld_fail(l, json_error_stack_overflow, "maximum parsing depth reached");
    }
    if (l->depth == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        json_t **ns = kiln_realloc(l->stack, nc * sizeof(*ns));
        if (ns != NULL)
            l->stack = ns;
        char **nk = ns ? kiln_realloc(l->keys, nc * sizeof(*nk)) : NULL;
        if (nk != NULL)
            l->keys = nk;
        if (ns == NULL || nk == NULL) {
            json_decref(v);
            return ld_fail(l, json_error_out_of_memory, "out of memory");
        }
        l->cap = nc;
    }
    if (!ld_add(l, v))
        return 0;
    l->keys[l->depth] = NULL;
    l->stack[l->depth++] = v;
    return 1;
}

static int ld_close(void *ctx)
{
    ((loader *)ctx)->depth--;
    return 1;
}

static int ld_null(void *ctx)
{
    return ld_add(ctx, json_null());
}

static int ld_bool(void *ctx, int v)
{
    return ld_add(ctx, json_boolean(v));
}

static int ld_number(void *ctx, const char *s, size_t n)
{
    loader *l = ctx;
    char small[64];
    char *text = n < sizeof(small) ? small : kiln_malloc(n + 1);
    if (text == NULL)
        return ld_fail(l, json_error_out_of_memory, "out of memory");
    memcpy(text, s, n);
    text[n] = '\0';
    json_t *v = NULL;
    errno = 0;
    if (strpbrk(text, ".eE") == NULL) {
        long long i = strtoll(text, NULL, 10);
        if (errno != ERANGE)
            v = json_integer((json_int_t)i);
    }
    if (v == NULL) {
        /* Beyond int64, or a real: a double; beyond double, the largest one
         * of its sign (jansson has no infinities). */
        errno = 0;
        double d = strtod(text, NULL);
        if (errno == ERANGE && (d > DBL_MAX || d < -DBL_MAX))
            d = d > 0 ? DBL_MAX : -DBL_MAX;
        v = json_real(d);
    }
    if (text != small)
        kiln_free(text);
    return ld_add(l, v);
}

static int ld_string(void *ctx, const unsigned char *s, size_t n)
{
    if (memchr(s, '\0', n) != NULL)
        return ld_fail(ctx, json_error_null_character,
                       "\\u0000 is not allowed without JSON_ALLOW_NUL");
    return ld_add(ctx, json_stringn((const char *)s, n));
}

static int ld_key(void *ctx, const unsigned char *s, size_t n)
{
    loader *l = ctx;
    if (memchr(s, '\0', n) != NULL)
        return ld_fail(l, json_error_null_byte_in_key, "NUL byte in object key not supported");
    char *k = kiln_strndup((const char *)s, n);
    if (k == NULL)
        return ld_fail(l, json_error_out_of_memory, "out of memory");
    kiln_free(l->keys[l->depth - 1]);
    l->keys[l->depth - 1] = k;
    return 1;
}

static int ld_map_open(void *ctx)
{
    return ld_open(ctx, json_object());
}

static int ld_arr_open(void *ctx)
{
    return ld_open(ctx, json_array());
}

static const yajl_callbacks load_cb = {
    ld_null,     ld_bool, NULL,     NULL,        ld_number, ld_string,
    ld_map_open, ld_key,  ld_close, ld_arr_open, ld_close,
};

/* Fill err the way jansson does (the code lives in the text's last byte). */
static void set_error(json_error_t *err, const char *text, size_t len, size_t pos,
                      enum json_error_code code, const char *why)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
    if (pos > len)
        pos = len;
    int line = 1, col = 0;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            line++;
            col = 0;
        } else {
            col++;
        }
    }
    err->line = line;
    err->column = col;
    err->position = (int)pos;
    snprintf(err->source, sizeof(err->source), "<buffer>");
    snprintf(err->text, JSON_ERROR_TEXT_LENGTH - 1, "%s", why);
    err->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)code;
}

static json_t *load_with_yajl(const char *text, size_t len, json_error_t *err)
{
    loader l;
    memset(&l, 0, sizeof(l));
    yajl_handle h = NULL;
    bool ok = parse(text, len, &load_cb, &l, &h);
    if (!ok) {
        if (l.why != NULL) {
            set_error(err, text, len, h ? yajl_get_bytes_consumed(h) : 0, l.code, l.why);
        } else if (h != NULL) {
            unsigned char *e = yajl_get_error(h, 0, NULL, 0);
            char why[JSON_ERROR_TEXT_LENGTH];
            snprintf(why, sizeof(why), "%s", e ? (const char *)e : "invalid JSON");
            size_t wl = strlen(why);
            while (wl > 0 && (why[wl - 1] == '\n' || why[wl - 1] == '.'))
                why[--wl] = '\0';
            if (e != NULL)
                yajl_free_error(h, e);
            set_error(err, text, len, yajl_get_bytes_consumed(h), json_error_invalid_syntax,
                      why);
        } else {
            set_error(err, text, len, 0, json_error_out_of_memory, "out of memory");
        }
        json_decref(l.root);
        l.root = NULL;
    }
    if (h != NULL)
        yajl_free(h);
    for (size_t i = 0; i < l.depth; i++)
        kiln_free(l.keys[i]);
    kiln_free(l.keys);
    kiln_free(l.stack);
    return l.root;
}

json_t *json_raw_load(const char *text, size_t len, json_error_t *err)
{
    json_error_t je;
    json_t *v = json_loadb(text, len, 0, &je);
    if (v != NULL || json_error_code(&je) != json_error_numeric_overflow) {
        if (err != NULL)
            *err = je;
        return v;
    }
    /* Not JSON_DECODE_INT_AS_REAL: it would turn every integer into a real
     * (a "status": 201 would no longer be an integer), and it does not help
     * with a real beyond double's range (jansson refuses 1e400 either way). */
    return load_with_yajl(text, len, err);
}
