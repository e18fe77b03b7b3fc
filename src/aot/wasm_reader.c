/*
 * wasm_reader.c - bounded decoder for the module-level structure of a .wasm
 * binary, and the rewriter that replaces every guest-chosen name with a
 * synthetic one before the module goes anywhere near wasm2c.
 */
#include "aot/wasm_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"

/* Section ids of the binary format. */
enum {
    SEC_CUSTOM = 0,
    SEC_TYPE = 1,
    SEC_IMPORT = 2,
    SEC_FUNCTION = 3,
    SEC_TABLE = 4,
    SEC_MEMORY = 5,
    SEC_GLOBAL = 6,
    SEC_EXPORT = 7,
    SEC_START = 8,
    SEC_ELEMENT = 9,
    SEC_CODE = 10,
    SEC_DATA = 11,
    SEC_DATACOUNT = 12,
    SEC_TAG = 13,
    SEC_MAX_ID = 13,
};

static const char *const section_names[SEC_MAX_ID + 1] = {
    "custom", "type",    "import", "function", "table", "memory",    "global",
    "export", "start",   "element", "code",    "data",  "datacount", "tag",
};

/*
 * Position of each known section in the order the binary format requires.
 * The tag section sits between memory and global, and datacount between
 * element and code, which is why ids alone cannot be compared.
 */
static const uint8_t section_rank[SEC_MAX_ID + 1] = {
    [SEC_TYPE] = 1,    [SEC_IMPORT] = 2, [SEC_FUNCTION] = 3, [SEC_TABLE] = 4,
    [SEC_MEMORY] = 5,  [SEC_TAG] = 6,    [SEC_GLOBAL] = 7,   [SEC_EXPORT] = 8,
    [SEC_START] = 9,   [SEC_ELEMENT] = 10, [SEC_DATACOUNT] = 11, [SEC_CODE] = 12,
    [SEC_DATA] = 13,
};

/*
 * A cursor over untrusted bytes. Every read checks against `end`, the end of
 * the region being decoded (the current section, or the whole module), so a
 * lying count or size can at worst produce an error, never an overread.
 */
typedef struct rd {
    const uint8_t *buf;
    size_t len; /* of the whole module */
    size_t pos; /* absolute offset of the next byte, used in messages */
    size_t end; /* absolute end of the current region */
    kiln_err *err;
} rd;

static int fail(rd *r, int code, size_t at, const char *fmt, ...) KILN_PRINTF(4, 5);

/* Format "wasm reader: <cause> at offset N; <advice>" into r->err. */
static int fail(rd *r, int code, size_t at, const char *fmt, ...)
{
    char cause[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    const char *advice;
    switch (code) {
    case KILN_EUNSUPPORTED:
        advice = "Kiln compiles with wasm2c 1.0.32, which cannot translate this feature; "
                 "rebuild the module without it";
        break;
    case KILN_ELIMIT:
        advice = "Kiln refuses modules this large; split or simplify the module";
        break;
    case KILN_ENOMEM:
        advice = "free memory or retry later";
        break;
    default:
        advice = "the module is truncated, corrupt or not a WebAssembly binary; "
                 "check it with wasm-validate";
        break;
    }
    return kiln_err_set(r->err, code, "wasm reader: %s at offset %zu; %s", cause, at, advice);
}

static int oom(rd *r)
{
    return fail(r, KILN_ENOMEM, r->pos, "out of memory while decoding the module");
}

static size_t left(const rd *r)
{
    return r->end - r->pos;
}

static int rd_byte(rd *r, uint8_t *out, const char *what)
{
    *out = 0; /* defined even on failure, so callers' error paths are too */
    if (r->pos >= r->end)
        return fail(r, KILN_EMODULE, r->pos, "unexpected end of %s while reading %s",
                    r->end == r->len ? "module" : "section", what);
    *out = r->buf[r->pos++];
    return KILN_OK;
}

static int rd_skip(rd *r, size_t n, const char *what)
{
    if (n > left(r))
        return fail(r, KILN_EMODULE, r->pos, "%s needs %zu bytes but only %zu remain", what, n,
                    left(r));
    r->pos += n;
    return KILN_OK;
}

/* Unsigned LEB128 of at most 32 bits: at most 5 bytes, and the unused high
 * bits of the fifth byte must be zero (the spec calls anything else
 * malformed, and accepting it would let two decoders disagree). */
static int rd_u32(rd *r, uint32_t *out, const char *what)
{
    size_t at = r->pos;
    uint32_t v = 0;
    *out = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t b;
        int rc = rd_byte(r, &b, what);
        if (rc != KILN_OK)
            return rc;
        if (i == 4 && (b & 0xF0) != 0)
            return fail(r, KILN_EMODULE, at, "integer too large in LEB128 %s", what);
        v |= (uint32_t)(b & 0x7F) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = v;
            return KILN_OK;
        }
    }
    return fail(r, KILN_EMODULE, at, "LEB128 %s longer than 5 bytes", what); /* unreachable */
}

/* Skip a signed LEB128 of `bits` (32 or 64) bits, checking that the final
 * byte's unused bits are a sign extension of the last used bit. */
static int rd_skip_sleb(rd *r, int bits, const char *what)
{
    size_t at = r->pos;
    int max = (bits + 6) / 7;
    for (int i = 0; i < max; i++) {
        uint8_t b;
        int rc = rd_byte(r, &b, what);
        if (rc != KILN_OK)
            return rc;
        if (i == max - 1) {
            int used = bits - 7 * i; /* value bits carried by this byte */
            uint8_t unused_mask = (uint8_t)(0x7F & ~((1u << used) - 1));
            uint8_t sign = (b >> (used - 1)) & 1;
            if ((b & 0x80) != 0 || (b & unused_mask) != (sign ? unused_mask : 0))
                return fail(r, KILN_EMODULE, at, "integer too large in LEB128 %s", what);
            return KILN_OK;
        }
        if ((b & 0x80) == 0)
            return KILN_OK;
    }
    return KILN_OK;
}

/*
 * Read a vector count and bound it: each element takes at least
 * `min_entry_bytes` bytes, so a count the remaining region cannot hold is
 * malformed. This is what keeps allocations proportional to the input.
 */
