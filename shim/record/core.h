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

#include "shim/base/process.h"
#include "shim/base/tcount.h"

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

/* Hook bracket: enter before the real call, one of the leave functions after it. Both preserve
 * errno, so the caller sees the errno the real call left. */
/* frame: the hook's own frame address (__builtin_frame_address(0) in the hook function itself):
 * where its bracket lies on the stack, which tells a nested call from one made after a jump out of
 * the hook (core.c, abandon_stale_hooks). */
#define vsp_hook_enter(h) vsp_hook_enter_at((h), __builtin_frame_address(0))
/* A call nested in this thread's hook (its frame below the outer hook's): counted, and then
 * passed through by the caller without a bracket of its own (the outer one covers it). */
static inline int vsp_hook_nested(const void *frame)
{
    if (vsp_tls.depth > 0 && (uintptr_t)frame < vsp_tls.entry) {
        VSP_TC_ADD(nested, 1);
        return 1;
    }
    return 0;
}
static inline void vsp_hook_enter_at(struct vsp_hook *h, const void *frame)
{
    extern int vsp_hook_enter_slow(const void *frame);
    h->saved_errno = 0; /* filled by the slow path, which is where errno could change */
    h->site = NULL;     /* the hook macros set it */
    /* A call nested in this thread's hook (the driver under the runtime), whose frame lies below
     * the outer hook's: passed through at once (the outer hook's bracket did the rest; issue 22:
     * two of these a pair). Otherwise (a hook left by a jump, an outermost call) the slow path. */
    if (vsp_hook_nested(frame)) {
        vsp_tls.depth++; /* left by the hook's leave, as any call's */
        h->record = 0;
        return;
    }
    /* An outermost call in the steady state (init and the first CUDA call done, tracing on): what
     * the slow path would do, inline, while the fork canary says this is still the process that
     * set it up and the trace is open (a child resets both). acquire: pairs with the releases that
     * set the flag and open the trace. */
    extern int vsp_hooks_steady VSP_HIDDEN, vsp_trace_state VSP_HIDDEN;
    extern volatile int *vsp_fork_canary VSP_HIDDEN;
    if (vsp_tls.depth == 0 && __atomic_load_n(&vsp_hooks_steady, __ATOMIC_ACQUIRE) && *vsp_fork_canary &&
        __atomic_load_n(&vsp_trace_state, __ATOMIC_ACQUIRE) == 2 /* VSP_TRACE_OPEN */) {
        vsp_tls.entry = (uintptr_t)frame;
        vsp_tls.depth = 1;
        h->record = 1;
        return;
    }
    h->record = vsp_hook_enter_slow(frame);
}
/* A CUDA call of any kind reached the shim outside the hook bracket (a driver lookup): the
 * process's first one opens the trace (a sandbox installed after it may forbid opening files). */
void vsp_cuda_contact(void);
void vsp_hook_leave_alloc_rec(struct vsp_hook *h, const struct vsp_call *c);
/* Leave a call that was passed through (not recorded). */
static inline void vsp_hook_leave_passed(void)
{
    if (__builtin_expect(vsp_tls.depth > 0, 1)) /* never below 0 (see core.c) */
        vsp_tls.depth--;
}

/* Leave an allocation hook, with the call's fields (designated initialisers): the record is built
 * only for a call that is recorded; one passed through builds none (an inline function taking the
 * record's address made the compiler build it before the branch: issue 22). */
#define VSP_HOOK_LEAVE_ALLOC(h, ...)                                        \
    do {                                                                    \
        if (!(h)->record) {                                                 \
            vsp_hook_leave_passed();                                        \
        } else {                                                            \
            vsp_hook_leave_alloc_rec((h), &(struct vsp_call){__VA_ARGS__}); \
        }                                                                   \
    } while (0)

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

#endif
