/* Core of the shim: init, the hook bracket, and recording of allocations and frees.
 * The recording path (vsp_hook_leave_alloc_rec, vsp_free_begin, vsp_hook_leave_free) takes no lock,
 * calls no malloc or stdio, and makes no system call in the common case (gettid once per thread,
 * clock_gettime through the vDSO). Warnings and init may use snprintf. The one exception: in a
 * thread running Python with the GIL, reading its Python frames goes through CPython's C API,
 * which may allocate with the host's allocator (pyframes.c says why that is safe). */
#define _GNU_SOURCE
#include "shim/record/core.h"
#include "shim/record/trace.h"
#include "shim/inproc/inproc.h"
#include "shim/walk/unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/tcount.h"
#include "shim/base/clock.h"
#include "shim/walk/pyframes.h"

__thread struct vsp_tls vsp_tls __attribute__((tls_model("initial-exec")));

/* The shim links without the C start files (Makefile: start-up), so without crtbegin's
 * __dso_handle: atexit (inproc/usage.c) names this object by it. */
void *__dso_handle __attribute__((visibility("hidden"))) = &__dso_handle;
struct vsp_config vsp_cfg;

/* INIT_LATER: the constructor found no VRAMSPY_ variable, so the configuration is the defaults,
 * set by the first hook (vsp_init) rather than at start-up: a process that never calls CUDA (every
 * process under a global preload) touches none of it, at start-up or exit. */
enum { INIT_NONE = 0, INIT_RUNNING = 1, INIT_DONE = 2, INIT_LATER = 3 };
static int init_state VSP_STARTUP_DATA;
static uintptr_t shim_lo VSP_STARTUP_DATA, shim_hi VSP_STARTUP_DATA;

/* What fd 2 was at the first CUDA call. A program that had closed stderr by then, or put another
 * file on fd 2 since, gets nothing written there: that file is its own (a daemon's data file, not
 * our diagnostics' place). Unknown (state 0) before the first CUDA call: written as is. */
static struct {
    int state; /* 0 unknown, 1 open (dev/ino below), 2 closed */
    dev_t dev;
    ino_t ino;
} stderr_at_start;

static void note_stderr(void)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) == 0) {
        stderr_at_start.dev = st.st_dev;
        stderr_at_start.ino = st.st_ino;
        stderr_at_start.state = 1;
    } else {
        stderr_at_start.state = 2;
    }
}

static int stderr_is_ours_to_write(void)
{
    struct stat st;
    switch (stderr_at_start.state) {
    case 0: return 1;
    case 1: return fstat(STDERR_FILENO, &st) == 0 && st.st_dev == stderr_at_start.dev &&
                   st.st_ino == stderr_at_start.ino;
    default: return 0;
    }
}

/* Write to stderr without letting a closed pipe kill the program: SIGPIPE is blocked on this
 * thread for the write, and one that the write raised (and that was not pending before) is
 * consumed before the mask is restored. `prog 2>&1 | head -1` keeps its exit status. */
static void write_stderr(const char *buf, size_t len)
{
    if (!stderr_is_ours_to_write())
        return;
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int raised = 0;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            raised = w < 0 && errno == EPIPE;
            break;
        }
        buf += w;
        len -= (size_t)w;
    }
    if (raised && !was_pending) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int vsp_fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fd);
    errno = err;
    return hi;
}

/* Formatting runs on a cold stack (vsnprintf and the buffers take some 2 KiB). */
struct warn_args {
    int debug;
    const char *fmt;
    va_list *ap;
};

static void warn_cold(void *p)
{
    struct warn_args *a = p;
    char buf[1024];
    static const char prefix[] = "vramspy: debug: ";
    size_t plen = a->debug ? sizeof prefix - 1 : 9;
    memcpy(buf, prefix, plen);
    int n = vsnprintf(buf + plen, sizeof buf - plen - 1, a->fmt, *a->ap);
    if (n < 0)
        n = 0;
    size_t len = plen + ((size_t)n < sizeof buf - plen - 1 ? (size_t)n : sizeof buf - plen - 2);
    if (buf[len - 1] != '\n')
        buf[len++] = '\n';
    write_stderr(buf, len);
}

