/*
 * counter.c - the kiln:counter@0.1.0 world: a resource defined by the
 * component itself (kiln:counter/counters#counter), whose handles the core
 * module makes, reads and drops through the canon resource.new/rep/drop
 * built-ins; `selftest` checks them, `drop-twice` and `rep-after-drop` break
 * the handle rules on purpose.
 * kiln-component: counter counter
 */
#include <stdint.h>
#include <stdlib.h>

#define IFACE "kiln:counter/counters@0.1.0"
#define IMPORT(n) __attribute__((import_module("[export]" IFACE), import_name(n)))

IMPORT("[resource-new]counter") extern uint32_t counter_new(uint32_t rep);
IMPORT("[resource-rep]counter") extern uint32_t counter_rep(uint32_t handle);
IMPORT("[resource-drop]counter") extern void counter_drop(uint32_t handle);

__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *p, size_t old, size_t align,
                                                                 size_t size)
{
    (void)old;
    (void)align;
    return realloc(p, size);
}

/* The representation is the counter's value plus one (rep 0 is fine too,
 * but a non-zero one shows rep != handle). */
__attribute__((export_name(IFACE "#[constructor]counter"))) uint32_t ctor(uint32_t start)
{
    return counter_new(start + 100);
}

__attribute__((export_name(IFACE "#[method]counter.bump"))) uint32_t bump(uint32_t rep)
{
    return rep - 100 + 1;
}

/* Sum of the reps destroyed: resource.drop of an own handle calls the dtor. */
static uint32_t destroyed;

__attribute__((export_name(IFACE "#[dtor]counter"))) void dtor(uint32_t rep)
{
    destroyed += rep;
}

/* 0 when new/rep/drop behave: distinct handles, reps kept, slots reused,
 * the destructor run by every drop. */
__attribute__((export_name("selftest"))) uint32_t selftest(void)
{
    uint32_t a = counter_new(7), b = counter_new(9);
    if (a == 0 || b == 0 || a == b)
        return 1;
    if (counter_rep(a) != 7 || counter_rep(b) != 9)
        return 2;
    counter_drop(a);
    uint32_t c = counter_new(11);
    if (counter_rep(c) != 11 || counter_rep(b) != 9)
        return 3;
    counter_drop(b);
    counter_drop(c);
    if (destroyed != 7 + 9 + 11)
        return 4;
    return 0;
}

__attribute__((export_name("drop-twice"))) void drop_twice(void)
{
    uint32_t h = counter_new(1);
    counter_drop(h);
    counter_drop(h);
}

__attribute__((export_name("rep-after-drop"))) void rep_after_drop(void)
{
    uint32_t h = counter_new(1);
    counter_drop(h);
    counter_rep(h);
}
