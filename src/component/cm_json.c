/*
 * cm_json.c - component values <-> JSON (mapping and contract in cm_json.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component/cm_json.h"

/* Paths are cut at this length in messages; deeper values still convert. */
#define PATH_MAX_LEN 200

static int bad(kiln_err *err, const char *path, const char *what, const cm_type *t)
{
    return kiln_err_set(err, KILN_EINVAL, "input %s: %s (expected %s)", path, what,
                        cm_kind_name(t->kind));
}

static void sub_path(char *dst, const char *path, const char *fmt_field, const char *name,
                     unsigned idx)
{
    if (name != NULL)
        snprintf(dst, PATH_MAX_LEN, "%s.%s", path, name);
    else
        snprintf(dst, PATH_MAX_LEN, "%s[%u]", path, idx);
    (void)fmt_field;
}

static int label_index(const cm_type *t, const char *s, uint32_t *out)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (strcmp(t->f[i].name, s) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

static bool decode_one_scalar(const char *s, size_t n, uint32_t *c)
{
    const uint8_t *u = (const uint8_t *)s;
    if (n == 1 && u[0] < 0x80) {
        *c = u[0];
        return true;
    }
    size_t k = n - 1;
    if (n < 2 || n > 4)
        return false;
    uint32_t cp = u[0] & (0x7F >> n);
    for (size_t i = 1; i <= k; i++)
        cp = (cp << 6) | (u[i] & 0x3F);
    *c = cp; /* jansson already checked the UTF-8 */
    return true;
}

static int int_from_json(const cm_type *t, json_t *j, const char *path, cm_val *out,
                         kiln_err *err)
{
    bool is_unsigned = t->kind == CM_U8 || t->kind == CM_U16 || t->kind == CM_U32 ||
                       t->kind == CM_U64;
    if (json_is_string(j) && (t->kind == CM_U64 || t->kind == CM_S64)) {
        const char *s = json_string_value(j);
        char *end;
        errno = 0;
        if (is_unsigned) {
            if (s[0] == '-')
                return bad(err, path, "negative value", t);
            out->u = strtoull(s, &end, 10);
        } else {
            out->s = strtoll(s, &end, 10);
        }
        if (errno != 0 || end == s || *end != '\0')
            return bad(err, path, "not a decimal integer in range", t);
        return KILN_OK;
    }
    if (!json_is_integer(j))
        return bad(err, path, "not an integer", t);
    json_int_t v = json_integer_value(j);
    static const struct {
        cm_kind k;
        long long lo, hi;
    } r[] = {{CM_S8, -128, 127},     {CM_U8, 0, 255},      {CM_S16, -32768, 32767},
             {CM_U16, 0, 65535},     {CM_S32, INT32_MIN, INT32_MAX},
             {CM_U32, 0, UINT32_MAX}, {CM_S64, INT64_MIN, INT64_MAX}, {CM_U64, 0, INT64_MAX}};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        if (r[i].k == t->kind && (v < r[i].lo || v > r[i].hi))
            return bad(err, path, "integer out of range", t);
    if (is_unsigned)
        out->u = (uint64_t)v;
    else
        out->s = (int64_t)v;
    return KILN_OK;
}

static int float_from_json(json_t *j, double *out)
{
    if (json_is_number(j)) {
        *out = json_number_value(j);
        return 0;
    }
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        if (strcmp(s, "nan") == 0)
            *out = NAN;
        else if (strcmp(s, "inf") == 0)
            *out = INFINITY;
        else if (strcmp(s, "-inf") == 0)
            *out = -INFINITY;
        else
            return -1;
        return 0;
    }
    return -1;
}

