/* Shared by the walker comparison programs (walkcmp.c, walkcmp_cpp.cc; tests/test_walker.c runs
 * them): take the stack with libunwind's unw_backtrace and with the shim's walker (shim/walk/walker.c,
 * linked into the program) at the same place, and compare the two from the caller's frame outward
 * (the innermost entries differ by construction: each walker starts in its own frame).
 * Also the timing loop of `bench`: ns per walk for both walkers at a given depth. */
#ifndef WALKCMP_H
#define WALKCMP_H

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim/walk/walker.h"

#define WC_MAX 512

static int wc_failures, wc_checks;
static volatile int wc_sink;

static void wc_print(const char *who, const uint64_t *f, unsigned n, unsigned from)
{
    fprintf(stderr, "  %s (%u frames):\n", who, n);
    for (unsigned i = 0; i < n; i++) {
        Dl_info di;
        const char *sym = dladdr((void *)(uintptr_t)f[i], &di) && di.dli_sname ? di.dli_sname : "?";
        fprintf(stderr, "   %c%3u %#llx %s\n", i == from ? '>' : ' ', i, (unsigned long long)f[i], sym);
    }
}

/* The walk memo (walker.h): each thread's one, left by its previous comparison (another scenario,
 * partly the same stack) and then by the walks here (all of it the same stack: the second repeats
 * the first and builds the repeat check, the third goes through it). Then walks cut at a depth (the
 * shim's: a repeat check is built only for a walk that ended by its rule or at the depth asked):
 * the fourth changes the depth, the fifth builds the check, the sixth goes through it, the seventh
 * into a copy of the sixth's frames said intact (nothing to write), the eighth into a poisoned
 * buffer while the ninth's is said intact, and the ninth into that one, poisoned and said nothing
 * of again (both written whole: what was said holds for one walk, into its own buffer). Each must
 * give exactly the frames of a walk without it. */
static __thread struct vsp_walk_memo wc_memo;
#define WC_MEMO_MAX 256
#define WC_MEMO_CUT 5

__attribute__((noinline)) static unsigned wc_memo_walk(uint64_t *f, unsigned max)
{
    unsigned n = vsp_walk_stack_memo(f, max, 0, &wc_memo);
    __asm__ __volatile__("" ::: "memory"); /* no tail call: this frame stays */
    return n;
}

/* What the caller leaves in the buffers before walk k + 1 (out of line: the walks' loop keeps one
 * call site, so all of them see the same frames). */
__attribute__((noinline)) static void wc_memo_setup(int k, uint64_t (*wm)[WC_MEMO_MAX])
{
    if (k == 6) {
        memcpy(wm[6], wm[5], sizeof wm[5]);
        wc_memo.intact = wm[6];
    } else if (k == 7) {
        memset(wm[7], 0xa5, sizeof wm[7]);
        wc_memo.intact = wm[8]; /* (not this walk's buffer, and not said again for the next) */
    } else if (k == 8) {
        memset(wm[8], 0x5a, sizeof wm[8]);
    }
}

/* The memo walks (frames 0 to 2: into wc_memo_walk, this function and wc_compare) against the walk
 * without memo from wc_compare (frame 0: into wc_compare): equal from wc_compare's caller on; the
 * cut ones against the first. */
__attribute__((noinline)) static void wc_compare_memo(const char *what, const uint64_t *w, unsigned nw)
{
    enum { WALKS = 9 };
    static __thread uint64_t wm[WALKS][WC_MEMO_MAX];
    unsigned nm[WALKS];
    for (int k = 0; k < WALKS; k++) {
        wc_memo_setup(k, wm);
        nm[k] = wc_memo_walk(wm[k], k < 3 ? WC_MEMO_MAX : WC_MEMO_CUT); /* (one call site) */
    }
    unsigned want = nw - 1 < WC_MEMO_MAX - 3 ? nw - 1 : WC_MEMO_MAX - 3; /* from wc_compare's caller */
    unsigned cut = nm[0] < WC_MEMO_CUT ? nm[0] : WC_MEMO_CUT;
    for (int k = 0; k < WALKS; k++) {
        wc_checks++;
        if (k < 3 ? nw >= 2 && nm[k] >= 3 && nm[k] - 3 == want && !memcmp(wm[k] + 3, w + 1, want * sizeof *w)
                  : nm[k] == cut && !memcmp(wm[k], wm[0], cut * sizeof *w)) {
            printf("ok %s: memo walk %d matches\n", what, k + 1);
            continue;
        }
        wc_failures++;
        printf("MISMATCH %s: memo walk %d\n", what, k + 1);
        fprintf(stderr, "MISMATCH %s: memo walk %d\n", what, k + 1);
        wc_print("walker", w, nw, 1);
        wc_print("memo walk", wm[k], nm[k], 3);
    }
}

