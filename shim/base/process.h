/* The process-wide services that every room of the shim may use: the configuration, the
 * per-thread state, warnings, the open trace's ring and live table, the cold stacks, the
 * real-symbol helpers, and what a hook knows about one call. Declared here, at the bottom of the
 * shim, so that no room has to include a header above its own (shim/README.md); each group names
 * the file that defines it, which may sit in any room.
 * Must never: grow into a second core.h. A declaration that one room alone uses belongs in that
 * room's header (record/core.h, record/trace.h, walk/unwind.h, inproc/inproc.h, inproc/pools.h). */
#ifndef VSP_PROCESS_H
#define VSP_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "shim/base/livetable.h"
#include "shim/base/ring.h"
#include "shim/common/config.h"

#define VSP_EXPORT __attribute__((visibility("default")))
#define VSP_HIDDEN __attribute__((visibility("hidden")))
/* Variables read or written at start-up and at exit by every process, CUDA or not: kept in .data,
 * on the page the loader's relocations dirty anyway, instead of scattered over the bss, where
 * each first touch of a page is one more page fault in every process (docs/PERFORMANCE.md). */
#define VSP_STARTUP_DATA __attribute__((section(".data.vsp_startup")))
/* Code run at the start and exit of every process, CUDA or not (the constructor's company, the
 * _exit hook's direct path): placed with the constructor (.text.startup, first in .text), on the
 * pages the loader faults in anyway, instead of one more page fault at exit (issue 22). */
#define VSP_STARTUP_TEXT __attribute__((section(".text.startup.vsp")))
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
    void *runtime_fn; /* the real function this thread's last runtime hook called (hooks_dl.c) */
};
extern __thread struct vsp_tls vsp_tls __attribute__((tls_model("initial-exec")));

/* What a hook knows about one call (filled by the hooks, recorded by record/core.c, shown by the
 * out-of-memory breakdown, inproc/oom.c). */
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

/* --- record/core.c --- */
void vsp_init(void);
int vsp_is_ready(void);
extern struct vsp_config vsp_cfg;
/* The process runs under a seccomp filter installed after its first CUDA call: no file may be
 * opened now (cold paths that would load or read files do without). */
int vsp_sandboxed(void);
/* Address range test: is p inside libvramspy.so? (Never record our own code as "the real
 * function", and skip our frames in stacks.) */
int vsp_in_shim(const void *p);
/* The C library follows this object in the loader's list (set by the constructor; core.c). */
extern int vsp_libc_next;
/* A descriptor the shim opened, moved above 0-2 if the program had closed those (it would
 * otherwise write its stdout or stderr into our file). Closes fd on failure; returns the new fd,
 * or -1 with errno set. fd < 0 is passed through. */
int vsp_fd_above_stdio(int fd);
/* Warnings on stderr, "vramspy: " prefixed, one write(2). */
void vsp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vsp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Fork safety of stack walks and in-process symbolisation: fork waits for brackets. */
void vsp_walk_enter(void);
void vsp_walk_leave(void);

/* --- record/trace.c --- */
int vsp_trace_ensure(void);               /* 1 when the trace is open (opens it on first use) */
struct vsp_ring *vsp_trace_ring(void);    /* valid after vsp_trace_ensure() == 1 */
void vsp_trace_modules_changed(void);     /* emit records for modules loaded since the last look */
void vsp_trace_exit_sample(void);         /* the exit sample, while the runtime still works (usage.c) */
extern struct vsp_livetable vsp_live;

/* --- base/coldstack.c --- */
/* Runs fn(arg) on one of the shim's own stacks: the rare, deep work of a hook, so that the hook
 * adds little to the host's stack. In place when none is free. Preserves errno. */
void vsp_cold_call(void (*fn)(void *), void *arg);
void vsp_cold_atfork_child(void);

/* --- inproc/labels.c --- */
/* A new stack's purpose label from the VRAMSPY_PURPOSES rules, computed when walk/unwind.c
 * interns it (the one call from the walk room up into inproc). */
void vsp_stack_label_compute(uint32_t stack_id, const uint64_t *frames, unsigned n, const uint64_t *py, unsigned m);

/* --- real-symbol helpers (hooks/hooks_dl.c) --- */
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
