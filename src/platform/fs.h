/*
 * fs.h - the file-system operations the AOT cache needs: recursive mkdir and
 * remove, durable writes and renames, PATH lookup, directory listing.
 * Every function returns 0, or -1 with errno set (ENOSPC, EACCES, ...), so
 * callers can map the cause to a Kiln status and message.
 */
#ifndef KILN_PLATFORM_FS_H
#define KILN_PLATFORM_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mkdir -p with mode 0755 (before umask); existing directories are fine. */
int fs_mkdir_p(const char *path);
/* mkdtemp: `templ` ends in "XXXXXX" and is rewritten in place. */
int fs_mkdtemp(char *templ);
/* rm -rf that never follows symbolic links; a missing path is fine. */
int fs_remove_tree(const char *path);
/* Create or truncate `path` (mode 0644) and write all of `data`. */
int fs_write_file(const char *path, const void *data, size_t len);
/* Read a whole regular file; EFBIG when larger than `max`. *out is
 * kiln_malloc'd (free with kiln_free) and NUL-terminated. */
int fs_read_file(const char *path, size_t max, uint8_t **out /* OUT */, size_t *out_len /* OUT */);
/* fsync a file, or a directory (to make a rename in it durable). */
int fs_sync_path(const char *path);
/* Atomically replace `to` with `from` (same file system). */
int fs_rename(const char *from, const char *to);
/* Is `path` an existing regular file (following symlinks)? */
bool fs_is_file(const char *path);
/* Seconds since `path` was last modified; -1 on error. */
double fs_age_s(const char *path);
/* Canonical absolute path (symlinks resolved). */
int fs_realpath(const char *path, char *out, size_t size);
/* Find `prog` like a shell would: as given when it contains '/', else in
 * each directory of `path_env` ($PATH). Only executable regular files
 * match. ENOENT when absent, EACCES when found but not executable. */
int fs_which(const char *prog, const char *path_env, char *out, size_t size);
/* Call `fn` for each entry of directory `path` except "." and "..";
 * stops early and returns `fn`'s value when non-zero. */
int fs_list_dir(const char *path, int (*fn)(const char *name, void *ctx), void *ctx);
/* This host's name reduced to [A-Za-z0-9-], at most size-1 bytes. */
void fs_host_tag(char *out, size_t size);

#endif
