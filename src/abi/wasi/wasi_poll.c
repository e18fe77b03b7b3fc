/*
 * wasi_poll.c - poll_oneoff: clock subscriptions (relative and absolute,
 * realtime and monotonic) and fd_read/fd_write readiness on host streams,
 * in-memory stdio and files. On a serve worker a clock wait suspends the
 * fiber (src/loop); otherwise waiting happens in short slices with a
 * kiln_host_checkpoint between them, so an invocation deadline interrupts a
 * long sleep.
 */
#include "abi/wasi/wasi.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"

/* Subscriptions accepted by one call; bounds the scratch a guest can demand. */
#define WASI_POLL_MAX 4096
#define WASI_POLL_SLICE_NS 10000000u

typedef struct poll_sub {
    uint64_t userdata;
    uint64_t deadline; /* clocks: monotonic ns */
    uint32_t fd;       /* fd subscriptions */
    uint8_t type;      /* WASI_EVENTTYPE_* */
    int pollfd;        /* index into the pollfd array, or -1 */
} poll_sub;

static void put_event(uint8_t *ev, uint64_t userdata, uint16_t error, uint8_t type,
                      uint64_t nbytes, uint16_t flags)
{
    memset(ev, 0, WASI_EVENT_SIZE);
    wasi_st64(ev + 0, userdata);
    wasi_st16(ev + 8, error);
    wasi_st8(ev + 10, type);
    wasi_st64(ev + 16, nbytes);
    wasi_st16(ev + 24, flags);
}

/* Readiness of a descriptor that never blocks; false if it must be polled. */
static bool ready_now(kiln_wasi *w, const wasi_fd *f, uint8_t type, uint64_t *nbytes,
                      uint16_t *flags)
{
    *nbytes = 0;
    *flags = 0;
    switch (f->kind) {
    case WASI_FD_IN_BUF:
        *nbytes = type == WASI_EVENTTYPE_FD_READ ? w->in_len - w->in_pos : 0;
        if (type == WASI_EVENTTYPE_FD_READ && *nbytes == 0)
            *flags = WASI_EVENTRWFLAGS_HANGUP;
        return true;
    case WASI_FD_OUT_BUF:
        if (type == WASI_EVENTTYPE_FD_WRITE)
            *nbytes = w->out[f->outbuf].cap - w->out[f->outbuf].len;
        return true;
    case WASI_FD_NULL:
        return true;
    case WASI_FD_HOST:
        if (f->filetype == WASI_FILETYPE_REGULAR_FILE) {
            struct stat st;
            off_t pos = lseek(f->host_fd, 0, SEEK_CUR);
            if (type == WASI_EVENTTYPE_FD_READ && pos >= 0 && fstat(f->host_fd, &st) == 0 &&
                st.st_size > pos)
                *nbytes = (uint64_t)(st.st_size - pos);
            return true;
        }
        return f->filetype == WASI_FILETYPE_DIRECTORY;
    default:
        return true;
    }
}

