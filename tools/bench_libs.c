/* Benchmark workload of issue 22: the process shape of a framework. Loads NLIBS copies of one
 * library (tests/progs/libmany.so, copied by the test build: identical code at page-aligned
 * addresses, so return addresses coincide in their low bits) RTLD_LOCAL, and on each of THREADS
 * threads calls through a chain of DEPTH frames spread evenly over them down to a loop of
 * allocation+free pairs: `cuda` (cudaMalloc/cudaFree through the runtime on the library path:
 * traced by vramspy), `driver` (cuMemAlloc/cuMemFree found the way NVIDIA's static runtime finds
 * them: dlopen("libcuda.so.1"), cuGetProcAddress_v2, then the pointer it returns for
 * "cuGetProcAddress"; the shim sees no runtime symbol, only the driver's entry points it hands
 * out), `cached` (the `cuda` path with the test double's per-thread block cache,
 * VSP_FAKE_THREAD_CACHE=1: a runtime whose allocations scale with threads, as a caching
 * allocator's do, where the double's global lock makes threads meet in a futex) or `malloc`
 * (malloc/free: traced by heaptrack; glibc's per-thread cache). Each thread makes WARMUP
 * pairs, waits for the others, then times PAIRS pairs alone: the loop after warm-up, nothing of
 * start-up, loading or thread creation. Prints "ns_per_pair N", the mean over threads of each
 * thread's loop time over its pairs.
 * Usage: bench_libs cuda|driver|cached|malloc DIR NLIBS DEPTH PAIRS THREADS [WARMUP] */
#define _GNU_SOURCE
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/progs/many.h"
#include "bench_pair.h"

static long pairs, warmup;
static int use_cuda, use_driver;
static CUresult (*d_alloc)(CUdeviceptr *, size_t);
static CUresult (*d_free)(CUdeviceptr);
static CUresult (*d_setcur)(CUcontext);
static CUcontext d_ctx;

typedef CUresult (*gpa_t)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

/* The driver's entry points, as a static runtime gets them; 0 or -1. */
static int driver_open(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    gpa_t first = h ? (gpa_t)dlsym(h, "cuGetProcAddress_v2") : NULL, gpa = NULL;
    CUdriverProcAddressQueryResult st;
    if (!first || first("cuGetProcAddress", (void **)&gpa, 12000, 0, &st) != CUDA_SUCCESS || !gpa)
        return -1;
    CUresult (*init)(unsigned) = NULL;
    CUresult (*devget)(CUdevice *, int) = NULL;
    CUresult (*retain)(CUcontext *, CUdevice) = NULL;
    gpa("cuInit", (void **)&init, 2000, 0, &st);
    gpa("cuDeviceGet", (void **)&devget, 2000, 0, &st);
    gpa("cuDevicePrimaryCtxRetain", (void **)&retain, 7000, 0, &st);
    gpa("cuCtxSetCurrent", (void **)&d_setcur, 4000, 0, &st);
    gpa("cuMemAlloc", (void **)&d_alloc, 3020, 0, &st);
    gpa("cuMemFree", (void **)&d_free, 3020, 0, &st);
    CUdevice dev;
    if (!init || !devget || !retain || !d_setcur || !d_alloc || !d_free || init(0) != CUDA_SUCCESS ||
        devget(&dev, 0) != CUDA_SUCCESS || retain(&d_ctx, dev) != CUDA_SUCCESS)
        return -1;
    return 0;
}
static pthread_barrier_t warm;
static struct many_chain chain;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static __attribute__((noinline)) void pairs_loop(long n)
{
    for (long i = 0; i < n; i++) {
        if (use_driver) {
            CUdeviceptr p;
            if (d_alloc(&p, 4096 + (size_t)(i & 7) * 512) != CUDA_SUCCESS || d_free(p) != CUDA_SUCCESS)
                exit(3);
        } else {
            bench_pair(use_cuda, i);
        }
    }
}

/* The chain's leaf: warm up, wait for every thread, time the loop. */
static void leaf(void *arg)
{
    pairs_loop(warmup);
    pthread_barrier_wait(&warm);
    double t0 = now();
    pairs_loop(pairs);
    *(double *)arg = (now() - t0) / (double)pairs;
}

static void *worker(void *arg)
{
    struct many_chain c = chain; /* the thread's own copy: arg is its result */
    if (use_driver && d_setcur(d_ctx) != CUDA_SUCCESS)
        exit(3);
    c.arg = arg;
    c.step[0](&c, 0);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: bench_libs cuda|driver|cached|malloc DIR NLIBS DEPTH PAIRS THREADS [WARMUP]\n");
        return 2;
    }
    if (strcmp(argv[1], "cuda") && strcmp(argv[1], "driver") && strcmp(argv[1], "cached") && strcmp(argv[1], "malloc")) {
        fprintf(stderr, "bench_libs: unknown path '%s' (cuda, driver, cached or malloc)\n", argv[1]);
        return 2;
    }
    use_cuda = !strcmp(argv[1], "cuda") || !strcmp(argv[1], "cached");
    if (!strcmp(argv[1], "cached"))
        setenv("VSP_FAKE_THREAD_CACHE", "1", 1); /* read by the double's cuInit, at the first call */
    use_driver = !strcmp(argv[1], "driver");
    if (use_driver && driver_open() != 0) {
        fprintf(stderr, "bench_libs: no driver (libcuda.so.1 and its entry points)\n");
        return 2;
    }
    int nlibs = atoi(argv[3]), depth = atoi(argv[4]), threads = atoi(argv[6]);
    pairs = atol(argv[5]);
    warmup = argc > 7 ? atol(argv[7]) : 10000;
    if (nlibs < 1 || depth < 1 || depth > 256 || threads < 1 || threads > 64 || pairs < 1)
        return 2;
    void **h = calloc((size_t)nlibs, sizeof *h);
    for (int i = 0; i < nlibs; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/libmany_%04d.so", argv[2], i);
        if (!(h[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
            fprintf(stderr, "%s\n", dlerror());
            return 2;
        }
    }
    /* DEPTH frames in all: the chain's links plus main, the thread's start, worker, leaf and the
     * loop (about 6) */
    chain.n = depth > 7 ? depth - 6 : 1;
    chain.leaf = leaf;
    for (int i = 0; i < chain.n; i++)
        chain.step[i] = (many_step_fn)dlsym(h[(long)i * nlibs / chain.n], "many_step");
    if (use_cuda) { /* the runtime's start */
        void *p;
        cudaMalloc(&p, 1);
        cudaFree(p);
    }
    pthread_t t[64];
    double ns[64];
    pthread_barrier_init(&warm, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, &ns[i]);
    double sum = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        sum += ns[i];
    }
    printf("ns_per_pair %.1f\n", sum / threads);
    return 0;
}
