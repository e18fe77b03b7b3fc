/*
 * netlibs.c - libcurl and libmicrohttpd, loaded on first use.
 *
 * Why: linked normally, the two pull 31 more shared libraries into every
 * `kiln` process (gnutls, krb5, ldap, ssh2, nghttp2, ...); the dynamic
 * loader spent more than half of a cached `kiln run`'s 13.9 ms mapping and
 * relocating them, though `kiln run` never serves HTTP or makes a request
 * unless a guest does. So Kiln is not linked against them: this file
 * defines every curl_* and MHD_* function Kiln calls, each forwarding to the
 * real one, which is dlopen'ed (RTLD_LOCAL) the first time any function of
 * that library is called. Measurements: docs/internals/snapshot.md §5.
 *
 * Contract: behaviour is the library's. If a library cannot be loaded, one
 * line says so on stderr and every call fails the way the library reports
 * failure (NULL, CURLE_FAILED_INIT, MHD_NO, ...), so callers' existing error
 * paths apply. Thread-safe (pthread_once). Adding a call to a new curl_* or
 * MHD_* function means adding it here (the link fails until then).
 *
 * The symbols are hidden (-fvisibility=hidden), so the libraries' own
 * internal calls never bind to these shims.
 */
#define CURL_DISABLE_TYPECHECK 1 /* curl.h would turn curl_easy_setopt into a macro */
#include <curl/curl.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* ret, name, (params), (args), value on failure */
#define CURL_FNS(X)                                                                                \
    X(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                        \
    X(CURL *, curl_easy_init, (void), (), NULL)                                                    \
    X(CURLcode, curl_easy_perform, (CURL * h), (h), CURLE_FAILED_INIT)                             \
    X(CURLM *, curl_multi_init, (void), (), NULL)                                                  \
    X(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL * h), (m, h), CURLM_INTERNAL_ERROR)       \
    X(CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void *p), (m, s, p),              \
      CURLM_INTERNAL_ERROR)                                                                        \
    X(CURLMcode, curl_multi_cleanup, (CURLM * m), (m), CURLM_INTERNAL_ERROR)                       \
    X(CURLMsg *, curl_multi_info_read, (CURLM * m, int *n), (m, n), NULL)                          \
    X(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL * h), (m, h), CURLM_INTERNAL_ERROR)    \
    X(CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int ev, int *running),     \
      (m, s, ev, running), CURLM_INTERNAL_ERROR)                                                   \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s), NULL) \
    X(CURLU *, curl_url, (void), (), NULL)                                                         \
    X(CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned int flags),      \
      (u, what, part, flags), CURLUE_OUT_OF_MEMORY)                                                \
    X(CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned int flags),  \
      (u, what, part, flags), CURLUE_OUT_OF_MEMORY)
#define CURL_VOID_FNS(X)                                                                           \
    X(curl_easy_cleanup, (CURL * h), (h))                                                          \
    X(curl_easy_reset, (CURL * h), (h))                                                            \
    X(curl_free, (void *p), (p))                                                                   \
    X(curl_slist_free_all, (struct curl_slist * l), (l))                                           \
    X(curl_url_cleanup, (CURLU * u), (u))

#define MHD_FNS(X)                                                                                 \
    X(enum MHD_Result, MHD_add_response_header,                                                    \
      (struct MHD_Response * r, const char *h, const char *c), (r, h, c), MHD_NO)                  \
    X(struct MHD_Response *, MHD_create_response_from_buffer,                                      \
      (size_t size, void *buf, enum MHD_ResponseMemoryMode mode), (size, buf, mode), NULL)         \
    X(struct MHD_Response *, MHD_create_response_from_buffer_with_free_callback,                   \
      (size_t size, void *buf, MHD_ContentReaderFreeCallback f), (size, buf, f), NULL)             \
    X(int, MHD_get_connection_values,                                                              \
      (struct MHD_Connection * c, enum MHD_ValueKind k, MHD_KeyValueIterator it, void *cls),       \
      (c, k, it, cls), -1)                                                                         \
    X(enum MHD_Result, MHD_get_timeout, (struct MHD_Daemon * d, unsigned long long *t), (d, t),    \
      MHD_NO)                                                                                      \
    X(const char *, MHD_lookup_connection_value,                                                   \
      (struct MHD_Connection * c, enum MHD_ValueKind k, const char *key), (c, k, key), NULL)       \
    X(enum MHD_Result, MHD_queue_response,                                                         \
      (struct MHD_Connection * c, unsigned int status, struct MHD_Response *r), (c, status, r),   \
      MHD_NO)                                                                                      \
    X(MHD_socket, MHD_quiesce_daemon, (struct MHD_Daemon * d), (d), MHD_INVALID_SOCKET)            \
    X(enum MHD_Result, MHD_run, (struct MHD_Daemon * d), (d), MHD_NO)                              \
    X(struct MHD_Daemon *, MHD_start_daemon_va,                                                    \
      (unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,             \
       MHD_AccessHandlerCallback dh, void *dh_cls, va_list ap),                                    \
      (flags, port, apc, apc_cls, dh, dh_cls, ap), NULL)
#define MHD_VOID_FNS(X)                                                                            \
    X(MHD_destroy_response, (struct MHD_Response * r), (r))                                        \
    X(MHD_resume_connection, (struct MHD_Connection * c), (c))                                     \
    X(MHD_stop_daemon, (struct MHD_Daemon * d), (d))                                               \
    X(MHD_suspend_connection, (struct MHD_Connection * c), (c))

