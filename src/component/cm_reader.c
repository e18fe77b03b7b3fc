/*
 * cm_reader.c - decode the Component Model's layer-1 binary encoding
 * (Binary.md) into a cm_component (see cm.h for the contract).
 *
 * The reader follows the definitions in order and builds every index space
 * as it goes, so an index is always checked against the entries defined
 * before it, which is also what makes the type graph acyclic. Every read is
 * bounded by `end`, the end of the section (or nested declarator) being
 * decoded; counts are checked against the bytes left before anything is
 * allocated for them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "component/cm.h"
#include "component/cm_int.h"

typedef struct rd {
    const uint8_t *buf;
    size_t len, pos, end;
    kiln_err *err;
    cm_arena *a;
    uint32_t next_resource;
    /* Provenance of the next INSTANCE or COMPONENT pushed (push() takes
     * and clears it). */
    const cm_inst_def *next_idef;
    const cm_component *next_cdef;
} rd;

/* An index-space scope: a component or a component/instance type declarator.
 * Declarators get a scratch cm_component for their own index spaces. */
typedef struct scope {
    cm_component *c;
    const struct scope *outer;
    uint32_t depth;
    bool decl; /* a component or instance type declarator, not a component */
} scope;

static int fail(rd *r, int code, size_t at, const char *fmt, ...) KILN_PRINTF(4, 5);

static int fail(rd *r, int code, size_t at, const char *fmt, ...)
{
    char cause[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    const char *advice = code == KILN_EUNSUPPORTED ? "Kiln does not implement this part of the "
                                                     "component model yet"
                         : code == KILN_ELIMIT     ? "Kiln refuses components this large"
                         : code == KILN_ENOMEM     ? "free memory or retry later"
                                                   : "the component is truncated or corrupt; "
                                                     "check it with wasm-tools validate";
    return kiln_err_set(r->err, code, "component reader: %s at offset %zu; %s", cause, at,
                        advice);
}

static int oom(rd *r)
{
    return fail(r, KILN_ENOMEM, r->pos, "out of memory while decoding the component");
}

static void *alloc(rd *r, size_t n)
{
    return cm_arena_alloc(r->a, n);
}

/* ---- primitive reads ------------------------------------------------------ */

static int rd_byte(rd *r, uint8_t *out, const char *what)
{
    *out = 0;
    if (r->pos >= r->end)
        return fail(r, KILN_EMODULE, r->pos, "unexpected end while reading %s", what);
    *out = r->buf[r->pos++];
    return KILN_OK;
}

static int rd_u32(rd *r, uint32_t *out, const char *what)
{
    size_t at = r->pos;
    uint32_t v = 0;
    *out = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint8_t b;
        int rc = rd_byte(r, &b, what);
        if (rc != KILN_OK)
            return rc;
        if (shift == 28 && (b & 0xF0) != 0)
            return fail(r, KILN_EMODULE, at, "%s: integer too large or LEB128 too long", what);
        v |= (uint32_t)(b & 0x7F) << shift;
        if ((b & 0x80) == 0)
            break;
    }
    *out = v;
    return KILN_OK;
}

/* Signed 33-bit LEB128, the encoding of a valtype (negative = primitive). */
static int rd_s33(rd *r, int64_t *out, const char *what)
{
    size_t at = r->pos;
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        int rc = rd_byte(r, &b, what);
        if (rc != KILN_OK)
            return rc;
        if (shift == 28) {
            /* Fifth byte: 5 payload bits, the rest must extend the sign. */
            if ((b & 0x80) != 0 || ((b & 0x70) != 0 && (b & 0x70) != 0x70))
                return fail(r, KILN_EMODULE, at, "%s: malformed signed LEB128", what);
        }
        v |= (int64_t)(b & 0x7F) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    if (v < -((int64_t)1 << 32) || v >= ((int64_t)1 << 32))
        return fail(r, KILN_EMODULE, at, "%s: value out of range", what);
    *out = v;
    return KILN_OK;
}


/* A name: length, UTF-8 bytes, no NUL (names become C strings). */
static int rd_name(rd *r, const char **out, const char *what)
{
    size_t at = r->pos;
    uint32_t n;
    int rc = rd_u32(r, &n, what);
    if (rc != KILN_OK)
        return rc;
    if (n > CM_MAX_NAME)
        return fail(r, KILN_ELIMIT, at, "%s is %u bytes (limit %d)", what, (unsigned)n,
                    CM_MAX_NAME);
    if (n > r->end - r->pos)
        return fail(r, KILN_EMODULE, at, "%s needs %u bytes but only %zu remain", what,
                    (unsigned)n, r->end - r->pos);
    const uint8_t *p = r->buf + r->pos;
    if (!utf8_valid(p, n))
        return fail(r, KILN_EMODULE, r->pos, "%s is not valid UTF-8", what);
    if (memchr(p, 0, n) != NULL)
        return fail(r, KILN_EUNSUPPORTED, r->pos, "%s holds a NUL byte", what);
    char *s = cm_arena_strndup(r->a, (const char *)p, n);
    if (s == NULL)
        return oom(r);
    r->pos += n;
    *out = s;
    return KILN_OK;
}

/* A vector length: at most CM_MAX_VEC and at most one item per remaining byte. */
static int rd_count(rd *r, uint32_t *n, const char *what)
{
    size_t at = r->pos;
    int rc = rd_u32(r, n, what);
    if (rc != KILN_OK)
        return rc;
    if (*n > CM_MAX_VEC)
        return fail(r, KILN_ELIMIT, at, "%u %s (limit %d)", (unsigned)*n, what, CM_MAX_VEC);
    if (*n > r->end - r->pos)
        return fail(r, KILN_EMODULE, at, "%u %s cannot fit in the %zu bytes left", (unsigned)*n,
                    what, r->end - r->pos);
    return KILN_OK;
}

/* importname' / exportname': 0x00 name, or 0x01 name + version suffix. */
static int rd_extern_name(rd *r, const char **out)
{
    size_t at = r->pos;
    uint8_t tag;
    int rc = rd_byte(r, &tag, "import/export name");
    if (rc != KILN_OK)
        return rc;
    if (tag > 0x01)
        return fail(r, KILN_EMODULE, at, "unknown import/export name form 0x%02x", tag);
    rc = rd_name(r, out, "import/export name");
    if (rc == KILN_OK && tag == 0x01) {
        const char *suffix;
        rc = rd_name(r, &suffix, "version suffix");
    }
    return rc;
}

/* ---- index spaces --------------------------------------------------------- */

static const char *const sort_names[CM_SORT_COUNT] = {
    "core func", "core table", "core memory", "core global", "core type", "core module",
    "core instance", "func", "value", "type", "component", "instance",
};

const char *cm_sort_name(cm_sort s)
{
    return (unsigned)s < CM_SORT_COUNT ? sort_names[s] : "?";
}

static int push(rd *r, cm_component *c, cm_sort s, void *p)
{
    if (c->n_space[s] >= CM_MAX_SPACE)
        return fail(r, KILN_ELIMIT, r->pos, "more than %d %s definitions", CM_MAX_SPACE,
                    sort_names[s]);
    if (cm_arena_push(r->a, &c->space[s], &c->n_space[s], &c->cap_space[s], p) != KILN_OK)
        return oom(r);
    if (s == CM_SORT_INSTANCE) {
        const cm_inst_def *d = r->next_idef;
        r->next_idef = NULL;
        if (cm_arena_push(r->a, (void ***)&c->idefs, &c->n_idefs, &c->cap_idefs, (void *)d) !=
            KILN_OK)
            return oom(r);
    } else if (s == CM_SORT_COMPONENT) {
        const cm_component *d = r->next_cdef;
        r->next_cdef = NULL;
        if (cm_arena_push(r->a, (void ***)&c->cdefs, &c->n_cdefs, &c->cap_cdefs, (void *)d) !=
            KILN_OK)
            return oom(r);
    }
    return KILN_OK;
}

