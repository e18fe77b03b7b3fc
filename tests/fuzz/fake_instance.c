/*
 * fake_instance.c - the runtime entry points host functions use, replaced
 * through -Wl,--wrap (see fuzz.h), plus helpers every harness shares. No
 * module is compiled or instantiated; a kiln_instance pointer is a fuzz_inst.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

char *fuzz_part(const uint8_t *data, size_t size, size_t i)
{
    size_t start = 0;
    for (size_t k = 0; k < i; k++) {
        const uint8_t *z = memchr(data + start, 0, size - start);
        if (z == NULL) {
            start = size;
            break;
        }
        start = (size_t)(z - data) + 1;
    }
    const uint8_t *z = start < size ? memchr(data + start, 0, size - start) : NULL;
    size_t len = z ? (size_t)(z - (data + start)) : size - start;
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, data + start, len);
    s[len] = '\0';
    return s;
}

bool fuzz_inst_init(fuzz_inst *f, uint64_t size)
{
    memset(f, 0, sizeof(*f));
    if (size == 0)
        return true;
    f->mem.data = calloc(1, (size_t)size);
    if (f->mem.data == NULL)
        return false;
    f->mem.size = (uint32_t)size;
    f->mem.pages = (uint32_t)((size + 65535) / 65536);
    f->mem.max_pages = f->mem.pages;
    f->has_mem = true;
    return true;
}

void fuzz_inst_fini(fuzz_inst *f)
{
    free(f->mem.data);
    memset(f, 0, sizeof(*f));
}

static fuzz_inst *fi(const kiln_instance *inst)
{
    return (fuzz_inst *)(void *)inst;
}

/* ---- the wrapped runtime ------------------------------------------------------ */

void *__wrap_kiln_instance_state(const kiln_instance *inst, int slot);
wasm_rt_memory_t *__wrap_kiln_instance_memory(kiln_instance *inst);
__attribute__((noreturn)) void __wrap_kiln_host_trap(kiln_instance *inst, int kind,
                                                     const char *fmt, ...);
__attribute__((noreturn)) void __wrap_kiln_host_exit(kiln_instance *inst, int code);
void __wrap_kiln_host_enter(kiln_instance *inst);
void __wrap_kiln_host_leave(kiln_instance *inst);
void __wrap_kiln_host_check_stack(kiln_instance *inst);

void *__wrap_kiln_instance_state(const kiln_instance *inst, int slot)
{
    if (slot < 0 || slot >= KILN_STATE_SLOTS)
        return NULL;
    return fi(inst)->state[slot];
}

wasm_rt_memory_t *__wrap_kiln_instance_memory(kiln_instance *inst)
{
    return fi(inst)->has_mem ? &fi(inst)->mem : NULL;
}

static __attribute__((noreturn)) void unwind(fuzz_inst *f, int how)
{
    if (!f->armed) {
        fprintf(stderr, "fuzz: trap or exit outside fuzz_call\n");
        abort();
    }
    if (f->depth != 0) {
        /* The real runtime would unwind with a lock or an allocation held. */
        fprintf(stderr, "fuzz: host function trapped inside kiln_host_enter/leave (depth %d): %s\n",
                f->depth, f->trap_msg);
        abort();
    }
    f->armed = false;
    longjmp(f->jb, how);
}

void __wrap_kiln_host_trap(kiln_instance *inst, int kind, const char *fmt, ...)
{
    fuzz_inst *f = fi(inst);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->trap_msg, sizeof(f->trap_msg), fmt, ap);
    va_end(ap);
    f->trap_kind = kind;
    unwind(f, 1);
}

void __wrap_kiln_host_exit(kiln_instance *inst, int code)
{
    fuzz_inst *f = fi(inst);
    f->trap_kind = -1;
    f->exit_code = code;
    snprintf(f->trap_msg, sizeof(f->trap_msg), "exit %d", code);
    unwind(f, 2);
}

