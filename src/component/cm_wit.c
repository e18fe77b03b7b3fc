/*
 * cm_wit.c - print a decoded component's world as WIT text (cm_wit.h).
 *
 * Named types (those an import or export gave a name) are referred to by
 * name and defined once, in the scope where they first appear; anonymous
 * types are spelled inline. Every type expression is written into a capped
 * buffer: a hostile component can share subtrees so that the spelled-out
 * text would be exponential in its size, and the cap keeps that a truncated
 * line ("...") rather than a memory blow-up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "component/cm_wit.h"

#define SB_CAP (64 * 1024)

typedef struct sb {
    char buf[SB_CAP];
    size_t len;
    bool full;
} sb;

static void sb_add(sb *s, const char *fmt, ...) KILN_PRINTF(2, 3);

static void sb_add(sb *s, const char *fmt, ...)
{
    if (s->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, SB_CAP - s->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= SB_CAP - s->len - 4) {
        s->len = SB_CAP - 4;
        memcpy(s->buf + s->len, "...", 4);
        s->len += 3;
        s->full = true;
        return;
    }
    s->len += (size_t)n;
}

static void ref(sb *s, const cm_type *t);

static void members(sb *s, const cm_type *t, const char *sep)
{
    for (uint32_t i = 0; i < t->n && !s->full; i++) {
        if (i > 0)
            sb_add(s, "%s", sep);
        if (t->f[i].name != NULL)
            sb_add(s, "%s", t->f[i].name);
        if (t->f[i].type != NULL) {
            if (t->kind == CM_VARIANT) {
                sb_add(s, "(");
                ref(s, t->f[i].type);
                sb_add(s, ")");
            } else {
                if (t->f[i].name != NULL)
                    sb_add(s, ": ");
                ref(s, t->f[i].type);
            }
        }
    }
}

/* The body of a type: what follows its name in a definition, or the whole
 * spelling when it has no name. */
static void body(sb *s, const cm_type *t)
{
    switch (t->kind) {
    case CM_RECORD:
    case CM_VARIANT:
    case CM_ENUM:
    case CM_FLAGS:
        sb_add(s, "%s { ", cm_kind_name(t->kind));
        members(s, t, ", ");
        sb_add(s, " }");
        return;
    case CM_LIST:
    case CM_OPTION:
        sb_add(s, "%s<", cm_kind_name(t->kind));
        ref(s, t->elem);
        sb_add(s, ">");
        return;
    case CM_FIXED_LIST:
        sb_add(s, "list<");
        ref(s, t->elem);
        sb_add(s, ", %u>", (unsigned)t->len);
        return;
    case CM_TUPLE:
        sb_add(s, "tuple<");
        members(s, t, ", ");
        sb_add(s, ">");
        return;
    case CM_RESULT:
        sb_add(s, "result");
        if (t->elem == NULL && t->err == NULL)
            return;
        sb_add(s, "<");
        if (t->elem != NULL)
            ref(s, t->elem);
        else
            sb_add(s, "_");
        if (t->err != NULL) {
            sb_add(s, ", ");
            ref(s, t->err);
        }
        sb_add(s, ">");
        return;
    case CM_OWN:
        ref(s, t->elem);
        return;
    case CM_BORROW:
        sb_add(s, "borrow<");
        ref(s, t->elem);
        sb_add(s, ">");
        return;
    case CM_FUTURE:
    case CM_STREAM:
        sb_add(s, "%s", cm_kind_name(t->kind));
        if (t->elem != NULL) {
            sb_add(s, "<");
            ref(s, t->elem);
            sb_add(s, ">");
        }
        return;
    case CM_FUNC:
        sb_add(s, "%sfunc(", t->async ? "async " : "");
        members(s, t, ", ");
        sb_add(s, ")");
        if (t->elem != NULL) {
            sb_add(s, " -> ");
            ref(s, t->elem);
        }
        return;
    case CM_RESOURCE:
        sb_add(s, "resource");
        return;
    default:
        sb_add(s, "%s", cm_kind_name(t->kind));
        return;
    }
}

static void ref(sb *s, const cm_type *t)
{
    if (t->name != NULL)
        sb_add(s, "%s", t->name);
    else
        body(s, t);
}

void cm_wit_type(const cm_type *t, char *buf, size_t size)
{
    sb *s = kiln_malloc(sizeof(*s));
    if (s == NULL) {
        snprintf(buf, size, "?");
        return;
    }
    s->len = 0;
    s->full = false;
    s->buf[0] = '\0';
    ref(s, t);
    snprintf(buf, size, "%s", s->buf);
    kiln_free(s);
}

/* Types already defined, and the interface each was defined in. */
typedef struct printed {
    const cm_type **types;
    const char **where;
    size_t n, cap;
} printed;