static int set_idef(rd *r, cm_inst_how how, const char *name, uint32_t instance,
                    cm_inst_def **out)
{
    cm_inst_def *d = alloc(r, sizeof(*d));
    if (d == NULL)
        return oom(r);
    d->how = how;
    d->name = name;
    d->instance = instance;
    r->next_idef = d;
    if (out != NULL)
        *out = d;
    return KILN_OK;
}

static int check_index(rd *r, const cm_component *c, cm_sort s, uint32_t i, size_t at)
{
    if (i >= c->n_space[s])
        return fail(r, KILN_EMODULE, at, "%s index %u out of range (%u defined)", sort_names[s],
                    (unsigned)i, (unsigned)c->n_space[s]);
    return KILN_OK;
}

static int rd_index(rd *r, const cm_component *c, cm_sort s, uint32_t *i)
{
    size_t at = r->pos;
    int rc = rd_u32(r, i, sort_names[s]);
    return rc != KILN_OK ? rc : check_index(r, c, s, *i, at);
}

/* sort ::= 0x00 core:sort | 0x01 func | 0x02 value | 0x03 type | 0x04 component | 0x05 instance */
static int rd_core_sort(rd *r, cm_sort *s)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "core sort");
    if (rc != KILN_OK)
        return rc;
    switch (b) {
    case 0x00: *s = CM_SORT_CORE_FUNC; return KILN_OK;
    case 0x01: *s = CM_SORT_CORE_TABLE; return KILN_OK;
    case 0x02: *s = CM_SORT_CORE_MEMORY; return KILN_OK;
    case 0x03: *s = CM_SORT_CORE_GLOBAL; return KILN_OK;
    case 0x10: *s = CM_SORT_CORE_TYPE; return KILN_OK;
    case 0x11: *s = CM_SORT_CORE_MODULE; return KILN_OK;
    case 0x12: *s = CM_SORT_CORE_INSTANCE; return KILN_OK;
    }
    return fail(r, KILN_EMODULE, at, "unknown core sort 0x%02x", b);
}

static int rd_sort(rd *r, cm_sort *s)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "sort");
    if (rc != KILN_OK)
        return rc;
    switch (b) {
    case 0x00: return rd_core_sort(r, s);
    case 0x01: *s = CM_SORT_FUNC; return KILN_OK;
    case 0x02: *s = CM_SORT_VALUE; return KILN_OK;
    case 0x03: *s = CM_SORT_TYPE; return KILN_OK;
    case 0x04: *s = CM_SORT_COMPONENT; return KILN_OK;
    case 0x05: *s = CM_SORT_INSTANCE; return KILN_OK;
    }
    return fail(r, KILN_EMODULE, at, "unknown sort 0x%02x", b);
}

/* ---- types ---------------------------------------------------------------- */

#define PRIM(k) {.kind = (k), .depth = 1, .nodes = 1}
static const cm_type prims[] = {
    PRIM(CM_BOOL), PRIM(CM_S8),  PRIM(CM_U8),  PRIM(CM_S16), PRIM(CM_U16),
    PRIM(CM_S32),  PRIM(CM_U32), PRIM(CM_S64), PRIM(CM_U64), PRIM(CM_F32),
    PRIM(CM_F64),  PRIM(CM_CHAR), PRIM(CM_STRING),
};
static const cm_type core_module_type = {.kind = CM_CORE_MODULE, .depth = 1, .nodes = 1};
static const cm_type error_context_type = PRIM(CM_ERROR_CONTEXT);

const cm_type *cm_prim(cm_kind k)
{
    return k >= CM_BOOL && k <= CM_STRING ? &prims[k - CM_BOOL] : NULL;
}

const char *cm_kind_name(cm_kind k)
{
    static const char *const names[] = {
        [CM_BOOL] = "bool", [CM_S8] = "s8", [CM_U8] = "u8", [CM_S16] = "s16",
        [CM_U16] = "u16", [CM_S32] = "s32", [CM_U32] = "u32", [CM_S64] = "s64",
        [CM_U64] = "u64", [CM_F32] = "f32", [CM_F64] = "f64", [CM_CHAR] = "char",
        [CM_STRING] = "string", [CM_RECORD] = "record", [CM_VARIANT] = "variant",
        [CM_LIST] = "list", [CM_TUPLE] = "tuple", [CM_FLAGS] = "flags", [CM_ENUM] = "enum",
        [CM_OPTION] = "option", [CM_RESULT] = "result", [CM_OWN] = "own",
        [CM_BORROW] = "borrow", [CM_FUTURE] = "future", [CM_STREAM] = "stream",
        [CM_ERROR_CONTEXT] = "error-context", [CM_FIXED_LIST] = "list",
        [CM_FUNC] = "func", [CM_COMPONENT] = "component", [CM_INSTANCE] = "instance",
        [CM_RESOURCE] = "resource", [CM_CORE_MODULE] = "core module",
        [CM_CORE_FUNC] = "core func",
    };
    return (unsigned)k < sizeof(names) / sizeof(names[0]) && names[k] ? names[k] : "?";
}

static bool is_valtype(const cm_type *t)
{
    return t->kind >= CM_BOOL && t->kind <= CM_FIXED_LIST;
}

static cm_type *new_type(rd *r, cm_kind k)
{
    cm_type *t = alloc(r, sizeof(*t));
    if (t != NULL) {
        t->kind = k;
        t->depth = 1;
        t->nodes = 1;
    }
    return t;
}

/* Account for a child in t's depth and node count; fails past the limits. */
static int adopt(rd *r, cm_type *t, const cm_type *child, size_t at)
{
    if (child == NULL)
        return KILN_OK;
    if (child->depth + 1 > t->depth)
        t->depth = child->depth + 1;
    uint64_t nodes = (uint64_t)t->nodes + child->nodes;
    t->nodes = nodes > CM_MAX_TYPE_NODES ? CM_MAX_TYPE_NODES + 1 : (uint32_t)nodes;
    if (t->depth > CM_MAX_TYPE_DEPTH)
        return fail(r, KILN_ELIMIT, at, "type nested deeper than %d", CM_MAX_TYPE_DEPTH);
    if (t->nodes > CM_MAX_TYPE_NODES)
        return fail(r, KILN_ELIMIT, at, "type with more than %d nodes", CM_MAX_TYPE_NODES);
    return KILN_OK;
}

static int type_at(rd *r, const scope *sc, uint32_t i, size_t at, const cm_type **out)
{
    int rc = check_index(r, sc->c, CM_SORT_TYPE, i, at);
    if (rc == KILN_OK)
        *out = sc->c->space[CM_SORT_TYPE][i];
    return rc;
}

static int rd_valtype(rd *r, const scope *sc, const cm_type **out)
{
    size_t at = r->pos;
    int64_t v = 0;
    int rc = rd_s33(r, &v, "value type");
    if (rc != KILN_OK)
        return rc;
    if (v < 0) {
        if (v < -13)
            return fail(r, KILN_EMODULE, at, "unknown primitive value type 0x%02x",
                        (unsigned)(v & 0x7F));
        *out = &prims[-v - 1]; /* 0x7f bool = -1 ... 0x73 string = -13 */
        return KILN_OK;
    }
    const cm_type *t;
    rc = type_at(r, sc, (uint32_t)v, at, &t);
    if (rc != KILN_OK)
        return rc;
    if (!is_valtype(t))
        return fail(r, KILN_EMODULE, at, "type %u is a %s, not a value type", (unsigned)v,
                    cm_kind_name(t->kind));
    *out = t;
    return KILN_OK;
}

static int rd_opt_valtype(rd *r, const scope *sc, const cm_type **out)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "optional type");
    if (rc != KILN_OK)
        return rc;
    *out = NULL;
    if (b == 0x00)
        return KILN_OK;
    if (b != 0x01)
        return fail(r, KILN_EMODULE, at, "malformed optional type (0x%02x)", b);
    return rd_valtype(r, sc, out);
}

