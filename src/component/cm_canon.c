/*
 * cm_canon.c - the Canonical ABI: layout, flattening, load/store, flat
 * lift/lower and the parameter/result passing of a lifted export
 * (contract in cm_canon.h; definitions follow CanonicalABI.md, whose
 * function names are kept in the comments).
 *
 * Recursion follows the type, whose depth the reader bounds
 * (CM_MAX_TYPE_DEPTH); work per lifted value is bounded by guest memory
 * checks and the arena's cap, so a hostile guest gets a trap or ENOMEM,
 * never unbounded host work.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"
#include "component/cm_canon.h"

static int trap(cm_cx *cx, const char *fmt, ...) KILN_PRINTF(2, 3);

static int trap(cm_cx *cx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kiln_err_set(cx->err, KILN_ETRAP, "canonical ABI: %s", msg);
}

static int bad(cm_cx *cx, const char *fmt, ...) KILN_PRINTF(2, 3);

/* A host value that does not match its type: the caller's mistake. */
static int bad(cm_cx *cx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kiln_err_set(cx->err, KILN_EINVAL, "canonical ABI: %s", msg);
}

static int oom(cm_cx *cx)
{
    return kiln_err_set(cx->err, KILN_ENOMEM,
                        "canonical ABI: out of memory (or over the %zu MiB cap) lifting a value",
                        CM_MAX_ARENA >> 20);
}

/* ---- cases of variant-like types ------------------------------------------ */

static uint32_t n_cases(const cm_type *t)
{
    return t->kind == CM_OPTION || t->kind == CM_RESULT ? 2 : t->n;
}

static const cm_type *case_type(const cm_type *t, uint32_t i)
{
    switch (t->kind) {
    case CM_VARIANT: return t->f[i].type;
    case CM_OPTION: return i == 1 ? t->elem : NULL;
    case CM_RESULT: return i == 0 ? t->elem : t->err;
    default: return NULL; /* enum */
    }
}

static uint32_t disc_size(uint32_t n)
{
    return n <= 256 ? 1 : n <= 65536 ? 2 : 4;
}

static uint32_t flags_size(uint32_t n)
{
    return n <= 8 ? 1 : n <= 16 ? 2 : 4;
}

static uint64_t align_to(uint64_t x, uint32_t a)
{
    return (x + a - 1) / a * a;
}

/* ---- layout ----------------------------------------------------------------- */

static uint32_t max_case_alignment(const cm_type *t)
{
    uint32_t a = 1;
    for (uint32_t i = 0; i < n_cases(t); i++) {
        const cm_type *c = case_type(t, i);
        if (c != NULL && cm_alignment(c) > a)
            a = cm_alignment(c);
    }
    return a;
}

uint32_t cm_alignment(const cm_type *t)
{
    switch (t->kind) {
    case CM_BOOL: case CM_S8: case CM_U8: return 1;
    case CM_S16: case CM_U16: return 2;
    case CM_S32: case CM_U32: case CM_F32: case CM_CHAR: return 4;
    case CM_S64: case CM_U64: case CM_F64: return 8;
    case CM_STRING: case CM_LIST: case CM_OWN: case CM_BORROW: return 4;
    case CM_FLAGS: return flags_size(t->n);
    case CM_RECORD:
    case CM_TUPLE: {
        uint32_t a = 1;
        for (uint32_t i = 0; i < t->n; i++)
            if (cm_alignment(t->f[i].type) > a)
                a = cm_alignment(t->f[i].type);
        return a;
    }
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        uint32_t d = disc_size(n_cases(t)), c = max_case_alignment(t);
        return d > c ? d : c;
    }
    default: return 4;
    }
}

uint32_t cm_size(const cm_type *t)
{
    switch (t->kind) {
    case CM_BOOL: case CM_S8: case CM_U8: return 1;
    case CM_S16: case CM_U16: return 2;
    case CM_S32: case CM_U32: case CM_F32: case CM_CHAR: return 4;
    case CM_S64: case CM_U64: case CM_F64: return 8;
    case CM_STRING: case CM_LIST: return 8;
    case CM_OWN: case CM_BORROW: return 4;
    case CM_FLAGS: return flags_size(t->n);
    case CM_RECORD:
    case CM_TUPLE: {
        uint64_t s = 0;
        for (uint32_t i = 0; i < t->n; i++) {
            s = align_to(s, cm_alignment(t->f[i].type));
            s += cm_size(t->f[i].type);
        }
        return (uint32_t)align_to(s, cm_alignment(t));
    }
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        uint64_t s = disc_size(n_cases(t));
        s = align_to(s, max_case_alignment(t));
        uint32_t m = 0;
        for (uint32_t i = 0; i < n_cases(t); i++) {
            const cm_type *c = case_type(t, i);
            if (c != NULL && cm_size(c) > m)
                m = cm_size(c);
        }
        return (uint32_t)align_to(s + m, cm_alignment(t));
    }
    default: return 4;
    }
}

/* join(a, b) of two flat types occupying the same slot of a variant. */
static char join(char a, char b)
{
    if (a == b)
        return a;
    if ((a == 'i' && b == 'f') || (a == 'f' && b == 'i'))
        return 'i';
    return 'j';
}

static uint32_t flat_into(const cm_type *t, char *out, uint32_t n, uint32_t max);

static uint32_t push_flat(char *out, uint32_t n, uint32_t max, char c)
{
    if (n >= max)
        return max + 1;
    out[n] = c;
    return n + 1;
}

static uint32_t flat_into(const cm_type *t, char *out, uint32_t n, uint32_t max)
{
    if (n > max)
        return max + 1;
    switch (t->kind) {
    case CM_S64: case CM_U64: return push_flat(out, n, max, 'j');
    case CM_F32: return push_flat(out, n, max, 'f');
    case CM_F64: return push_flat(out, n, max, 'd');
    case CM_STRING:
    case CM_LIST:
        n = push_flat(out, n, max, 'i');
        return push_flat(out, n, max, 'i');
    case CM_RECORD:
    case CM_TUPLE:
        for (uint32_t i = 0; i < t->n && n <= max; i++)
            n = flat_into(t->f[i].type, out, n, max);
        return n;
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        n = push_flat(out, n, max, 'i');
        if (n > max)
            return n;
        uint32_t base = n, len = 0;
        for (uint32_t i = 0; i < n_cases(t); i++) {
            const cm_type *c = case_type(t, i);
            if (c == NULL)
                continue;
            char tmp[CM_MAX_FLAT + 1];
            uint32_t k = flat_into(c, tmp, 0, CM_MAX_FLAT);
            if (k > CM_MAX_FLAT || base + k > max)
                return max + 1;
            for (uint32_t j = 0; j < k; j++)
                out[base + j] = j < len ? join(out[base + j], tmp[j]) : tmp[j];
            if (k > len)
                len = k;
        }
        return base + len;
    }
    default: return push_flat(out, n, max, 'i'); /* i32-sized scalars, flags, handles */
    }
}

