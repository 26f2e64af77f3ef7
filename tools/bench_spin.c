/* make bench's control interposer (issue 22): a preloaded library that interposes cudaMalloc and
 * cudaFree, calls the next definition (RTLD_NEXT) and then spins for BENCH_SPIN_NS nanoseconds
 * (default 120) of CLOCK_MONOTONIC, recording nothing. It costs a known time a call and shares
 * nothing between threads, so a harness where it "adds" more with two threads than with one
 * measures the program under test (its locks), not the interposer: tools/bench_rotate.sh runs it
 * as the variant `spin`. Not part of the product. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

static long long spin_ns = -1;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void spin(void)
{
    if (spin_ns < 0) {
        const char *e = getenv("BENCH_SPIN_NS");
        spin_ns = e ? atoll(e) : 120;
    }
    long long end = now_ns() + spin_ns;
    while (now_ns() < end) {
    }
}

int cudaMalloc(void **p, size_t n)
{
    static int (*next)(void **, size_t);
    if (!next)
        next = (int (*)(void **, size_t))dlsym(RTLD_NEXT, "cudaMalloc");
    int r = next ? next(p, n) : 35; /* cudaErrorInsufficientDriver */
    spin();
    return r;
}

int cudaFree(void *p)
{
    static int (*next)(void *);
    if (!next)
        next = (int (*)(void *))dlsym(RTLD_NEXT, "cudaFree");
    spin();
    return next ? next(p) : 35;
}