/* Labelled members: record fields (with types), flags/enum labels (without). */
static int rd_labels(rd *r, const scope *sc, cm_type *t, bool typed, const char *what)
{
    size_t at = r->pos;
    int rc = rd_count(r, &t->n, what);
    if (rc != KILN_OK)
        return rc;
    if (t->n == 0 && t->kind != CM_FUNC)
        return fail(r, KILN_EMODULE, at, "a %s needs at least one member", cm_kind_name(t->kind));
    if (t->kind == CM_FLAGS && t->n > CM_FLAGS)
        return fail(r, KILN_ELIMIT, at, "flags with %u labels (limit %d)", (unsigned)t->n,
                    CM_MAX_FLAGS);
    t->f = alloc(r, (size_t)t->n * sizeof(cm_field) + 1);
    if (t->f == NULL)
        return oom(r);
    for (uint32_t i = 0; i < t->n; i++) {
        rc = rd_name(r, &t->f[i].name, what);
        if (rc == KILN_OK && typed) {
            size_t tat = r->pos;
            rc = rd_valtype(r, sc, &t->f[i].type);
            if (rc == KILN_OK)
                rc = adopt(r, t, t->f[i].type, tat);
        }
        if (rc != KILN_OK)
            return rc;
    }
    return KILN_OK;
}

static int rd_defvaltype(rd *r, const scope *sc, uint8_t op, size_t at, const cm_type **out)
{
    cm_type *t;
    int rc = KILN_OK;
    if (op >= 0x73 && op <= 0x7f) {
        /* A copy, so that naming it never touches the shared primitive. */
        t = new_type(r, (cm_kind)(CM_BOOL + (0x7f - op)));
        if (t == NULL)
            return oom(r);
        *out = t;
        return KILN_OK;
    }
    static const struct {
        uint8_t op;
        cm_kind kind;
    } ops[] = {{0x72, CM_RECORD}, {0x71, CM_VARIANT}, {0x70, CM_LIST},   {0x6f, CM_TUPLE},
               {0x6e, CM_FLAGS},  {0x6d, CM_ENUM},    {0x6b, CM_OPTION}, {0x6a, CM_RESULT},
               {0x69, CM_OWN},    {0x68, CM_BORROW},  {0x67, CM_FIXED_LIST},
               {0x66, CM_STREAM}, {0x65, CM_FUTURE},  {0x64, CM_ERROR_CONTEXT}};
    cm_kind kind = 0;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (ops[i].op == op)
            kind = ops[i].kind;
    if (kind == 0)
        return fail(r, KILN_EMODULE, at, "unknown type opcode 0x%02x", op);
    if (kind == CM_ERROR_CONTEXT) {
        *out = &error_context_type;
        return KILN_OK;
    }
    t = new_type(r, kind);
    if (t == NULL)
        return oom(r);
    switch (kind) {
    case CM_RECORD:
        rc = rd_labels(r, sc, t, true, "record fields");
        break;
    case CM_FLAGS:
        rc = rd_labels(r, sc, t, false, "flags labels");
        break;
    case CM_ENUM:
        rc = rd_labels(r, sc, t, false, "enum labels");
        break;
    case CM_VARIANT:
    case CM_TUPLE: {
        size_t cat = r->pos;
        rc = rd_count(r, &t->n, kind == CM_VARIANT ? "variant cases" : "tuple elements");
        if (rc != KILN_OK)
            return rc;
        if (t->n == 0)
            return fail(r, KILN_EMODULE, cat, "a %s needs at least one member",
                        cm_kind_name(kind));
        t->f = alloc(r, (size_t)t->n * sizeof(cm_field));
        if (t->f == NULL)
            return oom(r);
        for (uint32_t i = 0; i < t->n && rc == KILN_OK; i++) {
            size_t tat = r->pos;
            if (kind == CM_TUPLE) {
                rc = rd_valtype(r, sc, &t->f[i].type);
            } else {
                rc = rd_name(r, &t->f[i].name, "case label");
                if (rc == KILN_OK)
                    rc = rd_opt_valtype(r, sc, &t->f[i].type);
                uint8_t z;
                size_t zat = r->pos;
                if (rc == KILN_OK)
                    rc = rd_byte(r, &z, "case terminator");
                if (rc == KILN_OK && z != 0x00)
                    return fail(r, KILN_EUNSUPPORTED, zat, "variant case refinement");
            }
            if (rc == KILN_OK)
                rc = adopt(r, t, t->f[i].type, tat);
        }
        break;
    }
    case CM_LIST:
    case CM_OPTION:
    case CM_FIXED_LIST: {
        size_t tat = r->pos;
        rc = rd_valtype(r, sc, &t->elem);
        if (rc == KILN_OK)
            rc = adopt(r, t, t->elem, tat);
        if (rc == KILN_OK && kind == CM_FIXED_LIST) {
            rc = rd_u32(r, &t->len, "fixed list length");
            if (rc == KILN_OK && t->len == 0)
                return fail(r, KILN_EMODULE, tat, "fixed-size list of length 0");
        }
        break;
    }
    case CM_RESULT:
    case CM_STREAM:
    case CM_FUTURE: {
        size_t tat = r->pos;
        rc = rd_opt_valtype(r, sc, &t->elem);
        if (rc == KILN_OK)
            rc = adopt(r, t, t->elem, tat);
        if (rc == KILN_OK && kind == CM_RESULT) {
            tat = r->pos;
            rc = rd_opt_valtype(r, sc, &t->err);
            if (rc == KILN_OK)
                rc = adopt(r, t, t->err, tat);
        }
        break;
    }
    case CM_OWN:
    case CM_BORROW: {
        size_t tat = r->pos;
        uint32_t i;
        rc = rd_u32(r, &i, "resource type index");
        if (rc == KILN_OK)
            rc = type_at(r, sc, i, tat, &t->elem);
        if (rc == KILN_OK && t->elem->kind != CM_RESOURCE)
            return fail(r, KILN_EMODULE, tat, "%s of type %u, which is not a resource",
                        cm_kind_name(kind), (unsigned)i);
        break;
    }
    default:
        break;
    }
    if (rc == KILN_OK)
        *out = t;
    return rc;
}

static int rd_functype(rd *r, const scope *sc, bool async, const cm_type **out)
{
    cm_type *t = new_type(r, CM_FUNC);
    if (t == NULL)
        return oom(r);
    t->async = async;
    int rc = rd_labels(r, sc, t, true, "parameters");
    if (rc != KILN_OK)
        return rc;
    size_t at = r->pos;
    uint8_t form;
    rc = rd_byte(r, &form, "result list");
    if (rc != KILN_OK)
        return rc;
    if (form == 0x00) {
        rc = rd_valtype(r, sc, &t->elem);
        if (rc == KILN_OK)
            rc = adopt(r, t, t->elem, at);
    } else if (form == 0x01) {
        uint32_t n;
        rc = rd_count(r, &n, "named results");
        if (rc == KILN_OK && n != 0)
            return fail(r, KILN_EUNSUPPORTED, at, "named function results (pre-0.2 encoding)");
    } else {
        return fail(r, KILN_EMODULE, at, "malformed result list 0x%02x", form);
    }
    if (rc == KILN_OK)
        *out = t;
    return rc;
}

static int rd_decls(rd *r, const scope *sc, cm_type *t, bool component);

/* Core valtype in a core function type: numbers, v128, funcref, externref. */
static int skip_core_valtype(rd *r)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "core value type");
    if (rc == KILN_OK && !(b >= 0x7b && b <= 0x7f) && b != 0x70 && b != 0x6f)
        return fail(r, KILN_EUNSUPPORTED, at, "core value type 0x%02x (GC reference types)", b);
    return rc;
}

static int skip_limits(rd *r)
{
    uint8_t flags;
    uint32_t v;
    size_t at = r->pos;
    int rc = rd_byte(r, &flags, "limits");
    if (rc == KILN_OK && flags > 0x07)
        return fail(r, KILN_EMODULE, at, "malformed limits flags 0x%02x", flags);
    /* 64-bit limits are up to 10 bytes: read them as two u32 halves would be
     * wrong, so read a raw LEB of up to 10 bytes. */
    for (int k = 0; k < ((flags & 1) ? 2 : 1) && rc == KILN_OK; k++) {
        if (flags & 4) {
            uint8_t b;
            int i = 0;
            do {
                rc = rd_byte(r, &b, "limit");
            } while (rc == KILN_OK && (b & 0x80) && ++i < 10);
            if (rc == KILN_OK && (b & 0x80))
                return fail(r, KILN_EMODULE, at, "malformed 64-bit limit");
        } else {
            rc = rd_u32(r, &v, "limit");
        }
    }
    return rc;
}

