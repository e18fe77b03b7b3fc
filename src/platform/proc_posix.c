/*
 * proc_posix.c - proc.h on POSIX: fork/exec with setrlimit, a process group
 * per child for the wall-clock kill, poll()-driven capture of its output.
 */
#include "platform/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "base/alloc.h"

#define PROC_DEFAULT_CAPTURE (64 * 1024)
/* After the wall-clock kill, how long to keep draining pipes held open by
 * processes that escaped the group before giving up on them. */
#define PROC_KILL_GRACE_MS 2000

typedef struct capbuf {
    char *p;
    size_t len, alloc, limit;
    bool truncated;
} capbuf;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void capbuf_add(capbuf *b, const char *data, size_t n)
{
    size_t room = b->limit - b->len;
    if (n > room) {
        b->truncated = true;
        n = room;
    }
    if (n == 0)
        return;
    if (b->len + n + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc : 1024;
        while (want < b->len + n + 1)
            want *= 2;
        if (want > b->limit + 1)
            want = b->limit + 1;
        char *q = kiln_realloc(b->p, want);
        if (q == NULL) {
            /* Output is diagnostic only: losing it must not fail the run. */
            b->truncated = true;
            return;
        }
        b->p = q;
        b->alloc = want;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static int capbuf_finish(capbuf *b, char **out, size_t *out_len)
{
    if (b->p == NULL) {
        b->p = kiln_malloc(1);
        if (b->p == NULL)
            return -1;
        b->p[0] = '\0';
    }
    *out = b->p;
    *out_len = b->len;
    b->p = NULL;
    return 0;
}

/* Report errno to the parent through fd 3 and exit; async-signal-safe. */
static void child_fail(int e) __attribute__((noreturn));
static void child_fail(int e)
{
    ssize_t w = write(3, &e, sizeof(e));
    (void)w;
    _exit(127);
}

static void set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur, want;
    if (getrlimit(resource, &cur) != 0)
        return;
    /* Only ever lower limits: an unprivileged process cannot raise them. */
    want.rlim_max = (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < hard) ? cur.rlim_max : hard;
    want.rlim_cur = soft < want.rlim_max ? soft : want.rlim_max;
    setrlimit(resource, &want);
}

/* The supervisor's parent (Kiln) died: take the whole group down with us. */
static void supervisor_orphaned(int sig)
{
    (void)sig;
    kill(0, SIGKILL);
}

/*
 * If Kiln dies (kill -9 mid-compile), the tool must not keep running: the
 * kernel can signal a child when its parent dies (PR_SET_PDEATHSIG), but
 * not the grandchildren a compiler driver starts (cc1, as, ld). So the
 * forked child stays as a small supervisor: it starts the tool in a second
 * child, kills its whole process group when orphaned, and otherwise exits
 * with the tool's status (re-raising its terminating signal). Returns only
 * in that second child, which then execs the tool. Async-signal-safe calls
 * only. Elsewhere, without PR_SET_PDEATHSIG, the child execs the tool
 * directly and orphaned tools run to completion (they cannot publish).
 */
static void supervise(pid_t parent)
{
#if defined(PR_SET_PDEATHSIG)
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = supervisor_orphaned;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127); /* the parent died before prctl took effect */
    pid_t tool = fork();
    if (tool < 0)
        child_fail(errno);
    if (tool == 0) {
        /* The tool: default SIGTERM again (exec would reset it anyway). */
        sa.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &sa, NULL);
        return;
    }
    /* The supervisor holds no pipe ends: the parent's EOF then means the
     * tool and everything it started are done. */
    close(0);
    close(1);
    close(2);
    close(3);
    int status = 0;
    while (waitpid(tool, &status, 0) < 0) {
        if (errno != EINTR)
            _exit(127);
    }
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    kill(getpid(), sig); /* RLIMIT_CORE is 0: no core file */
    _exit(128 + sig);
#else
    (void)parent;
#endif
}

/*
 * The child between fork and exec. Only async-signal-safe calls: another
 * thread of the parent may have held the allocator lock at fork time.
 */