void __wrap_kiln_host_enter(kiln_instance *inst)
{
    fi(inst)->depth++;
}

void __wrap_kiln_host_leave(kiln_instance *inst)
{
    fuzz_inst *f = fi(inst);
    if (f->depth <= 0) {
        fprintf(stderr, "fuzz: kiln_host_leave without kiln_host_enter\n");
        abort();
    }
    f->depth--;
}

void __wrap_kiln_host_check_stack(kiln_instance *inst)
{
    (void)inst;
}

/* ---- calling host functions ------------------------------------------------------ */

int fuzz_sig_params(const char *type)
{
    int n = 0;
    const char *p = type;
    for (; *p && *p != '>'; p++, n++)
        if (*p != 'i' && *p != 'j')
            return -1;
    if (*p != '>' || n > 10)
        return -1;
    p++;
    if (strlen(p) > 1 || (*p && *p != 'i' && *p != 'j'))
        return -1;
    return n;
}

typedef uint64_t u64;
typedef u64 (*fn0)(kiln_instance *);
typedef u64 (*fn1)(kiln_instance *, u64);
typedef u64 (*fn2)(kiln_instance *, u64, u64);
typedef u64 (*fn3)(kiln_instance *, u64, u64, u64);
typedef u64 (*fn4)(kiln_instance *, u64, u64, u64, u64);
typedef u64 (*fn5)(kiln_instance *, u64, u64, u64, u64, u64);
typedef u64 (*fn6)(kiln_instance *, u64, u64, u64, u64, u64, u64);
typedef u64 (*fn7)(kiln_instance *, u64, u64, u64, u64, u64, u64, u64);
typedef u64 (*fn8)(kiln_instance *, u64, u64, u64, u64, u64, u64, u64, u64);
typedef u64 (*fn9)(kiln_instance *, u64, u64, u64, u64, u64, u64, u64, u64, u64);
typedef u64 (*fn10)(kiln_instance *, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64);

int fuzz_call(fuzz_inst *f, const kiln_hostfn *h, const uint64_t *args, uint64_t *ret)
{
    int n = fuzz_sig_params(h->type);
    *ret = 0;
    if (n < 0)
        return -1;
    u64 a[10] = {0};
    for (int i = 0; i < n; i++)
        a[i] = h->type[i] == 'i' ? (uint32_t)args[i] : args[i];
    kiln_instance *inst = fuzz_inst_ptr(f);
    f->depth = 0;
    f->armed = true;
    int how = setjmp(f->jb);
    if (how != 0)
        return how;
    void (*p)(void) = h->fn;
    u64 r = 0;
    switch (n) {
    case 0: r = ((fn0)p)(inst); break;
    case 1: r = ((fn1)p)(inst, a[0]); break;
    case 2: r = ((fn2)p)(inst, a[0], a[1]); break;
    case 3: r = ((fn3)p)(inst, a[0], a[1], a[2]); break;
    case 4: r = ((fn4)p)(inst, a[0], a[1], a[2], a[3]); break;
    case 5: r = ((fn5)p)(inst, a[0], a[1], a[2], a[3], a[4]); break;
    case 6: r = ((fn6)p)(inst, a[0], a[1], a[2], a[3], a[4], a[5]); break;
    case 7: r = ((fn7)p)(inst, a[0], a[1], a[2], a[3], a[4], a[5], a[6]); break;
    case 8: r = ((fn8)p)(inst, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
    case 9: r = ((fn9)p)(inst, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]); break;
    default: r = ((fn10)p)(inst, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]); break;
    }
    f->armed = false;
    if (f->depth != 0) {
        fprintf(stderr, "fuzz: %s.%s returned inside kiln_host_enter (depth %d)\n", h->module,
                h->name, f->depth);
        abort();
    }
    const char *res = strchr(h->type, '>') + 1;
    *ret = *res == 'i' ? (uint32_t)r : *res == 'j' ? r : 0;
    return 0;
}
