/*
 * cgi_snap.h - private to src/abi/cgi/: `snapshot: true` for the wasi (CGI)
 * ABI (docs/internals/snapshot.md §4, "WASI-CGI"). A command's _start is
 * the request, so an image needs an initialisation split off it: the
 * module's `wizer.initialize` export (Wizer's convention), or `_initialize`
 * (a reactor). It runs once at deploy; every request then starts from the
 * image and calls the function's entry (_start or `export`).
 */
#ifndef KILN_ABI_CGI_CGI_SNAP_H
#define KILN_ABI_CGI_CGI_SNAP_H

#include <stddef.h>

#include "kiln/handler.h"
#include "kiln/wasi.h"

/* The function's image, on the pre it was made on. Owned by the state. */
typedef struct cgi_image {
    kiln_snapshot *snap;
    const kiln_instance_pre *pre;
} cgi_image;

/*
 * Make (or load from the artifact cache) the image for `pre`: run the
 * initialisation export with a WASI context of the function's preopens and
 * argv, no environment (a request's environment is its CGI variables, which
 * init cannot know: reading it is refused) and empty stdin, every host call
 * but WASI's snapshot allow-list refused, at least CGI_SNAPSHOT_INIT_MS.
 * KILN_ECONFIG when the module has nothing to split (a plain command: the
 * message says what to export); init that writes to stdout (the CGI
 * response), traps, times out or makes a refused call fails with err naming
 * it. On success err->msg says where the image came from, for the log.
 */
#define CGI_SNAPSHOT_INIT_MS 10000u
int cgi_image_make(const kiln_function *fn, const kiln_instance_pre *pre,
                   const kiln_wasi_preopen *preopens, size_t n_preopens, cgi_image *img,
                   kiln_err *err);
void cgi_image_free(cgi_image *img);

#endif
