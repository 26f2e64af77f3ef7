/* Process-level interposers. _exit and _Exit: a process that ends through them (a forked child,
 * a server's fast path) runs no destructors, so the trace would lack its END record and read as a
 * crash; these finalise it first (no summary: the program asked for no clean-up), then exit.
 * Must never: exit without calling the real function, or change the status. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomic.h"
#include "core.h"

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
