/*
 * server.c - glue to libmicrohttpd: the listener, the worker thread pool that
 * runs the guests, request limits (431, 413, slow clients), the access log,
 * the lock-free route-table swap, and the signal loop (SIGHUP reloads,
 * SIGTERM/SIGINT drain and exit). HTTP parsing itself is the library's.
 *
 * Threads: `threads` workers, each with its own event loop (src/loop) and
 * its own MHD daemon in external epoll mode on the one shared listening
 * socket. A worker accepts, parses and calls on_request(); the request's
 * function runs right there as a task (a fiber): a function that never waits
 * finishes before the task start returns and is answered at once (no hand-
 * off, no suspension). One that waits (sleep, outbound HTTP) suspends its
 * fiber; the connection is suspended in MHD, the worker serves others, and
 * when the wait is over the loop resumes the fiber on the same worker and
 * the connection is resumed for the answer. A client that goes away while
 * its request waits cancels it (EPOLLRDHUP on the socket). The main thread
 * only waits for signals and sweeps connection deadlines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "event/event.h"
#include "http/http_int.h"
#include "loop/loop.h"

#define THREAD_STACK_SIZE ((size_t)8 << 20)
#define SMALL_HEADERS 16
#define DISCARD_MIN ((size_t)1 << 20)
/* Connections waiting in the kernel's accept queue while every slot is taken. A client that
 * gives up leaves its socket there (CLOSE-WAIT) and MHD must accept it to close it; SOMAXCONN
 * (4096) such sockets took minutes to clear. Past this many, new SYNs are dropped and clients
 * retry instead. */
#define LISTEN_BACKLOG 128u
/* How often the main thread checks the per-connection deadlines (sweep_connections). */
#define SWEEP_TICK_MS 100
#define BODY_RESERVE_STEP ((size_t)64 << 10)

/* What a connection is doing, for the deadlines of sweep_connections. */
enum { PHASE_HEAD = 0, PHASE_BODY = 1, PHASE_BUSY = 2 };

/*
 * One TCP connection, from MHD_CONNECTION_NOTIFY_STARTED to _CLOSED (its socket
 * context). Listed in http_server.conns under conns_lock so that the main thread can close
 * one that misses a deadline: MHD 0.9.75 has no whole-head deadline (its connection timeout
 * restarts on every byte) and no call for closing a connection from another thread, so the
 * sweep shuts the socket down, and MHD, seeing end-of-file, closes it on its own thread. The
 * socket stays open until after the CLOSED notification (MHD_cleanup_connections), which
 * takes conns_lock, so the sweep never touches a reused descriptor.
 */
typedef struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    atomic_int phase;
    _Atomic uint64_t since;      /* PHASE_HEAD: ready for a request head; PHASE_BODY: head done */
    atomic_size_t body_bytes;    /* PHASE_BODY: received so far */
    bool peer_gone;              /* last sweep saw end-of-file with nothing left to read */
    bool killed;
    bool counted;                /* in http_server.ips / n_open */
    struct sockaddr_storage addr;
} http_conn;

typedef struct http_server http_server;
typedef struct http_req http_req;

/* One worker thread: its loop, its daemon, its waiting requests. */
typedef struct http_worker {
    http_server *s;
    pthread_t tid;
    kl_loop *loop;
    struct MHD_Daemon *daemon;
    kl_io mhd_io;        /* the daemon's epoll fd, watched by the loop */
    bool started;
    bool resumed;        /* a connection was resumed since the last MHD_run */
    atomic_bool stop;    /* set by the main thread, then a post wakes the loop */
    atomic_bool quiesce;
    http_req *waiting;   /* requests whose task is suspended (cancelled at stop) */
    size_t n_waiting;
} http_worker;

struct http_server {
    http_worker *workers;
    unsigned n_workers;
    int listen_fd;
    _Atomic(http_table *) table;
    atomic_long loading;   /* readers between loading `table` and taking a reference */
    atomic_long in_flight; /* requests between their first byte and completion */
    atomic_bool draining;
    const http_options *opts;
    cfg_server started;    /* settings the daemon was started with */
    char started_listen[256]; /* started.listen points here, not into a table's
                                 configuration, which a reload frees */
    unsigned port;
    pthread_mutex_t conns_lock;
    http_conn *conns;      /* every open connection (on_connection) */
    size_t n_conns;
    struct pollfd *pfds;   /* sweep scratch, main thread only */
    http_conn **pconns;
    size_t cap_pfds;
    atomic_size_t buffered; /* request-body bytes reserved, at most max_buffered_body_bytes */
    http_ip_table *ips;     /* open connections per client address, all workers */
    atomic_uint n_open;     /* open connections, all workers */
    /* live functions: inotify on the served directories (main thread only) */
    int watch_fd;
    uint64_t changed_at;    /* last relevant event, 0 = nothing pending */
    uint64_t open_since;    /* a file is being written since (no close yet), 0 = none */
    unsigned n_open_writes;
    atomic_bool rescan;     /* http_server_rescan asked for a rebuild */
    http_bg *bg;            /* background compiler (tiers); NULL with no_tiers */
    bool all_compiled;      /* announced that no function waits for its first tier */
    bool all_optimized;     /* announced that no function runs its fast tier */
    /* storage events (src/event): deliveries run on the workers, round robin */
    ev_dispatcher *events;
    ev_host ev_host;
    atomic_uint ev_next;
};

enum { STAGE_NEW = 0, STAGE_BODY = 1, STAGE_ERROR = 2, STAGE_DONE = 3, STAGE_RUNNING = 4 };

/* Per request, from the request line to completion. */
struct http_req {
    http_server *s;
    http_worker *w;
    struct MHD_Connection *c;
    /* STAGE_RUNNING: the invocation, its task and what it reads and writes
     * (here, not on a stack: the task may outlive the callback that started it) */
    kl_task task;
    kiln_request req;
    kiln_response resp;
    kiln_kv *hdrs; /* hdrs_small or malloc'd */
    kiln_kv hdrs_small[SMALL_HEADERS];
    bool resp_init, invoked, suspended;
    kl_io hup;               /* while suspended: the client hanging up cancels the task */
    http_req *wprev, *wnext; /* http_worker.waiting */
    char remote[INET6_ADDRSTRLEN];
    int stage;
    int status;
    uint64_t t0;
    http_table *table;
    http_route *route; /* NULL: no route matched and the table has sinks */
    http_fn *fn;       /* the route's backend (NULL with sinks) */
    const http_fn *served_by; /* who answered (pipeline), for the log */
    http_match match;
    bool matched;
    uint8_t *body;
    size_t body_len, body_cap, body_limit;
    bool too_large;
    bool over_budget;    /* a chunked body outgrew what the server could reserve: 503 */
    size_t reserved;     /* bytes of http_server.buffered held by this request */
    size_t discarded; /* body bytes dropped after the limit was passed */
    http_conn *conn;     /* the connection's tracking record (NULL if it could not be made) */
    const char *raw_uri; /* where MHD's request line holds the target (framing checks) */
    size_t raw_uri_len;
    int err_status;      /* STAGE_ERROR: the answer waiting for the end of the request */
    const char *err_msg; /* static text */
    char method[24];
    char uri[]; /* raw request target: path?query, percent-encoded */
};

/* ---- log ----------------------------------------------------------------------------- */

void http_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    http_log("kiln serve: libmicrohttpd: %s", msg);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- route table ------------------------------------------------------------------------ */

/* Take a reference on the current table without a lock: the `loading`
 * counter tells a reload when no reader can still be holding the old
 * pointer without having counted its reference (see swap_table). */
static http_table *acquire_table(http_server *s)
{
    atomic_fetch_add(&s->loading, 1);
    http_table *t = atomic_load(&s->table);
    http_table_retain(t);
    atomic_fetch_sub(&s->loading, 1);
    return t;
}