void vsp_warn(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    struct warn_args a = {0, fmt, &ap};
    vsp_cold_call(warn_cold, &a);
    va_end(ap);
    errno = saved;
}

void vsp_debug(const char *fmt, ...)
{
    if (!vsp_cfg.debug)
        return;
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    struct warn_args a = {1, fmt, &ap};
    vsp_cold_call(warn_cold, &a);
    va_end(ap);
    errno = saved;
}

int vsp_in_shim(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return a >= shim_lo && a < shim_hi;
}

/* The shim's own extent, from the linker: its ELF header starts its first loaded segment and
 * _end ends its bss (no dl_iterate_phdr at start-up: no loader lock, no page of other objects). */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern char _end[] __attribute__((visibility("hidden")));

/* Fork safety of the stack walk. The walker's module-table refresh and the module map call
 * dl_iterate_phdr (the loader's lock), the in-process symboliser takes libdw's; a fork while
 * another thread holds one leaves it locked forever in the child (observed with libunwind, the
 * walker before ours: a child's first cudaMalloc hung in its step). So fork waits until no
 * thread is inside a part of a walk that locks (a rule-cache miss, a thread's first walk, a new
 * stack, Python frames: walker.c, unwind.c and pyframes.c take the bracket around those; a walk
 * over cached rules of a known stack locks nothing and stays outside), and those wait while a
 * fork is in progress — a Dekker pair on
 * `unwinders` and `forking`, both seq_cst: either the walker sees the fork and backs off, or the
 * forker sees the walker's count and waits for it. */
/* The in-process symboliser (libdw: locks, malloc) runs inside the same bracket. */
static unsigned long unwinders;
static int forking;
/* This thread's nesting in the bracket (a walk inside a host's dl_iterate_phdr callback, the shim's
 * own dl_iterate_phdr through its wrapper): only the outermost level counts in `unwinders`, so a
 * thread that forks from inside the bracket does not wait for itself. */
static __thread unsigned bracket_depth __attribute__((tls_model("initial-exec")));
volatile int *vsp_fork_canary VSP_HIDDEN VSP_STARTUP_DATA; /* see fork_setup */
#define fork_canary vsp_fork_canary
/* Set once the first CUDA call is done, tracing is on and the fork canary is in place: an outermost
 * hook may then take the bracket inline (core.h) while the canary and the trace say nothing moved. */
int vsp_hooks_steady VSP_HIDDEN VSP_STARTUP_DATA;

