/*
 * cm_tier.h - the compile tiers of a component's embedded core modules, for
 * a server that serves a component at a fast tier first and swaps in the
 * optimised one later (docs/internals/component.md "Tiers").
 *
 * Contract. A component is served at one tier: every core module it embeds
 * at that tier. Each embedded module is an ordinary artifact of the AOT cache,
 * keyed by its own bytes (modules shared by several components share
 * artifacts), named "DISPLAY#moduleN" in messages, as cm_mods_load names it.
 * cm_mods_best_tier() says which tier cm_mods_load() would find complete in
 * the cache, compiling nothing (kiln_aot_best_tier's choice: optimised, else
 * fast; KILN_ENOENT when a tier still has to be compiled; else the optimised
 * tier's failure). cm_mods_compile() compiles one tier (aot->tier) of every
 * embedded module into the cache and loads nothing: the background compiler's
 * job. `aot`'s `imports` is ignored (a core module's imports come from the
 * other core instances). Both only read `c` and `buf`. Thread-safe.
 */
#ifndef KILN_COMPONENT_CM_TIER_H
#define KILN_COMPONENT_CM_TIER_H

#include "component/cm.h"
#include "kiln/aot.h"

int cm_mods_best_tier(const cm_component *c, const uint8_t *buf, const char *display,
                      const kiln_aot_options *aot, kiln_aot_tier *tier /* OUT */,
                      kiln_err *err);
int cm_mods_compile(const cm_component *c, const uint8_t *buf, const char *display,
                    const kiln_aot_options *aot, kiln_err *err);

#endif
