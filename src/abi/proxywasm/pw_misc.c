/*
 * pw_misc.c - the rest of the proxy-wasm host functions (spec §5.1, §5.5,
 * §5.7, §7): logging into the guest log, time, tick periods, status of the
 * last callout, effective context, proxy_done, properties, metrics (into
 * Kiln's registry, base/metrics.h), the stubs for what Kiln has no
 * equivalent of (gRPC, foreign functions, ABI 0.1.0 leftovers: the status
 * the spec documents), and the WASI functions the filter host replaces.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "abi/guest_log.h"
#include "abi/kiln/kiln_host.h"
#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"
#include "base/metrics.h"

/* ---- logging ------------------------------------------------------------------------ */

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "critical"};

/* The lowest level logged: the "kiln" host context's (info unless set). */
static uint32_t min_level(pw_vm *vm)
{
    const kiln_host_ctx *h = vm->fn->fn->host_state[KILN_STATE_HOST];
    return h != NULL ? (uint32_t)h->log_level : 2;
}

void pw_log(pw_vm *vm, uint32_t level, const char *msg, size_t len)
{
    if (level > 5 || level < min_level(vm))
        return;
    guest_log_write(vm->fn->fn->name ? vm->fn->fn->name : "filter", level_names[level], msg, len);
}

static uint32_t hf_log(kiln_instance *inst, uint32_t level, uint32_t ptr, uint32_t len)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *msg = pw_in(inst, ptr, len);
    if (msg == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    if (level > 5)
        return PW_BAD_ARGUMENT;
    pw_log(vm, level, (const char *)msg, len);
    return PW_OK;
}

static uint32_t hf_get_log_level(kiln_instance *inst, uint32_t ptr)
{
    pw_vm *vm = pw_vm_of(inst);
    return pw_put_u32(inst, ptr, min_level(vm)) ? PW_OK : PW_INVALID_MEMORY_ACCESS;
}

/* ---- time, ticks, contexts ------------------------------------------------------------ */

static uint32_t hf_time(kiln_instance *inst, uint32_t ptr)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return pw_put_u64(inst, ptr, ns) ? PW_OK : PW_INVALID_MEMORY_ACCESS;
}

static uint32_t hf_set_tick(kiln_instance *inst, uint32_t ms)
{
    pw_vm *vm = pw_vm_of(inst);
    pw_root *r = pw_ctx_root(vm);
    if (r == NULL)
        return PW_BAD_ARGUMENT;
    r->tick_ms = ms;
    pw_tick_arm(r);
    return PW_OK;
}

static uint32_t hf_get_status(kiln_instance *inst, uint32_t code_ptr, uint32_t msg_ptr,
                              uint32_t msg_len)
{
    pw_vm *vm = pw_vm_of(inst);
    pw_root *r = pw_ctx_root(vm);
    uint32_t code = r ? r->status_code : 0;
    const char *msg = r ? r->status_msg : "";
    if (!pw_put_u32(inst, code_ptr, code))
        return PW_INVALID_MEMORY_ACCESS;
    return pw_finish(inst, pw_out(inst, msg, strlen(msg), msg_ptr, msg_len));
}

static uint32_t hf_set_effective_context(kiln_instance *inst, uint32_t id)
{
    pw_vm *vm = pw_vm_of(inst);
    if (pw_stream_find(vm, id) == NULL && pw_root_find(vm, id) == NULL)
        return PW_BAD_ARGUMENT;
    vm->eff_ctx = id;
    return PW_OK;
}

static uint32_t hf_done(kiln_instance *inst)
{
    pw_vm *vm = pw_vm_of(inst);
    pw_root *r = pw_root_find(vm, pw_ctx_id(vm));
    if (r == NULL || !r->done_pending)
        return PW_NOT_FOUND;
    r->done_pending = false;
    return PW_OK;
}

/* ---- properties ------------------------------------------------------------------------ */

static uint32_t hf_get_property(kiln_instance *inst, uint32_t ptr, uint32_t len, uint32_t ret_ptr,
                                uint32_t ret_len)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *path = pw_in(inst, ptr, len);
    if (path == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    uint8_t *val = NULL;
    size_t vlen = 0;
    uint32_t st = pw_property(vm, path, len, &val, &vlen);
    if (st == PW_OK)
        st = pw_out(inst, val, vlen, ret_ptr, ret_len);
    kiln_free(val);
    return pw_finish(inst, st);
}

static uint32_t hf_set_property(kiln_instance *inst, uint32_t ptr, uint32_t len, uint32_t vptr,
                                uint32_t vlen)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *path = pw_in(inst, ptr, len), *val = pw_in(inst, vptr, vlen);
    if (path == NULL || val == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    return pw_property_set(vm, path, len, val, vlen);
}