static int skip_core_importdesc(rd *r)
{
    size_t at = r->pos;
    uint8_t kind, b;
    uint32_t v;
    int rc = rd_byte(r, &kind, "core import kind");
    if (rc != KILN_OK)
        return rc;
    switch (kind) {
    case 0x00: return rd_u32(r, &v, "core type index");
    case 0x01:
        rc = skip_core_valtype(r);
        return rc == KILN_OK ? skip_limits(r) : rc;
    case 0x02: return skip_limits(r);
    case 0x03:
        rc = skip_core_valtype(r);
        if (rc == KILN_OK)
            rc = rd_byte(r, &b, "global mutability");
        if (rc == KILN_OK && b > 1)
            return fail(r, KILN_EMODULE, at, "malformed global mutability 0x%02x", b);
        return rc;
    case 0x04:
        rc = rd_byte(r, &b, "tag attribute");
        if (rc == KILN_OK && b != 0)
            return fail(r, KILN_EMODULE, at, "malformed tag attribute 0x%02x", b);
        return rc == KILN_OK ? rd_u32(r, &v, "tag type index") : rc;
    }
    return fail(r, KILN_EMODULE, at, "unknown core import kind 0x%02x", kind);
}

/* core:type: a function type or a module type. Only counted: Kiln never needs
 * a core type's structure (the AOT reader sees the real modules). */
static int rd_core_type(rd *r, uint32_t depth, bool in_module)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "core type");
    if (rc != KILN_OK)
        return rc;
    if (b == 0x00 && !in_module) { /* 0x00 0x50: the module type's newer spelling */
        rc = rd_byte(r, &b, "core module type");
        if (rc == KILN_OK && b != 0x50)
            return fail(r, KILN_EMODULE, at, "malformed core module type");
    }
    if (rc != KILN_OK)
        return rc;
    uint32_t n, v;
    if (b == 0x60) {
        for (int k = 0; k < 2; k++) {
            rc = rd_count(r, &n, "core value types");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++)
                rc = skip_core_valtype(r);
            if (rc != KILN_OK)
                return rc;
        }
        return KILN_OK;
    }
    if (b != 0x50 || in_module)
        return fail(r, b == 0x50 ? KILN_EMODULE : KILN_EUNSUPPORTED, at,
                    b == 0x50 ? "module type inside a module type" : "core type 0x%02x", b);
    if (depth >= CM_MAX_NESTING)
        return fail(r, KILN_ELIMIT, at, "declarators nested deeper than %d", CM_MAX_NESTING);
    rc = rd_count(r, &n, "module declarations");
    for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
        size_t dat = r->pos;
        uint8_t d;
        const char *name;
        rc = rd_byte(r, &d, "module declaration");
        if (rc != KILN_OK)
            break;
        switch (d) {
        case 0x00:
            rc = rd_name(r, &name, "core import module");
            if (rc == KILN_OK)
                rc = rd_name(r, &name, "core import name");
            if (rc == KILN_OK)
                rc = skip_core_importdesc(r);
            break;
        case 0x01:
            rc = rd_core_type(r, depth + 1, true);
            break;
        case 0x02: {
            cm_sort s;
            rc = rd_core_sort(r, &s);
            if (rc == KILN_OK)
                rc = rd_byte(r, &d, "core alias target");
            if (rc == KILN_OK && d != 0x01)
                return fail(r, KILN_EMODULE, dat, "module type alias must be an outer alias");
            if (rc == KILN_OK)
                rc = rd_u32(r, &v, "outer count");
            if (rc == KILN_OK)
                rc = rd_u32(r, &v, "outer index");
            break;
        }
        case 0x03:
            rc = rd_name(r, &name, "core export name");
            if (rc == KILN_OK)
                rc = skip_core_importdesc(r);
            break;
        default:
            return fail(r, KILN_EMODULE, dat, "unknown module declaration 0x%02x", d);
        }
    }
    return rc;
}

/* deftype: a value type, function, component, instance or resource type. */
static int rd_deftype(rd *r, const scope *sc, const cm_type **out)
{
    size_t at = r->pos;
    uint8_t op;
    int rc = rd_byte(r, &op, "type");
    if (rc != KILN_OK)
        return rc;
    switch (op) {
    case 0x40:
    case 0x43:
        return rd_functype(r, sc, op == 0x43, out);
    case 0x41:
    case 0x42: {
        cm_type *t = new_type(r, op == 0x41 ? CM_COMPONENT : CM_INSTANCE);
        if (t == NULL)
            return oom(r);
        rc = rd_decls(r, sc, t, op == 0x41);
        if (rc == KILN_OK)
            *out = t;
        return rc;
    }
    case 0x3f:
    case 0x3e: {
        uint8_t rep;
        rc = rd_byte(r, &rep, "resource representation");
        if (rc == KILN_OK && rep != 0x7f)
            return fail(r, KILN_EMODULE, at, "resource representation must be i32");
        cm_type *t = new_type(r, CM_RESOURCE);
        if (t == NULL)
            return oom(r);
        t->id = r->next_resource++;
        int nfuncs = op == 0x3f ? 1 : 2; /* destructor, async callback */
        for (int k = 0; k < nfuncs && rc == KILN_OK; k++) {
            uint8_t has;
            uint32_t f;
            size_t fat = r->pos;
            rc = rd_byte(r, &has, "resource destructor");
            if (rc == KILN_OK && has > 1)
                return fail(r, KILN_EMODULE, fat, "malformed resource destructor");
            if (rc == KILN_OK && has)
                rc = rd_index(r, sc->c, CM_SORT_CORE_FUNC, &f);
            if (rc == KILN_OK && has && k == 0) {
                t->has_dtor = true;
                t->dtor = f;
            }
        }
        if (rc == KILN_OK)
            *out = t;
        return rc;
    }
    }
    return rd_defvaltype(r, sc, op, at, out);
}

static void name_type(const cm_type *t, const char *name)
{
    /* Names go on arena-made types only; primitives are shared statics. */
    if (t->name == NULL && t != cm_prim(t->kind) && t != &core_module_type &&
        t != &error_context_type)
        ((cm_type *)t)->name = name;
}

/* externdesc: what an import or export declarator brings in. */
static int rd_externdesc(rd *r, const scope *sc, const char *name, cm_sort *sort,
                         const cm_type **out)
{
    size_t at = r->pos;
    uint8_t b;
    uint32_t i;
    int rc = rd_byte(r, &b, "extern descriptor");
    if (rc != KILN_OK)
        return rc;
    switch (b) {
    case 0x00:
        rc = rd_byte(r, &b, "core module descriptor");
        if (rc == KILN_OK && b != 0x11)
            return fail(r, KILN_EMODULE, at, "malformed core module descriptor");
        if (rc == KILN_OK)
            rc = rd_index(r, sc->c, CM_SORT_CORE_TYPE, &i);
        *sort = CM_SORT_CORE_MODULE;
        *out = &core_module_type;
        return rc;
    case 0x01:
    case 0x04:
    case 0x05: {
        static const cm_kind want[] = {[0x01] = CM_FUNC, [0x04] = CM_COMPONENT,
                                       [0x05] = CM_INSTANCE};
        *sort = b == 0x01 ? CM_SORT_FUNC : b == 0x04 ? CM_SORT_COMPONENT : CM_SORT_INSTANCE;
        size_t iat = r->pos;
        rc = rd_u32(r, &i, "type index");
        if (rc == KILN_OK)
            rc = type_at(r, sc, i, iat, out);
        if (rc == KILN_OK && (*out)->kind != want[b])
            return fail(r, KILN_EMODULE, iat, "type %u is a %s, expected a %s type", (unsigned)i,
                        cm_kind_name((*out)->kind), cm_kind_name(want[b]));
        return rc;
    }
    case 0x02:
        return fail(r, KILN_EUNSUPPORTED, at, "value imports/exports");
    case 0x03: {
        *sort = CM_SORT_TYPE;
        size_t bat = r->pos;
        rc = rd_byte(r, &b, "type bound");
        if (rc != KILN_OK)
            return rc;
        if (b == 0x00) {
            size_t iat = r->pos;
            rc = rd_u32(r, &i, "type index");
            if (rc == KILN_OK)
                rc = type_at(r, sc, i, iat, out);
        } else if (b == 0x01) {
            cm_type *t = new_type(r, CM_RESOURCE);
            if (t == NULL)
                return oom(r);
            t->id = r->next_resource++;
            t->abstract = true;
            *out = t;
        } else {
            return fail(r, KILN_EMODULE, bat, "malformed type bound 0x%02x", b);
        }
        if (rc == KILN_OK)
            name_type(*out, name);
        return rc;
    }
    }
    return fail(r, KILN_EMODULE, at, "unknown extern descriptor 0x%02x", b);
}

