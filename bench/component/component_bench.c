/*
 * component_bench.c - per-event cost of a trivial kiln:faas handler in
 * process, linked with libkiln.a: (a) the component (tests/components
 * guests/faas.c wrapped by jco) through cm_inst_new + cm_inst_call +
 * cm_inst_free per event, the event lowered from cm_vals built once; (b) the
 * same core module called directly, a fresh kiln_instance per event, the
 * event's strings and payload placed with its cabi_realloc, `handle` called
 * with the flat arguments, the result read, cabi_post_handle called: the
 * canonical ABI done by hand, so (a) - (b) is the cost of the generic one.
 * With -DHAVE_CM_MODS (cm_mods_load in cm_inst.h, the serve path): also
 * (a') `component-loaded`, the core modules loaded once by cm_mods_load and
 * each event's instance made by cm_inst_new_loaded (no AOT cache lookup);
 * with -DHAVE_CM_PLAN (cm_plan_new: the serve path since the per-function
 * plan) the plan is made once and each event's instance by cm_inst_new_plan
 * (no linking, no closures per event); and `component-snapshot`, the plan's
 * graph instantiated once into an image (cm_image_build, `snapshot: true`)
 * and each event's instance restored from it (cm_inst_new_image).
 *
 * Usage: component_bench component|component-loaded|component-snapshot|core FILE.wasm EVENTS
 * (KILN_CC=tcc compiles with tcc, as the JavaScript component needs)
 * Prints: MODE events/s p50_us p99_us
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wasm-rt.h>

#include "component/cm.h"
#include "component/cm_inst.h"
#include "component/cm_int.h"
#include "component/cm_json.h"
#include "kiln/aot.h"
#include "kiln/runtime.h"

#define EVENT_JSON                                                                               \
    "{\"event-type\":\"object-added\",\"event-timestamp\":{\"seconds\":1700000000,"             \
    "\"nanoseconds\":5},\"event-version\":\"1\",\"source\":\"kv:bench\",\"key\":\"k\","          \
    "\"payload\":[1,2,3,4]}"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const kiln_err *err)
{
    fprintf(stderr, "component_bench: %s: %s\n", what, err && err->msg[0] ? err->msg : "failed");
    exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        die(path, NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die(path, NULL);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- (a) the component ---------------------------------------------------- */

typedef struct {
    cm_component *c;
    const uint8_t *buf;
    const cm_func *fn;
    cm_val arg;
    const void *mods; /* cm_mods when loaded once, else NULL */
#ifdef HAVE_CM_PLAN
    cm_plan *plan; /* made once from mods (component-loaded) */
    cm_image *image; /* component-snapshot */
#endif
} comp_bench;

static void comp_setup(comp_bench *b, const char *path)
{
    kiln_err err = {0};
    size_t len;
    b->buf = read_file(path, &len);
    if (cm_parse(b->buf, len, &b->c, &err) != KILN_OK)
        die(path, &err);
    const cm_extern *ex = NULL;
    for (uint32_t i = 0; i < b->c->n_exports; i++)
        if (b->c->exports[i].sort == CM_SORT_FUNC && strcmp(b->c->exports[i].name, "handle") == 0)
            ex = &b->c->exports[i];
    if (ex == NULL)
        die("no export 'handle'", NULL);
    b->fn = b->c->space[CM_SORT_FUNC][ex->index];
    json_t *j = json_loads(EVENT_JSON, 0, NULL);
    cm_arena *a = cm_arena_new(); /* lives as long as the bench */
    if (j == NULL || a == NULL ||
        cm_val_from_json(a, ex->type->f[0].type, j, "$[0]", &b->arg, &err) != KILN_OK)
        die("event", &err);
    json_decref(j);
}

static void comp_event(comp_bench *b)
{
    kiln_err err = {0};
    cm_host host = {0};
    void *state[KILN_STATE_SLOTS] = {0};
    cm_inst *ci;
    int rc;
#ifdef HAVE_CM_PLAN
    if (b->image != NULL)
        rc = cm_inst_new_image(b->plan, b->image, NULL, &host, state, &ci, &err);
    else if (b->plan != NULL)
        rc = cm_inst_new_plan(b->plan, NULL, &host, state, &ci, &err);
    else
#endif
#ifdef HAVE_CM_MODS
    if (b->mods != NULL)
        rc = cm_inst_new_loaded(b->c, b->buf, "faas", b->mods, NULL, &host, state, &ci, &err);
    else
#endif
        rc = cm_inst_new(b->c, b->buf, "faas", NULL, &host, state, &ci, &err);
    if (rc != KILN_OK)
        die("cm_inst_new", &err);
    cm_arena *arena = cm_arena_new();
    cm_val result;
    if (arena == NULL || cm_inst_call(ci, b->fn, &b->arg, arena, &result, &err) != KILN_OK)
        die("cm_inst_call", &err);
    if (result.kind != CM_RESULT || result.var.index != 0)
        die("handle did not return ok", NULL);
    cm_arena_free(arena);
    cm_inst_free(ci);
}

/* ---- (b) the same core module, canonical ABI by hand ---------------------- */

typedef struct {
    kiln_module *m;
    kiln_linker *l;
    kiln_instance_pre *pre;
    int realloc_fn, handle, post;
} core_bench;

