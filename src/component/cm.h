/*
 * cm.h - WebAssembly components (the Component Model's layer-1 binary
 * encoding): the decoded structure and its types.
 *
 * Contract. cm_parse() decodes a component binary into a cm_component: the
 * index spaces the binary builds (types, functions, instances, components,
 * core modules, core instances, core functions, memories...), the
 * component's own imports and exports with resolved types, and the byte range
 * of every core module it embeds. It validates what it resolves: every index
 * is checked against the index space it names, every length against the
 * section holding it, every count and nesting depth against the CM_MAX_*
 * limits below; it never reads past the buffer. It does not validate the core
 * modules (the AOT pipeline does, per module) nor full component-level type
 * checking (subtyping of instantiation arguments, value consumption).
 *
 * Ownership. Everything a cm_component points to (types, names, spaces,
 * nested components) lives in its arena and is freed by cm_free(). Core
 * module ranges point into the caller's buffer, which must outlive the
 * component when they are used. Types are immutable after cm_parse returns
 * and may be shared by several index-space entries.
 */
#ifndef KILN_COMPONENT_CM_H
#define KILN_COMPONENT_CM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln.h"

/*
 * Limits (KILN_ELIMIT beyond them). They bound what a hostile binary can make
 * the reader allocate or the canonical ABI recurse through; real components
 * built by wit-component stay orders of magnitude below them.
 */
#define CM_MAX_NESTING 16          /* nested components and type declarators */
#define CM_MAX_SPACE 100000        /* entries per index space */
#define CM_MAX_VEC 100000          /* items in one vector (section, fields, cases...) */
#define CM_MAX_NAME 4096           /* bytes per name */
#define CM_MAX_TYPE_DEPTH 64       /* nesting of one value type (list<list<...>>) */
#define CM_MAX_TYPE_NODES 100000   /* nodes in one type tree, shared subtrees counted each time */
#define CM_MAX_FLAGS 32            /* flags labels: the spec's current limit */

/* Kinds of type. Value types first, in the binary's opcode order. */
typedef enum cm_kind {
    CM_BOOL = 1, CM_S8, CM_U8, CM_S16, CM_U16, CM_S32, CM_U32, CM_S64, CM_U64,
    CM_F32, CM_F64, CM_CHAR, CM_STRING,
    CM_RECORD, CM_VARIANT, CM_LIST, CM_TUPLE, CM_FLAGS, CM_ENUM, CM_OPTION, CM_RESULT,
    CM_OWN, CM_BORROW,
    CM_FUTURE, CM_STREAM, CM_ERROR_CONTEXT, CM_FIXED_LIST, /* decoded and shown, not lifted */
    /* Not value types. */
    CM_FUNC, CM_COMPONENT, CM_INSTANCE, CM_RESOURCE, CM_CORE_MODULE, CM_CORE_FUNC,
} cm_kind;

/* Sorts (what an index refers to), as the binary's sort byte + core sort. */
typedef enum cm_sort {
    CM_SORT_CORE_FUNC, CM_SORT_CORE_TABLE, CM_SORT_CORE_MEMORY, CM_SORT_CORE_GLOBAL,
    CM_SORT_CORE_TYPE, CM_SORT_CORE_MODULE, CM_SORT_CORE_INSTANCE,
    CM_SORT_FUNC, CM_SORT_VALUE, CM_SORT_TYPE, CM_SORT_COMPONENT, CM_SORT_INSTANCE,
    CM_SORT_COUNT
} cm_sort;

typedef struct cm_type cm_type;

/* A labelled member: record field, variant case (type NULL when the case
 * carries nothing), flag or enum label (type NULL), function parameter, tuple
 * element (name NULL). */
typedef struct cm_field {
    const char *name;
    const cm_type *type;
} cm_field;

/* An import or export of a component, component type or instance type. */
typedef struct cm_extern {
    const char *name;
    cm_sort sort;
    const cm_type *type; /* func: CM_FUNC; instance/component: their type;
                            type: the type itself; core module: CM_CORE_MODULE */
    uint32_t index;      /* exports of a component: index in the sort's space */
} cm_extern;

