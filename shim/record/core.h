/* The shim's core API: what the hook files call. Hooks translate a CUDA call into a vsp_call and
 * hand it here before (frees) or after (allocations) the real call; everything about stacks, the
 * ring, the trace file and the live table lives behind these functions.
 *
 * Init (vsp_init) is idempotent and runs from the constructor and lazily from every hook, because
 * CUDA may be called from another library's constructor before ours has run. Until it finishes,
 * hooks pass calls through unrecorded. Nothing before it may use the real-symbol table. */
#ifndef VSP_CORE_H
#define VSP_CORE_H

#include <stdint.h>

#include "config.h"
#include "livetable.h"
#include "ring.h"

#define VSP_EXPORT __attribute__((visibility("default")))
#define VSP_HIDDEN __attribute__((visibility("hidden")))
/* Variables read or written at start-up and at exit by every process, CUDA or not: kept in .data,
 * on the page the loader's relocations dirty anyway, instead of scattered over the bss, where
 * each first touch of a page is one more page fault in every process (docs/PERFORMANCE.md). */
#define VSP_STARTUP_DATA __attribute__((section(".data.vsp_startup")))
#define VSP_LIKELY(x) __builtin_expect(!!(x), 1)
#define VSP_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define VSP_SHIM_VERSION "0.1.0"

/* Per-thread state. initial-exec TLS: the shim is loaded at start-up (LD_PRELOAD), so static TLS
 * is available and access costs one instruction, with no call into the dynamic loader. */
#define VSP_LABEL_DEPTH 16
struct vsp_tls {
    int depth;     /* >0 while inside a hook: inner layers (driver under runtime) pass through */
    int nlabels;   /* purpose labels pushed on this thread (vsp_label_push) */
    uint16_t labels[VSP_LABEL_DEPTH];
    int in_init;   /* this thread runs vsp_init */
    int in_open;   /* this thread creates the trace file */
    uint32_t tid;  /* cached gettid(), 0 = not yet (reset in a forked child) */
    uintptr_t entry; /* the outermost hook's frame address while depth > 0 */
    int inflight;  /* 2 + the in-flight slot (-1: none free) of this thread's free in progress (ring.h), 0 none */
    struct vsp_batch batch; /* this thread's open batch of events in the ring (ring.h) */
};
extern __thread struct vsp_tls vsp_tls __attribute__((tls_model("initial-exec")));

/* What a hook knows about one call. */
struct vsp_call {
    uint16_t api;     /* enum vsp_api */
    uint8_t memory;   /* enum vsp_memory */
    uint8_t cls;      /* enum vsp_addr_class; 0 = not tracked as live (mappings) */
    uint8_t op;       /* enum vsp_op; 0 means ALLOC */
    int32_t result;
    int oom;          /* result is an out-of-memory error of a device allocation */
    int denied;       /* refused by VRAMSPY_ENFORCE: the real call was not made */
    int graph;        /* a graph memory node */
    uint64_t ptr, size, flags, stream, aux;
};

/* A hook invocation. */
struct vsp_hook {
    int record;       /* this call is recorded (outermost layer, tracing on) */
    int saved_errno;
    const void *site; /* the hook's return address: the program's call site (set by the hook) */
};

/* A free in progress. Everything about it is taken before the real free (its place in event
 * order above all: seq), and its record is written after the real free returned: no ring space
 * is held across the real call, which may block (cudaFree synchronises the device). */
struct vsp_free {
    int found;
    int open;         /* the trace is open: the record is written at leave */
    struct vsp_live_slot entry;
    unsigned cls;
    uint16_t api;
    uint8_t memory;
    uint32_t stack_id;
    int slot;         /* its in-flight slot (vsp_ring_seq_begin) */
    uint64_t ptr, stream, seq, time_ns;
};

void vsp_init(void);
int vsp_is_ready(void);
extern struct vsp_config vsp_cfg;

/* Hook bracket: enter before the real call, one of the leave functions after it. Both preserve
 * errno, so the caller sees the errno the real call left. */
/* frame: the hook's own frame address (__builtin_frame_address(0) in the hook function itself):
 * where its bracket lies on the stack, which tells a nested call from one made after a jump out of
 * the hook (core.c, abandon_stale_hooks). */
