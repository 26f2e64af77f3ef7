/* Test program: NVIDIA's growable vector (cuda-samples' cudaVMM "Vector" pattern), on the driver
 * API: a virtual range reserved once, grown by chunks of physical memory (one cuMemCreate and one
 * cuMemMap each), torn down with ONE cuMemUnmap of the whole range, then one cuMemRelease per
 * chunk. Nothing leaks (issue 20, item 4). Argument: the number of chunks (default 3); "leak"
 * as a second argument keeps the last chunk's handle unreleased (a real leak). Exit 0 when every
 * call succeeded. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(expr)                                                              \
    do {                                                                         \
        CUresult r_ = (expr);                                                    \
        if (r_ != CUDA_SUCCESS) {                                                \
            fprintf(stderr, "prog_vmm_vector: %s failed: %d\n", #expr, (int)r_); \
            return 1;                                                            \
        }                                                                        \
    } while (0)

int main(int argc, char **argv)
{
    int chunks = argc > 1 ? atoi(argv[1]) : 3, leak = argc > 2 && !strcmp(argv[2], "leak");
    if (chunks < 1 || chunks > 64)
        return 2;
    CHECK(cuInit(0));
    CUcontext ctx;
    CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CHECK(cuCtxSetCurrent(ctx));
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t gran, chunk;
    CHECK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    chunk = 8 * gran;
    CUdeviceptr base;
    CHECK(cuMemAddressReserve(&base, chunk * (size_t)chunks, 0, 0, 0));
    CUmemGenericAllocationHandle h[64];
    for (int i = 0; i < chunks; i++) {
        CHECK(cuMemCreate(&h[i], chunk, &prop, 0));
        CHECK(cuMemMap(base + (size_t)i * chunk, chunk, 0, h[i], 0));
    }
    CHECK(cuMemUnmap(base, chunk * (size_t)chunks));
    for (int i = 0; i < chunks - leak; i++)
        CHECK(cuMemRelease(h[i]));
    CHECK(cuMemAddressFree(base, chunk * (size_t)chunks));
    printf("vector of %d chunks of %zu bytes grown and freed\n", chunks, chunk);
    return 0;
}
