/*
 * elf_stack.c - give an artifact a non-executable PT_GNU_STACK before it is
 * ever dlopen'ed (see elf_stack.h). Works on the file, never maps it.
 */
#include "aot/elf_stack.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"

#define ELF_MAX_PHNUM 64

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    ssize_t n = pread(fd, buf, len, off);
    if (n < 0)
        return -1;
    return (size_t)n == len ? 0 : 1;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    ssize_t n = pwrite(fd, buf, len, off);
    if (n >= 0 && (size_t)n != len)
        errno = EIO;
    return n >= 0 && (size_t)n == len ? 0 : -1;
}

int aot_elf_noexec_stack(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    static const uint16_t probe = 1;
    const int native_data = *(const uint8_t *)&probe ? ELFDATA2LSB : ELFDATA2MSB;
    Elf64_Ehdr eh;
    Elf64_Phdr *ph = NULL;
    int rc = pread_all(fd, &eh, sizeof(eh), 0);
    if (rc == 0 && (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
                    eh.e_ident[EI_DATA] != native_data || eh.e_phentsize != sizeof(Elf64_Phdr) ||
                    eh.e_phnum == 0 || eh.e_phnum >= ELF_MAX_PHNUM))
        rc = 1;
    if (rc == 0) {
        ph = kiln_calloc((size_t)eh.e_phnum + 1, sizeof(*ph));
        if (ph == NULL) {
            errno = ENOMEM;
            rc = -1;
        }
    }
    if (rc == 0)
        rc = pread_all(fd, ph, eh.e_phnum * sizeof(*ph), (off_t)eh.e_phoff);
    if (rc == 0) {
        int found = -1;
        for (int i = 0; i < eh.e_phnum; i++)
            if (ph[i].p_type == PT_GNU_STACK)
                found = i;
        if (found >= 0) {
            if (ph[found].p_flags & PF_X) {
                ph[found].p_flags = PF_R | PF_W;
                rc = pwrite_all(fd, &ph[found], sizeof(*ph),
                                (off_t)(eh.e_phoff + (uint64_t)found * sizeof(*ph)));
            }
        } else {
            /* Append the table, one entry longer, 8-aligned at the end. */
            off_t end = lseek(fd, 0, SEEK_END);
            rc = end < 0 ? -1 : 0;
            if (rc == 0) {
                end = (end + 7) & ~(off_t)7;
                memset(&ph[eh.e_phnum], 0, sizeof(*ph));
                ph[eh.e_phnum].p_type = PT_GNU_STACK;
                ph[eh.e_phnum].p_flags = PF_R | PF_W;
                ph[eh.e_phnum].p_align = 16;
                rc = pwrite_all(fd, ph, ((size_t)eh.e_phnum + 1) * sizeof(*ph), end);
            }
            if (rc == 0) {
                eh.e_phoff = (Elf64_Off)end;
                eh.e_phnum++;
                rc = pwrite_all(fd, &eh, sizeof(eh), 0);
            }
        }
    }
    kiln_free(ph);
    int e = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = e;
    return rc;
}