static void swap_table(http_server *s, http_table *t)
{
    http_table *old = atomic_exchange(&s->table, t);
    /* A reader that loaded `old` incremented `loading` before its load,
     * which precedes our exchange; once `loading` reads zero, that reader
     * has counted its reference, so dropping ours is safe. */
    while (atomic_load(&s->loading) != 0)
        sched_yield();
    /* Instances kept beyond a request (proxy-wasm VMs) hold the old table;
     * tell them to let go. */
    http_table_retire(old);
    http_table_release(old);
}

/* ---- responses ---------------------------------------------------------------------------- */

/* The request target for the log: printable ASCII only, at most 511 bytes. */
static const char *log_target(const http_req *r, char *buf, size_t size)
{
    size_t i = 0;
    for (; r->uri[i] && i < size - 1; i++) {
        unsigned char c = (unsigned char)r->uri[i];
        buf[i] = c < 0x21 || c >= 0x7f ? '?' : (char)c;
    }
    buf[i] = '\0';
    return buf;
}

static void access_log(http_req *r, const char *fn)
{
    if (r->table != NULL && r->table->server.quiet)
        return;
    char uri[512];
    uint64_t us = (now_ns() - r->t0) / 1000;
    http_log("%s %s %d %lluus %s", r->method[0] ? r->method : "-",
             log_target(r, uri, sizeof(uri)), r->status, (unsigned long long)us, fn ? fn : "-");
}

/* Queue `resp` (its body is handed to MHD without a copy). */
static enum MHD_Result respond(http_req *r, struct MHD_Connection *c, kiln_response *resp,
                               const char *fn)
{
    struct MHD_Response *mr;
    if (resp->body_len > 0) {
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body,
                                                                kiln_free);
        if (mr != NULL) {
            resp->body = NULL;
            resp->body_len = resp->body_cap = 0;
        }
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (mr == NULL)
        return MHD_NO;
    for (size_t i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    if (atomic_load_explicit(&r->s->draining, memory_order_relaxed))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    int status = resp->status >= 100 && resp->status <= 999 ? resp->status : 500;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, mr);
    MHD_destroy_response(mr);
    r->stage = STAGE_DONE;
    r->status = status;
    access_log(r, fn);
    return ok;
}

/* Answer with a JSON error ({"error": msg}), optionally with an extra header. */
static enum MHD_Result respond_error(http_req *r, struct MHD_Connection *c, int status,
                                     const char *msg, const char *hname, const char *hvalue)
{
    kiln_response resp;
    kiln_response_init(&resp, 0);
    http_error_response(&resp, status, NULL, msg);
    if (hname != NULL)
        kiln_response_add_header(&resp, hname, hvalue);
    enum MHD_Result ok = respond(r, c, &resp, NULL);
    kiln_response_fini(&resp);
    return ok;
}

/* Does the request announce a body? */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strcmp(cl, "0") != 0)
        return true;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/*
 * Answer a request that was refused from its headers alone (404, 405, 400,
 * 431). MHD closes the connection when the answer is queued before the
 * request is complete; a request without a body completes on the next call,
 * so the answer waits for it and the connection stays open. With a body the
 * answer goes out at once rather than reading a body nobody wants.
 */
static enum MHD_Result early_error(http_req *r, struct MHD_Connection *c, int status,
                                   const char *msg)
{
    if (has_body(c))
        return respond_error(r, c, status, msg, status == MHD_HTTP_METHOD_NOT_ALLOWED
                                                    ? MHD_HTTP_HEADER_ALLOW : NULL,
                             r->match.allow);
    r->stage = STAGE_ERROR;
    r->err_status = status;
    r->err_msg = msg;
    return MHD_YES;
}

/* ---- framing (RFC 9112) ------------------------------------------------------------------ */

/* tchar of RFC 9110 5.6.2: the characters of a method or a header name. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool is_token(const char *p)
{
    if (*p == '\0')
        return false;
    for (; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return false;
    return true;
}

static bool all_bytes(const char *p, const char *end, const char *set)
{
    for (; p < end; p++)
        if (memchr(set, *p, strlen(set) + 1) == NULL) /* the NUL terminator counts when in set */
            return false;
    return true;
}

typedef struct frame_walk {
    const char *head, *end; /* the request head as received, in MHD's read buffer */
    const char *prev;       /* end of the previous line's content */
    const char *err;
    int n_cl, n_te, n_host;
    const char *cl, *te;
} frame_walk;

/*
 * One header, in the order received. MHD 0.9.75 keeps key and value as pointers into its read
 * buffer, where it replaced each CRLF by two NULs and the colon by one: so the bytes between
 * the end of the previous line and this key must be exactly one CRLF. Anything else there is
 * a line MHD did not report as a header: an obs-fold continuation (which MHD silently glues
 * onto the header), a bare-LF line end, or the rest of a line cut short by a NUL.
 */
static enum MHD_Result frame_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    frame_walk *w = cls;
    (void)kind;
    if (value == NULL)
        value = "";
    if (key < w->prev || key > w->end || value < key || value > w->end) {
        w->err = "malformed header section (a header line MHD could not keep in place)";
        return MHD_NO;
    }
    if (key - w->prev != 2 || !all_bytes(w->prev, key, "")) {
        if (key - w->prev > 2 && w->prev[0] == '\0' && w->prev[1] == '\0' &&
            (w->prev[2] == ' ' || w->prev[2] == '\t'))
            w->err = "obsolete line folding (a header line starting with whitespace) is not "
                     "accepted; send each header on one line";
        else if (key - w->prev == 1)
            w->err = "header lines must end with CRLF, not a bare LF";
        else
            w->err = "malformed header line (a NUL or control byte, or a line without a colon)";
        return MHD_NO;
    }
    size_t klen = strlen(key);
    if (!is_token(key)) {
        w->err = "invalid header name: whitespace (e.g. before the colon) or a character that "
                 "is not allowed in a field name";
        return MHD_NO;
    }
    if (!all_bytes(key + klen + 1, value, " \t")) {
        w->err = "malformed header line (a NUL byte in the header name)";
        return MHD_NO;
    }
    size_t vlen = strlen(value);
    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            w->err = "control character in a header value";
            return MHD_NO;
        }
    }
    w->prev = value + vlen;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        w->n_cl++;
        w->cl = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        w->n_te++;
        w->te = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        w->n_host++;
    }
    return MHD_YES;
}

/*
 * Check the request's framing before anything else reads it: the checks RFC 9112 asks for
 * that MHD 0.9.75 leaves to the application (a disagreement with a front proxy about where a
 * request ends is request smuggling). Returns NULL, or why the request is refused (400).
 * `method` and `version` point into MHD's copy of the request line; r->raw_uri is where
 * on_uri saw the target.
 */
