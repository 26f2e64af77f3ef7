/* Process-level interposers.
 * _exit and _Exit: a process that ends through them (a forked child, a server's fast path) runs
 * no destructors, so the trace would lack its END record and read as a crash; these finalise it
 * first (no summary: the program asked for no clean-up), then exit.
 * The exec family (execve, execv, execvp, execvpe, execl, execlp, execle, fexecve): a launcher
 * that checks the GPU and then execs its worker replaces its image without running destructors
 * either; the trace is finalised before the exec and re-opened for more calls if the exec returns
 * (it failed). posix_spawn and vfork+exec from libc's own code do not come through here, and need
 * not: the process that called them goes on and exits as usual.
 * Must never: exit without calling the real function (except where that function is libc's own
 * _exit, which the hook then does in its place: exit_if_direct), change the status, change an
 * exec's arguments or result, or leave errno other than the real call left it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/record/trace.h"

static void *real_next(const char *name)
{
    vsp_resolve_dlsym();
    return vsp_real_dlsym ? vsp_real_dlsym(RTLD_NEXT, name) : NULL;
}

/* exit_group made inline: a libc function called here for the first time would be bound lazily,
 * a lookup of its own, which is what the direct exit saves. */
static inline __attribute__((noreturn)) void raw_exit_group(int status)
{
    for (;;) {
#if defined(__x86_64__)
        long ret;
        __asm__ volatile("syscall"
                         : "=a"(ret)
                         : "a"((long)SYS_exit_group), "D"((long)status)
                         : "rcx", "r11", "memory");
#else
        syscall(SYS_exit_group, status);
#endif
    }
}

/* Nothing to finalise, and libc's _exit is the next one (the C library follows the shim in the
 * loader's list: core.c, vsp_libc_next): then the hook ends the process as libc's _exit does,
 * with exit_group. Finding the next definition costs five dynamic lookups (vsp_resolve_dlsym,
 * then dlsym(RTLD_NEXT)), about 6 us at the exit of every process that calls _exit under a
 * global preload and never used CUDA (a shell: issue 22, start-up). Otherwise (another preloaded
 * library, or a needed one of the program, before libc) the next definition is looked up as
 * before, and so a sanitizer runtime's or another tracer's _exit still runs. */
static inline __attribute__((always_inline)) void exit_if_direct(int status)
{
    if (!(vsp_is_ready() && !vsp_cfg.disabled) && vsp_load_relaxed(&vsp_libc_next))
        raw_exit_group(status);
}

static void finalize_then_exit(const char *name, int status) __attribute__((noreturn, noinline));
static void finalize_then_exit(const char *name, int status)
{
    if (vsp_is_ready() && !vsp_cfg.disabled)
        vsp_trace_finalize(1);
    void (*real)(int) = (void (*)(int))real_next(name);
    if (real)
        real(status);
    syscall(SYS_exit_group, status); /* not reached: libc has both */
    __builtin_unreachable();
}

VSP_EXPORT VSP_STARTUP_TEXT void _exit(int status)
{
    exit_if_direct(status);
    finalize_then_exit("_exit", status);
}

VSP_EXPORT VSP_STARTUP_TEXT void _Exit(int status)
{
    exit_if_direct(status);
    finalize_then_exit("_Exit", status);
}

/* ---- exec ---- */

/* Before the exec: -1 when nothing was finalised (no trace of ours), else what
 * vsp_trace_exec_failed needs. errno is the caller's. */
static int exec_begin(void)
{
    if (!vsp_is_ready() || vsp_cfg.disabled)
        return -1;
    int saved = errno;
    int was = vsp_trace_before_exec();
    errno = saved;
    return was;
}

/* The exec returned (it failed): the trace goes on. errno stays the exec's. */
static void exec_failed(int was)
{
    if (was < 0)
        return;
    int saved = errno;
    vsp_trace_exec_failed(was);
    errno = saved;
}

typedef int (*exec_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);

#define EXEC_V(name, ...)                                                       \
    do {                                                                        \
        int was_ = exec_begin();                                                \
        __typeof(&name) real_ = (__typeof(&name))real_next(#name);             \
        int rc_ = real_ ? real_(__VA_ARGS__) : (errno = ENOSYS, -1);            \
        exec_failed(was_);                                                      \
        return rc_;                                                             \
    } while (0)

VSP_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    EXEC_V(execve, path, argv, envp);
}

VSP_EXPORT int execv(const char *path, char *const argv[])
{
    EXEC_V(execv, path, argv);
}

VSP_EXPORT int execvp(const char *file, char *const argv[])
{
    EXEC_V(execvp, file, argv);
}

VSP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    EXEC_V(execvpe, file, argv, envp);
}

VSP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    EXEC_V(fexecve, fd, argv, envp);
}

/* The list forms: the arguments into an array (on the stack, as libc's own execl does), then the
 * vector form of the same lookup rules: execl = execv, execlp = execvp, execle = execve. */
static size_t count_args(const char *arg, va_list ap)
{
    size_t n = 1; /* arg itself (may be NULL: then argv is just the terminator) */
    if (!arg)
        return 0;
    while (va_arg(ap, const char *))
        n++;
    return n;
}

#define EXEC_L(vector, path, arg, with_env)                                     \
    do {                                                                        \
        va_list ap_;                                                            \
        va_start(ap_, arg);                                                     \
        size_t n_ = count_args(arg, ap_);                                       \
        va_end(ap_);                                                            \
        char *argv_[n_ + 1];                                                    \
        char *const *envp_ = NULL;                                              \
        va_start(ap_, arg);                                                     \
        argv_[0] = (char *)arg;                                                 \
        for (size_t i_ = 1; i_ <= n_; i_++)                                     \
            argv_[i_] = va_arg(ap_, char *); /* the last one read is the NULL */ \
        if (with_env)                                                           \
            envp_ = va_arg(ap_, char *const *);                                 \
        va_end(ap_);                                                            \
        argv_[n_] = NULL;                                                       \
        return with_env ? execve(path, argv_, envp_) : vector(path, argv_);     \
    } while (0)

VSP_EXPORT int execl(const char *path, const char *arg, ...)
{
    EXEC_L(execv, path, arg, 0);
}

VSP_EXPORT int execlp(const char *file, const char *arg, ...)
{
    EXEC_L(execvp, file, arg, 0);
}

VSP_EXPORT int execle(const char *path, const char *arg, ...)
{
    EXEC_L(execv, path, arg, 1);
}
