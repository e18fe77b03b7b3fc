/*
 * cm_wasi.h - WASI 0.2 host functions for components (wasi:cli, wasi:io,
 * wasi:clocks, wasi:random, wasi:filesystem), registered in a cm_host over
 * a preview-1 context: one implementation of args, env, stdio, preopens and
 * the sandbox for both ABIs (cm_wasi.c, cm_wasi_io.c, cm_wasi_fs.c).
 */
#ifndef KILN_COMPONENT_CM_WASI_H
#define KILN_COMPONENT_CM_WASI_H

#include "component/cm_inst.h"
#include "kiln/wasi.h"

/*
 * Add the WASI 0.2 tables (three of CM_HOST_MAX_TABLES) to h, all with `w`
 * as their context: the component sees w's args, env, stdio and preopens
 * (wasi:filesystem/preopens), and its streams, pollables and listings live
 * in a table kept beside w (freed by kiln_wasi_free). `w` must outlive
 * every cm_inst using h, and serves one cm_inst at a time (like a preview-1
 * context serves one instance). Returns KILN_OK or KILN_ELIMIT (h is full).
 */
int cm_wasi_add(cm_host *h, kiln_wasi *w);

#endif
