/*
 * pw_shared.c - shared data with compare-and-swap and shared queues (spec
 * §5.6), process-wide and thread-safe: every worker's VM of a filter sees
 * the same values. Both are keyed by the filter's vm_id (function config
 * `vm_id`, default the function's name — Envoy's default is "" for every
 * filter; Kiln isolates functions unless told to share).
 *
 * Data: a hash table under one mutex; every successful set gives the entry
 * a new cas. Queues: registered by a root context, which
 * proxy_on_queue_ready then notifies, on the registering VM's thread
 * (posted to its event loop; without a loop nobody is notified and the
 * queue is only polled with dequeue).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "abi/guest_log.h"
#include "abi/proxywasm/pw_int.h"
#include "base/alloc.h"

#define SD_BUCKETS 256
#define SD_MAX_BYTES ((size_t)64 << 20) /* all keys and values together */
#define Q_MAX 1024
#define Q_MAX_ITEMS 10000

typedef struct sd_entry {
    char *key; /* vm_id NUL key */
    size_t klen;
    uint8_t *val;
    size_t vlen;
    uint32_t cas;
    struct sd_entry *next;
} sd_entry;

static pthread_mutex_t sd_lock = PTHREAD_MUTEX_INITIALIZER;
static sd_entry *sd_table[SD_BUCKETS];
static uint32_t sd_cas_seq;
static size_t sd_bytes;

static uint32_t hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* "vm_id\0key" in a kiln_malloc'd buffer. */
static char *scoped_key(pw_vm *vm, const uint8_t *key, size_t len, size_t *out_len)
{
    size_t vl = strlen(vm->fn->vm_id);
    char *k = kiln_malloc(vl + 1 + len + 1);
    if (k == NULL)
        return NULL;
    memcpy(k, vm->fn->vm_id, vl + 1);
    memcpy(k + vl + 1, key, len);
    k[vl + 1 + len] = '\0';
    *out_len = vl + 1 + len;
    return k;
}

static sd_entry **sd_find(const char *k, size_t kl)
{
    sd_entry **p = &sd_table[hash((const uint8_t *)k, kl) % SD_BUCKETS];
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->klen == kl && memcmp((*p)->key, k, kl) == 0)
            break;
    return p;
}