static void atfork_prepare(void)
{
    __atomic_store_n(&forking, 1, __ATOMIC_SEQ_CST);
    /* a stack walk takes microseconds; give up after ~2 s rather than hang the fork */
    unsigned long mine = bracket_depth ? 1 : 0; /* forking from inside the bracket: not ourselves */
    for (int i = 0; i < 20000 && __atomic_load_n(&unwinders, __ATOMIC_SEQ_CST) > mine; i++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

static void atfork_parent(void)
{
    /* release: pairs with the walkers' acquire wait below */
    __atomic_store_n(&forking, 0, __ATOMIC_RELEASE);
}

static void atfork_child(void)
{
    if (fork_canary)
        *fork_canary = 1; /* this child is reset now; the raw-fork check must not do it again */
    /* the child has one thread: this one, inside the bracket only if it forked from there (it
     * leaves it once) */
    unwinders = bracket_depth ? 1 : 0;
    forking = 0;
    vsp_tls.tid = 0;
    vsp_tls.depth = 0;
    vsp_tls.inflight = 0;
    vsp_ring_inflight_reset();
    vsp_cold_atfork_child();
    vsp_labels_reset_trace();
    vsp_inproc_atfork_child();
    vsp_usage_atfork_child();
    vsp_trace_atfork_child();
}

/* Configuration warnings wait for the first CUDA call: a process that never calls CUDA (sh, ls,
 * make under a global LD_PRELOAD) prints nothing, whatever its environment says. */
static char pending_warn[2048];

/* Start-up (the constructor, or the first hook that runs before it): only the configuration.
 * A process that never calls CUDA pays for nothing else; the real dlsym is looked up at its
 * first use (vsp_resolve_dlsym), the fork handlers at the first CUDA call. */
/* Set by the constructor: the C library is the object right after the shim in the loader's list,
 * the order of the search dlsym(RTLD_NEXT) makes from here, so libc's _exit is the next one and
 * nothing between could interpose it (another preloaded library, one from /etc/ld.so.preload or
 * `ld.so --preload`, a needed library of the program such as a sanitizer runtime). hooks_exit.c. */
int vsp_libc_next VSP_HIDDEN VSP_STARTUP_DATA;

static int name_is_libc(const char *n)
{
    const char *base = n;
    for (; *n; n++)
        if (*n == '/')
            base = n + 1;
    static const char want[] = "libc.so.6"; /* (compared by hand: a libc call here would be bound
                                                 lazily, one more lookup in every process) */
    for (unsigned i = 0; i < sizeof want; i++)
        if (base[i] != want[i])
            return 0;
    return 1;
}

static int libc_follows_shim(void)
{
    /* The loader's link map of this object: the second word of its PLT's GOT, which glibc sets
     * for lazy binding (the x86-64 psABI reserves it for the dynamic linker); 0 when the process
     * binds at load (LD_BIND_NOW), and checked against this object's own addresses. */
    extern uintptr_t _GLOBAL_OFFSET_TABLE_[] __attribute__((visibility("hidden")));
    extern ElfW(Dyn) _DYNAMIC[] __attribute__((visibility("hidden")));
    const struct link_map *self = (const struct link_map *)_GLOBAL_OFFSET_TABLE_[1];
    if (!self || self->l_addr != (ElfW(Addr))(uintptr_t)__ehdr_start || self->l_ld != _DYNAMIC)
        return 0;
    const struct link_map *next = self->l_next;
    return next && next->l_name && name_is_libc(next->l_name);
}

/* Whether any VRAMSPY_ variable is set: one pass over the environment, rather than a getenv (a
 * pass each) per variable in every process under a global preload. */
static int vramspy_in_environment(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if ((*e)[0] == 'V' && !strncmp(*e, "VRAMSPY_", 8))
            return 1;
    return 0;
}

static void do_init(int read_env)
{
    shim_lo = (uintptr_t)__ehdr_start;
    shim_hi = (uintptr_t)_end;
    /* vsp_cfg is static and not yet written: a fresh load writes only what differs from zero, and
     * nothing of the warnings' buffer when there is nothing to read (the pages a process under a
     * global preload touches at start-up, issue 22) */
    int any = read_env && vramspy_in_environment();
    vsp_config_load_fresh(&vsp_cfg, any ? getenv : NULL, getauxval(AT_SECURE) != 0, pending_warn,
                          any ? sizeof pending_warn : 0);
    if (vsp_cfg.clock_coarse)
        vsp_clock_set_coarse(1);
}

/* Fork handling, set up by the first CUDA call: before it there is no trace, no walker and no
 * recorded state a child could inherit. The fork canary is a page that reads as zeros in any
 * child, however it was made (MADV_WIPEONFORK): a child forked by a raw system call runs none of
 * our atfork handlers, and this is how it notices that it is not the process that opened the
 * trace. NULL when the kernel lacks the advice (before 4.14); then getpid() is compared instead,
 * on the hook path only when a trace is open. */
static void inflight_thread_exit(void);

static void fork_setup(void)
{
    if (vsp_cfg.secure || vsp_cfg.disabled)
        return; /* pass-through: no fork handlers, no files, nothing loaded */
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED && madvise(page, 4096, MADV_WIPEONFORK) == 0) {
        fork_canary = page; /* published to other threads by first_state's release */
        *fork_canary = 1;
    } else if (page != MAP_FAILED) {
        munmap(page, 4096);
    }
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    vsp_tc_at_exit(inflight_thread_exit); /* before any thread can take a stripe's slot */
}

/* First CUDA call of the process (the outermost hook of any thread): the configuration's
 * warnings, and the purpose rules (which load the in-process symboliser). Other threads wait for
 * it, so no stack is interned before the rules exist; a CUDA call made from inside it (a
 * constructor of a library it loads) passes through. */
enum { FIRST_NONE = 0, FIRST_RUNNING = 1, FIRST_DONE = 2 };
static int first_state VSP_STARTUP_DATA;
static __thread int in_first_call __attribute__((tls_model("initial-exec")));

/* The seccomp mode at the first CUDA call (prctl), and whether a filter has been seen since. */
static int seccomp_at_start = -1, sandbox_seen;

int vsp_sandboxed(void)
{
    if (vsp_load_relaxed(&sandbox_seen))
        return 1;
    /* A filter installed after the first CUDA call (a worker that sandboxes itself once CUDA is
     * up). One that was there before it allowed the trace to be opened, and is taken to allow
     * reading files; a second filter stacked on it cannot be told from here (documented). */
    if (seccomp_at_start == 0 && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2) {
        vsp_store_relaxed(&sandbox_seen, 1); /* relaxed: a flag that only ever goes up */
        return 1;
    }
    return 0;
}

static void first_cuda_call_cold(void *unused);

static void first_cuda_call(void)
{
    int expected = FIRST_NONE;
    if (vsp_cas_acq_rel(&first_state, &expected, FIRST_RUNNING)) {
        in_first_call = 1;
        vsp_cold_call(first_cuda_call_cold, NULL);
        in_first_call = 0;
        /* release: the rules are loaded before any thread sees DONE (pairs with the acquire). */
        vsp_store_release(&first_state, FIRST_DONE);
        if (vsp_is_ready() && !vsp_cfg.disabled && fork_canary)
            vsp_store_release(&vsp_hooks_steady, 1); /* release: as first_state's */
        return;
    }
    while (!in_first_call && vsp_load_acquire(&first_state) != FIRST_DONE)
        sched_yield();
}

static void first_cuda_call_cold(void *unused)
{
    (void)unused;
    seccomp_at_start = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    fork_setup();
    note_stderr();
    for (char *line = pending_warn, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = 0;
        vsp_warn("%s", line);
    }
    if (vsp_cfg.purposes_path[0] && !vsp_cfg.disabled)
        vsp_purposes_load();
}

void vsp_init(void)
{
    /* acquire: pairs with the release below; a thread that sees DONE sees the whole config. */
    if (VSP_LIKELY(vsp_load_acquire(&init_state) == INIT_DONE))
        return;
    if (vsp_tls.in_init)
        return; /* re-entered from our own init on this thread: hooks pass through */
    int expected = vsp_load_relaxed(&init_state);
    if ((expected == INIT_NONE || expected == INIT_LATER) && vsp_cas_acq_rel(&init_state, &expected, INIT_RUNNING)) {
        vsp_tls.in_init = 1;
        do_init(expected == INIT_NONE); /* INIT_LATER: no VRAMSPY_ variable at start-up */
        vsp_tls.in_init = 0;
        /* release: config, shim range and real dlsym are published with the state. */
        vsp_store_release(&init_state, INIT_DONE);
        return;
    }
    while (vsp_load_acquire(&init_state) != INIT_DONE)
        sched_yield(); /* another thread is initialising: a few microseconds, once */
}

VSP_STARTUP_TEXT int vsp_is_ready(void)
{
    return vsp_load_acquire(&init_state) == INIT_DONE;
}

/* The environment is read here, at start-up, before the program can change it; with no VRAMSPY_
 * variable there is nothing to read, and the rest waits for the first hook (INIT_LATER). */
__attribute__((constructor)) static void vsp_constructor(void)
{
    vsp_libc_next = libc_follows_shim();
    int expected = INIT_NONE;
    if (vramspy_in_environment() || !vsp_cas_acq_rel(&init_state, &expected, INIT_LATER))
        vsp_init();
}

__attribute__((destructor)) static void vsp_destructor(void)
{
    if (vsp_is_ready())
        vsp_trace_finalize(0);
}

/* ---- the hook bracket ---- */

/* A child made without our fork handlers (a raw fork system call): reset as atfork_child does,
 * so the child starts its own trace and never writes into its parent's. */
static void check_raw_fork(void)
{
    if (VSP_LIKELY(fork_canary != NULL)) {
        if (VSP_LIKELY(*fork_canary))
            return;
        *fork_canary = 1;
    } else if (!vsp_trace_foreign()) {
        return;
    }
    vsp_debug("pid %d was forked without fork handlers; starting its own trace", (int)getpid());
    atfork_child();
}

/* A hook of this thread was left without its leave: a non-local jump (siglongjmp from a signal
 * handler, a coroutine switched away for good) out of its real call. Hooks nest downwards on one
 * stack (an inner layer's frame lies strictly below the outer hook's), so a new hook whose frame
 * is at or above the outermost one recorded means that one's frame is gone: the depth is stale.
 * (Frame addresses, not the brackets' own: two hooks called from the same place have the same
 * frame address whatever their locals.) The abandoned call is counted (END record: the report shows it as lost),
 * and its free's number, if it took one, is no longer in flight. Without this, every later call
 * of the thread would pass through as "nested" and be lost silently. */
static void abandon_stale_hooks(void)
{
    vsp_fetch_add_relaxed(&vsp_live.c.abandoned, 1); /* relaxed: a counter */
    if (vsp_tls.inflight) {
        vsp_ring_seq_end(vsp_tls.inflight - 2);
        vsp_tls.inflight = 0;
    }
    if (vsp_tls.batch.busy) /* the jump left from inside the append */
        vsp_ring_append_abandoned(vsp_trace_ring(), &vsp_tls.batch);
    vsp_tls.depth = 0;
}

/* A thread that exits with a free in flight (left by a jump, never abandoned: its next hook never
 * came) ends it before its counter stripe, and with it the in-flight slot, goes to another thread
 * (tcount.h's exit functions run first). */
static void inflight_thread_exit(void)
{
    if (vsp_tls.inflight) {
        vsp_ring_seq_end(vsp_tls.inflight - 2);
        vsp_tls.inflight = 0;
    }
}

int vsp_hook_enter_slow(const void *frame)
{
    int saved = errno;
    vsp_init();
    if (VSP_UNLIKELY(vsp_load_acquire(&first_state) != FIRST_DONE))
        first_cuda_call();
    if (VSP_UNLIKELY(vsp_tls.depth > 0) && (uintptr_t)frame >= vsp_tls.entry)
        abandon_stale_hooks();
    int record = 0;
    if (vsp_tls.depth == 0) {
        vsp_tls.entry = (uintptr_t)frame;
        if (vsp_is_ready() && !vsp_cfg.disabled) {
            check_raw_fork();
            record = 1;
            vsp_trace_ensure(); /* opened at the first CUDA call of the process (a child's too) */
        }
    } else {
        VSP_TC_ADD(nested, 1);
    }
    vsp_tls.depth++;
    errno = saved;
    return record;
}

void vsp_cuda_contact(void)
{
    int saved = errno;
    vsp_init();
    if (VSP_UNLIKELY(vsp_load_acquire(&first_state) != FIRST_DONE))
        first_cuda_call();
    if (vsp_tls.depth == 0 && vsp_is_ready() && !vsp_cfg.disabled) {
        check_raw_fork();
        vsp_trace_ensure();
    }
    errno = saved;
}

/* (never below 0: a bracket taken for abandoned, a handler on an alternate stack above it, can
 * still return) */
static inline void hook_depth_down(void)
{
    if (VSP_LIKELY(vsp_tls.depth > 0))
        vsp_tls.depth--;
}

void vsp_hook_leave(struct vsp_hook *h)
{
    (void)h;
    hook_depth_down();
}

static inline uint32_t current_tid(void)
{
    if (VSP_UNLIKELY(!vsp_tls.tid))
        vsp_tls.tid = (uint32_t)syscall(SYS_gettid);
    return vsp_tls.tid;
}

static inline uint64_t now_ns(void)
{
    return vsp_clock_ns(); /* CLOCK_MONOTONIC, from the TSC where it can be (base/clock.h) */
}

void vsp_walk_enter(void)
{
    if (bracket_depth++)
        return; /* nested: counted at the outermost level */
    for (;;) {
        /* seq_cst: the Dekker pair with atfork_prepare (see above) */
        __atomic_fetch_add(&unwinders, 1, __ATOMIC_SEQ_CST);
        if (VSP_LIKELY(!__atomic_load_n(&forking, __ATOMIC_SEQ_CST)))
            break;
        __atomic_fetch_sub(&unwinders, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&forking, __ATOMIC_ACQUIRE))
            sched_yield(); /* another thread is in fork(): a moment */
    }
}

