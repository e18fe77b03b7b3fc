/*
 * host_abi.h - conventions of Kiln's own guest host module, import module
 * "kiln" (used by sdk/c/kiln.h; documented in docs/abi/kiln-host.md).
 *
 * Every "kiln" host function returns an i32: >= 0 is success (a length,
 * a count or 0), < 0 is one of the KILN_HOST_E* codes below. Guest buffers
 * are (ptr, len) pairs in memory 0; output that does not fit a guest buffer
 * is not truncated silently: the function returns KILN_HOST_ETOOSMALL and
 * writes the needed length to the out-length pointer, so the guest can retry.
 * Guest-visible codes are part of the ABI: numbered, never reused.
 */
#ifndef KILN_HOST_ABI_H
#define KILN_HOST_ABI_H

#define KILN_HOST_IMPORT_MODULE "kiln"

#define KILN_HOST_STATUS_MAP(X)                                                                    \
    X(OK, 0, "ok")                                                                                 \
    X(ENOTFOUND, -1, "not found")                                                                  \
    X(ETOOSMALL, -2, "buffer too small")                                                           \
    X(EDENIED, -3, "not granted to this function")                                                 \
    X(ELIMIT, -4, "limit exceeded")                                                                \
    X(EINVAL, -5, "invalid argument")                                                              \
    X(EEXISTS, -6, "already exists")                                                               \
    X(EIO, -7, "storage or network error")                                                         \
    X(ETIMEOUT, -8, "timed out")                                                                   \
    X(ENOMEM, -9, "out of memory")                                                                 \
    X(ETYPE, -10, "wrong value type")                                                              \
    X(EUNAVAILABLE, -11, "not available in this context")

typedef enum kiln_host_status {
#define KILN_HOST_ENUM_(name, value, text) KILN_HOST_##name = value,
    KILN_HOST_STATUS_MAP(KILN_HOST_ENUM_)
#undef KILN_HOST_ENUM_
} kiln_host_status;

#endif
