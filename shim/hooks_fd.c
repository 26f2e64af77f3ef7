/* Process-level interposers. _exit and _Exit: a process that ends through them (a forked child,
 * a server's fast path) runs no destructors, so the trace would lack its END record and read as a
 * crash; these finalise it first (no summary: the program asked for no clean-up), then exit.
 *
 * pipe2 interposer, for libunwind's sake. libunwind (1.6) validates memory through a pipe it opens
 * itself (at its first use, and again whenever a read on it fails): opened in a program that had
 * closed stdout/stderr, the pipe took fds 1 and 2; opened low, a daemon's close_range(3, ~0U) left
 * its numbers to the program's own files, which libunwind then read, wrote one byte into, or
 * closed. So a pipe2 called while this thread is inside a stack walk (vsp_tls.in_walk: only
 * libunwind runs then; asked of the thread, not of the return address, because a sanitizer's
 * pipe2 interceptor may stand between libunwind and us) gets descriptors moved high, out of the
 * program's way, like the trace's. Every other call gets the real pipe2 untouched.
 * Must never: change what a call from anywhere else does. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "core.h"

static int (*real_pipe2)(int[2], int);

VSP_EXPORT int pipe2(int fds[2], int flags)
{
    if (VSP_UNLIKELY(!vsp_load_acquire(&real_pipe2))) {
        vsp_resolve_dlsym();
        void *p = vsp_real_dlsym ? vsp_real_dlsym(RTLD_NEXT, "pipe2") : NULL;
        if (!p) {
            errno = ENOSYS;
            return -1;
        }
        vsp_store_release(&real_pipe2, (int (*)(int[2], int))p); /* release: a complete pointer */
    }
    int rc = real_pipe2(fds, flags);
    if (rc != 0 || !vsp_tls.in_walk)
        return rc;
    int saved = errno;
    for (int i = 0; i < 2; i++) {
        int hi = vsp_fd_park(fds[i]);
        if (hi >= 0)
            fds[i] = hi;
    }
    errno = saved;
    return rc;
}

static void finalize_then_exit(const char *name, int status) __attribute__((noreturn));
static void finalize_then_exit(const char *name, int status)
{
    if (vsp_is_ready() && !vsp_cfg.disabled)
        vsp_trace_finalize(1);
    vsp_resolve_dlsym();
    void (*real)(int) = vsp_real_dlsym ? (void (*)(int))vsp_real_dlsym(RTLD_NEXT, name) : NULL;
    if (real)
        real(status);
    syscall(SYS_exit_group, status); /* not reached: libc has both */
    __builtin_unreachable();
}

VSP_EXPORT void _exit(int status)
{
    finalize_then_exit("_exit", status);
}

VSP_EXPORT void _Exit(int status)
{
    finalize_then_exit("_Exit", status);
}
