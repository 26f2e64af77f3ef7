/* Benchmark workload: PAIRS cudaMalloc/cudaFree pairs issued from a call stack about DEPTH frames
 * deep (argv[1] argv[2]), through the CUDA runtime found on the library path (the test doubles in
 * `make bench`). Prints "ns_per_call N" (two intercepted calls per pair). Run with and without the
 * shim by tools/bench.sh, which reports the difference and the ratio. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long pairs;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static __attribute__((noinline)) double loop(void)
{
    void *p;
    double t0 = now();
    for (long i = 0; i < pairs; i++) {
        if (cudaMalloc(&p, 4096) != cudaSuccess || cudaFree(p) != cudaSuccess)
            exit(3);
    }
    return now() - t0;
}

static __attribute__((noinline)) double nest(int depth)
{
    if (depth <= 0)
        return loop();
    volatile double r = nest(depth - 1); /* volatile: no tail call, one real frame per level */
    return r;
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 5;
    pairs = argc > 2 ? atol(argv[2]) : 200000;
    void *p;
    cudaMalloc(&p, 1); /* warm up: runtime init, first trace record, unwinder caches */
    cudaFree(p);
    /* main, __libc_start_call_main, __libc_start_main, _start and loop are 5 frames already */
    double ns = nest(depth > 5 ? depth - 5 : 0);
    printf("ns_per_call %.1f\n", ns / (double)(2 * pairs));
    return 0;
}