#define vsp_hook_enter(h) vsp_hook_enter_at((h), __builtin_frame_address(0))
static inline void vsp_hook_enter_at(struct vsp_hook *h, const void *frame)
{
    extern int vsp_hook_enter_slow(const void *frame);
    h->saved_errno = 0; /* filled by the slow path, which is where errno could change */
    h->site = NULL;     /* the hook macros set it */
    h->record = vsp_hook_enter_slow(frame);
}
/* A CUDA call of any kind reached the shim outside the hook bracket (a driver lookup): the
 * process's first one opens the trace (a sandbox installed after it may forbid opening files). */
void vsp_cuda_contact(void);
/* The process runs under a seccomp filter installed after its first CUDA call: no file may be
 * opened now (cold paths that would load or read files do without). */
int vsp_sandboxed(void);
void vsp_hook_leave_alloc(struct vsp_hook *h, const struct vsp_call *c);

/* VRAMSPY_ENFORCE=vram-only: must this (outermost) host or managed allocation be refused? */
static inline int vsp_deny_host(const struct vsp_hook *h)
{
    return h->record && vsp_cfg.enforce_vram_only;
}
/* site: the hook's return address, the program's call site. A valid free (the allocation is in
 * the live table, or NULL) records only that site as a one-frame stack; a full stack is walked
 * only for an invalid free (unknown pointer, double free), where it is worth its cost. */
void vsp_free_begin(struct vsp_hook *h, struct vsp_free *f, uint16_t api, unsigned cls,
                    unsigned default_memory, uint64_t ptr, uint64_t stream, const void *site);
void vsp_hook_leave_free(struct vsp_hook *h, struct vsp_free *f, int32_t result);
/* Leave without recording (pass-through hooks, lookups). */
void vsp_hook_leave(struct vsp_hook *h);

/* Address range test: is p inside libvramspy.so? (Never record our own code as "the real
 * function", and skip our frames in stacks.) */
int vsp_in_shim(const void *p);

/* A descriptor the shim opened, moved above 0-2 if the program had closed those (it would
 * otherwise write its stdout or stderr into our file). Closes fd on failure; returns the new fd,
 * or -1 with errno set. fd < 0 is passed through. */
int vsp_fd_above_stdio(int fd);
/* Move fd out of the program's way: close-on-exec, a high number (1000, or half RLIMIT_NOFILE),
 * never 0-2. Returns the new fd (fd itself if it cannot move and is above 2), or -EMFILE after
 * closing it. (trace.c) */
int vsp_fd_park(int fd);

/* Runs fn(arg) on one of the shim's own stacks (coldstack.c): the rare, deep work of a hook, so
 * that the hook adds little to the host's stack. In place when none is free. Preserves errno. */
void vsp_cold_call(void (*fn)(void *), void *arg);
void vsp_cold_atfork_child(void);

/* Warnings on stderr, "vramspy: " prefixed, one write(2). */
void vsp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vsp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- trace.c --- */
struct vsp_trace;
int vsp_trace_ensure(void);               /* 1 when the trace is open (opens it on first use) */
struct vsp_ring *vsp_trace_ring(void);    /* valid after vsp_trace_ensure() == 1 */
void vsp_trace_modules_changed(void);     /* emit records for modules loaded since the last look */
void vsp_trace_finalize(int quick);       /* at exit: END record, drain, summary (quick: no summary,
                                             no metrics: _exit) */
void vsp_trace_atfork_child(void);
/* Before an exec: the trace is finalised (as by _exit); vsp_trace_exec_failed re-opens it for
 * the calls that follow an exec that returned. */
int vsp_trace_before_exec(void);
void vsp_trace_exec_failed(int finalized);
int vsp_trace_foreign(void);              /* the open trace belongs to another pid (raw fork) */
extern struct vsp_livetable vsp_live;

/* --- unwind.c --- */
/* Innermost first, shim frames skipped. site (may be NULL): the hook's return address, which the
 * first kept frame must be: with it the walk skips the shim's frames by a learnt count and
 * writes straight into frames. */