static const char *check_framing(http_req *r, struct MHD_Connection *c, const char *method,
                                 const char *version)
{
    /* Request line: MHD cut it at the first space after the method, at the space before the
     * version, and hands out C strings, so a NUL inside the method or the target would end
     * them early without a trace; the pointers show it. */
    size_t mlen = strlen(method);
    if (!is_token(method))
        return "invalid request method: it must be a token (letters, digits, !#$%&'*+-.^_`|~)";
    if (r->raw_uri == NULL || r->raw_uri <= method + mlen ||
        !all_bytes(method + mlen + 1, r->raw_uri, " "))
        return "invalid request method: a NUL or control byte in the method";
    if (r->raw_uri + r->raw_uri_len + 1 != version)
        return "invalid request target: a NUL byte in the target";
    for (const char *p = r->uri; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return "invalid request target: whitespace or a control character in the target";

    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci == NULL)
        return "malformed request head";
    frame_walk w = {.head = method, .end = method + ci->header_size};
    w.prev = version + strlen(version);
    if (w.prev > w.end)
        return "malformed request head";
    /* A line that starts with whitespace right after a CRLF (two NULs now) is an obs-fold
     * continuation; MHD glues it onto the previous header (moving that header elsewhere),
     * so look for it in the raw bytes before walking the headers. */
    for (const char *p = w.prev; p + 2 < w.end; p++)
        if (p[0] == '\0' && p[1] == '\0' && (p[2] == ' ' || p[2] == '\t'))
            return "obsolete line folding (a header line starting with whitespace) is not "
                   "accepted; send each header on one line";
    MHD_get_connection_values(c, MHD_HEADER_KIND, frame_header, &w);
    if (w.err != NULL)
        return w.err;
    /* After the last header: its CRLF and the empty line's. */
    if (!all_bytes(w.prev, w.end, ""))
        return "malformed header line (a NUL or control byte, or a line without a colon)";
    if (w.end - w.prev != 4)
        return "header lines must end with CRLF, not a bare LF";

    bool http11 = strcmp(version, "HTTP/1.0") != 0;
    if (w.n_host > 1)
        return "more than one Host header";
    if (http11 && w.n_host == 0)
        return "HTTP/1.1 request without a Host header";
    if (w.n_cl > 1)
        return "more than one Content-Length header; send exactly one";
    if (w.n_cl == 1 && (w.cl[0] == '\0' || strspn(w.cl, "0123456789") != strlen(w.cl)))
        return "Content-Length must be a decimal number";
    if (w.n_te > 0) {
        if (w.n_cl > 0)
            return "both Content-Length and Transfer-Encoding; send one of them";
        if (!http11)
            return "Transfer-Encoding in an HTTP/1.0 request";
        if (w.n_te > 1 || strcasecmp(w.te, "chunked") != 0)
            return "unsupported Transfer-Encoding: only a single 'chunked' is accepted";
    }
    return NULL;
}

/* ---- request callbacks ---------------------------------------------------------------------- */

static http_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci ? ci->socket_context : NULL;
}

/* Record what the connection is doing now (the clock of its next deadline restarts). */
static void conn_phase(http_conn *k, int phase)
{
    if (k == NULL)
        return;
    /* `since` before `phase`: a sweep that sees the new phase also sees its start. */
    atomic_store(&k->body_bytes, 0);
    atomic_store(&k->since, now_ns());
    atomic_store(&k->phase, phase);
}

/* MHD_OPTION_NOTIFY_CONNECTION: track the connection for the deadlines. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = ((http_worker *)cls)->s;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *k = ci ? kiln_calloc(1, sizeof(*k)) : NULL;
        *socket_context = k;
        if (k == NULL)
            return; /* untracked: only MHD's own connection timeout applies */
        k->fd = ci->connect_fd;
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ai != NULL && ai->client_addr != NULL) {
            memcpy(&k->addr, ai->client_addr,
                   ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                          : sizeof(struct sockaddr_in));
            http_ip_count(s->ips, (struct sockaddr *)&k->addr, 1);
            atomic_fetch_add(&s->n_open, 1);
            k->counted = true;
        }
        atomic_init(&k->phase, PHASE_HEAD);
        atomic_init(&k->since, now_ns());
        atomic_init(&k->body_bytes, 0);
        pthread_mutex_lock(&s->conns_lock);
        k->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = k;
        s->conns = k;
        s->n_conns++;
        pthread_mutex_unlock(&s->conns_lock);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_conn *k = *socket_context;
        *socket_context = NULL;
        if (k == NULL)
            return;
        pthread_mutex_lock(&s->conns_lock);
        if (k->prev != NULL)
            k->prev->next = k->next;
        else
            s->conns = k->next;
        if (k->next != NULL)
            k->next->prev = k->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conns_lock);
        if (k->counted) {
            http_ip_count(s->ips, (struct sockaddr *)&k->addr, -1);
            atomic_fetch_sub(&s->n_open, 1);
        }
        kiln_free(k);
    }
}

static http_req *req_new(http_worker *w, const char *uri, struct MHD_Connection *c)
{
    http_server *s = w->s;
    /* MHD passes NULL for a request line without a target ("GET \r\n"). */
    const char *u = uri ? uri : "";
    size_t n = strlen(u);
    http_req *r = kiln_malloc(sizeof(*r) + n + 1);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    memcpy(r->uri, u, n + 1);
    r->raw_uri = uri;
    r->raw_uri_len = n;
    r->s = s;
    r->w = w;
    r->c = c;
    r->t0 = now_ns();
    r->conn = conn_of(c);
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
    return r;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the first sight of a request, with its raw
 * target (before MHD splits off and decodes the query). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    return req_new(cls, uri, c);
}

/* Reserve `n` more bytes of the server-wide request-body budget
 * (max_buffered_body_bytes); false when that would pass it. */
static bool reserve_body(http_req *r, size_t n)
{
    http_server *s = r->s;
    size_t cap = s->started.max_buffered_body_bytes;
    size_t cur = atomic_load(&s->buffered);
    do {
        if (n > cap || cur > cap - n)
            return false;
    } while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + n));
    r->reserved += n;
    return true;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = ((http_worker *)cls)->s;
    http_req *r = *req_cls;
    *req_cls = NULL;
    if (r == NULL)
        return;
    if (r->stage != STAGE_DONE && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* The client went away or timed out before we answered. */
        char uri[512];
        r->status = 0;
        if (r->table != NULL && !r->table->server.quiet)
            http_log("%s %s - %lluus %s (connection closed before the response)",
                     r->method[0] ? r->method : "-", log_target(r, uri, sizeof(uri)),
                     (unsigned long long)((now_ns() - r->t0) / 1000),
                     r->served_by ? r->served_by->fn.name : r->fn ? r->fn->fn.name : "-");
    }
    if (r->matched)
        http_match_fini(&r->match);
    if (r->resp_init)
        kiln_response_fini(&r->resp);
    if (r->hdrs != r->hdrs_small)
        kiln_free(r->hdrs);
    kiln_free(r->body);
    if (r->reserved > 0)
        atomic_fetch_sub(&s->buffered, r->reserved);
    /* The connection waits for its next request head now (keep-alive). */
    conn_phase(conn_of(c), PHASE_HEAD);
    if (r->table != NULL)
        http_table_release(r->table);
    kiln_free(r);
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
}

typedef struct hdr_walk {
    size_t bytes;
    kiln_kv *kv;
    size_t n, cap;
} hdr_walk;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    hdr_walk *w = cls;
    w->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    hdr_walk *w = cls;
    if (w->n < w->cap) {
        w->kv[w->n].name = key;
        w->kv[w->n].value = value ? value : "";
        w->n++;
    }
    return MHD_YES;
}

/* 503: the server-wide body budget (max_buffered_body_bytes) is spent. */
static enum MHD_Result respond_busy(http_req *r, struct MHD_Connection *c)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "the server is holding as many request bodies as it may "
             "(server.max_buffered_body_bytes = %zu bytes); retry shortly",
             r->s->started.max_buffered_body_bytes);
    return respond_error(r, c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, MHD_HTTP_HEADER_RETRY_AFTER,
                         "1");
}