void vsp_walk_leave(void)
{
    if (--bracket_depth)
        return;
    /* release: our walk (and the locks it took) is over before a forker sees the count drop */
    __atomic_fetch_sub(&unwinders, 1, __ATOMIC_RELEASE);
}

/* The fork bracket is taken inside, around what locks (walker.c, unwind.c, pyframes.c): a walk
 * over cached rules of a known stack takes no lock. */
static uint32_t capture_stack_id(const void *site)
{
    if (!vsp_cfg.depth)
        return 0;
    return vsp_capture_stack_id(vsp_cfg.depth, site);
}

/* The purpose label of a call: the innermost one the thread pushed, else the stack's rule label. */
static uint16_t call_label(uint32_t stack_id)
{
    uint16_t label = vsp_label_current();
    if (!label)
        label = vsp_stack_label(stack_id);
    if (label)
        vsp_labels_sync(label);
    return label;
}

static void fill_event(struct vsp_rec_event *e, const struct vsp_call *c, uint32_t stack_id, uint16_t label,
                       uint64_t time_ns, uint64_t seq, int32_t device)
{
    e->time_ns = time_ns;
    e->ptr = c->ptr;
    e->size = c->size;
    e->flags = c->flags;
    e->stream = c->stream;
    e->aux = c->aux;
    e->free_bytes = VSP_UNKNOWN_BYTES;
    e->total_bytes = VSP_UNKNOWN_BYTES;
    e->stack_id = stack_id;
    e->tid = current_tid();
    e->result = c->result;
    e->device = device;
    e->api = c->api;
    e->op = c->op ? c->op : VSP_OP_ALLOC;
    e->memory = c->memory;
    e->eflags = (c->denied ? VSP_EVENT_DENIED : 0) | (c->graph ? VSP_EVENT_GRAPH : 0) |
                ((uint32_t)label << VSP_EVENT_LABEL_SHIFT);
    e->seq = seq;
}