/* frames: room for max + 16 entries (the shim's own frames are walked, then cut). */
unsigned vsp_capture_stack(uint64_t *frames, unsigned max, const void *site);
/* The same into a buffer of the shim's own (not on the hook's stack), interned: the stack's id,
 * 0 when none. */
uint32_t vsp_capture_stack_id(unsigned max, const void *site);
uint32_t vsp_stack_id(const uint64_t *frames, unsigned n);  /* interns, writes new stacks */
/* The same for native frames followed by Python frames (VSP_PYFRAME words, pyframes.h). */
uint32_t vsp_stack_id_parts(const uint64_t *frames, unsigned n, const uint64_t *py, unsigned m);
void vsp_stacks_reset(void);
uint64_t vsp_stack_site(uint32_t id);     /* innermost frame of a stack id, 0 if unknown */

/* --- labels.c --- */
uint16_t vsp_label_intern(const char *name);  /* 0 for none / table full */
const char *vsp_label_name(uint16_t id);
uint16_t vsp_label_current(void);             /* innermost pushed label of this thread, 0 none */
void vsp_labels_sync(uint16_t id);            /* LABEL records up to id are in the trace */
void vsp_labels_reset_trace(void);
uint16_t vsp_stack_label(uint32_t stack_id);  /* label from VRAMSPY_PURPOSES rules, 0 none */
void vsp_stack_label_compute(uint32_t stack_id, const uint64_t *frames, unsigned n, const uint64_t *py, unsigned m);
void vsp_purposes_load(void);                 /* at init, when VRAMSPY_PURPOSES is set */
/* --- oom.c: the in-process symboliser --- */
/* Expand the return address addr into up to max frames (inline chain, innermost first) with
 * libvramspy-sym.so, loaded on first need; dladdr's symbol when it cannot be loaded. Callers are
 * inside vsp_walk_enter/leave; calls are serialised here. Returns the number written (>= 1). */
struct vsp_frame_info;
int vsp_inproc_frames(uint64_t addr, struct vsp_frame_info *out, int max, char *module, size_t mlen);
void vsp_inproc_atfork_child(void);
int vsp_inproc_preload(void); /* load the symboliser now (VRAMSPY_PURPOSES at start-up); 0 if loaded */

/* --- usage.c: coverage samples (USAGE records); call with a trace open --- */
void vsp_usage_sample(int reason);   /* enum vsp_usage_reason */
void vsp_trace_exit_sample(void);    /* the exit sample, while the runtime still works (usage.c) */
int vsp_usage_baseline_taken(void);
void vsp_usage_atfork_child(void);
void vsp_usage_prepare(void);        /* at the trace's opening: load NVML (no file opened later) */

/* --- metrics.c --- */
void vsp_metrics_start(void);        /* after the trace is set up: the writer thread */
void vsp_metrics_write(void);        /* now (at exit) */
void vsp_metrics_atfork_child(void);

/* --- oom.c --- */
/* On a failed device allocation: a breakdown of what holds device memory, on stderr, now. */
void vsp_oom_breakdown(const struct vsp_call *c, uint32_t stack_id, uint64_t free_b, uint64_t total_b,
                       int have_info);
/* Fork safety of stack walks and in-process symbolisation (core.c): fork waits for brackets. */
void vsp_walk_enter(void);
void vsp_walk_leave(void);
int vsp_stacks_init(void);

/* --- real-symbol helpers (hooks_dl.c) --- */
typedef void *(*vsp_dlsym_fn)(void *, const char *);
extern vsp_dlsym_fn vsp_real_dlsym;
void vsp_resolve_dlsym(void);
/* Device ordinal of the calling thread's context, -1 if unknown. */
int32_t vsp_current_device(void);
/* A pool attribute (cuMemPoolGetAttribute); 0 on success. The device's default pool, 0 unknown. */
int vsp_pool_attribute(uint64_t pool, int attr, uint64_t *value);
uint64_t vsp_default_pool(int device);
/* Size of the allocation containing ptr (cuMemGetAddressRange_v2), 0 if unknown. */
uint64_t vsp_address_range_size(uint64_t ptr);
/* Device free/total memory now; 0 on success. */
int vsp_device_meminfo(uint64_t *free_b, uint64_t *total_b);

#endif
