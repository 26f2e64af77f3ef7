/* Order-named atomics for the shim (after mimalloc's mi_atomic_*): every call site says which
 * ordering it needs, and the comment beside it says what that ordering pairs with.
 * Works on plain integer lvalues (the trace header lives in a file mapping, not in _Atomic
 * objects), through the GCC/Clang __atomic builtins. */
#ifndef VSP_ATOMIC_H
#define VSP_ATOMIC_H

#include <sched.h>

#define vsp_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define vsp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define vsp_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define vsp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define vsp_fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define vsp_fetch_sub_relaxed(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_RELAXED)
#define vsp_fetch_or_relaxed(p, v) __atomic_fetch_or((p), (v), __ATOMIC_RELAXED)
/* Strong compare-exchange; on failure *expected receives the current value. */
#define vsp_cas_acq_rel(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define vsp_cas_relaxed(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)
/* Strong compare-exchange with acquire (or release) on success and relaxed on failure. */
#define vsp_cas_acquire(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)
#define vsp_cas_release(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)
#define vsp_cas_weak_relaxed(p, expected, desired) \
    __atomic_compare_exchange_n((p), (expected), (desired), 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)

static inline void vsp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A spin flag for cold paths (label interning, the symboliser, the metrics file), never for the
 * hook-to-ring path. Acquire on taking pairs with the release on leaving, so what the holder
 * wrote is seen whole by the next holder. */
static inline int vsp_spin_trylock(int *flag)
{
    int expected = 0;
    return vsp_cas_acq_rel(flag, &expected, 1);
}

static inline void vsp_spin_lock(int *flag)
{
    while (!vsp_spin_trylock(flag))
        sched_yield();
}

static inline void vsp_spin_unlock(int *flag)
{
    vsp_store_release(flag, 0);
}

/* max(*p, v), lock-free. */
static inline void vsp_atomic_max_relaxed(unsigned long long *p, unsigned long long v)
{
    unsigned long long cur = vsp_load_relaxed(p);
    while (cur < v && !vsp_cas_weak_relaxed(p, &cur, v)) {
    }
}

#endif
