/*
 * pipeline.c - one request through a route's chain (handler.h, "pipeline
 * stages"), on the request's fiber:
 *
 *   1. route matchers: all of the route's must take the request, else the
 *      next candidate route (router precedence) is tried, then the sinks;
 *   2. pre-route, then access validators, then request transformers and
 *      proxy-wasm filters (request side), each group in configured order;
 *      any of them may answer instead (deny, short-circuit, local reply);
 *   3. the backend (a function or an upstream), on the request as edited;
 *   4. the response side: proxy-wasm filters in reverse order (as Envoy
 *      runs encoders, also on local replies), then response transformers in
 *      configured order (as Otoroshi does) - these only on an answer of the
 *      backend, not on a denial or on Kiln's error for a failed backend;
 *   5. stage_end for every plugin that kept a stream, in reverse order.
 *
 * A route without plugins skips all of it: its backend answers directly.
 *
 * A plugin that fails (trap, time limit, malformed output, unavailable)
 * fails the request with an error naming it; the request never goes through
 * a plugin that did not say so. Plugins and the backend share one kiln_stage
 * (edited request, response, attributes), reachable from host functions as
 * kiln_stage_current().
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "abi/guest_log.h"
#include "base/alloc.h"
#include "base/metrics.h"
#include "http/http_int.h"

/* Routes tried after matchers said no, per request. */
#define MAX_FALLTHROUGH 16

/* server.server_timing: each stage's duration for the Server-Timing header
 * (W3C), e.g. `access;desc="guard";dur=0.081, backend;desc="api";dur=0.412`.
 * Off by default: it tells clients which plugins a route runs. */
typedef struct stage_timing {
    bool on;
    bool metrics; /* a route with plugins, or the sinks: record stage metrics */
    uint64_t t0;
    size_t len;
    char buf[1024];
} stage_timing;

/*
 * Stage metrics: every stage of a pipeline (each plugin call, and the
 * backend of a route with plugins) is observed in Kiln's metrics registry
 * (admin GET /metrics) as the histogram
 *   kiln_stage_duration_us{kind="access",function="guard"}
 * in microseconds. Plain routes (no plugins) record nothing, so their path
 * reads no clock. The registry defines a name under a mutex; a small
 * per-thread cache of (name hash, id) keeps that off the request path.
 */
#define STAGE_METRIC_CACHE 64

typedef struct stage_metric {
    uint64_t hash; /* 0 = empty */
    uint32_t id;
    bool ok;       /* false: the registry refused the name (full, too long) */
} stage_metric;

static _Thread_local stage_metric sm_cache[STAGE_METRIC_CACHE];
static _Thread_local unsigned sm_next;

static void stage_metric_record(const char *kind, const char *name, uint64_t ns)
{
    char m[METRICS_NAME_MAX + 1];
    int n = snprintf(m, sizeof(m), "kiln_stage_duration_us{kind=\"%s\",function=\"", kind);
    if (n <= 0 || (size_t)n >= sizeof(m))
        return;
    size_t len = (size_t)n;
    /* Label values: no quote, backslash or control byte (upstream URLs come
     * from the configuration; function names are safe already). */
    for (const char *p = name; *p && len < sizeof(m) - 3; p++)
        m[len++] = *p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ? '_' : *p;
    if (len >= sizeof(m) - 2)
        return; /* too long a name to be a metric: skip it */
    m[len++] = '"';
    m[len++] = '}';
    m[len] = '\0';
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)m[i]) * 1099511628211ull;
    h |= 1;
    stage_metric *e = NULL;
    for (unsigned i = 0; i < STAGE_METRIC_CACHE && e == NULL; i++)
        if (sm_cache[i].hash == h)
            e = &sm_cache[i];
    if (e == NULL) {
        e = &sm_cache[sm_next++ % STAGE_METRIC_CACHE];
        e->hash = h;
        e->ok = metrics_define(METRICS_HISTOGRAM, m, len, &e->id) == KILN_OK;
    }
    if (e->ok)
        metrics_record(e->id, ns / 1000);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void timing_start(stage_timing *tm)
{
    if (tm->on || tm->metrics)
        tm->t0 = mono_ns();
}