uint32_t cm_flatten(const cm_type *t, char *out, uint32_t max)
{
    return flat_into(t, out, 0, max);
}

int cm_check_supported(const cm_type *t, kiln_err *err)
{
    switch (t->kind) {
    case CM_OWN: case CM_BORROW:
        return KILN_OK; /* through cx->handle; refused there when it is NULL */
    case CM_FUTURE: case CM_STREAM: case CM_ERROR_CONTEXT:
    case CM_FIXED_LIST:
        return kiln_err_set(err, KILN_EUNSUPPORTED,
                            "canonical ABI: values of type %s are not implemented yet",
                            cm_kind_name(t->kind));
    case CM_LIST:
    case CM_OPTION:
        return cm_check_supported(t->elem, err);
    case CM_RECORD: case CM_TUPLE: case CM_VARIANT:
        for (uint32_t i = 0; i < t->n; i++)
            if (t->f[i].type != NULL && cm_check_supported(t->f[i].type, err) != KILN_OK)
                return err ? err->code : KILN_EUNSUPPORTED;
        return KILN_OK;
    case CM_RESULT:
        if (t->elem != NULL && cm_check_supported(t->elem, err) != KILN_OK)
            return KILN_EUNSUPPORTED;
        return t->err != NULL ? cm_check_supported(t->err, err) : KILN_OK;
    case CM_FUNC:
        for (uint32_t i = 0; i < t->n; i++)
            if (cm_check_supported(t->f[i].type, err) != KILN_OK)
                return KILN_EUNSUPPORTED;
        return t->elem != NULL ? cm_check_supported(t->elem, err) : KILN_OK;
    default:
        return (t->kind >= CM_BOOL && t->kind <= CM_STRING) || t->kind == CM_ENUM ||
                       t->kind == CM_FLAGS
                   ? KILN_OK
                   : kiln_err_set(err, KILN_EUNSUPPORTED, "canonical ABI: %s is not a value type",
                                  cm_kind_name(t->kind));
    }
}

/* A resource handle crossing the boundary: lifting turns the guest's handle
 * into the host's representation, lowering the reverse (cx->handle). */
static int handle_cross(cm_cx *cx, const cm_type *t, bool lift, uint32_t in, uint64_t *out)
{
    if (cx->handle == NULL)
        return kiln_err_set(cx->err, KILN_EUNSUPPORTED,
                            "canonical ABI: %s handles are not supported in this call",
                            cm_kind_name(t->kind));
    uint32_t o = 0;
    int rc = cx->handle(cx, t, lift, in, &o);
    *out = o;
    return rc;
}

/* ---- memory ------------------------------------------------------------------ */

static int check_range(cm_cx *cx, uint64_t ptr, uint64_t len, const char *what)
{
    if (ptr > cx->mem_len || len > cx->mem_len - ptr)
        return trap(cx, "%s at %llu..%llu is out of bounds (memory is %llu bytes)", what,
                    (unsigned long long)ptr, (unsigned long long)(ptr + len),
                    (unsigned long long)cx->mem_len);
    return KILN_OK;
}

static int check_align(cm_cx *cx, uint64_t ptr, uint32_t align, const char *what)
{
    if (ptr % align != 0)
        return trap(cx, "%s pointer %llu is not aligned to %u", what, (unsigned long long)ptr,
                    (unsigned)align);
    return KILN_OK;
}

static int load_int(cm_cx *cx, uint64_t ptr, uint32_t nbytes, uint64_t *out)
{
    int rc = check_range(cx, ptr, nbytes, "load");
    if (rc != KILN_OK)
        return rc;
    uint64_t v = 0;
    for (uint32_t i = 0; i < nbytes; i++)
        v |= (uint64_t)cx->mem[ptr + i] << (8 * i);
    *out = v;
    return KILN_OK;
}

static int store_int(cm_cx *cx, uint64_t ptr, uint32_t nbytes, uint64_t v)
{
    int rc = check_range(cx, ptr, nbytes, "store");
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < nbytes; i++)
        cx->mem[ptr + i] = (uint8_t)(v >> (8 * i));
    return KILN_OK;
}

/* realloc, with the checks the spec applies to its result. */
static int guest_realloc(cm_cx *cx, uint32_t old_ptr, uint32_t old_size, uint32_t align,
                         uint32_t new_size, uint32_t *out)
{
    if (cx->realloc == NULL)
        return trap(cx, "the export needs guest memory but has no realloc option");
    int rc = cx->realloc(cx, old_ptr, old_size, align, new_size, out);
    if (rc != KILN_OK)
        return rc;
    rc = check_align(cx, *out, align, "realloc result");
    if (rc == KILN_OK)
        rc = check_range(cx, *out, new_size, "realloc result");
    return rc;
}

/* A list<u8> given as raw bytes (cm_val.bytes): realloc'd and copied in one
 * go, as the element-by-element store would write it. */
static int store_byte_list(cm_cx *cx, const cm_val *v, uint32_t *out_ptr)
{
    uint32_t p;
    int rc = guest_realloc(cx, 0, 0, 1, v->str.len, &p);
    if (rc != KILN_OK)
        return rc;
    if (v->str.len > 0)
        memcpy(cx->mem + p, v->str.p, v->str.len); /* range checked by guest_realloc */
    *out_ptr = p;
    return KILN_OK;
}

static float canon_f32(float f)
{
    if (isnan(f)) {
        uint32_t bits = 0x7fc00000;
        memcpy(&f, &bits, 4);
    }
    return f;
}

static double canon_f64(double d)
{
    if (isnan(d)) {
        uint64_t bits = 0x7ff8000000000000ULL;
        memcpy(&d, &bits, 8);
    }
    return d;
}

