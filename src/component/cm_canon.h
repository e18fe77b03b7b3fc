/*
 * cm_canon.h - the Canonical ABI (CanonicalABI.md): how component-level
 * values are laid out in a guest's linear memory and flattened into core
 * parameters and results, in both directions.
 *
 * Contract. The host side of `canon lift`: cm_lower_params() turns host
 * values into the core arguments of a lifted export (flattened up to
 * CM_MAX_FLAT_PARAMS, else spilled into guest memory obtained through
 * realloc), and cm_lift_results() turns the core results back into host
 * values (one flat result, else a pointer to them in guest memory). The
 * building blocks (cm_load, cm_store, cm_lift_flat, cm_lower_flat, sizes and
 * flattening) are exported for tests and for the future `canon lower` side.
 *
 * Guest memory is `cx->mem` / `cx->mem_len`, re-read after every realloc
 * (memory may grow). Every load and store is bounds-checked and every trap
 * condition of the spec (misaligned or out-of-bounds pointers, invalid UTF-8
 * or UTF-16, a char that is not a Unicode scalar value, out-of-range
 * discriminants, a realloc result that is misaligned or out of bounds, a
 * string or list too long) returns KILN_ETRAP with a message, never undefined
 * behaviour. Resource handles (own/borrow) go through cx->handle; futures,
 * streams and error-context are refused with KILN_EUNSUPPORTED.
 *
 * Ownership. Lifted values (strings, lists, payloads) are allocated in
 * `cx->arena` and live until the caller frees that arena. Lowering never
 * keeps pointers to the host values.
 */
#ifndef KILN_COMPONENT_CM_CANON_H
#define KILN_COMPONENT_CM_CANON_H

#include <stdbool.h>
#include <stdint.h>

#include "component/cm.h"
#include "component/cm_int.h"
#include "kiln/runtime.h"

#define CM_MAX_FLAT_PARAMS 16
#define CM_MAX_FLAT_RESULTS 1
#define CM_MAX_FLAT 64              /* flat values one type may need; more spills anyway */
#define CM_UTF16_TAG ((uint32_t)1 << 31)
#define CM_MAX_STRING_BYTES (((uint32_t)1 << 31) - 1)

/* A component-level value. `kind` is its type's kind. A list<u8> may be
 * raw bytes instead of one cm_val per byte: `bytes` true, the bytes at
 * str.p, their count in str.len. Lowering copies them in one go; lifting
 * always produces this form for list<u8> (a copy in the call's arena: one
 * host byte per guest byte, not a cm_val each), so read such lists with
 * cm_list_len/cm_list_byte, which take either form. */
typedef struct cm_val cm_val;
struct cm_val {
    cm_kind kind;
    bool bytes; /* CM_LIST of u8 as str.p/str.len (host values only) */
    union {
        bool b;
        int64_t s;       /* s8..s64 */
        uint64_t u;      /* u8..u64 */
        float f32;
        double f64;
        uint32_t c;      /* char: a Unicode scalar value */
        struct {
            const char *p; /* UTF-8, not NUL-terminated */
            uint32_t len;  /* bytes */
        } str;
        struct {
            cm_val *v;     /* list elements, record fields, tuple elements */
            uint32_t n;
        } agg;
        struct {
            uint32_t index;  /* variant/enum case; option: 0 none, 1 some; result: 0 ok, 1 error */
            cm_val *payload; /* NULL when the case carries nothing */
        } var;
        uint32_t flags;      /* bit i = label i */
    };
};

/* A list<u8>'s length and byte i, in either form. */
static inline uint32_t cm_list_len(const cm_val *v)
{
    return v->bytes ? v->str.len : v->agg.n;
}

static inline uint8_t cm_list_byte(const cm_val *v, uint32_t i)
{
    return v->bytes ? (uint8_t)v->str.p[i] : (uint8_t)v->agg.v[i].u;
}

typedef struct cm_cx cm_cx;

