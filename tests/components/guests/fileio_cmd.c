/*
 * fileio_cmd.c - preview 1's file API test (tests/guests/fileio.c: create,
 * write, read, seek, stat, truncate, pread/pwrite, readdir, rename, unlink,
 * mkdir, rmdir, symlink/readlink; or a read-only preopen refusing every
 * change) built as a wasi:cli/command component: the preview-1 command
 * adapter turns each call into wasi:filesystem, so the same program checks
 * WASI 0.2 over the same sandbox. (Rebuilt when this file changes, not
 * when the included one does: touch this file after editing that one.)
 * kiln-component: - command
 */
#include "../../guests/fileio.c"
