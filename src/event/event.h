/*
 * event.h - delivery of storage events (docs/internals/events.md).
 *
 * The queues live in the KV stores (kv.h "storage events"): a committed
 * write in a subscribed namespace queued one event per subscriber in the
 * same transaction. The dispatcher takes them from there and runs each on a
 * serve worker as a task (a fiber, like a request: the function's limits,
 * deadline, grants and pools), through the ABI's `event` op when it has one,
 * else through the JSON event ABI (a synthetic POST to handle(); 2xx =
 * handled). Guarantees: at least once (an event leaves its queue only after
 * its handler succeeded or its retries ran out), in order per key and
 * subscriber (a later event of a key waits for every earlier one, retries
 * included), concurrently across keys. Failed attempts are retried after
 * backoff_ms, doubling, capped at EV_MAX_BACKOFF_MS (timers on the
 * dispatcher's loop); then the event is logged, counted and dead-lettered.
 *
 * Threads: the dispatcher has one thread with its own event loop (src/loop);
 * deliveries run on the workers the host picks. ev_dispatcher_* are called
 * by one thread (the server's main thread).
 */
#ifndef KILN_EVENT_EVENT_H
#define KILN_EVENT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/handler.h"
#include "kiln/kv.h"
#include "loop/loop.h"

#define EV_DEFAULT_RETRIES 3u
#define EV_DEFAULT_BACKOFF_MS 100u
#define EV_MAX_BACKOFF_MS 60000u
/* Events of one subscriber held by the dispatcher at once (its window):
 * concurrency across keys happens inside it. */
#define EV_WINDOW 256u
/* Deliveries of one subscriber running at once. */
#define EV_MAX_RUNNING 32u

/* A subscriber as the server built it. Every pointer stays valid until the
 * owner given to ev_dispatcher_update is released. */
typedef struct ev_target {
    const char *fn_name;
    const char *ns;        /* the store's name of the namespace */
    kiln_kv_store *store;
    unsigned types;        /* mask of 1u << KILN_KV_EV_* */
    uint32_t retries;      /* attempts after the first */
    uint32_t backoff_ms;   /* before the first retry; doubles */
    uint64_t max_queue;    /* 0 = KILN_KV_DEFAULT_MAX_EVENTS */
    const kiln_abi_ops *abi;
    const kiln_function *fn;
    void *state;
    const kiln_instance_pre *pre;
    const char *path;      /* request path of the JSON event ABI */
    bool available;        /* false (compiling, failed): its events wait */
} ev_target;

/* What the dispatcher needs from the server. */
typedef struct ev_host {
    kl_loop *(*pick)(void *ctx); /* a worker's loop for the next delivery (any thread) */
    void *ctx;
} ev_host;

typedef struct ev_dispatcher ev_dispatcher;

/* Start the dispatcher's thread. KILN_OK, KILN_ENOMEM or KILN_EIO. */
int ev_dispatcher_new(const ev_host *h, ev_dispatcher **out /* OUT */, kiln_err *err);

/*
 * Deliver to `targets` from now on (copied; what they point to belongs to
 * `owner`: retain(owner) is called now, release(owner) once no delivery uses
 * it any more, from any thread). Subscribes every store involved (stores of
 * the previous set included, which then drop the events of functions that
 * no longer subscribe, with a log line). n 0 = no subscriptions.
 * KILN_OK or an error of a store's subscribe (logged; the others still
 * apply); KILN_ENOMEM when the targets could not be installed (owner is
 * then released before returning, the previous targets stay).
 */
int ev_dispatcher_update(ev_dispatcher *d, const ev_target *targets, size_t n, void *owner,
                         void (*retain)(void *owner), void (*release)(void *owner));

/* Stop starting deliveries, wait for the running ones (bounded by their
 * functions' time limits), stop the thread, release every owner. Events not
 * delivered stay queued (SQLite: for the next start). NULL is ok. */
void ev_dispatcher_free(ev_dispatcher *d);

/* ---- the JSON event ABI (ev_json.c) ---- */

/* The synthetic request for `ev` sent to `path`: POST, Content-Type
 * application/json, Kiln-Event-* headers, the JSON body (kiln_malloc'd in
 * *body; the headers point into *hdr_buf, also kiln_malloc'd). */
int ev_json_request(const kiln_event *ev, const char *path, kiln_request *req /* OUT */,
                    kiln_kv *hdrs /* [5] */, char **body /* OUT */, char **hdr_buf /* OUT */);

/* Standard base64 with padding of n bytes into out (room for
 * 4 * ceil(n / 3) bytes; not NUL-terminated); returns its length. */
size_t ev_base64(const uint8_t *p, size_t n, char *out);

/* Deliver `ev` to `t` on the calling fiber: the ABI's event op, else the
 * JSON event ABI. KILN_OK = handled; else err says why. */
int ev_deliver(const ev_target *t, const kiln_event *ev, kiln_err *err);

#endif