struct cm_type {
    cm_kind kind;
    uint32_t n;           /* members in `f` */
    cm_field *f;          /* record/variant/tuple/flags/enum members, func params */
    const cm_type *elem;  /* list/option/fixed-list element, result ok, func result,
                             own/borrow resource, future/stream payload (may be NULL) */
    const cm_type *err;   /* result error (may be NULL) */
    uint32_t len;         /* fixed-size list length */
    uint32_t depth;       /* 1 for primitives */
    uint32_t nodes;       /* tree size, saturating at CM_MAX_TYPE_NODES + 1 */
    const char *name;     /* the first name an import/export gave this type, or NULL */
    bool async;           /* func: an async function type */
    uint32_t n_imports, n_exports; /* component and instance types */
    cm_extern *imports, *exports;
    uint32_t id;          /* resource: unique per component tree; an imported resource of
                             a nested component takes its argument's (cm_nest.c), so
                             handles pass between the two */
    bool abstract;        /* resource: declared by a `(sub resource)` bound (an import's) */
    bool bound;           /* resource: an abstract one whose id was so bound */
    bool has_dtor;        /* resource defined here: its destructor, a core func */
    uint32_t dtor;        /*   index (in the root's space once flattened) */
    bool has_impl;        /* resource: the component instance that implements it is */
    uint32_t impl;        /*   known: 0 the root, k its k-th nested instantiation
                               (cm_nest.c; cm_func.owner counts the same way) */
};

/* A component-level function (index space CM_SORT_FUNC). */
typedef enum cm_func_how { CM_FUNC_IMPORT, CM_FUNC_ALIAS, CM_FUNC_LIFT } cm_func_how;

typedef enum cm_encoding { CM_UTF8, CM_UTF16, CM_LATIN1_UTF16 } cm_encoding;

/* Canonical options of a lift or lower. Indices are in the core spaces. */
typedef struct cm_opts {
    cm_encoding encoding;
    bool has_memory, has_realloc, has_post_return, async, has_callback;
    uint32_t memory, realloc, post_return, callback;
} cm_opts;

typedef struct cm_func {
    cm_func_how how;
    const cm_type *type;  /* CM_FUNC */
    uint32_t core_func;   /* lift: the lifted core function */
    cm_opts opts;         /* lift */
    uint32_t instance;    /* alias: the component instance it is an export of */
    const char *name;     /* import: the import's name; alias: the export's name */
    uint32_t owner;       /* lift: the component instance it lifts from (0 the root, k
                             its k-th nested instantiation, as cm_type.impl) */
} cm_func;

/* A core function (index space CM_SORT_CORE_FUNC). */
typedef enum cm_core_func_how {
    CM_CORE_ALIAS,         /* an export of a core instance */
    CM_CORE_LOWER,         /* canon lower of a component function */
    CM_CORE_RESOURCE_NEW, CM_CORE_RESOURCE_DROP, CM_CORE_RESOURCE_REP,
} cm_core_func_how;

typedef struct cm_core_func {
    cm_core_func_how how;
    uint32_t instance;    /* alias: core instance */
    const char *name;     /* alias: export name */
    uint32_t func;        /* lower: component function */
    cm_opts opts;         /* lower */
    const cm_type *resource; /* resource.* */
} cm_core_func;

/* Core memories, tables and globals: all come from core instance exports. */
typedef struct cm_core_item {
    uint32_t instance;
    const char *name;
} cm_core_item;

typedef struct cm_module {
    size_t offset, len;   /* of the embedded core module in the parsed buffer */
} cm_module;

typedef struct cm_core_arg {
    const char *name;
    uint32_t index;       /* instantiate: core instance; inline: index in `sort` */
    cm_sort sort;
} cm_core_arg;

typedef struct cm_core_instance {
    bool instantiate;     /* else: a bag of inline exports */
    uint32_t module;      /* instantiate */
    uint32_t n;
    cm_core_arg *args;    /* instantiate args (sort = CORE_INSTANCE) or inline exports */
} cm_core_instance;

