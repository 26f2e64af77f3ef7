/* Per-thread event counters: the shim's counts of calls (allocations, frees, failures, nested
 * calls, live allocations, allocations per API), each added by a thread into a stripe of its own
 * with no locked instruction, and summed by the readers (the exit summary, the END record, the
 * metrics endpoint). Issue 22: a locked add costs about 6 ns here, and the counts took seven of
 * them per allocation+free pair.
 *
 * A thread claims a stripe at its first count and gives it back when it exits (a pthread key's
 * destructor); the counts stay in the stripe and its next owner goes on adding to them, so a sum
 * loses nothing when threads come and go. A thread that finds no free stripe, or counts after its
 * destructor ran, adds atomically into a shared stripe. The owner's add is one unlocked `add`
 * instruction on x86-64: a signal handler counting on the same thread runs between instructions,
 * never inside one, so it loses no count either (elsewhere a relaxed load and store: a count may
 * be lost to a handler that interrupts exactly there). Byte totals and peaks are not here: a peak
 * needs the process-wide total at each allocation (livetable.c keeps those atomic).
 * Must never: lock or malloc on the counting path (the claim asks pthread_setspecific only for a
 * key that lives in the thread descriptor, which does not allocate). */
#ifndef VSP_TCOUNT_H
#define VSP_TCOUNT_H

#include "vramspy/trace_format.h"

struct vsp_tcounts {
    unsigned long long allocations;
    unsigned long long frees;
    unsigned long long failed;
    unsigned long long host_allocations;
    unsigned long long live_count;
    unsigned long long untracked;
    unsigned long long nested;
    unsigned long long by_api[VSP_API_COUNT_];
};

struct vsp_tstripe {
    struct vsp_tcounts c;
    int owner;  /* 1 while a thread owns it */
    int shared; /* the shared stripe: added to atomically */
    int index;  /* its place among the stripes (the shared one: -1); other per-thread slots of the
                   shim may use it as theirs (ring.c's in-flight slots) */
} __attribute__((aligned(64)));
#define VSP_TC_STRIPES 512

extern __thread struct vsp_tstripe *vsp_tc_mine __attribute__((tls_model("initial-exec")));
struct vsp_tstripe *vsp_tc_claim(void);

/* The calling thread's stripe (claimed at its first count). */
static inline struct vsp_tstripe *vsp_tc_self(void)
{
    struct vsp_tstripe *s = vsp_tc_mine;
    return __builtin_expect(s != 0, 1) ? s : vsp_tc_claim();
}

/* Add v (two's complement: -1 subtracts) to a counter of stripe s, the caller's own. */
static inline void vsp_tc_add(struct vsp_tstripe *s, unsigned long long *p, long long v)
{
    if (__builtin_expect(s->shared, 0)) {
        __atomic_fetch_add(p, (unsigned long long)v, __ATOMIC_RELAXED); /* relaxed: a counter */
        return;
    }
#if defined(__x86_64__)
    /* one unlocked read-modify-write: only this thread writes here; readers load it relaxed (an
     * aligned 8-byte store is never torn) */
    __asm__ volatile("addq %1, %0" : "+m"(*p) : "er"(v));
#else
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + (unsigned long long)v, __ATOMIC_RELAXED);
#endif
}

#define VSP_TC_ADD(field, v)                                  \
    do {                                                      \
        struct vsp_tstripe *vsp_s_ = vsp_tc_self();           \
        vsp_tc_add(vsp_s_, &vsp_s_->c.field, (long long)(v)); \
    } while (0)

/* The sums over every stripe (relaxed loads: a count in progress on another thread is missed or
 * seen, never torn). */
void vsp_tc_sum(struct vsp_tcounts *out);

/* A function to run when a thread that counted exits (the stripe's key destructor): what else the
 * thread held for good (its capture buffer). At most 4, registered once each, before any thread
 * could need them. */
void vsp_tc_at_exit(void (*fn)(void));

/* In a child after fork (one thread): every count back to 0, every stripe free. */
void vsp_tc_reset(void);

#endif