static int rd_count(rd *r, uint32_t *out, uint32_t limit, size_t min_entry_bytes,
                    const char *what)
{
    size_t at = r->pos;
    int rc = rd_u32(r, out, what);
    if (rc != KILN_OK)
        return rc;
    if ((uint64_t)*out * min_entry_bytes > left(r))
        return fail(r, KILN_EMODULE, at, "%s count %u exceeds the %zu bytes left in the section",
                    what, (unsigned)*out, left(r));
    if (*out > limit)
        return fail(r, KILN_ELIMIT, at, "%s count %u is over Kiln's limit of %u", what,
                    (unsigned)*out, (unsigned)limit);
    return KILN_OK;
}


/*
 * Read a name: length, bytes, strict UTF-8, at most `max` bytes. On success
 * *ptr points into the buffer (not NUL-terminated).
 */
static int rd_name_ref(rd *r, const char *what, uint32_t max, const uint8_t **ptr,
                       uint32_t *len)
{
    size_t at = r->pos;
    int rc = rd_u32(r, len, what);
    if (rc != KILN_OK)
        return rc;
    if (*len > left(r))
        return fail(r, KILN_EMODULE, at, "%s length %u exceeds the %zu bytes left", what,
                    (unsigned)*len, left(r));
    size_t bad = utf8_bad_at(r->buf + r->pos, *len);
    if (bad != *len)
        return fail(r, KILN_EMODULE, r->pos + bad, "malformed UTF-8 in %s", what);
    if (*len > max)
        return fail(r, KILN_ELIMIT, at, "%s is %u bytes long, over Kiln's limit of %u bytes",
                    what, (unsigned)*len, (unsigned)max);
    *ptr = r->buf + r->pos;
    r->pos += *len;
    return KILN_OK;
}

/* Read a name into a fresh NUL-terminated copy (it may also contain NULs). */
static int rd_name(rd *r, const char *what, char **out, uint32_t *len)
{
    const uint8_t *p;
    int rc = rd_name_ref(r, what, WR_MAX_NAME, &p, len);
    if (rc != KILN_OK)
        return rc;
    *out = kiln_strndup((const char *)p, *len);
    return *out == NULL ? oom(r) : KILN_OK;
}

/* Features the binary format can express but wasm2c 1.0.32 cannot compile;
 * naming them beats the misleading errors later tools would give. */
static int unsupported_type(rd *r, size_t at, uint8_t b)
{
    if (b == 0x7B)
        return fail(r, KILN_EUNSUPPORTED, at, "unsupported feature SIMD (v128) in a value type");
    if (b == 0x63 || b == 0x64 || (b >= 0x69 && b <= 0x6E) || (b >= 0x71 && b <= 0x74))
        return fail(r, KILN_EUNSUPPORTED, at,
                    "unsupported feature GC / typed function references (type 0x%02x)", b);
    return fail(r, KILN_EMODULE, at, "invalid value type 0x%02x", b);
}

static int rd_reftype(rd *r, char *out)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "reference type");
    if (rc != KILN_OK)
        return rc;
    if (b == 0x70)
        *out = KILN_T_FUNCREF;
    else if (b == 0x6F)
        *out = KILN_T_EXTERNREF;
    else
        return unsupported_type(r, at, b);
    return KILN_OK;
}

static int rd_valtype(rd *r, char *out)
{
    size_t at = r->pos;
    uint8_t b;
    int rc = rd_byte(r, &b, "value type");
    if (rc != KILN_OK)
        return rc;
    switch (b) {
    case 0x7F: *out = KILN_T_I32; return KILN_OK;
    case 0x7E: *out = KILN_T_I64; return KILN_OK;
    case 0x7D: *out = KILN_T_F32; return KILN_OK;
    case 0x7C: *out = KILN_T_F64; return KILN_OK;
    case 0x70: *out = KILN_T_FUNCREF; return KILN_OK;
    case 0x6F: *out = KILN_T_EXTERNREF; return KILN_OK;
    default: return unsupported_type(r, at, b);
    }
}

/* Limits of a memory (is_memory) or table. Flag bit 0 = has maximum,
 * bit 1 = shared (threads), bit 2 = 64-bit index (memory64). */
static int rd_limits(rd *r, bool is_memory, wr_limits *l)
{
    size_t at = r->pos;
    uint8_t flags;
    int rc = rd_byte(r, &flags, "limits flags");
    if (rc != KILN_OK)
        return rc;
    if (flags > 0x07 || (!is_memory && (flags & 0x02)))
        return fail(r, KILN_EMODULE, at, "invalid %s limits flags 0x%02x",
                    is_memory ? "memory" : "table", flags);
    if (flags & 0x02)
        return fail(r, KILN_EUNSUPPORTED, at, "unsupported feature threads (shared memory)");
    if (flags & 0x04)
        return fail(r, KILN_EUNSUPPORTED, at, "unsupported feature memory64 (64-bit %s)",
                    is_memory ? "memory" : "table");
    uint32_t v;
    rc = rd_u32(r, &v, "limits minimum");
    if (rc != KILN_OK)
        return rc;
    l->min = v;
    l->has_max = (flags & 0x01) != 0;
    if (l->has_max) {
        rc = rd_u32(r, &v, "limits maximum");
        if (rc != KILN_OK)
            return rc;
        l->max = v;
    }
    return KILN_OK;
}

static int rd_globaltype(rd *r, wr_global *g)
{
    int rc = rd_valtype(r, &g->type);
    if (rc != KILN_OK)
        return rc;
    size_t at = r->pos;
    uint8_t m;
    rc = rd_byte(r, &m, "global mutability");
    if (rc != KILN_OK)
        return rc;
    if (m > 1)
        return fail(r, KILN_EMODULE, at, "invalid global mutability 0x%02x", m);
    g->mut = m == 1;
    return KILN_OK;
}

/*
 * Skip a constant expression up to and including its `end` (0x0B). Each
 * opcode's immediates are decoded, because a 0x0B byte inside an immediate
 * (i32.const 11, an f64 bit pattern) must not end the scan.
 */
