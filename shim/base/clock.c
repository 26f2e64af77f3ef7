/* Event timestamps (see clock.h). */
#include "shim/base/clock.h"

#include <time.h>

#include "shim/base/atomic.h"

#define WINDOW (1ull << 22)       /* TSC ticks between two real readings on a thread */
/* The rate is first measured over 1 ms, or longer where the two pairs it comes from are loose:
 * over at least RATE_SPAN times their widths, so that it is off by under 1/(RATE_SPAN/2) even when
 * both readings sit at the ends of their pairs (a window's readings, then, by under 2^22 / 1024
 * ticks; tens of nanoseconds with the pairs this machine kind gives). Issue 22: with 10 ms, a
 * process's first 10 ms read the real clock and the counter twice an event, about 40 ns a pair
 * more than later, and benchmarks' timed loops (a few milliseconds after a warm-up) ran in it. */
#define CALIBRATE_NS 1000000ull
#define RATE_SPAN 2048u

static int coarse; /* set once at init, before any thread reads a time */

void vsp_clock_set_coarse(int on)
{
    vsp_store_relaxed(&coarse, on != 0);
}

int vsp_clock_coarse(void)
{
    return vsp_load_relaxed(&coarse);
}

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no system call, no counter read */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__)
#include <cpuid.h>

static inline uint64_t tsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* 0 unknown, 1 invariant TSC, 2 none */
static int tsc_state;
/* The rate: ns per tick << 32 (0: not measured yet), from the first reading of the process (base)
 * to a later one (base_width: the base pair's width, in ticks). relaxed: each word is used alone; a
 * rate and a window mixed from two threads' measurements are both good ones. */
static uint64_t rate, base_tsc, base_ns, base_width;
static int base_set;

static __thread struct {
    uint64_t tsc0, ns0, last;
} w __attribute__((tls_model("initial-exec")));

static int tsc_invariant(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
        return 0;
    __get_cpuid(0x80000007, &a, &b, &c, &d);
    return (d >> 8) & 1;
}

/* A real reading and the TSC at the same moment: the counter read on both sides of the clock, and
 * the pair kept only when the two are close (a thread preempted between them would pair a clock
 * reading with a counter value from milliseconds later: a window, or the rate, off by that much). */
#define PAIR_TICKS 20000u /* about 7 us here */
static int paired(uint64_t *t, uint64_t *ns, uint64_t *width)
{
    for (int i = 0; i < 4; i++) {
        uint64_t a = tsc(), n = real_ns(), b = tsc();
        if (b - a < PAIR_TICKS) {
            *t = a + (b - a) / 2;
            *ns = n;
            *width = b - a;
            return 1;
        }
    }
    return 0;
}

/* A real reading: the thread's new window, and the rate measured again. */
static __attribute__((noinline)) uint64_t anchor(void)
{
    int st = vsp_load_relaxed(&tsc_state);
    if (st == 0) {
        st = tsc_invariant() ? 1 : 2;
        vsp_store_relaxed(&tsc_state, st);
    }
    uint64_t ns, t, width;
    if (st != 1 || !paired(&t, &ns, &width)) {
        ns = real_ns(); /* (no pair this time: the window stays as it was, and this reading is real) */
        if (st == 1 && ns < w.last)
            ns = w.last;
        if (st == 1)
            w.last = ns;
        return ns;
    }
    int expect = 0;
    if (!vsp_load_relaxed(&base_set) && vsp_cas_acq_rel(&base_set, &expect, 1)) {
        vsp_store_relaxed(&base_tsc, t);
        vsp_store_relaxed(&base_ns, ns);
        vsp_store_relaxed(&base_width, width);
        vsp_store_release(&base_set, 2); /* release: the base's words before the flag */
    } else if (vsp_load_acquire(&base_set) == 2) {
        uint64_t bt = vsp_load_relaxed(&base_tsc), bn = vsp_load_relaxed(&base_ns);
        uint64_t bw = vsp_load_relaxed(&base_width);
        if (ns > bn + CALIBRATE_NS && t > bt && t - bt >= RATE_SPAN * (bw + width))
            vsp_store_relaxed(&rate, (uint64_t)((double)(ns - bn) / (double)(t - bt) * 4294967296.0));
    }
    w.tsc0 = t;
    w.ns0 = ns;
    if (ns < w.last)
        ns = w.last; /* (interpolation ran a little ahead of the real clock) */
    w.last = ns;
    return ns;
}

uint64_t vsp_clock_ns(void)
{
    if (__builtin_expect(vsp_load_relaxed(&coarse), 0))
        return coarse_ns();
    uint64_t r = vsp_load_relaxed(&rate);
    if (__builtin_expect(!r, 0))
        return anchor();
    uint64_t d = tsc() - w.tsc0;
    if (__builtin_expect(d >= WINDOW || !w.tsc0, 0))
        return anchor();
    uint64_t ns = w.ns0 + ((d * r) >> 32); /* d < 2^22 and r < 2^36 (a tick under 16 ns): no overflow */
    if (ns < w.last)
        ns = w.last;
    w.last = ns;
    return ns;
}

#else

uint64_t vsp_clock_ns(void)
{
    return vsp_load_relaxed(&coarse) ? coarse_ns() : real_ns();
}

#endif
