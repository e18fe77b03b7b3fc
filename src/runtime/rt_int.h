/*
 * rt_int.h - private to src/runtime: the per-thread execution context, the
 * loaded-module and instance structures, and the hooks between rt_*.c files.
 *
 * Threading model: every thread that runs guest code owns one rt_thread
 * (thread-local, created on first use). It holds the trap landing pad of the
 * current guarded entry, the deadline the watchdog thread watches, the
 * exception state, the memory pool and the thread's stack bounds. Nothing in
 * it is shared except `deadline_ns`/`tid`, which the watchdog reads.
 */
#ifndef KILN_RUNTIME_RT_INT_H
#define KILN_RUNTIME_RT_INT_H

#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "kiln/abi.h"
#include "kiln/runtime.h"
#include "runtime/descriptor.h"

/* Address space reserved per linear memory: u32 address + u32 offset reach
 * 8 GiB - 2, plus the widest access. A header page precedes the data. */
#define RT_MEM_RESERVE ((size_t)8 << 30)
#define RT_MEM_TAIL ((size_t)64 << 10)
#define RT_MEM_HEADER ((size_t)4096)
#define RT_PAGE ((uint64_t)65536)
#define RT_MAX_PAGES 65535u /* wasm_rt_memory_t.size is u32 */
#define RT_DEFAULT_TABLE_ELEMS 1000000u /* per instance, all tables */
/* Pools per thread. A serve worker holds as many instances as it has
 * requests waiting (hundreds), so the pools hold that many; up to
 * RT_POOL_HOT pooled entries keep their pages resident (memset to zero on
 * release), one released while that many are resident is discarded with
 * madvise. Resident and discarded entries are kept in two lists, resident
 * taken first: with one list and "the first RT_POOL_HOT by position", a
 * burst left a long pool and then every release was discarded and faulted
 * back in (measured: 0.45 madvise per request, 27 -> 45 us of CPU per
 * request, for good after one burst of 500 waiting requests). Every madvise or munmap
 * costs a TLB shootdown on the other CPUs, which dominated the I/O bench,
 * so while busy the pools stay resident and kiln_rt_trim_pools (the serve
 * worker calls it when idle) gives the pages of all but a few back. */
#define RT_POOL_DEFAULT 1024
#define RT_POOL_HOT 256
/* Resetting a pooled memory on release (rt_mem.c zero_touched; measured
 * in docs/internals/snapshot.md §2): only the resident pages (mincore) are
 * zeroed, which costs what the instance touched instead of the memory's
 * size (memset of everything faulted in the pages that were not resident).
 * Clean resident pages are given back only beyond RT_MEMSET_ALL of them.
 * Pages are discarded (madvise; every page then costs a fault of ~1.4 µs
 * when next touched) only when more than RT_ZERO_LIMIT bytes would be
 * zeroed. */
#define RT_MEMSET_ALL ((uint64_t)256 << 10)
#define RT_ZERO_LIMIT ((uint64_t)64 << 20)
/* Snapshot images of at least RT_TRACK_MIN bytes are write-tracked in their
 * pool slots (rt_mem.c restore_written; snapshot.md §2b): below, copying the
 * whole image costs about what the tracking's two page-table scans do. */
#define RT_TRACK_MIN ((uint64_t)64 << 10)
#define RT_TRACK_RUNS 64
#define RT_TRACK_SKIP 32 /* restores copied whole after a mostly-written one, */
#define RT_TRACK_BACKOFF_MAX 7 /* ... doubled up to 32 << 7 = 4096 */
#define RT_HOST_STACK_MARGIN ((uintptr_t)128 << 10)
/* Guest stacks (rt_fiber.c): usable size = the function's stack limit +
 * RT_HOST_HEADROOM, below it RT_STACK_GUARD bytes that are never mapped. */
#define RT_DEFAULT_STACK ((size_t)1 << 20)
#define RT_MIN_STACK ((size_t)64 << 10)
#define RT_MAX_STACK ((size_t)256 << 20)
#define RT_HOST_HEADROOM ((size_t)256 << 10)
#define RT_STACK_GUARD ((size_t)1 << 20)
#define RT_FIBER_POOL 1024 /* stacks released while RT_FIBER_HOT are resident are discarded */
#define RT_FIBER_HOT 256

