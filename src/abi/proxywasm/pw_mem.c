/*
 * pw_mem.c - guest memory for the proxy-wasm host: checked reads, values
 * returned through the guest's allocator (spec §1), and the header "pairs"
 * format (§4.1). Every guest (ptr, len) goes through kiln_guest_ptr; the
 * memory base is re-read after every allocator call because it may grow.
 */
#include <string.h>

#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"

const uint8_t *pw_in(kiln_instance *inst, uint32_t ptr, uint32_t len)
{
    if (len == 0)
        return (const uint8_t *)"";
    return kiln_guest_ptr(inst, ptr, len);
}

bool pw_put_u32(kiln_instance *inst, uint32_t ptr, uint32_t v)
{
    uint8_t *p = kiln_guest_ptr(inst, ptr, 4);
    if (p == NULL)
        return false;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return true;
}

bool pw_put_u64(kiln_instance *inst, uint32_t ptr, uint64_t v)
{
    uint8_t *p = kiln_guest_ptr(inst, ptr, 8);
    if (p == NULL)
        return false;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return true;
}

uint32_t pw_out(kiln_instance *inst, const void *data, size_t len, uint32_t ret_ptr,
                uint32_t ret_len)
{
    /* Check the out-pointers first: a bad one must not cost an allocation. */
    if (kiln_guest_ptr(inst, ret_ptr, 4) == NULL || kiln_guest_ptr(inst, ret_len, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    if (len == 0) {
        pw_put_u32(inst, ret_ptr, 0);
        pw_put_u32(inst, ret_len, 0);
        return PW_OK;
    }
    if (len > UINT32_MAX)
        return PW_INTERNAL_FAILURE;
    pw_vm *vm = pw_vm_of(inst);
    kiln_value arg = {.i32 = (uint32_t)len}, res = {.i32 = 0};
    kiln_err err;
    memset(&err, 0, sizeof(err));
    /* Re-enter the guest: its allocator may grow memory. Exactly `len`
     * bytes: AssemblyScript uses the whole allocation as the value. */
    int rc = kiln_instance_call_index(inst, vm->fn->ex[PW_EX_ALLOC], &arg, &res, &err);
    uint8_t *dst = rc == KILN_OK ? kiln_guest_ptr(inst, res.i32, len) : NULL;
    if (rc == KILN_OK && (res.i32 == 0 || dst == NULL))
        kiln_err_set(&err, KILN_ETRAP, "the filter's allocator could not give %zu bytes for a "
                     "host value", len);
    if (rc != KILN_OK || dst == NULL || res.i32 == 0) {
        /* The caller frees what it holds, then pw_finish unwinds. */
        vm->trap_rc = rc == KILN_OK ? KILN_ETRAP : rc;
        vm->trap = err;
        if (rc == KILN_OK)
            vm->trap.trap = KILN_TRAP_OUT_OF_MEMORY;
        return PW_TRAPPED;
    }
    memcpy(dst, data, len);
    pw_put_u32(inst, ret_ptr, res.i32);
    pw_put_u32(inst, ret_len, (uint32_t)len);
    return PW_OK;
}

uint32_t pw_finish(kiln_instance *inst, uint32_t st)
{
    if (st != PW_TRAPPED)
        return st;
    pw_vm *vm = pw_vm_of(inst);
    if (vm->trap_rc == KILN_EEXIT)
        kiln_host_exit(inst, vm->trap.exit_code);
    kiln_host_trap(inst, vm->trap.trap ? vm->trap.trap : KILN_TRAP_HOST, "%s", vm->trap.msg);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t pw_pairs_size(const kiln_kv *h, size_t n)
{
    if (n == 0)
        return 0;
    size_t s = 4;
    for (size_t i = 0; i < n; i++)
        s += 8 + strlen(h[i].name) + 1 + strlen(h[i].value) + 1;
    return s;
}

void pw_pairs_write(const kiln_kv *h, size_t n, uint8_t *out)
{
    if (n == 0)
        return;
    put_le32(out, (uint32_t)n);
    uint8_t *sizes = out + 4, *data = out + 4 + 8 * n;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(h[i].name), vl = strlen(h[i].value);
        put_le32(sizes + 8 * i, (uint32_t)kl);
        put_le32(sizes + 8 * i + 4, (uint32_t)vl);
        memcpy(data, h[i].name, kl);
        data[kl] = 0;
        data += kl + 1;
        memcpy(data, h[i].value, vl);
        data[vl] = 0;
        data += vl + 1;
    }
}

void pw_kv_free(kiln_kv *h, size_t n)
{
    for (size_t i = 0; h != NULL && i < n; i++) {
        kiln_free((void *)h[i].name);
        kiln_free((void *)h[i].value);
    }
    kiln_free(h);
}

#define PW_MAX_PAIRS 1024

bool pw_pairs_parse(const uint8_t *data, size_t len, bool lower, kiln_kv **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* Empty forms: no bytes, the one-byte "\0", and N = 0 (AssemblyScript). */
    if (len == 0 || (len == 1 && data[0] == 0))
        return true;
    if (len < 4)
        return false;
    uint32_t count = get_le32(data);
    if (count == 0)
        return len == 4;
    if (count > PW_MAX_PAIRS || (uint64_t)count * 8 > len - 4)
        return false;
    const uint8_t *sizes = data + 4, *p = data + 4 + 8 * (size_t)count, *end = data + len;
    kiln_kv *h = kiln_calloc(count, sizeof(*h));
    if (h == NULL)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t kl = get_le32(sizes + 8 * i), vl = get_le32(sizes + 8 * i + 4);
        if ((size_t)(end - p) < (uint64_t)kl + 1 || p[kl] != 0)
            goto bad;
        const uint8_t *k = p;
        p += kl + 1;
        if ((size_t)(end - p) < (uint64_t)vl + 1 || p[vl] != 0)
            goto bad;
        const uint8_t *v = p;
        p += vl + 1;
        char *kc = kiln_strndup((const char *)k, kl), *vc = kiln_strndup((const char *)v, vl);
        h[i].name = kc;
        h[i].value = vc;
        if (kc == NULL || vc == NULL)
            goto bad;
        for (char *c = kc; lower && *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c + 32);
    }
    if (p != end)
        goto bad;
    *out = h;
    *n = count;
    return true;
bad:
    pw_kv_free(h, count);
    return false;
}
