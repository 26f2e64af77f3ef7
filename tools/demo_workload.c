/* The bundled demo workload (make demo): a toy inference worker that loads "weights", grows a
 * "KV cache" until the device is full, fragments its memory, falls back to managed (host) memory
 * after an out-of-memory, and leaks a scratch buffer. Runs against real CUDA or the test doubles. */
#include <cuda_runtime_api.h>
#include <stdio.h>

#define MiB (1024ull * 1024ull)

static void *load_weights(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess)
        return NULL;
    return p;
}

static int grow_kv_cache(void **blocks, int max, size_t block)
{
    int n = 0;
    while (n < max && cudaMalloc(&blocks[n], block) == cudaSuccess)
        n++;
    cudaGetLastError();
    return n;
}

static void *alloc_workspace(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes) == cudaSuccess)
        return p;
    cudaGetLastError();
    /* "it still runs": the silent fallback an auditor wants to find */
    if (cudaMallocManaged(&p, bytes, cudaMemAttachGlobal) == cudaSuccess)
        return p;
    return NULL;
}

int main(void)
{
    size_t free_b = 0, total = 0;
    cudaMemGetInfo(&free_b, &total);
    void *w1 = load_weights(total / 4), *w2 = load_weights(total / 8);
    void *kv[64];
    int n = grow_kv_cache(kv, 64, total / 32);
    for (int i = 0; i < n; i += 2) /* evict every other block: holes everywhere */
        cudaFree(kv[i]);
    void *ws = alloc_workspace(total / 16); /* more than any hole, less than free */
    void *scratch = NULL;
    cudaMallocHost(&scratch, 4 * MiB);
    for (int i = 1; i < n; i += 2)
        cudaFree(kv[i]);
    cudaFree(ws);
    cudaFree(w2);
    /* w1 (a quarter of the device) and the pinned scratch buffer are never freed */
    printf("demo: device %zu MiB, %d KV blocks, workspace %s\n", (size_t)(total / MiB), n,
           ws ? "allocated (after fallback)" : "failed");
    (void)w1;
    return 0;
}
