// Test program: built by nvcc with its default, statically linked CUDA runtime. Without a driver
// every call fails (cudaErrorInsufficientDriver); the output must be the same under the shim.
#include <cstdio>
#include <cuda_runtime_api.h>

int main()
{
    void *d = nullptr, *h = nullptr;
    std::printf("malloc %d\n", (int)cudaMalloc(&d, 1 << 20));
    std::printf("host %d\n", (int)cudaMallocHost(&h, 4096));
    std::printf("managed %d\n", (int)cudaMallocManaged(&d, 1 << 20));
    return 0;
}
