/*
 * comp_snap.c - `snapshot: true` for component functions (the ABI's
 * snapshot op; docs/internals/component.md "Snapshots").
 *
 * At deploy the function's plan is instantiated once (cm_image_build):
 * every core instance's start function runs - for a wit-component reactor
 * that is `_initialize`, the guest's static constructors - with every host
 * import refused, and the whole graph is captured (memories, globals,
 * tables; a shim table's references into the fixup instance are kept as
 * graph references). Every request of the function then restores the
 * graph from the image (comp_instantiate) instead of running data
 * segments and start functions again, and still gets its own instance.
 *
 * The image is kept in memory, one per loaded component (comp_state), not
 * on disk: it refers to the other core instances' artifacts by address,
 * which only this process knows, and building it is one instantiation of
 * the graph (what a single fresh request costs).
 */
#include <stdio.h>
#include <string.h>

#include "abi/component/comp_int.h"

#define COMP_SNAPSHOT_INIT_MS 10000u /* as extism.c: init gets at least 10 s */

int comp_snapshot(const kiln_function *fn, void *state, const kiln_instance_pre *pre,
                  kiln_err *err)
{
    (void)pre; /* a component has no core pre: the plan holds one per core instance */
    comp_state *s = state;
    cm_image *img = atomic_load(&s->image);
    if (img == NULL) {
        kiln_limits lim = fn->limits;
        if (lim.timeout_ms != 0 && lim.timeout_ms < COMP_SNAPSHOT_INIT_MS)
            lim.timeout_ms = COMP_SNAPSHOT_INIT_MS;
        void *slots[KILN_STATE_SLOTS] = {0}; /* no host context: every host call is refused */
        int rc = cm_image_build(s->plan, &lim, slots, &img, err);
        if (rc != KILN_OK)
            return kiln_err_prefix(err, "function '%s': snapshot: instantiating the component "
                                   "for its image failed (its start functions and static "
                                   "constructors may not call imports, which a snapshot cannot "
                                   "reproduce; move that work into the handler, or remove "
                                   "'snapshot')", fn->name);
        cm_image *none = NULL;
        if (!atomic_compare_exchange_strong(&s->image, &none, img)) {
            cm_image_free(img); /* another function of this component built it first */
            img = none;
        }
    }
    uint32_t n_core;
    uint64_t bytes;
    cm_image_info(img, &n_core, &bytes);
    kiln_err_set(err, KILN_OK, "snapshot image of %u core instances (%llu bytes of memory) "
                 "built in memory; component images are not cached on disk",
                 (unsigned)n_core, (unsigned long long)bytes);
    return KILN_OK;
}