/* The entry an import or export declarator adds to its sort's space. */
static int push_extern(rd *r, cm_component *c, cm_sort s, const cm_type *t)
{
    if (s == CM_SORT_FUNC) {
        cm_func *f = alloc(r, sizeof(*f));
        if (f == NULL)
            return oom(r);
        f->how = CM_FUNC_IMPORT;
        f->type = t;
        return push(r, c, s, f);
    }
    if (s == CM_SORT_CORE_MODULE)
        return push(r, c, s, NULL);
    return push(r, c, s, (void *)t);
}

static int add_extern(rd *r, cm_extern **list, uint32_t *n, uint32_t *cap, const char *name,
                      cm_sort s, const cm_type *t, uint32_t index)
{
    cm_extern *e = alloc(r, sizeof(*e));
    if (e == NULL)
        return oom(r);
    e->name = name;
    e->sort = s;
    e->type = t;
    e->index = index;
    /* Store pointers in a scratch pointer array, flattened at the end. */
    return cm_arena_push(r->a, (void ***)list, n, cap, e) == KILN_OK ? KILN_OK : oom(r);
}

static int flatten_externs(rd *r, cm_extern **list, uint32_t n)
{
    if (n == 0) {
        *list = NULL;
        return KILN_OK;
    }
    cm_extern **ptrs = (cm_extern **)*list;
    cm_extern *flat = alloc(r, (size_t)n * sizeof(cm_extern));
    if (flat == NULL)
        return oom(r);
    for (uint32_t i = 0; i < n; i++)
        flat[i] = *ptrs[i];
    *list = flat;
    return KILN_OK;
}

static int rd_alias(rd *r, const scope *sc, bool in_decl);

/* componenttype / instancetype declarators, each in a fresh type scope. */
static int rd_decls(rd *r, const scope *sc, cm_type *t, bool component)
{
    size_t at = r->pos;
    if (sc->depth + 1 >= CM_MAX_NESTING)
        return fail(r, KILN_ELIMIT, at, "declarators nested deeper than %d", CM_MAX_NESTING);
    cm_component *own = alloc(r, sizeof(*own));
    if (own == NULL)
        return oom(r);
    scope inner = {.c = own, .outer = sc, .depth = sc->depth + 1, .decl = true};
    uint32_t n, cap_i = 0, cap_e = 0;
    int rc = rd_count(r, &n, "declarations");
    for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
        size_t dat = r->pos;
        uint8_t d;
        const char *name;
        cm_sort s;
        const cm_type *dt;
        rc = rd_byte(r, &d, "declaration");
        if (rc != KILN_OK)
            break;
        switch (d) {
        case 0x00:
            rc = rd_core_type(r, inner.depth, false);
            if (rc == KILN_OK)
                rc = push(r, own, CM_SORT_CORE_TYPE, NULL);
            break;
        case 0x01:
            rc = rd_deftype(r, &inner, &dt);
            if (rc == KILN_OK && dt->kind == CM_RESOURCE)
                return fail(r, KILN_EMODULE, dat, "resource type defined inside a type");
            if (rc == KILN_OK)
                rc = push(r, own, CM_SORT_TYPE, (void *)dt);
            break;
        case 0x02:
            rc = rd_alias(r, &inner, true);
            break;
        case 0x03:
        case 0x04:
            if (d == 0x03 && !component)
                return fail(r, KILN_EMODULE, dat, "import declaration inside an instance type");
            rc = rd_extern_name(r, &name);
            if (rc == KILN_OK)
                rc = rd_externdesc(r, &inner, name, &s, &dt);
            if (rc == KILN_OK)
                rc = push_extern(r, own, s, dt);
            if (rc == KILN_OK)
                rc = d == 0x03 ? add_extern(r, &t->imports, &t->n_imports, &cap_i, name, s, dt, 0)
                               : add_extern(r, &t->exports, &t->n_exports, &cap_e, name, s, dt, 0);
            break;
        default:
            return fail(r, KILN_EMODULE, dat, "unknown declaration 0x%02x", d);
        }
    }
    if (rc == KILN_OK)
        rc = flatten_externs(r, &t->imports, t->n_imports);
    if (rc == KILN_OK)
        rc = flatten_externs(r, &t->exports, t->n_exports);
    return rc;
}

/* ---- definitions ---------------------------------------------------------- */

static const cm_extern *find_export(const cm_type *inst, const char *name)
{
    for (uint32_t i = 0; i < inst->n_exports; i++)
        if (strcmp(inst->exports[i].name, name) == 0)
            return &inst->exports[i];
    return NULL;
}

/* alias ::= sort target. In declarators only type and instance sorts. */
static int rd_alias(rd *r, const scope *sc, bool in_decl)
{
    size_t at = r->pos;
    cm_sort s;
    uint8_t tgt;
    int rc = rd_sort(r, &s);
    if (rc == KILN_OK)
        rc = rd_byte(r, &tgt, "alias target");
    if (rc != KILN_OK)
        return rc;
    cm_component *c = sc->c;
    uint32_t i, ct;
    const char *name;
    switch (tgt) {
    case 0x00: { /* export of a component instance */
        rc = rd_index(r, c, CM_SORT_INSTANCE, &i);
        if (rc == KILN_OK)
            rc = rd_name(r, &name, "alias export name");
        if (rc != KILN_OK)
            return rc;
        const cm_type *inst = c->space[CM_SORT_INSTANCE][i];
        const cm_extern *e = find_export(inst, name);
        if (e == NULL || e->sort != s)
            return fail(r, KILN_EMODULE, at, "instance %u has no %s export '%s'", (unsigned)i,
                        sort_names[s], name);
        if (s == CM_SORT_INSTANCE && !in_decl)
            rc = set_idef(r, CM_INST_ALIAS, name, i, NULL);
        if (rc == KILN_OK)
            rc = push_extern(r, c, s, e->type);
        if (rc == KILN_OK && s == CM_SORT_FUNC) {
            cm_func *f = c->space[s][c->n_space[s] - 1];
            f->how = CM_FUNC_ALIAS;
            f->instance = i;
            f->name = name;
        }
        return rc;
    }
    case 0x01: { /* export of a core instance */
        if (in_decl)
            return fail(r, KILN_EMODULE, at, "core export alias inside a type");
        rc = rd_index(r, c, CM_SORT_CORE_INSTANCE, &i);
        if (rc == KILN_OK)
            rc = rd_name(r, &name, "alias core export name");
        if (rc != KILN_OK)
            return rc;
        const cm_core_instance *ci = c->space[CM_SORT_CORE_INSTANCE][i];
        if (!ci->instantiate) {
            bool found = false;
            for (uint32_t k = 0; k < ci->n && !found; k++)
                found = ci->args[k].sort == s && strcmp(ci->args[k].name, name) == 0;
            if (!found)
                return fail(r, KILN_EMODULE, at, "core instance %u has no %s export '%s'",
                            (unsigned)i, sort_names[s], name);
        }
        if (s == CM_SORT_CORE_FUNC) {
            cm_core_func *f = alloc(r, sizeof(*f));
            if (f == NULL)
                return oom(r);
            f->how = CM_CORE_ALIAS;
            f->instance = i;
            f->name = name;
            return push(r, c, s, f);
        }
        if (s == CM_SORT_CORE_MEMORY || s == CM_SORT_CORE_TABLE || s == CM_SORT_CORE_GLOBAL) {
            cm_core_item *it = alloc(r, sizeof(*it));
            if (it == NULL)
                return oom(r);
            it->instance = i;
            it->name = name;
            return push(r, c, s, it);
        }
        return fail(r, KILN_EUNSUPPORTED, at, "alias of a core %s export", sort_names[s]);
    }
    case 0x02: { /* outer */
        rc = rd_u32(r, &ct, "outer count");
        size_t iat = r->pos;
        if (rc == KILN_OK)
            rc = rd_u32(r, &i, "outer index");
        if (rc != KILN_OK)
            return rc;
        if (s != CM_SORT_TYPE && s != CM_SORT_CORE_TYPE && s != CM_SORT_CORE_MODULE &&
            s != CM_SORT_COMPONENT)
            return fail(r, KILN_EMODULE, at, "outer alias of a %s", sort_names[s]);
        const scope *o = sc;
        bool crosses_component = false; /* leaves a component, not only declarators */
        for (uint32_t k = 0; k < ct && o != NULL; k++) {
            crosses_component |= !o->decl;
            o = o->outer;
        }
        if (o == NULL)
            return fail(r, KILN_EMODULE, at, "outer alias %u levels out, past the root",
                        (unsigned)ct);
        rc = check_index(r, o->c, s, i, iat);
        if (rc != KILN_OK)
            return rc;
        const void *p = o->c->space[s][i];
        if (s == CM_SORT_COMPONENT && i < o->c->n_cdefs)
            r->next_cdef = o->c->cdefs[i];
        /* Resource types may be aliased out of enclosing type declarators
         * (an instance type naming the resources of its interface does),
         * never across a component boundary. */
        if (s == CM_SORT_TYPE && ((const cm_type *)p)->kind == CM_RESOURCE && crosses_component)
            return fail(r, KILN_EMODULE, at, "outer alias of a resource type");
        return push(r, c, s, (void *)p);
    }
    }
    return fail(r, KILN_EMODULE, at, "unknown alias target 0x%02x", tgt);
}

