// A framework-shaped process for the holder rules (test_holders.c): functions carrying the real
// names PyTorch, cuBLAS and CuPy allocate under (shared/gpu-2026-12-04/reports) keep their memory
// until exit, as those frameworks do on purpose; "leak" adds one real leak elsewhere.
// Usage: prog_holders [leak|noleak]
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

namespace c10 {
namespace cuda {
namespace CUDACachingAllocator {
namespace Native {
struct DeviceCachingAllocator {
    // PyTorch's segment allocation: a cudaMalloc the allocator keeps and reuses until exit
    __attribute__((noinline)) void *alloc_block(size_t size)
    {
        void *p = nullptr;
        if (cudaMalloc(&p, size) != cudaSuccess)
            return nullptr;
        asm volatile("" ::: "memory");
        return p;
    }
    __attribute__((noinline)) void *malloc(size_t size)
    {
        void *p = alloc_block(size);
        asm volatile("" ::: "memory");
        return p;
    }
};
} // namespace Native
} // namespace CUDACachingAllocator
} // namespace cuda
} // namespace c10

// CuPy's memory pool allocates through cupy.cuda.memory.Memory.__init__ (Cython)
extern "C" __attribute__((noinline)) void *__pyx_pf_4cupy_4cuda_6memory_6Memory___init__(size_t size)
{
    void *p = nullptr;
    if (cudaMalloc(&p, size) != cudaSuccess)
        return nullptr;
    asm volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *make_buffer(size_t size)
{
    void *p = nullptr;
    cudaMalloc(&p, size);
    asm volatile("" ::: "memory");
    return p;
}

int main(int argc, char **argv)
{
    int leak = argc > 1 && !strcmp(argv[1], "leak");
    static c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator torch_alloc;
    void *segs[3];
    for (int i = 0; i < 3; i++)
        segs[i] = torch_alloc.malloc((size_t)(2 + i) << 20); // kept by the "caching allocator"
    // cuBLAS: a handle whose workspace lives until exit (libcublas.so.13 of the tests)
    void *blas = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    int (*create)(void **) = blas ? (int (*)(void **))dlsym(blas, "cublasCreate_v2") : nullptr;
    void *handle = nullptr;
    if (!create || create(&handle) != 0) {
        fprintf(stderr, "no libcublas.so.13: %s\n", dlerror());
        return 3;
    }
    void *pool = __pyx_pf_4cupy_4cuda_6memory_6Memory___init__(1 << 20);
    void *tmp = make_buffer(1 << 20);
    if (!leak)
        cudaFree(tmp);
    printf("segments %p %p %p handle %p pool %p\n", segs[0] ? (void *)1 : nullptr, segs[1] ? (void *)1 : nullptr,
           segs[2] ? (void *)1 : nullptr, handle ? (void *)1 : nullptr, pool ? (void *)1 : nullptr);
    return 0;
}