void vsp_hook_leave_alloc_rec(struct vsp_hook *h, const struct vsp_call *c)
{
    int saved = errno;
    if (c->result != 0)
        VSP_TC_ADD(failed, 1);
    /* An out-of-memory failure records the device's free and total memory (fragmentation or
     * exhaustion), asked before the record is reserved so the query runs outside the ring. */
    uint64_t fb = VSP_UNKNOWN_BYTES, tb = VSP_UNKNOWN_BYTES;
    if (c->oom && vsp_device_meminfo(&fb, &tb) != 0)
        fb = tb = VSP_UNKNOWN_BYTES;
    uint32_t stack_id = 0;
    if (vsp_trace_ensure()) {
        stack_id = capture_stack_id(h->site);
        uint16_t label = call_label(stack_id);
        struct vsp_rec_event e;
        fill_event(&e, c, stack_id, label, now_ns(), 0, vsp_current_device());
        e.free_bytes = fb;
        e.total_bytes = tb;
        /* the number is taken once the event has its place, so an allocation leaves no gap */
        vsp_ring_append_event(vsp_trace_ring(), &vsp_tls.batch, &e, 1);
        if (c->result == 0 && c->cls && c->ptr)
            vsp_live_add(&vsp_live, c->cls, c->ptr, c->size, c->memory, stack_id, label, e.device);
    } else if (c->result == 0 && c->cls && c->ptr) {
        vsp_live_add(&vsp_live, c->cls, c->ptr, c->size, c->memory, 0, vsp_label_current(), vsp_current_device());
    }
    if (VSP_UNLIKELY(!vsp_usage_baseline_taken()) && vsp_trace_ensure())
        vsp_usage_sample(VSP_USAGE_FIRST); /* the context's own memory, before the program's */
    else if (c->oom && vsp_memory_is_device(c->memory) && vsp_trace_ensure())
        vsp_usage_sample(VSP_USAGE_FAILURE);
    /* The breakdown does not depend on the trace: an unwritable trace path or a full ring in
     * drop mode is exactly when the person on call needs it on stderr. */
    if (c->oom && vsp_memory_is_device(c->memory) && !vsp_cfg.quiet)
        vsp_oom_breakdown(c, stack_id, fb, tb, fb != VSP_UNKNOWN_BYTES);
    /* A zero-byte request may succeed with NULL: nothing is held, nothing will be freed. */
    if (c->result == 0 && c->cls && c->ptr && c->api < VSP_API_COUNT_)
        VSP_TC_ADD(by_api[c->api], 1);
    hook_depth_down();
    errno = saved;
}