static const char *defined_in(const printed *p, const cm_type *t, bool *found)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->types[i] == t) {
            *found = true;
            return p->where[i];
        }
    *found = false;
    return NULL;
}

static void remember(printed *p, const cm_type *t, const char *where)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        const cm_type **nt = kiln_realloc(p->types, cap * sizeof(*nt));
        if (nt == NULL)
            return;
        p->types = nt;
        const char **nw = kiln_realloc(p->where, cap * sizeof(*nw));
        if (nw == NULL)
            return;
        p->where = nw;
        p->cap = cap;
    }
    p->types[p->n] = t;
    p->where[p->n++] = where;
}

/* One type declaration: `record name { ... }`, `type name = ...;`,
 * `resource name;`, or `use iface.{name};` when defined elsewhere. */
static void print_typedecl(FILE *f, const char *indent, const char *name, const cm_type *t,
                           printed *p, const char *where)
{
    bool found;
    const char *from = defined_in(p, t, &found);
    if (found) {
        if (from != NULL && where != from)
            fprintf(f, "%suse %s.{%s};\n", indent, from, t->name ? t->name : name);
        return;
    }
    remember(p, t, where);
    sb *s = kiln_malloc(sizeof(*s));
    if (s == NULL)
        return;
    s->len = 0;
    s->full = false;
    s->buf[0] = '\0';
    switch (t->kind) {
    case CM_RECORD:
    case CM_VARIANT:
    case CM_ENUM:
    case CM_FLAGS:
        fprintf(f, "%s%s %s {\n", indent, cm_kind_name(t->kind), name);
        for (uint32_t i = 0; i < t->n; i++) {
            s->len = 0;
            s->full = false;
            s->buf[0] = '\0';
            sb_add(s, "%s", t->f[i].name);
            if (t->f[i].type != NULL) {
                sb_add(s, t->kind == CM_VARIANT ? "(" : ": ");
                ref(s, t->f[i].type);
                if (t->kind == CM_VARIANT)
                    sb_add(s, ")");
            }
            fprintf(f, "%s  %s,\n", indent, s->buf);
        }
        fprintf(f, "%s}\n", indent);
        break;
    case CM_RESOURCE:
        fprintf(f, "%sresource %s;\n", indent, name);
        break;
    default:
        body(s, t);
        fprintf(f, "%stype %s = %s;\n", indent, name, s->buf);
        break;
    }
    kiln_free(s);
}

static void print_func(FILE *f, const char *indent, const char *prefix, const char *name,
                       const cm_type *t)
{
    sb *s = kiln_malloc(sizeof(*s));
    if (s == NULL)
        return;
    s->len = 0;
    s->full = false;
    s->buf[0] = '\0';
    body(s, t);
    fprintf(f, "%s%s%s: %s;\n", indent, prefix, name, s->buf);
    kiln_free(s);
}

static void print_interface(FILE *f, const char *kw, const char *name, const cm_type *inst,
                            printed *p)
{
    fprintf(f, "  %s %s: interface {\n", kw, name);
    for (uint32_t i = 0; i < inst->n_exports; i++) {
        const cm_extern *e = &inst->exports[i];
        if (e->sort == CM_SORT_TYPE)
            print_typedecl(f, "    ", e->name, e->type, p, name);
        else if (e->sort == CM_SORT_FUNC)
            print_func(f, "    ", "", e->name, e->type);
        else
            fprintf(f, "    /* %s %s */\n", cm_sort_name(e->sort), e->name);
    }
    fprintf(f, "  }\n");
}

static void print_extern(FILE *f, const char *kw, const cm_extern *e, printed *p)
{
    switch (e->sort) {
    case CM_SORT_TYPE:
        print_typedecl(f, "  ", e->name, e->type, p, NULL);
        break;
    case CM_SORT_FUNC:
        fprintf(f, "  %s ", kw);
        print_func(f, "", "", e->name, e->type);
        break;
    case CM_SORT_INSTANCE:
        print_interface(f, kw, e->name, e->type, p);
        break;
    default:
        fprintf(f, "  %s %s: %s;\n", kw, e->name, cm_sort_name(e->sort));
        break;
    }
}

void cm_wit_world(const cm_component *c, FILE *f)
{
    printed p = {0};
    fprintf(f, "world root {\n");
    for (uint32_t i = 0; i < c->n_imports; i++)
        print_extern(f, "import", &c->imports[i], &p);
    for (uint32_t i = 0; i < c->n_exports; i++)
        print_extern(f, "export", &c->exports[i], &p);
    fprintf(f, "}\n");
    kiln_free(p.types);
    kiln_free(p.where);
}