static int rd_opts(rd *r, const cm_component *c, cm_opts *o)
{
    uint32_t n;
    int rc = rd_count(r, &n, "canonical options");
    bool enc = false;
    for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
        size_t at = r->pos;
        uint8_t b;
        rc = rd_byte(r, &b, "canonical option");
        if (rc != KILN_OK)
            break;
        bool dup = false;
        switch (b) {
        case 0x00:
        case 0x01:
        case 0x02:
            dup = enc;
            enc = true;
            o->encoding = b == 0x00 ? CM_UTF8 : b == 0x01 ? CM_UTF16 : CM_LATIN1_UTF16;
            break;
        case 0x03:
            dup = o->has_memory;
            o->has_memory = true;
            rc = rd_index(r, c, CM_SORT_CORE_MEMORY, &o->memory);
            break;
        case 0x04:
            dup = o->has_realloc;
            o->has_realloc = true;
            rc = rd_index(r, c, CM_SORT_CORE_FUNC, &o->realloc);
            break;
        case 0x05:
            dup = o->has_post_return;
            o->has_post_return = true;
            rc = rd_index(r, c, CM_SORT_CORE_FUNC, &o->post_return);
            break;
        case 0x06:
            dup = o->async;
            o->async = true;
            break;
        case 0x07:
            dup = o->has_callback;
            o->has_callback = true;
            rc = rd_index(r, c, CM_SORT_CORE_FUNC, &o->callback);
            break;
        default:
            return fail(r, KILN_EMODULE, at, "unknown canonical option 0x%02x", b);
        }
        if (dup)
            return fail(r, KILN_EMODULE, at, "canonical option 0x%02x given twice", b);
    }
    return rc;
}

static int rd_canon(rd *r, cm_component *c)
{
    size_t at = r->pos;
    uint8_t op, z;
    int rc = rd_byte(r, &op, "canonical function");
    if (rc != KILN_OK)
        return rc;
    if (op == 0x00 || op == 0x01) {
        rc = rd_byte(r, &z, "canonical function sort");
        if (rc == KILN_OK && z != 0x00)
            return fail(r, KILN_EMODULE, at, "malformed canon %s", op ? "lower" : "lift");
    }
    if (rc != KILN_OK)
        return rc;
    const scope sc = {.c = c};
    switch (op) {
    case 0x00: {
        cm_func *f = alloc(r, sizeof(*f));
        if (f == NULL)
            return oom(r);
        f->how = CM_FUNC_LIFT;
        rc = rd_index(r, c, CM_SORT_CORE_FUNC, &f->core_func);
        if (rc == KILN_OK)
            rc = rd_opts(r, c, &f->opts);
        size_t tat = r->pos;
        uint32_t ti;
        if (rc == KILN_OK)
            rc = rd_u32(r, &ti, "lifted function type");
        if (rc == KILN_OK)
            rc = type_at(r, &sc, ti, tat, &f->type);
        if (rc == KILN_OK && f->type->kind != CM_FUNC)
            return fail(r, KILN_EMODULE, tat, "lift with type %u, which is not a function type",
                        (unsigned)ti);
        return rc == KILN_OK ? push(r, c, CM_SORT_FUNC, f) : rc;
    }
    case 0x01: {
        cm_core_func *f = alloc(r, sizeof(*f));
        if (f == NULL)
            return oom(r);
        f->how = CM_CORE_LOWER;
        rc = rd_index(r, c, CM_SORT_FUNC, &f->func);
        if (rc == KILN_OK)
            rc = rd_opts(r, c, &f->opts);
        return rc == KILN_OK ? push(r, c, CM_SORT_CORE_FUNC, f) : rc;
    }
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x07: {
        cm_core_func *f = alloc(r, sizeof(*f));
        if (f == NULL)
            return oom(r);
        f->how = op == 0x02 ? CM_CORE_RESOURCE_NEW
                 : op == 0x04 ? CM_CORE_RESOURCE_REP
                              : CM_CORE_RESOURCE_DROP;
        size_t tat = r->pos;
        uint32_t ti;
        rc = rd_u32(r, &ti, "resource type index");
        if (rc == KILN_OK)
            rc = type_at(r, &sc, ti, tat, &f->resource);
        if (rc == KILN_OK && f->resource->kind != CM_RESOURCE)
            return fail(r, KILN_EMODULE, tat, "type %u is not a resource", (unsigned)ti);
        return rc == KILN_OK ? push(r, c, CM_SORT_CORE_FUNC, f) : rc;
    }
    }
    return fail(r, KILN_EUNSUPPORTED, at,
                "canonical built-in 0x%02x (async, threads or error-context)", op);
}

static int rd_core_instance(rd *r, cm_component *c)
{
    size_t at = r->pos;
    uint8_t form;
    int rc = rd_byte(r, &form, "core instance");
    if (rc != KILN_OK)
        return rc;
    cm_core_instance *ci = alloc(r, sizeof(*ci));
    if (ci == NULL)
        return oom(r);
    if (form == 0x00) {
        ci->instantiate = true;
        rc = rd_index(r, c, CM_SORT_CORE_MODULE, &ci->module);
    } else if (form != 0x01) {
        return fail(r, KILN_EMODULE, at, "unknown core instance form 0x%02x", form);
    }
    if (rc == KILN_OK)
        rc = rd_count(r, &ci->n, form == 0x00 ? "instantiation arguments" : "inline exports");
    if (rc != KILN_OK)
        return rc;
    ci->args = alloc(r, (size_t)ci->n * sizeof(cm_core_arg) + 1);
    if (ci->args == NULL)
        return oom(r);
    for (uint32_t i = 0; i < ci->n && rc == KILN_OK; i++) {
        cm_core_arg *a = &ci->args[i];
        rc = rd_name(r, &a->name, form == 0x00 ? "instantiation argument" : "inline export");
        if (rc != KILN_OK)
            break;
        size_t sat = r->pos;
        if (form == 0x00) {
            uint8_t b;
            rc = rd_byte(r, &b, "instantiation argument sort");
            if (rc == KILN_OK && b != 0x12)
                return fail(r, KILN_EMODULE, sat, "core instantiation argument is not an instance");
            a->sort = CM_SORT_CORE_INSTANCE;
        } else {
            rc = rd_core_sort(r, &a->sort);
            if (rc == KILN_OK && a->sort >= CM_SORT_CORE_TYPE)
                return fail(r, KILN_EMODULE, sat, "inline export of a core %s",
                            sort_names[a->sort]);
        }
        if (rc == KILN_OK)
            rc = rd_index(r, c, a->sort, &a->index);
    }
    return rc == KILN_OK ? push(r, c, CM_SORT_CORE_INSTANCE, ci) : rc;
}

