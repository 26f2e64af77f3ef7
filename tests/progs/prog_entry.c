/* Test program: driver entry points obtained through the runtime (cudaGetDriverEntryPoint and
 * cudaGetDriverEntryPointByVersion), then called directly: 2 x 1 MiB allocated, one freed. */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <stdio.h>

int main(void)
{
    void *p1 = NULL, *p2 = NULL, *pf = NULL;
    enum cudaDriverEntryPointQueryResult st;
    cudaFree(0); /* create the context */
    printf("entry %d\n", cudaGetDriverEntryPointByVersion("cuMemAlloc", &p1, 12000, cudaEnableDefault, &st));
    printf("entry %d\n", cudaGetDriverEntryPoint("cuMemAlloc", &p2, cudaEnableDefault, &st));
    printf("entry %d\n", cudaGetDriverEntryPointByVersion("cuMemFree", &pf, 12000, cudaEnableDefault, &st));
    if (!p1 || !p2 || !pf)
        return 2;
    CUdeviceptr a, b;
    printf("alloc %d\n", ((CUresult(*)(CUdeviceptr *, size_t))p1)(&a, 1 << 20));
    printf("alloc %d\n", ((CUresult(*)(CUdeviceptr *, size_t))p2)(&b, 1 << 20));
    printf("free %d\n", ((CUresult(*)(CUdeviceptr))pf)(b));
    return 0;
}