typedef struct rt_mem_header {
    uint64_t committed; /* bytes currently read-write from data */
    bool resident;      /* pooled with its (zeroed) pages resident */
    /* Slot affinity for snapshots (snapshot.c): the slot last held image
     * `image_id`, whose first `image_extent` bytes are NOT zeroed while it is
     * pooled; the next user either restores the same image over them or
     * zeroes them first (rt_mem.c pool_take). 0 = the slot is all zero. */
    uint64_t image_id, image_extent;
    /* [0, image_extent) is write-tracked (vmem.h): a restore of the same
     * image copies back only the pages written since the last one. */
    bool tracked;
    /* Restores left before tracking is tried again: the last tracked
     * request wrote over a sixteenth of the image, and a tracked write
     * costs ~13x copying the page (snapshot.md §2b). The pause doubles
     * (track_backoff) each time that happens again, up to 4096 restores,
     * and is reset by a tracked request that wrote little. */
    uint16_t track_skip;
    uint8_t track_backoff;
    int registry_index; /* slot in the process-wide reservation registry */
    struct rt_mem_header *next_free;
} rt_mem_header;

/*
 * One guest execution context: what the trap machinery knows about the guest
 * code running on one stack. A top-level guarded entry runs on a guest stack
 * of its own (rt_fiber.c) and its rt_exec lives at the top of that stack;
 * nested entries (a host function calling back into guest code) share it,
 * saving and restoring the fields they change. Everything a suspended
 * invocation must keep is here, not in rt_thread.
 */
typedef struct rt_exec {
    sigjmp_buf *volatile jb; /* landing pad of the innermost guarded entry */
    volatile sig_atomic_t in_guest;
    volatile sig_atomic_t in_host; /* host-call nesting: no trap may unwind through it */
    volatile sig_atomic_t timeout_pending;
    struct kiln_instance *current;
    jmp_buf *unwind_target;
    /* trap details of the last unwind */
    char trap_msg[256];
    int exit_code;
    /* the stack: usable [stack_lo, stack_hi); [guard_lo, stack_lo) is never
     * mapped; host calls need sp >= host_floor */
    uintptr_t stack_lo, stack_hi, guard_lo, host_floor;
} rt_exec;

typedef struct rt_fiber rt_fiber;

typedef struct rt_thread {
    bool ready;
    rt_exec *x; /* the running guest execution, NULL outside guest code */
    _Atomic uint64_t deadline_ns;   /* CLOCK_MONOTONIC; 0 = none */
    uint64_t signalled_deadline;    /* watchdog's: last deadline it signalled */
    /* exceptions (never live across a host call) */
    uint32_t exc_tag, exc_size;
    uint8_t *exc_data;
    void *altstack;
    /* memory pool: singly linked free lists of resident slots (zeroed,
     * pages mapped; taken first) and of cold ones (pages discarded) */
    rt_mem_header *pool, *pool_cold;
    unsigned pool_len;      /* both lists */
    unsigned pool_resident; /* the resident list's length */
    uint64_t pool_hits, pool_misses, image_partial_restores, pool_discards;
    /* guest stack pool (rt_fiber.c) */
    rt_fiber *fibers, *fibers_cold; /* resident stacks (taken first), discarded ones */
    unsigned n_fibers;              /* both lists */
    unsigned fibers_resident;       /* the resident list's length */
    /* the interrupt handle armed by this thread (rt_interrupt.c), or NULL */
    struct kiln_interrupt *_Atomic interrupt;
    /* watchdog registry */
    pthread_t tid;
    struct rt_thread *next, *prev;
} rt_thread;

extern _Thread_local rt_thread rt_tls;

/* The calling thread's context, initialised on first use (installs the
 * process-wide signal handlers once, an alternate signal stack per thread). */
static inline rt_thread *rt_self(void)
{
    extern void rt_thread_init(rt_thread * t);
    if (__builtin_expect(!rt_tls.ready, 0))
        rt_thread_init(&rt_tls);
    return &rt_tls;
}