/* The type of whatever `sortidx` refers to, as an export would carry it. */
static const cm_type *entry_type(const cm_component *c, cm_sort s, uint32_t i)
{
    switch (s) {
    case CM_SORT_FUNC: return ((const cm_func *)c->space[s][i])->type;
    case CM_SORT_TYPE:
    case CM_SORT_INSTANCE:
    case CM_SORT_COMPONENT: return c->space[s][i];
    case CM_SORT_CORE_MODULE: return &core_module_type;
    default: return NULL;
    }
}

static int rd_instance(rd *r, cm_component *c)
{
    size_t at = r->pos;
    uint8_t form;
    uint32_t n = 0, ci = 0, cap = 0;
    int rc = rd_byte(r, &form, "instance");
    if (rc != KILN_OK)
        return rc;
    cm_type *t = new_type(r, CM_INSTANCE);
    cm_inst_def *d = alloc(r, sizeof(*d));
    if (t == NULL || d == NULL)
        return oom(r);
    if (form == 0x00) {
        d->how = CM_INST_INSTANTIATE;
        rc = rd_index(r, c, CM_SORT_COMPONENT, &ci);
        if (rc == KILN_OK)
            rc = rd_count(r, &n, "instantiation arguments");
        if (rc == KILN_OK && (d->args = alloc(r, (size_t)n * sizeof(cm_core_arg) + 1)) == NULL)
            return oom(r);
        for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
            cm_core_arg *a = &d->args[i];
            rc = rd_name(r, &a->name, "instantiation argument");
            if (rc == KILN_OK)
                rc = rd_sort(r, &a->sort);
            if (rc == KILN_OK && a->sort == CM_SORT_VALUE)
                return fail(r, KILN_EUNSUPPORTED, at, "value instantiation arguments");
            if (rc == KILN_OK)
                rc = rd_index(r, c, a->sort, &a->index);
        }
        if (rc != KILN_OK)
            return rc;
        d->n = n;
        d->component = ci < c->n_cdefs ? c->cdefs[ci] : NULL;
        /* The instance exports what the component does; imported types are
         * shown as the component declares them (no substitution). */
        const cm_type *ct = c->space[CM_SORT_COMPONENT][ci];
        t->n_exports = ct->n_exports;
        t->exports = ct->exports;
    } else if (form == 0x01) {
        d->how = CM_INST_INLINE;
        rc = rd_count(r, &n, "inline exports");
        if (rc == KILN_OK && (d->args = alloc(r, (size_t)n * sizeof(cm_core_arg) + 1)) == NULL)
            return oom(r);
        for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
            const char *name;
            cm_sort s;
            uint32_t idx;
            size_t sat;
            rc = rd_extern_name(r, &name);
            if (rc == KILN_OK) {
                sat = r->pos;
                rc = rd_sort(r, &s);
            }
            if (rc == KILN_OK && (s < CM_SORT_FUNC && s != CM_SORT_CORE_MODULE))
                return fail(r, KILN_EMODULE, sat, "instance export of a core %s",
                            sort_names[s]);
            if (rc == KILN_OK && s == CM_SORT_VALUE)
                return fail(r, KILN_EUNSUPPORTED, sat, "value exports");
            if (rc == KILN_OK)
                rc = rd_index(r, c, s, &idx);
            if (rc == KILN_OK)
                rc = add_extern(r, &t->exports, &t->n_exports, &cap, name, s,
                                entry_type(c, s, idx), idx);
            if (rc == KILN_OK) {
                d->args[i] = (cm_core_arg){.name = name, .index = idx, .sort = s};
                d->n = i + 1;
            }
        }
        if (rc == KILN_OK)
            rc = flatten_externs(r, &t->exports, t->n_exports);
    } else {
        return fail(r, KILN_EMODULE, at, "unknown instance form 0x%02x", form);
    }
    if (rc != KILN_OK)
        return rc;
    r->next_idef = d;
    return push(r, c, CM_SORT_INSTANCE, t);
}

static int parse_component(rd *r, const scope *outer, uint32_t depth, cm_component **out);