/* The request line and headers are in: route, check limits, get ready for the body. */
static enum MHD_Result begin(http_req *r, struct MHD_Connection *c, const char *method,
                             const char *version)
{
    http_server *s = r->s;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->table = acquire_table(s);
    const cfg_server *srv = &r->table->server;
    conn_phase(r->conn, PHASE_BUSY);

    /* Framing first: nothing of a request whose end is in doubt may be used, and the
     * connection is closed so that no byte after it is taken for another request. */
    const char *bad = check_framing(r, c, method, version);
    if (bad != NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "bad request framing: %s", bad);
        return respond_error(r, c, MHD_HTTP_BAD_REQUEST, msg, MHD_HTTP_HEADER_CONNECTION,
                             "close");
    }

    /* Header limit: MHD refuses headers beyond its connection memory pool;
     * this makes the configured limit exact (431, RFC 6585). */
    hdr_walk hw = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &hw);
    size_t line = strlen(method) + strlen(r->uri) + strlen(version) + 4;
    if (line + hw.bytes > srv->max_header_bytes)
        return early_error(r, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                           "request header fields too large");

    const char *q = strchr(r->uri, '?');
    size_t plen = q ? (size_t)(q - r->uri) : strlen(r->uri);
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    http_route_status st =
        http_router_match(r->table->router, method, host, r->uri, plen, &r->match);
    r->matched = true;
    switch (st) {
    case HTTP_ROUTE_FOUND:
        break;
    case HTTP_ROUTE_NOT_FOUND:
        if (r->table->n_sinks > 0)
            break; /* the sinks answer it (pipeline.c) */
        return early_error(r, c, MHD_HTTP_NOT_FOUND, "no route for this path");
    case HTTP_ROUTE_BAD_METHOD:
        return early_error(r, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed for this path");
    case HTTP_ROUTE_BAD_PATH:
        return early_error(r, c, MHD_HTTP_BAD_REQUEST, "malformed request path");
    default:
        return early_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    r->route = st == HTTP_ROUTE_FOUND ? r->match.target : NULL;
    r->fn = r->route ? r->route->backend : NULL;
    r->body_limit = r->fn ? r->fn->max_body_bytes : srv->max_body_bytes;

    /* Body limit, upfront when the length is declared (413, RFC 9110). */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && n > r->body_limit) {
            char msg[120];
            snprintf(msg, sizeof(msg), "request body larger than %zu bytes", r->body_limit);
            return respond_error(r, c, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL, NULL);
        }
        if (errno == 0 && *end == '\0' && n > 0) {
            if (!reserve_body(r, (size_t)n))
                return respond_busy(r, c);
            r->body = kiln_malloc((size_t)n);
            if (r->body == NULL)
                return respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory",
                                     NULL, NULL);
            r->body_cap = (size_t)n;
        }
    }
    r->stage = STAGE_BODY;
    if (has_body(c))
        conn_phase(r->conn, PHASE_BODY);
    return MHD_YES;
}

/* Append a piece of the body; false once over the limit (the rest is dropped). */
static bool add_body(http_req *r, const char *data, size_t n)
{
    if (r->conn != NULL)
        atomic_fetch_add(&r->conn->body_bytes, n);
    if (r->over_budget)
        return false;
    if (r->too_large || n > r->body_limit - r->body_len) {
        r->too_large = true;
        return false;
    }
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n)
            cap *= 2;
        if (cap > r->body_limit)
            cap = r->body_limit;
        /* A body of unknown length reserves its budget as it grows (in steps, so the
         * shared counter is not touched for every chunk). */
        if (cap > r->reserved) {
            size_t want = cap - r->reserved;
            if (want < BODY_RESERVE_STEP)
                want = BODY_RESERVE_STEP;
            if (!reserve_body(r, want) && !reserve_body(r, cap - r->reserved)) {
                r->over_budget = true;
                return false;
            }
        }
        uint8_t *b = kiln_realloc(r->body, cap);
        if (b == NULL) {
            r->too_large = true;
            return false;
        }
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    return true;
}

/*
 * The time-limit breaker. A guest that loops holds its worker until its time
 * limit: a few clients calling such a function could take every worker and
 * starve every other route. Once one of a function's invocations hits the
 * limit, the function is "hot" for HOT_WINDOW (or twice its limit, if
 * longer): while hot, at most (workers - 1) of its requests run at once and
 * the rest get 503 + Retry-After, so one worker always stays free for
 * everything else. Functions that never time out never meet the breaker.
 */
#define HOT_WINDOW_NS (10ull * 1000000000u)

static bool breaker_refuses(http_req *r, unsigned *cap /* OUT */)
{
    http_fn *f = r->fn;
    *cap = r->s->n_workers > 1 ? r->s->n_workers - 1 : 1;
    if (f == NULL)
        return false;
    uint64_t hot = atomic_load_explicit(&f->hot_until_ns, memory_order_relaxed);
    if (hot == 0 || now_ns() >= hot)
        return false;
    return atomic_load_explicit(&f->running, memory_order_relaxed) >= *cap;
}

/* The task: the request through its route's pipeline (on the task's fiber). */
static int invoke_task(void *arg)
{
    http_req *r = arg;
    http_fn *f = r->fn;
    const char *q = strchr(r->uri, '?');
    http_exchange x = {
        .table = r->table,
        .route = r->route,
        .match = &r->match,
        .req = &r->req,
        .resp = &r->resp,
        .host = r->req.host,
        .raw_path = r->uri,
        .raw_len = q ? (size_t)(q - r->uri) : strlen(r->uri),
    };
    if (f != NULL)
        atomic_fetch_add_explicit(&f->running, 1, memory_order_relaxed);
    int rc = http_pipeline_run(&x);
    if (f != NULL)
        atomic_fetch_sub_explicit(&f->running, 1, memory_order_relaxed);
    r->served_by = x.served_by;
    /* The breaker watches the backend: a route's function that loops. */
    if (f != NULL && x.served_by == f && r->resp.status == 504) {
        uint64_t window = (uint64_t)f->fn.limits.timeout_ms * 2000000u;
        if (window < HOT_WINDOW_NS)
            window = HOT_WINDOW_NS;
        atomic_store_explicit(&f->hot_until_ns, now_ns() + window, memory_order_relaxed);
    }
    return rc;
}

static void waiting_remove(http_req *r)
{
    http_worker *w = r->w;
    if (r->wprev != NULL)
        r->wprev->wnext = r->wnext;
    else if (w->waiting == r)
        w->waiting = r->wnext;
    if (r->wnext != NULL)
        r->wnext->wprev = r->wprev;
    r->wprev = r->wnext = NULL;
    w->n_waiting--;
}

/* The task finished (on the worker's thread): if the connection was
 * suspended, resume it; MHD then calls on_request, which answers. */
static void invoke_done(kl_task *t, int result)
{
    (void)result;
    http_req *r = t->arg;
    r->invoked = true;
    if (r->suspended) {
        r->suspended = false;
        kl_unwatch(r->w->loop, &r->hup);
        waiting_remove(r);
        MHD_resume_connection(r->c);
        r->w->resumed = true;
    }
}

/* While a request waits, its socket is watched for the client hanging up. */
static void on_hangup(kl_io *io, uint32_t events)
{
    http_req *r = io->arg;
    (void)events;
    kl_unwatch(r->w->loop, io);
    kl_task_cancel(&r->task);
}

