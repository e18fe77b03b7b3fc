/*
 * kiln_host.c - what the halves of Kiln's own host module share: linking
 * both tables, the status mapping and guest stores (kiln_host.h).
 */
#include <string.h>

#include "abi/kiln/kiln_host.h"
#include "kiln/abi.h"
#include "kiln/host_abi.h"

int kiln_host_define(kiln_linker *l)
{
    size_t n;
    const kiln_hostfn *kv = kiln_kv_hostfns(&n);
    int rc = kiln_linker_define_host(l, kv, n);
    const kiln_hostfn *net = kiln_net_hostfns(&n);
    if (rc == KILN_OK)
        rc = kiln_linker_define_host(l, net, n);
    return rc;
}

int32_t kiln_host_code(int rc)
{
    switch (rc) {
    case KILN_OK:
        return KILN_HOST_OK;
    case KILN_ENOENT:
        return KILN_HOST_ENOTFOUND;
    case KILN_EPERM:
        return KILN_HOST_EDENIED;
    case KILN_ELIMIT:
        return KILN_HOST_ELIMIT;
    case KILN_EINVAL:
        return KILN_HOST_EINVAL;
    case KILN_ETYPE:
        return KILN_HOST_ETYPE;
    case KILN_ENOMEM:
        return KILN_HOST_ENOMEM;
    case KILN_ETIMEOUT:
        return KILN_HOST_ETIMEOUT;
    default:
        return KILN_HOST_EIO;
    }
}

bool kiln_host_put_u32(kiln_instance *inst, uint32_t ptr, uint32_t v)
{
    void *p = kiln_guest_ptr(inst, ptr, 4);
    if (p == NULL)
        return false;
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    memcpy(p, b, 4);
    return true;
}