static void core_setup(core_bench *b, const char *path)
{
    kiln_err err = {0};
    kiln_aot_options opts = {.cc = NULL, .opt_level = 2};
    if (kiln_aot_load_file(path, &opts, &b->m, &err) != KILN_OK)
        die(path, &err);
    if (kiln_linker_new(&b->l) != KILN_OK || kiln_instance_pre_new(b->m, b->l, &b->pre, &err) != KILN_OK)
        die(path, &err);
    b->realloc_fn = kiln_module_find_export(b->m, "cabi_realloc", KILN_EXTERN_FUNC);
    b->handle = kiln_module_find_export(b->m, "handle", KILN_EXTERN_FUNC);
    b->post = kiln_module_find_export(b->m, "cabi_post_handle", KILN_EXTERN_FUNC);
    if (b->realloc_fn < 0 || b->handle < 0 || b->post < 0)
        die("core module lacks cabi_realloc, handle or cabi_post_handle", NULL);
}

/* Copy n bytes into guest memory through cabi_realloc; the guest address. */
static uint32_t place(core_bench *b, kiln_instance *inst, wasm_rt_memory_t *mem, const void *p,
                      uint32_t n)
{
    kiln_err err = {0};
    kiln_value args[4] = {{.i32 = 0}, {.i32 = 0}, {.i32 = 1}, {.i32 = n}}, r;
    if (kiln_instance_call_index(inst, b->realloc_fn, args, &r, &err) != KILN_OK)
        die("cabi_realloc", &err);
    if ((uint64_t)r.i32 + n > mem->size)
        die("cabi_realloc returned an address out of bounds", NULL);
    memcpy(mem->data + r.i32, p, n);
    return r.i32;
}

static void core_event(core_bench *b)
{
    kiln_err err = {0};
    kiln_instance *inst;
    if (kiln_instance_new(b->pre, NULL, NULL, &inst, &err) != KILN_OK)
        die("kiln_instance_new", &err);
    wasm_rt_memory_t *mem = kiln_instance_export_object(inst, "memory", KILN_EXTERN_MEMORY);
    if (mem == NULL)
        die("no memory export", NULL);
    static const uint8_t payload[4] = {1, 2, 3, 4};
    kiln_value a[11];
    a[0].i32 = 0; /* object-added */
    a[1].i64 = 1700000000;
    a[2].i32 = 5;
    a[3].i32 = place(b, inst, mem, "1", 1);
    a[4].i32 = 1;
    a[5].i32 = place(b, inst, mem, "kv:bench", 8);
    a[6].i32 = 8;
    a[7].i32 = place(b, inst, mem, "k", 1);
    a[8].i32 = 1;
    a[9].i32 = place(b, inst, mem, payload, 4);
    a[10].i32 = 4;
    kiln_value r;
    if (kiln_instance_call_index(inst, b->handle, a, &r, &err) != KILN_OK)
        die("handle", &err);
    if ((uint64_t)r.i32 + 16 > mem->size || mem->data[r.i32] != 0)
        die("handle did not return ok", NULL);
    if (kiln_instance_call_index(inst, b->post, &r, NULL, &err) != KILN_OK)
        die("cabi_post_handle", &err);
    kiln_instance_free(inst);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: component_bench component|component-loaded|core FILE.wasm EVENTS\n");
        return 2;
    }
    int comp = strncmp(argv[1], "component", 9) == 0;
    long n = atol(argv[3]);
    if (n < 1)
        return 2;
    comp_bench cb = {0};
    core_bench kb = {0};
    if (comp)
        comp_setup(&cb, argv[2]);
    if (strcmp(argv[1], "component-loaded") == 0 || strcmp(argv[1], "component-snapshot") == 0) {
#ifdef HAVE_CM_MODS
        kiln_err err = {0};
        cm_mods *mods;
        kiln_aot_options opts = {.cc = NULL, .opt_level = 2};
        if (cm_mods_load(cb.c, cb.buf, "faas", &opts, &mods, &err) != KILN_OK)
            die("cm_mods_load", &err);
        cb.mods = mods;
#ifdef HAVE_CM_PLAN
        cm_host host = {0};
        if (cm_plan_new(cb.c, cb.buf, "faas", mods, &host, &cb.plan, &err) != KILN_OK)
            die("cm_plan_new", &err);
        void *st[KILN_STATE_SLOTS] = {0};
        if (strcmp(argv[1], "component-snapshot") == 0 &&
            cm_image_build(cb.plan, NULL, st, &cb.image, &err) != KILN_OK)
            die("cm_image_build", &err);
#endif
#else
        die("component-loaded needs cm_mods_load (build with -DHAVE_CM_MODS)", NULL);
#endif
    }
    if (!comp)
        core_setup(&kb, argv[2]);
    /* Warm-up: compiles into the cache on the first event, fills the pools. */
    for (int i = 0; i < 200; i++)
        comp ? comp_event(&cb) : core_event(&kb);
    uint64_t *lat = malloc((size_t)n * sizeof(uint64_t));
    if (lat == NULL)
        return 1;
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        uint64_t s = now_ns();
        comp ? comp_event(&cb) : core_event(&kb);
        lat[i] = now_ns() - s;
    }
    uint64_t total = now_ns() - t0;
    qsort(lat, (size_t)n, sizeof(uint64_t), cmp_u64);
    printf("%s %.0f %.2f %.2f\n", argv[1], (double)n * 1e9 / (double)total,
           (double)lat[n / 2] / 1000.0, (double)lat[(n * 99) / 100] / 1000.0);
    free(lat);
    return 0;
}