/* Walk one component's sections, r->pos..r->end. */
static int rd_sections(rd *r, scope *sc)
{
    cm_component *c = sc->c;
    uint32_t cap_i = 0, cap_e = 0, cap_m = 0, cap_c = 0;
    size_t comp_end = r->end;
    int rc = KILN_OK;
    while (rc == KILN_OK && r->pos < comp_end) {
        size_t at = r->pos;
        uint8_t id;
        uint32_t size, n;
        r->end = comp_end;
        rc = rd_byte(r, &id, "section id");
        if (rc == KILN_OK)
            rc = rd_u32(r, &size, "section size");
        if (rc != KILN_OK)
            break;
        if (size > comp_end - r->pos)
            return fail(r, KILN_EMODULE, at, "section of %u bytes runs past the end",
                        (unsigned)size);
        r->end = r->pos + size;
        switch (id) {
        case 0: { /* custom */
            const char *name;
            rc = rd_name(r, &name, "custom section name");
            r->pos = r->end;
            break;
        }
        case 1: { /* core module: checked only for its preamble here */
            static const uint8_t pre[8] = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};
            if (size < 8 || memcmp(r->buf + r->pos, pre, 8) != 0)
                return fail(r, KILN_EMODULE, r->pos, "embedded core module lacks its preamble");
            cm_module *m = alloc(r, sizeof(*m));
            if (m == NULL)
                return oom(r);
            m->offset = r->pos;
            m->len = size;
            r->pos = r->end;
            rc = push(r, c, CM_SORT_CORE_MODULE, m);
            if (rc == KILN_OK && cm_arena_push(r->a, (void ***)&c->modules, &c->n_modules,
                                               &cap_m, m) != KILN_OK)
                return oom(r);
            break;
        }
        case 2:
            rc = rd_count(r, &n, "core instances");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++)
                rc = rd_core_instance(r, c);
            break;
        case 3:
            rc = rd_count(r, &n, "core types");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
                rc = rd_core_type(r, sc->depth, false);
                if (rc == KILN_OK)
                    rc = push(r, c, CM_SORT_CORE_TYPE, NULL);
            }
            break;
        case 4: {
            cm_component *nested;
            rc = parse_component(r, sc, sc->depth + 1, &nested);
            if (rc != KILN_OK)
                break;
            cm_type *t = new_type(r, CM_COMPONENT);
            if (t == NULL)
                return oom(r);
            t->n_imports = nested->n_imports;
            t->imports = nested->imports;
            t->n_exports = nested->n_exports;
            t->exports = nested->exports;
            r->next_cdef = nested;
            rc = push(r, c, CM_SORT_COMPONENT, t);
            if (rc == KILN_OK && cm_arena_push(r->a, (void ***)&c->components, &c->n_components,
                                               &cap_c, nested) != KILN_OK)
                return oom(r);
            break;
        }
        case 5:
            rc = rd_count(r, &n, "instances");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++)
                rc = rd_instance(r, c);
            break;
        case 6:
            rc = rd_count(r, &n, "aliases");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++)
                rc = rd_alias(r, sc, false);
            break;
        case 7:
            rc = rd_count(r, &n, "types");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
                const cm_type *t;
                rc = rd_deftype(r, sc, &t);
                if (rc == KILN_OK)
                    rc = push(r, c, CM_SORT_TYPE, (void *)t);
            }
            break;
        case 8:
            rc = rd_count(r, &n, "canonical functions");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++)
                rc = rd_canon(r, c);
            break;
        case 9:
            return fail(r, KILN_EUNSUPPORTED, at, "component start functions (values)");
        case 10:
            rc = rd_count(r, &n, "imports");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
                const char *name;
                cm_sort s;
                const cm_type *t;
                rc = rd_extern_name(r, &name);
                if (rc == KILN_OK)
                    rc = rd_externdesc(r, sc, name, &s, &t);
                if (rc == KILN_OK)
                    rc = add_extern(r, &c->imports, &c->n_imports, &cap_i, name, s, t,
                                    c->n_space[s]);
                if (rc == KILN_OK && s == CM_SORT_INSTANCE)
                    rc = set_idef(r, CM_INST_IMPORT, name, 0, NULL);
                if (rc == KILN_OK)
                    rc = push_extern(r, c, s, t);
                if (rc == KILN_OK && s == CM_SORT_FUNC)
                    ((cm_func *)c->space[s][c->n_space[s] - 1])->name = name;
            }
            break;
        case 11:
            rc = rd_count(r, &n, "exports");
            for (uint32_t i = 0; i < n && rc == KILN_OK; i++) {
                const char *name;
                cm_sort s;
                uint32_t idx;
                size_t sat = 0;
                rc = rd_extern_name(r, &name);
                if (rc == KILN_OK) {
                    sat = r->pos;
                    rc = rd_sort(r, &s);
                }
                if (rc == KILN_OK && s == CM_SORT_VALUE)
                    return fail(r, KILN_EUNSUPPORTED, sat, "value exports");
                if (rc == KILN_OK && s < CM_SORT_FUNC && s != CM_SORT_CORE_MODULE)
                    return fail(r, KILN_EMODULE, sat, "export of a core %s", sort_names[s]);
                if (rc == KILN_OK)
                    rc = rd_index(r, c, s, &idx);
                if (rc != KILN_OK)
                    break;
                uint8_t has;
                size_t hat = r->pos;
                rc = rd_byte(r, &has, "export type ascription");
                if (rc == KILN_OK && has > 1)
                    return fail(r, KILN_EMODULE, hat, "malformed export type ascription");
                const cm_type *t = entry_type(c, s, idx);
                if (rc == KILN_OK && has) {
                    cm_sort as;
                    const cm_type *ascribed;
                    rc = rd_externdesc(r, sc, name, &as, &ascribed);
                    if (rc == KILN_OK && as != s)
                        return fail(r, KILN_EMODULE, hat, "export ascribed a %s type but is a %s",
                                    sort_names[as], sort_names[s]);
                    /* The ascription is what the outside sees (names included). */
                    if (rc == KILN_OK && s != CM_SORT_TYPE)
                        t = ascribed;
                }
                if (rc == KILN_OK && s == CM_SORT_TYPE)
                    name_type(t, name);
                if (rc == KILN_OK)
                    rc = add_extern(r, &c->exports, &c->n_exports, &cap_e, name, s, t,
                                    c->n_space[s]);
                /* An export adds an index aliasing what it exports. */
                if (s == CM_SORT_INSTANCE && idx < c->n_idefs)
                    r->next_idef = c->idefs[idx];
                if (s == CM_SORT_COMPONENT && idx < c->n_cdefs)
                    r->next_cdef = c->cdefs[idx];
                if (rc == KILN_OK)
                    rc = push(r, c, s, c->space[s][idx]);
            }
            break;
        case 12:
            return fail(r, KILN_EUNSUPPORTED, at, "value definitions");
        default:
            return fail(r, KILN_EMODULE, at, "unknown section id %u", id);
        }
        if (rc == KILN_OK && r->pos != r->end)
            return fail(r, KILN_EMODULE, r->pos, "section %u has %zu bytes left over", id,
                        r->end - r->pos);
    }
    r->end = comp_end;
    if (rc == KILN_OK)
        rc = flatten_externs(r, &c->imports, c->n_imports);
    if (rc == KILN_OK)
        rc = flatten_externs(r, &c->exports, c->n_exports);
    return rc;
}

static int rd_preamble(rd *r, size_t at)
{
    static const uint8_t magic[4] = {0x00, 0x61, 0x73, 0x6D};
    if (r->end - r->pos < 8 || memcmp(r->buf + r->pos, magic, 4) != 0)
        return fail(r, KILN_EMODULE, at, "missing \\0asm magic (not a WebAssembly binary)");
    const uint8_t *v = r->buf + r->pos + 4;
    if (v[2] != 0x01 || v[3] != 0x00)
        return fail(r, KILN_EMODULE, at + 6, "layer %u is not a component (layer 1)",
                    (unsigned)(v[2] | v[3] << 8));
    if (v[0] != 0x0d || v[1] != 0x00)
        return fail(r, KILN_EUNSUPPORTED, at + 4,
                    "component binary version 0x%02x%02x (Kiln reads 0x000d)", v[1], v[0]);
    r->pos += 8;
    return KILN_OK;
}

/* A component: the whole buffer, or a nested component section (r->pos..r->end). */
static int parse_component(rd *r, const scope *outer, uint32_t depth, cm_component **out)
{
    size_t at = r->pos;
    if (depth >= CM_MAX_NESTING)
        return fail(r, KILN_ELIMIT, at, "components nested deeper than %d", CM_MAX_NESTING);
    cm_component *c = alloc(r, sizeof(*c));
    if (c == NULL)
        return oom(r);
    c->arena = r->a;
    int rc = rd_preamble(r, at);
    if (rc != KILN_OK)
        return rc;
    size_t end = r->end;
    scope sc = {.c = c, .outer = outer, .depth = depth};
    rc = rd_sections(r, &sc);
    r->end = end;
    if (rc == KILN_OK)
        *out = c;
    return rc;
}

bool cm_is_component(const uint8_t *buf, size_t len)
{
    return len >= 8 && buf[0] == 0x00 && buf[1] == 0x61 && buf[2] == 0x73 && buf[3] == 0x6D &&
           buf[6] == 0x01 && buf[7] == 0x00;
}

int cm_parse(const uint8_t *buf, size_t len, cm_component **out, kiln_err *err)
{
    *out = NULL;
    rd r = {.buf = buf, .len = len, .end = len, .err = err};
    r.a = cm_arena_new();
    if (r.a == NULL)
        return kiln_err_set(err, KILN_ENOMEM, "component reader: out of memory");
    cm_component *c = NULL;
    int rc = parse_component(&r, NULL, 0, &c);
    if (rc == KILN_OK && cm_nest_needed(c))
        rc = cm_nest_flatten(c, err);
    if (rc != KILN_OK) {
        if (err == NULL || err->code != rc) /* an arena exhaustion mid-way */
            kiln_err_set(err, rc, "component reader: failed (%s)", kiln_strerror(rc));
        cm_arena_free(r.a);
        return rc;
    }
    *out = c;
    return KILN_OK;
}

void cm_free(cm_component *c)
{
    if (c != NULL)
        cm_arena_free(c->arena);
}

const cm_func *cm_find_cli_run(const cm_component *c)
{
    for (uint32_t i = 0; i < c->n_space[CM_SORT_FUNC]; i++) {
        const cm_func *f = c->space[CM_SORT_FUNC][i];
        if (f->how != CM_FUNC_LIFT)
            continue;
        const cm_core_func *cf = c->space[CM_SORT_CORE_FUNC][f->core_func];
        if (cf->how == CM_CORE_ALIAS && strncmp(cf->name, "wasi:cli/run@", 13) == 0) {
            const char *h = strchr(cf->name, '#');
            if (h != NULL && strcmp(h, "#run") == 0 && f->type->n == 0)
                return f;
        }
    }
    return NULL;
}
