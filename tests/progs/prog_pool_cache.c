/* Stream-ordered pool caching (test_holders.c, issue 19): the default pool keeps what is freed
 * (release threshold 1 GiB): four 48 MiB blocks freed, one taken again, so at exit the pool
 * reserves 144 MiB beyond the 48 MiB it still hands out.
 * With VSP_FAKE_TEARDOWN_AT_EXIT=1 the fake driver is torn down by an exit handler registered when
 * it initialised, as the real runtime's is. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, 0) != cudaSuccess)
        return 3;
    uint64_t threshold = 1ull << 30;
    if (cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold) != cudaSuccess)
        return 4;
    void *p[4], *kept = NULL;
    for (int i = 0; i < 4; i++)
        if (cudaMallocAsync(&p[i], 48 << 20, 0) != cudaSuccess)
            return 5;
    for (int i = 0; i < 4; i++)
        cudaFreeAsync(p[i], 0);
    if (cudaMallocAsync(&kept, 48 << 20, 0) != cudaSuccess) /* a cached block, handed out again */
        return 6;
    cudaStreamSynchronize(0);
    printf("pool cache ok\n");
    return 0;
}
