/* Test plugin: a shared library that links a CUDA runtime (the fake libcudart.so.13, or, built as
 * libplug12.so, the fake libcudart.so.12) and is loaded by a host with dlopen / ctypes.CDLL,
 * RTLD_LOCAL: the runtime is then outside the global scope (issue #10). Every function returns
 * CUDA result codes so a host can print them and runs with and without the shim can be compared.
 * Built by tests.mk as libplug13.so and libplug12.so. */
#include <cuda_runtime_api.h>
#include <stddef.h>

#define MiB (1024ull * 1024ull)

/* cudaMalloc 1 MiB, cudaFree it, cudaMalloc 2 MiB and keep it (a planted leak, allocated right
 * here: the report must name this function). codes[0..2]: the three results. Returns 0 when all
 * succeeded. */
__attribute__((noinline)) int plug_alloc_free(int *codes)
{
    void *a = NULL, *b = NULL;
    codes[0] = cudaMalloc(&a, 1 * MiB);
    codes[1] = cudaFree(a);
    codes[2] = cudaMalloc(&b, 2 * MiB);
    return codes[0] || codes[1] || codes[2];
}

int plug_malloc(size_t size, void **p)
{
    return cudaMalloc(p, size);
}

int plug_free(void *p)
{
    return cudaFree(p);
}

/* An allocation no device can satisfy: out of memory, which sets this runtime's last error. */
int plug_huge(void)
{
    void *p;
    return cudaMalloc(&p, (size_t)1 << 50);
}

int plug_last_error(void)
{
    return cudaGetLastError();
}

int plug_runtime_version(void)
{
    int v = -1;
    cudaRuntimeGetVersion(&v);
    return v;
}