/* ---- metrics --------------------------------------------------------------------------- */

/* Ids as cpp-host makes them: the registry index shifted left, the type in
 * the low two bits (opaque to filters). */
static uint32_t hf_define_metric(kiln_instance *inst, uint32_t type, uint32_t nptr, uint32_t nlen,
                                 uint32_t id_ptr)
{
    const uint8_t *name = pw_in(inst, nptr, nlen);
    if (name == NULL || kiln_guest_ptr(inst, id_ptr, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    if (type > 2)
        return PW_BAD_ARGUMENT;
    uint32_t id;
    int rc = metrics_define((metrics_type)type, (const char *)name, nlen, &id);
    if (rc != KILN_OK)
        return rc == KILN_EINVAL ? PW_BAD_ARGUMENT : PW_INTERNAL_FAILURE;
    pw_put_u32(inst, id_ptr, (id + 1) << 2 | type);
    return PW_OK;
}

static bool metric_index(uint32_t id, uint32_t *idx)
{
    if (id < 4)
        return false;
    *idx = (id >> 2) - 1;
    metrics_type t;
    return metrics_type_of(*idx, &t) == KILN_OK && (uint32_t)t == (id & 3);
}

static uint32_t hf_increment_metric(kiln_instance *inst, uint32_t id, uint64_t delta)
{
    (void)inst;
    uint32_t idx;
    if (!metric_index(id, &idx))
        return PW_NOT_FOUND;
    return metrics_add(idx, (int64_t)delta) == KILN_OK ? PW_OK : PW_BAD_ARGUMENT;
}

static uint32_t hf_record_metric(kiln_instance *inst, uint32_t id, uint64_t value)
{
    (void)inst;
    uint32_t idx;
    if (!metric_index(id, &idx))
        return PW_NOT_FOUND;
    return metrics_record(idx, value) == KILN_OK ? PW_OK : PW_BAD_ARGUMENT;
}

static uint32_t hf_get_metric(kiln_instance *inst, uint32_t id, uint32_t ptr)
{
    uint32_t idx;
    if (!metric_index(id, &idx))
        return PW_NOT_FOUND;
    int64_t v;
    if (metrics_get(idx, &v) != KILN_OK)
        return PW_BAD_ARGUMENT; /* histograms have no single value */
    return pw_put_u64(inst, ptr, (uint64_t)v) ? PW_OK : PW_INVALID_MEMORY_ACCESS;
}

/* ---- what Kiln has no equivalent of ------------------------------------------------------ */

static uint32_t hf_call_foreign(kiln_instance *inst, uint32_t a, uint32_t b, uint32_t c,
                                uint32_t d, uint32_t e, uint32_t f)
{
    (void)inst, (void)a, (void)b, (void)c, (void)d, (void)e, (void)f;
    return PW_NOT_FOUND; /* no foreign functions registered */
}

static uint32_t hf_grpc_call(kiln_instance *inst, uint32_t a, uint32_t b, uint32_t c, uint32_t d,
                             uint32_t e, uint32_t f, uint32_t g, uint32_t h, uint32_t i,
                             uint32_t j, uint32_t k, uint32_t l)
{
    (void)inst, (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h, (void)i,
        (void)j, (void)k, (void)l;
    return PW_UNIMPLEMENTED;
}

static uint32_t hf_grpc_stream(kiln_instance *inst, uint32_t a, uint32_t b, uint32_t c,
                               uint32_t d, uint32_t e, uint32_t f, uint32_t g, uint32_t h,
                               uint32_t i)
{
    (void)inst, (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h, (void)i;
    return PW_UNIMPLEMENTED;
}

static uint32_t hf_grpc_send(kiln_instance *inst, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    (void)inst, (void)a, (void)b, (void)c, (void)d;
    return PW_UNIMPLEMENTED;
}

static uint32_t hf_grpc_token(kiln_instance *inst, uint32_t token)
{
    (void)inst, (void)token;
    return PW_NOT_FOUND; /* no gRPC call can exist */
}

static uint32_t hf_unimplemented0(kiln_instance *inst)
{
    (void)inst;
    return PW_UNIMPLEMENTED;
}

static uint32_t hf_get_configuration(kiln_instance *inst, uint32_t a, uint32_t b)
{
    (void)inst, (void)a, (void)b;
    return PW_UNIMPLEMENTED; /* ABI 0.1.0: buffer 7 replaces it */
}

/* ---- WASI replacements (both module names) ---------------------------------------------- */

/* fd_write: stdout to the log at info, stderr at error, one trailing
 * newline dropped per write; other fds: BADF (8). */
static uint32_t wasi_fd_write(kiln_instance *inst, uint32_t fd, uint32_t iovs, uint32_t n,
                              uint32_t nwritten)
{
    pw_vm *vm = pw_vm_of(inst);
    if (fd != 1 && fd != 2)
        return 8;
    const uint8_t *v = kiln_guest_array(inst, iovs, n, 8);
    if (v == NULL || kiln_guest_ptr(inst, nwritten, 4) == NULL)
        return 21; /* FAULT */
    char line[KILN_LOG_MAX_LINE_BYTES];
    size_t used = 0, total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = (uint32_t)v[8 * i] | (uint32_t)v[8 * i + 1] << 8 |
                     (uint32_t)v[8 * i + 2] << 16 | (uint32_t)v[8 * i + 3] << 24;
        uint32_t l = (uint32_t)v[8 * i + 4] | (uint32_t)v[8 * i + 5] << 8 |
                     (uint32_t)v[8 * i + 6] << 16 | (uint32_t)v[8 * i + 7] << 24;
        const uint8_t *b = kiln_guest_ptr(inst, p, l);
        if (b == NULL)
            return 21;
        size_t take = l < sizeof(line) - used ? l : sizeof(line) - used;
        memcpy(line + used, b, take);
        used += take;
        total += l;
    }
    if (used > 0 && line[used - 1] == '\n')
        used--;
    if (vm != NULL && used > 0)
        pw_log(vm, fd == 1 ? 2 : 4, line, used);
    pw_put_u32(inst, nwritten, (uint32_t)total);
    return 0;
}

/* poll_oneoff: no events, at once. A filter's VM is shared by the requests
 * of a worker: it must never wait inside a call (Go's runtime only needs
 * success). */
static uint32_t wasi_poll_oneoff(kiln_instance *inst, uint32_t in, uint32_t out, uint32_t n,
                                 uint32_t nevents)
{
    (void)in, (void)out, (void)n;
    return pw_put_u32(inst, nevents, 0) ? 0 : 21;
}

#define FN(name, sig, fn) {"env", name, sig, (void (*)(void))(fn)}
const kiln_hostfn pw_misc_fns[] = {
    FN("proxy_log", "iii>i", hf_log),
    FN("proxy_get_log_level", "i>i", hf_get_log_level),
    FN("proxy_get_current_time_nanoseconds", "i>i", hf_time),
    FN("proxy_set_tick_period_milliseconds", "i>i", hf_set_tick),
    FN("proxy_get_status", "iii>i", hf_get_status),
    FN("proxy_set_effective_context", "i>i", hf_set_effective_context),
    FN("proxy_done", ">i", hf_done),
    FN("proxy_get_property", "iiii>i", hf_get_property),
    FN("proxy_set_property", "iiii>i", hf_set_property),
    FN("proxy_define_metric", "iiii>i", hf_define_metric),
    FN("proxy_increment_metric", "ij>i", hf_increment_metric),
    FN("proxy_record_metric", "ij>i", hf_record_metric),
    FN("proxy_get_metric", "ii>i", hf_get_metric),
    FN("proxy_call_foreign_function", "iiiiii>i", hf_call_foreign),
    FN("proxy_grpc_call", "iiiiiiiiiiii>i", hf_grpc_call),
    FN("proxy_grpc_stream", "iiiiiiiii>i", hf_grpc_stream),
    FN("proxy_grpc_send", "iiii>i", hf_grpc_send),
    FN("proxy_grpc_cancel", "i>i", hf_grpc_token),
    FN("proxy_grpc_close", "i>i", hf_grpc_token),
    FN("proxy_clear_route_cache", ">i", hf_unimplemented0),
    FN("proxy_get_configuration", "ii>i", hf_get_configuration),
};
const size_t pw_misc_nfns = sizeof(pw_misc_fns) / sizeof(pw_misc_fns[0]);

const kiln_hostfn pw_wasi_fns[] = {
    {"wasi_snapshot_preview1", "fd_write", "iiii>i", (void (*)(void))wasi_fd_write},
    {"wasi_snapshot_preview1", "poll_oneoff", "iiii>i", (void (*)(void))wasi_poll_oneoff},
    {"wasi_unstable", "fd_write", "iiii>i", (void (*)(void))wasi_fd_write},
    {"wasi_unstable", "poll_oneoff", "iiii>i", (void (*)(void))wasi_poll_oneoff},
};
const size_t pw_wasi_nfns = sizeof(pw_wasi_fns) / sizeof(pw_wasi_fns[0]);