static enum MHD_Result finish(http_req *r, struct MHD_Connection *c, const char *url,
                              const char *version)
{
    conn_phase(r->conn, PHASE_BUSY);
    if (r->over_budget && !r->too_large)
        return respond_busy(r, c);
    if (r->too_large) {
        char msg[120];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", r->body_limit);
        return respond_error(r, c, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL, NULL);
    }
    http_worker *w = r->w;
    const cfg_server *srv = &r->table->server;
    if (kl_tasks_in_flight(w->loop) >= srv->max_in_flight) {
        char msg[200];
        snprintf(msg, sizeof(msg), "this worker already runs %u requests (server.max_in_flight); "
                 "retry shortly", srv->max_in_flight);
        return respond_error(r, c, MHD_HTTP_SERVICE_UNAVAILABLE, msg,
                             MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    unsigned cap;
    if (breaker_refuses(r, &cap)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "function '%s' recently ran into its time limit (%u ms); until "
                 "it stops doing so, at most %u of its requests run at once so that other "
                 "routes keep a worker; retry shortly", r->fn->fn.name,
                 r->fn->fn.limits.timeout_ms, cap);
        kiln_response resp;
        kiln_response_init(&resp, 0);
        http_error_response(&resp, MHD_HTTP_SERVICE_UNAVAILABLE, r->fn->fn.name, msg);
        kiln_response_add_header(&resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        enum MHD_Result ok = respond(r, c, &resp, r->fn->fn.name);
        kiln_response_fini(&resp);
        return ok;
    }
    const http_fn *f = r->fn;
    const char *fname = f ? f->fn.name : "-";
    int nh = MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL);
    hdr_walk hw = {.cap = nh > 0 ? (size_t)nh : 1};
    hw.kv = r->hdrs = hw.cap <= SMALL_HEADERS ? r->hdrs_small : kiln_malloc(hw.cap * sizeof(*hw.kv));
    if (hw.kv == NULL)
        return respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, NULL);
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hw);

    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      r->remote, sizeof(r->remote));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      r->remote, sizeof(r->remote));
    }
    const char *q = strchr(r->uri, '?');
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    r->req = (kiln_request){
        .method = r->method,
        .url = r->uri,
        .path = url,
        .query = q ? q + 1 : "",
        .host = host ? host : "",
        .remote_addr = r->remote,
        .headers = hw.kv,
        .n_headers = hw.n,
        .params = r->match.params,
        .n_params = r->match.n_params,
        .body = r->body,
        .body_len = r->body_len,
    };
    kiln_response_init(&r->resp, f ? f->fn.max_output_bytes : 0);
    r->resp_init = true;
    r->stage = STAGE_RUNNING;
    r->task.done = invoke_done;
    r->task.arg = r;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    /* The whole chain runs on one fiber: its stack fits the largest any of
     * the route's functions asks for (sinks: the default). */
    static const kiln_limits sink_limits;
    const kiln_limits *lim = r->route ? &r->route->task_limits : &sink_limits;
    if (kl_task_start(w->loop, &r->task, lim, invoke_task, r, &err) != KILN_OK)
        http_error_response(&r->resp, 500, fname, err.msg);
    else if (!r->invoked) {
        /* It waits: park the connection until invoke_done resumes it. */
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        MHD_suspend_connection(c);
        r->suspended = true;
        r->wnext = w->waiting;
        if (w->waiting != NULL)
            w->waiting->wprev = r;
        w->waiting = r;
        w->n_waiting++;
        r->hup = (kl_io){.fd = fi ? fi->connect_fd : -1, .events = EPOLLRDHUP, .cb = on_hangup,
                         .arg = r};
        if (r->hup.fd >= 0)
            kl_watch(w->loop, &r->hup);
        return MHD_YES;
    }
    return respond(r, c, &r->resp, r->served_by ? r->served_by->fn.name : fname);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    http_server *s = ((http_worker *)cls)->s;
    http_req *r = *req_cls;
    if (r == NULL) {
        /* on_uri could not allocate: without the raw target the request line cannot be
         * checked, so drop the connection. */
        (void)s;
        return MHD_NO;
    }
    switch (r->stage) {
    case STAGE_NEW:
        return begin(r, c, method, version);
    case STAGE_RUNNING:
        /* Resumed after the function waited: answer. */
        *upload_data_size = 0;
        if (!r->invoked)
            return MHD_YES;
        return respond(r, c, &r->resp,
                       r->served_by ? r->served_by->fn.name : r->fn ? r->fn->fn.name : "-");
    case STAGE_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            if (add_body(r, upload_data, n))
                return MHD_YES;
            /* Over the limit without a declared length (chunked). MHD 0.9.75
             * cannot answer before the upload ends, so the rest is read and
             * dropped for a 413 at the end, up to as much again (at least
             * 1 MiB); a client sending more loses the connection instead. */
            r->discarded += n;
            if (r->discarded <= (r->body_limit > DISCARD_MIN ? r->body_limit : DISCARD_MIN))
                return MHD_YES;
            char uri[512];
            r->status = 413;
            if (!r->table->server.quiet)
                http_log("%s %s - %lluus - (request body over the limit: connection closed)",
                         r->method, log_target(r, uri, sizeof(uri)),
                         (unsigned long long)((now_ns() - r->t0) / 1000));
            r->stage = STAGE_DONE;
            return MHD_NO;
        }
        return finish(r, c, url, version);
    case STAGE_ERROR:
        if (*upload_data_size > 0) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return respond_error(r, c, r->err_status, r->err_msg,
                             r->err_status == MHD_HTTP_METHOD_NOT_ALLOWED ? MHD_HTTP_HEADER_ALLOW
                                                                          : NULL,
                             r->match.allow);
    default:
        /* Answered early (404, 413, ...): discard whatever body follows. */
        *upload_data_size = 0;
        return MHD_YES;
    }
}

/* ---- connection deadlines ----------------------------------------------------------------- */

/*
 * Run by the main thread every SWEEP_TICK_MS. Closes (shutdown(2); MHD then closes the
 * connection on its own thread when it reads end-of-file):
 *   - a connection whose request head (request line and headers) is not complete
 *     header_timeout after it became ready for one: accepted, or its previous response sent;
 *   - a body that arrives slower than min_body_rate: it must have delivered
 *     (elapsed - header_timeout) * min_body_rate bytes;
 *   - a connection waiting for a head whose client has gone (end-of-file with nothing left
 *     to read, on two sweeps in a row): MHD 0.9.75 sometimes misses that event and keeps
 *     such a socket in CLOSE-WAIT until connection_timeout, holding a slot.
 * Connections whose request is running or whose response is being sent are left to MHD's
 * connection_timeout (inactivity). Returns how many were closed.
 */