/* The guest's realloc(old_ptr, old_size, align, new_size) -> ptr. It must
 * refresh cx->mem / cx->mem_len if memory grew; returns KILN_OK or an error
 * (a trap in the guest) already described in cx->err. */
typedef int (*cm_realloc_fn)(cm_cx *cx, uint32_t old_ptr, uint32_t old_size, uint32_t align,
                             uint32_t new_size, uint32_t *out);

struct cm_cx {
    uint8_t *mem;
    uint64_t mem_len;
    cm_encoding encoding;
    cm_realloc_fn realloc;   /* NULL: lowering strings/lists/spills traps */
    /* Resource handles (own/borrow of resource type t->elem): lifting
     * (lift true) maps the guest's handle `in` to the host's representation,
     * lowering maps a representation to a new guest handle. NULL: handles
     * are KILN_EUNSUPPORTED. A cm_val of an own/borrow holds the
     * representation in `u`. */
    int (*handle)(cm_cx *cx, const cm_type *t, bool lift, uint32_t in, uint32_t *out);
    void *ud;                /* for realloc */
    cm_arena *arena;         /* lifted values */
    kiln_err *err;
};

/* A core value with its type letter: 'i' i32, 'j' i64, 'f' f32, 'd' f64. */
typedef struct cm_flat {
    char t;
    kiln_value v;
} cm_flat;

/* Layout. Only for value types without resources (callers check first). */
uint32_t cm_alignment(const cm_type *t);
uint32_t cm_size(const cm_type *t);
/* Core types of t's flat form into out (up to max); returns the count, or
 * max + 1 when it does not fit (the caller spills). */
uint32_t cm_flatten(const cm_type *t, char *out, uint32_t max);

/* KILN_OK if values of t can be lifted/lowered here, else KILN_EUNSUPPORTED
 * naming the first part that cannot (resources, futures, streams...). */
int cm_check_supported(const cm_type *t, kiln_err *err);

int cm_load(cm_cx *cx, uint64_t ptr, const cm_type *t, cm_val *out);
int cm_store(cm_cx *cx, const cm_val *v, const cm_type *t, uint64_t ptr);

/* Flat lifting reads *pos.. of `in` (n values); lowering appends at *pos. */
int cm_lift_flat(cm_cx *cx, const cm_flat *in, uint32_t n, uint32_t *pos, const cm_type *t,
                 cm_val *out);
int cm_lower_flat(cm_cx *cx, const cm_val *v, const cm_type *t, cm_flat *out, uint32_t max,
                  uint32_t *pos);

/*
 * The lifted export's side: lower `args` (one per parameter of ft) into
 * `out` (room for CM_MAX_FLAT_PARAMS), *n_out = count; and lift the core
 * results (`res`, n_res of them) of ft into *out (unused when ft has no
 * result).
 */
int cm_lower_params(cm_cx *cx, const cm_type *ft, const cm_val *args, cm_flat *out,
                    uint32_t *n_out);
int cm_lift_results(cm_cx *cx, const cm_type *ft, const cm_flat *res, uint32_t n_res,
                    cm_val *out);

/* Whether ft's results come back through memory (more than one flat value). */
bool cm_results_spill(const cm_type *ft);

/*
 * The lowered import's side (`canon lower`): lift the core arguments the
 * guest passed (`in`, n of them: the flat parameters, or one i32 address of
 * the spilled tuple) into `out` (one per parameter of ft), and lower the
 * host's result `v` into `out` (one flat value) or, when the results spill,
 * store it at `retptr` (the guest's extra last argument).
 */
int cm_lift_params(cm_cx *cx, const cm_type *ft, const cm_flat *in, uint32_t n, cm_val *out);
int cm_lower_results(cm_cx *cx, const cm_type *ft, const cm_val *v, uint32_t retptr,
                     cm_flat *out, uint32_t *n_out);
/* Core parameters of ft as an import (spilled: 1), not counting a retptr. */
uint32_t cm_params_flat_count(const cm_type *ft);

#endif
