/*
 * comp_int.h - private to src/abi/component/: the "component" handler ABI,
 * which serves WebAssembly components (docs/internals/component.md
 * "Serving"). component.c loads a component at deploy (parse, check its
 * imports against the host registry, compile its core modules once) and
 * decides which of the two served worlds it is; comp_cmd.c serves a
 * wasi:cli/command CGI-style (as the wasi ABI, src/abi/cgi/); comp_faas.c
 * serves the kiln:faas handler world over HTTP and as the event op.
 *
 * Every request or event gets a fresh component instance (comp_instantiate)
 * under the function's limits and host contexts; nothing survives it.
 */
#ifndef KILN_ABI_COMPONENT_COMP_INT_H
#define KILN_ABI_COMPONENT_COMP_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "component/cm.h"
#include "component/cm_inst.h"
#include "kiln/handler.h"
#include "kiln/wasi.h"

typedef enum comp_world {
    COMP_COMMAND = 1, /* exports wasi:cli/run: served as CGI */
    COMP_FAAS = 2,    /* exports kiln:faas handle: HTTP requests and events */
} comp_world;

/* One deployed component function. Immutable after load; shared by every
 * worker thread. */
typedef struct comp_state {
    uint8_t *buf; /* the component's bytes (the core modules point into them) */
    size_t len;
    cm_component *c;
    cm_mods *mods; /* its core modules, compiled and loaded once */
    cm_plan *plan; /* linked once: linkers, pres, lowered imports (cm_inst.h) */
    /* `snapshot: true`: the graph instantiated once (comp_snap.c); set once
     * by the first snapshot op, then read by every request */
    cm_image *_Atomic image;
    comp_world world;
    const cm_func *entry; /* the lift of run (command) or handle (faas) */
    kiln_wasi_preopen *preopens; /* fn->dirs, for the preview-1 context WASI 0.2 maps onto */
    size_t n_preopens;
} comp_state;

/* A fresh instance of the component for one invocation: the function's
 * host contexts (fn->host_state) plus `wasi` in KILN_STATE_WASI, WASI 0.2
 * over `wasi` as the host registry (built in *host, which must outlive the
 * instance), fn->limits. */
int comp_instantiate(const kiln_function *fn, const comp_state *s, kiln_wasi *wasi,
                     cm_host *host, cm_inst **out /* OUT */, kiln_err *err);

/* The host registry of every instance of a component function: WASI 0.2
 * over `wasi` (NULL at deploy, where only the registry's shape matters:
 * the plan and the import check are made with it). */
int comp_host_add(cm_host *host, kiln_wasi *wasi);

/* After a trap in `ci`: a guest that aborted right after failing to grow a
 * memory up to its limit was out of memory (as cgi.c's explain_oom). */
void comp_explain_oom(cm_inst *ci, const comp_state *s, const kiln_function *fn, kiln_err *err);

/* Whether `ft` is kiln:faas's handle: func(event: handler-event) ->
 * result<_, handler-error>, by shape and field names. */
bool comp_faas_signature(const cm_type *ft);

/* The ABI's snapshot op (comp_snap.c): build s->image once. */
int comp_snapshot(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                  kiln_err *err);

int comp_cmd_handle(const kiln_function *fn, const comp_state *s, const kiln_request *req,
                    kiln_response *resp, kiln_err *err);
int comp_faas_handle(const kiln_function *fn, const comp_state *s, const kiln_request *req,
                     kiln_response *resp, kiln_err *err);
int comp_faas_event(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                    const kiln_event *ev, kiln_err *err);

#endif