static int skip_const_expr(rd *r)
{
    for (;;) {
        size_t at = r->pos;
        uint8_t op;
        uint32_t idx;
        char ref;
        int rc = rd_byte(r, &op, "constant expression");
        if (rc != KILN_OK)
            return rc;
        switch (op) {
        case 0x0B: /* end */
            return KILN_OK;
        case 0x41: /* i32.const */
            rc = rd_skip_sleb(r, 32, "i32.const immediate");
            break;
        case 0x42: /* i64.const */
            rc = rd_skip_sleb(r, 64, "i64.const immediate");
            break;
        case 0x43: /* f32.const */
            rc = rd_skip(r, 4, "f32.const immediate");
            break;
        case 0x44: /* f64.const */
            rc = rd_skip(r, 8, "f64.const immediate");
            break;
        case 0x23: /* global.get */
            rc = rd_u32(r, &idx, "global.get index");
            break;
        case 0xD0: /* ref.null */
            rc = rd_reftype(r, &ref);
            break;
        case 0xD2: /* ref.func */
            rc = rd_u32(r, &idx, "ref.func index");
            break;
        case 0x6A: case 0x6B: case 0x6C: /* i32.add/sub/mul (extended-const) */
        case 0x7C: case 0x7D: case 0x7E: /* i64.add/sub/mul (extended-const) */
            break;
        case 0xFD:
            return fail(r, KILN_EUNSUPPORTED, at, "unsupported feature SIMD (v128.const)");
        default:
            return fail(r, KILN_EMODULE, at,
                        "opcode 0x%02x is not allowed in a constant expression", op);
        }
        if (rc != KILN_OK)
            return rc;
    }
}

/* Grow an array of `n` elements to hold `add` more; *p is untouched on failure. */
static int grow(rd *r, void **p, uint32_t n, uint32_t add, size_t elem)
{
    void *q = kiln_realloc(*p, ((size_t)n + add) * elem);
    if (q == NULL)
        return oom(r);
    memset((char *)q + (size_t)n * elem, 0, (size_t)add * elem);
    *p = q;
    return KILN_OK;
}

/* Check that adding `add` entities keeps an index space within `limit`. */
static int check_space(rd *r, size_t at, uint32_t have, uint32_t add, uint32_t limit,
                       const char *what)
{
    if ((uint64_t)have + add > limit)
        return fail(r, KILN_ELIMIT, at, "module has more than %u %s, over Kiln's limit",
                    (unsigned)limit, what);
    return KILN_OK;
}

static void format_limits(char *dst, size_t size, const char *prefix, const wr_limits *l)
{
    if (l->has_max)
        snprintf(dst, size, "%s %llu %llu", prefix, (unsigned long long)l->min,
                 (unsigned long long)l->max);
    else
        snprintf(dst, size, "%s %llu", prefix, (unsigned long long)l->min);
}

static void format_table(char *dst, size_t size, const wr_limits *l)
{
    format_limits(dst, size, l->ref == KILN_T_EXTERNREF ? "externref" : "funcref", l);
}

static void format_global(char *dst, size_t size, const wr_global *g)
{
    snprintf(dst, size, "%s%c", g->mut ? "mut " : "", g->type);
}

/* ---- sections --------------------------------------------------------- */

static int parse_types(rd *r, kiln_wasm_info *info)
{
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_TYPES, 3, "type");
    if (rc != KILN_OK)
        return rc;
    info->types = kiln_calloc(count, sizeof(char *));
    if (info->types == NULL)
        return oom(r);
    for (uint32_t i = 0; i < count; i++) {
        size_t at = r->pos;
        uint8_t form;
        rc = rd_byte(r, &form, "type form");
        if (rc != KILN_OK)
            return rc;
        if (form == 0x4E || form == 0x4F || form == 0x50 || form == 0x5E || form == 0x5F)
            return fail(r, KILN_EUNSUPPORTED, at,
                        "unsupported feature GC (rec/sub/struct/array type)");
        if (form != 0x60)
            return fail(r, KILN_EMODULE, at, "type %u has form 0x%02x, expected 0x60 (func)",
                        (unsigned)i, form);
        char sig[WR_MAX_TYPE];
        size_t n = 0;
        for (int part = 0; part < 2; part++) {
            uint32_t k;
            size_t cat = r->pos;
            rc = rd_count(r, &k, UINT32_MAX, 1, part == 0 ? "parameter" : "result");
            if (rc != KILN_OK)
                return rc;
            /* Keep room for the NUL and, after the parameters, the '>'. */
            size_t room = sizeof(sig) - 1 - n - (part == 0 ? 1 : 0);
            if (k > room)
                return fail(r, KILN_ELIMIT, cat,
                            "type %u has more than %zu parameters and results, over Kiln's limit",
                            (unsigned)i, sizeof(sig) - 2);
            for (uint32_t j = 0; j < k; j++) {
                rc = rd_valtype(r, &sig[n]);
                if (rc != KILN_OK)
                    return rc;
                n++;
            }
            if (part == 0)
                sig[n++] = '>';
        }
        sig[n] = '\0';
        info->types[i] = kiln_strndup(sig, n);
        if (info->types[i] == NULL)
            return oom(r);
        info->n_types = i + 1;
    }
    return KILN_OK;
}

static int check_type_index(rd *r, const kiln_wasm_info *info, size_t at, uint32_t idx,
                            const char *what)
{
    if (idx >= info->n_types)
        return fail(r, KILN_EMODULE, at, "%s uses type index %u but the module has %u types",
                    what, (unsigned)idx, (unsigned)info->n_types);
    return KILN_OK;
}

typedef struct name_key {
    const char *s;
    uint32_t len;
    uint32_t index;
} name_key;