static size_t sweep_connections(http_server *s)
{
    const cfg_server *cf = &s->started;
    uint64_t now = now_ns();
    uint64_t head_ns = (uint64_t)cf->header_timeout_ms * 1000000u;
    uint64_t grace_ns = head_ns ? head_ns : 10000000000u;
    size_t n_head = 0, n_body = 0, n_gone = 0, n = 0;
    pthread_mutex_lock(&s->conns_lock);
    if (s->cap_pfds < s->n_conns) {
        size_t cap = s->n_conns + 64;
        struct pollfd *p = kiln_realloc(s->pfds, cap * sizeof(*p));
        if (p != NULL)
            s->pfds = p;
        http_conn **q = kiln_realloc(s->pconns, cap * sizeof(*q));
        if (q != NULL)
            s->pconns = q;
        if (p != NULL && q != NULL)
            s->cap_pfds = cap;
    }
    for (http_conn *k = s->conns; k != NULL; k = k->next) {
        if (k->killed)
            continue;
        int phase = atomic_load(&k->phase);
        uint64_t since = atomic_load(&k->since);
        uint64_t age = now > since ? now - since : 0;
        bool kill = false;
        if (phase == PHASE_HEAD && head_ns != 0 && age > head_ns) {
            kill = true;
            n_head++;
        } else if (phase == PHASE_BODY && cf->min_body_rate != 0 && age > grace_ns) {
            double due = (double)(age - grace_ns) / 1e9 * (double)cf->min_body_rate;
            if ((double)atomic_load(&k->body_bytes) < due) {
                kill = true;
                n_body++;
            }
        }
        if (kill) {
            shutdown(k->fd, SHUT_RDWR);
            k->killed = true;
        } else if (phase == PHASE_HEAD && n < s->cap_pfds) {
            s->pfds[n] = (struct pollfd){.fd = k->fd, .events = POLLRDHUP};
            s->pconns[n++] = k;
        }
    }
    if (n > 0 && poll(s->pfds, n, 0) > 0) {
        for (size_t i = 0; i < n; i++) {
            http_conn *k = s->pconns[i];
            int unread = 0;
            bool gone = (s->pfds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0 &&
                        ioctl(k->fd, FIONREAD, &unread) == 0 && unread == 0;
            if (gone && k->peer_gone && atomic_load(&k->phase) == PHASE_HEAD) {
                shutdown(k->fd, SHUT_RDWR);
                k->killed = true;
                n_gone++;
            }
            k->peer_gone = gone;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            s->pconns[i]->peer_gone = false;
    }
    pthread_mutex_unlock(&s->conns_lock);
    if (n_head + n_body > 0)
        http_log("kiln serve: closed %zu connection(s) whose request head took longer than "
                 "header_timeout (%u ms) and %zu whose body was slower than min_body_rate "
                 "(%zu bytes/s)",
                 n_head, cf->header_timeout_ms, n_body, cf->min_body_rate);
    return n_head + n_body + n_gone;
}

/* ---- start, reload, drain ----------------------------------------------------------------------- */

/* The configuration file or served directory, plus the managed directory
 * (deployed functions) when there is one. */
static int load_config(const http_options *o, cfg_config **cfg, kiln_err *err)
{
    int rc = o->config_path ? cfg_load_file(o->config_path, cfg, err)
                            : cfg_load_dir(o->dir, cfg, err);
    if (rc != KILN_OK || o->managed_dir == NULL)
        return rc;
    cfg_config *managed;
    kiln_err e;
    memset(&e, 0, sizeof(e));
    if (cfg_load_dir(o->managed_dir, &managed, &e) != KILN_OK) {
        http_log("kiln serve: warning: deployed functions not served: %s", e.msg);
        return KILN_OK;
    }
    rc = cfg_merge(*cfg, managed, err);
    if (rc != KILN_OK) {
        cfg_free(*cfg);
        *cfg = NULL;
    }
    return rc;
}

static int build(const http_options *o, const http_table *prev, http_bg *bg, http_table **t,
                 kiln_err *err)
{
    cfg_config *cfg;
    int rc = load_config(o, &cfg, err);
    if (rc == KILN_OK)
        rc = http_table_build(cfg, o, prev, bg, t, err);
    return rc;
}

/* Parse "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT" into a socket address. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, kiln_err *err)
{
    char host[256] = "";
    const char *port;
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
            return kiln_err_set(err, KILN_ECONFIG, "listen address '%s': expected [V6ADDR]:PORT",
                                spec);
        memcpy(host, spec + 1, (size_t)(rb - spec - 1));
        host[rb - spec - 1] = '\0';
        port = rb + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL) {
            port = spec;
        } else {
            if ((size_t)(colon - spec) >= sizeof(host))
                return kiln_err_set(err, KILN_ECONFIG, "listen address '%s' is too long", spec);
            memcpy(host, spec, (size_t)(colon - spec));
            host[colon - spec] = '\0';
            port = colon + 1;
        }
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (port[0] == '\0' || *end != '\0' || errno != 0 || p > 65535)
        return kiln_err_set(err, KILN_ECONFIG, "listen address '%s': bad port '%s'", spec, port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0 || res == NULL)
        return kiln_err_set(err, KILN_ECONFIG,
                            "listen address '%s': '%s' is not a numeric IPv4 or IPv6 address "
                            "(%s)",
                            spec, host, gai_strerror(g));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return KILN_OK;
}

/* Say once when no function waits for its first tier any more (tests and
 * scripts wait for this line; requests before it may get 503 "compiling"). */
static void announce_compiled(http_server *s, const http_table *t)
{
    size_t compiling = 0;
    for (size_t i = 0; i < t->n_mods; i++)
        compiling += t->mods[i].status == HTTP_MOD_COMPILING;
    if (compiling > 0) {
        s->all_compiled = s->all_optimized = false;
        return;
    }
    if (!s->all_compiled)
        http_log("kiln serve: all functions compiled (%zu)", t->n_mods);
    s->all_compiled = true;
    size_t fast = 0;
    for (size_t i = 0; i < t->n_mods; i++)
        fast += strcmp(t->mods[i].tier, "fast") == 0;
    if (fast == 0 && !s->all_optimized)
        http_log("kiln serve: all functions at their final tier");
    s->all_optimized = fast == 0;
}

static void reload(http_server *s, const char *why)
{
    http_log("kiln serve: %s: reloading %s", why,
             s->opts->config_path ? s->opts->config_path : s->opts->dir);
    http_table *t;
    kiln_err err;
    memset(&err, 0, sizeof(err));
    uint64_t t0 = now_ns();
    http_table *cur = acquire_table(s);
    int rc = build(s->opts, cur, s->bg, &t, &err);
    http_table_release(cur);
    if (rc != KILN_OK) {
        http_log("kiln serve: reload failed, still serving the previous configuration: %s",
                 err.msg);
        return;
    }
    const cfg_server *a = &s->started, *b = &t->server;
    if (strcmp(a->listen, b->listen) != 0 || a->threads != b->threads ||
        a->connection_timeout_s != b->connection_timeout_s ||
        a->max_connections != b->max_connections ||
        a->max_connections_per_ip != b->max_connections_per_ip ||
        a->header_timeout_ms != b->header_timeout_ms || a->min_body_rate != b->min_body_rate ||
        a->max_buffered_body_bytes != b->max_buffered_body_bytes)
        http_log("kiln serve: warning: listen, threads, connection_timeout, max_connections, "
                 "max_connections_per_ip, header_timeout, min_body_rate and "
                 "max_buffered_body_bytes apply at start only; restart to change them");
    http_table_log_routes(t);
    swap_table(s, t);
    http_events_update(&s->events, &s->ev_host, t); /* subscriptions follow the new table */
    http_log("kiln serve: reloaded in %.0f ms", (double)(now_ns() - t0) / 1e6);
    announce_compiled(s, t);
}

/* ---- live functions ---------------------------------------------------------------------------

 * The served directory and the managed one are watched with inotify. A change
 * to a module or a sidecar (*.wasm, *.yaml, *.yml, *.json) schedules a
 * rebuild once the directory has been quiet for WATCH_QUIET_MS and no file
 * seen opened for writing is still open (IN_CLOSE_WRITE), so a half-written
 * module is never compiled; a writer that never closes is waited for at most
 * WATCH_MAX_WAIT_MS (the reader then refuses a truncated module, and the
 * previous version keeps serving). Renames into the directory (the atomic
 * way to publish, what the admin API does) count at once.
 */
#define WATCH_QUIET_MS 300u
#define WATCH_MAX_WAIT_MS 10000u

static bool watched_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.' || l < 5)
        return false;
    return strcmp(n + l - 5, ".wasm") == 0 || strcmp(n + l - 5, ".yaml") == 0 ||
           strcmp(n + l - 4, ".yml") == 0 || strcmp(n + l - 5, ".json") == 0;
}

static void watch_start(http_server *s)
{
    const char *dirs[2] = {s->opts->dir, s->opts->managed_dir};
    for (int i = 0; i < 2; i++) {
        if (dirs[i] == NULL)
            continue;
        if (s->watch_fd < 0)
            s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (s->watch_fd < 0 ||
            inotify_add_watch(s->watch_fd, dirs[i], IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE |
                                                        IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                                        IN_ATTRIB) < 0)
            http_log("kiln serve: warning: cannot watch %s (%s): changes need SIGHUP", dirs[i],
                     strerror(errno));
    }
}

/* Read pending events; true when a rebuild is due now. */
static bool watch_due(http_server *s)
{
    uint64_t now = now_ns();
    if (s->watch_fd >= 0) {
        _Alignas(struct inotify_event) char buf[8192];
        ssize_t n;
        while ((n = read(s->watch_fd, buf, sizeof(buf))) > 0) {
            for (char *p = buf; p < buf + n;) {
                struct inotify_event *ev = (struct inotify_event *)(void *)p;
                p += sizeof(*ev) + ev->len;
                if (ev->len == 0 || !watched_name(ev->name))
                    continue;
                s->changed_at = now;
                if (ev->mask & (IN_CREATE | IN_MODIFY)) {
                    if (s->n_open_writes++ == 0)
                        s->open_since = now;
                } else if ((ev->mask & IN_CLOSE_WRITE) && s->n_open_writes > 0) {
                    s->n_open_writes = 0; /* counted per event, not per file: settle on close */
                    s->open_since = 0;
                }
            }
        }
    }
    /* Nothing is read while a file is being written, not even for a rescan
     * asked for by the background compiler. */
    if (s->n_open_writes > 0 && now - s->open_since < (uint64_t)WATCH_MAX_WAIT_MS * 1000000u)
        return false;
    if (atomic_exchange(&s->rescan, false)) {
        s->changed_at = 0;
        s->n_open_writes = 0;
        return true;
    }
    if (s->changed_at == 0)
        return false;
    if (now - s->changed_at < (uint64_t)WATCH_QUIET_MS * 1000000u)
        return false;
    s->changed_at = 0;
    s->n_open_writes = 0;
    s->open_since = 0;
    return true;
}

char *http_server_events_dead(http_server *s, size_t max)
{
    http_table *t = acquire_table(s);
    char *json = http_events_dead_json(t, max);
    http_table_release(t);
    return json;
}

void http_server_rescan(http_server *s)
{
    atomic_store(&s->rescan, true);
}

/* The background compiler's "a tier landed" callback. */
static void rescan_cb(void *s)
{
    http_server_rescan(s);
}

static const http_mod *find_mod(const http_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_mods; i++)
        if (strcmp(t->mods[i].cf->fn.name, name) == 0)
            return &t->mods[i];
    return NULL;
}

