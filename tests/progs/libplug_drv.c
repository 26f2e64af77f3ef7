/* Test plugin: a shared library that links the CUDA driver (the fake libcuda.so.1) directly and is
 * loaded by a host with ctypes.CDLL (RTLD_LOCAL): the driver is then outside the global scope
 * (issue #10). Returns the driver's result codes so runs with and without the shim can be
 * compared. */
#include <cuda.h>

#define MiB (1024ull * 1024ull)

/* cuInit, cuMemAlloc 1 MiB, cuMemFree it, cuMemAlloc 2 MiB and keep it (a planted leak, allocated
 * here: the report must name this function). codes[0..3]: the four results; returns 0 when all
 * succeeded. */
__attribute__((noinline)) int plug_drv_alloc_free(int *codes)
{
    CUdeviceptr a = 0, b = 0;
    codes[0] = cuInit(0);
    codes[1] = cuMemAlloc(&a, 1 * MiB);
    codes[2] = cuMemFree(a);
    codes[3] = cuMemAlloc(&b, 2 * MiB);
    return codes[0] || codes[1] || codes[2] || codes[3];
}