/* Order by bytes, then by position, so equal names sort in input order. */
static int name_key_cmp(const void *a, const void *b)
{
    const name_key *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Number distinct import module names in order of first appearance. Sorting
 * keeps this O(n log n): a hostile module with 100k distinct names must not
 * turn a pairwise comparison into a denial of service.
 */
static int group_import_modules(rd *r, kiln_wasm_info *info)
{
    uint32_t n = info->n_imports;
    if (n == 0)
        return KILN_OK;
    name_key *keys = kiln_calloc(n, sizeof(*keys));
    uint32_t *leader = kiln_calloc(n, sizeof(*leader));
    if (keys == NULL || leader == NULL) {
        kiln_free(keys);
        kiln_free(leader);
        return oom(r);
    }
    for (uint32_t i = 0; i < n; i++)
        keys[i] = (name_key){info->imports[i].module, info->imports[i].module_len, i};
    qsort(keys, n, sizeof(*keys), name_key_cmp);
    /* The first key of each run of equal names is that name's first appearance. */
    uint32_t lead = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (k == 0 || keys[k].len != keys[k - 1].len ||
            memcmp(keys[k].s, keys[k - 1].s, keys[k].len) != 0)
            lead = keys[k].index;
        leader[keys[k].index] = lead;
    }
    uint32_t groups = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (leader[i] == i)
            info->imports[i].module_group = groups++;
        else
            info->imports[i].module_group = info->imports[leader[i]].module_group;
    }
    info->n_import_modules = groups;
    kiln_free(keys);
    kiln_free(leader);
    return KILN_OK;
}

static int parse_imports(rd *r, kiln_wasm_info *info)
{
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_IMPORTS, 4, "import");
    if (rc != KILN_OK)
        return rc;
    info->imports = kiln_calloc(count, sizeof(wr_extern));
    if (info->imports == NULL)
        return oom(r);
    info->n_imports = count; /* entries are zeroed, so a partial array frees cleanly */
    for (uint32_t i = 0; i < count; i++) {
        wr_extern *e = &info->imports[i];
        rc = rd_name(r, "import module name", &e->module, &e->module_len);
        if (rc == KILN_OK)
            rc = rd_name(r, "import field name", &e->name, &e->name_len);
        size_t at = r->pos;
        uint8_t kind;
        if (rc == KILN_OK)
            rc = rd_byte(r, &kind, "import kind");
        if (rc != KILN_OK)
            return rc;
        switch (kind) {
        case 0x00: { /* func */
            size_t tat = r->pos;
            e->kind = KILN_EXTERN_FUNC;
            rc = rd_u32(r, &e->index, "import type index");
            if (rc == KILN_OK)
                rc = check_type_index(r, info, tat, e->index, "function import");
            if (rc == KILN_OK)
                rc = check_space(r, at, info->n_funcs, 1, WR_MAX_FUNCS, "functions");
            if (rc == KILN_OK)
                rc = grow(r, (void **)&info->func_types, info->n_funcs, 1, sizeof(uint32_t));
            if (rc != KILN_OK)
                return rc;
            info->func_types[info->n_funcs++] = e->index;
            info->n_func_imports++;
            snprintf(e->type, sizeof(e->type), "%s", info->types[e->index]);
            break;
        }
        case 0x01: { /* table */
            wr_limits l = {.imported = true};
            e->kind = KILN_EXTERN_TABLE;
            rc = rd_reftype(r, &l.ref);
            if (rc == KILN_OK)
                rc = rd_limits(r, false, &l);
            if (rc == KILN_OK)
                rc = check_space(r, at, info->n_tables, 1, WR_MAX_TABLES, "tables");
            if (rc == KILN_OK)
                rc = grow(r, (void **)&info->tables, info->n_tables, 1, sizeof(wr_limits));
            if (rc != KILN_OK)
                return rc;
            info->tables[info->n_tables++] = l;
            info->n_table_imports++;
            format_table(e->type, sizeof(e->type), &l);
            break;
        }
        case 0x02: { /* memory */
            wr_limits l = {.imported = true};
            e->kind = KILN_EXTERN_MEMORY;
            rc = rd_limits(r, true, &l);
            if (rc == KILN_OK)
                rc = check_space(r, at, info->n_memories, 1, WR_MAX_MEMORIES, "memories");
            if (rc == KILN_OK)
                rc = grow(r, (void **)&info->memories, info->n_memories, 1, sizeof(wr_limits));
            if (rc != KILN_OK)
                return rc;
            info->memories[info->n_memories++] = l;
            info->n_memory_imports++;
            format_limits(e->type, sizeof(e->type), "memory", &l);
            break;
        }
        case 0x03: { /* global */
            wr_global g = {.imported = true};
            e->kind = KILN_EXTERN_GLOBAL;
            rc = rd_globaltype(r, &g);
            if (rc == KILN_OK)
                rc = check_space(r, at, info->n_globals, 1, WR_MAX_GLOBALS, "globals");
            if (rc == KILN_OK)
                rc = grow(r, (void **)&info->globals, info->n_globals, 1, sizeof(wr_global));
            if (rc != KILN_OK)
                return rc;
            info->globals[info->n_globals++] = g;
            info->n_global_imports++;
            format_global(e->type, sizeof(e->type), &g);
            break;
        }
        case 0x04: { /* tag (exceptions): attribute 0 = exception, then its type */
            size_t aat = r->pos, tat;
            uint8_t attr;
            e->kind = KILN_EXTERN_TAG;
            rc = rd_byte(r, &attr, "tag attribute");
            if (rc == KILN_OK && attr != 0)
                rc = fail(r, KILN_EMODULE, aat, "invalid tag attribute 0x%02x", attr);
            tat = r->pos;
            if (rc == KILN_OK)
                rc = rd_u32(r, &e->index, "tag type index");
            if (rc == KILN_OK)
                rc = check_type_index(r, info, tat, e->index, "tag import");
            if (rc == KILN_OK)
                rc = check_space(r, at, info->n_tags, 1, WR_MAX_TAGS, "tags");
            if (rc == KILN_OK)
                rc = grow(r, (void **)&info->tag_types, info->n_tags, 1, sizeof(uint32_t));
            if (rc != KILN_OK)
                return rc;
            info->tag_types[info->n_tags++] = e->index;
            info->n_tag_imports++;
            snprintf(e->type, sizeof(e->type), "%s", info->types[e->index]);
            break;
        }
        default:
            return fail(r, KILN_EMODULE, at, "invalid import kind 0x%02x", kind);
        }
    }
    return group_import_modules(r, info);
}