void vsp_free_begin(struct vsp_hook *h, struct vsp_free *f, uint16_t api, unsigned cls,
                    unsigned default_memory, uint64_t ptr, uint64_t stream, const void *site)
{
    f->found = 0;
    f->open = 0;
    f->cls = cls;
    f->ptr = ptr;
    if (!h->record)
        return;
    int saved = errno;
    /* Out of the live table before the real free: once the real free returns, another thread may
     * be handed this address and record it as live. */
    if (ptr && cls)
        f->found = vsp_live_remove(&vsp_live, cls, ptr, &f->entry);
    if (vsp_trace_ensure()) {
        f->open = 1;
        f->api = api;
        f->memory = (uint8_t)(f->found ? f->entry.memory : default_memory);
        f->stream = stream;
        if ((f->found || !ptr) && vsp_cfg.depth) {
            /* no walk: the live table knows the rest (a new stack takes the fork bracket) */
            f->stack_id = vsp_site_stack_id((uint64_t)(uintptr_t)site);
        } else {
            f->stack_id = capture_stack_id(site);
        }
        f->time_ns = now_ns();
        /* before the real free (see ring.h), and in flight until its event is written */
        f->seq = vsp_ring_seq_begin(vsp_trace_ring(), ptr, &f->slot);
        vsp_tls.inflight = f->slot + 2;
    }
    errno = saved;
}