uint64_t rt_now_ns(void);
/* The signal that unwinds a thread whose deadline passed. */
#define RT_SIG_TIMEOUT (SIGRTMIN + 1)
/* Has the interrupt armed on thread t been fired (rt_interrupt.c)? */
bool rt_interrupt_fired(rt_thread *t);
/* Ensure the watchdog thread runs (started on the first deadline). */
void rt_watchdog_start(void);

/* Runtime code entered from guest code that may allocate or lock brackets
 * itself with these (a deadline never unwinds through it). rt_host_begin
 * traps with "call stack exhausted" when less than RT_HOST_HEADROOM of stack
 * is left, before any host code runs. */
void rt_host_begin(rt_thread *t);
void rt_host_end(rt_thread *t); /* rt_host_close + rt_host_deliver */
/* Close the bracket without unwinding / unwind now if a deadline fired. */
void rt_host_close(rt_thread *t);
void rt_host_deliver(rt_thread *t);
/* The instance being run (or instantiated) on this thread, or NULL. */
static inline struct kiln_instance *rt_current(void)
{
    extern _Thread_local struct rt_thread rt_tls;
    return rt_tls.x ? rt_tls.x->current : NULL;
}

/* Run body(arg) on a guest stack from this thread's pool sized for `limits`
 * (rt_fiber.c). Returns what body returned, or KILN_ENOMEM when no stack
 * could be mapped (err filled). */
int rt_fiber_run(rt_thread *t, const kiln_limits *limits, int (*body)(rt_exec *x, void *arg),
                 void *arg, kiln_err *err);
void rt_fiber_drain(rt_thread *t);
/* Discard the pages of pooled stacks past the first `keep`. */
void rt_fiber_trim(rt_thread *t, unsigned keep);