static int parse_functions(rd *r, kiln_wasm_info *info, uint32_t *defined)
{
    size_t at = r->pos;
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_FUNCS, 1, "function");
    if (rc == KILN_OK)
        rc = check_space(r, at, info->n_funcs, count, WR_MAX_FUNCS, "functions");
    if (rc == KILN_OK)
        rc = grow(r, (void **)&info->func_types, info->n_funcs, count, sizeof(uint32_t));
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        size_t tat = r->pos;
        uint32_t t;
        rc = rd_u32(r, &t, "function type index");
        if (rc == KILN_OK)
            rc = check_type_index(r, info, tat, t, "function");
        if (rc != KILN_OK)
            return rc;
        info->func_types[info->n_funcs++] = t;
    }
    *defined = count;
    return KILN_OK;
}

static int parse_tables(rd *r, kiln_wasm_info *info)
{
    size_t at = r->pos;
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_TABLES, 2, "table");
    if (rc == KILN_OK)
        rc = check_space(r, at, info->n_tables, count, WR_MAX_TABLES, "tables");
    if (rc == KILN_OK)
        rc = grow(r, (void **)&info->tables, info->n_tables, count, sizeof(wr_limits));
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        wr_limits l = {0};
        rc = rd_reftype(r, &l.ref);
        if (rc == KILN_OK)
            rc = rd_limits(r, false, &l);
        if (rc != KILN_OK)
            return rc;
        info->tables[info->n_tables++] = l;
    }
    return KILN_OK;
}

static int parse_memories(rd *r, kiln_wasm_info *info)
{
    size_t at = r->pos;
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_MEMORIES, 2, "memory");
    if (rc == KILN_OK)
        rc = check_space(r, at, info->n_memories, count, WR_MAX_MEMORIES, "memories");
    if (rc == KILN_OK)
        rc = grow(r, (void **)&info->memories, info->n_memories, count, sizeof(wr_limits));
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        wr_limits l = {0};
        rc = rd_limits(r, true, &l);
        if (rc != KILN_OK)
            return rc;
        info->memories[info->n_memories++] = l;
    }
    return KILN_OK;
}

static int parse_globals(rd *r, kiln_wasm_info *info)
{
    size_t at = r->pos;
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_GLOBALS, 3, "global");
    if (rc == KILN_OK)
        rc = check_space(r, at, info->n_globals, count, WR_MAX_GLOBALS, "globals");
    if (rc == KILN_OK)
        rc = grow(r, (void **)&info->globals, info->n_globals, count, sizeof(wr_global));
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        wr_global g = {0};
        rc = rd_globaltype(r, &g);
        if (rc == KILN_OK)
            rc = skip_const_expr(r);
        if (rc != KILN_OK)
            return rc;
        info->globals[info->n_globals++] = g;
    }
    return KILN_OK;
}

static int parse_tags(rd *r, kiln_wasm_info *info)
{
    size_t at = r->pos;
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_TAGS, 2, "tag");
    if (rc == KILN_OK)
        rc = check_space(r, at, info->n_tags, count, WR_MAX_TAGS, "tags");
    if (rc == KILN_OK)
        rc = grow(r, (void **)&info->tag_types, info->n_tags, count, sizeof(uint32_t));
    if (rc != KILN_OK)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        size_t aat = r->pos, tat;
        uint8_t attr;
        uint32_t t;
        rc = rd_byte(r, &attr, "tag attribute");
        if (rc == KILN_OK && attr != 0)
            rc = fail(r, KILN_EMODULE, aat, "invalid tag attribute 0x%02x", attr);
        tat = r->pos;
        if (rc == KILN_OK)
            rc = rd_u32(r, &t, "tag type index");
        if (rc == KILN_OK)
            rc = check_type_index(r, info, tat, t, "tag");
        if (rc != KILN_OK)
            return rc;
        info->tag_types[info->n_tags++] = t;
    }
    return KILN_OK;
}

/*
 * Export names must be unique. wasm-validate would say so, but it only ever
 * sees the rewritten module, whose names are e0, e1, ..., so the check has
 * to happen here.
 */
static int check_unique_exports(rd *r, kiln_wasm_info *info, size_t at)
{
    uint32_t n = info->n_exports;
    if (n < 2)
        return KILN_OK;
    name_key *keys = kiln_calloc(n, sizeof(*keys));
    if (keys == NULL)
        return oom(r);
    for (uint32_t i = 0; i < n; i++)
        keys[i] = (name_key){info->exports[i].name, info->exports[i].name_len, i};
    qsort(keys, n, sizeof(*keys), name_key_cmp);
    int rc = KILN_OK;
    for (uint32_t k = 1; k < n && rc == KILN_OK; k++) {
        if (keys[k].len == keys[k - 1].len && memcmp(keys[k].s, keys[k - 1].s, keys[k].len) == 0) {
            char shown[128];
            kiln_wasm_name_display(keys[k].s, keys[k].len, shown, sizeof(shown));
            rc = fail(r, KILN_EMODULE, at, "duplicate export name \"%s\" (exports %u and %u)",
                      shown, (unsigned)keys[k - 1].index, (unsigned)keys[k].index);
        }
    }
    kiln_free(keys);
    return rc;
}

