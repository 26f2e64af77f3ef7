// GPU suite (tests/gpu): cost of real stream-ordered allocation, the call a framework's allocator
// makes most (PyTorch's cudaMallocAsync backend): ns per cudaMallocAsync + cudaFreeAsync pair of
// 1 MiB, called DEPTH frames deep, timed after a warm-up.   bench_async DEPTH PAIRS
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static cudaStream_t stream;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

__attribute__((noinline)) static void pairs(int depth, int n)
{
    if (depth > 0) {
        pairs(depth - 1, n);
        __asm__ volatile("" ::: "memory"); // not a tail call: the frame stays on the stack
        return;
    }
    for (int i = 0; i < n; i++) {
        void *p = NULL;
        cudaMallocAsync(&p, 1 << 20, stream);
        cudaFreeAsync(p, stream);
    }
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 30, n = argc > 2 ? atoi(argv[2]) : 50000;
    if (cudaFree(0) != cudaSuccess || cudaStreamCreate(&stream) != cudaSuccess) {
        fprintf(stderr, "bench_async: no device\n");
        return 3;
    }
    pairs(depth, 1000);
    cudaStreamSynchronize(stream);
    double t0 = now_ns();
    pairs(depth, n);
    cudaStreamSynchronize(stream);
    printf("%.1f\n", (now_ns() - t0) / n);
    return 0;
}
