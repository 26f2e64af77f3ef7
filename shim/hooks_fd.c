/* pipe2 interposer, for libunwind's sake. libunwind (1.6) validates memory through a pipe it opens
 * itself (at its first use, and again whenever a read on it fails): opened in a program that had
 * closed stdout/stderr, the pipe took fds 1 and 2; opened low, a daemon's close_range(3, ~0U) left
 * its numbers to the program's own files, which libunwind then read, wrote one byte into, or
 * closed. So a pipe2 called from libunwind gets descriptors moved high, out of the program's way,
 * like the trace's. Every other caller gets the real pipe2 untouched.
 * Must never: change what a call from anywhere else does. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include "atomic.h"
#include "core.h"

extern int unw_backtrace(void **buffer, int size);

static int (*real_pipe2)(int[2], int);
static uintptr_t unwind_lo, unwind_hi; /* libunwind's mapping; set once */

static int from_libunwind(const void *ret)
{
    if (!vsp_load_acquire(&unwind_hi)) {
        struct dl_find_object fo;
        if (_dl_find_object((void *)&unw_backtrace, &fo) != 0)
            return 0;
        vsp_store_relaxed(&unwind_lo, (uintptr_t)fo.dlfo_map_start);
        vsp_store_release(&unwind_hi, (uintptr_t)fo.dlfo_map_end); /* release: lo is set first */
    }
    uintptr_t a = (uintptr_t)ret;
    return a >= vsp_load_relaxed(&unwind_lo) && a < vsp_load_relaxed(&unwind_hi);
}

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
    if (rc != 0 || !from_libunwind(__builtin_return_address(0)))
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
