/* Test program: THREADS threads (argv[1], default 8) each doing PAIRS (argv[2], default 20000)
 * cudaMalloc/cudaFree pairs of varying sizes; with KEEP (argv[3], default 0, at most 64) each
 * thread keeps its last KEEP allocations live and frees each KEEP allocations later (so a trace cut
 * off at any point holds allocations whose frees it lacks). Exits 0 when every call succeeded.
 * Under the double's per-thread block cache (VSP_FAKE_THREAD_CACHE=1) main first checks it: a freed
 * block of 1000 bytes stays reserved (cudaMemGetInfo's free bytes do not move) and comes back to
 * the next cudaMalloc of 1000, and a second free of it fails with cudaErrorInvalidValue (2 more
 * allocations and 3 more frees, one failed). */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long pairs = 20000;
static int keep;
static int failures;

static void cache_check(void)
{
    void *p, *q;
    size_t f0 = 0, f1 = 1, total;
    if (cudaMalloc(&p, 1000) != cudaSuccess || cudaMemGetInfo(&f0, &total) != cudaSuccess ||
        cudaFree(p) != cudaSuccess || cudaMemGetInfo(&f1, &total) != cudaSuccess || f1 != f0 ||
        cudaMalloc(&q, 1000) != cudaSuccess || q != p || cudaFree(q) != cudaSuccess ||
        cudaFree(q) != cudaErrorInvalidValue)
        failures++;
    cudaGetLastError();
}

static void *worker(void *arg)
{
    long id = (long)arg;

    void *held[64] = {0};
    for (long i = 0; i < pairs; i++) {
        void *p;
        if (cudaMalloc(&p, 256 + (size_t)((i * 7 + id) % 64) * 512) != cudaSuccess)
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        if (keep) { /* free the one allocated KEEP calls ago instead */
            void *old = held[i % keep];
            held[i % keep] = p;
            p = old;
        }
        if (p && cudaFree(p) != cudaSuccess)
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    }
    for (int k = 0; k < keep; k++)
        if (held[k] && cudaFree(held[k]) != cudaSuccess)
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 8;
    if (argc > 2)
        pairs = atol(argv[2]);
    if (argc > 3)
        keep = atoi(argv[3]);
    if (keep < 0 || keep > 64)
        return 2;
    pthread_t t[64];
    if (threads < 1 || threads > 64)
        return 2;
    const char *tc = getenv("VSP_FAKE_THREAD_CACHE");
    if (tc && *tc == '1')
        cache_check();
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("failures %d\n", failures);
    return failures ? 1 : 0;
}
