/* One allocation+free pair of make bench's workloads (tools/bench_pairs.c, tools/bench_libs.c):
 * cudaMalloc/cudaFree through the runtime on the library path, or malloc/free, of one of eight
 * sizes from 4 KiB by 512 B (i picks it). A failed CUDA call ends the program (exit 3). */
#ifndef VSP_BENCH_PAIR_H
#define VSP_BENCH_PAIR_H

#include <cuda_runtime_api.h>
#include <stdlib.h>

static inline void bench_pair(int use_cuda, long i)
{
    if (use_cuda) {
        void *p;
        if (cudaMalloc(&p, 4096 + (size_t)(i & 7) * 512) != cudaSuccess || cudaFree(p) != cudaSuccess)
            exit(3);
    } else {
        void *volatile p = malloc(4096 + (size_t)(i & 7) * 512);
        free(p);
    }
}

#endif