/* One entry: `what` is a token, `name` a function name (letters, digits,
 * '_', '-', '.', '/' and ' ' in upstream names: quoted). */
static void timing_stop(stage_timing *tm, const char *what, const char *name)
{
    if (!tm->on && !tm->metrics)
        return;
    uint64_t ns = mono_ns() - tm->t0;
    if (tm->metrics)
        stage_metric_record(what, name, ns);
    if (!tm->on || tm->len >= sizeof(tm->buf))
        return;
    double ms = (double)ns / 1e6;
    char safe[200];
    size_t n = 0;
    for (const char *p = name; *p && n < sizeof(safe) - 1; p++)
        safe[n++] = *p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ? '_' : *p;
    safe[n] = '\0';
    int w = snprintf(tm->buf + tm->len, sizeof(tm->buf) - tm->len, "%s%s;desc=\"%s\";dur=%.3f",
                     tm->len ? ", " : "", what, safe, ms);
    if (w > 0 && (size_t)w < sizeof(tm->buf) - tm->len)
        tm->len += (size_t)w;
    else
        tm->buf[tm->len] = '\0'; /* drop an entry that does not fit whole */
}

/* Run one plugin for one phase. On failure the error answer is in the
 * stage's response and the verdict is RESPOND. */
static int run_plugin(const http_plugin *pl, kiln_stage_phase phase, kiln_stage *st,
                      int *verdict, stage_timing *tm)
{
    const http_fn *f = pl->fn;
    kiln_response *resp = kiln_stage_response(st);
    *verdict = KILN_STAGE_CONTINUE;
    int rc = http_fn_refuse(f, resp);
    if (rc != KILN_OK) {
        *verdict = KILN_STAGE_RESPOND;
        return rc;
    }
    kiln_err err;
    memset(&err, 0, sizeof(err));
    guest_log_budget b;
    guest_log_begin(&b, f->fn.name, &f->fn.log);
    kiln_stage_set_current(st);
    timing_start(tm);
    rc = f->abi->stage(&f->fn, f->state, f->pre, &pl->p, phase, st, verdict, &err);
    timing_stop(tm, phase == KILN_PHASE_RESPONSE && pl->p.kind == KILN_STAGE_FILTER
                        ? "proxy-wasm-response"
                        : kiln_stage_kind_name(pl->p.kind),
                f->fn.name);
    guest_log_end(&b);
    if (rc != KILN_OK) {
        *verdict = KILN_STAGE_RESPOND;
        http_fail_response(f->fn.name, &f->fn.limits, kiln_stage_kind_name(pl->p.kind), rc, &err,
                           resp);
    }
    return rc;
}

static int new_stage(const http_exchange *x, const http_route *rt, const http_fn *backend,
                     kiln_stage **st)
{
    kiln_stage_info none = {.route = "", .backend = "", .sink_status = 404,
                            .sink_message = "no route for this path"};
    size_t max = backend ? backend->fn.max_output_bytes : 0;
    int rc = kiln_stage_new(x->req, rt ? &rt->info : &none, max, st);
    if (rc != KILN_OK)
        http_error_response(x->resp, 500, NULL, "out of memory");
    return rc;
}

/* Move the stage's response into the exchange's. */
static void take_response(http_exchange *x, kiln_stage *st)
{
    kiln_response *from = kiln_stage_response(st);
    kiln_response tmp = *x->resp;
    *x->resp = *from;
    *from = tmp;
}

static void end_streams(const http_route *rt, kiln_stage *st)
{
    for (size_t i = rt->n_plugins; i-- > 0;) {
        const http_plugin *pl = &rt->plugins[i];
        void **slot = kiln_stage_stream(st, pl->p.index);
        if (*slot == NULL || pl->fn->abi == NULL || pl->fn->abi->stage_end == NULL)
            continue;
        kiln_stage_set_current(st);
        pl->fn->abi->stage_end(&pl->fn->fn, pl->fn->state, &pl->p, st, *slot);
        *slot = NULL;
    }
}