static uint32_t hf_get_shared_data(kiln_instance *inst, uint32_t kptr, uint32_t klen,
                                   uint32_t ret_ptr, uint32_t ret_len, uint32_t cas_ptr)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *key = pw_in(inst, kptr, klen);
    if (key == NULL || kiln_guest_ptr(inst, cas_ptr, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    size_t kl;
    char *k = scoped_key(vm, key, klen, &kl);
    if (k == NULL)
        return PW_INTERNAL_FAILURE;
    uint8_t *copy = NULL;
    size_t vlen = 0;
    uint32_t cas = 0, st = PW_OK;
    pthread_mutex_lock(&sd_lock);
    sd_entry *e = *sd_find(k, kl);
    if (e == NULL) {
        st = PW_NOT_FOUND;
    } else {
        vlen = e->vlen;
        cas = e->cas;
        if (vlen > 0 && (copy = kiln_malloc(vlen)) == NULL)
            st = PW_INTERNAL_FAILURE;
        else if (vlen > 0)
            memcpy(copy, e->val, vlen);
    }
    pthread_mutex_unlock(&sd_lock);
    kiln_free(k);
    if (st != PW_OK)
        return st;
    pw_put_u32(inst, cas_ptr, cas);
    st = pw_out(inst, copy, vlen, ret_ptr, ret_len);
    kiln_free(copy);
    return pw_finish(inst, st);
}

static uint32_t hf_set_shared_data(kiln_instance *inst, uint32_t kptr, uint32_t klen,
                                   uint32_t vptr, uint32_t vlen, uint32_t cas)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *key = pw_in(inst, kptr, klen), *val = pw_in(inst, vptr, vlen);
    if (key == NULL || val == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    size_t kl;
    char *k = scoped_key(vm, key, klen, &kl);
    uint8_t *copy = kiln_malloc(vlen ? vlen : 1);
    if (k == NULL || copy == NULL) {
        kiln_free(k);
        kiln_free(copy);
        return PW_INTERNAL_FAILURE;
    }
    memcpy(copy, val, vlen);
    uint32_t st = PW_OK;
    pthread_mutex_lock(&sd_lock);
    sd_entry **p = sd_find(k, kl), *e = *p;
    if (e != NULL && cas != 0 && cas != e->cas) {
        st = PW_CAS_MISMATCH;
    } else if (e != NULL) {
        if (sd_bytes - e->vlen + vlen > SD_MAX_BYTES) {
            st = PW_INTERNAL_FAILURE;
        } else {
            sd_bytes = sd_bytes - e->vlen + vlen;
            kiln_free(e->val);
            e->val = copy;
            e->vlen = vlen;
            e->cas = ++sd_cas_seq ? sd_cas_seq : ++sd_cas_seq;
            copy = NULL;
        }
    } else if (sd_bytes + kl + vlen > SD_MAX_BYTES || (e = kiln_calloc(1, sizeof(*e))) == NULL) {
        st = PW_INTERNAL_FAILURE;
    } else {
        e->key = k;
        e->klen = kl;
        e->val = copy;
        e->vlen = vlen;
        e->cas = ++sd_cas_seq ? sd_cas_seq : ++sd_cas_seq;
        *p = e;
        sd_bytes += kl + vlen;
        k = NULL;
        copy = NULL;
    }
    pthread_mutex_unlock(&sd_lock);
    kiln_free(k);
    kiln_free(copy);
    return st;
}

/* ---- queues ---------------------------------------------------------------------- */

typedef struct q_item {
    uint8_t *data;
    size_t len;
    struct q_item *next;
} q_item;

typedef struct queue {
    char *vm_id, *name;
    q_item *head, *tail;
    size_t n;
    /* The registering root: notified by proxy_on_queue_ready. */
    pw_fn *owner; /* holds a reference */
    uint32_t owner_root;
    kl_loop *owner_loop;
} queue;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static queue *queues[Q_MAX]; /* id = index + 1 */
static unsigned n_queues;

static void fn_ref(pw_fn *f)
{
    atomic_fetch_add(&f->refs, 1);
}

static int q_lookup(const char *vm_id, size_t vl, const uint8_t *name, size_t nl)
{
    for (unsigned i = 0; i < n_queues; i++)
        if (strlen(queues[i]->vm_id) == vl && memcmp(queues[i]->vm_id, vm_id, vl) == 0 &&
            strlen(queues[i]->name) == nl && memcmp(queues[i]->name, name, nl) == 0)
            return (int)i;
    return -1;
}

static uint32_t hf_register_queue(kiln_instance *inst, uint32_t nptr, uint32_t nlen,
                                  uint32_t id_ptr)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *name = pw_in(inst, nptr, nlen);
    if (name == NULL || kiln_guest_ptr(inst, id_ptr, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    pw_root *r = pw_ctx_root(vm);
    if (r == NULL)
        return PW_BAD_ARGUMENT;
    const char *vm_id = vm->fn->vm_id;
    uint32_t st = PW_OK, id = 0;
    pthread_mutex_lock(&q_lock);
    int i = q_lookup(vm_id, strlen(vm_id), name, nlen);
    if (i < 0 && n_queues < Q_MAX) {
        queue *q = kiln_calloc(1, sizeof(*q));
        if (q != NULL) {
            q->vm_id = kiln_strdup(vm_id);
            q->name = kiln_strndup((const char *)name, nlen);
        }
        if (q == NULL || q->vm_id == NULL || q->name == NULL) {
            if (q != NULL) {
                kiln_free(q->vm_id);
                kiln_free(q->name);
            }
            kiln_free(q);
        } else {
            i = (int)n_queues;
            queues[n_queues++] = q;
        }
    }
    if (i < 0) {
        st = PW_INTERNAL_FAILURE;
    } else {
        queue *q = queues[i];
        /* The latest registration is the one notified (Envoy's too). */
        pw_fn_unref(q->owner);
        q->owner = vm->fn;
        fn_ref(vm->fn);
        q->owner_root = r->id;
        q->owner_loop = vm->loop;
        id = (uint32_t)i + 1;
    }
    pthread_mutex_unlock(&q_lock);
    if (st == PW_OK)
        pw_put_u32(inst, id_ptr, id);
    return st;
}

static uint32_t hf_resolve_queue(kiln_instance *inst, uint32_t vptr, uint32_t vlen,
                                 uint32_t nptr, uint32_t nlen, uint32_t id_ptr)
{
    pw_vm *vm = pw_vm_of(inst);
    const uint8_t *vid = pw_in(inst, vptr, vlen), *name = pw_in(inst, nptr, nlen);
    if (vid == NULL || name == NULL || kiln_guest_ptr(inst, id_ptr, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    const char *v = vlen ? (const char *)vid : vm->fn->vm_id;
    size_t vl = vlen ? vlen : strlen(vm->fn->vm_id);
    pthread_mutex_lock(&q_lock);
    int i = q_lookup(v, vl, name, nlen);
    pthread_mutex_unlock(&q_lock);
    if (i < 0)
        return PW_NOT_FOUND;
    pw_put_u32(inst, id_ptr, (uint32_t)i + 1);
    return PW_OK;
}

typedef struct q_notice {
    pw_fn *fn; /* holds a reference */
    uint32_t root, qid;
} q_notice;

/* On the owner's thread: proxy_on_queue_ready(root, qid). */
static void deliver(void *arg)
{
    q_notice *n = arg;
    pw_vm *vm = atomic_load(&n->fn->dead) ? NULL : pw_vm_find(n->fn);
    pw_root *r = vm != NULL ? pw_root_find(vm, n->root) : NULL;
    if (r != NULL) {
        kiln_err err;
        memset(&err, 0, sizeof(err));
        guest_log_budget b;
        guest_log_begin(&b, vm->fn->fn->name, &vm->fn->fn->log);
        uint32_t args[2] = {n->root, n->qid};
        pw_vm_retain(vm);
        if (pw_vm_call(vm, PW_EX_QUEUE_READY, n->root, args, 2, 0, NULL, &err) != KILN_OK)
            fprintf(stderr, "kiln serve: %s; the VM is recreated on next use\n", err.msg);
        else
            pw_root_callouts_start(r);
        pw_vm_release(vm);
        guest_log_end(&b);
    }
    pw_fn_unref(n->fn);
    kiln_free(n);
}

static uint32_t hf_enqueue(kiln_instance *inst, uint32_t id, uint32_t vptr, uint32_t vlen)
{
    (void)pw_vm_of(inst);
    const uint8_t *val = pw_in(inst, vptr, vlen);
    if (val == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    q_item *it = kiln_calloc(1, sizeof(*it));
    uint8_t *copy = kiln_malloc(vlen ? vlen : 1);
    q_notice *n = kiln_calloc(1, sizeof(*n));
    if (it == NULL || copy == NULL || n == NULL) {
        kiln_free(it);
        kiln_free(copy);
        kiln_free(n);
        return PW_INTERNAL_FAILURE;
    }
    memcpy(copy, val, vlen);
    it->data = copy;
    it->len = vlen;
    uint32_t st = PW_OK;
    kl_loop *loop = NULL;
    pthread_mutex_lock(&q_lock);
    queue *q = id >= 1 && id <= n_queues ? queues[id - 1] : NULL;
    if (q == NULL) {
        st = PW_NOT_FOUND;
    } else if (q->n >= Q_MAX_ITEMS) {
        st = PW_INTERNAL_FAILURE;
    } else {
        if (q->tail != NULL)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
        q->n++;
        it = NULL;
        if (q->owner != NULL && q->owner_loop != NULL) {
            loop = q->owner_loop;
            n->fn = q->owner;
            fn_ref(q->owner);
            n->root = q->owner_root;
            n->qid = id;
        }
    }
    pthread_mutex_unlock(&q_lock);
    if (it != NULL) {
        kiln_free(it->data);
        kiln_free(it);
    }
    /* Never call into a VM from here (this VM may be the owner): post. */
    if (loop == NULL || kl_post(loop, deliver, n) != KILN_OK) {
        pw_fn_unref(n->fn);
        kiln_free(n);
    }
    return st;
}

static uint32_t hf_dequeue(kiln_instance *inst, uint32_t id, uint32_t ret_ptr, uint32_t ret_len)
{
    (void)pw_vm_of(inst);
    if (kiln_guest_ptr(inst, ret_ptr, 4) == NULL || kiln_guest_ptr(inst, ret_len, 4) == NULL)
        return PW_INVALID_MEMORY_ACCESS;
    q_item *it = NULL;
    uint32_t st = PW_OK;
    pthread_mutex_lock(&q_lock);
    queue *q = id >= 1 && id <= n_queues ? queues[id - 1] : NULL;
    if (q == NULL) {
        st = PW_NOT_FOUND;
    } else if (q->head == NULL) {
        st = PW_EMPTY;
    } else {
        it = q->head;
        q->head = it->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->n--;
    }
    pthread_mutex_unlock(&q_lock);
    if (st != PW_OK)
        return st;
    st = pw_out(inst, it->data, it->len, ret_ptr, ret_len);
    kiln_free(it->data);
    kiln_free(it);
    return pw_finish(inst, st);
}

#define FN(name, sig, fn) {"env", name, sig, (void (*)(void))(fn)}
const kiln_hostfn pw_shared_fns[] = {
    FN("proxy_get_shared_data", "iiiii>i", hf_get_shared_data),
    FN("proxy_set_shared_data", "iiiii>i", hf_set_shared_data),
    FN("proxy_register_shared_queue", "iii>i", hf_register_queue),
    FN("proxy_resolve_shared_queue", "iiiii>i", hf_resolve_queue),
    FN("proxy_enqueue_shared_queue", "iii>i", hf_enqueue),
    FN("proxy_dequeue_shared_queue", "iii>i", hf_dequeue),
};
const size_t pw_shared_nfns = sizeof(pw_shared_fns) / sizeof(pw_shared_fns[0]);