/* Compare both walkers' stacks here; `what` names the scenario. */
__attribute__((noinline)) static void wc_compare(const char *what)
{
    void *u[WC_MAX];
    uint64_t uw[WC_MAX], w[WC_MAX];
    int nu = unw_backtrace(u, WC_MAX);
    unsigned nw = vsp_walk_stack(w, WC_MAX, 0);
    uint64_t caller = (uint64_t)(uintptr_t)__builtin_return_address(0);
    __asm__ __volatile__("" ::: "memory"); /* no tail call: this frame stays */
    wc_compare_memo(what, w, nw);
    wc_checks++;
    unsigned nun = nu > 0 ? (unsigned)nu : 0, iu = nun, iw = nw;
    for (unsigned i = 0; i < nun; i++)
        uw[i] = (uint64_t)(uintptr_t)u[i];
    for (unsigned i = 0; i < nun && iu == nun; i++)
        if (uw[i] == caller)
            iu = i;
    for (unsigned i = 0; i < nw && iw == nw; i++)
        if (w[i] == caller)
            iw = i;
    int ok = iu < nun && iw == 1 && nun - iu == nw - iw && nun - iu >= 2 &&
             !memcmp(uw + iu, w + iw, (nun - iu) * sizeof *w);
    if (ok) {
        printf("ok %s: %u frames from the caller outward (libunwind's from its entry %u)\n", what, nw - iw, iu);
        return;
    }
    wc_failures++;
    printf("MISMATCH %s\n", what);
    fprintf(stderr, "MISMATCH %s (caller %#llx; libunwind from %u, walker from %u)\n", what,
            (unsigned long long)caller, iu, iw);
    wc_print("libunwind", uw, nun, iu);
    wc_print("walker", w, nw, iw);
}

static double wc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int wc_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Time both walkers here (interleaved repetitions; medians and minimums). */
__attribute__((noinline, unused)) static void wc_bench(int iters)
{
    enum { REPS = 11 };
    void *u[WC_MAX];
    uint64_t w[WC_MAX];
    double tu[REPS], tw[REPS];
    int nu = unw_backtrace(u, WC_MAX);
    unsigned nw = vsp_walk_stack(w, WC_MAX, 0);
    for (int r = 0; r < REPS; r++) {
        double t0 = wc_now();
        for (int i = 0; i < iters; i++)
            wc_sink += unw_backtrace(u, WC_MAX);
        double t1 = wc_now();
        for (int i = 0; i < iters; i++)
            wc_sink += (int)vsp_walk_stack(w, WC_MAX, 0);
        double t2 = wc_now();
        tu[r] = (t1 - t0) / iters;
        tw[r] = (t2 - t1) / iters;
    }
    qsort(tu, REPS, sizeof *tu, wc_cmp_double);
    qsort(tw, REPS, sizeof *tw, wc_cmp_double);
    printf("bench: depth libunwind %d walker %u frames; ns per walk: libunwind median %.1f min %.1f, "
           "walker median %.1f min %.1f (%d walks x %d reps each)\n",
           nu, nw, tu[REPS / 2], tu[0], tw[REPS / 2], tw[0], iters, REPS);
    struct vsp_walker_stats st;
    vsp_walker_get_stats(&st);
    printf("walker stats: rule misses %llu, uncacheable %llu, module refreshes %llu, fp rules %llu, "
           "unsupported %llu\n",
           st.rule_misses, st.uncacheable, st.module_refreshes, st.fp_rules, st.stops_unsupported);
}

static void wc_setup(void)
{
    /* as the shim sets it: libunwind's per-thread cache of frame layouts */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

static int wc_finish(void)
{
    struct vsp_walker_stats st;
    vsp_walker_get_stats(&st);
    printf("walker stats: rule misses %llu, uncacheable %llu, module refreshes %llu, fp rules %llu, "
           "unsupported %llu\n",
           st.rule_misses, st.uncacheable, st.module_refreshes, st.fp_rules, st.stops_unsupported);
    printf("memo: %llu levels replayed\n", st.replayed);
    if (!st.replayed) {
        wc_checks++, wc_failures++;
        printf("MISMATCH memo: no walk replayed a level\n");
    }
    printf("%d of %d comparisons matched\n", wc_checks - wc_failures, wc_checks);
    return wc_failures ? 1 : 0;
}

#endif