void vsp_hook_leave_free(struct vsp_hook *h, struct vsp_free *f, int32_t result)
{
    if (!h->record) {
        hook_depth_down();
        return;
    }
    int saved = errno;
    if (f->open) {
        uint16_t label = f->found ? f->entry.label : 0;
        if (label)
            vsp_labels_sync(label);
        struct vsp_call c = {.api = f->api, .op = VSP_OP_FREE, .ptr = f->ptr, .stream = f->stream,
                             .memory = f->memory, .size = f->found ? f->entry.size : 0, .result = result};
        struct vsp_rec_event e;
        /* a known allocation's device is the one it was made on (the report counts frees there
         * too): no driver call for it (issue 22); otherwise the current one */
        fill_event(&e, &c, f->stack_id, label, f->time_ns, f->seq,
                   f->found && f->entry.device >= 0 ? f->entry.device : vsp_current_device());
        vsp_ring_append_event(vsp_trace_ring(), &vsp_tls.batch, &e, 0);
        if (vsp_tls.inflight == f->slot + 2) { /* (not if the hook was taken for abandoned) */
            vsp_ring_seq_end(f->slot); /* after the append: see vsp_ring_seq_end */
            vsp_tls.inflight = 0;
        }
    }
    if (result == 0) {
        if (f->ptr)
            VSP_TC_ADD(frees, 1);
    } else if (f->found) {
        vsp_live_restore(&vsp_live, f->cls, f->ptr, &f->entry); /* the free failed: still live */
    }
    hook_depth_down();
    errno = saved;
}