/* No route took the request: the first sink that matches answers, else 404. */
static int run_sinks(http_exchange *x, stage_timing *tm)
{
    const http_table *t = x->table;
    kiln_stage *st = NULL;
    int rc = KILN_OK;
    for (size_t i = 0; i < t->n_sinks && rc == KILN_OK; i++) {
        const http_plugin *pl = &t->sinks[i];
        if (st == NULL && (rc = new_stage(x, NULL, pl->fn, &st)) != KILN_OK)
            return rc;
        int verdict;
        rc = run_plugin(pl, KILN_PHASE_MATCH, st, &verdict, tm);
        if (rc == KILN_OK && verdict == KILN_STAGE_NO_MATCH)
            continue;
        if (rc == KILN_OK)
            rc = run_plugin(pl, KILN_PHASE_HANDLE, st, &verdict, tm);
        x->served_by = pl->fn;
        take_response(x, st);
        kiln_stage_set_current(NULL);
        kiln_stage_free(st);
        return rc;
    }
    kiln_stage_set_current(NULL);
    kiln_stage_free(st);
    if (rc == KILN_OK)
        http_error_response(x->resp, 404, NULL, "no route for this path");
    return rc;
}

/* Run the route's matchers on a fresh stage: *taken says whether they all
 * take the request. On an error the answer is in x->resp. */
static int run_matchers(http_exchange *x, kiln_stage **stp, bool *taken, stage_timing *tm)
{
    http_route *rt = x->route;
    *taken = true;
    int rc = new_stage(x, rt, rt->backend, stp);
    for (size_t i = 0; rc == KILN_OK && i < rt->n_plugins && *taken; i++) {
        if (rt->plugins[i].p.kind != KILN_STAGE_MATCHER)
            continue;
        int verdict;
        rc = run_plugin(&rt->plugins[i], KILN_PHASE_MATCH, *stp, &verdict, tm);
        if (rc != KILN_OK) {
            x->served_by = rt->plugins[i].fn;
            take_response(x, *stp);
        } else if (verdict == KILN_STAGE_NO_MATCH) {
            *taken = false;
        }
    }
    return rc;
}

/* The next candidate route after `skip`; x->route NULL when none is left. */
static void fall_through(http_exchange *x, void *const *skip, size_t n_skip)
{
    http_match next;
    http_route_status s = n_skip < MAX_FALLTHROUGH
                              ? http_router_match_skip(x->table->router, x->req->method, x->host,
                                                       x->raw_path, x->raw_len, skip, n_skip,
                                                       &next)
                              : HTTP_ROUTE_NOT_FOUND;
    if (s != HTTP_ROUTE_FOUND) {
        if (n_skip < MAX_FALLTHROUGH)
            http_match_fini(&next);
        x->route = NULL;
        return;
    }
    http_match_fini(x->match);
    *x->match = next;
    x->route = next.target;
    x->req->params = x->match->params;
    x->req->n_params = x->match->n_params;
}

static bool in_group(kiln_stage_kind k, int group)
{
    switch (group) {
    case 0:
        return k == KILN_STAGE_PRE_ROUTE;
    case 1:
        return k == KILN_STAGE_ACCESS;
    default:
        return k == KILN_STAGE_REQUEST || k == KILN_STAGE_FILTER;
    }
}

static void timing_header(http_exchange *x, const stage_timing *tm)
{
    if (tm->on && tm->len > 0)
        kiln_response_add_header(x->resp, "Server-Timing", tm->buf);
}

/* One plugin's response side; true (and *rc set) if it failed: its error
 * replaced the response. */
static bool response_side(http_exchange *x, const http_plugin *pl, kiln_stage *st, int *rc,
                          stage_timing *tm)
{
    int verdict;
    int prc = run_plugin(pl, KILN_PHASE_RESPONSE, st, &verdict, tm);
    if (prc == KILN_OK)
        return false;
    x->served_by = pl->fn;
    *rc = prc;
    return true;
}