static int parse_exports(rd *r, kiln_wasm_info *info)
{
    size_t sec_at = r->pos;
    uint32_t count;
    int rc = rd_count(r, &count, WR_MAX_EXPORTS, 3, "export");
    if (rc != KILN_OK)
        return rc;
    info->exports = kiln_calloc(count, sizeof(wr_extern));
    if (info->exports == NULL)
        return oom(r);
    info->n_exports = count;
    for (uint32_t i = 0; i < count; i++) {
        wr_extern *e = &info->exports[i];
        rc = rd_name(r, "export name", &e->name, &e->name_len);
        size_t at = r->pos;
        uint8_t kind;
        if (rc == KILN_OK)
            rc = rd_byte(r, &kind, "export kind");
        size_t iat = r->pos;
        if (rc == KILN_OK)
            rc = rd_u32(r, &e->index, "export index");
        if (rc != KILN_OK)
            return rc;
        uint32_t space;
        const char *what;
        switch (kind) {
        case 0x00: e->kind = KILN_EXTERN_FUNC; space = info->n_funcs; what = "function"; break;
        case 0x01: e->kind = KILN_EXTERN_TABLE; space = info->n_tables; what = "table"; break;
        case 0x02: e->kind = KILN_EXTERN_MEMORY; space = info->n_memories; what = "memory"; break;
        case 0x03: e->kind = KILN_EXTERN_GLOBAL; space = info->n_globals; what = "global"; break;
        case 0x04: e->kind = KILN_EXTERN_TAG; space = info->n_tags; what = "tag"; break;
        default: return fail(r, KILN_EMODULE, at, "invalid export kind 0x%02x", kind);
        }
        if (e->index >= space)
            return fail(r, KILN_EMODULE, iat, "export %u names %s %u but the module has %u",
                        (unsigned)i, what, (unsigned)e->index, (unsigned)space);
        switch (e->kind) {
        case KILN_EXTERN_FUNC:
            snprintf(e->type, sizeof(e->type), "%s", info->types[info->func_types[e->index]]);
            break;
        case KILN_EXTERN_TABLE:
            format_table(e->type, sizeof(e->type), &info->tables[e->index]);
            break;
        case KILN_EXTERN_MEMORY:
            format_limits(e->type, sizeof(e->type), "memory", &info->memories[e->index]);
            break;
        case KILN_EXTERN_GLOBAL:
            format_global(e->type, sizeof(e->type), &info->globals[e->index]);
            break;
        case KILN_EXTERN_TAG:
            snprintf(e->type, sizeof(e->type), "%s", info->types[info->tag_types[e->index]]);
            break;
        }
    }
    return check_unique_exports(r, info, sec_at);
}

static int parse_start(rd *r, kiln_wasm_info *info)
{
    size_t at = r->pos;
    int rc = rd_u32(r, &info->start_func, "start function index");
    if (rc != KILN_OK)
        return rc;
    if (info->start_func >= info->n_funcs)
        return fail(r, KILN_EMODULE, at, "start function %u does not exist (the module has %u)",
                    (unsigned)info->start_func, (unsigned)info->n_funcs);
    info->has_start = true;
    return KILN_OK;
}

static int parse_custom(rd *r)
{
    /* Custom sections are dropped by the rewrite, so only their name is
     * checked (the spec calls a bad one malformed); the payload is opaque. */
    const uint8_t *p;
    uint32_t n;
    int rc = rd_name_ref(r, "custom section name", UINT32_MAX, &p, &n);
    if (rc == KILN_OK)
        r->pos = r->end;
    return rc;
}

/* Walk magic, version and section headers, calling back nothing: shared by
 * parse and rewrite so both accept exactly the same framing. */
static int rd_header(rd *r)
{
    static const uint8_t magic[4] = {0x00, 0x61, 0x73, 0x6D};
    if (r->len < 8 || memcmp(r->buf, magic, 4) != 0)
        return fail(r, KILN_EMODULE, 0, "missing \\0asm magic (not a WebAssembly binary)");
    /* Components (layer 1) are read by src/component; this reader only sees
     * one when a component is used where a core module is required. */
    if (r->buf[6] == 0x01 && r->buf[7] == 0x00)
        return fail(r, KILN_EUNSUPPORTED, 4,
                    "unsupported feature component model (this is a component, not a core "
                    "module: `kiln inspect` shows its WIT world and `kiln call` calls its "
                    "exports)");
    if (r->buf[4] != 1 || r->buf[5] != 0 || r->buf[6] != 0 || r->buf[7] != 0)
        return fail(r, KILN_EMODULE, 4, "unknown binary version %02x %02x %02x %02x (expected 1)",
                    r->buf[4], r->buf[5], r->buf[6], r->buf[7]);
    r->pos = 8;
    r->end = r->len;
    return KILN_OK;
}

/* Read one section header; on success r->end is the section's end. */
static int rd_section(rd *r, uint8_t *id, int *last_rank)
{
    size_t at = r->pos;
    uint32_t size;
    r->end = r->len;
    int rc = rd_byte(r, id, "section id");
    if (rc == KILN_OK)
        rc = rd_u32(r, &size, "section size");
    if (rc != KILN_OK)
        return rc;
    if (*id > SEC_MAX_ID)
        return fail(r, KILN_EMODULE, at, "unknown section id %u", *id);
    if (size > left(r))
        return fail(r, KILN_EMODULE, at, "%s section claims %u bytes but only %zu remain",
                    section_names[*id], (unsigned)size, left(r));
    if (*id != SEC_CUSTOM) {
        if (section_rank[*id] <= *last_rank)
            return fail(r, KILN_EMODULE, at, "%s section is duplicated or out of order",
                        section_names[*id]);
        *last_rank = section_rank[*id];
    }
    r->end = r->pos + size;
    return KILN_OK;
}

/*
 * A body's size and its local declarations: every local becomes a C local in
 * the function's native frame, so their number bounds the frame a guest can
 * ask for (50,000 x 8 bytes, below the 1 MiB guard under each guest stack;
 * docs/internals/runtime.md). Instructions are wasm-validate's business.
 */
static int check_body(rd *r, uint32_t index)
{
    size_t at = r->pos;
    uint32_t size;
    int rc = rd_u32(r, &size, "body size");
    if (rc != KILN_OK)
        return rc;
    if (size > left(r))
        return fail(r, KILN_EMODULE, at, "function body %u claims %u bytes but only %zu remain",
                    (unsigned)index, (unsigned)size, left(r));
    if (size > WR_MAX_BODY)
        return fail(r, KILN_ELIMIT, at, "function body %u is %u bytes, over Kiln's limit of %u",
                    (unsigned)index, (unsigned)size, (unsigned)WR_MAX_BODY);
    size_t body_end = r->pos + size, outer_end = r->end;
    r->end = body_end;
    uint32_t groups;
    uint64_t locals = 0;
    rc = rd_count(r, &groups, WR_MAX_LOCALS, 2, "local declaration");
    for (uint32_t g = 0; rc == KILN_OK && g < groups; g++) {
        uint32_t n;
        uint8_t type;
        rc = rd_u32(r, &n, "local count");
        if (rc == KILN_OK)
            rc = rd_byte(r, &type, "local type");
        locals += n;
        if (rc == KILN_OK && locals > WR_MAX_LOCALS)
            rc = fail(r, KILN_ELIMIT, at, "function body %u declares more than %u locals, over "
                      "Kiln's limit (each is part of the function's native stack frame)",
                      (unsigned)index, (unsigned)WR_MAX_LOCALS);
    }
    r->end = outer_end;
    r->pos = body_end;
    return rc;
}