void http_server_fn_status(http_server *s, const char *name, http_fn_status *out)
{
    memset(out, 0, sizeof(*out));
    http_table *t = acquire_table(s);
    const http_mod *m = find_mod(t, name);
    if (m != NULL) {
        out->found = true;
        out->available = m->status == KILN_OK;
        out->compiling = m->status == HTTP_MOD_COMPILING;
        snprintf(out->tier, sizeof(out->tier), "%s", m->tier);
        snprintf(out->module_hash, sizeof(out->module_hash), "%s", m->hash);
        snprintf(out->abi, sizeof(out->abi), "%s", m->abi ? m->abi->name : "");
        snprintf(out->error, sizeof(out->error), "%s",
                 m->refused[0] ? m->refused : m->detail[0] ? m->detail : m->reason);
        snprintf(out->snapshot, sizeof(out->snapshot), "%s", m->snapshot);
        for (size_t i = 0; i < t->n_fns; i++)
            if (t->fns[i]->mod == m)
                out->n_routes++;
    }
    http_table_release(t);
}

size_t http_server_fn_names(http_server *s, char ***out)
{
    http_table *t = acquire_table(s);
    char **names = kiln_calloc(t->n_mods ? t->n_mods : 1, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; names != NULL && i < t->n_mods; i++)
        if ((names[n] = kiln_strdup(t->mods[i].cf->fn.name)) != NULL)
            n++;
    http_table_release(t);
    *out = names;
    return n;
}

/* ---- workers ----------------------------------------------------------------------------------- */

/* MHD's accept policy: the server-wide connection cap and the per-address
 * cap, over every worker's daemon (MHD's own limits count per daemon). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    http_server *s = ((http_worker *)cls)->s;
    if (atomic_load(&s->n_open) >= s->started.max_connections)
        return MHD_NO;
    return http_ip_admit(s->ips, addr, s->started.max_connections_per_ip) ? MHD_YES : MHD_NO;
}

static void on_mhd_ready(kl_io *io, uint32_t events)
{
    (void)events;
    http_worker *w = io->arg;
    MHD_run(w->daemon);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Pooled memories and stacks a worker keeps resident once idle. */
#define IDLE_POOL_KEEP 16

static void *worker_main(void *arg)
{
    http_worker *w = arg;
    kl_bind(w->loop);
    bool quiesced = false, trimmed = true;
    uint64_t busy_at = 0, last_mhd_run = 0;
    MHD_socket mine = MHD_INVALID_SOCKET; /* our dup of the listening socket, once returned */
    while (!atomic_load(&w->stop) || w->n_waiting > 0) {
        if (atomic_load(&w->quiesce) && !quiesced) {
            mine = MHD_quiesce_daemon(w->daemon);
            quiesced = true;
        }
        if (atomic_load(&w->stop)) /* drain timeout: give up on the waiting requests */
            for (http_req *r = w->waiting; r != NULL; r = r->wnext)
                kl_task_cancel(&r->task);
        MHD_UNSIGNED_LONG_LONG to = 0;
        int wait = 1000;
        if (MHD_get_timeout(w->daemon, &to) == MHD_YES && to < 1000)
            wait = (int)to;
        /* MHD runs when its epoll fd is ready (on_mhd_ready), and here when
         * connections were resumed or its timeout passed: not on every round
         * (each MHD_run costs an epoll_wait). */
        int events = kl_run_once(w->loop, wait);
        uint64_t now = now_ns();
        if (events == 0 || w->resumed || now - last_mhd_run > 100000000u) {
            w->resumed = false;
            last_mhd_run = now;
            MHD_run(w->daemon);
        }
        /* Idle for a second after being busy: give pooled pages back. */
        if (kl_tasks_in_flight(w->loop) > 0) {
            busy_at = now;
            trimmed = false;
        } else if (!trimmed && now - busy_at > 1000000000u) {
            kiln_rt_trim_pools(IDLE_POOL_KEEP);
            trimmed = true;
        }
    }
    /* Each daemon owns a dup of the shared listening socket: quiesced, MHD
     * hands it back instead of closing it (a failed close is fatal in MHD). */
    if (!quiesced)
        mine = MHD_quiesce_daemon(w->daemon);
    MHD_stop_daemon(w->daemon);
    w->daemon = NULL;
    if (mine != MHD_INVALID_SOCKET)
        close(mine);
    kl_bind(NULL);
    kiln_rt_thread_cleanup();
    return NULL;
}

static int listen_socket(const struct sockaddr_storage *ss, const char *spec, kiln_err *err)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, (const struct sockaddr *)ss, len) == 0 && listen(fd, (int)LISTEN_BACKLOG) == 0)
        return fd;
    int e = errno;
    if (fd >= 0)
        close(fd);
    kiln_err_set(err, KILN_EIO, "cannot listen on %s: %s; the address is in use, not local, or "
                 "needs privileges; choose another with --listen", spec, strerror(e));
    return -1;
}