static void child_exec(const char *path, char *const argv[], char *const envp[], const char *cwd,
                       const proc_limits *lim, int fd_in, int fd_out, int fd_err, int fd_status,
                       long max_fd, pid_t parent)
{
    /* Default dispositions and an empty mask: a server may ignore SIGPIPE or
     * block its timer signals, and both survive exec. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Own process group, so the wall-clock kill reaches cc1, as and ld. */
    setpgid(0, 0);

    /* Move the four descriptors above 9 first so that dup2 onto 0..3 never
     * clobbers one of them (the parent may run with 0..2 closed). */
    int hi_in = fcntl(fd_in, F_DUPFD, 10);
    int hi_out = fcntl(fd_out, F_DUPFD, 10);
    int hi_err = fcntl(fd_err, F_DUPFD, 10);
    int hi_status = fcntl(fd_status, F_DUPFD, 10);
    if (hi_in < 0 || hi_out < 0 || hi_err < 0 || hi_status < 0)
        _exit(127);
    if (dup2(hi_status, 3) != 3)
        _exit(127);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    if (dup2(hi_in, 0) != 0 || dup2(hi_out, 1) != 1 || dup2(hi_err, 2) != 2)
        child_fail(errno);

    /* Close everything else the process had open (sockets, the cache, ...). */
    bool closed = false;
#if defined(SYS_close_range)
    closed = syscall(SYS_close_range, 4U, ~0U, 0U) == 0;
#endif
    if (!closed)
        for (long fd = 4; fd < max_fd; fd++)
            close((int)fd);

    if (cwd != NULL && chdir(cwd) != 0)
        child_fail(errno);

    set_limit(RLIMIT_CORE, 0, 0);
    if (lim->cpu_s)
        set_limit(RLIMIT_CPU, lim->cpu_s, (rlim_t)lim->cpu_s + 5);
    if (lim->as_bytes)
        set_limit(RLIMIT_AS, lim->as_bytes, lim->as_bytes);
    if (lim->fsize_bytes)
        set_limit(RLIMIT_FSIZE, lim->fsize_bytes, lim->fsize_bytes);

    supervise(parent);
    execve(path, argv, envp);
    child_fail(errno);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

int proc_run(const char *path, char *const argv[], char *const envp[], const char *cwd,
             const proc_limits *lim, proc_result *res)
{
    memset(res, 0, sizeof(*res));
    res->exit_code = -1;
    size_t cap = lim->capture_bytes ? lim->capture_bytes : PROC_DEFAULT_CAPTURE;
    capbuf out = {.limit = cap}, err = {.limit = cap};
    int p_out[2] = {-1, -1}, p_err[2] = {-1, -1}, p_status[2] = {-1, -1};
    int fd_null = -1, saved = 0;

    /* sysconf is not async-signal-safe: ask before forking. */
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536)
        max_fd = 65536;

    fd_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd_null < 0 || pipe2(p_out, O_CLOEXEC) != 0 || pipe2(p_err, O_CLOEXEC) != 0 ||
        pipe2(p_status, O_CLOEXEC) != 0)
        goto fail;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0)
        child_exec(path, argv, envp, cwd, lim, fd_null, p_out[1], p_err[1], p_status[1], max_fd,
                   parent);

    /* Also set the group here: whichever of parent and child runs first, the
     * group exists before any kill(-pid). EACCES after exec is harmless. */
    setpgid(pid, pid);
    close_fd(&fd_null);
    close_fd(&p_out[1]);
    close_fd(&p_err[1]);
    close_fd(&p_status[1]);

    /* The status pipe closes on exec (CLOEXEC) or carries the child's errno. */
    int child_errno = 0;
    size_t got = 0;
    while (got < sizeof(child_errno)) {
        ssize_t n = read(p_status[0], (char *)&child_errno + got, sizeof(child_errno) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close_fd(&p_status[0]);
    if (got == sizeof(child_errno)) {
        res->exec_failed = true;
        res->exec_errno = child_errno;
    }

    int64_t start = now_ms();
    int64_t deadline = lim->wall_s ? start + (int64_t)lim->wall_s * 1000 : -1;
    int64_t killed_at = -1;
    struct pollfd pf[2] = {{.fd = p_out[0], .events = POLLIN}, {.fd = p_err[0], .events = POLLIN}};
    capbuf *bufs[2] = {&out, &err};
    int open_fds = 2;
    while (open_fds > 0) {
        int64_t t = now_ms();
        int timeout = -1;
        if (killed_at < 0 && deadline >= 0) {
            if (t >= deadline) {
                kill(-pid, SIGKILL);
                res->timed_out = true;
                killed_at = t;
                continue;
            }
            timeout = (int)(deadline - t);
        }
        if (killed_at >= 0) {
            /* Something outside the group still holds a pipe: stop waiting. */
            if (t - killed_at >= PROC_KILL_GRACE_MS)
                break;
            timeout = (int)(killed_at + PROC_KILL_GRACE_MS - t);
        }
        int n = poll(pf, 2, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; n > 0 && i < 2; i++) {
            if (pf[i].fd < 0 || pf[i].revents == 0)
                continue;
            char chunk[16384];
            ssize_t r = read(pf[i].fd, chunk, sizeof(chunk));
            if (r > 0) {
                capbuf_add(bufs[i], chunk, (size_t)r);
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    p_out[0] = pf[0].fd;
    p_err[0] = pf[1].fd;

    /* Wait for the exit without reaping, so that the zombie keeps the group id
     * reserved while we kill whatever of the group is left. */
    /* The child usually exits right after closing its pipes: poll with a
     * backoff from 50 us rather than a fixed 5 ms nap per tool run. */
    long nap_ns = 50 * 1000;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == pid)
            break;
        if (r < 0 && errno != EINTR)
            break; /* ECHILD: SIGCHLD ignored by the host, already reaped */
        if (killed_at < 0 && deadline >= 0 && now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            res->timed_out = true;
            killed_at = now_ms();
        }
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 5 * 1000 * 1000)
            nap_ns *= 2;
    }
    kill(-pid, SIGKILL);
    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    if (w == pid) {
        if (WIFEXITED(status)) {
            res->exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            res->term_signal = WTERMSIG(status);
        }
    }
    close_fd(&p_out[0]);
    close_fd(&p_err[0]);

    res->truncated = out.truncated || err.truncated;
    if (capbuf_finish(&out, &res->out, &res->out_len) != 0 ||
        capbuf_finish(&err, &res->err, &res->err_len) != 0) {
        kiln_free(out.p);
        kiln_free(err.p);
        proc_result_free(res);
        errno = ENOMEM;
        return -1;
    }
    return 0;

fail:
    saved = errno;
    close_fd(&fd_null);
    close_fd(&p_out[0]);
    close_fd(&p_out[1]);
    close_fd(&p_err[0]);
    close_fd(&p_err[1]);
    close_fd(&p_status[0]);
    close_fd(&p_status[1]);
    errno = saved;
    return -1;
}

void proc_result_free(proc_result *res)
{
    if (res == NULL)
        return;
    kiln_free(res->out);
    kiln_free(res->err);
    res->out = res->err = NULL;
    res->out_len = res->err_len = 0;
}

bool proc_alive(long pid)
{
    if (pid <= 0)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

long proc_self(void)
{
    return (long)getpid();
}
