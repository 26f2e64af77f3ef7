/* Benchmark workload for the heaptrack comparison (tools/bench.sh): allocation+free pairs issued
 * from a call stack DEPTH frames deep, on THREADS threads at once, either through the CUDA runtime
 * found on the library path (`cuda`: cudaMalloc/cudaFree, the test doubles in `make bench`, traced
 * by vramspy) or through libc (`malloc`: malloc/free, traced by heaptrack). The same program, the
 * same depth and the same pair count for both tracers, each measured against its own untraced run.
 * Usage: bench_pairs cuda|malloc DEPTH PAIRS THREADS; prints "ns_per_pair N": the wall time of the
 * loop divided by the pairs one thread made. */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_pair.h"

static long pairs;
static int use_cuda, depth;
static pthread_barrier_t start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static __attribute__((noinline)) void loop(void)
{
    for (long i = 0; i < pairs; i++)
        bench_pair(use_cuda, i);
}

static __attribute__((noinline)) void nest(int d)
{
    if (d <= 0) {
        loop();
        return;
    }
    nest(d - 1);
    __asm__ volatile("" ::: "memory"); /* no tail call: one real frame per level */
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    nest(depth);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    use_cuda = !strcmp(argv[1], "cuda");
    /* main, __libc_start_call_main, __libc_start_main, _start, start_thread/clone, worker and loop
     * are about 5 frames already */
    depth = atoi(argv[2]) > 5 ? atoi(argv[2]) - 5 : 0;
    pairs = atol(argv[3]);
    int threads = atoi(argv[4]) > 0 ? atoi(argv[4]) : 1;
    if (use_cuda) { /* warm up: runtime init, first trace record, caches */
        void *p;
        cudaMalloc(&p, 1);
        cudaFree(p);
    }
    pthread_t t[64];
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads && i < 64; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    double t0 = now();
    pthread_barrier_wait(&start);
    for (int i = 0; i < threads && i < 64; i++)
        pthread_join(t[i], NULL);
    printf("ns_per_pair %.1f\n", (now() - t0) / (double)pairs);
    return 0;
}
