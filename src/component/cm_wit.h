/*
 * cm_wit.h - a decoded component's interface as WIT text, for `kiln inspect`
 * and error messages.
 *
 * The world is printed as `world root { ... }`: imported and exported
 * instances as inline `interface { ... }` blocks (their types, then their
 * functions), type imports/exports as definitions (`record`, `variant`,
 * `enum`, `flags`, `resource`, `type x = ...`), functions with their
 * signatures. A type defined in one interface and used in another scope is
 * shown with `use`. Anonymous records/variants (which WIT cannot write) are
 * spelled inline. Output is bounded: one type expression is cut at 64 KiB
 * with "...".
 */
#ifndef KILN_COMPONENT_CM_WIT_H
#define KILN_COMPONENT_CM_WIT_H

#include <stdio.h>

#include "component/cm.h"

/* Write `world root { ... }` for component c to f. */
void cm_wit_world(const cm_component *c, FILE *f);

/* Spell type t (its name if it has one) into buf, truncated to size. */
void cm_wit_type(const cm_type *t, char *buf, size_t size);

#endif
