/*
 * proc.h - run a tool as a sandboxed child process: fork/exec with resource
 * limits, a wall-clock kill of its whole process group, stdin from /dev/null
 * and stdout/stderr captured into capped buffers. The only place that forks.
 */
#ifndef KILN_PLATFORM_PROC_H
#define KILN_PLATFORM_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits applied to the child (and inherited by its children). 0 = unlimited. */
typedef struct proc_limits {
    unsigned cpu_s;       /* RLIMIT_CPU soft limit in seconds, per process */
    uint64_t as_bytes;    /* RLIMIT_AS */
    uint64_t fsize_bytes; /* RLIMIT_FSIZE */
    unsigned wall_s;      /* SIGKILL to the process group after this long */
    size_t capture_bytes; /* keep at most this much of stdout and of stderr */
} proc_limits;

typedef struct proc_result {
    bool exec_failed; /* the program could not be started; exec_errno says why */
    int exec_errno;
    bool timed_out;  /* killed by the wall-clock limit */
    int exit_code;   /* exit status, or -1 when killed by a signal */
    int term_signal; /* signal that ended the child, else 0 */
    char *out;       /* captured stdout, NUL-terminated, never NULL on success */
    size_t out_len;
    char *err; /* captured stderr, NUL-terminated */
    size_t err_len;
    bool truncated; /* some output was dropped because of capture_bytes */
} proc_result;

/*
 * Run `path` (an absolute or relative path, no PATH search) with `argv`
 * (NULL-terminated, argv[0] included) and exactly the environment `envp`, in
 * directory `cwd` (NULL: unchanged). The child gets a new process group,
 * stdin from /dev/null, no other inherited descriptors, default signal
 * dispositions and an empty signal mask. Blocks until the child and every
 * process of its group that still holds its output pipes are gone.
 *
 * Returns 0 when the child ran (whatever its exit status: inspect *res), or
 * -1 with errno set when Kiln could not set it up (pipes, fork, memory).
 * On 0, release *res with proc_result_free. Thread-safe; callable from any
 * thread of a multi-threaded process (the child calls only async-signal-safe
 * functions before exec).
 */
int proc_run(const char *path, char *const argv[], char *const envp[], const char *cwd,
             const proc_limits *limits, proc_result *res /* OUT */);
void proc_result_free(proc_result *res);

/* Is process `pid` (of this host's pid namespace) still running? */
bool proc_alive(long pid);
/* This process's id. */
long proc_self(void);

#endif
