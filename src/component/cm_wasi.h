/*
 * cm_wasi.h - WASI 0.2 host functions for components (the subset the
 * preview-1 command adapter imports), registered in a cm_host over a
 * preview-1 context: one implementation of args, env and stdio for both.
 */
#ifndef KILN_COMPONENT_CM_WASI_H
#define KILN_COMPONENT_CM_WASI_H

#include "component/cm_inst.h"
#include "kiln/wasi.h"

/* Add the WASI 0.2 table to h; `w` must outlive every cm_inst using h. */
int cm_wasi_add(cm_host *h, kiln_wasi *w);

#endif
