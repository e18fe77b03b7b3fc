/*
 * noop.c - instantiate-bench guest: a reactor that imports nothing and
 * exports `noop`. BLOB_INC names a generated file of comma-separated bytes
 * (bench/run.sh makes one per size) that pads the module's data segment to
 * the size being measured, so instantiate pays for copying it.
 * Built with -nostdlib -Wl,--no-entry: no WASI imports, no _initialize.
 */
unsigned char kiln_bench_blob[] = {
#include BLOB_INC
};

/* Reads the blob so the linker keeps it and the compiler cannot fold it. */
__attribute__((export_name("noop"))) int noop(void)
{
    return kiln_bench_blob[0];
}