int kiln_wasm_parse(const uint8_t *buf, size_t len, kiln_wasm_info *info, kiln_err *err)
{
    rd r = {.buf = buf, .len = len, .err = err};
    memset(info, 0, sizeof(*info));
    if (buf == NULL && len != 0)
        return kiln_err_set(err, KILN_EINVAL, "wasm reader: NULL buffer; pass the module bytes");
    int rc = rd_header(&r);
    int last_rank = 0;
    uint32_t defined_funcs = 0, code_count = 0;
    bool have_funcs = false, have_code = false;
    while (rc == KILN_OK && r.pos < len) {
        uint8_t id;
        rc = rd_section(&r, &id, &last_rank);
        if (rc != KILN_OK)
            break;
        size_t sec_at = r.pos;
        switch (id) {
        case SEC_CUSTOM: rc = parse_custom(&r); break;
        case SEC_TYPE: rc = parse_types(&r, info); break;
        case SEC_IMPORT: rc = parse_imports(&r, info); break;
        case SEC_FUNCTION:
            have_funcs = true;
            rc = parse_functions(&r, info, &defined_funcs);
            break;
        case SEC_TABLE: rc = parse_tables(&r, info); break;
        case SEC_MEMORY: rc = parse_memories(&r, info); break;
        case SEC_GLOBAL: rc = parse_globals(&r, info); break;
        case SEC_EXPORT: rc = parse_exports(&r, info); break;
        case SEC_START: rc = parse_start(&r, info); break;
        case SEC_TAG: rc = parse_tags(&r, info); break;
        case SEC_CODE:
            /* Bodies are wasm-validate's business; the count must still
             * match the function section or indices would disagree. */
            have_code = true;
            info->code_size = (uint32_t)(r.end - r.pos);
            rc = rd_count(&r, &code_count, WR_MAX_FUNCS, 1, "code entry");
            if (rc == KILN_OK && code_count != defined_funcs)
                rc = fail(&r, KILN_EMODULE, sec_at,
                          "code section has %u bodies but the function section declares %u",
                          (unsigned)code_count, (unsigned)defined_funcs);
            for (uint32_t i = 0; rc == KILN_OK && i < code_count; i++)
                rc = check_body(&r, i);
            r.pos = r.end;
            break;
        default: /* element, data, datacount: only their framing matters here */
            r.pos = r.end;
            break;
        }
        if (rc == KILN_OK && r.pos != r.end)
            rc = fail(&r, KILN_EMODULE, r.pos, "%s section ends %zu bytes before its declared size",
                      section_names[id], r.end - r.pos);
        r.end = r.len;
    }
    if (rc == KILN_OK && have_funcs && defined_funcs > 0 && !have_code)
        rc = fail(&r, KILN_EMODULE, len, "function section declares %u functions but there is "
                  "no code section", (unsigned)defined_funcs);
    if (rc != KILN_OK)
        kiln_wasm_info_free(info);
    return rc;
}

static void free_externs(wr_extern *e, uint32_t n)
{
    for (uint32_t i = 0; e != NULL && i < n; i++) {
        kiln_free(e[i].module);
        kiln_free(e[i].name);
    }
    kiln_free(e);
}

void kiln_wasm_info_free(kiln_wasm_info *info)
{
    if (info == NULL)
        return;
    for (uint32_t i = 0; info->types != NULL && i < info->n_types; i++)
        kiln_free(info->types[i]);
    kiln_free(info->types);
    free_externs(info->imports, info->n_imports);
    free_externs(info->exports, info->n_exports);
    kiln_free(info->func_types);
    kiln_free(info->memories);
    kiln_free(info->tables);
    kiln_free(info->globals);
    kiln_free(info->tag_types);
    memset(info, 0, sizeof(*info));
}

/* ---- rewrite ---------------------------------------------------------- */

/* Growable output buffer; the first failed allocation sticks. */
typedef struct obuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} obuf;