uint32_t wasi_poll_oneoff(kiln_instance *inst, uint32_t in, uint32_t out, uint32_t nsubs,
                          uint32_t nevents_ptr)
{
    WASI_PROLOGUE(inst, w);
    if (nsubs == 0 || nsubs > WASI_POLL_MAX)
        return WASI_EINVAL;
    const uint8_t *subs = kiln_guest_array(inst, in, nsubs, WASI_SUBSCRIPTION_SIZE);
    uint8_t *events = kiln_guest_array(inst, out, nsubs, WASI_EVENT_SIZE);
    if (subs == NULL || events == NULL || kiln_guest_ptr(inst, nevents_ptr, 4) == NULL)
        return WASI_EFAULT;
    size_t need = (size_t)nsubs * (sizeof(poll_sub) + sizeof(struct pollfd));
    wasi_errno e = wasi_scratch(w, need);
    if (e != WASI_ESUCCESS)
        return e;
    poll_sub *ps = w->scratch;
    struct pollfd *pfds = (struct pollfd *)(ps + nsubs);
    /* Read every subscription out of guest memory before writing any event:
     * the guest may pass overlapping in and out arrays. */
    bool ok_mono, ok_real;
    uint64_t now = wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok_mono);
    uint64_t real = wasi_now_ns(WASI_CLOCK_REALTIME, &ok_real);
    uint64_t earliest = UINT64_MAX;
    nfds_t npoll = 0;
    uint32_t nev = 0;

    for (uint32_t i = 0; i < nsubs; i++) {
        const uint8_t *s = subs + (size_t)i * WASI_SUBSCRIPTION_SIZE;
        poll_sub *p = &ps[i];
        p->userdata = wasi_ld64(s);
        p->type = s[8];
        p->pollfd = -1;
        p->deadline = UINT64_MAX;
        if (p->type == WASI_EVENTTYPE_CLOCK) {
            uint32_t id = wasi_ld32(s + 16);
            uint64_t timeout = wasi_ld64(s + 24);
            bool abs = (wasi_ld16(s + 40) & WASI_SUBCLOCKFLAGS_ABSTIME) != 0;
            if (id == WASI_CLOCK_MONOTONIC || id == WASI_CLOCK_REALTIME) {
                uint64_t rel = timeout;
                if (abs) {
                    uint64_t base = id == WASI_CLOCK_MONOTONIC ? now : real;
                    rel = timeout > base ? timeout - base : 0;
                }
                p->deadline = rel > UINT64_MAX - now ? UINT64_MAX : now + rel;
                if (p->deadline < earliest)
                    earliest = p->deadline;
            } else {
                p->type = 0xff; /* reported below as an EINVAL event */
            }
        } else if (p->type == WASI_EVENTTYPE_FD_READ || p->type == WASI_EVENTTYPE_FD_WRITE) {
            p->fd = wasi_ld32(s + 16);
            wasi_fd *f = wasi_fd_get(w, p->fd);
            uint64_t nb;
            uint16_t fl;
            if (f != NULL && !ready_now(w, f, p->type, &nb, &fl)) {
                p->pollfd = (int)npoll;
                pfds[npoll].fd = f->host_fd;
                pfds[npoll].events = p->type == WASI_EVENTTYPE_FD_READ ? POLLIN : POLLOUT;
                pfds[npoll].revents = 0;
                npoll++;
            }
        }
    }

    /* Pass 1: events that are ready without waiting. */
    for (uint32_t i = 0; i < nsubs; i++) {
        poll_sub *p = &ps[i];
        if (p->type == 0xff) {
            put_event(events + (size_t)nev++ * WASI_EVENT_SIZE, p->userdata, WASI_EINVAL,
                      WASI_EVENTTYPE_CLOCK, 0, 0);
        } else if (p->type == WASI_EVENTTYPE_FD_READ || p->type == WASI_EVENTTYPE_FD_WRITE) {
            if (p->pollfd >= 0)
                continue;
            wasi_fd *f = wasi_fd_get(w, p->fd);
            uint64_t nb = 0;
            uint16_t fl = 0;
            uint16_t err = WASI_EBADF;
            if (f != NULL && (f->rights_base & (p->type == WASI_EVENTTYPE_FD_READ
                                                    ? WASI_RIGHT_FD_READ
                                                    : WASI_RIGHT_FD_WRITE))) {
                ready_now(w, f, p->type, &nb, &fl);
                err = WASI_ESUCCESS;
            }
            put_event(events + (size_t)nev++ * WASI_EVENT_SIZE, p->userdata, err, p->type, nb,
                      fl);
        } else if (p->type != WASI_EVENTTYPE_CLOCK) {
            put_event(events + (size_t)nev++ * WASI_EVENT_SIZE, p->userdata, WASI_EINVAL,
                      p->type, 0, 0);
        }
    }

    /* Pass 2: wait for a stream or the earliest clock, unless something is
     * already ready (then only a non-blocking look at the streams). */
    for (;;) {
        uint64_t slice = 0;
        if (nev == 0) {
            now = wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok_mono);
            if (earliest != UINT64_MAX && now >= earliest)
                break;
            slice = earliest == UINT64_MAX ? WASI_POLL_SLICE_NS : earliest - now;
            if (slice > WASI_POLL_SLICE_NS)
                slice = WASI_POLL_SLICE_NS;
        }
        int r = 0;
        if (npoll > 0) {
            int ms = (int)((slice + 999999u) / 1000000u);
            r = poll(pfds, npoll, ms);
            if (r < 0 && errno != EINTR)
                return wasi_errno_from_host(errno);
        } else if (slice > 0) {
            if (kl_sleep_until(now + slice) == KL_BLOCK) {
                struct timespec ts = {0, (long)slice};
                nanosleep(&ts, NULL);
            }
        }
        if (r > 0 || nev > 0)
            break;
        kiln_host_checkpoint(inst);
    }

    for (uint32_t i = 0; i < nsubs; i++) {
        poll_sub *p = &ps[i];
        if (p->pollfd < 0)
            continue;
        short re = pfds[p->pollfd].revents;
        if (re == 0)
            continue;
        uint16_t err = (re & POLLNVAL) ? WASI_EBADF : (re & POLLERR) ? WASI_EIO : 0;
        uint16_t fl = (re & POLLHUP) ? WASI_EVENTRWFLAGS_HANGUP : 0;
        put_event(events + (size_t)nev++ * WASI_EVENT_SIZE, p->userdata, err, p->type, 0, fl);
    }
    now = wasi_now_ns(WASI_CLOCK_MONOTONIC, &ok_mono);
    for (uint32_t i = 0; i < nsubs; i++) {
        poll_sub *p = &ps[i];
        if (p->type == WASI_EVENTTYPE_CLOCK && p->deadline <= now)
            put_event(events + (size_t)nev++ * WASI_EVENT_SIZE, p->userdata, 0,
                      WASI_EVENTTYPE_CLOCK, 0, 0);
    }
    return wasi_put32(inst, nevents_ptr, nev);
}
