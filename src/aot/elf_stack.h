/*
 * elf_stack.h - make sure an artifact never asks for an executable stack.
 * Internal to src/aot/ (see docs/internals/aot.md, "Tiers").
 */
#ifndef KILN_AOT_ELF_STACK_H
#define KILN_AOT_ELF_STACK_H

/*
 * An ELF object without a PT_GNU_STACK program header, or with one marked
 * executable, makes glibc's dlopen() turn every thread stack of the process
 * executable. tcc 0.9.27 writes no PT_GNU_STACK at all. This rewrites the
 * file at `path` so that it has a PT_GNU_STACK of PF_R|PF_W: in place when
 * the header exists, else by appending a copy of the program header table
 * with one more entry and pointing the ELF header at it (glibc copies a
 * table that lies outside every segment). Returns 0 when done or nothing
 * was needed, 1 when the file is not a 64-bit ELF object of this host's
 * byte order (left untouched: the load check rejects it), and -1 with
 * errno on an I/O error.
 */
int aot_elf_noexec_stack(const char *path);

#endif
