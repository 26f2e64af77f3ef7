/* A library named libcublas.so.13 for the holder rules' tests: its cublasCreate_v2 keeps a device
 * workspace for the handle's lifetime (the real one keeps 64 MiB, shared/gpu-2026-12-04). */
#include <cuda_runtime_api.h>
#include <stddef.h>

__attribute__((noinline)) static int workspace(void **out)
{
    return cudaMalloc(out, 4 << 20) == cudaSuccess ? 0 : 1;
}

int cublasCreate_v2(void **handle)
{
    static void *ws;
    int rc = workspace(&ws);
    *handle = ws;
    return rc;
}