int http_pipeline_run(http_exchange *x)
{
    void *skip[MAX_FALLTHROUGH];
    size_t n_skip = 0;
    kiln_stage *st = NULL;
    int rc = KILN_OK;
    x->served_by = x->route ? x->route->backend : NULL;
    stage_timing tm;
    tm.on = x->table->server.server_timing;
    tm.metrics = x->route == NULL || x->route->n_plugins > 0; /* pipelines and sinks only */
    tm.len = 0;
    tm.buf[0] = '\0';

    /* 1. Which route takes it. */
    while (x->route != NULL && x->route->has_matchers) {
        bool taken;
        rc = run_matchers(x, &st, &taken, &tm);
        if (rc != KILN_OK) {
            kiln_stage_set_current(NULL);
            end_streams(x->route, st);
            kiln_stage_free(st);
            return rc;
        }
        if (taken)
            break;
        kiln_stage_set_current(NULL); /* it pointed at the stage freed here */
        kiln_stage_free(st);
        st = NULL;
        skip[n_skip++] = x->route;
        fall_through(x, skip, n_skip);
    }
    http_route *rt = x->route;
    if (rt == NULL) {
        kiln_stage_set_current(NULL);
        x->served_by = NULL;
        rc = run_sinks(x, &tm);
        timing_header(x, &tm);
        return rc;
    }
    http_fn *backend = rt->backend;
    x->served_by = backend;
    if (x->req->body_len > backend->max_body_bytes) {
        /* Checked upfront against the first candidate; a route taken after
         * falling through may allow less. */
        kiln_stage_free(st);
        char msg[120];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", backend->max_body_bytes);
        http_error_response(x->resp, 413, NULL, msg);
        return KILN_ELIMIT;
    }
    if (rt->n_plugins == 0) {
        /* A plain route: nothing to share between stages, so no stage is
         * made (no allocation on this path); the backend answers directly. */
        kiln_stage_set_current(NULL);
        timing_start(&tm);
        rc = http_fn_invoke(backend, x->req, x->resp);
        timing_stop(&tm, "backend", backend->fn.name);
        timing_header(x, &tm);
        return rc;
    }
    if (st == NULL && (rc = new_stage(x, rt, backend, &st)) != KILN_OK)
        return rc;

    /* 2. The request side. */
    int verdict = KILN_STAGE_CONTINUE;
    size_t ran = 0; /* plugins whose request side ran: [0, ran) by index, filters only */
    for (int g = 0; g < 3 && verdict == KILN_STAGE_CONTINUE; g++) {
        for (size_t i = 0; i < rt->n_plugins && verdict == KILN_STAGE_CONTINUE; i++) {
            const http_plugin *pl = &rt->plugins[i];
            if (!in_group(pl->p.kind, g))
                continue;
            rc = run_plugin(pl, KILN_PHASE_REQUEST, st, &verdict, &tm);
            /* A filter that failed (trap, time limit: its VM is gone) gets
             * no response side; the ones before it see the error answer,
             * as Envoy's encoders see a local reply. */
            if (pl->p.kind == KILN_STAGE_FILTER)
                ran = rc == KILN_OK ? i + 1 : i;
            if (verdict != KILN_STAGE_CONTINUE)
                x->served_by = pl->fn;
        }
    }

    /* 3. The backend. */
    bool backend_ran = false;
    if (verdict == KILN_STAGE_CONTINUE) {
        kiln_stage_set_current(st);
        timing_start(&tm);
        rc = http_fn_invoke(backend, kiln_stage_request(st), kiln_stage_response(st));
        timing_stop(&tm, "backend", backend->fn.name);
        /* Response transformers see the backend's answers, not Kiln's error
         * answers for a backend that failed (trap, 502/504 upstream). */
        backend_ran = rc == KILN_OK;
    }

    /* 4. The response side: filters that saw the request, in reverse, then
     * response transformers. A failure replaces the response and stops. */
    bool failed = false;
    for (size_t i = ran; i-- > 0 && !failed;)
        if (rt->plugins[i].p.kind == KILN_STAGE_FILTER)
            failed = response_side(x, &rt->plugins[i], st, &rc, &tm);
    for (size_t i = 0; i < rt->n_plugins && backend_ran && !failed; i++)
        if (rt->plugins[i].p.kind == KILN_STAGE_RESPONSE)
            failed = response_side(x, &rt->plugins[i], st, &rc, &tm);

    /* 5. Done. */
    end_streams(rt, st);
    kiln_stage_set_current(NULL);
    take_response(x, st);
    kiln_stage_free(st);
    timing_header(x, &tm);
    return rc;
}