/* Trap from runtime code with a message; never returns. */
__attribute__((noreturn)) void rt_trap_msg(int kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reservation registry (rt_mem.c): is addr inside any linear memory's
 * reserved range? Lock-free, async-signal-safe. */
bool rt_mem_contains(uintptr_t addr);
unsigned rt_pool_limit(void);
/* Unmap every pooled memory of thread `t` (its thread-exit destructor). */
void rt_pool_drain(rt_thread *t);

struct kiln_module {
    _Atomic int refs;
    void *dl;
    const kiln_descriptor *d;
    char *name;
    char *path;
    struct kiln_module *next; /* process-wide list of loaded artifacts */
};

/* An imported memory the runtime provides afresh for every instance
 * (kiln_linker_define_memory): import slot and the import's limits. */
typedef struct rt_inst_mem {
    uint32_t slot;
    uint32_t min_pages, max_pages;
} rt_inst_mem;

/* An import bound per instantiation to export `export_index` of argument
 * `arg` (kiln_linker_define_arg, kiln_instance_new_args). */
#define RT_NO_ARG UINT32_MAX
typedef struct rt_arg_slot {
    uint32_t slot, arg, export_index;
} rt_arg_slot;

struct kiln_instance_pre {
    kiln_module *m;
    uint32_t n_slots;
    kiln_slot *slots;  /* template; host functions get ctx = the instance */
    bool *ctx_is_self;
    uint32_t n_inst_mems;
    rt_inst_mem *inst_mems;
    uint32_t n_arg_slots;
    rt_arg_slot *arg_slots;
    uint32_t n_args;              /* arguments an instantiation must pass */
    const kiln_descriptor **arg_d; /* the artifact each argument is an instance of */
};

/* Objects wasm2c allocated inside an instance's struct while it was being
 * instantiated for a snapshot (snapshot.c): memories and tables, by offset
 * in the struct, with their declared maximum. */
#define RT_REC_MAX 64
/* RT_REC_INST_MEMORY: an imported memory the runtime provides per instance
 * (kiln_linker_define_memory); `offset` is its index in imported_mems. */
enum { RT_REC_MEMORY, RT_REC_FUNCREF, RT_REC_EXTERNREF, RT_REC_INST_MEMORY };
typedef struct rt_rec_obj {
    uint8_t kind;
    uint32_t offset, declared_max;
} rt_rec_obj;
/* Function types (rt_mem.c): the signature of a registered id (false when
 * unknown), and registering one from an array (what the variadic
 * wasm_rt_register_func_type does). On-disk snapshot images store signatures,
 * since ids are process-local. */
bool rt_functype_sig(uint32_t id, uint32_t *params, uint32_t *results,
                     const wasm_rt_type_t **sig);
uint32_t rt_functype_register(uint32_t params, uint32_t results, const wasm_rt_type_t *types);

typedef struct rt_recording {
    rt_rec_obj objs[RT_REC_MAX];
    uint32_t n;
    const char *problem; /* why this instance cannot be captured, or NULL */
    void *refusals;      /* per-import records of refused host calls */
} rt_recording;

struct kiln_instance {
    const kiln_instance_pre *pre;
    const kiln_descriptor *d;
    kiln_limits limits;
    void *state[KILN_STATE_SLOTS];
    bool poisoned;
    bool instantiated;
    uint64_t table_elems; /* charged to limits.max_table_elems (rt_mem.c) */
    wasm_rt_memory_t *mem0;
    wasm_rt_memory_t *imported_mems; /* pre->n_inst_mems, owned by this instance */
    void *wasm; /* the wasm2c instance struct */
    kiln_link *link;
    rt_recording *rec; /* set while instantiated by kiln_snapshot_begin */
};

/* instance.c: the instance block with its link filled from `pre` (argument
 * links unbound: rt_instance_bind) and a zeroed wasm2c struct (NULL and err
 * set when out of memory); run wasm2c's
 * instantiate on it (on failure the block is released, except one that
 * imports a table - its functions may be in it - unless `graph`: a member
 * of a graph being imaged, whose caller frees the whole graph); release a
 * block that is not (or not fully) instantiated. */
kiln_instance *rt_instance_alloc(const kiln_instance_pre *pre, const kiln_limits *limits,
                                 void *const *state, kiln_err *err);
/* Bind the argument links of inst's pre to args (kiln_instance_new_args);
 * KILN_EINVAL naming the argument when one is missing or of another module.
 * Every alloc is bound before it runs (a pre without argument links binds
 * with no args). Exports of an argument are read from its struct: bind
 * after the arguments are instantiated or restored. */
int rt_instance_bind(kiln_instance *inst, kiln_instance *const *args, uint32_t n_args,
                     kiln_err *err);
int rt_instance_start(kiln_instance *inst, bool graph, kiln_err *err);
void rt_instance_discard(kiln_instance *inst);
/* snapshot.c: free an instance's recording (NULL is ok). */
void rt_rec_free(kiln_instance *inst);

/* Note an object wasm2c allocates at `field` for the instance being
 * instantiated, if it is recording (snapshot.c). */
void rt_rec_note(kiln_instance *inst, int kind, const void *field, uint32_t declared_max);
/* Are the n bytes at p all zero? */
bool rt_mem_is_zero(const uint8_t *p, uint64_t n);
/* End of the last non-zero 4 KiB page of [data, data+size) (page-aligned
 * data): pages never touched are not read, so capturing a sparse memory
 * does not make it resident. */
uint64_t rt_mem_extent(uint8_t *data, uint64_t size);
/* Allocate `mem` from this thread's pool with `pages` committed and the
 * first `extent` bytes copied from `image` (an image with a process-unique
 * `image_id`): a pooled slot that last held the same image is preferred and
 * its copy is the only reset it needs. Traps like wasm_rt_allocate_memory. */
void rt_mem_restore(wasm_rt_memory_t *mem, uint32_t pages, uint32_t declared_max,
                    const uint8_t *image, uint64_t extent, uint64_t image_id);

/* Run fn(arg) as guest code on this thread for `inst`: arms the trap landing
 * pad and the deadline. Returns KILN_OK or fills err (trap kind, message
 * naming `what`) and returns KILN_ETRAP / KILN_EEXIT. */
int rt_guarded(kiln_instance *inst, const char *what, void (*fn)(void *), void *arg, kiln_err *err);

#endif