static int start_worker(http_server *s, http_worker *w, const http_table *t, kiln_err *err)
{
    w->s = s;
    if (kl_loop_new(&w->loop, err) != KILN_OK)
        return KILN_EIO;
    size_t pool = t->server.max_header_bytes + ((size_t)16 << 10);
    if (pool < ((size_t)32 << 10))
        pool = (size_t)32 << 10;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* Its own descriptor of the one listening socket: whatever MHD does with
     * it (close at stop) never touches another daemon's. */
    int lfd = dup(s->listen_fd);
    if (lfd < 0) {
        kl_loop_free(w->loop);
        w->loop = NULL;
        return kiln_err_set(err, KILN_EIO, "cannot start a worker: dup: %s", strerror(errno));
    }
    w->daemon = MHD_start_daemon(
        flags, 0, on_accept, w, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
        MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_CONNECTION_TIMEOUT,
        t->server.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_CONNECTION_LIMIT, t->server.max_connections, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, w,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        w, MHD_OPTION_END);
    const union MHD_DaemonInfo *di =
        w->daemon ? MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (di == NULL) {
        if (w->daemon != NULL)
            MHD_stop_daemon(w->daemon); /* closes lfd */
        else
            close(lfd);
        w->daemon = NULL;
        kl_loop_free(w->loop);
        w->loop = NULL;
        return kiln_err_set(err, KILN_EIO, "cannot start the HTTP library's worker daemon");
    }
    w->mhd_io = (kl_io){.fd = di->listen_fd, .events = EPOLLIN, .cb = on_mhd_ready, .arg = w};
    kl_watch(w->loop, &w->mhd_io);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
    int rc = pthread_create(&w->tid, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        MHD_stop_daemon(w->daemon);
        kl_loop_free(w->loop);
        w->daemon = NULL;
        w->loop = NULL;
        return kiln_err_set(err, KILN_EIO, "cannot start a worker thread: %s", strerror(rc));
    }
    w->started = true;
    return KILN_OK;
}

/* Tell every worker (flag + a post that wakes its loop). */
static void signal_workers(http_server *s, bool stop)
{
    for (unsigned i = 0; i < s->n_workers; i++) {
        http_worker *w = &s->workers[i];
        if (!w->started)
            continue;
        atomic_store(stop ? &w->stop : &w->quiesce, true);
        kl_post(w->loop, nothing, NULL);
    }
}

/* The worker that runs the next event delivery (any thread). */
static kl_loop *ev_pick(void *ctx)
{
    http_server *s = ctx;
    unsigned i = atomic_fetch_add(&s->ev_next, 1) % s->n_workers;
    return s->workers[i].started ? s->workers[i].loop : NULL;
}

static void stop_workers(http_server *s)
{
    signal_workers(s, true);
    for (unsigned i = 0; i < s->n_workers; i++) {
        http_worker *w = &s->workers[i];
        if (!w->started)
            continue;
        pthread_join(w->tid, NULL);
        kl_loop_free(w->loop);
        w->started = false;
    }
}

static void drain(http_server *s, const sigset_t *sigs)
{
    unsigned limit = s->started.drain_timeout_s;
    atomic_store(&s->draining, true);
    long n = atomic_load(&s->in_flight);
    http_log("kiln serve: stopping: no new connections; draining %ld request%s in flight "
             "(up to %u s)",
             n, n == 1 ? "" : "s", limit);
    signal_workers(s, false); /* each daemon stops accepting */
    /* Until the socket is closed the kernel would keep completing handshakes
     * into the backlog, leaving new clients hanging: shutting it down makes
     * them see a refusal now. */
    shutdown(s->listen_fd, SHUT_RDWR);
    uint64_t deadline = now_ns() + (uint64_t)limit * 1000000000u;
    struct timespec tick = {0, 10 * 1000000};
    while (atomic_load(&s->in_flight) > 0) {
        if (now_ns() >= deadline) {
            http_log("kiln serve: drain timeout: closing %ld unfinished request(s)",
                     atomic_load(&s->in_flight));
            break;
        }
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            http_log("kiln serve: second signal: stopping now");
            break;
        }
    }
    /* Event deliveries run on the workers: finish them first (each is
     * bounded by its function's time limit); undelivered events stay
     * queued. */
    ev_dispatcher_free(s->events);
    s->events = NULL;
    stop_workers(s);
    close(s->listen_fd);
    s->listen_fd = -1;
}

int http_serve(const http_options *o, kiln_err *err)
{
    http_server s;
    memset(&s, 0, sizeof(s));
    s.opts = o;
    atomic_init(&s.loading, 0);
    atomic_init(&s.in_flight, 0);
    atomic_init(&s.draining, false);
    atomic_init(&s.buffered, 0);
    atomic_init(&s.n_open, 0);
    atomic_init(&s.rescan, false);
    s.watch_fd = -1;
    pthread_mutex_init(&s.conns_lock, NULL);

    /* Signals are taken synchronously by the main thread; every thread
     * started from here (MHD's workers, the runtime's watchdog) inherits
     * the mask. A write to a closed connection must not kill the server. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    http_table *t;
    uint64_t t0 = now_ns();
    if (!o->no_tiers && http_bg_new(rescan_cb, &s, &s.bg) != KILN_OK)
        http_log("kiln serve: warning: no background compiler: modules compile before serving");
    int rc = build(o, NULL, s.bg, &t, err);
    if (rc != KILN_OK) {
        http_bg_free(s.bg);
        return 1;
    }
    s.started = t->server;
    snprintf(s.started_listen, sizeof(s.started_listen), "%s", t->server.listen);
    s.started.listen = s.started_listen;
    struct sockaddr_storage ss;
    if (parse_listen(t->server.listen, &ss, err) != KILN_OK) {
        http_table_release(t);
        http_bg_free(s.bg);
        return 1;
    }
    atomic_init(&s.table, t);
    unsigned threads = t->server.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    s.listen_fd = listen_socket(&ss, s.started.listen, err);
    if (s.listen_fd < 0) {
        http_table_release(t);
        http_bg_free(s.bg);
        return 1;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(s.listen_fd, (struct sockaddr *)&bound, &blen) == 0)
        s.port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                   : ((struct sockaddr_in *)&bound)->sin_port);
    if (http_ip_table_new(&s.ips) != KILN_OK) {
        close(s.listen_fd);
        http_table_release(t);
        kiln_err_set(err, KILN_ENOMEM, "out of memory starting the server");
        http_bg_free(s.bg);
        return 1;
    }
    s.n_workers = threads;
    s.workers = kiln_calloc(threads, sizeof(*s.workers));
    rc = s.workers ? KILN_OK : kiln_err_set(err, KILN_ENOMEM, "out of memory starting workers");
    for (unsigned i = 0; i < threads && rc == KILN_OK; i++)
        rc = start_worker(&s, &s.workers[i], t, err);
    if (rc != KILN_OK) {
        if (s.workers != NULL)
            stop_workers(&s);
        kiln_free(s.workers);
        http_ip_table_free(s.ips);
        close(s.listen_fd);
        http_table_release(t);
        http_bg_free(s.bg);
        return 1;
    }
    http_table_log_routes(t);
    s.ev_host = (ev_host){.pick = ev_pick, .ctx = &s};
    atomic_init(&s.ev_next, 0);
    http_events_update(&s.events, &s.ev_host, t);
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    http_log("kiln serve: listening on http://%s%s%s:%u (%u worker thread%s, ready in %.0f ms)",
             ss.ss_family == AF_INET6 ? "[" : "", host, ss.ss_family == AF_INET6 ? "]" : "",
             s.port, threads, threads == 1 ? "" : "s", (double)(now_ns() - t0) / 1e6);
    announce_compiled(&s, t);
    if (o->on_started != NULL)
        o->on_started(&s, o->hook_arg);

    struct timespec tick = {0, SWEEP_TICK_MS * 1000000L};
    watch_start(&s);
    for (;;) {
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig < 0) {
            sweep_connections(&s);
            if (watch_due(&s))
                reload(&s, "functions changed");
            continue;
        }
        if (sig == SIGHUP) {
            reload(&s, "SIGHUP");
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    if (o->on_stopping != NULL)
        o->on_stopping(&s, o->hook_arg);
    drain(&s, &sigs);
    http_bg_free(s.bg);
    if (s.watch_fd >= 0)
        close(s.watch_fd);
    kiln_free(s.workers);
    http_ip_table_free(s.ips);
    http_table_release(atomic_load(&s.table));
    pthread_mutex_destroy(&s.conns_lock);
    kiln_free(s.pfds);
    kiln_free(s.pconns);
    http_log("kiln serve: stopped");
    return 0;
}
