/*
 * cm_json.h - component values to and from JSON, type-directed (for
 * `kiln call component.wasm EXPORT --input-json '[ARG, ...]'`).
 *
 * Mapping (docs/internals/component.md has the table): bool as true/false;
 * integers as JSON integers (u64 above 2^63-1 printed as a decimal string,
 * and s64/u64 accepted as decimal strings); floats as numbers, NaN and the
 * infinities as "nan", "inf", "-inf"; char as a one-scalar string; string as
 * a string; list and tuple as arrays; record as an object with every field;
 * variant as {"case": payload} (payload null, or a bare "case" string on
 * input, for a case without one); enum as the label string; option as null
 * or the value; result as {"ok": v} / {"error": e} (null when that side has
 * no type); flags as an array of the set labels.
 *
 * Input is checked against the type completely: wrong JSON types, integers
 * out of range, unknown or missing record fields, unknown cases or labels,
 * invalid chars are KILN_EINVAL with a message naming the JSON path
 * ("$[0].event.key"). Values live in `arena`.
 */
#ifndef KILN_COMPONENT_CM_JSON_H
#define KILN_COMPONENT_CM_JSON_H

#include <jansson.h>

#include "component/cm_canon.h"

int cm_val_from_json(cm_arena *arena, const cm_type *t, json_t *j, const char *path, cm_val *out,
                     kiln_err *err);

/* A new JSON value for v of type t; NULL when out of memory. */
json_t *cm_val_to_json(const cm_type *t, const cm_val *v);

#endif