static void ob_put(obuf *o, const void *src, size_t n)
{
    if (o->oom || n == 0)
        return;
    if (n > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap - o->len < n) {
            if (cap > SIZE_MAX / 2) {
                o->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = kiln_realloc(o->p, cap);
        if (q == NULL) {
            o->oom = true;
            return;
        }
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

static void ob_u32(obuf *o, uint32_t v)
{
    uint8_t b[5];
    size_t n = 0;
    do {
        b[n] = v & 0x7F;
        v >>= 7;
        if (v != 0)
            b[n] |= 0x80;
        n++;
    } while (v != 0);
    ob_put(o, b, n);
}

/* A synthetic name: `prefix` followed by the decimal number. */
static void ob_synthetic(obuf *o, char prefix, uint32_t n)
{
    char s[16];
    int k = snprintf(s, sizeof(s), "%c%u", prefix, (unsigned)n);
    ob_u32(o, (uint32_t)k);
    ob_put(o, s, (size_t)k);
}

static void ob_section(obuf *o, uint8_t id, const uint8_t *payload, size_t n)
{
    ob_put(o, &id, 1);
    ob_u32(o, (uint32_t)n);
    ob_put(o, payload, n);
}

/* Skip an import descriptor (kind byte included); parse already checked it. */
static int skip_import_desc(rd *r)
{
    uint8_t kind, b;
    uint32_t v;
    wr_limits l;
    wr_global g;
    int rc = rd_byte(r, &kind, "import kind");
    if (rc != KILN_OK)
        return rc;
    switch (kind) {
    case 0x00: return rd_u32(r, &v, "import type index");
    case 0x01:
        rc = rd_reftype(r, &l.ref);
        return rc == KILN_OK ? rd_limits(r, false, &l) : rc;
    case 0x02: return rd_limits(r, true, &l);
    case 0x03: return rd_globaltype(r, &g);
    case 0x04:
        rc = rd_byte(r, &b, "tag attribute");
        return rc == KILN_OK ? rd_u32(r, &v, "tag type index") : rc;
    default: return fail(r, KILN_EMODULE, r->pos - 1, "invalid import kind 0x%02x", kind);
    }
}

static int mismatch(rd *r, const char *what)
{
    return kiln_err_set(r->err, KILN_EINVAL,
                        "wasm reader: the parsed info does not match the bytes being rewritten "
                        "(%s); pass the buffer given to kiln_wasm_parse", what);
}

static int rewrite_imports(rd *r, const kiln_wasm_info *info, obuf *sec)
{
    uint32_t count;
    int rc = rd_u32(r, &count, "import count");
    if (rc != KILN_OK)
        return rc;
    if (count != info->n_imports)
        return mismatch(r, "import count");
    ob_u32(sec, count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p;
        uint32_t n;
        rc = rd_name_ref(r, "import module name", WR_MAX_NAME, &p, &n);
        if (rc == KILN_OK)
            rc = rd_name_ref(r, "import field name", WR_MAX_NAME, &p, &n);
        size_t desc = r->pos;
        if (rc == KILN_OK)
            rc = skip_import_desc(r);
        if (rc != KILN_OK)
            return rc;
        if (info->imports[i].module_group >= info->n_import_modules)
            return mismatch(r, "import module group");
        ob_synthetic(sec, 'm', info->imports[i].module_group);
        ob_synthetic(sec, 'f', i);
        ob_put(sec, r->buf + desc, r->pos - desc);
    }
    return KILN_OK;
}

static int rewrite_exports(rd *r, const kiln_wasm_info *info, obuf *sec)
{
    uint32_t count;
    int rc = rd_u32(r, &count, "export count");
    if (rc != KILN_OK)
        return rc;
    if (count != info->n_exports)
        return mismatch(r, "export count");
    ob_u32(sec, count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p;
        uint32_t n, idx;
        uint8_t kind;
        rc = rd_name_ref(r, "export name", WR_MAX_NAME, &p, &n);
        size_t desc = r->pos;
        if (rc == KILN_OK)
            rc = rd_byte(r, &kind, "export kind");
        if (rc == KILN_OK)
            rc = rd_u32(r, &idx, "export index");
        if (rc != KILN_OK)
            return rc;
        ob_synthetic(sec, 'e', i);
        ob_put(sec, r->buf + desc, r->pos - desc);
    }
    return KILN_OK;
}

int kiln_wasm_rewrite(const kiln_wasm_info *info, const uint8_t *buf, size_t len, uint8_t **out,
                      size_t *out_len, kiln_err *err)
{
    rd r = {.buf = buf, .len = len, .err = err};
    obuf o = {0}, sec = {0};
    *out = NULL;
    *out_len = 0;
    if (info == NULL || buf == NULL)
        return kiln_err_set(err, KILN_EINVAL, "wasm reader: rewrite needs the module bytes and "
                            "the info kiln_wasm_parse produced from them");
    int rc = rd_header(&r);
    int last_rank = 0;
    if (rc == KILN_OK)
        ob_put(&o, buf, 8);
    while (rc == KILN_OK && r.pos < len) {
        uint8_t id;
        rc = rd_section(&r, &id, &last_rank);
        if (rc != KILN_OK)
            break;
        size_t start = r.pos;
        sec.len = 0;
        if (id == SEC_CUSTOM) {
            /* Dropped: names, producers and debug info are guest text wasm2c
             * would otherwise read (the name section names the C symbols). */
            r.pos = r.end;
            continue;
        } else if (id == SEC_IMPORT) {
            rc = rewrite_imports(&r, info, &sec);
        } else if (id == SEC_EXPORT) {
            rc = rewrite_exports(&r, info, &sec);
        } else {
            r.pos = r.end;
            ob_section(&o, id, buf + start, r.end - start);
            continue;
        }
        if (rc == KILN_OK && r.pos != r.end)
            rc = fail(&r, KILN_EMODULE, r.pos, "%s section ends %zu bytes before its declared size",
                      section_names[id], r.end - r.pos);
        if (rc == KILN_OK && sec.len > UINT32_MAX)
            rc = fail(&r, KILN_ELIMIT, start, "rewritten %s section is over 4 GiB",
                      section_names[id]);
        if (rc == KILN_OK)
            ob_section(&o, id, sec.p, sec.len);
    }
    kiln_free(sec.p);
    if (rc == KILN_OK && (o.oom || sec.oom))
        rc = oom(&r);
    if (rc != KILN_OK) {
        kiln_free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return KILN_OK;
}

/* Bytes needed to show byte c: itself if printable ASCII, else "\xHH". */
static size_t display_width(unsigned char c)
{
    return (c >= 0x20 && c <= 0x7E) ? 1 : 4;
}

void kiln_wasm_name_display(const char *name, size_t len, char *dst, size_t dst_size)
{
    static const char hex[] = "0123456789abcdef";
    if (dst_size == 0)
        return;
    size_t total = 0;
    for (size_t i = 0; i < len; i++)
        total += display_width((unsigned char)name[i]);
    /* When the whole text does not fit, stop early enough to end in "..."
     * so a reader can tell a cut name from a short one. */
    size_t room = dst_size - 1;
    bool cut = total > room;
    size_t limit = cut ? (room >= 3 ? room - 3 : 0) : room;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        size_t k = display_width(c);
        if (n + k > limit)
            break;
        if (k == 1) {
            dst[n] = (char)c;
        } else {
            dst[n] = '\\';
            dst[n + 1] = 'x';
            dst[n + 2] = hex[c >> 4];
            dst[n + 3] = hex[c & 0xF];
        }
        n += k;
    }
    if (cut) {
        size_t dots = room - n < 3 ? room - n : 3;
        memset(dst + n, '.', dots);
        n += dots;
    }
    dst[n] = '\0';
}
