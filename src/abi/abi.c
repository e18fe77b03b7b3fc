/*
 * abi.c - the registry of built-in handler ABIs and the kiln_response
 * helpers they share (include/kiln/handler.h). The only place that lists
 * ABIs by name: the server calls kiln_abi_find/kiln_abi_detect. The ops it
 * hands out wrap each ABI's handle() in the guest log budget of the
 * invocation (guest_log.h), so every ABI's logging is bounded the same way
 * without each one keeping its own count.
 */
#include <pthread.h>
#include <string.h>

#include "abi/guest_log.h"
#include "base/alloc.h"
#include "kiln/handler.h"

/* Defined by each ABI module. */
extern const kiln_abi_ops kiln_abi_cgi;
extern const kiln_abi_ops kiln_abi_extism;
extern const kiln_abi_ops kiln_abi_otoroshi;
extern const kiln_abi_ops kiln_abi_opa;
extern const kiln_abi_ops kiln_abi_proxywasm;
extern const kiln_abi_ops kiln_abi_component;

static const kiln_abi_ops *const registry[] = {&kiln_abi_cgi, &kiln_abi_extism,
                                               &kiln_abi_otoroshi, &kiln_abi_opa,
                                               &kiln_abi_proxywasm, &kiln_abi_component};
#define N_ABIS (sizeof(registry) / sizeof(registry[0]))

/* One invocation: the guest's log lines count against fn's budget. */
static int budgeted(size_t i, const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                    const kiln_request *req, kiln_response *resp, kiln_err *err)
{
    guest_log_budget b;
    guest_log_begin(&b, fn->name, &fn->log);
    int rc = registry[i]->handle(fn, state, pre, req, resp, err);
    guest_log_end(&b);
    return rc;
}

#define BUDGETED(i)                                                                                \
    static int handle_##i(const kiln_function *fn, void *state, const kiln_instance_pre *pre,     \
                          const kiln_request *req, kiln_response *resp, kiln_err *err)             \
    {                                                                                              \
        return budgeted(i, fn, state, pre, req, resp, err);                                        \
    }
BUDGETED(0)
BUDGETED(1)
BUDGETED(2)
BUDGETED(3)
BUDGETED(4)
BUDGETED(5)
typedef int (*handle_fn)(const kiln_function *, void *, const kiln_instance_pre *,
                         const kiln_request *, kiln_response *, kiln_err *);
static const handle_fn budgeted_handles[] = {handle_0, handle_1, handle_2, handle_3,
                                              handle_4, handle_5};
_Static_assert(sizeof(budgeted_handles) / sizeof(budgeted_handles[0]) ==
                   sizeof(registry) / sizeof(registry[0]),
               "one BUDGETED(i) per registered ABI");

/* The registry's ops with handle() wrapped; built once (the ABIs' ops are
 * constants of other files, which C cannot copy at compile time). */
static kiln_abi_ops served[N_ABIS];
static pthread_once_t served_once = PTHREAD_ONCE_INIT;

static void served_init(void)
{
    for (size_t i = 0; i < N_ABIS; i++) {
        served[i] = *registry[i];
        served[i].handle = budgeted_handles[i];
    }
}

const kiln_abi_ops *kiln_abi_find(const char *name)
{
    pthread_once(&served_once, served_init);
    for (size_t i = 0; i < N_ABIS; i++)
        if (strcmp(served[i].name, name) == 0)
            return &served[i];
    return NULL;
}

const kiln_abi_ops *kiln_abi_detect(const kiln_module *m)
{
    pthread_once(&served_once, served_init);
    const kiln_abi_ops *best = NULL;
    int best_score = 0;
    for (size_t i = 0; i < N_ABIS; i++) {
        const kiln_abi_ops *a = &served[i];
        int s = a->detect != NULL ? a->detect(m) : 0;
        if (s > best_score) {
            best = a;
            best_score = s;
        }
    }
    return best;
}

const kiln_abi_ops *kiln_abi_claim(const uint8_t *head, size_t n)
{
    pthread_once(&served_once, served_init);
    for (size_t i = 0; i < N_ABIS; i++)
        if (served[i].claims != NULL && served[i].load != NULL && served[i].claims(head, n))
            return &served[i];
    return NULL;
}

/* ---- responses ------------------------------------------------------------- */

void kiln_response_init(kiln_response *r, size_t max_body)
{
    memset(r, 0, sizeof(*r));
    r->status = 200;
    r->max_body = max_body;
}

void kiln_response_reset(kiln_response *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        kiln_free((void *)r->headers[i].name);
        kiln_free((void *)r->headers[i].value);
    }
    r->n_headers = 0;
    r->body_len = 0;
    r->status = 200;
}

void kiln_response_fini(kiln_response *r)
{
    kiln_response_reset(r);
    kiln_free(r->headers);
    kiln_free(r->body);
    memset(r, 0, sizeof(*r));
}

int kiln_response_add_header_n(kiln_response *r, const char *name, size_t nlen, const char *value,
                               size_t vlen)
{
    if (r->n_headers == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 8;
        kiln_kv *h = kiln_realloc(r->headers, cap * sizeof(*h));
        if (h == NULL)
            return KILN_ENOMEM;
        r->headers = h;
        r->cap_headers = cap;
    }
    char *n = kiln_strndup(name, nlen), *v = kiln_strndup(value, vlen);
    if (n == NULL || v == NULL) {
        kiln_free(n);
        kiln_free(v);
        return KILN_ENOMEM;
    }
    r->headers[r->n_headers].name = n;
    r->headers[r->n_headers].value = v;
    r->n_headers++;
    return KILN_OK;
}

int kiln_response_add_header(kiln_response *r, const char *name, const char *value)
{
    return kiln_response_add_header_n(r, name, strlen(name), value, strlen(value));
}

int kiln_response_append(kiln_response *r, const void *data, size_t len)
{
    if (len == 0)
        return KILN_OK;
    if (r->max_body != 0 && (r->body_len > r->max_body || len > r->max_body - r->body_len))
        return KILN_ELIMIT;
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + len)
            cap *= 2;
        uint8_t *b = kiln_realloc(r->body, cap);
        if (b == NULL)
            return KILN_ENOMEM;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return KILN_OK;
}

/* ---- event types (handler.h "events") ---------------------------------------------- */

static const char *const event_type_names[KILN_EVENT_TYPES] = {
    "object-added", "object-removed", "object-updated", "scheduled", "message"};

const char *kiln_event_type_name(kiln_event_type type)
{
    return (unsigned)type < KILN_EVENT_TYPES ? event_type_names[type] : "?";
}

int kiln_event_type_parse(const char *name)
{
    for (int i = 0; i < KILN_EVENT_TYPES; i++)
        if (strcmp(event_type_names[i], name) == 0)
            return i;
    return -1;
}