/* The varargs functions, forwarded by hand below. */
#define CURL_VA_FNS(X)                                                                             \
    X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...))                                       \
    X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                                        \
    X(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...))                                   \
    X(const char *, curl_easy_strerror, (CURLcode))
#define MHD_VA_FNS(X)                                                                              \
    X(const union MHD_ConnectionInfo *, MHD_get_connection_info,                                   \
      (struct MHD_Connection *, enum MHD_ConnectionInfoType, ...))                                 \
    X(const union MHD_DaemonInfo *, MHD_get_daemon_info,                                           \
      (struct MHD_Daemon *, enum MHD_DaemonInfoType, ...))

#define FIELD(ret, name, params, args, fail) ret(*name) params;
#define VFIELD(name, params, args) void(*name) params;
#define VAFIELD(ret, name, params) ret(*name) params;
static struct {
    CURL_FNS(FIELD) CURL_VOID_FNS(VFIELD) CURL_VA_FNS(VAFIELD)
} cu;
static struct {
    MHD_FNS(FIELD) MHD_VOID_FNS(VFIELD) MHD_VA_FNS(VAFIELD)
} mh;
static int cu_ok, mh_ok;
static pthread_once_t cu_once = PTHREAD_ONCE_INIT, mh_once = PTHREAD_ONCE_INIT;

/* Open `soname` and resolve every name into the table (all or nothing). */
static int open_lib(const char *soname, const char *what, void **table, const char *const *names,
                    size_t n)
{
    void *dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "kiln: cannot load %s (%s): %s is unavailable\n", soname, dlerror(), what);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        table[i] = dlsym(dl, names[i]);
        if (table[i] == NULL) {
            fprintf(stderr, "kiln: %s has no %s: %s is unavailable\n", soname, names[i], what);
            return 0;
        }
    }
    return 1; /* never closed: callers keep its handles */
}

#define NAME(ret, name, params, args, fail) #name,
#define VNAME(name, params, args) #name,
#define VANAME(ret, name, params) #name,
static void cu_load(void)
{
    static const char *const names[] = {CURL_FNS(NAME) CURL_VOID_FNS(VNAME) CURL_VA_FNS(VANAME)};
    _Static_assert(sizeof(cu) == sizeof(names) / sizeof(names[0]) * sizeof(void *), "table");
    cu_ok = open_lib("libcurl.so.4", "outbound HTTP", (void **)&cu, names,
                     sizeof(names) / sizeof(names[0]));
}
static void mh_load(void)
{
    static const char *const names[] = {MHD_FNS(NAME) MHD_VOID_FNS(VNAME) MHD_VA_FNS(VANAME)};
    _Static_assert(sizeof(mh) == sizeof(names) / sizeof(names[0]) * sizeof(void *), "table");
    mh_ok = open_lib("libmicrohttpd.so.12", "the HTTP server", (void **)&mh, names,
                     sizeof(names) / sizeof(names[0]));
}
static int cu_ready(void)
{
    pthread_once(&cu_once, cu_load);
    return cu_ok;
}
static int mh_ready(void)
{
    pthread_once(&mh_once, mh_load);
    return mh_ok;
}

#define CU_DEF(ret, name, params, args, fail)                                                      \
    ret name params { return cu_ready() ? cu.name args : (fail); }
#define CU_VDEF(name, params, args)                                                                \
    void name params { if (cu_ready()) cu.name args; }
#define MH_DEF(ret, name, params, args, fail)                                                      \
    ret name params { return mh_ready() ? mh.name args : (fail); }
#define MH_VDEF(name, params, args)                                                                \
    void name params { if (mh_ready()) mh.name args; }
CURL_FNS(CU_DEF)
CURL_VOID_FNS(CU_VDEF)
MHD_FNS(MH_DEF)
MHD_VOID_FNS(MH_VDEF)

/* Every option Kiln passes is one long, pointer or curl_off_t: all of them
 * travel as one 64-bit integer-class argument, so forwarding it as a
 * pointer-sized value is exact on the LP64 ABIs Kiln supports. */
_Static_assert(sizeof(void *) == sizeof(long) && sizeof(curl_off_t) == sizeof(void *), "LP64");

CURLcode curl_easy_setopt(CURL *h, CURLoption o, ...)
{
    va_list ap;
    va_start(ap, o);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return cu_ready() ? cu.curl_easy_setopt(h, o, arg) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO i, ...)
{
    va_list ap;
    va_start(ap, i);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return cu_ready() ? cu.curl_easy_getinfo(h, i, arg) : CURLE_FAILED_INIT;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption o, ...)
{
    va_list ap;
    va_start(ap, o);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return cu_ready() ? cu.curl_multi_setopt(m, o, arg) : CURLM_INTERNAL_ERROR;
}

const char *curl_easy_strerror(CURLcode c)
{
    return cu_ready() ? cu.curl_easy_strerror(c) : "libcurl could not be loaded";
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
                                    MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    va_list ap;
    va_start(ap, dh_cls);
    struct MHD_Daemon *d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
    va_end(ap);
    return d;
}

/* The info kinds Kiln asks for take no extra arguments. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
                                                        enum MHD_ConnectionInfoType t, ...)
{
    return mh_ready() ? mh.MHD_get_connection_info(c, t) : NULL;
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d, enum MHD_DaemonInfoType t,
                                                ...)
{
    return mh_ready() ? mh.MHD_get_daemon_info(d, t) : NULL;
}