static bool scalar_ok(uint32_t c)
{
    return c < 0x110000 && !(c >= 0xD800 && c <= 0xDFFF);
}

/* ---- strings ----------------------------------------------------------------- */

static size_t utf8_put(char *dst, uint32_t c)
{
    if (c < 0x80) {
        dst[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        dst[0] = (char)(0xC0 | (c >> 6));
        dst[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        dst[0] = (char)(0xE0 | (c >> 12));
        dst[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (c >> 18));
    dst[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Decode one UTF-8 scalar at s[*i] (n bytes); false when invalid (the
 * checking is base/utf8.h's: strict, as the Canonical ABI requires). */
static bool utf8_next(const uint8_t *s, size_t n, size_t *i, uint32_t *out)
{
    size_t bad;
    size_t k = utf8_seq(s + *i, n - *i, &bad);
    if (k == 0)
        return false;
    static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = s[*i] & lead_mask[k];
    for (size_t j = 1; j < k; j++)
        cp = (cp << 6) | (s[*i + j] & 0x3F);
    *out = cp;
    *i += k;
    return true;
}

/* load_string_from_range: decode guest bytes into a UTF-8 host string. */
static int load_string_range(cm_cx *cx, uint64_t ptr, uint32_t tagged, cm_val *out)
{
    bool utf16 = cx->encoding == CM_UTF16;
    uint32_t align = cx->encoding == CM_UTF8 ? 1 : 2;
    uint64_t units = tagged;
    if (cx->encoding == CM_LATIN1_UTF16 && (tagged & CM_UTF16_TAG)) {
        utf16 = true;
        units = tagged ^ CM_UTF16_TAG;
    }
    uint64_t bytes = utf16 ? 2 * units : units;
    int rc = check_align(cx, ptr, align, "string");
    if (rc == KILN_OK)
        rc = check_range(cx, ptr, bytes, "string");
    if (rc != KILN_OK)
        return rc;
    const uint8_t *src = cx->mem + ptr;
    out->kind = CM_STRING;
    if (cx->encoding == CM_UTF8) {
        for (size_t i = 0; i < bytes;) {
            uint32_t c;
            if (!utf8_next(src, bytes, &i, &c))
                return trap(cx, "string at %llu is not valid UTF-8 (byte %zu)",
                            (unsigned long long)ptr, i);
        }
        char *s = cm_arena_strndup(cx->arena, (const char *)src, bytes);
        if (s == NULL)
            return oom(cx);
        out->str.p = s;
        out->str.len = (uint32_t)bytes;
        return KILN_OK;
    }
    /* Latin-1 grows to at most 2 UTF-8 bytes per unit, UTF-16 to 3 per unit
     * (a surrogate pair is 2 units for 4 bytes). */
    uint64_t cap = utf16 ? 3 * units : 2 * units;
    if (cap > CM_MAX_STRING_BYTES)
        return trap(cx, "string of %llu code units is too long", (unsigned long long)units);
    char *s = cm_arena_alloc(cx->arena, cap + 1);
    if (s == NULL)
        return oom(cx);
    size_t n = 0;
    for (uint64_t i = 0; i < units; i++) {
        uint32_t c;
        if (!utf16) {
            c = src[i];
        } else {
            c = (uint32_t)src[2 * i] | (uint32_t)src[2 * i + 1] << 8;
            if (c >= 0xD800 && c <= 0xDBFF && i + 1 < units) {
                uint32_t lo = (uint32_t)src[2 * i + 2] | (uint32_t)src[2 * i + 3] << 8;
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                    i++;
                }
            }
            if (c >= 0xD800 && c <= 0xDFFF)
                return trap(cx, "string at %llu has an unpaired UTF-16 surrogate at unit %llu",
                            (unsigned long long)ptr, (unsigned long long)i);
        }
        n += utf8_put(s + n, c);
    }
    out->str.p = s;
    out->str.len = (uint32_t)n;
    return KILN_OK;
}

/* Transcode src[i..len) (valid UTF-8) to UTF-16 code units at ptr, after the
 * `units` already there, in a buffer of `worst` bytes; then shrink it to fit. */
static int store_utf16_tail(cm_cx *cx, const uint8_t *src, size_t len, size_t i, uint32_t ptr,
                            uint32_t units, uint64_t worst, uint32_t *out_ptr,
                            uint32_t *out_units)
{
    while (i < len) {
        uint32_t c;
        utf8_next(src, len, &i, &c);
        if (c >= 0x10000) {
            c -= 0x10000;
            store_int(cx, ptr + 2 * units++, 2, 0xD800 | (c >> 10));
            store_int(cx, ptr + 2 * units++, 2, 0xDC00 | (c & 0x3FF));
        } else {
            store_int(cx, ptr + 2 * units++, 2, c);
        }
    }
    if (2 * (uint64_t)units < worst) {
        int rc = guest_realloc(cx, ptr, (uint32_t)worst, 2, 2 * units, &ptr);
        if (rc != KILN_OK)
            return rc;
    }
    *out_ptr = ptr;
    *out_units = units;
    return KILN_OK;
}

/* store_string_into_range: copy or transcode a UTF-8 host string into guest
 * memory obtained through realloc, as the spec's store_string_* do. */
static int store_string(cm_cx *cx, const cm_val *v, uint32_t *out_ptr, uint32_t *out_units)
{
    const uint8_t *src = (const uint8_t *)v->str.p;
    uint32_t len = v->str.len;
    if (len > CM_MAX_STRING_BYTES)
        return trap(cx, "string of %u bytes is too long", (unsigned)len);
    /* Host strings are checked UTF-8 here too: a lowered string must be valid. */
    for (size_t i = 0; i < len;) {
        uint32_t c;
        if (!utf8_next(src, len, &i, &c))
            return bad(cx, "host string is not valid UTF-8");
    }
    uint32_t ptr;
    int rc;
    if (cx->encoding == CM_UTF8) {
        rc = guest_realloc(cx, 0, 0, 1, len, &ptr);
        if (rc != KILN_OK)
            return rc;
        memcpy(cx->mem + ptr, src, len);
        *out_ptr = ptr;
        *out_units = len;
        return KILN_OK;
    }
    if (cx->encoding == CM_UTF16) {
        /* store_utf8_to_utf16: worst case 2 bytes per UTF-8 byte, then shrink. */
        uint64_t worst = 2 * (uint64_t)len;
        if (worst > CM_MAX_STRING_BYTES)
            return trap(cx, "string of %u bytes is too long as UTF-16", (unsigned)len);
        rc = guest_realloc(cx, 0, 0, 2, (uint32_t)worst, &ptr);
        if (rc != KILN_OK)
            return rc;
        return store_utf16_tail(cx, src, len, 0, ptr, 0, worst, out_ptr, out_units);
    }
    /* store_string_to_latin1_or_utf16: Latin-1 while every scalar fits in a
     * byte; on the first that does not, inflate what was written to UTF-16
     * in place (back to front) and continue in UTF-16, tagging the length. */
    rc = guest_realloc(cx, 0, 0, 2, len, &ptr);
    if (rc != KILN_OK)
        return rc;
    uint32_t n = 0;
    size_t i = 0;
    while (i < len) {
        size_t at = i;
        uint32_t c;
        utf8_next(src, len, &i, &c);
        if (c < 0x100) {
            cx->mem[ptr + n++] = (uint8_t)c;
            continue;
        }
        uint64_t worst = 2 * (uint64_t)len;
        if (worst > CM_MAX_STRING_BYTES)
            return trap(cx, "string of %u bytes is too long as UTF-16", (unsigned)len);
        rc = guest_realloc(cx, ptr, len, 2, (uint32_t)worst, &ptr);
        if (rc != KILN_OK)
            return rc;
        for (uint32_t j = n; j-- > 0;)
            store_int(cx, ptr + 2 * (uint64_t)j, 2, cx->mem[ptr + j]);
        rc = store_utf16_tail(cx, src, len, at, ptr, n, worst, out_ptr, out_units);
        if (rc == KILN_OK)
            *out_units |= CM_UTF16_TAG;
        return rc;
    }
    if (n < len) {
        rc = guest_realloc(cx, ptr, len, 2, n, &ptr);
        if (rc != KILN_OK)
            return rc;
    }
    *out_ptr = ptr;
    *out_units = n;
    return KILN_OK;
}

/* ---- load / store --------------------------------------------------------- */

static int load_list_range(cm_cx *cx, uint64_t ptr, uint32_t len, const cm_type *elem,
                           cm_val *out)
{
    uint32_t esize = cm_size(elem);
    int rc = check_align(cx, ptr, cm_alignment(elem), "list");
    if (rc == KILN_OK)
        rc = check_range(cx, ptr, (uint64_t)len * esize, "list");
    if (rc != KILN_OK)
        return rc;
    out->kind = CM_LIST;
    if (elem->kind == CM_U8) {
        /* Raw bytes: one host byte per guest byte, not a cm_val each (a
         * guest's megabyte would otherwise cost 32 MB of host memory). */
        char *b = cm_arena_alloc(cx->arena, len ? len : 1);
        if (b == NULL)
            return oom(cx);
        if (len != 0)
            memcpy(b, cx->mem + ptr, len);
        out->bytes = true;
        out->str.p = b;
        out->str.len = len;
        return KILN_OK;
    }
    out->agg.n = len;
    out->agg.v = cm_arena_alloc(cx->arena, (size_t)len * sizeof(cm_val));
    if (out->agg.v == NULL)
        return oom(cx);
    for (uint32_t i = 0; i < len; i++) {
        rc = cm_load(cx, ptr + (uint64_t)i * esize, elem, &out->agg.v[i]);
        if (rc != KILN_OK)
            return rc;
    }
    return KILN_OK;
}

int cm_load(cm_cx *cx, uint64_t ptr, const cm_type *t, cm_val *out)
{
    uint64_t u;
    int rc;
    memset(out, 0, sizeof(*out));
    out->kind = t->kind;
    switch (t->kind) {
    case CM_BOOL:
        rc = load_int(cx, ptr, 1, &u);
        out->b = u != 0;
        return rc;
    case CM_U8: case CM_U16: case CM_U32: case CM_U64:
        rc = load_int(cx, ptr, cm_size(t), &out->u);
        return rc;
    case CM_S8: case CM_S16: case CM_S32: case CM_S64: {
        uint32_t w = cm_size(t);
        rc = load_int(cx, ptr, w, &u);
        if (w < 8 && (u >> (8 * w - 1)) & 1)
            u |= ~(uint64_t)0 << (8 * w);
        out->s = (int64_t)u;
        return rc;
    }
    case CM_F32: {
        rc = load_int(cx, ptr, 4, &u);
        uint32_t bits = (uint32_t)u;
        memcpy(&out->f32, &bits, 4);
        out->f32 = canon_f32(out->f32);
        return rc;
    }
    case CM_F64:
        rc = load_int(cx, ptr, 8, &u);
        memcpy(&out->f64, &u, 8);
        out->f64 = canon_f64(out->f64);
        return rc;
    case CM_CHAR:
        rc = load_int(cx, ptr, 4, &u);
        if (rc == KILN_OK && !scalar_ok((uint32_t)u))
            return trap(cx, "char 0x%llx is not a Unicode scalar value", (unsigned long long)u);
        out->c = (uint32_t)u;
        return rc;
    case CM_STRING:
    case CM_LIST: {
        uint64_t p, n;
        rc = load_int(cx, ptr, 4, &p);
        if (rc == KILN_OK)
            rc = load_int(cx, ptr + 4, 4, &n);
        if (rc != KILN_OK)
            return rc;
        return t->kind == CM_STRING ? load_string_range(cx, p, (uint32_t)n, out)
                                    : load_list_range(cx, p, (uint32_t)n, t->elem, out);
    }
    case CM_OWN:
    case CM_BORROW:
        rc = load_int(cx, ptr, 4, &u);
        return rc == KILN_OK ? handle_cross(cx, t, true, (uint32_t)u, &out->u) : rc;
    case CM_RECORD:
    case CM_TUPLE: {
        out->agg.n = t->n;
        out->agg.v = cm_arena_alloc(cx->arena, (size_t)t->n * sizeof(cm_val));
        if (out->agg.v == NULL)
            return oom(cx);
        uint64_t at = ptr;
        for (uint32_t i = 0; i < t->n; i++) {
            at = align_to(at, cm_alignment(t->f[i].type));
            rc = cm_load(cx, at, t->f[i].type, &out->agg.v[i]);
            if (rc != KILN_OK)
                return rc;
            at += cm_size(t->f[i].type);
        }
        return KILN_OK;
    }
    case CM_FLAGS:
        rc = load_int(cx, ptr, flags_size(t->n), &u);
        /* Bits past the last label are ignored, as the spec's lift_flags does. */
        out->flags = (uint32_t)u & (t->n >= 32 ? 0xFFFFFFFFu : ((1u << t->n) - 1));
        return rc;
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        uint32_t nc = n_cases(t);
        rc = load_int(cx, ptr, disc_size(nc), &u);
        if (rc != KILN_OK)
            return rc;
        if (u >= nc)
            return trap(cx, "%s discriminant %llu out of range (%u cases)", cm_kind_name(t->kind),
                        (unsigned long long)u, (unsigned)nc);
        out->var.index = (uint32_t)u;
        const cm_type *c = case_type(t, (uint32_t)u);
        if (c == NULL)
            return KILN_OK;
        out->var.payload = cm_arena_alloc(cx->arena, sizeof(cm_val));
        if (out->var.payload == NULL)
            return oom(cx);
        uint64_t at = align_to(ptr + disc_size(nc), max_case_alignment(t));
        return cm_load(cx, at, c, out->var.payload);
    }
    default:
        return cm_check_supported(t, cx->err);
    }
}

static bool kind_matches(const cm_val *v, const cm_type *t)
{
    return v != NULL && v->kind == t->kind;
}

/* Host integers must fit the type they are lowered as. */
static int check_int(cm_cx *cx, const cm_val *v, const cm_type *t)
{
    static const struct {
        cm_kind k;
        int64_t lo;
        uint64_t hi;
    } r[] = {{CM_S8, -128, 127},         {CM_U8, 0, 255},
             {CM_S16, -32768, 32767},    {CM_U16, 0, 65535},
             {CM_S32, INT32_MIN, INT32_MAX}, {CM_U32, 0, UINT32_MAX}};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        if (r[i].k != t->kind)
            continue;
        bool ok = t->kind == CM_U8 || t->kind == CM_U16 || t->kind == CM_U32
                      ? v->u <= r[i].hi
                      : v->s >= r[i].lo && v->s <= (int64_t)r[i].hi;
        if (!ok)
            return bad(cx, "%s value out of range", cm_kind_name(t->kind));
    }
    return KILN_OK;
}

int cm_store(cm_cx *cx, const cm_val *v, const cm_type *t, uint64_t ptr)
{
    int rc;
    if (!kind_matches(v, t))
        return bad(cx, "a %s value where a %s is expected", v ? cm_kind_name(v->kind) : "missing",
                   cm_kind_name(t->kind));
    switch (t->kind) {
    case CM_BOOL:
        return store_int(cx, ptr, 1, v->b ? 1 : 0);
    case CM_S8: case CM_S16: case CM_S32: case CM_S64:
    case CM_U8: case CM_U16: case CM_U32: case CM_U64:
        rc = check_int(cx, v, t);
        return rc == KILN_OK ? store_int(cx, ptr, cm_size(t), v->u) : rc;
    case CM_F32: {
        float f = canon_f32(v->f32);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        return store_int(cx, ptr, 4, bits);
    }
    case CM_F64: {
        double d = canon_f64(v->f64);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return store_int(cx, ptr, 8, bits);
    }
    case CM_CHAR:
        if (!scalar_ok(v->c))
            return bad(cx, "char 0x%x is not a Unicode scalar value", (unsigned)v->c);
        return store_int(cx, ptr, 4, v->c);
    case CM_STRING: {
        uint32_t p, units;
        rc = check_range(cx, ptr, 8, "store");
        if (rc == KILN_OK)
            rc = store_string(cx, v, &p, &units);
        if (rc == KILN_OK)
            rc = store_int(cx, ptr, 4, p);
        return rc == KILN_OK ? store_int(cx, ptr + 4, 4, units) : rc;
    }
    case CM_LIST: {
        uint32_t esize = cm_size(t->elem), p;
        uint64_t bytes = (uint64_t)v->agg.n * esize;
        if (bytes > UINT32_MAX)
            return trap(cx, "list of %u elements is too large", (unsigned)v->agg.n);
        rc = check_range(cx, ptr, 8, "store");
        if (rc == KILN_OK && v->bytes) {
            if (t->elem->kind != CM_U8)
                return bad(cx, "raw bytes given for a list of %s", cm_kind_name(t->elem->kind));
            rc = store_byte_list(cx, v, &p);
            if (rc == KILN_OK)
                rc = store_int(cx, ptr, 4, p);
            return rc == KILN_OK ? store_int(cx, ptr + 4, 4, v->str.len) : rc;
        }
        if (rc == KILN_OK)
            rc = guest_realloc(cx, 0, 0, cm_alignment(t->elem), (uint32_t)bytes, &p);
        for (uint32_t i = 0; i < v->agg.n && rc == KILN_OK; i++)
            rc = cm_store(cx, &v->agg.v[i], t->elem, p + (uint64_t)i * esize);
        if (rc == KILN_OK)
            rc = store_int(cx, ptr, 4, p);
        return rc == KILN_OK ? store_int(cx, ptr + 4, 4, v->agg.n) : rc;
    }
    case CM_OWN:
    case CM_BORROW: {
        uint64_t h;
        rc = check_range(cx, ptr, 4, "store");
        if (rc == KILN_OK)
            rc = handle_cross(cx, t, false, (uint32_t)v->u, &h);
        return rc == KILN_OK ? store_int(cx, ptr, 4, h) : rc;
    }
    case CM_RECORD:
    case CM_TUPLE: {
        if (v->agg.n != t->n)
            return bad(cx, "%s of %u members where %u are expected", cm_kind_name(t->kind),
                       (unsigned)v->agg.n, (unsigned)t->n);
        uint64_t at = ptr;
        for (uint32_t i = 0; i < t->n; i++) {
            at = align_to(at, cm_alignment(t->f[i].type));
            rc = cm_store(cx, &v->agg.v[i], t->f[i].type, at);
            if (rc != KILN_OK)
                return rc;
            at += cm_size(t->f[i].type);
        }
        return KILN_OK;
    }
    case CM_FLAGS:
        if (t->n < 32 && (v->flags >> t->n) != 0)
            return bad(cx, "flags value has bits past its %u labels", (unsigned)t->n);
        return store_int(cx, ptr, flags_size(t->n), v->flags);
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        uint32_t nc = n_cases(t);
        if (v->var.index >= nc)
            return bad(cx, "%s case %u out of range", cm_kind_name(t->kind),
                       (unsigned)v->var.index);
        rc = store_int(cx, ptr, disc_size(nc), v->var.index);
        const cm_type *c = case_type(t, v->var.index);
        if (rc != KILN_OK || c == NULL)
            return rc;
        return cm_store(cx, v->var.payload, c,
                        align_to(ptr + disc_size(nc), max_case_alignment(t)));
    }
    default:
        return cm_check_supported(t, cx->err);
    }
}

/* ---- flat lift / lower ---------------------------------------------------- */

static int next_flat(cm_cx *cx, const cm_flat *in, uint32_t n, uint32_t *pos, char want,
                     kiln_value *out)
{
    if (*pos >= n || in[*pos].t != want)
        return bad(cx, "core values do not match the flattened type (value %u)", (unsigned)*pos);
    *out = in[(*pos)++].v;
    return KILN_OK;
}

/* Reinterpret a joined variant slot as the case's own flat type
 * (the spec's CoerceValueIter). */
static kiln_value coerce_in(char have, char want, kiln_value x)
{
    kiln_value r = {0};
    if (have == want)
        return x;
    if (have == 'i' && want == 'f') {
        memcpy(&r.f32, &x.i32, 4);
    } else if (have == 'j' && want == 'i') {
        r.i32 = (uint32_t)x.i64;
    } else if (have == 'j' && want == 'f') {
        uint32_t b = (uint32_t)x.i64;
        memcpy(&r.f32, &b, 4);
    } else if (have == 'j' && want == 'd') {
        memcpy(&r.f64, &x.i64, 8);
    }
    return r;
}

static kiln_value coerce_out(char have, char want, kiln_value x)
{
    kiln_value r = {0};
    if (have == want)
        return x;
    if (have == 'f' && want == 'i') {
        memcpy(&r.i32, &x.f32, 4);
    } else if (have == 'i' && want == 'j') {
        r.i64 = x.i32;
    } else if (have == 'f' && want == 'j') {
        uint32_t b;
        memcpy(&b, &x.f32, 4);
        r.i64 = b;
    } else if (have == 'd' && want == 'j') {
        memcpy(&r.i64, &x.f64, 8);
    }
    return r;
}

int cm_lift_flat(cm_cx *cx, const cm_flat *in, uint32_t n, uint32_t *pos, const cm_type *t,
                 cm_val *out)
{
    kiln_value x = {0};
    int rc;
    memset(out, 0, sizeof(*out));
    out->kind = t->kind;
    switch (t->kind) {
    case CM_BOOL:
        rc = next_flat(cx, in, n, pos, 'i', &x);
        out->b = x.i32 != 0;
        return rc;
    case CM_U8: case CM_U16: case CM_U32:
        rc = next_flat(cx, in, n, pos, 'i', &x);
        out->u = t->kind == CM_U8 ? (uint8_t)x.i32 : t->kind == CM_U16 ? (uint16_t)x.i32 : x.i32;
        return rc;
    case CM_S8: case CM_S16: case CM_S32:
        rc = next_flat(cx, in, n, pos, 'i', &x);
        out->s = t->kind == CM_S8    ? (int8_t)(uint8_t)x.i32
                 : t->kind == CM_S16 ? (int16_t)(uint16_t)x.i32
                                     : (int32_t)x.i32;
        return rc;
    case CM_U64:
        rc = next_flat(cx, in, n, pos, 'j', &x);
        out->u = x.i64;
        return rc;
    case CM_S64:
        rc = next_flat(cx, in, n, pos, 'j', &x);
        out->s = (int64_t)x.i64;
        return rc;
    case CM_F32:
        rc = next_flat(cx, in, n, pos, 'f', &x);
        out->f32 = canon_f32(x.f32);
        return rc;
    case CM_F64:
        rc = next_flat(cx, in, n, pos, 'd', &x);
        out->f64 = canon_f64(x.f64);
        return rc;
    case CM_CHAR:
        rc = next_flat(cx, in, n, pos, 'i', &x);
        if (rc == KILN_OK && !scalar_ok(x.i32))
            return trap(cx, "char 0x%x is not a Unicode scalar value", (unsigned)x.i32);
        out->c = x.i32;
        return rc;
    case CM_STRING:
    case CM_LIST: {
        kiln_value len = {0};
        rc = next_flat(cx, in, n, pos, 'i', &x);
        if (rc == KILN_OK)
            rc = next_flat(cx, in, n, pos, 'i', &len);
        if (rc != KILN_OK)
            return rc;
        return t->kind == CM_STRING ? load_string_range(cx, x.i32, len.i32, out)
                                    : load_list_range(cx, x.i32, len.i32, t->elem, out);
    }
    case CM_OWN:
    case CM_BORROW:
        rc = next_flat(cx, in, n, pos, 'i', &x);
        return rc == KILN_OK ? handle_cross(cx, t, true, x.i32, &out->u) : rc;
    case CM_RECORD:
    case CM_TUPLE:
        out->agg.n = t->n;
        out->agg.v = cm_arena_alloc(cx->arena, (size_t)t->n * sizeof(cm_val));
        if (out->agg.v == NULL)
            return oom(cx);
        for (uint32_t i = 0; i < t->n; i++) {
            rc = cm_lift_flat(cx, in, n, pos, t->f[i].type, &out->agg.v[i]);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    case CM_FLAGS:
        rc = next_flat(cx, in, n, pos, 'i', &x);
        out->flags = x.i32 & (t->n >= 32 ? 0xFFFFFFFFu : ((1u << t->n) - 1));
        return rc;
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        char flat[CM_MAX_FLAT + 1];
        uint32_t nflat = cm_flatten(t, flat, CM_MAX_FLAT);
        if (nflat > CM_MAX_FLAT)
            return bad(cx, "variant too large to pass flat");
        rc = next_flat(cx, in, n, pos, 'i', &x);
        if (rc != KILN_OK)
            return rc;
        uint32_t nc = n_cases(t);
        if (x.i32 >= nc)
            return trap(cx, "%s discriminant %u out of range (%u cases)", cm_kind_name(t->kind),
                        (unsigned)x.i32, (unsigned)nc);
        out->var.index = x.i32;
        uint32_t joined = nflat - 1;
        if (*pos + joined > n)
            return bad(cx, "too few core values for a %s", cm_kind_name(t->kind));
        const cm_type *c = case_type(t, x.i32);
        if (c != NULL) {
            char cflat[CM_MAX_FLAT + 1];
            uint32_t k = cm_flatten(c, cflat, CM_MAX_FLAT);
            cm_flat tmp[CM_MAX_FLAT];
            for (uint32_t j = 0; j < k; j++) {
                if (in[*pos + j].t != flat[1 + j])
                    return bad(cx, "core values do not match the flattened variant");
                tmp[j].t = cflat[j];
                tmp[j].v = coerce_in(flat[1 + j], cflat[j], in[*pos + j].v);
            }
            out->var.payload = cm_arena_alloc(cx->arena, sizeof(cm_val));
            if (out->var.payload == NULL)
                return oom(cx);
            uint32_t p = 0;
            rc = cm_lift_flat(cx, tmp, k, &p, c, out->var.payload);
            if (rc != KILN_OK)
                return rc;
        }
        *pos += joined;
        return KILN_OK;
    }
    default:
        return cm_check_supported(t, cx->err);
    }
}

static int put_flat(cm_cx *cx, cm_flat *out, uint32_t max, uint32_t *pos, char t, kiln_value v)
{
    if (*pos >= max)
        return bad(cx, "too many flat values");
    out[*pos].t = t;
    out[*pos].v = v;
    (*pos)++;
    return KILN_OK;
}

int cm_lower_flat(cm_cx *cx, const cm_val *v, const cm_type *t, cm_flat *out, uint32_t max,
                  uint32_t *pos)
{
    kiln_value x = {0};
    int rc;
    if (!kind_matches(v, t))
        return bad(cx, "a %s value where a %s is expected", v ? cm_kind_name(v->kind) : "missing",
                   cm_kind_name(t->kind));
    switch (t->kind) {
    case CM_BOOL:
        x.i32 = v->b ? 1 : 0;
        return put_flat(cx, out, max, pos, 'i', x);
    case CM_S8: case CM_S16: case CM_S32: case CM_U8: case CM_U16: case CM_U32:
        rc = check_int(cx, v, t);
        x.i32 = (uint32_t)v->u;
        return rc == KILN_OK ? put_flat(cx, out, max, pos, 'i', x) : rc;
    case CM_S64: case CM_U64:
        x.i64 = v->u;
        return put_flat(cx, out, max, pos, 'j', x);
    case CM_F32:
        x.f32 = canon_f32(v->f32);
        return put_flat(cx, out, max, pos, 'f', x);
    case CM_F64:
        x.f64 = canon_f64(v->f64);
        return put_flat(cx, out, max, pos, 'd', x);
    case CM_CHAR:
        if (!scalar_ok(v->c))
            return bad(cx, "char 0x%x is not a Unicode scalar value", (unsigned)v->c);
        x.i32 = v->c;
        return put_flat(cx, out, max, pos, 'i', x);
    case CM_STRING: {
        uint32_t p, units;
        rc = store_string(cx, v, &p, &units);
        kiln_value len = {.i32 = units};
        x.i32 = p;
        if (rc == KILN_OK)
            rc = put_flat(cx, out, max, pos, 'i', x);
        return rc == KILN_OK ? put_flat(cx, out, max, pos, 'i', len) : rc;
    }
    case CM_LIST: {
        uint32_t esize = cm_size(t->elem), p;
        uint64_t bytes = (uint64_t)v->agg.n * esize;
        if (bytes > UINT32_MAX)
            return trap(cx, "list of %u elements is too large", (unsigned)v->agg.n);
        if (v->bytes) {
            if (t->elem->kind != CM_U8)
                return bad(cx, "raw bytes given for a list of %s", cm_kind_name(t->elem->kind));
            rc = store_byte_list(cx, v, &p);
            x.i32 = p;
            kiln_value blen = {.i32 = v->str.len};
            if (rc == KILN_OK)
                rc = put_flat(cx, out, max, pos, 'i', x);
            return rc == KILN_OK ? put_flat(cx, out, max, pos, 'i', blen) : rc;
        }
        rc = guest_realloc(cx, 0, 0, cm_alignment(t->elem), (uint32_t)bytes, &p);
        for (uint32_t i = 0; i < v->agg.n && rc == KILN_OK; i++)
            rc = cm_store(cx, &v->agg.v[i], t->elem, p + (uint64_t)i * esize);
        kiln_value len = {.i32 = v->agg.n};
        x.i32 = p;
        if (rc == KILN_OK)
            rc = put_flat(cx, out, max, pos, 'i', x);
        return rc == KILN_OK ? put_flat(cx, out, max, pos, 'i', len) : rc;
    }
    case CM_OWN:
    case CM_BORROW: {
        uint64_t h;
        rc = handle_cross(cx, t, false, (uint32_t)v->u, &h);
        x.i32 = (uint32_t)h;
        return rc == KILN_OK ? put_flat(cx, out, max, pos, 'i', x) : rc;
    }
    case CM_RECORD:
    case CM_TUPLE:
        if (v->agg.n != t->n)
            return bad(cx, "%s of %u members where %u are expected", cm_kind_name(t->kind),
                       (unsigned)v->agg.n, (unsigned)t->n);
        for (uint32_t i = 0; i < t->n; i++) {
            rc = cm_lower_flat(cx, &v->agg.v[i], t->f[i].type, out, max, pos);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    case CM_FLAGS:
        if (t->n < 32 && (v->flags >> t->n) != 0)
            return bad(cx, "flags value has bits past its %u labels", (unsigned)t->n);
        x.i32 = v->flags;
        return put_flat(cx, out, max, pos, 'i', x);
    case CM_VARIANT: case CM_ENUM: case CM_OPTION: case CM_RESULT: {
        char flat[CM_MAX_FLAT + 1];
        uint32_t nflat = cm_flatten(t, flat, CM_MAX_FLAT);
        uint32_t nc = n_cases(t);
        if (nflat > CM_MAX_FLAT)
            return bad(cx, "variant too large to pass flat");
        if (v->var.index >= nc)
            return bad(cx, "%s case %u out of range", cm_kind_name(t->kind),
                       (unsigned)v->var.index);
        x.i32 = v->var.index;
        rc = put_flat(cx, out, max, pos, 'i', x);
        if (rc != KILN_OK)
            return rc;
        cm_flat tmp[CM_MAX_FLAT];
        uint32_t k = 0;
        const cm_type *c = case_type(t, v->var.index);
        if (c != NULL) {
            rc = cm_lower_flat(cx, v->var.payload, c, tmp, CM_MAX_FLAT, &k);
            if (rc != KILN_OK)
                return rc;
        }
        for (uint32_t j = 0; j + 1 < nflat; j++) {
            kiln_value y = {0};
            if (j < k)
                y = coerce_out(tmp[j].t, flat[1 + j], tmp[j].v);
            rc = put_flat(cx, out, max, pos, flat[1 + j], y);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    }
    default:
        return cm_check_supported(t, cx->err);
    }
}

/* ---- function parameters and results -------------------------------------- */

static uint32_t params_flat_count(const cm_type *ft)
{
    char tmp[CM_MAX_FLAT + 1];
    uint32_t n = 0;
    for (uint32_t i = 0; i < ft->n && n <= CM_MAX_FLAT_PARAMS; i++)
        n += cm_flatten(ft->f[i].type, tmp, CM_MAX_FLAT);
    return n;
}

bool cm_results_spill(const cm_type *ft)
{
    char tmp[CM_MAX_FLAT + 1];
    return ft->elem != NULL && cm_flatten(ft->elem, tmp, CM_MAX_FLAT) > CM_MAX_FLAT_RESULTS;
}

int cm_lower_params(cm_cx *cx, const cm_type *ft, const cm_val *args, cm_flat *out,
                    uint32_t *n_out)
{
    *n_out = 0;
    if (params_flat_count(ft) <= CM_MAX_FLAT_PARAMS) {
        for (uint32_t i = 0; i < ft->n; i++) {
            int rc = cm_lower_flat(cx, &args[i], ft->f[i].type, out, CM_MAX_FLAT_PARAMS, n_out);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    }
    /* Spill: the parameters as one tuple in memory the guest's realloc gives. */
    cm_type tuple = {.kind = CM_TUPLE, .n = ft->n, .f = ft->f};
    cm_val tv = {.kind = CM_TUPLE, .agg = {(cm_val *)args, ft->n}};
    uint32_t p;
    int rc = guest_realloc(cx, 0, 0, cm_alignment(&tuple), cm_size(&tuple), &p);
    if (rc == KILN_OK)
        rc = cm_store(cx, &tv, &tuple, p);
    if (rc == KILN_OK) {
        out[0].t = 'i';
        out[0].v.i32 = p;
        *n_out = 1;
    }
    return rc;
}

int cm_lift_results(cm_cx *cx, const cm_type *ft, const cm_flat *res, uint32_t n_res,
                    cm_val *out)
{
    if (ft->elem == NULL) {
        if (n_res != 0)
            return bad(cx, "core function returned %u values for no result", (unsigned)n_res);
        return KILN_OK;
    }
    uint32_t pos = 0;
    if (!cm_results_spill(ft)) {
        int rc = cm_lift_flat(cx, res, n_res, &pos, ft->elem, out);
        if (rc == KILN_OK && pos != n_res)
            return bad(cx, "core function returned %u values, %u expected", (unsigned)n_res,
                       (unsigned)pos);
        return rc;
    }
    if (n_res != 1 || res[0].t != 'i')
        return bad(cx, "core function must return one i32 (the result's address)");
    uint32_t p = res[0].v.i32;
    int rc = check_align(cx, p, cm_alignment(ft->elem), "result");
    if (rc == KILN_OK)
        rc = check_range(cx, p, cm_size(ft->elem), "result");
    return rc == KILN_OK ? cm_load(cx, p, ft->elem, out) : rc;
}

/* ---- the lowered import's side (canon lower) ------------------------------- */

int cm_lift_params(cm_cx *cx, const cm_type *ft, const cm_flat *in, uint32_t n, cm_val *out)
{
    uint32_t pos = 0;
    if (params_flat_count(ft) <= CM_MAX_FLAT_PARAMS) {
        for (uint32_t i = 0; i < ft->n; i++) {
            int rc = cm_lift_flat(cx, in, n, &pos, ft->f[i].type, &out[i]);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    }
    /* Spilled: one i32, the address of the parameters as a tuple. */
    if (n < 1 || in[0].t != 'i')
        return bad(cx, "spilled parameters must be passed as one i32 address");
    cm_type tuple = {.kind = CM_TUPLE, .n = ft->n, .f = ft->f};
    uint32_t p = in[0].v.i32;
    int rc = check_align(cx, p, cm_alignment(&tuple), "parameters");
    if (rc == KILN_OK)
        rc = check_range(cx, p, cm_size(&tuple), "parameters");
    cm_val tv;
    if (rc == KILN_OK)
        rc = cm_load(cx, p, &tuple, &tv);
    for (uint32_t i = 0; rc == KILN_OK && i < ft->n; i++)
        out[i] = tv.agg.v[i];
    return rc;
}

uint32_t cm_params_flat_count(const cm_type *ft)
{
    uint32_t n = params_flat_count(ft);
    return n > CM_MAX_FLAT_PARAMS ? 1 : n;
}

int cm_lower_results(cm_cx *cx, const cm_type *ft, const cm_val *v, uint32_t retptr,
                     cm_flat *out, uint32_t *n_out)
{
    *n_out = 0;
    if (ft->elem == NULL)
        return KILN_OK;
    if (!cm_results_spill(ft))
        return cm_lower_flat(cx, v, ft->elem, out, CM_MAX_FLAT_RESULTS, n_out);
    int rc = check_align(cx, retptr, cm_alignment(ft->elem), "result");
    if (rc == KILN_OK)
        rc = check_range(cx, retptr, cm_size(ft->elem), "result");
    return rc == KILN_OK ? cm_store(cx, v, ft->elem, retptr) : rc;
}