int cm_val_from_json(cm_arena *a, const cm_type *t, json_t *j, const char *path, cm_val *out,
                     kiln_err *err)
{
    char sub[PATH_MAX_LEN];
    int rc;
    memset(out, 0, sizeof(*out));
    out->kind = t->kind;
    switch (t->kind) {
    case CM_BOOL:
        if (!json_is_boolean(j))
            return bad(err, path, "not true or false", t);
        out->b = json_is_true(j);
        return KILN_OK;
    case CM_S8: case CM_U8: case CM_S16: case CM_U16: case CM_S32: case CM_U32:
    case CM_S64: case CM_U64:
        return int_from_json(t, j, path, out, err);
    case CM_F32:
    case CM_F64: {
        double d;
        if (float_from_json(j, &d) != 0)
            return bad(err, path, "not a number (or \"nan\", \"inf\", \"-inf\")", t);
        if (t->kind == CM_F32)
            out->f32 = (float)d;
        else
            out->f64 = d;
        return KILN_OK;
    }
    case CM_CHAR:
        if (!json_is_string(j) ||
            !decode_one_scalar(json_string_value(j), json_string_length(j), &out->c))
            return bad(err, path, "not a string of exactly one character", t);
        return KILN_OK;
    case CM_STRING: {
        if (!json_is_string(j))
            return bad(err, path, "not a string", t);
        size_t n = json_string_length(j);
        if (n > CM_MAX_STRING_BYTES)
            return bad(err, path, "string too long", t);
        char *s = cm_arena_strndup(a, json_string_value(j), n);
        if (s == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory reading the input");
        out->str.p = s;
        out->str.len = (uint32_t)n;
        return KILN_OK;
    }
    case CM_LIST:
    case CM_TUPLE: {
        if (!json_is_array(j))
            return bad(err, path, "not an array", t);
        size_t n = json_array_size(j);
        if (t->kind == CM_TUPLE && n != t->n)
            return bad(err, path, "array of the wrong length for the tuple", t);
        if (n > UINT32_MAX / 2)
            return bad(err, path, "array too long", t);
        out->agg.n = (uint32_t)n;
        out->agg.v = cm_arena_alloc(a, n * sizeof(cm_val) + 1);
        if (out->agg.v == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory reading the input");
        for (size_t i = 0; i < n; i++) {
            sub_path(sub, path, NULL, NULL, (unsigned)i);
            rc = cm_val_from_json(a, t->kind == CM_LIST ? t->elem : t->f[i].type,
                                  json_array_get(j, i), sub, &out->agg.v[i], err);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    }
    case CM_RECORD: {
        if (!json_is_object(j))
            return bad(err, path, "not an object", t);
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            uint32_t k;
            if (label_index(t, key, &k) != 0) {
                snprintf(sub, sizeof(sub), "unknown field '%.100s'", key);
                return bad(err, path, sub, t);
            }
        }
        out->agg.n = t->n;
        out->agg.v = cm_arena_alloc(a, (size_t)t->n * sizeof(cm_val));
        if (out->agg.v == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory reading the input");
        for (uint32_t i = 0; i < t->n; i++) {
            json_t *f = json_object_get(j, t->f[i].name);
            sub_path(sub, path, NULL, t->f[i].name, 0);
            if (f == NULL)
                return kiln_err_set(err, KILN_EINVAL, "input %s: missing record field", sub);
            rc = cm_val_from_json(a, t->f[i].type, f, sub, &out->agg.v[i], err);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    }
    case CM_FLAGS: {
        if (!json_is_array(j))
            return bad(err, path, "not an array of labels", t);
        for (size_t i = 0; i < json_array_size(j); i++) {
            json_t *l = json_array_get(j, i);
            uint32_t k;
            if (!json_is_string(l) || label_index(t, json_string_value(l), &k) != 0)
                return bad(err, path, "unknown flag label", t);
            out->flags |= 1u << k;
        }
        return KILN_OK;
    }
    case CM_ENUM: {
        uint32_t k;
        if (!json_is_string(j) || label_index(t, json_string_value(j), &k) != 0)
            return bad(err, path, "not one of the enum's labels", t);
        out->var.index = k;
        return KILN_OK;
    }
    case CM_OPTION:
        if (json_is_null(j))
            return KILN_OK;
        out->var.index = 1;
        out->var.payload = cm_arena_alloc(a, sizeof(cm_val));
        if (out->var.payload == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory reading the input");
        return cm_val_from_json(a, t->elem, j, path, out->var.payload, err);
    case CM_VARIANT:
    case CM_RESULT: {
        const char *name = NULL;
        json_t *payload = NULL;
        if (t->kind == CM_VARIANT && json_is_string(j)) {
            name = json_string_value(j);
        } else if (json_is_object(j) && json_object_size(j) == 1) {
            void *it = json_object_iter(j);
            name = json_object_iter_key(it);
            payload = json_object_iter_value(it);
        } else {
            return bad(err, path,
                       t->kind == CM_RESULT ? "not {\"ok\": v} or {\"error\": e}"
                                            : "not {\"case\": payload} or \"case\"",
                       t);
        }
        uint32_t k;
        const cm_type *ct;
        if (t->kind == CM_RESULT) {
            if (strcmp(name, "ok") == 0)
                k = 0, ct = t->elem;
            else if (strcmp(name, "error") == 0)
                k = 1, ct = t->err;
            else
                return bad(err, path, "neither ok nor error", t);
        } else {
            if (label_index(t, name, &k) != 0)
                return bad(err, path, "unknown case", t);
            ct = t->f[k].type;
        }
        out->var.index = k;
        snprintf(sub, sizeof(sub), "%s.%s", path, name);
        if (ct == NULL) {
            if (payload != NULL && !json_is_null(payload))
                return kiln_err_set(err, KILN_EINVAL, "input %s: this case carries no value", sub);
            return KILN_OK;
        }
        if (payload == NULL)
            return kiln_err_set(err, KILN_EINVAL, "input %s: this case needs a value", sub);
        out->var.payload = cm_arena_alloc(a, sizeof(cm_val));
        if (out->var.payload == NULL)
            return kiln_err_set(err, KILN_ENOMEM, "out of memory reading the input");
        return cm_val_from_json(a, ct, payload, sub, out->var.payload, err);
    }
    default:
        return cm_check_supported(t, err);
    }
}

static json_t *float_json(double d)
{
    if (isnan(d))
        return json_string("nan");
    if (isinf(d))
        return json_string(d > 0 ? "inf" : "-inf");
    return json_real(d);
}

json_t *cm_val_to_json(const cm_type *t, const cm_val *v)
{
    switch (t->kind) {
    case CM_BOOL: return json_boolean(v->b);
    case CM_S8: case CM_S16: case CM_S32: case CM_S64: return json_integer(v->s);
    case CM_U8: case CM_U16: case CM_U32: return json_integer((json_int_t)v->u);
    case CM_U64:
        if (v->u > INT64_MAX) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v->u);
            return json_string(buf);
        }
        return json_integer((json_int_t)v->u);
    case CM_F32: return float_json(v->f32);
    case CM_F64: return float_json(v->f64);
    case CM_CHAR: {
        char buf[5];
        uint32_t c = v->c;
        size_t n;
        if (c < 0x80) {
            buf[0] = (char)c, n = 1;
        } else if (c < 0x800) {
            buf[0] = (char)(0xC0 | (c >> 6)), buf[1] = (char)(0x80 | (c & 0x3F)), n = 2;
        } else if (c < 0x10000) {
            buf[0] = (char)(0xE0 | (c >> 12)), buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            buf[2] = (char)(0x80 | (c & 0x3F)), n = 3;
        } else {
            buf[0] = (char)(0xF0 | (c >> 18)), buf[1] = (char)(0x80 | ((c >> 12) & 0x3F));
            buf[2] = (char)(0x80 | ((c >> 6) & 0x3F)), buf[3] = (char)(0x80 | (c & 0x3F)), n = 4;
        }
        return json_stringn(buf, n);
    }
    case CM_STRING: return json_stringn(v->str.p, v->str.len);
    case CM_LIST:
    case CM_TUPLE: {
        json_t *a = json_array();
        if (v->bytes) { /* list<u8> as raw bytes */
            for (uint32_t i = 0; a != NULL && i < v->str.len; i++)
                if (json_array_append_new(a, json_integer(cm_list_byte(v, i))) != 0) {
                    json_decref(a);
                    return NULL;
                }
            return a;
        }
        for (uint32_t i = 0; a != NULL && i < v->agg.n; i++) {
            json_t *e = cm_val_to_json(t->kind == CM_LIST ? t->elem : t->f[i].type, &v->agg.v[i]);
            if (e == NULL || json_array_append_new(a, e) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case CM_RECORD: {
        json_t *o = json_object();
        for (uint32_t i = 0; o != NULL && i < t->n; i++) {
            json_t *e = cm_val_to_json(t->f[i].type, &v->agg.v[i]);
            if (e == NULL || json_object_set_new(o, t->f[i].name, e) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case CM_FLAGS: {
        json_t *a = json_array();
        for (uint32_t i = 0; a != NULL && i < t->n; i++)
            if (v->flags & (1u << i))
                json_array_append_new(a, json_string(t->f[i].name));
        return a;
    }
    case CM_ENUM: return json_string(t->f[v->var.index].name);
    case CM_OPTION:
        return v->var.index == 0 ? json_null() : cm_val_to_json(t->elem, v->var.payload);
    case CM_VARIANT:
    case CM_RESULT: {
        const char *name;
        const cm_type *ct;
        if (t->kind == CM_RESULT) {
            name = v->var.index == 0 ? "ok" : "error";
            ct = v->var.index == 0 ? t->elem : t->err;
        } else {
            name = t->f[v->var.index].name;
            ct = t->f[v->var.index].type;
        }
        json_t *o = json_object();
        json_t *p = ct != NULL ? cm_val_to_json(ct, v->var.payload) : json_null();
        if (o == NULL || p == NULL || json_object_set_new(o, name, p) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    default: return NULL;
    }
}