/* How a component instance (index space CM_SORT_INSTANCE) came to be: the
 * provenance the flattener (cm_nest.c) needs to instantiate nested
 * components. `args`: instantiate arguments or inline exports, each a name
 * and an index in its sort's space of the same component. */
typedef enum cm_inst_how {
    CM_INST_IMPORT,      /* an import (or a declarator's): `name` */
    CM_INST_INSTANTIATE, /* of `component` (NULL: not a component defined in this tree) */
    CM_INST_INLINE,      /* a bag of exports */
    CM_INST_ALIAS,       /* export `name` of instance `instance` */
} cm_inst_how;

typedef struct cm_inst_def {
    cm_inst_how how;
    const char *name;
    const struct cm_component *component;
    uint32_t instance;
    uint32_t n;
    cm_core_arg *args;
} cm_inst_def;

typedef struct cm_arena cm_arena;

/*
 * One component. Index-space entries are pointers of the type given per sort:
 * TYPE cm_type*, FUNC cm_func*, INSTANCE cm_type* (CM_INSTANCE), COMPONENT
 * cm_type* (CM_COMPONENT), CORE_FUNC cm_core_func*, CORE_MEMORY/TABLE/GLOBAL
 * cm_core_item*, CORE_MODULE cm_module* (NULL for an imported module),
 * CORE_INSTANCE cm_core_instance*, CORE_TYPE and VALUE NULL (counted only).
 */
typedef struct cm_component {
    void **space[CM_SORT_COUNT];
    uint32_t n_space[CM_SORT_COUNT], cap_space[CM_SORT_COUNT];
    uint32_t n_imports, n_exports;
    cm_extern *imports, *exports;
    uint32_t n_modules;           /* core modules defined here (not nested) */
    cm_module **modules;
    uint32_t n_components;        /* nested components defined here */
    struct cm_component **components;
    bool has_start;
    cm_arena *arena;              /* shared by the whole tree; owned by the root */
    /* Provenance, parallel to space[CM_SORT_INSTANCE] and
     * space[CM_SORT_COMPONENT]: how each instance was made (NULL inside
     * type declarators) and the component each component index is (NULL
     * when imported or not known). */
    const cm_inst_def **idefs;
    uint32_t n_idefs, cap_idefs;
    const struct cm_component **cdefs;
    uint32_t n_cdefs, cap_cdefs;
    /* Set by cm_parse on the root when it instantiates nested components,
     * flattened into its own index spaces (cm_nest.c): their core modules,
     * instances and functions come after the root's own entries. */
    bool flattened;
} cm_component;

/* True when the 8-byte preamble is a component's (layer 1), whatever version. */
bool cm_is_component(const uint8_t *buf, size_t len);

/*
 * Decode `buf` (len bytes) into *out. On failure returns KILN_EMODULE
 * (malformed), KILN_EUNSUPPORTED (a feature Kiln does not decode: values,
 * GC core types, async built-ins), KILN_ELIMIT or KILN_ENOMEM, with a message
 * naming the offset in err, and *out is NULL.
 */
int cm_parse(const uint8_t *buf, size_t len, cm_component **out, kiln_err *err);

/* Free a component returned by cm_parse (NULL is fine). */
void cm_free(cm_component *c);

/* The static type of a primitive kind (CM_BOOL..CM_STRING), else NULL. */
const cm_type *cm_prim(cm_kind k);

/* WIT spelling of a primitive kind ("u32"), or a constructor ("record"). */
const char *cm_kind_name(cm_kind k);

/* Name of a sort ("func", "core module"). */
const char *cm_sort_name(cm_sort s);

/* The lift behind wasi:cli/run's `run`, or NULL. The command adapter exports
 * it from its core instance as "wasi:cli/run@VERSION#run", re-exported
 * through a typed nested instance the reader does not follow, so it is found
 * by that core export name. */
const cm_func *cm_find_cli_run(const cm_component *c);

#endif
